/* `ktlsgw run`: load the configuration, then run the gateway or, with
 * --check, only build every listener's TLS context and say whether it works. */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "gateway.h"
#include "json.h"
#include "log.h"

#define KG_CONFIG_DEFAULT "/etc/ktlsgw/ktlsgw.conf"

/* --check: every listener's certificate, key and CAs load. Exit code. */
static int kg_run_check(struct kg_cli *cli, const struct kg_config *cfg, const char *path)
{
	char err[1024];
	size_t i;

	for (i = 0; i < cfg->n_listeners; i++) {
		struct kg_tls_ctx *t = NULL;

		if (kg_tls_ctx_new(&cfg->listeners[i], cfg->path, &t, err, sizeof(err)))
			return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
		kg_tls_ctx_put(t);
	}
	if (!cli->json) {
		printf("%s: configuration OK (%zu listener%s)\n", path, cfg->n_listeners,
		       cfg->n_listeners == 1 ? "" : "s");
		return KG_EXIT_OK;
	}
	return kg_cli_print_json(cli, kg_json_obj("sub", "config", path, "listeners",
						  (uint64_t)cfg->n_listeners, "ok", true));
}

int kg_cmd_run(struct kg_cli *cli, int argc, char **argv)
{
	const char *path = cli->opt[KG_OPT_CONFIG] ? cli->opt[KG_OPT_CONFIG] : KG_CONFIG_DEFAULT;
	struct kg_config *cfg = NULL;
	char err[1024];
	int rc;

	rc = kg_config_load(path, &cfg, err, sizeof(err));
	if (rc)
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
	kg_log_set_level((enum kg_log_level)cfg->log_level);
	kg_log_set_json(cfg->log_json);
	if (cli->opt[KG_OPT_CHECK]) {
		rc = kg_run_check(cli, cfg, path);
		kg_config_free(cfg);
		return rc;
	}
	/* kg_gw_run owns cfg from here */
	rc = kg_gw_run(cfg, cli->opt[KG_OPT_READY]);
	if (rc == -EINVAL)
		return KG_EXIT_USAGE;	/* a certificate or key in the config is unusable */
	return rc ? KG_EXIT_RUNTIME : KG_EXIT_OK;
}
