/* Unit tests for common/props.h: the Java properties reader and writer. */
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
#include "common/io.h"
#include "common/props.h"

static const struct sw_props_limits lim = { NULL, 4096, 16 };

/* Parses text (a C string) under lim, failing the test if it is refused. */
static struct sw_props
parse_ok(const char *text)
{
	struct sw_props p = { 0, NULL };
	struct sw_err e;

	sw_err_clear(&e);
	if (sw_props_parse(text, strlen(text), &lim, &p, &e) != 0)
		fail_msg("rejected: %s", e.msg);
	return p;
}

/* Parses len bytes expecting code and a message holding needle; p must stay untouched. */
static void
parse_bad(const char *text, size_t len, const struct sw_props_limits *l, int code,
    const char *needle)
{
	struct sw_props p = { 7, (struct sw_prop *)0x1 };
	struct sw_err e;

	sw_err_clear(&e);
	assert_int_equal(sw_props_parse(text, len, l, &p, &e), code);
	assert_int_equal(p.n, 7);
	assert_ptr_equal(p.v, (struct sw_prop *)0x1);
	if (needle != NULL && strstr(e.msg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static const char *
value(const struct sw_props *p, const char *key)
{
	const struct sw_prop *kv = sw_props_find(p, key);

	return kv != NULL ? kv->value : NULL;
}

static void
test_escapes(void **state)
{
	struct sw_props p = parse_ok(
	    "tab=a\\tb\n"
	    "ctl=\\n\\r\\f\n"
	    "plain=\\q\\\\\\#\\!\n"
	    "u=\\u0041\\u00e9\\u20AC\n"
	    "k\\ e\\=y\\:z=v\n"
	    "\\#notcomment=1\n");

	(void)state;
	assert_int_equal(p.n, 6);
	assert_string_equal(value(&p, "tab"), "a\tb");
	assert_string_equal(value(&p, "ctl"), "\n\r\f");
	/* \X is X for any other X. */
	assert_string_equal(value(&p, "plain"), "q\\#!");
	/* \uXXXX becomes UTF-8, either case of hex digits. */
	assert_string_equal(value(&p, "u"), "A\xc3\xa9\xe2\x82\xac");
	assert_string_equal(value(&p, "k e=y:z"), "v");
	assert_string_equal(value(&p, "#notcomment"), "1");
	sw_props_free(&p);
}

static void
test_continuations(void **state)
{
	struct sw_props p = parse_ok(
	    "a=one \\\n"
	    "    two \\\r\n"
	    "\t\fthree\n"
	    "ke\\\n"
	    "  y=v\n"
	    "even=x\\\\\n"
	    "next=1\n"
	    "sep \\\n"
	    "  = after\n"
	    "hash=\\\n"
	    "  #not a comment\n"
	    "end=z\\");

	(void)state;
	assert_int_equal(p.n, 7);
	/* The next line's leading blanks go; CRLF ends a line like LF. */
	assert_string_equal(value(&p, "a"), "one two three");
	assert_int_equal(sw_props_find(&p, "a")->line, 1);
	assert_string_equal(value(&p, "key"), "v");
	assert_int_equal(sw_props_find(&p, "key")->line, 4);
	/* An even number of backslashes is escaped backslashes, not a continuation. */
	assert_string_equal(value(&p, "even"), "x\\");
	assert_string_equal(value(&p, "next"), "1");
	assert_int_equal(sw_props_find(&p, "next")->line, 7);
	/* The lines are joined before the separator is looked for, as in Java. */
	assert_string_equal(value(&p, "sep"), "after");
	assert_string_equal(value(&p, "hash"), "#not a comment");
	/* A backslash at the very end is dropped. */
	assert_string_equal(value(&p, "end"), "z");
	assert_int_equal(sw_props_find(&p, "end")->line, 12);
	sw_props_free(&p);
}

static void
test_comments_and_blanks(void **state)
{
	struct sw_props p = parse_ok(
	    "# a comment \\\n"
	    "a=1\n"
	    "   ! another\r"
	    "\r\n"
	    "  \t\n"
	    "b=2\r"
	    "c=#3\n");

	(void)state;
	/* A comment does not continue; CR alone ends a line. */
	assert_int_equal(p.n, 3);
	assert_string_equal(value(&p, "a"), "1");
	assert_int_equal(p.v[0].line, 2);
	assert_string_equal(value(&p, "b"), "2");
	assert_int_equal(p.v[1].line, 6);
	assert_string_equal(value(&p, "c"), "#3");
	assert_int_equal(p.v[2].line, 7);
	sw_props_free(&p);
}

static void
test_separators(void **state)
{
	struct sw_props p = parse_ok(
	    "a=1\n"
	    "b:2\n"
	    "c 3\n"
	    "d \t = \t4 \n"
	    "e :: 5\n"
	    "f==6\n"
	    "g\n"
	    "=7\n"
	    "h= \\ 8\n"
	    "a=last\n");

	(void)state;
	/* Every entry in file order, repeated keys kept; lookups see the last. */
	assert_int_equal(p.n, 10);
	assert_string_equal(p.v[0].key, "a");
	assert_string_equal(p.v[0].value, "1");
	assert_string_equal(value(&p, "a"), "last");
	assert_string_equal(value(&p, "b"), "2");
	assert_string_equal(value(&p, "c"), "3");
	/* Trailing blanks belong to the value. */
	assert_string_equal(value(&p, "d"), "4 ");
	/* Only one separator character is eaten. */
	assert_string_equal(value(&p, "e"), ": 5");
	assert_string_equal(value(&p, "f"), "=6");
	assert_string_equal(value(&p, "g"), "");
	assert_string_equal(value(&p, ""), "7");
	assert_string_equal(value(&p, "h"), " 8");
	assert_null(value(&p, "nope"));
	assert_null(sw_props_find(NULL, "a"));
	sw_props_free(&p);
	assert_int_equal(p.n, 0);
	assert_null(p.v);
	sw_props_free(&p);
	sw_props_free(NULL);
}

static void
test_errors_name_line(void **state)
{
	static const char nul[] = "a=1\r\nb=2\rc=x\0y\n";
	static const struct sw_props_limits named = { "meta", 4096, 16 };
	struct sw_props p = { 0, NULL };
	struct sw_err e;

	(void)state;
	parse_bad(nul, sizeof(nul) - 1, &lim, SW_EFORMAT, "line 3: NUL byte");
	parse_bad("a=1\n# x\0\n", 8, &lim, SW_EFORMAT, "line 2: NUL");
	parse_bad("a=1\nb=\\u12\n", 11, &lim, SW_EFORMAT, "line 2: malformed \\uXXXX");
	parse_bad("a=\\u12", 6, &lim, SW_EFORMAT, "line 1: malformed");
	parse_bad("a=\\uZZZZ", 8, &lim, SW_EFORMAT, "malformed");
	parse_bad("a=1\n\nb=x\\\n  \\u0000\n", 19, &lim, SW_EFORMAT, "line 4: \\u0000");
	/* The four digits stand on one line. */
	parse_bad("a=\\u00\\\n41\n", 11, &lim, SW_EFORMAT, "line 1: malformed");
	/* The caller's name leads the message. */
	sw_err_clear(&e);
	assert_int_equal(sw_props_parse("x=\\u", 4, &named, &p, &e), SW_EFORMAT);
	assert_string_equal(e.msg, "meta line 1: malformed \\uXXXX escape");
	assert_int_equal(sw_props_parse("x=\\u", 4, &lim, &p, NULL), SW_EFORMAT);
}

static void
test_limits(void **state)
{
	static const struct sw_props_limits small = { "t", 32, 3 };
	struct sw_props p = { 0, NULL };
	char big[40];
	struct sw_err e;

	(void)state;
	memset(big, '#', sizeof(big));
	assert_int_equal(sw_props_parse(big, 32, &small, &p, &e), 0);
	assert_int_equal(p.n, 0);
	parse_bad(big, 33, &small, SW_ETOOBIG, "t: more than 32 bytes");
	assert_int_equal(sw_props_parse("a=1\nb=2\na=3\n", 12, &small, &p, &e), 0);
	assert_int_equal(p.n, 3);
	sw_props_free(&p);
	/* Repeated keys count: the fourth entry is one too many. */
	parse_bad("a=1\nb=2\na=3\n\n# c\nd=4\n", 21, &small, SW_ETOOBIG,
	    "t line 6: more than 3 keys");
	assert_int_equal(sw_props_parse("", 0, &small, &p, &e), 0);
	assert_int_equal(p.n, 0);
	assert_null(p.v);
}

/* Writes key and value, reads them back, and checks the text written. */
static void
round_trip(const char *key, const char *val, const char *want)
{
	struct sw_buf b = SW_BUF_INIT(1024);
	struct sw_props p;

	assert_int_equal(sw_props_add_entry(&b, key, val), 0);
	if (want != NULL)
		assert_string_equal(sw_buf_str(&b), want);
	p = parse_ok(sw_buf_str(&b));
	assert_int_equal(p.n, 1);
	assert_string_equal(p.v[0].key, key);
	assert_string_equal(p.v[0].value, val);
	sw_props_free(&p);
	sw_buf_free(&b);
}

static void
test_writer_round_trip(void **state)
{
	struct sw_buf b = SW_BUF_INIT(8);

	(void)state;
	round_trip("a", "b", "a=b\n");
	/* Keys escape blanks, separators and comment characters; values only a leading blank. */
	round_trip("k e=y:z#!", "v=a:b #!", "k\\ e\\=y\\:z\\#\\!=v=a:b #!\n");
	round_trip("#k", "#v", "\\#k=#v\n");
	round_trip("k", " lead  trail ", "k=\\ lead  trail \n");
	round_trip("k", "\\\t\n\r\f", "k=\\\\\\t\\n\\r\\f\n");
	round_trip("", "", "=\n");
	round_trip("caf\xc3\xa9", "\xe2\x82\xac", "caf\xc3\xa9=\xe2\x82\xac\n");
	round_trip("x", "ends with backslash\\", NULL);
	round_trip("\t\f k", "=:", NULL);
	/* A full buffer is left as it was. */
	assert_int_equal(sw_props_add_entry(&b, "k", "v"), 0);
	assert_int_equal(sw_props_add_entry(&b, "key", "value"), SW_ETOOBIG);
	assert_string_equal(sw_buf_str(&b), "k=v\n");
	assert_int_equal(b.len, 4);
	sw_buf_free(&b);
}

static void
test_hexval(void **state)
{
	(void)state;
	assert_int_equal(sw_hexval('0'), 0);
	assert_int_equal(sw_hexval('9'), 9);
	assert_int_equal(sw_hexval('a'), 10);
	assert_int_equal(sw_hexval('F'), 15);
	assert_int_equal(sw_hexval('g'), -1);
	assert_int_equal(sw_hexval('/'), -1);
	assert_int_equal(sw_hexval(0), -1);
	assert_int_equal(sw_hexval(0xe9), -1);
	assert_int_equal(sw_hexval(-1), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_continuations),
		cmocka_unit_test(test_comments_and_blanks),
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_errors_name_line),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_writer_round_trip),
		cmocka_unit_test(test_hexval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
