/*
 * SOAP response parsing (vmw_int.h): libxml2 under the size and depth
 * limits, the envelope and body checks, SOAP fault mapping to error codes,
 * and the tree helpers the rest of vmware/ reads responses with.
 */
#include "vmware/vmw_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "common/num.h"

/* ------------------------------------------------------------------ */
/* Response tree helpers                                               */

static int
name_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNode *
vmw__x_child(xmlNode *n, const char *name)
{
	xmlNode *k;

	if (n == NULL)
		return NULL;
	for (k = n->children; k != NULL; k = k->next)
		if (name_is(k, name))
			return k;
	return NULL;
}

xmlNode *
vmw__x_next(xmlNode *n, const char *name)
{
	xmlNode *k;

	if (n == NULL)
		return NULL;
	for (k = n->next; k != NULL; k = k->next)
		if (name_is(k, name))
			return k;
	return NULL;
}

xmlNode *
vmw__x_path(xmlNode *n, const char *path)
{
	char part[128];
	const char *p = path, *slash;
	size_t len;

	while (n != NULL && *p != '\0') {
		slash = strchr(p, '/');
		len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || len >= sizeof(part))
			return NULL;
		memcpy(part, p, len);
		part[len] = '\0';
		n = vmw__x_child(n, part);
		p += len;
		if (*p == '/')
			p++;
	}
	return n;
}

const char *
vmw__x_type(xmlNode *n)
{
	xmlAttr *a;
	const char *v, *colon;

	if (n == NULL)
		return NULL;
	for (a = n->properties; a != NULL; a = a->next) {
		/* By namespace: vCenter and govmomi bind XSI to different prefixes. */
		if (a->ns == NULL || a->ns->href == NULL ||
		    strcmp((const char *)a->ns->href, VMW_XSI_NS) != 0 ||
		    strcmp((const char *)a->name, "type") != 0)
			continue;
		if (a->children == NULL || a->children->content == NULL)
			return NULL;
		v = (const char *)a->children->content;
		colon = strchr(v, ':');
		return colon != NULL ? colon + 1 : v;
	}
	return NULL;
}

int
vmw__x_text(xmlNode *n, char *buf, size_t bufsz)
{
	xmlChar *s;
	size_t len;

	if (n == NULL)
		return SW_EFORMAT;
	s = xmlNodeGetContent(n);
	if (s == NULL)
		return -ENOMEM;
	len = strlen((const char *)s);
	if (len >= bufsz) {
		xmlFree(s);
		return SW_ETOOBIG;
	}
	memcpy(buf, s, len + 1);
	xmlFree(s);
	return 0;
}

/* Like vmw__x_text, but truncates: for messages, where a prefix is still useful. */
static void
x_text_trunc(xmlNode *n, char *buf, size_t bufsz)
{
	xmlChar *s;
	size_t len;

	buf[0] = '\0';
	if (n == NULL || (s = xmlNodeGetContent(n)) == NULL)
		return;
	len = strlen((const char *)s);
	if (len >= bufsz)
		len = bufsz - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	xmlFree(s);
}

char *
vmw__x_strdup(xmlNode *n)
{
	xmlChar *s;
	char *r;

	if (n == NULL)
		return NULL;
	s = xmlNodeGetContent(n);
	if (s == NULL)
		return NULL;
	r = strlen((const char *)s) <= VMW_MAX_TEXT ? strdup((const char *)s) : NULL;
	xmlFree(s);
	return r;
}

int
vmw__x_eq(xmlNode *n, const char *s)
{
	xmlChar *t;
	int eq;

	if (n == NULL)
		return 0;
	t = xmlNodeGetContent(n);
	if (t == NULL)
		return 0;
	eq = strcmp((const char *)t, s) == 0;
	xmlFree(t);
	return eq;
}

int
vmw__x_moref(xmlNode *n, struct vmw_moref *ret)
{
	struct vmw_moref m;
	xmlChar *type;
	size_t len;

	if (n == NULL)
		return SW_EFORMAT;
	/* The plain "type" attribute, not the XSI one that typed values also carry. */
	type = xmlGetNoNsProp(n, (const xmlChar *)"type");
	if (type == NULL)
		return SW_EFORMAT;
	len = strlen((const char *)type);
	if (len == 0 || len >= sizeof(m.type)) {
		xmlFree(type);
		return SW_EFORMAT;
	}
	memcpy(m.type, type, len + 1);
	xmlFree(type);
	if (vmw__x_text(n, m.value, sizeof(m.value)) < 0 || m.value[0] == '\0')
		return SW_EFORMAT;
	*ret = m;
	return 0;
}

