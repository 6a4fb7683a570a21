/* cmocka tests for the worker's slab (slab.c): objects come zeroed and
 * packed, N objects touch about N objects' worth of pages whatever came
 * before, freed objects are reused before a block is added, and emptied
 * blocks go back to the kernel but one; a trim leaves only the live
 * objects' pages resident and every live byte intact. And the connection's CN: short ones
 * in the slab, long ones from malloc, both released the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "conn.h"
#include "loop.h"
#include "slab.h"

#define SZ 600	/* about struct kg_conn */

static void *block_of(void *p)
{
	return (void *)((uintptr_t)p & ~(uintptr_t)(KG_SLAB_BLOCK - 1));
}

/* Resident bytes of the distinct blocks holding objs[0..n). */
static size_t resident(void **objs, size_t n)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char vec[KG_SLAB_BLOCK / 4096];
	void *seen[64];
	size_t nseen = 0, bytes = 0;

	for (size_t i = 0; i < n; i++) {
		void *b = block_of(objs[i]);
		size_t j;

		for (j = 0; j < nseen && seen[j] != b; j++)
			;
		if (j < nseen)
			continue;
		assert_true(nseen < 64);
		seen[nseen++] = b;
		assert_int_equal(mincore(b, KG_SLAB_BLOCK, vec), 0);
		for (size_t k = 0; k < (size_t)(KG_SLAB_BLOCK / pg); k++)
			bytes += (vec[k] & 1) ? (size_t)pg : 0;
	}
	return bytes;
}

static void test_slab_objects_zeroed_aligned_distinct(void **state)
{
	struct kg_slab s;
	unsigned char *a, *b;

	kg_slab_init(&s, SZ);
	assert_int_equal(s.size % 16, 0);
	assert_true(s.size >= SZ);
	a = kg_slab_alloc(&s);
	b = kg_slab_alloc(&s);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a != b);
	assert_int_equal((uintptr_t)a % 16, 0);
	for (size_t i = 0; i < SZ; i++)
		assert_int_equal(a[i] | b[i], 0);
	memset(a, 0xa5, SZ);
	kg_slab_free(&s, a);
	a = kg_slab_alloc(&s);	/* the same object again, zeroed again */
	for (size_t i = 0; i < SZ; i++)
		assert_int_equal(a[i], 0);
	assert_int_equal(s.live, 2);
	kg_slab_free(&s, a);
	kg_slab_free(&s, b);
	kg_slab_free(&s, NULL);
	assert_int_equal(s.live, 0);
	kg_slab_release(&s);
}

/* What the idle-memory figure depends on: 300 objects cost about 300
 * objects of memory, even after a burst of 2,000 came and went. */
static void test_slab_objects_packed_after_a_burst(void **state)
{
	enum { BURST = 2000, HELD = 300 };
	static void *objs[BURST];
	struct kg_slab s;
	size_t held_blocks, res;

	kg_slab_init(&s, SZ);
	for (size_t i = 0; i < BURST; i++) {
		objs[i] = kg_slab_alloc(&s);
		assert_non_null(objs[i]);
		memset(objs[i], 1, SZ);	/* touch it, as a connection would */
	}
	assert_int_equal(s.blocks, (BURST + s.per_block - 1) / s.per_block);
	for (size_t i = 0; i < BURST; i++)
		kg_slab_free(&s, objs[i]);
	/* every block emptied: all gone but the spare */
	assert_int_equal(s.blocks, 1);
	for (size_t i = 0; i < HELD; i++)
		assert_non_null(objs[i] = kg_slab_alloc(&s));
	held_blocks = (HELD + s.per_block - 1) / s.per_block;
	assert_int_equal(s.blocks, held_blocks);
	res = resident(objs, HELD);
	/* the objects, plus at most one partly used page per block (its
	 * header and the page its last object ends in) */
	assert_true(res <= (size_t)HELD * s.size + held_blocks * 2 * 4096);
	for (size_t i = 0; i < HELD; i++)
		kg_slab_free(&s, objs[i]);
	kg_slab_release(&s);
}

/* Within a block the lowest free object goes first: after frees, the next
 * objects fill the lowest holes, in address order. */
