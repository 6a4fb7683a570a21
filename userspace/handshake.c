/*
 * From accepted socket to proxying: the server handshake, the offload
 * decision, the PROXY v2 header and the backend connect. Owns the
 * handshake and connecting states; the data phase belongs to pump.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#include "gateway.h"
#include "ktls.h"
#include "log.h"
#include "loop.h"
#include "proxy_proto.h"
#include "revoke.h"
#include "verify.h"

/* Notes when OpenSSL's read(2) came back short: the socket is empty. */
static long kg_rbio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
		       int ret, size_t *processed)
{
	struct kg_conn *c;

	if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed < len) {
		c = (struct kg_conn *)BIO_get_callback_arg(b);
		if (c)
			c->flags |= KG_CF_RBIO_SHORT;
	}
	return ret;
}

static const char *kg_hs_failure_reason(struct kg_conn *c)
{
	if (c->hs.verify_err != X509_V_OK)
		return kg_verify_reason(c->hs.verify_err);
	if (c->hs.alert_sent == SSL_AD_CERTIFICATE_REQUIRED ||
	    (c->hs.alert_sent == SSL_AD_HANDSHAKE_FAILURE && !c->hs.leaf &&
	     strstr(c->detail, "certificate")))
		return "no_certificate";
	if (c->hs.alert_rcvd >= 0)
		return "client_alert";
	/* Not TLS at all: plaintext HTTP, a scanner's probe, random bytes */
	if (c->hs.ssl_reason == SSL_R_WRONG_VERSION_NUMBER || c->hs.ssl_reason == SSL_R_HTTP_REQUEST ||
	    c->hs.ssl_reason == SSL_R_HTTPS_PROXY_REQUEST || c->hs.ssl_reason == SSL_R_UNKNOWN_PROTOCOL)
		return "not_tls";
	/* TLS, but malformed or abusive: we told the client with a fatal alert */
	if (c->hs.alert_sent == SSL_AD_DECODE_ERROR || c->hs.alert_sent == SSL_AD_RECORD_OVERFLOW ||
	    c->hs.alert_sent == SSL_AD_ILLEGAL_PARAMETER || c->hs.alert_sent == SSL_AD_UNEXPECTED_MESSAGE ||
	    c->hs.alert_sent == SSL_AD_PROTOCOL_VERSION || c->hs.alert_sent == SSL_AD_MISSING_EXTENSION ||
	    c->hs.alert_sent == SSL_AD_NO_RENEGOTIATION)
		return "protocol_error";
	return "handshake_error";
}

