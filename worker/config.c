/*
 * The worker's INI configuration (PROTOCOL.md, "Worker configuration").
 *
 * The file is read into a flat list of (section, key, value, line) entries
 * first, environment overrides are applied to that list, and only then are
 * the entries interpreted: so an override goes through exactly the same
 * checks as the file, and every error can still name where a value came from
 * (file:line, or the environment variable).  The parser is our own rather
 * than libinih because inih splits keys at ':' as well as '=', and the
 * [store] section has URLs ("nfs://host/export") as keys.
 */
#include "worker/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/io.h"
#include "common/num.h"

#define CFG_FILE_MAX     (1024 * 1024)
#define CFG_LINE_MAX     4096
#define CFG_ENTRIES_MAX  4096
#define CFG_LIST_MAX     64       /* queues, vCenter URLs, allowed networks */
#define CFG_SECRET_MAX   4096
#define CFG_JOBS_MAX     64
#define CFG_NAME_MAX     128

extern char **environ;

struct entry {
	char *section;      /* "worker", "vcenter vc1" */
	char *key;
	char *value;
	unsigned line;      /* 0: from the environment */
	char *origin;       /* env variable name when line == 0 */
	int used;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static void
entries_free(struct entries *es)
{
	size_t i;

	for (i = 0; i < es->n; i++) {
		free(es->v[i].section);
		free(es->v[i].key);
		if (es->v[i].value != NULL) {
			/* Values may be secrets' file names only, but wipe anyway: cheap. */
			explicit_bzero(es->v[i].value, strlen(es->v[i].value));
			free(es->v[i].value);
		}
		free(es->v[i].origin);
	}
	free(es->v);
	es->v = NULL;
	es->n = es->cap = 0;
}

static int
entries_add(struct entries *es, const char *section, const char *key, const char *value,
    unsigned line, const char *origin)
{
	struct entry *x;

	if (es->n >= CFG_ENTRIES_MAX)
		return SW_ETOOBIG;
	if (es->n == es->cap) {
		size_t ncap = es->cap ? es->cap * 2 : 32;
		struct entry *nv = realloc(es->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		es->v = nv;
		es->cap = ncap;
	}
	x = &es->v[es->n];
	memset(x, 0, sizeof(*x));
	x->section = strdup(section);
	x->key = strdup(key);
	x->value = strdup(value);
	x->origin = origin ? strdup(origin) : NULL;
	x->line = line;
	if (x->section == NULL || x->key == NULL || x->value == NULL ||
	    (origin != NULL && x->origin == NULL)) {
		free(x->section);
		free(x->key);
		free(x->value);
		free(x->origin);
		return -ENOMEM;
	}
	es->n++;
	return 0;
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
	    end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* Where an entry came from, for error messages. */
static void
entry_where(const struct wrk_config *cfg, const struct entry *x, char *buf, size_t bufsz)
{
	if (x->line == 0)
		(void)snprintf(buf, bufsz, "environment %s", x->origin ? x->origin : "?");
	else
		(void)snprintf(buf, bufsz, "%s:%u", cfg->path, x->line);
}

static int
valid_section(const char *s)
{
	return strcmp(s, "worker") == 0 || strcmp(s, "amqp") == 0 || strcmp(s, "store") == 0 ||
	    strcmp(s, "download") == 0 || strcmp(s, "metrics") == 0 || strcmp(s, "sweep") == 0 ||
	    strncmp(s, "vcenter ", 8) == 0;
}

/*
 * A credential-set name or a zone key: short, and safe to put in a log line,
 * an env variable name, a queue name and a routing key.
 */
static int
valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

static int
parse_file(struct wrk_config *cfg, struct entries *es, struct sw_err *e)
{
	FILE *f = NULL;
	char *line = NULL, *p, *eq, *key, *val, *c;
	char section[CFG_NAME_MAX + 16] = "";
	unsigned lineno = 0;
	size_t total = 0;
	int fd, rc = 0;

	fd = open(cfg->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sw_errno(e, errno, "cannot open %s", cfg->path);
	f = fdopen(fd, "r");
	if (f == NULL) {
		rc = sw_errno(e, errno, "cannot read %s", cfg->path);
		close(fd);
		return rc;
	}
	line = malloc(CFG_LINE_MAX + 2);
	if (line == NULL) {
		rc = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	while (fgets(line, CFG_LINE_MAX + 2, f) != NULL) {
		size_t len = strlen(line);

		lineno++;
		total += len;
		if (total > CFG_FILE_MAX) {
			rc = sw_errf(e, SW_ETOOBIG, "%s: larger than %d bytes", cfg->path, CFG_FILE_MAX);
			goto out;
		}
		if (len > CFG_LINE_MAX || (len == CFG_LINE_MAX + 1 && line[len - 1] != '\n')) {
			rc = sw_errf(e, SW_ETOOBIG, "%s:%u: line longer than %d bytes", cfg->path,
			    lineno, CFG_LINE_MAX);
			goto out;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			rc = sw_errf(e, SW_EFORMAT, "%s:%u: NUL byte", cfg->path, lineno);
			goto out;
		}
		p = trim(line);
		if (*p == '\0' || *p == ';' || *p == '#')
			continue;
		/* Inline comments start with " ;" or " #" (a ';' inside a URL is kept). */
		for (c = p + 1; *c != '\0'; c++) {
			if ((*c == ';' || *c == '#') && (c[-1] == ' ' || c[-1] == '\t')) {
				*c = '\0';
				p = trim(p);
				break;
			}
		}
		if (*p == '[') {
			char *end = strchr(p, ']');
			char *name;

			if (end == NULL || end[1] != '\0') {
				rc = sw_errf(e, SW_EFORMAT, "%s:%u: malformed section header",
				    cfg->path, lineno);
				goto out;
			}
			*end = '\0';
			name = trim(p + 1);
			/* "[vcenter   vc1]" and "[vcenter vc1]" are the same section. */
			if (strncmp(name, "vcenter", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
				char *vn = trim(name + 8);
				if (!valid_name(vn)) {
					rc = sw_errf(e, SW_EFORMAT, "%s:%u: bad credential set name '%s'",
					    cfg->path, lineno, vn);
					goto out;
				}
				if (snprintf(section, sizeof(section), "vcenter %s", vn) >=
				    (int)sizeof(section)) {
					rc = sw_errf(e, SW_ETOOBIG, "%s:%u: section name too long",
					    cfg->path, lineno);
					goto out;
				}
			} else {
				if (strlen(name) >= sizeof(section) || !valid_section(name)) {
					rc = sw_errf(e, SW_EFORMAT, "%s:%u: unknown section [%s]",
					    cfg->path, lineno, name);
					goto out;
				}
				memcpy(section, name, strlen(name) + 1);
			}
			continue;
		}
		if (section[0] == '\0') {
			rc = sw_errf(e, SW_EFORMAT, "%s:%u: key outside of any section", cfg->path,
			    lineno);
			goto out;
		}
		/* Split at " = " first: [store] keys are URLs that may contain '='. */
		eq = strstr(p, " = ");
		if (eq != NULL) {
			*eq = '\0';
			val = eq + 3;
		} else {
			eq = strchr(p, '=');
			if (eq == NULL) {
				rc = sw_errf(e, SW_EFORMAT, "%s:%u: expected key = value", cfg->path,
				    lineno);
				goto out;
			}
			*eq = '\0';
			val = eq + 1;
		}
		key = trim(p);
		val = trim(val);
		if (*key == '\0') {
			rc = sw_errf(e, SW_EFORMAT, "%s:%u: empty key", cfg->path, lineno);
			goto out;
		}
		rc = entries_add(es, section, key, val, lineno, NULL);
		if (rc < 0) {
			rc = sw_errf(e, rc, "%s:%u: %s", cfg->path, lineno,
			    rc == SW_ETOOBIG ? "too many entries" : "out of memory");
			goto out;
		}
	}
	if (ferror(f))
		rc = sw_errno(e, EIO, "reading %s", cfg->path);
out:
	free(line);
	fclose(f);
	return rc;
}

/* Replaces (or adds) section/key with an environment value. */
static int
env_set(struct entries *es, const char *section, const char *key, const char *value,
    const char *var)
{
	size_t i;
	char *nv, *no;

	for (i = 0; i < es->n; i++) {
		if (strcmp(es->v[i].section, section) == 0 && strcmp(es->v[i].key, key) == 0) {
			nv = strdup(value);
			no = strdup(var);
			if (nv == NULL || no == NULL) {
				free(nv);
				free(no);
				return -ENOMEM;
			}
			free(es->v[i].value);
			free(es->v[i].origin);
			es->v[i].value = nv;
			es->v[i].origin = no;
			es->v[i].line = 0;
			return 0;
		}
	}
	return entries_add(es, section, key, value, 0, var);
}

/* Upper-cases a section name for the variable prefix: "vcenter vc-1" -> "VCENTER_VC_1". */
static void
env_prefix(const char *section, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; section[i] != '\0' && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)section[i];
		out[i] = isalnum(ch) ? (char)toupper(ch) : '_';
	}
	out[i] = '\0';
}

static int
apply_env(struct wrk_config *cfg, struct entries *es, char *const *envp, struct sw_err *e)
{
	static const char *const fixed[] = { "worker", "amqp", "store", "download", "metrics", "sweep" };
	char sections[CFG_LIST_MAX + 5][CFG_NAME_MAX + 16];
	size_t nsec = 0, i, j;
	int rc;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		(void)snprintf(sections[nsec++], sizeof(sections[0]), "%s", fixed[i]);
	for (i = 0; i < es->n && nsec < sizeof(sections) / sizeof(sections[0]); i++) {
		if (strncmp(es->v[i].section, "vcenter ", 8) != 0)
			continue;
		for (j = 0; j < nsec; j++)
			if (strcmp(sections[j], es->v[i].section) == 0)
				break;
		if (j == nsec)
			(void)snprintf(sections[nsec++], sizeof(sections[0]), "%s",
			    es->v[i].section);
	}
	for (; envp != NULL && *envp != NULL; envp++) {
		const char *var = *envp, *eqs = strchr(var, '=');
		char name[256], key[128];
		size_t best = 0, bestlen = 0, nlen;

		if (strncmp(var, "SNAPWORKER_", 11) != 0 || eqs == NULL)
			continue;
		nlen = (size_t)(eqs - var);
		if (nlen >= sizeof(name)) {
			return sw_errf(e, SW_EFORMAT, "environment variable name too long");
		}
		memcpy(name, var, nlen);
		name[nlen] = '\0';
		/* The longest matching section prefix wins ("VCENTER_VC1_" over nothing). */
		for (i = 0; i < nsec; i++) {
			char pre[CFG_NAME_MAX + 16];
			size_t pl;

			env_prefix(sections[i], pre, sizeof(pre));
			pl = strlen(pre);
			if (strncmp(name + 11, pre, pl) == 0 && name[11 + pl] == '_' &&
			    name[12 + pl] != '\0' && pl > bestlen) {
				best = i;
				bestlen = pl;
			}
		}
		if (bestlen == 0)
			return sw_errf(e, SW_EFORMAT, "environment %s: unknown configuration section",
			    name);
		{
			const char *k = name + 12 + bestlen;
			size_t kl = strlen(k);
			if (kl >= sizeof(key))
				return sw_errf(e, SW_EFORMAT, "environment %s: key too long", name);
			for (i = 0; i <= kl; i++)
				key[i] = (char)tolower((unsigned char)k[i]);
		}
		rc = env_set(es, sections[best], key, eqs + 1, name);
		if (rc < 0)
			return sw_errf(e, rc, "environment %s: out of memory", name);
	}
	(void)cfg;
	return 0;
}

static int read_secret(const char *path, char **ret, struct sw_err *e);

/*
 * Reads a secret file: a regular file, not a symbolic link, with no group or
 * other permission bits; one line (a trailing newline is dropped).
 */
int
wrk_config_read_secret(const char *path, char **ret, struct sw_err *e)
{
	return read_secret(path, ret, e);
}

static int
read_secret(const char *path, char **ret, struct sw_err *e)
{
	struct stat st;
	char buf[CFG_SECRET_MAX + 1];
	ssize_t n;
	size_t len;
	char *s;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return sw_errno(e, errno, "secret file %s", path);
	if (fstat(fd, &st) < 0) {
		rc = sw_errno(e, errno, "secret file %s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = sw_errf(e, SW_EAUTH, "secret file %s: not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		rc = sw_errf(e, SW_EAUTH,
		    "secret file %s: mode %04o is group/world accessible (chmod 600)", path,
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	n = sw_read_full(fd, buf, sizeof(buf));
	if (n < 0) {
		rc = sw_errno(e, (int)-n, "secret file %s", path);
		goto fail;
	}
	if ((size_t)n > CFG_SECRET_MAX) {
		rc = sw_errf(e, SW_ETOOBIG, "secret file %s: longer than %d bytes", path,
		    CFG_SECRET_MAX);
		goto wipe;
	}
	len = (size_t)n;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL) {
		rc = sw_errf(e, SW_EFORMAT, "secret file %s: must hold one non-empty line", path);
		goto wipe;
	}
	s = malloc(len + 1);
	if (s == NULL) {
		rc = sw_errf(e, -ENOMEM, "out of memory");
		goto wipe;
	}
	memcpy(s, buf, len);
	s[len] = '\0';
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	*ret = s;
	return 0;
wipe:
	explicit_bzero(buf, sizeof(buf));
fail:
	close(fd);
	return rc;
}

static int
set_str(char **field, const char *value, struct sw_err *e)
{
	char *s = strdup(value);

	if (s == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	free(*field);
	*field = s;
	return 0;
}

static void
list_free(char **v, size_t n)
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
			list_free(v, n);
			return sw_errf(e, SW_ETOOBIG, "%s: more than %d list items", where,
			    CFG_LIST_MAX);
		}
		if (n == 0)
			v = calloc(CFG_LIST_MAX, sizeof(*v));
		if (v == NULL || (v[n] = strndup(p, len)) == NULL) {
			list_free(v, n);
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
valid_amqp_url(const char *u)
{
	const char *rest, *at, *colon, *slash;

	if (strncmp(u, "amqp://", 7) == 0)
		rest = u + 7;
	else if (strncmp(u, "amqps://", 8) == 0)
		rest = u + 8;
	else
		return 0;
	slash = strchr(rest, '/');
	at = strchr(rest, '@');
	if (at != NULL && (slash == NULL || at < slash)) {
		/* A password in the URL would end up in config files and process listings. */
		colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon != NULL)
			return -1;
	}
	return 1;
}

static int
interpret_worker(struct wrk_config *cfg, struct entry *x, const char *where, struct sw_err *e)
{
	if (strcmp(x->key, "name") == 0) {
		if (strlen(x->value) == 0 || strlen(x->value) > CFG_NAME_MAX)
			return sw_errf(e, SW_EFORMAT, "%s: name must be 1-%d bytes", where, CFG_NAME_MAX);
		return set_str(&cfg->name, x->value, e);
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
			if (!valid_name(v[i])) {
				rc = sw_errf(e, SW_EFORMAT, "%s: bad zone key '%s' (letters, digits, _ - .)",
				    where, v[i]);
				list_free(v, n);
				return rc;
			}
		}
		list_free(cfg->queues, cfg->nqueues);
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
		return set_str(&cfg->log_format, x->value, e);
	}
	if (strcmp(x->key, "log_level") == 0) {
		if (strcmp(x->value, "error") != 0 && strcmp(x->value, "warn") != 0 &&
		    strcmp(x->value, "info") != 0 && strcmp(x->value, "debug") != 0)
			return sw_errf(e, SW_EFORMAT, "%s: log_level must be error, warn, info or debug",
			    where);
		return set_str(&cfg->log_level, x->value, e);
	}
	if (strcmp(x->key, "log_file") == 0) {
		if (x->value[0] != '/')
			return sw_errf(e, SW_EFORMAT, "%s: log_file must be an absolute path", where);
		return set_str(&cfg->log_file, x->value, e);
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [worker]", where, x->key);
}

static int
interpret_amqp(struct wrk_config *cfg, struct entry *x, const char *where, struct sw_err *e)
{
	char **names[] = { &cfg->amqp_exchange, &cfg->amqp_events, &cfg->amqp_dlx,
	    &cfg->amqp_dead_queue };
	static const char *const keys[] = { "exchange", "events_exchange", "dead_letter_exchange",
	    "dead_letter_queue" };
	size_t i;

	if (strcmp(x->key, "url") == 0) {
		int v = valid_amqp_url(x->value);
		if (v < 0)
			return sw_errf(e, SW_EFORMAT,
			    "%s: the amqp url must not carry a password (use password_file)", where);
		if (v == 0 || strlen(x->value) > 1024)
			return sw_errf(e, SW_EFORMAT, "%s: url must be amqp://... or amqps://...", where);
		return set_str(&cfg->amqp_url, x->value, e);
	}
	if (strcmp(x->key, "password_file") == 0) {
		char *pw = NULL;
		int rc = read_secret(x->value, &pw, e);
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
		return set_str(&cfg->amqp_cacert, x->value, e);
	if (strcmp(x->key, "heartbeat") == 0) {
		if (parse_uint(x->value, 0, 600, &cfg->heartbeat) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: heartbeat must be 0-600 seconds", where);
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
			return set_str(names[i], x->value, e);
		}
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [amqp]", where, x->key);
}

static int
interpret_store(struct wrk_config *cfg, struct entry *x, char **extract_dir, const char *where,
    struct sw_err *e)
{
	struct wrk_store *ns;
	size_t i;

	if (strcmp(x->key, "extract_dir") == 0) {
		if (x->value[0] != '/')
			return sw_errf(e, SW_EFORMAT, "%s: extract_dir must be an absolute path", where);
		return set_str(extract_dir, x->value, e);
	}
	if (strstr(x->key, "://") == NULL)
		return sw_errf(e, SW_EFORMAT,
		    "%s: unknown key '%s' in [store] (expected a store URL or extract_dir)", where,
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

static int
interpret_vcenter(struct wrk_config *cfg, struct entry *x, const char *where, struct sw_err *e)
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
			if (strncmp(v[i], "https://", 8) != 0 && strncmp(v[i], "http://", 7) != 0) {
				rc = sw_errf(e, SW_EFORMAT, "%s: vCenter url must be https://...", where);
				list_free(v, n);
				return rc;
			}
		}
		list_free(vc->urls, vc->nurls);
		vc->urls = v;
		vc->nurls = n;
		return 0;
	}
	if (strcmp(x->key, "user") == 0)
		return set_str(&vc->user, x->value, e);
	if (strcmp(x->key, "password_file") == 0) {
		char *pw = NULL;
		rc = read_secret(x->value, &pw, e);
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
		return set_str(&vc->thumbprint, x->value, e);
	}
	if (strcmp(x->key, "cacert") == 0)
		return set_str(&vc->cacert, x->value, e);
	if (strcmp(x->key, "insecure") == 0) {
		if (parse_bool(x->value, &vc->insecure) < 0)
			return sw_errf(e, SW_EFORMAT, "%s: insecure must be true or false", where);
		return 0;
	}
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [%s]", where, x->key, x->section);
}

static int
interpret_download(struct wrk_config *cfg, struct entry *x, const char *where, struct sw_err *e)
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
			list_free(v, n);
			return sw_errf(e, -ENOMEM, "out of memory");
		}
		for (i = 0; i < n; i++) {
			if (wrk_net_parse(v[i], &nets[i], NULL) < 0) {
				rc = sw_errf(e, SW_EFORMAT, "%s: bad network '%s' (e.g. 10.0.0.0/8)", where,
				    v[i]);
				free(nets);
				list_free(v, n);
				return rc;
			}
		}
		list_free(v, n);
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
interpret_metrics(struct wrk_config *cfg, struct entry *x, const char *where, struct sw_err *e)
{
	if (strcmp(x->key, "listen") == 0)
		return set_str(&cfg->metrics_listen, x->value, e);
	return sw_errf(e, SW_EFORMAT, "%s: unknown key '%s' in [metrics]", where, x->key);
}

static int
interpret_sweep(struct wrk_config *cfg, struct entry *x, const char *where, struct sw_err *e)
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

static int
set_defaults(struct wrk_config *cfg, struct sw_err *e)
{
	char host[256], name[CFG_NAME_MAX + 1];

	cfg->jobs = 1;
	cfg->grace_s = 300;
	cfg->heartbeat = 30;
	cfg->delivery_limit = 5;
	cfg->download_max_size = (uint64_t)1 << 40;
	cfg->download_max_redirects = 5;
	cfg->sweep_max_age_s = 6u * 3600u + 600u;
	cfg->sweep_interval_s = 3600u;
	cfg->journal_stale_s = 300u;
	if (gethostname(host, sizeof(host)) < 0)
		(void)snprintf(host, sizeof(host), "snapworker");
	host[sizeof(host) - 1] = '\0';
	(void)snprintf(name, sizeof(name), "%s:%ld", host, (long)getpid());
	if (set_str(&cfg->name, name, e) < 0 ||
	    set_str(&cfg->log_format, "auto", e) < 0 ||
	    set_str(&cfg->log_level, "info", e) < 0 ||
	    set_str(&cfg->amqp_url, "amqp://snapworker@127.0.0.1:5672/%2f", e) < 0 ||
	    set_str(&cfg->amqp_exchange, "snapworker.commands", e) < 0 ||
	    set_str(&cfg->amqp_events, "snapworker.events", e) < 0 ||
	    set_str(&cfg->amqp_dlx, "snapworker.dlx", e) < 0 ||
	    set_str(&cfg->amqp_dead_queue, "snapworker.dead", e) < 0)
		return -ENOMEM;
	cfg->queues = calloc(1, sizeof(char *));
	if (cfg->queues == NULL || (cfg->queues[0] = strdup("default")) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->nqueues = 1;
	return 0;
}

static int
check_dups(struct wrk_config *cfg, const struct entries *es, struct sw_err *e)
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

int
wrk_config_load(const char *path, char *const *envp, struct wrk_config **ret,
    struct sw_err *e)
{
	struct wrk_config *cfg;
	struct entries es = { NULL, 0, 0 };
	char *extract_dir = NULL;
	char where[512];
	size_t i;
	int rc;

	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	cfg->path = strdup(path != NULL ? path : WRK_CONFIG_DEFAULT);
	if (cfg->path == NULL) {
		rc = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = set_defaults(cfg, e);
	if (rc < 0)
		goto fail;
	rc = parse_file(cfg, &es, e);
	if (rc < 0)
		goto fail;
	rc = check_dups(cfg, &es, e);
	if (rc < 0)
		goto fail;
	rc = apply_env(cfg, &es, envp != NULL ? envp : environ, e);
	if (rc < 0)
		goto fail;
	for (i = 0; i < es.n; i++) {
		struct entry *x = &es.v[i];

		entry_where(cfg, x, where, sizeof(where));
		if (strcmp(x->section, "worker") == 0)
			rc = interpret_worker(cfg, x, where, e);
		else if (strcmp(x->section, "amqp") == 0)
			rc = interpret_amqp(cfg, x, where, e);
		else if (strcmp(x->section, "store") == 0)
			rc = interpret_store(cfg, x, &extract_dir, where, e);
		else if (strncmp(x->section, "vcenter ", 8) == 0)
			rc = interpret_vcenter(cfg, x, where, e);
		else if (strcmp(x->section, "download") == 0)
			rc = interpret_download(cfg, x, where, e);
		else if (strcmp(x->section, "metrics") == 0)
			rc = interpret_metrics(cfg, x, where, e);
		else if (strcmp(x->section, "sweep") == 0)
			rc = interpret_sweep(cfg, x, where, e);
		else
			rc = sw_errf(e, SW_EFORMAT, "%s: unknown section [%s]", where, x->section);
		if (rc < 0)
			goto fail;
	}
	for (i = 0; i < cfg->nstores; i++) {
		struct wrk_store *st = &cfg->stores[i];
		char buf[4096];

		if (extract_dir != NULL) {
			rc = set_str(&st->extract_dir, extract_dir, e);
		} else if (snprintf(buf, sizeof(buf), "%s/extract", st->mount) >= (int)sizeof(buf)) {
			rc = sw_errf(e, SW_ETOOBIG, "%s: mount point of %s too long", cfg->path, st->url);
		} else {
			rc = set_str(&st->extract_dir, buf, e);
		}
		if (rc < 0)
			goto fail;
	}
	for (i = 0; i < cfg->nvcenters; i++) {
		const struct wrk_vcenter *vc = &cfg->vcenters[i];
		const char *missing = vc->nurls == 0 ? "url" : vc->user == NULL ? "user" :
		    vc->password == NULL ? "password_file" : NULL;

		if (missing != NULL) {
			rc = sw_errf(e, SW_EFORMAT, "%s: [vcenter %s] needs %s", cfg->path, vc->name,
			    missing);
			goto fail;
		}
	}
	free(extract_dir);
	entries_free(&es);
	*ret = cfg;
	return 0;
fail:
	free(extract_dir);
	entries_free(&es);
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
	list_free(cfg->queues, cfg->nqueues);
	free(cfg->log_format);
	free(cfg->log_level);
	free(cfg->log_file);
	free(cfg->amqp_url);
	secret_free(cfg->amqp_password);
	free(cfg->amqp_cacert);
	free(cfg->amqp_exchange);
	free(cfg->amqp_events);
	free(cfg->amqp_dlx);
	free(cfg->amqp_dead_queue);
	for (i = 0; i < cfg->nstores; i++) {
		free(cfg->stores[i].url);
		free(cfg->stores[i].mount);
		free(cfg->stores[i].extract_dir);
	}
	free(cfg->stores);
	for (i = 0; i < cfg->nvcenters; i++) {
		struct wrk_vcenter *vc = &cfg->vcenters[i];
		free(vc->name);
		list_free(vc->urls, vc->nurls);
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
