/*
 * Unit tests for common/hashpipe: the digests a pipeline computes on its
 * helper thread equal one-shot digests of the same bytes, whatever the
 * sizes and the way the bytes are split, with several digests in turn, and
 * when the ring wraps many times.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/hashpipe.h"
#include "common/io.h"

/* The pipeline's block (hashpipe.c): sizes around it are the edges. */
#define BLK (512u * 1024)

static unsigned char *
pattern(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

static void
oneshot(const char *alg, const void *p, size_t n, char *out)
{
	struct sw_hash *h = sw_hash_new(alg);

	assert_non_null(h);
	assert_int_equal(sw_hash_update(h, p, n), 0);
	assert_int_equal(sw_hash_final(h, out, 129), 0);
	sw_hash_free(h);
}

/* After a sync, ha and hb are the one-shot SHA-256 of a and b; wa gets a's. */
static void
check_two(struct sw_hashpipe *hp, struct sw_hash *ha, struct sw_hash *hb,
    const unsigned char *a, const unsigned char *b, size_t n, char *wa)
{
	char wb[129], ga[129], gb[129];

	assert_int_equal(sw_hashpipe_sync(hp), 0);
	assert_int_equal(sw_hash_final(ha, ga, sizeof(ga)), 0);
	assert_int_equal(sw_hash_final(hb, gb, sizeof(gb)), 0);
	oneshot("sha256", a, n, wa);
	oneshot("sha256", b, n, wb);
	assert_string_equal(ga, wa);
	assert_string_equal(gb, wb);
}

/* Feeds p through a pipeline in pieces of step bytes (cycling through steps). */
static void
piped(struct sw_hashpipe *hp, const char *alg, const unsigned char *p, size_t n,
    const size_t *steps, size_t nsteps, char *out)
{
	struct sw_hash *h = sw_hash_new(alg);
	size_t off = 0, k = 0;

	assert_non_null(h);
	while (off < n) {
		size_t m = steps[k++ % nsteps];

		if (m > n - off)
			m = n - off;
		assert_int_equal(sw_hashpipe_update(hp, h, p + off, m), 0);
		off += m;
	}
	if (n == 0)
		assert_int_equal(sw_hashpipe_update(hp, h, p, 0), 0);
	assert_int_equal(sw_hashpipe_sync(hp), 0);
	assert_int_equal(sw_hash_final(h, out, 129), 0);
	sw_hash_free(h);
}

static void
test_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, BLK - 1, BLK, BLK + 1, 3 * BLK + 17,
	    (size_t)20 * 1024 * 1024 + 3 };
	static const size_t whole[] = { SIZE_MAX };
	static const size_t odd[] = { 1, 4095, 65536, BLK + 1, 1000003 };
	struct sw_hashpipe *hp = sw_hashpipe_new(2 * BLK); /* small: wraps often */
	char want[129], got[129];
	size_t i;

	(void)state;
	assert_non_null(hp);
	assert_int_equal(sw_hashpipe_threaded(hp), 1);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = pattern(sizes[i], (unsigned)i);

		oneshot("sha256", p, sizes[i], want);
		piped(hp, "sha256", p, sizes[i], whole, 1, got);
		assert_string_equal(got, want);
		piped(hp, "sha256", p, sizes[i], odd, 5, got);
		assert_string_equal(got, want);
		oneshot("sha1", p, sizes[i], want);
		piped(hp, "sha1", p, sizes[i], odd, 5, got);
		assert_string_equal(got, want);
		free(p);
	}
	sw_hashpipe_free(hp);
}

