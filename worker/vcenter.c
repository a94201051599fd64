/*
 * The daemon-level vCenter module (see vcenter.h).
 */
#include "worker/vcenter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/io.h"
#include "common/log.h"
#include "common/num.h"
#include "worker/metrics.h"

#define LOGIN_MS          60000u    /* connecting and logging in */
#define LOGOUT_MS         5000u
#define BUSY_FIRST_MS     500u      /* first wait after a TaskInProgress */
#define BUSY_CAP_MS       30000u
#define POOL_MAX          16        /* idle sessions kept per process */
#define POOL_IDLE_MS      (10u * 60u * 1000u) /* vCenter's default idle timeout is 30 min */

/* ---------------------------------------------------------- connection */

int
wrk_vc_connect(const struct wrk_vcenter *vc, const char *url, const char *cmd_thumbprint,
    uint64_t deadline_ms, atomic_int *cancel, struct vmw_conn **ret_conn, struct sw_err *e)
{
	struct vmw_conn_opts o;
	struct vmw_conn *conn = NULL;
	uint64_t dl = sw_mono_ms() + LOGIN_MS;
	int r;

	if (vc == NULL || url == NULL)
		return sw_errf(e, -EINVAL, "vCenter: no credential set or URL");
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.user = vc->user != NULL ? vc->user : "";
	o.password = vc->password != NULL ? vc->password : "";
	/* What the operator configured wins; a command may only pin what is left open. */
	if (vc->thumbprint != NULL) {
		o.tls = VMW_TLS_THUMBPRINT;
		o.thumbprint = vc->thumbprint;
	} else if (vc->cacert != NULL) {
		o.tls = VMW_TLS_CA;
		o.cacert = vc->cacert;
	} else if (cmd_thumbprint != NULL) {
		o.tls = VMW_TLS_THUMBPRINT;
		o.thumbprint = cmd_thumbprint;
	} else if (vc->insecure) {
		o.tls = VMW_TLS_INSECURE;
	} else {
		o.tls = VMW_TLS_CA;
	}
	r = vmw_conn_new(&o, &conn, e);
	if (r < 0)
		return r;
	if (deadline_ms != 0 && deadline_ms < dl)
		dl = deadline_ms;
	r = vmw_login(conn, dl, cancel, e);
	if (r < 0) {
		sw_errctx(e, "vCenter login (credential set %s)", vc->name);
		vmw_conn_free(conn);
		return r;
	}
	wrk_metrics_vcenter_login();
	*ret_conn = conn;
	return 0;
}

void
wrk_vc_disconnect(struct vmw_conn *conn)
{
	struct sw_err le;

	if (conn == NULL)
		return;
	(void)vmw_logout(conn, sw_mono_ms() + LOGOUT_MS, NULL, &le);
	vmw_conn_free(conn);
}

/* ------------------------------------------------------------ session pool */

struct pooled {
	char key[WRK_VC_KEY_MAX];
	struct vmw_conn *conn;
	uint64_t idle_since_ms;
};

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pooled pool[POOL_MAX];
static size_t npool;

/* An idle session for key, or NULL; sessions idle too long are logged out on the way. */
struct vmw_conn *
wrk_vc_pool_take(const char *key)
{
	struct vmw_conn *found = NULL, *old[POOL_MAX];
	uint64_t now = sw_mono_ms();
	size_t i, nold = 0;

	pthread_mutex_lock(&pool_mu);
	for (i = 0; i < npool;) {
		if (now - pool[i].idle_since_ms >= POOL_IDLE_MS) {
			old[nold++] = pool[i].conn;
		} else if (found == NULL && strcmp(pool[i].key, key) == 0) {
			found = pool[i].conn;
		} else {
			i++;
			continue;
		}
		pool[i] = pool[--npool];
	}
	pthread_mutex_unlock(&pool_mu);
	for (i = 0; i < nold; i++)
		wrk_vc_disconnect(old[i]);
	return found;
}

