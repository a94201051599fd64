/* Unit tests for worker/deliver: what a delivery turns into (event, ack/requeue/dead-letter). */
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

#include "proto/proto.h"
#include "worker/deliver.h"
#include "common/io.h"
#include "worker/running.h"

#define ID "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f"
#define CMD "{\"version\":1,\"id\":\"" ID "\",\"type\":\"DeleteSnapshot\"," \
	"\"store\":{\"url\":\"nfs://h/x\"},\"args\":{\"path\":\"snapshots/1/2/a/a\"}}"
#define CMD_COPY "{\"version\":1,\"id\":\"" ID "\",\"type\":\"CopyTemplate\"," \
	"\"store\":{\"url\":\"nfs://h/x\"},\"args\":{\"path\":\"template/tmpl/1/2/a\"," \
	"\"dest_store\":{\"url\":\"nfs://h/y\"}}}"

/* What the fake command does. */
static struct {
	int rc, errcode, retryable;
	int progress_calls;
	int runs;
	int sleep_ms;
	int raise_user_cancel;          /* a cancel request arrives while it runs */
	atomic_int concurrent, max_concurrent;
} fake;

static const struct proto_file fake_files[] = {
	{ .path = "snapshots/1/2/a/a-disk0.vmdk", .size = 68608 },
	{ .path = "snapshots/1/2/a/a.ovf", .size = 3835 },
	{ .path = "snapshots/1/2/a/a.ova.meta", .size = 161 },
};

static int
fake_run(const struct wrk_job *job, struct proto_event *ev, struct sw_err *e)
{
	int i, now;

	fake.runs++;
	now = __atomic_add_fetch(&fake.concurrent, 1, __ATOMIC_SEQ_CST);
	if (now > fake.max_concurrent)
		fake.max_concurrent = now;
	for (i = 0; i < fake.progress_calls; i++)
		job->progress(job->progress_ud, i, (uint64_t)i * 10);
	if (fake.sleep_ms)
		usleep((useconds_t)fake.sleep_ms * 1000);
	__atomic_sub_fetch(&fake.concurrent, 1, __ATOMIC_SEQ_CST);
	if (fake.raise_user_cancel)
		*job->cancel = WRK_CANCEL_USER;
	if (fake.raise_user_cancel == 2)
		/* Some other failure met while it was being cancelled (a refused connection). */
		return sw_err_classify(e, sw_errf(e, SW_ENET, "connection refused"),
		    PROTO_ERR_VCENTER_UNREACHABLE, true);
	/* As wrk_cmd_run() does, every error is classified where it is made. */
	if (*job->cancel == WRK_CANCEL_DEADLINE)
		return sw_err_classify(e, sw_errf(e, -ETIMEDOUT, "deadline passed"),
		    PROTO_ERR_TIMEOUT, false);
	if (*job->cancel)
		return sw_err_classify(e, sw_errf(e, -ECANCELED, "cancelled"),
		    PROTO_ERR_CANCELLED, true);
	if (fake.rc < 0) {
		sw_errf(e, fake.rc, "fake failure");
		if (fake.errcode == PROTO_ERR_NONE)
			return fake.rc;    /* a bug in the command: left unclassified */
		return sw_err_classify(e, fake.rc, fake.errcode, fake.retryable);
	}
	ev->result.install_path = "snapshots/1/2/a/a";
	ev->result.files = fake_files;
	ev->result.nfiles = sizeof(fake_files) / sizeof(fake_files[0]);
	return 0;
}

static int progress_events;
static char last_progress[4096];

static void
on_progress(void *ud, const char *json, size_t len, const char *rk)
{
	(void)ud;
	assert_string_equal(rk, "deletesnapshot.progress");
	assert_true(len < sizeof(last_progress));
	memcpy(last_progress, json, len + 1);
	progress_events++;
}

static struct wrk_dispatch d;

static int
setup(void **state)
{
	(void)state;
	memset(&fake, 0, sizeof(fake));
	memset(&d, 0, sizeof(d));
	d.worker = "test:1";
	d.run = fake_run;
	d.delivery_limit = 5;
	d.on_progress = on_progress;
	progress_events = 0;
	return 0;
}

