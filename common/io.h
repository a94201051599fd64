/* Small I/O helpers and the byte stream interfaces every layer shares. */
#ifndef SW_IO_H
#define SW_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/*
 * A byte sink: consumes n bytes, returns 0 or a negative code (with e set).
 * vmware/ streams downloaded disks into one; ovastore/ provides sinks that
 * write object files.  A byte source: fills at most n bytes, returns the
 * count, 0 at end of data, or a negative code.
 */
struct sw_sink {
	int (*write)(void *ud, const void *p, size_t n, struct sw_err *e);
	void *ud;
};

struct sw_source {
	ssize_t (*read)(void *ud, void *p, size_t n, struct sw_err *e);
	void *ud;
};

/* Writes all n bytes (retrying EINTR and short writes); 0 or -errno. */
int sw_write_all(int fd, const void *p, size_t n);

/* Reads until n bytes or end of file; returns the count or -errno. */
ssize_t sw_read_full(int fd, void *p, size_t n);

/* pwrite/pread variants of the above. */
int sw_pwrite_all(int fd, const void *p, size_t n, off_t off);
ssize_t sw_pread_full(int fd, void *p, size_t n, off_t off);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t sw_mono_ms(void);

/*
 * Early writeback of a file being written in order: once size (the bytes
 * written so far) is SW_WRITEBACK_STEP or more past *done, asks the kernel to
 * start writing [*done, size) back (sync_file_range, SYNC_FILE_RANGE_WRITE:
 * no wait) and moves *done to size.  A later fsync then finds most of the
 * file on its way to the disk instead of all of it in the page cache.
 */
#define SW_WRITEBACK_STEP (8u * 1024 * 1024)
void sw_writeback(int fd, uint64_t *done, uint64_t size);

/* Writes the UTC time t as "2026-11-25T21:00:00Z"; buf needs 21 bytes. */
void sw_time_iso8601(int64_t t, char *buf, size_t bufsz);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void sw_hex(const unsigned char *p, size_t n, char *out);

/* The value of hex digit c (either case), or -1 when c is not one. */
int sw_hexval(int c);

/*
 * Streaming digests over OpenSSL's EVP: "sha256", "sha1", "md5".
 * sw_hash_final writes lower-case hex into out (at least 129 bytes).
 */
struct sw_hash;
struct sw_hash *sw_hash_new(const char *alg);
int sw_hash_update(struct sw_hash *h, const void *p, size_t n);
int sw_hash_final(struct sw_hash *h, char *out, size_t outsz);
void sw_hash_free(struct sw_hash *h);

#endif
