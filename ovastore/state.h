/*
 * ovastore state: the worker's own records on a store, kept apart from the
 * objects under <store>/.snapworker/ where no object operation looks, so
 * that deleting an object (or its debris) never deletes the record of
 * unfinished work:
 *
 *   .snapworker/journal/<id>.journal          vCenter crash journals
 *   .snapworker/createvolume/<id>.createvolume CreateVolume completion markers
 *   .snapworker/running/<id>.lock             command locks (ovastore/lock.h)
 *   .snapworker/probe/probe.<host>.<pid>      the health probe's scratch file, removed at
 *                                             once (ovastore/probe.h)
 *
 * <id> is a command id: a single safe file name of at most OVA_STATE_ID_MAX
 * bytes.  Every file is written through the atomic-write helper
 * (ovastore/atomic.h).
 *
 * The journal records what a command is about to make in vCenter (the VM
 * it snapshots and, once taken, the snapshot), so that a redelivery of the
 * command (which finds it by command id) or the sweeper can undo it after a
 * crash.  Its format is "key=value" lines: command, credentials, url, vm,
 * snapshot (empty until taken), object (the install path, for reports) and,
 * while the attempt's export runs, lease (the HttpNfcLease it holds: vCenter
 * blocks the destruction of the worker VM until that lease ends, so an undo
 * aborts it first instead of waiting for vCenter to time it out).
 * Its mtime is the running attempt's heartbeat.  Journals of older releases
 * lie beside their object as DIR/NAME~vcenter.part: they are read and
 * removed (ova_journal_legacy_*), never written, and are not debris.
 *
 * A CreateVolume marker holds one line: the datastore path of the volume's
 * first disk ("[ds] name.vmdk").
 *
 * Errors and conventions as in ovastore.h.  The parsers take a buffer and
 * are fuzzed (tests/fuzz).
 */
#ifndef OVASTORE_STATE_H
#define OVASTORE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "ovastore/ovastore.h"

#define OVA_STATE_DIR             ".snapworker"
#define OVA_STATE_ID_MAX          64
#define OVA_JOURNAL_DIR           ".snapworker/journal"
#define OVA_JOURNAL_SUFFIX        ".journal"
#define OVA_JOURNAL_LEGACY_SUFFIX "~vcenter.part"
#define OVA_JOURNAL_MAX           8192        /* bytes of a journal file */
#define OVA_MARKER_DIR            ".snapworker/createvolume"
#define OVA_MARKER_SUFFIX         ".createvolume"
#define OVA_MARKER_MAX            4096        /* bytes of a marker file */
#define OVA_LOCK_DIR              ".snapworker/running"
#define OVA_LOCK_SUFFIX           ".lock"
#define OVA_PROBE_DIR             ".snapworker/probe"

struct ova_journal {
	char command[OVA_STATE_ID_MAX + 1];   /* the command id: its worker VM's tag */
	char credentials[80];                 /* the credential set's name */
	char url[2049];                       /* the vCenter URL */
	char vm[256];                         /* moref value of the VM */
	char snapshot[256];                   /* moref value of the snapshot; "" when none */
	char object[1024];                    /* install path; "" when not recorded */
	char lease[256];                      /* moref value of its open export lease; "" when none */
};

/*
 * Parses a journal: vm is required, unknown keys are ignored (a later
 * release may add some), values longer than their field, control
 * characters, NUL bytes and files over OVA_JOURNAL_MAX are SW_EFORMAT /
 * SW_ETOOBIG.
 */
int ova_journal_parse(const void *buf, size_t len, struct ova_journal *ret_j, struct sw_err *e);
/* Appends the serialisation to out (values checked as the parser does). */
int ova_journal_format(const struct ova_journal *j, struct sw_buf *out, struct sw_err *e);

/* Writes (replaces) the journal of j->command, atomically; creates the directory. */
int ova_journal_write(struct ova_store *s, const struct ova_journal *j, struct sw_err *e);
/* The journal of command id; SW_ENOTFOUND when there is none. */
int ova_journal_read(struct ova_store *s, const char *id, struct ova_journal *ret_j,
    struct sw_err *e);
/* Removes it; absent is success. */
int ova_journal_remove(struct ova_store *s, const char *id, struct sw_err *e);
/* Heartbeat: sets the journal's mtime to now; with abandon to the epoch (stale at once). */
void ova_journal_touch(struct ova_store *s, const char *id, int abandon);
/* The journal's mtime (seconds since the epoch); SW_ENOTFOUND when gone. */
int ova_journal_mtime(struct ova_store *s, const char *id, int64_t *ret_mtime,
    struct sw_err *e);

/* Legacy journals beside object obj ("DIR/NAME"): read (SW_ENOTFOUND), remove. */
int ova_journal_legacy_read(struct ova_store *s, const char *obj, struct ova_journal *ret_j,
    struct sw_err *e);
int ova_journal_legacy_remove(struct ova_store *s, const char *obj, struct sw_err *e);
/* mtime of obj's legacy journal; SW_ENOTFOUND when gone. */
int ova_journal_legacy_mtime(struct ova_store *s, const char *obj, int64_t *ret_mtime,
    struct sw_err *e);

/* Parses a marker: one line "[...]..." of at most outsz-1 bytes, newline-terminated. */
int ova_marker_parse(const void *buf, size_t len, char *out, size_t outsz, struct sw_err *e);
/* Writes the marker of command id holding value, atomically; creates the directory. */
int ova_marker_write(struct ova_store *s, const char *id, const char *value, struct sw_err *e);
/* Reads it into out; SW_ENOTFOUND when there is none. */
int ova_marker_read(struct ova_store *s, const char *id, char *out, size_t outsz,
    struct sw_err *e);
int ova_marker_remove(struct ova_store *s, const char *id, struct sw_err *e);

enum ova_state_kind {
	OVA_STATE_JOURNAL,
	OVA_STATE_MARKER,
	OVA_STATE_LOCK,
};

/*
 * Calls fn for each record of kind on s (at most 100000; temporaries and
 * foreign files skipped) with its id and mtime; fn returning non-zero stops
 * the walk and is returned.  A missing directory is no record.
 */
typedef int (*ova_state_each_fn)(void *ud, const char *id, int64_t mtime);
int ova_state_each(struct ova_store *s, enum ova_state_kind kind, ova_state_each_fn fn,
    void *ud, struct sw_err *e);

#endif
