/*
 * Shared by the daemon's files: the job slots (daemon.c: connection,
 * consumption, jobs) and the answer of a finished delivery (answer.c).
 * Each slot owns one broker connection and runs at most one job thread.
 */
#ifndef WRK_DAEMON_INT_H
#define WRK_DAEMON_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/amqp.h"
#include "worker/deliver.h"
#include "worker/storehealth.h"

#define HELD_MAX          16      /* deliveries parked while the slot is busy (multi-queue) */
#define CONFIRM_TIMEOUT   30000
#define BACKOFF_BASE_MS   200
#define BACKOFF_CAP_MS    30000
#define PUMP_MS           250     /* longest a slot sleeps without servicing its connection */
#define CANCEL_WAIT_S     30      /* after cancelling at the end of grace, how long jobs get to stop */
/*
 * A slot thread silent this long is stuck (its longest legitimate blocking
 * call is a confirm wait of CONFIRM_TIMEOUT): the watchdog is withheld so
 * the service manager restarts the daemon.
 */
#define SLOT_STALL_MS     (3u * CONFIRM_TIMEOUT)

struct daemon;

struct slot {
	struct daemon *d;
	unsigned idx;
	pthread_t thr;
	int efd;
	struct wrk_dispatch disp;

	struct wrk_amqp *c;
	unsigned gen;                   /* bumped on every new connection */
	size_t node;                    /* index in [amqp] url of the next connection attempt */
	size_t cur;                     /* ... and of the live one */
	int consuming;
	char tags[16][WRK_AMQP_STR_MAX];
	size_t ntags;

	/* The job: started and reaped by the slot thread only. */
	int busy;
	pthread_t jthr;
	atomic_int cancel;
	_Atomic uint64_t deadline_ms;   /* published by the job once parsed; 0: not yet */
	unsigned job_gen;
	struct wrk_amqp_msg msg;
	char job_id[40];                /* the job's command id, lower case ("" unreadable) */

	/* The control queue (cancel requests), consumed without acks; "" none yet. */
	char ctl_tag[WRK_AMQP_STR_MAX];

	/* Mailbox from the job thread, under mu. */
	pthread_mutex_t mu;
	int done;
	struct wrk_outcome out;
	char *prog;
	size_t prog_len;
	char prog_rk[96];

	struct wrk_amqp_msg held[HELD_MAX];
	size_t nheld;

	_Atomic uint64_t beat_ms;       /* sw_mono_ms() of the slot thread's last turn */
};

struct daemon {
	const struct wrk_config *cfg;
	struct wrk_topology topo;
	struct wrk_running *running;
	struct slot *slots;
	unsigned nslots;
	atomic_int stopping;            /* stop consuming */
	atomic_int cancel_all;          /* grace is over: cancel running jobs */
	atomic_int exited;              /* slots that returned */
	atomic_uint connected;          /* slots that connected at least once: READY=1 when all have */
	struct wrk_storehealth *health; /* NULL: no stores configured */
};

/* Closes the slot's connection; the slot reconnects on its next turn. */
void wrk__slot_drop_conn(struct slot *s);
/* An event that arrives while the slot waits for something else (ud: the slot). */
void wrk__slot_on_event(void *ud, struct wrk_amqp_ev *ev);
/* Whether m came from the slot's control queue. */
int wrk__slot_is_control(const struct slot *s, const struct wrk_amqp_msg *m);
/* A cancel request from the control queue (daemon.c). */
void wrk__slot_control(struct slot *s, const struct wrk_amqp_msg *m);
/* Publishes what the finished job decided, then acks or nacks its delivery (answer.c). */
void wrk__slot_finish_job(struct slot *s);

#endif
