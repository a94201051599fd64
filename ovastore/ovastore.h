/*
 * ovastore: the secondary-storage format library.  It owns every byte
 * layout on the share: the new format (NAME.ovf + disks + NAME.ova.meta,
 * the meta file written last as the commit record) and the legacy format
 * (one uncompressed tar, NAME.ova).  Beside the objects it owns the
 * worker's records under .snapworker/ (ovastore/state.h) and the durable
 * write of every file (ovastore/atomic.h).
 *
 * An object is addressed relative to a store root as "DIR/NAME", its install
 * path without extension; a trailing ".ova" is accepted and stripped.  Every
 * file is resolved beneath the root's directory descriptor without following
 * symbolic links (common/path.h), so no name from a message, a meta file or
 * an archive can lead outside the store.
 *
 * Errors: every function returns 0 (or a count) on success and a negative
 * code (common/err.h) on failure, with the reason in the struct sw_err the
 * caller passed (may be NULL).  Output parameters ret_* are set only on
 * success.  Destructors accept NULL.  Nothing here logs above debug.
 *
 * Thread safety: distinct objects may be used from distinct threads; one
 * struct ova_store may be shared (it holds only a descriptor).
 */
#ifndef OVASTORE_H
#define OVASTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/io.h"

/* Bounds on everything a meta file, an OVF or an archive may claim. */
#define OVA_MAX_DISKS        64            /* numDisks, disks in an OVF, disks of a writer */
#define OVA_META_MAX         (64 * 1024)   /* bytes of a .ova.meta file */
#define OVA_META_MAX_KEYS    1024
#define OVA_OVF_MAX          (16 * 1024 * 1024) /* bytes of an .ovf descriptor */
#define OVA_OVF_MAX_DEPTH    64            /* XML element nesting */
#define OVA_TAR_MAX_MEMBERS  1024
#define OVA_TAR_MAX_NAME     255           /* a member's base name (SW_NAME_MAX) */
#define OVA_SHA256_HEX       65            /* 64 hex digits + NUL */

enum ova_format {
	OVA_FMT_ABSENT = 0, /* neither NAME.ova.meta nor NAME.ova */
	OVA_FMT_OVF = 1,    /* new: NAME.ova.meta present ("ovf" in events) */
	OVA_FMT_OVA = 2,    /* legacy: NAME.ova ("ova" in events) */
};

/* "ovf", "ova" or "absent": the strings the completion event uses. */
const char *ova_format_name(enum ova_format f);

/* ---------------------------------------------------------------- store */

struct ova_store;

/* Opens a store root given by an operator (config, CLI). */
int ova_store_open(const char *root, struct ova_store **ret_store, struct sw_err *e);
/* Uses a duplicate of rootfd (the caller keeps its own). */
int ova_store_open_fd(int rootfd, struct ova_store **ret_store, struct sw_err *e);
void ova_store_close(struct ova_store *s);
/* The store's root directory descriptor (owned by the store). */
int ova_store_fd(const struct ova_store *s);

/*
 * Splits an install path into DIR and NAME after validation (relative, no
 * "..", no control characters, trailing ".ova" stripped, NAME not empty and
 * not ending in ".meta"/".part").  dir gets "" for an object at the root.
 */
int ova_object_split(const char *install_path, char *dir, size_t dirsz,
    char *name, size_t namesz, struct sw_err *e);

/* ------------------------------------------------------------- results */

/* One file of an object, relative to the store root. */
struct ova_file {
	char *path;                    /* "DIR/NAME-disk0.vmdk" */
	uint64_t size;
	char sha256[OVA_SHA256_HEX];   /* "" when not computed or not recorded */
};

/*
 * What an operation produced (writer commit, unpack, copy) or removed
 * (delete): the worker copies it into the completion event.
 */
struct ova_result {
	enum ova_format format;
	char *install_path;            /* "DIR/NAME" without extension */
	uint64_t physical_size;        /* sum of the file sizes */
	uint64_t virtual_size;         /* from the OVF; 0 when unknown */
	size_t nfiles;
	struct ova_file *files;        /* data files, then the OVF, the meta file last */
};

void ova_result_free(struct ova_result *r);

/* ---------------------------------------------------------------- meta */

struct ova_meta_kv {
	char *key;
	char *value;
	unsigned line;                 /* line where the entry starts (1-based) */
};

struct ova_meta_disk {
	char *name;                    /* file name in DIR: a single safe name */
	uint64_t size;
	char sha256[OVA_SHA256_HEX];   /* "" when the meta has no diskK.sha256 */
};

