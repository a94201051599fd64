#include "worker/deliver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io.h"
#include "common/log.h"
#include "ovastore/lock.h"
#include "proto/proto.h"
#include "worker/config.h"
#include "worker/limits.h"
#include "worker/log.h"
#include "worker/running.h"

struct progress_ctx {
	const struct wrk_dispatch *d;
	const struct proto_command *cmd;
	int64_t started_at;
	uint64_t last_ms;
	int last_percent;
};

static void
copy_str(char *dst, size_t dstsz, const char *src)
{
	(void)snprintf(dst, dstsz, "%s", src ? src : "");
}

/* Job thread -> daemon: rate-limited so a fast transfer does not flood the broker. */
static void
on_progress(void *ud, int percent, uint64_t bytes)
{
	struct progress_ctx *p = ud;
	const struct wrk_dispatch *d = p->d;
	uint64_t now = sw_mono_ms();
	unsigned interval = d->progress_interval_ms ? d->progress_interval_ms : 1000;
	struct proto_event ev;
	char rk[96];
	char *json = NULL;
	size_t len;

	if (d->on_progress == NULL)
		return;
	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	if (p->last_ms != 0 && now - p->last_ms < interval && percent < p->last_percent + 5)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.id = p->cmd->id;
	ev.type = p->cmd->type;
	ev.status = PROTO_STATUS_PROGRESS;
	ev.worker = d->worker;
	ev.started_at = p->started_at;
	ev.progress.percent = (unsigned)percent;
	ev.progress.bytes = bytes;
	if (proto_routing_key(p->cmd->type, PROTO_STATUS_PROGRESS, rk, sizeof(rk)) < 0 ||
	    proto_event_build(&ev, &json, &len, NULL) < 0)
		return;
	p->last_ms = now;
	p->last_percent = percent;
	d->on_progress(d->progress_ud, json, len, rk);
	free(json);
}

/* The failed event of a command (or of a poison message whose id could be read). */
static int
build_failed(const struct wrk_dispatch *d, const char *id, enum proto_type type,
    int64_t started_at, enum proto_errcode code, const char *message, int retryable,
    struct wrk_outcome *out)
{
	struct proto_event ev;
	struct sw_err e;
	int rc;

	memset(&ev, 0, sizeof(ev));
	ev.id = id;
	ev.type = type;
	ev.status = PROTO_STATUS_FAILED;
	ev.worker = d->worker;
	ev.started_at = started_at;
	ev.finished_at = time(NULL);
	ev.error.code = code;
	ev.error.message = message;
	ev.error.retryable = retryable != 0;
	sw_err_clear(&e);
	rc = proto_event_build(&ev, &out->event, &out->event_len, &e);
	if (rc < 0) {
		log_warnx("cannot build the failed event: %s", e.msg);
		return rc;
	}
	if (proto_routing_key(type, PROTO_STATUS_FAILED, out->routing_key,
	    sizeof(out->routing_key)) < 0)
		copy_str(out->routing_key, sizeof(out->routing_key), "unknown.failed");
	return 0;
}

static void
on_lock_wait(void *ud)
{
	(void)ud;
	log_info("another attempt of this command still runs (its worker lost the broker "
	    "connection): waiting for it to finish");
}

/* The retrying event of an attempt that will be tried again after delay_s. */
static int
build_retrying(const struct wrk_dispatch *d, const struct proto_command *cmd, int64_t started,
    const struct sw_err *e, unsigned attempt, unsigned delay_s, struct wrk_outcome *out)
{
	struct proto_event ev;
	struct sw_err be;
	int rc;

	memset(&ev, 0, sizeof(ev));
	ev.id = cmd->id;
	ev.type = cmd->type;
	ev.status = PROTO_STATUS_RETRYING;
	ev.worker = d->worker;
	ev.started_at = started;
	ev.finished_at = time(NULL);
	ev.error.code = (enum proto_errcode)e->kind;
	ev.error.message = out->message;
	ev.error.retryable = true;
	ev.retry.attempt = attempt;
	ev.retry.max_attempts = (unsigned)d->nretry_delays + 1;
	ev.retry.delay_s = delay_s;
	sw_err_clear(&be);
	rc = proto_event_build(&ev, &out->event, &out->event_len, &be);
	if (rc < 0) {
		log_warnx("cannot build the retrying event: %s", be.msg);
		return rc;
	}
	return proto_routing_key(cmd->type, PROTO_STATUS_RETRYING, out->routing_key,
	    sizeof(out->routing_key));
}

