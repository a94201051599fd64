/*
 * The worker's records on a store (see state.h): vCenter crash journals,
 * CreateVolume markers, and the walk over the state directories the
 * sweeper uses.
 */
#include "ovastore/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/path.h"
#include "ovastore/ova_int.h"

#define STATE_MAX_ENTRIES 100000

static const struct {
	const char *dir;
	const char *suffix;
} kinds[] = {
	[OVA_STATE_JOURNAL] = { OVA_JOURNAL_DIR, OVA_JOURNAL_SUFFIX },
	[OVA_STATE_MARKER] = { OVA_MARKER_DIR, OVA_MARKER_SUFFIX },
	[OVA_STATE_LOCK] = { OVA_LOCK_DIR, OVA_LOCK_SUFFIX },
};

static int
id_ok(const char *id)
{
	return id != NULL && id[0] != '\0' && id[0] != '.' && strlen(id) <= OVA_STATE_ID_MAX &&
	    sw_name_check(id, NULL) == 0;
}

int
ova__state_file(enum ova_state_kind kind, const char *id, char *out, size_t outsz,
    struct sw_err *e)
{
	if (!id_ok(id))
		return sw_errf(e, SW_EFORMAT, "'%s': not a command id", id != NULL ? id : "");
	if (snprintf(out, outsz, "%s%s", id, kinds[kind].suffix) >= (int)outsz)
		return sw_errf(e, SW_EPATH, "'%s': name too long", id);
	return 0;
}

int
ova__state_dir_open(struct ova_store *s, enum ova_state_kind kind, int create,
    struct sw_err *e)
{
	int fd = sw_dir_open_beneath(s->rootfd, kinds[kind].dir, create, 0755, e);

	if (fd == -ENOENT)
		return sw_errf(e, SW_ENOTFOUND, "no %s", kinds[kind].dir);
	return fd;
}

/* Opens kind's directory and names id's file in it; SW_ENOTFOUND without the directory. */
static int
state_open(struct ova_store *s, enum ova_state_kind kind, const char *id, int create,
    char *file, size_t filesz, struct sw_err *e)
{
	int r;

	if ((r = ova__state_file(kind, id, file, filesz, e)) < 0)
		return r;
	return ova__state_dir_open(s, kind, create, e);
}

/* Reads file of dfd (at most max bytes) into b; SW_ENOTFOUND when absent. */
static int
state_read(int dfd, const char *file, size_t max, struct sw_buf *b, struct sw_err *e)
{
	int r = ova__exists(dfd, file);

	if (r == 0)
		return sw_errf(e, SW_ENOTFOUND, "no '%s'", file);
	if (r < 0)
		return sw_errno(e, -r, "'%s'", file);
	return ova__read_file(dfd, file, max, b, e);
}

static int
state_remove(struct ova_store *s, enum ova_state_kind kind, const char *id, struct sw_err *e)
{
	char file[SW_NAME_MAX + 1];
	int dfd, r;

	dfd = state_open(s, kind, id, 0, file, sizeof(file), e);
	if (dfd == SW_ENOTFOUND)
		return 0;
	if (dfd < 0)
		return dfd;
	r = ova__unlink(dfd, file, file, e);
	if (r > 0)
		(void)ova__fsync_dir(dfd, kinds[kind].dir, NULL);
	(void)close(dfd);
	return r < 0 ? r : 0;
}

