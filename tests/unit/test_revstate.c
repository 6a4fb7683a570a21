/* cmocka tests for the durable revocation list: round trip, damaged input,
 * failed writes that must leave the previous file intact. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "revstate.h"

static char dir[256], path[300];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kg-test-revstate-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/revoked", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct kg_rev_entry entry(uint8_t seed, const char *text)
{
	struct kg_rev_entry e = { 0 };

	memset(e.fp, seed, sizeof(e.fp));
	e.fp[31] = (uint8_t)(seed ^ 0x5a);
	e.revoked_at = 1700000000ULL + seed;
	e.reason = seed % 6;
	e.flags = seed & 1;
	snprintf(e.text, sizeof(e.text), "%s", text);
	return e;
}

static void test_revstate_missing_file_is_empty(void **state)
{
	struct kg_revstate st = { 0 };
	char err[256];

	assert_int_equal(kg_revstate_load("/nonexistent/dir/revoked", &st, err, sizeof(err)), 0);
	assert_int_equal(st.n, 0);
}

static void test_revstate_round_trip(void **state)
{
	struct kg_revstate st = { 0 }, back = { 0 };
	struct kg_rev_entry a = entry(1, "keyCompromise: stolen laptop"),
			    b = entry(2, "multi\nline text"), c = entry(3, "");
	char err[256];
	size_t i;

	assert_int_equal(kg_revstate_put(&st, &a), 0);
	assert_int_equal(kg_revstate_put(&st, &b), 0);
	assert_int_equal(kg_revstate_put(&st, &c), 0);
	a.flags = 1;
	assert_int_equal(kg_revstate_put(&st, &a), 0);	/* update, not duplicate */
	assert_int_equal(st.n, 3);
	assert_int_equal(kg_revstate_save(path, &st), 0);
	assert_int_equal(kg_revstate_load(path, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 3);
	for (i = 0; i < 3; i++) {
		struct kg_rev_entry *e = kg_revstate_find(&back, st.e[i].fp);

		assert_non_null(e);
		assert_int_equal(e->revoked_at, st.e[i].revoked_at);
		assert_int_equal(e->reason, st.e[i].reason);
		assert_int_equal(e->flags, st.e[i].flags);
	}
	assert_string_equal(kg_revstate_find(&back, a.fp)->text, "keyCompromise: stolen laptop");
	assert_string_equal(kg_revstate_find(&back, b.fp)->text, "multi line text");
	assert_true(kg_revstate_del(&back, b.fp));
	assert_false(kg_revstate_del(&back, b.fp));
	assert_int_equal(back.n, 2);
	kg_revstate_release(&st);
	kg_revstate_release(&back);
}

