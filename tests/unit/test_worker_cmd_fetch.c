/*
 * Unit tests for RegisterTemplate's fetcher (worker/commands/fetch.h): the
 * address policy as a pure function, and downloads from an in-process HTTP
 * server on 127.0.0.1 (and 127.0.0.2 for a second, "internal" host).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io.h"
#include "worker/commands/fetch.h"
#include "tests/fixtures/commands/httpd.h"

static enum wrk_addr_class
cls(const char *a)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;

	memset(&in, 0, sizeof(in));
	memset(&in6, 0, sizeof(in6));
	if (inet_pton(AF_INET, a, &in.sin_addr) == 1) {
		in.sin_family = AF_INET;
		return wrk_fetch_addr_class((struct sockaddr *)&in, sizeof(in));
	}
	if (inet_pton(AF_INET6, a, &in6.sin6_addr) != 1)
		fail_msg("bad test address %s", a);
	in6.sin6_family = AF_INET6;
	return wrk_fetch_addr_class((struct sockaddr *)&in6, sizeof(in6));
}

static int
allowed(const char *a, const struct wrk_net *nets, size_t n)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;

	memset(&in, 0, sizeof(in));
	memset(&in6, 0, sizeof(in6));
	if (inet_pton(AF_INET, a, &in.sin_addr) == 1) {
		in.sin_family = AF_INET;
		return wrk_fetch_addr_allowed((struct sockaddr *)&in, sizeof(in), nets, n, NULL);
	}
	if (inet_pton(AF_INET6, a, &in6.sin6_addr) != 1)
		fail_msg("bad test address %s", a);
	in6.sin6_family = AF_INET6;
	return wrk_fetch_addr_allowed((struct sockaddr *)&in6, sizeof(in6), nets, n, NULL);
}

static void
test_addr_class_v4(void **state)
{
	(void)state;
	assert_int_equal(cls("0.0.0.0"), WRK_ADDR_UNSPECIFIED);
	assert_int_equal(cls("0.1.2.3"), WRK_ADDR_UNSPECIFIED);
	assert_int_equal(cls("127.0.0.1"), WRK_ADDR_LOOPBACK);
	assert_int_equal(cls("127.255.255.254"), WRK_ADDR_LOOPBACK);
	assert_int_equal(cls("10.0.0.5"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("172.16.0.1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("172.31.255.255"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("172.32.0.1"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("172.15.255.255"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("192.168.1.1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("192.169.1.1"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("100.64.0.1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("100.128.0.1"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("169.254.169.254"), WRK_ADDR_LINKLOCAL);
	assert_int_equal(cls("224.0.0.1"), WRK_ADDR_MULTICAST);
	assert_int_equal(cls("239.255.255.250"), WRK_ADDR_MULTICAST);
	assert_int_equal(cls("240.0.0.1"), WRK_ADDR_RESERVED);
	assert_int_equal(cls("255.255.255.255"), WRK_ADDR_RESERVED);
	assert_int_equal(cls("192.0.2.7"), WRK_ADDR_RESERVED);
	assert_int_equal(cls("198.18.0.1"), WRK_ADDR_RESERVED);
	assert_int_equal(cls("8.8.8.8"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("1.1.1.1"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("11.0.0.1"), WRK_ADDR_PUBLIC);
}

static void
test_addr_class_v6(void **state)
{
	struct sockaddr_un_like { unsigned short fam; char x[30]; } other;

	(void)state;
	assert_int_equal(cls("::"), WRK_ADDR_UNSPECIFIED);
	assert_int_equal(cls("::1"), WRK_ADDR_LOOPBACK);
	assert_int_equal(cls("fe80::1"), WRK_ADDR_LINKLOCAL);
	assert_int_equal(cls("febf::1"), WRK_ADDR_LINKLOCAL);
	assert_int_equal(cls("fec0::1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("fc00::1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("fd12:3456::1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("ff02::1"), WRK_ADDR_MULTICAST);
	assert_int_equal(cls("2001:db8::1"), WRK_ADDR_RESERVED);
	assert_int_equal(cls("::7f00:1"), WRK_ADDR_RESERVED);
	/* Forms that embed an IPv4 address are judged by it. */
	assert_int_equal(cls("::ffff:127.0.0.1"), WRK_ADDR_LOOPBACK);
	assert_int_equal(cls("::ffff:10.1.2.3"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("::ffff:8.8.8.8"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("64:ff9b::a9fe:a9fe"), WRK_ADDR_LINKLOCAL);
	assert_int_equal(cls("64:ff9b::808:808"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("2002:c0a8:0101::1"), WRK_ADDR_PRIVATE);
	assert_int_equal(cls("2002:0808:0808::1"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("2606:4700:4700::1111"), WRK_ADDR_PUBLIC);
	assert_int_equal(cls("2a00:1450::1"), WRK_ADDR_PUBLIC);
	/* Another family, a short length: never public. */
	memset(&other, 0, sizeof(other));
	other.fam = AF_UNIX;
	assert_int_equal(wrk_fetch_addr_class((struct sockaddr *)&other, sizeof(other)),
	    WRK_ADDR_RESERVED);
	assert_int_equal(wrk_fetch_addr_class(NULL, 0), WRK_ADDR_RESERVED);
	{
		struct sockaddr_in in;
		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		inet_pton(AF_INET, "8.8.8.8", &in.sin_addr);
		assert_int_equal(wrk_fetch_addr_class((struct sockaddr *)&in, 4), WRK_ADDR_RESERVED);
	}
}

static void
test_addr_allowed(void **state)
{
	struct wrk_net nets[3];
	enum wrk_addr_class c = WRK_ADDR_PUBLIC;
	struct sockaddr_in in;

	(void)state;
	assert_int_equal(wrk_net_parse("127.0.0.1/32", &nets[0], NULL), 0);
	assert_int_equal(wrk_net_parse("10.20.0.0/14", &nets[1], NULL), 0);
	assert_int_equal(wrk_net_parse("fd00:1::/32", &nets[2], NULL), 0);
	/* No allow list: every internal address is refused, public ones pass. */
	assert_false(allowed("127.0.0.1", NULL, 0));
	assert_false(allowed("169.254.169.254", NULL, 0));
	assert_false(allowed("::1", NULL, 0));
	assert_false(allowed("::ffff:127.0.0.1", NULL, 0));
	assert_true(allowed("8.8.8.8", NULL, 0));
	assert_true(allowed("2a00:1450::1", NULL, 0));
	/* With one. */
	assert_true(allowed("127.0.0.1", nets, 3));
	assert_false(allowed("127.0.0.2", nets, 3));
	assert_true(allowed("10.20.0.1", nets, 3));
	assert_true(allowed("10.23.255.255", nets, 3));
	assert_false(allowed("10.24.0.0", nets, 3));
	assert_false(allowed("10.19.255.255", nets, 3));
	assert_true(allowed("fd00:1:ffff::9", nets, 3));
	assert_false(allowed("fd00:2::9", nets, 3));
	/* The mapped form of an allowed IPv4 address matches the IPv4 network. */
	assert_true(allowed("::ffff:127.0.0.1", nets, 3));
	assert_false(allowed("::ffff:127.0.0.2", nets, 3));
	assert_false(allowed("::1", nets, 3));
	assert_false(allowed("169.254.169.254", nets, 3));
	/* The reason is reported. */
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	inet_pton(AF_INET, "169.254.169.254", &in.sin_addr);
	assert_int_equal(wrk_fetch_addr_allowed((struct sockaddr *)&in, sizeof(in), nets, 3, &c), 0);
	assert_int_equal(c, WRK_ADDR_LINKLOCAL);
	assert_string_equal(wrk_fetch_addr_class_name(c), "link-local");
}

/* ------------------------------------------------------------ downloads */

struct fixture {
	struct test_httpd h;
	struct test_httpd h2;    /* on 127.0.0.2, started by tests that need it */
	unsigned char *body;
	size_t bodylen;
	char sha256[129];
	struct wrk_net loop8;
	struct wrk_net only1;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct sw_hash *h;
	size_t i;
	uint32_t x = 12345;

	if (fx == NULL)
		return -1;
	fx->bodylen = 3 * 1024 * 1024 + 17;
	fx->body = malloc(fx->bodylen);
	if (fx->body == NULL)
		return -1;
	for (i = 0; i < fx->bodylen; i++) {
		x = x * 1103515245u + 12345u;
		fx->body[i] = (unsigned char)(x >> 16);
	}
	h = sw_hash_new("sha256");
	sw_hash_update(h, fx->body, fx->bodylen);
	sw_hash_final(h, fx->sha256, sizeof(fx->sha256));
	sw_hash_free(h);
	if (test_httpd_start(&fx->h, "127.0.0.1", NULL) != 0)
		return -1;
	fx->h.mem = fx->body;
	fx->h.memlen = fx->bodylen;
	wrk_net_parse("127.0.0.0/8", &fx->loop8, NULL);
	wrk_net_parse("127.0.0.1/32", &fx->only1, NULL);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	test_httpd_stop(&fx->h);
	test_httpd_stop(&fx->h2);
	free(fx->body);
	free(fx);
	return 0;
}

static void
opts_init(struct wrk_fetch_opts *o, const struct wrk_net *allow)
{
	memset(o, 0, sizeof(*o));
	o->allow = allow;
	o->nallow = allow != NULL ? 1 : 0;
	o->max_size = 1ull << 30;
	o->max_redirects = 5;
	o->deadline_ms = sw_mono_ms() + 60000;
}

/*
 * Reads the whole body in reads of step bytes into a new buffer; returns
 * the read() result that ended it (0 at a clean end).
 */
static ssize_t
drain(struct wrk_fetch *f, size_t step, unsigned char **ret, size_t *retlen, struct sw_err *e)
{
	struct sw_source src = wrk_fetch_source(f);
	size_t cap = 1 << 20, len = 0;
	unsigned char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	for (;;) {
		while (cap - len < step) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = src.read(src.ud, buf + len, step, e);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	*ret = buf;
	*retlen = len;
	return n;
}

struct progress_rec {
	int calls;
	int last_percent;
	uint64_t last_bytes;
};

static void
on_progress(void *ud, int percent, uint64_t bytes)
{
	struct progress_rec *p = ud;

	p->calls++;
	p->last_percent = percent;
	p->last_bytes = bytes;
}

static void
test_fetch_ok(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct wrk_fetch *f = NULL;
	struct progress_rec pr = { 0, -5, 0 };
	struct sw_err e;
	char url[128], hex[129];
	unsigned char *got;
	size_t gotlen;
	uint64_t bytes = 0;

	opts_init(&o, &fx->loop8);
	o.checksum_alg = "sha256";
	o.checksum_hex = fx->sha256;
	o.progress = on_progress;
	o.progress_ud = &pr;
	assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/mem", url, sizeof(url)), &o, &f,
	    &e), 0);
	/* Small reads: the buffer fills and the transfer is paused and resumed. */
	assert_int_equal(drain(f, 4096, &got, &gotlen, &e), 0);
	assert_int_equal(gotlen, fx->bodylen);
	assert_memory_equal(got, fx->body, fx->bodylen);
	assert_int_equal(wrk_fetch_length(f), fx->bodylen);
	assert_int_equal(wrk_fetch_finish(f, &bytes, hex, sizeof(hex), &e), 0);
	assert_int_equal(bytes, fx->bodylen);
	assert_string_equal(hex, fx->sha256);
	assert_int_equal(wrk_fetch_error(f, NULL), 0);
	assert_true(pr.calls >= 2);
	assert_int_equal(pr.last_percent, 100);
	assert_int_equal(pr.last_bytes, fx->bodylen);
	free(got);
	wrk_fetch_free(f);
}

/*
 * Reads of every size against curl's 1 MiB deliveries: smaller (the rest of
 * a delivery waits in the bounded buffer), odd, larger than a delivery and
 * than the whole body (straight into the reader's buffer).  The bytes and
 * the digest, computed on the helper thread, are those of the body.
 */
static void
test_fetch_read_sizes(void **state)
{
	static const size_t steps[] = { 1000, 65537, 777777, 1048576, 1048577, 5 * 1048576 };
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct wrk_fetch *f = NULL;
	struct sw_err e;
	char url[128], hex[129];
	unsigned char *got;
	size_t gotlen, i;
	uint64_t bytes = 0;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		opts_init(&o, &fx->loop8);
		o.checksum_alg = "sha256";
		o.checksum_hex = fx->sha256;
		assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/mem", url, sizeof(url)), &o,
		    &f, &e), 0);
		assert_int_equal(drain(f, steps[i], &got, &gotlen, &e), 0);
		assert_int_equal(gotlen, fx->bodylen);
		assert_memory_equal(got, fx->body, fx->bodylen);
		assert_int_equal(wrk_fetch_finish(f, &bytes, hex, sizeof(hex), &e), 0);
		assert_int_equal(bytes, fx->bodylen);
		assert_string_equal(hex, fx->sha256);
		free(got);
		wrk_fetch_free(f);
		f = NULL;
	}
}

