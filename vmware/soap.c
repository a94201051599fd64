/*
 * SOAP over libcurl, the transport (vmw_int.h): the library's one-time
 * initialisation, thumbprints and TLS verification (CA, certificate pin or
 * nothing), and the HTTP exchange with its deadline, cancel flag and the
 * session retry.  Requests are built in soap_req.c; responses are parsed,
 * under size and depth limits, and faults mapped in soap_resp.c.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void
global_init(void)
{
	/* The only global state: libcurl's and libxml2's own initialisation. */
	xmlInitParser();
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : SW_EINTERNAL;
}

int
vmw__global_init(void)
{
	(void)pthread_once(&global_once, global_init);
	return global_rc;
}

/* ------------------------------------------------------------------ */
/* Thumbprints and TLS                                                 */

int
vmw_thumbprint_normalize(const char *in, size_t want_bytes, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t nbytes = 0, o = 0;
	int hi = -1, v;
	const char *p;

	if (in == NULL || want_bytes == 0 || outsz < 3 * want_bytes)
		return -EINVAL;
	for (p = in; *p != '\0'; p++) {
		if (*p == ':' && hi < 0)
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			return -EINVAL;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (nbytes == want_bytes)
			return -EINVAL;
		if (nbytes > 0)
			out[o++] = ':';
		out[o++] = hex[hi];
		out[o++] = hex[v];
		nbytes++;
		hi = -1;
	}
	if (hi >= 0 || nbytes != want_bytes)
		return -EINVAL;
	out[o] = '\0';
	return 0;
}

void
vmw_thumbprint_der(const unsigned char *der, size_t n, const char *alg, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	const EVP_MD *type = strcmp(alg, "sha1") == 0 ? EVP_sha1() : EVP_sha256();
	size_t o = 0;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (EVP_Digest(der, n, md, &mdlen, type, NULL) != 1)
		return;
	for (i = 0; i < mdlen && o + 3 < outsz; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 15];
	}
	out[o] = '\0';
}

/*
 * Replaces OpenSSL's chain verification: the only certificate we accept is
 * the one whose digest the operator pinned, as vCenter's admin pages show it
 * (a digest of the whole certificate, not of its public key as curl's
 * CURLOPT_PINNEDPUBLICKEY would check).
 */
static int
pin_verify(X509_STORE_CTX *x, void *arg)
{
	struct vmw__pin *pin = arg;
	X509 *cert = X509_STORE_CTX_get0_cert(x);
	unsigned char *der = NULL;
	int n;

	if (cert == NULL || (n = i2d_X509(cert, &der)) <= 0) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	vmw_thumbprint_der(der, (size_t)n, pin->alg, pin->seen, sizeof(pin->seen));
	OPENSSL_free(der);
	if (strcmp(pin->seen, pin->want) == 0) {
		pin->mismatch = 0;
		return 1;
	}
	pin->mismatch = 1;
	X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
	return 0;
}

static CURLcode
ssl_ctx_cb(CURL *h, void *sslctx, void *ud)
{
	(void)h;
	SSL_CTX_set_verify((SSL_CTX *)sslctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback((SSL_CTX *)sslctx, pin_verify, ud);
	return CURLE_OK;
}

/* ------------------------------------------------------------------ */
/* Transfers                                                           */

int
vmw__check_stop(uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	if (cancel != NULL && *cancel)
		return sw_errf(e, -ECANCELED, "cancelled");
	if (deadline_ms != 0 && sw_mono_ms() >= deadline_ms)
		return sw_errf(e, -ETIMEDOUT, "deadline passed");
	return 0;
}

int
vmw__sleep(uint64_t ms, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	uint64_t end = sw_mono_ms() + ms, now;
	struct timespec ts;
	int r;

	for (;;) {
		if ((r = vmw__check_stop(deadline_ms, cancel, e)) < 0)
			return r;
		now = sw_mono_ms();
		if (now >= end)
			return 0;
		/* Short naps so a cancel is seen within 50 ms. */
		ts.tv_sec = 0;
		ts.tv_nsec = (long)((end - now > 50 ? 50 : end - now) * 1000000u);
		(void)nanosleep(&ts, NULL);
	}
}

uint64_t
vmw__poll_next(uint64_t delay)
{
	uint64_t next = delay + delay / 2;

	if (next < VMW_POLL_FIRST_MS)
		next = VMW_POLL_FIRST_MS;
	return next > VMW_POLL_MAX_MS ? VMW_POLL_MAX_MS : next;
}

static int
xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct vmw_conn *c = ud;

	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	if (c->cancel != NULL && *c->cancel)
		return 1;
	if (c->deadline_ms != 0 && sw_mono_ms() >= c->deadline_ms)
		return 1;
	return 0;
}

