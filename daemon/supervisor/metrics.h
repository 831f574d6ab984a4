/*
 * metrics: the daemon's numbers in Prometheus' text exposition format
 * (version 0.0.4), for the supervisor to publish two ways:
 *
 *   [metrics] textfile = PATH   rewritten (temporary + rename, so a reader
 *                               never sees half a file) every second and at
 *                               exit: node_exporter's textfile collector;
 *   [metrics] listen = ADDR     GET /metrics over HTTP on a loopback address
 *                               (127.0.0.1:PORT, [::1]:PORT, localhost:PORT;
 *                               port 0 picks one and logs it).  A small
 *                               non-blocking responder in the supervisor's
 *                               poll loop: a few connections at a time, one
 *                               request each, closed after the answer or 5 s.
 *
 * Both are off when empty.  What it exports:
 *
 *   egressd_jobs_total{status="done|failed|cancelled"}   counter
 *   egressd_frames_total              frames written to disk (chunks, as the workers count them)
 *   egressd_bytes_written_total
 *   egressd_producer_blocked_seconds_total   backpressure: the producer waiting for a free slot
 *   egressd_gpu_kernel_seconds_total, egressd_gpu_active_seconds_total  (cuda backend)
 *   egressd_gpu_kernel_utilisation    gauge: the last GPU job's kernel time over its GPU window
 *   egressd_queue_depth               gauge: jobs waiting (incoming/ as last listed + queued rows)
 *   egressd_jobs_running, egressd_slots_busy, egressd_slots   gauges
 *   egressd_worker_restarts_total, egressd_producer_restarts_total   counters
 *   egressd_job_duration_seconds      histogram of done jobs' wall time
 *
 * Counters grow from the job table's own counters: each observation of a
 * row adds what changed since the last one (rows are told apart by their
 * queue time), so a job's frames count as they are written, and a job that
 * fails later keeps the frames it wrote.
 */
#ifndef EGR_METRICS_H
#define EGR_METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"
#include "shm/ring.h"

struct egr_metrics;

/*
 * Set up from c's [metrics] (open the listening socket).  0, or -errno
 * with err set: -EINVAL for a listen address that is not loopback or not
 * ADDR:PORT, -EADDRINUSE, ...
 */
int egr_metrics_open(struct egr_metrics **out, const struct egr_conf *c, char *err, size_t errlen);
/* SIGHUP: apply c's [metrics] (a changed listen address is re-bound); on error the old one stays. */
int egr_metrics_configure(struct egr_metrics *m, const struct egr_conf *c, char *err, size_t errlen);
/* Write the textfile one last time, close every socket, free m (NULL is fine). */
void egr_metrics_close(struct egr_metrics *m);

/* A table row as it is now (call for every non-empty row, about every 100 ms). */
void egr_metrics_observe(struct egr_metrics *m, const struct egr_job_view *j);
/* The row's job ended: how is "done", "failed" or "cancelled". */
void egr_metrics_ended(struct egr_metrics *m, const struct egr_job_view *j, const char *how);
/* A child died and will be respawned: role is "producer" or "worker". */
void egr_metrics_restart(struct egr_metrics *m, const char *role);
/* The gauges, as of now. */
void egr_metrics_gauges(struct egr_metrics *m, uint64_t queue_depth, uint32_t running, uint32_t slots_busy,
			uint32_t slots);

/* The exposition text, malloc'd (NULL when out of memory). */
char *egr_metrics_render(struct egr_metrics *m);

/* Poll loop: fill up to max pollfds (returns how many), then hand them back after ppoll. */
int egr_metrics_pollfds(struct egr_metrics *m, struct pollfd *p, int max);
void egr_metrics_serve(struct egr_metrics *m, const struct pollfd *p, int n);
/* Rewrite the textfile if a second has passed since the last write (now: monotonic ns). */
void egr_metrics_tick(struct egr_metrics *m, uint64_t now_ns);

#define EGR_METRICS_MAX_FDS 9	/* the listening socket and 8 connections */

#endif
