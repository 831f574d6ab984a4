/*
 * gnet: cuDNN convolutions and the fused NHWC kernels around them
 * (gnet.cuh has the contract).  Every kernel moves 16-byte vectors of 8
 * channels; statistics and arithmetic are fp32, storage bf16 or fp16.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

extern "C" {
#include "daemon/base/log.h"
#include "daemon/base/vocab.h"
#include "daemon/decode/frame.h"
}
#include "daemon/decode/gnet.cuh"
#include "daemon/decode/quant_cuda.cuh"

#define GN_DNN(call, ...)                                                                                  \
	do {                                                                                               \
		cudnnStatus_t s_ = (call);                                                                 \
		if (s_ != CUDNN_STATUS_SUCCESS) {                                                          \
			char w_[200];                                                                      \
			snprintf(w_, sizeof(w_), __VA_ARGS__);                                             \
			egr_errf(err, errlen, "%s: %s", w_, cudnnGetErrorString(s_));                      \
			return s_ == CUDNN_STATUS_ALLOC_FAILED ? -ENOMEM : -EIO;                           \
		}                                                                                          \
	} while (0)

#define GN_BLAS(call, what)                                                                                \
	do {                                                                                               \
		cublasStatus_t s_ = (call);                                                                \
		if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
			egr_errf(err, errlen, "%s: cuBLAS status %d", what, (int)s_);                      \
			return s_ == CUBLAS_STATUS_ALLOC_FAILED ? -ENOMEM : -EIO;                          \
		}                                                                                          \
	} while (0)

/* ---- element access: 8 channels as one 16-byte vector ---------------- */

template <typename T> struct gn_t;
template <> struct gn_t<__nv_bfloat16> {
	static __device__ __forceinline__ float f(__nv_bfloat16 v) { return __bfloat162float(v); }
	static __device__ __forceinline__ __nv_bfloat16 t(float v) { return __float2bfloat16_rn(v); }
};
template <> struct gn_t<__half> {
	static __device__ __forceinline__ float f(__half v) { return __half2float(v); }
	static __device__ __forceinline__ __half t(float v) { return __float2half_rn(v); }
};

template <typename T> __device__ __forceinline__ void gn_ld8(const T *p, float *v)
{
	uint4 u = *(const uint4 *)p;
	const T *e = (const T *)&u;
#pragma unroll
	for (int i = 0; i < 8; i++)
		v[i] = gn_t<T>::f(e[i]);
}

template <typename T> __device__ __forceinline__ void gn_st8(T *p, const float *v)
{
	uint4 u;
	T *e = (T *)&u;
#pragma unroll
	for (int i = 0; i < 8; i++)
		e[i] = gn_t<T>::t(v[i]);
	*(uint4 *)p = u;
}

/* ---- context ---------------------------------------------------------- */

int gn_init(struct gn_ctx *g, int dtype, cudaStream_t s, char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->dtype = dtype;
	g->s = s;
	GN_DNN(cudnnCreate(&g->dnn), "cudnnCreate");
	GN_DNN(cudnnSetStream(g->dnn, s), "cudnnSetStream");
	GN_BLAS(cublasCreate(&g->blas), "cublasCreate");
	GN_BLAS(cublasSetStream(g->blas, s), "cublasSetStream");
	GN_DNN(cudnnCreateTensorDescriptor(&g->xd), "cudnnCreateTensorDescriptor");
	GN_DNN(cudnnCreateTensorDescriptor(&g->yd), "cudnnCreateTensorDescriptor");
	GN_DNN(cudnnCreateFilterDescriptor(&g->wd), "cudnnCreateFilterDescriptor");
	GN_DNN(cudnnCreateConvolutionDescriptor(&g->cd), "cudnnCreateConvolutionDescriptor");
	return 0;
}

void gn_fini(struct gn_ctx *g)
{
	if (g->cd)
		cudnnDestroyConvolutionDescriptor(g->cd);
	if (g->wd)
		cudnnDestroyFilterDescriptor(g->wd);
	if (g->yd)
		cudnnDestroyTensorDescriptor(g->yd);
	if (g->xd)
		cudnnDestroyTensorDescriptor(g->xd);
	if (g->blas)
		cublasDestroy(g->blas);
	if (g->dnn)
		cudnnDestroy(g->dnn);
	if (g->ws)
		cudaFree(g->ws);
	memset(g, 0, sizeof(*g));
}

