/*
 * Inventory: finding a VM, reading its disks (with their backing chains),
 * its host, pool, datacenter and folder.
 */
#include "vmware/vmw_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"

/* ------------------------------------------------------------------ */
/* Datastore paths                                                     */

/* Splits "[ds] dir/file" into the datastore name and the path, without the blanks between. */
static int
ds_split(const char *p, const char **ds, size_t *dslen, const char **rest)
{
	const char *close;

	while (*p == ' ')
		p++;
	if (*p != '[' || (close = strchr(p, ']')) == NULL)
		return -1;
	*ds = p + 1;
	*dslen = (size_t)(close - p - 1);
	p = close + 1;
	while (*p == ' ' || *p == '/')
		p++;
	*rest = p;
	return 0;
}

int
vmw__ds_path_eq(const char *a, const char *b)
{
	const char *da, *db, *ra, *rb;
	size_t la, lb;

	if (a == NULL || b == NULL)
		return 0;
	if (ds_split(a, &da, &la, &ra) < 0 || ds_split(b, &db, &lb, &rb) < 0)
		return strcmp(a, b) == 0;
	return la == lb && memcmp(da, db, la) == 0 && strcmp(ra, rb) == 0;
}

int
vmw__disk_has(const struct vmw_disk *d, const char *ds_path)
{
	size_t i;

	if (vmw__ds_path_eq(d->file, ds_path))
		return 1;
	for (i = 0; i < d->nchain; i++)
		if (vmw__ds_path_eq(d->chain[i], ds_path))
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Disks                                                               */

static void
disk_clear(struct vmw_disk *d)
{
	size_t i;

	free(d->file);
	free(d->disk_mode);
	free(d->uuid);
	for (i = 0; i < d->nchain; i++)
		free(d->chain[i]);
	free(d->chain);
	memset(d, 0, sizeof(*d));
}

void
vmw__disks_free(struct vmw_disk *d, size_t n)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < n; i++)
		disk_clear(&d[i]);
	free(d);
}

void
vmw_disk_free(struct vmw_disk *d)
{
	vmw__disks_free(d, 1);
}

int
vmw__disk_copy(const struct vmw_disk *src, struct vmw_disk *dst)
{
	struct vmw_disk d;
	size_t i;

	d = *src;
	d.file = NULL;
	d.disk_mode = NULL;
	d.uuid = NULL;
	d.chain = NULL;
	d.nchain = 0;
	if ((src->file != NULL && (d.file = strdup(src->file)) == NULL) ||
	    (src->disk_mode != NULL && (d.disk_mode = strdup(src->disk_mode)) == NULL) ||
	    (src->uuid != NULL && (d.uuid = strdup(src->uuid)) == NULL))
		goto fail;
	if (src->nchain > 0) {
		if ((d.chain = calloc(src->nchain, sizeof(char *))) == NULL)
			goto fail;
		for (i = 0; i < src->nchain; i++) {
			if ((d.chain[i] = strdup(src->chain[i])) == NULL)
				goto fail;
			d.nchain++;
		}
	}
	*dst = d;
	return 0;
fail:
	disk_clear(&d);
	return -ENOMEM;
}

/* Replaces d's chain by names (taken over; names[0] = base). */
static void
set_chain(struct vmw_disk *d, char **names, size_t n)
{
	size_t i;

	for (i = 0; i < d->nchain; i++)
		free(d->chain[i]);
	free(d->chain);
	d->chain = names;
	d->nchain = n;
}

