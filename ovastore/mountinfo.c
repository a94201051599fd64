/* The lock scope of a store's mount, from /proc/self/mountinfo (see mountinfo.h). */
#include "ovastore/mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"

#define FIELD_MAX 4096   /* bytes of one unescaped field (PATH_MAX) */

/* The next space-separated field of line [*p, end), octal escapes (\040) decoded. */
static int
next_field(const char **p, const char *end, char *out, size_t outsz)
{
	const char *s = *p;
	size_t n = 0;

	while (s < end && *s == ' ')
		s++;
	if (s == end)
		return -1;
	while (s < end && *s != ' ') {
		char c = *s++;

		if (c == '\\' && end - s >= 3 && s[0] >= '0' && s[0] <= '3' &&
		    s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
			s += 3;
		}
		if (n + 1 >= outsz)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	*p = s;
	return 0;
}

/* Whether the comma-separated option list opts holds opt (exactly, or "opt=..." when opt ends in '='). */
static bool
has_opt(const char *opts, const char *opt)
{
	size_t ol = strlen(opt);
	const char *s = opts;

	while (*s != '\0') {
		const char *c = strchr(s, ',');
		size_t l = c != NULL ? (size_t)(c - s) : strlen(s);

		if (opt[ol - 1] == '=' ? (l >= ol && strncmp(s, opt, ol) == 0) :
		    (l == ol && strncmp(s, opt, ol) == 0))
			return true;
		s += l;
		if (*s == ',')
			s++;
	}
	return false;
}

/* Whether mount point mp covers path: equal, or a prefix ending at a '/'. */
static bool
covers(const char *mp, const char *path)
{
	size_t l = strlen(mp);

	if (strcmp(mp, "/") == 0)
		return path[0] == '/';
	return strncmp(mp, path, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

struct mount {
	char point[FIELD_MAX];
	char fstype[256];
	char opts[FIELD_MAX];     /* per-mount options */
	char super[FIELD_MAX];    /* super-block options (NFS's lock options are here) */
};

/* Parses one line of len bytes into m; -1 when malformed. */
static int
parse_line(const char *line, size_t len, struct mount *m)
{
	const char *p = line, *end = line + len;
	char f[FIELD_MAX];
	int i;

	/* id, parent, major:minor, root */
	for (i = 0; i < 4; i++)
		if (next_field(&p, end, f, sizeof(f)) < 0)
			return -1;
	if (next_field(&p, end, m->point, sizeof(m->point)) < 0 || m->point[0] != '/' ||
	    next_field(&p, end, m->opts, sizeof(m->opts)) < 0)
		return -1;
	/* Optional fields up to the separator "-". */
	for (;;) {
		if (next_field(&p, end, f, sizeof(f)) < 0)
			return -1;
		if (strcmp(f, "-") == 0)
			break;
	}
	if (next_field(&p, end, m->fstype, sizeof(m->fstype)) < 0 ||
	    next_field(&p, end, f, sizeof(f)) < 0)   /* source */
		return -1;
	if (next_field(&p, end, m->super, sizeof(m->super)) < 0)
		m->super[0] = '\0';
	return 0;
}

static enum ova_lock_scope
decide(const struct mount *m, char *why, size_t whysz)
{
	const char *fs = m->fstype;
	const char *opt = NULL;

	if (strncmp(fs, "nfs", 3) == 0) {
		if (has_opt(m->super, "nolock") || has_opt(m->opts, "nolock"))
			opt = "nolock";
		else if (has_opt(m->super, "local_lock=all") || has_opt(m->opts, "local_lock=all"))
			opt = "local_lock=all";
		else if (has_opt(m->super, "local_lock=posix") ||
		    has_opt(m->opts, "local_lock=posix"))
			opt = "local_lock=posix";
	} else if (strcmp(fs, "cifs") == 0 || strcmp(fs, "smb3") == 0) {
		if (has_opt(m->super, "nobrl") || has_opt(m->opts, "nobrl"))
			opt = "nobrl";
	} else if (strncmp(fs, "fuse", 4) == 0) {
		(void)snprintf(why, whysz, "%s mount %s (FUSE: lock support unknown)", fs, m->point);
		return OVA_LOCKS_HOST;
	}
	if (opt != NULL) {
		(void)snprintf(why, whysz, "%s mount %s with %s", fs, m->point, opt);
		return OVA_LOCKS_HOST;
	}
	(void)snprintf(why, whysz, "%s mount %s", fs, m->point);
	return OVA_LOCKS_SHARED;
}

int
ova_lock_scope_parse(const char *mountinfo, size_t len, const char *path,
    enum ova_lock_scope *ret_scope, char *why, size_t whysz, struct sw_err *e)
{
	struct mount *m, *best;
	const char *p = mountinfo, *end = mountinfo + len;
	size_t best_len = 0;
	unsigned lineno = 0;
	bool found = false;
	char dummy[1];
	int r = 0;

	if (path == NULL || path[0] != '/')
		return sw_errf(e, SW_EPATH, "mountinfo: '%s' is not an absolute path",
		    path != NULL ? path : "");
	if (why == NULL || whysz == 0) {
		why = dummy;
		whysz = sizeof(dummy);
	}
	m = malloc(2 * sizeof(*m));
	if (m == NULL)
		return sw_errf(e, -ENOMEM, "mountinfo: out of memory");
	best = m + 1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		lineno++;
		if (l > 0) {
			if (memchr(p, '\0', l) != NULL || parse_line(p, l, m) < 0) {
				r = sw_errf(e, SW_EFORMAT, "mountinfo: line %u is malformed", lineno);
				goto out;
			}
			/* Later mounts on the same point hide earlier ones: >=. */
			if (covers(m->point, path) && strlen(m->point) >= best_len) {
				best_len = strlen(m->point);
				*best = *m;
				found = true;
			}
		}
		p += l + (nl != NULL ? 1 : 0);
	}
	if (!found) {
		r = sw_errf(e, SW_ENOTFOUND, "mountinfo: no mount holds %s", path);
		goto out;
	}
	*ret_scope = decide(best, why, whysz);
out:
	free(m);
	return r;
}

int
ova_lock_scope(const char *dir, enum ova_lock_scope *ret_scope, char *why, size_t whysz,
    struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_MOUNTINFO_MAX);
	char real[PATH_MAX];
	ssize_t n;
	int fd, r;

	if (realpath(dir, real) == NULL)
		return sw_errno(e, errno, "%s", dir);
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sw_errno(e, errno, "/proc/self/mountinfo");
	for (;;) {
		char chunk[8192];

		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sw_errno(e, errno, "/proc/self/mountinfo");
			goto fail;
		}
		if (n == 0)
			break;
		if ((r = sw_buf_add(&b, chunk, (size_t)n)) < 0) {
			sw_errf(e, r, "/proc/self/mountinfo: over %d bytes", OVA_MOUNTINFO_MAX);
			goto fail;
		}
	}
	close(fd);
	r = ova_lock_scope_parse(sw_buf_str(&b), b.len, real, ret_scope, why, whysz, e);
	sw_buf_free(&b);
	return r;
fail:
	close(fd);
	sw_buf_free(&b);
	return r;
}
