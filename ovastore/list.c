/*
 * Listing the objects of a tree: every committed (new-format) object, every
 * legacy .ova, every broken object (a meta or .ova that does not inspect) and
 * the debris of interrupted attempts (.part files, data files no object
 * owns).  The walk opens each directory beneath the store's root descriptor
 * without following symbolic links, skips the workers' records
 * (.snapworker) and is bounded in depth and in entries per directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "ovastore/ova_int.h"

#define LIST_MAX_DEPTH   32
#define LIST_MAX_ENTRIES 100000     /* names read from one directory */

const char *
ova_entry_state_name(enum ova_entry_state st)
{
	switch (st) {
	case OVA_ENTRY_COMMITTED:
		return "committed";
	case OVA_ENTRY_LEGACY:
		return "legacy";
	case OVA_ENTRY_BROKEN:
		return "broken";
	case OVA_ENTRY_DEBRIS:
		return "debris";
	}
	return "unknown";
}

struct names {
	char **v;
	size_t n, cap;
};

static void
names_free(struct names *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
names_has(const struct names *ns, const char *name)
{
	return bsearch(&name, ns->v, ns->n, sizeof(ns->v[0]), names_cmp) != NULL;
}

/* Reads the names of directory dfd (not "." or ".."), sorted; d_type where known. */
static int
read_names(int dfd, const char *rel, struct names *ns, struct sw_err *e)
{
	DIR *d;
	struct dirent *de;
	int fd;

	memset(ns, 0, sizeof(*ns));
	if ((fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3)) < 0)
		return sw_errno(e, errno, "dup of '%s'", rel);
	if ((d = fdopendir(fd)) == NULL) {
		(void)close(fd);
		return sw_errno(e, errno, "list '%s'", rel);
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (ns->n >= LIST_MAX_ENTRIES) {
			(void)closedir(d);
			names_free(ns);
			return sw_errf(e, SW_ETOOBIG, "'%s' has more than %d entries", rel[0] ? rel : ".",
			    LIST_MAX_ENTRIES);
		}
		if (ns->n == ns->cap) {
			size_t cap = ns->cap ? ns->cap * 2 : 32;
			char **v = realloc(ns->v, cap * sizeof(*v));

			if (v == NULL)
				goto nomem;
			ns->v = v;
			ns->cap = cap;
		}
		if ((ns->v[ns->n] = strdup(de->d_name)) == NULL)
			goto nomem;
		ns->n++;
		errno = 0;
	}
	if (errno != 0) {
		int err = errno;

		(void)closedir(d);
		names_free(ns);
		return sw_errno(e, err, "list '%s'", rel);
	}
	(void)closedir(d);
	if (ns->n > 1)
		qsort(ns->v, ns->n, sizeof(ns->v[0]), names_cmp);
	return 0;
nomem:
	(void)closedir(d);
	names_free(ns);
	return sw_errf(e, -ENOMEM, "out of memory listing '%s'", rel);
}

struct walk {
	struct ova_store *s;
	ova_list_fn fn;
	void *arg;
	struct sw_err *e;
};

static int
emit(struct walk *w, struct ova_entry *ent)
{
	int r = w->fn(ent, w->arg);

	if (r < 0 && w->e->code == 0)
		sw_errf(w->e, r, "listing stopped by its caller");
	return r;
}

/* Marks the files of an object (relative to the root) as owned in own[] (parallel to ns). */
static void
mark_owned(const struct names *ns, unsigned char *own, const char *dir, const struct ova_info *in)
{
	size_t i, dl = strlen(dir);

	for (i = 0; i < in->nfiles; i++) {
		const char *p = in->files[i].path, *base;
		char **hit;

		if (dl > 0) {
			if (strncmp(p, dir, dl) != 0 || p[dl] != '/')
				continue;
			base = p + dl + 1;
		} else {
			base = p;
		}
		if (strchr(base, '/') != NULL)
			continue;
		hit = bsearch(&base, ns->v, ns->n, sizeof(ns->v[0]), names_cmp);
		if (hit != NULL)
			own[hit - ns->v] = 1;
	}
}

static int
object_entry(struct walk *w, const char *dir, const char *name, enum ova_format hint,
    const struct names *ns, unsigned char *own)
{
	struct ova_entry ent;
	struct ova_info *in = NULL;
	struct sw_err ie;
	char obj[SW_PATH_MAX];

	memset(&ent, 0, sizeof(ent));
	if (sw_path_fmt(obj, sizeof(obj), "%s%s%s", dir, dir[0] ? "/" : "", name) < 0)
		return 0;                     /* longer than any object can be: not listed */
	snprintf(ent.path, sizeof(ent.path), "%s", obj);
	ent.format = hint;
	sw_err_clear(&ie);
	if (ova_inspect(w->s, obj, &in, &ie) < 0) {
		ent.state = OVA_ENTRY_BROKEN;
		snprintf(ent.error, sizeof(ent.error), "%s",
		    ie.msg[0] ? ie.msg : sw_strerror(ie.code));
		return emit(w, &ent);
	}
	ent.format = in->format;
	ent.state = in->format == OVA_FMT_OVA ? OVA_ENTRY_LEGACY : OVA_ENTRY_COMMITTED;
	ent.physical_size = in->physical_size;
	ent.virtual_size = in->virtual_size;
	ent.ndisks = in->ndisks;
	mark_owned(ns, own, dir, in);
	ova_info_free(in);
	return emit(w, &ent);
}

