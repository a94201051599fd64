/*
 * template.properties (see tprops.h): parsed by common/props.c, written
 * through the atomic-write helper.
 */
#include "ovastore/tprops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/io.h"
#include "common/path.h"
#include "common/props.h"
#include "ovastore/atomic.h"

/* The entries of a parsed file (common/props.c), opaque to callers. */
struct ova_tprops_file {
	struct sw_props p;
};

void
ova_tprops_free(struct ova_tprops_file *p)
{
	if (p == NULL)
		return;
	sw_props_free(&p->p);
	free(p);
}

const char *
ova_tprops_get(const struct ova_tprops_file *p, const char *key)
{
	const struct sw_prop *kv = p != NULL ? sw_props_find(&p->p, key) : NULL;

	return kv != NULL ? kv->value : NULL;
}

size_t
ova_tprops_count(const struct ova_tprops_file *p)
{
	return p != NULL ? p->p.n : 0;
}

int
ova_tprops_parse(const void *buf, size_t len, struct ova_tprops_file **ret_props,
    struct sw_err *e)
{
	static const struct sw_props_limits lim = { NULL, OVA_TPROPS_MAX, OVA_TPROPS_KEYS, 1 };
	struct ova_tprops_file *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	if ((r = sw_props_parse(buf, len, &lim, &p->p, e)) < 0) {
		free(p);
		return r;
	}
	*ret_props = p;
	return 0;
}

/* ------------------------------------------------------------- writing */

/* Appends key=value escaped as Properties.store escapes it. */
static int
add(struct sw_buf *out, const char *key, const char *value, struct sw_err *e)
{
	int r = sw_props_add_entry(out, key, value);

	if (r == SW_EFORMAT)
		return sw_errf(e, r, "template.properties: %s is not well-formed UTF-8", key);
	if (r < 0)
		return sw_errf(e, r, "template.properties: %s", sw_strerror(r));
	return 0;
}

static int
add_u64(struct sw_buf *out, const char *key, uint64_t v, struct sw_err *e)
{
	char num[32];

	(void)snprintf(num, sizeof(num), "%" PRIu64, v);
	return add(out, key, num, e);
}

int
ova_tprops_format(const struct ova_tprops *p, struct sw_buf *out, struct sw_err *e)
{
	const char *desc = p->description != NULL ? p->description : "";
	const char *sum = p->checksum != NULL ? p->checksum : "";
	char file[SW_NAME_MAX + 8], id[32];
	size_t before = out->len;
	int r;

	if (p->uniquename == NULL || sw_unique_name_check(p->uniquename, NULL) < 0)
		return sw_errf(e, SW_EFORMAT, "template.properties: uniquename is not a file name");
	if (p->id <= 0)
		return sw_errf(e, SW_EFORMAT, "template.properties: id must be positive");
	(void)snprintf(file, sizeof(file), "%s.ova", p->uniquename);
	(void)snprintf(id, sizeof(id), "%" PRId64, p->id);
	/* The keys and order of CloudStack's VMware template writer. */
	if ((r = add(out, "filename", file, e)) < 0 ||
	    (r = add(out, "description", desc, e)) < 0 ||
	    (r = add(out, "checksum", sum, e)) < 0 ||
	    (r = add(out, "hvm", "false", e)) < 0 ||
	    (r = add_u64(out, "size", p->size, e)) < 0 ||
	    (r = add(out, "ova", p->legacy ? "true" : "false", e)) < 0 ||
	    (r = add(out, "id", id, e)) < 0 ||
	    (r = add(out, "public", p->is_public ? "true" : "false", e)) < 0 ||
	    (r = add(out, "ova.filename", file, e)) < 0 ||
	    (r = add(out, "uniquename", p->uniquename, e)) < 0 ||
	    (r = add_u64(out, "ova.virtualsize", p->virtual_size, e)) < 0 ||
	    (r = add_u64(out, "virtualsize", p->virtual_size, e)) < 0 ||
	    (r = add_u64(out, "ova.size", p->size, e)) < 0) {
		out->len = before;
		if (out->ptr != NULL)
			out->ptr[before] = '\0';
		return r;
	}
	return 0;
}

