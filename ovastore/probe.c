#include "ovastore/probe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ovastore/state.h"

int
ova_is_mount_root(int dirfd, struct sw_err *e)
{
	struct statx me, up;

	if (statx(dirfd, "", AT_EMPTY_PATH, STATX_INO, &me) < 0)
		return sw_errno(e, errno, "statx of the mount point");
	if (me.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
		return (me.stx_attributes & STATX_ATTR_MOUNT_ROOT) ? 1 : 0;
	/* An older kernel: a mount root sits on another device than its parent ("/" is its own). */
	if (statx(dirfd, "..", AT_SYMLINK_NOFOLLOW, STATX_INO, &up) < 0)
		return sw_errno(e, errno, "statx of the mount point's parent");
	if (me.stx_dev_major != up.stx_dev_major || me.stx_dev_minor != up.stx_dev_minor)
		return 1;
	return me.stx_ino == up.stx_ino ? 1 : 0;
}

/* Reads the root's first entry: a dead server fails here even when stat is cached. */
static int
probe_list(int dfd, struct sw_err *e)
{
	DIR *d;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return sw_errno(e, errno, "opening the root for listing");
	if ((d = fdopendir(fd)) == NULL) {
		int rc = sw_errno(e, errno, "listing the root");
		close(fd);
		return rc;
	}
	errno = 0;
	if (readdir(d) == NULL && errno != 0) {
		int rc = sw_errno(e, errno, "reading the root directory");
		closedir(d);
		return rc;
	}
	closedir(d);
	return 0;
}

static int
mkdir_in(int dfd, const char *name, struct sw_err *e)
{
	if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
		return sw_errno(e, errno, "creating %s", name);
	return 0;
}

/* Create, write, fsync and remove a scratch file: the share takes writes end to end. */
static int
probe_write(int dfd, struct sw_err *e)
{
	static const char payload[] = "snapworker store probe\n";
	char host[64], name[128];
	int pfd = -1, fd = -1, rc = 0;

	if (gethostname(host, sizeof(host)) < 0)
		(void)snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	if ((size_t)snprintf(name, sizeof(name), "probe.%s.%ld", host, (long)getpid()) >=
	    sizeof(name))
		return sw_errf(e, SW_ETOOBIG, "probe file name too long");
	if ((rc = mkdir_in(dfd, OVA_STATE_DIR, e)) < 0 || (rc = mkdir_in(dfd, OVA_PROBE_DIR, e)) < 0)
		return rc;
	pfd = openat(dfd, OVA_PROBE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return sw_errno(e, errno, "opening %s", OVA_PROBE_DIR);
	/* A file left by a probe of this pid that never returned is ours to replace. */
	(void)unlinkat(pfd, name, 0);
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = sw_errno(e, errno, "creating %s/%s", OVA_PROBE_DIR, name);
		goto out;
	}
	if (write(fd, payload, sizeof(payload) - 1) != (ssize_t)(sizeof(payload) - 1)) {
		rc = sw_errno(e, errno ? errno : EIO, "writing %s/%s", OVA_PROBE_DIR, name);
		goto out;
	}
	if (fsync(fd) < 0) {
		rc = sw_errno(e, errno, "fsync of %s/%s", OVA_PROBE_DIR, name);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = sw_errno(e, errno, "closing %s/%s", OVA_PROBE_DIR, name);
		goto out;
	}
	fd = -1;
	if (unlinkat(pfd, name, 0) < 0)
		rc = sw_errno(e, errno, "removing %s/%s", OVA_PROBE_DIR, name);
out:
	if (fd >= 0) {
		close(fd);
		(void)unlinkat(pfd, name, 0);
	}
	close(pfd);
	return rc;
}

int
ova_store_probe(const char *mount, int require_mount, struct ova_probe *ret, struct sw_err *e)
{
	struct ova_probe p;
	struct statvfs vfs;
	int dfd, rc;

	memset(&p, 0, sizeof(p));
	/* The configured mount point is the operator's: a symbolic link to it is followed. */
	dfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sw_errno(e, errno, "opening mount point %s", mount);
	rc = ova_is_mount_root(dfd, e);
	if (rc < 0)
		goto out;
	p.is_mount = rc;
	if (require_mount && !p.is_mount) {
		rc = sw_errf(e, SW_ENOTFOUND, "%s is not a mount point (the share is not mounted: "
		    "the parent file system shows through)", mount);
		goto out;
	}
	if ((rc = probe_list(dfd, e)) < 0)
		goto out;
	if (fstatvfs(dfd, &vfs) < 0) {
		rc = sw_errno(e, errno, "statvfs of %s", mount);
		goto out;
	}
	p.avail_bytes = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
	p.read_only = (vfs.f_flag & ST_RDONLY) != 0;
	if (p.read_only) {
		rc = sw_errno(e, EROFS, "%s", mount);
		goto out;
	}
	if ((rc = probe_write(dfd, e)) < 0)
		goto out;
	rc = 0;
	if (ret != NULL)
		*ret = p;
out:
	close(dfd);
	return rc;
}
