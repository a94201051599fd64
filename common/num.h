/* Checked number parsing: every number from outside is parsed with a bound. */
#ifndef SW_NUM_H
#define SW_NUM_H

#include <stdint.h>

/*
 * Parses a whole decimal string (no sign, no spaces, no trailing garbage)
 * into *ret if min <= value <= max.  Returns 0, -EINVAL (not a number) or
 * -ERANGE (out of bounds).  *ret is untouched on failure.
 */
int sw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* The same for a signed value (an optional leading '-'). */
int sw_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);

/*
 * A byte size with an optional binary suffix: "512", "64K", "10M", "1G",
 * "1T", "2P" (also "KiB", "MB" ... case-insensitive; all are powers of 1024).
 */
int sw_parse_size(const char *s, uint64_t max, uint64_t *ret);

/*
 * A duration in seconds: "30" (seconds), or groups of a number and a unit
 * among d, h, m, s, in that order and each at most once: "30s", "5m",
 * "6h10m", "1d12h", "1m30s".
 */
int sw_parse_duration(const char *s, uint64_t max, uint64_t *ret_seconds);

#endif
