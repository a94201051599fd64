/*
 * Reading one file of an object as a stream (a legacy member by its offset
 * in the .ova, without extracting anything), and copying an object to
 * another store with the same commit discipline as the writer.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

struct ova_reader {
	int fd;
	uint64_t off;      /* data offset in fd */
	uint64_t size;
	uint64_t pos;      /* bytes handed out */
};

static ssize_t
reader_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct ova_reader *r = ud;
	ssize_t got;

	if (r->pos >= r->size)
		return 0;
	if (n > r->size - r->pos)
		n = (size_t)(r->size - r->pos);
	got = sw_pread_full(r->fd, p, n, (off_t)(r->off + r->pos));
	if (got < 0)
		return sw_errno(e, (int)-got, "read");
	if ((size_t)got != n)
		return sw_errf(e, SW_EFORMAT, "file ends %llu bytes early",
		    (unsigned long long)(r->size - r->pos - (uint64_t)got));
	r->pos += (uint64_t)got;
	return got;
}

static int
reader_open_at(struct ova_store *s, const struct ova_info *in, const char *file, uint64_t off,
    uint64_t size, struct ova_reader **ret, struct sw_err *e)
{
	struct ova__obj o;
	struct ova_reader *rd;
	char ova[SW_NAME_MAX + 1];
	struct stat st;
	int fd, r;

	if ((r = ova__obj_open(s, in->install_path, 0, &o, e)) < 0)
		return r;
	if (o.dirfd < 0) {
		ova__obj_close(&o);
		return sw_errf(e, SW_ENOTFOUND, "object '%s' not found", in->install_path);
	}
	if (in->format == OVA_FMT_OVA) {
		if ((r = ova__fname(&o, ".ova", ova, sizeof(ova), e)) < 0) {
			ova__obj_close(&o);
			return r;
		}
		file = ova;
	}
	fd = ova__open(o.dirfd, file, O_RDONLY, 0, e);
	ova__obj_close(&o);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < off || (uint64_t)st.st_size - off < size) {
		(void)close(fd);
		return sw_errf(e, SW_EFORMAT, "'%s': shorter than recorded", file);
	}
	if (in->format == OVA_FMT_OVF)
		size = (uint64_t)st.st_size;
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		(void)close(fd);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	rd->fd = fd;
	rd->off = off;
	rd->size = size;
	(void)posix_fadvise(fd, (off_t)off, (off_t)size, POSIX_FADV_SEQUENTIAL);
	*ret = rd;
	return 0;
}

int
ova_reader_open(struct ova_store *s, const char *obj, const char *file,
    struct ova_reader **ret_reader, struct sw_err *e)
{
	struct ova_info *in = NULL;
	size_t i;
	int r;

	if ((r = ova_inspect(s, obj, &in, e)) < 0)
		return r;
	if (in->format == OVA_FMT_OVA) {
		const struct ova_tar_member *m = ova_tar_find(in->tar, file);

		if (m == NULL)
			r = sw_errf(e, SW_ENOTFOUND, "'%s' has no member '%s'", in->install_path, file);
		else
			r = reader_open_at(s, in, NULL, m->offset, m->size, ret_reader, e);
		goto out;
	}
	for (i = 0; i < in->ndisks; i++)
		if (strcmp(in->disks[i].name, file) == 0)
			break;
	if (i == in->ndisks && strcmp(in->ovf_name, file) != 0) {
		r = sw_errf(e, SW_ENOTFOUND, "'%s' has no file '%s'", in->install_path, file);
		goto out;
	}
	r = reader_open_at(s, in, file, 0, 0, ret_reader, e);
out:
	ova_info_free(in);
	return r;
}

int
ova_reader_open_disk(struct ova_store *s, const char *obj, size_t k,
    struct ova_reader **ret_reader, struct sw_err *e)
{
	struct ova_info *in = NULL;
	int r;

	if ((r = ova_inspect(s, obj, &in, e)) < 0)
		return r;
	if (k >= in->ndisks)
		r = sw_errf(e, SW_ENOTFOUND, "'%s' has %zu disks, no disk %zu", in->install_path,
		    in->ndisks, k);
	else if (in->format == OVA_FMT_OVA)
		r = reader_open_at(s, in, NULL, in->disks[k].offset, in->disks[k].size, ret_reader, e);
	else
		r = reader_open_at(s, in, in->disks[k].name, 0, 0, ret_reader, e);
	ova_info_free(in);
	return r;
}

struct sw_source
ova_reader_source(struct ova_reader *r)
{
	struct sw_source src = { reader_read, r };

	return src;
}

uint64_t
ova_reader_size(const struct ova_reader *r)
{
	return r ? r->size : 0;
}

int
ova_reader_fd(const struct ova_reader *r, uint64_t *ret_offset)
{
	if (r == NULL)
		return -EINVAL;
	if (ret_offset != NULL)
		*ret_offset = r->off;
	return r->fd;
}

