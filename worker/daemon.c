/*
 * The daemon: job slots (one broker connection and at most one job thread
 * each), consumption, graceful stop, the sweeper and the watchdog.  What a
 * finished job leads to on the broker is answer.c's.
 */
#include "worker/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "proto/proto.h"
#include "worker/config.h"
#include "worker/limits.h"
#include "worker/log.h"
#include "worker/metrics.h"
#include "worker/notify.h"
#include "worker/running.h"
#include "worker/storehealth.h"
#include "worker/sweep.h"
#include "worker/daemon_int.h"


void
wrk_daemon_topology(const struct wrk_config *cfg, struct wrk_topology *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->exchange = cfg->amqp_exchange;
	ret->events = cfg->amqp_events;
	ret->dlx = cfg->amqp_dlx;
	ret->dead_queue = cfg->amqp_dead_queue;
	ret->zones = (const char *const *)cfg->queues;
	ret->nzones = cfg->nqueues;
	ret->delivery_limit = cfg->delivery_limit;
	ret->retry_exchange = cfg->amqp_retry_exchange;
	/* The [retry] delays, and [limits] wait when a limit is set. */
	ret->retry_delays_s = cfg->delay_queues_s;
	ret->nretry_delays = cfg->ndelay_queues;
	ret->control = cfg->amqp_control;
}

static void
slot_wake(struct slot *s)
{
	uint64_t one = 1;

	(void)sw_write_all(s->efd, &one, sizeof(one));
}

