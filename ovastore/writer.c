/*
 * The writer of new-format objects and its commit protocol: every data file
 * is written as a temporary (.part), fsynced and renamed into place; the
 * meta file comes last (temporary, fsync, rename, fsync of the directory).
 * Until the meta file exists the object does not exist, so a crash at any
 * point leaves only debris that ova_debris_remove()/ova_delete() recognise.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "common/props.h"
#include "ovastore/ova_int.h"

#define ZERO_CHUNK 65536
/* Blocks at least this large are hashed on the helper thread while they are written. */
#define HASH_ASYNC_MIN (128 * 1024)

/*
 * A helper thread that digests a block while the caller's thread writes the
 * same block: sha256 and the write then cost max() instead of the sum.  The
 * block stays the caller's; the sink call returns only when both are done,
 * so no copy and no extra memory is needed.
 */
struct hasher {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sw_hash *h;        /* job: digest p[0..n) into h */
	const void *p;
	size_t n;
	int job;                  /* a job is posted and not yet done */
	int err;
	int quit;
};

struct wfile {
	struct ova_writer *w;
	char name[SW_NAME_MAX + 1];      /* final name in DIR */
	char tmp[SW_NAME_MAX + 1];       /* temporary name in DIR */
	int fd;
	uint64_t size;
	struct sw_hash *hash;            /* NULL when off or finished */
	char sha256[OVA_SHA256_HEX];
	int renamed;                     /* the final name exists and is ours */
};

struct wkv {
	char *key;
	char *value;
};

struct ova_writer {
	struct ova__obj o;
	unsigned flags;
	struct wfile disks[OVA_MAX_DISKS];
	size_t ndisks;
	struct wfile ovf;
	int have_ovf;
	struct ova_ovf *parsed;          /* the OVF, NULL when it did not parse (NO_OVF_CHECK) */
	struct wkv *extra;
	size_t nextra;
	int failed;                      /* a sink failed: commit is refused */
	int committed;
	int meta_renamed;
	char meta_name[SW_NAME_MAX + 1];
	struct hasher *hasher;           /* NULL until needed, or when threads are unavailable */
	int hasher_failed;
};

static const unsigned char zeros[ZERO_CHUNK];

static void writer_discard(struct ova_writer *w);

static void
wfile_init(struct wfile *f, struct ova_writer *w)
{
	memset(f, 0, sizeof(*f));
	f->w = w;
	f->fd = -1;
}

int
ova_writer_begin(struct ova_store *s, const char *obj, unsigned flags,
    struct ova_writer **ret_writer, struct sw_err *e)
{
	struct ova_writer *w;
	enum ova_format f;
	size_t i;
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	w->flags = flags;
	w->o.dirfd = -1;
	for (i = 0; i < OVA_MAX_DISKS; i++)
		wfile_init(&w->disks[i], w);
	wfile_init(&w->ovf, w);
	if ((r = ova__obj_open(s, obj, 1, &w->o, e)) < 0)
		goto fail;
	if ((r = ova_detect(s, obj, &f, e)) < 0)
		goto fail;
	if (f != OVA_FMT_ABSENT) {
		r = sw_errf(e, SW_EEXIST, "object '%s' exists (%s format)", w->o.install,
		    ova_format_name(f));
		goto fail;
	}
	if ((r = ova__fname(&w->o, ".ova.meta", w->meta_name, sizeof(w->meta_name), e)) < 0)
		goto fail;
	if ((r = ova_debris_remove(s, obj, e)) < 0)
		goto fail;
	*ret_writer = w;
	return 0;
fail:
	w->committed = 1; /* nothing of ours to remove */
	ova_writer_free(w);
	return r;
}

