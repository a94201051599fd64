/*
 * OVA generation: a POSIX tar written in one pass with constant memory.
 * The headers are ours (tar.c); the data is moved by the kernel where it can
 * (copy_file_range into a file, sendfile into a pipe), and holes of sparse
 * disks stay holes when the target is a regular file.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hashpipe.h"
#include "common/path.h"
#include "ovastore/ova_int.h"
#include "ovastore/tar_int.h"

#define COPY_CHUNK (8u * 1024 * 1024)
#define RW_BUF (1024 * 1024)

static const unsigned char zero_blocks[1024];

/*
 * For an output that will be fsynced and not read again (an archive packed
 * into a file, a copy): write-behind up to where the output now ends.
 */
static int
writebehind(int outfd, struct sw_writeback *wb, const char *what, struct sw_err *e)
{
	off_t end = lseek(outfd, 0, SEEK_CUR);
	int r;

	if (end > 0 && (r = sw_writeback(outfd, wb, (uint64_t)end)) < 0)
		return sw_errno(e, -r, "write-back of the copy of '%s'", what);
	return 0;
}

/*
 * Plain read/write copy, hashing on the way.  With a hashing thread the
 * source is read straight into its ring and written out from there while
 * the thread digests the same bytes (no second pass, no copy between
 * buffers); without one, through a buffer.  sync_out: fsync the output
 * before waiting for the digest, so the data goes to the disk meanwhile.
 */
static int
copy_rw(int infd, uint64_t off, uint64_t len, int outfd, struct sw_hash *hash,
    struct sw_writeback *wb, int sync_out, const char *what, struct sw_err *e)
{
	struct sw_hashpipe *hp = hash != NULL && len > RW_BUF ? sw_hashpipe_new(0) : NULL;
	unsigned char *buf = NULL;
	int r = 0;

	if (!sw_hashpipe_threaded(hp) && (buf = malloc(RW_BUF)) == NULL) {
		sw_hashpipe_free(hp);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	while (len > 0) {
		size_t room = RW_BUF, want;
		unsigned char *p = buf;
		ssize_t n;

		if (p == NULL && (p = sw_hashpipe_claim(hp, hash, &room)) == NULL) {
			r = sw_errf(e, SW_EINTERNAL, "digest failed");
			break;
		}
		want = len < room ? (size_t)len : room;
		n = sw_pread_full(infd, p, want, (off_t)off);
		if (n < 0) {
			r = sw_errno(e, (int)-n, "read of '%s'", what);
			break;
		}
		if ((size_t)n != want) {
			r = sw_errf(e, SW_EFORMAT, "'%s' became shorter while being read", what);
			break;
		}
		if (hash != NULL && (buf == NULL ? sw_hashpipe_fill(hp, want) : hp != NULL ?
		    sw_hashpipe_update(hp, hash, p, want) : sw_hash_update(hash, p, want)) < 0) {
			r = sw_errf(e, SW_EINTERNAL, "digest failed");
			break;
		}
		if ((r = sw_write_all(outfd, p, want)) < 0) {
			r = sw_errno(e, -r, "write of '%s'", what);
			break;
		}
		off += want;
		len -= want;
		if (wb != NULL && (r = writebehind(outfd, wb, what, e)) < 0)
			break;
	}
	if (r == 0 && sync_out && fsync(outfd) < 0)
		r = sw_errno(e, errno, "fsync of the copy of '%s'", what);
	if (hp != NULL && sw_hashpipe_sync(hp) < 0 && r == 0)
		r = sw_errf(e, SW_EINTERNAL, "digest failed");
	sw_hashpipe_free(hp);
	free(buf);
	return r;
}

/* Moves one data region with the kernel's help; falls back to read/write. */
static int
copy_region(int infd, uint64_t off, uint64_t len, int outfd, int out_is_reg,
    struct sw_writeback *wb, const char *what, struct sw_err *e)
{
	int use_cfr = out_is_reg, use_sf = 1, r;

	while (len > 0) {
		size_t want = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		ssize_t n = -1;

		if (use_cfr) {
			loff_t o = (loff_t)off;

			n = copy_file_range(infd, &o, outfd, NULL, want, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP || errno == EBADF)) {
				use_cfr = 0;
				continue;
			}
		} else if (use_sf) {
			off_t o = (off_t)off;

			n = sendfile(outfd, infd, &o, want);
			if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				use_sf = 0;
				continue;
			}
		} else {
			return copy_rw(infd, off, len, outfd, NULL, wb, 0, what, e);
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return sw_errno(e, errno, "copy of '%s'", what);
		}
		if (n == 0)
			return sw_errf(e, SW_EFORMAT, "'%s' became shorter while being read", what);
		off += (uint64_t)n;
		len -= (uint64_t)n;
		if (wb != NULL && (r = writebehind(outfd, wb, what, e)) < 0)
			return r;
	}
	return 0;
}

int
ova__copy_data(int infd, uint64_t inoff, uint64_t len, int outfd, int sparse,
    struct sw_hash *hash, struct sw_writeback *wb, const char *what, struct sw_err *e)
{
	struct stat st;
	int out_is_reg;
	uint64_t end = inoff + len, pos = inoff;
	int r;

