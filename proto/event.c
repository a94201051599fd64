/* Event messages (PROTOCOL.md, "Event message"), error codes and their mapping from common/err.h. */
#include "proto/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/path.h"
#include "proto/proto_int.h"

#define WORKER_MAX 255
#define EV_PATH_MAX (SW_PATH_MAX - 1)   /* paths the worker built from install paths */
#define SIZE_WHAT "an integer from 0 to 9223372036854775807"

static const char *const errcode_names[PROTO_ERR_COUNT] = {
	[PROTO_ERR_INVALID_COMMAND] = "INVALID_COMMAND",
	[PROTO_ERR_UNSUPPORTED_VERSION] = "UNSUPPORTED_VERSION",
	[PROTO_ERR_UNKNOWN_STORE] = "UNKNOWN_STORE",
	[PROTO_ERR_NOT_FOUND] = "NOT_FOUND",
	[PROTO_ERR_STORE_IO] = "STORE_IO",
	[PROTO_ERR_NO_SPACE] = "NO_SPACE",
	[PROTO_ERR_VCENTER_UNREACHABLE] = "VCENTER_UNREACHABLE",
	[PROTO_ERR_VCENTER_AUTH] = "VCENTER_AUTH",
	[PROTO_ERR_VCENTER_FAULT] = "VCENTER_FAULT",
	[PROTO_ERR_CHECKSUM_MISMATCH] = "CHECKSUM_MISMATCH",
	[PROTO_ERR_TIMEOUT] = "TIMEOUT",
	[PROTO_ERR_CANCELLED] = "CANCELLED",
	[PROTO_ERR_INTERNAL] = "INTERNAL",
	[PROTO_ERR_DOWNLOAD_UNREACHABLE] = "DOWNLOAD_UNREACHABLE",
	[PROTO_ERR_DOWNLOAD_AUTH] = "DOWNLOAD_AUTH",
};

static const char *const status_names[PROTO_STATUS_COUNT] = {
	[PROTO_STATUS_PROGRESS] = "progress",
	[PROTO_STATUS_SUCCEEDED] = "succeeded",
	[PROTO_STATUS_FAILED] = "failed",
	[PROTO_STATUS_RETRYING] = "retrying",
	[PROTO_STATUS_WAITING] = "waiting",
};

static const char *const format_names[] = {
	[PROTO_FORMAT_OVF] = "ovf",
	[PROTO_FORMAT_OVA] = "ova",
};

const char *
proto_errcode_name(enum proto_errcode c)
{
	if ((int)c <= PROTO_ERR_NONE || c >= PROTO_ERR_COUNT)
		return NULL;
	return errcode_names[c];
}

enum proto_errcode
proto_errcode_from_name(const char *s)
{
	int c;

	if (s == NULL)
		return PROTO_ERR_NONE;
	for (c = PROTO_ERR_NONE + 1; c < PROTO_ERR_COUNT; c++)
		if (strcmp(s, errcode_names[c]) == 0)
			return (enum proto_errcode)c;
	return PROTO_ERR_NONE;
}

const char *
proto_status_name(enum proto_status s)
{
	if ((int)s < 0 || s >= PROTO_STATUS_COUNT)
		return NULL;
	return status_names[s];
}

int
proto_status_from_name(const char *s, enum proto_status *ret)
{
	int i;

	for (i = 0; s != NULL && i < PROTO_STATUS_COUNT; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*ret = (enum proto_status)i;
			return 0;
		}
	}
	return -EINVAL;
}

int
proto_routing_key(enum proto_type t, enum proto_status s, char *buf, size_t bufsz)
{
	const char *tn = t == PROTO_TYPE_UNKNOWN ? "unknown" : proto_type_name(t);
	const char *sn = proto_status_name(s);
	size_t i;
	int n;

	if (tn == NULL || sn == NULL || (t == PROTO_TYPE_UNKNOWN && s != PROTO_STATUS_FAILED))
		return -EINVAL;
	n = snprintf(buf, bufsz, "%s.%s", tn, sn);
	if (n < 0 || (size_t)n >= bufsz)
		return -ENAMETOOLONG;
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] = (char)(buf[i] - 'A' + 'a');
	return 0;
}

