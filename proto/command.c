/* Command messages: bytes -> validated struct proto_command (PROTOCOL.md, "Command message"). */
#include "proto/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/path.h"
#include "proto/proto_int.h"

#define DEFAULT_TIMEOUT_S 21600   /* 6 h: snapshot, template and volume work */
#define DELETE_TIMEOUT_S  600     /* deletes touch a few files */
#define CRED_MAX          64

/* One table for everything that depends on the type alone. */
static const struct {
	const char *name;
	uint32_t timeout_s;
	bool needs_vcenter;   /* CreateTemplate: only from vm+disk, decided in its parser */
} types[PROTO_TYPE_COUNT] = {
	[PROTO_CREATE_SNAPSHOT] = { "CreateSnapshot", DEFAULT_TIMEOUT_S, true },
	[PROTO_DELETE_SNAPSHOT] = { "DeleteSnapshot", DELETE_TIMEOUT_S, false },
	[PROTO_CREATE_TEMPLATE] = { "CreateTemplate", DEFAULT_TIMEOUT_S, false },
	[PROTO_REGISTER_TEMPLATE] = { "RegisterTemplate", DEFAULT_TIMEOUT_S, false },
	[PROTO_COPY_TEMPLATE] = { "CopyTemplate", DEFAULT_TIMEOUT_S, false },
	[PROTO_DELETE_TEMPLATE] = { "DeleteTemplate", DELETE_TIMEOUT_S, false },
	[PROTO_EXTRACT_TEMPLATE] = { "ExtractTemplate", DEFAULT_TIMEOUT_S, false },
	[PROTO_CREATE_VOLUME] = { "CreateVolume", DEFAULT_TIMEOUT_S, true },
	[PROTO_EXTRACT_VOLUME] = { "ExtractVolume", DEFAULT_TIMEOUT_S, true },
};

const char *
proto_type_name(enum proto_type t)
{
	if ((int)t <= PROTO_TYPE_UNKNOWN || t >= PROTO_TYPE_COUNT)
		return NULL;
	return types[t].name;
}

enum proto_type
proto_type_from_name(const char *s)
{
	int t;

	if (s == NULL)
		return PROTO_TYPE_UNKNOWN;
	for (t = PROTO_TYPE_UNKNOWN + 1; t < PROTO_TYPE_COUNT; t++)
		if (strcmp(s, types[t].name) == 0)
			return (enum proto_type)t;
	return PROTO_TYPE_UNKNOWN;
}

uint32_t
proto_type_default_timeout(enum proto_type t)
{
	if ((int)t <= PROTO_TYPE_UNKNOWN || t >= PROTO_TYPE_COUNT)
		return DEFAULT_TIMEOUT_S;
	return types[t].timeout_s;
}

bool
proto_type_needs_vcenter(enum proto_type t)
{
	if ((int)t <= PROTO_TYPE_UNKNOWN || t >= PROTO_TYPE_COUNT)
		return false;
	return types[t].needs_vcenter;
}

/* ------------------------------------------------------------ validators */

/* ASCII classes: <ctype.h> would follow the process locale. */
static bool
a_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
a_alnum(char c)
{
	return a_alpha(c) || (c >= '0' && c <= '9');
}

static bool
a_xdigit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char
a_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char
a_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
dup_str(struct proto__err *pe, const char *field, const char *s, char **dst)
{
	char *p = strdup(s);

	if (p == NULL)
		return proto__fail(pe, -ENOMEM, field, "out of memory");
	*dst = p;
	return 0;
}

/*
 * Scheme "://" authority [path]: printable ASCII only (non-ASCII must be
 * percent-encoded), no user information; http_only also wants http(s) and a
 * host.
 */
