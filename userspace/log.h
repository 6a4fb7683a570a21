/* Logging: one line per event on stderr (journald picks it up), text or JSON. */
#ifndef KG_LOG_H
#define KG_LOG_H

#include <stdbool.h>

enum kg_log_level { KG_LOG_ERR, KG_LOG_WARN, KG_LOG_INFO, KG_LOG_DEBUG };

void kg_log_set_level(enum kg_log_level lvl);
void kg_log_set_json(bool json);
bool kg_log_json(void);
/* Would a line at @lvl be written? (skip costly formatting when not) */
bool kg_log_enabled(enum kg_log_level lvl);
void kg_log(enum kg_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Log @what, then drain the OpenSSL error queue into the same line. */
void kg_log_ssl(enum kg_log_level lvl, const char *what);
/* Writes a pre-formatted record (the access log builds its own JSON). */
void kg_log_raw(const char *line);

#define kg_err(...)   kg_log(KG_LOG_ERR, __VA_ARGS__)
#define kg_warn(...)  kg_log(KG_LOG_WARN, __VA_ARGS__)
#define kg_info(...)  kg_log(KG_LOG_INFO, __VA_ARGS__)
#define kg_dbg(...)   kg_log(KG_LOG_DEBUG, __VA_ARGS__)

/* Peer-controlled text (certificate subjects, SNI) for a quoted value of a
 * text log line: quote, backslash and control bytes are escaped (\", \\,
 * \n, \xNN), so no client can end the value or the line. Returns @out. */
const char *kg_log_quote(char *out, size_t outsz, const char *in);

/* kg_json_escape() for the callers that still format JSON lines themselves */
#include "json.h"

#endif
