/*
 * snapworker wire protocol, version 1 (see PROTOCOL.md): command messages
 * parsed into validated, typed structs, and events built from (and parsed
 * back into) structs.  Nothing here knows about AMQP or vCenter, nothing logs
 * above debug and there is no global state: every function is safe to call
 * from several threads on different objects.
 *
 * Choices this library makes where PROTOCOL.md leaves room (the contract for
 * publishers and for the worker):
 *
 *  - Bodies: at most PROTO_BODY_MAX bytes of strict RFC 8259 JSON in UTF-8
 *    (no raw NUL bytes, overlong forms, surrogates; no single quotes, NaN,
 *    Infinity, comments or raw control characters in strings, all of which
 *    json-c alone would let through), nested at most PROTO_DEPTH_MAX levels,
 *    one JSON object and nothing but white space after it.
 *  - Unknown keys are ignored at every level (PROTOCOL.md lets publishers add
 *    optional fields); every known key is strictly typed.  A JSON null in an
 *    optional field counts as absent (some serializers write nulls for unset
 *    fields); in a required field it is a type error.
 *  - Duplicate keys (also spelt differently, "type" and "\u0074ype") are
 *    refused anywhere in the body: json-c would silently keep the last one,
 *    and a publisher-side check that read the first would be fooled.
 *  - `id` must be a UUID in the 8-4-4-4-12 hex form (either case; kept as
 *    sent).  CloudStack ids are UUIDs, and the id doubles as the default
 *    `backup_uuid`, i.e. a file name on the share, so a UUID keeps it safe.
 *  - `version` must be the JSON integer 1.  Another integer is
 *    UNSUPPORTED_VERSION; a missing or non-integer version is INVALID_COMMAND.
 *  - Numbers (`account_id`, `volume_id`, `template_id`, `timeout_s`) must be
 *    JSON integers: "13" (a string) and 13.0 are refused.  CloudStack sends
 *    numbers.  Ids are 1..INT64_MAX (Java's long).
 *  - `timeout_s` is 1..PROTO_TIMEOUT_MAX (7 days); its per-type default is
 *    proto_type_default_timeout().
 *  - URLs: `vcenter.url` and RegisterTemplate's `url` must be http:// or
 *    https:// with a host (http is only useful for test rigs and local
 *    mirrors; the worker's configuration decides what it accepts).  `store.url`
 *    and `dest_store.url` may have any scheme (nfs://, ...).  No URL may carry
 *    a user name or password (commands never carry secrets, and URLs end up
 *    in logs), white space or control characters; at most PROTO_URL_MAX bytes.
 *  - `vcenter.credentials`: [A-Za-z0-9._-]{1,64}.  `vcenter.thumbprint`: 32
 *    hex byte pairs separated by colons (SHA-256), normalised to upper case.
 *  - `vcenter` is required for CreateSnapshot, CreateTemplate from vm+disk,
 *    CreateVolume and ExtractVolume, optional (but validated) otherwise.
 *  - Install paths (`path`, `snapshot_path`, `source_path`): one trailing
 *    ".ova" is stripped, then the rest must pass sw_path_check_rel() (no
 *    absolute path, no "." / ".." / empty components, no control characters or
 *    backslashes); at most PROTO_PATH_MAX bytes as sent.
 *  - `disk`: a datastore path "[datastore] dir/file.vmdk": a non-empty
 *    datastore name without brackets or control characters, one space, then
 *    a relative path as above ending in ".vmdk"; at most PROTO_PATH_MAX bytes.
 *  - `vm`: an object with exactly one of `uuid` (a UUID) or `name` (1..255
 *    bytes, no control characters).
 *  - `backup_uuid`: a UUID in lower case (CloudStack lower-cases snapshot
 *    file names before it matches them against the backup UUID, so an
 *    upper-case one would name files it cannot find); when absent it is the
 *    command id folded to lower case, so a redelivered command writes to the
 *    same place (idempotency).
 *  - `unique_name` (CreateTemplate, RegisterTemplate, CopyTemplate):
 *    sw_unique_name_check() (ASCII letters, digits, '.', '_', '-', starting
 *    with a letter or digit, at most 200 bytes, no .ova/.meta/.part suffix;
 *    case kept).  CopyTemplate's must equal the name its `path` ends in.
 *  - CreateVolume's `name`: a file name (sw_name_check(), at most 255 bytes).
 *    `datastore`: 1..255 bytes, no '[', ']', '/' or control characters.
 *  - `checksum`: "sha256:<64 hex>" or "md5:<32 hex>"; a bare 64- or 32-digit
 *    hex string is also accepted (older CloudStack versions send a bare MD5)
 *    and typed by its length.  CloudStack's "{SHA-256}<hex>" form is not.
 *    The hex digits are normalised to lower case.
 *
 * Error messages name the field path first: "args.account_id: must be a
 * positive integer".  The only values they quote are the command type and
 * object keys (non-printable bytes shown as '?'), and install paths,
 * datastore paths and file names, which are quoted only after they were
 * found free of control characters; ids, URLs and VM names are never echoed.
 */