static int
check_url(struct proto__err *pe, const char *field, const char *s, bool http_only)
{
	const char *p, *auth, *auth_end;
	size_t slen = 0;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return proto__fail(pe, SW_EFORMAT, field,
			    "must be a URL without spaces, control or non-ASCII characters");
	for (p = s; a_alnum(*p) || *p == '+' || *p == '-' || *p == '.'; p++)
		slen++;
	if (slen == 0 || !a_alpha(s[0]) || strncmp(p, "://", 3) != 0)
		return proto__fail(pe, SW_EFORMAT, field, "must be a URL (scheme://...)");
	if (http_only && !((slen == 4 && strncasecmp(s, "http", 4) == 0) ||
	    (slen == 5 && strncasecmp(s, "https", 5) == 0)))
		return proto__fail(pe, SW_EFORMAT, field, "must be an http:// or https:// URL");
	auth = p + 3;
	auth_end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL)
		return proto__fail(pe, SW_EFORMAT, field, "must not contain a user name or password");
	if (http_only && (auth_end == auth || auth[0] == ':'))
		return proto__fail(pe, SW_EFORMAT, field, "must name a host");
	return 0;
}

/* The text of sw_path_check_rel()'s reason, after the field path. */
static int
check_rel(struct proto__err *pe, const char *field, const char *rel)
{
	struct sw_err e;

	sw_err_clear(&e);
	if (sw_path_check_rel(rel, &e) < 0)
		return proto__fail(pe, SW_EFORMAT, field, "%s", e.msg);
	return 0;
}

/* An install path: one trailing ".ova" dropped, then a safe relative path. */
static int
get_install_path(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    char **dst)
{
	const char *s;
	size_t n;
	int r;

	/* Control characters are refused before sw_path_check_rel() could quote them. */
	r = proto__get_str(pe, obj, key, field, PROTO_PATH_MAX, true, true, &s);
	if (r < 0)
		return r;
	n = strlen(s);
	if (n >= 4 && strcmp(s + n - 4, ".ova") == 0)
		n -= 4;
	if (n == 0)
		return proto__fail(pe, SW_EFORMAT, field, "empty path");
	*dst = strndup(s, n);
	if (*dst == NULL)
		return proto__fail(pe, -ENOMEM, field, "out of memory");
	return check_rel(pe, field, *dst);
}

/* "[datastore] dir/file.vmdk" as vSphere writes datastore paths. */
static int
get_disk(struct proto__err *pe, json_object *obj, const char *field, bool required, char **dst)
{
	const char *s, *close, *rel;
	size_t n;
	int r;

	r = proto__get_str(pe, obj, "disk", field, PROTO_PATH_MAX, required, true, &s);
	if (r < 0 || s == NULL)
		return r;
	if (s[0] != '[' || (close = strchr(s, ']')) == NULL)
		return proto__fail(pe, SW_EFORMAT, field,
		    "must be a datastore path '[datastore] dir/file.vmdk'");
	n = (size_t)(close - s - 1);
	if (n == 0 || n > PROTO_NAME_MAX || memchr(s + 1, '[', n) != NULL)
		return proto__fail(pe, SW_EFORMAT, field, "datastore name must be 1 to %d bytes in brackets",
		    PROTO_NAME_MAX);
	if (close[1] != ' ' || close[2] == '\0')
		return proto__fail(pe, SW_EFORMAT, field,
		    "must be a datastore path '[datastore] dir/file.vmdk'");
	rel = close + 2;
	r = check_rel(pe, field, rel);
	if (r < 0)
		return r;
	n = strlen(rel);
	if (n <= 5 || strcmp(rel + n - 5, ".vmdk") != 0 || rel[n - 6] == '/')
		return proto__fail(pe, SW_EFORMAT, field, "must name a .vmdk file");
	return dup_str(pe, field, s, dst);
}

/* {"uuid": ...} or {"name": ...}, exactly one. */
static int
get_vm(struct proto__err *pe, json_object *args, bool required, struct proto_vm *vm,
    bool *ret_present)
{
	json_object *o;
	const char *uuid, *name;
	int r;

	r = proto__get_obj(pe, args, "vm", "args.vm", required, &o);
	if (r < 0)
		return r;
	if (ret_present != NULL)
		*ret_present = o != NULL;
	if (o == NULL)
		return 0;
	r = proto__get_str(pe, o, "uuid", "args.vm.uuid", PROTO_ID_MAX, false, true, &uuid);
	if (r < 0)
		return r;
	r = proto__get_str(pe, o, "name", "args.vm.name", PROTO_NAME_MAX, false, true, &name);
	if (r < 0)
		return r;
	if ((uuid == NULL) == (name == NULL))
		return proto__fail(pe, SW_EFORMAT, "args.vm", "exactly one of uuid and name is required");
	if (uuid != NULL) {
		if (!proto__is_uuid(uuid))
			return proto__fail(pe, SW_EFORMAT, "args.vm.uuid", "must be a UUID");
		return dup_str(pe, "args.vm.uuid", uuid, &vm->uuid);
	}
	return dup_str(pe, "args.vm.name", name, &vm->name);
}

