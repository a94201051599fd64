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
 * CreateVolume imports a snapshot or template of either format into vCenter
 * (CreateImportSpec + ImportVApp on the datastore the command names; the
 * disks are uploaded straight from the .vmdk files, or by offset from inside
 * a legacy .ova through ovastore's reader, never extracted).  The helper VM
 * is named and tagged after the command id, so an interrupted attempt's VM
 * is removed by the redelivery or by the sweeper.  Its disks are detached
 * and moved to [ds] NAME.vmdk (NAME-1.vmdk, ... for more disks: CloudStack
 * volumes have one), then the helper VM is destroyed.  A marker in the
 * store's state directory (ovastore/state.h: ova_marker_*) holds the
 * datastore path of the first disk once every disk is complete and at its
 * final path, so a redelivery that finds it answers without importing
 * again; the folder name alone would not do, since the sweeper detaches a
 * half-imported disk too.
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
#include "ovastore/layout.h"

/* ---------------------------------------------------------- ExtractVolume */

int
wrk__cmd_extract_volume(struct wrk__cmd *c, struct sw_err *e)
{
	const struct proto_args_extract_volume *a = &c->cmd->args.extract_volume;
	const struct wrk_store *ws = NULL;
	struct ova_store *s = NULL;
	struct ova_result *res = NULL;
	struct ova_info *info = NULL;
	struct vmw_conn *conn = NULL;
	enum ova_format fmt = OVA_FMT_ABSENT;
	char obj[SW_PATH_MAX], out[SW_NAME_MAX + 1], idname[PROTO_ID_MAX + 1];
	struct stat st;
	uint64_t size = 0;
	int r, xfd = -1;

	/* The command id in lower case names the volume: CloudStack matches lower-cased names. */
	wrk__id_name(c, idname, sizeof(idname));
	if ((r = ova_layout_volume(a->account_id, a->volume_id, idname, obj, sizeof(obj),
	    e)) < 0)
		return wrk__fail_as(c, r, PROTO_ERR_INTERNAL, 0);
	if (snprintf(out, sizeof(out), "%s.ova", idname) >= (int)sizeof(out))
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
			/* The pack below reads the disk right after: it stays in the page cache. */
			r = wrk__vc_backup(c, conn, &a->vm, a->disk, s, obj, OVA_WRITER_KEEP_CACHE,
			    &res, e);
			if (r < 0)
				goto out;
		}
		/* vCenter is done with: do not hold the session through the pack. */
		wrk__vc_close(c, conn, 1);
		conn = NULL;
	}
	r = ova_inspect(s, obj, &info, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	xfd = wrk__extract_dir_open(ws, e);
	if (xfd < 0) {
		r = wrk__fail(c, xfd, PROTO_CTX_STORE);
		goto out;
	}
	if (fstatat(xfd, out, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    wrk__extract_size_ok(info, (uint64_t)st.st_size)) {
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
	wrk__vc_close(c, conn, r >= 0);
	ova_store_close(s);
	return r;
}

/* ----------------------------------------------------------- CreateVolume */

/* Bound of one datastore path (the marker holds the first disk's). */
#define CV_DSPATH_MAX 1024

/* Where disk k of the volume goes: "[ds] NAME.vmdk", then "[ds] NAME-K.vmdk". */
static int
cv_final_path(const char *ds, const char *name, size_t k, char *out, size_t outsz)
{
	size_t len = strlen(name);
	int stem = (int)len, n;

	/* CloudStack may or may not send the extension. */
	if (len > 5 && strcmp(name + len - 5, ".vmdk") == 0)
		stem = (int)(len - 5);
	if (k == 0)
		n = snprintf(out, outsz, "[%s] %.*s.vmdk", ds, stem, name);
	else
		n = snprintf(out, outsz, "[%s] %.*s-%zu.vmdk", ds, stem, name, k);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

/* The OVF of obj, NUL-terminated, in *ret_ovf. */
static int
cv_read_ovf(struct ova_store *s, const char *obj, const struct ova_info *info, char **ret_ovf,
    struct sw_err *e)
{
	char *ovf = NULL;
	size_t len = 0;
	int r;

	if ((r = wrk__ovf_read(s, obj, info, &ovf, &len, e)) < 0)
		return r;
	/* It is parsed as a string. */
	if (memchr(ovf, '\0', len) != NULL) {
		free(ovf);
		return sw_errf(e, SW_EFORMAT, "%s: binary OVF", info->ovf_name);
	}
	*ret_ovf = ovf;
	return 0;
}

/*
 * Where a CreateVolume's time went, in milliseconds, logged (info) when it
 * succeeds: the vCenter steps (login, the earlier attempt's leftovers,
 * placement, the import less its stream, detach, moves, destroy), the
 * stream (the first disk byte read from the share to the last) and the
 * marker on the share.
 */
struct cv_phases {
	uint64_t login, leftovers, placement, import, detach, move, destroy;
	uint64_t stream, marker;
	uint64_t bytes;
};

static void
cv_phases_log(const struct wrk__cmd *c, const struct cv_phases *p)
{
	uint64_t vc = p->login + p->leftovers + p->placement + p->import + p->detach + p->move +
	    p->destroy;
	double mibs = p->stream > 0 ? (double)p->bytes / 1048576.0 * 1000.0 / (double)p->stream : 0;

	log_info("%s: phases: vcenter %" PRIu64 " ms (login %" PRIu64 ", leftovers %" PRIu64
	    ", placement %" PRIu64 ", import %" PRIu64 ", detach %" PRIu64 ", move %" PRIu64
	    ", destroy %" PRIu64 "), stream %" PRIu64 " ms (%" PRIu64 " bytes, %.1f MiB/s), "
	    "marker %" PRIu64 " ms", c->cmd->id, vc, p->login, p->leftovers, p->placement,
	    p->import, p->detach, p->move, p->destroy, p->stream, p->bytes, mibs, p->marker);
}

/* The import's sources: disk files of the object, by the names its OVF gives. */
struct cv_src {
	struct wrk__cmd *c;
	struct ova_store *s;
	const char *obj;
	const struct ova_info *info;
	struct ova_reader *rd;
	struct sw_source inner;
	int store_failed;         /* a read of the share failed: STORE context, not vCenter */
	uint64_t first_ms, last_ms; /* the first and the last disk byte read */
	uint64_t bytes;
};

static ssize_t
cv_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct cv_src *x = ud;
	ssize_t r = x->inner.read(x->inner.ud, p, n, e);

	if (r < 0) {
		x->store_failed = 1;
		return r;
	}
	if (r > 0) {
		x->last_ms = sw_mono_ms();
		if (x->first_ms == 0)
			x->first_ms = x->last_ms;
		x->bytes += (uint64_t)r;
	}
	return r;
}

static int
cv_source_open(void *ud, const char *file, struct sw_source *ret_src, uint64_t *ret_size,
    struct sw_err *e)
{
	struct cv_src *x = ud;
	const char *base = strrchr(file, '/');
	size_t k;
	int r;

	base = base != NULL ? base + 1 : file;
	for (k = 0; k < x->info->ndisks; k++)
		if (strcmp(x->info->disks[k].name, base) == 0)
			break;
	if (k == x->info->ndisks) {
		x->store_failed = 1;
		return sw_errf(e, SW_ENOTFOUND, "the OVF names %s, which is not a disk of %s", file,
		    x->obj);
	}
	ova_reader_close(x->rd);
	x->rd = NULL;
	r = ova_reader_open_disk(x->s, x->obj, k, &x->rd, e);
	if (r < 0) {
		x->store_failed = 1;
		return r;
	}
	x->inner = ova_reader_source(x->rd);
	ret_src->read = cv_read;
	ret_src->ud = x;
	*ret_size = ova_reader_size(x->rd);
	return 0;
}

static void
cv_progress(void *ud, uint64_t bytes, int percent)
{
	struct cv_src *x = ud;

	wrk__vc_progress(x->c, bytes, percent);
}

static void
cv_source_close(void *ud, const char *file, struct sw_source *src)
{
	struct cv_src *x = ud;

	(void)file; (void)src;
	ova_reader_close(x->rd);
	x->rd = NULL;
}

/* Removes every VM tagged with the command id (disks detached first, so files stay). */
static int
cv_clean_tagged(struct wrk__cmd *c, struct vmw_conn *conn, struct sw_err *e)
{
	struct ova_journal j;

	memset(&j, 0, sizeof(j));
	if (snprintf(j.command, sizeof(j.command), "%s", c->cmd->id) >= (int)sizeof(j.command))
		return sw_errf(e, -EINVAL, "command id too long");
	return wrk_vc_journal_undo(conn, &j, e);
}

static int
cv_answer(struct wrk__cmd *c, const struct ova_info *info, const char *ds_path)
{
	struct proto_result *res = &c->ev->result;
	char *p;
	int r;

	r = wrk__result_set(c, info->install_path, info->format, 1, info->physical_size,
	    info->virtual_size);
	if (r < 0)
		return r;
	if ((p = strdup(ds_path)) == NULL)
		return -ENOMEM;
	free((void *)res->datastore_path);
	res->datastore_path = p;
	return 0;
}

/*
 * Moves the first n disks back into the helper VM's directory after a later
 * step failed: the final paths must stay free for the redelivery, and what
 * is left there goes with the helper VM.  Best effort, on the cleanup deadline.
 */
static void
cv_unmove(struct vmw_conn *conn, const struct vmw_placement *pl, const char *name,
    const struct vmw_import_result *res, size_t n)
{
	struct sw_err le;
	char dst[CV_DSPATH_MAX];
	size_t k;

	for (k = 0; k < n; k++)
		if (cv_final_path(pl->datastore_name, name, k, dst, sizeof(dst)) == 0)
			(void)vmw_virtual_disk_move(conn, &pl->datacenter, dst, res->disk_paths[k],
			    0, sw_mono_ms() + WRK_VC_CLEANUP_MS, NULL, &le);
}

/*
 * Import -> detach -> move every disk to its final path -> marker -> destroy
 * the helper VM.  Vcenter's Destroy_Task removes the VM's directory (the
 * simulator's does too), so the disks leave it before.  On failure the
 * helper VM is destroyed with its disks detached.
 */
static int
cv_import(struct wrk__cmd *c, struct vmw_conn *conn, struct ova_store *s,
    const struct ova_info *info, const char *ovf, const struct vmw_placement *pl,
    char *first, size_t firstsz, struct cv_phases *ph, struct sw_err *e)
{
	const struct proto_args_create_volume *a = &c->cmd->args.create_volume;
	struct vmw_import_result *res = NULL;
	struct vmw_import_opts io;
	struct cv_src x;
	struct sw_err le;
	char dst[CV_DSPATH_MAX];
	size_t k, moved = 0;
	uint64_t t = sw_mono_ms();
	int r;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.s = s;
	x.obj = a->source_path;
	x.info = info;
	memset(&io, 0, sizeof(io));
	io.ovf = ovf;
	io.vm_name = c->cmd->id;
	io.tag = c->cmd->id;
	io.pool = &pl->pool;
	io.folder = &pl->folder;
	io.datastore = &pl->datastore;
	io.host = &pl->host;
	io.source_open = cv_source_open;
	io.source_close = cv_source_close;
	io.progress = cv_progress;
	io.ud = &x;
	r = vmw_import_vm(conn, &io, &res, c->job->deadline_ms, c->job->cancel, e);
	ova_reader_close(x.rd);
	x.rd = NULL;
	ph->stream = x.last_ms - x.first_ms;
	ph->bytes = x.bytes;
	ph->import = sw_mono_ms() - t - ph->stream;
	if (r < 0) {
		wrk__fail(c, r, x.store_failed ? PROTO_CTX_STORE : PROTO_CTX_VCENTER);
		sw_errctx(e, "importing %s", a->source_path);
		/* The lease was aborted; a server that keeps the VM anyway gets it destroyed. */
		(void)cv_clean_tagged(c, conn, &le);
		return r;
	}
	if (res->ndisks == 0) {
		r = wrk__vc_fail(c, sw_errf(e, SW_EREMOTE, "the imported VM has no disk"));
		goto fail;
	}
	t = sw_mono_ms();
	r = vmw_worker_vm_detach(conn, &res->vm, c->job->deadline_ms, c->job->cancel, e);
	if (r < 0) {
		wrk__vc_fail(c, r);
		goto fail;
	}
	ph->detach = sw_mono_ms() - t;
	t = sw_mono_ms();
	for (k = 0; k < res->ndisks; k++) {
		if (cv_final_path(pl->datastore_name, a->name, k, dst, sizeof(dst)) < 0) {
			r = wrk__fail_as(c, sw_errf(e, -ENAMETOOLONG, "args.name: too long"),
			    PROTO_ERR_INVALID_COMMAND, 0);
			goto fail;
		}
		r = vmw_virtual_disk_move(conn, &pl->datacenter, res->disk_paths[k], dst, 0,
		    c->job->deadline_ms, c->job->cancel, e);
		if (r < 0) {
			wrk__vc_fail(c, r);
			goto fail;
		}
		moved++;
		if (k == 0 && snprintf(first, firstsz, "%s", dst) >= (int)firstsz) {
			r = wrk__fail_as(c, sw_errf(e, -ENAMETOOLONG, "datastore path too long"),
			    PROTO_ERR_INTERNAL, 0);
			goto fail;
		}
	}
	ph->move = sw_mono_ms() - t;
	t = sw_mono_ms();
	r = ova_marker_write(s, c->cmd->id, first, e);
	ph->marker = sw_mono_ms() - t;
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		sw_errctx(e, "extract area");
		goto fail;
	}
	/*
	 * The volume is complete and recorded: a helper VM that cannot be
	 * destroyed now is the sweeper's (it is tagged), not a failed command.
	 */
	t = sw_mono_ms();
	r = vmw_worker_vm_destroy(conn, &res->vm, sw_mono_ms() + WRK_VC_CLEANUP_MS, NULL, &le);
	ph->destroy = sw_mono_ms() - t;
	if (r < 0)
		log_warnx("helper VM %s of CreateVolume left for the sweeper: %s",
		    res->vm.value, le.msg);
	vmw_import_result_free(res);
	return 0;
fail:
	cv_unmove(conn, pl, a->name, res, moved);
	(void)vmw_worker_vm_destroy(conn, &res->vm, sw_mono_ms() + WRK_VC_CLEANUP_MS, NULL, &le);
	vmw_import_result_free(res);
	return r;
}

int
wrk__cmd_create_volume(struct wrk__cmd *c, struct sw_err *e)
{
	const struct proto_args_create_volume *a = &c->cmd->args.create_volume;
	struct ova_store *s = NULL;
	struct ova_info *info = NULL;
	struct vmw_conn *conn = NULL;
	struct vmw_placement pl;
	struct cv_phases ph;
	char first[CV_DSPATH_MAX], *ovf = NULL;
	const char *p;
	uint64_t t;
	int r;

	if (a->source_path == NULL || a->datastore == NULL || a->name == NULL)
		return wrk__fail_as(c, sw_errf(e, SW_EFORMAT, "args: source_path, datastore and "
		    "name are required"), PROTO_ERR_INVALID_COMMAND, 0);
	if (sw_name_check(a->name, e) < 0)
		return wrk__fail_as(c, sw_errctx(e, "args.name"), PROTO_ERR_INVALID_COMMAND, 0);
	/* It goes between brackets in datastore paths. */
	for (p = a->datastore; *p != '\0'; p++)
		if (*p == '[' || *p == ']' || (unsigned char)*p < 0x20)
			break;
	if (a->datastore[0] == '\0' || *p != '\0' || p - a->datastore > 80)
		return wrk__fail_as(c, sw_errf(e, SW_EFORMAT, "args.datastore: not a datastore "
		    "name"), PROTO_ERR_INVALID_COMMAND, 0);
	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	r = ova_inspect(s, a->source_path, &info, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		sw_errctx(e, "args.source_path");
		goto out;
	}
	if (info->ndisks == 0) {
		r = wrk__fail_as(c, sw_errf(e, SW_EFORMAT, "%s has no disk", a->source_path),
		    PROTO_ERR_INVALID_COMMAND, 0);
		goto out;
	}
	memset(&ph, 0, sizeof(ph));
	t = sw_mono_ms();
	r = wrk__vc_open(c, &conn, e);
	if (r < 0)
		goto out;
	ph.login = sw_mono_ms() - t;
	t = sw_mono_ms();
	/* Leftovers of an interrupted attempt first: its helper VM holds a disk. */
	r = cv_clean_tagged(c, conn, e);
	ph.leftovers = sw_mono_ms() - t;
	if (r < 0) {
		wrk__vc_fail(c, r);
		sw_errctx(e, "removing an earlier attempt's helper VM");
		goto out;
	}
	r = ova_marker_read(s, c->cmd->id, first, sizeof(first), e);
	if (r == 0) {
		/* A redelivery: the first delivery completed. */
		r = cv_answer(c, info, first);
		goto out;
	}
	if (r != SW_ENOTFOUND) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	r = cv_read_ovf(s, a->source_path, info, &ovf, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	t = sw_mono_ms();
	r = vmw_datastore_placement(conn, a->datastore, &pl, c->job->deadline_ms, c->job->cancel,
	    e);
	ph.placement = sw_mono_ms() - t;
	if (r < 0) {
		wrk__vc_fail(c, r);
		sw_errctx(e, "args.datastore");
		goto out;
	}
	r = cv_import(c, conn, s, info, ovf, &pl, first, sizeof(first), &ph, e);
	if (r == 0)
		r = cv_answer(c, info, first);
	if (r == 0)
		cv_phases_log(c, &ph);
out:
	free(ovf);
	ova_info_free(info);
	wrk__vc_close(c, conn, r >= 0);
	ova_store_close(s);
	return r;
}
