/*
 * CreateTemplate: a template in the new format under
 * template/tmpl/<account_id>/<template_id>/<NAME> (NAME: unique_name, else
 * the command id in lower case) plus template.properties, written after the object's meta
 * as the template's commit record (the convention RegisterTemplate uses).
 *
 *  - From snapshot_path (either format): every file is read where it is,
 *    a legacy .ova by member offset (never unpacked to a temporary copy), and
 *    written once through the ovastore writer, which computes sha256 on the
 *    way.  Disks keep their file names, so the OVF still references them.
 *  - From vm + disk: the CreateSnapshot data path (vc.c) into the template.
 *
 * A redelivery finds template.properties naming its committed object and
 * answers again; an object committed without template.properties (a crash
 * between the two) only gets its template.properties.
 */
#include "worker/commands/vc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/path.h"
#include "ovastore/layout.h"
#include "ovastore/tprops.h"
#include "worker/commands/commands.h"

#define COPY_CHUNK (1024 * 1024)

struct copy_progress {
	struct wrk__cmd *c;
	uint64_t done, total, last_ms;
	int last_pct;
};

static void
copy_tick(struct copy_progress *p, uint64_t n)
{
	uint64_t now = sw_mono_ms();
	int pct;

	p->done += n;
	pct = p->total != 0 ? (int)(p->done * 100 / p->total) : 0;
	if (pct > 99)
		pct = 99;
	if (pct != p->last_pct || now - p->last_ms >= 1000) {
		wrk__vc_progress(p->c, p->done, pct);
		p->last_pct = pct;
		p->last_ms = now;
	}
}

/* Streams one file of src (reader) into sink: one read, one write per byte. */
static int
copy_reader(struct wrk__cmd *c, struct ova_reader *rd, struct sw_sink *sink, char *buf,
    struct copy_progress *p, int *ret_store_side, struct sw_err *e)
{
	struct sw_source src = ova_reader_source(rd);
	ssize_t n;
	int r;

	for (;;) {
		if ((r = wrk__check_stop(c, e)) < 0)
			return r;
		n = src.read(src.ud, buf, COPY_CHUNK, e);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		r = sink->write(sink->ud, buf, (size_t)n, e);
		if (r < 0) {
			*ret_store_side = 1;
			return r;
		}
		copy_tick(p, (uint64_t)n);
	}
}

/* Copies object src (either format) into a new-format object dst of the same store. */
static int
copy_object(struct wrk__cmd *c, struct ova_store *s, const char *src, const char *dst,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct ova_info *info = NULL;
	struct ova_writer *w = NULL;
	struct ova_reader *rd = NULL;
	struct copy_progress p;
	struct sw_sink sink;
	char *buf = NULL, *ovf = NULL;
	size_t k, ovflen = 0;
	int r, dummy = 0;

	memset(&p, 0, sizeof(p));
	p.c = c;
	p.last_pct = -1;
	r = ova_inspect(s, src, &info, e);
	/*
	 * A legacy archive is trusted no more than a download: its manifest is
	 * checked (a read of the whole archive) before a byte of it is copied.
	 * The writer checks a new-format source's OVF against its disks.
	 */
	if (r == 0 && info->format == OVA_FMT_OVA)
		r = ova_verify(s, src, 0, e);
	if (r < 0) {
		sw_errctx(e, "args.snapshot_path");
		goto out;
	}
	p.total = info->physical_size;
	if ((buf = malloc(COPY_CHUNK)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = wrk__ovf_read(s, src, info, &ovf, &ovflen, e)) < 0)
		goto out;
	r = ova_writer_begin(s, dst, 0, &w, e);
	if (r < 0)
		goto out;
	for (k = 0; k < info->ndisks; k++) {
		r = ova_reader_open_disk(s, src, k, &rd, e);
		if (r < 0)
			goto out;
		/* The disks keep their names: the OVF references them. */
		r = ova_writer_disk(w, info->disks[k].name, &sink, e);
		if (r < 0)
			goto out;
		r = copy_reader(c, rd, &sink, buf, &p, &dummy, e);
		if (r < 0) {
			sw_errctx(e, "%s", info->disks[k].name);
			goto out;
		}
		ova_reader_close(rd);
		rd = NULL;
	}
	r = ova_writer_ovf(w, NULL, ovf, ovflen, e);
	if (r == 0)
		r = ova_writer_commit(w, ret_result, e);
	if (r == 0)
		wrk__vc_progress(c, p.done, 100);
out:
	ova_reader_close(rd);
	ova_writer_free(w);
	ova_info_free(info);
	free(buf);
	free(ovf);
	return r;
}

