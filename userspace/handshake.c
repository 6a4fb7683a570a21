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

/* Notes when OpenSSL's read(2) came back short: the socket is empty. One
 * callback per leg, each setting its own flag. */
static long kg_rbio_note(BIO *b, int oper, size_t len, int ret, size_t *processed, unsigned flag)
{
	struct kg_conn *c;

	if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed < len) {
		c = (struct kg_conn *)BIO_get_callback_arg(b);
		if (c)
			c->flags |= flag;
	}
	return ret;
}

static long kg_rbio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
		       int ret, size_t *processed)
{
	return kg_rbio_note(b, oper, len, ret, processed, KG_CF_RBIO_SHORT);
}

static long kg_rbio_cb_origin(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
			      int ret, size_t *processed)
{
	return kg_rbio_note(b, oper, len, ret, processed, KG_CF_B_RBIO_SHORT);
}

/* Client mode (tls = off) serves local services: a plain-TCP peer must come
 * from loopback, a private network (RFC 1918, fc00::/7) or link-local. */
static bool kg_addr_private(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);

		return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xac1 ||
		       (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			struct sockaddr_storage v4 = { .ss_family = AF_INET };

			memcpy(&((struct sockaddr_in *)&v4)->sin_addr, &a->s6_addr[12], 4);
			return kg_addr_private(&v4);
		}
		return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
		       (a->s6_addr[0] & 0xfe) == 0xfc;
	}
	return false;
}

static const char *kg_hs_failure_reason(struct kg_conn *c)
{
	if (c->hs.verify_err != X509_V_OK)
		return kg_verify_reason(c->hs.verify_err);
	if (c->hs.alert_sent == SSL_AD_CERTIFICATE_REQUIRED ||
	    (c->hs.alert_sent == SSL_AD_HANDSHAKE_FAILURE && !c->hs.leaf &&
	     strstr(kg_conn_detail(c), "certificate")))
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

static void kg_backend_start(struct kg_worker *w, struct kg_conn *c);
static int kg_pp2_prepare(struct kg_conn *c, X509 *peer);

/* tls = off: a plain-TCP client, straight to the backend (whose leg is
 * TLS: the config insists). */
static void kg_plain_start(struct kg_worker *w, struct kg_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	c->hs.alert_sent = c->hs.alert_rcvd = -1;
	c->hs.verify_err = X509_V_OK;
	if (getpeername(c->cfd, (struct sockaddr *)&ss, &sl) || !kg_addr_private(&ss)) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "tls = off serves loopback and private networks only");
		kg_conn_log_reject(w, c, "client_not_private");
		kg_conn_close(w, c, KG_CLOSE_REJECTED);
		return;
	}
	kg_loop_poll_arm(w, c, true);
	if (c->conf->proxy_v2 && kg_pp2_prepare(c, NULL)) {
		kg_err("conn=%llu: %s", (unsigned long long)c->id, kg_conn_detail(c));
		kg_conn_end(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	kg_backend_start(w, c);
}

void kg_hs_start(struct kg_worker *w, struct kg_conn *c)
{
	if (c->conf->tls_off) {
		kg_plain_start(w, c);
		return;
	}
	c->ssl = kg_tls_new(c->tls, c->cfd, &c->hs);
	if (!c->ssl) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "out of memory for a TLS session");
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
/* Offload @ssl on @fd; on a kernel that can rekey, keep what TLS 1.3
 * KeyUpdates on this leg will need in *@kk. */
static int kg_offload_leg(struct kg_worker *w, SSL *ssl, int fd, struct kg_ktls_keys **kk,
			  char *why, size_t whylen)
{
	struct kg_ktls_keys *keep = kg_ktls_rekey_supported() ? kg_slab_alloc(&w->keys_mem) : NULL;
	int done = kg_ktls_offload_keep(ssl, fd, why, whylen, keep);

	if (keep && keep->len)
		*kk = keep;
	else
		kg_slab_free(&w->keys_mem, keep);
	return done;
}

/* ktls = on and a leg (@leg: "" for the client's, " of the origin leg")
 * not offloaded both ways (@done): refuse to serve, say why, end it.
 * Returns 1 if the connection was ended. */
static int kg_ktls_required(struct kg_worker *w, struct kg_conn *c, int done, const char *leg,
			    const char *why)
{
	if (done == (KG_KTLS_TX | KG_KTLS_RX) || c->conf->ktls != KG_KTLS_ON)
		return 0;
	snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "ktls = on but %s%s offloaded: %s",
		 done ? "only one direction" : "nothing", leg, why[0] ? why : "?");
	kg_warn("conn=%llu listener=%s client=%s: refusing to serve: %s", (unsigned long long)c->id,
		c->conf->name, c->peer, kg_conn_detail(c));
	kg_conn_end(w, c, KG_CLOSE_KTLS_REQUIRED);
	return 1;
}

