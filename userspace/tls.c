/*
 * The TLS contexts of a listener: the server context (and one per [sni]
 * group) and the client context toward the origin, built from the
 * configuration. The per-handshake checks they call are tls_verify.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "tls_int.h"
#include "revoke.h"
#include "verify.h"

/* Drain the OpenSSL error queue into @buf after its first @used bytes (for
 * config errors). The whole queue is drained even when nothing more fits. */
static void kg_ssl_errstr(char *buf, size_t len, size_t used)
{
	unsigned long e;
	char s[256];
	int n;

	while ((e = ERR_get_error()) != 0) {
		if (used + 3 >= len)
			continue;
		ERR_error_string_n(e, s, sizeof(s));
		n = snprintf(buf + used, len - used, " (%s)", s);
		used = n < 0 ? len : used + (size_t)n;
	}
}

/*
 * "CFGPATH:LINE: message (OpenSSL errors)" into @err. Paths come from the
 * operator and can be longer than @errlen: snprintf's return value is what
 * it wanted to write, so each step continues from what was really written.
 */
static void kg_cfgerr(char *err, size_t errlen, const char *cfgpath, unsigned line,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void kg_cfgerr(char *err, size_t errlen, const char *cfgpath, unsigned line,
		      const char *fmt, ...)
{
	va_list ap;
	size_t used;
	int n;

	if (!errlen)
		return;
	n = snprintf(err, errlen, "%s:%u: ", cfgpath, line);
	used = n < 0 ? 0 : (size_t)n;
	if (used < errlen) {
		va_start(ap, fmt);
		n = vsnprintf(err + used, errlen - used, fmt, ap);
		va_end(ap);
		used = n < 0 ? errlen : used + (size_t)n;
	}
	kg_ssl_errstr(err, errlen, used < errlen ? used : errlen);
}

#define KG_CFGERR(l, key, ...) kg_cfgerr(err, errlen, cfgpath, (l)->line[key], __VA_ARGS__)

/* Add every CRL of a PEM file (or the one of a DER file) to @st. Returns
 * how many, or -errno. */
static int kg_crls_load(X509_STORE *st, const char *path)
{
	X509_CRL *crl;
	BIO *b = BIO_new_file(path, "rb");
	int n = 0;

	if (!b)
		return -ENOENT;
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_crl(st, crl) == 1)
			n++;
		X509_CRL_free(crl);
	}
	if (!n) {
		ERR_clear_error();
		(void)BIO_reset(b);
		crl = d2i_X509_CRL_bio(b, NULL);
		if (crl && X509_STORE_add_crl(st, crl) == 1)
			n++;
		X509_CRL_free(crl);
	}
	ERR_clear_error();
	BIO_free(b);
	return n;
}

static void kg_info_cb(const SSL *ssl, int where, int ret)
{
	struct kg_hs_info *hs = SSL_get_app_data(ssl);

	if (!hs || !(where & SSL_CB_ALERT))
		return;
	if (where & SSL_CB_WRITE) {
		if (hs->alert_sent < 0)
			hs->alert_sent = ret & 0xff;
	} else if (hs->alert_rcvd < 0) {
		hs->alert_rcvd = ret & 0xff;
	}
}

void kg_tls_ctx_put(struct kg_tls_ctx *t)
{
	size_t i;

	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < t->n_sni; i++)
		kg_tls_ctx_put(t->sni[i]);
	free(t->sni);
	free(t->sni_names);
	SSL_CTX_free(t->origin);
	SSL_CTX_free(t->ctx);
	sk_X509_pop_free(t->issuers, X509_free);
	free(t);
}

static int kg_store_add_file(X509_STORE *st, const char *path, STACK_OF(X509) **keep)
{
	STACK_OF(X509) *sk;
	int i, rc;

	rc = kg_certs_load(path, &sk);
	if (rc)
		return rc;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (X509_STORE_add_cert(st, sk_X509_value(sk, i)) != 1) {
			sk_X509_pop_free(sk, X509_free);
			return -EPROTO;
		}
	if (keep)
		*keep = sk;
	else
		sk_X509_pop_free(sk, X509_free);
	return 0;
}

struct kg_tls_ctx *kg_tls_sni_lookup(struct kg_tls_ctx *t, const char *host)
{
	size_t i;

