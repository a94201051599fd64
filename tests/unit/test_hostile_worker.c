/*
 * Hostile input through the worker's commands (issue 14's campaign, the
 * classes a command carries): path fields of every command type, links
 * planted on the share, hostile OVAs from a download, legacy objects that
 * lie, the codes of failed downloads, SSRF variants, secrets and credential
 * binding, and malformed or duplicated messages through the delivery path.
 * Commands run in-process (wrk_cmd_run, wrk_dispatch_run) against temporary
 * stores and a loopback HTTP(S) server; the same classes run through the
 * real broker in tests/integration/test_hostile_broker.sh.  Every refusal
 * must carry the code that says what happened, leave nothing behind and
 * touch nothing outside the stores.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ovastore/lock.h"
#include "ovastore/tprops.h"
#include "tests/fixtures/commands/fixtures.h"
#include "tests/fixtures/commands/httpd.h"
#include "tests/fixtures/hostile/hostile.h"
#include "worker/deliver.h"

#define STORE0 "nfs://10.0.0.5/export/secondary"
#define STORE1 "nfs://10.0.0.6/export/secondary2"
#define CMDID "c1d2e3f4-a5b6-4789-8abc-def012345678"
#define CMDID2 "d2e3f4a5-b6c7-4890-9bcd-ef0123456789"
#define FIXV SW_SRCDIR "/tests/fixtures/vmware/"

struct hw {
	struct fx_env x;
	struct test_httpd h;
	char www[256];
	char outside[256];
	char *outside_before;
	struct ova_store *s0, *s1;
};

static int
setup(void **state)
{
	struct hw *t = calloc(1, sizeof(*t));
	struct sw_err e;
	char p[512];

	if (t == NULL || fx_env_init(&t->x) < 0)
		return -1;
	snprintf(t->www, sizeof(t->www), "%s/www", t->x.root);
	snprintf(t->outside, sizeof(t->outside), "%s/outside", t->x.root);
	if (mkdir(t->www, 0755) < 0 || mkdir(t->outside, 0755) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/secret", t->outside);
	if (fx_write_file(p, "the outside world\n", 18) < 0)
		return -1;
	if (ova_store_open(t->x.mount[0], &t->s0, &e) < 0 ||
	    ova_store_open(t->x.mount[1], &t->s1, &e) < 0)
		return -1;
	if (test_httpd_start(&t->h, "127.0.0.1", t->www) < 0)
		return -1;
	t->outside_before = hx_snapshot(t->outside);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct hw *t = *state;

	test_httpd_stop(&t->h);
	ova_store_close(t->s0);
	ova_store_close(t->s1);
	fx_env_free(&t->x);
	free(t->outside_before);
	free(t);
	return 0;
}

static void
assert_outside_intact(struct hw *t)
{
	char *now = hx_snapshot(t->outside);

	if (strcmp(now, t->outside_before) != 0)
		fail_msg("the tree outside the stores changed:\n%s\n---\n%s", t->outside_before, now);
	free(now);
}

/*
 * Parses json and, when it parses, runs it: the command must fail with want
 * (a parse failure counts as INVALID_COMMAND) and retryable as given.
 */
static void
expect_failure(struct hw *t, const char *json, enum proto_errcode want, int retryable,
    const char *what)
{
	struct proto_command *c = NULL;
	struct proto_parse_error pe;
	struct proto_event ev;
	struct sw_err e;
	int code, retry, r;

	if (proto_command_parse(json, strlen(json), &c, &pe) < 0) {
		if (pe.code != want)
			fail_msg("%s: refused at parse as %s (%s), want %s", what,
			    proto_errcode_name(pe.code), pe.message, proto_errcode_name(want));
		return;
	}
	r = fx_run(&t->x, c, &ev, &code, &retry, &e);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
	if (r >= 0)
		fail_msg("%s: succeeded", what);
	if (code != (int)want || retry != retryable)
		fail_msg("%s: %s (retryable %d), want %s (retryable %d): %s", what,
		    proto_errcode_name((enum proto_errcode)code), retry, proto_errcode_name(want),
		    retryable, e.msg);
}

/* Runs json, which must succeed. */
static void
expect_success(struct hw *t, const char *json, struct proto_event *ev)
{
	struct proto_command *c = fx_cmd(json);
	struct sw_err e;
	int code, retry;

	assert_non_null(c);
	if (fx_run(&t->x, c, ev, &code, &retry, &e) != 0)
		fail_msg("%s: %s", json, e.msg);
	proto_command_free(c);
}

/* A good new-format or legacy object at obj in store s (disk of len bytes). */
static void
make_object(struct hw *t, int store, const char *obj, int legacy, size_t len)
{
	uint64_t sizes[1] = { len };

	if (!legacy) {
		assert_int_equal(fx_make_new(store ? t->s1 : t->s0, obj, sizes, 1), 0);
	} else {
		char dir[SW_PATH_MAX], name[SW_NAME_MAX + 1], work[512], path[1024], cmd[2048];
		struct sw_err e;

		assert_int_equal(ova_object_split(obj, dir, sizeof(dir), name, sizeof(name), &e), 0);
		snprintf(work, sizeof(work), "%s/w-%s", t->x.root, name);
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", t->x.mount[store], dir);
		assert_int_equal(system(cmd), 0);
		snprintf(path, sizeof(path), "%s/%s/%s.ova", t->x.mount[store], dir, name);
		assert_int_equal(fx_make_ova_tar(work, name, sizes, 1, 1, 0, path), 0);
	}
}

/* ------------------------------------------------------------ path fields */

