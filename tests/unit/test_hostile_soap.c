/*
 * Hostile SOAP responses (issue 14, class "hostile SOAP in every encoding"):
 * a plain-HTTP server on 127.0.0.1 answers RetrieveServiceContent, the first
 * call of a login, with a response that carries a DTD, in every encoding
 * libxml2 reads: UTF-8 with and without a byte order mark, UTF-16 in both
 * byte orders with and without one, UCS-4, ISO-8859-1, EBCDIC and UTF-7.
 * Each DTD (an internal entity, an external one, a parameter entity, an
 * entity loop, an external subset) must be refused before anything in it is
 * used: the login fails with SW_EFORMAT naming the DTD, no Login is sent and
 * nothing is fetched.  The same document without its DTD, in the same
 * encoding, logs in (so each refusal is the DTD's, not the encoding's).
 * Then the other shapes of a hostile answer: nesting, size, truncation,
 * NUL bytes, a wrong root, an oversized fault.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/io.h"
#include "vmware/vmware.h"

#define FIX SW_SRCDIR "/tests/fixtures/vmware/"

static struct {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t mu;
	char *sc_body;            /* the RetrieveServiceContent answer */
	size_t sc_len;
	unsigned sc_status;
	char *login_body;
	size_t login_len;
	unsigned posts, logins, gets;
} S;

struct req {
	struct sw_buf body;
};

static enum MHD_Result
handler(void *cls, struct MHD_Connection *con, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;
	struct MHD_Response *resp;
	const void *body = "";
	size_t len = 0;
	unsigned status = 200;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)version;
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		sw_buf_init(&rq->body, 1 << 20);
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		(void)sw_buf_add(&rq->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&S.mu);
	if (strcmp(method, "POST") != 0) {
		/* A DTD fetched from here would land here: there must be none. */
		S.gets++;
		status = 404;
	} else {
		S.posts++;
		if (strstr(sw_buf_str(&rq->body), "<Login") != NULL) {
			S.logins++;
			body = S.login_body;
			len = S.login_len;
		} else {
			body = S.sc_body;
			len = S.sc_len;
			status = S.sc_status ? S.sc_status : 200;
		}
	}
	pthread_mutex_unlock(&S.mu);
	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", "text/xml");
	ret = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *con, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)con;
	(void)toe;
	if (rq != NULL) {
		sw_buf_free(&rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	char *p = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)n + 1)) != NULL) {
		if (fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		} else {
			p[n] = '\0';
			*ret_len = (size_t)n;
		}
	}
	fclose(f);
	return p;
}

static int
group_setup(void **state)
{
	(void)state;
	pthread_mutex_init(&S.mu, NULL);
	if ((S.login_body = slurp(FIX "login.xml", &S.login_len)) == NULL)
		return -1;
	S.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
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
	free(S.sc_body);
	free(S.login_body);
	return 0;
}

/* Serves p (n bytes) as the next RetrieveServiceContent answer; resets the counters. */
static void
serve(const void *p, size_t n, unsigned status)
{
	pthread_mutex_lock(&S.mu);
	free(S.sc_body);
	S.sc_body = malloc(n ? n : 1);
	assert_non_null(S.sc_body);
	memcpy(S.sc_body, p, n);
	S.sc_len = n;
	S.sc_status = status;
	S.posts = S.logins = S.gets = 0;
	pthread_mutex_unlock(&S.mu);
}

/* A login against the server: its result, and the AboutInfo name when it worked. */
static int
login(char *about_name, size_t namesz, struct sw_err *e)
{
	struct vmw_conn_opts o;
	struct vmw_conn *c = NULL;
	char url[64];
	int r;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/sdk", S.port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.user = "admin";
	o.password = "secret";
	o.tls = VMW_TLS_INSECURE;
	o.max_response = 1 << 20;
	assert_int_equal(vmw_conn_new(&o, &c, e), 0);
	r = vmw_login(c, sw_mono_ms() + 20000, NULL, e);
	if (about_name != NULL) {
		about_name[0] = '\0';
		if (r == 0 && vmw_conn_about(c) != NULL)
			snprintf(about_name, namesz, "%s", vmw_conn_about(c)->name);
	}
	vmw_conn_free(c);
	return r;
}

