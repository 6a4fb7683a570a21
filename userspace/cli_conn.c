/* `ktlsgw conn list|kill`: the gateway's live connections, through its
 * admin socket. The rows are read with kg_json_conn_read, the same
 * definition the gateway writes them with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "json.h"

#define KG_CONN_ROW "%-11s %-2s %-10s %-21s %-16s %-64s %-3s %-22s %-9s %12s %12s %8s\n"

static int kg_cmd_conn_list(struct kg_cli *cli, int argc, char **argv)
{
	struct json_object *all;
	struct kg_conn_info ci;
	size_t i, n;
	int rc;

	rc = kg_cli_admin(cli, "conn list", &all);
	if (rc)
		return rc;
	if (cli->json)
		return kg_cli_print_json(cli, all);
	n = json_object_is_type(all, json_type_array) ? json_object_array_length(all) : 0;
	printf(KG_CONN_ROW, "ID", "W", "LISTENER", "CLIENT", "SUBJECT", "SHA256", "TLS", "CIPHER",
	       "PATH", "BYTES_IN", "BYTES_OUT", "AGE_S");
	for (i = 0; i < n; i++) {
		char id[24], w[12], in[24], out[24], age[24], subj[512];

		if (kg_json_conn_read(json_object_array_get_idx(all, i), &ci))
			continue;
		snprintf(id, sizeof(id), "%llu", (unsigned long long)ci.id);
		snprintf(w, sizeof(w), "%u", ci.worker);
		snprintf(in, sizeof(in), "%llu", (unsigned long long)ci.bytes_in);
		snprintf(out, sizeof(out), "%llu", (unsigned long long)ci.bytes_out);
		snprintf(age, sizeof(age), "%.1f", (double)ci.age_ms / 1000.0);
		/* the subject is the peer's text: escaped, so a row stays one line */
		kg_json_escape(subj, sizeof(subj), ci.subject[0] ? ci.subject : "-");
		printf(KG_CONN_ROW, id, w, ci.listener, ci.client, subj, ci.sha256[0] ? ci.sha256 : "-", ci.tls,
		       ci.cipher, ci.path, in, out, age);
	}
	if (!n)
		printf("(no connections)\n");
	json_object_put(all);
	return KG_EXIT_OK;
}

int kg_conn_kill_args(const struct kg_cli *cli, int argc, char **argv, unsigned long long *id,
		      char *err, size_t errlen)
{
	err[0] = '\0';
	*id = 0;
	/* digits only (no sign, blank or line break: strtoull would take the
	 * first two, the gateway's parser stops at the third), at most 20 so
	 * the request line is never cut short; then the gateway's own parser
	 * decides about overflow */
	if (argc == 1 && strlen(argv[0]) <= 20 && strspn(argv[0], "0123456789") == strlen(argv[0])) {
		char line[40];
		int n = snprintf(line, sizeof(line), "conn kill %s", argv[0]);

		if (kg_admin_parse(line, (size_t)n, id) == KG_ADM_CONN_KILL && *id)
			return 0;
	}
	*id = 0;
	snprintf(err, errlen, "conn kill: give one connection ID from `%s conn list`", cli->prog);
	return KG_EXIT_USAGE;
}

static int kg_cmd_conn_kill(struct kg_cli *cli, int argc, char **argv)
{
	struct json_object *resp;
	unsigned long long id;
	char msg[256], req[64];
	int rc;

	if (kg_conn_kill_args(cli, argc, argv, &id, msg, sizeof(msg)))
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s", msg);
	snprintf(req, sizeof(req), "conn kill %llu", id);
	rc = kg_cli_admin(cli, req, &resp);
	if (rc)
		return rc;
	if (cli->json)
		return kg_cli_print_json(cli, resp);
	printf("connection %llu closed\n", id);
	json_object_put(resp);
	return KG_EXIT_OK;
}

const struct kg_cmd kg_conn_cmds[] = {
	{ "list", kg_cmd_conn_list, NULL, "[-s SOCKET | -c CONFIG]",
	  "every live connection",
	  "Id, worker, listener, client, subject, SHA-256 fingerprint, TLS version and cipher,\n"
	  "data path, bytes each way, age. -s wins over -c.\n", KG_ADMIN_OPTS, 0, 0 },
	{ "kill", kg_cmd_conn_kill, NULL, "ID [-s SOCKET | -c CONFIG]",
	  "close connection ID (both legs, RST); IDs come from `conn list`", NULL,
	  KG_ADMIN_OPTS, 1, 1 },
	{ 0 }
};
