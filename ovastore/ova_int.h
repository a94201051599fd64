/*
 * Internals shared by the files of ovastore/ (double-underscore names).
 * Not installed, not for other modules.
 */
#ifndef OVA_INT_H
#define OVA_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/path.h"
#include "ovastore/atomic.h"
#include "ovastore/ovastore.h"
#include "ovastore/state.h"

struct ova_store {
	int rootfd;
};

/* An object's resolved address: DIR opened beneath the store root. */
struct ova__obj {
	char dir[SW_PATH_MAX];
	char name[SW_NAME_MAX + 1];
	char install[SW_PATH_MAX];   /* "DIR/NAME" or "NAME" */
	int dirfd;                   /* -1 when DIR does not exist */
};

/* Resolves obj; with create, makes DIR.  A missing DIR without create leaves dirfd -1. */
int ova__obj_open(struct ova_store *s, const char *obj, int create, struct ova__obj *o,
    struct sw_err *e);
void ova__obj_close(struct ova__obj *o);

/* "NAME" + suffix into out (a file name in DIR); SW_EPATH when too long. */
int ova__fname(const struct ova__obj *o, const char *suffix, char *out, size_t outsz,
    struct sw_err *e);
/* "DIR/file" relative to the store root. */
int ova__relpath(const struct ova__obj *o, const char *file, char *out, size_t outsz,
    struct sw_err *e);

/* Whether file exists in dirfd (lstat: a symlink counts as existing); -errno on error. */
int ova__exists(int dirfd, const char *file);

/* Opens a regular file named file in dirfd (no symlinks, O_CLOEXEC). */
int ova__open(int dirfd, const char *file, int flags, mode_t mode, struct sw_err *e);

/* Reads a whole regular file of at most max bytes into b. */
int ova__read_file(int dirfd, const char *file, size_t max, struct sw_buf *b, struct sw_err *e);

/* fsync of a directory, with the name for the message. */
int ova__fsync_dir(int dirfd, const char *what, struct sw_err *e);

/* unlinkat that treats ENOENT as success; 1 when removed, 0 when absent. */
int ova__unlink(int dirfd, const char *file, const char *what, struct sw_err *e);

/* Whether s ends in suffix. */
int ova__ends_with(const char *s, const char *suffix);

/*
 * A temporary (.part) that is being written: its writer holds an open file
 * description write lock on the whole file for as long as the file is open
 * (ova__part_hold, best effort: a store without locks gets none), and
 * debris removal leaves a file so held alone (ova__part_held: 1 held by
 * another open file description, 0 not held or unknown).  Age alone cannot
 * tell a dead attempt's temporary from a live one that is waiting for
 * vCenter or a slow source.  Seen as far as the store's lock scope goes
 * (ovastore/mountinfo.h).
 */
void ova__part_hold(int fd);
int ova__part_held(int dirfd, const char *file);

/* Appends a file to a result's or an info's list and counts its size. */
int ova__files_append(struct ova_file **files, size_t *nfiles, uint64_t *physical_size,
    const char *relpath, uint64_t size, const char *sha256, struct sw_err *e);
void ova__files_free(struct ova_file *files, size_t nfiles);

/* The format of the resolved object o (OVA_FMT_ABSENT when its DIR does not exist). */
int ova__detect_in(struct ova__obj *o, enum ova_format *ret, struct sw_err *e);

/* Result list building. */
struct ova_result *ova__result_new(enum ova_format f, const char *install);
int ova__result_add(struct ova_result *r, const char *relpath, uint64_t size,
    const char *sha256, struct sw_err *e);

/* ------------------------------------------------------------- writer */

struct sw_hashpipe;

/* One file of a writer: a temporary until commit renames it. */
struct ova__wfile {
	struct ova_writer *w;
	char name[SW_NAME_MAX + 1];      /* final name in DIR */
	char tmp[SW_NAME_MAX + 1];       /* temporary name in DIR */
	int fd;
	uint64_t size;
	struct sw_writeback wb;           /* write-behind of the file (common/io.h) */
	struct sw_hash *hash;            /* NULL when off or finished */
	char sha256[OVA_SHA256_HEX];
	int renamed;                     /* the final name exists and is ours */
};

/* An extra key of the meta file (ova_writer_meta_set). */
struct ova__wkv {
	char *key;
	char *value;
};

struct ova_writer {
	struct ova__obj o;
	unsigned flags;
	struct ova__wfile disks[OVA_MAX_DISKS];
	size_t ndisks;
	struct ova__wfile ovf;
	int have_ovf;
	struct ova_ovf *parsed;          /* the OVF, NULL when it did not parse (NO_OVF_CHECK) */
	struct ova__wkv *extra;
	size_t nextra;
	int failed;                      /* a sink failed: commit is refused */
	int committed;
	int meta_renamed;
	char meta_name[SW_NAME_MAX + 1];
	struct sw_hashpipe *hashpipe;    /* digests of the data files, NULL until needed */
};

