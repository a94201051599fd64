#include "common/props.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"

struct pscan {
	const unsigned char *p;
	size_t len;
	size_t pos;
	unsigned line;          /* current natural line (1-based) */
	const struct sw_props_limits *lim;
	struct sw_err *e;
};

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

/* Records "<what> line N: <reason>" and returns code. */
static int SW_PRINTF(4, 5)
scan_fail(const struct pscan *s, int code, unsigned line, const char *fmt, ...)
{
	char why[SW_ERR_MSG_MAX];
	va_list ap;

	if (code == -ENOMEM)
		return sw_errf(s->e, code, "out of memory");
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return sw_errf(s->e, code, "%s%sline %u: %s", s->lim->what ? s->lim->what : "",
	    s->lim->what ? " " : "", line, why);
}

/* Appends code point cp (from a \uXXXX escape, so below 0x10000) as UTF-8. */
static int
add_utf8(struct sw_buf *b, unsigned cp)
{
	unsigned char u[3];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	return sw_buf_add(b, u, n);
}

/*
 * Reads one key or value of the current logical line into out, undoing
 * escapes and following continuation lines.  A key (is_key) stops before an
 * unescaped separator; a value runs to the end of the logical line.  The
 * four digits of a \uXXXX escape must stand on one line: Properties.load
 * would join them across a continuation, but no writer splits them, and a
 * reader that refuses is the safer of the two.
 */
static int
read_token(struct pscan *s, int is_key, struct sw_buf *out, unsigned start_line)
{
	int r;

	while (s->pos < s->len) {
		unsigned char c = s->p[s->pos];

		if (c == '\n' || c == '\r')
			return 0;
		if (is_key && (c == '=' || c == ':' || is_ws(c)))
			return 0;
		if (c != '\\') {
			if ((r = sw_buf_add(out, &c, 1)) < 0)
				goto toobig;
			s->pos++;
			continue;
		}
		/* A backslash: an escape or a line continuation. */
		s->pos++;
		if (s->pos >= s->len)
			return 0; /* a trailing backslash at end of file is dropped, as Java does */
		c = s->p[s->pos];
		if (c == '\n' || c == '\r') {
			/* Continuation: skip the line end and the next line's leading blanks. */
			if (c == '\r' && s->pos + 1 < s->len && s->p[s->pos + 1] == '\n')
				s->pos++;
			s->pos++;
			s->line++;
			while (s->pos < s->len && is_ws(s->p[s->pos]))
				s->pos++;
			continue;
		}
		s->pos++;
		switch (c) {
		case 't': c = '\t'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 'f': c = '\f'; break;
		case 'u': {
			unsigned cp = 0;
			int i, h;

			for (i = 0; i < 4; i++) {
				if (s->pos >= s->len || (h = sw_hexval(s->p[s->pos])) < 0)
					return scan_fail(s, SW_EFORMAT, s->line,
					    "malformed \\uXXXX escape");
				cp = cp * 16 + (unsigned)h;
				s->pos++;
			}
			/* Keys and values are C strings. */
			if (cp == 0)
				return scan_fail(s, SW_EFORMAT, s->line, "\\u0000 escape");
			if ((r = add_utf8(out, cp)) < 0)
				goto toobig;
			continue;
		}
		default:
			break; /* \X is X, which covers \=, \:, \space, \\, \#, \! */
		}
		if ((r = sw_buf_add(out, &c, 1)) < 0)
			goto toobig;
	}
	return 0;
toobig:
	return scan_fail(s, r, start_line, "entry too long");
}

static void
skip_line_end(struct pscan *s)
{
	if (s->pos < s->len && s->p[s->pos] == '\r')
		s->pos++;
	if (s->pos < s->len && s->p[s->pos] == '\n')
		s->pos++;
	s->line++;
}

static void
skip_ws(struct pscan *s)
{
	while (s->pos < s->len && is_ws(s->p[s->pos]))
		s->pos++;
}

/*
 * Skips the blanks around a separator and the continuations among them:
 * Properties.load joins the lines first, so "key \\<newline> = v" has the
 * separator '=' and the value "v".
 */
static void
skip_separator_ws(struct pscan *s)
{
	for (;;) {
		skip_ws(s);
		if (s->pos + 1 >= s->len || s->p[s->pos] != '\\' ||
		    (s->p[s->pos + 1] != '\n' && s->p[s->pos + 1] != '\r'))
			return;
		s->pos++;
		skip_line_end(s);
	}
}

static int
add_prop(struct pscan *s, struct sw_props *p, size_t *cap, struct sw_buf *k, struct sw_buf *v,
    unsigned line)
{
	struct sw_prop *np;

	if (p->n >= s->lim->max_keys)
		return scan_fail(s, SW_ETOOBIG, line, "more than %zu keys", s->lim->max_keys);
	if (p->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		if (ncap > s->lim->max_keys)
			ncap = s->lim->max_keys;
		if ((np = realloc(p->v, ncap * sizeof(*np))) == NULL)
			return scan_fail(s, -ENOMEM, line, "out of memory");
		p->v = np;
		*cap = ncap;
	}
	np = &p->v[p->n];
	np->key = sw_buf_steal(k, NULL);
	np->value = sw_buf_steal(v, NULL);
	np->line = line;
	if (np->key == NULL || np->value == NULL) {
		free(np->key);
		free(np->value);
		return scan_fail(s, -ENOMEM, line, "out of memory");
	}
	p->n++;
	return 0;
}

