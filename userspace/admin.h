/* The admin unix socket (used by `ktlsgw conn|stats`) and the Prometheus
 * metrics endpoint. Both are served by the main thread, one request at a
 * time, with short I/O timeouts so a stuck client cannot hold the gateway. */
#ifndef KG_ADMIN_H
#define KG_ADMIN_H

#include <stddef.h>

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
/* Serve one pending client of each kind. */
void kg_admin_serve(struct kg_gw *gw, int lfd);
void kg_metrics_serve(struct kg_gw *gw, int lfd);

/* CLI side: send @req, return the whole answer (malloc'd) or NULL with @err. */
char *kg_admin_call(const char *path, const char *req, char *err, size_t errlen);

#endif
