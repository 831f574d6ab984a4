/*
 * video: encoded video through FFmpeg's libraries.  The only module that
 * calls libavcodec, libavformat and libavutil (linked dynamically, as the
 * distribution builds them): egressd has no bitstream or container code.
 *
 *   check    the job's codec has an encoder in this libavcodec (job check
 *            time: the producer's plan refuses the job otherwise)
 *   enc      one segment: I420 frames in, a small MP4 (MOV for FFV1) file
 *            out that keeps what the encoder made: its extradata, every
 *            packet's pts and dts.  Its first frame is a keyframe (IDR),
 *            each segment is its own closed GOP.
 *   mux      the segments in order, stream copy, into the final MP4 (moov
 *            first: +faststart) or Matroska file, every timestamp checked
 *            against the frame grid (frame i at i * fps_den / fps_num s).
 *
 * Encoders: h264 libx264, hevc libx265, av1 libsvtav1, ffv1 FFmpeg's ffv1
 * (level 3, 4 slices with CRCs, range coder, large context).
 *
 * Colour: the frames are BT.601 limited-range 4:2:0 with centred chroma
 * (daemon/decode/frame.h), converted from the decoders' 8-bit RGB, which is
 * sRGB: matrix smpte170m, range tv, primaries bt709 (sRGB's), transfer bt709
 * (sRGB's curve is close to it, and every player knows bt709), chroma
 * location centre.  They are set on the encoder (H.264 and HEVC VUI, the AV1
 * sequence header; FFV1 has no such fields; AV1 cannot say "centre") and on
 * the container's stream (MP4 colr, Matroska Colour).
 *
 * Determinism: the same job keys give the same bytes.  The thread count is a
 * job key (threads) instead of the machine's core count, x264 uses frame
 * threads (sliced threads off), x265 a pool of exactly that many threads,
 * SVT-AV1 that many logical processors, FFV1 a fixed slice count; both
 * containers are written with AVFMT_FLAG_BITEXACT (Matroska's UIDs and
 * libavformat's version string would otherwise vary).
 *
 * Functions return 0 or -errno (an AVERROR mapped back where it is one, else
 * -EIO) with err holding one line naming the call and the file.
 */
#ifndef EGR_VIDEO_H
#define EGR_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "config/job.h"

/* 0 if js's codec can be encoded here; -ENOENT naming what is available. */
int egr_video_check(const struct egr_jobspec *js, char *err, size_t errlen);
/* The codecs this libavcodec encodes, "h264 (libx264), ..., ffv1 (ffv1)"; "none" if none. */
void egr_video_codecs(char *buf, size_t len);
/* "libavcodec 59.37.100, libavformat 59.27.100" (the libraries loaded) */
void egr_video_versions(char *buf, size_t len);

/* ---- one segment ---- */
struct egr_video_enc;
/* An encoder of js's codec for width x height frames, writing path (created or truncated). */
int egr_video_enc_open(struct egr_video_enc **out, const struct egr_jobspec *js, uint32_t width, uint32_t height,
		       const char *path, char *err, size_t errlen);
/* The next frame, I420 (width*height*3/2 bytes); its pts is the count of frames before it. */
int egr_video_enc_frame(struct egr_video_enc *e, const uint8_t *i420, char *err, size_t errlen);
/* Drain the encoder, write the trailer and close: the file is whole. */
int egr_video_enc_finish(struct egr_video_enc *e, char *err, size_t errlen);
void egr_video_enc_free(struct egr_video_enc *e);

/* ---- the final file ---- */
struct egr_video_mux;
/*
 * Start js's output file (format mp4 or mkv) at path (created or
 * truncated, so an existing file keeps its inode), its stream described by
 * the segment first_segment.
 */
int egr_video_mux_open(struct egr_video_mux **out, const struct egr_jobspec *js, const char *path,
		       const char *first_segment, char *err, size_t errlen);
/*
 * Append a segment holding frames first_frame .. first_frame+nframes-1
 * (its timestamps count from 0).  Refused unless it holds exactly that
 * many frames, on the frame grid, with the first segment's codec setup.
 */
int egr_video_mux_add(struct egr_video_mux *m, const char *segment, uint64_t first_frame, uint32_t nframes,
		      char *err, size_t errlen);
/* Write the index (MP4: moved before the media) and close. */
int egr_video_mux_finish(struct egr_video_mux *m, char *err, size_t errlen);
void egr_video_mux_free(struct egr_video_mux *m);

#endif
