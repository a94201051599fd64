/* libFuzzer target for the OVF reader (libxml2 with our bounds and checks). */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>

#include "ovastore/ovastore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ova_ovf *o = NULL;
	size_t i;

	if (ova_ovf_parse(data, size, &o, NULL) != 0)
		return 0;
	/* Invariants the rest of the library relies on. */
	for (i = 0; i < o->ndisks; i++)
		if (o->disks[i].file_index >= (long)o->nfiles ||
		    (o->disks[i].file_ref != NULL && o->disks[i].file_index < 0))
			abort();
	for (i = 0; i < o->nfiles; i++)
		if (ova_ovf_find_file(o, o->files[i].href) != (long)i)
			abort();
	ova_ovf_free(o);
	return 0;
}
