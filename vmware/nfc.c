/*
 * NFC export and import: HttpNfcLease handling and streaming disk
 * transfers.  Disk bytes go straight between libcurl's buffers and the
 * caller's sink/source, so memory stays constant whatever the disk size.
 * The lease is kept alive with HttpNfcLeaseProgress from inside the
 * transfer (curl's xferinfo callback) on the connection's SOAP handle.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>

#include "common/io.h"
#include "common/log.h"

#define MAX_URL 4096
#define CLEANUP_MS 30000

struct lease_dev {
	char key[256];
	char import_key[256];
	char url[MAX_URL];
	char thumbprint[128];
	int disk;                   /* 1 disk, 0 not, -1 unknown */
	int64_t file_size;          /* -1 unknown */
};

struct lease_info {
	char state[16];
	struct vmw_moref entity;
	int64_t total_kb;
	size_t ndevs;
	struct lease_dev devs[VMW_MAX_DISKS];
	int error_rc;
};

struct lease_ud {
	struct vmw_conn *c;
	struct lease_info *li;
};

static int
copy_text(xmlNode *n, char *buf, size_t bufsz)
{
	if (n == NULL) {
		buf[0] = '\0';
		return 0;
	}
	return vmw__x_text(n, buf, bufsz);
}

static int
lease_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct lease_ud *u = ud;
	struct lease_info *li = u->li;
	struct lease_dev *d;
	xmlNode *du;
	int b;

	(void)obj;
	if (strcmp(name, "state") == 0) {
		if (vmw__x_text(val, li->state, sizeof(li->state)) < 0)
			return sw_errf(e, SW_EFORMAT, "lease state unreadable");
	} else if (strcmp(name, "error") == 0) {
		li->error_rc = vmw__inner_fault(u->c, val, "NFC lease failed", e);
	} else if (strcmp(name, "info") == 0) {
		(void)vmw__x_moref(vmw__x_child(val, "entity"), &li->entity);
		if (vmw__x_i64(vmw__x_child(val, "totalDiskCapacityInKB"), &li->total_kb) < 0)
			li->total_kb = 0;
		li->ndevs = 0;
		for (du = vmw__x_child(val, "deviceUrl"); du != NULL; du = vmw__x_next(du, "deviceUrl")) {
			if (li->ndevs == VMW_MAX_DISKS)
				return sw_errf(e, SW_ETOOBIG, "lease has more than %d device URLs",
				    VMW_MAX_DISKS);
			d = &li->devs[li->ndevs];
			memset(d, 0, sizeof(*d));
			if (copy_text(vmw__x_child(du, "key"), d->key, sizeof(d->key)) < 0 ||
			    copy_text(vmw__x_child(du, "importKey"), d->import_key,
			    sizeof(d->import_key)) < 0 ||
			    copy_text(vmw__x_child(du, "url"), d->url, sizeof(d->url)) < 0 ||
			    copy_text(vmw__x_child(du, "sslThumbprint"), d->thumbprint,
			    sizeof(d->thumbprint)) < 0)
				return sw_errf(e, SW_ETOOBIG, "lease device URL fields too long");
			if (d->url[0] == '\0')
				return sw_errf(e, SW_EFORMAT, "lease device URL without a url");
			d->disk = vmw__x_bool(vmw__x_child(du, "disk"), &b) == 0 ? b : -1;
			if (vmw__x_i64(vmw__x_child(du, "fileSize"), &d->file_size) < 0)
				d->file_size = -1;
			li->ndevs++;
		}
	}
	return 0;
}

/* Waits until the lease is ready (or failed). */
/* The HttpNfcLease an ExportVm or ImportVApp response returns; frees the response. */
static int
returned_lease(struct vmw__resp *resp, const char *method, struct vmw_moref *lease,
    struct sw_err *e)
{
	int r = vmw__x_moref(vmw__x_child(resp->body, "returnval"), lease);

	vmw__resp_free(resp);
	return r < 0 ? sw_errf(e, SW_EFORMAT, "%s: no lease in the response", method) : 0;
}

