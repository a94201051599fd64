#include "worker/notify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"

static uint64_t wd_ms;       /* 0: not asked for, or not yet read */
static int wd_read;
static uint64_t wd_last;

void
wrk_notify_ready(unsigned slots)
{
	char msg[128];

	(void)snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%u job slot(s) connected to the broker",
	    slots);
	/* A failure to reach the manager is not the daemon's failure: systemd times out the start. */
	if (sd_notify(0, msg) < 0)
		log_debug("sd_notify READY failed");
}

void
wrk_notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping: running jobs finish within the grace period");
}

void
wrk_notify_status(const char *status)
{
	char msg[256];

	if (snprintf(msg, sizeof(msg), "STATUS=%s", status) >= (int)sizeof(msg))
		return;
	(void)sd_notify(0, msg);
}

uint64_t
wrk_notify_watchdog_ms(void)
{
	uint64_t usec = 0;

	if (!wd_read) {
		/* unset_environment=0: a job's child (none today) is not a reason to lose it. */
		if (sd_watchdog_enabled(0, &usec) > 0)
			wd_ms = usec / 1000 ? usec / 1000 : 1;
		wd_read = 1;
	}
	return wd_ms;
}

void
wrk_notify_watchdog(uint64_t now_ms)
{
	uint64_t iv = wrk_notify_watchdog_ms();

	if (iv == 0)
		return;
	/* Half the interval, as sd_watchdog_enabled(3) advises: a late tick still lands in time. */
	if (wd_last != 0 && now_ms - wd_last < iv / 2)
		return;
	wd_last = now_ms;
	(void)sd_notify(0, "WATCHDOG=1");
}

int
wrk_notify_all_alive(const uint64_t *beats, unsigned n, uint64_t now_ms, uint64_t stall_ms,
    unsigned *ret_stalest)
{
	uint64_t worst = 0;
	unsigned i, idx = 0;

	for (i = 0; i < n; i++) {
		uint64_t silent = beats[i] != 0 && now_ms > beats[i] ? now_ms - beats[i] : 0;

		if (silent > worst) {
			worst = silent;
			idx = i;
		}
	}
	if (ret_stalest != NULL)
		*ret_stalest = idx;
	return worst <= stall_ms;
}
