/*
 * worker/metrics: the text exposition (counters, cumulative histogram
 * buckets, label bounds), the bytes read from final events, the listen
 * address parser, concurrent updates, and the HTTP endpoint on a loopback
 * port (GET, HEAD, 404, 405).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/io.h"
#include "worker/metrics.h"

static char *
render(void)
{
	struct sw_buf b = SW_BUF_INIT(WRK_METRICS_RENDER_MAX);
	struct sw_err e;
	char *s;
	size_t len;

	assert_int_equal(wrk_metrics_render(&b, &e), 0);
	s = sw_buf_steal(&b, &len);
	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

/* The value of the sample line that starts with name_labels (followed by a space). */
static long long
sample(const char *text, const char *name_labels)
{
	size_t n = strlen(name_labels);
	const char *p = text;

	while ((p = strstr(p, name_labels)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p += n;
	}
	return -1;
}

static void
test_zero_state(void **state)
{
	char *t;

	(void)state;
	wrk_metrics_reset();
	t = render();
	assert_non_null(strstr(t, "# TYPE snapworker_commands_total counter\n"));
	assert_non_null(strstr(t, "# TYPE snapworker_job_duration_seconds histogram\n"));
	assert_non_null(strstr(t, "# TYPE snapworker_jobs_in_flight gauge\n"));
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"CreateSnapshot\",outcome=\"succeeded\"}"), 0);
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"other\",outcome=\"invalid\"}"), 0);
	assert_int_equal(sample(t, "snapworker_bytes_transferred_total"), 0);
	assert_int_equal(sample(t, "snapworker_jobs_in_flight"), 0);
	assert_int_equal(sample(t, "snapworker_broker_reconnects_total"), 0);
	assert_int_equal(sample(t, "snapworker_vcenter_logins_total"), 0);
	/* No histogram series for a type that never ran. */
	assert_null(strstr(t, "snapworker_job_duration_seconds_bucket{"));
	/* Every line ends with a newline and the output is all ASCII printable. */
	assert_int_equal(t[strlen(t) - 1], '\n');
	for (const char *p = t; *p; p++)
		assert_true(*p == '\n' || (*p >= 0x20 && *p < 0x7f));
	free(t);
}

static void
test_commands_and_histogram(void **state)
{
	char *t;

	(void)state;
	wrk_metrics_reset();
	wrk_metrics_set_slots(3);
	wrk_metrics_command("CreateSnapshot", WRK_METRICS_SUCCEEDED, 1000, 100); /* le=1 inclusive */
	wrk_metrics_command("CreateSnapshot", WRK_METRICS_SUCCEEDED, 1001, 23);  /* le=5 */
	wrk_metrics_command("CreateSnapshot", WRK_METRICS_FAILED, 40000, 0);     /* le=60 */
	wrk_metrics_command("CreateSnapshot", WRK_METRICS_REQUEUED, 30000000, 0); /* > 21600 s: +Inf */
	wrk_metrics_command("DeleteTemplate", WRK_METRICS_SUCCEEDED, 5, 0);
	wrk_metrics_command("NoSuchType", WRK_METRICS_FAILED, 2, 0);
	wrk_metrics_command(NULL, WRK_METRICS_INVALID, 0, 0);
	wrk_metrics_command("evil\"}\n", WRK_METRICS_INVALID, 0, 0);
	wrk_metrics_job_start();
	wrk_metrics_job_start();
	wrk_metrics_job_end();
	wrk_metrics_broker_reconnect();
	wrk_metrics_vcenter_login();
	wrk_metrics_vcenter_login();
	t = render();
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"CreateSnapshot\",outcome=\"succeeded\"}"), 2);
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"CreateSnapshot\",outcome=\"failed\"}"), 1);
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"CreateSnapshot\",outcome=\"requeued\"}"), 1);
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"DeleteTemplate\",outcome=\"succeeded\"}"), 1);
	/* Unknown types fold into "other": the label set stays bounded and escaped. */
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"other\",outcome=\"failed\"}"), 1);
	assert_int_equal(sample(t, "snapworker_commands_total{type=\"other\",outcome=\"invalid\"}"), 2);
	assert_null(strstr(t, "evil"));
	assert_null(strstr(t, "NoSuchType"));

	/* Buckets are cumulative. */
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_bucket{type=\"CreateSnapshot\",le=\"1\"}"), 1);
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_bucket{type=\"CreateSnapshot\",le=\"5\"}"), 2);
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_bucket{type=\"CreateSnapshot\",le=\"30\"}"), 2);
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_bucket{type=\"CreateSnapshot\",le=\"60\"}"), 3);
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_bucket{type=\"CreateSnapshot\",le=\"21600\"}"), 3);
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_bucket{type=\"CreateSnapshot\",le=\"+Inf\"}"), 4);
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_count{type=\"CreateSnapshot\"}"), 4);
	assert_non_null(strstr(t, "snapworker_job_duration_seconds_sum{type=\"CreateSnapshot\"} 30042.001\n"));
	/* Invalid commands have no meaningful run time: no histogram for "other" beyond the failed one. */
	assert_int_equal(sample(t, "snapworker_job_duration_seconds_count{type=\"other\"}"), 1);
	assert_null(strstr(t, "type=\"CopyTemplate\",le="));

	assert_int_equal(sample(t, "snapworker_bytes_transferred_total"), 123);
	assert_int_equal(sample(t, "snapworker_jobs_in_flight"), 1);
	assert_int_equal(sample(t, "snapworker_job_slots"), 3);
	assert_int_equal(sample(t, "snapworker_broker_reconnects_total"), 1);
	assert_int_equal(sample(t, "snapworker_vcenter_logins_total"), 2);
	free(t);

	/* The gauge never goes below zero on an unbalanced end. */
	wrk_metrics_job_end();
	wrk_metrics_job_end();
	t = render();
	assert_int_equal(sample(t, "snapworker_jobs_in_flight"), 0);
	free(t);
}

