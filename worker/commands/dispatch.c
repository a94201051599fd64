/*
 * wrk_cmd_run(): checks that the job may still run and calls the command's
 * implementation, which classifies its errors where they are made.
 */
#include "worker/commands/cmd_int.h"

#include <errno.h>
#include <string.h>

#include "worker/commands/commands.h"
#include "worker/commands/vc.h"

static int
run_type(struct wrk__cmd *c, struct sw_err *e)
{
	switch (c->cmd->type) {
	case PROTO_DELETE_SNAPSHOT:   return wrk__cmd_delete_snapshot(c, e);
	case PROTO_CREATE_SNAPSHOT:   return wrk__cmd_create_snapshot(c, e);
	case PROTO_DELETE_TEMPLATE:   return wrk__cmd_delete_template(c, e);
	case PROTO_EXTRACT_TEMPLATE:  return wrk__cmd_extract_template(c, e);
	case PROTO_COPY_TEMPLATE:     return wrk__cmd_copy_template(c, e);
	case PROTO_REGISTER_TEMPLATE: return wrk__cmd_register_template(c, e);
	case PROTO_CREATE_TEMPLATE:   return wrk__cmd_create_template(c, e);
	case PROTO_CREATE_VOLUME:     return wrk__cmd_create_volume(c, e);
	case PROTO_EXTRACT_VOLUME:    return wrk__cmd_extract_volume(c, e);
	default:
		return wrk__fail_as(c, sw_errf(e, SW_EUNSUPPORTED, "unknown command type %d",
		    (int)c->cmd->type), PROTO_ERR_INVALID_COMMAND, 0);
	}
}

int
wrk_cmd_run(const struct wrk_job *job, struct proto_event *ev, struct sw_err *e)
{
	struct wrk__cmd c;
	int r;

	if (job == NULL || job->cmd == NULL || ev == NULL || e == NULL)
		return sw_err_classify(e, sw_errf(e, SW_EINTERNAL, "wrk_cmd_run: no job"),
		    PROTO_ERR_INTERNAL, false);
	memset(&c, 0, sizeof(c));
	c.job = job;
	c.cmd = job->cmd;
	c.ev = ev;
	c.e = e;
	if (job->cancel != NULL && *job->cancel == WRK_CANCEL_USER) {
		/* Cancelled before it started: only an earlier attempt's work is undone. */
		r = wrk__vc_undo_cancelled(&c, e);
		if (r < 0)
			return r;
		return sw_err_classify(e, sw_errf(e, -ECANCELED, "cancelled"), PROTO_ERR_CANCELLED,
		    false);
	}
	r = wrk__check_stop(&c, e);
	if (r < 0)
		wrk__fail(&c, r, PROTO_CTX_STORE);
	else
		r = run_type(&c, e);
	if (r >= 0)
		return 0;
	if (r == -ENOMEM && e->code != r)
		wrk__fail(&c, sw_errf(e, r, "out of memory"), PROTO_CTX_STORE);
	/* A failed event carries no result. */
	wrk_cmd_result_clear(ev);
	return r;
}