static void
test_path_fields_every_command(void **state)
{
	struct hw *t = *state;
	static const char *const paths[] = {
		"../../outside/secret", "/etc/passwd", "snapshots/../../outside/secret",
		".snapworker/running/" CMDID, ".snapworker/journal/" CMDID,
		"template/tmpl/2/201/template.properties", "template/tmpl/2/201/x.ova.meta",
		"template/tmpl/2/201/x.part", "a/./b", "a//b", "a\\\\b", "a\\u0000b", "a\\nb",
		"a\\u001b[31mb", "..", ".", "", "extract/../../outside/secret",
	};
	char json[8192], what[256], *tree0, *tree1, *tree_x;
	size_t i;

	make_object(t, 0, "template/tmpl/2/201/good", 0, 70000);
	make_object(t, 0, "snapshots/2/13/snap/snap", 0, 70000);
	tree0 = hx_snapshot(t->x.mount[0]);
	tree1 = hx_snapshot(t->x.mount[1]);
	tree_x = fx_exists(t->x.extract) ? hx_snapshot(t->x.extract) : strdup("");
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		static const char *const types[] = { "DeleteSnapshot", "DeleteTemplate",
		    "ExtractTemplate" };
		size_t k;

		for (k = 0; k < 3; k++) {
			snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"%s\","
			    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"%s\"}}", types[k],
			    paths[i]);
			snprintf(what, sizeof(what), "%s path %zu", types[k], i);
			expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, what);
		}
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"CopyTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"%s\","
		    "\"dest_store\":{\"url\":\"" STORE1 "\"}}}", paths[i]);
		snprintf(what, sizeof(what), "CopyTemplate path %zu", i);
		expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, what);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"CreateTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"account_id\":2,"
		    "\"template_id\":301,\"snapshot_path\":\"%s\"}}", paths[i]);
		snprintf(what, sizeof(what), "CreateTemplate snapshot_path %zu", i);
		expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, what);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"CreateTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"account_id\":2,"
		    "\"template_id\":301,\"unique_name\":\"%s\",\"snapshot_path\":"
		    "\"snapshots/2/13/snap/snap\"}}", paths[i]);
		snprintf(what, sizeof(what), "CreateTemplate unique_name %zu", i);
		expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, what);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"CreateVolume\",\"vcenter\":{\"url\":\"https://127.0.0.1:1/sdk\",\"credentials\":"
		    "\"vc1\"},\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"source_path\":\"%s\","
		    "\"datastore\":\"ds1\",\"name\":\"v\"}}", paths[i]);
		snprintf(what, sizeof(what), "CreateVolume source_path %zu", i);
		expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, what);
	}
	/* Names and ids that build paths: refused when the message is read. */
	{
		static const char *const bad_json[] = {
			"{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"CreateSnapshot\",\"vcenter\":{\"url\":"
			    "\"https://127.0.0.1:1/sdk\",\"credentials\":\"vc1\"},\"store\":{\"url\":\""
			    STORE0 "\"},\"args\":{\"vm\":{\"name\":\"v\"},\"disk\":\"[ds1] v/v.vmdk\","
			    "\"account_id\":2,\"volume_id\":13,\"backup_uuid\":\"../../x\"}}",
			"{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"CreateSnapshot\",\"vcenter\":{\"url\":"
			    "\"https://127.0.0.1:1/sdk\",\"credentials\":\"vc1\"},\"store\":{\"url\":\""
			    STORE0 "\"},\"args\":{\"vm\":{\"name\":\"v\"},\"disk\":\"[ds1] ../../etc/x.vmdk\","
			    "\"account_id\":2,\"volume_id\":13}}",
			"{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"ExtractVolume\",\"vcenter\":{\"url\":"
			    "\"https://127.0.0.1:1/sdk\",\"credentials\":\"vc1\"},\"store\":{\"url\":\""
			    STORE0 "\"},\"args\":{\"vm\":{\"name\":\"v\"},\"disk\":\"[ds1] v/v.vmdk\","
			    "\"account_id\":-2,\"volume_id\":14}}",
			"{\"version\":1,\"id\":\"../../x\",\"type\":\"DeleteSnapshot\",\"store\":{\"url\":\""
			    STORE0 "\"},\"args\":{\"path\":\"snapshots/2/13/snap/snap\"}}",
			"{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"RegisterTemplate\",\"store\":{\"url\":"
			    "\"" STORE0 "\"},\"args\":{\"url\":\"http://127.0.0.1/x.ova\",\"account_id\":2,"
			    "\"template_id\":0}}",
			"{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"DeleteSnapshot\",\"store\":{\"url\":"
			    "\"nfs://10.0.0.5/export/secondary/../..\"},\"args\":{\"path\":\"snapshots/2/13/"
			    "snap/snap\"}}",
		};

		for (i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
			snprintf(what, sizeof(what), "message %zu", i);
			expect_failure(t, bad_json[i], i == 5 ? PROTO_ERR_UNKNOWN_STORE :
			    PROTO_ERR_INVALID_COMMAND, 0, what);
		}
	}
	{
		char *a0 = hx_snapshot(t->x.mount[0]), *a1 = hx_snapshot(t->x.mount[1]);
		char *ax = fx_exists(t->x.extract) ? hx_snapshot(t->x.extract) : strdup("");

		/* Refused commands change nothing in either store or the extract area. */
		if (strcmp(a0, tree0) != 0)
			fail_msg("store 0 changed:\n%s\n---\n%s", tree0, a0);
		assert_string_equal(a1, tree1);
		assert_string_equal(ax, tree_x);
		free(a0);
		free(a1);
		free(ax);
	}
	free(tree0);
	free(tree1);
	free(tree_x);
	assert_outside_intact(t);
}

/* ----------------------------------------------------------- planted links */

