/*
 * What each section of the configuration means (PROTOCOL.md, "Worker
 * configuration"): one interpreter per section, fed one entry at a time by
 * wrk_config_load() after the file and the environment have been read, and
 * the defaults they override.
 */
#include "worker/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/secret.h"
#include "common/num.h"
#include "worker/amqp.h"
#include "worker/metrics.h"

int
wrk__cfg_set_str(char **field, const char *value, struct sw_err *e)
{
	char *s = strdup(value);

	if (s == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	free(*field);
	*field = s;
	return 0;
}

void
wrk__cfg_list_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Splits a space- or comma-separated list into at most CFG_LIST_MAX words. */
static int
split_list(const char *value, char ***ret, size_t *ret_n, const char *where, struct sw_err *e)
{
	char **v = NULL;
	size_t n = 0;
	const char *p = value;

	while (*p != '\0') {
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,");
		if (n >= CFG_LIST_MAX) {
			wrk__cfg_list_free(v, n);
			return sw_errf(e, SW_ETOOBIG, "%s: more than %d list items", where,
			    CFG_LIST_MAX);
		}
		if (n == 0)
			v = calloc(CFG_LIST_MAX, sizeof(*v));
		if (v == NULL || (v[n] = strndup(p, len)) == NULL) {
			wrk__cfg_list_free(v, n);
			return sw_errf(e, -ENOMEM, "out of memory");
		}
		n++;
		p += len;
	}
	if (n == 0) {
		free(v);
		return sw_errf(e, SW_EFORMAT, "%s: empty list", where);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int
parse_bool(const char *v, int *ret)
{
	if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0 ||
	    strcasecmp(v, "on") == 0) {
		*ret = 1;
		return 0;
	}
	if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0 ||
	    strcasecmp(v, "off") == 0) {
		*ret = 0;
		return 0;
	}
	return -EINVAL;
}

static int
parse_uint(const char *v, unsigned min, unsigned max, unsigned *ret)
{
	uint64_t x;
	int rc = sw_parse_u64(v, min, max, &x);

	if (rc == 0)
		*ret = (unsigned)x;
	return rc;
}

/* Broker object names: printable, no spaces, at most 127 bytes (AMQP allows 255). */
static int
valid_object_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 127)
		return 0;
	for (i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
interpret_worker(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	if (strcmp(x->key, "name") == 0) {
		if (strlen(x->value) == 0 || strlen(x->value) > CFG_NAME_MAX)
			return sw_errf(e, SW_EFORMAT, "%s: name must be 1-%d bytes", where, CFG_NAME_MAX);
		return wrk__cfg_set_str(&cfg->name, x->value, e);
	}
	if (strcmp(x->key, "jobs") == 0) {
		if (parse_uint(x->value, 1, CFG_JOBS_MAX, &cfg->jobs) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: jobs must be 1-%d", where, CFG_JOBS_MAX);
		return 0;
	}
	if (strcmp(x->key, "queues") == 0) {
		char **v;
		size_t n, i;
		int rc = split_list(x->value, &v, &n, where, e);

		if (rc < 0)
			return rc;
		for (i = 0; i < n; i++) {
			if (!wrk__cfg_valid_name(v[i])) {
				rc = sw_errf(e, SW_EFORMAT, "%s: bad zone key '%s' (letters, digits, _ - .)",
				    where, v[i]);
				wrk__cfg_list_free(v, n);
				return rc;
			}
		}
		wrk__cfg_list_free(cfg->queues, cfg->nqueues);
		cfg->queues = v;
		cfg->nqueues = n;
		return 0;
	}
	if (strcmp(x->key, "grace") == 0) {
		uint64_t s;
		if (sw_parse_duration(x->value, 7 * 86400, &s) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: grace must be a duration (e.g. 300s, 5m)", where);
		cfg->grace_s = (unsigned)s;
		return 0;
	}
	if (strcmp(x->key, "log_format") == 0) {
		if (strcmp(x->value, "auto") != 0 && strcmp(x->value, "json") != 0 &&
		    strcmp(x->value, "text") != 0)
			return sw_errf(e, SW_EFORMAT, "%s: log_format must be auto, json or text", where);
		return wrk__cfg_set_str(&cfg->log_format, x->value, e);
	}
	if (strcmp(x->key, "log_level") == 0) {
		if (strcmp(x->value, "error") != 0 && strcmp(x->value, "warn") != 0 &&
		    strcmp(x->value, "info") != 0 && strcmp(x->value, "debug") != 0)
			return sw_errf(e, SW_EFORMAT, "%s: log_level must be error, warn, info or debug",
			    where);
		return wrk__cfg_set_str(&cfg->log_level, x->value, e);
	}
	if (strcmp(x->key, "log_file") == 0) {
		if (x->value[0] != '/')
			return sw_errf(e, SW_EFORMAT, "%s: log_file must be an absolute path", where);
		return wrk__cfg_set_str(&cfg->log_file, x->value, e);
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [worker]", where, x->key);
}

static int
interpret_amqp(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	char **names[] = { &cfg->amqp_exchange, &cfg->amqp_events, &cfg->amqp_dlx,
	    &cfg->amqp_dead_queue, &cfg->amqp_retry_exchange, &cfg->amqp_control,
	    &cfg->amqp_cancel_prefix, &cfg->amqp_limit_prefix };
	static const char *const keys[] = { "exchange", "events_exchange", "dead_letter_exchange",
	    "dead_letter_queue", "retry_exchange", "control_exchange", "cancel_prefix",
	    "limit_prefix" };
	size_t i;

	if (strcmp(x->key, "url") == 0) {
		/* The nodes of one cluster, in the list syntax of [vcenter NAME] url. */
		char **v;
		size_t n;

		if (wrk_amqp_url_list_parse(x->value, &v, &n, e) < 0)
			return sw_errctx(e, "%s: url", where);
		wrk_amqp_url_list_free(cfg->amqp_urls, cfg->namqp_urls);
		cfg->amqp_urls = v;
		cfg->namqp_urls = n;
		return 0;
	}
	if (strcmp(x->key, "password_file") == 0) {
		char *pw = NULL;
		int rc = sw_secret_read(x->value, &pw, e);
		if (rc < 0)
			return sw_errctx(e, "%s", where);
		if (cfg->amqp_password != NULL) {
			explicit_bzero(cfg->amqp_password, strlen(cfg->amqp_password));
			free(cfg->amqp_password);
		}
		cfg->amqp_password = pw;
		return 0;
	}
	if (strcmp(x->key, "cacert") == 0)
		return wrk__cfg_set_str(&cfg->amqp_cacert, x->value, e);
	if (strcmp(x->key, "heartbeat") == 0) {
		if (parse_uint(x->value, 0, 600, &cfg->heartbeat) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: heartbeat must be 0-600 seconds", where);
		return 0;
	}
	if (strcmp(x->key, "cancel_ttl") == 0) {
		uint64_t v;
		if (sw_parse_duration(x->value, 30ull * 86400, &v) < 0 || v < 60)
			return sw_errf(e, SW_EFORMAT, "%s: cancel_ttl must be a duration of 1m to 30d",
			    where);
		cfg->cancel_ttl_s = (unsigned)v;
		return 0;
	}
	if (strcmp(x->key, "delivery_limit") == 0) {
		if (parse_uint(x->value, 1, 1000, &cfg->delivery_limit) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: delivery_limit must be 1-1000", where);
		return 0;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(x->key, keys[i]) == 0) {
			if (!valid_object_name(x->value))
				return sw_errf(e, SW_EFORMAT, "%s: bad broker object name", where);
			return wrk__cfg_set_str(names[i], x->value, e);
		}
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [amqp]", where, x->key);
}

static int
interpret_store(struct wrk_config *cfg, const struct wrk__cfg_entry *x, char **extract_dir,
    const char *where, struct sw_err *e)
{
	struct wrk_store *ns;
	size_t i;

	if (strcmp(x->key, "lock_scope") == 0) {
		if (strcmp(x->value, "auto") == 0)
			cfg->lock_scope = WRK_LOCKS_AUTO;
		else if (strcmp(x->value, "shared") == 0)
			cfg->lock_scope = WRK_LOCKS_SHARED;
		else if (strcmp(x->value, "host") == 0)
			cfg->lock_scope = WRK_LOCKS_HOST;
		else
			return sw_errf(e, SW_EFORMAT, "%s: lock_scope must be auto, shared or host",
			    where);
		return 0;
	}
	if (strcmp(x->key, "require_mount") == 0) {
		if (strcmp(x->value, "auto") == 0)
			cfg->require_mount = WRK_MOUNT_AUTO;
		else if (strcmp(x->value, "true") == 0 || strcmp(x->value, "yes") == 0)
			cfg->require_mount = WRK_MOUNT_REQUIRED;
		else if (strcmp(x->value, "false") == 0 || strcmp(x->value, "no") == 0)
			cfg->require_mount = WRK_MOUNT_NOT_REQUIRED;
		else
			return sw_errf(e, SW_EFORMAT, "%s: require_mount must be auto, true or false",
			    where);
		return 0;
	}
	if (strcmp(x->key, "probe_interval") == 0) {
		if (parse_uint(x->value, 1, 3600, &cfg->probe_interval_s) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: probe_interval must be 1-3600 seconds", where);
		return 0;
	}
	if (strcmp(x->key, "probe_timeout") == 0) {
		if (parse_uint(x->value, 1, 600, &cfg->probe_timeout_s) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: probe_timeout must be 1-600 seconds", where);
		return 0;
	}
	if (strcmp(x->key, "extract_dir") == 0) {
		if (x->value[0] != '/')
			return sw_errf(e, SW_EFORMAT, "%s: extract_dir must be an absolute path", where);
		return wrk__cfg_set_str(extract_dir, x->value, e);
	}
	if (strstr(x->key, "://") == NULL)
		return sw_errf(e, SW_EFORMAT,
		    "%s: unknown key '%s' in [store] (expected a store URL, extract_dir, "
		    "lock_scope, require_mount, probe_interval or probe_timeout)", where,
		    x->key);
	if (x->value[0] != '/')
		return sw_errf(e, SW_EFORMAT, "%s: mount point of %s must be an absolute path", where,
		    x->key);
	for (i = 0; i < cfg->nstores; i++)
		if (strcmp(cfg->stores[i].url, x->key) == 0)
			return sw_errf(e, SW_EFORMAT, "%s: store %s configured twice", where, x->key);
	if (cfg->nstores >= CFG_LIST_MAX)
		return sw_errf(e, SW_ETOOBIG, "%s: more than %d stores", where, CFG_LIST_MAX);
	ns = realloc(cfg->stores, (cfg->nstores + 1) * sizeof(*ns));
	if (ns == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->stores = ns;
	memset(&ns[cfg->nstores], 0, sizeof(ns[0]));
	ns[cfg->nstores].url = strdup(x->key);
	ns[cfg->nstores].mount = strdup(x->value);
	cfg->nstores++;
	if (ns[cfg->nstores - 1].url == NULL || ns[cfg->nstores - 1].mount == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	return 0;
}

static struct wrk_vcenter *
vcenter_get(struct wrk_config *cfg, const char *name, struct sw_err *e)
{
	struct wrk_vcenter *nv;
	size_t i;

	for (i = 0; i < cfg->nvcenters; i++)
		if (strcmp(cfg->vcenters[i].name, name) == 0)
			return &cfg->vcenters[i];
	if (cfg->nvcenters >= CFG_LIST_MAX) {
		sw_errf(e, SW_ETOOBIG, "more than %d vCenter credential sets", CFG_LIST_MAX);
		return NULL;
	}
	nv = realloc(cfg->vcenters, (cfg->nvcenters + 1) * sizeof(*nv));
	if (nv == NULL) {
		sw_errf(e, -ENOMEM, "out of memory");
		return NULL;
	}
	cfg->vcenters = nv;
	memset(&nv[cfg->nvcenters], 0, sizeof(nv[0]));
	nv[cfg->nvcenters].name = strdup(name);
	if (nv[cfg->nvcenters].name == NULL) {
		sw_errf(e, -ENOMEM, "out of memory");
		return NULL;
	}
	return &nv[cfg->nvcenters++];
}

/* A SHA-256 thumbprint: 32 hex byte pairs, colons optional. */
static int
valid_thumbprint(const char *s)
{
	size_t digits = 0;

	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s))
			return 0;
		digits++;
	}
	return digits == 64;
}

/* Whether the authority of scheme://authority/... holds a '@' (user[:password]@host). */
static int
url_has_userinfo(const char *url)
{
	const char *a = strstr(url, "://");

	if (a == NULL)
		return 0;
	a += 3;
	return memchr(a, '@', strcspn(a, "/?#")) != NULL;
}

static int
interpret_vcenter(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	struct wrk_vcenter *vc = vcenter_get(cfg, x->section + 8, e);
	size_t i;
	int rc;

	if (vc == NULL)
		return sw_errctx(e, "%s", where);
	if (strcmp(x->key, "url") == 0) {
		char **v;
		size_t n;

		rc = split_list(x->value, &v, &n, where, e);
		if (rc < 0)
			return rc;
		for (i = 0; i < n; i++) {
			/* The password goes to this URL: never in clear, not even on a test rig. */
			if (strncasecmp(v[i], "https://", 8) != 0 || v[i][8] == '\0') {
				rc = sw_errf(e, SW_EFORMAT, "%s: vCenter url must be https://...", where);
				wrk__cfg_list_free(v, n);
				return rc;
			}
			if (url_has_userinfo(v[i])) {
				/* Not echoed: it may hold a password. */
				rc = sw_errf(e, SW_EFORMAT, "%s: a vCenter url must not carry a user name "
				    "or password (use user and password_file)", where);
				wrk__cfg_list_free(v, n);
				return rc;
			}
		}
		wrk__cfg_list_free(vc->urls, vc->nurls);
		vc->urls = v;
		vc->nurls = n;
		return 0;
	}
	if (strcmp(x->key, "user") == 0)
		return wrk__cfg_set_str(&vc->user, x->value, e);
	if (strcmp(x->key, "password_file") == 0) {
		char *pw = NULL;

		if (cfg->load_flags & WRK_CFG_BROKER_ONLY)
			return 0;
		rc = sw_secret_read(x->value, &pw, e);
		if (rc < 0)
			return sw_errctx(e, "%s", where);
		if (vc->password != NULL) {
			explicit_bzero(vc->password, strlen(vc->password));
			free(vc->password);
		}
		vc->password = pw;
		return 0;
	}
	if (strcmp(x->key, "thumbprint") == 0) {
		if (!valid_thumbprint(x->value))
			return sw_errf(e, SW_EFORMAT, "%s: thumbprint must be a SHA-256 in hex", where);
		return wrk__cfg_set_str(&vc->thumbprint, x->value, e);
	}
	if (strcmp(x->key, "cacert") == 0)
		return wrk__cfg_set_str(&vc->cacert, x->value, e);
	if (strcmp(x->key, "insecure") == 0) {
		if (parse_bool(x->value, &vc->insecure) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: insecure must be true or false", where);
		return 0;
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [%s]", where, x->key, x->section);
}

static int
interpret_download(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	if (strcmp(x->key, "allow") == 0) {
		char **v;
		size_t n, i;
		struct wrk_net *nets;
		int rc = split_list(x->value, &v, &n, where, e);

		if (rc < 0)
			return rc;
		nets = calloc(n, sizeof(*nets));
		if (nets == NULL) {
			wrk__cfg_list_free(v, n);
			return sw_errf(e, -ENOMEM, "out of memory");
		}
		for (i = 0; i < n; i++) {
			if (wrk_net_parse(v[i], &nets[i], NULL) < 0) {
				rc = sw_errf(e, SW_EFORMAT, "%s: bad network '%s' (e.g. 10.0.0.0/8)", where,
				    v[i]);
				free(nets);
				wrk__cfg_list_free(v, n);
				return rc;
			}
		}
		wrk__cfg_list_free(v, n);
		free(cfg->allow);
		cfg->allow = nets;
		cfg->nallow = n;
		return 0;
	}
	if (strcmp(x->key, "max_size") == 0) {
		if (sw_parse_size(x->value, UINT64_MAX, &cfg->download_max_size) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: max_size must be a size (e.g. 1T)", where);
		return 0;
	}
	if (strcmp(x->key, "max_redirects") == 0) {
		if (parse_uint(x->value, 0, 20, &cfg->download_max_redirects) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: max_redirects must be 0-20", where);
		return 0;
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [download]", where, x->key);
}

static int
interpret_metrics(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	if (strcmp(x->key, "listen") == 0) {
		struct sockaddr_storage ss;
		socklen_t sl;

		/* What run would refuse at start is refused here, for check too. */
		if (wrk_metrics_parse_listen(x->value, &ss, &sl, e) < 0) {
			char why[SW_ERR_MSG_MAX];

			(void)snprintf(why, sizeof(why), "%s", e->msg);
			return sw_errf(e, SW_EFORMAT, "%s: %s", where, why);
		}
		return wrk__cfg_set_str(&cfg->metrics_listen, x->value, e);
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [metrics]", where, x->key);
}

static int
interpret_sweep(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	uint64_t v;

	if (strcmp(x->key, "max_age") == 0) {
		/* 0 (everything not running in this process) is for test rigs. */
		if (sw_parse_duration(x->value, 100ull * 365 * 86400, &v) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: max_age must be a duration "
			    "(e.g. 6h10m; longer than the longest command deadline)", where);
		cfg->sweep_max_age_s = v;
		return 0;
	}
	if (strcmp(x->key, "interval") == 0) {
		if (sw_parse_duration(x->value, 30ull * 86400, &v) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: interval must be a duration up to 30d "
			    "(0 disables the daemon's sweeper)", where);
		cfg->sweep_interval_s = (unsigned)v;
		return 0;
	}
	if (strcmp(x->key, "journal_stale") == 0) {
		if (sw_parse_duration(x->value, 86400, &v) < 0 || v == 0)
			return sw_errf(e, SW_EFORMAT, "%s: journal_stale must be a duration from 1s to 1d",
			    where);
		cfg->journal_stale_s = (unsigned)v;
		return 0;
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [sweep]", where, x->key);
}

/*
 * [retry] delays: durations from 1s to 1d, separated by blanks or commas, or
 * "none" (a retryable failure is then final at once).
 */
static int
interpret_retry(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	char **v = NULL;
	size_t n = 0, i;
	uint64_t d;
	int rc;

	if (strcmp(x->key, "delays") != 0)
		return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [retry]", where, x->key);
	if (strcmp(x->value, "none") == 0) {
		cfg->nretry_delays = 0;
		return 0;
	}
	if ((rc = split_list(x->value, &v, &n, where, e)) < 0)
		return rc;
	rc = 0;
	if (n > WRK_RETRY_MAX)
		rc = sw_errf(e, SW_ETOOBIG, "%s: more than %d delays", where, WRK_RETRY_MAX);
	for (i = 0; rc == 0 && i < n; i++) {
		if (sw_parse_duration(v[i], WRK_RETRY_DELAY_MAX, &d) < 0 || d == 0)
			rc = sw_errf(e, SW_EFORMAT, "%s: delay '%s' must be a duration from 1s to 1d "
			    "(e.g. delays = 10s 1m 5m 10m, or none)", where, v[i]);
		else
			cfg->retry_delays_s[i] = (unsigned)d;
	}
	if (rc == 0)
		cfg->nretry_delays = n;
	wrk__cfg_list_free(v, n);
	return rc;
}

/*
 * [limits]: "vcenter", "host", "datastore" = N (the default of every
 * resource of that kind), "KIND.NAME" = N (one resource: a vCenter host
 * name, an ESXi host's managed object id, a datastore name), "wait" = a
 * duration.  N from 0 (unlimited) to WRK_LIMIT_MAX.
 */
static int
interpret_limits(struct wrk_config *cfg, const struct wrk__cfg_entry *x, const char *where,
    struct sw_err *e)
{
	struct wrk_limit_override *o;
	const char *dot, *name;
	unsigned n = 0;
	size_t i, klen;
	int kind;

	if (strcmp(x->key, "wait") == 0) {
		uint64_t v;

		if (sw_parse_duration(x->value, WRK_LIMIT_WAIT_MAX, &v) < 0 || v == 0)
			return sw_errf(e, SW_EFORMAT, "%s: wait must be a duration from 1s to 1h",
			    where);
		cfg->limit_wait_s = (unsigned)v;
		return 0;
	}
	dot = strchr(x->key, '.');
	klen = dot != NULL ? (size_t)(dot - x->key) : strlen(x->key);
	for (kind = 0; kind < WRK_LIMIT_KINDS; kind++)
		if (strlen(wrk_limit_kind_name(kind)) == klen &&
		    strncmp(x->key, wrk_limit_kind_name(kind), klen) == 0)
			break;
	if (kind == WRK_LIMIT_KINDS)
		return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [limits] (vcenter, host, "
		    "datastore, KIND.NAME or wait)", where, x->key);
	if (parse_uint(x->value, 0, WRK_LIMIT_MAX, &n) < 0)
		return sw_errf(e, SW_EFORMAT, "%s: %s must be 0 (unlimited) to %d", where, x->key,
		    WRK_LIMIT_MAX);
	if (dot == NULL) {
		cfg->limits[kind] = n;
		return 0;
	}
	name = dot + 1;
	if (*name == '\0' || strlen(name) > WRK_LIMIT_NAME_MAX)
		return sw_errf(e, SW_EFORMAT, "%s: %s: the name after '%s.' must be 1 to %d bytes",
		    where, x->key, wrk_limit_kind_name(kind), WRK_LIMIT_NAME_MAX);
	for (i = 0; name[i] != '\0'; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return sw_errf(e, SW_EFORMAT, "%s: %s: control character in the name", where,
			    wrk_limit_kind_name(kind));
	for (i = 0; i < cfg->nlimit_overrides; i++)
		if (cfg->limit_overrides[i].kind == kind &&
		    strcmp(cfg->limit_overrides[i].name, name) == 0) {
			cfg->limit_overrides[i].n = n;
			return 0;
		}
	if (cfg->nlimit_overrides >= WRK_LIMIT_OVERRIDES)
		return sw_errf(e, SW_ETOOBIG, "%s: more than %d named limits", where,
		    WRK_LIMIT_OVERRIDES);
	o = realloc(cfg->limit_overrides, (cfg->nlimit_overrides + 1) * sizeof(*o));
	if (o == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->limit_overrides = o;
	o = &o[cfg->nlimit_overrides];
	o->kind = kind;
	o->n = n;
	if ((o->name = strdup(name)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->nlimit_overrides++;
	return 0;
}

int
wrk__cfg_defaults(struct wrk_config *cfg, struct sw_err *e)
{
	char host[256], name[CFG_NAME_MAX + 1];

	cfg->jobs = 1;
	cfg->grace_s = 300;
	cfg->heartbeat = 30;
	cfg->delivery_limit = 5;
	cfg->cancel_ttl_s = 3u * 86400u;
	cfg->download_max_size = (uint64_t)1 << 40;
	cfg->download_max_redirects = 5;
	cfg->sweep_max_age_s = 6u * 3600u + 600u;
	cfg->sweep_interval_s = 3600u;
	cfg->journal_stale_s = 300u;
	cfg->probe_interval_s = 2u;
	cfg->probe_timeout_s = 5u;
	cfg->retry_delays_s[0] = 10;
	cfg->retry_delays_s[1] = 60;
	cfg->retry_delays_s[2] = 300;
	cfg->retry_delays_s[3] = 600;
	cfg->nretry_delays = 4;
	cfg->limit_wait_s = 10;
	if (gethostname(host, sizeof(host)) < 0)
		(void)snprintf(host, sizeof(host), "snapworker");
	host[sizeof(host) - 1] = '\0';
	(void)snprintf(name, sizeof(name), "%s:%ld", host, (long)getpid());
	if (wrk__cfg_set_str(&cfg->name, name, e) < 0 ||
	    wrk__cfg_set_str(&cfg->log_format, "auto", e) < 0 ||
	    wrk__cfg_set_str(&cfg->log_level, "info", e) < 0 ||
	    wrk_amqp_url_list_parse("amqp://snapworker@127.0.0.1:5672/%2f", &cfg->amqp_urls,
	    &cfg->namqp_urls, e) < 0 ||
	    wrk__cfg_set_str(&cfg->amqp_exchange, "snapworker.commands", e) < 0 ||
	    wrk__cfg_set_str(&cfg->amqp_events, "snapworker.events", e) < 0 ||
	    wrk__cfg_set_str(&cfg->amqp_dlx, "snapworker.dlx", e) < 0 ||
	    wrk__cfg_set_str(&cfg->amqp_dead_queue, "snapworker.dead", e) < 0)
		return -ENOMEM;
	cfg->queues = calloc(1, sizeof(char *));
	if (cfg->queues == NULL || (cfg->queues[0] = strdup("default")) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->nqueues = 1;
	return 0;
}

int
wrk__cfg_interpret(struct wrk_config *cfg, const struct wrk__cfg_entry *x, char **extract_dir,
    const char *where, struct sw_err *e)
{
	if (strcmp(x->section, "worker") == 0)
		return interpret_worker(cfg, x, where, e);
	if (strcmp(x->section, "amqp") == 0)
		return interpret_amqp(cfg, x, where, e);
	if (strcmp(x->section, "store") == 0)
		return interpret_store(cfg, x, extract_dir, where, e);
	if (strncmp(x->section, "vcenter ", 8) == 0)
		return interpret_vcenter(cfg, x, where, e);
	if (strcmp(x->section, "download") == 0)
		return interpret_download(cfg, x, where, e);
	if (strcmp(x->section, "metrics") == 0)
		return interpret_metrics(cfg, x, where, e);
	if (strcmp(x->section, "sweep") == 0)
		return interpret_sweep(cfg, x, where, e);
	if (strcmp(x->section, "retry") == 0)
		return interpret_retry(cfg, x, where, e);
	if (strcmp(x->section, "limits") == 0)
		return interpret_limits(cfg, x, where, e);
	return sw_errf(e, SW_EFORMAT, "%s: unknown section [%s]", where, x->section);
}
