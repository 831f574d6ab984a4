/*
 * taesd_cuda: the TAESD decoder on the GPU — fp16 activations in NHWC,
 * fp32 accumulation on the tensor cores (mma.sync m16n8k16), one fused
 * kernel per conv:
 *   - bias, ReLU and a Block's residual add in the conv's epilogue;
 *   - the nearest x2 upsample folded into the next conv's input loads;
 *   - the Clamp (tanh(x/3)*3) and NCHW -> NHWC fp16 in one small prep kernel;
 *   - the output conv's epilogue clamps, quantises (egr_taesd_quant_u8's
 *     rule) and writes RGB24 or I420 (frame.h's integer BT.601 conversion)
 *     straight into the caller's device buffer.
 * flux_2 nets (taef2) add their pool branch before Blocks 3, 4, 5 (three
 * small fp32 kernels at latent resolution: 1x1 conv, whole-frame GroupNorm
 * statistics per (frame, group), normalise + ReLU + 1x1 conv added in place).
 * Weights are converted and uploaded once, in egr_taesd_gpu_create.
 *
 * GPU frames are not bit-identical to the CPU reference: the network runs in
 * fp16 (relative error around 1e-3 on the raw output), so an 8-bit code may
 * differ by one or, rarely, a few.  tests/gpu/test_taesd_gpu.cu measures it.
 *
 * Usable from C: the stream is passed as the runtime's cudaStream_t
 * (struct CUstream_st *).  Functions return 0 or -errno with err naming the
 * failing call ("cudaMalloc(taesd workspace, 402653184 bytes): out of memory").
 */
#ifndef EGR_TAESD_CUDA_H
#define EGR_TAESD_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/base/vocab.h"
#include "daemon/decode/taesd.h"

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;
struct egr_taesd_gpu;

/*
 * Output layouts by enum egr_format: EGR_FMT_RAW float32 [n][3][8h][8w], the
 * raw network output (tests); EGR_FMT_Y4M per frame Y, Cb, Cr planes,
 * 8h*8w*3/2 bytes; EGR_FMT_PNG per frame [8h][8w][3] bytes (RGB24).
 */

/*
 * Select device, convert and upload net's weights (fp16), prepare kernels.
 * net may be freed afterwards.  -ENODEV without a usable GPU.
 */
int egr_taesd_gpu_create(const struct egr_taesd *net, int device, struct egr_taesd_gpu **out, char *err,
			 size_t errlen);

/*
 * Decode nframes latents d_lat ([n][C][h][w], dtype an enum egr_dtype, device
 * memory) into d_out (device memory, nframes * frame bytes of format, an enum egr_format),
 * asynchronously on stream, on the current device (the one of create).
 * The workspace (three fp16 activation tensors at full resolution, about
 * 400 MB per 1024x1024 frame, capped at EGR_TAESD_GPU_WS_MAX with frames
 * processed in groups beyond that) is allocated on first use of a size and
 * kept; growing it synchronises stream once.  Calls on one handle must be
 * ordered (same stream, or the caller orders them): they share the
 * workspace.  0, -EINVAL (bad arguments), -ENOMEM, -EIO (a CUDA error).
 */
int egr_taesd_gpu_decode(struct egr_taesd_gpu *g, struct CUstream_st *stream, const void *d_lat, uint32_t dtype,
			 uint32_t nframes, uint32_t h, uint32_t w, uint32_t format, void *d_out, char *err,
			 size_t errlen);

#define EGR_TAESD_GPU_WS_MAX (4ull << 30)

void egr_taesd_gpu_destroy(struct egr_taesd_gpu *g);
/*
 * 1 when g runs its 64 -> 64 convs of 64 pixels wide or more on the Hopper
 * kernel (taesd_wgmma.cuh): a compute capability 9.0 device and
 * EGR_TAESD_WGMMA not "0" when g was created.  For tests and benchmarks.
 */
int egr_taesd_gpu_uses_wgmma(const struct egr_taesd_gpu *g);

#ifdef __cplusplus
}
#endif

#endif
