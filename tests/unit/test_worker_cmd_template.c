/*
 * Unit tests for DeleteTemplate, ExtractTemplate and CopyTemplate against
 * temporary stores, with objects made by ovastore's writer (new format) and
 * by GNU tar (legacy), and generated archives checked with GNU tar.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ovastore/tprops.h"
#include "tests/fixtures/commands/fixtures.h"

#define STORE0 "nfs://10.0.0.5/export/secondary"
#define STORE1 "nfs://10.0.0.6/export/secondary2"
#define CMDID "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
#define TDIR "template/tmpl/2/201"
#define TNAME "201-2-6c3a9f0e"
#define TOBJ TDIR "/" TNAME

struct tfx {
	struct fx_env x;
	struct ova_store *s0;
	struct ova_store *s1;
};

static int
setup(void **state)
{
	struct tfx *t = calloc(1, sizeof(*t));
	struct sw_err e;

	if (t == NULL || fx_env_init(&t->x) < 0)
		return -1;
	if (ova_store_open(t->x.mount[0], &t->s0, &e) < 0 ||
	    ova_store_open(t->x.mount[1], &t->s1, &e) < 0)
		return -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tfx *t = *state;

	ova_store_close(t->s0);
	ova_store_close(t->s1);
	fx_env_free(&t->x);
	free(t);
	return 0;
}

static struct proto_command *
cmd_of(const char *type, const char *args)
{
	char json[4096];

	snprintf(json, sizeof(json),
	    "{\"version\":1,\"id\":\"" CMDID "\",\"type\":\"%s\",\"store\":{\"url\":\"" STORE0 "\"},"
	    "\"args\":%s}", type, args);
	return fx_cmd(json);
}

/* template.properties for TNAME (or another name) in store root/TDIR. */
static void
put_tprops(const char *mount, const char *uniquename)
{
	struct ova_tprops p;
	struct sw_err e;
	char dir[1024];
	int dfd;

	snprintf(dir, sizeof(dir), "%s/" TDIR, mount);
	assert_int_equal(fx_run_argv((char *[]){ "mkdir", "-p", dir, NULL }), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	memset(&p, 0, sizeof(p));
	p.id = 201;
	p.uniquename = uniquename;
	p.size = 1;
	p.virtual_size = 1;
	assert_int_equal(ova_tprops_write(dfd, &p, NULL, &e), 0);
	close(dfd);
}

static void
make_legacy(struct tfx *t, const char *mount, uint64_t size)
{
	char dir[1024], path[1024], work[1024];
	uint64_t sizes[1] = { size };

	snprintf(dir, sizeof(dir), "%s/" TDIR, mount);
	assert_int_equal(fx_run_argv((char *[]){ "mkdir", "-p", dir, NULL }), 0);
	snprintf(path, sizeof(path), "%s/" TNAME ".ova", dir);
	snprintf(work, sizeof(work), "%s/work-legacy", t->x.root);
	assert_int_equal(fx_make_ova_tar(work, TNAME, sizes, 1, 0, 0, path), 0);
}

/* ---------------------------------------------------------- DeleteTemplate */

static void
test_delete_template(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("DeleteTemplate", "{\"path\":\"" TOBJ ".ova\"}");
	static const uint64_t sizes[] = { 50000 };
	struct proto_event ev;
	struct sw_err e;
	char path[1024];
	int code, retry;

	assert_non_null(c);
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 1), 0);
	put_tprops(t->x.mount[0], TNAME);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	assert_int_equal(ev.result.nfiles, 4);
	/* template.properties went first, so it is listed first. */
	assert_string_equal(ev.result.files[0].path, TDIR "/template.properties");
	assert_true(ev.result.files[0].size > 0);
	assert_non_null(fx_result_file(&ev, TNAME "-disk0.vmdk"));
	assert_non_null(fx_result_file(&ev, TNAME ".ova.meta"));
	assert_int_equal(fx_event_builds(&ev, c, &e), 0);
	wrk_cmd_result_clear(&ev);
	snprintf(path, sizeof(path), "%s/" TDIR, t->x.mount[0]);
	assert_false(fx_exists(path));

	/* Twice: nothing left to remove. */
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.nfiles, 0);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