static int
get_id(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    int64_t *ret)
{
	return proto__get_int(pe, obj, key, field, 1, INT64_MAX, "a positive integer", true, ret,
	    NULL);
}

/* A file name (one path component). */
static int
get_filename(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    bool required, char **dst)
{
	struct sw_err e;
	const char *s;
	int r;

	r = proto__get_str(pe, obj, key, field, PROTO_NAME_MAX, required, true, &s);
	if (r < 0 || s == NULL)
		return r;
	sw_err_clear(&e);
	if (sw_name_check(s, &e) < 0)
		return proto__fail(pe, SW_EFORMAT, field, "must be a file name: %s", e.msg);
	return dup_str(pe, field, s, dst);
}

/* CloudStack's unique name of a template (sw_unique_name_check()). */
static int
get_unique_name(struct proto__err *pe, json_object *obj, char **dst)
{
	struct sw_err e;
	const char *s;
	int r;

	r = proto__get_str(pe, obj, "unique_name", "args.unique_name", PROTO_NAME_MAX, false, true,
	    &s);
	if (r < 0 || s == NULL)
		return r;
	sw_err_clear(&e);
	if (sw_unique_name_check(s, &e) < 0)
		return proto__fail(pe, SW_EFORMAT, "args.unique_name", "must be a unique name: %s",
		    e.msg);
	return dup_str(pe, "args.unique_name", s, dst);
}

static int
get_store(struct proto__err *pe, json_object *obj, const char *key, const char *field,
    const char *url_field, struct proto_store *st)
{
	json_object *o;
	const char *url;
	int r;

	r = proto__get_obj(pe, obj, key, field, true, &o);
	if (r < 0)
		return r;
	r = proto__get_str(pe, o, "url", url_field, PROTO_URL_MAX, true, true, &url);
	if (r < 0)
		return r;
	r = check_url(pe, url_field, url, false);
	if (r < 0)
		return r;
	return dup_str(pe, url_field, url, &st->url);
}

/* 32 byte pairs "AB:CD:..." (SHA-256 of the certificate). */
static int
check_thumbprint(struct proto__err *pe, const char *s, char **dst)
{
	size_t i;
	char *p;

	if (strlen(s) != 95)
		goto bad;
	for (i = 0; i < 95; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !a_xdigit(s[i]))
			goto bad;
	}
	p = strdup(s);
	if (p == NULL)
		return proto__fail(pe, -ENOMEM, "vcenter.thumbprint", "out of memory");
	for (i = 0; i < 95; i++)
		p[i] = a_upper(p[i]);
	*dst = p;
	return 0;
bad:
	return proto__fail(pe, SW_EFORMAT, "vcenter.thumbprint",
	    "must be a SHA-256 fingerprint: 32 hex byte pairs separated by ':'");
}

static int
get_vcenter(struct proto__err *pe, json_object *root, struct proto_command *cmd)
{
	json_object *o;
	const char *url, *cred, *thumb;
	size_t i;
	int r;

	r = proto__get_obj(pe, root, "vcenter", "vcenter", false, &o);
	if (r < 0 || o == NULL)
		return r;
	cmd->has_vcenter = true;
	r = proto__get_str(pe, o, "url", "vcenter.url", PROTO_URL_MAX, true, true, &url);
	if (r < 0)
		return r;
	r = check_url(pe, "vcenter.url", url, true);
	if (r < 0)
		return r;
	r = proto__get_str(pe, o, "credentials", "vcenter.credentials", CRED_MAX, true, true, &cred);
	if (r < 0)
		return r;
	for (i = 0; cred[i] != '\0'; i++)
		if (!a_alnum(cred[i]) && strchr("._-", cred[i]) == NULL)
			return proto__fail(pe, SW_EFORMAT, "vcenter.credentials",
			    "must be a credential set name of letters, digits, '.', '_' and '-'");
	r = proto__get_str(pe, o, "thumbprint", "vcenter.thumbprint", 128, false, true, &thumb);
	if (r < 0)
		return r;
	r = dup_str(pe, "vcenter.url", url, &cmd->vcenter.url);
	if (r == 0)
		r = dup_str(pe, "vcenter.credentials", cred, &cmd->vcenter.credentials);
	if (r == 0 && thumb != NULL)
		r = check_thumbprint(pe, thumb, &cmd->vcenter.thumbprint);
	return r;
}

