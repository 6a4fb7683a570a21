/*
 * The running gateway as a whole: listeners, workers, configuration
 * generations and SIGHUP, the revocation thread, readiness and shutdown.
 * Touches no connection: those belong to the workers (loop.c and after).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "conn.h"
#include "fleet.h"
#include "gateway.h"
#include "admin.h"
#include "ktls.h"
#include "log.h"
#include "worker.h"
#include "privs.h"
#include "revoke.h"

/* The ready file is opened (empty) before privileges are dropped and
 * filled in one write(2) once the workers run: readers wait for content. */
static int kg_write_ready_file(struct kg_gw *gw, int fd)
{
	char buf[4096];
	size_t i, len = 0;

	for (i = 0; i < gw->n_lst && len < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s %s\n",
					gw->lst[i].conf->name, gw->lst[i].bound.text);
	if (len > sizeof(buf))
		return -ENAMETOOLONG;
	if (write(fd, buf, len) != (ssize_t)len)
		return -errno;
	return 0;
}

/* [global] user: keep reading keys on SIGHUP (CAP_DAC_READ_SEARCH) and the
 * BPF map and socket tags (CAP_BPF, or CAP_SYS_ADMIN before 5.8); binding
 * is done, and listener addresses cannot change without a restart. */
static int kg_gw_drop_privileges(struct kg_gw *gw)
{
	struct kg_config *cfg = gw->cfg;
	uint64_t keep = 1ULL << KG_CAP_DAC_READ_SEARCH;
	char err[1024], p_rev[400], p_lock[400];
	const char *paths[] = { cfg->state_dir, p_rev, p_lock, NULL };
	int rc;

	if (gw->rev)
		keep |= 1ULL << (kg_cap_known(KG_CAP_BPF) ? KG_CAP_BPF : 21 /* CAP_SYS_ADMIN */);
	snprintf(p_rev, sizeof(p_rev), "%s/revoked", cfg->state_dir);
	snprintf(p_lock, sizeof(p_lock), "%s/revoked.lock", cfg->state_dir);
	rc = kg_privs_drop(cfg->user, keep, gw->rev || gw->fallback.n ? paths : NULL, err,
			   sizeof(err));
	if (rc) {
		kg_err("%s:%u: %s", cfg->path, cfg->user_line, err);
		return rc;
	}
	kg_info("running as user %s (uid %u); capabilities kept: cap_dac_read_search%s", cfg->user,
		(unsigned)getuid(), !gw->rev ? "" :
		kg_cap_known(KG_CAP_BPF) ? ", cap_bpf" : ", cap_sys_admin");
	return 0;
}

/* ---- configuration generations and listener snapshots ------------------ */

static struct kg_cfg_gen *kg_cfg_gen_new(struct kg_config *cfg)
{
	struct kg_cfg_gen *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->refs = 1;
	g->cfg = cfg;
	return g;
}

static void kg_cfg_gen_put(struct kg_cfg_gen *g)
{
	if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	kg_config_free(g->cfg);
	free(g);
}

/* A snapshot of listener @idx of @g, taking over the reference to @tls. */
static struct kg_lsnap *kg_lsnap_new(struct kg_cfg_gen *g, size_t idx, struct kg_tls_ctx *tls)
{
	struct kg_lsnap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->refs = 1;
	s->gen = g;
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
	s->conf = &g->cfg->listeners[idx];
	s->tls = tls;
	return s;
}

struct kg_lsnap *kg_lsnap_get(struct kg_listener *l)
{
	struct kg_lsnap *s;

	pthread_mutex_lock(&l->lock);
	s = l->snap;
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&l->lock);
	return s;
}

void kg_lsnap_put(struct kg_lsnap *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	kg_tls_ctx_put(s->tls);
	kg_cfg_gen_put(s->gen);
	free(s);
}