static void
test_planted_links_commands(void **state)
{
	struct hw *t = *state;
	char json[4096], p[1024], target[1024];
	struct proto_event ev;

	/* CopyTemplate and a template.properties that is a link (item 8: a copy was left). */
	make_object(t, 0, "template/tmpl/2/202/t202", 0, 70000);
	snprintf(p, sizeof(p), "%s/template/tmpl/2/202/template.properties", t->x.mount[0]);
	snprintf(target, sizeof(target), "%s/secret", t->outside);
	assert_int_equal(symlink(target, p), 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"CopyTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"template/tmpl/2/202/t202\","
	    "\"dest_store\":{\"url\":\"" STORE1 "\"}}}");
	expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, "CopyTemplate, source record a link");
	snprintf(p, sizeof(p), "%s/template", t->x.mount[1]);
	if (hx_count(p) > 0)
		fail_msg("a failed CopyTemplate left a copy in the destination store");
	/* The same link at the destination instead. */
	snprintf(p, sizeof(p), "%s/template/tmpl/2/202/template.properties", t->x.mount[0]);
	assert_int_equal(unlink(p), 0);
	{
		struct ova_tprops tp;
		int dfd;

		snprintf(p, sizeof(p), "%s/template/tmpl/2/202", t->x.mount[0]);
		dfd = open(p, O_RDONLY | O_DIRECTORY);
		memset(&tp, 0, sizeof(tp));
		tp.id = 202;
		tp.uniquename = "t202";
		tp.size = tp.virtual_size = 1;
		assert_int_equal(ova_tprops_write(dfd, &tp, NULL, NULL), 0);
		close(dfd);
	}
	snprintf(p, sizeof(p), "mkdir -p '%s/template/tmpl/2/202' && ln -s '%s' "
	    "'%s/template/tmpl/2/202/template.properties'", t->x.mount[1], target, t->x.mount[1]);
	assert_int_equal(system(p), 0);
	expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, "CopyTemplate, destination record a link");
	snprintf(p, sizeof(p), "%s/template", t->x.mount[1]);
	assert_int_equal(hx_count(p), 1);   /* the planted link alone */
	snprintf(p, sizeof(p), "%s/template/tmpl/2/202/template.properties", t->x.mount[1]);
	assert_int_equal(unlink(p), 0);
	expect_success(t, json, &ev);
	wrk_cmd_result_clear(&ev);

	/* ExtractTemplate of an object whose disk is a link: refused, nothing exposed. */
	make_object(t, 0, "template/tmpl/2/203/t203", 0, 70000);
	snprintf(p, sizeof(p), "%s/template/tmpl/2/203/t203-disk0.vmdk", t->x.mount[0]);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(target, p), 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"ExtractTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"template/tmpl/2/203/t203\"}}");
	expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, "ExtractTemplate, disk a link");
	assert_true(hx_count(t->x.extract) <= 0);
	/* A legacy archive that is a link. */
	snprintf(p, sizeof(p), "mkdir -p '%s/template/tmpl/2/204' && ln -s '%s' "
	    "'%s/template/tmpl/2/204/t204.ova'", t->x.mount[0], target, t->x.mount[0]);
	assert_int_equal(system(p), 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"ExtractTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"template/tmpl/2/204/t204\"}}");
	expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, "ExtractTemplate, legacy a link");
	assert_true(hx_count(t->x.extract) <= 0);
	/* The template directory itself a link (a DeleteTemplate must not follow it). */
	snprintf(p, sizeof(p), "ln -s '%s' '%s/template/tmpl/2/205'", t->outside, t->x.mount[0]);
	assert_int_equal(system(p), 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"DeleteTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"template/tmpl/2/205/secret\"}}");
	expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0, "DeleteTemplate, directory a link");
	assert_outside_intact(t);
}

/* What a stand-in command saw: whether it ran at all. */
static int fake_runs;

static int
fake_run(const struct wrk_job *job, struct proto_event *ev, struct sw_err *e)
{
	(void)job;
	(void)e;
	fake_runs++;
	ev->result.install_path = "snapshots/1/2/a/a";
	return 0;
}

/* A delivery of body through the dispatch path with x's configuration. */
static void
deliver(struct hw *t, const char *body, size_t len, wrk_runner_fn run, struct wrk_outcome *o)
{
	struct wrk_dispatch d;

	memset(&d, 0, sizeof(d));
	d.cfg = &t->x.cfg;
	d.worker = "test:1";
	d.run = run;
	d.clear = run == wrk_cmd_run ? wrk_cmd_result_clear : NULL;
	d.delivery_limit = 5;
	wrk_dispatch_run(&d, body, len, 0, 1, NULL, o);
}

/* Item 4: a link where the command lock lives fails the command clearly; it never runs unlocked. */
static void
test_planted_lock_links(void **state)
{
	struct hw *t = *state;
	static const char body[] = "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"DeleteSnapshot\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"snapshots/1/2/a/a\"}}";
	char p[1024], target[1024], dir[1024];
	struct wrk_outcome o;
	size_t k;

	snprintf(dir, sizeof(dir), "%s/dir", t->outside);
	assert_int_equal(mkdir(dir, 0755), 0);
	free(t->outside_before);
	t->outside_before = hx_snapshot(t->outside);
	snprintf(target, sizeof(target), "%s/secret", t->outside);
	for (k = 0; k < 5; k++) {
		snprintf(p, sizeof(p), "rm -rf '%s/.snapworker'", t->x.mount[0]);
		assert_int_equal(system(p), 0);
		if (k == 0) {
			snprintf(p, sizeof(p), "%s/.snapworker", t->x.mount[0]);
			assert_int_equal(symlink(dir, p), 0);
		} else {
			snprintf(p, sizeof(p), "%s/.snapworker", t->x.mount[0]);
			assert_int_equal(mkdir(p, 0755), 0);
			snprintf(p, sizeof(p), "%s/.snapworker/running", t->x.mount[0]);
			if (k == 1) {
				assert_int_equal(symlink(dir, p), 0);
			} else {
				assert_int_equal(mkdir(p, 0755), 0);
				snprintf(p, sizeof(p), "%s/.snapworker/running/" CMDID ".lock",
				    t->x.mount[0]);
				if (k == 2)
					assert_int_equal(symlink(target, p), 0);
				else if (k == 3)
					assert_int_equal(mkfifo(p, 0644), 0);
				else
					assert_int_equal(mkdir(p, 0755), 0);
			}
		}
		fake_runs = 0;
		alarm(60);
		deliver(t, body, sizeof(body) - 1, fake_run, &o);
		alarm(0);
		if (fake_runs != 0)
			fail_msg("plant %zu: the command ran without its lock", k);
		assert_false(o.succeeded);
		assert_string_equal(o.errcode, "STORE_IO");
		assert_false(o.retryable);
		assert_non_null(strstr(o.message, "not safe"));
		assert_non_null(o.event);
		assert_non_null(strstr(o.event, "\"status\":\"failed\""));
		wrk_outcome_clear(&o);
	}
	/* With the plant gone the command runs (under its lock). */
	snprintf(p, sizeof(p), "rm -rf '%s/.snapworker'", t->x.mount[0]);
	assert_int_equal(system(p), 0);
	fake_runs = 0;
	deliver(t, body, sizeof(body) - 1, fake_run, &o);
	assert_int_equal(fake_runs, 1);
	assert_true(o.succeeded);
	wrk_outcome_clear(&o);
	assert_outside_intact(t);
}