/* Checks a caller's file name and that no file of this writer has it yet. */
static int
check_new_name(struct ova_writer *w, const char *name, struct sw_err *e)
{
	char ova[SW_NAME_MAX + 1];
	size_t i;
	int r;

	if ((r = sw_name_check(name, e)) < 0)
		return r;
	if (ova__name_reserved(name))
		return sw_errf(e, SW_EPATH, "file name '%s' ends in .meta or .part", name);
	if ((r = ova__fname(&w->o, ".ova", ova, sizeof(ova), e)) < 0)
		return r;
	if (strcmp(name, ova) == 0 || strcmp(name, w->meta_name) == 0)
		return sw_errf(e, SW_EPATH, "file name '%s' is reserved for the object", name);
	for (i = 0; i < w->ndisks; i++)
		if (strcmp(w->disks[i].name, name) == 0)
			return sw_errf(e, SW_EEXIST, "file '%s' written twice", name);
	if (w->have_ovf && strcmp(w->ovf.name, name) == 0)
		return sw_errf(e, SW_EEXIST, "file '%s' written twice", name);
	return 0;
}

/* Names the file and its temporary, and creates the temporary. */
static int
wfile_open(struct ova_writer *w, struct wfile *f, const char *name, const char *defsuffix,
    struct sw_err *e)
{
	int r;

