/* Demo and test PKI, generated with the OpenSSL 3 library (no openssl CLI). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pki.h"

#define PKI_HOUR	3600L
#define PKI_DAY		(24 * PKI_HOUR)
#define PKI_ORG		"ktlsgw demo"
#define PKI_SERIAL_LEN	16
#define PKI_RSA_BITS	2048
#define PKI_EC_CURVE	"P-256"
#define PKI_MAX_CHAIN	5

/* Validity windows, in seconds relative to now. */
#define PKI_LEAF_FROM	(-PKI_HOUR)
/* 397 days: within the 398-day limit browsers and scanners apply to leaves */
#define PKI_LEAF_TO	(397 * PKI_DAY)
#define PKI_CA_FROM	(-PKI_HOUR)
#define PKI_CA_TO	(3650 * PKI_DAY)

/* Where server certificates say the root's CRL is (a CRL distribution point):
 * the file pki init writes next to them, so the pointer is real. */
static char pki_crl_uri[4200];

enum pki_role {
	PKI_ROLE_CA,
	PKI_ROLE_SERVER,
	PKI_ROLE_CLIENT,
	PKI_ROLE_CLIENT_SERVERAUTH,	/* a "client" whose EKU says serverAuth only */
};

/* A certificate and its private key; both owned. */
struct pki_ident {
	X509 *crt;
	EVP_PKEY *key;
};

struct pki_spec {
	const char *cn;
	enum pki_role role;
	bool rsa;
	long from, to;		/* notBefore / notAfter, seconds from now */
	int pathlen;		/* CAs only; < 0: no pathLenConstraint */
};

#define PKI_CA_SPEC(name, is_rsa, plen) \
	{ .cn = (name), .role = PKI_ROLE_CA, .rsa = (is_rsa), \
	  .from = PKI_CA_FROM, .to = PKI_CA_TO, .pathlen = (plen) }
#define PKI_LEAF_SPEC(name, r, is_rsa) \
	{ .cn = (name), .role = (r), .rsa = (is_rsa), \
	  .from = PKI_LEAF_FROM, .to = PKI_LEAF_TO, .pathlen = -1 }

static void pki_ident_free(struct pki_ident *id)
{
	X509_free(id->crt);
	id->crt = NULL;
	EVP_PKEY_free(id->key);
	id->key = NULL;
}

/* Log "@what (@about)" with the drained OpenSSL error queue; returns -EPROTO. */
static int pki_ssl_fail(const char *what, const char *about)
{
	char line[512];

	snprintf(line, sizeof(line), "pki: %s (%s)", what, about);
	kg_log_ssl(KG_LOG_ERR, line);
	return -EPROTO;
}

static EVP_PKEY *pki_keygen(bool rsa)
{
	if (rsa)
		return EVP_RSA_gen(PKI_RSA_BITS);
	return EVP_EC_gen(PKI_EC_CURVE);
}

/* A random, positive serial of exactly PKI_SERIAL_LEN bytes. */
static int pki_set_serial(X509 *crt)
{
	unsigned char raw[PKI_SERIAL_LEN];
	BIGNUM *bn = NULL;
	int rc = -EPROTO;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		goto out;
	raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)))
		goto out;
	rc = 0;
out:
	BN_free(bn);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

static int pki_add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	int rc = -EPROTO;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, crt, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext || X509_add_ext(crt, ext, -1) != 1)
		goto out;
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	return rc;
}

/* The extensions for @spec; the key identifiers need the public key and
 * names already set on @crt (and the issuer's own subjectKeyIdentifier). */