/* ----------------------------------------------------- hostile downloads */

static char *
reg_json(struct hw *t, const char *path_or_url, const char *id, int template_id, char *buf,
    size_t bufsz)
{
	char url[1024];

	if (path_or_url[0] == '/')
		test_httpd_url(&t->h, path_or_url, url, sizeof(url));
	else
		snprintf(url, sizeof(url), "%s", path_or_url);
	snprintf(buf, bufsz, "{\"version\":1,\"id\":\"%s\",\"type\":\"RegisterTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"url\":\"%s\",\"account_id\":2,"
	    "\"template_id\":%d}}", id, url, template_id);
	return buf;
}

static void
test_hostile_downloads(void **state)
{
	struct hw *t = *state;
	char path[1024], json[4096], *ovf, dir[1024];
	const char *hrefs[2];
	size_t i;

	/* Item 1: a disk named template.properties; refused on delivery and on redelivery. */
	hrefs[0] = "template.properties";
	ovf = hx_ovf(hrefs, NULL, 1);
	{
		static const char fake[] = "filename=other.ova\nuniquename=other\nid=999\n";
		struct hx_member m[2] = {
			{ "t.ovf", ovf, strlen(ovf), 0, NULL },
			{ "template.properties", fake, sizeof(fake) - 1, 0, NULL },
		};

		snprintf(path, sizeof(path), "%s/tprops.ova", t->www);
		assert_int_equal(hx_tar(path, m, 2, 0), 0);
	}
	free(ovf);
	for (i = 0; i < 2; i++) {
		expect_failure(t, reg_json(t, "/file/tprops.ova", CMDID, 401, json, sizeof(json)),
		    PROTO_ERR_INVALID_COMMAND, 0, "disk named template.properties");
		snprintf(dir, sizeof(dir), "%s/template/tmpl/2/401", t->x.mount[0]);
		assert_true(hx_count(dir) <= 0);
	}
	/* Item 6: hostile input past a bound is INVALID_COMMAND, not INTERNAL. */
	{
		struct hx_member *m = calloc(1100, sizeof(*m));
		char (*names)[32] = calloc(1100, 32);

		hrefs[0] = "m-disk0.vmdk";
		ovf = hx_ovf(hrefs, NULL, 1);
		m[0] = (struct hx_member){ "m.ovf", ovf, strlen(ovf), 0, NULL };
		for (i = 1; i < 1100; i++) {
			snprintf(names[i], 32, i == 1 ? "m-disk0.vmdk" : "junk%zu", i);
			m[i] = (struct hx_member){ names[i], NULL, 1, 0, NULL };
		}
		snprintf(path, sizeof(path), "%s/many.ova", t->www);
		assert_int_equal(hx_tar(path, m, 1100, 0), 0);
		expect_failure(t, reg_json(t, "/file/many.ova", CMDID, 402, json, sizeof(json)),
		    PROTO_ERR_INVALID_COMMAND, 0, "1100 members");
		free(m);
		free(names);
		free(ovf);
	}
	{
		size_t big = 16 * 1024 * 1024 + 100;
		char *huge = malloc(big);
		const char *head = "<?xml version=\"1.0\"?><Envelope xmlns=\"http://schemas.dmtf.org/"
		    "ovf/envelope/1\"><!--";

		memset(huge, 'x', big);
		memcpy(huge, head, strlen(head));
		memcpy(huge + big - 15, "--></Envelope>\n", 15);
		{
			struct hx_member m[2] = {
				{ "h.ovf", huge, big, 0, NULL },
				{ "h-disk0.vmdk", NULL, 100, 0, NULL },
			};
			snprintf(path, sizeof(path), "%s/bigovf.ova", t->www);
			assert_int_equal(hx_tar(path, m, 2, 0), 0);
		}
		free(huge);
		expect_failure(t, reg_json(t, "/file/bigovf.ova", CMDID, 403, json, sizeof(json)),
		    PROTO_ERR_INVALID_COMMAND, 0, "OVF over 16 MiB");
	}
	hrefs[0] = "s.ovf";
	ovf = hx_ovf(hrefs, NULL, 1);
	{
		struct hx_member m[1] = { { "s.ovf", ovf, strlen(ovf), 0, NULL } };

		snprintf(path, sizeof(path), "%s/self.ova", t->www);
		assert_int_equal(hx_tar(path, m, 1, 0), 0);
	}
	free(ovf);
	expect_failure(t, reg_json(t, "/file/self.ova", CMDID, 404, json, sizeof(json)),
	    PROTO_ERR_INVALID_COMMAND, 0, "OVF references itself");
	/* A manifest that lies. */
	{
		uint64_t sizes[1] = { 70000 };
		char work[512];

		snprintf(work, sizeof(work), "%s/wbad", t->x.root);
		snprintf(path, sizeof(path), "%s/badmf.ova", t->www);
		assert_int_equal(fx_make_ova_tar(work, "b", sizes, 1, 1, 1, path), 0);
	}
	expect_failure(t, reg_json(t, "/file/badmf.ova", CMDID, 405, json, sizeof(json)),
	    PROTO_ERR_CHECKSUM_MISMATCH, 0, "manifest mismatch");
	snprintf(dir, sizeof(dir), "%s/template", t->x.mount[0]);
	assert_true(hx_count(dir) <= 0);
	assert_outside_intact(t);
}

/* ------------------------------------------------- legacy objects that lie */

