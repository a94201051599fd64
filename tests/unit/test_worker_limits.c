/*
 * Unit tests for worker/limits: the token queue names (bounded, one name per
 * resource and slot, any datastore name), the global order in which tokens
 * are taken, and that no limit means no broker traffic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker/config.h"
#include "worker/limits.h"

static void
test_queue_names(void **state)
{
	char q[WRK_LIMITS_QNAME_MAX], q2[WRK_LIMITS_QNAME_MAX], name[WRK_LIMIT_NAME_MAX + 1];

	(void)state;
	assert_int_equal(wrk_limits_queue_name("snapworker.limit", WRK_LIMIT_DATASTORE, "LocalDS_0",
	    1, q, sizeof(q)), 0);
	assert_string_equal(q, "snapworker.limit.datastore.LocalDS_0.1");
	assert_int_equal(wrk_limits_queue_name("p", WRK_LIMIT_VCENTER, "vc.example.org:443", 12, q,
	    sizeof(q)), 0);
	assert_string_equal(q, "p.vcenter.vc%2Eexample%2Eorg%3A443.12");
	assert_int_equal(wrk_limits_queue_name("p", WRK_LIMIT_HOST, "host-21", 2, q, sizeof(q)), 0);
	assert_string_equal(q, "p.host.host-21.2");
	/* Blanks, parentheses, dots and UTF-8: encoded, so no two names meet in one queue. */
	assert_int_equal(wrk_limits_queue_name("p", WRK_LIMIT_DATASTORE, "datastore1 (2)", 1, q,
	    sizeof(q)), 0);
	assert_string_equal(q, "p.datastore.datastore1%20%282%29.1");
	assert_int_equal(wrk_limits_queue_name("p", WRK_LIMIT_DATASTORE, "a.1", 1, q, sizeof(q)), 0);
	assert_int_equal(wrk_limits_queue_name("p", WRK_LIMIT_DATASTORE, "a", 11, q2, sizeof(q2)), 0);
	assert_string_not_equal(q, q2);
	assert_int_equal(wrk_limits_queue_name("p", WRK_LIMIT_DATASTORE, "d\xc3\xa9", 1, q,
	    sizeof(q)), 0);
	assert_string_equal(q, "p.datastore.d%C3%A9.1");
	/* A name whose encoding would pass 255 bytes: its digest, still within the bound. */
	memset(name, '%', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(wrk_limits_queue_name("snapworker.limit", WRK_LIMIT_DATASTORE, name, 64, q,
	    sizeof(q)), 0);
	assert_true(strlen(q) <= 255);
	assert_non_null(strstr(q, ".datastore.~"));
	name[0] = '#';
	assert_int_equal(wrk_limits_queue_name("snapworker.limit", WRK_LIMIT_DATASTORE, name, 64, q2,
	    sizeof(q2)), 0);
	assert_string_not_equal(q, q2);
	/* Bad arguments and a buffer too small. */
	assert_true(wrk_limits_queue_name("p", 7, "x", 1, q, sizeof(q)) < 0);
	assert_true(wrk_limits_queue_name("p", WRK_LIMIT_HOST, NULL, 1, q, sizeof(q)) < 0);
	assert_true(wrk_limits_queue_name("p", WRK_LIMIT_HOST, "host-1", 1, q, 8) < 0);
}

static void
test_order(void **state)
{
	struct wrk_limit_key k[6];

	(void)state;
	memset(k, 0, sizeof(k));
	k[0].kind = WRK_LIMIT_DATASTORE;
	strcpy(k[0].name, "ds2");
	k[1].kind = WRK_LIMIT_HOST;
	strcpy(k[1].name, "host-9");
	k[2].kind = WRK_LIMIT_DATASTORE;
	strcpy(k[2].name, "ds1");
	k[3].kind = WRK_LIMIT_VCENTER;
	strcpy(k[3].name, "vc1");
	k[4].kind = WRK_LIMIT_DATASTORE;
	strcpy(k[4].name, "ds2");      /* the chain's two files on one datastore: one token */
	k[5].kind = WRK_LIMIT_DATASTORE;
	strcpy(k[5].name, "ds1");
	/* vcenter, host, then datastores by name, each once. */
	assert_int_equal(wrk_limits_order(k, 6), 4);
	assert_int_equal(k[0].kind, WRK_LIMIT_VCENTER);
	assert_int_equal(k[1].kind, WRK_LIMIT_HOST);
	assert_int_equal(k[2].kind, WRK_LIMIT_DATASTORE);
	assert_string_equal(k[2].name, "ds1");
	assert_string_equal(k[3].name, "ds2");
	assert_int_equal(wrk_limits_order(k, 0), 0);
}

/* No limits object (none configured): nothing held, nothing asked of any broker. */
static void
test_no_limits(void **state)
{
	struct wrk_limit_key k;
	struct wrk_limits_hold hold;
	struct sw_err e;
	char busy[64] = "x";

	(void)state;
	memset(&k, 0, sizeof(k));
	k.kind = WRK_LIMIT_DATASTORE;
	strcpy(k.name, "ds1");
	assert_int_equal(wrk_limits_take(NULL, &k, 1, &hold, busy, sizeof(busy), &e), 0);
	assert_int_equal(hold.n, 0);
	assert_string_equal(busy, "");
	wrk_limits_release(NULL, &hold);
	assert_string_equal(wrk_limit_kind_name(WRK_LIMIT_VCENTER), "vcenter");
	assert_string_equal(wrk_limit_kind_name(WRK_LIMIT_HOST), "host");
	assert_string_equal(wrk_limit_kind_name(WRK_LIMIT_DATASTORE), "datastore");
	assert_null(wrk_limit_kind_name(WRK_LIMIT_KINDS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_names),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_no_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