#ifndef PROTO_PROTO_H
#define PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PROTO_VERSION      1
#define PROTO_BODY_MAX     (1024 * 1024)   /* command and event bodies */
#define PROTO_DEPTH_MAX    16              /* JSON nesting */
#define PROTO_ID_MAX       64              /* ids (a UUID is 36) */
#define PROTO_UUID_LEN     36
#define PROTO_PATH_MAX     1024            /* install and datastore paths */
#define PROTO_URL_MAX      2048
#define PROTO_NAME_MAX     255             /* names and file names */
#define PROTO_TIMEOUT_MAX  (7 * 24 * 3600) /* timeout_s */
#define PROTO_FILES_MAX    4096            /* result.files[] of an event */
#define PROTO_MESSAGE_MAX  2048            /* error.message of an event (truncated on build) */
#define PROTO_ATTEMPTS_MAX 100             /* retry.max_attempts of a retrying event */
#define PROTO_RETRY_DELAY_MAX_S (24 * 3600) /* retry.delay_s */
#define PROTO_LIMIT_MAX 300                /* wait.limit of a waiting event, bytes */

/* ---------------------------------------------------------------- types */

enum proto_type {
	PROTO_TYPE_UNKNOWN = 0,
	PROTO_CREATE_SNAPSHOT,
	PROTO_DELETE_SNAPSHOT,
	PROTO_CREATE_TEMPLATE,
	PROTO_REGISTER_TEMPLATE,
	PROTO_COPY_TEMPLATE,
	PROTO_DELETE_TEMPLATE,
	PROTO_EXTRACT_TEMPLATE,
	PROTO_CREATE_VOLUME,
	PROTO_EXTRACT_VOLUME,
	PROTO_TYPE_COUNT
};

/* "CreateSnapshot" ...; NULL for PROTO_TYPE_UNKNOWN or an out-of-range value. */
const char *proto_type_name(enum proto_type t);

/* Exact, case-sensitive match; PROTO_TYPE_UNKNOWN when s is no type name. */
enum proto_type proto_type_from_name(const char *s);

/*
 * The deadline of a command of type t without `timeout_s`, in seconds: 600
 * for DeleteSnapshot and DeleteTemplate, 21600 (6 h) for everything else.
 */
uint32_t proto_type_default_timeout(enum proto_type t);

/* Whether a command of type t needs `vcenter` (CreateTemplate: from vm+disk only). */
bool proto_type_needs_vcenter(enum proto_type t);

/* -------------------------------------------------------------- commands */

struct proto_vm {
	char *uuid;   /* exactly one of uuid and name is set */
	char *name;
};

struct proto_vcenter {
	char *url;
	char *credentials;
	char *thumbprint;   /* "AB:CD:..." upper case, or NULL */
};

struct proto_store {
	char *url;
};

enum proto_checksum_alg {
	PROTO_CHECKSUM_NONE = 0,
	PROTO_CHECKSUM_MD5,
	PROTO_CHECKSUM_SHA256,
};

struct proto_checksum {
	enum proto_checksum_alg alg;
	char hex[65];       /* lower case; "" when alg is NONE */
};

/* Install paths below are stored without the ".ova" a publisher may append. */

struct proto_args_create_snapshot {
	struct proto_vm vm;
	char *disk;          /* "[ds1] i-2-3-VM/ROOT-3.vmdk" */
	int64_t account_id;
	int64_t volume_id;
	char *backup_uuid;   /* the command id when the publisher sent none */
};

struct proto_args_path {   /* DeleteSnapshot, DeleteTemplate, ExtractTemplate */
	char *path;
};

enum proto_template_source {
	PROTO_TEMPLATE_FROM_SNAPSHOT = 1,   /* snapshot_path */
	PROTO_TEMPLATE_FROM_VM,             /* vm + disk (needs vcenter) */
};

struct proto_args_create_template {
	int64_t account_id;
	int64_t template_id;
	char *unique_name;                  /* or NULL */
	enum proto_template_source source;
	char *snapshot_path;                /* FROM_SNAPSHOT */
	struct proto_vm vm;                 /* FROM_VM */
	char *disk;                         /* FROM_VM */
};

