#include "worker/storehealth.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io.h"
#include "common/log.h"
#include "ovastore/probe.h"
#include "worker/metrics.h"

/*
 * One probe in flight: shared by the thread that runs it and the waiter,
 * freed by whichever lets go last (a waiter that timed out lets go first and
 * the probe thread frees it when the file server finally answers).
 */
struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	int done;
	int rc;
	int is_mount;
	char reason[WRK_STOREHEALTH_REASON_MAX];
	char *mount;
	int require_mount;
	uint64_t started_ms;
};

enum { VERDICT_UNKNOWN = 0, VERDICT_HEALTHY, VERDICT_SICK };

struct store_state {
	const struct wrk_store *st;
	struct probe *inflight;       /* started, not yet collected */
	int verdict;
	int seen_mount;               /* auto: a probe saw a mount root here */
	int warned_plain;             /* auto: "not a mount point" said once */
	uint64_t sick_since_ms;
	char reason[WRK_STOREHEALTH_REASON_MAX];
};

struct wrk_storehealth {
	struct store_state *s;
	size_t n;
	unsigned interval_ms, timeout_ms;
	int require_mount;
	pthread_t thr;
	pthread_mutex_t mu;           /* verdicts, reasons, rounds, stop */
	pthread_cond_t cv;            /* the monitor: wake early; confirmers: a round ended */
	int stop;
	int asked;                    /* a confirmer wants a round now */
	uint64_t rounds_started, rounds_done;
	int said_sick;                /* a store was sick at the last round */
	atomic_int all_healthy;
};

static void
probe_unref(struct probe *p)
{
	int last;

	pthread_mutex_lock(&p->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->mount);
	free(p);
}

static void *
probe_main(void *arg)
{
	struct probe *p = arg;
	struct ova_probe r;
	struct sw_err e;
	int rc;

	memset(&r, 0, sizeof(r));
	sw_err_clear(&e);
	rc = ova_store_probe(p->mount, p->require_mount, &r, &e);
	if (rc < 0 && e.code == SW_ENOTFOUND)
		r.is_mount = 0;
	pthread_mutex_lock(&p->mu);
	p->rc = rc;
	p->is_mount = rc == 0 ? r.is_mount : 0;
	(void)snprintf(p->reason, sizeof(p->reason), "%s", rc < 0 ? e.msg : "");
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	probe_unref(p);
	return NULL;
}

/* Starts a detached probe thread; the caller holds one reference, the thread the other. */
static struct probe *
probe_start(const char *mount, int require_mount, struct sw_err *e)
{
	struct probe *p = calloc(1, sizeof(*p));
	pthread_attr_t a;
	pthread_t t;
	int rc;

	if (p == NULL || (p->mount = strdup(mount)) == NULL) {
		free(p);
		sw_errf(e, -ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->refs = 2;
	p->require_mount = require_mount;
	p->started_ms = sw_mono_ms();
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &a, probe_main, p);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		sw_errno(e, rc, "cannot start a probe thread");
		p->refs = 1;
		probe_unref(p);
		return NULL;
	}
	return p;
}

static void
abs_deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void
cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* Waits for p until the monotonic time end_ms; 1 when it is done. */
static int
probe_wait(struct probe *p, uint64_t end_ms)
{
	int done;

	pthread_mutex_lock(&p->mu);
	while (!p->done) {
		uint64_t now = sw_mono_ms();
		struct timespec ts;

		if (now >= end_ms)
			break;
		/* p->cv is a CLOCK_REALTIME condition: relative waits in short steps are exact enough. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)((end_ms - now) > 100 ? 100 : (end_ms - now)) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	done = p->done;
	pthread_mutex_unlock(&p->mu);
	return done;
}

int
wrk_storehealth_probe(const char *mount, int require_mount, unsigned timeout_ms,
    int *ret_is_mount, struct sw_err *e)
{
	struct probe *p = probe_start(mount, require_mount, e);
	int rc;

	if (p == NULL)
		return e->code;
	if (!probe_wait(p, sw_mono_ms() + timeout_ms)) {
		/* Abandoned: the thread lets go of p when (if ever) the call returns. */
		probe_unref(p);
		return sw_errf(e, -ETIMEDOUT, "%s: no answer in %u s (a hung mount?)", mount,
		    (timeout_ms + 999) / 1000);
	}
	rc = p->rc;
	if (rc < 0)
		sw_errf(e, rc, "%s", p->reason);
	else if (ret_is_mount != NULL)
		*ret_is_mount = p->is_mount;
	probe_unref(p);
	return rc;
}

