/*
 * wanvae_cuda: the Wan VAE decoder (wanvae.h) on the GPU — bf16 activations
 * in NHWC, fp32 accumulation, built from gnet's layers (gnet.cuh: cuDNN
 * convolutions, fused RMS norm + SiLU, cuBLAS attention).  docs/WANVAE.md
 * has the design and the measurements.
 *
 * Same semantics as the CPU stream, frame for frame: every causal conv keeps
 * its last two input frames on the device (the cache diffusers calls
 * feat_cache), the time conv of an upsample3d skips the first latent
 * frame's frames, T latent frames give 1 + 4 (T - 1) frames.  Unlike the
 * CPU stream, a feed decodes its latent frames together, layer by layer
 * (batches of at most max_lat), so the convolutions see several frames at
 * once; memory is bounded by max_lat and the frame size, never by the
 * video's length.
 *
 * Numbers are not bit-identical to the CPU reference (bf16, like diffusers
 * run in bfloat16): tests/gpu/test_wanvae_gpu.cu measures the difference
 * and tests/gpu/it_wanvae_torch.sh the one against diffusers.
 *
 * Functions return 0 or -errno with err naming the failing call and shape.
 */
#ifndef EGR_WANVAE_CUDA_H
#define EGR_WANVAE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/decode/wanvae.h"

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;
struct egr_wanvae_gpu;
struct egr_wanvae_gpu_stream;

/*
 * Upload net's weights (bf16) to the current device, to run on stream.
 * net may be freed afterwards.  -EINVAL (err says why) for a net whose
 * channel counts are not multiples of 8 (every published Wan VAE's are).
 */
int egr_wanvae_gpu_create(const struct egr_wanvae *net, struct CUstream_st *stream, struct egr_wanvae_gpu **out,
			  char *err, size_t errlen);
void egr_wanvae_gpu_destroy(struct egr_wanvae_gpu *g);

/* conv shapes searched by cuDNN so far (each costs one synchronous search) */
uint64_t egr_wanvae_gpu_searches(const struct egr_wanvae_gpu *g);

/*
 * A video of lat_h x lat_w latents, decoded at most max_lat latent frames
 * at a time (fewer when the workspace for max_lat would pass
 * EGR_WANVAE_GPU_WS_MAX).  mean and std (z_dim values each, or NULL):
 * de-normalise the latents first, x / (1 / std) + mean, as the pipelines do.
 */
#define EGR_WANVAE_GPU_WS_MAX (12ull << 30)
int egr_wanvae_gpu_stream_create(struct egr_wanvae_gpu *g, uint32_t lat_h, uint32_t lat_w, uint32_t max_lat,
				 const float *mean, const float *std, struct egr_wanvae_gpu_stream **out, char *err,
				 size_t errlen);
void egr_wanvae_gpu_stream_free(struct egr_wanvae_gpu_stream *s);

/* device bytes the stream holds (workspace and caches) and its batch size */
size_t egr_wanvae_gpu_stream_bytes(const struct egr_wanvae_gpu_stream *s, uint32_t *batch);

/* frames the next feed of n latent frames emits: 1 + 4 (n - 1) first, then 4 n */
uint32_t egr_wanvae_gpu_stream_out_frames(const struct egr_wanvae_gpu_stream *s, uint32_t n);

/*
 * Decode n latent frames d_lat (device memory, [n][z_dim][h][w], dtype
 * EGR_DT_F16 or EGR_DT_F32) into d_out (device memory): *nout frames as
 * format (enum egr_format): EGR_FMT_RAW float32 planar [3][H][W] clamped to
 * [-1, 1] (the CPU stream's output), EGR_FMT_Y4M I420, otherwise RGB24,
 * quantised as egr_wanvae_quant_u8.  Asynchronous on the stream given to
 * create.  A failed feed leaves the stream unusable.
 */
int egr_wanvae_gpu_feed(struct egr_wanvae_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n,
			uint32_t format, void *d_out, uint32_t *nout, char *err, size_t errlen);

/*
 * Run the shapes of a first feed and of a full one on zero latents (into a
 * scratch the stream owns for the call), so cuDNN's searches happen now and
 * not in the middle of a job; then start the video over.  Synchronous.
 */
int egr_wanvae_gpu_stream_warm_up(struct egr_wanvae_gpu_stream *s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
