#include "common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sw_buf_init(struct sw_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
sw_buf_free(struct sw_buf *b)
{
	if (b == NULL)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

void
sw_buf_reset(struct sw_buf *b)
{
	b->len = 0;
	if (b->ptr != NULL)
		b->ptr[0] = '\0';
}

static int
buf_reserve(struct sw_buf *b, size_t n)
{
	size_t need, ncap;
	char *p;

	if (n > b->max || b->len > b->max - n)
		return SW_ETOOBIG;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	/* Never allocate far beyond the cap a caller set. */
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	p = realloc(b->ptr, ncap);
	if (p == NULL)
		return -ENOMEM;
	b->ptr = p;
	b->cap = ncap;
	return 0;
}

int
sw_buf_add(struct sw_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = buf_reserve(b, n)) < 0)
		return r;
	if (n > 0)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int
sw_buf_addstr(struct sw_buf *b, const char *s)
{
	return sw_buf_add(b, s, strlen(s));
}

int
sw_buf_vaddf(struct sw_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, r;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	if ((r = buf_reserve(b, (size_t)n)) < 0)
		return r;
	(void)vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
sw_buf_addf(struct sw_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = sw_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

const char *
sw_buf_str(const struct sw_buf *b)
{
	return b->ptr != NULL ? b->ptr : "";
}

char *
sw_buf_steal(struct sw_buf *b, size_t *ret_len)
{
	char *p;

	if (b->ptr == NULL && buf_reserve(b, 0) < 0)
		return NULL;
	if (b->len == 0)
		b->ptr[0] = '\0';
	p = b->ptr;
	if (ret_len != NULL)
		*ret_len = b->len;
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
