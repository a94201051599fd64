/*
 * Inspection (what an object is made of, from its meta file or its tar
 * headers) and verification (its data against the recorded digests).
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

void
ova_info_free(struct ova_info *info)
{
	size_t i;

	if (info == NULL)
		return;
	for (i = 0; i < info->ndisks; i++)
		free(info->disks[i].name);
	free(info->disks);
	ova__files_free(info->files, info->nfiles);
	free(info->install_path);
	free(info->dir);
	free(info->name);
	free(info->ovf_name);
	ova_meta_free(info->meta);
	ova_ovf_free(info->ovf);
	ova_tar_index_free(info->tar);
	free(info);
}

static int
info_add_file(struct ova_info *in, const struct ova__obj *o, const char *file, uint64_t size,
    const char *sha, struct sw_err *e)
{
	char rel[SW_PATH_MAX];
	int r;

	if ((r = ova__relpath(o, file, rel, sizeof(rel), e)) < 0)
		return r;
	return ova__files_append(&in->files, &in->nfiles, &in->physical_size, rel, size, sha, e);
}

static int
info_add_disk(struct ova_info *in, const char *name, uint64_t size, uint64_t off,
    const char *sha, struct sw_err *e)
{
	struct ova_disk_info *d = realloc(in->disks, (in->ndisks + 1) * sizeof(*d));
	long fi;
	size_t i;

	if (d == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	in->disks = d;
	d = &in->disks[in->ndisks];
	memset(d, 0, sizeof(*d));
	if ((d->name = strdup(name)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	d->size = size;
	d->offset = off;
	if (sha != NULL)
		(void)snprintf(d->sha256, sizeof(d->sha256), "%s", sha);
	in->ndisks++;
	/* Capacity: the OVF Disk whose fileRef names this file. */
	fi = ova_ovf_find_file(in->ovf, name);
	for (i = 0; fi >= 0 && i < in->ovf->ndisks; i++)
		if (in->ovf->disks[i].file_index == fi)
			d->capacity = in->ovf->disks[i].capacity;
	return 0;
}

/* Size of a regular file in dirfd (no symlinks). */
static int
file_size(int dirfd, const char *file, const char *dir, uint64_t *ret, struct sw_err *e)
{
	struct stat st;

	if (fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return sw_errno(e, errno, "'%s%s%s'", dir, dir[0] ? "/" : "", file);
	if (!S_ISREG(st.st_mode))
		return sw_errf(e, SW_EPATH, "'%s%s%s' is not a regular file", dir, dir[0] ? "/" : "",
		    file);
	*ret = (uint64_t)st.st_size;
	return 0;
}

static int
inspect_new(struct ova__obj *o, struct ova_info *in, struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_OVF_MAX);
	char meta[SW_NAME_MAX + 1];
	uint64_t sz;
	size_t i;
	int r;

	if ((r = ova__fname(o, ".ova.meta", meta, sizeof(meta), e)) < 0)
		goto out;
	if ((r = ova__read_file(o->dirfd, meta, OVA_META_MAX, &b, e)) < 0)
		goto out;
	if ((r = ova_meta_parse(b.ptr ? b.ptr : "", b.len, &in->meta, e)) < 0) {
		sw_errctx(e, "'%s'", meta);
		goto out;
	}
	sw_buf_reset(&b);
	if ((in->ovf_name = strdup(in->meta->ovf)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = file_size(o->dirfd, in->meta->ovf, o->dir, &in->ovf_size, e)) < 0)
		goto out;
	if ((r = ova__read_file(o->dirfd, in->meta->ovf, OVA_OVF_MAX, &b, e)) < 0)
		goto out;
	if ((r = ova_ovf_parse(b.ptr ? b.ptr : "", b.len, &in->ovf, e)) < 0) {
		sw_errctx(e, "'%s'", in->meta->ovf);
		goto out;
	}
	in->virtual_size = in->ovf->virtual_size;
	for (i = 0; i < in->meta->ndisks; i++) {
		const struct ova_meta_disk *d = &in->meta->disks[i];

		if ((r = file_size(o->dirfd, d->name, o->dir, &sz, e)) < 0)
			goto out;
		if ((r = info_add_disk(in, d->name, sz, 0, d->sha256, e)) < 0 ||
		    (r = info_add_file(in, o, d->name, sz, d->sha256, e)) < 0)
			goto out;
	}
	if ((r = info_add_file(in, o, in->meta->ovf, in->ovf_size, NULL, e)) < 0)
		goto out;
	if ((r = file_size(o->dirfd, meta, o->dir, &sz, e)) < 0 ||
	    (r = info_add_file(in, o, meta, sz, NULL, e)) < 0)
		goto out;
out:
	sw_buf_free(&b);
	return r;
}

