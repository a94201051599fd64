/*
 * Unit tests for vmware/ through its public header: a libmicrohttpd HTTPS
 * server on 127.0.0.1 replays recorded SOAP bodies (tests/fixtures/vmware/)
 * in a scripted order and serves NFC disk bytes, so the whole stack runs:
 * TLS pinning, envelopes, parsing, faults, continuation, tasks, leases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/io.h"
#include "vmware/vmware.h"
#include "vmware/vmw_int.h"

#define FIX SW_SRCDIR "/tests/fixtures/vmware/"
#define MAXREQ 64

struct step {
	const char *method;      /* expected SOAP method */
	const char *fixture;     /* file under FIX, or "@..." special body */
	unsigned status;
};

struct srv {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	const struct step *script;
	size_t nsteps, pos;
	int mismatch;
	char mismatch_msg[256];
	size_t nreqs;
	char *reqs[MAXREQ];
	char methods[MAXREQ][64];
	int had_cookie[MAXREQ];
	size_t nprogress;
	/* NFC download */
	uint64_t nfc_size;
	unsigned nfc_delay_ms;
	uint64_t nfc_fail_after;
	size_t ngets;
	int get_cookie;
	/* NFC upload */
	uint64_t put_bytes;
	char put_method[8];
	char put_ctype[128];
	char put_expect[64];     /* the upload's Expect header, "" if none */
	char put_te[64];         /* its Transfer-Encoding */
};

static struct srv S;
static char *key_pem, *cert_pem;

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	char *p;
	long n;

	if (f == NULL)
		return NULL;
	(void)fseek(f, 0, SEEK_END);
	n = ftell(f);
	(void)fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	if (p != NULL && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (p != NULL) {
		p[n] = '\0';
		if (ret_len != NULL)
			*ret_len = (size_t)n;
	}
	return p;
}

/* Byte i of the served disk: a pattern that is not periodic at buffer sizes. */
static unsigned char
disk_byte(uint64_t i)
{
	return (unsigned char)((i * 31u) ^ (i >> 11) ^ (i >> 19));
}

static void
pattern_sha256(uint64_t n, char *out)
{
	struct sw_hash *h = sw_hash_new("sha256");
	unsigned char buf[4096];
	uint64_t i = 0;
	size_t k;

	while (i < n) {
		for (k = 0; k < sizeof(buf) && i < n; k++, i++)
			buf[k] = disk_byte(i);
		sw_hash_update(h, buf, k);
	}
	sw_hash_final(h, out, 129);
	sw_hash_free(h);
}

struct conn_state {
	struct sw_buf body;
	int is_put;
};

static ssize_t
nfc_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t i;

	(void)cls;
	if (S.nfc_fail_after != 0 && pos >= S.nfc_fail_after)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= S.nfc_size)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > 65536)
		max = 65536;
	if (S.nfc_delay_ms)
		usleep(S.nfc_delay_ms * 1000u);
	for (i = 0; i < max && pos + i < S.nfc_size; i++)
		buf[i] = (char)disk_byte(pos + i);
	return (ssize_t)i;
}

