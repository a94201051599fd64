/*
 * Hostile input against the storage library (issue 14's campaign, the
 * classes that need no worker): path fields, links planted on the share,
 * hostile archives, hostile metas and OVFs.  The rules every case checks:
 *
 *  - it is refused, with the code a publisher should see (an object that is
 *    not valid is INVALID_COMMAND, a digest that does not match is
 *    CHECKSUM_MISMATCH, never INTERNAL);
 *  - nothing outside the store is read, written, created or removed (a
 *    listing of the tree beside the store, with sizes, modes and times, is
 *    the same before and after);
 *  - a refused write leaves nothing behind, not even a temporary;
 *  - nothing hangs (a FIFO where a file should be) or crashes (the suite
 *    runs under ASan+UBSan and valgrind in CI).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "ovastore/layout.h"
#include "ovastore/lock.h"
#include "ovastore/ovastore.h"
#include "ovastore/state.h"
#include "ovastore/tprops.h"
#include "tests/fixtures/commands/fixtures.h"
#include "tests/fixtures/hostile/hostile.h"

struct hs {
	char root[64];
	char store[128];
	char outside[128];
	char work[128];
	struct ova_store *s;
	char *outside_before;
};

static int
setup(void **state)
{
	struct hs *t = calloc(1, sizeof(*t));
	struct sw_err e;
	char p[512];

	if (t == NULL)
		return -1;
	snprintf(t->root, sizeof(t->root), "/tmp/swhsXXXXXX");
	if (mkdtemp(t->root) == NULL)
		return -1;
	snprintf(t->store, sizeof(t->store), "%s/store", t->root);
	snprintf(t->outside, sizeof(t->outside), "%s/outside", t->root);
	snprintf(t->work, sizeof(t->work), "%s/work", t->root);
	if (mkdir(t->store, 0755) < 0 || mkdir(t->outside, 0755) < 0 || mkdir(t->work, 0755) < 0)
		return -1;
	/* What a planted link points at: a secret, a directory, a lock-like file. */
	snprintf(p, sizeof(p), "%s/secret", t->outside);
	if (fx_write_file(p, "the outside world\n", 18) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/dir", t->outside);
	if (mkdir(p, 0755) < 0)
		return -1;
	if (ova_store_open(t->store, &t->s, &e) < 0)
		return -1;
	t->outside_before = hx_snapshot(t->outside);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct hs *t = *state;

	ova_store_close(t->s);
	fx_rmrf(t->root);
	free(t->outside_before);
	free(t);
	return 0;
}

/* Nothing outside the store changed. */
static void
assert_outside_intact(struct hs *t)
{
	char *now = hx_snapshot(t->outside);

	if (strcmp(now, t->outside_before) != 0)
		fail_msg("the tree outside the store changed:\nbefore:\n%s\nafter:\n%s",
		    t->outside_before, now);
	free(now);
}

/* A refusal, reported to a publisher as want (never INTERNAL). */
static void
assert_refused(int r, enum proto_errcode want, const char *what, const struct sw_err *e)
{
	if (r >= 0)
		fail_msg("%s: accepted", what);
	if (hx_store_code(r) != want)
		fail_msg("%s: code %d (%s) is %s, want %s", what, r, e->msg,
		    proto_errcode_name(hx_store_code(r)), proto_errcode_name(want));
}

/* A good OVA (OVF + one disk) at path, its disk disk_len bytes. */
static void
good_ova(const char *path, const char *name, size_t disk_len)
{
	char disk[300], ovfname[300];
	const char *hrefs[1] = { disk };
	uint64_t sizes[1] = { disk_len };
	char *ovf;

	snprintf(disk, sizeof(disk), "%s-disk0.vmdk", name);
	snprintf(ovfname, sizeof(ovfname), "%s.ovf", name);
	ovf = hx_ovf(hrefs, sizes, 1);
	{
		struct hx_member m[2] = {
			{ ovfname, ovf, strlen(ovf), 0, NULL },
			{ disk, NULL, disk_len, 0, NULL },
		};
		assert_int_equal(hx_tar(path, m, 2, 0), 0);
	}
	free(ovf);
}

/* ------------------------------------------------------------ path fields */

