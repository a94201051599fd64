/*
 * Worker VMs: a minimal powered-off VM whose single disk is an existing
 * chain (a snapshot's frozen disk), so it can be exported; destroyed only
 * after its disk is detached, since Destroy_Task deletes every attached
 * disk's files -- the volume itself (CloudStack bug #5334).
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io.h"
#include "common/num.h"

#define MAX_TAGGED 10000

/* The datastore name of "[ds] path" into buf. */
static int
ds_name_of(const char *path, char *buf, size_t bufsz)
{
	const char *close;
	size_t len;

	if (path == NULL || path[0] != '[' || (close = strchr(path, ']')) == NULL)
		return -EINVAL;
	len = (size_t)(close - path - 1);
	if (len == 0 || len >= bufsz)
		return -EINVAL;
	memcpy(buf, path + 1, len);
	buf[len] = '\0';
	return 0;
}

static void
option_value(struct vmw__req *q, const char *key, const char *value)
{
	vmw__req_raw(q, "<extraConfig xsi:type=\"OptionValue\">");
	vmw__req_text(q, "key", key);
	vmw__req_raw(q, "<value xsi:type=\"xsd:string\">");
	if (q->rc == 0)
		q->rc = vmw__xml_escape(&q->b, value);
	vmw__req_raw(q, "</value></extraConfig>");
}