int
ova_tprops_read_raw(int dirfd, char **ret_buf, size_t *ret_len, struct sw_err *e)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, r;

	fd = openat(dirfd, OVA_TPROPS_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return sw_errf(e, SW_ENOTFOUND, "%s: absent", OVA_TPROPS_NAME);
		if (errno == ELOOP)
			return sw_errf(e, SW_EPATH, "%s: a symbolic link", OVA_TPROPS_NAME);
		return sw_errno(e, errno, "%s", OVA_TPROPS_NAME);
	}
	if (fstat(fd, &st) < 0) {
		r = sw_errno(e, errno, "%s", OVA_TPROPS_NAME);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = sw_errf(e, SW_EPATH, "%s: not a regular file", OVA_TPROPS_NAME);
		goto out;
	}
	if (st.st_size > OVA_TPROPS_MAX) {
		r = sw_errf(e, SW_ETOOBIG, "%s: more than %d bytes", OVA_TPROPS_NAME, OVA_TPROPS_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	/* One byte more than the size: a file that grows meanwhile is noticed. */
	n = sw_read_full(fd, buf, (size_t)st.st_size + 1);
	if (n < 0) {
		r = sw_errno(e, (int)-n, "%s", OVA_TPROPS_NAME);
		goto out;
	}
	if (n > st.st_size) {
		r = sw_errf(e, SW_EBUSY, "%s: grew while read", OVA_TPROPS_NAME);
		goto out;
	}
	buf[n] = '\0';
	*ret_buf = buf;
	*ret_len = (size_t)n;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

int
ova_tprops_read(int dirfd, struct ova_tprops_file **ret_props, uint64_t *ret_size, struct sw_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = ova_tprops_read_raw(dirfd, &buf, &len, e);
	if (r < 0)
		return r;
	r = ova_tprops_parse(buf, len, ret_props, e);
	if (r < 0)
		sw_errctx(e, "%s", OVA_TPROPS_NAME);
	else if (ret_size != NULL)
		*ret_size = len;
	free(buf);
	return r;
}

/*
 * The temporary has a random name, created exclusively: two commands that
 * register the same template at once (distinct command ids, so distinct
 * command locks) each write their own and the last rename wins whole.
 */
int
ova_tprops_write_raw(int dirfd, const void *buf, size_t len, struct sw_err *e)
{
	struct ova_atomic a;
	unsigned char rnd[6];
	char tmp[64], hex[13];
	int r;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return sw_errno(e, errno, "getrandom");
	sw_hex(rnd, sizeof(rnd), hex);
	if (snprintf(tmp, sizeof(tmp), ".%s.%s.tmp", OVA_TPROPS_NAME, hex) >= (int)sizeof(tmp))
		return sw_errf(e, SW_EINTERNAL, "temporary name too long");
	if ((r = ova_atomic_begin(&a, dirfd, OVA_TPROPS_NAME, tmp, OVA_ATOMIC_EXCL, NULL, e)) < 0)
		return r;
	if ((r = sw_write_all(a.fd, buf, len)) < 0) {
		r = sw_errno(e, -r, "write of '%s'", a.what);
		ova_atomic_abort(&a);
		return r;
	}
	return ova_atomic_commit(&a, e);
}

int
ova_tprops_write(int dirfd, const struct ova_tprops *p, uint64_t *ret_size, struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_TPROPS_MAX);
	int r;

	r = ova_tprops_format(p, &b, e);
	if (r == 0)
		r = ova_tprops_write_raw(dirfd, b.ptr, b.len, e);
	if (r == 0 && ret_size != NULL)
		*ret_size = b.len;
	sw_buf_free(&b);
	return r;
}

int
ova_tprops_remove(int dirfd, uint64_t *ret_size, struct sw_err *e)
{
	struct stat st;

	if (fstatat(dirfd, OVA_TPROPS_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return sw_errno(e, errno, "%s", OVA_TPROPS_NAME);
	}
	if (S_ISDIR(st.st_mode))
		return sw_errf(e, SW_EPATH, "%s: a directory", OVA_TPROPS_NAME);
	if (unlinkat(dirfd, OVA_TPROPS_NAME, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		return sw_errno(e, errno, "%s: unlink", OVA_TPROPS_NAME);
	}
	/* The removal is only durable once the directory is (as ova__fsync_dir). */
	if (fsync(dirfd) < 0 && errno != EINVAL && errno != EROFS)
		return sw_errno(e, errno, "fsync of the directory of '%s'", OVA_TPROPS_NAME);
	if (ret_size != NULL)
		*ret_size = (uint64_t)st.st_size;
	return 1;
}
