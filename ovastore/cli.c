/*
 * ovastore: the operator's tool over the storage format library.
 * Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/version.h"
#include "common/path.h"
#include "ovastore/ovastore.h"

#define EXIT_USAGE 2

struct cmd;

struct opts {
	const char *root;
	int root_given;
	int json;
	int no_digest;
	int rule;                      /* delete: 0 the object, 'T' template, 'S' snapshot */
	const char *pos[2];
	int npos;
};

struct cmd {
	const char *name;
	const char *usage;
	const char *help;
	int npos;
	int (*run)(struct ova_store *s, struct opts *o, struct sw_err *e);
	int minpos;          /* fewer positional arguments allowed (default: npos) */
	unsigned storepos;   /* bit k: positional k is a path in the store (may be absolute) */
};

static int
fail(const struct sw_err *e)
{
	fprintf(stderr, "ovastore: %s\n", e->msg[0] ? e->msg : sw_strerror(e->code));
	return EXIT_FAILURE;
}

static void
print_result(const struct ova_result *r)
{
	size_t i;

	for (i = 0; i < r->nfiles; i++)
		printf("%s\t%llu\t%s\n", r->files[i].path, (unsigned long long)r->files[i].size,
		    r->files[i].sha256[0] ? r->files[i].sha256 : "-");
}

static json_object *
json_u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static int
inspect_json(const struct ova_info *in)
{
	json_object *root = json_object_new_object(), *files, *disks, *meta;
	size_t i;

	json_object_object_add(root, "install_path", json_object_new_string(in->install_path));
	json_object_object_add(root, "format", json_object_new_string(ova_format_name(in->format)));
	json_object_object_add(root, "ovf", json_object_new_string(in->ovf_name));
	json_object_object_add(root, "ovf_size", json_u64(in->ovf_size));
	json_object_object_add(root, "virtual_size", json_u64(in->virtual_size));
	json_object_object_add(root, "physical_size", json_u64(in->physical_size));
	files = json_object_new_array();
	for (i = 0; i < in->nfiles; i++) {
		json_object *f = json_object_new_object();

		json_object_object_add(f, "path", json_object_new_string(in->files[i].path));
		json_object_object_add(f, "size", json_u64(in->files[i].size));
		if (in->files[i].sha256[0])
			json_object_object_add(f, "sha256",
			    json_object_new_string(in->files[i].sha256));
		json_object_array_add(files, f);
	}
	json_object_object_add(root, "files", files);
	disks = json_object_new_array();
	for (i = 0; i < in->ndisks; i++) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "name", json_object_new_string(in->disks[i].name));
		json_object_object_add(d, "size", json_u64(in->disks[i].size));
		json_object_object_add(d, "capacity", json_u64(in->disks[i].capacity));
		if (in->format == OVA_FMT_OVA)
			json_object_object_add(d, "offset", json_u64(in->disks[i].offset));
		if (in->disks[i].sha256[0])
			json_object_object_add(d, "sha256",
			    json_object_new_string(in->disks[i].sha256));
		json_object_array_add(disks, d);
	}
	json_object_object_add(root, "disks", disks);
	if (in->meta != NULL) {
		meta = json_object_new_object();
		for (i = 0; i < in->meta->nkeys; i++)
			json_object_object_add(meta, in->meta->keys[i].key,
			    json_object_new_string(in->meta->keys[i].value));
		json_object_object_add(root, "meta", meta);
	}
	if (in->tar != NULL) {
		json_object *m = json_object_new_array();

		for (i = 0; i < in->tar->n; i++) {
			json_object *t = json_object_new_object();

			json_object_object_add(t, "name", json_object_new_string(in->tar->members[i].name));
			json_object_object_add(t, "offset", json_u64(in->tar->members[i].offset));
			json_object_object_add(t, "size", json_u64(in->tar->members[i].size));
			json_object_array_add(m, t);
		}
		json_object_object_add(root, "members", m);
	}
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return 0;
}