int
vmw_worker_vm_create(struct vmw_conn *c, const struct vmw_worker_spec *spec,
    struct vmw_moref *ret_vm, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	struct vmw_moref vm;
	char ds[128], when[32], created[24], annotation[512];
	time_t now = time(NULL);
	int r;

	if (c == NULL || spec == NULL || spec->name == NULL || spec->tag == NULL ||
	    spec->folder == NULL || spec->pool == NULL || spec->disk == NULL ||
	    spec->disk->file == NULL || ret_vm == NULL)
		return sw_errf(e, -EINVAL, "worker VM: name, tag, folder, pool and disk are required");
	if (spec->datastore_name != NULL) {
		if (snprintf(ds, sizeof(ds), "%s", spec->datastore_name) >= (int)sizeof(ds))
			return sw_errf(e, -EINVAL, "worker VM: datastore name too long");
	} else if (ds_name_of(spec->disk->file, ds, sizeof(ds)) < 0) {
		return sw_errf(e, -EINVAL, "worker VM: '%s' is not a datastore path",
		    spec->disk->file);
	}
	sw_time_iso8601((int64_t)now, when, sizeof(when));
	(void)snprintf(created, sizeof(created), "%" PRId64, (int64_t)now);
	if (snprintf(annotation, sizeof(annotation),
	    "snapworker worker VM for command %s, created %s; safe to delete after detaching "
	    "its disk", spec->tag, when) >= (int)sizeof(annotation))
		return sw_errf(e, -EINVAL, "worker VM: tag too long");

	vmw__req_init(&q);
	/* Element order follows the XSD sequence: vCenter's deserializer insists. */
	vmw__req_raw(&q, "<config>");
	vmw__req_text(&q, "name", spec->name);
	vmw__req_text(&q, "guestId", spec->guest_id != NULL ? spec->guest_id : "otherGuest64");
	vmw__req_text(&q, "annotation", annotation);
	vmw__req_raw(&q, "<files><vmPathName>[");
	if (q.rc == 0)
		q.rc = vmw__xml_escape(&q.b, ds);
	vmw__req_raw(&q, "]</vmPathName></files>");
	vmw__req_raw(&q, "<numCPUs>1</numCPUs><memoryMB>32</memoryMB>");
	vmw__req_raw(&q, "<deviceChange><operation>add</operation>"
	    "<device xsi:type=\"VirtualLsiLogicController\"><key>-100</key>"
	    "<busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device></deviceChange>");
	/* No fileOperation: the disk is attached as it is, never created or copied. */
	vmw__req_raw(&q, "<deviceChange><operation>add</operation>"
	    "<device xsi:type=\"VirtualDisk\"><key>-101</key>"
	    "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">");
	vmw__req_text(&q, "fileName", spec->disk->file);
	vmw__req_raw(&q, "<diskMode>persistent</diskMode></backing>"
	    "<controllerKey>-100</controllerKey><unitNumber>0</unitNumber>");
	vmw__req_i64(&q, "capacityInKB", (int64_t)(spec->disk->capacity_bytes / 1024u));
	vmw__req_raw(&q, "</device></deviceChange>");
	option_value(&q, VMW_TAG_KEY, spec->tag);
	option_value(&q, VMW_CREATED_KEY, created);
	vmw__req_raw(&q, "</config>");
	vmw__req_moref(&q, "pool", spec->pool);
	if (spec->host != NULL && spec->host->type[0] != '\0')
		vmw__req_moref(&q, "host", spec->host);
	r = vmw__run_task(c, "CreateVM_Task", spec->folder, &q, &vm, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		return sw_errctx(e, "creating worker VM %s", spec->name), r;
	if (strcmp(vm.type, "VirtualMachine") != 0)
		return sw_errf(e, SW_EFORMAT, "CreateVM_Task returned no VM");
	*ret_vm = vm;
	return 0;
}

static int
detach_disks(struct vmw_conn *c, const struct vmw_vm_info *info, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	size_t i;
	int r;

	vmw__req_init(&q);
	vmw__req_raw(&q, "<spec>");
	for (i = 0; i < info->ndisks; i++) {
		const struct vmw_disk *d = &info->disks[i];

		/* operation remove without fileOperation: the files stay on the datastore. */
		vmw__req_raw(&q, "<deviceChange><operation>remove</operation>"
		    "<device xsi:type=\"VirtualDisk\">");
		vmw__req_i64(&q, "key", d->key);
		vmw__req_raw(&q, "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">");
		vmw__req_text(&q, "fileName", d->file);
		vmw__req_text(&q, "diskMode", d->disk_mode != NULL ? d->disk_mode : "persistent");
		vmw__req_raw(&q, "</backing>");
		vmw__req_i64(&q, "controllerKey", d->controller_key);
		vmw__req_i64(&q, "unitNumber", d->unit_number);
		vmw__req_i64(&q, "capacityInKB", (int64_t)(d->capacity_bytes / 1024u));
		vmw__req_raw(&q, "</device></deviceChange>");
	}
	vmw__req_raw(&q, "</spec>");
	r = vmw__run_task(c, "ReconfigVM_Task", &info->vm, &q, NULL, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		(void)sw_errctx(e, "detaching the disks of %s", info->vm.value);
	return r;
}

/*
 * A worker VM's disks made safe from it: its tag is checked (refusal says
 * what is left undone without it), it is powered off and its disks are
 * detached; *ret_detached (may be NULL) tells whether it had any.
 */
static int
release_disks(struct vmw_conn *c, const struct vmw_moref *vm, const char *refusal,
    int *ret_detached, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw_vm_info *info = NULL;
	int r;

	if (ret_detached != NULL)
		*ret_detached = 0;
	if ((r = vmw_vm_info_get(c, vm, &info, deadline_ms, cancel, e)) < 0)
		return r;
	/* Never touch a VM we did not make: its disks are someone's volumes. */
	if (info->tag == NULL) {
		r = sw_errf(e, -EPERM, "VM %s (%s) has no %s tag: not a worker VM, %s",
		    vm->value, info->name != NULL ? info->name : "?", VMW_TAG_KEY, refusal);
		goto out;
	}
	if (info->power_state != NULL && strcmp(info->power_state, "poweredOff") != 0 &&
	    (r = vmw_vm_power_off(c, vm, deadline_ms, cancel, e)) < 0)
		goto out;
	if (info->ndisks > 0) {
		r = detach_disks(c, info, deadline_ms, cancel, e);
		if (ret_detached != NULL)
			*ret_detached = 1;
	}
out:
	vmw_vm_info_free(info);
	return r;
}

int
vmw_worker_vm_detach(struct vmw_conn *c, const struct vmw_moref *vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	if (c == NULL || vm == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	return release_disks(c, vm, "disks left alone", NULL, deadline_ms, cancel, e);
}

int
vmw_virtual_disk_move(struct vmw_conn *c, const struct vmw_moref *dc, const char *src,
    const char *dst, int force, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	int r;

	if (c == NULL || dc == NULL || src == NULL || dst == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	if (c->sc.virtual_disk_manager.type[0] == '\0')
		return sw_errf(e, SW_EUNSUPPORTED, "server has no VirtualDiskManager");
	vmw__req_init(&q);
	/* XSD order: sourceName, sourceDatacenter, destName, destDatacenter, force. */
	vmw__req_text(&q, "sourceName", src);
	vmw__req_moref(&q, "sourceDatacenter", dc);
	vmw__req_text(&q, "destName", dst);
	vmw__req_moref(&q, "destDatacenter", dc);
	vmw__req_bool(&q, "force", force != 0);
	r = vmw__run_task(c, "MoveVirtualDisk_Task", &c->sc.virtual_disk_manager, &q, NULL,
	    deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		(void)sw_errctx(e, "moving %s to %s", src, dst);
	return r;
}

int
vmw_worker_vm_destroy(struct vmw_conn *c, const struct vmw_moref *vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw_vm_info *info = NULL;
	struct vmw__req q;
	int r, detached = 0;

	if (c == NULL || vm == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	/* Destroying a VM deletes its disks: detach them first (CloudStack bug #5334). */
	if ((r = release_disks(c, vm, "not destroyed", &detached, deadline_ms, cancel, e)) < 0)
		return r;
	if (detached) {
		if ((r = vmw_vm_info_get(c, vm, &info, deadline_ms, cancel, e)) < 0)
			goto out;
		if (info->ndisks > 0) {
			r = sw_errf(e, SW_EREMOTE, "VM %s still has %zu disk(s) after detaching: "
			    "not destroyed", vm->value, info->ndisks);
			goto out;
		}
	}
	vmw__req_init(&q);
	r = vmw__run_task(c, "Destroy_Task", vm, &q, NULL, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		(void)sw_errctx(e, "destroying worker VM %s", vm->value);
out:
	vmw_vm_info_free(info);
	return r;
}

struct list_ud {
	struct vmw_tagged_vm *vms;
	size_t n, cap;
	int oom;
};

/* Finds (or adds) the entry of obj. */
static struct vmw_tagged_vm *
list_entry(struct list_ud *u, const struct vmw_moref *obj)
{
	struct vmw_tagged_vm *v;
	size_t i;

	for (i = u->n; i > 0; i--)
		if (vmw_moref_cmp(&u->vms[i - 1].vm, obj) == 0)
			return &u->vms[i - 1];
	if (u->n == u->cap) {
		if (u->cap >= MAX_TAGGED)
			return NULL;
		u->cap = u->cap ? u->cap * 2 : 16;
		v = realloc(u->vms, u->cap * sizeof(*v));
		if (v == NULL) {
			u->oom = 1;
			return NULL;
		}
		u->vms = v;
	}
	v = &u->vms[u->n++];
	memset(v, 0, sizeof(*v));
	v->vm = *obj;
	v->created = -1;
	return v;
}

static int
list_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct list_ud *u = ud;
	struct vmw_tagged_vm *v = list_entry(u, obj);
	xmlNode *ov;
	char buf[32];
	uint64_t t;

	if (v == NULL)
		return u->oom ? sw_errf(e, -ENOMEM, "out of memory") :
		    sw_errf(e, SW_ETOOBIG, "more than %d VMs", MAX_TAGGED);
	if (strcmp(name, "name") == 0) {
		if (vmw__x_text(val, v->name, sizeof(v->name)) < 0)
			v->name[0] = '\0';
		return 0;
	}
	if (strcmp(name, "config.extraConfig") != 0)
		return 0;
	for (ov = val != NULL ? val->children : NULL; ov != NULL; ov = ov->next) {
		if (ov->type != XML_ELEMENT_NODE)
			continue;
		if (vmw__x_eq(vmw__x_child(ov, "key"), VMW_TAG_KEY)) {
			if (vmw__x_text(vmw__x_child(ov, "value"), v->tag, sizeof(v->tag)) < 0)
				v->tag[0] = '\0';
		} else if (vmw__x_eq(vmw__x_child(ov, "key"), VMW_CREATED_KEY) &&
		    vmw__x_text(vmw__x_child(ov, "value"), buf, sizeof(buf)) == 0 &&
		    sw_parse_u64(buf, 0, INT64_MAX, &t) == 0) {
			v->created = (int64_t)t;
		}
	}
	return 0;
}

int
vmw_worker_vm_list(struct vmw_conn *c, struct vmw_tagged_vm **ret_vms, size_t *ret_n,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = { "name", "config.extraConfig", NULL };
	struct list_ud u;
	size_t i, k;
	int r;

	if (c == NULL || ret_vms == NULL || ret_n == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	memset(&u, 0, sizeof(u));
	r = vmw__props_all(c, "VirtualMachine", paths, list_cb, &u, deadline_ms, cancel, e);
	if (r < 0) {
		free(u.vms);
		return r;
	}
	/* Keep only the tagged ones. */
	for (i = 0, k = 0; i < u.n; i++)
		if (u.vms[i].tag[0] != '\0')
			u.vms[k++] = u.vms[i];
	*ret_vms = u.vms;
	*ret_n = k;
	return 0;
}

int
vmw__vm_tag(struct vmw_conn *c, const struct vmw_moref *vm, const char *tag,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	char created[24];
	int r;

	if (c == NULL || vm == NULL || tag == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	(void)snprintf(created, sizeof(created), "%" PRId64, (int64_t)time(NULL));
	vmw__req_init(&q);
	vmw__req_raw(&q, "<spec>");
	option_value(&q, VMW_TAG_KEY, tag);
	option_value(&q, VMW_CREATED_KEY, created);
	vmw__req_raw(&q, "</spec>");
	r = vmw__run_task(c, "ReconfigVM_Task", vm, &q, NULL, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		(void)sw_errctx(e, "tagging %s", vm->value);
	return r;
}
