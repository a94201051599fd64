/*
 * vCenter for the commands that need it (CreateSnapshot, CreateTemplate
 * from a live volume, CreateVolume, ExtractVolume), on top of the
 * daemon-level module worker/vcenter.h (connection, session pool, journal
 * undo, shared with the sweeper): the command's session, mapping errors,
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
 * redelivery after a crash (which finds it by command id) removes exactly
 * that snapshot and the worker VM tagged with the command id before it
 * starts again; the sweeper does the same for journals older than the
 * deadline that nobody came back for.
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
#include "worker/vcenter.h"

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
 * vCenter: the export lease, worker VMs tagged with the command id and VM
 * snapshot its journal names (the command's journal in s, or a legacy
 * NAME~vcenter.part beside obj).  When the command lock this attempt holds is
 * seen by every host ([store] lock_scope, else the mount's options), the
 * earlier attempt is dead and this undoes at once.  Otherwise a journal
 * touched within the last [sweep] journal_stale (default 300 s; the running
 * attempt touches it every 10 s of transfer) may belong to an attempt still
 * at work elsewhere: this waits for it, and returns 1 when it finished
 * meanwhile (look at the store again).  Errors other than "already gone" are
 * returned.
 */
int wrk__vc_recover(struct wrk__cmd *c, struct vmw_conn *conn, struct ova_store *s,
    const char *obj, struct sw_err *e);

/*
 * A command cancelled before it started (worker/job.h, WRK_CANCEL_USER):
 * undoes what an interrupted earlier attempt of it left in vCenter, as its
 * crash journal records, when the command lock proves that attempt dead;
 * else leaves the journal to the sweeper.  0 when nothing is left to do.
 */
int wrk__vc_undo_cancelled(struct wrk__cmd *c, struct sw_err *e);

/*
 * The export data path (see the top of this file) into the new-format
 * object obj of s, named after obj's NAME, written with the store writer's
 * wflags (OVA_WRITER_KEEP_CACHE for a caller that reads the disks back at
 * once).  *ret_result lists its files.  Errors are reported on c (vCenter
 * or store context as they happen).
 */
int wrk__vc_backup(struct wrk__cmd *c, struct vmw_conn *conn, const struct proto_vm *vm,
    const char *disk, struct ova_store *s, const char *obj, unsigned wflags,
    struct ova_result **ret_result, struct sw_err *e);

/*
 * Where a backup's time went, in milliseconds: the vCenter steps (finding
 * the VM, the VM snapshot, the worker VM, the export lease until it is
 * ready, the OVF descriptor and lease completion, the cleanup) and the
 * stream (first disk byte to last, every disk), then the commit on the
 * share.  wrk__vc_backup logs them (info) when it succeeds.
 */
struct wrk__phases {
	uint64_t find, snapshot, worker_vm, lease, stream, descriptor, cleanup, commit;
	uint64_t bytes;        /* disk bytes streamed */
};

/* The fixed cost: the sum of the vCenter steps. */
uint64_t wrk__phases_vcenter(const struct wrk__phases *p);

/*
 * "phases: vcenter V ms (find F, snapshot S, worker_vm W, lease L,
 * descriptor D, cleanup C), stream T ms (B bytes, R MiB/s), commit K ms",
 * cut to bufsz; returns what snprintf returns.
 */
int wrk__phases_fmt(const struct wrk__phases *p, char *buf, size_t bufsz);

#endif
