/*
 * vCenter plumbing shared by the commands that need vCenter (CreateSnapshot,
 * CreateTemplate from a live volume, CreateVolume, ExtractVolume) and by the
 * sweeper: connecting with a configured credential set, mapping errors,
 * retrying TaskInProgress-style conflicts, and the data path
 *
 *   VM snapshot -> worker VM on the snapshot's chain of the volume's disk
 *   -> ExportVm streaming every disk straight into an ovastore writer
 *   -> cleanup (worker VM detached and destroyed, VM snapshot removed)
 *   -> commit of the object (its .ova.meta last)
 *
 * Crash safety: before the VM snapshot is taken a journal is written in the
 * store's state directory under the command id (ovastore/state.h: never the
 * object's debris, so deleting the object keeps it).  It names the VM and,
 * once taken, the snapshot, so a
 * redelivery after a crash removes exactly that snapshot and the worker VM
 * tagged with the command id before it starts again; the sweeper does the
 * same for journals older than the deadline that nobody came back for.
 */
#ifndef WRK_VC_H
#define WRK_VC_H

#include <stdatomic.h>
#include <stdint.h>

#include "ovastore/ovastore.h"
#include "ovastore/state.h"
#include "vmware/vmware.h"
#include "worker/commands/cmd_int.h"
#include "worker/config.h"

/* Cleanup gets a deadline of its own: an expired command deadline must not skip it. */
#define WRK_VC_CLEANUP_MS (5u * 60u * 1000u)

/*
 * Connects and logs in with credential set vc to url, which the caller has
 * checked with wrk_vcenter_allows().  TLS: the set's thumbprint, else its
 * cacert, else the command's thumbprint (cmd_thumbprint, may be NULL), else
 * no verification when the set says insecure, else the system CAs.
 */
int wrk_vc_connect(const struct wrk_vcenter *vc, const char *url, const char *cmd_thumbprint,
    uint64_t deadline_ms, atomic_int *cancel, struct vmw_conn **ret_conn, struct sw_err *e);
/* Logs out (briefly, not cancellable) and frees; NULL is fine. */
void wrk_vc_disconnect(struct vmw_conn *conn);

/*
 * The command's vCenter: its credential set must exist and be bound to its
 * URL (else VCENTER_AUTH, not retryable).  Errors are reported on c.
 */
int wrk__vc_open(struct wrk__cmd *c, struct vmw_conn **ret_conn, struct sw_err *e);

/*
 * Ends the command's use of conn (NULL is fine): back to the session pool
 * when reusable (the command's vCenter work went through), else logged out.
 */
void wrk__vc_close(struct wrk__cmd *c, struct vmw_conn *conn, int reusable);

/* wrk__fail() in the vCenter context. */
int wrk__vc_fail(struct wrk__cmd *c, int code);

/* The VM a command names by uuid (instance, then BIOS) or by name. */
int wrk__vc_find_vm(struct wrk__cmd *c, struct vmw_conn *conn, const struct proto_vm *vm,
    struct vmw_moref *ret_vm, struct sw_err *e);

/* Adapter from vmware/ progress to the job's progress callback (ud: the wrk__cmd). */
void wrk__vc_progress(void *ud, uint64_t bytes, int percent);

/*
 * Removes what an earlier, interrupted attempt of this command left in
 * vCenter: the VM snapshot its journal names (the command's journal in s, or
 * a legacy NAME~vcenter.part beside obj) and every worker VM tagged with the command id.  A journal touched within
 * the last [sweep] journal_stale (default 300 s; the running attempt touches it
 * every 10 s of transfer) belongs to an attempt still at work elsewhere:
 * this waits for it, and returns 1 when it finished meanwhile (look at the
 * store again).  Errors other than "already gone" are returned.
 */
int wrk__vc_recover(struct wrk__cmd *c, struct vmw_conn *conn, struct ova_store *s,
    const char *obj, struct sw_err *e);

/*
 * The export data path (see the top of this file) into the new-format
 * object obj of s, named after obj's NAME.  *ret_result lists its files.
 * Errors are reported on c (vCenter or store context as they happen).
 */
int wrk__vc_backup(struct wrk__cmd *c, struct vmw_conn *conn, const struct proto_vm *vm,
    const char *disk, struct ova_store *s, const char *obj, struct ova_result **ret_result,
    struct sw_err *e);

/*
 * Undoes what a journal records: destroys the worker VMs tagged with its
 * command id (disks detached first), then removes its snapshot.  Absent
 * things are success.
 */
int wrk_vc_journal_undo(struct vmw_conn *conn, const struct ova_journal *j,
    struct sw_err *e);

/* The commands' implementations; the wrk__cmd_* entry points call them. */
int wrk__vc_create_snapshot(struct wrk__cmd *c, struct sw_err *e);
int wrk__vc_extract_volume(struct wrk__cmd *c, struct sw_err *e);
int wrk__vc_create_volume(struct wrk__cmd *c, struct sw_err *e);
/* CreateTemplate (template_vc.c); wrk__cmd_create_template() calls it. */
int wrk__vc_create_template(struct wrk__cmd *c, struct sw_err *e);

#endif