static bool
is_conn_errno(int code)
{
	return code == -ECONNREFUSED || code == -ECONNRESET || code == -EHOSTUNREACH ||
	    code == -ENETUNREACH || code == -EPIPE || code == -ECONNABORTED || code == -ENETDOWN ||
	    code == -EHOSTDOWN;
}

static enum proto_errcode
map_vcenter(int code, bool *retry)
{
	switch (code) {
	case SW_ENET:
		*retry = true;
		return PROTO_ERR_VCENTER_UNREACHABLE;
	case SW_EAUTH:
		return PROTO_ERR_VCENTER_AUTH;
	case SW_EBUSY:
		*retry = true;
		return PROTO_ERR_VCENTER_FAULT;
	case SW_EREMOTE:
	case SW_EFORMAT:
	case SW_ETOOBIG:
	case SW_EUNSUPPORTED:
		return PROTO_ERR_VCENTER_FAULT;
	default:
		if (is_conn_errno(code)) {
			*retry = true;
			return PROTO_ERR_VCENTER_UNREACHABLE;
		}
		return PROTO_ERR_INTERNAL;
	}
}

static enum proto_errcode
map_store(int code, bool *retry)
{
	switch (code) {
	case SW_EFORMAT:
	case SW_ETOOBIG:
	case SW_EUNSUPPORTED:
		return PROTO_ERR_INVALID_COMMAND;
	case SW_ENET:
	case SW_EBUSY:
	case -EIO:
	case -ESTALE:
	case -EAGAIN:
	case -EINTR:
	case -EBUSY:
		*retry = true;
		return PROTO_ERR_STORE_IO;
	case SW_EEXIST:
		return PROTO_ERR_STORE_IO;
	default:
		if (code < 0 && code > -4096)
			return PROTO_ERR_STORE_IO;
		return PROTO_ERR_INTERNAL;
	}
}

static enum proto_errcode
map_download(int code, bool *retry)
{
	switch (code) {
	case SW_ENET:
		*retry = true;
		return PROTO_ERR_DOWNLOAD_UNREACHABLE;
	case SW_EREMOTE:
	case SW_EBUSY:
		*retry = true;
		return PROTO_ERR_NOT_FOUND;
	case SW_EAUTH:
		return PROTO_ERR_DOWNLOAD_AUTH;
	case SW_EFORMAT:
	case SW_ETOOBIG:
	case SW_EUNSUPPORTED:
		return PROTO_ERR_INVALID_COMMAND;
	default:
		if (is_conn_errno(code)) {
			*retry = true;
			return PROTO_ERR_DOWNLOAD_UNREACHABLE;
		}
		if (code < 0 && code > -4096)
			return PROTO_ERR_STORE_IO;
		return PROTO_ERR_INTERNAL;
	}
}

enum proto_errcode
proto_errcode_from_sw(int code, enum proto_errctx ctx, bool *ret_retryable)
{
	enum proto_errcode pc;
	bool retry = false;

	/* What means the same in every context first. */
	if (code >= 0)
		pc = PROTO_ERR_NONE;
	else if (code == SW_ENOTFOUND || code == -ENOENT)
		pc = PROTO_ERR_NOT_FOUND;
	else if (code == -ENOSPC || code == -EDQUOT || code == -EFBIG)
		pc = PROTO_ERR_NO_SPACE;
	else if (code == SW_ECHECKSUM)
		pc = PROTO_ERR_CHECKSUM_MISMATCH;
	else if (code == -ETIMEDOUT)
		pc = PROTO_ERR_TIMEOUT, retry = true;
	else if (code == -ECANCELED)
		pc = PROTO_ERR_CANCELLED, retry = true;
	else if (code == SW_EPATH)
		pc = PROTO_ERR_INVALID_COMMAND;
	else if (code == -ENOMEM)
		pc = PROTO_ERR_INTERNAL, retry = true;
	else if (code == SW_EINTERNAL)
		pc = PROTO_ERR_INTERNAL;
	else if (ctx == PROTO_CTX_VCENTER)
		pc = map_vcenter(code, &retry);
	else if (ctx == PROTO_CTX_DOWNLOAD)
		pc = map_download(code, &retry);
	else
		pc = map_store(code, &retry);
	if (ret_retryable != NULL)
		*ret_retryable = retry;
	return pc;
}

