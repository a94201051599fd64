/*
 * Unit tests for the store health probe (ovastore/probe.h) and its monitor
 * (worker/storehealth.h).  Failure injection at the system-call boundary:
 * statx can be made to hang (a hard NFS mount whose server is gone) and
 * openat to fail with a chosen errno for the probe's scratch file.
 */
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
#include <unistd.h>

#include "common/buf.h"
#include "common/io.h"
#include "ovastore/probe.h"
#include "ovastore/state.h"
#include "worker/metrics.h"
#include "worker/storehealth.h"

/* ------------------------------------------------------------- injection */

static pthread_mutex_t hang_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static int hang;                /* statx blocks while set */
static int hung;                /* calls blocked right now */
static int open_errno;          /* openat of a probe.* file fails with this */

int __real_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st);
int __wrap_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st);
int __real_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...);

int
__wrap_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	pthread_mutex_lock(&hang_mu);
	if (hang) {
		hung++;
		while (hang)
			pthread_cond_wait(&hang_cv, &hang_mu);
		hung--;
	}
	pthread_mutex_unlock(&hang_mu);
	return __real_statx(dirfd, path, flags, mask, st);
}

int
__wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (open_errno != 0 && strncmp(path, "probe.", 6) == 0) {
		errno = open_errno;
		return -1;
	}
	return __real_openat(dirfd, path, flags, mode);
}

static void
set_hang(int on)
{
	pthread_mutex_lock(&hang_mu);
	hang = on;
	pthread_cond_broadcast(&hang_cv);
	pthread_mutex_unlock(&hang_mu);
}

/* Waits until no probe thread is blocked in statx (the abandoned ones returned). */
static void
wait_unhung(void)
{
	int i, n = 1;

	for (i = 0; i < 200 && n > 0; i++) {
		pthread_mutex_lock(&hang_mu);
		n = hung;
		pthread_mutex_unlock(&hang_mu);
		if (n > 0)
			usleep(10000);
	}
	usleep(50000);          /* let the released thread finish and free its probe */
}

/* --------------------------------------------------------------- fixture */

