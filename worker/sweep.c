/*
 * The sweeper (see sweep.h): leftovers of crashed commands in vCenter and
 * on the stores.
 */
#include "worker/sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/num.h"
#include "common/path.h"
#include "ovastore/lock.h"
#include "ovastore/ovastore.h"
#include "ovastore/state.h"
#include "vmware/vmware.h"
#include "worker/config.h"
#include "worker/vcenter.h"

#define VC_SWEEP_MS     (10u * 60u * 1000u)   /* one vCenter's sweep */
#define DIR_MAX_PARTS   1024                  /* .part files looked at per directory */
#define DIR_MAX_ENTRIES 100000                /* entries read per directory */
#define SWEEP_MAX_STORES 64                   /* stores whose locks are checked per command */

static void release_all(struct ova_lock *locks, size_t *nlocks);

struct sweep {
	const struct wrk_config *cfg;
	const struct wrk_sweep_opts *o;
	struct wrk_sweep_stats st;
	atomic_int *cancel;
	int64_t now;
	int64_t now_ms;                  /* the same instant, to the millisecond */
	const struct wrk_store *store;   /* the store being swept */
};

/*
 * Whether a file last modified at st's mtime is at least max_age old, to the
 * millisecond: in whole seconds a file written 10 ms ago may look 1 s old.
 */
static int
older_than_max(const struct sweep *sw, const struct stat *st)
{
	int64_t m = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;

	return sw->now_ms - m >= (int64_t)sw->o->max_age_s * 1000;
}

static void
report(struct sweep *sw, const char *fmt, ...) SW_PRINTF(2, 3);

static void
report(struct sweep *sw, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (sw->o->report != NULL)
		sw->o->report(sw->o->report_ud, line);
	else
		log_debug("sweep: %s", line);
}

static int
stopped(const struct sweep *sw)
{
	return sw->cancel != NULL && *sw->cancel;
}

/* ------------------------------------------------------ running commands */

/*
 * Whether an attempt of command id holds its lock on a store (one store, or
 * every configured one when ws is NULL): then its worker VM, VM snapshot and
 * journal are in use, however old, and are left alone.  When it is not held
 * the locks taken stay in locks[] until the caller has swept (release_all),
 * so no attempt of the command starts meanwhile.  A store whose lock
 * directory cannot be used cannot tell; age alone decides there.
 */
static int
command_runs(struct sweep *sw, const struct wrk_store *ws, const char *id,
    struct ova_lock *locks, size_t *nlocks)
{
	size_t i, n = ws != NULL ? 1 : sw->cfg->nstores;
	struct sw_err e;

	*nlocks = 0;
	for (i = 0; i < n && *nlocks < SWEEP_MAX_STORES; i++) {
		const struct wrk_store *st = ws != NULL ? ws : &sw->cfg->stores[i];
		struct ova_lock *l = &locks[*nlocks];
		int r;

		*l = (struct ova_lock)OVA_LOCK_INIT;
		r = ova_lock_try(l, st->mount, id, &e);
		if (r == 0) {
			(*nlocks)++;
		} else if (r == SW_EBUSY) {
			release_all(locks, nlocks);
			return 1;
		}
	}
	return 0;
}

static void
release_all(struct ova_lock *locks, size_t *nlocks)
{
	size_t i;

	for (i = 0; i < *nlocks; i++)
		ova_lock_release(&locks[i]);
	*nlocks = 0;
}

/* ------------------------------------------------------------- vCenter */