static void
test_fetch_chunked_and_finish_drains(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct wrk_fetch *f = NULL;
	struct sw_source src;
	struct sw_err e;
	char url[128], hex[129], dir[] = "/tmp/swfetchXXXXXX", path[256];
	unsigned char part[1000];
	uint64_t bytes = 0;
	FILE *fp;

	/* A file served chunked (no Content-Length). */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/blob", dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(fx->body, 1, fx->bodylen, fp), fx->bodylen);
	fclose(fp);
	snprintf(fx->h.dir, sizeof(fx->h.dir), "%s", dir);

	opts_init(&o, &fx->loop8);
	o.checksum_alg = "sha256";
	o.checksum_hex = fx->sha256;
	assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/chunked/blob", url, sizeof(url)),
	    &o, &f, &e), 0);
	/* The consumer stops early; finish reads the rest and still checks the digest. */
	src = wrk_fetch_source(f);
	assert_int_equal(src.read(src.ud, part, sizeof(part), &e), sizeof(part));
	assert_memory_equal(part, fx->body, sizeof(part));
	assert_int_equal(wrk_fetch_finish(f, &bytes, hex, sizeof(hex), &e), 0);
	assert_int_equal(bytes, fx->bodylen);
	assert_string_equal(hex, fx->sha256);
	assert_int_equal(wrk_fetch_length(f), 0);
	wrk_fetch_free(f);
	unlink(path);
	rmdir(dir);
}