/* ------------------------------------------------------------------ build */

struct jb {
	bool oom;
	struct sw_err *e;
	int err;   /* the first validation failure */
};

static int
bfail(struct jb *b, const char *field, const char *why)
{
	if (b->err == 0)
		b->err = sw_errf(b->e, SW_EFORMAT, "%s: %s", field, why);
	return b->err;
}

/* Adds val (NULL after a failed allocation) to obj under the literal key. */
static void
add(struct jb *b, json_object *obj, const char *key, json_object *val)
{
	if (val == NULL || json_object_object_add_ex(obj, key, val,
	    JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT) != 0) {
		json_object_put(val);
		b->oom = true;
	}
}

static void
add_str(struct jb *b, json_object *obj, const char *key, const char *field, const char *s,
    size_t max, bool no_ctl)
{
	size_t n;

	if (s == NULL || s[0] == '\0') {
		bfail(b, field, "missing");
		return;
	}
	n = strnlen(s, max + 1);
	if (n > max) {
		bfail(b, field, "too long");
		return;
	}
	if (proto__utf8_invalid_at(s, n) != n || (no_ctl && proto__has_ctl(s, n))) {
		bfail(b, field, "must be UTF-8 without control characters");
		return;
	}
	add(b, obj, key, json_object_new_string_len(s, (int)n));
}

static void
add_size(struct jb *b, json_object *obj, const char *key, const char *field, uint64_t v)
{
	if (v > (uint64_t)INT64_MAX) {
		bfail(b, field, "must be at most INT64_MAX");
		return;
	}
	add(b, obj, key, json_object_new_int64((int64_t)v));
}

static void
add_time(struct jb *b, json_object *obj, const char *key, int64_t t)
{
	char buf[32];

	if (proto__time_format(t, buf, sizeof(buf)) < 0) {
		bfail(b, key, "must be a time from 1970 to 9999");
		return;
	}
	add(b, obj, key, json_object_new_string(buf));
}

static bool
is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

static json_object *
build_result(struct jb *b, const struct proto_result *res)
{
	json_object *o = json_object_new_object(), *files, *f, *dl;
	size_t i;

	if (o == NULL) {
		b->oom = true;
		return NULL;
	}
	if (res->install_path != NULL)
		add_str(b, o, "install_path", "result.install_path", res->install_path, EV_PATH_MAX,
		    true);
	if (res->format == PROTO_FORMAT_OVF || res->format == PROTO_FORMAT_OVA)
		add(b, o, "format", json_object_new_string(format_names[res->format]));
	else if (res->format != PROTO_FORMAT_NONE)
		bfail(b, "result.format", "unknown format");
	if (res->has_sizes) {
		add_size(b, o, "physical_size", "result.physical_size", res->physical_size);
		add_size(b, o, "virtual_size", "result.virtual_size", res->virtual_size);
	}
	if (res->nfiles > PROTO_FILES_MAX)
		bfail(b, "result.files", "too many files");
	else if (res->nfiles > 0 && res->files == NULL)
		bfail(b, "result.files", "missing");
	files = json_object_new_array_ext(b->err == 0 ? (int)res->nfiles : 0);
	add(b, o, "files", files);
	for (i = 0; files != NULL && b->err == 0 && !b->oom && i < res->nfiles; i++) {
		const struct proto_file *pf = &res->files[i];

		f = json_object_new_object();
		if (f == NULL || json_object_array_add(files, f) != 0) {
			json_object_put(f);
			b->oom = true;
			break;
		}
		add_str(b, f, "path", "result.files[].path", pf->path, EV_PATH_MAX, true);
		add_size(b, f, "size", "result.files[].size", pf->size);
		if (pf->sha256 != NULL) {
			if (!is_sha256_hex(pf->sha256))
				bfail(b, "result.files[].sha256", "must be 64 lower-case hex digits");
			else
				add(b, f, "sha256", json_object_new_string(pf->sha256));
		}
	}
	if (res->has_download) {
		dl = json_object_new_object();
		add(b, o, "download", dl);
		if (dl != NULL) {
			add_str(b, dl, "path", "result.download.path", res->download.path,
			    EV_PATH_MAX, true);
			add_size(b, dl, "size", "result.download.size", res->download.size);
		}
	}
	if (res->datastore_path != NULL)
		add_str(b, o, "datastore_path", "result.datastore_path", res->datastore_path,
		    PROTO_PATH_MAX, true);
	return o;
}