/* host float -> the context's 16-bit type, round to nearest even */
static uint16_t gn_h16(int dtype, float v)
{
	if (dtype == GN_BF16) {
		__nv_bfloat16 b = __float2bfloat16_rn(v);
		return *(uint16_t *)&b;
	}
	__half h = __float2half_rn(v);
	return *(uint16_t *)&h;
}

int gn_conv_upload(struct gn_ctx *g, struct gn_conv *c, const float *w, const float *b, uint32_t cin,
		   uint32_t cout, uint32_t kt, uint32_t ks, uint32_t cin_off, uint32_t cin_n, uint32_t cout_pad,
		   char *err, size_t errlen)
{
	const size_t taps = (size_t)kt * ks * ks, n = (size_t)cout_pad * taps * cin_n;
	uint16_t *hw = NULL;
	float *hb = NULL;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (cout_pad < cout || cout_pad % 8 || cin_n % 8 || cin_off + cin_n > cin) {
		egr_errf(err, errlen, "gnet: conv %u -> %u (input channels %u..%u, output padded to %u) needs channel counts that are multiples of 8",
			 cin, cout, cin_off, cin_off + cin_n, cout_pad);
		return -EINVAL;
	}
	hw = (uint16_t *)calloc(n, sizeof(*hw));
	hb = (float *)calloc(cout_pad, sizeof(*hb));
	if (!hw || !hb) {
		egr_errf(err, errlen, "gnet: out of memory converting a %u -> %u conv", cin, cout);
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t o = 0; o < cout; o++) {
		for (size_t t = 0; t < taps; t++)
			for (uint32_t i = 0; i < cin_n; i++)
				hw[((size_t)o * taps + t) * cin_n + i] =
					gn_h16(g->dtype, w[((size_t)o * cin + cin_off + i) * taps + t]);
		hb[o] = b ? b[o] : 0.0f;
	}
	c->cin = cin_n, c->cout = cout_pad, c->kt = kt, c->ks = ks;
	if (cudaMalloc(&c->w, n * 2) != cudaSuccess || (b && cudaMalloc((void **)&c->b, cout_pad * 4) != cudaSuccess)) {
		egr_errf(err, errlen, "cudaMalloc(conv %u -> %u weights, %zu bytes): out of memory", cin, cout, n * 2);
		rc = -ENOMEM;
		goto out;
	}
	if (cudaMemcpy(c->w, hw, n * 2, cudaMemcpyHostToDevice) != cudaSuccess ||
	    (b && cudaMemcpy(c->b, hb, cout_pad * 4, cudaMemcpyHostToDevice) != cudaSuccess)) {
		egr_errf(err, errlen, "cudaMemcpy(conv %u -> %u weights): failed", cin, cout);
		rc = -EIO;
	}
out:
	free(hw);
	free(hb);
	if (rc)
		gn_conv_free(c);
	return rc;
}

void gn_conv_free(struct gn_conv *c)
{
	if (c->w)
		cudaFree(c->w);
	if (c->b)
		cudaFree(c->b);
	c->w = NULL;
	c->b = NULL;
}

