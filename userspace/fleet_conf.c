/* The [fleet] section's keys. Kept apart from fleet.c so that parsing a
 * configuration never needs the NATS library. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fleet.h"

static int kg_fleet_path(char *dst, size_t len, const char *name, const char *value, char *err,
			 size_t errlen)
{
	if (value[0] != '/' || strlen(value) >= len) {
		snprintf(err, errlen, "%s = %s: give an absolute path (up to %zu characters)", name,
			 value, len - 1);
		return -EINVAL;
	}
	snprintf(dst, len, "%s", value);
	return 0;
}

int kg_fleet_conf_key(struct kg_fleet_conf *f, const char *name, const char *value,
		      char *err, size_t errlen)
{
	unsigned long n;
	size_t i;

	if (!strcmp(name, "servers")) {
		if (!*value || strlen(value) >= sizeof(f->servers)) {
			snprintf(err, errlen, "servers = %s: give NATS URLs separated by commas, e.g. "
				 "tls://nats1:4222,tls://nats2:4222", value);
			return -EINVAL;
		}
		snprintf(f->servers, sizeof(f->servers), "%s", value);
	} else if (!strcmp(name, "bucket") || !strcmp(name, "node")) {
		char *dst = name[0] == 'b' ? f->bucket : f->node;

		/* a bucket name becomes a stream and subject name; a node name
		 * travels in every value: the same safe alphabet for both */
		for (i = 0; value[i]; i++)
			if (!((value[i] >= 'a' && value[i] <= 'z') || (value[i] >= 'A' && value[i] <= 'Z') ||
			      (value[i] >= '0' && value[i] <= '9') || value[i] == '-' || value[i] == '_' ||
			      (name[0] == 'n' && value[i] == '.')))
				break;
		if (!*value || value[i] || i >= sizeof(f->bucket)) {
			snprintf(err, errlen, "%s = %s: use up to %zu letters, digits, '-' or '_'%s", name,
				 value, sizeof(f->bucket) - 1, name[0] == 'n' ? " or '.'" : "");
			return -EINVAL;
		}
		snprintf(dst, sizeof(f->bucket), "%s", value);
	} else if (!strcmp(name, "replicas")) {
		if (kg_uint_parse(value, 5, &n) || n == 0) {
			snprintf(err, errlen, "replicas = %s: JetStream takes 1 to 5 (3 for a cluster "
				 "of 3)", value);
			return -EINVAL;
		}
		f->replicas = (int)n;
	} else if (!strcmp(name, "tls_ca")) {
		return kg_fleet_path(f->tls_ca, sizeof(f->tls_ca), name, value, err, errlen);
	} else if (!strcmp(name, "tls_cert")) {
		return kg_fleet_path(f->tls_cert, sizeof(f->tls_cert), name, value, err, errlen);
	} else if (!strcmp(name, "tls_key")) {
		return kg_fleet_path(f->tls_key, sizeof(f->tls_key), name, value, err, errlen);
	} else if (!strcmp(name, "creds")) {
		return kg_fleet_path(f->creds, sizeof(f->creds), name, value, err, errlen);
	} else {
		snprintf(err, errlen, "unknown key '%s' in [fleet]; valid keys: servers, bucket, "
			 "replicas, node, tls_ca, tls_cert, tls_key, creds", name);
		return -EINVAL;
	}
	return 0;
}

int kg_fleet_conf_check(struct kg_fleet_conf *f, char *err, size_t errlen)
{
	if (!f->enabled)
		return 0;
	if (!f->servers[0]) {
		snprintf(err, errlen, "[fleet] has no 'servers'; give the NATS URLs, e.g. servers = "
			 "tls://nats1:4222 (or remove the section to keep revocation local)");
		return -EINVAL;
	}
	if (!!f->tls_cert[0] != !!f->tls_key[0]) {
		snprintf(err, errlen, "[fleet] needs tls_cert and tls_key together");
		return -EINVAL;
	}
	if (!f->bucket[0])
		snprintf(f->bucket, sizeof(f->bucket), "%s", KG_FLEET_BUCKET_DEFAULT);
	if (!f->replicas)
		f->replicas = 1;
	if (!f->node[0] && gethostname(f->node, sizeof(f->node) - 1))
		snprintf(f->node, sizeof(f->node), "unknown");
	return 0;
}
