/*
 * libFuzzer target for the CreateVolume marker parser (ovastore/state.h).
 * Beyond "no crash": a parsed marker is a NUL-terminated string that fits
 * the caller's buffer and holds no control character.
 */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ovastore/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[64];
	size_t i, n;

	memset(out, 'x', sizeof(out));
	if (ova_marker_parse(data, size, out, sizeof(out), NULL) != 0)
		return 0;
	n = strnlen(out, sizeof(out));
	if (n == sizeof(out))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
	return 0;
}