static int pki_add_exts(X509 *crt, X509 *issuer, const struct pki_spec *spec)
{
	char bc[64], san[192];
	const char *ku, *eku;

	if (pki_add_ext(crt, issuer, NID_subject_key_identifier, "hash") ||
	    pki_add_ext(crt, issuer, NID_authority_key_identifier, "keyid:always"))
		return -EPROTO;

	if (spec->role == PKI_ROLE_CA) {
		if (spec->pathlen >= 0)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", spec->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		if (pki_add_ext(crt, issuer, NID_basic_constraints, bc) ||
		    pki_add_ext(crt, issuer, NID_key_usage, "critical,keyCertSign,cRLSign"))
			return -EPROTO;
		return 0;
	}

	/* keyEncipherment only means something for RSA (RFC 5480 forbids it for EC). */
	ku = spec->rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
	if (spec->role == PKI_ROLE_SERVER) {
		eku = "serverAuth";
		snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
	} else {
		eku = spec->role == PKI_ROLE_CLIENT ? "clientAuth" : "serverAuth";
		if ((size_t)snprintf(san, sizeof(san), "email:%s@example.test", spec->cn) >= sizeof(san))
			return -ENAMETOOLONG;
	}
	if (spec->role == PKI_ROLE_SERVER && pki_crl_uri[0] &&
	    pki_add_ext(crt, issuer, NID_crl_distribution_points, pki_crl_uri))
		return -EPROTO;
	if (pki_add_ext(crt, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
	    pki_add_ext(crt, issuer, NID_key_usage, ku) ||
	    pki_add_ext(crt, issuer, NID_ext_key_usage, eku) ||
	    pki_add_ext(crt, issuer, NID_subject_alt_name, san))
		return -EPROTO;
	return 0;
}

/* Make a fresh key and a certificate for @spec into @out, signed by @issuer
 * (self-signed when NULL). */
static int pki_issue(struct pki_ident *out, const struct pki_spec *spec,
		     const struct pki_ident *issuer)
{
	EVP_PKEY *key = NULL, *sign_key;
	X509 *crt = NULL, *sign_crt;
	X509_NAME *subj;
	int rc = -EPROTO;

	key = pki_keygen(spec->rsa);
	if (!key)
		goto out;
	crt = X509_new();
	if (!crt)
		goto out;
	sign_crt = issuer ? issuer->crt : crt;
	sign_key = issuer ? issuer->key : key;

	if (X509_set_version(crt, X509_VERSION_3) != 1 || pki_set_serial(crt) ||
	    !X509_time_adj_ex(X509_getm_notBefore(crt), 0, spec->from, NULL) ||
	    !X509_time_adj_ex(X509_getm_notAfter(crt), 0, spec->to, NULL) ||
	    X509_set_pubkey(crt, key) != 1)
		goto out;
	/* DER order O then CN, so RFC 2253 prints "CN=…,O=ktlsgw demo". */
	subj = X509_get_subject_name(crt);
	if (X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8,
				       (const unsigned char *)PKI_ORG, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
				       (const unsigned char *)spec->cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(crt, X509_get_subject_name(sign_crt)) != 1)
		goto out;
	rc = pki_add_exts(crt, sign_crt, spec);
	if (rc)
		goto out;
	rc = -EPROTO;
	if (X509_sign(crt, sign_key, EVP_sha256()) <= 0)
		goto out;

	out->crt = crt;
	out->key = key;
	crt = NULL;
	key = NULL;
	rc = 0;
out:
	if (rc)
		pki_ssl_fail("cannot issue a certificate", spec->cn);
	X509_free(crt);
	EVP_PKEY_free(key);
	return rc;
}

/* Open @dir/@name for writing with exactly @mode, whatever the umask or an
 * earlier file's mode. */