/* descriptors for c over n frames of h x w; *nout output frames */
static int gn_conv_desc(struct gn_ctx *g, const struct gn_conv *c, uint32_t n, uint32_t h, uint32_t w,
			uint32_t *nout, char *err, size_t errlen)
{
	const cudnnDataType_t dt = g->dtype == GN_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
	const int p = (int)c->ks / 2;

	if (c->kt == 1) {
		*nout = n;
		GN_DNN(cudnnSetTensor4dDescriptor(g->xd, CUDNN_TENSOR_NHWC, dt, (int)n, (int)c->cin, (int)h, (int)w),
		       "cudnnSetTensor4dDescriptor(input %ux%ux%ux%u)", n, h, w, c->cin);
		GN_DNN(cudnnSetTensor4dDescriptor(g->yd, CUDNN_TENSOR_NHWC, dt, (int)n, (int)c->cout, (int)h, (int)w),
		       "cudnnSetTensor4dDescriptor(output %ux%ux%ux%u)", n, h, w, c->cout);
		GN_DNN(cudnnSetFilter4dDescriptor(g->wd, dt, CUDNN_TENSOR_NHWC, (int)c->cout, (int)c->cin, (int)c->ks,
						  (int)c->ks),
		       "cudnnSetFilter4dDescriptor(%u -> %u, %ux%u)", c->cin, c->cout, c->ks, c->ks);
		GN_DNN(cudnnSetConvolution2dDescriptor(g->cd, p, p, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
						       CUDNN_DATA_FLOAT),
		       "cudnnSetConvolution2dDescriptor");
	} else {
		if (n < c->kt) {
			egr_errf(err, errlen, "gnet: a %u-tap time conv over %u frames", c->kt, n);
			return -EINVAL;
		}
		*nout = n - c->kt + 1;
		int xd[5] = { 1, (int)c->cin, (int)n, (int)h, (int)w };
		int yd[5] = { 1, (int)c->cout, (int)*nout, (int)h, (int)w };
		int wd[5] = { (int)c->cout, (int)c->cin, (int)c->kt, (int)c->ks, (int)c->ks };
		int pad[3] = { 0, p, p }, one[3] = { 1, 1, 1 };
		GN_DNN(cudnnSetTensorNdDescriptorEx(g->xd, CUDNN_TENSOR_NHWC, dt, 5, xd),
		       "cudnnSetTensorNdDescriptorEx(input %ux%ux%ux%u)", n, h, w, c->cin);
		GN_DNN(cudnnSetTensorNdDescriptorEx(g->yd, CUDNN_TENSOR_NHWC, dt, 5, yd),
		       "cudnnSetTensorNdDescriptorEx(output %ux%ux%ux%u)", *nout, h, w, c->cout);
		GN_DNN(cudnnSetFilterNdDescriptor(g->wd, dt, CUDNN_TENSOR_NHWC, 5, wd),
		       "cudnnSetFilterNdDescriptor(%u -> %u, %ux%ux%u)", c->cin, c->cout, c->kt, c->ks, c->ks);
		GN_DNN(cudnnSetConvolutionNdDescriptor(g->cd, 3, pad, one, one, CUDNN_CROSS_CORRELATION,
						       CUDNN_DATA_FLOAT),
		       "cudnnSetConvolutionNdDescriptor");
	}
	GN_DNN(cudnnSetConvolutionMathType(g->cd, CUDNN_TENSOR_OP_MATH), "cudnnSetConvolutionMathType");
	return 0;
}

/*
 * The algorithm for this shape: cached, else cuDNN's heuristics' first
 * choice that fits 2 GiB of workspace.  Not cudnnFind's timed search: its
 * pick can differ from one process to the next, and a producer that replaces
 * a dead one must decode the same bytes (backend.h, replay).
 */
static int gn_conv_algo(struct gn_ctx *g, const struct gn_conv *c, uint32_t n, uint32_t h, uint32_t w,
			const struct gn_algo **out, char *err, size_t errlen)
{
	struct gn_algo key = { c->cin, c->cout, c->kt, c->ks, n, h, w, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0 };
	cudnnConvolutionFwdAlgoPerf_t perf[8];
	int got = 0, pick = -1;

	for (uint32_t i = 0; i < g->nalgo; i++) {
		const struct gn_algo *a = &g->algo[i];
		if (a->cin == key.cin && a->cout == key.cout && a->kt == key.kt && a->ks == key.ks && a->n == n &&
		    a->h == h && a->w == w) {
			*out = a;
			return 0;
		}
	}
	GN_DNN(cudnnGetConvolutionForwardAlgorithm_v7(g->dnn, g->xd, g->wd, g->cd, g->yd, 8, &got, perf),
	       "cudnnGetConvolutionForwardAlgorithm_v7(%u -> %u, %ux%ux%u, %u frames of %ux%u)", c->cin, c->cout,
	       c->kt, c->ks, c->ks, n, h, w);
	g->searches++;
	for (int i = 0; i < got && pick < 0; i++)
		if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= (2ull << 30))
			pick = i;
	if (pick < 0) {
		egr_errf(err, errlen, "cuDNN has no algorithm for a %u -> %u %ux%ux%u conv over %u frames of %ux%u",
			 c->cin, c->cout, c->kt, c->ks, c->ks, n, h, w);
		return -ENOTSUP;
	}
	key.algo = perf[pick].algo;
	key.ws = perf[pick].memory;
	if (key.ws > g->ws_cap) {
		/* the old workspace may still be in use by queued convs */
		GN_CU(cudaStreamSynchronize(g->s), "cudaStreamSynchronize(before growing the cuDNN workspace)");
		if (g->ws)
			GN_CU(cudaFree(g->ws), "cudaFree(cuDNN workspace)");
		g->ws = NULL;
		g->ws_cap = 0;
		GN_CU(cudaMalloc(&g->ws, key.ws), "cudaMalloc(cuDNN workspace, %zu bytes)", key.ws);
		g->ws_cap = key.ws;
	}
	if (g->nalgo == GN_ALGO_CACHE)	/* a pathological mix of shapes: start over */
		g->nalgo = 0;
	g->algo[g->nalgo] = key;
	*out = &g->algo[g->nalgo++];
	return 0;
}

