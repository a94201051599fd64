/*
 * Unit tests for ovastore's tar reading: archives as GNU tar, bsdtar
 * (libarchive) and pax writers make them, offsets of member data, refusal of
 * links, devices, directories, unsafe names, compression, truncation and
 * excess; and a member over 8 GiB through pack (sparse, so it stays cheap).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/io.h"
#include "ovastore/ovastore.h"

#define CAP (4u << 20)

struct tw {
	struct archive *a;
	unsigned char *buf;
	size_t used;
};

static void
tw_open(struct tw *t, int format)
{
	t->buf = malloc(CAP);
	assert_non_null(t->buf);
	t->used = 0;
	t->a = archive_write_new();
	assert_int_equal(archive_write_set_format(t->a, format), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(t->a, t->buf, CAP, &t->used), ARCHIVE_OK);
}

static void
tw_add(struct tw *t, const char *name, unsigned type, const char *data, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	size_t n = data ? strlen(data) : 0;

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, 0644);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link != NULL)
		archive_entry_set_hardlink(e, link);
	if (type == AE_IFCHR)
		archive_entry_set_rdev(e, 0x0501);
	archive_entry_set_size(e, type == AE_IFREG && link == NULL ? (la_int64_t)n : 0);
	assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
	if (type == AE_IFREG && n > 0)
		assert_int_equal(archive_write_data(t->a, data, n), (la_ssize_t)n);
	archive_entry_free(e);
}

static void
tw_close(struct tw *t)
{
	assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
	archive_write_free(t->a);
}

/* The data at each member's offset is the data we stored. */
static void
check_members(const struct tw *t, const char *const *names, const char *const *data, size_t n)
{
	struct ova_tar_index *ix = NULL;
	struct sw_err e;
	size_t i;

	if (ova_tar_index_mem(t->buf, t->used, &ix, &e) != 0)
		fail_msg("index: %s", e.msg);
	assert_int_equal(ix->n, n);
	for (i = 0; i < n; i++) {
		assert_string_equal(ix->members[i].name, names[i]);
		assert_true(ix->members[i].size == strlen(data[i]));
		assert_true(ix->members[i].offset % 512 == 0);
		assert_memory_equal(t->buf + ix->members[i].offset, data[i], strlen(data[i]));
	}
	ova_tar_index_free(ix);
}

static void
test_formats(void **state)
{
	static const int formats[] = {
		ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FORMAT_TAR_GNUTAR,
		ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED,
	};
	char longname[200];
	size_t i;

	(void)state;
	memset(longname, 'n', 150);
	memcpy(longname + 150, "-disk0.vmdk", 12);
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tw t;
		const char *names[3] = { "a.ovf", "a-disk0.vmdk", "sub/dir/b.vmdk" };
		const char *data[3] = { "<ovf/>", "0123456789abcdef", "x" };

		tw_open(&t, formats[i]);
		tw_add(&t, names[0], AE_IFREG, data[0], NULL);
		tw_add(&t, names[1], AE_IFREG, data[1], NULL);
		tw_add(&t, names[2], AE_IFREG, data[2], NULL);
		tw_close(&t);
		check_members(&t, names, data, 3);
		free(t.buf);
		/* A long name: GNU 'L' records or pax path records (ustar cannot). */
		if (formats[i] == ARCHIVE_FORMAT_TAR_USTAR)
			continue;
		tw_open(&t, formats[i]);
		names[1] = longname;
		tw_add(&t, names[0], AE_IFREG, data[0], NULL);
		tw_add(&t, longname, AE_IFREG, data[1], NULL);
		tw_close(&t);
		check_members(&t, names, data, 2);
		free(t.buf);
	}
}