static int kg_offload(struct kg_worker *w, struct kg_conn *c)
{
	char why[96];

	c->ktls = kg_offload_leg(w, c->ssl, c->cfd, &c->kk[0], why, sizeof(why));
	if (kg_ktls_required(w, c, c->ktls, "", why))
		return 1;
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
	struct kg_pp2_info in = { .src = &src, .dst = &dst, .cn = kg_conn_cn(c),
				   .cipher = c->cipher };
	unsigned char *der = NULL;
	int derlen = 0, n;
	size_t cap;

	if (getpeername(c->cfd, (struct sockaddr *)&src, &sl) ||
	    getsockname(c->cfd, (struct sockaddr *)&dst, &dl)) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "PROXY header: %s", strerror(errno));
		return -1;
	}
	if (c->ssl) {
		in.version = SSL_get_version(c->ssl);
		in.no_cert = !peer;
	} else {
		in.no_tls = true;
		in.cipher = NULL;
	}
	in.sha256 = c->has_fp ? c->fp : NULL;
	if (c->conf->proxy_cert && peer && (derlen = i2d_X509(peer, &der)) > 0) {
		in.cert_der = der;
		in.cert_len = (size_t)derlen;
	}
	cap = 256 + (derlen > 0 ? (size_t)derlen : 0) + strlen(kg_conn_cn(c)) + 128;
	c->pp = malloc(cap);
	n = c->pp ? kg_pp2_build(c->pp, cap, &in) : -ENOMEM;
	OPENSSL_free(der);
	if (n < 0) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "PROXY header: %s", strerror(-n));
		return -1;
	}
	c->pp_len = (size_t)n;
	return 0;
}

/* The handshake finished: record who the client is, offload, connect. */
static void kg_hs_done(struct kg_worker *w, struct kg_conn *c)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);
	char cn[KG_CN_MAX + 1] = "";

	if (peer) {
		c->has_fp = kg_fp_x509(peer, c->fp) == 0;
		kg_cert_cn(peer, cn, sizeof(cn));
	}
	X509_free(c->hs.leaf);
	c->hs.leaf = NULL;
	KG_STAT_ADD(&w->stats, handshakes_ok, 1);
	/* static names: they outlive the SSL that an offload frees */
	c->tls_version = kg_tls_version_short(c->ssl);
	c->cipher = SSL_get_cipher_name(c->ssl);
	c->server_name = kg_tls_server_name(c->ssl);
	/* Without its CN the client would reach the backend (PROXY header)
	 * and the logs nameless: end it instead. */
	if (cn[0] && kg_conn_set_cn(w, c, cn)) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "out of memory for the client's CN");
		kg_err("conn=%llu: %s", (unsigned long long)c->id, kg_conn_detail(c));
		kg_conn_end(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	if (c->conf->proxy_v2 && kg_pp2_prepare(c, peer)) {
		kg_err("conn=%llu: %s", (unsigned long long)c->id, kg_conn_detail(c));
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
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "certificate verify failed: %s",
			 X509_verify_cert_error_string(c->hs.verify_err));
	else if (ec)
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "%s", ERR_reason_error_string(ec) ?
			 ERR_reason_error_string(ec) : "?");
	ERR_clear_error();
	if (kg_hs_client_left(c, e)) {
		/* The client went away mid-handshake: nothing to tell it. */
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "client closed the connection");
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
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "socket: %s", strerror(errno));
		kg_err("conn=%llu backend %s: cannot create a socket: %s", (unsigned long long)c->id,
		       a->text, strerror(errno));
		goto fail;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bfd = fd;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) && errno != EINPROGRESS) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "connect %s: %s", a->text, strerror(errno));
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
	snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
		 "cannot tag the backend socket for revocation: %s", strerror(-rc));
	KG_STAT_ADD(&w->stats, tag_errors, 1);
	if (c->snap->gen->cfg->revocation != KG_REV_REQUIRED) {
		kg_warn("conn=%llu: %s", (unsigned long long)c->id, kg_conn_detail(c));
		kg_conn_detail_free(c);	/* a connection that lives on keeps no buffer */
		return 0;
	}
	kg_err("conn=%llu listener=%s client=%s: %s; revocation = required refuses a connection "
	       "it could not cut", (unsigned long long)c->id, c->conf->name, c->peer,
	       kg_conn_detail(c));
	return rc;
}

