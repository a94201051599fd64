/*
 * snapctl: the publisher's side, for operators, tests and benchmarks.
 *
 *   snapctl [-c FILE | --amqp-url URL] [--password-file F] submit [--wait]
 *           [--timeout S] [--publish-timeout S] [--count N] [--zone Z] COMMAND.json|-
 *   snapctl [-c FILE | --amqp-url URL] [--password-file F] status
 *
 * The password comes from the config's password_file, --password-file or
 * the environment variable SNAPCTL_PASSWORD, never from argv.  --wait never
 * misses the final event: the private reply queue (and, for progress, its
 * binding to the event exchange) exists before the command is published.
 * URL may list the nodes of a cluster (space- or comma-separated): snapctl
 * uses the first that answers, and a --wait whose node dies reconnects to
 * another, declares a new reply queue bound to the command's final events
 * on the event exchange, and keeps waiting.  A final event published while
 * it had no queue (between the loss and the new binding) is not seen: such
 * a wait ends in a timeout, not in a wrong answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "common/secret.h"
#include "common/io.h"
#include "common/num.h"
#include "common/version.h"
#include "proto/proto.h"
#include "worker/amqp.h"
#include "worker/config.h"

#define EXIT_FAILED   1
#define EXIT_ERROR    2
#define EXIT_TIMEOUT  3
#define COUNT_MAX     1000000
#define INFLIGHT_MAX  1000
/*
 * How long submit keeps sending a command the broker did not confirm (a
 * second apart at first, then up to 5): a quorum queue whose leader died with
 * its node nacks publishes until a new leader is elected, a few seconds
 * usually, but measured at over 17 s on a loaded 2-core machine whose
 * cluster had just taken a node back.  --publish-timeout changes it.
 */
#define PUBLISH_TIMEOUT_S 60u

struct opts {
	const char *config;
	const char *url;
	const char *password_file;
	const char *zone;
	int wait;
	int quiet;
	int dry_run;
	int no_validate;
	int json;
	const char *ev_type, *ev_status, *ev_id;
	uint64_t timeout_s;
	uint64_t publish_timeout_s;
	uint64_t count;
};

/* Broker settings from the config file, or the defaults of PROTOCOL.md. */
struct target {
	char **urls;                    /* the nodes of the broker */
	size_t nurls;
	size_t cur, next;               /* the node connected to; where the next connect starts */
	char *password;
	char *cacert;
	char exchange[128];
	char events[128];
	char dead[128];
	char dlx[128];
	unsigned delivery_limit;
	char zones[16][72];
	size_t nzones;
	char retry_exchange[128];
	unsigned retry_delays_s[WRK_RETRY_MAX];
	size_t nretry_delays;
	char control[128];
	char cancel_prefix[128];
	unsigned cancel_ttl_s;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: snapctl --help | --version\n"
	    "       snapctl [-c FILE | --amqp-url URL] [--password-file FILE] submit [--wait] [--dry-run]\n"
	    "               [--timeout S] [--publish-timeout S] [--count N] [--zone Z] COMMAND.json|-\n"
	    "       snapctl [-c FILE | --amqp-url URL] [--password-file FILE] status\n"
	    "       snapctl [-c FILE | --amqp-url URL] [--password-file FILE] declare\n"
	    "       snapctl [...] events [--type T] [--status S] [--id ID] [--count N] [--timeout S]\n"
	    "       snapctl [...] dlq list [--json] | show ID | replay ID|--all | purge ID|--all\n"
	    "       snapctl [...] cancel [--timeout S] ID\n"
	    "submit checks the command with the worker's parser (1 if invalid; --dry-run: only that;\n"
	    "--no-validate publishes it as it is, to test a worker's handling of bad input),\n"
	    "publishes it with publisher confirms; --wait prints events until the final one\n"
	    "and exits 0 iff it succeeded (1 failed, 2 error, 3 timeout; --timeout defaults to\n"
	    "the command's deadline plus 1h).  A publish the broker\n"
	    "does not confirm is sent again for --publish-timeout (default 60s).  --count N publishes N\n"
	    "copies with fresh ids (a benchmark); with --wait it waits for all N and prints a summary.\n"
	    "declare creates the exchanges and queues the workers of this configuration use, so\n"
	    "commands can be queued before any worker has started (idempotent).\n"
	    "events follows the event exchange (JSON lines), filtered by type, status and id.\n"
	    "dlq reads the dead-letter queue without taking from it; replay sends a command back to\n"
	    "its zone for a fresh start, purge removes it.\n"
	    "cancel records that command ID is cancelled (a queued one never starts, a delayed retry\n"
	    "never resumes) and tells every worker; a running one stops, is undone and is answered\n"
	    "with a failed event CANCELLED.  It waits --timeout (default 5s) for a worker's answer.\n"
	    "Exit 0: cancelled (running: stopping now; else recorded), 1: it finished already\n"
	    "(unaffected), 2: error.\n"
	    "--amqp-url takes one URL or the nodes of a cluster, space- or comma-separated.\n"
    "The password: the config's password_file, --password-file or $SNAPCTL_PASSWORD.\n");
}

static void
target_free(struct target *t)
{
	wrk_amqp_url_list_free(t->urls, t->nurls);
	t->urls = NULL;
	t->nurls = 0;
	if (t->password != NULL) {
		explicit_bzero(t->password, strlen(t->password));
		free(t->password);
	}
	free(t->cacert);
}

