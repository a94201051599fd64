/*
 * vCenter for the commands (see vc.h): the command's session (from the
 * daemon's pool, worker/vcenter.h), error mapping, retries of busy-VM
 * conflicts, recovery from a crashed attempt's journal, and the snapshot ->
 * worker VM -> export -> cleanup data path streaming straight into an
 * ovastore writer.
 */
#include "worker/commands/vc.h"
#include "worker/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "ovastore/mountinfo.h"
#include "common/num.h"
#include "common/path.h"
#include "worker/limits.h"

#define BUSY_FIRST_MS     500u      /* first wait after a TaskInProgress */
#define SHUTDOWN_CLEANUP_MS 25000u  /* the daemon exits 30 s after cancelling a job */
#define JOURNAL_STALE_S   300u      /* default; longer than any single vCenter task we wait for */
#define JOURNAL_TOUCH_MS  10000u
#define POOL_CHECK_MS     10000u    /* validating a pooled session */
#define MAKE_WORKER_TRIES 3u        /* a snapshot's disk chain re-read after FileNotFound */

int
wrk__vc_fail(struct wrk__cmd *c, int code)
{
	return wrk__fail(c, code, PROTO_CTX_VCENTER);
}

void
wrk__vc_close(struct wrk__cmd *c, struct vmw_conn *conn, int reusable)
{
	if (conn == NULL)
		return;
	if (reusable && c->vc_key[0] != '\0')
		wrk_vc_pool_put(c->vc_key, conn);
	else
		wrk_vc_disconnect(conn);
}

int
wrk__vc_open(struct wrk__cmd *c, struct vmw_conn **ret_conn, struct sw_err *e)
{
	const struct proto_command *cmd = c->cmd;
	const struct wrk_vcenter *vc;
	int r;

	if (!cmd->has_vcenter || cmd->vcenter.url == NULL || cmd->vcenter.credentials == NULL)
		return wrk__fail_as(c, sw_errf(e, SW_EFORMAT, "vcenter: required for %s",
		    proto_type_name(cmd->type)), PROTO_ERR_INVALID_COMMAND, 0);
	vc = c->job->cfg != NULL ? wrk_config_vcenter(c->job->cfg, cmd->vcenter.credentials) : NULL;
	if (vc == NULL)
		return wrk__fail_as(c, sw_errf(e, SW_EAUTH,
		    "vcenter.credentials: no such credential set in this worker's configuration"),
		    PROTO_ERR_VCENTER_AUTH, 0);
	/* A publisher must never be able to send a password to a host of its choosing. */
	if (!wrk_vcenter_allows(vc, cmd->vcenter.url))
		return wrk__fail_as(c, sw_errf(e, SW_EAUTH,
		    "vcenter.url: not one of the URLs credential set %s is configured for", vc->name),
		    PROTO_ERR_VCENTER_AUTH, 0);
	/* The credential set, the URL and a command's pin decide what a session may be used for. */
	if (snprintf(c->vc_key, sizeof(c->vc_key), "%s\n%s\n%s", vc->name, cmd->vcenter.url,
	    cmd->vcenter.thumbprint != NULL ? cmd->vcenter.thumbprint : "") >=
	    (int)sizeof(c->vc_key))
		c->vc_key[0] = '\0';           /* too long to pool: a session of its own */
	if (c->vc_key[0] != '\0' && (*ret_conn = wrk_vc_pool_take(c->vc_key)) != NULL) {
		struct sw_err ke;
		uint64_t dl = sw_mono_ms() + POOL_CHECK_MS;

		if (c->job->deadline_ms != 0 && c->job->deadline_ms < dl)
			dl = c->job->deadline_ms;
		/* Logs in again by itself if vCenter dropped the session meanwhile. */
		if (vmw_keepalive(*ret_conn, dl, c->job->cancel, &ke) == 0) {
			log_debug("vCenter: reusing a session of credential set %s", vc->name);
			return 0;
		}
		log_debug("vCenter: a pooled session failed its check (%s); logging in", ke.msg);
		wrk_vc_disconnect(*ret_conn);
		*ret_conn = NULL;
	}
	r = wrk_vc_connect(vc, cmd->vcenter.url, cmd->vcenter.thumbprint, c->job->deadline_ms,
	    c->job->cancel, ret_conn, e);
	if (r < 0)
		return wrk__vc_fail(c, r);
	return 0;
}

