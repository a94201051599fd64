/*
 * The .ova.meta file: a Java properties file, the commit record of a
 * new-format object.  The reader accepts everything java.util.Properties
 * accepts that can occur in practice (comments, three separators, escapes,
 * continuation lines, any key order) because CloudStack's management server
 * and older SSVMs write these files too; the writer emits exactly the keys
 * and order CloudStack writes.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

/* Largest disk size we accept: what fits in off_t. */
#define META_SIZE_MAX ((uint64_t)INT64_MAX)

struct mparse {
	const unsigned char *p;
	size_t len;
	size_t pos;
	unsigned line;           /* current natural line (1-based) */
};

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends code point cp as UTF-8 (a \uXXXX escape). */
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
 * Reads one key or value of the current logical line into out, unescaping,
 * and following continuation lines.  For a key (is_key) it stops before an
 * unescaped separator; a value runs to the end of the logical line.
 */
static int
read_token(struct mparse *m, int is_key, struct sw_buf *out, unsigned start_line,
    struct sw_err *e)
{
	int r;

	while (m->pos < m->len) {
		unsigned char c = m->p[m->pos];

		if (c == '\n' || c == '\r')
			return 0;
		if (is_key && (c == '=' || c == ':' || is_ws(c)))
			return 0;
		if (c == '\0')
			return sw_errf(e, SW_EFORMAT, "meta line %u: NUL byte", m->line);
		if (c != '\\') {
			if ((r = sw_buf_add(out, &c, 1)) < 0)
				goto toobig;
			m->pos++;
			continue;
		}
		/* A backslash: an escape or a line continuation. */
		m->pos++;
		if (m->pos >= m->len)
			return 0; /* a trailing backslash at end of file is dropped, as Java does */
		c = m->p[m->pos];
		if (c == '\n' || c == '\r') {
			/* Continuation: skip the line end and the next line's leading blanks. */
			if (c == '\r' && m->pos + 1 < m->len && m->p[m->pos + 1] == '\n')
				m->pos++;
			m->pos++;
			m->line++;
			while (m->pos < m->len && is_ws(m->p[m->pos]))
				m->pos++;
			continue;
		}
		m->pos++;
		switch (c) {
		case 't': c = '\t'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 'f': c = '\f'; break;
		case 'u': {
			unsigned cp = 0;
			int i, h;

			for (i = 0; i < 4; i++) {
				if (m->pos >= m->len || (h = hexval(m->p[m->pos])) < 0)
					return sw_errf(e, SW_EFORMAT,
					    "meta line %u: malformed \\uXXXX escape", m->line);
				cp = cp * 16 + (unsigned)h;
				m->pos++;
			}
			if (cp == 0)
				return sw_errf(e, SW_EFORMAT, "meta line %u: \\u0000 escape",
				    start_line);
			if ((r = add_utf8(out, cp)) < 0)
				goto toobig;
			continue;
		}
		case '\0':
			return sw_errf(e, SW_EFORMAT, "meta line %u: NUL byte", m->line);
		default:
			break; /* \X is X, which covers \=, \:, \space, \\, \#, \! */
		}
		if ((r = sw_buf_add(out, &c, 1)) < 0)
			goto toobig;
	}
	return 0;
toobig:
	return sw_errf(e, r, "meta line %u: entry too long", start_line);
}

static void
skip_line_end(struct mparse *m)
{
	if (m->pos < m->len && m->p[m->pos] == '\r')
		m->pos++;
	if (m->pos < m->len && m->p[m->pos] == '\n')
		m->pos++;
	m->line++;
}

static int
add_kv(struct ova_meta *mt, struct sw_buf *k, struct sw_buf *v, unsigned line,
    struct sw_err *e)
{
	struct ova_meta_kv *kv;