static int pki_open(const char *dir, const char *name, mode_t mode, FILE **out)
{
	char path[PATH_MAX];
	int fd = -1, n, rc;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		rc = -ENAMETOOLONG;
		kg_err("pki: %s/%s: path too long", dir, name);
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 || fchmod(fd, mode) < 0) {
		rc = -errno;
		kg_err("pki: cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	*out = fdopen(fd, "w");
	if (!*out) {
		rc = -errno;
		kg_err("pki: %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* fclose @f, keeping the first error: @rc, else the close's. */
static int pki_close(FILE *f, const char *dir, const char *name, int rc)
{
	if (fclose(f) != 0 && !rc) {
		rc = -errno;
		kg_err("pki: cannot write %s/%s: %s", dir, name, strerror(errno));
	}
	return rc;
}

/* @dir/@name = the @n certificates of @certs, in order (PEM). */
static int pki_write_certs(const char *dir, const char *name, X509 *const *certs, size_t n)
{
	FILE *f = NULL;
	size_t i;
	int rc;

	rc = pki_open(dir, name, 0644, &f);
	if (rc)
		goto out;
	for (i = 0; i < n && !rc; i++)
		if (PEM_write_X509(f, certs[i]) != 1)
			rc = -EIO;
	if (rc)
		pki_ssl_fail("cannot write certificates", name);
	rc = pki_close(f, dir, name, rc);
out:
	return rc;
}

/* @dir/@name = @key, unencrypted PKCS#8 PEM, mode 0600. */
static int pki_write_key(const char *dir, const char *name, EVP_PKEY *key)
{
	FILE *f = NULL;
	int rc;

	rc = pki_open(dir, name, 0600, &f);
	if (rc)
		goto out;
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1) {
		pki_ssl_fail("cannot write a private key", name);
		rc = -EIO;
	}
	rc = pki_close(f, dir, name, rc);
out:
	return rc;
}

/* @base.pem = @id's certificate then the @n of @chain; @base.key = its key. */
static int pki_save(const char *dir, const char *base, const struct pki_ident *id,
		    X509 *const *chain, size_t n)
{
	X509 *certs[1 + PKI_MAX_CHAIN];
	char name[NAME_MAX + 1];
	size_t i;
	int rc = -EINVAL;

	if (n > PKI_MAX_CHAIN)
		goto out;
	certs[0] = id->crt;
	for (i = 0; i < n; i++)
		certs[1 + i] = chain[i];
	rc = -ENAMETOOLONG;
	if ((size_t)snprintf(name, sizeof(name), "%s.pem", base) >= sizeof(name))
		goto out;
	rc = pki_write_certs(dir, name, certs, 1 + n);
	if (rc)
		goto out;
	rc = -ENAMETOOLONG;
	if ((size_t)snprintf(name, sizeof(name), "%s.key", base) >= sizeof(name))
		goto out;
	rc = pki_write_key(dir, name, id->key);
out:
	return rc;
}

/* Issue for @spec under @issuer (NULL: self-signed) and save it as @base
 * with @chain after the leaf. Kept in @keep when non-NULL, else freed. */
static int pki_issue_save(const char *dir, const char *base, const struct pki_spec *spec,
			  const struct pki_ident *issuer, X509 *const *chain, size_t n,
			  struct pki_ident *keep)
{
	struct pki_ident id = { 0 };
	int rc;

	rc = pki_issue(&id, spec, issuer);
	if (rc)
		goto out;
	rc = pki_save(dir, base, &id, chain, n);
	if (rc)
		goto out;
	if (keep) {
		*keep = id;
		id.crt = NULL;
		id.key = NULL;
	}
out:
	pki_ident_free(&id);
	return rc;
}

/* A v2 CRL from @ca, lastUpdate now+@from, nextUpdate now+@to, CRL number
 * @number, revoking @revoked when non-NULL; written to @dir/@name. */
static int pki_write_crl(const char *dir, const char *name, const struct pki_ident *ca,
			 X509 *revoked, long from, long to, long number)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *last = NULL, *next = NULL;
	X509_REVOKED *entry = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *aki = NULL;
	X509V3_CTX ctx;
	FILE *f = NULL;
	int rc = -EPROTO;

	crl = X509_CRL_new();
	last = X509_time_adj_ex(NULL, 0, from, NULL);
	next = X509_time_adj_ex(NULL, 0, to, NULL);
	num = ASN1_INTEGER_new();
	if (!crl || !last || !next || !num)
		goto out;
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->crt)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, last) != 1 ||
	    X509_CRL_set1_nextUpdate(crl, next) != 1)
		goto out;
	if (revoked) {
		entry = X509_REVOKED_new();
		if (!entry ||
		    X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(revoked)) != 1 ||
		    X509_REVOKED_set_revocationDate(entry, last) != 1 ||
		    X509_CRL_add0_revoked(crl, entry) != 1)
			goto out;
		entry = NULL;	/* owned by the CRL now */
	}
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca->crt, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (!aki || X509_CRL_add_ext(crl, aki, -1) != 1 ||
	    ASN1_INTEGER_set(num, number) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		goto out;
	if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0)
		goto out;

	rc = pki_open(dir, name, 0644, &f);
	if (rc)
		goto out;
	if (PEM_write_X509_CRL(f, crl) != 1) {
		pki_ssl_fail("cannot write a CRL", name);
		rc = -EIO;
	}
	rc = pki_close(f, dir, name, rc);