static int
copy_to(char *dst, size_t dstsz, const char *src)
{
	int n = snprintf(dst, dstsz, "%s", src);

	return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

static int
target_load(const struct opts *o, struct target *t)
{
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	const char *env;
	size_t i;

	memset(t, 0, sizeof(*t));
	(void)copy_to(t->exchange, sizeof(t->exchange), "snapworker.commands");
	(void)copy_to(t->events, sizeof(t->events), "snapworker.events");
	(void)copy_to(t->dead, sizeof(t->dead), "snapworker.dead");
	(void)copy_to(t->dlx, sizeof(t->dlx), "snapworker.dlx");
	t->delivery_limit = 5;
	(void)copy_to(t->retry_exchange, sizeof(t->retry_exchange), "snapworker.retry");
	(void)copy_to(t->control, sizeof(t->control), "snapworker.control");
	(void)copy_to(t->cancel_prefix, sizeof(t->cancel_prefix), "snapworker.cancel");
	t->cancel_ttl_s = 3u * 86400u;
	{
		/* The configuration's defaults ([retry] delays). */
		static const unsigned def[] = { 10, 60, 300, 600 };

		memcpy(t->retry_delays_s, def, sizeof(def));
		t->nretry_delays = sizeof(def) / sizeof(def[0]);
	}
	(void)copy_to(t->zones[0], sizeof(t->zones[0]), "default");
	t->nzones = 1;
	if (o->config != NULL) {
		/* Only the broker part matters here: vCenter secrets are not read. */
		if (wrk_config_load_flags(o->config, NULL, WRK_CFG_BROKER_ONLY, &cfg, &e) < 0) {
			fprintf(stderr, "snapctl: %s\n", e.msg);
			return -1;
		}
		t->urls = calloc(cfg->namqp_urls, sizeof(*t->urls));
		for (i = 0; t->urls != NULL && i < cfg->namqp_urls; i++) {
			if ((t->urls[i] = strdup(cfg->amqp_urls[i])) == NULL)
				break;
			t->nurls++;
		}
		if (t->nurls != cfg->namqp_urls) {
			fprintf(stderr, "snapctl: out of memory\n");
			wrk_config_free(cfg);
			return -1;
		}
		if (cfg->amqp_password != NULL)
			t->password = strdup(cfg->amqp_password);
		if (cfg->amqp_cacert != NULL)
			t->cacert = strdup(cfg->amqp_cacert);
		if (copy_to(t->exchange, sizeof(t->exchange), cfg->amqp_exchange) < 0 ||
		    copy_to(t->events, sizeof(t->events), cfg->amqp_events) < 0 ||
		    copy_to(t->dead, sizeof(t->dead), cfg->amqp_dead_queue) < 0 ||
		    copy_to(t->dlx, sizeof(t->dlx), cfg->amqp_dlx) < 0 ||
		    copy_to(t->retry_exchange, sizeof(t->retry_exchange),
		    cfg->amqp_retry_exchange) < 0 ||
		    copy_to(t->control, sizeof(t->control), cfg->amqp_control) < 0 ||
		    copy_to(t->cancel_prefix, sizeof(t->cancel_prefix), cfg->amqp_cancel_prefix) < 0) {
			fprintf(stderr, "snapctl: broker object names too long\n");
			wrk_config_free(cfg);
			return -1;
		}
		t->delivery_limit = cfg->delivery_limit;
		t->cancel_ttl_s = cfg->cancel_ttl_s;
		memcpy(t->retry_delays_s, cfg->retry_delays_s, sizeof(t->retry_delays_s));
		t->nretry_delays = cfg->nretry_delays;
		t->nzones = 0;
		for (i = 0; i < cfg->nqueues && i < 16; i++)
			if (copy_to(t->zones[t->nzones], sizeof(t->zones[0]), cfg->queues[i]) == 0)
				t->nzones++;
		wrk_config_free(cfg);
	}
	if (o->url != NULL || t->urls == NULL) {
		char **v;
		size_t n;

		if (o->url == NULL)
			fprintf(stderr, "snapctl: no -c FILE or --amqp-url: using the local broker, "
			    "amqp://snapworker@127.0.0.1:5672/%%2f\n");

		if (wrk_amqp_url_list_parse(o->url ? o->url : "amqp://snapworker@127.0.0.1:5672/%2f",
		    &v, &n, &e) < 0) {
			fprintf(stderr, "snapctl: --amqp-url: %s\n", e.msg);
			return -1;
		}
		wrk_amqp_url_list_free(t->urls, t->nurls);
		t->urls = v;
		t->nurls = n;
	}
	if (o->password_file != NULL) {
		char *pw = NULL;
		if (sw_secret_read(o->password_file, &pw, &e) < 0) {
			fprintf(stderr, "snapctl: %s\n", e.msg);
			return -1;
		}
		if (t->password != NULL) {
			explicit_bzero(t->password, strlen(t->password));
			free(t->password);
		}
		t->password = pw;
	} else if (t->password == NULL && (env = getenv("SNAPCTL_PASSWORD")) != NULL) {
		t->password = strdup(env);
	}
	if (o->zone != NULL) {
		if (copy_to(t->zones[0], sizeof(t->zones[0]), o->zone) < 0) {
			fprintf(stderr, "snapctl: zone name too long\n");
			return -1;
		}
		t->nzones = 1;
	}
	return 0;
}

/* Connects to the first node that answers, from t->next on; quiet lists only the final failure. */
static int
connect_target_q(struct target *t, struct wrk_amqp **ret, int quiet)
{
	struct wrk_amqp_opts ao;
	struct sw_err e;
	size_t i, k;

	memset(&ao, 0, sizeof(ao));
	ao.password = t->password;
	ao.cacert = t->cacert;
	ao.heartbeat = 30;
	ao.name = "snapctl";
	ao.timeout_ms = 15000;
	for (i = 0; i < t->nurls; i++) {
		k = (t->next + i) % t->nurls;
		ao.url = t->urls[k];
		if (wrk_amqp_connect(&ao, ret, &e) == 0) {
			t->cur = k;
			t->next = (k + 1) % t->nurls;
			return 0;
		}
		if (!quiet || i + 1 == t->nurls)
			fprintf(stderr, "snapctl: %s%s\n", e.msg,
			    i + 1 < t->nurls ? "; trying the next node" : "");
	}
	return -1;
}

static int
connect_target(struct target *t, struct wrk_amqp **ret)
{
	return connect_target_q(t, ret, 0);
}

static int
read_input(const char *arg, char **ret, size_t *ret_len)
{
	size_t cap = WRK_AMQP_BODY_MAX + 1;
	char *p;
	ssize_t n;
	int fd;

	fd = strcmp(arg, "-") == 0 ? STDIN_FILENO : open(arg, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "snapctl: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	p = malloc(cap + 1);
	if (p == NULL) {
		if (fd != STDIN_FILENO)
			close(fd);
		return -1;
	}
	n = sw_read_full(fd, p, cap);
	if (fd != STDIN_FILENO)
		close(fd);
	if (n < 0 || (size_t)n > WRK_AMQP_BODY_MAX) {
		fprintf(stderr, "snapctl: %s: %s\n", arg, n < 0 ? strerror((int)-n) : "too large");
		free(p);
		return -1;
	}
	p[n] = '\0';
	*ret = p;
	*ret_len = (size_t)n;
	return 0;
}

/* The command's id and type, when the body is a JSON object that has them. */
static void
peek_command(const char *body, size_t len, char *id, size_t idsz, char *type, size_t typesz)
{
	struct json_tokener *tok = json_tokener_new_ex(32);
	struct json_object *root = NULL, *v;

	id[0] = type[0] = '\0';
	if (tok == NULL)
		return;
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (root != NULL && json_object_is_type(root, json_type_object)) {
		if (json_object_object_get_ex(root, "id", &v) && json_object_is_type(v, json_type_string))
			(void)snprintf(id, idsz, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(root, "type", &v) &&
		    json_object_is_type(v, json_type_string))
			(void)snprintf(type, typesz, "%s", json_object_get_string(v));
	}
	json_object_put(root);
	json_tokener_free(tok);
}

/* A copy of the command with a fresh id (for --count). */
static char *
with_fresh_id(const char *body, size_t len, char *id_out, size_t idsz, size_t *ret_len)
{
	struct json_tokener *tok = json_tokener_new_ex(32);
	struct json_object *root;
	uuid_t u;
	char uid[37];
	const char *s;
	char *copy = NULL;

	if (tok == NULL)
		return NULL;
	root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return NULL;
	}
	uuid_generate_random(u);
	uuid_unparse_lower(u, uid);
	(void)json_object_object_add(root, "id", json_object_new_string(uid));
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	if (s != NULL) {
		copy = strdup(s);
		*ret_len = strlen(s);
		(void)snprintf(id_out, idsz, "%s", uid);
	}
	json_object_put(root);
	return copy;
}

/*
 * The status of an event body: 0 progress, 1 succeeded, 2 failed, 3 retrying
 * (not final: another attempt is scheduled), 4 waiting (not final: for a
 * concurrency token), -1 unknown; and its id.
 */
static int
event_status(const char *body, size_t len, char *id, size_t idsz)
{
	struct json_tokener *tok = json_tokener_new_ex(32);
	struct json_object *root, *v;
	int st = -1;

	id[0] = '\0';
	if (tok == NULL)
		return -1;
	root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (root != NULL && json_object_is_type(root, json_type_object)) {
		if (json_object_object_get_ex(root, "id", &v) && json_object_is_type(v, json_type_string))
			(void)snprintf(id, idsz, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(root, "status", &v) &&
		    json_object_is_type(v, json_type_string)) {
			const char *s = json_object_get_string(v);
			st = strcmp(s, "progress") == 0 ? 0 : strcmp(s, "succeeded") == 0 ? 1 :
			    strcmp(s, "failed") == 0 ? 2 : strcmp(s, "retrying") == 0 ? 3 :
			    strcmp(s, "waiting") == 0 ? 4 : -1;
		}
	}
	json_object_put(root);
	return st;
}

static void
lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Collects final events for --count: ids are correlation ids of our own publishes. */
struct tally {
	uint64_t succeeded, failed, seen;
};

static void
tally_event(void *ud, struct wrk_amqp_ev *ev)
{
	struct tally *t = ud;
	char id[80];
	int st;

	if (ev->kind != WRK_AMQP_EV_DELIVERY || ev->msg.body == NULL)
		return;
	st = event_status(ev->msg.body, ev->msg.len, id, sizeof(id));
	if (st == 1)
		t->succeeded++;
	else if (st == 2)
		t->failed++;
	t->seen++;
}

static int
cmd_submit_count(struct wrk_amqp *c, const struct target *t, const struct opts *o,
    const char *body, size_t len)
{
	char replyq[256], tag[WRK_AMQP_STR_MAX], id[64];
	struct tally tl = { 0, 0, 0 };
	struct sw_err e;
	uint64_t i, t0, seq = 0, deadline;
	struct wrk_amqp_ev ev;

	if (o->wait && (wrk_amqp_private_queue(c, replyq, sizeof(replyq), &e) < 0 ||
	    wrk_amqp_consume(c, replyq, 1, tag, sizeof(tag), &e) < 0)) {
		fprintf(stderr, "snapctl: reply queue: %s\n", e.msg);
		return EXIT_ERROR;
	}
	t0 = sw_mono_ms();
	for (i = 0; i < o->count; i++) {
		struct wrk_amqp_pub p;
		size_t blen = 0;
		char *b = with_fresh_id(body, len, id, sizeof(id), &blen);

		if (b == NULL) {
			fprintf(stderr, "snapctl: --count needs a JSON object command\n");
			return EXIT_ERROR;
		}
		memset(&p, 0, sizeof(p));
		p.exchange = t->exchange;
		p.routing_key = t->zones[0];
		p.message_id = id;
		p.correlation_id = id;
		p.reply_to = o->wait ? replyq : NULL;
		p.mandatory = 1;
		p.body = b;
		p.len = blen;
		/* Keep a bounded window of unconfirmed publishes. */
		if (seq >= INFLIGHT_MAX && wrk_amqp_wait_confirm(c, seq - INFLIGHT_MAX / 2, 30000,
		    tally_event, &tl, &e) < 0) {
			free(b);
			fprintf(stderr, "snapctl: %s\n", e.msg);
			return EXIT_ERROR;
		}
		if (wrk_amqp_publish(c, &p, &seq, &e) < 0) {
			free(b);
			fprintf(stderr, "snapctl: %s\n", e.msg);
			return EXIT_ERROR;
		}
		free(b);
	}
	if (wrk_amqp_wait_confirm(c, seq, 30000, tally_event, &tl, &e) < 0) {
		fprintf(stderr, "snapctl: %s\n", e.msg);
		return EXIT_ERROR;
	}
	fprintf(stderr, "snapctl: published %llu commands (confirmed) in %.3f s\n",
	    (unsigned long long)o->count, (double)(sw_mono_ms() - t0) / 1000.0);
	if (!o->wait)
		return 0;
	deadline = o->timeout_s ? sw_mono_ms() + o->timeout_s * 1000 : UINT64_MAX;
	while (tl.succeeded + tl.failed < o->count) {
		if (sw_mono_ms() >= deadline) {
			printf("timeout: %llu succeeded, %llu failed of %llu\n",
			    (unsigned long long)tl.succeeded, (unsigned long long)tl.failed,
			    (unsigned long long)o->count);
			return EXIT_TIMEOUT;
		}
		if (wrk_amqp_wait(c, 1000, -1, &ev, &e) < 0) {
			fprintf(stderr, "snapctl: %s\n", e.msg);
			return EXIT_ERROR;
		}
		tally_event(&tl, &ev);
		if (ev.kind == WRK_AMQP_EV_DELIVERY)
			(void)wrk_amqp_ack(c, ev.msg.tag, &e);
		wrk_amqp_msg_clear(&ev.msg);
	}
	{
		double secs = (double)(sw_mono_ms() - t0) / 1000.0;
		printf("%llu succeeded, %llu failed in %.3f s: %.1f commands/s\n",
		    (unsigned long long)tl.succeeded, (unsigned long long)tl.failed, secs,
		    secs > 0 ? (double)o->count / secs : 0.0);
	}
	return tl.failed == 0 ? 0 : EXIT_FAILED;
}

/*
 * The private reply queue of a --wait, bound to the command type's progress,
 * retrying and waiting events; after a failover also to its final events, since the
 * command's reply_to names the queue that died with its node.
 */
static int
reply_setup(struct wrk_amqp *c, const struct target *t, const char *type, int finals,
    char *replyq, size_t qsz, char *tag, size_t tagsz, struct sw_err *e)
{
	static const char *const watched[] = { "progress", "retrying", "waiting", "succeeded",
	    "failed" };
	char key[96];
	size_t w;

	if (wrk_amqp_private_queue(c, replyq, qsz, e) < 0)
		return -1;
	if (type[0] != '\0') {
		for (w = 0; w < (finals ? 5u : 3u); w++) {
			(void)snprintf(key, sizeof(key), "%s.%s", type, watched[w]);
			lower(key);
			if (wrk_amqp_bind(c, replyq, t->events, key, e) < 0)
				return -1;
		}
	}
	return wrk_amqp_consume(c, replyq, 1, tag, tagsz, e);
}

/* After the --wait connection is lost: another node, a new reply queue; until deadline. */
static int
wait_failover(struct wrk_amqp **c, struct target *t, const char *type, uint64_t deadline,
    char *replyq, size_t qsz, char *tag, size_t tagsz)
{
	struct sw_err e;
	uint64_t give_up = deadline != UINT64_MAX ? deadline : sw_mono_ms() + 60000;

	wrk_amqp_close(*c);
	*c = NULL;
	while (sw_mono_ms() < give_up) {
		if (connect_target_q(t, c, 1) == 0) {
			if (reply_setup(*c, t, type, 1, replyq, qsz, tag, tagsz, &e) == 0) {
				fprintf(stderr, "snapctl: reconnected to %s; waiting on\n", t->urls[t->cur]);
				return 0;
			}
			fprintf(stderr, "snapctl: %s: reply queue: %s\n", t->urls[t->cur], e.msg);
			wrk_amqp_close(*c);
			*c = NULL;
		}
		(void)usleep(1000 * 1000);
	}
	return -1;
}

/*
 * The worker's own parser on the command: what it would refuse is refused
 * here, naming the field, before anything is published.  *ret_deadline_s: the
 * command's deadline (timeout_s, or its type's default).
 */
static int
validate(const char *body, size_t len, uint64_t *ret_deadline_s)
{
	struct proto_command *cmd = NULL;
	struct proto_parse_error pe;
	int r;

	memset(&pe, 0, sizeof(pe));
	r = proto_command_parse(body, len, &cmd, &pe);
	if (r < 0) {
		fprintf(stderr, "snapctl: invalid command (a worker would refuse it): %s\n",
		    pe.message[0] != '\0' ? pe.message : "unreadable");
		return -1;
	}
	*ret_deadline_s = cmd->timeout_s;
	proto_command_free(cmd);
	return 0;
}

/* A progress bar on a terminal (stderr), from the command's progress events. */
struct bar {
	int on;
	int shown;                  /* a bar line is on the screen */
	uint64_t t0_ms, b0;         /* the first progress event: time, bytes */
};

static void
human_bytes(double b, char *out, size_t outsz)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (b >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		b /= 1024;
		u++;
	}
	(void)snprintf(out, outsz, u == 0 ? "%.0f %s" : "%.1f %s", b, unit[u]);
}

