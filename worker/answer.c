/*
 * The end of a delivery (see daemon_int.h): the slot thread publishes what
 * the job decided (the final or retrying event, the command handed to its
 * retry queue or to the dead-letter exchange) with publisher confirms, and
 * only then acknowledges the delivery.  Each step that fails leaves the
 * command with the broker: nothing is lost, at worst an attempt repeats.
 */
#include "worker/daemon_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"
#include "common/log.h"
#include "worker/config.h"
#include "worker/log.h"
#include "worker/metrics.h"
#include "worker/running.h"

/* Under connection.blocked a publish would stall the slot (and its heartbeats). */
static int
wait_unblocked(struct slot *s, struct sw_err *e)
{
	struct wrk_amqp_ev ev;
	int rc;

	while (wrk_amqp_blocked(s->c)) {
		atomic_store(&s->beat_ms, sw_mono_ms());
		rc = wrk_amqp_wait(s->c, PUMP_MS, -1, &ev, e);
		if (rc < 0)
			return rc;
		wrk__slot_on_event(s, &ev);
		wrk_amqp_msg_clear(&ev.msg);
	}
	return 0;
}

/*
 * Publishes an event and waits for the broker's confirms; a final event
 * also goes to the command's reply_to queue.
 */
static int
publish_event(struct slot *s, const struct wrk_outcome *out, int final, struct sw_err *e)
{
	struct wrk_amqp_pub p;
	uint64_t seq = 0;
	int rc;

	if ((rc = wait_unblocked(s, e)) < 0)
		return rc;
	memset(&p, 0, sizeof(p));
	p.exchange = s->d->cfg->amqp_events;
	p.routing_key = out->routing_key;
	p.message_id = out->id[0] ? out->id : NULL;
	p.correlation_id = s->msg.correlation_id[0] ? s->msg.correlation_id : NULL;
	p.body = out->event;
	p.len = out->event_len;
	rc = wrk_amqp_publish(s->c, &p, &seq, e);
	if (rc < 0)
		return rc;
	if (final && s->msg.reply_to[0] != '\0') {
		p.exchange = "";
		p.routing_key = s->msg.reply_to;
		rc = wrk_amqp_publish(s->c, &p, &seq, e);
		if (rc < 0)
			return rc;
	}
	return wrk_amqp_wait_confirm(s->c, seq, CONFIRM_TIMEOUT, wrk__slot_on_event, s, e);
}

/*
 * Hands the delivered command on, as the broker keeps it: to the delay
 * queue of its zone for the next attempt (WRK_DISP_RETRY), or to the
 * dead-letter exchange (WRK_DISP_DEAD), with the attempt number and this
 * attempt's error in its headers.  The same body and properties: the
 * publisher's reply_to and correlation_id go with it.  Confirmed before
 * the delivery is acknowledged, so a crash in between repeats an attempt
 * and never loses one.
 */
static int
republish(struct slot *s, const struct wrk_outcome *out, struct sw_err *e)
{
	const struct wrk_config *cfg = s->d->cfg;
	struct wrk_amqp_pub p;
	char key[WRK_AMQP_STR_MAX + 16], err[WRK_AMQP_HDR_ERROR_MAX];
	uint64_t seq = 0;
	size_t i;
	int rc;

	memset(&p, 0, sizeof(p));
	if (out->disp == WRK_DISP_RETRY) {
		/* The delivery's routing key is its zone (the publisher's, or the delay queue's). */
		for (i = 0; i < cfg->nqueues; i++)
			if (strcmp(cfg->queues[i], s->msg.routing_key) == 0)
				break;
		if (i == cfg->nqueues)
			return sw_errf(e, SW_ENOTFOUND, "routing key '%s' is none of this worker's "
			    "zones", s->msg.routing_key);
		if (wrk_amqp_retry_key(s->msg.routing_key, out->retry_delay_s, key,
		    sizeof(key)) < 0)
			return sw_errf(e, SW_ETOOBIG, "retry routing key too long");
		p.exchange = cfg->amqp_retry_exchange;
		p.routing_key = key;
		/* Waiting for a concurrency token spends no attempt. */
		p.attempt = (int64_t)out->attempt + (out->waiting ? 0 : 1);
	} else {
		p.exchange = cfg->amqp_dlx;
		p.routing_key = s->msg.routing_key;
		p.attempt = out->attempt;
	}
	(void)snprintf(err, sizeof(err), "%s: %s", out->errcode[0] ? out->errcode : "INTERNAL",
	    out->message);
	p.error = err;
	if (out->waiting)
		/* The last attempt's error, if there was one, stays what it was. */
		p.error = s->msg.error[0] ? s->msg.error : NULL;
	p.message_id = s->msg.message_id[0] ? s->msg.message_id : NULL;
	p.correlation_id = s->msg.correlation_id[0] ? s->msg.correlation_id : NULL;
	p.reply_to = s->msg.reply_to[0] ? s->msg.reply_to : NULL;
	p.mandatory = 1;
	p.body = s->msg.body;
	p.len = s->msg.len;
	if ((rc = wait_unblocked(s, e)) < 0 || (rc = wrk_amqp_publish(s->c, &p, &seq, e)) < 0)
		return rc;
	return wrk_amqp_wait_confirm(s->c, seq, CONFIRM_TIMEOUT, wrk__slot_on_event, s, e);
}