static void test_slab_lowest_free_first(void **state)
{
	enum { N = 50 };
	char *objs[N];
	struct kg_slab s;

	kg_slab_init(&s, SZ);
	for (size_t i = 0; i < N; i++) {
		assert_non_null(objs[i] = kg_slab_alloc(&s));
		if (i)
			assert_ptr_equal(objs[i], objs[i - 1] + s.size);
	}
	kg_slab_free(&s, objs[30]);
	kg_slab_free(&s, objs[7]);
	kg_slab_free(&s, objs[19]);
	assert_ptr_equal(kg_slab_alloc(&s), objs[7]);
	assert_ptr_equal(kg_slab_alloc(&s), objs[19]);
	assert_ptr_equal(kg_slab_alloc(&s), objs[30]);
	assert_ptr_equal(kg_slab_alloc(&s), objs[N - 1] + s.size);
	for (size_t i = 0; i < N; i++)
		kg_slab_free(&s, objs[i]);
	kg_slab_free(&s, objs[N - 1] + s.size);
	assert_int_equal(s.live, 0);
	kg_slab_release(&s);
}

/* Freed objects are reused before any block is added, wherever they are. */
static void test_slab_reuses_before_growing(void **state)
{
	enum { N = 1000 };
	static void *objs[N];
	struct kg_slab s;
	size_t blocks;

	kg_slab_init(&s, 144);
	for (size_t i = 0; i < N; i++)
		assert_non_null(objs[i] = kg_slab_alloc(&s));
	blocks = s.blocks;
	for (size_t i = 0; i < N; i += 2)
		kg_slab_free(&s, objs[i]);
	for (size_t i = 0; i < N; i += 2)
		assert_non_null(objs[i] = kg_slab_alloc(&s));
	assert_int_equal(s.blocks, blocks);
	assert_int_equal(s.live, N);
	for (size_t i = 0; i < N; i++)
		kg_slab_free(&s, objs[i]);
	assert_int_equal(s.live, 0);
	assert_int_equal(s.blocks, 1);
	kg_slab_release(&s);
	assert_int_equal(s.blocks, 0);
}

/* After a burst, what stays live gathers at the front of the blocks (the
 * lowest free object goes first) and a trim gives back every page with no
 * live object on it: the live objects' pages are all that stay resident. */
static void test_slab_trim_keeps_only_live_pages(void **state)
{
	enum { BURST = 2000 };
	static void *objs[BURST];
	void *keep[64];
	size_t nkeep = 0, blocks, res;
	struct kg_slab s;

	kg_slab_init(&s, SZ);
	for (size_t i = 0; i < BURST; i++) {
		assert_non_null(objs[i] = kg_slab_alloc(&s));
		memset(objs[i], 1, SZ);
	}
	/* keep every 40th: 50 objects spread over all the blocks */
	for (size_t i = 0; i < BURST; i++)
		if (i % 40 == 0)
			keep[nkeep++] = objs[i];
		else
			kg_slab_free(&s, objs[i]);
	blocks = s.blocks;
	assert_true(kg_slab_trim(&s) > 0);
	/* what was kept is intact, every byte (a trim of a page with a live
	 * object on it, even one that only ends there, would zero it) */
	for (size_t k = 0; k < nkeep; k++)
		for (size_t b = 0; b < SZ; b++)
			assert_int_equal(((unsigned char *)keep[k])[b], 1);
	res = resident(keep, nkeep);
	/* each live object spans at most 2 pages, each block keeps its header
	 * page */
	assert_true(res <= nkeep * 2 * 4096 + blocks * 4096);
	assert_true(res < blocks * (size_t)KG_SLAB_BLOCK / 4);
	/* the freed objects are handed out again, lowest first, zeroed */
	for (size_t i = 0; i < BURST; i++)
		if (i % 40) {
			unsigned char *p = kg_slab_alloc(&s);

			assert_non_null(p);
			for (size_t k = 0; k < SZ; k++)
				assert_int_equal(p[k], 0);
			objs[i] = p;
		}
	assert_int_equal(s.blocks, blocks);
	for (size_t i = 0; i < BURST; i++)
		kg_slab_free(&s, objs[i]);
	assert_int_equal(s.live, 0);
	kg_slab_release(&s);
}

/* A CN shorter than KG_CN_SLAB_SMALL sits in the worker's small slab, one
 * shorter than KG_CN_SLAB in its larger one, a longer one (up to
 * KG_CN_MAX) comes from malloc, on both sides of each boundary; each
 * is kept whole, and kg_conn_drop_cn() gives it back to where it came from
 * (a slab object freed with free(), or the reverse, would crash here or
 * leave the slab's count wrong). */
