/*
 * status: what clients (egressctl, the Python package) see of a job while
 * the daemon has it, and the spool directories they use besides spool.h's.
 *
 *   <spool>/tmp/        submitters write a job file here, then rename() it
 *                       into incoming/ (Maildir's way; setgid, sticky,
 *                       group-writable: 3770 when egressd creates it)
 *   <spool>/status/     ID.status for every job in the job table (below)
 *   <spool>/cancel/     ID: a client's request to cancel job ID (cancel.h);
 *                       same mode as tmp/
 *   <spool>/cancelled/  ID and ID.error ("cancelled by uid N")
 *   <spool>/staging/    latents clients write for their jobs (same mode as
 *                       tmp/; the daemon never removes anything there)
 *
 * A job's id is its name in active/, done/, failed/ and cancelled/.
 *
 * ID.status is INI, rewritten through a temporary and rename() (never half
 * a file; not fsynced: it is a view, the records in done/, failed/ and
 * cancelled/ are the truth):
 *
 *   [status]
 *   job = ID
 *   state = queued | running | cancelling
 *   owner_uid = 1000        the job file's owner (absent when unknown)
 *   frames_done = 64        frames of the chunks written to disk (from their count), at most frames_total
 *   frames_total = 240      0 until the producer has read the latents
 *   frames_per_s = 123.4    frames_done over the time since started_at
 *   eta_s = 1.4             (absent until there is a rate)
 *   queued_at = 1700000000.123   seconds since the epoch; started_at once started
 *   updated_at = 1700000001.456
 *   output = /data/clip.y4m
 *
 * It is written when the job enters the table, when its state changes and
 * at most every EGR_STATUS_PERIOD_MS while frames are being written, and
 * removed once the job's record exists: a client that finds neither reads
 * the record directories again.
 */
#ifndef EGR_STATUS_H
#define EGR_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/ring.h"

#define EGR_STATUS_PERIOD_MS 200

struct egr_status_row {
	char name[EGR_JOB_NAME_MAX];	/* "" while the row is free */
	long uid;			/* job file's owner, -1 unknown */
	long cancel_uid;		/* -1, or who cancelled it (cancel.c) */
	uint32_t state_written;		/* enum egr_job_state last written, 0 none */
	uint32_t frames_written;
	uint64_t written_ns;		/* monotonic */
};

struct egr_status {
	char spool[4096];
	struct egr_status_row rows[EGR_RING_JOBS];
};

/*
 * Create tmp/, status/, cancel/, cancelled/ and staging/ if missing, and
 * remove the status files a killed run left.  0 or -errno with err set.
 */
int egr_status_init(struct egr_status *st, const char *spool, char *err, size_t errlen);
/* Job name entered table row from the job file at path (its owner is read here). */
void egr_status_queued(struct egr_status *st, uint32_t row, const char *name, const char *path);
/* Row j was seen now (monotonic ns): rewrite its file if it is due. */
void egr_status_observe(struct egr_status *st, const struct egr_job_view *j, uint64_t now_ns);
/* Rewrite row j's file now (a cancel was accepted). */
void egr_status_force(struct egr_status *st, const struct egr_job_view *j);
/* The row's job has its record: its status file goes, the row is free. */
void egr_status_ended(struct egr_status *st, uint32_t row);
/* Frames on disk: what chunks written * chunk_frames latent frames decode to (egr_layout_frames_upto). */
uint32_t egr_status_frames_done(const struct egr_job_view *j);

#endif