int
vmw__x_i64(xmlNode *n, int64_t *ret)
{
	char buf[32];

	if (vmw__x_text(n, buf, sizeof(buf)) < 0)
		return SW_EFORMAT;
	return sw_parse_i64(buf, INT64_MIN, INT64_MAX, ret) < 0 ? SW_EFORMAT : 0;
}

int
vmw__x_bool(xmlNode *n, int *ret)
{
	char buf[8];

	if (vmw__x_text(n, buf, sizeof(buf)) < 0)
		return SW_EFORMAT;
	if (strcmp(buf, "true") == 0 || strcmp(buf, "1") == 0)
		*ret = 1;
	else if (strcmp(buf, "false") == 0 || strcmp(buf, "0") == 0)
		*ret = 0;
	else
		return SW_EFORMAT;
	return 0;
}

int
vmw_moref_cmp(const struct vmw_moref *a, const struct vmw_moref *b)
{
	if (a == NULL || b == NULL || a->value[0] == '\0')
		return 1;
	return strcmp(a->type, b->type) != 0 || strcmp(a->value, b->value) != 0;
}

/* ------------------------------------------------------------------ */
/* Response parsing                                                    */

static const char soapenv_ns[] = "http://schemas.xmlsoap.org/soap/envelope/";

void
vmw__resp_free(struct vmw__resp *r)
{
	if (r == NULL)
		return;
	if (r->doc != NULL)
		xmlFreeDoc(r->doc);
	r->doc = NULL;
	r->body = NULL;
}

int
vmw__fault_code(const char *type)
{
	static const struct {
		const char *type;
		int code;
	} map[] = {
		{ "InvalidLogin", SW_EAUTH },
		{ "NotAuthenticated", SW_EAUTH },
		{ "NoPermission", SW_EAUTH },
		{ "InvalidLocale", SW_EAUTH },
		{ "TaskInProgress", SW_EBUSY },
		{ "ConcurrentAccess", SW_EBUSY },
		{ "ResourceInUse", SW_EBUSY },
		{ "ManagedObjectNotFound", SW_ENOTFOUND },
		{ "NotFound", SW_ENOTFOUND },
		{ "FileNotFound", SW_ENOTFOUND },
		{ "InvalidDatastorePath", SW_ENOTFOUND },
	};
	size_t i;

	if (type == NULL)
		return SW_EREMOTE;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(type, map[i].type) == 0)
			return map[i].code;
	return SW_EREMOTE;
}

/* Depth of the tree, walked without recursion so a hostile body cannot blow our stack. */
static int
tree_depth_ok(xmlNode *root, int max)
{
	xmlNode *n = root;
	int depth = 1;

	while (n != NULL) {
		if (n->children != NULL && n->type == XML_ELEMENT_NODE) {
			if (++depth > max)
				return 0;
			n = n->children;
			continue;
		}
		while (n != NULL && n->next == NULL) {
			n = n->parent;
			depth--;
			if (n == root || n == NULL || depth <= 0)
				return 1;
		}
		if (n != NULL)
			n = n->next;
	}
	return 1;
}

static int
ns_is(const xmlNode *n, const char *href)
{
	return n->ns != NULL && n->ns->href != NULL && strcmp((const char *)n->ns->href, href) == 0;
}

