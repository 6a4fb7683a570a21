/*
 * kg-loadgen: an mTLS client and load generator (OpenSSL, one thread per
 * connection for bulk modes).
 *
 *   kg-loadgen MODE --connect HOST:PORT --cert F --key F --cacert F
 *              [--servername NAME] [-c CONNS] [--bytes N[K|M|G]] [--duration S]
 *              [-n COUNT] [--tls 1.2|1.3] [--ciphers L] [--ciphersuites L]
 *              [--no-half-close] [--abort-after N] [--until-file F] [--keyupdate N]
 *
 * echo      each connection sends N bytes of the shared stream (seeded by its
 *           index) in 16 KiB writes while reading the echo, then close_notify;
 *           SHA-256 of sent and received bytes must match
 * upload    send N bytes, close_notify; a `sink` backend answers its count + hash
 * download  read a `source` backend's stream (seed 0) until close_notify and
 *           check it; with --bytes, the length too
 * handshake full mTLS handshakes (no resumption) + one 64-byte round trip
 * rr        64-byte request/response on persistent connections: p50/p99/p999
 * idle      open CONNS connections (handshake + round trip), hold them idle
 * flood     TLS 1.2 AES-GCM with kernel TLS on the client: send -n COUNT
 *           warning alerts (user_canceled) as separate records, then one
 *           round trip, then hold the connection idle for --duration
 *
 * --abort-after N (echo): after sending N bytes, reset the connection
 * (SO_LINGER 0, no close_notify) and count it as failed.
 *
 * --keyupdate N (echo, TLS 1.3): send N KeyUpdates per connection, evenly
 * spread over the bytes sent, every other one with update_requested (the
 * peer must then send its own); the data must still come back intact.
 *
 * --until-file F (handshake, rr, idle): run until the file F exists instead
 * of for --duration seconds, so that a test can stop a background client
 * when it is done, however slow the machine.
 *
 * --no-half-close is for peers that end the whole stream on close_notify or
 * send a bare FIN: echo closes once everything came back, upload does not
 * send close_notify first (the sink needs --bytes N), download accepts a FIN.
 *
 * One JSON summary line on stdout; exit 0 only if every connection verified,
 * 1 otherwise (one line per failed connection on stderr), 2 for usage errors.
 */
#include "loadgen.h"

struct lg_opts opt = { .servername = "localhost", .conns = 1, .bytes = 16 << 20, .duration = 5 };
static unsigned nthreads;	/* worker threads: connections, or at most 8 for idle */

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Describe why an SSL call failed: the OpenSSL error queue (which carries
 * alerts, e.g. "tlsv13 alert certificate required"), the certificate
 * verification result, or the socket error. Clears the queue. */
void set_err(struct worker *w, const char *what, SSL *ssl, int ret)
{
	int saved = errno, se = ssl ? SSL_get_error(ssl, ret) : SSL_ERROR_SSL;
	char msg[400] = "";
	size_t len = 0;
	unsigned long e;
	long vr;

	while ((e = ERR_get_error()) && len < sizeof(msg) - 2) {
		if (len)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "; ");
		if (len < sizeof(msg) - 1)
			ERR_error_string_n(e, msg + len, sizeof(msg) - len);
		len = strlen(msg);
	}
	if (!len) {
		if (se == SSL_ERROR_ZERO_RETURN)
			snprintf(msg, sizeof(msg), "the peer closed the TLS stream (close_notify)");
		else if (se == SSL_ERROR_SYSCALL)
			snprintf(msg, sizeof(msg), "%s", saved ? strerror(saved) :
				 "connection closed by the peer without close_notify");
		else
			snprintf(msg, sizeof(msg), "SSL error %d", se);
		len = strlen(msg);
	}
	if (ssl && (vr = SSL_get_verify_result(ssl)) != X509_V_OK)
		snprintf(msg + len, sizeof(msg) - len, "; server certificate: %s",
			 X509_verify_cert_error_string(vr));
	snprintf(w->err, sizeof(w->err), "%s: %s", what, msg);
	ERR_clear_error();
}

void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void add_lat(struct worker *w, double us)
{
	if (w->nlat == w->caplat) {
		size_t n = w->caplat ? w->caplat * 2 : 4096;
		double *p = realloc(w->lat, n * sizeof(*p));

		if (!p)
			return;
		w->lat = p;
		w->caplat = n;
	}
	w->lat[w->nlat++] = us;
}

