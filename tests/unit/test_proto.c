/*
 * Unit tests for proto/: golden command files for every type, invalid
 * commands each paired with the exact error, limits, events built
 * byte-for-byte against golden files and parsed back, error-code mapping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/proto.h"

#define FIX SW_SRCDIR "/tests/fixtures/proto"
#define ID1 "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f"

/* ------------------------------------------------------------- helpers */

static char *
read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	char *p;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*ret_len = (size_t)n;
	return p;
}

/* Golden text files end with a newline an editor adds; events do not. */
static char *
read_golden(const char *path)
{
	size_t n;
	char *p = read_file(path, &n);

	if (n > 0 && p[n - 1] == '\n')
		p[n - 1] = '\0';
	return p;
}

/* Sorted *.<ext> files of dir (names only, without the extension). */
static int
list_dir(const char *dir, const char *ext, char names[][128], int max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0, i, j;
	size_t el = strlen(ext), nl;
	char tmp[128];

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (nl <= el || nl - el >= 128 || strcmp(de->d_name + nl - el, ext) != 0)
			continue;
		assert_true(n < max);
		memcpy(names[n], de->d_name, nl - el);
		names[n][nl - el] = '\0';
		n++;
	}
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			memcpy(tmp, names[j], 128);
			memcpy(names[j], names[j - 1], 128);
			memcpy(names[j - 1], tmp, 128);
		}
	return n;
}

static void
dstr(struct sw_buf *b, const char *k, const char *v)
{
	assert_int_equal(sw_buf_addf(b, "%s=%s\n", k, v != NULL ? v : "-"), 0);
}

static void
dint(struct sw_buf *b, const char *k, long long v)
{
	assert_int_equal(sw_buf_addf(b, "%s=%lld\n", k, v), 0);
}

static void
dvm(struct sw_buf *b, const struct proto_vm *vm)
{
	dstr(b, "args.vm.uuid", vm->uuid);
	dstr(b, "args.vm.name", vm->name);
}

/* Every field of a parsed command as "key=value" lines ("-" for NULL). */
static char *
dump_command(const struct proto_command *c)
{
	struct sw_buf b = SW_BUF_INIT(1 << 20);
	const struct proto_args_create_template *ct;
	const struct proto_args_register_template *rt;

	dint(&b, "version", c->version);
	dstr(&b, "id", c->id);
	dstr(&b, "type", proto_type_name(c->type));
	dint(&b, "timeout_s", c->timeout_s);
	dint(&b, "has_vcenter", c->has_vcenter);
	dstr(&b, "vcenter.url", c->vcenter.url);
	dstr(&b, "vcenter.credentials", c->vcenter.credentials);
	dstr(&b, "vcenter.thumbprint", c->vcenter.thumbprint);
	dstr(&b, "store.url", c->store.url);
	switch (c->type) {
	case PROTO_CREATE_SNAPSHOT:
		dvm(&b, &c->args.create_snapshot.vm);
		dstr(&b, "args.disk", c->args.create_snapshot.disk);
		dint(&b, "args.account_id", c->args.create_snapshot.account_id);
		dint(&b, "args.volume_id", c->args.create_snapshot.volume_id);
		dstr(&b, "args.backup_uuid", c->args.create_snapshot.backup_uuid);
		break;
	case PROTO_DELETE_SNAPSHOT:
		dstr(&b, "args.path", c->args.delete_snapshot.path);
		break;
	case PROTO_CREATE_TEMPLATE:
		ct = &c->args.create_template;
		dint(&b, "args.account_id", ct->account_id);
		dint(&b, "args.template_id", ct->template_id);
		dstr(&b, "args.unique_name", ct->unique_name);
		dstr(&b, "source", ct->source == PROTO_TEMPLATE_FROM_SNAPSHOT ? "snapshot" :
		    ct->source == PROTO_TEMPLATE_FROM_VM ? "vm" : "?");
		dstr(&b, "args.snapshot_path", ct->snapshot_path);
		dvm(&b, &ct->vm);
		dstr(&b, "args.disk", ct->disk);
		break;
	case PROTO_REGISTER_TEMPLATE:
		rt = &c->args.register_template;
		dstr(&b, "args.url", rt->url);
		dstr(&b, "args.checksum.alg", rt->checksum.alg == PROTO_CHECKSUM_SHA256 ? "sha256" :
		    rt->checksum.alg == PROTO_CHECKSUM_MD5 ? "md5" : "none");
		dstr(&b, "args.checksum.hex", rt->checksum.hex);
		dint(&b, "args.account_id", rt->account_id);
		dint(&b, "args.template_id", rt->template_id);
		dstr(&b, "args.unique_name", rt->unique_name);
		break;
	case PROTO_COPY_TEMPLATE:
		dstr(&b, "args.path", c->args.copy_template.path);
		dstr(&b, "args.dest_store.url", c->args.copy_template.dest_store.url);
		dstr(&b, "args.unique_name", c->args.copy_template.unique_name);
		break;
	case PROTO_DELETE_TEMPLATE:
		dstr(&b, "args.path", c->args.delete_template.path);
		break;
	case PROTO_EXTRACT_TEMPLATE:
		dstr(&b, "args.path", c->args.extract_template.path);
		break;
	case PROTO_CREATE_VOLUME:
		dstr(&b, "args.source_path", c->args.create_volume.source_path);
		dstr(&b, "args.datastore", c->args.create_volume.datastore);
		dstr(&b, "args.name", c->args.create_volume.name);
		break;
	case PROTO_EXTRACT_VOLUME:
		dvm(&b, &c->args.extract_volume.vm);
		dstr(&b, "args.disk", c->args.extract_volume.disk);
		dint(&b, "args.account_id", c->args.extract_volume.account_id);
		dint(&b, "args.volume_id", c->args.extract_volume.volume_id);
		break;
	default:
		fail_msg("unexpected type %d", (int)c->type);
	}
	return sw_buf_steal(&b, NULL);
}

/* The parse outcome in the .err format: code, id, type, message. */
static char *
dump_error(int r, const struct proto_parse_error *err)
{
	struct sw_buf b = SW_BUF_INIT(1 << 16);
	const char *tn = proto_type_name(err->type);

	if (r == 0)
		return strdup("parsed");
	assert_int_equal(sw_buf_addf(&b, "code: %s\nid: %s\ntype: %s\nmessage: %s",
	    proto_errcode_name(err->code), err->has_id ? err->id : "-", tn ? tn : "-",
	    err->message), 0);
	return sw_buf_steal(&b, NULL);
}

static int
parse_str(const char *s, struct proto_command **ret, struct proto_parse_error *err)
{
	return proto_command_parse(s, strlen(s), ret, err);
}

/* ---------------------------------------------------------- commands */