out:
	if (rc == -EPROTO)
		pki_ssl_fail("cannot make a CRL", name);
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	X509_REVOKED_free(entry);
	ASN1_TIME_free(next);
	ASN1_TIME_free(last);
	X509_CRL_free(crl);
	return rc;
}

/* rsa-ca → rsa-client-ca → rsa-client, and rsa-server under rsa-ca. */
static int pki_test_rsa(const char *dir)
{
	static const struct pki_spec root_spec = PKI_CA_SPEC("ktlsgw test RSA root", true, -1);
	static const struct pki_spec ica_spec = PKI_CA_SPEC("ktlsgw test RSA client CA", true, 0);
	static const struct pki_spec client_spec = PKI_LEAF_SPEC("carol-rsa", PKI_ROLE_CLIENT, true);
	static const struct pki_spec server_spec = PKI_LEAF_SPEC("localhost", PKI_ROLE_SERVER, true);
	struct pki_ident root = { 0 }, ica = { 0 };
	int rc;

	rc = pki_issue_save(dir, "rsa-ca", &root_spec, NULL, NULL, 0, &root);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "rsa-client-ca", &ica_spec, &root, NULL, 0, &ica);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "rsa-client", &client_spec, &ica, &ica.crt, 1, NULL);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "rsa-server", &server_spec, &root, &root.crt, 1, NULL);
out:
	pki_ident_free(&ica);
	pki_ident_free(&root);
	return rc;
}

enum pki_signer { PKI_BY_CLIENT_CA, PKI_BY_ROOT, PKI_BY_SELF };

struct pki_client_job {
	struct pki_spec spec;
	enum pki_signer signer;
};

/* The odd clients under the demo root / client CA, an expired server
 * certificate, erin and the CRLs. */