struct fx {
	char root[64];
	char mnt[96];
	struct wrk_store st[2];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	(void)snprintf(f->root, sizeof(f->root), "/tmp/swhealth.XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	(void)snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->root);
	if (mkdir(f->mnt, 0755) < 0)
		return -1;
	f->st[0].url = "nfs://10.0.0.5/export/a";
	f->st[0].mount = f->mnt;
	f->st[1].url = "nfs://10.0.0.5/export/b";
	f->st[1].mount = f->root;
	open_errno = 0;
	set_hang(0);
	wrk_metrics_reset();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	set_hang(0);
	wait_unhung();
	(void)snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", f->root, f->root);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ------------------------------------------------------------ the probe */

static void
test_probe_healthy_dir(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	int is_mount = -1;
	char probe_dir[160], cmd[200];
	struct stat sb;
	int fd;

	assert_int_equal(wrk_storehealth_probe(f->mnt, 0, 2000, &is_mount, &e), 0);
	/* A directory in /tmp is not the root of a mount. */
	assert_int_equal(is_mount, 0);
	/* The scratch file is gone; its directory stays, beside the worker's other records. */
	(void)snprintf(probe_dir, sizeof(probe_dir), "%s/%s", f->mnt, OVA_PROBE_DIR);
	assert_int_equal(stat(probe_dir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	(void)snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", probe_dir);
	assert_int_equal(system(cmd), 0);
	/* /proc is the root of a mount, in a chroot too (where "/" may be a plain directory). */
	fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ova_is_mount_root(fd, &e), 1);
	close(fd);
}

static void
test_probe_missing(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	char gone[128];

	(void)snprintf(gone, sizeof(gone), "%s/absent", f->root);
	assert_int_equal(wrk_storehealth_probe(gone, 0, 2000, NULL, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "absent"));
	assert_non_null(strstr(e.msg, "No such file"));
}

/* A mount required, and the directory is on its parent's file system: a missing mount. */
static void
test_probe_not_a_mount(void **state)
{
	struct fx *f = *state;
	struct sw_err e;

	assert_int_equal(wrk_storehealth_probe(f->mnt, 1, 2000, NULL, &e), SW_ENOTFOUND);
	assert_non_null(strstr(e.msg, "not a mount point"));
}

static void
test_probe_unwritable(void **state)
{
	struct fx *f = *state;
	struct sw_err e;

	open_errno = EROFS;
	assert_int_equal(wrk_storehealth_probe(f->mnt, 0, 2000, NULL, &e), -EROFS);
	assert_non_null(strstr(e.msg, "creating .snapworker/probe/probe."));
	assert_non_null(strstr(e.msg, "Read-only file system"));
	open_errno = 0;
	if (geteuid() != 0) {
		/* Without root's override, permission bits alone make it unwritable. */
		char dir[160];

		(void)snprintf(dir, sizeof(dir), "%s/%s", f->mnt, OVA_PROBE_DIR);
		assert_int_equal(chmod(dir, 0555), 0);
		assert_int_equal(wrk_storehealth_probe(f->mnt, 0, 2000, NULL, &e), -EACCES);
	}
}

/* A probe that hangs is reported after the timeout, and the caller is not held. */
static void
test_probe_hangs(void **state)
{
	struct fx *f = *state;
	struct sw_err e;
	uint64_t t0;

	set_hang(1);
	t0 = sw_mono_ms();
	assert_int_equal(wrk_storehealth_probe(f->mnt, 0, 300, NULL, &e), -ETIMEDOUT);
	assert_true(sw_mono_ms() - t0 < 1500);
	assert_non_null(strstr(e.msg, "no answer"));
	set_hang(0);
	wait_unhung();
}

/* ---------------------------------------------------------- the monitor */

static int
wait_all(struct wrk_storehealth *sh, int want, unsigned ms)
{
	uint64_t end = sw_mono_ms() + ms;

	while (sw_mono_ms() < end) {
		if (wrk_storehealth_all_healthy(sh) == want)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int
metric_has(const char *line)
{
	struct sw_buf b;
	struct sw_err e;
	int found;

	sw_buf_init(&b, WRK_METRICS_RENDER_MAX);
	assert_int_equal(wrk_metrics_render(&b, &e), 0);
	found = strstr(b.ptr, line) != NULL;
	sw_buf_free(&b);
	return found;
}

static void
test_monitor_transitions(void **state)
{
	struct fx *f = *state;
	struct wrk_storehealth_opts o = { .interval_ms = 100, .timeout_ms = 400,
	    .require_mount = WRK_MOUNT_NOT_REQUIRED };
	struct wrk_storehealth *sh = NULL;
	struct sw_err e;
	char moved[128], why[WRK_STOREHEALTH_REASON_MAX];
	uint64_t t0;

	assert_int_equal(wrk_storehealth_start(f->st, 2, &o, &sh, &e), 0);
	assert_true(wait_all(sh, 1, 3000));
	assert_int_equal(wrk_storehealth_sick(sh, f->st[0].url, NULL, 0), 0);
	assert_int_equal(wrk_storehealth_sick(sh, "nfs://elsewhere/x", NULL, 0), -1);
	assert_true(metric_has("snapworker_store_healthy{store=\"nfs://10.0.0.5/export/a\"} 1\n"));

	/* The mount point goes away: sick within a round, with the reason; the other store is fine. */
	(void)snprintf(moved, sizeof(moved), "%s/moved", f->root);
	assert_int_equal(rename(f->mnt, moved), 0);
	assert_true(wait_all(sh, 0, 2000));
	assert_int_equal(wrk_storehealth_sick(sh, f->st[0].url, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "No such file"));
	assert_int_equal(wrk_storehealth_sick(sh, f->st[1].url, NULL, 0), 0);
	assert_true(metric_has("snapworker_store_healthy{store=\"nfs://10.0.0.5/export/a\"} 0\n"));
	assert_true(metric_has("snapworker_store_healthy{store=\"nfs://10.0.0.5/export/b\"} 1\n"));
	assert_int_equal(wrk_storehealth_confirm_sick(sh, f->st[0].url), 1);
	assert_int_equal(wrk_storehealth_confirm_sick(sh, f->st[1].url), 0);

	/* Back: healthy again. */
	assert_int_equal(rename(moved, f->mnt), 0);
	assert_true(wait_all(sh, 1, 2000));
	assert_true(metric_has("snapworker_store_healthy{store=\"nfs://10.0.0.5/export/a\"} 1\n"));

	/* Every call hangs: sick after the timeout, and nobody who asks is held. */
	set_hang(1);
	t0 = sw_mono_ms();
	assert_true(wait_all(sh, 0, 3000));
	assert_true(sw_mono_ms() - t0 < 2500);
	assert_int_equal(wrk_storehealth_sick(sh, f->st[0].url, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "no answer"));
	t0 = sw_mono_ms();
	assert_int_equal(wrk_storehealth_confirm_sick(sh, f->st[0].url), 1);
	assert_true(sw_mono_ms() - t0 < 2000);
	/* Hung probes are not piled up: at most one per store. */
	usleep(600000);
	pthread_mutex_lock(&hang_mu);
	assert_true(hung <= 2);
	pthread_mutex_unlock(&hang_mu);
	/* The server answers again. */
	set_hang(0);
	assert_true(wait_all(sh, 1, 3000));
	wrk_storehealth_stop(sh);
	wait_unhung();
}

/* auto: a store seen mounted must stay mounted; a plain directory is only read and written. */
static void
test_monitor_auto_plain_dir(void **state)
{
	struct fx *f = *state;
	struct wrk_storehealth_opts o = { .interval_ms = 100, .timeout_ms = 400,
	    .require_mount = WRK_MOUNT_AUTO };
	struct wrk_storehealth *sh = NULL;
	struct sw_err e;

	assert_int_equal(wrk_storehealth_start(f->st, 1, &o, &sh, &e), 0);
	assert_true(wait_all(sh, 1, 3000));
	wrk_storehealth_stop(sh);
	/* Required: the same directory is sick. */
	o.require_mount = WRK_MOUNT_REQUIRED;
	assert_int_equal(wrk_storehealth_start(f->st, 1, &o, &sh, &e), 0);
	assert_true(wait_all(sh, 0, 3000));
	assert_true(wrk_storehealth_confirm_sick(sh, f->st[0].url));
	wrk_storehealth_stop(sh);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe_healthy_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_not_a_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_hangs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_auto_plain_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