static void
sweep_vcenter(struct sweep *sw, const struct wrk_vcenter *vc, const char *url)
{
	struct vmw_tagged_vm *vms = NULL;
	struct vmw_conn *conn = NULL;
	struct ova_lock locks[SWEEP_MAX_STORES];
	struct sw_err e;
	uint64_t dl = sw_mono_ms() + VC_SWEEP_MS;
	size_t n = 0, i, nlocks = 0;
	int r;

	sw_err_clear(&e);
	r = wrk_vc_connect(vc, url, NULL, dl, sw->cancel, &conn, &e);
	if (r == 0)
		r = vmw_worker_vm_list(conn, &vms, &n, dl, sw->cancel, &e);
	if (r < 0) {
		sw->st.errors++;
		report(sw, "vcenter %s: %s", vc->name, e.msg);
		goto out;
	}
	for (i = 0; i < n && !stopped(sw); i++) {
		const struct vmw_tagged_vm *v = &vms[i];
		int64_t age = v->created >= 0 ? sw->now - v->created : -1;

		sw->st.vms_seen++;
		if (age < 0 || (uint64_t)age < sw->o->max_age_s)
			continue;
		if (sw->o->is_running != NULL && sw->o->is_running(sw->o->running_ud, v->tag))
			continue;
		if (command_runs(sw, NULL, v->tag, locks, &nlocks)) {
			report(sw, "worker VM %s (%s) of command %s left alone: the command runs (its "
			    "lock is held)", v->vm.value, v->name, v->tag);
			continue;
		}
		if (sw->o->dry_run) {
			release_all(locks, &nlocks);
			report(sw, "would destroy worker VM %s (%s) of command %s, %" PRId64 " s old",
			    v->vm.value, v->name, v->tag, age);
			continue;
		}
		sw_err_clear(&e);
		r = vmw_worker_vm_destroy(conn, &v->vm, dl, sw->cancel, &e);
		release_all(locks, &nlocks);
		if (r < 0 && r != SW_ENOTFOUND) {
			sw->st.errors++;
			report(sw, "worker VM %s (%s): %s", v->vm.value, v->name, e.msg);
			continue;
		}
		sw->st.vms_removed++;
		report(sw, "destroyed worker VM %s (%s) of command %s, %" PRId64 " s old (disks "
		    "detached first)", v->vm.value, v->name, v->tag, age);
	}
out:
	free(vms);
	wrk_vc_disconnect(conn);
}

/* ------------------------------------------------------------- stores */

struct part {
	char name[SW_NAME_MAX + 1];
	int old;
};

static int
ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcmp(s + n - m, suf) == 0;
}

/*
 * Undoes what journal j (named where, for reports) records: its command's
 * worker VM and snapshot.  0 when done (the caller removes the journal), 1
 * in a dry run; else the journal stays, for the next sweep.
 */
static int
undo_journal(struct sweep *sw, const struct ova_journal *j, const char *where)
{
	const struct wrk_vcenter *vc;
	struct vmw_conn *conn = NULL;
	struct sw_err e;
	int r;

	sw_err_clear(&e);
	vc = wrk_config_vcenter(sw->cfg, j->credentials);
	/* The journal is on a share others can write: its URL must be one the set allows. */
	if (vc == NULL || !wrk_vcenter_allows(vc, j->url)) {
		sw->st.errors++;
		report(sw, "journal %s: credential set '%s' unknown or not bound to its URL", where,
		    j->credentials);
		return SW_EAUTH;
	}
	if (sw->o->dry_run) {
		report(sw, "would undo journal %s (command %s, snapshot %s)", where, j->command,
		    j->snapshot[0] != '\0' ? j->snapshot : "none");
		return 1;
	}
	r = wrk_vc_connect(vc, j->url, NULL, sw_mono_ms() + VC_SWEEP_MS, sw->cancel, &conn, &e);
	if (r == 0)
		r = wrk_vc_journal_undo(conn, j, &e);
	wrk_vc_disconnect(conn);
	if (r < 0) {
		sw->st.errors++;
		report(sw, "journal %s: %s", where, e.msg);
		return r;
	}
	return 0;
}

static void
journal_done(struct sweep *sw, const struct ova_journal *j, const char *where, int r,
    struct sw_err *e)
{
	if (r < 0) {
		sw->st.errors++;
		report(sw, "journal %s: %s", where, e->msg);
		return;
	}
	sw->st.journals_undone++;
	report(sw, "undid journal %s (command %s, snapshot %s)", where, j->command,
	    j->snapshot[0] != '\0' ? j->snapshot : "none");
}

