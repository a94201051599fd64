#include "worker/limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io.h"
#include "common/log.h"
#include "worker/amqp.h"
#include "worker/metrics.h"

#define HELD_MAX   512          /* tokens one daemon may hold at once (jobs x keys) */
#define PUMP_MS    1000         /* heartbeats: the shortest [amqp] heartbeat is 1 s x 2 */

struct held {
	int used;
	int kind;
	char q[WRK_LIMITS_QNAME_MAX];
};

struct wrk_limits {
	const struct wrk_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	int stop;
	struct wrk_amqp *c;
	size_t node;                /* next [amqp] url to try */
	struct held held[HELD_MAX];
	size_t nheld;
};

int
wrk_limits_queue_name(const char *prefix, int kind, const char *name, unsigned k, char *buf,
    size_t bufsz)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *kn = wrk_limit_kind_name(kind);
	char enc[WRK_LIMITS_QNAME_MAX * 3];
	size_t i, n = 0;
	int r;

	if (kn == NULL || name == NULL || prefix == NULL)
		return -EINVAL;
	for (i = 0; name[i] != '\0' && n + 4 < sizeof(enc); i++) {
		unsigned char ch = (unsigned char)name[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '_' || ch == '-') {
			enc[n++] = (char)ch;
		} else {
			enc[n++] = '%';
			enc[n++] = hex[ch >> 4];
			enc[n++] = hex[ch & 15];
		}
	}
	enc[n] = '\0';
	r = name[i] == '\0' ? snprintf(buf, bufsz, "%s.%s.%s.%u", prefix, kn, enc, k) : -1;
	if (r < 0 || (size_t)r >= bufsz || r > 255) {
		/* Too long to spell out: a digest names it as uniquely. */
		struct sw_hash *h = sw_hash_new("sha256");
		char d[129];

		if (h == NULL || sw_hash_update(h, name, strlen(name)) < 0 ||
		    sw_hash_final(h, d, sizeof(d)) < 0) {
			sw_hash_free(h);
			return -ENOMEM;
		}
		sw_hash_free(h);
		r = snprintf(buf, bufsz, "%s.%s.~%s.%u", prefix, kn, d, k);
		if (r < 0 || (size_t)r >= bufsz || r > 255)
			return -ENAMETOOLONG;
	}
	return 0;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct wrk_limit_key *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->name, y->name);
}

size_t
wrk_limits_order(struct wrk_limit_key *keys, size_t n)
{
	size_t i, m = 0;

	if (n == 0)
		return 0;
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 0; i < n; i++)
		if (m == 0 || key_cmp(&keys[m - 1], &keys[i]) != 0)
			keys[m++] = keys[i];
	return m;
}

/* Under mu.  A connection of our own, to the next node that answers. */
static int
ensure_conn(struct wrk_limits *l, struct sw_err *e)
{
	const struct wrk_config *cfg = l->cfg;
	struct wrk_amqp_opts o;
	char name[200];
	size_t tries;
	int rc = SW_ENET;

	if (l->c != NULL && wrk_amqp_ok(l->c))
		return 0;
	if (l->c != NULL) {
		wrk_amqp_close(l->c);
		l->c = NULL;
	}
	(void)snprintf(name, sizeof(name), "snapworker %s limits", cfg->name);
	for (tries = 0; tries < cfg->namqp_urls; tries++) {
		memset(&o, 0, sizeof(o));
		o.url = cfg->amqp_urls[l->node];
		l->node = (l->node + 1) % cfg->namqp_urls;
		o.password = cfg->amqp_password;
		o.cacert = cfg->amqp_cacert;
		o.heartbeat = cfg->heartbeat;
		o.name = name;
		o.timeout_ms = 10000;
		rc = wrk_amqp_connect(&o, &l->c, e);
		if (rc == 0)
			return 0;
	}
	return rc;
}

/*
 * Under mu, after the connection was lost with tokens held: the broker
 * deleted them with it.  They are taken again; one that another worker took
 * meanwhile is over its limit until one of the two jobs ends (logged).
 */
static void
retake(struct wrk_limits *l)
{
	struct sw_err e;
	size_t i;
	int r;

	for (i = 0; i < HELD_MAX; i++) {
		if (!l->held[i].used)
			continue;
		sw_err_clear(&e);
		r = wrk_amqp_exclusive_take(l->c, l->held[i].q, &e);
		if (r == 0)
			log_warnx("limits: token %s was taken by another worker while our broker "
			    "connection was down: the limit is exceeded by one until a job ends",
			    l->held[i].q);
		else if (r < 0)
			return;
	}
}