/* Another object in the template directory goes too: CloudStack removes the directory. */
static void
test_delete_template_whole_directory(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("DeleteTemplate", "{\"path\":\"" TOBJ "\"}");
	static const uint64_t sizes[] = { 1000 };
	struct proto_event ev;
	struct sw_err e;
	char path[1024];
	int code, retry;

	assert_non_null(c);
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 1), 0);
	assert_int_equal(fx_make_new(t->s0, TDIR "/newer", sizes, 1), 0);
	put_tprops(t->x.mount[0], "newer");
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.nfiles, 7);
	assert_string_equal(ev.result.files[0].path, TDIR "/template.properties");
	assert_string_equal(ev.result.files[1].path, TDIR "/" TNAME ".ova.meta");
	assert_string_equal(ev.result.files[2].path, TDIR "/newer.ova.meta");
	assert_non_null(fx_result_file(&ev, "/newer-disk0.vmdk"));
	snprintf(path, sizeof(path), "%s/" TDIR, t->x.mount[0]);
	assert_false(fx_exists(path));
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

/*
 * What CloudStack leaves in a template directory goes with the template
 * (issue 11 item 4): OVAProcessor's untarred members beside a legacy .ova,
 * CloudStack's extract's NAME.ova beside a new-format object; links planted
 * there are removed themselves, their targets outside the store kept.
 */
static void
test_delete_template_leftovers(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("DeleteTemplate", "{\"path\":\"" TOBJ ".ova\"}");
	static const uint64_t sizes[] = { 30000 };
	static const char *const want[] = {
		TDIR "/template.properties", TDIR "/" TNAME ".ova", TDIR "/escape",
		TDIR "/vendor-disk0.vmdk", TDIR "/vendor.mf", TDIR "/vendor.ovf",
	};
	struct proto_event ev;
	struct sw_err e;
	char dir[1024], path[1024], work[1024], outside[1024];
	size_t i;
	int code, retry;

	assert_non_null(c);
	snprintf(dir, sizeof(dir), "%s/" TDIR, t->x.mount[0]);
	assert_int_equal(fx_run_argv((char *[]){ "mkdir", "-p", dir, NULL }), 0);
	snprintf(path, sizeof(path), "%s/" TNAME ".ova", dir);
	snprintf(work, sizeof(work), "%s/work-vendor", t->x.root);
	assert_int_equal(fx_make_ova_tar(work, "vendor", sizes, 1, 1, 0, path), 0);
	/* CloudStack's OVAProcessor untars the archive beside it. */
	assert_int_equal(fx_run_argv((char *[]){ "tar", "-xf", path, "-C", dir, NULL }), 0);
	put_tprops(t->x.mount[0], TNAME);
	snprintf(outside, sizeof(outside), "%s/outside-secret", t->x.root);
	assert_int_equal(fx_write_file(outside, "secret", 6), 0);
	snprintf(path, sizeof(path), "%s/escape", dir);
	assert_int_equal(symlink(outside, path), 0);

	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVA);
	assert_int_equal(ev.result.nfiles, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(ev.result.files[i].path, want[i]);
	assert_int_equal(fx_event_builds(&ev, c, &e), 0);
	wrk_cmd_result_clear(&ev);
	assert_false(fx_exists(dir));
	assert_int_equal(fx_size(outside), 6);

	/* A new-format template with CloudStack's extract beside it. */
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 1), 0);
	snprintf(path, sizeof(path), "%s/" TNAME ".ova", dir);
	assert_int_equal(fx_write_file(path, "tar", 3), 0);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	assert_int_equal(ev.result.nfiles, 4);
	assert_string_equal(ev.result.files[0].path, TOBJ ".ova.meta");
	assert_string_equal(ev.result.files[1].path, TOBJ ".ova");
	wrk_cmd_result_clear(&ev);
	assert_false(fx_exists(dir));
	proto_command_free(c);
}

/*
 * Issue 14 item 5: a broken or symlinked meta must not turn a delete into
 * a success that orphans the OVF and the disks: every file goes, found by
 * the directory, not by the meta.
 */
