/* The lock scope of a store's mount, decided from mountinfo text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ovastore/mountinfo.h"

static const char MI[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "30 22 0:26 / /mnt/sec1 rw,relatime shared:9 - nfs4 10.0.0.5:/export/secondary "
        "rw,vers=4.2,rsize=1048576,hard,proto=tcp,sec=sys,local_lock=none,addr=10.0.0.5\n"
    "31 22 0:27 / /mnt/sec2 rw,relatime shared:10 - nfs 10.0.0.6:/export "
        "rw,vers=3,hard,nolock,proto=tcp,mountaddr=10.0.0.6,local_lock=all,addr=10.0.0.6\n"
    "32 22 0:28 / /mnt/sec3 rw,relatime - nfs 10.0.0.7:/export rw,vers=3,local_lock=posix\n"
    "33 22 0:29 / /mnt/sec\\0404 rw - nfs 10.0.0.8:/e rw,vers=3,local_lock=none\n"
    "34 22 0:30 / /mnt/fuse rw - fuse.sshfs host:/ rw,user_id=0\n"
    "35 22 0:31 / /mnt/cifs rw - cifs //h/s rw,vers=3.0,nobrl\n"
    "36 30 0:32 / /mnt/sec1/inner rw - tmpfs tmpfs rw\n"
    /* A later mount on the same point hides the earlier one. */
    "37 22 0:33 / /mnt/stack rw - nfs h:/a rw,nolock\n"
    "38 22 0:34 / /mnt/stack rw - nfs4 h:/b rw,vers=4.1\n";

static enum ova_lock_scope
scope(const char *path, char *why, size_t whysz)
{
	enum ova_lock_scope s = (enum ova_lock_scope)-1;
	struct sw_err e;

	assert_int_equal(ova_lock_scope_parse(MI, strlen(MI), path, &s, why, whysz, &e), 0);
	return s;
}

static void
test_scopes(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(scope("/srv/store", why, sizeof(why)), OVA_LOCKS_SHARED);
	assert_string_equal(why, "ext4 mount /");
	assert_int_equal(scope("/mnt/sec1", why, sizeof(why)), OVA_LOCKS_SHARED);
	assert_string_equal(why, "nfs4 mount /mnt/sec1");
	assert_int_equal(scope("/mnt/sec1/x/y", why, sizeof(why)), OVA_LOCKS_SHARED);
	/* nolock (NFSv3 without lockd) and local locks: host-local. */
	assert_int_equal(scope("/mnt/sec2/a", why, sizeof(why)), OVA_LOCKS_HOST);
	assert_string_equal(why, "nfs mount /mnt/sec2 with nolock");
	assert_int_equal(scope("/mnt/sec3", why, sizeof(why)), OVA_LOCKS_HOST);
	assert_string_equal(why, "nfs mount /mnt/sec3 with local_lock=posix");
	/* An escaped space in a mount point; local_lock=none is shared. */
	assert_int_equal(scope("/mnt/sec 4/b", why, sizeof(why)), OVA_LOCKS_SHARED);
	assert_string_equal(why, "nfs mount /mnt/sec 4");
	assert_int_equal(scope("/mnt/fuse", why, sizeof(why)), OVA_LOCKS_HOST);
	assert_int_equal(scope("/mnt/cifs/q", why, sizeof(why)), OVA_LOCKS_HOST);
	/* The longest mount point wins; a name prefix is not a path prefix. */
	assert_int_equal(scope("/mnt/sec1/inner/z", why, sizeof(why)), OVA_LOCKS_SHARED);
	assert_string_equal(why, "tmpfs mount /mnt/sec1/inner");
	assert_int_equal(scope("/mnt/sec22", why, sizeof(why)), OVA_LOCKS_SHARED);
	assert_string_equal(why, "ext4 mount /");
	assert_int_equal(scope("/mnt/stack", why, sizeof(why)), OVA_LOCKS_SHARED);
	assert_string_equal(why, "nfs4 mount /mnt/stack");
	/* why may be NULL or short. */
	assert_int_equal(scope("/mnt/sec2", NULL, 0), OVA_LOCKS_HOST);
	assert_int_equal(scope("/mnt/sec2", why, 4), OVA_LOCKS_HOST);
	assert_string_equal(why, "nfs");
}

static void
test_errors(void **state)
{
	enum ova_lock_scope s = OVA_LOCKS_SHARED;
	struct sw_err e;
	const char *bad = "22 1 8:1 / / rw,relatime shared:1 ext4 /dev/sda1 rw\n";   /* no "-" */
	const char *none = "30 22 0:26 / /mnt/a rw - nfs4 h:/x rw\n";

	(void)state;
	assert_int_equal(ova_lock_scope_parse(bad, strlen(bad), "/x", &s, NULL, 0, &e), SW_EFORMAT);
	assert_string_equal(e.msg, "mountinfo: line 1 is malformed");
	assert_int_equal(ova_lock_scope_parse(none, strlen(none), "/mnt/b", &s, NULL, 0, &e),
	    SW_ENOTFOUND);
	assert_int_equal(ova_lock_scope_parse(none, strlen(none), "rel", &s, NULL, 0, &e), SW_EPATH);
	/* An embedded NUL is malformed, not a shorter line. */
	assert_int_equal(ova_lock_scope_parse("30 22 0:26 / /\0 rw - nfs h rw\n", 31, "/", &s,
	    NULL, 0, &e), SW_EFORMAT);
	assert_int_equal(s, OVA_LOCKS_SHARED);   /* untouched on failure */
}

/*
 * This process's own mountinfo.  /proc is a mount of its own, in a chroot too
 * (where "/" may be a plain directory that no line of mountinfo covers).
 */
static void
test_live(void **state)
{
	enum ova_lock_scope s = (enum ova_lock_scope)-1;
	struct sw_err e;
	char why[256];

	(void)state;
	assert_int_equal(ova_lock_scope("/proc/self", &s, why, sizeof(why), &e), 0);
	assert_int_equal(s, OVA_LOCKS_SHARED);
	assert_string_equal(why, "proc mount /proc");
	assert_true(ova_lock_scope("/nonexistent/dir", &s, why, sizeof(why), &e) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
