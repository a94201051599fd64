/*
 * libFuzzer target for proto/: arbitrary bytes as a command body, as an
 * event body and as a cancel request (whose id must come out a lower-case
 * UUID that builds the same request again).  A parsed event is built again and must parse back (building
 * what the parser accepted must never fail), so the two directions are
 * checked against each other, not only for crashes.
 */
/* FUZZ_MODULES: proto common */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_parse_error err;
	struct proto_command *cmd = NULL;
	struct proto_event *ev = NULL, *ev2 = NULL;
	struct sw_err e;
	char *json = NULL, *json2 = NULL;
	size_t len = 0, len2 = 0;

	if (proto_command_parse(data, size, &cmd, &err) == 0) {
		/* Invariants the worker relies on. */
		if (proto_type_name(cmd->type) == NULL || cmd->timeout_s == 0 ||
		    cmd->store.url == NULL || (proto_type_needs_vcenter(cmd->type) && !cmd->has_vcenter))
			abort();
		proto_command_free(cmd);
	} else if (err.message[0] == '\0' || err.field[0] == '\0' ||
	    strncmp(err.message, err.field, strlen(err.field)) != 0) {
		abort();
	}
	{
		char id[PROTO_UUID_LEN + 1];

		if (proto_cancel_parse(data, size, id, &err) == 0) {
			if (strlen(id) != PROTO_UUID_LEN || strpbrk(id, "ABCDEF") != NULL ||
			    proto_cancel_build(id, &json, &len, &e) != 0 ||
			    proto_cancel_parse(json, len, id, &err) != 0)
				abort();
			free(json);
			json = NULL;
		} else if (err.message[0] == '\0' || id[0] != '\0') {
			abort();
		}
	}
	if (proto_event_parse(data, size, &ev, &e) == 0) {
		if (proto_event_build(ev, &json, &len, &e) != 0)
			abort();
		if (proto_event_parse(json, len, &ev2, &e) != 0)
			abort();
		if (proto_event_build(ev2, &json2, &len2, &e) != 0 || len2 != len ||
		    memcmp(json, json2, len) != 0)
			abort();
		proto_event_free(ev2);
		free(json2);
		free(json);
		proto_event_free(ev);
	}
	return 0;
}