static void
test_golden_commands(void **state)
{
	static char names[64][128];
	bool seen[PROTO_TYPE_COUNT] = { false };
	struct proto_parse_error err;
	struct proto_command *cmd;
	char path[512], tname[128], *body, *want, *got;
	size_t len;
	int n, i, t;

	(void)state;
	n = list_dir(FIX, ".json", names, 64);
	assert_true(n >= PROTO_TYPE_COUNT - 1);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), FIX "/%s.json", names[i]);
		body = read_file(path, &len);
		cmd = NULL;
		if (proto_command_parse(body, len, &cmd, &err) != 0)
			fail_msg("%s: %s", names[i], err.message);
		/* The file is named after its type: "CreateTemplate-vm" is a CreateTemplate. */
		snprintf(tname, sizeof(tname), "%s", names[i]);
		tname[strcspn(tname, "-")] = '\0';
		assert_int_equal(cmd->type, proto_type_from_name(tname));
		seen[cmd->type] = true;
		assert_false(err.code != PROTO_ERR_NONE);
		snprintf(path, sizeof(path), FIX "/%s.parsed", names[i]);
		want = read_file(path, &len);
		got = dump_command(cmd);
		if (strcmp(want, got) != 0)
			fail_msg("%s: parsed\n%s\nwant\n%s", names[i], got, want);
		free(want);
		free(got);
		proto_command_free(cmd);
		free(body);
	}
	for (t = PROTO_TYPE_UNKNOWN + 1; t < PROTO_TYPE_COUNT; t++)
		if (!seen[t])
			fail_msg("no golden file for %s", proto_type_name((enum proto_type)t));
}

static void
test_invalid_commands(void **state)
{
	static char names[256][128];
	struct proto_parse_error err;
	struct proto_command *cmd;
	char path[512], *body, *want, *got, *colon;
	size_t len;
	int n, i, r;

	(void)state;
	n = list_dir(FIX "/invalid", ".json", names, 256);
	assert_true(n >= 50);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), FIX "/invalid/%s.json", names[i]);
		body = read_file(path, &len);
		cmd = (struct proto_command *)&err;   /* must stay untouched on failure */
		r = proto_command_parse(body, len, &cmd, &err);
		snprintf(path, sizeof(path), FIX "/invalid/%s.err", names[i]);
		want = read_golden(path);
		got = dump_error(r, &err);
		if (strcmp(want, got) != 0)
			fail_msg("invalid/%s:\n got: %s\nwant: %s", names[i], got, want);
		assert_true(cmd == (struct proto_command *)&err);
		assert_int_equal(r, err.code == PROTO_ERR_UNSUPPORTED_VERSION ? SW_EUNSUPPORTED :
		    SW_EFORMAT);
		/* The field path is what the message starts with. */
		colon = strstr(err.message, ": ");
		assert_non_null(colon);
		assert_int_equal((size_t)(colon - err.message), strlen(err.field));
		assert_memory_equal(err.message, err.field, strlen(err.field));
		free(want);
		free(got);
		free(body);
	}
}

/* A valid CreateSnapshot with s1 replaced by s2 (for boundary tests). */
static char *
variant(const char *s1, const char *s2)
{
	static const char base[] =
	    "{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateSnapshot\",\"timeout_s\":TMO,"
	    "\"vcenter\":{\"url\":\"https://vc1.example.org/sdk\",\"credentials\":\"vc1\"},"
	    "\"store\":{\"url\":\"nfs://10.0.0.5/export/secondary\"},"
	    "\"args\":{\"vm\":{\"name\":\"VMNAME\"},\"disk\":\"[ds1] i-2-3-VM/ROOT-3.vmdk\","
	    "\"account_id\":ACCT,\"volume_id\":13}}";
	struct sw_buf b = SW_BUF_INIT(4 << 20);
	const char *p = strstr(base, s1);
	char *out;
	const char *rest;

	assert_non_null(p);
	assert_int_equal(sw_buf_add(&b, base, (size_t)(p - base)), 0);
	assert_int_equal(sw_buf_addstr(&b, s2), 0);
	rest = p + strlen(s1);
	assert_int_equal(sw_buf_addstr(&b, rest), 0);
	out = sw_buf_steal(&b, NULL);
	/* Fill the other placeholders with valid values. */
	for (;;) {
		char *q;
		if ((q = strstr(out, "TMO")) != NULL)
			memcpy(q, "100", 3);
		else if ((q = strstr(out, "ACCT")) != NULL)
			memcpy(q, "   2", 4);
		else if ((q = strstr(out, "VMNAME")) != NULL)
			memcpy(q, "vm-001", 6);
		else
			break;
	}
	return out;
}

/* Parses body; returns the parse code and the message in msg. */
static int
try_parse(const char *body, char *msg, size_t msgsz)
{
	struct proto_parse_error err;
	struct proto_command *cmd = NULL;
	int r = parse_str(body, &cmd, &err);

	if (r == 0) {
		snprintf(msg, msgsz, "ok");
		proto_command_free(cmd);
	} else {
		snprintf(msg, msgsz, "%s", err.message);
		assert_null(cmd);
	}
	return r;
}

static void
test_limits(void **state)
{
	char msg[SW_ERR_MSG_MAX], *b, *name;
	size_t i;

	(void)state;
	b = variant("ACCT", "2");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), 0);
	free(b);
	b = variant("TMO", "604800");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), 0);
	free(b);
	b = variant("TMO", "1");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), 0);
	free(b);
	b = variant("ACCT", "9223372036854775807");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), 0);
	free(b);
	b = variant("ACCT", "-0");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	assert_string_equal(msg, "args.account_id: must be a positive integer");
	free(b);
	b = variant("ACCT", "1e3");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	assert_string_equal(msg, "args.account_id: must be a positive integer");
	free(b);
	b = variant("ACCT", "true");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	free(b);

	/* Names: 255 bytes pass, 256 do not. */
	name = malloc(300);
	assert_non_null(name);
	memset(name, 'n', 255);
	name[255] = '\0';
	b = variant("VMNAME", name);
	assert_int_equal(try_parse(b, msg, sizeof(msg)), 0);
	free(b);
	name[255] = 'n';
	name[256] = '\0';
	b = variant("VMNAME", name);
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	assert_string_equal(msg, "args.vm.name: longer than 255 bytes");
	free(b);
	/* Non-ASCII names are fine (UTF-8 is checked by the tokenizer). */
	b = variant("VMNAME", "Gr\xc3\xbc\xc3\x9f Gott");
	if (try_parse(b, msg, sizeof(msg)) != 0)
		fail_msg("%s", msg);
	free(b);
	/* An overlong encoding of '/' is not UTF-8. */
	b = variant("VMNAME", "a\xc0\xafz");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	assert_non_null(strstr(msg, "body: not valid UTF-8 at offset "));
	free(b);
	/* So are surrogates and values past U+10FFFF. */
	b = variant("VMNAME", "a\xed\xa0\x80z");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	free(b);
	b = variant("VMNAME", "a\xf4\x90\x80\x80z");
	assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
	free(b);
	free(name);

	/* Datastore paths: 1024 bytes pass, 1025 do not. */
	{
		char disk[1100];

		memcpy(disk, "[ds1] ", 6);
		for (i = 6; i < 1024 - 5; i++)
			disk[i] = (i % 100 == 0) ? '/' : 'd';
		memcpy(disk + 1024 - 5, ".vmdk", 6);
		assert_int_equal(strlen(disk), 1024);
		b = variant("[ds1] i-2-3-VM/ROOT-3.vmdk", disk);
		assert_int_equal(try_parse(b, msg, sizeof(msg)), 0);
		free(b);
		/* One byte more: "[ds1] d" + the rest (a copy, not an
		 * overlapping move, which valgrind 3.19 misreports). */
		char longer[1100];
		snprintf(longer, sizeof(longer), "[ds1] d%s", disk + 6);
		b = variant("[ds1] i-2-3-VM/ROOT-3.vmdk", longer);
		assert_int_equal(try_parse(b, msg, sizeof(msg)), SW_EFORMAT);
		assert_string_equal(msg, "args.disk: longer than 1024 bytes");
		free(b);
	}
}