static void
test_gnu_tar_fixtures(void **state)
{
	static const char *const files[] = { "gnu-longname.ova", "posix-longname.ova" };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		char path[512];
		struct ova_tar_index *ix = NULL;
		struct sw_err e;
		unsigned char buf[64];
		int fd;

		snprintf(path, sizeof(path), "%s/tests/fixtures/ovastore/%s", SW_SRCDIR, files[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		if (ova_tar_index_fd(fd, &ix, &e) != 0)
			fail_msg("%s: %s", files[i], e.msg);
		assert_int_equal(ix->n, 2);
		assert_string_equal(ix->members[0].name, "small.ovf");
		assert_true(ix->members[0].size == 3000);
		assert_int_equal(strlen(ix->members[1].name), 130 + 11);
		assert_true(ix->members[1].size == 26);
		assert_int_equal(sw_pread_full(fd, buf, 26, (off_t)ix->members[1].offset), 26);
		assert_memory_equal(buf, "disk data for a long name\n", 26);
		ova_tar_index_free(ix);
		close(fd);
	}
	/* "./name" as `tar -C dir .` writes it: found by its base name. */
	{
		char path[512];
		struct ova_tar_index *ix = NULL;
		int fd;

		snprintf(path, sizeof(path), "%s/tests/fixtures/ovastore/ustar-dotslash.ova", SW_SRCDIR);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(ova_tar_index_fd(fd, &ix, NULL), 0);
		assert_non_null(ova_tar_find(ix, "small.ovf"));
		ova_tar_index_free(ix);
		close(fd);
	}
}

static void
expect_reject(const struct tw *t, size_t len, int code, const char *needle)
{
	struct ova_tar_index *ix = NULL;
	struct sw_err e;

	sw_err_clear(&e);
	assert_int_equal(ova_tar_index_mem(t->buf, len, &ix, &e), code);
	assert_null(ix);
	if (needle != NULL && strstr(e.msg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void
test_rejects(void **state)
{
	struct tw t;

	(void)state;
	tw_open(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	tw_add(&t, "a.ovf", AE_IFREG, "x", NULL);
	tw_add(&t, "link.vmdk", AE_IFLNK, NULL, "/etc/shadow");
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, "link");
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_GNUTAR);
	tw_add(&t, "a.ovf", AE_IFREG, "x", NULL);
	tw_add(&t, "hard.vmdk", AE_IFREG, NULL, "a.ovf");
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, "link");
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_USTAR);
	tw_add(&t, "dir", AE_IFDIR, NULL, NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, "regular");
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_USTAR);
	tw_add(&t, "dev", AE_IFCHR, NULL, NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, "regular");
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_USTAR);
	tw_add(&t, "fifo", AE_IFIFO, NULL, NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, NULL);
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	tw_add(&t, "../../etc/cron.d/x", AE_IFREG, "x", NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EPATH, "unsafe");
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	tw_add(&t, "/etc/x", AE_IFREG, "x", NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EPATH, NULL);
	free(t.buf);

	tw_open(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	tw_add(&t, "a.vmdk", AE_IFREG, "x", NULL);
	tw_add(&t, "a.vmdk", AE_IFREG, "y", NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, "twice");
	free(t.buf);

	/* Truncation: in the data of the last member, and in its header. */
	tw_open(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	tw_add(&t, "a.ovf", AE_IFREG, "ovf", NULL);
	{
		char big[5000];

		memset(big, 'd', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		tw_add(&t, "a-disk0.vmdk", AE_IFREG, big, NULL);
	}
	tw_close(&t);
	expect_reject(&t, 1024 + 512 + 1000, SW_EFORMAT, NULL);
	expect_reject(&t, 1024 + 300, SW_EFORMAT, NULL);
	free(t.buf);
	/* Nothing at all / an empty archive. */
	{
		struct ova_tar_index *ix = NULL;
		unsigned char zeros[1024] = { 0 };

		assert_int_equal(ova_tar_index_mem(zeros, sizeof(zeros), &ix, NULL), SW_EFORMAT);
		assert_int_equal(ova_tar_index_mem("", 0, &ix, NULL), SW_EFORMAT);
		assert_null(ix);
	}
}

static void
test_rejects_other_formats(void **state)
{
	struct tw t;

	(void)state;
	/* gzip-compressed tar: no filter is enabled, so it is not a tar. */
	t.buf = malloc(CAP);
	assert_non_null(t.buf);
	t.used = 0;
	t.a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(t.a), ARCHIVE_OK);
	assert_int_equal(archive_write_add_filter_gzip(t.a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(t.a, t.buf, CAP, &t.used), ARCHIVE_OK);
	tw_add(&t, "a.ovf", AE_IFREG, "x", NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, NULL);
	free(t.buf);
	/* zip and cpio are not sniffed either. */
	tw_open(&t, ARCHIVE_FORMAT_ZIP);
	tw_add(&t, "a.ovf", AE_IFREG, "x", NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, NULL);
	free(t.buf);
	tw_open(&t, ARCHIVE_FORMAT_CPIO_POSIX);
	tw_add(&t, "a.ovf", AE_IFREG, "x", NULL);
	tw_close(&t);
	expect_reject(&t, t.used, SW_EFORMAT, NULL);
	free(t.buf);
}

static void
test_member_limit(void **state)
{
	struct tw t;
	char name[32];
	int i;

	(void)state;
	tw_open(&t, ARCHIVE_FORMAT_TAR_USTAR);
	for (i = 0; i < OVA_TAR_MAX_MEMBERS + 1; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		tw_add(&t, name, AE_IFREG, "", NULL);
	}
	tw_close(&t);
	expect_reject(&t, t.used, SW_ETOOBIG, "members");
	free(t.buf);
}

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/*
 * A 9 GiB sparse disk: pack writes a pax size record and keeps the holes,
 * the index finds the member and its last bytes read back by offset.
 */
static void
test_member_over_8g(void **state)
{
	const uint64_t size = 9ULL << 30;
	char root[64], path[512], ovf[1024];
	struct ova_store *s = NULL;
	struct ova_tar_index *ix = NULL;
	struct ova_reader *r = NULL;
	struct sw_err e;
	struct stat st;
	uint64_t packed = 0;
	unsigned char tail[16];
	int fd, n;

	(void)state;
	snprintf(root, sizeof(root), "/tmp/ovastore-big.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/big", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/big/b-disk0.vmdk", root);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "HEAD", 4, 0), 4);
	assert_int_equal(pwrite(fd, "TAIL-OF-THE-DISK", 16, (off_t)(size - 16)), 16);
	close(fd);
	n = snprintf(ovf, sizeof(ovf),
	    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
	    "<File ovf:href=\"b-disk0.vmdk\" ovf:id=\"file1\" ovf:size=\"%llu\"/></References>"
	    "<DiskSection><Info>d</Info><Disk ovf:capacity=\"10\" "
	    "ovf:capacityAllocationUnits=\"byte * 2^30\" ovf:diskId=\"vmdisk1\" "
	    "ovf:fileRef=\"file1\"/></DiskSection></Envelope>", (unsigned long long)size);
	snprintf(path, sizeof(path), "%s/big/b.ovf", root);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(sw_write_all(fd, ovf, (size_t)n), 0);
	close(fd);
	assert_int_equal(ova_store_open(root, &s, &e), 0);
	assert_int_equal(ova_commit_files(s, "big/b", OVA_COMMIT_NO_SHA256, NULL, &e), 0);
	if (ova_pack_at(s, "big/b", ova_store_fd(s), "out/b.ova", 0, &packed, &e) != 0)
		fail_msg("pack: %s", e.msg);
	snprintf(path, sizeof(path), "%s/out/b.ova", root);
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_size == packed);
	assert_true(packed > size);
	/* The holes stayed holes: far less than 9 GiB allocated. */
	assert_true((uint64_t)st.st_blocks * 512 < (64u << 20));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ova_tar_index_fd(fd, &ix, &e), 0);
	assert_int_equal(ix->n, 2);
	assert_true(ix->members[1].size == size);
	assert_int_equal(sw_pread_full(fd, tail, 16, (off_t)(ix->members[1].offset + size - 16)), 16);
	assert_memory_equal(tail, "TAIL-OF-THE-DISK", 16);
	ova_tar_index_free(ix);
	close(fd);
	/* As a legacy object: the reader streams the member from its offset. */
	snprintf(path, sizeof(path), "%s/out/b.ova", root);
	{
		char dst[512];

		snprintf(dst, sizeof(dst), "%s/big/legacy.ova", root);
		assert_int_equal(rename(path, dst), 0);
	}
	assert_int_equal(ova_reader_open_disk(s, "big/legacy", 0, &r, &e), 0);
	assert_true(ova_reader_size(r) == size);
	{
		uint64_t off = 0;
		int rfd = ova_reader_fd(r, &off);
		struct sw_source src = ova_reader_source(r);

		assert_int_equal(sw_pread_full(rfd, tail, 4, (off_t)off), 4);
		assert_memory_equal(tail, "HEAD", 4);
		assert_int_equal(src.read(src.ud, tail, 4, &e), 4);
		assert_memory_equal(tail, "HEAD", 4);
	}
	ova_reader_close(r);
	ova_store_close(s);
	(void)nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_gnu_tar_fixtures),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_rejects_other_formats),
		cmocka_unit_test(test_member_limit),
		cmocka_unit_test(test_member_over_8g),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
