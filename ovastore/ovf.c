/*
 * OVF descriptor reading: the References and DiskSection of an envelope,
 * enough to know which files make the object and its virtual size.  The
 * descriptor comes from vCenter or, for RegisterTemplate, from anybody on the
 * internet: it is parsed with the network off, without entity substitution,
 * without any DTD, and within a size and a depth bound.
 */
#include "ovastore/ovastore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/num.h"
#include "common/path.h"
#include "ovastore/ova_int.h"

#define OVF_NS1 "http://schemas.dmtf.org/ovf/envelope/1"
#define OVF_NS2 "http://schemas.dmtf.org/ovf/envelope/2"
#define OVF_MAX_FILES OVA_TAR_MAX_MEMBERS

static int
ovf_ns_version(const xmlNode *n)
{
	if (n == NULL || n->ns == NULL || n->ns->href == NULL)
		return 0;
	if (strcmp((const char *)n->ns->href, OVF_NS1) == 0)
		return 1;
	if (strcmp((const char *)n->ns->href, OVF_NS2) == 0)
		return 2;
	return 0;
}

static int
is_ovf_elem(const xmlNode *n, const char *local, int version)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0 &&
	    ovf_ns_version(n) == version;
}

/*
 * An ovf:-qualified attribute.  Some generators leave the prefix off; an
 * unqualified attribute of the same name is accepted as a fallback.
 */
static char *
get_attr(xmlNode *n, const char *name, int version)
{
	xmlChar *v = xmlGetNsProp(n, (const xmlChar *)name,
	    (const xmlChar *)(version == 2 ? OVF_NS2 : OVF_NS1));

	if (v == NULL)
		v = xmlGetNoNsProp(n, (const xmlChar *)name);
	if (v == NULL)
		return NULL;
	/* Copy into malloc memory so that callers free() it like everything else. */
	{
		char *s = strdup((const char *)v);

		xmlFree(v);
		return s;
	}
}

/*
 * ovf:capacityAllocationUnits as a multiplier: DMTF programmatic units
 * ("byte", "byte * 2^30", "byte * 10^9", "byte * 1024") and the names older
 * VMware tools used ("KB", "MegaBytes", ...; binary multiples).
 */
static int
parse_units(const char *s, uint64_t *ret)
{
	static const struct { const char *name; unsigned shift; } names[] = {
		{ "kb", 10 }, { "kilobytes", 10 }, { "mb", 20 }, { "megabytes", 20 },
		{ "gb", 30 }, { "gigabytes", 30 }, { "tb", 40 }, { "terabytes", 40 },
	};
	char t[64];
	size_t i, n = 0;
	uint64_t base, exp, mul = 1;
	const char *p;

	for (p = s; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			continue;
		if (n + 1 >= sizeof(t))
			return -EINVAL;
		t[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	}
	t[n] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(t, names[i].name) == 0) {
			*ret = (uint64_t)1 << names[i].shift;
			return 0;
		}
	if (strncmp(t, "byte", 4) != 0)
		return -EINVAL;
	p = t + 4;
	if (*p == '\0') {
		*ret = 1;
		return 0;
	}
	if (*p++ != '*')
		return -EINVAL;
	{
		char num[32];
		const char *caret = strchr(p, '^');
		size_t len = caret ? (size_t)(caret - p) : strlen(p);

		if (len == 0 || len >= sizeof(num))
			return -EINVAL;
		memcpy(num, p, len);
		num[len] = '\0';
		if (sw_parse_u64(num, 1, UINT32_MAX, &base) < 0)
			return -EINVAL;
		if (caret == NULL) {
			*ret = base;
			return 0;
		}
		if (sw_parse_u64(caret + 1, 0, 63, &exp) < 0)
			return -EINVAL;
	}
	while (exp-- > 0) {
		if (mul > UINT64_MAX / base)
			return -ERANGE;
		mul *= base;
	}
	*ret = mul;
	return 0;
}

