/*
 * kg-loadgen's parts: the options, one connection's worker and the helpers
 * the modes share (loadgen.c), and the modes themselves (modes.c).
 */
#ifndef KG_LOADGEN_H
#define KG_LOADGEN_H

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
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "stream.h"

#define CHUNK (16 * 1024)

enum mode { M_ECHO, M_UPLOAD, M_DOWNLOAD, M_HANDSHAKE, M_RR, M_IDLE, M_FLOOD };

struct lg_opts {
	enum mode mode;
	const char *mode_name, *connect, *cert, *key, *cacert, *servername;
	const char *ciphers, *ciphersuites;
	int tls;
	bool no_half_close;	/* for peers that end the stream on close_notify */
	unsigned long long abort_after;	/* echo: RST after sending this much (0 = never) */
	unsigned long long keyupdates;	/* echo, TLS 1.3: KeyUpdates to send, spread over --bytes */
	bool bytes_given;
	bool servername_is_ip;
	unsigned conns;
	unsigned long long bytes, count;
	double duration;
	const char *until_file;	/* run until this exists (instead of duration) */
	struct sockaddr_storage ss;
	socklen_t sl;
	SSL_CTX *ctx;
};
extern struct lg_opts opt;

struct worker {
	pthread_t th;
	unsigned idx;
	unsigned long long sent, received, ops, errors, keyupdates;
	bool ok;
	double *lat;		/* microseconds */
	size_t nlat, caplat;
	char sha256[65];	/* download: hash of what arrived */
	char err[512];
};

double now_s(void);
void set_err(struct worker *w, const char *what, SSL *ssl, int ret);
void sleep_s(double s);
void add_lat(struct worker *w, double us);
int tcp_connect(void);
SSL *tls_open(struct worker *w, int *fdp);
void tls_close(SSL *ssl, int fd);
int write_all(struct worker *w, SSL *ssl, const void *buf, size_t len);
int read_exact(struct worker *w, SSL *ssl, void *buf, size_t len);

void run_echo(struct worker *w);
void run_upload(struct worker *w);
void run_download(struct worker *w);
void run_handshake(struct worker *w);
void run_rr(struct worker *w);
void run_idle(struct worker *w, unsigned nthreads);
void run_flood(struct worker *w);

extern pthread_barrier_t idle_up;

#endif
