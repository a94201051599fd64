/* Unit tests for ovastore's parsers: .ova.meta (Java properties) and OVF descriptors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "ovastore/ovastore.h"

static struct ova_meta *
meta_ok(const char *text)
{
	struct ova_meta *m = NULL;
	struct sw_err e;

	sw_err_clear(&e);
	if (ova_meta_parse(text, strlen(text), &m, &e) != 0)
		fail_msg("meta rejected: %s", e.msg);
	return m;
}

/* Parses text expecting failure with code; returns the message for checks. */
static void
meta_bad(const char *text, int code, const char *needle1, const char *needle2)
{
	struct ova_meta *m = (struct ova_meta *)0x1;
	struct sw_err e;

	sw_err_clear(&e);
	assert_int_equal(ova_meta_parse(text, strlen(text), &m, &e), code);
	assert_ptr_equal(m, (struct ova_meta *)0x1); /* untouched on failure */
	if (needle1 != NULL && strstr(e.msg, needle1) == NULL)
		fail_msg("message '%s' lacks '%s'", e.msg, needle1);
	if (needle2 != NULL && strstr(e.msg, needle2) == NULL)
		fail_msg("message '%s' lacks '%s'", e.msg, needle2);
}

static void
test_meta_cloudstack(void **state)
{
	/* Exactly what CloudStack writes. */
	struct ova_meta *m = meta_ok(
	    "ova.filename=aa44054a-d099-4b9d-8fbf-211217381da0.ova\n"
	    "version=1.0\n"
	    "ovf=aa44054a-d099-4b9d-8fbf-211217381da0.ovf\n"
	    "numDisks=1\n"
	    "disk1.name=aa44054a-d099-4b9d-8fbf-211217381da0-disk0.vmdk\n"
	    "disk1.size=68608\n");

	(void)state;
	assert_string_equal(m->version, "1.0");
	assert_string_equal(m->ovf, "aa44054a-d099-4b9d-8fbf-211217381da0.ovf");
	assert_string_equal(m->ova_filename, "aa44054a-d099-4b9d-8fbf-211217381da0.ova");
	assert_int_equal(m->ndisks, 1);
	assert_string_equal(m->disks[0].name, "aa44054a-d099-4b9d-8fbf-211217381da0-disk0.vmdk");
	assert_true(m->disks[0].size == 68608);
	assert_string_equal(m->disks[0].sha256, "");
	assert_int_equal(m->nkeys, 6);
	ova_meta_free(m);
}

