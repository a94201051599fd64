/*
 * libFuzzer target for the deep check of a legacy archive (what
 * ExtractTemplate, CopyTemplate and CreateTemplate run on a legacy NAME.ova
 * before exposing or copying it): the tar reader, the OVF reader, the
 * references between them and the manifest parser with its digests.  The
 * input is the archive, read through a memory file as the worker reads the
 * share.
 */
/* FUZZ_MODULES: ovastore common */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/io.h"
#include "ovastore/ovastore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("legacy.ova", MFD_CLOEXEC);
	struct sw_err e;

	if (fd < 0)
		abort();
	if (size > 0 && sw_write_all(fd, data, size) < 0)
		abort();
	(void)ova_legacy_check_fd(fd, "fuzz/legacy", &e);
	close(fd);
	return 0;
}