struct proto_args_register_template {
	char *url;
	struct proto_checksum checksum;     /* alg NONE when absent */
	int64_t account_id;
	int64_t template_id;
	char *unique_name;                  /* or NULL */
};

struct proto_args_copy_template {
	char *path;
	struct proto_store dest_store;
	char *unique_name;                  /* or NULL; the name path ends in when set */
};

struct proto_args_create_volume {
	char *source_path;
	char *datastore;
	char *name;
};

struct proto_args_extract_volume {
	struct proto_vm vm;
	char *disk;
	int64_t account_id;
	int64_t volume_id;
};

struct proto_command {
	int version;                 /* PROTO_VERSION */
	char id[PROTO_UUID_LEN + 1];
	enum proto_type type;
	uint32_t timeout_s;          /* as sent, or the type's default */
	bool has_vcenter;
	struct proto_vcenter vcenter;   /* all NULL unless has_vcenter */
	struct proto_store store;
	union {                      /* the member named after type */
		struct proto_args_create_snapshot create_snapshot;
		struct proto_args_path delete_snapshot;
		struct proto_args_create_template create_template;
		struct proto_args_register_template register_template;
		struct proto_args_copy_template copy_template;
		struct proto_args_path delete_template;
		struct proto_args_path extract_template;
		struct proto_args_create_volume create_volume;
		struct proto_args_extract_volume extract_volume;
	} args;
};

/* ----------------------------------------------------------- error codes */

/* The error codes of PROTOCOL.md ("Event message"). */
enum proto_errcode {
	PROTO_ERR_NONE = 0,
	PROTO_ERR_INVALID_COMMAND,
	PROTO_ERR_UNSUPPORTED_VERSION,
	PROTO_ERR_UNKNOWN_STORE,
	PROTO_ERR_NOT_FOUND,
	PROTO_ERR_STORE_IO,
	PROTO_ERR_NO_SPACE,
	PROTO_ERR_VCENTER_UNREACHABLE,
	PROTO_ERR_VCENTER_AUTH,
	PROTO_ERR_VCENTER_FAULT,
	PROTO_ERR_CHECKSUM_MISMATCH,
	PROTO_ERR_TIMEOUT,
	PROTO_ERR_CANCELLED,
	PROTO_ERR_INTERNAL,
	/* Additions to version 1 (docs/protocol.md): */
	PROTO_ERR_DOWNLOAD_UNREACHABLE,
	PROTO_ERR_DOWNLOAD_AUTH,
	PROTO_ERR_COUNT
};

/* "INVALID_COMMAND" ...; NULL for PROTO_ERR_NONE or an out-of-range value. */
const char *proto_errcode_name(enum proto_errcode c);

/* Exact match; PROTO_ERR_NONE when s is no code name. */
enum proto_errcode proto_errcode_from_name(const char *s);

/* Where the worker met a failure; the same errno means different things. */
enum proto_errctx {
	PROTO_CTX_STORE = 0,   /* the secondary store (local file system) */
	PROTO_CTX_VCENTER,     /* vCenter SOAP, NFC transfers */
	PROTO_CTX_DOWNLOAD,    /* RegisterTemplate's source URL */
};

/*
 * Maps a common/err.h code (SW_E* or -errno) met in context ctx to a protocol
 * error code, and whether running the command again may succeed (retryable):
 *
 *   code >= 0                         NONE
 *   SW_ENOTFOUND, -ENOENT             NOT_FOUND            no
 *   -ENOSPC, -EDQUOT, -EFBIG          NO_SPACE             no
 *   SW_ECHECKSUM                      CHECKSUM_MISMATCH    no
 *   -ETIMEDOUT                        TIMEOUT              yes
 *   -ECANCELED                        CANCELLED            yes (e.g. worker shutdown; the worker
 *                                                            makes a cancel request's final)
 *   SW_EPATH                          INVALID_COMMAND      no
 *   -ENOMEM                           INTERNAL             yes
 *   SW_EINTERNAL, anything else       INTERNAL             no
 * VCENTER:
 *   SW_ENET, -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -ENETUNREACH, -EPIPE
 *                                     VCENTER_UNREACHABLE  yes
 *   SW_EAUTH                          VCENTER_AUTH         no
 *   SW_EREMOTE, SW_EFORMAT, SW_ETOOBIG, SW_EUNSUPPORTED
 *                                     VCENTER_FAULT        no
 *   SW_EBUSY                          VCENTER_FAULT        yes
 * STORE:
 *   SW_EFORMAT, SW_ETOOBIG, SW_EUNSUPPORTED
 *                                     INVALID_COMMAND      no  (the named object is not valid)
 *   -EIO, -ESTALE, -EAGAIN, -EINTR, -EBUSY, SW_ENET, SW_EBUSY
 *                                     STORE_IO             yes
 *   any other -errno, SW_EEXIST       STORE_IO             no
 * DOWNLOAD:
 *   SW_ENET (host not resolvable, connection refused or lost) and the
 *   connection errnos above           DOWNLOAD_UNREACHABLE yes
 *   SW_EAUTH (TLS verification, HTTP 401/403/407)
 *                                     DOWNLOAD_AUTH        no
 *   SW_EREMOTE, SW_EBUSY (HTTP 5xx, 408, 429)
 *                                     NOT_FOUND            yes
 *   SW_EFORMAT, SW_ETOOBIG, SW_EUNSUPPORTED
 *                                     INVALID_COMMAND      no  (not an .ova, or over max_size)
 *   any other -errno                  STORE_IO             no  (writing what was downloaded)
 * ret_retryable may be NULL.
 */