static void
test_body_limits(void **state)
{
	char msg[SW_ERR_MSG_MAX], *b, *big;
	struct proto_parse_error err;
	struct proto_command *cmd = NULL;
	size_t n, pad;
	int depth, i, r;

	(void)state;
	/* Exactly 1 MiB (white space padding) passes; one byte more does not. */
	b = variant("ACCT", "2");
	n = strlen(b);
	big = malloc(PROTO_BODY_MAX + 2);
	assert_non_null(big);
	pad = PROTO_BODY_MAX - n;
	memcpy(big, b, n - 1);
	memset(big + n - 1, ' ', pad);
	big[PROTO_BODY_MAX - 1] = '}';
	assert_int_equal(proto_command_parse(big, PROTO_BODY_MAX, &cmd, &err), 0);
	assert_int_equal(cmd->args.create_snapshot.account_id, 2);
	proto_command_free(cmd);
	cmd = NULL;
	memset(big + n - 1, ' ', pad + 1);
	big[PROTO_BODY_MAX] = '}';
	assert_int_equal(proto_command_parse(big, PROTO_BODY_MAX + 1, &cmd, &err), SW_ETOOBIG);
	assert_null(cmd);
	assert_int_equal(err.code, PROTO_ERR_INVALID_COMMAND);
	assert_string_equal(err.message, "body: larger than 1048576 bytes");
	assert_string_equal(err.field, "body");
	assert_false(err.has_id);

	/* The body is not NUL-terminated: bytes after len are never read. */
	memcpy(big, b, n);
	memset(big + n, 'x', 64);
	assert_int_equal(proto_command_parse(big, n, &cmd, &err), 0);
	proto_command_free(cmd);
	cmd = NULL;
	/* A NUL inside the length is refused, wherever it is. */
	big[n] = '\0';
	assert_int_equal(proto_command_parse(big, n + 1, &cmd, &err), SW_EFORMAT);
	snprintf(msg, sizeof(msg), "body: contains a NUL byte at offset %zu", n);
	assert_string_equal(err.message, msg);
	free(big);

	/* Nesting: 16 levels pass (unknown keys are ignored), 17 do not. */
	for (depth = 15; depth <= 16; depth++) {
		struct sw_buf sb = SW_BUF_INIT(1 << 16);

		assert_int_equal(sw_buf_add(&sb, b, n - 1), 0);
		assert_int_equal(sw_buf_addstr(&sb, ",\"x\":"), 0);
		for (i = 0; i < depth; i++)
			assert_int_equal(sw_buf_addstr(&sb, "["), 0);
		for (i = 0; i < depth; i++)
			assert_int_equal(sw_buf_addstr(&sb, "]"), 0);
		assert_int_equal(sw_buf_addstr(&sb, "}"), 0);
		r = try_parse(sw_buf_str(&sb), msg, sizeof(msg));
		if (depth == 15) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, SW_EFORMAT);
			assert_string_equal(msg, "body: nested deeper than 16 levels");
		}
		sw_buf_free(&sb);
	}

	/* Every proper prefix of a valid body fails cleanly. */
	for (i = 0; (size_t)i < n; i++) {
		cmd = NULL;
		assert_int_not_equal(proto_command_parse(b, (size_t)i, &cmd, NULL), 0);
		assert_null(cmd);
	}
	free(b);
}

static void
test_error_id_and_type(void **state)
{
	struct proto_parse_error err;
	struct proto_command *cmd = NULL;

	(void)state;
	/* A poison message with a readable id and type can be answered. */
	assert_int_equal(parse_str("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"ExtractTemplate\","
	    "\"store\":{\"url\":\"nfs://h/e\"},\"args\":{\"path\":\"../x\"}}", &cmd, &err), SW_EFORMAT);
	assert_true(err.has_id);
	assert_string_equal(err.id, ID1);
	assert_int_equal(err.type, PROTO_EXTRACT_TEMPLATE);
	assert_string_equal(err.field, "args.path");
	/* Even for another version. */
	assert_int_equal(parse_str("{\"version\":3,\"id\":\"" ID1 "\",\"type\":\"Foo\"}", &cmd, &err),
	    SW_EUNSUPPORTED);
	assert_int_equal(err.code, PROTO_ERR_UNSUPPORTED_VERSION);
	assert_true(err.has_id);
	assert_int_equal(err.type, PROTO_TYPE_UNKNOWN);
	/* Invalid JSON: nothing can be read. */
	assert_int_equal(parse_str("{\"version\":1,\"id\":\"" ID1 "\"", &cmd, &err), SW_EFORMAT);
	assert_false(err.has_id);
	assert_string_equal(err.id, "");
	/* A NULL err is fine. */
	assert_int_equal(parse_str("[]", &cmd, NULL), SW_EFORMAT);
	assert_null(cmd);
	proto_command_free(NULL);
}

static void
test_types(void **state)
{
	int t;
	char key[64];

	(void)state;
	for (t = PROTO_TYPE_UNKNOWN + 1; t < PROTO_TYPE_COUNT; t++) {
		const char *n = proto_type_name((enum proto_type)t);

		assert_non_null(n);
		assert_int_equal(proto_type_from_name(n), t);
	}
	assert_null(proto_type_name(PROTO_TYPE_UNKNOWN));
	assert_null(proto_type_name(PROTO_TYPE_COUNT));
	assert_null(proto_type_name((enum proto_type)-1));
	assert_int_equal(proto_type_from_name("createsnapshot"), PROTO_TYPE_UNKNOWN);
	assert_int_equal(proto_type_from_name(NULL), PROTO_TYPE_UNKNOWN);
	assert_int_equal(proto_type_default_timeout(PROTO_CREATE_SNAPSHOT), 21600);
	assert_int_equal(proto_type_default_timeout(PROTO_DELETE_SNAPSHOT), 600);
	assert_int_equal(proto_type_default_timeout(PROTO_DELETE_TEMPLATE), 600);
	assert_int_equal(proto_type_default_timeout(PROTO_REGISTER_TEMPLATE), 21600);
	assert_true(proto_type_needs_vcenter(PROTO_CREATE_VOLUME));
	assert_false(proto_type_needs_vcenter(PROTO_COPY_TEMPLATE));

	assert_int_equal(proto_routing_key(PROTO_CREATE_SNAPSHOT, PROTO_STATUS_SUCCEEDED, key,
	    sizeof(key)), 0);
	assert_string_equal(key, "createsnapshot.succeeded");
	assert_int_equal(proto_routing_key(PROTO_DELETE_TEMPLATE, PROTO_STATUS_FAILED, key,
	    sizeof(key)), 0);
	assert_string_equal(key, "deletetemplate.failed");
	assert_int_equal(proto_routing_key(PROTO_CREATE_SNAPSHOT, PROTO_STATUS_PROGRESS, key,
	    sizeof(key)), 0);
	assert_string_equal(key, "createsnapshot.progress");
	assert_int_equal(proto_routing_key(PROTO_TYPE_UNKNOWN, PROTO_STATUS_FAILED, key,
	    sizeof(key)), 0);
	assert_string_equal(key, "unknown.failed");
	assert_int_equal(proto_routing_key(PROTO_TYPE_UNKNOWN, PROTO_STATUS_SUCCEEDED, key,
	    sizeof(key)), -EINVAL);
	assert_int_equal(proto_routing_key(PROTO_EXTRACT_VOLUME, PROTO_STATUS_SUCCEEDED, key, 10),
	    -ENAMETOOLONG);
}

