/*
 * Where to put a VM when a command names only a datastore (CreateVolume):
 * the datastore by name, a connected host that mounts it, that host's
 * compute resource's root resource pool, and the datacenter's VM folder.
 * A handful of property-collector reads; nothing is cached, since the
 * inventory may change between commands.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_MOUNTS 64
#define MAX_DEPTH 64

struct ds_find {
	const char *name;
	struct vmw_moref found;
	int matches;
};

static int
ds_name_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val,
    struct sw_err *e)
{
	struct ds_find *f = ud;

	(void)e;
	if (strcmp(name, "name") == 0 && vmw__x_eq(val, f->name)) {
		if (f->matches++ == 0)
			f->found = *obj;
	}
	return 0;
}

struct mounts {
	struct vmw_moref hosts[MAX_MOUNTS];
	size_t n;
};

static int
ds_host_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val,
    struct sw_err *e)
{
	struct mounts *m = ud;
	xmlNode *dm, *mi;
	int b;

	(void)obj; (void)e;
	if (strcmp(name, "host") != 0)
		return 0;
	for (dm = vmw__x_child(val, "DatastoreHostMount"); dm != NULL;
	    dm = vmw__x_next(dm, "DatastoreHostMount")) {
		if (m->n == MAX_MOUNTS)
			break;
		mi = vmw__x_child(dm, "mountInfo");
		/* Absent flags count as true: older servers leave them out. */
		if (vmw__x_bool(vmw__x_child(mi, "accessible"), &b) == 0 && !b)
			continue;
		if (vmw__x_bool(vmw__x_child(mi, "mounted"), &b) == 0 && !b)
			continue;
		if (vmw__x_moref(vmw__x_child(dm, "key"), &m->hosts[m->n]) == 0)
			m->n++;
	}
	return 0;
}

struct host_props {
	struct vmw_moref parent, pool, vm_folder;
	char conn[32];
	int maintenance;
};

static int
host_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val,
    struct sw_err *e)
{
	struct host_props *h = ud;
	int b;

	(void)obj; (void)e;
	if (strcmp(name, "parent") == 0)
		(void)vmw__x_moref(val, &h->parent);
	else if (strcmp(name, "resourcePool") == 0)
		(void)vmw__x_moref(val, &h->pool);
	else if (strcmp(name, "vmFolder") == 0)
		(void)vmw__x_moref(val, &h->vm_folder);
	else if (strcmp(name, "runtime.connectionState") == 0)
		(void)vmw__x_text(val, h->conn, sizeof(h->conn));
	else if (strcmp(name, "runtime.inMaintenanceMode") == 0 && vmw__x_bool(val, &b) == 0)
		h->maintenance = b;
	return 0;
}

/* The first usable host of m, its compute resource's resource pool. */
static int
pick_host(struct vmw_conn *c, const struct mounts *m, struct vmw_placement *p,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const hpaths[] = { "parent", "runtime.connectionState",
		"runtime.inMaintenanceMode", NULL };
	static const char *const cpaths[] = { "resourcePool", NULL };
	struct host_props h, cr;
	size_t i;
	int r;

	for (i = 0; i < m->n; i++) {
		memset(&h, 0, sizeof(h));
		r = vmw__props_get(c, &m->hosts[i], hpaths, host_cb, &h, deadline_ms, cancel, e);
		if (r == SW_ENOTFOUND)
			continue;
		if (r < 0)
			return r;
		if ((h.conn[0] != '\0' && strcmp(h.conn, "connected") != 0) || h.maintenance ||
		    h.parent.type[0] == '\0')
			continue;
		memset(&cr, 0, sizeof(cr));
		r = vmw__props_get(c, &h.parent, cpaths, host_cb, &cr, deadline_ms, cancel, e);
		if (r < 0)
			return r;
		if (cr.pool.type[0] == '\0')
			continue;
		p->host = m->hosts[i];
		p->pool = cr.pool;
		return 0;
	}
	return sw_errf(e, SW_ENOTFOUND, "datastore %s: no connected host outside maintenance "
	    "mounts it", p->datastore_name);
}

/* Walks up the parents of the datastore to its datacenter. */
static int
find_dc(struct vmw_conn *c, struct vmw_placement *p, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e)
{
	static const char *const ppaths[] = { "parent", NULL };
	static const char *const dpaths[] = { "vmFolder", NULL };
	struct vmw_moref cur = p->datastore;
	struct host_props h;
	int depth, r;

	for (depth = 0; depth < MAX_DEPTH; depth++) {
		memset(&h, 0, sizeof(h));
		if (strcmp(cur.type, "Datacenter") == 0) {
			r = vmw__props_get(c, &cur, dpaths, host_cb, &h, deadline_ms, cancel, e);
			if (r < 0)
				return r;
			if (h.vm_folder.type[0] == '\0')
				return sw_errf(e, SW_EFORMAT, "datacenter %s has no VM folder",
				    cur.value);
			p->datacenter = cur;
			p->folder = h.vm_folder;
			return 0;
		}
		r = vmw__props_get(c, &cur, ppaths, host_cb, &h, deadline_ms, cancel, e);
		if (r < 0)
			return r;
		if (h.parent.type[0] == '\0')
			return sw_errf(e, SW_ENOTFOUND, "datastore %s is not inside a datacenter",
			    p->datastore_name);
		cur = h.parent;
	}
	return sw_errf(e, SW_ETOOBIG, "inventory deeper than %d levels", MAX_DEPTH);
}

int
vmw_datastore_placement(struct vmw_conn *c, const char *ds_name, struct vmw_placement *ret,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const npaths[] = { "name", NULL };
	static const char *const mpaths[] = { "host", NULL };
	struct vmw_placement p;
	struct ds_find f;
	struct mounts m;
	int r;

	if (c == NULL || ds_name == NULL || ds_name[0] == '\0' || ret == NULL)
		return sw_errf(e, -EINVAL, "placement: datastore name required");
	memset(&p, 0, sizeof(p));
	if (snprintf(p.datastore_name, sizeof(p.datastore_name), "%s", ds_name) >=
	    (int)sizeof(p.datastore_name))
		return sw_errf(e, -EINVAL, "datastore name too long");
	memset(&f, 0, sizeof(f));
	f.name = ds_name;
	r = vmw__props_all(c, "Datastore", npaths, ds_name_cb, &f, deadline_ms, cancel, e);
	if (r < 0)
		return r;
	if (f.matches == 0)
		return sw_errf(e, SW_ENOTFOUND, "no datastore named %s", ds_name);
	/* Names are unique per datacenter only: guessing which one is meant could import elsewhere. */
	if (f.matches > 1)
		return sw_errf(e, SW_ENOTFOUND, "%d datastores are named %s", f.matches, ds_name);
	p.datastore = f.found;
	memset(&m, 0, sizeof(m));
	r = vmw__props_get(c, &p.datastore, mpaths, ds_host_cb, &m, deadline_ms, cancel, e);
	if (r < 0)
		return r;
	if ((r = pick_host(c, &m, &p, deadline_ms, cancel, e)) < 0 ||
	    (r = find_dc(c, &p, deadline_ms, cancel, e)) < 0)
		return r;
	*ret = p;
	return 0;
}
