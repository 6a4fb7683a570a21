/*
 * Log lines on stderr, with quoting; the only writer of the process's log
 * output. libc only: the JSON form and OpenSSL's error queue are
 * log_ext.c's, so the front binary (front.c) logs as the gateway does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "log_int.h"

static enum kg_log_level kg_level = KG_LOG_INFO;

kg_log_writer_fn kg_log_writer;

void kg_log_set_level(enum kg_log_level lvl) { kg_level = lvl; }
bool kg_log_enabled(enum kg_log_level lvl) { return lvl <= kg_level; }

static const char *const kg_level_names[] = { "error", "warning", "info", "debug" };

void kg_log_emit(enum kg_log_level lvl, const char *msg)
{
	char ts[40], line[4608];
	struct timespec now;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03ldZ", now.tv_nsec / 1000000);
	if (kg_log_writer && kg_log_writer(ts, kg_level_names[lvl], msg))
		return;
	n = snprintf(line, sizeof(line), "%s %s: %s\n", ts, kg_level_names[lvl], msg);
	if (n > (int)sizeof(line) - 1) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write(2) per line so lines from several workers never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

const char *kg_log_quote(char *out, size_t outsz, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!outsz)
		return out;
	for (; in && *in && o + 5 < outsz; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

void kg_log(enum kg_log_level lvl, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	size_t i;

	if (lvl > kg_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A line is an event: whatever a caller forgot to quote, a control
	 * byte never starts a line of its own. */
	for (i = 0; msg[i]; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	kg_log_emit(lvl, msg);
}

void kg_log_raw(const char *line)
{
	size_t n = strlen(line);

	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