int
wrk__vc_find_vm(struct wrk__cmd *c, struct vmw_conn *conn, const struct proto_vm *vm,
    struct vmw_moref *ret_vm, struct sw_err *e)
{
	int r;

	if (vm->uuid != NULL)
		r = vmw_vm_find(conn, VMW_VM_BY_ANY, vm->uuid, ret_vm, c->job->deadline_ms,
		    c->job->cancel, e);
	else
		r = vmw_vm_find(conn, VMW_VM_BY_NAME, vm->name != NULL ? vm->name : "", ret_vm,
		    c->job->deadline_ms, c->job->cancel, e);
	if (r < 0)
		sw_errctx(e, "args.vm");
	return r;
}

void
wrk__vc_progress(void *ud, uint64_t bytes, int percent)
{
	struct wrk__cmd *c = ud;

	if (c->job->progress != NULL)
		c->job->progress(c->job->progress_ud, percent < 0 ? 0 : percent, bytes);
}

/* ----------------------------------------------------------- deadlines */

/*
 * Cleanup runs with a deadline of its own and no cancel flag.  During a
 * shutdown (cancelled before the command's deadline) the daemon waits only
 * so long before it exits, so cleanup must fit in that; anything left is the
 * journal's and the sweeper's.
 */
static uint64_t
cleanup_deadline(const struct wrk__cmd *c)
{
	const struct wrk_job *j = c->job;
	uint64_t now = sw_mono_ms();
	int shutdown = j->cancel != NULL && *j->cancel == WRK_CANCEL_SHUTDOWN &&
	    (j->deadline_ms == 0 || now < j->deadline_ms);

	return now + (shutdown ? SHUTDOWN_CLEANUP_MS : WRK_VC_CLEANUP_MS);
}

static int
snapshot_create_retry(struct vmw_conn *conn, const struct vmw_moref *vm, const char *name,
    const char *desc, struct vmw_moref *ret_snap, uint64_t deadline_ms, atomic_int *cancel,
    unsigned *ret_tries, struct sw_err *e)
{
	unsigned delay = BUSY_FIRST_MS, tries = 0;
	int r;

	for (;;) {
		tries++;
		if (cancel != NULL && *cancel) {
			r = sw_errf(e, -ECANCELED, "cancelled");
			break;
		}
		/*
		 * Not cancellable once sent: a task left running would make a
		 * snapshot nobody knows the id of.  Snapshot tasks are short; the
		 * deadline still bounds the wait.
		 */
		r = vmw_snapshot_create(conn, vm, name, desc, 0, ret_snap, deadline_ms, NULL, e);
		if (r != SW_EBUSY || wrk_vc_busy_wait(&delay, deadline_ms, cancel) < 0)
			break;
		log_debug("vc: snapshot of %s busy, retry %u", vm->value, tries);
	}
	if (r == SW_EBUSY)
		sw_errctx(e, "VM still busy after %u attempts", tries);
	*ret_tries = tries;
	return r;
}

/* -------------------------------------------------------------- journal */

/* How long a journal may go untouched before its attempt counts as dead. */
static unsigned
journal_stale_s(const struct wrk__cmd *c)
{
	const struct wrk_config *cfg = c->job->cfg;

	return cfg != NULL && cfg->journal_stale_s != 0 ? cfg->journal_stale_s : JOURNAL_STALE_S;
}

/*
 * 0 once the journal is stale, 1 when it went away meanwhile (the other
 * attempt finished: look at the store again), or -ECANCELED / -ETIMEDOUT.
 * obj: the legacy journal beside obj, else the command's.
 */