	if (!host)
		return NULL;
	for (i = 0; i < t->n_sni; i++)
		if (t->sni_names[i][0] != '*' && kg_server_name_match(t->sni_names[i], host))
			return t->sni[i];
	for (i = 0; i < t->n_sni; i++)
		if (t->sni_names[i][0] == '*' && kg_server_name_match(t->sni_names[i], host))
			return t->sni[i];
	return NULL;
}

/*
 * ClientHello callback point for SNI: move the handshake to the group's
 * context. That swaps the certificate, the trust store, the client CA names
 * sent in CertificateRequest and (through the context's app data) the
 * allowed issuers the verify callback checks. Resumption is off, so no
 * session made under one group can be resumed under another. A name that
 * matches no group gets the listener's own certificate and client CA.
 */
static int kg_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct kg_tls_ctx *g = kg_tls_sni_lookup(arg, SSL_get_servername(ssl,
							TLSEXT_NAMETYPE_host_name));

	if (!g)
		return SSL_TLSEXT_ERR_OK;
	if (SSL_set_SSL_CTX(ssl, g->ctx) != g->ctx) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	/* the verify mode (client_auth) and depth live in the SSL itself,
	 * copied at SSL_new */
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(g->ctx), SSL_CTX_get_verify_callback(g->ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(g->ctx));
	return SSL_TLSEXT_ERR_OK;
}

static int kg_tls_ctx_build(const struct kg_listener_conf *l, const char *cfgpath,
			    struct kg_tls_ctx **out, char *err, size_t errlen);

/* A private key others can read is as good as published. 0, or -EINVAL
 * with @err set. */
static int kg_key_private(const struct kg_listener_conf *l, enum kg_lkey key, const char *path,
			  const char *cfgpath, char *err, size_t errlen)
{
	struct stat ks;

	if (stat(path, &ks) || !(ks.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)))
		return 0;
	KG_CFGERR(l, key, "%s = %s is %s by other users (mode %04o); run `chmod 600 %s` (or 640 "
		  "with a dedicated group)", kg_lkey_name(key), path,
		  ks.st_mode & S_IROTH ? "readable" : "writable", (unsigned)(ks.st_mode & 07777), path);
	return -EINVAL;
}

/* What a listener's server context and its client context toward the
 * origin set up alike, each from its own keys. */
struct kg_ctx_role {
	int tls_min, tls_max;
	const char *cert, *key, *ciphers, *ciphersuites;
	enum kg_lkey k_min, k_max, k_cert, k_key, k_ciphers, k_ciphersuites;
	const char *cert_is;		/* whose certificate @cert is, for messages */
};

/* Versions and our certificate and key (if any). 0, or -EINVAL with
 * "FILE:LINE: cause; next step" in @err. */
static int kg_ctx_identity(SSL_CTX *ctx, const struct kg_listener_conf *l,
			   const struct kg_ctx_role *r, const char *cfgpath, char *err, size_t errlen)
{
	if (SSL_CTX_set_min_proto_version(ctx, r->tls_min) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, r->tls_max) != 1) {
		KG_CFGERR(l, l->line[r->k_min] ? r->k_min : r->k_max,
			  "cannot set the TLS version range");
		return -EINVAL;
	}
	if (r->cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, r->cert) != 1) {
			KG_CFGERR(l, r->k_cert, "%s = %s: not a PEM certificate chain; give %s "
				  "followed by its intermediates", kg_lkey_name(r->k_cert), r->cert,
				  r->cert_is);
			return -EINVAL;
		}
		if (kg_key_private(l, r->k_key, r->key, cfgpath, err, errlen))
			return -EINVAL;
		/* OpenSSL checks the pair while loading: say which mistake it is */
		if (SSL_CTX_use_PrivateKey_file(ctx, r->key, SSL_FILETYPE_PEM) != 1 &&
		    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
			KG_CFGERR(l, r->k_key, "%s = %s: cannot load the private key (PEM, "
				  "unencrypted)", kg_lkey_name(r->k_key), r->key);
			return -EINVAL;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			ERR_clear_error();
			KG_CFGERR(l, r->k_key, "%s = %s does not match %s = %s; pair each certificate "
				  "with its own key", kg_lkey_name(r->k_key), r->key,
				  kg_lkey_name(r->k_cert), r->cert);
			return -EINVAL;
		}
	}
	return 0;
}

