/*
 * RegisterTemplate's fetcher (see fetch.h).  libcurl pushes data into a
 * write callback, ovastore's unpack pulls from a struct sw_source: the two
 * meet in a bounded buffer driven by curl_multi in the caller's thread.  A
 * read drains the buffer; when it is empty the read runs the multi handle
 * until the write callback has delivered more.  When the buffer is full the
 * write callback pauses the transfer (CURL_WRITEFUNC_PAUSE) and the next read
 * that empties the buffer resumes it, so memory stays constant whatever the
 * speed of either side.  While a read waits, the write callback copies
 * straight into the reader's buffer (the bounded buffer takes only what does
 * not fit there), and the body's digest is computed on a helper thread
 * (common/hashpipe.h), so neither costs the download thread a pass of its
 * own.
 */
#include "worker/commands/fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hashpipe.h"
#include "common/log.h"

/* What one write callback may hand us (CURLOPT_BUFFERSIZE): large reads, few calls. */
#define FETCH_CHUNK      (1024 * 1024)
/* The buffer between curl and the reader. */
#define FETCH_BUF        (2 * FETCH_CHUNK)
/* The ring of the body's digest (its helper thread lags by at most this much). */
#define FETCH_HASH_RING  (2 * 1024 * 1024)
/* A resumed transfer may deliver what it held while paused in one call. */
#define FETCH_BUF_MAX    (32 * 1024 * 1024)
#define FETCH_POLL_MS    200
#define FETCH_URL_MAX    8192
#define FETCH_DRAIN      (64 * 1024)

struct wrk_fetch {
	CURLM *multi;
	CURL *easy;
	int added;                  /* easy is in multi */
	struct wrk_fetch_opts o;    /* strings and allow list borrowed from the caller */
	unsigned char *buf;
	size_t cap, head, len;      /* data at buf[head .. head+len) */
	unsigned char *dst;         /* a waiting read's buffer (only while buf is empty) */
	size_t dstcap, dstlen;
	int paused;                 /* the write callback returned CURL_WRITEFUNC_PAUSE */
	int done;                   /* CURLMSG_DONE seen */
	int eof;                    /* end of data returned to the reader (digest checked) */
	CURLcode cres;
	uint64_t received;
	uint64_t length;            /* Content-Length of the final response, 0: unknown */
	int length_checked;
	struct sw_hash *hash;
	struct sw_hashpipe *hp;     /* feeds hash on a helper thread; NULL: inline */
	char digest[129];
	int err;                    /* first failure of the transfer, sticky */
	struct sw_err errmsg;
	int refused;                /* the address policy refused a connection */
	enum wrk_addr_class refused_class;
	char refused_addr[INET6_ADDRSTRLEN];
	int last_percent;
	uint64_t last_progress_ms;
	char curlerr[CURL_ERROR_SIZE];
};

/* ------------------------------------------------------- address policy */

const char *
wrk_fetch_addr_class_name(enum wrk_addr_class c)
{
	switch (c) {
	case WRK_ADDR_PUBLIC: return "public";
	case WRK_ADDR_UNSPECIFIED: return "unspecified";
	case WRK_ADDR_LOOPBACK: return "loopback";
	case WRK_ADDR_LINKLOCAL: return "link-local";
	case WRK_ADDR_PRIVATE: return "private";
	case WRK_ADDR_MULTICAST: return "multicast";
	case WRK_ADDR_RESERVED: return "reserved";
	}
	return "reserved";
}

