/*
 * The daemon's log sink for common/log.h: one JSON object per line
 * ({"ts","level","worker","cmd_id","type","msg"}) or plain text, on stderr or
 * a log file that SIGHUP reopens.  Every thread has its own current command
 * (thread-local), so the debug lines of the libraries a job calls carry the
 * command id without the libraries knowing about it.
 */
#ifndef WRK_LOG_H
#define WRK_LOG_H

#include <stddef.h>

#include "common/err.h"

enum wrk_log_format {
	WRK_LOG_JSON = 0,
	WRK_LOG_TEXT = 1,
};

/*
 * Installs the sink.  format: "json", "text" or "auto" (json unless stderr is
 * a terminal); level: "error".."debug"; file: NULL for stderr, else a path
 * opened O_APPEND and made the process's stderr so that stray writes land there too.
 */
int wrk_log_init(const char *format, const char *level, const char *worker, const char *file,
    struct sw_err *e);

/* Reopens the log file (after rotation); harmless without one.  Async-signal-unsafe: call from the main loop. */
int wrk_log_reopen(struct sw_err *e);

/* The calling thread's current command (NULL/NULL to clear).  Strings are copied, truncated to 64 bytes. */
void wrk_log_set_cmd(const char *id, const char *type);
const char *wrk_log_cmd_id(void);

/*
 * Formats one log line (with its newline) into buf; returns its length.
 * Lines longer than bufsz are cut, never split a UTF-8 escape, and stay valid JSON.
 */
size_t wrk_log_format(char *buf, size_t bufsz, enum wrk_log_format fmt, int level,
    const char *worker, const char *cmd_id, const char *type, const char *msg);

#endif
