/*
 * Store health: a monitor thread per daemon probes every configured store
 * (ovastore/probe.h: a mount point, listable, statvfs, a written and fsync'ed
 * scratch file) every interval, and keeps a verdict per store that the job
 * slots read without ever touching the share themselves.
 *
 * A probe can block for as long as the file server does not answer (a hard
 * NFS mount blocks stat forever), so each probe runs in a detached thread of
 * its own, and the monitor waits for it at most timeout: a probe not back by
 * then makes its store sick ("no answer in 5 s").  The blocked thread is
 * abandoned, never joined; no second probe of that store starts until it
 * returns, so a hung mount costs one thread, not one per round.
 *
 * The rule the daemon applies (worker/daemon.c): commands of every store
 * arrive on one queue, so a worker cannot stop taking the commands of one
 * store only.  While ANY configured store is sick, its slots cancel their
 * consumers and take nothing; they consume again when every store is
 * healthy.  A command already running that fails with a retryable STORE_IO
 * error asks for a fresh probe (wrk_storehealth_confirm_sick); if the probe
 * finds its store sick, the command is handed back to the queue without an
 * event and without spending an attempt.
 *
 * Mount points ([store] require_mount): "true" makes a store that is not the
 * root of a mount sick; "false" never asks; "auto" (the default) requires a
 * mount once a probe has seen one there, so a store configured on a plain
 * directory (tests, a local disk) is only checked for reads and writes.
 *
 * Every transition is logged (sick with the reason; healthy again after N s)
 * and set in snapworker_store_healthy{store="<url>"}.
 */
#ifndef WRK_STOREHEALTH_H
#define WRK_STOREHEALTH_H

#include <stddef.h>

#include "common/err.h"
#include "worker/config.h"

#define WRK_STOREHEALTH_INTERVAL_MS 2000u
#define WRK_STOREHEALTH_TIMEOUT_MS  5000u
#define WRK_STOREHEALTH_REASON_MAX  SW_ERR_MSG_MAX

struct wrk_storehealth_opts {
	unsigned interval_ms;       /* between rounds; 0: WRK_STOREHEALTH_INTERVAL_MS */
	unsigned timeout_ms;        /* a probe not back by then: sick; 0: WRK_STOREHEALTH_TIMEOUT_MS */
	int require_mount;          /* WRK_MOUNT_AUTO, _REQUIRED, _NOT_REQUIRED */
};

struct wrk_storehealth;

/*
 * Starts the monitor for stores[0..n) (not copied: they must outlive it).
 * Until the first round has a verdict for a store, it counts as not healthy.
 */
int wrk_storehealth_start(const struct wrk_store *stores, size_t n,
    const struct wrk_storehealth_opts *o, struct wrk_storehealth **ret, struct sw_err *e);

/* Stops the monitor (abandoning a hung probe); NULL is fine. */
void wrk_storehealth_stop(struct wrk_storehealth *sh);

/* 1 when every store's last verdict is healthy; cheap (an atomic load).  NULL: 1. */
int wrk_storehealth_all_healthy(const struct wrk_storehealth *sh);

/*
 * The latest verdict for the store of url: 1 sick, 0 healthy, -1 not a
 * configured store.  ret_reason (may be NULL) gets why it is sick.
 */
int wrk_storehealth_sick(struct wrk_storehealth *sh, const char *url, char *ret_reason,
    size_t reasonsz);

/*
 * Asks for a round now and waits (at most timeout + interval) for a verdict
 * that started after the call: 1 when the store of url is sick, 0 when
 * healthy or unknown.  For the job thread after a STORE_IO failure: the slot
 * loop never calls this.
 */
int wrk_storehealth_confirm_sick(struct wrk_storehealth *sh, const char *url);

/*
 * One probe of a mount, waited for at most timeout_ms (a hung probe is
 * abandoned): 0 healthy, else negative with the reason in e ("no answer in
 * 5 s" for a timeout).  ret_is_mount (may be NULL): the mount point is the
 * root of a mount.  For `snapworker check` and tests.
 */
int wrk_storehealth_probe(const char *mount, int require_mount, unsigned timeout_ms,
    int *ret_is_mount, struct sw_err *e);

#endif
