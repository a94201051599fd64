/*
 * The broker client's connection (amqp.h, amqp_int.h): URL parsing, TCP or
 * TLS connect, login with the capabilities the worker relies on, channel 1,
 * and the check of every synchronous RPC's reply.
 */
#include "worker/amqp_int.h"

#include <errno.h>
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
#include "common/num.h"

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

void
wrk_amqp_url_list_free(char **urls, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}

int
wrk_amqp_url_list_parse(const char *list, char ***ret_urls, size_t *ret_n, struct sw_err *e)
{
	struct wrk_amqp_url first, u;
	char **v = NULL;
	size_t n = 0, len;
	const char *p = list;
	int rc;

	if (list == NULL)
		return sw_errf(e, SW_EFORMAT, "no broker URL");
	v = calloc(WRK_AMQP_URLS_MAX, sizeof(*v));
	if (v == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,");
		if (n == WRK_AMQP_URLS_MAX) {
			rc = sw_errf(e, SW_ETOOBIG, "more than %d broker URLs", WRK_AMQP_URLS_MAX);
			goto fail;
		}
		if (len > WRK_AMQP_URL_LEN) {
			rc = sw_errf(e, SW_ETOOBIG, "broker URL longer than %d bytes", WRK_AMQP_URL_LEN);
			goto fail;
		}
		if ((v[n] = strndup(p, len)) == NULL) {
			rc = sw_errf(e, -ENOMEM, "out of memory");
			goto fail;
		}
		p += len;
		n++;
		if ((rc = wrk_amqp_url_parse(v[n - 1], n == 1 ? &first : &u, e)) < 0)
			goto fail;
		if (n > 1 && (strcmp(u.user, first.user) != 0 || strcmp(u.vhost, first.vhost) != 0)) {
			rc = sw_errf(e, SW_EFORMAT, "broker URL %s: every node of the list must name "
			    "the same user and virtual host as the first (%s, vhost %s)", v[n - 1],
			    first.user, first.vhost);
			goto fail;
		}
	}
	if (n == 0) {
		rc = sw_errf(e, SW_EFORMAT, "no broker URL (empty list)");
		goto fail;
	}
	*ret_urls = v;
	*ret_n = n;
	return 0;
fail:
	wrk_amqp_url_list_free(v, n);
	return rc;
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
int
wrk__amqp_rpc_check(struct wrk_amqp *c, const char *what, struct sw_err *e)
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
			else if (m->reply_code == 406)
				code = SW_EEXIST;   /* PRECONDITION_FAILED: exists with other arguments */
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

struct timeval
wrk__amqp_ms_tv(unsigned ms)
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
	tv = wrk__amqp_ms_tv(c->timeout_ms);
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
	rc = wrk__amqp_rpc_check(c, "channel.open", e);
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
		struct timeval tv = wrk__amqp_ms_tv(2000);
		/* A short RPC timeout: a dead broker must not stall shutdown. */
		(void)amqp_set_rpc_timeout(c->conn, &tv);
		(void)amqp_channel_close(c->conn, CHAN, AMQP_REPLY_SUCCESS);
		(void)amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(c->conn);
	free(c);
}


void
wrk__amqp_bytes_copy(char *dst, size_t dstsz, amqp_bytes_t b)
{
	size_t n = b.len < dstsz - 1 ? b.len : dstsz - 1;

	if (n > 0)
		memcpy(dst, b.bytes, n);
	dst[n] = '\0';
}