void
ova_reader_close(struct ova_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		(void)close(r->fd);
	free(r);
}

/* ---------------------------------------------------------------- copy */

/* A reflinked file without a recorded digest gets one when it is at most this large. */
#define CLONE_HASH_MAX (16 * 1024 * 1024)

struct cfile {
	char final[SW_NAME_MAX + 1];
	char tmp[SW_NAME_MAX + 1];
	struct ova_atomic a; /* valid when state is 1 */
	int state;           /* 0 nothing, 1 temporary exists, 2 renamed */
};

/*
 * Copies file src_name of src dir into a temporary of dst; its digest into
 * sha, or, for a reflink (nothing read), the one recorded (recorded, may be
 * NULL) or "".
 */
static int
copy_one(struct ova__obj *so, struct ova__obj *dobj, const char *src_name, struct cfile *cf,
    const char *recorded, uint64_t *ret_size, char *sha, int *ret_cloned, struct sw_err *e)
{
	struct sw_hash *h = NULL;
	struct stat st;
	char what[SW_PATH_MAX];
	int in = -1, r;

	if ((in = ova__open(so->dirfd, src_name, O_RDONLY, 0, e)) < 0)
		return in;
	if (fstat(in, &st) < 0) {
		r = sw_errno(e, errno, "stat '%s'", src_name);
		goto out;
	}
	if (ova__relpath(dobj, cf->final, what, sizeof(what), NULL) < 0)
		(void)snprintf(what, sizeof(what), "%s", cf->final);
	if ((r = ova_atomic_begin(&cf->a, dobj->dirfd, cf->final, cf->tmp, OVA_ATOMIC_EXCL, what,
	    e)) < 0)
		goto out;
	cf->state = 1;
	if ((h = sw_hash_new("sha256")) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = ova__copy_file(in, (uint64_t)st.st_size, cf->a.fd, h, ret_cloned, src_name,
	    e)) < 0)
		goto out;
	if (*ret_cloned && recorded == NULL && st.st_size <= CLONE_HASH_MAX) {
		/* A small file without a recorded digest (the OVF) is hashed after all. */
		if ((r = ova__hash_file(dobj->dirfd, cf->tmp, sha, e)) < 0)
			goto out;
	} else if (*ret_cloned) {
		(void)snprintf(sha, OVA_SHA256_HEX, "%s", recorded != NULL ? recorded : "");
	} else if ((r = sw_hash_final(h, sha, OVA_SHA256_HEX)) < 0) {
		r = sw_errf(e, SW_EINTERNAL, "digest failed");
		goto out;
	}
	/* Complete on disk before any file of the copy is renamed. */
	if ((r = ova_atomic_sync(&cf->a, e)) < 0) {
		cf->state = 0;
		goto out;
	}
	*ret_size = (uint64_t)st.st_size;
out:
	sw_hash_free(h);
	(void)close(in);
	return r;
}