static void kg_proxy_start(struct kg_worker *w, struct kg_conn *c);
static void kg_origin_start(struct kg_worker *w, struct kg_conn *c);
static int kg_origin_offload(struct kg_worker *w, struct kg_conn *c);

void kg_hs_connect_event(struct kg_worker *w, struct kg_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	struct pollfd pfd = { .fd = c->bfd, .events = POLLOUT };

	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
		return;		/* a spurious wake-up: still connecting */
	if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "connect %s: %s",
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
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
				 "PROXY header to the backend: %s",
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
	if (c->conf->origin.on)
		kg_origin_start(w, c);
	else
		kg_proxy_start(w, c);
}

/* ---- the origin leg ----------------------------------------------------- */

/* One name for a TLS alert, including TLS 1.3's certificate_required, which
 * OpenSSL 3.0 cannot name. */
static const char *kg_alert_name(int desc)
{
	return desc == SSL_AD_CERTIFICATE_REQUIRED ? "certificate required" :
	       SSL_alert_desc_string_long(desc);
}

/*
 * The origin leg could not be set up, or the origin refused us: tell the
 * operator why (reason backend_tls_failed, with the origin's verdict or
 * ours), count it, and close the client cleanly (close_notify, then FIN):
 * it has been verified, the fault is not its.
 */
void kg_origin_failed(struct kg_worker *w, struct kg_conn *c)
{
	char subj[4 * (KG_CN_MAX + 1) + 8];

	KG_STAT_ADD(&w->stats, backend_tls_fail, 1);
	kg_err("conn=%llu listener=%s client=%s subject=\"%s\" backend %s: backend_tls_failed: %s",
	       (unsigned long long)c->id, c->conf->name, c->peer,
	       kg_log_quote(subj, sizeof(subj), c->cn ? c->cn : "-"), c->conf->backend.text,
	       kg_conn_detail(c));
	kg_conn_end(w, c, KG_CLOSE_BACKEND_TLS);
}