static int
journal_wait_stale(struct wrk__cmd *c, struct ova_store *s, const char *obj, struct sw_err *e)
{
	unsigned stale = journal_stale_s(c);
	struct timespec ts = { 0, 250 * 1000000L };
	int64_t mtime;
	int logged = 0, r;

	for (;;) {
		r = obj != NULL ? ova_journal_legacy_mtime(s, obj, &mtime, e) :
		    ova_journal_mtime(s, c->cmd->id, &mtime, e);
		if (r < 0)
			return r == SW_ENOTFOUND ? 1 : r;
		if ((int64_t)time(NULL) - mtime >= (int64_t)stale)
			return 0;
		if (!logged) {
			log_info("%s: another attempt of this command is at work (its journal is "
			    "fresh): waiting for it", c->cmd->id);
			logged = 1;
		}
		if ((r = wrk__check_stop(c, e)) < 0)
			return r;
		nanosleep(&ts, NULL);
	}
}

/*
 * Whether the command lock this attempt holds is seen by every host, so that
 * no other attempt of the command runs anywhere: [store] lock_scope, else the
 * mount's type and options.  why says on what the answer rests.
 */
static int
lock_proves_dead(const struct wrk__cmd *c, char *why, size_t whysz)
{
	const struct wrk_job *j = c->job;
	int configured = j->cfg != NULL ? j->cfg->lock_scope : WRK_LOCKS_AUTO;
	enum ova_lock_scope scope;
	struct sw_err e;

	if (j->lock_mount == NULL) {
		(void)snprintf(why, whysz, "lock not held");
		return 0;
	}
	if (configured != WRK_LOCKS_AUTO) {
		(void)snprintf(why, whysz, "[store] lock_scope = %s",
		    configured == WRK_LOCKS_SHARED ? "shared" : "host");
		return configured == WRK_LOCKS_SHARED;
	}
	if (ova_lock_scope(j->lock_mount, &scope, why, whysz, &e) < 0) {
		/* Unknown: the cautious answer. */
		(void)snprintf(why, whysz, "%s", e.msg);
		return 0;
	}
	return scope == OVA_LOCKS_SHARED;
}

int
wrk__vc_recover(struct wrk__cmd *c, struct vmw_conn *conn, struct ova_store *s,
    const char *obj, struct sw_err *e)
{
	char scope[160];
	struct ova_journal j;
	const char *legacy = NULL;
	int r;

	/* The command's journal; else one an older release left beside the object. */
	r = ova_journal_read(s, c->cmd->id, &j, e);
	if (r == SW_ENOTFOUND) {
		r = ova_journal_legacy_read(s, obj, &j, e);
		legacy = obj;
	}
	if (r == SW_ENOTFOUND)
		return 0;
	if (r < 0)
		return r;
	/*
	 * A journal is either another attempt of this command still at work, or
	 * the record of a dead one.  When this attempt holds the command lock
	 * and every host sees that lock, no other attempt runs anywhere: the
	 * journal is a dead attempt's, undone at once (its export lease, if it
	 * had one open, is aborted first: see wrk_vc_journal_undo).  When the
	 * lock may be host-local (NFS nolock, local_lock=, or not known), only
	 * the journal's age tells: an attempt at work touches it at least every
	 * few seconds, so wait until it has gone untouched for journal_stale.
	 * So too for a journal an older release left beside the object: that
	 * release's attempts may not take this lock.
	 */
	if (legacy != NULL)
		(void)snprintf(scope, sizeof(scope), "a journal of an older release");
	if (legacy == NULL && lock_proves_dead(c, scope, sizeof(scope))) {
		log_info("%s: the command lock is ours and every host sees it (%s): the earlier "
		    "attempt is dead; undoing its vCenter work now", c->cmd->id, scope);
	} else {
		log_info("%s: a journal of an earlier attempt, and the command lock cannot tell "
		    "whether it still runs (%s): waiting for its journal to go stale",
		    c->cmd->id, scope);
		r = journal_wait_stale(c, s, legacy, e);
		if (r != 0)
			return r;
	}
	/*
	 * An attempt of this command died after writing it: its export lease,
	 * its worker VM (it holds the snapshot's disk), then its snapshot.
	 */
	log_info("%s: removing what an interrupted attempt left in vCenter", c->cmd->id);
	/* Only this command's own leftovers, whatever the journal claims. */
	snprintf(j.command, sizeof(j.command), "%s", c->cmd->id);
	r = wrk_vc_journal_undo(conn, &j, e);
	if (r < 0) {
		bool retry = false;
		enum proto_errcode pe = proto_errcode_from_sw(r, PROTO_CTX_VCENTER, &retry);

		/*
		 * vCenter will not undo the dead attempt's work yet (a lease the
		 * journal did not record stays open until vCenter times it out, its
		 * VM is busy): the command must not run beside that work, and a
		 * later attempt finds it undoable.  Only a refused login stays final.
		 */
		return sw_err_classify(e, r, pe, pe == PROTO_ERR_VCENTER_AUTH ? retry : true);
	}
	return legacy != NULL ? ova_journal_legacy_remove(s, legacy, e) :
	    ova_journal_remove(s, c->cmd->id, e);
}