static int
run_inspect(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	struct ova_info *in = NULL;
	size_t i;

	if (ova_inspect(s, o->pos[0], &in, e) < 0)
		return fail(e);
	if (o->json) {
		inspect_json(in);
		ova_info_free(in);
		return 0;
	}
	printf("install_path: %s\nformat: %s\n", in->install_path, ova_format_name(in->format));
	printf("ovf: %s (%llu bytes)\n", in->ovf_name, (unsigned long long)in->ovf_size);
	for (i = 0; i < in->ndisks; i++) {
		printf("disk %zu: %s size %llu capacity %llu", i, in->disks[i].name,
		    (unsigned long long)in->disks[i].size,
		    (unsigned long long)in->disks[i].capacity);
		if (in->format == OVA_FMT_OVA)
			printf(" offset %llu", (unsigned long long)in->disks[i].offset);
		if (in->disks[i].sha256[0])
			printf(" sha256 %s", in->disks[i].sha256);
		printf("\n");
	}
	printf("virtual_size: %llu\nphysical_size: %llu\n", (unsigned long long)in->virtual_size,
	    (unsigned long long)in->physical_size);
	for (i = 0; i < in->nfiles; i++)
		printf("file: %s %llu\n", in->files[i].path, (unsigned long long)in->files[i].size);
	for (i = 0; in->meta != NULL && i < in->meta->nkeys; i++)
		printf("meta: %s=%s\n", in->meta->keys[i].key, in->meta->keys[i].value);
	for (i = 0; in->tar != NULL && i < in->tar->n; i++)
		printf("member: %s offset %llu size %llu\n", in->tar->members[i].name,
		    (unsigned long long)in->tar->members[i].offset,
		    (unsigned long long)in->tar->members[i].size);
	ova_info_free(in);
	return 0;
}

struct verify_walk {
	struct ova_store *s;
	unsigned flags;
	unsigned long objects, failed, debris;
};

static int
verify_one(const struct ova_entry *ent, void *arg)
{
	struct verify_walk *v = arg;
	struct sw_err e;

	if (ent->state == OVA_ENTRY_DEBRIS) {
		v->debris++;
		printf("%s: debris (%llu bytes; removed by the next attempt or snapworker sweep)\n",
		    ent->path, (unsigned long long)ent->physical_size);
		return 0;
	}
	v->objects++;
	sw_err_clear(&e);
	if (ent->state == OVA_ENTRY_BROKEN) {
		v->failed++;
		printf("%s: FAILED: %s\n", ent->path, ent->error);
	} else if (ova_verify(v->s, ent->path, v->flags, &e) < 0) {
		v->failed++;
		printf("%s: FAILED: %s\n", ent->path, e.msg[0] ? e.msg : sw_strerror(e.code));
	} else {
		printf("%s: ok\n", ent->path);
	}
	return 0;
}

/* Is path a directory beneath the root (then verify and ls walk it)? */
static int
is_store_dir(struct ova_store *s, const char *path)
{
	struct sw_err e;
	int fd;

	if (path == NULL || path[0] == '\0' || strcmp(path, ".") == 0)
		return 1;
	sw_err_clear(&e);
	if ((fd = sw_dir_open_beneath(ova_store_fd(s), path, 0, 0, &e)) < 0)
		return 0;
	(void)close(fd);
	return 1;
}

static int
run_verify(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	unsigned flags = o->no_digest ? OVA_VERIFY_NO_DIGEST : 0;
	struct verify_walk v = { s, flags, 0, 0, 0 };

	if (!is_store_dir(s, o->pos[0])) {
		if (ova_verify(s, o->pos[0], flags, e) < 0)
			return fail(e);
		printf("%s: ok\n", o->pos[0]);
		return 0;
	}
	if (ova_list(s, o->pos[0], verify_one, &v, e) < 0)
		return fail(e);
	printf("%lu objects verified: %lu ok, %lu failed; %lu debris files\n", v.objects,
	    v.objects - v.failed, v.failed, v.debris);
	return v.failed ? EXIT_FAILURE : 0;
}

