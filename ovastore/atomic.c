/*
 * The atomic-write helper (see atomic.h): temporary, write, fsync, rename,
 * fsync of the directory, each failure named.
 */
#include "ovastore/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "ovastore/ova_int.h"

int
ova_atomic_begin(struct ova_atomic *a, int dirfd, const char *file, const char *tmp,
    unsigned flags, const char *what, struct sw_err *e)
{
	int fd, oflags = O_WRONLY | O_CREAT | ((flags & OVA_ATOMIC_EXCL) ? O_EXCL : O_TRUNC);

	a->fd = -1;
	a->dirfd = dirfd;
	a->tmp[0] = '\0';
	if (what == NULL)
		what = file;
	if (snprintf(a->what, sizeof(a->what), "%s", what) >= (int)sizeof(a->what) ||
	    snprintf(a->file, sizeof(a->file), "%s", file) >= (int)sizeof(a->file) ||
	    (tmp != NULL ? snprintf(a->tmp, sizeof(a->tmp), "%s", tmp) :
	    snprintf(a->tmp, sizeof(a->tmp), "%s.part", file)) >= (int)sizeof(a->tmp)) {
		a->tmp[0] = '\0';
		return sw_errf(e, SW_EPATH, "'%s': name too long", what);
	}
	fd = ova__open(dirfd, a->tmp, oflags, 0644, e);
	if (fd < 0) {
		sw_errctx(e, "temporary of '%s'", a->what);
		a->tmp[0] = '\0';
		return fd;
	}
	a->fd = fd;
	ova__part_hold(fd);
	return 0;
}

void
ova_atomic_abort(struct ova_atomic *a)
{
	if (a->fd >= 0)
		(void)close(a->fd);
	a->fd = -1;
	if (a->tmp[0] != '\0')
		(void)unlinkat(a->dirfd, a->tmp, 0);
	a->tmp[0] = '\0';
}

int
ova_atomic_sync(struct ova_atomic *a, struct sw_err *e)
{
	int fd = a->fd, r;

	if (fd < 0)
		return 0;
	if (fsync(fd) < 0) {
		r = sw_errno(e, errno, "fsync of '%s'", a->what);
		goto fail;
	}
	a->fd = -1;
	if (close(fd) < 0) {
		r = sw_errno(e, errno, "close of '%s'", a->what);
		goto fail;
	}
	return 0;
fail:
	ova_atomic_abort(a);
	return r;
}

int
ova_atomic_commit(struct ova_atomic *a, struct sw_err *e)
{
	int r;

	if (a->tmp[0] == '\0')
		return sw_errf(e, -EINVAL, "'%s': nothing to commit", a->what);
	if ((r = ova_atomic_sync(a, e)) < 0)
		return r;
	if (renameat(a->dirfd, a->tmp, a->dirfd, a->file) < 0) {
		r = sw_errno(e, errno, "rename of '%s' into place", a->what);
		ova_atomic_abort(a);
		return r;
	}
	a->tmp[0] = '\0';
	/* Renamed: the caller decides whether to take it back. */
	if (fsync(a->dirfd) < 0 && errno != EINVAL && errno != EROFS)
		return sw_errno(e, errno, "fsync of the directory of '%s'", a->what);
	return 0;
}

int
ova_atomic_write(int dirfd, const char *file, const void *p, size_t n, const char *what,
    struct sw_err *e)
{
	struct ova_atomic a;
	int r;

	if ((r = ova_atomic_begin(&a, dirfd, file, NULL, 0, what, e)) < 0)
		return r;
	if ((r = sw_write_all(a.fd, p, n)) < 0) {
		r = sw_errno(e, -r, "write of '%s'", a.what);
		ova_atomic_abort(&a);
		return r;
	}
	return ova_atomic_commit(&a, e);
}
