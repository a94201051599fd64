#include "common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int
check_component(const char *c, size_t n, const char *whole, struct sw_err *e)
{
	size_t i;

	if (n == 0)
		return sw_errf(e, SW_EPATH, "path '%s': empty component", whole);
	if (n > SW_NAME_MAX)
		return sw_errf(e, SW_EPATH, "path '%.64s...': component longer than %d bytes",
		    whole, SW_NAME_MAX);
	if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		return sw_errf(e, SW_EPATH, "path '%s': '.' or '..' component", whole);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)c[i];
		if (ch < 0x20 || ch == 0x7f)
			return sw_errf(e, SW_EPATH, "path has a control character at byte %zu",
			    (size_t)(c - whole) + i);
		if (ch == '\\')
			return sw_errf(e, SW_EPATH, "path '%s': backslash", whole);
	}
	return 0;
}

int
sw_path_check_rel(const char *rel, struct sw_err *e)
{
	const char *p, *slash;
	size_t len;
	int r;

	if (rel == NULL || rel[0] == '\0')
		return sw_errf(e, SW_EPATH, "empty path");
	len = strnlen(rel, SW_PATH_MAX);
	if (len >= SW_PATH_MAX)
		return sw_errf(e, SW_EPATH, "path longer than %d bytes", SW_PATH_MAX - 1);
	if (rel[0] == '/')
		return sw_errf(e, SW_EPATH, "path '%s': absolute", rel);
	for (p = rel;; p = slash + 1) {
		slash = strchr(p, '/');
		r = check_component(p, slash ? (size_t)(slash - p) : strlen(p), rel, e);
		if (r < 0)
			return r;
		if (slash == NULL)
			break;
	}
	return 0;
}

int
sw_name_check(const char *name, struct sw_err *e)
{
	if (name != NULL && strchr(name, '/') != NULL)
		return sw_errf(e, SW_EPATH, "name '%s': contains '/'", name);
	return sw_path_check_rel(name, e);
}

static int
ends_ci(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);

	return n >= k && strncasecmp(s + n - k, suf, k) == 0;
}

int
sw_unique_name_check(const char *name, struct sw_err *e)
{
	size_t n, i;

	if (name == NULL || name[0] == '\0')
		return sw_errf(e, SW_EPATH, "empty name");
	n = strnlen(name, SW_UNIQUE_NAME_MAX + 1);
	if (n > SW_UNIQUE_NAME_MAX)
		return sw_errf(e, SW_EPATH, "longer than %d bytes", SW_UNIQUE_NAME_MAX);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (i == 0 && !alnum)
			return sw_errf(e, SW_EPATH, "must start with an ASCII letter or digit");
		if (!alnum && c != '.' && c != '_' && c != '-')
			return sw_errf(e, SW_EPATH, "byte %zu is not an ASCII letter, digit, '.', '_' "
			    "or '-'", i);
	}
	if (ends_ci(name, n, ".ova") || ends_ci(name, n, ".meta") || ends_ci(name, n, ".part"))
		return sw_errf(e, SW_EPATH, "must not end in .ova, .meta or .part");
	return 0;
}

int
sw_ascii_lower(char *out, size_t outsz, const char *s)
{
	size_t n = strlen(s), i;

	if (n >= outsz)
		return -ENAMETOOLONG;
	for (i = 0; i <= n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	return 0;
}

int
sw_path_split(const char *rel, char *dir, size_t dirsz, char *base, size_t basesz)
{
	const char *slash = strrchr(rel, '/');
	size_t dlen = slash ? (size_t)(slash - rel) : 0;
	const char *b = slash ? slash + 1 : rel;

	if (dlen >= dirsz || strlen(b) >= basesz)
		return -ENAMETOOLONG;
	memcpy(dir, rel, dlen);
	dir[dlen] = '\0';
	memcpy(base, b, strlen(b) + 1);
	return 0;
}

int
sw_path_join(char *out, size_t outsz, const char *a, const char *b)
{
	int n;

	if (a == NULL || a[0] == '\0')
		n = snprintf(out, outsz, "%s", b);
	else
		n = snprintf(out, outsz, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	return 0;
}

int
sw_path_fmt(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	return 0;
}

/* Opens (and with create, makes) one directory component below dfd. */
static int
open_component_dir(int dfd, const char *name, int create, mode_t mode, const char *whole,
    struct sw_err *e)
{
	int fd;

	for (;;) {
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && create) {
			if (mkdirat(dfd, name, mode) == 0 || errno == EEXIST)
				continue; /* a concurrent worker may have made it: reopen */
			return sw_errno(e, errno, "mkdir '%s' (in '%s')", name, whole);
		}
		if (errno == ELOOP || errno == ENOTDIR)
			return sw_errf(e, SW_EPATH,
			    "path '%s': component '%s' is not a directory (symbolic link?)",
			    whole, name);
		return sw_errno(e, errno, "open directory '%s' (in '%s')", name, whole);
	}
}

int
sw_dir_open_beneath(int rootfd, const char *rel, int create, mode_t mode, struct sw_err *e)
{
	char comp[SW_NAME_MAX + 1];
	const char *p, *slash;
	int fd, nfd, r;

	if (rel == NULL || rel[0] == '\0')
		rel = ".";
	else if ((r = sw_path_check_rel(rel, e)) < 0)
		return r;
	fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return sw_errno(e, errno, "dup of the root descriptor");
	if (strcmp(rel, ".") == 0)
		return fd;
	for (p = rel;; p = slash + 1) {
		size_t n;

		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		nfd = open_component_dir(fd, comp, create, mode, rel, e);
		(void)close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
		if (slash == NULL)
			return fd;
	}
}

int
sw_open_beneath(int rootfd, const char *rel, int flags, mode_t mode, struct sw_err *e)
{
	char dir[SW_PATH_MAX], base[SW_NAME_MAX + 1];
	struct stat st;
	int dfd, fd, r;

	if ((r = sw_path_check_rel(rel, e)) < 0)
		return r;
	if (sw_path_split(rel, dir, sizeof(dir), base, sizeof(base)) < 0)
		return sw_errf(e, SW_EPATH, "path '%s': too long", rel);
	dfd = sw_dir_open_beneath(rootfd, dir, (flags & O_CREAT) != 0, 0755, e);
	if (dfd < 0)
		return dfd;
	/* O_NONBLOCK so that a FIFO planted on the share cannot hang the open. */
	fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
	if (fd < 0) {
		r = errno;
		(void)close(dfd);
		if (r == ELOOP)
			return sw_errf(e, SW_EPATH, "'%s' is a symbolic link", rel);
		return sw_errno(e, r, "open '%s'", rel);
	}
	(void)close(dfd);
	if (fstat(fd, &st) < 0) {
		r = errno;
		(void)close(fd);
		return sw_errno(e, r, "stat '%s'", rel);
	}
	if (!S_ISREG(st.st_mode)) {
		(void)close(fd);
		return sw_errf(e, SW_EPATH, "'%s' is not a regular file", rel);
	}
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = errno;
		(void)close(fd);
		return sw_errno(e, r, "fcntl '%s'", rel);
	}
	return fd;
}

int
sw_root_open(const char *path, struct sw_err *e)
{
	int fd;

	if (path == NULL || path[0] == '\0')
		return sw_errf(e, -EINVAL, "empty root directory");
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sw_errno(e, errno, "open root directory '%s'", path);
	return fd;
}