static int
parse_disk(xmlNode *dev, struct vmw_disk *d, struct sw_err *e)
{
	xmlNode *backing = vmw__x_child(dev, "backing"), *b;
	char *tmp[VMW_MAX_CHAIN];
	char **chain;
	size_t n = 0, i;
	int64_t v;

	memset(d, 0, sizeof(*d));
	if (vmw__x_i64(vmw__x_child(dev, "key"), &v) < 0 || v < INT32_MIN || v > INT32_MAX)
		return sw_errf(e, SW_EFORMAT, "virtual disk without a valid key");
	d->key = (int)v;
	d->controller_key = vmw__x_i64(vmw__x_child(dev, "controllerKey"), &v) == 0 &&
	    v >= INT32_MIN && v <= INT32_MAX ? (int)v : -1;
	d->unit_number = vmw__x_i64(vmw__x_child(dev, "unitNumber"), &v) == 0 &&
	    v >= INT32_MIN && v <= INT32_MAX ? (int)v : -1;
	if (vmw__x_i64(vmw__x_child(dev, "capacityInBytes"), &v) == 0 && v >= 0)
		d->capacity_bytes = (uint64_t)v;
	else if (vmw__x_i64(vmw__x_child(dev, "capacityInKB"), &v) == 0 && v >= 0 &&
	    v <= INT64_MAX / 1024)
		d->capacity_bytes = (uint64_t)v * 1024u;
	if (backing == NULL || (d->file = vmw__x_strdup(vmw__x_child(backing, "fileName"))) == NULL)
		return sw_errf(e, SW_EFORMAT, "virtual disk %d has no file backing", d->key);
	(void)vmw__x_moref(vmw__x_child(backing, "datastore"), &d->datastore);
	d->disk_mode = vmw__x_strdup(vmw__x_child(backing, "diskMode"));
	d->uuid = vmw__x_strdup(vmw__x_child(backing, "uuid"));
	/* backing.parent.parent... goes from the top towards the base. */
	for (b = backing; b != NULL; b = vmw__x_child(b, "parent")) {
		if (n == VMW_MAX_CHAIN) {
			for (i = 0; i < n; i++)
				free(tmp[i]);
			return sw_errf(e, SW_ETOOBIG, "disk %d: backing chain longer than %d", d->key,
			    VMW_MAX_CHAIN);
		}
		if ((tmp[n] = vmw__x_strdup(vmw__x_child(b, "fileName"))) == NULL)
			break;
		n++;
	}
	if ((chain = calloc(n ? n : 1, sizeof(char *))) == NULL) {
		for (i = 0; i < n; i++)
			free(tmp[i]);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++)
		chain[i] = tmp[n - 1 - i];
	set_chain(d, chain, n);
	return 0;
}