static int
lease_wait(struct vmw_conn *c, const struct vmw_moref *lease, struct lease_info *li,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = { "state", "info", "error", NULL };
	struct lease_ud u = { c, li };
	uint64_t delay = 100;
	int r;

	for (;;) {
		memset(li, 0, sizeof(*li));
		r = vmw__props_get(c, lease, paths, lease_cb, &u, deadline_ms, cancel, e);
		if (r < 0)
			return r;
		if (strcmp(li->state, "ready") == 0)
			return 0;
		if (strcmp(li->state, "error") == 0)
			return li->error_rc < 0 ? li->error_rc :
			    sw_errf(e, SW_EREMOTE, "NFC lease %s failed", lease->value);
		if (strcmp(li->state, "initializing") != 0)
			return sw_errf(e, SW_EREMOTE, "NFC lease %s is %s", lease->value, li->state);
		if ((r = vmw__sleep(delay, deadline_ms, cancel, e)) < 0)
			return sw_errctx(e, "waiting for NFC lease %s", lease->value), r;
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
	}
}

void
vmw__lease_abort(struct vmw_conn *c, const struct vmw_moref *lease, const char *why)
{
	struct vmw_fault saved = c->fault;
	struct sw_err e;

	/* Cleanup runs even after a cancel or a missed deadline: a deadline of its own. */
	if (vmw__call(c, "HttpNfcLeaseAbort", lease, NULL, VMW_CALL_IDEMPOTENT, NULL,
	    sw_mono_ms() + CLEANUP_MS, NULL, &e) < 0)
		log_debug("vmw: HttpNfcLeaseAbort %s after '%s' failed: %s", lease->value, why, e.msg);
	/* The caller wants the fault that made us abort, not the abort's. */
	c->fault = saved;
}

static int
lease_progress(struct vmw_conn *c, const struct vmw_moref *lease, int percent,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	char args[64];

	(void)snprintf(args, sizeof(args), "<percent>%d</percent>", percent);
	return vmw__call(c, "HttpNfcLeaseProgress", lease, args, VMW_CALL_IDEMPOTENT, NULL,
	    deadline_ms, cancel, e);
}

/* An NFC URL whose host is "*" gets the vCenter host; other URLs stay as they are. */
static int
fix_url(const struct vmw_conn *c, const char *in, char *out, size_t outsz, struct sw_err *e)
{
	const char *sep = strstr(in, "://");
	int n;

	if (sep == NULL || (strncmp(in, "https://", 8) != 0 && strncmp(in, "http://", 7) != 0))
		return sw_errf(e, SW_EFORMAT, "NFC URL '%.200s' is not http(s)", in);
	if (sep[3] == '*') {
		/* A "*" with a port keeps that port; a bare "*" takes the vCenter's host and port. */
		n = snprintf(out, outsz, "%.*s%s%s", (int)(sep + 3 - in), in,
		    sep[4] == ':' ? c->hostname : c->host, sep + 4);
	} else {
		n = snprintf(out, outsz, "%s", in);
	}
	if (n < 0 || (size_t)n >= outsz)
		return sw_errf(e, SW_ETOOBIG, "NFC URL too long");
	return 0;
}

