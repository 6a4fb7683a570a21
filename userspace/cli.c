#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "admin.h"
#include "caps.h"
#include "gateway.h"
#include "log.h"
#include "pki.h"
#include "revoke.h"
#include "verify.h"

#define KG_VERSION "0.1.0"

/* Longest error message: kg_cli_error and the argument parsers format into
 * buffers of this size, so a message is cut at the same place either way. */
#define KG_CLI_MSG_MAX 2048

bool kg_cli_is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int kg_cli_error(struct kg_cli *cli, int code, const char *fmt, ...)
{
	char msg[KG_CLI_MSG_MAX];
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

/*
 * ---- argument parsing ------------------------------------------------------
 *
 * Each command parses its arguments with a function that has no side
 * effects: argv in, a struct out, 0 or KG_EXIT_USAGE with the message in
 * @err. The command prints the message and then acts. The commands write
 * BPF maps, state files and sockets, so they cannot be fuzzed end to end;
 * tests/fuzz/fuzz_cli_args.c drives these parsers instead.
 */

static int kg_usage_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int kg_usage_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return KG_EXIT_USAGE;
}

/* A parser's verdict: print its message, if any (getopt prints its own). */
static int kg_cli_perror(struct kg_cli *cli, int code, const char *msg)
{
	return msg[0] ? kg_cli_error(cli, code, "%s", msg) : code;
}

/* ---- gateway run --------------------------------------------------------- */

struct kg_run_opts {
	const char *path, *ready;
	bool check, help;
};

/*
 * run [-c FILE] [--ready-file FILE] [--check]. getopt wants a program name
 * in front, so it sees argv - 1 (the command name): @argv must be the tail
 * of a vector that has one element before it. getopt keeps its position in
 * globals; optind = 0 makes glibc start over, so each call stands alone.
 * Unknown options: KG_EXIT_USAGE with @err empty, getopt has said why
 * (when opterr is set).
 */
static int kg_run_parse(int argc, char **argv, struct kg_run_opts *o, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->path = "/etc/ktlsgw/ktlsgw.conf";
	err[0] = '\0';
	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "c:r:Ch", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->path = optarg;
			break;
		case 'r':
			o->ready = optarg;
			break;
		case 'C':
			o->check = true;
			break;
		case 'h':
			o->help = true;	/* the rest is not looked at */
			return 0;
		default:
			return KG_EXIT_USAGE;
		}
	}
	if (optind < argc + 1)
		return kg_usage_err(err, errlen, "run: unexpected argument '%s'", argv[optind - 1]);
	return 0;
}

static int kg_cmd_gateway_run(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_config *cfg = NULL;
	struct kg_run_opts o;
	const char *path, *ready;
	char err[1024], msg[KG_CLI_MSG_MAX];
	bool check;
	int rc;

	rc = kg_run_parse(argc, argv, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s run [-c FILE] [--check] [--ready-file FILE]\n"
		       "  Run the gateway with the INI configuration FILE\n"
		       "  (default /etc/ktlsgw/ktlsgw.conf). --check only validates it:\n"
		       "  syntax, files, certificates and keys. --ready-file writes\n"
		       "  \"NAME ADDRESS\" per listener once all sockets are bound.\n", cli->prog);
		return KG_EXIT_OK;
	}
	path = o.path;
	ready = o.ready;
	check = o.check;
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

struct kg_fp_opts {
	const char *path;
	bool colons, help;
};

/* fingerprint [--colons] CERT: in order, a help word ends the parsing. */
static int kg_fp_args(const char *prog, int argc, char **argv, struct kg_fp_opts *o, char *err,
		      size_t errlen)
{
	int i;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--colons")) {
			o->colons = true;
		} else if (kg_cli_is_help(argv[i])) {
			o->help = true;
			return 0;
		} else if (!o->path) {
			o->path = argv[i];
		} else {
			return kg_usage_err(err, errlen, "fingerprint: one CERT only");
		}
	}
	if (!o->path)
		return kg_usage_err(err, errlen, "fingerprint: give a certificate file: "
				    "%s fingerprint CERT", prog);
	return 0;
}