static void
test_legacy_trust(void **state)
{
	struct hw *t = *state;
	char json[4096], p[2048], work[512];
	uint64_t sizes[1] = { 70000 };
	struct proto_event ev;

	/* Item 7: a legacy .ova whose manifest is wrong, as RegisterTemplate refuses it. */
	snprintf(work, sizeof(work), "%s/wl", t->x.root);
	snprintf(p, sizeof(p), "mkdir -p '%s/template/tmpl/2/501' '%s/snapshots/2/13/ls'",
	    t->x.mount[0], t->x.mount[0]);
	assert_int_equal(system(p), 0);
	snprintf(p, sizeof(p), "%s/template/tmpl/2/501/l501.ova", t->x.mount[0]);
	assert_int_equal(fx_make_ova_tar(work, "l501", sizes, 1, 1, 1, p), 0);
	snprintf(p, sizeof(p), "%s/snapshots/2/13/ls/ls.ova", t->x.mount[0]);
	assert_int_equal(fx_make_ova_tar(work, "ls", sizes, 1, 1, 1, p), 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"ExtractTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"template/tmpl/2/501/l501\"}}");
	expect_failure(t, json, PROTO_ERR_CHECKSUM_MISMATCH, 0, "ExtractTemplate, wrong manifest");
	assert_true(hx_count(t->x.extract) <= 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"CopyTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"template/tmpl/2/501/l501\","
	    "\"dest_store\":{\"url\":\"" STORE1 "\"}}}");
	expect_failure(t, json, PROTO_ERR_CHECKSUM_MISMATCH, 0, "CopyTemplate, wrong manifest");
	snprintf(p, sizeof(p), "%s/template", t->x.mount[1]);
	assert_true(hx_count(p) <= 0);
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"CreateTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"account_id\":2,\"template_id\":502,"
	    "\"snapshot_path\":\"snapshots/2/13/ls/ls.ova\"}}");
	expect_failure(t, json, PROTO_ERR_CHECKSUM_MISMATCH, 0, "CreateTemplate, wrong manifest");
	snprintf(p, sizeof(p), "%s/template/tmpl/2/502", t->x.mount[0]);
	assert_true(hx_count(p) <= 0);

	/* Item 7: an OVF that references a disk the object lacks, in both formats. */
	make_object(t, 0, "template/tmpl/2/503/n503", 0, 70000);
	snprintf(p, sizeof(p), "%s/template/tmpl/2/503/n503.ovf", t->x.mount[0]);
	{
		const char *hrefs[2] = { "n503-disk0.vmdk", "n503-disk1.vmdk" };
		uint64_t sz[2] = { 70000, 5 };
		char *ovf = hx_ovf(hrefs, sz, 2);

		assert_int_equal(fx_write_file(p, ovf, strlen(ovf)), 0);
		free(ovf);
	}
	/* The meta records the OVF's size: make it agree, so only the reference is wrong. */
	{
		char meta[1024], cmd[2048];

		snprintf(meta, sizeof(meta), "%s/template/tmpl/2/503", t->x.mount[0]);
		snprintf(cmd, sizeof(cmd), "cd '%s' && grep -v '^ovf.size' n503.ova.meta > m.tmp; "
		    "mv m.tmp n503.ova.meta", meta);
		assert_int_equal(system(cmd), 0);
	}
	{
		const char *hrefs[2] = { "l504-disk0.vmdk", "l504-disk9.vmdk" };
		char *ovf = hx_ovf(hrefs, NULL, 2);
		struct hx_member m[2] = {
			{ "l504.ovf", ovf, strlen(ovf), 0, NULL },
			{ "l504-disk0.vmdk", NULL, 70000, 0, NULL },
		};

		snprintf(p, sizeof(p), "mkdir -p '%s/template/tmpl/2/504'", t->x.mount[0]);
		assert_int_equal(system(p), 0);
		snprintf(p, sizeof(p), "%s/template/tmpl/2/504/l504.ova", t->x.mount[0]);
		assert_int_equal(hx_tar(p, m, 2, 0), 0);
		free(ovf);
	}
	{
		static const char *const objs[] = { "template/tmpl/2/503/n503", "template/tmpl/2/504/l504" };
		size_t i;

		for (i = 0; i < 2; i++) {
			snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
			    "\"ExtractTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":"
			    "\"%s\"}}", objs[i]);
			expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0,
			    "ExtractTemplate, OVF references a missing disk");
			assert_true(hx_count(t->x.extract) <= 0);
			snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
			    "\"CopyTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"%s\","
			    "\"dest_store\":{\"url\":\"" STORE1 "\"}}}", objs[i]);
			expect_failure(t, json, PROTO_ERR_INVALID_COMMAND, 0,
			    "CopyTemplate, OVF references a missing disk");
			snprintf(p, sizeof(p), "%s/template", t->x.mount[1]);
			assert_true(hx_count(p) <= 0);
		}
	}

	/* Item 7: a legacy .ova hard-linked to a file outside the store is not linked out. */
	{
		char out_ova[1024], in_ova[1024], xp[1024];
		struct stat a, b;
		const struct proto_file *pf;

		snprintf(out_ova, sizeof(out_ova), "%s/linked.ova", t->outside);
		assert_int_equal(fx_make_ova_tar(work, "l505", sizes, 1, 1, 0, out_ova), 0);
		snprintf(p, sizeof(p), "mkdir -p '%s/template/tmpl/2/505'", t->x.mount[0]);
		assert_int_equal(system(p), 0);
		snprintf(in_ova, sizeof(in_ova), "%s/template/tmpl/2/505/l505.ova", t->x.mount[0]);
		assert_int_equal(link(out_ova, in_ova), 0);
		free(t->outside_before);
		t->outside_before = hx_snapshot(t->outside);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"ExtractTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":"
		    "\"template/tmpl/2/505/l505\"}}");
		expect_success(t, json, &ev);
		pf = NULL;
		assert_non_null(ev.result.download.path);
		snprintf(xp, sizeof(xp), "%s/%s", t->x.extract, ev.result.download.path);
		(void)pf;
		wrk_cmd_result_clear(&ev);
		assert_int_equal(stat(xp, &a), 0);
		assert_int_equal(stat(out_ova, &b), 0);
		assert_true(a.st_ino != b.st_ino);
		assert_int_equal(b.st_nlink, 2);
		assert_int_equal(a.st_nlink, 1);
		assert_true(a.st_size == b.st_size);
		assert_outside_intact(t);
	}
	/* ...while a legacy .ova of the store alone is linked, again and again. */
	{
		char xp[1024], in_ova[1024];
		struct stat a, b;

		snprintf(p, sizeof(p), "mkdir -p '%s/template/tmpl/2/506'", t->x.mount[0]);
		assert_int_equal(system(p), 0);
		snprintf(in_ova, sizeof(in_ova), "%s/template/tmpl/2/506/l506.ova", t->x.mount[0]);
		assert_int_equal(fx_make_ova_tar(work, "l506", sizes, 1, 1, 0, in_ova), 0);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"ExtractTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":"
		    "\"template/tmpl/2/506/l506\"}}");
		expect_success(t, json, &ev);
		snprintf(xp, sizeof(xp), "%s/%s", t->x.extract, ev.result.download.path);
		wrk_cmd_result_clear(&ev);
		assert_int_equal(stat(xp, &a), 0);
		assert_int_equal(stat(in_ova, &b), 0);
		assert_true(a.st_ino == b.st_ino);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID2 "\",\"type\":"
		    "\"ExtractTemplate\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":"
		    "\"template/tmpl/2/506/l506\"}}");
		expect_success(t, json, &ev);
		snprintf(xp, sizeof(xp), "%s/%s", t->x.extract, ev.result.download.path);
		wrk_cmd_result_clear(&ev);
		assert_int_equal(stat(xp, &a), 0);
		assert_true(a.st_ino == b.st_ino);
		assert_int_equal(a.st_nlink, 3);
	}
}

