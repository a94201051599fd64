#include "worker/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"

#define LOG_LINE_MAX 4096
#define LOG_CTX_MAX  65

static _Thread_local char tl_cmd_id[LOG_CTX_MAX];
static _Thread_local char tl_cmd_type[LOG_CTX_MAX];

static struct {
	enum wrk_log_format fmt;
	char worker[129];
	char *file;
	int journal;            /* stderr is journald's stream: lines carry "<N>" priorities */
	pthread_mutex_t lock;   /* serialises reopen against writers */
} lg = { WRK_LOG_JSON, "", NULL, 0, PTHREAD_MUTEX_INITIALIZER };

/*
 * Whether stderr is the stream systemd connected to the journal: systemd
 * sets JOURNAL_STREAM to "DEVICE:INODE" of it (sd_journal_stream_fd(3)); a
 * log_file or a shell redirection replaces stderr and no longer matches.
 */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void
copy_trunc(char *dst, size_t dstsz, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= dstsz)
		n = dstsz - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void
wrk_log_set_cmd(const char *id, const char *type)
{
	copy_trunc(tl_cmd_id, sizeof(tl_cmd_id), id);
	copy_trunc(tl_cmd_type, sizeof(tl_cmd_type), type);
}

const char *
wrk_log_cmd_id(void)
{
	return tl_cmd_id[0] ? tl_cmd_id : NULL;
}

/* Output cursor that never overruns and remembers whether it had to stop. */
struct out {
	char *p;
	size_t len, cap;    /* cap excludes the room kept for the closing bytes */
	int full;
};

static void
out_add(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n > o->cap) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* A JSON string body: escapes, and invalid UTF-8 replaced by U+FFFD; whole escapes or nothing. */
static void
out_json(struct out *o, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];

	while (*u != '\0' && !o->full) {
		size_t n;

		if (*u == '"' || *u == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*u;
			out_add(o, esc, 2);
			u++;
		} else if (*u < 0x20 || *u == 0x7f) {
			const char *named = *u == '\n' ? "\\n" : *u == '\t' ? "\\t" :
			    *u == '\r' ? "\\r" : NULL;
			if (named != NULL) {
				out_str(o, named);
			} else {
				(void)snprintf(esc, sizeof(esc), "\\u%04x", *u);
				out_str(o, esc);
			}
			u++;
		} else if ((n = utf8_len(u)) == 0) {
			out_str(o, "\\ufffd");
			u++;
		} else {
			out_add(o, (const char *)u, n);
			u += n;
		}
	}
}

/* Text mode keeps one record per line: control characters become '?'. */
static void
out_text(struct out *o, const char *s)
{
	for (; *s != '\0' && !o->full; s++) {
		char ch = (unsigned char)*s < 0x20 ? '?' : *s;
		out_add(o, &ch, 1);
	}
}

size_t
wrk_log_format(char *buf, size_t bufsz, enum wrk_log_format fmt, int level,
    const char *worker, const char *cmd_id, const char *type, const char *msg)
{
	struct out o;
	char ts[40], frac[8];
	struct timespec now;
	const char *tail = fmt == WRK_LOG_JSON ? "\"}\n" : "\n";
	size_t tl = strlen(tail);

	if (bufsz < 64) {
		if (bufsz > 0)
			buf[0] = '\0';
		return 0;
	}
	(void)clock_gettime(CLOCK_REALTIME, &now);
	sw_time_iso8601(now.tv_sec, ts, sizeof(ts));
	/* Insert milliseconds before the 'Z'. */
	(void)snprintf(frac, sizeof(frac), ".%03ldZ", now.tv_nsec / 1000000);
	if (strlen(ts) > 0 && strlen(ts) + 4 < sizeof(ts)) {
		ts[strlen(ts) - 1] = '\0';
		memcpy(ts + strlen(ts), frac, strlen(frac) + 1);
	}
	o.p = buf;
	o.len = 0;
	o.cap = bufsz - tl - 1;
	o.full = 0;
	if (fmt == WRK_LOG_JSON) {
		out_str(&o, "{\"ts\":\"");
		out_str(&o, ts);
		out_str(&o, "\",\"level\":\"");
		out_str(&o, sw_log_level_name(level));
		out_str(&o, "\",\"worker\":\"");
		out_json(&o, worker ? worker : "");
		out_str(&o, "\"");
		if (cmd_id != NULL && cmd_id[0] != '\0') {
			out_str(&o, ",\"cmd_id\":\"");
			out_json(&o, cmd_id);
			out_str(&o, "\"");
		}
		if (type != NULL && type[0] != '\0') {
			out_str(&o, ",\"type\":\"");
			out_json(&o, type);
			out_str(&o, "\"");
		}
		out_str(&o, ",\"msg\":\"");
		if (o.full) {
			/* The header alone did not fit: emit a minimal valid object. */
			o.len = 0;
			o.full = 0;
			out_str(&o, "{\"msg\":\"");
		}
		out_json(&o, msg ? msg : "");
	} else {
		out_str(&o, ts);
		out_str(&o, " ");
		out_str(&o, sw_log_level_name(level));
		if (cmd_id != NULL && cmd_id[0] != '\0') {
			out_str(&o, " [");
			out_text(&o, cmd_id);
			if (type != NULL && type[0] != '\0') {
				out_str(&o, " ");
				out_text(&o, type);
			}
			out_str(&o, "]");
		}
		out_str(&o, ": ");
		out_text(&o, msg ? msg : "");
	}
	memcpy(buf + o.len, tail, tl + 1);
	return o.len + tl;
}

