/* `ktlsgw revoke add|del|list`: the revocation list, written through the
 * same revoker as the gateway (state file, pinned map, live cut). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "ebpf.h"
#include "json.h"
#include "log.h"
#include "revoke.h"
#include "verify.h"

_Static_assert(sizeof(((struct kg_rev_args *)0)->fp) == KG_FP_LEN, "kg_rev_args.fp");

static int kg_rev_usage(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int kg_rev_usage(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return KG_EXIT_USAGE;
}

int kg_rev_add_args(const struct kg_cli *cli, int argc, char **argv, struct kg_rev_args *a,
		    char *err, size_t errlen)
{
	const char *reason = cli->opt[KG_OPT_REASON];

	memset(a, 0, sizeof(*a));
	err[0] = '\0';
	if (!!cli->opt[KG_OPT_CERT] + argc != 1)
		return kg_rev_usage(err, errlen, "revoke add: give --cert FILE or one "
				    "FINGERPRINT (64 hex digits, colons optional)");
	if (argc) {
		if (kg_fp_parse(argv[0], a->fp))
			return kg_rev_usage(err, errlen, "'%s' is not a SHA-256 fingerprint: give 64 "
					    "hex digits, with or without colons (see `%s "
					    "fingerprint CERT`)", argv[0], cli->prog);
		a->have_fp = true;
	}
	a->code = (int)kg_reason_of_text(reason);
	return 0;
}

int kg_rev_del_args(const struct kg_cli *cli, int argc, char **argv, struct kg_rev_args *a,
		    char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	err[0] = '\0';
	if (argc != 1 || kg_fp_parse(argv[0], a->fp))
		return kg_rev_usage(err, errlen, "revoke del: give one FINGERPRINT (64 hex "
				    "digits, colons optional)");
	a->have_fp = true;
	return 0;
}

/* Open the revoker at the paths of --state-dir/--pin-root, else of -c
 * CONFIG, else the defaults. Exit code. */
static int kg_rev_open(struct kg_cli *cli, struct kg_revoker **r)
{
	char state[256] = KG_STATE_DIR_DEFAULT, pins[256] = KG_PIN_ROOT_DEFAULT, err[1024];
	struct kg_config *cfg = NULL;

	if (cli->opt[KG_OPT_CONFIG]) {
		if (kg_config_load(cli->opt[KG_OPT_CONFIG], &cfg, err, sizeof(err)))
			return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
		snprintf(state, sizeof(state), "%s", cfg->state_dir);
		snprintf(pins, sizeof(pins), "%s", cfg->pin_root);
		kg_config_free(cfg);
	}
	if (cli->opt[KG_OPT_STATE_DIR])
		snprintf(state, sizeof(state), "%s", cli->opt[KG_OPT_STATE_DIR]);
	if (cli->opt[KG_OPT_PIN_ROOT])
		snprintf(pins, sizeof(pins), "%s", cli->opt[KG_OPT_PIN_ROOT]);
	kg_log_set_level(KG_LOG_WARN);
	if (kg_revoker_open(pins, state, true, r, err, sizeof(err)))
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	return KG_EXIT_OK;
}

/* Parse with @check, then open the revoker: KG_EXIT_OK with *@r open, or the exit code. */
static int kg_rev_start(struct kg_cli *cli, int argc, char **argv, struct kg_rev_args *a,
			int (*check)(const struct kg_cli *, int, char **, struct kg_rev_args *,
				     char *, size_t), struct kg_revoker **r)
{
	char msg[1024];

	if (check(cli, argc, argv, a, msg, sizeof(msg)))
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s", msg);
	if (cli->opt[KG_OPT_CERT]) {
		int rc = kg_fp_file(cli->opt[KG_OPT_CERT], a->fp);

		if (rc)
			return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: %s", cli->opt[KG_OPT_CERT],
					    rc == -EPROTO ? "no PEM or DER certificate in the file" :
					    strerror(-rc));
	}
	return kg_rev_open(cli, r);
}

static int kg_cmd_revoke_add(struct kg_cli *cli, int argc, char **argv)
{
	const char *reason = cli->opt[KG_OPT_REASON];
	struct kg_revoker *r = NULL;
	struct kg_rev_args a;
	char hex[KG_FP_HEX_LEN], err[1024], fmsg[1024];
	struct kg_fleet_job *job = NULL;
	bool kernel;
	int rc, cut = 0, fleet;

	rc = kg_rev_start(cli, argc, argv, &a, kg_rev_add_args, &r);
	if (rc)
		return rc;
	/* the fleet's bucket is written while the cut runs here: neither the
	 * local cut nor the other nodes wait for the other's I/O */
	rc = kg_fleet_cli_publish_start(cli, a.fp, false, (uint32_t)a.code, reason, &job);
	if (rc) {
		kg_revoker_close(r);
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "revoke: %s", strerror(-rc));
	}
	kg_fp_format(a.fp, false, hex, sizeof(hex));
	rc = kg_revoker_add(r, a.fp, (uint32_t)a.code, reason, &cut, err, sizeof(err));
	kernel = !rc && kg_ebpf_can_destroy(r->bpf);
	kg_revoker_close(r);
	fleet = kg_fleet_cli_publish_wait(job, fmsg, sizeof(fmsg));
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "revoke %s: %s%s%s", hex, err,
				    fmsg[0] ? "; " : "", fmsg);
	if (cli->json)
		rc = kg_cli_print_json(cli, kg_json_obj("sbsiss", "sha256", hex, "revoked", true,
							"reason", kg_reason_name((uint32_t)a.code),
							"live_cut", (int64_t)cut,
							"cut_by", kernel ? "kernel" : "gateway",
							"fleet", fmsg));
	else
		kg_revoke_print_added(stdout, hex, (uint32_t)a.code, cut, kernel, fmsg);
	return fleet < 0 ? KG_EXIT_RUNTIME : rc;
}