/* A journal of an older release beside object obj ("DIR/NAME"). */
static int
sweep_legacy_journal(struct sweep *sw, struct ova_store *s, const char *obj)
{
	struct ova_lock locks[1];
	struct ova_journal j;
	struct sw_err e;
	size_t nlocks = 0;
	char where[SW_PATH_MAX + 32];
	int r;

	sw_err_clear(&e);
	snprintf(where, sizeof(where), "%s%s", obj, OVA_JOURNAL_LEGACY_SUFFIX);
	r = ova_journal_legacy_read(s, obj, &j, &e);
	if (r < 0) {
		sw->st.errors++;
		report(sw, "journal %s: %s", where, e.msg);
		return r;
	}
	if (command_runs(sw, sw->store, j.command, locks, &nlocks)) {
		report(sw, "journal %s left alone: the command runs (its lock is held)", where);
		return 1;
	}
	if ((r = undo_journal(sw, &j, where)) == 0) {
		r = ova_journal_legacy_remove(s, obj, &e);
		journal_done(sw, &j, where, r, &e);
	}
	release_all(locks, &nlocks);
	return r;
}

struct journal_walk {
	struct sweep *sw;
	struct ova_store *s;
	const struct wrk_store *ws;
};

/* One journal of the state directory, older than max_age: nobody came back for it. */
static int
sweep_journal(void *ud, const char *id, int64_t mtime)
{
	struct journal_walk *w = ud;
	struct sweep *sw = w->sw;
	struct ova_lock locks[1];
	struct ova_journal j;
	struct sw_err e;
	char where[128];
	size_t nlocks = 0;
	int r;

	if (stopped(sw))
		return 1;
	if (sw->now - mtime < (int64_t)sw->o->max_age_s)
		return 0;
	sw_err_clear(&e);
	snprintf(where, sizeof(where), "of command %s", id);
	r = ova_journal_read(w->s, id, &j, &e);
	if (r < 0) {
		if (r != SW_ENOTFOUND) {
			sw->st.errors++;
			report(sw, "journal %s: %s", where, e.msg);
		}
		return 0;
	}
	if (command_runs(sw, w->ws, id, locks, &nlocks)) {
		report(sw, "journal %s left alone: the command runs (its lock is held)", where);
		return 0;
	}
	if (undo_journal(sw, &j, where) == 0) {
		r = ova_journal_remove(w->s, id, &e);
		journal_done(sw, &j, where, r, &e);
	}
	release_all(locks, &nlocks);
	return 0;
}

