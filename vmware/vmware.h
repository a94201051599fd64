/*
 * vmware/: a small vSphere SOAP client (libcurl + libxml2 + openssl), just
 * the calls snapworker needs: session, property collector and tasks,
 * inventory, snapshots, worker VMs, NFC export and import.
 *
 * Conventions shared by every function here:
 *  - A struct vmw_conn is one session with one vCenter over one libcurl easy
 *    handle.  It is not thread-safe: one connection per job thread.
 *  - Every call that talks to the server takes an absolute deadline in
 *    sw_mono_ms() milliseconds (0: none) and a cancel flag (NULL: none); a
 *    call stops soon after *cancel becomes non-zero (-ECANCELED) or the
 *    deadline passes (-ETIMEDOUT).
 *  - Failures return a negative code and write the reason into the caller's
 *    struct sw_err (which may be NULL):
 *      SW_ENET       server unreachable, connection lost, HTTP error
 *      SW_EAUTH      login refused, certificate or thumbprint not trusted
 *      SW_EREMOTE    a SOAP fault or a failed task (vmw_last_fault() tells which)
 *      SW_EBUSY      TaskInProgress / ConcurrentAccess: retry later
 *      SW_ENOTFOUND  ManagedObjectNotFound, no such VM / snapshot / disk
 *      SW_EFORMAT    a response we cannot understand
 *      SW_ETOOBIG    a response over the size or depth limits
 *      -ETIMEDOUT, -ECANCELED, -ENOMEM, -EINVAL
 *  - ret_* output parameters are untouched on failure; what they receive on
 *    success is owned by the caller and freed with the matching *_free.
 *  - The password is never copied into an error message or a log line.
 */
#ifndef VMW_VMWARE_H
#define VMW_VMWARE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/io.h"

/* ------------------------------------------------------------------ */
/* Connection and session                                              */

enum vmw_tls {
	VMW_TLS_CA = 0,          /* verify the chain (cacert file, or the system store if NULL) */
	VMW_TLS_THUMBPRINT = 1,  /* accept exactly the certificate whose SHA-256 is thumbprint */
	VMW_TLS_INSECURE = 2,    /* no verification at all: test rigs only */
};

struct vmw_conn_opts {
	const char *url;         /* https://host[:port]/sdk */
	const char *user;
	const char *password;    /* caller-owned; copied into the connection, never logged */
	enum vmw_tls tls;
	const char *cacert;      /* VMW_TLS_CA: PEM file (NULL: system default) */
	const char *thumbprint;  /* VMW_TLS_THUMBPRINT: SHA-256, hex, colons optional, any case */
	unsigned connect_timeout_ms;  /* 0: 30 s */
	unsigned keepalive_s;         /* idle time after which a call first refreshes the session; 0: 600 */
	unsigned stall_timeout_s;     /* a transfer moving no bytes this long fails; 0: 300 */
	size_t max_response;          /* SOAP response body cap; 0: 64 MiB */
};

struct vmw_conn;

/* Parses and checks o; does not talk to the server. */
int vmw_conn_new(const struct vmw_conn_opts *o, struct vmw_conn **ret_conn, struct sw_err *e);

/* Closes the connection without logging out (use vmw_logout first). NULL is fine. */
void vmw_conn_free(struct vmw_conn *c);

/*
 * RetrieveServiceContent + Login.  A later call that fails with
 * NotAuthenticated (the session was lost: vCenter refused the call before
 * running it) logs in again on a new session, once, and is sent again.
 */
