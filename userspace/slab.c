/*
 * Fixed-size objects in 64 KiB blocks of their own (slab.h says why). Each
 * block starts with its header, whose bitmap says which objects are handed
 * out; objects follow. The lowest free object goes first, so the live ones
 * gather at the front of a block and kg_slab_trim() can give back the pages
 * behind them.
 *
 * Under AddressSanitizer, ThreadSanitizer or valgrind every object comes from calloc() and
 * goes back with free(): their allocators hold freed memory back before
 * reusing it, so a stale pointer is caught, where a slab hands the same
 * object out again at once and would hide it.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "slab.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define KG_SLAB_MIN 32
/* 32-byte objects at most: (64 KiB - header) / 32 < 2048 */
#define KG_SLAB_WORDS 32

struct kg_slab_block {
	struct kg_slab_block *next, *prev;	/* the slab's partial list */
	unsigned used;				/* objects handed out */
	bool partial;				/* on the partial list */
	uint64_t busy[KG_SLAB_WORDS];		/* bit set: handed out (or past the end) */
};

#define KG_SLAB_HDR ((sizeof(struct kg_slab_block) + 15) & ~(size_t)15)

static bool kg_slab_sanitized(void)
{
	/* ThreadSanitizer too: it shadows every mapping, and a slab's blocks
	 * coming and going under a reload soak grew its RSS by 6 MB */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return true;
#else
	return RUNNING_ON_VALGRIND;
#endif
}

void kg_slab_init(struct kg_slab *s, size_t size)
{
	long pg = sysconf(_SC_PAGESIZE);

	assert(size > 0 && size <= KG_SLAB_BLOCK / 4);
	memset(s, 0, sizeof(*s));
	s->size = size < KG_SLAB_MIN ? KG_SLAB_MIN : (size + 15) & ~(size_t)15;
	s->per_block = (unsigned)((KG_SLAB_BLOCK - KG_SLAB_HDR) / s->size);
	assert(s->per_block <= KG_SLAB_WORDS * 64);
	/* pages of a quarter block or less can be given back one by one;
	 * with larger ones (64 KiB on some arm64 kernels) only whole blocks */
	s->page = pg > 0 && (size_t)pg <= KG_SLAB_BLOCK / 4 ? (size_t)pg : 0;
	s->system = kg_slab_sanitized();
}

static char *kg_slab_objs(struct kg_slab_block *b)
{
	return (char *)b + KG_SLAB_HDR;
}

static struct kg_slab_block *kg_slab_block_of(void *p)
{
	return (struct kg_slab_block *)((uintptr_t)p & ~(uintptr_t)(KG_SLAB_BLOCK - 1));
}

/* A block aligned to KG_SLAB_BLOCK: map twice the size, unmap the slack.
 * The bits past the last object are set, so they are never handed out. */