static void
efd_drain(int efd)
{
	uint64_t v;

	while (read(efd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* Job thread -> slot: keep only the latest progress event. */
static void
slot_progress(void *ud, const char *json, size_t len, const char *rk)
{
	struct slot *s = ud;
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return;
	memcpy(copy, json, len);
	copy[len] = '\0';
	pthread_mutex_lock(&s->mu);
	free(s->prog);
	s->prog = copy;
	s->prog_len = len;
	(void)snprintf(s->prog_rk, sizeof(s->prog_rk), "%s", rk);
	pthread_mutex_unlock(&s->mu);
	slot_wake(s);
}

static void *
job_main(void *arg)
{
	struct slot *s = arg;
	struct wrk_outcome out;

	if (s->msg.too_big)
		wrk_dispatch_run(&s->disp, NULL, 0,
		    s->msg.delivery_count, s->msg.attempt, &s->cancel, &out);
	else
		wrk_dispatch_run(&s->disp, s->msg.body ? s->msg.body : "", s->msg.len,
		    s->msg.delivery_count, s->msg.attempt, &s->cancel, &out);
	wrk_log_set_cmd(NULL, NULL);
	pthread_mutex_lock(&s->mu);
	s->out = out;
	s->done = 1;
	pthread_mutex_unlock(&s->mu);
	slot_wake(s);
	return NULL;
}

void
wrk__slot_drop_conn(struct slot *s)
{
	if (s->c != NULL)
		wrk_metrics_broker_conn(-1);
	wrk_amqp_close(s->c);
	s->c = NULL;
	s->consuming = 0;
	s->ntags = 0;
	s->ctl_tag[0] = '\0';
}

/* ------------------------------------------------------------- cancel */

static void
raise_cancel(struct slot *s, const char *why)
{
	if (atomic_exchange(&s->cancel, WRK_CANCEL_USER) != WRK_CANCEL_USER) {
		wrk_log_set_cmd(s->job_id, NULL);
		log_info("slot %u: %s: cancelling the running command", s->idx, why);
		wrk_log_set_cmd(NULL, NULL);
	}
}

/*
 * Whether the cancel record of command id exists: 1 yes, 0 no, <0 the
 * connection failed (dropped; the broker redelivers what it held).
 */
static int
cancel_record_exists(struct slot *s, const char *id)
{
	char q[512];
	struct sw_err e;
	int rc;

	if (id[0] == '\0' || s->c == NULL ||
	    wrk_amqp_cancel_record_name(s->d->cfg->amqp_cancel_prefix, id, q, sizeof(q)) < 0)
		return 0;
	rc = wrk_amqp_exists(s->c, q, &e);
	if (rc < 0) {
		log_warnx("slot %u: checking cancel record %s: %s", s->idx, q, e.msg);
		if (!wrk_amqp_ok(s->c))
			wrk__slot_drop_conn(s);
	}
	return rc;
}

/* The command id of a delivery, lower case, or "" when it cannot be read. */
static void
peek_id(const struct wrk_amqp_msg *m, char *id, size_t idsz)
{
	struct proto_command *cmd = NULL;
	struct proto_parse_error pe;

	id[0] = '\0';
	if (m->body == NULL || m->too_big)
		return;
	if (proto_command_parse(m->body, m->len, &cmd, &pe) == 0)
		(void)snprintf(id, idsz, "%s", cmd->id);
	else if (pe.has_id)
		(void)snprintf(id, idsz, "%s", pe.id);
	proto_command_free(cmd);
	proto_uuid_lower(id);
}

static void
control_reply(struct slot *s, const struct wrk_amqp_msg *m, const char *id,
    enum proto_cancel_answer a, const char *outcome)
{
	struct wrk_amqp_pub p;
	struct sw_err e;
	char *body = NULL;
	size_t len = 0;

	if (m->reply_to[0] == '\0' || s->c == NULL)
		return;
	if (wrk_amqp_blocked(s->c)) {
		log_warnx("slot %u: the broker blocks publishing: cancel of %s not answered", s->idx,
		    id);
		return;
	}
	if (proto_cancel_answer_build(id, a, outcome, s->d->cfg->name, &body, &len, &e) < 0) {
		log_warnx("slot %u: %s", s->idx, e.msg);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.exchange = "";
	p.routing_key = m->reply_to;
	p.correlation_id = m->correlation_id[0] ? m->correlation_id : NULL;
	p.message_id = id;
	p.body = body;
	p.len = len;
	/* Best effort, unconfirmed: the command's own final event is what counts. */
	if (wrk_amqp_publish(s->c, &p, NULL, &e) < 0)
		log_warnx("slot %u: answering the cancel of %s: %s", s->idx, id, e.msg);
	free(body);
}

int
wrk__slot_is_control(const struct slot *s, const struct wrk_amqp_msg *m)
{
	return s->ctl_tag[0] != '\0' && strcmp(m->consumer_tag, s->ctl_tag) == 0;
}

void
wrk__slot_control(struct slot *s, const struct wrk_amqp_msg *m)
{
	struct proto_parse_error pe;
	char id[PROTO_UUID_LEN + 1], outcome[16];

	if (m->too_big || m->body == NULL ||
	    proto_cancel_parse(m->body, m->len, id, &pe) < 0) {
		if (s->idx == 0)
			log_warnx("control message ignored: %s",
			    m->too_big || m->body == NULL ? "body too big" : pe.message);
		return;
	}
	if (s->busy && strcmp(s->job_id, id) == 0) {
		int done, final, succeeded;

		pthread_mutex_lock(&s->mu);
		done = s->done;
		final = !s->out.cancelled &&
		    (s->out.disp == WRK_DISP_ACK || s->out.disp == WRK_DISP_DEAD);
		succeeded = s->out.succeeded;
		pthread_mutex_unlock(&s->mu);
		if (!done) {
			raise_cancel(s, "cancel request");
			control_reply(s, m, id, PROTO_CANCEL_CANCELLING, NULL);
		} else if (final) {
			/* Its outcome is decided, its answer about to go out: unaffected. */
			control_reply(s, m, id, PROTO_CANCEL_FINISHED, succeeded ? "succeeded" :
			    "failed");
		}
		/* Else it goes back to a queue, where its record stops it. */
		return;
	}
	/* One slot answers for the commands this process finished (and does not run again). */
	if (s->idx == 0 && wrk_running_outcome(s->d->running, id, outcome, sizeof(outcome)) &&
	    !wrk_running_has(s->d->running, id)) {
		wrk_log_set_cmd(id, NULL);
		log_info("cancel request for a command finished here (%s): unaffected", outcome);
		wrk_log_set_cmd(NULL, NULL);
		control_reply(s, m, id, PROTO_CANCEL_FINISHED, outcome);
	}
}

/* The control queue: exclusive to this connection, bound to the control exchange. */
static int
control_setup(struct slot *s, struct sw_err *e)
{
	char q[WRK_AMQP_STR_MAX];
	int rc;

	if (s->d->cfg->amqp_control == NULL)
		return 0;
	if ((rc = wrk_amqp_private_queue(s->c, q, sizeof(q), e)) < 0 ||
	    (rc = wrk_amqp_bind(s->c, q, s->d->cfg->amqp_control, "", e)) < 0 ||
	    (rc = wrk_amqp_subscribe(s->c, q, s->ctl_tag, sizeof(s->ctl_tag), e)) < 0)
		return rc;
	return 0;
}

static void
hold(struct slot *s, struct wrk_amqp_msg *m)
{
	struct sw_err e;

	if (s->nheld < HELD_MAX && !atomic_load(&s->d->stopping)) {
		s->held[s->nheld++] = *m;
		memset(m, 0, sizeof(*m));
		return;
	}
	/* Not ours to run now: hand it straight back. */
	if (wrk_amqp_nack(s->c, m->tag, 1, &e) < 0)
		log_warnx("slot %u: %s", s->idx, e.msg);
	wrk_amqp_msg_clear(m);
}

static void
log_block(const struct slot *s, int kind)
{
	if (kind == WRK_AMQP_EV_BLOCKED)
		log_warnx("slot %u: the broker blocked publishing (resource alarm)", s->idx);
	else
		log_info("slot %u: the broker unblocked publishing", s->idx);
}

/* An event that arrives while the slot waits for something else. */
void
wrk__slot_on_event(void *ud, struct wrk_amqp_ev *ev)
{
	struct slot *s = ud;

	if (ev->kind == WRK_AMQP_EV_DELIVERY && wrk__slot_is_control(s, &ev->msg))
		wrk__slot_control(s, &ev->msg);
	else if (ev->kind == WRK_AMQP_EV_DELIVERY)
		hold(s, &ev->msg);
	else if (ev->kind == WRK_AMQP_EV_BLOCKED || ev->kind == WRK_AMQP_EV_UNBLOCKED)
		log_block(s, ev->kind);
}

static int
start_job(struct slot *s, struct wrk_amqp_msg *m)
{
	int rc;

	char id[40];

	/*
	 * A command whose cancel record exists never starts: its job only undoes
	 * an earlier attempt's work and answers CANCELLED.  The canceller declares
	 * the record before it tells the running workers, so a cancel is either
	 * seen here or arrives on the control queue once job_id is set.
	 */
	peek_id(m, id, sizeof(id));
	rc = cancel_record_exists(s, id);
	if (rc < 0) {
		/* The connection is gone, and the delivery with it: the broker redelivers. */
		wrk_amqp_msg_clear(m);
		return rc;
	}
	s->msg = *m;
	memset(m, 0, sizeof(*m));
	(void)snprintf(s->job_id, sizeof(s->job_id), "%s", id);
	s->cancel = rc == 1 ? WRK_CANCEL_USER : 0;
	s->done = 0;
	s->job_gen = s->gen;
	/* The job publishes its deadline once parsed (see backstop()). */
	atomic_store(&s->deadline_ms, 0);
	rc = pthread_create(&s->jthr, NULL, job_main, s);
	if (rc != 0) {
		struct sw_err e;
		log_warnx("slot %u: cannot start a job thread: %s; requeueing", s->idx, strerror(rc));
		(void)wrk_amqp_nack(s->c, s->msg.tag, 1, &e);
		wrk_amqp_msg_clear(&s->msg);
		return -rc;
	}
	s->busy = 1;
	wrk_metrics_job_start();
	return 0;
}

static void
publish_progress(struct slot *s)
{
	char *json;
	size_t len;
	char rk[96];
	struct sw_err e;
	struct wrk_amqp_pub p;

	pthread_mutex_lock(&s->mu);
	json = s->prog;
	len = s->prog_len;
	memcpy(rk, s->prog_rk, sizeof(rk));
	s->prog = NULL;
	pthread_mutex_unlock(&s->mu);
	if (json == NULL)
		return;
	/* Progress is best effort: never on a connection the job does not belong to. */
	if (s->c != NULL && s->job_gen == s->gen && !wrk_amqp_blocked(s->c)) {
		memset(&p, 0, sizeof(p));
		p.exchange = s->d->cfg->amqp_events;
		p.routing_key = rk;
		p.message_id = s->msg.message_id[0] ? s->msg.message_id : NULL;
		p.body = json;
		p.len = len;
		if (wrk_amqp_publish(s->c, &p, NULL, &e) < 0)
			log_warnx("slot %u: progress event: %s", s->idx, e.msg);
	}
	free(json);
}


static void
check_job(struct slot *s)
{
	int done;

	publish_progress(s);
	pthread_mutex_lock(&s->mu);
	done = s->done;
	pthread_mutex_unlock(&s->mu);
	if (s->busy && done)
		wrk__slot_finish_job(s);
}

static int
slot_connect(struct slot *s, struct sw_err *e)
{
	const struct wrk_config *cfg = s->d->cfg;
	struct wrk_amqp_opts o;
	char name[200];
	int rc;

	(void)snprintf(name, sizeof(name), "snapworker %s slot %u", cfg->name, s->idx);
	/*
	 * Every attempt goes to the next node of the cluster: a connection lost
	 * with its node, or a node that refuses us, sends the slot on to the
	 * next one; the nodes are tried in turn, the backoff between failures.
	 */
	s->cur = s->node;
	s->node = (s->node + 1) % cfg->namqp_urls;
	memset(&o, 0, sizeof(o));
	o.url = cfg->amqp_urls[s->cur];
	o.password = cfg->amqp_password;
	o.cacert = cfg->amqp_cacert;
	o.heartbeat = cfg->heartbeat;
	o.name = name;
	rc = wrk_amqp_connect(&o, &s->c, e);
	if (rc < 0)
		return rc;
	/* Counted while s->c is set: wrk__slot_drop_conn uncounts it. */
	wrk_metrics_broker_conn(1);
	if ((rc = wrk_amqp_declare(s->c, &s->d->topo, e)) < 0 ||
	    (rc = wrk_amqp_confirm_select(s->c, e)) < 0 ||
	    (rc = wrk_amqp_qos(s->c, 1, e)) < 0 ||
	    (rc = control_setup(s, e)) < 0) {
		wrk__slot_drop_conn(s);
		return rc;
	}
	s->gen++;
	return 0;
}

static int
slot_consume(struct slot *s, struct sw_err *e)
{
	const struct wrk_config *cfg = s->d->cfg;
	char q[512];
	size_t i;
	int rc;

	s->ntags = 0;
	for (i = 0; i < cfg->nqueues && i < 16; i++) {
		if (wrk_amqp_queue_name(&s->d->topo, cfg->queues[i], q, sizeof(q)) < 0)
			return sw_errf(e, SW_ETOOBIG, "queue name too long");
		rc = wrk_amqp_consume(s->c, q, 0, s->tags[s->ntags], sizeof(s->tags[0]), e);
		if (rc < 0)
			return rc;
		s->ntags++;
	}
	s->consuming = 1;
	return 0;
}

static void
slot_stop_consuming(struct slot *s)
{
	struct sw_err e;
	size_t i;

	for (i = 0; i < s->ntags; i++) {
		if (wrk_amqp_cancel(s->c, s->tags[i], &e) < 0) {
			log_warnx("slot %u: %s", s->idx, e.msg);
			wrk__slot_drop_conn(s);
			return;
		}
	}
	s->ntags = 0;
	s->consuming = 0;
	for (i = 0; i < s->nheld; i++) {
		(void)wrk_amqp_nack(s->c, s->held[i].tag, 1, &e);
		wrk_amqp_msg_clear(&s->held[i]);
	}
	s->nheld = 0;
}

/*
 * Raises a running job's cancel flag: at the end of the grace period of a
 * shutdown, or when the job is past its command's deadline without having
 * stopped (the job enforces the deadline itself; this is the backstop).
 */
static void
slot_cancel_check(struct slot *s)
{
	if (!s->busy)
		return;
	if (atomic_load(&s->d->cancel_all) && s->cancel == 0)
		s->cancel = WRK_CANCEL_SHUTDOWN;
	if (wrk_deadline_backstop(&s->cancel, atomic_load(&s->deadline_ms), sw_mono_ms()))
		log_warnx("slot %u: the job is past its deadline: cancelling it", s->idx);
}

/* Sleeps up to ms, waking early for a finished job or a stop. */
static void
slot_sleep(struct slot *s, unsigned ms)
{
	uint64_t end = sw_mono_ms() + ms;

	while (sw_mono_ms() < end) {
		uint64_t v;
		struct timespec ts = { 0, 50 * 1000000L };

		atomic_store(&s->beat_ms, sw_mono_ms());
		if (read(s->efd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			check_job(s);
		if (atomic_load(&s->d->stopping) && !s->busy)
			return;
		slot_cancel_check(s);
		(void)nanosleep(&ts, NULL);
	}
}

/* The job thread's question after a retryable STORE_IO failure (worker/deliver.h). */
static int
daemon_store_sick(void *ud, const char *url)
{
	return wrk_storehealth_confirm_sick(ud, url);
}

static void *
slot_main(void *arg)
{
	struct slot *s = arg;
	struct daemon *d = s->d;
	struct wrk_amqp_ev ev;
	struct sw_err e;
	unsigned attempt = 0;
	size_t i;
	int rc;

	for (;;) {
		int stopping = atomic_load(&d->stopping);
		/* One queue carries every store's commands: a sick store stops them all. */
		int sick = !wrk_storehealth_all_healthy(d->health);

		atomic_store(&s->beat_ms, sw_mono_ms());
		if (stopping && !s->busy)
			break;
		slot_cancel_check(s);
		if (s->c == NULL) {
			if (stopping) {
				/* Nothing to consume any more: just wait for the job. */
				slot_sleep(s, PUMP_MS);
				continue;
			}
			rc = slot_connect(s, &e);
			if (rc < 0) {
				uint32_t rnd = 0;
				unsigned ms;

				if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
					rnd = (uint32_t)sw_mono_ms() * 2654435761u + s->idx;
				ms = wrk_backoff_ms(attempt++, BACKOFF_BASE_MS, BACKOFF_CAP_MS, rnd);
				log_warnx("slot %u: broker %s: %s; trying %s in %u ms", s->idx,
				    d->cfg->amqp_urls[s->cur], e.msg, d->cfg->amqp_urls[s->node], ms);
				slot_sleep(s, ms);
				continue;
			}
			if (attempt > 0 || s->idx == 0 || d->cfg->namqp_urls > 1 || s->gen > 1)
				log_info("slot %u: connected to the broker at %s (node %zu of %zu)",
				    s->idx, d->cfg->amqp_urls[s->cur], s->cur + 1, d->cfg->namqp_urls);
			if (s->gen > 1)
				wrk_metrics_broker_reconnect();
			else
				atomic_fetch_add(&d->connected, 1);
			attempt = 0;
			/* A cancel sent while we were away reached only the record. */
			if (s->busy && cancel_record_exists(s, s->job_id) == 1)
				raise_cancel(s, "cancel record found after reconnecting");
			if (s->c == NULL)
				continue;
		}
		if (!s->consuming && !s->busy && !stopping && !sick) {
			if (slot_consume(s, &e) < 0) {
				log_warnx("slot %u: %s", s->idx, e.msg);
				wrk__slot_drop_conn(s);
				continue;
			}
		}
		if ((stopping || sick) && s->consuming)
			slot_stop_consuming(s);
		if (s->c == NULL)
			continue;
		if (!s->busy && s->nheld > 0 && !stopping && !sick) {
			struct wrk_amqp_msg m = s->held[0];
			memmove(&s->held[0], &s->held[1], (s->nheld - 1) * sizeof(s->held[0]));
			s->nheld--;
			(void)start_job(s, &m);
			continue;
		}
		rc = wrk_amqp_wait(s->c, PUMP_MS, s->efd, &ev, &e);
		if (rc < 0) {
			if (d->cfg->namqp_urls > 1)
				log_warnx("slot %u: connection to %s lost: %s; failing over to %s",
				    s->idx, d->cfg->amqp_urls[s->cur], e.msg, d->cfg->amqp_urls[s->node]);
			else
				log_warnx("slot %u: %s; reconnecting", s->idx, e.msg);
			wrk__slot_drop_conn(s);
			continue;
		}
		switch (ev.kind) {
		case WRK_AMQP_EV_DELIVERY:
			if (wrk__slot_is_control(s, &ev.msg))
				wrk__slot_control(s, &ev.msg);
			else if (atomic_load(&d->stopping) || s->busy)
				hold(s, &ev.msg);
			else if (!wrk_storehealth_all_healthy(d->health))
				/* Sent before our cancel took effect: back to the queue, untouched. */
				(void)wrk_amqp_nack(s->c, ev.msg.tag, 1, &e);
			else
				(void)start_job(s, &ev.msg);
			break;
		case WRK_AMQP_EV_WAKE:
			efd_drain(s->efd);
			check_job(s);
			break;
		case WRK_AMQP_EV_CANCEL:
			if (s->ctl_tag[0] != '\0' && strcmp(ev.msg.consumer_tag, s->ctl_tag) == 0) {
				/* Our control queue went away: a new connection makes a new one. */
				log_warnx("slot %u: the broker cancelled the control consumer; "
				    "reconnecting", s->idx);
				wrk__slot_drop_conn(s);
				break;
			}
			/* The queue was deleted or its leader moved: declare it again and resubscribe. */
			log_warnx("slot %u: the broker cancelled consumer %s; resubscribing", s->idx,
			    ev.msg.consumer_tag);
			for (i = 0; i < s->ntags; i++) {
				if (strcmp(s->tags[i], ev.msg.consumer_tag) == 0) {
					memmove(&s->tags[i], &s->tags[i + 1],
					    (s->ntags - i - 1) * sizeof(s->tags[0]));
					s->ntags--;
					break;
				}
			}
			if (wrk_amqp_declare(s->c, &d->topo, &e) < 0) {
				log_warnx("slot %u: %s", s->idx, e.msg);
				wrk__slot_drop_conn(s);
				break;
			}
			/* Cancel the rest too, then resubscribe all queues at once when idle. */
			for (i = 0; i < s->ntags; i++)
				(void)wrk_amqp_cancel(s->c, s->tags[i], &e);
			s->ntags = 0;
			s->consuming = 0;
			break;
		case WRK_AMQP_EV_BLOCKED:
		case WRK_AMQP_EV_UNBLOCKED:
			log_block(s, ev.kind);
			break;
		default:
			break;
		}
		wrk_amqp_msg_clear(&ev.msg);
	}
	if (s->c != NULL && s->consuming)
		slot_stop_consuming(s);
	for (i = 0; i < s->nheld; i++) {
		if (s->c != NULL)
			(void)wrk_amqp_nack(s->c, s->held[i].tag, 1, &e);
		wrk_amqp_msg_clear(&s->held[i]);
	}
	s->nheld = 0;
	wrk__slot_drop_conn(s);
	atomic_store(&s->beat_ms, 0);     /* gone, not stuck */
	atomic_fetch_add(&d->exited, 1);
	return NULL;
}

/* The sweeper leaves alone the worker VMs of the commands this process runs. */
static int
sweep_is_running(void *ud, const char *id)
{
	return wrk_running_has(ud, id);
}

static void
sweep_report(void *ud, const char *line)
{
	(void)ud;
	log_info("sweep: %s", line);
}

/* Sweeps at start and periodically, with vCenter connections of its own. */
static struct wrk_sweeper *
sweeper_start(const struct wrk_config *cfg, struct wrk_running *running)
{
	struct wrk_sweeper *sw = NULL;
	struct wrk_sweep_opts so;
	unsigned every = cfg->sweep_interval_s;
	struct sw_err e;

	memset(&so, 0, sizeof(so));
	so.max_age_s = cfg->sweep_max_age_s;
	if (every == 0)
		return NULL;
	so.is_running = sweep_is_running;
	so.running_ud = running;
	so.report = sweep_report;
	if (wrk_sweeper_start(cfg, &so, every, &sw, &e) < 0)
		log_warnx("sweeper not started: %s", e.msg);
	return sw;
}

/*
 * Pings the service manager's watchdog while the main loop turns and every
 * slot thread shows life; a stuck slot withholds it (logged once).
 */
static void
watchdog(struct daemon *d, unsigned nslots, int *stalled)
{
	uint64_t beats[64], now = sw_mono_ms();
	unsigned i, n = nslots < 64 ? nslots : 64, idx = 0;

	for (i = 0; i < n; i++)
		beats[i] = atomic_load(&d->slots[i].beat_ms);
	if (wrk_notify_all_alive(beats, n, now, SLOT_STALL_MS, &idx)) {
		if (*stalled)
			log_info("slot %u turns again: watchdog pings resume", idx);
		*stalled = 0;
		wrk_notify_watchdog(now);
		return;
	}
	if (!*stalled)
		log_errx("slot %u has been stuck for %llu s: withholding the watchdog so the "
		    "service manager restarts the daemon", idx,
		    (unsigned long long)((now - beats[idx]) / 1000));
	*stalled = 1;
}

int
wrk_daemon_run(const struct wrk_config *cfg, wrk_runner_fn run,
    void (*clear)(struct proto_event *ev), struct sw_err *e)
{
	struct daemon d;
	struct wrk_sweeper *sweeper = NULL;
	struct wrk_limits *limits = NULL;
	sigset_t set, old;
	unsigned i, started = 0;
	uint64_t grace_end = 0, hard_end = 0;
	int rc = 0, sig, ready = 0, stalled = 0;
	uint32_t node0 = 0;

	memset(&d, 0, sizeof(d));
	if (getrandom(&node0, sizeof(node0), GRND_NONBLOCK) != (ssize_t)sizeof(node0))
		node0 = (uint32_t)getpid() * 2654435761u;
	d.cfg = cfg;
	wrk_daemon_topology(cfg, &d.topo);
	d.running = wrk_running_new();
	d.nslots = cfg->jobs ? cfg->jobs : 1;
	d.slots = calloc(d.nslots, sizeof(*d.slots));
	if (d.running == NULL || d.slots == NULL) {
		rc = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	/* Zero cost when no limit is set: no connection, no hook in the jobs. */
	if (wrk_config_limits_on(cfg)) {
		if ((rc = wrk_limits_new(cfg, &limits, e)) < 0)
			goto out;
		log_info("concurrency limits: vcenter %u, host %u, datastore %u (0: unlimited), "
		    "%zu named; a command at a limit waits %u s; tokens %s.*",
		    cfg->limits[WRK_LIMIT_VCENTER], cfg->limits[WRK_LIMIT_HOST],
		    cfg->limits[WRK_LIMIT_DATASTORE], cfg->nlimit_overrides, cfg->limit_wait_s,
		    cfg->amqp_limit_prefix);
	}
	if (cfg->nstores > 0) {
		struct wrk_storehealth_opts ho;

		memset(&ho, 0, sizeof(ho));
		ho.interval_ms = cfg->probe_interval_s * 1000u;
		ho.timeout_ms = cfg->probe_timeout_s * 1000u;
		ho.require_mount = cfg->require_mount;
		if ((rc = wrk_storehealth_start(cfg->stores, cfg->nstores, &ho, &d.health, e)) < 0)
			goto out;
	}
	/* Signals go to this thread only, through sigtimedwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);

	for (i = 0; i < d.nslots; i++) {
		struct slot *s = &d.slots[i];

		s->d = &d;
		s->idx = i;
		/* Slots, and workers, spread over the nodes: a random start, then one node apart. */
		s->node = (size_t)((node0 + i) % cfg->namqp_urls);
		pthread_mutex_init(&s->mu, NULL);
		s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->efd < 0) {
			rc = sw_errno(e, errno, "eventfd");
			break;
		}
		s->disp.cfg = cfg;
		s->disp.worker = cfg->name;
		s->disp.run = run;
		s->disp.clear = clear;
		s->disp.running = d.running;
		s->disp.delivery_limit = cfg->delivery_limit;
		s->disp.retry_delays_s = cfg->retry_delays_s;
		s->disp.nretry_delays = cfg->nretry_delays;
		s->disp.on_progress = slot_progress;
		s->disp.progress_ud = s;
		s->disp.deadline = &s->deadline_ms;
		s->disp.limits = limits;
		s->disp.limit_wait_s = cfg->limit_wait_s;
		if (d.health != NULL) {
			s->disp.store_sick = daemon_store_sick;
			s->disp.store_sick_ud = d.health;
		}
		if (pthread_create(&s->thr, NULL, slot_main, s) != 0) {
			rc = sw_errf(e, -EAGAIN, "cannot start slot thread %u", i);
			close(s->efd);
			break;
		}
		started++;
	}
	if (started > 0)
		log_info("started %u job slot(s) consuming %zu queue(s) as %s", started, cfg->nqueues,
		    cfg->name);
	wrk_metrics_set_slots(started);
	if (rc < 0)
		atomic_store(&d.stopping, 1);
	else
		sweeper = sweeper_start(cfg, d.running);

	while ((unsigned)atomic_load(&d.exited) < started) {
		struct timespec ts = { 0, 200 * 1000000L };
		siginfo_t si;

		/* READY only once every slot consumes: a unit ordered after us can rely on it. */
		if (!ready && started > 0 && atomic_load(&d.connected) >= started &&
		    !atomic_load(&d.stopping)) {
			wrk_notify_ready(started);
			ready = 1;
		}
		watchdog(&d, started, &stalled);
		sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGHUP) {
			struct sw_err le;
			if (wrk_log_reopen(&le) < 0)
				log_warnx("%s", le.msg);
			else
				log_info("log reopened");
		} else if (sig == SIGTERM || sig == SIGINT) {
			if (!atomic_load(&d.stopping)) {
				log_info("signal %d: stopping; running jobs get %u s to finish", sig,
				    cfg->grace_s);
				atomic_store(&d.stopping, 1);
				wrk_notify_stopping();
				grace_end = sw_mono_ms() + (uint64_t)cfg->grace_s * 1000u;
			} else {
				log_info("signal %d again: cancelling running jobs", sig);
				grace_end = sw_mono_ms();
			}
			for (i = 0; i < started; i++)
				slot_wake(&d.slots[i]);
		}
		if (atomic_load(&d.stopping) && grace_end != 0 && sw_mono_ms() >= grace_end &&
		    !atomic_load(&d.cancel_all)) {
			log_warnx("grace period over: cancelling %zu running job(s)",
			    wrk_running_count(d.running));
			atomic_store(&d.cancel_all, 1);
			hard_end = sw_mono_ms() + CANCEL_WAIT_S * 1000u;
			for (i = 0; i < started; i++)
				slot_wake(&d.slots[i]);
		}
		if (hard_end != 0 && sw_mono_ms() >= hard_end) {
			/* A job that ignores its cancel flag: exiting closes the sockets, which requeues. */
			log_errx("jobs did not stop after cancel; exiting anyway");
			_exit(1);
		}
	}
	wrk_sweeper_stop(sweeper);
	for (i = 0; i < started; i++) {
		pthread_join(d.slots[i].thr, NULL);
		close(d.slots[i].efd);
		pthread_mutex_destroy(&d.slots[i].mu);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		log_info("stopped");
out:
	/* Closing its connection gives back any token still held. */
	wrk_limits_free(limits);
	wrk_storehealth_stop(d.health);
	free(d.slots);
	wrk_running_free(d.running);
	return rc;
}
