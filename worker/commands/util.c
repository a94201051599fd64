/* What the command implementations share: errors, stores, event results. */
#include "worker/commands/cmd_int.h"

#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"
#include "common/path.h"
#include "ovastore/layout.h"
#include "worker/commands/commands.h"

static int
deadline_passed(const struct wrk_job *j)
{
	return (j->cancel != NULL && *j->cancel == WRK_CANCEL_DEADLINE) ||
	    (j->deadline_ms != 0 && sw_mono_ms() >= j->deadline_ms);
}

int
wrk__fail(struct wrk__cmd *c, int code, enum proto_errctx ctx)
{
	bool retry = false;
	enum proto_errcode pe;

	if ((code == -ECANCELED || code == -ETIMEDOUT) && deadline_passed(c->job))
		return sw_err_classify(c->e, code, PROTO_ERR_TIMEOUT, false);
	pe = proto_errcode_from_sw(code, ctx, &retry);
	return sw_err_classify(c->e, code, pe, retry);
}

int
wrk__fail_as(struct wrk__cmd *c, int code, enum proto_errcode pe, int retryable)
{
	return sw_err_classify(c->e, code, pe, retryable != 0);
}

int
wrk__check_stop(const struct wrk__cmd *c, struct sw_err *e)
{
	const struct wrk_job *j = c->job;

	if (deadline_passed(j))
		return sw_err_classify(e, sw_errf(e, -ETIMEDOUT, "deadline of %u s passed",
		    c->cmd->timeout_s), PROTO_ERR_TIMEOUT, false);
	if (j->cancel != NULL && *j->cancel)
		return sw_errf(e, -ECANCELED, "cancelled");
	return 0;
}

int
wrk__store_open(struct wrk__cmd *c, const char *url, struct ova_store **ret_store,
    const struct wrk_store **ret_ws, struct sw_err *e)
{
	const struct wrk_store *ws;
	int r;

	ws = url != NULL && c->job->cfg != NULL ? wrk_config_store(c->job->cfg, url) : NULL;
	if (ws == NULL) {
		/*
		 * The URL is the publisher's: checked by the parser (printable
		 * ASCII, no user or password), said as it is, cut if long.
		 */
		return wrk__fail_as(c, sw_errf(e, SW_ENOTFOUND,
		    "store.url: no store configured for %.300s%s", url != NULL ? url : "(none)",
		    url != NULL && strlen(url) > 300 ? "..." : ""), PROTO_ERR_UNKNOWN_STORE, 0);
	}
	r = ova_store_open(ws->mount, ret_store, e);
	if (r < 0) {
		sw_errctx(e, "store mount");
		/* A missing or stale mount may come back: let another delivery try. */
		return wrk__fail_as(c, r, PROTO_ERR_STORE_IO, 1);
	}
	if (ret_ws != NULL)
		*ret_ws = ws;
	return 0;
}

void
wrk_cmd_result_clear(struct proto_event *ev)
{
	size_t i;

	if (ev == NULL)
		return;
	free((void *)ev->result.install_path);
	for (i = 0; i < ev->result.nfiles; i++) {
		free((void *)ev->result.files[i].path);
		free((void *)ev->result.files[i].sha256);
	}
	free((void *)ev->result.files);
	free((void *)ev->result.download.path);
	free((void *)ev->result.datastore_path);
	memset(&ev->result, 0, sizeof(ev->result));
}

static enum proto_format
proto_fmt(enum ova_format f)
{
	switch (f) {
	case OVA_FMT_OVF: return PROTO_FORMAT_OVF;
	case OVA_FMT_OVA: return PROTO_FORMAT_OVA;
	default: return PROTO_FORMAT_NONE;
	}
}

int
wrk__result_set(struct wrk__cmd *c, const char *install_path, enum ova_format fmt,
    int has_sizes, uint64_t physical, uint64_t virtual_size)
{
	struct proto_result *res = &c->ev->result;
	char *p = NULL;

	if (install_path != NULL) {
		/*
		 * CloudStack records a template's install path as .../NAME.ova (and
		 * looks for <install path>.meta beside it), whatever the format:
		 * an object in the template area is answered in that form, by
		 * whichever command (snapshots and volumes keep theirs).  The
		 * parser takes either form in commands.
		 */
		size_t n = strlen(install_path);
		int ova = strncmp(install_path, OVA_LAYOUT_TEMPLATES "/",
		    sizeof(OVA_LAYOUT_TEMPLATES)) == 0 &&
		    !(n >= 4 && strcmp(install_path + n - 4, ".ova") == 0);

		if ((p = malloc(n + (ova ? 5 : 1))) == NULL)
			return -ENOMEM;
		memcpy(p, install_path, n);
		memcpy(p + n, ova ? ".ova" : "", ova ? 5 : 1);
	}
	free((void *)res->install_path);
	res->install_path = p;
	res->format = proto_fmt(fmt);
	res->has_sizes = has_sizes != 0;
	res->physical_size = physical;
	res->virtual_size = virtual_size;
	return 0;
}

void
wrk__id_name(const struct wrk__cmd *c, char *out, size_t outsz)
{
	if (sw_ascii_lower(out, outsz, c->cmd->id) < 0 && outsz > 0)
		out[0] = '\0';
}