enum proto_errcode proto_errcode_from_sw(int code, enum proto_errctx ctx, bool *ret_retryable);

/* ------------------------------------------------------- command parsing */

struct proto_parse_error {
	enum proto_errcode code;   /* INVALID_COMMAND, UNSUPPORTED_VERSION or INTERNAL (out of memory) */
	bool has_id;               /* id holds the command's (valid) id: answer with a failed event */
	char id[PROTO_UUID_LEN + 1];
	enum proto_type type;      /* the command's type when it could be read, else UNKNOWN */
	char field[64];            /* "args.account_id", or "body" for the message as a whole */
	char message[SW_ERR_MSG_MAX];  /* "args.account_id: must be a positive integer" */
};

/*
 * Parses and validates a command body of len bytes (not NUL-terminated).
 * Returns 0 and *ret (free with proto_command_free()), or
 *   SW_EFORMAT       invalid command (err->code INVALID_COMMAND),
 *   SW_ETOOBIG       body over PROTO_BODY_MAX (INVALID_COMMAND),
 *   SW_EUNSUPPORTED  a JSON object whose version is an integer other than 1,
 *   -ENOMEM          (err->code INTERNAL: not the publisher's fault, retry),
 * with err (may be NULL) filled in and *ret untouched.  Even on failure
 * err->has_id/id and err->type tell what could be read, so the worker can
 * answer a poison message with a failed event.
 */
int proto_command_parse(const void *body, size_t len, struct proto_command **ret,
    struct proto_parse_error *err);

/* Frees a command from proto_command_parse(); NULL is fine. */
void proto_command_free(struct proto_command *cmd);

/* ---------------------------------------------------------------- cancel */

/*
 * A cancel request (docs/protocol.md, "Cancel"), published to the control
 * exchange: {"version": 1, "cancel": "<command id>"}, at most
 * PROTO_CANCEL_BODY_MAX bytes, the same strict JSON as a command; members
 * it does not know are ignored.  Returns 0 with id (lower case), or
 * SW_EFORMAT / SW_ETOOBIG (err->code INVALID_COMMAND), SW_EUNSUPPORTED
 * (UNSUPPORTED_VERSION), -ENOMEM; err may be NULL.
 */
#define PROTO_CANCEL_BODY_MAX 4096
int proto_cancel_parse(const void *body, size_t len, char id[PROTO_UUID_LEN + 1],
    struct proto_parse_error *err);
/* The request for id (a UUID, written in lower case); *ret is malloc'd. */
int proto_cancel_build(const char *id, char **ret, size_t *ret_len, struct sw_err *e);

/* What a worker answers to a cancel request's reply_to. */
enum proto_cancel_answer {
	PROTO_CANCEL_CANCELLING = 0,  /* running here: it stops, its failed event CANCELLED follows */
	PROTO_CANCEL_FINISHED,        /* it finished here already (outcome): unaffected */
	PROTO_CANCEL_ANSWER_COUNT
};
const char *proto_cancel_answer_name(enum proto_cancel_answer a);
/*
 * {"version":1,"cancel":ID,"status":"cancelling"|"finished"[,"outcome":...]
 * [,"worker":...]}; outcome ("succeeded" or "failed") is required for
 * FINISHED; worker may be NULL.  *ret is malloc'd.
 */
int proto_cancel_answer_build(const char *id, enum proto_cancel_answer a, const char *outcome,
    const char *worker, char **ret, size_t *ret_len, struct sw_err *e);
/* Lower-cases the hex digits of a UUID in place (cancel records are named by it). */
void proto_uuid_lower(char *id);

/* ---------------------------------------------------------------- events */