static void
test_meta_syntax(void **state)
{
	/*
	 * Every properties feature at once: comments with # and !, ':' and
	 * blank separators, blanks around '=', escapes in keys and values,
	 * continuation lines, CRLF, any key order, unknown keys kept, the
	 * spec's "version=1" and no ova.filename.
	 */
	struct ova_meta *m = meta_ok(
	    "# written by hand\r\n"
	    "! another comment\n"
	    "\n"
	    "   disk2.size : 2048\n"
	    "numDisks 2\n"
	    "disk1.name = a-disk0.vmdk\n"
	    "version=1\n"
	    "disk2.name=b\\\n"
	    "    -disk1.vmdk\n"
	    "disk1.size\t=\t1024\n"
	    "ovf=a.ovf\n"
	    "x\\ key\\=y = value with \\u00e9 and \\t tab\n"
	    "disk1.sha256=ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\n"
	    "empty=\n");

	(void)state;
	assert_string_equal(m->version, "1");
	assert_null(m->ova_filename);
	assert_int_equal(m->ndisks, 2);
	assert_string_equal(m->disks[0].name, "a-disk0.vmdk");
	assert_true(m->disks[0].size == 1024);
	assert_string_equal(m->disks[1].name, "b-disk1.vmdk");
	assert_true(m->disks[1].size == 2048);
	assert_string_equal(m->disks[0].sha256,
	    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_string_equal(ova_meta_get(m, "x key=y"), "value with \xc3\xa9 and \t tab");
	assert_string_equal(ova_meta_get(m, "empty"), "");
	assert_null(ova_meta_get(m, "nope"));
	ova_meta_free(m);
}

static void
test_meta_last_wins(void **state)
{
	struct ova_meta *m = meta_ok("version=1.0\novf=a.ovf\nnumDisks=1\n"
	    "disk1.name=x.vmdk\ndisk1.size=1\ndisk1.size=7\n");

	(void)state;
	assert_true(m->disks[0].size == 7);
	ova_meta_free(m);
}

#define GOOD_HEAD "version=1.0\novf=a.ovf\nnumDisks=1\n"

static void
test_meta_rejects(void **state)
{
	(void)state;
	meta_bad("ovf=a.ovf\nnumDisks=1\ndisk1.name=a.vmdk\ndisk1.size=1\n", SW_EFORMAT,
	    "version", NULL);
	meta_bad("version=2.0\novf=a.ovf\nnumDisks=1\ndisk1.name=a.vmdk\ndisk1.size=1\n",
	    SW_EUNSUPPORTED, "line 1", "version");
	meta_bad("version=1.0\nnumDisks=1\ndisk1.name=a.vmdk\ndisk1.size=1\n", SW_EFORMAT,
	    "'ovf'", NULL);
	meta_bad("version=1.0\novf=a.ovf\ndisk1.name=a.vmdk\ndisk1.size=1\n", SW_EFORMAT,
	    "numDisks", NULL);
	meta_bad(GOOD_HEAD "disk1.size=1\n", SW_EFORMAT, "disk1.name", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\n", SW_EFORMAT, "disk1.size", NULL);
	/* Sizes: non-numeric, negative, signs, overflow; each names key and line. */
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=12k\n", SW_EFORMAT, "line 5",
	    "disk1.size");
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=-1\n", SW_EFORMAT, "line 5",
	    "disk1.size");
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=+1\n", SW_EFORMAT, "disk1.size", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=99999999999999999999\n", SW_EFORMAT,
	    "disk1.size", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=\n", SW_EFORMAT, "disk1.size", NULL);
	/* numDisks out of range. */
	meta_bad("version=1.0\novf=a.ovf\nnumDisks=0\n", SW_EFORMAT, "line 3", "numDisks");
	meta_bad("version=1.0\novf=a.ovf\nnumDisks=65\n", SW_EFORMAT, "numDisks", NULL);
	meta_bad("version=1.0\novf=a.ovf\nnumDisks=two\n", SW_EFORMAT, "numDisks", NULL);
	meta_bad("version=1.0\novf=a.ovf\nnumDisks=2\ndisk1.name=a.vmdk\ndisk1.size=1\n",
	    SW_EFORMAT, "disk2.name", NULL);
	/* Unsafe names: '/', '..', control characters (escaped), NUL, reserved suffixes. */
	meta_bad(GOOD_HEAD "disk1.name=../a.vmdk\ndisk1.size=1\n", SW_EFORMAT, "line 4",
	    "disk1.name");
	meta_bad(GOOD_HEAD "disk1.name=sub/a.vmdk\ndisk1.size=1\n", SW_EFORMAT, "disk1.name",
	    NULL);
	meta_bad(GOOD_HEAD "disk1.name=..\ndisk1.size=1\n", SW_EFORMAT, "disk1.name", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a\\u0001.vmdk\ndisk1.size=1\n", SW_EFORMAT, "disk1.name",
	    NULL);
	meta_bad(GOOD_HEAD "disk1.name=a\\n.vmdk\ndisk1.size=1\n", SW_EFORMAT, "disk1.name", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a\\u0000.vmdk\ndisk1.size=1\n", SW_EFORMAT, "line 4", NULL);
	meta_bad(GOOD_HEAD "disk1.name=x.ova.meta\ndisk1.size=1\n", SW_EFORMAT, "disk1.name",
	    "reserves");
	/* Names the layout gives other files (issue 14: a disk named template.properties). */
	meta_bad(GOOD_HEAD "disk1.name=template.properties\ndisk1.size=1\n", SW_EFORMAT,
	    "disk1.name", "reserves");
	meta_bad(GOOD_HEAD "disk1.name=Template.Properties\ndisk1.size=1\n", SW_EFORMAT,
	    "disk1.name", "reserves");
	meta_bad(GOOD_HEAD "disk1.name=.snapworker\ndisk1.size=1\n", SW_EFORMAT, "disk1.name",
	    "reserves");
	meta_bad("version=1.0\novf=template.properties\nnumDisks=1\ndisk1.name=a.vmdk\n"
	    "disk1.size=1\n", SW_EFORMAT, "'ovf'", "reserves");
	meta_bad("version=1.0\novf=/etc/passwd\nnumDisks=1\ndisk1.name=a.vmdk\ndisk1.size=1\n",
	    SW_EFORMAT, "line 2", "'ovf'");
	meta_bad(GOOD_HEAD "disk1.name=a.ovf\ndisk1.size=1\n", SW_EFORMAT, "disk1.name", NULL);
	meta_bad("version=1.0\novf=a.ovf\nnumDisks=2\ndisk1.name=a.vmdk\ndisk1.size=1\n"
	    "disk2.name=a.vmdk\ndisk2.size=1\n", SW_EFORMAT, "twice", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=1\ndisk1.sha256=abc\n", SW_EFORMAT,
	    "disk1.sha256", NULL);
	meta_bad(GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=1\nbad=\\u12\n", SW_EFORMAT, "line 6",
	    NULL);
}

static void
test_meta_nul_and_bounds(void **state)
{
	static const char text[] = GOOD_HEAD "disk1.name=a\0.vmdk\ndisk1.size=1\n";
	struct ova_meta *m = NULL;
	struct sw_err e;
	char *big;

	(void)state;
	assert_int_equal(ova_meta_parse(text, sizeof(text) - 1, &m, &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "NUL"));
	assert_non_null(strstr(e.msg, "line 4"));
	big = calloc(1, OVA_META_MAX + 1);
	assert_non_null(big);
	memset(big, '#', OVA_META_MAX + 1);
	assert_int_equal(ova_meta_parse(big, OVA_META_MAX + 1, &m, &e), SW_ETOOBIG);
	/* Too many entries, each tiny. */
	{
		size_t i, n = 0;

		for (i = 0; i < OVA_META_MAX_KEYS + 10 && n + 8 < OVA_META_MAX; i++) {
			memcpy(big + n, "k=v\n", 4);
			n += 4;
		}
		assert_int_equal(ova_meta_parse(big, n, &m, &e), SW_ETOOBIG);
	}
	free(big);
	/* A truncated meta (cut inside the disk list) is not an object. */
	{
		static const char full[] = GOOD_HEAD "disk1.name=a.vmdk\ndisk1.size=1\n";

		assert_int_equal(ova_meta_parse(full, sizeof(full) - 20, &m, &e), SW_EFORMAT);
	}
}

static void
test_meta_format(void **state)
{
	struct ova_meta_disk d[2];
	struct ova_meta m, *back = NULL;
	struct sw_buf b = SW_BUF_INIT(OVA_META_MAX);

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(d, 0, sizeof(d));
	m.ova_filename = "u.ova";
	m.ovf = "u.ovf";
	m.ndisks = 2;
	m.disks = d;
	d[0].name = "u-disk0.vmdk";
	d[0].size = 68608;
	d[1].name = " lead=ing";
	d[1].size = 0;
	memset(d[1].sha256, 'a', 64);
	d[1].sha256[64] = '\0';
	assert_int_equal(ova_meta_format(&m, &b, NULL), 0);
	assert_string_equal(sw_buf_str(&b),
	    "ova.filename=u.ova\n"
	    "version=1.0\n"
	    "ovf=u.ovf\n"
	    "numDisks=2\n"
	    "disk1.name=u-disk0.vmdk\n"
	    "disk1.size=68608\n"
	    "disk2.name=\\ lead\\=ing\n"
	    "disk2.size=0\n"
	    "disk2.sha256=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
	/* What we write, we read back identically. */
	assert_int_equal(ova_meta_parse(b.ptr, b.len, &back, NULL), 0);
	assert_string_equal(back->disks[1].name, " lead=ing");
	assert_string_equal(back->disks[1].sha256, d[1].sha256);
	assert_true(back->disks[0].size == 68608);
	ova_meta_free(back);
	sw_buf_free(&b);
	ova_meta_free(NULL);
}

/* ---------------------------------------------------------------- OVF */

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*ret_len = (size_t)n;
	return p;
}

static void
test_ovf_vmware(void **state)
{
	struct ova_ovf *o = NULL;
	size_t len;
	char *x = slurp(SW_SRCDIR "/tests/fixtures/ovastore/snap.ovf", &len);

	(void)state;
	assert_int_equal(ova_ovf_parse(x, len, &o, NULL), 0);
	assert_int_equal(o->version, 1);
	assert_int_equal(o->nfiles, 1);
	assert_string_equal(o->files[0].href, "snap-disk0.vmdk");
	assert_string_equal(o->files[0].id, "file1");
	assert_true(o->files[0].has_size);
	assert_true(o->files[0].size == 68608);
	assert_int_equal(o->ndisks, 1);
	assert_string_equal(o->disks[0].disk_id, "vmdisk1");
	assert_int_equal(o->disks[0].file_index, 0);
	assert_true(o->disks[0].capacity == 2ULL << 30);
	assert_true(o->disks[0].populated_size == 68608);
	assert_string_equal(o->disks[0].format,
	    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized");
	assert_true(o->virtual_size == 2ULL << 30);
	assert_int_equal(ova_ovf_find_file(o, "snap-disk0.vmdk"), 0);
	assert_int_equal(ova_ovf_find_file(o, "other"), -1);
	ova_ovf_free(o);
	free(x);
}

/* A two-disk envelope with the given namespace, units and extras. */
static char *
mk_ovf(const char *ns, const char *units1, const char *units2, const char *extra)
{
	char *p = malloc(4096);
	int n;

	assert_non_null(p);
	n = snprintf(p, 4096,
	    "<?xml version=\"1.0\"?>\n"
	    "<ovf:Envelope xmlns:ovf=\"%s\">\n"
	    " <ovf:References>\n"
	    "  <ovf:File ovf:href=\"a-disk0.vmdk\" ovf:id=\"f1\" ovf:size=\"100\"/>\n"
	    "  <ovf:File ovf:href=\"a-disk1.vmdk\" ovf:id=\"f2\"/>\n"
	    " </ovf:References>\n"
	    " <ovf:DiskSection><ovf:Info>disks</ovf:Info>\n"
	    "  <ovf:Disk ovf:capacity=\"3\" %s ovf:diskId=\"d1\" ovf:fileRef=\"f1\"/>\n"
	    "  <ovf:Disk ovf:capacity=\"10\" %s ovf:diskId=\"d2\" ovf:fileRef=\"f2\"/>\n"
	    " </ovf:DiskSection>%s\n"
	    "</ovf:Envelope>\n", ns, units1, units2, extra);
	assert_true(n > 0 && n < 4096);
	return p;
}

static uint64_t
ovf_vsize(const char *units1, const char *units2)
{
	struct ova_ovf *o = NULL;
	struct sw_err e;
	char *x = mk_ovf("http://schemas.dmtf.org/ovf/envelope/1", units1, units2, "");
	uint64_t v;

	if (ova_ovf_parse(x, strlen(x), &o, &e) != 0)
		fail_msg("OVF rejected: %s", e.msg);
	v = o->virtual_size;
	assert_false(o->files[1].has_size);
	ova_ovf_free(o);
	free(x);
	return v;
}

static void
test_ovf_units(void **state)
{
	(void)state;
	assert_true(ovf_vsize("ovf:capacityAllocationUnits=\"byte * 2^20\"",
	    "ovf:capacityAllocationUnits=\"byte\"") == 3 * 1048576ULL + 10);
	assert_true(ovf_vsize("", "") == 13);
	assert_true(ovf_vsize("ovf:capacityAllocationUnits=\"byte*2^30\"",
	    "ovf:capacityAllocationUnits=\"MegaBytes\"") == (3ULL << 30) + (10ULL << 20));
	assert_true(ovf_vsize("ovf:capacityAllocationUnits=\"byte * 10^3\"",
	    "ovf:capacityAllocationUnits=\"byte * 1024\"") == 3000 + 10240);
}

static void
ovf_bad(const char *x, int code, const char *needle)
{
	struct ova_ovf *o = NULL;
	struct sw_err e;

	sw_err_clear(&e);
	assert_int_equal(ova_ovf_parse(x, strlen(x), &o, &e), code);
	assert_null(o);
	if (needle != NULL && strstr(e.msg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void
test_ovf_versions_and_rejects(void **state)
{
	struct ova_ovf *o = NULL;
	char *x;

	(void)state;
	x = mk_ovf("http://schemas.dmtf.org/ovf/envelope/2", "", "", "");
	assert_int_equal(ova_ovf_parse(x, strlen(x), &o, NULL), 0);
	assert_int_equal(o->version, 2);
	assert_int_equal(o->nfiles, 2);
	ova_ovf_free(o);
	free(x);
	x = mk_ovf("http://example.org/not-ovf", "", "", "");
	ovf_bad(x, SW_EFORMAT, "Envelope");
	free(x);
	x = mk_ovf("http://schemas.dmtf.org/ovf/envelope/1",
	    "ovf:capacityAllocationUnits=\"furlongs\"", "", "");
	ovf_bad(x, SW_EFORMAT, "capacityAllocationUnits");
	free(x);
	x = mk_ovf("http://schemas.dmtf.org/ovf/envelope/1",
	    "ovf:capacityAllocationUnits=\"byte * 2^62\"", "", "");
	ovf_bad(x, SW_EFORMAT, "overflow");
	free(x);
	ovf_bad("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
	    "<File xmlns:o=\"http://schemas.dmtf.org/ovf/envelope/1\" o:href=\"../x\" o:id=\"a\"/>"
	    "</References></Envelope>", SW_EFORMAT, "href");
	ovf_bad("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:o=\"http://schemas.dmtf.org/ovf/envelope/1\"><DiskSection>"
	    "<Disk o:diskId=\"d\" o:capacity=\"1\" o:fileRef=\"nope\"/></DiskSection></Envelope>",
	    SW_EFORMAT, "unknown file");
	ovf_bad("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:o=\"http://schemas.dmtf.org/ovf/envelope/1\"><DiskSection>"
	    "<Disk o:diskId=\"d\" o:capacity=\"${cap}\"/></DiskSection></Envelope>",
	    SW_EFORMAT, "capacity");
	ovf_bad("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	    "xmlns:o=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
	    "<File o:href=\"a\" o:id=\"1\"/><File o:href=\"a\" o:id=\"2\"/></References></Envelope>",
	    SW_EFORMAT, "twice");
	ovf_bad("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>",
	    SW_EFORMAT, "well-formed");
	ovf_bad("", SW_EFORMAT, NULL);
	ovf_bad("not xml at all", SW_EFORMAT, NULL);
}

static void
test_ovf_hostile(void **state)
{
	char *deep;
	size_t i, n;
	char *big;
	struct ova_ovf *o = NULL;

	(void)state;
	/* Billion laughs: refused before any expansion. */
	ovf_bad("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
	    "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
	    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
	    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">&lol3;</Envelope>",
	    SW_EFORMAT, "document type");
	/* External entity (XXE). */
	ovf_bad("<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">&x;</Envelope>",
	    SW_EFORMAT, "document type");
	/* An undeclared entity reference is just malformed. */
	ovf_bad("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">&x;</Envelope>",
	    SW_EFORMAT, NULL);
	/* UTF-16 (NUL bytes) cannot be scanned for a DTD: refused. */
	{
		static const char u16[] = "<\0E\0/\0>\0";
		struct sw_err e;

		assert_int_equal(ova_ovf_parse(u16, sizeof(u16) - 1, &o, &e), SW_EFORMAT);
	}
	/* Depth: 200 nested elements (libxml2 itself would allow 256). */
	{
		struct sw_buf b = SW_BUF_INIT(1 << 20);

		n = 200;
		assert_int_equal(sw_buf_addstr(&b,
		    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">"), 0);
		for (i = 0; i < n; i++)
			assert_int_equal(sw_buf_addstr(&b, "<a>"), 0);
		for (i = 0; i < n; i++)
			assert_int_equal(sw_buf_addstr(&b, "</a>"), 0);
		assert_int_equal(sw_buf_addstr(&b, "</Envelope>"), 0);
		deep = sw_buf_steal(&b, NULL);
	}
	ovf_bad(deep, SW_ETOOBIG, "deeper");
	free(deep);
	/* Size bound. */
	big = malloc(OVA_OVF_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', OVA_OVF_MAX + 1);
	big[OVA_OVF_MAX + 1] = '\0';
	{
		struct sw_err e;

		assert_int_equal(ova_ovf_parse(big, OVA_OVF_MAX + 1, &o, &e), SW_ETOOBIG);
	}
	free(big);
	ova_ovf_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_cloudstack),
		cmocka_unit_test(test_meta_syntax),
		cmocka_unit_test(test_meta_last_wins),
		cmocka_unit_test(test_meta_rejects),
		cmocka_unit_test(test_meta_nul_and_bounds),
		cmocka_unit_test(test_meta_format),
		cmocka_unit_test(test_ovf_vmware),
		cmocka_unit_test(test_ovf_units),
		cmocka_unit_test(test_ovf_versions_and_rejects),
		cmocka_unit_test(test_ovf_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
