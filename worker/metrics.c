#include "worker/metrics.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "common/num.h"
#include "proto/proto.h"

#define LISTEN_MAX        128   /* "[" + IPv6 text + "]:" + port fits easily */
#define HTTP_CONN_LIMIT   16    /* scrapers are few; a flood must not cost threads or memory */
#define HTTP_CONN_TIMEOUT 10    /* seconds an idle scrape connection may stay */

static const double buckets[WRK_METRICS_NBUCKETS] = WRK_METRICS_BUCKETS;

static const char *const outcome_names[WRK_METRICS_NOUTCOMES] = {
	"succeeded", "failed", "requeued", "invalid",
};

struct hist {
	uint64_t le[WRK_METRICS_NBUCKETS]; /* per bucket, not cumulative: summed at render time */
	uint64_t inf;
	uint64_t count;
	uint64_t sum_ms;
};

/* Index 0 is "other": PROTO_TYPE_UNKNOWN, so the type label has PROTO_TYPE_COUNT values. */
static struct {
	pthread_mutex_t mu;
	uint64_t commands[PROTO_TYPE_COUNT][WRK_METRICS_NOUTCOMES];
	struct hist dur[PROTO_TYPE_COUNT];
	uint64_t bytes;
	int64_t in_flight;
	unsigned slots;
	uint64_t reconnects;
	int64_t broker_conns;       /* job slots connected to the broker now */
	uint64_t vc_logins;
	int64_t limit_held[3];      /* WRK_LIMIT_VCENTER, _HOST, _DATASTORE */
	uint64_t limit_waits[3];
	time_t started;
	struct {
		char *url;
		int healthy;
	} stores[WRK_METRICS_STORES_MAX];
	size_t nstores;
} m = { .mu = PTHREAD_MUTEX_INITIALIZER };

static const char *
type_label(int t)
{
	const char *n = t == PROTO_TYPE_UNKNOWN ? NULL : proto_type_name((enum proto_type)t);

	return n != NULL ? n : "other";
}

