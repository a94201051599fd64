#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
sw_errf(struct sw_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	e->kind = 0;
	e->retryable = false;
	va_start(ap, fmt);
	(void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int
sw_errno(struct sw_err *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	char eb[128];
	const char *es;

	if (errnum <= 0)
		errnum = EIO;
	if (e == NULL)
		return -errnum;
	e->code = -errnum;
	e->kind = 0;
	e->retryable = false;
	va_start(ap, fmt);
	(void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	es = sw_errstr(errnum, eb, sizeof(eb));
	if (n < sizeof(e->msg))
		(void)snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", es);
	return -errnum;
}

int
sw_errctx(struct sw_err *e, const char *fmt, ...)
{
	va_list ap;
	char ctx[SW_ERR_MSG_MAX], old[SW_ERR_MSG_MAX];

	/* Callers write "return sw_errctx(...)": never turn a failure into 0. */
	if (e == NULL)
		return SW_EINTERNAL;
	va_start(ap, fmt);
	(void)vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	(void)snprintf(e->msg, sizeof(e->msg), "%s: %s", ctx, old);
	if (e->code >= 0)
		e->code = SW_EINTERNAL;
	return e->code;
}

const char *
sw_errstr(int errnum, char *buf, size_t bufsz)
{
	/* The GNU strerror_r (we build with _GNU_SOURCE) is thread-safe and returns the text. */
	return strerror_r(errnum, buf, bufsz);
}

int
sw_err_classify(struct sw_err *e, int code, int kind, bool retryable)
{
	if (e == NULL)
		return code;
	if (e->code != code) {
		/*
		 * The failing function returned another code than the one it
		 * described (or described none): the code returned is the error.
		 */
		e->code = code;
		if (e->msg[0] == '\0')
			(void)snprintf(e->msg, sizeof(e->msg), "%s", sw_strerror(code));
		e->kind = 0;
	}
	if (e->kind == 0) {
		e->kind = kind;
		e->retryable = retryable;
	}
	return code;
}

void
sw_err_clear(struct sw_err *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->kind = 0;
	e->retryable = false;
	e->msg[0] = '\0';
}

const char *
sw_strerror(int code)
{
	switch (code) {
	case SW_OK: return "success";
	case SW_EFORMAT: return "malformed input";
	case SW_ECHECKSUM: return "checksum mismatch";
	case SW_ETOOBIG: return "limit exceeded";
	case SW_EPATH: return "unsafe path";
	case SW_EREMOTE: return "remote fault";
	case SW_EAUTH: return "authentication failed";
	case SW_ENET: return "peer unreachable";
	case SW_EUNSUPPORTED: return "unsupported";
	case SW_EINTERNAL: return "internal error";
	case SW_ENOTFOUND: return "not found";
	case SW_EEXIST: return "already exists";
	case SW_EBUSY: return "busy";
	default:
		break;
	}
	if (code < 0 && code > -4096) {
		/* strerrorname_np needs glibc 2.32; plain strerror is fine for a static table. */
		return strerror(-code);
	}
	return "unknown error";
}
