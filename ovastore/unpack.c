/*
 * Unpacking an OVA into the new format in one streaming pass: libarchive
 * parses the tar from the caller's source (a file, a pipe, an HTTP download)
 * and each member's data goes straight into the writer's temporaries.  The
 * manifest is checked before the commit, so a mismatch leaves nothing.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/log.h"
#include "common/path.h"
#include "ovastore/ova_int.h"
#include "ovastore/tar_int.h"

#define UNPACK_BUF (1024 * 1024)
#define MF_MAX (1024 * 1024)
/* What may follow the end-of-archive blocks (record padding, usually < 10 KiB). */
#define TRAILER_MAX (1024 * 1024)

/* What we know of each member for the manifest check. */
struct mdigest {
	char name[OVA_TAR_MAX_NAME + 1];
	char sha1[41];
	char sha256[OVA_SHA256_HEX];
	int stored;                /* written through the writer */
	const char *wname;         /* the name the writer stores it under, or NULL */
};

struct unpack {
	struct sw_source *src;
	unsigned char *buf;
	struct sw_err src_err;
	int src_failed;
	struct mdigest *dig;
	size_t ndig;
	struct sw_buf mf;
	int have_mf;
	int mf_sha1, mf_sha256;    /* algorithms the manifest uses */
};

static ssize_t
cb_read(struct archive *a, void *ud, const void **ret_buf)
{
	struct unpack *u = ud;
	ssize_t n;

	n = u->src->read(u->src->ud, u->buf, UNPACK_BUF, &u->src_err);
	if (n < 0) {
		u->src_failed = 1;
		archive_set_error(a, EIO, "source: %s", u->src_err.msg);
		return -1;
	}
	*ret_buf = u->buf;
	return n;
}

/*
 * Reads the source to its end before anything is committed: a source that
 * verifies what it delivers (a download's checksum) can only refuse at its
 * end, and its refusal must still leave nothing behind.  What follows the
 * archive is bounded, so a stream cannot keep an unpack open forever.
 */
static int
drain_source(struct unpack *u, struct sw_err *e)
{
	uint64_t total = 0;
	ssize_t n;

	for (;;) {
		n = u->src->read(u->src->ud, u->buf, UNPACK_BUF, &u->src_err);
		if (n < 0)
			return sw_errf(e, u->src_err.code ? u->src_err.code : -EIO,
			    "reading the OVA: %s", u->src_err.msg);
		if (n == 0)
			return 0;
		total += (uint64_t)n;
		if (total > TRAILER_MAX)
			return sw_errf(e, SW_EFORMAT,
			    "OVA: more than %d bytes follow the end of the archive", TRAILER_MAX);
	}
}

static int
ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static struct mdigest *
add_digest(struct unpack *u, const char *name, struct sw_err *e)
{
	struct mdigest *d = realloc(u->dig, (u->ndig + 1) * sizeof(*d));

	if (d == NULL) {
		sw_errf(e, -ENOMEM, "out of memory");
		return NULL;
	}
	u->dig = d;
	d = &u->dig[u->ndig++];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name, strlen(name) + 1);
	return d;
}

/* Which digests the manifest uses; a manifest not yet seen may use either. */
static void
mf_scan_algs(struct unpack *u)
{
	const char *p = sw_buf_str(&u->mf);

	u->mf_sha1 = strstr(p, "SHA1") != NULL;
	u->mf_sha256 = strstr(p, "SHA256") != NULL;
}

/* Reads the current member's data: to the sink (may be NULL), hashing as asked. */
static int
pump(struct archive *a, struct unpack *u, const char *name, uint64_t size, struct sw_sink *sink,
    struct sw_buf *keep, struct sw_hash *h1, struct sw_hash *h256, struct sw_err *e)
{
	const void *blk;
	size_t len;
	la_int64_t off;
	uint64_t expect = 0;
	int ar, r;

