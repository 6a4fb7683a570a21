/* The command line: `ktlsgw [OPTIONS] OBJECT COMMAND [ARGS]`, bpftool style. */
#ifndef KG_CLI_H
#define KG_CLI_H

#include <stdbool.h>

#define KG_EXIT_OK 0
#define KG_EXIT_RUNTIME 1
#define KG_EXIT_USAGE 2

struct kg_cli {
	bool json;
	const char *prog;
};

struct kg_cmd {
	const char *name;
	int (*fn)(struct kg_cli *cli, int argc, char **argv);
	const char *help;	/* one line: arguments and what it does */
};

/* Run the command whose name @argv[0] is a unique prefix of. Exit code. */
int kg_cli_dispatch(struct kg_cli *cli, const struct kg_cmd *cmds, const char *object,
		    int argc, char **argv);
/* Print an error, as JSON {"error": …} in -j mode. Returns @code. */
int kg_cli_error(struct kg_cli *cli, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool kg_cli_is_help(const char *arg);
int kg_cli_main(int argc, char **argv);

#endif