/* ------------------------------------------------------------ encodings */

struct encoding {
	const char *label;        /* for messages */
	const char *iconv;        /* iconv target of the document after the prolog */
	const char *decl;         /* encoding="..." of the XML declaration; NULL: none */
	int bom;                  /* prepend the encoding's byte order mark */
	int ascii_prolog;         /* the XML declaration stays ASCII (UTF-7) */
};

static const struct encoding encodings[] = {
	{ "UTF-8", "UTF-8", "UTF-8", 0, 0 },
	{ "UTF-8 without declaration", "UTF-8", NULL, 0, 0 },
	{ "UTF-8 with BOM", "UTF-8", "UTF-8", 1, 0 },
	{ "UTF-16LE with BOM", "UTF-16LE", "UTF-16", 1, 0 },
	{ "UTF-16BE with BOM", "UTF-16BE", "UTF-16", 1, 0 },
	{ "UTF-16LE without BOM", "UTF-16LE", "UTF-16", 0, 0 },
	{ "UTF-16BE without BOM", "UTF-16BE", "UTF-16", 0, 0 },
	{ "UTF-16LE without declaration", "UTF-16LE", NULL, 1, 0 },
	/* libxml2 2.9 reads 32-bit text only as big-endian UCS-4 without a mark. */
	{ "UCS-4 (UTF-32BE)", "UTF-32BE", "UCS-4", 0, 0 },
	{ "ISO-8859-1", "ISO-8859-1", "ISO-8859-1", 0, 0 },
	{ "EBCDIC (IBM037)", "IBM037", "IBM037", 0, 0 },
	{ "UTF-7", "UTF-7", "UTF-7", 0, 1 },
};

/* The byte order mark of an iconv target, as that encoding writes U+FEFF. */
static size_t
bom_of(const char *enc, unsigned char *out)
{
	if (strcmp(enc, "UTF-8") == 0)
		return memcpy(out, "\xef\xbb\xbf", 3), 3;
	if (strcmp(enc, "UTF-16LE") == 0)
		return memcpy(out, "\xff\xfe", 2), 2;
	if (strcmp(enc, "UTF-16BE") == 0)
		return memcpy(out, "\xfe\xff", 2), 2;
	if (strcmp(enc, "UTF-32LE") == 0)
		return memcpy(out, "\xff\xfe\x00\x00", 4), 4;
	if (strcmp(enc, "UTF-32BE") == 0)
		return memcpy(out, "\x00\x00\xfe\xff", 4), 4;
	return 0;
}

/* Appends text converted to enc. */
static void
add_converted(struct sw_buf *b, const char *enc, const char *text)
{
	iconv_t cd = iconv_open(enc, "UTF-8");
	char out[65536], *in = (char *)text, *op = out;
	size_t inl = strlen(text), outl = sizeof(out);

	if (cd == (iconv_t)-1)
		fail_msg("iconv cannot write %s", enc);
	if (iconv(cd, &in, &inl, &op, &outl) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &outl) == (size_t)-1)
		fail_msg("iconv to %s failed", enc);
	iconv_close(cd);
	assert_int_equal(sw_buf_add(b, out, sizeof(out) - outl), 0);
}

/*
 * The answer: XML declaration, dtd (may be ""), and an envelope whose
 * AboutInfo name is name, all in encoding x.
 */
