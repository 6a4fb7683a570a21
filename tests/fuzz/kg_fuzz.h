/* Shared by the libFuzzer targets in tests/fuzz: a check that says what
 * broke, and a reader that turns the fuzz input into typed values. */
#ifndef KG_FUZZ_H
#define KG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * abort() and not assert(): a harness must never be silenced by NDEBUG, and
 * libFuzzer saves the input of any abort() as a crash with the message above.
 */
#define kg_fuzz_check(cond, ...)							\
	do {										\
		if (!(cond)) {								\
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,	\
				__LINE__, #cond);					\
			fprintf(stderr, __VA_ARGS__);					\
			fputc('\n', stderr);						\
			abort();							\
		}									\
	} while (0)

/* The fuzz input as a stream. Reads past the end give zeros, so every
 * input decodes to some case and no input is wasted on a length check. */
struct kg_fuzz_in {
	const uint8_t *p;
	size_t len;
};

static inline uint8_t kg_fuzz_u8(struct kg_fuzz_in *in)
{
	uint8_t v = 0;

	if (in->len) {
		v = *in->p++;
		in->len--;
	}
	return v;
}

static inline uint32_t kg_fuzz_uint(struct kg_fuzz_in *in, unsigned nbytes)
{
	uint32_t v = 0;

	while (nbytes--)
		v = v << 8 | kg_fuzz_u8(in);
	return v;
}

/* Up to @want bytes from the input (fewer at its end): their count, and
 * where they are in *@out. */
static inline size_t kg_fuzz_take(struct kg_fuzz_in *in, size_t want, const uint8_t **out)
{
	size_t n = want < in->len ? want : in->len;

	*out = in->p;
	in->p += n;
	in->len -= n;
	return n;
}

#endif