static void
test_fetch_checksum_mismatch(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct wrk_fetch *f = NULL;
	struct sw_err e, fe;
	char url[128], wrong[65];
	unsigned char *got;
	size_t gotlen;

	memcpy(wrong, fx->sha256, sizeof(wrong));
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	opts_init(&o, &fx->loop8);
	o.checksum_alg = "sha256";
	o.checksum_hex = wrong;
	assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/mem", url, sizeof(url)), &o, &f,
	    &e), 0);
	/* Every byte arrives, but the read that would report the end fails. */
	assert_int_equal(drain(f, 65536, &got, &gotlen, &e), SW_ECHECKSUM);
	assert_int_equal(gotlen, fx->bodylen);
	assert_non_null(strstr(e.msg, "expects"));
	assert_int_equal(wrk_fetch_error(f, &fe), SW_ECHECKSUM);
	assert_int_equal(wrk_fetch_finish(f, NULL, NULL, 0, &e), SW_ECHECKSUM);
	free(got);
	wrk_fetch_free(f);

	/* md5 is supported as well. */
	opts_init(&o, &fx->loop8);
	o.checksum_alg = "md5";
	o.checksum_hex = "00000000000000000000000000000000";
	assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/mem", url, sizeof(url)), &o, &f,
	    &e), 0);
	assert_int_equal(wrk_fetch_finish(f, NULL, NULL, 0, &e), SW_ECHECKSUM);
	wrk_fetch_free(f);
}

