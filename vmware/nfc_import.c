/*
 * ImportVApp over NFC: the import spec (OvfManager.CreateImportSpec, with
 * our tag added to its extraConfig), then each file streamed from the
 * caller's source to the lease's URL.
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
	struct vmw__lease_info *li = NULL;
	struct vmw__req q;
	struct vmw_moref lease;
	struct vmw__xfer x;
	char url[VMW_NFC_MAX_URL];
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
	if ((r = vmw__lease_returned(&resp, "ImportVApp", &lease, e)) < 0)
		goto out;
	lease_open = 1;
	if ((r = vmw__lease_wait(c, &lease, li, deadline_ms, cancel, e)) < 0)
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
		const struct vmw__lease_dev *d = NULL;

		for (k = 0; k < li->ndevs && d == NULL; k++)
			if (strcmp(li->devs[k].import_key, items[i].device_id) == 0)
				d = &li->devs[k];
		if (d == NULL) {
			r = sw_errf(e, SW_EREMOTE, "import lease has no URL for %s", items[i].path);
			goto out;
		}
		if ((r = vmw__nfc_url(c, d->url, url, sizeof(url), e)) < 0 ||
		    (r = vmw__xfer_pin(c, d, &x.pin, e)) < 0)
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
		r = vmw__xfer_run(&x, url, items[i].create ? "PUT" : "POST", size, e);
		if (o->source_close != NULL)
			o->source_close(o->ud, items[i].path, &x.src);
		memset(&x.src, 0, sizeof(x.src));
		if (r < 0) {
			(void)sw_errctx(e, "uploading %s", items[i].path);
			goto out;
		}
		x.done += x.bytes;
		x.bytes = 0;
		if ((r = vmw__xfer_tick(&x, 1)) < 0) {
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
