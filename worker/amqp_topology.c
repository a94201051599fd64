/*
 * The broker topology (docs/protocol.md, "Broker objects"), declared
 * idempotently: the command exchange with one quorum queue per zone, the
 * events exchange, the dead-letter exchange and queue, the retry exchange
 * with one delay queue per zone and delay; and the private and passive
 * queue declarations snapctl and the tests use.
 */
#include "worker/amqp_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
wrk_amqp_queue_name(const struct wrk_topology *t, const char *zone, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s.%s", t->exchange, zone);

	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

int
wrk_amqp_retry_key(const char *zone, unsigned delay_s, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s.%us", zone, delay_s);

	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

static void
arg_str(amqp_table_entry_t *a, const char *key, const char *value)
{
	a->key = amqp_cstring_bytes(key);
	a->value.kind = AMQP_FIELD_KIND_UTF8;
	a->value.value.bytes = amqp_cstring_bytes(value);
}

static void
arg_int(amqp_table_entry_t *a, const char *key, int64_t value)
{
	a->key = amqp_cstring_bytes(key);
	a->value.kind = AMQP_FIELD_KIND_I64;
	a->value.value.i64 = value;
}

/*
 * A delay queue: its messages wait delay_s (the same for all, so they expire
 * in order) and go back to the command exchange with the zone as routing
 * key.  At-least-once dead-lettering (RabbitMQ 3.10) keeps a waiting command
 * through a node's loss; it needs reject-publish overflow.
 */
static int
declare_delay_queue(struct wrk_amqp *c, const char *name, unsigned delay_s,
    const char *exchange, const char *zone, struct sw_err *e)
{
	amqp_table_entry_t a[6];
	amqp_table_t args;

	arg_str(&a[0], "x-queue-type", "quorum");
	arg_int(&a[1], "x-message-ttl", (int64_t)delay_s * 1000);
	arg_str(&a[2], "x-dead-letter-exchange", exchange);
	arg_str(&a[3], "x-dead-letter-routing-key", zone);
	arg_str(&a[4], "x-dead-letter-strategy", "at-least-once");
	arg_str(&a[5], "x-overflow", "reject-publish");
	args.num_entries = 6;
	args.entries = a;
	(void)amqp_queue_declare(c->conn, CHAN, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
	if (wrk__amqp_rpc_check(c, "queue.declare", e) < 0)
		return sw_errctx(e, "declaring retry queue %s (an existing queue with other "
		    "arguments is refused by the broker)", name);
	return 0;
}

static int
declare_retry(struct wrk_amqp *c, const struct wrk_topology *t, const char *zone,
    struct sw_err *e)
{
	char q[512], key[300];
	size_t i;
	int rc;

	for (i = 0; i < t->nretry_delays; i++) {
		if (wrk_amqp_retry_key(zone, t->retry_delays_s[i], key, sizeof(key)) < 0 ||
		    snprintf(q, sizeof(q), "%s.%s", t->retry_exchange, key) >= (int)sizeof(q))
			return sw_errf(e, SW_ETOOBIG, "retry queue name too long");
		if ((rc = declare_delay_queue(c, q, t->retry_delays_s[i], t->exchange, zone,
		    e)) < 0 ||
		    (rc = wrk_amqp_bind(c, q, t->retry_exchange, key, e)) < 0)
			return rc;
	}
	return 0;
}

static int
declare_exchange(struct wrk_amqp *c, const char *name, const char *type, struct sw_err *e)
{
	(void)amqp_exchange_declare(c->conn, CHAN, amqp_cstring_bytes(name),
	    amqp_cstring_bytes(type), 0, 1, 0, 0, amqp_empty_table);
	if (wrk__amqp_rpc_check(c, "exchange.declare", e) < 0)
		return sw_errctx(e, "declaring exchange %s", name);
	return 0;
}

static int
declare_quorum(struct wrk_amqp *c, const char *name, const char *dlx, unsigned limit,
    struct sw_err *e)
{
	amqp_table_entry_t a[3];
	amqp_table_t args;
	int n = 0;

	a[n].key = amqp_cstring_bytes("x-queue-type");
	a[n].value.kind = AMQP_FIELD_KIND_UTF8;
	a[n].value.value.bytes = amqp_cstring_bytes("quorum");
	n++;
	if (dlx != NULL) {
		a[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
		a[n].value.kind = AMQP_FIELD_KIND_UTF8;
		a[n].value.value.bytes = amqp_cstring_bytes(dlx);
		n++;
		a[n].key = amqp_cstring_bytes("x-delivery-limit");
		a[n].value.kind = AMQP_FIELD_KIND_I64;
		a[n].value.value.i64 = limit;
		n++;
	}
	args.num_entries = n;
	args.entries = a;
	(void)amqp_queue_declare(c->conn, CHAN, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
	if (wrk__amqp_rpc_check(c, "queue.declare", e) < 0)
		return sw_errctx(e, "declaring queue %s (an existing queue with other arguments is "
		    "refused by the broker)", name);
	return 0;
}

int
wrk_amqp_bind(struct wrk_amqp *c, const char *queue, const char *exchange, const char *key,
    struct sw_err *e)
{
	(void)amqp_queue_bind(c->conn, CHAN, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
	    amqp_cstring_bytes(key), amqp_empty_table);
	if (wrk__amqp_rpc_check(c, "queue.bind", e) < 0)
		return sw_errctx(e, "binding %s to %s", queue, exchange);
	return 0;
}

int
wrk_amqp_declare(struct wrk_amqp *c, const struct wrk_topology *t, struct sw_err *e)
{
	char q[512];
	size_t i;
	int rc;

	if ((rc = declare_exchange(c, t->exchange, "direct", e)) < 0 ||
	    (rc = declare_exchange(c, t->events, "topic", e)) < 0 ||
	    (rc = declare_exchange(c, t->dlx, "fanout", e)) < 0 ||
	    (rc = declare_quorum(c, t->dead_queue, NULL, 0, e)) < 0 ||
	    (rc = wrk_amqp_bind(c, t->dead_queue, t->dlx, "", e)) < 0)
		return rc;
	if (t->retry_exchange != NULL && t->nretry_delays > 0 &&
	    (rc = declare_exchange(c, t->retry_exchange, "direct", e)) < 0)
		return rc;
	if (t->control != NULL && (rc = declare_exchange(c, t->control, "fanout", e)) < 0)
		return rc;
	for (i = 0; i < t->nzones; i++) {
		if (wrk_amqp_queue_name(t, t->zones[i], q, sizeof(q)) < 0)
			return sw_errf(e, SW_ETOOBIG, "queue name too long");
		if ((rc = declare_quorum(c, q, t->dlx, t->delivery_limit, e)) < 0 ||
		    (rc = wrk_amqp_bind(c, q, t->exchange, t->zones[i], e)) < 0)
			return rc;
		if (t->retry_exchange != NULL && (rc = declare_retry(c, t, t->zones[i], e)) < 0)
			return rc;
	}
	return 0;
}

int
wrk_amqp_private_queue(struct wrk_amqp *c, char *ret_name, size_t namesz, struct sw_err *e)
{
	amqp_queue_declare_ok_t *ok;

	ok = amqp_queue_declare(c->conn, CHAN, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (wrk__amqp_rpc_check(c, "queue.declare", e) < 0)
		return e ? e->code : SW_ENET;
	if (ok == NULL || ok->queue.len == 0 || ok->queue.len >= namesz)
		return sw_errf(e, SW_EINTERNAL, "queue.declare: bad reply");
	wrk__amqp_bytes_copy(ret_name, namesz, ok->queue);
	return 0;
}

int
wrk_amqp_queue_counts(struct wrk_amqp *c, const char *queue, uint32_t *ret_messages,
    uint32_t *ret_consumers, struct sw_err *e)
{
	amqp_queue_declare_ok_t *ok;
	int rc;

	ok = amqp_queue_declare(c->conn, CHAN, amqp_cstring_bytes(queue), 1, 0, 0, 0,
	    amqp_empty_table);
	rc = wrk__amqp_rpc_check(c, "queue.declare", e);
	if (rc < 0)
		return rc;
	if (ok == NULL)
		return sw_errf(e, SW_EINTERNAL, "queue.declare: no reply");
	*ret_messages = ok->message_count;
	*ret_consumers = ok->consumer_count;
	return 0;
}

int
wrk_amqp_cancel_record_name(const char *prefix, const char *id, char *buf, size_t bufsz)
{
	size_t i, p = strlen(prefix);
	int n = snprintf(buf, bufsz, "%s.%s", prefix, id);

	if (n < 0 || (size_t)n >= bufsz)
		return -ENAMETOOLONG;
	/* Ids are UUIDs in either case; the record is named in lower case. */
	for (i = p + 1; buf[i] != '\0'; i++)
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] = (char)(buf[i] - 'A' + 'a');
	return 0;
}

int
wrk_amqp_cancel_record_declare(struct wrk_amqp *c, const char *name, unsigned ttl_s,
    struct sw_err *e)
{
	amqp_table_entry_t a[2];
	amqp_table_t args;

	arg_str(&a[0], "x-queue-type", "quorum");
	arg_int(&a[1], "x-expires", (int64_t)ttl_s * 1000);
	args.num_entries = 2;
	args.entries = a;
	(void)amqp_queue_declare(c->conn, CHAN, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
	if (wrk__amqp_rpc_check(c, "queue.declare", e) < 0)
		return sw_errctx(e, "declaring cancel record %s", name);
	return 0;
}

int
wrk_amqp_exists(struct wrk_amqp *c, const char *queue, struct sw_err *e)
{
	amqp_rpc_reply_t r;

	if (!c->ok)
		return sw_errf(e, SW_ENET, "connection to broker is down");
	if (!c->side_open) {
		(void)amqp_channel_open(c->conn, SIDE_CHAN);
		r = amqp_get_rpc_reply(c->conn);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return wrk__amqp_rpc_check(c, "channel.open (side channel)", e);
		c->side_open = 1;
	}
	(void)amqp_queue_declare(c->conn, SIDE_CHAN, amqp_cstring_bytes(queue), 1, 0, 0, 0,
	    amqp_empty_table);
	r = amqp_get_rpc_reply(c->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code == 404) {
		amqp_channel_close_ok_t ok = { 0 };

		/* NOT_FOUND closed the side channel only: acknowledge, reopen next time. */
		c->side_open = 0;
		if (amqp_send_method(c->conn, SIDE_CHAN, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
		    AMQP_STATUS_OK) {
			c->ok = 0;
			return sw_errf(e, SW_ENET, "channel.close-ok: connection lost");
		}
		return 0;
	}
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_ok_t ok = { 0 };
		amqp_channel_close_t *m = r.reply.decoded;

		c->side_open = 0;
		(void)amqp_send_method(c->conn, SIDE_CHAN, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		return sw_errf(e, SW_EREMOTE, "queue.declare (passive) %s: %u %.*s", queue,
		    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	}
	/* Anything else (connection closed, timeout): the connection is gone. */
	c->side_open = 0;
	c->ok = 0;
	return sw_errf(e, SW_ENET, "queue.declare (passive) %s: connection lost", queue);
}

int
wrk_amqp_declare_exchange(struct wrk_amqp *c, const char *name, const char *type,
    struct sw_err *e)
{
	return declare_exchange(c, name, type, e);
}

/* Opens SIDE_CHAN when it is closed; 0 or a connection error. */
static int
side_open(struct wrk_amqp *c, struct sw_err *e)
{
	amqp_rpc_reply_t r;

	if (!c->ok)
		return sw_errf(e, SW_ENET, "connection to broker is down");
	if (c->side_open)
		return 0;
	(void)amqp_channel_open(c->conn, SIDE_CHAN);
	r = amqp_get_rpc_reply(c->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return wrk__amqp_rpc_check(c, "channel.open (side channel)", e);
	c->side_open = 1;
	return 0;
}

int
wrk_amqp_exclusive_take(struct wrk_amqp *c, const char *queue, struct sw_err *e)
{
	amqp_rpc_reply_t r;
	int rc;

	if ((rc = side_open(c, e)) < 0)
		return rc;
	/* Not durable, exclusive, not auto-delete: it lives exactly as long as this connection. */
	(void)amqp_queue_declare(c->conn, SIDE_CHAN, amqp_cstring_bytes(queue), 0, 0, 1, 0,
	    amqp_empty_table);
	r = amqp_get_rpc_reply(c->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_ok_t ok = { 0 };
		amqp_channel_close_t *m = r.reply.decoded;
		unsigned code = m->reply_code;

		/* RESOURCE_LOCKED (another connection holds it) closed the side channel only. */
		c->side_open = 0;
		if (amqp_send_method(c->conn, SIDE_CHAN, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
		    AMQP_STATUS_OK) {
			c->ok = 0;
			return sw_errf(e, SW_ENET, "channel.close-ok: connection lost");
		}
		if (code == 405)
			return 0;
		return sw_errf(e, SW_EREMOTE, "queue.declare (exclusive) %s: %u %.*s", queue, code,
		    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	}
	c->side_open = 0;
	c->ok = 0;
	return sw_errf(e, SW_ENET, "queue.declare (exclusive) %s: connection lost", queue);
}

int
wrk_amqp_queue_delete(struct wrk_amqp *c, const char *queue, struct sw_err *e)
{
	amqp_rpc_reply_t r;
	int rc;

	if ((rc = side_open(c, e)) < 0)
		return rc;
	(void)amqp_queue_delete(c->conn, SIDE_CHAN, amqp_cstring_bytes(queue), 0, 0);
	r = amqp_get_rpc_reply(c->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_ok_t ok = { 0 };
		amqp_channel_close_t *m = r.reply.decoded;
		unsigned code = m->reply_code;

		c->side_open = 0;
		if (amqp_send_method(c->conn, SIDE_CHAN, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
		    AMQP_STATUS_OK) {
			c->ok = 0;
			return sw_errf(e, SW_ENET, "channel.close-ok: connection lost");
		}
		return sw_errf(e, SW_EREMOTE, "queue.delete %s: %u", queue, code);
	}
	c->side_open = 0;
	c->ok = 0;
	return sw_errf(e, SW_ENET, "queue.delete %s: connection lost", queue);
}