static enum wrk_addr_class
class_v4(const unsigned char *b)
{
	uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];

	if ((a >> 24) == 0)
		return WRK_ADDR_UNSPECIFIED;
	if ((a >> 24) == 127)
		return WRK_ADDR_LOOPBACK;
	if ((a >> 24) == 10 || (a & 0xfff00000u) == 0xac100000u ||
	    (a & 0xffff0000u) == 0xc0a80000u)
		return WRK_ADDR_PRIVATE;
	/* Carrier-grade NAT space is as internal as RFC 1918 from a tenant's view. */
	if ((a & 0xffc00000u) == 0x64400000u)
		return WRK_ADDR_PRIVATE;
	if ((a & 0xffff0000u) == 0xa9fe0000u)
		return WRK_ADDR_LINKLOCAL;
	if ((a & 0xffffff00u) == 0xc0000000u ||   /* 192.0.0.0/24 protocol assignments */
	    (a & 0xffffff00u) == 0xc0000200u ||   /* 192.0.2.0/24 documentation */
	    (a & 0xfffe0000u) == 0xc6120000u ||   /* 198.18.0.0/15 benchmarking */
	    (a & 0xffffff00u) == 0xc6336400u ||   /* 198.51.100.0/24 documentation */
	    (a & 0xffffff00u) == 0xcb007100u)     /* 203.0.113.0/24 documentation */
		return WRK_ADDR_RESERVED;
	if ((a & 0xf0000000u) == 0xe0000000u)
		return WRK_ADDR_MULTICAST;
	if ((a & 0xf0000000u) == 0xf0000000u)     /* 240/4 and the broadcast address */
		return WRK_ADDR_RESERVED;
	return WRK_ADDR_PUBLIC;
}

static int
all_zero(const unsigned char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/*
 * Where an IPv6 address carries an IPv4 address that the network will
 * actually reach (mapped, NAT64, 6to4), returns it; else NULL.
 */
static const unsigned char *
embedded_v4(const unsigned char *b)
{
	static const unsigned char nat64[12] = { 0x00, 0x64, 0xff, 0x9b };

	if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff)
		return b + 12;
	if (memcmp(b, nat64, 12) == 0)
		return b + 12;
	if (b[0] == 0x20 && b[1] == 0x02)
		return b + 2;
	return NULL;
}

static enum wrk_addr_class
class_v6(const unsigned char *b)
{
	const unsigned char *v4 = embedded_v4(b);

	if (v4 != NULL)
		return class_v4(v4);
	if (all_zero(b, 16))
		return WRK_ADDR_UNSPECIFIED;
	if (all_zero(b, 15) && b[15] == 1)
		return WRK_ADDR_LOOPBACK;
	if (all_zero(b, 12))                        /* ::/96, deprecated IPv4-compatible */
		return WRK_ADDR_RESERVED;
	if (b[0] == 0xff)
		return WRK_ADDR_MULTICAST;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return WRK_ADDR_LINKLOCAL;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)  /* fec0::/10, deprecated site-local */
		return WRK_ADDR_PRIVATE;
	if ((b[0] & 0xfe) == 0xfc)
		return WRK_ADDR_PRIVATE;
	if (b[0] == 0x01 && all_zero(b + 1, 7))     /* 100::/64 discard */
		return WRK_ADDR_RESERVED;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return WRK_ADDR_RESERVED;               /* 2001:db8::/32 documentation */
	if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 &&
	    b[5] == 1)                              /* 64:ff9b:1::/48 local-use NAT64 */
		return WRK_ADDR_PRIVATE;
	return WRK_ADDR_PUBLIC;
}

enum wrk_addr_class
wrk_fetch_addr_class(const struct sockaddr *sa, socklen_t len)
{
	if (sa == NULL)
		return WRK_ADDR_RESERVED;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		return class_v4((const unsigned char *)&in->sin_addr);
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		return class_v6(in6->sin6_addr.s6_addr);
	}
	return WRK_ADDR_RESERVED;
}

static int
net_match(const struct wrk_net *n, int family, const unsigned char *addr)
{
	unsigned bits = n->prefix, whole, rest;
	unsigned maxbits = family == AF_INET ? 32 : 128;

	if (n->family != family || bits > maxbits)
		return 0;
	whole = bits / 8;
	rest = bits % 8;
	if (memcmp(n->addr, addr, whole) != 0)
		return 0;
	if (rest != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((n->addr[whole] & mask) != (addr[whole] & mask))
			return 0;
	}
	return 1;
}

