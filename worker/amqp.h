/*
 * A thin layer over librabbitmq 0.11 for the worker and snapctl: one
 * connection with one channel, URL parsing (amqp:// and amqps:// with a
 * verified certificate), login that asks for consumer_cancel_notify,
 * connection.blocked and publisher confirms, the PROTOCOL.md topology, and a
 * frame pump that returns one event at a time (delivery, confirm, return,
 * consumer cancel, blocked/unblocked) so the caller can interleave it with
 * its own work.  Not thread-safe: one struct wrk_amqp per thread.
 * librabbitmq sends heartbeats only from inside its calls, so a caller must
 * call wrk_amqp_wait() at least every heartbeat/2 seconds.
 */
#ifndef WRK_AMQP_H
#define WRK_AMQP_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define WRK_AMQP_BODY_MAX  (1024 * 1024)    /* PROTOCOL.md: a command body is at most 1 MiB */
#define WRK_AMQP_STR_MAX   256

struct wrk_amqp_url {
	int tls;                        /* amqps:// */
	char host[256];
	unsigned port;
	char user[128];
	char vhost[256];                /* percent-decoded; "/" by default */
};

/* Parses url; a password in it is refused (SW_EFORMAT): passwords come from files. */
int wrk_amqp_url_parse(const char *url, struct wrk_amqp_url *ret, struct sw_err *e);

#define WRK_AMQP_URLS_MAX  16               /* nodes of one broker cluster */
#define WRK_AMQP_URL_LEN   1024

/*
 * Splits a space- or comma-separated list of broker URLs, the nodes of one
 * cluster, and checks each with wrk_amqp_url_parse().  They must all name
 * the same user and virtual host: one password file logs in to every node,
 * and the topology lives in one virtual host of the cluster.  *ret_urls is a
 * malloc'd array of malloc'd strings; free it with wrk_amqp_url_list_free().
 */
int wrk_amqp_url_list_parse(const char *list, char ***ret_urls, size_t *ret_n, struct sw_err *e);
void wrk_amqp_url_list_free(char **urls, size_t n);

struct wrk_amqp_opts {
	const char *url;
	const char *password;           /* NULL: "" */
	const char *cacert;             /* amqps: CA file (NULL: the system store) */
	unsigned heartbeat;             /* seconds, 0: none */
	const char *name;               /* connection_name shown by the broker */
	unsigned timeout_ms;            /* connect, login and each RPC; 0: 30 s */
};

struct wrk_amqp;

/* Connects, logs in, opens channel 1. */
int wrk_amqp_connect(const struct wrk_amqp_opts *o, struct wrk_amqp **ret, struct sw_err *e);
/* Closes politely if the connection is still up, then frees.  NULL is fine. */
void wrk_amqp_close(struct wrk_amqp *c);
/* 1 while the connection is believed usable. */
int wrk_amqp_ok(const struct wrk_amqp *c);

/* The topology of PROTOCOL.md, declared idempotently. */
struct wrk_topology {
	const char *exchange;           /* snapworker.commands */
	const char *events;             /* snapworker.events */
	const char *dlx;                /* snapworker.dlx */
	const char *dead_queue;         /* snapworker.dead */
	const char *const *zones;       /* queues <exchange>.<zone> bound with key <zone> */
	size_t nzones;
	unsigned delivery_limit;        /* x-delivery-limit */
	/*
	 * Delayed retries: per zone and delay D (seconds) a quorum queue
	 * "<retry_exchange>.<zone>.<D>s", bound to retry_exchange (direct) with
	 * key "<zone>.<D>s", whose messages expire after D and are dead-lettered
	 * (at least once) back to exchange with the zone as routing key.
	 * NULL retry_exchange or no delays: none.
	 */
	const char *retry_exchange;
	const unsigned *retry_delays_s;
	size_t nretry_delays;
	/* The control exchange (fanout, durable) cancel requests go to; NULL: none. */
	const char *control;
};
int wrk_amqp_declare(struct wrk_amqp *c, const struct wrk_topology *t, struct sw_err *e);
/* One durable exchange of kind type ("fanout", ...), idempotently. */
int wrk_amqp_declare_exchange(struct wrk_amqp *c, const char *name, const char *type,
    struct sw_err *e);

