/*
 * libFuzzer target for the .ova.meta parser.  Beyond "no crash": whatever
 * parses must survive a format/parse round trip unchanged.
 */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ovastore/ovastore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ova_meta *m = NULL, *m2 = NULL;
	struct sw_buf b = SW_BUF_INIT(8 * OVA_META_MAX);
	size_t i;

	if (ova_meta_parse(data, size, &m, NULL) != 0)
		return 0;
	if (ova_meta_format(m, &b, NULL) == 0 && b.len <= OVA_META_MAX) {
		if (ova_meta_parse(b.ptr, b.len, &m2, NULL) != 0)
			abort();
		if (m2->ndisks != m->ndisks || strcmp(m2->ovf, m->ovf) != 0)
			abort();
		for (i = 0; i < m->ndisks; i++)
			if (strcmp(m2->disks[i].name, m->disks[i].name) != 0 ||
			    m2->disks[i].size != m->disks[i].size ||
			    strcmp(m2->disks[i].sha256, m->disks[i].sha256) != 0)
				abort();
		ova_meta_free(m2);
	}
	sw_buf_free(&b);
	ova_meta_free(m);
	return 0;
}
