/*
 * The .ova.meta file: a Java properties file, the commit record of a
 * new-format object.  The reader (common/props.c) accepts everything
 * java.util.Properties.load accepts (comments, three separators, escapes,
 * \uXXXX, continuation lines, any key order, ISO-8859-1 bytes) because
 * CloudStack's management server and older SSVMs write these files too and
 * CloudStack reads ours with Properties.load; a meta an earlier snapworker
 * wrote in raw UTF-8 is still read as UTF-8 (sw_props_limits.legacy_utf8).
 * This file checks the keys, and the writer emits exactly the keys and
 * order CloudStack writes, escaped as Properties.store escapes them.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"
#include "common/num.h"
#include "common/path.h"
#include "common/props.h"
#include "ovastore/ova_int.h"

/* Largest disk size we accept: what fits in off_t. */
#define META_SIZE_MAX ((uint64_t)INT64_MAX)

/*
 * Parses the properties grammar (common/props.c) and moves the entries into
 * mt->keys, which the named fields of mt then point into.
 */
static int
parse_entries(struct ova_meta *mt, const void *buf, size_t len, struct sw_err *e)
{
	static const struct sw_props_limits lim = { "meta", OVA_META_MAX, OVA_META_MAX_KEYS, 1 };
	struct sw_props pp = { 0, NULL };
	size_t i;
	int r;

	if ((r = sw_props_parse(buf, len, &lim, &pp, e)) < 0)
		return r;
	if (pp.n > 0 && (mt->keys = calloc(pp.n, sizeof(*mt->keys))) == NULL) {
		sw_props_free(&pp);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	for (i = 0; i < pp.n; i++) {
		mt->keys[i].key = pp.v[i].key;
		mt->keys[i].value = pp.v[i].value;
		mt->keys[i].line = pp.v[i].line;
	}
	mt->nkeys = pp.n;
	free(pp.v);
	return 0;
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

/* member: the name of a file of the object (not ova.filename, which is NAME.ova). */
static int
check_name_kv(const struct ova_meta_kv *kv, int member, struct sw_err *e)
{
	struct sw_err pe;

	sw_err_clear(&pe);
	if (sw_name_check(kv->value, &pe) < 0 ||
	    (member ? ova__member_reserved(kv->value) : ova__name_reserved(kv->value)))
		return sw_errf(e, SW_EFORMAT, "meta line %u: key '%s': unsafe file name (%s)",
		    kv->line, kv->key, pe.code ? pe.msg : OVA__RESERVED_WHY);
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
		if ((r = check_name_kv(kv, 0, e)) < 0)
			return r;
		mt->ova_filename = kv->value;
	}
	if ((r = need_key(mt, "ovf", &kv, e)) < 0)
		return r;
	if ((r = check_name_kv(kv, 1, e)) < 0)
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
		if ((r = check_name_kv(kv, 1, e)) < 0)
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
				if (sw_hexval((unsigned char)kv->value[h]) < 0)
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

int
ova_meta_format(const struct ova_meta *m, struct sw_buf *out, struct sw_err *e)
{
	char key[64], num[32];
	size_t i, start = out->len;
	int r;

	if (m->ovf == NULL || m->ndisks == 0 || m->ndisks > OVA_MAX_DISKS)
		return sw_errf(e, SW_EINTERNAL, "meta: incomplete description");
	if (m->ova_filename != NULL && (r = sw_props_add_entry(out, "ova.filename", m->ova_filename)) < 0)
		goto fail;
	if ((r = sw_props_add_entry(out, "version", "1.0")) < 0 || (r = sw_props_add_entry(out, "ovf", m->ovf)) < 0)
		goto fail;
	(void)snprintf(num, sizeof(num), "%zu", m->ndisks);
	if ((r = sw_props_add_entry(out, "numDisks", num)) < 0)
		goto fail;
	for (i = 0; i < m->ndisks; i++) {
		(void)snprintf(key, sizeof(key), "disk%zu.name", i + 1);
		if ((r = sw_props_add_entry(out, key, m->disks[i].name)) < 0)
			goto fail;
		(void)snprintf(key, sizeof(key), "disk%zu.size", i + 1);
		(void)snprintf(num, sizeof(num), "%llu", (unsigned long long)m->disks[i].size);
		if ((r = sw_props_add_entry(out, key, num)) < 0)
			goto fail;
		if (m->disks[i].sha256[0] != '\0') {
			(void)snprintf(key, sizeof(key), "disk%zu.sha256", i + 1);
			if ((r = sw_props_add_entry(out, key, m->disks[i].sha256)) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	out->len = start; /* leave out as it was */
	if (out->ptr != NULL)
		out->ptr[start] = '\0';
	if (r == SW_EFORMAT)
		return sw_errf(e, r, "meta: a file name is not well-formed UTF-8 (a Java properties "
		    "file carries Unicode text)");
	return sw_errf(e, r, "meta: formatting failed");
}
