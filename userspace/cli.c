#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "gateway.h"
#include "log.h"
#include "pki.h"
#include "verify.h"

#define KG_VERSION "0.1.0"

bool kg_cli_is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int kg_cli_error(struct kg_cli *cli, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->json) {
		char esc[4200];

		kg_json_escape(esc, sizeof(esc), msg);
		printf("{\"error\":\"%s\",\"exit\":%d}\n", esc, code);
	} else {
		fprintf(stderr, "%s: %s\n", cli->prog, msg);
	}
	return code;
}

static void kg_cmds_usage(struct kg_cli *cli, const struct kg_cmd *cmds, const char *object,
			  FILE *f)
{
	for (; cmds->name; cmds++)
		fprintf(f, "  %s %s %s\n", cli->prog, object, cmds->help);
}

int kg_cli_dispatch(struct kg_cli *cli, const struct kg_cmd *cmds, const char *object,
		    int argc, char **argv)
{
	const struct kg_cmd *hit = NULL, *c;
	size_t n;

	if (argc < 1 || kg_cli_is_help(argv[0])) {
		fprintf(argc < 1 ? stderr : stdout, "Usage:\n");
		kg_cmds_usage(cli, cmds, object, argc < 1 ? stderr : stdout);
		return argc < 1 ? KG_EXIT_USAGE : KG_EXIT_OK;
	}
	n = strlen(argv[0]);
	for (c = cmds; c->name; c++) {
		if (strncmp(c->name, argv[0], n))
			continue;
		if (strlen(c->name) == n) {
			hit = c;
			break;
		}
		if (hit)
			return kg_cli_error(cli, KG_EXIT_USAGE, "'%s %s' is ambiguous; see '%s %s help'",
					    object, argv[0], cli->prog, object);
		hit = c;
	}
	if (!hit)
		return kg_cli_error(cli, KG_EXIT_USAGE, "unknown command '%s %s'; see '%s %s help'",
				    object, argv[0], cli->prog, object);
	return hit->fn(cli, argc - 1, argv + 1);
}

/* ---- gateway run --------------------------------------------------------- */

static int kg_cmd_gateway_run(struct kg_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *path = "/etc/ktlsgw/ktlsgw.conf", *ready = NULL;
	struct kg_config *cfg = NULL;
	bool check = false;
	char err[1024];
	int o, rc;

	optind = 0;
	while ((o = getopt_long(argc + 1, argv - 1, "c:r:Ch", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'h':
			printf("Usage: %s run [-c FILE] [--check] [--ready-file FILE]\n"
			       "  Run the gateway with the INI configuration FILE\n"
			       "  (default /etc/ktlsgw/ktlsgw.conf). --check only validates it:\n"
			       "  syntax, files, certificates and keys. --ready-file writes\n"
			       "  \"NAME ADDRESS\" per listener once all sockets are bound.\n", cli->prog);
			return KG_EXIT_OK;
		default:
			return KG_EXIT_USAGE;
		}
	}
	if (optind < argc + 1)
		return kg_cli_error(cli, KG_EXIT_USAGE, "run: unexpected argument '%s'", argv[optind - 1]);
	rc = kg_config_load(path, &cfg, err, sizeof(err));
	if (rc)
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
	kg_log_set_level((enum kg_log_level)cfg->log_level);
	kg_log_set_json(cfg->log_json);
	if (check) {
		size_t i;

		for (i = 0; i < cfg->n_listeners; i++) {
			struct kg_tls_ctx *t = NULL;

			if (kg_tls_ctx_new(&cfg->listeners[i], cfg->path, &t, err, sizeof(err))) {
				kg_config_free(cfg);
				return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
			}
			kg_tls_ctx_put(t);
		}
		if (cli->json)
			printf("{\"config\":\"%s\",\"listeners\":%zu,\"ok\":true}\n", path, cfg->n_listeners);
		else
			printf("%s: configuration OK (%zu listener%s)\n", path, cfg->n_listeners,
			       cfg->n_listeners == 1 ? "" : "s");
		kg_config_free(cfg);
		return KG_EXIT_OK;
	}
	rc = kg_gw_run(cfg, ready);
	if (rc == -EINVAL)
		return KG_EXIT_USAGE;	/* a certificate or key in the config is unusable */
	return rc ? KG_EXIT_RUNTIME : KG_EXIT_OK;
}

/* ---- fingerprint --------------------------------------------------------- */

static int kg_cmd_fingerprint(struct kg_cli *cli, int argc, char **argv)
{
	uint8_t fp[KG_FP_LEN];
	char out[KG_FP_COLON_LEN];
	bool colons = false;
	const char *path = NULL;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--colons"))
			colons = true;
		else if (kg_cli_is_help(argv[i])) {
			printf("Usage: %s fingerprint [--colons] CERT\n"
			       "  SHA-256 of the DER certificate (first one of a PEM file, or DER):\n"
			       "  the bytes of `openssl x509 -noout -fingerprint -sha256`.\n", cli->prog);
			return KG_EXIT_OK;
		} else if (!path)
			path = argv[i];
		else
			return kg_cli_error(cli, KG_EXIT_USAGE, "fingerprint: one CERT only");
	}
	if (!path)
		return kg_cli_error(cli, KG_EXIT_USAGE, "fingerprint: give a certificate file: "
				    "%s fingerprint CERT", cli->prog);
	rc = kg_fp_file(path, fp);
	if (rc == -EPROTO)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: no PEM or DER certificate in the file",
				    path);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: %s", path, strerror(-rc));
	kg_fp_format(fp, colons, out, sizeof(out));
	if (cli->json)
		printf("{\"file\":\"%s\",\"sha256\":\"%s\"}\n", path, out);
	else
		printf("%s\n", out);
	return KG_EXIT_OK;
}

