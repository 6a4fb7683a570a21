/*
 * ktls_ab: the data-path A/B for kernel TLS, outside the gateway.
 *
 * A relay process moves plaintext between a kTLS socket and a plain TCP
 * socket, the way a gateway worker does, with one of three methods:
 *
 *   splice    splice(2) socket -> pipe -> socket (the gateway's kTLS path)
 *   recvsend  recv(2) into a buffer, send(2) it on (a copy, the kernel still
 *             does the crypto)
 *   uring     IORING_OP_SPLICE socket -> pipe and pipe -> socket (liburing)
 *
 * Directions: "rx" = the relay reads a kTLS socket (the kernel decrypts) and
 * writes a plain one, like client -> backend; "tx" = it reads a plain socket
 * and writes a kTLS one (the kernel encrypts), like backend -> client.
 *
 * Both kTLS ends are a loopback TCP pair with the same AES-128-GCM keys
 * installed by setsockopt(SOL_TLS) on each end (TX on one, RX on the other,
 * both directions), so the kernel does the crypto on both ends and no TLS
 * library is involved. "--tls none" runs the same relays over plain TCP: a
 * baseline, and a way to check the tool where the kernel has no kTLS.
 *
 * Each cell: a source thread sends for --seconds, then shuts down; the relay
 * (a child process, so that its CPU time is its own: wait4 rusage, io-wq
 * threads included) moves everything; the sink counts. One JSON line per
 * cell on stdout:
 *   {"tool":"ktls_ab","tls":"1.3","dir":"rx","method":"uring","ok":true,
 *    "bytes":..,"seconds":..,"mbytes_per_s":..,"relay_cpu_s":..,
 *    "relay_main_thread_cpu_s":..,"cpu_s_per_gib":..,"iou_wrk_threads_max":..}
 * A cell that cannot run says so: {"ok":false,"unavailable":true,"error":..}.
 * iou_wrk_threads_max is the most threads named iou-wrk-* seen at once in the
 * relay (sampled every 5 ms); relay_cpu_s - relay_main_thread_cpu_s is the
 * CPU that ran outside the relay's own thread (io-wq workers).
 *
 * Exit 0 if every cell that could run succeeded (kTLS missing is not a
 * failure: those cells say "unavailable"), 1 if a cell failed, 2 for usage.
 * Every blocking call is bounded (socket timeouts, alarm in the relay, a
 * wall-clock deadline on every loop).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

enum ab_method { AB_SPLICE, AB_RECVSEND, AB_URING, AB__METHODS };
static const char *const ab_method_name[AB__METHODS] = { "splice", "recvsend", "uring" };

static struct {
	double seconds;
	size_t chunk;
	int tls_mask;		/* bit 0: none, 1: 1.2, 2: 1.3 */
	int method_mask;
	int dir_mask;		/* bit 0: rx, 1: tx */
} opt = { .seconds = 2.0, .chunk = 64 * 1024, .tls_mask = 7, .method_mask = 7, .dir_mask = 3 };

static double ab_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ab_tv(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Socket timeouts: no send or receive may block past this. */
static int ab_timeouts(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

/* A connected loopback TCP pair: *a connected to *b. 0 or -errno. */
static int ab_tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int l = -1, c = -1, s = -1, one = 1, err;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sin, &sl))
		goto fail;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)))
		goto fail;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto fail;
	close(l);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((err = ab_timeouts(c, 5)) || (err = ab_timeouts(s, 5))) {
		close(c);
		close(s);
		return err;
	}
	*a = c;
	*b = s;
	return 0;
fail:
	err = -errno;
	if (c >= 0)
		close(c);
	close(l);
	return err;
}

/* Install one direction's key material on a socket that already has the tls
 * ULP. Both ends of a pair get the same struct: what one encrypts with TX the
 * other decrypts with RX. */
