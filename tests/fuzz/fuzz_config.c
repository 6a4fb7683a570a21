/*
 * libFuzzer target: the configuration file (kg_config_load).
 *
 * The input is the INI file. It is written to a memfd and loaded through
 * /proc/self/fd/N, so that each run reads a real file path as the gateway
 * does, without touching the disk or leaving temporary files behind.
 *
 * Checked: a success returns a configuration whose invariants hold (every
 * listener complete, values in range, SNI groups attached to their
 * listener) and that frees cleanly (LeakSanitizer); a failure leaves *out
 * NULL and a non-empty, NUL-terminated "FILE:LINE: ..." message, and the
 * same message cut short when the caller's buffer is small.
 */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "config.h"
#include "kg_fuzz.h"

#define KG_FUZZ_ERRLEN 1024	/* what the CLI gives kg_config_load */

static int kg_memfd = -1;
static char kg_path[64];
static struct kg_config kg_sentinel;	/* in *out before the call: must be replaced */

/*
 * config.c resolves listen/backend/metrics with getaddrinfo(). A host name
 * in the input would cost a DNS query (or a resolver timeout) per run and
 * make the result depend on the network, so the link wraps getaddrinfo
 * (-Wl,--wrap=getaddrinfo in fuzz.mk) and this wrapper allows numeric
 * addresses only: a name fails as an unresolvable one does.
 */
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	struct addrinfo h = { 0 };

	if (hints)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;
	return __real_getaddrinfo(node, service, &h, res);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	kg_memfd = memfd_create("kg-fuzz-config", MFD_CLOEXEC);
	kg_fuzz_check(kg_memfd >= 0, "memfd_create: %s", strerror(errno));
	snprintf(kg_path, sizeof(kg_path), "/proc/self/fd/%d", kg_memfd);
	return 0;
}

static void kg_write_input(const uint8_t *data, size_t size)
{
	size_t off = 0;

	kg_fuzz_check(!ftruncate(kg_memfd, 0), "ftruncate: %s", strerror(errno));
	while (off < size) {
		ssize_t n = pwrite(kg_memfd, data + off, size - off, (off_t)off);

		kg_fuzz_check(n > 0, "pwrite: %s", strerror(errno));
		off += (size_t)n;
	}
}