static void
soap_method(const char *body, char *out, size_t outsz)
{
	const char *p = strstr(body, "<soapenv:Body><");
	size_t n = 0;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen("<soapenv:Body><");
	while (p[n] != '\0' && p[n] != ' ' && p[n] != '>' && n + 1 < outsz)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

static char *
special_body(const char *name, size_t *len)
{
	struct sw_buf b = SW_BUF_INIT(1 << 24);
	int i;

	if (strcmp(name, "@deep") == 0) {
		sw_buf_addstr(&b, "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\""
		    "http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><R>");
		for (i = 0; i < 200; i++)
			sw_buf_addstr(&b, "<a>");
		for (i = 0; i < 200; i++)
			sw_buf_addstr(&b, "</a>");
		sw_buf_addstr(&b, "</R></soapenv:Body></soapenv:Envelope>");
	} else if (strncmp(name, "@half:", 6) == 0) {
		size_t n = 0;
		char *p = slurp(name + 6, &n);

		sw_buf_add(&b, p, n / 2);
		free(p);
	}
	return sw_buf_steal(&b, len);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *con, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct conn_state *cs = *con_cls;
	struct MHD_Response *resp;
	const struct step *st = NULL;
	char m[64], path[512];
	char *body = NULL;
	size_t len = 0;
	unsigned status = 200;
	enum MHD_Result ret;

	(void)cls; (void)version;
	if (cs == NULL) {
		cs = calloc(1, sizeof(*cs));
		sw_buf_init(&cs->body, 1 << 20);
		*con_cls = cs;
		return MHD_YES;
	}
	if (strncmp(url, "/nfc/", 5) == 0 && strcmp(method, "GET") == 0) {
		pthread_mutex_lock(&S.mu);
		S.ngets++;
		S.get_cookie = MHD_lookup_connection_value(con, MHD_COOKIE_KIND,
		    "vmware_soap_session") != NULL;
		pthread_mutex_unlock(&S.mu);
		resp = MHD_create_response_from_callback(S.nfc_size, 65536, nfc_reader, NULL, NULL);
		ret = MHD_queue_response(con, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (strncmp(url, "/nfc/", 5) == 0) {
		if (*upload_size > 0) {
			pthread_mutex_lock(&S.mu);
			S.put_bytes += *upload_size;
			pthread_mutex_unlock(&S.mu);
			*upload_size = 0;
			return MHD_YES;
		}
		pthread_mutex_lock(&S.mu);
		snprintf(S.put_method, sizeof(S.put_method), "%s", method);
		snprintf(S.put_ctype, sizeof(S.put_ctype), "%s",
		    MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type") ?: "");
		snprintf(S.put_expect, sizeof(S.put_expect), "%s",
		    MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Expect") ?: "");
		snprintf(S.put_te, sizeof(S.put_te), "%s",
		    MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Transfer-Encoding") ?: "");
		pthread_mutex_unlock(&S.mu);
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		ret = MHD_queue_response(con, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (*upload_size > 0) {
		sw_buf_add(&cs->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	soap_method(sw_buf_str(&cs->body), m, sizeof(m));
	pthread_mutex_lock(&S.mu);
	if (S.nreqs < MAXREQ) {
		S.reqs[S.nreqs] = strdup(sw_buf_str(&cs->body));
		snprintf(S.methods[S.nreqs], sizeof(S.methods[0]), "%s", m);
		S.had_cookie[S.nreqs] = MHD_lookup_connection_value(con, MHD_COOKIE_KIND,
		    "vmware_soap_session") != NULL;
		S.nreqs++;
	}
	if (strcmp(m, "HttpNfcLeaseProgress") == 0) {
		/* Sent on a timer: answered outside the script. */
		S.nprogress++;
		body = slurp(FIX "lease_progress.xml", &len);
	} else if (S.pos < S.nsteps) {
		st = &S.script[S.pos++];
		if (strcmp(st->method, m) != 0 && !S.mismatch) {
			S.mismatch = 1;
			snprintf(S.mismatch_msg, sizeof(S.mismatch_msg), "step %zu: expected %s, got %s",
			    S.pos - 1, st->method, m);
		}
	} else if (!S.mismatch) {
		S.mismatch = 1;
		snprintf(S.mismatch_msg, sizeof(S.mismatch_msg), "unexpected extra call %s", m);
	}
	pthread_mutex_unlock(&S.mu);
	if (st != NULL) {
		status = st->status ? st->status : 200;
		if (st->fixture[0] == '@') {
			body = special_body(st->fixture, &len);
		} else {
			snprintf(path, sizeof(path), FIX "%s", st->fixture);
			body = slurp(path, &len);
		}
	}
	if (body == NULL) {
		body = strdup("no script");
		len = strlen(body);
		status = 599;
	}
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "text/xml; charset=utf-8");
	if (strcmp(m, "Login") == 0 && status == 200)
		MHD_add_response_header(resp, "Set-Cookie",
		    "vmware_soap_session=\"abc123\"; Path=/; HttpOnly; Secure");
	ret = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *con, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;

	(void)cls; (void)con; (void)toe;
	if (cs != NULL) {
		sw_buf_free(&cs->body);
		free(cs);
	}
	*con_cls = NULL;
}

static void
srv_reset(const struct step *script, size_t n)
{
	size_t i;

	pthread_mutex_lock(&S.mu);
	for (i = 0; i < S.nreqs; i++)
		free(S.reqs[i]);
	S.nreqs = 0;
	S.script = script;
	S.nsteps = n;
	S.pos = 0;
	S.mismatch = 0;
	S.mismatch_msg[0] = '\0';
	S.nprogress = 0;
	S.nfc_size = 0;
	S.nfc_delay_ms = 0;
	S.nfc_fail_after = 0;
	S.ngets = 0;
	S.put_bytes = 0;
	S.put_method[0] = '\0';
	S.put_ctype[0] = '\0';
	S.put_expect[0] = '\0';
	S.put_te[0] = '\0';
	pthread_mutex_unlock(&S.mu);
}

#define SCRIPT(s) srv_reset((s), sizeof(s) / sizeof((s)[0]))

static void
assert_script_done(void)
{
	if (S.mismatch)
		fail_msg("%s", S.mismatch_msg);
	assert_int_equal(S.pos, S.nsteps);
}

/* The index of the first recorded request for method, or -1. */
static int
req_of(const char *method)
{
	size_t i;

	for (i = 0; i < S.nreqs; i++)
		if (strcmp(S.methods[i], method) == 0)
			return (int)i;
	return -1;
}

static char thumb256[100], thumb1[100];

static int
group_setup(void **state)
{
	FILE *f;
	X509 *x;
	unsigned char *der = NULL;
	int n;

	(void)state;
	key_pem = slurp(FIX "server.key", NULL);
	cert_pem = slurp(FIX "server.crt", NULL);
	if (key_pem == NULL || cert_pem == NULL)
		return -1;
	f = fopen(FIX "server.crt", "re");
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	n = i2d_X509(x, &der);
	vmw_thumbprint_der(der, (size_t)n, "sha256", thumb256, sizeof(thumb256));
	vmw_thumbprint_der(der, (size_t)n, "sha1", thumb1, sizeof(thumb1));
	OPENSSL_free(der);
	X509_free(x);
	pthread_mutex_init(&S.mu, NULL);
	S.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL,
	    handler, NULL, MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
	if (S.d == NULL)
		return -1;
	S.port = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT)->port;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	MHD_stop_daemon(S.d);
	srv_reset(NULL, 0);
	free(key_pem);
	free(cert_pem);
	return 0;
}

static char url_buf[128];

static const char *
srv_url(void)
{
	snprintf(url_buf, sizeof(url_buf), "https://127.0.0.1:%d/sdk", S.port);
	return url_buf;
}

static struct vmw_conn *
conn_new(const char *password, size_t max_response)
{
	struct vmw_conn_opts o;
	struct vmw_conn *c = NULL;
	struct sw_err e;

	memset(&o, 0, sizeof(o));
	o.url = srv_url();
	o.user = "admin@vsphere.local";
	o.password = password;
	o.tls = VMW_TLS_THUMBPRINT;
	o.thumbprint = thumb256;
	o.max_response = max_response;
	assert_int_equal(vmw_conn_new(&o, &c, &e), 0);
	return c;
}

static uint64_t
dl(void)
{
	return sw_mono_ms() + 20000;
}

static const struct step login_steps[] = {
	{ "RetrieveServiceContent", "service_content.xml", 200 },
	{ "Login", "login.xml", 200 },
};

/* A logged-in connection, with the login steps consumed; then the script s. */
static struct vmw_conn *
logged_in(const struct step *s, size_t n)
{
	static struct step all[32];
	struct vmw_conn *c = conn_new("secret", 0);
	struct sw_err e;

	assert_true(n + 2 <= 32);
	memcpy(all, login_steps, sizeof(login_steps));
	memcpy(all + 2, s, n * sizeof(*s));
	srv_reset(all, n + 2);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), 0);
	return c;
}

#define LOGGED_IN(s) logged_in((s), sizeof(s) / sizeof((s)[0]))

/* ------------------------------------------------------------------ */

static void
test_thumbprint_normalize(void **state)
{
	char out[100];

	(void)state;
	assert_int_equal(vmw_thumbprint_normalize("ab:cd:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:"
	    "ab:cd:ef:01", 20, out, sizeof(out)), 0);
	assert_string_equal(out, "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01");
	assert_int_equal(vmw_thumbprint_normalize("abcdef0123456789abcdef0123456789abcdef01", 20,
	    out, sizeof(out)), 0);
	assert_string_equal(out, "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01");
	/* Wrong length, odd digit count, non-hex, colon inside a byte, small buffer. */
	assert_int_equal(vmw_thumbprint_normalize("abcdef", 20, out, sizeof(out)), -EINVAL);
	assert_int_equal(vmw_thumbprint_normalize("abcdef0123456789abcdef0123456789abcdef012", 20,
	    out, sizeof(out)), -EINVAL);
	assert_int_equal(vmw_thumbprint_normalize("zzcdef0123456789abcdef0123456789abcdef01", 20,
	    out, sizeof(out)), -EINVAL);
	assert_int_equal(vmw_thumbprint_normalize("a:bcdef0123456789abcdef0123456789abcdef01", 20,
	    out, sizeof(out)), -EINVAL);
	assert_int_equal(vmw_thumbprint_normalize(thumb256, 32, out, 10), -EINVAL);
	assert_int_equal(vmw_thumbprint_normalize(thumb256, 32, out, sizeof(out)), 0);
	assert_string_equal(out, thumb256);
	assert_int_equal(strlen(thumb256), 95);
	assert_int_equal(strlen(thumb1), 59);
}

static void
test_conn_opts(void **state)
{
	struct vmw_conn_opts o;
	struct vmw_conn *c = NULL;
	struct sw_err e;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.url = "http://vc.example/sdk";
	o.user = "u";
	o.password = "p";
	/* Plain HTTP would send the password in clear: only with explicit insecure. */
	assert_int_equal(vmw_conn_new(&o, &c, &e), -EINVAL);
	assert_null(c);
	o.tls = VMW_TLS_THUMBPRINT;
	o.url = "https://vc.example/sdk";
	o.thumbprint = "AB:CD";
	assert_int_equal(vmw_conn_new(&o, &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "SHA-256"));
	o.tls = VMW_TLS_INSECURE;
	o.url = "http://vc.example/sdk";
	assert_int_equal(vmw_conn_new(&o, &c, &e), 0);
	assert_non_null(c);
	assert_null(vmw_conn_about(c));
	vmw_conn_free(c);
	vmw_conn_free(NULL);
}

static void
test_login_pinned(void **state)
{
	static const char pw[] = "p<&>\"'x";
	struct vmw_conn *c = conn_new(pw, 0);
	const struct vmw_about *ab;
	struct sw_err e;
	int i;

	(void)state;
	SCRIPT(login_steps);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), 0);
	assert_script_done();
	ab = vmw_conn_about(c);
	assert_non_null(ab);
	assert_string_equal(ab->api_type, "VirtualCenter");
	assert_string_equal(ab->api_version, "6.5");
	assert_string_equal(ab->version, "6.5.0");
	i = req_of("Login");
	assert_true(i >= 0);
	/* The password travels escaped, inside <password>. */
	assert_non_null(strstr(S.reqs[i], "<password>p&lt;&amp;&gt;&quot;&apos;x</password>"));
	assert_non_null(strstr(S.reqs[i], "<userName>admin@vsphere.local</userName>"));
	assert_string_equal(vmw_last_fault(c)->type, "");
	/* Logout sends the session cookie Login set. */
	{
		static const struct step s[] = { { "Logout", "logout.xml", 200 } };

		SCRIPT(s);
		assert_int_equal(vmw_logout(c, dl(), NULL, &e), 0);
		assert_script_done();
		assert_true(S.had_cookie[0]);
	}
	vmw_conn_free(c);
}

static void
test_login_invalid(void **state)
{
	static const struct step s[] = {
		{ "RetrieveServiceContent", "service_content.xml", 200 },
		{ "Login", "fault_invalid_login.xml", 500 },
	};
	struct vmw_conn *c = conn_new("hunter2-secret", 0);
	struct sw_err e;

	(void)state;
	SCRIPT(s);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), SW_EAUTH);
	assert_script_done();
	assert_string_equal(vmw_last_fault(c)->type, "InvalidLogin");
	assert_string_equal(vmw_last_fault(c)->message, "Login failure");
	assert_non_null(strstr(e.msg, "InvalidLogin"));
	assert_null(strstr(e.msg, "hunter2"));
	vmw_conn_free(c);
}

static void
test_thumbprint_mismatch(void **state)
{
	struct vmw_conn_opts o;
	struct vmw_conn *c = NULL;
	struct sw_err e;
	const char *wrong = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
	    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";

	(void)state;
	srv_reset(login_steps, 2);
	memset(&o, 0, sizeof(o));
	o.url = srv_url();
	o.user = "u";
	o.password = "p";
	o.tls = VMW_TLS_THUMBPRINT;
	o.thumbprint = "0011223344556677 8899aabbccddeeff0011223344556677 8899aabbccddeeff";
	assert_int_equal(vmw_conn_new(&o, &c, &e), -EINVAL);   /* blanks are not hex */
	o.thumbprint = wrong;
	assert_int_equal(vmw_conn_new(&o, &c, &e), 0);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), SW_EAUTH);
	/* The message shows both: what we expected and what the server showed. */
	assert_non_null(strstr(e.msg, wrong));
	assert_non_null(strstr(e.msg, thumb256));
	assert_int_equal(S.nreqs, 0);
	vmw_conn_free(c);
}