static void
test_path_fields(void **state)
{
	struct hs *t = *state;
	static char longcomp[400], longpath[5000];
	const char *bad[] = {
		"", "/", "/etc/passwd", "..", "../outside/secret", "a/../../outside/secret",
		"a/./b", "./a", "a//b", "a/b/", "a\\b", "a\nb", "a\tb", "a\x7f" "b", "a\x1b[31mb",
		longcomp, longpath, "d/x.ova.meta", "d/x.part", "d/template.properties",
		"d/Template.Properties", "d/.snapworker", ".snapworker/journal/x",
		".SNAPWORKER/running/x", "d/.snapworker/x", "d/.ova", "d/..ova",
	};
	char before[8192], *tree, *tree_after;
	struct ova_result *res = NULL;
	struct ova_info *info = NULL;
	struct ova_writer *w = NULL;
	struct ova_reader *rd = NULL;
	enum ova_format f;
	struct sw_err e;
	size_t i;
	int fd, xfd;
	uint64_t sizes[1] = { 70000 };

	(void)state;
	memset(longcomp, 'c', 300);
	for (i = 0; i + 2 < sizeof(longpath); i += 2)
		memcpy(longpath + i, "a/", 2);
	longpath[sizeof(longpath) - 2] = 'a';
	assert_int_equal(fx_make_new(t->s, "good/g/g", sizes, 1), 0);
	snprintf(before, sizeof(before), "%s/good.ova", t->work);
	good_ova(before, "g", 4000);
	xfd = open(t->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(xfd >= 0);
	tree = hx_snapshot(t->store);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char dir[SW_PATH_MAX], name[SW_NAME_MAX + 1], what[64];
		int r;

		snprintf(what, sizeof(what), "path %zu", i);
#define REFUSED(call) do { \
	r = (call); \
	if (r >= 0 || hx_store_code(r) != PROTO_ERR_INVALID_COMMAND) \
		fail_msg("%s, %s: %s returned %d (%s)", what, #call, bad[i], r, e.msg); \
} while (0)
		REFUSED(ova_object_split(bad[i], dir, sizeof(dir), name, sizeof(name), &e));
		REFUSED(ova_inspect(t->s, bad[i], &info, &e));
		REFUSED(ova_detect(t->s, bad[i], &f, &e));
		REFUSED(ova_verify(t->s, bad[i], 0, &e));
		REFUSED(ova_delete(t->s, bad[i], &res, &e));
		REFUSED(ova_debris_remove(t->s, bad[i], &e));
		REFUSED(ova_writer_begin(t->s, bad[i], 0, &w, &e));
		REFUSED(ova_commit_files(t->s, bad[i], 0, &res, &e));
		REFUSED(ova_pack_at(t->s, bad[i], xfd, "out.ova", 0, NULL, &e));
		REFUSED(ova_copy(t->s, "good/g/g", t->s, bad[i], &res, &e));
		REFUSED(ova_copy(t->s, bad[i], t->s, "copy/c/c", &res, &e));
		REFUSED(ova_reader_open(t->s, bad[i], "g-disk0.vmdk", &rd, &e));
		fd = open(before, O_RDONLY | O_CLOEXEC);
		REFUSED(ova_unpack_fd(t->s, bad[i], fd, 0, &res, &e));
		close(fd);
#undef REFUSED
	}
	/* File names inside a good object and output paths are checked as well. */
	{
		const char *files[] = { "../g/g.ovf", "/etc/passwd", "..", "g.ova.meta/../x", "" };
		const char *outs[] = { "../escape.ova", "/tmp/escape.ova", "a/../../escape.ova", "" };
		int r;

		for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			r = ova_reader_open(t->s, "good/g/g", files[i], &rd, &e);
			assert_true(r < 0);
		}
		for (i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
			r = ova_pack_at(t->s, "good/g/g", xfd, outs[i], 0, NULL, &e);
			assert_refused(r, PROTO_ERR_INVALID_COMMAND, outs[i], &e);
		}
	}
	/* The layout's builders refuse what a command's fields could smuggle in. */
	{
		char out[SW_PATH_MAX];

		assert_true(ova_layout_snapshot(-1, 2, "x", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_snapshot(1, 0, "x", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_snapshot(1, 2, "../x", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_snapshot(1, 2, "a/b", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_snapshot(1, 2, "", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_template(1, 2, "..", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_template(1, -5, "x", out, sizeof(out), &e) < 0);
		assert_true(ova_layout_volume(1, 2, "a\nb", out, sizeof(out), &e) < 0);
	}
	close(xfd);
	tree_after = hx_snapshot(t->store);
	if (strcmp(tree, tree_after) != 0)
		fail_msg("refused operations changed the store:\n%s\n---\n%s", tree, tree_after);
	free(tree);
	free(tree_after);
	assert_int_equal(hx_count(t->work), 1);   /* good.ova only: no escaped output */
	assert_outside_intact(t);
}

/* ----------------------------------------------------------- planted links */

/* Replaces store file rel by a symbolic link to target (absolute). */
static void
plant_link(struct hs *t, const char *rel, const char *target)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/%s", t->store, rel);
	(void)unlink(p);
	assert_int_equal(symlink(target, p), 0);
}

static void
test_planted_links(void **state)
{
	struct hs *t = *state;
	static const char *const files[] = { "a-disk0.vmdk", "a.ovf", "a.ova.meta" };
	uint64_t sizes[1] = { 70000 };
	char p[1024], q[1024], target[1024];
	struct ova_info *info = NULL;
	struct ova_reader *rd = NULL;
	struct ova_result *res = NULL;
	struct sw_err e;
	size_t i;
	int xfd, r;

	assert_int_equal(fx_make_new(t->s, "snaps/a/a", sizes, 1), 0);
	xfd = open(t->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(xfd >= 0);
	/* Each file of an object in turn a link to a copy outside: never followed. */
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/snaps/a/%s", t->store, files[i]);
		snprintf(q, sizeof(q), "%s/snaps/a/%s.keep", t->store, files[i]);
		assert_int_equal(rename(p, q), 0);
		snprintf(target, sizeof(target), "%s/secret", t->outside);
		assert_int_equal(symlink(target, p), 0);
		r = ova_inspect(t->s, "snaps/a/a", &info, &e);
		assert_refused(r, PROTO_ERR_INVALID_COMMAND, files[i], &e);
		r = ova_verify(t->s, "snaps/a/a", 0, &e);
		assert_refused(r, PROTO_ERR_INVALID_COMMAND, files[i], &e);
		r = ova_pack_at(t->s, "snaps/a/a", xfd, "a.ova", 0, NULL, &e);
		assert_refused(r, PROTO_ERR_INVALID_COMMAND, files[i], &e);
		r = ova_copy(t->s, "snaps/a/a", t->s, "copies/a/a", &res, &e);
		assert_refused(r, PROTO_ERR_INVALID_COMMAND, files[i], &e);
		assert_true(hx_count(p) >= 0);
		r = ova_reader_open_disk(t->s, "snaps/a/a", 0, &rd, &e);
		assert_true(r < 0);
		assert_int_equal(unlink(p), 0);
		assert_int_equal(rename(q, p), 0);
	}
	snprintf(p, sizeof(p), "%s/copies", t->store);
	assert_true(hx_count(p) <= 0);
	assert_int_equal(hx_count(t->work), 0);
	assert_int_equal(ova_verify(t->s, "snaps/a/a", 0, &e), 0);

	/* A directory on the way is a link to a directory outside. */
	snprintf(p, sizeof(p), "%s/snaps/b", t->store);
	snprintf(target, sizeof(target), "%s/dir", t->outside);
	assert_int_equal(symlink(target, p), 0);
	{
		struct ova_writer *w = NULL;
		enum ova_format f;

		assert_refused(ova_inspect(t->s, "snaps/b/x", &info, &e), PROTO_ERR_INVALID_COMMAND,
		    "dir link inspect", &e);
		assert_refused(ova_detect(t->s, "snaps/b/x", &f, &e), PROTO_ERR_INVALID_COMMAND,
		    "dir link detect", &e);
		assert_refused(ova_writer_begin(t->s, "snaps/b/x", 0, &w, &e),
		    PROTO_ERR_INVALID_COMMAND, "dir link writer", &e);
		assert_refused(ova_copy(t->s, "snaps/a/a", t->s, "snaps/b/x", &res, &e),
		    PROTO_ERR_INVALID_COMMAND, "dir link copy", &e);
		assert_refused(ova_delete(t->s, "snaps/b/x", &res, &e), PROTO_ERR_INVALID_COMMAND,
		    "dir link delete", &e);
	}

	/* A FIFO where a file should be: refused at once, never waited on. */
	alarm(60);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/snaps/a/%s", t->store, files[i]);
		snprintf(q, sizeof(q), "%s/snaps/a/%s.keep", t->store, files[i]);
		assert_int_equal(rename(p, q), 0);
		assert_int_equal(mkfifo(p, 0644), 0);
		assert_refused(ova_inspect(t->s, "snaps/a/a", &info, &e), PROTO_ERR_INVALID_COMMAND,
		    "fifo inspect", &e);
		assert_refused(ova_pack_at(t->s, "snaps/a/a", xfd, "a.ova", 0, NULL, &e),
		    PROTO_ERR_INVALID_COMMAND, "fifo pack", &e);
		assert_int_equal(unlink(p), 0);
		assert_int_equal(rename(q, p), 0);
	}
	/* A legacy archive that is a FIFO, a link, a directory. */
	snprintf(p, sizeof(p), "%s/legacy/l", t->store);
	assert_int_equal(mkdir(p, 0755) == 0 || errno == ENOENT, 1);
	snprintf(p, sizeof(p), "%s/legacy", t->store);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/legacy/l", t->store);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/legacy/l/l.ova", t->store);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_refused(ova_inspect(t->s, "legacy/l/l", &info, &e), PROTO_ERR_INVALID_COMMAND,
	    "fifo legacy", &e);
	assert_int_equal(unlink(p), 0);
	snprintf(target, sizeof(target), "%s/secret", t->outside);
	assert_int_equal(symlink(target, p), 0);
	assert_refused(ova_inspect(t->s, "legacy/l/l", &info, &e), PROTO_ERR_INVALID_COMMAND,
	    "link legacy", &e);
	assert_refused(ova_pack_at(t->s, "legacy/l/l", xfd, "l.ova", 0, NULL, &e),
	    PROTO_ERR_INVALID_COMMAND, "link legacy pack", &e);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_refused(ova_inspect(t->s, "legacy/l/l", &info, &e), PROTO_ERR_INVALID_COMMAND,
	    "dir legacy", &e);
	assert_int_equal(rmdir(p), 0);
	alarm(0);

	/* template.properties as a link: not read; a write or a remove replaces the link only. */
	{
		struct ova_tprops_file *tp = NULL;
		struct ova_tprops props;
		uint64_t sz;
		int dfd;

		snprintf(target, sizeof(target), "%s/secret", t->outside);
		plant_link(t, "snaps/a/template.properties", target);
		snprintf(p, sizeof(p), "%s/snaps/a", t->store);
		dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(dfd >= 0);
		assert_refused(ova_tprops_read(dfd, &tp, &sz, &e), PROTO_ERR_INVALID_COMMAND,
		    "tprops link", &e);
		memset(&props, 0, sizeof(props));
		props.id = 1;
		props.uniquename = "a";
		props.size = props.virtual_size = 1;
		assert_int_equal(ova_tprops_write(dfd, &props, &sz, &e), 0);
		assert_int_equal(ova_tprops_read(dfd, &tp, &sz, &e), 0);
		ova_tprops_free(tp);
		plant_link(t, "snaps/a/template.properties", target);
		assert_true(ova_tprops_remove(dfd, &sz, &e) >= 0);
		close(dfd);
	}
	close(xfd);
	assert_outside_intact(t);
}

/* The command lock and the journals: links planted where the workers keep records. */
static void
test_planted_links_records(void **state)
{
	struct hs *t = *state;
	static const char id[] = "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f";
	struct ova_lock l = OVA_LOCK_INIT;
	struct ova_journal j;
	char p[1024], target[1024];
	struct sw_err e;
	int r, dfd;

	alarm(60);
	/* .snapworker itself a link to a directory outside. */
	snprintf(p, sizeof(p), "%s/.snapworker", t->store);
	snprintf(target, sizeof(target), "%s/dir", t->outside);
	assert_int_equal(symlink(target, p), 0);
	r = ova_lock_acquire(&l, t->store, id, NULL, sw_mono_ms() + 5000, NULL, NULL, &e);
	assert_int_equal(r, SW_EPATH);
	assert_non_null(strstr(e.msg, "not safe"));
	assert_int_equal(ova_lock_try(&l, t->store, id, &e), SW_EPATH);
	memset(&j, 0, sizeof(j));
	snprintf(j.command, sizeof(j.command), "%s", id);
	snprintf(j.vm, sizeof(j.vm), "vm-1");
	assert_true(ova_journal_write(t->s, &j, &e) < 0);
	assert_int_equal(unlink(p), 0);

	/* .snapworker/running a link. */
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/.snapworker/running", t->store);
	assert_int_equal(symlink(target, p), 0);
	r = ova_lock_acquire(&l, t->store, id, NULL, sw_mono_ms() + 5000, NULL, NULL, &e);
	assert_int_equal(r, SW_EPATH);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0755), 0);

	/* The lock file a link (to a file outside, and dangling), a FIFO, a directory. */
	snprintf(p, sizeof(p), "%s/.snapworker/running/%s.lock", t->store, id);
	dfd = open(t->store, O_RDONLY | O_DIRECTORY);
	{
		const char *kinds[] = { "link", "dangling", "fifo", "dir" };
		size_t k;
		int ldfd;
		char rdir[512];

		snprintf(rdir, sizeof(rdir), "%s/.snapworker/running", t->store);
		ldfd = open(rdir, O_RDONLY | O_DIRECTORY);
		assert_true(ldfd >= 0);
		for (k = 0; k < 4; k++) {
			char dangling[1024], lname[128];

			snprintf(dangling, sizeof(dangling), "%s/created-by-the-lock", t->outside);
			snprintf(target, sizeof(target), "%s/secret", t->outside);
			if (k == 0)
				assert_int_equal(symlink(target, p), 0);
			else if (k == 1)
				assert_int_equal(symlink(dangling, p), 0);
			else if (k == 2)
				assert_int_equal(mkfifo(p, 0644), 0);
			else
				assert_int_equal(mkdir(p, 0755), 0);
			r = ova_lock_acquire(&l, t->store, id, NULL, sw_mono_ms() + 5000, NULL, NULL, &e);
			if (r != SW_EPATH)
				fail_msg("lock file a %s: %d (%s)", kinds[k], r, e.msg);
			assert_int_equal(l.fd, -1);
			/* The sweeper leaves a planted file for the operator. */
			snprintf(lname, sizeof(lname), "%s.lock", id);
			assert_int_equal(ova_lock_reap(ldfd, lname), 0);
			assert_true(fx_exists(p));
			if (k == 3)
				assert_int_equal(rmdir(p), 0);
			else
				assert_int_equal(unlink(p), 0);
		}
		close(ldfd);
	}
	close(dfd);
	/* With the plant gone the lock works again. */
	assert_int_equal(ova_lock_acquire(&l, t->store, id, NULL, sw_mono_ms() + 5000, NULL, NULL,
	    &e), 0);
	ova_lock_release(&l);

	/* A journal that is a link: not read; a write replaces the link, not its target. */
	assert_int_equal(ova_journal_write(t->s, &j, &e), 0);
	snprintf(p, sizeof(p), "%s/.snapworker/journal/%s.journal", t->store, id);
	snprintf(target, sizeof(target), "%s/secret", t->outside);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(target, p), 0);
	assert_true(ova_journal_read(t->s, id, &j, &e) < 0);
	snprintf(j.vm, sizeof(j.vm), "vm-2");
	assert_int_equal(ova_journal_write(t->s, &j, &e), 0);
	assert_int_equal(ova_journal_read(t->s, id, &j, &e), 0);
	assert_string_equal(j.vm, "vm-2");
	assert_int_equal(ova_journal_remove(t->s, id, &e), 0);
	alarm(0);
	assert_outside_intact(t);
}

