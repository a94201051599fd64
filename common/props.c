/*
 * Java properties text: a reimplementation following Properties.load's
 * documented rules (and the escaping Properties.store documents), written
 * from the java.util.Properties specification.  The reader works in the
 * same two steps the specification describes: natural lines are joined
 * into logical lines, then each logical line is split into key and value
 * and its escapes are undone.
 */
#include "common/props.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"

struct pscan {
	const unsigned char *p;
	size_t len;
	size_t pos;
	unsigned line;          /* current natural line (1-based) */
	int raw_utf8;           /* bytes >= 0x80 are kept as they are (legacy UTF-8 file) */
	const struct sw_props_limits *lim;
	struct sw_err *e;
	/* The logical line being split: where each of its natural lines begins. */
	size_t *starts;
	unsigned *lines;
	size_t nstarts, capstarts;
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

/*
 * Decodes one UTF-8 sequence of [p, p+n) into *cp: its length, or 0 when
 * it is not well-formed (overlong forms, surrogates and code points above
 * U+10FFFF are not).
 */
static size_t
utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t k, i;

	if (n == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		k = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		k = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		k = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((k == 3 && c < 0x800) || (k == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return k;
}

/* Whether [p, p+n) holds a byte >= 0x80 and is well-formed UTF-8 throughout. */
static int
is_utf8_text(const unsigned char *p, size_t n)
{
	size_t i = 0, k;
	int high = 0;
	uint32_t cp;

	while (i < n) {
		if (p[i] >= 0x80)
			high = 1;
		if ((k = utf8_next(p + i, n - i, &cp)) == 0)
			return 0;
		i += k;
	}
	return high;
}

/* Appends code point cp (at most U+10FFFF, no surrogate) as UTF-8. */
static int
add_utf8(struct sw_buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return sw_buf_add(b, u, n);
}

/* --------------------------------------------------- logical lines */

/* Notes that the logical line continues at offset off with natural line s->line. */
static int
note_start(struct pscan *s, size_t off)
{
	if (s->nstarts == s->capstarts) {
		size_t ncap = s->capstarts ? s->capstarts * 2 : 8;
		size_t *ns;
		unsigned *nl;

		if ((ns = realloc(s->starts, ncap * sizeof(*ns))) == NULL)
			return -ENOMEM;
		s->starts = ns;
		if ((nl = realloc(s->lines, ncap * sizeof(*nl))) == NULL)
			return -ENOMEM;
		s->lines = nl;
		s->capstarts = ncap;
	}
	s->starts[s->nstarts] = off;
	s->lines[s->nstarts] = s->line;
	s->nstarts++;
	return 0;
}

/* The natural line of offset off of the current logical line. */
static unsigned
line_at(const struct pscan *s, size_t off)
{
	size_t i;
	unsigned l = s->nstarts > 0 ? s->lines[0] : s->line;

	for (i = 0; i < s->nstarts && s->starts[i] <= off; i++)
		l = s->lines[i];
	return l;
}

/* Steps over a line end at s->pos (CR, LF or CRLF) and counts it. */
static void
skip_line_end(struct pscan *s)
{
	if (s->pos < s->len && s->p[s->pos] == '\r')
		s->pos++;
	if (s->pos < s->len && s->p[s->pos] == '\n')
		s->pos++;
	s->line++;
}

/*
 * Reads the next logical line into ln, as Properties.load does: a natural
 * line's leading blanks go; a line that is then empty, or starts with '#'
 * or '!', is skipped (a comment never continues); a line that ends in an
 * odd number of backslashes continues on the next natural line, whose
 * leading blanks go too; a backslash at the very end of the text is
 * dropped.  1: a line in ln, 0: the end of the text.
 */
static int
next_line(struct pscan *s, struct sw_buf *ln)
{
	int r;

	sw_buf_reset(ln);
	s->nstarts = 0;
	for (;;) {
		/* The start of a natural line that is no continuation. */
		while (s->pos < s->len && is_ws(s->p[s->pos]))
			s->pos++;
		if (s->pos >= s->len)
			return 0;
		if (s->p[s->pos] == '\n' || s->p[s->pos] == '\r') {
			skip_line_end(s);
			continue;
		}
		if (s->p[s->pos] == '#' || s->p[s->pos] == '!') {
			while (s->pos < s->len && s->p[s->pos] != '\n' && s->p[s->pos] != '\r')
				s->pos++;
			if (s->pos < s->len)
				skip_line_end(s);
			continue;
		}
		break;
	}
	if ((r = note_start(s, 0)) < 0)
		return scan_fail(s, r, s->line, "out of memory");
	for (;;) {
		size_t from = s->pos, bs = 0;

		while (s->pos < s->len && s->p[s->pos] != '\n' && s->p[s->pos] != '\r') {
			bs = s->p[s->pos] == '\\' ? bs + 1 : 0;
			s->pos++;
		}
		if ((r = sw_buf_add(ln, s->p + from, s->pos - from)) < 0)
			return scan_fail(s, r, s->lines[0], "line too long");
		if (bs % 2 == 0) {
			if (s->pos < s->len)
				skip_line_end(s);
			return 1;
		}
		/* An odd number of backslashes: the last one joins the next line. */
		ln->len--;
		ln->ptr[ln->len] = '\0';
		if (s->pos >= s->len)
			return 1;
		skip_line_end(s);
		while (s->pos < s->len && is_ws(s->p[s->pos]))
			s->pos++;
		if ((r = note_start(s, ln->len)) < 0)
			return scan_fail(s, r, s->line, "out of memory");
	}
}

/* ------------------------------------------ keys, values, escapes */

/*
 * Undoes the escapes of [p, p+n) (part of the logical line at offset off)
 * into out as UTF-8: \t \n \r \f, \uXXXX (a UTF-16 unit; a high and a low
 * surrogate make one character), \X for any other X is X.  Any other byte
 * is an ISO-8859-1 character, unless the text is legacy UTF-8.
 */
static int
convert(struct pscan *s, const unsigned char *p, size_t n, size_t off, struct sw_buf *out)
{
	size_t i = 0;
	uint32_t hi = 0;        /* a high surrogate waiting for its low half */
	unsigned hi_line = 0;
	int r;

	while (i < n) {
		unsigned char c = p[i];
		size_t at = i;

		if (c != '\\' || i + 1 >= n) {
			if (hi)
				goto lone;
			/* The line splitter never leaves a lone backslash at the end. */
			if (c >= 0x80 && !s->raw_utf8)
				r = add_utf8(out, c);
			else
				r = sw_buf_add(out, &c, 1);
			if (r < 0)
				goto toobig;
			i++;
			continue;
		}
		c = p[i + 1];
		i += 2;
		if (c == 'u') {
			uint32_t u = 0;
			int k, h;

			if (n - i < 4)
				return scan_fail(s, SW_EFORMAT, line_at(s, off + at),
				    "malformed \\uXXXX escape");
			for (k = 0; k < 4; k++) {
				if ((h = sw_hexval(p[i + (size_t)k])) < 0)
					return scan_fail(s, SW_EFORMAT, line_at(s, off + at),
					    "malformed \\uXXXX escape");
				u = u * 16 + (uint32_t)h;
			}
			i += 4;
			if (u >= 0xd800 && u <= 0xdbff) {
				if (hi)
					goto lone;
				hi = u;
				hi_line = line_at(s, off + at);
				continue;
			}
			if (u >= 0xdc00 && u <= 0xdfff) {
				if (!hi) {
					hi_line = line_at(s, off + at);
					goto lone;
				}
				u = 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00);
				hi = 0;
			} else if (hi) {
				goto lone;
			}
			/* Keys and values are C strings. */
			if (u == 0)
				return scan_fail(s, SW_EFORMAT, line_at(s, off + at), "\\u0000 escape");
			if ((r = add_utf8(out, u)) < 0)
				goto toobig;
			continue;
		}
		if (hi)
			goto lone;
		switch (c) {
		case 't': c = '\t'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 'f': c = '\f'; break;
		default: break; /* \X is X: \=, \:, \space, \\, \#, \! ... */
		}
		if (c >= 0x80 && !s->raw_utf8)
			r = add_utf8(out, c);
		else
			r = sw_buf_add(out, &c, 1);
		if (r < 0)
			goto toobig;
	}
	if (hi)
		goto lone;
	return 0;
lone:
	return scan_fail(s, SW_EFORMAT, hi_line ? hi_line : line_at(s, off),
	    "unpaired UTF-16 surrogate escape");
toobig:
	return scan_fail(s, r, line_at(s, off), "entry too long");
}

/*
 * Splits logical line ln as Properties.load does: the key ends at the first
 * '=', ':' or blank no backslash escapes; blanks, at most one '=' or ':',
 * and blanks again separate it from the value, which runs to the end.
 */
static int
split_line(struct pscan *s, const struct sw_buf *ln, struct sw_buf *k, struct sw_buf *v)
{
	const unsigned char *p = (const unsigned char *)ln->ptr;
	size_t n = ln->len, klen = 0, vstart;
	int esc = 0, sep = 0, r;

	while (klen < n) {
		unsigned char c = p[klen];

		if (!esc && (c == '=' || c == ':')) {
			sep = 1;
			break;
		}
		if (!esc && is_ws(c))
			break;
		esc = c == '\\' ? !esc : 0;
		klen++;
	}
	vstart = sep ? klen + 1 : klen;
	while (vstart < n) {
		unsigned char c = p[vstart];

		if (!is_ws(c)) {
			if (!sep && (c == '=' || c == ':'))
				sep = 1;
			else
				break;
		}
		vstart++;
	}
	if ((r = convert(s, p, klen, 0, k)) < 0)
		return r;
	return convert(s, p + vstart, n - vstart, vstart, v);
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
	struct pscan s;
	/* A byte becomes at most two bytes of UTF-8, an escape at most its own length. */
	struct sw_buf ln = SW_BUF_INIT(lim->max_bytes), k = SW_BUF_INIT(2 * lim->max_bytes),
	    v = SW_BUF_INIT(2 * lim->max_bytes);
	struct sw_props p = { 0, NULL };
	const unsigned char *nul;
	size_t cap = 0;
	int r = 0;

	memset(&s, 0, sizeof(s));
	s.p = buf;
	s.len = len;
	s.line = 1;
	s.lim = lim;
	s.e = e;
	if (len > lim->max_bytes)
		return sw_errf(e, SW_ETOOBIG, "%s%smore than %zu bytes", lim->what ? lim->what : "",
		    lim->what ? ": " : "", lim->max_bytes);
	/* Keys and values are C strings: no NUL anywhere, not even in a comment. */
	if (len > 0 && (nul = memchr(buf, '\0', len)) != NULL)
		return scan_fail(&s, SW_EFORMAT, line_of(buf, (size_t)(nul - s.p)), "NUL byte");
	s.raw_utf8 = lim->legacy_utf8 && is_utf8_text(s.p, len);
	while ((r = next_line(&s, &ln)) > 0) {
		unsigned start = s.lines[0];

		sw_buf_reset(&k);
		sw_buf_reset(&v);
		if ((r = split_line(&s, &ln, &k, &v)) < 0 ||
		    (r = add_prop(&s, &p, &cap, &k, &v, start)) < 0)
			break;
	}
	sw_buf_free(&ln);
	sw_buf_free(&k);
	sw_buf_free(&v);
	free(s.starts);
	free(s.lines);
	if (r < 0) {
		sw_props_free(&p);
		return r;
	}
	*ret_props = p;
	return 0;
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

/* ----------------------------------------------------------- writing */

static int
add_u_escape(struct sw_buf *out, uint32_t unit)
{
	char u[7];

	(void)snprintf(u, sizeof(u), "\\u%04X", (unsigned)unit);
	return sw_buf_add(out, u, 6);
}

/*
 * Appends UTF-8 string s escaped as Properties.store(OutputStream) escapes
 * a key (is_key) or a value: '\\', '=', ':', '#' and '!' get a backslash,
 * tab, LF, CR and FF their letter escapes, a blank a backslash when it
 * leads or is in a key, and every other character outside printable ASCII
 * (0x20..0x7e) a \uXXXX escape (upper-case digits; a surrogate pair above
 * U+FFFF).  The text written is thus plain ASCII, which is ISO-8859-1 too.
 */
static int
add_escaped(struct sw_buf *out, const char *s, int is_key)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	uint32_t cp;
	int r;

	while (i < n) {
		char two[2] = { '\\', 0 };

		if ((k = utf8_next(p + i, n - i, &cp)) == 0)
			return SW_EFORMAT;
		two[1] = (char)cp;
		switch (cp) {
		case '\\': case '=': case ':': case '#': case '!':
			r = sw_buf_add(out, two, 2);
			break;
		case '\t': r = sw_buf_addstr(out, "\\t"); break;
		case '\n': r = sw_buf_addstr(out, "\\n"); break;
		case '\r': r = sw_buf_addstr(out, "\\r"); break;
		case '\f': r = sw_buf_addstr(out, "\\f"); break;
		case ' ':
			r = is_key || i == 0 ? sw_buf_add(out, two, 2) : sw_buf_add(out, " ", 1);
			break;
		default:
			if (cp >= 0x20 && cp <= 0x7e) {
				two[0] = (char)cp;
				r = sw_buf_add(out, two, 1);
			} else if (cp < 0x10000) {
				r = add_u_escape(out, cp);
			} else {
				r = add_u_escape(out, 0xd800 + ((cp - 0x10000) >> 10));
				if (r == 0)
					r = add_u_escape(out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
			}
			break;
		}
		if (r < 0)
			return r;
		i += k;
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