	if (hash != NULL)
		return copy_rw(infd, inoff, len, outfd, hash, wb, 0, what, e);
	if (fstat(outfd, &st) < 0)
		return sw_errno(e, errno, "stat of the output");
	out_is_reg = S_ISREG(st.st_mode);
	(void)posix_fadvise(infd, (off_t)inoff, (off_t)len, POSIX_FADV_SEQUENTIAL);
	if (!sparse || !out_is_reg)
		return copy_region(infd, inoff, len, outfd, out_is_reg, out_is_reg ? wb : NULL, what,
		    e);
	/* Walk data and holes; a hole becomes a seek in the output. */
	while (pos < end) {
		off_t d = lseek(infd, (off_t)pos, SEEK_DATA), h;
		uint64_t dstart, dend;

		if (d < 0 && errno == ENXIO)
			d = (off_t)end; /* only a hole up to the end of the file */
		else if (d < 0)
			return copy_region(infd, pos, end - pos, outfd, 1, wb, what, e);
		dstart = (uint64_t)d > end ? end : (uint64_t)d;
		if (dstart > pos && lseek(outfd, (off_t)(dstart - pos), SEEK_CUR) < 0)
			return sw_errno(e, errno, "seek in the output");
		pos = dstart;
		if (pos >= end)
			break;
		h = lseek(infd, (off_t)pos, SEEK_HOLE);
		dend = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
		if (dend <= pos)
			dend = end;
		if ((r = copy_region(infd, pos, dend - pos, outfd, 1, wb, what, e)) < 0)
			return r;
		pos = dend;
	}
	return 0;
}

int
ova__copy_file(int infd, uint64_t len, int outfd, struct sw_hash *hash, int *ret_cloned,
    const char *what, struct sw_err *e)
{
	struct sw_writeback wb = { 0, 0, 0 };

	*ret_cloned = 0;
	/* A reflink shares the blocks: nothing is read or written. */
	if (ioctl(outfd, FICLONE, infd) == 0) {
		*ret_cloned = 1;
		return 0;
	}
	if (hash == NULL)
		return copy_region(infd, 0, len, outfd, 1, &wb, what, e);
	(void)posix_fadvise(infd, 0, (off_t)len, POSIX_FADV_SEQUENTIAL);
	return copy_rw(infd, 0, len, outfd, hash, &wb, 1, what, e);
}

/* One file to put into the archive. */
struct pmember {
	const char *name;    /* member name */
	int fd;
	uint64_t off;        /* data offset in fd */
	uint64_t size;
	int64_t mtime;
};

static int
write_member(const struct pmember *m, int outfd, int sparse, struct sw_writeback *wb,
    uint64_t *total, struct sw_err *e)
{
	unsigned char hdr[OVA_TAR_HDR_MAX];
	size_t hlen, pad;
	int r;

	if ((r = ova__tar_header(m->name, m->size, m->mtime, hdr, sizeof(hdr), &hlen)) < 0)
		return sw_errf(e, SW_EPATH, "member name '%s' cannot be stored", m->name);
	if ((r = sw_write_all(outfd, hdr, hlen)) < 0)
		return sw_errno(e, -r, "write of the OVA");
	if ((r = ova__copy_data(m->fd, m->off, m->size, outfd, sparse, NULL, wb, m->name, e)) < 0)
		return r;
	pad = (size_t)((512 - m->size % 512) % 512);
	if (pad > 0 && (r = sw_write_all(outfd, zero_blocks, pad)) < 0)
		return sw_errno(e, -r, "write of the OVA");
	*total += hlen + m->size + pad;
	return 0;
}

static int
pack_new(struct ova__obj *o, struct ova_info *in, int outfd, int sparse, struct sw_writeback *wb,
    uint64_t *total, struct sw_err *e)
{
	struct pmember m;
	struct stat st;
	size_t i;
	int r = 0;

	memset(&m, 0, sizeof(m));
	for (i = 0; i <= in->ndisks; i++) {
		/* The OVF first, then the disks in meta order. */
		const char *name = i == 0 ? in->meta->ovf : in->meta->disks[i - 1].name;

		m.name = name;
		if ((m.fd = ova__open(o->dirfd, name, O_RDONLY, 0, e)) < 0)
			return m.fd;
		if (fstat(m.fd, &st) < 0) {
			r = sw_errno(e, errno, "stat '%s'", name);
			goto next;
		}
		m.size = (uint64_t)st.st_size;
		m.mtime = (int64_t)st.st_mtime;
		if (i > 0 && m.size != in->meta->disks[i - 1].size) {
			r = sw_errf(e, SW_EFORMAT, "'%s/%s' has %llu bytes, the meta says %llu",
			    o->dir, name, (unsigned long long)m.size,
			    (unsigned long long)in->meta->disks[i - 1].size);
			goto next;
		}
		r = write_member(&m, outfd, sparse, wb, total, e);
next:
		(void)close(m.fd);
		if (r < 0)
			return r;
	}
	if ((r = sw_write_all(outfd, zero_blocks, sizeof(zero_blocks))) < 0)
		return sw_errno(e, -r, "write of the OVA");
	*total += sizeof(zero_blocks);
	return 0;
}