static void
expect_event(const struct wrk_outcome *o, enum proto_status st, const char *code)
{
	struct proto_event *ev = NULL;
	struct sw_err e;

	assert_non_null(o->event);
	assert_int_equal(proto_event_parse(o->event, o->event_len, &ev, &e), 0);
	assert_int_equal(ev->status, st);
	assert_string_equal(ev->worker, "test:1");
	if (code != NULL)
		assert_string_equal(proto_errcode_name(ev->error.code), code);
	proto_event_free(ev);
}

static void
test_success(void **state)
{
	struct wrk_outcome o;

	(void)state;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	assert_true(o.succeeded && o.parsed);
	assert_string_equal(o.id, ID);
	assert_string_equal(o.type, "DeleteSnapshot");
	assert_string_equal(o.routing_key, "deletesnapshot.succeeded");
	expect_event(&o, PROTO_STATUS_SUCCEEDED, NULL);
	assert_non_null(strstr(o.event, "\"install_path\":\"snapshots/1/2/a/a\""));
	/* A delete's files are removed ones: nothing produced. */
	assert_int_equal(o.bytes_produced, 0);
	wrk_outcome_clear(&o);

	/* Any other type: the sum of its files' sizes, for the metrics. */
	wrk_dispatch_run(&d, CMD_COPY, strlen(CMD_COPY), 0, 1, NULL, &o);
	assert_true(o.succeeded);
	assert_int_equal(o.bytes_produced, 68608 + 3835 + 161);
	wrk_outcome_clear(&o);

	/* A failed command produced nothing. */
	fake.rc = SW_ENOTFOUND;
	fake.errcode = PROTO_ERR_NOT_FOUND;
	wrk_dispatch_run(&d, CMD_COPY, strlen(CMD_COPY), 0, 1, NULL, &o);
	assert_false(o.succeeded);
	assert_int_equal(o.bytes_produced, 0);
	wrk_outcome_clear(&o);
}

/* A failure nobody classified is a bug: reported as INTERNAL, final, never retried. */
static void
test_unclassified(void **state)
{
	struct wrk_outcome o;

	(void)state;
	fake.rc = -EIO;
	fake.errcode = PROTO_ERR_NONE;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	assert_false(o.retryable);
	assert_string_equal(o.errcode, "INTERNAL");
	expect_event(&o, PROTO_STATUS_FAILED, "INTERNAL");
	wrk_outcome_clear(&o);
}

/* A body the AMQP layer drained for its size: dead-lettered, no event. */
static void
test_too_big(void **state)
{
	struct wrk_outcome o;

	(void)state;
	wrk_dispatch_run(&d, NULL, 0, 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_DEAD);
	assert_false(o.parsed);
	assert_null(o.event);
	assert_string_equal(o.errcode, "INVALID_COMMAND");
	assert_non_null(strstr(o.message, "limit"));
	assert_int_equal(fake.runs, 0);
	wrk_outcome_clear(&o);
}

static void
test_fail_final(void **state)
{
	struct wrk_outcome o;

	(void)state;
	fake.rc = SW_ENOTFOUND;
	fake.errcode = PROTO_ERR_NOT_FOUND;
	fake.retryable = 0;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	assert_false(o.succeeded);
	assert_string_equal(o.routing_key, "deletesnapshot.failed");
	assert_string_equal(o.errcode, "NOT_FOUND");
	expect_event(&o, PROTO_STATUS_FAILED, "NOT_FOUND");
	wrk_outcome_clear(&o);
}

/* The store health hook: which URLs it was asked about, and which are sick. */
static char asked[2][64];
static int nasked;
static const char *sick_url;

static int
fake_store_sick(void *ud, const char *url)
{
	(void)ud;
	if (nasked < 2)
		(void)snprintf(asked[nasked], sizeof(asked[0]), "%s", url);
	nasked++;
	return sick_url != NULL && strcmp(url, sick_url) == 0;
}

