/*
 * libFuzzer target for the SOAP response parser: well-formedness, limits,
 * fault extraction and the tree helpers the rest of vmware/ reads with.
 */
/* FUZZ_MODULES: vmware common */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmware/vmw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmw__resp r = { NULL, NULL };
	struct vmw_fault f;
	struct sw_err e;
	struct vmw_disk *disks = NULL;
	size_t n = 0;
	xmlNode *rv, *k;
	struct vmw_moref m;
	char buf[256];

	if (vmw__parse((const char *)data, size, &r, &f, &e) < 0)
		return 0;
	/* Walk what the client walks: returnval, objects, propSets, devices. */
	rv = vmw__x_child(r.body, "returnval");
	(void)vmw__x_moref(rv, &m);
	(void)vmw__x_text(vmw__x_child(rv, "token"), buf, sizeof(buf));
	for (k = vmw__x_child(rv, "objects"); k != NULL; k = vmw__x_next(k, "objects")) {
		xmlNode *ps;

		(void)vmw__x_moref(vmw__x_child(k, "obj"), &m);
		for (ps = vmw__x_child(k, "propSet"); ps != NULL; ps = vmw__x_next(ps, "propSet")) {
			xmlNode *val = vmw__x_child(ps, "val");

			(void)vmw__x_type(val);
			if (vmw__parse_devices(val, &disks, &n, &e) == 0) {
				(void)vmw__apply_layout(val, val, disks, n);
				vmw__disks_free(disks, n);
			}
		}
	}
	vmw__resp_free(&r);
	return 0;
}