/* "sha256:<64 hex>", "md5:<32 hex>", or bare hex typed by its length. */
static int
get_checksum(struct proto__err *pe, json_object *args, struct proto_checksum *ck)
{
	const char *s, *hex;
	enum proto_checksum_alg alg;
	size_t want, i;
	int r;

	r = proto__get_str(pe, args, "checksum", "args.checksum", 128, false, true, &s);
	if (r < 0 || s == NULL)
		return r;
	if (strncmp(s, "sha256:", 7) == 0) {
		alg = PROTO_CHECKSUM_SHA256;
		hex = s + 7;
		want = 64;
	} else if (strncmp(s, "md5:", 4) == 0) {
		alg = PROTO_CHECKSUM_MD5;
		hex = s + 4;
		want = 32;
	} else {
		hex = s;
		want = strlen(s);
		alg = want == 64 ? PROTO_CHECKSUM_SHA256 : PROTO_CHECKSUM_MD5;
		if (want != 64 && want != 32)
			goto bad;
	}
	if (strlen(hex) != want)
		goto bad;
	for (i = 0; i < want; i++) {
		if (!a_xdigit(hex[i]))
			goto bad;
		ck->hex[i] = a_lower(hex[i]);
	}
	ck->hex[want] = '\0';
	ck->alg = alg;
	return 0;
bad:
	return proto__fail(pe, SW_EFORMAT, "args.checksum",
	    "must be 'sha256:' and 64 hex digits or 'md5:' and 32 hex digits");
}

static int
get_datastore(struct proto__err *pe, json_object *args, char **dst)
{
	const char *s;
	int r;

	r = proto__get_str(pe, args, "datastore", "args.datastore", PROTO_NAME_MAX, true, true, &s);
	if (r < 0)
		return r;
	if (strpbrk(s, "[]/") != NULL)
		return proto__fail(pe, SW_EFORMAT, "args.datastore",
		    "must be a datastore name without '[', ']' or '/'");
	return dup_str(pe, "args.datastore", s, dst);
}

/* ------------------------------------------------------------- per type */

static int
need_vcenter(struct proto__err *pe, const struct proto_command *cmd)
{
	if (!cmd->has_vcenter)
		return proto__fail(pe, SW_EFORMAT, "vcenter", "missing (required by %s)",
		    proto_type_name(cmd->type));
	return 0;
}

static int
args_create_snapshot(struct proto__err *pe, json_object *args, struct proto_command *cmd)
{
	struct proto_args_create_snapshot *a = &cmd->args.create_snapshot;
	const char *bu;
	int r;

	if ((r = get_vm(pe, args, true, &a->vm, NULL)) < 0 ||
	    (r = get_disk(pe, args, "args.disk", true, &a->disk)) < 0 ||
	    (r = get_id(pe, args, "account_id", "args.account_id", &a->account_id)) < 0 ||
	    (r = get_id(pe, args, "volume_id", "args.volume_id", &a->volume_id)) < 0)
		return r;
	r = proto__get_str(pe, args, "backup_uuid", "args.backup_uuid", PROTO_ID_MAX, false,
	    true, &bu);
	if (r < 0)
		return r;
	if (bu != NULL && !proto__is_uuid(bu))
		return proto__fail(pe, SW_EFORMAT, "args.backup_uuid", "must be a UUID");
	if (bu != NULL && strpbrk(bu, "ABCDEF") != NULL)
		return proto__fail(pe, SW_EFORMAT, "args.backup_uuid", "must be in lower case "
		    "(CloudStack matches snapshot files by their lower-cased names)");
	/* The command id by default: a redelivery must land on the same object. */
	r = dup_str(pe, "args.backup_uuid", bu != NULL ? bu : cmd->id, &a->backup_uuid);
	if (r == 0 && bu == NULL)
		(void)sw_ascii_lower(a->backup_uuid, strlen(a->backup_uuid) + 1, a->backup_uuid);
	return r;
}

