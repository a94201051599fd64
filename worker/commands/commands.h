/*
 * The command implementations behind wrk_cmd_run() (worker/job.h): one file
 * per command family (snapshot, template, volume) on top of ovastore/ and
 * vmware/, a dispatcher (dispatch.c) and what they share.  Every error is
 * classified (protocol code, retryable) where it is made, with wrk__fail().
 *
 * Choices made here where PROTOCOL.md leaves room:
 *
 *  - RegisterTemplate stores the template as the new-format object
 *    template/tmpl/<account_id>/<template_id>/<name>, where <name> is the
 *    command id (a UUID: unique, a safe file name, and the same for a
 *    redelivered command, which is what makes the command idempotent), and
 *    writes template/tmpl/<account_id>/<template_id>/template.properties
 *    (WRK_TPROPS_NAME) after the object's meta file.  template.properties is
 *    the commit record of a registration: an object whose directory has no
 *    matching template.properties is the debris of an interrupted attempt and
 *    is replaced.  A template directory whose template.properties names
 *    another, intact object is refused (the template is registered already).
 *  - ExtractTemplate writes <extract_dir>/<NAME>-<command id>.ova (or
 *    <command id>.ova when that would be longer than a file name), so a
 *    redelivery finds its own output; download.path is that file name.
 *    Legacy objects are hard-linked (or reflinked, or copied when the
 *    extract area is on another file system); new-format objects are packed.
 *  - DeleteTemplate removes template.properties first (when it names the
 *    object or names nothing), so that CloudStack's template listing never
 *    sees a half-deleted template, then the object, then the empty directory.
 *    Its files list has template.properties first.  DeleteSnapshot and
 *    DeleteTemplate report format NONE and no sizes when nothing was there.
 *  - CopyTemplate copies template.properties too, after the object's meta.
 *
 * Event result ownership: every string and array that wrk_cmd_run() puts in
 * ev->result is allocated; wrk_cmd_result_clear() frees them (the daemon
 * calls it once the event is built).
 */
#ifndef WRK_COMMANDS_H
#define WRK_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct proto_event;

/* ------------------------------------------------------ template.properties */

#define WRK_TPROPS_NAME  "template.properties"
#define WRK_TPROPS_MAX   (64 * 1024)
#define WRK_TPROPS_KEYS  256

/*
 * The keys CloudStack's VMware code writes for an OVA template
 * (VmwareStorageProcessor/VmwareStorageManagerImpl postCreatePrivateTemplate
 * and TemplateLocation): filename, description, checksum, hvm, size, ova,
 * id, public, ova.filename, uniquename, ova.virtualsize, virtualsize,
 * ova.size.  "ova=false" marks the new format (no real .ova on the share),
 * as CloudStack writes it after the storage format change.
 */
struct wrk_tprops {
	int64_t id;                  /* template id */
	const char *uniquename;      /* the object's NAME */
	uint64_t size;               /* physical bytes of the object */
	uint64_t virtual_size;       /* bytes; CloudStack treats 0 as corrupt */
	int legacy;                  /* 1: the object is a real NAME.ova */
	const char *checksum;        /* hex digest or NULL */
	const char *description;     /* NULL: "" */
	int is_public;
};

/* Appends the file's text to out. */
int wrk_tprops_format(const struct wrk_tprops *p, struct sw_buf *out, struct sw_err *e);

/* A parsed properties file (Java syntax: '#'/'!' comments, '=', ':' or blank separators). */
struct wrk_props;
int wrk_props_parse(const void *buf, size_t len, struct wrk_props **ret_props, struct sw_err *e);
/* The value of key (last occurrence) or NULL. */
const char *wrk_props_get(const struct wrk_props *p, const char *key);
size_t wrk_props_count(const struct wrk_props *p);
void wrk_props_free(struct wrk_props *p);

/*
 * template.properties in the directory dirfd: read (SW_ENOTFOUND when
 * absent; at most WRK_TPROPS_MAX bytes, not following symbolic links),
 * written atomically (temporary, fsync, rename, fsync of the directory), and
 * removed (returns 1 when a file was removed, with its size in *ret_size
 * (may be NULL), 0 when there was none).
 */
int wrk_tprops_read(int dirfd, struct wrk_props **ret_props, uint64_t *ret_size,
    struct sw_err *e);
/* The file's bytes (malloc'd, NUL-terminated), for a byte-for-byte copy. */
int wrk_tprops_read_raw(int dirfd, char **ret_buf, size_t *ret_len, struct sw_err *e);
int wrk_tprops_write(int dirfd, const struct wrk_tprops *p, uint64_t *ret_size,
    struct sw_err *e);
int wrk_tprops_write_raw(int dirfd, const void *buf, size_t len, struct sw_err *e);
int wrk_tprops_remove(int dirfd, uint64_t *ret_size, struct sw_err *e);

#endif