static void
publish_all(struct wrk_storehealth *sh)
{
	size_t i;
	int all = 1;

	for (i = 0; i < sh->n; i++)
		if (sh->s[i].verdict != VERDICT_HEALTHY)
			all = 0;
	if (all && sh->said_sick)
		log_info("every store is healthy: taking commands again");
	if (!all)
		sh->said_sick = 1;
	else
		sh->said_sick = 0;
	atomic_store(&sh->all_healthy, all);
}

/* Records a verdict under sh->mu; logs and sets the metric on a transition. */
static void
verdict(struct wrk_storehealth *sh, struct store_state *ss, int healthy, const char *reason)
{
	uint64_t now = sw_mono_ms();
	int was = ss->verdict;

	if (healthy) {
		ss->reason[0] = '\0';
		if (was == VERDICT_SICK)
			log_info("store %s (%s) is healthy again after %llu s", ss->st->url,
			    ss->st->mount,
			    (unsigned long long)((now - ss->sick_since_ms + 500) / 1000));
		else if (was == VERDICT_UNKNOWN)
			log_info("store %s (%s) is healthy%s", ss->st->url, ss->st->mount,
			    ss->seen_mount ? "" : " (not a mount point: only reads and writes are probed)");
		ss->verdict = VERDICT_HEALTHY;
	} else {
		(void)snprintf(ss->reason, sizeof(ss->reason), "%s", reason);
		if (was != VERDICT_SICK) {
			ss->sick_since_ms = now;
			log_warnx("store %s (%s) is sick: %s; this worker takes no commands until it "
			    "is healthy", ss->st->url, ss->st->mount, reason);
		}
		ss->verdict = VERDICT_SICK;
	}
	wrk_metrics_store_healthy(ss->st->url, healthy);
}

static int
effective_require(const struct wrk_storehealth *sh, const struct store_state *ss)
{
	if (sh->require_mount == WRK_MOUNT_REQUIRED)
		return 1;
	if (sh->require_mount == WRK_MOUNT_NOT_REQUIRED)
		return 0;
	return ss->seen_mount;
}

/* Collects a finished probe of ss; under sh->mu. */
static void
collect(struct wrk_storehealth *sh, struct store_state *ss)
{
	struct probe *p = ss->inflight;

	if (p->rc == 0 && p->is_mount)
		ss->seen_mount = 1;
	if (p->rc == 0 && !p->is_mount && sh->require_mount == WRK_MOUNT_AUTO &&
	    !ss->seen_mount && !ss->warned_plain) {
		log_info("store %s: %s is not a mount point: a missing mount cannot be told from an "
		    "empty directory there ([store] require_mount = true requires one)",
		    ss->st->url, ss->st->mount);
		ss->warned_plain = 1;
	}
	verdict(sh, ss, p->rc == 0, p->reason);
	ss->inflight = NULL;
	probe_unref(p);
}

static void
round_run(struct wrk_storehealth *sh)
{
	uint64_t end;
	size_t i;
	struct sw_err e;

	pthread_mutex_lock(&sh->mu);
	sh->rounds_started++;
	for (i = 0; i < sh->n; i++) {
		struct store_state *ss = &sh->s[i];

		if (ss->inflight != NULL)
			continue;       /* still hung from an earlier round: one thread per store */
		ss->inflight = probe_start(ss->st->mount, effective_require(sh, ss), &e);
		if (ss->inflight == NULL)
			verdict(sh, ss, 0, e.msg);
	}
	pthread_mutex_unlock(&sh->mu);

	end = sw_mono_ms() + sh->timeout_ms;
	pthread_mutex_lock(&sh->mu);
	for (i = 0; i < sh->n; i++) {
		struct store_state *ss = &sh->s[i];
		struct probe *p = ss->inflight;
		uint64_t until;
		char why[WRK_STOREHEALTH_REASON_MAX];

		if (p == NULL)
			continue;
		/* A probe left hung by an earlier round gets no new allowance. */
		until = p->started_ms + sh->timeout_ms < end ? p->started_ms + sh->timeout_ms : end;
		pthread_mutex_unlock(&sh->mu);
		(void)probe_wait(p, until);
		pthread_mutex_lock(&sh->mu);
		if (p->done) {
			collect(sh, ss);
			continue;
		}
		{
			uint64_t ms = sw_mono_ms() - p->started_ms;

			(void)snprintf(why, sizeof(why), "no answer from %s for %llu.%llu s (a hung "
			    "mount?)", ss->st->mount, (unsigned long long)(ms / 1000),
			    (unsigned long long)(ms % 1000 / 100));
		}
		verdict(sh, ss, 0, why);
	}
	publish_all(sh);
	sh->rounds_done = sh->rounds_started;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
}

