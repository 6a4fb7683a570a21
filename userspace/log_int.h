/* Between log.c and log_ext.c. */
#ifndef KG_LOG_INT_H
#define KG_LOG_INT_H

#include <stdbool.h>

#include "log.h"

/* Writes a line in another form; false: write the text line instead. */
typedef bool (*kg_log_writer_fn)(const char *ts, const char *level, const char *msg);
extern kg_log_writer_fn kg_log_writer;

/* Emit @msg (already formatted, no control bytes) at @lvl. */
void kg_log_emit(enum kg_log_level lvl, const char *msg);

#endif