/*
 * st: the event's status (0 progress, 1 succeeded, 2 failed, 3 retrying).
 * Progress redraws the line: bar, percent, bytes, rate since the first
 * progress event, ETA from the percent; anything else ends the line.
 */
static void
progress_bar(struct bar *b, const char *body, size_t len, int st)
{
	struct json_tokener *tok;
	struct json_object *root = NULL, *pr, *v;
	uint64_t now = sw_mono_ms(), bytes = 0;
	int pct = -1, i, fill;
	char line[160], done[32], rate[32], eta[32];
	double secs;

	if (st != 0) {
		if (b->shown)
			fputc('\n', stderr);
		b->shown = 0;
		b->t0_ms = 0;
		return;
	}
	if ((tok = json_tokener_new_ex(16)) == NULL)
		return;
	root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (root != NULL && json_object_object_get_ex(root, "progress", &pr)) {
		if (json_object_object_get_ex(pr, "percent", &v))
			pct = json_object_get_int(v);
		if (json_object_object_get_ex(pr, "bytes", &v))
			bytes = (uint64_t)json_object_get_int64(v);
	}
	json_object_put(root);
	if (pct < 0 || pct > 100)
		return;
	if (b->t0_ms == 0) {
		b->t0_ms = now;
		b->b0 = bytes;
	}
	secs = (double)(now - b->t0_ms) / 1000.0;
	human_bytes((double)bytes, done, sizeof(done));
	if (secs >= 1 && bytes > b->b0) {
		human_bytes((double)(bytes - b->b0) / secs, rate, sizeof(rate));
		(void)snprintf(rate + strlen(rate), sizeof(rate) - strlen(rate), "/s");
	} else {
		(void)snprintf(rate, sizeof(rate), "-");
	}
	if (secs >= 1 && pct > 0 && pct < 100) {
		unsigned left = (unsigned)(secs * (100 - pct) / pct);

		(void)snprintf(eta, sizeof(eta), "ETA %u:%02u:%02u", left / 3600, left / 60 % 60,
		    left % 60);
	} else {
		(void)snprintf(eta, sizeof(eta), "ETA -");
	}
	fill = pct * 30 / 100;
	for (i = 0; i < 30; i++)
		line[i] = i < fill ? '#' : '.';
	line[30] = '\0';
	fprintf(stderr, "\r[%s] %3d%%  %s  %s  %s\033[K", line, pct, done, rate, eta);
	fflush(stderr);
	b->shown = 1;
}

