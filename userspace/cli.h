/*
 * The command line, bpftool style: `ktlsgw [OPTIONS] OBJECT COMMAND [ARGS]`.
 * cli.c owns the frame (options, dispatch by unique prefix, help generated
 * from the tables, errors, exit codes); each OBJECT lives in cli_<object>.c
 * with its table of commands.
 */
#ifndef KG_CLI_H
#define KG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define KG_EXIT_OK 0
#define KG_EXIT_RUNTIME 1
#define KG_EXIT_USAGE 2

/* Every option of every command: one getopt_long pass takes them wherever
 * they stand on the line; each command's table entry says which apply. */
enum kg_opt {
	KG_OPT_JSON, KG_OPT_HELP, KG_OPT_VERSION,	/* global: any command */
	KG_OPT_CONFIG, KG_OPT_SOCKET, KG_OPT_STATE_DIR, KG_OPT_PIN_ROOT, KG_OPT_CERT,
	KG_OPT_REASON, KG_OPT_COLONS, KG_OPT_TEST, KG_OPT_CHECK, KG_OPT_READY,
	KG_OPT__COUNT
};
#define KG_OPTF(o) (1u << (o))
#define KG_OPTF_GLOBAL (KG_OPTF(KG_OPT_JSON) | KG_OPTF(KG_OPT_HELP) | KG_OPTF(KG_OPT_VERSION))
/* which gateway: the commands that talk to its admin socket */
#define KG_ADMIN_OPTS (KG_OPTF(KG_OPT_SOCKET) | KG_OPTF(KG_OPT_CONFIG))

struct kg_cli {
	const char *prog;
	bool json;
	/* the value of each option given ("" for a flag), NULL if absent; the
	 * strings are the argv's */
	const char *opt[KG_OPT__COUNT];
	char cmd[64];			/* "revoke add": the command running, for messages */
};

struct kg_cmd {
	const char *name;
	/* a command: called with its operands only (options are in cli->opt) */
	int (*fn)(struct kg_cli *cli, int argc, char **argv);
	const struct kg_cmd *sub;	/* or an OBJECT: its commands */
	const char *args;		/* synopsis for the help */
	const char *help;		/* what it does, one line */
	const char *doc;		/* more, for `OBJECT COMMAND help`; or NULL */
	unsigned opts;			/* KG_OPTF() of the options it takes besides the global ones */
	int min_args, max_args;		/* operands it takes */
};

/* The OBJECTs, and the tables and commands they are made of. */
extern const struct kg_cmd kg_cli_objects[];
extern const struct kg_cmd kg_revoke_cmds[], kg_conn_cmds[], kg_pki_cmds[];
extern const struct kg_cmd kg_fleet_cmds[];
/* cli_fleet.c: after a local revoke/un-revoke, write the bucket of -c
 * CONFIG's [fleet] (nothing without one): 0 (or no fleet), 1 pending,
 * -EACCES refused by NATS, -errno; @msg gets the line for the operator. */
int kg_fleet_cli_publish(struct kg_cli *cli, const uint8_t fp[32], bool del, uint32_t reason,
			 const char *text, char *msg, size_t msglen) __attribute__((warn_unused_result));
/* The same in two halves, so that the bucket is written while the local
 * change is made: _start returns 0 with *@out NULL when there is no fleet,
 * else a job that _wait finishes, frees and answers like the above (a
 * configuration that does not load is answered there too); -ENOMEM. */
struct kg_fleet_job;
int kg_fleet_cli_publish_start(struct kg_cli *cli, const uint8_t fp[32], bool del,
			       uint32_t reason, const char *text, struct kg_fleet_job **out)
	__attribute__((warn_unused_result));
int kg_fleet_cli_publish_wait(struct kg_fleet_job *j, char *msg, size_t msglen)
	__attribute__((warn_unused_result));
int kg_cmd_run(struct kg_cli *cli, int argc, char **argv);
int kg_cmd_fingerprint(struct kg_cli *cli, int argc, char **argv);
int kg_cmd_stats(struct kg_cli *cli, int argc, char **argv);
int kg_cmd_features(struct kg_cli *cli, int argc, char **argv);

/*
 * The option pass, without side effects: fills @cli (prog and opt[]) from
 * argv[1..], permuting @argv so that the operands end up last, from
 * argv[*first] on. KG_EXIT_USAGE with the reason in @err, else 0.
 */
int kg_cli_parse(struct kg_cli *cli, int argc, char **argv, int *first, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The entry of @cmds that @word names exactly or is the only prefix of:
 * 0, -ENOENT (none) or -EAGAIN (ambiguous). */
int kg_cli_find(const struct kg_cmd *cmds, const char *word, const struct kg_cmd **hit)
	__attribute__((warn_unused_result));
/*
 * Run the command @argv names in @cmds (@object: the words before it, "" at
 * the top). The operands are checked against the table (count, options
 * that apply, a help word) before the command runs. Exit code.
 */
int kg_cli_dispatch(struct kg_cli *cli, const struct kg_cmd *cmds, const char *object,
		    int argc, char **argv);
int kg_cli_main(int argc, char **argv);

/* Print an error (JSON {"error": …, "exit": @code} on stdout with -j, else
 * "PROG: …" on stderr). Returns @code. */
int kg_cli_error(struct kg_cli *cli, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool kg_cli_is_help(const char *arg);
/* Print @o (then put it): KG_EXIT_OK, or KG_EXIT_RUNTIME if it could not
 * be written (a NULL @o is out of memory). */
int kg_cli_print_json(struct kg_cli *cli, struct json_object *o);
/*
 * Ask the gateway @req on its admin socket (-s SOCKET, else the
 * admin_socket of -c CONFIG, else the default) and parse the answer into
 * *@out, which the caller puts. An answer {"error": …} is an error.
 * KG_EXIT_OK, or the exit code after printing why.
 */
int kg_cli_admin(struct kg_cli *cli, const char *req, struct json_object **out);

/* ---- the operand checks of the commands that have some, without side
 * effects (tests/fuzz/fuzz_cli_args.c drives them). Each returns 0 or
 * KG_EXIT_USAGE with the message in @err. */
struct kg_rev_args {
	uint8_t fp[32];			/* the FINGERPRINT operand */
	bool have_fp;
	int code;			/* RFC 5280 reason of --reason, 0 without */
};
int kg_rev_add_args(const struct kg_cli *cli, int argc, char **argv, struct kg_rev_args *a,
		    char *err, size_t errlen) __attribute__((warn_unused_result));
int kg_rev_del_args(const struct kg_cli *cli, int argc, char **argv, struct kg_rev_args *a,
		    char *err, size_t errlen) __attribute__((warn_unused_result));
/* conn kill ID: an ID the gateway's request parser takes, not 0. */
int kg_conn_kill_args(const struct kg_cli *cli, int argc, char **argv, unsigned long long *id,
		      char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
