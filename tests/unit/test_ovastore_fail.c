/*
 * Failure injection for ovastore (linked with
 * -Wl,--wrap=write,--wrap=fsync,--wrap=sync_file_range): ENOSPC on every
 * write position and EIO on every fsync position of a commit, pack and
 * unpack, and EIO reported by the write-behind's wait, proving that nothing
 * half-written ever becomes visible: after each failure the object reads as
 * absent and no file of it, temporary or final, is left.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/io.h"
#include "ovastore/atomic.h"
#include "ovastore/ovastore.h"
#include "ovastore/state.h"

ssize_t __real_write(int fd, const void *p, size_t n);
ssize_t __wrap_write(int fd, const void *p, size_t n);
int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags);
int __wrap_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags);

/* Fail the n-th call from now (1-based); 0: never. */
static int write_fail_at, fsync_fail_at;
static int write_calls, fsync_calls;
/* Fail the n-th waiting sync_file_range (the write-behind's settle) with EIO. */
static int swait_fail_at, swait_calls;

ssize_t
__wrap_write(int fd, const void *p, size_t n)
{
	/* Only files written by the library count (not cmocka's output). */
	if (fd > 2 && write_fail_at > 0 && ++write_calls == write_fail_at) {
		errno = ENOSPC;
		return -1;
	}
	return __real_write(fd, p, n);
}

int
__wrap_fsync(int fd)
{
	if (fsync_fail_at > 0 && ++fsync_calls == fsync_fail_at) {
		errno = EIO;
		return -1;
	}
	return __real_fsync(fd);
}

/*
 * A write-back error as the kernel reports it: the wait returns EIO (and the
 * kernel would not report it again to a later fsync of the descriptor).
 */
int
__wrap_sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
	if ((flags & SYNC_FILE_RANGE_WAIT_AFTER) && swait_fail_at > 0 &&
	    ++swait_calls == swait_fail_at) {
		(void)__real_sync_file_range(fd, off, n, flags);
		errno = EIO;
		return -1;
	}
	return __real_sync_file_range(fd, off, n, flags);
}

static void
inject(int w, int f)
{
	write_fail_at = w;
	fsync_fail_at = f;
	write_calls = fsync_calls = 0;
	swait_fail_at = swait_calls = 0;
}

