/*
 * kg-loadgen's modes: what each connection does (echo, upload, download,
 * handshake, rr, idle, flood). The options and helpers are in loadgen.c.
 */
#include "loadgen.h"

/* echo: one thread drives both directions with a non-blocking socket. */
void run_echo(struct worker *w)
{
	uint8_t *out = malloc(CHUNK), *in = malloc(4 * CHUNK);
	struct kg_stream gen, chk;
	struct kg_sha256 hs, hr;
	char hexs[65], hexr[65];
	size_t out_len = 0, out_off = 0;
	bool sent_all = false, shut = false, eof = false, mismatch = false;
	uint8_t *expect = malloc(4 * CHUNK);
	int fd, r;
	SSL *ssl = tls_open(w, &fd);

	if (!ssl || !out || !in || !expect)
		goto out;
	kg_stream_init(&gen, w->idx);
	kg_stream_init(&chk, w->idx);
	kg_sha256_init(&hs);
	kg_sha256_init(&hr);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	{
		int fl = 1;

		ioctl_nb:
		if (ioctl(fd, FIONBIO, &fl) < 0 && errno == EINTR)
			goto ioctl_nb;
	}
	while (!eof) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		bool want_write = false, progress = false;

		/* write side */
		while (!sent_all) {
			if (out_off == out_len) {
				size_t left = opt.bytes - w->sent;

				if (!left) {
					sent_all = true;
					break;
				}
				out_len = left < CHUNK ? left : CHUNK;
				out_off = 0;
				kg_stream_fill(&gen, out, out_len);
				kg_sha256_update(&hs, out, out_len);
			}
			r = SSL_write(ssl, out + out_off, (int)(out_len - out_off));
			if (r > 0) {
				out_off += (size_t)r;
				w->sent += (unsigned long long)r;
				progress = true;
				/* the next KeyUpdate when its share of the bytes is out and
				 * nothing is half-written (OpenSSL sends it with the next
				 * write; it refuses while a write is pending) */
				if (w->keyupdates < opt.keyupdates && out_off == out_len &&
				    w->sent >= (w->keyupdates + 1) * (opt.bytes / (opt.keyupdates + 1)) &&
				    SSL_key_update(ssl, w->keyupdates % 2 ? SSL_KEY_UPDATE_REQUESTED :
						   SSL_KEY_UPDATE_NOT_REQUESTED) == 1)
					w->keyupdates++;
				if (opt.abort_after && w->sent >= opt.abort_after) {
					/* a client that vanishes mid-transfer: RST, no close_notify */
					struct linger lg = { .l_onoff = 1, .l_linger = 0 };

					setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
					close(fd);
					SSL_free(ssl);
					ssl = NULL;
					snprintf(w->err, sizeof(w->err), "aborted with RST after %llu bytes "
						 "(--abort-after)", w->sent);
					goto out;
				}
				continue;
			}
			r = SSL_get_error(ssl, r);
			if (r == SSL_ERROR_WANT_WRITE)
				want_write = true;
			else if (r != SSL_ERROR_WANT_READ) {
				set_err(w, "write", ssl, -1);
				goto out;
			}
			break;
		}
		if (opt.no_half_close && sent_all && w->received >= opt.bytes)
			break;	/* all echoed: close afterwards, not before */
		if (sent_all && !shut && !opt.no_half_close) {
			r = SSL_shutdown(ssl);	/* close_notify: our half-close */
			if (r >= 0)
				shut = true;
			else if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE)
				want_write = true;
			else {
				set_err(w, "shutdown", ssl, r);
				goto out;
			}
		}
		/* read side */
		for (;;) {
			r = SSL_read(ssl, in, 4 * CHUNK);
			if (r > 0) {
				kg_sha256_update(&hr, in, (size_t)r);
				if (!mismatch) {
					kg_stream_fill(&chk, expect, (size_t)r);
					if (memcmp(in, expect, (size_t)r)) {
						mismatch = true;
						snprintf(w->err, sizeof(w->err),
							 "echo differs near offset %llu", w->received);
					}
				}
				w->received += (unsigned long long)r;
				progress = true;
				continue;
			}
			r = SSL_get_error(ssl, r);
			if (r == SSL_ERROR_ZERO_RETURN) {
				eof = true;
				break;
			}
			if (r == SSL_ERROR_WANT_WRITE) {
				want_write = true;
				break;
			}
			if (r != SSL_ERROR_WANT_READ) {
				set_err(w, "read", ssl, -1);
				goto out;
			}
			break;
		}
		if (eof || progress)
			continue;
		if (want_write)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 30000) == 0) {
			snprintf(w->err, sizeof(w->err), "stalled for 30 s (sent %llu, received %llu)",
				 w->sent, w->received);
			goto out;
		}
	}
	kg_sha256_hex(&hs, hexs);
	kg_sha256_hex(&hr, hexr);
	w->ok = !mismatch && w->received == w->sent && w->sent == opt.bytes && !strcmp(hexs, hexr);
	if (!w->ok && !w->err[0])
		snprintf(w->err, sizeof(w->err), "sent %llu (sha256 %s) received %llu (sha256 %s)",
			 w->sent, hexs, w->received, hexr);