static int
cmd_submit(const struct opts *o, const char *input)
{
	struct target t;
	struct wrk_amqp *c = NULL;
	struct wrk_amqp_pub p;
	struct wrk_amqp_ev ev;
	struct sw_err e;
	char *body = NULL;
	size_t len = 0;
	char id[128], type[64], replyq[256], tag[WRK_AMQP_STR_MAX];
	uint64_t seq = 0, deadline;
	int rc = EXIT_ERROR, attempt;
	uint64_t pub_end, cmd_deadline_s = 0;
	struct bar bar;

	memset(&t, 0, sizeof(t));
	if (read_input(input, &body, &len) < 0)
		goto out;
	if (o->no_validate)
		cmd_deadline_s = 6 * 3600;
	else if (validate(body, len, &cmd_deadline_s) < 0) {
		rc = EXIT_FAILED;
		goto out;
	}
	if (o->dry_run) {
		peek_command(body, len, id, sizeof(id), type, sizeof(type));
		printf("valid: %s %s\n", type, id);
		rc = 0;
		goto out;
	}
	if (target_load(o, &t) < 0)
		goto out;
	if (connect_target(&t, &c) < 0)
		goto out;
	if (wrk_amqp_confirm_select(c, &e) < 0) {
		fprintf(stderr, "snapctl: %s\n", e.msg);
		goto out;
	}
	if (o->count > 0) {
		rc = cmd_submit_count(c, &t, o, body, len);
		goto out;
	}
	peek_command(body, len, id, sizeof(id), type, sizeof(type));
	if (o->wait) {
		if (id[0] == '\0') {
			fprintf(stderr, "snapctl: --wait needs a command with an \"id\"\n");
			goto out;
		}
		/* Everything that could carry our events exists before we publish. */
		if (reply_setup(c, &t, type, 0, replyq, sizeof(replyq), tag, sizeof(tag), &e) < 0)
			goto amqp_fail;
	}
	memset(&p, 0, sizeof(p));
	p.exchange = t.exchange;
	p.routing_key = t.zones[0];
	p.message_id = id[0] ? id : NULL;
	p.correlation_id = o->wait ? id : NULL;
	p.reply_to = o->wait ? replyq : NULL;
	p.mandatory = 1;
	p.body = body;
	p.len = len;
	/*
	 * A publish the broker did not confirm (a nack, a queue leader lost with
	 * its node, a connection that died) is sent again on a new connection:
	 * the command id makes a second copy harmless.  Always a new one: a
	 * channel that was publishing when its quorum queue's leader died was
	 * seen (RabbitMQ 3.10, 3-node cluster) to be nacked for over a minute,
	 * every resend, while a fresh connection to the same live node had its
	 * publishes confirmed at once.
	 */
	pub_end = sw_mono_ms() + (o->publish_timeout_s ? o->publish_timeout_s : PUBLISH_TIMEOUT_S) *
	    1000u;
	for (attempt = 1;; attempt++) {
		unsigned pause = attempt < 4 ? 1 : attempt < 8 ? 2 : 5;

		sw_err_clear(&e);
		if (wrk_amqp_publish(c, &p, &seq, &e) == 0 &&
		    wrk_amqp_wait_confirm(c, seq, 30000, NULL, NULL, &e) == 0)
			break;
		if (e.code == SW_ENOTFOUND || sw_mono_ms() + pause * 1000u >= pub_end)
			break;
		fprintf(stderr, "snapctl: publish not confirmed (%s); sending it again\n", e.msg);
		sleep(pause);
		wrk_amqp_close(c);
		c = NULL;
		if (connect_target(&t, &c) < 0 || wrk_amqp_confirm_select(c, &e) < 0)
			goto out;
		if (o->wait && reply_setup(c, &t, type, 1, replyq, sizeof(replyq), tag, sizeof(tag),
		    &e) < 0)
			goto amqp_fail;
		p.reply_to = o->wait ? replyq : NULL;
	}
	if (e.code != 0) {
		if (e.code == SW_ENOTFOUND && strstr(e.msg, "no exchange") != NULL)
			fprintf(stderr, "snapctl: exchange %s does not exist yet (start a worker or run "
			    "snapctl declare)\n", t.exchange);
		else if (e.code == SW_ENOTFOUND)
			fprintf(stderr, "snapctl: no queue is bound for zone '%s' on %s (start a worker "
			    "or run snapctl declare)\n", t.zones[0], t.exchange);
		else
			fprintf(stderr, "snapctl: publish: %s\n", e.msg);
		goto out;
	}
	if (!o->quiet)
		fprintf(stderr, "snapctl: published %s (confirmed)\n", id[0] ? id : "(no id)");
	if (!o->wait) {
		rc = 0;
		goto out;
	}
	/*
	 * Without --timeout: the command's deadline, plus an hour for its time
	 * in the queue and its retries' delays.  A wait never lasts forever.
	 */
	deadline = sw_mono_ms() + (o->timeout_s ? o->timeout_s : cmd_deadline_s + 3600) * 1000;
	memset(&bar, 0, sizeof(bar));
	bar.on = !o->quiet && isatty(STDERR_FILENO);
	for (;;) {
		char eid[128];
		int st;

		if (sw_mono_ms() >= deadline) {
			fprintf(stderr, "snapctl: no final event within %llu s\n",
			    (unsigned long long)(o->timeout_s ? o->timeout_s : cmd_deadline_s + 3600));
			rc = EXIT_TIMEOUT;
			goto out;
		}
		if (wrk_amqp_wait(c, 1000, -1, &ev, &e) < 0) {
			fprintf(stderr, "snapctl: connection to %s lost: %s; failing over\n",
			    t.urls[t.cur], e.msg);
			if (wait_failover(&c, &t, type, deadline, replyq, sizeof(replyq), tag,
			    sizeof(tag)) < 0) {
				fprintf(stderr, "snapctl: no broker node to wait on\n");
				goto out;
			}
			continue;
		}
		if (ev.kind != WRK_AMQP_EV_DELIVERY)
			continue;
		(void)wrk_amqp_ack(c, ev.msg.tag, &e);
		st = ev.msg.body ? event_status(ev.msg.body, ev.msg.len, eid, sizeof(eid)) : -1;
		if (st < 0 || strcmp(eid, id) != 0) {
			/* Another command's progress or retry on the shared event exchange. */
			wrk_amqp_msg_clear(&ev.msg);
			continue;
		}
		if (bar.on)
			progress_bar(&bar, ev.msg.body, ev.msg.len, st);
		/* On a terminal the bar stands for the progress lines. */
		if (!(bar.on && st == 0 && isatty(STDOUT_FILENO))) {
			printf("%s\n", ev.msg.body);
			(void)fflush(stdout);
		}
		wrk_amqp_msg_clear(&ev.msg);
		if (st == 1 || st == 2) {
			rc = st == 1 ? 0 : EXIT_FAILED;
			goto out;
		}
	}
amqp_fail:
	fprintf(stderr, "snapctl: %s\n", e.msg);
out:
	wrk_amqp_close(c);
	free(body);
	target_free(&t);
	return rc;
}

