#include "common/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

int
sw_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t
sw_read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, c + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
sw_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = pwrite(fd, c, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

ssize_t
sw_pread_full(int fd, void *p, size_t n, off_t off)
{
	char *c = p;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, c + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

uint64_t
sw_mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
sw_time_iso8601(int64_t t, char *buf, size_t bufsz)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (bufsz > 0)
			buf[0] = '\0';
	}
}

void
sw_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
sw_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

struct sw_hash {
	EVP_MD_CTX *ctx;
};

struct sw_hash *
sw_hash_new(const char *alg)
{
	const EVP_MD *md;
	struct sw_hash *h;

	if (strcmp(alg, "sha256") == 0)
		md = EVP_sha256();
	else if (strcmp(alg, "sha1") == 0)
		md = EVP_sha1();
	else if (strcmp(alg, "md5") == 0)
		md = EVP_md5();
	else
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if ((h->ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
		sw_hash_free(h);
		return NULL;
	}
	return h;
}

int
sw_hash_update(struct sw_hash *h, const void *p, size_t n)
{
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : SW_EINTERNAL;
}

int
sw_hash_final(struct sw_hash *h, char *out, size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1)
		return SW_EINTERNAL;
	if (outsz < 2 * (size_t)n + 1)
		return -ENAMETOOLONG;
	sw_hex(md, n, out);
	return 0;
}

void
sw_hash_free(struct sw_hash *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* sync_file_range failed only because this file or file system has no use for it. */
static int
wb_unsupported(int err)
{
	return err == EINVAL || err == ESPIPE || err == ENOSYS || err == EOPNOTSUPP;
}

int
sw_writeback(int fd, struct sw_writeback *wb, uint64_t end)
{
	uint64_t to;

	if (end < wb->started + SW_WRITEBACK_STEP)
		return 0;
	if (sync_file_range(fd, (off64_t)wb->started, (off64_t)(end - wb->started),
	    SYNC_FILE_RANGE_WRITE) < 0 && !wb_unsupported(errno))
		return -errno;
	wb->started = end;
	if (end < wb->settled + SW_WRITEBACK_LAG + SW_WRITEBACK_STEP)
		return 0;
	to = end - SW_WRITEBACK_LAG;
	/* The wait reports (and consumes) a write-back error of the file: it must fail it. */
	if (sync_file_range(fd, (off64_t)wb->settled, (off64_t)(to - wb->settled),
	    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) < 0) {
		if (!wb_unsupported(errno))
			return -errno;
	} else if (!wb->keep) {
		(void)posix_fadvise(fd, (off_t)wb->settled, (off_t)(to - wb->settled),
		    POSIX_FADV_DONTNEED);
	}
	wb->settled = to;
	return 0;
}
