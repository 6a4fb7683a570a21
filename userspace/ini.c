/*
 * The configuration file's INI dialect, line by line with getline(3).
 * Owns only the syntax: which lines are sections, keys, comments; what the
 * keys mean is config.c's.
 *
 * Not libinih: Debian's build cuts lines at 200 bytes and gives no line
 * numbers, and a cipher list or a path can be longer than that. The dialect
 * is inih's, minus its continuation lines (an indented line is an ordinary
 * line):
 *   - blank lines, and comments whose first non-blank character is ; or #;
 *   - [section], with anything after the ] ignored;
 *   - name = value or name: value, blanks around each stripped;
 *   - an inline comment starts at a ; that follows a blank;
 *   - a UTF-8 byte-order mark at the start of the file, CRLF line ends.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ini.h"

static char *kg_rstrip(char *s)
{
	size_t n = strlen(s);

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static char *kg_lskip(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/* The first of @chars in @s, or of an inline comment (a ; after a blank),
 * or the terminating NUL. */
static char *kg_find_or_comment(char *s, const char *chars)
{
	bool blank = false;

	while (*s && !strchr(chars, *s) && !(blank && *s == ';')) {
		blank = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* One line (NUL-terminated, newline included or not): what @fn says. */
static bool kg_ini_line(char *line, unsigned lineno, kg_ini_fn fn, void *arg)
{
	char *s, *end, *value;

	if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3))
		line += 3;
	s = kg_lskip(kg_rstrip(line));
	if (!*s || *s == ';' || *s == '#')
		return true;
	if (*s == '[') {
		end = kg_find_or_comment(s + 1, "]");
		if (*end != ']')
			return fn(arg, KG_INI_ERROR, "syntax error: '[' without ']'; write [global], "
				  "[listener NAME] or [sni LISTENER HOST]", NULL);
		*end = '\0';
		return fn(arg, KG_INI_SECTION, s + 1, NULL);
	}
	end = kg_find_or_comment(s, "=:");
	if (*end != '=' && *end != ':')
		return fn(arg, KG_INI_ERROR,
			  "syntax error; expected [section], key = value, or a ; comment", NULL);
	*end = '\0';
	value = end + 1;
	*kg_find_or_comment(value, "") = '\0';
	return fn(arg, KG_INI_KEY, kg_rstrip(s), kg_rstrip(kg_lskip(value)));
}

int kg_ini_read(FILE *f, unsigned *lineno, kg_ini_fn fn, void *arg)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool go = true;
	int rc = 0;

	errno = 0;
	while (go && (n = getline(&line, &cap, f)) >= 0) {
		++*lineno;
		if (n > KG_INI_LINE_MAX)
			go = fn(arg, KG_INI_ERROR, "line longer than 65536 bytes; is this the "
				"configuration file?", NULL);
		else
			go = kg_ini_line(line, *lineno, fn, arg);
	}
	if (go && ferror(f))
		rc = errno ? -errno : -EIO;
	free(line);
	return rc;
}
