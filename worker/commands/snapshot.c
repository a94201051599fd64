/*
 * DeleteSnapshot, which works on the store alone; CreateSnapshot needs
 * vCenter and lives in snapshot_vc.c.
 */
#include "worker/commands/cmd_int.h"

/*
 * CloudStack's DeleteSnapshot: the files of the snapshot's directory whose
 * name holds its name (ovastore's ova_delete_snapshot), whatever the meta
 * says.  A missing object is success with no files: a redelivered delete
 * succeeds again with files = [].
 */
int
wrk__cmd_delete_snapshot(struct wrk__cmd *c, struct sw_err *e)
{
	const char *obj = c->cmd->args.delete_snapshot.path;
	struct ova_result *removed = NULL;
	struct ova_store *s = NULL;
	int r;

	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	r = ova_delete_snapshot(s, obj, &removed, e);
	if (r < 0) {
		r = wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	r = wrk__result_set(c, obj, removed->format, 0, 0, 0);
	if (r == 0)
		r = wrk__result_add_files(c, removed->files, removed->nfiles);
out:
	ova_result_free(removed);
	ova_store_close(s);
	return r;
}