	for (;;) {
		ar = archive_read_data_block(a, &blk, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			if (u->src_failed)
				return sw_errf(e, u->src_err.code ? u->src_err.code : -EIO,
				    "reading the OVA: %s", u->src_err.msg);
			return ova__tar_errf(a, e, "reading the OVA");
		}
		if (off < 0 || (uint64_t)off != expect)
			return sw_errf(e, SW_EFORMAT, "member '%s': data not contiguous", name);
		if (len == 0)
			continue;
		expect += len;
		if (h1 != NULL && sw_hash_update(h1, blk, len) < 0)
			return sw_errf(e, SW_EINTERNAL, "digest failed");
		if (h256 != NULL && sw_hash_update(h256, blk, len) < 0)
			return sw_errf(e, SW_EINTERNAL, "digest failed");
		if (keep != NULL && (r = sw_buf_add(keep, blk, len)) < 0)
			return sw_errf(e, r, "member '%s' is too large", name);
		if (sink != NULL && (r = sink->write(sink->ud, blk, len, e)) < 0)
			return r;
	}
	if (expect != size)
		return sw_errf(e, SW_EFORMAT, "member '%s': %llu of %llu bytes (truncated OVA)",
		    name, (unsigned long long)expect, (unsigned long long)size);
	return 0;
}

static int
finish_hash(struct sw_hash *h, char *out, size_t outsz, struct sw_err *e)
{
	if (h == NULL)
		return 0;
	if (sw_hash_final(h, out, outsz) < 0)
		return sw_errf(e, SW_EINTERNAL, "digest failed");
	return 0;
}

/* Checks every line of the manifest: "SHA1(name)= hex" or "SHA256(name)= hex". */
/*
 * The names the object's files get (see ova_unpack in ovastore.h): names[k]
 * for the k-th file of the OVF's References, from object obj.
 */