/* -------------------------------------------------------- hostile archives */

/* The unpack of the archive at path into obj fails with code want; nothing is left. */
static void
unpack_refused(struct hs *t, const char *path, enum proto_errcode want, const char *what)
{
	struct ova_result *res = NULL;
	struct sw_err e;
	char dir[512];
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	r = ova_unpack_fd(t->s, "unp/u/u", fd, 0, &res, &e);
	close(fd);
	assert_refused(r, want, what, &e);
	snprintf(dir, sizeof(dir), "%s/unp", t->store);
	if (hx_count(dir) > 0)
		fail_msg("%s: the refused unpack left files behind", what);
}

/*
 * The same archive as a legacy object: inspect or verify, pack and copy all
 * refuse it; pack not when only the manifest is wrong (it copies a legacy
 * archive as it is and reads no manifest: the worker checks one first).
 */
static void
legacy_refused_mf(struct hs *t, const char *path, enum proto_errcode want, const char *what,
    int mf_only)
{
	struct ova_result *res = NULL;
	struct ova_info *info = NULL;
	char p[1024];
	struct sw_err e;
	int r, xfd;

	snprintf(p, sizeof(p), "%s/leg", t->store);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/leg/x", t->store);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "cp '%s' '%s/leg/x/x.ova'", path, t->store);
	assert_int_equal(system(p), 0);
	r = ova_inspect(t->s, "leg/x/x", &info, &e);
	if (r == 0) {
		ova_info_free(info);
		r = ova_verify(t->s, "leg/x/x", 0, &e);
	}
	assert_refused(r, want, what, &e);
	xfd = open(t->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = ova_pack_at(t->s, "leg/x/x", xfd, "x.ova", 0, NULL, &e);
	close(xfd);
	if (!mf_only)
		assert_refused(r, want, what, &e);
	else if (r == 0) {
		snprintf(p, sizeof(p), "%s/x.ova", t->work);
		unlink(p);
	}
	r = ova_copy(t->s, "leg/x/x", t->s, "legcopy/x/x", &res, &e);
	assert_refused(r, want, what, &e);
	snprintf(p, sizeof(p), "%s/legcopy", t->store);
	if (hx_count(p) > 0)
		fail_msg("%s: the refused copy left files behind", what);
	snprintf(p, sizeof(p), "%s/leg/x/x.ova", t->store);
	unlink(p);
}

static void
legacy_refused(struct hs *t, const char *path, enum proto_errcode want, const char *what)
{
	legacy_refused_mf(t, path, want, what, 0);
}

static void
test_hostile_archives(void **state)
{
	struct hs *t = *state;
	char path[512], *ovf;
	const char *hrefs[4];
	uint64_t sizes[4];
	struct sw_buf mf = SW_BUF_INIT(1 << 20);
	size_t i;

	snprintf(path, sizeof(path), "%s/h.ova", t->work);

	/* Members that are not regular files, or named to escape. */
	{
		static const struct { const char *name; unsigned type; const char *link; } odd[] = {
			{ "h-disk0.vmdk", AE_IFLNK, "/etc/passwd" },
			{ "h-disk0.vmdk", AE_IFREG, "h.ovf" },            /* hard link */
			{ "h-disk0.vmdk", AE_IFDIR, NULL },
			{ "h-disk0.vmdk", AE_IFIFO, NULL },
			{ "h-disk0.vmdk", AE_IFCHR, NULL },
			{ "/etc/h-disk0.vmdk", 0, NULL },
			{ "../h-disk0.vmdk", 0, NULL },
			{ "a/../../h-disk0.vmdk", 0, NULL },
		};

		hrefs[0] = "h-disk0.vmdk";
		ovf = hx_ovf(hrefs, NULL, 1);
		for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
			struct hx_member m[2] = {
				{ "h.ovf", ovf, strlen(ovf), 0, NULL },
				{ odd[i].name, NULL, 100, odd[i].type, odd[i].link },
			};
			char what[64];

			snprintf(what, sizeof(what), "odd member %zu", i);
			assert_int_equal(hx_tar(path, m, 2, 0), 0);
			unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, what);
			legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, what);
		}
		free(ovf);
	}

	/* Names the layout reserves, and the archive's own names (issue 14, item 1). */
	{
		static const char *const reserved[] = {
			"template.properties", "TEMPLATE.PROPERTIES", ".snapworker", "h.ova.meta",
			"u.ova.meta", "x.part", "u.ova", "x.ova",
		};

		for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
			char what[64];

			hrefs[0] = reserved[i];
			ovf = hx_ovf(hrefs, NULL, 1);
			{
				struct hx_member m[2] = {
					{ "h.ovf", ovf, strlen(ovf), 0, NULL },
					{ reserved[i], NULL, 5000, 0, NULL },
				};
				assert_int_equal(hx_tar(path, m, 2, 0), 0);
			}
			snprintf(what, sizeof(what), "member named %s", reserved[i]);
			unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, what);
			legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, what);
			free(ovf);
		}
	}

	/* An OVF that references itself (issue 14, item 6: was INTERNAL), or nothing there. */
	{
		hrefs[0] = "h.ovf";
		ovf = hx_ovf(hrefs, NULL, 1);
		{
			struct hx_member m[1] = { { "h.ovf", ovf, strlen(ovf), 0, NULL } };
			assert_int_equal(hx_tar(path, m, 1, 0), 0);
		}
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF references itself");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF references itself");
		{
			struct hx_member m[2] = {
				{ "h.ovf", ovf, strlen(ovf), 0, NULL },
				{ "h-disk0.vmdk", NULL, 100, 0, NULL },
			};
			assert_int_equal(hx_tar(path, m, 2, 0), 0);
		}
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF references itself, disk beside");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF references itself, disk beside");
		free(ovf);
		/* The OVF references a member the archive lacks. */
		hrefs[0] = "h-disk0.vmdk";
		hrefs[1] = "h-disk1.vmdk";
		ovf = hx_ovf(hrefs, NULL, 2);
		{
			struct hx_member m[2] = {
				{ "h.ovf", ovf, strlen(ovf), 0, NULL },
				{ "h-disk0.vmdk", NULL, 100, 0, NULL },
			};
			assert_int_equal(hx_tar(path, m, 2, 0), 0);
		}
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "missing disk");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "missing disk");
		free(ovf);
	}

	/* More than 1024 members (item 6: was INTERNAL). */
	{
		struct hx_member *m = calloc(1100, sizeof(*m));
		char (*names)[32] = calloc(1100, 32);

		hrefs[0] = "m-disk0.vmdk";
		ovf = hx_ovf(hrefs, NULL, 1);
		m[0].name = "m.ovf";
		m[0].data = ovf;
		m[0].len = strlen(ovf);
		for (i = 1; i < 1100; i++) {
			snprintf(names[i], 32, i == 1 ? "m-disk0.vmdk" : "junk%zu", i);
			m[i].name = names[i];
			m[i].len = 1;
		}
		assert_int_equal(hx_tar(path, m, 1100, 0), 0);
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "1100 members");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "1100 members");
		free(m);
		free(names);
		free(ovf);
	}

	/* An OVF over 16 MiB (item 6: was INTERNAL), the OVF not first, two members of one name. */
	{
		size_t big = 16 * 1024 * 1024 + 100;
		char *huge = malloc(big);
		const char *head = "<?xml version=\"1.0\"?><Envelope xmlns=\"http://schemas.dmtf.org/"
		    "ovf/envelope/1\"><!--";

		memset(huge, 'x', big);
		memcpy(huge, head, strlen(head));
		memcpy(huge + big - 15, "--></Envelope>\n", 15);
		{
			struct hx_member m[2] = {
				{ "h.ovf", huge, big, 0, NULL },
				{ "h-disk0.vmdk", NULL, 100, 0, NULL },
			};
			assert_int_equal(hx_tar(path, m, 2, 0), 0);
		}
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF over 16 MiB");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF over 16 MiB");
		free(huge);
		hrefs[0] = "h-disk0.vmdk";
		ovf = hx_ovf(hrefs, NULL, 1);
		{
			struct hx_member m[2] = {
				{ "h-disk0.vmdk", NULL, 100, 0, NULL },
				{ "h.ovf", ovf, strlen(ovf), 0, NULL },
			};
			assert_int_equal(hx_tar(path, m, 2, 0), 0);
		}
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "OVF not first");
		{
			struct hx_member m[3] = {
				{ "h.ovf", ovf, strlen(ovf), 0, NULL },
				{ "h-disk0.vmdk", NULL, 100, 0, NULL },
				{ "h-disk0.vmdk", NULL, 200, 0, NULL },
			};
			assert_int_equal(hx_tar(path, m, 3, 0), 0);
		}
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "two members of one name");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "two members of one name");
		free(ovf);
	}

	/* Manifests: a wrong digest (item 7 for legacy objects), a missing member, junk. */
	{
		static const struct { int corrupt; const char *alg; const char *extra;
		    enum proto_errcode want; const char *what; } mfs[] = {
			{ 1, "SHA256", NULL, PROTO_ERR_CHECKSUM_MISMATCH, "wrong SHA256" },
			{ 1, "SHA1", NULL, PROTO_ERR_CHECKSUM_MISMATCH, "wrong SHA1" },
			{ 0, "SHA256", "SHA256(nothere.vmdk)= 00\n", PROTO_ERR_INVALID_COMMAND,
			    "names a missing member" },
			{ 0, "SHA256", "MD5(h-disk0.vmdk)= 00\n", PROTO_ERR_INVALID_COMMAND,
			    "unknown digest" },
			{ 0, "SHA256", "this is not a manifest line\n", PROTO_ERR_INVALID_COMMAND,
			    "junk line" },
		};

		hrefs[0] = "h-disk0.vmdk";
		sizes[0] = 70000;
		ovf = hx_ovf(hrefs, sizes, 1);
		for (i = 0; i < sizeof(mfs) / sizeof(mfs[0]); i++) {
			sw_buf_reset(&mf);
			hx_mf_line(&mf, mfs[i].alg, "h.ovf", ovf, strlen(ovf), 0, 0);
			hx_mf_line(&mf, mfs[i].alg, "h-disk0.vmdk", NULL, 70000, 2, mfs[i].corrupt);
			if (mfs[i].extra != NULL)
				sw_buf_addstr(&mf, mfs[i].extra);
			{
				struct hx_member m[3] = {
					{ "h.ovf", ovf, strlen(ovf), 0, NULL },
					{ "h.mf", mf.ptr, mf.len, 0, NULL },
					{ "h-disk0.vmdk", NULL, 70000, 0, NULL },
				};
				assert_int_equal(hx_tar(path, m, 3, 0), 0);
			}
			unpack_refused(t, path, mfs[i].want, mfs[i].what);
			legacy_refused_mf(t, path, mfs[i].want, mfs[i].what, 1);
		}
		/* The control: the same archive with a true manifest is accepted both ways. */
		sw_buf_reset(&mf);
		hx_mf_line(&mf, "SHA256", "h.ovf", ovf, strlen(ovf), 0, 0);
		hx_mf_line(&mf, "SHA1", "h-disk0.vmdk", NULL, 70000, 2, 0);
		{
			struct hx_member m[3] = {
				{ "h.ovf", ovf, strlen(ovf), 0, NULL },
				{ "h.mf", mf.ptr, mf.len, 0, NULL },
				{ "h-disk0.vmdk", NULL, 70000, 0, NULL },
			};
			struct ova_result *res = NULL;
			struct sw_err e;
			char cmd[1024];

			assert_int_equal(hx_tar(path, m, 3, 0), 0);
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s/ok/x' && cp '%s' '%s/ok/x/x.ova'",
			    t->store, path, t->store);
			assert_int_equal(system(cmd), 0);
			if (ova_verify(t->s, "ok/x/x", 0, &e) != 0)
				fail_msg("a true manifest: %s", e.msg);
			assert_int_equal(ova_copy(t->s, "ok/x/x", t->s, "okcopy/x/x", &res, &e), 0);
			ova_result_free(res);
			assert_int_equal(ova_verify(t->s, "okcopy/x/x", 0, &e), 0);
		}
		free(ovf);
	}

	/* Not a tar at all, compressed, truncated, followed by too much. */
	{
		struct hx_member m[2];
		char cmd[1024];

		hrefs[0] = "h-disk0.vmdk";
		ovf = hx_ovf(hrefs, NULL, 1);
		m[0] = (struct hx_member){ "h.ovf", ovf, strlen(ovf), 0, NULL };
		m[1] = (struct hx_member){ "h-disk0.vmdk", NULL, 300000, 0, NULL };
		assert_int_equal(fx_write_file(path, "not an archive\n", 15), 0);
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "not a tar");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "not a tar");
		assert_int_equal(hx_tar(path, m, 2, HX_GZIP), 0);
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "gzip");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "gzip");
		assert_int_equal(hx_tar(path, m, 2, 0), 0);
		assert_int_equal(truncate(path, 150000), 0);
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "truncated");
		legacy_refused(t, path, PROTO_ERR_INVALID_COMMAND, "truncated");
		assert_int_equal(hx_tar(path, m, 2, 0), 0);
		snprintf(cmd, sizeof(cmd), "head -c 3000000 /dev/zero | tr '\\0' 'x' >> '%s'", path);
		assert_int_equal(system(cmd), 0);
		unpack_refused(t, path, PROTO_ERR_INVALID_COMMAND, "3 MB after the end");
		free(ovf);
	}
	/* No template.properties, no temporaries anywhere from all of that. */
	{
		char cmd[1024], out[64] = "";
		FILE *p;

		snprintf(cmd, sizeof(cmd), "find '%s' -iname template.properties -o -name '*.part' | "
		    "wc -l", t->store);
		p = popen(cmd, "r");
		assert_non_null(fgets(out, sizeof(out), p));
		pclose(p);
		assert_int_equal(atoi(out), 0);
	}
	sw_buf_free(&mf);
	assert_outside_intact(t);
}