static void
test_errcodes(void **state)
{
	static const struct {
		int code;
		enum proto_errctx ctx;
		enum proto_errcode want;
		bool retry;
	} cases[] = {
		{ 0, PROTO_CTX_STORE, PROTO_ERR_NONE, false },
		{ SW_ENOTFOUND, PROTO_CTX_VCENTER, PROTO_ERR_NOT_FOUND, false },
		{ -ENOENT, PROTO_CTX_STORE, PROTO_ERR_NOT_FOUND, false },
		{ -ENOSPC, PROTO_CTX_STORE, PROTO_ERR_NO_SPACE, false },
		{ -EDQUOT, PROTO_CTX_DOWNLOAD, PROTO_ERR_NO_SPACE, false },
		{ -EIO, PROTO_CTX_STORE, PROTO_ERR_STORE_IO, true },
		{ -EACCES, PROTO_CTX_STORE, PROTO_ERR_STORE_IO, false },
		{ -EROFS, PROTO_CTX_STORE, PROTO_ERR_STORE_IO, false },
		{ SW_ENET, PROTO_CTX_VCENTER, PROTO_ERR_VCENTER_UNREACHABLE, true },
		{ -ECONNREFUSED, PROTO_CTX_VCENTER, PROTO_ERR_VCENTER_UNREACHABLE, true },
		{ SW_EAUTH, PROTO_CTX_VCENTER, PROTO_ERR_VCENTER_AUTH, false },
		{ SW_EREMOTE, PROTO_CTX_VCENTER, PROTO_ERR_VCENTER_FAULT, false },
		{ SW_EBUSY, PROTO_CTX_VCENTER, PROTO_ERR_VCENTER_FAULT, true },
		{ SW_EFORMAT, PROTO_CTX_VCENTER, PROTO_ERR_VCENTER_FAULT, false },
		{ SW_ECHECKSUM, PROTO_CTX_DOWNLOAD, PROTO_ERR_CHECKSUM_MISMATCH, false },
		{ -ETIMEDOUT, PROTO_CTX_VCENTER, PROTO_ERR_TIMEOUT, true },
		{ -ECANCELED, PROTO_CTX_STORE, PROTO_ERR_CANCELLED, true },
		{ SW_EFORMAT, PROTO_CTX_STORE, PROTO_ERR_INVALID_COMMAND, false },
		{ SW_EPATH, PROTO_CTX_VCENTER, PROTO_ERR_INVALID_COMMAND, false },
		{ SW_ENET, PROTO_CTX_DOWNLOAD, PROTO_ERR_DOWNLOAD_UNREACHABLE, true },
		{ -ECONNREFUSED, PROTO_CTX_DOWNLOAD, PROTO_ERR_DOWNLOAD_UNREACHABLE, true },
		{ SW_EAUTH, PROTO_CTX_DOWNLOAD, PROTO_ERR_DOWNLOAD_AUTH, false },
		{ SW_EREMOTE, PROTO_CTX_DOWNLOAD, PROTO_ERR_NOT_FOUND, true },
		{ SW_ENOTFOUND, PROTO_CTX_DOWNLOAD, PROTO_ERR_NOT_FOUND, false },
		{ SW_ETOOBIG, PROTO_CTX_DOWNLOAD, PROTO_ERR_INVALID_COMMAND, false },
		/* Hostile input past a bound is the object's fault, not ours (issue 14). */
		{ SW_ETOOBIG, PROTO_CTX_STORE, PROTO_ERR_INVALID_COMMAND, false },
		{ -ENOMEM, PROTO_CTX_VCENTER, PROTO_ERR_INTERNAL, true },
		{ SW_EINTERNAL, PROTO_CTX_STORE, PROTO_ERR_INTERNAL, false },
		{ SW_EEXIST, PROTO_CTX_VCENTER, PROTO_ERR_INTERNAL, false },
		{ -9999, PROTO_CTX_STORE, PROTO_ERR_INTERNAL, false },
	};
	size_t i;
	bool retry;
	int c;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		retry = !cases[i].retry;
		if (proto_errcode_from_sw(cases[i].code, cases[i].ctx, &retry) != cases[i].want ||
		    retry != cases[i].retry)
			fail_msg("case %zu: code %d ctx %d", i, cases[i].code, (int)cases[i].ctx);
	}
	assert_int_equal(proto_errcode_from_sw(-EIO, PROTO_CTX_STORE, NULL), PROTO_ERR_STORE_IO);
	/* Exactly the list of PROTOCOL.md, in its order. */
	{
		static const char *const protocol[] = { "INVALID_COMMAND", "UNSUPPORTED_VERSION",
		    "UNKNOWN_STORE", "NOT_FOUND", "STORE_IO", "NO_SPACE", "VCENTER_UNREACHABLE",
		    "VCENTER_AUTH", "VCENTER_FAULT", "CHECKSUM_MISMATCH", "TIMEOUT", "CANCELLED",
		    "INTERNAL", "DOWNLOAD_UNREACHABLE", "DOWNLOAD_AUTH" };

		assert_int_equal(PROTO_ERR_COUNT - 1, sizeof(protocol) / sizeof(protocol[0]));
		for (c = PROTO_ERR_NONE + 1; c < PROTO_ERR_COUNT; c++)
			assert_string_equal(proto_errcode_name((enum proto_errcode)c), protocol[c - 1]);
	}
	for (c = PROTO_ERR_NONE + 1; c < PROTO_ERR_COUNT; c++)
		assert_int_equal(proto_errcode_from_name(proto_errcode_name((enum proto_errcode)c)), c);
	assert_string_equal(proto_errcode_name(PROTO_ERR_VCENTER_UNREACHABLE), "VCENTER_UNREACHABLE");
	assert_null(proto_errcode_name(PROTO_ERR_NONE));
	assert_int_equal(proto_errcode_from_name("NOPE"), PROTO_ERR_NONE);
}

