/*
 * Logging interface (after OpenBSD's log.c).  Libraries (proto/, vmware/,
 * ovastore/) only call log_debug(); the worker installs a sink that writes
 * JSON lines or text and decides the level.  Messages must never contain
 * secrets: callers log names of credential sets, never their contents.
 */
#ifndef SW_LOG_H
#define SW_LOG_H

#include <stdarg.h>

#include "common/err.h"

enum sw_log_level {
	SW_LOG_ERR = 0,
	SW_LOG_WARN = 1,
	SW_LOG_INFO = 2,
	SW_LOG_DEBUG = 3,
};

/* A sink receives one complete message (no trailing newline). */
typedef void (*sw_log_sink)(int level, const char *msg, void *ud);

/* Installs sink (NULL: the default, plain text on stderr). Not thread-safe: call at start-up. */
void sw_log_set_sink(sw_log_sink sink, void *ud);
void sw_log_set_level(int level);
int sw_log_get_level(void);
const char *sw_log_level_name(int level);

void sw_log(int level, const char *fmt, ...) SW_PRINTF(2, 3);
void sw_vlog(int level, const char *fmt, va_list ap);

/* log_warn/fatal append ": strerror(errno)"; the x variants do not. */
void log_warn(const char *fmt, ...) SW_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) SW_PRINTF(1, 2);
void log_info(const char *fmt, ...) SW_PRINTF(1, 2);
void log_debug(const char *fmt, ...) SW_PRINTF(1, 2);
void log_errx(const char *fmt, ...) SW_PRINTF(1, 2);
__attribute__((noreturn)) void fatal(const char *fmt, ...) SW_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) SW_PRINTF(1, 2);

#endif