static int walk_dir(struct walk *w, int dfd, const char *rel, int depth);

static int
walk_names(struct walk *w, int dfd, const char *rel, const struct names *ns, int depth)
{
	unsigned char *own = NULL, *isdir = NULL;
	uint64_t *size = NULL;
	size_t i, l;
	int r = 0;

	if (ns->n > 0 && ((own = calloc(ns->n, 1)) == NULL || (isdir = calloc(ns->n, 1)) == NULL ||
	    (size = calloc(ns->n, sizeof(*size))) == NULL)) {
		free(own);
		free(isdir);
		return sw_errf(w->e, -ENOMEM, "out of memory listing '%s'", rel);
	}
	/* One lstat per name: what is a directory, and the size a debris line reports. */
	for (i = 0; i < ns->n; i++) {
		struct stat st;

		if (fstatat(dfd, ns->v[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			isdir[i] = S_ISDIR(st.st_mode);
			size[i] = (uint64_t)st.st_size;
		}
	}
	/* Objects first: NAME.ova.meta (new format) and NAME.ova without a meta (legacy). */
	for (i = 0; i < ns->n && r >= 0; i++) {
		const char *n = ns->v[i];
		char base[SW_NAME_MAX + 1];

		l = strlen(n);
		if (isdir[i])
			continue;
		if (ova__ends_with(n, ".ova.meta") && l > 9) {
			own[i] = 1;
			snprintf(base, sizeof(base), "%.*s", (int)(l - 9), n);
			r = object_entry(w, rel, base, OVA_FMT_OVF, ns, own);
		} else if (ova__ends_with(n, ".ova") && l > 4) {
			char meta[SW_NAME_MAX + 8];

			snprintf(meta, sizeof(meta), "%s.meta", n);
			own[i] = 1;
			if (names_has(ns, meta))
				continue;     /* listed with its meta */
			snprintf(base, sizeof(base), "%.*s", (int)(l - 4), n);
			r = object_entry(w, rel, base, OVA_FMT_OVA, ns, own);
		}
	}
	/* Debris: .part files and data files that no object of this directory owns. */
	for (i = 0; i < ns->n && r >= 0; i++) {
		const char *n = ns->v[i];
		struct ova_entry ent;

		if (isdir[i] || own[i])
			continue;
		if (!ova__ends_with(n, ".part") && !ova__ends_with(n, ".ovf") &&
		    !ova__ends_with(n, ".vmdk") && !ova__ends_with(n, ".mf"))
			continue;
		memset(&ent, 0, sizeof(ent));
		if (sw_path_fmt(ent.path, sizeof(ent.path), "%s%s%s", rel, rel[0] ? "/" : "", n) < 0)
			continue;
		ent.state = OVA_ENTRY_DEBRIS;
		ent.format = OVA_FMT_ABSENT;
		ent.physical_size = size[i];
		r = emit(w, &ent);
	}
	for (i = 0; i < ns->n && r >= 0; i++) {
		char sub[SW_PATH_MAX];
		int cfd;

		/* The workers' records are not objects (and never debris to list). */
		if (!isdir[i] || strcmp(ns->v[i], ".snapworker") == 0)
			continue;
		if (sw_path_fmt(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", ns->v[i]) < 0)
			continue;
		cfd = openat(dfd, ns->v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue;     /* replaced by a link or removed since: not ours to walk */
		r = walk_dir(w, cfd, sub, depth + 1);
		(void)close(cfd);
	}
	free(own);
	free(isdir);
	free(size);
	return r;
}

static int
walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
	struct names ns;
	int r;

	if (depth > LIST_MAX_DEPTH)
		return sw_errf(w->e, SW_ETOOBIG, "'%s' is nested deeper than %d directories", rel,
		    LIST_MAX_DEPTH);
	if ((r = read_names(dfd, rel, &ns, w->e)) < 0)
		return r;
	r = walk_names(w, dfd, rel, &ns, depth);
	names_free(&ns);
	return r;
}

int
ova_list(struct ova_store *s, const char *dir, ova_list_fn fn, void *arg, struct sw_err *e)
{
	struct walk w = { s, fn, arg, e };
	char rel[SW_PATH_MAX];
	size_t l;
	int dfd, r;

	if (dir == NULL || strcmp(dir, ".") == 0)
		dir = "";
	if (sw_path_fmt(rel, sizeof(rel), "%s", dir) < 0)
		return sw_errf(e, SW_EPATH, "directory path too long");
	l = strlen(rel);
	while (l > 0 && rel[l - 1] == '/')
		rel[--l] = '\0';
	if (rel[0] != '\0' && (r = sw_path_check_rel(rel, e)) < 0)
		return r;
	if ((dfd = sw_dir_open_beneath(ova_store_fd(s), rel, 0, 0, e)) < 0)
		return dfd;
	r = walk_dir(&w, dfd, rel, 0);
	(void)close(dfd);
	return r < 0 ? r : 0;
}
