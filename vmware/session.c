/*
 * Connection objects and the vCenter session: RetrieveServiceContent,
 * Login, Logout, keep-alive.  The session cookie lives in libcurl's cookie
 * engine, shared by the connection's two handles.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io.h"
#include "common/log.h"

static char *
dup_opt(const char *s, int *err)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*err = 1;
	return d;
}

static void
free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void
vmw_conn_free(struct vmw_conn *c)
{
	if (c == NULL)
		return;
	if (c->soap != NULL)
		curl_easy_cleanup(c->soap);
	if (c->xfer != NULL)
		curl_easy_cleanup(c->xfer);
	if (c->share != NULL)
		curl_share_cleanup(c->share);
	curl_slist_free_all(c->soap_hdrs);
	free(c->url);
	free(c->host);
	free(c->hostname);
	free(c->user);
	free_secret(c->password);
	free(c->cacert);
	sw_buf_free(&c->resp);
	free(c);
}

/* host[:port] of the URL, and a check of its scheme. */
static int
parse_url(struct vmw_conn *c, const char *url, struct sw_err *e)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	size_t len;
	int r = 0;

	if (u == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		r = sw_errf(e, -EINVAL, "vCenter URL '%s' is not a valid URL", url);
		goto out;
	}
	{
		char *user = NULL;

		/* Credentials travel in user and password files, never in a URL (not echoed). */
		if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
			curl_free(user);
			r = sw_errf(e, -EINVAL, "vCenter URL of host %s carries a user name or "
			    "password: give them as the user and password file instead", host);
			goto out;
		}
	}
	if (strcmp(scheme, "https") != 0 &&
	    !(strcmp(scheme, "http") == 0 && c->tls == VMW_TLS_INSECURE)) {
		/* Plain HTTP would send the password in clear: test rigs only, and said so. */
		r = sw_errf(e, -EINVAL, "vCenter URL '%s': scheme must be https (http only with "
		    "insecure TLS)", url);
		goto out;
	}
	(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
	len = strlen(host) + (port != NULL ? strlen(port) + 1 : 0) + 1;
	if ((c->host = malloc(len)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	(void)snprintf(c->host, len, "%s%s%s", host, port != NULL ? ":" : "",
	    port != NULL ? port : "");
	if ((c->hostname = strdup(host)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return r;
}

int
vmw_conn_new(const struct vmw_conn_opts *o, struct vmw_conn **ret_conn, struct sw_err *e)
{
	struct vmw_conn *c;
	int err = 0, r;

	if (o == NULL || o->url == NULL || o->user == NULL || o->password == NULL)
		return sw_errf(e, -EINVAL, "vCenter URL, user and password are required");
	if (o->tls != VMW_TLS_CA && o->tls != VMW_TLS_THUMBPRINT && o->tls != VMW_TLS_INSECURE)
		return sw_errf(e, -EINVAL, "unknown TLS mode %d", (int)o->tls);
	if ((r = vmw__global_init()) < 0)
		return sw_errf(e, r, "libcurl initialisation failed");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	c->tls = o->tls;
	c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 30000;
	c->keepalive_s = o->keepalive_s ? o->keepalive_s : 600;
	c->stall_timeout_s = o->stall_timeout_s ? o->stall_timeout_s : 300;
	c->max_response = o->max_response ? o->max_response : VMW_DEFAULT_MAX_RESPONSE;
	sw_buf_init(&c->resp, c->max_response);
	memcpy(c->soap_action, "SOAPAction: \"urn:vim25\"", sizeof("SOAPAction: \"urn:vim25\""));
	if (o->tls == VMW_TLS_THUMBPRINT) {
		if (o->thumbprint == NULL || vmw_thumbprint_normalize(o->thumbprint, 32,
		    c->conn_pin.want, sizeof(c->conn_pin.want)) < 0) {
			r = sw_errf(e, -EINVAL, "thumbprint must be a SHA-256 digest: 32 bytes in hex");
			goto fail;
		}
		c->conn_pin.active = 1;
		c->conn_pin.alg = "sha256";
	}
	if ((r = parse_url(c, o->url, e)) < 0)
		goto fail;
	c->url = dup_opt(o->url, &err);
	c->user = dup_opt(o->user, &err);
	c->password = dup_opt(o->password, &err);
	c->cacert = dup_opt(o->tls == VMW_TLS_CA ? o->cacert : NULL, &err);
	c->soap = curl_easy_init();
	c->xfer = curl_easy_init();
	c->share = curl_share_init();
	c->soap_hdrs = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
	if (err || c->soap == NULL || c->xfer == NULL || c->share == NULL || c->soap_hdrs == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto fail;
	}
	/*
	 * The cookie engine is switched on once per handle: the session cookie
	 * must also reach vCenter-proxied NFC URLs.
	 */
	if (curl_easy_setopt(c->soap, CURLOPT_COOKIEFILE, "") != CURLE_OK ||
	    curl_easy_setopt(c->xfer, CURLOPT_COOKIEFILE, "") != CURLE_OK) {
		r = sw_errf(e, SW_EINTERNAL, "curl cookie engine setup failed");
		goto fail;
	}
	/* Both handles run in this thread only: no lock functions needed. */
	if (curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		r = sw_errf(e, SW_EINTERNAL, "curl share setup failed");
		goto fail;
	}
	*ret_conn = c;
	return 0;
fail:
	vmw_conn_free(c);
	return r;
}

static int
set_soap_action(struct vmw_conn *c, struct sw_err *e)
{
	struct curl_slist *h;
	char action[64];

	if (c->about.api_version[0] != '\0') {
		if (snprintf(action, sizeof(action), "SOAPAction: \"urn:vim25/%s\"",
		    c->about.api_version) >= (int)sizeof(action))
			return sw_errf(e, SW_EFORMAT, "API version too long");
	} else {
		memcpy(action, "SOAPAction: \"urn:vim25\"", sizeof("SOAPAction: \"urn:vim25\""));
	}
	h = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
	if (h == NULL || curl_slist_append(h, action) == NULL) {
		curl_slist_free_all(h);
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	curl_slist_free_all(c->soap_hdrs);
	c->soap_hdrs = h;
	memcpy(c->soap_action, action, sizeof(action));
	return 0;
}

static int
sc_moref(xmlNode *rv, const char *name, struct vmw_moref *m, int required, struct sw_err *e)
{
	xmlNode *n = vmw__x_child(rv, name);

	if (n == NULL && !required)
		return 0;
	if (vmw__x_moref(n, m) < 0)
		return sw_errf(e, SW_EFORMAT, "RetrieveServiceContent: no valid %s", name);
	return 0;
}

static void
about_field(xmlNode *about, const char *name, char *buf, size_t bufsz)
{
	if (vmw__x_text(vmw__x_child(about, name), buf, bufsz) < 0)
		buf[0] = '\0';
}

static int
service_content(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const struct vmw_moref si = { "ServiceInstance", "ServiceInstance" };
	struct vmw__resp resp = { NULL, NULL };
	struct vmw_sc sc;
	struct vmw_about about;
	xmlNode *rv, *ab;
	int r;

	memset(&sc, 0, sizeof(sc));
	memset(&about, 0, sizeof(about));
	r = vmw__call(c, "RetrieveServiceContent", &si, NULL,
	    VMW_CALL_NOLOGIN | VMW_CALL_IDEMPOTENT, &resp, deadline_ms, cancel, e);
	if (r < 0)
		return r;
	rv = vmw__x_child(resp.body, "returnval");
	if ((r = sc_moref(rv, "rootFolder", &sc.root_folder, 1, e)) < 0 ||
	    (r = sc_moref(rv, "propertyCollector", &sc.property_collector, 1, e)) < 0 ||
	    (r = sc_moref(rv, "sessionManager", &sc.session_manager, 1, e)) < 0 ||
	    (r = sc_moref(rv, "viewManager", &sc.view_manager, 0, e)) < 0 ||
	    (r = sc_moref(rv, "searchIndex", &sc.search_index, 0, e)) < 0 ||
	    (r = sc_moref(rv, "ovfManager", &sc.ovf_manager, 0, e)) < 0 ||
	    (r = sc_moref(rv, "virtualDiskManager", &sc.virtual_disk_manager, 0, e)) < 0)
		goto out;
	ab = vmw__x_child(rv, "about");
	about_field(ab, "name", about.name, sizeof(about.name));
	about_field(ab, "fullName", about.full_name, sizeof(about.full_name));
	about_field(ab, "version", about.version, sizeof(about.version));
	about_field(ab, "build", about.build, sizeof(about.build));
	about_field(ab, "apiType", about.api_type, sizeof(about.api_type));
	about_field(ab, "apiVersion", about.api_version, sizeof(about.api_version));
	about_field(ab, "instanceUuid", about.instance_uuid, sizeof(about.instance_uuid));
	/* The API version goes into a header: keep it to digits and dots. */
	if (strspn(about.api_version, "0123456789.") != strlen(about.api_version))
		about.api_version[0] = '\0';
	c->sc = sc;
	c->about = about;
	c->have_sc = 1;
	r = set_soap_action(c, e);
out:
	vmw__resp_free(&resp);
	return r;
}

int
vmw__login(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	struct vmw__req args;
	int r;

	if (!c->have_sc && (r = service_content(c, deadline_ms, cancel, e)) < 0)
		return r;
	vmw__req_init(&args);
	vmw__req_text(&args, "userName", c->user);
	vmw__req_text(&args, "password", c->password);
	r = vmw__call_req(c, "Login", &c->sc.session_manager, &args, VMW_CALL_NOLOGIN, NULL,
	    deadline_ms, cancel, e);
	if (args.b.ptr != NULL)
		explicit_bzero(args.b.ptr, args.b.cap);
	vmw__req_free(&args);
	if (r < 0) {
		if (r == SW_EAUTH)
			(void)sw_errctx(e, "login to %s as %s refused", c->url, c->user);
		return r;
	}
	c->logged_in = 1;
	return 0;
}

int
vmw_login(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	if (c == NULL)
		return sw_errf(e, -EINVAL, "no connection");
	return vmw__login(c, deadline_ms, cancel, e);
}

int
vmw_logout(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	int r;

	if (c == NULL || !c->logged_in)
		return 0;
	r = vmw__call(c, "Logout", &c->sc.session_manager, NULL, VMW_CALL_IDEMPOTENT, NULL,
	    deadline_ms, cancel, e);
	c->logged_in = 0;
	/* Logging out of a session that already expired is not an error. */
	if (r == SW_EAUTH && strcmp(c->fault.type, "NotAuthenticated") == 0)
		r = 0;
	return r;
}

int
vmw_keepalive(struct vmw_conn *c, uint64_t deadline_ms, atomic_int *cancel, struct sw_err *e)
{
	static const struct vmw_moref si = { "ServiceInstance", "ServiceInstance" };

	if (c == NULL || !c->logged_in)
		return sw_errf(e, SW_EAUTH, "not logged in");
	if (sw_mono_ms() - c->last_ok_ms < (uint64_t)c->keepalive_s * 1000u)
		return 0;
	return vmw__call(c, "CurrentTime", &si, NULL, VMW_CALL_IDEMPOTENT, NULL, deadline_ms,
	    cancel, e);
}

const struct vmw_about *
vmw_conn_about(const struct vmw_conn *c)
{
	return c != NULL && c->have_sc ? &c->about : NULL;
}

const struct vmw_fault *
vmw_last_fault(const struct vmw_conn *c)
{
	return c != NULL ? &c->fault : NULL;
}