struct ova_meta {
	char *ova_filename;            /* NULL when absent (optional on read) */
	char *version;                 /* "1" or "1.0" */
	char *ovf;                     /* OVF file name in DIR */
	size_t ndisks;                 /* numDisks, 1..OVA_MAX_DISKS */
	struct ova_meta_disk *disks;   /* disk1 .. diskN, in order */
	size_t nkeys;
	struct ova_meta_kv *keys;      /* every entry in file order, unknown keys too */
};

/*
 * Parses a .ova.meta file (Java properties syntax).  A bad file is SW_EFORMAT
 * (SW_ETOOBIG past the bounds) with a message naming the key and the line.
 */
int ova_meta_parse(const void *buf, size_t len, struct ova_meta **ret_meta, struct sw_err *e);

/*
 * Appends the CloudStack-compatible serialisation to out: ova.filename,
 * version=1.0, ovf, numDisks, then diskK.name, diskK.size (and diskK.sha256
 * when known) per disk.  Unknown keys of m are not written.
 */
int ova_meta_format(const struct ova_meta *m, struct sw_buf *out, struct sw_err *e);

/* Value of key (last occurrence) or NULL. */
const char *ova_meta_get(const struct ova_meta *m, const char *key);

void ova_meta_free(struct ova_meta *m);

/* ----------------------------------------------------------------- OVF */

struct ova_ovf_file {                  /* References/File */
	char *id;                          /* ovf:id */
	char *href;                        /* ovf:href, a single safe name */
	uint64_t size;                     /* ovf:size, valid when has_size */
	int has_size;
};

struct ova_ovf_disk {                  /* DiskSection/Disk */
	char *disk_id;                     /* ovf:diskId */
	char *file_ref;                    /* ovf:fileRef (an id in files[]); NULL for a blank disk */
	long file_index;                   /* index of file_ref in files[], -1 when none */
	uint64_t capacity;                 /* bytes: ovf:capacity x ovf:capacityAllocationUnits */
	uint64_t populated_size;           /* ovf:populatedSize, 0 when absent */
	char *format;                      /* ovf:format or NULL */
};

struct ova_ovf {
	int version;                       /* 1 or 2 (the envelope namespace) */
	size_t nfiles;
	struct ova_ovf_file *files;
	size_t ndisks;
	struct ova_ovf_disk *disks;
	uint64_t virtual_size;             /* sum of the disks' capacities */
};

/*
 * Parses an OVF descriptor with libxml2: no network, no entity substitution,
 * no DTD, at most OVA_OVF_MAX bytes and OVA_OVF_MAX_DEPTH levels.  Hostile or
 * malformed input is SW_EFORMAT / SW_ETOOBIG.
 */
int ova_ovf_parse(const void *buf, size_t len, struct ova_ovf **ret_ovf, struct sw_err *e);

/* Index in ovf->files of the file named href, or -1. */
long ova_ovf_find_file(const struct ova_ovf *ovf, const char *href);

void ova_ovf_free(struct ova_ovf *ovf);

/* ------------------------------------------------------------- legacy tar */

struct ova_tar_member {
	char *name;                        /* as stored (validated: relative, no "..") */
	uint64_t offset;                   /* byte offset of the data in the archive */
	uint64_t size;
};

struct ova_tar_index {
	size_t n;
	struct ova_tar_member *members;    /* in archive order */
};

/*
 * Lists an uncompressed tar (ustar, GNU long names, pax, sizes over 8 GiB)
 * read through libarchive, recording each member's data offset.  Refused:
 * compression, non-regular members (links, devices, directories), absolute
 * names, "..", sparse members, more than OVA_TAR_MAX_MEMBERS members,
 * truncated archives.  fd is read with pread (its offset is not used).
 */
int ova_tar_index_fd(int fd, struct ova_tar_index **ret_index, struct sw_err *e);
/* The same over a buffer (fuzzing, tests). */
int ova_tar_index_mem(const void *p, size_t n, struct ova_tar_index **ret_index,
    struct sw_err *e);
/* Member whose name (or base name) is name, or NULL. */
const struct ova_tar_member *ova_tar_find(const struct ova_tar_index *t, const char *name);
void ova_tar_index_free(struct ova_tar_index *t);

/* --------------------------------------------------------------- inspect */

struct ova_disk_info {
	char *name;                        /* file name (new) or member base name (legacy) */
	uint64_t size;                     /* bytes of the file / member */
	uint64_t capacity;                 /* virtual size from the OVF, 0 when unknown */
	uint64_t offset;                   /* legacy: data offset in NAME.ova; new: 0 */
	char sha256[OVA_SHA256_HEX];       /* from the meta when recorded */
};