int
wrk_fetch_addr_allowed(const struct sockaddr *sa, socklen_t len,
    const struct wrk_net *allow, size_t nallow, enum wrk_addr_class *ret_class)
{
	enum wrk_addr_class c = wrk_fetch_addr_class(sa, len);
	const unsigned char *v6 = NULL, *v4 = NULL;
	size_t i;

	if (ret_class != NULL)
		*ret_class = c;
	if (c == WRK_ADDR_PUBLIC)
		return 1;
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		v4 = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		v6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		v4 = embedded_v4(v6);
	} else {
		return 0;
	}
	for (i = 0; i < nallow; i++) {
		if (v4 != NULL && net_match(&allow[i], AF_INET, v4))
			return 1;
		if (v6 != NULL && net_match(&allow[i], AF_INET6, v6))
			return 1;
	}
	return 0;
}

/* -------------------------------------------------------------- fetcher */

static int
fetch_fail(struct wrk_fetch *f, int code, const char *fmt, ...) SW_PRINTF(3, 4);

static int
fetch_fail(struct wrk_fetch *f, int code, const char *fmt, ...)
{
	va_list ap;

	if (f->err != 0)
		return f->err;
	va_start(ap, fmt);
	vsnprintf(f->errmsg.msg, sizeof(f->errmsg.msg), fmt, ap);
	va_end(ap);
	f->errmsg.code = code;
	f->err = code;
	return code;
}

static int
fetch_check_stop(struct wrk_fetch *f)
{
	if (f->o.cancel != NULL && *f->o.cancel)
		return fetch_fail(f, -ECANCELED, "download cancelled");
	if (f->o.deadline_ms != 0 && sw_mono_ms() >= f->o.deadline_ms)
		return fetch_fail(f, -ETIMEDOUT, "download: deadline passed after %llu bytes",
		    (unsigned long long)f->received);
	return 0;
}

static void
note_refused(struct wrk_fetch *f, const struct sockaddr *sa, enum wrk_addr_class c)
{
	const void *a = NULL;

	f->refused = 1;
	f->refused_class = c;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, f->refused_addr,
	    sizeof(f->refused_addr)) == NULL)
		snprintf(f->refused_addr, sizeof(f->refused_addr), "(family %d)", sa->sa_family);
}

/*
 * Every connection curl makes, for the first request and each redirect,
 * goes through here: the address it is about to connect to is the one that
 * is checked, whatever name resolved to it.
 */
static curl_socket_t
fetch_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct wrk_fetch *f = ud;
	enum wrk_addr_class c = WRK_ADDR_RESERVED;
	int fd;

	if (purpose != CURLSOCKTYPE_IPCXN ||
	    !wrk_fetch_addr_allowed(&a->addr, a->addrlen, f->o.allow, f->o.nallow, &c)) {
		note_refused(f, &a->addr, c);
		log_debug("fetch: refused connection to %s (%s)", f->refused_addr,
		    wrk_fetch_addr_class_name(c));
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/*
 * A second look just before each request is sent, on whatever connection
 * curl chose (also a reused one): the peer's numeric address.
 */
static int
fetch_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	struct wrk_fetch *f = ud;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	enum wrk_addr_class c = WRK_ADDR_RESERVED;
	int ok = 0;

	memset(&in, 0, sizeof(in));
	memset(&in6, 0, sizeof(in6));
	if (primary_ip != NULL && inet_pton(AF_INET, primary_ip, &in.sin_addr) == 1) {
		in.sin_family = AF_INET;
		ok = wrk_fetch_addr_allowed((struct sockaddr *)&in, sizeof(in), f->o.allow,
		    f->o.nallow, &c);
		if (!ok)
			note_refused(f, (struct sockaddr *)&in, c);
	} else if (primary_ip != NULL && inet_pton(AF_INET6, primary_ip, &in6.sin6_addr) == 1) {
		in6.sin6_family = AF_INET6;
		ok = wrk_fetch_addr_allowed((struct sockaddr *)&in6, sizeof(in6), f->o.allow,
		    f->o.nallow, &c);
		if (!ok)
			note_refused(f, (struct sockaddr *)&in6, c);
	} else {
		f->refused = 1;
		f->refused_class = WRK_ADDR_RESERVED;
		snprintf(f->refused_addr, sizeof(f->refused_addr), "(unknown)");
	}
	return ok ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

static int
fetch_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct wrk_fetch *f = ud;

	return fetch_check_stop(f) != 0 || f->err != 0;
}