/* ------------------------------------------------- codes of failed downloads */

static char *key_pem, *cert_pem;

static enum MHD_Result
tls_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"no",
	    MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	(void)cls; (void)url; (void)method; (void)version; (void)upload_data;
	(void)upload_size; (void)con_cls;
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rbe");
	char *p;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = calloc(1, (size_t)n + 1);
	if (p != NULL && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

static void
test_download_codes(void **state)
{
	struct hw *t = *state;
	struct MHD_Daemon *d;
	char json[4096], url[256];
	unsigned port;

	/* Item 6: a self-signed HTTPS source is DOWNLOAD_AUTH, not NOT_FOUND. */
	key_pem = slurp(FIXV "server.key");
	cert_pem = slurp(FIXV "server.crt");
	assert_non_null(key_pem);
	assert_non_null(cert_pem);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL,
	    tls_handler, NULL, MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_MEM_CERT,
	    cert_pem, MHD_OPTION_END);
	assert_non_null(d);
	port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/t.ova", port);
	expect_failure(t, reg_json(t, url, CMDID, 601, json, sizeof(json)), PROTO_ERR_DOWNLOAD_AUTH,
	    0, "self-signed source");
	MHD_stop_daemon(d);
	free(key_pem);
	free(cert_pem);
	/* A host name that does not resolve (RFC 6761: .invalid never does). */
	expect_failure(t, reg_json(t, "http://no-such-host.invalid/t.ova", CMDID, 602, json,
	    sizeof(json)), PROTO_ERR_DOWNLOAD_UNREACHABLE, 1, "unresolvable host");
	/* A host that refuses the connection. */
	{
		struct test_httpd h2;

		assert_int_equal(test_httpd_start(&h2, "127.0.0.1", t->www), 0);
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/t.ova", h2.port);
		test_httpd_stop(&h2);
	}
	expect_failure(t, reg_json(t, url, CMDID, 603, json, sizeof(json)),
	    PROTO_ERR_DOWNLOAD_UNREACHABLE, 1, "connection refused");
	/* A source that has no such file, and one that fails: as before. */
	expect_failure(t, reg_json(t, "/status/404", CMDID, 604, json, sizeof(json)),
	    PROTO_ERR_NOT_FOUND, 0, "HTTP 404");
	expect_failure(t, reg_json(t, "/status/503", CMDID, 605, json, sizeof(json)),
	    PROTO_ERR_NOT_FOUND, 1, "HTTP 503");
	expect_failure(t, reg_json(t, "/status/403", CMDID, 606, json, sizeof(json)),
	    PROTO_ERR_DOWNLOAD_AUTH, 0, "HTTP 403");
}

/* -------------------------------------------------------------------- SSRF */

/* form with its "PORT" replaced by port. */
static void
with_port(char *out, size_t outsz, const char *form, unsigned port)
{
	const char *at = strstr(form, "PORT");

	assert_non_null(at);
	snprintf(out, outsz, "%.*s%u%s", (int)(at - form), form, port, at + 4);
}