	if (name == NULL) {
		if ((r = ova__fname(&w->o, defsuffix, f->name, sizeof(f->name), e)) < 0)
			return r;
		if (sw_path_fmt(f->tmp, sizeof(f->tmp), "%s.part", f->name) < 0)
			return sw_errf(e, SW_EPATH, "'%s': name too long", f->name);
	} else {
		if ((r = check_new_name(w, name, e)) < 0)
			return r;
		memcpy(f->name, name, strlen(name) + 1);
		/* NAME~file.part ties the temporary to its object for debris removal. */
		if (sw_path_fmt(f->tmp, sizeof(f->tmp), "%s~%s.part", w->o.name, name) < 0 ||
		    strlen(f->tmp) > SW_NAME_MAX)
			return sw_errf(e, SW_EPATH, "'%s': name too long for a temporary", name);
	}
	if (!(w->flags & OVA_WRITER_NO_SHA256) && (f->hash = sw_hash_new("sha256")) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	/* O_EXCL: a concurrent writer of the same object fails instead of interleaving. */
	f->fd = ova__open(w->o.dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, e);
	if (f->fd < 0) {
		r = f->fd;
		f->fd = -1;
		sw_hash_free(f->hash);
		f->hash = NULL;
		return r;
	}
	return 0;
}

static void *
hasher_main(void *arg)
{
	struct hasher *hs = arg;

	pthread_mutex_lock(&hs->mu);
	for (;;) {
		while (!hs->job && !hs->quit)
			pthread_cond_wait(&hs->cv, &hs->mu);
		if (hs->quit)
			break;
		pthread_mutex_unlock(&hs->mu);
		hs->err = sw_hash_update(hs->h, hs->p, hs->n);
		pthread_mutex_lock(&hs->mu);
		hs->job = 0;
		pthread_cond_broadcast(&hs->cv);
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

static struct hasher *
hasher_get(struct ova_writer *w)
{
	struct hasher *hs;

	if (w->hasher != NULL || w->hasher_failed)
		return w->hasher;
	if ((hs = calloc(1, sizeof(*hs))) == NULL)
		goto fail;
	if (pthread_mutex_init(&hs->mu, NULL) != 0) {
		free(hs);
		goto fail;
	}
	if (pthread_cond_init(&hs->cv, NULL) != 0) {
		pthread_mutex_destroy(&hs->mu);
		free(hs);
		goto fail;
	}
	if (pthread_create(&hs->th, NULL, hasher_main, hs) != 0) {
		pthread_cond_destroy(&hs->cv);
		pthread_mutex_destroy(&hs->mu);
		free(hs);
		goto fail;
	}
	w->hasher = hs;
	return hs;
fail:
	/* Without a thread the digest is computed inline: slower, never wrong. */
	w->hasher_failed = 1;
	return NULL;
}

static void
hasher_post(struct hasher *hs, struct sw_hash *h, const void *p, size_t n)
{
	pthread_mutex_lock(&hs->mu);
	hs->h = h;
	hs->p = p;
	hs->n = n;
	hs->err = 0;
	hs->job = 1;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
}

static int
hasher_wait(struct hasher *hs)
{
	pthread_mutex_lock(&hs->mu);
	while (hs->job)
		pthread_cond_wait(&hs->cv, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
	return hs->err;
}

static void
hasher_free(struct hasher *hs)
{
	if (hs == NULL)
		return;
	pthread_mutex_lock(&hs->mu);
	hs->quit = 1;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	(void)pthread_join(hs->th, NULL);
	pthread_cond_destroy(&hs->cv);
	pthread_mutex_destroy(&hs->mu);
	free(hs);
}

/* Writes the data part of a sink call (sparse or not); the digest is elsewhere. */
static int
wfile_put(struct wfile *f, const unsigned char *c, size_t n, struct sw_err *e)
{
	struct ova_writer *w = f->w;
	int r;

	if (!(w->flags & OVA_WRITER_SPARSE)) {
		if ((r = sw_write_all(f->fd, c, n)) < 0)
			return sw_errno(e, -r, "write of '%s'", f->tmp);
		f->size += n;
		return 0;
	}
	/*
	 * All-zero pieces become holes.  Pieces end at 64 KiB file offsets so a
	 * block's data and zeros are judged apart; a piece may be shorter (data
	 * from a pipe arrives in any size), and skipping it is still right
	 * because the file is new (O_EXCL): unwritten bytes read as zeros.
	 */
	while (n > 0) {
		const unsigned char *run = c;
		size_t k, runlen = 0;

		/* Data pieces in a row go out in one write. */
		for (;;) {
			k = ZERO_CHUNK - (size_t)((f->size + runlen) % ZERO_CHUNK);
			if (k > n - runlen)
				k = n - runlen;
			if (k == 0 || memcmp(c + runlen, zeros, k) == 0)
				break;
			runlen += k;
		}
		if (runlen > 0 && (r = sw_write_all(f->fd, run, runlen)) < 0)
			return sw_errno(e, -r, "write of '%s'", f->tmp);
		f->size += runlen;
		c += runlen;
		n -= runlen;
		if (k == 0)
			break;
		if (lseek(f->fd, (off_t)k, SEEK_CUR) < 0)
			return sw_errno(e, errno, "seek in '%s'", f->tmp);
		f->size += k;
		c += k;
		n -= k;
	}
	return 0;
}

static int
wfile_write(struct wfile *f, const void *p, size_t n, struct sw_err *e)
{
	struct ova_writer *w = f->w;
	struct hasher *hs = NULL;
	int r, hr = 0;

	if (w->failed)
		return sw_errf(e, SW_EINTERNAL, "'%s/%s': the writer failed earlier", w->o.dir,
		    f->name);
	if (f->fd < 0)
		return sw_errf(e, SW_EINTERNAL, "'%s': written after it was finished", f->name);
	if (f->hash != NULL && n >= HASH_ASYNC_MIN && (hs = hasher_get(w)) != NULL)
		hasher_post(hs, f->hash, p, n);
	else if (f->hash != NULL)
		hr = sw_hash_update(f->hash, p, n);
	r = wfile_put(f, p, n, e);
	if (hs != NULL)
		hr = hasher_wait(hs); /* always: p must not be released while the helper reads it */
	if (r == 0 && hr < 0)
		r = sw_errf(e, SW_EINTERNAL, "sha256 failed");
	if (r < 0)
		w->failed = 1;
	return r;
}

static int
disk_sink_write(void *ud, const void *p, size_t n, struct sw_err *e)
{
	return wfile_write(ud, p, n, e);
}

int
ova_writer_disk(struct ova_writer *w, const char *name, struct sw_sink *ret_sink,
    struct sw_err *e)
{
	struct wfile *f;
	char suffix[32];
	int r;

	if (w == NULL || w->committed)
		return sw_errf(e, SW_EINTERNAL, "writer already committed");
	if (w->ndisks >= OVA_MAX_DISKS)
		return sw_errf(e, SW_ETOOBIG, "more than %d disks", OVA_MAX_DISKS);
	f = &w->disks[w->ndisks];
	(void)snprintf(suffix, sizeof(suffix), "-disk%zu.vmdk", w->ndisks);
	if ((r = wfile_open(w, f, name, suffix, e)) < 0) {
		wfile_init(f, w);
		return r;
	}
	w->ndisks++;
	ret_sink->write = disk_sink_write;
	ret_sink->ud = f;
	return 0;
}

int
ova_writer_ovf(struct ova_writer *w, const char *name, const void *p, size_t n,
    struct sw_err *e)
{
	int r;

	if (w == NULL || w->committed)
		return sw_errf(e, SW_EINTERNAL, "writer already committed");
	if (w->have_ovf)
		return sw_errf(e, SW_EINTERNAL, "OVF written twice");
	if (n > OVA_OVF_MAX)
		return sw_errf(e, SW_ETOOBIG, "OVF larger than %d bytes", OVA_OVF_MAX);
	if ((r = ova_ovf_parse(p, n, &w->parsed, e)) < 0 && !(w->flags & OVA_WRITER_NO_OVF_CHECK))
		return r;
	if ((r = wfile_open(w, &w->ovf, name, ".ovf", e)) < 0)
		goto fail;
	w->have_ovf = 1;
	if (w->ovf.hash == NULL && (w->ovf.hash = sw_hash_new("sha256")) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	/* The OVF always gets its digest: it is small and the event lists it. */
	if (sw_hash_update(w->ovf.hash, p, n) < 0 || sw_write_all(w->ovf.fd, p, n) < 0) {
		r = sw_errno(e, errno ? errno : EIO, "write of '%s'", w->ovf.tmp);
		w->failed = 1;
		return r;
	}
	w->ovf.size = n;
	return 0;
fail:
	ova_ovf_free(w->parsed);
	w->parsed = NULL;
	return r;
}

int
ova_writer_meta_set(struct ova_writer *w, const char *key, const char *value,
    struct sw_err *e)
{
	static const char *const std[] = { "ova.filename", "version", "ovf", "numDisks" };
	struct wkv *kv;
	size_t i;

	if (w == NULL || key == NULL || value == NULL || key[0] == '\0')
		return sw_errf(e, -EINVAL, "meta: empty key");
	for (i = 0; i < sizeof(std) / sizeof(std[0]); i++)
		if (strcmp(key, std[i]) == 0)
			return sw_errf(e, -EINVAL, "meta: key '%s' is written by the library", key);
	if (strncmp(key, "disk", 4) == 0 && key[4] >= '0' && key[4] <= '9')
		return sw_errf(e, -EINVAL, "meta: key '%s' is written by the library", key);
	if (strlen(key) > 256 || strlen(value) > 4096 || w->nextra >= 64)
		return sw_errf(e, SW_ETOOBIG, "meta: extra entry too large or too many");
	kv = realloc(w->extra, (w->nextra + 1) * sizeof(*kv));
	if (kv == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	w->extra = kv;
	kv = &w->extra[w->nextra];
	kv->key = strdup(key);
	kv->value = strdup(value);
	if (kv->key == NULL || kv->value == NULL) {
		free(kv->key);
		free(kv->value);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	w->nextra++;
	return 0;
}

/* Ends the data of f: the sparse tail, the digest, fsync, close. */
static int
wfile_finish(struct ova_writer *w, struct wfile *f, struct sw_err *e)
{
	int r;

	if (f->fd < 0)
		return 0;
	if (f->hash != NULL) {
		r = sw_hash_final(f->hash, f->sha256, sizeof(f->sha256));
		sw_hash_free(f->hash);
		f->hash = NULL;
		if (r < 0)
			return sw_errf(e, SW_EINTERNAL, "sha256 of '%s' failed", f->name);
	}
	/* A trailing hole needs the size set explicitly. */
	if ((w->flags & OVA_WRITER_SPARSE) && ftruncate(f->fd, (off_t)f->size) < 0)
		return sw_errno(e, errno, "truncate of '%s'", f->tmp);
	if (fsync(f->fd) < 0)
		return sw_errno(e, errno, "fsync of '%s/%s'", w->o.dir, f->tmp);
	r = close(f->fd);
	f->fd = -1;
	if (r < 0)
		return sw_errno(e, errno, "close of '%s/%s'", w->o.dir, f->tmp);
	return 0;
}

int
ova__writer_file_sha256(struct ova_writer *w, const char *name, char *out, struct sw_err *e)
{
	struct wfile *f = NULL;
	size_t i;

	for (i = 0; i < w->ndisks; i++)
		if (strcmp(w->disks[i].name, name) == 0)
			f = &w->disks[i];
	if (f == NULL && w->have_ovf && strcmp(w->ovf.name, name) == 0)
		f = &w->ovf;
	if (f == NULL)
		return sw_errf(e, SW_ENOTFOUND, "no file '%s' in this object", name);
	if (f->hash != NULL) {
		int r = sw_hash_final(f->hash, f->sha256, sizeof(f->sha256));

		sw_hash_free(f->hash);
		f->hash = NULL;
		if (r < 0)
			return sw_errf(e, SW_EINTERNAL, "sha256 of '%s' failed", f->name);
	}
	memcpy(out, f->sha256, OVA_SHA256_HEX);
	return 0;
}

/* The OVF must reference exactly the disk files (and match sizes it states). */
static int
check_ovf(struct ova_writer *w, struct sw_err *e)
{
	const struct ova_ovf *ovf = w->parsed;
	size_t i;
	long k;

	for (i = 0; i < w->ndisks; i++) {
		k = ova_ovf_find_file(ovf, w->disks[i].name);
		if (k < 0)
			return sw_errf(e, SW_EFORMAT, "'%s': the OVF does not reference disk '%s'",
			    w->o.install, w->disks[i].name);
		if (ovf->files[k].has_size && ovf->files[k].size != w->disks[i].size)
			return sw_errf(e, SW_EFORMAT, "'%s': disk '%s' has %llu bytes, the OVF says %llu",
			    w->o.install, w->disks[i].name, (unsigned long long)w->disks[i].size,
			    (unsigned long long)ovf->files[k].size);
	}
	if (ovf->nfiles != w->ndisks) {
		for (i = 0; i < ovf->nfiles; i++) {
			size_t j;

			for (j = 0; j < w->ndisks; j++)
				if (strcmp(ovf->files[i].href, w->disks[j].name) == 0)
					break;
			if (j == w->ndisks)
				return sw_errf(e, SW_EFORMAT,
				    "'%s': the OVF references '%s', which was not written",
				    w->o.install, ovf->files[i].href);
		}
	}
	return 0;
}

static int
wfile_rename(struct ova_writer *w, struct wfile *f, struct sw_err *e)
{
	if (renameat(w->o.dirfd, f->tmp, w->o.dirfd, f->name) < 0)
		return sw_errno(e, errno, "rename of '%s/%s' into place", w->o.dir, f->tmp);
	f->renamed = 1;
	return 0;
}

static int
add_result(struct ova_writer *w, struct ova_result *res, const char *file, uint64_t size,
    const char *sha, struct sw_err *e)
{
	char rel[SW_PATH_MAX];
	int r;

	if ((r = ova__relpath(&w->o, file, rel, sizeof(rel), e)) < 0)
		return r;
	return ova__result_add(res, rel, size, sha, e);
}

int
ova_writer_commit(struct ova_writer *w, struct ova_result **ret_result, struct sw_err *e)
{
	struct sw_buf mb = SW_BUF_INIT(OVA_META_MAX);
	struct ova_meta m;
	struct ova_meta_disk md[OVA_MAX_DISKS];
	struct ova_result *res = NULL;
	struct sw_hash *mh = NULL;
	char ova[SW_NAME_MAX + 1], msha[OVA_SHA256_HEX];
	size_t i;
	int r;

	if (w == NULL || w->committed)
		return sw_errf(e, SW_EINTERNAL, "writer already committed");
	if (w->failed) {
		r = sw_errf(e, SW_EINTERNAL, "'%s': a write failed earlier", w->o.install);
		goto fail;
	}
	if (!w->have_ovf || w->ndisks == 0) {
		r = sw_errf(e, SW_EINTERNAL, "'%s': commit needs an OVF and at least one disk",
		    w->o.install);
		goto fail;
	}
	if (w->parsed != NULL && !(w->flags & OVA_WRITER_NO_OVF_CHECK) &&
	    (r = check_ovf(w, e)) < 0)
		goto fail;
	/* 1. Data durable under temporary names. */
	for (i = 0; i < w->ndisks; i++)
		if ((r = wfile_finish(w, &w->disks[i], e)) < 0)
			goto fail;
	if ((r = wfile_finish(w, &w->ovf, e)) < 0)
		goto fail;
	/* 2. Into place; still invisible as an object without its meta. */
	for (i = 0; i < w->ndisks; i++)
		if ((r = wfile_rename(w, &w->disks[i], e)) < 0)
			goto fail;
	if ((r = wfile_rename(w, &w->ovf, e)) < 0)
		goto fail;
	if ((r = ova__fsync_dir(w->o.dirfd, w->o.dir, e)) < 0)
		goto fail;
	/* 3. The commit record. */
	memset(&m, 0, sizeof(m));
	if ((r = ova__fname(&w->o, ".ova", ova, sizeof(ova), e)) < 0)
		goto fail;
	m.ova_filename = ova;
	m.ovf = w->ovf.name;
	m.ndisks = w->ndisks;
	m.disks = md;
	for (i = 0; i < w->ndisks; i++) {
		md[i].name = w->disks[i].name;
		md[i].size = w->disks[i].size;
		memcpy(md[i].sha256, w->disks[i].sha256, OVA_SHA256_HEX);
	}
	if ((r = ova_meta_format(&m, &mb, e)) < 0)
		goto fail;
	for (i = 0; i < w->nextra; i++)
		if ((r = sw_props_add_entry(&mb, w->extra[i].key, w->extra[i].value)) < 0) {
			r = sw_errf(e, r, "meta: too large");
			goto fail;
		}
	if ((mh = sw_hash_new("sha256")) == NULL || sw_hash_update(mh, mb.ptr, mb.len) < 0 ||
	    sw_hash_final(mh, msha, sizeof(msha)) < 0) {
		r = sw_errf(e, -ENOMEM, "sha256 of the meta failed");
		goto fail;
	}
	if ((r = ova_atomic_write(w->o.dirfd, w->meta_name, mb.ptr, mb.len, w->meta_name, e)) < 0) {
		/* If only the directory fsync failed, the meta is in place: take it back. */
		w->meta_renamed = ova__exists(w->o.dirfd, w->meta_name) == 1;
		goto fail;
	}
	w->meta_renamed = 1;
	if ((res = ova__result_new(OVA_FMT_OVF, w->o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < w->ndisks; i++)
		if ((r = add_result(w, res, w->disks[i].name, w->disks[i].size, w->disks[i].sha256,
		    e)) < 0)
			goto fail;
	if ((r = add_result(w, res, w->ovf.name, w->ovf.size, w->ovf.sha256, e)) < 0 ||
	    (r = add_result(w, res, w->meta_name, mb.len, msha, e)) < 0)
		goto fail;
	res->virtual_size = w->parsed ? w->parsed->virtual_size : 0;
	w->committed = 1;
	if (ret_result != NULL) {
		*ret_result = res;
		res = NULL;
	}
	r = 0;
	goto out;
fail:
	/* Nothing half-written may stay visible: remove what this writer made. */
	writer_discard(w);
	w->failed = 1;
out:
	sw_hash_free(mh);
	sw_buf_free(&mb);
	ova_result_free(res);
	return r;
}

static void
wfile_discard(struct ova_writer *w, struct wfile *f)
{
	if (f->fd >= 0) {
		(void)close(f->fd);
		f->fd = -1;
	}
	sw_hash_free(f->hash);
	f->hash = NULL;
	if (w->o.dirfd < 0)
		return;
	if (f->tmp[0] != '\0')
		(void)unlinkat(w->o.dirfd, f->tmp, 0);
	f->tmp[0] = '\0';
	if (f->renamed)
		(void)unlinkat(w->o.dirfd, f->name, 0);
	f->renamed = 0;
}

/* Removes every file this writer made (the meta first); the writer stays allocated. */
static void
writer_discard(struct ova_writer *w)
{
	char tmp[SW_NAME_MAX + 1];
	size_t i;

	if (w->o.dirfd < 0)
		return;
	/* The meta first: from then on the object reads as absent. */
	if (w->meta_renamed)
		(void)unlinkat(w->o.dirfd, w->meta_name, 0);
	w->meta_renamed = 0;
	if (sw_path_fmt(tmp, sizeof(tmp), "%s.part", w->meta_name) == 0)
		(void)unlinkat(w->o.dirfd, tmp, 0);
	for (i = 0; i < w->ndisks; i++)
		wfile_discard(w, &w->disks[i]);
	if (w->have_ovf)
		wfile_discard(w, &w->ovf);
	(void)ova__fsync_dir(w->o.dirfd, w->o.dir, NULL);
}

static void
writer_release(struct ova_writer *w)
{
	size_t i;

	for (i = 0; i < OVA_MAX_DISKS; i++) {
		if (w->disks[i].fd >= 0)
			(void)close(w->disks[i].fd);
		sw_hash_free(w->disks[i].hash);
	}
	if (w->ovf.fd >= 0)
		(void)close(w->ovf.fd);
	sw_hash_free(w->ovf.hash);
	for (i = 0; i < w->nextra; i++) {
		free(w->extra[i].key);
		free(w->extra[i].value);
	}
	free(w->extra);
	hasher_free(w->hasher);
	ova_ovf_free(w->parsed);
	ova__obj_close(&w->o);
	free(w);
}

void
ova_writer_abort(struct ova_writer *w)
{
	if (w == NULL)
		return;
	if (!w->committed)
		writer_discard(w);
	writer_release(w);
}

void
ova_writer_free(struct ova_writer *w)
{
	if (w == NULL)
		return;
	if (!w->committed) {
		ova_writer_abort(w);
		return;
	}
	writer_release(w);
}

int
ova_commit_files(struct ova_store *s, const char *obj, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct sw_buf ob = SW_BUF_INIT(OVA_OVF_MAX), mb = SW_BUF_INIT(OVA_META_MAX);
	struct ova_meta_disk md[OVA_MAX_DISKS];
	struct ova_ovf *ovf = NULL;
	struct ova_result *res = NULL;
	struct ova__obj o;
	struct ova_meta m;
	enum ova_format f;
	char ovfname[SW_NAME_MAX + 1], meta[SW_NAME_MAX + 1], ova[SW_NAME_MAX + 1];
	char rel[SW_PATH_MAX];
	struct stat st;
	size_t i;
	int r, fd;

	memset(md, 0, sizeof(md));
	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		return r;
	if (o.dirfd < 0) {
		r = sw_errf(e, SW_ENOTFOUND, "'%s': directory '%s' does not exist", o.install, o.dir);
		goto out;
	}
	if ((r = ova_detect(s, obj, &f, e)) < 0)
		goto out;
	if (f != OVA_FMT_ABSENT) {
		r = sw_errf(e, SW_EEXIST, "object '%s' exists (%s format)", o.install,
		    ova_format_name(f));
		goto out;
	}
	if ((r = ova__fname(&o, ".ovf", ovfname, sizeof(ovfname), e)) < 0 ||
	    (r = ova__fname(&o, ".ova.meta", meta, sizeof(meta), e)) < 0 ||
	    (r = ova__fname(&o, ".ova", ova, sizeof(ova), e)) < 0)
		goto out;
	if ((r = ova__read_file(o.dirfd, ovfname, OVA_OVF_MAX, &ob, e)) < 0)
		goto out;
	if ((r = ova_ovf_parse(ob.ptr ? ob.ptr : "", ob.len, &ovf, e)) < 0) {
		sw_errctx(e, "'%s/%s'", o.dir, ovfname);
		goto out;
	}
	if (ovf->nfiles == 0 || ovf->nfiles > OVA_MAX_DISKS) {
		r = sw_errf(e, SW_EFORMAT, "'%s': the OVF references %zu files (1..%d allowed)",
		    ovfname, ovf->nfiles, OVA_MAX_DISKS);
		goto out;
	}
	if ((res = ova__result_new(OVA_FMT_OVF, o.install)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ovf->nfiles; i++) {
		const struct ova_ovf_file *of = &ovf->files[i];

		md[i].name = of->href;
		if ((fd = ova__open(o.dirfd, of->href, O_RDONLY, 0, e)) < 0) {
			r = fd;
			goto out;
		}
		r = fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		(void)close(fd);
		if (r < 0) {
			r = sw_errno(e, -r, "'%s/%s'", o.dir, of->href);
			goto out;
		}
		md[i].size = (uint64_t)st.st_size;
		if (of->has_size && of->size != md[i].size) {
			r = sw_errf(e, SW_EFORMAT, "'%s/%s' has %llu bytes, the OVF says %llu", o.dir,
			    of->href, (unsigned long long)md[i].size, (unsigned long long)of->size);
			goto out;
		}
		if (!(flags & OVA_COMMIT_NO_SHA256) &&
		    (r = ova__hash_file(o.dirfd, of->href, md[i].sha256, e)) < 0)
			goto out;
		if ((r = ova__relpath(&o, of->href, rel, sizeof(rel), e)) < 0 ||
		    (r = ova__result_add(res, rel, md[i].size, md[i].sha256, e)) < 0)
			goto out;
	}
	if ((r = ova__relpath(&o, ovfname, rel, sizeof(rel), e)) < 0 ||
	    (r = ova__result_add(res, rel, ob.len, NULL, e)) < 0)
		goto out;
	memset(&m, 0, sizeof(m));
	m.ova_filename = ova;
	m.ovf = ovfname;
	m.ndisks = ovf->nfiles;
	m.disks = md;
	if ((r = ova_meta_format(&m, &mb, e)) < 0)
		goto out;
	if ((r = ova_atomic_write(o.dirfd, meta, mb.ptr, mb.len, meta, e)) < 0) {
		(void)unlinkat(o.dirfd, meta, 0);
		goto out;
	}
	if ((r = ova__relpath(&o, meta, rel, sizeof(rel), e)) < 0 ||
	    (r = ova__result_add(res, rel, mb.len, NULL, e)) < 0)
		goto out;
	res->virtual_size = ovf->virtual_size;
	if (ret_result != NULL) {
		*ret_result = res;
		res = NULL;
	}
out:
	ova_result_free(res);
	ova_ovf_free(ovf);
	sw_buf_free(&ob);
	sw_buf_free(&mb);
	ova__obj_close(&o);
	return r;
}