/*
 * Waits until the hashing pipeline has digested everything written so far:
 * before a file's digest is finished or freed.  0 or SW_EINTERNAL.
 */
int ova__writer_hash_sync(struct ova_writer *w);

/* Removes every file this writer made (the meta first); the writer stays allocated. */
void ova__writer_discard(struct ova_writer *w);

/*
 * Finishes the digest of the writer's file named name (no more data may be
 * written to it) and copies it to out; "" when digests are off.  For unpack's
 * manifest check before commit.
 */
int ova__writer_file_sha256(struct ova_writer *w, const char *name, char *out,
    struct sw_err *e);

/* sha256 (hex) of a whole regular file in dirfd. */
int ova__hash_file(int dirfd, const char *file, char *out, struct sw_err *e);

/*
 * Whether a base name is one we never accept as a data file of an object:
 * NAME.part, NAME.meta, template.properties, .snapworker.
 */
int ova__name_reserved(const char *name);
/*
 * Whether a base name is one no file of an object (a disk, an OVF) may
 * have: a reserved name, or NAME.ova (a legacy object's archive).
 */
int ova__member_reserved(const char *name);
/* Why a reserved name is refused, for messages. */
#define OVA__RESERVED_WHY \
	"a name the store reserves (.meta, .part, .ova, template.properties, .snapworker)"

/*
 * Copies len bytes from infd at inoff to outfd at its current offset.  With
 * sparse, holes of infd become holes in outfd (outfd must be a regular file,
 * its offset is advanced).
 * hash (may be NULL) gets every byte, which forces read/write.  wb (may be
 * NULL): write-behind of a regular outfd (common/io.h sw_writeback).
 */
int ova__copy_data(int infd, uint64_t inoff, uint64_t len, int outfd, int sparse,
    struct sw_hash *hash, struct sw_writeback *wb, const char *what, struct sw_err *e);

/*
 * Copies the first len bytes of infd into outfd (a new, empty regular file
 * at offset 0) for ova_copy: a reflink (FICLONE) where the file system
 * shares blocks (*ret_cloned 1: nothing read, hash untouched).  Else, with
 * hash, one read of infd straight into a hashing thread's ring, written out
 * from there while the thread feeds hash (outfd is fsynced before the digest
 * is waited for); without, copy_file_range (sendfile, read/write as
 * fallbacks).  The copy is written behind (sw_writeback).
 */
int ova__copy_file(int infd, uint64_t len, int outfd, struct sw_hash *hash, int *ret_cloned,
    const char *what, struct sw_err *e);

/* ------------------------------------------------------------ manifest */

/* One line of an OVF manifest: "ALG(name)= hex" (hex in lower case). */
struct ova__mf_entry {
	char alg[8];
	char name[OVA_TAR_MAX_NAME + 1];
	char hex[130];
	unsigned line;                   /* 1-based */
};

/*
 * The next entry of manifest text (NUL-terminated) from *pos, which it
 * advances; *line counts lines (start at 0).  1: an entry; 0: the end;
 * SW_EFORMAT for a malformed line.
 */
int ova__mf_next(const char *text, size_t *pos, unsigned *line, struct ova__mf_entry *ent,
    struct sw_err *e);
/* 1 for SHA1, 256 for SHA256, SW_EUNSUPPORTED for any other digest. */
int ova__mf_alg(const struct ova__mf_entry *ent, struct sw_err *e);
/*
 * Checks the manifest member of the archive on fd (indexed as t; what names
 * it in messages), if it has one: every line against the data of the member
 * it names.  SW_ECHECKSUM on a mismatch.
 */
int ova__mf_check_archive(int fd, const struct ova_tar_index *t, const char *what,
    struct sw_err *e);

/*
 * The checks of an inspected object that read no data: its OVF references
 * exactly its disks (sizes where it states them), and a new-format object's
 * meta agrees with the OVF and the files' sizes.  SW_EFORMAT.
 */
int ova__info_check(const struct ova_info *in, struct sw_err *e);

/* "<id><suffix>" of a state record; SW_EFORMAT when id is not a safe command id. */
int ova__state_file(enum ova_state_kind kind, const char *id, char *out, size_t outsz,
    struct sw_err *e);
/* Opens the directory of kind beneath the root (created with create); SW_ENOTFOUND. */
int ova__state_dir_open(struct ova_store *s, enum ova_state_kind kind, int create,
    struct sw_err *e);

#endif
