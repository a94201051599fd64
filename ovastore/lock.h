/*
 * ovastore command locks: a lock per command id on the command's store,
 * shared by every worker that mounts it: <mount>/.snapworker/running/<id>.lock
 * (OVA_LOCK_DIR, OVA_LOCK_SUFFIX in ovastore/state.h) held with an open file
 * description lock (fcntl F_OFD_SETLK, NFSv4 byte-range lock on a share) for
 * as long as one attempt of the command runs.
 *
 * Why: a worker whose connection missed heartbeats (or was cut) keeps running
 * its command while the broker hands the same command to another worker.  The
 * second attempt must not run beside the first (both would write the same
 * object's temporaries); it waits for the lock, then finds the committed
 * output and answers from it.  A crashed worker's lock goes with its process
 * (or, on NFS, with its host's lease), so nothing has to expire it by age.
 *
 * The holder unlinks the file before it unlocks; a waiter that then gets the
 * lock on the unlinked inode notices (the path names another inode or none)
 * and tries again, so at most one attempt ever holds the live file.  The
 * lock file is opened without following symbolic links and must be a
 * regular file.
 *
 * Errors and conventions as in ovastore.h.  Nothing here logs.
 */
#ifndef OVASTORE_LOCK_H
#define OVASTORE_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/err.h"

struct ova_lock {
	int fd;                 /* -1 when not held */
	int dirfd;
	char name[96];
};

#define OVA_LOCK_INIT { -1, -1, "" }

/* Called once when the lock is found held by another attempt. */
typedef void (*ova_lock_wait_fn)(void *ud);

/*
 * Takes the lock of command id under store mount.  Waits while another
 * attempt holds it, polling until *cancel becomes non-zero (-ECANCELED) or
 * the monotonic clock passes deadline_ms (-ETIMEDOUT; 0: no deadline).
 * Returns 0 when taken at once, 1 after waiting, SW_EPATH when something
 * planted on the share stands where the lock lives (.snapworker or
 * .snapworker/running a symbolic link or not a directory, the lock file a
 * symbolic link, a FIFO, a device or a directory): the store is not safe to
 * write and the command must not run; another negative code when the lock
 * directory cannot be used (e.g. a read-only or missing mount: the caller
 * may then run unlocked and let the command report the store error).
 */
int ova_lock_acquire(struct ova_lock *l, const char *mount, const char *id,
    atomic_int *cancel, uint64_t deadline_ms, ova_lock_wait_fn on_wait, void *ud,
    struct sw_err *e);

/*
 * Takes the lock of command id under store mount if no attempt holds it:
 * 0 taken (release it), SW_EBUSY held by an attempt that runs, another
 * negative code when the lock directory cannot be used.  The sweeper's
 * question "does this command run anywhere?" (only as good as the store's
 * lock scope: ovastore/mountinfo.h).
 */
int ova_lock_try(struct ova_lock *l, const char *mount, const char *id, struct sw_err *e);

/* Removes the lock file and unlocks; safe on a lock that is not held. */
void ova_lock_release(struct ova_lock *l);

/*
 * The sweeper's side: removes lock file name in dirfd (the lock directory)
 * if no attempt holds it, taking the lock while it unlinks, as a releasing
 * holder does.  Returns 1 when removed, 0 when held (or gone meanwhile).
 */
int ova_lock_reap(int dirfd, const char *name);

#endif
