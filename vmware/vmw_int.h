/*
 * Internals shared by the files of vmware/: the connection object, the SOAP
 * request builder, the response tree helpers and the property collector.
 * Cross-file names carry the vmw__ prefix; nothing here is public API.
 */
#ifndef VMW_INT_H
#define VMW_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>
#include <libxml/tree.h>

#include "common/buf.h"
#include "vmware/vmware.h"

#define VMW_NS "urn:vim25"
#define VMW_XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

#define VMW_DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define VMW_MAX_REQUEST ((size_t)4 << 20)
#define VMW_MAX_XML_DEPTH 96
#define VMW_MAX_PAGES 10000     /* RetrievePropertiesEx continuation pages per call */
#define VMW_MAX_TEXT ((size_t)1 << 20)  /* one text value we copy out */

/* Which certificate a transfer accepts (see soap.c: tls_verify). */
struct vmw__pin {
	int active;                 /* 0: use the connection's mode as is */
	const char *alg;            /* "sha256" or "sha1" */
	char want[3 * 32 + 1];      /* normalised, upper-case colon hex */
	char seen[3 * 32 + 1];      /* what the server presented (set on mismatch) */
	int mismatch;
};

struct vmw_sc {
	struct vmw_moref root_folder, property_collector, view_manager, session_manager,
	    search_index, ovf_manager;
	struct vmw_moref virtual_disk_manager;   /* type[0] == 0: the server has none */
};

struct vmw_conn {
	CURL *soap;                 /* SOAP calls */
	CURL *xfer;                 /* NFC transfers: a second handle, so lease progress can be
	                               sent from inside a running transfer's callback */
	CURLSH *share;              /* the session cookie, DNS and TLS sessions of both handles */
	struct curl_slist *soap_hdrs;
	char *url;
	char *host;                 /* host[:port] of url, for NFC "*" URLs; IPv6 keeps brackets */
	char *hostname;             /* host alone */
	char *user;
	char *password;
	enum vmw_tls tls;
	char *cacert;
	struct vmw__pin conn_pin;   /* VMW_TLS_THUMBPRINT */
	struct vmw__pin *cur_pin;   /* the pin of the transfer in progress */
	unsigned connect_timeout_ms;
	unsigned keepalive_s;
	unsigned stall_timeout_s;
	size_t max_response;
	char soap_action[64];
	struct sw_buf resp;
	int have_sc;
	int logged_in;
	uint64_t last_ok_ms;        /* last successful SOAP exchange */
	struct vmw_sc sc;
	struct vmw_about about;
	struct vmw_fault fault;
	/* Transfer state read by the curl callbacks. */
	uint64_t deadline_ms;
	atomic_int *cancel;
	int (*xfer_tick)(void *ud);     /* called from the xferinfo callback of NFC transfers */
	void *xfer_tick_ud;
};

/* libcurl and libxml2 initialisation, once per process. */
int vmw__global_init(void);

/* A SOAP request body being built; the first failure sticks in rc. */
struct vmw__req {
	struct sw_buf b;
	int rc;
};

void vmw__req_init(struct vmw__req *r);
void vmw__req_free(struct vmw__req *r);
void vmw__req_raw(struct vmw__req *r, const char *s);
void vmw__req_rawf(struct vmw__req *r, const char *fmt, ...) SW_PRINTF(2, 3);
/* <tag>escaped text</tag> */
void vmw__req_text(struct vmw__req *r, const char *tag, const char *text);
/* <tag type="T">V</tag> */
void vmw__req_moref(struct vmw__req *r, const char *tag, const struct vmw_moref *m);
void vmw__req_bool(struct vmw__req *r, const char *tag, int v);
void vmw__req_i64(struct vmw__req *r, const char *tag, int64_t v);
/* Escapes s for element text and attribute values; control characters are refused. */
int vmw__xml_escape(struct sw_buf *b, const char *s);

/*
 * Builds the whole envelope for `method` on object `this` with the argument
 * XML args (may be NULL) into out.
 */
int vmw__envelope(struct sw_buf *out, const char *method, const struct vmw_moref *this,
    const char *args);

/* A parsed response: doc owns everything; ret is the <...Response> element. */
struct vmw__resp {
	xmlDoc *doc;
	xmlNode *body;              /* <METHODResponse> */
};
void vmw__resp_free(struct vmw__resp *r);

/*
 * Parses a SOAP response body (limits: size by the caller's buffer, depth
 * VMW_MAX_XML_DEPTH, no DTD, no network).  A fault fills *fault and returns
 * its mapped code; otherwise fills ret.
 */