/* The name of zone's command queue: "<exchange>.<zone>". */
int wrk_amqp_queue_name(const struct wrk_topology *t, const char *zone, char *buf, size_t bufsz);
/* The routing key of zone's retry queue for delay_s: "<zone>.<delay_s>s". */
int wrk_amqp_retry_key(const char *zone, unsigned delay_s, char *buf, size_t bufsz);

/* Puts the channel in confirm mode; later publishes are numbered from 1. */
int wrk_amqp_confirm_select(struct wrk_amqp *c, struct sw_err *e);
int wrk_amqp_qos(struct wrk_amqp *c, unsigned prefetch, struct sw_err *e);
/* basic.consume with manual ack; ret_tag gets the broker's consumer tag. */
int wrk_amqp_consume(struct wrk_amqp *c, const char *queue, int exclusive, char *ret_tag,
    size_t tagsz, struct sw_err *e);
int wrk_amqp_cancel(struct wrk_amqp *c, const char *tag, struct sw_err *e);
/* A server-named exclusive auto-delete queue (snapctl's reply queue). */
int wrk_amqp_private_queue(struct wrk_amqp *c, char *ret_name, size_t namesz, struct sw_err *e);
int wrk_amqp_bind(struct wrk_amqp *c, const char *queue, const char *exchange, const char *key,
    struct sw_err *e);
/*
 * Cancel records (docs/protocol.md, "Cancel"): the durable quorum queue
 * "<prefix>.<id>" (id in lower case) that says command id is cancelled,
 * expiring ttl_s after it was last declared or used (x-expires).
 */
int wrk_amqp_cancel_record_name(const char *prefix, const char *id, char *buf, size_t bufsz);
int wrk_amqp_cancel_record_declare(struct wrk_amqp *c, const char *name, unsigned ttl_s,
    struct sw_err *e);
/*
 * Whether queue exists: 1 yes, 0 no, or a negative code (the connection is
 * then dead).  A passive declaration on a side channel, so that the 404 of
 * an absent queue closes only that channel, never the one that consumes.
 */
int wrk_amqp_exists(struct wrk_amqp *c, const char *queue, struct sw_err *e);
/*
 * A concurrency token (docs/architecture.md, "Concurrency limits"): declares
 * queue exclusive to this connection on the side channel.  1: taken (the
 * broker deletes it when this connection closes, however it ends); 0:
 * another connection holds it (405 RESOURCE_LOCKED, only the side channel
 * closed); negative: an error (SW_ENET: the connection is dead).
 */
int wrk_amqp_exclusive_take(struct wrk_amqp *c, const char *queue, struct sw_err *e);
/* queue.delete on the side channel (a token given back). */
int wrk_amqp_queue_delete(struct wrk_amqp *c, const char *queue, struct sw_err *e);
/* basic.consume without acknowledgements (a worker's control queue). */
int wrk_amqp_subscribe(struct wrk_amqp *c, const char *queue, char *ret_tag, size_t tagsz,
    struct sw_err *e);
/* Passive declare: message and consumer counts (-ENOENT if the queue does not exist). */
int wrk_amqp_queue_counts(struct wrk_amqp *c, const char *queue, uint32_t *ret_messages,
    uint32_t *ret_consumers, struct sw_err *e);

struct wrk_amqp_pub {
	const char *exchange;           /* "" for the default exchange */
	const char *routing_key;
	const char *message_id;         /* NULLs are left out */
	const char *correlation_id;
	const char *reply_to;
	const char *content_type;       /* NULL: application/json */
	int mandatory;                  /* unroutable -> basic.return */
	const void *body;
	size_t len;
	/* Headers of a command republished for a later attempt or dead-lettered; 0/NULL: none. */
	int64_t attempt;                /* WRK_AMQP_HDR_ATTEMPT */
	const char *error;              /* WRK_AMQP_HDR_ERROR: "CODE: message" (cut to 1 KiB) */
};

/* The attempt a command delivery is (1-based; absent: 1) and the last attempt's error. */
#define WRK_AMQP_HDR_ATTEMPT "x-snapworker-attempt"
#define WRK_AMQP_HDR_ERROR   "x-snapworker-error"
#define WRK_AMQP_HDR_ERROR_MAX 1024
/* Publishes (persistent); in confirm mode *ret_seq gets its sequence number. */
int wrk_amqp_publish(struct wrk_amqp *c, const struct wrk_amqp_pub *p, uint64_t *ret_seq,
    struct sw_err *e);

