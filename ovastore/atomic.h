/*
 * ovastore atomic files: the one way anything on a store is made durable
 * and visible at once.  A file is written to a temporary in its final
 * directory, fsynced, closed, renamed over its final name, and the directory
 * is fsynced, so a reader sees the old content or the new one, never a part,
 * and a crash leaves at most the temporary behind (named FILE.part unless the
 * caller names it, so the store's debris rules know it).
 *
 * Every failure names its step and the file ("fsync of 'x': No space left on
 * device", "rename of 'x' into place: ...") so a log line says what broke.
 * The temporary is removed on every failure before the rename; a failure of
 * the directory's fsync comes after the rename (the new file is in place and
 * may not be durable): the caller decides whether to take it back.
 *
 * The streaming form is for data too large to hold in memory:
 *
 *   struct ova_atomic a;
 *   ova_atomic_begin(&a, dirfd, "NAME.ova", NULL, 0, "dir/NAME.ova", &e);
 *   ... write(a.fd, ...) ...
 *   ova_atomic_commit(&a, &e);   // or ova_atomic_abort(&a)
 *
 * Errors and conventions as in ovastore.h.  Nothing here logs.
 */
#ifndef OVASTORE_ATOMIC_H
#define OVASTORE_ATOMIC_H

#include <stddef.h>

#include "common/err.h"
#include "common/path.h"

#define OVA_ATOMIC_EXCL 0x1    /* begin: the temporary must not exist (O_EXCL) */

struct ova_atomic {
	int fd;                        /* the temporary, open for writing; -1 when done */
	int dirfd;                     /* borrowed from the caller */
	char file[SW_NAME_MAX + 1];
	char tmp[SW_NAME_MAX + 1];
	char what[SW_PATH_MAX];        /* the name messages use */
};

/*
 * Creates the temporary tmp (NULL: "FILE.part") beside file in dirfd (no
 * symbolic links, O_CLOEXEC, mode 0644).  what (NULL: file) names the file
 * in messages.  a->fd is the caller's to write to until commit or abort.
 */
int ova_atomic_begin(struct ova_atomic *a, int dirfd, const char *file, const char *tmp,
    unsigned flags, const char *what, struct sw_err *e);

/*
 * fsync and close of the temporary without renaming it yet (for commits of
 * several files that must all be complete before any is renamed); commit
 * skips what is done.  On failure the temporary is removed.
 */
int ova_atomic_sync(struct ova_atomic *a, struct sw_err *e);

/* fsync, close, rename over the final name, fsync of the directory. */
int ova_atomic_commit(struct ova_atomic *a, struct sw_err *e);

/* Closes and removes the temporary; safe after commit or a failed begin. */
void ova_atomic_abort(struct ova_atomic *a);

/* The whole sequence for a buffer: begin, write of p, commit. */
int ova_atomic_write(int dirfd, const char *file, const void *p, size_t n, const char *what,
    struct sw_err *e);

#endif