/* ------------------------------------------------------------- events */

static const struct proto_file snap_files[] = {
	{ "snapshots/2/13/aa44054a-d099-4b9d-8fbf-211217381da0/aa44054a-d099-4b9d-8fbf-211217381da0-disk0.vmdk",
	  68608, "0f343b0931126a20f133d67c2b018a3b1f3a7e6f1e5d7c4b3a29180706f5e4d3" },
	{ "snapshots/2/13/aa44054a-d099-4b9d-8fbf-211217381da0/aa44054a-d099-4b9d-8fbf-211217381da0.ovf",
	  3835, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "snapshots/2/13/aa44054a-d099-4b9d-8fbf-211217381da0/aa44054a-d099-4b9d-8fbf-211217381da0.ova.meta",
	  161, NULL },
};

static const struct proto_file tmpl_files[] = {
	{ "template/tmpl/2/201/201-2-x.ova", 81920, NULL },
};

#define T0 INT64_C(1795640400)   /* 2026-11-25T21:00:00Z */

static void
event_cases(struct proto_event *evs, const char **names, int *n)
{
	struct proto_event *ev;

	*n = 0;
	ev = &evs[(*n)++];
	names[*n - 1] = "createsnapshot-succeeded";
	memset(ev, 0, sizeof(*ev));
	ev->id = ID1;
	ev->type = PROTO_CREATE_SNAPSHOT;
	ev->status = PROTO_STATUS_SUCCEEDED;
	ev->worker = "ssvm-2:4711";
	ev->started_at = T0;
	ev->finished_at = T0 + 192;
	ev->result.install_path =
	    "snapshots/2/13/aa44054a-d099-4b9d-8fbf-211217381da0/aa44054a-d099-4b9d-8fbf-211217381da0";
	ev->result.format = PROTO_FORMAT_OVF;
	ev->result.has_sizes = true;
	ev->result.physical_size = 68608;
	ev->result.virtual_size = 2147483648u;
	ev->result.files = snap_files;
	ev->result.nfiles = 3;

	ev = &evs[(*n)++];
	names[*n - 1] = "createsnapshot-progress";
	memset(ev, 0, sizeof(*ev));
	ev->id = ID1;
	ev->type = PROTO_CREATE_SNAPSHOT;
	ev->status = PROTO_STATUS_PROGRESS;
	ev->worker = "ssvm-2:4711";
	ev->started_at = T0;
	ev->finished_at = T0 + 5;   /* not written for progress */
	ev->progress.percent = 42;
	ev->progress.bytes = 901943132;

	ev = &evs[(*n)++];
	names[*n - 1] = "deletetemplate-failed";
	memset(ev, 0, sizeof(*ev));
	ev->id = "6f7a8b9c-0d1e-4f2a-b3c4-d5e6f7a8b9c0";
	ev->type = PROTO_DELETE_TEMPLATE;
	ev->status = PROTO_STATUS_FAILED;
	ev->worker = "ssvm-1";
	ev->started_at = T0;
	ev->finished_at = T0;
	ev->error.code = PROTO_ERR_STORE_IO;
	ev->error.message = "unlink of template/tmpl/2/201/x.ovf failed: Stale file handle \"\\\"\n";
	ev->error.retryable = true;

	ev = &evs[(*n)++];
	names[*n - 1] = "unknown-failed";
	memset(ev, 0, sizeof(*ev));
	ev->id = ID1;
	ev->type = PROTO_TYPE_UNKNOWN;
	ev->status = PROTO_STATUS_FAILED;
	ev->worker = "ssvm-1";
	ev->started_at = 0;
	ev->finished_at = 951782400;   /* 2000-02-29 */
	ev->error.code = PROTO_ERR_INVALID_COMMAND;
	ev->error.message = "type: unknown command type 'Foo'";

	ev = &evs[(*n)++];
	names[*n - 1] = "extracttemplate-succeeded";
	memset(ev, 0, sizeof(*ev));
	ev->id = "7a8b9c0d-1e2f-4a3b-84c5-e6f7a8b9c0d1";
	ev->type = PROTO_EXTRACT_TEMPLATE;
	ev->status = PROTO_STATUS_SUCCEEDED;
	ev->worker = "ssvm-2:4711";
	ev->started_at = T0;
	ev->finished_at = T0 + 61;
	ev->result.install_path = "template/tmpl/2/201/201-2-x";
	ev->result.format = PROTO_FORMAT_OVA;
	ev->result.has_sizes = true;
	ev->result.physical_size = 81920;
	ev->result.virtual_size = 8589934592u;
	ev->result.files = tmpl_files;
	ev->result.nfiles = 1;
	ev->result.has_download = true;
	ev->result.download.path = "7a8b9c0d-1e2f-4a3b-84c5-e6f7a8b9c0d1/201-2-x.ova";
	ev->result.download.size = 81920;

	ev = &evs[(*n)++];
	names[*n - 1] = "createvolume-succeeded";
	memset(ev, 0, sizeof(*ev));
	ev->id = "8b9c0d1e-2f3a-4b4c-95d6-f7a8b9c0d1e2";
	ev->type = PROTO_CREATE_VOLUME;
	ev->status = PROTO_STATUS_SUCCEEDED;
	ev->worker = "ssvm-2:4711";
	ev->started_at = T0;
	ev->finished_at = T0 + 600;
	ev->result.datastore_path = "[ds1] DATA-27/DATA-27.vmdk";

	ev = &evs[(*n)++];
	names[*n - 1] = "deletesnapshot-succeeded";
	memset(ev, 0, sizeof(*ev));
	ev->id = "0f1e2d3c-4b5a-4968-8776-655443322110";
	ev->type = PROTO_DELETE_SNAPSHOT;
	ev->status = PROTO_STATUS_SUCCEEDED;
	ev->worker = "w";
	ev->started_at = T0;
	ev->finished_at = T0 + 1;
	ev->result.install_path = "snapshots/2/13/x/x";

	ev = &evs[(*n)++];
	names[*n - 1] = "registertemplate-retrying";
	memset(ev, 0, sizeof(*ev));
	ev->id = "9c0d1e2f-3a4b-4c5d-a6e7-f8a9b0c1d2e3";
	ev->type = PROTO_REGISTER_TEMPLATE;
	ev->status = PROTO_STATUS_RETRYING;
	ev->worker = "ssvm-2:4711";
	ev->started_at = T0;
	ev->finished_at = T0 + 30;
	ev->error.code = PROTO_ERR_DOWNLOAD_UNREACHABLE;
	ev->error.message = "download of http://mirror.example.org/t.ova: connection refused";
	ev->error.retryable = true;
	ev->retry.attempt = 2;
	ev->retry.max_attempts = 5;
	ev->retry.delay_s = 60;

	ev = &evs[(*n)++];
	names[*n - 1] = "createsnapshot-waiting";
	memset(ev, 0, sizeof(*ev));
	ev->id = "1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6";
	ev->type = PROTO_CREATE_SNAPSHOT;
	ev->status = PROTO_STATUS_WAITING;
	ev->worker = "ssvm-2:4711";
	ev->started_at = T0;
	ev->finished_at = T0 + 1;
	ev->wait.limit = "datastore:datastore1 (2)";
	ev->wait.delay_s = 10;
}

