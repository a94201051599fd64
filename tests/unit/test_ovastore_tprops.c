/* Unit tests for template.properties (ovastore/tprops.h). */
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

#include "common/buf.h"
#include "common/err.h"
#include "ovastore/tprops.h"
#include "tests/fixtures/commands/fixtures.h"

static void
test_format_keys(void **state)
{
	struct sw_buf b = SW_BUF_INIT(OVA_TPROPS_MAX);
	struct ova_tprops p;
	struct ova_tprops_file *pp = NULL;
	struct sw_err e;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.id = 203;
	p.uniquename = "c1d2e3f4-a5b6-4789-8abc-def012345678";
	p.size = 68608;
	p.virtual_size = 2147483648ull;
	p.checksum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	assert_int_equal(ova_tprops_format(&p, &b, &e), 0);
	/* The exact text CloudStack's VMware template writer produces, key for key. */
	assert_string_equal(sw_buf_str(&b),
	    "filename=c1d2e3f4-a5b6-4789-8abc-def012345678.ova\n"
	    "description=\n"
	    "checksum=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	    "hvm=false\n"
	    "size=68608\n"
	    "ova=false\n"
	    "id=203\n"
	    "public=false\n"
	    "ova.filename=c1d2e3f4-a5b6-4789-8abc-def012345678.ova\n"
	    "uniquename=c1d2e3f4-a5b6-4789-8abc-def012345678\n"
	    "ova.virtualsize=2147483648\n"
	    "virtualsize=2147483648\n"
	    "ova.size=68608\n");
	/* And it reads back. */
	assert_int_equal(ova_tprops_parse(b.ptr, b.len, &pp, &e), 0);
	assert_int_equal(ova_tprops_count(pp), 13);
	assert_string_equal(ova_tprops_get(pp, "uniquename"), p.uniquename);
	assert_string_equal(ova_tprops_get(pp, "virtualsize"), "2147483648");
	assert_string_equal(ova_tprops_get(pp, "description"), "");
	assert_null(ova_tprops_get(pp, "nope"));
	ova_tprops_free(pp);

	/* Legacy objects say ova=true; bad names and ids are refused. */
	sw_buf_reset(&b);
	p.legacy = 1;
	p.checksum = NULL;
	p.is_public = 1;
	assert_int_equal(ova_tprops_format(&p, &b, &e), 0);
	assert_non_null(strstr(sw_buf_str(&b), "\nova=true\n"));
	assert_non_null(strstr(sw_buf_str(&b), "\nchecksum=\n"));
	assert_non_null(strstr(sw_buf_str(&b), "\npublic=true\n"));
	sw_buf_reset(&b);
	p.uniquename = "a/b";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	p.uniquename = "x";
	p.id = 0;
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	/* Unique names: the canonical rules of sw_unique_name_check(). */
	p.id = 1;
	p.uniquename = ".hidden";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	p.uniquename = "x.OVA";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	p.uniquename = "a b";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	p.uniquename = "-x";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	p.uniquename = "caf\xc3\xa9";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	/* Not UTF-8: refused, the buffer unchanged. */
	p.uniquename = "201-2-Tmpl_1.x";
	p.description = "caf\xe9";
	assert_int_equal(ova_tprops_format(&p, &b, &e), SW_EFORMAT);
	assert_int_equal(b.len, 0);
	/* Any other text is escaped as Properties.store escapes it. */
	p.description = "two\nlines caf\xc3\xa9 #1 a=b";
	assert_int_equal(ova_tprops_format(&p, &b, &e), 0);
	assert_non_null(strstr(sw_buf_str(&b),
	    "\ndescription=two\\nlines caf\\u00E9 \\#1 a\\=b\n"));
	assert_non_null(strstr(sw_buf_str(&b), "\nuniquename=201-2-Tmpl_1.x\n"));
	assert_int_equal(ova_tprops_parse(b.ptr, b.len, &pp, &e), 0);
	assert_string_equal(ova_tprops_get(pp, "description"), "two\nlines caf\xc3\xa9 #1 a=b");
	ova_tprops_free(pp);
	sw_buf_reset(&b);
	sw_buf_free(&b);
}