static struct kg_slab_block *kg_slab_map(const struct kg_slab *s)
{
	char *raw = mmap(NULL, 2 * KG_SLAB_BLOCK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start;
	struct kg_slab_block *b;

	if (raw == MAP_FAILED)
		return NULL;
	start = ((uintptr_t)raw + KG_SLAB_BLOCK - 1) & ~(uintptr_t)(KG_SLAB_BLOCK - 1);
	if (start > (uintptr_t)raw)
		munmap(raw, start - (uintptr_t)raw);
	munmap((char *)start + KG_SLAB_BLOCK, (uintptr_t)raw + KG_SLAB_BLOCK - start);
	b = (struct kg_slab_block *)start;
	for (unsigned i = s->per_block; i < KG_SLAB_WORDS * 64; i++)
		b->busy[i / 64] |= 1ULL << (i % 64);
	return b;
}

static void kg_slab_link(struct kg_slab *s, struct kg_slab_block *b)
{
	b->prev = NULL;
	b->next = s->partial;
	if (s->partial)
		s->partial->prev = b;
	s->partial = b;
	b->partial = true;
}

static void kg_slab_unlink(struct kg_slab *s, struct kg_slab_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		s->partial = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
	b->partial = false;
}

void *kg_slab_alloc(struct kg_slab *s)
{
	struct kg_slab_block *b = s->partial;
	unsigned w, i;
	char *p;

	if (s->system) {
		p = calloc(1, s->size);
		s->live += p != NULL;
		return p;
	}
	if (!b) {
		if (s->spare) {
			b = s->spare;
			s->spare = NULL;
		} else {
			b = kg_slab_map(s);
			if (!b)
				return NULL;
			s->blocks++;
		}
		kg_slab_link(s, b);
	}
	for (w = 0; b->busy[w] == ~0ULL; w++)
		;	/* a partial block has a clear bit */
	i = w * 64 + (unsigned)__builtin_ctzll(~b->busy[w]);
	b->busy[w] |= 1ULL << (i % 64);
	if (++b->used == s->per_block)
		kg_slab_unlink(s, b);
	s->live++;
	p = kg_slab_objs(b) + (size_t)i * s->size;
	memset(p, 0, s->size);
	return p;
}

void kg_slab_free(struct kg_slab *s, void *p)
{
	struct kg_slab_block *b;
	size_t i;

	if (!p)
		return;
	s->live--;
	if (s->system) {
		free(p);
		return;
	}
	b = kg_slab_block_of(p);
	i = (size_t)((char *)p - kg_slab_objs(b)) / s->size;
	assert(b->busy[i / 64] & (1ULL << (i % 64)));
	b->busy[i / 64] &= ~(1ULL << (i % 64));
	if (!b->partial)
		kg_slab_link(s, b);
	if (--b->used)
		return;
	/* empty: keep one block for the next connection, unmap the rest */
	kg_slab_unlink(s, b);
	if (!s->spare) {
		s->spare = b;
		return;
	}
	munmap(b, KG_SLAB_BLOCK);
	s->blocks--;
}

/* Is any object in [first, last] handed out? */
static bool kg_slab_any_busy(const struct kg_slab_block *b, size_t first, size_t last)
{
	for (size_t i = first; i <= last; i++)
		if (b->busy[i / 64] & (1ULL << (i % 64)))
			return true;
	return false;
}

/* The pages of @b after its header page on which no object is live, in
 * runs, to the kernel. */
static size_t kg_slab_trim_block(const struct kg_slab *s, struct kg_slab_block *b)
{
	uintptr_t base = (uintptr_t)b, objs = (uintptr_t)kg_slab_objs(b);
	uintptr_t end = objs + (size_t)s->per_block * s->size;
	size_t given = 0, run = 0;

	for (uintptr_t pg = base + s->page; pg <= base + KG_SLAB_BLOCK; pg += s->page) {
		bool free_pg = false;

		if (pg < base + KG_SLAB_BLOCK) {
			uintptr_t last = pg + s->page - 1 < end ? pg + s->page - 1 : end - 1;

			free_pg = pg >= end ||
				  !kg_slab_any_busy(b, (pg - objs) / s->size, (last - objs) / s->size);
		}
		if (free_pg) {
			run++;
			continue;
		}
		if (run && madvise((void *)(pg - run * s->page), run * s->page, MADV_DONTNEED) == 0)
			given += run * s->page;
		run = 0;
	}
	return given;
}

size_t kg_slab_trim(struct kg_slab *s)
{
	size_t given = 0;

	if (s->spare) {
		munmap(s->spare, KG_SLAB_BLOCK);
		s->spare = NULL;
		s->blocks--;
		given += KG_SLAB_BLOCK;
	}
	for (struct kg_slab_block *b = s->partial; b && s->page; b = b->next)
		given += kg_slab_trim_block(s, b);
	return given;
}

void kg_slab_release(struct kg_slab *s)
{
	while (s->partial) {
		struct kg_slab_block *b = s->partial;

		kg_slab_unlink(s, b);
		munmap(b, KG_SLAB_BLOCK);
	}
	if (s->spare)
		munmap(s->spare, KG_SLAB_BLOCK);
	s->spare = NULL;
	s->blocks = 0;
	s->live = 0;
}