static void
test_delete_template_broken_meta(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("DeleteTemplate", "{\"path\":\"" TOBJ "\"}");
	static const uint64_t sizes[] = { 1000 };
	static const char *const metas[] = {
		"version=1.0\novf=" TNAME ".ovf\nnumDisks=0\n",
		"version=1.0\novf=" TNAME ".ovf\nnumDisks=1\ndisk1.name=../x\ndisk1.size=1000\n",
		NULL,   /* a 10 MB line */
		"",     /* a link to a well-formed meta outside the store */
	};
	struct proto_event ev;
	struct sw_err e;
	char dir[1024], path[1024], outside[1024];
	size_t i;
	int code, retry;

	assert_non_null(c);
	snprintf(dir, sizeof(dir), "%s/" TDIR, t->x.mount[0]);
	snprintf(outside, sizeof(outside), "%s/outside.ova.meta", t->x.root);
	for (i = 0; i < sizeof(metas) / sizeof(metas[0]); i++) {
		assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 1), 0);
		/* A disk named as a vendor named it: no default name guesses it. */
		snprintf(path, sizeof(path), "%s/appliance-disk1.vmdk", dir);
		assert_int_equal(fx_write_file(path, "disk", 4), 0);
		snprintf(path, sizeof(path), "%s/" TNAME ".ova.meta", dir);
		if (metas[i] == NULL) {
			size_t n = 10u << 20;
			char *big = malloc(n);

			assert_non_null(big);
			memset(big, 'a', n);
			memcpy(big, "x=", 2);
			assert_int_equal(fx_write_file(path, big, n), 0);
			free(big);
		} else if (metas[i][0] == '\0') {
			assert_int_equal(rename(path, outside), 0);
			assert_int_equal(symlink(outside, path), 0);
		} else {
			assert_int_equal(fx_write_file(path, metas[i], strlen(metas[i])), 0);
		}
		assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
		assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
		assert_int_equal(ev.result.nfiles, 4);
		assert_string_equal(ev.result.files[0].path, TOBJ ".ova.meta");
		assert_non_null(fx_result_file(&ev, "/appliance-disk1.vmdk"));
		assert_non_null(fx_result_file(&ev, TNAME "-disk0.vmdk"));
		assert_non_null(fx_result_file(&ev, TNAME ".ovf"));
		wrk_cmd_result_clear(&ev);
		assert_false(fx_exists(dir));
	}
	assert_true(fx_exists(outside));
	proto_command_free(c);
}

/* A subdirectory (CloudStack's layout has none) is refused with nothing removed. */
static void
test_delete_template_subdir_refused(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("DeleteTemplate", "{\"path\":\"" TOBJ "\"}");
	static const uint64_t sizes[] = { 1000 };
	struct proto_event ev;
	struct sw_err e;
	char path[1024];
	int code, retry;

	assert_non_null(c);
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 1), 0);
	snprintf(path, sizeof(path), "%s/" TDIR "/sub", t->x.mount[0]);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_int_equal(retry, 0);
	assert_non_null(strstr(e.msg, "nothing removed"));
	wrk_cmd_result_clear(&ev);
	assert_int_equal(ova_verify(t->s0, TOBJ, 0, &e), 0);
	proto_command_free(c);
}

static void
test_delete_template_legacy(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("DeleteTemplate", "{\"path\":\"" TOBJ "\"}");
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	assert_non_null(c);
	make_legacy(t, t->x.mount[0], 30000);
	put_tprops(t->x.mount[0], TNAME);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVA);
	assert_int_equal(ev.result.nfiles, 2);
	assert_string_equal(ev.result.files[1].path, TOBJ ".ova");
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

/* --------------------------------------------------------- ExtractTemplate */