static void
build(struct sw_buf *b, const struct encoding *x, const char *dtd, const char *name)
{
	char prolog[128], rest[4096];
	unsigned char bom[4];
	size_t n;

	if (x->decl != NULL)
		snprintf(prolog, sizeof(prolog), "<?xml version=\"1.0\" encoding=\"%s\"?>\n", x->decl);
	else
		prolog[0] = '\0';
	snprintf(rest, sizeof(rest), "%s<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/"
	    "soap/envelope/\"><soapenv:Body><RetrieveServiceContentResponse xmlns=\"urn:vim25\">"
	    "<returnval><rootFolder type=\"Folder\">group-d1</rootFolder><propertyCollector "
	    "type=\"PropertyCollector\">propertyCollector</propertyCollector><sessionManager "
	    "type=\"SessionManager\">SessionManager</sessionManager><about><name>%s</name>"
	    "<apiVersion>6.5</apiVersion></about></returnval></RetrieveServiceContentResponse>"
	    "</soapenv:Body></soapenv:Envelope>", dtd, name);
	sw_buf_reset(b);
	if (x->bom && (n = bom_of(x->iconv, bom)) > 0)
		assert_int_equal(sw_buf_add(b, bom, n), 0);
	if (x->ascii_prolog) {
		assert_int_equal(sw_buf_addstr(b, prolog), 0);
		add_converted(b, x->iconv, rest);
	} else {
		char all[4300];

		snprintf(all, sizeof(all), "%s%s", prolog, rest);
		add_converted(b, x->iconv, all);
	}
}

#define GOOD_NAME "VMware vCenter Server"

static void
test_control_every_encoding(void **state)
{
	struct sw_buf b = SW_BUF_INIT(1 << 20);
	char name[128];
	struct sw_err e;
	size_t i;

	(void)state;
	/* Without a DTD each encoding logs in: libxml2 reads all of them. */
	for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
		build(&b, &encodings[i], "", GOOD_NAME);
		serve(b.ptr, b.len, 200);
		if (login(name, sizeof(name), &e) != 0)
			fail_msg("%s: a response without a DTD was refused: %s", encodings[i].label,
			    e.msg);
		if (strcmp(name, GOOD_NAME) != 0)
			fail_msg("%s: AboutInfo name '%s'", encodings[i].label, name);
		assert_int_equal(S.logins, 1);
	}
	sw_buf_free(&b);
}

static void
test_dtd_every_encoding(void **state)
{
	char ext[512];
	const struct {
		const char *what;
		const char *dtd;
		const char *name;
	} dtds[] = {
		/* The campaign's case: an internal entity, substituted when UTF-16. */
		{ "internal entity", "<!DOCTYPE soapenv:Envelope [<!ENTITY inj \"INJECTED\">]>\n",
		    "&inj;" },
		{ "external entity", "<!DOCTYPE soapenv:Envelope [<!ENTITY inj SYSTEM "
		    "\"file:///etc/hostname\">]>\n", "&inj;" },
		{ "entity loop", "<!DOCTYPE soapenv:Envelope [<!ENTITY a \"&b;\"><!ENTITY b \"&a;\">]>\n",
		    "&a;" },
		{ "billion laughs", "<!DOCTYPE soapenv:Envelope [<!ENTITY l \"lol\">"
		    "<!ENTITY l1 \"&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;\">"
		    "<!ENTITY l2 \"&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;\">"
		    "<!ENTITY l3 \"&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;\">]>\n", "&l3;" },
		{ "parameter entity", "<!DOCTYPE soapenv:Envelope [<!ENTITY % p \"<!ENTITY inj "
		    "'INJECTED'>\"> %p;]>\n", "&inj;" },
		{ "external subset", ext, GOOD_NAME },
		{ "empty DTD", "<!DOCTYPE soapenv:Envelope []>\n", GOOD_NAME },
	};
	struct sw_buf b = SW_BUF_INIT(1 << 20);
	char name[128];
	struct sw_err e;
	size_t i, k;
	int r;

	(void)state;
	snprintf(ext, sizeof(ext), "<!DOCTYPE soapenv:Envelope SYSTEM \"http://127.0.0.1:%u/evil.dtd\">\n",
	    S.port);
	for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
		for (k = 0; k < sizeof(dtds) / sizeof(dtds[0]); k++) {
			build(&b, &encodings[i], dtds[k].dtd, dtds[k].name);
			serve(b.ptr, b.len, 200);
			r = login(name, sizeof(name), &e);
			if (r != SW_EFORMAT || strstr(e.msg, "DTD") == NULL)
				fail_msg("%s, %s: login returned %d (%s), AboutInfo name '%s'",
				    encodings[i].label, dtds[k].what, r, r ? e.msg : "logged in",
				    name);
			/* Refused before anything else happened. */
			if (S.posts != 1 || S.logins != 0 || S.gets != 0)
				fail_msg("%s, %s: %u calls, %u logins, %u fetches", encodings[i].label,
				    dtds[k].what, S.posts, S.logins, S.gets);
		}
	}
	sw_buf_free(&b);
}

