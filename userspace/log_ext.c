/*
 * The parts of logging that need libraries: JSON lines (json-c) and
 * OpenSSL's error queue. log.c stays libc only for the front binary.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>
#include <openssl/err.h>

#include "json.h"
#include "log.h"
#include "log_int.h"

static bool kg_log_json_line(const char *ts, const char *level, const char *msg)
{
	struct json_object *o = kg_json_obj("sss", "ts", ts, "level", level, "msg", msg);
	const char *t = o ? kg_json_text(o) : NULL;

	if (t) {
		/* escaping may make it longer than any fixed line: one writev(2), uncut */
		struct iovec iov[2] = { { (void *)t, strlen(t) }, { "\n", 1 } };

		(void)!writev(STDERR_FILENO, iov, 2);
	}
	json_object_put(o);
	return t != NULL;	/* out of memory: a text line says it still */
}

void kg_log_set_json(bool json)
{
	kg_log_writer = json ? kg_log_json_line : NULL;
}

bool kg_log_json(void)
{
	return kg_log_writer == kg_log_json_line;
}

void kg_log_ssl(enum kg_log_level lvl, const char *what)
{
	char msg[4096], buf[256];
	size_t o;
	unsigned long e;

	o = (size_t)snprintf(msg, sizeof(msg), "%s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		if (o < sizeof(msg))
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, ": %s", buf);
	}
	if (kg_log_enabled(lvl))
		kg_log_emit(lvl, msg);
}

