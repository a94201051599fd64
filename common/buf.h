/*
 * A growable byte buffer with a hard cap (after curl's dynbuf): SOAP bodies,
 * JSON messages and HTTP responses are accumulated here, and a peer that
 * sends more than the cap gets SW_ETOOBIG instead of our memory.
 * The contents are always NUL-terminated (the NUL is not counted in len).
 */
#ifndef SW_BUF_H
#define SW_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/err.h"

struct sw_buf {
	char *ptr;
	size_t len;
	size_t cap;   /* allocated bytes, including room for the NUL */
	size_t max;   /* hard cap on len */
};

#define SW_BUF_INIT(max_) { NULL, 0, 0, (max_) }

void sw_buf_init(struct sw_buf *b, size_t max);
void sw_buf_free(struct sw_buf *b);
/* Empties the buffer, keeping its allocation. */
void sw_buf_reset(struct sw_buf *b);

/* Append; on failure (-ENOMEM or SW_ETOOBIG) the buffer is unchanged. */
int sw_buf_add(struct sw_buf *b, const void *p, size_t n);
int sw_buf_addstr(struct sw_buf *b, const char *s);
int sw_buf_addf(struct sw_buf *b, const char *fmt, ...) SW_PRINTF(2, 3);
int sw_buf_vaddf(struct sw_buf *b, const char *fmt, va_list ap);

/* The contents as a C string ("" when empty); valid until the next change. */
const char *sw_buf_str(const struct sw_buf *b);

/* Hands the allocation to the caller (never NULL on success); b is emptied. */
char *sw_buf_steal(struct sw_buf *b, size_t *ret_len);

#endif
