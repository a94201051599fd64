/*
 * The configuration's INI reader (PROTOCOL.md, "Worker configuration") and
 * its environment overrides.
 *
 * The file is read into a flat list of (section, key, value, line) entries;
 * environment overrides are applied to that list, and only then does
 * config.c interpret the entries: so an override goes through exactly the
 * same checks as the file, and every error can still name where a value
 * came from (file:line, or the environment variable).
 *
 * The reader is our own, not libinih (which the build no longer links).
 * Debian 12's libinih 55 is a shared library whose behaviour was fixed when
 * it was built, not by us, and it differs from ours where it matters:
 *  - it splits a key at ':' as well as '=', and [store] keys are URLs:
 *    "nfs://10.0.0.5/export = /mnt/x" becomes key "nfs";
 *  - it reads a line into a fixed 200-byte buffer and parses the rest of a
 *    longer line as if it were the next line, silently: a long value is
 *    truncated, its tail can turn into a key, and every later line number
 *    is off (we refuse a line over 4096 bytes, naming it);
 *  - an indented line continues the previous key (INI_ALLOW_MULTILINE), so
 *    the key is reported twice; only ';' starts an inline comment, not '#';
 *  - it goes on parsing after an error and reports the first error's line
 *    only, with no key or reason.
 * Working around each of these would take more code than this reader, which
 * is bounded everywhere (file size, line length, entry count, no NUL bytes)
 * and reports every error with file, line and key.
 *
 * Syntax: "[section]" or "[vcenter NAME]"; "key = value" (split at the first
 * " = ", else at the first '='); whole-line comments start with ';' or '#',
 * inline ones with " ;" or " #" (a ';' or '#' inside a URL is kept).
 */
#include "worker/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
wrk__cfg_entries_free(struct wrk__cfg_entries *es)
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
entries_add(struct wrk__cfg_entries *es, const char *section, const char *key, const char *value,
    unsigned line, const char *origin)
{
	struct wrk__cfg_entry *x;

	if (es->n >= CFG_ENTRIES_MAX)
		return SW_ETOOBIG;
	if (es->n == es->cap) {
		size_t ncap = es->cap ? es->cap * 2 : 32;
		struct wrk__cfg_entry *nv = realloc(es->v, ncap * sizeof(*nv));
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

static int
valid_section(const char *s)
{
	return strcmp(s, "worker") == 0 || strcmp(s, "amqp") == 0 || strcmp(s, "store") == 0 ||
	    strcmp(s, "download") == 0 || strcmp(s, "metrics") == 0 || strcmp(s, "sweep") == 0 ||
	    strcmp(s, "retry") == 0 || strcmp(s, "limits") == 0 || strncmp(s, "vcenter ", 8) == 0;
}

int
wrk__cfg_valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

int
wrk__cfg_read_file(const char *path, struct wrk__cfg_entries *es, struct sw_err *e)
{
	FILE *f = NULL;
	char *line = NULL, *p, *eq, *key, *val, *c;
	char section[CFG_NAME_MAX + 16] = "";
	unsigned lineno = 0;
	size_t total = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sw_errno(e, errno, "cannot open %s", path);
	f = fdopen(fd, "r");
	if (f == NULL) {
		rc = sw_errno(e, errno, "cannot read %s", path);
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
			rc = sw_errf(e, SW_ETOOBIG, "%s: larger than %d bytes", path, CFG_FILE_MAX);
			goto out;
		}
		if (len > CFG_LINE_MAX || (len == CFG_LINE_MAX + 1 && line[len - 1] != '\n')) {
			rc = sw_errf(e, SW_ETOOBIG, "%s:%u: line longer than %d bytes", path,
			    lineno, CFG_LINE_MAX);
			goto out;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			rc = sw_errf(e, SW_EFORMAT, "%s:%u: NUL byte", path, lineno);
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
				    path, lineno);
				goto out;
			}
			*end = '\0';
			name = trim(p + 1);
			/* "[vcenter   vc1]" and "[vcenter vc1]" are the same section. */
			if (strncmp(name, "vcenter", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
				char *vn = trim(name + 8);
				if (!wrk__cfg_valid_name(vn)) {
					rc = sw_errf(e, SW_EFORMAT, "%s:%u: bad credential set name '%s'",
					    path, lineno, vn);
					goto out;
				}
				if (snprintf(section, sizeof(section), "vcenter %s", vn) >=
				    (int)sizeof(section)) {
					rc = sw_errf(e, SW_ETOOBIG, "%s:%u: section name too long",
					    path, lineno);
					goto out;
				}
			} else {
				if (strlen(name) >= sizeof(section) || !valid_section(name)) {
					rc = sw_errf(e, SW_EFORMAT, "%s:%u: unknown section [%s]",
					    path, lineno, name);
					goto out;
				}
				memcpy(section, name, strlen(name) + 1);
			}
			continue;
		}
		if (section[0] == '\0') {
			rc = sw_errf(e, SW_EFORMAT, "%s:%u: key outside of any section", path,
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
				rc = sw_errf(e, SW_EFORMAT, "%s:%u: expected key = value", path,
				    lineno);
				goto out;
			}
			*eq = '\0';
			val = eq + 1;
		}
		key = trim(p);
		val = trim(val);
		if (*key == '\0') {
			rc = sw_errf(e, SW_EFORMAT, "%s:%u: empty key", path, lineno);
			goto out;
		}
		rc = entries_add(es, section, key, val, lineno, NULL);
		if (rc < 0) {
			rc = sw_errf(e, rc, "%s:%u: %s", path, lineno,
			    rc == SW_ETOOBIG ? "too many entries" : "out of memory");
			goto out;
		}
	}
	if (ferror(f))
		rc = sw_errno(e, EIO, "reading %s", path);
out:
	free(line);
	fclose(f);
	return rc;
}

/* Replaces (or adds) section/key with an environment value. */
static int
env_set(struct wrk__cfg_entries *es, const char *section, const char *key, const char *value,
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

int
wrk__cfg_apply_env(struct wrk__cfg_entries *es, char *const *envp, struct sw_err *e)
{
	static const char *const fixed[] = { "worker", "amqp", "store", "download", "metrics", "sweep",
	    "retry", "limits" };
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
	return 0;
}