static void test_slab_conn_cn_short_and_long(void **state)
{
	static const size_t lens[] = { 1, 5, KG_CN_SLAB_SMALL - 1, KG_CN_SLAB_SMALL,
				       KG_CN_SLAB - 1, KG_CN_SLAB, KG_CN_MAX };
	struct kg_worker w;
	char cn[KG_CN_MAX + 1];

	memset(&w, 0, sizeof(w));
	kg_slab_init(&w.cn_mem[0], KG_CN_SLAB_SMALL);
	kg_slab_init(&w.cn_mem[1], KG_CN_SLAB);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct kg_conn c = { .cfd = -1, .bfd = -1 };
		int class = lens[i] < KG_CN_SLAB_SMALL ? 1 : lens[i] < KG_CN_SLAB ? 2 : 0;

		memset(cn, 'a' + (int)i, lens[i]);
		cn[lens[i]] = '\0';
		assert_int_equal(kg_conn_set_cn(&w, &c, cn), 0);
		assert_string_equal(kg_conn_cn(&c), cn);
		assert_int_equal(c.cn_class, class);
		assert_int_equal(w.cn_mem[0].live, class == 1);
		assert_int_equal(w.cn_mem[1].live, class == 2);
		kg_conn_drop_cn(&w, &c);
		assert_null(c.cn);
		assert_int_equal(w.cn_mem[0].live + w.cn_mem[1].live, 0);
		assert_string_equal(kg_conn_cn(&c), "");
	}
	kg_slab_release(&w.cn_mem[0]);
	kg_slab_release(&w.cn_mem[1]);
}

/* 32-byte objects (short CNs): more than a block holds, so every word of
 * the bitmap is used; each is handed out once, freed in a scattered order
 * and handed out again before a new block is mapped. */
static void test_slab_small_objects_fill_the_bitmap(void **state)
{
	struct kg_slab s;
	size_t n, blocks;
	void **objs;

	(void)state;
	kg_slab_init(&s, KG_CN_SLAB_SMALL);
	assert_true(s.per_block > 1024);
	n = s.per_block + 1;
	assert_non_null(objs = calloc(n, sizeof(*objs)));
	for (size_t i = 0; i < n; i++) {
		assert_non_null(objs[i] = kg_slab_alloc(&s));
		memset(objs[i], 0xa5, KG_CN_SLAB_SMALL);
	}
	assert_int_equal(s.blocks, 2);
	/* no two overlap: each still holds its own index */
	for (size_t i = 0; i < n; i++)
		snprintf(objs[i], KG_CN_SLAB_SMALL, "%zu", i);
	for (size_t i = 0; i < n; i++) {
		char want[KG_CN_SLAB_SMALL];

		snprintf(want, sizeof(want), "%zu", i);
		assert_string_equal(objs[i], want);
	}
	/* free every 7th, from the end of the first block too */
	for (size_t i = 0; i < n; i += 7)
		kg_slab_free(&s, objs[i]);
	blocks = s.blocks;
	for (size_t i = 0; i < n; i += 7)
		assert_non_null(objs[i] = kg_slab_alloc(&s));
	assert_int_equal(s.blocks, blocks);
	for (size_t i = 0; i < n; i++)
		kg_slab_free(&s, objs[i]);
	assert_int_equal(s.live, 0);
	kg_slab_trim(&s);
	kg_slab_release(&s);
	free(objs);
}

/* Under AddressSanitizer or valgrind the slab hands out calloc()'s memory
 * (slab.c): the layout cases do not apply there. */
static int skip_if_sanitized(void **state)
{
	struct kg_slab s;

	kg_slab_init(&s, SZ);
	if (s.system)
		skip();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slab_objects_zeroed_aligned_distinct),
		cmocka_unit_test_setup(test_slab_objects_packed_after_a_burst, skip_if_sanitized),
		cmocka_unit_test_setup(test_slab_lowest_free_first, skip_if_sanitized),
		cmocka_unit_test_setup(test_slab_reuses_before_growing, skip_if_sanitized),
		cmocka_unit_test_setup(test_slab_trim_keeps_only_live_pages, skip_if_sanitized),
		cmocka_unit_test(test_slab_conn_cn_short_and_long),
		cmocka_unit_test_setup(test_slab_small_objects_fill_the_bitmap, skip_if_sanitized),
	};

	return cmocka_run_group_tests_name("slab", tests, NULL, NULL);
}