static void
test_extract_new(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("ExtractTemplate", "{\"path\":\"" TOBJ ".ova\"}");
	static const uint64_t sizes[] = { 200000, 70000 };
	struct proto_event ev;
	struct sw_err e;
	struct stat st1, st2;
	char out[1024], list[2048], cmdline[4096], h1[129], h2[129], disk[1024];
	FILE *p;
	size_t n;
	int code, retry;

	assert_non_null(c);
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 2), 0);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_true(ev.result.has_download);
	assert_string_equal(ev.result.download.path, TNAME "-" CMDID ".ova");
	assert_string_equal(ev.result.install_path, TOBJ ".ova");
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	assert_int_equal(ev.result.physical_size >= 270000, 1);
	assert_int_equal(ev.result.virtual_size, 2 * 64ull * 1024 * 1024);
	assert_int_equal(fx_event_builds(&ev, c, &e), 0);
	snprintf(out, sizeof(out), "%s/%s", t->x.extract, ev.result.download.path);
	assert_int_equal(fx_size(out), (long long)ev.result.download.size);
	wrk_cmd_result_clear(&ev);

	/* GNU tar reads it: the OVF first, then the disks in order. */
	snprintf(cmdline, sizeof(cmdline), "tar -tf '%s'", out);
	p = popen(cmdline, "r");
	assert_non_null(p);
	n = fread(list, 1, sizeof(list) - 1, p);
	list[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_string_equal(list, TNAME ".ovf\n" TNAME "-disk0.vmdk\n" TNAME "-disk1.vmdk\n");
	snprintf(cmdline, sizeof(cmdline), "tar -xOf '%s' " TNAME "-disk1.vmdk > '%s/x.vmdk'", out,
	    t->x.root);
	assert_int_equal(system(cmdline), 0);
	snprintf(disk, sizeof(disk), "%s/x.vmdk", t->x.root);
	assert_int_equal(fx_sha256_file(disk, h1, sizeof(h1)), 0);
	snprintf(disk, sizeof(disk), "%s/" TOBJ "-disk1.vmdk", t->x.mount[0]);
	assert_int_equal(fx_sha256_file(disk, h2, sizeof(h2)), 0);
	assert_string_equal(h1, h2);

	/* A redelivery answers with the same file, not rewritten. */
	assert_int_equal(stat(out, &st1), 0);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.download.path, TNAME "-" CMDID ".ova");
	assert_int_equal(ev.result.download.size, st1.st_size);
	assert_int_equal(stat(out, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	assert_int_equal(fx_count_files(t->x.extract), 1);   /* no temporaries */
	wrk_cmd_result_clear(&ev);

	/* A truncated file (not possible through the atomic rename) is redone. */
	assert_int_equal(truncate(out, 1000), 0);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(fx_size(out), (long long)st1.st_size);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

static void
test_extract_legacy_links(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("ExtractTemplate", "{\"path\":\"" TOBJ "\"}");
	struct proto_event ev;
	struct sw_err e;
	struct stat so, sx;
	char out[1024], src[1024];
	int code, retry;

	assert_non_null(c);
	make_legacy(t, t->x.mount[0], 123457);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVA);
	snprintf(out, sizeof(out), "%s/%s", t->x.extract, ev.result.download.path);
	snprintf(src, sizeof(src), "%s/" TOBJ ".ova", t->x.mount[0]);
	assert_int_equal(stat(out, &sx), 0);
	assert_int_equal(stat(src, &so), 0);
	/* Same file system: the archive itself, hard-linked, not a second copy. */
	assert_int_equal(sx.st_ino, so.st_ino);
	assert_int_equal(so.st_nlink, 2);
	assert_int_equal(ev.result.download.size, so.st_size);
	assert_int_equal(ev.result.physical_size, so.st_size);
	wrk_cmd_result_clear(&ev);
	/* Again: same answer, still one link. */
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(stat(src, &so), 0);
	assert_int_equal(so.st_nlink, 2);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
}

static void
test_extract_legacy_other_fs(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("ExtractTemplate", "{\"path\":\"" TOBJ "\"}");
	struct proto_event ev;
	struct sw_err e;
	char xdir[] = "/dev/shm/swxXXXXXX", out[1024], src[1024], h1[129], h2[129];
	struct stat so, sx;
	int code, retry;

	if (mkdtemp(xdir) == NULL)
		skip();
	assert_non_null(c);
	snprintf(t->x.extract, sizeof(t->x.extract), "%s/area", xdir);   /* created on demand */
	make_legacy(t, t->x.mount[0], 99999);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	snprintf(out, sizeof(out), "%s/%s", t->x.extract, ev.result.download.path);
	snprintf(src, sizeof(src), "%s/" TOBJ ".ova", t->x.mount[0]);
	assert_int_equal(stat(out, &sx), 0);
	assert_int_equal(stat(src, &so), 0);
	/* Another file system: a byte-identical copy. */
	assert_true(sx.st_dev != so.st_dev);
	assert_int_equal(sx.st_size, so.st_size);
	assert_int_equal(fx_sha256_file(out, h1, sizeof(h1)), 0);
	assert_int_equal(fx_sha256_file(src, h2, sizeof(h2)), 0);
	assert_string_equal(h1, h2);
	assert_int_equal(fx_count_files(t->x.extract), 1);
	wrk_cmd_result_clear(&ev);
	proto_command_free(c);
	fx_rmrf(xdir);
}

static void
test_extract_missing(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("ExtractTemplate", "{\"path\":\"" TOBJ "\"}");
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_NOT_FOUND);
	assert_int_equal(retry, 0);
	assert_false(ev.result.has_download);
	proto_command_free(c);
}

