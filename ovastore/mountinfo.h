/*
 * Whether the file locks taken on a store are seen by every host that
 * mounts it.  The command lock (a POSIX record lock on
 * .snapworker/running/<id>.lock) tells a redelivered command whether an
 * earlier attempt still runs anywhere; that is only true when the kernel
 * forwards the lock to the file server.  It does for local file systems
 * (one host) and for NFS with its lock protocol (NFSv4, or NFSv3 with
 * lockd), and it does not for NFS mounted with "nolock" or
 * "local_lock=posix|all", for CIFS mounted with "nobrl", or for FUSE file
 * systems (whose lock support is the daemon's, unknown here).  When locks
 * are host-local, the crash journal's age is the only liveness signal that
 * crosses hosts.
 *
 * The decision is read from /proc/self/mountinfo (proc(5)): the mount whose
 * mount point is the longest prefix of the store's real path.
 */
#ifndef OVASTORE_MOUNTINFO_H
#define OVASTORE_MOUNTINFO_H

#include <stddef.h>

#include "common/err.h"

#define OVA_MOUNTINFO_MAX (4 * 1024 * 1024)   /* bytes of mountinfo read */

enum ova_lock_scope {
	OVA_LOCKS_SHARED = 0,   /* every host that mounts the store sees our locks */
	OVA_LOCKS_HOST,         /* our locks are only seen on this host */
};

/*
 * Decides the lock scope of the mount holding path (absolute, already
 * resolved: no symbolic links) from mountinfo text of len bytes.  why gets
 * a short reason ("nfs4 mount /mnt/sec", "nfs mount /mnt/sec with nolock").
 * SW_ENOTFOUND when no mount covers path; SW_EFORMAT for a malformed line.
 */
int ova_lock_scope_parse(const char *mountinfo, size_t len, const char *path,
    enum ova_lock_scope *ret_scope, char *why, size_t whysz, struct sw_err *e);

/* The same for a directory path, reading /proc/self/mountinfo. */
int ova_lock_scope(const char *dir, enum ova_lock_scope *ret_scope, char *why, size_t whysz,
    struct sw_err *e);

#endif
