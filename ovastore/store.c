/*
 * The store: object addressing beneath a root descriptor, the small file
 * helpers the rest of the library shares, result lists and format
 * detection.  Inspection and verification are in inspect.c, deletion and
 * debris in delete.c.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/path.h"
#include "ovastore/ova_int.h"
#include "ovastore/tprops.h"

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

int
ova__ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int
ova__name_reserved(const char *name)
{
	/*
	 * Our temporaries and commit records, and the names the layout gives
	 * files that are not an object's (a template directory's record, the
	 * workers' own directory): never data files of an object, whatever an
	 * OVF, a meta or an archive says.  Compared without case, for shares
	 * that fold it.
	 */
	return ova__ends_with(name, ".part") || ova__ends_with(name, ".meta") ||
	    strcasecmp(name, OVA_TPROPS_NAME) == 0 || strcasecmp(name, OVA_STATE_DIR) == 0;
}

int
ova__member_reserved(const char *name)
{
	size_t n = strlen(name);

	/* NAME.ova is a legacy object of its own: a member of that name would forge one. */
	return ova__name_reserved(name) || (n >= 4 && strcasecmp(name + n - 4, ".ova") == 0);
}

int
ova_object_split(const char *install_path, char *dir, size_t dirsz, char *name, size_t namesz,
    struct sw_err *e)
{
	char tmp[SW_PATH_MAX], d[SW_PATH_MAX], b[SW_NAME_MAX + 1];
	const char *p, *slash;
	size_t len;
	int r;

	if ((r = sw_path_check_rel(install_path, e)) < 0)
		return (sw_errctx(e, "object"), r);
	len = strlen(install_path);
	memcpy(tmp, install_path, len + 1);
	if (ova__ends_with(tmp, ".ova"))
		tmp[len - 4] = '\0';
	if (sw_path_split(tmp, d, sizeof(d), b, sizeof(b)) < 0)
		return sw_errf(e, SW_EPATH, "object '%s': path too long", install_path);
	if (b[0] == '\0' || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
		return sw_errf(e, SW_EPATH, "object '%s': empty name", install_path);
	if (strlen(b) > OBJ_NAME_MAX)
		return sw_errf(e, SW_EPATH, "object '%s': name longer than %d bytes", install_path,
		    OBJ_NAME_MAX);
	if (ova__name_reserved(b))
		return sw_errf(e, SW_EPATH, "object '%s': " OVA__RESERVED_WHY, install_path);
	/* The workers' records are not objects: no object operation looks in there. */
	for (p = d; *p != '\0'; p = slash != NULL ? slash + 1 : p + strlen(p)) {
		slash = strchr(p, '/');
		if ((slash != NULL ? (size_t)(slash - p) : strlen(p)) == sizeof(OVA_STATE_DIR) - 1 &&
		    strncasecmp(p, OVA_STATE_DIR, sizeof(OVA_STATE_DIR) - 1) == 0)
			return sw_errf(e, SW_EPATH, "object '%s': inside the workers' records ("
			    OVA_STATE_DIR ")", install_path);
	}
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

int
ova__files_append(struct ova_file **files, size_t *nfiles, uint64_t *physical_size,
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

void
ova__files_free(struct ova_file *files, size_t nfiles)
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
	return ova__files_append(&r->files, &r->nfiles, &r->physical_size, relpath, size, sha256, e);
}

void
ova_result_free(struct ova_result *r)
{
	if (r == NULL)
		return;
	ova__files_free(r->files, r->nfiles);
	free(r->install_path);
	free(r);
}

/* ----------------------------------------------------------- detection */

int
ova__detect_in(struct ova__obj *o, enum ova_format *ret, struct sw_err *e)
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
	r = ova__detect_in(&o, &f, e);
	ova__obj_close(&o);
	if (r == 0)
		*ret_format = f;
	return r;
}
