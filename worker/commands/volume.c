/*
 * Volume commands.  CreateVolume (import into vCenter) and ExtractVolume
 * (export from vCenter) need the vmware/ layer and come with a later issue;
 * until then they fail cleanly and are never retried.
 */
#include "worker/commands/cmd_int.h"

int
wrk__cmd_create_volume(struct wrk__cmd *c, struct sw_err *e)
{
	return wrk__not_implemented(c, e);
}

int
wrk__cmd_extract_volume(struct wrk__cmd *c, struct sw_err *e)
{
	return wrk__not_implemented(c, e);
}
