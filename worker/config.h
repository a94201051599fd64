/*
 * The worker's configuration: the INI file of PROTOCOL.md ("Worker
 * configuration"), with SNAPWORKER_<SECTION>_<KEY> environment overrides and
 * secrets read from files whose mode is checked.  Everything here is
 * immutable after wrk_config_load() and shared read-only by all job slots.
 */
#ifndef WRK_CONFIG_H
#define WRK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/net.h"

#define WRK_CONFIG_DEFAULT "/etc/snapworker/snapworker.conf"

#define WRK_RETRY_MAX 16             /* delays of [retry] */
#define WRK_RETRY_DELAY_MAX (86400u) /* the longest delay: 1 day */

enum { WRK_LOCKS_AUTO = 0, WRK_LOCKS_SHARED, WRK_LOCKS_HOST };
/* [store] require_mount (worker/storehealth.h). */
enum { WRK_MOUNT_AUTO = 0, WRK_MOUNT_REQUIRED, WRK_MOUNT_NOT_REQUIRED };

/* [store]: one secondary store URL mapped to its local mount point. */
struct wrk_store {
	char *url;          /* e.g. nfs://10.0.0.5/export/secondary */
	char *mount;        /* e.g. /mnt/secondary/1 */
	char *extract_dir;  /* where Extract* put .ova files: [store] extract_dir or <mount>/extract */
};

/*
 * [limits]: fleet-wide concurrency limits (docs/architecture.md,
 * "Concurrency limits") on the vCenter a command talks to, the ESXi host of
 * its VM and the datastore of its disk.  0: unlimited.
 */
enum { WRK_LIMIT_VCENTER = 0, WRK_LIMIT_HOST, WRK_LIMIT_DATASTORE, WRK_LIMIT_KINDS };
#define WRK_LIMIT_MAX        64     /* the largest limit: tokens tried per resource */
#define WRK_LIMIT_NAME_MAX   128    /* a resource name in an override */
#define WRK_LIMIT_OVERRIDES  64
#define WRK_LIMIT_WAIT_MAX   3600u

struct wrk_limit_override {
	int kind;           /* WRK_LIMIT_* */
	char *name;         /* vCenter host name, ESXi host (managed object id), datastore name */
	unsigned n;         /* 0: unlimited */
};

/* "vcenter", "host", "datastore"; NULL out of range. */
const char *wrk_limit_kind_name(int kind);

/* [vcenter NAME]: a credential set, bound to the URLs it may be sent to. */
struct wrk_vcenter {
	char *name;
	char **urls;
	size_t nurls;
	char *user;
	char *password;     /* read from password_file; never logged */
	char *thumbprint;   /* SHA-256 hex with colons, or NULL */
	char *cacert;       /* CA file, or NULL */
	int insecure;       /* test rigs only; warned about at every start */
};

struct wrk_config {
	char *path;

	/* [worker] */
	char *name;                 /* default hostname:pid */
	unsigned jobs;              /* concurrent commands (default 1) */
	char **queues;              /* zone keys (default "default") */
	size_t nqueues;
	unsigned grace_s;           /* SIGTERM grace before running jobs are cancelled (default 300) */
	char *log_format;           /* "auto" (default: json unless stderr is a tty), "json", "text" */
	char *log_level;            /* "error", "warn", "info" (default), "debug" */
	char *log_file;             /* NULL: stderr; reopened on SIGHUP */

	/* [amqp] */
	/*
	 * The nodes of one broker (cluster): url is a space- or comma-separated
	 * list, all naming the same user and virtual host (one password_file).
	 * Default amqp://snapworker@127.0.0.1:5672/%2f.
	 */
	char **amqp_urls;
	size_t namqp_urls;
	char *amqp_password;        /* from password_file; never logged */
	char *amqp_cacert;
	unsigned heartbeat;         /* seconds, default 30 */
	/* Broker object names (PROTOCOL.md "Broker objects"); the defaults are the protocol's. */
	char *amqp_exchange;        /* snapworker.commands; queues are <exchange>.<zone> */
	char *amqp_events;          /* snapworker.events */
	char *amqp_dlx;             /* snapworker.dlx */
	char *amqp_dead_queue;      /* snapworker.dead */
	unsigned delivery_limit;    /* x-delivery-limit of the command queues, default 5 */
	/* Default X.retry for an exchange X.commands (snapworker.retry); delay queues are
	 * <retry_exchange>.<zone>.<delay>s. */
	char *amqp_retry_exchange;
	/* Cancel (docs/protocol.md, "Cancel"): the control exchange (default X.control for
	 * X.commands), the prefix of the cancel records (default X.cancel) and their
	 * lifetime (x-expires, default 3 days). */
	char *amqp_control;
	char *amqp_cancel_prefix;
	unsigned cancel_ttl_s;

