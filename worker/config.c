/*
 * The worker's configuration (config.h): loading puts the pieces of
 * config_int.h together, in an order that matters.  The file is read into a
 * flat entry list, duplicates are refused, environment overrides replace or
 * add entries, and only then is each entry interpreted, so an override is
 * checked exactly like the file and every error names where its value came
 * from.
 */
#include "worker/config_int.h"

#include "worker/amqp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Where an entry came from, for error messages. */
static void
entry_where(const struct wrk_config *cfg, const struct wrk__cfg_entry *x, char *buf,
    size_t bufsz)
{
	if (x->line == 0)
		(void)snprintf(buf, bufsz, "environment %s", x->origin ? x->origin : "?");
	else
		(void)snprintf(buf, bufsz, "%s:%u", cfg->path, x->line);
}

static int
check_dups(struct wrk_config *cfg, const struct wrk__cfg_entries *es, struct sw_err *e)
{
	size_t i, j;

	for (i = 0; i < es->n; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(es->v[i].section, es->v[j].section) == 0 &&
			    strcmp(es->v[i].key, es->v[j].key) == 0)
				return sw_errf(e, SW_EFORMAT, "%s:%u: key '%s' in [%s] set twice (first at line %u)",
				    cfg->path, es->v[i].line, es->v[i].key, es->v[i].section,
				    es->v[j].line);
		}
	}
	return 0;
}

/*
 * The retry exchange belongs with the command exchange it feeds: "X.retry"
 * for a command exchange "X.commands" (snapworker.retry by default), else
 * "<exchange>.retry", so two fleets on one broker never share delay queues.
 */
static int
default_beside(struct wrk_config *cfg, const char *suffix, char **ret, struct sw_err *e)
{
	const char *x = cfg->amqp_exchange;
	size_t n = strlen(x), sl = strlen(".commands");
	char buf[512];

	if (n > sl && strcmp(x + n - sl, ".commands") == 0)
		(void)snprintf(buf, sizeof(buf), "%.*s.%s", (int)(n - sl), x, suffix);
	else if (snprintf(buf, sizeof(buf), "%s.%s", x, suffix) >= (int)sizeof(buf))
		return sw_errf(e, SW_ETOOBIG, "%s: exchange name too long", cfg->path);
	return wrk__cfg_set_str(ret, buf, e);
}

static int
default_retry_exchange(struct wrk_config *cfg, struct sw_err *e)
{
	return default_beside(cfg, "retry", &cfg->amqp_retry_exchange, e);
}

int
wrk_config_load(const char *path, char *const *envp, struct wrk_config **ret,
    struct sw_err *e)
{
	return wrk_config_load_flags(path, envp, 0, ret, e);
}