static int
pack_legacy(struct ova__obj *o, int outfd, int sparse, struct sw_writeback *wb, uint64_t *total,
    struct sw_err *e)
{
	char ova[SW_NAME_MAX + 1];
	struct stat st;
	int fd, r;

	if ((r = ova__fname(o, ".ova", ova, sizeof(ova), e)) < 0)
		return r;
	if ((fd = ova__open(o->dirfd, ova, O_RDONLY, 0, e)) < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		r = sw_errno(e, errno, "stat '%s'", ova);
	else
		r = ova__copy_data(fd, 0, (uint64_t)st.st_size, outfd, sparse, NULL, wb, ova, e);
	if (r == 0)
		*total += (uint64_t)st.st_size;
	(void)close(fd);
	return r;
}

/* wb: write-behind of an output that will be fsynced (NULL: none). */
static int
pack_fd(struct ova_store *s, const char *obj, int fd, unsigned flags, struct sw_writeback *wb,
    uint64_t *ret_size, struct sw_err *e)
{
	struct ova_info *in = NULL;
	struct ova__obj o;
	struct stat st;
	uint64_t total = 0;
	int sparse, r;

	if (fstat(fd, &st) < 0)
		return sw_errno(e, errno, "stat of the output");
	/* Holes are seeks; with O_APPEND a seek does not move where writes land. */
	sparse = S_ISREG(st.st_mode) && !(flags & OVA_PACK_NO_SPARSE) &&
	    !(fcntl(fd, F_GETFL) & O_APPEND);
	/* Inspecting first validates the meta, the OVF or the archive before a byte is written. */
	if ((r = ova_inspect(s, obj, &in, e)) < 0)
		return r;
	o.dirfd = -1;
	/* An OVA whose OVF references a disk it lacks would not import anywhere. */
	if ((r = ova__info_check(in, e)) < 0)
		goto out;
	if ((r = ova__obj_open(s, obj, 0, &o, e)) < 0)
		goto out;
	if (in->format == OVA_FMT_OVF)
		r = pack_new(&o, in, fd, sparse, wb, &total, e);
	else
		r = pack_legacy(&o, fd, sparse, wb, &total, e);
	if (r < 0) {
		sw_errctx(e, "pack '%s'", in->install_path);
		goto out;
	}
	/* A seek past the end (a final hole) does not extend a file by itself. */
	if (sparse && ftruncate(fd, lseek(fd, 0, SEEK_CUR)) < 0) {
		r = sw_errno(e, errno, "truncate of the OVA");
		goto out;
	}
	if (ret_size != NULL)
		*ret_size = total;
out:
	ova__obj_close(&o);
	ova_info_free(in);
	return r;
}

int
ova_pack_fd(struct ova_store *s, const char *obj, int fd, unsigned flags, uint64_t *ret_size,
    struct sw_err *e)
{
	/* The caller's output (a pipe, a file it may read or not sync): left to the kernel. */
	return pack_fd(s, obj, fd, flags, NULL, ret_size, e);
}

int
ova_pack_at(struct ova_store *s, const char *obj, int dirfd, const char *relpath,
    unsigned flags, uint64_t *ret_size, struct sw_err *e)
{
	static unsigned counter;
	char dir[SW_PATH_MAX], base[SW_NAME_MAX + 1], tmp[SW_NAME_MAX + 1];
	struct sw_writeback wb = { 0, 0, 0 };
	struct ova_atomic a;
	uint64_t size = 0;
	int dfd = -1, r;

	if ((r = sw_path_check_rel(relpath, e)) < 0)
		return r;
	if (sw_path_split(relpath, dir, sizeof(dir), base, sizeof(base)) < 0)
		return sw_errf(e, SW_EPATH, "'%s': path too long", relpath);
	/* Unique per process and call: two extracts of one template may run at once. */
	if (sw_path_fmt(tmp, sizeof(tmp), ".%s.%ld.%u.part", base, (long)getpid(),
	    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)) < 0 || strlen(tmp) > SW_NAME_MAX)
		return sw_errf(e, SW_EPATH, "'%s': name too long", relpath);
	if ((dfd = sw_dir_open_beneath(dirfd, dir, 1, 0755, e)) < 0)
		return dfd;
	if ((r = ova_atomic_begin(&a, dfd, base, tmp, OVA_ATOMIC_EXCL, relpath, e)) < 0)
		goto out;
	/* The archive is fsynced before its rename and not read here again. */
	if ((r = pack_fd(s, obj, a.fd, flags, &wb, &size, e)) < 0) {
		ova_atomic_abort(&a);
		goto out;
	}
	if ((r = ova_atomic_commit(&a, e)) < 0)
		goto out;
	if (ret_size != NULL)
		*ret_size = size;
	r = 0;
out:
	(void)close(dfd);
	return r;
}