static void
test_render_cap(void **state)
{
	struct sw_buf b = SW_BUF_INIT(100);
	struct sw_err e;

	(void)state;
	wrk_metrics_reset();
	assert_int_equal(sw_buf_addstr(&b, "keep"), 0);
	/* Too small a buffer: an error, and none of a partial rendering left behind. */
	assert_true(wrk_metrics_render(&b, &e) < 0);
	assert_string_equal(sw_buf_str(&b), "keep");
	sw_buf_free(&b);
}

static void
test_parse_listen(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	struct sw_err e;
	const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

	(void)state;
	assert_int_equal(wrk_metrics_parse_listen("127.0.0.1:9464", &ss, &sl, &e), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 9464);
	assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(sl, sizeof(struct sockaddr_in));

	assert_int_equal(wrk_metrics_parse_listen("[::1]:80", &ss, &sl, &e), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 80);
	assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));

	assert_int_equal(wrk_metrics_parse_listen(":9464", &ss, &sl, &e), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));

	/* Failures leave the outputs alone. */
	memset(&ss, 0xa5, sizeof(ss));
	sl = 77;
	assert_true(wrk_metrics_parse_listen("localhost:9464", &ss, &sl, &e) < 0);
	assert_non_null(strstr(e.msg, "numeric"));
	assert_int_equal(sl, 77);
	assert_int_equal(((unsigned char *)&ss)[0], 0xa5);
	assert_true(wrk_metrics_parse_listen("127.0.0.1", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("127.0.0.1:65536", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("127.0.0.1:-1", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("127.0.0.1:", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("::1:80", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("[::1]80", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("[::1:80", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen("", &ss, &sl, &e) < 0);
	assert_true(wrk_metrics_parse_listen(NULL, &ss, &sl, &e) < 0);
	assert_int_equal(sl, 77);
}

#define THREADS 4
#define PER_THREAD 5000

static void *
hammer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < PER_THREAD; i++) {
		wrk_metrics_job_start();
		wrk_metrics_command("DeleteSnapshot", WRK_METRICS_SUCCEEDED, 1, 2);
		wrk_metrics_job_end();
		wrk_metrics_broker_reconnect();
	}
	return NULL;
}

static void
test_concurrent_updates(void **state)
{
	pthread_t t[THREADS];
	char *s;
	int i;

	(void)state;
	wrk_metrics_reset();
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	s = render();
	assert_int_equal(sample(s, "snapworker_commands_total{type=\"DeleteSnapshot\",outcome=\"succeeded\"}"),
	    THREADS * PER_THREAD);
	assert_int_equal(sample(s, "snapworker_job_duration_seconds_count{type=\"DeleteSnapshot\"}"),
	    THREADS * PER_THREAD);
	assert_int_equal(sample(s, "snapworker_bytes_transferred_total"), 2 * THREADS * PER_THREAD);
	assert_int_equal(sample(s, "snapworker_broker_reconnects_total"), THREADS * PER_THREAD);
	assert_int_equal(sample(s, "snapworker_jobs_in_flight"), 0);
	free(s);
}

/* One HTTP/1.0 exchange on 127.0.0.1:port; the whole response, NUL-terminated. */
static char *
http(unsigned port, const char *request)
{
	struct sockaddr_in sa;
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap + 1);
	ssize_t n;
	int fd;

	assert_non_null(out);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(sw_write_all(fd, request, strlen(request)), 0);
	while (len < cap && (n = read(fd, out + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	out[len] = '\0';
	return out;
}

static void
test_http_endpoint(void **state)
{
	struct wrk_metrics_server *srv = NULL, *srv2 = NULL;
	struct sw_err e;
	unsigned port;
	char *r, listen[64];

	(void)state;
	wrk_metrics_reset();
	wrk_metrics_command("CreateTemplate", WRK_METRICS_SUCCEEDED, 2500, 4096);
	assert_int_equal(wrk_metrics_server_start("127.0.0.1:0", &srv, &e), 0);
	port = wrk_metrics_server_port(srv);
	assert_true(port > 0);

	r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.0 200") != NULL ? r : strstr(r, "HTTP/1.1 200"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\nsnapworker_commands_total{type=\"CreateTemplate\",outcome=\"succeeded\"} 1\n"));
	assert_non_null(strstr(r, "\nsnapworker_bytes_transferred_total 4096\n"));
	free(r);

	r = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 200 "));
	assert_null(strstr(r, "snapworker_commands_total{"));
	free(r);

	r = http(port, "GET / HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 404 "));
	free(r);

	r = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
	assert_non_null(strstr(r, " 405 "));
	assert_non_null(strstr(r, "Allow: GET, HEAD"));
	free(r);

	/* A second endpoint on the same port is refused, with the address in the reason. */
	assert_true(snprintf(listen, sizeof(listen), "127.0.0.1:%u", port) < (int)sizeof(listen));
	assert_true(wrk_metrics_server_start(listen, &srv2, &e) < 0);
	assert_null(srv2);
	assert_non_null(strstr(e.msg, listen));
	assert_true(wrk_metrics_server_start("nohost:1", &srv2, &e) < 0);

	wrk_metrics_server_stop(srv);
	wrk_metrics_server_stop(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_state),
		cmocka_unit_test(test_commands_and_histogram),
		cmocka_unit_test(test_render_cap),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_http_endpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