static int
ls_text(const struct ova_entry *ent, void *arg)
{
	(void)arg;
	printf("%s\t%s\t%s\t%zu\t%llu\t%llu", ent->path, ova_entry_state_name(ent->state),
	    ent->format == OVA_FMT_ABSENT ? "-" : ova_format_name(ent->format), ent->ndisks,
	    (unsigned long long)ent->physical_size, (unsigned long long)ent->virtual_size);
	if (ent->state == OVA_ENTRY_BROKEN)
		printf("\t%s", ent->error);
	printf("\n");
	return 0;
}

static int
ls_json(const struct ova_entry *ent, void *arg)
{
	json_object *a = arg, *j = json_object_new_object();

	json_object_object_add(j, "path", json_object_new_string(ent->path));
	json_object_object_add(j, "state", json_object_new_string(ova_entry_state_name(ent->state)));
	json_object_object_add(j, "format", ent->format == OVA_FMT_ABSENT ? NULL :
	    json_object_new_string(ova_format_name(ent->format)));
	json_object_object_add(j, "disks", json_object_new_int64((int64_t)ent->ndisks));
	json_object_object_add(j, "physical_size", json_u64(ent->physical_size));
	json_object_object_add(j, "virtual_size", json_u64(ent->virtual_size));
	if (ent->state == OVA_ENTRY_BROKEN)
		json_object_object_add(j, "error", json_object_new_string(ent->error));
	json_object_array_add(a, j);
	return 0;
}

static int
run_ls(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	const char *dir = o->npos > 0 ? o->pos[0] : "";
	json_object *a;

	if (!is_store_dir(s, dir)) {
		fprintf(stderr, "ovastore: '%s' is not a directory of the store\n", dir);
		return EXIT_FAILURE;
	}
	if (!o->json)
		return ova_list(s, dir, ls_text, NULL, e) < 0 ? fail(e) : 0;
	a = json_object_new_array();
	if (ova_list(s, dir, ls_json, a, e) < 0) {
		json_object_put(a);
		return fail(e);
	}
	printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
	return 0;
}

static int
run_pack(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	char dir[SW_PATH_MAX], base[SW_NAME_MAX + 1];
	const char *out = o->pos[1];
	const char *slash;
	uint64_t size = 0;
	int dfd, r;

	if (strcmp(out, "-") == 0) {
		if (isatty(STDOUT_FILENO)) {
			fprintf(stderr, "ovastore: refusing to write an OVA to a terminal\n");
			return EXIT_USAGE;
		}
		if (ova_pack_fd(s, o->pos[0], STDOUT_FILENO, 0, &size, e) < 0)
			return fail(e);
		return 0;
	}
	/* OUT is the operator's path: its directory is opened as given, the file made atomically. */
	slash = strrchr(out, '/');
	if (slash == NULL) {
		dir[0] = '.';
		dir[1] = '\0';
		slash = out - 1;
	} else if (sw_path_fmt(dir, sizeof(dir), "%.*s", (int)(slash - out), out) < 0) {
		fprintf(stderr, "ovastore: output path too long\n");
		return EXIT_FAILURE;
	}
	if (dir[0] == '\0')
		memcpy(dir, "/", 2);
	if (sw_path_fmt(base, sizeof(base), "%s", slash + 1) < 0 || base[0] == '\0') {
		fprintf(stderr, "ovastore: bad output path '%s'\n", out);
		return EXIT_USAGE;
	}
	if ((dfd = sw_root_open(dir, e)) < 0)
		return fail(e);
	r = ova_pack_at(s, o->pos[0], dfd, base, 0, &size, e);
	(void)close(dfd);
	if (r < 0)
		return fail(e);
	printf("%s\t%llu\n", out, (unsigned long long)size);
	return 0;
}

