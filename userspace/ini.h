/*
 * The INI dialect of the configuration file (ini.c): sections, keys and
 * comments, with line numbers. Knows no key.
 */
#ifndef KG_INI_H
#define KG_INI_H

#include <stdbool.h>
#include <stdio.h>

#define KG_INI_LINE_MAX (64 * 1024)

enum kg_ini_item {
	KG_INI_SECTION,		/* @name: what is between [ and ] */
	KG_INI_KEY,		/* @name = @value, both stripped */
	KG_INI_ERROR,		/* @name: what is wrong with the line */
};

/* One item of the current line; false stops the reading. */
typedef bool (*kg_ini_fn)(void *arg, enum kg_ini_item what, char *name, char *value);

/*
 * Read @f to its end, or until @fn returns false; *@lineno counts the lines
 * read (the current line's number during a call of @fn). 0, or -errno when
 * reading failed.
 */
int kg_ini_read(FILE *f, unsigned *lineno, kg_ini_fn fn, void *arg)
	__attribute__((warn_unused_result));

#endif
