/* Helpers shared by the cmocka binaries: a temporary directory holding the
 * project's own test PKI (pki.c), made once per group and removed after. */
#ifndef KG_TEST_H
#define KG_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "pki.h"

/* mkdtemp /tmp/kg-test-NAME-XXXXXX into @dir and write the PKI there
 * (the full test set when @test_set). 0, or -1 for cmocka's setup. */
static inline int kg_test_pki(char *dir, size_t dirsz, const char *name, bool test_set)
{
	snprintf(dir, dirsz, "/tmp/kg-test-%s-XXXXXX", name);
	if (!mkdtemp(dir))
		return -1;
	return kg_pki_init(dir, test_set) ? -1 : 0;
}

/* Remove what kg_test_pki() made. 0, or -1 for cmocka's teardown. */
static inline int kg_test_rmdir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