static int pki_test_clients(const char *dir, const struct pki_ident *root,
			    const struct pki_ident *ica)
{
	static const struct pki_client_job jobs[] = {
		{ { "expired", PKI_ROLE_CLIENT, false, -30 * PKI_DAY, -1 * PKI_DAY, -1 },
		  PKI_BY_CLIENT_CA },
		{ { "notyet", PKI_ROLE_CLIENT, false, 10 * PKI_DAY, 40 * PKI_DAY, -1 },
		  PKI_BY_CLIENT_CA },
		{ PKI_LEAF_SPEC("serverauth", PKI_ROLE_CLIENT_SERVERAUTH, false), PKI_BY_CLIENT_CA },
		{ PKI_LEAF_SPEC("rootsigned", PKI_ROLE_CLIENT, false), PKI_BY_ROOT },
		{ PKI_LEAF_SPEC("selfsigned", PKI_ROLE_CLIENT, false), PKI_BY_SELF },
		{ PKI_LEAF_SPEC("carol", PKI_ROLE_CLIENT, false), PKI_BY_CLIENT_CA },
		{ PKI_LEAF_SPEC("dave", PKI_ROLE_CLIENT, false), PKI_BY_CLIENT_CA },
		/* an origin whose certificate has run out (backend_tls refusals) */
		{ { "origin-expired", PKI_ROLE_SERVER, false, -30 * PKI_DAY, -1 * PKI_DAY, -1 },
		  PKI_BY_ROOT },
	};
	static const struct pki_spec erin_spec = PKI_LEAF_SPEC("erin", PKI_ROLE_CLIENT, false);
	struct pki_ident erin = { 0 };
	const struct pki_ident *signer;
	X509 *const *chain;
	size_t i, n;
	int rc = 0;

	for (i = 0; i < sizeof(jobs) / sizeof(jobs[0]) && !rc; i++) {
		signer = NULL;
		chain = NULL;
		n = 0;
		if (jobs[i].signer == PKI_BY_CLIENT_CA) {
			signer = ica;
			chain = &ica->crt;
			n = 1;
		} else if (jobs[i].signer == PKI_BY_ROOT) {
			signer = root;
		}
		rc = pki_issue_save(dir, jobs[i].spec.cn, &jobs[i].spec, signer, chain, n, NULL);
	}
	if (rc)
		goto out;

	/* erin is revoked by the current CRL and by the stale one. */
	rc = pki_issue_save(dir, "erin", &erin_spec, ica, &ica->crt, 1, &erin);
	if (rc)
		goto out;
	rc = pki_write_crl(dir, "client-ca-stale.crl.pem", ica, erin.crt,
			   -30 * PKI_DAY, -1 * PKI_DAY, 1);
	if (rc)
		goto out;
	rc = pki_write_crl(dir, "client-ca.crl.pem", ica, erin.crt, -PKI_HOUR, 30 * PKI_DAY, 2);
	if (rc)
		goto out;
	rc = pki_write_crl(dir, "client-ca-empty.crl.pem", ica, NULL, -PKI_HOUR, 30 * PKI_DAY, 3);
out:
	pki_ident_free(&erin);
	return rc;
}

/* stranger-ca (an unrelated root) and its client "stranger". */
static int pki_test_stranger(const char *dir)
{
	static const struct pki_spec root_spec = PKI_CA_SPEC("stranger root", false, -1);
	static const struct pki_spec client_spec = PKI_LEAF_SPEC("stranger", PKI_ROLE_CLIENT, false);
	struct pki_ident root = { 0 };
	int rc;

	rc = pki_issue_save(dir, "stranger-ca", &root_spec, NULL, NULL, 0, &root);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "stranger", &client_spec, &root, NULL, 0, NULL);
out:
	pki_ident_free(&root);
	return rc;
}

/* deep root → deep-int1 → … → deep-int4 → "deep". */
static int pki_test_deep(const char *dir)
{
	static const struct pki_spec root_spec = PKI_CA_SPEC("deep root", false, -1);
	static const struct pki_spec client_spec = PKI_LEAF_SPEC("deep", PKI_ROLE_CLIENT, false);
	struct pki_ident root = { 0 }, ints[4] = { { 0 } };
	struct pki_spec int_spec = PKI_CA_SPEC(NULL, false, -1);
	X509 *chain[PKI_MAX_CHAIN];
	char cn[32];
	const int nints = (int)(sizeof(ints) / sizeof(ints[0]));
	int rc, i;

	rc = pki_issue(&root, &root_spec, NULL);
	for (i = 0; i < nints && !rc; i++) {
		snprintf(cn, sizeof(cn), "deep-int%d", i + 1);
		int_spec.cn = cn;
		int_spec.pathlen = nints - 1 - i;	/* CAs still allowed below this one */
		rc = pki_issue(&ints[i], &int_spec, i ? &ints[i - 1] : &root);
	}
	if (rc)
		goto out;

	/* deep.pem: leaf, int4, int3, int2, int1 */
	for (i = 0; i < nints; i++)
		chain[i] = ints[nints - 1 - i].crt;
	rc = pki_issue_save(dir, "deep", &client_spec, &ints[nints - 1], chain, (size_t)nints, NULL);
	if (rc)
		goto out;
	/* deep-ca.pem: root, int1, …, int4 */
	chain[0] = root.crt;
	for (i = 0; i < nints; i++)
		chain[1 + i] = ints[i].crt;
	rc = pki_write_certs(dir, "deep-ca.pem", chain, 1 + (size_t)nints);
	if (rc)
		goto out;
	rc = pki_save(dir, "deep-client-ca", &ints[nints - 1], NULL, 0);
	if (rc)
		goto out;
	rc = pki_save(dir, "deep-root", &root, NULL, 0);
out:
	for (i = nints - 1; i >= 0; i--)
		pki_ident_free(&ints[i]);
	pki_ident_free(&root);
	return rc;
}