static void kg_gw_free(struct kg_gw *gw)
{
	size_t i;

	for (i = 0; gw->workers && i < gw->n_workers; i++)
		kg_worker_join_free(gw->workers[i]);
	free(gw->workers);
	for (i = 0; gw->lst && i < gw->n_lst; i++) {
		kg_lsnap_put(gw->lst[i].snap);
		pthread_mutex_destroy(&gw->lst[i].lock);
	}
	free(gw->lst);
	kg_fleet_stop(gw->fleet);
	kg_revoker_close(gw->rev);
	kg_revstate_release(&gw->fallback);
	kg_cfg_gen_put(gw->gen);
}

unsigned kg_fault(const char *name)
{
	const char *f = getenv("KTLSGW_FAULT");
	size_t len = strlen(name);

	while (f && *f) {
		if (!strncmp(f, name, len) && (f[len] == ':' || f[len] == ',' || !f[len]))
			return f[len] == ':' ? (unsigned)strtoul(f + len + 1, NULL, 10) : 1;
		f = strchr(f, ',');
		if (f)
			f++;
	}
	return 0;
}

static int kg_fault_rev_tag(const struct kg_rev_hook *h, int fd, const uint8_t fp[KG_FP_LEN],
			    uint64_t conn_id)
{
	(void)h; (void)fd; (void)fp; (void)conn_id;
	return -EIO;
}

static int kg_fault_rev_lookup(const struct kg_rev_hook *h, const uint8_t fp[KG_FP_LEN])
{
	(void)h; (void)fp;
	return -EIO;
}

static int kg_gw_revocation_start(struct kg_gw *gw)
{
	struct kg_config *cfg = gw->cfg;
	char err[1024];
	int rc;

	gw->hook.rev = NULL;
	gw->hook.fallback = NULL;
	gw->hook.best_effort = cfg->revocation == KG_REV_BEST_EFFORT;
	if (cfg->revocation == KG_REV_OFF) {
		kg_warn("revocation = off: revoked certificates are NOT refused");
		return 0;
	}
	rc = kg_revoker_open(cfg->pin_root, cfg->state_dir, false, &gw->rev, err, sizeof(err));
	if (!rc) {
		rc = kg_revoker_sync(gw->rev, false, err, sizeof(err));
		if (rc < 0) {
			kg_err("revocation: %s", err);
			return rc;
		}
		gw->hook.rev = gw->rev;
		/* test seams (kg_fault): a tag or a lookup that fails at handshake time */
		gw->hook.tag = kg_fault("revtag") ? kg_fault_rev_tag : NULL;
		gw->hook.lookup = kg_fault("revlookup") ? kg_fault_rev_lookup : NULL;
		kg_info("revocation: %d revoked certificate%s loaded from %s/revoked into %s/revoked; "
			"live connections cut by %s, scan every %u ms", rc, rc == 1 ? "" : "s",
			cfg->state_dir, cfg->pin_root,
			kg_ebpf_can_destroy(gw->rev->bpf) ? "bpf_sock_destroy (in kernel)" :
			"the gateway (kernel has no bpf_sock_destroy)", cfg->scan_interval_ms);
		return 0;
	}
	if (cfg->revocation == KG_REV_REQUIRED) {
		kg_err("revocation: %s. Set `revocation = best-effort` in [global] to start with "
		       "handshake-time checks only", err);
		return rc;
	}
	kg_warn("revocation: BPF unavailable (%s); best-effort: handshake-time checks against "
		"%s/revoked only, live connections will not be cut", err, cfg->state_dir);
	{
		char path[400];

		snprintf(path, sizeof(path), "%s/revoked", cfg->state_dir);
		if (kg_revstate_load(path, &gw->fallback, err, sizeof(err))) {
			kg_err("revocation: %s", err);
			return -EINVAL;
		}
	}
	gw->hook.fallback = &gw->fallback;
	return 0;
}

