/*
 * kg-backend: a plain TCP backend for tests, benchmarks and the demo.
 *
 *   kg-backend --listen HOST:PORT [--mode echo|http|sink|source|reset|stall] [--bytes N[K|M|G]]
 *              [--port-file FILE] [--count-file FILE] [--verbose]
 *
 * echo   echoes everything; on EOF from the peer it finishes, then half-closes
 * http   answers one request with a fixed 200 response and closes
 * sink   reads everything; on EOF (or at --bytes N) writes "<bytes> <sha256hex>\n"
 * source writes N bytes (default 1 MiB) of the shared deterministic stream
 *        (seed 0), half-closes, reads until EOF
 * reset  echoes until N bytes came in (default 1 MiB), then aborts the
 *        connection with an RST (SO_LINGER 0)
 * stall  accepts and never reads: the peer's writes pile up (backpressure)
 *
 * --port-file gets the bound port once listening; both files are written
 * atomically (temporary file + rename). Runs until SIGTERM/SIGINT.
 * Exit status: 1 runtime error, 2 usage error.
 *
 * One thread per connection. --count-file holds the number of connections
 * accepted so far (tests assert that a rejected client never got here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../bench/loadgen/stream.h"

enum mode { M_ECHO, M_HTTP, M_SINK, M_SOURCE, M_RESET, M_STALL };

static enum mode mode = M_ECHO;
static unsigned long long source_bytes = 1 << 20;
static bool bytes_given;
static const char *count_file;
static bool verbose;
static unsigned long accepted;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const mode_names[] = { "echo", "http", "sink", "source", "reset", "stall" };

struct conn {
	int fd;
	unsigned long id;
	unsigned long long in, out;
	char peer[INET6_ADDRSTRLEN + 8];
};

static int write_file_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0) {
		int err = -errno;

		fclose(f);
		unlink(tmp);
		return err;
	}
	if (fclose(f) || rename(tmp, path)) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

static int write_all(struct conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		c->out += (unsigned long long)n;
	}
	return 0;
}

static ssize_t read_some(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(c->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		c->in += (unsigned long long)n;
	return n;
}

static void drain_until_eof(struct conn *c)
{
	char buf[4096];

	while (read_some(c, buf, sizeof(buf)) > 0)
		;
}

#define BUFSZ (256 * 1024)

/* The peer reads concurrently, so a blocking read -> write-all loop cannot
 * deadlock. EOF: everything read was written back; half-close. */
static void serve_echo(struct conn *c)
{
	char *buf = malloc(BUFSZ);
	ssize_t n;

	if (!buf)
		return;
	while ((n = read_some(c, buf, BUFSZ)) > 0)
		if (write_all(c, buf, (size_t)n))
			goto out;
	if (n == 0)
		shutdown(c->fd, SHUT_WR);
out:
	free(buf);
}

static void serve_http(struct conn *c)
{
	static const char body[] = "hello from the ktlsgw demo backend\n";
	char req[8192], resp[512];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(req) - 1) {
		n = read_some(c, req + got, sizeof(req) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	n = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof(body) - 1, body);
	if (write_all(c, resp, (size_t)n))
		return;
	shutdown(c->fd, SHUT_WR);
	drain_until_eof(c);
}

static void serve_sink(struct conn *c)
{
	char *buf = malloc(BUFSZ);
	struct kg_sha256 h;
	unsigned long long total = 0;
	char line[128], hex[65];
	ssize_t n;

	if (!buf)
		return;
	kg_sha256_init(&h);
	while ((n = read_some(c, buf, BUFSZ)) > 0) {
		size_t take = (size_t)n;

		/* with --bytes N, answer at N bytes without waiting for EOF (peers
		 * that cannot half-close) */
		if (bytes_given && total + take > source_bytes)
			take = (size_t)(source_bytes - total);
		kg_sha256_update(&h, buf, take);
		total += take;
		if (bytes_given && total >= source_bytes)
			break;
	}
	free(buf);
	kg_sha256_hex(&h, hex);
	if (n < 0)
		return;	/* reset: nobody to answer */
	n = snprintf(line, sizeof(line), "%llu %s\n", total, hex);
	if (!write_all(c, line, (size_t)n))
		shutdown(c->fd, SHUT_WR);
}

static void serve_source(struct conn *c)
{
	uint8_t *buf = malloc(BUFSZ);
	struct kg_stream s;
	unsigned long long left = source_bytes;

	kg_stream_init(&s, 0);
	while (buf && left) {
		size_t chunk = left < BUFSZ ? (size_t)left : BUFSZ;

		kg_stream_fill(&s, buf, chunk);
		if (write_all(c, buf, chunk)) {
			free(buf);
			return;
		}
		left -= chunk;
	}
	if (!buf)
		return;
	free(buf);
	shutdown(c->fd, SHUT_WR);
	drain_until_eof(c);
}

