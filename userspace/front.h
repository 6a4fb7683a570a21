/*
 * What the front (front.c) takes from its command line and from -c CONFIG,
 * kept apart from its main() for the unit tests (tests/unit/test_front.c).
 * libc only.
 */
#ifndef KG_FRONT_H
#define KG_FRONT_H

#include <stdbool.h>

/* A `revoke add|del` the front may do itself; zeroed before kg_front_args. */
struct kg_front {
	bool add;
	const char *config, *state_dir, *pin_root, *reason, *fp_text;
	char state[256], pins[256];
};

/* The command line, as far as the front takes it: exactly
 * `revoke add|del FINGERPRINT` with -c/--config, --state-dir, --pin-root
 * and (add) --reason, each at most once, anywhere (as getopt_long would
 * take them, without its abbreviations). False: hand it over. */
bool kg_front_args(int argc, char **argv, struct kg_front *f);
/* f->state and f->pins: the defaults, then -c CONFIG's [global] state_dir
 * and bpf_pin_root, then --state-dir and --pin-root. False (hand it over)
 * for a configuration that cannot be read or has a syntax error, a [fleet]
 * section, a section name config.c does not know, a key outside any
 * section, a [global] key not in KG_GLOBAL_KEYS, a repeated, relative or
 * too long path. The rest of the file is not checked. */
bool kg_front_paths(struct kg_front *f);

#endif
