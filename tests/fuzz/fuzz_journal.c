/*
 * libFuzzer target for the crash-journal parser (ovastore/state.h): the
 * journal lies on a share others can write.  Beyond "no crash": whatever
 * parses formats and parses back to the same record.
 */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ovastore/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ova_journal j, back;
	struct sw_buf b = SW_BUF_INIT(4 * OVA_JOURNAL_MAX);

	if (ova_journal_parse(data, size, &j, NULL) != 0)
		return 0;
	if (ova_journal_format(&j, &b, NULL) != 0)
		abort();
	if (ova_journal_parse(b.ptr, b.len, &back, NULL) != 0)
		abort();
	if (strcmp(j.command, back.command) != 0 || strcmp(j.credentials, back.credentials) != 0 ||
	    strcmp(j.url, back.url) != 0 || strcmp(j.vm, back.vm) != 0 ||
	    strcmp(j.snapshot, back.snapshot) != 0 || strcmp(j.object, back.object) != 0)
		abort();
	sw_buf_free(&b);
	return 0;
}
