/* `ktlsgw fleet status`, and the fleet half of `revoke add|del`: after the
 * local change, the bucket of the configuration's [fleet] is written. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "fleet.h"
#include "json.h"

int kg_fleet_cli_publish(struct kg_cli *cli, const uint8_t fp[32], bool del, uint32_t reason,
			 const char *text, char *msg, size_t msglen)
{
	struct kg_config *cfg = NULL;
	char err[1024];
	int rc;

	msg[0] = '\0';
	/* only a configuration names a fleet: --state-dir alone stays local */
	if (!cli->opt[KG_OPT_CONFIG])
		return 0;
	if (kg_config_load(cli->opt[KG_OPT_CONFIG], &cfg, err, sizeof(err))) {
		snprintf(msg, msglen, "%s", err);
		return -EINVAL;
	}
	if (cli->opt[KG_OPT_STATE_DIR])
		snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", cli->opt[KG_OPT_STATE_DIR]);
	rc = cfg->fleet.enabled ? kg_fleet_publish_one(cfg, fp, del, reason, text, msg, msglen) : 0;
	kg_config_free(cfg);
	return rc;
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

static int kg_cmd_fleet_list(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_config *cfg = NULL;
	struct json_object *a = NULL;
	char err[1024] = "";
	size_t i;
	int rc;

	if (!cli->opt[KG_OPT_CONFIG])
		return kg_cli_error(cli, KG_EXIT_USAGE, "fleet list: give -c CONFIG (its [fleet] "
				    "names the servers, bucket and credentials)");
	if (kg_config_load(cli->opt[KG_OPT_CONFIG], &cfg, err, sizeof(err)))
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
	if (!cfg->fleet.enabled) {
		kg_config_free(cfg);
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s has no [fleet] section",
				    cli->opt[KG_OPT_CONFIG]);
	}
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
	{ 0 }
};
