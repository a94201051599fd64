/*
 * Java properties text (java.util.Properties load/store), bounded: the one
 * reader and writer behind the .ova.meta commit record and CloudStack's
 * template.properties.  The reader takes what Properties.load takes that
 * occurs in practice ('#' and '!' comments, '=', ':' and blank separators,
 * backslash escapes with \uXXXX, continuation lines, CR, LF and CRLF) and
 * keeps every entry in file order with its line; the caller validates keys
 * and values.  Bytes are kept as they are (no ISO-8859-1 decoding), so a
 * UTF-8 file reads as UTF-8.
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
};

/*
 * Parses [buf, buf+len) into *ret_props (free it with sw_props_free).
 * Malformed text (a NUL byte, a bad or zero \uXXXX escape, or one whose four
 * digits a continuation splits) is SW_EFORMAT, text or entries beyond lim
 * SW_ETOOBIG, each with a message naming the line where it is found.
 * *ret_props is untouched on failure.
 */
int sw_props_parse(const void *buf, size_t len, const struct sw_props_limits *lim,
    struct sw_props *ret_props, struct sw_err *e);

/* The entry of key (its last occurrence, as in Properties) or NULL. */
const struct sw_prop *sw_props_find(const struct sw_props *p, const char *key);

/* Frees the entries and empties p (p itself belongs to the caller); NULL is fine. */
void sw_props_free(struct sw_props *p);

/*
 * Appends "key=value\n" escaped so that sw_props_parse (and Properties.load)
 * read back exactly key and value: a key escapes blanks and the separator and
 * comment characters, a value only a leading blank; both escape '\\' and the
 * control characters \t \n \r \f.  On failure out is unchanged.
 */
int sw_props_add_entry(struct sw_buf *out, const char *key, const char *value);

#endif