static int
args_path(struct proto__err *pe, json_object *args, struct proto_args_path *a)
{
	return get_install_path(pe, args, "path", "args.path", &a->path);
}

static int
args_create_template(struct proto__err *pe, json_object *args, struct proto_command *cmd)
{
	struct proto_args_create_template *a = &cmd->args.create_template;
	bool has_snap, has_vm, has_disk;
	int r;

	if ((r = get_id(pe, args, "account_id", "args.account_id", &a->account_id)) < 0 ||
	    (r = get_id(pe, args, "template_id", "args.template_id", &a->template_id)) < 0 ||
	    (r = get_unique_name(pe, args, &a->unique_name)) < 0)
		return r;
	has_snap = proto__member(args, "snapshot_path") != NULL;
	has_vm = proto__member(args, "vm") != NULL;
	has_disk = proto__member(args, "disk") != NULL;
	if (has_snap && (has_vm || has_disk))
		return proto__fail(pe, SW_EFORMAT, "args",
		    "either snapshot_path or vm and disk, not both");
	if (has_snap) {
		a->source = PROTO_TEMPLATE_FROM_SNAPSHOT;
		return get_install_path(pe, args, "snapshot_path", "args.snapshot_path",
		    &a->snapshot_path);
	}
	if (!has_vm && !has_disk)
		return proto__fail(pe, SW_EFORMAT, "args", "snapshot_path or vm and disk required");
	a->source = PROTO_TEMPLATE_FROM_VM;
	if ((r = get_vm(pe, args, true, &a->vm, NULL)) < 0 ||
	    (r = get_disk(pe, args, "args.disk", true, &a->disk)) < 0)
		return r;
	return need_vcenter(pe, cmd);
}

static int
args_register_template(struct proto__err *pe, json_object *args, struct proto_command *cmd)
{
	struct proto_args_register_template *a = &cmd->args.register_template;
	const char *url;
	int r;

	r = proto__get_str(pe, args, "url", "args.url", PROTO_URL_MAX, true, true, &url);
	if (r < 0)
		return r;
	if ((r = check_url(pe, "args.url", url, true)) < 0 ||
	    (r = dup_str(pe, "args.url", url, &a->url)) < 0 ||
	    (r = get_checksum(pe, args, &a->checksum)) < 0 ||
	    (r = get_id(pe, args, "account_id", "args.account_id", &a->account_id)) < 0 ||
	    (r = get_unique_name(pe, args, &a->unique_name)) < 0)
		return r;
	return get_id(pe, args, "template_id", "args.template_id", &a->template_id);
}

static int
args_copy_template(struct proto__err *pe, json_object *args, struct proto_command *cmd)
{
	struct proto_args_copy_template *a = &cmd->args.copy_template;
	int r;

	const char *base;

	r = get_install_path(pe, args, "path", "args.path", &a->path);
	if (r < 0 || (r = get_unique_name(pe, args, &a->unique_name)) < 0)
		return r;
	base = strrchr(a->path, '/');
	base = base != NULL ? base + 1 : a->path;
	if (a->unique_name != NULL && strcmp(base, a->unique_name) != 0)
		return proto__fail(pe, SW_EFORMAT, "args.unique_name",
		    "must be the name args.path ends in");
	return get_store(pe, args, "dest_store", "args.dest_store", "args.dest_store.url",
	    &a->dest_store);
}

static int
args_create_volume(struct proto__err *pe, json_object *args, struct proto_command *cmd)
{
	struct proto_args_create_volume *a = &cmd->args.create_volume;
	int r;

	if ((r = get_install_path(pe, args, "source_path", "args.source_path",
	    &a->source_path)) < 0 ||
	    (r = get_datastore(pe, args, &a->datastore)) < 0)
		return r;
	return get_filename(pe, args, "name", "args.name", true, &a->name);
}