int
ova_copy(struct ova_store *src, const char *obj, struct ova_store *dst, const char *dstobj,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct ova_info *in = NULL;
	struct ova__obj so, dobj;
	struct ova_result *res = NULL;
	struct cfile *cf = NULL;
	struct sw_buf mb = SW_BUF_INIT(OVA_META_MAX);
	char meta_name[SW_NAME_MAX + 1], rel[SW_PATH_MAX], sha[OVA_SHA256_HEX];
	enum ova_format f;
	size_t i, nf = 0;
	int r, meta_done = 0;

	so.dirfd = dobj.dirfd = -1;
	if (dstobj == NULL)
		dstobj = obj;
	if ((r = ova_inspect(src, obj, &in, e)) < 0)
		return r;
	/* An object whose OVF references a file it lacks is not copied as if it were whole. */
	if ((r = ova__info_check(in, e)) < 0)
		goto out;
	if ((r = ova__obj_open(src, obj, 0, &so, e)) < 0 ||
	    (r = ova__obj_open(dst, dstobj, 1, &dobj, e)) < 0)
		goto out;
	if ((r = ova_detect(dst, dstobj, &f, e)) < 0)
		goto out;
	if (f != OVA_FMT_ABSENT) {
		r = sw_errf(e, SW_EEXIST, "destination '%s' exists", dobj.install);
		goto out;
	}
	if ((r = ova_debris_remove(dst, dstobj, e)) < 0)
		goto out;
	if ((res = ova__result_new(in->format, dobj.install)) == NULL ||
	    (cf = calloc(in->ndisks + 1, sizeof(*cf))) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	res->virtual_size = in->virtual_size;
	/* Files: the disks and the OVF (new) or the one archive (legacy). */
	nf = in->format == OVA_FMT_OVF ? in->ndisks + 1 : 1;
	for (i = 0; i < nf; i++) {
		const char *name;
		char ova[SW_NAME_MAX + 1];
		uint64_t size = 0;
		int cloned = 0;

		if (in->format == OVA_FMT_OVA) {
			if ((r = ova__fname(&so, ".ova", ova, sizeof(ova), e)) < 0)
				goto fail;
			name = ova;
			if ((r = ova__fname(&dobj, ".ova", cf[i].final, sizeof(cf[i].final), e)) < 0)
				goto fail;
		} else {
			name = i < in->ndisks ? in->disks[i].name : in->ovf_name;
			memcpy(cf[i].final, name, strlen(name) + 1);
		}
		if (sw_path_fmt(cf[i].tmp, sizeof(cf[i].tmp), "%s~%s.part", dobj.name,
		    cf[i].final) < 0 || strlen(cf[i].tmp) > SW_NAME_MAX) {
			r = sw_errf(e, SW_EPATH, "'%s': name too long for a temporary", name);
			goto fail;
		}
		if ((r = copy_one(&so, &dobj, name, &cf[i],
		    in->format == OVA_FMT_OVF && i < in->ndisks ? in->meta->disks[i].sha256 : NULL,
		    &size, sha, &cloned, e)) < 0)
			goto fail;
		if (cloned)
			log_debug("copy %s: '%s' reflinked", in->install_path, name);
		if (in->format == OVA_FMT_OVA) {
			/*
			 * A legacy archive is copied as it is: the copy must match
			 * its manifest as a download of it would (read back from
			 * the temporary, so what is checked is what is committed).
			 */
			int tfd = ova__open(dobj.dirfd, cf[i].tmp, O_RDONLY, 0, e);

			if (tfd < 0) {
				r = tfd;
				goto fail;
			}
			r = ova_legacy_check_fd(tfd, in->install_path, e);
			(void)close(tfd);
			if (r < 0)
				goto fail;
		}
		if (in->format == OVA_FMT_OVF && i < in->ndisks) {
			const struct ova_meta_disk *md = &in->meta->disks[i];

			if (size != md->size || (md->sha256[0] && strcmp(md->sha256, sha) != 0)) {
				r = sw_errf(e, size != md->size ? SW_EFORMAT : SW_ECHECKSUM,
				    "'%s/%s' does not match its meta (%s)", so.dir, name,
				    size != md->size ? "size" : "sha256");
				goto fail;
			}
		}
		if ((r = ova__relpath(&dobj, cf[i].final, rel, sizeof(rel), e)) < 0 ||
		    (r = ova__result_add(res, rel, size, sha, e)) < 0)
			goto fail;
	}
	for (i = 0; i < nf; i++) {
		r = ova_atomic_commit(&cf[i].a, e);
		/* A failed rename removed the temporary; a failed directory fsync came after it. */
		cf[i].state = ova__exists(dobj.dirfd, cf[i].final) == 1 ? 2 : 0;
		if (r < 0)
			goto fail;
	}
	if (in->format == OVA_FMT_OVF) {
		struct sw_hash *h;

		/* The meta, byte for byte (unknown keys included), last. */
		if ((r = ova__fname(&so, ".ova.meta", meta_name, sizeof(meta_name), e)) < 0 ||
		    (r = ova__read_file(so.dirfd, meta_name, OVA_META_MAX, &mb, e)) < 0)
			goto fail;
		if ((r = ova__fname(&dobj, ".ova.meta", meta_name, sizeof(meta_name), e)) < 0)
			goto fail;
		r = ova_atomic_write(dobj.dirfd, meta_name, mb.ptr ? mb.ptr : "", mb.len,
		    meta_name, e);
		meta_done = ova__exists(dobj.dirfd, meta_name) == 1;
		if (r < 0)
			goto fail;
		sha[0] = '\0';
		if ((h = sw_hash_new("sha256")) != NULL) {
			if (sw_hash_update(h, mb.ptr ? mb.ptr : "", mb.len) < 0 ||
			    sw_hash_final(h, sha, sizeof(sha)) < 0)
				sha[0] = '\0';
			sw_hash_free(h);
		}
		if ((r = ova__relpath(&dobj, meta_name, rel, sizeof(rel), e)) < 0 ||
		    (r = ova__result_add(res, rel, mb.len, sha, e)) < 0)
			goto fail;
	}
	if (ret_result != NULL) {
		*ret_result = res;
		res = NULL;
	}
	r = 0;
	goto out;
fail:
	if (meta_done)
		(void)unlinkat(dobj.dirfd, meta_name, 0);
	for (i = 0; cf != NULL && i < nf; i++) {
		if (cf[i].state == 1)
			ova_atomic_abort(&cf[i].a);
		else if (cf[i].state == 2)
			(void)unlinkat(dobj.dirfd, cf[i].final, 0);
	}
	if (dobj.dirfd >= 0)
		(void)ova__fsync_dir(dobj.dirfd, dobj.dir, NULL);
out:
	free(cf);
	sw_buf_free(&mb);
	ova_result_free(res);
	ova__obj_close(&so);
	ova__obj_close(&dobj);
	ova_info_free(in);
	return r;
}