static int
run_unpack(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	struct ova_result *res = NULL;
	int fd = STDIN_FILENO, r;

	if (strcmp(o->pos[0], "-") != 0 && (fd = open(o->pos[0], O_RDONLY | O_CLOEXEC)) < 0) {
		sw_errno(e, errno, "open '%s'", o->pos[0]);
		return fail(e);
	}
	r = ova_unpack_fd(s, o->pos[1], fd, o->no_digest ? OVA_UNPACK_NO_SHA256 : 0, &res, e);
	if (fd != STDIN_FILENO)
		(void)close(fd);
	if (r < 0)
		return fail(e);
	print_result(res);
	ova_result_free(res);
	return 0;
}

static int
run_commit(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	struct ova_result *res = NULL;

	if (ova_commit_files(s, o->pos[0], o->no_digest ? OVA_COMMIT_NO_SHA256 : 0, &res, e) < 0)
		return fail(e);
	print_result(res);
	ova_result_free(res);
	return 0;
}

/* Prints every removed path, one a line (relative to the root, as events list them). */
static int
run_delete(struct ova_store *s, struct opts *o, struct sw_err *e)
{
	struct ova_result *res = NULL;
	size_t i;
	int r;

	if (o->rule == 'T')
		r = ova_delete_template(s, o->pos[0], &res, e);
	else if (o->rule == 'S')
		r = ova_delete_snapshot(s, o->pos[0], &res, e);
	else
		r = ova_delete(s, o->pos[0], &res, e);
	if (r < 0)
		return fail(e);
	for (i = 0; i < res->nfiles; i++)
		printf("%s\n", res->files[i].path);
	ova_result_free(res);
	return 0;
}

static const struct cmd cmds[] = {
	{ "ls", "ls [--json] [DIR]",
	  "list the objects under DIR (default: the whole store), one per line:\n"
	  "PATH STATE FORMAT DISKS PHYSICAL VIRTUAL [ERROR], tab-separated; STATE is\n"
	  "committed, legacy, broken or debris", 1, run_ls, 0, 1 },
	{ "inspect", "inspect [--json] DIR/NAME",
	  "format, files with sizes, meta keys, disks, virtual size", 1, run_inspect, 1, 1 },
	{ "verify", "verify [--no-digest] DIR/NAME|DIR",
	  "sizes vs meta, OVF parses and references exactly the disks, sha256 where recorded,\n"
	  "tar readable; given a directory, every object under it (exit 1 if one fails)", 1,
	  run_verify, 1, 1 },
	{ "pack", "pack DIR/NAME OUT.ova|-", "generate an OVA from either format (atomically to a file)",
	  2, run_pack, 2, 1 },
	{ "unpack", "unpack [--no-digest] IN.ova|- DIR/NAME",
	  "store an OVA in the new format (.mf verified; --no-digest: no diskK.sha256)", 2,
	  run_unpack, 2, 2 },
	{ "commit", "commit [--no-digest] DIR/NAME",
	  "write NAME.ova.meta for existing NAME.ovf + the disks its OVF references", 1,
	  run_commit, 1, 1 },
	{ "delete", "delete [--template|--snapshot] DIR/NAME",
	  "delete either format and print every removed path: by default the files the meta\n"
	  "lists (a broken meta is refused); --template every file of the template directory\n"
	  "and the directory, --snapshot the files of DIR whose name holds NAME, as\n"
	  "CloudStack's DeleteTemplate and DeleteSnapshot do (the worker's rules)", 1,
	  run_delete, 1, 1 },
	{ "rm", "rm [--template|--snapshot] DIR/NAME", "the same as delete", 1, run_delete, 1, 1 },
};

/*
 * Absolute store paths.  norm gets ABS with empty and "." components dropped
 * ("..": refused, the path must name what it means); returns its length.
 */
static int
normalize_abs(const char *abs, char *norm, size_t normsz)
{
	const char *p = abs, *q;
	size_t l = 0;

	while (*p != '\0') {
		size_t n;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		q = strchr(p, '/');
		n = q ? (size_t)(q - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			fprintf(stderr, "ovastore: '%s': '..' in a store path; give the path without it\n",
			    abs);
			return -1;
		}
		if (!(n == 1 && p[0] == '.')) {
			if (l + 1 + n + 1 > normsz) {
				fprintf(stderr, "ovastore: '%.64s...': path too long\n", abs);
				return -1;
			}
			norm[l++] = '/';
			memcpy(norm + l, p, n);
			l += n;
		}
		p += n;
	}
	if (l == 0)
		norm[l++] = '/';
	norm[l] = '\0';
	return (int)l;
}