static void
test_parse_java_syntax(void **state)
{
	static const char text[] =
	    "#Sat Apr 05 16:36:12 UTC 2026\r\n"
	    "! another comment\n"
	    "   \n"
	    "filename=a.ova\n"
	    "  id : 201\n"
	    "uniquename   201-2-abc\n"
	    "description=line one \\\n"
	    "    continued\n"
	    "key\\=with\\:seps=v\\u00e9\\tx\n"
	    "empty\n"
	    "id=202\n"
	    "last=no newline";
	struct ova_tprops_file *p = NULL;
	struct sw_err e;

	(void)state;
	assert_int_equal(ova_tprops_parse(text, strlen(text), &p, &e), 0);
	assert_string_equal(ova_tprops_get(p, "filename"), "a.ova");
	/* The last occurrence wins, as in java.util.Properties. */
	assert_string_equal(ova_tprops_get(p, "id"), "202");
	assert_string_equal(ova_tprops_get(p, "uniquename"), "201-2-abc");
	assert_string_equal(ova_tprops_get(p, "description"), "line one continued");
	assert_string_equal(ova_tprops_get(p, "key=with:seps"), "v\xc3\xa9\tx");
	assert_string_equal(ova_tprops_get(p, "empty"), "");
	assert_string_equal(ova_tprops_get(p, "last"), "no newline");
	assert_int_equal(ova_tprops_count(p), 8);
	ova_tprops_free(p);
}

static void
test_parse_bounds(void **state)
{
	struct ova_tprops_file *p = (struct ova_tprops_file *)(uintptr_t)1;
	struct sw_err e;
	char *big;
	size_t i, n;

	(void)state;
	assert_int_equal(ova_tprops_parse("a=b\0c=d", 7, &p, &e), SW_EFORMAT);
	assert_int_equal(ova_tprops_parse("a=\\u12", 6, &p, &e), SW_EFORMAT);
	assert_int_equal(ova_tprops_parse("a=\\uZZZZ", 8, &p, &e), SW_EFORMAT);
	assert_int_equal(ova_tprops_parse("a=\\u0000", 8, &p, &e), SW_EFORMAT);
	assert_true(p == (struct ova_tprops_file *)(uintptr_t)1);
	big = malloc(OVA_TPROPS_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', OVA_TPROPS_MAX + 1);
	assert_int_equal(ova_tprops_parse(big, OVA_TPROPS_MAX + 1, &p, &e), SW_ETOOBIG);
	/* Too many keys. */
	for (i = 0, n = 0; i < OVA_TPROPS_KEYS + 1; i++)
		n += (size_t)snprintf(big + n, OVA_TPROPS_MAX - n, "k%zu=v\n", i);
	assert_int_equal(ova_tprops_parse(big, n, &p, &e), SW_ETOOBIG);
	assert_non_null(strstr(e.msg, "keys"));
	assert_true(p == (struct ova_tprops_file *)(uintptr_t)1);
	free(big);
	assert_int_equal(ova_tprops_parse("", 0, &p, &e), 0);
	assert_int_equal(ova_tprops_count(p), 0);
	ova_tprops_free(p);
	ova_tprops_free(NULL);
}

static void
test_file_ops(void **state)
{
	char dir[] = "/tmp/swtpXXXXXX", path[256], *raw = NULL;
	struct ova_tprops p;
	struct ova_tprops_file *pp = NULL;
	struct sw_err e;
	uint64_t size = 0;
	size_t rawlen = 0;
	int dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ova_tprops_read(dfd, &pp, &size, &e), SW_ENOTFOUND);
	assert_int_equal(ova_tprops_remove(dfd, &size, &e), 0);

	memset(&p, 0, sizeof(p));
	p.id = 7;
	p.uniquename = "u";
	p.size = 10;
	p.virtual_size = 20;
	assert_int_equal(ova_tprops_write(dfd, &p, &size, &e), 0);
	snprintf(path, sizeof(path), "%s/template.properties", dir);
	assert_int_equal(fx_size(path), (long long)size);
	assert_int_equal(fx_count_files(dir), 1);   /* no temporary left */
	assert_int_equal(ova_tprops_read(dfd, &pp, &size, &e), 0);
	assert_string_equal(ova_tprops_get(pp, "id"), "7");
	ova_tprops_free(pp);
	assert_int_equal(ova_tprops_read_raw(dfd, &raw, &rawlen, &e), 0);
	assert_int_equal(rawlen, size);
	assert_non_null(strstr(raw, "uniquename=u\n"));
	free(raw);

	/* Overwrite is atomic and complete. */
	p.id = 8;
	assert_int_equal(ova_tprops_write(dfd, &p, NULL, &e), 0);
	assert_int_equal(ova_tprops_read(dfd, &pp, NULL, &e), 0);
	assert_string_equal(ova_tprops_get(pp, "id"), "8");
	ova_tprops_free(pp);

	assert_int_equal(ova_tprops_remove(dfd, &size, &e), 1);
	assert_true(size > 0);
	assert_false(fx_exists(path));

	/* A symbolic link planted in its place is not followed. */
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(ova_tprops_read(dfd, &pp, NULL, &e), SW_EPATH);
	assert_int_equal(ova_tprops_remove(dfd, NULL, &e), 1);
	assert_true(fx_exists("/etc/passwd"));
	assert_false(fx_exists(path));

	close(dfd);
	fx_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_keys),
		cmocka_unit_test(test_parse_java_syntax),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_file_ops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
