/*
 * Template commands that need only the store (see commands.h for the
 * layout and idempotency choices): DeleteTemplate, ExtractTemplate,
 * CopyTemplate, RegisterTemplate.  CreateTemplate (from a stored snapshot
 * or a live volume through vCenter) lives in template_vc.c.
 */
#include "worker/commands/cmd_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/num.h"
#include "common/path.h"
#include "ovastore/atomic.h"
#include "ovastore/layout.h"
#include "ovastore/tprops.h"
#include "worker/commands/commands.h"
#include "worker/commands/fetch.h"
#include "worker/commands/vc.h"

/* [download] max_size when the configuration leaves it at 0. */
#define REGISTER_MAX_DEFAULT (1ull << 40)
/* Files small enough to digest when answering (OVF, meta, template.properties). */
#define SMALL_FILE_MAX (16 * 1024 * 1024)

/*
 * Whether template.properties p names object NAME: 1 yes, 0 another
 * object, -1 no object at all.
 */
static int
props_names(const struct ova_tprops_file *p, const char *name, const char **ret_other)
{
	const char *u = ova_tprops_get(p, "uniquename");
	const char *f = ova_tprops_get(p, "filename");
	char want[SW_NAME_MAX + 8];

	if (ret_other != NULL)
		*ret_other = u != NULL ? u : f;
	if ((u == NULL || u[0] == '\0') && (f == NULL || f[0] == '\0'))
		return -1;
	if (u != NULL && strcmp(u, name) == 0)
		return 1;
	if (snprintf(want, sizeof(want), "%s.ova", name) >= (int)sizeof(want))
		return 0;
	if (f != NULL && strcmp(f, want) == 0)
		return 1;
	return 0;
}

static int
tprops_path(char *out, size_t outsz, const char *dir)
{
	return dir[0] != '\0' ? sw_path_fmt(out, outsz, "%s/%s", dir, OVA_TPROPS_NAME) :
	    sw_path_fmt(out, outsz, "%s", OVA_TPROPS_NAME);
}

/* Adds DIR/template.properties to the result. */
static int
add_tprops_file(struct wrk__cmd *c, const char *dir, uint64_t size)
{
	char path[SW_PATH_MAX];
	int r;

	r = tprops_path(path, sizeof(path), dir);
	if (r < 0)
		return r;
	return wrk__result_add_file(c, path, size, NULL);
}

/* --------------------------------------------------------- DeleteTemplate */

/* Removes DIR when it is empty; anything else (not empty, absent) is fine. */
static void
rmdir_if_empty(struct ova_store *s, const char *dir)
{
	char parent[SW_PATH_MAX], base[SW_NAME_MAX + 1];
	int pfd;

	if (dir[0] == '\0' || sw_path_split(dir, parent, sizeof(parent), base, sizeof(base)) < 0)
		return;
	pfd = sw_dir_open_beneath(ova_store_fd(s), parent, 0, 0, NULL);
	if (pfd < 0)
		return;
	if (unlinkat(pfd, base, AT_REMOVEDIR) == 0)
		fsync(pfd);
	close(pfd);
}

/*
 * CloudStack's DeleteTemplate: the whole template directory (ovastore's
 * ova_delete_template), template.properties first, whatever the metas say.
 * A missing directory is success with no files.
 */