int gn_conv(struct gn_ctx *g, const struct gn_conv *c, const void *x, uint32_t n, uint32_t h, uint32_t w,
	    void *y, float beta, char *err, size_t errlen)
{
	const struct gn_algo *a = NULL;
	const float alpha = 1.0f;
	uint32_t nout;
	int rc;

	if ((rc = gn_conv_desc(g, c, n, h, w, &nout, err, errlen)) < 0 ||
	    (rc = gn_conv_algo(g, c, n, h, w, &a, err, errlen)) < 0)
		return rc;
	GN_DNN(cudnnConvolutionForward(g->dnn, &alpha, g->xd, x, g->wd, c->w, g->cd, a->algo, g->ws, g->ws_cap, &beta,
				       g->yd, y),
	       "cudnnConvolutionForward(%u -> %u, %ux%ux%u, %u frames of %ux%u)", c->cin, c->cout, c->kt, c->ks, c->ks,
	       n, h, w);
	return 0;
}

/* ---- elementwise ------------------------------------------------------ */

template <typename T>
__global__ void gn_k_bias(T *y, size_t nvec, uint32_t C8, const float *b, int relu)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nvec; i += (size_t)gridDim.x * blockDim.x) {
		float v[8];
		const uint32_t c0 = (uint32_t)(i % C8) * 8;
		gn_ld8(y + i * 8, v);
#pragma unroll
		for (int k = 0; k < 8; k++) {
			v[k] += b ? b[c0 + k] : 0.0f;
			if (relu)
				v[k] = fmaxf(v[k], 0.0f);
		}
		gn_st8(y + i * 8, v);
	}
}

int gn_bias(struct gn_ctx *g, void *y, size_t npix, uint32_t C, const float *b, int relu, char *err,
	    size_t errlen)
{
	const size_t nvec = npix * (C / 8);

	if ((!b && !relu) || !nvec)
		return 0;
	if (g->dtype == GN_BF16)
		gn_k_bias<<<gn_grid(nvec, 256 * 4), 256, 0, g->s>>>((__nv_bfloat16 *)y, nvec, C / 8, b, relu);
	else
		gn_k_bias<<<gn_grid(nvec, 256 * 4), 256, 0, g->s>>>((__half *)y, nvec, C / 8, b, relu);
	GN_LAUNCHED("gnet bias");
	return 0;
}

/* LANES threads per pixel, each over vectors lane, lane + LANES, ...; C <= 8 * LANES * 4 */
template <typename T, int LANES>
__global__ void __launch_bounds__(256) gn_k_rmsnorm(const T *x, const float *xb, size_t npix, uint32_t C,
						    const float *gamma, float scale, int silu, T *y)
{
	const int lane = threadIdx.x % LANES;
	const size_t p = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / LANES;
	const uint32_t C8 = C / 8;
	const bool valid = p < npix;	/* every lane takes part in the shuffles */
	float v[4][8], ss = 0.0f;

	const T *xp = x + p * C;
#pragma unroll
	for (int j = 0; j < 4; j++) {
		const uint32_t q = lane + j * LANES;
		if (valid && q < C8) {
			gn_ld8(xp + q * 8, v[j]);
#pragma unroll
			for (int k = 0; k < 8; k++) {
				v[j][k] += xb ? xb[q * 8 + k] : 0.0f;
				ss += v[j][k] * v[j][k];
			}
		}
	}
#pragma unroll
	for (int o = LANES / 2; o > 0; o /= 2)
		ss += __shfl_xor_sync(0xffffffffu, ss, o, LANES);
	const float inv = scale / fmaxf(sqrtf(ss), 1e-12f);
	T *yp = y + p * C;
#pragma unroll
	for (int j = 0; j < 4; j++) {
		const uint32_t q = lane + j * LANES;
		if (valid && q < C8) {
#pragma unroll
			for (int k = 0; k < 8; k++) {
				float t = v[j][k] * inv * gamma[q * 8 + k];
				v[j][k] = silu ? t / (1.0f + __expf(-t)) : t;
			}
			gn_st8(yp + q * 8, v[j]);
		}
	}
}