void kg_hs_start(struct kg_worker *w, struct kg_conn *c)
{
	c->ssl = kg_tls_new(c->tls, c->cfd, &c->hs);
	if (!c->ssl) {
		snprintf(c->detail, sizeof(c->detail), "out of memory for a TLS session");
		kg_conn_close(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	c->hs.conn_id = c->id;
	BIO_set_callback_ex(SSL_get_rbio(c->ssl), kg_rbio_cb);
	BIO_set_callback_arg(SSL_get_rbio(c->ssl), (char *)c);
	kg_loop_poll_arm(w, c, true);
	kg_hs_event(w, c);
}

/*
 * Hand the keys to the kernel. Both directions offloaded: the TLS library
 * state is freed (an idle offloaded connection then holds no userspace TLS
 * memory). Returns non-zero if the connection was ended (ktls = on and the
 * session could not be offloaded).
 */
static int kg_offload(struct kg_worker *w, struct kg_conn *c)
{
	char why[96];

	c->ktls = kg_ktls_offload(c->ssl, c->cfd, why, sizeof(why));
	if (c->ktls != (KG_KTLS_TX | KG_KTLS_RX) && c->conf->ktls == KG_KTLS_ON) {
		snprintf(c->detail, sizeof(c->detail), "ktls = on but %s offloaded: %s",
			 c->ktls ? "only one direction" : "nothing", why[0] ? why : "?");
		kg_warn("conn=%llu listener=%s client=%s: refusing to serve: %s", (unsigned long long)c->id,
			c->conf->name, c->peer, c->detail);
		kg_conn_end(w, c, KG_CLOSE_KTLS_REQUIRED);
		return 1;
	}
	if (c->ktls != (KG_KTLS_TX | KG_KTLS_RX))
		kg_dbg("conn=%llu: kTLS %s: %s", (unsigned long long)c->id,
		       c->ktls == KG_KTLS_TX ? "transmit only" : c->ktls ? "receive only" : "not used", why);
	if (c->ktls == (KG_KTLS_TX | KG_KTLS_RX)) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	return 0;
}

/* Build the PROXY v2 header now: after an offload the SSL (and with it the
 * peer certificate) is gone. */
static int kg_pp2_prepare(struct kg_conn *c, X509 *peer)
{
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	struct kg_pp2_info in = { .src = &src, .dst = &dst, .cn = c->cn, .cipher = c->cipher };
	unsigned char *der = NULL;
	int derlen = 0, n;
	size_t cap;

	if (getpeername(c->cfd, (struct sockaddr *)&src, &sl) ||
	    getsockname(c->cfd, (struct sockaddr *)&dst, &dl)) {
		snprintf(c->detail, sizeof(c->detail), "PROXY header: %s", strerror(errno));
		return -1;
	}
	in.version = SSL_get_version(c->ssl);
	in.sha256 = c->has_fp ? c->fp : NULL;
	if (c->conf->proxy_cert && peer && (derlen = i2d_X509(peer, &der)) > 0) {
		in.cert_der = der;
		in.cert_len = (size_t)derlen;
	}
	cap = 256 + (derlen > 0 ? (size_t)derlen : 0) + strlen(c->cn) + 128;
	c->pp = malloc(cap);
	n = c->pp ? kg_pp2_build(c->pp, cap, &in) : -ENOMEM;
	OPENSSL_free(der);
	if (n < 0) {
		snprintf(c->detail, sizeof(c->detail), "PROXY header: %s", strerror(-n));
		return -1;
	}
	c->pp_len = (size_t)n;
	return 0;
}

static void kg_backend_start(struct kg_worker *w, struct kg_conn *c);

/* The handshake finished: record who the client is, offload, connect. */
static void kg_hs_done(struct kg_worker *w, struct kg_conn *c)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);

	if (peer) {
		c->has_fp = kg_fp_x509(peer, c->fp) == 0;
		kg_cert_cn(peer, c->cn, sizeof(c->cn));
	}
	X509_free(c->hs.leaf);
	c->hs.leaf = NULL;
	KG_STAT_ADD(&w->stats, handshakes_ok, 1);
	snprintf(c->tls_version, sizeof(c->tls_version), "%s", kg_tls_version_short(c->ssl));
	snprintf(c->cipher, sizeof(c->cipher), "%s", SSL_get_cipher_name(c->ssl));
	c->server_name = kg_tls_server_name(c->ssl);
	if (c->conf->proxy_v2 && kg_pp2_prepare(c, peer)) {
		kg_err("conn=%llu: %s", (unsigned long long)c->id, c->detail);
		kg_conn_end(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	if (w->gw->ktls && c->conf->ktls != KG_KTLS_OFF && kg_offload(w, c))
		return;
	kg_backend_start(w, c);
}

/* A client that closes before finishing the handshake (a health check, a
 * port scan) is no protocol error, whatever alert OpenSSL tried to send:
 * an EOF before any byte, or once its hello was whole. An EOF inside the
 * ClientHello is a malformed hello (protocol_error). */
static bool kg_hs_client_left(struct kg_conn *c, int e)
{
	if (e == SSL_ERROR_SYSCALL && c->hs.alert_sent < 0)
		return true;
	return e == SSL_ERROR_SSL && c->hs.ssl_reason == SSL_R_UNEXPECTED_EOF_WHILE_READING &&
	       c->hs.alert_rcvd < 0 && c->hs.verify_err == X509_V_OK &&
	       (BIO_number_read(SSL_get_rbio(c->ssl)) == 0 || SSL_get_state(c->ssl) != TLS_ST_BEFORE);
}

void kg_hs_event(struct kg_worker *w, struct kg_conn *c)
{
	int rc = SSL_do_handshake(c->ssl), e;
	unsigned long ec;

	if (rc == 1) {
		kg_hs_done(w, c);
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return;
	c->server_name = kg_tls_server_name(c->ssl);
	ec = ERR_peek_last_error();
	c->hs.ssl_reason = ec ? ERR_GET_REASON(ec) : 0;
	if (c->hs.verify_err != X509_V_OK)
		snprintf(c->detail, sizeof(c->detail), "certificate verify failed: %s",
			 X509_verify_cert_error_string(c->hs.verify_err));
	else if (ec)
		snprintf(c->detail, sizeof(c->detail), "%s", ERR_reason_error_string(ec) ?
			 ERR_reason_error_string(ec) : "?");
	ERR_clear_error();
	if (kg_hs_client_left(c, e)) {
		/* The client went away mid-handshake: nothing to tell it. */
		snprintf(c->detail, sizeof(c->detail), "client closed the connection");
		c->hs.alert_sent = -1;
		kg_conn_log_reject(w, c, c->hs.alert_rcvd >= 0 ? "client_alert" : "client_closed");
		kg_conn_close(w, c, KG_CLOSE_REJECTED);
		return;
	}
	kg_conn_log_reject(w, c, kg_hs_failure_reason(c));
	kg_conn_end(w, c, KG_CLOSE_REJECTED);
}

static void kg_backend_start(struct kg_worker *w, struct kg_conn *c)
{
	const struct kg_addr *a = &c->conf->backend;
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(c->detail, sizeof(c->detail), "socket: %s", strerror(errno));
		kg_err("conn=%llu backend %s: cannot create a socket: %s", (unsigned long long)c->id,
		       a->text, strerror(errno));
		goto fail;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bfd = fd;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) && errno != EINPROGRESS) {
		snprintf(c->detail, sizeof(c->detail), "connect %s: %s", a->text, strerror(errno));
		kg_err("conn=%llu backend %s: connect failed: %s", (unsigned long long)c->id,
		       a->text, strerror(errno));
		goto fail;
	}
	c->state = KG_ST_CONNECTING;
	c->deadline_ms = w->now_ms + c->conf->connect_timeout_ms;
	kg_loop_poll_arm(w, c, false);
	return;
fail:
	/* Tell the client cleanly: close_notify, then FIN. */
	kg_conn_end(w, c, KG_CLOSE_BACKEND_CONNECT);
}

/* The backend socket is tagged like the client's, so a revocation cuts
 * both legs. Under revocation = required an untagged socket cannot be
 * cut later: refuse to proxy. */
static int kg_backend_tag(struct kg_worker *w, struct kg_conn *c)
{
	int rc;

	if (!w->gw->rev || !c->has_fp)
		return 0;
	rc = kg_ebpf_tag(w->gw->rev->bpf, c->bfd, c->fp, c->id);
	if (!rc)
		return 0;
	snprintf(c->detail, sizeof(c->detail), "cannot tag the backend socket for revocation: %s",
		 strerror(-rc));
	KG_STAT_ADD(&w->stats, tag_errors, 1);
	if (c->snap->gen->cfg->revocation != KG_REV_REQUIRED) {
		kg_warn("conn=%llu: %s", (unsigned long long)c->id, c->detail);
		c->detail[0] = '\0';
		return 0;
	}
	kg_err("conn=%llu listener=%s client=%s: %s; revocation = required refuses a connection "
	       "it could not cut", (unsigned long long)c->id, c->conf->name, c->peer, c->detail);
	return rc;
}

void kg_hs_connect_event(struct kg_worker *w, struct kg_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	struct pollfd pfd = { .fd = c->bfd, .events = POLLOUT };
	enum kg_path_kind pk;

	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
		return;		/* a spurious wake-up: still connecting */
	if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		snprintf(c->detail, sizeof(c->detail), "connect %s: %s",
			 c->conf->backend.text, strerror(err ? err : errno));
		kg_err("conn=%llu listener=%s client=%s backend %s: connect failed: %s; check that "
		       "the backend is up", (unsigned long long)c->id, c->conf->name, c->peer,
		       c->conf->backend.text, strerror(err ? err : errno));
		kg_conn_end(w, c, KG_CLOSE_BACKEND_CONNECT);
		return;
	}
	if (c->pp) {
		/* The first bytes the backend sees; the socket is fresh and empty,
		 * so the header fits in its buffer. */
		ssize_t n = send(c->bfd, c->pp, c->pp_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n != (ssize_t)c->pp_len) {
			snprintf(c->detail, sizeof(c->detail), "PROXY header to the backend: %s",
				 n < 0 ? strerror(errno) : "short write");
			kg_conn_end(w, c, KG_CLOSE_BACKEND_ERROR);
			return;
		}
		free(c->pp);
		c->pp = NULL;
	}
	if (kg_backend_tag(w, c)) {
		kg_conn_end(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	c->state = KG_ST_PROXY;
	pk = c->ktls == (KG_KTLS_TX | KG_KTLS_RX) ? KG_PATH_KTLS :
	     c->ktls == KG_KTLS_TX ? KG_PATH_KTLS_TX :
	     c->ktls == KG_KTLS_RX ? KG_PATH_KTLS_RX : KG_PATH_USER;
	c->path = pk == KG_PATH_USER ? "userspace" : kg_path_name(pk);
	KG_STAT_ADD(&w->stats, paths[pk][strcmp(c->tls_version, "1.3") == 0]
		    [kg_stat_cipher_of(c->cipher)], 1);
	c->deadline_ms = w->now_ms + c->conf->idle_timeout_ms;
	if (kg_log_enabled(KG_LOG_DEBUG)) {
		char subj[4 * sizeof(c->cn) + 8];

		kg_dbg("conn=%llu established client=%s subject=\"%s\" tls=%s cipher=%s",
		       (unsigned long long)c->id, c->peer, kg_log_quote(subj, sizeof(subj), c->cn),
		       c->tls_version, c->cipher);
	}
	kg_conn_pump(w, c);
}
