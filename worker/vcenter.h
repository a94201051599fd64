/*
 * The daemon-level vCenter module, used by the commands (worker/commands/)
 * and by the sweeper: connecting with a configured credential set, the
 * process's pool of idle sessions, the retried operations both need
 * (removing a VM snapshot while the VM is busy, destroying the worker VMs
 * tagged with a command id) and undoing what a crash journal
 * (ovastore/state.h) records.
 */
#ifndef WRK_VCENTER_H
#define WRK_VCENTER_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/err.h"
#include "ovastore/state.h"
#include "vmware/vmware.h"
#include "worker/config.h"

/* Cleanup gets a deadline of its own: an expired command deadline must not skip it. */
#define WRK_VC_CLEANUP_MS (5u * 60u * 1000u)
/* Bytes of a pool key (credential set, URL, a command's thumbprint pin). */
#define WRK_VC_KEY_MAX 1024

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
 * Commands keep their vCenter sessions for the next command of the same
 * key (a login per command would load vCenter and count against its session
 * limit).  take: an idle session for key or NULL (sessions idle too long are
 * logged out on the way); put: back to the pool (logged out when full).
 */
struct vmw_conn *wrk_vc_pool_take(const char *key);
void wrk_vc_pool_put(const char *key, struct vmw_conn *conn);
/* Logs out and frees the idle sessions; call it once no job runs any more. */
void wrk_vc_pool_drain(void);

/*
 * After a busy answer (TaskInProgress, ConcurrentAccess: another task holds
 * the VM) waits *delay_ms (doubling with jitter, capped) unless that passes
 * deadline_ms or *cancel is set.  0: try again.
 */
int wrk_vc_busy_wait(unsigned *delay_ms, uint64_t deadline_ms, atomic_int *cancel);

/* Removes a VM snapshot, retrying while the VM is busy. */
int wrk_vc_snapshot_remove(struct vmw_conn *conn, const struct vmw_moref *snap,
    uint64_t deadline_ms, struct sw_err *e);

/* Destroys every worker VM tagged with tag (disks detached first). */
int wrk_vc_destroy_tagged(struct vmw_conn *conn, const char *tag, uint64_t deadline_ms,
    struct sw_err *e);

/*
 * Undoes what a journal records: destroys the worker VMs tagged with its
 * command id (disks detached first), then removes its snapshot.  Absent
 * things are success.
 */
int wrk_vc_journal_undo(struct vmw_conn *conn, const struct ova_journal *j,
    struct sw_err *e);

#endif