template <typename T>
static void gn_rmsnorm_launch(struct gn_ctx *g, const void *x, const float *xb, size_t npix, uint32_t C,
			      const float *gamma, int silu, void *y)
{
	const uint32_t C8 = C / 8;
	const float scale = sqrtf((float)C);
	const T *xt = (const T *)x;
	T *yt = (T *)y;

	if (C8 <= 4 * 4)
		gn_k_rmsnorm<T, 4><<<gn_grid(npix * 4, 256), 256, 0, g->s>>>(xt, xb, npix, C, gamma, scale, silu, yt);
	else if (C8 <= 8 * 4)
		gn_k_rmsnorm<T, 8><<<gn_grid(npix * 8, 256), 256, 0, g->s>>>(xt, xb, npix, C, gamma, scale, silu, yt);
	else if (C8 <= 16 * 4)
		gn_k_rmsnorm<T, 16><<<gn_grid(npix * 16, 256), 256, 0, g->s>>>(xt, xb, npix, C, gamma, scale, silu,
										  yt);
	else
		gn_k_rmsnorm<T, 32><<<gn_grid(npix * 32, 256), 256, 0, g->s>>>(xt, xb, npix, C, gamma, scale, silu,
										  yt);
}

int gn_rmsnorm(struct gn_ctx *g, const void *x, const float *xb, size_t npix, uint32_t C, const float *gamma,
	       int silu, void *y, char *err, size_t errlen)
{
	if (C % 8 || C > 8 * 32 * 4) {
		egr_errf(err, errlen, "gnet: RMS norm over %u channels (a multiple of 8, at most 1024)", C);
		return -EINVAL;
	}
	if (!npix)
		return 0;
	if (g->dtype == GN_BF16)
		gn_rmsnorm_launch<__nv_bfloat16>(g, x, xb, npix, C, gamma, silu, y);
	else
		gn_rmsnorm_launch<__half>(g, x, xb, npix, C, gamma, silu, y);
	GN_LAUNCHED("gnet rmsnorm");
	return 0;
}

/* one thread per destination vector of 8 channels */
template <typename T>
__global__ void gn_k_upsample(const T *src, size_t src_fs, uint32_t src_pc, uint32_t coff, const float *bias,
			      uint32_t nf, uint32_t h, uint32_t w, uint32_t C, uint32_t up, T *dst, size_t dst_fs)
{
	const uint32_t C8 = C / 8, W = w * up, H = h * up;
	const size_t per_frame = (size_t)H * W * C8, total = per_frame * nf;

	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
		const uint32_t f = (uint32_t)(i / per_frame);
		const size_t r = i % per_frame;
		const uint32_t q = (uint32_t)(r % C8), X = (uint32_t)((r / C8) % W), Y = (uint32_t)(r / C8 / W);
		float v[8];
		gn_ld8(src + f * src_fs + ((size_t)(Y / up) * w + X / up) * src_pc + coff + q * 8, v);
		if (bias)
#pragma unroll
			for (int k = 0; k < 8; k++)
				v[k] += bias[coff + q * 8 + k];
		gn_st8(dst + f * dst_fs + r * 8, v);
	}
}

int gn_upsample(struct gn_ctx *g, const void *src, size_t src_fs, uint32_t src_pc, uint32_t coff,
		const float *bias, uint32_t nf, uint32_t h, uint32_t w, uint32_t C, uint32_t up, void *dst,
		size_t dst_fs, char *err, size_t errlen)
{
	const size_t n = (size_t)nf * h * w * up * up * (C / 8);

	if (C % 8 || coff % 8 || src_pc % 8 || (up != 1 && up != 2)) {
		egr_errf(err, errlen, "gnet: upsample of %u channels at %u of %u by %u", C, coff, src_pc, up);
		return -EINVAL;
	}
	if (!n)
		return 0;
	if (g->dtype == GN_BF16)
		gn_k_upsample<<<gn_grid(n, 256 * 4), 256, 0, g->s>>>((const __nv_bfloat16 *)src, src_fs, src_pc, coff,
								       bias, nf, h, w, C, up,
								       (__nv_bfloat16 *)dst, dst_fs);
	else
		gn_k_upsample<<<gn_grid(n, 256 * 4), 256, 0, g->s>>>((const __half *)src, src_fs, src_pc, coff, bias,
								       nf, h, w, C, up, (__half *)dst, dst_fs);
	GN_LAUNCHED("gnet upsample");
	return 0;
}

