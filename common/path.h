/*
 * Safe paths.  Every path that comes from a message or an archive is first
 * checked with sw_path_check_rel() and then resolved only through
 * sw_dir_open_beneath()/sw_open_beneath(), which walk it one component at a
 * time from a directory descriptor of the store root with O_NOFOLLOW, so
 * neither ".." nor a symbolic link planted on the share can lead outside it.
 */
#ifndef SW_PATH_H
#define SW_PATH_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

#define SW_PATH_MAX 4096
#define SW_NAME_MAX 255

/*
 * A relative path: not empty, not absolute, no empty, "." or ".."
 * components, no control characters or backslashes, components of at most
 * SW_NAME_MAX bytes and at most SW_PATH_MAX-1 bytes in all.
 * Returns 0 or SW_EPATH with the reason in e.
 */
int sw_path_check_rel(const char *rel, struct sw_err *e);

/* A single file name: sw_path_check_rel() without any '/'. */
int sw_name_check(const char *name, struct sw_err *e);

/*
 * A name an object on the share is named after and CloudStack keys on (a
 * template's unique name): 1 to SW_UNIQUE_NAME_MAX bytes of ASCII letters,
 * digits, '.', '_' and '-', starting with a letter or a digit (so never
 * "." or "..", a hidden file or an option), not ending in ".ova", ".meta"
 * or ".part" in any case (the suffixes of the object's own files and of our
 * temporaries).  Case is kept: CloudStack compares unique names exactly.
 * The bound leaves room for the longest file name derived from it
 * ("<name>-disk<N>.vmdk", "<name>.ova.meta") within SW_NAME_MAX.
 * Returns 0 or SW_EPATH with the reason in e (the name is never quoted).
 */
#define SW_UNIQUE_NAME_MAX 200
int sw_unique_name_check(const char *name, struct sw_err *e);

/* Copies s to out (outsz bytes) with ASCII upper-case letters lowered; -ENAMETOOLONG if it does not fit. */
int sw_ascii_lower(char *out, size_t outsz, const char *s);

/*
 * Splits rel at its last '/': "a/b/c" -> "a/b" + "c", "c" -> "" + "c".
 * Returns 0 or -ENAMETOOLONG.
 */
int sw_path_split(const char *rel, char *dir, size_t dirsz, char *base, size_t basesz);

/* out = a "/" b (or b alone when a is ""); returns 0 or -ENAMETOOLONG. */
int sw_path_join(char *out, size_t outsz, const char *a, const char *b);

/* out = a formatted path; returns 0 or -ENAMETOOLONG (truncation is an error). */
int sw_path_fmt(char *out, size_t outsz, const char *fmt, ...) SW_PRINTF(3, 4);

/*
 * Opens directory rel ("" for rootfd itself) beneath rootfd without following
 * any symbolic link.  With create, missing components are made with mode.
 * Returns a descriptor (O_DIRECTORY|O_CLOEXEC) or a negative code.
 */
int sw_dir_open_beneath(int rootfd, const char *rel, int create, mode_t mode,
    struct sw_err *e);

/*
 * Opens file rel beneath rootfd: directories are walked as above (created
 * when flags has O_CREAT), the last component is opened with
 * flags|O_NOFOLLOW|O_CLOEXEC and must be a regular file.
 */
int sw_open_beneath(int rootfd, const char *rel, int flags, mode_t mode,
    struct sw_err *e);

/* Opens a directory given by an operator (config, CLI): O_DIRECTORY|O_CLOEXEC. */
int sw_root_open(const char *path, struct sw_err *e);

#endif
