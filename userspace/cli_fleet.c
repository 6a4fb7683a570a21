/* `ktlsgw fleet status|list|watch`, and the fleet half of `revoke add|del`:
 * the bucket of the configuration's [fleet] is written, for a revoke while
 * the local change is made (neither waits for the other), for an un-revoke
 * before it (a refused un-revoke changes nothing here). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "fleet.h"
#include "json.h"

struct kg_fleet_job {
	struct kg_config *cfg;
	uint8_t fp[32];
	bool del;
	uint32_t reason;
	char text[256];
	pthread_t thread;
	bool started;
	int rc;
	char msg[1024];
};

static void *kg_fleet_job_run(void *arg)
{
	struct kg_fleet_job *j = arg;

	j->rc = kg_fleet_publish_one(j->cfg, j->fp, j->del, j->reason, j->text, j->msg,
				     sizeof(j->msg));
	return NULL;
}

int kg_fleet_cli_publish_start(struct kg_cli *cli, const uint8_t fp[32], bool del,
			       uint32_t reason, const char *text, struct kg_fleet_job **out)
{
	struct kg_fleet_job *j;

	*out = NULL;
	/* only a configuration names a fleet: --state-dir alone stays local */
	if (!cli->opt[KG_OPT_CONFIG])
		return 0;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	memcpy(j->fp, fp, sizeof(j->fp));
	j->del = del;
	j->reason = reason;
	snprintf(j->text, sizeof(j->text), "%s", text ? text : "");
	*out = j;
	if (kg_config_load(cli->opt[KG_OPT_CONFIG], &j->cfg, j->msg, sizeof(j->msg))) {
		j->rc = -EINVAL;
		return 0;
	}
	if (!j->cfg->fleet.enabled)
		return 0;
	if (cli->opt[KG_OPT_STATE_DIR])
		snprintf(j->cfg->state_dir, sizeof(j->cfg->state_dir), "%s",
			 cli->opt[KG_OPT_STATE_DIR]);
	/* here, while this thread is the process's only one (it sets the
	 * environment OpenSSL reads) */
	kg_fleet_trust_only_ca(&j->cfg->fleet);
	if (pthread_create(&j->thread, NULL, kg_fleet_job_run, j))
		kg_fleet_job_run(j);	/* no thread: in line, then */
	else
		j->started = true;
	return 0;
}

int kg_fleet_cli_publish_wait(struct kg_fleet_job *j, char *msg, size_t msglen)
{
	int rc;

	msg[0] = '\0';
	if (!j)
		return 0;
	if (j->started)
		pthread_join(j->thread, NULL);
	snprintf(msg, msglen, "%s", j->msg);
	rc = j->rc;
	kg_config_free(j->cfg);
	free(j);
	return rc;
}

int kg_fleet_cli_publish(struct kg_cli *cli, const uint8_t fp[32], bool del, uint32_t reason,
			 const char *text, char *msg, size_t msglen)
{
	struct kg_fleet_job *j = NULL;
	int rc = kg_fleet_cli_publish_start(cli, fp, del, reason, text, &j);

	if (rc) {
		snprintf(msg, msglen, "%s", strerror(-rc));
		return rc;
	}
	return kg_fleet_cli_publish_wait(j, msg, msglen);
}

static int kg_cmd_fleet_status(struct kg_cli *cli, int argc, char **argv)
{
	struct json_object *o, *f = NULL;
	int rc = kg_cli_admin(cli, "stats", &o);

	if (rc)
		return rc;
	if (!json_object_object_get_ex(o, "fleet", &f)) {
		json_object_put(o);
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "this gateway has no [fleet] section: its "
				    "revocations are local");
	}
	if (cli->json) {
		rc = kg_cli_print_json(cli, json_object_get(f));
		json_object_put(o);
		return rc;
	}
	json_object_object_foreach(f, k, v)
		printf("%-16s %s\n", k, json_object_get_string(v));
	json_object_put(o);
	return KG_EXIT_OK;
}

/* The -c CONFIG of `fleet @cmd`, which must have a [fleet] section: its
 * servers, bucket and credentials. KG_EXIT_OK with *@cfg the caller's. */