void
wrk_metrics_reset(void)
{
	size_t i;

	pthread_mutex_lock(&m.mu);
	memset(m.commands, 0, sizeof(m.commands));
	memset(m.dur, 0, sizeof(m.dur));
	m.bytes = 0;
	m.in_flight = 0;
	m.slots = 0;
	m.reconnects = 0;
	m.vc_logins = 0;
	memset(m.limit_held, 0, sizeof(m.limit_held));
	memset(m.limit_waits, 0, sizeof(m.limit_waits));
	m.started = time(NULL);
	for (i = 0; i < m.nstores; i++)
		free(m.stores[i].url);
	memset(m.stores, 0, sizeof(m.stores));
	m.nstores = 0;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_command(const char *type, enum wrk_metrics_outcome outcome, uint64_t elapsed_ms,
    uint64_t bytes)
{
	int t = type != NULL ? (int)proto_type_from_name(type) : PROTO_TYPE_UNKNOWN;
	struct hist *h;
	size_t i;

	if (t < 0 || t >= PROTO_TYPE_COUNT)
		t = PROTO_TYPE_UNKNOWN;
	if ((unsigned)outcome >= WRK_METRICS_NOUTCOMES)
		outcome = WRK_METRICS_FAILED;
	pthread_mutex_lock(&m.mu);
	m.commands[t][outcome]++;
	m.bytes += bytes;
	if (outcome != WRK_METRICS_INVALID) {
		h = &m.dur[t];
		for (i = 0; i < WRK_METRICS_NBUCKETS; i++) {
			/* le is inclusive: a 1000 ms job is in the le="1" bucket. */
			if ((double)elapsed_ms <= buckets[i] * 1000.0) {
				h->le[i]++;
				break;
			}
		}
		if (i == WRK_METRICS_NBUCKETS)
			h->inf++;
		h->count++;
		h->sum_ms += elapsed_ms;
	}
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_job_start(void)
{
	pthread_mutex_lock(&m.mu);
	m.in_flight++;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_job_end(void)
{
	pthread_mutex_lock(&m.mu);
	if (m.in_flight > 0)
		m.in_flight--;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_set_slots(unsigned n)
{
	pthread_mutex_lock(&m.mu);
	m.slots = n;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_broker_reconnect(void)
{
	pthread_mutex_lock(&m.mu);
	m.reconnects++;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_broker_conn(int delta)
{
	pthread_mutex_lock(&m.mu);
	m.broker_conns += delta;
	if (m.broker_conns < 0)
		m.broker_conns = 0;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_vcenter_login(void)
{
	pthread_mutex_lock(&m.mu);
	m.vc_logins++;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_limit_held(int kind, int delta)
{
	if (kind < 0 || kind >= 3)
		return;
	pthread_mutex_lock(&m.mu);
	m.limit_held[kind] += delta;
	if (m.limit_held[kind] < 0)
		m.limit_held[kind] = 0;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_limit_wait(int kind)
{
	if (kind < 0 || kind >= 3)
		return;
	pthread_mutex_lock(&m.mu);
	m.limit_waits[kind]++;
	pthread_mutex_unlock(&m.mu);
}

void
wrk_metrics_store_healthy(const char *url, int healthy)
{
	size_t i;

	if (url == NULL)
		return;
	pthread_mutex_lock(&m.mu);
	for (i = 0; i < m.nstores; i++)
		if (strcmp(m.stores[i].url, url) == 0)
			break;
	if (i == m.nstores && m.nstores < WRK_METRICS_STORES_MAX &&
	    (m.stores[i].url = strdup(url)) != NULL)
		m.nstores++;
	if (i < m.nstores)
		m.stores[i].healthy = healthy != 0;
	pthread_mutex_unlock(&m.mu);
}

/* A label value in the exposition format: backslash, double quote and newline escaped. */
static int
add_label(struct sw_buf *b, const char *v)
{
	int rc = 0;

	for (; *v != '\0' && rc == 0; v++) {
		if (*v == '\\' || *v == '"')
			rc = sw_buf_addf(b, "\\%c", *v);
		else if (*v == '\n')
			rc = sw_buf_addstr(b, "\\n");
		else
			rc = sw_buf_add(b, v, 1);
	}
	return rc;
}

/* A bucket bound as Prometheus writes it: "1", "300", never "1.000000". */
static void
fmt_le(char *buf, size_t bufsz, double le)
{
	(void)snprintf(buf, bufsz, "%g", le);
}

/* Milliseconds as seconds with three decimals, exactly (no double rounding). */
static int
add_seconds(struct sw_buf *b, uint64_t ms)
{
	return sw_buf_addf(b, "%llu.%03llu", (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000));
}

static int
render_locked(struct sw_buf *b)
{
	char le[32];
	int t, o, rc;
	size_t i;

	rc = sw_buf_addstr(b,
	    "# HELP snapworker_commands_total Commands finished by this worker, by type and outcome.\n"
	    "# TYPE snapworker_commands_total counter\n");
	for (t = 0; t < PROTO_TYPE_COUNT && rc == 0; t++)
		for (o = 0; o < WRK_METRICS_NOUTCOMES && rc == 0; o++)
			rc = sw_buf_addf(b, "snapworker_commands_total{type=\"%s\",outcome=\"%s\"} %llu\n",
			    type_label(t), outcome_names[o], (unsigned long long)m.commands[t][o]);
	if (rc == 0)
		rc = sw_buf_addstr(b,
		    "# HELP snapworker_job_duration_seconds Run time of parsed commands, by type.\n"
		    "# TYPE snapworker_job_duration_seconds histogram\n");
	for (t = 0; t < PROTO_TYPE_COUNT && rc == 0; t++) {
		const struct hist *h = &m.dur[t];
		uint64_t cum = 0;

		/* Only types that ran: a histogram per idle type is 13 lines of zeros. */
		if (h->count == 0)
			continue;
		for (i = 0; i < WRK_METRICS_NBUCKETS && rc == 0; i++) {
			cum += h->le[i];
			fmt_le(le, sizeof(le), buckets[i]);
			rc = sw_buf_addf(b, "snapworker_job_duration_seconds_bucket{type=\"%s\",le=\"%s\"} "
			    "%llu\n", type_label(t), le, (unsigned long long)cum);
		}
		if (rc == 0)
			rc = sw_buf_addf(b, "snapworker_job_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} "
			    "%llu\nsnapworker_job_duration_seconds_sum{type=\"%s\"} ", type_label(t),
			    (unsigned long long)h->count, type_label(t));
		if (rc == 0)
			rc = add_seconds(b, h->sum_ms);
		if (rc == 0)
			rc = sw_buf_addf(b, "\nsnapworker_job_duration_seconds_count{type=\"%s\"} %llu\n",
			    type_label(t), (unsigned long long)h->count);
	}
	if (rc == 0)
		rc = sw_buf_addf(b,
		    "# HELP snapworker_bytes_transferred_total Bytes of the files produced by succeeded commands.\n"
		    "# TYPE snapworker_bytes_transferred_total counter\n"
		    "snapworker_bytes_transferred_total %llu\n"
		    "# HELP snapworker_jobs_in_flight Commands running now.\n"
		    "# TYPE snapworker_jobs_in_flight gauge\n"
		    "snapworker_jobs_in_flight %lld\n"
		    "# HELP snapworker_job_slots Configured concurrent commands ([worker] jobs).\n"
		    "# TYPE snapworker_job_slots gauge\n"
		    "snapworker_job_slots %u\n"
		    "# HELP snapworker_broker_reconnects_total Broker connections re-opened after a loss.\n"
		    "# TYPE snapworker_broker_reconnects_total counter\n"
		    "snapworker_broker_reconnects_total %llu\n"
		    "# HELP snapworker_broker_connections Job slots connected to the broker now.\n"
		    "# TYPE snapworker_broker_connections gauge\n"
		    "snapworker_broker_connections %lld\n"
		    "# HELP snapworker_vcenter_logins_total vCenter logins (new sessions).\n"
		    "# TYPE snapworker_vcenter_logins_total counter\n"
		    "snapworker_vcenter_logins_total %llu\n"
		    "# HELP snapworker_start_time_seconds Start of this worker's metrics, Unix time.\n"
		    "# TYPE snapworker_start_time_seconds gauge\n"
		    "snapworker_start_time_seconds %lld\n",
		    (unsigned long long)m.bytes, (long long)m.in_flight, m.slots,
		    (unsigned long long)m.reconnects, (long long)m.broker_conns,
		    (unsigned long long)m.vc_logins,
		    (long long)m.started);
	if (rc == 0)
		rc = sw_buf_addf(b,
		    "# HELP snapworker_limit_tokens_held Concurrency tokens this worker holds now.\n"
		    "# TYPE snapworker_limit_tokens_held gauge\n"
		    "snapworker_limit_tokens_held{kind=\"vcenter\"} %lld\n"
		    "snapworker_limit_tokens_held{kind=\"host\"} %lld\n"
		    "snapworker_limit_tokens_held{kind=\"datastore\"} %lld\n"
		    "# HELP snapworker_limit_waits_total Commands sent back to wait for a concurrency "
		    "token.\n"
		    "# TYPE snapworker_limit_waits_total counter\n"
		    "snapworker_limit_waits_total{kind=\"vcenter\"} %llu\n"
		    "snapworker_limit_waits_total{kind=\"host\"} %llu\n"
		    "snapworker_limit_waits_total{kind=\"datastore\"} %llu\n",
		    (long long)m.limit_held[0], (long long)m.limit_held[1], (long long)m.limit_held[2],
		    (unsigned long long)m.limit_waits[0], (unsigned long long)m.limit_waits[1],
		    (unsigned long long)m.limit_waits[2]);
	if (rc == 0 && m.nstores > 0)
		rc = sw_buf_addstr(b,
		    "# HELP snapworker_store_healthy 1 while the store's health probe succeeds, 0 while "
		    "it is sick.\n"
		    "# TYPE snapworker_store_healthy gauge\n");
	for (i = 0; i < m.nstores && rc == 0; i++) {
		rc = sw_buf_addstr(b, "snapworker_store_healthy{store=\"");
		if (rc == 0)
			rc = add_label(b, m.stores[i].url);
		if (rc == 0)
			rc = sw_buf_addf(b, "\"} %d\n", m.stores[i].healthy);
	}
	return rc;
}

/* A JSON string's content: quote, backslash and control characters escaped. */
static int
add_json(struct sw_buf *b, const char *v)
{
	int rc = 0;

	for (; *v != '\0' && rc == 0; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '"' || c == '\\')
			rc = sw_buf_addf(b, "\\%c", c);
		else if (c < 0x20)
			rc = sw_buf_addf(b, "\\u%04x", c);
		else
			rc = sw_buf_add(b, v, 1);
	}
	return rc;
}

int
wrk_metrics_health(struct sw_buf *b)
{
	size_t i, sick = 0;
	int healthy, rc;

	pthread_mutex_lock(&m.mu);
	for (i = 0; i < m.nstores; i++)
		sick += !m.stores[i].healthy;
	healthy = m.slots > 0 && m.broker_conns >= (int64_t)m.slots && sick == 0;
	rc = sw_buf_addf(b, "{\"healthy\":%s,\"broker_connections\":%lld,\"job_slots\":%u,"
	    "\"stores\":[", healthy ? "true" : "false", (long long)m.broker_conns, m.slots);
	for (i = 0; i < m.nstores && rc == 0; i++) {
		rc = sw_buf_addf(b, "%s{\"store\":\"", i ? "," : "");
		if (rc == 0)
			rc = add_json(b, m.stores[i].url);
		if (rc == 0)
			rc = sw_buf_addf(b, "\",\"healthy\":%s}", m.stores[i].healthy ? "true" : "false");
	}
	if (rc == 0)
		rc = sw_buf_addstr(b, "]}\n");
	pthread_mutex_unlock(&m.mu);
	return rc < 0 ? rc : healthy;
}

int
wrk_metrics_render(struct sw_buf *b, struct sw_err *e)
{
	size_t before = b->len;
	int rc;

	pthread_mutex_lock(&m.mu);
	rc = render_locked(b);
	pthread_mutex_unlock(&m.mu);
	if (rc < 0) {
		/* Half a rendering would be read as counters going backwards: none at all. */
		b->len = before;
		if (b->ptr != NULL)
			b->ptr[before] = '\0';
		return sw_errf(e, rc, "metrics rendering: %s", rc == SW_ETOOBIG ? "too large" :
		    "out of memory");
	}
	return 0;
}

/* ----------------------------------------------------------------- listen */

int
wrk_metrics_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
    struct sw_err *e)
{
	char host[LISTEN_MAX];
	const char *colon, *hs, *port;
	struct addrinfo hints, *ai = NULL;
	size_t hl;
	uint64_t p;
	int rc;

	if (s == NULL || strlen(s) >= LISTEN_MAX)
		return sw_errf(e, -EINVAL, "[metrics] listen: not HOST:PORT");
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return sw_errf(e, -EINVAL, "[metrics] listen '%s': expected [IPv6]:PORT", s);
		hs = s + 1;
		hl = (size_t)(rb - hs);
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return sw_errf(e, -EINVAL, "[metrics] listen '%s': expected HOST:PORT "
			    "(IPv6 in brackets)", s);
		hs = s;
		hl = (size_t)(colon - s);
		port = colon + 1;
	}
	if (sw_parse_u64(port, 0, 65535, &p) < 0)
		return sw_errf(e, -EINVAL, "[metrics] listen '%s': bad port", s);
	if (hl == 0) {
		hs = "0.0.0.0";
		hl = 7;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || ai == NULL || ai->ai_addrlen > sizeof(*ret)) {
		if (ai != NULL)
			freeaddrinfo(ai);
		return sw_errf(e, -EINVAL, "[metrics] listen '%s': '%s' is not a numeric address", s,
		    host);
	}
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	*ret_len = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ----------------------------------------------------------------- server */

struct wrk_metrics_server {
	struct MHD_Daemon *d;
	unsigned port;
};

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result res;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	res = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return res;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct sw_buf b = SW_BUF_INIT(WRK_METRICS_RENDER_MAX);
	struct MHD_Response *r;
	struct sw_err e;
	enum MHD_Result res;
	char *body;
	size_t len;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	/* A scrape has no body; whatever a client sends is dropped, never buffered. */
	*upload_data_size = 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (strcmp(url, "/health") == 0) {
		int h = wrk_metrics_health(&b);

		if (h < 0 || (body = sw_buf_steal(&b, &len)) == NULL) {
			sw_buf_free(&b);
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "health unavailable\n");
		}
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (r == NULL) {
			free(body);
			return MHD_NO;
		}
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		res = MHD_queue_response(conn, h ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, r);
		MHD_destroy_response(r);
		return res;
	}
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics, "
		    "the health at /health\n");
	if (wrk_metrics_render(&b, &e) < 0 || (body = sw_buf_steal(&b, &len)) == NULL) {
		sw_buf_free(&b);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
	}
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; version=0.0.4; charset=utf-8");
	res = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return res;
}

int
wrk_metrics_server_start(const char *listen, struct wrk_metrics_server **ret, struct sw_err *e)
{
	struct wrk_metrics_server *srv;
	struct sockaddr_storage ss;
	socklen_t sl;
	const union MHD_DaemonInfo *info;
	sigset_t all, old;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	int rc;

	rc = wrk_metrics_parse_listen(listen, &ss, &sl, e);
	if (rc < 0)
		return rc;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/*
	 * The daemon takes its signals with sigtimedwait in one thread: a thread
	 * of libmicrohttpd's with SIGTERM unblocked would receive it instead and
	 * die of the default action.  Threads inherit the mask they start with.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	srv->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (srv->d == NULL) {
		free(srv);
		/* libmicrohttpd reports no reason; bind failures are by far the usual one. */
		return sw_errf(e, -EADDRINUSE, "[metrics] listen %s: cannot start the endpoint "
		    "(address in use or not local?)", listen);
	}
	info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info != NULL ? info->port : 0;
	*ret = srv;
	return 0;
}

unsigned
wrk_metrics_server_port(const struct wrk_metrics_server *srv)
{
	return srv != NULL ? srv->port : 0;
}

void
wrk_metrics_server_stop(struct wrk_metrics_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->d != NULL)
		MHD_stop_daemon(srv->d);
	free(srv);
}