static int
add_file(struct ova_ovf *o, xmlNode *n, struct sw_err *e)
{
	struct ova_ovf_file *f;
	char *size;
	size_t i;
	struct sw_err pe;

	sw_err_clear(&pe);
	if (o->nfiles >= OVF_MAX_FILES)
		return sw_errf(e, SW_ETOOBIG, "OVF: more than %d files", OVF_MAX_FILES);
	f = realloc(o->files, (o->nfiles + 1) * sizeof(*f));
	if (f == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	o->files = f;
	f = &o->files[o->nfiles];
	memset(f, 0, sizeof(*f));
	o->nfiles++;
	f->id = get_attr(n, "id", o->version);
	f->href = get_attr(n, "href", o->version);
	if (f->id == NULL || f->href == NULL)
		return sw_errf(e, SW_EFORMAT, "OVF line %d: File without ovf:id or ovf:href",
		    n->line);
	if (sw_name_check(f->href, &pe) < 0 || ova__member_reserved(f->href))
		return sw_errf(e, SW_EFORMAT, "OVF line %d: File href is not a plain file name: %s",
		    n->line, pe.code ? pe.msg : OVA__RESERVED_WHY);
	if ((size = get_attr(n, "size", o->version)) != NULL) {
		int r = sw_parse_u64(size, 0, (uint64_t)INT64_MAX, &f->size);

		free(size);
		if (r < 0)
			return sw_errf(e, SW_EFORMAT, "OVF line %d: File '%s': bad ovf:size",
			    n->line, f->href);
		f->has_size = 1;
	}
	for (i = 0; i + 1 < o->nfiles; i++)
		if (strcmp(o->files[i].id, f->id) == 0 || strcmp(o->files[i].href, f->href) == 0)
			return sw_errf(e, SW_EFORMAT, "OVF line %d: File '%s' listed twice", n->line,
			    f->href);
	return 0;
}

static int
add_disk(struct ova_ovf *o, xmlNode *n, struct sw_err *e)
{
	struct ova_ovf_disk *d;
	char *cap = NULL, *units = NULL, *pop = NULL;
	uint64_t c = 0, mul = 1;
	int r = 0;

	if (o->ndisks >= OVA_MAX_DISKS)
		return sw_errf(e, SW_ETOOBIG, "OVF: more than %d disks", OVA_MAX_DISKS);
	d = realloc(o->disks, (o->ndisks + 1) * sizeof(*d));
	if (d == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	o->disks = d;
	d = &o->disks[o->ndisks];
	memset(d, 0, sizeof(*d));
	d->file_index = -1;
	o->ndisks++;
	d->disk_id = get_attr(n, "diskId", o->version);
	d->file_ref = get_attr(n, "fileRef", o->version);
	d->format = get_attr(n, "format", o->version);
	if (d->disk_id == NULL) {
		r = sw_errf(e, SW_EFORMAT, "OVF line %d: Disk without ovf:diskId", n->line);
		goto out;
	}
	cap = get_attr(n, "capacity", o->version);
	units = get_attr(n, "capacityAllocationUnits", o->version);
	pop = get_attr(n, "populatedSize", o->version);
	if (cap == NULL || sw_parse_u64(cap, 0, UINT64_MAX, &c) < 0) {
		r = sw_errf(e, SW_EFORMAT, "OVF line %d: Disk '%s': missing or non-numeric ovf:capacity",
		    n->line, d->disk_id);
		goto out;
	}
	if (units != NULL && parse_units(units, &mul) < 0) {
		r = sw_errf(e, SW_EFORMAT,
		    "OVF line %d: Disk '%s': unsupported ovf:capacityAllocationUnits '%.40s'",
		    n->line, d->disk_id, units);
		goto out;
	}
	if (mul != 0 && c > (uint64_t)INT64_MAX / mul) {
		r = sw_errf(e, SW_EFORMAT, "OVF line %d: Disk '%s': capacity overflows", n->line,
		    d->disk_id);
		goto out;
	}
	d->capacity = c * mul;
	if (pop != NULL && sw_parse_u64(pop, 0, (uint64_t)INT64_MAX, &d->populated_size) < 0) {
		r = sw_errf(e, SW_EFORMAT, "OVF line %d: Disk '%s': bad ovf:populatedSize", n->line,
		    d->disk_id);
		goto out;
	}
out:
	free(cap);
	free(units);
	free(pop);
	return r;
}

/* Rejects documents deeper than the bound (iterative: no recursion on hostile input). */
static int
check_depth(xmlNode *root, struct sw_err *e)
{
	xmlNode *n = root;
	int depth = 1;

	for (;;) {
		if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
			n = n->children;
			if (++depth > OVA_OVF_MAX_DEPTH)
				return sw_errf(e, SW_ETOOBIG, "OVF: nested deeper than %d levels",
				    OVA_OVF_MAX_DEPTH);
			continue;
		}
		while (n != root && n->next == NULL) {
			n = n->parent;
			depth--;
		}
		if (n == root)
			return 0;
		n = n->next;
	}
}

static int
walk(struct ova_ovf *o, xmlNode *env, struct sw_err *e)
{
	xmlNode *sec, *n;
	size_t i;
	long k;
	int r;

	for (sec = env->children; sec != NULL; sec = sec->next) {
		if (is_ovf_elem(sec, "References", o->version)) {
			for (n = sec->children; n != NULL; n = n->next)
				if (is_ovf_elem(n, "File", o->version) && (r = add_file(o, n, e)) < 0)
					return r;
		} else if (is_ovf_elem(sec, "DiskSection", o->version)) {
			for (n = sec->children; n != NULL; n = n->next)
				if (is_ovf_elem(n, "Disk", o->version) && (r = add_disk(o, n, e)) < 0)
					return r;
		}
	}
	for (i = 0; i < o->ndisks; i++) {
		struct ova_ovf_disk *d = &o->disks[i];

		if (d->file_ref != NULL) {
			for (k = 0; k < (long)o->nfiles; k++)
				if (strcmp(o->files[k].id, d->file_ref) == 0)
					break;
			if (k == (long)o->nfiles)
				return sw_errf(e, SW_EFORMAT,
				    "OVF: Disk '%s' refers to unknown file '%s'", d->disk_id,
				    d->file_ref);
			d->file_index = k;
		}
		if (o->virtual_size > UINT64_MAX - d->capacity)
			return sw_errf(e, SW_EFORMAT, "OVF: total capacity overflows");
		o->virtual_size += d->capacity;
	}
	return 0;
}

/* Marks a parse that met a document type declaration (the context's _private). */
static char dtd_seen;

/*
 * SAX hook for the start of a DTD in any encoding (the byte scan below sees
 * only ASCII-compatible ones): the parse stops before a declaration in it
 * is read.
 */
static void
dtd_refuse(void *ud, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	xmlParserCtxtPtr ctx = ud;

	(void)name;
	(void)external_id;
	(void)system_id;
	ctx->_private = &dtd_seen;
	xmlStopParser(ctx);
}

/*
 * Reads buf into a document (*ret_doc, free with xmlFreeDoc) whose root is
 * an OVF Envelope (*ret_root), with every check of ova_ovf_parse().
 */
static int
read_doc(const void *buf, size_t len, xmlDocPtr *ret_doc, xmlNode **ret_root, struct sw_err *e)
{
	static const char doctype[] = "<!DOCTYPE";
	xmlParserCtxtPtr ctx = NULL;
	xmlDocPtr doc = NULL;
	xmlNode *root;
	const unsigned char *b = buf;
	int r;

	if (len > OVA_OVF_MAX)
		return sw_errf(e, SW_ETOOBIG, "OVF: larger than %d bytes", OVA_OVF_MAX);
	if (len == 0)
		return sw_errf(e, SW_EFORMAT, "OVF: empty");
	/*
	 * A DTD is how entity bombs and external entities get in; OVF never
	 * needs one.  The byte scan is sound only for ASCII-compatible
	 * encodings, so anything with NUL bytes (UTF-16/32) is refused too.
	 */
	if (memchr(b, '\0', len) != NULL)
		return sw_errf(e, SW_EFORMAT, "OVF: NUL byte (only UTF-8 descriptors are accepted)");
	if (memmem(b, len, doctype, sizeof(doctype) - 1) != NULL)
		return sw_errf(e, SW_EFORMAT, "OVF: document type declarations are not accepted");
	xmlInitParser();
	if ((ctx = xmlNewParserCtxt()) == NULL)
		return sw_errf(e, -ENOMEM, "out of memory");
	ctx->sax->internalSubset = dtd_refuse;
	ctx->sax->externalSubset = dtd_refuse;
	ctx->_private = NULL;
	doc = xmlCtxtReadMemory(ctx, buf, (int)len, "ovf.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (ctx->_private == &dtd_seen) {
		r = sw_errf(e, SW_EFORMAT, "OVF: document type declarations are not accepted");
		goto out;
	}
	if (doc == NULL) {
		const xmlError *xe = xmlCtxtGetLastError(ctx);

		r = sw_errf(e, SW_EFORMAT, "OVF: not well-formed XML (line %d: %.200s)",
		    xe ? xe->line : 0, xe && xe->message ? xe->message : "parse error");
		/* libxml2 messages end in a newline: drop it from the one-line reason. */
		if (e != NULL && strlen(e->msg) > 1 && e->msg[strlen(e->msg) - 2] == '\n') {
			size_t l = strlen(e->msg);

			e->msg[l - 2] = ')';
			e->msg[l - 1] = '\0';
		}
		goto out;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		r = sw_errf(e, SW_EFORMAT, "OVF: document type declarations are not accepted");
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL || strcmp((const char *)root->name, "Envelope") != 0 ||
	    ovf_ns_version(root) == 0) {
		r = sw_errf(e, SW_EFORMAT, "OVF: root element is not an OVF 1.x/2.x Envelope");
		goto out;
	}
	if ((r = check_depth(root, e)) < 0)
		goto out;
	*ret_doc = doc;
	*ret_root = root;
	doc = NULL;
	r = 0;
out:
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctx);
	return r;
}

