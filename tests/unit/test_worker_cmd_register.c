/*
 * Unit tests for RegisterTemplate: an .ova made by GNU tar (with a .mf
 * manifest) served by an in-process HTTP server on 127.0.0.1, downloaded
 * and unpacked into a temporary store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovastore/tprops.h"
#include "tests/fixtures/commands/fixtures.h"
#include "tests/fixtures/commands/httpd.h"
#include "worker/commands/fetch.h"

#define STORE0 "nfs://10.0.0.5/export/secondary"
#define CMDID "c1d2e3f4-a5b6-4789-8abc-def012345678"
#define TDIR "template/tmpl/2/203"
#define TOBJ TDIR "/" CMDID

struct rfx {
	struct fx_env x;
	struct test_httpd h;
	struct test_httpd h2;
	char www[256];
	char ova_sha256[129];
	char ova_md5[129];
	long long ova_size;
};

static const uint64_t disk_sizes[] = { 3 * 1024 * 1024 + 5, 40000 };

static int
setup(void **state)
{
	struct rfx *t = calloc(1, sizeof(*t));
	char work[512], path[512], cmd[1024];
	FILE *p;

	if (t == NULL || fx_env_init(&t->x) < 0)
		return -1;
	snprintf(t->www, sizeof(t->www), "%s/www", t->x.root);
	if (mkdir(t->www, 0755) < 0)
		return -1;
	/* good.ova (with a manifest), badmf.ova (the manifest lies), nomf.ova, junk.ova. */
	snprintf(work, sizeof(work), "%s/w1", t->x.root);
	snprintf(path, sizeof(path), "%s/good.ova", t->www);
	if (fx_make_ova_tar(work, "debian12", disk_sizes, 2, 1, 0, path) < 0)
		return -1;
	t->ova_size = fx_size(path);
	fx_sha256_file(path, t->ova_sha256, sizeof(t->ova_sha256));
	snprintf(cmd, sizeof(cmd), "md5sum '%s'", path);
	p = popen(cmd, "r");
	if (p == NULL || fscanf(p, "%32s", t->ova_md5) != 1)
		return -1;
	pclose(p);
	snprintf(work, sizeof(work), "%s/w2", t->x.root);
	snprintf(path, sizeof(path), "%s/badmf.ova", t->www);
	if (fx_make_ova_tar(work, "debian12", disk_sizes, 2, 1, 1, path) < 0)
		return -1;
	snprintf(work, sizeof(work), "%s/w3", t->x.root);
	snprintf(path, sizeof(path), "%s/nomf.ova", t->www);
	if (fx_make_ova_tar(work, "debian12", disk_sizes, 1, 0, 0, path) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/junk.ova", t->www);
	if (fx_write_file(path, "this is not a tar archive at all, just text....\n", 48) < 0)
		return -1;
	if (test_httpd_start(&t->h, "127.0.0.1", t->www) < 0)
		return -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct rfx *t = *state;

	test_httpd_stop(&t->h);
	test_httpd_stop(&t->h2);
	fx_env_free(&t->x);
	free(t);
	return 0;
}

/* A RegisterTemplate command for path on the test server (or a full URL). */
static struct proto_command *
reg_cmd(struct rfx *t, const char *path, const char *checksum)
{
	char json[4096], url[1024], sum[256] = "";

	if (path[0] != '/')
		snprintf(url, sizeof(url), "%s", path);
	else
		test_httpd_url(&t->h, path, url, sizeof(url));
	if (checksum != NULL)
		snprintf(sum, sizeof(sum), "\"checksum\":\"%s\",", checksum);
	snprintf(json, sizeof(json),
	    "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"RegisterTemplate\","
	    "\"store\":{\"url\":\"" STORE0 "\"},"
	    "\"args\":{\"url\":\"%s\",%s\"account_id\":2,\"template_id\":203}}", url, sum);
	return fx_cmd(json);
}

/* Nothing of the template on the share. */
static void
assert_nothing_left(struct rfx *t)
{
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/" TDIR, t->x.mount[0]);
	assert_true(fx_count_files(dir) <= 0);
}