int kg_pki_init(const char *dir, bool test_set)
{
	static const struct pki_spec root_spec = PKI_CA_SPEC("ktlsgw demo root CA", false, -1);
	static const struct pki_spec ica_spec = PKI_CA_SPEC("ktlsgw demo client CA", false, 0);
	static const struct pki_spec server_spec = PKI_LEAF_SPEC("localhost", PKI_ROLE_SERVER, false);
	static const struct pki_spec alice_spec = PKI_LEAF_SPEC("alice", PKI_ROLE_CLIENT, false);
	static const struct pki_spec bob_spec = PKI_LEAF_SPEC("bob", PKI_ROLE_CLIENT, true);
	struct pki_ident root = { 0 }, ica = { 0 }, alice = { 0 }, bob = { 0 };
	X509 *pair[2];
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		kg_err("pki: cannot create %s: %s", dir, strerror(errno));
		goto out;
	}

	{
		char abs[4096];

		pki_crl_uri[0] = '\0';
		if (realpath(dir, abs))
			snprintf(pki_crl_uri, sizeof(pki_crl_uri), "URI:file://%s/ca.crl.pem", abs);
	}
	rc = pki_issue_save(dir, "ca", &root_spec, NULL, NULL, 0, &root);
	if (rc)
		goto out;
	/* the root's CRL (nothing revoked), where server certificates point */
	rc = pki_write_crl(dir, "ca.crl.pem", &root, NULL, -PKI_HOUR, 30 * PKI_DAY, 1);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "client-ca", &ica_spec, &root, NULL, 0, &ica);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "server", &server_spec, &root, &root.crt, 1, NULL);
	pki_crl_uri[0] = '\0';	/* only the demo root's server certificate */
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "alice", &alice_spec, &ica, &ica.crt, 1, &alice);
	if (rc)
		goto out;
	rc = pki_issue_save(dir, "bob", &bob_spec, &ica, &ica.crt, 1, &bob);
	if (rc)
		goto out;
	pair[0] = ica.crt;
	pair[1] = root.crt;
	rc = pki_write_certs(dir, "client-ca-chain.pem", pair, 2);
	if (rc)
		goto out;
	/* Leaves alone, for fingerprints. */
	rc = pki_write_certs(dir, "alice-leaf.pem", &alice.crt, 1);
	if (rc)
		goto out;
	rc = pki_write_certs(dir, "bob-leaf.pem", &bob.crt, 1);
	if (rc || !test_set)
		goto out;

	rc = pki_test_rsa(dir);
	if (rc)
		goto out;
	rc = pki_test_clients(dir, &root, &ica);
	if (rc)
		goto out;
	rc = pki_test_stranger(dir);
	if (rc)
		goto out;
	rc = pki_test_deep(dir);
out:
	pki_ident_free(&bob);
	pki_ident_free(&alice);
	pki_ident_free(&ica);
	pki_ident_free(&root);
	return rc;
}