static int
state_mtime(int dfd, const char *file, int64_t *ret_mtime, struct sw_err *e)
{
	struct stat st;

	if (fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? sw_errf(e, SW_ENOTFOUND, "no '%s'", file) :
		    sw_errno(e, errno, "'%s'", file);
	*ret_mtime = (int64_t)st.st_mtime;
	return 0;
}

/* ------------------------------------------------------------- journal */

/* A value: no control character (so no line break), bounded. */
static int
copy_val(char *dst, size_t dstsz, const char *key, const char *v, size_t n, struct sw_err *e)
{
	size_t i;

	if (n >= dstsz)
		return sw_errf(e, SW_EFORMAT, "journal: %s too long", key);
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return sw_errf(e, SW_EFORMAT, "journal: %s: control character", key);
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

int
ova_journal_parse(const void *buf, size_t len, struct ova_journal *ret_j, struct sw_err *e)
{
	static const struct {
		const char *key;
		size_t off, size;
	} fields[] = {
		{ "command", offsetof(struct ova_journal, command), OVA_STATE_ID_MAX + 1 },
		{ "credentials", offsetof(struct ova_journal, credentials), 80 },
		{ "url", offsetof(struct ova_journal, url), 2049 },
		{ "vm", offsetof(struct ova_journal, vm), 256 },
		{ "snapshot", offsetof(struct ova_journal, snapshot), 256 },
		{ "object", offsetof(struct ova_journal, object), 1024 },
		{ "lease", offsetof(struct ova_journal, lease), 256 },
	};
	struct ova_journal j;
	const char *p = buf, *end, *eol, *eq;
	size_t i;
	int r;

	if (len > OVA_JOURNAL_MAX)
		return sw_errf(e, SW_ETOOBIG, "journal: larger than %d bytes", OVA_JOURNAL_MAX);
	if (len > 0 && memchr(buf, '\0', len) != NULL)
		return sw_errf(e, SW_EFORMAT, "journal: NUL byte");
	memset(&j, 0, sizeof(j));
	for (end = p + len; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		eq = memchr(p, '=', (size_t)(eol - p));
		if (eq == NULL) {
			if (eol != p)
				return sw_errf(e, SW_EFORMAT, "journal: a line without '='");
			continue;
		}
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if ((size_t)(eq - p) == strlen(fields[i].key) &&
			    memcmp(p, fields[i].key, (size_t)(eq - p)) == 0)
				break;
		if (i < sizeof(fields) / sizeof(fields[0]) &&
		    (r = copy_val((char *)&j + fields[i].off, fields[i].size, fields[i].key,
		    eq + 1, (size_t)(eol - eq - 1), e)) < 0)
			return r;
	}
	if (j.vm[0] == '\0')
		return sw_errf(e, SW_EFORMAT, "journal: no vm");
	*ret_j = j;
	return 0;
}

static int
check_val(const char *key, const char *v, struct sw_err *e)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return sw_errf(e, SW_EFORMAT, "journal: %s: control character", key);
	return 0;
}

int
ova_journal_format(const struct ova_journal *j, struct sw_buf *out, struct sw_err *e)
{
	int r;

	if (j->vm[0] == '\0')
		return sw_errf(e, SW_EFORMAT, "journal: no vm");
	if ((r = check_val("command", j->command, e)) < 0 ||
	    (r = check_val("credentials", j->credentials, e)) < 0 ||
	    (r = check_val("url", j->url, e)) < 0 || (r = check_val("vm", j->vm, e)) < 0 ||
	    (r = check_val("snapshot", j->snapshot, e)) < 0 ||
	    (r = check_val("object", j->object, e)) < 0 ||
	    (r = check_val("lease", j->lease, e)) < 0)
		return r;
	r = sw_buf_addf(out, "command=%s\ncredentials=%s\nurl=%s\nvm=%s\nsnapshot=%s\nobject=%s\n",
	    j->command, j->credentials, j->url, j->vm, j->snapshot, j->object);
	/* Only while an export lease is open: older releases' journals have none. */
	if (r == 0 && j->lease[0] != '\0')
		r = sw_buf_addf(out, "lease=%s\n", j->lease);
	if (r < 0)
		return sw_errf(e, r == -ENOMEM ? r : SW_ETOOBIG, "journal too long");
	return 0;
}

int
ova_journal_write(struct ova_store *s, const struct ova_journal *j, struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_JOURNAL_MAX);
	char file[SW_NAME_MAX + 1];
	int dfd, r;

	if ((r = ova_journal_format(j, &b, e)) < 0)
		goto out;
	if ((dfd = state_open(s, OVA_STATE_JOURNAL, j->command, 1, file, sizeof(file), e)) < 0) {
		r = dfd;
		goto out;
	}
	/* The snapshot must not exist unless a durable journal names its VM. */
	r = ova_atomic_write(dfd, file, b.ptr, b.len, file, e);
	if (r < 0)
		sw_errctx(e, "journal");
	(void)close(dfd);
out:
	sw_buf_free(&b);
	return r;
}