static void
test_ssrf(void **state)
{
	struct hw *t = *state;
	char json[4096], url[512], redir[1024];
	unsigned port = t->h.port;
	size_t i;
	const char *const forms[] = {
		"http://127.0.0.1:PORT/file/x.ova", "http://127.1:PORT/file/x.ova",
		"http://2130706433:PORT/file/x.ova", "http://0x7f000001:PORT/file/x.ova",
		"http://017700000001:PORT/file/x.ova", "http://[::1]:PORT/file/x.ova",
		"http://[::ffff:127.0.0.1]:PORT/file/x.ova", "http://[::ffff:7f00:1]:PORT/file/x.ova",
		"http://localhost:PORT/file/x.ova", "http://0.0.0.0:PORT/file/x.ova",
		"http://[::]:PORT/file/x.ova", "http://169.254.169.254:PORT/latest/meta-data",
		"http://10.0.0.1:PORT/x.ova", "http://192.168.0.1:PORT/x.ova", "http://[fe80::1]:PORT/x.ova",
		"http://[64:ff9b::7f00:1]:PORT/x.ova", "http://255.255.255.255:PORT/x.ova",
		"http://224.0.0.1:PORT/x.ova",
	};
	const char *const schemes[] = {
		"file:///etc/passwd", "gopher://127.0.0.1/x", "ftp://127.0.0.1/x.ova",
		"dict://127.0.0.1:11211/stat", "ldap://127.0.0.1/x", "http://user:pw@127.0.0.1/x.ova",
		"http:///x.ova", "https://:443/x.ova", "javascript:alert(1)",
	};

	/* No network is allowed: every internal form of an address is refused at connect. */
	t->x.cfg.nallow = 0;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char what[600];

		with_port(url, sizeof(url), forms[i], port);
		snprintf(what, sizeof(what), "SSRF %s", url);
		expect_failure(t, reg_json(t, url, CMDID, 701, json, sizeof(json)),
		    PROTO_ERR_INVALID_COMMAND, 0, what);
	}
	assert_int_equal(t->h.hits, 0);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		expect_failure(t, reg_json(t, schemes[i], CMDID, 702, json, sizeof(json)),
		    PROTO_ERR_INVALID_COMMAND, 0, schemes[i]);
	/* A redirect from an allowed source to an internal one (or another scheme). */
	t->x.cfg.nallow = 1;
	t->x.allow[0].addr[3] = 1;
	t->x.allow[0].prefix = 32;  /* 127.0.0.1 only */
	snprintf(redir, sizeof(redir), "/redirect?to=http://127.0.0.2:%u/file/x.ova", port);
	expect_failure(t, reg_json(t, redir, CMDID, 703, json, sizeof(json)),
	    PROTO_ERR_INVALID_COMMAND, 0, "redirect to 127.0.0.2");
	expect_failure(t, reg_json(t, "/redirect?to=file:///etc/passwd", CMDID, 704, json,
	    sizeof(json)), PROTO_ERR_INVALID_COMMAND, 0, "redirect to file://");
	expect_failure(t, reg_json(t, "/loop", CMDID, 705, json, sizeof(json)),
	    PROTO_ERR_INVALID_COMMAND, 0, "redirect loop");
	{
		char dir[512];

		snprintf(dir, sizeof(dir), "%s/template", t->x.mount[0]);
		assert_true(hx_count(dir) <= 0);
	}
}

/* ------------------------------------------------ secrets, credential binding */

static void
test_secrets(void **state)
{
	struct hw *t = *state;
	char conf[2048], p[512], sec[512];
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	size_t i;
	static const char *const kinds[] = { "fifo", "link", "mode", "dir", "dev", "big", "empty",
	    "two lines" };
	int r;

	alarm(60);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char target[512];

		snprintf(sec, sizeof(sec), "%s/s%zu.secret", t->x.root, i);
		snprintf(target, sizeof(target), "%s/real.secret", t->x.root);
		fx_write_file(target, "pw\n", 3);
		chmod(target, 0600);
		switch (i) {
		case 0: assert_int_equal(mkfifo(sec, 0600), 0); break;
		case 1: assert_int_equal(symlink(target, sec), 0); break;
		case 2: fx_write_file(sec, "TOPSECRET\n", 10); chmod(sec, 0644); break;
		case 3: assert_int_equal(mkdir(sec, 0700), 0); break;
		case 4: snprintf(sec, sizeof(sec), "/dev/zero"); break;
		case 5: {
			char *big = malloc(100000);

			memset(big, 'A', 100000);
			fx_write_file(sec, big, 100000);
			chmod(sec, 0600);
			free(big);
			break;
		}
		case 6: fx_write_file(sec, "", 0); chmod(sec, 0600); break;
		default: fx_write_file(sec, "TOPSECRET\nx\n", 12); chmod(sec, 0600); break;
		}
		/* The AMQP password and a vCenter credential set read secrets the same way. */
		snprintf(conf, sizeof(conf), i % 2 ? "[amqp]\npassword_file = %s\n" :
		    "[vcenter vc1]\nurl = https://vc.example.org/sdk\nuser = u\npassword_file = %s\n",
		    sec);
		snprintf(p, sizeof(p), "%s/h%zu.conf", t->x.root, i);
		fx_write_file(p, conf, strlen(conf));
		r = wrk_config_load(p, NULL, &cfg, &e);
		if (r == 0)
			fail_msg("secret file '%s' accepted", kinds[i]);
		/* A refusal never quotes the secret. */
		assert_null(strstr(e.msg, "TOPSECRET"));
		assert_null(strstr(e.msg, "AAAA"));
	}
	alarm(0);
	/* http:// never carries a password (item 8). */
	snprintf(sec, sizeof(sec), "%s/real.secret", t->x.root);
	snprintf(conf, sizeof(conf), "[vcenter vc1]\nurl = http://vc.example.org/sdk\nuser = u\n"
	    "password_file = %s\n", sec);
	snprintf(p, sizeof(p), "%s/http.conf", t->x.root);
	fx_write_file(p, conf, strlen(conf));
	assert_true(wrk_config_load(p, NULL, &cfg, &e) < 0);
	assert_non_null(strstr(e.msg, "https"));
}

