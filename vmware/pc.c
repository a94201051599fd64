/*
 * Property collector (RetrievePropertiesEx with continuation, container
 * views) and task waiting.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/io.h"
#include "common/log.h"

/* A fault inside a response (missingSet, task error): record it like a SOAP fault. */
int
vmw__inner_fault(struct vmw_conn *c, xmlNode *lmf, const char *what, struct sw_err *e)
{
	xmlNode *fault = vmw__x_child(lmf, "fault");
	const char *type = vmw__x_type(fault);
	struct vmw_fault *f = &c->fault;
	size_t len;

	memset(f, 0, sizeof(*f));
	if (type == NULL)
		type = "SystemError";
	len = strlen(type);
	if (len >= sizeof(f->type))
		len = sizeof(f->type) - 1;
	memcpy(f->type, type, len);
	f->type[len] = '\0';
	if (vmw__x_text(vmw__x_child(lmf, "localizedMessage"), f->message,
	    sizeof(f->message)) < 0)
		f->message[0] = '\0';
	return sw_errf(e, vmw__fault_code(f->type), "%s: %s: %s", what, f->type,
	    f->message[0] != '\0' ? f->message : "(no message)");
}

static int
walk_page(struct vmw_conn *c, xmlNode *rv, vmw__prop_cb cb, void *ud, size_t *nobjects,
    struct sw_err *e)
{
	xmlNode *obj, *ps, *ms;
	struct vmw_moref m;
	char name[256];
	int r;

	for (obj = vmw__x_child(rv, "objects"); obj != NULL; obj = vmw__x_next(obj, "objects")) {
		if (vmw__x_moref(vmw__x_child(obj, "obj"), &m) < 0)
			return sw_errf(e, SW_EFORMAT, "RetrievePropertiesEx: object without a reference");
		(*nobjects)++;
		for (ms = vmw__x_child(obj, "missingSet"); ms != NULL;
		    ms = vmw__x_next(ms, "missingSet")) {
			if (vmw__x_text(vmw__x_child(ms, "path"), name, sizeof(name)) < 0)
				name[0] = '\0';
			r = vmw__inner_fault(c, vmw__x_child(ms, "fault"), "property", e);
			/* An unreadable property of a vanished object: the object is gone. */
			return sw_errctx(e, "%s:%s %s", m.type, m.value, name), r;
		}
		for (ps = vmw__x_child(obj, "propSet"); ps != NULL; ps = vmw__x_next(ps, "propSet")) {
			if (vmw__x_text(vmw__x_child(ps, "name"), name, sizeof(name)) < 0)
				return sw_errf(e, SW_EFORMAT, "RetrievePropertiesEx: bad property name");
			if ((r = cb(ud, &m, name, vmw__x_child(ps, "val"), e)) < 0)
				return r;
		}
	}
	return 0;
}

/* Runs a RetrievePropertiesEx with specSet XML `spec` and follows continuation tokens. */
static int
retrieve(struct vmw_conn *c, const char *spec, vmw__prop_cb cb, void *ud, size_t *ret_nobjects,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw__req args;
	char token[512];
	xmlNode *rv, *tok;
	size_t nobjects = 0;
	int pages = 0, r;

	vmw__req_init(&args);
	vmw__req_raw(&args, spec);
	vmw__req_raw(&args, "<options><maxObjects>500</maxObjects></options>");
	r = vmw__call_req(c, "RetrievePropertiesEx", &c->sc.property_collector, &args,
	    VMW_CALL_IDEMPOTENT, &resp, deadline_ms, cancel, e);
	vmw__req_free(&args);
	while (r == 0) {
		rv = vmw__x_child(resp.body, "returnval");
		if (rv == NULL)
			break;          /* nothing matched */
		if ((r = walk_page(c, rv, cb, ud, &nobjects, e)) < 0)
			break;
		tok = vmw__x_child(rv, "token");
		if (tok == NULL)
			break;
		if (vmw__x_text(tok, token, sizeof(token)) < 0 || token[0] == '\0') {
			r = sw_errf(e, SW_EFORMAT, "RetrievePropertiesEx: bad continuation token");
			break;
		}
		if (++pages > VMW_MAX_PAGES) {
			r = sw_errf(e, SW_ETOOBIG, "RetrievePropertiesEx: more than %d pages",
			    VMW_MAX_PAGES);
			break;
		}
		vmw__resp_free(&resp);
		vmw__req_init(&args);
		vmw__req_text(&args, "token", token);
		r = vmw__call_req(c, "ContinueRetrievePropertiesEx", &c->sc.property_collector,
		    &args, VMW_CALL_IDEMPOTENT, &resp, deadline_ms, cancel, e);
		vmw__req_free(&args);
	}
	vmw__resp_free(&resp);
	if (r == 0 && ret_nobjects != NULL)
		*ret_nobjects = nobjects;
	return r;
}