void
wrk__slot_finish_job(struct slot *s)
{
	struct wrk_outcome out;
	struct sw_err e;
	int rc, republished = 0;

	pthread_join(s->jthr, NULL);
	s->busy = 0;
	pthread_mutex_lock(&s->mu);
	out = s->out;
	memset(&s->out, 0, sizeof(s->out));
	s->done = 0;
	free(s->prog);
	s->prog = NULL;
	pthread_mutex_unlock(&s->mu);

	wrk_log_set_cmd(out.id[0] ? out.id : (s->msg.message_id[0] ? s->msg.message_id : NULL),
	    out.type);
	if (out.succeeded)
		log_info("succeeded in %llu ms", (unsigned long long)out.elapsed_ms);
	else if (out.waiting)
		log_info("waiting for a token of %s (at its limit): back in %u s, attempt %u unspent",
		    out.limit, out.retry_delay_s, out.attempt);
	else if (!out.parsed)
		log_warnx("poison message (delivery attempt %lld) after %llu ms: %s: %s",
		    (long long)s->msg.delivery_count + 1, (unsigned long long)out.elapsed_ms,
		    out.errcode, out.message);
	else if (out.cancelled)
		log_info("cancelled on request after %llu ms: %s", (unsigned long long)out.elapsed_ms,
		    out.message);
	else
		log_warnx("failed after %llu ms: %s: %s%s", (unsigned long long)out.elapsed_ms,
		    out.errcode, out.message,
		    out.disp == WRK_DISP_REQUEUE ? " (requeued)" :
		    out.disp == WRK_DISP_DEAD ? " (dead-lettered)" : "");
	if (out.waiting)
		wrk_metrics_limit_wait(out.limit_kind);
	if (out.disp == WRK_DISP_RETRY && !out.waiting)
		log_info("attempt %u of %zu failed; attempt %u in %u s", out.attempt,
		    s->disp.nretry_delays + 1, out.attempt + 1, out.retry_delay_s);
	wrk_metrics_job_end();
	wrk_metrics_command(out.type, out.succeeded ? WRK_METRICS_SUCCEEDED :
	    !out.parsed ? WRK_METRICS_INVALID :
	    out.disp == WRK_DISP_REQUEUE || out.waiting ? WRK_METRICS_REQUEUED :
	    WRK_METRICS_FAILED, out.elapsed_ms,
	    out.bytes_produced);

	if (s->c == NULL || s->job_gen != s->gen) {
		/* Its delivery tag died with the old channel: the broker redelivers the command. */
		log_warnx("connection lost while the command ran: result not sent; the broker "
		    "redelivers the command and it is answered from its committed output");
		goto out;
	}
	if (out.disp == WRK_DISP_RETRY || (out.disp == WRK_DISP_DEAD && s->msg.body != NULL)) {
		/* The command goes on (delay queue, dead-letter queue) before we answer. */
		rc = republish(s, &out, &e);
		if (rc < 0) {
			log_warnx("%s: %s", out.disp == WRK_DISP_RETRY ?
			    "cannot hand the command to its retry queue" :
			    "cannot dead-letter the command with its error", e.msg);
			if (!wrk_amqp_ok(s->c)) {
				/* The broker redelivers it: the same attempt, later. */
				wrk__slot_drop_conn(s);
				goto out;
			}
			if (out.disp == WRK_DISP_RETRY) {
				if (wrk_amqp_nack(s->c, s->msg.tag, 1, &e) < 0)
					wrk__slot_drop_conn(s);
				goto out;
			}
			/* Dead-lettered by the broker instead, without our error header. */
		} else {
			republished = 1;
		}
	}
	if (out.event != NULL) {
		rc = publish_event(s, &out, out.disp != WRK_DISP_RETRY, &e);
		if (rc < 0) {
			log_warnx("%s event not confirmed: %s",
			    out.disp == WRK_DISP_RETRY ? "retrying" : "final", e.msg);
			if (!wrk_amqp_ok(s->c)) {
				wrk__slot_drop_conn(s);
				goto out;
			}
			if (!republished) {
				/* Refused by the broker: give the command back rather than lose its answer. */
				if (wrk_amqp_nack(s->c, s->msg.tag, 1, &e) < 0)
					wrk__slot_drop_conn(s);
				goto out;
			}
			/* The command is safe in its next queue: only the event is lost. */
		}
	}
	switch (out.disp) {
	case WRK_DISP_ACK:
	case WRK_DISP_RETRY:
		rc = wrk_amqp_ack(s->c, s->msg.tag, &e);
		break;
	case WRK_DISP_REQUEUE:
		rc = wrk_amqp_nack(s->c, s->msg.tag, 1, &e);
		break;
	default:
		rc = republished ? wrk_amqp_ack(s->c, s->msg.tag, &e) :
		    wrk_amqp_nack(s->c, s->msg.tag, 0, &e);
		break;
	}
	if (rc < 0) {
		log_warnx("%s", e.msg);
		wrk__slot_drop_conn(s);
	} else if (out.parsed && out.id[0] != '\0' &&
	    (out.disp == WRK_DISP_ACK || out.disp == WRK_DISP_DEAD)) {
		/* Answered for good: a cancel that comes now is told so. */
		wrk_running_finished(s->d->running, out.id, out.succeeded ? "succeeded" : "failed");
	}
out:
	wrk_log_set_cmd(NULL, NULL);
	wrk_outcome_clear(&out);
	wrk_amqp_msg_clear(&s->msg);
}
