/*
 * libFuzzer target for the worker's configuration loader: the INI reader,
 * the environment overrides and every section's interpreter.  The input is
 * a configuration file, optionally followed by a line "%%ENV" and then
 * environment variables, one per line (SNAPWORKER_WORKER_JOBS=4).  The file
 * goes through a memfd, so the loader reads it exactly as it reads
 * /etc/snapworker/snapworker.conf.
 */
/* FUZZ_MODULES: worker worker/commands proto vmware ovastore common */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/io.h"
#include "worker/config.h"

#define ENV_MAX 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char env_marker[] = "\n%%ENV\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *env[ENV_MAX + 1];
	char *envbuf = NULL, path[64];
	const uint8_t *mark;
	size_t filelen = size, nenv = 0;
	struct wrk_config *cfg = NULL;
	struct sw_err e;
	int fd;

	mark = memmem(data, size, env_marker, sizeof(env_marker) - 1);
	if (mark != NULL) {
		size_t off = (size_t)(mark - data) + sizeof(env_marker) - 1;
		char *p;

		filelen = (size_t)(mark - data) + 1;
		envbuf = strndup((const char *)data + off, size - off);
		if (envbuf == NULL)
			return 0;
		for (p = envbuf; *p != '\0' && nenv < ENV_MAX;) {
			char *nl = strchr(p, '\n');
			if (nl != NULL)
				*nl = '\0';
			env[nenv++] = p;
			if (nl == NULL)
				break;
			p = nl + 1;
		}
	}
	env[nenv] = NULL;
	sw_err_clear(&e);
	fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (sw_write_all(fd, data, filelen) < 0)
		abort();
	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (wrk_config_load(path, env, &cfg, &e) == 0) {
		size_t i;

		/* What the daemon reads afterwards must be there and consistent. */
		if (cfg->jobs == 0 || cfg->nqueues == 0 || cfg->name == NULL ||
		    cfg->amqp_urls == NULL || cfg->namqp_urls == 0 || cfg->log_level == NULL)
			abort();
		for (i = 0; i < cfg->nstores; i++)
			if (wrk_config_store(cfg, cfg->stores[i].url) == NULL ||
			    cfg->stores[i].extract_dir == NULL)
				abort();
		for (i = 0; i < cfg->nvcenters; i++)
			if (wrk_config_vcenter(cfg, cfg->vcenters[i].name) != &cfg->vcenters[i] ||
			    !wrk_vcenter_allows(&cfg->vcenters[i], cfg->vcenters[i].urls[0]))
				abort();
		wrk_config_free(cfg);
	} else if (cfg != NULL || e.msg[0] == '\0') {
		/* A failure leaves *ret alone and always says why. */
		abort();
	}
	close(fd);
	free(envbuf);
	return 0;
}