/* What went wrong in the origin handshake, into c->detail. */
static void kg_origin_describe(struct kg_conn *c, unsigned long ec)
{
	const struct kg_origin_conf *o = &c->conf->origin;
	char who[96] = "";

	if (c->bhs->leaf) {
		char cn[256];

		kg_cert_cn(c->bhs->leaf, cn, sizeof(cn));
		snprintf(who, sizeof(who), " (certificate of \"%.64s\")", cn);
	}
	if (c->bhs->verify_err != X509_V_OK) {
		if (c->bhs->verify_err == X509_V_ERR_HOSTNAME_MISMATCH ||
		    c->bhs->verify_err == X509_V_ERR_IP_ADDRESS_MISMATCH)
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
				 "origin certificate does not name '%.100s'%s",
				 o->name[0] ? o->name : o->ip, who);
		else
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
				 "origin certificate refused (%s): %s%s",
				 kg_verify_reason(c->bhs->verify_err),
				 X509_verify_cert_error_string(c->bhs->verify_err), who);
	} else if (c->bhs->alert_rcvd >= 0) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "origin sent alert %s%s",
			 kg_alert_name(c->bhs->alert_rcvd),
			 c->bhs->alert_rcvd == SSL_AD_CERTIFICATE_REQUIRED ||
			 c->bhs->alert_rcvd == SSL_AD_HANDSHAKE_FAILURE ?
			 (o->cert ? " (it refused backend_cert)" : " (no backend_cert configured)") :
			 c->bhs->alert_rcvd == SSL_AD_UNKNOWN_CA || c->bhs->alert_rcvd == SSL_AD_BAD_CERTIFICATE ||
			 c->bhs->alert_rcvd == SSL_AD_CERTIFICATE_UNKNOWN ? " (it refused backend_cert)" : "");
	} else if (ec) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "origin handshake: %s",
			 ERR_reason_error_string(ec) ? ERR_reason_error_string(ec) : "?");
	} else {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "origin closed the connection during the handshake");
	}
}

/* The origin's data leg failed before it sent a byte, with an alert (TLS
 * 1.3: it judges our certificate after our handshake is complete). Returns
 * true if that was the origin refusing us; then the connection was ended. */
bool kg_origin_refused(struct kg_worker *w, struct kg_conn *c)
{
	char b[1];

	if ((!c->bssl && !c->bktls) || (c->flags & KG_CF_B_DATA))
		return false;
	if (c->bhs->alert_rcvd < 0 && c->bssl && !(c->bktls & KG_KTLS_RX)) {
		/* the alert may still wait in the socket, behind a failed send */
		(void)SSL_read(c->bssl, b, sizeof(b));
		ERR_clear_error();
	}
	if (c->bhs->alert_rcvd < 0 || c->bhs->alert_rcvd == SSL_AD_CLOSE_NOTIFY)
		return false;
	kg_origin_describe(c, 0);
	kg_origin_failed(w, c);
	return true;
}

/*
 * The origin leg's keys to the kernel, as kg_offload() does for the client
 * leg. Only now: the TCP connection is established and the handshake done,
 * so TCP_ULP is never set on a socket still connecting. A direction the
 * kernel refuses stays with OpenSSL on this leg only. Returns non-zero if
 * the connection was ended (ktls = on and the leg could not be offloaded).
 */
static int kg_origin_offload(struct kg_worker *w, struct kg_conn *c)
{
	char why[96];

	c->bktls = kg_offload_leg(w, c->bssl, c->bfd, &c->kk[1], why, sizeof(why));
	if (!c->bktls && c->conf->ktls == KG_KTLS_ON) {
		/* An origin that refuses our certificate after a TLS 1.3
		 * handshake may have closed already (the ULP then fails with
		 * ENOTCONN): its alert, not the offload, is the news. */
		char b[1];

		(void)SSL_read(c->bssl, b, sizeof(b));
		ERR_clear_error();
		if (c->bhs->alert_rcvd >= 0 && c->bhs->alert_rcvd != SSL_AD_CLOSE_NOTIFY) {
			kg_origin_describe(c, 0);
			kg_origin_failed(w, c);
			return 1;
		}
	}
	if (kg_ktls_required(w, c, c->bktls, " of the origin leg", why))
		return 1;
	if (c->bktls != (KG_KTLS_TX | KG_KTLS_RX))
		kg_dbg("conn=%llu: origin leg kTLS %s: %s", (unsigned long long)c->id,
		       c->bktls == KG_KTLS_TX ? "transmit only" : c->bktls ? "receive only" : "not used",
		       why);
	if (c->bktls == (KG_KTLS_TX | KG_KTLS_RX)) {
		SSL_free(c->bssl);
		c->bssl = NULL;
	}
	return 0;
}