int vmw__parse(const char *body, size_t len, struct vmw__resp *ret, struct vmw_fault *fault,
    struct sw_err *e);

/* Maps a fault type name to an error code. */
int vmw__fault_code(const char *type);

/* Flags for vmw__call. */
#define VMW_CALL_IDEMPOTENT 1   /* may be repeated after a transparent re-login */
#define VMW_CALL_NOLOGIN 2      /* may run without a session (RetrieveServiceContent, Login) */

/*
 * One SOAP call: method on `this` with args.  ret may be NULL when the
 * response is of no interest.
 */
int vmw__call(struct vmw_conn *c, const char *method, const struct vmw_moref *this,
    const char *args, int flags, struct vmw__resp *ret, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e);

/* The same, building args from a request; frees nothing. */
int vmw__call_req(struct vmw_conn *c, const char *method, const struct vmw_moref *this,
    struct vmw__req *args, int flags, struct vmw__resp *ret, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e);

/* Sets the common options of a transfer on handle h (TLS, timeouts, cancel). */
int vmw__curl_prepare(struct vmw_conn *c, CURL *h, struct vmw__pin *pin, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e);
/* Turns a curl result into an error code and message. */
int vmw__curl_error(struct vmw_conn *c, CURLcode cc, const char *what, const char *errbuf,
    struct sw_err *e);

/* 0, -ECANCELED or -ETIMEDOUT (with e set). */
int vmw__check_stop(uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);
/* Sleeps ms, waking early for cancel and deadline; returns vmw__check_stop(). */
int vmw__sleep(uint64_t ms, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);
/*
 * Polls of a task or lease state: the first after VMW_POLL_FIRST_MS, each
 * next one 1.5 times later, at most VMW_POLL_MAX_MS apart.  A step that ends
 * is seen within half its time (within VMW_POLL_MAX_MS once long), where a
 * doubling from 100 ms added up to its whole time; the early polls are cheap
 * RetrievePropertiesEx calls.
 */
#define VMW_POLL_FIRST_MS 25u
#define VMW_POLL_MAX_MS   1000u
uint64_t vmw__poll_next(uint64_t delay);

/* Response tree helpers; names are local names in any namespace. */
xmlNode *vmw__x_child(xmlNode *n, const char *name);
xmlNode *vmw__x_next(xmlNode *n, const char *name);
/* child path "a/b/c" */
xmlNode *vmw__x_path(xmlNode *n, const char *path);
/* xsi:type without its prefix (resolved by namespace, any prefix), or NULL. */
const char *vmw__x_type(xmlNode *n);
/* Text of n copied into buf; SW_ETOOBIG if it does not fit, SW_EFORMAT if n is NULL. */
int vmw__x_text(xmlNode *n, char *buf, size_t bufsz);
/* Text of n, malloc'ed (NULL if n is NULL or on allocation failure). */
char *vmw__x_strdup(xmlNode *n);
/* 1 if n's text equals s. */
int vmw__x_eq(xmlNode *n, const char *s);
int vmw__x_moref(xmlNode *n, struct vmw_moref *ret);
int vmw__x_i64(xmlNode *n, int64_t *ret);
int vmw__x_bool(xmlNode *n, int *ret);

/*
 * Property collector.  For every property of every object returned, cb is
 * called with the object and the property's name and <val> node; a negative
 * return stops the walk with that code.
 */
typedef int (*vmw__prop_cb)(void *ud, const struct vmw_moref *obj, const char *name, xmlNode *val,
    struct sw_err *e);

