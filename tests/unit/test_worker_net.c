/* Unit tests for worker/net: the network-list parser of [download] allow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "worker/net.h"

static void
test_net_parse(void **state)
{
	struct wrk_net n;
	struct sw_err e;

	(void)state;
	assert_int_equal(wrk_net_parse("127.0.0.0/8", &n, &e), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 8);
	assert_int_equal(n.addr[0], 127);
	/* Host bits are cleared. */
	assert_int_equal(wrk_net_parse("10.1.2.3/8", &n, &e), 0);
	assert_int_equal(n.addr[1], 0);
	assert_int_equal(n.addr[3], 0);
	assert_int_equal(wrk_net_parse("192.168.1.77", &n, &e), 0);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(n.addr[3], 77);
	assert_int_equal(wrk_net_parse("fd00::/8", &n, &e), 0);
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.prefix, 8);
	assert_int_equal(wrk_net_parse("::1", &n, &e), 0);
	assert_int_equal(n.prefix, 128);
	n.prefix = 99;
	assert_int_equal(wrk_net_parse("10.0.0.0/33", &n, &e), -EINVAL);
	assert_int_equal(n.prefix, 99);   /* untouched on failure */
	assert_int_equal(wrk_net_parse("10.0.0.0/", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse("10.0.0.0/-1", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse("::/129", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse("example.org/8", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse("", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse("/8", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse("1.2.3.4 /8", &n, &e), -EINVAL);
}

static void
test_net_host_bits(void **state)
{
	struct wrk_net n;
	struct sw_err e;

	(void)state;
	/* The rule of net.h: host bits are accepted and cleared, for both families. */
	assert_int_equal(wrk_net_parse("10.1.2.3/8", &n, &e), 0);
	assert_int_equal(n.prefix, 8);
	assert_int_equal(n.addr[0], 10);
	assert_int_equal(n.addr[1] | n.addr[2] | n.addr[3], 0);
	assert_int_equal(wrk_net_parse("192.168.255.255/20", &n, &e), 0);
	assert_int_equal(n.addr[2], 0xf0);
	assert_int_equal(n.addr[3], 0);
	assert_int_equal(wrk_net_parse("fd12:3456::1/16", &n, &e), 0);
	assert_int_equal(n.addr[0], 0xfd);
	assert_int_equal(n.addr[1], 0x12);
	assert_int_equal(n.addr[2] | n.addr[3] | n.addr[15], 0);
	assert_int_equal(wrk_net_parse("1.2.3.4/0", &n, &e), 0);
	assert_int_equal(n.addr[0] | n.addr[1] | n.addr[2] | n.addr[3], 0);
	/* A full-length prefix keeps every bit. */
	assert_int_equal(wrk_net_parse("10.1.2.3/32", &n, &e), 0);
	assert_int_equal(n.addr[3], 3);
	/* Trailing garbage after the prefix is refused, with the input quoted. */
	assert_int_equal(wrk_net_parse("10.0.0.0/8x", &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "10.0.0.0/8x"));
	assert_int_equal(wrk_net_parse("10.0.0.0/8/8", &n, &e), -EINVAL);
	assert_int_equal(wrk_net_parse(NULL, &n, &e), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_net_host_bits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