static void serve_reset(struct conn *c)
{
	char buf[16384];
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	ssize_t n;

	while (c->in < source_bytes && (n = read(c->fd, buf, sizeof(buf))) > 0) {
		c->in += (unsigned long long)n;
		if (write_all(c, buf, (size_t)n))
			return;
	}
	/* close() with a zero linger sends RST instead of FIN */
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void serve_stall(struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };

	/* never read: wait only for the peer to go away (no POLLIN) */
	while (poll(&p, 1, -1) == 0 || (p.revents == 0))
		;
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;

	switch (mode) {
	case M_ECHO:
		serve_echo(c);
		break;
	case M_HTTP:
		serve_http(c);
		break;
	case M_SINK:
		serve_sink(c);
		break;
	case M_SOURCE:
		serve_source(c);
		break;
	case M_RESET:
		serve_reset(c);
		break;
	case M_STALL:
		serve_stall(c);
		break;
	}
	if (verbose)
		fprintf(stderr, "kg-backend: connection %lu from %s (%s): %llu bytes in, %llu out\n",
			c->id, c->peer, mode_names[mode], c->in, c->out);
	close(c->fd);
	free(c);
	return NULL;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		snprintf(out, len, "?");
	}
}


static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	size_t hl;
	int err;

	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	if (!colon[1])
		return -EINVAL;
	if ((err = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res))) {
		fprintf(stderr, "kg-backend: cannot resolve '%s': %s\n", s, gai_strerror(err));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: kg-backend --listen HOST:PORT [--mode echo|http|sink|source|reset|stall] "
		"[--bytes N[K|M|G]]\n                  [--port-file FILE] [--count-file FILE] [--verbose]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "mode", required_argument, NULL, 'm' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "count-file", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *listen_s = NULL, *port_file = NULL;
	struct sockaddr_storage ss;
	socklen_t sl;
	pthread_attr_t attr;
	int o, lfd, one = 1;

	while ((o = getopt_long(argc, argv, "l:m:b:p:c:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen_s = optarg;
			break;
		case 'm':
			if (!strcmp(optarg, "echo"))
				mode = M_ECHO;
			else if (!strcmp(optarg, "http"))
				mode = M_HTTP;
			else if (!strcmp(optarg, "sink"))
				mode = M_SINK;
			else if (!strcmp(optarg, "source"))
				mode = M_SOURCE;
			else if (!strcmp(optarg, "reset"))
				mode = M_RESET;
			else if (!strcmp(optarg, "stall"))
				mode = M_STALL;
			else {
				fprintf(stderr, "kg-backend: unknown mode '%s'\n", optarg);
				return 2;
			}
			break;
		case 'b':
			if (kg_parse_size(optarg, &source_bytes)) {
				fprintf(stderr, "kg-backend: invalid --bytes '%s'\n", optarg);
				return 2;
			}
			bytes_given = true;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'c':
			count_file = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kg-backend: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!listen_s) {
		fprintf(stderr, "kg-backend: --listen HOST:PORT is required\n");
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen_s, &ss, &sl)) {
		fprintf(stderr, "kg-backend: invalid --listen '%s' (HOST:PORT)\n", listen_s);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&ss, sl) || listen(lfd, 4096)) {
		fprintf(stderr, "kg-backend: cannot listen on %s: %s\n", listen_s, strerror(errno));
		return 1;
	}
	if (count_file && (o = write_file_atomic(count_file, "0\n"))) {
		fprintf(stderr, "kg-backend: cannot write %s: %s\n", count_file, strerror(-o));
		return 1;
	}
	if (port_file) {
		char text[32];

		sl = sizeof(ss);
		if (getsockname(lfd, (struct sockaddr *)&ss, &sl)) {
			fprintf(stderr, "kg-backend: getsockname: %s\n", strerror(errno));
			return 1;
		}
		snprintf(text, sizeof(text), "%u\n", ntohs(ss.ss_family == AF_INET6 ?
			 ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port));
		if ((o = write_file_atomic(port_file, text))) {
			fprintf(stderr, "kg-backend: cannot write %s: %s\n", port_file, strerror(-o));
			return 1;
		}
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		struct conn *c;
		pthread_t th;
		int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				usleep(10000);
				continue;
			}
			fprintf(stderr, "kg-backend: accept: %s\n", strerror(errno));
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			fprintf(stderr, "kg-backend: out of memory\n");
			close(fd);
			continue;
		}
		c->fd = fd;
		format_peer(&peer, c->peer, sizeof(c->peer));
		/* count before serving: a test reading the file after its client
		 * got an answer sees this connection */
		pthread_mutex_lock(&count_lock);
		c->id = ++accepted;
		if (count_file) {
			char text[32];

			snprintf(text, sizeof(text), "%lu\n", c->id);
			if ((o = write_file_atomic(count_file, text)))
				fprintf(stderr, "kg-backend: cannot write %s: %s\n", count_file, strerror(-o));
		}
		pthread_mutex_unlock(&count_lock);
		if ((o = pthread_create(&th, &attr, conn_thread, c))) {
			fprintf(stderr, "kg-backend: cannot start a thread: %s\n", strerror(o));
			close(fd);
			free(c);
			continue;
		}
	}
}
