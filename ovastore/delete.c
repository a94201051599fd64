/*
 * Deletion: of one object as its meta describes it (ova_delete), of what
 * CloudStack's own DeleteTemplate and DeleteSnapshot would remove
 * (ova_delete_template: the template directory; ova_delete_snapshot: the
 * files of DIR whose name holds NAME), and of the debris an interrupted
 * write leaves beside an object (temporaries that only our writers make);
 * then of the directory when that is left empty.
 *
 * Everything happens through the directory descriptor ova__obj_open()
 * opened beneath the store root without following links: names are
 * stat'ed and unlinked relative to it with AT_SYMLINK_NOFOLLOW / plain
 * unlinkat, so a symbolic link is removed itself and its target never
 * touched.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/path.h"
#include "ovastore/layout.h"
#include "ovastore/ova_int.h"
#include "ovastore/tprops.h"

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
		/* A temporary an attempt is writing right now, however old: not debris. */
		if (ova__part_held(o->dirfd, de->d_name))
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

/*
 * Reads and parses the meta of o into *ret: one that cannot be read (a
 * symbolic link, not a regular file, over OVA_META_MAX) or does not parse
 * is an error, for the object's files cannot be told from it.
 */
static int
read_meta(struct ova__obj *o, const char *meta_name, struct ova_meta **ret, struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_META_MAX);
	struct sw_err e2;
	char rel[SW_PATH_MAX];
	int r;

	sw_err_clear(&e2);
	if ((r = ova__relpath(o, meta_name, rel, sizeof(rel), e)) < 0)
		return r;
	r = ova__read_file(o->dirfd, meta_name, OVA_META_MAX, &b, &e2);
	if (r == 0)
		r = ova_meta_parse(b.ptr ? b.ptr : "", b.len, ret, &e2);
	sw_buf_free(&b);
	if (r < 0)
		return sw_errf(e, r, "meta '%s' unusable (%s): the object's files cannot be told "
		    "from it, nothing removed", rel, e2.msg[0] ? e2.msg : sw_strerror(r));
	return 0;
}