static void
test_fetch_size_limit(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct wrk_fetch *f = NULL;
	struct sw_err e;
	char url[128], dir[] = "/tmp/swfetchXXXXXX", path[256];
	unsigned char *got;
	size_t gotlen;
	FILE *fp;

	/* Content-Length over the limit: refused before the body. */
	opts_init(&o, &fx->loop8);
	o.max_size = 1024 * 1024;
	assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/mem", url, sizeof(url)), &o, &f,
	    &e), 0);
	assert_int_equal(drain(f, 65536, &got, &gotlen, &e), SW_ETOOBIG);
	assert_true(gotlen <= 1024 * 1024);
	free(got);
	wrk_fetch_free(f);

	/* Chunked: counted while streaming. */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/blob", dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(fx->body, 1, fx->bodylen, fp), fx->bodylen);
	fclose(fp);
	snprintf(fx->h.dir, sizeof(fx->h.dir), "%s", dir);
	opts_init(&o, &fx->loop8);
	o.max_size = 1024 * 1024 + 1;
	assert_int_equal(wrk_fetch_open(test_httpd_url(&fx->h, "/chunked/blob", url, sizeof(url)),
	    &o, &f, &e), 0);
	assert_int_equal(drain(f, 65536, &got, &gotlen, &e), SW_ETOOBIG);
	assert_true(gotlen <= 1024 * 1024 + 1);
	assert_true(wrk_fetch_received(f) <= 1024 * 1024 + 1);
	assert_non_null(strstr(e.msg, "limit"));
	free(got);
	wrk_fetch_free(f);
	unlink(path);
	rmdir(dir);
}