/* Cipher lists and modes, last: 0 or -EINVAL as kg_ctx_identity. */
static int kg_ctx_ciphers(SSL_CTX *ctx, const struct kg_listener_conf *l,
			  const struct kg_ctx_role *r, const char *cfgpath, char *err, size_t errlen)
{
	/* TLS 1.2 default: forward-secret AEAD suites only (no CBC: LUCKY13) */
	if (!r->ciphers && SSL_CTX_set_cipher_list(ctx, KG_TLS12_DEFAULT_CIPHERS) != 1) {
		KG_CFGERR(l, KG_LK_SECTION, "the default TLS 1.2 cipher list is not usable here");
		return -EINVAL;
	}
	if (r->ciphers && SSL_CTX_set_cipher_list(ctx, r->ciphers) != 1) {
		KG_CFGERR(l, r->k_ciphers, "%s = %s: no usable TLS 1.2 cipher; see "
			  "`openssl ciphers -v`", kg_lkey_name(r->k_ciphers), r->ciphers);
		return -EINVAL;
	}
	if (r->ciphersuites && SSL_CTX_set_ciphersuites(ctx, r->ciphersuites) != 1) {
		KG_CFGERR(l, r->k_ciphersuites, "%s = %s: no usable TLS 1.3 suite; e.g. "
			  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
			  kg_lkey_name(r->k_ciphersuites), r->ciphersuites);
		return -EINVAL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
	SSL_CTX_set_info_callback(ctx, kg_info_cb);
	return 0;
}

/*
 * The client context toward the origin (backend_tls = on): verify the
 * origin against backend_ca (or the system's store) and its name, present
 * backend_cert if given. Returns 0 with *@out owned by the caller, or
 * -EINVAL / -ENOMEM with "FILE:LINE: cause; next step" in @err.
 */
static int kg_tls_origin_build(const struct kg_listener_conf *l, const char *cfgpath,
			       SSL_CTX **out, char *err, size_t errlen)
{
	const struct kg_origin_conf *o = &l->origin;
	const struct kg_ctx_role role = {
		.tls_min = o->tls_min, .tls_max = o->tls_max, .cert = o->cert, .key = o->key,
		.ciphers = o->ciphers, .ciphersuites = o->ciphersuites,
		.k_min = KG_LK_BACKEND_TLS_MIN, .k_max = KG_LK_BACKEND_TLS_MAX,
		.k_cert = KG_LK_BACKEND_CERT, .k_key = KG_LK_BACKEND_KEY,
		.k_ciphers = KG_LK_BACKEND_CIPHERS,
		.k_ciphersuites = KG_LK_BACKEND_CIPHERSUITES, .cert_is = "our client certificate",
	};
	X509_VERIFY_PARAM *vp;
	SSL_CTX *ctx;
	int rc = -EINVAL;

	*out = NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS client context");
		kg_ssl_errstr(err, errlen, strlen(err));
		return -ENOMEM;
	}
	if (o->ca) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
			KG_CFGERR(l, KG_LK_BACKEND_CA, "backend_ca = %s: no PEM certificate found; give "
				  "the CA certificate(s) that issue the origin's certificate", o->ca);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		KG_CFGERR(l, KG_LK_BACKEND_TLS, "no backend_ca and the system's trust store cannot "
			  "be loaded; add backend_ca = FILE");
		goto fail;
	}
	if (kg_ctx_identity(ctx, l, &role, cfgpath, err, errlen) ||
	    kg_ctx_ciphers(ctx, l, &role, cfgpath, err, errlen))
		goto fail;
	/* The origin must prove who it is: a chain to backend_ca, a server
	 * certificate, dates, and the name (or address) we dialled. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, kg_tls_origin_verify_cb);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	vp = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if ((o->name[0] && X509_VERIFY_PARAM_set1_host(vp, o->name, 0) != 1) ||
	    (!o->name[0] && o->ip[0] && X509_VERIFY_PARAM_set1_ip_asc(vp, o->ip) != 1)) {
		KG_CFGERR(l, o->name[0] && l->line[KG_LK_BACKEND_NAME] ? KG_LK_BACKEND_NAME :
			  KG_LK_BACKEND, "cannot check the origin's certificate for '%s'",
			  o->name[0] ? o->name : o->ip);
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return rc;
}

/* What every new SSL of either role starts with: a clean @hs as its app
 * data, and read-ahead (several records per recv(2), fewer syscalls on bulk
 * transfers) only where no kTLS offload may follow: a record read ahead
 * would sit in OpenSSL's buffer, out of the kernel's reach. Decided here,
 * per SSL, so kg_ktls_ctx_setup may run before or after the context is
 * built. */
