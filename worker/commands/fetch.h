/*
 * RegisterTemplate's HTTP(S) fetcher: a libcurl download exposed as a pull
 * style struct sw_source, so that ovastore's streaming OVA unpack reads the
 * body while it arrives (no temporary .ova, constant memory, one pass).
 *
 * Hardening, because the URL comes from a message:
 *  - only http and https, for the first request and for every redirect;
 *    redirects limited (max_redirects);
 *  - every connection, redirects included, is checked at connect time
 *    against the address policy below (the sockaddr curl is about to
 *    connect to, so DNS rebinding cannot slip past a name check); proxies
 *    from the environment are ignored;
 *  - the body is limited to max_size while it streams (Content-Length is
 *    checked up front when the server sends one);
 *  - connect and low-speed timeouts, the job's deadline and cancel flag;
 *  - TLS is verified against the system CA bundle (cainfo overrides it).
 *
 * The digest named by checksum_alg is computed over the whole body; when an
 * expected digest is given the source fails its final read (the one that
 * would return end of data) with SW_ECHECKSUM, so a consumer that reads to
 * the end never commits a mismatching download.  wrk_fetch_finish() drains
 * and checks a body the consumer did not read to its end.
 *
 * Error codes: SW_EPATH (address refused by the policy, scheme not allowed),
 * SW_ETOOBIG (over max_size), SW_ENOTFOUND (HTTP 404/410), SW_EAUTH (HTTP
 * 401/403, TLS verification), SW_EREMOTE (other HTTP errors), SW_ENET
 * (host name not resolvable, connection refused or lost), -ETIMEDOUT,
 * -ECANCELED, SW_ECHECKSUM.
 */
#ifndef WRK_FETCH_H
#define WRK_FETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/io.h"
#include "worker/config.h"

/* Why an address is internal; WRK_ADDR_PUBLIC is fetchable. */
enum wrk_addr_class {
	WRK_ADDR_PUBLIC = 0,
	WRK_ADDR_UNSPECIFIED,   /* 0.0.0.0/8, ::/128 */
	WRK_ADDR_LOOPBACK,      /* 127.0.0.0/8, ::1 */
	WRK_ADDR_LINKLOCAL,     /* 169.254.0.0/16, fe80::/10 */
	WRK_ADDR_PRIVATE,       /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10 */
	WRK_ADDR_MULTICAST,     /* 224.0.0.0/4, ff00::/8 */
	WRK_ADDR_RESERVED,      /* 240/4 and broadcast, documentation, benchmarking, ::/96, ... */
};

/* "public", "loopback", ... */
const char *wrk_fetch_addr_class_name(enum wrk_addr_class c);

/*
 * Classifies an AF_INET or AF_INET6 socket address.  IPv6 forms that embed
 * an IPv4 address (::ffff:a.b.c.d, 64:ff9b::/96, 2002::/16) are classified by
 * the IPv4 address.  Any other family is WRK_ADDR_RESERVED.
 */
enum wrk_addr_class wrk_fetch_addr_class(const struct sockaddr *sa, socklen_t len);

/*
 * The connect-time policy: 1 when sa may be connected to (public, or inside
 * one of the allow networks; an embedded IPv4 address matches IPv4
 * networks), 0 when refused, with *ret_class (may be NULL) saying why.
 */
int wrk_fetch_addr_allowed(const struct sockaddr *sa, socklen_t len,
    const struct wrk_net *allow, size_t nallow, enum wrk_addr_class *ret_class);

struct wrk_fetch_opts {
	const struct wrk_net *allow;   /* networks allowed despite being internal */
	size_t nallow;
	uint64_t max_size;             /* 0: no limit */
	unsigned max_redirects;
	unsigned connect_timeout_s;    /* 0: 30 s */
	unsigned low_speed_time_s;     /* abort below 1 KiB/s for this long; 0: 120 s */
	uint64_t deadline_ms;          /* sw_mono_ms() deadline; 0: none */
	atomic_int *cancel;          /* non-zero: stop with -ECANCELED; may be NULL */
	const char *checksum_alg;      /* "sha256", "md5", "sha1" or NULL */
	const char *checksum_hex;      /* expected digest (lower case) or NULL */
	const char *cainfo;            /* CA bundle; NULL: the system's */
	void (*progress)(void *ud, int percent, uint64_t bytes);   /* percent -1: unknown length */
	void *progress_ud;
};

struct wrk_fetch;

/*
 * Validates url (http/https only) and prepares the transfer; nothing is
 * sent until the first read of the source.
 */
int wrk_fetch_open(const char *url, const struct wrk_fetch_opts *opts,
    struct wrk_fetch **ret_fetch, struct sw_err *e);

/* The body as a source (valid until wrk_fetch_free()). */
struct sw_source wrk_fetch_source(struct wrk_fetch *f);

/*
 * Reads what the consumer left of the body (bounded by max_size), then
 * checks the transfer's outcome and the expected digest.  Returns 0 with
 * *ret_bytes (body bytes) and ret_hex (the digest in hex, hexsz >= 129; may
 * be NULL), or the transfer's error.
 */
int wrk_fetch_finish(struct wrk_fetch *f, uint64_t *ret_bytes, char *ret_hex, size_t hexsz,
    struct sw_err *e);

/*
 * The transfer's own error, if any: the code a failed read returned (so a
 * caller can tell a download failure from a failure of the consumer), 0 when
 * the transfer has not failed.
 */
int wrk_fetch_error(const struct wrk_fetch *f, struct sw_err *ret_err);

/* Bytes of body received so far, and the length announced (0: unknown). */
uint64_t wrk_fetch_received(const struct wrk_fetch *f);
uint64_t wrk_fetch_length(const struct wrk_fetch *f);

void wrk_fetch_free(struct wrk_fetch *f);

#endif