static int
cmd_status(const struct opts *o)
{
	struct target t;
	struct wrk_amqp *c = NULL;
	struct sw_err e;
	char q[300];
	size_t i;
	int rc = 0;

	if (target_load(o, &t) < 0) {
		target_free(&t);
		return EXIT_ERROR;
	}
	/* Nothing is printed before the broker has answered. */
	if (connect_target(&t, &c) < 0) {
		target_free(&t);
		return EXIT_ERROR;
	}
	printf("%-40s %10s %10s\n", "queue", "ready", "consumers");
	for (i = 0; i <= t.nzones; i++) {
		uint32_t msgs = 0, cons = 0;
		int r;

		if (i < t.nzones)
			(void)snprintf(q, sizeof(q), "%s.%s", t.exchange, t.zones[i]);
		else
			(void)snprintf(q, sizeof(q), "%s", t.dead);
		/* A passive declare of a missing queue closes the channel: one connection per queue. */
		if (c == NULL && connect_target(&t, &c) < 0) {
			rc = EXIT_ERROR;
			break;
		}
		r = wrk_amqp_queue_counts(c, q, &msgs, &cons, &e);
		if (r == -ENOENT) {
			printf("%-40s %10s %10s\n", q, "-", "-");
			wrk_amqp_close(c);
			c = NULL;
		} else if (r < 0) {
			fprintf(stderr, "snapctl: %s\n", e.msg);
			rc = EXIT_ERROR;
			break;
		} else {
			printf("%-40s %10u %10u\n", q, msgs, cons);
		}
	}
	printf("(unacknowledged counts are not visible over AMQP 0-9-1: see rabbitmqctl "
	    "list_queues name messages_ready messages_unacknowledged consumers)\n");
	wrk_amqp_close(c);
	target_free(&t);
	return rc;
}

/* The topology a worker of this configuration declares, declared from here. */
static int
cmd_declare(const struct opts *o)
{
	struct target t;
	struct wrk_amqp *c = NULL;
	struct wrk_topology topo;
	const char *zones[16];
	struct sw_err e;
	char q[300];
	size_t i;
	int rc = EXIT_ERROR;

	if (target_load(o, &t) < 0)
		goto out;
	for (i = 0; i < t.nzones; i++)
		zones[i] = t.zones[i];
	memset(&topo, 0, sizeof(topo));
	topo.exchange = t.exchange;
	topo.events = t.events;
	topo.dlx = t.dlx;
	topo.dead_queue = t.dead;
	topo.zones = zones;
	topo.nzones = t.nzones;
	topo.delivery_limit = t.delivery_limit;
	topo.retry_exchange = t.retry_exchange;
	topo.retry_delays_s = t.retry_delays_s;
	topo.nretry_delays = t.nretry_delays;
	topo.control = t.control;
	if (connect_target(&t, &c) < 0)
		goto out;
	if (wrk_amqp_declare(c, &topo, &e) < 0) {
		/* PRECONDITION_FAILED: the queue exists with other arguments (delivery_limit?). */
		fprintf(stderr, "snapctl: declare: %s\n", e.msg);
		goto out;
	}
	printf("exchanges: %s (direct), %s (topic), %s (fanout), %s (fanout)\n", t.exchange,
	    t.events, t.dlx, t.control);
	for (i = 0; i < t.nzones; i++)
		if (wrk_amqp_queue_name(&topo, t.zones[i], q, sizeof(q)) == 0)
			printf("queue: %s (quorum, x-delivery-limit %u)\n", q, t.delivery_limit);
	printf("queue: %s\n", t.dead);
	for (i = 0; i < t.nretry_delays; i++)
		printf("retry queues: %s.<zone>.%us (quorum, message TTL %u s, back to %s)\n",
		    t.retry_exchange, t.retry_delays_s[i], t.retry_delays_s[i], t.exchange);
	rc = 0;
out:
	wrk_amqp_close(c);
	target_free(&t);
	return rc;
}

