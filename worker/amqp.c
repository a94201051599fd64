#include "worker/amqp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>

#include "common/io.h"
#include "common/log.h"
#include "common/num.h"

#define CHAN 1
#define WRK_AMQP_CONFIRM_WINDOW 4096

static int
ooo_get(const uint64_t *b, uint64_t seq)
{
	size_t i = (size_t)(seq % WRK_AMQP_CONFIRM_WINDOW);

	return (b[i / 64] >> (i % 64)) & 1;
}

static void
ooo_set(uint64_t *b, uint64_t seq, int on)
{
	size_t i = (size_t)(seq % WRK_AMQP_CONFIRM_WINDOW);

	if (on)
		b[i / 64] |= (uint64_t)1 << (i % 64);
	else
		b[i / 64] &= ~((uint64_t)1 << (i % 64));
}

struct wrk_amqp {
	amqp_connection_state_t conn;
	int ok;
	int blocked;
	int confirm;
	uint64_t next_seq;      /* sequence number of the next publish in confirm mode */
	uint64_t acked;         /* every publish <= acked is confirmed */
	/* Acks beyond the watermark (the broker may confirm out of order), by seq % WINDOW. */
	uint64_t ooo[WRK_AMQP_CONFIRM_WINDOW / 64];
	int returned;           /* a mandatory publish came back since the last wait_confirm */
	int nacked;
	unsigned heartbeat;
	unsigned timeout_ms;
};

unsigned
wrk_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint32_t rnd)
{
	uint64_t hi = base_ms;

	while (attempt-- > 0 && hi < cap_ms)
		hi *= 2;
	if (hi > cap_ms)
		hi = cap_ms;
	if (hi <= base_ms)
		return base_ms;
	/* Full jitter: workers that lost the same broker do not come back in lockstep. */
	return base_ms + (unsigned)(rnd % (hi - base_ms + 1));
}

/* Percent-decodes [s, s+n) into out; refuses NULs and overlong results. */
static int
pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '%') {
			int h, l;
			if (i + 2 >= n)
				return -EINVAL;
			h = sw_hexval((unsigned char)s[i + 1]);
			l = sw_hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			ch = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= outsz)
			return -ENAMETOOLONG;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

int
wrk_amqp_url_parse(const char *url, struct wrk_amqp_url *ret, struct sw_err *e)
{
	struct wrk_amqp_url u;
	const char *p, *auth_end, *hostp, *slash, *at, *colon;
	size_t hl;

	memset(&u, 0, sizeof(u));
	if (url == NULL)
		return sw_errf(e, SW_EFORMAT, "no broker URL");
	if (strncmp(url, "amqp://", 7) == 0) {
		p = url + 7;
		u.port = 5672;
	} else if (strncmp(url, "amqps://", 8) == 0) {
		p = url + 8;
		u.tls = 1;
		u.port = 5671;
	} else {
		return sw_errf(e, SW_EFORMAT, "broker URL must start with amqp:// or amqps://");
	}
	slash = strchr(p, '/');
	auth_end = slash ? slash : p + strlen(p);
	at = memchr(p, '@', (size_t)(auth_end - p));
	hostp = p;
	if (at != NULL) {
		if (memchr(p, ':', (size_t)(at - p)) != NULL)
			return sw_errf(e, SW_EFORMAT,
			    "broker URL must not carry a password (use a password file)");
		if (pct_decode(p, (size_t)(at - p), u.user, sizeof(u.user)) < 0 || u.user[0] == '\0')
			return sw_errf(e, SW_EFORMAT, "broker URL: bad user name");
		hostp = at + 1;
	} else {
		memcpy(u.user, "guest", 6);
	}
	/* Host: "[v6]" or name/v4, then an optional ":port". */
	if (*hostp == '[') {
		const char *rb = memchr(hostp, ']', (size_t)(auth_end - hostp));
		if (rb == NULL)
			return sw_errf(e, SW_EFORMAT, "broker URL: unterminated [IPv6] host");
		hl = (size_t)(rb - hostp - 1);
		if (hl == 0 || hl >= sizeof(u.host))
			return sw_errf(e, SW_EFORMAT, "broker URL: bad host");
		memcpy(u.host, hostp + 1, hl);
		colon = rb + 1 < auth_end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < auth_end && colon == NULL)
			return sw_errf(e, SW_EFORMAT, "broker URL: junk after host");
	} else {
		colon = memchr(hostp, ':', (size_t)(auth_end - hostp));
		hl = (size_t)((colon ? colon : auth_end) - hostp);
		if (hl >= sizeof(u.host))
			return sw_errf(e, SW_EFORMAT, "broker URL: host too long");
		memcpy(u.host, hostp, hl);
		if (hl == 0)
			memcpy(u.host, "localhost", 10);
	}
	if (colon != NULL) {
		char port[8];
		uint64_t v;
		size_t pl = (size_t)(auth_end - colon - 1);

		if (pl == 0 || pl >= sizeof(port))
			return sw_errf(e, SW_EFORMAT, "broker URL: bad port");
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
		if (sw_parse_u64(port, 1, 65535, &v) < 0)
			return sw_errf(e, SW_EFORMAT, "broker URL: bad port");
		u.port = (unsigned)v;
	}
	if (slash == NULL || slash[1] == '\0') {
		memcpy(u.vhost, "/", 2);
	} else if (pct_decode(slash + 1, strlen(slash + 1), u.vhost, sizeof(u.vhost)) < 0 ||
	    strchr(slash + 1, '/') != NULL || strchr(slash + 1, '?') != NULL) {
		return sw_errf(e, SW_EFORMAT, "broker URL: bad virtual host");
	}
	*ret = u;
	return 0;
}