/* Object names a temporary may belong to (see ovastore's debris rules); 0..n candidates. */
static size_t
candidates(const char *part, char out[][SW_NAME_MAX + 1], size_t max)
{
	static const char *const sufs[] = { ".ovf.part", ".ova.meta.part", ".ova.part" };
	char base[SW_NAME_MAX + 1];
	const char *p;
	size_t n = 0, i, len;

	len = strlen(part);
	if (len > SW_NAME_MAX)
		return 0;
	memcpy(base, part, len + 1);
	for (i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
		if (ends_with(base, sufs[i]) && len > strlen(sufs[i]) && n < max) {
			memcpy(out[n], base, len - strlen(sufs[i]));
			out[n++][len - strlen(sufs[i])] = '\0';
		}
	if (ends_with(base, ".vmdk.part")) {
		/* NAME-diskK.vmdk.part */
		p = base + len - strlen(".vmdk.part");
		while (p > base && p[-1] >= '0' && p[-1] <= '9')
			p--;
		if (p - base > 5 && p[0] >= '0' && p[0] <= '9' && strncmp(p - 5, "-disk", 5) == 0 &&
		    n < max) {
			memcpy(out[n], base, (size_t)(p - 5 - base));
			out[n++][p - 5 - base] = '\0';
		}
	}
	/* NAME~file.part: NAME may itself hold a '~', so every prefix is a candidate. */
	for (p = strchr(base, '~'); p != NULL && n < max; p = strchr(p + 1, '~'))
		if (p > base) {
			memcpy(out[n], base, (size_t)(p - base));
			out[n++][p - base] = '\0';
		}
	return n;
}

static void sweep_tree(struct sweep *sw, struct ova_store *s, int dfd, const char *rel,
    unsigned depth);

static void
sweep_parts(struct sweep *sw, struct ova_store *s, int dfd, const char *rel,
    const struct part *parts, size_t nparts)
{
	char cand[8][SW_NAME_MAX + 1], done[64][SW_NAME_MAX + 1], obj[SW_PATH_MAX];
	struct sw_err e;
	size_t i, k, c, nc, ndone = 0;
	int young, r;

	/*
	 * A legacy journal (an older release's NAME~vcenter.part) that could
	 * not be undone (vCenter unreachable, a set not configured) is the only
	 * record of its snapshot; it is not debris, and its object's debris
	 * stays with it until a later sweep succeeds.  done[] starts with them.
	 */

	for (i = 0; i < nparts; i++)
		if (parts[i].old && ends_with(parts[i].name, OVA_JOURNAL_LEGACY_SUFFIX) &&
		    strlen(parts[i].name) > strlen(OVA_JOURNAL_LEGACY_SUFFIX)) {
			char name[SW_NAME_MAX + 1];
			size_t l = strlen(parts[i].name) - strlen(OVA_JOURNAL_LEGACY_SUFFIX);

			memcpy(name, parts[i].name, l);
			name[l] = '\0';
			if ((rel[0] != '\0' ? sw_path_fmt(obj, sizeof(obj), "%s/%s", rel, name) :
			    sw_path_fmt(obj, sizeof(obj), "%s", name)) < 0 ||
			    sweep_legacy_journal(sw, s, obj) != 0)
				if (ndone < 64)
					snprintf(done[ndone++], sizeof(done[0]), "%s", name);
		}
	for (i = 0; i < nparts && !stopped(sw); i++) {
		if (!parts[i].old)
			continue;
		nc = candidates(parts[i].name, cand, 8);
		for (c = 0; c < nc; c++) {
			for (k = 0; k < ndone; k++)
				if (strcmp(done[k], cand[c]) == 0)
					break;
			if (k < ndone || sw_name_check(cand[c], NULL) < 0)
				continue;
			if (ndone < 64)
				snprintf(done[ndone++], sizeof(done[0]), "%s", cand[c]);
			/* A young temporary of the same object: a write in progress. */
			for (young = 0, k = 0; k < nparts; k++)
				if (!parts[k].old && strncmp(parts[k].name, cand[c], strlen(cand[c])) == 0)
					young = 1;
			if (young)
				continue;
			if ((rel[0] != '\0' ? sw_path_fmt(obj, sizeof(obj), "%s/%s", rel, cand[c]) :
			    sw_path_fmt(obj, sizeof(obj), "%s", cand[c])) < 0)
				continue;
			if (sw->o->dry_run) {
				report(sw, "would remove the debris of %s", obj);
				continue;
			}
			sw_err_clear(&e);
			r = ova_debris_remove(s, obj, &e);
			if (r < 0) {
				sw->st.errors++;
				report(sw, "debris of %s: %s", obj, e.msg);
			} else if (r > 0) {
				sw->st.debris_removed += (unsigned)r;
				report(sw, "removed %d uncommitted file(s) of %s", r, obj);
			}
		}
	}
}

static void
sweep_tree(struct sweep *sw, struct ova_store *s, int dfd, const char *rel, unsigned depth)
{
	struct part *parts = NULL;
	size_t nparts = 0, nent = 0;
	struct dirent *de;
	struct stat st;
	char sub[SW_PATH_MAX];
	DIR *d;
	int fd, cfd;

	if (depth > WRK_SWEEP_MAX_DEPTH || stopped(sw))
		return;
	if ((fd = dup(dfd)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	parts = calloc(DIR_MAX_PARTS, sizeof(*parts));
	while (parts != NULL && (de = readdir(d)) != NULL && nent++ < DIR_MAX_ENTRIES) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if ((rel[0] != '\0' ? sw_path_fmt(sub, sizeof(sub), "%s/%s", rel, de->d_name) :
			    sw_path_fmt(sub, sizeof(sub), "%s", de->d_name)) < 0)
				continue;
			cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0) {
				sweep_tree(sw, s, cfd, sub, depth + 1);
				close(cfd);
			}
			continue;
		}
		if (!S_ISREG(st.st_mode) || !ends_with(de->d_name, ".part") ||
		    nparts >= DIR_MAX_PARTS || strlen(de->d_name) > SW_NAME_MAX)
			continue;
		snprintf(parts[nparts].name, sizeof(parts[nparts].name), "%s", de->d_name);
		parts[nparts].old = older_than_max(sw, &st);
		nparts++;
	}
	closedir(d);
	if (nparts > 0)
		sweep_parts(sw, s, dfd, rel, parts, nparts);
	free(parts);
}

