/* Demo and test PKI, made with the OpenSSL library. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pki.h"

#define DAY (24L * 3600)

enum pki_kind { PKI_CA, PKI_SERVER, PKI_CLIENT, PKI_CLIENT_SERVERAUTH, PKI_CLIENT_SELF };

struct pki_cert {
	X509 *x;
	EVP_PKEY *k;
};

static EVP_PKEY *pki_key(bool rsa)
{
	return rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}

static int pki_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EPROTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EPROTO;
}

/*
 * Make a certificate for CN @cn of @kind, signed by @issuer (self-signed if
 * NULL), valid from now+@from to now+@to seconds. @pathlen applies to CAs
 * (-1: none). Fills @out (caller frees both parts). 0 or -EPROTO.
 */
static int pki_make(struct pki_cert *out, const char *cn, enum pki_kind kind, bool rsa,
		    const struct pki_cert *issuer, long from, long to, int pathlen)
{
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509_NAME *name;
	X509 *x = NULL, *ix;
	EVP_PKEY *k = NULL, *ik;
	char buf[256];
	int rc = -EPROTO;

	k = pki_key(rsa);
	x = X509_new();
	if (!k || !x)
		goto out;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;	/* positive */
	serial[0] |= 0x01;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, from, NULL) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 0, to, NULL) ||
	    X509_set_pubkey(x, k) != 1)
		goto out;
	name = X509_get_subject_name(x);
	/* DER order O, CN: printed (RFC 2253) as "CN=…,O=…". */
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
					(const unsigned char *)"ktlsgw demo", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
		goto out;
	ix = issuer ? issuer->x : x;
	ik = issuer ? issuer->k : k;
	if (X509_set_issuer_name(x, X509_get_subject_name(ix)) != 1)
		goto out;
	if (pki_ext(x, ix, NID_subject_key_identifier, "hash") ||
	    pki_ext(x, ix, NID_authority_key_identifier, "keyid:always"))
		goto out;
	switch (kind) {
	case PKI_CA:
		if (pathlen >= 0)
			snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", pathlen);
		else
			snprintf(buf, sizeof(buf), "critical,CA:TRUE");
		if (pki_ext(x, ix, NID_basic_constraints, buf) ||
		    pki_ext(x, ix, NID_key_usage, "critical,keyCertSign,cRLSign"))
			goto out;
		break;
	case PKI_SERVER:
		if (pki_ext(x, ix, NID_basic_constraints, "critical,CA:FALSE") ||
		    pki_ext(x, ix, NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment" :
			    "critical,digitalSignature") ||
		    pki_ext(x, ix, NID_ext_key_usage, "serverAuth") ||
		    pki_ext(x, ix, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"))
			goto out;
		break;
	case PKI_CLIENT:
	case PKI_CLIENT_SELF:
	case PKI_CLIENT_SERVERAUTH:
		snprintf(buf, sizeof(buf), "email:%s@example.test", cn);
		if (pki_ext(x, ix, NID_basic_constraints, "critical,CA:FALSE") ||
		    pki_ext(x, ix, NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment" :
			    "critical,digitalSignature") ||
		    pki_ext(x, ix, NID_ext_key_usage,
			    kind == PKI_CLIENT_SERVERAUTH ? "serverAuth" : "clientAuth") ||
		    pki_ext(x, ix, NID_subject_alt_name, buf))
			goto out;
		break;
	}
	if (!X509_sign(x, ik, EVP_sha256()))
		goto out;
	out->x = x;
	out->k = k;
	x = NULL;
	k = NULL;
	rc = 0;
out:
	if (rc)
		kg_log_ssl(KG_LOG_ERR, "pki: cannot make a certificate");
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static void pki_free(struct pki_cert *c)
{
	X509_free(c->x);
	c->x = NULL;
	EVP_PKEY_free(c->k);
	c->k = NULL;
}

static FILE *pki_open(const char *dir, const char *name, mode_t mode)
{
	char path[4096];
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		kg_err("pki: %s: %s", path, strerror(errno));
		return NULL;
	}
	(void)fchmod(fd, mode);
	f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

/* Write @name with the given certificates (NULL-terminated list) in order. */
static int pki_write_certs(const char *dir, const char *name, X509 *const *certs)
{
	FILE *f = pki_open(dir, name, 0644);
	int rc = 0;

	if (!f)
		return -EIO;
	for (; *certs; certs++)
		if (PEM_write_X509(f, *certs) != 1)
			rc = -EIO;
	if (fclose(f))
		rc = -EIO;
	return rc;
}

static int pki_write_key(const char *dir, const char *name, EVP_PKEY *k)
{
	FILE *f = pki_open(dir, name, 0600);
	int rc = 0;

	if (!f)
		return -EIO;
	if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
		rc = -EIO;
	if (fclose(f))
		rc = -EIO;
	return rc;
}

/* base.pem = leaf + @chain..., base.key; NULL-terminated chain. */
static int pki_write_pair(const char *dir, const char *base, const struct pki_cert *c,
			  X509 *chain1, X509 *chain2, X509 *chain3, X509 *chain4)
{
	X509 *list[6] = { c->x, chain1, chain2, chain3, chain4, NULL };
	char n1[256], n2[256];

	snprintf(n1, sizeof(n1), "%s.pem", base);
	snprintf(n2, sizeof(n2), "%s.key", base);
	if (pki_write_certs(dir, n1, list) || pki_write_key(dir, n2, c->k))
		return -EIO;
	return 0;
}

/* A CRL from @ca listing @revoked (may be NULL), valid from now+@from to
 * now+@to seconds, written to @name (PEM). */
static int pki_write_crl(const char *dir, const char *name, const struct pki_cert *ca,
			 X509 *revoked, long from, long to)
{
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *r = NULL;
	ASN1_TIME *t = NULL;
	FILE *f = NULL;
	int rc = -EPROTO;

	if (!crl || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x)) != 1)
		goto out;
	t = X509_time_adj_ex(NULL, 0, from, NULL);
	if (!t || X509_CRL_set1_lastUpdate(crl, t) != 1)
		goto out;
	ASN1_TIME_free(t);
	t = X509_time_adj_ex(NULL, 0, to, NULL);
	if (!t || X509_CRL_set1_nextUpdate(crl, t) != 1)
		goto out;
	if (revoked) {
		r = X509_REVOKED_new();
		if (!r || X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)) != 1 ||
		    X509_REVOKED_set_revocationDate(r, X509_CRL_get0_lastUpdate(crl) ?
						    (ASN1_TIME *)X509_CRL_get0_lastUpdate(crl) : t) != 1 ||
		    X509_CRL_add0_revoked(crl, r) != 1)
			goto out;
		r = NULL;
	}
	if (X509_CRL_sort(crl) != 1 || !X509_CRL_sign(crl, ca->k, EVP_sha256()))
		goto out;
	f = pki_open(dir, name, 0644);
	if (!f || PEM_write_X509_CRL(f, crl) != 1) {
		rc = -EIO;
		goto out;
	}
	rc = 0;
