/*
 * Fixed-size objects of one worker thread, packed in blocks mapped apart
 * from the malloc heap.
 *
 * Why: a connection's long-lived objects (struct kg_conn, its CN, its rekey
 * secrets) used to come from malloc, in among each handshake's short-lived
 * OpenSSL memory. After the handshakes end, a page holding one live 432-byte
 * object among freed ones cannot be returned, so what an idle offloaded
 * connection cost depended on how the handshakes happened to interleave.
 * Here they sit side by side: N connections cost N objects and no more.
 *
 * Not thread-safe: one slab belongs to one worker. Objects are zeroed when
 * handed out. Under AddressSanitizer or valgrind the slab passes every
 * object to calloc() and free(), so the soaks still see a use after free.
 */
#ifndef KG_SLAB_H
#define KG_SLAB_H

#include <stdbool.h>
#include <stddef.h>

/* One block: 64 KiB, aligned to its size, so an object finds its block by
 * masking its address. */
#define KG_SLAB_BLOCK (64 * 1024)

struct kg_slab_block;

struct kg_slab {
	size_t size;			/* object size, rounded up to 16, at least 32 */
	unsigned per_block;
	struct kg_slab_block *partial;	/* blocks with a free object */
	struct kg_slab_block *spare;	/* one empty block kept mapped, or NULL */
	size_t live;			/* objects handed out */
	size_t blocks;			/* blocks mapped, the spare included */
	size_t page;			/* the page size trims work in; 0: whole blocks only */
	bool system;			/* objects from calloc()/free() (sanitizers) */
};

/* @size: 1 .. KG_SLAB_BLOCK / 4 bytes (larger objects belong to malloc;
 * smaller ones take 32). */
void kg_slab_init(struct kg_slab *s, size_t size);
/* A zeroed object, or NULL when no block can be mapped (ENOMEM). A block
 * hands out its lowest free object first, so what stays live gathers at
 * the start of its block and the pages after it can be given back. */
void *kg_slab_alloc(struct kg_slab *s);
/* Give back an object from kg_slab_alloc() on the same slab; NULL is a
 * no-op. A block left empty is unmapped, except one kept as a spare. */
void kg_slab_free(struct kg_slab *s, void *p);
/* Give the kernel back the pages in which every object is free, and the
 * spare block: what a burst of connections left behind. Returns the bytes
 * advised away or unmapped, resident or not. */
size_t kg_slab_trim(struct kg_slab *s);
/* Unmap the slab's blocks. Call it with every object given back: a block
 * still full of objects is on no list, stays mapped, and those objects show
 * up in valgrind's leak report. */
void kg_slab_release(struct kg_slab *s);

#endif
