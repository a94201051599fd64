/*
 * Deletion of an object and of the debris an interrupted write leaves
 * beside it (temporaries that only our writers make), then of its
 * directory when that is left empty.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

static int
remove_file(struct ova__obj *o, const char *file, struct ova_result *res, int sync,
    struct sw_err *e)
{
	char rel[SW_PATH_MAX];
	struct stat st;
	int r;

	if ((r = ova__relpath(o, file, rel, sizeof(rel), e)) < 0)
		return r;
	if (fstatat(o->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return sw_errno(e, errno, "stat '%s'", rel);
	}
	if (S_ISDIR(st.st_mode))
		return sw_errf(e, SW_EPATH, "'%s' is a directory", rel);
	if ((r = ova__unlink(o->dirfd, file, rel, e)) <= 0)
		return r;
	if (sync && (r = ova__fsync_dir(o->dirfd, o->dir, e)) < 0)
		return r;
	return res ? ova__result_add(res, rel, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0,
	    NULL, e) : 0;
}

/*
 * Whether file is debris of object NAME: one of our temporaries for it
 * (NAME-diskK.vmdk.part, NAME.ovf.part, NAME.ova.meta.part, NAME.ova.part,
 * NAME~<file>.part).  Deliberately narrow: NAME-x is another object.
 */
static int
is_debris(const struct ova__obj *o, const char *file)
{
	size_t n = strlen(o->name);
	const char *p = file + n;

	if (strncmp(file, o->name, n) != 0 || !ova__ends_with(file, ".part"))
		return 0;
	if (strcmp(p, ".ovf.part") == 0 || strcmp(p, ".ova.meta.part") == 0 ||
	    strcmp(p, ".ova.part") == 0)
		return 1;
	/* NAME~file.part, except a journal of an older release (state.h): not debris. */
	if (p[0] == '~' && strlen(p) > 6)
		return strcmp(p, OVA_JOURNAL_LEGACY_SUFFIX) != 0;
	if (strncmp(p, "-disk", 5) == 0) {
		p += 5;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
		return strcmp(p, ".vmdk.part") == 0;
	}
	return 0;
}

static int
remove_debris(struct ova__obj *o, struct ova_result *res, struct sw_err *e)
{
	int fd, r = 0, count = 0;
	DIR *d;
	struct dirent *de;

	if (o->dirfd < 0)
		return 0;
	if ((fd = openat(o->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return sw_errno(e, errno, "open directory '%s'", o->dir);
	if ((d = fdopendir(fd)) == NULL) {
		r = sw_errno(e, errno, "read directory '%s'", o->dir);
		(void)close(fd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_debris(o, de->d_name))
			continue;
		if ((r = remove_file(o, de->d_name, res, 0, e)) < 0)
			break;
		count++;
	}
	(void)closedir(d);
	return r < 0 ? r : count;
}

/* Removes DIR when it is empty (never the store root, never a parent). */
static void
remove_dir_if_empty(struct ova_store *s, struct ova__obj *o)
{
	char parent[SW_PATH_MAX], base[SW_NAME_MAX + 1];
	int pfd;

	if (o->dir[0] == '\0' || sw_path_split(o->dir, parent, sizeof(parent), base,
	    sizeof(base)) < 0)
		return;
	if ((pfd = sw_dir_open_beneath(s->rootfd, parent, 0, 0, NULL)) < 0)
		return;
	/* ENOTEMPTY (another object, a concurrent writer) is the common, harmless case. */
	if (unlinkat(pfd, base, AT_REMOVEDIR) == 0)
		(void)ova__fsync_dir(pfd, parent, NULL);
	(void)close(pfd);
}

int
ova_delete(struct ova_store *s, const char *obj, struct ova_result **ret_removed,
    struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_META_MAX);
	struct ova_meta *meta = NULL;
	struct ova_result *res = NULL;
	char meta_name[SW_NAME_MAX + 1], fname[SW_NAME_MAX + 1];
	struct ova__obj o;
	enum ova_format f;
	size_t i;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	if ((r = ova__detect_in(&o, &f, e)) < 0)
		goto out;
	if ((res = ova__result_new(f, o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (f == OVA_FMT_OVF) {
		if ((r = ova__fname(&o, ".ova.meta", meta_name, sizeof(meta_name), e)) < 0)
			goto out;
		/* Read the list before the meta goes; an unreadable meta leaves the default names. */
		if (ova__read_file(o.dirfd, meta_name, OVA_META_MAX, &b, NULL) == 0)
			(void)ova_meta_parse(b.ptr ? b.ptr : "", b.len, &meta, NULL);
		if ((r = remove_file(&o, meta_name, res, 1, e)) < 0)
			goto out;
		if (meta != NULL) {
			for (i = 0; i < meta->ndisks; i++)
				if ((r = remove_file(&o, meta->disks[i].name, res, 0, e)) < 0)
					goto out;
			if ((r = remove_file(&o, meta->ovf, res, 0, e)) < 0)
				goto out;
		} else {
			for (i = 0; i < OVA_MAX_DISKS; i++) {
				char suf[32];

				(void)snprintf(suf, sizeof(suf), "-disk%zu.vmdk", i);
				if ((r = ova__fname(&o, suf, fname, sizeof(fname), e)) < 0 ||
				    (r = remove_file(&o, fname, res, 0, e)) < 0)
					goto out;
			}
			if ((r = ova__fname(&o, ".ovf", fname, sizeof(fname), e)) < 0 ||
			    (r = remove_file(&o, fname, res, 0, e)) < 0)
				goto out;
		}
	} else if (f == OVA_FMT_OVA) {
		if ((r = ova__fname(&o, ".ova", fname, sizeof(fname), e)) < 0 ||
		    (r = remove_file(&o, fname, res, 1, e)) < 0)
			goto out;
	}
	if ((r = remove_debris(&o, res, e)) < 0)
		goto out;
	if (o.dirfd >= 0 && res->nfiles > 0 && (r = ova__fsync_dir(o.dirfd, o.dir, e)) < 0)
		goto out;
	ova__obj_close(&o);
	if (res->nfiles > 0)
		remove_dir_if_empty(s, &o);
	if (ret_removed != NULL) {
		*ret_removed = res;
		res = NULL;
	}
	r = 0;
out:
	ova__obj_close(&o);
	ova_result_free(res);
	ova_meta_free(meta);
	sw_buf_free(&b);
	return r;
}

int
ova_debris_remove(struct ova_store *s, const char *obj, struct sw_err *e)
{
	struct ova__obj o;
	enum ova_format f;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	r = ova__detect_in(&o, &f, e);
	/* A committed object's .part files may be a concurrent copy's: leave them. */
	if (r == 0)
		r = f == OVA_FMT_ABSENT ? remove_debris(&o, NULL, e) : 0;
	ova__obj_close(&o);
	return r;
}
