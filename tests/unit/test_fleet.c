/* cmocka tests for the [fleet] section (userspace/fleet_conf.c, through
 * kg_config_load too): defaults, the keys' checks, messages that name the
 * file and line. NATS itself is covered by tests/integration/test_fleet.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "fleet.h"

static int key(struct kg_fleet_conf *f, const char *name, const char *value, char *err)
{
	return kg_fleet_conf_key(f, name, value, err, 256);
}

static void test_fleet_defaults(void **state)
{
	struct kg_fleet_conf f = { .enabled = true };
	char err[256] = "", host[64] = "";

	assert_int_equal(key(&f, "servers", "tls://n1:4222,tls://n2:4222", err), 0);
	assert_int_equal(kg_fleet_conf_check(&f, err, sizeof(err)), 0);
	assert_string_equal(f.bucket, KG_FLEET_BUCKET_DEFAULT);
	assert_int_equal(f.replicas, 1);
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(f.node, host);
}

static void test_fleet_keys_rejected(void **state)
{
	struct kg_fleet_conf f = { .enabled = true };
	char err[256];

	assert_int_equal(key(&f, "replicas", "0", err), -EINVAL);
	assert_non_null(strstr(err, "1 to 5"));
	assert_int_equal(key(&f, "replicas", "6", err), -EINVAL);
	assert_int_equal(key(&f, "bucket", "a.b", err), -EINVAL);	/* a subject token */
	assert_int_equal(key(&f, "bucket", "", err), -EINVAL);
	assert_int_equal(key(&f, "node", "pop fra", err), -EINVAL);
	assert_int_equal(key(&f, "node", "pop-fra.07", err), 0);	/* '.' is fine in a node */
	assert_int_equal(key(&f, "tls_ca", "relative.pem", err), -EINVAL);
	assert_non_null(strstr(err, "absolute path"));
	assert_int_equal(key(&f, "server", "tls://x:4222", err), -EINVAL);
	assert_non_null(strstr(err, "valid keys: servers"));
}

static void test_fleet_check_needs_servers_and_pairs(void **state)
{
	struct kg_fleet_conf f = { .enabled = true };
	char err[256];

	assert_int_equal(kg_fleet_conf_check(&f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no 'servers'"));
	assert_int_equal(key(&f, "servers", "nats://127.0.0.1:4222", err), 0);
	assert_int_equal(key(&f, "tls_cert", "/etc/c.pem", err), 0);
	assert_int_equal(kg_fleet_conf_check(&f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tls_cert and tls_key"));
}

/* Write @text to a temporary configuration file; the caller unlinks it. */
static void conf_file(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "/tmp/kg-test-fleet-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_fleet_section_in_config(void **state)
{
	struct kg_config *cfg = NULL;
	char path[64], err[1024];

	conf_file(path, sizeof(path),
		  "[global]\nstate_dir = /tmp\n"
		  "[listener a]\nlisten = 127.0.0.1:0\ncert = /etc/hostname\nkey = /etc/hostname\n"
		  "client_ca = /etc/hostname\nbackend = 127.0.0.1:1\n"
		  "[fleet]\nservers = tls://127.0.0.1:4222\nbucket = revoked\nreplicas = 3\nnode = gw1\n");
	assert_int_equal(kg_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_true(cfg->fleet.enabled);
	assert_string_equal(cfg->fleet.bucket, "revoked");
	assert_int_equal(cfg->fleet.replicas, 3);
	assert_string_equal(cfg->fleet.node, "gw1");
	kg_config_free(cfg);
	unlink(path);
}

static void test_fleet_absent_changes_nothing(void **state)
{
	struct kg_config *cfg = NULL;
	char path[64], err[1024];

	conf_file(path, sizeof(path),
		  "[global]\nstate_dir = /tmp\n"
		  "[listener a]\nlisten = 127.0.0.1:0\ncert = /etc/hostname\nkey = /etc/hostname\n"
		  "client_ca = /etc/hostname\nbackend = 127.0.0.1:1\n");
	assert_int_equal(kg_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_false(cfg->fleet.enabled);
	kg_config_free(cfg);
	unlink(path);
}

static void test_fleet_errors_name_the_line(void **state)
{
	struct kg_config *cfg = NULL;
	char path[64], err[1024], want[128];

	conf_file(path, sizeof(path),
		  "[global]\nstate_dir = /tmp\n"
		  "[listener a]\nlisten = 127.0.0.1:0\ncert = /etc/hostname\nkey = /etc/hostname\n"
		  "client_ca = /etc/hostname\nbackend = 127.0.0.1:1\n"
		  "[fleet]\nservers = tls://127.0.0.1:4222\nreplicas = 9\n");
	assert_int_not_equal(kg_config_load(path, &cfg, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s:11:", path);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "replicas"));
	unlink(path);

	conf_file(path, sizeof(path),
		  "[global]\nstate_dir = /tmp\n"
		  "[listener a]\nlisten = 127.0.0.1:0\ncert = /etc/hostname\nkey = /etc/hostname\n"
		  "client_ca = /etc/hostname\nbackend = 127.0.0.1:1\n"
		  "[fleet]\nbucket = b\n[fleet]\nservers = tls://127.0.0.1:4222\n");
	assert_int_not_equal(kg_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "defined twice"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet_defaults),
		cmocka_unit_test(test_fleet_keys_rejected),
		cmocka_unit_test(test_fleet_check_needs_servers_and_pairs),
		cmocka_unit_test(test_fleet_section_in_config),
		cmocka_unit_test(test_fleet_absent_changes_nothing),
		cmocka_unit_test(test_fleet_errors_name_the_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
