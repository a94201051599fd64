/*
 * The store: object addressing beneath a root descriptor, format detection,
 * inspection, verification and deletion, and the small file helpers the
 * rest of the library shares.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

/* NAME plus the longest suffix we append ("-disk63.vmdk.part") must stay a valid name. */
#define OBJ_NAME_MAX (SW_NAME_MAX - 24)

const char *
ova_format_name(enum ova_format f)
{
	switch (f) {
	case OVA_FMT_OVF: return "ovf";
	case OVA_FMT_OVA: return "ova";
	default: return "absent";
	}
}

int
ova_store_open_fd(int rootfd, struct ova_store **ret_store, struct sw_err *e)
{
	struct ova_store *s;
	struct stat st;

	if (fstat(rootfd, &st) < 0)
		return sw_errno(e, errno, "store root");
	if (!S_ISDIR(st.st_mode))
		return sw_errf(e, -ENOTDIR, "store root is not a directory");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	s->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (s->rootfd < 0) {
		int en = errno;

		free(s);
		return sw_errno(e, en, "dup of the store root descriptor");
	}
	*ret_store = s;
	return 0;
}

int
ova_store_open(const char *root, struct ova_store **ret_store, struct sw_err *e)
{
	int fd, r;

	if ((fd = sw_root_open(root, e)) < 0)
		return fd;
	r = ova_store_open_fd(fd, ret_store, e);
	(void)close(fd);
	return r;
}

void
ova_store_close(struct ova_store *s)
{
	if (s == NULL)
		return;
	if (s->rootfd >= 0)
		(void)close(s->rootfd);
	free(s);
}

