/*
 * Volume commands, both backed by vCenter.
 *
 * ExtractVolume exports the volume through the CreateSnapshot data path
 * (VM snapshot, worker VM, export, cleanup: vc.c) into the new-format object
 * volumes/<account_id>/<volume_id>/<command id>/<command id>, then packs the
 * downloadable <command id>.ova into the store's extract area (atomically:
 * temporary, fsync, rename).  The name is the command id: unique, a safe
 * file name, and the same for a redelivery, which therefore finds its object
 * (and its .ova) and answers without redoing anything.
 *
 * CreateVolume (CreateImportSpec + ImportVApp of a snapshot or template of
 * either format, disks uploaded straight from the .vmdk files or from inside
 * the legacy .ova through ovastore's reader, then the helper VM removed with
 * its disk detached) is not in this build: vmware/ has no way yet to find
 * where to import (a datastore by name, with a host, resource pool and VM
 * folder that see it: the command names only the datastore), and an
 * imported VM carries no snapworker tag, so vmw_worker_vm_destroy() (which
 * detaches disks first) refuses it and the sweeper could not find it after
 * a crash.  It fails cleanly (INTERNAL, not retryable) until then.
 */
#include "worker/commands/vc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/path.h"

/* ---------------------------------------------------------- ExtractVolume */

/*
 * Whether an .ova already in the extract area is the complete pack of the
 * object: it was renamed into place whole, so its size is the object's files
 * plus tar headers and padding.
 */
static int
pack_size_ok(const struct ova_info *info, uint64_t size)
{
	uint64_t lo = info->physical_size + 1024, members = info->nfiles + 1;
	uint64_t hi = info->physical_size + members * (3 * 512 + 511 + 1024) + 20480;

	return size >= lo && size <= hi;
}

int
wrk__vc_extract_volume(struct wrk__cmd *c, struct sw_err *e)
{
	const struct proto_args_extract_volume *a = &c->cmd->args.extract_volume;
	const struct wrk_store *ws = NULL;
	struct ova_store *s = NULL;
	struct ova_result *res = NULL;
	struct ova_info *info = NULL;
	struct vmw_conn *conn = NULL;
	enum ova_format fmt = OVA_FMT_ABSENT;
	char obj[SW_PATH_MAX], out[SW_NAME_MAX + 1];
	struct stat st;
	uint64_t size = 0;
	int r, xfd = -1;

	if (sw_path_fmt(obj, sizeof(obj), "volumes/%" PRId64 "/%" PRId64 "/%s/%s", a->account_id,
	    a->volume_id, c->cmd->id, c->cmd->id) < 0 ||
	    snprintf(out, sizeof(out), "%s.ova", c->cmd->id) >= (int)sizeof(out))
		return wrk__fail_as(c, sw_errf(e, SW_EINTERNAL, "volume path too long"),
		    PROTO_ERR_INTERNAL, 0);
	r = wrk__store_open(c, c->cmd->store.url, &s, &ws, e);
	if (r < 0)
		return r;
	r = ova_detect(s, obj, &fmt, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	if (fmt == OVA_FMT_ABSENT) {
		r = wrk__vc_open(c, &conn, e);
		if (r < 0)
			goto out;
		r = wrk__vc_recover(c, conn, s, obj, e);
		if (r < 0) {
			wrk__vc_fail(c, r);
			sw_errctx(e, "removing an earlier attempt's leftovers");
			goto out;
		}
		/* 1: another attempt finished while we waited; it may have committed. */
		if (r == 0 || ova_detect(s, obj, &fmt, e) < 0 || fmt == OVA_FMT_ABSENT) {
			r = wrk__vc_backup(c, conn, &a->vm, a->disk, s, obj, &res, e);
			if (r < 0)
				goto out;
		}
		/* vCenter is done with: do not hold the session through the pack. */
		wrk_vc_disconnect(conn);
		conn = NULL;
	}
	r = ova_inspect(s, obj, &info, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	xfd = wrk__vc_extract_dir_open(ws, e);
	if (xfd < 0) {
		r = wrk__fail(c, xfd, PROTO_CTX_STORE);
		goto out;
	}
	if (fstatat(xfd, out, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    pack_size_ok(info, (uint64_t)st.st_size)) {
		/* A redelivery: the first delivery's .ova is complete. */
		size = (uint64_t)st.st_size;
	} else {
		r = wrk__check_stop(c, e);
		if (r == 0)
			r = ova_pack_at(s, obj, xfd, out, 0, &size, e);
		if (r < 0) {
			wrk__fail(c, r, PROTO_CTX_STORE);
			sw_errctx(e, "extract area");
			goto out;
		}
	}
	r = wrk__result_set(c, info->install_path, info->format, 1, info->physical_size,
	    info->virtual_size);
	if (r == 0)
		r = wrk__result_add_files(c, res != NULL ? res->files : info->files,
		    res != NULL ? res->nfiles : info->nfiles);
	if (r == 0)
		r = wrk__result_fill_digests(c, s, OVA_OVF_MAX, e);
	if (r == 0)
		r = wrk__result_download(c, out, size);
out:
	if (xfd >= 0)
		close(xfd);
	ova_info_free(info);
	ova_result_free(res);
	wrk_vc_disconnect(conn);
	ova_store_close(s);
	return r;
}

/* ----------------------------------------------------------- CreateVolume */

int
wrk__vc_create_volume(struct wrk__cmd *c, struct sw_err *e)
{
	return wrk__not_implemented(c, e);
}

/* ------------------------------------------------------------ entry points */

int
wrk__cmd_extract_volume(struct wrk__cmd *c, struct sw_err *e)
{
	return wrk__vc_extract_volume(c, e);
}

int
wrk__cmd_create_volume(struct wrk__cmd *c, struct sw_err *e)
{
	return wrk__vc_create_volume(c, e);
}
