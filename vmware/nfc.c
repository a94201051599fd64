/*
 * NFC export and import, the common part: HttpNfcLease handling (wait,
 * progress, abort, the deviceUrl list) and streaming disk transfers.  Disk
 * bytes go straight between libcurl's buffers and the caller's sink/source,
 * so memory stays constant whatever the disk size.  The lease is kept alive
 * with HttpNfcLeaseProgress from inside the transfer (curl's xferinfo
 * callback) on the connection's SOAP handle.  ExportVm is in nfc_export.c,
 * ImportVApp in nfc_import.c.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "common/io.h"
#include "common/log.h"

#define CLEANUP_MS 30000

struct lease_ud {
	struct vmw_conn *c;
	struct vmw__lease_info *li;
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
	struct vmw__lease_info *li = u->li;
	struct vmw__lease_dev *d;
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

/* The HttpNfcLease an ExportVm or ImportVApp response returns; frees the response. */
int
vmw__lease_returned(struct vmw__resp *resp, const char *method, struct vmw_moref *lease,
    struct sw_err *e)
{
	int r = vmw__x_moref(vmw__x_child(resp->body, "returnval"), lease);

	vmw__resp_free(resp);
	return r < 0 ? sw_errf(e, SW_EFORMAT, "%s: no lease in the response", method) : 0;
}

/* Waits until the lease is ready (or failed). */
int
vmw__lease_wait(struct vmw_conn *c, const struct vmw_moref *lease, struct vmw__lease_info *li,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = { "state", "info", "error", NULL };
	struct lease_ud u = { c, li };
	uint64_t delay = VMW_POLL_FIRST_MS;
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
		delay = vmw__poll_next(delay);
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

int
vmw_lease_abort(struct vmw_conn *c, const char *lease, struct sw_err *e)
{
	struct vmw_moref m;
	int r;

	if (c == NULL || lease == NULL || lease[0] == '\0')
		return sw_errf(e, -EINVAL, "lease abort: bad arguments");
	memset(&m, 0, sizeof(m));
	snprintf(m.type, sizeof(m.type), "HttpNfcLease");
	if (snprintf(m.value, sizeof(m.value), "%s", lease) >= (int)sizeof(m.value))
		return sw_errf(e, SW_EFORMAT, "lease id too long");
	r = vmw__call(c, "HttpNfcLeaseAbort", &m, NULL, VMW_CALL_IDEMPOTENT, NULL,
	    sw_mono_ms() + CLEANUP_MS, NULL, e);
	/* InvalidState: "thrown if the lease has already been aborted" (or ended). */
	if (r < 0 && c->fault.type[0] != '\0' && strcmp(c->fault.type, "InvalidState") == 0)
		r = SW_ENOTFOUND;
	return r;
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
int
vmw__nfc_url(const struct vmw_conn *c, const char *in, char *out, size_t outsz,
    struct sw_err *e)
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
int
vmw__xfer_pin(struct vmw_conn *c, const struct vmw__lease_dev *d, struct vmw__pin *pin,
    struct sw_err *e)
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

static int
percent_of(const struct vmw__xfer *x)
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
int
vmw__xfer_tick(struct vmw__xfer *x, int force)
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
	struct vmw__xfer *x = ud;

	(void)dltotal; (void)ultotal;
	if (x->cancel != NULL && *x->cancel)
		return 1;
	if (x->deadline_ms != 0 && sw_mono_ms() >= x->deadline_ms)
		return 1;
	(void)dlnow; (void)ulnow;
	return vmw__xfer_tick(x, 0) < 0 ? 1 : 0;
}

void
vmw__xfer_free(struct vmw__xfer *x)
{
	free(x->blk);
	x->blk = NULL;
	x->blk_len = 0;
}

/* Hands the gathered block to the sink; 0 or -1 (x->err set). */
static int
xfer_flush(struct vmw__xfer *x)
{
	size_t n = x->blk_len;

	x->blk_len = 0;
	if (n == 0)
		return 0;
	if (x->sink.write(x->sink.ud, x->blk, n, &x->err) < 0) {
		x->failed = 1;
		return -1;
	}
	x->bytes += n;
	return 0;
}

static size_t
xfer_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct vmw__xfer *x = ud;
	size_t len = size * n, left = len, k;

	if (x->blk == NULL) {
		/* Without a block (out of memory), every piece goes to the sink as it comes. */
		if (x->sink.write(x->sink.ud, p, len, &x->err) < 0) {
			x->failed = 1;
			return 0;
		}
		x->bytes += len;
		return len;
	}
	while (left > 0) {
		/* A full block's worth arriving at an empty block goes straight through. */
		if (x->blk_len == 0 && left >= VMW_XFER_BLOCK) {
			if (x->sink.write(x->sink.ud, p, left, &x->err) < 0) {
				x->failed = 1;
				return 0;
			}
			x->bytes += left;
			break;
		}
		k = VMW_XFER_BLOCK - x->blk_len;
		if (k > left)
			k = left;
		memcpy(x->blk + x->blk_len, p, k);
		x->blk_len += k;
		p += k;
		left -= k;
		if (x->blk_len == VMW_XFER_BLOCK && xfer_flush(x) < 0)
			return 0;
	}
	return len;
}

static size_t
xfer_read_cb(char *p, size_t size, size_t n, void *ud)
{
	struct vmw__xfer *x = ud;
	ssize_t got = x->src.read(x->src.ud, p, size * n, &x->err);

	if (got < 0) {
		x->failed = 1;
		return CURL_READFUNC_ABORT;
	}
	x->bytes += (uint64_t)got;
	return (size_t)got;
}

/* Appends to *list; on failure the list is left as it was (curl would drop it). */
static int
add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (n == NULL)
		return -ENOMEM;
	*list = n;
	return 0;
}

/*
 * One GET (sink set) or PUT/POST (source set) of url; size is the upload's
 * length, 0 if unknown (chunked).
 */
int
vmw__xfer_run(struct vmw__xfer *x, const char *url, const char *method, uint64_t size,
    struct sw_err *e)
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
	x->blk_len = 0;
	sw_err_clear(&x->err);
	if (x->src.read == NULL && x->blk == NULL)
		x->blk = malloc(VMW_XFER_BLOCK);
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
		/*
		 * No "Expect: 100-continue": curl would hold the body back for the
		 * server's interim answer (a round trip per disk, up to a second
		 * where a server never sends one). An NFC URL is the lease's own,
		 * already authorised; a refusal still ends the transfer early.
		 */
		if ((r = add_header(&hdrs, "Content-Type: application/x-vnd.vmware-streamVmdk")) == 0 &&
		    (r = add_header(&hdrs, "Expect:")) == 0 && size == 0)
			r = add_header(&hdrs, "Transfer-Encoding: chunked");
		if (r < 0) {
			curl_slist_free_all(hdrs);
			return sw_errf(e, -ENOMEM, "out of memory");
		}
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
	/* The tail of a complete download; a failed one's is dropped. */
	if (cc == CURLE_OK && !x->failed)
		(void)xfer_flush(x);
	x->blk_len = 0;
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