/* Is prefix (normalized, absolute) a leading directory of (or equal to) path? */
static const char *
under(const char *path, const char *prefix)
{
	size_t l = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return path + 1;
	if (strncmp(path, prefix, l) != 0 || (path[l] != '/' && path[l] != '\0'))
		return NULL;
	return path[l] == '/' ? path + l + 1 : path + l;
}

static int
is_dir_nofollow(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Derives the store root of an absolute, normalized path: the nearest
 * directory above it (or the path itself) that holds the workers' records
 * (.snapworker), else the parent of its last snapshots/, template/ or
 * volumes/ component.  root gets it; returns 0, or -1 when neither exists.
 */
static int
derive_root(const char *norm, char *root, size_t rootsz)
{
	char cand[PATH_MAX + 16];
	const char *p, *last = NULL;
	size_t l = strlen(norm);

	for (;;) {
		if (snprintf(cand, sizeof(cand), "%.*s/.snapworker", (int)l, norm) <
		    (int)sizeof(cand) && is_dir_nofollow(cand)) {
			snprintf(root, rootsz, "%.*s", l ? (int)l : 1, l ? norm : "/");
			return 0;
		}
		if (l == 0)
			break;
		while (l > 0 && norm[l - 1] != '/')
			l--;
		if (l > 0)
			l--;          /* drop the slash: the parent directory */
	}
	for (p = norm; (p = strchr(p, '/')) != NULL; p++) {
		const char *c = p + 1;
		size_t n = strcspn(c, "/");

		if ((n == 9 && strncmp(c, "snapshots", 9) == 0) ||
		    (n == 8 && strncmp(c, "template", 8) == 0) ||
		    (n == 7 && strncmp(c, "volumes", 7) == 0))
			last = p;
	}
	if (last == NULL)
		return -1;
	snprintf(root, rootsz, "%.*s", last == norm ? 1 : (int)(last - norm), norm);
	return 0;
}

/*
 * An absolute store path on the command line: checked against -C ROOT (as
 * given, made absolute, and as resolved), or its root derived; *arg becomes
 * the path relative to the root.  Returns 0, or EXIT_USAGE after a message.
 */
static int
resolve_abs(struct opts *o, const char **arg)
{
	static char roots[2][PATH_MAX], rels[2][PATH_MAX];
	static int used;
	char norm[PATH_MAX], cand[PATH_MAX], cwd[PATH_MAX];
	const char *rel = NULL;

	if (used >= 2 || normalize_abs(*arg, norm, sizeof(norm)) < 0)
		return EXIT_USAGE;
	if (o->root_given) {
		if (o->root[0] == '/')
			snprintf(cwd, sizeof(cwd), "%s", o->root);
		else if (getcwd(cand, sizeof(cand)) == NULL ||
		    snprintf(cwd, sizeof(cwd), "%s/%s", cand, o->root) >= (int)sizeof(cwd))
			cwd[0] = '\0';
		if (cwd[0] != '\0' && normalize_abs(cwd, cand, sizeof(cand)) > 0)
			rel = under(norm, cand);
		if (rel == NULL && realpath(o->root, cand) != NULL)
			rel = under(norm, cand);
		if (rel == NULL) {
			fprintf(stderr, "ovastore: '%s' is not under the store root '%s'\n", *arg,
			    o->root);
			return EXIT_USAGE;
		}
	} else {
		if (derive_root(norm, roots[used], sizeof(roots[used])) < 0) {
			fprintf(stderr, "ovastore: cannot tell the store root of '%s' (no .snapworker "
			    "directory above it, no snapshots/, template/ or volumes/ in it): give "
			    "it with -C ROOT\n", *arg);
			return EXIT_USAGE;
		}
		rel = under(norm, roots[used]);
		o->root = roots[used];
		o->root_given = 1;  /* a second absolute path must lie under the same root */
	}
	snprintf(rels[used], sizeof(rels[used]), "%s", rel[0] ? rel : ".");
	*arg = rels[used++];
	return 0;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ovastore --help | --version\n"
	    "       ovastore [-C ROOT] COMMAND [ARGS]\n"
	    "  -C, --root ROOT   store root (default: the current directory);\n"
	    "                    DIR/NAME is relative to it.  An absolute DIR/NAME must\n"
	    "                    lie under ROOT; without -C its root is derived (the\n"
	    "                    nearest directory above it holding .snapworker, else\n"
	    "                    the directory above its snapshots/, template/ or volumes/)\n"
	    "\ncommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  ovastore %s\n", cmds[i].usage);
	fprintf(f, "\n'ovastore COMMAND --help' describes one command.\n");
}

