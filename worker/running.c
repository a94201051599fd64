#include "worker/running.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strings.h>

#define RUNNING_MAX 4096   /* far above any jobs= value: a bound, not a tuning knob */

struct finished {
	char id[40];
	char outcome[16];
};

struct wrk_running {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	char **ids;
	size_t n, cap;
	/* The last WRK_FINISHED_MAX commands answered here, oldest overwritten first. */
	struct finished done[WRK_FINISHED_MAX];
	size_t ndone, next;
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

void
wrk_running_finished(struct wrk_running *r, const char *id, const char *outcome)
{
	struct finished *f;

	if (r == NULL || id == NULL || id[0] == '\0' || strlen(id) >= sizeof(f->id))
		return;
	pthread_mutex_lock(&r->lock);
	f = &r->done[r->next];
	(void)snprintf(f->id, sizeof(f->id), "%s", id);
	(void)snprintf(f->outcome, sizeof(f->outcome), "%s", outcome);
	r->next = (r->next + 1) % WRK_FINISHED_MAX;
	if (r->ndone < WRK_FINISHED_MAX)
		r->ndone++;
	pthread_mutex_unlock(&r->lock);
}

int
wrk_running_outcome(struct wrk_running *r, const char *id, char *outcome, size_t outsz)
{
	size_t i, k;
	int found = 0;

	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->lock);
	/* Newest first: a command answered twice shows its latest outcome. */
	for (i = 0; i < r->ndone && !found; i++) {
		k = (r->next + WRK_FINISHED_MAX - 1 - i) % WRK_FINISHED_MAX;
		if (strcasecmp(r->done[k].id, id) == 0) {
			(void)snprintf(outcome, outsz, "%s", r->done[k].outcome);
			found = 1;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}