int
vmw__curl_prepare(struct vmw_conn *c, CURL *h, struct vmw__pin *pin, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e)
{
	uint64_t now = sw_mono_ms();
	long left = 0;
	CURLcode cc = CURLE_OK;

	if (deadline_ms != 0) {
		if (now >= deadline_ms)
			return sw_errf(e, -ETIMEDOUT, "deadline passed");
		left = deadline_ms - now > LONG_MAX ? LONG_MAX : (long)(deadline_ms - now);
	}
	c->deadline_ms = deadline_ms;
	c->cancel = cancel;
	c->cur_pin = pin;
	if (pin != NULL)
		pin->mismatch = 0;
#define SETOPT(o, v) do { if (cc == CURLE_OK) cc = curl_easy_setopt(h, o, v); } while (0)
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_SHARE, c->share);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	SETOPT(CURLOPT_TIMEOUT_MS, left);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, (long)c->stall_timeout_s);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	SETOPT(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	SETOPT(CURLOPT_XFERINFODATA, c);
	SETOPT(CURLOPT_USERAGENT, "snapworker-vmw/1");
	if (pin != NULL && pin->active) {
		/* The pin replaces chain and name checks: an IP or a self-signed cert is fine. */
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
		SETOPT(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
		SETOPT(CURLOPT_SSL_CTX_DATA, pin);
	} else if (c->tls == VMW_TLS_INSECURE) {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
		SETOPT(CURLOPT_SSL_CTX_FUNCTION, NULL);
	} else {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
		SETOPT(CURLOPT_SSL_CTX_FUNCTION, NULL);
		if (c->cacert != NULL)
			SETOPT(CURLOPT_CAINFO, c->cacert);
	}
#undef SETOPT
	if (cc != CURLE_OK)
		return sw_errf(e, SW_EINTERNAL, "curl setup: %s", curl_easy_strerror(cc));
	return 0;
}

int
vmw__curl_error(struct vmw_conn *c, CURLcode cc, const char *what, const char *errbuf,
    struct sw_err *e)
{
	const char *detail = errbuf != NULL && errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);

	if (c->cur_pin != NULL && c->cur_pin->active && c->cur_pin->mismatch)
		return sw_errf(e, SW_EAUTH, "%s: server certificate %s thumbprint %s does not match "
		    "the expected %s", what, strcmp(c->cur_pin->alg, "sha1") == 0 ? "SHA-1" :
		    "SHA-256", c->cur_pin->seen, c->cur_pin->want);
	switch (cc) {
	case CURLE_ABORTED_BY_CALLBACK:
		if (c->cancel != NULL && *c->cancel)
			return sw_errf(e, -ECANCELED, "%s: cancelled", what);
		return sw_errf(e, -ETIMEDOUT, "%s: deadline passed", what);
	case CURLE_OPERATION_TIMEDOUT:
		if (c->deadline_ms != 0 && sw_mono_ms() + 50 >= c->deadline_ms)
			return sw_errf(e, -ETIMEDOUT, "%s: deadline passed (%s)", what, detail);
		return sw_errf(e, SW_ENET, "%s: %s", what, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return sw_errf(e, SW_EAUTH, "%s: server certificate not trusted: %s", what, detail);
	case CURLE_OUT_OF_MEMORY:
		return sw_errf(e, -ENOMEM, "%s: out of memory", what);
	default:
		return sw_errf(e, SW_ENET, "%s: %s", what, detail);
	}
}

static size_t
soap_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct vmw_conn *c = ud;

	/* A body over the cap ends the transfer; vmw__call reports SW_ETOOBIG. */
	if (sw_buf_add(&c->resp, p, size * n) < 0)
		return 0;
	return size * n;
}

/* One HTTP POST of an envelope; the response body lands in c->resp. */
static int
soap_post(struct vmw_conn *c, const char *method, const struct sw_buf *env, long *ret_status,
    uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char what[96];
	CURLcode cc = CURLE_OK;
	long status = 0;
	int r;

	(void)snprintf(what, sizeof(what), "%s", method);
	sw_buf_reset(&c->resp);
	c->resp.max = c->max_response;
	r = vmw__curl_prepare(c, c->soap, c->conn_pin.active ? &c->conn_pin : NULL, deadline_ms,
	    cancel, e);
	if (r < 0)
		return r;
#define SETOPT(o, v) do { if (cc == CURLE_OK) cc = curl_easy_setopt(c->soap, o, v); } while (0)
	SETOPT(CURLOPT_URL, c->url);
	SETOPT(CURLOPT_POST, 1L);
	SETOPT(CURLOPT_POSTFIELDS, env->ptr);
	SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)env->len);
	SETOPT(CURLOPT_HTTPHEADER, c->soap_hdrs);
	SETOPT(CURLOPT_WRITEFUNCTION, soap_write_cb);
	SETOPT(CURLOPT_WRITEDATA, c);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
