/* Unit tests for worker/config: INI parsing, environment overrides, secret files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/config.h"

static char tmpdir[64];

static int
setup(void **state)
{
	(void)state;
	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/wcfgXXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *
write_file(const char *name, const char *content, mode_t mode)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];
	int fd;

	(void)snprintf(p, 256, "%s/%s", tmpdir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return p;
}

static char *const noenv[] = { NULL };

static void
test_defaults(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	const char *p = write_file("empty.conf", "; nothing\n", 0644);

	(void)state;
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_int_equal(cfg->jobs, 1);
	assert_int_equal(cfg->nqueues, 1);
	assert_string_equal(cfg->queues[0], "default");
	assert_int_equal(cfg->heartbeat, 30);
	assert_int_equal(cfg->grace_s, 300);
	assert_int_equal(cfg->delivery_limit, 5);
	assert_string_equal(cfg->amqp_exchange, "snapworker.commands");
	assert_string_equal(cfg->amqp_events, "snapworker.events");
	assert_string_equal(cfg->amqp_dlx, "snapworker.dlx");
	assert_string_equal(cfg->amqp_dead_queue, "snapworker.dead");
	assert_non_null(strchr(cfg->name, ':'));   /* hostname:pid */
	assert_null(cfg->amqp_password);
	assert_true(cfg->download_max_size == (uint64_t)1 << 40);
	assert_true(cfg->sweep_max_age_s == 6 * 3600 + 600);
	assert_int_equal(cfg->sweep_interval_s, 3600);
	assert_int_equal(cfg->journal_stale_s, 300);
	/* Retries: a handful, from seconds to ten minutes. */
	assert_int_equal(cfg->nretry_delays, 4);
	assert_int_equal(cfg->retry_delays_s[0], 10);
	assert_int_equal(cfg->retry_delays_s[3], 600);
	assert_string_equal(cfg->amqp_retry_exchange, "snapworker.retry");
	assert_int_equal(cfg->lock_scope, WRK_LOCKS_AUTO);
	assert_int_equal(cfg->require_mount, WRK_MOUNT_AUTO);
	assert_int_equal(cfg->probe_interval_s, 2);
	assert_int_equal(cfg->probe_timeout_s, 5);
	wrk_config_free(cfg);
}

