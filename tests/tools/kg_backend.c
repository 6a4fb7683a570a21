/*
 * kg-backend: a plain TCP backend for tests, benchmarks and the demo.
 *
 *   kg-backend --listen HOST:PORT [--mode echo|http|sink|source] [--bytes N]
 *              [--port-file FILE] [--count-file FILE] [--verbose]
 *
 * echo   echoes everything; on EOF from the peer it finishes, then half-closes
 * http   answers one request with a fixed 200 response and closes
 * sink   reads everything; on EOF (or at --bytes N) writes "<bytes> <sha256hex>\n"
 * source writes N bytes of the shared deterministic stream, half-closes
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

enum mode { M_ECHO, M_HTTP, M_SINK, M_SOURCE };

static enum mode mode = M_ECHO;
static unsigned long long source_bytes = 1 << 20;
static bool bytes_given;
static const char *count_file;
static bool verbose;
static unsigned long accepted;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static int write_file_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f) || rename(tmp, path))
		return -errno;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void drain_until_eof(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

#define BUFSZ (256 * 1024)

static void serve_echo(int fd)
{
	char *buf = malloc(BUFSZ);
	ssize_t n;

	while (buf && (n = recv(fd, buf, BUFSZ, 0)) > 0)
		if (write_all(fd, buf, (size_t)n))
			goto out;
	shutdown(fd, SHUT_WR);
out:
	free(buf);
}

static void serve_http(int fd)
{
	static const char body[] = "hello from the ktlsgw demo backend\n";
	char req[8192], resp[512];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(req) - 1) {
		n = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	n = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof(body) - 1, body);
	(void)write_all(fd, resp, (size_t)n);
	shutdown(fd, SHUT_WR);
	drain_until_eof(fd);
}

static void serve_sink(int fd)
{
	char *buf = malloc(BUFSZ);
	struct kg_sha256 h;
	unsigned long long total = 0;
	char line[128], hex[65];
	ssize_t n;

	if (!buf)
		return;
	kg_sha256_init(&h);
	while ((n = recv(fd, buf, BUFSZ, 0)) > 0) {
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
	n = snprintf(line, sizeof(line), "%llu %s\n", total, hex);
	(void)write_all(fd, line, (size_t)n);
	shutdown(fd, SHUT_WR);
}

static void serve_source(int fd)
{
	uint8_t *buf = malloc(BUFSZ);
	struct kg_stream s;
	unsigned long long left = source_bytes;

	kg_stream_init(&s, 0);
	while (buf && left) {
		size_t chunk = left < BUFSZ ? (size_t)left : BUFSZ;

		kg_stream_fill(&s, buf, chunk);
		if (write_all(fd, buf, chunk)) {
			free(buf);
			return;
		}
		left -= chunk;
	}
	free(buf);
	shutdown(fd, SHUT_WR);
	drain_until_eof(fd);
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;

	switch (mode) {
	case M_ECHO:
		serve_echo(fd);
		break;
	case M_HTTP:
		serve_http(fd);
		break;
	case M_SINK:
		serve_sink(fd);
		break;
	case M_SOURCE:
		serve_source(fd);
		break;
	}
	if (verbose)
		fprintf(stderr, "kg-backend: connection closed\n");
	close(fd);
	return NULL;
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	size_t hl;

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
	if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res))
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: kg-backend --listen HOST:PORT [--mode echo|http|sink|source] "
		"[--bytes N] [--port-file FILE] [--count-file FILE] [--verbose]\n");
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
			else {
				fprintf(stderr, "kg-backend: unknown mode '%s'\n", optarg);
				return 2;
			}
			break;
		case 'b':
			source_bytes = strtoull(optarg, NULL, 0);
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
	if (!listen_s || parse_listen(listen_s, &ss, &sl)) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&ss, sl) || listen(lfd, 4096)) {
		fprintf(stderr, "kg-backend: cannot listen on %s: %s\n", listen_s, strerror(errno));
		return 1;
	}
	if (count_file && write_file_atomic(count_file, "0\n"))
		fprintf(stderr, "kg-backend: cannot write %s\n", count_file);
	if (port_file) {
		char text[32];

		sl = sizeof(ss);
		getsockname(lfd, (struct sockaddr *)&ss, &sl);
		snprintf(text, sizeof(text), "%u\n", ntohs(ss.ss_family == AF_INET6 ?
			 ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port));
		if (write_file_atomic(port_file, text)) {
			fprintf(stderr, "kg-backend: cannot write %s\n", port_file);
			return 1;
		}
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		pthread_t th;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

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
		if (count_file) {
			char text[32];

			pthread_mutex_lock(&count_lock);
			snprintf(text, sizeof(text), "%lu\n", ++accepted);
			(void)write_file_atomic(count_file, text);
			pthread_mutex_unlock(&count_lock);
		}
		if (verbose)
			fprintf(stderr, "kg-backend: connection %lu\n", accepted);
		if (pthread_create(&th, &attr, conn_thread, (void *)(intptr_t)fd)) {
			fprintf(stderr, "kg-backend: cannot start a thread: out of resources\n");
			close(fd);
			continue;
		}
	}
}