static void
prop_set(struct vmw__req *q, const char *type, const char *const *paths)
{
	size_t i;

	vmw__req_raw(q, "<propSet>");
	vmw__req_text(q, "type", type);
	vmw__req_bool(q, "all", 0);
	for (i = 0; paths[i] != NULL; i++)
		vmw__req_text(q, "pathSet", paths[i]);
	vmw__req_raw(q, "</propSet>");
}

int
vmw__props_get(struct vmw_conn *c, const struct vmw_moref *obj, const char *const *paths,
    vmw__prop_cb cb, void *ud, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req q;
	size_t n = 0;
	int r;

	vmw__req_init(&q);
	vmw__req_raw(&q, "<specSet>");
	prop_set(&q, obj->type, paths);
	vmw__req_raw(&q, "<objectSet>");
	vmw__req_moref(&q, "obj", obj);
	vmw__req_bool(&q, "skip", 0);
	vmw__req_raw(&q, "</objectSet></specSet>");
	if (q.rc != 0) {
		r = sw_errf(e, q.rc, "RetrievePropertiesEx: cannot build the request");
		goto out;
	}
	r = retrieve(c, sw_buf_str(&q.b), cb, ud, &n, deadline_ms, cancel, e);
	if (r == 0 && n == 0)
		r = sw_errf(e, SW_ENOTFOUND, "%s %s not found", obj->type, obj->value);
out:
	vmw__req_free(&q);
	return r;
}

int
vmw__props_all(struct vmw_conn *c, const char *type, const char *const *paths,
    vmw__prop_cb cb, void *ud, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__resp resp = { NULL, NULL };
	struct vmw__req q;
	struct vmw_moref view;
	struct vmw_fault saved;
	int r, r2;

	if (c->sc.view_manager.type[0] == '\0')
		return sw_errf(e, SW_EUNSUPPORTED, "server has no ViewManager");
	vmw__req_init(&q);
	vmw__req_moref(&q, "container", &c->sc.root_folder);
	vmw__req_text(&q, "type", type);
	vmw__req_bool(&q, "recursive", 1);
	r = vmw__call_req(c, "CreateContainerView", &c->sc.view_manager, &q, VMW_CALL_IDEMPOTENT,
	    &resp, deadline_ms, cancel, e);
	vmw__req_free(&q);
	if (r < 0)
		return r;
	r = vmw__x_moref(vmw__x_child(resp.body, "returnval"), &view);
	vmw__resp_free(&resp);
	if (r < 0)
		return sw_errf(e, SW_EFORMAT, "CreateContainerView: no view in the response");

	vmw__req_init(&q);
	vmw__req_raw(&q, "<specSet>");
	prop_set(&q, type, paths);
	vmw__req_raw(&q, "<objectSet>");
	vmw__req_moref(&q, "obj", &view);
	vmw__req_bool(&q, "skip", 1);
	vmw__req_raw(&q, "<selectSet xsi:type=\"TraversalSpec\"><name>traverseView</name>"
	    "<type>ContainerView</type><path>view</path><skip>false</skip></selectSet>");
	vmw__req_raw(&q, "</objectSet></specSet>");
	r = q.rc != 0 ? sw_errf(e, q.rc, "RetrievePropertiesEx: cannot build the request") :
	    retrieve(c, sw_buf_str(&q.b), cb, ud, NULL, deadline_ms, cancel, e);
	vmw__req_free(&q);
	/* The view is server state: destroy it even after a failure, with a short deadline of its own. */
	saved = c->fault;
	r2 = vmw__call(c, "DestroyView", &view, NULL, VMW_CALL_IDEMPOTENT, NULL,
	    sw_mono_ms() + 30000, NULL, NULL);
	(void)r2;
	c->fault = saved;
	return r;
}

