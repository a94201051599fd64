/* Unit tests for the per-command lock on the store (ovastore/lock.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/io.h"
#include "ovastore/lock.h"
#include "ovastore/state.h"

#define ID "0b0c2d4e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"

struct fx {
	char root[64];
	char lockpath[256];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/swlock.XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->lockpath, sizeof(f->lockpath), "%s/%s/%s.lock", f->root, OVA_LOCK_DIR, ID);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void
count_wait(void *ud)
{
	++*(int *)ud;
}

static void
test_acquire_release(void **state)
{
	struct fx *f = *state;
	struct ova_lock l = OVA_LOCK_INIT;
	struct stat st;
	int waits = 0;

	assert_int_equal(ova_lock_acquire(&l, f->root, ID, NULL, 0, count_wait, &waits, NULL), 0);
	assert_int_equal(waits, 0);
	assert_int_equal(stat(f->lockpath, &st), 0);
	ova_lock_release(&l);
	assert_int_equal(l.fd, -1);
	/* Released means removed: nothing accumulates on the share. */
	assert_int_equal(stat(f->lockpath, &st), -1);
	ova_lock_release(&l); /* twice is harmless */
	/* And it can be taken again. */
	assert_int_equal(ova_lock_acquire(&l, f->root, ID, NULL, 0, NULL, NULL, NULL), 0);
	ova_lock_release(&l);
}

static void
test_held_deadline_and_cancel(void **state)
{
	struct fx *f = *state;
	struct ova_lock a = OVA_LOCK_INIT, b = OVA_LOCK_INIT;
	struct sw_err e;
	atomic_int cancel = 0;
	uint64_t t0;
	int waits = 0;

	assert_int_equal(ova_lock_acquire(&a, f->root, ID, NULL, 0, NULL, NULL, NULL), 0);
	/* A second attempt (another open file description) waits until its deadline. */
	t0 = sw_mono_ms();
	assert_int_equal(ova_lock_acquire(&b, f->root, ID, NULL, t0 + 300, count_wait, &waits,
	    &e), -ETIMEDOUT);
	assert_true(sw_mono_ms() - t0 >= 300);
	assert_int_equal(waits, 1);
	assert_non_null(strstr(e.msg, "still runs"));
	assert_int_equal(b.fd, -1);
	/* ... or until it is cancelled. */
	cancel = 1;
	assert_int_equal(ova_lock_acquire(&b, f->root, ID, &cancel, 0, NULL, NULL, &e),
	    -ECANCELED);
	/* Another command's lock is independent. */
	assert_int_equal(ova_lock_acquire(&b, f->root, "1b0c2d4e-1f2a-4b3c-8d4e-5f6a7b8c9d0e",
	    NULL, 0, NULL, NULL, NULL), 0);
	ova_lock_release(&b);
	ova_lock_release(&a);
}

struct rel_arg {
	struct ova_lock *l;
	unsigned ms;
};

static void *
release_later(void *p)
{
	struct rel_arg *r = p;

	usleep(r->ms * 1000u);
	ova_lock_release(r->l);
	return NULL;
}

static void
test_waits_for_holder(void **state)
{
	struct fx *f = *state;
	struct ova_lock a = OVA_LOCK_INIT, b = OVA_LOCK_INIT;
	struct rel_arg r = { &a, 300 };
	struct stat st, fst;
	pthread_t t;
	int waits = 0;

	assert_int_equal(ova_lock_acquire(&a, f->root, ID, NULL, 0, NULL, NULL, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, release_later, &r), 0);
	/* B first meets A's file, A unlinks it; B must end up holding a linked file. */
	assert_int_equal(ova_lock_acquire(&b, f->root, ID, NULL, sw_mono_ms() + 10000,
	    count_wait, &waits, NULL), 1);
	pthread_join(t, NULL);
	assert_int_equal(waits, 1);
	assert_int_equal(stat(f->lockpath, &st), 0);
	assert_int_equal(fstat(b.fd, &fst), 0);
	assert_true(st.st_ino == fst.st_ino);
	ova_lock_release(&b);
}

/* Another process (another worker on the same share) holds it. */
static void
test_other_process(void **state)
{
	struct fx *f = *state;
	struct ova_lock l = OVA_LOCK_INIT;
	int p[2], status, waits = 0;
	char c;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ova_lock cl = OVA_LOCK_INIT;
		int rc = ova_lock_acquire(&cl, f->root, ID, NULL, 0, NULL, NULL, NULL);

		(void)!write(p[1], rc == 0 ? "y" : "n", 1);
		usleep(400000);
		ova_lock_release(&cl);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	assert_int_equal(ova_lock_acquire(&l, f->root, ID, NULL, sw_mono_ms() + 10000,
	    count_wait, &waits, NULL), 1);
	assert_int_equal(waits, 1);
	ova_lock_release(&l);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(p[0]);

	/* A holder killed outright leaves its file behind but not its lock. */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ova_lock cl = OVA_LOCK_INIT;

		(void)ova_lock_acquire(&cl, f->root, ID, NULL, 0, NULL, NULL, NULL);
		(void)!write(p[1], "y", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(p[0]);
	waits = 0;
	assert_int_equal(ova_lock_acquire(&l, f->root, ID, NULL, sw_mono_ms() + 2000,
	    count_wait, &waits, NULL), 0);
	assert_int_equal(waits, 0);
	ova_lock_release(&l);
}

static void
test_bad_input(void **state)
{
	struct fx *f = *state;
	struct ova_lock l = OVA_LOCK_INIT;
	char path[128];
	int fd;

	assert_true(ova_lock_acquire(&l, f->root, "../x", NULL, 0, NULL, NULL, NULL) < 0);
	assert_true(ova_lock_acquire(&l, f->root, "a/b", NULL, 0, NULL, NULL, NULL) < 0);
	assert_true(ova_lock_acquire(&l, "/nonexistent/snapworker", ID, NULL, 0, NULL, NULL,
	    NULL) < 0);
	assert_int_equal(l.fd, -1);
	assert_int_equal(l.dirfd, -1);
	/* A symbolic link in place of the lock directory is not followed. */
	snprintf(path, sizeof(path), "%s/.snapworker", f->root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/.snapworker/running", f->root);
	assert_int_equal(symlink("/tmp", path), 0);
	assert_true(ova_lock_acquire(&l, f->root, ID, NULL, 0, NULL, NULL, NULL) < 0);
	assert_int_equal(unlink(path), 0);
	/* Nor one in place of the lock file. */
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(symlink("/tmp/swlock-nowhere", f->lockpath), 0);
	assert_true(ova_lock_acquire(&l, f->root, ID, NULL, 0, NULL, NULL, NULL) < 0);
	fd = open("/tmp/swlock-nowhere", O_RDONLY);
	assert_int_equal(fd, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acquire_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_deadline_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_for_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	};

	return cmocka_run_group_tests_name("ovastore_lock", tests, NULL, NULL);
}
