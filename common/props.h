/*
 * Java properties text, bounded: the one reader and writer behind the
 * .ova.meta commit record and CloudStack's template.properties, a
 * reimplementation following the documented rules of
 * java.util.Properties.load(InputStream) and store(OutputStream), because
 * CloudStack reads both files with Properties.load.
 *
 * The reader takes every text Properties.load takes: ISO-8859-1 bytes
 * ('#' and '!' comment lines, '=', ':' and blank separators, backslash
 * escapes, \uXXXX UTF-16 escapes including surrogate pairs, continuation
 * lines, CR, LF and CRLF line ends) and returns keys and values in UTF-8
 * (a byte 0x80..0xff is the Latin-1 character of that code).  It keeps
 * every entry in file order with its line; the caller validates keys and
 * values.  Where Java would produce a string C cannot carry or UTF-8 cannot
 * encode (a \u0000 escape, an unpaired surrogate) the text is refused.
 *
 * The writer emits what Properties.store(OutputStream) emits for an entry:
 * printable ASCII only, everything else as \uXXXX.
 */
#ifndef SW_PROPS_H
#define SW_PROPS_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

struct sw_prop {
	char *key;
	char *value;
	unsigned line;          /* natural line where the entry starts (1-based) */
};

struct sw_props {
	size_t n;
	struct sw_prop *v;      /* every entry in file order, repeated keys too */
};

struct sw_props_limits {
	/* Names the file in messages: "meta" gives "meta line 3: ...", NULL "line 3: ...". */
	const char *what;
	size_t max_bytes;       /* of the whole text */
	size_t max_keys;        /* entries, a repeated key counted each time */
	/*
	 * 1: a text that has bytes >= 0x80 and is well-formed UTF-8 as a whole
	 * is read as UTF-8 (bytes kept as they are), not as ISO-8859-1.  For
	 * files written by snapworker before its writer followed
	 * Properties.store (raw UTF-8): Java reads those as mojibake naming
	 * files that do not exist, so no file Java reads correctly is read
	 * differently, except text whose Latin-1 reading is also valid UTF-8
	 * (such as "\xc3\xa9", which Java reads as "Ã©").
	 */
	int legacy_utf8;
};

/*
 * Parses [buf, buf+len) into *ret_props (free it with sw_props_free).
 * Malformed text (a NUL byte, a \u escape without four hex digits, \u0000,
 * an unpaired surrogate) is SW_EFORMAT, text or entries beyond lim
 * SW_ETOOBIG, each with a message naming the natural line where it is found.
 * *ret_props is untouched on failure.
 */
int sw_props_parse(const void *buf, size_t len, const struct sw_props_limits *lim,
    struct sw_props *ret_props, struct sw_err *e);

/* The entry of key (its last occurrence, as in Properties) or NULL. */
const struct sw_prop *sw_props_find(const struct sw_props *p, const char *key);

/* Frees the entries and empties p (p itself belongs to the caller); NULL is fine. */
void sw_props_free(struct sw_props *p);

/*
 * Appends "key=value\n" (UTF-8 key and value) escaped as
 * Properties.store(OutputStream) escapes them, so that Properties.load and
 * sw_props_parse read back exactly key and value: '\\', '=', ':', '#' and
 * '!' get a backslash, tab, LF, CR and FF their letter escapes (\t \n \r
 * \f), a blank a backslash in a key and when it leads a value, and any
 * other character outside 0x20..0x7e a \uXXXX escape with upper-case hex
 * digits (two, a surrogate pair, above U+FFFF).  Text that is not
 * well-formed UTF-8 is SW_EFORMAT.  On failure out is unchanged.
 */
int sw_props_add_entry(struct sw_buf *out, const char *key, const char *value);

#endif