int tcp_connect(void)
{
	int fd = socket(opt.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&opt.ss, opt.sl)) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Blocking connect + handshake. NULL on failure (w->err set). */
SSL *tls_open(struct worker *w, int *fdp)
{
	int fd = tcp_connect(), r;
	SSL *ssl;

	if (fd < 0) {
		snprintf(w->err, sizeof(w->err), "connect %s: %s", opt.connect, strerror(errno));
		return NULL;
	}
	ssl = SSL_new(opt.ctx);
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		set_err(w, "SSL_new", NULL, 0);
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	if (opt.servername_is_ip) {
		/* no SNI for address literals (RFC 6066); check the IP SAN */
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), opt.servername);
	} else {
		SSL_set_tlsext_host_name(ssl, opt.servername);
		SSL_set1_host(ssl, opt.servername);
	}
	r = SSL_connect(ssl);
	if (r != 1) {
		set_err(w, "handshake", ssl, r);
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	*fdp = fd;
	return ssl;
}

void tls_close(SSL *ssl, int fd)
{
	if (!ssl)
		return;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
}

int write_all(struct worker *w, SSL *ssl, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		int n = SSL_write(ssl, p, (int)len);

		if (n <= 0) {
			set_err(w, "write", ssl, n);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_exact(struct worker *w, SSL *ssl, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		int n = SSL_read(ssl, p, (int)len);

		if (n <= 0) {
			set_err(w, "read", ssl, n);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	switch (opt.mode) {
	case M_ECHO:
		run_echo(w);
		break;
	case M_UPLOAD:
		run_upload(w);
		break;
	case M_DOWNLOAD:
		run_download(w);
		break;
	case M_HANDSHAKE:
		run_handshake(w);
		break;
	case M_RR:
		run_rr(w);
		break;
	case M_IDLE:
		run_idle(w, nthreads);
		break;
	case M_FLOOD:
		run_flood(w);
		break;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static int parse_connect(const char *s)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	size_t hl;

	if (!colon || (hl = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl > 1 && host[0] == '[') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return -1;
	memcpy(&opt.ss, res->ai_addr, res->ai_addrlen);
	opt.sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: kg-loadgen MODE --connect HOST:PORT --cert FILE --key FILE --cacert FILE\n"
		"         [--servername NAME] [-c CONNS] [--bytes N[K|M|G]] [--duration SECS]\n"
		"         [-n COUNT] [--tls 1.2|1.3] [--ciphers LIST] [--ciphersuites LIST]\n"
		"         [--no-half-close] [--abort-after N] [--until-file FILE] [--keyupdate N]\n"
		"MODE: echo upload download handshake rr idle flood\n");
}


static int bad_arg(const char *name, const char *val)
{
	fprintf(stderr, "kg-loadgen: invalid %s '%s'\n", name, val);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'C' },
		{ "cert", required_argument, NULL, 'e' },
		{ "key", required_argument, NULL, 'k' },
		{ "cacert", required_argument, NULL, 'a' },
		{ "servername", required_argument, NULL, 's' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "duration", required_argument, NULL, 'd' },
		{ "tls", required_argument, NULL, 't' },
		{ "ciphers", required_argument, NULL, 'p' },
		{ "ciphersuites", required_argument, NULL, 'P' },
		{ "conns", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "no-half-close", no_argument, NULL, 'H' },
		{ "abort-after", required_argument, NULL, 'A' },
		{ "until-file", required_argument, NULL, 'U' },
		{ "keyupdate", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static const char *const names[] = { "echo", "upload", "download", "handshake", "rr", "idle", "flood" };
	struct worker *ws;
	struct rlimit rl;
	unsigned long long sent = 0, received = 0, ops = 0, errors = 0, v;
	unsigned char ipbuf[sizeof(struct in6_addr)];
	double t0, secs, *all = NULL;
	size_t nall = 0;
	bool ok = true;
	unsigned i;
	char *end;
	int o;

	while ((o = getopt_long(argc, argv, "c:n:h", opts, NULL)) != -1) {
		switch (o) {
		case 'C': opt.connect = optarg; break;
		case 'e': opt.cert = optarg; break;
		case 'k': opt.key = optarg; break;
		case 'a': opt.cacert = optarg; break;
		case 's': opt.servername = optarg; break;
		case 'b':
			if (kg_parse_size(optarg, &opt.bytes))
				return bad_arg("--bytes", optarg);
			opt.bytes_given = true;
			break;
		case 'd':
			errno = 0;
			opt.duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(opt.duration >= 0) || opt.duration > 1e7)
				return bad_arg("--duration", optarg);
			break;
		case 't':
			opt.tls = !strcmp(optarg, "1.2") ? TLS1_2_VERSION :
				  !strcmp(optarg, "1.3") ? TLS1_3_VERSION : -1;
			if (opt.tls < 0)
				return bad_arg("--tls (1.2 or 1.3)", optarg);
			break;
		case 'p': opt.ciphers = optarg; break;
		case 'P': opt.ciphersuites = optarg; break;
		case 'c':
			if (kg_parse_size(optarg, &v) || !v || v > 1000000)
				return bad_arg("-c (1..1000000)", optarg);
			opt.conns = (unsigned)v;
			break;
		case 'n':
			if (kg_parse_size(optarg, &opt.count))
				return bad_arg("-n", optarg);
			break;
		case 'H': opt.no_half_close = true; break;
		case 'A':
			if (kg_parse_size(optarg, &opt.abort_after) || !opt.abort_after)
				return bad_arg("--abort-after", optarg);
			break;
		case 'U': opt.until_file = optarg; break;
		case 'K':
			if (kg_parse_size(optarg, &opt.keyupdates))
				return bad_arg("--keyupdate", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "kg-loadgen: %s\n", optind == argc ? "missing MODE" : "more than one MODE");
		usage(stderr);
		return 2;
	}
	for (i = 0; i < 7; i++)
		if (!strcmp(argv[optind], names[i]))
			break;
	if (i == 7) {
		fprintf(stderr, "kg-loadgen: unknown mode '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	opt.mode = (enum mode)i;
	opt.mode_name = names[i];
	if (!opt.connect || !opt.cert || !opt.key || !opt.cacert) {
		fprintf(stderr, "kg-loadgen: --connect, --cert, --key and --cacert are required\n");
		usage(stderr);
		return 2;
	}
	if (parse_connect(opt.connect)) {
		fprintf(stderr, "kg-loadgen: cannot resolve '%s' (HOST:PORT)\n", opt.connect);
		return 2;
	}
	opt.servername_is_ip = inet_pton(AF_INET, opt.servername, ipbuf) == 1 ||
			       inet_pton(AF_INET6, opt.servername, ipbuf) == 1;
	signal(SIGPIPE, SIG_IGN);
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			fprintf(stderr, "kg-loadgen: cannot raise the open file limit: %s\n", strerror(errno));
	}
	opt.ctx = SSL_CTX_new(TLS_client_method());
	if (!opt.ctx) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	if (SSL_CTX_load_verify_locations(opt.ctx, opt.cacert, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "kg-loadgen: cannot load CA certificates from %s\n", opt.cacert);
		return 2;
	}
	if (SSL_CTX_use_certificate_chain_file(opt.ctx, opt.cert) != 1) {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "kg-loadgen: cannot load the client certificate chain from %s\n", opt.cert);
		return 2;
	}
	if (SSL_CTX_use_PrivateKey_file(opt.ctx, opt.key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "kg-loadgen: cannot load the private key from %s (or it does not "
			"match the certificate)\n", opt.key);
		return 2;
	}
	if ((opt.ciphers && SSL_CTX_set_cipher_list(opt.ctx, opt.ciphers) != 1) ||
	    (opt.ciphersuites && SSL_CTX_set_ciphersuites(opt.ctx, opt.ciphersuites) != 1)) {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "kg-loadgen: cipher list not accepted: %s\n",
			opt.ciphersuites ? opt.ciphersuites : opt.ciphers);
		return 2;
	}
	SSL_CTX_set_verify(opt.ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(opt.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(opt.ctx, SSL_OP_NO_TICKET);
	if (opt.mode == M_FLOOD) {
		SSL_CTX_set_options(opt.ctx, SSL_OP_ENABLE_KTLS);
		opt.tls = TLS1_2_VERSION;
		if (!opt.ciphers)
			SSL_CTX_set_cipher_list(opt.ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
	}
	if (opt.tls) {
		SSL_CTX_set_min_proto_version(opt.ctx, opt.tls);
		SSL_CTX_set_max_proto_version(opt.ctx, opt.tls);
	}
	/* idle mode: a few threads open many connections each */
	nthreads = opt.mode == M_IDLE ? (opt.conns < 8 ? opt.conns : 8) : opt.conns;
	if (opt.mode == M_IDLE)
		pthread_barrier_init(&idle_up, NULL, nthreads);
	ws = calloc(nthreads, sizeof(*ws));
	if (!ws) {
		fprintf(stderr, "kg-loadgen: out of memory\n");
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < nthreads; i++) {
		pthread_attr_t attr;
		int err;

		ws[i].idx = i;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 512 * 1024);
		err = pthread_create(&ws[i].th, &attr, worker_main, &ws[i]);
		pthread_attr_destroy(&attr);
		if (err) {
			fprintf(stderr, "kg-loadgen: cannot start thread %u: %s\n", i, strerror(err));
			return 1;
		}
	}
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &ws[i];

		pthread_join(w->th, NULL);
		sent += w->sent;
		received += w->received;
		ops += w->ops;
		if (opt.mode == M_HANDSHAKE) {
			errors += w->errors;
			if (w->errors)
				fprintf(stderr, "kg-loadgen: thread %u: %llu of %llu handshakes failed, "
					"last: %s\n", i, w->errors, w->errors + w->ops, w->err);
		} else if (!w->ok) {
			errors++;
			fprintf(stderr, "kg-loadgen: %s %u failed: %s\n",
				opt.mode == M_IDLE ? "thread" : "connection", i,
				w->err[0] ? w->err : "unknown error");
		}
		if (!w->ok)
			ok = false;
		if (w->nlat) {
			double *p = realloc(all, (nall + w->nlat) * sizeof(*all));

			if (p) {
				all = p;
				memcpy(all + nall, w->lat, w->nlat * sizeof(*all));
				nall += w->nlat;
			}
		}
	}
	secs = now_s() - t0;
	if (nall)
		qsort(all, nall, sizeof(*all), cmp_double);
	printf("{\"mode\":\"%s\",\"conns\":%u,\"seconds\":%.3f", opt.mode_name, opt.conns, secs);
	switch (opt.mode) {
	case M_ECHO:
	case M_UPLOAD:
	case M_DOWNLOAD:
		printf(",\"bytes_sent\":%llu,\"bytes_received\":%llu,\"mbytes_per_s\":%.1f,"
		       "\"mbytes_per_s_sent\":%.1f,\"mbytes_per_s_received\":%.1f", sent, received,
		       (double)(opt.mode == M_DOWNLOAD ? received : sent) / secs / 1e6,
		       (double)sent / secs / 1e6, (double)received / secs / 1e6);
		if (opt.mode == M_DOWNLOAD && ws[0].sha256[0])
			printf(",\"sha256\":\"%s\"", ws[0].sha256);
		if (opt.keyupdates) {
			unsigned long long ku = 0;

			for (i = 0; i < nthreads; i++)
				ku += ws[i].keyupdates;
			printf(",\"keyupdates_sent\":%llu", ku);
		}
		break;
	case M_HANDSHAKE:
		printf(",\"handshakes\":%llu,\"rate\":%.1f,\"p50_us\":%.0f,\"p99_us\":%.0f", ops,
		       (double)ops / secs, pct(all, nall, 0.50), pct(all, nall, 0.99));
		break;
	case M_RR: {
		/* fairness: requests served per connection, fewest and most */
		unsigned long long lo = ~0ULL, hi = 0;

		for (i = 0; i < nthreads; i++) {
			lo = ws[i].ops < lo ? ws[i].ops : lo;
			hi = ws[i].ops > hi ? ws[i].ops : hi;
		}
		printf(",\"requests\":%llu,\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		       "\"p999_us\":%.1f,\"max_us\":%.1f,\"per_conn_min\":%llu,\"per_conn_max\":%llu",
		       ops, (double)ops / secs, pct(all, nall, 0.50), pct(all, nall, 0.99),
		       pct(all, nall, 0.999), nall ? all[nall - 1] : 0.0, nthreads ? lo : 0, hi);
		break;
	}
	case M_IDLE:
		printf(",\"opened\":%llu", ops);
		break;
	case M_FLOOD:
		printf(",\"alerts_sent\":%llu", sent);
		break;
	}
	printf(",\"errors\":%llu,\"ok\":%s}\n", errors, ok ? "true" : "false");
	fflush(stdout);
	for (i = 0; i < nthreads; i++)
		free(ws[i].lat);
	free(ws);
	free(all);
	SSL_CTX_free(opt.ctx);
	return ok ? 0 : 1;
}