static int
write_props(struct wrk__cmd *c, struct ova_store *s, const char *obj, const char *dir,
    const char *name, uint64_t *ret_size, struct sw_err *e)
{
	struct ova_info *info = NULL;
	struct ova_tprops tp;
	int r, dfd;

	r = ova_inspect(s, obj, &info, e);
	if (r < 0)
		return r;
	dfd = wrk__dir_open(s, dir, 0, e);
	if (dfd < 0) {
		ova_info_free(info);
		return dfd;
	}
	memset(&tp, 0, sizeof(tp));
	tp.id = c->cmd->args.create_template.template_id;
	tp.uniquename = name;
	tp.size = info->physical_size;
	/* CloudStack takes a template with virtualsize 0 for corrupt. */
	tp.virtual_size = info->virtual_size != 0 ? info->virtual_size : info->physical_size;
	r = ova_tprops_write(dfd, &tp, ret_size, e);
	close(dfd);
	ova_info_free(info);
	return r;
}

int
wrk__cmd_create_template(struct wrk__cmd *c, struct sw_err *e)
{
	const struct proto_args_create_template *a = &c->cmd->args.create_template;
	char idname[PROTO_ID_MAX + 1];
	const char *name = a->unique_name;
	struct ova_store *s = NULL;
	struct ova_result *res = NULL;
	struct vmw_conn *conn = NULL;
	struct ova_tprops_file *props = NULL;
	enum ova_format fmt = OVA_FMT_ABSENT;
	char dir[SW_PATH_MAX], obj[SW_PATH_MAX];
	const char *pname;
	uint64_t psize = 0;
	int r, dfd = -1;

	if (name == NULL) {
		wrk__id_name(c, idname, sizeof(idname));
		name = idname;
	}
	if (sw_unique_name_check(name, e) < 0)
		return wrk__fail_as(c, SW_EPATH, PROTO_ERR_INVALID_COMMAND, 0);
	if ((r = ova_layout_template_dir(a->account_id, a->template_id, dir, sizeof(dir), e)) < 0 ||
	    (r = ova_layout_template(a->account_id, a->template_id, name, obj, sizeof(obj), e)) < 0)
		return wrk__fail_as(c, r, PROTO_ERR_INTERNAL, 0);
	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	/* Not created here: a command that fails leaves no empty directory behind. */
	dfd = wrk__dir_open(s, dir, 0, e);
	if (dfd < 0 && dfd != SW_ENOTFOUND) {
		r = wrk__fail(c, dfd, PROTO_CTX_STORE);
		goto out;
	}
	r = ova_detect(s, obj, &fmt, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	/* Idempotency: template.properties is the template's commit record. */
	r = dfd >= 0 ? ova_tprops_read(dfd, &props, &psize, e) : SW_ENOTFOUND;
	if (r == 0) {
		pname = ova_tprops_get(props, "uniquename");
		if (pname != NULL && strcmp(pname, name) == 0 && fmt != OVA_FMT_ABSENT) {
			r = wrk__template_answer(c, s, obj, dir, psize, e);
			if (r < 0)
				wrk__fail(c, r, PROTO_CTX_STORE);
			goto out;
		}
		if (pname != NULL && strcmp(pname, name) != 0) {
			r = wrk__fail_as(c, sw_errf(e, SW_EEXIST, "template %" PRId64 " exists already "
			    "(as another object)", a->template_id), PROTO_ERR_STORE_IO, 0);
			goto out;
		}
	} else if (r != SW_ENOTFOUND) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	if (fmt == OVA_FMT_ABSENT) {
		if (a->source == PROTO_TEMPLATE_FROM_SNAPSHOT) {
			r = copy_object(c, s, a->snapshot_path, obj, &res, e);
			if (r < 0) {
				wrk__fail(c, r, PROTO_CTX_STORE);
				goto out;
			}
		} else {
			r = wrk__vc_open(c, &conn, e);
			if (r < 0)
				goto out;
			r = wrk__vc_recover(c, conn, s, obj, e);
			if (r < 0) {
				wrk__vc_fail(c, r);
				goto out;
			}
			/* 1: another attempt finished while we waited; it may have committed. */
			if (r == 0 || ova_detect(s, obj, &fmt, e) < 0 || fmt == OVA_FMT_ABSENT) {
				r = wrk__vc_backup(c, conn, &a->vm, a->disk, s, obj, 0, &res, e);
				if (r < 0)
					goto out;
			}
		}
	}
	r = write_props(c, s, obj, dir, name, &psize, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	r = wrk__template_answer(c, s, obj, dir, psize, e);
	if (r < 0)
		wrk__fail(c, r, PROTO_CTX_STORE);
out:
	if (dfd >= 0)
		close(dfd);
	ova_tprops_free(props);
	ova_result_free(res);
	wrk__vc_close(c, conn, r >= 0);
	ova_store_close(s);
	return r;
}
