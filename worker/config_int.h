/*
 * Internals shared by the files of the worker's configuration (config.h):
 *
 *   config.c           wrk_config_load(): read the file, check duplicates, apply
 *                      the environment, interpret every entry, final checks;
 *                      wrk_config_free() and the lookups
 *   config_ini.c       the INI reader and the SNAPWORKER_<SECTION>_<KEY>
 *                      overrides, both producing one flat list of entries
 *   config_sections.c  what each section's keys mean, and the defaults
 *   config_secret.c    secret files (password_file)
 *
 * The reader knows nothing of what keys mean and the interpreters nothing of
 * where a value came from: each entry carries its origin, and the caller
 * passes "file:line" or "environment VAR" down as the context of an error.
 */
#ifndef WRK_CONFIG_INT_H
#define WRK_CONFIG_INT_H

#include <stddef.h>

#include "common/err.h"
#include "worker/config.h"

#define CFG_FILE_MAX     (1024 * 1024)
#define CFG_LINE_MAX     4096
#define CFG_ENTRIES_MAX  4096
#define CFG_LIST_MAX     64       /* queues, vCenter URLs, allowed networks */
#define CFG_JOBS_MAX     64
#define CFG_NAME_MAX     128

struct wrk__cfg_entry {
	char *section;      /* "worker", "vcenter vc1" */
	char *key;
	char *value;
	unsigned line;      /* 0: from the environment */
	char *origin;       /* env variable name when line == 0 */
	int used;
};

struct wrk__cfg_entries {
	struct wrk__cfg_entry *v;
	size_t n, cap;
};

void wrk__cfg_entries_free(struct wrk__cfg_entries *es);

/*
 * config_ini.c: appends the entries of the INI file at path to es; errors
 * name path and line.  wrk__cfg_apply_env() then replaces or adds the
 * entries named by SNAPWORKER_<SECTION>_<KEY> variables of envp (their line
 * is 0 and origin the variable's name).
 */
int wrk__cfg_read_file(const char *path, struct wrk__cfg_entries *es, struct sw_err *e);
int wrk__cfg_apply_env(struct wrk__cfg_entries *es, char *const *envp, struct sw_err *e);

/*
 * A credential-set name or a zone key: short, and safe to put in a log line,
 * an env variable name, a queue name and a routing key.
 */
int wrk__cfg_valid_name(const char *s);

/* config_sections.c: the defaults, then one entry at a time; where prefixes errors. */
int wrk__cfg_defaults(struct wrk_config *cfg, struct sw_err *e);
int wrk__cfg_interpret(struct wrk_config *cfg, const struct wrk__cfg_entry *x, char **extract_dir,
    const char *where, struct sw_err *e);

/* Replaces *field with a copy of value. */
int wrk__cfg_set_str(char **field, const char *value, struct sw_err *e);
void wrk__cfg_list_free(char **v, size_t n);

#endif