/* ------------------------------------------------------------- cancel */

#define CANCEL_WAIT_S 5u

struct cancel_answer {
	char status[16];
	char outcome[16];
	char worker[128];
};

/* A worker's answer to our request for id; 0 when it is one. */
static int
cancel_answer_read(const struct wrk_amqp_msg *m, const char *id, struct cancel_answer *a)
{
	json_object *root, *v;
	int rc = -1;

	memset(a, 0, sizeof(*a));
	if (m->body == NULL || (root = json_tokener_parse(m->body)) == NULL)
		return -1;
	if (json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "cancel", &v) && json_object_is_type(v, json_type_string) &&
	    strcasecmp(json_object_get_string(v), id) == 0 &&
	    json_object_object_get_ex(root, "status", &v) && json_object_is_type(v, json_type_string)) {
		(void)snprintf(a->status, sizeof(a->status), "%s", json_object_get_string(v));
		if (json_object_object_get_ex(root, "outcome", &v) &&
		    json_object_is_type(v, json_type_string))
			(void)snprintf(a->outcome, sizeof(a->outcome), "%s", json_object_get_string(v));
		if (json_object_object_get_ex(root, "worker", &v) &&
		    json_object_is_type(v, json_type_string))
			(void)snprintf(a->worker, sizeof(a->worker), "%s", json_object_get_string(v));
		rc = 0;
	}
	json_object_put(root);
	return rc;
}

/*
 * Records the cancel (the command's cancel record, a durable quorum queue
 * that expires after cancel_ttl), then tells every worker through the
 * control exchange and waits for the answer of the one that runs it.
 */
static int
cmd_cancel(const struct opts *o, const char *arg)
{
	struct target t;
	struct wrk_amqp *c = NULL;
	struct wrk_amqp_pub p;
	struct wrk_amqp_ev ev;
	struct cancel_answer a, finished;
	struct sw_err e;
	char id[PROTO_UUID_LEN + 1], record[512], reply[WRK_AMQP_STR_MAX], tag[WRK_AMQP_STR_MAX];
	char *body = NULL;
	size_t len = 0;
	uint64_t seq = 0, end, now;
	int rc = EXIT_ERROR, got_finished = 0;

	memset(&finished, 0, sizeof(finished));
	if (strlen(arg) != PROTO_UUID_LEN || proto_cancel_build(arg, &body, &len, &e) < 0) {
		fprintf(stderr, "snapctl: cancel: '%s' is not a command id (a UUID)\n", arg);
		return EXIT_ERROR;
	}
	(void)snprintf(id, sizeof(id), "%s", arg);
	proto_uuid_lower(id);
	if (target_load(o, &t) < 0)
		goto out;
	if (wrk_amqp_cancel_record_name(t.cancel_prefix, id, record, sizeof(record)) < 0) {
		fprintf(stderr, "snapctl: cancel record name too long\n");
		goto out;
	}
	if (connect_target(&t, &c) < 0)
		goto out;
	memset(&p, 0, sizeof(p));
	if (wrk_amqp_cancel_record_declare(c, record, t.cancel_ttl_s, &e) < 0 ||
	    wrk_amqp_declare_exchange(c, t.control, "fanout", &e) < 0 ||
	    wrk_amqp_confirm_select(c, &e) < 0 ||
	    wrk_amqp_private_queue(c, reply, sizeof(reply), &e) < 0 ||
	    wrk_amqp_subscribe(c, reply, tag, sizeof(tag), &e) < 0) {
		fprintf(stderr, "snapctl: cancel: %s\n", e.msg);
		goto out;
	}
	/* The record first: a worker that has not seen the request checks it before it starts. */
	p.exchange = t.control;
	p.routing_key = "";
	p.message_id = id;
	p.correlation_id = id;
	p.reply_to = reply;
	p.body = body;
	p.len = len;
	if (wrk_amqp_publish(c, &p, &seq, &e) < 0 ||
	    wrk_amqp_wait_confirm(c, seq, 30000, NULL, NULL, &e) < 0) {
		fprintf(stderr, "snapctl: cancel: the record %s is in place, but telling the workers "
		    "failed: %s\n", record, e.msg);
		goto out;
	}
	end = sw_mono_ms() + (o->timeout_s ? o->timeout_s : CANCEL_WAIT_S) * 1000u;
	while ((now = sw_mono_ms()) < end) {
		if (wrk_amqp_wait(c, (int)(end - now), -1, &ev, &e) < 0) {
			fprintf(stderr, "snapctl: cancel: %s\n", e.msg);
			break;
		}
		if (ev.kind == WRK_AMQP_EV_DELIVERY && cancel_answer_read(&ev.msg, id, &a) == 0) {
			if (strcmp(a.status, "cancelling") == 0) {
				printf("%s: cancelling: it runs on %s and stops now; its failed event "
				    "CANCELLED follows\n", id, a.worker[0] ? a.worker : "a worker");
				wrk_amqp_msg_clear(&ev.msg);
				rc = 0;
				goto out;
			}
			if (strcmp(a.status, "finished") == 0 && !got_finished) {
				/* Another worker may run it again (a redelivery): a moment more. */
				finished = a;
				got_finished = 1;
				if (end > sw_mono_ms() + 1000)
					end = sw_mono_ms() + 1000;
			}
		}
		wrk_amqp_msg_clear(&ev.msg);
	}
	if (got_finished) {
		printf("%s: finished already (%s) on %s: unaffected\n", id,
		    finished.outcome[0] ? finished.outcome : "?",
		    finished.worker[0] ? finished.worker : "a worker");
		rc = EXIT_FAILED;
		goto out;
	}
	printf("%s: no worker runs it; the cancel is recorded (%s, kept %u s): a command still queued "
	    "or waiting for a retry is answered CANCELLED when it is reached, without running; a "
	    "command that finished already is unaffected\n", id, record, t.cancel_ttl_s);
	rc = 0;
out:
	free(body);
	wrk_amqp_close(c);
	target_free(&t);
	return rc;
}

/* ------------------------------------------------------- dead letters */

#define DLQ_MAX 10000u

enum dlq_op { DLQ_LIST, DLQ_SHOW, DLQ_REPLAY, DLQ_PURGE };

/* Ignores what arrives while a confirm is awaited: it stays unacked, requeued at close. */
static void
dlq_ignore(void *ud, struct wrk_amqp_ev *ev)
{
	(void)ud; (void)ev;
}

static void
json_str(FILE *f, const char *key, const char *v, int comma)
{
	struct json_object *o = json_object_new_string(v);

	fprintf(f, "\"%s\":%s%s", key, o != NULL ? json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "\"\"",
	    comma ? "," : "");
	json_object_put(o);
}