	if (mt->nkeys >= OVA_META_MAX_KEYS)
		return sw_errf(e, SW_ETOOBIG, "meta line %u: more than %d entries", line,
		    OVA_META_MAX_KEYS);
	kv = realloc(mt->keys, (mt->nkeys + 1) * sizeof(*kv));
	if (kv == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	mt->keys = kv;
	kv = &mt->keys[mt->nkeys];
	kv->key = sw_buf_steal(k, NULL);
	kv->value = sw_buf_steal(v, NULL);
	kv->line = line;
	if (kv->key == NULL || kv->value == NULL) {
		free(kv->key);
		free(kv->value);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	mt->nkeys++;
	return 0;
}

/* Splits the text into entries (the properties grammar only). */
static int
parse_entries(struct ova_meta *mt, const void *buf, size_t len, struct sw_err *e)
{
	struct mparse m = { buf, len, 0, 1 };
	struct sw_buf k = SW_BUF_INIT(OVA_META_MAX), v = SW_BUF_INIT(OVA_META_MAX);
	int r = 0;

	while (m.pos < m.len) {
		unsigned start;

		while (m.pos < m.len && is_ws(m.p[m.pos]))
			m.pos++;
		if (m.pos >= m.len)
			break;
		if (m.p[m.pos] == '\n' || m.p[m.pos] == '\r') {
			skip_line_end(&m);
			continue;
		}
		if (m.p[m.pos] == '#' || m.p[m.pos] == '!') {
			/* A comment runs to the end of its natural line; no continuation. */
			while (m.pos < m.len && m.p[m.pos] != '\n' && m.p[m.pos] != '\r') {
				if (m.p[m.pos] == '\0') {
					r = sw_errf(e, SW_EFORMAT, "meta line %u: NUL byte", m.line);
					goto out;
				}
				m.pos++;
			}
			skip_line_end(&m);
			continue;
		}
		start = m.line;
		sw_buf_reset(&k);
		sw_buf_reset(&v);
		if ((r = read_token(&m, 1, &k, start, e)) < 0)
			goto out;
		/* Separator: blanks, then at most one '=' or ':', then blanks. */
		while (m.pos < m.len && is_ws(m.p[m.pos]))
			m.pos++;
		if (m.pos < m.len && (m.p[m.pos] == '=' || m.p[m.pos] == ':')) {
			m.pos++;
			while (m.pos < m.len && is_ws(m.p[m.pos]))
				m.pos++;
		}
		if ((r = read_token(&m, 0, &v, start, e)) < 0)
			goto out;
		skip_line_end(&m);
		if ((r = add_kv(mt, &k, &v, start, e)) < 0)
			goto out;
	}
out:
	sw_buf_free(&k);
	sw_buf_free(&v);
	return r;
}

static const struct ova_meta_kv *
find_kv(const struct ova_meta *m, const char *key)
{
	size_t i;

	/* The last occurrence wins, as in java.util.Properties. */
	for (i = m->nkeys; i > 0; i--)
		if (strcmp(m->keys[i - 1].key, key) == 0)
			return &m->keys[i - 1];
	return NULL;
}

const char *
ova_meta_get(const struct ova_meta *m, const char *key)
{
	const struct ova_meta_kv *kv;

	if (m == NULL || key == NULL)
		return NULL;
	kv = find_kv(m, key);
	return kv ? kv->value : NULL;
}

static int
need_key(const struct ova_meta *m, const char *key, const struct ova_meta_kv **ret,
    struct sw_err *e)
{
	const struct ova_meta_kv *kv = find_kv(m, key);

	if (kv == NULL)
		return sw_errf(e, SW_EFORMAT, "meta: missing key '%s'", key);
	*ret = kv;
	return 0;
}

static int
check_name_kv(const struct ova_meta_kv *kv, struct sw_err *e)
{
	struct sw_err pe;

	sw_err_clear(&pe);
	if (sw_name_check(kv->value, &pe) < 0 || ova__name_reserved(kv->value))
		return sw_errf(e, SW_EFORMAT, "meta line %u: key '%s': unsafe file name (%s)",
		    kv->line, kv->key, pe.code ? pe.msg : "reserved suffix");
	return 0;
}

static int
validate(struct ova_meta *mt, struct sw_err *e)
{
	const struct ova_meta_kv *kv;
	char key[64];
	uint64_t n;
	size_t i, j;
	int r;

	if ((r = need_key(mt, "version", &kv, e)) < 0)
		return r;
	if (strcmp(kv->value, "1") != 0 && strcmp(kv->value, "1.0") != 0)
		return sw_errf(e, SW_EUNSUPPORTED, "meta line %u: key 'version': unsupported '%.32s'",
		    kv->line, kv->value);
	mt->version = kv->value;
	if ((kv = find_kv(mt, "ova.filename")) != NULL) {
		if ((r = check_name_kv(kv, e)) < 0)
			return r;
		mt->ova_filename = kv->value;
	}
	if ((r = need_key(mt, "ovf", &kv, e)) < 0)
		return r;
	if ((r = check_name_kv(kv, e)) < 0)
		return r;
	mt->ovf = kv->value;
	if ((r = need_key(mt, "numDisks", &kv, e)) < 0)
		return r;
	if (sw_parse_u64(kv->value, 1, OVA_MAX_DISKS, &n) < 0)
		return sw_errf(e, SW_EFORMAT,
		    "meta line %u: key 'numDisks': '%.32s' is not a number in 1..%d",
		    kv->line, kv->value, OVA_MAX_DISKS);
	mt->disks = calloc((size_t)n, sizeof(*mt->disks));
	if (mt->disks == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	mt->ndisks = (size_t)n;
	for (i = 0; i < mt->ndisks; i++) {
		struct ova_meta_disk *d = &mt->disks[i];

		(void)snprintf(key, sizeof(key), "disk%zu.name", i + 1);
		if ((r = need_key(mt, key, &kv, e)) < 0)
			return r;
		if ((r = check_name_kv(kv, e)) < 0)
			return r;
		d->name = kv->value;
		if (strcmp(d->name, mt->ovf) == 0)
			return sw_errf(e, SW_EFORMAT, "meta line %u: key '%s': same file as 'ovf'",
			    kv->line, key);
		for (j = 0; j < i; j++)
			if (strcmp(mt->disks[j].name, d->name) == 0)
				return sw_errf(e, SW_EFORMAT,
				    "meta line %u: key '%s': file '%s' listed twice", kv->line, key,
				    d->name);
		(void)snprintf(key, sizeof(key), "disk%zu.size", i + 1);
		if ((r = need_key(mt, key, &kv, e)) < 0)
			return r;
		if (sw_parse_u64(kv->value, 0, META_SIZE_MAX, &d->size) < 0)
			return sw_errf(e, SW_EFORMAT,
			    "meta line %u: key '%s': '%.32s' is not a non-negative size", kv->line,
			    key, kv->value);
		(void)snprintf(key, sizeof(key), "disk%zu.sha256", i + 1);
		if ((kv = find_kv(mt, key)) != NULL) {
			size_t h;

			if (strlen(kv->value) != 64)
				goto badsha;
			for (h = 0; h < 64; h++) {
				if (hexval((unsigned char)kv->value[h]) < 0)
					goto badsha;
				d->sha256[h] = (char)(kv->value[h] | 0x20); /* lower case */
			}
			d->sha256[64] = '\0';
		}
	}
	return 0;
badsha:
	return sw_errf(e, SW_EFORMAT, "meta line %u: key '%s': not 64 hex digits", kv->line, key);
}

int
ova_meta_parse(const void *buf, size_t len, struct ova_meta **ret_meta, struct sw_err *e)
{
	struct ova_meta *mt;
	int r;

	if (len > OVA_META_MAX)
		return sw_errf(e, SW_ETOOBIG, "meta: larger than %d bytes", OVA_META_MAX);
	if ((mt = calloc(1, sizeof(*mt))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	if ((r = parse_entries(mt, buf, len, e)) < 0 || (r = validate(mt, e)) < 0) {
		ova_meta_free(mt);
		return r;
	}
	*ret_meta = mt;
	return 0;
}

void
ova_meta_free(struct ova_meta *m)
{
	size_t i;

	if (m == NULL)
		return;
	/* The named fields point into keys[]. */
	for (i = 0; i < m->nkeys; i++) {
		free(m->keys[i].key);
		free(m->keys[i].value);
	}
	free(m->keys);
	free(m->disks);
	free(m);
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
		if (p == (const unsigned char *)s && !is_key && (*p == '#' || *p == '!'))
			esc = NULL; /* harmless in a value: only a line start is a comment */
		r = esc ? sw_buf_addstr(out, esc) : sw_buf_add(out, p, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

int
ova__meta_add_entry(struct sw_buf *out, const char *key, const char *value)
{
	int r;

	if ((r = add_escaped(out, key, 1)) < 0 || (r = sw_buf_addstr(out, "=")) < 0 ||
	    (r = add_escaped(out, value, 0)) < 0 || (r = sw_buf_addstr(out, "\n")) < 0)
		return r;
	return 0;
}

int
ova_meta_format(const struct ova_meta *m, struct sw_buf *out, struct sw_err *e)
{
	char key[64], num[32];
	size_t i, start = out->len;
	int r;

	if (m->ovf == NULL || m->ndisks == 0 || m->ndisks > OVA_MAX_DISKS)
		return sw_errf(e, SW_EINTERNAL, "meta: incomplete description");
	if (m->ova_filename != NULL && (r = ova__meta_add_entry(out, "ova.filename", m->ova_filename)) < 0)
		goto fail;
	if ((r = ova__meta_add_entry(out, "version", "1.0")) < 0 || (r = ova__meta_add_entry(out, "ovf", m->ovf)) < 0)
		goto fail;
	(void)snprintf(num, sizeof(num), "%zu", m->ndisks);
	if ((r = ova__meta_add_entry(out, "numDisks", num)) < 0)
		goto fail;
	for (i = 0; i < m->ndisks; i++) {
		(void)snprintf(key, sizeof(key), "disk%zu.name", i + 1);
		if ((r = ova__meta_add_entry(out, key, m->disks[i].name)) < 0)
			goto fail;
		(void)snprintf(key, sizeof(key), "disk%zu.size", i + 1);
		(void)snprintf(num, sizeof(num), "%llu", (unsigned long long)m->disks[i].size);
		if ((r = ova__meta_add_entry(out, key, num)) < 0)
			goto fail;
		if (m->disks[i].sha256[0] != '\0') {
			(void)snprintf(key, sizeof(key), "disk%zu.sha256", i + 1);
			if ((r = ova__meta_add_entry(out, key, m->disks[i].sha256)) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	out->len = start; /* leave out as it was */
	if (out->ptr != NULL)
		out->ptr[start] = '\0';
	return sw_errf(e, r, "meta: formatting failed");
}