static int
journal_read_at(int dfd, const char *file, struct ova_journal *ret_j, struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_JOURNAL_MAX);
	int r;

	r = state_read(dfd, file, OVA_JOURNAL_MAX, &b, e);
	if (r == 0 && (r = ova_journal_parse(b.ptr != NULL ? b.ptr : "", b.len, ret_j, e)) < 0)
		sw_errctx(e, "'%s'", file);
	sw_buf_free(&b);
	return r;
}

int
ova_journal_read(struct ova_store *s, const char *id, struct ova_journal *ret_j,
    struct sw_err *e)
{
	char file[SW_NAME_MAX + 1];
	int dfd, r;

	if ((dfd = state_open(s, OVA_STATE_JOURNAL, id, 0, file, sizeof(file), e)) < 0)
		return dfd == SW_ENOTFOUND ? sw_errf(e, SW_ENOTFOUND, "no journal") : dfd;
	r = journal_read_at(dfd, file, ret_j, e);
	(void)close(dfd);
	return r;
}

int
ova_journal_remove(struct ova_store *s, const char *id, struct sw_err *e)
{
	return state_remove(s, OVA_STATE_JOURNAL, id, e);
}

void
ova_journal_touch(struct ova_store *s, const char *id, int abandon)
{
	struct timespec ts[2] = { { 0, 0 }, { 0, 0 } };
	char file[SW_NAME_MAX + 1];
	int dfd;

	if ((dfd = state_open(s, OVA_STATE_JOURNAL, id, 0, file, sizeof(file), NULL)) < 0)
		return;
	(void)utimensat(dfd, file, abandon ? ts : NULL, AT_SYMLINK_NOFOLLOW);
	(void)close(dfd);
}

int
ova_journal_mtime(struct ova_store *s, const char *id, int64_t *ret_mtime, struct sw_err *e)
{
	char file[SW_NAME_MAX + 1];
	int dfd, r;

	if ((dfd = state_open(s, OVA_STATE_JOURNAL, id, 0, file, sizeof(file), e)) < 0)
		return dfd;
	r = state_mtime(dfd, file, ret_mtime, e);
	(void)close(dfd);
	return r;
}

/* obj's directory and its legacy journal's name; SW_ENOTFOUND without the directory. */
static int
legacy_open(struct ova_store *s, const char *obj, struct ova__obj *o, char *file,
    size_t filesz, struct sw_err *e)
{
	int r;

	if ((r = ova__obj_open(s, obj, 0, o, e)) < 0)
		return r;
	if (o->dirfd < 0 || (r = ova__fname(o, OVA_JOURNAL_LEGACY_SUFFIX, file, filesz, e)) < 0) {
		ova__obj_close(o);
		return o->dirfd < 0 ? sw_errf(e, SW_ENOTFOUND, "no journal") : r;
	}
	return 0;
}

int
ova_journal_legacy_read(struct ova_store *s, const char *obj, struct ova_journal *ret_j,
    struct sw_err *e)
{
	char file[SW_NAME_MAX + 1];
	struct ova__obj o;
	int r;

	if ((r = legacy_open(s, obj, &o, file, sizeof(file), e)) < 0)
		return r;
	r = journal_read_at(o.dirfd, file, ret_j, e);
	if (r == SW_ENOTFOUND)
		r = sw_errf(e, SW_ENOTFOUND, "no journal");
	ova__obj_close(&o);
	return r;
}

int
ova_journal_legacy_remove(struct ova_store *s, const char *obj, struct sw_err *e)
{
	char file[SW_NAME_MAX + 1];
	struct ova__obj o;
	int r;

	if ((r = legacy_open(s, obj, &o, file, sizeof(file), e)) < 0)
		return r == SW_ENOTFOUND ? 0 : r;
	r = ova__unlink(o.dirfd, file, file, e);
	ova__obj_close(&o);
	return r < 0 ? r : 0;
}

int
ova_journal_legacy_mtime(struct ova_store *s, const char *obj, int64_t *ret_mtime,
    struct sw_err *e)
{
	char file[SW_NAME_MAX + 1];
	struct ova__obj o;
	int r;