#define NEVENTS 9

static void
test_golden_events(void **state)
{
	struct proto_event evs[NEVENTS];
	const char *names[NEVENTS];
	struct proto_event *back;
	struct sw_err e;
	char path[512], *json, *json2, *want;
	size_t len, len2;
	int n, i;

	(void)state;
	event_cases(evs, names, &n);
	assert_int_equal(n, NEVENTS);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), FIX "/events/%s.json", names[i]);
		want = read_golden(path);
		if (proto_event_build(&evs[i], &json, &len, &e) != 0)
			fail_msg("%s: %s", names[i], e.msg);
		assert_int_equal(len, strlen(json));
		if (strcmp(json, want) != 0)
			fail_msg("%s:\n got: %s\nwant: %s", names[i], json, want);
		/* Parsed back and built again: the same bytes. */
		if (proto_event_parse(json, len, &back, &e) != 0)
			fail_msg("%s: parse: %s", names[i], e.msg);
		assert_int_equal(back->type, evs[i].type);
		assert_int_equal(back->status, evs[i].status);
		assert_int_equal(back->started_at, evs[i].started_at);
		assert_int_equal(back->result.nfiles, evs[i].result.nfiles);
		assert_int_equal(proto_event_build(back, &json2, &len2, &e), 0);
		assert_int_equal(len2, len);
		assert_string_equal(json2, json);
		proto_event_free(back);
		free(json2);
		free(json);
		free(want);
	}
	proto_event_free(NULL);
}

static void
test_event_parse_fields(void **state)
{
	struct proto_event *ev;
	struct sw_err e;
	char path[512], *body;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), FIX "/events/createsnapshot-succeeded.json");
	body = read_file(path, &len);
	assert_int_equal(proto_event_parse(body, len, &ev, &e), 0);
	assert_string_equal(ev->id, ID1);
	assert_string_equal(ev->worker, "ssvm-2:4711");
	assert_int_equal(ev->finished_at, T0 + 192);
	assert_int_equal(ev->result.format, PROTO_FORMAT_OVF);
	assert_true(ev->result.has_sizes);
	assert_int_equal(ev->result.virtual_size, 2147483648u);
	assert_int_equal(ev->result.nfiles, 3);
	assert_int_equal(ev->result.files[0].size, 68608);
	assert_string_equal(ev->result.files[1].sha256, snap_files[1].sha256);
	assert_null(ev->result.files[2].sha256);
	assert_false(ev->result.has_download);
	assert_null(ev->result.datastore_path);
	proto_event_free(ev);
	free(body);

	snprintf(path, sizeof(path), FIX "/events/deletetemplate-failed.json");
	body = read_file(path, &len);
	assert_int_equal(proto_event_parse(body, len, &ev, &e), 0);
	assert_int_equal(ev->error.code, PROTO_ERR_STORE_IO);
	assert_true(ev->error.retryable);
	assert_string_equal(ev->error.message,
	    "unlink of template/tmpl/2/201/x.ovf failed: Stale file handle \"\\\"\n");
	proto_event_free(ev);
	free(body);
}

static void
expect_build_error(const struct proto_event *ev, const char *msg)
{
	struct sw_err e;
	char *json = (char *)&e;
	size_t len = 77;

	assert_int_equal(proto_event_build(ev, &json, &len, &e), SW_EFORMAT);
	assert_string_equal(e.msg, msg);
	assert_true(json == (char *)&e);
	assert_int_equal(len, 77);
}

static void
test_event_build_errors(void **state)
{
	struct proto_event evs[NEVENTS], ev;
	struct proto_file bad = { "a/b", 1, "ABC" };
	const char *names[NEVENTS];
	int n;

	(void)state;
	event_cases(evs, names, &n);
	ev = evs[1];
	ev.progress.percent = 101;
	expect_build_error(&ev, "progress.percent: must be 0 to 100");
	ev = evs[0];
	ev.id = "not-a-uuid";
	expect_build_error(&ev, "id: must be the command's UUID");
	ev = evs[0];
	ev.type = PROTO_TYPE_UNKNOWN;
	expect_build_error(&ev, "type: must be a command type (unknown only when failed)");
	ev = evs[0];
	ev.worker = NULL;
	expect_build_error(&ev, "worker: missing");
	ev = evs[0];
	ev.finished_at = -1;
	expect_build_error(&ev, "finished_at: must be a time from 1970 to 9999");
	ev = evs[0];
	ev.result.files = &bad;
	ev.result.nfiles = 1;
	expect_build_error(&ev, "result.files[].sha256: must be 64 lower-case hex digits");
	ev = evs[0];
	ev.result.physical_size = UINT64_MAX;
	expect_build_error(&ev, "result.physical_size: must be at most INT64_MAX");
	ev = evs[0];
	ev.result.install_path = "a/\xff";
	expect_build_error(&ev, "result.install_path: must be UTF-8 without control characters");
	ev = evs[2];
	ev.error.code = PROTO_ERR_NONE;
	expect_build_error(&ev, "error.code: must be a protocol error code");
	ev = evs[2];
	ev.error.message = "";
	expect_build_error(&ev, "error.message: missing");
	ev = evs[2];
	ev.status = PROTO_STATUS_COUNT;
	expect_build_error(&ev, "status: unknown status");
}

static void
test_event_message_sanitized(void **state)
{
	struct proto_event evs[NEVENTS], ev, *back;
	const char *names[NEVENTS];
	struct sw_err e;
	char *json, *longmsg;
	size_t len;
	int n;

	(void)state;
	event_cases(evs, names, &n);
	ev = evs[2];
	/* A Latin-1 file name from the share, and a character missing its last byte. */
	ev.error.message = "cannot open caf\xe9.ovf: \xc3\xa9t\xc3";
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), 0);
	assert_non_null(strstr(json, "\"message\":\"cannot open caf?.ovf: \xc3\xa9t?\""));
	free(json);
	longmsg = malloc(PROTO_MESSAGE_MAX + 100);
	assert_non_null(longmsg);
	memset(longmsg, 'm', PROTO_MESSAGE_MAX + 99);
	memcpy(longmsg + PROTO_MESSAGE_MAX - 1, "\xc3\xa9", 2);   /* straddles the limit */
	longmsg[PROTO_MESSAGE_MAX + 99] = '\0';
	ev.error.message = longmsg;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), 0);
	assert_int_equal(proto_event_parse(json, len, &back, &e), 0);
	assert_int_equal(strlen(back->error.message), PROTO_MESSAGE_MAX - 1);
	proto_event_free(back);
	free(json);
	free(longmsg);
}