/* ---- attention -------------------------------------------------------- */

#define GN_SCORE_MAX (256ull << 20)

size_t gn_attention_scratch(uint32_t N)
{
	/* fp32 scores and 16-bit probabilities of a query block */
	size_t full = (size_t)N * N * 6;
	return full < GN_SCORE_MAX ? full : GN_SCORE_MAX;
}

/* one block per row: softmax over n fp32 scores into the 16-bit probabilities */
template <typename T>
__global__ void __launch_bounds__(256) gn_k_softmax(const float *S, uint32_t n, T *P)
{
	__shared__ float red[2][32];
	const float *s = S + (size_t)blockIdx.x * n;
	T *p = P + (size_t)blockIdx.x * n;
	float m = -INFINITY, z = 0.0f;

	for (uint32_t j = threadIdx.x; j < n; j += blockDim.x) {
		const float v = s[j], nm = fmaxf(m, v);
		z = z * __expf(m - nm) + __expf(v - nm);
		m = nm;
	}
	for (int o = 16; o > 0; o /= 2) {
		const float om = __shfl_xor_sync(0xffffffffu, m, o), oz = __shfl_xor_sync(0xffffffffu, z, o);
		const float nm = fmaxf(m, om);
		z = (m == -INFINITY ? 0.0f : z * __expf(m - nm)) + (om == -INFINITY ? 0.0f : oz * __expf(om - nm));
		m = nm;
	}
	if (threadIdx.x % 32 == 0)
		red[0][threadIdx.x / 32] = m, red[1][threadIdx.x / 32] = z;
	__syncthreads();
	if (threadIdx.x < 32) {
		const int nw = blockDim.x / 32;
		m = threadIdx.x < nw ? red[0][threadIdx.x] : -INFINITY;
		z = threadIdx.x < nw ? red[1][threadIdx.x] : 0.0f;
		for (int o = 16; o > 0; o /= 2) {
			const float om = __shfl_xor_sync(0xffffffffu, m, o), oz = __shfl_xor_sync(0xffffffffu, z, o);
			const float nm = fmaxf(m, om);
			z = (m == -INFINITY ? 0.0f : z * __expf(m - nm)) + (om == -INFINITY ? 0.0f : oz * __expf(om - nm));
			m = nm;
		}
		if (threadIdx.x == 0)
			red[0][0] = m, red[1][0] = 1.0f / z;
	}
	__syncthreads();
	m = red[0][0];
	const float iz = red[1][0];
	for (uint32_t j = threadIdx.x; j < n; j += blockDim.x)
		p[j] = gn_t<T>::t(__expf(s[j] - m) * iz);
}

int gn_attention(struct gn_ctx *g, const void *qkv, uint32_t nf, uint32_t N, uint32_t C, void *out,
		 void *scratch, size_t scratch_bytes, char *err, size_t errlen)
{
	const cudaDataType_t dt = g->dtype == GN_BF16 ? CUDA_R_16BF : CUDA_R_16F;
	const size_t row = (size_t)N * 6;	/* scores + probabilities per query */
	const float scale = 1.0f / sqrtf((float)C), one = 1.0f, zero = 0.0f;
	uint32_t qb = (uint32_t)(scratch_bytes / row < N ? scratch_bytes / row : N);

	if (qb == 0) {
		egr_errf(err, errlen, "gnet: attention over %u pixels needs at least %zu bytes of scratch", N, row);
		return -EINVAL;
	}
	float *S = (float *)scratch;
	void *P = (char *)scratch + (size_t)qb * N * 4;
	for (uint32_t f = 0; f < nf; f++) {
		const char *base = (const char *)qkv + (size_t)f * N * 3 * C * 2;
		for (uint32_t q0 = 0; q0 < N; q0 += qb) {
			const uint32_t nq = N - q0 < qb ? N - q0 : qb;
			const char *Q = base + (size_t)q0 * 3 * C * 2, *K = base + (size_t)C * 2, *V = base + (size_t)2 * C * 2;
			char *O = (char *)out + ((size_t)f * N + q0) * C * 2;
			/* S (column-major N x nq, i.e. row q holds its N scores) = K^T Q / sqrt(C) */
			GN_BLAS(cublasGemmEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)nq, (int)C, &scale, K, dt,
					     (int)(3 * C), Q, dt, (int)(3 * C), &zero, S, CUDA_R_32F, (int)N,
					     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
				"cublasGemmEx(attention scores)");
			if (g->dtype == GN_BF16)
				gn_k_softmax<<<nq, 256, 0, g->s>>>(S, N, (__nv_bfloat16 *)P);
			else
				gn_k_softmax<<<nq, 256, 0, g->s>>>(S, N, (__half *)P);
			GN_LAUNCHED("gnet softmax");
			/* O (column-major C x nq = NHWC rows) = V P */
			GN_BLAS(cublasGemmEx(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)C, (int)nq, (int)N, &one, V, dt,
					     (int)(3 * C), P, dt, (int)N, &zero, O, dt, (int)C, CUBLAS_COMPUTE_32F,
					     CUBLAS_GEMM_DEFAULT),
				"cublasGemmEx(attention output)");
		}
	}
	return 0;
}

