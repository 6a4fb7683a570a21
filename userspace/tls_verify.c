/*
 * What every handshake checks of the peer's certificate, called by OpenSSL
 * from the contexts tls.c builds: the client's chain completed from
 * client_ca, the direct-issuer rule, CRL staleness, the revocation tag and
 * lookup; and the origin's certificate kept for the log. Builds no context.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "revoke.h"
#include "tls.h"
#include "tls_int.h"
#include "verify.h"

/*
 * A tag or lookup that failed with @err (-errno). Under revocation =
 * required the client is refused (the reject line and its counter carry
 * reason=revocation_unavailable); under best-effort it is let through.
 * Returns the verify error to fail with, or X509_V_OK.
 */
static int kg_rev_failed(const struct kg_rev_hook *h, X509 *leaf, const char *what, int err)
{
	char desc[512];

	kg_cert_describe(leaf, desc, sizeof(desc));
	if (h->best_effort) {
		kg_warn("revocation: %s failed (%s) for %s; accepting it (revocation = best-effort)",
			what, strerror(-err), desc);
		return X509_V_OK;
	}
	kg_err("revocation: %s failed (%s) for %s; refusing the client (revocation = required): "
	       "check the BPF maps under the pin root, or set revocation = best-effort",
	       what, strerror(-err), desc);
	return KG_V_ERR_REVOCATION_UNAVAILABLE;
}

/*
 * Tag the socket first, then look the certificate up: a revocation that
 * lands between the two is still caught by the next scan, which finds the
 * tag. A socket that cannot be tagged could never be cut, so under
 * revocation = required it is refused like a failed lookup. Resumption is
 * off, so every connection passes here.
 */
static int kg_check_revoked(const struct kg_rev_hook *h, SSL *ssl, X509 *leaf,
			    struct kg_hs_info *hs)
{
	uint8_t fp[KG_FP_LEN];
	uint64_t id = hs ? hs->conn_id : 0;
	int rc, e = X509_V_OK;

	if (!leaf || kg_fp_x509(leaf, fp))
		return X509_V_ERR_UNSPECIFIED;
	if (h->rev || h->lookup) {
		rc = h->tag ? h->tag(h, SSL_get_fd(ssl), fp, id) :
		     h->rev ? kg_ebpf_tag(h->rev->bpf, SSL_get_fd(ssl), fp, id) : 0;
		if (rc)
			e = kg_rev_failed(h, leaf, "tagging the client socket", rc);
		rc = h->lookup ? h->lookup(h, fp) : kg_ebpf_revoked(h->rev->bpf, fp, NULL);
		/* a revoked certificate is named as such, whatever else failed */
		if (rc == 1)
			return X509_V_ERR_CERT_REVOKED;
		if (rc < 0 && e == X509_V_OK)
			e = kg_rev_failed(h, leaf, "the revoked-map lookup", rc);
		return e;
	}
	if (h->fallback && kg_revstate_find((struct kg_revstate *)h->fallback, fp))
		return X509_V_ERR_CERT_REVOKED;
	return X509_V_OK;
}

int kg_tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct kg_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct kg_hs_info *hs = SSL_get_app_data(ssl);
	int e;

	/* Keep the leaf so a rejection can be logged with its subject and
	 * fingerprint: OpenSSL drops it from the session when verification fails. */
	if (hs && !hs->leaf) {
		hs->leaf = X509_STORE_CTX_get0_cert(xs);
		if (hs->leaf)
			X509_up_ref(hs->leaf);
	}
	if (!ok && t->crl_stale_ok &&
	    X509_STORE_CTX_get_error(xs) == X509_V_ERR_CRL_HAS_EXPIRED) {
		/* crl_stale = warn: a CRL past nextUpdate still counts */
		kg_warn("CRL of \"%s\" is past its nextUpdate; accepting (crl_stale = warn): "
			"publish a fresh CRL and reload with SIGHUP",
			X509_NAME_oneline(X509_get_issuer_name(X509_STORE_CTX_get_current_cert(xs)),
					  (char[256]){0}, 256));
		X509_STORE_CTX_set_error(xs, X509_V_OK);
		return 1;
	}
	if (!ok) {
		if (hs && hs->verify_err == X509_V_OK)
			hs->verify_err = X509_STORE_CTX_get_error(xs);
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	/* The chain is good up to a trust anchor; now the stricter rules:
	 * the leaf's own issuer must be one the listener lists in client_ca */
	e = kg_verify_issuer(t->issuers, X509_STORE_CTX_get0_chain(xs));
	if (e == X509_V_OK && t->rev)
		e = kg_check_revoked(t->rev, ssl, X509_STORE_CTX_get0_cert(xs), hs);
	if (e != X509_V_OK) {
		X509_STORE_CTX_set_error(xs, e);
		if (hs && hs->verify_err == X509_V_OK)
			hs->verify_err = e;
		return 0;
	}
	return 1;
}

/*
 * Replaces OpenSSL's call to X509_verify_cert() for client certificates.
 * Most clients send only their leaf (curl --cert leaf.pem, s_client without
 * -cert_chain), so the listener's client_ca certificates join the chain
 * the client sent as untrusted chain-building material: they can complete
 * the path but anchor nothing, and the path must still end in `trust`.
 * (SSL_CTX_add0_chain_cert would not do: that chain is the one the server
 * sends, and adding them to the store would make them anchors.)
 */
int kg_tls_cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct kg_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct kg_hs_info *hs = SSL_get_app_data(ssl);
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs), *more = NULL;
	int i, n = sk_X509_num(sent), rc;

	/* A client that sends more certificates than any valid path could use
	 * (leaf, verify_depth intermediates, a root) is abusive even if a path
	 * exists: refuse it before building a chain from the padding. */
	if (n > SSL_get_verify_depth(ssl) + 2) {
		if (hs && !hs->leaf && X509_STORE_CTX_get0_cert(xs) &&
		    X509_up_ref(X509_STORE_CTX_get0_cert(xs)))
			hs->leaf = X509_STORE_CTX_get0_cert(xs);
		if (hs && hs->verify_err == X509_V_OK)
			hs->verify_err = X509_V_ERR_CERT_CHAIN_TOO_LONG;
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_CHAIN_TOO_LONG);
		return 0;
	}
	/* the client's certificates first: its own intermediates are tried first */
	more = sent ? sk_X509_dup(sent) : sk_X509_new_null();
	for (i = 0; more && i < sk_X509_num(t->issuers); i++)
		if (!sk_X509_push(more, sk_X509_value(t->issuers, i))) {
			sk_X509_free(more);
			more = NULL;
		}
	if (!more) {
		kg_log_ssl(KG_LOG_ERR, "client certificate check: out of memory");
		X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
		return 0;
	}
	X509_STORE_CTX_set0_untrusted(xs, more);
	rc = X509_verify_cert(xs);
	X509_STORE_CTX_set0_untrusted(xs, sent);
	sk_X509_free(more);	/* the certificates stay owned by t->issuers */
	return rc;
}

/* The origin's certificate: keep it and the first error, so a refusal can
 * be logged with what was wrong and whose certificate it was. */
int kg_tls_origin_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct kg_hs_info *hs = ssl ? SSL_get_app_data(ssl) : NULL;

	if (hs && !hs->leaf) {
		hs->leaf = X509_STORE_CTX_get0_cert(xs);
		if (hs->leaf)
			X509_up_ref(hs->leaf);
	}
	if (!ok && hs && hs->verify_err == X509_V_OK)
		hs->verify_err = X509_STORE_CTX_get_error(xs);
	return ok;
}