static bool kg_nul_within(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static void kg_check_addr(const struct kg_addr *a, bool backend)
{
	const struct sockaddr_in *in = (const void *)&a->ss;
	const struct sockaddr_in6 *in6 = (const void *)&a->ss;

	kg_fuzz_check(a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6,
		      "family %d for '%.80s'", a->ss.ss_family, a->text);
	kg_fuzz_check(a->len == (a->ss.ss_family == AF_INET ? sizeof(*in) : sizeof(*in6)),
		      "address length %u", (unsigned)a->len);
	kg_fuzz_check(kg_nul_within(a->text, sizeof(a->text)), "address text not terminated");
	/* a backend needs a port to connect to */
	if (backend)
		kg_fuzz_check((a->ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port) != 0,
			      "backend '%s' with port 0", a->text);
}

/* The settings every listener and every SNI group must have after a load. */
static void kg_check_common(const struct kg_listener_conf *l)
{
	kg_fuzz_check(kg_nul_within(l->name, sizeof(l->name)) && l->name[0], "listener name");
	kg_fuzz_check(l->cert && l->key && l->client_ca, "[%s] cert/key/client_ca missing", l->name);
	kg_fuzz_check(l->verify_depth >= 1 && l->verify_depth <= 16, "verify_depth %d",
		      l->verify_depth);
	kg_fuzz_check((l->tls_min == TLS1_2_VERSION || l->tls_min == TLS1_3_VERSION) &&
		      (l->tls_max == TLS1_2_VERSION || l->tls_max == TLS1_3_VERSION) &&
		      l->tls_min <= l->tls_max, "tls_min %#x tls_max %#x", l->tls_min, l->tls_max);
	kg_fuzz_check(l->handshake_timeout_ms && l->connect_timeout_ms && l->idle_timeout_ms,
		      "[%s] a zero timeout", l->name);
	kg_fuzz_check(l->backlog >= 1 && l->backlog <= 65535, "backlog %d", l->backlog);
	kg_fuzz_check(l->ktls == KG_KTLS_AUTO || l->ktls == KG_KTLS_ON || l->ktls == KG_KTLS_OFF,
		      "ktls %d", (int)l->ktls);
	kg_fuzz_check(l->line[KG_LK_SECTION] && l->line[KG_LK_LISTEN] && l->line[KG_LK_BACKEND],
		      "[%s] lines of section/listen/backend", l->name);
	kg_check_addr(&l->listen, false);
	kg_check_addr(&l->backend, true);
}

static void kg_check_config(const struct kg_config *cfg)
{
	size_t i, j;

	kg_fuzz_check(cfg->n_listeners >= 1 && cfg->listeners, "success without a listener");
	kg_fuzz_check(cfg->path && !strcmp(cfg->path, kg_path), "path '%s'", cfg->path);
	kg_fuzz_check(cfg->workers <= 1024, "workers %u", cfg->workers);
	kg_fuzz_check(cfg->scan_interval_ms && cfg->drain_timeout_ms, "zero interval");
	kg_fuzz_check(cfg->log_level >= 0 && cfg->log_level <= 3, "log_level %d", cfg->log_level);
	kg_fuzz_check(cfg->revocation == KG_REV_REQUIRED || cfg->revocation == KG_REV_BEST_EFFORT ||
		      cfg->revocation == KG_REV_OFF, "revocation %d", (int)cfg->revocation);
	kg_fuzz_check(cfg->state_dir[0] == '/' && cfg->pin_root[0] == '/', "relative state dir");
	kg_fuzz_check(kg_nul_within(cfg->admin_socket, sizeof(cfg->admin_socket)) &&
		      kg_nul_within(cfg->user, sizeof(cfg->user)), "string not terminated");
	if (cfg->metrics.len)
		kg_check_addr(&cfg->metrics, false);
	for (i = 0; i < cfg->n_listeners; i++) {
		const struct kg_listener_conf *l = &cfg->listeners[i];

		kg_check_common(l);
		kg_fuzz_check(!l->server_name[0] && !l->parent[0], "[%s] listener with SNI fields",
			      l->name);
		for (j = 0; j < i; j++)
			kg_fuzz_check(strcmp(l->name, cfg->listeners[j].name),
				      "listener '%s' twice", l->name);
		kg_fuzz_check(!l->n_sni == !l->sni, "n_sni %zu with sni %p", l->n_sni,
			      (void *)l->sni);
		for (j = 0; j < l->n_sni; j++) {
			const struct kg_listener_conf *g = &l->sni[j];
			size_t k;

			kg_check_common(g);
			kg_fuzz_check(!strcmp(g->parent, l->name), "group of '%s' under '%s'",
				      g->parent, l->name);
			kg_fuzz_check(g->server_name[0] &&
				      kg_nul_within(g->server_name, sizeof(g->server_name)) &&
				      strlen(g->server_name) <= KG_SERVER_NAME_MAX + 2,
				      "server name");
			/* SNI matching is case-insensitive: names are stored lower-case */
			for (k = 0; g->server_name[k]; k++)
				kg_fuzz_check(g->server_name[k] < 'A' || g->server_name[k] > 'Z',
					      "server name '%s' not lower-case", g->server_name);
			kg_fuzz_check(g->tls_min == l->tls_min && g->tls_max == l->tls_max,
				      "group TLS versions differ from the listener's");
			kg_fuzz_check(!g->n_sni && !g->sni, "nested SNI group");
			for (k = 0; k < j; k++)
				kg_fuzz_check(strcmp(g->server_name, l->sni[k].server_name),
					      "[sni %s %s] twice", l->name, g->server_name);
		}
	}
}

/* "PATH:LINE: " with LINE a positive number: what the README promises. */
static void kg_check_where(const char *err)
{
	size_t plen = strlen(kg_path);
	const char *p = err + plen + 1;
	unsigned long line;
	char *end;

	kg_fuzz_check(!strncmp(err, kg_path, plen) && err[plen] == ':', "no FILE: in '%s'", err);
	line = strtoul(p, &end, 10);
	kg_fuzz_check(end > p && line >= 1 && end[0] == ':' && end[1] == ' ',
		      "no LINE (>= 1) in '%s'", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_config *cfg = &kg_sentinel;
	char *err = malloc(KG_FUZZ_ERRLEN), *small;
	size_t smallen;
	int rc, rc2;

	kg_fuzz_check(err, "out of memory");
	/* not zeros: a message left unterminated must show */
	memset(err, 0x5a, KG_FUZZ_ERRLEN);
	kg_write_input(data, size);
	rc = kg_config_load(kg_path, &cfg, err, KG_FUZZ_ERRLEN);
	if (!rc) {
		kg_fuzz_check(cfg && cfg != &kg_sentinel, "success without a config");
		kg_check_config(cfg);
		kg_config_free(cfg);
		free(err);
		return 0;
	}
	kg_fuzz_check(rc < 0, "rc %d", rc);
	kg_fuzz_check(!cfg, "*out not NULL on failure (rc %d)", rc);
	kg_fuzz_check(kg_nul_within(err, KG_FUZZ_ERRLEN), "message not terminated (rc %d)", rc);
	kg_fuzz_check(err[0], "empty message (rc %d)", rc);
	if (rc == -EINVAL)
		kg_check_where(err);

	/*
	 * The same input with a small buffer (1 to 40 bytes, chosen by the
	 * input): the same verdict and the message cut, not overrun. The
	 * buffer is exactly that size, so AddressSanitizer sees an overrun.
	 */
	smallen = 1 + size % 40;
	small = malloc(smallen);
	kg_fuzz_check(small, "out of memory");
	memset(small, 0x5a, smallen);
	cfg = &kg_sentinel;
	rc2 = kg_config_load(kg_path, &cfg, small, smallen);
	kg_fuzz_check(rc2 == rc && !cfg, "rc %d, then %d with a %zu-byte buffer", rc, rc2, smallen);
	kg_fuzz_check(kg_nul_within(small, smallen), "short message not terminated");
	kg_fuzz_check(!strncmp(small, err, strlen(small)) && strlen(small) ==
		      (strlen(err) < smallen ? strlen(err) : smallen - 1),
		      "'%s' is not the start of '%s'", small, err);
	free(small);
	free(err);
	return 0;
}