/* ------------------------------------------------------------------ */
/* Tasks                                                               */

struct task_state {
	char state[16];
	char name[64];
	int progress;
	int have_result;
	struct vmw_moref result;
	int error_rc;
};

struct task_ud {
	struct vmw_conn *c;
	struct task_state *ts;
};

static int
task_cb(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val, struct sw_err *e)
{
	struct task_ud *t = ud;
	struct task_state *ts = t->ts;
	xmlNode *n;
	const char *rtype;
	int64_t p;
	char what[96];

	(void)obj;
	if (strcmp(name, "info") != 0)
		return 0;
	if (vmw__x_text(vmw__x_child(val, "state"), ts->state, sizeof(ts->state)) < 0)
		return sw_errf(e, SW_EFORMAT, "task info without a state");
	if (vmw__x_text(vmw__x_child(val, "name"), ts->name, sizeof(ts->name)) < 0)
		memcpy(ts->name, "task", sizeof("task"));
	if (vmw__x_i64(vmw__x_child(val, "progress"), &p) == 0 && p >= 0 && p <= 100)
		ts->progress = (int)p;
	n = vmw__x_child(val, "result");
	rtype = vmw__x_type(n);
	if (n != NULL && (rtype == NULL || strcmp(rtype, "ManagedObjectReference") == 0) &&
	    vmw__x_moref(n, &ts->result) == 0)
		ts->have_result = 1;
	if (strcmp(ts->state, "error") == 0) {
		(void)snprintf(what, sizeof(what), "task %s failed", ts->name);
		ts->error_rc = vmw__inner_fault(t->c, vmw__x_child(val, "error"), what, e);
	}
	return 0;
}

int
vmw_task_wait(struct vmw_conn *c, const struct vmw_moref *task, struct vmw_moref *ret_result,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const char *const paths[] = { "info", NULL };
	struct task_state ts;
	struct task_ud ud = { c, &ts };
	uint64_t delay = VMW_POLL_FIRST_MS, t0 = sw_mono_ms();
	unsigned polls = 0;
	int r;

	for (;;) {
		memset(&ts, 0, sizeof(ts));
		r = vmw__props_get(c, task, paths, task_cb, &ud, deadline_ms, cancel, e);
		if (r < 0)
			return r;
		polls++;
		if (ts.error_rc < 0)
			return ts.error_rc;
		if (strcmp(ts.state, "success") == 0)
			break;
		if (strcmp(ts.state, "queued") != 0 && strcmp(ts.state, "running") != 0)
			return sw_errf(e, SW_EFORMAT, "task %s in unknown state '%s'", task->value,
			    ts.state);
		if ((r = vmw__sleep(delay, deadline_ms, cancel, e)) < 0)
			return sw_errctx(e, "waiting for %s (%s, %d%%)", ts.name, task->value,
			    ts.progress), r;
		delay = vmw__poll_next(delay);
	}
	log_debug("vmw: task %s (%s) done in %" PRIu64 " ms, %u polls", task->value, ts.name,
	    sw_mono_ms() - t0, polls);
	if (ret_result != NULL) {
		if (ts.have_result)
			*ret_result = ts.result;
		else
			memset(ret_result, 0, sizeof(*ret_result));
	}
	return 0;
}