	if ((r = legacy_open(s, obj, &o, file, sizeof(file), e)) < 0)
		return r;
	r = state_mtime(o.dirfd, file, ret_mtime, e);
	ova__obj_close(&o);
	return r;
}

/* -------------------------------------------------------------- markers */

int
ova_marker_parse(const void *buf, size_t len, char *out, size_t outsz, struct sw_err *e)
{
	const char *p = buf, *nl;
	size_t i;

	if (len > OVA_MARKER_MAX)
		return sw_errf(e, SW_ETOOBIG, "marker: larger than %d bytes", OVA_MARKER_MAX);
	nl = len > 0 ? memchr(p, '\n', len) : NULL;
	if (nl == NULL || p[0] != '[' || (size_t)(nl - p) + 1 != len)
		return sw_errf(e, SW_EFORMAT, "not a CreateVolume marker");
	for (i = 0; p + i < nl; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return sw_errf(e, SW_EFORMAT, "marker: control character");
	if ((size_t)(nl - p) >= outsz)
		return sw_errf(e, SW_ETOOBIG, "marker: value too long");
	memcpy(out, p, (size_t)(nl - p));
	out[nl - p] = '\0';
	return 0;
}

int
ova_marker_write(struct ova_store *s, const char *id, const char *value, struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_MARKER_MAX);
	char file[SW_NAME_MAX + 1], check[OVA_MARKER_MAX];
	int dfd, r;

	if ((r = sw_buf_addf(&b, "%s\n", value)) < 0) {
		r = sw_errf(e, SW_ETOOBIG, "marker too long");
		goto out;
	}
	if ((r = ova_marker_parse(b.ptr, b.len, check, sizeof(check), e)) < 0)
		goto out;
	if ((dfd = state_open(s, OVA_STATE_MARKER, id, 1, file, sizeof(file), e)) < 0) {
		r = dfd;
		goto out;
	}
	r = ova_atomic_write(dfd, file, b.ptr, b.len, file, e);
	(void)close(dfd);
out:
	sw_buf_free(&b);
	return r;
}

int
ova_marker_read(struct ova_store *s, const char *id, char *out, size_t outsz,
    struct sw_err *e)
{
	struct sw_buf b = SW_BUF_INIT(OVA_MARKER_MAX);
	char file[SW_NAME_MAX + 1];
	int dfd, r;

	if ((dfd = state_open(s, OVA_STATE_MARKER, id, 0, file, sizeof(file), e)) < 0)
		return dfd;
	r = state_read(dfd, file, OVA_MARKER_MAX, &b, e);
	if (r == 0 && (r = ova_marker_parse(b.ptr != NULL ? b.ptr : "", b.len, out, outsz, e)) < 0)
		sw_errctx(e, "'%s'", file);
	(void)close(dfd);
	sw_buf_free(&b);
	return r;
}

int
ova_marker_remove(struct ova_store *s, const char *id, struct sw_err *e)
{
	return state_remove(s, OVA_STATE_MARKER, id, e);
}

/* ----------------------------------------------------------------- walk */

int
ova_state_each(struct ova_store *s, enum ova_state_kind kind, ova_state_each_fn fn,
    void *ud, struct sw_err *e)
{
	const char *suf = kinds[kind].suffix;
	char id[SW_NAME_MAX + 1];
	struct dirent *de;
	struct stat st;
	size_t n, sl = strlen(suf);
	unsigned count = 0;
	DIR *d;
	int dfd, r = 0;

	dfd = ova__state_dir_open(s, kind, 0, e);
	if (dfd == SW_ENOTFOUND)
		return 0;
	if (dfd < 0)
		return dfd;
	if ((d = fdopendir(dfd)) == NULL) {
		r = sw_errno(e, errno, "read '%s'", kinds[kind].dir);
		(void)close(dfd);
		return r;
	}
	while (r == 0 && (de = readdir(d)) != NULL && count++ < STATE_MAX_ENTRIES) {
		n = strlen(de->d_name);
		if (n <= sl || strcmp(de->d_name + n - sl, suf) != 0)
			continue;
		memcpy(id, de->d_name, n - sl);
		id[n - sl] = '\0';
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    !id_ok(id))
			continue;
		r = fn(ud, id, (int64_t)st.st_mtime);
	}
	(void)closedir(d);
	return r;
}
