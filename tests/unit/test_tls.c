/* cmocka tests for the listener TLS context (tls.c): whole handshakes over a
 * socketpair against kg_tls_ctx_new's context, so the verify callbacks,
 * the revocation hook and the configuration errors run as in the gateway,
 * without the event loop. Certificates come from the project's PKI. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "ktls.h"
#include "pki.h"
#include "revoke.h"
#include "tls.h"
#include "verify.h"
#include "kg_test.h"

static char dir[256];
static char path_buf[8][512];

static const char *P(int slot, const char *name)
{
	snprintf(path_buf[slot], sizeof(path_buf[slot]), "%s/%s", dir, name);
	return path_buf[slot];
}

static int setup(void **state)
{
	return kg_test_pki(dir, sizeof(dir), "tls", true);
}

static int teardown(void **state)
{
	return kg_test_rmdir(dir);
}

/* A listener as the config parser leaves it: client_ca the intermediate,
 * trust the root unless @trust is NULL (then client_ca is the anchor). */
static struct kg_tls_ctx *listener(const char *client_ca, const char *trust)
{
	struct kg_listener_conf l = {
		.name = "t", .verify_depth = 4, .tls_min = TLS1_2_VERSION, .tls_max = TLS1_3_VERSION,
	};
	struct kg_tls_ctx *t = NULL;
	char err[1024];

	l.cert = (char *)P(0, "server.pem");
	l.key = (char *)P(1, "server.key");
	l.client_ca = (char *)P(2, client_ca);
	l.trust = trust ? (char *)P(3, trust) : NULL;
	if (kg_tls_ctx_new(&l, "/etc/ktlsgw.conf", &t, err, sizeof(err)))
		fail_msg("kg_tls_ctx_new: %s", err);
	return t;
}

/*
 * One handshake: a client presenting @cert (the file's certificates, leaf
 * first, exactly as the file holds them) against @t. Returns 1 when the
 * server accepted, 0 when it refused; @hs as the server left it (the leaf
 * reference released).
 */
