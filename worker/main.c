/*
 * snapworker: the daemon (`run`), a configuration and connectivity check
 * (`check`) and a broker-less single command runner (`run-once`).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "common/version.h"
#include "common/buf.h"
#include "common/io.h"
#include "common/log.h"
#include "common/num.h"
#include "common/path.h"
#include "worker/amqp.h"
#include "worker/config.h"
#include "worker/daemon.h"
#include "worker/deliver.h"
#include "worker/job.h"
#include "worker/log.h"
#include "worker/metrics.h"
#include "worker/storehealth.h"
#include "worker/sweep.h"
#include "worker/vcenter.h"


static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: snapworker [-v] run [-c FILE]            run the worker daemon\n"
	    "       snapworker [-v] check [-c FILE]          check config, broker, stores, vCenters\n"
	    "       snapworker health [-c FILE]              ask the running worker's /health (the\n"
	    "                                                [metrics] listen address): exit 0 iff healthy\n"
	    "       snapworker [-v] run-once [-c FILE] COMMAND.json|-\n"
	    "                                                run one command without a broker; events\n"
	    "                                                as JSON lines on stdout; exit 0 iff it succeeded\n"
	    "       snapworker [-v] sweep [-c FILE] [--dry-run] [--older-than DURATION [--force]]\n"
	    "                                                remove crash leftovers: worker VMs, VM\n"
	    "                                                snapshots of crash journals, store debris\n"
	    "       snapworker --help | --version\n"
	    "options: -c FILE  configuration (default " WRK_CONFIG_DEFAULT ")\n"
	    "         -v       plain-text logs instead of JSON lines\n");
}

static int
load_config(const char *path, int optional, struct wrk_config **ret)
{
	struct sw_err e;

	sw_err_clear(&e);
	/* run-once works without any configuration file: an empty one then. */
	if (path == NULL && optional && access(WRK_CONFIG_DEFAULT, F_OK) < 0)
		path = "/dev/null";
	if (wrk_config_load(path, NULL, ret, &e) < 0) {
		fprintf(stderr, "snapworker: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int
init_log(const struct wrk_config *cfg, int verbose_text)
{
	struct sw_err e;
	size_t i;

	if (wrk_log_init(verbose_text ? "text" : cfg->log_format, cfg->log_level, cfg->name,
	    cfg->log_file, &e) < 0) {
		fprintf(stderr, "snapworker: %s\n", e.msg);
		return -1;
	}
	for (i = 0; i < cfg->nvcenters; i++)
		if (cfg->vcenters[i].insecure)
			log_warnx("vCenter credentials '%s': certificate verification is OFF "
			    "(insecure = true; test rigs only)", cfg->vcenters[i].name);
	return 0;
}

/* ------------------------------------------------------------- run-once */

static atomic_int once_cancel;

static void
once_signal(int sig)
{
	(void)sig;
	once_cancel = WRK_CANCEL_SHUTDOWN;
}

static void
once_progress(void *ud, const char *json, size_t len, const char *rk)
{
	(void)ud;
	(void)rk;
	(void)fwrite(json, 1, len, stdout);
	(void)fputc('\n', stdout);
	(void)fflush(stdout);
}

static int
read_input(const char *arg, char **ret, size_t *ret_len)
{
	struct { char *p; } b = { NULL };
	size_t cap = WRK_AMQP_BODY_MAX + 1;
	ssize_t n;
	int fd;

	fd = strcmp(arg, "-") == 0 ? STDIN_FILENO : open(arg, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "snapworker: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	b.p = malloc(cap + 1);
	if (b.p == NULL) {
		if (fd != STDIN_FILENO)
			close(fd);
		return -1;
	}
	n = sw_read_full(fd, b.p, cap);
	if (fd != STDIN_FILENO)
		close(fd);
	if (n < 0) {
		fprintf(stderr, "snapworker: %s: %s\n", arg, strerror((int)-n));
		free(b.p);
		return -1;
	}
	if ((size_t)n > WRK_AMQP_BODY_MAX) {
		fprintf(stderr, "snapworker: %s: larger than %d bytes\n", arg, WRK_AMQP_BODY_MAX);
		free(b.p);
		return -1;
	}
	b.p[n] = '\0';
	*ret = b.p;
	*ret_len = (size_t)n;
	return 0;
}

static int
cmd_run_once(const char *cfgpath, const char *input, int text)
{
	struct wrk_config *cfg = NULL;
	struct wrk_dispatch d;
	struct wrk_outcome out;
	struct sigaction sa;
	char *body = NULL;
	size_t len = 0;
	int status = 1;

	if (load_config(cfgpath, 1, &cfg) < 0)
		return 2;
	if (init_log(cfg, text) < 0 || read_input(input, &body, &len) < 0) {
		wrk_config_free(cfg);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = once_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);

	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.worker = cfg->name;
	d.run = wrk_cmd_run;
	d.clear = wrk_cmd_result_clear;
	/* No broker to retry through: every failure is final (no retry delays). */
	d.delivery_limit = 1;
	d.on_progress = once_progress;
	wrk_dispatch_run(&d, body, len, 0, 1, &once_cancel, &out);
	wrk_vc_pool_drain();
	if (out.event != NULL) {
		(void)fwrite(out.event, 1, out.event_len, stdout);
		(void)fputc('\n', stdout);
		(void)fflush(stdout);
	}
	wrk_log_set_cmd(out.id[0] ? out.id : NULL, out.type);
	if (out.succeeded) {
		log_info("succeeded in %llu ms", (unsigned long long)out.elapsed_ms);
		status = 0;
	} else {
		log_warnx("failed: %s: %s", out.errcode, out.message);
	}
	wrk_outcome_clear(&out);
	free(body);
	wrk_config_free(cfg);
	return status;
}

/* ---------------------------------------------------------------- check */

static int
check_dir(const char *what, const char *path, int need_write)
{
	struct sw_err e;
	int fd = sw_root_open(path, &e);

	if (fd < 0) {
		printf("  %s %s: FAILED: %s\n", what, path, e.msg);
		return -1;
	}
	if (need_write && faccessat(fd, ".", W_OK, AT_EACCESS) < 0) {
		printf("  %s %s: FAILED: not writable: %s\n", what, path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	printf("  %s %s: ok\n", what, path);
	return 0;
}

/* The extract area: there and writable, or creatable (its parent is). */
static int
check_extract_dir(const char *path)
{
	char parent[SW_PATH_MAX];
	char *slash;

	if (access(path, F_OK) == 0)
		return check_dir("extract_dir", path, 1);
	(void)snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent)
		*slash = '\0';
	if (access(parent, W_OK) < 0) {
		printf("  extract_dir %s: FAILED: does not exist, and %s cannot hold it (%s): "
		    "Extract* commands would fail\n", path, parent, strerror(errno));
		return -1;
	}
	printf("  extract_dir %s: ok (made at the first extract)\n", path);
	return 0;
}

/* The log file run would append to: opened as run opens it (and created, as run would). */
static int
check_log_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0) {
		printf("  log_file %s: FAILED: %s\n", path, strerror(errno));
		return -1;
	}
	close(fd);
	printf("  log_file %s: ok\n", path);
	return 0;
}

/* The metrics endpoint: the address is free to bind (run refuses to start otherwise). */
static int
check_metrics(const char *listen)
{
	struct wrk_metrics_server *m = NULL;
	struct sw_err e;

	if (wrk_metrics_server_start(listen, &m, &e) < 0) {
		if (e.code == -EADDRINUSE) {
			/* Likely the endpoint of the worker this check is run beside. */
			printf("  metrics %s: in use (a running worker's endpoint? a second run "
			    "would not start beside it)\n", listen);
			return 0;
		}
		printf("  metrics %s: FAILED: %s\n", listen, e.msg);
		return -1;
	}
	wrk_metrics_server_stop(m);
	printf("  metrics %s: ok (free to listen on)\n", listen);
	return 0;
}

/*
 * The daemon's health probe, once: a store the daemon would call sick fails
 * the check.  "auto" cannot know what was mounted when a daemon started, so
 * here it only says whether the mount point is a mount.
 */
static int
check_store_health(const struct wrk_config *cfg, const struct wrk_store *st)
{
	struct sw_err e;
	int is_mount = 0;

	if (wrk_storehealth_probe(st->mount, cfg->require_mount == WRK_MOUNT_REQUIRED,
	    cfg->probe_timeout_s * 1000u, &is_mount, &e) < 0) {
		printf("  health: SICK: %s\n", e.msg);
		return -1;
	}
	printf("  health: ok (%s)\n", is_mount ? "a mount point; listed, written and fsync'ed" :
	    cfg->require_mount == WRK_MOUNT_NOT_REQUIRED ? "listed, written and fsync'ed" :
	    "NOT a mount point: a missing mount looks like this; listed, written and fsync'ed");
	return 0;
}

static int
cmd_check(const char *cfgpath, int text)
{
	struct wrk_config *cfg = NULL;
	struct wrk_amqp *c = NULL;
	struct wrk_amqp_opts o;
	struct wrk_topology t;
	struct sw_err e;
	char q[512];
	size_t i, k0 = 0;
	int bad = 0;

	if (load_config(cfgpath, 0, &cfg) < 0) {
		printf("config: FAILED\n");
		return 2;
	}
	(void)text;
	printf("config %s: ok\n", cfg->path);
	printf("  worker %s, %u job slot(s), queues:", cfg->name, cfg->jobs);
	for (i = 0; i < cfg->nqueues; i++)
		printf(" %s", cfg->queues[i]);
	printf("\n");
	if (cfg->log_file != NULL && check_log_file(cfg->log_file) < 0)
		bad = 1;
	if (cfg->metrics_listen != NULL && check_metrics(cfg->metrics_listen) < 0)
		bad = 1;

	printf("broker (%zu node(s)):\n", cfg->namqp_urls);
	memset(&o, 0, sizeof(o));
	o.password = cfg->amqp_password;
	o.cacert = cfg->amqp_cacert;
	o.heartbeat = cfg->heartbeat;
	o.name = "snapworker check";
	o.timeout_ms = 10000;
	if (cfg->amqp_password == NULL)
		printf("  warning: no [amqp] password_file: logging in with an empty password\n");
	/*
	 * A login to every node; a node that is down is reported but fails the
	 * check only when no node accepts us (workers fail over to the others).
	 * The queues are looked at through the first node that answered.
	 */
	for (i = 0; i < cfg->namqp_urls; i++) {
		struct wrk_amqp *nc = NULL;

		o.url = cfg->amqp_urls[i];
		if (wrk_amqp_connect(&o, &nc, &e) < 0) {
			printf("  %s: login: FAILED: %s\n", o.url, e.msg);
			continue;
		}
		printf("  %s: login: ok\n", o.url);
		if (c == NULL) {
			c = nc;
			k0 = i;
		} else {
			wrk_amqp_close(nc);
		}
	}
	if (c == NULL) {
		printf("  login: FAILED: no node of [amqp] url accepted the login\n");
		bad = 1;
	} else {
		o.url = cfg->amqp_urls[k0];
		wrk_daemon_topology(cfg, &t);
		/*
		 * The topology run declares, declared (idempotent): a queue that
		 * exists with other arguments (another delivery_limit) fails here
		 * as it would fail run.
		 */
		if (wrk_amqp_declare(c, &t, &e) < 0) {
			printf("  topology: FAILED: %s%s\n", e.msg, e.code == SW_EEXIST ?
			    " (an existing queue or exchange has other arguments than this "
			    "configuration gives it: make them agree, or delete it)" : "");
			bad = 1;
			wrk_amqp_close(c);
			c = NULL;
			if (wrk_amqp_connect(&o, &c, &e) < 0)
				c = NULL;
		} else {
			printf("  topology: ok (exchanges and queues as this configuration declares them)\n");
		}
		for (i = 0; i < cfg->nqueues && c != NULL; i++) {
			uint32_t msgs = 0, cons = 0;
			int rc;

			(void)wrk_amqp_queue_name(&t, cfg->queues[i], q, sizeof(q));
			rc = wrk_amqp_queue_counts(c, q, &msgs, &cons, &e);
			if (rc == -ENOENT) {
				printf("  queue %s: not declared yet (the worker declares it at start)\n", q);
				/* A 404 closes the channel: start over for the next queue. */
				wrk_amqp_close(c);
				c = NULL;
				if (wrk_amqp_connect(&o, &c, &e) < 0)
					c = NULL;
			} else if (rc < 0) {
				printf("  queue %s: FAILED: %s\n", q, e.msg);
				bad = 1;
			} else {
				printf("  queue %s: %u ready, %u consumer(s)\n", q, msgs, cons);
			}
		}
		wrk_amqp_close(c);
	}

	printf("stores:\n");
	if (cfg->nstores == 0)
		printf("  none configured (every command that names a store fails with UNKNOWN_STORE)\n");
	for (i = 0; i < cfg->nstores; i++) {
		printf("  %s\n", cfg->stores[i].url);
		if (check_dir("mount", cfg->stores[i].mount, 1) < 0)
			bad = 1;
		if (check_store_health(cfg, &cfg->stores[i]) < 0)
			bad = 1;
		if (check_extract_dir(cfg->stores[i].extract_dir) < 0)
			bad = 1;
	}
	printf("vCenter:\n");
	for (i = 0; i < cfg->nvcenters; i++) {
		const struct wrk_vcenter *vc = &cfg->vcenters[i];
		size_t k;

		if (vc->insecure)
			printf("  [vcenter %s] WARNING: insecure = true: the certificate is not "
			    "verified (test rigs only)\n", vc->name);
		/* A real login with the set's own TLS settings, to every URL it is bound to. */
		for (k = 0; k < vc->nurls; k++) {
			struct vmw_conn *conn = NULL;
			const struct vmw_about *ab;

			if (wrk_vc_connect(vc, vc->urls[k], NULL, sw_mono_ms() + 30000, NULL, &conn,
			    &e) < 0) {
				printf("  [vcenter %s] %s as %s: FAILED: %s\n", vc->name, vc->urls[k],
				    vc->user, e.msg);
				bad = 1;
				continue;
			}
			ab = vmw_conn_about(conn);
			printf("  [vcenter %s] %s as %s: logged in (%s %s, API %s)\n", vc->name,
			    vc->urls[k], vc->user, ab ? ab->name : "?", ab ? ab->version : "?",
			    ab ? ab->api_version : "?");
			wrk_vc_disconnect(conn);
		}
	}
	if (cfg->nvcenters == 0)
		printf("  none configured\n");
	printf("%s\n", bad ? "check: FAILED" : "check: ok");
	wrk_config_free(cfg);
	return bad ? 1 : 0;
}

/* --------------------------------------------------------------- health */

static size_t
health_body(char *p, size_t size, size_t n, void *ud)
{
	struct sw_buf *b = ud;

	return sw_buf_add(b, p, size * n) == 0 ? size * n : 0;
}

/*
 * The running worker's own view of its health (GET /health on the [metrics]
 * listen address; a wildcard address is asked on loopback): what a container
 * health check runs.  Quick and without side effects: no login anywhere.
 */
static int
cmd_health(const char *cfgpath)
{
	struct wrk_config *cfg = NULL;
	struct sw_buf b = SW_BUF_INIT(65536);
	char url[128], host[64];
	const char *l, *colon;
	long status = 0;
	CURL *h;
	CURLcode cr;
	int rc = 1;

	if (load_config(cfgpath, 0, &cfg) < 0)
		return 2;
	if (cfg->metrics_listen == NULL) {
		fprintf(stderr, "snapworker: health: no [metrics] listen in %s: no endpoint to ask\n",
		    cfg->path);
		wrk_config_free(cfg);
		return 2;
	}
	l = cfg->metrics_listen;
	colon = strrchr(l, ':');
	if (colon == NULL || (size_t)(colon - l) >= sizeof(host)) {
		wrk_config_free(cfg);
		return 2;
	}
	(void)snprintf(host, sizeof(host), "%.*s", (int)(colon - l), l);
	if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
		(void)snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "[::]") == 0)
		(void)snprintf(host, sizeof(host), "[::1]");
	(void)snprintf(url, sizeof(url), "http://%s:%s/health", host, colon + 1);
	if ((h = curl_easy_init()) == NULL) {
		wrk_config_free(cfg);
		return 1;
	}
	(void)curl_easy_setopt(h, CURLOPT_URL, url);
	(void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	(void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	(void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, health_body);
	(void)curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	cr = curl_easy_perform(h);
	if (cr == CURLE_OK)
		(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cr != CURLE_OK)
		fprintf(stderr, "snapworker: health: %s: %s (is the worker running?)\n", url,
		    curl_easy_strerror(cr));
	else
		printf("%s", b.ptr != NULL ? b.ptr : "");
	rc = cr == CURLE_OK && status == 200 ? 0 : 1;
	curl_easy_cleanup(h);
	sw_buf_free(&b);
	wrk_config_free(cfg);
	return rc;
}

/* ---------------------------------------------------------------- sweep */

static atomic_int sweep_cancel;

static void
sweep_signal(int sig)
{
	(void)sig;
	sweep_cancel = 1;
}

static void
sweep_print(void *ud, const char *line)
{
	(void)ud;
	printf("%s\n", line);
	fflush(stdout);
}

/*
 * The youngest leftovers a sweep run by hand may take without --force: an
 * attempt whose store's locks are host-local (NFS nolock) is only known to
 * be alive by its journal's age, and a transfer touches it every 10 s.
 */
#define SWEEP_MIN_AGE_S 600u

static int
cmd_sweep(const char *cfgpath, int text, int dry_run, const char *older, int force)
{
	struct wrk_config *cfg = NULL;
	struct wrk_sweep_opts so;
	struct wrk_sweep_stats st;
	struct sigaction sa;
	struct sw_err e;
	int rc;

	if (load_config(cfgpath, 0, &cfg) < 0)
		return 2;
	if (init_log(cfg, text) < 0) {
		wrk_config_free(cfg);
		return 2;
	}
	memset(&so, 0, sizeof(so));
	so.max_age_s = cfg->sweep_max_age_s;
	if (older != NULL && sw_parse_duration(older, 100ull * 365 * 86400, &so.max_age_s) < 0) {
		fprintf(stderr, "snapworker: sweep: --older-than: not a duration\n");
		wrk_config_free(cfg);
		return 2;
	}
	if (!dry_run && !force && so.max_age_s < SWEEP_MIN_AGE_S) {
		fprintf(stderr, "snapworker: sweep: --older-than %s is below %u s: the work of "
		    "commands that still run on stores with host-local locks could be undone; "
		    "add --force if you know none runs, or --dry-run to look\n",
		    older != NULL ? older : "(max_age)", SWEEP_MIN_AGE_S);
		wrk_config_free(cfg);
		return 2;
	}
	so.dry_run = dry_run;
	so.report = sweep_print;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sweep_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	rc = wrk_sweep_run(cfg, &so, &st, &sweep_cancel, &e);
	printf("sweep%s: %u worker VM(s) seen, %u destroyed, %u journal(s) undone, %u debris "
	    "file(s) removed, %u error(s)\n", dry_run ? " (dry run)" : "", st.vms_seen,
	    st.vms_removed, st.journals_undone, st.debris_removed, st.errors);
	if (rc < 0)
		fprintf(stderr, "snapworker: sweep: %s\n", e.msg);
	wrk_config_free(cfg);
	return rc < 0 || st.errors > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ run */

/*
 * Declares the topology once on the first node that answers: a queue that
 * exists with other arguments than this configuration's (another
 * delivery_limit) is a configuration error the daemon would otherwise meet
 * on every reconnect, forever.  A broker that cannot be reached is not an
 * error here: the daemon keeps trying.
 */
static int
topology_preflight(const struct wrk_config *cfg, struct sw_err *e)
{
	struct wrk_amqp_opts o;
	struct wrk_topology t;
	struct wrk_amqp *c = NULL;
	struct sw_err ce;
	size_t i;
	int rc = 0;

	memset(&o, 0, sizeof(o));
	o.password = cfg->amqp_password;
	o.cacert = cfg->amqp_cacert;
	o.heartbeat = cfg->heartbeat;
	o.name = "snapworker";
	o.timeout_ms = 10000;
	for (i = 0; i < cfg->namqp_urls && c == NULL; i++) {
		o.url = cfg->amqp_urls[i];
		if (wrk_amqp_connect(&o, &c, &ce) < 0)
			c = NULL;
	}
	if (c == NULL)
		return 0;
	wrk_daemon_topology(cfg, &t);
	if (wrk_amqp_declare(c, &t, &ce) < 0 && ce.code == SW_EEXIST)
		rc = sw_errf(e, SW_EEXIST, "%s: an existing queue or exchange has other arguments "
		    "than this configuration gives it (e.g. [amqp] delivery_limit): make them "
		    "agree, or delete it; not starting", ce.msg);
	wrk_amqp_close(c);
	return rc;
}

static int
cmd_run(const char *cfgpath, int text)
{
	struct wrk_config *cfg = NULL;
	struct wrk_metrics_server *metrics = NULL;
	struct sw_err e;
	int rc;

	if (load_config(cfgpath, 0, &cfg) < 0)
		return 2;
	if (init_log(cfg, text) < 0) {
		wrk_config_free(cfg);
		return 2;
	}
	if (cfg->amqp_password == NULL)
		log_warnx("no [amqp] password_file: logging in with an empty password");
	wrk_metrics_reset();
	if (cfg->metrics_listen != NULL) {
		/* A configured endpoint that cannot bind is a configuration error, not a silent gap. */
		if (wrk_metrics_server_start(cfg->metrics_listen, &metrics, &e) < 0) {
			log_errx("%s", e.msg);
			wrk_config_free(cfg);
			return 1;
		}
		log_info("metrics at http://%s/metrics (port %u)", cfg->metrics_listen,
		    wrk_metrics_server_port(metrics));
	}
	if (topology_preflight(cfg, &e) < 0) {
		log_errx("%s", e.msg);
		wrk_metrics_server_stop(metrics);
		wrk_config_free(cfg);
		return 2;
	}
	rc = wrk_daemon_run(cfg, wrk_cmd_run, wrk_cmd_result_clear, &e);
	if (rc < 0)
		log_errx("%s", e.msg);
	wrk_vc_pool_drain();
	wrk_metrics_server_stop(metrics);
	wrk_config_free(cfg);
	return rc < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "older-than", required_argument, NULL, 'O' },
		{ "force", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *sub, *older = NULL;
	int ch, text = 0, dry_run = 0, force = 0;

	/* Options may come before or after the subcommand: "run -c F" and "-c F run". */
	while ((ch = getopt_long(argc, argv, "+c:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'v': text = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("snapworker %s (protocol %d)\n", SW_VERSION, SW_PROTOCOL_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	sub = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'v': text = 1; break;
		case 'D': dry_run = 1; break;
		case 'O': older = optarg; break;
		case 'F': force = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((dry_run || older != NULL || force) && strcmp(sub, "sweep") != 0) {
		usage(stderr);
		return 2;
	}
	/*
	 * libcurl's and libxml2's global initialisation is not for concurrent
	 * callers: do it once here, before any job or sweeper thread starts.
	 */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "snapworker: libcurl initialisation failed\n");
		return 1;
	}
	xmlInitParser();
	if (strcmp(sub, "sweep") == 0 && optind == argc)
		return cmd_sweep(cfgpath, text, dry_run, older, force);
	if (strcmp(sub, "run") == 0 && optind == argc)
		return cmd_run(cfgpath, text);
	if (strcmp(sub, "check") == 0 && optind == argc)
		return cmd_check(cfgpath, text);
	if (strcmp(sub, "health") == 0 && optind == argc)
		return cmd_health(cfgpath);
	if (strcmp(sub, "run-once") == 0 && optind + 1 == argc)
		return cmd_run_once(cfgpath, argv[optind], text);
	fprintf(stderr, "snapworker: unknown command or arguments: '%s'\n", sub);
	usage(stderr);
	return 2;
}