/* The natural line of byte off, counting LF, CR and CRLF as one line end each. */
static unsigned
line_of(const unsigned char *p, size_t off)
{
	unsigned line = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (p[i] == '\n' || (p[i] == '\r' && p[i + 1] != '\n'))
			line++;
	return line;
}

int
sw_props_parse(const void *buf, size_t len, const struct sw_props_limits *lim,
    struct sw_props *ret_props, struct sw_err *e)
{
	struct pscan s = { buf, len, 0, 1, lim, e };
	struct sw_buf k = SW_BUF_INIT(lim->max_bytes), v = SW_BUF_INIT(lim->max_bytes);
	struct sw_props p = { 0, NULL };
	const unsigned char *nul;
	size_t cap = 0;
	int r = 0;

	if (len > lim->max_bytes)
		return sw_errf(e, SW_ETOOBIG, "%s%smore than %zu bytes", lim->what ? lim->what : "",
		    lim->what ? ": " : "", lim->max_bytes);
	/* Keys and values are C strings: no NUL anywhere, not even in a comment. */
	if (len > 0 && (nul = memchr(buf, '\0', len)) != NULL)
		return scan_fail(&s, SW_EFORMAT, line_of(buf, (size_t)(nul - s.p)), "NUL byte");
	while (s.pos < s.len) {
		unsigned start;

		skip_ws(&s);
		if (s.pos >= s.len)
			break;
		if (s.p[s.pos] == '\n' || s.p[s.pos] == '\r') {
			skip_line_end(&s);
			continue;
		}
		if (s.p[s.pos] == '#' || s.p[s.pos] == '!') {
			/* A comment runs to the end of its natural line; no continuation. */
			while (s.pos < s.len && s.p[s.pos] != '\n' && s.p[s.pos] != '\r')
				s.pos++;
			skip_line_end(&s);
			continue;
		}
		start = s.line;
		sw_buf_reset(&k);
		sw_buf_reset(&v);
		if ((r = read_token(&s, 1, &k, start)) < 0)
			goto fail;
		/* Separator: blanks, then at most one '=' or ':', then blanks. */
		skip_separator_ws(&s);
		if (s.pos < s.len && (s.p[s.pos] == '=' || s.p[s.pos] == ':')) {
			s.pos++;
			skip_separator_ws(&s);
		}
		if ((r = read_token(&s, 0, &v, start)) < 0)
			goto fail;
		skip_line_end(&s);
		if ((r = add_prop(&s, &p, &cap, &k, &v, start)) < 0)
			goto fail;
	}
	sw_buf_free(&k);
	sw_buf_free(&v);
	*ret_props = p;
	return 0;
fail:
	sw_buf_free(&k);
	sw_buf_free(&v);
	sw_props_free(&p);
	return r;
}

const struct sw_prop *
sw_props_find(const struct sw_props *p, const char *key)
{
	size_t i;

	if (p == NULL || key == NULL)
		return NULL;
	for (i = p->n; i > 0; i--)
		if (strcmp(p->v[i - 1].key, key) == 0)
			return &p->v[i - 1];
	return NULL;
}

void
sw_props_free(struct sw_props *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		free(p->v[i].key);
		free(p->v[i].value);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* Appends s escaped for a properties key (is_key) or value. */
static int
add_escaped(struct sw_buf *out, const char *s, int is_key)
{
	const unsigned char *p;
	int r;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		const char *esc = NULL;
		char two[3] = { '\\', (char)*p, '\0' };

		switch (*p) {
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\f': esc = "\\f"; break;
		case '=': case ':': case '#': case '!':
			/* In a value they are harmless: only a line start is a comment. */
			if (is_key)
				esc = two;
			break;
		case ' ':
			/* Keys end at a blank; values only lose leading blanks. */
			if (is_key || p == (const unsigned char *)s)
				esc = two;
			break;
		default:
			break;
		}
		r = esc ? sw_buf_addstr(out, esc) : sw_buf_add(out, p, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

int
sw_props_add_entry(struct sw_buf *out, const char *key, const char *value)
{
	size_t start = out->len;
	int r;

	if ((r = add_escaped(out, key, 1)) < 0 || (r = sw_buf_addstr(out, "=")) < 0 ||
	    (r = add_escaped(out, value, 0)) < 0 || (r = sw_buf_addstr(out, "\n")) < 0) {
		out->len = start;
		if (out->ptr != NULL)
			out->ptr[start] = '\0';
		return r;
	}
	return 0;
}