/* -------------------------------------------------- hostile metas and OVFs */

/* Plants meta text (and an OVF and disk that would go with it) as obj "m/x/x". */
static void
plant_meta(struct hs *t, const void *meta, size_t len)
{
	char p[512];
	const char *hrefs[1] = { "x-disk0.vmdk" };
	uint64_t sizes[1] = { 10 };
	char *ovf = hx_ovf(hrefs, sizes, 1);

	snprintf(p, sizeof(p), "%s/m", t->store);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/m/x", t->store);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/m/x/x.ovf", t->store);
	assert_int_equal(fx_write_file(p, ovf, strlen(ovf)), 0);
	snprintf(p, sizeof(p), "%s/m/x/x-disk0.vmdk", t->store);
	assert_int_equal(fx_write_file(p, "0123456789", 10), 0);
	snprintf(p, sizeof(p), "%s/m/x/x.ova.meta", t->store);
	assert_int_equal(fx_write_file(p, meta, len), 0);
	free(ovf);
}

static void
test_hostile_metas(void **state)
{
	struct hs *t = *state;
	struct sw_buf b = SW_BUF_INIT(1 << 22);
	struct ova_info *info = NULL;
	struct ova_result *res = NULL;
	struct sw_err e;
	size_t i;
	int r, xfd;
	static const char *const bad[] = {
		"version=1.0\novf=x.ovf\nnumDisks=0\n",
		"version=1.0\novf=x.ovf\nnumDisks=65\n",
		"version=1.0\novf=x.ovf\nnumDisks=99999999999999999999999\n",
		"version=1.0\novf=x.ovf\nnumDisks=-1\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=../../outside/secret\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=/etc/passwd\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=template.properties\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=.snapworker\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x.ova.meta\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x.ovf\ndisk1.size=10\n",
		"version=1.0\novf=../x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\ndisk1.size=-10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\ndisk1.size=11\n",
		"version=2\novf=x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\ndisk1.size=10\n",
		"version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\ndisk1.size=10\n"
		    "disk1.sha256=zz\n",
		"version=1.0\novf=x.ovf\nnumDisks=2\ndisk1.name=x-disk0.vmdk\ndisk1.size=10\n"
		    "disk2.name=x-disk0.vmdk\ndisk2.size=10\n",
		"\xff\xfe\x00\x00garbage",
		"",
	};

	xfd = open(t->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[64];

		snprintf(what, sizeof(what), "meta %zu", i);
		plant_meta(t, bad[i], strlen(bad[i]));
		r = ova_inspect(t->s, "m/x/x", &info, &e);
		if (r == 0) {
			ova_info_free(info);
			r = ova_verify(t->s, "m/x/x", 0, &e);
		}
		assert_refused(r, PROTO_ERR_INVALID_COMMAND, what, &e);
		assert_refused(ova_pack_at(t->s, "m/x/x", xfd, "x.ova", 0, NULL, &e),
		    PROTO_ERR_INVALID_COMMAND, what, &e);
		assert_refused(ova_copy(t->s, "m/x/x", t->s, "mc/x/x", &res, &e),
		    PROTO_ERR_INVALID_COMMAND, what, &e);
	}
	/* A meta with NUL bytes, over 64 KiB, with more than 1024 keys (item 6: was INTERNAL). */
	plant_meta(t, "version=1.0\0\novf=x.ovf\n", 23);
	assert_refused(ova_inspect(t->s, "m/x/x", &info, &e), PROTO_ERR_INVALID_COMMAND, "NUL",
	    &e);
	sw_buf_addstr(&b, "version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\n"
	    "disk1.size=10\n#");
	for (i = 0; i < 70000; i++)
		sw_buf_addstr(&b, "x");
	plant_meta(t, b.ptr, b.len);
	assert_refused(ova_inspect(t->s, "m/x/x", &info, &e), PROTO_ERR_INVALID_COMMAND,
	    "meta over 64 KiB", &e);
	sw_buf_reset(&b);
	sw_buf_addstr(&b, "version=1.0\novf=x.ovf\nnumDisks=1\ndisk1.name=x-disk0.vmdk\n"
	    "disk1.size=10\n");
	for (i = 0; i < 1100; i++)
		sw_buf_addf(&b, "k%zu=v\n", i);
	plant_meta(t, b.ptr, b.len);
	assert_refused(ova_inspect(t->s, "m/x/x", &info, &e), PROTO_ERR_INVALID_COMMAND,
	    "1100 keys", &e);
	close(xfd);
	assert_true(hx_count(t->work) == 0);
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/mc", t->store);
		assert_true(hx_count(p) <= 0);
	}
	sw_buf_free(&b);
	assert_outside_intact(t);
}

