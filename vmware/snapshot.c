/*
 * VM snapshots: create (no memory), find the disk chain a snapshot froze for
 * a volume, remove with consolidation.  Also power-off, a task of the same
 * kind.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Starts a task method and waits for it. */
int
vmw__run_task(struct vmw_conn *c, const char *method, const struct vmw_moref *this,
    struct vmw__req *args, struct vmw_moref *ret_result, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw_moref task;
	int r;

	r = vmw__call_req(c, method, this, args, 0, &resp, deadline_ms, cancel, e);
	if (r < 0)
		return r;
	r = vmw__x_moref(vmw__x_child(resp.body, "returnval"), &task);
	vmw__resp_free(&resp);
	if (r < 0)
		return sw_errf(e, SW_EFORMAT, "%s: no task in the response", method);
	return vmw_task_wait(c, &task, ret_result, deadline_ms, cancel, e);
}

int
vmw_snapshot_create(struct vmw_conn *c, const struct vmw_moref *vm, const char *name,
    const char *description, int quiesce, struct vmw_moref *ret_snapshot,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	struct vmw_moref snap;
	int r;

	if (c == NULL || vm == NULL || name == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	vmw__req_init(&q);
	vmw__req_text(&q, "name", name);
	if (description != NULL)
		vmw__req_text(&q, "description", description);
	/* No memory image: a disk-only snapshot is all a backup needs, and it is fast. */
	vmw__req_bool(&q, "memory", 0);
	vmw__req_bool(&q, "quiesce", quiesce);
	r = vmw__run_task(c, "CreateSnapshot_Task", vm, &q, &snap, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		return sw_errctx(e, "snapshot of %s", vm->value), r;
	if (strcmp(snap.type, "VirtualMachineSnapshot") != 0)
		return sw_errf(e, SW_EFORMAT, "CreateSnapshot_Task returned no snapshot");
	if (ret_snapshot != NULL)
		*ret_snapshot = snap;
	return 0;
}

int
vmw_snapshot_remove(struct vmw_conn *c, const struct vmw_moref *snapshot,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	int r;

	if (c == NULL || snapshot == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	vmw__req_init(&q);
	vmw__req_bool(&q, "removeChildren", 0);
	vmw__req_bool(&q, "consolidate", 1);
	r = vmw__run_task(c, "RemoveSnapshot_Task", snapshot, &q, NULL, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		(void)sw_errctx(e, "removing snapshot %s", snapshot->value);
	return r;
}

int
vmw_vm_power_off(struct vmw_conn *c, const struct vmw_moref *vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	int r;

	if (c == NULL || vm == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	vmw__req_init(&q);
	r = vmw__run_task(c, "PowerOffVM_Task", vm, &q, NULL, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		(void)sw_errctx(e, "power-off of %s", vm->value);
	return r;
}

/* ------------------------------------------------------------------ */
/* The snapshot's disk for a volume                                     */

struct snap_ud {
	struct vmw_disk *disks;
	size_t ndisks;
	const struct vmw_moref *snapshot;
	xmlNode *layout;            /* copy of the VM's layoutEx */
	int oom;
};

static int
snap_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct snap_ud *u = ud;

	(void)obj;
	if (strcmp(name, "config.hardware.device") == 0 && u->disks == NULL)
		return vmw__parse_devices(val, &u->disks, &u->ndisks, e);
	if (strcmp(name, "layoutEx") == 0 && u->layout == NULL &&
	    (u->layout = xmlCopyNode(val, 1)) == NULL)
		u->oom = 1;
	return 0;
}

/* Applies the VM's layoutEx.snapshot entry of this snapshot to its disks. */
static int
snap_layout(struct snap_ud *u)
{
	xmlNode *sl;
	struct vmw_moref key;

	for (sl = vmw__x_child(u->layout, "snapshot"); sl != NULL;
	    sl = vmw__x_next(sl, "snapshot")) {
		if (vmw__x_moref(vmw__x_child(sl, "key"), &key) < 0 ||
		    vmw_moref_cmp(&key, u->snapshot) != 0)
			continue;
		return vmw__apply_layout(u->layout, sl, u->disks, u->ndisks);
	}
	return 0;
}

int
vmw_snapshot_disk(struct vmw_conn *c, const struct vmw_moref *vm,
    const struct vmw_moref *snapshot, const char *ds_path, struct vmw_disk **ret_disk,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const spaths[] = { "config.hardware.device", NULL };
	static const char *const vpaths[] = { "layoutEx", NULL };
	struct snap_ud u;
	struct vmw_vm_info *info = NULL;
	const struct vmw_disk *cur, *found = NULL;
	struct vmw_disk *out = NULL;
	size_t i;
	int r;

	if (c == NULL || vm == NULL || snapshot == NULL || ds_path == NULL || ret_disk == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	memset(&u, 0, sizeof(u));
	u.snapshot = snapshot;
	r = vmw__props_get(c, snapshot, spaths, snap_cb, &u, deadline_ms, cancel, e);
	if (r < 0)
		goto out;
	r = vmw__props_get(c, vm, vpaths, snap_cb, &u, deadline_ms, cancel, e);
	if (r < 0)
		goto out;
	if (u.oom || (u.layout != NULL && snap_layout(&u) < 0)) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	/* The path names a file of the chain the snapshot froze ... */
	for (i = 0; i < u.ndisks && found == NULL; i++)
		if (vmw__disk_has(&u.disks[i], ds_path))
			found = &u.disks[i];
	/* ... or the VM's current file (a newer delta): match it by device key. */
	if (found == NULL) {
		r = vmw_vm_info_get(c, vm, &info, deadline_ms, cancel, e);
		if (r < 0)
			goto out;
		cur = vmw_vm_info_disk(info, ds_path);
		for (i = 0; cur != NULL && i < u.ndisks && found == NULL; i++)
			if (u.disks[i].key == cur->key)
				found = &u.disks[i];
	}
	if (found == NULL) {
		r = sw_errf(e, SW_ENOTFOUND, "snapshot %s of %s has no disk with file %s",
		    snapshot->value, vm->value, ds_path);
		goto out;
	}
	if ((out = calloc(1, sizeof(*out))) == NULL || vmw__disk_copy(found, out) < 0) {
		free(out);
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	*ret_disk = out;
	r = 0;
out:
	vmw_vm_info_free(info);
	if (u.layout != NULL)
		xmlFreeNode(u.layout);
	vmw__disks_free(u.disks, u.ndisks);
	return r;
}

/* ------------------------------------------------------------------ */
/* A snapshot by its name                                               */

struct find_ud {
	const char *name;
	struct vmw_moref found;
	int n;
};

/*
 * Walks what RetrieveProperties returned for snapshot.rootSnapshotList: every
 * element with a <name> and a <snapshot> child is a VirtualMachineSnapshotTree
 * (its children trees are in <childSnapshotList>, walked the same way).
 */
static void
find_in_tree(xmlNode *n, struct find_ud *u, int depth)
{
	xmlNode *k, *nm;
	struct vmw_moref m;

	if (n == NULL || depth > 200)
		return;
	nm = vmw__x_child(n, "name");
	if (nm != NULL && vmw__x_eq(nm, u->name) &&
	    vmw__x_moref(vmw__x_child(n, "snapshot"), &m) == 0 && u->n++ == 0)
		u->found = m;
	for (k = n->children; k != NULL; k = k->next) {
		xmlNode *g;

		if (k->type != XML_ELEMENT_NODE)
			continue;
		for (g = k->children; g != NULL && g->type != XML_ELEMENT_NODE; g = g->next)
			;
		if (g != NULL)
			find_in_tree(k, u, depth + 1);
	}
}

static int
find_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	(void)obj;
	(void)e;
	if (strcmp(name, "snapshot.rootSnapshotList") == 0)
		find_in_tree(val, ud, 0);
	return 0;
}

int
vmw_snapshot_find(struct vmw_conn *c, const struct vmw_moref *vm, const char *name,
    struct vmw_moref *ret_snapshot, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = { "snapshot.rootSnapshotList", NULL };
	struct find_ud u;
	int r;

	if (c == NULL || vm == NULL || name == NULL || ret_snapshot == NULL)
		return sw_errf(e, -EINVAL, "bad arguments");
	memset(&u, 0, sizeof(u));
	u.name = name;
	r = vmw__props_get(c, vm, paths, find_cb, &u, deadline_ms, cancel, e);
	if (r < 0)
		return r;
	if (u.n == 0)
		return sw_errf(e, SW_ENOTFOUND, "no snapshot named '%s' on %s", name, vm->value);
	*ret_snapshot = u.found;
	return u.n;
}
