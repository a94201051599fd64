/*
 * Unit tests for ovastore's deletes: ova_delete (one object, as its meta
 * says), ova_delete_template (CloudStack's DeleteTemplate: the template
 * directory) and ova_delete_snapshot (CloudStack's DeleteSnapshot: the
 * files of DIR whose name holds NAME).  What CloudStack itself leaves
 * (OVAProcessor's untarred files beside a legacy .ova, an extract's
 * NAME.ova), links planted inside the directory pointing outside the store
 * (their targets must survive), broken and symlinked metas (the files must
 * go anyway, or nothing), subdirectories, legacy journals, bounds.
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
#include "ovastore/ovastore.h"

#define TD "template/tmpl/2/201"
#define SD "snapshots/2/13/u"

struct fx {
	char root[64];
	char outside[80];
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

/* Writes a file at an absolute path. */
static void
write_abs(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(sw_write_all(fd, p, n), 0);
	close(fd);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char p[160];

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/ovastore-del.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	/* Beside the store, never under it: what links planted in it point at. */
	snprintf(f->outside, sizeof(f->outside), "%s-outside", f->root);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/secret", f->outside);
	write_abs(p, "secret", 6);
	snprintf(p, sizeof(p), "%s/dir", f->outside);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/dir/inner", f->outside);
	write_abs(p, "inner", 5);
	assert_int_equal(ova_store_open(f->root, &f->s, NULL), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	ova_store_close(f->s);
	(void)nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	(void)nftw(f->outside, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Makes the directories of rel (below the root) up to its last component. */
static void
mkparents(struct fx *f, const char *rel, char *path, size_t pathsz)
{
	char *slash;

	snprintf(path, pathsz, "%s/%s", f->root, rel);
	for (slash = strchr(path + strlen(f->root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		(void)mkdir(path, 0755);
		*slash = '/';
	}
}

static void
put(struct fx *f, const char *rel, const char *text)
{
	char path[512];

	mkparents(f, rel, path, sizeof(path));
	write_abs(path, text, strlen(text));
}

/* A symbolic link rel -> target (absolute, or relative to the link). */
static void
put_link(struct fx *f, const char *rel, const char *target)
{
	char path[512];

	mkparents(f, rel, path, sizeof(path));
	assert_int_equal(symlink(target, path), 0);
}

static int
exists(struct fx *f, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	return lstat(path, &st) == 0;
}

/* Entries of a directory below the root (-1 when it does not exist). */
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

/* The things outside the store are as setup made them. */
static void
assert_outside_intact(struct fx *f)
{
	char p[160], buf[16];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/secret", f->outside);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "secret", 6);
	snprintf(p, sizeof(p), "%s/dir/inner", f->outside);
	assert_int_equal(access(p, F_OK), 0);
}

/* The removed list is exactly want[] (NULL-terminated), in that order. */
static void
assert_removed(const struct ova_result *r, const char *const *want)
{
	size_t i;

	for (i = 0; want[i] != NULL; i++) {
		if (i >= r->nfiles)
			fail_msg("removed %zu files, expected %s next", r->nfiles, want[i]);
		if (strcmp(r->files[i].path, want[i]) != 0)
			fail_msg("removed[%zu] is %s, expected %s", i, r->files[i].path, want[i]);
	}
	if (r->nfiles != i)
		fail_msg("removed %zu files, expected %zu (extra: %s)", r->nfiles, i,
		    r->files[i].path);
}

static const char META_U[] = "ova.filename=u.ova\nversion=1.0\novf=u.ovf\nnumDisks=1\n"
    "disk1.name=u-disk0.vmdk\ndisk1.size=4\n";

/* --------------------------------------------------------------- templates */

static void
test_template_legacy_leftovers(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	static const char *const want[] = {
		TD "/template.properties", TD "/legacy.ova",
		/* What CloudStack's OVAProcessor untarred beside it (member names). */
		TD "/vendor-disk1.vmdk", TD "/vendor.mf", TD "/vendor.ovf", NULL,
	};

	put(f, TD "/template.properties", "filename=legacy.ova\nova=true\n");
	put(f, TD "/legacy.ova", "not even a tar");
	put(f, TD "/vendor.ovf", "<x/>");
	put(f, TD "/vendor-disk1.vmdk", "disk");
	put(f, TD "/vendor.mf", "SHA1(vendor.ovf)= 00\n");
	assert_int_equal(ova_delete_template(f->s, TD "/legacy.ova", &rm, &e), 0);
	assert_int_equal(rm->format, OVA_FMT_OVA);
	assert_string_equal(rm->install_path, TD "/legacy");
	assert_removed(rm, want);
	assert_true(rm->files[2].size == 4);
	assert_true(rm->physical_size > 0);
	ova_result_free(rm);
	/* CloudStack removes the directory; its parent stays. */
	assert_int_equal(count_dir(f, TD), -1);
	assert_int_equal(count_dir(f, "template/tmpl/2"), 0);
	/* Again: nothing there, success with nothing removed. */
	rm = NULL;
	assert_int_equal(ova_delete_template(f->s, TD "/legacy", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 0);
	assert_int_equal(rm->format, OVA_FMT_ABSENT);
	ova_result_free(rm);
}

static void
test_template_extract_leftovers(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	static const char *const want[] = {
		TD "/template.properties", TD "/u.ova.meta", TD "/u.ova",
		TD "/.template.properties.0123abcd.tmp", TD "/u-disk0.vmdk",
		TD "/u-disk0.vmdk.part", TD "/u.ovf", NULL,
	};

	put(f, TD "/u.ova.meta", META_U);
	put(f, TD "/u.ovf", "<x/>");
	put(f, TD "/u-disk0.vmdk", "disk");
	/* CloudStack's own extract left the archive of the object beside it. */
	put(f, TD "/u.ova", "tar");
	put(f, TD "/template.properties", "uniquename=u\n");
	put(f, TD "/.template.properties.0123abcd.tmp", "x");
	put(f, TD "/u-disk0.vmdk.part", "x");
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), 0);
	assert_int_equal(rm->format, OVA_FMT_OVF);
	assert_removed(rm, want);
	ova_result_free(rm);
	assert_int_equal(count_dir(f, TD), -1);
}

/* Two objects in one template directory: CloudStack removes the directory, both go. */
static void
test_template_whole_directory(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;

	put(f, TD "/u.ova.meta", META_U);
	put(f, TD "/u.ovf", "<x/>");
	put(f, TD "/u-disk0.vmdk", "disk");
	put(f, TD "/newer.ova.meta", "ovf=newer.ovf\n");
	put(f, TD "/newer.ovf", "<x/>");
	put(f, TD "/template.properties", "uniquename=newer\n");
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 6);
	assert_string_equal(rm->files[0].path, TD "/template.properties");
	assert_string_equal(rm->files[1].path, TD "/newer.ova.meta");
	assert_string_equal(rm->files[2].path, TD "/u.ova.meta");
	ova_result_free(rm);
	assert_int_equal(count_dir(f, TD), -1);
}

/* ------------------------------------------------------------------- links */

static void
test_links_inside_pointing_outside(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	char target[160], dtarget[160];
	size_t i;

	snprintf(target, sizeof(target), "%s/secret", f->outside);
	snprintf(dtarget, sizeof(dtarget), "%s/dir", f->outside);
	/* A template whose every file is a link out of the store, and a link to a directory. */
	put_link(f, TD "/template.properties", target);
	put_link(f, TD "/u.ova.meta", target);
	put_link(f, TD "/u.ovf", target);
	put_link(f, TD "/u-disk0.vmdk", target);
	put_link(f, TD "/vendor.ova", target);
	put_link(f, TD "/escape", dtarget);
	put_link(f, TD "/up", "../../../..");
	put_link(f, TD "/dangling", "/nonexistent/x");
	{
		char p[512];

		/* A FIFO is unlinked, never opened (which would block). */
		snprintf(p, sizeof(p), "%s/" TD "/pipe", f->root);
		assert_int_equal(mkfifo(p, 0644), 0);
	}
	alarm(60);
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), 0);
	alarm(0);
	assert_int_equal(rm->nfiles, 9);
	for (i = 0; i < rm->nfiles; i++)
		assert_true(rm->files[i].size == 0);   /* links: nothing of theirs is counted */
	ova_result_free(rm);
	assert_int_equal(count_dir(f, TD), -1);
	assert_outside_intact(f);
	assert_true(count_dir(f, "template") == 1);

	/* The same in a snapshot's directory. */
	put_link(f, SD "/u.ova.meta", target);
	put_link(f, SD "/u.ovf", target);
	put_link(f, SD "/u-disk0.vmdk", dtarget);
	rm = NULL;
	assert_int_equal(ova_delete_snapshot(f->s, SD "/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 3);
	assert_string_equal(rm->files[0].path, SD "/u.ova.meta");
	ova_result_free(rm);
	assert_int_equal(count_dir(f, SD), -1);
	assert_outside_intact(f);

	/* ova_delete of an object whose disk is a link: the link goes, never its target. */
	put(f, SD "/u.ova.meta", META_U);
	put(f, SD "/u.ovf", "<x/>");
	put_link(f, SD "/u-disk0.vmdk", target);
	assert_int_equal(ova_delete(f->s, SD "/u", NULL, &e), 0);
	assert_int_equal(count_dir(f, SD), -1);
	assert_outside_intact(f);
}

/* The directory itself a link out of the store: refused by every rule. */
static void
test_directory_link_refused(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	char dtarget[160];

	snprintf(dtarget, sizeof(dtarget), "%s/dir", f->outside);
	put_link(f, "template/tmpl/2/202", dtarget);
	put_link(f, "snapshots/2/13/inner", dtarget);
	assert_int_equal(ova_delete_template(f->s, "template/tmpl/2/202/inner", &rm, &e),
	    SW_EPATH);
	assert_int_equal(ova_delete_snapshot(f->s, "snapshots/2/13/inner/inner", &rm, &e),
	    SW_EPATH);
	assert_int_equal(ova_delete(f->s, "snapshots/2/13/inner/inner", &rm, &e), SW_EPATH);
	assert_null(rm);
	assert_outside_intact(f);
}

/* ----------------------------------------------------------- broken metas */

struct bad_meta {
	const char *what;
	const char *text;          /* NULL: a 10 MB line; "" with link: a symlinked meta */
	int link;
};

static const struct bad_meta BAD[] = {
	{ "numDisks=0", "version=1.0\novf=u.ovf\nnumDisks=0\n", 0 },
	{ "disk1.name=../x", "version=1.0\novf=u.ovf\nnumDisks=1\ndisk1.name=../x\n"
	    "disk1.size=4\n", 0 },
	{ "a 10 MB line", NULL, 0 },
	{ "a symlinked meta", "", 1 },
	{ "ovf=/etc/passwd", "version=1.0\novf=/etc/passwd\nnumDisks=1\n"
	    "disk1.name=u-disk0.vmdk\ndisk1.size=4\n", 0 },
	{ "garbage", "\xff\xfe\x00garbage", 0 },
};

/*
 * Plants object u in dir with meta m: its OVF, a disk of the default name,
 * and a disk named as a vendor's OVA named it (which no default guesses).
 */
static void
plant_bad(struct fx *f, const char *dir, const struct bad_meta *m)
{
	char rel[256], path[512], target[160];

	snprintf(rel, sizeof(rel), "%s/u.ovf", dir);
	put(f, rel, "<x/>");
	snprintf(rel, sizeof(rel), "%s/u-disk0.vmdk", dir);
	put(f, rel, "disk");
	snprintf(rel, sizeof(rel), "%s/u-vendor-disk1.vmdk", dir);
	put(f, rel, "disk");
	snprintf(rel, sizeof(rel), "%s/u.ova.meta", dir);
	if (m->link) {
		/* A well-formed meta outside, naming the files: not to be trusted either. */
		snprintf(target, sizeof(target), "%s/u.ova.meta", f->outside);
		write_abs(target, META_U, sizeof(META_U) - 1);
		put_link(f, rel, target);
	} else if (m->text == NULL) {
		struct sw_buf b = SW_BUF_INIT(16 << 20);
		char chunk[1024];
		size_t i;

		memset(chunk, 'a', sizeof(chunk));
		assert_int_equal(sw_buf_addstr(&b, "version=1.0\novf=u.ovf\nnumDisks=1\n"
		    "disk1.name=u-disk0.vmdk\ndisk1.size=4\nx="), 0);
		for (i = 0; i < 10 * 1024; i++)
			assert_int_equal(sw_buf_add(&b, chunk, sizeof(chunk)), 0);
		assert_int_equal(sw_buf_addstr(&b, "\n"), 0);
		mkparents(f, rel, path, sizeof(path));
		write_abs(path, b.ptr, b.len);
		sw_buf_free(&b);
	} else {
		mkparents(f, rel, path, sizeof(path));
		write_abs(path, m->text, strlen(m->text) + (m->text[0] == '\xff' ? 4 : 0));
	}
}

static void
test_broken_metas(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	size_t i;
	int r;

	for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
		static const char *const want_s[] = {
			SD "/u.ova.meta", SD "/u-disk0.vmdk", SD "/u-vendor-disk1.vmdk",
			SD "/u.ovf", NULL,
		};
		static const char *const want_t[] = {
			TD "/u.ova.meta", TD "/u-disk0.vmdk", TD "/u-vendor-disk1.vmdk",
			TD "/u.ovf", NULL,
		};

		print_message("meta: %s\n", BAD[i].what);
		/* One object's delete cannot tell the files: refused, nothing removed. */
		plant_bad(f, SD, &BAD[i]);
		rm = NULL;
		r = ova_delete(f->s, SD "/u", &rm, &e);
		if (r >= 0)
			fail_msg("%s: ova_delete succeeded", BAD[i].what);
		assert_true(r == SW_EFORMAT || r == SW_ETOOBIG || r == SW_EPATH);
		assert_non_null(strstr(e.msg, "nothing removed"));
		assert_null(rm);
		assert_int_equal(count_dir(f, SD), 4);
		/* CloudStack's snapshot glob finds every file without the meta. */
		assert_int_equal(ova_delete_snapshot(f->s, SD "/u", &rm, &e), 0);
		assert_int_equal(rm->format, OVA_FMT_OVF);
		assert_removed(rm, want_s);
		ova_result_free(rm);
		assert_int_equal(count_dir(f, SD), -1);
		/* The template directory likewise. */
		plant_bad(f, TD, &BAD[i]);
		rm = NULL;
		assert_int_equal(ova_delete_template(f->s, TD "/u.ova", &rm, &e), 0);
		assert_removed(rm, want_t);
		ova_result_free(rm);
		assert_int_equal(count_dir(f, TD), -1);
		assert_outside_intact(f);
		if (BAD[i].link) {
			char p[160];

			/* The link's target, outside, is untouched. */
			snprintf(p, sizeof(p), "%s/u.ova.meta", f->outside);
			assert_int_equal(access(p, F_OK), 0);
		}
	}
}

/* ------------------------------------------------------------- snapshots */

static void
test_snapshot_glob(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	static const char *const want[] = {
		"snapshots/2/7/db92a8e4.ova", "snapshots/2/7/db92a8e4.ovf",
		"snapshots/2/7/x-db92a8e4-y", NULL,
	};

	/* Flat legacy layout: several snapshots of a volume in one directory. */
	put(f, "snapshots/2/7/db92a8e4.ova", "tar");
	put(f, "snapshots/2/7/db92a8e4.ovf", "<x/>");   /* untarred beside it */
	put(f, "snapshots/2/7/x-db92a8e4-y", "CloudStack's glob is *NAME*");
	put(f, "snapshots/2/7/5a1b2c3d.ova", "tar");
	put(f, "snapshots/2/7/5a1b2c3d/5a1b2c3d.ova.meta", META_U);
	assert_int_equal(ova_delete_snapshot(f->s, "snapshots/2/7/db92a8e4", &rm, &e), 0);
	assert_int_equal(rm->format, OVA_FMT_OVA);
	assert_removed(rm, want);
	ova_result_free(rm);
	assert_true(exists(f, "snapshots/2/7/5a1b2c3d.ova"));
	assert_true(exists(f, "snapshots/2/7/5a1b2c3d/5a1b2c3d.ova.meta"));
	/* The glob matching a directory: refused before anything goes. */
	rm = NULL;
	assert_int_equal(ova_delete_snapshot(f->s, "snapshots/2/7/5a1b2c3d", &rm, &e), SW_EPATH);
	assert_non_null(strstr(e.msg, "nothing removed"));
	assert_null(rm);
	assert_true(exists(f, "snapshots/2/7/5a1b2c3d.ova"));
	/* In its own directory: that directory goes with its last file. */
	assert_int_equal(ova_delete_snapshot(f->s, "snapshots/2/7/5a1b2c3d/5a1b2c3d", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 1);
	ova_result_free(rm);
	assert_int_equal(count_dir(f, "snapshots/2/7/5a1b2c3d"), -1);
	assert_int_equal(count_dir(f, "snapshots/2/7"), 1);
}

/* ----------------------------------------------- refusals, records, bounds */

static void
test_subdirectory_refused(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;

	put(f, TD "/u.ova.meta", META_U);
	put(f, TD "/u.ovf", "<x/>");
	put(f, TD "/sub/file", "x");
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), SW_EPATH);
	assert_non_null(strstr(e.msg, TD "/sub"));
	assert_null(rm);
	assert_int_equal(count_dir(f, TD), 3);
	assert_true(exists(f, TD "/sub/file"));
	/* A snapshot's glob ignores a directory whose name does not match. */
	put(f, SD "/u.ovf", "<x/>");
	put(f, SD "/other/file", "x");
	assert_int_equal(ova_delete_snapshot(f->s, SD "/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 1);
	ova_result_free(rm);
	assert_true(exists(f, SD "/other/file"));
}

/* An older release's crash journal beside the object is a record, not data: it stays. */
static void
test_legacy_journal_kept(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;

	put(f, SD "/u.ova.meta", META_U);
	put(f, SD "/u-disk0.vmdk.part", "x");
	put(f, SD "/u~vcenter.part", "vm=vm-1\n");
	assert_int_equal(ova_delete_snapshot(f->s, SD "/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 2);
	ova_result_free(rm);
	assert_true(exists(f, SD "/u~vcenter.part"));
	put(f, TD "/u.ova", "tar");
	put(f, TD "/u~vcenter.part", "vm=vm-1\n");
	rm = NULL;
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 1);
	ova_result_free(rm);
	assert_int_equal(count_dir(f, TD), 1);
	assert_true(exists(f, TD "/u~vcenter.part"));
}

static void
test_rules_where_they_apply(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	static const char *const not_template[] = {
		SD "/u", "u", "template/u", "template/tmpl/2/u", "template/tmpl/2/x/u",
		"template/tmpl/02/201/u", "template/tmpl/2/0/u", "template/tmpl/2/201/3/u",
		"template/tmpl/-2/201/u", "Template/tmpl/2/201/u",
	};
	size_t i;

	put(f, "keep.txt", "x");
	put(f, SD "/keep", "x");
	for (i = 0; i < sizeof(not_template) / sizeof(not_template[0]); i++)
		assert_int_equal(ova_delete_template(f->s, not_template[i], &rm, &e), SW_EPATH);
	/* A snapshot at the root or in a template directory: refused. */
	put(f, TD "/template.properties", "x");
	assert_int_equal(ova_delete_snapshot(f->s, "keep", &rm, &e), SW_EPATH);
	assert_int_equal(ova_delete_snapshot(f->s, TD "/t", &rm, &e), SW_EPATH);
	assert_null(rm);
	assert_true(exists(f, "keep.txt"));
	assert_true(exists(f, SD "/keep"));
	assert_true(exists(f, TD "/template.properties"));
	/* A missing directory is nothing to do. */
	assert_int_equal(ova_delete_template(f->s, "template/tmpl/9/9/x", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 0);
	ova_result_free(rm);
	rm = NULL;
	assert_int_equal(ova_delete_snapshot(f->s, "snapshots/9/9/x/x", &rm, &e), 0);
	assert_int_equal(rm->nfiles, 0);
	ova_result_free(rm);
}

static void
test_too_many_files(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	char rel[128];
	int i;

	for (i = 0; i <= OVA_DELETE_MAX_FILES; i++) {
		snprintf(rel, sizeof(rel), TD "/f%05d", i);
		put(f, rel, "");
	}
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), SW_ETOOBIG);
	assert_null(rm);
	assert_int_equal(count_dir(f, TD), OVA_DELETE_MAX_FILES + 1);
	/* At the bound: all of them. */
	assert_int_equal(unlink(strcat(strcpy(rel, f->root), "/" TD "/f00000")), 0);
	assert_int_equal(ova_delete_template(f->s, TD "/u", &rm, &e), 0);
	assert_int_equal(rm->nfiles, OVA_DELETE_MAX_FILES);
	ova_result_free(rm);
	assert_int_equal(count_dir(f, TD), -1);
}

/* ---------------------------------------------------------------- ova_delete */

static void
test_object_delete_extract_leftover(void **state)
{
	struct fx *f = *state;
	struct ova_result *rm = NULL;
	struct sw_err e;
	enum ova_format fm;
	static const char *const want[] = {
		SD "/u.ova.meta", SD "/u-disk0.vmdk", SD "/u.ovf", SD "/u.ova", NULL,
	};

	put(f, SD "/u.ova.meta", META_U);
	put(f, SD "/u.ovf", "<x/>");
	put(f, SD "/u-disk0.vmdk", "disk");
	put(f, SD "/u.ova", "tar");          /* without this delete it would read as legacy */
	put(f, SD "/u-x.ovf", "another object");
	assert_int_equal(ova_delete(f->s, SD "/u", &rm, &e), 0);
	assert_removed(rm, want);
	ova_result_free(rm);
	assert_int_equal(ova_detect(f->s, SD "/u", &fm, &e), 0);
	assert_int_equal(fm, OVA_FMT_ABSENT);
	assert_true(exists(f, SD "/u-x.ovf"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_template_legacy_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_extract_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_whole_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_inside_pointing_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_link_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_metas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_glob, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subdirectory_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_journal_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_where_they_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_delete_extract_leftover, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