/* A retryable STORE_IO on a sick store is handed back without spending an attempt. */
static void
test_store_sick_requeues(void **state)
{
	static const unsigned delays[] = { 10, 60 };
	struct wrk_outcome o;

	(void)state;
	d.retry_delays_s = delays;
	d.nretry_delays = 2;
	d.store_sick = fake_store_sick;
	nasked = 0;
	sick_url = "nfs://h/x";
	fake.rc = -EIO;
	fake.errcode = PROTO_ERR_STORE_IO;
	fake.retryable = 1;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 2, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_REQUEUE);
	assert_null(o.event);
	assert_string_equal(o.errcode, "STORE_IO");
	assert_int_equal(nasked, 1);
	assert_string_equal(asked[0], "nfs://h/x");
	wrk_outcome_clear(&o);
	/* Even on the last attempt: it is not the command's failure. */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 3, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_REQUEUE);
	wrk_outcome_clear(&o);
	/* A healthy store: the failure is the command's, and spends the attempt. */
	sick_url = NULL;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_RETRY);
	wrk_outcome_clear(&o);
	/* CopyTemplate: the destination store counts too. */
	nasked = 0;
	sick_url = "nfs://h/y";
	wrk_dispatch_run(&d, CMD_COPY, strlen(CMD_COPY), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_REQUEUE);
	assert_int_equal(nasked, 2);
	assert_string_equal(asked[1], "nfs://h/y");
	wrk_outcome_clear(&o);
	/* Not STORE_IO, or not retryable: never asked. */
	nasked = 0;
	sick_url = "nfs://h/x";
	fake.errcode = PROTO_ERR_NOT_FOUND;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_RETRY);
	wrk_outcome_clear(&o);
	fake.errcode = PROTO_ERR_STORE_IO;
	fake.retryable = 0;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	wrk_outcome_clear(&o);
	assert_int_equal(nasked, 0);
}

static void
test_retryable(void **state)
{
	static const unsigned delays[] = { 10, 60, 300, 600 };
	struct wrk_outcome o;
	struct proto_event *ev = NULL;
	struct sw_err e;

	(void)state;
	d.retry_delays_s = delays;
	d.nretry_delays = 4;
	fake.rc = SW_ENET;
	fake.errcode = PROTO_ERR_VCENTER_UNREACHABLE;
	fake.retryable = 1;
	/* Attempt 1 of 5: another attempt in 10 s, announced with a retrying event. */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 0, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_RETRY);
	assert_int_equal(o.attempt, 1);
	assert_int_equal(o.retry_delay_s, 10);
	assert_string_equal(o.routing_key, "deletesnapshot.retrying");
	assert_int_equal(proto_event_parse(o.event, o.event_len, &ev, &e), 0);
	assert_int_equal(ev->status, PROTO_STATUS_RETRYING);
	assert_int_equal(ev->error.code, PROTO_ERR_VCENTER_UNREACHABLE);
	assert_int_equal(ev->retry.attempt, 1);
	assert_int_equal(ev->retry.max_attempts, 5);
	assert_int_equal(ev->retry.delay_s, 10);
	proto_event_free(ev);
	wrk_outcome_clear(&o);
	/* Attempt 4: the longest delay.  Crash redeliveries do not count as attempts. */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 3, 4, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_RETRY);
	assert_int_equal(o.retry_delay_s, 600);
	wrk_outcome_clear(&o);
	/* The last attempt: a failed event and the dead-letter queue. */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 5, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_DEAD);
	expect_event(&o, PROTO_STATUS_FAILED, "VCENTER_UNREACHABLE");
	assert_non_null(strstr(o.event, "\"retryable\":true"));
	wrk_outcome_clear(&o);
	/* A header claiming more attempts than configured is a last attempt too. */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 99, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_DEAD);
	wrk_outcome_clear(&o);
	/* A failure that is not retryable is final at any attempt. */
	fake.retryable = 0;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	wrk_outcome_clear(&o);
	/* No retry delays ([retry] delays = none): a retryable failure is final at once. */
	fake.retryable = 1;
	d.nretry_delays = 0;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_DEAD);
	expect_event(&o, PROTO_STATUS_FAILED, "VCENTER_UNREACHABLE");
	wrk_outcome_clear(&o);
}