static void
test_full(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	char conf[2048];
	const char *amqp_pw = write_file("amqp.secret", "s3cret-amqp\n", 0600);
	const char *vc_pw = write_file("vc1.secret", "vc-pass", 0400);
	const char *p;
	const struct wrk_store *st;
	const struct wrk_vcenter *vc;

	(void)state;
	(void)snprintf(conf, sizeof(conf),
	    "[worker]\nname = ssvm-1\njobs = 3 ; three slots\nqueues = default, zone2\ngrace = 2m\n"
	    "log_format = text\n"
	    "[amqp]\nurl = amqps://snapworker@broker.example:5671/%%2f, "
	    "amqps://snapworker@broker2.example/%%2f\npassword_file = %s\n"
	    "heartbeat = 10\n"
	    "[store]\nnfs://10.0.0.5/export/secondary = /mnt/secondary/1\n"
	    "nfs://10.0.0.6/x = /mnt/secondary/2\n"
	    "[vcenter vc1]\nurl = https://vc1.example.org/sdk https://vc1b.example.org/sdk\n"
	    "user = administrator@vsphere.local\npassword_file = %s\ninsecure = true\n"
	    "[download]\nallow = 127.0.0.0/8 ::1\nmax_size = 10G\n"
	    "[sweep]\nmax_age = 12h\ninterval = 0\njournal_stale = 2m\n"
	    "[retry]\ndelays = 5s, 1m30s 2h\n",
	    amqp_pw, vc_pw);
	p = write_file("full.conf", conf, 0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_string_equal(cfg->name, "ssvm-1");
	assert_int_equal(cfg->jobs, 3);
	assert_int_equal(cfg->nqueues, 2);
	assert_string_equal(cfg->queues[1], "zone2");
	assert_int_equal(cfg->grace_s, 120);
	assert_string_equal(cfg->log_format, "text");
	assert_string_equal(cfg->amqp_password, "s3cret-amqp");
	assert_int_equal(cfg->namqp_urls, 2);
	assert_string_equal(cfg->amqp_urls[1], "amqps://snapworker@broker2.example/%2f");
	assert_int_equal(cfg->heartbeat, 10);
	assert_int_equal(cfg->nstores, 2);
	st = wrk_config_store(cfg, "nfs://10.0.0.5/export/secondary/");
	assert_non_null(st);
	assert_string_equal(st->mount, "/mnt/secondary/1");
	assert_string_equal(st->extract_dir, "/mnt/secondary/1/extract");
	assert_null(wrk_config_store(cfg, "nfs://10.0.0.7/x"));
	vc = wrk_config_vcenter(cfg, "vc1");
	assert_non_null(vc);
	assert_string_equal(vc->password, "vc-pass");
	assert_int_equal(vc->insecure, 1);
	assert_true(wrk_vcenter_allows(vc, "https://vc1b.example.org/sdk"));
	assert_false(wrk_vcenter_allows(vc, "https://evil.example.org/sdk"));
	assert_null(wrk_config_vcenter(cfg, "vc2"));
	assert_int_equal(cfg->nallow, 2);
	assert_int_equal(cfg->allow[0].prefix, 8);
	assert_int_equal(cfg->allow[1].prefix, 128);
	assert_true(cfg->download_max_size == (uint64_t)10 << 30);
	assert_true(cfg->sweep_max_age_s == 12 * 3600);
	assert_int_equal(cfg->sweep_interval_s, 0);
	assert_int_equal(cfg->journal_stale_s, 120);
	assert_int_equal(cfg->nretry_delays, 3);
	assert_int_equal(cfg->retry_delays_s[0], 5);
	assert_int_equal(cfg->retry_delays_s[1], 90);
	assert_int_equal(cfg->retry_delays_s[2], 7200);
	wrk_config_free(cfg);
}

static void
test_retry_and_locks(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	char *const env[] = { "SNAPWORKER_RETRY_DELAYS=none", "SNAPWORKER_STORE_LOCK_SCOPE=host",
	    NULL };
	const char *p = write_file("retry.conf", "[retry]\ndelays = 1s\n[store]\nlock_scope = shared\n"
	    "require_mount = true\nprobe_interval = 3\nprobe_timeout = 7\n",
	    0644);

	(void)state;
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_int_equal(cfg->nretry_delays, 1);
	assert_int_equal(cfg->lock_scope, WRK_LOCKS_SHARED);
	assert_int_equal(cfg->require_mount, WRK_MOUNT_REQUIRED);
	assert_int_equal(cfg->probe_interval_s, 3);
	assert_int_equal(cfg->probe_timeout_s, 7);
	wrk_config_free(cfg);
	cfg = NULL;
	/* "none": a retryable failure is final at once; the environment overrides. */
	assert_int_equal(wrk_config_load(p, env, &cfg, &e), 0);
	assert_int_equal(cfg->nretry_delays, 0);
	assert_int_equal(cfg->lock_scope, WRK_LOCKS_HOST);
	wrk_config_free(cfg);
	cfg = NULL;
	/* The retry exchange goes with its command exchange unless named. */
	p = write_file("rx.conf", "[amqp]\nexchange = t1.commands\n", 0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_string_equal(cfg->amqp_retry_exchange, "t1.retry");
	/* So do the control exchange and the cancel records' prefix. */
	assert_string_equal(cfg->amqp_control, "t1.control");
	assert_string_equal(cfg->amqp_cancel_prefix, "t1.cancel");
	assert_int_equal(cfg->cancel_ttl_s, 3 * 86400);
	wrk_config_free(cfg);
	cfg = NULL;
	p = write_file("rx.conf", "[amqp]\nexchange = cmds\n", 0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_string_equal(cfg->amqp_retry_exchange, "cmds.retry");
	wrk_config_free(cfg);
	cfg = NULL;
	p = write_file("rx.conf", "[amqp]\nexchange = cmds\nretry_exchange = r\n", 0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_string_equal(cfg->amqp_retry_exchange, "r");
	wrk_config_free(cfg);
	cfg = NULL;
	p = write_file("rx.conf", "[amqp]\ncontrol_exchange = c\ncancel_prefix = k\n"
	    "cancel_ttl = 12h\n", 0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_string_equal(cfg->amqp_control, "c");
	assert_string_equal(cfg->amqp_cancel_prefix, "k");
	assert_int_equal(cfg->cancel_ttl_s, 12 * 3600);
	wrk_config_free(cfg);
}

static void
expect_error(const char *conf, char *const *env, const char *needle)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	const char *p = write_file("bad.conf", conf, 0644);

	sw_err_clear(&e);
	assert_true(wrk_config_load(p, env, &cfg, &e) < 0);
	assert_null(cfg);
	if (strstr(e.msg, needle) == NULL)
		fail_msg("error '%s' does not mention '%s'", e.msg, needle);
}

static void
test_errors(void **state)
{
	char *const badenv[] = { "SNAPWORKER_NOPE_X=1", NULL };
	char *const badjobs[] = { "SNAPWORKER_WORKER_JOBS=0", NULL };

	(void)state;
	/* A vCenter URL with credentials in it is refused, and not echoed. */
	{
		struct wrk_config *cfg = NULL;
		struct sw_err e;
		const char *p = write_file("ui.conf", "[vcenter vc1]\nurl = https://admin:pw-SECRET@vc/sdk\n"
		    "user = u\n", 0644);

		assert_true(wrk_config_load(p, noenv, &cfg, &e) < 0);
		assert_non_null(strstr(e.msg, "must not carry a user name or password"));
		assert_null(strstr(e.msg, "SECRET"));
	}
	expect_error("[worker]\njobs = 2\nbogus = 1\n", noenv, "bad.conf:3: unknown key 'bogus'");
	expect_error("[nosuch]\n", noenv, "bad.conf:1: unknown section [nosuch]");
	expect_error("[amqp]\ncancel_ttl = 10s\n", noenv, "cancel_ttl must be a duration of 1m to 30d");
	expect_error("[amqp]\ncancel_ttl = 31d\n", noenv, "cancel_ttl must be");
	expect_error("jobs = 1\n", noenv, "outside of any section");
	expect_error("[worker]\njobs = 65\n", noenv, "jobs must be");
	expect_error("[worker]\njobs = two\n", noenv, "bad.conf:2");
	expect_error("[worker]\njobs = 1\njobs = 2\n", noenv, "set twice");
	expect_error("[worker]\nqueues = a/b\n", noenv, "bad zone key");
	expect_error("[amqp]\nurl = amqp://u:pw@h/\n", noenv, "must not carry a password");
	expect_error("[amqp]\nurl = http://h/\n", noenv, "amqp://");
	expect_error("[amqp]\nurl = amqp://u@a/ amqp://u:pw@b/\n", noenv, "must not carry a password");
	expect_error("[amqp]\nurl = amqp://u@a/ amqp://v@b/\n", noenv, "bad.conf:2: url");
	expect_error("[store]\nnfs://x/y = relative\n", noenv, "absolute");
	expect_error("[vcenter vc1]\nurl = https://a/sdk\nuser = u\n", noenv, "needs password_file");
	/* The password never goes to a URL in clear (issue 14: http:// passed). */
	expect_error("[vcenter vc1]\nurl = http://a/sdk\n", noenv, "vCenter url must be https://");
	expect_error("[vcenter vc1]\nurl = https://a/sdk http://b/sdk\n", noenv,
	    "vCenter url must be https://");
	expect_error("[vcenter vc1]\nurl = https://\n", noenv, "vCenter url must be https://");
	expect_error("[download]\nallow = 10.0.0.0/33\n", noenv, "bad network");
	expect_error("[sweep]\nmax_age = soon\n", noenv, "bad.conf:2: max_age must be a duration");
	expect_error("[sweep]\ninterval = 31d\n", noenv, "interval must be");
	expect_error("[sweep]\njournal_stale = 0\n", noenv, "journal_stale must be");
	expect_error("[sweep]\nevery = 1h\n", noenv, "unknown key 'every' in [sweep]");
	expect_error("[retry]\ndelays = 10s 0s\n", noenv, "bad.conf:2: delay '0s' must be a duration");
	expect_error("[retry]\ndelays = 2d\n", noenv, "delay '2d' must be");
	expect_error("[retry]\ndelays = 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s\n", noenv,
	    "more than 16 delays");
	expect_error("[retry]\nattempts = 3\n", noenv, "unknown key 'attempts' in [retry]");
	expect_error("[store]\nlock_scope = maybe\n", noenv, "lock_scope must be auto, shared or host");
	expect_error("[worker]\n", badenv, "SNAPWORKER_NOPE_X");
	expect_error("[worker]\n", badjobs, "environment SNAPWORKER_WORKER_JOBS");
}

static void
test_env_override(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	char conf[512], pwvar[300];
	const char *vc_pw = write_file("vc.secret", "one\n", 0600);
	const char *vc_pw2 = write_file("vc2.secret", "two\n", 0600);
	const char *p;

	(void)state;
	(void)snprintf(conf, sizeof(conf),
	    "[worker]\njobs = 2\n[vcenter lab-1]\nurl = https://a/sdk\nuser = u\npassword_file = %s\n",
	    vc_pw);
	p = write_file("env.conf", conf, 0644);
	(void)snprintf(pwvar, sizeof(pwvar), "SNAPWORKER_VCENTER_LAB_1_PASSWORD_FILE=%s", vc_pw2);
	{
		char *const env[] = { "SNAPWORKER_WORKER_JOBS=4", "SNAPWORKER_AMQP_HEARTBEAT=5",
		    "SNAPWORKER_SWEEP_JOURNAL_STALE=3s",
		    "SNAPWORKER_WORKER_NAME=w9", pwvar, "PATH=/bin", NULL };
		assert_int_equal(wrk_config_load(p, env, &cfg, &e), 0);
	}
	assert_int_equal(cfg->jobs, 4);
	assert_int_equal(cfg->heartbeat, 5);
	assert_int_equal(cfg->journal_stale_s, 3);
	assert_string_equal(cfg->name, "w9");
	assert_string_equal(wrk_config_vcenter(cfg, "lab-1")->password, "two");
	wrk_config_free(cfg);
}

static void
test_secret_mode(void **state)
{
	char conf[512];
	const char *pw = write_file("open.secret", "pw\n", 0640);

	(void)state;
	(void)snprintf(conf, sizeof(conf), "[amqp]\npassword_file = %s\n", pw);
	expect_error(conf, noenv, "group/world accessible (chmod 600 ");
	/* Owned by someone else (only root can make such a file). */
	if (geteuid() == 0) {
		pw = write_file("other.secret", "pw\n", 0600);
		assert_int_equal(chown(pw, 12345, 12345), 0);
		(void)snprintf(conf, sizeof(conf), "[amqp]\npassword_file = %s\n", pw);
		expect_error(conf, noenv, "owned by uid 12345, not by this user");
	}
	pw = write_file("empty.secret", "\n", 0600);
	(void)snprintf(conf, sizeof(conf), "[amqp]\npassword_file = %s\n", pw);
	expect_error(conf, noenv, "one non-empty line");
	/* A symbolic link is refused even when it points at a good file. */
	pw = write_file("good.secret", "pw\n", 0600);
	{
		char link[300];
		(void)snprintf(link, sizeof(link), "%s/link.secret", tmpdir);
		assert_int_equal(symlink(pw, link), 0);
		(void)snprintf(conf, sizeof(conf), "[amqp]\npassword_file = %s\n", link);
		expect_error(conf, noenv, "link.secret: is a symbolic link");
	}
	/* A FIFO is refused, not waited on (the test would hang until its timeout). */
	{
		char fifo[300];
		(void)snprintf(fifo, sizeof(fifo), "%s/fifo.secret", tmpdir);
		assert_int_equal(mkfifo(fifo, 0600), 0);
		(void)snprintf(conf, sizeof(conf), "[amqp]\npassword_file = %s\n", fifo);
		expect_error(conf, noenv, "not a regular file");
	}
	/* The password never appears in an error message. */
	pw = write_file("multi.secret", "line1-SECRET\nline2\n", 0600);
	(void)snprintf(conf, sizeof(conf), "[amqp]\npassword_file = %s\n[worker]\nbogus=1\n", pw);
	{
		struct wrk_config *cfg = NULL;
		struct sw_err e;
		const char *p = write_file("leak.conf", conf, 0644);
		assert_true(wrk_config_load(p, noenv, &cfg, &e) < 0);
		assert_null(strstr(e.msg, "SECRET"));
	}
}

static void
test_missing_file(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;

	(void)state;
	assert_int_equal(wrk_config_load("/nonexistent/snapworker.conf", noenv, &cfg, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/snapworker.conf"));
	wrk_config_free(NULL);
}

/* [download] allow goes through wrk_net_parse: host bits are accepted and cleared. */
static void
test_allow_host_bits(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	const char *p = write_file("allow.conf",
	    "[download]\nallow = 10.1.2.3/8, fd00::1/16 192.168.1.77\n", 0644);

	(void)state;
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_int_equal(cfg->nallow, 3);
	assert_int_equal(cfg->allow[0].prefix, 8);
	assert_int_equal(cfg->allow[0].addr[0], 10);
	assert_int_equal(cfg->allow[0].addr[1] | cfg->allow[0].addr[2] | cfg->allow[0].addr[3], 0);
	assert_int_equal(cfg->allow[1].prefix, 16);
	assert_int_equal(cfg->allow[1].addr[15], 0);
	assert_int_equal(cfg->allow[2].prefix, 32);
	assert_int_equal(cfg->allow[2].addr[3], 77);
	wrk_config_free(cfg);
	expect_error("[download]\nallow = 10.0.0.0/8x\n", noenv, "bad.conf:2: bad network '10.0.0.0/8x'");
}

static void
test_long_line(void **state)
{
	char *conf = malloc(10000);

	(void)state;
	memset(conf, 'a', 9000);
	memcpy(conf, "[worker]\nname = ", 16);
	conf[9000] = '\n';
	conf[9001] = '\0';
	expect_error(conf, noenv, "longer than");
	free(conf);
}

/* [limits]: defaults per kind, named overrides, the wait, and what is refused. */
static void
test_limits(void **state)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	char *const env[] = { "SNAPWORKER_LIMITS_HOST=3", NULL };
	const char *p;

	(void)state;
	/* None set: unlimited, no token is ever asked for, no extra delay queue. */
	p = write_file("nolimits.conf", "[retry]\ndelays = 10s 1m\n", 0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_false(wrk_config_limits_on(cfg));
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_DATASTORE, "ds1"), 0);
	assert_int_equal(cfg->limit_wait_s, 10);
	assert_int_equal(cfg->ndelay_queues, 2);
	assert_string_equal(cfg->amqp_limit_prefix, "snapworker.limit");
	wrk_config_free(cfg);

	p = write_file("limits.conf",
	    "[amqp]\nexchange = fleet.commands\n"
	    "[retry]\ndelays = 10s 1m\n"
	    "[limits]\nvcenter = 8\ndatastore = 2\nwait = 5s\n"
	    "datastore.datastore1 (2) = 1\nhost.host-21 = 0\nvcenter.vc.example.org:443 = 4\n", 0644);
	assert_int_equal(wrk_config_load(p, env, &cfg, &e), 0);
	assert_true(wrk_config_limits_on(cfg));
	assert_string_equal(cfg->amqp_limit_prefix, "fleet.limit");
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_VCENTER, "vc2.example.org"), 8);
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_VCENTER, "vc.example.org:443"), 4);
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_DATASTORE, "LocalDS_0"), 2);
	/* A name with blanks and parentheses, as vSphere names datastores. */
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_DATASTORE, "datastore1 (2)"), 1);
	/* The environment sets a kind's default; a named 0 is unlimited despite it. */
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_HOST, "host-9"), 3);
	assert_int_equal(wrk_config_limit(cfg, WRK_LIMIT_HOST, "host-21"), 0);
	assert_int_equal(cfg->limit_wait_s, 5);
	/* The wait gets a delay queue of its own beside the retry delays. */
	assert_int_equal(cfg->ndelay_queues, 3);
	assert_int_equal(cfg->delay_queues_s[2], 5);
	wrk_config_free(cfg);

	/* A wait equal to a retry delay shares its queue. */
	p = write_file("limits2.conf", "[retry]\ndelays = 10s 1m\n[limits]\nhost.h = 1\nwait = 1m\n",
	    0644);
	assert_int_equal(wrk_config_load(p, noenv, &cfg, &e), 0);
	assert_true(wrk_config_limits_on(cfg));
	assert_int_equal(cfg->ndelay_queues, 2);
	wrk_config_free(cfg);

	expect_error("[limits]\ndatastore = 65\n", noenv, "datastore must be 0 (unlimited) to 64");
	expect_error("[limits]\ndatastore = -1\n", noenv, "datastore must be 0 (unlimited) to 64");
	expect_error("[limits]\ndatastore = two\n", noenv, "datastore must be 0 (unlimited) to 64");
	expect_error("[limits]\ncluster = 2\n", noenv, "unknown key 'cluster' in [limits]");
	expect_error("[limits]\ndatastores = 2\n", noenv, "unknown key 'datastores' in [limits]");
	expect_error("[limits]\ndatastore. = 2\n", noenv, "the name after 'datastore.' must be 1 to");
	expect_error("[limits]\nwait = 0s\n", noenv, "wait must be a duration from 1s to 1h");
	expect_error("[limits]\nwait = 2h\n", noenv, "wait must be a duration from 1s to 1h");
}