/* ------------------------------------------------------------ CopyTemplate */

static void
test_copy_new(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("CopyTemplate", "{\"path\":\"" TOBJ "\",\"dest_store\":"
	    "{\"url\":\"" STORE1 "\"}}");
	static const uint64_t sizes[] = { 300000, 5000 }, other[] = { 1234 };
	struct proto_event ev;
	struct sw_err e;
	char a[1024], b[1024], h1[129], h2[129];
	const char *files[] = { TNAME "-disk0.vmdk", TNAME "-disk1.vmdk", TNAME ".ovf",
	    TNAME ".ova.meta", "template.properties" };
	size_t i;
	int code, retry;

	assert_non_null(c);
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 2), 0);
	put_tprops(t->x.mount[0], TNAME);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVF);
	assert_string_equal(ev.result.install_path, TOBJ ".ova");
	assert_int_equal(ev.result.nfiles, 5);
	/* The record comes after the meta file. */
	assert_string_equal(ev.result.files[4].path, TDIR "/template.properties");
	assert_int_equal(fx_event_builds(&ev, c, &e), 0);
	wrk_cmd_result_clear(&ev);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(a, sizeof(a), "%s/" TDIR "/%s", t->x.mount[0], files[i]);
		snprintf(b, sizeof(b), "%s/" TDIR "/%s", t->x.mount[1], files[i]);
		assert_int_equal(fx_sha256_file(a, h1, sizeof(h1)), 0);
		assert_int_equal(fx_sha256_file(b, h2, sizeof(h2)), 0);
		assert_string_equal(h1, h2);
	}
	assert_int_equal(ova_verify(t->s1, TOBJ, 0, &e), 0);

	/* Redelivered: verified and answered, nothing copied again. */
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.nfiles, 5);
	wrk_cmd_result_clear(&ev);

	/* A damaged object at the destination is refused, not overwritten. */
	snprintf(b, sizeof(b), "%s/" TDIR "/" TNAME "-disk1.vmdk", t->x.mount[1]);
	assert_int_equal(truncate(b, 4000), 0);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_STORE_IO);
	assert_int_equal(retry, 0);
	assert_int_equal(fx_size(b), 4000);
	assert_null(ev.result.install_path);

	/* So is an intact but different one. */
	assert_int_equal(ova_delete(t->s1, TOBJ, NULL, &e), 0);
	assert_int_equal(fx_make_new(t->s1, TOBJ, other, 1), 0);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_STORE_IO);
	assert_int_equal(retry, 0);
	assert_non_null(strstr(e.msg, "different"));
	snprintf(b, sizeof(b), "%s/" TDIR "/" TNAME "-disk0.vmdk", t->x.mount[1]);
	assert_int_equal(fx_size(b), 1234);
	proto_command_free(c);
}