static int handshake(struct kg_tls_ctx *t, const char *cert, const char *key,
		     struct kg_hs_info *hs)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *srv, *cli;
	int sv[2], i, rs = -1, rc, e;

	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(cctx, P(4, cert)), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(cctx, P(5, key), SSL_FILETYPE_PEM), 1);
	/* send what the file holds, nothing completed from a store */
	SSL_CTX_set_mode(cctx, SSL_MODE_NO_AUTO_CHAIN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(hs, 0, sizeof(*hs));
	srv = kg_tls_new(t, sv[0], hs);
	cli = SSL_new(cctx);
	assert_true(srv && cli);
	SSL_set_fd(cli, sv[1]);
	SSL_set_connect_state(cli);
	for (i = 0; i < 200; i++) {
		rc = SSL_do_handshake(cli);
		e = SSL_get_error(cli, rc);
		rs = SSL_do_handshake(srv);
		if (rs == 1 || (rs <= 0 && SSL_get_error(srv, rs) == SSL_ERROR_SSL))
			break;
		if (rc <= 0 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
	}
	ERR_clear_error();
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	X509_free(hs->leaf);
	hs->leaf = NULL;
	return rs == 1;
}

/* Item: most clients (curl --cert leaf.pem, tlsfuzzer, s_client without
 * -cert_chain) send only their leaf. The listener holds the client CA
 * certificate, so a leaf it issued verifies up to `trust` without help. */
static void test_tls_leaf_only_client_completed_from_client_ca(void **state)
{
	struct kg_tls_ctx *t = listener("client-ca.pem", "ca.pem");
	struct kg_hs_info hs;

	if (!handshake(t, "alice-leaf.pem", "alice.key", &hs))
		fail_msg("leaf-only client refused: %s (%s)", kg_verify_reason(hs.verify_err),
			 X509_verify_cert_error_string(hs.verify_err));
	/* the full chain still works */
	assert_int_equal(handshake(t, "alice.pem", "alice.key", &hs), 1);
	kg_tls_ctx_put(t);
}

/* The client CA certificates help build the chain; they are no anchors:
 * the chain must still reach `trust`, and the leaf's direct issuer must
 * still be in client_ca. */
static void test_tls_client_ca_is_not_an_anchor(void **state)
{
	struct kg_tls_ctx *t = listener("client-ca.pem", "stranger-ca.pem");
	struct kg_hs_info hs;

	/* trust is an unrelated root: alice's chain (even completed) cannot reach it */
	assert_int_equal(handshake(t, "alice-leaf.pem", "alice.key", &hs), 0);
	assert_string_equal(kg_verify_reason(hs.verify_err), "unknown_ca");
	kg_tls_ctx_put(t);

	t = listener("client-ca.pem", "ca.pem");
	/* signed by the root directly: its issuer is not the client CA */
	assert_int_equal(handshake(t, "rootsigned.pem", "rootsigned.key", &hs), 0);
	assert_string_equal(kg_verify_reason(hs.verify_err), "unknown_ca");
	/* another CA's client */
	assert_int_equal(handshake(t, "stranger.pem", "stranger.key", &hs), 0);
	assert_string_equal(kg_verify_reason(hs.verify_err), "unknown_ca");
	kg_tls_ctx_put(t);
}

/* The padded-chain limit (leaf + verify_depth intermediates + a root)
 * counts what the client sent, not the client CA certificates the
 * gateway adds to complete the chain. */
static void test_tls_chain_limit_counts_the_client_chain(void **state)
{
	struct kg_tls_ctx *t = listener("deep-client-ca.pem", "deep-root.pem");
	struct kg_hs_info hs;
	char cmd[2200];

	/* leaf, 4 intermediates and the root: 6 = verify_depth + 2, the most allowed */
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", P(6, "deep.pem"), P(7, "deep-root.pem"),
		 P(4, "deep-full.pem"));
	assert_int_equal(system(cmd), 0);
	if (!handshake(t, "deep-full.pem", "deep.key", &hs))
		fail_msg("a chain of verify_depth + 2 refused: %s",
			 X509_verify_cert_error_string(hs.verify_err));
	/* one more is padding */
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' '%s' > '%s'", P(6, "deep.pem"),
		 P(7, "deep-root.pem"), P(5, "ca.pem"), P(4, "deep-padded.pem"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(handshake(t, "deep-padded.pem", "deep.key", &hs), 0);
	assert_int_equal(hs.verify_err, X509_V_ERR_CERT_CHAIN_TOO_LONG);
	kg_tls_ctx_put(t);
}

/* Item: a configuration error names FILE:LINE; with a path longer than the
 * caller's buffer the message is cut, never written past the buffer. The
 * buffer sits in a larger block whose tail must stay untouched. */
static void test_tls_config_error_fits_the_buffer(void **state)
{
	struct kg_listener_conf l = {
		.name = "t", .verify_depth = 4, .tls_min = TLS1_2_VERSION, .tls_max = TLS1_3_VERSION,
	};
	static const size_t errlen = 1024, guard = 4096;
	char *cfgpath = malloc(1101), *certpath = malloc(2001), *buf = malloc(errlen + guard);
	struct kg_tls_ctx *t = (void *)1;
	size_t i, g;

	assert_true(cfgpath && certpath && buf);
	memset(cfgpath, 'c', 1100);
	memcpy(cfgpath, "/etc/", 5);
	cfgpath[1100] = '\0';
	memset(certpath, 'x', 2000);
	memcpy(certpath, "/nonexistent/", 13);
	certpath[2000] = '\0';
	l.line[KG_LK_CERT] = 7;
	l.key = (char *)P(1, "server.key");
	l.client_ca = (char *)P(2, "client-ca.pem");
	/* a long config path, a long cert path, and both */
	for (i = 0; i < 3; i++) {
		const char *cp = i == 1 ? "/etc/k.conf" : cfgpath;

		l.cert = i == 0 ? (char *)P(0, "missing.pem") : certpath;
		memset(buf, 'G', errlen + guard);
		assert_int_not_equal(kg_tls_ctx_new(&l, cp, &t, buf, errlen), 0);
		assert_null(t);
		for (g = 0; g < guard && buf[errlen + g] == 'G'; g++)
			;
		if (g < guard)
			fail_msg("case %zu: the error message ran past its %zu-byte buffer", i, errlen);
		assert_non_null(memchr(buf, '\0', errlen));
		assert_int_equal(strncmp(buf, cp, strlen(cp) < errlen - 1 ? strlen(cp) : errlen - 1), 0);
	}
	free(buf);
	free(certpath);
	free(cfgpath);
}

/* ---- revocation at handshake time ------------------------------------------ */

static int fake_tag_rc, fake_lookup_rc, fake_tags, fake_lookups;

static int fake_tag(const struct kg_rev_hook *h, int fd, const uint8_t fp[KG_FP_LEN],
		    uint64_t conn_id)
{
	fake_tags++;
	return fake_tag_rc;
}

static int fake_lookup(const struct kg_rev_hook *h, const uint8_t fp[KG_FP_LEN])
{
	fake_lookups++;
	return fake_lookup_rc;
}

/* alice through a listener whose revocation hook answers @tag_rc / @lookup_rc */
static int with_revocation(bool best_effort, int tag_rc, int lookup_rc, struct kg_hs_info *hs)
{
	struct kg_rev_hook hook = {
		.best_effort = best_effort, .tag = fake_tag, .lookup = fake_lookup,
	};
	struct kg_tls_ctx *t = listener("client-ca.pem", "ca.pem");
	int ok;

	t->rev = &hook;
	fake_tag_rc = tag_rc;
	fake_lookup_rc = lookup_rc;
	fake_tags = fake_lookups = 0;
	ok = handshake(t, "alice.pem", "alice.key", hs);
	kg_tls_ctx_put(t);
	return ok;
}

static void test_tls_revocation_hook_answers(void **state)
{
	struct kg_hs_info hs;

	assert_int_equal(with_revocation(false, 0, 0, &hs), 1);
	assert_int_equal(fake_tags, 1);
	assert_int_equal(fake_lookups, 1);
	assert_int_equal(with_revocation(false, 0, 1, &hs), 0);
	assert_string_equal(kg_verify_reason(hs.verify_err), "certificate_revoked");
}

/* Item: under revocation = required a lookup that fails (or a socket that
 * cannot be tagged, so a later revocation could not cut it) refuses the
 * client: an unanswered check must not let a revoked certificate in. */
static void test_tls_revocation_required_fails_closed(void **state)
{
	struct kg_hs_info hs;

	if (with_revocation(false, 0, -EIO, &hs))
		fail_msg("revocation = required: a failed lookup let the client in");
	assert_string_equal(kg_verify_reason(hs.verify_err), "revocation_unavailable");
	assert_int_equal(hs.alert_sent, SSL_AD_HANDSHAKE_FAILURE);
	if (with_revocation(false, -ENOMEM, 0, &hs))
		fail_msg("revocation = required: an untagged socket was let in");
	assert_string_equal(kg_verify_reason(hs.verify_err), "revocation_unavailable");
	/* best-effort keeps serving: the operator chose availability */
	assert_int_equal(with_revocation(true, 0, -EIO, &hs), 1);
	assert_int_equal(with_revocation(true, -ENOMEM, 0, &hs), 1);
	/* but a certificate found revoked is refused in either mode */
	assert_int_equal(with_revocation(true, -ENOMEM, 1, &hs), 0);
	assert_string_equal(kg_verify_reason(hs.verify_err), "certificate_revoked");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_leaf_only_client_completed_from_client_ca),
		cmocka_unit_test(test_tls_client_ca_is_not_an_anchor),
		cmocka_unit_test(test_tls_chain_limit_counts_the_client_chain),
		cmocka_unit_test(test_tls_config_error_fits_the_buffer),
		cmocka_unit_test(test_tls_revocation_hook_answers),
		cmocka_unit_test(test_tls_revocation_required_fails_closed),
	};

	return cmocka_run_group_tests_name("tls", tests, setup, teardown);
}
