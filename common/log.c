#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sw_log_sink log_sink;
static void *log_ud;
static int log_level = SW_LOG_INFO;

void
sw_log_set_sink(sw_log_sink sink, void *ud)
{
	log_sink = sink;
	log_ud = ud;
}

void
sw_log_set_level(int level)
{
	log_level = level;
}

int
sw_log_get_level(void)
{
	return log_level;
}

const char *
sw_log_level_name(int level)
{
	switch (level) {
	case SW_LOG_ERR: return "error";
	case SW_LOG_WARN: return "warn";
	case SW_LOG_INFO: return "info";
	default: return "debug";
	}
}

void
sw_vlog(int level, const char *fmt, va_list ap)
{
	char msg[2048];

	if (level > log_level)
		return;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_sink != NULL) {
		log_sink(level, msg, log_ud);
		return;
	}
	/* One fprintf per line: stdio's lock keeps concurrent lines whole. */
	(void)fprintf(stderr, "%s: %s\n", sw_log_level_name(level), msg);
}

void
sw_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sw_vlog(level, fmt, ap);
	va_end(ap);
}

static void
vlog_errno(int level, int errnum, const char *fmt, va_list ap)
{
	char buf[1536], eb[128];

	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	sw_log(level, "%s: %s", buf, sw_errstr(errnum, eb, sizeof(eb)));
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog_errno(SW_LOG_WARN, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

#define LOG_FN(name, level)                     \
	void                                    \
	name(const char *fmt, ...)              \
	{                                       \
		va_list ap;                     \
		va_start(ap, fmt);              \
		sw_vlog(level, fmt, ap);        \
		va_end(ap);                     \
	}

LOG_FN(log_warnx, SW_LOG_WARN)
LOG_FN(log_info, SW_LOG_INFO)
LOG_FN(log_debug, SW_LOG_DEBUG)
LOG_FN(log_errx, SW_LOG_ERR)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog_errno(SW_LOG_ERR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sw_vlog(SW_LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