out:
	if (rc)
		kg_log_ssl(KG_LOG_ERR, "pki: cannot make a CRL");
	if (f && fclose(f) && !rc)
		rc = -EIO;
	X509_REVOKED_free(r);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return rc;
}

static int pki_test_set(const char *dir, struct pki_cert *root, struct pki_cert *ica)
{
	struct pki_cert rroot = { 0 }, rica = { 0 }, rcli = { 0 }, rsrv = { 0 }, c = { 0 };
	struct pki_cert sroot = { 0 }, droot = { 0 }, d[4] = { { 0 } };
	char name[32];
	int rc = -EPROTO, i;

	/* An all-RSA chain. */
	if (pki_make(&rroot, "ktlsgw test RSA root", PKI_CA, true, NULL, -3600, 3650 * DAY, -1) ||
	    pki_make(&rica, "ktlsgw test RSA client CA", PKI_CA, true, &rroot, -3600, 3650 * DAY, 0) ||
	    pki_make(&rcli, "carol-rsa", PKI_CLIENT, true, &rica, -3600, 825 * DAY, -1) ||
	    pki_make(&rsrv, "localhost", PKI_SERVER, true, &rroot, -3600, 825 * DAY, -1))
		goto out;
	if (pki_write_pair(dir, "rsa-ca", &rroot, NULL, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "rsa-client-ca", &rica, NULL, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "rsa-client", &rcli, rica.x, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "rsa-server", &rsrv, rroot.x, NULL, NULL, NULL))
		goto out;

#define ONE(file, cn, kind, iss, from, to, chainx) do {					\
		if (pki_make(&c, cn, kind, false, iss, from, to, -1) ||			\
		    pki_write_pair(dir, file, &c, chainx, NULL, NULL, NULL))		\
			goto out;							\
		pki_free(&c);								\
	} while (0)

	ONE("expired", "expired", PKI_CLIENT, ica, -30 * DAY, -1 * DAY, ica->x);
	ONE("notyet", "notyet", PKI_CLIENT, ica, 10 * DAY, 40 * DAY, ica->x);
	ONE("serverauth", "serverauth", PKI_CLIENT_SERVERAUTH, ica, -3600, 825 * DAY, ica->x);
	ONE("rootsigned", "rootsigned", PKI_CLIENT, root, -3600, 825 * DAY, NULL);
	ONE("selfsigned", "selfsigned", PKI_CLIENT_SELF, NULL, -3600, 825 * DAY, NULL);
	ONE("carol", "carol", PKI_CLIENT, ica, -3600, 825 * DAY, ica->x);
	ONE("dave", "dave", PKI_CLIENT, ica, -3600, 825 * DAY, ica->x);
	/* erin is listed in the client CA's CRL; a second CRL is stale */
	if (pki_make(&c, "erin", PKI_CLIENT, false, ica, -3600, 825 * DAY, -1) ||
	    pki_write_pair(dir, "erin", &c, ica->x, NULL, NULL, NULL) ||
	    pki_write_crl(dir, "client-ca.crl.pem", ica, c.x, -3600, 30 * DAY) ||
	    pki_write_crl(dir, "client-ca-stale.crl.pem", ica, c.x, -30 * DAY, -1 * DAY) ||
	    pki_write_crl(dir, "client-ca-empty.crl.pem", ica, NULL, -3600, 30 * DAY))
		goto out;
	pki_free(&c);

	if (pki_make(&sroot, "stranger root", PKI_CA, false, NULL, -3600, 3650 * DAY, -1) ||
	    pki_write_pair(dir, "stranger-ca", &sroot, NULL, NULL, NULL, NULL))
		goto out;
	ONE("stranger", "stranger", PKI_CLIENT, &sroot, -3600, 825 * DAY, NULL);

	/* deep: root → int1 → int2 → int3 → int4 → leaf */
	if (pki_make(&droot, "deep root", PKI_CA, false, NULL, -3600, 3650 * DAY, -1))
		goto out;
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "deep-int%d", i + 1);
		if (pki_make(&d[i], name, PKI_CA, false, i ? &d[i - 1] : &droot, -3600, 3650 * DAY,
			     3 - i))
			goto out;
	}
	if (pki_make(&c, "deep", PKI_CLIENT, false, &d[3], -3600, 825 * DAY, -1) ||
	    pki_write_pair(dir, "deep", &c, d[3].x, d[2].x, d[1].x, d[0].x) ||
	    pki_write_pair(dir, "deep-client-ca", &d[3], NULL, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "deep-root", &droot, NULL, NULL, NULL, NULL))
		goto out;
	{
		X509 *chain[] = { droot.x, d[0].x, d[1].x, d[2].x, d[3].x, NULL };

		if (pki_write_certs(dir, "deep-ca.pem", chain))
			goto out;
	}
	rc = 0;