static int
fetch_check_length(struct wrk_fetch *f)
{
	curl_off_t cl = -1;

	if (f->length_checked)
		return 0;
	f->length_checked = 1;
	if (curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
	    cl > 0) {
		f->length = (uint64_t)cl;
		if (f->o.max_size != 0 && f->length > f->o.max_size)
			return fetch_fail(f, SW_ETOOBIG,
			    "download: Content-Length %llu exceeds the limit of %llu bytes",
			    (unsigned long long)f->length, (unsigned long long)f->o.max_size);
	}
	return 0;
}

/* The body's digest: queued for the helper thread (or computed here without one). */
static int
fetch_hash(struct wrk_fetch *f, const char *p, size_t n)
{
	int r;

	if (f->hash == NULL)
		return 0;
	r = f->hp != NULL ? sw_hashpipe_update(f->hp, f->hash, p, n) :
	    sw_hash_update(f->hash, p, n);
	if (r < 0)
		return fetch_fail(f, SW_EINTERNAL, "download: digest update failed");
	return 0;
}

static size_t fetch_queue(struct wrk_fetch *f, const char *p, size_t n);

static size_t
fetch_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct wrk_fetch *f = ud;
	size_t n = size * nmemb;

	if (f->err != 0 || fetch_check_length(f) != 0)
		return 0;
	if (n == 0)
		return 0;
	if (f->o.max_size != 0 && (f->received > f->o.max_size || n > f->o.max_size - f->received)) {
		fetch_fail(f, SW_ETOOBIG, "download: body exceeds the limit of %llu bytes",
		    (unsigned long long)f->o.max_size);
		return 0;
	}
	/* A waiting read takes what fits straight into its buffer (nothing is queued before it). */
	if (f->dst != NULL && f->len == 0 && f->dstlen < f->dstcap) {
		size_t k = f->dstcap - f->dstlen < n ? f->dstcap - f->dstlen : n;

		if (fetch_hash(f, p, k) < 0)
			return 0;
		memcpy(f->dst + f->dstlen, p, k);
		f->dstlen += k;
		f->received += k;
		if (k == n)
			return n;
		/* The rest goes to the buffer, which is empty: it fits unless larger than it. */
		if (fetch_queue(f, p + k, n - k) != n - k)
			return 0;
		return n;
	}
	return fetch_queue(f, p, n);
}

/*
 * Appends to the bounded buffer: n, CURL_WRITEFUNC_PAUSE when it is full
 * (nothing taken), 0 on failure.
 */