static void kg_gw_revocation_pass(struct kg_gw *gw, unsigned pass)
{
	struct kg_ebpf_hit hits[512];
	char err[512], hex[KG_FP_HEX_LEN];
	int n, i;

	n = kg_ebpf_scan(gw->rev->bpf, hits, sizeof(hits) / sizeof(hits[0]));
	if (n < 0) {
		kg_warn("revocation scan failed: %s", strerror(-n));
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned wi = kg_conn_id_worker(hits[i].conn_id);

		kg_fp_format(hits[i].fp, false, hex, sizeof(hex));
		kg_dbg("revocation scan: conn=%llu sha256=%s", (unsigned long long)hits[i].conn_id, hex);
		if (wi < gw->n_workers)
			kg_worker_post_kill(gw->workers[wi], hits[i].conn_id, KG_CLOSE_REVOKED);
		kg_revoker_mark_cut(gw->rev, hits[i].fp);
	}
	/* Adopt entries written with raw bpftool into the state file (~1 s). */
	if (pass % 4 == 0 && kg_revoker_sync(gw->rev, true, err, sizeof(err)) < 0)
		kg_warn("revocation: %s", err);
}

/* systemd Type=notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void kg_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		kg_warn("sd_notify: %s", strerror(errno));
	close(fd);
}

static uint64_t kg_gw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A listener's TLS context with the gateway's hooks (revocation, kTLS). */
static int kg_gw_tls_ctx(struct kg_gw *gw, const struct kg_listener_conf *l, const char *path,
			 struct kg_tls_ctx **out, char *err, size_t errlen)
{
	int rc = kg_tls_ctx_new(l, path, out, err, errlen);
	size_t i;

	if (rc)
		return rc;
	/* the SNI groups too: a handshake moved to one uses its callbacks */
	for (i = 0; i <= (*out)->n_sni; i++) {
		struct kg_tls_ctx *t = i ? (*out)->sni[i - 1] : *out;

		if (gw->rev || gw->fallback.n || gw->cfg->revocation == KG_REV_BEST_EFFORT)
			t->rev = &gw->hook;
		if (gw->ktls && l->ktls != KG_KTLS_OFF && t->ctx)
			kg_ktls_ctx_setup(t->ctx);
		/* the origin leg (listener level): offloaded once established */
		if (gw->ktls && l->ktls != KG_KTLS_OFF && !i && t->origin)
			kg_ktls_ctx_setup(t->origin);
	}
	return 0;
}

/* Test seam (kg_fault): KTLSGW_FAULT=reload_alloc:N makes the Nth
 * allocation made by reloads (counted over the process's SIGHUPs: the
 * snapshot array, the configuration's generation, one snapshot per
 * listener) fail, to prove that a reload that runs out of memory leaves
 * the running configuration whole. */
static bool kg_reload_alloc_fails(void)
{
	static unsigned n;
	unsigned at = kg_fault("reload_alloc");

	return at && ++n == at;
}

/*
 * SIGHUP: re-read the configuration and rebuild every listener's TLS context
 * (certificates, keys, CAs, CRLs, ciphers, timeouts, backend). All or
 * nothing: any error keeps the running configuration and says why. New
 * connections get the new one; established connections keep theirs.
 * Listener addresses and [global] settings need a restart.
 */