struct fx {
	char root[64];
	struct ova_store *s;
};

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/ovastore-fail.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	assert_int_equal(ova_store_open(f->root, &f->s, NULL), 0);
	inject(0, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	inject(0, 0);
	ova_store_close(f->s);
	(void)nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Entries of a directory below the root; -1 when absent. */
static int
count_dir(struct fx *f, const char *rel)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static const char ovf_fmt[] =
    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
    "<File ovf:href=\"u-disk0.vmdk\" ovf:id=\"file1\" ovf:size=\"%d\"/>"
    "<File ovf:href=\"u-disk1.vmdk\" ovf:id=\"file2\" ovf:size=\"%d\"/></References>"
    "<DiskSection><Info>d</Info>"
    "<Disk ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^30\" ovf:diskId=\"d1\" "
    "ovf:fileRef=\"file1\"/>"
    "<Disk ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^30\" ovf:diskId=\"d2\" "
    "ovf:fileRef=\"file2\"/></DiskSection></Envelope>";

#define N0 300000
#define N1 5000

/* Runs a whole write; returns the first error (0 on success). */
static int
try_write(struct fx *f, const char *obj, struct sw_err *e)
{
	static unsigned char d0[N0], d1[N1];
	struct ova_writer *w = NULL;
	struct ova_result *res = NULL;
	struct sw_sink s0, s1;
	char ovf[1024];
	size_t off;
	int r, n;

	memset(d0, 0x5a, sizeof(d0));
	memset(d1, 0xa5, sizeof(d1));
	n = snprintf(ovf, sizeof(ovf), ovf_fmt, N0, N1);
	if ((r = ova_writer_begin(f->s, obj, 0, &w, e)) < 0)
		return r;
	if ((r = ova_writer_disk(w, NULL, &s0, e)) < 0 || (r = ova_writer_disk(w, NULL, &s1, e)) < 0)
		goto out;
	for (off = 0; off < N0; off += 65536)
		if ((r = s0.write(s0.ud, d0 + off, N0 - off < 65536 ? N0 - off : 65536, e)) < 0)
			goto out;
	if ((r = s1.write(s1.ud, d1, N1, e)) < 0)
		goto out;
	if ((r = ova_writer_ovf(w, NULL, ovf, (size_t)n, e)) < 0)
		goto out;
	r = ova_writer_commit(w, &res, e);
	if (r == 0) {
		assert_int_equal(res->nfiles, 4);
		ova_result_free(res);
	}
out:
	ova_writer_free(w);
	return r;
}

static void
assert_absent(struct fx *f, const char *obj, const char *dir)
{
	enum ova_format fm = OVA_FMT_OVF;

	assert_int_equal(ova_detect(f->s, obj, &fm, NULL), 0);
	assert_int_equal(fm, OVA_FMT_ABSENT);
	/* Not a single file of the object, not even a temporary. */
	assert_true(count_dir(f, dir) <= 0);
}

static void
test_enospc_every_write(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	int k, total;

	/* Count the writes of a clean run, then fail each one in turn. */
	inject(1000000, 0);
	assert_int_equal(try_write(f, "w/ref/u", &e), 0);
	total = write_calls;
	assert_true(total >= 5); /* 5 disk chunks + 1 + OVF + meta */
	for (k = 1; k <= total; k++) {
		char obj[64], dir[64];
		int r;

		snprintf(dir, sizeof(dir), "w/%d", k);
		snprintf(obj, sizeof(obj), "w/%d/u", k);
		inject(k, 0);
		r = try_write(f, obj, &e);
		inject(0, 0);
		assert_int_equal(r, -ENOSPC);
		assert_non_null(strstr(e.msg, "No space left on device"));
		assert_absent(f, obj, dir);
	}
}

static void
test_fsync_failure_every_position(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	int k, total;

	inject(0, 1000000);
	assert_int_equal(try_write(f, "s/ref/u", &e), 0);
	total = fsync_calls;
	/* 2 disks + OVF + directory + meta + directory. */
	assert_int_equal(total, 6);
	for (k = 1; k <= total; k++) {
		char obj[64], dir[64];
		int r;

		snprintf(dir, sizeof(dir), "s/%d", k);
		snprintf(obj, sizeof(obj), "s/%d/u", k);
		inject(0, k);
		r = try_write(f, obj, &e);
		inject(0, 0);
		assert_int_equal(r, -EIO);
		assert_non_null(strstr(e.msg, "fsync"));
		/* Even the last one (the directory after the meta's rename) takes it all back. */
		assert_absent(f, obj, dir);
	}
	/* And a retry after the failure succeeds. */
	assert_int_equal(try_write(f, "s/1/u", &e), 0);
	assert_int_equal(ova_verify(f->s, "s/1/u", 0, &e), 0);
}

static void
test_pack_enospc(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	uint64_t size = 7;
	int rootfd;

	assert_int_equal(try_write(f, "p/u", &e), 0);
	rootfd = ova_store_fd(f->s);
	/* Header writes go through write(): fail the first one, and the fsync. */
	inject(1, 0);
	assert_int_equal(ova_pack_at(f->s, "p/u", rootfd, "ex/u.ova", 0, &size, &e), -ENOSPC);
	inject(0, 0);
	assert_true(size == 7);
	assert_int_equal(count_dir(f, "ex"), 0);
	inject(0, 1);
	assert_int_equal(ova_pack_at(f->s, "p/u", rootfd, "ex/u.ova", 0, &size, &e), -EIO);
	inject(0, 0);
	assert_int_equal(count_dir(f, "ex"), 0);
	assert_int_equal(ova_pack_at(f->s, "p/u", rootfd, "ex/u.ova", 0, &size, &e), 0);
	assert_int_equal(count_dir(f, "ex"), 1);
}

static void
test_unpack_failures(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	char path[512];
	int fd, k, total;
	struct stat st;

	assert_int_equal(try_write(f, "p/u", &e), 0);
	assert_int_equal(ova_pack_at(f->s, "p/u", ova_store_fd(f->s), "in.ova", 0, NULL, &e), 0);
	snprintf(path, sizeof(path), "%s/in.ova", f->root);
	/* Every write position of the unpack. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	inject(1000000, 0);
	assert_int_equal(ova_unpack_fd(f->s, "u/ref/v", fd, 0, NULL, &e), 0);
	total = write_calls;
	inject(0, 0);
	close(fd);
	for (k = 1; k <= total; k++) {
		char obj[64], dir[64];

		snprintf(dir, sizeof(dir), "u/%d", k);
		snprintf(obj, sizeof(obj), "u/%d/v", k);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		inject(k, 0);
		assert_int_equal(ova_unpack_fd(f->s, obj, fd, 0, NULL, &e), -ENOSPC);
		inject(0, 0);
		close(fd);
		assert_absent(f, obj, dir);
	}
	/* A truncated OVA (cut at several points): nothing left. */
	assert_int_equal(stat(path, &st), 0);
	for (k = 1; k < 8; k++) {
		char obj[64], dir[64], cut[512];
		unsigned char *buf = malloc((size_t)st.st_size);
		int in, out;
		off_t len = st.st_size * k / 8;

		assert_non_null(buf);
		in = open(path, O_RDONLY | O_CLOEXEC);
		assert_int_equal(sw_read_full(in, buf, (size_t)len), len);
		close(in);
		snprintf(cut, sizeof(cut), "%s/cut.ova", f->root);
		out = open(cut, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		assert_int_equal(sw_write_all(out, buf, (size_t)len), 0);
		close(out);
		free(buf);
		snprintf(dir, sizeof(dir), "t/%d", k);
		snprintf(obj, sizeof(obj), "t/%d/v", k);
		in = open(cut, O_RDONLY | O_CLOEXEC);
		assert_true(ova_unpack_fd(f->s, obj, in, 0, NULL, &e) < 0);
		close(in);
		assert_absent(f, obj, dir);
	}
}

static void
test_copy_failures(void **state)
{
	struct fx *f = *state;
	struct ova_store *dst = NULL;
	char root2[64];
	struct sw_err e;
	int k, total;

	assert_int_equal(try_write(f, "c/u", &e), 0);
	snprintf(root2, sizeof(root2), "/tmp/ovastore-fail2.XXXXXX");
	assert_non_null(mkdtemp(root2));
	assert_int_equal(ova_store_open(root2, &dst, &e), 0);
	inject(0, 1000000);
	assert_int_equal(ova_copy(f->s, "c/u", dst, "ref/u", NULL, &e), 0);
	total = fsync_calls;
	inject(0, 0);
	for (k = 1; k <= total; k++) {
		char obj[64];
		enum ova_format fm = OVA_FMT_OVF;

		snprintf(obj, sizeof(obj), "f%d/u", k);
		inject(0, k);
		assert_int_equal(ova_copy(f->s, "c/u", dst, obj, NULL, &e), -EIO);
		inject(0, 0);
		assert_int_equal(ova_detect(dst, obj, &fm, NULL), 0);
		assert_int_equal(fm, OVA_FMT_ABSENT);
		{
			char path[512];
			DIR *d;
			struct dirent *de;
			int n = 0;

			snprintf(path, sizeof(path), "%s/f%d", root2, k);
			if ((d = opendir(path)) != NULL) {
				while ((de = readdir(d)) != NULL)
					n += de->d_name[0] != '.';
				closedir(d);
			}
			assert_int_equal(n, 0);
		}
	}
	ova_store_close(dst);
	(void)nftw(root2, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The atomic-write helper names the step that failed and leaves no temporary. */
static void
test_atomic_named_failures(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	char tmp[128];
	int dfd = ova_store_fd(f->s);

	snprintf(tmp, sizeof(tmp), "%s/f.part", f->root);
	inject(1, 0);
	assert_int_equal(ova_atomic_write(dfd, "f", "abc", 3, "dir/f", &e), -ENOSPC);
	assert_string_equal(e.msg, "write of 'dir/f': No space left on device");
	assert_int_equal(access(tmp, F_OK), -1);
	inject(0, 1);
	assert_int_equal(ova_atomic_write(dfd, "f", "abc", 3, "dir/f", &e), -EIO);
	assert_string_equal(e.msg, "fsync of 'dir/f': Input/output error");
	assert_int_equal(access(tmp, F_OK), -1);
	snprintf(tmp, sizeof(tmp), "%s/f", f->root);
	assert_int_equal(access(tmp, F_OK), -1);
	/* The directory's fsync comes after the rename: the file is in place. */
	inject(0, 2);
	assert_int_equal(ova_atomic_write(dfd, "f", "abc", 3, "dir/f", &e), -EIO);
	assert_string_equal(e.msg, "fsync of the directory of 'dir/f': Input/output error");
	assert_int_equal(access(tmp, F_OK), 0);
	inject(0, 0);
}

/* A journal that cannot be made durable is an error naming it: no snapshot is taken. */
static void
test_journal_write_fails(void **state)
{
	struct fx *f = *state;
	struct ova_journal j, r;
	struct sw_err e;

	memset(&j, 0, sizeof(j));
	snprintf(j.command, sizeof(j.command), "c1");
	snprintf(j.vm, sizeof(j.vm), "vm-1");
	inject(0, 1);
	assert_int_equal(ova_journal_write(f->s, &j, &e), -EIO);
	assert_non_null(strstr(e.msg, "fsync of 'c1.journal'"));
	assert_int_equal(ova_journal_read(f->s, "c1", &r, &e), SW_ENOTFOUND);
	inject(1, 0);
	assert_int_equal(ova_marker_write(f->s, "c1", "[ds] v.vmdk", &e), -ENOSPC);
	assert_non_null(strstr(e.msg, "write of 'c1.createvolume'"));
	inject(0, 0);
}

/*
 * Write-behind: a disk larger than the write-behind's lag is settled while
 * it is written; an EIO reported by that wait (which a later fsync would not
 * repeat) fails the write, the copy and the pack, and leaves nothing.
 */
#define BIG (SW_WRITEBACK_LAG + 3 * SW_WRITEBACK_STEP)

static int
try_write_big(struct fx *f, const char *obj, struct sw_err *e)
{
	static unsigned char blk[1 << 20];
	static const char big_ovf[] =
	    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
	    "<File ovf:href=\"u-disk0.vmdk\" ovf:id=\"file1\" ovf:size=\"%u\"/></References>"
	    "<DiskSection><Info>d</Info>"
	    "<Disk ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^30\" "
	    "ovf:diskId=\"d1\" ovf:fileRef=\"file1\"/></DiskSection></Envelope>";
	struct ova_writer *w = NULL;
	struct ova_result *res = NULL;
	struct sw_sink s0;
	char ovf[1024];
	size_t off;
	int r, n;

	memset(blk, 0x3c, sizeof(blk));
	n = snprintf(ovf, sizeof(ovf), big_ovf, (unsigned)BIG);
	if ((r = ova_writer_begin(f->s, obj, 0, &w, e)) < 0)
		return r;
	if ((r = ova_writer_disk(w, NULL, &s0, e)) < 0)
		goto out;
	for (off = 0; off < BIG; off += sizeof(blk))
		if ((r = s0.write(s0.ud, blk, sizeof(blk), e)) < 0)
			goto out;
	if ((r = ova_writer_ovf(w, NULL, ovf, (size_t)n, e)) < 0)
		goto out;
	r = ova_writer_commit(w, &res, e);
	ova_result_free(res);
out:
	ova_writer_free(w);
	return r;
}

static void
test_writeback_eio(void **state)
{
	struct fx *f = *state;
	struct ova_store *dst = NULL;
	enum ova_format fm = OVA_FMT_OVF;
	char root2[64];
	struct sw_err e;
	uint64_t size = 7;
	int rootfd = ova_store_fd(f->s);

	/* A clean write settles at least once (else this test would prove nothing). */
	inject(0, 0);
	swait_fail_at = 1000000;
	assert_int_equal(try_write_big(f, "b/ref/u", &e), 0);
	assert_true(swait_calls >= 1);
	/* The store writer (CreateSnapshot, RegisterTemplate...). */
	inject(0, 0);
	swait_fail_at = 1;
	assert_int_equal(try_write_big(f, "b/1/u", &e), -EIO);
	assert_non_null(strstr(e.msg, "write-back"));
	assert_absent(f, "b/1/u", "b/1");
	/* The .ova packed into an extract area. */
	inject(0, 0);
	swait_fail_at = 1;
	assert_int_equal(ova_pack_at(f->s, "b/ref/u", rootfd, "ex/u.ova", 0, &size, &e), -EIO);
	assert_true(size == 7);
	assert_int_equal(count_dir(f, "ex"), 0);
	/* A copy to another store (read once, hashed on the way). */
	snprintf(root2, sizeof(root2), "/tmp/ovastore-fail2.XXXXXX");
	assert_non_null(mkdtemp(root2));
	assert_int_equal(ova_store_open(root2, &dst, &e), 0);
	inject(0, 0);
	swait_fail_at = 1;
	assert_int_equal(ova_copy(f->s, "b/ref/u", dst, "c/u", NULL, &e), -EIO);
	assert_int_equal(ova_detect(dst, "c/u", &fm, NULL), 0);
	assert_int_equal(fm, OVA_FMT_ABSENT);
	/* Without the failure all three succeed. */
	inject(0, 0);
	assert_int_equal(ova_copy(f->s, "b/ref/u", dst, "c/u", NULL, &e), 0);
	assert_int_equal(ova_verify(dst, "c/u", 0, &e), 0);
	assert_int_equal(ova_pack_at(f->s, "b/ref/u", rootfd, "ex/u.ova", 0, &size, &e), 0);
	assert_int_equal(try_write_big(f, "b/1/u", &e), 0);
	ova_store_close(dst);
	(void)nftw(root2, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enospc_every_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_failure_every_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_named_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_eio, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
