/*
 * The broker topology of PROTOCOL.md ("Broker objects"), declared
 * idempotently: the command exchange with one quorum queue per zone, the
 * events exchange, the dead-letter exchange and queue; and the private and
 * passive queue declarations snapctl and the tests use.
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
	for (i = 0; i < t->nzones; i++) {
		if (wrk_amqp_queue_name(t, t->zones[i], q, sizeof(q)) < 0)
			return sw_errf(e, SW_ETOOBIG, "queue name too long");
		if ((rc = declare_quorum(c, q, t->dlx, t->delivery_limit, e)) < 0 ||
		    (rc = wrk_amqp_bind(c, q, t->exchange, t->zones[i], e)) < 0)
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
