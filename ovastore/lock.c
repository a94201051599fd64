/*
 * The per-command lock (see lock.h): an OFD lock on a file that the holder
 * unlinks before it unlocks.
 */
#include "ovastore/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/path.h"
#include "ovastore/ova_int.h"
#include "ovastore/state.h"

#define POLL_MIN_MS 100
#define POLL_MAX_MS 1000

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* 0: locked; 1: held by another attempt; negative: error. */
static int
try_lock(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? 1 : -errno;
}

void
ova__part_hold(int fd)
{
	(void)try_lock(fd);
}

int
ova__part_held(int dirfd, const char *file)
{
	struct flock fl;
	int fd, held;

	fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	/* F_OFD_GETLK needs no write access: only whether a write lock could be set. */
	held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return held;
}

/* Whether name in dirfd still is the inode fd has open. */
static int
still_linked(int dirfd, const char *name, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0 || fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_nlink > 0;
}

/*
 * A lock file is a regular file the workers made: anything else under that
 * name (a symbolic link, a FIFO, a device, a directory) was planted, and a
 * lock taken on it, or beside it, would not exclude anybody.  With fd < 0
 * the name is checked (absent is fine), else the open descriptor.
 */
static int
check_regular(int dirfd, const char *name, int fd, struct sw_err *e)
{
	struct stat st;
	int r = fd >= 0 ? fstat(fd, &st) : fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW);

	if (r < 0) {
		if (fd < 0 && errno == ENOENT)
			return 0;
		return sw_errno(e, errno, "lock file %s/%s", OVA_LOCK_DIR, name);
	}
	if (!S_ISREG(st.st_mode))
		return sw_errf(e, SW_EPATH, "lock file %s/%s is %s, not a regular file: the store is "
		    "not safe to write", OVA_LOCK_DIR, name,
		    S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory" :
		    S_ISFIFO(st.st_mode) ? "a FIFO" : "a special file");
	return 0;
}

int
ova_lock_acquire(struct ova_lock *l, const char *mount, const char *id,
    atomic_int *cancel, uint64_t deadline_ms, ova_lock_wait_fn on_wait, void *ud,
    struct sw_err *e)
{
	unsigned poll = POLL_MIN_MS;
	int rootfd, waited = 0, r;

	l->fd = -1;
	l->dirfd = -1;
	if ((r = sw_name_check(id, e)) < 0)
		return r;
	if (sw_path_fmt(l->name, sizeof(l->name), "%s" OVA_LOCK_SUFFIX, id) < 0)
		return sw_errf(e, -ENAMETOOLONG, "command id too long for a lock file");
	if ((rootfd = sw_root_open(mount, e)) < 0)
		return rootfd;
	l->dirfd = sw_dir_open_beneath(rootfd, OVA_LOCK_DIR, 1, 0755, e);
	close(rootfd);
	if (l->dirfd < 0) {
		r = l->dirfd;
		l->dirfd = -1;
		if (r == SW_EPATH)
			sw_errctx(e, "command lock: the store is not safe to write");
		return r;
	}
	for (;;) {
		int fd;

		if ((r = check_regular(l->dirfd, l->name, -1, e)) < 0)
			break;
		/* O_NONBLOCK: a FIFO created in the check's shadow cannot hang the open. */
		fd = openat(l->dirfd, l->name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
		    0644);
		if (fd < 0) {
			if (errno == ELOOP)
				r = sw_errf(e, SW_EPATH, "lock file %s/%s is a symbolic link: the store is "
				    "not safe to write", OVA_LOCK_DIR, l->name);
			else
				r = sw_errno(e, errno, "lock file %s/%s", OVA_LOCK_DIR, l->name);
			break;
		}
		if ((r = check_regular(l->dirfd, l->name, fd, e)) < 0) {
			close(fd);
			break;
		}
		r = try_lock(fd);
		if (r == 0 && still_linked(l->dirfd, l->name, fd)) {
			l->fd = fd;
			return waited;
		}
		close(fd);
		if (r < 0) {
			r = sw_errno(e, -r, "locking %s/%s", OVA_LOCK_DIR, l->name);
			break;
		}
		if (r == 0)
			continue;       /* got a released holder's unlinked inode: at once again */
		if (!waited && on_wait != NULL)
			on_wait(ud);
		waited = 1;
		if (cancel != NULL && *cancel) {
			r = sw_errf(e, -ECANCELED, "cancelled while another attempt of the command ran");
			break;
		}
		if (deadline_ms != 0 && sw_mono_ms() >= deadline_ms) {
			r = sw_errf(e, -ETIMEDOUT, "another attempt of the command still runs (lock %s/%s held)",
			    OVA_LOCK_DIR, l->name);
			break;
		}
		sleep_ms(poll);
		if (poll < POLL_MAX_MS)
			poll *= 2;
	}
	close(l->dirfd);
	l->dirfd = -1;
	return r;
}

int
ova_lock_try(struct ova_lock *l, const char *mount, const char *id, struct sw_err *e)
{
	atomic_int now = 1;
	int r = ova_lock_acquire(l, mount, id, &now, 0, NULL, NULL, e);

	if (r == -ECANCELED)
		return sw_errf(e, SW_EBUSY, "command %s runs (its lock is held)", id);
	return r;
}

int
ova_lock_reap(int dirfd, const char *name)
{
	int fd, r = 0;

	/* Only a lock file of ours is reaped; anything planted is left for the operator. */
	if (check_regular(dirfd, name, -1, NULL) < 0)
		return 0;
	fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (check_regular(dirfd, name, fd, NULL) == 0 && try_lock(fd) == 0 &&
	    still_linked(dirfd, name, fd) && unlinkat(dirfd, name, 0) == 0)
		r = 1;
	close(fd);
	return r;
}

void
ova_lock_release(struct ova_lock *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0) {
		/* Unlink while still holding it: a waiter then locks a dead inode and retries. */
		(void)unlinkat(l->dirfd, l->name, 0);
		close(l->fd);
		l->fd = -1;
	}
	if (l->dirfd >= 0) {
		close(l->dirfd);
		l->dirfd = -1;
	}
}
