/*
 * The hashing pipeline (see hashpipe.h): a ring of fixed blocks.  The
 * caller fills the open block at the tail and posts it when it is full, when
 * the digest changes or at a sync; the helper thread hashes posted blocks
 * from the head.  Large blocks keep the locking rare (one hand-over per
 * block) and give the digest long runs.
 */
#include "common/hashpipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define HP_BLOCK (512u * 1024)
#define HP_MIN_BLOCKS 2

struct hp_block {
	struct sw_hash *h;
	size_t len;
};

struct sw_hashpipe {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv_work;     /* to the helper: a block is posted, or quit */
	pthread_cond_t cv_done;     /* to the caller: a block is free again */
	unsigned char *mem;         /* nblocks * HP_BLOCK */
	struct hp_block *blk;
	size_t nblocks;
	size_t head;                /* oldest posted block (the helper's) */
	size_t posted;              /* posted blocks not yet hashed (head included) */
	size_t tail;                /* the open block: posted count does not include it */
	int err;                    /* first digest failure, sticky */
	int quit;
	int threaded;
};

static void *
hp_main(void *arg)
{
	struct sw_hashpipe *hp = arg;

	pthread_mutex_lock(&hp->mu);
	for (;;) {
		struct hp_block *b;
		int r;

		while (hp->posted == 0 && !hp->quit)
			pthread_cond_wait(&hp->cv_work, &hp->mu);
		if (hp->posted == 0)
			break; /* quit, and nothing left */
		b = &hp->blk[hp->head];
		pthread_mutex_unlock(&hp->mu);
		r = b->len != 0 ? sw_hash_update(b->h, hp->mem + hp->head * HP_BLOCK, b->len) : 0;
		pthread_mutex_lock(&hp->mu);
		if (r < 0 && hp->err == 0)
			hp->err = r;
		b->len = 0;
		b->h = NULL;
		hp->head = (hp->head + 1) % hp->nblocks;
		hp->posted--;
		pthread_cond_broadcast(&hp->cv_done);
	}
	pthread_mutex_unlock(&hp->mu);
	return NULL;
}

struct sw_hashpipe *
sw_hashpipe_new(size_t ring_bytes)
{
	struct sw_hashpipe *hp;
	size_t n;

	if (ring_bytes == 0)
		ring_bytes = SW_HASHPIPE_DEFAULT;
	n = (ring_bytes + HP_BLOCK - 1) / HP_BLOCK;
	if (n < HP_MIN_BLOCKS)
		n = HP_MIN_BLOCKS;
	if ((hp = calloc(1, sizeof(*hp))) == NULL)
		return NULL;
	hp->nblocks = n;
	hp->mem = malloc(n * HP_BLOCK);
	hp->blk = calloc(n, sizeof(*hp->blk));
	if (hp->mem == NULL || hp->blk == NULL) {
		free(hp->mem);
		free(hp->blk);
		free(hp);
		return NULL;
	}
	if (pthread_mutex_init(&hp->mu, NULL) != 0)
		goto inline_only;
	if (pthread_cond_init(&hp->cv_work, NULL) != 0) {
		pthread_mutex_destroy(&hp->mu);
		goto inline_only;
	}
	if (pthread_cond_init(&hp->cv_done, NULL) != 0) {
		pthread_cond_destroy(&hp->cv_work);
		pthread_mutex_destroy(&hp->mu);
		goto inline_only;
	}
	if (pthread_create(&hp->th, NULL, hp_main, hp) != 0) {
		pthread_cond_destroy(&hp->cv_done);
		pthread_cond_destroy(&hp->cv_work);
		pthread_mutex_destroy(&hp->mu);
		goto inline_only;
	}
	hp->threaded = 1;
	return hp;
inline_only:
	/* No ring is needed without a thread. */
	free(hp->mem);
	hp->mem = NULL;
	return hp;
}

int
sw_hashpipe_threaded(const struct sw_hashpipe *hp)
{
	return hp != NULL && hp->threaded;
}

/* Hands the open block (if it holds anything) to the helper.  Lock held. */
static void
hp_post_locked(struct sw_hashpipe *hp)
{
	if (hp->blk[hp->tail].len == 0)
		return;
	hp->posted++;
	hp->tail = (hp->tail + 1) % hp->nblocks;
	pthread_cond_signal(&hp->cv_work);
}

