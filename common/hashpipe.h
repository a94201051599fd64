/*
 * A hashing pipeline: digests computed on a helper thread, off the caller's
 * critical path.  sw_hashpipe_update() copies the bytes into a bounded ring
 * (memory is fixed at creation, whatever the amount of data) and returns;
 * the helper thread feeds them, in order, to the sw_hash named with them.
 * Several digests may share one pipeline (the files of an object, one after
 * the other); each stays the caller's.  Before a digest is finished (or
 * freed), sw_hashpipe_sync() waits until every byte posted has been hashed.
 * Without a thread (pthread_create failed) the digests are computed inline:
 * slower, never wrong.  One pipeline is used by one caller thread at a time.
 */
#ifndef SW_HASHPIPE_H
#define SW_HASHPIPE_H

#include <stddef.h>

#include "common/io.h"

/* Ring sizes are rounded to whole blocks; the default when 0. */
#define SW_HASHPIPE_DEFAULT (4u * 1024 * 1024)

struct sw_hashpipe;

/* NULL only when out of memory. */
struct sw_hashpipe *sw_hashpipe_new(size_t ring_bytes);

/*
 * Queues p[0..n) for h (copied: p is free again on return).  Blocks while
 * the ring is full.  0, or the first digest failure (SW_EINTERNAL).
 */
int sw_hashpipe_update(struct sw_hashpipe *hp, struct sw_hash *h, const void *p, size_t n);

/*
 * Zero-copy queueing, for a caller that reads its data from a file anyway:
 * sw_hashpipe_claim() returns free ring space for h's next bytes (*room
 * bytes, at least 1) to read into, blocking while the ring is full; NULL
 * without a helper thread (use sw_hashpipe_update) or after a digest failure.
 * sw_hashpipe_fill() then queues the first n of those bytes (n <= *room; 0
 * queues nothing).  The caller may go on reading the bytes it filled (to
 * write them out) until its next call on hp: the helper only reads them, and
 * only the caller's next claim or update can reuse their space.
 */
void *sw_hashpipe_claim(struct sw_hashpipe *hp, struct sw_hash *h, size_t *room);
int sw_hashpipe_fill(struct sw_hashpipe *hp, size_t n);

/* Waits until every queued byte is hashed.  0 or the first failure. */
int sw_hashpipe_sync(struct sw_hashpipe *hp);

/* Whether a helper thread runs (1) or digests are inline (0). */
int sw_hashpipe_threaded(const struct sw_hashpipe *hp);

/* Waits for the queue, stops the thread.  NULL is fine. */
void sw_hashpipe_free(struct sw_hashpipe *hp);

#endif
