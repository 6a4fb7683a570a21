/*
 * Inside the configuration reader, shared by config.c (the keys, one at a
 * time) and config_check.c (what needs the whole file). Nothing else
 * includes this.
 */
#ifndef KG_CONFIG_INT_H
#define KG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* Parser state. */
struct kg_parse {
	FILE *f;
	const char *path;
	unsigned lineno;
	struct kg_config *cfg;
	struct kg_listener_conf *cur;	/* NULL while in [global] */
	bool in_global;
	bool in_fleet;
	bool cur_sni;			/* cur is an [sni ...] group (in sni[]) */
	struct kg_listener_conf *sni;	/* sni groups until attached to listeners */
	size_t n_sni;
	char *err;
	size_t errlen;
	int rc;
};

/* Record "FILE:LINE: message" as the error unless one is recorded already
 * (the first is the one to fix). Returns 0, so that a key handler can
 * `return kg_cfg_fail(...)`. */
int kg_cfg_fail(struct kg_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* config_check.c: once the file is read. */
void kg_cfg_check(struct kg_parse *p);

#endif