static size_t
fetch_queue(struct wrk_fetch *f, const char *p, size_t n)
{
	if (f->cap - f->head - f->len < n && f->head != 0) {
		memmove(f->buf, f->buf + f->head, f->len);
		f->head = 0;
	}
	if (f->cap - f->len < n) {
		unsigned char *nb;

		if (f->len != 0) {
			/* Full: hold this chunk in curl until the reader has drained ours. */
			f->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		/* (Only a chunk split by a waiting read gets here with n below a whole chunk.) */
		if (n > FETCH_BUF_MAX) {
			fetch_fail(f, SW_ETOOBIG, "download: a %zu-byte chunk from libcurl", n);
			return 0;
		}
		nb = realloc(f->buf, n);
		if (nb == NULL) {
			fetch_fail(f, -ENOMEM, "download: out of memory");
			return 0;
		}
		f->buf = nb;
		f->cap = n;
	}
	if (fetch_hash(f, p, n) < 0)
		return 0;
	memcpy(f->buf + f->head + f->len, p, n);
	f->len += n;
	f->received += n;
	return n;
}

/* Turns a finished transfer's CURLcode into our error (unless one is recorded). */
static int
fetch_map_result(struct wrk_fetch *f)
{
	long status = 0;
	const char *detail = f->curlerr[0] != '\0' ? f->curlerr : curl_easy_strerror(f->cres);

	if (f->err != 0)
		return f->err;
	switch (f->cres) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
	case CURLE_ABORTED_BY_CALLBACK:
		if (f->refused)
			return fetch_fail(f, SW_EPATH,
			    "download: connection to %s refused: %s address, not in [download] allow",
			    f->refused_addr, wrk_fetch_addr_class_name(f->refused_class));
		return fetch_fail(f, SW_ENET, "download: %s", detail);
	case CURLE_COULDNT_RESOLVE_HOST:
		return fetch_fail(f, SW_ENET, "download: host name not resolvable: %s", detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return fetch_fail(f, SW_EPATH, "download: only http and https are allowed (%s)",
		    detail);
	case CURLE_TOO_MANY_REDIRECTS:
		return fetch_fail(f, SW_EUNSUPPORTED, "download: more than %u redirects",
		    f->o.max_redirects);
	case CURLE_FILESIZE_EXCEEDED:
		return fetch_fail(f, SW_ETOOBIG, "download: larger than the limit of %llu bytes",
		    (unsigned long long)f->o.max_size);
	case CURLE_OPERATION_TIMEDOUT:
		return fetch_fail(f, -ETIMEDOUT, "download: %s", detail);
	case CURLE_OUT_OF_MEMORY:
		return fetch_fail(f, -ENOMEM, "download: out of memory");
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return fetch_fail(f, SW_EAUTH, "download: TLS certificate not trusted: %s", detail);
	case CURLE_HTTP_RETURNED_ERROR:
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status == 401 || status == 403 || status == 407)
			return fetch_fail(f, SW_EAUTH, "download: HTTP %ld", status);
		/* The server may recover from these; a retry may succeed. */
		if (status >= 500 || status == 408 || status == 429)
			return fetch_fail(f, SW_EREMOTE, "download: HTTP %ld", status);
		return fetch_fail(f, SW_ENOTFOUND, "download: HTTP %ld", status);
	default:
		return fetch_fail(f, SW_ENET, "download: %s", detail);
	}
}

static void
fetch_progress(struct wrk_fetch *f)
{
	int pct = -1;
	uint64_t now;

	if (f->o.progress == NULL)
		return;
	if (f->length != 0)
		pct = (int)(f->received >= f->length ? 100 : f->received * 100 / f->length);
	now = sw_mono_ms();
	if (pct == f->last_percent && now - f->last_progress_ms < 1000)
		return;
	f->last_percent = pct;
	f->last_progress_ms = now;
	f->o.progress(f->o.progress_ud, pct, f->received);
}

/* One step of the transfer: perform, collect completion, wait for sockets. */
static int
fetch_pump(struct wrk_fetch *f)
{
	CURLMsg *msg;
	CURLMcode mc;
	int running = 0, q;

	if (!f->added) {
		mc = curl_multi_add_handle(f->multi, f->easy);
		if (mc != CURLM_OK)
			return fetch_fail(f, SW_EINTERNAL, "download: %s", curl_multi_strerror(mc));
		f->added = 1;
	}
	mc = curl_multi_perform(f->multi, &running);
	if (mc != CURLM_OK)
		return fetch_fail(f, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : SW_EINTERNAL,
		    "download: %s", curl_multi_strerror(mc));
	while ((msg = curl_multi_info_read(f->multi, &q)) != NULL) {
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == f->easy) {
			f->done = 1;
			f->cres = msg->data.result;
		}
	}
	if (f->done || f->len != 0 || f->dstlen != 0 || f->paused || f->err != 0)
		return 0;
	if (fetch_check_stop(f) != 0)
		return f->err;
	mc = curl_multi_poll(f->multi, NULL, 0, FETCH_POLL_MS, NULL);
	if (mc != CURLM_OK)
		return fetch_fail(f, SW_EINTERNAL, "download: %s", curl_multi_strerror(mc));
	return 0;
}

