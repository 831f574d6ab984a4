/*
 * taehv_cuda: the TAEHV video decoder (taehv.h) on the GPU, built on the
 * layer kit daemon/decode/gnet.cuh: bf16 NHWC activations, every conv a
 * cuDNN convolution with fp32 accumulation, bias/ReLU, upsampling, the
 * TGrow channel-to-frame split and the final pixel shuffle + clamp +
 * quantisation in gnet's fused kernels.
 *
 * Frames are batched: each layer runs once per feed over all the frames the
 * feed has at that depth (n latent frames, n * stride after each TGrow), in
 * time order, which gives the same frames as the CPU stream's depth-first
 * walk: a MemBlock's "past" is the previous frame at its own depth, and the
 * order of frames at every depth is time order either way.  State across
 * feeds: one frame of each MemBlock's input (9 frames in all), zeros at the
 * start of the video, so memory is bounded by max_lat, not video length.
 * The first frames_to_trim decoder frames of the video are dropped as the
 * CPU stream drops them (cogvideox: only for an odd t_total).
 *
 * Not bit-identical to the CPU reference (bf16 activations: relative error
 * around 1e-2 on raw frames); tests/gpu/test_taehv_gpu.cu measures it.
 *
 * Usable from C and C++; the stream is the runtime's cudaStream_t (struct
 * CUstream_st *).  Functions return 0 or -errno with err naming the failing
 * call and shape.  Calls on one handle and its streams must be ordered (they
 * all run on the handle's stream).
 */
#ifndef EGR_TAEHV_CUDA_H
#define EGR_TAEHV_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/base/vocab.h"
#include "daemon/decode/taehv.h"

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;
struct egr_taehv_gpu;
struct egr_taehv_gpu_stream;

/*
 * Upload net's weights (bf16) for the current device; all work runs on
 * stream (a cudaStream_t).  net may be freed afterwards.  -EINVAL for a
 * channel count gnet cannot run (not a multiple of 8), -ENODEV without a
 * GPU, -ENOMEM, -EIO.
 */
int egr_taehv_gpu_create(const struct egr_taehv *net, struct CUstream_st *stream, struct egr_taehv_gpu **out,
			 char *err, size_t errlen);
/* Waits for the stream's work, frees everything. */
void egr_taehv_gpu_destroy(struct egr_taehv_gpu *g);

/*
 * One video: lat_h x lat_w latents, t_total latent frames in all (0:
 * unknown, refused for cogvideox, whose trim rule depends on its parity), at
 * most max_lat latent frames per feed (the buffers are sized for it).
 */
int egr_taehv_gpu_stream_create(struct egr_taehv_gpu *g, uint32_t lat_h, uint32_t lat_w, uint64_t t_total,
				uint32_t max_lat, struct egr_taehv_gpu_stream **out, char *err, size_t errlen);

/*
 * Frames the next feed of n latent frames will write (host arithmetic; the
 * last feed of the video includes what a flush emits: nothing, for TAEHV).
 */
uint32_t egr_taehv_gpu_stream_out_frames(const struct egr_taehv_gpu_stream *s, uint32_t n);

/*
 * Decode n (<= max_lat) latent frames d_lat (device memory, [n][C][h][w],
 * dtype EGR_DT_F16 or EGR_DT_F32), writing the frames they complete into
 * d_out (device memory) as format: EGR_FMT_RAW float32 planar [3][H][W] per
 * frame in [0, 1]; EGR_FMT_Y4M I420; EGR_FMT_PNG and EGR_FMT_NULL RGB24.
 * Asynchronous on the handle's stream; *nout = frames written (=
 * egr_taehv_gpu_stream_out_frames(s, n)).  The feed that reaches t_total
 * also flushes: the stream takes no more frames.  After an error the stream
 * only accepts _free.
 */
int egr_taehv_gpu_feed(struct egr_taehv_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n,
		       uint32_t format, void *d_out, uint32_t *nout, char *err, size_t errlen);
/* Waits for the stream's work, frees the stream's buffers. */
void egr_taehv_gpu_stream_free(struct egr_taehv_gpu_stream *s);

#ifdef __cplusplus
}
#endif

#endif
