/*
 * Fleet-wide concurrency limits (docs/architecture.md, "Concurrency
 * limits"): a token of a limited resource (a vCenter, an ESXi host, a
 * datastore) is one of the N queues "<prefix>.<kind>.<name>.<k>", k = 1..N,
 * declared exclusive by the connection of the worker that holds it.  The
 * broker lets one connection at a time own an exclusive queue and deletes
 * it when that connection closes, however the worker ends, so a token can
 * be neither duplicated nor leaked.
 *
 * One broker connection per daemon holds every token its jobs took; a
 * thread services its heartbeats.  Job threads take and give back tokens
 * under the module's mutex (a few RPCs, only when a limit is configured).
 */
#ifndef WRK_LIMITS_H
#define WRK_LIMITS_H

#include <stddef.h>

#include "common/err.h"
#include "worker/config.h"

#define WRK_LIMITS_KEYS_MAX 8           /* resources one command may need */
#define WRK_LIMITS_QNAME_MAX 256        /* AMQP short string: 255 bytes and the NUL */

struct wrk_limit_key {
	int kind;                       /* WRK_LIMIT_* */
	char name[WRK_LIMIT_NAME_MAX * 2];
};

/* The tokens one job holds. */
struct wrk_limits_hold {
	size_t n;
	int slot[WRK_LIMITS_KEYS_MAX];  /* indices into the daemon's list of held tokens */
	int kind[WRK_LIMITS_KEYS_MAX];
};

/*
 * Token k (1-based) of resource name of kind: "<prefix>.<kind>.<name>.<k>",
 * the name's bytes other than [A-Za-z0-9_-] percent-encoded; a name whose
 * encoding would not fit 255 bytes is replaced by "~" and its SHA-256.
 */
int wrk_limits_queue_name(const char *prefix, int kind, const char *name, unsigned k,
    char *buf, size_t bufsz);

/*
 * Puts keys in the order tokens are taken (kind, then name: a global order,
 * so two commands never wait on each other's tokens) and drops duplicates;
 * returns the new count.
 */
size_t wrk_limits_order(struct wrk_limit_key *keys, size_t n);

struct wrk_limits;

/* The daemon's token holder; no connection until the first take. */
int wrk_limits_new(const struct wrk_config *cfg, struct wrk_limits **ret, struct sw_err *e);
/* Closes the connection (the broker deletes every token it held) and frees.  NULL is fine. */
void wrk_limits_free(struct wrk_limits *l);

/*
 * Takes one token of every limited resource among keys (ordered by
 * wrk_limits_order), all or none.  0: hold has them (possibly none: no key
 * is limited); 1: a resource has no free token: busy gets "kind:name", what
 * was taken is given back; negative: the broker failed (e says how; nothing
 * held).
 */
int wrk_limits_take(struct wrk_limits *l, const struct wrk_limit_key *keys, size_t n,
    struct wrk_limits_hold *hold, char *busy, size_t busysz, struct sw_err *e);
/* Gives back what hold has (hold is emptied); safe on an empty hold. */
void wrk_limits_release(struct wrk_limits *l, struct wrk_limits_hold *hold);

#endif