/* The job's tokens (worker/limits.h): what it holds, which limit made it wait. */
struct limit_ctx {
	const struct wrk_dispatch *d;
	struct wrk_limits_hold hold;
	int busy;                       /* 1: a limit is full; -1: the broker failed */
	int kind;
	char limit[320];
};

static int
limits_take(void *ud, struct wrk_limit_key *keys, size_t n, struct sw_err *e)
{
	struct limit_ctx *lc = ud;
	char busy[320];
	size_t i;
	int r;

	n = wrk_limits_order(keys, n);
	if (lc->hold.n > 0)
		wrk_limits_release(lc->d->limits, &lc->hold);
	r = wrk_limits_take(lc->d->limits, keys, n, &lc->hold, busy, sizeof(busy), e);
	if (r == 0)
		return 0;
	lc->busy = r > 0 ? 1 : -1;
	if (r > 0) {
		char *p;

		copy_str(lc->limit, sizeof(lc->limit), busy);
		/* A name from vCenter goes into an event: no control character. */
		for (p = lc->limit; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		for (i = 0; i < n; i++)
			if (strncmp(busy, wrk_limit_kind_name(keys[i].kind),
			    strlen(wrk_limit_kind_name(keys[i].kind))) == 0)
				break;
		lc->kind = i < n ? keys[i].kind : WRK_LIMIT_DATASTORE;
		return sw_errf(e, SW_EBUSY, "waiting for a token of %s (at its limit)", busy);
	}
	/* The tokens cannot be counted: waiting is safer for vCenter than running unbounded. */
	log_warnx("limits: %s", e->msg);
	(void)snprintf(lc->limit, sizeof(lc->limit), "%s:%s", wrk_limit_kind_name(keys[0].kind),
	    keys[0].name);
	for (i = 0; lc->limit[i] != '\0'; i++)
		if ((unsigned char)lc->limit[i] < 0x20 || lc->limit[i] == 0x7f)
			lc->limit[i] = '?';
	lc->kind = keys[0].kind;
	return r;
}

/* The waiting event of a command sent back for a token of limit. */
static int
build_waiting(const struct wrk_dispatch *d, const struct proto_command *cmd, int64_t started,
    struct wrk_outcome *out)
{
	struct proto_event ev;
	struct sw_err be;
	int rc;

	memset(&ev, 0, sizeof(ev));
	ev.id = cmd->id;
	ev.type = cmd->type;
	ev.status = PROTO_STATUS_WAITING;
	ev.worker = d->worker;
	ev.started_at = started;
	ev.finished_at = time(NULL);
	ev.wait.limit = out->limit;
	ev.wait.delay_s = out->retry_delay_s;
	sw_err_clear(&be);
	rc = proto_event_build(&ev, &out->event, &out->event_len, &be);
	if (rc < 0) {
		log_warnx("cannot build the waiting event: %s", be.msg);
		return rc;
	}
	return proto_routing_key(cmd->type, PROTO_STATUS_WAITING, out->routing_key,
	    sizeof(out->routing_key));
}

/* Whether a fresh probe finds the command's store, or CopyTemplate's destination, sick. */
static int
store_is_sick(const struct wrk_dispatch *d, const struct proto_command *cmd)
{
	if (d->store_sick == NULL)
		return 0;
	if (cmd->store.url != NULL && d->store_sick(d->store_sick_ud, cmd->store.url) == 1)
		return 1;
	return cmd->type == PROTO_COPY_TEMPLATE && cmd->args.copy_template.dest_store.url != NULL &&
	    d->store_sick(d->store_sick_ud, cmd->args.copy_template.dest_store.url) == 1;
}

/*
 * A failed attempt: what to tell the broker, and the event.  The error's
 * class was decided where it was made; the attempt number and the retry
 * delays decide between another attempt later and a final failure.
 */
static void
finish_failed(const struct wrk_dispatch *d, const struct proto_command *cmd,
    atomic_int *cancel, int64_t started, struct sw_err *e, struct wrk_outcome *out)
{
	unsigned attempt = out->attempt;

	if (e->kind <= PROTO_ERR_NONE || e->kind >= PROTO_ERR_COUNT) {
		/* Every failure is classified where it is made; this one was not. */
		log_warnx("error left unclassified (a bug), reported as INTERNAL: %s", e->msg);
		e->kind = PROTO_ERR_INTERNAL;
		e->retryable = false;
	}
	if (cancel != NULL && *cancel == WRK_CANCEL_USER) {
		/*
		 * Cancelled on request: whatever stopped the attempt (the cancel
		 * flag, or a failure while it was being cancelled), the answer is
		 * CANCELLED, final.  Its work was undone on the failure path.
		 */
		char msg[SW_ERR_MSG_MAX];

		(void)snprintf(msg, sizeof(msg), "cancelled on request%s%s",
		    strcmp(e->msg, "cancelled") != 0 && e->msg[0] ? ": " : "",
		    strcmp(e->msg, "cancelled") != 0 ? e->msg : "");
		copy_str(e->msg, sizeof(e->msg), msg);
		e->kind = PROTO_ERR_CANCELLED;
		e->retryable = false;
		out->cancelled = 1;
	}
	out->retryable = e->retryable;
	copy_str(out->errcode, sizeof(out->errcode), proto_errcode_name(e->kind));
	copy_str(out->message, sizeof(out->message), e->msg[0] ? e->msg : "failed");
	if (cancel != NULL && *cancel == WRK_CANCEL_SHUTDOWN) {
		/* Not this command's failure: the same attempt, on another worker. */
		out->disp = WRK_DISP_REQUEUE;
		return;
	}
	if (e->retryable && e->kind == PROTO_ERR_STORE_IO && store_is_sick(d, cmd)) {
		/* The store's outage, not the command's failure: the same attempt, later. */
		log_warnx("the store is sick: handing the command back without spending attempt %u",
		    attempt);
		out->disp = WRK_DISP_REQUEUE;
		return;
	}
	if (e->retryable && attempt <= d->nretry_delays) {
		out->disp = WRK_DISP_RETRY;
		out->retry_delay_s = d->retry_delays_s[attempt - 1];
		if (build_retrying(d, cmd, started, e, attempt, out->retry_delay_s, out) < 0) {
			free(out->event);
			out->event = NULL;
			out->disp = WRK_DISP_REQUEUE;
		}
		return;
	}
	out->disp = e->retryable ? WRK_DISP_DEAD : WRK_DISP_ACK;
	if (build_failed(d, cmd->id, cmd->type, started, e->kind, out->message, e->retryable,
	    out) < 0)
		out->disp = WRK_DISP_REQUEUE;
}

/* Bytes a succeeded command wrote (its files' sizes; a delete's files are removed ones). */
static uint64_t
produced_bytes(const struct proto_event *ev)
{
	uint64_t n = 0;
	size_t i;

	if (ev->type == PROTO_DELETE_SNAPSHOT || ev->type == PROTO_DELETE_TEMPLATE)
		return 0;
	for (i = 0; i < ev->result.nfiles; i++)
		n += ev->result.files[i].size;
	return n;
}

/*
 * A command whose cancel record existed before it started: it never runs.
 * If an earlier attempt was interrupted (a crash, a lost connection), its
 * vCenter work is undone first, under the command lock: the runner sees
 * WRK_CANCEL_USER and only undoes (worker/job.h).  When another attempt
 * still holds the lock (its worker is cut off from the broker), that
 * attempt undoes its own work once it learns of the cancel; the answer
 * does not wait longer than CANCEL_LOCK_WAIT_MS for it.
 */
#define CANCEL_LOCK_WAIT_MS 60000u

static void
run_cancelled(const struct wrk_dispatch *d, const struct proto_command *cmd,
    struct wrk_job *job, int64_t started, uint64_t t0, struct wrk_outcome *out)
{
	struct ova_lock lock = OVA_LOCK_INIT;
	const struct wrk_store *store;
	static atomic_int never;
	struct proto_event ev;
	struct sw_err e, le;
	int rc;

	log_info("cancelled before it started: it does not run");
	/* It only undoes: no export, no token. */
	job->limits_take = NULL;
	job->limits_ud = NULL;
	memset(&ev, 0, sizeof(ev));
	sw_err_clear(&e);
	store = d->cfg != NULL && cmd->store.url != NULL ? wrk_config_store(d->cfg, cmd->store.url) :
	    NULL;
	if (d->running != NULL && wrk_running_has(d->running, cmd->id)) {
		log_info("another copy of this command runs here: it undoes its own work");
	} else if (store != NULL) {
		sw_err_clear(&le);
		rc = ova_lock_acquire(&lock, store->mount, cmd->id, &never,
		    sw_mono_ms() + CANCEL_LOCK_WAIT_MS, on_lock_wait, NULL, &le);
		if (rc >= 0) {
			job->lock_mount = store->mount;
			rc = d->run(job, &ev, &e);
			if (rc < 0 && e.code != -ECANCELED)
				log_warnx("undoing an earlier attempt's work: %s (the sweeper retries)",
				    e.msg);
			if (d->clear != NULL)
				d->clear(&ev);
			ova_lock_release(&lock);
		} else {
			log_warnx("an earlier attempt still holds the command lock (%s): it undoes its "
			    "own work", le.msg);
		}
	}
	out->elapsed_ms = sw_mono_ms() - t0;
	sw_err_clear(&e);
	sw_err_classify(&e, sw_errf(&e, -ECANCELED, "before it started"),
	    PROTO_ERR_CANCELLED, false);
	finish_failed(d, cmd, job->cancel, started, &e, out);
}

static void
run_parsed(const struct wrk_dispatch *d, struct proto_command *cmd,
    atomic_int *cancel, struct wrk_outcome *out)
{
	struct ova_lock lock = OVA_LOCK_INIT;
	const struct wrk_store *store;
	static atomic_int never;
	struct progress_ctx pc;
	struct limit_ctx lc;
	struct wrk_job job;
	struct proto_event ev;
	struct sw_err e;
	int rc, held = 0;
	int64_t started = time(NULL);
	uint64_t t0 = sw_mono_ms();

	memset(&pc, 0, sizeof(pc));
	pc.d = d;
	pc.cmd = cmd;
	pc.started_at = started;
	memset(&job, 0, sizeof(job));
	job.cmd = cmd;
	job.cfg = d->cfg;
	job.worker_name = d->worker;
	job.cancel = cancel != NULL ? cancel : &never;
	job.deadline_ms = t0 + (uint64_t)cmd->timeout_s * 1000u;
	if (d->deadline != NULL)
		atomic_store(d->deadline, job.deadline_ms);
	job.progress = on_progress;
	job.progress_ud = &pc;
	memset(&lc, 0, sizeof(lc));
	lc.d = d;
	if (d->limits != NULL) {
		job.limits_take = limits_take;
		job.limits_ud = &lc;
	}
	memset(&ev, 0, sizeof(ev));
	sw_err_clear(&e);

	if (*job.cancel == WRK_CANCEL_USER) {
		run_cancelled(d, cmd, &job, started, t0, out);
		return;
	}
	if (d->running != NULL) {
		rc = wrk_running_acquire(d->running, cmd->id, job.cancel);
		if (rc < 0 && *job.cancel == WRK_CANCEL_USER) {
			/* Cancelled while the other copy ran: that copy undoes its own work. */
			sw_err_classify(&e, sw_errf(&e, -ECANCELED, "cancelled"), PROTO_ERR_CANCELLED,
			    false);
			out->elapsed_ms = sw_mono_ms() - t0;
			finish_failed(d, cmd, cancel, started, &e, out);
			return;
		}
		if (rc < 0) {
			/* Shutdown while waiting for the other run: hand the command back. */
			out->disp = WRK_DISP_REQUEUE;
			copy_str(out->errcode, sizeof(out->errcode), "CANCELLED");
			copy_str(out->message, sizeof(out->message),
			    "shutdown while the same command ran in another slot");
			return;
		}
		if (rc == 1)
			log_info("waited for the running copy of this command to finish");
		held = 1;
	}
	/* Across workers: an attempt whose connection died may still run elsewhere. */
	store = d->cfg != NULL && cmd->store.url != NULL ? wrk_config_store(d->cfg, cmd->store.url) :
	    NULL;
	if (store != NULL) {
		rc = ova_lock_acquire(&lock, store->mount, cmd->id, job.cancel, job.deadline_ms,
		    on_lock_wait, NULL, &e);
		if (rc >= 0)
			job.lock_mount = store->mount;
		if (rc == 1) {
			log_info("the other attempt finished; running");
		} else if (rc == -ECANCELED || rc == -ETIMEDOUT) {
			/* Shutdown: requeued below.  Deadline: the other attempt may still commit. */
			out->elapsed_ms = sw_mono_ms() - t0;
			sw_err_classify(&e, rc, rc == -ECANCELED ? PROTO_ERR_CANCELLED :
			    PROTO_ERR_TIMEOUT, true);
			goto failed;
		} else if (rc == SW_EPATH) {
			/*
			 * Something planted where the lock lives: running without
			 * it would let a second attempt write beside this one.
			 */
			out->elapsed_ms = sw_mono_ms() - t0;
			sw_err_classify(&e, rc, PROTO_ERR_STORE_IO, false);
			goto failed;
		} else if (rc < 0) {
			/* The command meets the same store trouble and reports it. */
			log_warnx("running without the command lock: %s", e.msg);
			sw_err_clear(&e);
		}
	}
	rc = d->run(&job, &ev, &e);
	out->elapsed_ms = sw_mono_ms() - t0;
	/* Every end of the job gives its tokens back (a crash: the broker does). */
	wrk_limits_release(d->limits, &lc.hold);
	if (rc < 0 && lc.busy != 0 && *job.cancel == 0) {
		/* Not a failure: the command comes back later, the attempt unspent. */
		ova_lock_release(&lock);
		if (held)
			wrk_running_release(d->running, cmd->id);
		if (d->clear != NULL)
			d->clear(&ev);
		out->waiting = 1;
		out->limit_kind = lc.kind;
		copy_str(out->limit, sizeof(out->limit), lc.limit);
		copy_str(out->errcode, sizeof(out->errcode), "WAITING");
		copy_str(out->message, sizeof(out->message), e.msg);
		out->disp = WRK_DISP_RETRY;
		out->retry_delay_s = d->limit_wait_s ? d->limit_wait_s : 10;
		if (build_waiting(d, cmd, started, out) < 0) {
			free(out->event);
			out->event = NULL;
			out->waiting = 0;
			out->disp = WRK_DISP_REQUEUE;
		}
		return;
	}
	if (rc >= 0) {
		ev.id = cmd->id;
		ev.type = cmd->type;
		ev.status = PROTO_STATUS_SUCCEEDED;
		ev.worker = d->worker;
		ev.started_at = started;
		ev.finished_at = time(NULL);
		memset(&ev.error, 0, sizeof(ev.error));
		rc = proto_event_build(&ev, &out->event, &out->event_len, &e);
		if (rc < 0) {
			/* A result the protocol cannot express is our bug, not the publisher's. */
			(void)sw_errctx(&e, "building the result event");
			sw_err_classify(&e, e.code, PROTO_ERR_INTERNAL, false);
		} else {
			out->bytes_produced = produced_bytes(&ev);
			(void)proto_routing_key(cmd->type, PROTO_STATUS_SUCCEEDED, out->routing_key,
			    sizeof(out->routing_key));
			out->succeeded = 1;
			out->disp = WRK_DISP_ACK;
		}
	}
	if (d->clear != NULL)
		d->clear(&ev);
	if (out->succeeded) {
		ova_lock_release(&lock);
		if (held)
			wrk_running_release(d->running, cmd->id);
		return;
	}
failed:
	ova_lock_release(&lock);
	if (held)
		wrk_running_release(d->running, cmd->id);
	finish_failed(d, cmd, cancel, started, &e, out);
}

void
wrk_dispatch_run(const struct wrk_dispatch *d, const void *body, size_t len,
    int64_t delivery_count, int64_t attempt, atomic_int *cancel, struct wrk_outcome *out)
{
	struct proto_command *cmd = NULL;
	struct proto_parse_error pe;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&pe, 0, sizeof(pe));
	out->attempt = attempt < 1 ? 1 : attempt > PROTO_ATTEMPTS_MAX ? PROTO_ATTEMPTS_MAX :
	    (unsigned)attempt;
	if (body == NULL) {
		/* Drained unread by the AMQP layer: no id to answer, only the dead-letter queue. */
		out->disp = WRK_DISP_DEAD;
		copy_str(out->errcode, sizeof(out->errcode), "INVALID_COMMAND");
		(void)snprintf(out->message, sizeof(out->message), "body over the %d-byte limit",
		    PROTO_BODY_MAX);
		return;
	}
	rc = proto_command_parse(body, len, &cmd, &pe);
	if (rc < 0) {
		if (pe.has_id)
			copy_str(out->id, sizeof(out->id), pe.id);
		copy_str(out->type, sizeof(out->type), proto_type_name(pe.type));
		copy_str(out->message, sizeof(out->message), pe.message);
		wrk_log_set_cmd(pe.has_id ? pe.id : NULL, proto_type_name(pe.type));
		if (rc == -ENOMEM || pe.code == PROTO_ERR_INTERNAL) {
			out->disp = WRK_DISP_REQUEUE;
			copy_str(out->errcode, sizeof(out->errcode), "INTERNAL");
			return;
		}
		out->disp = WRK_DISP_DEAD;
		copy_str(out->errcode, sizeof(out->errcode),
		    proto_errcode_name(pe.code) ? proto_errcode_name(pe.code) : "INVALID_COMMAND");
		if (pe.has_id)
			(void)build_failed(d, pe.id, pe.type, time(NULL),
			    pe.code != PROTO_ERR_NONE ? pe.code : PROTO_ERR_INVALID_COMMAND,
			    pe.message, 0, out);
		return;
	}
	out->parsed = 1;
	copy_str(out->id, sizeof(out->id), cmd->id);
	copy_str(out->type, sizeof(out->type), proto_type_name(cmd->type));
	wrk_log_set_cmd(cmd->id, out->type);
	if (delivery_count > 0)
		log_info("started (attempt %u, redelivery %lld)", out->attempt,
		    (long long)delivery_count);
	else if (out->attempt > 1)
		log_info("started (attempt %u)", out->attempt);
	else
		log_info("started");
	run_parsed(d, cmd, cancel, out);
	proto_command_free(cmd);
}

int
wrk_deadline_backstop(atomic_int *cancel, uint64_t deadline_ms, uint64_t now_ms)
{
	int expected = 0;

	if (cancel == NULL || deadline_ms == 0 || now_ms < deadline_ms + WRK_DEADLINE_SLACK_MS)
		return 0;
	/* A shutdown already asked for keeps its meaning (requeue, not TIMEOUT). */
	return atomic_compare_exchange_strong(cancel, &expected, WRK_CANCEL_DEADLINE) ? 1 : 0;
}

void
wrk_outcome_clear(struct wrk_outcome *o)
{
	if (o == NULL)
		return;
	free(o->event);
	memset(o, 0, sizeof(*o));
}
