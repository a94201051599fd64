#include "common/num.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Parses leading digits of s; returns a pointer past them or NULL. */
static const char *
parse_digits(const char *s, uint64_t *ret, int *ret_overflow)
{
	uint64_t v = 0;
	int over = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			over = 1;
		else
			v = v * 10 + d;
	}
	*ret = v;
	*ret_overflow = over;
	return p;
}

int
sw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int over;
	const char *end;

	if (s == NULL || (end = parse_digits(s, &v, &over)) == NULL || *end != '\0')
		return -EINVAL;
	if (over || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int
sw_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	uint64_t v;
	int over, neg = 0;
	const char *end;
	int64_t r;

	if (s == NULL)
		return -EINVAL;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if ((end = parse_digits(s, &v, &over)) == NULL || *end != '\0')
		return -EINVAL;
	if (over)
		return -ERANGE;
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return -ERANGE;
		r = (int64_t)v;
	}
	if (r < min || r > max)
		return -ERANGE;
	*ret = r;
	return 0;
}

static int
scaled(const char *s, const char *const *units, const uint64_t *mult, size_t nunits,
    uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int over;
	const char *end;
	size_t i;

	if (s == NULL || (end = parse_digits(s, &v, &over)) == NULL)
		return -EINVAL;
	if (over)
		return -ERANGE;
	for (i = 0; i < nunits; i++)
		if (strcasecmp(end, units[i]) == 0)
			break;
	if (i == nunits)
		return -EINVAL;
	if (mult[i] != 0 && v > UINT64_MAX / mult[i])
		return -ERANGE;
	v *= mult[i];
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int
sw_parse_size(const char *s, uint64_t max, uint64_t *ret)
{
	static const char *const u[] = {
		"", "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib",
		"t", "tb", "tib", "p", "pb", "pib",
	};
	static const uint64_t K = 1024;
	static const uint64_t m[] = {
		1, 1, K, K, K, K * K, K * K, K * K, K * K * K, K * K * K, K * K * K,
		K * K * K * K, K * K * K * K, K * K * K * K,
		K * K * K * K * K, K * K * K * K * K, K * K * K * K * K,
	};

	return scaled(s, u, m, sizeof(u) / sizeof(u[0]), max, ret);
}

int
sw_parse_duration(const char *s, uint64_t max, uint64_t *ret_seconds)
{
	static const char units[] = "dhms";
	static const uint64_t mult[] = { 86400, 3600, 60, 1 };
	const char *p = s, *end;
	uint64_t total = 0, v;
	size_t next = 0, i;
	int over;

	if (s == NULL || (end = parse_digits(p, &v, &over)) == NULL)
		return -EINVAL;
	if (*end == '\0') {
		/* A bare number: seconds. */
		if (over || v > max)
			return -ERANGE;
		*ret_seconds = v;
		return 0;
	}
	/* Groups <digits><unit>, units in the order d h m s, each at most once: "6h10m". */
	while (*p != '\0') {
		if ((end = parse_digits(p, &v, &over)) == NULL)
			return -EINVAL;
		for (i = next; i < sizeof(mult) / sizeof(mult[0]); i++)
			if (*end == units[i] || *end == units[i] - 'a' + 'A')
				break;
		if (i == sizeof(mult) / sizeof(mult[0]))
			return -EINVAL;
		if (over || v > UINT64_MAX / mult[i] || v * mult[i] > UINT64_MAX - total)
			return -ERANGE;
		total += v * mult[i];
		next = i + 1;
		p = end + 1;
	}
	if (total > max)
		return -ERANGE;
	*ret_seconds = total;
	return 0;
}
