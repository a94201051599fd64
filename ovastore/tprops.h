/*
 * ovastore template.properties: CloudStack's record of a template
 * directory on the secondary store (TemplateLocation reads it to list the
 * templates a store holds, template/tmpl/<account>/<template>/, see
 * ovastore/layout.h).  Parsed with the Java properties rules CloudStack's
 * reader uses (common/props.h), written with the keys and order its VMware
 * template writer uses, through the atomic-write helper (ovastore/atomic.h).
 *
 * Errors and conventions as in ovastore.h.  Nothing here logs.
 */
#ifndef OVASTORE_TPROPS_H
#define OVASTORE_TPROPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define OVA_TPROPS_NAME  "template.properties"
#define OVA_TPROPS_MAX   (64 * 1024)
#define OVA_TPROPS_KEYS  256

/*
 * What is written: the keys CloudStack's VMware code writes for an OVA
 * template (VmwareStorageProcessor/VmwareStorageManagerImpl
 * postCreatePrivateTemplate and TemplateLocation): filename, description,
 * checksum, hvm, size, ova, id, public, ova.filename, uniquename,
 * ova.virtualsize, virtualsize, ova.size.  "ova=false" marks the new format
 * (no real .ova on the share), as CloudStack writes it after the storage
 * format change.
 */
struct ova_tprops {
	int64_t id;                  /* template id */
	const char *uniquename;      /* the object's NAME */
	uint64_t size;               /* physical bytes of the object */
	uint64_t virtual_size;       /* bytes; CloudStack treats 0 as corrupt */
	int legacy;                  /* 1: the object is a real NAME.ova */
	const char *checksum;        /* hex digest or NULL */
	const char *description;     /* NULL: "" */
	int is_public;
};

/* Appends the file's text to out (unchanged on failure). */
int ova_tprops_format(const struct ova_tprops *p, struct sw_buf *out, struct sw_err *e);

/*
 * What is read: a parsed file (Java syntax: '#'/'!' comments, '=', ':' or
 * blank separators; at most OVA_TPROPS_MAX bytes and OVA_TPROPS_KEYS
 * entries).  Free it with ova_tprops_free.
 */
struct ova_tprops_file;
int ova_tprops_parse(const void *buf, size_t len, struct ova_tprops_file **ret_file,
    struct sw_err *e);
/* The value of key (last occurrence) or NULL. */
const char *ova_tprops_get(const struct ova_tprops_file *f, const char *key);
size_t ova_tprops_count(const struct ova_tprops_file *f);
void ova_tprops_free(struct ova_tprops_file *f);

/*
 * template.properties in the directory dirfd: read (SW_ENOTFOUND when
 * absent, SW_EPATH for a symbolic link or not a regular file, SW_ETOOBIG
 * over OVA_TPROPS_MAX bytes), written atomically (a uniquely named
 * temporary beside it, fsync, rename, fsync of the directory), and removed
 * (returns 1 when a file was removed, with its size in *ret_size (may be
 * NULL), 0 when there was none).  *ret_size of read and write (may be NULL)
 * is the file's size in bytes.
 */
int ova_tprops_read(int dirfd, struct ova_tprops_file **ret_file, uint64_t *ret_size,
    struct sw_err *e);
/* The file's bytes (malloc'd, NUL-terminated), for a byte-for-byte copy. */
int ova_tprops_read_raw(int dirfd, char **ret_buf, size_t *ret_len, struct sw_err *e);
int ova_tprops_write(int dirfd, const struct ova_tprops *p, uint64_t *ret_size,
    struct sw_err *e);
int ova_tprops_write_raw(int dirfd, const void *buf, size_t len, struct sw_err *e);
int ova_tprops_remove(int dirfd, uint64_t *ret_size, struct sw_err *e);

#endif
