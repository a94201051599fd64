/*
 * SOAP request building (vmw_int.h): typed arguments with XML escaping into
 * a bounded buffer, and the envelope around them.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Request building                                                    */

int
vmw__xml_escape(struct sw_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *rep;
	int r;

	for (; *p != '\0'; p++) {
		switch (*p) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		case '\t': rep = "&#9;"; break;
		case '\n': rep = "&#10;"; break;
		case '\r': rep = "&#13;"; break;
		default:
			/* XML 1.0 cannot carry the other control characters at all. */
			if (*p < 0x20 || *p == 0x7f)
				return -EINVAL;
			rep = NULL;
		}
		r = rep != NULL ? sw_buf_addstr(b, rep) : sw_buf_add(b, p, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

void
vmw__req_init(struct vmw__req *r)
{
	sw_buf_init(&r->b, VMW_MAX_REQUEST);
	r->rc = 0;
}

void
vmw__req_free(struct vmw__req *r)
{
	if (r != NULL)
		sw_buf_free(&r->b);
}

void
vmw__req_raw(struct vmw__req *r, const char *s)
{
	if (r->rc == 0)
		r->rc = sw_buf_addstr(&r->b, s);
}

void
vmw__req_rawf(struct vmw__req *r, const char *fmt, ...)
{
	va_list ap;

	if (r->rc != 0)
		return;
	va_start(ap, fmt);
	r->rc = sw_buf_vaddf(&r->b, fmt, ap);
	va_end(ap);
}

void
vmw__req_text(struct vmw__req *r, const char *tag, const char *text)
{
	if (text == NULL) {
		if (r->rc == 0)
			r->rc = -EINVAL;
		return;
	}
	vmw__req_rawf(r, "<%s>", tag);
	if (r->rc == 0)
		r->rc = vmw__xml_escape(&r->b, text);
	vmw__req_rawf(r, "</%s>", tag);
}

void
vmw__req_moref(struct vmw__req *r, const char *tag, const struct vmw_moref *m)
{
	if (m == NULL || m->type[0] == '\0' || m->value[0] == '\0') {
		if (r->rc == 0)
			r->rc = -EINVAL;
		return;
	}
	vmw__req_rawf(r, "<%s type=\"", tag);
	if (r->rc == 0)
		r->rc = vmw__xml_escape(&r->b, m->type);
	vmw__req_raw(r, "\">");
	if (r->rc == 0)
		r->rc = vmw__xml_escape(&r->b, m->value);
	vmw__req_rawf(r, "</%s>", tag);
}

void
vmw__req_bool(struct vmw__req *r, const char *tag, int v)
{
	vmw__req_rawf(r, "<%s>%s</%s>", tag, v ? "true" : "false", tag);
}

void
vmw__req_i64(struct vmw__req *r, const char *tag, int64_t v)
{
	vmw__req_rawf(r, "<%s>%" PRId64 "</%s>", tag, v, tag);
}

int
vmw__envelope(struct sw_buf *out, const char *method, const struct vmw_moref *this,
    const char *args)
{
	struct vmw__req r;

	vmw__req_init(&r);
	vmw__req_raw(&r, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
	    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
	    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
	    "<soapenv:Body>");
	vmw__req_rawf(&r, "<%s xmlns=\"urn:vim25\">", method);
	vmw__req_moref(&r, "_this", this);
	if (args != NULL)
		vmw__req_raw(&r, args);
	vmw__req_rawf(&r, "</%s></soapenv:Body></soapenv:Envelope>", method);
	if (r.rc == 0) {
		sw_buf_reset(out);
		r.rc = sw_buf_add(out, r.b.ptr, r.b.len);
	}
	vmw__req_free(&r);
	return r.rc;
}
