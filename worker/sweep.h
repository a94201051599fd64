/*
 * The sweeper: removes what crashed commands left behind.
 *
 *  - vCenter: worker VMs tagged snapworker.command (vmware/) that are older
 *    than max_age and whose command does not run in this process are
 *    destroyed, their disks detached first (vmw_worker_vm_destroy), on every
 *    URL of every configured credential set.
 *  - Stores: crash journals (NAME~vcenter.part, worker/commands/vc.h) older
 *    than max_age are undone (the worker VM of their command, then the VM
 *    snapshot they name) and removed; uncommitted debris (ovastore's .part
 *    files of an object without its meta) older than max_age is removed
 *    with ova_debris_remove(), never an object with a younger .part file (a
 *    write in progress).  Only snapshots/, template/ and volumes/ are walked,
 *    at most WRK_SWEEP_MAX_DEPTH levels, never following symbolic links.
 *    In .snapworker/: CreateVolume markers and lock files of crashed
 *    attempts older than max_age (a lock file still locked is never removed).
 *
 * "No longer running anywhere" cannot be known across workers; age is the
 * criterion: max_age should be at least the longest command deadline in use
 * (default 6 h, PROTOCOL.md's default for snapshot and template work, plus
 * the cleanup allowance).
 */
#ifndef WRK_SWEEP_H
#define WRK_SWEEP_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/err.h"

struct wrk_config;

#define WRK_SWEEP_MAX_DEPTH     8
#define WRK_SWEEP_DEFAULT_AGE   (6u * 3600u + 600u)
#define WRK_SWEEP_DEFAULT_EVERY 3600u

struct wrk_sweep_opts {
	uint64_t max_age_s;         /* leftovers are older than this */
	int dry_run;                /* report, change nothing */
	/* Whether command id runs in this process (its VM is not a leftover); may be NULL. */
	int (*is_running)(void *ud, const char *id);
	void *running_ud;
	/* One line per finding or action ("destroyed worker VM vm-42 (cmd ...)"); may be NULL. */
	void (*report)(void *ud, const char *line);
	void *report_ud;
};

struct wrk_sweep_stats {
	unsigned vms_seen, vms_removed;
	unsigned journals_undone, debris_removed;
	unsigned errors;
};

/*
 * One sweep over every configured vCenter and store.  Errors of one vCenter
 * or one object are counted (and reported) and the sweep goes on; the return
 * is 0, or the first error when nothing could be swept.
 */
int wrk_sweep_run(const struct wrk_config *cfg, const struct wrk_sweep_opts *o,
    struct wrk_sweep_stats *ret_stats, atomic_int *cancel, struct sw_err *e);

/*
 * The daemon's sweeper thread: one sweep at start, then every interval_s.
 * Stop joins it (cancelling a sweep in progress); NULL is fine.
 */
struct wrk_sweeper;
int wrk_sweeper_start(const struct wrk_config *cfg, const struct wrk_sweep_opts *o,
    unsigned interval_s, struct wrk_sweeper **ret, struct sw_err *e);
void wrk_sweeper_stop(struct wrk_sweeper *sw);

#endif