struct ova_info {
	enum ova_format format;
	char *install_path;                /* "DIR/NAME" */
	char *dir;                         /* "DIR" ("" at the root) */
	char *name;                        /* "NAME" */
	char *ovf_name;                    /* OVF file (new) or member (legacy) */
	uint64_t ovf_size;
	size_t ndisks;
	struct ova_disk_info *disks;       /* meta order (new) or archive order (legacy) */
	uint64_t virtual_size;             /* from the OVF (0 when it has no capacities) */
	uint64_t physical_size;            /* sum of files[].size */
	struct ova_meta *meta;             /* new format: the parsed meta; NULL for legacy */
	struct ova_ovf *ovf;               /* the parsed OVF */
	struct ova_tar_index *tar;         /* legacy: every member */
	size_t nfiles;
	struct ova_file *files;            /* the object's files, as delete would remove them */
};

/*
 * Detects the format (meta present -> new; else NAME.ova -> legacy; else
 * SW_ENOTFOUND) and reads the meta / tar index and the OVF.  Sizes are those
 * on disk; ova_verify() checks them against the meta.
 */
int ova_inspect(struct ova_store *s, const char *obj, struct ova_info **ret_info,
    struct sw_err *e);
void ova_info_free(struct ova_info *info);

/* Only the format (a cheap existence check); OVA_FMT_ABSENT is not an error. */
int ova_detect(struct ova_store *s, const char *obj, enum ova_format *ret_format,
    struct sw_err *e);

/* Flags for ova_verify(). */
#define OVA_VERIFY_NO_DIGEST 0x1           /* skip reading data for diskK.sha256 */

/*
 * Deep check: sizes match the meta, the OVF parses and references exactly
 * the object's disks (sizes where the OVF states them), recorded sha256
 * digests match, a legacy archive reads to its end.  SW_EFORMAT/SW_ECHECKSUM.
 */
int ova_verify(struct ova_store *s, const char *obj, unsigned flags, struct sw_err *e);

/* ---------------------------------------------------------------- delete */

/*
 * Deletes either format: the meta file first (so a half-deleted object reads
 * as absent), then the OVF and the disks it listed and their debris (.part),
 * or NAME.ova; then DIR if it is empty.  An absent object is success with an
 * empty list.  *ret_removed (may be NULL) lists what was removed.
 */
int ova_delete(struct ova_store *s, const char *obj, struct ova_result **ret_removed,
    struct sw_err *e);

/*
 * Removes the debris of an interrupted write of obj (NAME*.part and meta
 * temporaries) when the object is not committed.  Returns the count removed.
 * A journal of unfinished vCenter work is never debris (ovastore/state.h),
 * not even an older release's NAME~vcenter.part beside the object.
 */
int ova_debris_remove(struct ova_store *s, const char *obj, struct sw_err *e);

/* ---------------------------------------------------------------- writer */

/*
 * A new-format object being written:
 *
 *   ova_writer_begin(store, "snapshots/2/13/U/U", 0, &w, &e);
 *   ova_writer_disk(w, NULL, &sink, &e);    // -> U-disk0.vmdk.part, sha256 on the way
 *   ... sink.write(sink.ud, p, n, &e) ...    // e.g. from vmware/ NFC download
 *   ova_writer_ovf(w, NULL, ovf, ovflen, &e);
 *   ova_writer_commit(w, &result, &e);       // fsync, rename, meta last, fsync dir
 *   ova_writer_free(w);                      // aborts (removes .part files) unless committed
 *
 * begin creates DIR when missing, removes debris of an earlier attempt and
 * refuses (SW_EEXIST) an object that exists in either format.  Temporaries
 * are NAME-diskK.vmdk.part, NAME.ovf.part, NAME~<file>.part for caller-named
 * files and NAME.ova.meta.part: ova_debris_remove()/ova_delete() know them.
 * Blocks of 128 KiB and more are digested on a helper thread while they are
 * written (one thread per writer, joined by free); a sink call returns when
 * both are done, so the caller may reuse its buffer at once.
 */
#define OVA_WRITER_NO_OVF_CHECK 0x1   /* commit: do not require the OVF to reference exactly the disks */
#define OVA_WRITER_SPARSE       0x2   /* all-zero data becomes holes (unpack uses it) */
#define OVA_WRITER_NO_SHA256    0x4   /* do not compute sha256 of the disks (no diskK.sha256) */

struct ova_writer;

int ova_writer_begin(struct ova_store *s, const char *obj, unsigned flags,
    struct ova_writer **ret_writer, struct sw_err *e);

/*
 * Starts the next disk: name NULL means "NAME-diskK.vmdk" (K counted from 0);
 * otherwise a single safe file name (kept as is, e.g. an OVA member's).  The
 * sink is valid until commit/abort/free; several disks may be open at once.
 */
int ova_writer_disk(struct ova_writer *w, const char *name, struct sw_sink *ret_sink,
    struct sw_err *e);