static int
fetch_all(const char *url, const struct wrk_fetch_opts *o, struct sw_err *e)
{
	struct wrk_fetch *f = NULL;
	int r;

	r = wrk_fetch_open(url, o, &f, e);
	if (r < 0)
		return r;
	r = wrk_fetch_finish(f, NULL, NULL, 0, e);
	wrk_fetch_free(f);
	return r;
}

static void
test_fetch_address_policy(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct sw_err e;
	char url[128], target[128], redir[512];
	unsigned hits;

	/* No allow list: the loopback server is refused before anything is sent. */
	opts_init(&o, NULL);
	hits = fx->h.hits;
	assert_int_equal(fetch_all(test_httpd_url(&fx->h, "/mem", url, sizeof(url)), &o, &e),
	    SW_EPATH);
	assert_non_null(strstr(e.msg, "127.0.0.1"));
	assert_non_null(strstr(e.msg, "loopback"));
	assert_int_equal(fx->h.hits, hits);
	/* A name that resolves to loopback is refused too. */
	snprintf(url, sizeof(url), "http://localhost:%u/mem", fx->h.port);
	assert_int_equal(fetch_all(url, &o, &e), SW_EPATH);

	/* A second server on 127.0.0.2: reachable with 127.0.0.0/8 allowed ... */
	assert_int_equal(test_httpd_start(&fx->h2, "127.0.0.2", NULL), 0);
	fx->h2.mem = fx->body;
	fx->h2.memlen = fx->bodylen;
	test_httpd_url(&fx->h2, "/mem", target, sizeof(target));
	snprintf(redir, sizeof(redir), "/redirect?to=%s", target);
	test_httpd_url(&fx->h, redir, url, sizeof(url));
	opts_init(&o, &fx->loop8);
	assert_int_equal(fetch_all(url, &o, &e), 0);
	assert_int_equal(fx->h2.hits, 1);
	/* ... but a redirect there is refused when only 127.0.0.1 is allowed. */
	opts_init(&o, &fx->only1);
	hits = fx->h.hits;
	assert_int_equal(fetch_all(url, &o, &e), SW_EPATH);
	assert_non_null(strstr(e.msg, "127.0.0.2"));
	assert_int_equal(fx->h.hits, hits + 1);
	assert_int_equal(fx->h2.hits, 1);
	/* Directly as well. */
	assert_int_equal(fetch_all(target, &o, &e), SW_EPATH);
	assert_int_equal(fx->h2.hits, 1);
}

