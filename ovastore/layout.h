/*
 * ovastore layout: where CloudStack keeps each kind of object on a
 * secondary store, as the install paths its management server records and
 * its own secondary-storage VM uses:
 *
 *   snapshots/<account>/<volume>/<backup>/<backup>     a volume snapshot
 *   template/tmpl/<account>/<template>/                a template's directory,
 *   template/tmpl/<account>/<template>/<name>          with template.properties
 *                                                      (ovastore/tprops.h) beside
 *   volumes/<account>/<volume>/<name>/<name>           an extracted volume
 *
 * <account>, <volume> and <template> are CloudStack's numeric ids (positive,
 * in decimal); <backup> and <name> are single safe file names (a lower-case
 * UUID, in practice: the snapshot's backup UUID or a command id, or a
 * template's unique name, see sw_unique_name_check()).  CloudStack records a
 * template's install path with ".ova" appended (.../<name>.ova);
 * ova_object_split() takes either form.  The results are
 * install paths for ova_inspect() and friends (objects) or directories
 * relative to the store root.
 *
 * Each builder writes out (outsz bytes, SW_PATH_MAX is always enough) only on
 * success; an id that is not positive is SW_EFORMAT, a name that is not a
 * safe single file name or a result longer than outsz is SW_EPATH.
 * Errors and conventions as in ovastore.h.
 */
#ifndef OVASTORE_LAYOUT_H
#define OVASTORE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define OVA_LAYOUT_SNAPSHOTS "snapshots"
#define OVA_LAYOUT_TEMPLATES "template/tmpl"
#define OVA_LAYOUT_VOLUMES   "volumes"

/* snapshots/<account_id>/<volume_id>/<backup>/<backup> */
int ova_layout_snapshot(int64_t account_id, int64_t volume_id, const char *backup, char *out,
    size_t outsz, struct sw_err *e);

/* template/tmpl/<account_id>/<template_id> (the directory) */
int ova_layout_template_dir(int64_t account_id, int64_t template_id, char *out, size_t outsz,
    struct sw_err *e);

/* template/tmpl/<account_id>/<template_id>/<name> (the object) */
int ova_layout_template(int64_t account_id, int64_t template_id, const char *name, char *out,
    size_t outsz, struct sw_err *e);

/* volumes/<account_id>/<volume_id>/<name>/<name> */
int ova_layout_volume(int64_t account_id, int64_t volume_id, const char *name, char *out,
    size_t outsz, struct sw_err *e);

#endif
