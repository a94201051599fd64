/*
 * Consuming and publishing (amqp.h, amqp_int.h): qos, consume and cancel,
 * publish in confirm mode with the confirmed watermark and its out-of-order
 * window, ack/nack, and the frame pump that turns frames into one event at a
 * time (delivery, confirm, return, consumer cancel, blocked/unblocked).
 */
#include "worker/amqp_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"

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

int
wrk_amqp_confirm_select(struct wrk_amqp *c, struct sw_err *e)
{
	(void)amqp_confirm_select(c->conn, CHAN);
	if (wrk__amqp_rpc_check(c, "confirm.select", e) < 0)
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
	return wrk__amqp_rpc_check(c, "basic.qos", e);
}

int
wrk_amqp_consume(struct wrk_amqp *c, const char *queue, int exclusive, char *ret_tag,
    size_t tagsz, struct sw_err *e)
{
	amqp_basic_consume_ok_t *ok;

	ok = amqp_basic_consume(c->conn, CHAN, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0,
	    exclusive, amqp_empty_table);
	if (wrk__amqp_rpc_check(c, "basic.consume", e) < 0)
		return sw_errctx(e, "consuming from %s", queue);
	if (ok == NULL)
		return sw_errf(e, SW_EINTERNAL, "basic.consume: no reply");
	wrk__amqp_bytes_copy(ret_tag, tagsz, ok->consumer_tag);
	return 0;
}

int
wrk_amqp_subscribe(struct wrk_amqp *c, const char *queue, char *ret_tag, size_t tagsz,
    struct sw_err *e)
{
	amqp_basic_consume_ok_t *ok;

	ok = amqp_basic_consume(c->conn, CHAN, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 1,
	    1, amqp_empty_table);
	if (wrk__amqp_rpc_check(c, "basic.consume", e) < 0)
		return sw_errctx(e, "consuming from %s", queue);
	if (ok == NULL)
		return sw_errf(e, SW_EINTERNAL, "basic.consume: no reply");
	wrk__amqp_bytes_copy(ret_tag, tagsz, ok->consumer_tag);
	return 0;
}

int
wrk_amqp_cancel(struct wrk_amqp *c, const char *tag, struct sw_err *e)
{
	(void)amqp_basic_cancel(c->conn, CHAN, amqp_cstring_bytes(tag));
	return wrk__amqp_rpc_check(c, "basic.cancel", e);
}

int
wrk_amqp_publish(struct wrk_amqp *c, const struct wrk_amqp_pub *p, uint64_t *ret_seq,
    struct sw_err *e)
{
	amqp_basic_properties_t props;
	amqp_table_entry_t hdr[2];
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
	if (p->attempt > 0 || p->error != NULL) {
		size_t n = 0;

		if (p->attempt > 0) {
			hdr[n].key = amqp_cstring_bytes(WRK_AMQP_HDR_ATTEMPT);
			hdr[n].value.kind = AMQP_FIELD_KIND_I64;
			hdr[n].value.value.i64 = p->attempt;
			n++;
		}
		if (p->error != NULL) {
			hdr[n].key = amqp_cstring_bytes(WRK_AMQP_HDR_ERROR);
			hdr[n].value.kind = AMQP_FIELD_KIND_UTF8;
			hdr[n].value.value.bytes.bytes = (void *)(uintptr_t)p->error;
			hdr[n].value.value.bytes.len = strnlen(p->error, WRK_AMQP_HDR_ERROR_MAX);
			n++;
		}
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
		props.headers.num_entries = (int)n;
		props.headers.entries = hdr;
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
	struct timeval tv = wrk__amqp_ms_tv(timeout_ms);
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

/* A string (or bytes) header into out, cut to fit, control characters replaced; "" if absent. */
static void
table_str(const amqp_table_t *t, const char *key, char *out, size_t outsz)
{
	int i;
	size_t k, n;

	out[0] = '\0';
	for (i = 0; i < t->num_entries; i++) {
		const amqp_table_entry_t *x = &t->entries[i];

		if (x->key.len != strlen(key) || memcmp(x->key.bytes, key, x->key.len) != 0)
			continue;
		if (x->value.kind != AMQP_FIELD_KIND_UTF8 && x->value.kind != AMQP_FIELD_KIND_BYTES)
			return;
		n = x->value.value.bytes.len < outsz - 1 ? x->value.value.bytes.len : outsz - 1;
		for (k = 0; k < n; k++) {
			unsigned char ch = ((const unsigned char *)x->value.value.bytes.bytes)[k];

			out[k] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
		}
		out[n] = '\0';
		return;
	}
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
				wrk__amqp_bytes_copy(m->message_id, sizeof(m->message_id), p->message_id);
			if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
				wrk__amqp_bytes_copy(m->correlation_id, sizeof(m->correlation_id), p->correlation_id);
			if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
				wrk__amqp_bytes_copy(m->reply_to, sizeof(m->reply_to), p->reply_to);
			if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
				m->delivery_count = table_int(&p->headers, "x-delivery-count");
				m->attempt = table_int(&p->headers, WRK_AMQP_HDR_ATTEMPT);
				table_str(&p->headers, WRK_AMQP_HDR_ERROR, m->error, sizeof(m->error));
				table_str(&p->headers, "x-first-death-reason", m->death_reason,
				    sizeof(m->death_reason));
			}
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
					wrk__amqp_bytes_copy(ev->msg.consumer_tag, sizeof(ev->msg.consumer_tag),
					    d->consumer_tag);
					wrk__amqp_bytes_copy(ev->msg.routing_key, sizeof(ev->msg.routing_key),
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
					wrk__amqp_bytes_copy(ev->msg.consumer_tag, sizeof(ev->msg.consumer_tag),
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
