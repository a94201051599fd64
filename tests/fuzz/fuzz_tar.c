/*
 * libFuzzer target for the tar reader (libarchive, tar only, plus our
 * refusals and data-offset bookkeeping).  Every member it accepts must lie
 * inside the input and sit right after a valid header block.
 */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>

#include "ovastore/ovastore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ova_tar_index *t = NULL;
	size_t i;

	if (ova_tar_index_mem(data, size, &t, NULL) != 0)
		return 0;
	for (i = 0; i < t->n; i++) {
		const struct ova_tar_member *m = &t->members[i];

		if (m->offset > size || m->size > size - m->offset || m->offset % 512 != 0)
			abort();
		if (ova_tar_find(t, m->name) != m)
			abort();
	}
	ova_tar_index_free(t);
	return 0;
}