/* Two digests interleaved in one pipeline each get exactly their bytes. */
static void
test_interleaved(void **state)
{
	size_t n = 5 * BLK + 123, off = 0, step = 70001;
	unsigned char *a = pattern(n, 1), *b = pattern(n, 2);
	struct sw_hashpipe *hp = sw_hashpipe_new(0);
	struct sw_hash *ha = sw_hash_new("sha256"), *hb = sw_hash_new("sha256");
	char wa[129];

	(void)state;
	assert_non_null(hp);
	while (off < n) {
		size_t m = n - off < step ? n - off : step;

		assert_int_equal(sw_hashpipe_update(hp, ha, a + off, m), 0);
		assert_int_equal(sw_hashpipe_update(hp, hb, b + off, m), 0);
		off += m;
	}
	check_two(hp, ha, hb, a, b, n, wa);
	/* The caller's buffer is free on return: scribbling on it changes nothing. */
	{
		struct sw_hash *hc = sw_hash_new("sha256");
		char gc[129];

		assert_int_equal(sw_hashpipe_update(hp, hc, a, n), 0);
		memset(a, 0xa5, n);
		assert_int_equal(sw_hashpipe_sync(hp), 0);
		assert_int_equal(sw_hash_final(hc, gc, sizeof(gc)), 0);
		assert_string_equal(gc, wa);
		sw_hash_free(hc);
	}
	sw_hash_free(ha);
	sw_hash_free(hb);
	sw_hashpipe_free(hp);
	free(a);
	free(b);
}

/* Free with bytes still queued waits for them (the digest stays usable). */
static void
test_free_drains(void **state)
{
	size_t n = 9 * BLK + 5;
	unsigned char *p = pattern(n, 3);
	struct sw_hashpipe *hp = sw_hashpipe_new(BLK);
	struct sw_hash *h = sw_hash_new("sha256");
	char want[129], got[129];

	(void)state;
	assert_non_null(hp);
	assert_int_equal(sw_hashpipe_update(hp, h, p, n), 0);
	sw_hashpipe_free(hp);
	assert_int_equal(sw_hash_final(h, got, sizeof(got)), 0);
	oneshot("sha256", p, n, want);
	assert_string_equal(got, want);
	sw_hash_free(h);
	sw_hashpipe_free(NULL);
	free(p);
}

/*
 * Claim and fill: bytes read straight into the ring, in pieces of any size,
 * mixed with update() and with a second digest, hash to the one-shot digests;
 * filled bytes stay as written until the caller's next call (the caller
 * writes them out from there); over-filling is refused.
 */
static void
test_claim_fill(void **state)
{
	size_t n = 7 * BLK + 4321, off = 0, k = 0;
	static const size_t steps[] = { 1, 4095, BLK, 300000, BLK + 7 };
	unsigned char *a = pattern(n, 4), *b = pattern(n, 5), *out = malloc(n);
	struct sw_hashpipe *hp = sw_hashpipe_new(2 * BLK);
	struct sw_hash *ha = sw_hash_new("sha256"), *hb = sw_hash_new("sha256");
	char wa[129];
	size_t room;
	void *p;

	(void)state;
	assert_non_null(hp);
	assert_non_null(out);
	while (off < n) {
		size_t m = steps[k++ % 5];

		if (m > n - off)
			m = n - off;
		if (k % 3 == 0) {
			/* update() of the same digest in between */
			assert_int_equal(sw_hashpipe_update(hp, ha, a + off, m), 0);
			memcpy(out + off, a + off, m);
		} else {
			p = sw_hashpipe_claim(hp, ha, &room);
			assert_non_null(p);
			assert_true(room >= 1 && room <= BLK);
			if (m > room)
				m = room;
			memcpy(p, a + off, m);
			assert_int_equal(sw_hashpipe_fill(hp, m), 0);
			/* Still readable after the fill. */
			memcpy(out + off, p, m);
		}
		/* Another digest's bytes between this one's. */
		assert_int_equal(sw_hashpipe_update(hp, hb, b + off, m), 0);
		off += m;
	}
	assert_memory_equal(out, a, n);
	/* More than claimed is refused, and nothing is queued. */
	p = sw_hashpipe_claim(hp, ha, &room);
	assert_non_null(p);
	assert_int_equal(sw_hashpipe_fill(hp, room + 1), SW_EINTERNAL);
	assert_int_equal(sw_hashpipe_fill(hp, 0), 0);
	check_two(hp, ha, hb, a, b, n, wa);
	/* No digest, no pipeline: nothing to claim. */
	assert_null(sw_hashpipe_claim(hp, NULL, &room));
	assert_int_equal(room, 0);
	assert_null(sw_hashpipe_claim(NULL, ha, &room));
	sw_hash_free(ha);
	sw_hash_free(hb);
	sw_hashpipe_free(hp);
	free(a);
	free(b);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_interleaved),
		cmocka_unit_test(test_free_drains),
		cmocka_unit_test(test_claim_fill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