static int kg_cmd_fingerprint(struct kg_cli *cli, int argc, char **argv)
{
	uint8_t fp[KG_FP_LEN];
	char out[KG_FP_COLON_LEN], msg[KG_CLI_MSG_MAX];
	struct kg_fp_opts o;
	bool colons;
	const char *path;
	int rc;

	rc = kg_fp_args(cli->prog, argc, argv, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s fingerprint [--colons] CERT\n"
		       "  SHA-256 of the DER certificate (first one of a PEM file, or DER):\n"
		       "  the bytes of `openssl x509 -noout -fingerprint -sha256`.\n", cli->prog);
		return KG_EXIT_OK;
	}
	path = o.path;
	colons = o.colons;
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

struct kg_pki_opts {
	const char *dir;
	bool test, help;
};

/* pki init [--test] DIR: in order, a help word ends the parsing. */
static int kg_pki_args(const char *prog, int argc, char **argv, struct kg_pki_opts *o, char *err,
		       size_t errlen)
{
	int i;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--test")) {
			o->test = true;
		} else if (kg_cli_is_help(argv[i])) {
			o->help = true;
			return 0;
		} else if (!o->dir) {
			o->dir = argv[i];
		} else {
			return kg_usage_err(err, errlen, "pki init: one DIR only");
		}
	}
	if (!o->dir)
		return kg_usage_err(err, errlen, "pki init: give a directory: %s pki init DIR", prog);
	return 0;
}