int
wrk__vc_undo_cancelled(struct wrk__cmd *c, struct sw_err *e)
{
	static atomic_int never;
	struct wrk_job j2;
	struct wrk__cmd c2;
	struct ova_store *s = NULL;
	struct vmw_conn *conn = NULL;
	struct ova_journal j;
	char why[160];
	int r;

	if (!c->cmd->has_vcenter || c->cmd->store.url == NULL)
		return 0;
	r = wrk__store_open(c, c->cmd->store.url, &s, NULL, e);
	if (r < 0)
		return r;
	r = ova_journal_read(s, c->cmd->id, &j, e);
	if (r == SW_ENOTFOUND) {
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	if (!lock_proves_dead(c, why, sizeof(why))) {
		/* Perhaps an attempt at work elsewhere: it, or the sweeper, undoes it. */
		log_info("%s: cancelled; an earlier attempt's journal is left to the sweeper (%s)",
		    c->cmd->id, why);
		r = 0;
		goto out;
	}
	/* The cancel flag is raised: the undo runs with a deadline of its own, uncancelled. */
	j2 = *c->job;
	j2.cancel = &never;
	j2.deadline_ms = sw_mono_ms() + WRK_VC_CLEANUP_MS;
	c2 = *c;
	c2.job = &j2;
	r = wrk__vc_open(&c2, &conn, e);
	if (r < 0)
		goto out;
	log_info("%s: cancelled; removing what an interrupted attempt left in vCenter", c->cmd->id);
	snprintf(j.command, sizeof(j.command), "%s", c->cmd->id);
	r = wrk_vc_journal_undo(conn, &j, e);
	if (r == 0)
		r = ova_journal_remove(s, c->cmd->id, e);
	wrk__vc_close(&c2, conn, r >= 0);
out:
	ova_store_close(s);
	return r;
}

/* ------------------------------------------------------------- phases */

uint64_t
wrk__phases_vcenter(const struct wrk__phases *p)
{
	return p->find + p->snapshot + p->worker_vm + p->lease + p->descriptor + p->cleanup;
}

int
wrk__phases_fmt(const struct wrk__phases *p, char *buf, size_t bufsz)
{
	double mibs = p->stream > 0 ? (double)p->bytes / 1048576.0 * 1000.0 / (double)p->stream : 0;

	return snprintf(buf, bufsz, "phases: vcenter %" PRIu64 " ms (find %" PRIu64
	    ", snapshot %" PRIu64 ", worker_vm %" PRIu64 ", lease %" PRIu64 ", descriptor %"
	    PRIu64 ", cleanup %" PRIu64 "), stream %" PRIu64 " ms (%" PRIu64 " bytes, %.1f "
	    "MiB/s), commit %" PRIu64 " ms", wrk__phases_vcenter(p), p->find, p->snapshot,
	    p->worker_vm, p->lease, p->descriptor, p->cleanup, p->stream, p->bytes, mibs,
	    p->commit);
}

/* ------------------------------------------------------------ the export */

struct backup_x;

struct bx_disk {
	struct backup_x *x;
	struct sw_sink inner;   /* the ovastore writer's sink of this disk */
};

struct backup_x {
	struct wrk__cmd *c;
	struct ova_writer *w;
	struct ova_store *s;
	int journal;            /* the command's journal is written */
	struct ova_journal *j;  /* that journal, to add the export lease to */
	uint64_t touched_ms;
	struct bx_disk disks[VMW_MAX_DISKS];
	int store_failed;       /* the failure was the share's, not vCenter's */
	uint64_t disk_bytes;
	uint64_t first_byte_ms; /* first disk's sink opened (the lease is ready) */
	uint64_t last_byte_ms;  /* last disk's sink closed */
};

static int
bx_write(void *ud, const void *p, size_t n, struct sw_err *e)
{
	struct bx_disk *d = ud;
	int r = d->inner.write(d->inner.ud, p, n, e);

	if (r < 0)
		d->x->store_failed = 1;
	return r;
}

static int
bx_sink_open(void *ud, const struct vmw_nfc_disk *d, struct sw_sink *ret_sink, struct sw_err *e)
{
	struct backup_x *x = ud;
	struct bx_disk *bd;
	int r;

	if (d->index < 0 || d->index >= VMW_MAX_DISKS)
		return sw_errf(e, SW_ETOOBIG, "disk index %d", d->index);
	bd = &x->disks[d->index];
	bd->x = x;
	if (x->first_byte_ms == 0)
		x->first_byte_ms = sw_mono_ms();
	/* NULL: NAME-diskK.vmdk, the name the OVF of CreateDescriptor references. */
	r = ova_writer_disk(x->w, NULL, &bd->inner, e);
	if (r < 0) {
		x->store_failed = 1;
		return r;
	}
	ret_sink->write = bx_write;
	ret_sink->ud = bd;
	return 0;
}

static void
bx_progress(void *ud, uint64_t bytes, int percent)
{
	struct backup_x *x = ud;
	uint64_t now = sw_mono_ms();

	wrk__vc_progress(x->c, bytes, percent);
	if (x->journal && now - x->touched_ms >= JOURNAL_TOUCH_MS) {
		ova_journal_touch(x->s, x->c->cmd->id, 0);
		x->touched_ms = now;
	}
}

static int
bx_sink_close(void *ud, const struct vmw_nfc_disk *d, int status, uint64_t bytes,
    struct sw_err *e)
{
	struct backup_x *x = ud;

	(void)d; (void)e;
	x->last_byte_ms = sw_mono_ms();
	/* A failed disk's .part is the writer's to remove (abort). */
	if (status == 0)
		x->disk_bytes += bytes;
	return 0;
}

/*
 * The export lease is recorded in the journal before a byte moves: a crash
 * leaves it open, vCenter blocks the worker VM until it ends, and the next
 * attempt (or the sweeper) aborts it instead of waiting for it to time out.
 */
static int
bx_lease_open(void *ud, const struct vmw_moref *lease, struct sw_err *e)
{
	struct backup_x *x = ud;

	if (x->j == NULL)
		return 0;
	if (snprintf(x->j->lease, sizeof(x->j->lease), "%s", lease->value) >=
	    (int)sizeof(x->j->lease))
		return sw_errf(e, SW_EFORMAT, "lease id too long");
	if (ova_journal_write(x->s, x->j, e) < 0) {
		x->store_failed = 1;
		return sw_errctx(e, "journal");
	}
	x->touched_ms = sw_mono_ms();
	return 0;
}

/* Worker VM on the snapshot's chain of the volume, named and tagged with the command id. */
static int
make_worker(struct wrk__cmd *c, struct vmw_conn *conn, const struct vmw_moref *vm,
    const struct vmw_moref *snap, const char *disk, struct vmw_moref *ret_worker,
    struct sw_err *e)
{
	struct vmw_vm_info *info = NULL;
	struct vmw_disk *d = NULL;
	struct vmw_worker_spec ws;
	unsigned tries;
	int r;

	r = vmw_vm_info_get(conn, vm, &info, c->job->deadline_ms, c->job->cancel, e);
	if (r < 0)
		return r;
	for (tries = 1;; tries++) {
		r = vmw_snapshot_disk(conn, vm, snap, disk, &d, c->job->deadline_ms, c->job->cancel,
		    e);
		if (r < 0) {
			sw_errctx(e, "args.disk");
			goto out;
		}
		memset(&ws, 0, sizeof(ws));
		ws.name = c->cmd->id;
		ws.tag = c->cmd->id;
		ws.folder = &info->vm_folder;
		ws.pool = &info->resource_pool;
		ws.host = &info->host;
		ws.disk = d;
		/* Not cancellable either (see snapshot_create_retry): the VM would appear after we left. */
		r = vmw_worker_vm_create(conn, &ws, ret_worker, c->job->deadline_ms, NULL, e);
		/*
		 * Another snapshot of the same VM removed meanwhile (another
		 * command's cleanup) consolidates its delta into its parent: the
		 * chain just read can name a file that is gone.  Read it again.
		 */
		if (r != SW_ENOTFOUND || tries >= MAKE_WORKER_TRIES ||
		    strcmp(vmw_last_fault(conn)->type, "FileNotFound") != 0)
			break;
		log_info("%s: the snapshot's disk chain changed under us (a concurrent snapshot "
		    "removal): reading it again", c->cmd->id);
		vmw_disk_free(d);
		d = NULL;
	}
out:
	vmw_disk_free(d);
	vmw_vm_info_free(info);
	return r;
}

/* Appends the datastore of datastore path "[NAME] dir/file" to keys (no duplicate check). */
static void
key_datastore(struct wrk_limit_key *keys, size_t *n, const char *path)
{
	const char *b, *end;
	size_t len;

	if (path == NULL || *n >= WRK_LIMITS_KEYS_MAX)
		return;
	b = strchr(path, '[');
	end = b != NULL ? strchr(b + 1, ']') : NULL;
	if (end == NULL)
		return;
	b++;
	while (b < end && *b == ' ')
		b++;
	while (end > b && end[-1] == ' ')
		end--;
	len = (size_t)(end - b);
	if (len == 0 || len >= sizeof(keys[0].name))
		return;
	keys[*n].kind = WRK_LIMIT_DATASTORE;
	memcpy(keys[*n].name, b, len);
	keys[*n].name[len] = '\0';
	(*n)++;
}

/*
 * Concurrency limits (worker/limits.h): the command's vCenter (the host of
 * its URL), the ESXi host its VM runs on and the datastores of the disk's
 * chain.  Asked before anything is done in vCenter, so a command that must
 * wait has nothing to undo.  0: tokens held (or no limit configured).
 */
static int
take_limits(struct wrk__cmd *c, struct vmw_conn *conn, const struct vmw_moref *vmref,
    const char *disk, struct sw_err *e)
{
	struct wrk_limit_key keys[WRK_LIMITS_KEYS_MAX];
	struct vmw_vm_info *info = NULL;
	const struct vmw_disk *d;
	const char *u = c->cmd->vcenter.url, *h;
	size_t n = 0, i, len;
	int r;

	if (c->job->limits_take == NULL)
		return 0;
	memset(keys, 0, sizeof(keys));
	h = u != NULL ? strstr(u, "://") : NULL;
	h = h != NULL ? h + 3 : u;
	len = h != NULL ? strcspn(h, "/?#") : 0;
	if (len > 0 && len < sizeof(keys[0].name)) {
		keys[n].kind = WRK_LIMIT_VCENTER;
		memcpy(keys[n].name, h, len);
		n++;
	}
	r = vmw_vm_info_get(conn, vmref, &info, c->job->deadline_ms, c->job->cancel, e);
	if (r < 0)
		return wrk__vc_fail(c, r);
	if (info->host.value[0] != '\0' && strlen(info->host.value) < sizeof(keys[0].name)) {
		keys[n].kind = WRK_LIMIT_HOST;
		(void)snprintf(keys[n].name, sizeof(keys[n].name), "%s", info->host.value);
		n++;
	}
	d = vmw_vm_info_disk(info, disk);
	if (d != NULL) {
		key_datastore(keys, &n, d->file);
		for (i = 0; i < d->nchain; i++)
			key_datastore(keys, &n, d->chain[i]);
	} else {
		/* Not (or no longer) a disk of the VM: the export fails later; its datastore. */
		key_datastore(keys, &n, disk);
	}
	vmw_vm_info_free(info);
	r = c->job->limits_take(c->job->limits_ud, keys, n, e);
	if (r != 0)
		return wrk__fail_as(c, r < 0 ? r : SW_EBUSY, PROTO_ERR_VCENTER_FAULT, 1);
	return 0;
}

int
wrk__vc_backup(struct wrk__cmd *c, struct vmw_conn *conn, const struct proto_vm *vm,
    const char *disk, struct ova_store *s, const char *obj, unsigned wflags,
    struct ova_result **ret_result, struct sw_err *e)
{
	struct backup_x x;
	struct vmw_export_opts eo;
	struct vmw_export_result *res = NULL;
	struct vmw_moref vmref, snap, worker;
	struct sw_err ce;
	struct ova_journal j;
	struct wrk__phases ph;
	char dir[SW_PATH_MAX], name[SW_NAME_MAX + 1], sname[128], desc[256], phs[320];
	uint64_t cdl, t, t_export = 0;
	unsigned tries = 0;
	int r, have_snap = 0, have_worker = 0, journal = 0, cleanup_ok = 1;
	int store_ctx = 0, maybe_worker = 0;

	memset(&x, 0, sizeof(x));
	memset(&ph, 0, sizeof(ph));
	x.c = c;
	t = sw_mono_ms();
	r = wrk__split(obj, dir, sizeof(dir), name, sizeof(name), e);
	if (r < 0)
		return wrk__fail(c, r, PROTO_CTX_STORE);
	/* The record of unfinished vCenter work, by command id (ovastore/state.h). */
	memset(&j, 0, sizeof(j));
	if (snprintf(j.command, sizeof(j.command), "%s", c->cmd->id) >= (int)sizeof(j.command) ||
	    snprintf(j.credentials, sizeof(j.credentials), "%s", c->cmd->vcenter.credentials) >=
	    (int)sizeof(j.credentials) ||
	    snprintf(j.url, sizeof(j.url), "%s", c->cmd->vcenter.url) >= (int)sizeof(j.url) ||
	    snprintf(j.object, sizeof(j.object), "%s", obj) >= (int)sizeof(j.object))
		return wrk__fail_as(c, sw_errf(e, -ENAMETOOLONG, "journal: a value is too long"),
		    PROTO_ERR_INVALID_COMMAND, 0);
	r = wrk__vc_find_vm(c, conn, vm, &vmref, e);
	if (r < 0)
		return wrk__vc_fail(c, r);
	ph.find = sw_mono_ms() - t;
	r = take_limits(c, conn, &vmref, disk, e);
	if (r < 0)
		return r;
	/* begin removes an earlier attempt's debris (never a journal: that is not debris). */
	r = ova_writer_begin(s, obj, wflags, &x.w, e);
	if (r < 0)
		return wrk__fail(c, r, PROTO_CTX_STORE);
	snprintf(j.vm, sizeof(j.vm), "%s", vmref.value);
	r = ova_journal_write(s, &j, e);
	if (r < 0) {
		r = wrk__fail(c, r, PROTO_CTX_STORE);
		goto out;
	}
	journal = 1;
	x.s = s;
	x.journal = 1;
	x.touched_ms = sw_mono_ms();

	t = sw_mono_ms();
	snprintf(sname, sizeof(sname), "snapworker-%s", c->cmd->id);
	snprintf(desc, sizeof(desc), "snapworker %s %s", proto_type_name(c->cmd->type), c->cmd->id);
	r = snapshot_create_retry(conn, &vmref, sname, desc, &snap, c->job->deadline_ms,
	    c->job->cancel, &tries, e);
	if (r < 0)
		goto out;
	have_snap = 1;
	/* Tasks on a real vCenter take a while: tell the publisher the command lives. */
	wrk__vc_progress(c, 0, 0);
	if (tries > 1)
		log_info("%s: VM snapshot taken after %u attempts (the VM was busy)", c->cmd->id,
		    tries);
	snprintf(j.snapshot, sizeof(j.snapshot), "%s", snap.value);
	r = ova_journal_write(s, &j, e);
	if (r < 0) {
		store_ctx = 1;
		goto out;
	}
	ph.snapshot = sw_mono_ms() - t;
	t = sw_mono_ms();
	r = make_worker(c, conn, &vmref, &snap, disk, &worker, e);
	if (r < 0) {
		/* A CreateVM_Task cut off by the deadline may still make the VM. */
		maybe_worker = r == -ETIMEDOUT || r == SW_ENET;
		goto out;
	}
	have_worker = 1;
	wrk__vc_progress(c, 0, 0);
	ph.worker_vm = sw_mono_ms() - t;

	memset(&eo, 0, sizeof(eo));
	eo.name = name;
	eo.sink_open = bx_sink_open;
	eo.sink_close = bx_sink_close;
	eo.progress = bx_progress;
	eo.lease_open = bx_lease_open;
	eo.ud = &x;
	x.j = &j;
	t_export = sw_mono_ms();
	r = vmw_export_vm(conn, &worker, &eo, &res, c->job->deadline_ms, c->job->cancel, e);
	if (r < 0) {
		store_ctx = x.store_failed;
		goto out;
	}
	r = ova_writer_ovf(x.w, NULL, res->ovf, res->ovf_len, e);
	if (r < 0) {
		store_ctx = 1;
		goto out;
	}
	if (x.first_byte_ms != 0 && x.last_byte_ms >= x.first_byte_ms) {
		ph.lease = x.first_byte_ms - t_export;
		ph.stream = x.last_byte_ms - x.first_byte_ms;
		ph.descriptor = sw_mono_ms() - x.last_byte_ms;
	}
	ph.bytes = x.disk_bytes;
out:
	/* Cleanup in every path, with a deadline of its own, not cancellable. */
	t = sw_mono_ms();
	cdl = cleanup_deadline(c);
	if (have_worker) {
		sw_err_clear(&ce);
		if (vmw_worker_vm_destroy(conn, &worker, cdl, NULL, &ce) < 0 &&
		    ce.code != SW_ENOTFOUND) {
			cleanup_ok = 0;
			log_warnx("%s: cleanup: worker VM %s: %s", c->cmd->id, worker.value, ce.msg);
			if (r == 0) {
				r = ce.code;
				if (e != NULL)
					*e = ce;
			}
		}
	}
	if (maybe_worker) {
		sw_err_clear(&ce);
		(void)wrk_vc_destroy_tagged(conn, c->cmd->id, cdl, &ce);
		/* It may appear later still: the journal lets the sweeper find it. */
		cleanup_ok = 0;
	}
	if (have_snap && (cleanup_ok || maybe_worker)) {
		sw_err_clear(&ce);
		if (wrk_vc_snapshot_remove(conn, &snap, cdl, &ce) < 0 && ce.code != SW_ENOTFOUND) {
			cleanup_ok = 0;
			log_warnx("%s: cleanup: VM snapshot %s: %s", c->cmd->id, snap.value, ce.msg);
			if (r == 0) {
				r = ce.code;
				if (e != NULL)
					*e = ce;
			}
		}
	}
	/*
	 * Left in place when cleanup failed: the next attempt or the sweeper
	 * finishes it.  Dated back so that nobody takes it for a live attempt.
	 */
	if (journal && cleanup_ok)
		(void)ova_journal_remove(s, c->cmd->id, NULL);
	else if (journal)
		ova_journal_touch(s, c->cmd->id, 1);
	ph.cleanup = sw_mono_ms() - t;
	if (r == 0) {
		/* Only now, with vCenter clean: a committed object is never redone. */
		t = sw_mono_ms();
		r = ova_writer_commit(x.w, ret_result, e);
		if (r < 0)
			store_ctx = 1;
		ph.commit = sw_mono_ms() - t;
		if (r == 0) {
			(void)wrk__phases_fmt(&ph, phs, sizeof(phs));
			log_info("%s: %s", c->cmd->id, phs);
		}
	}
	if (r < 0 && c->e->kind == 0)
		wrk__fail(c, r, store_ctx ? PROTO_CTX_STORE : PROTO_CTX_VCENTER);
	vmw_export_result_free(res);
	ova_writer_free(x.w);
	return r;
}