/* The waiting status (additive in version 1): which limit, when it comes back; no error. */
static void
test_event_waiting(void **state)
{
	struct proto_event ev, *back = NULL;
	struct sw_err e;
	char *json = NULL;
	size_t len;
	char rk[64], lim[PROTO_LIMIT_MAX + 2];

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.id = ID1;
	ev.type = PROTO_CREATE_SNAPSHOT;
	ev.status = PROTO_STATUS_WAITING;
	ev.worker = "w:1";
	ev.started_at = 1700000000;
	ev.finished_at = 1700000001;
	ev.wait.limit = "host:host-21";
	ev.wait.delay_s = 5;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), 0);
	assert_non_null(strstr(json, "\"status\":\"waiting\""));
	assert_non_null(strstr(json, "\"wait\":{\"limit\":\"host:host-21\",\"delay_s\":5}"));
	assert_null(strstr(json, "\"error\""));
	assert_int_equal(proto_event_parse(json, len, &back, &e), 0);
	assert_int_equal(back->status, PROTO_STATUS_WAITING);
	assert_string_equal(back->wait.limit, "host:host-21");
	assert_int_equal(back->wait.delay_s, 5);
	proto_event_free(back);
	free(json);
	assert_int_equal(proto_routing_key(PROTO_CREATE_SNAPSHOT, PROTO_STATUS_WAITING, rk,
	    sizeof(rk)), 0);
	assert_string_equal(rk, "createsnapshot.waiting");
	assert_string_equal(proto_status_name(PROTO_STATUS_WAITING), "waiting");

	/* The limit is required, bounded and without control characters. */
	json = NULL;
	ev.wait.limit = NULL;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), SW_EFORMAT);
	assert_null(json);
	ev.wait.limit = "datastore:a\nb";
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), SW_EFORMAT);
	memset(lim, 'x', sizeof(lim) - 1);
	lim[sizeof(lim) - 1] = '\0';
	ev.wait.limit = lim;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), SW_EFORMAT);
	ev.wait.limit = "datastore:ds1";
	ev.wait.delay_s = PROTO_RETRY_DELAY_MAX_S + 1;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), SW_EFORMAT);
	assert_null(json);
}

/* The retrying status (additive in version 1): error plus the retry schedule. */
static void
test_event_retrying(void **state)
{
	struct proto_event ev, *back = NULL;
	struct sw_err e;
	char *json = NULL;
	size_t len;
	char rk[64];

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.id = ID1;
	ev.type = PROTO_REGISTER_TEMPLATE;
	ev.status = PROTO_STATUS_RETRYING;
	ev.worker = "w:1";
	ev.started_at = 1700000000;
	ev.finished_at = 1700000005;
	ev.error.code = PROTO_ERR_STORE_IO;
	ev.error.message = "store mount: No such file or directory";
	ev.error.retryable = true;
	ev.retry.attempt = 2;
	ev.retry.max_attempts = 5;
	ev.retry.delay_s = 60;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), 0);
	assert_non_null(strstr(json, "\"status\":\"retrying\""));
	assert_non_null(strstr(json, "\"retry\":{\"attempt\":2,\"max_attempts\":5,\"delay_s\":60}"));
	assert_non_null(strstr(json, "\"finished_at\":"));
	assert_int_equal(proto_event_parse(json, len, &back, &e), 0);
	assert_int_equal(back->status, PROTO_STATUS_RETRYING);
	assert_int_equal(back->error.code, PROTO_ERR_STORE_IO);
	assert_int_equal(back->retry.attempt, 2);
	assert_int_equal(back->retry.max_attempts, 5);
	assert_int_equal(back->retry.delay_s, 60);
	proto_event_free(back);
	free(json);
	assert_int_equal(proto_routing_key(PROTO_REGISTER_TEMPLATE, PROTO_STATUS_RETRYING, rk,
	    sizeof(rk)), 0);
	assert_string_equal(rk, "registertemplate.retrying");

	/* The last attempt is never "retrying": it fails. */
	ev.retry.attempt = 5;
	json = NULL;
	assert_int_equal(proto_event_build(&ev, &json, &len, &e), SW_EFORMAT);
	assert_null(json);
}

static void
expect_event_parse_error(const char *body, int code, const char *msg)
{
	struct proto_event *ev = (struct proto_event *)&ev;
	struct sw_err e;

	assert_int_equal(proto_event_parse(body, strlen(body), &ev, &e), code);
	assert_string_equal(e.msg, msg);
	assert_true(ev == (struct proto_event *)&ev);
}

/*
 * Invalid events, each paired in a .err file with the parser's exact message
 * ("message: FIELD: WHY"); tests/integration/test_proto_schema.sh checks that
 * docs/schema/event.schema.json refuses each at the same field.
 */
static void
test_invalid_event_fixtures(void **state)
{
	static char names[128][128];
	struct proto_event *ev;
	struct sw_err e;
	char path[512], *body, *want;
	size_t len;
	int n, i, r;

	(void)state;
	n = list_dir(FIX "/events/invalid", ".json", names, 128);
	assert_true(n >= 10);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), FIX "/events/invalid/%s.json", names[i]);
		body = read_file(path, &len);
		ev = (struct proto_event *)&ev;
		sw_err_clear(&e);
		r = proto_event_parse(body, len, &ev, &e);
		if (r == 0)
			fail_msg("events/invalid/%s: parsed", names[i]);
		assert_true(ev == (struct proto_event *)&ev);
		snprintf(path, sizeof(path), FIX "/events/invalid/%s.err", names[i]);
		want = read_golden(path);
		if (strncmp(want, "message: ", 9) != 0 || strcmp(want + 9, e.msg) != 0)
			fail_msg("events/invalid/%s:\n got: message: %s\nwant: %s", names[i], e.msg, want);
		free(want);
		free(body);
	}
}