int
wrk_config_load_flags(const char *path, char *const *envp, unsigned flags,
    struct wrk_config **ret, struct sw_err *e)
{
	struct wrk_config *cfg;
	struct wrk__cfg_entries es = { NULL, 0, 0 };
	char *extract_dir = NULL;
	char where[512];
	size_t i;
	int rc;

	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->load_flags = flags;
	cfg->path = strdup(path != NULL ? path : WRK_CONFIG_DEFAULT);
	if (cfg->path == NULL) {
		rc = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = wrk__cfg_defaults(cfg, e);
	if (rc < 0)
		goto fail;
	rc = wrk__cfg_read_file(cfg->path, &es, e);
	if (rc < 0)
		goto fail;
	rc = check_dups(cfg, &es, e);
	if (rc < 0)
		goto fail;
	rc = wrk__cfg_apply_env(&es, envp != NULL ? envp : environ, e);
	if (rc < 0)
		goto fail;
	for (i = 0; i < es.n; i++) {
		const struct wrk__cfg_entry *x = &es.v[i];

		entry_where(cfg, x, where, sizeof(where));
		rc = wrk__cfg_interpret(cfg, x, &extract_dir, where, e);
		if (rc < 0)
			goto fail;
	}
	for (i = 0; i < cfg->nstores; i++) {
		struct wrk_store *st = &cfg->stores[i];
		char buf[4096];

		if (extract_dir != NULL) {
			rc = wrk__cfg_set_str(&st->extract_dir, extract_dir, e);
		} else if (snprintf(buf, sizeof(buf), "%s/extract", st->mount) >= (int)sizeof(buf)) {
			rc = sw_errf(e, SW_ETOOBIG, "%s: mount point of %s too long", cfg->path, st->url);
		} else {
			rc = wrk__cfg_set_str(&st->extract_dir, buf, e);
		}
		if (rc < 0)
			goto fail;
	}
	if (cfg->amqp_retry_exchange == NULL && (rc = default_retry_exchange(cfg, e)) < 0)
		goto fail;
	/* So too the control exchange and the cancel records (docs/protocol.md, "Cancel"). */
	if (cfg->amqp_control == NULL &&
	    (rc = default_beside(cfg, "control", &cfg->amqp_control, e)) < 0)
		goto fail;
	if (cfg->amqp_cancel_prefix == NULL &&
	    (rc = default_beside(cfg, "cancel", &cfg->amqp_cancel_prefix, e)) < 0)
		goto fail;
	/* And the concurrency tokens (docs/architecture.md, "Concurrency limits"). */
	if (cfg->amqp_limit_prefix == NULL &&
	    (rc = default_beside(cfg, "limit", &cfg->amqp_limit_prefix, e)) < 0)
		goto fail;
	for (i = 0; i < cfg->nvcenters; i++) {
		const struct wrk_vcenter *vc = &cfg->vcenters[i];
		const char *missing = vc->nurls == 0 ? "url" : vc->user == NULL ? "user" :
		    vc->password == NULL && !(cfg->load_flags & WRK_CFG_BROKER_ONLY) ?
		    "password_file" : NULL;

		if (missing != NULL) {
			rc = sw_errf(e, SW_EFORMAT, "%s: [vcenter %s] needs %s", cfg->path, vc->name,
			    missing);
			goto fail;
		}
	}
	cfg->ndelay_queues = wrk_config_delay_queues(cfg, cfg->delay_queues_s,
	    sizeof(cfg->delay_queues_s) / sizeof(cfg->delay_queues_s[0]));
	free(extract_dir);
	wrk__cfg_entries_free(&es);
	*ret = cfg;
	return 0;
fail:
	free(extract_dir);
	wrk__cfg_entries_free(&es);
	wrk_config_free(cfg);
	return rc;
}

static void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void
wrk_config_free(struct wrk_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->name);
	wrk__cfg_list_free(cfg->queues, cfg->nqueues);
	free(cfg->log_format);
	free(cfg->log_level);
	free(cfg->log_file);
	wrk_amqp_url_list_free(cfg->amqp_urls, cfg->namqp_urls);
	secret_free(cfg->amqp_password);
	free(cfg->amqp_cacert);
	free(cfg->amqp_exchange);
	free(cfg->amqp_events);
	free(cfg->amqp_dlx);
	free(cfg->amqp_dead_queue);
	free(cfg->amqp_retry_exchange);
	free(cfg->amqp_control);
	free(cfg->amqp_cancel_prefix);
	free(cfg->amqp_limit_prefix);
	for (i = 0; i < cfg->nlimit_overrides; i++)
		free(cfg->limit_overrides[i].name);
	free(cfg->limit_overrides);
	for (i = 0; i < cfg->nstores; i++) {
		free(cfg->stores[i].url);
		free(cfg->stores[i].mount);
		free(cfg->stores[i].extract_dir);
	}
	free(cfg->stores);
	for (i = 0; i < cfg->nvcenters; i++) {
		struct wrk_vcenter *vc = &cfg->vcenters[i];
		free(vc->name);
		wrk__cfg_list_free(vc->urls, vc->nurls);
		free(vc->user);
		secret_free(vc->password);
		free(vc->thumbprint);
		free(vc->cacert);
	}
	free(cfg->vcenters);
	free(cfg->allow);
	free(cfg->metrics_listen);
	free(cfg);
}

/* URLs compare equal with or without one trailing '/'. */
static int
url_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '/')
		la--;
	if (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

const struct wrk_store *
wrk_config_store(const struct wrk_config *cfg, const char *url)
{
	size_t i;

	if (cfg == NULL || url == NULL)
		return NULL;
	for (i = 0; i < cfg->nstores; i++)
		if (url_eq(cfg->stores[i].url, url))
			return &cfg->stores[i];
	return NULL;
}

const struct wrk_vcenter *
wrk_config_vcenter(const struct wrk_config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->nvcenters; i++)
		if (strcmp(cfg->vcenters[i].name, name) == 0)
			return &cfg->vcenters[i];
	return NULL;
}

int
wrk_vcenter_allows(const struct wrk_vcenter *vc, const char *url)
{
	size_t i;

	if (vc == NULL || url == NULL)
		return 0;
	for (i = 0; i < vc->nurls; i++)
		if (url_eq(vc->urls[i], url))
			return 1;
	return 0;
}

const char *
wrk_limit_kind_name(int kind)
{
	static const char *const names[WRK_LIMIT_KINDS] = { "vcenter", "host", "datastore" };

	return kind >= 0 && kind < WRK_LIMIT_KINDS ? names[kind] : NULL;
}

unsigned
wrk_config_limit(const struct wrk_config *cfg, int kind, const char *name)
{
	size_t i;

	if (cfg == NULL || kind < 0 || kind >= WRK_LIMIT_KINDS)
		return 0;
	for (i = 0; name != NULL && i < cfg->nlimit_overrides; i++)
		if (cfg->limit_overrides[i].kind == kind &&
		    strcmp(cfg->limit_overrides[i].name, name) == 0)
			return cfg->limit_overrides[i].n;
	return cfg->limits[kind];
}

int
wrk_config_limits_on(const struct wrk_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return 0;
	for (i = 0; i < WRK_LIMIT_KINDS; i++)
		if (cfg->limits[i] != 0)
			return 1;
	for (i = 0; i < cfg->nlimit_overrides; i++)
		if (cfg->limit_overrides[i].n != 0)
			return 1;
	return 0;
}

size_t
wrk_config_delay_queues(const struct wrk_config *cfg, unsigned *out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < cfg->nretry_delays && n < max; i++)
		out[n++] = cfg->retry_delays_s[i];
	if (!wrk_config_limits_on(cfg))
		return n;
	for (i = 0; i < n; i++)
		if (out[i] == cfg->limit_wait_s)
			return n;
	if (n < max)
		out[n++] = cfg->limit_wait_s;
	return n;
}