static void
test_register_ok_and_again(void **state)
{
	struct rfx *t = *state;
	char sum[128], path[512];
	struct proto_command *c;
	struct proto_event ev;
	struct ova_tprops_file *props = NULL;
	struct sw_err e;
	const struct proto_file *pf;
	unsigned hits;
	int code, retry, dfd;

	snprintf(sum, sizeof(sum), "sha256:%s", t->ova_sha256);
	c = reg_cmd(t, "/file/good.ova", sum);
	assert_non_null(c);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, TOBJ ".ova");
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	assert_int_equal(ev.result.physical_size >= disk_sizes[0] + disk_sizes[1], 1);
	assert_int_equal(ev.result.virtual_size, 2 * 64ull * 1024 * 1024);
	/* Two disks, the OVF, the meta, template.properties; the .mf is not stored. */
	assert_int_equal(ev.result.nfiles, 5);
	/* The files are named after the object, not after the archive's members. */
	pf = fx_result_file(&ev, CMDID "-disk0.vmdk");
	assert_non_null(pf);
	assert_int_equal(pf->size, disk_sizes[0]);
	assert_non_null(fx_result_file(&ev, CMDID ".ovf"));
	assert_null(fx_result_file(&ev, "debian12.ovf"));
	assert_non_null(fx_result_file(&ev, CMDID ".ova.meta"));
	assert_null(fx_result_file(&ev, ".mf"));
	assert_string_equal(ev.result.files[4].path, TDIR "/template.properties");
	assert_int_equal(fx_event_builds(&ev, c, &e), 0);
	wrk_cmd_result_clear(&ev);
	/* Progress was reported up to 100 %, with the bytes of the whole .ova. */
	assert_true(t->x.progress_calls >= 1);
	assert_int_equal(t->x.last_percent, 100);
	assert_int_equal(t->x.last_bytes, (uint64_t)t->ova_size);

	/* What is on the share: an intact object and CloudStack's record. */
	{
		struct ova_store *s = NULL;
		assert_int_equal(ova_store_open(t->x.mount[0], &s, &e), 0);
		assert_int_equal(ova_verify(s, TOBJ, 0, &e), 0);
		ova_store_close(s);
	}
	snprintf(path, sizeof(path), "%s/" TDIR, t->x.mount[0]);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ova_tprops_read(dfd, &props, NULL, &e), 0);
	close(dfd);
	assert_string_equal(ova_tprops_get(props, "id"), "203");
	assert_string_equal(ova_tprops_get(props, "uniquename"), CMDID);
	assert_string_equal(ova_tprops_get(props, "filename"), CMDID ".ova");
	assert_string_equal(ova_tprops_get(props, "ova.filename"), CMDID ".ova");
	assert_string_equal(ova_tprops_get(props, "ova"), "false");
	assert_string_equal(ova_tprops_get(props, "virtualsize"), "134217728");
	assert_string_equal(ova_tprops_get(props, "checksum"), t->ova_sha256);
	ova_tprops_free(props);
	assert_int_equal(fx_count_files(path), 5);

	/* Redelivered: answered from the share without downloading again. */
	hits = t->h.hits;
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(t->h.hits, hits);
	assert_int_equal(ev.result.nfiles, 5);
	assert_string_equal(ev.result.install_path, TOBJ ".ova");
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);

	/* Another command for the same template is refused: it is registered. */
	{
		char json[2048], url[512];

		test_httpd_url(&t->h, "/file/good.ova", url, sizeof(url));
		snprintf(json, sizeof(json),
		    "{\"version\":1,\"id\":\"00000000-0000-4000-8000-000000000001\","
		    "\"type\":\"RegisterTemplate\",\"store\":{\"url\":\"" STORE0 "\"},"
		    "\"args\":{\"url\":\"%s\",\"account_id\":2,\"template_id\":203}}", url);
		c = fx_cmd(json);
		assert_non_null(c);
		assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
		assert_int_equal(code, PROTO_ERR_STORE_IO);
		assert_int_equal(retry, 0);
		assert_non_null(strstr(e.msg, "registered already"));
		assert_int_equal(fx_count_files(path), 5);
		proto_command_free(c);
	}
}

static void
test_register_md5_chunked(void **state)
{
	struct rfx *t = *state;
	char sum[128];
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	snprintf(sum, sizeof(sum), "md5:%s", t->ova_md5);
	c = reg_cmd(t, "/chunked/good.ova", sum);
	assert_non_null(c);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.nfiles, 5);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