/* End of body: the outcome of the transfer, then the digest. */
static int
fetch_at_end(struct wrk_fetch *f)
{
	int r;

	r = fetch_map_result(f);
	if (r < 0)
		return r;
	if (f->hash != NULL && f->digest[0] == '\0') {
		if ((f->hp != NULL && sw_hashpipe_sync(f->hp) < 0) ||
		    sw_hash_final(f->hash, f->digest, sizeof(f->digest)) < 0)
			return fetch_fail(f, SW_EINTERNAL, "download: digest failed");
	}
	if (f->o.checksum_hex != NULL && f->o.checksum_hex[0] != '\0' &&
	    strcasecmp(f->digest, f->o.checksum_hex) != 0)
		return fetch_fail(f, SW_ECHECKSUM,
		    "download: %s of the %llu downloaded bytes is %s, the command expects %s",
		    f->o.checksum_alg, (unsigned long long)f->received, f->digest,
		    f->o.checksum_hex);
	f->eof = 1;
	return 0;
}

static ssize_t
fetch_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct wrk_fetch *f = ud;
	size_t m;
	int r;

	for (;;) {
		if (f->len > 0) {
			m = n < f->len ? n : f->len;
			memcpy(p, f->buf + f->head, m);
			f->head += m;
			f->len -= m;
			if (f->len == 0)
				f->head = 0;
			fetch_progress(f);
			return (ssize_t)m;
		}
		if (f->err != 0)
			break;
		if (f->eof)
			return 0;
		if (f->paused) {
			CURLcode c;

			/* Our buffer is empty: curl may hand over what it held back. */
			f->paused = 0;
			c = curl_easy_pause(f->easy, CURLPAUSE_CONT);
			if (c != CURLE_OK && f->err == 0)
				fetch_fail(f, SW_ENET, "download: resume: %s", curl_easy_strerror(c));
			continue;
		}
		if (f->done) {
			if (fetch_at_end(f) < 0)
				break;
			return 0;
		}
		/* Whatever curl delivers now may go straight into p. */
		f->dst = p;
		f->dstcap = n;
		f->dstlen = 0;
		r = fetch_pump(f);
		m = f->dstlen;
		f->dst = NULL;
		f->dstcap = f->dstlen = 0;
		if (m > 0) {
			fetch_progress(f);
			return (ssize_t)m;
		}
		if (r < 0)
			break;
	}
	return sw_errf(e, f->err, "%s", f->errmsg.msg);
}

struct sw_source
wrk_fetch_source(struct wrk_fetch *f)
{
	struct sw_source s = { fetch_read, f };

	return s;
}

static int
scheme_ok(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

#define SETOPT(opt, val) do { \
	if (cr == CURLE_OK) cr = curl_easy_setopt(f->easy, opt, val); \
} while (0)

int
wrk_fetch_open(const char *url, const struct wrk_fetch_opts *opts,
    struct wrk_fetch **ret_fetch, struct sw_err *e)
{
	struct wrk_fetch *f;
	CURLcode cr = CURLE_OK;
	int r;

