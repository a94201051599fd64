/*
 * The command implementations behind wrk_cmd_run() (worker/job.h): one file
 * per command family (snapshot, template, volume) on top of ovastore/ and
 * vmware/, a dispatcher (dispatch.c) and what they share.  Every error is
 * classified (protocol code, retryable) where it is made, with wrk__fail().
 *
 * Choices made here where PROTOCOL.md leaves room:
 *
 *  - RegisterTemplate stores the template as the new-format object
 *    template/tmpl/<account_id>/<template_id>/<name>, where <name> is the
 *    command id (a UUID: unique, a safe file name, and the same for a
 *    redelivered command, which is what makes the command idempotent), and
 *    writes template/tmpl/<account_id>/<template_id>/template.properties
 *    (OVA_TPROPS_NAME, ovastore/tprops.h) after the object's meta file.  template.properties is
 *    the commit record of a registration: an object whose directory has no
 *    matching template.properties is the debris of an interrupted attempt and
 *    is replaced.  A template directory whose template.properties names
 *    another, intact object is refused (the template is registered already).
 *  - ExtractTemplate writes <extract_dir>/<NAME>-<command id>.ova (or
 *    <command id>.ova when that would be longer than a file name), so a
 *    redelivery finds its own output; download.path is that file name.
 *    Legacy objects are hard-linked (or reflinked, or copied when the
 *    extract area is on another file system); new-format objects are packed.
 *  - DeleteTemplate removes what CloudStack's own DeleteTemplate would: every
 *    file of the template directory (template/tmpl/<account>/<template>),
 *    template.properties first so that CloudStack's template listing never
 *    sees a half-deleted template, then the metas and archives, then the
 *    rest, then the directory; DeleteSnapshot the files of the snapshot's
 *    directory whose name holds its name (CloudStack's glob), metas first.
 *    Neither reads a meta to find the files, so a broken or planted meta
 *    cannot orphan them; links are unlinked, never followed; a
 *    subdirectory is refused with nothing removed (ova_delete_template(),
 *    ova_delete_snapshot()).  Both report format NONE and no sizes when
 *    the named object was not there, and list every file removed.
 *  - CopyTemplate copies template.properties too, after the object's meta.
 *
 * Event result ownership: every string and array that wrk_cmd_run() puts in
 * ev->result is allocated; wrk_cmd_result_clear() frees them (the daemon
 * calls it once the event is built).
 */
#ifndef WRK_COMMANDS_H
#define WRK_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct proto_event;

#endif