/* ---- frames out ------------------------------------------------------- */


/* one thread per 2x2 block of output pixels of one frame */
template <typename T>
__global__ void gn_k_emit(const T *x, gn_emit_args a, void *dst, uint64_t frame_bytes)
{
	const uint32_t W = a.w * a.p, H = a.h * a.p, bw = W / 2, bh = H / 2;
	const size_t per = (size_t)bw * bh, total = per * a.nf;

	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
		const uint32_t f = (uint32_t)(i / per), bx = (uint32_t)(i % per % bw), by = (uint32_t)(i % per / bw);
		const T *xf = x + (size_t)f * a.h * a.w * a.C;
		int rgb[4][3];
#pragma unroll
		for (int k = 0; k < 4; k++) {
			const uint32_t Y = 2 * by + k / 2, X = 2 * bx + k % 2;
			const T *px = xf + ((size_t)(Y / a.p) * a.w + X / a.p) * a.C;
			const uint32_t sub = (Y % a.p) * a.ys + (X % a.p) * a.xs;
#pragma unroll
			for (int c = 0; c < 3; c++) {
				const uint32_t ch = c * a.p * a.p + sub;
				float v = gn_t<T>::f(px[ch]) + (a.b ? a.b[ch] : 0.0f);
				v = fminf(fmaxf(v, a.lo), a.hi);	/* NaN -> lo */
				if (a.format == EGR_FMT_RAW)
					((float *)dst)[(size_t)f * 3 * H * W + ((size_t)c * H + Y) * W + X] = v;
				else
					rgb[k][c] = egr_d_quant01(__fmul_rn(__fadd_rn(v, a.off), a.mul));
			}
		}
		if (a.format == EGR_FMT_RAW)
			continue;
		uint8_t *o = (uint8_t *)dst + f * frame_bytes;
		if (a.format != EGR_FMT_Y4M) {
#pragma unroll
			for (int k = 0; k < 4; k++)
#pragma unroll
				for (int c = 0; c < 3; c++)
					o[((size_t)(2 * by + k / 2) * W + 2 * bx + k % 2) * 3 + c] = (uint8_t)rgb[k][c];
			continue;
		}
#pragma unroll
		for (int k = 0; k < 4; k++)
			o[(size_t)(2 * by + k / 2) * W + 2 * bx + k % 2] =
				(uint8_t)(((66 * rgb[k][0] + 129 * rgb[k][1] + 25 * rgb[k][2] + 128) >> 8) + 16);
		const int r = (rgb[0][0] + rgb[1][0] + rgb[2][0] + rgb[3][0] + 2) >> 2;
		const int gg = (rgb[0][1] + rgb[1][1] + rgb[2][1] + rgb[3][1] + 2) >> 2;
		const int b = (rgb[0][2] + rgb[1][2] + rgb[2][2] + rgb[3][2] + 2) >> 2;
		uint8_t *u = o + (size_t)W * H, *v = u + (size_t)bw * bh;
		u[(size_t)by * bw + bx] = (uint8_t)(((-38 * r - 74 * gg + 112 * b + 128) >> 8) + 128);
		v[(size_t)by * bw + bx] = (uint8_t)(((112 * r - 94 * gg - 18 * b + 128) >> 8) + 128);
	}
}

