/* JSON access with bounds and precise messages, and small validators. */
#include "proto/proto_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"
#include "proto/proto.h"

/* Seconds of 9999-12-31T23:59:59Z + 1: ISO 8601 years have four digits here. */
#define TIME_END INT64_C(253402300800)

int
proto__fail(struct proto__err *pe, int code, const char *field, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (pe == NULL)
		return code;
	pe->code = code;
	(void)snprintf(pe->field, sizeof(pe->field), "%s", field);
	n = snprintf(pe->msg, sizeof(pe->msg), "%s: ", field);
	if (n < 0 || (size_t)n >= sizeof(pe->msg))
		return code;   /* the field path alone filled the buffer; it still names the field */
	va_start(ap, fmt);
	(void)vsnprintf(pe->msg + n, sizeof(pe->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/*
 * What the lexical pass learnt: the key count of every object, in document
 * order, and how often the top-level object names "id" and "type" (however
 * escaped): json-c keeps the last of duplicates, and a reader that answers
 * for the last id would be guessing.
 */
struct lex {
	uint32_t *counts;
	size_t n, cap;
	unsigned top_id, top_type;
};

/* Whether the JSON string whose text starts at p[i] (after the quote) decodes to want (ASCII). */
static bool
key_is(const char *p, size_t len, size_t i, const char *want)
{
	size_t k = 0;

	while (i < len && p[i] != '"') {
		unsigned ch;

		if (p[i] == '\\') {
			if (i + 1 >= len)
				return false;
			switch (p[i + 1]) {
			case 'u': {
				size_t j;

				if (i + 6 > len)
					return false;
				ch = 0;
				for (j = 2; j < 6; j++) {
					int h = sw_hexval((unsigned char)p[i + j]);

					if (h < 0)
						return false;
					ch = ch << 4 | (unsigned)h;
				}
				i += 6;
				break;
			}
			case '"': case '\\': case '/':
				ch = (unsigned char)p[i + 1];
				i += 2;
				break;
			default:
				return false;   /* \b \f \n \r \t: never in the keys asked about */
			}
		} else {
			ch = (unsigned char)p[i++];
		}
		if (want[k] == '\0' || (unsigned char)want[k] != ch)
			return false;
		k++;
	}
	return want[k] == '\0';
}

static int
lex_new_object(struct lex *lx, struct proto__err *pe)
{
	uint32_t *p;
	size_t cap;

	if (lx->n == lx->cap) {
		cap = lx->cap == 0 ? 16 : lx->cap * 2;
		p = realloc(lx->counts, cap * sizeof(*p));
		if (p == NULL)
			return proto__fail(pe, -ENOMEM, "body", "out of memory");
		lx->counts = p;
		lx->cap = cap;
	}
	lx->counts[lx->n++] = 0;
	return 0;
}

/*
 * json-c's strict mode still takes 'single-quoted' strings, NaN, Infinity
 * and raw control characters inside strings, and it silently keeps the last
 * of duplicate keys.  Outside strings JSON has only structure, numbers and
 * the three literals, so one pass over the bytes refuses the rest before
 * json-c sees them, and counts the keys of every object so that
 * check_dups() can tell when json-c merged two of them.
 */
static int
lex_check(const char *p, size_t len, struct lex *lx, struct proto__err *pe)
{
	static const char outside[] = " \t\r\n{}[],:0123456789+-.eEtruefalsn\"";
	size_t stack[PROTO_DEPTH_MAX];   /* per open container: object index, or SIZE_MAX */
	size_t depth = 0, i;
	bool in_str = false, expect_key = false;
	int r;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (in_str) {
			if (c < 0x20)
				return proto__fail(pe, SW_EFORMAT, "body",
				    "not valid JSON: control character in a string at offset %zu", i);
			if (c == '\\')
				i++;   /* the escaped byte cannot end the string */
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (strchr(outside, c) == NULL)
			return proto__fail(pe, SW_EFORMAT, "body",
			    "not valid JSON: unexpected character at offset %zu", i);
		switch (c) {
		case '"':
			in_str = true;
			if (expect_key && depth > 0 && stack[depth - 1] != SIZE_MAX) {
				lx->counts[stack[depth - 1]]++;
				if (depth == 1 && key_is(p, len, i + 1, "id"))
					lx->top_id++;
				if (depth == 1 && key_is(p, len, i + 1, "type"))
					lx->top_type++;
			}
			expect_key = false;
			break;
		case '{':
		case '[':
			if (depth == PROTO_DEPTH_MAX)
				return proto__fail(pe, SW_EFORMAT, "body", "nested deeper than %d levels",
				    PROTO_DEPTH_MAX);
			if (c == '{') {
				if ((r = lex_new_object(lx, pe)) < 0)
					return r;
				stack[depth++] = lx->n - 1;
			} else {
				stack[depth++] = SIZE_MAX;
			}
			expect_key = c == '{';
			break;
		case '}':
		case ']':
			if (depth > 0)
				depth--;
			expect_key = false;
			break;
		case ',':
			expect_key = depth > 0 && stack[depth - 1] != SIZE_MAX;
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			break;
		default:
			expect_key = false;
			break;
		}
	}
	return 0;
}

/* Appends ".key" (or "key" at the top, "[i]" for arrays) to path, cut short when it does not fit. */
static void
path_push(char *path, size_t pathsz, size_t at, const char *key, size_t idx)
{
	size_t i, o = at;

	if (at >= pathsz - 1)
		return;
	if (key == NULL) {
		(void)snprintf(path + at, pathsz - at, "[%zu]", idx);
		return;
	}
	if (at > 0)
		path[o++] = '.';
	/* Keys are the publisher's: only plain characters go into a message. */
	for (i = 0; key[i] != '\0' && o < pathsz - 1; i++)
		path[o++] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i] : '?';
	path[o] = '\0';
}

/* Compares json-c's objects, in document order, with the key counts lexed from the text. */
static int
check_dups(json_object *o, const struct lex *lx, size_t *next, char *path, size_t pathsz,
    struct proto__err *pe)
{
	size_t at = strlen(path), i, n;
	int r;

	if (json_object_is_type(o, json_type_object)) {
		i = (*next)++;
		if (i >= lx->n || (size_t)json_object_object_length(o) != lx->counts[i])
			return proto__fail(pe, SW_EFORMAT, at > 0 ? path : "body",
			    "object has a duplicate key");
		json_object_object_foreach(o, key, val) {
			path_push(path, pathsz, at, key, 0);
			r = check_dups(val, lx, next, path, pathsz, pe);
			path[at] = '\0';
			if (r < 0)
				return r;
		}
	} else if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			path_push(path, pathsz, at, NULL, i);
			r = check_dups(json_object_array_get_idx(o, i), lx, next, path, pathsz, pe);
			path[at] = '\0';
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int
proto__json_parse(const void *body, size_t len, json_object **ret, json_object **ret_salvage,
    struct proto__err *pe)
{
	struct json_tokener *tok;
	json_object *root = NULL;
	enum json_tokener_error jerr;
	struct lex lx = { NULL, 0, 0, 0, 0 };
	char path[sizeof(pe->field)];
	size_t end, bad, next = 0;
	int r;

	if (len > PROTO_BODY_MAX)
		return proto__fail(pe, SW_ETOOBIG, "body", "larger than %d bytes", PROTO_BODY_MAX);
	if (len == 0 || body == NULL)
		return proto__fail(pe, SW_EFORMAT, "body", "empty");
	/*
	 * JSON text never holds a raw NUL (strings must escape it), and json-c
	 * stops at one and reports success for what came before: refuse it here
	 * so nothing after a NUL can hide from validation.
	 */
	if (memchr(body, '\0', len) != NULL)
		return proto__fail(pe, SW_EFORMAT, "body", "contains a NUL byte at offset %zu",
		    (size_t)((const char *)memchr(body, '\0', len) - (const char *)body));
	/* json-c's own check lets overlong forms, surrogates and values past U+10FFFF through. */
	bad = proto__utf8_invalid_at(body, len);
	if (bad != len)
		return proto__fail(pe, SW_EFORMAT, "body", "not valid UTF-8 at offset %zu", bad);
	if ((r = lex_check(body, len, &lx, pe)) < 0)
		goto out;
	tok = json_tokener_new_ex(PROTO_DEPTH_MAX);
	if (tok == NULL) {
		r = proto__fail(pe, -ENOMEM, "body", "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* len <= PROTO_BODY_MAX, so the int conversion json-c wants is exact. */
	root = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (root == NULL || jerr != json_tokener_success) {
		json_object_put(root);
		root = NULL;
		if (jerr == json_tokener_continue)
			r = proto__fail(pe, SW_EFORMAT, "body", "not valid JSON: unexpected end of data");
		else if (jerr == json_tokener_error_depth)
			r = proto__fail(pe, SW_EFORMAT, "body", "nested deeper than %d levels",
			    PROTO_DEPTH_MAX);
		else
			r = proto__fail(pe, SW_EFORMAT, "body", "not valid JSON: %s at offset %zu",
			    json_tokener_error_desc(jerr), end);
		goto out;
	}
	/* Strict mode already refuses trailing garbage; this keeps it so if json-c changes. */
	while (end < len && strchr(" \t\r\n", ((const char *)body)[end]) != NULL)
		end++;
	if (end != len) {
		r = proto__fail(pe, SW_EFORMAT, "body",
		    "not valid JSON: data after the value at offset %zu", end);
		goto out;
	}
	path[0] = '\0';
	if ((r = check_dups(root, &lx, &next, path, sizeof(path), pe)) < 0) {
		/*
		 * Two ids: which one the publisher meant is a guess, so there
		 * is no id to answer for.  Two types: the answer has no type.
		 */
		if (lx.top_id > 1) {
			r = proto__fail(pe, SW_EFORMAT, "id", "given more than once");
			goto out;
		}
		if (lx.top_type > 1) {
			r = proto__fail(pe, SW_EFORMAT, "type", "given more than once");
			json_object_object_del(root, "type");
		}
		if (ret_salvage != NULL) {
			*ret_salvage = root;
			root = NULL;
		}
		goto out;
	}
	*ret = root;
	root = NULL;
out:
	json_object_put(root);
	free(lx.counts);
	return r;
}

json_object *
proto__member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;   /* JSON null is NULL too */
}

int
proto__get_str(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    size_t maxlen, bool required, bool no_ctl, const char **ret)
{
	json_object *v = proto__member(obj, key);
	const char *s;
	size_t n;

	if (v == NULL) {
		if (required) {
			if (json_object_object_get_ex(obj, key, NULL))
				return proto__fail(pe, SW_EFORMAT, field, "must be a string");
			return proto__fail(pe, SW_EFORMAT, field, "missing");
		}
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return proto__fail(pe, SW_EFORMAT, field, "must be a string");
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0)
		return proto__fail(pe, SW_EFORMAT, field, "must not be empty");
	if (n > maxlen)
		return proto__fail(pe, SW_EFORMAT, field, "longer than %zu bytes", maxlen);
	/* An escaped \u0000 would cut the C string short of what was validated. */
	if (memchr(s, '\0', n) != NULL)
		return proto__fail(pe, SW_EFORMAT, field, "must not contain a NUL character");
	if (no_ctl && proto__has_ctl(s, n))
		return proto__fail(pe, SW_EFORMAT, field, "must not contain control characters");
	*ret = s;
	return 0;
}

int
proto__get_int(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    int64_t min, int64_t max, const char *what, bool required, int64_t *ret, bool *ret_present)
{
	json_object *v = proto__member(obj, key);
	int64_t i;

	if (v == NULL) {
		if (required) {
			if (json_object_object_get_ex(obj, key, NULL))
				return proto__fail(pe, SW_EFORMAT, field, "must be %s", what);
			return proto__fail(pe, SW_EFORMAT, field, "missing");
		}
		if (ret_present != NULL)
			*ret_present = false;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return proto__fail(pe, SW_EFORMAT, field, "must be %s", what);
	i = json_object_get_int64(v);
	/*
	 * json-c clamps instead of failing: a value past INT64_MAX reads as
	 * INT64_MAX (its uint64 view tells), one below INT64_MIN as INT64_MIN.
	 */
	if ((i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) || i == INT64_MIN ||
	    i < min || i > max)
		return proto__fail(pe, SW_EFORMAT, field, "must be %s", what);
	*ret = i;
	if (ret_present != NULL)
		*ret_present = true;
	return 0;
}

int
proto__get_obj(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    bool required, json_object **ret)
{
	json_object *v = proto__member(obj, key);

	if (v == NULL) {
		if (required) {
			if (json_object_object_get_ex(obj, key, NULL))
				return proto__fail(pe, SW_EFORMAT, field, "must be an object");
			return proto__fail(pe, SW_EFORMAT, field, "missing");
		}
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_object))
		return proto__fail(pe, SW_EFORMAT, field, "must be an object");
	*ret = v;
	return 0;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool
proto__is_uuid(const char *s)
{
	size_t i;

	if (s == NULL || strnlen(s, PROTO_UUID_LEN + 1) != PROTO_UUID_LEN)
		return false;
	for (i = 0; i < PROTO_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_hex(s[i])) {
			return false;
		}
	}
	return true;
}

bool
proto__has_ctl(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t
proto__utf8_invalid_at(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = utf8_seq((const unsigned char *)s + i, n - i);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

char *
proto__utf8_sanitize(const char *s, size_t max)
{
	size_t n = strnlen(s, max), i = 0, o = 0, k;
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	while (i < n) {
		k = utf8_seq((const unsigned char *)s + i, n - i);
		if (k == 0) {
			size_t avail = strnlen(s + i, 4);

			/* A valid character cut by the length limit is dropped, not marked. */
			if (avail > n - i && utf8_seq((const unsigned char *)s + i, avail) != 0)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* n decimal digits at s; -1 when one is not a digit. */
static int
digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
proto__time_parse(const char *s, int64_t *ret)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, se;
	int64_t t;

	if (s == NULL || strnlen(s, 21) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -EINVAL;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	se = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] || h < 0 ||
	    h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
		return -EINVAL;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -EINVAL;
	t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
	*ret = t;
	return 0;
}

int
proto__time_format(int64_t t, char *buf, size_t bufsz)
{
	int64_t y, days, secs;
	unsigned m, d;
	int n;

	if (t < 0 || t >= TIME_END)
		return -EINVAL;
	days = t / 86400;
	secs = t % 86400;
	civil_from_days(days, &y, &m, &d);
	n = snprintf(buf, bufsz, "%04d-%02u-%02uT%02d:%02d:%02dZ", (int)y, m, d, (int)(secs / 3600),
	    (int)(secs / 60 % 60), (int)(secs % 60));
	if (n < 0 || (size_t)n >= bufsz)
		return -ENAMETOOLONG;
	return 0;
}
