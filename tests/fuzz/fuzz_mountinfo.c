/*
 * libFuzzer target for the mountinfo reader that decides a store's lock
 * scope.  Beyond "no crash": a decision is one of the two scopes and it
 * comes with a reason (cut to the buffer's size).
 */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ovastore/mountinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "/", "/mnt/sec1", "/mnt/sec1/x", "/srv/a b" };
	enum ova_lock_scope s;
	char why[128];
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (ova_lock_scope_parse((const char *)data, size, paths[i], &s, why,
		    sizeof(why), NULL) != 0)
			continue;
		if ((s != OVA_LOCKS_SHARED && s != OVA_LOCKS_HOST) || why[0] == '\0' ||
		    strlen(why) >= sizeof(why))
			abort();
	}
	return 0;
}
