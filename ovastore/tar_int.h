/* Tar internals shared by tar.c (index, headers) and unpack.c (streaming). */
#ifndef OVA_TAR_INT_H
#define OVA_TAR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct archive;
struct archive_entry;

/* A libarchive reader that knows only uncompressed tar. */
struct archive *ova__tar_reader_new(void);

/*
 * Refuses non-regular, linked, sparse, absolute or ".." members; writes the
 * member's base name (a safe single name) into base.  count is for messages.
 */
int ova__tar_check_entry(struct archive_entry *ent, unsigned count, char *base,
    size_t basesz, struct sw_err *e);

/* libarchive's error as ours: errno values pass through, the rest is SW_EFORMAT. */
int ova__tar_errf(struct archive *a, struct sw_err *e, const char *what);

/* Space for the header(s) of one member: pax header + records + ustar header. */
#define OVA_TAR_HDR_MAX 2560

/*
 * The header blocks of a regular-file member (a pax header first when the
 * name exceeds 100 bytes or the size 8 GiB - 1).  0 or -ENAMETOOLONG/-ENOBUFS.
 */
int ova__tar_header(const char *name, uint64_t size, int64_t mtime, unsigned char *out,
    size_t outsz, size_t *ret_len);

#endif
