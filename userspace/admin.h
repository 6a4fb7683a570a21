/* The admin unix socket (used by `ktlsgw conn|stats`) and the Prometheus
 * metrics endpoint. Both are served by the main thread from its poll loop,
 * without blocking: every client has a deadline, so slow or stuck clients
 * never delay signals, other clients or the revocation passes. */
#ifndef KG_ADMIN_H
#define KG_ADMIN_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gateway.h"

#define KG_ADMIN_SOCKET_DEFAULT "/run/ktlsgw/admin.sock"

enum kg_admin_req { KG_ADM_BAD, KG_ADM_CONN_LIST, KG_ADM_STATS, KG_ADM_CONN_KILL };
/* Parse one admin request line ("conn list", "stats", "conn kill ID"; the
 * line ends at @len, NUL, CR or LF). *@id is set for KG_ADM_CONN_KILL only. */
enum kg_admin_req kg_admin_parse(const char *buf, size_t len, unsigned long long *id);

/* Listen on @path (mode 0600, parent directory created). fd or -errno. */
int kg_admin_listen(const char *path, char *err, size_t errlen);
/* Listen on @a for metrics (TCP). fd or -errno. */
int kg_metrics_listen(const struct kg_addr *a, char *err, size_t errlen);
#define KG_SRV_CLIENTS 256		/* clients at once; more wait in the backlog */
#define KG_SRV_DEADLINE_MS 2000		/* a client's whole request and answer */

struct kg_srv_client {
	int fd;
	bool metrics;			/* else the admin protocol */
	char req[2048];
	size_t got;
	char *out;			/* the answer, once the request is whole */
	size_t out_len, out_off;
	uint64_t deadline_ms;
};

/* The main thread's admin and metrics server: listening sockets (-1 when
 * off) and the clients being served. */
struct kg_srv {
	int afd, mfd;
	struct kg_srv_client cl[KG_SRV_CLIENTS];
	unsigned n;
};

/* Fill @pfd (room for 2 + KG_SRV_CLIENTS) with what to wait for; the count. */
size_t kg_srv_pollfds(const struct kg_srv *s, struct pollfd *pfd);
/* How long poll may wait: @max, or less when a client's deadline is nearer. */
int kg_srv_timeout_ms(const struct kg_srv *s, uint64_t now, int max);
/* Act on what poll reported for the entries kg_srv_pollfds() filled. */
void kg_srv_run(struct kg_srv *s, struct kg_gw *gw, const struct pollfd *pfd, size_t npfd,
		uint64_t now);
/* Drop every client (at exit). */
void kg_srv_close(struct kg_srv *s);

/* CLI side: send @req, return the whole answer (malloc'd) or NULL with @err. */
char *kg_admin_call(const char *path, const char *req, char *err, size_t errlen);

#endif
