/*
 * The writer of new-format objects: begin, the data files streamed into
 * temporaries (.part) with their digests, the OVF and extra meta keys,
 * abort and free.  The commit protocol is in commit.c: every data file is
 * fsynced and renamed into place, the meta file comes last (temporary,
 * fsync, rename, fsync of the directory).  Until the meta file exists the
 * object does not exist, so a crash at any point leaves only debris that
 * ova_debris_remove()/ova_delete() recognise.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hashpipe.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

#define ZERO_CHUNK 65536
/*
 * Digests are computed on a helper thread (common/hashpipe.h) fed through a
 * ring of this size: the write never waits for sha256 unless the helper is
 * this far behind.
 */
#define HASH_RING (2u * 1024 * 1024)

static const unsigned char zeros[ZERO_CHUNK];

static void
wfile_init(struct ova__wfile *f, struct ova_writer *w)
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
	if (ova__member_reserved(name))
		return sw_errf(e, SW_EPATH, "file name '%s': " OVA__RESERVED_WHY, name);
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
wfile_open(struct ova_writer *w, struct ova__wfile *f, const char *name, const char *defsuffix,
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
	f->wb.keep = (w->flags & OVA_WRITER_KEEP_CACHE) != 0;
	/* O_EXCL: a concurrent writer of the same object fails instead of interleaving. */
	f->fd = ova__open(w->o.dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, e);
	if (f->fd < 0) {
		r = f->fd;
		f->fd = -1;
		sw_hash_free(f->hash);
		f->hash = NULL;
		return r;
	}
	/* Not debris while we write it, however long a block takes to come. */
	ova__part_hold(f->fd);
	return 0;
}

/* The writer's hashing pipeline, made on first use; NULL when out of memory. */
static struct sw_hashpipe *
hashpipe_get(struct ova_writer *w)
{
	if (w->hashpipe == NULL)
		w->hashpipe = sw_hashpipe_new(HASH_RING);
	return w->hashpipe;
}

int
ova__writer_hash_sync(struct ova_writer *w)
{
	return w->hashpipe != NULL ? sw_hashpipe_sync(w->hashpipe) : 0;
}

/* Writes the data part of a sink call (sparse or not); the digest is elsewhere. */
static int
wfile_put(struct ova__wfile *f, const unsigned char *c, size_t n, struct sw_err *e)
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
wfile_write(struct ova__wfile *f, const void *p, size_t n, struct sw_err *e)
{
	struct ova_writer *w = f->w;
	struct sw_hashpipe *hp;
	int r, hr = 0;

	if (w->failed)
		return sw_errf(e, SW_EINTERNAL, "'%s/%s': the writer failed earlier", w->o.dir,
		    f->name);
	if (f->fd < 0)
		return sw_errf(e, SW_EINTERNAL, "'%s': written after it was finished", f->name);
	/* The digest is queued first: the helper hashes while this thread writes. */
	if (f->hash != NULL && (hp = hashpipe_get(w)) != NULL)
		hr = sw_hashpipe_update(hp, f->hash, p, n);
	else if (f->hash != NULL)
		hr = sw_hash_update(f->hash, p, n);
	r = wfile_put(f, p, n, e);
	if (r == 0 && hr < 0)
		r = sw_errf(e, SW_EINTERNAL, "sha256 failed");
	if (r == 0 && (r = sw_writeback(f->fd, &f->wb, f->size)) < 0)
		r = sw_errno(e, -r, "write-back of '%s'", f->tmp);
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
	struct ova__wfile *f;
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
	struct ova__wkv *kv;
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
static void
writer_release(struct ova_writer *w)
{
	size_t i;

	/* The helper may still hold the files' digests: it goes first. */
	sw_hashpipe_free(w->hashpipe);
	w->hashpipe = NULL;
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
		ova__writer_discard(w);
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