int vmw_login(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* Logout; harmless when not logged in. */
int vmw_logout(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/*
 * Keeps the session alive (a cheap CurrentTime call) if it has been idle for
 * keepalive_s; long transfers call it themselves, callers with long pauses
 * of their own may too.
 */
int vmw_keepalive(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

struct vmw_about {
	char name[128];          /* "VMware vCenter Server" */
	char full_name[256];
	char version[32];        /* "7.0.3" */
	char build[32];
	char api_type[32];       /* "VirtualCenter" or "HostAgent" */
	char api_version[32];
	char instance_uuid[64];
};

/* The server's AboutInfo (known after vmw_login); NULL before. */
const struct vmw_about *vmw_conn_about(const struct vmw_conn *c);

/*
 * The last SOAP fault or task error seen on c (after a SW_EREMOTE, SW_EBUSY,
 * SW_ENOTFOUND or SW_EAUTH from the server): type is the fault's type name
 * without namespace ("InvalidLogin", "TaskInProgress", "FileFault"), message
 * vCenter's localized message.  Empty strings when the last call had no fault.
 */
struct vmw_fault {
	char type[128];
	char message[SW_ERR_MSG_MAX];
};
const struct vmw_fault *vmw_last_fault(const struct vmw_conn *c);

/* ------------------------------------------------------------------ */
/* Managed object references                                           */

struct vmw_moref {
	char type[64];           /* "VirtualMachine" */
	char value[256];         /* "vm-42"; the simulator uses long datastore ids */
};

/* 0 if both set and equal. */
int vmw_moref_cmp(const struct vmw_moref *a, const struct vmw_moref *b);

/* ------------------------------------------------------------------ */
/* Inventory                                                           */

enum vmw_vm_by {
	VMW_VM_BY_INSTANCE_UUID = 1,
	VMW_VM_BY_BIOS_UUID = 2,
	VMW_VM_BY_PATH = 3,      /* inventory path, "DC0/vm/folder/name" */
	VMW_VM_BY_NAME = 4,      /* the VM's name, unique among all VMs */
	VMW_VM_BY_ANY = 5,       /* a UUID (instance, then BIOS); else a path if it has a "/"; else a name */
};

/* SW_ENOTFOUND when there is no such VM (or, by name, more than one). */
int vmw_vm_find(struct vmw_conn *c, enum vmw_vm_by by, const char *key, struct vmw_moref *ret_vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* Bounds on what we accept from the server. */
#define VMW_MAX_DISKS 64
#define VMW_MAX_CHAIN 256

struct vmw_disk {
	int key;                 /* device key, e.g. 2000 */
	int controller_key;
	int unit_number;
	char *file;              /* datastore path of the top of the chain: "[ds] vm/ROOT-3-000002.vmdk" */
	uint64_t capacity_bytes;
	struct vmw_moref datastore;
	char *disk_mode;         /* "persistent", ... */
	char *uuid;              /* backing uuid, may be NULL */
	size_t nchain;           /* backing chain, chain[0] = base disk ... chain[nchain-1] = file */
	char **chain;
};

struct vmw_vm_info {
	struct vmw_moref vm;
	char *name;
	char *instance_uuid;
	char *bios_uuid;
	char *power_state;       /* "poweredOn", "poweredOff", "suspended" */
	char *guest_id;
	char *vmx_path;          /* config.files.vmPathName */
	char *annotation;
	int64_t created;         /* snapworker.created from extraConfig, or -1 */
	char *tag;               /* snapworker.command from extraConfig, or NULL */
	struct vmw_moref host, resource_pool, datacenter, vm_folder, datastore;
	struct vmw_moref current_snapshot;   /* type[0] == 0: none */
	size_t ndisks;
	struct vmw_disk *disks;
};

int vmw_vm_info_get(struct vmw_conn *c, const struct vmw_moref *vm, struct vmw_vm_info **ret_info,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);
void vmw_vm_info_free(struct vmw_vm_info *info);

/* The disk whose chain contains datastore path ds_path (spaces around "]" tolerated), or NULL. */
const struct vmw_disk *vmw_vm_info_disk(const struct vmw_vm_info *info, const char *ds_path);

/* ------------------------------------------------------------------ */
/* Tasks                                                               */

/*
 * Waits for a task to finish (polling with backoff up to 2 s).  On a task
 * error returns the mapped code with vCenter's localized message in e and
 * vmw_last_fault().  ret_result (may be NULL) receives the task's result
 * MoRef when it has one (CreateSnapshot, CreateVM, ...).
 */
int vmw_task_wait(struct vmw_conn *c, const struct vmw_moref *task, struct vmw_moref *ret_result,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */

int vmw_snapshot_create(struct vmw_conn *c, const struct vmw_moref *vm, const char *name,
    const char *description, int quiesce, struct vmw_moref *ret_snapshot,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/*
 * The snapshot of vm named `name` (from the VM's snapshot.rootSnapshotList):
 * returns how many have that name (>= 1; ret_snapshot gets the first found),
 * or SW_ENOTFOUND.
 */
int vmw_snapshot_find(struct vmw_conn *c, const struct vmw_moref *vm, const char *name,
    struct vmw_moref *ret_snapshot, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* RemoveSnapshot_Task(removeChildren=false, consolidate=true). */
int vmw_snapshot_remove(struct vmw_conn *c, const struct vmw_moref *snapshot,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/*
 * The disk of `snapshot` (of `vm`) that holds the volume named by its
 * datastore path ds_path: the path may be any file of the volume's chain as
 * the VM sees it now or as the snapshot saw it (after earlier snapshots a
 * volume's path is often a delta such as "[ds] i-2-3-VM/ROOT-3-000002.vmdk").
 * The returned disk's file/chain are those frozen in the snapshot.
 */
int vmw_snapshot_disk(struct vmw_conn *c, const struct vmw_moref *vm,
    const struct vmw_moref *snapshot, const char *ds_path, struct vmw_disk **ret_disk,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);
void vmw_disk_free(struct vmw_disk *d);

/* ------------------------------------------------------------------ */
/* Worker VMs                                                          */

#define VMW_TAG_KEY "snapworker.command"
#define VMW_CREATED_KEY "snapworker.created"

struct vmw_worker_spec {
	const char *name;             /* VM name, e.g. the command id */
	const char *tag;              /* value of snapworker.command (the command id) */
	const struct vmw_moref *folder;        /* VM folder of the datacenter */
	const struct vmw_moref *pool;          /* resource pool */
	const struct vmw_moref *host;          /* may be NULL */
	const char *datastore_name;   /* where the worker's own .vmx goes, e.g. "LocalDS_0" */
	const char *guest_id;         /* NULL: "otherGuest64" */
	const struct vmw_disk *disk;  /* file (top of chain) and capacity; attached, never copied */
};

/* CreateVM_Task: powered off, 1 vCPU, 32 MiB, one SCSI controller, the disk (no fileOperation). */
int vmw_worker_vm_create(struct vmw_conn *c, const struct vmw_worker_spec *spec,
    struct vmw_moref *ret_vm, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/*
 * Powers the VM off if needed, detaches every disk (ReconfigVM_Task remove,
 * no fileOperation) and only then Destroy_Task, so the volume's files are
 * never deleted.  Refuses (-EPERM) a VM that carries no
 * snapworker tag.  SW_ENOTFOUND if the VM is already gone.
 */
int vmw_worker_vm_destroy(struct vmw_conn *c, const struct vmw_moref *vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/*
 * The first half of vmw_worker_vm_destroy(): powers the VM off if needed and
 * detaches every disk (files kept), leaving the VM to destroy later.  For an
 * imported VM whose disk must be moved out of the VM's directory first
 * (Destroy_Task removes that directory).  -EPERM for an untagged VM.
 */
int vmw_worker_vm_detach(struct vmw_conn *c, const struct vmw_moref *vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/*
 * VirtualDiskManager.MoveVirtualDisk_Task: moves a detached disk (descriptor
 * and extents) from datastore path src to dst within datacenter dc.  An
 * existing dst is an error (SW_EREMOTE, fault FileAlreadyExists) unless force.
 */
int vmw_virtual_disk_move(struct vmw_conn *c, const struct vmw_moref *dc, const char *src,
    const char *dst, int force, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

struct vmw_tagged_vm {
	struct vmw_moref vm;
	char name[128];
	char tag[128];
	int64_t created;   /* unix seconds, -1 if unknown */
};

/* Every VM with a snapworker.command tag (for the sweeper); caller frees *ret_vms. */
int vmw_worker_vm_list(struct vmw_conn *c, struct vmw_tagged_vm **ret_vms, size_t *ret_n,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* ------------------------------------------------------------------ */
/* Placement                                                           */

/* Where to create or import a VM that must live on one datastore. */
struct vmw_placement {
	char datastore_name[128];
	struct vmw_moref datastore;
	struct vmw_moref host;         /* connected, not in maintenance, mounts the datastore */
	struct vmw_moref pool;         /* the host's compute resource's root resource pool */
	struct vmw_moref folder;       /* the datacenter's VM folder */
	struct vmw_moref datacenter;
};

/*
 * Finds the datastore named ds_name (SW_ENOTFOUND when none, or when
 * several datacenters have one of that name) and a placement on it.
 */
int vmw_datastore_placement(struct vmw_conn *c, const char *ds_name, struct vmw_placement *ret,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* ------------------------------------------------------------------ */
/* Power                                                               */

int vmw_vm_power_off(struct vmw_conn *c, const struct vmw_moref *vm,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* ------------------------------------------------------------------ */
/* NFC export and import                                               */

/* What the export knows about one disk before its bytes arrive. */
struct vmw_nfc_disk {
	int index;               /* 0.. in deviceUrl order */
	const char *key;         /* deviceUrl key, e.g. "/vm-42/VirtualLsiLogicController0:0" */
	const char *file;        /* file name used in the OVF: "<name>-disk<index>.vmdk" */
	uint64_t size;           /* expected bytes, 0 if unknown */
};

/* Progress: bytes moved so far over all disks, percent of the expected total (0-100). */
typedef void (*vmw_progress_fn)(void *ud, uint64_t bytes, int percent);

struct vmw_export_opts {
	const char *name;        /* OVF name and file prefix */
	/* Opens the sink for a disk; the sink receives the bytes in order. */
	int (*sink_open)(void *ud, const struct vmw_nfc_disk *d, struct sw_sink *ret_sink,
	    struct sw_err *e);
	/* Closes it: status 0 on success (bytes = total written), negative on failure. */
	int (*sink_close)(void *ud, const struct vmw_nfc_disk *d, int status, uint64_t bytes,
	    struct sw_err *e);
	vmw_progress_fn progress;  /* may be NULL */
	/*
	 * May be NULL.  Called once ExportVm returned its lease, before any
	 * byte moves, so the caller can record it durably (a crash leaves the
	 * lease open, and vCenter blocks the VM until it ends: see
	 * vmw_lease_abort).  Failing aborts the lease and the export.
	 */
	int (*lease_open)(void *ud, const struct vmw_moref *lease, struct sw_err *e);
	void *ud;
	unsigned lease_progress_s; /* HttpNfcLeaseProgress interval; 0: 20 s (vCenter times out at 300) */
};

/*
 * HttpNfcLeaseAbort of a lease another process (a crashed attempt) left
 * open: while it is, vCenter refuses to destroy or power on its VM.  0 once
 * aborted; SW_ENOTFOUND when the lease no longer exists or has already ended
 * (done, error, aborted), which is what the caller wants too.  A deadline of
 * its own (cleanup), not cancellable.
 */
int vmw_lease_abort(struct vmw_conn *c, const char *lease, struct sw_err *e);

struct vmw_export_file {
	char *file;              /* "<name>-disk<K>.vmdk" */
	char *key;               /* deviceUrl key */
	uint64_t size;           /* bytes written to the sink */
};

struct vmw_export_result {
	char *ovf;               /* OVF descriptor XML (NUL-terminated) */
	size_t ovf_len;
	size_t nfiles;
	struct vmw_export_file *files;
};

/*
 * ExportVm of a powered-off VM: waits for the lease, streams every disk into
 * its sink (constant memory), keeps the lease alive, CreateDescriptor,
 * HttpNfcLeaseComplete.  On any error the lease is aborted.
 */
int vmw_export_vm(struct vmw_conn *c, const struct vmw_moref *vm, const struct vmw_export_opts *o,
    struct vmw_export_result **ret_result, uint64_t deadline_ms, atomic_int *cancel,
    struct sw_err *e);
void vmw_export_result_free(struct vmw_export_result *r);

struct vmw_import_opts {
	const char *ovf;         /* OVF descriptor */
	const char *vm_name;     /* entityName */
	const struct vmw_moref *pool;
	const struct vmw_moref *folder;
	const struct vmw_moref *datastore;
	const struct vmw_moref *host;      /* may be NULL */
	/*
	 * Opens the source of the file the OVF names `file` (an href of its
	 * References); *ret_size is its size in bytes (0 if unknown: chunked upload).
	 */
	int (*source_open)(void *ud, const char *file, struct sw_source *ret_src, uint64_t *ret_size,
	    struct sw_err *e);
	void (*source_close)(void *ud, const char *file, struct sw_source *src);
	vmw_progress_fn progress;
	void *ud;
	unsigned lease_progress_s;
	/*
	 * When set, the imported VM carries snapworker.command=tag and
	 * snapworker.created in extraConfig (from the import spec; re-applied
	 * with ReconfigVM_Task if the server dropped them), so it can be
	 * destroyed with vmw_worker_vm_destroy() and found by the sweeper.
	 */
	const char *tag;
};

struct vmw_import_result {
	struct vmw_moref vm;
	size_t ndisks;
	char **disk_paths;       /* datastore paths of the new VM's disks */
};

/*
 * CreateImportSpec (thin) -> ImportVApp -> lease -> upload each file
 * (PUT when the spec says create, else POST; application/x-vnd.vmware-streamVmdk)
 * -> HttpNfcLeaseComplete, or Abort on any error.
 */
int vmw_import_vm(struct vmw_conn *c, const struct vmw_import_opts *o,
    struct vmw_import_result **ret_result, uint64_t deadline_ms, atomic_int *cancel,
    struct sw_err *e);
void vmw_import_result_free(struct vmw_import_result *r);

/* ------------------------------------------------------------------ */
/* Helpers exposed for tests and tools                                 */

/*
 * Normalises a thumbprint ("ab:CD:..." or "abcd...") to upper-case colon
 * form into out (at least 3*len+1 bytes for len digest bytes); 0 or -EINVAL.
 * want_bytes is 32 for SHA-256, 20 for SHA-1.
 */
int vmw_thumbprint_normalize(const char *in, size_t want_bytes, char *out, size_t outsz);

/* SHA-256 thumbprint (upper-case, colons) of a DER certificate. */
void vmw_thumbprint_der(const unsigned char *der, size_t n, const char *alg, char *out,
    size_t outsz);

#endif
