/*
 * supervisor: the egressd master process.
 *
 * Creates the shared ring, fork+execs one producer and the worker pool
 * (roles as data: egressd-producer, egressd-worker, found beside the egressd
 * binary), watches the spool, queues jobs, reaps and respawns children,
 * reports results.  It never decodes, never writes frames and never touches
 * CUDA (a CUDA context does not survive fork: children exec fresh images).
 */
#ifndef EGR_SUPERVISOR_H
#define EGR_SUPERVISOR_H

#include "config/conf.h"

/*
 * Run the daemon until SIGTERM/SIGINT.  Returns a process exit code
 * (EGR_EXIT_*): 0 after a clean shutdown.
 */
int egr_supervisor_run(const struct egr_conf *c);

/*
 * Run one job file in the foreground (no spool) with the same processes,
 * print its result (or error) on stdout, and return 0 if it succeeded,
 * EGR_EXIT_JOB_FAILED if it failed, or another EGR_EXIT_* code when the
 * daemon itself could not run.
 */
int egr_supervisor_oneshot(const struct egr_conf *c, const char *job_path);

#endif
