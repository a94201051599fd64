/*
 * Unit tests for ovastore's store operations: addressing and confinement,
 * the writer's commit protocol, inspect/verify, delete, debris, pack,
 * unpack (manifest checks), the by-offset reader and copy.
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

#include <archive.h>
#include <archive_entry.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/io.h"
#include "ovastore/ovastore.h"

struct fx {
	char root[64];
	int rootfd;
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
	snprintf(f->root, sizeof(f->root), "/tmp/ovastore-test.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	assert_int_equal(ova_store_open(f->root, &f->s, NULL), 0);
	f->rootfd = ova_store_fd(f->s);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	ova_store_close(f->s);
	(void)nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Writes a file below the root (directories made as needed). */
static void
put(struct fx *f, const char *rel, const void *p, size_t n)
{
	char path[512], *slash;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	for (slash = strchr(path + strlen(f->root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		(void)mkdir(path, 0755);
		*slash = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(sw_write_all(fd, p, n), 0);
	close(fd);
}

static int
exists(struct fx *f, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	return lstat(path, &st) == 0;
}

/* Number of entries in a directory below the root (-1 when it does not exist). */
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

static void
sha256_hex(const void *p, size_t n, char *out)
{
	struct sw_hash *h = sw_hash_new("sha256");

	assert_non_null(h);
	assert_int_equal(sw_hash_update(h, p, n), 0);
	assert_int_equal(sw_hash_final(h, out, OVA_SHA256_HEX), 0);
	sw_hash_free(h);
}

static void
sha1_hex(const void *p, size_t n, char *out)
{
	struct sw_hash *h = sw_hash_new("sha1");

	assert_non_null(h);
	assert_int_equal(sw_hash_update(h, p, n), 0);
	assert_int_equal(sw_hash_final(h, out, 41), 0);
	sw_hash_free(h);
}

/* An OVF referencing disks names[0..n) with their sizes, 1 GiB capacity each. */
static char *
mk_ovf(const char *const *names, const size_t *sizes, size_t n)
{
	struct sw_buf b = SW_BUF_INIT(1 << 20);
	size_t i;

	assert_int_equal(sw_buf_addstr(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\">\n  <References>\n"), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(sw_buf_addf(&b, "    <File ovf:href=\"%s\" ovf:id=\"file%zu\" "
		    "ovf:size=\"%zu\"/>\n", names[i], i + 1, sizes[i]), 0);
	assert_int_equal(sw_buf_addstr(&b, "  </References>\n  <DiskSection>\n"
	    "    <Info>Virtual disk information</Info>\n"), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(sw_buf_addf(&b, "    <Disk ovf:capacity=\"1\" "
		    "ovf:capacityAllocationUnits=\"byte * 2^30\" ovf:diskId=\"vmdisk%zu\" "
		    "ovf:fileRef=\"file%zu\" ovf:format=\"http://www.vmware.com/interfaces/"
		    "specifications/vmdk.html#streamOptimized\" ovf:populatedSize=\"%zu\"/>\n",
		    i + 1, i + 1, sizes[i]), 0);
	assert_int_equal(sw_buf_addstr(&b, "  </DiskSection>\n</Envelope>\n"), 0);
	return sw_buf_steal(&b, NULL);
}

static unsigned char *
pattern(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n ? n : 1);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
	return p;
}

/* Writes a two-disk object through the writer; data in chunks of odd sizes. */
static struct ova_result *
write_object(struct fx *f, const char *obj, const char *base, unsigned char **d0, size_t n0,
    unsigned char **d1, size_t n1)
{
	struct ova_writer *w = NULL;
	struct ova_result *res = NULL;
	struct sw_sink s0, s1;
	struct sw_err e;
	char name0[128], name1[128];
	const char *names[2] = { name0, name1 };
	size_t sizes[2] = { n0, n1 }, off;
	char *ovf;

	snprintf(name0, sizeof(name0), "%s-disk0.vmdk", base);
	snprintf(name1, sizeof(name1), "%s-disk1.vmdk", base);
	*d0 = pattern(n0, 1);
	*d1 = pattern(n1, 2);
	assert_int_equal(ova_writer_begin(f->s, obj, 0, &w, &e), 0);
	assert_int_equal(ova_writer_disk(w, NULL, &s0, &e), 0);
	assert_int_equal(ova_writer_disk(w, NULL, &s1, &e), 0);
	for (off = 0; off < n0; off += 4099) {
		size_t k = n0 - off < 4099 ? n0 - off : 4099;

		assert_int_equal(s0.write(s0.ud, *d0 + off, k, &e), 0);
	}
	assert_int_equal(s1.write(s1.ud, *d1, n1, &e), 0);
	ovf = mk_ovf(names, sizes, 2);
	assert_int_equal(ova_writer_ovf(w, NULL, ovf, strlen(ovf), &e), 0);
	/* Nothing is visible before the commit. */
	{
		enum ova_format fm = OVA_FMT_OVA;

		assert_int_equal(ova_detect(f->s, obj, &fm, &e), 0);
		assert_int_equal(fm, OVA_FMT_ABSENT);
	}
	if (ova_writer_commit(w, &res, &e) != 0)
		fail_msg("commit: %s", e.msg);
	ova_writer_free(w);
	free(ovf);
	return res;
}

static void
test_object_split(void **state)
{
	char d[256], n[256];
	struct sw_err e;

	(void)state;
	assert_int_equal(ova_object_split("template/tmpl/1/200/u.ova", d, sizeof(d), n, sizeof(n),
	    &e), 0);
	assert_string_equal(d, "template/tmpl/1/200");
	assert_string_equal(n, "u");
	assert_int_equal(ova_object_split("u", d, sizeof(d), n, sizeof(n), &e), 0);
	assert_string_equal(d, "");
	assert_string_equal(n, "u");
	assert_int_equal(ova_object_split("/etc/u", d, sizeof(d), n, sizeof(n), &e), SW_EPATH);
	assert_int_equal(ova_object_split("a/../u", d, sizeof(d), n, sizeof(n), &e), SW_EPATH);
	assert_int_equal(ova_object_split("a//u", d, sizeof(d), n, sizeof(n), &e), SW_EPATH);
	assert_int_equal(ova_object_split("a/.ova", d, sizeof(d), n, sizeof(n), &e), SW_EPATH);
	assert_int_equal(ova_object_split("a/u\n", d, sizeof(d), n, sizeof(n), &e), SW_EPATH);
	assert_int_equal(ova_object_split("a/u.ova.meta", d, sizeof(d), n, sizeof(n), &e),
	    SW_EPATH);
	assert_int_equal(ova_object_split("", d, sizeof(d), n, sizeof(n), &e), SW_EPATH);
	assert_string_equal(ova_format_name(OVA_FMT_OVF), "ovf");
	assert_string_equal(ova_format_name(OVA_FMT_OVA), "ova");
}

static void
test_writer_roundtrip(void **state)
{
	struct fx *f = *state;
	unsigned char *d0, *d1;
	struct ova_result *res;
	struct ova_info *in = NULL;
	struct sw_buf mb = SW_BUF_INIT(4096);
	char sha[OVA_SHA256_HEX], expect_meta[1024], path[512];
	struct sw_err e;
	enum ova_format fm;
	int fd;

	res = write_object(f, "snapshots/2/13/u/u", "u", &d0, 100000, &d1, 777);
	assert_int_equal(res->format, OVA_FMT_OVF);
	assert_string_equal(res->install_path, "snapshots/2/13/u/u");
	assert_int_equal(res->nfiles, 4);
	assert_string_equal(res->files[0].path, "snapshots/2/13/u/u-disk0.vmdk");
	assert_true(res->files[0].size == 100000);
	sha256_hex(d0, 100000, sha);
	assert_string_equal(res->files[0].sha256, sha);
	assert_string_equal(res->files[1].path, "snapshots/2/13/u/u-disk1.vmdk");
	assert_string_equal(res->files[2].path, "snapshots/2/13/u/u.ovf");
	assert_string_equal(res->files[3].path, "snapshots/2/13/u/u.ova.meta");
	assert_true(res->virtual_size == 2ULL << 30);
	/* The meta: CloudStack's keys in CloudStack's order, plus the digests. */
	snprintf(path, sizeof(path), "%s/snapshots/2/13/u/u.ova.meta", f->root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	{
		char buf[1024];
		ssize_t n = read(fd, buf, sizeof(buf));

		assert_true(n > 0);
		assert_int_equal(sw_buf_add(&mb, buf, (size_t)n), 0);
	}
	close(fd);
	{
		char sha1d[OVA_SHA256_HEX];

		sha256_hex(d1, 777, sha1d);
		snprintf(expect_meta, sizeof(expect_meta),
		    "ova.filename=u.ova\nversion=1.0\novf=u.ovf\nnumDisks=2\n"
		    "disk1.name=u-disk0.vmdk\ndisk1.size=100000\ndisk1.sha256=%s\n"
		    "disk2.name=u-disk1.vmdk\ndisk2.size=777\ndisk2.sha256=%s\n", sha, sha1d);
	}
	assert_string_equal(sw_buf_str(&mb), expect_meta);
	assert_true(res->files[3].size == mb.len);
	assert_int_equal(count_dir(f, "snapshots/2/13/u"), 4); /* no debris */
	assert_int_equal(ova_detect(f->s, "snapshots/2/13/u/u.ova", &fm, &e), 0);
	assert_int_equal(fm, OVA_FMT_OVF);
	assert_int_equal(ova_inspect(f->s, "snapshots/2/13/u/u", &in, &e), 0);
	assert_int_equal(in->ndisks, 2);
	assert_true(in->disks[1].size == 777);
	assert_true(in->disks[1].capacity == 1ULL << 30);
	assert_true(in->virtual_size == 2ULL << 30);
	assert_int_equal(in->nfiles, 4);
	ova_info_free(in);
	assert_int_equal(ova_verify(f->s, "snapshots/2/13/u/u", 0, &e), 0);
	/* The same object again: refused, the first one untouched. */
	{
		struct ova_writer *w = (struct ova_writer *)0x1;

		assert_int_equal(ova_writer_begin(f->s, "snapshots/2/13/u/u", 0, &w, &e), SW_EEXIST);
		assert_ptr_equal(w, (struct ova_writer *)0x1);
	}
	/* A corrupted disk is caught by verify's digest check. */
	snprintf(path, sizeof(path), "%s/snapshots/2/13/u/u-disk1.vmdk", f->root);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 5), 1);
	close(fd);
	assert_int_equal(ova_verify(f->s, "snapshots/2/13/u/u", 0, &e), SW_ECHECKSUM);
	assert_non_null(strstr(e.msg, "u-disk1.vmdk"));
	assert_int_equal(ova_verify(f->s, "snapshots/2/13/u/u", OVA_VERIFY_NO_DIGEST, &e), 0);
	/* A disk of the wrong size is caught without reading data. */
	assert_int_equal(truncate(path, 700), 0);
	assert_int_equal(ova_verify(f->s, "snapshots/2/13/u/u", OVA_VERIFY_NO_DIGEST, &e),
	    SW_EFORMAT);
	sw_buf_free(&mb);
	ova_result_free(res);
	free(d0);
	free(d1);
}

static void
test_writer_abort_and_checks(void **state)
{
	struct fx *f = *state;
	struct ova_writer *w = NULL;
	struct sw_sink s0;
	struct sw_err e;
	const char *names[1] = { "other.vmdk" };
	size_t sizes[1] = { 3 };
	char *ovf = mk_ovf(names, sizes, 1);
	struct ova_result *res = (struct ova_result *)0x1;

	/* Abort: every temporary goes. */
	assert_int_equal(ova_writer_begin(f->s, "t/a", 0, &w, &e), 0);
	assert_int_equal(ova_writer_disk(w, NULL, &s0, &e), 0);
	assert_int_equal(s0.write(s0.ud, "abc", 3, &e), 0);
	assert_int_equal(count_dir(f, "t"), 1);
	ova_writer_abort(w);
	assert_int_equal(count_dir(f, "t"), 0);
	/* An OVF that does not reference the disk: commit fails, nothing stays. */
	assert_int_equal(ova_writer_begin(f->s, "t/a", 0, &w, &e), 0);
	assert_int_equal(ova_writer_disk(w, NULL, &s0, &e), 0);
	assert_int_equal(s0.write(s0.ud, "abc", 3, &e), 0);
	assert_int_equal(ova_writer_ovf(w, NULL, ovf, strlen(ovf), &e), 0);
	assert_int_equal(ova_writer_commit(w, &res, &e), SW_EFORMAT);
	assert_ptr_equal(res, (struct ova_result *)0x1);
	assert_non_null(strstr(e.msg, "a-disk0.vmdk"));
	ova_writer_free(w);
	assert_int_equal(count_dir(f, "t"), 0);
	/* A malformed OVF is refused at once. */
	assert_int_equal(ova_writer_begin(f->s, "t/a", 0, &w, &e), 0);
	assert_int_equal(ova_writer_ovf(w, NULL, "<x", 2, &e), SW_EFORMAT);
	/* Bad custom names. */
	assert_int_equal(ova_writer_disk(w, "../x.vmdk", &s0, &e), SW_EPATH);
	assert_int_equal(ova_writer_disk(w, "a.ova.meta", &s0, &e), SW_EPATH);
	assert_int_equal(ova_writer_disk(w, "a.ova", &s0, &e), SW_EPATH);
	assert_int_equal(ova_writer_disk(w, "x.vmdk", &s0, &e), 0);
	assert_int_equal(ova_writer_disk(w, "x.vmdk", &s0, &e), SW_EEXIST);
	/* Commit without an OVF is refused and cleans up. */
	assert_true(ova_writer_commit(w, NULL, &e) < 0);
	ova_writer_free(w);
	assert_int_equal(count_dir(f, "t"), 0);
	ova_writer_free(NULL);
	ova_writer_abort(NULL);
	free(ovf);
}

static void
test_delete_and_debris(void **state)
{
	struct fx *f = *state;
	unsigned char *d0, *d1;
	struct ova_result *res, *rm = NULL;
	struct sw_err e;
	enum ova_format fm;

	res = write_object(f, "s/1/u", "u", &d0, 10, &d1, 20);
	ova_result_free(res);
	free(d0);
	free(d1);
	/* Debris of u, and a file of another object u-x that must survive. */
	put(f, "s/1/u-disk3.vmdk.part", "x", 1);
	put(f, "s/1/u~member.vmdk.part", "x", 1);
	put(f, "s/1/u-x-disk0.vmdk.part", "x", 1);
	put(f, "s/1/keep.txt", "x", 1);
	assert_int_equal(ova_delete(f->s, "s/1/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 6);
	/* The meta first: a half-done delete reads as absent. */
	assert_string_equal(rm->files[0].path, "s/1/u.ova.meta");
	assert_string_equal(rm->files[1].path, "s/1/u-disk0.vmdk");
	assert_true(rm->files[1].size == 10);
	assert_string_equal(rm->files[3].path, "s/1/u.ovf");
	ova_result_free(rm);
	assert_true(exists(f, "s/1/u-x-disk0.vmdk.part"));
	assert_true(exists(f, "s/1/keep.txt"));
	assert_false(exists(f, "s/1/u~member.vmdk.part"));
	assert_int_equal(ova_detect(f->s, "s/1/u", &fm, &e), 0);
	assert_int_equal(fm, OVA_FMT_ABSENT);
	/* Absent is success, with nothing removed. */
	rm = NULL;
	assert_int_equal(ova_delete(f->s, "s/1/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 0);
	ova_result_free(rm);
	assert_int_equal(ova_delete(f->s, "nodir/u", NULL, &e), 0);
	/* The directory goes when the object was its last content. */
	res = write_object(f, "s/2/v", "v", &d0, 1, &d1, 1);
	ova_result_free(res);
	free(d0);
	free(d1);
	assert_int_equal(ova_delete(f->s, "s/2/v.ova", NULL, &e), 0);
	assert_int_equal(count_dir(f, "s/2"), -1);
	assert_int_equal(count_dir(f, "s"), 1);
	/* Debris only: ova_debris_remove cleans an interrupted write. */
	put(f, "s/3/w-disk0.vmdk.part", "x", 1);
	put(f, "s/3/w.ova.meta.part", "x", 1);
	put(f, "s/3/w.ovf.part", "x", 1);
	assert_int_equal(ova_debris_remove(f->s, "s/3/w", &e), 3);
	assert_int_equal(count_dir(f, "s/3"), 0);
}

/* Sets rel's modification time an hour back: debris by age alone. */
static void
age(struct fx *f, const char *rel)
{
	char path[512];
	struct timespec ts[2];

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts[0]), 0);
	ts[0].tv_sec -= 3600;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/*
 * A temporary that a live writer holds is not debris, however old it looks
 * (an export waiting on vCenter writes nothing for minutes): neither debris
 * removal (the sweeper's) nor a delete takes it, and the writer commits.
 * The same file left by a dead attempt goes.
 */
static void
test_debris_spares_live_writer(void **state)
{
	struct fx *f = *state;
	struct ova_writer *w = NULL, *w2 = NULL;
	struct ova_result *rm = NULL, *res = NULL;
	struct sw_sink s0, s1;
	struct sw_err e;
	const char *names[1] = { "live-disk0.vmdk" };
	size_t sizes[1] = { 3 };
	char *ovf = mk_ovf(names, sizes, 1);

	assert_int_equal(ova_writer_begin(f->s, "t/live", 0, &w, &e), 0);
	assert_int_equal(ova_writer_disk(w, NULL, &s0, &e), 0);
	assert_int_equal(s0.write(s0.ud, "abc", 3, &e), 0);
	age(f, "t/live-disk0.vmdk.part");
	assert_int_equal(ova_debris_remove(f->s, "t/live", &e), 0);
	assert_true(exists(f, "t/live-disk0.vmdk.part"));
	assert_int_equal(ova_delete(f->s, "t/live", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 0);
	ova_result_free(rm);
	assert_true(exists(f, "t/live-disk0.vmdk.part"));
	/* A second attempt beside it cannot take the object's temporaries over. */
	assert_int_equal(ova_writer_begin(f->s, "t/live", 0, &w2, &e), 0);
	assert_true(ova_writer_disk(w2, NULL, &s1, &e) < 0);
	ova_writer_free(w2);
	assert_true(exists(f, "t/live-disk0.vmdk.part"));
	assert_int_equal(ova_writer_ovf(w, NULL, ovf, strlen(ovf), &e), 0);
	assert_int_equal(ova_writer_commit(w, &res, &e), 0);
	ova_result_free(res);
	ova_writer_free(w);
	assert_true(exists(f, "t/live-disk0.vmdk"));
	assert_true(exists(f, "t/live.ova.meta"));
	/* The writer is gone: what it would have left is debris again. */
	put(f, "t/dead-disk0.vmdk.part", "x", 1);
	put(f, "t/dead.ovf.part", "x", 1);
	assert_int_equal(ova_debris_remove(f->s, "t/dead", &e), 2);
	assert_false(exists(f, "t/dead-disk0.vmdk.part"));
	free(ovf);
}

static void
test_delete_legacy_and_corrupt(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;

	put(f, "l/x.ova", "not even a tar", 14);
	assert_int_equal(ova_delete(f->s, "l/x", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 1);
	assert_string_equal(rm->files[0].path, "l/x.ova");
	assert_int_equal(rm->format, OVA_FMT_OVA);
	ova_result_free(rm);
	/*
	 * A meta that does not parse: its files cannot be told from it, so
	 * nothing goes (guessing default names would orphan the others);
	 * CloudStack's snapshot rule removes them by name.
	 */
	put(f, "c/y.ova.meta", "version=1.0\nnumDisks=x\n", 23);
	put(f, "c/y.ovf", "<x/>", 4);
	put(f, "c/y-disk0.vmdk", "d", 1);
	put(f, "c/y-vendor.vmdk", "d", 1);
	put(f, "c/other.vmdk", "d", 1);
	rm = NULL;
	assert_int_equal(ova_delete(f->s, "c/y", &rm, &e), SW_EFORMAT);
	assert_null(rm);
	assert_int_equal(count_dir(f, "c"), 5);
	assert_int_equal(ova_delete_snapshot(f->s, "c/y", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 4);
	ova_result_free(rm);
	assert_true(exists(f, "c/other.vmdk"));
	assert_int_equal(count_dir(f, "c"), 1);
}

static void
test_confinement(void **state)
{
	struct fx *f = *state;
	struct ova_writer *w = NULL;
	struct ova_info *in = NULL;
	struct sw_err e;
	char path[512], outside[600];
	const char *names[1] = { "z-disk0.vmdk" };
	size_t sizes[1] = { 4 };
	char *ovf = mk_ovf(names, sizes, 1);
	enum ova_format fm;

	/* A directory symlinked out of the store. */
	snprintf(outside, sizeof(outside), "%s-outside", f->root);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(path, sizeof(path), "%s/evil", f->root);
	assert_int_equal(symlink(outside, path), 0);
	assert_int_equal(ova_writer_begin(f->s, "evil/z", 0, &w, &e), SW_EPATH);
	assert_int_equal(ova_detect(f->s, "evil/z", &fm, &e), SW_EPATH);
	assert_int_equal(ova_delete(f->s, "evil/z", NULL, &e), SW_EPATH);
	/* A disk file that is a symlink to a file outside. */
	put(f, "q/z.ovf", ovf, strlen(ovf));
	{
		static const char meta[] = "version=1\novf=z.ovf\nnumDisks=1\n"
		    "disk1.name=z-disk0.vmdk\ndisk1.size=4\n";

		put(f, "q/z.ova.meta", meta, sizeof(meta) - 1);
	}
	snprintf(path, sizeof(path), "%s/q/z-disk0.vmdk", f->root);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_true(ova_inspect(f->s, "q/z", &in, &e) < 0);
	assert_null(in);
	{
		struct ova_reader *r = NULL;

		assert_true(ova_reader_open_disk(f->s, "q/z", 0, &r, &e) < 0);
		assert_null(r);
	}
	/* Deleting removes the link itself, never its target. */
	assert_int_equal(ova_delete(f->s, "q/z", NULL, &e), 0);
	assert_int_equal(access("/etc/hostname", F_OK), 0);
	assert_false(exists(f, "q/z-disk0.vmdk"));
	(void)rmdir(outside);
	free(ovf);
}

static uint64_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void
test_pack_index_reader(void **state)
{
	struct fx *f = *state;
	unsigned char *d0, *d1, *buf;
	struct ova_result *res;
	struct ova_tar_index *t = NULL;
	struct ova_reader *r = NULL;
	struct sw_err e;
	uint64_t size = 0;
	char path[512];
	int fd, dfd;

	res = write_object(f, "p/u", "u", &d0, 70000, &d1, 513);
	ova_result_free(res);
	dfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(ova_pack_at(f->s, "p/u", dfd, "extract/u.ova", 0, &size, &e), 0);
	close(dfd);
	snprintf(path, sizeof(path), "%s/extract/u.ova", f->root);
	assert_true(file_size(path) == size);
	assert_int_equal(count_dir(f, "extract"), 1); /* no temporary left */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ova_tar_index_fd(fd, &t, &e), 0);
	assert_int_equal(t->n, 3);
	/* OVF first, then the disks in meta order. */
	assert_string_equal(t->members[0].name, "u.ovf");
	assert_string_equal(t->members[1].name, "u-disk0.vmdk");
	assert_string_equal(t->members[2].name, "u-disk1.vmdk");
	assert_true(t->members[1].size == 70000);
	buf = malloc(70000);
	assert_non_null(buf);
	assert_int_equal(sw_pread_full(fd, buf, 70000, (off_t)t->members[1].offset), 70000);
	assert_memory_equal(buf, d0, 70000);
	assert_int_equal(sw_pread_full(fd, buf, 513, (off_t)t->members[2].offset), 513);
	assert_memory_equal(buf, d1, 513);
	assert_ptr_equal(ova_tar_find(t, "u-disk1.vmdk"), &t->members[2]);
	assert_null(ova_tar_find(t, "nope"));
	ova_tar_index_free(t);
	close(fd);
	/* The packed OVA placed as a legacy object: detected, inspected, read by offset. */
	{
		int in = open(path, O_RDONLY | O_CLOEXEC);
		struct ova_info *info = NULL;
		unsigned char *all;
		struct sw_source src;
		size_t got = 0;
		ssize_t n;
		enum ova_format fm;

		all = malloc(size);
		assert_non_null(all);
		assert_int_equal(sw_read_full(in, all, size), (ssize_t)size);
		close(in);
		put(f, "legacy/l.ova", all, size);
		free(all);
		assert_int_equal(ova_detect(f->s, "legacy/l", &fm, &e), 0);
		assert_int_equal(fm, OVA_FMT_OVA);
		assert_int_equal(ova_inspect(f->s, "legacy/l", &info, &e), 0);
		assert_int_equal(info->format, OVA_FMT_OVA);
		assert_int_equal(info->ndisks, 2);
		assert_string_equal(info->ovf_name, "u.ovf");
		assert_true(info->virtual_size == 2ULL << 30);
		assert_int_equal(info->nfiles, 1);
		assert_string_equal(info->files[0].path, "legacy/l.ova");
		ova_info_free(info);
		assert_int_equal(ova_verify(f->s, "legacy/l", 0, &e), 0);
		assert_int_equal(ova_reader_open_disk(f->s, "legacy/l", 0, &r, &e), 0);
		assert_true(ova_reader_size(r) == 70000);
		src = ova_reader_source(r);
		while ((n = src.read(src.ud, buf + got, 7000 < 70000 - got ? 7000 : 70000 - got,
		    &e)) > 0)
			got += (size_t)n;
		assert_int_equal(n, 0);
		assert_int_equal(got, 70000);
		assert_memory_equal(buf, d0, 70000);
		ova_reader_close(r);
		r = NULL;
		assert_int_equal(ova_reader_open(f->s, "legacy/l", "u-disk1.vmdk", &r, &e), 0);
		src = ova_reader_source(r);
		assert_int_equal(src.read(src.ud, buf, 70000, &e), 513);
		assert_memory_equal(buf, d1, 513);
		assert_int_equal(src.read(src.ud, buf, 70000, &e), 0);
		ova_reader_close(r);
		assert_int_equal(ova_reader_open(f->s, "legacy/l", "nope", &r, &e), SW_ENOTFOUND);
		assert_int_equal(ova_reader_open_disk(f->s, "legacy/l", 2, &r, &e), SW_ENOTFOUND);
		/* Packing a legacy object reproduces it byte for byte. */
		dfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_int_equal(ova_pack_at(f->s, "legacy/l", dfd, "extract/l.ova", 0, &size, &e), 0);
		close(dfd);
		snprintf(path, sizeof(path), "%s/extract/l.ova", f->root);
		assert_true(file_size(path) == size);
	}
	/* New-format reader. */
	assert_int_equal(ova_reader_open(f->s, "p/u", "u-disk1.vmdk", &r, &e), 0);
	{
		struct sw_source src = ova_reader_source(r);
		uint64_t off = 99;

		assert_true(ova_reader_fd(r, &off) >= 0);
		assert_true(off == 0);
		assert_int_equal(src.read(src.ud, buf, 70000, &e), 513);
		assert_memory_equal(buf, d1, 513);
	}
	ova_reader_close(r);
	ova_reader_close(NULL);
	/* Absent objects. */
	assert_int_equal(ova_pack_fd(f->s, "p/none", 1, 0, NULL, &e), SW_ENOTFOUND);
	free(buf);
	free(d0);
	free(d1);
}

/* Builds an OVA in memory with libarchive (pax), members in the given order. */
struct mem_member {
	const char *name;
	const void *data;
	size_t len;
};

static unsigned char *
build_tar(const struct mem_member *m, size_t n, size_t *ret_len)
{
	struct archive *a = archive_write_new();
	size_t cap = 1 << 22, used = 0, i;
	unsigned char *out;

	for (i = 0; i < n; i++)
		cap += m[i].len + 2048;
	out = malloc(cap);
	assert_non_null(out);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		struct archive_entry *ent = archive_entry_new();

		archive_entry_set_pathname(ent, m[i].name);
		archive_entry_set_filetype(ent, AE_IFREG);
		archive_entry_set_perm(ent, 0644);
		archive_entry_set_size(ent, (la_int64_t)m[i].len);
		assert_int_equal(archive_write_header(a, ent), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, m[i].data, m[i].len), (la_ssize_t)m[i].len);
		archive_entry_free(ent);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*ret_len = used;
	return out;
}

struct memsrc {
	const unsigned char *p;
	size_t len, pos, chunk;
};

static ssize_t
memsrc_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct memsrc *m = ud;

	(void)e;
	if (n > m->chunk)
		n = m->chunk;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	memcpy(p, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* A source that delivers everything, then refuses at its end (a download whose checksum is wrong). */
static ssize_t
memsrc_read_refuse_at_end(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct memsrc *m = ud;

	if (m->pos == m->len)
		return sw_errf(e, SW_ECHECKSUM, "checksum of the download does not match");
	return memsrc_read(ud, p, n, e);
}

static int
unpack_mem(struct fx *f, const char *obj, const unsigned char *p, size_t len,
    struct ova_result **res, struct sw_err *e)
{
	struct memsrc m = { p, len, 0, 777 };
	struct sw_source src = { memsrc_read, &m };

	return ova_unpack(f->s, obj, &src, 0, res, e);
}

static void
test_unpack_manifest(void **state)
{
	struct fx *f = *state;
	const char *names[2] = { "centos-disk1.vmdk", "centos-disk2.vmdk" };
	unsigned char *d0 = pattern(200000, 5), *d1 = pattern(1000, 6), *ova;
	size_t sizes[2] = { 200000, 1000 }, len;
	char *ovf = mk_ovf(names, sizes, 2);
	char h0[OVA_SHA256_HEX], h1[41], hovf[OVA_SHA256_HEX], mf[1024];
	struct ova_result *res = NULL;
	struct ova_info *in = NULL;
	struct sw_err e;
	struct mem_member mm[5];

	sha256_hex(d0, 200000, h0);
	sha1_hex(d1, 1000, h1);
	sha256_hex(ovf, strlen(ovf), hovf);
	/* ovftool's layout: ovf, mf, disks; mixed digests; a .cert too. */
	snprintf(mf, sizeof(mf), "SHA256(centos.ovf)= %s\nSHA256(centos-disk1.vmdk)= %s\r\n"
	    "SHA1(centos-disk2.vmdk)= %s\n", hovf, h0, h1);
	mm[0] = (struct mem_member){ "centos.ovf", ovf, strlen(ovf) };
	mm[1] = (struct mem_member){ "centos.mf", mf, strlen(mf) };
	mm[2] = (struct mem_member){ "centos.cert", "cert", 4 };
	mm[3] = (struct mem_member){ "centos-disk1.vmdk", d0, 200000 };
	mm[4] = (struct mem_member){ "centos-disk2.vmdk", d1, 1000 };
	ova = build_tar(mm, 5, &len);
	if (unpack_mem(f, "template/tmpl/1/200/t", ova, len, &res, &e) != 0)
		fail_msg("unpack: %s", e.msg);
	/* Member names kept; the manifest and certificate not stored. */
	assert_int_equal(res->nfiles, 4);
	/* The files are named after the object, whatever the members were called. */
	assert_string_equal(res->files[0].path, "template/tmpl/1/200/t-disk0.vmdk");
	assert_string_equal(res->files[0].sha256, h0);
	assert_string_equal(res->files[1].path, "template/tmpl/1/200/t-disk1.vmdk");
	assert_string_equal(res->files[2].path, "template/tmpl/1/200/t.ovf");
	assert_string_equal(res->files[3].path, "template/tmpl/1/200/t.ova.meta");
	assert_int_equal(count_dir(f, "template/tmpl/1/200"), 4);
	ova_result_free(res);
	assert_int_equal(ova_inspect(f->s, "template/tmpl/1/200/t", &in, &e), 0);
	assert_string_equal(in->meta->ovf, "t.ovf");
	assert_string_equal(in->meta->disks[1].name, "t-disk1.vmdk");
	/* The OVF stored references the new names, and only them. */
	assert_int_equal(in->ovf->nfiles, 2);
	assert_string_equal(in->ovf->files[0].href, "t-disk0.vmdk");
	assert_string_equal(in->ovf->files[1].href, "t-disk1.vmdk");
	ova_info_free(in);
	assert_int_equal(ova_verify(f->s, "template/tmpl/1/200/t", 0, &e), 0);
	free(ova);
	/* One wrong digest: the whole unpack fails and leaves nothing. */
	{
		char bad[1024];

		memcpy(bad, mf, strlen(mf) + 1);
		bad[strlen(bad) - 2] ^= 1;
		mm[1] = (struct mem_member){ "centos.mf", bad, strlen(bad) };
		ova = build_tar(mm, 5, &len);
		res = (struct ova_result *)0x1;
		assert_int_equal(unpack_mem(f, "template/tmpl/1/201/t", ova, len, &res, &e),
		    SW_ECHECKSUM);
		assert_ptr_equal(res, (struct ova_result *)0x1);
		assert_non_null(strstr(e.msg, "centos-disk2.vmdk"));
		assert_int_equal(count_dir(f, "template/tmpl/1/201"), 0);
		free(ova);
	}
	/* A manifest naming a file the OVA lacks. */
	{
		char odd[256];

		snprintf(odd, sizeof(odd), "SHA1(ghost.vmdk)= %s\n", h1);
		mm[1] = (struct mem_member){ "centos.mf", odd, strlen(odd) };
		ova = build_tar(mm, 5, &len);
		assert_int_equal(unpack_mem(f, "template/tmpl/1/202/t", ova, len, &res, &e),
		    SW_EFORMAT);
		assert_int_equal(count_dir(f, "template/tmpl/1/202"), 0);
		free(ova);
	}
	/* A disk the OVF references is missing. */
	ova = build_tar((struct mem_member[]){ mm[0], mm[3] }, 2, &len);
	assert_int_equal(unpack_mem(f, "template/tmpl/1/203/t", ova, len, &res, &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "centos-disk2.vmdk"));
	assert_int_equal(count_dir(f, "template/tmpl/1/203"), 0);
	/* Truncated stream (cut inside the first disk): nothing left. */
	assert_int_equal(unpack_mem(f, "template/tmpl/1/204/t", ova, len / 2, &res, &e) < 0, 1);
	assert_int_equal(count_dir(f, "template/tmpl/1/204"), 0);
	free(ova);
	/* The OVF must come first. */
	ova = build_tar((struct mem_member[]){ mm[3], mm[0] }, 2, &len);
	assert_int_equal(unpack_mem(f, "template/tmpl/1/205/t", ova, len, &res, &e), SW_EFORMAT);
	free(ova);
	/* Not a tar at all / compressed. */
	assert_int_equal(unpack_mem(f, "template/tmpl/1/206/t",
	    (const unsigned char *)"\x1f\x8b\x08\x00garbage", 12, &res, &e), SW_EFORMAT);
	/*
	 * The source only refuses once its end is read: the unpack must still
	 * fail before the commit and leave nothing behind.
	 */
	ova = build_tar((struct mem_member[]){ mm[0], mm[3], mm[4] }, 3, &len);
	{
		struct memsrc m = { ova, len, 0, 4096 };
		struct sw_source src = { memsrc_read_refuse_at_end, &m };

		res = (struct ova_result *)0x1;
		assert_int_equal(ova_unpack(f->s, "template/tmpl/1/207/t", &src, 0, &res, &e),
		    SW_ECHECKSUM);
		assert_ptr_equal(res, (struct ova_result *)0x1);
		assert_int_equal(count_dir(f, "template/tmpl/1/207"), 0);
	}
	free(ova);
	/* Unpacking onto an existing object is refused. */
	ova = build_tar((struct mem_member[]){ mm[0], mm[3], mm[4] }, 3, &len);
	assert_int_equal(unpack_mem(f, "template/tmpl/1/200/t", ova, len, &res, &e), SW_EEXIST);
	free(ova);
	free(ovf);
	free(d0);
	free(d1);
}

static void
test_unpack_fd_and_copy(void **state)
{
	struct fx *f = *state;
	unsigned char *d0, *d1;
	struct ova_result *res = NULL;
	struct ova_store *dst = NULL;
	char root2[64], path[512];
	struct sw_err e;
	int dfd, fd;
	uint64_t size;

	res = write_object(f, "a/u", "u", &d0, 300000, &d1, 10);
	ova_result_free(res);
	dfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(ova_pack_at(f->s, "a/u", dfd, "x/u.ova", 0, &size, &e), 0);
	close(dfd);
	snprintf(path, sizeof(path), "%s/x/u.ova", f->root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	/* The install path may carry .ova: the files are named after v, not v.ova. */
	assert_int_equal(ova_unpack_fd(f->s, "b/v.ova", fd, 0, &res, &e), 0);
	close(fd);
	/* Named after the object: u-disk0.vmdk becomes v-disk0.vmdk, u.ovf v.ovf. */
	assert_string_equal(res->files[0].path, "b/v-disk0.vmdk");
	assert_string_equal(res->files[2].path, "b/v.ovf");
	assert_string_equal(res->files[3].path, "b/v.ova.meta");
	ova_result_free(res);
	assert_int_equal(ova_verify(f->s, "b/v", 0, &e), 0);
	/* Copy to another store, keeping the format and the meta bytes. */
	snprintf(root2, sizeof(root2), "/tmp/ovastore-test2.XXXXXX");
	assert_non_null(mkdtemp(root2));
	assert_int_equal(ova_store_open(root2, &dst, &e), 0);
	if (ova_copy(f->s, "a/u", dst, NULL, &res, &e) != 0)
		fail_msg("copy: %s", e.msg);
	assert_int_equal(res->nfiles, 4);
	assert_string_equal(res->files[3].path, "a/u.ova.meta");
	ova_result_free(res);
	assert_int_equal(ova_verify(dst, "a/u", 0, &e), 0);
	assert_int_equal(ova_copy(f->s, "a/u", dst, NULL, &res, &e), SW_EEXIST);
	/* Legacy objects stay legacy. */
	{
		enum ova_format fm;

		assert_int_equal(ova_pack_at(f->s, "a/u", ova_store_fd(f->s), "leg/l.ova", 0, NULL,
		    &e), 0);
		assert_int_equal(ova_copy(f->s, "leg/l", dst, "leg2/l", &res, &e), 0);
		assert_int_equal(res->format, OVA_FMT_OVA);
		assert_int_equal(res->nfiles, 1);
		ova_result_free(res);
		assert_int_equal(ova_detect(dst, "leg2/l", &fm, &e), 0);
		assert_int_equal(fm, OVA_FMT_OVA);
	}
	ova_store_close(dst);
	(void)nftw(root2, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(d0);
	free(d1);
}

static void
test_writer_extra_keys_and_sparse(void **state)
{
	struct fx *f = *state;
	static unsigned char data[300000];
	const char *names[1] = { "e-disk0.vmdk" };
	size_t sizes[1] = { sizeof(data) };
	char *ovf = mk_ovf(names, sizes, 1);
	struct ova_writer *w = NULL;
	struct ova_info *in = NULL;
	struct sw_sink s0;
	struct sw_err e;
	char path[512];
	struct stat st;

	/* Zeros except a marker in the middle and one at the very end. */
	memset(data, 0, sizeof(data));
	memcpy(data + 150001, "MID", 3);
	data[sizeof(data) - 1] = 'Z';
	assert_int_equal(ova_writer_begin(f->s, "e/e", OVA_WRITER_SPARSE, &w, &e), 0);
	assert_int_equal(ova_writer_meta_set(w, "template.uuid", "1234", &e), 0);
	assert_int_equal(ova_writer_meta_set(w, "numDisks", "9", &e), -EINVAL);
	assert_int_equal(ova_writer_meta_set(w, "disk1.size", "9", &e), -EINVAL);
	assert_int_equal(ova_writer_disk(w, NULL, &s0, &e), 0);
	/* Odd block sizes so pieces straddle the 64 KiB boundaries. */
	assert_int_equal(s0.write(s0.ud, data, 70001, &e), 0);
	assert_int_equal(s0.write(s0.ud, data + 70001, 200000, &e), 0);
	assert_int_equal(s0.write(s0.ud, data + 270001, sizeof(data) - 270001, &e), 0);
	assert_int_equal(ova_writer_ovf(w, NULL, ovf, strlen(ovf), &e), 0);
	assert_int_equal(ova_writer_commit(w, NULL, &e), 0);
	ova_writer_free(w);
	assert_int_equal(ova_inspect(f->s, "e/e", &in, &e), 0);
	assert_string_equal(ova_meta_get(in->meta, "template.uuid"), "1234");
	/* The extra key comes after CloudStack's keys. */
	assert_string_equal(in->meta->keys[in->meta->nkeys - 1].key, "template.uuid");
	ova_info_free(in);
	/* The content is exact (the digest was taken over every byte) and holes were made. */
	assert_int_equal(ova_verify(f->s, "e/e", 0, &e), 0);
	snprintf(path, sizeof(path), "%s/e/e-disk0.vmdk", f->root);
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_size == sizeof(data));
	assert_true((uint64_t)st.st_blocks * 512 < sizeof(data));
	{
		unsigned char back[sizeof(data)];
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		assert_int_equal(sw_read_full(fd, back, sizeof(back)), (ssize_t)sizeof(back));
		assert_memory_equal(back, data, sizeof(data));
		close(fd);
	}
	free(ovf);
}

static void
test_commit_files(void **state)
{
	struct fx *f = *state;
	const char *names[1] = { "c-disk0.vmdk" };
	size_t sizes[1] = { 5 };
	char *ovf = mk_ovf(names, sizes, 1);
	struct ova_result *res = NULL;
	struct sw_err e;

	put(f, "cm/c.ovf", ovf, strlen(ovf));
	assert_int_equal(ova_commit_files(f->s, "cm/c", 0, &res, &e), -ENOENT);
	put(f, "cm/c-disk0.vmdk", "12345", 5);
	assert_int_equal(ova_commit_files(f->s, "cm/c", 0, &res, &e), 0);
	assert_int_equal(res->nfiles, 3);
	assert_string_equal(res->files[2].path, "cm/c.ova.meta");
	ova_result_free(res);
	assert_int_equal(ova_verify(f->s, "cm/c", 0, &e), 0);
	assert_int_equal(ova_commit_files(f->s, "cm/c", 0, &res, &e), SW_EEXIST);
	free(ovf);
}

/* A source that fails after fail_at bytes (a download cut off, a read error). */
static ssize_t
memsrc_read_fail_at(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct memsrc *m = ud;

	if (m->pos >= m->chunk)
		return sw_errf(e, -EIO, "source failed after %zu bytes", m->pos);
	if (n > m->chunk - m->pos)
		n = m->chunk - m->pos;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	memcpy(p, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/*
 * Unpack of a disk of several MiB (its digest computed on the writer's
 * helper thread, the ring wrapping many times): the digest recorded equals
 * a one-shot digest; a manifest that disagrees, or a source that fails in
 * the middle of the disk, leaves nothing behind.
 */
static void
test_unpack_large_digest(void **state)
{
	struct fx *f = *state;
	const char *names[1] = { "big-disk1.vmdk" };
	size_t n0 = 7 * 1024 * 1024 + 4097, sizes[1] = { n0 }, len;
	unsigned char *d0 = pattern(n0, 9), *ova;
	char *ovf = mk_ovf(names, sizes, 1);
	char h0[OVA_SHA256_HEX], hovf[OVA_SHA256_HEX], mf[512];
	struct ova_result *res = NULL;
	struct mem_member mm[3];
	struct sw_err e;
	size_t cut;

	sha256_hex(d0, n0, h0);
	sha256_hex(ovf, strlen(ovf), hovf);
	snprintf(mf, sizeof(mf), "SHA256(big.ovf)= %s\nSHA256(big-disk1.vmdk)= %s\n", hovf, h0);
	mm[0] = (struct mem_member){ "big.ovf", ovf, strlen(ovf) };
	mm[1] = (struct mem_member){ "big.mf", mf, strlen(mf) };
	mm[2] = (struct mem_member){ "big-disk1.vmdk", d0, n0 };
	ova = build_tar(mm, 3, &len);
	if (unpack_mem(f, "l/a/t", ova, len, &res, &e) != 0)
		fail_msg("unpack: %s", e.msg);
	assert_string_equal(res->files[0].sha256, h0);
	ova_result_free(res);
	assert_int_equal(ova_verify(f->s, "l/a/t", 0, &e), 0);
	free(ova);
	/* The manifest names another digest for the disk. */
	mf[strlen(mf) - 2] ^= 1;
	mm[1] = (struct mem_member){ "big.mf", mf, strlen(mf) };
	ova = build_tar(mm, 3, &len);
	assert_int_equal(unpack_mem(f, "l/b/t", ova, len, &res, &e), SW_ECHECKSUM);
	assert_int_equal(count_dir(f, "l/b"), 0);
	/* The source fails part of the way through the disk, at several points. */
	for (cut = 3 * 1024 * 1024 + 1; cut < len; cut += 2 * 1024 * 1024 + 12345) {
		struct memsrc m = { ova, len, 0, cut };
		struct sw_source src = { memsrc_read_fail_at, &m };

		assert_int_equal(ova_unpack(f->s, "l/c/t", &src, 0, &res, &e), -EIO);
		assert_int_equal(count_dir(f, "l/c"), 0);
	}
	free(ova);
	free(ovf);
	free(d0);
}

/*
 * ova_copy of disks larger than one read buffer (the data moved by
 * copy_file_range, the digest computed on a helper thread from the source):
 * the copy's digests are those of the data; a source whose bytes no longer
 * match its recorded sha256 (same size) is refused and leaves nothing.
 */
static void
test_copy_large_digest(void **state)
{
	struct fx *f = *state;
	unsigned char *d0, *d1;
	struct ova_result *res = NULL;
	struct ova_store *dst = NULL;
	char root2[64], sha0[OVA_SHA256_HEX], sha1d[OVA_SHA256_HEX], path[512];
	struct sw_err e;
	enum ova_format fm = OVA_FMT_OVF;
	size_t n0 = 5 * 1024 * 1024 + 333, n1 = 1024 * 1024 + 1;
	int fd;

	res = write_object(f, "big/u", "u", &d0, n0, &d1, n1);
	ova_result_free(res);
	sha256_hex(d0, n0, sha0);
	sha256_hex(d1, n1, sha1d);
	snprintf(root2, sizeof(root2), "/tmp/ovastore-test3.XXXXXX");
	assert_non_null(mkdtemp(root2));
	assert_int_equal(ova_store_open(root2, &dst, &e), 0);
	if (ova_copy(f->s, "big/u", dst, NULL, &res, &e) != 0)
		fail_msg("copy: %s", e.msg);
	assert_string_equal(res->files[0].sha256, sha0);
	assert_string_equal(res->files[1].sha256, sha1d);
	ova_result_free(res);
	assert_int_equal(ova_verify(dst, "big/u", 0, &e), 0);
	/* One byte changed in the middle of the source's first disk. */
	snprintf(path, sizeof(path), "%s/big/u-disk0.vmdk", f->root);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	d0[3 * 1024 * 1024] ^= 0x40;
	assert_int_equal(pwrite(fd, d0 + 3 * 1024 * 1024, 1, 3 * 1024 * 1024), 1);
	close(fd);
	assert_int_equal(ova_copy(f->s, "big/u", dst, "big2/u", &res, &e), SW_ECHECKSUM);
	assert_int_equal(ova_detect(dst, "big2/u", &fm, &e), 0);
	assert_int_equal(fm, OVA_FMT_ABSENT);
	{
		char dpath[512];
		DIR *d;
		struct dirent *de;
		int n = 0;

		snprintf(dpath, sizeof(dpath), "%s/big2", root2);
		if ((d = opendir(dpath)) != NULL) {
			while ((de = readdir(d)) != NULL)
				if (de->d_name[0] != '.')
					n++;
			closedir(d);
		}
		assert_int_equal(n, 0);
	}
	ova_store_close(dst);
	(void)nftw(root2, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(d0);
	free(d1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_split),
		cmocka_unit_test_setup_teardown(test_writer_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_abort_and_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_debris, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debris_spares_live_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_legacy_and_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_large_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_large_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_confinement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_index_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_fd_and_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_extra_keys_and_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_files, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
