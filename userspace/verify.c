/*
 * Certificate facts as pure functions: SHA-256 fingerprints and their hex
 * forms, the direct-issuer rule, names for log lines, reading PEM bundles.
 * No sockets; unit-tested directly.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "verify.h"

int kg_fp_x509(X509 *x, uint8_t fp[KG_FP_LEN])
{
	unsigned int n = KG_FP_LEN;

	if (!x || X509_digest(x, EVP_sha256(), fp, &n) != 1 || n != KG_FP_LEN)
		return -EPROTO;
	return 0;
}

int kg_fp_file(const char *path, uint8_t fp[KG_FP_LEN])
{
	X509 *x = NULL;
	BIO *b;
	int rc;

	b = BIO_new_file(path, "rb");
	if (!b)
		return errno ? -errno : -ENOENT;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!x) {
		ERR_clear_error();
		(void)BIO_reset(b);
		x = d2i_X509_bio(b, NULL);
	}
	ERR_clear_error();
	rc = x ? kg_fp_x509(x, fp) : -EPROTO;
	X509_free(x);
	BIO_free(b);
	return rc;
}

static bool kg_same_ca(X509 *a, X509 *b)
{
	EVP_PKEY *ka, *kb;

	if (!X509_cmp(a, b))
		return true;
	if (X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)))
		return false;
	ka = X509_get0_pubkey(a);
	kb = X509_get0_pubkey(b);
	return ka && kb && EVP_PKEY_eq(ka, kb) == 1;
}

int kg_verify_issuer(STACK_OF(X509) *issuers, STACK_OF(X509) *chain)
{
	X509 *issuer;
	int i;

	if (!chain || sk_X509_num(chain) < 2)
		return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
	issuer = sk_X509_value(chain, 1);
	for (i = 0; i < sk_X509_num(issuers); i++)
		if (kg_same_ca(sk_X509_value(issuers, i), issuer))
			return X509_V_OK;
	return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
}

const char *kg_verify_reason(int e)
{
	switch (e) {
	case X509_V_OK:
		return "ok";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "certificate_expired";
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_NOT_YET_VALID:
		return "crl_unusable";
	case X509_V_ERR_CERT_REVOKED:
		return "certificate_revoked";
	case KG_V_ERR_REVOCATION_UNAVAILABLE:
		return "revocation_unavailable";
	case X509_V_ERR_INVALID_PURPOSE:
		return "unsupported_certificate";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return "unknown_ca";
	default:
		return "bad_certificate";
	}
}

static void kg_name_oneline(X509_NAME *n, char *out, size_t outsz)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;

	if (!outsz)
		return;
	out[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &data);
		if (len > 0)
			snprintf(out, outsz, "%.*s", (int)len, data);
	}
	BIO_free(b);
}

void kg_cert_cn(X509 *x, char *out, size_t outsz)
{
	X509_NAME *n = X509_get_subject_name(x);
	int idx = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;

	if (!outsz)
		return;
	out[0] = '\0';
	if (idx < 0) {
		kg_name_oneline(n, out, outsz);
		return;
	}
	if (ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx))) >= 0) {
		snprintf(out, outsz, "%s", utf8);
		OPENSSL_free(utf8);
	}
}

void kg_cert_describe(X509 *x, char *out, size_t outsz)
{
	char subj[256], iss[256], serial[80] = "?", fph[KG_FP_HEX_LEN] = "?";
	uint8_t fp[KG_FP_LEN];
	BIGNUM *bn;

	kg_name_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	kg_name_oneline(X509_get_issuer_name(x), iss, sizeof(iss));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	if (bn) {
		char *h = BN_bn2hex(bn);

		if (h) {
			snprintf(serial, sizeof(serial), "%s", h);
			OPENSSL_free(h);
		}
		BN_free(bn);
	}
	if (!kg_fp_x509(x, fp))
		kg_fp_format(fp, false, fph, sizeof(fph));
	snprintf(out, outsz, "subject=\"%s\" issuer=\"%s\" serial=%s sha256=%s", subj, iss, serial, fph);
}

int kg_certs_load(const char *path, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = NULL;
	X509 *x;
	BIO *b;
	int rc = -EPROTO;

	*out = NULL;
	errno = 0;
	b = BIO_new_file(path, "r");
	if (!b)
		return errno ? -errno : -ENOENT;
	sk = sk_X509_new_null();
	if (!sk)
		goto out;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			goto out;
		}
	}
	/* The loop ends on "no start line": that is the normal end of file. */
	ERR_clear_error();
	if (sk_X509_num(sk) > 0) {
		*out = sk;
		sk = NULL;
		rc = 0;
	}
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	return rc;
}