static int ab_set_key(int fd, int dir, int version, const struct tls12_crypto_info_aes_gcm_128 *k)
{
	struct tls12_crypto_info_aes_gcm_128 ci = *k;

	ci.info.version = (unsigned short)version;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	if (setsockopt(fd, SOL_TLS, dir, &ci, sizeof(ci)))
		return -errno;
	return 0;
}

static int ab_random_key(struct tls12_crypto_info_aes_gcm_128 *k)
{
	memset(k, 0, sizeof(*k));
	if (getrandom(k->key, sizeof(k->key), 0) != (ssize_t)sizeof(k->key) ||
	    getrandom(k->iv, sizeof(k->iv), 0) != (ssize_t)sizeof(k->iv) ||
	    getrandom(k->salt, sizeof(k->salt), 0) != (ssize_t)sizeof(k->salt))
		return -EIO;
	return 0;	/* rec_seq starts at 0 on both ends */
}

/* kTLS both ways on the pair (a, b): a TX = b RX with one key, b TX = a RX
 * with another. On failure *what names the step that failed. */
static int ab_ktls_pair(int a, int b, int version, const char **what)
{
	struct tls12_crypto_info_aes_gcm_128 k1, k2;
	int err;

	*what = "TCP_ULP tls";
	if (setsockopt(a, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(b, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		return -errno;
	*what = "random key";
	if ((err = ab_random_key(&k1)) || (err = ab_random_key(&k2)))
		return err;
	*what = "SOL_TLS TLS_TX";
	if ((err = ab_set_key(a, TLS_TX, version, &k1)) || (err = ab_set_key(b, TLS_TX, version, &k2)))
		return err;
	*what = "SOL_TLS TLS_RX";
	if ((err = ab_set_key(b, TLS_RX, version, &k1)) || (err = ab_set_key(a, TLS_RX, version, &k2)))
		return err;
	return 0;
}

/* ---- the relays: move everything from in to out until EOF or deadline ---- */

static int ab_drain_pipe(int pr, int out, size_t n)
{
	unsigned guard = 1u << 20;

	while (n > 0 && guard--) {
		ssize_t m = splice(pr, NULL, out, NULL, n, SPLICE_F_MOVE);

		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			return m < 0 ? -errno : -EPIPE;
		n -= (size_t)m;
	}
	return n ? -ETIMEDOUT : 0;
}

static long long ab_relay_splice(int in, int out, double deadline)
{
	long long total = 0;
	int p[2], err = 0;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	while (ab_now() < deadline) {
		ssize_t n = splice(in, NULL, p[1], NULL, opt.chunk, SPLICE_F_MOVE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((err = ab_drain_pipe(p[0], out, (size_t)n)))
			break;
		total += n;
	}
	close(p[0]);
	close(p[1]);
	if (!err && ab_now() >= deadline)
		err = -ETIMEDOUT;
	return err ? err : total;
}

static long long ab_relay_recvsend(int in, int out, double deadline)
{
	long long total = 0;
	char *buf = malloc(opt.chunk);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (ab_now() < deadline) {
		ssize_t n = recv(in, buf, opt.chunk, 0), off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		while (off < n) {
			ssize_t m = send(out, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				err = m < 0 ? -errno : -EPIPE;
				break;
			}
			off += m;
		}
		if (err)
			break;
		total += n;
	}
	free(buf);
	if (!err && ab_now() >= deadline)
		err = -ETIMEDOUT;
	return err ? err : total;
}

/* One IORING_OP_SPLICE and its completion: bytes moved or -errno. */
static long long ab_uring_splice(struct io_uring *ring, int from, int to, size_t len)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { .tv_sec = 5 };
	int ret;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_splice(sqe, from, -1, to, -1, (unsigned)len, SPLICE_F_MOVE);
	ret = io_uring_submit(ring);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (ret)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

static long long ab_relay_uring(int in, int out, double deadline)
{
	struct io_uring ring;
	long long total = 0;
	int p[2], err = 0;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	err = io_uring_queue_init(8, &ring, 0);
	if (err) {
		close(p[0]);
		close(p[1]);
		return err;
	}
	while (ab_now() < deadline) {
		long long n = ab_uring_splice(&ring, in, p[1], opt.chunk), left;
		unsigned guard = 1u << 20;

		if (n == -EINTR)
			continue;
		if (n < 0) {
			err = (int)n;
			break;
		}
		if (n == 0)
			break;
		for (left = n; left > 0 && guard--;) {
			long long m = ab_uring_splice(&ring, p[0], out, (size_t)left);

			if (m == -EINTR)
				continue;
			if (m <= 0) {
				err = m < 0 ? (int)m : -EPIPE;
				break;
			}
			left -= m;
		}
		if (err)
			break;
		total += n;
	}
	io_uring_queue_exit(&ring);
	close(p[0]);
	close(p[1]);
	if (!err && ab_now() >= deadline)
		err = -ETIMEDOUT;
	return err ? err : total;
}

/* ---- one cell ----------------------------------------------------------- */

struct ab_source {
	pthread_t th;
	int fd;
	double until;
	long long sent;
	int err;
};

static void *ab_source_main(void *arg)
{
	struct ab_source *s = arg;
	static char buf[64 * 1024];
	unsigned i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 131 + 7);
	while (ab_now() < s->until) {
		ssize_t n = send(s->fd, buf, sizeof(buf), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->err = n < 0 ? errno : EPIPE;
			break;
		}
		s->sent += n;
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

struct ab_sampler {
	pthread_t th;
	pid_t pid;
	volatile int stop;
	int max_iou_wrk;
};

static int ab_count_iou_wrk(pid_t pid)
{
	char path[64], comm[64];
	struct dirent *de;
	int n = 0, guard = 4096;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) && guard--) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/comm", (int)pid, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "iou-wrk-", 8))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void *ab_sampler_main(void *arg)
{
	struct ab_sampler *s = arg;
	struct timespec ts = { .tv_nsec = 5 * 1000 * 1000 };
	unsigned guard = 100000;

	while (!s->stop && guard--) {
		int n = ab_count_iou_wrk(s->pid);

		if (n > s->max_iou_wrk)
			s->max_iou_wrk = n;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* What the relay child reports back through a pipe. */
struct ab_relay_result {
	long long bytes;	/* or -errno */
	double main_thread_cpu;
};

static void ab_json_fail(int tls, int dir, int method, bool unavailable, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static const char *ab_tls_name(int tls)
{
	return tls == 0 ? "none" : tls == 1 ? "1.2" : "1.3";
}

static void ab_json_fail(int tls, int dir, int method, bool unavailable, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (i = 0; msg[i]; i++)	/* the message is ours, but keep the JSON valid */
		if (msg[i] == '"' || msg[i] == '\\' || (unsigned char)msg[i] < 0x20)
			msg[i] = ' ';
	printf("{\"tool\":\"ktls_ab\",\"tls\":\"%s\",\"dir\":\"%s\",\"method\":\"%s\",\"ok\":false,"
	       "\"unavailable\":%s,\"error\":\"%s\"}\n", ab_tls_name(tls), dir ? "tx" : "rx",
	       ab_method_name[method], unavailable ? "true" : "false", msg);
	fflush(stdout);
}

/* Run one cell. Returns 0 (ran, or unavailable and said so) or -1 (failed). */
static int ab_cell(int tls, int dir, int method)
{
	int t1 = -1, t2 = -1, p1 = -1, p2 = -1, rp[2] = { -1, -1 }, err, status = 0;
	int relay_in, relay_out, src_fd, sink_fd, ret = -1;
	struct ab_relay_result rr = { .bytes = -EIO };
	struct ab_source src = { 0 };
	struct ab_sampler smp = { 0 };
	struct rusage ru;
	const char *what = "";
	long long got = 0;
	double t0, t_end, deadline;
	char *buf = NULL;
	pid_t pid;

	if ((err = ab_tcp_pair(&t1, &t2)) || (err = ab_tcp_pair(&p1, &p2))) {
		ab_json_fail(tls, dir, method, false, "loopback TCP pair: %s", strerror(-err));
		goto out;
	}
	if (tls && (err = ab_ktls_pair(t1, t2, tls == 1 ? TLS_1_2_VERSION : TLS_1_3_VERSION, &what))) {
		bool unavail = !strcmp(what, "TCP_ULP tls") || err == -ENOPROTOOPT || err == -ENOENT;

		ab_json_fail(tls, dir, method, unavail, "kTLS unavailable: %s: %s%s", what, strerror(-err),
			     !strcmp(what, "TCP_ULP tls") ? " (no tls ULP: CONFIG_TLS off or module tls not loaded)" : "");
		ret = unavail ? 0 : -1;
		goto out;
	}
	/* rx: source -> t1 =kTLS=> t2 -> relay -> p1 -> p2 sink
	 * tx: source -> p2 -> p1 -> relay -> t2 =kTLS=> t1 sink */
	if (dir == 0) {
		src_fd = t1; relay_in = t2; relay_out = p1; sink_fd = p2;
	} else {
		src_fd = p2; relay_in = p1; relay_out = t2; sink_fd = t1;
	}
	buf = malloc(256 * 1024);
	if (!buf || pipe2(rp, O_CLOEXEC)) {
		ab_json_fail(tls, dir, method, false, "setup: %s", strerror(buf ? errno : ENOMEM));
		goto out;
	}
	fflush(stdout);
	deadline = ab_now() + opt.seconds + 20;
	pid = fork();
	if (pid < 0) {
		ab_json_fail(tls, dir, method, false, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		struct rusage self;

		alarm((unsigned)opt.seconds + 25);
		close(rp[0]);
		close(src_fd);
		close(sink_fd);
		rr.bytes = method == AB_SPLICE ? ab_relay_splice(relay_in, relay_out, deadline) :
			   method == AB_RECVSEND ? ab_relay_recvsend(relay_in, relay_out, deadline) :
			   ab_relay_uring(relay_in, relay_out, deadline);
		shutdown(relay_out, SHUT_WR);
		if (!getrusage(RUSAGE_THREAD, &self))
			rr.main_thread_cpu = ab_tv(self.ru_utime) + ab_tv(self.ru_stime);
		if (write(rp[1], &rr, sizeof(rr)) != (ssize_t)sizeof(rr))
			_exit(3);
		_exit(0);
	}
	close(rp[1]);
	rp[1] = -1;
	close(relay_in);	/* t2 and p1 in both directions */
	close(relay_out);
	t2 = -1;
	p1 = -1;
	smp.pid = pid;
	pthread_create(&smp.th, NULL, ab_sampler_main, &smp);
	t0 = ab_now();
	src.fd = src_fd;
	src.until = t0 + opt.seconds;
	pthread_create(&src.th, NULL, ab_source_main, &src);
	err = 0;
	while (ab_now() < deadline) {
		ssize_t n = recv(sink_fd, buf, 256 * 1024, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		got += n;
	}
	t_end = ab_now();
	pthread_join(src.th, NULL);
	if (read(rp[0], &rr, sizeof(rr)) != (ssize_t)sizeof(rr))
		rr.bytes = -EPIPE;
	memset(&ru, 0, sizeof(ru));
	if (wait4(pid, &status, 0, &ru) < 0)
		status = -1;
	smp.stop = 1;
	pthread_join(smp.th, NULL);
	if (err || rr.bytes < 0 || src.err || status != 0 || got != src.sent || got == 0) {
		ab_json_fail(tls, dir, method, false,
			     "sink: %s; relay: %s; source: %s; sent %lld, received %lld, relay status %d",
			     err ? strerror(err) : "ok", rr.bytes < 0 ? strerror((int)-rr.bytes) : "ok",
			     src.err ? strerror(src.err) : "ok", src.sent, got, status);
		goto out;
	}
	{
		double secs = t_end - t0, cpu = ab_tv(ru.ru_utime) + ab_tv(ru.ru_stime);
		double gib = (double)got / (1024.0 * 1024.0 * 1024.0);

		printf("{\"tool\":\"ktls_ab\",\"tls\":\"%s\",\"cipher\":\"%s\",\"dir\":\"%s\",\"method\":\"%s\","
		       "\"ok\":true,\"chunk\":%zu,\"bytes\":%lld,\"seconds\":%.3f,\"mbytes_per_s\":%.1f,"
		       "\"relay_cpu_s\":%.3f,\"relay_main_thread_cpu_s\":%.3f,\"cpu_s_per_gib\":%.3f,"
		       "\"iou_wrk_threads_max\":%d}\n",
		       ab_tls_name(tls), tls ? "AES-128-GCM" : "none", dir ? "tx" : "rx",
		       ab_method_name[method], opt.chunk, got, secs, (double)got / secs / 1e6, cpu,
		       rr.main_thread_cpu, gib > 0 ? cpu / gib : 0.0, smp.max_iou_wrk);
		fflush(stdout);
	}
	ret = 0;
out:
	free(buf);
	{
		int fds[] = { t1, t2, p1, p2, rp[0], rp[1] };

		for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return ret;
}

static int ab_parse_list(const char *arg, const char *const *names, int n, int *mask)
{
	char tmp[128], *save = NULL, *tok;
	int i;

	if (!strcmp(arg, "all")) {
		*mask = (1 << n) - 1;
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s", arg);
	*mask = 0;
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < n && strcmp(tok, names[i]); i++)
			;
		if (i == n)
			return -EINVAL;
		*mask |= 1 << i;
	}
	return *mask ? 0 : -EINVAL;
}

static void ab_usage(FILE *f)
{
	fprintf(f, "Usage: ktls_ab [--seconds S] [--chunk BYTES] [--tls none,1.2,1.3|all]\n"
		"               [--method splice,recvsend,uring|all] [--dir rx,tx|all]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "tls", required_argument, NULL, 't' },
		{ "method", required_argument, NULL, 'm' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static const char *const tls_names[] = { "none", "1.2", "1.3" };
	static const char *const dir_names[] = { "rx", "tx" };
	int o, tls, dir, m, failed = 0;
	char *end;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			opt.seconds = strtod(optarg, &end);
			if (*end || !(opt.seconds > 0) || opt.seconds > 600)
				goto usage;
			break;
		case 'c': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v < 4096 || v > (1u << 20))
				goto usage;
			opt.chunk = v;
			break;
		}
		case 't':
			if (ab_parse_list(optarg, tls_names, 3, &opt.tls_mask))
				goto usage;
			break;
		case 'm':
			if (ab_parse_list(optarg, ab_method_name, AB__METHODS, &opt.method_mask))
				goto usage;
			break;
		case 'd':
			if (ab_parse_list(optarg, dir_names, 2, &opt.dir_mask))
				goto usage;
			break;
		case 'h':
			ab_usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	/* kTLS versions first, then the plain baseline; methods interleaved */
	for (tls = 2; tls >= 0; tls--) {
		if (!(opt.tls_mask & (1 << tls)))
			continue;
		for (dir = 0; dir < 2; dir++) {
			if (!(opt.dir_mask & (1 << dir)))
				continue;
			for (m = 0; m < AB__METHODS; m++)
				if ((opt.method_mask & (1 << m)) && ab_cell(tls, dir, m))
					failed++;
		}
	}
	return failed ? 1 : 0;
usage:
	ab_usage(stderr);
	return 2;
}