out:
	if (ssl) {
		SSL_free(ssl);
		close(fd);
	}
	free(out);
	free(in);
	free(expect);
}

void run_upload(struct worker *w)
{
	uint8_t *buf = malloc(CHUNK);
	struct kg_stream gen;
	struct kg_sha256 h;
	char hex[65], reply[160] = "", want[160];
	int fd, n;
	size_t got = 0;
	SSL *ssl = tls_open(w, &fd);

	if (!ssl || !buf)
		goto out;
	kg_stream_init(&gen, w->idx);
	kg_sha256_init(&h);
	while (w->sent < opt.bytes) {
		size_t len = opt.bytes - w->sent < CHUNK ? (size_t)(opt.bytes - w->sent) : CHUNK;

		kg_stream_fill(&gen, buf, len);
		kg_sha256_update(&h, buf, len);
		if (write_all(w, ssl, buf, len))
			goto out;
		w->sent += len;
	}
	if (!opt.no_half_close)
		SSL_shutdown(ssl);
	n = 1;
	while (got < sizeof(reply) - 1 && !memchr(reply, '\n', got) &&
	       (n = SSL_read(ssl, reply + got, (int)(sizeof(reply) - 1 - got))) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	kg_sha256_hex(&h, hex);
	snprintf(want, sizeof(want), "%llu %s\n", w->sent, hex);
	w->ok = !strcmp(reply, want);
	if (!w->ok && !got && n <= 0)
		set_err(w, "reading the sink's answer", ssl, n);
	else if (!w->ok)
		snprintf(w->err, sizeof(w->err), "backend saw '%.100s', expected '%.100s'", reply, want);
	ERR_clear_error();
out:
	tls_close(ssl, fd);
	free(buf);
}

void run_download(struct worker *w)
{
	uint8_t *buf = malloc(4 * CHUNK), *exp = malloc(4 * CHUNK);
	struct kg_stream chk;
	struct kg_sha256 h;
	int fd, n, se;
	bool mismatch = false, clean;
	SSL *ssl = tls_open(w, &fd);

	if (!ssl || !buf || !exp)
		goto out;
	kg_stream_init(&chk, 0);
	kg_sha256_init(&h);
	while ((n = SSL_read(ssl, buf, 4 * CHUNK)) > 0) {
		kg_sha256_update(&h, buf, (size_t)n);
		if (!mismatch) {
			kg_stream_fill(&chk, exp, (size_t)n);
			if (memcmp(buf, exp, (size_t)n)) {
				size_t i = 0;

				while (buf[i] == exp[i])
					i++;
				mismatch = true;
				snprintf(w->err, sizeof(w->err), "content differs from the seed-0 "
					 "stream at offset %llu", w->received + i);
			}
		}
		w->received += (unsigned long long)n;
	}
	kg_sha256_hex(&h, w->sha256);
	se = SSL_get_error(ssl, n);
	clean = se == SSL_ERROR_ZERO_RETURN;
	/* --no-half-close: peers that end with a bare FIN pass when the byte
	 * count is right; otherwise close_notify is required */
	w->ok = !mismatch && (clean || opt.no_half_close) &&
		(!opt.bytes_given || w->received == opt.bytes);
	if (!w->ok && !mismatch) {
		if (!clean && !opt.no_half_close) {
			char why[sizeof(w->err)];

			set_err(w, "read", ssl, n);
			memcpy(why, w->err, sizeof(why));
			snprintf(w->err, sizeof(w->err), "after %llu bytes: %.400s", w->received, why);
		} else {
			snprintf(w->err, sizeof(w->err), "received %llu bytes, expected %llu",
				 w->received, opt.bytes);
		}
	}
	ERR_clear_error();
out:
	tls_close(ssl, fd);
	free(buf);
	free(exp);
}

static int roundtrip(struct worker *w, SSL *ssl)
{
	uint8_t req[64], resp[64];

	memset(req, 'a' + (int)(w->ops % 26), sizeof(req));
	if (write_all(w, ssl, req, sizeof(req)) || read_exact(w, ssl, resp, sizeof(resp)))
		return -1;
	if (memcmp(req, resp, sizeof(req))) {
		snprintf(w->err, sizeof(w->err), "round trip: response differs");
		return -1;
	}
	return 0;
}

/* Whether a timed mode goes on: until @end, or with --until-file until the
 * file exists (looked for at most every 50 ms). */
static bool running(double end)
{
	static __thread double next;
	static __thread bool seen;
	double t;

	if (!opt.until_file)
		return now_s() < end;
	t = now_s();
	if (!seen && t >= next) {
		seen = access(opt.until_file, F_OK) == 0;
		next = t + 0.05;
	}
	return !seen;
}

static unsigned long long shared_count;

void run_handshake(struct worker *w)
{
	double end = now_s() + opt.duration;

	w->ok = true;
	for (;;) {
		double t0;
		int fd;
		SSL *ssl;

		if (opt.count) {
			if (__atomic_fetch_add(&shared_count, 1, __ATOMIC_RELAXED) >= opt.count)
				break;
		} else if (!running(end)) {
			break;
		}
		t0 = now_s();
		ssl = tls_open(w, &fd);
		if (!ssl || roundtrip(w, ssl)) {
			w->errors++;
			w->ok = false;
			tls_close(ssl, fd);
			ERR_clear_error();
			continue;
		}
		add_lat(w, (now_s() - t0) * 1e6);
		w->ops++;
		tls_close(ssl, fd);
	}
}

void run_rr(struct worker *w)
{
	double end = now_s() + opt.duration;
	int fd;
	SSL *ssl = tls_open(w, &fd);

	if (!ssl)
		return;
	w->ok = true;
	while (running(end)) {
		double t0 = now_s();

		if (roundtrip(w, ssl)) {
			w->ok = false;
			break;
		}
		add_lat(w, (now_s() - t0) * 1e6);
		w->ops++;
	}
	tls_close(ssl, fd);
}

/* idle: this worker opens its share of the connections, then waits. */
pthread_barrier_t idle_up;	/* idle: every thread has its connections up */
static unsigned long long idle_open;

void run_idle(struct worker *w, unsigned nthreads)
{
	unsigned share = opt.conns / nthreads + (w->idx < opt.conns % nthreads), i;
	SSL **ssl = calloc(share ? share : 1, sizeof(*ssl));
	int *fds = calloc(share ? share : 1, sizeof(*fds));

	w->ok = ssl && fds;
	if (!w->ok)
		snprintf(w->err, sizeof(w->err), "out of memory");
	for (i = 0; w->ok && i < share; i++) {
		ssl[i] = tls_open(w, &fds[i]);
		if (!ssl[i] || roundtrip(w, ssl[i])) {
			char why[sizeof(w->err)];

			memcpy(why, w->err, sizeof(why));
			snprintf(w->err, sizeof(w->err), "its connection %u of %u: %.400s", i + 1, share, why);
			w->ok = false;
			break;
		}
		SSL_set_mode(ssl[i], SSL_MODE_RELEASE_BUFFERS);
		w->ops++;
		__atomic_fetch_add(&idle_open, 1, __ATOMIC_RELAXED);
	}
	pthread_barrier_wait(&idle_up);
	if (w->idx == 0) {
		unsigned long long n = __atomic_load_n(&idle_open, __ATOMIC_RELAXED);

		if (n == opt.conns)
			fprintf(stderr, "idle: %llu connections open\n", n);
		else
			fprintf(stderr, "idle: only %llu of %u connections open\n", n, opt.conns);
		fflush(stderr);
	}
	if (w->ok && opt.until_file)
		while (running(0))
			sleep_s(0.05);
	else if (w->ok)
		sleep_s(opt.duration);
	for (i = 0; i < share; i++)
		tls_close(ssl[i], fds[i]);
	free(ssl);
	free(fds);
}

/* flood: control records written by the client's own kernel TLS */
void run_flood(struct worker *w)
{
	unsigned char body[2] = { 1, 90 };	/* warning, user_canceled */
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	unsigned long long i, count = opt.count ? opt.count : 10000;
	int fd;
	SSL *ssl = tls_open(w, &fd);

	if (!ssl)
		return;
	if (!BIO_get_ktls_send(SSL_get_wbio(ssl))) {
		snprintf(w->err, sizeof(w->err), "the client could not enable kernel TLS transmit "
			 "(needs the tls ULP, TLS 1.2 AES-GCM)");
		tls_close(ssl, fd);
		return;
	}
	for (i = 0; i < count; i++) {
		struct iovec iov = { .iov_base = body, .iov_len = sizeof(body) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				      .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

		cm->cmsg_level = 282;	/* SOL_TLS */
		cm->cmsg_type = 1;	/* TLS_SET_RECORD_TYPE */
		cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
		*CMSG_DATA(cm) = 21;	/* alert */
		if (sendmsg(fd, &msg, 0) < 0) {
			snprintf(w->err, sizeof(w->err), "alert %llu: %s", i, strerror(errno));
			tls_close(ssl, fd);
			return;
		}
		w->sent++;
	}
	if (roundtrip(w, ssl)) {
		tls_close(ssl, fd);
		return;
	}
	fprintf(stderr, "flood: %llu alerts sent, round trip ok\n", count);
	fflush(stderr);
	sleep_s(opt.duration);
	w->ok = true;
	tls_close(ssl, fd);
}
