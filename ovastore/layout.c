/*
 * CloudStack's directory layout on a secondary store (see layout.h).  The
 * paths are built in a scratch buffer and copied out only when whole, so a
 * failure leaves out as it was.
 */
#include "ovastore/layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/path.h"

static int
check_id(const char *what, int64_t id, struct sw_err *e)
{
	if (id <= 0)
		return sw_errf(e, SW_EFORMAT, "%s %" PRId64 " is not a positive id", what, id);
	return 0;
}

static int
check_name(const char *what, const char *name, struct sw_err *e)
{
	if (name == NULL || sw_name_check(name, NULL) < 0)
		return sw_errf(e, SW_EPATH, "%s is not a safe file name", what);
	return 0;
}

/* Copies the finished path p of kind what to out. */
static int
put(const char *what, const char *p, char *out, size_t outsz, struct sw_err *e)
{
	size_t n = strlen(p);

	if (n >= outsz)
		return sw_errf(e, SW_EPATH, "%s path longer than %zu bytes", what,
		    outsz > 0 ? outsz - 1 : 0);
	memcpy(out, p, n + 1);
	return 0;
}

/* ROOT/<account>/<id>/<name>/<name>: a snapshot or an extracted volume. */
static int
account_id_name(const char *root, const char *what, const char *id_what, int64_t account_id,
    int64_t id, const char *name_what, const char *name, char *out, size_t outsz,
    struct sw_err *e)
{
	char p[SW_PATH_MAX];
	int r;

	if ((r = check_id("account", account_id, e)) < 0 ||
	    (r = check_id(id_what, id, e)) < 0 ||
	    (r = check_name(name_what, name, e)) < 0)
		return r;
	if (sw_path_fmt(p, sizeof(p), "%s/%" PRId64 "/%" PRId64 "/%s/%s", root, account_id, id,
	    name, name) < 0)
		return sw_errf(e, SW_EPATH, "%s path too long", what);
	return put(what, p, out, outsz, e);
}

int
ova_layout_snapshot(int64_t account_id, int64_t volume_id, const char *backup, char *out,
    size_t outsz, struct sw_err *e)
{
	return account_id_name(OVA_LAYOUT_SNAPSHOTS, "snapshot", "volume", account_id, volume_id,
	    "backup", backup, out, outsz, e);
}

int
ova_layout_template_dir(int64_t account_id, int64_t template_id, char *out, size_t outsz,
    struct sw_err *e)
{
	char p[SW_PATH_MAX];
	int r;

	if ((r = check_id("account", account_id, e)) < 0 ||
	    (r = check_id("template", template_id, e)) < 0)
		return r;
	if (sw_path_fmt(p, sizeof(p), OVA_LAYOUT_TEMPLATES "/%" PRId64 "/%" PRId64, account_id,
	    template_id) < 0)
		return sw_errf(e, SW_EPATH, "template path too long");
	return put("template", p, out, outsz, e);
}

int
ova_layout_template(int64_t account_id, int64_t template_id, const char *name, char *out,
    size_t outsz, struct sw_err *e)
{
	char dir[SW_PATH_MAX], p[SW_PATH_MAX];
	int r;

	if ((r = ova_layout_template_dir(account_id, template_id, dir, sizeof(dir), e)) < 0 ||
	    (r = check_name("template name", name, e)) < 0)
		return r;
	if (sw_path_fmt(p, sizeof(p), "%s/%s", dir, name) < 0)
		return sw_errf(e, SW_EPATH, "template path too long");
	return put("template", p, out, outsz, e);
}

int
ova_layout_volume(int64_t account_id, int64_t volume_id, const char *name, char *out,
    size_t outsz, struct sw_err *e)
{
	return account_id_name(OVA_LAYOUT_VOLUMES, "volume", "volume", account_id, volume_id,
	    "volume name", name, out, outsz, e);
}
