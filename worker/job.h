/*
 * The contract between the daemon (worker/: broker, slots, events) and the
 * command implementations (worker/commands/).  A command runs in a job
 * thread of its own; it never touches the broker.  It reports progress
 * through a callback and returns its result in a proto_event that the daemon
 * completes (id, type, worker, times, status) and publishes.
 */
#ifndef WRK_JOB_H
#define WRK_JOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct proto_command;
struct proto_event;
struct wrk_config;
struct wrk_limit_key;

/* Why the daemon wants a job to stop (the value of *wrk_job.cancel). */
#define WRK_CANCEL_SHUTDOWN 1   /* SIGTERM and the grace period is over: hand the command back */
#define WRK_CANCEL_DEADLINE 2   /* the command's deadline passed and the job has not stopped */
/*
 * A cancel request for this command (docs/protocol.md, "Cancel"): stop at
 * the next I/O boundary, undo through the failure path, answer a final
 * failed event CANCELLED.  Set before the job starts when the command's
 * cancel record exists: then wrk_cmd_run() only undoes what an earlier,
 * interrupted attempt left (its crash journal) and fails with CANCELLED.
 */
#define WRK_CANCEL_USER     3

struct wrk_job {
	const struct proto_command *cmd;
	const struct wrk_config *cfg;
	const char *worker_name;
	/* Set (non-zero, WRK_CANCEL_*) by the daemon when the job must stop. */
	atomic_int *cancel;
	uint64_t deadline_ms;       /* sw_mono_ms() value after which the job fails with TIMEOUT */
	/*
	 * Progress report, called from the job thread; cheap and non-blocking
	 * (the daemon rate-limits and publishes from the connection's thread).
	 */
	void (*progress)(void *ud, int percent, uint64_t bytes);
	void *progress_ud;
	/*
	 * The store mount on which the attempt holds the command's lock (NULL:
	 * no lock).  Whether that lock proves an earlier attempt dead depends on
	 * the mount (ovastore/mountinfo.h); a command asks only when it meets an
	 * earlier attempt's journal.
	 */
	const char *lock_mount;
	/*
	 * Concurrency limits (worker/limits.h); NULL when none is configured:
	 * then nothing is asked and nothing costs.  A command that exports
	 * calls it once it knows the resources it will load (vCenter, ESXi
	 * host, datastores), before it takes a VM snapshot.  0: the tokens are
	 * held until the job ends (the daemon gives them back); 1: a resource
	 * is at its limit: e says which, and the command must fail at once
	 * with nothing done in vCenter (the daemon sends it back to wait,
	 * without spending an attempt); negative: the same, after a broker error.
	 */
	int (*limits_take)(void *ud, struct wrk_limit_key *keys, size_t n, struct sw_err *e);
	void *limits_ud;
};

/*
 * Runs job->cmd.  On success fills ev's result and returns 0.  On failure
 * returns a negative code with e (required) describing the error and
 * classified (e->kind: the protocol error code of proto.h, e->retryable)
 * where it was made.  Must be idempotent by command id: an output that is
 * already committed is answered again without redoing the work.
 */
int wrk_cmd_run(const struct wrk_job *job, struct proto_event *ev, struct sw_err *e);

/* Frees what wrk_cmd_run() allocated in ev->result and zeroes it; NULL is fine. */
void wrk_cmd_result_clear(struct proto_event *ev);

#endif