static void kg_gw_reload(struct kg_gw *gw)
{
	struct kg_lsnap **ns = NULL;
	struct kg_config *ncfg = NULL;
	struct kg_cfg_gen *ngen = NULL;
	char err[1024];
	size_t i;

	if (kg_config_load(gw->cfg->path, &ncfg, err, sizeof(err))) {
		kg_err("SIGHUP: %s; the running configuration stays in force", err);
		return;
	}
	if (ncfg->n_listeners != gw->n_lst)
		goto structure;
	for (i = 0; i < gw->n_lst; i++)
		if (strcmp(ncfg->listeners[i].name, gw->lst[i].conf->name) ||
		    strcmp(ncfg->listeners[i].listen.text, gw->lst[i].conf->listen.text))
			goto structure;
	ns = kg_reload_alloc_fails() ? NULL : calloc(gw->n_lst, sizeof(*ns));
	ngen = kg_reload_alloc_fails() ? NULL : kg_cfg_gen_new(ncfg);
	if (ngen)
		ncfg = NULL;	/* ngen owns it */
	if (!ns || !ngen) {
		kg_err("SIGHUP: out of memory; the running configuration stays in force");
		goto fail;
	}
	for (i = 0; i < gw->n_lst; i++) {
		const struct kg_listener_conf *lc = &ngen->cfg->listeners[i];
		struct kg_tls_ctx *t;

		if (kg_gw_tls_ctx(gw, lc, ngen->cfg->path, &t, err, sizeof(err))) {
			kg_err("SIGHUP: %s; the running configuration stays in force", err);
			goto fail;
		}
		ns[i] = kg_reload_alloc_fails() ? NULL : kg_lsnap_new(ngen, i, t);
		if (!ns[i]) {
			kg_tls_ctx_put(t);
			kg_err("SIGHUP: out of memory; the running configuration stays in force");
			goto fail;
		}
	}
	for (i = 0; i < gw->n_lst; i++) {
		struct kg_lsnap *old;

		pthread_mutex_lock(&gw->lst[i].lock);
		old = gw->lst[i].snap;
		gw->lst[i].snap = ns[i];
		pthread_mutex_unlock(&gw->lst[i].lock);
		gw->lst[i].conf = ns[i]->conf;
		kg_lsnap_put(old);	/* freed with its last connection */
	}
	kg_cfg_gen_put(gw->gen);
	gw->gen = ngen;
	gw->cfg = ngen->cfg;
	free(ns);
	kg_info("SIGHUP: configuration reloaded from %s (%zu listener%s); established "
		"connections keep their settings", gw->cfg->path, gw->n_lst, gw->n_lst == 1 ? "" : "s");
	return;
structure:
	kg_err("SIGHUP: %s changes the set of listeners or their addresses; restart ktlsgw to "
	       "apply that. The running configuration stays in force", ncfg->path);
fail:
	for (i = 0; ns && i < gw->n_lst; i++)
		kg_lsnap_put(ns[i]);
	free(ns);
	kg_cfg_gen_put(ngen);
	kg_config_free(ncfg);
}