static void
test_tls_ca(void **state)
{
	struct vmw_conn_opts o;
	struct vmw_conn *c = NULL;
	struct sw_err e;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.url = srv_url();
	o.user = "u";
	o.password = "p";
	o.tls = VMW_TLS_CA;
	o.cacert = FIX "server.crt";
	assert_int_equal(vmw_conn_new(&o, &c, &e), 0);
	SCRIPT(login_steps);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), 0);
	assert_script_done();
	vmw_conn_free(c);

	/* A CA that did not sign the server's certificate: refused before any request. */
	o.cacert = "/etc/ssl/certs/ca-certificates.crt";
	if (access(o.cacert, R_OK) != 0)
		return;
	assert_int_equal(vmw_conn_new(&o, &c, &e), 0);
	SCRIPT(login_steps);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), SW_EAUTH);
	assert_int_equal(S.nreqs, 0);
	vmw_conn_free(c);
}

static void
test_relogin(void **state)
{
	static const struct step s[] = {
		{ "FindByUuid", "fault_not_authenticated.xml", 500 },
		{ "Login", "login.xml", 200 },
		{ "FindByUuid", "find_by_uuid.xml", 200 },
		/* NotAuthenticated: vCenter refused the call before running it, so it is sent again. */
		{ "CreateSnapshot_Task", "fault_not_authenticated.xml", 500 },
		{ "Login", "login.xml", 200 },
		{ "CreateSnapshot_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success_snapshot7.xml", 200 },
		/* Refused again right after a fresh login: the credentials, not the session. */
		{ "CreateSnapshot_Task", "fault_not_authenticated.xml", 500 },
		{ "Login", "login.xml", 200 },
		{ "CreateSnapshot_Task", "fault_not_authenticated.xml", 500 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm, snap;
	struct sw_err e;
	int i;

	(void)state;
	/* A read is repeated once after a transparent re-login. */
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID,
	    "265104de-1472-547c-b873-6dc7883fb6cb", &vm, dl(), NULL, &e), 0);
	assert_string_equal(vm.type, "VirtualMachine");
	assert_string_equal(vm.value, "vm-57");
	assert_non_null(strstr(S.reqs[2], "<instanceUuid>false</instanceUuid>"));
	/* So is any other call: a session lost mid-job costs nothing. */
	assert_int_equal(vmw_snapshot_create(c, &vm, "s", NULL, 0, &snap, dl(), NULL, &e), 0);
	assert_string_equal(snap.value, "snapshot-9");
	i = req_of("CreateSnapshot_Task");
	assert_true(i >= 0);
	/* Once only: a refusal right after a new login is final. */
	memset(&snap, 0x5a, sizeof(snap));
	assert_int_equal(vmw_snapshot_create(c, &vm, "s", NULL, 0, &snap, dl(), NULL, &e),
	    SW_EAUTH);
	assert_int_equal((unsigned char)snap.type[0], 0x5a);   /* ret_ untouched */
	assert_string_equal(vmw_last_fault(c)->type, "NotAuthenticated");
	assert_script_done();
	vmw_conn_free(c);
}

static void
test_find_not_found(void **state)
{
	static const struct step s[] = {
		{ "FindByUuid", "find_empty.xml", 200 },
		{ "FindByUuid", "find_empty.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm;
	struct sw_err e;

	(void)state;
	/* A UUID-looking key tries the instance UUID, then the BIOS UUID. */
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_ANY, "00000000-1472-547c-b873-6dc7883fb6cb",
	    &vm, dl(), NULL, &e), SW_ENOTFOUND);
	/* A control character cannot be put into a request at all. */
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_PATH, "DC0/vm/a\001b", &vm, dl(), NULL, &e),
	    -EINVAL);
	assert_script_done();
	assert_non_null(strstr(S.reqs[2], "<instanceUuid>true</instanceUuid>"));
	vmw_conn_free(c);
}

