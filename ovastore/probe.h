/*
 * The health probe of a store: does the mount still hold the share, can it
 * be read, can it be written?  One probe is a handful of system calls on the
 * mount (no object is touched): the mount point must be a directory, and a
 * mount point when the caller requires one (a vanished NFS mount shows the
 * parent file system's empty directory, which reads and writes fine); the
 * root must list (opendir/readdir); statvfs must answer and not say
 * read-only; and a small file is created, written, fsync'ed and removed
 * under <mount>/.snapworker/probe/ (OVA_PROBE_DIR), named after the host and
 * process so two probers never meet.
 *
 * A call can block for as long as the file server does not answer (a hard
 * NFS mount blocks stat forever): run it where blocking is harmless, in a
 * thread of its own with a timeout (worker/storehealth.c does).  Never logs.
 */
#ifndef OVASTORE_PROBE_H
#define OVASTORE_PROBE_H

#include <stdint.h>

#include "common/err.h"

struct ova_probe {
	int is_mount;           /* the mount point is the root of a mount */
	uint64_t avail_bytes;   /* statvfs: bytes available to an unprivileged writer */
	int read_only;          /* statvfs: ST_RDONLY */
};

/*
 * Probes the store mounted at mount.  require_mount: a mount point that is
 * not the root of a mount fails (SW_ENOTFOUND, "not a mount point").  On
 * success fills *ret (may be NULL); on failure e names the step and the
 * errno, and *ret is left alone.
 */
int ova_store_probe(const char *mount, int require_mount, struct ova_probe *ret,
    struct sw_err *e);

/*
 * Whether the directory dirfd is the root of a mount: statx's
 * STATX_ATTR_MOUNT_ROOT where the kernel reports it (it also sees a bind
 * mount within one file system), else a device number different from its
 * parent's.  1: a mount root, 0: not, negative: the error (e names the call).
 */
int ova_is_mount_root(int dirfd, struct sw_err *e);

#endif