int
ova_delete(struct ova_store *s, const char *obj, struct ova_result **ret_removed,
    struct sw_err *e)
{
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
	if ((r = ova__fname(&o, ".ova", fname, sizeof(fname), e)) < 0)
		goto out;
	if (f == OVA_FMT_OVF) {
		/* The list is read before the meta goes; without one, nothing goes. */
		if ((r = ova__fname(&o, ".ova.meta", meta_name, sizeof(meta_name), e)) < 0 ||
		    (r = read_meta(&o, meta_name, &meta, e)) < 0)
			goto out;
		if ((r = remove_file(&o, meta_name, res, 1, e)) < 0)
			goto out;
		for (i = 0; i < meta->ndisks; i++)
			if ((r = remove_file(&o, meta->disks[i].name, res, 0, e)) < 0)
				goto out;
		if ((r = remove_file(&o, meta->ovf, res, 0, e)) < 0)
			goto out;
		/* NAME.ova beside a meta: what CloudStack's own extract leaves. */
		if ((r = remove_file(&o, fname, res, 0, e)) < 0)
			goto out;
	} else if (f == OVA_FMT_OVA) {
		if ((r = remove_file(&o, fname, res, 1, e)) < 0)
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
	return r;
}

/* ------------------------------------------------ CloudStack's own rules */

enum del_rule {
	DEL_TEMPLATE,     /* every file of DIR */
	DEL_SNAPSHOT,     /* the files of DIR whose name holds NAME */
};

struct del_ent {
	char *name;
	int rank;
};

/* Whether name is an older release's crash journal (NAME~vcenter.part): never removed. */
static int
is_legacy_journal(const char *name)
{
	size_t n = strlen(name), m = strlen(OVA_JOURNAL_LEGACY_SUFFIX);

	return n > m && strcmp(name + n - m, OVA_JOURNAL_LEGACY_SUFFIX) == 0;
}

/*
 * Removal order: template.properties (CloudStack's listing stops seeing
 * the template), the metas and the archives (every object stops being
 * one), then the rest; by name within a rank.
 */
static int
rank_of(const char *name)
{
	if (strcasecmp(name, OVA_TPROPS_NAME) == 0)
		return 0;
	if (ova__ends_with(name, ".ova.meta"))
		return 1;
	if (ova__ends_with(name, ".ova"))
		return 2;
	return 3;
}

static int
ent_cmp(const void *a, const void *b)
{
	const struct del_ent *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Whether s is a positive decimal id as the layout writes it (no sign, no leading 0). */
static int
is_id(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 19 || s[0] == '0')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Whether dir is template/tmpl/<account>/<template>, the only directory DEL_TEMPLATE empties. */
static int
is_template_dir(const char *dir)
{
	static const char pre[] = OVA_LAYOUT_TEMPLATES "/";
	const char *a, *slash;

	if (strncmp(dir, pre, sizeof(pre) - 1) != 0)
		return 0;
	a = dir + sizeof(pre) - 1;
	if ((slash = strchr(a, '/')) == NULL || !is_id(a, (size_t)(slash - a)))
		return 0;
	return is_id(slash + 1, strlen(slash + 1));
}

static void
ents_free(struct del_ent *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/*
 * Lists what rule selects in o's directory into *ret_v (sorted in removal
 * order).  Refused before anything is removed: a subdirectory among them
 * (SW_EPATH), more than OVA_DELETE_MAX_FILES of them (SW_ETOOBIG).
 * *ret_kept counts the legacy journals left in place.
 */
static int
select_files(struct ova__obj *o, enum del_rule rule, struct del_ent **ret_v, size_t *ret_n,
    size_t *ret_kept, struct sw_err *e)
{
	struct del_ent *v = NULL, *nv;
	size_t n = 0, cap = 0, kept = 0;
	char rel[SW_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, r = 0;

	if ((fd = openat(o->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return sw_errno(e, errno, "open directory '%s'", o->dir);
	if ((d = fdopendir(fd)) == NULL) {
		r = sw_errno(e, errno, "read directory '%s'", o->dir);
		(void)close(fd);
		return r;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0)
				r = sw_errno(e, errno, "read directory '%s'", o->dir);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (rule == DEL_SNAPSHOT && strstr(de->d_name, o->name) == NULL)
			continue;
		if (is_legacy_journal(de->d_name)) {
			kept++;
			continue;
		}
		if ((r = ova__relpath(o, de->d_name, rel, sizeof(rel), e)) < 0)
			break;
		if (fstatat(o->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				r = 0;
				continue;
			}
			r = sw_errno(e, errno, "stat '%s'", rel);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			r = sw_errf(e, SW_EPATH, "'%s' is a directory, which %s never holds: "
			    "nothing removed", rel, rule == DEL_TEMPLATE ?
			    "a template directory" : "a snapshot's files");
			break;
		}
		if (n >= OVA_DELETE_MAX_FILES) {
			r = sw_errf(e, SW_ETOOBIG, "'%s' holds more than %d files to remove: "
			    "nothing removed", o->dir, OVA_DELETE_MAX_FILES);
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				r = sw_errf(e, -ENOMEM, "out of memory");
				break;
			}
			v = nv;
		}
		if ((v[n].name = strdup(de->d_name)) == NULL) {
			r = sw_errf(e, -ENOMEM, "out of memory");
			break;
		}
		v[n++].rank = rank_of(de->d_name);
	}
	(void)closedir(d);
	if (r < 0) {
		ents_free(v, n);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), ent_cmp);
	*ret_v = v;
	*ret_n = n;
	*ret_kept = kept;
	return 0;
}

static int
delete_by_rule(struct ova_store *s, const char *obj, enum del_rule rule,
    struct ova_result **ret_removed, struct sw_err *e)
{
	struct ova_result *res = NULL;
	struct del_ent *v = NULL;
	struct ova__obj o;
	enum ova_format f;
	size_t i, n = 0, kept = 0;
	int r;

	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	if (rule == DEL_TEMPLATE && !is_template_dir(o.dir)) {
		r = sw_errf(e, SW_EPATH, "template '%s': not in a template directory ("
		    OVA_LAYOUT_TEMPLATES "/<account>/<template>), which is all a template "
		    "delete removes", o.install);
		goto out;
	}
	if (rule == DEL_SNAPSHOT && (o.dir[0] == '\0' || is_template_dir(o.dir))) {
		r = sw_errf(e, SW_EPATH, "snapshot '%s': %s", o.install, o.dir[0] == '\0' ?
		    "at the store root" : "in a template directory");
		goto out;
	}
	if ((r = ova__detect_in(&o, &f, e)) < 0)
		goto out;
	if ((res = ova__result_new(f, o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (o.dirfd >= 0) {
		if ((r = select_files(&o, rule, &v, &n, &kept, e)) < 0)
			goto out;
		for (i = 0; i < n; i++)
			if ((r = remove_file(&o, v[i].name, res, v[i].rank < 3, e)) < 0)
				goto out;
		if (res->nfiles > 0 && (r = ova__fsync_dir(o.dirfd, o.dir, e)) < 0)
			goto out;
		ova__obj_close(&o);
		/* CloudStack removes a template's directory; a snapshot's goes when emptied. */
		if (kept == 0 && (rule == DEL_TEMPLATE || res->nfiles > 0))
			remove_dir_if_empty(s, &o);
	}
	if (ret_removed != NULL) {
		*ret_removed = res;
		res = NULL;
	}
	r = 0;
out:
	ova__obj_close(&o);
	ents_free(v, n);
	ova_result_free(res);
	return r;
}

int
ova_delete_template(struct ova_store *s, const char *obj, struct ova_result **ret_removed,
    struct sw_err *e)
{
	return delete_by_rule(s, obj, DEL_TEMPLATE, ret_removed, e);
}

int
ova_delete_snapshot(struct ova_store *s, const char *obj, struct ova_result **ret_removed,
    struct sw_err *e)
{
	return delete_by_rule(s, obj, DEL_SNAPSHOT, ret_removed, e);
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