/* A command for a vCenter URL its credential set is not bound to: refused before connecting. */
static void
test_credential_binding(void **state)
{
	struct hw *t = *state;
	static char *urls[] = { "https://vc.example.org/sdk" };
	struct wrk_vcenter vc;
	char json[4096], url[256];
	static const char *const forms[] = {
		"https://127.0.0.1:PORT/sdk", "https://vc.example.org.127.0.0.1.nip.io:PORT/sdk",
		"https://VC.EXAMPLE.ORG:PORT/sdk", "http://vc.example.org:PORT/sdk",
		"https://vc.example.org:PORT/sdk/../evil", "https://vc.example.org:PORT/sdk?x=1",
	};
	size_t i;

	memset(&vc, 0, sizeof(vc));
	vc.name = (char *)"vc1";
	vc.urls = urls;
	vc.nurls = 1;
	vc.user = (char *)"u";
	vc.password = (char *)"TOPSECRET";
	t->x.cfg.vcenters = &vc;
	t->x.cfg.nvcenters = 1;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char what[300];

		with_port(url, sizeof(url), forms[i], t->h.port);
		snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"CreateSnapshot\",\"vcenter\":{\"url\":\"%s\",\"credentials\":\"vc1\"},"
		    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"vm\":{\"name\":\"v\"},\"disk\":"
		    "\"[ds1] v/v.vmdk\",\"account_id\":2,\"volume_id\":13}}", url);
		snprintf(what, sizeof(what), "credentials for %s", url);
		expect_failure(t, json, PROTO_ERR_VCENTER_AUTH, 0, what);
	}
	/* Unknown credential sets, too. */
	snprintf(json, sizeof(json), "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"CreateSnapshot\","
	    "\"vcenter\":{\"url\":\"https://vc.example.org/sdk\",\"credentials\":\"vc2\"},"
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"vm\":{\"name\":\"v\"},\"disk\":"
	    "\"[ds1] v/v.vmdk\",\"account_id\":2,\"volume_id\":13}}");
	expect_failure(t, json, PROTO_ERR_VCENTER_AUTH, 0, "unknown credential set");
	/* Nobody was contacted: the password went nowhere. */
	assert_int_equal(t->h.hits, 0);
	t->x.cfg.vcenters = NULL;
	t->x.cfg.nvcenters = 0;
}

/* -------------------------------------------- malformed messages, delivered */

static void
test_malformed_deliveries(void **state)
{
	struct hw *t = *state;
	struct wrk_outcome o;
	size_t i;
	/* Bodies that must be refused without an answer: no id can be trusted. */
	static const char *const unanswerable[] = {
		/* Item 8: two ids; the last one was answered. */
		"{\"version\":1,\"id\":\"" CMDID "\",\"id\":\"" CMDID2 "\",\"type\":\"DeleteSnapshot\","
		    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"snapshots/1/2/a/a\"}}",
		"{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"DeleteSnapshot\",\"store\":{\"url\":\""
		    STORE0 "\"},\"args\":{\"path\":\"snapshots/1/2/a/a\"},\"\\u0069d\":\"" CMDID2 "\"}",
		"{\"version\":1,\"i\\u0064\":\"" CMDID "\",\"id\":\"" CMDID2 "\",\"type\":"
		    "\"DeleteSnapshot\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":\"x/y\"}}",
		"not json at all",
		"{\"version\":1,\"id\":\"not-a-uuid\",\"type\":\"DeleteSnapshot\"}",
		"[1,2,3]",
		"{\"version\":1,\"type\":\"DeleteSnapshot\"}",
	};

	for (i = 0; i < sizeof(unanswerable) / sizeof(unanswerable[0]); i++) {
		fake_runs = 0;
		deliver(t, unanswerable[i], strlen(unanswerable[i]), fake_run, &o);
		if (o.event != NULL)
			fail_msg("body %zu answered: %s", i, o.event);
		assert_int_equal(o.disp, WRK_DISP_DEAD);
		assert_int_equal(fake_runs, 0);
		assert_string_equal(o.errcode, "INVALID_COMMAND");
		wrk_outcome_clear(&o);
	}
	/* Refused with an answer for the one id there is, and no guessed type. */
	{
		static const char dup_type[] = "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"DeleteSnapshot\",\"type\":\"DeleteTemplate\",\"store\":{\"url\":\"" STORE0
		    "\"},\"args\":{\"path\":\"snapshots/1/2/a/a\"}}";
		static const char dup_nested[] = "{\"version\":1,\"id\":\"" CMDID "\",\"type\":"
		    "\"DeleteSnapshot\",\"store\":{\"url\":\"" STORE0 "\"},\"args\":{\"path\":"
		    "\"snapshots/1/2/a/a\",\"path\":\"../../etc\"}}";

		deliver(t, dup_type, sizeof(dup_type) - 1, fake_run, &o);
		assert_non_null(o.event);
		assert_non_null(strstr(o.event, "\"id\":\"" CMDID "\""));
		assert_null(strstr(o.event, "\"type\""));
		assert_string_equal(o.routing_key, "unknown.failed");
		assert_int_equal(fake_runs, 0);
		wrk_outcome_clear(&o);
		deliver(t, dup_nested, sizeof(dup_nested) - 1, fake_run, &o);
		assert_non_null(o.event);
		assert_non_null(strstr(o.event, "\"id\":\"" CMDID "\""));
		assert_string_equal(o.errcode, "INVALID_COMMAND");
		assert_int_equal(fake_runs, 0);
		wrk_outcome_clear(&o);
	}
	/* Bytes no JSON reader should see: NUL, invalid UTF-8, too deep, too big. */
	{
		static const char nul[] = "{\"version\":1,\"id\":\"" CMDID "\"\0,\"type\":\"x\"}";
		static const char bad_utf8[] = "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"\xc0\xaf\"}";
		struct sw_buf b = SW_BUF_INIT(4 << 20);

		deliver(t, nul, sizeof(nul) - 1, fake_run, &o);
		assert_false(o.parsed);
		assert_int_equal(o.disp, WRK_DISP_DEAD);
		wrk_outcome_clear(&o);
		deliver(t, bad_utf8, sizeof(bad_utf8) - 1, fake_run, &o);
		assert_false(o.parsed);
		wrk_outcome_clear(&o);
		for (i = 0; i < 100000; i++)
			sw_buf_addstr(&b, "[");
		deliver(t, b.ptr, b.len, fake_run, &o);
		assert_false(o.parsed);
		assert_int_equal(o.disp, WRK_DISP_DEAD);
		wrk_outcome_clear(&o);
		/* Over 1 MiB: the AMQP layer drains it unread and passes NULL. */
		deliver(t, NULL, 2 << 20, fake_run, &o);
		assert_false(o.parsed);
		assert_int_equal(o.disp, WRK_DISP_DEAD);
		wrk_outcome_clear(&o);
		sw_buf_free(&b);
	}
	assert_int_equal(fake_runs, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_fields_every_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_links_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_lock_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_downloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_trust, setup, teardown),
		cmocka_unit_test_setup_teardown(test_download_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssrf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credential_binding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_deliveries, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
