/* `ktlsgw stats`: the gateway's counters, through its admin socket. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

/* "key  value" lines, nested objects as "key.sub", keys in one column. */
static void kg_stats_print(struct json_object *o, const char *prefix, int width)
{
	char key[128];

	json_object_object_foreach(o, k, v) {
		snprintf(key, sizeof(key), "%s%s", prefix, k);
		if (json_object_is_type(v, json_type_object)) {
			strncat(key, ".", sizeof(key) - strlen(key) - 1);
			kg_stats_print(v, key, width);
		} else {
			printf("%-*s  %s\n", width, key, json_object_get_string(v));
		}
	}
}

/* The widest key kg_stats_print will print. */
static int kg_stats_width(struct json_object *o, int prefix)
{
	int w = 0, n;

	json_object_object_foreach(o, k, v) {
		n = prefix + (int)strlen(k);
		if (json_object_is_type(v, json_type_object))
			n = kg_stats_width(v, n + 1);
		if (n > w)
			w = n;
	}
	return w;
}

int kg_cmd_stats(struct kg_cli *cli, int argc, char **argv)
{
	struct json_object *o;
	int rc = kg_cli_admin(cli, "stats", &o);

	if (rc)
		return rc;
	if (cli->json)
		return kg_cli_print_json(cli, o);
	if (json_object_is_type(o, json_type_object))
		kg_stats_print(o, "", kg_stats_width(o, 0));
	json_object_put(o);
	return KG_EXIT_OK;
}
