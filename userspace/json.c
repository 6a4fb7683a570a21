/*
 * JSON in and out through json-c: the one serialiser (KG_JSON_FLAGS), the
 * one parser, the UTF-8 repair that makes peer text safe to write, and the
 * connection object shared by the worker snapshot, the admin socket and
 * the CLI. See json.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Length of the valid UTF-8 sequence at @p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if it is not one. */
static size_t kg_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

struct json_object *kg_json_str(const char *s)
{
	static const char repl[] = "\xef\xbf\xbd";	/* U+FFFD */
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), i, n, o = 0;
	struct json_object *j;
	char *fixed;

	for (i = 0; i < len; i += n)
		if (!(n = kg_utf8_len(p + i, len - i)))
			break;
	if (i == len)
		return json_object_new_string_len((const char *)p, (int)len);
	/* at worst every byte becomes three */
	fixed = malloc(len * 3 + 1);
	if (!fixed)
		return NULL;
	for (i = 0; i < len; i += n) {
		n = kg_utf8_len(p + i, len - i);
		if (n) {
			memcpy(fixed + o, p + i, n);
			o += n;
		} else {
			memcpy(fixed + o, repl, 3);
			o += 3;
			n = 1;
		}
	}
	j = json_object_new_string_len(fixed, (int)o);
	free(fixed);
	return j;
}

int kg_json_object_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int kg_json_array_add(struct json_object *a, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_array_add(a, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int kg_json_add_str(struct json_object *o, const char *key, const char *s)
{
	return kg_json_object_add(o, key, kg_json_str(s));
}

int kg_json_add_u64(struct json_object *o, const char *key, uint64_t v)
{
	return kg_json_object_add(o, key, json_object_new_uint64(v));
}

int kg_json_add_int(struct json_object *o, const char *key, int64_t v)
{
	return kg_json_object_add(o, key, json_object_new_int64(v));
}

int kg_json_add_bool(struct json_object *o, const char *key, bool v)
{
	return kg_json_object_add(o, key, json_object_new_boolean(v));
}

int kg_json_add_double(struct json_object *o, const char *key, double v)
{
	return kg_json_object_add(o, key, json_object_new_double(v));
}

struct json_object *kg_json_obj(const char *types, ...)
{
	struct json_object *o = json_object_new_object();
	const char *key;
	va_list ap;
	int rc = o ? 0 : -ENOMEM;

	va_start(ap, types);
	/* every argument is consumed even after a failure: 'o' values must be put */
	for (; *types; types++) {
		key = va_arg(ap, const char *);
		switch (*types) {
		case 's': {
			const char *v = va_arg(ap, const char *);

			rc = rc ?: kg_json_add_str(o, key, v);
			break;
		}
		case 'u': {
			uint64_t v = va_arg(ap, uint64_t);

			rc = rc ?: kg_json_add_u64(o, key, v);
			break;
		}
		case 'i': {
			int64_t v = va_arg(ap, int64_t);

			rc = rc ?: kg_json_add_int(o, key, v);
			break;
		}
		case 'b': {
			int v = va_arg(ap, int);

			rc = rc ?: kg_json_add_bool(o, key, v);
			break;
		}
		case 'o': {
			struct json_object *v = va_arg(ap, struct json_object *);

			if (rc)
				json_object_put(v);
			else
				rc = kg_json_object_add(o, key, v);
			break;
		}
		default:
			rc = -EINVAL;	/* a caller's typo: no way to know what follows */
			goto out;
		}
	}
out:
	va_end(ap);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

const char *kg_json_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, KG_JSON_FLAGS);
}

int kg_json_print(FILE *f, struct json_object *o)
{
	const char *t = kg_json_text(o);

	if (!t)
		return -ENOMEM;
	if (fputs(t, f) == EOF || fputc('\n', f) == EOF)
		return -EIO;
	return 0;
}

char *kg_json_strdup(struct json_object *o)
{
	const char *t = kg_json_text(o);

	return t ? strdup(t) : NULL;
}

struct json_object *kg_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL;
	enum json_tokener_error e;
	size_t end;

	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (len > (size_t)INT32_MAX) {
		snprintf(err, errlen, "JSON text of %zu bytes is too long", len);
		goto out;
	}
	o = json_tokener_parse_ex(tok, text, (int)len);
	e = json_tokener_get_error(tok);
	if (!o && e == json_tokener_continue) {
		/* a number at the very end may go on: a NUL ends it (and only it) */
		o = json_tokener_parse_ex(tok, "", 1);
		if (!o) {
			snprintf(err, errlen, "JSON text ends early");
			goto out;
		}
		goto out;
	}
	if (e != json_tokener_success) {
		snprintf(err, errlen, "bad JSON at byte %zu: %s", json_tokener_get_parse_end(tok),
			 json_tokener_error_desc(e));
		goto out;
	}
	/* a scalar (`1`) at the very end is still "continue"; objects close themselves */
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (!strchr(" \t\r\n", text[end]) || !text[end]) {
			snprintf(err, errlen, "bad JSON at byte %zu: text after the value", end);
			json_object_put(o);
			o = NULL;
			goto out;
		}
out:
	json_tokener_free(tok);
	return o;
}