static int
args_extract_volume(struct proto__err *pe, json_object *args, struct proto_command *cmd)
{
	struct proto_args_extract_volume *a = &cmd->args.extract_volume;
	int r;

	if ((r = get_vm(pe, args, true, &a->vm, NULL)) < 0 ||
	    (r = get_disk(pe, args, "args.disk", true, &a->disk)) < 0 ||
	    (r = get_id(pe, args, "account_id", "args.account_id", &a->account_id)) < 0)
		return r;
	return get_id(pe, args, "volume_id", "args.volume_id", &a->volume_id);
}

static int
parse_args(struct proto__err *pe, json_object *root, struct proto_command *cmd)
{
	json_object *args;
	int r;

	r = proto__get_obj(pe, root, "args", "args", true, &args);
	if (r < 0)
		return r;
	if (types[cmd->type].needs_vcenter && (r = need_vcenter(pe, cmd)) < 0)
		return r;
	switch (cmd->type) {
	case PROTO_CREATE_SNAPSHOT:
		return args_create_snapshot(pe, args, cmd);
	case PROTO_DELETE_SNAPSHOT:
		return args_path(pe, args, &cmd->args.delete_snapshot);
	case PROTO_CREATE_TEMPLATE:
		return args_create_template(pe, args, cmd);
	case PROTO_REGISTER_TEMPLATE:
		return args_register_template(pe, args, cmd);
	case PROTO_COPY_TEMPLATE:
		return args_copy_template(pe, args, cmd);
	case PROTO_DELETE_TEMPLATE:
		return args_path(pe, args, &cmd->args.delete_template);
	case PROTO_EXTRACT_TEMPLATE:
		return args_path(pe, args, &cmd->args.extract_template);
	case PROTO_CREATE_VOLUME:
		return args_create_volume(pe, args, cmd);
	case PROTO_EXTRACT_VOLUME:
		return args_extract_volume(pe, args, cmd);
	default:
		return proto__fail(pe, SW_EINTERNAL, "type", "no parser for this type");
	}
}

