/* Secret files: see common/secret.h. */
#include "common/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/io.h"
#include "common/err.h"

int
sw_secret_read(const char *path, char **ret, struct sw_err *e)
{
	struct stat st;
	char buf[SW_SECRET_MAX + 1];
	ssize_t n;
	size_t len;
	char *s;
	int fd, rc;

	/*
	 * O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	 * writer, hanging the daemon's start; it is refused below as not a
	 * regular file, and reads of a regular file ignore the flag.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		return sw_errf(e, SW_EAUTH, "secret file %s: is a symbolic link (name the file "
		    "itself, or copy it: a link could be repointed by whoever owns it)", path);
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
		    "secret file %s: mode %04o is group/world accessible (chmod 600 %s)", path,
		    (unsigned)(st.st_mode & 07777), path);
		goto fail;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		rc = sw_errf(e, SW_EAUTH, "secret file %s: owned by uid %u, not by this user (uid "
		    "%u) or root (chown %u %s)", path, (unsigned)st.st_uid, (unsigned)geteuid(),
		    (unsigned)geteuid(), path);
		goto fail;
	}
	n = sw_read_full(fd, buf, sizeof(buf));
	if (n < 0) {
		rc = sw_errno(e, (int)-n, "secret file %s", path);
		goto fail;
	}
	if ((size_t)n > SW_SECRET_MAX) {
		rc = sw_errf(e, SW_ETOOBIG, "secret file %s: longer than %d bytes", path,
		    SW_SECRET_MAX);
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