/* The certificate an NFC transfer accepts: the deviceUrl's thumbprint when present. */
static int
xfer_pin(struct vmw_conn *c, const struct lease_dev *d, struct vmw__pin *pin, struct sw_err *e)
{
	memset(pin, 0, sizeof(*pin));
	if (c->tls == VMW_TLS_INSECURE)
		return 0;
	if (d->thumbprint[0] != '\0') {
		pin->active = 1;
		/* SHA-1 on vSphere 6.x; accept a SHA-256 one from newer hosts too. */
		if (vmw_thumbprint_normalize(d->thumbprint, 20, pin->want, sizeof(pin->want)) == 0) {
			pin->alg = "sha1";
		} else if (vmw_thumbprint_normalize(d->thumbprint, 32, pin->want,
		    sizeof(pin->want)) == 0) {
			pin->alg = "sha256";
		} else {
			return sw_errf(e, SW_EFORMAT, "lease sslThumbprint '%.100s' is not a digest",
			    d->thumbprint);
		}
		return 0;
	}
	if (c->conn_pin.active)
		*pin = c->conn_pin;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Transfers                                                           */

struct xfer {
	struct vmw_conn *c;
	const struct vmw_moref *lease;
	struct vmw__pin pin;
	struct sw_sink sink;
	struct sw_source src;
	uint64_t bytes;             /* this file */
	uint64_t done;              /* finished files */
	uint64_t total;             /* expected over all files, 0 unknown */
	uint64_t deadline_ms;
	atomic_int *cancel;
	unsigned lease_every_ms;
	uint64_t last_lease_ms;
	uint64_t last_user_ms;
	int last_percent;
	vmw_progress_fn progress;
	void *ud;
	int failed;                 /* an error of ours (sink, source, lease) is in err */
	struct sw_err err;
};

static int
percent_of(const struct xfer *x)
{
	uint64_t now = x->done + x->bytes;

	if (x->total == 0)
		return 0;
	/* 100 only once everything is complete. */
	if (now >= x->total)
		return 99;
	return (int)(now * 100 / x->total);
}

/* Progress housekeeping; 0 or a negative code that must stop the transfer. */
static int
xfer_tick(struct xfer *x, int force)
{
	struct vmw_conn *c = x->c;
	struct vmw__pin *saved_pin = c->cur_pin;
	uint64_t now = sw_mono_ms();
	int pct = percent_of(x), r = 0;

	if (x->progress != NULL && (force || pct != x->last_percent ||
	    now - x->last_user_ms >= 1000)) {
		x->progress(x->ud, x->done + x->bytes, pct);
		x->last_user_ms = now;
		x->last_percent = pct;
	}
	if (x->lease != NULL && (force || now - x->last_lease_ms >= x->lease_every_ms)) {
		r = lease_progress(c, x->lease, pct, x->deadline_ms, x->cancel, &x->err);
		x->last_lease_ms = sw_mono_ms();
		/* The nested SOAP call re-pointed the connection's transfer state. */
		c->cur_pin = saved_pin;
		c->deadline_ms = x->deadline_ms;
		c->cancel = x->cancel;
		if (r < 0) {
			(void)sw_errctx(&x->err, "keeping the NFC lease alive");
			x->failed = 1;
		}
	}
	return r;
}

static int
xfer_info_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct xfer *x = ud;

	(void)dltotal; (void)ultotal;
	if (x->cancel != NULL && *x->cancel)
		return 1;
	if (x->deadline_ms != 0 && sw_mono_ms() >= x->deadline_ms)
		return 1;
	(void)dlnow; (void)ulnow;
	return xfer_tick(x, 0) < 0 ? 1 : 0;
}

static size_t
xfer_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;

	if (x->sink.write(x->sink.ud, p, len, &x->err) < 0) {
		x->failed = 1;
		return 0;
	}
	x->bytes += len;
	return len;
}

static size_t
xfer_read_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	ssize_t got = x->src.read(x->src.ud, p, size * n, &x->err);

	if (got < 0) {
		x->failed = 1;
		return CURL_READFUNC_ABORT;
	}
	x->bytes += (uint64_t)got;
	return (size_t)got;
}

/*
 * One GET (sink set) or PUT/POST (source set) of url; size is the upload's
 * length, 0 if unknown (chunked).
 */
static int
xfer_run(struct xfer *x, const char *url, const char *method, uint64_t size, struct sw_err *e)
{
	struct vmw_conn *c = x->c;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc = CURLE_OK;
	CURL *h = c->xfer;
	long status = 0;
	int r;

	x->bytes = 0;
	x->failed = 0;
	sw_err_clear(&x->err);
	if ((r = vmw__curl_prepare(c, h, x->pin.active ? &x->pin : NULL, x->deadline_ms,
	    x->cancel, e)) < 0)
		return r;
#define SETOPT(o, v) do { if (cc == CURLE_OK) cc = curl_easy_setopt(h, o, v); } while (0)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_XFERINFOFUNCTION, xfer_info_cb);
	SETOPT(CURLOPT_XFERINFODATA, x);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_FAILONERROR, 1L);
	/* Large buffers: fewer callbacks per byte on multi-GiB disks. */
	SETOPT(CURLOPT_BUFFERSIZE, 256L * 1024L);
	if (x->src.read != NULL) {
		hdrs = curl_slist_append(NULL, "Content-Type: application/x-vnd.vmware-streamVmdk");
		if (hdrs != NULL && size == 0)
			hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
		if (hdrs == NULL)
			return sw_errf(e, -ENOMEM, "out of memory");
		SETOPT(CURLOPT_UPLOAD, 1L);
		if (strcmp(method, "POST") == 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, "POST");
		SETOPT(CURLOPT_READFUNCTION, xfer_read_cb);
		SETOPT(CURLOPT_READDATA, x);
		SETOPT(CURLOPT_HTTPHEADER, hdrs);
		SETOPT(CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024L);
		if (size > 0)
			SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	} else {
		SETOPT(CURLOPT_HTTPGET, 1L);
		SETOPT(CURLOPT_WRITEFUNCTION, xfer_write_cb);
		SETOPT(CURLOPT_WRITEDATA, x);
	}