static int kg_cmd_pki_init(struct kg_cli *cli, int argc, char **argv)
{
	char msg[KG_CLI_MSG_MAX];
	struct kg_pki_opts o;
	const char *dir;
	int rc;

	rc = kg_pki_args(cli->prog, argc, argv, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s pki init [--test] DIR\n", cli->prog);
		return KG_EXIT_OK;
	}
	dir = o.dir;
	if (kg_pki_init(dir, o.test))
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

/* ---- revoke -------------------------------------------------------------- */

struct kg_rev_opts {
	const char *config, *state_dir, *pin_root, *cert, *reason;
	const char *pos[4];
	int npos;
	bool help;
	uint8_t fp[KG_FP_LEN];		/* revoke add/del: the FINGERPRINT argument */
	int code;			/* revoke add: RFC 5280 reason of --reason */
};

/* Shared option parsing for the revoke commands. KG_EXIT_USAGE on a usage error. */
static int kg_rev_parse(int argc, char **argv, struct kg_rev_opts *o, char *err, size_t errlen)
{
	int i;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	for (i = 0; i < argc; i++) {
		const char **dst = NULL;

		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
			dst = &o->config;
		else if (!strcmp(argv[i], "--state-dir"))
			dst = &o->state_dir;
		else if (!strcmp(argv[i], "--pin-root"))
			dst = &o->pin_root;
		else if (!strcmp(argv[i], "--cert"))
			dst = &o->cert;
		else if (!strcmp(argv[i], "--reason"))
			dst = &o->reason;
		else if (kg_cli_is_help(argv[i])) {
			o->help = true;
			continue;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return kg_usage_err(err, errlen, "unknown option '%s'", argv[i]);
		} else if (o->npos < 4) {
			o->pos[o->npos++] = argv[i];
			continue;
		} else {
			return kg_usage_err(err, errlen, "too many arguments");
		}
		if (++i >= argc)
			return kg_usage_err(err, errlen, "%s needs a value", argv[i - 1]);
		*dst = argv[i];
	}
	return 0;
}

/*
 * revoke add (--cert FILE | FINGERPRINT) [--reason TEXT]: the FINGERPRINT
 * into o->fp (--cert is read by the command), the reason word into o->code.
 */
static int kg_rev_add_args(const char *prog, int argc, char **argv, struct kg_rev_opts *o,
			   char *err, size_t errlen)
{
	int rc = kg_rev_parse(argc, argv, o, err, errlen);

	if (rc || o->help)
		return rc;
	if (!!o->cert + o->npos != 1)
		return kg_usage_err(err, errlen, "revoke add: give --cert FILE or one "
				    "FINGERPRINT (64 hex digits, colons optional)");
	if (!o->cert && kg_fp_parse(o->pos[0], o->fp))
		return kg_usage_err(err, errlen, "'%s' is not a SHA-256 fingerprint: give 64 hex "
				    "digits, with or without colons (see `%s fingerprint CERT`)",
				    o->pos[0], prog);
	if (o->reason) {
		char word[64];

		snprintf(word, sizeof(word), "%s", o->reason);
		word[strcspn(word, " :;,")] = '\0';
		o->code = kg_reason_code(word);
		if (o->code < 0)
			o->code = 0;
	}
	return 0;
}

/* revoke del FINGERPRINT: into o->fp. */
static int kg_rev_del_args(int argc, char **argv, struct kg_rev_opts *o, char *err, size_t errlen)
{
	int rc = kg_rev_parse(argc, argv, o, err, errlen);

	if (rc || o->help)
		return rc;
	if (o->npos != 1 || o->cert || kg_fp_parse(o->pos[0], o->fp))
		return kg_usage_err(err, errlen, "revoke del: give one FINGERPRINT (64 hex "
				    "digits, colons optional)");
	return 0;
}

/* Open the revoker at the paths given by flags, the config file, or defaults. */
static int kg_rev_open(struct kg_cli *cli, const struct kg_rev_opts *o, struct kg_revoker **r)
{
	char state[256] = KG_STATE_DIR_DEFAULT, pins[256] = KG_PIN_ROOT_DEFAULT, err[1024];
	struct kg_config *cfg = NULL;
	int rc;

	if (o->config) {
		rc = kg_config_load(o->config, &cfg, err, sizeof(err));
		if (rc)
			return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
		snprintf(state, sizeof(state), "%s", cfg->state_dir);
		snprintf(pins, sizeof(pins), "%s", cfg->pin_root);
		kg_config_free(cfg);
	}
	if (o->state_dir)
		snprintf(state, sizeof(state), "%s", o->state_dir);
	if (o->pin_root)
		snprintf(pins, sizeof(pins), "%s", o->pin_root);
	kg_log_set_level(KG_LOG_WARN);
	rc = kg_revoker_open(pins, state, true, r, err, sizeof(err));
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	return 0;
}

#define KG_REV_COMMON "[-c CONFIG | --state-dir DIR --pin-root DIR]"

static int kg_cmd_revoke_add(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_rev_opts o;
	struct kg_revoker *r = NULL;
	uint8_t fp[KG_FP_LEN];
	char hex[KG_FP_HEX_LEN], err[1024], msg[KG_CLI_MSG_MAX];
	int rc, cut = 0, code;

	rc = kg_rev_add_args(cli->prog, argc, argv, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s revoke add (--cert FILE | FINGERPRINT) [--reason TEXT] %s\n"
		       "  Revoke a client certificate: recorded durably in STATE_DIR/revoked, put in\n"
		       "  the pinned BPF map, and every live connection using it is cut (RST).\n"
		       "  TEXT may start with an RFC 5280 reason (keyCompromise, superseded, ...).\n",
		       cli->prog, KG_REV_COMMON);
		return KG_EXIT_OK;
	}
	if (o.cert) {
		rc = kg_fp_file(o.cert, fp);
		if (rc)
			return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: %s", o.cert, rc == -EPROTO ?
					    "no PEM or DER certificate in the file" : strerror(-rc));
	} else {
		memcpy(fp, o.fp, sizeof(fp));
	}
	code = o.code;
	rc = kg_rev_open(cli, &o, &r);
	if (rc)
		return rc;
	rc = kg_revoker_add(r, fp, (uint32_t)code, o.reason, &cut, err, sizeof(err));
	kg_fp_format(fp, false, hex, sizeof(hex));
	if (rc) {
		kg_revoker_close(r);
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "revoke %s: %s", hex, err);
	}
	if (cli->json)
		printf("{\"sha256\":\"%s\",\"revoked\":true,\"reason\":\"%s\",\"live_cut\":%d,"
		       "\"cut_by\":\"%s\"}\n", hex, kg_reason_name((uint32_t)code), cut,
		       kg_ebpf_can_destroy(r->bpf) ? "kernel" : "gateway");
	else
		printf("revoked %s (%s); %d live socket%s %s\n", hex, kg_reason_name((uint32_t)code), cut,
		       cut == 1 ? "" : "s", kg_ebpf_can_destroy(r->bpf) ? "aborted by the kernel" :
		       "found; the gateway closes them at its next scan");
	kg_revoker_close(r);
	return KG_EXIT_OK;
}