#undef SETOPT
	if (cc != CURLE_OK)
		return sw_errf(e, SW_EINTERNAL, "%s: curl setup: %s", what, curl_easy_strerror(cc));
	cc = curl_easy_perform(c->soap);
	(void)curl_easy_setopt(c->soap, CURLOPT_ERRORBUFFER, NULL);
	if (cc == CURLE_WRITE_ERROR && c->resp.len + CURL_MAX_WRITE_SIZE > c->resp.max)
		return sw_errf(e, SW_ETOOBIG, "%s: response larger than %zu bytes", what,
		    c->resp.max);
	if (cc != CURLE_OK)
		return vmw__curl_error(c, cc, what, errbuf, e);
	(void)curl_easy_getinfo(c->soap, CURLINFO_RESPONSE_CODE, &status);
	*ret_status = status;
	return 0;
}

static int
call_once(struct vmw_conn *c, const char *method, const struct vmw_moref *this, const char *args,
    struct vmw__resp *ret, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct sw_buf env = SW_BUF_INIT(VMW_MAX_REQUEST);
	struct vmw__resp resp = { NULL, NULL };
	long status = 0;
	int r;

	memset(&c->fault, 0, sizeof(c->fault));
	if ((r = vmw__check_stop(deadline_ms, cancel, e)) < 0)
		goto out;
	if ((r = vmw__envelope(&env, method, this, args)) < 0) {
		r = sw_errf(e, r == -EINVAL ? -EINVAL : r, "%s: cannot build the request (%s)",
		    method, r == -EINVAL ? "a value holds a control character" : sw_strerror(r));
		goto out;
	}
	log_debug("vmw: %s %s:%s", method, this->type, this->value);
	if ((r = soap_post(c, method, &env, &status, deadline_ms, cancel, e)) < 0)
		goto out;
	if (status != 200 && status != 500) {
		r = sw_errf(e, status == 401 || status == 403 ? SW_EAUTH : SW_ENET,
		    "%s: HTTP status %ld from %s", method, status, c->url);
		goto out;
	}
	r = vmw__parse(c->resp.ptr != NULL ? c->resp.ptr : "", c->resp.len, &resp, &c->fault, e);
	if (r < 0) {
		(void)sw_errctx(e, "%s", method);
		goto out;
	}
	if (status != 200) {
		r = sw_errf(e, SW_EFORMAT, "%s: HTTP status %ld without a SOAP fault", method, status);
		goto out;
	}
	c->last_ok_ms = sw_mono_ms();
	if (ret != NULL) {
		*ret = resp;
		resp.doc = NULL;
	}
out:
	vmw__resp_free(&resp);
	/* The Login envelope holds the password: do not leave it in freed memory. */
	if (env.ptr != NULL && strcmp(method, "Login") == 0)
		explicit_bzero(env.ptr, env.cap);
	sw_buf_free(&env);
	/* A big response buffer is not kept between calls. */
	if (c->resp.cap > ((size_t)1 << 20))
		sw_buf_free(&c->resp);
	return r;
}

int
vmw__call(struct vmw_conn *c, const char *method, const struct vmw_moref *this,
    const char *args, int flags, struct vmw__resp *ret, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e)
{
	int r;

	if (!(flags & VMW_CALL_NOLOGIN)) {
		if (!c->logged_in)
			return sw_errf(e, SW_EAUTH, "%s: not logged in", method);
		/*
		 * A session idle for long may have expired; a non-idempotent call
		 * must not find that out by failing, so refresh it first.
		 */
		if (!(flags & VMW_CALL_IDEMPOTENT) &&
		    sw_mono_ms() - c->last_ok_ms > (uint64_t)c->keepalive_s * 1000u &&
		    (r = vmw_keepalive(c, deadline_ms, cancel, e)) < 0)
			return r;
	}
	r = call_once(c, method, this, args, ret, deadline_ms, cancel, e);
	/*
	 * vCenter checks the session before it dispatches a call, so a call
	 * refused with NotAuthenticated did not run: any method, idempotent or
	 * not, may be sent again on a new session.  The dead session's cookie is
	 * dropped first: logging in while presenting it is refused (InvalidLogin).
	 */
	if (r == SW_EAUTH && strcmp(c->fault.type, "NotAuthenticated") == 0 &&
	    !(flags & VMW_CALL_NOLOGIN) && c->logged_in) {
		log_debug("vmw: %s: session lost, logging in again", method);
		c->logged_in = 0;
		(void)curl_easy_setopt(c->soap, CURLOPT_COOKIELIST, "ALL");
		if ((r = vmw__login(c, deadline_ms, cancel, e)) < 0)
			return r;
		r = call_once(c, method, this, args, ret, deadline_ms, cancel, e);
	}
	return r;
}

int
vmw__call_req(struct vmw_conn *c, const char *method, const struct vmw_moref *this,
    struct vmw__req *args, int flags, struct vmw__resp *ret, uint64_t deadline_ms,
    atomic_int *cancel, struct sw_err *e)
{
	if (args->rc != 0)
		return sw_errf(e, args->rc == -EINVAL ? -EINVAL : args->rc,
		    "%s: cannot build the request (%s)", method,
		    args->rc == -EINVAL ? "missing value or control character" :
		    sw_strerror(args->rc));
	return vmw__call(c, method, this, sw_buf_str(&args->b), flags, ret, deadline_ms, cancel,
	    e);
}