static const char *
reply_str(amqp_rpc_reply_t r, char *buf, size_t bufsz)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return "ok";
	case AMQP_RESPONSE_NONE:
		return "missing RPC reply";
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		return amqp_error_string2(r.library_error);
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			(void)snprintf(buf, bufsz, "connection closed by broker: %u %.*s",
			    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			return buf;
		}
		if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			(void)snprintf(buf, bufsz, "channel closed by broker: %u %.*s",
			    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			return buf;
		}
		(void)snprintf(buf, bufsz, "broker error, method 0x%08x", r.reply.id);
		return buf;
	}
	return "unknown reply";
}

/* Checks the last RPC; on failure the connection is marked dead (a closed channel is not reopened). */
static int
rpc_check(struct wrk_amqp *c, const char *what, struct sw_err *e)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);
	char buf[300];
	int code;

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	code = SW_ENET;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
		code = SW_EREMOTE;
		if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			if (m->reply_code == 404)
				code = -ENOENT;
			amqp_channel_close_ok_t ok = { 0 };
			(void)amqp_send_method(c->conn, CHAN, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		} else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_ok_t ok = { 0 };
			(void)amqp_send_method(c->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		}
	} else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    r.library_error == AMQP_STATUS_TIMEOUT) {
		code = -ETIMEDOUT;
	}
	c->ok = 0;
	return sw_errf(e, code, "%s: %s", what, reply_str(r, buf, sizeof(buf)));
}

int
wrk_amqp_ok(const struct wrk_amqp *c)
{
	return c != NULL && c->ok;
}

int
wrk_amqp_blocked(const struct wrk_amqp *c)
{
	return c != NULL && c->blocked;
}

