/*
 * Internals shared by the files of the broker client (amqp.h):
 *
 *   amqp.c           URL parsing, connect (TCP or TLS) and login, close, the
 *                    RPC reply check every synchronous call ends with
 *   amqp_topology.c  the PROTOCOL.md topology: exchanges, quorum queues,
 *                    bindings, private and passive queue declarations
 *   amqp_consume.c   consume, qos, publish with confirms, ack/nack and the
 *                    frame pump (wrk_amqp_wait, wrk_amqp_wait_confirm)
 */
#ifndef WRK_AMQP_INT_H
#define WRK_AMQP_INT_H

#include <stdint.h>
#include <sys/time.h>

#include <amqp.h>

#include "worker/amqp.h"

/* The one channel every connection opens. */
#define CHAN 1
#define WRK_AMQP_CONFIRM_WINDOW 4096

struct wrk_amqp {
	amqp_connection_state_t conn;
	int ok;
	int blocked;
	int confirm;
	uint64_t next_seq;      /* sequence number of the next publish in confirm mode */
	uint64_t acked;         /* every publish <= acked is confirmed */
	/* Acks beyond the watermark (the broker may confirm out of order), by seq % WINDOW. */
	uint64_t ooo[WRK_AMQP_CONFIRM_WINDOW / 64];
	int returned;           /* a mandatory publish came back since the last wait_confirm */
	int nacked;
	unsigned heartbeat;
	unsigned timeout_ms;
	int side_open;          /* SIDE_CHAN is open (a 404 on it closes it; reopened when needed) */
};

/* A second channel for passive declarations whose 404 must not close CHAN. */
#define SIDE_CHAN 2

/*
 * Checks the last RPC; on failure the connection is marked dead (a closed
 * channel is not reopened) and e says what failed.
 */
int wrk__amqp_rpc_check(struct wrk_amqp *c, const char *what, struct sw_err *e);

/* ms as a struct timeval, for librabbitmq's timeouts. */
struct timeval wrk__amqp_ms_tv(unsigned ms);

/* Copies b into dst as a string, truncated to dstsz - 1 bytes (dstsz > 0). */
void wrk__amqp_bytes_copy(char *dst, size_t dstsz, amqp_bytes_t b);

#endif
