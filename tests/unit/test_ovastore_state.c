/*
 * ovastore state records (ovastore/state.h): the vCenter crash journal and
 * the CreateVolume marker (round trip, malformed input refused, bounds), the
 * walk over the state directories, and the rule that deleting an object
 * never deletes the record of its unfinished vCenter work (issue 9: the
 * journal of a crashed CreateSnapshot was taken for the object's debris).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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
#include "ovastore/state.h"

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"

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
	snprintf(f->root, sizeof(f->root), "/tmp/ovastore-state.XXXXXX");
	assert_non_null(mkdtemp(f->root));
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
	free(f);
	return 0;
}

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

static void
puts_(struct fx *f, const char *rel, const char *text)
{
	put(f, rel, text, strlen(text));
}

static int
exists(struct fx *f, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	return lstat(path, &st) == 0;
}

static struct ova_journal
journal(const char *id, const char *snap)
{
	struct ova_journal j;

	memset(&j, 0, sizeof(j));
	snprintf(j.command, sizeof(j.command), "%s", id);
	snprintf(j.credentials, sizeof(j.credentials), "vc1");
	snprintf(j.url, sizeof(j.url), "https://vc.example/sdk");
	snprintf(j.vm, sizeof(j.vm), "vm-42");
	snprintf(j.snapshot, sizeof(j.snapshot), "%s", snap);
	snprintf(j.object, sizeof(j.object), "snapshots/2/13/%s/%s", id, id);
	return j;
}

static void
test_journal_roundtrip(void **state)
{
	struct fx *f = *state;
	struct ova_journal j = journal(ID1, ""), r;
	struct sw_err e;

	assert_int_equal(ova_journal_read(f->s, ID1, &r, &e), SW_ENOTFOUND);
	assert_int_equal(ova_journal_write(f->s, &j, &e), 0);
	assert_true(exists(f, OVA_JOURNAL_DIR "/" ID1 OVA_JOURNAL_SUFFIX));
	assert_false(exists(f, OVA_JOURNAL_DIR "/" ID1 OVA_JOURNAL_SUFFIX ".part"));
	memset(&r, 'x', sizeof(r));
	assert_int_equal(ova_journal_read(f->s, ID1, &r, &e), 0);
	assert_memory_equal(&r, &j, sizeof(r));
	/* Replaced once the snapshot is taken. */
	j = journal(ID1, "snapshot-7");
	assert_int_equal(ova_journal_write(f->s, &j, &e), 0);
	assert_int_equal(ova_journal_read(f->s, ID1, &r, &e), 0);
	assert_string_equal(r.snapshot, "snapshot-7");
	assert_int_equal(ova_journal_remove(f->s, ID1, &e), 0);
	assert_int_equal(ova_journal_read(f->s, ID1, &r, &e), SW_ENOTFOUND);
	assert_int_equal(ova_journal_remove(f->s, ID1, &e), 0);
	/* An id that is not a safe name is refused before any file is touched. */
	j = journal("../x", "");
	assert_int_equal(ova_journal_write(f->s, &j, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_read(f->s, ".hidden", &r, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_read(f->s, "", &r, &e), SW_EFORMAT);
	/* A value with a line break would forge a key: refused. */
	j = journal(ID1, "s\nvm=vm-666");
	assert_int_equal(ova_journal_write(f->s, &j, &e), SW_EFORMAT);
}

static void
test_journal_parse(void **state)
{
	struct ova_journal j;
	struct sw_err e;
	char big[OVA_JOURNAL_MAX + 10];
	const char *old = "command=c1\ncredentials=vc1\nurl=https://vc/sdk\nvm=vm-42\n"
	    "snapshot=snapshot-7\n";

	(void)state;
	/* The format of older releases (no object key) reads. */
	assert_int_equal(ova_journal_parse(old, strlen(old), &j, &e), 0);
	assert_string_equal(j.command, "c1");
	assert_string_equal(j.credentials, "vc1");
	assert_string_equal(j.url, "https://vc/sdk");
	assert_string_equal(j.vm, "vm-42");
	assert_string_equal(j.snapshot, "snapshot-7");
	assert_string_equal(j.object, "");
	assert_string_equal(j.lease, "");
	/* The export lease is kept, and written back only when set. */
	{
		struct sw_buf b = SW_BUF_INIT(OVA_JOURNAL_MAX);
		const char *withl = "vm=vm-42\nsnapshot=snapshot-7\nlease=session[52]lease-9\n";

		assert_int_equal(ova_journal_parse(withl, strlen(withl), &j, &e), 0);
		assert_string_equal(j.lease, "session[52]lease-9");
		assert_int_equal(ova_journal_format(&j, &b, &e), 0);
		assert_non_null(strstr(sw_buf_str(&b), "\nlease=session[52]lease-9\n"));
		j.lease[0] = '\0';
		sw_buf_reset(&b);
		assert_int_equal(ova_journal_format(&j, &b, &e), 0);
		assert_null(strstr(sw_buf_str(&b), "lease="));
		/* A line break in it would forge a key. */
		snprintf(j.lease, sizeof(j.lease), "l\nvm=vm-666");
		sw_buf_reset(&b);
		assert_int_equal(ova_journal_format(&j, &b, &e), SW_EFORMAT);
		sw_buf_free(&b);
	}
	/* Taken before the snapshot; unknown keys and a last line without newline. */
	assert_int_equal(ova_journal_parse("future=1\nvm=vm-1\nsnapshot=", 26, &j, &e), 0);
	assert_string_equal(j.vm, "vm-1");
	assert_string_equal(j.snapshot, "");
	/* Refused: no vm, a line without '=', NUL, control characters, too long. */
	assert_int_equal(ova_journal_parse("snapshot=s\n", 11, &j, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_parse("", 0, &j, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_parse("vm=v\ngarbage\n", 13, &j, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_parse("vm=v\0\n", 6, &j, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_parse("vm=v\x01w\n", 7, &j, &e), SW_EFORMAT);
	memset(big, 'a', sizeof(big));
	memcpy(big, "vm=", 3);
	assert_int_equal(ova_journal_parse(big, 400, &j, &e), SW_EFORMAT);
	assert_int_equal(ova_journal_parse(big, sizeof(big), &j, &e), SW_ETOOBIG);
}

static void
test_journal_file_bounds(void **state)
{
	struct fx *f = *state;
	struct ova_journal j;
	struct sw_err e;
	char big[OVA_JOURNAL_MAX + 10];

	memset(big, 'a', sizeof(big));
	memcpy(big, "vm=", 3);
	put(f, OVA_JOURNAL_DIR "/" ID1 OVA_JOURNAL_SUFFIX, big, sizeof(big));
	assert_int_equal(ova_journal_read(f->s, ID1, &j, &e), SW_ETOOBIG);
	/* A symbolic link is not followed. */
	assert_int_equal(symlinkat("/etc/passwd", ova_store_fd(f->s),
	    OVA_JOURNAL_DIR "/" ID2 OVA_JOURNAL_SUFFIX), 0);
	assert_true(ova_journal_read(f->s, ID2, &j, &e) < 0);
}

/* The defect: DeleteSnapshot of a crashed CreateSnapshot's path took its journal. */
static void
test_delete_keeps_journal(void **state)
{
	struct fx *f = *state;
	struct ova_journal j = journal(ID1, "snapshot-7"), r;
	struct ova_result *removed = NULL;
	struct sw_err e;
	const char *obj = "snapshots/2/13/" ID1 "/" ID1;

	assert_int_equal(ova_journal_write(f->s, &j, &e), 0);
	/* The crashed attempt's debris, and a journal of an older release beside it. */
	puts_(f, "snapshots/2/13/" ID1 "/" ID1 "-disk0.vmdk.part", "partial");
	puts_(f, "snapshots/2/13/" ID1 "/" ID1 OVA_JOURNAL_LEGACY_SUFFIX,
	    "command=" ID1 "\ncredentials=vc1\nurl=https://vc/sdk\nvm=vm-42\nsnapshot=snapshot-7\n");
	puts_(f, "snapshots/2/13/" ID1 "/" ID1 "~other.part", "temp");

	assert_int_equal(ova_debris_remove(f->s, obj, &e), 2);
	assert_true(exists(f, "snapshots/2/13/" ID1 "/" ID1 OVA_JOURNAL_LEGACY_SUFFIX));
	assert_int_equal(ova_delete(f->s, obj, &removed, &e), 0);
	ova_result_free(removed);
	/* Both records of the VM snapshot survive the delete. */
	assert_int_equal(ova_journal_read(f->s, ID1, &r, &e), 0);
	assert_string_equal(r.snapshot, "snapshot-7");
	assert_int_equal(ova_journal_legacy_read(f->s, obj, &r, &e), 0);
	assert_string_equal(r.vm, "vm-42");
	/* The legacy one goes only when asked, after its work is undone. */
	assert_int_equal(ova_journal_legacy_remove(f->s, obj, &e), 0);
	assert_int_equal(ova_journal_legacy_read(f->s, obj, &r, &e), SW_ENOTFOUND);
}

static void
test_marker(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	char out[1024], big[OVA_MARKER_MAX + 10];

	assert_int_equal(ova_marker_read(f->s, ID1, out, sizeof(out), &e), SW_ENOTFOUND);
	assert_int_equal(ova_marker_write(f->s, ID1, "[ds1] vol-9.vmdk", &e), 0);
	assert_true(exists(f, OVA_MARKER_DIR "/" ID1 OVA_MARKER_SUFFIX));
	assert_int_equal(ova_marker_read(f->s, ID1, out, sizeof(out), &e), 0);
	assert_string_equal(out, "[ds1] vol-9.vmdk");
	/* Refused on write as on read: not a datastore path, a line break. */
	assert_int_equal(ova_marker_write(f->s, ID2, "ds1 vol.vmdk", &e), SW_EFORMAT);
	assert_int_equal(ova_marker_write(f->s, ID2, "[ds1] a\n[ds2] b", &e), SW_EFORMAT);
	assert_false(exists(f, OVA_MARKER_DIR "/" ID2 OVA_MARKER_SUFFIX));
	/* Parser: one line, newline-terminated, bounded. */
	assert_int_equal(ova_marker_parse("[d] x\n", 6, out, sizeof(out), &e), 0);
	assert_string_equal(out, "[d] x");
	assert_int_equal(ova_marker_parse("[d] x", 5, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_marker_parse("", 0, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_marker_parse("[d] x\nmore", 10, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_marker_parse("[d]\x01\n", 5, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_marker_parse("[d] x\n", 6, out, 3, &e), SW_ETOOBIG);
	memset(big, 'a', sizeof(big));
	big[0] = '[';
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(ova_marker_parse(big, sizeof(big), out, sizeof(out), &e), SW_ETOOBIG);
	put(f, OVA_MARKER_DIR "/" ID2 OVA_MARKER_SUFFIX, "garbage", 7);
	assert_int_equal(ova_marker_read(f->s, ID2, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_marker_remove(f->s, ID2, &e), 0);
	assert_false(exists(f, OVA_MARKER_DIR "/" ID2 OVA_MARKER_SUFFIX));
}

static int
count_cb(void *ud, const char *id, int64_t mtime)
{
	int *n = ud;

	assert_true(strcmp(id, ID1) == 0 || strcmp(id, ID2) == 0);
	assert_true(mtime > 0);
	(*n)++;
	return 0;
}

static void
test_each(void **state)
{
	struct fx *f = *state;
	struct ova_journal j1 = journal(ID1, ""), j2 = journal(ID2, "");
	struct sw_err e;
	int n = 0;

	assert_int_equal(ova_state_each(f->s, OVA_STATE_JOURNAL, count_cb, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ova_journal_write(f->s, &j1, &e), 0);
	assert_int_equal(ova_journal_write(f->s, &j2, &e), 0);
	puts_(f, OVA_JOURNAL_DIR "/notes.txt", "x");
	puts_(f, OVA_JOURNAL_DIR "/" ID1 OVA_JOURNAL_SUFFIX ".part", "x");
	assert_int_equal(ova_state_each(f->s, OVA_STATE_JOURNAL, count_cb, &n, &e), 0);
	assert_int_equal(n, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_roundtrip, setup, teardown),
		cmocka_unit_test(test_journal_parse),
		cmocka_unit_test_setup_teardown(test_journal_file_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_keeps_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