int
wrk__cmd_delete_template(struct wrk__cmd *c, struct sw_err *e)
{
	const char *obj = c->cmd->args.delete_template.path;
	struct ova_result *removed = NULL;
	struct ova_store *s = NULL;
	int r;

	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	r = ova_delete_template(s, obj, &removed, e);
	if (r < 0) {
		r = wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	r = wrk__result_set(c, obj, removed->format, 0, 0, 0);
	if (r == 0)
		r = wrk__result_add_files(c, removed->files, removed->nfiles);
out:
	ova_result_free(removed);
	ova_store_close(s);
	return r;
}

/* -------------------------------------------------------- ExtractTemplate */

/* "<NAME>-<command id>.ova", or "<command id>.ova" when that is too long a name. */
static void
extract_name(const struct wrk__cmd *c, const char *name, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s-%s.ova", name, c->cmd->id);

	if (n < 0 || (size_t)n >= outsz || (size_t)n > SW_NAME_MAX)
		snprintf(out, outsz, "%s.ova", c->cmd->id);
}

static int
tmp_name(char *out, size_t outsz, const char *base, struct sw_err *e)
{
	unsigned char rnd[6];
	char hex[13];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return sw_errno(e, errno, "getrandom");
	sw_hex(rnd, sizeof(rnd), hex);
	if (snprintf(out, outsz, ".%.200s.%s.part", base, hex) >= (int)outsz)
		return sw_errf(e, -ENAMETOOLONG, "temporary name too long");
	return 0;
}

/*
 * How many names in the extract area are links to the inode st describes
 * (earlier extracts of the same archive); -1 when the area cannot be read.
 */
static long
extract_links(int xfd, const struct stat *st)
{
	struct dirent *de;
	struct stat xst;
	long n = 0;
	DIR *d;
	int fd = openat(xfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (fstatat(xfd, de->d_name, &xst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(xst.st_mode) && xst.st_ino == st->st_ino && xst.st_dev == st->st_dev)
			n++;
	}
	closedir(d);
	return n;
}

/* Copies size bytes of in (from offset 0) to out: the very file that was checked. */
static int
copy_whole(int in, int out, uint64_t size, struct sw_err *e)
{
	static const size_t chunk = 1 << 20;
	char *buf = NULL;
	uint64_t off = 0;
	ssize_t n;
	int r = 0;

	while (off < size) {
		loff_t ioff = (loff_t)off;

		n = copy_file_range(in, &ioff, out, NULL, size - off < chunk ? size - off : chunk, 0);
		if (n > 0) {
			off += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return sw_errf(e, SW_EFORMAT, "the archive shrank while it was copied");
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return sw_errno(e, errno, "extract area: copy");
		break;
	}
	if (off < size && (buf = malloc(chunk)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	while (off < size) {
		size_t want = size - off < chunk ? (size_t)(size - off) : chunk;

		n = sw_pread_full(in, buf, want, (off_t)off);
		if (n < 0 || (size_t)n != want) {
			r = n < 0 ? sw_errno(e, (int)-n, "read of the archive") :
			    sw_errf(e, SW_EFORMAT, "the archive shrank while it was copied");
			break;
		}
		if ((r = sw_write_all(out, buf, want)) < 0) {
			r = sw_errno(e, -r, "extract area: write");
			break;
		}
		off += want;
	}
	free(buf);
	return r;
}

/*
 * A legacy NAME.ova is already what the user downloads: expose that file
 * instead of writing a second copy, once it has passed the checks a
 * download of it would (the OVF and its references, the manifest's
 * digests), through the descriptor it is exposed from.  A hard link costs
 * nothing, but only a file whose every other name is an earlier extract of
 * it is linked: another link may lie outside the store, and the extract
 * area would then serve a file that the store does not own.  Otherwise, and
 * across file systems, a reflink (FICLONE) may still share the blocks; only
 * when neither works is it copied.
 */
static int
expose_legacy(struct wrk__cmd *c, struct ova_store *s, const struct ova_info *info, int xfd,
    const char *out, uint64_t *ret_size, struct sw_err *e)
{
	char rel[SW_PATH_MAX], file[SW_NAME_MAX + 1], tmp[SW_NAME_MAX + 1];
	struct ova_atomic a;
	struct stat st, lst;
	long links;
	int sfd = -1, dfd = -1, r;

	if (snprintf(file, sizeof(file), "%s.ova", info->name) >= (int)sizeof(file))
		return sw_errf(e, -ENAMETOOLONG, "object name too long");
	r = info->dir[0] != '\0' ? sw_path_fmt(rel, sizeof(rel), "%s/%s", info->dir, file) :
	    sw_path_fmt(rel, sizeof(rel), "%s", file);
	if (r < 0)
		return sw_errf(e, r, "object path too long");
	sfd = sw_open_beneath(ova_store_fd(s), rel, O_RDONLY, 0, e);
	if (sfd < 0)
		return sfd;
	if (fstat(sfd, &st) < 0) {
		r = sw_errno(e, errno, "%s", rel);
		goto out;
	}
	if ((r = wrk__check_stop(c, e)) < 0 || (r = ova_legacy_check_fd(sfd, rel, e)) < 0)
		goto out;
	dfd = wrk__dir_open(s, info->dir, 0, e);
	if (dfd < 0) {
		r = dfd;
		goto out;
	}
	links = st.st_nlink > 1 ? extract_links(xfd, &st) : 0;
	if (links < 0 || (uint64_t)links + 1 != (uint64_t)st.st_nlink) {
		log_info("%s: %s has %ju links, %ld of them in the extract area: copied, not linked",
		    c->cmd->id, rel, (uintmax_t)st.st_nlink, links);
		errno = EMLINK;
	} else if (linkat(dfd, file, xfd, out, 0) == 0) {
		/*
		 * linkat does not follow a symbolic link but would link one that
		 * replaced the file since it was opened: make sure the new name is
		 * the very file that was checked.
		 */
		if (fstatat(xfd, out, &lst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(lst.st_mode) ||
		    lst.st_ino != st.st_ino || lst.st_dev != st.st_dev) {
			unlinkat(xfd, out, 0);
			r = sw_errf(e, SW_EPATH, "%s changed while it was linked", rel);
			goto out;
		}
		if (fsync(xfd) < 0) {
			r = sw_errno(e, errno, "extract area: fsync");
			goto out;
		}
		log_debug("%s: extract: hard link of %s", c->cmd->id, rel);
		*ret_size = (uint64_t)st.st_size;
		r = 0;
		goto out;
	}
	if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EOPNOTSUPP) {
		r = sw_errno(e, errno, "extract area: link");
		goto out;
	}
	r = tmp_name(tmp, sizeof(tmp), out, e);
	if (r < 0)
		goto out;
	if ((r = ova_atomic_begin(&a, xfd, out, tmp, OVA_ATOMIC_EXCL, NULL, e)) < 0) {
		sw_errctx(e, "extract area");
		goto out;
	}
	/* A file system without reflinks falls back to a copy. */
	if (ioctl(a.fd, FICLONE, sfd) == 0) {
		if ((r = ova_atomic_commit(&a, e)) < 0) {
			sw_errctx(e, "extract area");
			goto out;
		}
		log_debug("%s: extract: reflink of %s", c->cmd->id, rel);
		*ret_size = (uint64_t)st.st_size;
		goto out;
	}
	log_debug("%s: extract: copy of %s", c->cmd->id, rel);
	if ((r = copy_whole(sfd, a.fd, (uint64_t)st.st_size, e)) < 0 ||
	    (r = ova_atomic_commit(&a, e)) < 0) {
		ova_atomic_abort(&a);
		goto out;
	}
	*ret_size = (uint64_t)st.st_size;
out:
	if (dfd >= 0)
		close(dfd);
	close(sfd);
	return r;
}

int
wrk__cmd_extract_template(struct wrk__cmd *c, struct sw_err *e)
{
	const char *obj = c->cmd->args.extract_template.path;
	const struct wrk_store *ws = NULL;
	struct ova_store *s = NULL;
	struct ova_info *info = NULL;
	char out[SW_NAME_MAX + 1];
	struct stat st;
	uint64_t size = 0;
	int r, xfd = -1;

	r = wrk__store_open(c, c->cmd->store.url, &s, &ws, e);
	if (r < 0)
		return r;
	r = ova_inspect(s, obj, &info, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	xfd = wrk__extract_dir_open(ws, e);
	if (xfd < 0) {
		r = wrk__fail(c, xfd, PROTO_CTX_STORE);
		goto out;
	}
	extract_name(c, info->name, out, sizeof(out));
	if (fstatat(xfd, out, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(st.st_mode) && wrk__extract_size_ok(info, (uint64_t)st.st_size)) {
			/* A redelivery: the first delivery's output is complete. */
			size = (uint64_t)st.st_size;
			goto answer;
		}
		if (unlinkat(xfd, out, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
			r = wrk__fail(c, sw_errno(e, errno, "extract area: %s", out), PROTO_CTX_STORE);
			goto out;
		}
	} else if (errno != ENOENT) {
		r = wrk__fail(c, sw_errno(e, errno, "extract area: %s", out), PROTO_CTX_STORE);
		goto out;
	}
	if (info->format == OVA_FMT_OVA)
		r = expose_legacy(c, s, info, xfd, out, &size, e);
	else
		r = ova_pack_at(s, obj, xfd, out, 0, &size, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
answer:
	r = wrk__result_set(c, info->install_path, info->format, 1, info->physical_size,
	    info->virtual_size);
	if (r == 0)
		r = wrk__result_download(c, out, size);
out:
	if (xfd >= 0)
		close(xfd);
	ova_info_free(info);
	ova_store_close(s);
	return r;
}

/* ----------------------------------------------------------- CopyTemplate */

/* Same format and the same files with the same sizes. */
static int
same_object(const struct ova_info *a, const struct ova_info *b, char *why, size_t whysz)
{
	size_t i;

	if (a->format != b->format) {
		snprintf(why, whysz, "format %s, the source's is %s", ova_format_name(b->format),
		    ova_format_name(a->format));
		return 0;
	}
	if (a->nfiles != b->nfiles) {
		snprintf(why, whysz, "%zu files, the source has %zu", b->nfiles, a->nfiles);
		return 0;
	}
	for (i = 0; i < a->nfiles; i++) {
		if (strcmp(a->files[i].path, b->files[i].path) != 0 ||
		    a->files[i].size != b->files[i].size) {
			snprintf(why, whysz, "%s has %" PRIu64 " bytes, the source's %s %" PRIu64,
			    b->files[i].path, b->files[i].size, a->files[i].path, a->files[i].size);
			return 0;
		}
	}
	return 1;
}

/*
 * DIR/template.properties is copied when it describes the object, byte for
 * byte and after the object's meta (so it never describes a template whose
 * copy is incomplete).  Both files are read before the object is copied, so
 * that one the command cannot use (a symbolic link, an unreadable file)
 * fails it before anything is written.
 */
struct tprops_plan {
	char *buf;              /* the source's bytes to copy; NULL: nothing to copy */
	size_t len;
	int write;              /* the destination lacks them (or differs) */
};

static int
tprops_plan(struct ova_store *src, struct ova_store *dst, const char *dir, const char *name,
    struct tprops_plan *p, struct sw_err *e)
{
	struct ova_tprops_file *props = NULL;
	char *dbuf = NULL;
	size_t dlen = 0;
	int sfd = -1, dfd = -1, r;

	memset(p, 0, sizeof(*p));
	sfd = wrk__dir_open(src, dir, 0, e);
	if (sfd == SW_ENOTFOUND)
		return 0;
	if (sfd < 0)
		return sfd;
	r = ova_tprops_read_raw(sfd, &p->buf, &p->len, e);
	if (r == SW_ENOTFOUND) {
		r = 0;
		goto out;
	}
	if (r < 0) {
		sw_errctx(e, "source store");
		goto out;
	}
	if (ova_tprops_parse(p->buf, p->len, &props, e) < 0 || props_names(props, name, NULL) != 1) {
		/* Not this object's record: the copy stands without it. */
		free(p->buf);
		p->buf = NULL;
		r = 0;
		goto out;
	}
	dfd = wrk__dir_open(dst, dir, 0, e);
	if (dfd == SW_ENOTFOUND) {
		p->write = 1;
		r = 0;
		goto out;
	}
	if (dfd < 0) {
		r = dfd;
		goto out;
	}
	r = ova_tprops_read_raw(dfd, &dbuf, &dlen, e);
	if (r == 0 && dlen == p->len && memcmp(dbuf, p->buf, p->len) == 0) {
		r = 0;
	} else if (r == 0 || r == SW_ENOTFOUND || r == SW_EFORMAT || r == SW_ETOOBIG) {
		p->write = 1;
		r = 0;
	} else {
		sw_errctx(e, "destination store");
	}
out:
	if (r < 0) {
		free(p->buf);
		p->buf = NULL;
	}
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	ova_tprops_free(props);
	free(dbuf);
	return r;
}

/* Writes what tprops_plan() found to copy; adds it to the result when the destination has it. */
static int
tprops_apply(struct wrk__cmd *c, struct ova_store *dst, const char *dir,
    const struct tprops_plan *p, struct sw_err *e)
{
	int dfd, r = 0;

	if (p->buf == NULL)
		return 0;
	if (p->write) {
		if ((dfd = wrk__dir_open(dst, dir, 1, e)) < 0)
			return dfd;
		r = ova_tprops_write_raw(dfd, p->buf, p->len, e);
		close(dfd);
	}
	if (r == 0)
		r = add_tprops_file(c, dir, p->len);
	return r;
}

/*
 * CopyTemplate with unique_name, when the source has no template.properties
 * naming the object: the destination gets one written from the copy, so
 * that CloudStack's template sync there knows the template by its unique
 * name.  The template id is the directory's (template/tmpl/<account>/<id>).
 */
static int
tprops_fresh(struct wrk__cmd *c, struct ova_store *dst, const char *dir, int64_t id,
    const struct ova_info *info, struct sw_err *e)
{
	struct ova_tprops tp;
	uint64_t psize = 0;
	int dfd, r;

	memset(&tp, 0, sizeof(tp));
	tp.id = id;
	tp.uniquename = c->cmd->args.copy_template.unique_name;
	tp.size = info->physical_size;
	tp.virtual_size = info->virtual_size != 0 ? info->virtual_size : info->physical_size;
	tp.legacy = info->format == OVA_FMT_OVA;
	if ((dfd = wrk__dir_open(dst, dir, 0, e)) < 0)
		return dfd;
	r = ova_tprops_write(dfd, &tp, &psize, e);
	close(dfd);
	if (r == 0)
		r = add_tprops_file(c, dir, psize);
	return r;
}

/* The template id of DIR = template/tmpl/<account>/<id>, or 0. */
static int64_t
template_dir_id(const char *dir)
{
	const char *base = strrchr(dir, '/');
	int64_t id = 0;

	if (strncmp(dir, OVA_LAYOUT_TEMPLATES "/", sizeof(OVA_LAYOUT_TEMPLATES)) != 0 ||
	    base == NULL || sw_parse_i64(base + 1, 1, INT64_MAX, &id) < 0)
		return 0;
	return id;
}

int
wrk__cmd_copy_template(struct wrk__cmd *c, struct sw_err *e)
{
	const char *obj = c->cmd->args.copy_template.path;
	char dir[SW_PATH_MAX], name[SW_NAME_MAX + 1], why[256];
	struct ova_store *src = NULL, *dst = NULL;
	struct ova_info *sinfo = NULL, *dinfo = NULL;
	struct ova_result *res = NULL;
	struct tprops_plan tp;
	struct sw_err e2;
	enum ova_format dfmt = OVA_FMT_ABSENT;
	int64_t tid = 0;
	int r, fresh = 0;

	memset(&tp, 0, sizeof(tp));
	r = wrk__split(obj, dir, sizeof(dir), name, sizeof(name), e);
	if (r < 0)
		return wrk__fail(c, r, PROTO_CTX_STORE);
	/* unique_name asks for a template.properties: the path must say the template id. */
	if (c->cmd->args.copy_template.unique_name != NULL && (tid = template_dir_id(dir)) == 0)
		return wrk__fail_as(c, sw_errf(e, SW_EFORMAT, "args.path: not a template path "
		    OVA_LAYOUT_TEMPLATES "/<account>/<template>/<name>; unique_name needs one"),
		    PROTO_ERR_INVALID_COMMAND, 0);
	r = wrk__store_open(c, c->cmd->store.url, &src, NULL, e);
	if (r < 0)
		return r;
	r = wrk__store_open(c, c->cmd->args.copy_template.dest_store.url, &dst, NULL, e);
	if (r < 0) {
		sw_errctx(e, "args.dest_store");
		goto out;
	}
	r = ova_inspect(src, obj, &sinfo, e);
	if (r < 0 && r != SW_ENOTFOUND) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	r = ova_detect(dst, obj, &dfmt, e);
	if (r == 0)
		r = tprops_plan(src, dst, dir, name, &tp, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	if (dfmt != OVA_FMT_ABSENT) {
		/*
		 * The destination has the object: a redelivery (or a copy made
		 * otherwise).  It stands if it is intact and, while the source
		 * still exists, the same object.
		 */
		r = ova_inspect(dst, obj, &dinfo, e);
		if (r == 0)
			r = ova_verify(dst, obj, OVA_VERIFY_NO_DIGEST, e);
		if (r < 0) {
			/*
			 * A damaged object at the destination is the operator's to
			 * look at: it is neither answered for nor overwritten.
			 */
			sw_errctx(e, "destination store");
			if (r == SW_EFORMAT || r == SW_ECHECKSUM)
				wrk__fail_as(c, r, PROTO_ERR_STORE_IO, 0);
			else
				wrk__fail(c, r, PROTO_CTX_STORE);
			goto out;
		}
		if (sinfo != NULL && !same_object(sinfo, dinfo, why, sizeof(why))) {
			r = wrk__fail_as(c, sw_errf(e, SW_EEXIST,
			    "the destination store holds a different object: %s", why),
			    PROTO_ERR_STORE_IO, 0);
			goto out;
		}
	} else {
		if (sinfo == NULL) {
			r = wrk__fail(c, sw_errf(e, SW_ENOTFOUND, "%s: no such object", obj),
			    PROTO_CTX_STORE);
			goto out;
		}
		r = wrk__check_stop(c, e);
		if (r == 0)
			r = ova_copy(src, obj, dst, NULL, &res, e);
		if (r == 0)
			fresh = 1;
		if (r == 0)
			r = ova_inspect(dst, obj, &dinfo, e);
		if (r < 0) {
			wrk__fail(c, r, PROTO_CTX_STORE);
			goto out;
		}
		if (!same_object(sinfo, dinfo, why, sizeof(why))) {
			r = wrk__fail_as(c, sw_errf(e, -EIO, "copy does not match the source: %s", why),
			    PROTO_ERR_STORE_IO, 1);
			goto out;
		}
	}
	r = wrk__result_set(c, dinfo->install_path, dinfo->format, 1, dinfo->physical_size,
	    dinfo->virtual_size);
	if (r == 0)
		r = wrk__result_add_files(c, dinfo->files, dinfo->nfiles);
	if (r == 0)
		r = tprops_apply(c, dst, dir, &tp, e);
	if (r == 0 && tp.buf == NULL && tid > 0)
		r = tprops_fresh(c, dst, dir, tid, dinfo, e);
	if (r == 0)
		r = wrk__result_fill_digests(c, dst, SMALL_FILE_MAX, e);
	if (r < 0)
		wrk__fail(c, r, PROTO_CTX_STORE);
out:
	/* A copy this attempt made is never left behind a failure (nor behind a commit record). */
	if (r < 0 && fresh)
		(void)ova_delete(dst, obj, NULL, &e2);
	free(tp.buf);
	ova_result_free(res);
	ova_info_free(sinfo);
	ova_info_free(dinfo);
	ova_store_close(src);
	ova_store_close(dst);
	return r;
}

/* ------------------------------------------------------- RegisterTemplate */

static void
register_progress(void *ud, int percent, uint64_t bytes)
{
	const struct wrk_job *j = ud;

	if (j->progress != NULL)
		j->progress(j->progress_ud, percent < 0 ? 0 : percent, bytes);
}

static const char *
checksum_alg(enum proto_checksum_alg a)
{
	switch (a) {
	case PROTO_CHECKSUM_SHA256: return "sha256";
	case PROTO_CHECKSUM_MD5: return "md5";
	default: return NULL;
	}
}

/* Answers with what is on the share: the object, then template.properties. */
int
wrk__template_answer(struct wrk__cmd *c, struct ova_store *s, const char *obj, const char *dir,
    uint64_t psize, struct sw_err *e)
{
	struct ova_info *info = NULL;
	int r;

	r = ova_inspect(s, obj, &info, e);
	if (r == 0)
		r = wrk__result_set(c, info->install_path, info->format, 1, info->physical_size,
		    info->virtual_size);
	if (r == 0)
		r = wrk__result_add_files(c, info->files, info->nfiles);
	if (r == 0)
		r = add_tprops_file(c, dir, psize);
	if (r == 0)
		r = wrk__result_fill_digests(c, s, SMALL_FILE_MAX, e);
	ova_info_free(info);
	return r;
}

/*
 * 1 when the share holds this command's registration already: its
 * template.properties names the object, the object is committed and intact,
 * and the checksum recorded is the one asked for.
 */
static int
register_done(struct wrk__cmd *c, struct ova_store *s, const char *obj, const char *name,
    const struct ova_tprops_file *props)
{
	const struct proto_args_register_template *a = &c->cmd->args.register_template;
	const char *sum = ova_tprops_get(props, "checksum");
	enum ova_format fmt = OVA_FMT_ABSENT;

	if (props_names(props, name, NULL) != 1)
		return 0;
	if (ova_detect(s, obj, &fmt, NULL) < 0 || fmt != OVA_FMT_OVF)
		return 0;
	if (a->checksum.alg != PROTO_CHECKSUM_NONE &&
	    (sum == NULL || strcasecmp(sum, a->checksum.hex) != 0))
		return 0;
	return ova_verify(s, obj, OVA_VERIFY_NO_DIGEST, NULL) == 0;
}

int
wrk__cmd_register_template(struct wrk__cmd *c, struct sw_err *e)
{
	const struct proto_args_register_template *a = &c->cmd->args.register_template;
	const struct wrk_config *cfg = c->job->cfg;
	const char *name = a->unique_name, *other = NULL;
	char dir[SW_PATH_MAX], obj[SW_PATH_MAX], hex[129], otherobj[SW_PATH_MAX];
	char idname[PROTO_ID_MAX + 1];
	struct wrk_fetch_opts fo;
	struct wrk_fetch *f = NULL;
	struct ova_tprops_file *props = NULL;
	struct ova_store *s = NULL;
	struct ova_result *res = NULL;
	struct sw_source src;
	struct ova_tprops tp;
	struct sw_err fe, e2;
	enum ova_format fmt = OVA_FMT_ABSENT;
	uint64_t psize = 0, bytes = 0;
	unsigned flags = 0;
	int r, fr, dfd = -1;

	/* CloudStack's unique name, else the command id in lower case. */
	if (name == NULL) {
		wrk__id_name(c, idname, sizeof(idname));
		name = idname;
	}
	if (sw_unique_name_check(name, e) < 0)
		return wrk__fail_as(c, SW_EPATH, PROTO_ERR_INVALID_COMMAND, 0);
	if ((r = ova_layout_template_dir(a->account_id, a->template_id, dir, sizeof(dir), e)) < 0 ||
	    (r = ova_layout_template(a->account_id, a->template_id, name, obj, sizeof(obj), e)) < 0)
		return wrk__fail_as(c, r, PROTO_ERR_INTERNAL, 0);
	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	dfd = wrk__dir_open(s, dir, 1, e);
	if (dfd < 0) {
		r = wrk__fail(c, dfd, PROTO_CTX_STORE);
		goto out;
	}

	/* Idempotency: template.properties is the registration's commit record. */
	r = ova_tprops_read(dfd, &props, &psize, e);
	if (r == 0) {
		if (register_done(c, s, obj, name, props)) {
			r = wrk__template_answer(c, s, obj, dir, psize, e);
			if (r < 0)
				wrk__fail(c, r, PROTO_CTX_STORE);
			goto out;
		}
		if (props_names(props, name, &other) == 0 && other != NULL) {
			char oname[SW_NAME_MAX + 1];
			size_t olen = strlen(other);

			/* filename= carries ".ova"; the object's name does not. */
			if (olen > 4 && strcmp(other + olen - 4, ".ova") == 0)
				olen -= 4;
			if (olen <= SW_NAME_MAX) {
				memcpy(oname, other, olen);
				oname[olen] = '\0';
				if (sw_name_check(oname, NULL) == 0 &&
				    sw_path_fmt(otherobj, sizeof(otherobj), "%s/%s", dir, oname) == 0 &&
				    ova_detect(s, otherobj, &fmt, NULL) == 0 && fmt != OVA_FMT_ABSENT) {
					r = wrk__fail_as(c, sw_errf(e, SW_EEXIST,
					    "template %" PRId64 " is registered already (as %s)",
					    a->template_id, oname), PROTO_ERR_STORE_IO, 0);
					goto out;
				}
			}
		}
	} else if (r != SW_ENOTFOUND && r != SW_EFORMAT && r != SW_ETOOBIG) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	ova_tprops_free(props);
	props = NULL;
	/*
	 * An object without a matching template.properties is an earlier
	 * attempt that died between its meta and its record (or whose download
	 * failed its checksum after the unpack committed): replace it.
	 */
	r = ova_detect(s, obj, &fmt, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	if (fmt != OVA_FMT_ABSENT)
		flags |= OVA_UNPACK_REPLACE;

	memset(&fo, 0, sizeof(fo));
	fo.allow = cfg->allow;
	fo.nallow = cfg->nallow;
	fo.max_size = cfg->download_max_size != 0 ? cfg->download_max_size : REGISTER_MAX_DEFAULT;
	fo.max_redirects = cfg->download_max_redirects;
	fo.deadline_ms = c->job->deadline_ms;
	fo.cancel = c->job->cancel;
	fo.checksum_alg = checksum_alg(a->checksum.alg);
	fo.checksum_hex = fo.checksum_alg != NULL ? a->checksum.hex : NULL;
	fo.progress = register_progress;
	fo.progress_ud = (void *)(uintptr_t)c->job;
	r = wrk_fetch_open(a->url, &fo, &f, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_DOWNLOAD);
		goto out;
	}
	/* The unpack reads the body as it arrives: no temporary .ova on the share. */
	src = wrk_fetch_source(f);
	r = ova_unpack(s, obj, &src, flags, &res, e);
	if (r < 0) {
		fr = wrk_fetch_error(f, &fe);
		if (fr != 0) {
			/* The download failed, not the store: report the download's error. */
			r = sw_errf(e, fr, "%s", fe.msg);
			wrk__fail(c, r, PROTO_CTX_DOWNLOAD);
		} else {
			wrk__fail(c, r, PROTO_CTX_STORE);
		}
		goto out;
	}
	/* What the unpack did not need (tar padding) still belongs to the checksum. */
	r = wrk_fetch_finish(f, &bytes, hex, sizeof(hex), e);
	if (r < 0) {
		ova_delete(s, obj, NULL, &e2);
		wrk__fail(c, r, PROTO_CTX_DOWNLOAD);
		goto out;
	}
	log_debug("%s: downloaded %" PRIu64 " bytes", c->cmd->id, bytes);
	/* Replacing an earlier attempt may have removed and remade the directory. */
	close(dfd);
	dfd = wrk__dir_open(s, dir, 0, e);
	if (dfd < 0) {
		r = wrk__fail(c, dfd, PROTO_CTX_STORE);
		goto out;
	}

	memset(&tp, 0, sizeof(tp));
	tp.id = a->template_id;
	tp.uniquename = name;
	tp.size = res->physical_size;
	/* CloudStack takes a template with virtualsize 0 for corrupt. */
	tp.virtual_size = res->virtual_size != 0 ? res->virtual_size : res->physical_size;
	tp.checksum = fo.checksum_alg != NULL ? a->checksum.hex : NULL;
	r = ova_tprops_write(dfd, &tp, &psize, e);
	if (r < 0) {
		wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	r = wrk__result_set(c, res->install_path, res->format, 1, res->physical_size,
	    res->virtual_size);
	if (r == 0)
		r = wrk__result_add_files(c, res->files, res->nfiles);
	if (r == 0)
		r = add_tprops_file(c, dir, psize);
	if (r == 0)
		r = wrk__result_fill_digests(c, s, SMALL_FILE_MAX, e);
	if (r < 0)
		wrk__fail(c, r, PROTO_CTX_STORE);
out:
	if (dfd >= 0)
		close(dfd);
	/* A failed registration leaves nothing, not even the directory made for it. */
	if (r < 0 && s != NULL)
		rmdir_if_empty(s, dir);
	wrk_fetch_free(f);
	ova_tprops_free(props);
	ova_result_free(res);
	ova_store_close(s);
	return r;
}
