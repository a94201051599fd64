/*
 * Tar: reading untrusted archives through libarchive (tar format only, no
 * filters), and writing POSIX ustar/pax headers ourselves, which lets the
 * OVA generator move the data with copy_file_range/sendfile in constant
 * memory.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/path.h"
#include "ovastore/ova_int.h"
#include "ovastore/tar_int.h"

#define TAR_BLOCK 512
#define TAR_READ_BUF (1024 * 1024)
/* A member's full stored name (directories included) may not be longer. */
#define TAR_MAX_PATH 1024

/* ------------------------------------------------------------ reading */

struct archive *
ova__tar_reader_new(void)
{
	struct archive *a = archive_read_new();

	if (a == NULL)
		return NULL;
	/* Only tar: no compression filter, no other format may be sniffed. */
	if (archive_read_support_format_tar(a) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int
ova__tar_check_entry(struct archive_entry *ent, unsigned count, char *base, size_t basesz,
    struct sw_err *e)
{
	const char *path = archive_entry_pathname(ent);
	const char *slash;
	struct sw_err pe;
	size_t len;

	if (path == NULL)
		return sw_errf(e, SW_EFORMAT, "tar member %u: no usable name", count);
	len = strnlen(path, TAR_MAX_PATH + 1);
	if (len > TAR_MAX_PATH)
		return sw_errf(e, SW_ETOOBIG, "tar member %u: name longer than %d bytes", count,
		    TAR_MAX_PATH);
	/*
	 * Type first (a directory's "dir/" would otherwise read as a bad name).
	 * Messages name the member by number: its name is not yet known safe.
	 */
	if (archive_entry_hardlink(ent) != NULL || archive_entry_symlink(ent) != NULL)
		return sw_errf(e, SW_EFORMAT, "tar member %u: links are not accepted", count);
	if (archive_entry_filetype(ent) != AE_IFREG)
		return sw_errf(e, SW_EFORMAT,
		    "tar member %u: not a regular file (directory, link or device)", count);
	if (archive_entry_sparse_count(ent) > 0)
		return sw_errf(e, SW_EFORMAT, "tar member %u: sparse members are not accepted",
		    count);
	if (!archive_entry_size_is_set(ent) || archive_entry_size(ent) < 0)
		return sw_errf(e, SW_EFORMAT, "tar member %u: no size", count);
	/* "./x" is how `tar -C dir .` names things: the prefix means nothing. */
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (sw_path_check_rel(path, &pe) < 0)
		return sw_errf(e, SW_EPATH, "tar member %u: unsafe name: %s", count, pe.msg);
	slash = strrchr(path, '/');
	slash = slash ? slash + 1 : path;
	if (strlen(slash) >= basesz || strlen(slash) > OVA_TAR_MAX_NAME)
		return sw_errf(e, SW_ETOOBIG, "tar member '%s': name too long", path);
	memcpy(base, slash, strlen(slash) + 1);
	return 0;
}

int
ova__tar_errf(struct archive *a, struct sw_err *e, const char *what)
{
	const char *m = archive_error_string(a);
	int en = archive_errno(a);

	/*
	 * libarchive reports format problems as EILSEQ/EINVAL/-1 and passes our
	 * callbacks' errno values through: keep the I/O ones, call the rest format.
	 */
	if (en == EIO || en == ENOMEM || en == ENOSPC || en == EDQUOT || en == EACCES ||
	    en == EPERM || en == ESTALE)
		return sw_errf(e, -en, "%s: %s", what, m ? m : "I/O error");
	return sw_errf(e, SW_EFORMAT, "%s: %s", what, m ? m : "unreadable tar archive");
}

/* An index being built, and the source it is read from (fd or memory). */
struct idx_src {
	int fd;
	const unsigned char *mem;
	uint64_t size;
	uint64_t pos;
	unsigned char *buf;
	int err;
};

static ssize_t
idx_read(struct archive *a, void *ud, const void **ret_buf)
{
	struct idx_src *s = ud;
	size_t want;
	ssize_t n;

	(void)a;
	if (s->pos >= s->size)
		return 0;
	want = s->size - s->pos < TAR_READ_BUF ? (size_t)(s->size - s->pos) : TAR_READ_BUF;
	if (s->mem != NULL) {
		*ret_buf = s->mem + s->pos;
		s->pos += want;
		return (ssize_t)want;
	}
	n = sw_pread_full(s->fd, s->buf, want, (off_t)s->pos);
	if (n < 0) {
		s->err = (int)-n;
		archive_set_error(a, (int)-n, "read error");
		return -1;
	}
	s->pos += (uint64_t)n;
	*ret_buf = s->buf;
	return n;
}

static la_int64_t
idx_skip(struct archive *a, void *ud, la_int64_t req)
{
	struct idx_src *s = ud;
	uint64_t left = s->size - s->pos;
	uint64_t n = req < 0 ? 0 : (uint64_t)req;

	(void)a;
	/* Never past the end: libarchive then reads and notices the truncation. */
	if (n > left)
		n = left;
	s->pos += n;
	return (la_int64_t)n;
}

/* The 512-byte block before a member's data must be its own tar header. */
static int
header_before_ok(struct idx_src *s, uint64_t off)
{
	unsigned char h[TAR_BLOCK];
	unsigned sum = 0, stored = 0;
	size_t i;

	if (off < TAR_BLOCK || off % TAR_BLOCK != 0)
		return 0;
	if (s->mem != NULL)
		memcpy(h, s->mem + off - TAR_BLOCK, TAR_BLOCK);
	else if (sw_pread_full(s->fd, h, TAR_BLOCK, (off_t)(off - TAR_BLOCK)) != TAR_BLOCK)
		return 0;
	for (i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	for (i = 148; i < 156 && (h[i] == ' ' || h[i] == '\0'); i++)
		;
	for (; i < 156 && h[i] >= '0' && h[i] <= '7'; i++)
		stored = stored * 8 + (unsigned)(h[i] - '0');
	return stored == sum && (h[156] == '0' || h[156] == '\0' || h[156] == '7');
}

static int
idx_add(struct ova_tar_index *t, const char *name, uint64_t off, uint64_t size,
    struct sw_err *e)
{
	struct ova_tar_member *m;
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->members[i].name, name) == 0)
			return sw_errf(e, SW_EFORMAT, "tar member '%s' appears twice", name);
	m = realloc(t->members, (t->n + 1) * sizeof(*m));
	if (m == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	t->members = m;
	m = &t->members[t->n];
	if ((m->name = strdup(name)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	m->offset = off;
	m->size = size;
	t->n++;
	return 0;
}

static int
index_src(struct idx_src *s, struct ova_tar_index **ret_index, struct sw_err *e)
{
	struct archive *a = NULL;
	struct archive_entry *ent;
	struct ova_tar_index *t = NULL;
	char base[OVA_TAR_MAX_NAME + 1];
	unsigned count = 0;
	int r, ar;

	if ((t = calloc(1, sizeof(*t))) == NULL || (a = ova__tar_reader_new()) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (archive_read_set_read_callback(a, idx_read) != ARCHIVE_OK ||
	    archive_read_set_skip_callback(a, idx_skip) != ARCHIVE_OK ||
	    archive_read_set_callback_data(a, s) != ARCHIVE_OK ||
	    archive_read_open1(a) != ARCHIVE_OK) {
		r = ova__tar_errf(a, e, "tar");
		goto out;
	}
	for (;;) {
		uint64_t off, size;

		ar = archive_read_next_header(a, &ent);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = ova__tar_errf(a, e, "tar");
			goto out;
		}
		if (++count > OVA_TAR_MAX_MEMBERS) {
			r = sw_errf(e, SW_ETOOBIG, "tar: more than %d members", OVA_TAR_MAX_MEMBERS);
			goto out;
		}
		if ((r = ova__tar_check_entry(ent, count, base, sizeof(base), e)) < 0)
			goto out;
		/* After the header(s), libarchive's position is the data's offset. */
		off = (uint64_t)archive_filter_bytes(a, 0);
		size = (uint64_t)archive_entry_size(ent);
		if (off > s->size || size > s->size - off) {
			r = sw_errf(e, SW_EFORMAT, "tar member '%s': truncated (%llu bytes missing)",
			    archive_entry_pathname(ent),
			    (unsigned long long)(off + size > s->size ? off + size - s->size : 0));
			goto out;
		}
		if (!header_before_ok(s, off)) {
			r = sw_errf(e, SW_EFORMAT, "tar member '%s': cannot locate its data",
			    archive_entry_pathname(ent));
			goto out;
		}
		if ((r = idx_add(t, archive_entry_pathname(ent), off, size, e)) < 0)
			goto out;
		/* Duplicate base names would make "find by base name" ambiguous. */
		if (t->n > 1 && ova_tar_find(t, base) != &t->members[t->n - 1]) {
			r = sw_errf(e, SW_EFORMAT, "tar: two members named '%s'", base);
			goto out;
		}
		if (archive_read_data_skip(a) != ARCHIVE_OK) {
			r = ova__tar_errf(a, e, "tar");
			goto out;
		}
	}
	if (t->n == 0) {
		r = sw_errf(e, SW_EFORMAT, "tar: no members");
		goto out;
	}
	*ret_index = t;
	t = NULL;
	r = 0;
out:
	if (a != NULL)
		archive_read_free(a);
	ova_tar_index_free(t);
	return r;
}

int
ova_tar_index_fd(int fd, struct ova_tar_index **ret_index, struct sw_err *e)
{
	struct idx_src s = { fd, NULL, 0, 0, NULL, 0 };
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return sw_errno(e, errno, "stat of the archive");
	if (!S_ISREG(st.st_mode))
		return sw_errf(e, SW_EFORMAT, "tar: not a regular file");
	s.size = (uint64_t)st.st_size;
	if ((s.buf = malloc(TAR_READ_BUF)) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	r = index_src(&s, ret_index, e);
	free(s.buf);
	return r;
}

int
ova_tar_index_mem(const void *p, size_t n, struct ova_tar_index **ret_index, struct sw_err *e)
{
	struct idx_src s = { -1, p, n, 0, NULL, 0 };

	if (p == NULL && n > 0)
		return sw_errf(e, -EINVAL, "tar: no buffer");
	if (p == NULL)
		s.mem = (const unsigned char *)"";
	return index_src(&s, ret_index, e);
}

const struct ova_tar_member *
ova_tar_find(const struct ova_tar_index *t, const char *name)
{
	size_t i;

	if (t == NULL || name == NULL)
		return NULL;
	for (i = 0; i < t->n; i++)
		if (strcmp(t->members[i].name, name) == 0)
			return &t->members[i];
	for (i = 0; i < t->n; i++) {
		const char *b = strrchr(t->members[i].name, '/');

		if (b != NULL && strcmp(b + 1, name) == 0)
			return &t->members[i];
	}
	return NULL;
}

void
ova_tar_index_free(struct ova_tar_index *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->members[i].name);
	free(t->members);
	free(t);
}

/* ------------------------------------------------------------ writing */

/* Octal, zero-padded to width-1 digits and a NUL; 0 when it does not fit. */
static int
put_octal(unsigned char *f, size_t width, uint64_t v)
{
	size_t i = width - 1;

	f[i] = '\0';
	while (i > 0) {
		f[--i] = (unsigned char)('0' + (v & 7));
		v >>= 3;
	}
	return v == 0;
}

/* GNU base-256 (first byte 0x80, big-endian): every reader we care about knows it. */
static void
put_base256(unsigned char *f, size_t width, uint64_t v)
{
	size_t i;

	for (i = width; i > 1; i--) {
		f[i - 1] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	f[0] = 0x80;
}

static void
ustar_block(unsigned char *h, const char *name, uint64_t size, int64_t mtime, char type)
{
	size_t nlen = strlen(name);
	unsigned sum = 0;
	size_t i;

	memset(h, 0, TAR_BLOCK);
	memcpy(h, name, nlen > 100 ? 100 : nlen);
	(void)put_octal(h + 100, 8, 0644);
	(void)put_octal(h + 108, 8, 0);
	(void)put_octal(h + 116, 8, 0);
	if (!put_octal(h + 124, 12, size))
		put_base256(h + 124, 12, size);
	(void)put_octal(h + 136, 12, mtime < 0 ? 0 : (uint64_t)mtime);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 265, "root", 4);
	memcpy(h + 297, "root", 4);
	(void)put_octal(h + 329, 8, 0);
	(void)put_octal(h + 337, 8, 0);
	memset(h + 148, ' ', 8);
	for (i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	(void)put_octal(h + 148, 7, sum);
	h[155] = ' ';
}

/* Appends one pax record "LEN key=value\n" (LEN counts itself). */
static int
pax_record(unsigned char *out, size_t outsz, size_t *pos, const char *key, const char *val)
{
	size_t body = strlen(key) + strlen(val) + 3; /* ' ', '=', '\n' */
	size_t len = body + 1, digits;
	int n;

	for (;;) {
		char tmp[24];

		n = snprintf(tmp, sizeof(tmp), "%zu", len);
		digits = (size_t)n;
		if (body + digits == len)
			break;
		len = body + digits;
	}
	if (*pos + len + 1 > outsz)
		return -ENAMETOOLONG;
	n = snprintf((char *)out + *pos, outsz - *pos, "%zu %s=%s\n", len, key, val);
	if (n < 0 || (size_t)n != len)
		return -ENAMETOOLONG;
	*pos += len;
	return 0;
}

int
ova__tar_header(const char *name, uint64_t size, int64_t mtime, unsigned char *out,
    size_t outsz, size_t *ret_len)
{
	unsigned char rec[TAR_BLOCK * 2];
	size_t rlen = 0, nlen = strlen(name), plen;
	char num[24], pname[101];
	int r;

	if (nlen == 0 || nlen > OVA_TAR_MAX_NAME)
		return -ENAMETOOLONG;
	if (nlen <= 100 && size <= 077777777777ULL) {
		if (outsz < TAR_BLOCK)
			return -ENOBUFS;
		ustar_block(out, name, size, mtime, '0');
		*ret_len = TAR_BLOCK;
		return 0;
	}
	/* A pax extended header carries what ustar cannot: a long name, a size >= 8 GiB. */
	if (nlen > 100 && (r = pax_record(rec, sizeof(rec), &rlen, "path", name)) < 0)
		return r;
	if (size > 077777777777ULL) {
		(void)snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		if ((r = pax_record(rec, sizeof(rec), &rlen, "size", num)) < 0)
			return r;
	}
	plen = (rlen + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
	if (outsz < 2 * TAR_BLOCK + plen)
		return -ENOBUFS;
	/* GNU tar's naming of the extended header: PaxHeaders.0/<name>, cut to 100. */
	r = snprintf(pname, sizeof(pname), "PaxHeaders.0/%s", name);
	(void)r; /* truncation intended: the name field holds 100 bytes */
	ustar_block(out, pname, rlen, mtime, 'x');
	memset(out + TAR_BLOCK, 0, plen);
	memcpy(out + TAR_BLOCK, rec, rlen);
	ustar_block(out + TAR_BLOCK + plen, name, size, mtime, '0');
	*ret_len = 2 * TAR_BLOCK + plen;
	return 0;
}