static void
test_fault_mapping(void **state)
{
	static const struct step s[] = {
		{ "RemoveSnapshot_Task", "fault_mo_not_found.xml", 500 },
		{ "RemoveSnapshot_Task", "fault_task_in_progress.xml", 500 },
		{ "RemoveSnapshot_Task", "fault_file.xml", 500 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref snap = { "VirtualMachineSnapshot", "snapshot-1" };
	struct sw_err e;

	(void)state;
	assert_int_equal(vmw_snapshot_remove(c, &snap, dl(), NULL, &e), SW_ENOTFOUND);
	assert_string_equal(vmw_last_fault(c)->type, "ManagedObjectNotFound");
	/* An XSI prefix of the server's choosing ("vx:type") still names the fault. */
	assert_int_equal(vmw_snapshot_remove(c, &snap, dl(), NULL, &e), SW_EBUSY);
	assert_string_equal(vmw_last_fault(c)->type, "TaskInProgress");
	assert_string_equal(vmw_last_fault(c)->message, "Another task is already in progress.");
	/* No xsi:type: the element name minus "Fault"; entities decoded in the message. */
	assert_int_equal(vmw_snapshot_remove(c, &snap, dl(), NULL, &e), SW_ENOTFOUND);
	assert_string_equal(vmw_last_fault(c)->type, "FileNotFound");
	assert_non_null(strstr(e.msg, "not found & cannot be used"));
	assert_script_done();
	assert_non_null(strstr(S.reqs[2], "<removeChildren>false</removeChildren>"
	    "<consolidate>true</consolidate>"));
	vmw_conn_free(c);
}

static void
test_task_wait(void **state)
{
	static const struct step s[] = {
		{ "CreateSnapshot_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success_snapshot7.xml", 200 },
		{ "CreateSnapshot_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_error.xml", 200 },
		{ "RemoveSnapshot_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_error_busy.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm = { "VirtualMachine", "vm-42" }, snap;
	struct sw_err e;
	int i;

	(void)state;
	assert_int_equal(vmw_snapshot_create(c, &vm, "bk <1>", "d&d", 1, &snap, dl(), NULL, &e),
	    0);
	assert_string_equal(snap.type, "VirtualMachineSnapshot");
	assert_string_equal(snap.value, "snapshot-9");
	i = req_of("CreateSnapshot_Task");
	assert_non_null(strstr(S.reqs[i], "<name>bk &lt;1&gt;</name><description>d&amp;d"
	    "</description><memory>false</memory><quiesce>true</quiesce>"));
	/* A failed task: vCenter's localized message and fault type. */
	assert_int_equal(vmw_snapshot_create(c, &vm, "s", NULL, 0, &snap, dl(), NULL, &e),
	    SW_EREMOTE);
	assert_string_equal(vmw_last_fault(c)->type, "FileLocked");
	assert_non_null(strstr(e.msg, "since it is locked"));
	assert_int_equal(vmw_snapshot_remove(c, &snap, dl(), NULL, &e), SW_EBUSY);
	assert_script_done();
	vmw_conn_free(c);
}

/*
 * A task seen running three times, then done: the polls come 25, 37 and 56 ms
 * apart (a doubling from 100 ms waited 700 ms), and the interval grows by
 * half each time up to 1 s.
 */
static void
test_task_wait_poll(void **state)
{
	static const struct step s[] = {
		{ "RetrievePropertiesEx", "task_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success_snapshot7.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref task = { "Task", "task-7" }, res;
	struct sw_err e;
	uint64_t t0, d = 0;
	int i;

	(void)state;
	t0 = sw_mono_ms();
	assert_int_equal(vmw_task_wait(c, &task, &res, dl(), NULL, &e), 0);
	assert_true(sw_mono_ms() - t0 < 400);
	assert_string_equal(res.value, "snapshot-9");
	assert_script_done();
	vmw_conn_free(c);
	assert_int_equal(vmw__poll_next(0), 25);
	assert_int_equal(vmw__poll_next(25), 37);
	assert_int_equal(vmw__poll_next(37), 55);
	for (i = 0; i < 20; i++)
		d = vmw__poll_next(d);
	assert_int_equal(d, 1000);
}

static atomic_int cancel_flag;

static void *
canceller(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	cancel_flag = 1;
	return NULL;
}

static void
test_task_deadline_cancel(void **state)
{
	static struct step s[40];
	struct vmw_conn *c;
	struct vmw_moref task = { "Task", "task-7" };
	struct sw_err e;
	uint64_t t0;
	pthread_t th;
	size_t i;

	(void)state;
	for (i = 0; i < 40; i++) {
		s[i].method = "RetrievePropertiesEx";
		s[i].fixture = "task_running.xml";
		s[i].status = 200;
	}
	c = logged_in(s, 30);
	t0 = sw_mono_ms();
	assert_int_equal(vmw_task_wait(c, &task, NULL, sw_mono_ms() + 400, NULL, &e), -ETIMEDOUT);
	assert_true(sw_mono_ms() - t0 < 2000);
	cancel_flag = 0;
	pthread_create(&th, NULL, canceller, NULL);
	t0 = sw_mono_ms();
	assert_int_equal(vmw_task_wait(c, &task, NULL, dl(), &cancel_flag, &e), -ECANCELED);
	assert_true(sw_mono_ms() - t0 < 2000);
	pthread_join(th, NULL);
	vmw_conn_free(c);
}

static void
test_continuation(void **state)
{
	static const struct step s[] = {
		{ "CreateContainerView", "container_view.xml", 200 },
		{ "RetrievePropertiesEx", "rpe_page1.xml", 200 },
		{ "ContinueRetrievePropertiesEx", "rpe_page2.xml", 200 },
		{ "DestroyView", "destroy_view.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_tagged_vm *vms = NULL;
	size_t n = 0;
	struct sw_err e;
	int i;

	(void)state;
	assert_int_equal(vmw_worker_vm_list(c, &vms, &n, dl(), NULL, &e), 0);
	assert_script_done();
	assert_int_equal(n, 2);
	assert_string_equal(vms[0].vm.value, "vm-1");
	assert_string_equal(vms[0].tag, "cmd-a");
	assert_int_equal(vms[0].created, 1700000000);
	assert_string_equal(vms[1].vm.value, "vm-3");
	assert_string_equal(vms[1].name, "cmd-b");
	assert_int_equal(vms[1].created, -1);
	i = req_of("ContinueRetrievePropertiesEx");
	assert_non_null(strstr(S.reqs[i], "<token>tok-1&amp;2</token>"));
	i = req_of("RetrievePropertiesEx");
	assert_non_null(strstr(S.reqs[i], "<obj type=\"ContainerView\">session[52a7]52b1</obj>"
	    "<skip>true</skip>"));
	free(vms);
	vmw_conn_free(c);
}

static void
test_hostile_responses(void **state)
{
	static const struct step s[] = {
		{ "FindByUuid", "hostile_dtd.xml", 200 },
		{ "FindByUuid", "@deep", 200 },
		{ "FindByUuid", "not_envelope.xml", 200 },
		{ "FindByUuid", "@half:" FIX "vm_props.xml", 200 },
		{ "FindByUuid", "not_envelope.xml", 503 },
		{ "FindByUuid", "find_by_uuid.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm;
	struct sw_err e;

	(void)state;
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID, "u", &vm, dl(), NULL, &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "DTD"));
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID, "u", &vm, dl(), NULL, &e), SW_ETOOBIG);
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID, "u", &vm, dl(), NULL, &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "not a SOAP envelope"));
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID, "u", &vm, dl(), NULL, &e), SW_EFORMAT);
	assert_non_null(strstr(e.msg, "well-formed"));
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID, "u", &vm, dl(), NULL, &e), SW_ENET);
	assert_non_null(strstr(e.msg, "503"));
	/* The connection is still usable after all that. */
	assert_int_equal(vmw_vm_find(c, VMW_VM_BY_BIOS_UUID, "u", &vm, dl(), NULL, &e), 0);
	assert_script_done();
	vmw_conn_free(c);
}