/* Writes the OVF (name NULL: "NAME.ovf"); at most OVA_OVF_MAX bytes; once. */
int ova_writer_ovf(struct ova_writer *w, const char *name, const void *p, size_t n,
    struct sw_err *e);

/* Adds an extra key=value to the meta file after the standard keys. */
int ova_writer_meta_set(struct ova_writer *w, const char *key, const char *value,
    struct sw_err *e);

/*
 * Commits: checks the OVF, fsyncs and renames every data file, then writes
 * NAME.ova.meta (temp + fsync + rename + fsync DIR).  On failure everything
 * written is removed (the writer must still be freed).  *ret_result (may be
 * NULL) lists the files.
 */
int ova_writer_commit(struct ova_writer *w, struct ova_result **ret_result, struct sw_err *e);

/*
 * Commits files already in place: reads NAME.ovf in DIR, checks that every
 * file its References list exists (a regular file, not a link), fsyncs them
 * and writes NAME.ova.meta last (disks in References order).  For objects
 * whose files were produced by another tool (`ovastore commit`).
 */
#define OVA_COMMIT_NO_SHA256 0x1      /* do not read the disks to record diskK.sha256 */
int ova_commit_files(struct ova_store *s, const char *obj, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e);

/* Removes everything written so far; then frees. */
void ova_writer_abort(struct ova_writer *w);
/* Frees; aborts first unless committed. */
void ova_writer_free(struct ova_writer *w);

/* ------------------------------------------------------- OVA generation */

/* Flags for pack. */
#define OVA_PACK_NO_SPARSE 0x1        /* write holes as zeros even to a regular file */

/*
 * Writes an OVA of obj (either format) to fd: a POSIX tar with the OVF
 * first, then the disks in meta order (members over 8 GiB get a pax size
 * record); a legacy object is copied as is.  Constant memory; data moved with
 * copy_file_range/sendfile where the kernel allows.  fd may be a pipe.
 * *ret_size (may be NULL) gets the bytes written.
 */
int ova_pack_fd(struct ova_store *s, const char *obj, int fd, unsigned flags,
    uint64_t *ret_size, struct sw_err *e);

/*
 * The same into relpath beneath dirfd, atomically: a temporary in the same
 * directory, fsync, rename over relpath, fsync of the directory.
 */
int ova_pack_at(struct ova_store *s, const char *obj, int dirfd, const char *relpath,
    unsigned flags, uint64_t *ret_size, struct sw_err *e);

/* --------------------------------------------------------------- unpack */

#define OVA_UNPACK_NO_SHA256 0x1      /* do not compute sha256 (unless a .mf needs it) */
#define OVA_UNPACK_REPLACE   0x2      /* delete an existing object of that name first */

/*
 * Reads an OVA (uncompressed tar, OVF first) from src and stores it as a
 * new-format object obj without an intermediate copy: the files keep their
 * member base names, the OVF-referenced members become the disks (archive
 * order), a .mf manifest (SHA1/SHA256 lines) is verified and not stored, a
 * .cert is ignored.  Any error (also a digest mismatch: SW_ECHECKSUM) leaves
 * nothing behind.
 */
int ova_unpack(struct ova_store *s, const char *obj, struct sw_source *src, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e);
/* The same from a file descriptor (file or pipe). */
int ova_unpack_fd(struct ova_store *s, const char *obj, int fd, unsigned flags,
    struct ova_result **ret_result, struct sw_err *e);

/* ---------------------------------------------------------------- reader */

/*
 * A sw_source over one file of an object: a member of a legacy NAME.ova read
 * by offset (no extraction), or a file of a new-format object.
 */
struct ova_reader;

/* file: a file/member name as ova_inspect() lists it (base names match members). */
int ova_reader_open(struct ova_store *s, const char *obj, const char *file,
    struct ova_reader **ret_reader, struct sw_err *e);
/* Disk k (0-based) of either format. */
int ova_reader_open_disk(struct ova_store *s, const char *obj, size_t k,
    struct ova_reader **ret_reader, struct sw_err *e);
struct sw_source ova_reader_source(struct ova_reader *r);
uint64_t ova_reader_size(const struct ova_reader *r);
/* The underlying descriptor and the data's offset in it (for sendfile). */
int ova_reader_fd(const struct ova_reader *r, uint64_t *ret_offset);
void ova_reader_close(struct ova_reader *r);

/* ----------------------------------------------------------------- copy */

/*
 * Copies obj to dst (dstobj NULL: the same install path) keeping its format:
 * data files as .part, fsync, rename, the meta file copied byte for byte
 * last.  Recorded sha256 digests are checked on the way.  SW_EEXIST when the
 * destination exists.
 */
int ova_copy(struct ova_store *src, const char *obj, struct ova_store *dst,
    const char *dstobj, struct ova_result **ret_result, struct sw_err *e);

#endif