static void
test_register_checksum_mismatch(void **state)
{
	struct rfx *t = *state;
	char sum[128];
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	snprintf(sum, sizeof(sum), "sha256:%s", t->ova_sha256);
	sum[7] = sum[7] == '0' ? '1' : '0';
	c = reg_cmd(t, "/file/good.ova", sum);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_CHECKSUM_MISMATCH);
	assert_int_equal(retry, 0);
	assert_non_null(strstr(e.msg, "expects"));
	assert_null(ev.result.install_path);
	assert_nothing_left(t);
	proto_command_free(c);
}

static void
test_register_manifest_mismatch(void **state)
{
	struct rfx *t = *state;
	struct proto_command *c = reg_cmd(t, "/file/badmf.ova", NULL);
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_CHECKSUM_MISMATCH);
	assert_int_equal(retry, 0);
	assert_nothing_left(t);
	proto_command_free(c);
}

static void
test_register_size_limit(void **state)
{
	struct rfx *t = *state;
	struct proto_command *c = reg_cmd(t, "/file/good.ova", NULL);
	struct proto_command *c2 = reg_cmd(t, "/chunked/good.ova", NULL);
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	assert_non_null(c);
	assert_non_null(c2);
	t->x.cfg.download_max_size = 1024 * 1024;
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_int_equal(retry, 0);
	assert_non_null(strstr(e.msg, "limit"));
	assert_nothing_left(t);
	/* Without Content-Length the limit holds while streaming. */
	assert_true(fx_run(&t->x, c2, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_non_null(strstr(e.msg, "limit"));
	assert_nothing_left(t);
	proto_command_free(c);
	proto_command_free(c2);
}

static void
test_register_address_policy(void **state)
{
	struct rfx *t = *state;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	char target[512], redir[1024];
	int code, retry;

	/* The second server on 127.0.0.2 serves the same files. */
	assert_int_equal(test_httpd_start(&t->h2, "127.0.0.2", t->www), 0);
	test_httpd_url(&t->h2, "/file/good.ova", target, sizeof(target));
	snprintf(redir, sizeof(redir), "/redirect?to=%s", target);
	assert_int_equal(wrk_net_parse("127.0.0.1/32", &t->x.allow[0], NULL), 0);
	c = reg_cmd(t, redir, NULL);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_int_equal(retry, 0);
	assert_non_null(strstr(e.msg, "127.0.0.2"));
	assert_int_equal(t->h2.hits, 0);
	assert_nothing_left(t);
	/* With no allow list at all, loopback is refused outright. */
	t->x.cfg.nallow = 0;
	proto_command_free(c);
	c = reg_cmd(t, "/file/good.ova", NULL);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_non_null(strstr(e.msg, "loopback"));
	assert_nothing_left(t);
	proto_command_free(c);
}

static void
test_register_schemes(void **state)
{
	struct rfx *t = *state;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	/* proto/ refuses other schemes in the command ... */
	assert_null(reg_cmd(t, "ftp://127.0.0.1/x.ova", NULL));
	assert_null(reg_cmd(t, "file:///etc/passwd", NULL));
	/* ... and the fetcher refuses them in redirects. */
	c = reg_cmd(t, "/redirect?to=file:///etc/passwd", NULL);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_int_equal(retry, 0);
	assert_non_null(strstr(e.msg, "http"));
	assert_nothing_left(t);
	proto_command_free(c);
}

static void
test_register_bad_sources(void **state)
{
	struct rfx *t = *state;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	c = reg_cmd(t, "/file/junk.ova", NULL);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_int_equal(retry, 0);
	assert_nothing_left(t);
	proto_command_free(c);

	c = reg_cmd(t, "/file/missing.ova", NULL);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_NOT_FOUND);
	assert_int_equal(retry, 0);
	assert_nothing_left(t);
	proto_command_free(c);

	c = reg_cmd(t, "/status/503", NULL);
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_NOT_FOUND);
	assert_int_equal(retry, 1);
	proto_command_free(c);

	/* The deadline ends a download that is too slow. */
	c = reg_cmd(t, "/stall/good.ova", NULL);
	assert_non_null(c);
	t->x.cancel = 0;
	{
		struct wrk_job job;

		memset(&job, 0, sizeof(job));
		job.cmd = c;
		job.cfg = &t->x.cfg;
		job.cancel = &t->x.cancel;
		job.deadline_ms = sw_mono_ms() + 600;
		memset(&ev, 0, sizeof(ev));
		assert_true(wrk_cmd_run(&job, &ev, &e) < 0);
		/* The command's own deadline is over: final, not retried. */
		assert_int_equal(e.kind, PROTO_ERR_TIMEOUT);
		assert_false(e.retryable);
	}
	assert_nothing_left(t);
	proto_command_free(c);
}