static int kg_cmd_revoke_del(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_rev_opts o;
	struct kg_revoker *r = NULL;
	uint8_t fp[KG_FP_LEN];
	char hex[KG_FP_HEX_LEN], err[1024], msg[KG_CLI_MSG_MAX];
	int rc;

	rc = kg_rev_del_args(argc, argv, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s revoke del FINGERPRINT %s\n", cli->prog, KG_REV_COMMON);
		return KG_EXIT_OK;
	}
	memcpy(fp, o.fp, sizeof(fp));
	rc = kg_rev_open(cli, &o, &r);
	if (rc)
		return rc;
	kg_fp_format(fp, false, hex, sizeof(hex));
	rc = kg_revoker_del(r, fp, err, sizeof(err));
	kg_revoker_close(r);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: %s", hex, err);
	if (cli->json)
		printf("{\"sha256\":\"%s\",\"revoked\":false}\n", hex);
	else
		printf("%s is no longer revoked (new handshakes are accepted)\n", hex);
	return KG_EXIT_OK;
}

static int kg_cmd_revoke_list(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_revstate st = { 0 };
	struct kg_rev_opts o;
	struct kg_revoker *r = NULL;
	char hex[KG_FP_HEX_LEN], when[32], err[1024], esc[300], msg[KG_CLI_MSG_MAX];
	size_t i;
	int rc;

	rc = kg_rev_parse(argc, argv, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s [-j] revoke list %s\n", cli->prog, KG_REV_COMMON);
		return KG_EXIT_OK;
	}
	rc = kg_rev_open(cli, &o, &r);
	if (rc)
		return rc;
	rc = kg_revoker_list(r, &st, err, sizeof(err));
	kg_revoker_close(r);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	if (cli->json)
		printf("[");
	else if (st.n)
		printf("%-64s  %-20s  %-20s  %-4s  %s\n", "SHA256", "REVOKED (UTC)", "REASON", "CUT", "TEXT");
	for (i = 0; i < st.n; i++) {
		time_t t = (time_t)st.e[i].revoked_at;
		struct tm tm;

		kg_fp_format(st.e[i].fp, false, hex, sizeof(hex));
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (cli->json) {
			kg_json_escape(esc, sizeof(esc), st.e[i].text);
			printf("%s{\"sha256\":\"%s\",\"revoked_at\":\"%s\",\"reason\":\"%s\","
			       "\"live_cut\":%s,\"text\":\"%s\"}", i ? "," : "", hex, when,
			       kg_reason_name(st.e[i].reason),
			       st.e[i].flags & KG_REV_F_CUT ? "true" : "false", esc);
		} else {
			printf("%-64s  %-20s  %-20s  %-4s  %s\n", hex, when, kg_reason_name(st.e[i].reason),
			       st.e[i].flags & KG_REV_F_CUT ? "yes" : "no", st.e[i].text);
		}
	}
	if (cli->json)
		printf("]\n");
	else if (!st.n)
		printf("no revoked certificates\n");
	kg_revstate_release(&st);
	return KG_EXIT_OK;
}

static const struct kg_cmd kg_revoke_cmds[] = {
	{ "add", kg_cmd_revoke_add, "add (--cert FILE | FINGERPRINT) [--reason TEXT] " KG_REV_COMMON },
	{ "del", kg_cmd_revoke_del, "del FINGERPRINT " KG_REV_COMMON },
	{ "list", kg_cmd_revoke_list, "list " KG_REV_COMMON },
	{ NULL, NULL, NULL }
};

static int kg_cmd_revoke(struct kg_cli *cli, int argc, char **argv)
{
	return kg_cli_dispatch(cli, kg_revoke_cmds, "revoke", argc, argv);
}

/* ---- conn / stats (admin socket) ------------------------------------------ */

struct kg_admin_opts {
	char sock[128];
	const char *pos[2];
	int npos;
	bool help;
};

/* -c CONFIG: that configuration's admin_socket into @sock, or
 * KG_EXIT_USAGE with the configuration error in @err. */
typedef int (*kg_conf_sock_fn)(const char *conf, char *sock, size_t socklen, char *err,
			       size_t errlen);

static int kg_conf_admin_sock(const char *conf, char *sock, size_t socklen, char *err,
			      size_t errlen)
{
	char cerr[1024];	/* the size it always had: long messages are cut as before */
	struct kg_config *cfg;

	if (kg_config_load(conf, &cfg, cerr, sizeof(cerr))) {
		snprintf(err, errlen, "%s", cerr);
		return KG_EXIT_USAGE;
	}
	snprintf(sock, socklen, "%s", cfg->admin_socket);
	kg_config_free(cfg);
	return 0;
}