static void
log_sink(int level, const char *msg, void *ud)
{
	/* syslog priorities (sd-daemon(3) prefixes): err 3, warning 4, info 6, debug 7. */
	static const char prio[] = { '3', '4', '6', '7' };
	char line[LOG_LINE_MAX + 3];
	size_t n, off = 0;

	(void)ud;
	if (lg.journal) {
		line[0] = '<';
		line[1] = level >= 0 && level <= SW_LOG_DEBUG ? prio[level] : '6';
		line[2] = '>';
		off = 3;
	}
	n = wrk_log_format(line + off, LOG_LINE_MAX, lg.fmt, level, lg.worker,
	    tl_cmd_id[0] ? tl_cmd_id : NULL, tl_cmd_type[0] ? tl_cmd_type : NULL, msg);
	/* One write per line keeps lines of concurrent threads whole. */
	(void)sw_write_all(STDERR_FILENO, line, off + n);
}

static int
open_file(const char *path, struct sw_err *e)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		return sw_errno(e, errno, "cannot open log file %s", path);
	if (fd != STDERR_FILENO) {
		if (dup2(fd, STDERR_FILENO) < 0) {
			int err = errno;
			close(fd);
			return sw_errno(e, err, "cannot redirect stderr to %s", path);
		}
		close(fd);
	}
	return 0;
}

static int
parse_level(const char *s)
{
	if (s == NULL)
		return SW_LOG_INFO;
	if (strcmp(s, "error") == 0)
		return SW_LOG_ERR;
	if (strcmp(s, "warn") == 0)
		return SW_LOG_WARN;
	if (strcmp(s, "debug") == 0)
		return SW_LOG_DEBUG;
	if (strcmp(s, "info") == 0)
		return SW_LOG_INFO;
	return -1;
}

int
wrk_log_init(const char *format, const char *level, const char *worker, const char *file,
    struct sw_err *e)
{
	int lv = parse_level(level);
	int rc;

	if (lv < 0)
		return sw_errf(e, -EINVAL, "unknown log level '%s'", level);
	if (file != NULL) {
		char *dup = strdup(file);
		if (dup == NULL)
			return sw_errf(e, -ENOMEM, "out of memory");
		rc = open_file(file, e);
		if (rc < 0) {
			free(dup);
			return rc;
		}
		free(lg.file);
		lg.file = dup;
	}
	if (format == NULL || strcmp(format, "auto") == 0)
		lg.fmt = isatty(STDERR_FILENO) ? WRK_LOG_TEXT : WRK_LOG_JSON;
	else if (strcmp(format, "text") == 0)
		lg.fmt = WRK_LOG_TEXT;
	else if (strcmp(format, "json") == 0)
		lg.fmt = WRK_LOG_JSON;
	else
		return sw_errf(e, -EINVAL, "unknown log format '%s'", format);
	copy_trunc(lg.worker, sizeof(lg.worker), worker);
	lg.journal = stderr_is_journal();
	sw_log_set_level(lv);
	sw_log_set_sink(log_sink, NULL);
	return 0;
}

int
wrk_log_reopen(struct sw_err *e)
{
	int rc = 0;

	pthread_mutex_lock(&lg.lock);
	if (lg.file != NULL)
		rc = open_file(lg.file, e);
	pthread_mutex_unlock(&lg.lock);
	return rc;
}
