/*
 * The writer's commit protocol (the writer itself is in writer.c): every
 * data file is finished (sparse tail, digest, fsync), the OVF is checked,
 * the data files are renamed into place and the meta file comes last
 * (temporary, fsync, rename, fsync of the directory); any failure removes
 * what the writer made.  ova_commit_files() commits files someone else
 * wrote into DIR the same way.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "common/props.h"
#include "ovastore/ova_int.h"

static int
wfile_finish(struct ova_writer *w, struct ova__wfile *f, struct sw_err *e)
{
	int r;

	if (f->fd < 0)
		return 0;
	/* A trailing hole needs the size set explicitly. */
	if ((w->flags & OVA_WRITER_SPARSE) && ftruncate(f->fd, (off_t)f->size) < 0)
		return sw_errno(e, errno, "truncate of '%s'", f->tmp);
	/* The helper finishes the digest while the data goes to the disk. */
	if (fsync(f->fd) < 0)
		return sw_errno(e, errno, "fsync of '%s/%s'", w->o.dir, f->tmp);
	if (f->hash != NULL) {
		r = ova__writer_hash_sync(w);
		if (r == 0)
			r = sw_hash_final(f->hash, f->sha256, sizeof(f->sha256));
		sw_hash_free(f->hash);
		f->hash = NULL;
		if (r < 0)
			return sw_errf(e, SW_EINTERNAL, "sha256 of '%s' failed", f->name);
	}
	r = close(f->fd);
	f->fd = -1;
	if (r < 0)
		return sw_errno(e, errno, "close of '%s/%s'", w->o.dir, f->tmp);
	return 0;
}

int
ova__writer_file_sha256(struct ova_writer *w, const char *name, char *out, struct sw_err *e)
{
	struct ova__wfile *f = NULL;
	size_t i;

	for (i = 0; i < w->ndisks; i++)
		if (strcmp(w->disks[i].name, name) == 0)
			f = &w->disks[i];
	if (f == NULL && w->have_ovf && strcmp(w->ovf.name, name) == 0)
		f = &w->ovf;
	if (f == NULL)
		return sw_errf(e, SW_ENOTFOUND, "no file '%s' in this object", name);
	if (f->hash != NULL) {
		int r = ova__writer_hash_sync(w);

		if (r == 0)
			r = sw_hash_final(f->hash, f->sha256, sizeof(f->sha256));

		sw_hash_free(f->hash);
		f->hash = NULL;
		if (r < 0)
			return sw_errf(e, SW_EINTERNAL, "sha256 of '%s' failed", f->name);
	}
	memcpy(out, f->sha256, OVA_SHA256_HEX);
	return 0;
}

/* The OVF must reference exactly the disk files (and match sizes it states). */
static int
check_ovf(struct ova_writer *w, struct sw_err *e)
{
	const struct ova_ovf *ovf = w->parsed;
	size_t i;
	long k;

	for (i = 0; i < w->ndisks; i++) {
		k = ova_ovf_find_file(ovf, w->disks[i].name);
		if (k < 0)
			return sw_errf(e, SW_EFORMAT, "'%s': the OVF does not reference disk '%s'",
			    w->o.install, w->disks[i].name);
		if (ovf->files[k].has_size && ovf->files[k].size != w->disks[i].size)
			return sw_errf(e, SW_EFORMAT, "'%s': disk '%s' has %llu bytes, the OVF says %llu",
			    w->o.install, w->disks[i].name, (unsigned long long)w->disks[i].size,
			    (unsigned long long)ovf->files[k].size);
	}
	if (ovf->nfiles != w->ndisks) {
		for (i = 0; i < ovf->nfiles; i++) {
			size_t j;

			for (j = 0; j < w->ndisks; j++)
				if (strcmp(ovf->files[i].href, w->disks[j].name) == 0)
					break;
			if (j == w->ndisks)
				return sw_errf(e, SW_EFORMAT,
				    "'%s': the OVF references '%s', which was not written",
				    w->o.install, ovf->files[i].href);
		}
	}
	return 0;
}