	if (url == NULL || opts == NULL)
		return sw_errf(e, -EINVAL, "download: no URL");
	if (strnlen(url, FETCH_URL_MAX) >= FETCH_URL_MAX)
		return sw_errf(e, SW_ETOOBIG, "download: URL longer than %d bytes", FETCH_URL_MAX);
	if (!scheme_ok(url))
		return sw_errf(e, SW_EPATH, "download: only http:// and https:// URLs are allowed");
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return sw_errf(e, -ENOMEM, "download: out of memory");
	f->o = *opts;
	f->last_percent = -2;
	if (f->o.checksum_alg != NULL && f->o.checksum_alg[0] != '\0') {
		f->hash = sw_hash_new(f->o.checksum_alg);
		if (f->hash == NULL) {
			r = sw_errf(e, SW_EUNSUPPORTED, "download: digest '%s' unavailable",
			    f->o.checksum_alg);
			goto fail;
		}
	}
	/* The digest's helper thread; without one the digest is computed inline. */
	if (f->hash != NULL)
		f->hp = sw_hashpipe_new(FETCH_HASH_RING);
	f->cap = FETCH_BUF;
	f->buf = malloc(f->cap);
	f->easy = curl_easy_init();
	f->multi = curl_multi_init();
	if (f->buf == NULL || f->easy == NULL || f->multi == NULL) {
		r = sw_errf(e, -ENOMEM, "download: out of memory");
		goto fail;
	}
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
	SETOPT(CURLOPT_MAXREDIRS, (long)f->o.max_redirects);
	if (f->o.max_size != 0 && f->o.max_size <= (uint64_t)INT64_MAX)
		SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->o.max_size);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT, (long)(f->o.connect_timeout_s ? f->o.connect_timeout_s : 30));
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1024L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, (long)(f->o.low_speed_time_s ? f->o.low_speed_time_s : 120));
	SETOPT(CURLOPT_FAILONERROR, 1L);
	/* A proxy from the environment would make the policy check the proxy, not the source. */
	SETOPT(CURLOPT_PROXY, "");
	SETOPT(CURLOPT_OPENSOCKETFUNCTION, fetch_opensocket);
	SETOPT(CURLOPT_OPENSOCKETDATA, f);
	SETOPT(CURLOPT_PREREQFUNCTION, fetch_prereq);
	SETOPT(CURLOPT_PREREQDATA, f);
	SETOPT(CURLOPT_WRITEFUNCTION, fetch_write);
	SETOPT(CURLOPT_WRITEDATA, f);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	SETOPT(CURLOPT_XFERINFOFUNCTION, fetch_xferinfo);
	SETOPT(CURLOPT_XFERINFODATA, f);
	SETOPT(CURLOPT_BUFFERSIZE, (long)FETCH_CHUNK);
	SETOPT(CURLOPT_ERRORBUFFER, f->curlerr);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_USERAGENT, "snapworker/1");
	if (f->o.cainfo != NULL)
		SETOPT(CURLOPT_CAINFO, f->o.cainfo);
	if (cr != CURLE_OK) {
		r = sw_errf(e, SW_EINTERNAL, "download: libcurl option: %s", curl_easy_strerror(cr));
		goto fail;
	}
	*ret_fetch = f;
	return 0;
fail:
	wrk_fetch_free(f);
	return r;
}

int
wrk_fetch_finish(struct wrk_fetch *f, uint64_t *ret_bytes, char *ret_hex, size_t hexsz,
    struct sw_err *e)
{
	unsigned char scratch[FETCH_DRAIN];
	ssize_t n;

	/* Bytes after what the consumer needed (tar padding) still count for the digest. */
	while (!f->eof) {
		n = fetch_read(f, scratch, sizeof(scratch), e);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
	}
	if (ret_hex != NULL) {
		if (hexsz < sizeof(f->digest))
			return sw_errf(e, -EINVAL, "download: digest buffer too small");
		memcpy(ret_hex, f->digest, sizeof(f->digest));
	}
	if (ret_bytes != NULL)
		*ret_bytes = f->received;
	return 0;
}

int
wrk_fetch_error(const struct wrk_fetch *f, struct sw_err *ret_err)
{
	if (f == NULL || f->err == 0)
		return 0;
	if (ret_err != NULL)
		*ret_err = f->errmsg;
	return f->err;
}

uint64_t
wrk_fetch_received(const struct wrk_fetch *f)
{
	return f->received;
}

uint64_t
wrk_fetch_length(const struct wrk_fetch *f)
{
	return f->length;
}

void
wrk_fetch_free(struct wrk_fetch *f)
{
	if (f == NULL)
		return;
	if (f->multi != NULL && f->easy != NULL && f->added)
		curl_multi_remove_handle(f->multi, f->easy);
	if (f->easy != NULL)
		curl_easy_cleanup(f->easy);
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	/* The helper may still be reading into the digest: it goes first. */
	sw_hashpipe_free(f->hp);
	sw_hash_free(f->hash);
	free(f->buf);
	free(f);
}
