/*
 * output_video: the output of format = mp4 | mkv, encoded by the worker
 * pool in parallel (docs/ENCODE.md).  workers/output.c dispatches here; the
 * contract of each step is output.h's, and this is what differs:
 *
 *   plan      frames are I420 (as for y4m); out_bytes is the raw spool's
 *             size; the job's codec must have an encoder here
 *   prepare   the temporary directory: "frames.yuv" (the raw spool) and
 *             "out", the final file, created empty now so that its inode
 *             is the one the journal records (layout's out_ino)
 *   write     a chunk's raw frames into the spool at frame * frame_bytes
 *   released  after the chunk's release: every segment (gop frames, the
 *             last one shorter) whose frames are now all written is
 *             encoded, by one worker (a lock per segment on the spool),
 *             into "seg.<k>.part", renamed "seg.<k>" when whole; its
 *             frames' spool blocks are then freed (a hole punched)
 *   finalize  encode any segment still missing (a worker died encoding
 *             it), concatenate the segments into "out" (stream copy),
 *             fsync, rename over the output, fsync the directory, remove
 *             the temporary directory; idempotent
 *
 * Segments follow gop alone, never chunks: chunk_frames changes nothing in
 * the output.  A segment is encoded from the spool, so whichever worker
 * finds it complete, and however often (a crash), the encoder gets the same
 * frames with the same settings: the same bytes.
 */
#ifndef EGR_OUTPUT_VIDEO_H
#define EGR_OUTPUT_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "config/job.h"
#include "shm/ring.h"

struct egr_wio;

/* the file in the temporary directory that becomes the output */
#define EGR_OUTPUT_VIDEO_FINAL "out"
struct egr_output_video;	/* a worker's state: one frame buffer, the test hook */

int egr_output_video_new(struct egr_ring *r, struct egr_wio *w, struct egr_output_video **out);
void egr_output_video_free(struct egr_output_video *v);
/* output.h's mid hook: armed, it fires half-way through a segment's encode or the final mux */
void egr_output_video_set_mid_hook(struct egr_output_video *v, int (*fn)(void *ctx, int fire), void *ctx);

/* After output.c's plan filled lay (frame size included): the codec check. */
int egr_output_video_plan(const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
			  size_t errlen);
int egr_output_video_prepare(const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
			     size_t errlen);
int egr_output_video_write(struct egr_output_video *v, const struct egr_job_view *j, const uint8_t *data,
			   uint32_t first, uint32_t n, char *err, size_t errlen);
int egr_output_video_released(struct egr_output_video *v, const struct egr_job_view *j, uint32_t first,
			      uint32_t n, char *err, size_t errlen);
/*
 * The finalizer's encoding: any segment still missing, then the segments
 * concatenated into "<tmp>/out" (stream copy) and fsynced.  output.c renames
 * that file into place (safepath.h's commit) and removes the directory.  v
 * may be NULL (no test hook, a buffer of its own).
 */
int egr_output_video_mux(struct egr_output_video *v, const struct egr_job_view *j, char *err, size_t errlen);

#endif