/*
 * -s SOCKET, -c CONFIG, or the default; the rest into o->pos. Reading a
 * configuration is the one side effect, so it goes through @conf_sock (the
 * fuzzer passes a pure one); it runs where -c stands, so a bad file is
 * still reported before a bad argument after it.
 */
static int kg_admin_args(int argc, char **argv, kg_conf_sock_fn conf_sock,
			 struct kg_admin_opts *o, char *err, size_t errlen)
{
	int i;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	snprintf(o->sock, sizeof(o->sock), "%s", KG_ADMIN_SOCKET_DEFAULT);
	for (i = 0; i < argc; i++) {
		if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--socket")) && i + 1 < argc) {
			snprintf(o->sock, sizeof(o->sock), "%s", argv[++i]);
		} else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			int rc = conf_sock(argv[++i], o->sock, sizeof(o->sock), err, errlen);

			if (rc)
				return rc;
		} else if (kg_cli_is_help(argv[i])) {
			o->help = true;
		} else if (argv[i][0] == '-') {
			return kg_usage_err(err, errlen, "unknown option '%s'", argv[i]);
		} else if (o->npos < 2) {
			o->pos[o->npos++] = argv[i];
		} else {
			return kg_usage_err(err, errlen, "too many arguments");
		}
	}
	return 0;
}

/* conn kill ID: one positive decimal ID. */
static int kg_conn_kill_args(const char *prog, int argc, char **argv, kg_conf_sock_fn conf_sock,
			     struct kg_admin_opts *o, char *err, size_t errlen)
{
	int rc = kg_admin_args(argc, argv, conf_sock, o, err, errlen);
	unsigned long long id = 0;

	if (rc || o->help)
		return rc;
	/* digits only (no sign, blank or line break: strtoull would take the
	 * first two, the gateway's parser stops at the third), at most 20 so
	 * the request line is never cut short; then the gateway's own parser
	 * decides about overflow */
	if (o->npos == 1 && strlen(o->pos[0]) <= 20 &&
	    strspn(o->pos[0], "0123456789") == strlen(o->pos[0])) {
		char line[40];
		int n = snprintf(line, sizeof(line), "conn kill %s", o->pos[0]);

		if (kg_admin_parse(line, (size_t)n, &id) == KG_ADM_CONN_KILL && id)
			return 0;
	}
	return kg_usage_err(err, errlen, "conn kill: give one connection ID from `%s conn list`",
			    prog);
}

/* The value of "key": in one JSON object of ours (no nesting there). */
static void kg_jfield(const char *obj, const char *key, char *out, size_t outsz)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	out[0] = '\0';
	p = strstr(obj, pat);
	if (!p)
		return;
	p += strlen(pat);
	if (*p == '"') {
		p++;
		for (e = p; *e && !(*e == '"' && e[-1] != '\\'); e++)
			;
	} else {
		e = p + strcspn(p, ",}");
	}
	snprintf(out, outsz, "%.*s", (int)(e - p), p);
}

static int kg_cmd_conn_list(struct kg_cli *cli, int argc, char **argv)
{
	char err[1024], msg[KG_CLI_MSG_MAX], *resp, *obj;
	struct kg_admin_opts o;
	const char *sock = o.sock;
	int rc, n = 0;

	rc = kg_admin_args(argc, argv, kg_conf_admin_sock, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help || o.npos) {
		printf("Usage: %s [-j] conn list [-s SOCKET | -c CONFIG]\n  Every live connection: id, "
		       "worker, listener, client, subject, SHA-256 fingerprint, TLS version and\n  cipher, "
		       "data path, bytes each way, age.\n", cli->prog);
		return o.help ? KG_EXIT_OK : KG_EXIT_USAGE;
	}
	resp = kg_admin_call(sock, "conn list", err, sizeof(err));
	if (!resp)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	if (cli->json) {
		fputs(resp, stdout);
		free(resp);
		return KG_EXIT_OK;
	}
	printf("%-11s %-2s %-10s %-21s %-16s %-64s %-3s %-22s %-9s %12s %12s %8s\n", "ID", "W",
	       "LISTENER", "CLIENT", "SUBJECT", "SHA256", "TLS", "CIPHER", "PATH", "BYTES_IN",
	       "BYTES_OUT", "AGE_S");
	for (obj = strchr(resp, '{'); obj; obj = strchr(obj + 1, '{')) {
		char f[12][160];
		static const char *const keys[] = { "id", "worker", "listener", "client", "subject",
			"sha256", "tls", "cipher", "path", "bytes_in", "bytes_out", "age_ms" };
		char *end = strchr(obj, '}');
		int k;

		if (!end)
			break;
		*end = '\0';
		for (k = 0; k < 12; k++)
			kg_jfield(obj, keys[k], f[k], sizeof(f[k]));
		printf("%-11s %-2s %-10s %-21s %-16s %-64s %-3s %-22s %-9s %12s %12s %8.1f\n", f[0], f[1],
		       f[2], f[3], f[4][0] ? f[4] : "-", f[5][0] ? f[5] : "-", f[6], f[7], f[8], f[9],
		       f[10], atof(f[11]) / 1000.0);
		*end = '}';
		n++;
	}
	if (!n)
		printf("(no connections)\n");
	free(resp);
	return KG_EXIT_OK;
}