static void *
pump(void *arg)
{
	struct wrk_limits *l = arg;
	struct wrk_amqp_ev ev;
	struct timespec ts;
	struct sw_err e;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		sw_err_clear(&e);
		if (l->c != NULL && wrk_amqp_ok(l->c)) {
			/* Heartbeats; a token connection gets no deliveries. */
			if (wrk_amqp_wait(l->c, 0, -1, &ev, &e) == 0)
				wrk_amqp_msg_clear(&ev.msg);
		}
		if (l->nheld > 0 && (l->c == NULL || !wrk_amqp_ok(l->c))) {
			log_warnx("limits: the broker connection holding %zu token(s) was lost%s%s; "
			    "reconnecting", l->nheld, e.msg[0] ? ": " : "", e.msg);
			sw_err_clear(&e);
			if (ensure_conn(l, &e) == 0)
				retake(l);
			else
				log_warnx("limits: cannot reconnect: %s", e.msg);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PUMP_MS / 1000;
		(void)pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int
wrk_limits_new(const struct wrk_config *cfg, struct wrk_limits **ret, struct sw_err *e)
{
	struct wrk_limits *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	l->cfg = cfg;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (pthread_create(&l->thr, NULL, pump, l) != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return sw_errf(e, -EAGAIN, "cannot start the limits thread");
	}
	*ret = l;
	return 0;
}

void
wrk_limits_free(struct wrk_limits *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thr, NULL);
	wrk_amqp_close(l->c);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* Under mu: one held token given back. */
static void
give_back(struct wrk_limits *l, int i)
{
	struct sw_err e;

	if (i < 0 || i >= HELD_MAX || !l->held[i].used)
		return;
	sw_err_clear(&e);
	if (l->c != NULL && wrk_amqp_ok(l->c) &&
	    wrk_amqp_queue_delete(l->c, l->held[i].q, &e) < 0)
		log_debug("limits: giving back %s: %s", l->held[i].q, e.msg);
	wrk_metrics_limit_held(l->held[i].kind, -1);
	l->held[i].used = 0;
	l->nheld--;
}

void
wrk_limits_release(struct wrk_limits *l, struct wrk_limits_hold *hold)
{
	size_t i;

	if (l == NULL || hold == NULL || hold->n == 0)
		return;
	pthread_mutex_lock(&l->mu);
	for (i = hold->n; i-- > 0;)
		give_back(l, hold->slot[i]);
	pthread_mutex_unlock(&l->mu);
	hold->n = 0;
}

/*
 * Under mu: whether this daemon holds q already.  The broker cannot tell:
 * an exclusive queue is its connection's, and every job of this daemon
 * takes tokens through the one connection, whose declaration of a queue it
 * owns succeeds again.
 */
static int
held_here(const struct wrk_limits *l, const char *q)
{
	int i;

	for (i = 0; i < HELD_MAX; i++)
		if (l->held[i].used && strcmp(l->held[i].q, q) == 0)
			return 1;
	return 0;
}

/* Under mu: a free entry of the held list, or -1. */
static int
held_slot(struct wrk_limits *l)
{
	int i;

	for (i = 0; i < HELD_MAX; i++)
		if (!l->held[i].used)
			return i;
	return -1;
}

int
wrk_limits_take(struct wrk_limits *l, const struct wrk_limit_key *keys, size_t n,
    struct wrk_limits_hold *hold, char *busy, size_t busysz, struct sw_err *e)
{
	char q[WRK_LIMITS_QNAME_MAX];
	unsigned lim, k;
	size_t i;
	int r = 0, got, slot;

	memset(hold, 0, sizeof(*hold));
	if (busy != NULL && busysz > 0)
		busy[0] = '\0';
	if (l == NULL)
		return 0;
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < n && i < WRK_LIMITS_KEYS_MAX; i++) {
		lim = wrk_config_limit(l->cfg, keys[i].kind, keys[i].name);
		if (lim == 0)
			continue;
		if ((r = ensure_conn(l, e)) < 0)
			break;
		if ((slot = held_slot(l)) < 0) {
			r = sw_errf(e, SW_ETOOBIG, "limits: more than %d tokens held", HELD_MAX);
			break;
		}
		got = 0;
		for (k = 1; k <= lim && !got; k++) {
			r = wrk_limits_queue_name(l->cfg->amqp_limit_prefix, keys[i].kind,
			    keys[i].name, k, q, sizeof(q));
			if (r < 0) {
				r = sw_errf(e, r, "limits: token name too long");
				break;
			}
			if (held_here(l, q)) {
				r = 0;
				continue;
			}
			r = wrk_amqp_exclusive_take(l->c, q, e);
			if (r < 0)
				break;
			got = r == 1;
		}
		if (r < 0)
			break;
		if (!got) {
			if (busy != NULL)
				(void)snprintf(busy, busysz, "%s:%s", wrk_limit_kind_name(keys[i].kind),
				    keys[i].name);
			r = 1;
			break;
		}
		r = 0;
		l->held[slot].used = 1;
		l->held[slot].kind = keys[i].kind;
		(void)snprintf(l->held[slot].q, sizeof(l->held[slot].q), "%s", q);
		l->nheld++;
		wrk_metrics_limit_held(keys[i].kind, 1);
		hold->slot[hold->n] = slot;
		hold->kind[hold->n] = keys[i].kind;
		hold->n++;
		log_debug("limits: took %s (limit %u)", q, lim);
	}
	if (r != 0) {
		/* All or nothing: what was taken goes back before anyone waits. */
		while (hold->n > 0)
			give_back(l, hold->slot[--hold->n]);
	}
	pthread_mutex_unlock(&l->mu);
	return r;
}