void kg_origin_event(struct kg_worker *w, struct kg_conn *c)
{
	int rc = SSL_do_handshake(c->bssl), e;
	unsigned long ec;

	if (rc == 1) {
		c->origin_tls = kg_tls_version_short(c->bssl);
		c->origin_cipher = SSL_get_cipher_name(c->bssl);
		X509_free(c->bhs->leaf);
		c->bhs->leaf = NULL;
		if (w->gw->ktls && c->conf->ktls != KG_KTLS_OFF && kg_origin_offload(w, c))
			return;
		kg_proxy_start(w, c);
		return;
	}
	e = SSL_get_error(c->bssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return;
	ec = ERR_peek_last_error();
	kg_origin_describe(c, ec);
	ERR_clear_error();
	kg_origin_failed(w, c);
}

/* Connected (PROXY header sent, socket tagged): the TLS client handshake
 * toward the origin, in the same ring, under handshake_timeout. */
static void kg_origin_start(struct kg_worker *w, struct kg_conn *c)
{
	/* kept for the connection's life (an origin's alert after the
	 * handshake is read into it), so from the worker's slab */
	if (!c->bhs && (c->bhs = kg_slab_alloc(&w->cn_mem[0])) != NULL)
		c->bhs->alert_sent = c->bhs->alert_rcvd = -1;
	c->bssl = c->bhs ? kg_tls_origin_new(c->tls, c->bfd, c->bhs) : NULL;
	if (!c->bssl) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "out of memory for a TLS session");
		kg_conn_end(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	BIO_set_callback_ex(SSL_get_rbio(c->bssl), kg_rbio_cb_origin);
	BIO_set_callback_arg(SSL_get_rbio(c->bssl), (char *)c);
	c->state = KG_ST_ORIGIN;
	c->deadline_ms = w->now_ms + c->conf->handshake_timeout_ms;
	kg_origin_event(w, c);
}

/* The path kind of a leg with @ktls (KG_KTLS_TX | KG_KTLS_RX) in the kernel. */
static enum kg_path_kind kg_path_of(int ktls)
{
	return ktls == (KG_KTLS_TX | KG_KTLS_RX) ? KG_PATH_KTLS :
	       ktls == KG_KTLS_TX ? KG_PATH_KTLS_TX :
	       ktls == KG_KTLS_RX ? KG_PATH_KTLS_RX : KG_PATH_USER;
}

/* Both legs are up: count the data path, then move bytes. */
static void kg_proxy_start(struct kg_worker *w, struct kg_conn *c)
{
	enum kg_path_kind pk;

	c->state = KG_ST_PROXY;
	pk = kg_path_of(c->ktls);
	c->path = kg_path_name(pk);
	if (c->conf->origin.on || c->conf->tls_off)	/* name both legs, client's first */
		c->path = kg_path_pair(c->conf->tls_off ? -1 : (int)pk,
				       c->conf->origin.on ? (int)kg_path_of(c->bktls) : -1);
	KG_STAT_ADD(&w->stats, paths[pk][strcmp(c->tls_version, "1.3") == 0]
		    [kg_stat_cipher_of(c->cipher)], 1);
	c->deadline_ms = w->now_ms + c->conf->idle_timeout_ms;
	if (kg_log_enabled(KG_LOG_DEBUG)) {
		char subj[4 * (KG_CN_MAX + 1) + 8];

		kg_dbg("conn=%llu established client=%s subject=\"%s\" tls=%s cipher=%s "
		       "origin_tls=%s origin_cipher=%s path=%s", (unsigned long long)c->id, c->peer,
		       kg_log_quote(subj, sizeof(subj), kg_conn_cn(c)), c->tls_version, c->cipher,
		       c->origin_tls, c->origin_cipher, c->path);
	}
	kg_conn_pump(w, c);
}