/*
 * Reads a legacy archive open on fd (named ova in messages) into in: every
 * member, the OVF (parsed) and the disks, the members the OVF references.
 */
static int
legacy_read(int fd, const char *ova, struct ova_info *in, struct sw_err *e)
{
	const struct ova_tar_member *m;
	unsigned char *ovfbuf = NULL;
	const char *b;
	size_t i;
	ssize_t n;
	int r;

	if ((r = ova_tar_index_fd(fd, &in->tar, e)) < 0) {
		sw_errctx(e, "'%s'", ova);
		goto out;
	}
	/* The OVF is the first member (OVF spec); tolerate it elsewhere when unique. */
	m = &in->tar->members[0];
	if (!ova__ends_with(m->name, ".ovf")) {
		m = NULL;
		for (i = 0; i < in->tar->n; i++)
			if (ova__ends_with(in->tar->members[i].name, ".ovf")) {
				if (m != NULL) {
					r = sw_errf(e, SW_EFORMAT, "'%s': several .ovf members", ova);
					goto out;
				}
				m = &in->tar->members[i];
			}
	}
	if (m == NULL) {
		r = sw_errf(e, SW_EFORMAT, "'%s': no .ovf member", ova);
		goto out;
	}
	if (m->size > OVA_OVF_MAX) {
		r = sw_errf(e, SW_ETOOBIG, "'%s': OVF member larger than %d bytes", ova, OVA_OVF_MAX);
		goto out;
	}
	if ((ovfbuf = malloc(m->size + 1)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	n = sw_pread_full(fd, ovfbuf, (size_t)m->size, (off_t)m->offset);
	if (n < 0 || (uint64_t)n != m->size) {
		r = n < 0 ? sw_errno(e, (int)-n, "read '%s'", ova) :
		    sw_errf(e, SW_EFORMAT, "'%s': truncated", ova);
		goto out;
	}
	if ((r = ova_ovf_parse(ovfbuf, (size_t)m->size, &in->ovf, e)) < 0) {
		sw_errctx(e, "'%s' member '%s'", ova, m->name);
		goto out;
	}
	b = strrchr(m->name, '/');
	if ((in->ovf_name = strdup(b ? b + 1 : m->name)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (ova_ovf_find_file(in->ovf, in->ovf_name) >= 0) {
		r = sw_errf(e, SW_EFORMAT, "'%s': the OVF '%s' references itself", ova, in->ovf_name);
		goto out;
	}
	in->ovf_size = m->size;
	in->virtual_size = in->ovf->virtual_size;
	/* Disks: the members the OVF references, in archive order. */
	for (i = 0; i < in->tar->n; i++) {
		const struct ova_tar_member *t = &in->tar->members[i];

		b = strrchr(t->name, '/');
		b = b ? b + 1 : t->name;
		if (ova_ovf_find_file(in->ovf, b) < 0)
			continue;
		if ((r = info_add_disk(in, b, t->size, t->offset, NULL, e)) < 0)
			goto out;
	}
	r = 0;
out:
	free(ovfbuf);
	return r;
}

static int
inspect_legacy(struct ova__obj *o, struct ova_info *in, struct sw_err *e)
{
	char ova[SW_NAME_MAX + 1];
	struct stat st;
	int fd = -1, r;

	if ((r = ova__fname(o, ".ova", ova, sizeof(ova), e)) < 0)
		return r;
	if ((fd = ova__open(o->dirfd, ova, O_RDONLY, 0, e)) < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = sw_errno(e, errno, "stat '%s'", ova);
		goto out;
	}
	if ((r = legacy_read(fd, ova, in, e)) < 0)
		goto out;
	r = info_add_file(in, o, ova, (uint64_t)st.st_size, NULL, e);
out:
	(void)close(fd);
	return r;
}

int
ova_inspect(struct ova_store *s, const char *obj, struct ova_info **ret_info, struct sw_err *e)
{
	struct ova__obj o;
	struct ova_info *in = NULL;
	enum ova_format f;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	if ((r = ova__detect_in(&o, &f, e)) < 0)
		goto out;
	if (f == OVA_FMT_ABSENT) {
		r = sw_errf(e, SW_ENOTFOUND, "object '%s' not found", o.install);
		goto out;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL || (in->install_path = strdup(o.install)) == NULL ||
	    (in->dir = strdup(o.dir)) == NULL || (in->name = strdup(o.name)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	in->format = f;
	r = f == OVA_FMT_OVF ? inspect_new(&o, in, e) : inspect_legacy(&o, in, e);
	if (r < 0)
		goto out;
	*ret_info = in;
	in = NULL;
out:
	ova_info_free(in);
	ova__obj_close(&o);
	return r;
}

/* -------------------------------------------------------------- verify */

int
ova__hash_file(int dirfd, const char *file, char *out, struct sw_err *e)
{
	struct sw_hash *h = NULL;
	unsigned char *buf = NULL;
	ssize_t n;
	int fd, r = 0;

	if ((fd = ova__open(dirfd, file, O_RDONLY, 0, e)) < 0)
		return fd;
	if ((h = sw_hash_new("sha256")) == NULL || (buf = malloc(1 << 20)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while ((n = sw_read_full(fd, buf, 1 << 20)) > 0)
		if ((r = sw_hash_update(h, buf, (size_t)n)) < 0)
			goto out;
	if (n < 0) {
		r = sw_errno(e, (int)-n, "read '%s'", file);
		goto out;
	}
	r = sw_hash_final(h, out, OVA_SHA256_HEX);
out:
	free(buf);
	sw_hash_free(h);
	(void)close(fd);
	return r;
}

int
ova__info_check(const struct ova_info *in, struct sw_err *e)
{
	size_t i, k;

	/* The OVF references exactly the disks, with matching sizes where it states them. */
	for (i = 0; i < in->ovf->nfiles; i++) {
		const struct ova_ovf_file *f = &in->ovf->files[i];

		for (k = 0; k < in->ndisks; k++)
			if (strcmp(in->disks[k].name, f->href) == 0)
				break;
		if (k == in->ndisks)
			return sw_errf(e, SW_EFORMAT, "'%s': OVF references '%s', which the object lacks",
			    in->install_path, f->href);
		if (f->has_size && f->size != in->disks[k].size)
			return sw_errf(e, SW_EFORMAT, "'%s': '%s' has %llu bytes, the OVF says %llu",
			    in->install_path, f->href, (unsigned long long)in->disks[k].size,
			    (unsigned long long)f->size);
	}
	if (in->format == OVA_FMT_OVF) {
		for (i = 0; i < in->ndisks; i++) {
			const struct ova_meta_disk *md = &in->meta->disks[i];

			if (ova_ovf_find_file(in->ovf, md->name) < 0)
				return sw_errf(e, SW_EFORMAT, "'%s': disk '%s' is not referenced by the OVF",
				    in->install_path, md->name);
			if (in->disks[i].size != md->size)
				return sw_errf(e, SW_EFORMAT, "'%s': '%s' has %llu bytes, the meta says %llu",
				    in->install_path, md->name, (unsigned long long)in->disks[i].size,
				    (unsigned long long)md->size);
		}
	} else if (in->ndisks == 0) {
		return sw_errf(e, SW_EFORMAT, "'%s': the OVF references no member", in->install_path);
	}
	return 0;
}

int
ova_legacy_check_fd(int fd, const char *what, struct sw_err *e)
{
	struct ova_info *in;
	int r;

	if ((in = calloc(1, sizeof(*in))) == NULL || (in->install_path = strdup(what)) == NULL) {
		ova_info_free(in);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	in->format = OVA_FMT_OVA;
	if ((r = legacy_read(fd, what, in, e)) == 0 && (r = ova__info_check(in, e)) == 0)
		r = ova__mf_check_archive(fd, in->tar, what, e);
	ova_info_free(in);
	return r;
}

int
ova_verify(struct ova_store *s, const char *obj, unsigned flags, struct sw_err *e)
{
	struct ova_info *in = NULL;
	struct ova__obj o;
	char ova[SW_NAME_MAX + 1];
	size_t i;
	int fd, r;

	o.dirfd = -1;
	if ((r = ova_inspect(s, obj, &in, e)) < 0)
		return r;
	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		goto out;
	if ((r = ova__info_check(in, e)) < 0)
		goto out;
	if (flags & OVA_VERIFY_NO_DIGEST)
		goto out;
	if (in->format == OVA_FMT_OVA) {
		/* The manifest, as an unpack of the same archive would check it. */
		if ((r = ova__fname(&o, ".ova", ova, sizeof(ova), e)) < 0)
			goto out;
		if ((fd = ova__open(o.dirfd, ova, O_RDONLY, 0, e)) < 0) {
			r = fd;
			goto out;
		}
		r = ova_legacy_check_fd(fd, in->install_path, e);
		(void)close(fd);
		goto out;
	}
	for (i = 0; i < in->ndisks; i++) {
		const struct ova_meta_disk *md = &in->meta->disks[i];
		char sha[OVA_SHA256_HEX];

		if (md->sha256[0] == '\0')
			continue;
		if ((r = ova__hash_file(o.dirfd, md->name, sha, e)) < 0)
			goto out;
		if (strcmp(sha, md->sha256) != 0) {
			r = sw_errf(e, SW_ECHECKSUM, "'%s': sha256 of '%s' does not match the meta",
			    in->install_path, md->name);
			goto out;
		}
	}
	r = 0;
out:
	ova__obj_close(&o);
	ova_info_free(in);
	return r;
}