/* Properties `paths` (NULL-terminated) of one object. */
int vmw__props_get(struct vmw_conn *c, const struct vmw_moref *obj, const char *const *paths,
    vmw__prop_cb cb, void *ud, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* Properties of every object of type `type` under the root folder (via a ContainerView). */
int vmw__props_all(struct vmw_conn *c, const char *type, const char *const *paths,
    vmw__prop_cb cb, void *ud, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* Starts a task method (args may be empty) and waits for it (snapshot.c). */
int vmw__run_task(struct vmw_conn *c, const char *method, const struct vmw_moref *this,
    struct vmw__req *args, struct vmw_moref *ret_result, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e);

/* Records a LocalizedMethodFault (task error, lease error, missingSet) as the last fault. */
int vmw__inner_fault(struct vmw_conn *c, xmlNode *lmf, const char *what, struct sw_err *e);

/* Session (session.c). */
int vmw__login(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* Disk helpers (inventory.c). */
int vmw__parse_devices(xmlNode *val, struct vmw_disk **ret_disks, size_t *ret_n, struct sw_err *e);
void vmw__disks_free(struct vmw_disk *d, size_t n);
int vmw__disk_copy(const struct vmw_disk *src, struct vmw_disk *dst);
/* Fills chains of disks from a layoutEx disk list (<disk> children of parent) and its files. */
int vmw__apply_layout(xmlNode *layout_files_parent, xmlNode *disks_parent,
    struct vmw_disk *disks, size_t n);
/* Datastore paths compare equal ("[ds] a/b.vmdk" vs "[ds]a/b.vmdk"). */
int vmw__ds_path_eq(const char *a, const char *b);
int vmw__disk_has(const struct vmw_disk *d, const char *ds_path);

/* Sets snapworker.command=tag and snapworker.created=now on vm (ReconfigVM_Task; workervm.c). */
int vmw__vm_tag(struct vmw_conn *c, const struct vmw_moref *vm, const char *tag,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);

/* ------------------------------------------------------------------ */
/* NFC: lease and transfers (nfc.c), used by nfc_export.c, nfc_import.c */

#define VMW_NFC_MAX_URL 4096

/* One deviceUrl of a lease's info. */
struct vmw__lease_dev {
	char key[256];
	char import_key[256];
	char url[VMW_NFC_MAX_URL];
	char thumbprint[128];
	int disk;                   /* 1 disk, 0 not, -1 unknown */
	int64_t file_size;          /* -1 unknown */
};

struct vmw__lease_info {
	char state[16];
	struct vmw_moref entity;
	int64_t total_kb;
	size_t ndevs;
	struct vmw__lease_dev devs[VMW_MAX_DISKS];
	int error_rc;
};

/*
 * The HttpNfcLease an ExportVm or ImportVApp response returns; frees the
 * response.
 */
int vmw__lease_returned(struct vmw__resp *resp, const char *method, struct vmw_moref *lease,
    struct sw_err *e);
/* Aborts the lease (cleanup: a deadline of its own), keeping the connection's last fault. */
void vmw__lease_abort(struct vmw_conn *c, const struct vmw_moref *lease, const char *why);
/* Waits until the lease is ready (or failed), filling li. */
int vmw__lease_wait(struct vmw_conn *c, const struct vmw_moref *lease,
    struct vmw__lease_info *li, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e);
/* An NFC URL whose host is "*" gets the vCenter host; other URLs stay as they are. */
int vmw__nfc_url(const struct vmw_conn *c, const char *in, char *out, size_t outsz,
    struct sw_err *e);

/* A transfer's state across the files of one lease. */
struct vmw__xfer {
	struct vmw_conn *c;
	const struct vmw_moref *lease;
	struct vmw__pin pin;
	struct sw_sink sink;
	struct sw_source src;
	uint64_t bytes;             /* this file */
	uint64_t done;              /* finished files */
	uint64_t total;             /* expected over all files, 0 unknown */
	uint64_t deadline_ms;
	atomic_int *cancel;
	unsigned lease_every_ms;
	uint64_t last_lease_ms;
	uint64_t last_user_ms;
	int last_percent;
	vmw_progress_fn progress;
	void *ud;
	int failed;                 /* an error of ours (sink, source, lease) is in err */
	struct sw_err err;
	/*
	 * Download blocks gathered for the sink: TLS hands over one record
	 * (16 KiB) per callback, and a write() plus a digest update per record
	 * cost more than the copy into this buffer.  VMW_XFER_BLOCK bytes,
	 * allocated on first use, freed by vmw__xfer_free.
	 */
	unsigned char *blk;
	size_t blk_len;
};

/* Size of the download block a sink gets (the last one of a file may be shorter). */
#define VMW_XFER_BLOCK (1024u * 1024u)

/* Frees what a transfer allocated (its block); x stays usable. */
void vmw__xfer_free(struct vmw__xfer *x);

/* The certificate an NFC transfer accepts: the deviceUrl's thumbprint when present. */
int vmw__xfer_pin(struct vmw_conn *c, const struct vmw__lease_dev *d, struct vmw__pin *pin,
    struct sw_err *e);
/*
 * One GET (x->sink set) or PUT/POST (x->src set) of url; size is the
 * upload's length, 0 if unknown (chunked).
 */
int vmw__xfer_run(struct vmw__xfer *x, const char *url, const char *method, uint64_t size,
    struct sw_err *e);
/*
 * Progress housekeeping (the caller's callback, the lease's progress);
 * force: now, not when due.  0 or a negative code that must stop the
 * transfer.
 */
int vmw__xfer_tick(struct vmw__xfer *x, int force);

#endif
