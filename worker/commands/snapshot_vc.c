/*
 * CreateSnapshot: the hot path of DESIGN.md.  The object is
 * snapshots/<account_id>/<volume_id>/<backup_uuid>/<backup_uuid> in the new
 * format; a redelivery whose object is committed is answered from the share
 * without talking to vCenter.
 */
#include "worker/commands/vc.h"

#include <inttypes.h>

#include "common/log.h"
#include "common/path.h"
#include "ovastore/layout.h"

/* The result of a committed object as it is on the share. */
static int
answer_from_store(struct wrk__cmd *c, struct ova_store *s, const char *obj, struct sw_err *e)
{
	struct ova_info *info = NULL;
	int r;

	r = ova_inspect(s, obj, &info, e);
	if (r < 0)
		return wrk__fail(c, r, PROTO_CTX_STORE);
	r = wrk__result_set(c, info->install_path, info->format, 1, info->physical_size,
	    info->virtual_size);
	if (r == 0)
		r = wrk__result_add_files(c, info->files, info->nfiles);
	/* The OVF's and the meta's digests too: the same answer as the first time. */
	if (r == 0)
		r = wrk__result_fill_digests(c, s, OVA_OVF_MAX, e);
	ova_info_free(info);
	return r;
}

int
wrk__cmd_create_snapshot(struct wrk__cmd *c, struct sw_err *e)
{
	const struct proto_args_create_snapshot *a = &c->cmd->args.create_snapshot;
	struct ova_store *s = NULL;
	struct ova_result *res = NULL;
	struct vmw_conn *conn = NULL;
	enum ova_format fmt = OVA_FMT_ABSENT;
	char obj[SW_PATH_MAX];
	int r;

	/* The ids and the backup UUID are validated by the parser: a failure here is ours. */
	if ((r = ova_layout_snapshot(a->account_id, a->volume_id, a->backup_uuid, obj, sizeof(obj),
	    e)) < 0)
		return wrk__fail_as(c, r, PROTO_ERR_INTERNAL, 0);
	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	r = ova_detect(s, obj, &fmt, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	if (fmt != OVA_FMT_ABSENT) {
		/* Committed by an earlier delivery: the same answer, vCenter untouched. */
		log_debug("%s: %s is committed already", c->cmd->id, obj);
		r = answer_from_store(c, s, obj, e);
		goto out;
	}
	r = wrk__vc_open(c, &conn, e);
	if (r < 0)
		goto out;
	r = wrk__vc_recover(c, conn, s, obj, e);
	if (r < 0) {
		wrk__vc_fail(c, r);
		sw_errctx(e, "removing an earlier attempt's leftovers");
		goto out;
	}
	if (r == 1 && ova_detect(s, obj, &fmt, e) == 0 && fmt != OVA_FMT_ABSENT) {
		/* The other attempt committed while we waited for it. */
		r = answer_from_store(c, s, obj, e);
		goto out;
	}
	r = wrk__vc_backup(c, conn, &a->vm, a->disk, s, obj, 0, &res, e);
	if (r < 0)
		goto out;
	r = wrk__result_set(c, res->install_path, res->format, 1, res->physical_size,
	    res->virtual_size);
	if (r == 0)
		r = wrk__result_add_files(c, res->files, res->nfiles);
out:
	ova_result_free(res);
	wrk__vc_close(c, conn, r >= 0);
	ova_store_close(s);
	return r;
}