static int kg_fleet_cli_config(struct kg_cli *cli, const char *cmd, struct kg_config **cfg)
{
	char err[1024] = "";

	*cfg = NULL;
	if (!cli->opt[KG_OPT_CONFIG])
		return kg_cli_error(cli, KG_EXIT_USAGE, "fleet %s: give -c CONFIG (its [fleet] "
				    "names the servers, bucket and credentials)", cmd);
	if (kg_config_load(cli->opt[KG_OPT_CONFIG], cfg, err, sizeof(err)))
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
	if (!(*cfg)->fleet.enabled) {
		kg_config_free(*cfg);
		*cfg = NULL;
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s has no [fleet] section",
				    cli->opt[KG_OPT_CONFIG]);
	}
	return KG_EXIT_OK;
}

static int kg_cmd_fleet_list(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_config *cfg = NULL;
	struct json_object *a = NULL;
	char err[1024] = "";
	size_t i;
	int rc;

	rc = kg_fleet_cli_config(cli, "list", &cfg);
	if (rc != KG_EXIT_OK)
		return rc;
	kg_fleet_trust_only_ca(&cfg->fleet);
	rc = kg_fleet_list(cfg, &a, err, sizeof(err));
	kg_config_free(cfg);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", rc == -ENOMEM ? strerror(ENOMEM) : err);
	if (cli->json)
		return kg_cli_print_json(cli, a);
	for (i = 0; i < json_object_array_length(a); i++) {
		struct json_object *r = json_object_array_get_idx(a, i);

		printf("%s %-9s rev %s node %s %s\n", kg_json_get_str(r, "sha256", ""),
		       kg_json_get_str(r, "state", ""),
		       json_object_get_string(json_object_object_get(r, "revision")),
		       kg_json_get_str(r, "node", "-")[0] ? kg_json_get_str(r, "node", "-") : "-",
		       kg_json_get_str(r, "reason", ""));
	}
	json_object_put(a);
	return KG_EXIT_OK;
}

static volatile int kg_watch_stop;

static void kg_watch_on_signal(int sig)
{
	kg_watch_stop = 1;
}

static int kg_cmd_fleet_watch(struct kg_cli *cli, int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = kg_watch_on_signal };
	struct kg_config *cfg = NULL;
	char err[1024] = "";
	int rc;

	rc = kg_fleet_cli_config(cli, "watch", &cfg);
	if (rc != KG_EXIT_OK)
		return rc;
	/* no SA_RESTART: a signal ends the wait for the next entry too */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	kg_fleet_trust_only_ca(&cfg->fleet);
	rc = kg_fleet_watch(cfg, stdout, &kg_watch_stop, err, sizeof(err));
	kg_config_free(cfg);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	return KG_EXIT_OK;
}

const struct kg_cmd kg_fleet_cmds[] = {
	{ "status", kg_cmd_fleet_status, NULL, "[-s SOCKET | -c CONFIG]",
	  "the gateway's link to the fleet's revocation bucket",
	  "Connection state and server, bucket, last revision applied, changes applied,\n"
	  "pending local changes not yet published, and the lag of the last update\n"
	  "(from the bucket write to its application on this node).\n", KG_ADMIN_OPTS, 0, 0 },
	{ "list", kg_cmd_fleet_list, NULL, "-c CONFIG",
	  "the fleet's bucket as NATS has it (not this node's map)",
	  "Reads the bucket of CONFIG's [fleet] straight from NATS, with its\n"
	  "credentials: the newest change of every key, revoked or un-revoked (a\n"
	  "delete marker), its revision, the node that wrote it and the reason.\n"
	  "Needs no gateway; a reader's credentials suffice.\n", KG_OPTF(KG_OPT_CONFIG), 0, 0 },
	{ "watch", kg_cmd_fleet_watch, NULL, "-c CONFIG",
	  "follow the fleet's bucket without a gateway (one line per change)",
	  "A light watcher: no listener, no BPF map, no state. Prints\n"
	  "\"initial|change REVISION SHA256 revoked|unrevoked WRITTEN_NS RECEIVED_NS\"\n"
	  "per entry (wall-clock nanoseconds: when NATS stored it, when it arrived\n"
	  "here) and \"synced N\" once the current content is read; until SIGINT or\n"
	  "SIGTERM. bench/fleet-latency runs many of these.\n", KG_OPTF(KG_OPT_CONFIG), 0, 0 },
	{ 0 }
};