const char *kg_json_get_str(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return dflt;
	return json_object_get_string(v);
}

static uint64_t kg_json_get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_uint64(v);
}

struct json_object *kg_json_conn_new(const struct kg_conn_info *ci)
{
	/* this order is part of the interface: scripts grep "id":N,"worker":… */
	return kg_json_obj("uusssssssssuuu", "id", ci->id, "worker", (uint64_t)ci->worker,
			   "listener", ci->listener, "server_name", ci->server_name,
			   "client", ci->client, "subject", ci->subject, "sha256", ci->sha256,
			   "tls", ci->tls, "cipher", ci->cipher, "path", ci->path,
			   "state", ci->state, "bytes_in", ci->bytes_in, "bytes_out", ci->bytes_out,
			   "age_ms", ci->age_ms);
}

int kg_json_conn_render(const struct kg_conn_info *ci, char *out, size_t outsz)
{
	struct json_object *o = kg_json_conn_new(ci);
	const char *t = o ? kg_json_text(o) : NULL;
	size_t n;
	int rc;

	if (outsz)
		out[0] = '\0';
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	n = strlen(t);
	if (n >= outsz || n > INT32_MAX) {
		rc = -ENOSPC;
		goto out;
	}
	memcpy(out, t, n + 1);
	rc = (int)n;
out:
	json_object_put(o);
	return rc;
}

int kg_json_conn_read(struct json_object *o, struct kg_conn_info *ci)
{
	struct json_object *id;

	memset(ci, 0, sizeof(*ci));
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "id", &id) || !json_object_is_type(id, json_type_int))
		return -EINVAL;
	ci->id = json_object_get_uint64(id);
	ci->worker = (unsigned)kg_json_get_u64(o, "worker");
	ci->listener = kg_json_get_str(o, "listener", "");
	ci->server_name = kg_json_get_str(o, "server_name", "");
	ci->client = kg_json_get_str(o, "client", "");
	ci->subject = kg_json_get_str(o, "subject", "");
	ci->sha256 = kg_json_get_str(o, "sha256", "");
	ci->tls = kg_json_get_str(o, "tls", "");
	ci->cipher = kg_json_get_str(o, "cipher", "");
	ci->path = kg_json_get_str(o, "path", "");
	ci->state = kg_json_get_str(o, "state", "");
	ci->bytes_in = kg_json_get_u64(o, "bytes_in");
	ci->bytes_out = kg_json_get_u64(o, "bytes_out");
	ci->age_ms = kg_json_get_u64(o, "age_ms");
	return 0;
}

/* Bytes of the escape or character that starts at @p in a serialised string. */
static size_t kg_json_token_len(const char *p, size_t avail)
{
	if (p[0] == '\\')
		return p[1] == 'u' ? 6 : 2;
	return kg_utf8_len((const unsigned char *)p, avail);
}

void kg_json_escape(char *out, size_t outsz, const char *in)
{
	struct json_object *s;
	const char *t;
	size_t len, i = 1, n, o = 0;

	if (!outsz)
		return;
	out[0] = '\0';
	s = kg_json_str(in);
	t = s ? kg_json_text(s) : NULL;
	if (!t)
		goto out;
	/* t is "…": copy what is between the quotes, whole tokens only */
	len = strlen(t) - 1;
	for (; i < len; i += n) {
		n = kg_json_token_len(t + i, len - i);
		if (!n || o + n >= outsz)
			break;
		memcpy(out + o, t + i, n);
		o += n;
	}
	out[o] = '\0';
out:
	json_object_put(s);
}