#undef SETOPT
	if (cc != CURLE_OK) {
		curl_slist_free_all(hdrs);
		return sw_errf(e, SW_EINTERNAL, "curl setup: %s", curl_easy_strerror(cc));
	}
	cc = curl_easy_perform(h);
	(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	/* Back to a plain GET without our headers (no curl_easy_reset: it drops the cookie engine). */
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(h, CURLOPT_UPLOAD, 0L);
	(void)curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	(void)curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)-1);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	(void)curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_slist_free_all(hdrs);
	c->cur_pin = x->pin.active ? &x->pin : NULL;
	c->deadline_ms = x->deadline_ms;
	c->cancel = x->cancel;
	if (x->failed) {
		if (e != NULL)
			*e = x->err;
		return x->err.code < 0 ? x->err.code : SW_EINTERNAL;
	}
	if (cc == CURLE_HTTP_RETURNED_ERROR)
		return sw_errf(e, status == 401 || status == 403 ? SW_EAUTH : SW_EREMOTE,
		    "%s of NFC URL: HTTP status %ld", method, status);
	if (cc != CURLE_OK)
		return vmw__curl_error(c, cc, strcmp(method, "GET") == 0 ? "NFC download" :
		    "NFC upload", errbuf, e);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Export                                                              */

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
is_disk_url(const struct lease_dev *d)
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
	struct lease_info *li = NULL;
	struct vmw_moref lease;
	struct xfer x;
	struct vmw_nfc_disk nd;
	char url[MAX_URL], file[512];
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
	if ((r = returned_lease(&resp, "ExportVm", &lease, e)) < 0)
		goto out;
	lease_open = 1;
	if ((r = lease_wait(c, &lease, li, deadline_ms, cancel, e)) < 0)
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
		const struct lease_dev *d = &li->devs[i];
		struct vmw_export_file *f = &res->files[res->nfiles];

		if (!is_disk_url(d))
			continue;
		if (snprintf(file, sizeof(file), "%s-disk%zu.vmdk", o->name, res->nfiles) >=
		    (int)sizeof(file)) {
			r = sw_errf(e, -EINVAL, "export name too long");
			goto out;
		}
		if ((r = fix_url(c, d->url, url, sizeof(url), e)) < 0 ||
		    (r = xfer_pin(c, d, &x.pin, e)) < 0)
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
		r = xfer_run(&x, url, "GET", 0, e);
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
		if ((r = xfer_tick(&x, 1)) < 0) {
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
	free(li);
	return r;
}

/* ------------------------------------------------------------------ */
/* Import                                                              */

void
vmw_import_result_free(struct vmw_import_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->ndisks; i++)
		free(r->disk_paths[i]);
	free(r->disk_paths);
	free(r);
}

struct file_item {
	char device_id[256];
	char path[512];
	int create;
	int64_t size;
};

/*
 * Elements of VirtualMachineConfigSpec that the XSD sequence puts after
 * extraConfig: vCenter's deserializer insists on the order, so our entries
 * go before the first of these.
 */
static const char *const after_extra_config[] = {
	"swapPlacement", "bootOptions", "vAppConfig", "ftInfo", "repConfig",
	"vAppConfigRemoved", "vAssertsEnabled", "changeTrackingEnabled", "firmware",
	"maxMksConnections", "guestAutoLockEnabled", "managedBy",
	"memoryReservationLockedToMax", "nestedHVEnabled", "vPMCEnabled",
	"scheduledHardwareUpgradeInfo", "vmProfile", "messageBusTunnelEnabled", "crypto",
	"migrateEncryption", "sgxInfo", "ftEncryptionMode", "guestMonitoringModeInfo",
	"sevEnabled", "numaInfo", "pmemFailoverEnabled", "vmxStatsCollectionEnabled",
	"vmOpNotificationToAppEnabled", "vmOpNotificationTimeout", "deviceSwap", "simultaneousThreads",
	"pmem", "deviceGroups", "fixedPassthruHotPlugEnabled", NULL,
};

