/*
 * The service manager's side of the daemon's life (sd_notify(3)): READY=1
 * once every job slot has connected to the broker, STOPPING=1 when a stop
 * signal arrives, WATCHDOG=1 while the main loop turns, STATUS= lines.
 * Everything is a no-op outside systemd (no $NOTIFY_SOCKET), so the same
 * binary runs under docker, a shell or a test.
 */
#ifndef WRK_NOTIFY_H
#define WRK_NOTIFY_H

#include <stdint.h>

void wrk_notify_ready(unsigned slots);
void wrk_notify_stopping(void);
void wrk_notify_status(const char *status);

/*
 * The watchdog interval the service manager expects pings at (WatchdogSec=,
 * through $WATCHDOG_USEC and $WATCHDOG_PID), in ms; 0 when no watchdog is set.
 */
uint64_t wrk_notify_watchdog_ms(void);

/*
 * Pings the watchdog if half its interval has passed since the last ping;
 * now_ms: sw_mono_ms().  Call from the loop whose liveness it vouches for.
 */
void wrk_notify_watchdog(uint64_t now_ms);

/*
 * Whether every thread the watchdog vouches for has shown life: beats[i] is
 * the sw_mono_ms() of thread i's last turn (0: not started, ignored).  A
 * thread silent for more than stall_ms makes it 0 and names it in
 * *ret_stalest (the index of the longest-silent thread, when not NULL).
 */
int wrk_notify_all_alive(const uint64_t *beats, unsigned n, uint64_t now_ms, uint64_t stall_ms,
    unsigned *ret_stalest);

#endif
