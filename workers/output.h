/*
 * output: a job's output on disk, from creation to the final rename.  The
 * only code that names, creates, writes, finalizes or removes a job's
 * output; the producer, the workers and the supervisor call it (a new output
 * format lives here and in its encoder under formats/).
 *
 *   plan      (producer)   sizes, offsets and an unpredictable temporary
 *                          name, chosen before anything exists
 *   prepare   (producer)   the overwrite policy and the inputs checked, then
 *                          the temporary output created (O_EXCL, no link
 *                          followed) before any decode: y4m: header + every
 *                          block reserved (a full disk fails the job before
 *                          the GPU starts); png: a directory
 *   write     (worker)     one chunk's frames at their fixed place, so
 *                          several workers fill one output in parallel and a
 *                          rewrite after a crash writes the same bytes
 *   released  (worker)     after the chunk's release: mp4 and mkv encode the
 *                          segments it completed (workers/output_video.h)
 *   finalize  (worker)     fsync, rename into place under the overwrite
 *                          policy, fsync the directory; idempotent
 *   discard   (supervisor) remove the temporary output of a failed job
 *
 * Every path goes through daemon/base/safepath.h: the output's directory is
 * reached from an allow_write root without following links, and each
 * process checks it is the directory (and the temporary the file) the
 * producer created, by inode recorded in the ring, so nothing swapped in
 * while the job runs receives a byte.  The temporary sits beside the output
 * (same filesystem: the rename is atomic) as ".<base>.<64 random bits>.
 * egressd-tmp".  Functions return 0 or -errno with err holding one line that
 * names the user's output path.
 *
 * format = null has no output: plan chooses no temporary name, prepare,
 * discard, finalize and the journal do nothing, and write only adds the
 * chunk's bytes to the job's bytes_written.  Its frames are y4m's (I420,
 * egr_output_pixels), so the copy out of the GPU moves the bytes a y4m job's
 * would.
 */
#ifndef EGR_OUTPUT_H
#define EGR_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "config/job.h"
#include "shm/ring.h"

struct egr_wio;
struct egr_safepath;
struct egr_safepath_file;

/*
 * The frame layout the decoders write for an output format: EGR_FMT_Y4M
 * (I420: y4m, mp4, mkv, null) or EGR_FMT_PNG (RGB24).
 */
uint32_t egr_output_pixels(uint32_t format);
/*
 * Fill lay's output fields (frame_bytes, header_bytes, out_bytes, tmp_name,
 * tmp_path) for frames frames of width x height; the caller fills the rest.
 */
int egr_output_plan(const struct egr_jobspec *spec, const char *job_name, uint32_t width, uint32_t height,
		    uint32_t frames, struct egr_job_layout *lay, char *err, size_t errlen);
/*
 * Check the output against the overwrite policy and the job's inputs (the
 * output may not be one of them), then create the temporary output at
 * lay->tmp_name; lay receives its identity and its directory's.
 */
int egr_output_prepare(const struct egr_safepath *sp, const struct egr_jobspec *spec, struct egr_job_layout *lay,
		       const struct egr_safepath_file *inputs, size_t ninputs, char *err, size_t errlen);
/* Remove the temporary output; 0 if there is none (or none can be reached). */
int egr_output_discard(const struct egr_safepath *sp, const struct egr_jobspec *spec,
		       const struct egr_job_layout *lay);
/* The temporary output opened for writing (the naive pipeline); an fd or -errno. */
int egr_output_open(const struct egr_safepath *sp, const struct egr_job_view *j, char *err, size_t errlen);

/*
 * The journal: a small file beside the job file in <spool>/active/
 * (".<job>.egressd-wal"; a shared spool's daemon has active/<host_id>.
 * <instance>/), written before the temporary output exists (its name)
 * and again once it does (its device and inode), removed after the
 * job's record is in done/ or failed/.  It survives a supervisor crash, which the ring
 * does not, so the next start can tell what the killed run left:
 *
 *   write     (producer) output path and temporary name (and identity once
 *             lay holds it)
 *   recover   (supervisor, rerunning active/) 1 when the output in place is
 *             the one this job wrote (the run was killed after the rename,
 *             before its record): the job is done, not rerun; 0 otherwise.
 *             The killed run's temporary output is taken away first, and
 *             only then is the output looked at, so a finalizer of that run
 *             still alive (shared spool: a daemon that lost its lease)
 *             either committed before (1) or commits nothing
 *   end       (supervisor) remove it
 */
int egr_output_journal_path(const char *job_path, char *buf, size_t len);
int egr_output_journal_write(const char *journal, const struct egr_jobspec *spec,
			     const struct egr_job_layout *lay, char *err, size_t errlen);
int egr_output_recover(const struct egr_safepath *sp, const char *journal, char *err, size_t errlen);
void egr_output_journal_end(const char *journal);

/* A worker's writing state: open files per job, iovecs.  Not thread-safe. */
struct egr_output_writer;
int egr_output_writer_new(struct egr_ring *r, struct egr_wio *wio, const struct egr_safepath *sp,
			  struct egr_output_writer **out);
void egr_output_writer_free(struct egr_output_writer *w);

/* egr_output_write's "the job failed meanwhile: drop the chunk, report nothing" */
#define EGR_OUTPUT_DROPPED 1
/*
 * Write frames first .. first+n-1 (data: n frames of lay.frame_bytes) of
 * job j.  0, EGR_OUTPUT_DROPPED, or -errno.  Adds to the job's write stats.
 */
int egr_output_write(struct egr_output_writer *w, const struct egr_job_view *j, const uint8_t *data,
		     uint32_t first, uint32_t n, char *err, size_t errlen);
/*
 * After the chunk first .. first+n-1 of j was released as written: work that
 * needs frames beyond the chunk (mp4, mkv: encode the segments it completed;
 * a no-op for y4m and png).  0 or -errno; the error fails the job.
 */
int egr_output_released(struct egr_output_writer *w, const struct egr_job_view *j, uint32_t first, uint32_t n,
			char *err, size_t errlen);
/* fsync + rename into place + fsync the directory.  w may be NULL (no cached files). */
int egr_output_finalize(struct egr_output_writer *w, const struct egr_safepath *sp, const struct egr_job_view *j,
			char *err, size_t errlen);
/* Close files of jobs that are over, so no deleted file stays open. */
void egr_output_sweep(struct egr_output_writer *w);

#ifdef EGR_TESTING
/*
 * Test builds: fn(ctx, 0) says whether this chunk's write is to be torn;
 * if so, fn(ctx, 1) runs once half of it is on disk (and kills the worker).
 */
void egr_output_set_mid_hook(struct egr_output_writer *w, int (*fn)(void *ctx, int fire), void *ctx);
#endif

#endif
