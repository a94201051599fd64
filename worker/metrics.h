/*
 * The daemon's Prometheus metrics: process-wide counters that the daemon
 * bumps as jobs start and finish, rendered in the Prometheus text exposition
 * format 0.0.4, and an embedded HTTP endpoint (libmicrohttpd) that serves
 * them at /metrics on [metrics] listen.  Every counter is updated under one
 * mutex: updates happen a few times per command, so contention is nil and the
 * rendering sees a consistent snapshot (a histogram's count equals its +Inf bucket).
 *
 * What is counted:
 *   snapworker_commands_total{type,outcome}     finished deliveries; outcome is
 *       succeeded, failed, requeued (retryable, handed back; or sent back to wait for a
 *       concurrency token) or invalid (never parsed);
 *       type is a protocol type or "other" (the label set is bounded)
 *   snapworker_job_duration_seconds{type}       histogram of parsed commands' run time
 *   snapworker_bytes_transferred_total          bytes of the files that succeeded commands
 *       produced (wrk_outcome.bytes_produced: result.files sizes; Delete* excluded since
 *       their files are removed ones);
 *       bytes moved by a command that later failed are not counted
 *   snapworker_jobs_in_flight / snapworker_job_slots
 *   snapworker_broker_reconnects_total          broker connections re-opened after a loss
 *   snapworker_vcenter_logins_total             vCenter logins reported through
 *       wrk_metrics_vcenter_login() (the command layer's hook)
 *   snapworker_store_healthy{store}             1 while the store's health probe succeeds,
 *       0 while it is sick (worker/storehealth.h); store is a configured store URL, so
 *       the label set is bounded by the configuration (at most WRK_METRICS_STORES_MAX)
 *   snapworker_limit_tokens_held{kind}          concurrency tokens this worker holds now
 *   snapworker_limit_waits_total{kind}          commands sent back to wait for a token;
 *       kind is vcenter, host or datastore (worker/limits.h)
 */
#ifndef WRK_METRICS_H
#define WRK_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/err.h"

enum wrk_metrics_outcome {
	WRK_METRICS_SUCCEEDED = 0,
	WRK_METRICS_FAILED,
	WRK_METRICS_REQUEUED,
	WRK_METRICS_INVALID,
	WRK_METRICS_NOUTCOMES
};

/* Upper bounds of the job duration histogram, in seconds (+Inf is implicit). */
#define WRK_METRICS_BUCKETS { 1, 5, 30, 60, 300, 900, 1800, 3600, 7200, 21600 }
#define WRK_METRICS_NBUCKETS 10

/* Largest rendering; a bound, not an expectation (a full rendering is ~10 KiB). */
#define WRK_METRICS_RENDER_MAX (256 * 1024)

/* Zeroes every counter (start of a daemon run; tests). */
void wrk_metrics_reset(void);

/*
 * One finished delivery.  type: the command's type name ("" or unknown:
 * "other"); elapsed_ms goes into the histogram unless outcome is INVALID.
 */
void wrk_metrics_command(const char *type, enum wrk_metrics_outcome outcome,
    uint64_t elapsed_ms, uint64_t bytes);

void wrk_metrics_job_start(void);
void wrk_metrics_job_end(void);
void wrk_metrics_set_slots(unsigned n);
void wrk_metrics_broker_reconnect(void);
/* A job slot's broker connection opened (+1) or closed (-1). */
void wrk_metrics_broker_conn(int delta);
/*
 * The worker's health as /health serves it: healthy while every job slot is
 * connected to the broker and every store's probe succeeds (vCenter is not
 * part of it: storage commands work without one).  Appends a JSON object to
 * b and returns 1 (healthy), 0 (not) or a negative code.
 */
int wrk_metrics_health(struct sw_buf *b);
void wrk_metrics_vcenter_login(void);
/* Concurrency limits: tokens of kind (WRK_LIMIT_*) taken (+1) or given back (-1), a wait. */
void wrk_metrics_limit_held(int kind, int delta);
void wrk_metrics_limit_wait(int kind);

/* The health of a configured store (its URL); a URL beyond the first STORES_MAX is dropped. */
#define WRK_METRICS_STORES_MAX 64
void wrk_metrics_store_healthy(const char *url, int healthy);

/* Appends the text exposition (format 0.0.4) of every metric to b. */
int wrk_metrics_render(struct sw_buf *b, struct sw_err *e);

/*
 * Parses a listen address: "IPv4:PORT", "[IPv6]:PORT" or ":PORT" (all IPv4
 * addresses).  Numeric hosts only: a metrics socket bound through a DNS
 * answer could end up somewhere unintended.  Port 0 picks a free port.
 */
int wrk_metrics_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
    struct sw_err *e);

struct wrk_metrics_server;

/* Starts the endpoint on listen (see wrk_metrics_parse_listen). */
int wrk_metrics_server_start(const char *listen, struct wrk_metrics_server **ret,
    struct sw_err *e);
/* The bound port (useful with port 0). */
unsigned wrk_metrics_server_port(const struct wrk_metrics_server *srv);
/* Stops and frees; NULL is fine. */
void wrk_metrics_server_stop(struct wrk_metrics_server *srv);

#endif