static int
wfile_rename(struct ova_writer *w, struct ova__wfile *f, struct sw_err *e)
{
	if (renameat(w->o.dirfd, f->tmp, w->o.dirfd, f->name) < 0)
		return sw_errno(e, errno, "rename of '%s/%s' into place", w->o.dir, f->tmp);
	f->renamed = 1;
	return 0;
}

static int
add_result(struct ova_writer *w, struct ova_result *res, const char *file, uint64_t size,
    const char *sha, struct sw_err *e)
{
	char rel[SW_PATH_MAX];
	int r;

	if ((r = ova__relpath(&w->o, file, rel, sizeof(rel), e)) < 0)
		return r;
	return ova__result_add(res, rel, size, sha, e);
}

int
ova_writer_commit(struct ova_writer *w, struct ova_result **ret_result, struct sw_err *e)
{
	struct sw_buf mb = SW_BUF_INIT(OVA_META_MAX);
	struct ova_meta m;
	struct ova_meta_disk md[OVA_MAX_DISKS];
	struct ova_result *res = NULL;
	struct sw_hash *mh = NULL;
	char ova[SW_NAME_MAX + 1], msha[OVA_SHA256_HEX];
	size_t i;
	int r;

	if (w == NULL || w->committed)
		return sw_errf(e, SW_EINTERNAL, "writer already committed");
	if (w->failed) {
		r = sw_errf(e, SW_EINTERNAL, "'%s': a write failed earlier", w->o.install);
		goto fail;
	}
	if (!w->have_ovf || w->ndisks == 0) {
		r = sw_errf(e, SW_EINTERNAL, "'%s': commit needs an OVF and at least one disk",
		    w->o.install);
		goto fail;
	}
	if (w->parsed != NULL && !(w->flags & OVA_WRITER_NO_OVF_CHECK) &&
	    (r = check_ovf(w, e)) < 0)
		goto fail;
	/* 1. Data durable under temporary names. */
	for (i = 0; i < w->ndisks; i++)
		if ((r = wfile_finish(w, &w->disks[i], e)) < 0)
			goto fail;
	if ((r = wfile_finish(w, &w->ovf, e)) < 0)
		goto fail;
	/* 2. Into place; still invisible as an object without its meta. */
	for (i = 0; i < w->ndisks; i++)
		if ((r = wfile_rename(w, &w->disks[i], e)) < 0)
			goto fail;
	if ((r = wfile_rename(w, &w->ovf, e)) < 0)
		goto fail;
	if ((r = ova__fsync_dir(w->o.dirfd, w->o.dir, e)) < 0)
		goto fail;
	/* 3. The commit record. */
	memset(&m, 0, sizeof(m));
	if ((r = ova__fname(&w->o, ".ova", ova, sizeof(ova), e)) < 0)
		goto fail;
	m.ova_filename = ova;
	m.ovf = w->ovf.name;
	m.ndisks = w->ndisks;
	m.disks = md;
	for (i = 0; i < w->ndisks; i++) {
		md[i].name = w->disks[i].name;
		md[i].size = w->disks[i].size;
		memcpy(md[i].sha256, w->disks[i].sha256, OVA_SHA256_HEX);
	}
	if ((r = ova_meta_format(&m, &mb, e)) < 0)
		goto fail;
	for (i = 0; i < w->nextra; i++)
		if ((r = sw_props_add_entry(&mb, w->extra[i].key, w->extra[i].value)) < 0) {
			r = r == SW_EFORMAT ? sw_errf(e, r, "meta: an extra key or its value "
			    "is not well-formed UTF-8") : sw_errf(e, r, "meta: too large");
			goto fail;
		}
	if ((mh = sw_hash_new("sha256")) == NULL || sw_hash_update(mh, mb.ptr, mb.len) < 0 ||
	    sw_hash_final(mh, msha, sizeof(msha)) < 0) {
		r = sw_errf(e, -ENOMEM, "sha256 of the meta failed");
		goto fail;
	}
	if ((r = ova_atomic_write(w->o.dirfd, w->meta_name, mb.ptr, mb.len, w->meta_name, e)) < 0) {
		/* If only the directory fsync failed, the meta is in place: take it back. */
		w->meta_renamed = ova__exists(w->o.dirfd, w->meta_name) == 1;
		goto fail;
	}
	w->meta_renamed = 1;
	if ((res = ova__result_new(OVA_FMT_OVF, w->o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < w->ndisks; i++)
		if ((r = add_result(w, res, w->disks[i].name, w->disks[i].size, w->disks[i].sha256,
		    e)) < 0)
			goto fail;
	if ((r = add_result(w, res, w->ovf.name, w->ovf.size, w->ovf.sha256, e)) < 0 ||
	    (r = add_result(w, res, w->meta_name, mb.len, msha, e)) < 0)
		goto fail;
	res->virtual_size = w->parsed ? w->parsed->virtual_size : 0;
	w->committed = 1;
	if (ret_result != NULL) {
		*ret_result = res;
		res = NULL;
	}
	r = 0;
	goto out;
fail:
	/* Nothing half-written may stay visible: remove what this writer made. */
	ova__writer_discard(w);
	w->failed = 1;
out:
	sw_hash_free(mh);
	sw_buf_free(&mb);
	ova_result_free(res);
	return r;
}

static void
wfile_discard(struct ova_writer *w, struct ova__wfile *f)
{
	if (f->fd >= 0) {
		(void)close(f->fd);
		f->fd = -1;
	}
	/* The helper may still be reading into this digest. */
	(void)ova__writer_hash_sync(w);
	sw_hash_free(f->hash);
	f->hash = NULL;
	if (w->o.dirfd < 0)
		return;
	if (f->tmp[0] != '\0')
		(void)unlinkat(w->o.dirfd, f->tmp, 0);
	f->tmp[0] = '\0';
	if (f->renamed)
		(void)unlinkat(w->o.dirfd, f->name, 0);
	f->renamed = 0;
}

void
ova__writer_discard(struct ova_writer *w)
{
	char tmp[SW_NAME_MAX + 1];
	size_t i;

	if (w->o.dirfd < 0)
		return;
	/* The meta first: from then on the object reads as absent. */
	if (w->meta_renamed)
		(void)unlinkat(w->o.dirfd, w->meta_name, 0);
	w->meta_renamed = 0;
	if (sw_path_fmt(tmp, sizeof(tmp), "%s.part", w->meta_name) == 0)
		(void)unlinkat(w->o.dirfd, tmp, 0);
	for (i = 0; i < w->ndisks; i++)
		wfile_discard(w, &w->disks[i]);
	if (w->have_ovf)
		wfile_discard(w, &w->ovf);
	(void)ova__fsync_dir(w->o.dirfd, w->o.dir, NULL);
}

int
ova_commit_files(struct ova_store *s, const char *obj, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct sw_buf ob = SW_BUF_INIT(OVA_OVF_MAX), mb = SW_BUF_INIT(OVA_META_MAX);
	struct ova_meta_disk md[OVA_MAX_DISKS];
	struct ova_ovf *ovf = NULL;
	struct ova_result *res = NULL;
	struct ova__obj o;
	struct ova_meta m;
	enum ova_format f;
	char ovfname[SW_NAME_MAX + 1], meta[SW_NAME_MAX + 1], ova[SW_NAME_MAX + 1];
	char rel[SW_PATH_MAX];
	struct stat st;
	size_t i;
	int r, fd;

	memset(md, 0, sizeof(md));
	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	if (o.dirfd < 0) {
		r = sw_errf(e, SW_ENOTFOUND, "'%s': directory '%s' does not exist", o.install, o.dir);
		goto out;
	}
	if ((r = ova_detect(s, obj, &f, e)) < 0)
		goto out;
	if (f != OVA_FMT_ABSENT) {
		r = sw_errf(e, SW_EEXIST, "object '%s' exists (%s format)", o.install,
		    ova_format_name(f));
		goto out;
	}
	if ((r = ova__fname(&o, ".ovf", ovfname, sizeof(ovfname), e)) < 0 ||
	    (r = ova__fname(&o, ".ova.meta", meta, sizeof(meta), e)) < 0 ||
	    (r = ova__fname(&o, ".ova", ova, sizeof(ova), e)) < 0)
		goto out;
	if ((r = ova__read_file(o.dirfd, ovfname, OVA_OVF_MAX, &ob, e)) < 0)
		goto out;
	if ((r = ova_ovf_parse(ob.ptr ? ob.ptr : "", ob.len, &ovf, e)) < 0) {
		sw_errctx(e, "'%s/%s'", o.dir, ovfname);
		goto out;
	}
	if (ovf->nfiles == 0 || ovf->nfiles > OVA_MAX_DISKS) {
		r = sw_errf(e, SW_EFORMAT, "'%s': the OVF references %zu files (1..%d allowed)",
		    ovfname, ovf->nfiles, OVA_MAX_DISKS);
		goto out;
	}
	if ((res = ova__result_new(OVA_FMT_OVF, o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ovf->nfiles; i++) {
		const struct ova_ovf_file *of = &ovf->files[i];

		md[i].name = of->href;
		if ((fd = ova__open(o.dirfd, of->href, O_RDONLY, 0, e)) < 0) {
			r = fd;
			goto out;
		}
		r = fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		(void)close(fd);
		if (r < 0) {
			r = sw_errno(e, -r, "'%s/%s'", o.dir, of->href);
			goto out;
		}
		md[i].size = (uint64_t)st.st_size;
		if (of->has_size && of->size != md[i].size) {
			r = sw_errf(e, SW_EFORMAT, "'%s/%s' has %llu bytes, the OVF says %llu", o.dir,
			    of->href, (unsigned long long)md[i].size, (unsigned long long)of->size);
			goto out;
		}
		if (!(flags & OVA_COMMIT_NO_SHA256) &&
		    (r = ova__hash_file(o.dirfd, of->href, md[i].sha256, e)) < 0)
			goto out;
		if ((r = ova__relpath(&o, of->href, rel, sizeof(rel), e)) < 0 ||
		    (r = ova__result_add(res, rel, md[i].size, md[i].sha256, e)) < 0)
			goto out;
	}
	if ((r = ova__relpath(&o, ovfname, rel, sizeof(rel), e)) < 0 ||
	    (r = ova__result_add(res, rel, ob.len, NULL, e)) < 0)
		goto out;
	memset(&m, 0, sizeof(m));
	m.ova_filename = ova;
	m.ovf = ovfname;
	m.ndisks = ovf->nfiles;
	m.disks = md;
	if ((r = ova_meta_format(&m, &mb, e)) < 0)
		goto out;
	if ((r = ova_atomic_write(o.dirfd, meta, mb.ptr, mb.len, meta, e)) < 0) {
		(void)unlinkat(o.dirfd, meta, 0);
		goto out;
	}
	if ((r = ova__relpath(&o, meta, rel, sizeof(rel), e)) < 0 ||
	    (r = ova__result_add(res, rel, mb.len, NULL, e)) < 0)
		goto out;
	res->virtual_size = ovf->virtual_size;
	if (ret_result != NULL) {
		*ret_result = res;
		res = NULL;
	}
out:
	ova_result_free(res);
	ova_ovf_free(ovf);
	sw_buf_free(&ob);
	sw_buf_free(&mb);
	ova__obj_close(&o);
	return r;
}