static int kg_cmd_conn_kill(struct kg_cli *cli, int argc, char **argv)
{
	char err[1024], req[64], msg[KG_CLI_MSG_MAX], *resp;
	struct kg_admin_opts o;
	const char *sock = o.sock, **pos = o.pos;
	int rc;

	rc = kg_conn_kill_args(cli->prog, argc, argv, kg_conf_admin_sock, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help) {
		printf("Usage: %s conn kill ID [-s SOCKET | -c CONFIG]\n  Close connection ID (both "
		       "legs, RST); IDs come from `conn list`.\n", cli->prog);
		return KG_EXIT_OK;
	}
	snprintf(req, sizeof(req), "conn kill %s", pos[0]);
	resp = kg_admin_call(sock, req, err, sizeof(err));
	if (!resp)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	rc = strstr(resp, "\"error\"") ? KG_EXIT_RUNTIME : KG_EXIT_OK;
	if (cli->json) {
		fputs(resp, stdout);
	} else if (rc) {
		kg_jfield(resp, "error", err, sizeof(err));
		fprintf(stderr, "%s: %s\n", cli->prog, err);
	} else {
		printf("connection %s closed\n", pos[0]);
	}
	free(resp);
	return rc;
}

static const struct kg_cmd kg_conn_cmds[] = {
	{ "list", kg_cmd_conn_list, "list [-s SOCKET | -c CONFIG]" },
	{ "kill", kg_cmd_conn_kill, "kill ID [-s SOCKET | -c CONFIG]" },
	{ NULL, NULL, NULL }
};

static int kg_cmd_conn(struct kg_cli *cli, int argc, char **argv)
{
	return kg_cli_dispatch(cli, kg_conn_cmds, "conn", argc, argv);
}

static int kg_cmd_stats(struct kg_cli *cli, int argc, char **argv)
{
	char err[1024], msg[KG_CLI_MSG_MAX], *resp;
	struct kg_admin_opts o;
	const char *sock = o.sock;
	int rc;

	rc = kg_admin_args(argc, argv, kg_conf_admin_sock, &o, msg, sizeof(msg));
	if (rc)
		return kg_cli_perror(cli, rc, msg);
	if (o.help || o.npos) {
		printf("Usage: %s [-j] stats [-s SOCKET | -c CONFIG]\n", cli->prog);
		return o.help ? KG_EXIT_OK : KG_EXIT_USAGE;
	}
	resp = kg_admin_call(sock, "stats", err, sizeof(err));
	if (!resp)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	if (cli->json) {
		fputs(resp, stdout);
	} else {
		/* one "key value" line per counter */
		char *p;

		for (p = resp; *p; p++)
			if (*p == '{' || *p == '}' || *p == '"')
				*p = ' ';
			else if (*p == ',')
				*p = '\n';
			else if (*p == ':')
				*p = ' ';
		for (p = strtok(resp, "\n"); p; p = strtok(NULL, "\n")) {
			while (*p == ' ')
				p++;
			if (*p)
				printf("%s\n", p);
		}
	}
	free(resp);
	return KG_EXIT_OK;
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
	{ "conn", kg_cmd_conn, "list|kill ...              live connections (admin socket)" },
	{ "stats", kg_cmd_stats, "                           counters (admin socket)" },
	{ "features", kg_cmd_features, "                           kTLS, io_uring and BPF capabilities here" },
	{ "pki", kg_cmd_pki, "init [--test] DIR          write a demo PKI" },
	{ "revoke", kg_cmd_revoke, "add|del|list ...         revoke client certificates (live cut)" },
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