static void
test_response_cap(void **state)
{
	static const struct step s[] = {
		{ "RetrieveServiceContent", "service_content.xml", 200 },
	};
	struct vmw_conn *c = conn_new("p", 1024);  /* service_content.xml is 4 KiB */
	struct sw_err e;

	(void)state;
	SCRIPT(s);
	assert_int_equal(vmw_login(c, dl(), NULL, &e), SW_ETOOBIG);
	assert_null(vmw_conn_about(c));
	vmw_conn_free(c);
}

static const struct step vm_info_steps[] = {
	{ "RetrievePropertiesEx", "vm_props_chain.xml", 200 },
	{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
	{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
};

static void
test_vm_info_chain(void **state)
{
	struct vmw_conn *c = LOGGED_IN(vm_info_steps);
	struct vmw_moref vm = { "VirtualMachine", "vm-42" };
	struct vmw_vm_info *info = NULL;
	const struct vmw_disk *d;
	struct sw_err e;

	(void)state;
	assert_int_equal(vmw_vm_info_get(c, &vm, &info, dl(), NULL, &e), 0);
	assert_script_done();
	assert_string_equal(info->name, "i-2-3-VM");
	assert_string_equal(info->power_state, "poweredOn");
	assert_string_equal(info->host.value, "host-21");
	assert_string_equal(info->resource_pool.value, "resgroup-22");
	assert_string_equal(info->datacenter.value, "datacenter-2");
	assert_string_equal(info->vm_folder.value, "folder-3");
	assert_string_equal(info->current_snapshot.value, "snapshot-9");
	assert_null(info->tag);
	assert_int_equal(info->ndisks, 2);
	d = &info->disks[0];
	assert_int_equal(d->key, 2000);
	assert_int_equal(d->controller_key, 1000);
	assert_int_equal(d->capacity_bytes, 2147483648ull);
	assert_string_equal(d->file, "[ds1] i-2-3-VM/ROOT-3-000002.vmdk");
	assert_string_equal(d->datastore.value, "datastore-11");
	assert_int_equal(d->nchain, 3);
	assert_string_equal(d->chain[0], "[ds1] i-2-3-VM/ROOT-3.vmdk");
	assert_string_equal(d->chain[1], "[ds1] i-2-3-VM/ROOT-3-000001.vmdk");
	assert_string_equal(d->chain[2], "[ds1] i-2-3-VM/ROOT-3-000002.vmdk");
	assert_int_equal(info->disks[1].capacity_bytes, 1024 * 1024);
	/* Any file of a chain names its disk; "]" spacing does not matter. */
	assert_ptr_equal(vmw_vm_info_disk(info, "[ds1]i-2-3-VM/ROOT-3.vmdk"), d);
	assert_ptr_equal(vmw_vm_info_disk(info, "[ds1] i-2-3-VM/DATA-4.vmdk"), &info->disks[1]);
	assert_null(vmw_vm_info_disk(info, "[ds2] i-2-3-VM/ROOT-3.vmdk"));
	vmw_vm_info_free(info);
	vmw_conn_free(c);
}

static void
test_snapshot_disk(void **state)
{
	static const struct step s[] = {
		/* by a file of the frozen chain */
		{ "RetrievePropertiesEx", "snapshot_devices.xml", 200 },
		{ "RetrievePropertiesEx", "vm_layout_chain.xml", 200 },
		/* by the VM's newer delta: matched through the device key */
		{ "RetrievePropertiesEx", "snapshot_devices.xml", 200 },
		{ "RetrievePropertiesEx", "vm_layout_chain.xml", 200 },
		{ "RetrievePropertiesEx", "vm_props_chain.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		/* a volume the VM does not have */
		{ "RetrievePropertiesEx", "snapshot_devices.xml", 200 },
		{ "RetrievePropertiesEx", "vm_layout_chain.xml", 200 },
		{ "RetrievePropertiesEx", "vm_props_chain.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm = { "VirtualMachine", "vm-42" };
	struct vmw_moref snap = { "VirtualMachineSnapshot", "snapshot-9" };
	struct vmw_disk *d = NULL;
	struct sw_err e;

	(void)state;
	assert_int_equal(vmw_snapshot_disk(c, &vm, &snap, "[ds1] i-2-3-VM/ROOT-3.vmdk", &d, dl(),
	    NULL, &e), 0);
	assert_string_equal(d->file, "[ds1] i-2-3-VM/ROOT-3-000001.vmdk");
	assert_int_equal(d->nchain, 2);
	assert_string_equal(d->chain[0], "[ds1] i-2-3-VM/ROOT-3.vmdk");
	assert_string_equal(d->chain[1], "[ds1] i-2-3-VM/ROOT-3-000001.vmdk");
	vmw_disk_free(d);
	d = NULL;
	assert_int_equal(vmw_snapshot_disk(c, &vm, &snap, "[ds1] i-2-3-VM/ROOT-3-000002.vmdk", &d,
	    dl(), NULL, &e), 0);
	assert_int_equal(d->key, 2000);
	assert_string_equal(d->file, "[ds1] i-2-3-VM/ROOT-3-000001.vmdk");
	vmw_disk_free(d);
	d = NULL;
	assert_int_equal(vmw_snapshot_disk(c, &vm, &snap, "[ds1] i-9-9-VM/ROOT-9.vmdk", &d, dl(),
	    NULL, &e), SW_ENOTFOUND);
	assert_null(d);
	assert_script_done();
	vmw_conn_free(c);
}

static void
test_worker_create(void **state)
{
	static const struct step s[] = {
		{ "CreateVM_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success_vm.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref folder = { "Folder", "folder-3" }, pool = { "ResourcePool", "rp-1" };
	struct vmw_moref vm;
	struct vmw_disk disk;
	struct vmw_worker_spec ws;
	struct sw_err e;
	const char *body;

	(void)state;
	memset(&disk, 0, sizeof(disk));
	disk.file = (char *)"[ds1] i-2-3-VM/ROOT-3-000001.vmdk";
	disk.capacity_bytes = 2147483648ull;
	memset(&ws, 0, sizeof(ws));
	ws.name = "cmd<1>&";
	ws.tag = "4b0a5c1e-8d9f";
	ws.folder = &folder;
	ws.pool = &pool;
	ws.disk = &disk;
	assert_int_equal(vmw_worker_vm_create(c, &ws, &vm, dl(), NULL, &e), 0);
	assert_string_equal(vm.value, "vm-77");
	body = S.reqs[req_of("CreateVM_Task")];
	assert_non_null(strstr(body, "<_this type=\"Folder\">folder-3</_this><config><name>"
	    "cmd&lt;1&gt;&amp;</name>"));
	assert_non_null(strstr(body, "<vmPathName>[ds1]</vmPathName>"));
	assert_non_null(strstr(body, "<fileName>[ds1] i-2-3-VM/ROOT-3-000001.vmdk</fileName>"));
	assert_non_null(strstr(body, "<capacityInKB>2097152</capacityInKB>"));
	assert_non_null(strstr(body, "<key>snapworker.command</key><value xsi:type=\"xsd:string\">"
	    "4b0a5c1e-8d9f</value>"));
	assert_non_null(strstr(body, "<key>snapworker.created</key>"));
	/* The chain is attached as it is: never created, never copied. */
	assert_null(strstr(body, "fileOperation"));
	assert_script_done();
	/* A control character cannot be sent at all. */
	ws.name = "bad\033name";
	assert_int_equal(vmw_worker_vm_create(c, &ws, &vm, dl(), NULL, &e), -EINVAL);
	assert_int_equal(S.pos, S.nsteps);
	vmw_conn_free(c);
}

static void
test_worker_destroy(void **state)
{
	static const struct step s[] = {
		{ "RetrievePropertiesEx", "worker_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		{ "ReconfigVM_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success.xml", 200 },
		{ "RetrievePropertiesEx", "worker_props_nodisk.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		{ "Destroy_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success.xml", 200 },
		/* an untagged VM is never destroyed */
		{ "RetrievePropertiesEx", "untagged_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		/* a VM whose disk will not detach is not destroyed either */
		{ "RetrievePropertiesEx", "worker_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		{ "ReconfigVM_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success.xml", 200 },
		{ "RetrievePropertiesEx", "worker_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm = { "VirtualMachine", "vm-77" };
	struct sw_err e;
	const char *body;
	int ri, di;

	(void)state;
	assert_int_equal(vmw_worker_vm_destroy(c, &vm, dl(), NULL, &e), 0);
	ri = req_of("ReconfigVM_Task");
	di = req_of("Destroy_Task");
	assert_true(ri >= 0 && di > ri);
	body = S.reqs[ri];
	assert_non_null(strstr(body, "<operation>remove</operation>"));
	assert_non_null(strstr(body, "<key>2000</key>"));
	assert_null(strstr(body, "fileOperation"));
	assert_int_equal(vmw_worker_vm_destroy(c, &vm, dl(), NULL, &e), -EPERM);
	assert_int_equal(vmw_worker_vm_destroy(c, &vm, dl(), NULL, &e), SW_EREMOTE);
	assert_non_null(strstr(e.msg, "not destroyed"));
	assert_script_done();
	vmw_conn_free(c);
}

/* ------------------------------------------------------------------ */
/* Placement, detach, disk move (CreateVolume)                         */

static void
test_datastore_placement(void **state)
{
	static const struct step s[] = {
		{ "CreateContainerView", "container_view.xml", 200 },
		{ "RetrievePropertiesEx", "ds_names.xml", 200 },
		{ "DestroyView", "destroy_view.xml", 200 },
		{ "RetrievePropertiesEx", "ds_hosts.xml", 200 },
		/* host-9 cannot access it: never asked; host-10 is in maintenance */
		{ "RetrievePropertiesEx", "host10_props.xml", 200 },
		{ "RetrievePropertiesEx", "host12_props.xml", 200 },
		{ "RetrievePropertiesEx", "cr_pool.xml", 200 },
		{ "RetrievePropertiesEx", "ds_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dsfolder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		/* two datacenters with a ds1: refused, not guessed */
		{ "CreateContainerView", "container_view.xml", 200 },
		{ "RetrievePropertiesEx", "ds_names_dup.xml", 200 },
		{ "DestroyView", "destroy_view.xml", 200 },
		/* no such name (a prefix of another does not count) */
		{ "CreateContainerView", "container_view.xml", 200 },
		{ "RetrievePropertiesEx", "ds_names.xml", 200 },
		{ "DestroyView", "destroy_view.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_placement p, untouched;
	struct sw_err e;
	size_t i;

	(void)state;
	assert_int_equal(vmw_datastore_placement(c, "ds1", &p, dl(), NULL, &e), 0);
	assert_string_equal(p.datastore_name, "ds1");
	assert_string_equal(p.datastore.type, "Datastore");
	assert_string_equal(p.datastore.value, "datastore-11");
	assert_string_equal(p.host.value, "host-12");
	assert_string_equal(p.pool.type, "ResourcePool");
	assert_string_equal(p.pool.value, "resgroup-8");
	assert_string_equal(p.folder.value, "folder-3");
	assert_string_equal(p.datacenter.value, "datacenter-2");
	for (i = 0; i < S.nreqs; i++)
		assert_null(strstr(S.reqs[i], "host-9"));
	assert_non_null(strstr(S.reqs[req_of("CreateContainerView")], "<type>Datastore</type>"));
	memset(&untouched, 0x5a, sizeof(untouched));
	p = untouched;
	assert_int_equal(vmw_datastore_placement(c, "ds1", &p, dl(), NULL, &e), SW_ENOTFOUND);
	assert_non_null(strstr(e.msg, "2 datastores are named ds1"));
	assert_int_equal(vmw_datastore_placement(c, "ds", &p, dl(), NULL, &e), SW_ENOTFOUND);
	assert_non_null(strstr(e.msg, "no datastore named ds"));
	assert_memory_equal(&p, &untouched, sizeof(p));
	assert_int_equal(vmw_datastore_placement(c, "", &p, dl(), NULL, &e), -EINVAL);
	assert_script_done();
	vmw_conn_free(c);
}

static void
test_detach_and_move(void **state)
{
	static const struct step s[] = {
		{ "RetrievePropertiesEx", "worker_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		{ "ReconfigVM_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success.xml", 200 },
		/* untagged: its disks are left alone */
		{ "RetrievePropertiesEx", "untagged_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		{ "MoveVirtualDisk_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success.xml", 200 },
		{ "MoveVirtualDisk_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_error.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref vm = { "VirtualMachine", "vm-77" }, dc = { "Datacenter", "datacenter-2" };
	struct sw_err e;
	const char *body;
	int r;

	(void)state;
	assert_int_equal(vmw_worker_vm_detach(c, &vm, dl(), NULL, &e), 0);
	body = S.reqs[req_of("ReconfigVM_Task")];
	assert_non_null(strstr(body, "<operation>remove</operation>"));
	assert_null(strstr(body, "fileOperation"));
	/* detaching is all it does */
	assert_int_equal(req_of("Destroy_Task"), -1);
	assert_int_equal(vmw_worker_vm_detach(c, &vm, dl(), NULL, &e), -EPERM);
	assert_int_equal(vmw_virtual_disk_move(c, &dc, "[ds1] cmd-1/cmd-1.vmdk",
	    "[ds1] vol<1>.vmdk", 0, dl(), NULL, &e), 0);
	body = S.reqs[req_of("MoveVirtualDisk_Task")];
	assert_non_null(strstr(body, "<_this type=\"VirtualDiskManager\">virtualDiskManager</_this>"
	    "<sourceName>[ds1] cmd-1/cmd-1.vmdk</sourceName>"
	    "<sourceDatacenter type=\"Datacenter\">datacenter-2</sourceDatacenter>"
	    "<destName>[ds1] vol&lt;1&gt;.vmdk</destName>"
	    "<destDatacenter type=\"Datacenter\">datacenter-2</destDatacenter>"
	    "<force>false</force>"));
	r = vmw_virtual_disk_move(c, &dc, "[ds1] a.vmdk", "[ds1] b.vmdk", 0, dl(), NULL, &e);
	assert_true(r < 0);
	assert_non_null(strstr(e.msg, "moving [ds1] a.vmdk to [ds1] b.vmdk"));
	assert_script_done();
	vmw_conn_free(c);
}

/* ------------------------------------------------------------------ */
/* Export                                                              */

struct exp_ud {
	struct sw_hash *h;
	uint64_t bytes;
	int opened, closed, close_status;
	int last_percent;
	uint64_t last_bytes;
	int progress_calls;
	char file[64];
	char key[128];
	int nwrites;            /* sink calls */
	size_t min_write, max_write;
};

static int
exp_write(void *ud, const void *p, size_t n, struct sw_err *e)
{
	struct exp_ud *u = ud;

	(void)e;
	sw_hash_update(u->h, p, n);
	u->bytes += n;
	if (u->nwrites == 0 || n < u->min_write)
		u->min_write = n;
	if (n > u->max_write)
		u->max_write = n;
	u->nwrites++;
	return 0;
}

static int
exp_open(void *ud, const struct vmw_nfc_disk *d, struct sw_sink *ret, struct sw_err *e)
{
	struct exp_ud *u = ud;

	(void)e;
	u->opened++;
	snprintf(u->file, sizeof(u->file), "%s", d->file);
	snprintf(u->key, sizeof(u->key), "%s", d->key);
	ret->write = exp_write;
	ret->ud = u;
	return 0;
}

static int
exp_close(void *ud, const struct vmw_nfc_disk *d, int status, uint64_t bytes, struct sw_err *e)
{
	struct exp_ud *u = ud;

	(void)d; (void)e; (void)bytes;
	u->closed++;
	u->close_status = status;
	return 0;
}

static void
exp_progress(void *ud, uint64_t bytes, int percent)
{
	struct exp_ud *u = ud;

	u->progress_calls++;
	u->last_percent = percent;
	u->last_bytes = bytes;
}

static int
run_export(struct vmw_conn *c, struct exp_ud *u, unsigned lease_s,
    struct vmw_export_result **res, struct sw_err *e)
{
	struct vmw_moref vm = { "VirtualMachine", "vm-9" };
	struct vmw_export_opts o;

	memset(u, 0, sizeof(*u));
	u->h = sw_hash_new("sha256");
	memset(&o, 0, sizeof(o));
	o.name = "bk";
	o.sink_open = exp_open;
	o.sink_close = exp_close;
	o.progress = exp_progress;
	o.ud = u;
	o.lease_progress_s = lease_s;
	return vmw_export_vm(c, &vm, &o, res, dl(), NULL, e);
}

static void
test_export(void **state)
{
	static const struct step s[] = {
		{ "ExportVm", "export_vm.xml", 200 },
		{ "RetrievePropertiesEx", "lease_initializing.xml", 200 },
		{ "RetrievePropertiesEx", "lease_ready.xml", 200 },
		{ "CreateDescriptor", "create_descriptor.xml", 200 },
		{ "HttpNfcLeaseComplete", "lease_complete.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_export_result *res = NULL;
	struct exp_ud u;
	struct sw_err e;
	char want[129], got[129];
	const char *body;

	(void)state;
	S.nfc_size = 3000000;
	assert_int_equal(run_export(c, &u, 0, &res, &e), 0);
	assert_script_done();
	assert_non_null(res);
	sw_hash_final(u.h, got, sizeof(got));
	sw_hash_free(u.h);
	pattern_sha256(3000000, want);
	assert_string_equal(got, want);
	assert_int_equal(u.bytes, 3000000);
	/*
	 * The sink gets whole 1 MiB blocks (the last one shorter), not a
	 * write per TLS record or HTTP chunk: 3000000 = 2 * 1 MiB + 902848.
	 */
	assert_int_equal(u.nwrites, 3);
	assert_int_equal(u.max_write, 1048576);
	assert_int_equal(u.min_write, 3000000 - 2 * 1048576);
	/* Only the disk URL is fetched, not the nvram one. */
	assert_int_equal(S.ngets, 1);
	/* vCenter-proxied NFC URLs need the session cookie. */
	assert_true(S.get_cookie);
	assert_int_equal(u.opened, 1);
	assert_int_equal(u.closed, 1);
	assert_int_equal(u.close_status, 0);
	assert_string_equal(u.file, "bk-disk0.vmdk");
	assert_string_equal(u.key, "/vm-9/VirtualLsiLogicController0:0");
	assert_int_equal(u.last_percent, 100);
	assert_int_equal(u.last_bytes, 3000000);
	assert_int_equal(res->nfiles, 1);
	assert_int_equal(res->files[0].size, 3000000);
	assert_non_null(strstr(res->ovf, "ovf:href=\"bk-disk0.vmdk\""));
	assert_int_equal(res->ovf_len, strlen(res->ovf));
	body = S.reqs[req_of("CreateDescriptor")];
	assert_non_null(strstr(body, "<ovfFiles><deviceId>/vm-9/VirtualLsiLogicController0:0"
	    "</deviceId><path>bk-disk0.vmdk</path><size>3000000</size></ovfFiles><name>bk</name>"));
	/* The lease heard about progress at least once (after the disk). */
	assert_true(S.nprogress >= 1);
	vmw_export_result_free(res);
	vmw_conn_free(c);
}

static void
test_export_fail_mid(void **state)
{
	static const struct step s[] = {
		{ "ExportVm", "export_vm.xml", 200 },
		{ "RetrievePropertiesEx", "lease_ready.xml", 200 },
		{ "HttpNfcLeaseAbort", "lease_abort.xml", 200 },
		/* the lease reports an error of its own */
		{ "ExportVm", "export_vm.xml", 200 },
		{ "RetrievePropertiesEx", "lease_error.xml", 200 },
		{ "HttpNfcLeaseAbort", "lease_abort.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_export_result *res = (struct vmw_export_result *)&S;  /* must stay */
	struct exp_ud u;
	struct sw_err e;

	(void)state;
	S.nfc_size = 3000000;
	S.nfc_fail_after = 1000000;
	assert_int_equal(run_export(c, &u, 0, &res, &e), SW_ENET);
	sw_hash_free(u.h);
	assert_ptr_equal(res, (struct vmw_export_result *)&S);
	assert_true(u.bytes < 3000000);
	assert_int_equal(u.closed, 1);
	assert_true(u.close_status < 0);
	assert_int_equal(run_export(c, &u, 0, &res, &e), SW_EREMOTE);
	sw_hash_free(u.h);
	assert_string_equal(vmw_last_fault(c)->type, "InvalidState");
	assert_int_equal(u.opened, 0);
	assert_script_done();
	vmw_conn_free(c);
}

static void
test_export_lease_keepalive(void **state)
{
	static const struct step s[] = {
		{ "ExportVm", "export_vm.xml", 200 },
		{ "RetrievePropertiesEx", "lease_ready.xml", 200 },
		{ "CreateDescriptor", "create_descriptor.xml", 200 },
		{ "HttpNfcLeaseComplete", "lease_complete.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_export_result *res = NULL;
	struct exp_ud u;
	struct sw_err e;

	(void)state;
	/* About 2.5 s of transfer with a 1 s lease interval: kept alive from inside it. */
	S.nfc_size = 40 * 65536;
	S.nfc_delay_ms = 60;
	assert_int_equal(run_export(c, &u, 1, &res, &e), 0);
	sw_hash_free(u.h);
	assert_script_done();
	assert_int_equal(u.bytes, 40 * 65536);
	assert_true(S.nprogress >= 2);
	assert_true(u.progress_calls >= 3);
	vmw_export_result_free(res);
	vmw_conn_free(c);
}

/* ------------------------------------------------------------------ */
/* Import with a tag                                                   */

struct imp_ud {
	uint64_t size, pos;
	int opened, closed;
	char file[64];
};

static ssize_t
imp_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct imp_ud *u = ud;
	size_t k = u->size - u->pos < n ? (size_t)(u->size - u->pos) : n;

	(void)e;
	memset(p, 'x', k);
	u->pos += k;
	return (ssize_t)k;
}

static int
imp_open(void *ud, const char *file, struct sw_source *ret, uint64_t *ret_size, struct sw_err *e)
{
	struct imp_ud *u = ud;

	(void)e;
	u->opened++;
	snprintf(u->file, sizeof(u->file), "%s", file);
	u->pos = 0;
	ret->read = imp_read;
	ret->ud = u;
	*ret_size = u->size;
	return 0;
}

static void
imp_close(void *ud, const char *file, struct sw_source *src)
{
	struct imp_ud *u = ud;

	(void)file; (void)src;
	u->closed++;
}

static void
test_import_tag(void **state)
{
	static const struct step s[] = {
		{ "CreateImportSpec", "import_spec.xml", 200 },
		{ "ImportVApp", "import_vapp.xml", 200 },
		{ "RetrievePropertiesEx", "lease_ready.xml", 200 },
		{ "HttpNfcLeaseComplete", "lease_complete.xml", 200 },
		/* the VM carries the tag (from the spec): no reconfigure */
		{ "RetrievePropertiesEx", "worker_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		/* second import: the server dropped the tag, it is set afterwards */
		{ "CreateImportSpec", "import_spec.xml", 200 },
		{ "ImportVApp", "import_vapp.xml", 200 },
		{ "RetrievePropertiesEx", "lease_ready.xml", 200 },
		{ "HttpNfcLeaseComplete", "lease_complete.xml", 200 },
		{ "RetrievePropertiesEx", "worker_props.xml", 200 },
		{ "RetrievePropertiesEx", "folder_parent.xml", 200 },
		{ "RetrievePropertiesEx", "dc_vmfolder.xml", 200 },
		{ "ReconfigVM_Task", "create_snapshot_running.xml", 200 },
		{ "RetrievePropertiesEx", "task_success.xml", 200 },
	};
	struct vmw_conn *c = LOGGED_IN(s);
	struct vmw_moref pool = { "ResourcePool", "resgroup-8" }, folder = { "Folder", "folder-3" };
	struct vmw_moref ds = { "Datastore", "datastore-11" }, host = { "HostSystem", "host-12" };
	struct vmw_import_result *res = NULL;
	struct vmw_import_opts io;
	struct imp_ud u;
	struct sw_err e;
	const char *body, *tag, *ec, *vapp, *dc;
	int i;

	(void)state;
	memset(&u, 0, sizeof(u));
	u.size = 3000000;
	memset(&io, 0, sizeof(io));
	io.ovf = "<Envelope/>";
	io.vm_name = "cmd-1";
	io.tag = "cmd-1";
	io.pool = &pool;
	io.folder = &folder;
	io.datastore = &ds;
	io.host = &host;
	io.source_open = imp_open;
	io.source_close = imp_close;
	io.ud = &u;
	assert_int_equal(vmw_import_vm(c, &io, &res, dl(), NULL, &e), 0);
	assert_non_null(res);
	assert_string_equal(res->vm.value, "vm-9");
	assert_int_equal(u.opened, 1);
	assert_int_equal(u.closed, 1);
	assert_string_equal(u.file, "worker-disk0.vmdk");
	assert_int_equal(S.put_bytes, 3000000);
	/* The disk goes as one PUT of known length, without waiting for a 100 Continue. */
	assert_string_equal(S.put_method, "PUT");
	assert_string_equal(S.put_ctype, "application/x-vnd.vmware-streamVmdk");
	assert_string_equal(S.put_expect, "");
	assert_string_equal(S.put_te, "");
	vmw_import_result_free(res);
	res = NULL;
	i = req_of("ImportVApp");
	assert_true(i >= 0);
	body = S.reqs[i];
	tag = strstr(body, "<key>snapworker.command</key><value xsi:type=\"xsd:string\">cmd-1</value>");
	assert_non_null(tag);
	assert_non_null(strstr(body, "<key>snapworker.created</key>"));
	/* XSD order: after the spec's own extraConfig and deviceChange, before vAppConfig. */
	ec = strstr(body, "<key>disk.EnableUUID</key>");
	dc = strstr(body, "<deviceChange>");
	vapp = strstr(body, "<vAppConfig");
	assert_non_null(ec);
	assert_non_null(dc);
	assert_non_null(vapp);
	assert_true(dc < tag && ec < tag && tag < vapp);
	assert_non_null(strstr(body, "<extraConfig xsi:type=\"OptionValue\"><key>snapworker.command"));
	assert_int_equal(req_of("ReconfigVM_Task"), -1);

	io.tag = "cmd-2";
	assert_int_equal(vmw_import_vm(c, &io, &res, dl(), NULL, &e), 0);
	vmw_import_result_free(res);
	i = req_of("ReconfigVM_Task");
	assert_true(i >= 0);
	assert_non_null(strstr(S.reqs[i], "<spec><extraConfig xsi:type=\"OptionValue\">"
	    "<key>snapworker.command</key><value xsi:type=\"xsd:string\">cmd-2</value>"));
	assert_script_done();
	vmw_conn_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thumbprint_normalize),
		cmocka_unit_test(test_conn_opts),
		cmocka_unit_test(test_login_pinned),
		cmocka_unit_test(test_login_invalid),
		cmocka_unit_test(test_thumbprint_mismatch),
		cmocka_unit_test(test_tls_ca),
		cmocka_unit_test(test_relogin),
		cmocka_unit_test(test_find_not_found),
		cmocka_unit_test(test_fault_mapping),
		cmocka_unit_test(test_task_wait),
		cmocka_unit_test(test_task_wait_poll),
		cmocka_unit_test(test_task_deadline_cancel),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_hostile_responses),
		cmocka_unit_test(test_response_cap),
		cmocka_unit_test(test_vm_info_chain),
		cmocka_unit_test(test_snapshot_disk),
		cmocka_unit_test(test_worker_create),
		cmocka_unit_test(test_worker_destroy),
		cmocka_unit_test(test_datastore_placement),
		cmocka_unit_test(test_detach_and_move),
		cmocka_unit_test(test_import_tag),
		cmocka_unit_test(test_export),
		cmocka_unit_test(test_export_fail_mid),
		cmocka_unit_test(test_export_lease_keepalive),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