/* CopyTemplate with unique_name writes a record at the destination when the source has none. */
static void
test_copy_unique_name(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("CopyTemplate", "{\"path\":\"" TOBJ ".ova\","
	    "\"unique_name\":\"" TNAME "\",\"dest_store\":{\"url\":\"" STORE1 "\"}}");
	struct proto_command *bad = cmd_of("CopyTemplate", "{\"path\":\"other/2/" TNAME "\","
	    "\"unique_name\":\"" TNAME "\",\"dest_store\":{\"url\":\"" STORE1 "\"}}");
	static const uint64_t sizes[] = { 300000 };
	struct ova_tprops_file *props = NULL;
	struct proto_event ev;
	struct sw_err e;
	char path[1024];
	int code, retry, dfd;

	assert_non_null(c);
	assert_non_null(bad);
	assert_int_equal(fx_make_new(t->s0, TOBJ, sizes, 1), 0);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_string_equal(ev.result.install_path, TOBJ ".ova");
	assert_int_equal(ev.result.nfiles, 4);
	assert_string_equal(ev.result.files[3].path, TDIR "/template.properties");
	wrk_cmd_result_clear(&ev);
	snprintf(path, sizeof(path), "%s/" TDIR, t->x.mount[1]);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ova_tprops_read(dfd, &props, NULL, &e), 0);
	close(dfd);
	assert_string_equal(ova_tprops_get(props, "uniquename"), TNAME);
	assert_string_equal(ova_tprops_get(props, "id"), "201");
	assert_string_equal(ova_tprops_get(props, "ova.filename"), TNAME ".ova");
	assert_string_equal(ova_tprops_get(props, "size"), ova_tprops_get(props, "ova.size"));
	ova_tprops_free(props);
	/* No template id in the path: refused before anything is copied. */
	assert_true(fx_run(&t->x, bad, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_INVALID_COMMAND);
	assert_non_null(strstr(e.msg, "not a template path"));
	proto_command_free(bad);
	proto_command_free(c);
}

static void
test_copy_legacy(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c = cmd_of("CopyTemplate", "{\"path\":\"" TOBJ "\",\"dest_store\":"
	    "{\"url\":\"" STORE1 "\"}}");
	struct proto_event ev;
	struct sw_err e;
	char a[1024], b[1024], h1[129], h2[129];
	int code, retry;

	assert_non_null(c);
	make_legacy(t, t->x.mount[0], 77777);
	assert_int_equal(fx_run(&t->x, c, &ev, &code, &retry, &e), 0);
	assert_int_equal(ev.result.format, PROTO_FORMAT_OVA);
	assert_int_equal(ev.result.nfiles, 1);   /* no template.properties at the source */
	wrk_cmd_result_clear(&ev);
	snprintf(a, sizeof(a), "%s/" TOBJ ".ova", t->x.mount[0]);
	snprintf(b, sizeof(b), "%s/" TOBJ ".ova", t->x.mount[1]);
	assert_int_equal(fx_sha256_file(a, h1, sizeof(h1)), 0);
	assert_int_equal(fx_sha256_file(b, h2, sizeof(h2)), 0);
	assert_string_equal(h1, h2);
	proto_command_free(c);
}

static void
test_copy_errors(void **state)
{
	struct tfx *t = *state;
	struct proto_command *c;
	struct proto_event ev;
	struct sw_err e;
	int code, retry;

	c = cmd_of("CopyTemplate", "{\"path\":\"" TOBJ "\",\"dest_store\":{\"url\":\"nfs://x/y\"}}");
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_UNKNOWN_STORE);
	assert_non_null(strstr(e.msg, "dest_store"));
	proto_command_free(c);
	c = cmd_of("CopyTemplate", "{\"path\":\"" TOBJ "\",\"dest_store\":{\"url\":\"" STORE1 "\"}}");
	assert_non_null(c);
	assert_true(fx_run(&t->x, c, &ev, &code, &retry, &e) < 0);
	assert_int_equal(code, PROTO_ERR_NOT_FOUND);
	assert_int_equal(retry, 0);
	proto_command_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delete_template, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_template_whole_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_template_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_template_broken_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_template_subdir_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_template_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extract_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extract_legacy_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extract_legacy_other_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extract_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_unique_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
