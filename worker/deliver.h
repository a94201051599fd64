/*
 * One delivery, from body bytes to the final event and what to tell the
 * broker: parse (proto/), wait for the same id if it runs here already,
 * run the command (wrk_cmd_run, or a stand-in in tests), build the event.
 * Runs in a job thread; never touches the broker.  The rules:
 *
 *   succeeded                         final event, ack
 *   failed, not retryable             failed event, ack
 *   failed, retryable, attempts left  retrying event; the command goes to the delay
 *                                     queue of its attempt (republished with the next
 *                                     attempt number and the error), then ack
 *   failed, retryable, last attempt   failed event, dead-letter (with the error), ack
 *   a resource at its concurrency     waiting event (which limit); the command goes to
 *     limit (worker/limits.h)         the delay queue of [limits] wait with the SAME
 *                                     attempt number, then ack: no attempt is spent
 *   cancelled by shutdown             no event, requeue
 *   cancelled on request (before it   failed event CANCELLED (not retryable), ack; an
 *     started, or while it ran)       earlier attempt's journal undone first
 *   failed, retryable STORE_IO, and   no event, requeue: the store's trouble, not the
 *     a fresh probe finds its store   command's; the attempt is not spent (the daemon
 *     (or dest_store) sick            stops consuming while a store is sick)
 *   unparsable                        failed event if an id is readable, dead-letter
 *   out of memory before the command  no event, requeue
 *
 * An attempt is one try of the command; attempts are counted in a message
 * header, so the count survives worker and broker restarts.  A crash
 * redelivery (x-delivery-count) repeats the same attempt; the broker's
 * delivery limit bounds those.
 */
#ifndef WRK_DELIVER_H
#define WRK_DELIVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/job.h"

struct wrk_config;
struct wrk_limits;
struct wrk_running;

/* wrk_cmd_run() or a stand-in: the same contract (worker/job.h). */
typedef int (*wrk_runner_fn)(const struct wrk_job *job, struct proto_event *ev,
    struct sw_err *e);

enum wrk_disposition {
	WRK_DISP_ACK = 0,
	WRK_DISP_REQUEUE,
	WRK_DISP_DEAD,
	WRK_DISP_RETRY,                 /* republish for attempt + 1 after retry_delay_s, ack */
};

struct wrk_dispatch {
	const struct wrk_config *cfg;   /* may be NULL in tests */
	const char *worker;
	wrk_runner_fn run;
	/* Frees what run put in ev->result (wrk_cmd_result_clear); NULL: nothing to free. */
	void (*clear)(struct proto_event *ev);
	struct wrk_running *running;    /* NULL: no cross-slot protection */
	unsigned delivery_limit;        /* the command queues' x-delivery-limit (for the log) */
	/* Delays before attempts 2, 3, ... ([retry] delays); attempts in all: nretry + 1. */
	const unsigned *retry_delays_s;
	size_t nretry_delays;
	unsigned progress_interval_ms;  /* rate limit of progress events (0: 1000) */
	/* Called (from the job thread) with each progress event to publish; latest wins. */
	void (*on_progress)(void *ud, const char *json, size_t len, const char *routing_key);
	void *progress_ud;
	/*
	 * Where the job publishes its deadline (sw_mono_ms()) once the command is
	 * parsed, for the daemon's backstop (wrk_deadline_backstop); NULL: nowhere.
	 */
	_Atomic uint64_t *deadline;
	/*
	 * Asked from the job thread after a retryable STORE_IO failure, with the
	 * URL of the command's store (and of CopyTemplate's dest_store): 1 when a
	 * fresh health probe finds it sick (wrk_storehealth_confirm_sick).  NULL:
	 * never asked, the failure spends an attempt.
	 */
	int (*store_sick)(void *ud, const char *url);
	void *store_sick_ud;
	/* Concurrency limits; NULL: none configured (jobs get no limits_take hook). */
	struct wrk_limits *limits;
	unsigned limit_wait_s;          /* a waiting command's delay ([limits] wait) */
};

/*
 * The daemon's backstop for a job that runs past its deadline (the job
 * enforces the deadline itself; this catches a call that does not): raises
 * the job's cancel flag to WRK_CANCEL_DEADLINE once the monotonic clock is
 * WRK_DEADLINE_SLACK_MS past deadline_ms.  Returns 1 when it raised it.
 */
#define WRK_DEADLINE_SLACK_MS 5000u
int wrk_deadline_backstop(atomic_int *cancel, uint64_t deadline_ms, uint64_t now_ms);

struct wrk_outcome {
	enum wrk_disposition disp;
	char *event;                    /* final event JSON or NULL (free()) */
	size_t event_len;
	char routing_key[96];
	char id[72];                    /* "" when unreadable */
	char type[32];
	int parsed;                     /* the command was valid */
	int succeeded;
	int retryable;
	char errcode[32];               /* "" on success */
	char message[SW_ERR_MSG_MAX];
	uint64_t elapsed_ms;
	uint64_t bytes_produced;        /* succeeded: the sizes of result.files (0 for deletes) */
	unsigned attempt;               /* this attempt, 1-based */
	unsigned retry_delay_s;         /* WRK_DISP_RETRY: when attempt + 1 starts */
	int cancelled;                  /* answered CANCELLED on request (WRK_CANCEL_USER) */
	/* WRK_DISP_RETRY without spending the attempt: waiting for a token of limit. */
	int waiting;
	int limit_kind;                 /* WRK_LIMIT_* of limit */
	char limit[320];                /* "KIND:NAME" */
};

/*
 * Fills out (always); cancel may be NULL.  delivery_count: x-delivery-count
 * (0 on the first); attempt: the attempt header (0 when absent: the first).  body NULL: a body over the protocol's limit that the
 * AMQP layer drained unread (dead-lettered, no event; len is ignored).
 */
void wrk_dispatch_run(const struct wrk_dispatch *d, const void *body, size_t len,
    int64_t delivery_count, int64_t attempt, atomic_int *cancel, struct wrk_outcome *out);

void wrk_outcome_clear(struct wrk_outcome *o);

#endif