enum proto_status {
	PROTO_STATUS_PROGRESS = 0,
	PROTO_STATUS_SUCCEEDED,
	PROTO_STATUS_FAILED,
	PROTO_STATUS_RETRYING,   /* an attempt failed retryably; another is scheduled (additive in v1) */
	PROTO_STATUS_WAITING,    /* sent back to wait for a concurrency limit (additive in v1) */
	PROTO_STATUS_COUNT
};

/* "progress", "succeeded", "failed", "retrying", "waiting"; NULL when out of range. */
const char *proto_status_name(enum proto_status s);

/* Returns 0 and *ret, or -EINVAL when s is no status name. */
int proto_status_from_name(const char *s, enum proto_status *ret);

/*
 * The event routing key "<type in lower case>.<status>", e.g.
 * "createsnapshot.succeeded".  A failed event for a command whose type could
 * not be read uses "unknown.failed".  Returns 0 or -ENAMETOOLONG / -EINVAL.
 */
int proto_routing_key(enum proto_type t, enum proto_status s, char *buf, size_t bufsz);

enum proto_format {
	PROTO_FORMAT_NONE = 0,   /* not reported (e.g. a delete of a missing object) */
	PROTO_FORMAT_OVF,        /* new: .ovf + .vmdk + .ova.meta */
	PROTO_FORMAT_OVA,        /* legacy single archive */
};

struct proto_file {
	const char *path;     /* relative to the store root */
	uint64_t size;
	const char *sha256;   /* 64 lower-case hex digits, or NULL */
};

struct proto_result {
	const char *install_path;     /* or NULL */
	enum proto_format format;     /* NONE: "format" omitted */
	bool has_sizes;               /* physical_size and virtual_size present */
	uint64_t physical_size;
	uint64_t virtual_size;
	const struct proto_file *files;   /* always written, possibly [] */
	size_t nfiles;
	bool has_download;            /* ExtractTemplate, ExtractVolume */
	struct {
		const char *path;     /* relative to the extract area */
		uint64_t size;
	} download;
	const char *datastore_path;   /* CreateVolume: "[ds] dir/name.vmdk", or NULL */
};

struct proto_event_error {
	enum proto_errcode code;
	const char *message;          /* invalid UTF-8 is replaced, over-long is cut */
	bool retryable;
};

/*
 * One event.  Which parts are written depends on status: progress events
 * carry `progress`, succeeded events `result`, failed events `error`,
 * retrying events `error` and `retry`, waiting events `wait`; `finished_at` (of the attempt) is
 * written for every status but progress.  All strings are
 * borrowed: proto_event_build() copies what it needs.
 */
struct proto_event {
	const char *id;               /* the command id (required) */
	enum proto_type type;         /* UNKNOWN: "type" omitted (poison message) */
	enum proto_status status;
	const char *worker;           /* "ssvm-2:4711" (required) */
	int64_t started_at;           /* epoch seconds, UTC */
	int64_t finished_at;
	struct {
		unsigned percent;     /* 0..100 */
		uint64_t bytes;
	} progress;
	struct proto_result result;
	struct proto_event_error error;   /* failed and retrying */
	struct {                          /* retrying only */
		unsigned attempt;         /* the attempt that failed, 1-based */
		unsigned max_attempts;    /* attempts in all before the dead-letter queue */
		unsigned delay_s;         /* when the next attempt starts, from finished_at */
	} retry;
	struct {                          /* waiting only */
		const char *limit;        /* "KIND:NAME", e.g. "datastore:ds1" (1..PROTO_LIMIT_MAX bytes) */
		unsigned delay_s;         /* when the command is tried again, from finished_at */
	} wait;
};

/*
 * Builds the compact JSON of ev (keys in the order of PROTOCOL.md).
 * Returns 0 with *ret_json (malloc'd, NUL-terminated; free()) and *ret_len,
 * or SW_EFORMAT (ev is not a valid event: reason in e) / -ENOMEM; the ret_*
 * are untouched on failure.
 */
int proto_event_build(const struct proto_event *ev, char **ret_json, size_t *ret_len,
    struct sw_err *e);

/*
 * Parses an event body (snapctl, tests) with the same strictness as
 * commands.  Returns 0 and *ret, whose strings live as long as *ret (free
 * with proto_event_free()), or SW_EFORMAT / SW_ETOOBIG / SW_EUNSUPPORTED /
 * -ENOMEM with the reason in e.
 */
int proto_event_parse(const void *body, size_t len, struct proto_event **ret,
    struct sw_err *e);

/* Frees an event from proto_event_parse(); NULL is fine. */
void proto_event_free(struct proto_event *ev);

#endif