/* The other shapes of a hostile answer: each refused as what it is, nothing crashes. */
static void
test_other_hostile_answers(void **state)
{
	struct sw_buf b = SW_BUF_INIT(1 << 24);
	struct sw_err e;
	int i;

	(void)state;
	/* Nesting far past the bound. */
	sw_buf_addstr(&b, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
	    "envelope/\"><soapenv:Body><R>");
	for (i = 0; i < 5000; i++)
		sw_buf_addstr(&b, "<a>");
	for (i = 0; i < 5000; i++)
		sw_buf_addstr(&b, "</a>");
	sw_buf_addstr(&b, "</R></soapenv:Body></soapenv:Envelope>");
	serve(b.ptr, b.len, 200);
	i = login(NULL, 0, &e);
	assert_true(i == SW_ETOOBIG || i == SW_EFORMAT);
	assert_int_equal(S.logins, 0);

	/* Larger than the connection's response cap (1 MiB here). */
	sw_buf_reset(&b);
	sw_buf_addstr(&b, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
	    "envelope/\"><soapenv:Body><R>");
	for (i = 0; i < (1 << 20) / 16 + 1; i++)
		sw_buf_addstr(&b, "<x>0123456789</x>");
	sw_buf_addstr(&b, "</R></soapenv:Body></soapenv:Envelope>");
	serve(b.ptr, b.len, 200);
	assert_int_equal(login(NULL, 0, &e), SW_ETOOBIG);

	/* Truncated, NUL bytes, a foreign root, an empty body, invalid UTF-8. */
	{
		static const char trunc[] = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap."
		    "org/soap/envelope/\"><soapenv:Body><R";
		static const char nul[] = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap."
		    "org/soap/envelope/\"><soapenv:Body><R>a\0b</R></soapenv:Body></soapenv:Envelope>";
		static const char root[] = "<html><body>not SOAP</body></html>";
		static const char empty[] = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap."
		    "org/soap/envelope/\"><soapenv:Body></soapenv:Body></soapenv:Envelope>";
		static const char utf8[] = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap."
		    "org/soap/envelope/\"><soapenv:Body><R>\xc0\xaf\xff</R></soapenv:Body>"
		    "</soapenv:Envelope>";
		const struct { const char *p; size_t n; } bodies[] = {
			{ trunc, sizeof(trunc) - 1 }, { nul, sizeof(nul) - 1 },
			{ root, sizeof(root) - 1 }, { empty, sizeof(empty) - 1 },
			{ utf8, sizeof(utf8) - 1 }, { "", 0 },
		};
		size_t k;

		for (k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
			serve(bodies[k].p, bodies[k].n, 200);
			if (login(NULL, 0, &e) != SW_EFORMAT)
				fail_msg("body %zu: not refused as malformed: %s", k, e.msg);
			assert_int_equal(S.logins, 0);
		}
	}

	/* A fault whose message is huge: refused, the message bounded. */
	sw_buf_reset(&b);
	sw_buf_addstr(&b, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
	    "envelope/\"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
	    "<faultstring>");
	for (i = 0; i < 100000; i++)
		sw_buf_addstr(&b, "A");
	sw_buf_addstr(&b, "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
	serve(b.ptr, b.len, 500);
	assert_true(login(NULL, 0, &e) < 0);
	assert_true(strlen(e.msg) < sizeof(e.msg));
	assert_int_equal(S.logins, 0);
	sw_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_every_encoding),
		cmocka_unit_test(test_dtd_every_encoding),
		cmocka_unit_test(test_other_hostile_answers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
