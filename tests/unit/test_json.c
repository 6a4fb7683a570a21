/* cmocka tests for the JSON writer and reader (userspace/json.c): exact
 * escapes for the characters a certificate subject may carry, invalid
 * UTF-8 repaired, and connection objects that survive a round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"

/* The serialised JSON string for @in, compared with @want. */
static void expect_str(const char *in, const char *want)
{
	struct json_object *s = kg_json_str(in);

	assert_non_null(s);
	assert_string_equal(kg_json_text(s), want);
	json_object_put(s);
}

static void test_json_quote_and_backslash(void **state)
{
	expect_str("a\"b", "\"a\\\"b\"");
	expect_str("a\\b", "\"a\\\\b\"");
	expect_str("\\\"", "\"\\\\\\\"\"");
	/* '/' stays as it is: paths in the output remain readable */
	expect_str("/run/ktlsgw/admin.sock", "\"/run/ktlsgw/admin.sock\"");
	expect_str(NULL, "\"\"");
}

static void test_json_newline_and_controls(void **state)
{
	expect_str("a\nb", "\"a\\nb\"");
	expect_str("\r\t", "\"\\r\\t\"");
	expect_str("\x01\x1b\x1f", "\"\\u0001\\u001b\\u001f\"");
	/* DEL is legal in a JSON string */
	expect_str("\x7f", "\"\x7f\"");
}

static void test_json_invalid_utf8_replaced(void **state)
{
	/* valid UTF-8 passes through: é, €, U+1F600 */
	expect_str("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	/* each bad byte becomes one U+FFFD */
	expect_str("a\xff" "b", "\"a\xef\xbf\xbd" "b\"");
	expect_str("\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"");		/* overlong NUL */
	expect_str("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");	/* surrogate */
	expect_str("\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"");		/* cut short */
	expect_str("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

static const struct kg_conn_info nasty = {
	.id = 18446744073709551615ULL, .worker = 3, .listener = "edge", .server_name = "",
	.client = "127.0.0.1:4242", .subject = "Ev\"il\\ CN\nline2\x01", .sha256 = "ab01",
	.tls = "1.3", .cipher = "TLS_AES_128_GCM_SHA256", .path = "splice",
	.state = "established", .bytes_in = 1, .bytes_out = 2, .age_ms = 3,
};

static void test_json_conn_round_trip(void **state)
{
	char buf[1024], err[128];
	struct json_object *o;
	struct kg_conn_info ci;
	int n = kg_json_conn_render(&nasty, buf, sizeof(buf));

	assert_true(n > 0 && (size_t)n == strlen(buf));
	/* field order is part of the interface (scripts grep it) */
	assert_non_null(strstr(buf, "{\"id\":18446744073709551615,\"worker\":3,\"listener\":\"edge\","
				    "\"server_name\":\"\",\"client\":\"127.0.0.1:4242\","
				    "\"subject\":\"Ev\\\"il\\\\ CN\\nline2\\u0001\""));
	o = kg_json_parse(buf, (size_t)n, err, sizeof(err));
	assert_non_null(o);
	assert_int_equal(kg_json_conn_read(o, &ci), 0);
	assert_true(ci.id == nasty.id);
	assert_int_equal(ci.worker, 3);
	assert_string_equal(ci.subject, nasty.subject);
	assert_string_equal(ci.client, nasty.client);
	assert_string_equal(ci.state, "established");
	assert_true(ci.bytes_in == 1 && ci.bytes_out == 2 && ci.age_ms == 3);
	json_object_put(o);
}

static void test_json_conn_render_too_small(void **state)
{
	char buf[40] = "x";

	assert_int_equal(kg_json_conn_render(&nasty, buf, sizeof(buf)), -ENOSPC);
	assert_string_equal(buf, "");
}

static void test_json_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1} x", "{\"a\":", "[1,]", "['a']", "{a:1}", "\"\xff\"", "", "[1] [2]",
	};
	char err[128];
	struct json_object *o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		o = kg_json_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (o)
			fail_msg("'%s' parsed", bad[i]);
		assert_true(err[0]);
	}
	/* a NUL inside the text is not white space */
	assert_null(kg_json_parse("[1]\0", 4, err, sizeof(err)));
	o = kg_json_parse("[1] \n", 5, err, sizeof(err));
	assert_non_null(o);
	json_object_put(o);
	o = kg_json_parse("42", 2, err, sizeof(err));
	assert_non_null(o);
	assert_int_equal(json_object_get_int(o), 42);
	json_object_put(o);
}

static void test_json_conn_read_needs_an_id(void **state)
{
	struct kg_conn_info ci;
	char err[128];
	struct json_object *o = kg_json_parse("{\"id\":\"7\"}", 10, err, sizeof(err));

	assert_non_null(o);
	assert_int_equal(kg_json_conn_read(o, &ci), -EINVAL);
	json_object_put(o);
	o = json_object_new_array();
	assert_int_equal(kg_json_conn_read(o, &ci), -EINVAL);
	json_object_put(o);
}

static void test_json_escape_cuts_whole_tokens(void **state)
{
	char out[8];

	kg_json_escape(out, sizeof(out), "a\"b\nc");
	assert_string_equal(out, "a\\\"b\\nc");
	/* "ab" then "\u0001" (6) does not fit in the 5 bytes left */
	kg_json_escape(out, sizeof(out), "ab\x01z");
	assert_string_equal(out, "ab");
	/* nor does the 3-byte U+FFFD after "abcde" */
	kg_json_escape(out, sizeof(out), "abcde\xff");
	assert_string_equal(out, "abcde");
	kg_json_escape(out, 1, "abc");
	assert_string_equal(out, "");
}

static void test_json_obj_builds_in_order(void **state)
{
	struct json_object *o = kg_json_obj("subio", "s", "a\"b", "u", (uint64_t)UINT64_MAX,
					    "b", true, "i", (int64_t)-3, "o", json_object_new_array());

	assert_non_null(o);
	assert_string_equal(kg_json_text(o), "{\"s\":\"a\\\"b\",\"u\":18446744073709551615,"
			    "\"b\":true,\"i\":-3,\"o\":[]}");
	json_object_put(o);
	/* an unknown type letter fails the whole object */
	assert_null(kg_json_obj("sx", "s", "v", "x", 1));
	/* a NULL member (out of memory upstream) fails it too */
	assert_null(kg_json_obj("os", "o", NULL, "s", "v"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_quote_and_backslash),
		cmocka_unit_test(test_json_newline_and_controls),
		cmocka_unit_test(test_json_invalid_utf8_replaced),
		cmocka_unit_test(test_json_conn_round_trip),
		cmocka_unit_test(test_json_conn_render_too_small),
		cmocka_unit_test(test_json_parse_rejects),
		cmocka_unit_test(test_json_conn_read_needs_an_id),
		cmocka_unit_test(test_json_escape_cuts_whole_tokens),
		cmocka_unit_test(test_json_obj_builds_in_order),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