/* ---- pki ----------------------------------------------------------------- */

static int kg_cmd_pki_init(struct kg_cli *cli, int argc, char **argv)
{
	const char *dir = NULL;
	bool test = false;
	int i;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--test"))
			test = true;
		else if (kg_cli_is_help(argv[i])) {
			printf("Usage: %s pki init [--test] DIR\n", cli->prog);
			return KG_EXIT_OK;
		} else if (!dir)
			dir = argv[i];
		else
			return kg_cli_error(cli, KG_EXIT_USAGE, "pki init: one DIR only");
	}
	if (!dir)
		return kg_cli_error(cli, KG_EXIT_USAGE, "pki init: give a directory: %s pki init DIR",
				    cli->prog);
	if (kg_pki_init(dir, test))
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "pki init %s failed (see above)", dir);
	if (cli->json)
		printf("{\"dir\":\"%s\",\"ok\":true}\n", dir);
	else
		printf("demo PKI written to %s (root CA ca.pem, client CA client-ca.pem, server "
		       "server.pem, clients alice.pem and bob.pem)\n", dir);
	return KG_EXIT_OK;
}

static const struct kg_cmd kg_pki_cmds[] = {
	{ "init", kg_cmd_pki_init, "init [--test] DIR   write a demo PKI (root, client CA, server, two clients)" },
	{ NULL, NULL, NULL }
};

static int kg_cmd_pki(struct kg_cli *cli, int argc, char **argv)
{
	return kg_cli_dispatch(cli, kg_pki_cmds, "pki", argc, argv);
}

static int kg_cmd_version(struct kg_cli *cli, int argc, char **argv)
{
	if (cli->json)
		printf("{\"version\":\"%s\"}\n", KG_VERSION);
	else
		printf("ktlsgw %s\n", KG_VERSION);
	return KG_EXIT_OK;
}

static const struct kg_cmd kg_objects[] = {
	{ "run", kg_cmd_gateway_run, "[-c FILE] [--check]        run the gateway" },
	{ "fingerprint", kg_cmd_fingerprint, "[--colons] CERT            SHA-256 fingerprint of a certificate" },
	{ "pki", kg_cmd_pki, "init [--test] DIR          write a demo PKI" },
	{ "version", kg_cmd_version, "                           print the version" },
	{ NULL, NULL, NULL }
};

static void kg_usage(FILE *f, const char *prog)
{
	const struct kg_cmd *c;

	fprintf(f, "Usage: %s [OPTIONS] OBJECT COMMAND [ARGS]\n\nOptions:\n"
		"  -j, --json     JSON output (errors too)\n"
		"  -h, --help     this help; OBJECT help for its commands\n"
		"  -V, --version  print the version\n\nObjects:\n", prog);
	for (c = kg_objects; c->name; c++)
		fprintf(f, "  %s %s\n", c->name, c->help);
	fprintf(f, "\nExit status: 0 ok, 1 runtime error, 2 usage or configuration error.\n");
}

int kg_cli_main(int argc, char **argv)
{
	struct kg_cli cli = { .prog = "ktlsgw" };
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
			cli.json = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			kg_usage(stdout, cli.prog);
			return KG_EXIT_OK;
		} else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version"))
			return kg_cmd_version(&cli, 0, NULL);
		else if (!strcmp(argv[i], "--"))  {
			i++;
			break;
		} else {
			kg_usage(stderr, cli.prog);
			return kg_cli_error(&cli, KG_EXIT_USAGE, "unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc) {
		kg_usage(stderr, cli.prog);
		return KG_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help")) {
		kg_usage(stdout, cli.prog);
		return KG_EXIT_OK;
	}
	return kg_cli_dispatch(&cli, kg_objects, "", argc - i, argv + i);
}