static void test_revstate_damaged_line_named(void **state)
{
	struct kg_revstate st = { 0 };
	char err[512], want[400];
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "# comment\n%s 1 0 0 ok\nzz-not-hex 1 0 0\n",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	fclose(f);
	assert_int_equal(kg_revstate_load(path, &st, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: damaged", path);
	assert_non_null(strstr(err, want));
	kg_revstate_release(&st);
}

/* Read the whole of @p into @buf; returns its length. */
static size_t slurp(const char *p, char *buf, size_t len)
{
	FILE *f = fopen(p, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* A save that fails half-way through writing, next to the file it replaces:
 * the file-size limit (EFBIG, for root as for anyone) stops the new list at
 * 4 KiB while the old one is far smaller. The old file must be left byte for
 * byte, and no temporary file may remain in the directory. */
static void test_revstate_failed_save_keeps_old(void **state)
{
	struct kg_revstate st = { 0 }, big = { 0 }, back = { 0 };
	struct kg_rev_entry a = entry(7, "first");
	char before[8192], after[8192], err[256];
	struct rlimit old, lim;
	void (*old_xfsz)(int);
	struct dirent *de;
	unsigned i, n = 0;
	DIR *d;
	int rc;

	assert_int_equal(kg_revstate_put(&st, &a), 0);
	assert_int_equal(kg_revstate_save(path, &st), 0);
	assert_true(slurp(path, before, sizeof(before)) < 1024);
	for (i = 0; i < 200; i++) {
		struct kg_rev_entry e = entry((uint8_t)i, "a replacement list larger than the limit");

		e.fp[0] = (uint8_t)(i >> 8);
		e.fp[1] = (uint8_t)i;
		assert_int_equal(kg_revstate_put(&big, &e), 0);
	}

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	old_xfsz = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = kg_revstate_save(path, &big);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_xfsz);
	assert_int_equal(rc, -EFBIG);

	slurp(path, after, sizeof(after));
	assert_string_equal(after, before);
	assert_int_equal(kg_revstate_load(path, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 1);
	assert_non_null(kg_revstate_find(&back, a.fp));
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, 1);	/* only "revoked": no temporary file left behind */
	kg_revstate_release(&st);
	kg_revstate_release(&big);
	kg_revstate_release(&back);
}

/* Apply @e (or its removal) to @st and append it to @p, as the revoker does. */
static void change(const char *p, struct kg_revstate *st, const struct kg_rev_entry *e, bool removed)
{
	if (removed)
		assert_true(kg_revstate_del(st, e->fp));
	else
		assert_int_equal(kg_revstate_put(st, e), 0);
	assert_int_equal(kg_revstate_append(p, st, e, removed), 0);
}

static unsigned count_lines(const char *p)
{
	char buf[65536];
	size_t n = slurp(p, buf, sizeof(buf)), i;
	unsigned lines = 0;

	for (i = 0; i < n; i++)
		lines += buf[i] == '\n';
	return lines;
}

/* One change is one line: the first creates the file (with its header),
 * the next ones append; a later line replaces, "-HEX" removes. */
static void test_revstate_append_replays(void **state)
{
	struct kg_revstate st = { 0 }, back = { 0 };
	struct kg_rev_entry a = entry(11, "first"), b = entry(12, "second"), c = entry(13, "third");
	char p[320], err[256];

	snprintf(p, sizeof(p), "%s/append", dir);
	change(p, &st, &a, false);
	assert_int_equal(count_lines(p), 3);	/* two header lines and a */
	change(p, &st, &b, false);
	change(p, &st, &c, false);
	a.flags = 1;
	change(p, &st, &a, false);
	change(p, &st, &b, true);
	assert_int_equal(count_lines(p), 7);
	assert_int_equal(kg_revstate_load(p, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 2);
	assert_int_equal(back.records, 5);
	assert_false(back.torn);
	assert_null(kg_revstate_find(&back, b.fp));
	assert_int_equal(kg_revstate_find(&back, a.fp)->flags, 1);
	assert_string_equal(kg_revstate_find(&back, c.fp)->text, "third");
	assert_false(kg_revstate_bloated(&back));
	kg_revstate_release(&st);
	kg_revstate_release(&back);
}

/* A crash in the middle of an append leaves a line without its newline:
 * it was never acknowledged, so load leaves it out (no error), and the next
 * change rewrites the file whole rather than run into it. A complete last
 * line without a newline (an edit by hand) still counts. */
static void test_revstate_torn_last_line(void **state)
{
	struct kg_revstate st = { 0 }, back = { 0 };
	struct kg_rev_entry a = entry(21, "kept"), b = entry(22, "after the crash");
	char p[320], err[256], buf[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/torn", dir);
	change(p, &st, &a, false);
	f = fopen(p, "a");
	assert_non_null(f);
	fputs("2222222222222222222222222222", f);	/* half a fingerprint */
	fclose(f);
	assert_int_equal(kg_revstate_load(p, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 1);
	assert_true(back.torn);
	assert_true(kg_revstate_bloated(&back));
	change(p, &back, &b, false);
	slurp(p, buf, sizeof(buf));
	assert_null(strstr(buf, "2222222222222222222222222222\n"));
	assert_int_equal(buf[strlen(buf) - 1], '\n');
	kg_revstate_release(&back);
	assert_int_equal(kg_revstate_load(p, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 2);
	assert_false(back.torn);

	f = fopen(p, "a");
	assert_non_null(f);
	fputs("-", f);
	fclose(f);
	{
		char hex[KG_FP_HEX_LEN];

		kg_fp_format(a.fp, false, hex, sizeof(hex));
		f = fopen(p, "a");
		assert_non_null(f);
		fputs(hex, f);	/* a whole removal line, no newline */
		fclose(f);
	}
	kg_revstate_release(&back);
	assert_int_equal(kg_revstate_load(p, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 1);
	assert_null(kg_revstate_find(&back, a.fp));
	assert_false(back.torn);
	kg_revstate_release(&st);
	kg_revstate_release(&back);
}

/* An append that cannot be written whole (here the file-size limit) fails
 * and leaves the file byte for byte as it was. */
static void test_revstate_failed_append_keeps_old(void **state)
{
	struct kg_revstate st = { 0 };
	struct kg_rev_entry a = entry(31, "fits"), b = entry(32, "does not fit");
	char p[320], before[4096], after[4096];
	struct rlimit old, lim;
	void (*old_xfsz)(int);
	struct stat sb;
	int rc;

	snprintf(p, sizeof(p), "%s/short", dir);
	change(p, &st, &a, false);
	slurp(p, before, sizeof(before));
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 20;	/* room for 20 bytes of the line */
	old_xfsz = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(kg_revstate_put(&st, &b), 0);
	rc = kg_revstate_append(p, &st, &b, false);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_xfsz);
	assert_true(rc < 0);
	slurp(p, after, sizeof(after));
	assert_string_equal(after, before);
	kg_revstate_release(&st);
}

/* Superseded lines pile up (each revoke, cut mark and un-revoke is a line):
 * past the bound the list asks to be rewritten, and a rewrite keeps only
 * what is in force. */
static void test_revstate_bloated_rewrite(void **state)
{
	struct kg_revstate st = { 0 }, back = { 0 };
	struct kg_rev_entry a = entry(41, "churn");
	char p[320], err[256];
	unsigned i;

	snprintf(p, sizeof(p), "%s/bloat", dir);
	for (i = 0; i < 300; i++) {
		a.revoked_at = 1700000000ULL + i;
		change(p, &st, &a, i % 2);
	}
	assert_int_equal(kg_revstate_load(p, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 0);
	assert_true(kg_revstate_bloated(&back));
	assert_int_equal(kg_revstate_save(p, &back), 0);
	kg_revstate_release(&back);
	assert_int_equal(kg_revstate_load(p, &back, err, sizeof(err)), 0);
	assert_false(kg_revstate_bloated(&back));
	assert_int_equal(count_lines(p), 2);
	kg_revstate_release(&st);
	kg_revstate_release(&back);
}

static void test_revstate_reason_names(void **state)
{
	assert_int_equal(kg_reason_code("keyCompromise"), 1);
	assert_int_equal(kg_reason_code("KEYCOMPROMISE"), 1);
	assert_int_equal(kg_reason_code("superseded"), 4);
	assert_int_equal(kg_reason_code("unused"), -1);
	assert_int_equal(kg_reason_code("stolen"), -1);
	assert_string_equal(kg_reason_name(1), "keyCompromise");
	assert_string_equal(kg_reason_name(99), "unspecified");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revstate_missing_file_is_empty),
		cmocka_unit_test(test_revstate_round_trip),
		cmocka_unit_test(test_revstate_damaged_line_named),
		cmocka_unit_test(test_revstate_failed_save_keeps_old),
		cmocka_unit_test(test_revstate_append_replays),
		cmocka_unit_test(test_revstate_torn_last_line),
		cmocka_unit_test(test_revstate_failed_append_keeps_old),
		cmocka_unit_test(test_revstate_bloated_rewrite),
		cmocka_unit_test(test_revstate_reason_names),
	};

	return cmocka_run_group_tests_name("revstate", tests, setup, teardown);
}
