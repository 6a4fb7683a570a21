/* cmocka tests for connection IDs: each names its worker and its table slot
 * whatever the number of connections before it, and no two live or past
 * connections share one (the slot's generation moves on every reuse). And
 * for the text a connection keeps off its struct: none until it is said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "conn.h"
#include "loop.h"
#include "stats.h"

static void test_conn_id_names_worker_and_slot(void **state)
{
	static const unsigned workers[] = { 0, 1, 255, 256, 300, KG_WORKERS_MAX - 1 };
	static const uint32_t slots[] = { 0, 1, 255, 65536, KG_ID_MAX_SLOTS - 1 };
	static const uint32_t gens[] = { 1, 2, 1000000001u, 0xffffffffu };

	for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++)
		for (size_t s = 0; s < sizeof(slots) / sizeof(slots[0]); s++)
			for (size_t g = 0; g < sizeof(gens) / sizeof(gens[0]); g++) {
				uint64_t id = kg_conn_id_make(workers[w], slots[s], gens[g]);

				assert_int_equal(kg_conn_id_worker(id), workers[w]);
				assert_int_equal(kg_conn_id_slot(id), slots[s]);
				assert_true(id != 0);
			}
}

/* The old scheme, (worker + 1) * 1e9 + sequence, sent a kill for the
 * billionth connection of worker 0 to worker 1. A slot reused a billion
 * times must still name worker 0, with an ID no earlier use had. */
static void test_conn_id_survives_a_billion_connections(void **state)
{
	uint64_t first = kg_conn_id_make(0, 7, 1);
	uint64_t late = kg_conn_id_make(0, 7, 1000000001u);

	assert_int_equal(kg_conn_id_worker(late), 0);
	assert_int_equal(kg_conn_id_slot(late), 7);
	assert_true(late != first);
	assert_true(kg_conn_id_make(0, 7, 2) != first);
	assert_true(kg_conn_id_make(1, 7, 1) != first);
	assert_true(kg_conn_id_make(0, 8, 1) != first);
}

/* An idle connection holds no detail buffer; readers see "" for it and for
 * a missing CN, and a cleared detail reads "" again. */
static void test_conn_text_only_when_said(void **state)
{
	struct kg_conn c = { .cfd = -1, .bfd = -1 };
	char *buf;

	assert_null(c.detail);
	assert_string_equal(kg_conn_detail(&c), "");
	assert_string_equal(kg_conn_cn(&c), "");
	kg_conn_detail_clear(&c);
	assert_null(c.detail);
	buf = kg_conn_detail_buf(&c);
	assert_non_null(buf);
	assert_string_equal(kg_conn_detail(&c), "");
	snprintf(kg_conn_detail_buf(&c), KG_DETAIL_LEN, "backend %s refused", "10.0.0.1:80");
	assert_ptr_equal(kg_conn_detail_buf(&c), buf);	/* one buffer, kept */
	assert_string_equal(kg_conn_detail(&c), "backend 10.0.0.1:80 refused");
	memset(buf, 'x', KG_DETAIL_LEN - 1);		/* its whole length is writable */
	buf[KG_DETAIL_LEN - 1] = '\0';
	kg_conn_detail_clear(&c);
	assert_string_equal(kg_conn_detail(&c), "");
	kg_conn_detail_free(&c);
	assert_null(c.detail);
	kg_conn_detail_free(&c);			/* twice is harmless */
}

/* A connection with an origin leg names both legs' paths: a static string
 * for every pair, spelt as the two names would be (-1: plain). */
static void test_conn_path_pair_names_both_legs(void **state)
{
	char want[64];

	(void)state;
	for (int cl = -1; cl < KG_PATH__COUNT; cl++)
		for (int ol = -1; ol < KG_PATH__COUNT; ol++) {
			snprintf(want, sizeof(want), "client-%s,origin-%s",
				 cl < 0 ? "plain" : kg_path_name((enum kg_path_kind)cl),
				 ol < 0 ? "plain" : kg_path_name((enum kg_path_kind)ol));
			assert_non_null(kg_path_pair(cl, ol));
			assert_string_equal(kg_path_pair(cl, ol), want);
		}
	assert_string_equal(kg_path_pair(KG_PATH__COUNT, 0), "?");
	assert_string_equal(kg_path_pair(0, -2), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conn_id_names_worker_and_slot),
		cmocka_unit_test(test_conn_id_survives_a_billion_connections),
		cmocka_unit_test(test_conn_text_only_when_said),
		cmocka_unit_test(test_conn_path_pair_names_both_legs),
	};

	return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