/*
 * The worker's own state in a store (.snapworker/): lock files of attempts
 * that crashed (older than max_age and not locked: removed while holding
 * the lock, as a releasing holder does).
 */
static void
sweep_state_dir(struct sweep *sw, int rootfd, const char *rel, const char *suffix)
{
	struct dirent *de;
	struct stat st;
	unsigned n = 0;
	DIR *d;
	int dfd;

	dfd = sw_dir_open_beneath(rootfd, rel, 0, 0, NULL);
	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL && n++ < DIR_MAX_ENTRIES && !stopped(sw)) {
		if (!ends_with(de->d_name, suffix) || strlen(de->d_name) == strlen(suffix))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    !older_than_max(sw, &st))
			continue;
		if (sw->o->dry_run) {
			report(sw, "would remove %s/%s", rel, de->d_name);
			continue;
		}
		/* A lock file still locked: an attempt runs, however old the file. */
		if (ova_lock_reap(dfd, de->d_name) == 1) {
			sw->st.debris_removed++;
			report(sw, "removed %s/%s", rel, de->d_name);
		}
	}
	closedir(d);
}

/* CreateVolume markers older than max_age: their redeliveries are long over. */
static int
sweep_marker(void *ud, const char *id, int64_t mtime)
{
	struct journal_walk *w = ud;
	struct sweep *sw = w->sw;

	if (stopped(sw))
		return 1;
	if (sw->now - mtime < (int64_t)sw->o->max_age_s)
		return 0;
	if (sw->o->dry_run) {
		report(sw, "would remove " OVA_MARKER_DIR "/%s" OVA_MARKER_SUFFIX, id);
		return 0;
	}
	if (ova_marker_remove(w->s, id, NULL) == 0) {
		sw->st.debris_removed++;
		report(sw, "removed " OVA_MARKER_DIR "/%s" OVA_MARKER_SUFFIX, id);
	}
	return 0;
}

