/*
 * The daemon: `jobs` job slots, each a thread that owns one broker
 * connection (librabbitmq connections are not thread-safe) and consumes with
 * prefetch 1.  A delivery runs in a job thread of its own while the slot
 * thread keeps pumping the connection (heartbeats, progress events); the
 * final event is published with publisher confirms and only then is the
 * delivery acknowledged.  A connection lost while a job runs is re-opened
 * with exponential backoff and jitter; the job's delivery is then NOT
 * acknowledged (its tag belonged to the dead channel): the broker redelivers
 * it and the command, idempotent by id, answers from its committed output.
 *
 * Signals (handled by the thread calling wrk_daemon_run): SIGTERM/SIGINT stop
 * consuming, let running jobs finish within [worker] grace, then cancel and
 * requeue them; a second one cancels at once.  SIGHUP reopens the log file.
 */
#ifndef WRK_DAEMON_H
#define WRK_DAEMON_H

#include "common/err.h"
#include "worker/amqp.h"
#include "worker/deliver.h"

struct wrk_config;

/* Runs until stopped by a signal; 0 after a clean stop, or a negative code at start-up. */
int wrk_daemon_run(const struct wrk_config *cfg, wrk_runner_fn run,
    void (*clear)(struct proto_event *ev), struct sw_err *e);

/* The topology the configuration names (strings borrowed from cfg). */
void wrk_daemon_topology(const struct wrk_config *cfg, struct wrk_topology *ret);

#endif