int gn_emit(struct gn_ctx *g, const void *x, const struct gn_emit_args *a, void *dst, char *err, size_t errlen)
{
	const uint32_t W = a->w * a->p, H = a->h * a->p;
	const size_t n = (size_t)a->nf * (W / 2) * (H / 2);
	const uint64_t fb = a->format == EGR_FMT_RAW ? 0 : egr_frame_bytes(a->format, W, H);

	if (W % 2 || H % 2 || a->C < 3 * a->p * a->p) {
		egr_errf(err, errlen, "gnet: frames of %ux%u from %u channels (p %u)", W, H, a->C, a->p);
		return -EINVAL;
	}
	if (!n)
		return 0;
	if (g->dtype == GN_BF16)
		gn_k_emit<<<gn_grid(n, 256), 256, 0, g->s>>>((const __nv_bfloat16 *)x, *a, dst, fb);
	else
		gn_k_emit<<<gn_grid(n, 256), 256, 0, g->s>>>((const __half *)x, *a, dst, fb);
	GN_LAUNCHED("gnet emit");
	return 0;
}

/* ---- latents in ------------------------------------------------------- */

/* one thread per (frame, pixel, 8 channels): gathers 8 planes, writes one vector */
template <typename Tin, typename T>
__global__ void gn_k_latents(const Tin *lat, uint32_t n, uint32_t C, size_t hw, const float *inv,
			     const float *mean, int tanh_clamp, T *dst)
{
	const uint32_t C8 = C / 8;
	const size_t total = (size_t)n * hw * C8;

	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
		const uint32_t q = (uint32_t)(i % C8);
		const size_t pix = i / C8 % hw, f = i / C8 / hw;
		float v[8];
#pragma unroll
		for (int k = 0; k < 8; k++) {
			const uint32_t c = q * 8 + k;
			float x = (float)lat[(f * C + c) * hw + pix];
			if (mean)
				x = __fadd_rn(__fdiv_rn(x, inv[c]), mean[c]);
			if (tanh_clamp)
				x = tanhf(x / 3.0f) * 3.0f;
			v[k] = x;
		}
		gn_st8(dst + i * 8, v);
	}
}

int gn_latents(struct gn_ctx *g, const void *lat, int f32, uint32_t n, uint32_t C, size_t hw, const float *inv,
	       const float *mean, int tanh_clamp, void *dst, char *err, size_t errlen)
{
	const size_t total = (size_t)n * hw * (C / 8);

	if (C % 8) {
		egr_errf(err, errlen, "gnet: %u latent channels (a multiple of 8)", C);
		return -EINVAL;
	}
	if (!total)
		return 0;
#define GN_LAT(TIN, T)                                                                                    \
	gn_k_latents<<<gn_grid(total, 256 * 4), 256, 0, g->s>>>((const TIN *)lat, n, C, hw, inv, mean, tanh_clamp, (T *)dst)
	if (f32 && g->dtype == GN_BF16)
		GN_LAT(float, __nv_bfloat16);
	else if (f32)
		GN_LAT(float, __half);
	else if (g->dtype == GN_BF16)
		GN_LAT(__half, __nv_bfloat16);
	else
		GN_LAT(__half, __half);
#undef GN_LAT
	GN_LAUNCHED("gnet latents");
	return 0;
}

int gn_copy_frames(struct gn_ctx *g, void *dst, const void *src, uint32_t nf, size_t fbytes, char *err,
		   size_t errlen)
{
	if (dst == src || !nf)
		return 0;
	/* frame by frame, in order: safe when dst is below an overlapping src */
	if ((char *)dst + (size_t)nf * fbytes <= (const char *)src || (const char *)src + (size_t)nf * fbytes <= (char *)dst) {
		GN_CU(cudaMemcpyAsync(dst, src, (size_t)nf * fbytes, cudaMemcpyDeviceToDevice, g->s),
		      "cudaMemcpyAsync(%u frames of %zu bytes)", nf, fbytes);
		return 0;
	}
	for (uint32_t i = 0; i < nf; i++)
		GN_CU(cudaMemcpyAsync((char *)dst + i * fbytes, (const char *)src + i * fbytes, fbytes,
				      cudaMemcpyDeviceToDevice, g->s),
		      "cudaMemcpyAsync(frame %u of %zu bytes)", i, fbytes);
	return 0;
}