	/* [store] */
	struct wrk_store *stores;
	size_t nstores;
	/*
	 * Whether the command lock is trusted across hosts: WRK_LOCKS_AUTO (from
	 * the mount's type and options), _SHARED or _HOST (the operator knows).
	 */
	int lock_scope;
	/*
	 * The store health probe (worker/storehealth.h): whether a store's mount
	 * point must be a mount (WRK_MOUNT_AUTO: once one was seen there), how
	 * often every store is probed and how long a probe may take before its
	 * store counts as sick.
	 */
	int require_mount;
	unsigned probe_interval_s;  /* default 2 */
	unsigned probe_timeout_s;   /* default 5 */

	/* [vcenter NAME] */
	struct wrk_vcenter *vcenters;
	size_t nvcenters;

	/* [download] */
	struct wrk_net *allow;      /* networks RegisterTemplate may fetch from despite being internal */
	size_t nallow;
	uint64_t download_max_size; /* default 1T */
	unsigned download_max_redirects; /* default 5 */

	/* [metrics] */
	char *metrics_listen;       /* NULL: no endpoint */

	/* [sweep] */
	uint64_t sweep_max_age_s;   /* worker VMs, journals, debris older than this are removed (6h10m) */
	unsigned sweep_interval_s;  /* the daemon sweeps at start, then this often (1h); 0: never */
	unsigned journal_stale_s;   /* a journal untouched this long is a dead attempt's (300 s) */

	unsigned load_flags;        /* WRK_CFG_* given to wrk_config_load_flags() */

	/* [limits] */
	unsigned limits[WRK_LIMIT_KINDS];       /* the defaults per kind; 0: unlimited */
	struct wrk_limit_override *limit_overrides;
	size_t nlimit_overrides;
	unsigned limit_wait_s;      /* a waiting command comes back after this (default 10 s) */
	char *amqp_limit_prefix;    /* [amqp] limit_prefix: token queue names (default X.limit) */

	/* [retry]: the delays before attempts 2, 3, ...; attempts in all = nretry_delays + 1 */
	unsigned retry_delays_s[WRK_RETRY_MAX];
	size_t nretry_delays;       /* default 4: 10s 1m 5m 10m */
	/* The delay queues to declare (wrk_config_delay_queues()), computed at load. */
	unsigned delay_queues_s[WRK_RETRY_MAX + 1];
	size_t ndelay_queues;
};

/*
 * Loads path (NULL: WRK_CONFIG_DEFAULT) and applies environment overrides
 * from envp (NULL: environ).  Unknown sections or keys are an error naming
 * the file, line and key.
 */
int wrk_config_load(const char *path, char *const *envp, struct wrk_config **ret,
    struct sw_err *e);
/*
 * The same with flags: WRK_CFG_BROKER_ONLY leaves the vCenter password files
 * unread (their passwords NULL), for tools that only talk to the broker
 * (snapctl) and may run where the vCenter secrets cannot be read.
 */
#define WRK_CFG_BROKER_ONLY 1u
int wrk_config_load_flags(const char *path, char *const *envp, unsigned flags,
    struct wrk_config **ret, struct sw_err *e);
void wrk_config_free(struct wrk_config *cfg);


/* Lookups; NULL when absent. */
const struct wrk_store *wrk_config_store(const struct wrk_config *cfg, const char *url);
const struct wrk_vcenter *wrk_config_vcenter(const struct wrk_config *cfg, const char *name);

/*
 * The limit on resource name of kind (an override, else the kind's
 * default); 0: unlimited.
 */
unsigned wrk_config_limit(const struct wrk_config *cfg, int kind, const char *name);
/* 1 when any limit is set (then, and only then, tokens are taken). */
int wrk_config_limits_on(const struct wrk_config *cfg);
/*
 * The delay queues to declare: the [retry] delays plus, when limits are
 * on, the limit wait ([limits] wait) if it is not one of them.  Returns n.
 */
size_t wrk_config_delay_queues(const struct wrk_config *cfg, unsigned *out, size_t max);

/* 1 if url is one of the URLs the credential set may be sent to. */
int wrk_vcenter_allows(const struct wrk_vcenter *vc, const char *url);

#endif