static void
test_event_parse_errors(void **state)
{
	(void)state;
	expect_event_parse_error("{\"version\":2}", SW_EUNSUPPORTED, "version: unsupported version 2");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"status\":\"done\"}", SW_EFORMAT,
	    "status: must be progress, succeeded, failed, retrying or waiting");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"status\":\"succeeded\"}",
	    SW_EFORMAT, "type: missing");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"status\":\"failed\","
	    "\"worker\":\"w\",\"started_at\":\"2026-02-29T00:00:00Z\"}", SW_EFORMAT,
	    "started_at: must be a UTC time 'YYYY-MM-DDTHH:MM:SSZ'");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"status\":\"failed\","
	    "\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"finished_at\":\"2024-03-01T00:00:00+01:00\"}", SW_EFORMAT,
	    "finished_at: must be a UTC time 'YYYY-MM-DDTHH:MM:SSZ'");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateVolume\","
	    "\"status\":\"progress\",\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"progress\":{\"percent\":101,\"bytes\":0}}", SW_EFORMAT,
	    "progress.percent: must be an integer from 0 to 100");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateVolume\","
	    "\"status\":\"succeeded\",\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"finished_at\":\"2024-02-29T23:59:59Z\",\"result\":{\"files\":{}}}", SW_EFORMAT,
	    "result.files: must be an array");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateVolume\","
	    "\"status\":\"failed\",\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"finished_at\":\"2024-02-29T23:59:59Z\",\"error\":{\"code\":\"OOPS\"}}", SW_EFORMAT,
	    "error.code: unknown error code");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateVolume\","
	    "\"status\":\"failed\",\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"finished_at\":\"2024-02-29T23:59:59Z\",\"error\":{\"code\":\"TIMEOUT\","
	    "\"message\":\"m\",\"retryable\":1}}", SW_EFORMAT,
	    "error.retryable: must be true or false");
	/* A retrying event needs its retry object, attempt below max_attempts. */
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateVolume\","
	    "\"status\":\"retrying\",\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"finished_at\":\"2024-02-29T23:59:59Z\",\"error\":{\"code\":\"STORE_IO\","
	    "\"message\":\"m\",\"retryable\":true}}", SW_EFORMAT, "retry: missing");
	expect_event_parse_error("{\"version\":1,\"id\":\"" ID1 "\",\"type\":\"CreateVolume\","
	    "\"status\":\"retrying\",\"worker\":\"w\",\"started_at\":\"2024-02-29T23:59:59Z\","
	    "\"finished_at\":\"2024-02-29T23:59:59Z\",\"error\":{\"code\":\"STORE_IO\","
	    "\"message\":\"m\",\"retryable\":true},\"retry\":{\"attempt\":5,"
	    "\"max_attempts\":5,\"delay_s\":10}}", SW_EFORMAT,
	    "retry.attempt: must be an integer from 1 to max_attempts - 1");
	expect_event_parse_error("[1] x", SW_EFORMAT,
	    "body: not valid JSON: unexpected character at offset 4");
}

/* ------------------------------------------------------------- cancel */

static void
expect_cancel_error(const char *body, int code, enum proto_errcode pc, const char *msg)
{
	struct proto_parse_error pe;
	char id[PROTO_UUID_LEN + 1];
	int r = proto_cancel_parse(body, strlen(body), id, &pe);

	if (r != code || pe.code != pc || strcmp(pe.message, msg) != 0)
		fail_msg("cancel %s: got %d %d '%s', want %d %d '%s'", body, r, (int)pe.code,
		    pe.message, code, (int)pc, msg);
	assert_string_equal(id, "");
}

static void
test_cancel_parse(void **state)
{
	struct proto_parse_error pe;
	char id[PROTO_UUID_LEN + 1], big[PROTO_CANCEL_BODY_MAX + 64];
	const char *ok = "{\"version\":1,\"cancel\":\"4B0A5C1E-8D9F-4C55-9A39-1F7B0D1C2E3F\","
	    "\"reason\":\"operator\"}";
	char *b = NULL;
	size_t n = 0;
	struct sw_err e;

	(void)state;
	/* Upper case is accepted and lowered (the record is named in lower case); others ignored. */
	assert_int_equal(proto_cancel_parse(ok, strlen(ok), id, &pe), 0);
	assert_string_equal(id, ID1);
	expect_cancel_error("{\"version\":1}", SW_EFORMAT, PROTO_ERR_INVALID_COMMAND,
	    "cancel: missing");
	expect_cancel_error("{\"version\":2,\"cancel\":\"" ID1 "\"}", SW_EUNSUPPORTED,
	    PROTO_ERR_UNSUPPORTED_VERSION, "version: unsupported version 2");
	expect_cancel_error("{\"cancel\":\"" ID1 "\"}", SW_EFORMAT, PROTO_ERR_INVALID_COMMAND,
	    "version: missing");
	expect_cancel_error("{\"version\":1,\"cancel\":\"nope\"}", SW_EFORMAT,
	    PROTO_ERR_INVALID_COMMAND, "cancel: must be a UUID");
	expect_cancel_error("{\"version\":1,\"cancel\":\"" ID1 "x\"}", SW_EFORMAT,
	    PROTO_ERR_INVALID_COMMAND, "cancel: longer than 36 bytes");
	expect_cancel_error("{\"version\":1,\"cancel\":7}", SW_EFORMAT,
	    PROTO_ERR_INVALID_COMMAND, "cancel: must be a string");
	expect_cancel_error("[1]", SW_EFORMAT, PROTO_ERR_INVALID_COMMAND,
	    "body: must be a JSON object");
	/* Strict JSON as for commands: a duplicate member is refused. */
	assert_int_equal(proto_cancel_parse("{\"version\":1,\"cancel\":\"" ID1 "\",\"cancel\":\""
	    ID1 "\"}", 100, id, &pe) < 0, 1);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"version\":1,\"cancel\":\"" ID1 "\"}", 61);
	big[sizeof(big) - 1] = '\0';
	expect_cancel_error(big, SW_ETOOBIG, PROTO_ERR_INVALID_COMMAND,
	    "body: over the 4096-byte limit of a cancel request");
	/* build and parse agree */
	assert_int_equal(proto_cancel_build("4B0A5C1E-8D9F-4C55-9A39-1F7B0D1C2E3F", &b, &n, &e), 0);
	assert_string_equal(b, "{\"version\":1,\"cancel\":\"" ID1 "\"}");
	assert_int_equal(proto_cancel_parse(b, n, id, NULL), 0);
	assert_string_equal(id, ID1);
	free(b);
	assert_true(proto_cancel_build("nope", &b, &n, &e) < 0);
}

static void
test_cancel_answer(void **state)
{
	char *b = NULL;
	size_t n = 0;
	struct sw_err e;

	(void)state;
	assert_int_equal(proto_cancel_answer_build(ID1, PROTO_CANCEL_CANCELLING, NULL, "w1:42", &b,
	    &n, &e), 0);
	assert_string_equal(b, "{\"version\":1,\"cancel\":\"" ID1 "\",\"status\":\"cancelling\","
	    "\"worker\":\"w1:42\"}");
	assert_int_equal(n, strlen(b));
	free(b);
	assert_int_equal(proto_cancel_answer_build(ID1, PROTO_CANCEL_FINISHED, "succeeded", NULL,
	    &b, &n, &e), 0);
	assert_string_equal(b, "{\"version\":1,\"cancel\":\"" ID1 "\",\"status\":\"finished\","
	    "\"outcome\":\"succeeded\"}");
	free(b);
	/* finished needs its outcome */
	assert_true(proto_cancel_answer_build(ID1, PROTO_CANCEL_FINISHED, NULL, NULL, &b, &n,
	    &e) < 0);
	assert_true(proto_cancel_answer_build("x", PROTO_CANCEL_CANCELLING, NULL, NULL, &b, &n,
	    &e) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_commands),
		cmocka_unit_test(test_invalid_commands),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_error_id_and_type),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_errcodes),
		cmocka_unit_test(test_golden_events),
		cmocka_unit_test(test_event_parse_fields),
		cmocka_unit_test(test_event_retrying),
		cmocka_unit_test(test_event_waiting),
		cmocka_unit_test(test_event_build_errors),
		cmocka_unit_test(test_event_message_sanitized),
		cmocka_unit_test(test_event_parse_errors),
		cmocka_unit_test(test_invalid_event_fixtures),
		cmocka_unit_test(test_cancel_parse),
		cmocka_unit_test(test_cancel_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