static void kg_tls_ssl_start(SSL *ssl, struct kg_hs_info *hs)
{
	hs->verify_err = X509_V_OK;
	hs->alert_sent = -1;
	hs->alert_rcvd = -1;
	hs->ssl_reason = 0;
	hs->leaf = NULL;
	SSL_set_read_ahead(ssl, !(SSL_CTX_get_options(SSL_get_SSL_CTX(ssl)) & SSL_OP_ENABLE_KTLS));
	SSL_set_app_data(ssl, hs);
}

SSL *kg_tls_origin_new(struct kg_tls_ctx *t, int fd, struct kg_hs_info *hs)
{
	const struct kg_origin_conf *o = t->origin_conf;
	SSL *ssl = SSL_new(t->origin);

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 ||
	    (o->name[0] && SSL_set_tlsext_host_name(ssl, o->name) != 1)) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	kg_tls_ssl_start(ssl, hs);
	SSL_set_connect_state(ssl);
	return ssl;
}

/* The listener's context with only the origin leg (tls = off). */
static int kg_tls_ctx_plain(const struct kg_listener_conf *l, struct kg_tls_ctx **out)
{
	struct kg_tls_ctx *t = calloc(1, sizeof(*t));

	*out = t;
	if (!t)
		return -ENOMEM;
	t->refs = 1;
	return 0;
}

int kg_tls_ctx_new(const struct kg_listener_conf *l, const char *cfgpath,
		   struct kg_tls_ctx **out, char *err, size_t errlen)
{
	struct kg_tls_ctx *t;
	size_t i;
	int rc;

	rc = l->tls_off ? kg_tls_ctx_plain(l, &t) : kg_tls_ctx_build(l, cfgpath, &t, err, errlen);
	if (!rc && l->origin.on) {
		rc = kg_tls_origin_build(l, cfgpath, &t->origin, err, errlen);
		t->origin_conf = &l->origin;
		if (rc) {
			kg_tls_ctx_put(t);
			t = NULL;
		}
	}
	if (rc || !l->n_sni) {
		*out = t;
		return rc;
	}
	t->sni = calloc(l->n_sni, sizeof(*t->sni));
	t->sni_names = calloc(l->n_sni, sizeof(*t->sni_names));
	if (!t->sni || !t->sni_names) {
		kg_tls_ctx_put(t);
		*out = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < l->n_sni; i++) {
		rc = kg_tls_ctx_build(&l->sni[i], cfgpath, &t->sni[t->n_sni], err, errlen);
		if (rc) {
			kg_tls_ctx_put(t);
			*out = NULL;
			return rc;
		}
		snprintf(t->sni_names[t->n_sni], sizeof(t->sni_names[0]), "%s",
			 l->sni[i].server_name);
		t->sni[t->n_sni]->server_name = t->sni_names[t->n_sni];
		t->n_sni++;
	}
	SSL_CTX_set_tlsext_servername_callback(t->ctx, kg_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
	*out = t;
	return 0;
}

static int kg_tls_ctx_build(const struct kg_listener_conf *l, const char *cfgpath,
			    struct kg_tls_ctx **out, char *err, size_t errlen)
{
	const struct kg_ctx_role role = {
		.tls_min = l->tls_min, .tls_max = l->tls_max, .cert = l->cert, .key = l->key,
		.ciphers = l->ciphers, .ciphersuites = l->ciphersuites,
		.k_min = KG_LK_TLS_MIN, .k_max = KG_LK_TLS_MAX, .k_cert = KG_LK_CERT, .k_key = KG_LK_KEY, .k_ciphers = KG_LK_CIPHERS,
		.k_ciphersuites = KG_LK_CIPHERSUITES, .cert_is = "the server certificate",
	};
	STACK_OF(X509_NAME) *names = NULL;
	struct kg_tls_ctx *t;
	X509_STORE *st;
	int i, rc = -EINVAL;