static void
dlq_print(const struct wrk_amqp_msg *m, const char *id, const char *type, int json, int full)
{
	if (json || full) {
		fputc('{', stdout);
		json_str(stdout, "id", id, 1);
		json_str(stdout, "type", type, 1);
		json_str(stdout, "zone", m->routing_key, 1);
		printf("\"attempt\":%lld,", (long long)(m->attempt > 0 ? m->attempt : 1));
		json_str(stdout, "error", m->error, 1);
		json_str(stdout, "dead_lettered_by", m->death_reason[0] ? m->death_reason : "worker",
		    full);
		if (full)
			json_str(stdout, "body", m->too_big ? "" : m->body, 0);
		printf("}\n");
		return;
	}
	printf("%-36s %-16s %-10s %3lld  %.160s\n", id[0] ? id : "(no id)", type[0] ? type : "?",
	    m->routing_key, (long long)(m->attempt > 0 ? m->attempt : 1),
	    m->error[0] ? m->error : m->death_reason[0] ? m->death_reason : "-");
}

/*
 * The dead-letter queue, read without taking anything: every message is
 * received unacknowledged, and what is not replayed or purged goes back to
 * the queue when the connection closes.  sel: a command id, or NULL for all.
 */
static int
cmd_dlq(const struct opts *o, enum dlq_op op, const char *sel)
{
	struct target t;
	struct wrk_amqp *c = NULL;
	struct wrk_amqp_msg *got = NULL;
	struct wrk_amqp_ev ev;
	struct sw_err e;
	char tag[WRK_AMQP_STR_MAX];
	uint32_t msgs = 0, cons = 0;
	size_t n = 0, i, matched = 0, done = 0;
	int rc = EXIT_ERROR, r;

	memset(&t, 0, sizeof(t));
	if (target_load(o, &t) < 0 || connect_target(&t, &c) < 0)
		goto out;
	r = wrk_amqp_queue_counts(c, t.dead, &msgs, &cons, &e);
	if (r < 0) {
		fprintf(stderr, "snapctl: %s: %s\n", t.dead, r == -ENOENT ?
		    "no such queue (start a worker or run snapctl declare)" : e.msg);
		goto out;
	}
	if (msgs > DLQ_MAX)
		fprintf(stderr, "snapctl: %s holds %u messages: looking at the first %u\n", t.dead,
		    msgs, DLQ_MAX);
	if (msgs > 0) {
		if ((got = calloc(msgs < DLQ_MAX ? msgs : DLQ_MAX, sizeof(*got))) == NULL ||
		    wrk_amqp_confirm_select(c, &e) < 0 ||
		    wrk_amqp_qos(c, msgs < DLQ_MAX ? msgs : DLQ_MAX, &e) < 0 ||
		    wrk_amqp_consume(c, t.dead, 1, tag, sizeof(tag), &e) < 0) {
			fprintf(stderr, "snapctl: %s: %s\n", t.dead, got == NULL ? "out of memory" :
			    e.msg);
			goto out;
		}
	}
	/* Everything the count promised, or until the queue is quiet for 2 s. */
	while (n < msgs && n < DLQ_MAX) {
		memset(&ev, 0, sizeof(ev));
		if (wrk_amqp_wait(c, 2000, -1, &ev, &e) < 0) {
			fprintf(stderr, "snapctl: %s\n", e.msg);
			goto out;
		}
		if (ev.kind == WRK_AMQP_EV_TIMEOUT)
			break;
		if (ev.kind == WRK_AMQP_EV_DELIVERY)
			got[n++] = ev.msg;
	}
	if (op == DLQ_LIST && !o->json)
		printf("%-36s %-16s %-10s %3s  %s\n", "ID", "TYPE", "ZONE", "ATT", "LAST ERROR");
	for (i = 0; i < n; i++) {
		struct wrk_amqp_msg *m = &got[i];
		char id[128], type[64];

		id[0] = type[0] = '\0';
		if (m->body != NULL)
			peek_command(m->body, m->len, id, sizeof(id), type, sizeof(type));
		if (sel != NULL && strcmp(sel, id) != 0)
			continue;
		matched++;
		switch (op) {
		case DLQ_LIST:
			dlq_print(m, id, type, o->json, 0);
			break;
		case DLQ_SHOW:
			dlq_print(m, id, type, 1, 1);
			break;
		case DLQ_REPLAY: {
			struct wrk_amqp_pub p;
			uint64_t seq = 0;

			if (m->body == NULL) {
				fprintf(stderr, "snapctl: %s: too large to replay; purge it\n", id);
				continue;
			}
			/* A fresh start: no attempt header, the zone it was dead-lettered from. */
			memset(&p, 0, sizeof(p));
			p.exchange = t.exchange;
			p.routing_key = m->routing_key;
			p.message_id = m->message_id[0] ? m->message_id : NULL;
			p.correlation_id = m->correlation_id[0] ? m->correlation_id : NULL;
			p.reply_to = m->reply_to[0] ? m->reply_to : NULL;
			p.mandatory = 1;
			p.body = m->body;
			p.len = m->len;
			if (wrk_amqp_publish(c, &p, &seq, &e) < 0 ||
			    wrk_amqp_wait_confirm(c, seq, 30000, dlq_ignore, NULL, &e) < 0 ||
			    wrk_amqp_ack(c, m->tag, &e) < 0) {
				fprintf(stderr, "snapctl: replay of %s: %s\n", id[0] ? id : "(no id)",
				    e.code == SW_ENOTFOUND ? "no queue is bound for its zone" : e.msg);
				goto out;
			}
			printf("replayed %s (%s, zone %s)\n", id[0] ? id : "(no id)", type,
			    m->routing_key);
			done++;
			break;
		}
		case DLQ_PURGE:
			if (wrk_amqp_ack(c, m->tag, &e) < 0) {
				fprintf(stderr, "snapctl: purge: %s\n", e.msg);
				goto out;
			}
			printf("purged %s (%s)\n", id[0] ? id : "(no id)", type);
			done++;
			break;
		}
	}
	if (sel != NULL && matched == 0) {
		fprintf(stderr, "snapctl: no command %s in %s\n", sel, t.dead);
		rc = EXIT_FAILED;
		goto out;
	}
	if (op == DLQ_LIST && !o->json)
		printf("(%zu message%s in %s)\n", n, n == 1 ? "" : "s", t.dead);
	rc = 0;
out:
	/* Closing returns every message not acknowledged to the queue. */
	wrk_amqp_close(c);
	for (i = 0; i < n; i++)
		wrk_amqp_msg_clear(&got[i]);
	free(got);
	target_free(&t);
	return rc;
}

/* ------------------------------------------------------------- events */

/*
 * Follows the event exchange: every event whose routing key matches
 * TYPE.STATUS (either may be omitted: any), and with --id only that
 * command's, one JSON line each, until --count events or --timeout.
 */