static void
test_poison(void **state)
{
	struct wrk_outcome o;
	const char *noid = "{\"version\":1,\"type\":";
	const char *badargs = "{\"version\":1,\"id\":\"" ID "\",\"type\":\"DeleteSnapshot\","
	    "\"store\":{\"url\":\"nfs://h/x\"},\"args\":{\"path\":\"/etc/passwd\"}}";

	(void)state;
	wrk_dispatch_run(&d, noid, strlen(noid), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_DEAD);
	assert_null(o.event);
	assert_false(o.parsed);
	assert_int_equal(fake.runs, 0);
	wrk_outcome_clear(&o);
	/* An id is readable: answered with a failed event, still dead-lettered. */
	wrk_dispatch_run(&d, badargs, strlen(badargs), 0, 1, NULL, &o);
	assert_int_equal(o.disp, WRK_DISP_DEAD);
	assert_string_equal(o.id, ID);
	expect_event(&o, PROTO_STATUS_FAILED, "INVALID_COMMAND");
	assert_int_equal(fake.runs, 0);
	wrk_outcome_clear(&o);
}

static void
test_cancel(void **state)
{
	struct wrk_outcome o;
	atomic_int cancel = WRK_CANCEL_SHUTDOWN;

	(void)state;
	fake.errcode = PROTO_ERR_CANCELLED;
	fake.retryable = 1;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 4, 5, &cancel, &o);
	/* Shutdown: handed back without an event, whatever the attempt count. */
	assert_int_equal(o.disp, WRK_DISP_REQUEUE);
	assert_null(o.event);
	wrk_outcome_clear(&o);
	cancel = WRK_CANCEL_DEADLINE;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, &cancel, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	expect_event(&o, PROTO_STATUS_FAILED, "TIMEOUT");
	wrk_outcome_clear(&o);
}

/* A cancel request: final CANCELLED, not retryable, never retried or dead-lettered. */
static void
test_cancel_request(void **state)
{
	static const unsigned delays[] = { 10, 60 };
	struct wrk_outcome o;
	struct proto_event *ev = NULL;
	struct sw_err e;
	atomic_int cancel = WRK_CANCEL_USER;

	(void)state;
	d.retry_delays_s = delays;
	d.nretry_delays = 2;
	/* Cancelled before it started: it never runs. */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, &cancel, &o);
	assert_int_equal(fake.runs, 0);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	assert_int_equal(o.cancelled, 1);
	assert_int_equal(o.retryable, 0);
	expect_event(&o, PROTO_STATUS_FAILED, "CANCELLED");
	assert_int_equal(proto_event_parse(o.event, o.event_len, &ev, &e), 0);
	assert_false(ev->error.retryable);
	assert_string_equal(ev->error.message, "cancelled on request: before it started");
	proto_event_free(ev);
	assert_string_equal(o.routing_key, "deletesnapshot.failed");
	wrk_outcome_clear(&o);
	/* ... even on its last attempt (not dead-lettered). */
	wrk_dispatch_run(&d, CMD, strlen(CMD), 2, 3, &cancel, &o);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	expect_event(&o, PROTO_STATUS_FAILED, "CANCELLED");
	wrk_outcome_clear(&o);

	/* Cancelled while it runs: stopped by the flag, final, not the retry queue. */
	cancel = 0;
	fake.raise_user_cancel = 1;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, &cancel, &o);
	assert_int_equal(fake.runs, 1);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	expect_event(&o, PROTO_STATUS_FAILED, "CANCELLED");
	wrk_outcome_clear(&o);

	/* A retryable failure met while being cancelled is reported as the cancel. */
	cancel = 0;
	fake.raise_user_cancel = 2;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, &cancel, &o);
	assert_int_equal(fake.runs, 2);
	assert_int_equal(o.disp, WRK_DISP_ACK);
	assert_null(strstr(o.errcode, "VCENTER"));
	assert_string_equal(o.message, "cancelled on request: connection refused");
	expect_event(&o, PROTO_STATUS_FAILED, "CANCELLED");
	wrk_outcome_clear(&o);

	/* A command that succeeds before it sees the cancel stays succeeded. */
	fake.raise_user_cancel = 0;
	cancel = 0;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, &cancel, &o);
	assert_int_equal(o.succeeded, 1);
	wrk_outcome_clear(&o);
}