static xmlNode *
first_element(xmlNode *n)
{
	for (n = n != NULL ? n->children : NULL; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return n;
	return NULL;
}

static int
parse_fault(xmlNode *fault, struct vmw_fault *f, struct sw_err *e)
{
	xmlNode *detail, *d;
	const char *type = NULL;
	char code[128];
	size_t len;

	memset(f, 0, sizeof(*f));
	x_text_trunc(vmw__x_child(fault, "faultstring"), f->message, sizeof(f->message));
	detail = vmw__x_child(fault, "detail");
	d = first_element(detail);
	if (d != NULL) {
		type = vmw__x_type(d);
		if (type == NULL) {
			/* <InvalidLoginFault> without xsi:type: the element names the fault. */
			len = strlen((const char *)d->name);
			if (len > 5 && strcmp((const char *)d->name + len - 5, "Fault") == 0)
				len -= 5;
			if (len >= sizeof(f->type))
				len = sizeof(f->type) - 1;
			memcpy(f->type, d->name, len);
			f->type[len] = '\0';
		}
	}
	if (type != NULL) {
		len = strlen(type);
		if (len >= sizeof(f->type))
			len = sizeof(f->type) - 1;
		memcpy(f->type, type, len);
		f->type[len] = '\0';
	}
	if (f->type[0] == '\0') {
		x_text_trunc(vmw__x_child(fault, "faultcode"), code, sizeof(code));
		if (code[0] == '\0')
			memcpy(code, "SOAPFault", sizeof("SOAPFault"));
		len = strlen(code);
		memcpy(f->type, code, len + 1);
	}
	return sw_errf(e, vmw__fault_code(f->type), "%s: %s", f->type,
	    f->message[0] != '\0' ? f->message : "(no message)");
}

/* Marks a parse that met a document type declaration (the context's _private). */
static char dtd_seen;

/*
 * SAX hook for the start of a DTD, in whatever encoding the document came:
 * the parse stops before a single declaration in it is read, so no entity
 * is ever declared, let alone substituted.
 */
static void
dtd_refuse(void *ud, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	xmlParserCtxt *ctx = ud;

	(void)name;
	(void)external_id;
	(void)system_id;
	ctx->_private = &dtd_seen;
	xmlStopParser(ctx);
}

int
vmw__parse(const char *body, size_t len, struct vmw__resp *ret, struct vmw_fault *fault,
    struct sw_err *e)
{
	xmlParserCtxt *ctx;
	xmlDoc *doc;
	xmlNode *root, *b, *first;
	struct vmw_fault f;
	int r, dtd;

	(void)vmw__global_init();
	if (len == 0)
		return sw_errf(e, SW_EFORMAT, "empty SOAP response");
	if (len > INT_MAX)
		return sw_errf(e, SW_ETOOBIG, "SOAP response of %zu bytes", len);
	/*
	 * SOAP forbids a DTD; refusing it outright rules out entity tricks
	 * (billion laughs, external entities) whatever libxml2's defaults are.
	 * The byte scan is a fast path for UTF-8 only: the SAX hook and the
	 * check after the parse refuse a DTD in every other encoding (UTF-16,
	 * UTF-32, EBCDIC, UTF-7 ...) too.
	 */
	if (memmem(body, len, "<!DOCTYPE", 9) != NULL || memmem(body, len, "<!ENTITY", 8) != NULL)
		return sw_errf(e, SW_EFORMAT, "SOAP response carries a DTD");
	ctx = xmlNewParserCtxt();
	if (ctx == NULL)
		return sw_errf(e, -ENOMEM, "out of memory parsing SOAP response");
	ctx->sax->internalSubset = dtd_refuse;
	ctx->sax->externalSubset = dtd_refuse;
	ctx->_private = NULL;
	doc = xmlCtxtReadMemory(ctx, body, (int)len, NULL, NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	dtd = ctx->_private == &dtd_seen ||
	    (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL));
	if (dtd) {
		xmlFreeDoc(doc);
		xmlFreeParserCtxt(ctx);
		return sw_errf(e, SW_EFORMAT, "SOAP response carries a DTD");
	}
	if (doc == NULL) {
		const xmlError *xe = xmlCtxtGetLastError(ctx);
		char msg[160] = "";

		if (xe != NULL && xe->message != NULL) {
			size_t ml = strlen(xe->message);

			if (ml >= sizeof(msg))
				ml = sizeof(msg) - 1;
			memcpy(msg, xe->message, ml);
			msg[ml] = '\0';
			while (ml > 0 && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
				msg[--ml] = '\0';
		}
		r = sw_errf(e, SW_EFORMAT, "SOAP response is not well-formed XML (line %d: %s)",
		    xe != NULL ? xe->line : 0, msg);
		xmlFreeParserCtxt(ctx);
		return r;
	}
	xmlFreeParserCtxt(ctx);
	root = xmlDocGetRootElement(doc);
	if (root == NULL || !tree_depth_ok(root, VMW_MAX_XML_DEPTH)) {
		r = sw_errf(e, root == NULL ? SW_EFORMAT : SW_ETOOBIG,
		    root == NULL ? "SOAP response has no root element" :
		    "SOAP response nested deeper than %d elements", VMW_MAX_XML_DEPTH);
		goto fail;
	}
	if (!name_is(root, "Envelope") || !ns_is(root, soapenv_ns)) {
		r = sw_errf(e, SW_EFORMAT, "SOAP response root is <%s>, not a SOAP envelope",
		    (const char *)root->name);
		goto fail;
	}
	b = vmw__x_child(root, "Body");
	if (b == NULL || !ns_is(b, soapenv_ns)) {
		r = sw_errf(e, SW_EFORMAT, "SOAP response has no Body");
		goto fail;
	}
	first = first_element(b);
	if (first == NULL) {
		r = sw_errf(e, SW_EFORMAT, "SOAP response has an empty Body");
		goto fail;
	}
	if (name_is(first, "Fault") && ns_is(first, soapenv_ns)) {
		r = parse_fault(first, &f, e);
		if (fault != NULL)
			*fault = f;
		goto fail;
	}
	ret->doc = doc;
	ret->body = first;
	return 0;
fail:
	xmlFreeDoc(doc);
	return r;
}
