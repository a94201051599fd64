/*
 * OVF manifests (NAME.mf): one "ALG(file)= hex" line per file, SHA1 or
 * SHA256.  The unpack of a download checks its manifest on the way
 * (unpack.c); an archive already on the share, a legacy NAME.ova, is checked
 * here against its members' data, so that a legacy object is trusted no more
 * than a download.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/io.h"
#include "ovastore/ova_int.h"

#define MF_MAX (1024 * 1024)
#define MF_READ_BUF (1024 * 1024)

int
ova__mf_next(const char *text, size_t *pos, unsigned *line, struct ova__mf_entry *ent,
    struct sw_err *e)
{
	const char *p, *nl;

	for (p = text + *pos; *p != '\0'; p = nl ? nl + 1 : p + strlen(p)) {
		char l[512];
		const char *lp, *rp, *eq, *v;
		size_t n, i;

		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		(*line)++;
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		if (n >= sizeof(l))
			return sw_errf(e, SW_EFORMAT, "manifest line %u: too long", *line);
		memcpy(l, p, n);
		l[n] = '\0';
		lp = strchr(l, '(');
		rp = strrchr(l, ')');
		eq = rp ? strchr(rp, '=') : NULL;
		if (lp == NULL || rp == NULL || eq == NULL || rp < lp)
			return sw_errf(e, SW_EFORMAT, "manifest line %u: not 'ALG(name)= digest'", *line);
		n = (size_t)(lp - l);
		while (n > 0 && l[n - 1] == ' ')
			n--;
		if (n == 0 || n >= sizeof(ent->alg) || (size_t)(rp - lp - 1) >= sizeof(ent->name) ||
		    rp == lp + 1)
			return sw_errf(e, SW_EFORMAT, "manifest line %u: malformed", *line);
		memcpy(ent->alg, l, n);
		ent->alg[n] = '\0';
		memcpy(ent->name, lp + 1, (size_t)(rp - lp - 1));
		ent->name[rp - lp - 1] = '\0';
		for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (strlen(v) >= sizeof(ent->hex))
			return sw_errf(e, SW_EFORMAT, "manifest line %u: digest too long", *line);
		for (i = 0; v[i] != '\0'; i++)
			ent->hex[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + 32 : v[i]);
		ent->hex[i] = '\0';
		ent->line = *line;
		*pos = nl ? (size_t)(nl + 1 - text) : (size_t)(p + strlen(p) - text);
		return 1;
	}
	*pos = (size_t)(p - text);
	return 0;
}

int
ova__mf_alg(const struct ova__mf_entry *ent, struct sw_err *e)
{
	if (strcmp(ent->alg, "SHA1") == 0)
		return 1;
	if (strcmp(ent->alg, "SHA256") == 0)
		return 256;
	return sw_errf(e, SW_EUNSUPPORTED, "manifest line %u: digest '%s' not supported",
	    ent->line, ent->alg);
}

/* The digest (alg "sha1"/"sha256", hex) of len bytes of fd at off. */
static int
hash_range(int fd, uint64_t off, uint64_t len, const char *alg, unsigned char *buf, char *out,
    size_t outsz, const char *what, struct sw_err *e)
{
	struct sw_hash *h = sw_hash_new(alg);
	ssize_t n;
	size_t want;
	int r = 0;

	if (h == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	while (len > 0) {
		want = len < MF_READ_BUF ? (size_t)len : MF_READ_BUF;
		n = sw_pread_full(fd, buf, want, (off_t)off);
		if (n < 0) {
			r = sw_errno(e, (int)-n, "read '%s'", what);
			goto out;
		}
		if ((size_t)n != want) {
			r = sw_errf(e, SW_EFORMAT, "'%s': truncated", what);
			goto out;
		}
		if (sw_hash_update(h, buf, want) < 0) {
			r = sw_errf(e, SW_EINTERNAL, "digest failed");
			goto out;
		}
		off += want;
		len -= want;
	}
	if (sw_hash_final(h, out, outsz) < 0)
		r = sw_errf(e, SW_EINTERNAL, "digest failed");
out:
	sw_hash_free(h);
	return r;
}

static int
ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int
ova__mf_check_archive(int fd, const struct ova_tar_index *t, const char *what,
    struct sw_err *e)
{
	const struct ova_tar_member *mf = NULL, *m;
	struct ova__mf_entry ent;
	unsigned char *buf = NULL;
	char *text = NULL, have[OVA_SHA256_HEX];
	size_t i, pos = 0;
	unsigned line = 0;
	ssize_t n;
	int r, alg;

	for (i = 0; i < t->n; i++) {
		if (!ends_with_ci(t->members[i].name, ".mf"))
			continue;
		if (mf != NULL)
			return sw_errf(e, SW_EFORMAT, "'%s': two manifests", what);
		mf = &t->members[i];
	}
	if (mf == NULL)
		return 0;
	if (mf->size > MF_MAX)
		return sw_errf(e, SW_ETOOBIG, "'%s': manifest larger than %d bytes", what, MF_MAX);
	if ((text = malloc((size_t)mf->size + 1)) == NULL ||
	    (buf = malloc(MF_READ_BUF)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	n = sw_pread_full(fd, text, (size_t)mf->size, (off_t)mf->offset);
	if (n < 0 || (uint64_t)n != mf->size) {
		r = n < 0 ? sw_errno(e, (int)-n, "read '%s'", what) :
		    sw_errf(e, SW_EFORMAT, "'%s': truncated", what);
		goto out;
	}
	text[mf->size] = '\0';
	if (memchr(text, '\0', (size_t)mf->size) != NULL) {
		r = sw_errf(e, SW_EFORMAT, "'%s': manifest '%s' is not text", what, mf->name);
		goto out;
	}
	while ((r = ova__mf_next(text, &pos, &line, &ent, e)) == 1) {
		if ((alg = ova__mf_alg(&ent, e)) < 0) {
			r = alg;
			goto out;
		}
		if ((m = ova_tar_find(t, ent.name)) == NULL) {
			r = sw_errf(e, SW_EFORMAT, "'%s': manifest line %u: '%s' is not in the archive",
			    what, ent.line, ent.name);
			goto out;
		}
		if ((r = hash_range(fd, m->offset, m->size, alg == 1 ? "sha1" : "sha256", buf, have,
		    sizeof(have), what, e)) < 0)
			goto out;
		if (strcmp(have, ent.hex) != 0) {
			r = sw_errf(e, SW_ECHECKSUM, "'%s': member '%s' does not match its %s in the "
			    "manifest", what, ent.name, ent.alg);
			goto out;
		}
	}
out:
	free(text);
	free(buf);
	return r;
}
