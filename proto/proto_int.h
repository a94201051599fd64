/* Internals shared by proto/command.c and proto/event.c; not installed. */
#ifndef PROTO_PROTO_INT_H
#define PROTO_PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/err.h"

/* A validation failure: the field path and the whole message "field: why". */
struct proto__err {
	int code;
	char field[64];
	char msg[SW_ERR_MSG_MAX];
};

/* Records "field: <fmt>" with code in pe; returns code. */
int proto__fail(struct proto__err *pe, int code, const char *field, const char *fmt, ...)
    SW_PRINTF(4, 5);

/*
 * Parses body (len bytes, not NUL-terminated) into one JSON value: at most
 * PROTO_BODY_MAX bytes, PROTO_DEPTH_MAX levels, valid UTF-8 without raw NUL
 * bytes, strict RFC 8259 syntax, no duplicate keys, only white space after
 * the value.  0 or SW_ETOOBIG / SW_EFORMAT / -ENOMEM with field "body" (or
 * the path of the object with a duplicate key).  When only the duplicate-key
 * check failed, *ret_salvage (if not NULL) receives the tree json-c built
 * (the last of each duplicate kept), so the caller can still read an id;
 * not when the top-level "id" itself is duplicated (field "id": there is no
 * id to answer for), and without "type" when that is (field "type").
 */
int proto__json_parse(const void *body, size_t len, json_object **ret, json_object **ret_salvage,
    struct proto__err *pe);

/* The member key of obj, or NULL when absent or JSON null. */
json_object *proto__member(json_object *obj, const char *key);

/*
 * String member key of obj (field names it in messages): 1..maxlen bytes,
 * no NUL, and with no_ctl no control characters.  *ret is NULL when the member
 * is absent (or null) and !required; it points into obj.
 */
int proto__get_str(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    size_t maxlen, bool required, bool no_ctl, const char **ret);

/*
 * Integer member: a JSON integer in [min, max]; `what` completes "must be ..."
 * e.g. "a positive integer".  *ret_present (may be NULL) says whether it was there.
 */
int proto__get_int(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    int64_t min, int64_t max, const char *what, bool required, int64_t *ret, bool *ret_present);

/* Object member; *ret NULL when absent (or null) and !required. */
int proto__get_obj(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    bool required, json_object **ret);

/* 8-4-4-4-12 hex digits, either case. */
bool proto__is_uuid(const char *s);

/* Whether s has a byte below 0x20 or 0x7f. */
bool proto__has_ctl(const char *s, size_t n);

/* Offset of the first byte of s[0..n) that is not valid UTF-8 (overlongs,
 * surrogates and values past U+10FFFF are not), or n. */
size_t proto__utf8_invalid_at(const char *s, size_t n);

/*
 * Copies at most max bytes of s into a new string, replacing each byte of an
 * invalid UTF-8 sequence with '?' and never cutting a sequence in two.
 */
char *proto__utf8_sanitize(const char *s, size_t max);

/* "2026-11-25T21:00:00Z" <-> epoch seconds (UTC); parse returns 0 or -EINVAL. */
int proto__time_parse(const char *s, int64_t *ret);
int proto__time_format(int64_t t, char *buf, size_t bufsz);

#endif
