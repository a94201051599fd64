/*
 * Unit tests of the vCenter-backed commands' store side and plumbing
 * (worker/commands/vc.h): CreateTemplate from a snapshot of either format
 * (no vCenter involved) and the credential-set checks (the crash journal
 * is ovastore's: test_ovastore_state.c)
 * that must refuse a command before any connection is made.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fixtures/commands/fixtures.h"
#include "worker/commands/vc.h"

#define STORE0 "nfs://10.0.0.5/export/secondary"
#define ID0 "0f1e2d3c-4b5a-4968-8776-655443322110"
#define ID1 "1f1e2d3c-4b5a-4968-8776-655443322111"
#define SNAPU "aa44054a-d099-4b9d-8fbf-211217381da0"
#define SNAP "snapshots/2/13/" SNAPU "/" SNAPU
#define LEGU "db92a8e4-079f-4055-84f5-08d33f6f9fef"
#define LEGACY "snapshots/2/7/" LEGU

static int
setup(void **state)
{
	struct fx_env *x = calloc(1, sizeof(*x));

	if (x == NULL || fx_env_init(x) < 0)
		return -1;
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct fx_env *x = *state;

	fx_env_free(x);
	free(x);
	return 0;
}

static struct proto_command *
cmd_json(const char *id, const char *type, const char *vc_url, const char *args)
{
	char json[4096];

	snprintf(json, sizeof(json),
	    "{\"version\":1,\"id\":\"%s\",\"type\":\"%s\","
	    "\"vcenter\":{\"url\":\"%s\",\"credentials\":\"vc1\"},"
	    "\"store\":{\"url\":\"" STORE0 "\"},\"args\":%s}", id, type, vc_url, args);
	return fx_cmd(json);
}

/* Runs CreateTemplate's implementation directly (template.c's entry point calls it). */
static int
run_template(struct fx_env *x, const struct proto_command *cmd, struct proto_event *ev,
    int *code, int *retry, struct sw_err *e)
{
	struct wrk_job job;
	struct wrk__cmd c;
	int r;

	memset(&job, 0, sizeof(job));
	job.cmd = cmd;
	job.cfg = &x->cfg;
	job.worker_name = "test:1";
	job.cancel = &x->cancel;
	job.deadline_ms = sw_mono_ms() + 120000;
	job.progress = fx_progress;
	job.progress_ud = x;
	memset(ev, 0, sizeof(*ev));
	memset(&c, 0, sizeof(c));
	c.job = &job;
	c.cmd = cmd;
	c.ev = ev;
	c.e = e;
	sw_err_clear(e);
	r = wrk__cmd_create_template(&c, e);
	*code = e->kind;
	*retry = e->retryable;
	if (r < 0) {
		fprintf(stderr, "CreateTemplate: %d (%s): %s\n", r,
		    proto_errcode_name(e->kind) ? proto_errcode_name(e->kind) : "?", e->msg);
		wrk_cmd_result_clear(ev);
	}
	return r;
}

static struct ova_store *
open_store(struct fx_env *x)
{
	struct ova_store *s = NULL;
	struct sw_err e;

	assert_int_equal(ova_store_open(x->mount[0], &s, &e), 0);
	return s;
}

static int
same_file(const char *a, const char *b)
{
	char ha[129], hb[129];

	return fx_sha256_file(a, ha, sizeof(ha)) == 0 && fx_sha256_file(b, hb, sizeof(hb)) == 0 &&
	    strcmp(ha, hb) == 0;
}

static const char *
props_value(const char *path, const char *key, char *out, size_t outsz)
{
	char buf[8192], *p, *line;
	size_t klen = strlen(key);
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (line = buf; line != NULL && *line != '\0'; line = p) {
		p = strchr(line, '\n');
		if (p != NULL)
			*p++ = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			snprintf(out, outsz, "%s", line + klen + 1);
			return out;
		}
	}
	return NULL;
}

/* --------------------------------------------------- CreateTemplate */