int kg_gw_run(struct kg_config *cfg, const char *ready_file)
{
	struct kg_gw gw = { .cfg = cfg, .drain_timeout_ms = cfg->drain_timeout_ms, .done_fd = -1 };
	unsigned passes = 0;
	uint64_t next_pass;
	int sfd = -1, afd = -1, mfd = -1, rfd = -1;
	struct kg_srv *srv = NULL;
	struct pollfd *pfd = NULL;
	char admin_path[sizeof(cfg->admin_socket)];
	sigset_t set;
	char err[1024];
	size_t i;
	int rc, sig;
	long ncpu;

	if (getenv("KTLSGW_FAULT"))
		kg_warn("KTLSGW_FAULT=%s: test fault seams are active (failures are injected on "
			"purpose); unset it outside the test suite", getenv("KTLSGW_FAULT"));
	gw.gen = kg_cfg_gen_new(cfg);
	if (!gw.gen) {
		kg_config_free(cfg);
		return -ENOMEM;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	/* Workers inherit the mask: only this thread takes signals. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	{
		/* Each connection needs two descriptors (four with splice pipes):
		 * take the whole hard limit the service manager grants. */
		struct rlimit rl;

		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (!getrlimit(RLIMIT_NOFILE, &rl))
			kg_info("open-file limit: %llu", (unsigned long long)rl.rlim_cur);
	}
	rc = kg_gw_revocation_start(&gw);
	if (rc)
		goto out;
	/* [fleet]: the bucket is read into the map before any client is taken */
	if (cfg->fleet.enabled && !gw.rev)
		kg_warn("fleet: [fleet] needs the BPF revocation map (revocation = required); "
			"this node does not follow the fleet's list");
	else if (cfg->fleet.enabled && (rc = kg_fleet_start(cfg, &gw.fleet)))
		goto out;
	{
		char why[256];

		gw.ktls = kg_ktls_available(why, sizeof(why));
		if (gw.ktls)
			kg_info("kTLS: the kernel has the tls ULP; data path: kTLS where the cipher allows");
		else
			kg_info("kTLS: unavailable (%s); data path: userspace TLS", why);
		for (i = 0; i < cfg->n_listeners && !gw.ktls; i++)
			if (cfg->listeners[i].ktls == KG_KTLS_ON) {
				kg_err("%s:%u: [listener %s] has ktls = on but %s; set ktls = auto to "
				       "serve with userspace TLS", cfg->path,
				       cfg->listeners[i].line[KG_LK_KTLS], cfg->listeners[i].name, why);
				rc = -EINVAL;
				goto out;
			}
	}
	{
		const char *wp = getenv("KTLSGW_WAIT_POLL");

		gw.wait_poll = wp && !strcmp(wp, "1");
		wp = getenv("KTLSGW_DEFER_TASKRUN");
		gw.defer_taskrun = wp && !strcmp(wp, "1");
	}
	gw.n_lst = cfg->n_listeners;
	gw.lst = calloc(gw.n_lst, sizeof(*gw.lst));
	if (!gw.lst) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < gw.n_lst; i++) {
		struct kg_tls_ctx *t;

		pthread_mutex_init(&gw.lst[i].lock, NULL);
		gw.lst[i].conf = &cfg->listeners[i];
		snprintf(gw.lst[i].name, sizeof(gw.lst[i].name), "%s", cfg->listeners[i].name);
		rc = kg_gw_tls_ctx(&gw, &cfg->listeners[i], cfg->path, &t, err, sizeof(err));
		if (rc) {
			kg_err("%s", err);
			rc = -EINVAL;
			goto out;
		}
		gw.lst[i].snap = kg_lsnap_new(gw.gen, i, t);
		if (!gw.lst[i].snap) {
			kg_tls_ctx_put(t);
			rc = -ENOMEM;
			goto out;
		}
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	gw.n_workers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
	if (gw.n_workers > KG_WORKERS_MAX)
		gw.n_workers = KG_WORKERS_MAX;	/* the width of a connection ID's worker field */
	gw.workers = calloc(gw.n_workers, sizeof(*gw.workers));
	if (!gw.workers) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < gw.n_workers; i++) {
		rc = kg_worker_new(&gw, (unsigned)i, &gw.workers[i]);
		if (rc)
			goto out;
	}
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	gw.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sfd < 0 || gw.done_fd < 0) {
		rc = -errno;
		kg_err("signalfd/eventfd: %s", strerror(errno));
		goto out;
	}
	if (cfg->admin_socket[0]) {
		afd = kg_admin_listen(cfg->admin_socket, err, sizeof(err));
		if (afd < 0)
			kg_warn("%s; `ktlsgw conn` and `ktlsgw stats` will not work", err);
		else
			kg_info("admin socket: %s", cfg->admin_socket);
	}
	if (cfg->metrics.len) {
		mfd = kg_metrics_listen(&cfg->metrics, err, sizeof(err));
		if (mfd < 0)
			kg_warn("%s; no metrics endpoint", err);
		else
			kg_info("metrics: http://%s/metrics", cfg->metrics.text);
	}
	/* the main thread's server: admin and metrics clients, each with a
	 * deadline, served from the loop below without blocking it */
	srv = calloc(1, sizeof(*srv));
	pfd = calloc(3 + 2 + KG_SRV_CLIENTS, sizeof(*pfd));
	if (!srv || !pfd) {
		rc = -ENOMEM;
		goto out;
	}
	srv->afd = afd;
	srv->mfd = mfd;
	snprintf(admin_path, sizeof(admin_path), "%s", cfg->admin_socket);
	if (ready_file) {
		rfd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (rfd < 0)
			kg_warn("cannot write ready file %s: %s", ready_file, strerror(errno));
	}
	/* Everything that needs root is done: sockets bound, BPF loaded, keys
	 * read. Drop before the workers exist (capabilities are per thread). */
	if (cfg->user[0]) {
		rc = kg_gw_drop_privileges(&gw);
		if (rc)
			goto out;
	}
	if (gw.fleet && (rc = kg_fleet_spawn(gw.fleet))) {
		kg_err("fleet: cannot start the bucket's watcher: %s", strerror(-rc));
		goto out;
	}
	for (i = 0; i < gw.n_workers; i++) {
		rc = kg_worker_start(gw.workers[i]);
		if (rc) {
			kg_err("cannot start worker %zu: %s", i, strerror(-rc));
			__atomic_store_n(&gw.stop, 2, __ATOMIC_RELEASE);
			while (i--)
				kg_worker_kick(gw.workers[i]);
			goto out;
		}
	}
	for (i = 0; i < gw.n_lst; i++)
		kg_info("listener %s: listening on %s, backend %s, %u workers", gw.lst[i].conf->name,
			gw.lst[i].bound.text, gw.lst[i].conf->backend.text, gw.n_workers);
	kg_sd_notify("READY=1");
	if (rfd >= 0) {
		rc = kg_write_ready_file(&gw, rfd);
		if (rc)
			kg_warn("cannot write ready file %s: %s", ready_file, strerror(-rc));
		close(rfd);
		rfd = -1;
	}
	next_pass = kg_gw_now_ms() + gw.cfg->scan_interval_ms;
	for (;;) {
		struct signalfd_siginfo si;
		uint64_t now = kg_gw_now_ms();
		int timeout = next_pass > now ? (int)(next_pass - now) : 0;
		size_t n;

		/* Every worker has ended (drained, or stopped): so do we. */
		if (gw.stop && __atomic_load_n(&gw.workers_done, __ATOMIC_ACQUIRE) == gw.n_workers)
			break;
		pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = gw.done_fd, .events = POLLIN };
		n = 2 + kg_srv_pollfds(srv, pfd + 2);
		(void)poll(pfd, n, kg_srv_timeout_ms(srv, now, timeout));
		if (pfd[1].revents & POLLIN) {
			uint64_t v;

			if (read(gw.done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				kg_warn("worker exit notice: %s", strerror(errno));
		}
		kg_srv_run(srv, &gw, pfd + 2, n - 2, kg_gw_now_ms());
		if (kg_gw_now_ms() >= next_pass) {
			/* The periodic pass: catches raw bpftool edits and, on kernels
			 * without bpf_sock_destroy, is how live connections are cut. */
			if (gw.rev)
				kg_gw_revocation_pass(&gw, ++passes);
			next_pass = kg_gw_now_ms() + gw.cfg->scan_interval_ms;
		}
		if (!(pfd[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		sig = (int)si.ssi_signo;
		if (sig == SIGTERM || sig == SIGINT) {
			/* A second signal during a drain means "now". The drain
			 * itself keeps this loop running: the admin socket, the
			 * metrics and the revocation passes serve until the last
			 * connection is gone. */
			int level = sig == SIGINT || gw.stop ? 2 : 1;

			kg_info("%s: %s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
				level == 1 ? "no new connections; draining the open ones (a second "
				"SIGTERM or SIGINT closes them at once)" : "closing every connection now");
			if (!gw.stop)
				kg_sd_notify("STOPPING=1");
			__atomic_store_n(&gw.stop, level, __ATOMIC_RELEASE);
			for (i = 0; i < gw.n_workers; i++)
				kg_worker_kick(gw.workers[i]);
			continue;
		}
		if (sig == SIGHUP)
			kg_gw_reload(&gw);
	}
	rc = 0;
out:
	if (sfd >= 0)
		close(sfd);
	if (rfd >= 0)
		close(rfd);
	if (srv)
		kg_srv_close(srv);
	free(srv);
	free(pfd);
	if (afd >= 0) {
		close(afd);
		(void)unlink(admin_path);	/* may fail once dropped; the next start replaces it */
	}
	if (mfd >= 0)
		close(mfd);
	/* cfg may be gone after a reload: gw owns the running one */
	kg_gw_free(&gw);
	if (gw.done_fd >= 0)
		close(gw.done_fd);
	if (!rc)
		kg_info("stopped");
	return rc;
}
