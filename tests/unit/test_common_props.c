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

static const struct sw_props_limits lim = { NULL, 4096, 16, 0 };

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
	static const struct sw_props_limits named = { "meta", 4096, 16, 0 };
	struct sw_props p = { 0, NULL };
	struct sw_err e;

	(void)state;
	parse_bad(nul, sizeof(nul) - 1, &lim, SW_EFORMAT, "line 3: NUL byte");
	parse_bad("a=1\n# x\0\n", 8, &lim, SW_EFORMAT, "line 2: NUL");
	parse_bad("a=1\nb=\\u12\n", 11, &lim, SW_EFORMAT, "line 2: malformed \\uXXXX");
	parse_bad("a=\\u12", 6, &lim, SW_EFORMAT, "line 1: malformed");
	parse_bad("a=\\uZZZZ", 8, &lim, SW_EFORMAT, "malformed");
	parse_bad("a=1\n\nb=x\\\n  \\u0000\n", 19, &lim, SW_EFORMAT, "line 4: \\u0000");
	/* Unpaired surrogates have no UTF-8 form; the line is the escape's. */
	parse_bad("a=\\uD83D\n", strlen("a=\\uD83D\n"), &lim, SW_EFORMAT, "line 1: unpaired UTF-16 surrogate");
	parse_bad("a=x\\\n\\uDE00y\n", strlen("a=x\\\n\\uDE00y\n"), &lim, SW_EFORMAT, "line 2: unpaired");
	parse_bad("a=\\uD83Dx\n", strlen("a=\\uD83Dx\n"), &lim, SW_EFORMAT, "unpaired");
	parse_bad("a=\\uD83D\\uD83D\\uDE00\n", strlen("a=\\uD83D\\uD83D\\uDE00\n"), &lim, SW_EFORMAT, "unpaired");
	parse_bad("a=\\uD83D\\n\n", strlen("a=\\uD83D\\n\n"), &lim, SW_EFORMAT, "unpaired");
	/* The caller's name leads the message. */
	sw_err_clear(&e);
	assert_int_equal(sw_props_parse("x=\\u", 4, &named, &p, &e), SW_EFORMAT);
	assert_string_equal(e.msg, "meta line 1: malformed \\uXXXX escape");
	assert_int_equal(sw_props_parse("x=\\u", 4, &lim, &p, NULL), SW_EFORMAT);
}

static void
test_limits(void **state)
{
	static const struct sw_props_limits small = { "t", 32, 3, 0 };
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
	/* As Properties.store: = : # ! escaped in keys and values, blanks in keys and leading. */
	round_trip("k e=y:z#!", "v=a:b #!", "k\\ e\\=y\\:z\\#\\!=v\\=a\\:b \\#\\!\n");
	round_trip("#k", "#v", "\\#k=\\#v\n");
	round_trip("k", " lead  trail ", "k=\\ lead  trail \n");
	round_trip("k", "\\\t\n\r\f", "k=\\\\\\t\\n\\r\\f\n");
	round_trip("", "", "=\n");
	/* Everything outside printable ASCII is \uXXXX, upper-case, a pair above U+FFFF. */
	round_trip("caf\xc3\xa9", "\xe2\x82\xac", "caf\\u00E9=\\u20AC\n");
	round_trip("k", "\x01\x7f\xc2\x80\xc3\xbf", "k=\\u0001\\u007F\\u0080\\u00FF\n");
	round_trip("k", "\xf0\x9f\x98\x80!", "k=\\uD83D\\uDE00\\!\n");
	round_trip("vm \xc3\xbc.ovf", "vm \xc3\xbc.ovf", "vm\\ \\u00FC.ovf=vm \\u00FC.ovf\n");
	round_trip("x", "ends with backslash\\", NULL);
	round_trip("\t\f k", "=:", NULL);
	/* Not UTF-8 (a stray byte, an overlong form, a surrogate): refused, out unchanged. */
	assert_int_equal(sw_props_add_entry(&b, "k", "\xfc"), SW_EFORMAT);
	assert_int_equal(sw_props_add_entry(&b, "\xc0\xaf", "v"), SW_EFORMAT);
	assert_int_equal(sw_props_add_entry(&b, "k", "\xed\xa0\x80"), SW_EFORMAT);
	assert_int_equal(sw_props_add_entry(&b, "k", "\xf4\x90\x80\x80"), SW_EFORMAT);
	assert_int_equal(b.len, 0);
	/* A full buffer is left as it was. */
	assert_int_equal(sw_props_add_entry(&b, "k", "v"), 0);
	assert_int_equal(sw_props_add_entry(&b, "key", "value"), SW_ETOOBIG);
	assert_string_equal(sw_buf_str(&b), "k=v\n");
	assert_int_equal(b.len, 4);
	sw_buf_free(&b);
}