/* A short printable rendering of an untrusted string for a message. */
static void
printable(const char *s, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0' && o + 4 < outsz; i++)
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0' && o + 4 <= outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* Reads id and type first, so a failure can still be answered. */
static void
peek_id_type(json_object *root, struct proto_parse_error *err)
{
	json_object *v;

	v = proto__member(root, "id");
	if (v != NULL && json_object_is_type(v, json_type_string) &&
	    proto__is_uuid(json_object_get_string(v)) &&
	    json_object_get_string_len(v) == PROTO_UUID_LEN) {
		memcpy(err->id, json_object_get_string(v), PROTO_UUID_LEN + 1);
		err->has_id = true;
	}
	v = proto__member(root, "type");
	if (v != NULL && json_object_is_type(v, json_type_string))
		err->type = proto_type_from_name(json_object_get_string(v));
}

static int
parse_root(struct proto__err *pe, json_object *root, const struct proto_parse_error *peek,
    struct proto_command *cmd)
{
	const char *s;
	char shown[48];
	int64_t v;
	bool present;
	int r;

	if (!json_object_is_type(root, json_type_object))
		return proto__fail(pe, SW_EFORMAT, "body", "must be a JSON object");
	/* Any integer is read first: another version may shape everything else differently. */
	r = proto__get_int(pe, root, "version", "version", INT64_MIN + 1, INT64_MAX, "an integer",
	    true, &v, NULL);
	if (r < 0)
		return r;
	if (v != PROTO_VERSION)
		return proto__fail(pe, SW_EUNSUPPORTED, "version", "unsupported version %lld "
		    "(this worker speaks %d)", (long long)v, PROTO_VERSION);
	cmd->version = PROTO_VERSION;
	r = proto__get_str(pe, root, "id", "id", PROTO_ID_MAX, true, true, &s);
	if (r < 0)
		return r;
	if (!peek->has_id)
		return proto__fail(pe, SW_EFORMAT, "id", "must be a UUID");
	memcpy(cmd->id, peek->id, sizeof(cmd->id));
	r = proto__get_str(pe, root, "type", "type", 64, true, false, &s);
	if (r < 0)
		return r;
	if (peek->type == PROTO_TYPE_UNKNOWN) {
		printable(s, shown, sizeof(shown));
		return proto__fail(pe, SW_EFORMAT, "type", "unknown command type '%s'", shown);
	}
	cmd->type = peek->type;
	r = proto__get_int(pe, root, "timeout_s", "timeout_s", 1, PROTO_TIMEOUT_MAX,
	    "an integer from 1 to 604800", false, &v, &present);
	if (r < 0)
		return r;
	cmd->timeout_s = present ? (uint32_t)v : types[cmd->type].timeout_s;
	r = get_vcenter(pe, root, cmd);
	if (r < 0)
		return r;
	r = get_store(pe, root, "store", "store", "store.url", &cmd->store);
	if (r < 0)
		return r;
	return parse_args(pe, root, cmd);
}

int
proto_command_parse(const void *body, size_t len, struct proto_command **ret,
    struct proto_parse_error *err)
{
	struct proto_parse_error local;
	struct proto__err pe;
	struct proto_command *cmd = NULL;
	json_object *root = NULL;
	int r;

	if (err == NULL)
		err = &local;
	memset(err, 0, sizeof(*err));
	memset(&pe, 0, sizeof(pe));
	r = proto__json_parse(body, len, &root, &root, &pe);
	if (root != NULL && json_object_is_type(root, json_type_object))
		peek_id_type(root, err);
	if (r < 0)
		goto fail;
	cmd = calloc(1, sizeof(*cmd));
	if (cmd == NULL) {
		r = proto__fail(&pe, -ENOMEM, "body", "out of memory");
		goto fail;
	}
	r = parse_root(&pe, root, err, cmd);
	if (r < 0)
		goto fail;
	json_object_put(root);
	*ret = cmd;
	return 0;
fail:
	json_object_put(root);
	proto_command_free(cmd);
	err->code = r == SW_EUNSUPPORTED ? PROTO_ERR_UNSUPPORTED_VERSION :
	    r == -ENOMEM || r == SW_EINTERNAL ? PROTO_ERR_INTERNAL : PROTO_ERR_INVALID_COMMAND;
	memcpy(err->field, pe.field, sizeof(err->field));
	memcpy(err->message, pe.msg, sizeof(err->message));
	return r;
}

static void
vm_free(struct proto_vm *vm)
{
	free(vm->uuid);
	free(vm->name);
}

void
proto_command_free(struct proto_command *cmd)
{
	if (cmd == NULL)
		return;
	free(cmd->vcenter.url);
	free(cmd->vcenter.credentials);
	free(cmd->vcenter.thumbprint);
	free(cmd->store.url);
	switch (cmd->type) {
	case PROTO_CREATE_SNAPSHOT:
		vm_free(&cmd->args.create_snapshot.vm);
		free(cmd->args.create_snapshot.disk);
		free(cmd->args.create_snapshot.backup_uuid);
		break;
	case PROTO_DELETE_SNAPSHOT:
		free(cmd->args.delete_snapshot.path);
		break;
	case PROTO_CREATE_TEMPLATE:
		free(cmd->args.create_template.unique_name);
		free(cmd->args.create_template.snapshot_path);
		vm_free(&cmd->args.create_template.vm);
		free(cmd->args.create_template.disk);
		break;
	case PROTO_REGISTER_TEMPLATE:
		free(cmd->args.register_template.url);
		free(cmd->args.register_template.unique_name);
		break;
	case PROTO_COPY_TEMPLATE:
		free(cmd->args.copy_template.path);
		free(cmd->args.copy_template.unique_name);
		free(cmd->args.copy_template.dest_store.url);
		break;
	case PROTO_DELETE_TEMPLATE:
		free(cmd->args.delete_template.path);
		break;
	case PROTO_EXTRACT_TEMPLATE:
		free(cmd->args.extract_template.path);
		break;
	case PROTO_CREATE_VOLUME:
		free(cmd->args.create_volume.source_path);
		free(cmd->args.create_volume.datastore);
		free(cmd->args.create_volume.name);
		break;
	case PROTO_EXTRACT_VOLUME:
		vm_free(&cmd->args.extract_volume.vm);
		free(cmd->args.extract_volume.disk);
		break;
	default:
		break;
	}
	free(cmd);
}