/* ------------------------------------------------- documented examples */

/* The text of path (under the source tree) between begin and end; NULL: whole file. */
static char *
doc_slice(const char *path, const char *begin, const char *end)
{
	char full[512], *buf, *a, *b;
	FILE *f;
	long n;

	(void)snprintf(full, sizeof(full), "%s/%s", SW_SRCDIR, path);
	f = fopen(full, "r");
	if (f == NULL)
		fail_msg("%s: %s", full, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (begin == NULL)
		return buf;
	a = strstr(buf, begin);
	if (a == NULL)
		fail_msg("%s: no '%s'", path, begin);
	a += strlen(begin);
	b = strstr(a, end);
	if (b == NULL)
		fail_msg("%s: no '%s' after '%s'", path, end, begin);
	*b = '\0';
	memmove(buf, a, strlen(a) + 1);
	return buf;
}

/*
 * Loads an example as an operator would after installing it: password_file
 * lines point at real secret files (the examples name /etc/... paths that do
 * not exist here), troff's "\-" is "-"; nothing else is touched.
 */
static void
load_example(const char *what, const char *text)
{
	const char *secret = write_file("example.secret", "pw\n", 0600);
	char *out = calloc(1, strlen(text) * 2 + 4096), *o = out;
	const char *line = text;
	struct wrk_config *cfg = NULL;
	struct sw_err e;

	assert_non_null(out);
	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);

		if (strncmp(line, "password_file", 13) == 0) {
			o += sprintf(o, "password_file = %s\n", secret);
		} else {
			size_t i;

			for (i = 0; i < len; i++) {
				if (line[i] == '\\' && i + 1 < len && line[i + 1] == '-')
					continue;
				*o++ = line[i];
			}
			*o++ = '\n';
		}
		line += len + (eol != NULL);
	}
	*o = '\0';
	sw_err_clear(&e);
	if (wrk_config_load(write_file("example.conf", out, 0644), noenv, &cfg, &e) < 0)
		fail_msg("%s does not load: %s", what, e.msg);
	assert_true(cfg->nvcenters >= 1 || strstr(what, "vcenter") == NULL);
	wrk_config_free(cfg);
	free(out);
}

/* Every configuration example the project documents loads as it is written. */
static void
test_doc_examples(void **state)
{
	char *t;

	(void)state;
	t = doc_slice("README.md", "```ini\n", "```");
	load_example("README.md's example", t);
	free(t);
	t = doc_slice("man/snapworker.conf.5", ".SH EXAMPLE\n.nf\n", ".fi");
	load_example("snapworker.conf(5)'s EXAMPLE", t);
	free(t);
	t = doc_slice("systemd/snapworker.conf", NULL, NULL);
	load_example("systemd/snapworker.conf", t);
	free(t);
	t = doc_slice("docker/snapworker.conf", NULL, NULL);
	load_example("docker/snapworker.conf", t);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_env_override),
		cmocka_unit_test(test_retry_and_locks),
		cmocka_unit_test(test_secret_mode),
		cmocka_unit_test(test_doc_examples),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_allow_host_bits),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