	*out = NULL;
	ERR_clear_error();
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->refs = 1;
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx) {
		snprintf(err, errlen, "cannot create a TLS context");
		kg_ssl_errstr(err, errlen, strlen(err));
		rc = -ENOMEM;
		goto fail;
	}
	SSL_CTX_set_app_data(t->ctx, t);
	if (kg_ctx_identity(t->ctx, l, &role, cfgpath, err, errlen))
		goto fail;
	st = SSL_CTX_get_cert_store(t->ctx);
	rc = kg_certs_load(l->client_ca, &t->issuers);
	if (rc) {
		KG_CFGERR(l, KG_LK_CLIENT_CA, "client_ca = %s: no PEM certificate found (%s); give "
			  "the CA certificate(s) that issue client certificates", l->client_ca,
			  strerror(-rc));
		rc = -EINVAL;
		goto fail;
	}
	rc = -EINVAL;
	for (i = 0; i < sk_X509_num(t->issuers); i++) {
		X509 *ca = sk_X509_value(t->issuers, i);

		if (X509_check_ca(ca) < 1) {
			char desc[512];

			kg_cert_describe(ca, desc, sizeof(desc));
			KG_CFGERR(l, KG_LK_CLIENT_CA, "client_ca = %s holds a certificate that is not a "
				  "CA (%s); list only CA certificates", l->client_ca, desc);
			goto fail;
		}
	}
	if (l->trust) {
		if (kg_store_add_file(st, l->trust, NULL)) {
			KG_CFGERR(l, KG_LK_TRUST, "trust = %s: no PEM certificate found; give the "
				  "trust anchor certificate(s)", l->trust);
			goto fail;
		}
	} else {
		for (i = 0; i < sk_X509_num(t->issuers); i++)
			if (X509_STORE_add_cert(st, sk_X509_value(t->issuers, i)) != 1) {
				KG_CFGERR(l, KG_LK_CLIENT_CA, "client_ca = %s: cannot add to the "
					  "trust store", l->client_ca);
				goto fail;
			}
	}
	if (l->crl) {
		int ncrl = kg_crls_load(st, l->crl);

		if (ncrl <= 0) {
			KG_CFGERR(l, KG_LK_CRL, "crl = %s: no CRL found (PEM or DER); give the CRL(s) "
				  "published by the client CA(s)", l->crl);
			goto fail;
		}
		/* The leaf's issuer must have a CRL in the file: a missing one is
		 * an error (unable to get CRL), not a silent pass. */
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		t->crl_stale_ok = l->crl_stale_ok;
	}
	/* Any certificate in the trust file is an anchor, self-signed or not:
	 * an intermediate listed there is trusted without its root. */
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	SSL_CTX_set_purpose(t->ctx, X509_PURPOSE_SSL_CLIENT);
	/* client_auth = optional: a client may send no certificate; one that
	 * sends one is verified all the same (SSL_VERIFY_PEER) */
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER |
			   (l->client_auth_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT), kg_tls_verify_cb);
	SSL_CTX_set_cert_verify_callback(t->ctx, kg_tls_cert_verify_cb, NULL);
	SSL_CTX_set_verify_depth(t->ctx, l->verify_depth);

	/* The CertificateRequest names the client CAs so clients pick the right cert. */
	names = sk_X509_NAME_new_null();
	for (i = 0; names && i < sk_X509_num(t->issuers); i++) {
		X509_NAME *n = X509_NAME_dup(X509_get_subject_name(sk_X509_value(t->issuers, i)));

		if (!n || !sk_X509_NAME_push(names, n))
			X509_NAME_free(n);
	}
	if (names)
		SSL_CTX_set_client_CA_list(t->ctx, names);

	if (kg_ctx_ciphers(t->ctx, l, &role, cfgpath, err, errlen))
		goto fail;
	/* No resumption: a resumed session skips certificate verification, and
	 * revocation must be checked on every handshake. */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(t->ctx, 0);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
	*out = t;
	return 0;
fail:
	kg_tls_ctx_put(t);
	return rc;
}

SSL *kg_tls_new(struct kg_tls_ctx *t, int fd, struct kg_hs_info *hs)
{
	SSL *ssl = SSL_new(t->ctx);

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	kg_tls_ssl_start(ssl, hs);
	SSL_set_accept_state(ssl);
	return ssl;
}

const char *kg_tls_server_name(const SSL *ssl)
{
	const struct kg_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	return t && t->server_name ? t->server_name : "";
}

const char *kg_tls_version_short(const SSL *ssl)
{
	switch (SSL_version(ssl)) {
	case TLS1_3_VERSION:
		return "1.3";
	case TLS1_2_VERSION:
		return "1.2";
	default:
		return "?";
	}
}
