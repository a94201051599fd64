/* Unit tests for CloudStack's directory layout on a store (ovastore/layout.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "common/path.h"
#include "ovastore/layout.h"

#define UUID "c1d2e3f4-a5b6-4789-8abc-def012345678"

static void
test_paths(void **state)
{
	char out[SW_PATH_MAX];
	struct sw_err e;

	(void)state;
	assert_int_equal(ova_layout_snapshot(2, 17, UUID, out, sizeof(out), &e), 0);
	assert_string_equal(out, "snapshots/2/17/" UUID "/" UUID);
	assert_int_equal(ova_layout_template_dir(2, 203, out, sizeof(out), &e), 0);
	assert_string_equal(out, "template/tmpl/2/203");
	assert_int_equal(ova_layout_template(2, 203, UUID, out, sizeof(out), &e), 0);
	assert_string_equal(out, "template/tmpl/2/203/" UUID);
	assert_int_equal(ova_layout_volume(2, 17, UUID, out, sizeof(out), &e), 0);
	assert_string_equal(out, "volumes/2/17/" UUID "/" UUID);
	/* The largest ids print in full. */
	assert_int_equal(ova_layout_template_dir(INT64_MAX, INT64_MAX, out, sizeof(out), &e), 0);
	assert_string_equal(out, "template/tmpl/9223372036854775807/9223372036854775807");
}

static void
test_ids(void **state)
{
	char out[64] = "untouched";
	struct sw_err e;

	(void)state;
	assert_int_equal(ova_layout_snapshot(0, 17, UUID, out, sizeof(out), &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "account"));
	assert_int_equal(ova_layout_snapshot(2, -1, UUID, out, sizeof(out), &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "volume"));
	assert_int_equal(ova_layout_template_dir(2, 0, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_layout_template(-2, 3, UUID, out, sizeof(out), &e), SW_EFORMAT);
	assert_int_equal(ova_layout_volume(INT64_MIN, 3, UUID, out, sizeof(out), NULL), SW_EFORMAT);
	assert_string_equal(out, "untouched");
}

static void
test_names(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "a/b", "../x", "/abs", "tab\there", "back\\slash", NULL,
	};
	char out[64] = "untouched", longname[SW_NAME_MAX + 2];
	struct sw_err e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ova_layout_snapshot(1, 1, bad[i], out, sizeof(out), &e), SW_EPATH);
		assert_int_equal(ova_layout_template(1, 1, bad[i], out, sizeof(out), &e), SW_EPATH);
		assert_int_equal(ova_layout_volume(1, 1, bad[i], out, sizeof(out), &e), SW_EPATH);
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(ova_layout_volume(1, 1, longname, out, sizeof(out), &e), SW_EPATH);
	assert_string_equal(out, "untouched");
}

static void
test_bounds(void **state)
{
	/* "volumes/1/1/" + UUID + "/" + UUID: 12 + 36 + 1 + 36 = 85 bytes. */
	char out[86], small[85];
	struct sw_err e;

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(ova_layout_volume(1, 1, UUID, out, sizeof(out), &e), 0);
	assert_int_equal(strlen(out), 85);
	assert_int_equal(ova_layout_volume(1, 1, UUID, small, sizeof(small), &e), SW_EPATH);
	assert_int_equal(small[0], 'x');
	assert_int_equal(ova_layout_template_dir(1, 1, small, 0, &e), SW_EPATH);
	assert_int_equal(ova_layout_template_dir(1, 1, small, 16, &e), SW_EPATH);
	assert_int_equal(ova_layout_template_dir(1, 1, small, 18, &e), 0);
	assert_string_equal(small, "template/tmpl/1/1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests_name("ovastore_layout", tests, NULL, NULL);
}