void
wrk_vc_pool_put(const char *key, struct vmw_conn *conn)
{
	pthread_mutex_lock(&pool_mu);
	if (npool < POOL_MAX) {
		(void)snprintf(pool[npool].key, sizeof(pool[npool].key), "%s", key);
		pool[npool].conn = conn;
		pool[npool].idle_since_ms = sw_mono_ms();
		npool++;
		conn = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	wrk_vc_disconnect(conn);
}

void
wrk_vc_pool_drain(void)
{
	struct vmw_conn *all[POOL_MAX];
	size_t i, n;

	pthread_mutex_lock(&pool_mu);
	n = npool;
	for (i = 0; i < n; i++)
		all[i] = pool[i].conn;
	npool = 0;
	pthread_mutex_unlock(&pool_mu);
	for (i = 0; i < n; i++)
		wrk_vc_disconnect(all[i]);
}

/* ------------------------------------------------------ retried operations */

/*
 * After a busy answer (TaskInProgress, ConcurrentAccess: another task holds
 * the VM) waits *delay_ms (doubling, capped) unless that passes the deadline
 * or the job is cancelled.  0: try again.
 */
int
wrk_vc_busy_wait(unsigned *delay_ms, uint64_t deadline_ms, atomic_int *cancel)
{
	uint64_t until = sw_mono_ms() + *delay_ms;
	unsigned char j;
	struct timespec ts;

	if (deadline_ms != 0 && until >= deadline_ms)
		return -ETIMEDOUT;
	while (sw_mono_ms() < until) {
		if (cancel != NULL && *cancel)
			return -ECANCELED;
		ts.tv_sec = 0;
		ts.tv_nsec = 100 * 1000000L;
		nanosleep(&ts, NULL);
	}
	/* Jitter keeps several workers waiting on one VM from retrying in lockstep. */
	if (getrandom(&j, 1, GRND_NONBLOCK) != 1)
		j = 0;
	*delay_ms = *delay_ms * 2 + j;
	if (*delay_ms > BUSY_CAP_MS)
		*delay_ms = BUSY_CAP_MS;
	return 0;
}

int
wrk_vc_snapshot_remove(struct vmw_conn *conn, const struct vmw_moref *snap, uint64_t deadline_ms,
    struct sw_err *e)
{
	unsigned delay = BUSY_FIRST_MS;
	int r;

	for (;;) {
		r = vmw_snapshot_remove(conn, snap, deadline_ms, NULL, e);
		if (r != SW_EBUSY || wrk_vc_busy_wait(&delay, deadline_ms, NULL) < 0)
			break;
	}
	return r;
}

/* Destroys every worker VM tagged with tag (the sweeper does the same by age). */
int
wrk_vc_destroy_tagged(struct vmw_conn *conn, const char *tag, uint64_t deadline_ms, struct sw_err *e)
{
	struct vmw_tagged_vm *vms = NULL;
	size_t n = 0, i;
	int r, rr = 0;

	r = vmw_worker_vm_list(conn, &vms, &n, deadline_ms, NULL, e);
	if (r < 0)
		return r;
	for (i = 0; i < n; i++) {
		if (strcmp(vms[i].tag, tag) != 0)
			continue;
		log_debug("vc: removing leftover worker VM %s of %s", vms[i].vm.value, tag);
		r = vmw_worker_vm_destroy(conn, &vms[i].vm, deadline_ms, NULL, e);
		if (r < 0 && r != SW_ENOTFOUND && rr == 0)
			rr = r;
	}
	free(vms);
	return rr;
}

int
wrk_vc_journal_undo(struct vmw_conn *conn, const struct ova_journal *j, struct sw_err *e)
{
	struct vmw_moref snap;
	int r;

	/*
	 * An export lease the attempt left open first: until it ends, vCenter
	 * blocks the destruction of its worker VM (and keeps it blocked until
	 * the lease times out, 300 s without progress).  Gone already is fine.
	 */
	if (j->lease[0] != '\0') {
		r = vmw_lease_abort(conn, j->lease, e);
		if (r == 0)
			log_info("%s: aborted the export lease %s an interrupted attempt left open",
			    j->command, j->lease);
		else if (r != SW_ENOTFOUND)
			return sw_errctx(e, "aborting export lease %s", j->lease);
	}
	/* The worker VM next: it holds the snapshot's disk. */
	if (j->command[0] != '\0') {
		r = wrk_vc_destroy_tagged(conn, j->command, sw_mono_ms() + WRK_VC_CLEANUP_MS, e);
		if (r < 0)
			return r;
	}
	memset(&snap, 0, sizeof(snap));
	if (j->snapshot[0] == '\0') {
		struct vmw_moref vm;
		char name[128];

		/*
		 * An attempt killed between CreateSnapshot_Task's end and its journal
		 * write left a snapshot the journal does not name: found by the name
		 * every attempt of the command gives it (snapworker-<id>) on the VM the
		 * journal names.
		 */
		if (j->vm[0] == '\0' || j->command[0] == '\0')
			return 0;
		memset(&vm, 0, sizeof(vm));
		snprintf(vm.type, sizeof(vm.type), "VirtualMachine");
		if (snprintf(vm.value, sizeof(vm.value), "%s", j->vm) >= (int)sizeof(vm.value) ||
		    snprintf(name, sizeof(name), "snapworker-%s", j->command) >= (int)sizeof(name))
			return sw_errf(e, SW_EFORMAT, "journal: VM id or command too long");
		r = vmw_snapshot_find(conn, &vm, name, &snap, sw_mono_ms() + WRK_VC_CLEANUP_MS, NULL,
		    e);
		if (r == SW_ENOTFOUND) {
			sw_err_clear(e);
			return 0;
		}
		if (r < 0)
			return r;
		log_info("%s: removing VM snapshot %s (%s) that an interrupted attempt took but "
		    "had not recorded", j->command, snap.value, name);
	} else {
		snprintf(snap.type, sizeof(snap.type), "VirtualMachineSnapshot");
		if (snprintf(snap.value, sizeof(snap.value), "%s", j->snapshot) >=
		    (int)sizeof(snap.value))
			return sw_errf(e, SW_EFORMAT, "journal: snapshot id too long");
	}
	r = wrk_vc_snapshot_remove(conn, &snap, sw_mono_ms() + WRK_VC_CLEANUP_MS, e);
	if (r == SW_ENOTFOUND)
		r = 0;
	return r;
}

