/* Unit tests for the worker's machinery: log lines, running-id set, broker URL parsing, backoff. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "worker/amqp.h"
#include "worker/log.h"
#include "worker/notify.h"
#include "worker/running.h"

static void
test_log_json(void **state)
{
	char buf[512];
	size_t n;

	(void)state;
	n = wrk_log_format(buf, sizeof(buf), WRK_LOG_JSON, SW_LOG_WARN, "w1", "id-1",
	    "CreateSnapshot", "quote \" back \\ nl \n bad \xff end");
	assert_int_equal(n, strlen(buf));
	assert_true(buf[n - 1] == '\n');
	assert_non_null(strstr(buf, "\"level\":\"warn\""));
	assert_non_null(strstr(buf, "\"worker\":\"w1\""));
	assert_non_null(strstr(buf, "\"cmd_id\":\"id-1\""));
	assert_non_null(strstr(buf, "\"type\":\"CreateSnapshot\""));
	assert_non_null(strstr(buf, "quote \\\" back \\\\ nl \\n bad \\ufffd end\"}"));
	assert_int_equal(strncmp(buf, "{\"ts\":\"", 7), 0);
	/* Without a command the keys are left out. */
	n = wrk_log_format(buf, sizeof(buf), WRK_LOG_JSON, SW_LOG_INFO, "w1", NULL, NULL, "x");
	assert_null(strstr(buf, "cmd_id"));
	/* Text: one line, control characters neutralised. */
	n = wrk_log_format(buf, sizeof(buf), WRK_LOG_TEXT, SW_LOG_ERR, "w1", "id-2", "T", "a\nb");
	assert_non_null(strstr(buf, " error [id-2 T]: a?b\n"));
	assert_null(strchr(buf, '\n') == buf + n - 1 ? NULL : "two lines");
}

