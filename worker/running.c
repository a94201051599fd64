#include "worker/running.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNNING_MAX 4096   /* far above any jobs= value: a bound, not a tuning knob */

struct wrk_running {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	char **ids;
	size_t n, cap;
};

struct wrk_running *
wrk_running_new(void)
{
	struct wrk_running *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (r == NULL)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->changed, &ca);
	pthread_condattr_destroy(&ca);
	return r;
}

void
wrk_running_free(struct wrk_running *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->ids[i]);
	free(r->ids);
	pthread_cond_destroy(&r->changed);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static ssize_t
find(const struct wrk_running *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->ids[i], id) == 0)
			return (ssize_t)i;
	return -1;
}

int
wrk_running_acquire(struct wrk_running *r, const char *id, atomic_int *cancel)
{
	int waited = 0;
	char *dup;

	pthread_mutex_lock(&r->lock);
	while (find(r, id) >= 0) {
		struct timespec ts;

		if (cancel != NULL && *cancel) {
			pthread_mutex_unlock(&r->lock);
			return -ECANCELED;
		}
		waited = 1;
		/* Wake up now and then to notice a cancel that nobody signals. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&r->changed, &r->lock, &ts);
	}
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		char **nv;

		if (ncap > RUNNING_MAX || (nv = realloc(r->ids, ncap * sizeof(*nv))) == NULL) {
			pthread_mutex_unlock(&r->lock);
			return -ENOMEM;
		}
		r->ids = nv;
		r->cap = ncap;
	}
	dup = strdup(id);
	if (dup == NULL) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	r->ids[r->n++] = dup;
	pthread_mutex_unlock(&r->lock);
	return waited;
}

void
wrk_running_release(struct wrk_running *r, const char *id)
{
	ssize_t i;

	pthread_mutex_lock(&r->lock);
	i = find(r, id);
	if (i >= 0) {
		free(r->ids[i]);
		r->ids[i] = r->ids[--r->n];
		pthread_cond_broadcast(&r->changed);
	}
	pthread_mutex_unlock(&r->lock);
}

int
wrk_running_has(struct wrk_running *r, const char *id)
{
	int has;

	pthread_mutex_lock(&r->lock);
	has = find(r, id) >= 0;
	pthread_mutex_unlock(&r->lock);
	return has;
}

size_t
wrk_running_count(struct wrk_running *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}
