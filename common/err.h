/*
 * Error codes and error messages shared by every snapworker library.
 *
 * Functions that can fail return 0 (or a non-negative value) on success and
 * a negative code on failure.  Codes in -1..-4095 are negated errno values;
 * the SW_E* codes below cover failures that errno cannot name.  The function
 * that fails writes a human-readable reason into the struct sw_err the caller
 * passed (which may be NULL); the caller decides whether to log it.
 */
#ifndef SW_ERR_H
#define SW_ERR_H

#include <stdbool.h>
#include <stddef.h>

#define SW_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum sw_errcode {
	SW_OK = 0,
	SW_EFORMAT = -5000,     /* malformed input: meta, OVF, tar, JSON, SOAP */
	SW_ECHECKSUM = -5001,   /* data does not match its recorded digest */
	SW_ETOOBIG = -5002,     /* a bound on size, depth or count was exceeded */
	SW_EPATH = -5003,       /* a path is unsafe or escapes its root */
	SW_EREMOTE = -5004,     /* the peer reported a fault */
	SW_EAUTH = -5005,       /* authentication or certificate verification */
	SW_ENET = -5006,        /* peer unreachable, connection lost */
	SW_EUNSUPPORTED = -5007,/* valid but not supported (version, feature) */
	SW_EINTERNAL = -5008,   /* a bug or an impossible state */
	SW_ENOTFOUND = -5009,   /* the named object does not exist */
	SW_EEXIST = -5010,      /* the object exists and differs */
	SW_EBUSY = -5011,       /* the peer is busy (TaskInProgress); retry later */
};

#define SW_ERR_MSG_MAX 512

/*
 * An error travels as one struct: the code, the message and, once someone
 * who knows what the failure means to the requester has said so, its class.
 * The class is decided where the error is made (the worker stores the
 * protocol error code of proto.h and whether another attempt may succeed)
 * and nothing downstream rewrites it: sw_err_classify() keeps the first
 * class given to an error.  sw_errf() and sw_errno() start a new error and
 * so clear the class; sw_errctx() only adds context and keeps it.
 */
struct sw_err {
	int code;
	int kind;            /* 0: not classified yet */
	bool retryable;      /* meaningful when kind != 0 */
	char msg[SW_ERR_MSG_MAX];
};

/* Records code and a formatted message in e (if not NULL); returns code. */
int sw_errf(struct sw_err *e, int code, const char *fmt, ...) SW_PRINTF(3, 4);

/* Like sw_errf with code -errnum, appending ": <strerror(errnum)>". */
int sw_errno(struct sw_err *e, int errnum, const char *fmt, ...) SW_PRINTF(3, 4);

/*
 * Prefixes the existing message with a formatted context: "ctx: old".
 * Returns e's code, which is never 0 (SW_EINTERNAL when e is NULL or holds
 * no error), so "return sw_errctx(e, ...)" always reports a failure.
 */
int sw_errctx(struct sw_err *e, const char *fmt, ...) SW_PRINTF(2, 3);

/*
 * Gives the error held in e (whose code is code) its class, unless it has
 * one already; an e holding another code is a new error and takes the class
 * with code.  Returns code.  e may be NULL.
 */
int sw_err_classify(struct sw_err *e, int code, int kind, bool retryable);

/* Resets e to "no error". */
void sw_err_clear(struct sw_err *e);

/* strerror for errnum (positive), thread-safe; may return buf or a static string. */
const char *sw_errstr(int errnum, char *buf, size_t bufsz);

/* A short static description of a code (errno or SW_E*). */
const char *sw_strerror(int code);

#endif
