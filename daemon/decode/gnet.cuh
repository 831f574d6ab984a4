/*
 * gnet: the layer kit the GPU video decoders (Wan VAE, TAEHV) are built
 * from.  Activations are NHWC frames of bf16 or fp16 (one gn_ctx, one
 * type), frames contiguous: a tensor of n frames of h x w pixels and C
 * channels is n * h * w * C elements, channel fastest.  C must be a multiple
 * of 8 (16-byte vectors; the tensor cores' own rule).
 *
 * Convolutions go to cuDNN (NHWC, fp32 accumulation on the tensor cores):
 * measured on the H100 (2026-11-25, .gpu/probe.cu) its implicit GEMM runs a
 * 3x3x3 conv of 192 or 384 channels at 590-620 TFLOP/s, better than a hand
 * kernel here would.  What cuDNN cannot fuse, the kernels of gnet.cu do in
 * one pass each: bias (+ ReLU), RMS norm (+ SiLU), nearest x2 upsampling with
 * the bias and a channel slice folded in, softmax, and the last step from
 * network output to 8-bit frames (RGB24, I420 or raw float).  Attention is
 * two cuBLAS GEMMs around the softmax, queries blocked so the score matrix
 * stays under a fixed size whatever the frame size.
 *
 * Causal time convolutions: a kt = 3 conv over n input frames (the caller
 * lays two history frames before the new ones) gives n - 2 output frames;
 * gn_conv runs it as one 3-D cuDNN convolution with no time padding.
 *
 * Every call is asynchronous on the context's stream (a conv shape not seen
 * before asks cuDNN's heuristics for its algorithm, once, and may grow the
 * workspace: that waits for the stream; the decoders warm their shapes up
 * before a job's first chunk).  The algorithm depends on the shape only, so
 * two processes decoding the same latents make the same bytes.  Calls return
 * 0 or -errno with err naming the failing call and shape.
 * Internal to the .cu files of daemon/decode: nothing in C includes it.
 */
#ifndef EGR_GNET_CUH
#define EGR_GNET_CUH

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "daemon/base/cuda_check.cuh"

/* on a CUDA error: err = "what: reason", return -errno (no cleanup to do) */
#define GN_CU(call, ...)                                                                                   \
	do {                                                                                               \
		cudaError_t e_ = (call);                                                                   \
		if (e_ != cudaSuccess)                                                                     \
			return egr_cuda_fail(e_, err, errlen, __VA_ARGS__);                                \
	} while (0)

/* a kernel launch's error */
#define GN_LAUNCHED(what) GN_CU(cudaGetLastError(), "%s launch", what)

/* propagate a negative return */
#define GN_TRY(x)                                                                                          \
	do {                                                                                               \
		int r_ = (x);                                                                              \
		if (r_ < 0)                                                                                \
			return r_;                                                                         \
	} while (0)

enum gn_dtype { GN_BF16 = 0, GN_F16 = 1 };

#define GN_ALGO_CACHE 256

struct gn_algo {
	uint32_t cin, cout, kt, ks, n, h, w;
	cudnnConvolutionFwdAlgo_t algo;
	size_t ws;
};

struct gn_ctx {
	int dtype;		/* enum gn_dtype */
	cudaStream_t s;
	cudnnHandle_t dnn;
	cublasHandle_t blas;
	cudnnTensorDescriptor_t xd, yd;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	void *ws;		/* cuDNN workspace, grown to the largest algorithm chosen */
	size_t ws_cap;
	uint32_t nalgo;
	struct gn_algo algo[GN_ALGO_CACHE];
	uint64_t searches;	/* conv shapes looked up (tests, logs) */
};

/* A convolution's weights on the device: [cout][kt][ks][ks][cin] in the
 * context's type (cuDNN's NHWC filter layout), bias fp32 [cout]. */
struct gn_conv {
	uint32_t cin, cout, kt, ks;	/* cout as stored: padded to a multiple of 8 */
	void *w;
	float *b;		/* NULL: no bias */
};

int gn_init(struct gn_ctx *g, int dtype, cudaStream_t s, char *err, size_t errlen);
void gn_fini(struct gn_ctx *g);

/* blocks for a grid-stride kernel over n items, per items a block (capped: the loop covers the rest) */
static inline unsigned gn_grid(size_t n, unsigned per)
{
	size_t b = (n + per - 1) / per;
	return (unsigned)(b < 1 ? 1 : b > (1u << 30) ? (1u << 30) : b);
}

/*
 * Upload a conv from PyTorch's layout w [cout][cin][kt][ks][ks] (kt = 1 for
 * 2-D), b [cout] or NULL; cout is zero-padded up to cout_pad (>= cout, a
 * multiple of 8) so small heads (RGB) still run on the tensor cores.
 * cin_off / cin_n select input channels [cin_off, cin_off + cin_n) of the
 * PyTorch weight (a conv over concatenated inputs split into two convs
 * accumulated; cin_n = cin for all).  Synchronous.
 */