/*
 * The open block, ready for h's next bytes: waits while every block is
 * posted, posts the open one when it is full or holds another digest's
 * bytes.  Lock held; NULL after a digest failure.
 */
static struct hp_block *
hp_open_locked(struct sw_hashpipe *hp, struct sw_hash *h)
{
	while (hp->err == 0) {
		struct hp_block *b = &hp->blk[hp->tail];

		/* Every block is posted: the open one comes free when the helper is done with it. */
		if (hp->posted == hp->nblocks) {
			pthread_cond_wait(&hp->cv_done, &hp->mu);
			continue;
		}
		/* A block holds one digest's bytes. */
		if (b->len != 0 && (b->h != h || b->len == HP_BLOCK)) {
			hp_post_locked(hp);
			continue;
		}
		b->h = h;
		return b;
	}
	return NULL;
}

int
sw_hashpipe_update(struct sw_hashpipe *hp, struct sw_hash *h, const void *p, size_t n)
{
	const unsigned char *c = p;
	struct hp_block *b;
	int err;

	if (hp == NULL || h == NULL)
		return SW_EINTERNAL;
	if (!hp->threaded) {
		if (hp->err == 0 && n != 0)
			hp->err = sw_hash_update(h, p, n);
		return hp->err;
	}
	pthread_mutex_lock(&hp->mu);
	while (n > 0 && (b = hp_open_locked(hp, h)) != NULL) {
		size_t room = HP_BLOCK - b->len, k = n < room ? n : room;

		/* The copy needs no lock: the helper never touches the open block. */
		pthread_mutex_unlock(&hp->mu);
		memcpy(hp->mem + hp->tail * HP_BLOCK + b->len, c, k);
		pthread_mutex_lock(&hp->mu);
		b->len += k;
		c += k;
		n -= k;
		if (b->len == HP_BLOCK)
			hp_post_locked(hp);
	}
	err = hp->err;
	pthread_mutex_unlock(&hp->mu);
	return err;
}

void *
sw_hashpipe_claim(struct sw_hashpipe *hp, struct sw_hash *h, size_t *room)
{
	struct hp_block *b;
	void *p = NULL;

	*room = 0;
	if (hp == NULL || h == NULL || !hp->threaded)
		return NULL;
	pthread_mutex_lock(&hp->mu);
	if ((b = hp_open_locked(hp, h)) != NULL) {
		*room = HP_BLOCK - b->len;
		p = hp->mem + hp->tail * HP_BLOCK + b->len;
	}
	pthread_mutex_unlock(&hp->mu);
	return p;
}

int
sw_hashpipe_fill(struct sw_hashpipe *hp, size_t n)
{
	struct hp_block *b;
	int err;

	if (hp == NULL || !hp->threaded)
		return SW_EINTERNAL;
	pthread_mutex_lock(&hp->mu);
	b = &hp->blk[hp->tail];
	if (n > HP_BLOCK - b->len || (n != 0 && b->h == NULL)) {
		pthread_mutex_unlock(&hp->mu);
		return SW_EINTERNAL;
	}
	b->len += n;
	if (b->len == HP_BLOCK)
		hp_post_locked(hp);
	err = hp->err;
	pthread_mutex_unlock(&hp->mu);
	return err;
}

int
sw_hashpipe_sync(struct sw_hashpipe *hp)
{
	int err;

	if (hp == NULL)
		return SW_EINTERNAL;
	if (!hp->threaded)
		return hp->err;
	pthread_mutex_lock(&hp->mu);
	hp_post_locked(hp);
	while (hp->posted != 0)
		pthread_cond_wait(&hp->cv_done, &hp->mu);
	err = hp->err;
	pthread_mutex_unlock(&hp->mu);
	return err;
}

void
sw_hashpipe_free(struct sw_hashpipe *hp)
{
	if (hp == NULL)
		return;
	if (hp->threaded) {
		(void)sw_hashpipe_sync(hp);
		pthread_mutex_lock(&hp->mu);
		hp->quit = 1;
		pthread_cond_broadcast(&hp->cv_work);
		pthread_mutex_unlock(&hp->mu);
		(void)pthread_join(hp->th, NULL);
		pthread_cond_destroy(&hp->cv_done);
		pthread_cond_destroy(&hp->cv_work);
		pthread_mutex_destroy(&hp->mu);
	}
	free(hp->mem);
	free(hp->blk);
	free(hp);
}
