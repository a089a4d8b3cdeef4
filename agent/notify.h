/* notify.h - the sd_notify protocol, without libsystemd.
 *
 * systemd (Type=notify) passes $NOTIFY_SOCKET, a unix datagram socket path
 * (or an abstract one, written with a leading '@'); we send it lines such as
 * "READY=1", "STOPPING=1", "STATUS=..." and "WATCHDOG=1". Without
 * $NOTIFY_SOCKET every call is a no-op that answers 0. */
#ifndef ES_AGENT_NOTIFY_H
#define ES_AGENT_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* 0 sent, 0 when there is no socket, or a negative errno. */
int ag_notify(const char *state);
int ag_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval systemd asked for (WATCHDOG_USEC, checked against
 * WATCHDOG_PID), in microseconds; 0 when none. */
uint64_t ag_watchdog_usec(void);

#endif