static void
test_register_replaces_uncommitted(void **state)
{
	struct rfx *t = *state;
	struct proto_command *c = reg_cmd(t, "/file/nomf.ova", NULL);
	static const uint64_t stale[] = { 999 };
	struct ova_store *s = NULL;
	struct proto_event ev;
	struct sw_err e;
	char path[512];
	int code, retry;

	assert_non_null(c);
	/*
	 * An earlier attempt that died after the object's meta but before
	 * template.properties: the object is there, its record is not.
	 */
	assert_int_equal(ova_store_open(t->x.mount[0], &s, &e), 0);
	assert_int_equal(fx_make_new(s, TOBJ, stale, 1), 0);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.nfiles, 4);   /* one disk, OVF, meta, template.properties */
	assert_int_equal(ova_verify(s, TOBJ, 0, &e), 0);
	/* The stale disk (999 bytes) was replaced by the download's, of the same name. */
	snprintf(path, sizeof(path), "%s/" TOBJ "-disk0.vmdk", t->x.mount[0]);
	assert_int_equal(fx_size(path), (long long)disk_sizes[0]);
	snprintf(path, sizeof(path), "%s/" TDIR "/debian12-disk0.vmdk", t->x.mount[0]);
	assert_false(fx_exists(path));
	wrk_cmd_result_clear(&ev);
	ova_store_close(s);
	proto_command_free(c);
}

/* CloudStack's unique name names the object; without one, the command id in lower case. */
static void
test_register_unique_name(void **state)
{
	struct rfx *t = *state;
	struct ova_tprops_file *props = NULL;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	char json[2048], url[512], path[512];
	int code, retry, dfd;

	test_httpd_url(&t->h, "/file/good.ova", url, sizeof(url));
	snprintf(json, sizeof(json),
	    "{\"version\":1,\"id\":\"C1D2E3F4-A5B6-4789-8ABC-DEF012345678\","
	    "\"type\":\"RegisterTemplate\",\"store\":{\"url\":\"" STORE0 "\"},"
	    "\"args\":{\"url\":\"%s\",\"account_id\":2,\"template_id\":203}}", url);
	c = fx_cmd(json);
	assert_non_null(c);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, TOBJ ".ova");
	assert_non_null(fx_result_file(&ev, "/" CMDID ".ovf"));
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);

	snprintf(json, sizeof(json),
	    "{\"version\":1,\"id\":\"" CMDID "\","
	    "\"type\":\"RegisterTemplate\",\"store\":{\"url\":\"" STORE0 "\"},"
	    "\"args\":{\"url\":\"%s\",\"account_id\":2,\"template_id\":204,"
	    "\"unique_name\":\"204-2-Debian_12.x\"}}", url);
	c = fx_cmd(json);
	assert_non_null(c);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, "template/tmpl/2/204/204-2-Debian_12.x.ova");
	assert_non_null(fx_result_file(&ev, "/204-2-Debian_12.x.ovf"));
	assert_non_null(fx_result_file(&ev, "/204-2-Debian_12.x-disk1.vmdk"));
	assert_non_null(fx_result_file(&ev, "/204-2-Debian_12.x.ova.meta"));
	wrk_cmd_result_clear(&ev);
	snprintf(path, sizeof(path), "%s/template/tmpl/2/204", t->x.mount[0]);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ova_tprops_read(dfd, &props, NULL, &e), 0);
	close(dfd);
	assert_string_equal(ova_tprops_get(props, "uniquename"), "204-2-Debian_12.x");
	assert_string_equal(ova_tprops_get(props, "filename"), "204-2-Debian_12.x.ova");
	assert_string_equal(ova_tprops_get(props, "id"), "204");
	ova_tprops_free(props);
	/* Redelivered: the same answer from the share. */
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, "template/tmpl/2/204/204-2-Debian_12.x.ova");
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_ok_and_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_md5_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_checksum_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_manifest_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_address_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_schemes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_bad_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_replaces_uncommitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_unique_name, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