int gn_conv_upload(struct gn_ctx *g, struct gn_conv *c, const float *w, const float *b, uint32_t cin,
		   uint32_t cout, uint32_t kt, uint32_t ks, uint32_t cin_off, uint32_t cin_n, uint32_t cout_pad,
		   char *err, size_t errlen);
void gn_conv_free(struct gn_conv *c);

/*
 * y = conv(x) + beta * y (no bias: see gn_bias), padding ks / 2 in space, no
 * padding in time.  x: n frames of h x w x c->cin; kt = 1: n output frames
 * (frames are a batch); kt > 1: n - kt + 1 output frames.  beta 0 or 1.
 */
int gn_conv(struct gn_ctx *g, const struct gn_conv *c, const void *x, uint32_t n, uint32_t h, uint32_t w,
	    void *y, float beta, char *err, size_t errlen);

/* y[p][c] += b[c] (b may be NULL: nothing), then ReLU if relu; npix pixels of C channels */
int gn_bias(struct gn_ctx *g, void *y, size_t npix, uint32_t C, const float *b, int relu, char *err,
	    size_t errlen);

/*
 * y = x / max(||x||_2 over channels, 1e-12) * sqrt(C) * gamma (F.normalize
 * then scale, as the Wan VAE's RMS norm), then SiLU if silu; per pixel,
 * statistics in fp32.  xb: a bias added to x first (NULL: none).  y may be x.
 */
int gn_rmsnorm(struct gn_ctx *g, const void *x, const float *xb, size_t npix, uint32_t C, const float *gamma,
	       int silu, void *y, char *err, size_t errlen);

/*
 * Nearest upsampling by up (1 or 2) of nf frames of h x w pixels, C channels
 * taken from channel coff of source pixels that are src_pc channels apart
 * (a slice of a wider tensor), bias (NULL: none; indexed coff + c) added.
 * Source frame i starts at src + i * src_fs elements, destination frame i
 * (up*h x up*w x C, dense) at dst + i * dst_fs elements.
 */
int gn_upsample(struct gn_ctx *g, const void *src, size_t src_fs, uint32_t src_pc, uint32_t coff,
		const float *bias, uint32_t nf, uint32_t h, uint32_t w, uint32_t C, uint32_t up, void *dst,
		size_t dst_fs, char *err, size_t errlen);

/*
 * Single-head attention per frame, as F.scaled_dot_product_attention:
 * qkv holds nf frames of N = h * w pixels of 3C channels (q, k, v), out nf
 * frames of N x C: out = softmax(q k^T / sqrt(C)) v.  Scores in fp32 (in a
 * scratch of at most `scratch` bytes: queries are blocked to fit), softmax
 * in fp32, probabilities in the context's type.
 */
int gn_attention(struct gn_ctx *g, const void *qkv, uint32_t nf, uint32_t N, uint32_t C, void *out,
		 void *scratch, size_t scratch_bytes, char *err, size_t errlen);

/* Score scratch gn_attention wants for N pixels (it works with less, more slowly) */
size_t gn_attention_scratch(uint32_t N);

/*
 * Network output to frames.  x: nf frames of h x w pixels, C channels (>= 3
 * p^2; C is the stride), bias b (NULL: none).  Output pixel (Y, X) of colour
 * k reads pixel (Y / p, X / p), channel k p^2 + (Y % p) ys + (X % p) xs
 * (pixel shuffle: ys = p, xs = 1; Wan's unpatchify: ys = 1, xs = p).
 * v = clamp(x + b, lo, hi); format EGR_FMT_RAW writes v as float planar
 * [3][ph][pw] per frame; otherwise u = (v + off) * mul is quantised as
 * egr_taesd_quant_u8 (clamp to [0, 1], floor(u * 255 + 0.5)) and written as
 * RGB24 (png) or I420 (y4m, frame.h's integer BT.601).
 */
struct gn_emit_args {
	uint32_t nf, h, w, C, p, ys, xs;
	const float *b;
	float lo, hi, off, mul;
	uint32_t format;
};
int gn_emit(struct gn_ctx *g, const void *x, const struct gn_emit_args *a, void *dst, char *err, size_t errlen);

/*
 * Latents [n][C][hw] (float32 if f32, else float16) to NHWC, each value
 * through one transform on the way: with mean (else NULL) x / inv + mean
 * per channel (inv = 1 / std computed by the caller in binary32: the Wan
 * pipelines' de-normalisation); with tanh_clamp, tanh(x / 3) * 3 (TAEHV's
 * input Clamp).
 */
int gn_latents(struct gn_ctx *g, const void *lat, int f32, uint32_t n, uint32_t C, size_t hw, const float *inv,
	       const float *mean, int tanh_clamp, void *dst, char *err, size_t errlen);

/* copy nf frames of fbytes bytes, in frame order (overlapping ranges with dst before src are safe) */
int gn_copy_frames(struct gn_ctx *g, void *dst, const void *src, uint32_t nf, size_t fbytes, char *err,
		   size_t errlen);

#endif