static json_object *
build_error(struct jb *b, const struct proto_event_error *er)
{
	json_object *o;
	const char *name = proto_errcode_name(er->code);
	char *msg;

	if (name == NULL) {
		bfail(b, "error.code", "must be a protocol error code");
		return NULL;
	}
	if (er->message == NULL || er->message[0] == '\0') {
		bfail(b, "error.message", "missing");
		return NULL;
	}
	o = json_object_new_object();
	/* Messages quote file names and peers' words: never let them break the JSON's UTF-8. */
	msg = proto__utf8_sanitize(er->message, PROTO_MESSAGE_MAX);
	if (o == NULL || msg == NULL) {
		json_object_put(o);
		free(msg);
		b->oom = true;
		return NULL;
	}
	add(b, o, "code", json_object_new_string(name));
	add(b, o, "message", json_object_new_string(msg));
	add(b, o, "retryable", json_object_new_boolean(er->retryable));
	free(msg);
	return o;
}

int
proto_event_build(const struct proto_event *ev, char **ret_json, size_t *ret_len,
    struct sw_err *e)
{
	struct jb b = { false, e, 0 };
	json_object *root, *p;
	const char *tn, *out;
	size_t n;
	char *copy;

	if (ev == NULL)
		return sw_errf(e, SW_EFORMAT, "event: missing");
	if (proto_status_name(ev->status) == NULL)
		return sw_errf(e, SW_EFORMAT, "status: unknown status");
	tn = proto_type_name(ev->type);
	if (tn == NULL && (ev->type != PROTO_TYPE_UNKNOWN || ev->status != PROTO_STATUS_FAILED))
		return sw_errf(e, SW_EFORMAT, "type: must be a command type (unknown only when failed)");
	if (ev->id == NULL || !proto__is_uuid(ev->id))
		return sw_errf(e, SW_EFORMAT, "id: must be the command's UUID");
	root = json_object_new_object();
	if (root == NULL)
		return sw_errf(e, -ENOMEM, "event: out of memory");
	add(&b, root, "version", json_object_new_int(PROTO_VERSION));
	add(&b, root, "id", json_object_new_string(ev->id));
	if (tn != NULL)
		add(&b, root, "type", json_object_new_string(tn));
	add(&b, root, "status", json_object_new_string(proto_status_name(ev->status)));
	add_str(&b, root, "worker", "worker", ev->worker, WORKER_MAX, true);
	add_time(&b, root, "started_at", ev->started_at);
	if (ev->status != PROTO_STATUS_PROGRESS)
		add_time(&b, root, "finished_at", ev->finished_at);
	switch (ev->status) {
	case PROTO_STATUS_PROGRESS:
		if (ev->progress.percent > 100) {
			bfail(&b, "progress.percent", "must be 0 to 100");
			break;
		}
		p = json_object_new_object();
		add(&b, root, "progress", p);
		if (p != NULL) {
			add(&b, p, "percent", json_object_new_int((int)ev->progress.percent));
			add_size(&b, p, "bytes", "progress.bytes", ev->progress.bytes);
		}
		break;
	case PROTO_STATUS_SUCCEEDED:
		p = build_result(&b, &ev->result);
		if (p != NULL)
			add(&b, root, "result", p);
		break;
	case PROTO_STATUS_WAITING:
		if (ev->wait.delay_s > PROTO_RETRY_DELAY_MAX_S) {
			bfail(&b, "wait.delay_s", "must be at most a day");
			break;
		}
		p = json_object_new_object();
		add(&b, root, "wait", p);
		if (p != NULL) {
			add_str(&b, p, "limit", "wait.limit", ev->wait.limit, PROTO_LIMIT_MAX, true);
			add(&b, p, "delay_s", json_object_new_int((int)ev->wait.delay_s));
		}
		break;
	default:
		p = build_error(&b, &ev->error);
		if (p != NULL)
			add(&b, root, "error", p);
		if (ev->status == PROTO_STATUS_RETRYING) {
			if (ev->retry.attempt == 0 || ev->retry.attempt >= ev->retry.max_attempts ||
			    ev->retry.max_attempts > PROTO_ATTEMPTS_MAX ||
			    ev->retry.delay_s > PROTO_RETRY_DELAY_MAX_S) {
				bfail(&b, "retry", "attempt must be 1 to max_attempts - 1, "
				    "max_attempts and delay_s bounded");
				break;
			}
			p = json_object_new_object();
			add(&b, root, "retry", p);
			if (p != NULL) {
				add(&b, p, "attempt", json_object_new_int((int)ev->retry.attempt));
				add(&b, p, "max_attempts",
				    json_object_new_int((int)ev->retry.max_attempts));
				add(&b, p, "delay_s", json_object_new_int((int)ev->retry.delay_s));
			}
		}
		break;
	}
	if (b.err != 0 || b.oom) {
		json_object_put(root);
		return b.err != 0 ? b.err : sw_errf(e, -ENOMEM, "event: out of memory");
	}
	out = json_object_to_json_string_length(root,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	copy = out != NULL ? malloc(n + 1) : NULL;
	if (copy == NULL) {
		json_object_put(root);
		return sw_errf(e, -ENOMEM, "event: out of memory");
	}
	memcpy(copy, out, n + 1);
	json_object_put(root);
	*ret_json = copy;
	*ret_len = n;
	return 0;
}

/* ------------------------------------------------------------------ parse */

/* The event handed out, and what its borrowed strings point into. */
struct event_holder {
	struct proto_event ev;   /* first: proto_event_free() converts back */
	json_object *root;
	struct proto_file *files;
};

static int
get_size(struct proto__err *pe, json_object *o, const char *key, const char *field, uint64_t *ret)
{
	int64_t v;
	int r;

	r = proto__get_int(pe, o, key, field, 0, INT64_MAX, SIZE_WHAT, true, &v, NULL);
	if (r == 0)
		*ret = (uint64_t)v;
	return r;
}

static int
get_time(struct proto__err *pe, json_object *o, const char *key, int64_t *ret)
{
	const char *s;
	int r;

	r = proto__get_str(pe, o, key, key, 32, true, true, &s);
	if (r < 0)
		return r;
	if (proto__time_parse(s, ret) < 0)
		return proto__fail(pe, SW_EFORMAT, key, "must be a UTC time 'YYYY-MM-DDTHH:MM:SSZ'");
	return 0;
}

static int
parse_files(struct proto__err *pe, json_object *res, struct event_holder *h)
{
	json_object *arr = proto__member(res, "files"), *f;
	struct proto_result *r = &h->ev.result;
	size_t n, i;
	int rc;

	if (arr == NULL || !json_object_is_type(arr, json_type_array))
		return proto__fail(pe, SW_EFORMAT, "result.files", arr == NULL &&
		    !json_object_object_get_ex(res, "files", NULL) ? "missing" : "must be an array");
	n = json_object_array_length(arr);
	if (n > PROTO_FILES_MAX)
		return proto__fail(pe, SW_EFORMAT, "result.files", "more than %d files",
		    PROTO_FILES_MAX);
	if (n > 0) {
		h->files = calloc(n, sizeof(*h->files));
		if (h->files == NULL)
			return proto__fail(pe, -ENOMEM, "result.files", "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct proto_file *pf = &h->files[i];

		f = json_object_array_get_idx(arr, i);
		if (f == NULL || !json_object_is_type(f, json_type_object))
			return proto__fail(pe, SW_EFORMAT, "result.files[]", "must be an object");
		if ((rc = proto__get_str(pe, f, "path", "result.files[].path", EV_PATH_MAX, true,
		    true, &pf->path)) < 0 ||
		    (rc = get_size(pe, f, "size", "result.files[].size", &pf->size)) < 0 ||
		    (rc = proto__get_str(pe, f, "sha256", "result.files[].sha256", 64, false, true,
		    &pf->sha256)) < 0)
			return rc;
		if (pf->sha256 != NULL && !is_sha256_hex(pf->sha256))
			return proto__fail(pe, SW_EFORMAT, "result.files[].sha256",
			    "must be 64 lower-case hex digits");
	}
	r->files = h->files;
	r->nfiles = n;
	return 0;
}

static int
parse_result(struct proto__err *pe, json_object *root, struct event_holder *h)
{
	struct proto_result *r = &h->ev.result;
	json_object *res, *dl;
	const char *fmt;
	int rc;

	if ((rc = proto__get_obj(pe, root, "result", "result", true, &res)) < 0 ||
	    (rc = proto__get_str(pe, res, "install_path", "result.install_path", EV_PATH_MAX,
	    false, true, &r->install_path)) < 0 ||
	    (rc = proto__get_str(pe, res, "format", "result.format", 8, false, true, &fmt)) < 0)
		return rc;
	if (fmt != NULL) {
		if (strcmp(fmt, "ovf") == 0)
			r->format = PROTO_FORMAT_OVF;
		else if (strcmp(fmt, "ova") == 0)
			r->format = PROTO_FORMAT_OVA;
		else
			return proto__fail(pe, SW_EFORMAT, "result.format", "must be 'ovf' or 'ova'");
	}
	r->has_sizes = proto__member(res, "physical_size") != NULL ||
	    proto__member(res, "virtual_size") != NULL;
	if (r->has_sizes && ((rc = get_size(pe, res, "physical_size", "result.physical_size",
	    &r->physical_size)) < 0 ||
	    (rc = get_size(pe, res, "virtual_size", "result.virtual_size", &r->virtual_size)) < 0))
		return rc;
	if ((rc = parse_files(pe, res, h)) < 0 ||
	    (rc = proto__get_obj(pe, res, "download", "result.download", false, &dl)) < 0)
		return rc;
	if (dl != NULL) {
		r->has_download = true;
		if ((rc = proto__get_str(pe, dl, "path", "result.download.path", EV_PATH_MAX, true,
		    true, &r->download.path)) < 0 ||
		    (rc = get_size(pe, dl, "size", "result.download.size", &r->download.size)) < 0)
			return rc;
	}
	return proto__get_str(pe, res, "datastore_path", "result.datastore_path", PROTO_PATH_MAX,
	    false, true, &r->datastore_path);
}

static int
parse_event(struct proto__err *pe, json_object *root, struct event_holder *h)
{
	struct proto_event *ev = &h->ev;
	json_object *o, *v;
	const char *s;
	int64_t i;
	int r;

	if (!json_object_is_type(root, json_type_object))
		return proto__fail(pe, SW_EFORMAT, "body", "must be a JSON object");
	r = proto__get_int(pe, root, "version", "version", INT64_MIN + 1, INT64_MAX, "an integer",
	    true, &i, NULL);
	if (r < 0)
		return r;
	if (i != PROTO_VERSION)
		return proto__fail(pe, SW_EUNSUPPORTED, "version", "unsupported version %lld",
		    (long long)i);
	if ((r = proto__get_str(pe, root, "id", "id", PROTO_ID_MAX, true, true, &ev->id)) < 0)
		return r;
	if (!proto__is_uuid(ev->id))
		return proto__fail(pe, SW_EFORMAT, "id", "must be a UUID");
	if ((r = proto__get_str(pe, root, "status", "status", 16, true, true, &s)) < 0)
		return r;
	if (proto_status_from_name(s, &ev->status) < 0)
		return proto__fail(pe, SW_EFORMAT, "status",
		    "must be progress, succeeded, failed, retrying or waiting");
	if ((r = proto__get_str(pe, root, "type", "type", 64, false, true, &s)) < 0)
		return r;
	if (s != NULL && (ev->type = proto_type_from_name(s)) == PROTO_TYPE_UNKNOWN)
		return proto__fail(pe, SW_EFORMAT, "type", "unknown command type");
	if (s == NULL && ev->status != PROTO_STATUS_FAILED)
		return proto__fail(pe, SW_EFORMAT, "type", "missing");
	if ((r = proto__get_str(pe, root, "worker", "worker", WORKER_MAX, true, true,
	    &ev->worker)) < 0 ||
	    (r = get_time(pe, root, "started_at", &ev->started_at)) < 0)
		return r;
	if (ev->status != PROTO_STATUS_PROGRESS &&
	    (r = get_time(pe, root, "finished_at", &ev->finished_at)) < 0)
		return r;
	switch (ev->status) {
	case PROTO_STATUS_PROGRESS:
		if ((r = proto__get_obj(pe, root, "progress", "progress", true, &o)) < 0 ||
		    (r = proto__get_int(pe, o, "percent", "progress.percent", 0, 100,
		    "an integer from 0 to 100", true, &i, NULL)) < 0 ||
		    (r = get_size(pe, o, "bytes", "progress.bytes", &ev->progress.bytes)) < 0)
			return r;
		ev->progress.percent = (unsigned)i;
		return 0;
	case PROTO_STATUS_SUCCEEDED:
		return parse_result(pe, root, h);
	case PROTO_STATUS_WAITING:
		if ((r = proto__get_obj(pe, root, "wait", "wait", true, &o)) < 0 ||
		    (r = proto__get_str(pe, o, "limit", "wait.limit", PROTO_LIMIT_MAX, true, true,
		    &ev->wait.limit)) < 0 ||
		    (r = proto__get_int(pe, o, "delay_s", "wait.delay_s", 0,
		    PROTO_RETRY_DELAY_MAX_S, "a number of seconds", true, &i, NULL)) < 0)
			return r;
		ev->wait.delay_s = (unsigned)i;
		return 0;
	default:
		if ((r = proto__get_obj(pe, root, "error", "error", true, &o)) < 0 ||
		    (r = proto__get_str(pe, o, "code", "error.code", 32, true, true, &s)) < 0)
			return r;
		ev->error.code = proto_errcode_from_name(s);
		if (ev->error.code == PROTO_ERR_NONE)
			return proto__fail(pe, SW_EFORMAT, "error.code", "unknown error code");
		if ((r = proto__get_str(pe, o, "message", "error.message", PROTO_MESSAGE_MAX, true,
		    false, &ev->error.message)) < 0)
			return r;
		v = proto__member(o, "retryable");
		if (v == NULL || !json_object_is_type(v, json_type_boolean))
			return proto__fail(pe, SW_EFORMAT, "error.retryable", "must be true or false");
		ev->error.retryable = json_object_get_boolean(v);
		if (ev->status != PROTO_STATUS_RETRYING)
			return 0;
		if ((r = proto__get_obj(pe, root, "retry", "retry", true, &o)) < 0 ||
		    (r = proto__get_int(pe, o, "max_attempts", "retry.max_attempts", 2,
		    PROTO_ATTEMPTS_MAX, "an integer from 2", true, &i, NULL)) < 0)
			return r;
		ev->retry.max_attempts = (unsigned)i;
		if ((r = proto__get_int(pe, o, "attempt", "retry.attempt", 1,
		    (int64_t)ev->retry.max_attempts - 1, "an integer from 1 to max_attempts - 1",
		    true, &i, NULL)) < 0)
			return r;
		ev->retry.attempt = (unsigned)i;
		if ((r = proto__get_int(pe, o, "delay_s", "retry.delay_s", 0,
		    PROTO_RETRY_DELAY_MAX_S, "a number of seconds", true, &i, NULL)) < 0)
			return r;
		ev->retry.delay_s = (unsigned)i;
		return 0;
	}
}

int
proto_event_parse(const void *body, size_t len, struct proto_event **ret, struct sw_err *e)
{
	struct proto__err pe;
	struct event_holder *h;
	json_object *root = NULL;
	int r;

	memset(&pe, 0, sizeof(pe));
	r = proto__json_parse(body, len, &root, NULL, &pe);
	if (r < 0)
		return sw_errf(e, r, "%s", pe.msg);
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		json_object_put(root);
		return sw_errf(e, -ENOMEM, "event: out of memory");
	}
	h->root = root;
	r = parse_event(&pe, root, h);
	if (r < 0) {
		proto_event_free(&h->ev);
		return sw_errf(e, r, "%s", pe.msg);
	}
	*ret = &h->ev;
	return 0;
}

void
proto_event_free(struct proto_event *ev)
{
	struct event_holder *h = (struct event_holder *)ev;

	if (h == NULL)
		return;
	json_object_put(h->root);
	free(h->files);
	free(h);
}
