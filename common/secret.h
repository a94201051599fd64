/*
 * Secret files (passwords): the one rule every snapworker program applies.
 *
 * A secret file is a regular file (not a symbolic link, FIFO or device), owned
 * by the user reading it or by root, with no group or other permission bits
 * (0600 or stricter), holding one non-empty line of at most SW_SECRET_MAX
 * bytes (a trailing newline, or CR LF, is dropped).  Each refusal names the
 * fix (chmod 600, chown, the file itself instead of a link).  Secrets never
 * come from argv; reading never blocks (a FIFO is refused, not waited on).
 */
#ifndef COMMON_SECRET_H
#define COMMON_SECRET_H

#include "common/err.h"

#define SW_SECRET_MAX 4096

/*
 * Reads the secret in path into *ret (malloc'ed, NUL-terminated; wipe it with
 * explicit_bzero before free).  SW_EAUTH for a file that breaks the rule,
 * SW_EFORMAT for one that is not one line, SW_ETOOBIG, or -errno.
 */
int sw_secret_read(const char *path, char **ret, struct sw_err *e);

#endif