static int
tag_option(xmlNode *cfg, xmlNode *before, xmlNs *xsi, const char *xsd_string, const char *key,
    const char *value)
{
	xmlNode *ov, *v;

	if ((ov = xmlNewNode(cfg->ns, (const xmlChar *)"extraConfig")) == NULL)
		return -ENOMEM;
	if (before != NULL)
		(void)xmlAddPrevSibling(before, ov);
	else
		(void)xmlAddChild(cfg, ov);
	if (xmlNewNsProp(ov, xsi, (const xmlChar *)"type", (const xmlChar *)"OptionValue") == NULL ||
	    xmlNewTextChild(ov, cfg->ns, (const xmlChar *)"key", (const xmlChar *)key) == NULL ||
	    (v = xmlNewTextChild(ov, cfg->ns, (const xmlChar *)"value",
	    (const xmlChar *)value)) == NULL ||
	    xmlNewNsProp(v, xsi, (const xmlChar *)"type", (const xmlChar *)xsd_string) == NULL)
		return -ENOMEM;
	return 0;
}

/* Adds the snapworker tag to the configSpec of an import spec (no configSpec: nothing). */
static int
spec_add_tag(xmlNode *spec, const char *tag, struct sw_err *e)
{
	xmlNode *cfg = vmw__x_child(spec, "configSpec"), *n, *before = NULL;
	xmlNs *xsi, *xsd;
	char created[24], xsd_string[64];
	size_t i;

	if (cfg == NULL)
		return 0;
	xsi = xmlSearchNsByHref(cfg->doc, cfg, (const xmlChar *)VMW_XSI_NS);
	if (xsi == NULL)
		xsi = xmlNewNs(cfg, (const xmlChar *)VMW_XSI_NS, (const xmlChar *)"xsi");
	xsd = xmlSearchNsByHref(cfg->doc, cfg, (const xmlChar *)"http://www.w3.org/2001/XMLSchema");
	if (xsd == NULL)
		xsd = xmlNewNs(cfg, (const xmlChar *)"http://www.w3.org/2001/XMLSchema",
		    (const xmlChar *)"xsd");
	if (xsi == NULL || xsd == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	if (snprintf(xsd_string, sizeof(xsd_string), "%s%sstring",
	    xsd->prefix != NULL ? (const char *)xsd->prefix : "",
	    xsd->prefix != NULL ? ":" : "") >= (int)sizeof(xsd_string))
		return sw_errf(e, SW_EFORMAT, "import spec: odd XSD namespace prefix");
	for (n = cfg->children; n != NULL && before == NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		for (i = 0; after_extra_config[i] != NULL; i++)
			if (xmlStrcmp(n->name, (const xmlChar *)after_extra_config[i]) == 0) {
				before = n;
				break;
			}
	}
	(void)snprintf(created, sizeof(created), "%" PRId64, (int64_t)time(NULL));
	if (tag_option(cfg, before, xsi, xsd_string, VMW_TAG_KEY, tag) < 0 ||
	    tag_option(cfg, before, xsi, xsd_string, VMW_CREATED_KEY, created) < 0)
		return sw_errf(e, -ENOMEM, "out of memory");
	return 0;
}

/*
 * The importSpec of a CreateImportSpec result, copied and renamed <spec>,
 * as XML text, with the snapworker tag added when tag is not NULL.
 */
static int
spec_xml(xmlNode *spec, const char *tag, struct vmw__req *q, struct sw_err *e)
{
	xmlDoc *doc = NULL;
	xmlNode *copy;
	xmlBuffer *xb = NULL;
	int r = 0;

	/*
	 * Copying into a document of its own re-declares the namespaces the
	 * subtree uses (the xsi prefix of its typed values) on the copy.
	 */
	if ((doc = xmlNewDoc((const xmlChar *)"1.0")) == NULL ||
	    (copy = xmlDocCopyNode(spec, doc, 1)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	(void)xmlDocSetRootElement(doc, copy);
	xmlNodeSetName(copy, (const xmlChar *)"spec");
	if (tag != NULL && (r = spec_add_tag(copy, tag, e)) < 0)
		goto out;
	if ((xb = xmlBufferCreate()) == NULL || xmlNodeDump(xb, doc, copy, 0, 0) < 0) {
		r = sw_errf(e, -ENOMEM, "cannot serialise the import spec");
		goto out;
	}
	vmw__req_raw(q, (const char *)xmlBufferContent(xb));
out:
	if (xb != NULL)
		xmlBufferFree(xb);
	if (doc != NULL)
		xmlFreeDoc(doc);
	return r;
}

static int
import_spec(struct vmw_conn *c, const struct vmw_import_opts *o, struct vmw__req *spec,
    struct file_item *items, size_t *ret_nitems, uint64_t deadline_ms, atomic_int *cancel,
    struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw__req q;
	xmlNode *rv, *n;
	size_t k = 0;
	int b, r;

	if (c->sc.ovf_manager.type[0] == '\0')
		return sw_errf(e, SW_EUNSUPPORTED, "server has no OvfManager");
	vmw__req_init(&q);
	vmw__req_text(&q, "ovfDescriptor", o->ovf);
	vmw__req_moref(&q, "resourcePool", o->pool);
	vmw__req_moref(&q, "datastore", o->datastore);
	vmw__req_raw(&q, "<cisp><locale></locale><deploymentOption></deploymentOption>");
	vmw__req_text(&q, "entityName", o->vm_name);
	if (o->host != NULL && o->host->type[0] != '\0')
		vmw__req_moref(&q, "hostSystem", o->host);
	vmw__req_raw(&q, "<diskProvisioning>thin</diskProvisioning></cisp>");
	r = vmw__call_req(c, "CreateImportSpec", &c->sc.ovf_manager, &q, VMW_CALL_IDEMPOTENT,
	    &resp, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		return r;
	rv = vmw__x_child(resp.body, "returnval");
	if ((n = vmw__x_child(rv, "error")) != NULL) {
		r = vmw__inner_fault(c, n, "CreateImportSpec", e);
		goto out;
	}
	if ((n = vmw__x_child(rv, "importSpec")) == NULL) {
		r = sw_errf(e, SW_EFORMAT, "CreateImportSpec returned no import spec");
		goto out;
	}
	if ((r = spec_xml(n, o->tag, spec, e)) < 0)
		goto out;
	for (n = vmw__x_child(rv, "fileItem"); n != NULL; n = vmw__x_next(n, "fileItem")) {
		if (k == VMW_MAX_DISKS) {
			r = sw_errf(e, SW_ETOOBIG, "more than %d files to import", VMW_MAX_DISKS);
			goto out;
		}
		memset(&items[k], 0, sizeof(items[k]));
		if (vmw__x_text(vmw__x_child(n, "deviceId"), items[k].device_id,
		    sizeof(items[k].device_id)) < 0 ||
		    vmw__x_text(vmw__x_child(n, "path"), items[k].path, sizeof(items[k].path)) < 0) {
			r = sw_errf(e, SW_EFORMAT, "CreateImportSpec: bad file item");
			goto out;
		}
		items[k].create = vmw__x_bool(vmw__x_child(n, "create"), &b) == 0 ? b : 1;
		if (vmw__x_i64(vmw__x_child(n, "size"), &items[k].size) < 0)
			items[k].size = -1;
		k++;
	}
	*ret_nitems = k;
out:
	vmw__resp_free(&resp);
	return r;
}

int
vmw_import_vm(struct vmw_conn *c, const struct vmw_import_opts *o,
    struct vmw_import_result **ret_result, uint64_t deadline_ms, atomic_int *cancel,
    struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw_import_result *res = NULL;
	struct vmw_vm_info *info = NULL;
	struct file_item *items = NULL;
	struct lease_info *li = NULL;
	struct vmw__req q;
	struct vmw_moref lease;
	struct xfer x;
	char url[MAX_URL];
	size_t nitems = 0, i, k;
	uint64_t size;
	int r, lease_open = 0;

	if (c == NULL || o == NULL || o->ovf == NULL || o->vm_name == NULL || o->pool == NULL ||
	    o->folder == NULL || o->datastore == NULL || o->source_open == NULL ||
	    ret_result == NULL)
		return sw_errf(e, -EINVAL, "import: bad arguments");
	memset(&x, 0, sizeof(x));
	vmw__req_init(&q);
	if ((items = calloc(VMW_MAX_DISKS, sizeof(*items))) == NULL ||
	    (li = calloc(1, sizeof(*li))) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = import_spec(c, o, &q, items, &nitems, deadline_ms, cancel, e)) < 0)
		goto out;
	vmw__req_moref(&q, "folder", o->folder);
	if (o->host != NULL && o->host->type[0] != '\0')
		vmw__req_moref(&q, "host", o->host);
	r = vmw__call_req(c, "ImportVApp", o->pool, &q, 0, &resp, deadline_ms, cancel, e);
	if (r < 0)
		goto out;
	if ((r = returned_lease(&resp, "ImportVApp", &lease, e)) < 0)
		goto out;
	lease_open = 1;
	if ((r = lease_wait(c, &lease, li, deadline_ms, cancel, e)) < 0)
		goto out;
	if (strcmp(li->entity.type, "VirtualMachine") != 0) {
		r = sw_errf(e, SW_EFORMAT, "ImportVApp lease names no VM");
		goto out;
	}
	x.c = c;
	x.lease = &lease;
	x.deadline_ms = deadline_ms;
	x.cancel = cancel;
	x.lease_every_ms = (o->lease_progress_s ? o->lease_progress_s : 20) * 1000u;
	x.last_lease_ms = sw_mono_ms();
	x.last_percent = -1;
	x.progress = o->progress;
	x.ud = o->ud;
	for (i = 0; i < nitems; i++)
		if (items[i].size > 0)
			x.total += (uint64_t)items[i].size;
	for (i = 0; i < nitems; i++) {
		const struct lease_dev *d = NULL;

		for (k = 0; k < li->ndevs && d == NULL; k++)
			if (strcmp(li->devs[k].import_key, items[i].device_id) == 0)
				d = &li->devs[k];
		if (d == NULL) {
			r = sw_errf(e, SW_EREMOTE, "import lease has no URL for %s", items[i].path);
			goto out;
		}
		if ((r = fix_url(c, d->url, url, sizeof(url), e)) < 0 ||
		    (r = xfer_pin(c, d, &x.pin, e)) < 0)
			goto out;
		memset(&x.src, 0, sizeof(x.src));
		size = 0;
		if ((r = o->source_open(o->ud, items[i].path, &x.src, &size, e)) < 0)
			goto out;
		if (x.src.read == NULL) {
			r = sw_errf(e, -EINVAL, "import: source of %s has no read", items[i].path);
			goto out;
		}
		log_debug("vmw: import %s to %s", items[i].path, url);
		r = xfer_run(&x, url, items[i].create ? "PUT" : "POST", size, e);
		if (o->source_close != NULL)
			o->source_close(o->ud, items[i].path, &x.src);
		memset(&x.src, 0, sizeof(x.src));
		if (r < 0) {
			(void)sw_errctx(e, "uploading %s", items[i].path);
			goto out;
		}
		x.done += x.bytes;
		x.bytes = 0;
		if ((r = xfer_tick(&x, 1)) < 0) {
			if (e != NULL)
				*e = x.err;
			goto out;
		}
	}
	r = vmw__call(c, "HttpNfcLeaseComplete", &lease, NULL, 0, NULL, deadline_ms, cancel, e);
	if (r < 0)
		goto out;
	lease_open = 0;
	if (o->progress != NULL)
		o->progress(o->ud, x.done, 100);
	if ((r = vmw_vm_info_get(c, &li->entity, &info, deadline_ms, cancel, e)) < 0)
		goto out;
	/* A server that dropped the spec's extraConfig: tag it now, or it could never be cleaned. */
	if (o->tag != NULL && (info->tag == NULL || strcmp(info->tag, o->tag) != 0) &&
	    (r = vmw__vm_tag(c, &li->entity, o->tag, deadline_ms, cancel, e)) < 0)
		goto out;
	if ((res = calloc(1, sizeof(*res))) == NULL ||
	    (res->disk_paths = calloc(info->ndisks ? info->ndisks : 1, sizeof(char *))) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	res->vm = li->entity;
	for (i = 0; i < info->ndisks; i++) {
		if ((res->disk_paths[i] = strdup(info->disks[i].file)) == NULL) {
			r = sw_errf(e, -ENOMEM, "out of memory");
			goto out;
		}
		res->ndisks++;
	}
	*ret_result = res;
	res = NULL;
out:
	if (lease_open)
		vmw__lease_abort(c, &lease, e != NULL ? e->msg : "error");
	vmw__resp_free(&resp);
	vmw__req_free(&q);
	vmw_import_result_free(res);
	vmw_vm_info_free(info);
	free(items);
	free(li);
	return r;
}
