/* cmocka tests for what the front (userspace/front.c) takes itself and
 * what it hands to the full binary: its command line and -c CONFIG. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "front.h"
#include "kg_test.h"
#include "kg_revoke.h"

#define FP "e07599dff03e7ab7c4c62f1feab9ae667b2e2c9eab7869ed9ecacd5d56fa2099"

/* kg_front_args on a NULL-terminated list after "ktlsgw" */
static bool args(struct kg_front *f, ...)
{
	char *argv[32] = { "ktlsgw" };
	int argc = 1;
	va_list ap;

	va_start(ap, f);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	memset(f, 0, sizeof(*f));
	return kg_front_args(argc, argv, f);
}

static void test_front_takes(void **state)
{
	struct kg_front f;

	assert_true(args(&f, "revoke", "add", FP, "-c", "/etc/k.conf", NULL));
	assert_true(f.add);
	assert_string_equal(f.fp_text, FP);
	assert_string_equal(f.config, "/etc/k.conf");
	assert_null(f.reason);

	/* options anywhere, both long forms */
	assert_true(args(&f, "-c", "/a.conf", "revoke", "del", FP, NULL));
	assert_false(f.add);
	assert_string_equal(f.config, "/a.conf");
	assert_true(args(&f, "revoke", "--config=/b.conf", "add", "--reason=keyCompromise: lost", FP,
			 "--state-dir", "/s", "--pin-root=/p", NULL));
	assert_string_equal(f.config, "/b.conf");
	assert_string_equal(f.reason, "keyCompromise: lost");
	assert_string_equal(f.state_dir, "/s");
	assert_string_equal(f.pin_root, "/p");
	/* after "--" everything is an operand; a value is taken whatever it
	 * starts with, as getopt_long takes it */
	assert_true(args(&f, "revoke", "add", "--", "-x", NULL));
	assert_string_equal(f.fp_text, "-x");
	assert_true(args(&f, "revoke", "add", FP, "-c", "-x", NULL));
	assert_string_equal(f.config, "-x");
	assert_true(args(&f, "revoke", "add", "-", "--config=", NULL));
	assert_string_equal(f.fp_text, "-");
	assert_string_equal(f.config, "");
}

static void test_front_hands_over(void **state)
{
	struct kg_front f;

	assert_false(args(&f, NULL));
	assert_false(args(&f, "version", NULL));
	assert_false(args(&f, "revoke", "list", NULL));
	assert_false(args(&f, "revoke", "add", NULL));
	assert_false(args(&f, "revoke", "add", FP, "extra", NULL));
	assert_false(args(&f, "rev", "add", FP, NULL));			/* prefixes: cli.c's */
	assert_false(args(&f, "revoke", "add", FP, "--conf", "/a", NULL));	/* getopt's abbreviation */
	assert_false(args(&f, "revoke", "add", FP, "-c/a.conf", NULL));	/* attached value */
	assert_false(args(&f, "revoke", "add", FP, "-c", NULL));		/* no value */
	assert_false(args(&f, "revoke", "add", FP, "-c", "/a", "-c", "/b", NULL));
	assert_false(args(&f, "revoke", "add", FP, "-j", NULL));
	assert_false(args(&f, "revoke", "add", "--cert", "/x.pem", FP, NULL));
	assert_false(args(&f, "revoke", "add", FP, "--help", NULL));
	assert_false(args(&f, "revoke", "del", FP, "--reason", "x", NULL));	/* del takes none */
}

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kg-test-front-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return kg_test_rmdir(dir);
}

/* kg_front_paths with -c a file holding @text (NULL: no -c) */
static bool paths(struct kg_front *f, const char *text, const char *state_dir, const char *pin_root)
{
	static char path[128];
	FILE *out;

	memset(f, 0, sizeof(*f));
	if (text) {
		snprintf(path, sizeof(path), "%s/k.conf", dir);
		out = fopen(path, "w");
		assert_non_null(out);
		fputs(text, out);
		fclose(out);
		f->config = path;
	}
	f->state_dir = state_dir;
	f->pin_root = pin_root;
	return kg_front_paths(f);
}

static void test_front_paths(void **state)
{
	struct kg_front f;

	assert_true(paths(&f, NULL, NULL, NULL));
	assert_string_equal(f.state, KG_STATE_DIR_DEFAULT);
	assert_string_equal(f.pins, KG_PIN_ROOT_DEFAULT);
	assert_true(paths(&f, "[global]\nworkers = 2\nstate_dir = /var/s\nbpf_pin_root = /sys/fs/bpf/x\n"
			  "[listener edge]\nlisten = 127.0.0.1:443\nstate_dir = /not/this\n"
			  "[sni edge a.example]\ncert = /c.pem\n", NULL, NULL));
	assert_string_equal(f.state, "/var/s");
	assert_string_equal(f.pins, "/sys/fs/bpf/x");
	/* the options win over the file (kg_rev_open in cli_revoke.c does the same) */
	assert_true(paths(&f, "[global]\nstate_dir = /var/s\n", "/opt/s", "/sys/fs/bpf/y"));
	assert_string_equal(f.state, "/opt/s");
	assert_string_equal(f.pins, "/sys/fs/bpf/y");
}

static void test_front_paths_hand_over(void **state)
{
	struct kg_front f;

	/* a fleet's revocations also go to NATS: the full binary's job */
	assert_false(paths(&f, "[global]\nstate_dir = /s\n[fleet]\nservers = nats://n:4222\n", NULL, NULL));
	/* what config.c refuses: a misspelt section, a key outside one */
	assert_false(paths(&f, "[global]\n[Fleet]\nservers = nats://n:4222\n", NULL, NULL));
	assert_false(paths(&f, "[fleet ]\n", NULL, NULL));
	assert_false(paths(&f, "state_dir = /s\n[global]\n", NULL, NULL));
	assert_false(paths(&f, "[global]\nworker = 2\n", NULL, NULL));
	assert_false(paths(&f, "[global]\nstate_dir = relative/s\n", NULL, NULL));
	assert_false(paths(&f, "[global]\nstate_dir = /a\nstate_dir = /b\n", NULL, NULL));
	assert_false(paths(&f, "[global\n", NULL, NULL));
	f.config = "/nonexistent/k.conf";
	assert_false(kg_front_paths(&f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_front_takes),
		cmocka_unit_test(test_front_hands_over),
		cmocka_unit_test(test_front_paths),
		cmocka_unit_test(test_front_paths_hand_over),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