static int
file_names(const char *obj, const struct ova_ovf *ovf, char ***ret_names, struct sw_err *e)
{
	char dir[SW_PATH_MAX], name[SW_NAME_MAX + 1];
	char **names;
	size_t k;
	int r;

	/* The object's NAME as the store names it (a trailing .ova dropped). */
	if ((r = ova_object_split(obj, dir, sizeof(dir), name, sizeof(name), e)) < 0)
		return r;
	if ((names = calloc(ovf->nfiles + 1, sizeof(*names))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	*ret_names = names;
	for (k = 0; k < ovf->nfiles; k++) {
		const char *href = ovf->files[k].href, *dot = strrchr(href, '.');
		char ext[10] = "";
		size_t i, n = dot != NULL ? strlen(dot + 1) : 0;
		int ok = n >= 1 && n <= 8;
		int len;

		for (i = 0; ok && i < n; i++) {
			char c = dot[1 + i];

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
			ext[1 + i] = c;
		}
		if (ok) {
			ext[0] = '.';
			ext[1 + n] = '\0';
		} else {
			ext[0] = '\0';
		}
		len = strcmp(ext, ".vmdk") == 0 ?
		    asprintf(&names[k], "%s-disk%zu.vmdk", name, k) :
		    asprintf(&names[k], "%s-file%zu%s", name, k, ext);
		if (len < 0) {
			names[k] = NULL;
			return sw_errf(e, -ENOMEM, "out of memory");
		}
		if ((size_t)len > SW_NAME_MAX)
			return sw_errf(e, SW_EPATH, "object name too long for its file names");
	}
	return 0;
}

static void
names_free(char **names)
{
	size_t k;

	for (k = 0; names != NULL && names[k] != NULL; k++)
		free(names[k]);
	free(names);
}

static int
mf_verify(struct unpack *u, struct ova_writer *w, struct sw_err *e)
{
	const char *text = sw_buf_str(&u->mf), *have;
	struct ova__mf_entry ent;
	size_t pos = 0, i;
	unsigned line = 0;
	int r, alg;

	while ((r = ova__mf_next(text, &pos, &line, &ent, e)) == 1) {
		struct mdigest *d = NULL;

		for (i = 0; i < u->ndig; i++)
			if (strcmp(u->dig[i].name, ent.name) == 0)
				d = &u->dig[i];
		if (d == NULL)
			return sw_errf(e, SW_EFORMAT, "manifest line %u: '%s' is not in the OVA",
			    ent.line, ent.name);
		if ((alg = ova__mf_alg(&ent, e)) < 0)
			return alg;
		if (alg == 1) {
			have = d->sha1;
		} else {
			if (d->sha256[0] == '\0' && d->stored &&
			    (r = ova__writer_file_sha256(w, d->wname != NULL ? d->wname : ent.name,
			    d->sha256, e)) < 0)
				return r;
			have = d->sha256;
		}
		if (have[0] == '\0')
			return sw_errf(e, SW_EFORMAT,
			    "manifest line %u: the manifest comes after '%s' (OVF 1.x wants it second)",
			    ent.line, ent.name);
		if (strcmp(have, ent.hex) != 0)
			return sw_errf(e, SW_ECHECKSUM, "'%s' does not match its %s in the manifest",
			    ent.name, ent.alg);
	}
	return r;
}

int
ova_unpack(struct ova_store *s, const char *obj, struct sw_source *src, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct unpack u;
	struct archive *a = NULL;
	struct archive_entry *ent;
	struct ova_writer *w = NULL;
	struct ova_ovf *ovf = NULL;
	struct sw_buf ovfbuf = SW_BUF_INIT(OVA_OVF_MAX);
	char base[OVA_TAR_MAX_NAME + 1], **names = NULL, *newovf = NULL;
	size_t newlen = 0;
	long fk;
	unsigned count = 0, wflags;
	size_t i;
	int r, ar;

	memset(&u, 0, sizeof(u));
	sw_buf_init(&u.mf, MF_MAX);
	u.src = src;
	wflags = OVA_WRITER_SPARSE | ((flags & OVA_UNPACK_NO_SHA256) ? OVA_WRITER_NO_SHA256 : 0);
	if (flags & OVA_UNPACK_REPLACE) {
		if ((r = ova_delete(s, obj, NULL, e)) < 0)
			goto out;
	}
	if ((u.buf = malloc(UNPACK_BUF)) == NULL || (a = ova__tar_reader_new()) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (archive_read_open(a, &u, NULL, cb_read, NULL) != ARCHIVE_OK) {
		r = u.src_failed ? sw_errf(e, u.src_err.code ? u.src_err.code : -EIO,
		    "reading the OVA: %s", u.src_err.msg) : ova__tar_errf(a, e, "OVA");
		goto out;
	}
	for (;;) {
		struct sw_hash *h1 = NULL, *h256 = NULL;
		struct mdigest *d;
		struct sw_sink sink, *sp = NULL;
		struct sw_buf *keep = NULL;
		uint64_t size;
		/*
		 * OVF 1.x puts the manifest right after the descriptor; only OVF 2
		 * allows it at the end, and only then must we hash everything on
		 * the chance that one comes.
		 */
		int mf_unknown = !u.have_mf && (ovf == NULL || ovf->version == 2);

		ar = archive_read_next_header(a, &ent);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = u.src_failed ? sw_errf(e, u.src_err.code ? u.src_err.code : -EIO,
			    "reading the OVA: %s", u.src_err.msg) : ova__tar_errf(a, e, "OVA");
			goto out;
		}
		if (++count > OVA_TAR_MAX_MEMBERS) {
			r = sw_errf(e, SW_ETOOBIG, "OVA: more than %d members", OVA_TAR_MAX_MEMBERS);
			goto out;
		}
		if ((r = ova__tar_check_entry(ent, count, base, sizeof(base), e)) < 0)
			goto out;
		size = (uint64_t)archive_entry_size(ent);
		for (i = 0; i < u.ndig; i++)
			if (strcmp(u.dig[i].name, base) == 0) {
				r = sw_errf(e, SW_EFORMAT, "OVA: two members named '%s'", base);
				goto out;
			}
		if ((d = add_digest(&u, base, e)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if (count == 1) {
			if (!ends_with_ci(base, ".ovf")) {
				r = sw_errf(e, SW_EFORMAT, "OVA: the first member '%s' is not an .ovf",
				    base);
				goto out;
			}
			keep = &ovfbuf;
		} else if (ends_with_ci(base, ".mf")) {
			if (u.have_mf) {
				r = sw_errf(e, SW_EFORMAT, "OVA: two manifests");
				goto out;
			}
			keep = &u.mf;
		} else if ((fk = ova_ovf_find_file(ovf, base)) >= 0) {
			if ((r = ova_writer_disk(w, names[fk], &sink, e)) < 0)
				goto out;
			sp = &sink;
			d->stored = 1;
			d->wname = names[fk];
		} else {
			log_debug("unpack %s: member '%s' is not referenced by the OVF; not stored",
			    obj, base);
		}
		/* Digests for the manifest: those it names, or both while it is unknown. */
		if (mf_unknown || u.mf_sha1)
			h1 = sw_hash_new("sha1");
		if ((mf_unknown || u.mf_sha256) && (!d->stored || (wflags & OVA_WRITER_NO_SHA256)))
			h256 = sw_hash_new("sha256");
		r = pump(a, &u, base, size, sp, keep, h1, h256, e);
		if (r == 0 && (r = finish_hash(h1, d->sha1, sizeof(d->sha1), e)) == 0)
			r = finish_hash(h256, d->sha256, sizeof(d->sha256), e);
		sw_hash_free(h1);
		sw_hash_free(h256);
		if (r < 0)
			goto out;
		if (count == 1) {
			if ((r = ova_ovf_parse(ovfbuf.ptr ? ovfbuf.ptr : "", ovfbuf.len, &ovf, e)) < 0) {
				sw_errctx(e, "OVA member '%s'", base);
				goto out;
			}
			if (ova_ovf_find_file(ovf, base) >= 0) {
				r = sw_errf(e, SW_EFORMAT, "OVA: the OVF '%s' references itself", base);
				goto out;
			}
			/* Named after the object, the OVF's references rewritten to match. */
			if ((r = file_names(obj, ovf, &names, e)) < 0 ||
			    (r = ova_ovf_rename_files(ovfbuf.ptr, ovfbuf.len,
			    (const char *const *)names, ovf->nfiles, &newovf, &newlen, e)) < 0) {
				sw_errctx(e, "OVA member '%s'", base);
				goto out;
			}
			if ((r = ova_writer_begin(s, obj, wflags, &w, e)) < 0 ||
			    (r = ova_writer_ovf(w, NULL, newovf, newlen, e)) < 0)
				goto out;
			free(newovf);
			newovf = NULL;
			d->stored = 1;
			sw_buf_free(&ovfbuf);
		} else if (keep == &u.mf) {
			u.have_mf = 1;
			mf_scan_algs(&u);
		}
	}
	if (ovf == NULL) {
		r = sw_errf(e, SW_EFORMAT, "OVA: empty archive");
		goto out;
	}
	for (i = 0; i < ovf->nfiles; i++) {
		size_t k;

		for (k = 0; k < u.ndig; k++)
			if (strcmp(u.dig[k].name, ovf->files[i].href) == 0)
				break;
		if (k == u.ndig) {
			r = sw_errf(e, SW_EFORMAT, "OVA: the OVF references '%s', which is missing",
			    ovf->files[i].href);
			goto out;
		}
	}
	/* What the writer would refuse as a caller's mistake is the archive's fault here. */
	if (w->ndisks == 0) {
		r = sw_errf(e, SW_EFORMAT, "OVA: the OVF references no disk");
		goto out;
	}
	if (u.have_mf && (r = mf_verify(&u, w, e)) < 0)
		goto out;
	if ((r = drain_source(&u, e)) < 0)
		goto out;
	r = ova_writer_commit(w, ret_result, e);
out:
	ova_writer_free(w); /* aborts (removes every temporary) unless committed */
	if (a != NULL)
		archive_read_free(a);
	ova_ovf_free(ovf);
	names_free(names);
	free(newovf);
	sw_buf_free(&ovfbuf);
	sw_buf_free(&u.mf);
	free(u.dig);
	free(u.buf);
	return r;
}

struct fd_src {
	int fd;
};

static ssize_t
fd_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct fd_src *f = ud;
	ssize_t r;

	for (;;) {
		r = read(f->fd, p, n);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return sw_errno(e, errno, "read");
	}
}

int
ova_unpack_fd(struct ova_store *s, const char *obj, int fd, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct fd_src f = { fd };
	struct sw_source src = { fd_read, &f };

	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return ova_unpack(s, obj, &src, flags, ret_result, e);
}