/* Converts text (UTF-8) into enc; the result in *ret (malloc'd), its length returned. */
static size_t
convert(const char *text, const char *enc, char **ret)
{
	iconv_t cd = iconv_open(enc, "UTF-8");
	size_t inl = strlen(text), outl = 4 * inl + 16;
	char *in = (char *)text, *out = malloc(outl), *op = out;

	if (cd == (iconv_t)-1 || out == NULL)
		fail_msg("iconv cannot write %s", enc);
	if (iconv(cd, &in, &inl, &op, &outl) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &outl) == (size_t)-1)
		fail_msg("iconv to %s failed", enc);
	iconv_close(cd);
	*ret = out;
	return (size_t)(op - out);
}

static void
test_hostile_ovfs(void **state)
{
	struct hs *t = *state;
	struct sw_buf b = SW_BUF_INIT(1 << 25);
	struct ova_ovf *o = NULL;
	struct sw_err e;
	char *conv;
	size_t i, n;
	int r;
	const char *env = "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References><File ovf:href=\"&x;\" "
	    "ovf:id=\"f1\"/></References></Envelope>";

	(void)t;
	/* A DTD in every encoding an OVF could be written in: refused, never substituted. */
	{
		static const struct { const char *enc; const char *decl; int ascii_prolog; } encs[] = {
			{ "UTF-8", "UTF-8", 0 }, { "UTF-16LE", "UTF-16", 0 }, { "UTF-16BE", "UTF-16", 0 },
			{ "IBM037", "IBM037", 0 }, { "UTF-7", "UTF-7", 1 }, { "ISO-8859-1", "ISO-8859-1", 0 },
		};
		char doc[2048], prolog[128];

		for (i = 0; i < sizeof(encs) / sizeof(encs[0]); i++) {
			snprintf(prolog, sizeof(prolog), "<?xml version=\"1.0\" encoding=\"%s\"?>\n",
			    encs[i].decl);
			snprintf(doc, sizeof(doc), "%s<!DOCTYPE Envelope [<!ENTITY x \"template.properties\">]>"
			    "%s", encs[i].ascii_prolog ? "" : prolog, env);
			n = convert(doc, encs[i].enc, &conv);
			sw_buf_reset(&b);
			if (encs[i].ascii_prolog)
				sw_buf_addstr(&b, prolog);
			sw_buf_add(&b, conv, n);
			free(conv);
			r = ova_ovf_parse(b.ptr, b.len, &o, &e);
			if (r != SW_EFORMAT)
				fail_msg("%s: a DTD was not refused: %d (%s)", encs[i].enc, r, e.msg);
		}
	}
	/* Hrefs that are not plain file names, or that the layout reserves. */
	{
		static const char *const hrefs[] = {
			"../x.vmdk", "/etc/passwd", "a/b.vmdk", "..", ".", "", "x\\y",
			"template.properties", ".snapworker", "x.ova.meta", "x.part", "a&#10;b",
		};

		for (i = 0; i < sizeof(hrefs) / sizeof(hrefs[0]); i++) {
			char *ovf = hx_ovf(&hrefs[i], NULL, 1);

			r = ova_ovf_parse(ovf, strlen(ovf), &o, &e);
			if (r != SW_EFORMAT)
				fail_msg("href '%s': %d (%s)", hrefs[i], r, e.msg);
			free(ovf);
		}
	}
	/* Bounds: size, files, disks, depth; and numbers that overflow (item 6: INVALID). */
	sw_buf_reset(&b);
	sw_buf_addstr(&b, "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"><!--");
	while (b.len < 16 * 1024 * 1024 + 10)
		sw_buf_addstr(&b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	sw_buf_addstr(&b, "--></Envelope>");
	r = ova_ovf_parse(b.ptr, b.len, &o, &e);
	assert_int_equal(r, SW_ETOOBIG);
	assert_int_equal(hx_store_code(r), PROTO_ERR_INVALID_COMMAND);
	{
		const char **hrefs = calloc(1100, sizeof(*hrefs));
		char (*names)[16] = calloc(1100, 16);
		char *ovf;

		for (i = 0; i < 1100; i++) {
			snprintf(names[i], 16, "d%zu.vmdk", i);
			hrefs[i] = names[i];
		}
		ovf = hx_ovf(hrefs, NULL, 1100);
		r = ova_ovf_parse(ovf, strlen(ovf), &o, &e);
		assert_int_equal(r, SW_ETOOBIG);
		assert_int_equal(hx_store_code(r), PROTO_ERR_INVALID_COMMAND);
		free(ovf);
		ovf = hx_ovf(hrefs, NULL, 65);
		r = ova_ovf_parse(ovf, strlen(ovf), &o, &e);
		assert_int_equal(r, SW_ETOOBIG);
		assert_int_equal(hx_store_code(r), PROTO_ERR_INVALID_COMMAND);
		free(ovf);
		free(hrefs);
		free(names);
	}
	sw_buf_reset(&b);
	sw_buf_addstr(&b, "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">");
	for (i = 0; i < 10000; i++)
		sw_buf_addstr(&b, "<a>");
	for (i = 0; i < 10000; i++)
		sw_buf_addstr(&b, "</a>");
	sw_buf_addstr(&b, "</Envelope>");
	r = ova_ovf_parse(b.ptr, b.len, &o, &e);
	assert_true(r == SW_ETOOBIG || r == SW_EFORMAT);
	assert_int_equal(hx_store_code(r), PROTO_ERR_INVALID_COMMAND);
	{
		static const char *const caps[] = {
			"<Disk ovf:capacity=\"18446744073709551615\" ovf:capacityAllocationUnits=\"byte * 2^30\" "
			    "ovf:diskId=\"d\"/>",
			"<Disk ovf:capacity=\"99999999999999999999999\" ovf:diskId=\"d\"/>",
			"<Disk ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^99\" ovf:diskId=\"d\"/>",
			"<Disk ovf:capacity=\"-1\" ovf:diskId=\"d\"/>",
			"<Disk ovf:capacity=\"1\" ovf:diskId=\"d\" ovf:fileRef=\"nosuch\"/>",
		};

		for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
			sw_buf_reset(&b);
			sw_buf_addf(&b, "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
			    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><DiskSection>%s"
			    "</DiskSection></Envelope>", caps[i]);
			r = ova_ovf_parse(b.ptr, b.len, &o, &e);
			if (r != SW_EFORMAT)
				fail_msg("disk %zu: %d (%s)", i, r, e.msg);
		}
	}
	sw_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_links_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_archives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_metas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ovfs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