int wrk_amqp_ack(struct wrk_amqp *c, uint64_t tag, struct sw_err *e);
int wrk_amqp_nack(struct wrk_amqp *c, uint64_t tag, int requeue, struct sw_err *e);

struct wrk_amqp_msg {
	uint64_t tag;
	int redelivered;
	char consumer_tag[WRK_AMQP_STR_MAX];
	char routing_key[WRK_AMQP_STR_MAX];
	char message_id[WRK_AMQP_STR_MAX];
	char correlation_id[WRK_AMQP_STR_MAX];
	char reply_to[WRK_AMQP_STR_MAX];
	int64_t delivery_count;         /* x-delivery-count header (quorum queues), 0 if absent */
	int64_t attempt;                /* WRK_AMQP_HDR_ATTEMPT header, 0 if absent or not a number */
	char error[WRK_AMQP_HDR_ERROR_MAX];  /* WRK_AMQP_HDR_ERROR header, "" if absent */
	char death_reason[32];          /* x-first-death-reason (the broker dead-lettered it), or "" */
	int too_big;                    /* body over WRK_AMQP_BODY_MAX: drained, body is NULL */
	char *body;                     /* NUL-terminated copy; free with wrk_amqp_msg_clear */
	size_t len;
};
void wrk_amqp_msg_clear(struct wrk_amqp_msg *m);

enum wrk_amqp_ev_kind {
	WRK_AMQP_EV_TIMEOUT = 0,
	WRK_AMQP_EV_WAKE,               /* the extra fd is readable */
	WRK_AMQP_EV_DELIVERY,           /* ev.msg filled; the caller owns it */
	WRK_AMQP_EV_ACK,                /* publisher confirm: ev.tag, ev.multiple */
	WRK_AMQP_EV_NACK,
	WRK_AMQP_EV_RETURN,             /* an unroutable mandatory publish (its ack follows) */
	WRK_AMQP_EV_CANCEL,             /* the broker cancelled consumer ev.msg.consumer_tag */
	WRK_AMQP_EV_BLOCKED,            /* connection.blocked: publishing would stall */
	WRK_AMQP_EV_UNBLOCKED,
};

struct wrk_amqp_ev {
	enum wrk_amqp_ev_kind kind;
	uint64_t tag;
	int multiple;
	struct wrk_amqp_msg msg;
};

/*
 * Waits up to timeout_ms for the next event (and services heartbeats).  With
 * wake_fd >= 0, returns WRK_AMQP_EV_WAKE as soon as it is readable (it is not
 * read).  Returns 0 with ev filled, or a negative code when the connection is
 * lost or closed by the broker (e->msg says why); the connection is then dead.
 */
int wrk_amqp_wait(struct wrk_amqp *c, int timeout_ms, int wake_fd, struct wrk_amqp_ev *ev,
    struct sw_err *e);

/* Blocked by the broker's flow control (connection.blocked) right now. */
int wrk_amqp_blocked(const struct wrk_amqp *c);

/*
 * Waits until every publish up to seq is confirmed.  Other events are handed
 * to on_event (a delivery's body is freed after it returns unless the callee
 * moved it out and set ev->msg.body to NULL).  At most 4096 publishes may be
 * unconfirmed at any time (wrk_amqp_publish refuses more with SW_ETOOBIG).  Returns 0, SW_EREMOTE
 * (nacked), SW_ENOTFOUND (returned as unroutable), -ETIMEDOUT or a connection error.
 */
int wrk_amqp_wait_confirm(struct wrk_amqp *c, uint64_t seq, int timeout_ms,
    void (*on_event)(void *ud, struct wrk_amqp_ev *ev), void *ud, struct sw_err *e);

/* Sequence number of the last confirmed-in-order publish. */
uint64_t wrk_amqp_confirmed(const struct wrk_amqp *c);

/* Exponential backoff with full jitter: attempt 0,1,2... -> [base, min(cap, base*2^n)] ms. */
unsigned wrk_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint32_t rnd);

#endif