int
ova_store_fd(const struct ova_store *s)
{
	return s ? s->rootfd : -1;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int
ova__name_reserved(const char *name)
{
	/* Our temporaries and commit records: never data files of an object. */
	return ends_with(name, ".part") || ends_with(name, ".meta");
}

int
ova_object_split(const char *install_path, char *dir, size_t dirsz, char *name, size_t namesz,
    struct sw_err *e)
{
	char tmp[SW_PATH_MAX], d[SW_PATH_MAX], b[SW_NAME_MAX + 1];
	size_t len;
	int r;

	if ((r = sw_path_check_rel(install_path, e)) < 0)
		return (sw_errctx(e, "object"), r);
	len = strlen(install_path);
	memcpy(tmp, install_path, len + 1);
	if (ends_with(tmp, ".ova"))
		tmp[len - 4] = '\0';
	if (sw_path_split(tmp, d, sizeof(d), b, sizeof(b)) < 0)
		return sw_errf(e, SW_EPATH, "object '%s': path too long", install_path);
	if (b[0] == '\0' || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
		return sw_errf(e, SW_EPATH, "object '%s': empty name", install_path);
	if (strlen(b) > OBJ_NAME_MAX)
		return sw_errf(e, SW_EPATH, "object '%s': name longer than %d bytes", install_path,
		    OBJ_NAME_MAX);
	if (ova__name_reserved(b))
		return sw_errf(e, SW_EPATH, "object '%s': name ends in .meta or .part", install_path);
	if (strlen(d) >= dirsz || strlen(b) >= namesz)
		return sw_errf(e, SW_EPATH, "object '%s': path too long", install_path);
	memcpy(dir, d, strlen(d) + 1);
	memcpy(name, b, strlen(b) + 1);
	return 0;
}

int
ova__obj_open(struct ova_store *s, const char *obj, int create, struct ova__obj *o,
    struct sw_err *e)
{
	int r;

	o->dirfd = -1;
	if (s == NULL || obj == NULL)
		return sw_errf(e, -EINVAL, "no store or no object");
	if ((r = ova_object_split(obj, o->dir, sizeof(o->dir), o->name, sizeof(o->name), e)) < 0)
		return r;
	if (sw_path_join(o->install, sizeof(o->install), o->dir, o->name) < 0)
		return sw_errf(e, SW_EPATH, "object '%s': path too long", obj);
	r = sw_dir_open_beneath(s->rootfd, o->dir, create, 0755, e);
	if (r == -ENOENT && !create)
		return 0;
	if (r < 0)
		return r;
	o->dirfd = r;
	return 0;
}

void
ova__obj_close(struct ova__obj *o)
{
	if (o != NULL && o->dirfd >= 0) {
		(void)close(o->dirfd);
		o->dirfd = -1;
	}
}

int
ova__fname(const struct ova__obj *o, const char *suffix, char *out, size_t outsz,
    struct sw_err *e)
{
	if (sw_path_fmt(out, outsz, "%s%s", o->name, suffix) < 0 || strlen(out) > SW_NAME_MAX)
		return sw_errf(e, SW_EPATH, "object '%s': file name too long", o->install);
	return 0;
}

int
ova__relpath(const struct ova__obj *o, const char *file, char *out, size_t outsz,
    struct sw_err *e)
{
	if (sw_path_join(out, outsz, o->dir, file) < 0)
		return sw_errf(e, SW_EPATH, "object '%s': path too long", o->install);
	return 0;
}

int
ova__exists(int dirfd, const char *file)
{
	struct stat st;

	if (dirfd < 0)
		return 0;
	if (fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

int
ova__open(int dirfd, const char *file, int flags, mode_t mode, struct sw_err *e)
{
	return sw_open_beneath(dirfd, file, flags, mode, e);
}

int
ova__read_file(int dirfd, const char *file, size_t max, struct sw_buf *b, struct sw_err *e)
{
	char chunk[16384];
	ssize_t n;
	int fd, r = 0;

	if ((fd = ova__open(dirfd, file, O_RDONLY, 0, e)) < 0)
		return fd;
	for (;;) {
		n = sw_read_full(fd, chunk, sizeof(chunk));
		if (n < 0) {
			r = sw_errno(e, (int)-n, "read '%s'", file);
			break;
		}
		if (n == 0)
			break;
		if (b->len + (size_t)n > max) {
			r = sw_errf(e, SW_ETOOBIG, "'%s' is larger than %zu bytes", file, max);
			break;
		}
		if ((r = sw_buf_add(b, chunk, (size_t)n)) < 0) {
			r = sw_errf(e, r, "'%s': out of memory", file);
			break;
		}
		if ((size_t)n < sizeof(chunk))
			break;
	}
	(void)close(fd);
	return r;
}

int
ova__fsync_dir(int dirfd, const char *what, struct sw_err *e)
{
	if (fsync(dirfd) < 0 && errno != EINVAL && errno != EROFS)
		return sw_errno(e, errno, "fsync of directory '%s'", what);
	return 0;
}

int
ova__unlink(int dirfd, const char *file, const char *what, struct sw_err *e)
{
	if (unlinkat(dirfd, file, 0) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return sw_errno(e, errno, "remove '%s'", what);
}

/* ------------------------------------------------------------ results */

struct ova_result *
ova__result_new(enum ova_format f, const char *install)
{
	struct ova_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->format = f;
	if ((r->install_path = strdup(install)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

/* Appends a file to a result's or an info's list and counts its size. */
static int
files_append(struct ova_file **files, size_t *nfiles, uint64_t *physical_size,
    const char *relpath, uint64_t size, const char *sha256, struct sw_err *e)
{
	struct ova_file *f = realloc(*files, (*nfiles + 1) * sizeof(*f));

	if (f == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	*files = f;
	f = &f[*nfiles];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(relpath)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	f->size = size;
	if (sha256 != NULL)
		(void)snprintf(f->sha256, sizeof(f->sha256), "%s", sha256);
	(*nfiles)++;
	*physical_size += size;
	return 0;
}

static void
files_free(struct ova_file *files, size_t nfiles)
{
	size_t i;

	for (i = 0; i < nfiles; i++)
		free(files[i].path);
	free(files);
}

int
ova__result_add(struct ova_result *r, const char *relpath, uint64_t size, const char *sha256,
    struct sw_err *e)
{
	return files_append(&r->files, &r->nfiles, &r->physical_size, relpath, size, sha256, e);
}

void
ova_result_free(struct ova_result *r)
{
	if (r == NULL)
		return;
	files_free(r->files, r->nfiles);
	free(r->install_path);
	free(r);
}

/* ----------------------------------------------------------- detection */

static int
detect_in(struct ova__obj *o, enum ova_format *ret, struct sw_err *e)
{
	char meta[SW_NAME_MAX + 1], ova[SW_NAME_MAX + 1];
	int r;

	if (o->dirfd < 0) {
		*ret = OVA_FMT_ABSENT;
		return 0;
	}
	if ((r = ova__fname(o, ".ova.meta", meta, sizeof(meta), e)) < 0 ||
	    (r = ova__fname(o, ".ova", ova, sizeof(ova), e)) < 0)
		return r;
	if ((r = ova__exists(o->dirfd, meta)) < 0)
		return sw_errno(e, -r, "stat '%s/%s'", o->dir, meta);
	if (r) {
		*ret = OVA_FMT_OVF;
		return 0;
	}
	if ((r = ova__exists(o->dirfd, ova)) < 0)
		return sw_errno(e, -r, "stat '%s/%s'", o->dir, ova);
	*ret = r ? OVA_FMT_OVA : OVA_FMT_ABSENT;
	return 0;
}

int
ova_detect(struct ova_store *s, const char *obj, enum ova_format *ret_format, struct sw_err *e)
{
	struct ova__obj o;
	enum ova_format f;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	r = detect_in(&o, &f, e);
	ova__obj_close(&o);
	if (r == 0)
		*ret_format = f;
	return r;
}

/* ------------------------------------------------------------- inspect */

void
ova_info_free(struct ova_info *info)
{
	size_t i;

	if (info == NULL)
		return;
	for (i = 0; i < info->ndisks; i++)
		free(info->disks[i].name);
	free(info->disks);
	files_free(info->files, info->nfiles);
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
	return files_append(&in->files, &in->nfiles, &in->physical_size, rel, size, sha, e);
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

static int
inspect_legacy(struct ova__obj *o, struct ova_info *in, struct sw_err *e)
{
	char ova[SW_NAME_MAX + 1];
	const struct ova_tar_member *m;
	unsigned char *ovfbuf = NULL;
	struct stat st;
	size_t i;
	ssize_t n;
	int fd = -1, r;

	if ((r = ova__fname(o, ".ova", ova, sizeof(ova), e)) < 0)
		return r;
	if ((fd = ova__open(o->dirfd, ova, O_RDONLY, 0, e)) < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = sw_errno(e, errno, "stat '%s'", ova);
		goto out;
	}
	if ((r = ova_tar_index_fd(fd, &in->tar, e)) < 0) {
		sw_errctx(e, "'%s'", ova);
		goto out;
	}
	/* The OVF is the first member (OVF spec); tolerate it elsewhere when unique. */
	m = &in->tar->members[0];
	if (!ends_with(m->name, ".ovf")) {
		m = NULL;
		for (i = 0; i < in->tar->n; i++)
			if (ends_with(in->tar->members[i].name, ".ovf")) {
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
	{
		const char *b = strrchr(m->name, '/');

		in->ovf_name = strdup(b ? b + 1 : m->name);
	}
	if (in->ovf_name == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	in->ovf_size = m->size;
	in->virtual_size = in->ovf->virtual_size;
	/* Disks: the members the OVF references, in archive order. */
	for (i = 0; i < in->tar->n; i++) {
		const struct ova_tar_member *t = &in->tar->members[i];
		const char *b = strrchr(t->name, '/');

		b = b ? b + 1 : t->name;
		if (ova_ovf_find_file(in->ovf, b) < 0)
			continue;
		if ((r = info_add_disk(in, b, t->size, t->offset, NULL, e)) < 0)
			goto out;
	}
	if ((r = info_add_file(in, o, ova, (uint64_t)st.st_size, NULL, e)) < 0)
		goto out;
out:
	free(ovfbuf);
	if (fd >= 0)
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
	if ((r = detect_in(&o, &f, e)) < 0)
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
ova_verify(struct ova_store *s, const char *obj, unsigned flags, struct sw_err *e)
{
	struct ova_info *in = NULL;
	struct ova__obj o;
	size_t i;
	int r;

	if ((r = ova_inspect(s, obj, &in, e)) < 0)
		return r;
	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		goto out;
	/* The OVF references exactly the disks, with matching sizes where it states them. */
	for (i = 0; i < in->ovf->nfiles; i++) {
		const struct ova_ovf_file *f = &in->ovf->files[i];
		size_t k;

		for (k = 0; k < in->ndisks; k++)
			if (strcmp(in->disks[k].name, f->href) == 0)
				break;
		if (k == in->ndisks) {
			r = sw_errf(e, SW_EFORMAT, "'%s': OVF references '%s', which the object lacks",
			    in->install_path, f->href);
			goto out;
		}
		if (f->has_size && f->size != in->disks[k].size) {
			r = sw_errf(e, SW_EFORMAT, "'%s': '%s' has %llu bytes, the OVF says %llu",
			    in->install_path, f->href, (unsigned long long)in->disks[k].size,
			    (unsigned long long)f->size);
			goto out;
		}
	}
	if (in->format == OVA_FMT_OVF) {
		for (i = 0; i < in->ndisks; i++) {
			const struct ova_meta_disk *md = &in->meta->disks[i];
			char sha[OVA_SHA256_HEX];

			if (ova_ovf_find_file(in->ovf, md->name) < 0) {
				r = sw_errf(e, SW_EFORMAT, "'%s': disk '%s' is not referenced by the OVF",
				    in->install_path, md->name);
				goto out;
			}
			if (in->disks[i].size != md->size) {
				r = sw_errf(e, SW_EFORMAT, "'%s': '%s' has %llu bytes, the meta says %llu",
				    in->install_path, md->name,
				    (unsigned long long)in->disks[i].size,
				    (unsigned long long)md->size);
				goto out;
			}
			if (md->sha256[0] == '\0' || (flags & OVA_VERIFY_NO_DIGEST))
				continue;
			if ((r = ova__hash_file(o.dirfd, md->name, sha, e)) < 0)
				goto out;
			if (strcmp(sha, md->sha256) != 0) {
				r = sw_errf(e, SW_ECHECKSUM, "'%s': sha256 of '%s' does not match the meta",
				    in->install_path, md->name);
				goto out;
			}
		}
	} else if (in->ndisks == 0) {
		r = sw_errf(e, SW_EFORMAT, "'%s': the OVF references no member", in->install_path);
		goto out;
	}
	r = 0;
out:
	ova__obj_close(&o);
	ova_info_free(in);
	return r;
}

/* -------------------------------------------------------------- delete */

static int
remove_file(struct ova__obj *o, const char *file, struct ova_result *res, int sync,
    struct sw_err *e)
{
	char rel[SW_PATH_MAX];
	struct stat st;
	int r;

	if ((r = ova__relpath(o, file, rel, sizeof(rel), e)) < 0)
		return r;
	if (fstatat(o->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return sw_errno(e, errno, "stat '%s'", rel);
	}
	if (S_ISDIR(st.st_mode))
		return sw_errf(e, SW_EPATH, "'%s' is a directory", rel);
	if ((r = ova__unlink(o->dirfd, file, rel, e)) <= 0)
		return r;
	if (sync && (r = ova__fsync_dir(o->dirfd, o->dir, e)) < 0)
		return r;
	return res ? ova__result_add(res, rel, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0,
	    NULL, e) : 0;
}

/*
 * Whether file is debris of object NAME: one of our temporaries for it
 * (NAME-diskK.vmdk.part, NAME.ovf.part, NAME.ova.meta.part, NAME.ova.part,
 * NAME~<file>.part).  Deliberately narrow: NAME-x is another object.
 */
static int
is_debris(const struct ova__obj *o, const char *file)
{
	size_t n = strlen(o->name);
	const char *p = file + n;

	if (strncmp(file, o->name, n) != 0 || !ends_with(file, ".part"))
		return 0;
	if (strcmp(p, ".ovf.part") == 0 || strcmp(p, ".ova.meta.part") == 0 ||
	    strcmp(p, ".ova.part") == 0)
		return 1;
	/* NAME~file.part, except a journal of an older release (state.h): not debris. */
	if (p[0] == '~' && strlen(p) > 6)
		return strcmp(p, OVA_JOURNAL_LEGACY_SUFFIX) != 0;
	if (strncmp(p, "-disk", 5) == 0) {
		p += 5;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
		return strcmp(p, ".vmdk.part") == 0;
	}
	return 0;
}

static int
remove_debris(struct ova__obj *o, struct ova_result *res, struct sw_err *e)
{
	int fd, r = 0, count = 0;
	DIR *d;
	struct dirent *de;

	if (o->dirfd < 0)
		return 0;
	if ((fd = openat(o->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return sw_errno(e, errno, "open directory '%s'", o->dir);
	if ((d = fdopendir(fd)) == NULL) {
		r = sw_errno(e, errno, "read directory '%s'", o->dir);
		(void)close(fd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_debris(o, de->d_name))
			continue;
		if ((r = remove_file(o, de->d_name, res, 0, e)) < 0)
			break;
		count++;
	}
	(void)closedir(d);
	return r < 0 ? r : count;
}

/* Removes DIR when it is empty (never the store root, never a parent). */
static void
remove_dir_if_empty(struct ova_store *s, struct ova__obj *o)
{
	char parent[SW_PATH_MAX], base[SW_NAME_MAX + 1];
	int pfd;

	if (o->dir[0] == '\0' || sw_path_split(o->dir, parent, sizeof(parent), base,
	    sizeof(base)) < 0)
		return;
	if ((pfd = sw_dir_open_beneath(s->rootfd, parent, 0, 0, NULL)) < 0)
		return;
	/* ENOTEMPTY (another object, a concurrent writer) is the common, harmless case. */
	if (unlinkat(pfd, base, AT_REMOVEDIR) == 0)
		(void)ova__fsync_dir(pfd, parent, NULL);
	(void)close(pfd);
}

int
ova_delete(struct ova_store *s, const char *obj, struct ova_result **ret_removed,
    struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_META_MAX);
	struct ova_meta *meta = NULL;
	struct ova_result *res = NULL;
	char meta_name[SW_NAME_MAX + 1], fname[SW_NAME_MAX + 1];
	struct ova__obj o;
	enum ova_format f;
	size_t i;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	if ((r = detect_in(&o, &f, e)) < 0)
		goto out;
	if ((res = ova__result_new(f, o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (f == OVA_FMT_OVF) {
		if ((r = ova__fname(&o, ".ova.meta", meta_name, sizeof(meta_name), e)) < 0)
			goto out;
		/* Read the list before the meta goes; an unreadable meta leaves the default names. */
		if (ova__read_file(o.dirfd, meta_name, OVA_META_MAX, &b, NULL) == 0)
			(void)ova_meta_parse(b.ptr ? b.ptr : "", b.len, &meta, NULL);
		if ((r = remove_file(&o, meta_name, res, 1, e)) < 0)
			goto out;
		if (meta != NULL) {
			for (i = 0; i < meta->ndisks; i++)
				if ((r = remove_file(&o, meta->disks[i].name, res, 0, e)) < 0)
					goto out;
			if ((r = remove_file(&o, meta->ovf, res, 0, e)) < 0)
				goto out;
		} else {
			for (i = 0; i < OVA_MAX_DISKS; i++) {
				char suf[32];

				(void)snprintf(suf, sizeof(suf), "-disk%zu.vmdk", i);
				if ((r = ova__fname(&o, suf, fname, sizeof(fname), e)) < 0 ||
				    (r = remove_file(&o, fname, res, 0, e)) < 0)
					goto out;
			}
			if ((r = ova__fname(&o, ".ovf", fname, sizeof(fname), e)) < 0 ||
			    (r = remove_file(&o, fname, res, 0, e)) < 0)
				goto out;
		}
	} else if (f == OVA_FMT_OVA) {
		if ((r = ova__fname(&o, ".ova", fname, sizeof(fname), e)) < 0 ||
		    (r = remove_file(&o, fname, res, 1, e)) < 0)
			goto out;
	}
	if ((r = remove_debris(&o, res, e)) < 0)
		goto out;
	if (o.dirfd >= 0 && res->nfiles > 0 && (r = ova__fsync_dir(o.dirfd, o.dir, e)) < 0)
		goto out;
	ova__obj_close(&o);
	if (res->nfiles > 0)
		remove_dir_if_empty(s, &o);
	if (ret_removed != NULL) {
		*ret_removed = res;
		res = NULL;
	}
	r = 0;
out:
	ova__obj_close(&o);
	ova_result_free(res);
	ova_meta_free(meta);
	sw_buf_free(&b);
	return r;
}

int
ova_debris_remove(struct ova_store *s, const char *obj, struct sw_err *e)
{
	struct ova__obj o;
	enum ova_format f;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	r = detect_in(&o, &f, e);
	/* A committed object's .part files may be a concurrent copy's: leave them. */
	if (r == 0)
		r = f == OVA_FMT_ABSENT ? remove_debris(&o, NULL, e) : 0;
	ova__obj_close(&o);
	return r;
}
