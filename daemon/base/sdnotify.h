/*
 * sdnotify: systemd's service notification protocol, without libsystemd.
 *
 * With Type=notify, systemd passes $NOTIFY_SOCKET, an AF_UNIX datagram
 * socket (a path, or "@name" in the abstract namespace), and waits for
 * "READY=1" before it considers the service started.  "STOPPING=1" says the
 * service is going down, "STATUS=..." is shown by `systemctl status`, and
 * with WatchdogSec= the service must send "WATCHDOG=1" at least every
 * $WATCHDOG_USEC microseconds, or systemd kills and restarts it.  Each
 * message is one datagram (systemd's notify-selfcontained-example.c).
 *
 * Only the supervisor (the unit's main process: NotifyAccess=main) calls
 * these.  Every function is a no-op returning 0 when $NOTIFY_SOCKET is not
 * set (not under systemd, or not Type=notify); 1 when the message was sent;
 * -errno when it could not be (the caller may log it; the service goes on).
 */
#ifndef EGR_SDNOTIFY_H
#define EGR_SDNOTIFY_H

#include <stdint.h>

/* Send state (one or more "KEY=value" lines). */
int egr_sdnotify(const char *state);
int egr_sdnotify_ready(void);		/* READY=1 */
int egr_sdnotify_stopping(void);	/* STOPPING=1 */
int egr_sdnotify_watchdog(void);	/* WATCHDOG=1 */
/* STATUS=<text>, formatted; newlines in the text become blanks */
int egr_sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval in microseconds: $WATCHDOG_USEC when it is meant for
 * this process ($WATCHDOG_PID unset or equal to getpid()), else 0 (none).
 */
uint64_t egr_sdnotify_watchdog_usec(void);

/*
 * For a main loop: sends WATCHDOG=1 when half the interval has passed since
 * the last one (now_ns on CLOCK_MONOTONIC), and returns the nanoseconds until
 * the next is due, to bound the loop's wait; UINT64_MAX without a watchdog.
 * Not thread-safe (one caller: the supervisor's loop).
 */
uint64_t egr_sdnotify_watchdog_tick(uint64_t now_ns);

#endif