static void
sweep_store(struct sweep *sw, const struct wrk_store *ws)
{
	static const char *const tops[] = { "snapshots", "template", "volumes" };
	struct ova_store *s = NULL;
	struct journal_walk jw;
	struct sw_err e;
	size_t i;
	int fd;

	sw_err_clear(&e);
	if (ova_store_open(ws->mount, &s, &e) < 0) {
		sw->st.errors++;
		report(sw, "store %s: %s", ws->mount, e.msg);
		return;
	}
	jw.sw = sw;
	jw.s = s;
	jw.ws = ws;
	sw->store = ws;
	for (i = 0; i < sizeof(tops) / sizeof(tops[0]) && !stopped(sw); i++) {
		fd = openat(ova_store_fd(s), tops[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		sweep_tree(sw, s, fd, tops[i], 1);
		close(fd);
	}
	if (!stopped(sw)) {
		ova_state_each(s, OVA_STATE_JOURNAL, sweep_journal, &jw, NULL);
	if (!stopped(sw))
		ova_state_each(s, OVA_STATE_MARKER, sweep_marker, &jw, NULL);
	if (!stopped(sw))
		sweep_state_dir(sw, ova_store_fd(s), OVA_LOCK_DIR, OVA_LOCK_SUFFIX);
	}
	ova_store_close(s);
}

int
wrk_sweep_run(const struct wrk_config *cfg, const struct wrk_sweep_opts *o,
    struct wrk_sweep_stats *ret_stats, atomic_int *cancel, struct sw_err *e)
{
	struct sweep sw;
	size_t i, k;

	if (cfg == NULL || o == NULL)
		return sw_errf(e, -EINVAL, "sweep: no configuration");
	memset(&sw, 0, sizeof(sw));
	sw.cfg = cfg;
	sw.o = o;
	sw.cancel = cancel;
	{
		struct timespec ts;

		(void)clock_gettime(CLOCK_REALTIME, &ts);
		sw.now = (int64_t)ts.tv_sec;
		sw.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	/* Stores first: a journal names the snapshot as well as the worker VM. */
	for (i = 0; i < cfg->nstores && !stopped(&sw); i++)
		sweep_store(&sw, &cfg->stores[i]);
	for (i = 0; i < cfg->nvcenters && !stopped(&sw); i++)
		for (k = 0; k < cfg->vcenters[i].nurls && !stopped(&sw); k++)
			sweep_vcenter(&sw, &cfg->vcenters[i], cfg->vcenters[i].urls[k]);
	if (ret_stats != NULL)
		*ret_stats = sw.st;
	if (stopped(&sw))
		return sw_errf(e, -ECANCELED, "sweep cancelled");
	return 0;
}

/* -------------------------------------------------------------- thread */

struct wrk_sweeper {
	const struct wrk_config *cfg;
	struct wrk_sweep_opts o;
	unsigned interval_s;
	pthread_t thr;
	atomic_int stop;
};

static void *
sweeper_main(void *arg)
{
	struct wrk_sweeper *sw = arg;
	struct wrk_sweep_stats st;
	struct sw_err e;
	uint64_t next;
	struct timespec ts = { 0, 200 * 1000000L };

	while (!sw->stop) {
		sw_err_clear(&e);
		memset(&st, 0, sizeof(st));
		if (wrk_sweep_run(sw->cfg, &sw->o, &st, &sw->stop, &e) < 0 && !sw->stop)
			log_warnx("sweep: %s", e.msg);
		else if (st.vms_removed + st.journals_undone + st.debris_removed + st.errors > 0)
			log_info("sweep: %u worker VM(s) destroyed, %u journal(s) undone, %u debris "
			    "file(s) removed, %u error(s)", st.vms_removed, st.journals_undone,
			    st.debris_removed, st.errors);
		next = sw_mono_ms() + (uint64_t)sw->interval_s * 1000u;
		while (!sw->stop && sw_mono_ms() < next)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

int
wrk_sweeper_start(const struct wrk_config *cfg, const struct wrk_sweep_opts *o,
    unsigned interval_s, struct wrk_sweeper **ret, struct sw_err *e)
{
	struct wrk_sweeper *sw = calloc(1, sizeof(*sw));

	if (sw == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	sw->cfg = cfg;
	sw->o = *o;
	sw->interval_s = interval_s != 0 ? interval_s : WRK_SWEEP_DEFAULT_EVERY;
	if (pthread_create(&sw->thr, NULL, sweeper_main, sw) != 0) {
		free(sw);
		return sw_errf(e, -EAGAIN, "cannot start the sweeper thread");
	}
	*ret = sw;
	return 0;
}

void
wrk_sweeper_stop(struct wrk_sweeper *sw)
{
	if (sw == NULL)
		return;
	sw->stop = 1;
	pthread_join(sw->thr, NULL);
	free(sw);
}