static void
test_log_truncation(void **state)
{
	char msg[3000], buf[256];
	size_t n;

	(void)state;
	memset(msg, '"', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	n = wrk_log_format(buf, sizeof(buf), WRK_LOG_JSON, SW_LOG_INFO, "w", "id", "t", msg);
	assert_true(n < sizeof(buf));
	assert_int_equal(n, strlen(buf));
	/* Still ends as a complete object, and no escape was cut in half. */
	assert_string_equal(buf + n - 3, "\"}\n");
	assert_true(buf[n - 4] == '"' && buf[n - 5] == '\\');
}

static void
test_log_thread_cmd(void **state)
{
	(void)state;
	wrk_log_set_cmd("abc", "DeleteSnapshot");
	assert_string_equal(wrk_log_cmd_id(), "abc");
	wrk_log_set_cmd(NULL, NULL);
	assert_null(wrk_log_cmd_id());
}

struct racer {
	struct wrk_running *r;
	int *counter;
	int max_seen;
	pthread_mutex_t *m;
};

static void *
race(void *arg)
{
	struct racer *x = arg;
	int i;

	for (i = 0; i < 50; i++) {
		assert_true(wrk_running_acquire(x->r, "same-id", NULL) >= 0);
		pthread_mutex_lock(x->m);
		(*x->counter)++;
		if (*x->counter > x->max_seen)
			x->max_seen = *x->counter;
		pthread_mutex_unlock(x->m);
		usleep(100);
		pthread_mutex_lock(x->m);
		(*x->counter)--;
		pthread_mutex_unlock(x->m);
		wrk_running_release(x->r, "same-id");
	}
	return NULL;
}

static void
test_running_exclusive(void **state)
{
	struct wrk_running *r = wrk_running_new();
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	int counter = 0, i;
	struct racer x[4];
	pthread_t t[4];

	(void)state;
	assert_non_null(r);
	for (i = 0; i < 4; i++) {
		x[i].r = r;
		x[i].counter = &counter;
		x[i].max_seen = 0;
		x[i].m = &m;
		assert_int_equal(pthread_create(&t[i], NULL, race, &x[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		/* Never two holders of one id at a time. */
		assert_int_equal(x[i].max_seen, 1);
	}
	assert_int_equal(wrk_running_count(r), 0);
	wrk_running_free(r);
}

static void
test_running_wait_cancel(void **state)
{
	struct wrk_running *r = wrk_running_new();
	atomic_int cancel = 1;

	(void)state;
	assert_int_equal(wrk_running_acquire(r, "a", NULL), 0);
	assert_int_equal(wrk_running_acquire(r, "b", NULL), 0);
	assert_true(wrk_running_has(r, "a"));
	assert_int_equal(wrk_running_count(r), 2);
	/* A second acquire of "a" would wait; with cancel set it gives up. */
	assert_int_equal(wrk_running_acquire(r, "a", &cancel), -ECANCELED);
	wrk_running_release(r, "a");
	assert_false(wrk_running_has(r, "a"));
	assert_int_equal(wrk_running_acquire(r, "a", &cancel), 0);
	wrk_running_release(r, "a");
	wrk_running_release(r, "b");
	wrk_running_release(r, "never-held");
	wrk_running_free(r);
	wrk_running_free(NULL);
}

/* The ring of finished commands a cancel request is answered from: bounded, newest first. */
static void
test_running_finished(void **state)
{
	struct wrk_running *r = wrk_running_new();
	char out[16], id[40];
	unsigned i;

	(void)state;
	assert_int_equal(wrk_running_outcome(r, "a", out, sizeof(out)), 0);
	wrk_running_finished(r, "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f", "failed");
	wrk_running_finished(r, "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f", "succeeded");
	/* Ids compare without case; the latest outcome wins. */
	assert_int_equal(wrk_running_outcome(r, "4B0A5C1E-8D9F-4C55-9A39-1F7B0D1C2E3F", out,
	    sizeof(out)), 1);
	assert_string_equal(out, "succeeded");
	/* WRK_FINISHED_MAX newer ones push it out. */
	for (i = 0; i < WRK_FINISHED_MAX; i++) {
		snprintf(id, sizeof(id), "id-%u", i);
		wrk_running_finished(r, id, "failed");
	}
	assert_int_equal(wrk_running_outcome(r, "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f", out,
	    sizeof(out)), 0);
	assert_int_equal(wrk_running_outcome(r, "id-0", out, sizeof(out)), 1);
	assert_int_equal(wrk_running_outcome(r, "id-1023", out, sizeof(out)), 1);
	/* Nothing overlong or empty is kept. */
	wrk_running_finished(r, "", "failed");
	wrk_running_finished(r, "0123456789012345678901234567890123456789x", "failed");
	assert_int_equal(wrk_running_outcome(r, "id-0", out, sizeof(out)), 1);
	wrk_running_free(r);
}

static void
test_cancel_record_name(void **state)
{
	char b[64];

	(void)state;
	/* The id in lower case, the prefix as configured. */
	assert_int_equal(wrk_amqp_cancel_record_name("Fleet.cancel",
	    "4B0A5C1E-8D9F-4C55-9A39-1F7B0D1C2E3F", b, sizeof(b)), 0);
	assert_string_equal(b, "Fleet.cancel.4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f");
	assert_int_equal(wrk_amqp_cancel_record_name("x", "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f",
	    b, 20), -ENAMETOOLONG);
}

static void
test_amqp_url(void **state)
{
	struct wrk_amqp_url u;
	struct sw_err e;

	(void)state;
	assert_int_equal(wrk_amqp_url_parse("amqp://snapworker@127.0.0.1:5673/%2f", &u, &e), 0);
	assert_false(u.tls);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 5673);
	assert_string_equal(u.user, "snapworker");
	assert_string_equal(u.vhost, "/");
	assert_int_equal(wrk_amqp_url_parse("amqps://broker.example", &u, &e), 0);
	assert_true(u.tls);
	assert_int_equal(u.port, 5671);
	assert_string_equal(u.user, "guest");
	assert_string_equal(u.vhost, "/");
	assert_int_equal(wrk_amqp_url_parse("amqp://u@[::1]:1234/prod", &u, &e), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 1234);
	assert_string_equal(u.vhost, "prod");
	assert_int_equal(wrk_amqp_url_parse("amqp://u:secret@h/", &u, &e), SW_EFORMAT);
	assert_null(strstr(e.msg, "secret"));
	assert_int_equal(wrk_amqp_url_parse("http://h/", &u, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_parse("amqp://h:99999/", &u, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_parse("amqp://h:/", &u, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_parse("amqp://h/%zz", &u, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_parse("amqp://h/%00", &u, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_parse("amqp://h/a/b", &u, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_parse("amqp://[::1/", &u, &e), SW_EFORMAT);
}

/* [amqp] url and snapctl --amqp-url: the nodes of one cluster. */
static void
test_amqp_url_list(void **state)
{
	char **v = NULL;
	size_t n = 0;
	struct sw_err e;
	char many[40 * 20];
	int i;

	(void)state;
	assert_int_equal(wrk_amqp_url_list_parse("amqp://sw@a:1/%2f", &v, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "amqp://sw@a:1/%2f");
	wrk_amqp_url_list_free(v, n);
	assert_int_equal(wrk_amqp_url_list_parse(" amqp://sw@a:1/prod, amqps://sw@b/prod\t"
	    "amqp://sw@[::1]:3/prod,,", &v, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[1], "amqps://sw@b/prod");
	assert_string_equal(v[2], "amqp://sw@[::1]:3/prod");
	wrk_amqp_url_list_free(v, n);
	/* Every URL is checked, not just the first; nothing is returned on failure. */
	v = NULL;
	assert_int_equal(wrk_amqp_url_list_parse("amqp://sw@a/ amqp://sw:pw@b/", &v, &n, &e),
	    SW_EFORMAT);
	assert_non_null(strstr(e.msg, "password"));
	assert_null(strstr(e.msg, "pw@"));
	assert_null(v);
	assert_int_equal(wrk_amqp_url_list_parse("amqp://sw@a/ http://b/", &v, &n, &e), SW_EFORMAT);
	/* One password file, one topology: the same user and virtual host on every node. */
	assert_int_equal(wrk_amqp_url_list_parse("amqp://sw@a/ amqp://other@b/", &v, &n, &e),
	    SW_EFORMAT);
	assert_non_null(strstr(e.msg, "same user"));
	assert_int_equal(wrk_amqp_url_list_parse("amqp://sw@a/x amqp://sw@b/y", &v, &n, &e),
	    SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_list_parse("amqp://sw@a/ amqp://sw@b/%2f", &v, &n, &e), 0);
	wrk_amqp_url_list_free(v, n);
	assert_int_equal(wrk_amqp_url_list_parse(" , ", &v, &n, &e), SW_EFORMAT);
	assert_int_equal(wrk_amqp_url_list_parse("", &v, &n, &e), SW_EFORMAT);
	many[0] = '\0';
	for (i = 0; i < WRK_AMQP_URLS_MAX + 1; i++)
		(void)snprintf(many + strlen(many), sizeof(many) - strlen(many), "amqp://sw@h%d/ ", i);
	assert_int_equal(wrk_amqp_url_list_parse(many, &v, &n, &e), SW_ETOOBIG);
}

/* The watchdog's policy: every started slot thread turned within stall_ms. */
static void
test_watchdog_policy(void **state)
{
	uint64_t beats[4] = { 100000, 0, 99000, 101000 };
	unsigned idx = 99;

	(void)state;
	/* All within 5 s of now (the not-started slot 1 is ignored). */
	assert_true(wrk_notify_all_alive(beats, 4, 101500, 5000, &idx));
	assert_int_equal(idx, 2);       /* the longest silent, 2.5 s */
	/* Slot 2 silent for 90.001 s with a 90 s limit: withheld, and named. */
	assert_false(wrk_notify_all_alive(beats, 4, 99000 + 90001, 90000, &idx));
	assert_int_equal(idx, 2);
	/* Exactly at the limit is still alive. */
	assert_true(wrk_notify_all_alive(beats, 4, 99000 + 90000, 90000, NULL));
	/* A slot that exited (beat 0) never stalls the watchdog. */
	beats[2] = 0;
	assert_true(wrk_notify_all_alive(beats, 4, 100000 + 90000, 90000, &idx));
	assert_int_equal(idx, 0);
	/* No slots: alive. */
	assert_true(wrk_notify_all_alive(beats, 0, 1, 1, NULL));
	/* A beat in the future (clock read order between threads) is not silence. */
	beats[0] = 200000;
	assert_true(wrk_notify_all_alive(beats, 1, 199999, 1, NULL));
}

static void
test_backoff(void **state)
{
	unsigned a, v;

	(void)state;
	assert_int_equal(wrk_backoff_ms(0, 100, 30000, 12345), 100);
	for (a = 1; a < 20; a++) {
		unsigned hi = 100u << (a < 9 ? a : 9);
		if (hi > 30000)
			hi = 30000;
		v = wrk_backoff_ms(a, 100, 30000, 0xffffffffu);
		assert_true(v >= 100 && v <= hi);
		v = wrk_backoff_ms(a, 100, 30000, 0);
		assert_int_equal(v, 100);
	}
	/* The cap holds for huge attempt numbers, without overflow. */
	assert_true(wrk_backoff_ms(1000, 100, 30000, 0x7fffffff) <= 30000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_json),
		cmocka_unit_test(test_log_truncation),
		cmocka_unit_test(test_log_thread_cmd),
		cmocka_unit_test(test_running_exclusive),
		cmocka_unit_test(test_running_wait_cancel),
		cmocka_unit_test(test_running_finished),
		cmocka_unit_test(test_cancel_record_name),
		cmocka_unit_test(test_amqp_url),
		cmocka_unit_test(test_amqp_url_list),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_watchdog_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
