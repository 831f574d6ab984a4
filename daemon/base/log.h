/*
 * log: one line per message on stderr, prefixed with journald's "<N>"
 * priority so that systemd files each line at the right level.
 *
 * Every process of egressd (supervisor, producer, workers, tools) logs through
 * here.  A line is formatted into one buffer and written with one write(2), so
 * lines from several processes sharing the journal stream never interleave.
 * Safe to call from any thread; not async-signal-safe.
 */
#ifndef EGR_LOG_H
#define EGR_LOG_H

#include <stdarg.h>

enum {
	EGR_LOG_ERR = 3,
	EGR_LOG_WARNING = 4,
	EGR_LOG_NOTICE = 5,
	EGR_LOG_INFO = 6,
	EGR_LOG_DEBUG = 7,
};

/*
 * Process exit codes, shared by every role.  The supervisor reads them:
 * EGR_EXIT_CONFIG and EGR_EXIT_UNAVAILABLE are "fatal": respawning would fail
 * the same way, so the supervisor stops instead of looping (systemd's
 * RestartPreventExitStatus= lists them too).
 */
enum {
	EGR_EXIT_OK = 0,
	EGR_EXIT_JOB_FAILED = 1,	/* --oneshot: the job failed */
	EGR_EXIT_USAGE = 64,		/* bad command line (EX_USAGE) */
	EGR_EXIT_UNAVAILABLE = 69,	/* backend unusable, e.g. no GPU (EX_UNAVAILABLE) */
	EGR_EXIT_SOFTWARE = 70,		/* internal error (EX_SOFTWARE) */
	EGR_EXIT_OSERR = 71,		/* a system call failed (EX_OSERR) */
	EGR_EXIT_CONFIG = 78,		/* bad configuration (EX_CONFIG) */
};

/* role appears in every line: "egressd[worker 1234]: ..." */
void egr_log_init(const char *role);
/* lines above this level are dropped (default EGR_LOG_INFO) */
void egr_log_set_level(int level);
void egr_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void egr_vlog(int prio, const char *fmt, va_list ap);

#define egr_err(...) egr_log(EGR_LOG_ERR, __VA_ARGS__)
#define egr_warn(...) egr_log(EGR_LOG_WARNING, __VA_ARGS__)
#define egr_notice(...) egr_log(EGR_LOG_NOTICE, __VA_ARGS__)
#define egr_info(...) egr_log(EGR_LOG_INFO, __VA_ARGS__)
#define egr_debug(...) egr_log(EGR_LOG_DEBUG, __VA_ARGS__)

/*
 * Error strings for library-style code: modules return -errno and fill a
 * caller's buffer with "call(\"object\"): reason".  egr_errf formats into it.
 */
void egr_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * strerror, except where the usual words mislead: EFBIG ("File too large")
 * is almost always a file-size limit, so it says which.
 */
const char *egr_log_strerror(int errnum);

/* CLOCK_MONOTONIC in nanoseconds */
unsigned long long egr_log_now_ns(void);

#endif