static void
cmd_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "usage: ovastore [-C ROOT] %s\n%s\n", c->usage, c->help);
}

int
main(int argc, char **argv)
{
	const struct cmd *c = NULL;
	struct ova_store *s = NULL;
	struct opts o;
	struct sw_err e;
	int i, r;

	memset(&o, 0, sizeof(o));
	sw_err_clear(&e);
	o.root = ".";
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-C") == 0 || strcmp(a, "--root") == 0) {
			if (++i >= argc) {
				fprintf(stderr, "ovastore: %s needs a directory\n", a);
				return EXIT_USAGE;
			}
			o.root = argv[i];
			o.root_given = 1;
		} else if (strncmp(a, "--root=", 7) == 0) {
			o.root = a + 7;
			o.root_given = 1;
		} else if (strcmp(a, "--version") == 0) {
			printf("ovastore %s\n", SW_VERSION);
			return 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			if (c != NULL)
				cmd_usage(stdout, c);
			else
				usage(stdout);
			return 0;
		} else if (c == NULL && a[0] != '-') {
			size_t k;

			for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
				if (strcmp(a, cmds[k].name) == 0)
					c = &cmds[k];
			if (c == NULL) {
				fprintf(stderr, "ovastore: unknown command '%s'\n", a);
				usage(stderr);
				return EXIT_USAGE;
			}
		} else if (c != NULL && strcmp(a, "--json") == 0 &&
		    (c->run == run_inspect || c->run == run_ls)) {
			o.json = 1;
		} else if (c != NULL && strcmp(a, "--no-digest") == 0 &&
		    (c->run == run_verify || c->run == run_commit || c->run == run_unpack)) {
			o.no_digest = 1;
		} else if (c != NULL && c->run == run_delete && o.rule == 0 &&
		    (strcmp(a, "--template") == 0 || strcmp(a, "--snapshot") == 0)) {
			o.rule = a[2] == 't' ? 'T' : 'S';
		} else if (c != NULL && (a[0] != '-' || strcmp(a, "-") == 0)) {
			if (o.npos >= c->npos) {
				fprintf(stderr, "ovastore %s: too many arguments\n", c->name);
				cmd_usage(stderr, c);
				return EXIT_USAGE;
			}
			o.pos[o.npos++] = a;
		} else {
			fprintf(stderr, "ovastore: unknown option '%s'\n", a);
			if (c != NULL)
				cmd_usage(stderr, c);
			else
				usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (c == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.npos < c->minpos) {
		fprintf(stderr, "ovastore %s: missing arguments\n", c->name);
		cmd_usage(stderr, c);
		return EXIT_USAGE;
	}
	for (i = 0; i < o.npos; i++)
		if ((c->storepos & (1u << i)) && o.pos[i][0] == '/' &&
		    (r = resolve_abs(&o, &o.pos[i])) != 0)
			return r;
	if (ova_store_open(o.root, &s, &e) < 0)
		return fail(&e);
	r = c->run(s, &o, &e);
	ova_store_close(s);
	if (fflush(stdout) != 0 && r == 0) {
		fprintf(stderr, "ovastore: write to stdout failed\n");
		r = EXIT_FAILURE;
	}
	return r;
}