static int kg_cmd_revoke_del(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_revoker *r = NULL;
	struct kg_rev_args a;
	char hex[KG_FP_HEX_LEN], err[1024], fmsg[1024];
	int rc, fleet;

	rc = kg_rev_start(cli, argc, argv, &a, kg_rev_del_args, &r);
	if (rc)
		return rc;
	kg_fp_format(a.fp, false, hex, sizeof(hex));
	/* An un-revoke lets a certificate in again, so with [fleet] it needs
	 * the bucket's writer authority first, and a refusal changes nothing
	 * here. (A revoke is applied here while the bucket is written: it
	 * fails safe.) */
	fleet = kg_fleet_cli_publish(cli, a.fp, true, 0, NULL, fmsg, sizeof(fmsg));
	if (fleet < 0) {
		kg_revoker_close(r);
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s stays revoked: %s", hex, fmsg);
	}
	rc = kg_revoker_del(r, a.fp, err, sizeof(err));
	kg_revoker_close(r);
	/* in the bucket, but not revoked here (or this node's gateway applied
	 * the change from the bucket first): the un-revoke stands */
	if (rc == -ENOENT && fmsg[0])
		rc = 0;
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: %s", hex, err);
	if (cli->json)
		return kg_cli_print_json(cli, kg_json_obj("sbs", "sha256", hex, "revoked", false,
							  "fleet", fmsg));
	kg_revoke_print_removed(stdout, hex, fmsg);
	return KG_EXIT_OK;
}

static int kg_cmd_revoke_list(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_revstate st = { 0 };
	struct kg_revoker *r = NULL;
	struct json_object *arr = NULL;
	char hex[KG_FP_HEX_LEN], when[32], err[1024];
	size_t i;
	int rc;

	rc = kg_rev_open(cli, &r);
	if (rc)
		return rc;
	rc = kg_revoker_list(r, &st, err, sizeof(err));
	kg_revoker_close(r);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	if (cli->json)
		arr = json_object_new_array();
	else if (st.n)
		printf("%-64s  %-20s  %-20s  %-4s  %s\n", "SHA256", "REVOKED (UTC)", "REASON", "CUT", "TEXT");
	else
		printf("no revoked certificates\n");
	for (i = 0; i < st.n; i++) {
		const struct kg_rev_entry *e = &st.e[i];
		time_t t = (time_t)e->revoked_at;
		struct tm tm;

		kg_fp_format(e->fp, false, hex, sizeof(hex));
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (!cli->json)
			printf("%-64s  %-20s  %-20s  %-4s  %s\n", hex, when, kg_reason_name(e->reason),
			       e->flags & KG_REV_F_CUT ? "yes" : "no", e->text);
		else if (arr && kg_json_array_add(arr, kg_json_obj("sssbs", "sha256", hex,
								   "revoked_at", when, "reason",
								   kg_reason_name(e->reason), "live_cut",
								   !!(e->flags & KG_REV_F_CUT),
								   "text", e->text)))
			json_object_put(arr), arr = NULL;
	}
	kg_revstate_release(&st);
	return cli->json ? kg_cli_print_json(cli, arr) : KG_EXIT_OK;
}

#define KG_REV_OPTS (KG_OPTF(KG_OPT_CONFIG) | KG_OPTF(KG_OPT_STATE_DIR) | KG_OPTF(KG_OPT_PIN_ROOT))

const struct kg_cmd kg_revoke_cmds[] = {
	{ "add", kg_cmd_revoke_add, NULL, "(--cert FILE | FINGERPRINT) [--reason TEXT] [-c CONFIG]",
	  "revoke a client certificate and cut its live connections",
	  "Recorded durably in STATE_DIR/revoked and put in the pinned BPF map; every live\n"
	  "connection using the certificate is cut (RST). The paths come from -c CONFIG, or\n"
	  "--state-dir and --pin-root, or the defaults. When CONFIG has a [fleet] section,\n"
	  "the fleet's NATS bucket is written at the same time, or, with NATS unreachable,\n"
	  "STATE_DIR/fleet-pending, which the gateway publishes when NATS returns.\n",
	  KG_REV_OPTS | KG_OPTF(KG_OPT_CERT) | KG_OPTF(KG_OPT_REASON), 0, 1 },
	{ "del", kg_cmd_revoke_del, NULL, "FINGERPRINT [-c CONFIG]",
	  "un-revoke: new handshakes with it are accepted again",
	  "When CONFIG has a [fleet] section, the delete goes to the fleet's bucket first\n"
	  "and needs the writer's permission there: if NATS refuses it, nothing changes on\n"
	  "this node either. With NATS unreachable it is applied here and left pending.\n",
	  KG_REV_OPTS, 1, 1 },
	{ "list", kg_cmd_revoke_list, NULL, "[-c CONFIG]", "the revoked certificates", NULL,
	  KG_REV_OPTS, 0, 0 },
	{ 0 }
};
