/* cmocka tests for the client-certificate policy and fingerprints.
 * Certificates come from the project's own PKI generator, plus a fixed
 * fixture whose fingerprint was computed by `openssl x509 -fingerprint -sha256`. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki.h"
#include "verify.h"
#include "kg_test.h"

#ifndef KG_TEST_DATA
#define KG_TEST_DATA "tests/unit/data"
#endif

/* From `openssl x509 -in fixture.pem -noout -fingerprint -sha256`. */
static const char fixture_fp[] =
	"97642b200b10f2dbc8594b19426e9dbe107328ed24815aa72858512c3ad95f92";
static const char fixture_fp_colons[] =
	"97:64:2b:20:0b:10:f2:db:c8:59:4b:19:42:6e:9d:be:10:73:28:ed:24:81:5a:a7:28:58:51:2c:3a:d9:5f:92";

static char dir[256];

static int setup(void **state)
{
	return kg_test_pki(dir, sizeof(dir), "verify", true);
}

static int teardown(void **state)
{
	return kg_test_rmdir(dir);
}

static X509 *load1(const char *name)
{
	char path[512];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *loadkey(const char *name)
{
	char path[512];
	FILE *f;
	EVP_PKEY *k;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

static STACK_OF(X509) *stack2(X509 *a, X509 *b)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	assert_non_null(sk);
	if (a)
		sk_X509_push(sk, a);
	if (b)
		sk_X509_push(sk, b);
	return sk;
}

static void test_verify_fp_matches_openssl_cli(void **state)
{
	uint8_t fp[KG_FP_LEN];
	char hex[KG_FP_COLON_LEN];

	assert_int_equal(kg_fp_file(KG_TEST_DATA "/fixture.pem", fp), 0);
	kg_fp_format(fp, false, hex, sizeof(hex));
	assert_string_equal(hex, fixture_fp);
	kg_fp_format(fp, true, hex, sizeof(hex));
	assert_string_equal(hex, fixture_fp_colons);
	/* DER input gives the same bytes */
	memset(fp, 0, sizeof(fp));
	assert_int_equal(kg_fp_file(KG_TEST_DATA "/fixture.der", fp), 0);
	kg_fp_format(fp, false, hex, sizeof(hex));
	assert_string_equal(hex, fixture_fp);
}

static void test_verify_fp_file_errors(void **state)
{
	uint8_t fp[KG_FP_LEN];

	assert_int_equal(kg_fp_file("/nonexistent.pem", fp), -ENOENT);
	assert_int_equal(kg_fp_file(KG_TEST_DATA "/../test_verify.c", fp), -EPROTO);
}

static void test_verify_fp_parse_forms(void **state)
{
	uint8_t want[KG_FP_LEN], got[KG_FP_LEN];
	char upper[KG_FP_COLON_LEN], buf[200];
	size_t i;

	assert_int_equal(kg_fp_parse(fixture_fp, want), 0);
	assert_int_equal(kg_fp_parse(fixture_fp_colons, got), 0);
	assert_memory_equal(want, got, KG_FP_LEN);
	for (i = 0; i <= strlen(fixture_fp_colons); i++)
		upper[i] = (char)toupper((unsigned char)fixture_fp_colons[i]);
	assert_int_equal(kg_fp_parse(upper, got), 0);
	assert_memory_equal(want, got, KG_FP_LEN);
	snprintf(buf, sizeof(buf), "sha256 Fingerprint=%s\n", upper);
	assert_int_equal(kg_fp_parse(buf, got), 0);
	assert_memory_equal(want, got, KG_FP_LEN);
	snprintf(buf, sizeof(buf), "  sha256:%s  ", fixture_fp);
	assert_int_equal(kg_fp_parse(buf, got), 0);
	assert_memory_equal(want, got, KG_FP_LEN);
}

static void test_verify_fp_parse_rejects(void **state)
{
	uint8_t fp[KG_FP_LEN];
	char buf[200];

	assert_int_equal(kg_fp_parse("", fp), -EINVAL);
	assert_int_equal(kg_fp_parse(NULL, fp), -EINVAL);
	assert_int_equal(kg_fp_parse("abcd", fp), -EINVAL);
	snprintf(buf, sizeof(buf), "%.62s", fixture_fp);		/* too short */
	assert_int_equal(kg_fp_parse(buf, fp), -EINVAL);
	snprintf(buf, sizeof(buf), "%s00", fixture_fp);		/* too long */
	assert_int_equal(kg_fp_parse(buf, fp), -EINVAL);
	snprintf(buf, sizeof(buf), "%s", fixture_fp);
	buf[10] = 'g';						/* not hex */
	assert_int_equal(kg_fp_parse(buf, fp), -EINVAL);
	snprintf(buf, sizeof(buf), "%s", fixture_fp_colons);
	buf[2] = '-';						/* wrong separator */
	assert_int_equal(kg_fp_parse(buf, fp), -EINVAL);
}

static void test_verify_issuer_listed_ok(void **state)
{
	X509 *leaf = load1("alice.pem"), *ica = load1("client-ca.pem");
	STACK_OF(X509) *issuers = stack2(X509_dup(ica), NULL);
	STACK_OF(X509) *chain = stack2(leaf, ica);

	assert_int_equal(kg_verify_issuer(issuers, chain), X509_V_OK);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(issuers, X509_free);
}

/* The bug nginx, HAProxy and stunnel share: a leaf signed directly by the
 * root when only the intermediate is the configured client CA. */
static void test_verify_issuer_root_signed_rejected(void **state)
{
	X509 *leaf = load1("rootsigned.pem"), *root = load1("ca.pem"), *ica = load1("client-ca.pem");
	STACK_OF(X509) *issuers = stack2(ica, NULL);
	STACK_OF(X509) *chain = stack2(leaf, root);

	assert_int_equal(kg_verify_issuer(issuers, chain), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_string_equal(kg_verify_reason(kg_verify_issuer(issuers, chain)), "unknown_ca");
	/* Listing the root too makes it an allowed issuer. */
	sk_X509_push(issuers, X509_dup(root));
	assert_int_equal(kg_verify_issuer(issuers, chain), X509_V_OK);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(issuers, X509_free);
}

static void test_verify_issuer_reissued_ca_accepted(void **state)
{
	X509 *leaf = load1("alice.pem"), *ica = load1("client-ca.pem");
	X509 *reissued = X509_dup(ica);
	EVP_PKEY *rootkey = loadkey("ca.key");
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	STACK_OF(X509) *issuers, *chain;

	/* Same subject and key, new serial and signature: a renewed CA cert. */
	ASN1_INTEGER_set(serial, 4242);
	X509_set_serialNumber(reissued, serial);
	assert_true(X509_sign(reissued, rootkey, EVP_sha256()) > 0);
	assert_int_not_equal(X509_cmp(reissued, ica), 0);
	issuers = stack2(reissued, NULL);
	chain = stack2(leaf, ica);
	assert_int_equal(kg_verify_issuer(issuers, chain), X509_V_OK);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(issuers, X509_free);
	ASN1_INTEGER_free(serial);
	EVP_PKEY_free(rootkey);
}

static void test_verify_issuer_other_ca_same_name_rejected(void **state)
{
	/* stranger-ca has another key: a look-alike subject must not pass. */
	X509 *leaf = load1("stranger.pem"), *sca = load1("stranger-ca.pem"), *ica = load1("client-ca.pem");
	STACK_OF(X509) *issuers = stack2(ica, NULL);
	STACK_OF(X509) *chain = stack2(leaf, sca);

	X509_set_subject_name(sca, X509_get_subject_name(ica));
	assert_int_equal(kg_verify_issuer(issuers, chain), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(issuers, X509_free);
}

static void test_verify_issuer_short_chain_rejected(void **state)
{
	X509 *leaf = load1("selfsigned.pem");
	STACK_OF(X509) *issuers = stack2(X509_dup(leaf), NULL);
	STACK_OF(X509) *chain = stack2(leaf, NULL);

	assert_int_not_equal(kg_verify_issuer(issuers, chain), X509_V_OK);
	assert_int_not_equal(kg_verify_issuer(issuers, NULL), X509_V_OK);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(issuers, X509_free);
}

static void test_verify_reason_table(void **state)
{
	static const struct { int err; const char *reason; } t[] = {
		{ X509_V_OK, "ok" },
		{ X509_V_ERR_CERT_HAS_EXPIRED, "certificate_expired" },
		{ X509_V_ERR_CERT_NOT_YET_VALID, "bad_certificate" },
		{ X509_V_ERR_CERT_REVOKED, "certificate_revoked" },
		{ KG_V_ERR_REVOCATION_UNAVAILABLE, "revocation_unavailable" },
		{ X509_V_ERR_INVALID_PURPOSE, "unsupported_certificate" },
		{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "unknown_ca" },
		{ X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "unknown_ca" },
		{ X509_V_ERR_CERT_CHAIN_TOO_LONG, "unknown_ca" },
		{ X509_V_ERR_CERT_SIGNATURE_FAILURE, "bad_certificate" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(kg_verify_reason(t[i].err), t[i].reason);
}

static void test_verify_describe_names_everything(void **state)
{
	X509 *leaf = load1("alice.pem");
	uint8_t fp[KG_FP_LEN];
	char desc[1024], hex[KG_FP_HEX_LEN], cn[64];

	kg_cert_describe(leaf, desc, sizeof(desc));
	assert_int_equal(kg_fp_x509(leaf, fp), 0);
	kg_fp_format(fp, false, hex, sizeof(hex));
	assert_non_null(strstr(desc, "subject=\"CN=alice"));
	assert_non_null(strstr(desc, "issuer=\"CN=ktlsgw demo client CA"));
	assert_non_null(strstr(desc, "serial="));
	assert_non_null(strstr(desc, hex));
	kg_cert_cn(leaf, cn, sizeof(cn));
	assert_string_equal(cn, "alice");
	X509_free(leaf);
}

static void test_verify_certs_load(void **state)
{
	STACK_OF(X509) *sk = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s/client-ca-chain.pem", dir);
	assert_int_equal(kg_certs_load(path, &sk), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	snprintf(path, sizeof(path), "%s/alice.key", dir);
	assert_int_equal(kg_certs_load(path, &sk), -EPROTO);
	assert_null(sk);
	assert_int_equal(kg_certs_load("/nonexistent", &sk), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_fp_matches_openssl_cli),
		cmocka_unit_test(test_verify_fp_file_errors),
		cmocka_unit_test(test_verify_fp_parse_forms),
		cmocka_unit_test(test_verify_fp_parse_rejects),
		cmocka_unit_test(test_verify_issuer_listed_ok),
		cmocka_unit_test(test_verify_issuer_root_signed_rejected),
		cmocka_unit_test(test_verify_issuer_reissued_ca_accepted),
		cmocka_unit_test(test_verify_issuer_other_ca_same_name_rejected),
		cmocka_unit_test(test_verify_issuer_short_chain_rejected),
		cmocka_unit_test(test_verify_reason_table),
		cmocka_unit_test(test_verify_describe_names_everything),
		cmocka_unit_test(test_verify_certs_load),
	};

	return cmocka_run_group_tests_name("verify", tests, setup, teardown);
}