/* The daemon's backstop: only past the deadline and its slack, never over a shutdown. */
static void
test_deadline_backstop(void **state)
{
	atomic_int cancel = 0;
	_Atomic uint64_t published = 0;
	struct wrk_outcome o;

	(void)state;
	assert_int_equal(wrk_deadline_backstop(&cancel, 0, 1000000), 0);      /* not parsed yet */
	assert_int_equal(wrk_deadline_backstop(&cancel, 10000, 10000), 0);
	assert_int_equal(wrk_deadline_backstop(&cancel, 10000, 10000 + WRK_DEADLINE_SLACK_MS - 1), 0);
	assert_int_equal(cancel, 0);
	assert_int_equal(wrk_deadline_backstop(&cancel, 10000, 10000 + WRK_DEADLINE_SLACK_MS), 1);
	assert_int_equal(cancel, WRK_CANCEL_DEADLINE);
	assert_int_equal(wrk_deadline_backstop(&cancel, 10000, 99999999), 0); /* raised once */
	cancel = WRK_CANCEL_SHUTDOWN;
	assert_int_equal(wrk_deadline_backstop(&cancel, 10000, 99999999), 0);
	assert_int_equal(cancel, WRK_CANCEL_SHUTDOWN);

	/* The job publishes its deadline: its start plus timeout_s (default per type). */
	d.deadline = &published;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_true(o.succeeded);
	assert_true(published > sw_mono_ms());
	wrk_outcome_clear(&o);
}

static void
test_progress_rate(void **state)
{
	struct wrk_outcome o;

	(void)state;
	/* 0..99 percent in a burst: only the first and every +5 % pass. */
	fake.progress_calls = 100;
	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &o);
	assert_int_equal(progress_events, 20);
	assert_non_null(strstr(last_progress, "\"status\":\"progress\""));
	assert_non_null(strstr(last_progress, "\"percent\":95"));
	wrk_outcome_clear(&o);
}

struct par {
	struct wrk_outcome o;
};

static void *
par_run(void *arg)
{
	struct par *p = arg;

	wrk_dispatch_run(&d, CMD, strlen(CMD), 0, 1, NULL, &p->o);
	return NULL;
}

static void
test_same_id_not_parallel(void **state)
{
	struct par p[3];
	pthread_t t[3];
	int i;

	(void)state;
	d.running = wrk_running_new();
	fake.sleep_ms = 50;
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, par_run, &p[i]), 0);
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_true(p[i].o.succeeded);
		wrk_outcome_clear(&p[i].o);
	}
	/* Three deliveries of one id ran one after the other, never side by side. */
	assert_int_equal(fake.runs, 3);
	assert_int_equal(fake.max_concurrent, 1);
	wrk_running_free(d.running);
	d.running = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_success, setup),
		cmocka_unit_test_setup(test_fail_final, setup),
		cmocka_unit_test_setup(test_unclassified, setup),
		cmocka_unit_test_setup(test_too_big, setup),
		cmocka_unit_test_setup(test_retryable, setup),
		cmocka_unit_test_setup(test_store_sick_requeues, setup),
		cmocka_unit_test_setup(test_poison, setup),
		cmocka_unit_test_setup(test_cancel, setup),
		cmocka_unit_test_setup(test_cancel_request, setup),
		cmocka_unit_test_setup(test_deadline_backstop, setup),
		cmocka_unit_test_setup(test_progress_rate, setup),
		cmocka_unit_test_setup(test_same_id_not_parallel, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
