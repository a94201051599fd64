/*
 * DeleteSnapshot, which works on the store alone; CreateSnapshot needs
 * vCenter and lives in snapshot_vc.c.
 */
#include "worker/commands/cmd_int.h"

/*
 * Either format.  A missing object is success with no files: a redelivered
 * delete succeeds again with files = [].
 */
int
wrk__cmd_delete_snapshot(struct wrk__cmd *c, struct sw_err *e)
{
	const char *obj = c->cmd->args.delete_snapshot.path;
	struct ova_result *removed = NULL;
	struct ova_store *s = NULL;
	enum ova_format fmt = OVA_FMT_ABSENT;
	int r;

	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	r = wrk__object_delete(c, s, obj, &removed, &fmt, e);
	if (r < 0)
		goto out;
	r = wrk__result_set(c, obj, fmt, 0, 0, 0);
	if (r == 0 && removed != NULL)
		r = wrk__result_add_files(c, removed->files, removed->nfiles);
out:
	ova_result_free(removed);
	ova_store_close(s);
	return r;
}
