/*
 * ExportVm over NFC: the lease's disk URLs streamed into the caller's sink,
 * then the OVF descriptor (OvfManager.CreateDescriptor) for what was
 * exported.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "common/io.h"
#include "common/log.h"

void
vmw_export_result_free(struct vmw_export_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->ovf);
	for (i = 0; i < r->nfiles; i++) {
		free(r->files[i].file);
		free(r->files[i].key);
	}
	free(r->files);
	free(r);
}

static int
is_disk_url(const struct vmw__lease_dev *d)
{
	size_t n = strlen(d->url);

	if (d->disk >= 0)
		return d->disk;
	return n > 5 && strcmp(d->url + n - 5, ".vmdk") == 0;
}

static int
create_descriptor(struct vmw_conn *c, const struct vmw_moref *vm, const char *name,
    struct vmw_export_result *res, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw__req q;
	xmlNode *rv, *err;
	size_t i;
	int r;

	if (c->sc.ovf_manager.type[0] == '\0')
		return sw_errf(e, SW_EUNSUPPORTED, "server has no OvfManager");
	vmw__req_init(&q);
	vmw__req_moref(&q, "obj", vm);
	vmw__req_raw(&q, "<cdp>");
	for (i = 0; i < res->nfiles; i++) {
		vmw__req_raw(&q, "<ovfFiles>");
		vmw__req_text(&q, "deviceId", res->files[i].key);
		vmw__req_text(&q, "path", res->files[i].file);
		vmw__req_i64(&q, "size", (int64_t)res->files[i].size);
		vmw__req_raw(&q, "</ovfFiles>");
	}
	vmw__req_text(&q, "name", name);
	vmw__req_raw(&q, "</cdp>");
	r = vmw__call_req(c, "CreateDescriptor", &c->sc.ovf_manager, &q, VMW_CALL_IDEMPOTENT,
	    &resp, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		return r;
	rv = vmw__x_child(resp.body, "returnval");
	if ((err = vmw__x_child(rv, "error")) != NULL) {
		r = vmw__inner_fault(c, err, "CreateDescriptor", e);
		goto out;
	}
	res->ovf = vmw__x_strdup(vmw__x_child(rv, "ovfDescriptor"));
	if (res->ovf == NULL || res->ovf[0] == '\0') {
		r = sw_errf(e, SW_EFORMAT, "CreateDescriptor returned no descriptor");
		goto out;
	}
	res->ovf_len = strlen(res->ovf);
out:
	vmw__resp_free(&resp);
	return r;
}

int
vmw_export_vm(struct vmw_conn *c, const struct vmw_moref *vm, const struct vmw_export_opts *o,
    struct vmw_export_result **ret_result, uint64_t deadline_ms, atomic_int *cancel,
    struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw_export_result *res = NULL;
	struct vmw__lease_info *li = NULL;
	struct vmw_moref lease;
	struct vmw__xfer x;
	struct vmw_nfc_disk nd;
	char url[VMW_NFC_MAX_URL], file[512];
	size_t i;
	int r, r2, lease_open = 0, sink_open = 0;
	uint64_t total = 0;

	if (c == NULL || vm == NULL || o == NULL || o->name == NULL || o->sink_open == NULL ||
	    ret_result == NULL)
		return sw_errf(e, -EINVAL, "export: bad arguments");
	memset(&x, 0, sizeof(x));
	memset(&nd, 0, sizeof(nd));
	if ((li = calloc(1, sizeof(*li))) == NULL || (res = calloc(1, sizeof(*res))) == NULL ||
	    (res->files = calloc(VMW_MAX_DISKS, sizeof(*res->files))) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	r = vmw__call(c, "ExportVm", vm, NULL, 0, &resp, deadline_ms, cancel, e);
	if (r < 0)
		goto out;
	if ((r = vmw__lease_returned(&resp, "ExportVm", &lease, e)) < 0)
		goto out;
	lease_open = 1;
	if (o->lease_open != NULL && (r = o->lease_open(o->ud, &lease, e)) < 0)
		goto out;
	if ((r = vmw__lease_wait(c, &lease, li, deadline_ms, cancel, e)) < 0)
		goto out;
	for (i = 0; i < li->ndevs; i++)
		if (is_disk_url(&li->devs[i]) && li->devs[i].file_size > 0)
			total += (uint64_t)li->devs[i].file_size;
	if (total == 0 && li->total_kb > 0)
		total = (uint64_t)li->total_kb * 1024u;

	x.c = c;
	x.lease = &lease;
	x.total = total;
	x.deadline_ms = deadline_ms;
	x.cancel = cancel;
	x.lease_every_ms = (o->lease_progress_s ? o->lease_progress_s : 20) * 1000u;
	x.last_lease_ms = sw_mono_ms();
	x.last_percent = -1;
	x.progress = o->progress;
	x.ud = o->ud;
	for (i = 0; i < li->ndevs; i++) {
		const struct vmw__lease_dev *d = &li->devs[i];
		struct vmw_export_file *f = &res->files[res->nfiles];

		if (!is_disk_url(d))
			continue;
		if (snprintf(file, sizeof(file), "%s-disk%zu.vmdk", o->name, res->nfiles) >=
		    (int)sizeof(file)) {
			r = sw_errf(e, -EINVAL, "export name too long");
			goto out;
		}
		if ((r = vmw__nfc_url(c, d->url, url, sizeof(url), e)) < 0 ||
		    (r = vmw__xfer_pin(c, d, &x.pin, e)) < 0)
			goto out;
		if ((f->file = strdup(file)) == NULL || (f->key = strdup(d->key)) == NULL) {
			r = sw_errf(e, -ENOMEM, "out of memory");
			goto out;
		}
		res->nfiles++;
		nd.index = (int)(res->nfiles - 1);
		nd.key = d->key;
		nd.file = f->file;
		nd.size = d->file_size > 0 ? (uint64_t)d->file_size : 0;
		memset(&x.sink, 0, sizeof(x.sink));
		if ((r = o->sink_open(o->ud, &nd, &x.sink, e)) < 0)
			goto out;
		if (x.sink.write == NULL) {
			r = sw_errf(e, -EINVAL, "export: sink for disk %d has no write", nd.index);
			goto out;
		}
		sink_open = 1;
		log_debug("vmw: export %s disk %d from %s", vm->value, nd.index, url);
		r = vmw__xfer_run(&x, url, "GET", 0, e);
		f->size = x.bytes;
		if (r == 0 && x.bytes == 0 && nd.size > 0)
			r = sw_errf(e, SW_EREMOTE, "NFC download of disk %d returned no data", nd.index);
		sink_open = 0;
		if (o->sink_close != NULL) {
			struct sw_err ce;

			sw_err_clear(&ce);
			r2 = o->sink_close(o->ud, &nd, r, x.bytes, &ce);
			if (r == 0 && r2 < 0) {
				r = r2;
				if (e != NULL)
					*e = ce;
			}
		}
		if (r < 0) {
			(void)sw_errctx(e, "disk %d of %s", nd.index, vm->value);
			goto out;
		}
		x.done += x.bytes;
		x.bytes = 0;
		/* The first file's GET may have taken long: tell vCenter before the next one. */
		if ((r = vmw__xfer_tick(&x, 1)) < 0) {
			if (e != NULL)
				*e = x.err;
			goto out;
		}
	}
	if (res->nfiles == 0) {
		r = sw_errf(e, SW_EREMOTE, "NFC lease of %s offers no disk", vm->value);
		goto out;
	}
	if ((r = create_descriptor(c, vm, o->name, res, deadline_ms, cancel, e)) < 0)
		goto out;
	r = vmw__call(c, "HttpNfcLeaseComplete", &lease, NULL, 0, NULL, deadline_ms, cancel, e);
	if (r < 0)
		goto out;
	lease_open = 0;
	if (o->progress != NULL)
		o->progress(o->ud, x.done, 100);
	*ret_result = res;
	res = NULL;
out:
	if (sink_open && o->sink_close != NULL) {
		struct sw_err ce;

		(void)o->sink_close(o->ud, &nd, r, x.bytes, &ce);
	}
	if (lease_open)
		vmw__lease_abort(c, &lease, e != NULL ? e->msg : "error");
	vmw__resp_free(&resp);
	vmw_export_result_free(res);
	vmw__xfer_free(&x);
	free(li);
	return r;
}