int
ova_ovf_parse(const void *buf, size_t len, struct ova_ovf **ret_ovf, struct sw_err *e)
{
	xmlDocPtr doc = NULL;
	xmlNode *root = NULL;
	struct ova_ovf *o = NULL;
	int r;

	if ((r = read_doc(buf, len, &doc, &root, e)) < 0)
		return r;
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	o->version = ovf_ns_version(root);
	if ((r = walk(o, root, e)) < 0)
		goto out;
	*ret_ovf = o;
	o = NULL;
	r = 0;
out:
	ova_ovf_free(o);
	xmlFreeDoc(doc);
	return r;
}

int
ova_ovf_rename_files(const void *buf, size_t len, const char *const *hrefs, size_t n,
    char **ret_buf, size_t *ret_len, struct sw_err *e)
{
	xmlDocPtr doc = NULL;
	xmlNode *root = NULL, *sec, *f;
	xmlChar *out = NULL;
	size_t k = 0;
	int version, outlen = 0, r;

	if ((r = read_doc(buf, len, &doc, &root, e)) < 0)
		return r;
	version = ovf_ns_version(root);
	for (sec = root->children; sec != NULL; sec = sec->next) {
		if (!is_ovf_elem(sec, "References", version))
			continue;
		for (f = sec->children; f != NULL; f = f->next) {
			xmlAttr *a;

			if (!is_ovf_elem(f, "File", version))
				continue;
			if (k >= n) {
				r = sw_errf(e, SW_EINTERNAL, "OVF: more files than names");
				goto out;
			}
			/* The attribute get_attr() reads: ovf:href, else a bare href. */
			a = xmlHasNsProp(f, (const xmlChar *)"href",
			    (const xmlChar *)(version == 2 ? OVF_NS2 : OVF_NS1));
			if (a == NULL)
				a = xmlHasNsProp(f, (const xmlChar *)"href", NULL);
			if (a == NULL) {
				r = sw_errf(e, SW_EFORMAT, "OVF line %d: File without ovf:href", f->line);
				goto out;
			}
			if ((a->ns != NULL ? xmlSetNsProp(f, a->ns, (const xmlChar *)"href",
			    (const xmlChar *)hrefs[k]) : xmlSetProp(f, (const xmlChar *)"href",
			    (const xmlChar *)hrefs[k])) == NULL) {
				r = sw_errf(e, -ENOMEM, "out of memory");
				goto out;
			}
			k++;
		}
	}
	if (k != n) {
		r = sw_errf(e, SW_EINTERNAL, "OVF: %zu files, %zu names", k, n);
		goto out;
	}
	xmlDocDumpMemoryEnc(doc, &out, &outlen, "UTF-8");
	if (out == NULL || outlen <= 0) {
		r = sw_errf(e, -ENOMEM, "OVF: serialising failed");
		goto out;
	}
	if ((size_t)outlen > OVA_OVF_MAX) {
		r = sw_errf(e, SW_ETOOBIG, "OVF: larger than %d bytes once renamed", OVA_OVF_MAX);
		goto out;
	}
	if ((*ret_buf = malloc((size_t)outlen + 1)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*ret_buf, out, (size_t)outlen);
	(*ret_buf)[outlen] = '\0';
	*ret_len = (size_t)outlen;
	r = 0;
out:
	xmlFree(out);
	xmlFreeDoc(doc);
	return r;
}

long
ova_ovf_find_file(const struct ova_ovf *ovf, const char *href)
{
	size_t i;

	for (i = 0; ovf != NULL && href != NULL && i < ovf->nfiles; i++)
		if (strcmp(ovf->files[i].href, href) == 0)
			return (long)i;
	return -1;
}

void
ova_ovf_free(struct ova_ovf *ovf)
{
	size_t i;

	if (ovf == NULL)
		return;
	for (i = 0; i < ovf->nfiles; i++) {
		free(ovf->files[i].id);
		free(ovf->files[i].href);
	}
	for (i = 0; i < ovf->ndisks; i++) {
		free(ovf->disks[i].disk_id);
		free(ovf->disks[i].file_ref);
		free(ovf->disks[i].format);
	}
	free(ovf->files);
	free(ovf->disks);
	free(ovf);
}