static struct timeval
ms_tv(unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

int
wrk_amqp_connect(const struct wrk_amqp_opts *o, struct wrk_amqp **ret, struct sw_err *e)
{
	struct wrk_amqp_url u;
	struct wrk_amqp *c;
	amqp_socket_t *sock;
	amqp_table_entry_t caps[4], props[2];
	amqp_table_t client;
	struct timeval tv;
	char host_s[300];
	int rc, status;

	rc = wrk_amqp_url_parse(o->url, &u, e);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
	c->heartbeat = o->heartbeat;
	c->conn = amqp_new_connection();
	if (c->conn == NULL) {
		free(c);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	(void)snprintf(host_s, sizeof(host_s), "%s:%u", u.host, u.port);
	if (u.tls) {
		sock = amqp_ssl_socket_new(c->conn);
		if (sock == NULL) {
			rc = sw_errf(e, -ENOMEM, "cannot create a TLS socket");
			goto fail;
		}
		amqp_ssl_socket_set_verify_peer(sock, 1);
		amqp_ssl_socket_set_verify_hostname(sock, 1);
		if (o->cacert != NULL) {
			status = amqp_ssl_socket_set_cacert(sock, o->cacert);
			if (status != AMQP_STATUS_OK) {
				rc = sw_errf(e, SW_EAUTH, "CA file %s: %s", o->cacert,
				    amqp_error_string2(status));
				goto fail;
			}
		} else {
			SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
			if (ctx == NULL || SSL_CTX_set_default_verify_paths(ctx) != 1) {
				rc = sw_errf(e, SW_EAUTH, "cannot load the system CA store");
				goto fail;
			}
		}
	} else {
		sock = amqp_tcp_socket_new(c->conn);
		if (sock == NULL) {
			rc = sw_errf(e, -ENOMEM, "cannot create a socket");
			goto fail;
		}
	}
	tv = ms_tv(c->timeout_ms);
	status = amqp_socket_open_noblock(sock, u.host, (int)u.port, &tv);
	if (status != AMQP_STATUS_OK) {
		rc = sw_errf(e, status == AMQP_STATUS_SSL_ERROR ||
		    status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
		    status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ? SW_EAUTH : SW_ENET,
		    "cannot connect to broker %s: %s", host_s, amqp_error_string2(status));
		goto fail;
	}
	{
		/* Every command is a few small request/response round trips: no Nagle delays. */
		int one = 1;
		(void)setsockopt(amqp_get_sockfd(c->conn), IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	}
	(void)amqp_set_handshake_timeout(c->conn, &tv);
	(void)amqp_set_rpc_timeout(c->conn, &tv);
	/* Ask for the extensions we handle: without them the broker would just drop us silently. */
	caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
	caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[0].value.value.boolean = 1;
	caps[1].key = amqp_cstring_bytes("connection.blocked");
	caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[1].value.value.boolean = 1;
	caps[2].key = amqp_cstring_bytes("publisher_confirms");
	caps[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[2].value.value.boolean = 1;
	caps[3].key = amqp_cstring_bytes("basic.nack");
	caps[3].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[3].value.value.boolean = 1;
	props[0].key = amqp_cstring_bytes("capabilities");
	props[0].value.kind = AMQP_FIELD_KIND_TABLE;
	props[0].value.value.table.num_entries = 4;
	props[0].value.value.table.entries = caps;
	props[1].key = amqp_cstring_bytes("connection_name");
	props[1].value.kind = AMQP_FIELD_KIND_UTF8;
	props[1].value.value.bytes = amqp_cstring_bytes(o->name ? o->name : "snapworker");
	client.num_entries = 2;
	client.entries = props;
	{
		amqp_rpc_reply_t r = amqp_login_with_properties(c->conn, u.vhost, 0, 131072,
		    (int)o->heartbeat, &client, AMQP_SASL_METHOD_PLAIN, u.user,
		    o->password ? o->password : "");
		char buf[300];

		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			int auth = r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION ||
			    (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
			    r.library_error == AMQP_STATUS_CONNECTION_CLOSED);
			/* The user name is fine to report; the password is never formatted. */
			rc = sw_errf(e, auth ? SW_EAUTH : SW_ENET, "login to %s as %s failed: %s",
			    host_s, u.user, reply_str(r, buf, sizeof(buf)));
			goto fail;
		}
	}
	c->ok = 1;
	(void)amqp_channel_open(c->conn, CHAN);
	rc = rpc_check(c, "channel.open", e);
	if (rc < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	amqp_destroy_connection(c->conn);
	free(c);
	return rc;
}

void
wrk_amqp_close(struct wrk_amqp *c)
{
	if (c == NULL)
		return;
	if (c->ok) {
		struct timeval tv = ms_tv(2000);
		/* A short RPC timeout: a dead broker must not stall shutdown. */
		(void)amqp_set_rpc_timeout(c->conn, &tv);
		(void)amqp_channel_close(c->conn, CHAN, AMQP_REPLY_SUCCESS);
		(void)amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(c->conn);
	free(c);
}

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
	if (rpc_check(c, "exchange.declare", e) < 0)
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
	if (rpc_check(c, "queue.declare", e) < 0)
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
	if (rpc_check(c, "queue.bind", e) < 0)
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
wrk_amqp_confirm_select(struct wrk_amqp *c, struct sw_err *e)
{
	(void)amqp_confirm_select(c->conn, CHAN);
	if (rpc_check(c, "confirm.select", e) < 0)
		return e ? e->code : SW_ENET;
	c->confirm = 1;
	c->next_seq = 1;
	c->acked = 0;
	memset(c->ooo, 0, sizeof(c->ooo));
	return 0;
}

int
wrk_amqp_qos(struct wrk_amqp *c, unsigned prefetch, struct sw_err *e)
{
	(void)amqp_basic_qos(c->conn, CHAN, 0, (uint16_t)prefetch, 0);
	return rpc_check(c, "basic.qos", e);
}

static void
bytes_copy(char *dst, size_t dstsz, amqp_bytes_t b)
{
	size_t n = b.len < dstsz - 1 ? b.len : dstsz - 1;

	if (n > 0)
		memcpy(dst, b.bytes, n);
	dst[n] = '\0';
}

int
wrk_amqp_consume(struct wrk_amqp *c, const char *queue, int exclusive, char *ret_tag,
    size_t tagsz, struct sw_err *e)
{
	amqp_basic_consume_ok_t *ok;

	ok = amqp_basic_consume(c->conn, CHAN, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0,
	    exclusive, amqp_empty_table);
	if (rpc_check(c, "basic.consume", e) < 0)
		return sw_errctx(e, "consuming from %s", queue);
	if (ok == NULL)
		return sw_errf(e, SW_EINTERNAL, "basic.consume: no reply");
	bytes_copy(ret_tag, tagsz, ok->consumer_tag);
	return 0;
}

int
wrk_amqp_cancel(struct wrk_amqp *c, const char *tag, struct sw_err *e)
{
	(void)amqp_basic_cancel(c->conn, CHAN, amqp_cstring_bytes(tag));
	return rpc_check(c, "basic.cancel", e);
}

int
wrk_amqp_private_queue(struct wrk_amqp *c, char *ret_name, size_t namesz, struct sw_err *e)
{
	amqp_queue_declare_ok_t *ok;

	ok = amqp_queue_declare(c->conn, CHAN, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (rpc_check(c, "queue.declare", e) < 0)
		return e ? e->code : SW_ENET;
	if (ok == NULL || ok->queue.len == 0 || ok->queue.len >= namesz)
		return sw_errf(e, SW_EINTERNAL, "queue.declare: bad reply");
	bytes_copy(ret_name, namesz, ok->queue);
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
	rc = rpc_check(c, "queue.declare", e);
	if (rc < 0)
		return rc;
	if (ok == NULL)
		return sw_errf(e, SW_EINTERNAL, "queue.declare: no reply");
	*ret_messages = ok->message_count;
	*ret_consumers = ok->consumer_count;
	return 0;
}

int
wrk_amqp_publish(struct wrk_amqp *c, const struct wrk_amqp_pub *p, uint64_t *ret_seq,
    struct sw_err *e)
{
	amqp_basic_properties_t props;
	amqp_bytes_t body;
	int status;

	if (!c->ok)
		return sw_errf(e, SW_ENET, "publish: connection is down");
	if (c->confirm && c->next_seq - c->acked > WRK_AMQP_CONFIRM_WINDOW)
		return sw_errf(e, SW_ETOOBIG, "publish: more than %d unconfirmed messages",
		    WRK_AMQP_CONFIRM_WINDOW);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes(p->content_type ? p->content_type :
	    "application/json");
	props.delivery_mode = 2;
	if (p->message_id != NULL) {
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props.message_id = amqp_cstring_bytes(p->message_id);
	}
	if (p->correlation_id != NULL) {
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props.correlation_id = amqp_cstring_bytes(p->correlation_id);
	}
	if (p->reply_to != NULL) {
		props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
		props.reply_to = amqp_cstring_bytes(p->reply_to);
	}
	body.bytes = (void *)(uintptr_t)p->body;
	body.len = p->len;
	status = amqp_basic_publish(c->conn, CHAN, amqp_cstring_bytes(p->exchange),
	    amqp_cstring_bytes(p->routing_key), p->mandatory ? 1 : 0, 0, &props, body);
	if (status != AMQP_STATUS_OK) {
		c->ok = 0;
		return sw_errf(e, SW_ENET, "publish to %s: %s", p->exchange[0] ? p->exchange :
		    "(default exchange)", amqp_error_string2(status));
	}
	if (c->confirm && ret_seq != NULL)
		*ret_seq = c->next_seq;
	if (c->confirm)
		c->next_seq++;
	return 0;
}

int
wrk_amqp_ack(struct wrk_amqp *c, uint64_t tag, struct sw_err *e)
{
	int status;

	if (!c->ok)
		return sw_errf(e, SW_ENET, "ack: connection is down");
	status = amqp_basic_ack(c->conn, CHAN, tag, 0);
	if (status != AMQP_STATUS_OK) {
		c->ok = 0;
		return sw_errf(e, SW_ENET, "ack: %s", amqp_error_string2(status));
	}
	return 0;
}

int
wrk_amqp_nack(struct wrk_amqp *c, uint64_t tag, int requeue, struct sw_err *e)
{
	int status;

	if (!c->ok)
		return sw_errf(e, SW_ENET, "nack: connection is down");
	status = amqp_basic_nack(c->conn, CHAN, tag, 0, requeue ? 1 : 0);
	if (status != AMQP_STATUS_OK) {
		c->ok = 0;
		return sw_errf(e, SW_ENET, "nack: %s", amqp_error_string2(status));
	}
	return 0;
}

void
wrk_amqp_msg_clear(struct wrk_amqp_msg *m)
{
	if (m == NULL)
		return;
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static int
frame_wait(struct wrk_amqp *c, amqp_frame_t *f, unsigned timeout_ms, struct sw_err *e)
{
	struct timeval tv = ms_tv(timeout_ms);
	int status = amqp_simple_wait_frame_noblock(c->conn, f, &tv);

	if (status == AMQP_STATUS_OK)
		return 0;
	if (status == AMQP_STATUS_TIMEOUT)
		return -EAGAIN;
	c->ok = 0;
	if (status == AMQP_STATUS_HEARTBEAT_TIMEOUT)
		return sw_errf(e, SW_ENET, "broker missed heartbeats: connection dropped");
	return sw_errf(e, SW_ENET, "connection to broker lost: %s", amqp_error_string2(status));
}

static int64_t
table_int(const amqp_table_t *t, const char *key)
{
	int i;

	for (i = 0; i < t->num_entries; i++) {
		const amqp_table_entry_t *x = &t->entries[i];
		if (x->key.len != strlen(key) || memcmp(x->key.bytes, key, x->key.len) != 0)
			continue;
		switch (x->value.kind) {
		case AMQP_FIELD_KIND_I8: return x->value.value.i8;
		case AMQP_FIELD_KIND_U8: return x->value.value.u8;
		case AMQP_FIELD_KIND_I16: return x->value.value.i16;
		case AMQP_FIELD_KIND_U16: return x->value.value.u16;
		case AMQP_FIELD_KIND_I32: return x->value.value.i32;
		case AMQP_FIELD_KIND_U32: return x->value.value.u32;
		case AMQP_FIELD_KIND_I64: return x->value.value.i64;
		case AMQP_FIELD_KIND_U64:
			return x->value.value.u64 > INT64_MAX ? INT64_MAX : (int64_t)x->value.value.u64;
		default: return 0;
		}
	}
	return 0;
}

static void handle_conn_method(struct wrk_amqp *c, const amqp_frame_t *f);

/* Moves the confirmed watermark; out-of-order single acks wait in the window. */
static void
record_ack(struct wrk_amqp *c, uint64_t tag, int multiple)
{
	if (tag <= c->acked)
		return;
	if (multiple) {
		while (c->acked < tag)
			ooo_set(c->ooo, ++c->acked, 0);
	} else if (tag - c->acked <= WRK_AMQP_CONFIRM_WINDOW) {
		ooo_set(c->ooo, tag, 1);
	}
	while (ooo_get(c->ooo, c->acked + 1)) {
		ooo_set(c->ooo, c->acked + 1, 0);
		c->acked++;
	}
}

/*
 * Reads the content (header + body frames) that follows a basic.deliver or
 * basic.return.  Bodies over the cap are drained and dropped: the frames
 * must be consumed either way to keep the connection in sync.
 */
static int
read_content(struct wrk_amqp *c, struct wrk_amqp_msg *m, struct sw_err *e)
{
	amqp_frame_t f;
	uint64_t size, got = 0;
	int rc;

	for (;;) {
		rc = frame_wait(c, &f, c->timeout_ms, e);
		if (rc == -EAGAIN) {
			c->ok = 0;
			return sw_errf(e, SW_ENET, "timed out reading a message from the broker");
		}
		if (rc < 0)
			return rc;
		if (f.channel == 0 && f.frame_type == AMQP_FRAME_METHOD) {
			handle_conn_method(c, &f);
			if (!c->ok)
				return sw_errf(e, SW_ENET, "broker closed the connection");
			continue;
		}
		break;
	}
	if (f.frame_type != AMQP_FRAME_HEADER || f.channel != CHAN) {
		c->ok = 0;
		return sw_errf(e, SW_ENET, "protocol error: expected a content header");
	}
	size = f.payload.properties.body_size;
	{
		const amqp_basic_properties_t *p = f.payload.properties.decoded;
		if (p != NULL) {
			if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
				bytes_copy(m->message_id, sizeof(m->message_id), p->message_id);
			if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
				bytes_copy(m->correlation_id, sizeof(m->correlation_id), p->correlation_id);
			if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
				bytes_copy(m->reply_to, sizeof(m->reply_to), p->reply_to);
			if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
				m->delivery_count = table_int(&p->headers, "x-delivery-count");
		}
	}
	if (size > WRK_AMQP_BODY_MAX) {
		m->too_big = 1;
	} else {
		m->body = malloc((size_t)size + 1);
		if (m->body == NULL) {
			c->ok = 0;
			return sw_errf(e, -ENOMEM, "out of memory for a %llu-byte message",
			    (unsigned long long)size);
		}
	}
	while (got < size) {
		rc = frame_wait(c, &f, c->timeout_ms, e);
		if (rc == -EAGAIN) {
			c->ok = 0;
			rc = sw_errf(e, SW_ENET, "timed out reading a message body");
		}
		if (rc < 0)
			goto fail;
		if (f.frame_type != AMQP_FRAME_BODY || f.channel != CHAN ||
		    f.payload.body_fragment.len > size - got) {
			c->ok = 0;
			rc = sw_errf(e, SW_ENET, "protocol error: bad body frame");
			goto fail;
		}
		if (m->body != NULL)
			memcpy(m->body + got, f.payload.body_fragment.bytes, f.payload.body_fragment.len);
		got += f.payload.body_fragment.len;
	}
	if (m->body != NULL) {
		m->body[size] = '\0';
		m->len = (size_t)size;
	}
	return 0;
fail:
	free(m->body);
	m->body = NULL;
	return rc;
}

static void
handle_conn_method(struct wrk_amqp *c, const amqp_frame_t *f)
{
	switch (f->payload.method.id) {
	case AMQP_CONNECTION_BLOCKED_METHOD:
		c->blocked = 1;
		break;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		c->blocked = 0;
		break;
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_ok_t ok = { 0 };
		(void)amqp_send_method(c->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		c->ok = 0;
		break;
	}
	default:
		break;
	}
}

int
wrk_amqp_wait(struct wrk_amqp *c, int timeout_ms, int wake_fd, struct wrk_amqp_ev *ev,
    struct sw_err *e)
{
	uint64_t deadline = sw_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	unsigned slice = c->heartbeat > 0 ? c->heartbeat * 250 : 1000;
	amqp_frame_t f;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if (!c->ok)
		return sw_errf(e, SW_ENET, "connection to broker is down");
	for (;;) {
		int buffered = amqp_frames_enqueued(c->conn) || amqp_data_in_buffer(c->conn);
		int sock_ready = buffered, woke = 0;
		uint64_t now = sw_mono_ms();

		if (!buffered) {
			struct pollfd pfd[2];
			int n = 1, left = now >= deadline ? 0 : (int)(deadline - now);

			if ((unsigned)left > slice)
				left = (int)slice;
			pfd[0].fd = amqp_get_sockfd(c->conn);
			pfd[0].events = POLLIN;
			pfd[0].revents = 0;
			if (wake_fd >= 0) {
				pfd[1].fd = wake_fd;
				pfd[1].events = POLLIN;
				pfd[1].revents = 0;
				n = 2;
			}
			if (poll(pfd, (nfds_t)n, left) < 0 && errno != EINTR) {
				c->ok = 0;
				return sw_errno(e, errno, "poll");
			}
			sock_ready = (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
			woke = n == 2 && (pfd[1].revents & POLLIN) != 0;
		}
		/*
		 * Call into the library when there is something to read, and also
		 * when nothing happened: that is where it sends due heartbeats and
		 * notices that the broker's stopped.  A 1 ms budget, not 0: with an
		 * immediate deadline librabbitmq never checks the receive side.
		 */
		if (sock_ready || !woke) {
			rc = frame_wait(c, &f, 1, e);
			if (rc < 0 && rc != -EAGAIN)
				return rc;
			if (rc == 0) {
				if (f.channel == 0 && f.frame_type == AMQP_FRAME_METHOD) {
					handle_conn_method(c, &f);
					if (!c->ok)
						return sw_errf(e, SW_ENET, "broker closed the connection");
					ev->kind = c->blocked ? WRK_AMQP_EV_BLOCKED : WRK_AMQP_EV_UNBLOCKED;
					return 0;
				}
				if (f.frame_type != AMQP_FRAME_METHOD)
					continue;   /* stray content of nothing we asked for */
				switch (f.payload.method.id) {
				case AMQP_BASIC_DELIVER_METHOD: {
					amqp_basic_deliver_t *d = f.payload.method.decoded;
					ev->kind = WRK_AMQP_EV_DELIVERY;
					ev->msg.tag = d->delivery_tag;
					ev->msg.redelivered = d->redelivered;
					bytes_copy(ev->msg.consumer_tag, sizeof(ev->msg.consumer_tag),
					    d->consumer_tag);
					bytes_copy(ev->msg.routing_key, sizeof(ev->msg.routing_key),
					    d->routing_key);
					rc = read_content(c, &ev->msg, e);
					amqp_maybe_release_buffers(c->conn);
					return rc;
				}
				case AMQP_BASIC_ACK_METHOD: {
					amqp_basic_ack_t *a = f.payload.method.decoded;
					ev->kind = WRK_AMQP_EV_ACK;
					ev->tag = a->delivery_tag;
					ev->multiple = a->multiple;
					record_ack(c, a->delivery_tag, a->multiple);
					amqp_maybe_release_buffers(c->conn);
					return 0;
				}
				case AMQP_BASIC_NACK_METHOD: {
					amqp_basic_nack_t *a = f.payload.method.decoded;
					ev->kind = WRK_AMQP_EV_NACK;
					ev->tag = a->delivery_tag;
					ev->multiple = a->multiple;
					c->nacked = 1;
					amqp_maybe_release_buffers(c->conn);
					return 0;
				}
				case AMQP_BASIC_RETURN_METHOD: {
					struct wrk_amqp_msg m;
					memset(&m, 0, sizeof(m));
					rc = read_content(c, &m, e);
					wrk_amqp_msg_clear(&m);
					amqp_maybe_release_buffers(c->conn);
					if (rc < 0)
						return rc;
					c->returned = 1;
					ev->kind = WRK_AMQP_EV_RETURN;
					return 0;
				}
				case AMQP_BASIC_CANCEL_METHOD: {
					amqp_basic_cancel_t *m = f.payload.method.decoded;
					ev->kind = WRK_AMQP_EV_CANCEL;
					bytes_copy(ev->msg.consumer_tag, sizeof(ev->msg.consumer_tag),
					    m->consumer_tag);
					amqp_maybe_release_buffers(c->conn);
					return 0;
				}
				case AMQP_CHANNEL_CLOSE_METHOD: {
					amqp_channel_close_t *m = f.payload.method.decoded;
					amqp_channel_close_ok_t ok = { 0 };
					/* 404: a missing exchange or queue, not a network fault. */
					rc = sw_errf(e, m->reply_code == 404 ? SW_ENOTFOUND : SW_ENET,
					    "broker closed the channel: %u %.*s", m->reply_code, (int)m->reply_text.len,
					    (const char *)m->reply_text.bytes);
					(void)amqp_send_method(c->conn, CHAN, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
					c->ok = 0;
					return rc;
				}
				default:
					amqp_maybe_release_buffers(c->conn);
					continue;
				}
			}
		}
		if (woke) {
			ev->kind = WRK_AMQP_EV_WAKE;
			return 0;
		}
		if (sw_mono_ms() >= deadline) {
			ev->kind = WRK_AMQP_EV_TIMEOUT;
			return 0;
		}
	}
}

int
wrk_amqp_wait_confirm(struct wrk_amqp *c, uint64_t seq, int timeout_ms,
    void (*on_event)(void *ud, struct wrk_amqp_ev *ev), void *ud, struct sw_err *e)
{
	uint64_t deadline = sw_mono_ms() + (uint64_t)timeout_ms;
	struct wrk_amqp_ev ev;
	int rc;

	while (c->acked < seq && !c->nacked) {
		uint64_t now = sw_mono_ms();

		if (now >= deadline)
			return sw_errf(e, -ETIMEDOUT, "no publisher confirm from the broker within %d ms",
			    timeout_ms);
		rc = wrk_amqp_wait(c, (int)(deadline - now), -1, &ev, e);
		if (rc < 0)
			return rc;
		switch (ev.kind) {
		case WRK_AMQP_EV_ACK:
		case WRK_AMQP_EV_NACK:
		case WRK_AMQP_EV_RETURN:
		case WRK_AMQP_EV_TIMEOUT:
		case WRK_AMQP_EV_WAKE:
			break;
		default:
			if (on_event != NULL)
				on_event(ud, &ev);
			wrk_amqp_msg_clear(&ev.msg);
			break;
		}
	}
	if (c->nacked) {
		c->nacked = 0;
		return sw_errf(e, SW_EREMOTE, "the broker refused (nacked) a publish");
	}
	if (c->returned) {
		c->returned = 0;
		return sw_errf(e, SW_ENOTFOUND, "a publish was unroutable (no queue bound)");
	}
	return 0;
}

uint64_t
wrk_amqp_confirmed(const struct wrk_amqp *c)
{
	return c ? c->acked : 0;
}
