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
 * Write-behind for a file written front to back that this process will not
 * read again (a disk streamed into the store, an archive being packed).
 * Call sw_writeback after each write with end, the file's size so far:
 *   - every SW_WRITEBACK_STEP bytes it asks the kernel to start writing the
 *     new bytes to the disk (sync_file_range, SYNC_FILE_RANGE_WRITE, no
 *     wait), so the closing fsync finds the file mostly written;
 *   - the bytes more than SW_WRITEBACK_LAG behind end are waited for and
 *     dropped from the page cache (POSIX_FADV_DONTNEED): a stream keeps at
 *     most about LAG + STEP of its file in memory, reuses the same pages
 *     instead of taking fresh ones for every byte, and writes no faster than
 *     the disk takes it (backpressure instead of the kernel's dirty limit).
 * Returns 0, or -errno when the kernel reports that writing the file back
 * failed (EIO, ENOSPC, EDQUOT...): the wait consumes that report, so a later
 * fsync of the same descriptor would not repeat it, and the caller must fail
 * the file.  A file system or descriptor without these calls (EINVAL,
 * ESPIPE, ENOSYS, EOPNOTSUPP) only loses the early start; the drop is
 * advice.  Ranges before settled are never touched again, so only the part
 * of the file written in order is dropped.
 * With keep set, the settled bytes stay in the page cache (a file that is
 * read back at once: the .ova packed from a disk just exported).
 */
#define SW_WRITEBACK_STEP (8u * 1024 * 1024)
#define SW_WRITEBACK_LAG (32u * 1024 * 1024)
struct sw_writeback {
	uint64_t started; /* writeback asked for [0, started) */
	uint64_t settled; /* [0, settled) waited for (and dropped from the cache) */
	int keep;         /* 1: settled bytes stay in the page cache */
};
int sw_writeback(int fd, struct sw_writeback *wb, uint64_t end);

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