static void
test_fetch_schemes_and_redirects(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct wrk_fetch *f = (struct wrk_fetch *)(uintptr_t)1;
	struct sw_err e;
	char url[256];

	opts_init(&o, &fx->loop8);
	assert_int_equal(wrk_fetch_open("file:///etc/passwd", &o, &f, &e), SW_EPATH);
	assert_int_equal(wrk_fetch_open("ftp://127.0.0.1/x.ova", &o, &f, &e), SW_EPATH);
	assert_int_equal(wrk_fetch_open("gopher://127.0.0.1/", &o, &f, &e), SW_EPATH);
	assert_true(f == (struct wrk_fetch *)(uintptr_t)1);   /* untouched on failure */
	/* A redirect to another scheme is refused by libcurl's protocol list. */
	test_httpd_url(&fx->h, "/redirect?to=file:///etc/passwd", url, sizeof(url));
	assert_int_equal(fetch_all(url, &o, &e), SW_EPATH);
	test_httpd_url(&fx->h, "/redirect?to=ftp://127.0.0.1/x", url, sizeof(url));
	assert_int_equal(fetch_all(url, &o, &e), SW_EPATH);
	/* Redirect loops stop at max_redirects. */
	test_httpd_url(&fx->h, "/loop", url, sizeof(url));
	o.max_redirects = 3;
	assert_int_equal(fetch_all(url, &o, &e), SW_EUNSUPPORTED);
	assert_non_null(strstr(e.msg, "3 redirects"));
	/* A redirect within the limit is followed. */
	test_httpd_url(&fx->h, "/redirect?to=/mem", url, sizeof(url));
	assert_int_equal(fetch_all(url, &o, &e), 0);
	o.max_redirects = 0;
	assert_int_equal(fetch_all(url, &o, &e), SW_EUNSUPPORTED);
}

static void
test_fetch_http_errors(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct sw_err e;
	char url[128];

	opts_init(&o, &fx->loop8);
	assert_int_equal(fetch_all(test_httpd_url(&fx->h, "/status/404", url, sizeof(url)), &o,
	    &e), SW_ENOTFOUND);
	assert_non_null(strstr(e.msg, "404"));
	assert_int_equal(fetch_all(test_httpd_url(&fx->h, "/status/403", url, sizeof(url)), &o,
	    &e), SW_EAUTH);
	assert_int_equal(fetch_all(test_httpd_url(&fx->h, "/status/503", url, sizeof(url)), &o,
	    &e), SW_EREMOTE);
	/* Nobody listening: a network error (retryable). */
	snprintf(url, sizeof(url), "http://127.0.0.1:1/x");
	assert_int_equal(fetch_all(url, &o, &e), SW_ENET);
}

static void
test_fetch_cancel_and_deadline(void **state)
{
	struct fixture *fx = *state;
	struct wrk_fetch_opts o;
	struct sw_err e;
	atomic_int cancel = 1;
	char url[128];
	uint64_t t0;

	opts_init(&o, &fx->loop8);
	o.cancel = &cancel;
	assert_int_equal(fetch_all(test_httpd_url(&fx->h, "/slow", url, sizeof(url)), &o, &e),
	    -ECANCELED);
	opts_init(&o, &fx->loop8);
	o.deadline_ms = sw_mono_ms() + 700;
	t0 = sw_mono_ms();
	assert_int_equal(fetch_all(test_httpd_url(&fx->h, "/slow", url, sizeof(url)), &o, &e),
	    -ETIMEDOUT);
	assert_true(sw_mono_ms() - t0 < 5000);
	assert_non_null(strstr(e.msg, "deadline"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_class_v4),
		cmocka_unit_test(test_addr_class_v6),
		cmocka_unit_test(test_addr_allowed),
		cmocka_unit_test_setup_teardown(test_fetch_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_read_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_chunked_and_finish_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_checksum_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_address_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_schemes_and_redirects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_http_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_cancel_and_deadline, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
