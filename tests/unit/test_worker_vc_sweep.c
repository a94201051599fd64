/*
 * Unit tests of the sweeper's store side (worker/sweep.h): which .part files
 * are a crashed write's debris (old enough, of an uncommitted object, no
 * younger temporary of the same object), what a dry run leaves alone, that
 * committed objects, the extract area and symbolic links are never touched,
 * and that a journal naming an unknown credential set is reported, not
 * followed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "ovastore/lock.h"
#include "tests/fixtures/commands/fixtures.h"
#include "worker/sweep.h"

#define DIR1 "snapshots/2/13/u1"

static int
setup(void **state)
{
	struct fx_env *x = calloc(1, sizeof(*x));

	if (x == NULL || fx_env_init(x) < 0)
		return -1;
	x->cfg.nstores = 1;
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct fx_env *x = *state;

	fx_env_free(x);
	free(x);
	return 0;
}

/* Creates store-relative file rel with some bytes, aged by age_s seconds. */
static void
mk(struct fx_env *x, const char *rel, long age_s)
{
	char path[1024], cmd[1200];
	struct timeval tv[2];

	snprintf(path, sizeof(path), "%s/%s", x->mount[0], rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(fx_write_file(path, "data", 4), 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
}

static int
there(struct fx_env *x, const char *rel)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", x->mount[0], rel);
	return fx_exists(path);
}

struct lines {
	int n;
	char last[1024];
	int said_journal;
};

static void
collect(void *ud, const char *line)
{
	struct lines *l = ud;

	l->n++;
	snprintf(l->last, sizeof(l->last), "%s", line);
	if (strstr(line, "journal") != NULL)
		l->said_journal = 1;
}

static int
sweep(struct fx_env *x, int dry, struct wrk_sweep_stats *st, struct lines *l)
{
	struct wrk_sweep_opts o;
	struct sw_err e;

	memset(&o, 0, sizeof(o));
	o.max_age_s = 3600;
	o.dry_run = dry;
	o.report = collect;
	o.report_ud = l;
	memset(l, 0, sizeof(*l));
	return wrk_sweep_run(&x->cfg, &o, st, NULL, &e);
}

static void
test_debris_rules(void **state)
{
	struct fx_env *x = *state;
	static const uint64_t sizes[1] = { 1000 };
	struct wrk_sweep_stats st;
	struct ova_store *s = NULL;
	struct lines l;
	struct sw_err e;

	/* A crashed write: old temporaries of an uncommitted object. */
	mk(x, DIR1 "/u1-disk0.vmdk.part", 7200);
	mk(x, DIR1 "/u1.ovf.part", 7200);
	mk(x, DIR1 "/u1~other.vmdk.part", 7200);
	/* A write in progress: an old and a young temporary of the same object. */
	mk(x, DIR1 "/busy-disk0.vmdk.part", 7200);
	mk(x, DIR1 "/busy-disk1.vmdk.part", 5);
	/* Young debris only: not yet. */
	mk(x, DIR1 "/young.ova.meta.part", 10);
	/* Not debris at all: other files, and an old .part outside the walked trees. */
	mk(x, DIR1 "/notes.txt", 7200);
	mk(x, "extract/.x.ova.1.2.part", 7200);
	/* A committed object with an old leftover temporary: a copy may be writing it. */
	assert_int_equal(ova_store_open(x->mount[0], &s, &e), 0);
	assert_int_equal(fx_make_new(s, "snapshots/2/14/c1/c1", sizes, 1), 0);
	ova_store_close(s);
	mk(x, "snapshots/2/14/c1/c1-disk0.vmdk.part", 7200);

	/* Dry run: reports, changes nothing. */
	assert_int_equal(sweep(x, 1, &st, &l), 0);
	assert_true(l.n >= 1);
	assert_int_equal(st.debris_removed, 0);
	assert_true(there(x, DIR1 "/u1-disk0.vmdk.part"));

	assert_int_equal(sweep(x, 0, &st, &l), 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.debris_removed, 3);
	assert_false(there(x, DIR1 "/u1-disk0.vmdk.part"));
	assert_false(there(x, DIR1 "/u1.ovf.part"));
	assert_false(there(x, DIR1 "/u1~other.vmdk.part"));
	assert_true(there(x, DIR1 "/busy-disk0.vmdk.part"));
	assert_true(there(x, DIR1 "/busy-disk1.vmdk.part"));
	assert_true(there(x, DIR1 "/young.ova.meta.part"));
	assert_true(there(x, DIR1 "/notes.txt"));
	assert_true(there(x, "extract/.x.ova.1.2.part"));
	assert_true(there(x, "snapshots/2/14/c1/c1-disk0.vmdk.part"));
	assert_true(there(x, "snapshots/2/14/c1/c1.ova.meta"));

	/* Idempotent: nothing more to do. */
	assert_int_equal(sweep(x, 0, &st, &l), 0);
	assert_int_equal(st.debris_removed, 0);
}

/* .snapworker/: old CreateVolume markers and crashed attempts' lock files go; held locks stay. */
static void
test_state_dir(void **state)
{
	struct fx_env *x = *state;
	struct ova_lock held = OVA_LOCK_INIT;
	struct wrk_sweep_stats st;
	struct timeval tv[2];
	char path[1024];
	struct lines l;

	mk(x, ".snapworker/createvolume/11111111-1111-4111-8111-111111111111.createvolume", 7200);
	mk(x, ".snapworker/createvolume/22222222-2222-4222-8222-222222222222.createvolume", 60);
	mk(x, ".snapworker/createvolume/notes.txt", 7200);
	mk(x, ".snapworker/running/33333333-3333-4333-8333-333333333333.lock", 7200);
	mk(x, ".snapworker/running/44444444-4444-4444-8444-444444444444.lock", 60);
	/* An attempt that has run for two hours and still holds its lock. */
	assert_int_equal(ova_lock_acquire(&held, x->mount[0],
	    "55555555-5555-4555-8555-555555555555", NULL, 0, NULL, NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/.snapworker/running/%s.lock", x->mount[0],
	    "55555555-5555-4555-8555-555555555555");
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= 7200;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);

	assert_int_equal(sweep(x, 1, &st, &l), 0);
	assert_int_equal(st.debris_removed, 0);
	assert_true(there(x, ".snapworker/createvolume/11111111-1111-4111-8111-111111111111.createvolume"));

	assert_int_equal(sweep(x, 0, &st, &l), 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.debris_removed, 2);
	assert_false(there(x, ".snapworker/createvolume/11111111-1111-4111-8111-111111111111.createvolume"));
	assert_true(there(x, ".snapworker/createvolume/22222222-2222-4222-8222-222222222222.createvolume"));
	assert_true(there(x, ".snapworker/createvolume/notes.txt"));
	assert_false(there(x, ".snapworker/running/33333333-3333-4333-8333-333333333333.lock"));
	assert_true(there(x, ".snapworker/running/44444444-4444-4444-8444-444444444444.lock"));
	assert_true(there(x, ".snapworker/running/55555555-5555-4555-8555-555555555555.lock"));
	ova_lock_release(&held);
	assert_false(there(x, ".snapworker/running/55555555-5555-4555-8555-555555555555.lock"));
}

static void
test_symlinks_not_followed(void **state)
{
	struct fx_env *x = *state;
	struct wrk_sweep_stats st;
	struct lines l;
	char outside[512], link[512], cmd[1200];

	/* Old debris outside the store, reachable only through a link. */
	snprintf(outside, sizeof(outside), "%s/outside", x->root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' '%s/snapshots/2'", outside, x->mount[0]);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/o-disk0.vmdk.part", outside);
	assert_int_equal(fx_write_file(cmd, "x", 1), 0);
	snprintf(cmd, sizeof(cmd), "touch -d '2 days ago' '%s/o-disk0.vmdk.part'", outside);
	assert_int_equal(system(cmd), 0);
	snprintf(link, sizeof(link), "%s/snapshots/2/13", x->mount[0]);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(sweep(x, 0, &st, &l), 0);
	snprintf(cmd, sizeof(cmd), "%s/o-disk0.vmdk.part", outside);
	assert_true(fx_exists(cmd));
	assert_int_equal(st.debris_removed, 0);
}

static void
test_journal_unknown_credentials(void **state)
{
	struct fx_env *x = *state;
	struct wrk_sweep_stats st;
	struct lines l;
	char p[512];

	mk(x, DIR1 "/u1~vcenter.part", 7200);
	snprintf(p, sizeof(p), "%s/" DIR1 "/u1~vcenter.part", x->mount[0]);
	/* The share is writable by others: a journal cannot send credentials anywhere. */
	{
		static const char j[] = "command=c\ncredentials=vc9\nurl=https://evil/sdk\n"
		    "vm=vm-1\nsnapshot=snapshot-2\n";
		assert_int_equal(fx_write_file(p, j, sizeof(j) - 1), 0);
	}
	mk(x, DIR1 "/u1-disk0.vmdk.part", 7200);
	{
		struct timeval tv[2];
		gettimeofday(&tv[0], NULL);
		tv[0].tv_sec -= 7200;
		tv[1] = tv[0];
		assert_int_equal(utimes(p, tv), 0);
	}
	assert_int_equal(sweep(x, 0, &st, &l), 0);
	assert_int_equal(st.journals_undone, 0);
	assert_true(st.errors >= 1);
	assert_true(l.said_journal);
	/* Kept, with its object's debris, as the only record of that snapshot. */
	assert_true(there(x, DIR1 "/u1~vcenter.part"));
	assert_true(there(x, DIR1 "/u1-disk0.vmdk.part"));
	assert_int_equal(st.debris_removed, 0);
}

/*
 * An old journal whose command lock is held: an attempt of that command runs
 * (a slow export, or a sweep run by hand with a small age), so its journal
 * and its vCenter work are left alone, in a dry run as in a real one.
 */
static void
test_running_command_left_alone(void **state)
{
	struct fx_env *x = *state;
	struct ova_lock lk = OVA_LOCK_INIT;
	struct wrk_sweep_stats st;
	struct lines l;
	struct sw_err e;
	char p[512];
	static const char j[] = "command=c1\ncredentials=vc9\nurl=https://evil/sdk\n"
	    "vm=vm-1\nsnapshot=snapshot-2\n";

	mk(x, ".snapworker/journal/c1.journal", 7200);
	snprintf(p, sizeof(p), "%s/.snapworker/journal/c1.journal", x->mount[0]);
	assert_int_equal(fx_write_file(p, j, sizeof(j) - 1), 0);
	{
		struct timeval tv[2];
		gettimeofday(&tv[0], NULL);
		tv[0].tv_sec -= 7200;
		tv[1] = tv[0];
		assert_int_equal(utimes(p, tv), 0);
	}
	assert_int_equal(ova_lock_acquire(&lk, x->mount[0], "c1", NULL, 0, NULL, NULL, &e), 0);
	assert_int_equal(sweep(x, 0, &st, &l), 0);
	assert_int_equal(st.journals_undone, 0);
	assert_int_equal(st.errors, 0);
	assert_non_null(strstr(l.last, "left alone: the command runs"));
	assert_true(there(x, ".snapworker/journal/c1.journal"));
	/* A try by someone else sees it held; once released the sweep may take it. */
	{
		struct ova_lock other = OVA_LOCK_INIT;
		assert_int_equal(ova_lock_try(&other, x->mount[0], "c1", &e), SW_EBUSY);
	}
	ova_lock_release(&lk);
	assert_int_equal(sweep(x, 0, &st, &l), 0);
	/* Not undone (the set is unknown: an error), but looked at. */
	assert_true(st.errors >= 1);
	assert_null(strstr(l.last, "left alone"));
	assert_true(there(x, ".snapworker/journal/c1.journal"));
}

static void
test_cancelled(void **state)
{
	struct fx_env *x = *state;
	struct wrk_sweep_opts o;
	struct wrk_sweep_stats st;
	atomic_int cancel = 1;
	struct sw_err e;

	mk(x, DIR1 "/u1-disk0.vmdk.part", 7200);
	memset(&o, 0, sizeof(o));
	o.max_age_s = 3600;
	assert_int_equal(wrk_sweep_run(&x->cfg, &o, &st, &cancel, &e), -ECANCELED);
	assert_true(there(x, DIR1 "/u1-disk0.vmdk.part"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_debris_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_unknown_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_command_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