static void
test_template_from_new_snapshot(void **state)
{
	struct fx_env *x = *state;
	static const uint64_t sizes[2] = { 300000, 70000 };
	struct ova_store *s = open_store(x);
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	char p1[512], p2[512], v[128];
	const char *dir = "template/tmpl/2/201";
	int code, retry;

	assert_int_equal(fx_make_new(s, SNAP, sizes, 2), 0);
	c = cmd_json(ID0, "CreateTemplate", "https://vc1.example.org/sdk",
	    "{\"account_id\":2,\"template_id\":201,\"snapshot_path\":\"" SNAP ".ova\"}");
	assert_non_null(c);
	assert_int_equal(run_template(x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, "template/tmpl/2/201/" ID0 ".ova");
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	/* Two disks (their names kept), the OVF, the meta, template.properties. */
	assert_int_equal(ev.result.nfiles, 5);
	assert_non_null(fx_result_file(&ev, "/" SNAPU "-disk0.vmdk"));
	assert_non_null(fx_result_file(&ev, "/" SNAPU "-disk1.vmdk"));
	assert_non_null(fx_result_file(&ev, "/" ID0 ".ova.meta"));
	assert_string_equal(ev.result.files[4].path, "template/tmpl/2/201/template.properties");
	/* Every file carries its digest, the small ones too. */
	for (size_t i = 0; i < ev.result.nfiles; i++)
		assert_non_null(ev.result.files[i].sha256);
	assert_int_equal(ev.result.virtual_size, 2ull * 64 * 1024 * 1024);
	assert_int_equal(fx_event_builds(&ev, c, &e), 0);
	for (int k = 0; k < 2; k++) {
		snprintf(p1, sizeof(p1), "%s/%s-disk%d.vmdk", x->mount[0], SNAP, k);
		snprintf(p2, sizeof(p2), "%s/%s/" SNAPU "-disk%d.vmdk", x->mount[0], dir, k);
		assert_true(same_file(p1, p2));
	}
	assert_int_equal(ova_verify(s, "template/tmpl/2/201/" ID0, 0, &e), 0);
	snprintf(p1, sizeof(p1), "%s/%s/template.properties", x->mount[0], dir);
	assert_string_equal(props_value(p1, "uniquename", v, sizeof(v)), ID0);
	assert_string_equal(props_value(p1, "id", v, sizeof(v)), "201");
	assert_string_equal(props_value(p1, "ova", v, sizeof(v)), "false");
	assert_string_equal(props_value(p1, "virtualsize", v, sizeof(v)), "134217728");
	/* The source is untouched. */
	assert_int_equal(ova_verify(s, SNAP, 0, &e), 0);
	assert_true(x->progress_calls > 0);
	wrk_cmd_result_clear(&ev);

	/* A redelivery answers the same without rewriting anything. */
	snprintf(p2, sizeof(p2), "%s/%s/" SNAPU "-disk0.vmdk", x->mount[0], dir);
	struct stat st0, st1;
	assert_int_equal(stat(p2, &st0), 0);
	assert_int_equal(run_template(x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.nfiles, 5);
	assert_int_equal(stat(p2, &st1), 0);
	assert_int_equal(st0.st_ino, st1.st_ino);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);

	/* Another command for the same template id is refused: it exists as another object. */
	c = cmd_json(ID1, "CreateTemplate", "https://vc1.example.org/sdk",
	    "{\"account_id\":2,\"template_id\":201,\"snapshot_path\":\"" SNAP "\"}");
	assert_true(run_template(x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_STORE_IO);
	assert_int_equal(retry, 0);
	proto_command_free(c);
	ova_store_close(s);
}

static void
test_template_from_legacy_snapshot(void **state)
{
	struct fx_env *x = *state;
	static const uint64_t sizes[2] = { 123457, 4096 };
	struct ova_store *s = open_store(x);
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	char work[256], ova[512], p1[512], p2[512], cmdline[1200];
	int code, retry;
	long nfiles;

	snprintf(work, sizeof(work), "%s/work", x->root);
	snprintf(ova, sizeof(ova), "%s/snapshots/2/7", x->mount[0]);
	snprintf(cmdline, sizeof(cmdline), "mkdir -p %s", ova);
	assert_int_equal(system(cmdline), 0);
	snprintf(ova, sizeof(ova), "%s/%s.ova", x->mount[0], LEGACY);
	/* A legacy snapshot as CloudStack wrote them: GNU tar of OVF + disks (+ manifest). */
	assert_int_equal(fx_make_ova_tar(work, LEGU, sizes, 2, 1, 0, ova), 0);
	c = cmd_json(ID0, "CreateTemplate", "https://vc1.example.org/sdk",
	    "{\"account_id\":3,\"template_id\":301,\"unique_name\":\"tmpl-301\","
	    "\"snapshot_path\":\"" LEGACY "\"}");
	assert_non_null(c);
	assert_int_equal(run_template(x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, "template/tmpl/3/301/tmpl-301.ova");
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	assert_int_equal(ev.result.nfiles, 5);
	for (int k = 0; k < 2; k++) {
		snprintf(p1, sizeof(p1), "%s/%s-disk%d.vmdk", work, LEGU, k);
		snprintf(p2, sizeof(p2), "%s/template/tmpl/3/301/%s-disk%d.vmdk", x->mount[0], LEGU,
		    k);
		assert_true(same_file(p1, p2));
	}
	assert_int_equal(ova_verify(s, "template/tmpl/3/301/tmpl-301", 0, &e), 0);
	/* Read in place: nothing unpacked next to the legacy archive, which is intact. */
	snprintf(p1, sizeof(p1), "%s/snapshots/2/7", x->mount[0]);
	assert_int_equal(fx_count_files(p1), 1);
	snprintf(p1, sizeof(p1), "%s/template/tmpl/3/301", x->mount[0]);
	nfiles = fx_count_files(p1);
	assert_int_equal(nfiles, 5);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
	ova_store_close(s);
}

static void
test_template_missing_source(void **state)
{
	struct fx_env *x = *state;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	char p[512];
	int code, retry;

	c = cmd_json(ID0, "CreateTemplate", "https://vc1.example.org/sdk",
	    "{\"account_id\":2,\"template_id\":202,\"snapshot_path\":\"snapshots/9/9/x/x\"}");
	assert_non_null(c);
	assert_true(run_template(x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_NOT_FOUND);
	assert_null(ev.result.install_path);
	/* Not even an empty directory. */
	snprintf(p, sizeof(p), "%s/template", x->mount[0]);
	assert_false(fx_exists(p));
	proto_command_free(c);
}

static void
test_template_unknown_store(void **state)
{
	struct fx_env *x = *state;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	c = fx_cmd("{\"version\":1,\"id\":\"" ID0 "\",\"type\":\"CreateTemplate\","
	    "\"store\":{\"url\":\"nfs://nowhere/x\"},\"args\":{\"account_id\":2,"
	    "\"template_id\":202,\"snapshot_path\":\"" SNAP "\"}}");
	assert_non_null(c);
	assert_true(run_template(x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_UNKNOWN_STORE);
	proto_command_free(c);
}

/* ------------------------------------------------------------- journal */

/* ------------------------------------------------- credential binding */

static void
test_vcenter_credentials_checked_first(void **state)
{
	struct fx_env *x = *state;
	static char *urls[] = { "https://127.0.0.1:1/sdk" };
	struct wrk_vcenter vc;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	char p[512];
	int code, retry;

	memset(&vc, 0, sizeof(vc));
	vc.name = "vc1";
	vc.urls = urls;
	vc.nurls = 1;
	vc.user = "u";
	vc.password = "secret-pw";
	vc.insecure = 1;
	x->cfg.vcenters = &vc;
	x->cfg.nvcenters = 1;

	/* A URL the set is not bound to: refused before any connection. */
	c = cmd_json(ID0, "CreateSnapshot", "https://evil.example.org/sdk",
	    "{\"vm\":{\"name\":\"i-2-3-VM\"},\"disk\":\"[ds1] i-2-3-VM/ROOT-3.vmdk\","
	    "\"account_id\":2,\"volume_id\":13}");
	assert_non_null(c);
	assert_true(fx_run(x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_VCENTER_AUTH);
	assert_int_equal(retry, 0);
	assert_null(strstr(e.msg, "secret-pw"));
	assert_null(strstr(e.msg, "evil"));
	proto_command_free(c);

	c = cmd_json(ID0, "ExtractVolume", "https://evil.example.org/sdk",
	    "{\"vm\":{\"name\":\"i-2-3-VM\"},\"disk\":\"[ds1] i-2-3-VM/ROOT-3.vmdk\","
	    "\"account_id\":2,\"volume_id\":13}");
	assert_true(fx_run(x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_VCENTER_AUTH);
	proto_command_free(c);

	/* The bound URL with nothing listening: unreachable, retryable; nothing on the share. */
	c = cmd_json(ID0, "CreateSnapshot", "https://127.0.0.1:1/sdk",
	    "{\"vm\":{\"name\":\"i-2-3-VM\"},\"disk\":\"[ds1] i-2-3-VM/ROOT-3.vmdk\","
	    "\"account_id\":2,\"volume_id\":13}");
	assert_true(fx_run(x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_VCENTER_UNREACHABLE);
	assert_int_equal(retry, 1);
	snprintf(p, sizeof(p), "%s/snapshots/2/13/" ID0, x->mount[0]);
	assert_true(fx_count_files(p) <= 0);
	proto_command_free(c);
	x->cfg.vcenters = NULL;
	x->cfg.nvcenters = 0;
}

/* The per-phase line a CreateSnapshot logs: the vCenter steps summed apart from the stream. */
static void
test_phases_fmt(void **state)
{
	struct wrk__phases p = { .find = 2, .snapshot = 120, .worker_vm = 300, .lease = 45,
	    .stream = 2048, .descriptor = 10, .cleanup = 250, .commit = 30,
	    .bytes = 1073741824 };
	char buf[320], small[24];
	int n;

	(void)state;
	assert_int_equal(wrk__phases_vcenter(&p), 727);
	n = wrk__phases_fmt(&p, buf, sizeof(buf));
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_string_equal(buf, "phases: vcenter 727 ms (find 2, snapshot 120, worker_vm 300, "
	    "lease 45, descriptor 10, cleanup 250), stream 2048 ms (1073741824 bytes, 500.0 "
	    "MiB/s), commit 30 ms");
	/* A stream too short to time: no rate, no division by zero. */
	p.stream = 0;
	(void)wrk__phases_fmt(&p, buf, sizeof(buf));
	assert_non_null(strstr(buf, "stream 0 ms (1073741824 bytes, 0.0 MiB/s)"));
	/* Cut to the buffer, terminated. */
	n = wrk__phases_fmt(&p, small, sizeof(small));
	assert_true((size_t)n >= sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_template_from_new_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_from_legacy_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_missing_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_unknown_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vcenter_credentials_checked_first, setup,
		    teardown),
		cmocka_unit_test(test_phases_fmt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