static int
cmd_events(const struct opts *o)
{
	struct target t;
	struct wrk_amqp *c = NULL;
	struct wrk_amqp_ev ev;
	struct sw_err e;
	char q[256], tag[WRK_AMQP_STR_MAX], key[160];
	uint64_t seen = 0, deadline;
	int rc = EXIT_ERROR;

	memset(&t, 0, sizeof(t));
	if (o->ev_type != NULL && proto_type_from_name(o->ev_type) == PROTO_TYPE_UNKNOWN) {
		fprintf(stderr, "snapctl: events: unknown --type '%s'\n", o->ev_type);
		goto out;
	}
	if (o->ev_status != NULL && strcmp(o->ev_status, "progress") != 0 &&
	    strcmp(o->ev_status, "retrying") != 0 && strcmp(o->ev_status, "succeeded") != 0 &&
	    strcmp(o->ev_status, "failed") != 0 && strcmp(o->ev_status, "waiting") != 0) {
		fprintf(stderr, "snapctl: events: --status is progress, retrying, waiting, succeeded "
		    "or failed, not '%s'\n", o->ev_status);
		goto out;
	}
	(void)snprintf(key, sizeof(key), "%s.%s", o->ev_type ? o->ev_type : "*",
	    o->ev_status ? o->ev_status : "*");
	lower(key);
	if (target_load(o, &t) < 0 || connect_target(&t, &c) < 0)
		goto out;
	if (wrk_amqp_private_queue(c, q, sizeof(q), &e) < 0 ||
	    wrk_amqp_bind(c, q, t.events, key, &e) < 0 ||
	    wrk_amqp_consume(c, q, 1, tag, sizeof(tag), &e) < 0) {
		fprintf(stderr, "snapctl: events: %s\n", e.msg);
		goto out;
	}
	fprintf(stderr, "snapctl: following %s (%s)%s%s\n", t.events, key,
	    o->ev_id ? " for command " : "", o->ev_id ? o->ev_id : "");
	fflush(stderr);
	deadline = o->timeout_s ? sw_mono_ms() + o->timeout_s * 1000 : UINT64_MAX;
	for (;;) {
		uint64_t now = sw_mono_ms();
		char eid[128];

		if (o->count && seen >= o->count) {
			rc = 0;
			break;
		}
		if (now >= deadline) {
			rc = o->count ? EXIT_TIMEOUT : 0;
			break;
		}
		memset(&ev, 0, sizeof(ev));
		if (wrk_amqp_wait(c, deadline - now > 1000 ? 1000 : (int)(deadline - now), -1, &ev,
		    &e) < 0) {
			fprintf(stderr, "snapctl: events: %s\n", e.msg);
			break;
		}
		if (ev.kind != WRK_AMQP_EV_DELIVERY)
			continue;
		if (ev.msg.body != NULL && (o->ev_id == NULL ||
		    (event_status(ev.msg.body, ev.msg.len, eid, sizeof(eid)), strcmp(eid, o->ev_id) == 0))) {
			printf("%s\n", ev.msg.body);
			fflush(stdout);
			seen++;
		}
		(void)wrk_amqp_ack(c, ev.msg.tag, &e);
		wrk_amqp_msg_clear(&ev.msg);
	}
out:
	wrk_amqp_close(c);
	target_free(&t);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "amqp-url", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "publish-timeout", required_argument, NULL, 'P' },
		{ "count", required_argument, NULL, 'n' },
		{ "zone", required_argument, NULL, 'z' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "no-validate", no_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "type", required_argument, NULL, 'T' },
		{ "status", required_argument, NULL, 'S' },
		{ "id", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	const char *sub = NULL;
	int ch;

	memset(&o, 0, sizeof(o));
	/* Options anywhere on the line; the first operand is the subcommand. */
	while ((ch = getopt_long(argc, argv, "c:u:p:wt:P:n:z:qdNjT:S:I:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config = optarg; break;
		case 'u': o.url = optarg; break;
		case 'p': o.password_file = optarg; break;
		case 'w': o.wait = 1; break;
		case 'q': o.quiet = 1; break;
		case 'd': o.dry_run = 1; break;
		case 'N': o.no_validate = 1; break;
		case 'j': o.json = 1; break;
		case 'T': o.ev_type = optarg; break;
		case 'S': o.ev_status = optarg; break;
		case 'I': o.ev_id = optarg; break;
		case 'z': o.zone = optarg; break;
		case 't':
			if (sw_parse_duration(optarg, 7 * 86400, &o.timeout_s) < 0) {
				fprintf(stderr, "snapctl: bad --timeout\n");
				return EXIT_ERROR;
			}
			break;
		case 'P':
			if (sw_parse_duration(optarg, 86400, &o.publish_timeout_s) < 0 ||
			    o.publish_timeout_s == 0) {
				fprintf(stderr, "snapctl: bad --publish-timeout (a duration, 1s to 1d)\n");
				return EXIT_ERROR;
			}
			break;
		case 'n':
			if (sw_parse_u64(optarg, 1, COUNT_MAX, &o.count) < 0) {
				fprintf(stderr, "snapctl: --count must be 1-%d\n", COUNT_MAX);
				return EXIT_ERROR;
			}
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("snapctl %s (protocol %d)\n", SW_VERSION, SW_PROTOCOL_VERSION); return 0;
		default: usage(stderr); return EXIT_ERROR;
		}
	}
	if (optind < argc)
		sub = argv[optind++];
	if (sub != NULL && strcmp(sub, "submit") == 0 && optind + 1 == argc)
		return cmd_submit(&o, argv[optind]);
	if (sub != NULL && strcmp(sub, "status") == 0 && optind == argc)
		return cmd_status(&o);
	if (sub != NULL && strcmp(sub, "declare") == 0 && optind == argc)
		return cmd_declare(&o);
	if (sub != NULL && strcmp(sub, "cancel") == 0 && optind + 1 == argc)
		return cmd_cancel(&o, argv[optind]);
	if (sub != NULL && strcmp(sub, "events") == 0 && optind == argc)
		return cmd_events(&o);
	if (sub != NULL && strcmp(sub, "dlq") == 0 && optind < argc) {
		const char *op = argv[optind++];
		const char *sel = optind < argc ? argv[optind] : NULL;
		int all = sel != NULL && strcmp(sel, "--all") == 0;

		if (optind + (sel != NULL) != argc) {
			fprintf(stderr, "snapctl: dlq %s: too many arguments\n", op);
			return EXIT_ERROR;
		}
		if (strcmp(op, "list") == 0 && sel == NULL)
			return cmd_dlq(&o, DLQ_LIST, NULL);
		if (strcmp(op, "show") == 0 && sel != NULL && !all)
			return cmd_dlq(&o, DLQ_SHOW, sel);
		if ((strcmp(op, "replay") == 0 || strcmp(op, "purge") == 0) && sel != NULL)
			return cmd_dlq(&o, op[0] == 'r' ? DLQ_REPLAY : DLQ_PURGE, all ? NULL : sel);
		fprintf(stderr, "snapctl: dlq: '%s'%s: expected list, show ID, replay ID|--all or "
		    "purge ID|--all\n", op, sel != NULL ? " with that argument" : "");
		return EXIT_ERROR;
	}
	if (sub != NULL)
		fprintf(stderr, "snapctl: unknown command or arguments: '%s'\n", sub);
	usage(stderr);
	return EXIT_ERROR;
}
