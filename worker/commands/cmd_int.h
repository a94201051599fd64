/*
 * Shared by the command implementations in worker/commands/ (not for the
 * daemon): the running command's context, store resolution, event results
 * and error reporting.
 */
#ifndef WRK_CMD_INT_H
#define WRK_CMD_INT_H

#include <stdint.h>

#include "common/err.h"
#include "ovastore/ovastore.h"
#include "proto/proto.h"
#include "worker/config.h"
#include "worker/job.h"
#include "worker/vcenter.h"

struct wrk__cmd {
	const struct wrk_job *job;
	const struct proto_command *cmd;
	struct proto_event *ev;
	/* The command's error: wrk__fail() classifies it where it is made. */
	struct sw_err *e;
	/* Which pooled vCenter sessions fit this command (set by wrk__vc_open). */
	char vc_key[WRK_VC_KEY_MAX];
};

/*
 * Classifies the command's error (c->e, whose code is code) as the protocol
 * error for code met in context ctx, unless it has a class already, and
 * returns code.  The mapping is proto's, except for a stop: once the
 * command's deadline has passed, a stop is TIMEOUT, not retryable (the
 * publisher's deadline is over); otherwise -ECANCELED is CANCELLED.
 */
int wrk__fail(struct wrk__cmd *c, int code, enum proto_errctx ctx);
/* The same with a fixed protocol error. */
int wrk__fail_as(struct wrk__cmd *c, int code, enum proto_errcode pe, int retryable);

/* -ECANCELED / -ETIMEDOUT (with e set) when the job must stop, else 0. */
int wrk__check_stop(const struct wrk__cmd *c, struct sw_err *e);

/*
 * Opens the store the command names by URL.  An unknown URL is
 * UNKNOWN_STORE (not retryable); a mount point that cannot be opened is
 * STORE_IO (retryable: the share may be remounted).  *ret_ws may be NULL.
 */
int wrk__store_open(struct wrk__cmd *c, const char *url, struct ova_store **ret_store,
    const struct wrk_store **ret_ws, struct sw_err *e);

/*
 * Result building: every string is copied (see wrk_cmd_result_clear()).
 * An install_path in the template area (template/tmpl/...) gets ".ova"
 * appended (CloudStack's form of a template path, .../NAME.ova); snapshot
 * and volume paths are kept.
 */
int wrk__result_set(struct wrk__cmd *c, const char *install_path, enum ova_format fmt,
    int has_sizes, uint64_t physical, uint64_t virtual_size);
int wrk__result_add_file(struct wrk__cmd *c, const char *path, uint64_t size,
    const char *sha256);
int wrk__result_add_files(struct wrk__cmd *c, const struct ova_file *files, size_t n);
/*
 * Computes the sha256 of the result's files that have none and are at most
 * max_size bytes (OVF, meta, template.properties), so that a fresh result
 * and one answered again from the share list the same digests.
 */
int wrk__result_fill_digests(struct wrk__cmd *c, struct ova_store *s, uint64_t max_size,
    struct sw_err *e);
int wrk__result_download(struct wrk__cmd *c, const char *path, uint64_t size);

/*
 * The command id in lower case (out: at least PROTO_ID_MAX + 1 bytes), the
 * name of an object a command without a name of its own writes: CloudStack
 * matches file names lower-cased.
 */
void wrk__id_name(const struct wrk__cmd *c, char *out, size_t outsz);

/* "DIR/NAME" -> DIR (""), NAME, after ovastore's validation. */
int wrk__split(const char *obj, char *dir, size_t dirsz, char *name, size_t namesz,
    struct sw_err *e);

/*
 * The store's extract area ([store] extract_dir, default <mount>/extract),
 * created when missing (the operator names it: it is trusted).
 */
int wrk__extract_dir_open(const struct wrk_store *ws, struct sw_err *e);

/*
 * Whether an .ova of size bytes already in the extract area is the complete
 * output for the object info describes.  It was renamed into place whole, so
 * only a changed object can make it wrong: a legacy archive is exposed as is
 * (same size); a generated one is the object's files plus tar headers and
 * padding.
 */
int wrk__extract_size_ok(const struct ova_info *info, uint64_t size);

/*
 * The OVF of obj (either format; info from ova_inspect), at most OVA_OVF_MAX
 * bytes, NUL-terminated in *ret_ovf (free()), its length in *ret_len.
 */
int wrk__ovf_read(struct ova_store *s, const char *obj, const struct ova_info *info,
    char **ret_ovf, size_t *ret_len, struct sw_err *e);

/* Opens DIR beneath the store root (without following links); SW_ENOTFOUND when absent. */
int wrk__dir_open(struct ova_store *s, const char *dir, int create, struct sw_err *e);

/*
 * The result of a template command, read back from the share: the object's
 * files (with digests of the small ones) and its template.properties of
 * psize bytes in dir.  A fresh result and a repeated answer are the same.
 */
int wrk__template_answer(struct wrk__cmd *c, struct ova_store *s, const char *obj,
    const char *dir, uint64_t psize, struct sw_err *e);

/* Per-command entry points (one file per family; the vCenter ones in *_vc.c, volume.c). */
int wrk__cmd_delete_snapshot(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_create_snapshot(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_delete_template(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_extract_template(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_copy_template(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_register_template(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_create_template(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_create_volume(struct wrk__cmd *c, struct sw_err *e);
int wrk__cmd_extract_volume(struct wrk__cmd *c, struct sw_err *e);

#endif