int
wrk__result_add_file(struct wrk__cmd *c, const char *path, uint64_t size, const char *sha256)
{
	struct proto_result *res = &c->ev->result;
	struct proto_file *nf;
	char *p, *h = NULL;

	if (res->nfiles >= PROTO_FILES_MAX)
		return SW_ETOOBIG;
	p = strdup(path);
	if (p == NULL)
		return -ENOMEM;
	if (sha256 != NULL && sha256[0] != '\0' && (h = strdup(sha256)) == NULL) {
		free(p);
		return -ENOMEM;
	}
	nf = realloc((void *)res->files, (res->nfiles + 1) * sizeof(*nf));
	if (nf == NULL) {
		free(p);
		free(h);
		return -ENOMEM;
	}
	nf[res->nfiles].path = p;
	nf[res->nfiles].size = size;
	nf[res->nfiles].sha256 = h;
	res->files = nf;
	res->nfiles++;
	return 0;
}

int
wrk__result_add_files(struct wrk__cmd *c, const struct ova_file *files, size_t n)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		r = wrk__result_add_file(c, files[i].path, files[i].size, files[i].sha256);
		if (r < 0)
			return r;
	}
	return 0;
}

int
wrk__result_download(struct wrk__cmd *c, const char *path, uint64_t size)
{
	struct proto_result *res = &c->ev->result;
	char *p = strdup(path);

	if (p == NULL)
		return -ENOMEM;
	free((void *)res->download.path);
	res->has_download = true;
	res->download.path = p;
	res->download.size = size;
	return 0;
}

int
wrk__split(const char *obj, char *dir, size_t dirsz, char *name, size_t namesz,
    struct sw_err *e)
{
	return ova_object_split(obj, dir, dirsz, name, namesz, e);
}

int
wrk__dir_open(struct ova_store *s, const char *dir, int create, struct sw_err *e)
{
	int fd = sw_dir_open_beneath(ova_store_fd(s), dir, create, 0755, e);

	if (fd == -ENOENT)
		return sw_errf(e, SW_ENOTFOUND, "directory '%s' absent", dir);
	return fd;
}

int
wrk__result_fill_digests(struct wrk__cmd *c, struct ova_store *s, uint64_t max_size,
    struct sw_err *e)
{
	struct proto_result *res = &c->ev->result;
	unsigned char buf[16384];
	struct proto_file *f;
	struct sw_hash *h;
	char hex[129], *dup;
	ssize_t n;
	size_t i;
	int fd, r;

	for (i = 0; i < res->nfiles; i++) {
		f = (struct proto_file *)&res->files[i];
		if (f->sha256 != NULL || f->size > max_size)
			continue;
		fd = sw_open_beneath(ova_store_fd(s), f->path, O_RDONLY, 0, e);
		if (fd < 0)
			return fd;
		h = sw_hash_new("sha256");
		if (h == NULL) {
			close(fd);
			return sw_errf(e, -ENOMEM, "out of memory");
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			if (sw_hash_update(h, buf, (size_t)n) < 0) {
				n = -1;
				errno = EIO;
				break;
			}
		}
		r = n < 0 ? sw_errno(e, errno, "%s", f->path) : sw_hash_final(h, hex, sizeof(hex));
		sw_hash_free(h);
		close(fd);
		if (r < 0)
			return r;
		dup = strdup(hex);
		if (dup == NULL)
			return sw_errf(e, -ENOMEM, "out of memory");
		f->sha256 = dup;
	}
	return 0;
}

int
wrk__extract_dir_open(const struct wrk_store *ws, struct sw_err *e)
{
	char def[SW_PATH_MAX];
	const char *path = ws->extract_dir;
	int fd;

	if (path == NULL) {
		if (sw_path_fmt(def, sizeof(def), "%s/extract", ws->mount) < 0)
			return sw_errf(e, -ENAMETOOLONG, "extract area: path too long");
		path = def;
	}
	fd = sw_root_open(path, e);
	if (fd == -ENOENT) {
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return sw_errno(e, errno, "extract area");
		fd = sw_root_open(path, e);
	}
	if (fd < 0)
		sw_errctx(e, "extract area");
	return fd;
}

int
wrk__extract_size_ok(const struct ova_info *info, uint64_t size)
{
	uint64_t lo, hi, members = info->nfiles + 1;

	if (info->format == OVA_FMT_OVA)
		return size == info->physical_size;
	lo = info->physical_size + 1024;
	hi = info->physical_size + members * (3 * 512 + 511 + 1024) + 20480;
	return size >= lo && size <= hi;
}

int
wrk__ovf_read(struct ova_store *s, const char *obj, const struct ova_info *info,
    char **ret_ovf, size_t *ret_len, struct sw_err *e)
{
	struct ova_reader *rd = NULL;
	struct sw_source src;
	char *ovf;
	size_t len = 0;
	ssize_t n;
	int r;

	if (info->ovf_size > OVA_OVF_MAX)
		return sw_errf(e, SW_ETOOBIG, "%s: OVF over %d bytes", info->ovf_name, OVA_OVF_MAX);
	if ((ovf = malloc((size_t)info->ovf_size + 1)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	r = ova_reader_open(s, obj, info->ovf_name, &rd, e);
	if (r < 0)
		goto out;
	src = ova_reader_source(rd);
	while (len < info->ovf_size) {
		n = src.read(src.ud, ovf + len, (size_t)info->ovf_size - len, e);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len != info->ovf_size) {
		r = sw_errf(e, SW_EFORMAT, "%s: short OVF", info->ovf_name);
		goto out;
	}
	ovf[len] = '\0';
	*ret_ovf = ovf;
	*ret_len = len;
	ovf = NULL;
out:
	ova_reader_close(rd);
	free(ovf);
	return r;
}