static void *
monitor_main(void *arg)
{
	struct wrk_storehealth *sh = arg;

	for (;;) {
		struct timespec ts;

		round_run(sh);
		abs_deadline(&ts, sh->interval_ms);
		pthread_mutex_lock(&sh->mu);
		while (!sh->stop && !sh->asked)
			if (pthread_cond_timedwait(&sh->cv, &sh->mu, &ts) == ETIMEDOUT)
				break;
		sh->asked = 0;
		if (sh->stop) {
			pthread_mutex_unlock(&sh->mu);
			break;
		}
		pthread_mutex_unlock(&sh->mu);
	}
	return NULL;
}

int
wrk_storehealth_start(const struct wrk_store *stores, size_t n,
    const struct wrk_storehealth_opts *o, struct wrk_storehealth **ret, struct sw_err *e)
{
	struct wrk_storehealth *sh = calloc(1, sizeof(*sh));
	size_t i;
	int rc;

	if (sh == NULL || (n > 0 && (sh->s = calloc(n, sizeof(*sh->s))) == NULL)) {
		free(sh);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	sh->n = n;
	sh->interval_ms = o != NULL && o->interval_ms ? o->interval_ms : WRK_STOREHEALTH_INTERVAL_MS;
	sh->timeout_ms = o != NULL && o->timeout_ms ? o->timeout_ms : WRK_STOREHEALTH_TIMEOUT_MS;
	sh->require_mount = o != NULL ? o->require_mount : WRK_MOUNT_AUTO;
	for (i = 0; i < n; i++)
		sh->s[i].st = &stores[i];
	pthread_mutex_init(&sh->mu, NULL);
	cond_init_mono(&sh->cv);
	atomic_store(&sh->all_healthy, n == 0);
	rc = pthread_create(&sh->thr, NULL, monitor_main, sh);
	if (rc != 0) {
		pthread_mutex_destroy(&sh->mu);
		pthread_cond_destroy(&sh->cv);
		free(sh->s);
		free(sh);
		return sw_errno(e, rc, "cannot start the store health thread");
	}
	*ret = sh;
	return 0;
}

void
wrk_storehealth_stop(struct wrk_storehealth *sh)
{
	size_t i;

	if (sh == NULL)
		return;
	pthread_mutex_lock(&sh->mu);
	sh->stop = 1;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	/* The monitor itself never blocks on a store: it waits for probes with a deadline. */
	pthread_join(sh->thr, NULL);
	for (i = 0; i < sh->n; i++)
		if (sh->s[i].inflight != NULL)
			probe_unref(sh->s[i].inflight);
	pthread_mutex_destroy(&sh->mu);
	pthread_cond_destroy(&sh->cv);
	free(sh->s);
	free(sh);
}

int
wrk_storehealth_all_healthy(const struct wrk_storehealth *sh)
{
	return sh == NULL ? 1 : atomic_load(&sh->all_healthy);
}

static struct store_state *
find(struct wrk_storehealth *sh, const char *url)
{
	size_t i;

	for (i = 0; url != NULL && i < sh->n; i++)
		if (strcmp(sh->s[i].st->url, url) == 0)
			return &sh->s[i];
	return NULL;
}

int
wrk_storehealth_sick(struct wrk_storehealth *sh, const char *url, char *ret_reason,
    size_t reasonsz)
{
	struct store_state *ss;
	int sick;

	if (sh == NULL || (ss = find(sh, url)) == NULL)
		return -1;
	pthread_mutex_lock(&sh->mu);
	sick = ss->verdict == VERDICT_SICK;
	if (sick && ret_reason != NULL)
		(void)snprintf(ret_reason, reasonsz, "%s", ss->reason);
	pthread_mutex_unlock(&sh->mu);
	return sick;
}

int
wrk_storehealth_confirm_sick(struct wrk_storehealth *sh, const char *url)
{
	struct store_state *ss;
	struct timespec ts;
	uint64_t target;
	int sick;

	if (sh == NULL || (ss = find(sh, url)) == NULL)
		return 0;
	pthread_mutex_lock(&sh->mu);
	/* A round that starts after this call: the one running may have begun before the failure. */
	target = sh->rounds_started + 1;
	sh->asked = 1;
	pthread_cond_broadcast(&sh->cv);
	abs_deadline(&ts, (uint64_t)sh->timeout_ms * 2 + sh->interval_ms);
	while (sh->rounds_done < target && !sh->stop)
		if (pthread_cond_timedwait(&sh->cv, &sh->mu, &ts) == ETIMEDOUT)
			break;
	sick = ss->verdict == VERDICT_SICK;
	pthread_mutex_unlock(&sh->mu);
	return sick;
}