/* ISO-8859-1 input, as Properties.load(InputStream) reads it. */
static void
test_latin1_and_unicode(void **state)
{
	static const struct sw_props_limits legacy = { NULL, 4096, 16, 1 };
	struct sw_props p = parse_ok(
	    "a=vm \xfc.ovf\n"
	    "b=\\uD83D\\uDE00 \\ud83d\\ude00\n"
	    "c=\\u00\\\n"
	    "    41\n"
	    "\xe9t\xe9=\xa0\n"
	    "d=\\\xfc\n");
	struct sw_err e;

	(void)state;
	assert_int_equal(p.n, 5);
	/* A byte 0x80..0xff is that Latin-1 character, returned in UTF-8. */
	assert_string_equal(value(&p, "a"), "vm \xc3\xbc.ovf");
	/* A surrogate pair is one character, either case of digits. */
	assert_string_equal(value(&p, "b"), "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
	/* The lines are joined before the escapes are undone: a split \uXXXX is whole. */
	assert_string_equal(value(&p, "c"), "A");
	assert_string_equal(value(&p, "\xc3\xa9t\xc3\xa9"), "\xc2\xa0");
	assert_string_equal(value(&p, "d"), "\xc3\xbc");
	sw_props_free(&p);

	/* UTF-8 read as Java reads it: mojibake... */
	p = parse_ok("a=vm \xc3\xbc.ovf\n");
	assert_string_equal(value(&p, "a"), "vm \xc3\x83\xc2\xbc.ovf");
	sw_props_free(&p);
	/* ...unless the caller asks for legacy UTF-8 files to be read as UTF-8, */
	sw_err_clear(&e);
	assert_int_equal(sw_props_parse("a=vm \xc3\xbc.ovf\nb=\\u00FC\n", strlen("a=vm \xc3\xbc.ovf\nb=\\u00FC\n"), &legacy, &p, &e), 0);
	assert_string_equal(value(&p, "a"), "vm \xc3\xbc.ovf");
	assert_string_equal(value(&p, "b"), "\xc3\xbc");
	sw_props_free(&p);
	/* which a text that is not well-formed UTF-8 is not. */
	assert_int_equal(sw_props_parse("a=vm \xfc.ovf\nb=\xc3\xbc\n", strlen("a=vm \xfc.ovf\nb=\xc3\xbc\n"), &legacy, &p, &e), 0);
	assert_string_equal(value(&p, "a"), "vm \xc3\xbc.ovf");
	assert_string_equal(value(&p, "b"), "\xc3\x83\xc2\xbc");
	sw_props_free(&p);
}

/* Corner cases of Properties.load's line reader. */
static void
test_line_reader_corners(void **state)
{
	struct sw_props p;

	(void)state;
	/* A lone backslash is a logical line of its own: the empty key. */
	p = parse_ok("\\");
	assert_int_equal(p.n, 1);
	assert_string_equal(p.v[0].key, "");
	assert_string_equal(p.v[0].value, "");
	sw_props_free(&p);
	/* A continuation into a blank line ends the entry there. */
	p = parse_ok("a=b\\\n   \nc=d\n");
	assert_int_equal(p.n, 2);
	assert_string_equal(value(&p, "a"), "b");
	assert_string_equal(value(&p, "c"), "d");
	assert_int_equal(sw_props_find(&p, "c")->line, 3);
	sw_props_free(&p);
	/* A comment at the end without a line end, and a blank-only text. */
	p = parse_ok("a=1\n  # end");
	assert_int_equal(p.n, 1);
	sw_props_free(&p);
	p = parse_ok(" \t\f\r\n\r\n");
	assert_int_equal(p.n, 0);
	sw_props_free(&p);
	/* An escaped separator inside the key, an escaped blank ending it. */
	p = parse_ok("a\\:b\\ =c\n");
	assert_string_equal(value(&p, "a:b "), "c");
	sw_props_free(&p);
	/* Three backslashes at the end of the text: one escaped, one dropped. */
	p = parse_ok("k=v\\\\\\");
	assert_string_equal(value(&p, "k"), "v\\");
	sw_props_free(&p);
}

/* Every character class written reads back unchanged (no legacy reading). */
static void
test_writer_all_chars(void **state)
{
	static const unsigned cps[] = { 0x01, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20, 0x21, 0x23,
	    0x3a, 0x3d, 0x5c, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xe9, 0xff, 0x100, 0x7ff, 0x800,
	    0xd7ff, 0xe000, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff };
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
		char s[16];
		unsigned c = cps[i];
		struct sw_buf b = SW_BUF_INIT(1024);
		struct sw_props p;

		/* The character alone, leading, and between two letters. */
		for (j = 0; j < 3; j++) {
			unsigned char u[4];
			size_t n = 0;

			if (c < 0x80) {
				u[n++] = (unsigned char)c;
			} else if (c < 0x800) {
				u[n++] = (unsigned char)(0xc0 | (c >> 6));
				u[n++] = (unsigned char)(0x80 | (c & 0x3f));
			} else if (c < 0x10000) {
				u[n++] = (unsigned char)(0xe0 | (c >> 12));
				u[n++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
				u[n++] = (unsigned char)(0x80 | (c & 0x3f));
			} else {
				u[n++] = (unsigned char)(0xf0 | (c >> 18));
				u[n++] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
				u[n++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
				u[n++] = (unsigned char)(0x80 | (c & 0x3f));
			}
			snprintf(s, sizeof(s), "%s%.*s%s", j == 2 ? "a" : "", (int)n, (char *)u,
			    j >= 1 ? "b" : "");
			sw_buf_reset(&b);
			assert_int_equal(sw_props_add_entry(&b, s, s), 0);
			/* What is written is printable ASCII. */
			for (n = 0; n + 1 < b.len; n++)
				assert_true(b.ptr[n] >= 0x20 && b.ptr[n] <= 0x7e);
			p = parse_ok(sw_buf_str(&b));
			assert_int_equal(p.n, 1);
			assert_string_equal(p.v[0].key, s);
			assert_string_equal(p.v[0].value, s);
			sw_props_free(&p);
		}
		sw_buf_free(&b);
	}
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
		cmocka_unit_test(test_latin1_and_unicode),
		cmocka_unit_test(test_line_reader_corners),
		cmocka_unit_test(test_writer_all_chars),
		cmocka_unit_test(test_hexval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