#undef ONE
out:
	pki_free(&c);
	pki_free(&rroot);
	pki_free(&rica);
	pki_free(&rcli);
	pki_free(&rsrv);
	pki_free(&sroot);
	pki_free(&droot);
	for (i = 0; i < 4; i++)
		pki_free(&d[i]);
	return rc;
}

int kg_pki_init(const char *dir, bool test_set)
{
	struct pki_cert root = { 0 }, ica = { 0 }, srv = { 0 }, alice = { 0 }, bob = { 0 };
	int rc = -EPROTO;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		kg_err("pki: cannot create %s: %s", dir, strerror(errno));
		return rc;
	}
	if (pki_make(&root, "ktlsgw demo root CA", PKI_CA, false, NULL, -3600, 3650 * DAY, -1) ||
	    pki_make(&ica, "ktlsgw demo client CA", PKI_CA, false, &root, -3600, 3650 * DAY, 0) ||
	    pki_make(&srv, "localhost", PKI_SERVER, false, &root, -3600, 825 * DAY, -1) ||
	    pki_make(&alice, "alice", PKI_CLIENT, false, &ica, -3600, 825 * DAY, -1) ||
	    pki_make(&bob, "bob", PKI_CLIENT, true, &ica, -3600, 825 * DAY, -1))
		goto out;
	rc = -EIO;
	if (pki_write_pair(dir, "ca", &root, NULL, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "client-ca", &ica, NULL, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "server", &srv, root.x, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "alice", &alice, ica.x, NULL, NULL, NULL) ||
	    pki_write_pair(dir, "bob", &bob, ica.x, NULL, NULL, NULL))
		goto out;
	{
		X509 *chain[] = { ica.x, root.x, NULL }, *leaf[] = { alice.x, NULL };

		if (pki_write_certs(dir, "client-ca-chain.pem", chain) ||
		    pki_write_certs(dir, "alice-leaf.pem", leaf))
			goto out;
	}
	rc = test_set ? pki_test_set(dir, &root, &ica) : 0;
out:
	pki_free(&root);
	pki_free(&ica);
	pki_free(&srv);
	pki_free(&alice);
	pki_free(&bob);
	return rc;
}
