/*
 * JSON in and out. Every JSON text the program writes (CLI output, admin
 * replies, JSON log lines) is built as a json-c tree and serialised here
 * with one set of flags, so escaping is decided in one place; every JSON
 * text it reads is parsed here, never searched.
 *
 * Strings: json-c escapes '"', '\\' and every byte below 0x20, but copies
 * other bytes as they are. Peer-controlled text (certificate subjects, SNI)
 * may be invalid UTF-8, which JSON forbids, so kg_json_str() replaces each
 * byte that does not start a valid UTF-8 sequence with U+FFFD first.
 */
#ifndef KG_JSON_H
#define KG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <json-c/json.h>

/* Compact (the tests and operators grep "key":value) and '/' unescaped. */
#define KG_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A new JSON string holding @s (NULL is ""), invalid UTF-8 replaced by
 * U+FFFD. The caller owns it; NULL when out of memory. */
struct json_object *kg_json_str(const char *s);

/*
 * Add a member to object @o. Each returns 0 or -ENOMEM (then @o is
 * unchanged), so a builder can OR a run of them and check once. The
 * object_add and array_add variants take ownership of @v even on failure.
 */
int kg_json_add_str(struct json_object *o, const char *key, const char *s)
	__attribute__((warn_unused_result));
int kg_json_add_u64(struct json_object *o, const char *key, uint64_t v)
	__attribute__((warn_unused_result));
int kg_json_add_int(struct json_object *o, const char *key, int64_t v)
	__attribute__((warn_unused_result));
int kg_json_add_bool(struct json_object *o, const char *key, bool v)
	__attribute__((warn_unused_result));
int kg_json_add_double(struct json_object *o, const char *key, double v)
	__attribute__((warn_unused_result));
int kg_json_object_add(struct json_object *o, const char *key, struct json_object *v)
	__attribute__((warn_unused_result));
int kg_json_array_add(struct json_object *a, struct json_object *v)
	__attribute__((warn_unused_result));

/*
 * A new object from key/value pairs, for the many small answers: @types
 * has one letter per member, and each member is two arguments, the key
 * (const char *) then the value: 's' const char *, 'u' uint64_t, 'i'
 * int64_t, 'b' bool (passed as int), 'o' struct json_object * (taken, even
 * on failure; NULL is a failure). E.g. kg_json_obj("sb", "dir", dir, "ok",
 * true). The caller owns the result; NULL when out of memory.
 */
struct json_object *kg_json_obj(const char *types, ...);

/* The text of @o (KG_JSON_FLAGS), owned by @o; NULL when out of memory. */
const char *kg_json_text(struct json_object *o);
/* Write the text of @o and a newline to @f. 0, -ENOMEM or -EIO. */
int kg_json_print(FILE *f, struct json_object *o) __attribute__((warn_unused_result));
/* The text of @o as a malloc'd string the caller frees; NULL when out of memory. */
char *kg_json_strdup(struct json_object *o);

/*
 * Parse @len bytes of @text as exactly one JSON value (trailing white space
 * allowed, anything else is an error). Returns the tree (caller puts it) or
 * NULL with the reason in @err.
 */
struct json_object *kg_json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Member @key of object @o as a string, or @dflt when absent or not a
 * string. The pointer lives as long as @o. */
const char *kg_json_get_str(struct json_object *o, const char *key, const char *dflt);

/*
 * One connection, as `conn list` shows it. The worker fills one per live
 * connection for a snapshot, the admin socket looks IDs up in them and the
 * CLI prints them as a table, all through the functions below, so the field
 * names exist once. Strings may be NULL (written as "").
 */
struct kg_conn_info {
	uint64_t id;
	unsigned worker;
	const char *listener;
	const char *server_name;	/* SNI group, "" for the listener's own */
	const char *client;		/* "ADDR:PORT" */
	const char *subject;		/* client certificate CN, peer-controlled */
	const char *sha256;		/* hex fingerprint, "" before the handshake */
	const char *tls;		/* "1.2", "1.3" */
	const char *cipher;
	const char *path;		/* data path */
	const char *state;		/* "handshake", "connecting", "established", "closing" */
	uint64_t bytes_in, bytes_out, age_ms;
};

/* A new JSON object for @ci (the caller owns it), NULL when out of memory. */
struct json_object *kg_json_conn_new(const struct kg_conn_info *ci);
/*
 * Render @ci as one JSON object text into @out (NUL-terminated), for the
 * worker's snapshot, which joins objects with ','. Returns the length, or
 * -ENOSPC when @outsz is too small (@out is then ""), or -ENOMEM.
 */
int kg_json_conn_render(const struct kg_conn_info *ci, char *out, size_t outsz)
	__attribute__((warn_unused_result));
/*
 * Read a connection object back into @ci: strings point into @o (absent
 * ones are ""), numbers absent are 0. -EINVAL when @o is not an object or
 * has no numeric "id".
 */
int kg_json_conn_read(struct json_object *o, struct kg_conn_info *ci)
	__attribute__((warn_unused_result));

/*
 * Escape @in as the inside of a JSON string into @out (always
 * NUL-terminated; cut before an escape or a UTF-8 sequence that does not
 * fit). Same rules as kg_json_str(). For text that must stay on one line
 * (a table cell) and for code that still formats JSON with printf; new JSON
 * is built as a tree instead.
 */
void kg_json_escape(char *out, size_t outsz, const char *in);

#endif
