/*
 * Cancel requests and their answers (docs/protocol.md, "Cancel"): bytes ->
 * the id of the command to cancel, and the answer a worker sends back.
 */
#include "proto/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "proto/proto_int.h"

void
proto_uuid_lower(char *id)
{
	for (; *id != '\0'; id++)
		if (*id >= 'A' && *id <= 'F')
			*id = (char)(*id - 'A' + 'a');
}

int
proto_cancel_parse(const void *body, size_t len, char id[PROTO_UUID_LEN + 1],
    struct proto_parse_error *err)
{
	struct proto_parse_error local;
	struct proto__err pe;
	json_object *root = NULL;
	const char *s = NULL;
	int64_t version = 0;
	int r;

	if (err == NULL)
		err = &local;
	memset(err, 0, sizeof(*err));
	memset(&pe, 0, sizeof(pe));
	id[0] = '\0';
	if (len > PROTO_CANCEL_BODY_MAX) {
		r = proto__fail(&pe, SW_ETOOBIG, "body", "over the %d-byte limit of a cancel request",
		    PROTO_CANCEL_BODY_MAX);
		goto out;
	}
	r = proto__json_parse(body, len, &root, NULL, &pe);
	if (r < 0)
		goto out;
	if (!json_object_is_type(root, json_type_object)) {
		r = proto__fail(&pe, SW_EFORMAT, "body", "must be a JSON object");
		goto out;
	}
	r = proto__get_int(&pe, root, "version", "version", INT64_MIN, INT64_MAX, "an integer",
	    true, &version, NULL);
	if (r < 0)
		goto out;
	if (version != PROTO_VERSION) {
		r = proto__fail(&pe, SW_EUNSUPPORTED, "version", "unsupported version %lld",
		    (long long)version);
		goto out;
	}
	r = proto__get_str(&pe, root, "cancel", "cancel", PROTO_UUID_LEN, true, true, &s);
	if (r < 0)
		goto out;
	if (!proto__is_uuid(s)) {
		r = proto__fail(&pe, SW_EFORMAT, "cancel", "must be a UUID");
		goto out;
	}
	memcpy(id, s, PROTO_UUID_LEN + 1);
	proto_uuid_lower(id);
out:
	json_object_put(root);
	if (r < 0) {
		id[0] = '\0';
		err->code = r == SW_EUNSUPPORTED ? PROTO_ERR_UNSUPPORTED_VERSION :
		    r == -ENOMEM ? PROTO_ERR_INTERNAL : PROTO_ERR_INVALID_COMMAND;
		memcpy(err->field, pe.field, sizeof(err->field));
		memcpy(err->message, pe.msg, sizeof(err->message));
	}
	return r < 0 ? r : 0;
}

int
proto_cancel_build(const char *id, char **ret, size_t *ret_len, struct sw_err *e)
{
	char buf[128];
	int n;

	if (id == NULL || !proto__is_uuid(id))
		return sw_errf(e, SW_EFORMAT, "cancel: not a UUID");
	n = snprintf(buf, sizeof(buf), "{\"version\":%d,\"cancel\":\"%s\"}", PROTO_VERSION, id);
	if ((*ret = strdup(buf)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	proto_uuid_lower(*ret + n - 2 - PROTO_UUID_LEN);
	*ret_len = (size_t)n;
	return 0;
}

static const char *const answer_names[PROTO_CANCEL_ANSWER_COUNT] = {
	[PROTO_CANCEL_CANCELLING] = "cancelling",
	[PROTO_CANCEL_FINISHED] = "finished",
};

const char *
proto_cancel_answer_name(enum proto_cancel_answer a)
{
	return (int)a >= 0 && a < PROTO_CANCEL_ANSWER_COUNT ? answer_names[a] : NULL;
}

int
proto_cancel_answer_build(const char *id, enum proto_cancel_answer a, const char *outcome,
    const char *worker, char **ret, size_t *ret_len, struct sw_err *e)
{
	json_object *o;
	const char *s;
	char *w = NULL;
	int r = 0;

	if (id == NULL || !proto__is_uuid(id) || proto_cancel_answer_name(a) == NULL ||
	    (a == PROTO_CANCEL_FINISHED && outcome == NULL))
		return sw_errf(e, SW_EINTERNAL, "cancel answer: bad arguments");
	if ((o = json_object_new_object()) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	if (worker != NULL && (w = proto__utf8_sanitize(worker, 256)) == NULL) {
		json_object_put(o);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	if (json_object_object_add(o, "version", json_object_new_int(PROTO_VERSION)) < 0 ||
	    json_object_object_add(o, "cancel", json_object_new_string(id)) < 0 ||
	    json_object_object_add(o, "status",
	    json_object_new_string(proto_cancel_answer_name(a))) < 0 ||
	    (a == PROTO_CANCEL_FINISHED &&
	    json_object_object_add(o, "outcome", json_object_new_string(outcome)) < 0) ||
	    (w != NULL && json_object_object_add(o, "worker", json_object_new_string(w)) < 0)) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL || (*ret = strdup(s)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	*ret_len = strlen(*ret);
out:
	free(w);
	json_object_put(o);
	return r;
}
