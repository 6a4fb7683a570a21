#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"

static int kg_write_ready_file(struct kg_gw *gw, const char *path)
{
	char tmp[4096];
	FILE *f;
	size_t i;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (i = 0; i < gw->n_lst; i++)
		fprintf(f, "%s %s\n", gw->lst[i].conf->name, gw->lst[i].bound.text);
	if (fclose(f) || rename(tmp, path))
		return -errno;
	return 0;
}

static void kg_gw_free(struct kg_gw *gw)
{
	size_t i;

	for (i = 0; gw->workers && i < gw->n_workers; i++)
		kg_worker_join_free(gw->workers[i]);
	free(gw->workers);
	for (i = 0; gw->lst && i < gw->n_lst; i++)
		kg_tls_ctx_put(gw->lst[i].tls);
	free(gw->lst);
	kg_config_free(gw->cfg);
}

int kg_gw_run(struct kg_config *cfg, const char *ready_file)
{
	struct kg_gw gw = { .cfg = cfg, .drain_timeout_ms = 10000 };
	sigset_t set;
	char err[1024];
	size_t i;
	int rc, sig;
	long ncpu;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	/* Workers inherit the mask: only this thread takes signals. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	gw.n_lst = cfg->n_listeners;
	gw.lst = calloc(gw.n_lst, sizeof(*gw.lst));
	if (!gw.lst) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < gw.n_lst; i++) {
		gw.lst[i].conf = &cfg->listeners[i];
		rc = kg_tls_ctx_new(&cfg->listeners[i], cfg->path, &gw.lst[i].tls, err, sizeof(err));
		if (rc) {
			kg_err("%s", err);
			rc = -EINVAL;
			goto out;
		}
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	gw.n_workers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
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
	if (ready_file) {
		rc = kg_write_ready_file(&gw, ready_file);
		if (rc)
			kg_warn("cannot write ready file %s: %s", ready_file, strerror(-rc));
	}
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			int level = sig == SIGINT || gw.stop ? 2 : 1;

			kg_info("%s: %s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
				level == 1 ? "no new connections; draining the open ones" :
				"closing every connection now");
			__atomic_store_n(&gw.stop, level, __ATOMIC_RELEASE);
			for (i = 0; i < gw.n_workers; i++)
				kg_worker_kick(gw.workers[i]);
			break;
		}
		if (sig == SIGHUP)
			kg_info("SIGHUP: configuration reload is not supported yet; keeping the running one");
	}
	rc = 0;
out:
	kg_gw_free(&gw);
	if (!rc)
		kg_info("stopped");
	return rc;
}