int
vmw__parse_devices(xmlNode *val, struct vmw_disk **ret_disks, size_t *ret_n, struct sw_err *e)
{
	struct vmw_disk *disks;
	size_t n = 0;
	xmlNode *dev;
	const char *type;
	int r;

	if ((disks = calloc(VMW_MAX_DISKS, sizeof(*disks))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	for (dev = val != NULL ? val->children : NULL; dev != NULL; dev = dev->next) {
		if (dev->type != XML_ELEMENT_NODE)
			continue;
		type = vmw__x_type(dev);
		if (type == NULL || strcmp(type, "VirtualDisk") != 0)
			continue;
		if (n == VMW_MAX_DISKS) {
			vmw__disks_free(disks, n);
			return sw_errf(e, SW_ETOOBIG, "more than %d virtual disks", VMW_MAX_DISKS);
		}
		if ((r = parse_disk(dev, &disks[n], e)) < 0) {
			disk_clear(&disks[n]);
			vmw__disks_free(disks, n);
			return r;
		}
		n++;
	}
	*ret_disks = disks;
	*ret_n = n;
	return 0;
}

/* The diskDescriptor file of one chain unit (its fileKey list). */
static char *
unit_descriptor(xmlNode *files_parent, xmlNode *unit)
{
	xmlNode *fk, *f;
	int64_t want, key;

	for (fk = vmw__x_child(unit, "fileKey"); fk != NULL; fk = vmw__x_next(fk, "fileKey")) {
		if (vmw__x_i64(fk, &want) < 0)
			continue;
		for (f = vmw__x_child(files_parent, "file"); f != NULL; f = vmw__x_next(f, "file")) {
			if (vmw__x_i64(vmw__x_child(f, "key"), &key) < 0 || key != want)
				continue;
			if (vmw__x_eq(vmw__x_child(f, "type"), "diskDescriptor"))
				return vmw__x_strdup(vmw__x_child(f, "name"));
		}
	}
	return NULL;
}

int
vmw__apply_layout(xmlNode *files_parent, xmlNode *disks_parent, struct vmw_disk *disks, size_t n)
{
	xmlNode *dl, *unit;
	char **names;
	size_t i, k, cnt;
	int64_t key;

	for (dl = vmw__x_child(disks_parent, "disk"); dl != NULL; dl = vmw__x_next(dl, "disk")) {
		if (vmw__x_i64(vmw__x_child(dl, "key"), &key) < 0)
			continue;
		for (i = 0; i < n && disks[i].key != key; i++)
			;
		if (i == n)
			continue;
		cnt = 0;
		for (unit = vmw__x_child(dl, "chain"); unit != NULL; unit = vmw__x_next(unit, "chain"))
			cnt++;
		if (cnt == 0 || cnt > VMW_MAX_CHAIN)
			continue;
		if ((names = calloc(cnt, sizeof(char *))) == NULL)
			return -ENOMEM;
		k = 0;
		for (unit = vmw__x_child(dl, "chain"); unit != NULL; unit = vmw__x_next(unit, "chain"))
			if ((names[k] = unit_descriptor(files_parent, unit)) != NULL)
				k++;
		/*
		 * The layout lists the chain base first; trust it only when it ends
		 * at the disk's own file, else keep what the backing said.
		 */
		if (k == cnt && vmw__ds_path_eq(names[k - 1], disks[i].file) &&
		    k >= disks[i].nchain) {
			set_chain(&disks[i], names, k);
		} else {
			while (k > 0)
				free(names[--k]);
			free(names);
		}
	}
	return 0;
}

const struct vmw_disk *
vmw_vm_info_disk(const struct vmw_vm_info *info, const char *ds_path)
{
	size_t i;

	if (info == NULL || ds_path == NULL)
		return NULL;
	for (i = 0; i < info->ndisks; i++)
		if (vmw__disk_has(&info->disks[i], ds_path))
			return &info->disks[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Finding a VM                                                        */

static int
find_call(struct vmw_conn *c, const char *method, struct vmw__req *q, const char *key,
    struct vmw_moref *ret_vm, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw_moref m;
	xmlNode *rv;
	int r;

	if (c->sc.search_index.type[0] == '\0')
		return sw_errf(e, SW_EUNSUPPORTED, "server has no SearchIndex");
	r = vmw__call_req(c, method, &c->sc.search_index, q, VMW_CALL_IDEMPOTENT, &resp,
	    deadline_ms, cancel, e);
	if (r < 0)
		return r;
	rv = vmw__x_child(resp.body, "returnval");
	if (rv == NULL) {
		r = sw_errf(e, SW_ENOTFOUND, "no VM '%s'", key);
	} else if (vmw__x_moref(rv, &m) < 0) {
		r = sw_errf(e, SW_EFORMAT, "%s: bad reference in the response", method);
	} else if (strcmp(m.type, "VirtualMachine") != 0) {
		r = sw_errf(e, SW_ENOTFOUND, "'%s' is a %s, not a VM", key, m.type);
	} else {
		*ret_vm = m;
	}
	vmw__resp_free(&resp);
	return r;
}

static int
find_uuid(struct vmw_conn *c, const char *uuid, int instance, struct vmw_moref *ret_vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	int r;

	vmw__req_init(&q);
	vmw__req_text(&q, "uuid", uuid);
	vmw__req_bool(&q, "vmSearch", 1);
	vmw__req_bool(&q, "instanceUuid", instance);
	r = find_call(c, "FindByUuid", &q, uuid, ret_vm, deadline_ms, cancel, e);
	vmw__req_free(&q);
	return r;
}

struct name_ud {
	const char *name;
	struct vmw_moref found;
	int count;
};

static int
name_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct name_ud *n = ud;

	(void)e;
	if (strcmp(name, "name") == 0 && vmw__x_eq(val, n->name)) {
		n->found = *obj;
		n->count++;
	}
	return 0;
}

static int
looks_like_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

int
vmw_vm_find(struct vmw_conn *c, enum vmw_vm_by by, const char *key, struct vmw_moref *ret_vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = { "name", NULL };
	struct name_ud nu;
	struct vmw__req q;
	int r;

	if (c == NULL || key == NULL || key[0] == '\0' || ret_vm == NULL)
		return sw_errf(e, -EINVAL, "no VM named");
	switch (by) {
	case VMW_VM_BY_INSTANCE_UUID:
		return find_uuid(c, key, 1, ret_vm, deadline_ms, cancel, e);
	case VMW_VM_BY_BIOS_UUID:
		return find_uuid(c, key, 0, ret_vm, deadline_ms, cancel, e);
	case VMW_VM_BY_PATH:
		vmw__req_init(&q);
		vmw__req_text(&q, "inventoryPath", key);
		r = find_call(c, "FindByInventoryPath", &q, key, ret_vm, deadline_ms, cancel, e);
		vmw__req_free(&q);
		return r;
	case VMW_VM_BY_NAME:
		memset(&nu, 0, sizeof(nu));
		nu.name = key;
		r = vmw__props_all(c, "VirtualMachine", paths, name_cb, &nu, deadline_ms, cancel, e);
		if (r < 0)
			return r;
		if (nu.count == 0)
			return sw_errf(e, SW_ENOTFOUND, "no VM named '%s'", key);
		if (nu.count > 1)
			return sw_errf(e, SW_ENOTFOUND, "%d VMs are named '%s': use a UUID", nu.count,
			    key);
		*ret_vm = nu.found;
		return 0;
	case VMW_VM_BY_ANY:
		if (looks_like_uuid(key)) {
			r = find_uuid(c, key, 1, ret_vm, deadline_ms, cancel, e);
			if (r != SW_ENOTFOUND)
				return r;
			/* Listing every VM to match a UUID-shaped name is not worth it. */
			r = find_uuid(c, key, 0, ret_vm, deadline_ms, cancel, e);
			if (r == SW_ENOTFOUND)
				(void)sw_errf(e, r, "no VM with instance or BIOS UUID %s", key);
			return r;
		}
		if (strchr(key, '/') != NULL)
			return vmw_vm_find(c, VMW_VM_BY_PATH, key, ret_vm, deadline_ms, cancel, e);
		return vmw_vm_find(c, VMW_VM_BY_NAME, key, ret_vm, deadline_ms, cancel, e);
	}
	return sw_errf(e, -EINVAL, "unknown VM lookup %d", (int)by);
}

/* ------------------------------------------------------------------ */
/* VM information                                                      */

void
vmw_vm_info_free(struct vmw_vm_info *info)
{
	if (info == NULL)
		return;
	free(info->name);
	free(info->instance_uuid);
	free(info->bios_uuid);
	free(info->power_state);
	free(info->guest_id);
	free(info->vmx_path);
	free(info->annotation);
	free(info->tag);
	vmw__disks_free(info->disks, info->ndisks);
	free(info);
}

struct info_ud {
	struct vmw_vm_info *info;
	xmlNode *layout;            /* a copy of layoutEx, applied after the devices */
	struct vmw_moref parent;
	int oom;
};

static void
take_str(char **dst, xmlNode *val, int *oom)
{
	free(*dst);
	*dst = vmw__x_strdup(val);
	if (*dst == NULL && val != NULL)
		*oom = 1;
}

static void
extra_config(struct vmw_vm_info *info, xmlNode *val, int *oom)
{
	xmlNode *ov;
	uint64_t t;
	char buf[32];

	for (ov = val != NULL ? val->children : NULL; ov != NULL; ov = ov->next) {
		if (ov->type != XML_ELEMENT_NODE)
			continue;
		if (vmw__x_eq(vmw__x_child(ov, "key"), VMW_TAG_KEY)) {
			take_str(&info->tag, vmw__x_child(ov, "value"), oom);
		} else if (vmw__x_eq(vmw__x_child(ov, "key"), VMW_CREATED_KEY) &&
		    vmw__x_text(vmw__x_child(ov, "value"), buf, sizeof(buf)) == 0 &&
		    sw_parse_u64(buf, 0, INT64_MAX, &t) == 0) {
			info->created = (int64_t)t;
		}
	}
}

static int
info_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct info_ud *u = ud;
	struct vmw_vm_info *info = u->info;
	xmlNode *n;

	(void)obj;
	if (strcmp(name, "name") == 0)
		take_str(&info->name, val, &u->oom);
	else if (strcmp(name, "config.uuid") == 0)
		take_str(&info->bios_uuid, val, &u->oom);
	else if (strcmp(name, "config.instanceUuid") == 0)
		take_str(&info->instance_uuid, val, &u->oom);
	else if (strcmp(name, "runtime.powerState") == 0)
		take_str(&info->power_state, val, &u->oom);
	else if (strcmp(name, "config.guestId") == 0)
		take_str(&info->guest_id, val, &u->oom);
	else if (strcmp(name, "config.files.vmPathName") == 0)
		take_str(&info->vmx_path, val, &u->oom);
	else if (strcmp(name, "config.annotation") == 0)
		take_str(&info->annotation, val, &u->oom);
	else if (strcmp(name, "config.extraConfig") == 0)
		extra_config(info, val, &u->oom);
	else if (strcmp(name, "runtime.host") == 0)
		(void)vmw__x_moref(val, &info->host);
	else if (strcmp(name, "resourcePool") == 0)
		(void)vmw__x_moref(val, &info->resource_pool);
	else if (strcmp(name, "parent") == 0)
		(void)vmw__x_moref(val, &u->parent);
	else if (strcmp(name, "datastore") == 0)
		(void)vmw__x_moref(vmw__x_child(val, "ManagedObjectReference"), &info->datastore);
	else if (strcmp(name, "snapshot") == 0)
		(void)vmw__x_moref(vmw__x_child(val, "currentSnapshot"), &info->current_snapshot);
	else if (strcmp(name, "config.hardware.device") == 0) {
		if (info->disks != NULL)
			return sw_errf(e, SW_EFORMAT, "device list given twice");
		return vmw__parse_devices(val, &info->disks, &info->ndisks, e);
	} else if (strcmp(name, "layoutEx") == 0 && u->layout == NULL) {
		n = xmlCopyNode(val, 1);
		if (n == NULL)
			u->oom = 1;
		u->layout = n;
	}
	return 0;
}

struct parent_ud {
	struct vmw_moref parent;
	struct vmw_moref vm_folder;
};

static int
parent_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct parent_ud *p = ud;

	(void)obj; (void)e;
	if (strcmp(name, "parent") == 0)
		(void)vmw__x_moref(val, &p->parent);
	else if (strcmp(name, "vmFolder") == 0)
		(void)vmw__x_moref(val, &p->vm_folder);
	return 0;
}

/* Walks up the parents of `start` to its datacenter. */
static int
find_datacenter(struct vmw_conn *c, const struct vmw_moref *start, struct vmw_vm_info *info,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const ppaths[] = { "parent", NULL };
	static const char *const dpaths[] = { "vmFolder", NULL };
	struct vmw_moref cur = *start;
	struct parent_ud p;
	int depth, r;

	for (depth = 0; depth < 64; depth++) {
		if (strcmp(cur.type, "Datacenter") == 0) {
			memset(&p, 0, sizeof(p));
			r = vmw__props_get(c, &cur, dpaths, parent_cb, &p, deadline_ms, cancel, e);
			if (r < 0)
				return r;
			info->datacenter = cur;
			info->vm_folder = p.vm_folder;
			return 0;
		}
		memset(&p, 0, sizeof(p));
		r = vmw__props_get(c, &cur, ppaths, parent_cb, &p, deadline_ms, cancel, e);
		if (r < 0)
			return r;
		if (p.parent.type[0] == '\0')
			return sw_errf(e, SW_ENOTFOUND, "%s %s is not inside a datacenter", cur.type,
			    cur.value);
		cur = p.parent;
	}
	return sw_errf(e, SW_ETOOBIG, "inventory deeper than 64 levels");
}

int
vmw_vm_info_get(struct vmw_conn *c, const struct vmw_moref *vm, struct vmw_vm_info **ret_info,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = {
		"name", "config.uuid", "config.instanceUuid", "runtime.powerState",
		"config.guestId", "config.files.vmPathName", "config.annotation",
		"config.extraConfig", "runtime.host", "resourcePool", "parent", "datastore",
		"snapshot", "config.hardware.device", "layoutEx", NULL
	};
	struct info_ud u;
	int r;

	if (c == NULL || vm == NULL || ret_info == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	memset(&u, 0, sizeof(u));
	if ((u.info = calloc(1, sizeof(*u.info))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	u.info->vm = *vm;
	u.info->created = -1;
	r = vmw__props_get(c, vm, paths, info_cb, &u, deadline_ms, cancel, e);
	if (r < 0)
		goto fail;
	if (u.oom) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (u.info->disks == NULL &&
	    (u.info->disks = calloc(1, sizeof(struct vmw_disk))) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (u.layout != NULL &&
	    vmw__apply_layout(u.layout, u.layout, u.info->disks, u.info->ndisks) < 0) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (u.parent.type[0] != '\0' &&
	    (r = find_datacenter(c, &u.parent, u.info, deadline_ms, cancel, e)) < 0)
		goto fail;
	if (u.layout != NULL)
		xmlFreeNode(u.layout);
	*ret_info = u.info;
	return 0;
fail:
	if (u.layout != NULL)
		xmlFreeNode(u.layout);
	vmw_vm_info_free(u.info);
	if (r == SW_ENOTFOUND)
		(void)sw_errctx(e, "VM %s", vm->value);
	return r;
}
