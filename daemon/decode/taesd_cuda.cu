/*
 * taesd_cuda: TAESD decoder kernels; see taesd_cuda.h.
 *
 * One implicit-GEMM kernel does every 3x3 conv: M = output pixels, N = output
 * channels, K = 9 taps x input channels.  A block owns a tile of TH x TW = 8 x
 * 16 output pixels of one frame and all output channels.  It keeps the whole
 * weight matrix of the layer in shared memory (64 x 576 fp16 = 74 KB, loaded
 * once per block: the grid is persistent, about two blocks per SM, and loops
 * over tiles), loads the tile's (TH+2) x (TW+2) input halo once with cp.async
 * (zero-filled outside the image: that is the padding; with UPSAMPLE the
 * source pixel is (y/2, x/2) of the half-size tensor: the upsample costs
 * nothing), then runs the nine taps as K slices straight out of that halo:
 * ldmatrix feeds mma.sync.m16n8k16 (fp16 in, fp32 accumulate).  Rows of
 * both shared arrays are padded by 16 bytes so ldmatrix is conflict-free.
 * The epilogue adds bias in fp32, stages the tile as fp16 in shared memory
 * and writes 16-byte vectors, adding the residual and applying ReLU on the
 * way.  The last conv (64 -> 3, padded to 8) instead clamps, quantises and
 * writes 8-bit RGB24 or I420 for the tile (tiles hold whole 2x2 chroma
 * quads: tile origins are even, frame sizes multiples of 8).
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "daemon/base/log.h"
}
#include "daemon/decode/taesd_cuda.h"

#define TH 8
#define TW 16
#define BM (TH * TW)
#define HALO ((TH + 2) * (TW + 2))

struct conv_args {
	const __half *src;
	int sh, sw;		/* source tensor size (H/2, W/2 with upsample) */
	__half *dst;
	const __half *res;
	const __half *wt;	/* [coutp][3][3][cin] */
	const float *bias;	/* [coutp] */
	int H, W;		/* output size */
	int tiles_x, tiles_per_frame, ntiles;
	int relu, up;
	int out_mode;		/* final conv: enum egr_format */
	void *out;
};

__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
	return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes)
{
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void cp_async_wait_all(void)
{
	asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::);
}

__device__ __forceinline__ void ldsm_x4(uint32_t *r, const void *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
		     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		     : "r"(smem_u32(p)));
}

__device__ __forceinline__ void ldsm_x2(uint32_t *r, const void *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
		     : "=r"(r[0]), "=r"(r[1])
		     : "r"(smem_u32(p)));
}

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, const uint32_t *b)
{
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
		     "{%0,%1,%2,%3};\n"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* egr_taesd_quant_u8, the same operations */
__device__ __forceinline__ int quant_u8(float v)
{
	if (!(v > 0.0f))
		v = 0.0f;
	if (v > 1.0f)
		v = 1.0f;
	float t = __fadd_rn(__fmul_rn(v, 255.0f), 0.5f);
	return (int)t;
}

template <int CIN, int COUTP>
struct conv_smem {
	static constexpr int KS = 9 * CIN + 8;		/* weight row stride (halves) */
	static constexpr int PS = CIN + 8;		/* halo pixel stride (halves) */
	static constexpr int OS = COUTP + 8;		/* staging row stride (halves) */
	static constexpr int IN_HALVES = (HALO * PS > BM * OS ? HALO * PS : BM * OS);
	static constexpr size_t bytes = (size_t)COUTP * KS * 2 + (size_t)IN_HALVES * 2 + COUTP * 4 + BM * 4;
};

template <int CIN, int COUTP, int WM, int WN, bool FINAL>
__global__ void __launch_bounds__(WM *WN * 32, 2) taesd_conv(const conv_args a)
{
	typedef conv_smem<CIN, COUTP> S;
	constexpr int NTHR = WM * WN * 32;
	constexpr int MT = (BM / 16) / WM;	/* m16 tiles (= tile rows) per warp */
	constexpr int NT = COUTP / 8 / WN;	/* n8 tiles per warp */
	extern __shared__ __align__(16) unsigned char smem[];
	__half *sW = (__half *)smem;
	__half *sIn = sW + COUTP * S::KS;
	float *sBias = (float *)(sIn + S::IN_HALVES);
	uint8_t *sQ = (uint8_t *)(sBias + COUTP);	/* final: BM x 4 bytes of RGB */

	const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	const int wm = warp % WM, wn = warp / WM;

	/* weights and bias, once per block */
	constexpr int WCH = 9 * CIN / 8;
	for (int i = tid; i < COUTP * WCH; i += NTHR) {
		int r = i / WCH, c = i % WCH;
		cp_async16(sW + r * S::KS + c * 8, a.wt + (size_t)r * 9 * CIN + c * 8, 16);
	}
	for (int i = tid; i < COUTP; i += NTHR)
		sBias[i] = a.bias[i];

	for (int tile = blockIdx.x; tile < a.ntiles; tile += gridDim.x) {
		const int n = tile / a.tiles_per_frame, rr = tile % a.tiles_per_frame;
		const int ty0 = (rr / a.tiles_x) * TH, tx0 = (rr % a.tiles_x) * TW;
		const int H = a.H, W = a.W;

		/* halo tile, zero outside the image */
		constexpr int CH = CIN / 8;
		for (int i = tid; i < HALO * CH; i += NTHR) {
			int p = i / CH, c = i % CH;
			int gy = ty0 - 1 + p / (TW + 2), gx = tx0 - 1 + p % (TW + 2);
			bool ok = gy >= 0 && gy < H && gx >= 0 && gx < W;
			int sy = a.up ? gy >> 1 : gy, sx = a.up ? gx >> 1 : gx;
			const __half *g = ok ? a.src + (((size_t)n * a.sh + sy) * a.sw + sx) * CIN + c * 8 : a.src;
			cp_async16(sIn + p * S::PS + c * 8, g, ok ? 16 : 0);
		}
		cp_async_wait_all();
		__syncthreads();

		float acc[MT][NT][4];
#pragma unroll
		for (int i = 0; i < MT; i++)
#pragma unroll
			for (int j = 0; j < NT; j++)
#pragma unroll
				for (int k = 0; k < 4; k++)
					acc[i][j][k] = 0.0f;

#pragma unroll 1
		for (int tap = 0; tap < 9; tap++) {
			const int ky = tap / 3, kx = tap % 3;
#pragma unroll
			for (int kc = 0; kc < CIN / 16; kc++) {
				uint32_t af[MT][4], bf[NT][2];
#pragma unroll
				for (int mt = 0; mt < MT; mt++) {
					int row = wm * MT + mt;
					const __half *p = sIn + ((row + ky) * (TW + 2) + (lane & 15) + kx) * S::PS +
							  kc * 16 + (lane >> 4) * 8;
					ldsm_x4(af[mt], p);
				}
				if constexpr (NT >= 2) {
#pragma unroll
					for (int np = 0; np < NT / 2; np++) {
						int nrow = wn * NT * 8 + np * 16 + (lane & 7) + (lane >> 4) * 8;
						const __half *p = sW + nrow * S::KS + tap * CIN + kc * 16 + ((lane >> 3) & 1) * 8;
						uint32_t r[4];
						ldsm_x4(r, p);
						bf[2 * np][0] = r[0];
						bf[2 * np][1] = r[1];
						bf[2 * np + 1][0] = r[2];
						bf[2 * np + 1][1] = r[3];
					}
				} else {
					int nrow = wn * 8 + (lane & 7);
					const __half *p = sW + nrow * S::KS + tap * CIN + kc * 16 + ((lane >> 3) & 1) * 8;
					ldsm_x2(bf[0], p);
				}
#pragma unroll
				for (int mt = 0; mt < MT; mt++)
#pragma unroll
					for (int nt = 0; nt < NT; nt++)
						mma16816(acc[mt][nt], af[mt], bf[nt]);
			}
		}
		__syncthreads();	/* everyone is done with the halo: reuse it for staging */

		if (!FINAL) {
			__half *sO = sIn;
#pragma unroll
			for (int mt = 0; mt < MT; mt++) {
#pragma unroll
				for (int nt = 0; nt < NT; nt++) {
					int m = (wm * MT + mt) * 16 + (lane >> 2);
					int c = wn * NT * 8 + nt * 8 + (lane & 3) * 2;
					float b0 = sBias[c], b1 = sBias[c + 1];
					*(__half2 *)(sO + m * S::OS + c) =
						__floats2half2_rn(acc[mt][nt][0] + b0, acc[mt][nt][1] + b1);
					*(__half2 *)(sO + (m + 8) * S::OS + c) =
						__floats2half2_rn(acc[mt][nt][2] + b0, acc[mt][nt][3] + b1);
				}
			}
			__syncthreads();
			constexpr int VC = COUTP / 8;	/* 16-byte vectors per pixel */
			for (int i = tid; i < BM * VC; i += NTHR) {
				int p = i / VC, c = i % VC;
				int gy = ty0 + p / TW, gx = tx0 + p % TW;
				if (gy >= H || gx >= W)
					continue;
				uint4 v = *(const uint4 *)(sO + p * S::OS + c * 8);
				size_t idx = (((size_t)n * H + gy) * W + gx) * COUTP + c * 8;
				__half2 *hv = (__half2 *)&v;
				if (a.res) {
					uint4 rv = *(const uint4 *)(a.res + idx);
					const __half2 *hr = (const __half2 *)&rv;
#pragma unroll
					for (int k = 0; k < 4; k++) {
						float2 x = __half22float2(hv[k]), y = __half22float2(hr[k]);
						hv[k] = __floats2half2_rn(x.x + y.x, x.y + y.y);
					}
				}
				if (a.relu) {
#pragma unroll
					for (int k = 0; k < 4; k++)
						hv[k] = __hmax2(hv[k], __float2half2_rn(0.0f));
				}
				*(uint4 *)(a.dst + idx) = v;
			}
		} else {
			/* output conv: 3 real channels of COUTP = 8 */
			float *sF = (float *)sIn;	/* [BM][4] */
#pragma unroll
			for (int mt = 0; mt < MT; mt++) {
				int m = (wm * MT + mt) * 16 + (lane >> 2);
				int c = (lane & 3) * 2;
				if (c < 3) {
					sF[m * 4 + c] = acc[mt][0][0] + sBias[c];
					sF[(m + 8) * 4 + c] = acc[mt][0][2] + sBias[c];
				}
				if (c + 1 < 3) {
					sF[m * 4 + c + 1] = acc[mt][0][1] + sBias[c + 1];
					sF[(m + 8) * 4 + c + 1] = acc[mt][0][3] + sBias[c + 1];
				}
			}
			__syncthreads();
			const size_t HW = (size_t)H * W;
			for (int p = tid; p < BM; p += NTHR) {
				int gy = ty0 + p / TW, gx = tx0 + p % TW;
				if (gy >= H || gx >= W)
					continue;
				const float *v = sF + p * 4;
				if (a.out_mode == EGR_FMT_RAW) {
					float *o = (float *)a.out + (size_t)n * 3 * HW + (size_t)gy * W + gx;
					o[0] = v[0];
					o[HW] = v[1];
					o[2 * HW] = v[2];
				} else if (a.out_mode == EGR_FMT_PNG) {
					uint8_t *o = (uint8_t *)a.out + ((size_t)n * HW + (size_t)gy * W + gx) * 3;
					o[0] = (uint8_t)quant_u8(v[0]);
					o[1] = (uint8_t)quant_u8(v[1]);
					o[2] = (uint8_t)quant_u8(v[2]);
				} else {
					int r = quant_u8(v[0]), g = quant_u8(v[1]), b = quant_u8(v[2]);
					sQ[p * 4] = (uint8_t)r;
					sQ[p * 4 + 1] = (uint8_t)g;
					sQ[p * 4 + 2] = (uint8_t)b;
					uint8_t *o = (uint8_t *)a.out + (size_t)n * (HW + HW / 2);
					o[(size_t)gy * W + gx] = (uint8_t)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
				}
			}
			if (a.out_mode == EGR_FMT_Y4M) {
				__syncthreads();
				/* 2x2 quads of the tile: (TH/2) x (TW/2) */
				for (int q = tid; q < BM / 4; q += NTHR) {
					int qy = q / (TW / 2), qx = q % (TW / 2);
					int gy = ty0 + 2 * qy, gx = tx0 + 2 * qx;
					if (gy >= H || gx >= W)
						continue;
					const uint8_t *s0 = sQ + ((2 * qy) * TW + 2 * qx) * 4, *s1 = s0 + TW * 4;
					int r = (s0[0] + s0[4] + s1[0] + s1[4] + 2) >> 2;
					int g = (s0[1] + s0[5] + s1[1] + s1[5] + 2) >> 2;
					int b = (s0[2] + s0[6] + s1[2] + s1[6] + 2) >> 2;
					uint8_t *o = (uint8_t *)a.out + (size_t)n * (HW + HW / 2) + HW;
					size_t ci = (size_t)(gy / 2) * (W / 2) + gx / 2;
					o[ci] = (uint8_t)(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
					o[HW / 4 + ci] = (uint8_t)(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
				}
			}
		}
		__syncthreads();	/* staging is the next tile's halo */
	}
}

/* Clamp and NCHW (f16/f32) -> NHWC fp16 with channels padded to cinp. */
template <typename T>
__global__ void taesd_prep(const T *lat, int C, int cinp, int HW, size_t total, __half *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= total)
		return;
	int c = (int)(i % cinp);
	size_t pix = i / cinp;	/* n * HW + p */
	size_t n = pix / HW, p = pix % HW;
	float v = 0.0f;
	if (c < C) {
		float x = (float)lat[(n * C + c) * HW + p];
		v = tanhf(x / 3.0f) * 3.0f;
	}
	out[i] = __float2half_rn(v);
}

struct gconv {
	__half *wt;
	float *bias;
	int cinp, coutp;
};

struct egr_taesd_gpu {
	int device, nsm, warps;
	uint32_t channels, cin1;
	struct egr_taesd_conv plan[EGR_TAESD_NCONV];	/* no weight pointers */
	struct gconv conv[EGR_TAESD_NCONV];
	void *ws;
	size_t ws_bytes;
};

#define CK(call, what)                                                                                 \
	do {                                                                                           \
		cudaError_t e_ = (call);                                                               \
		if (e_ != cudaSuccess) {                                                               \
			egr_errf(err, errlen, "%s: %s", what, cudaGetErrorString(e_));                 \
			r = e_ == cudaErrorMemoryAllocation ? -ENOMEM : -EIO;                           \
			goto fail;                                                                     \
		}                                                                                      \
	} while (0)

typedef void (*conv_kernel)(const conv_args);

template <int CIN, int COUTP, int WM, int WN, bool FINAL>
static cudaError_t kernel_setup(void)
{
	return cudaFuncSetAttribute(taesd_conv<CIN, COUTP, WM, WN, FINAL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
				    (int)conv_smem<CIN, COUTP>::bytes);
}

template <int CIN, int COUTP, int WM, int WN, bool FINAL>
static cudaError_t kernel_launch(const conv_args &a, int nsm, cudaStream_t s)
{
	static int per_sm;	/* per instantiation; a benign race fills it with the same value */
	auto k = taesd_conv<CIN, COUTP, WM, WN, FINAL>;
	size_t sm = conv_smem<CIN, COUTP>::bytes;
	if (!per_sm) {
		int n = 0;
		cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, WM * WN * 32, sm);
		if (e != cudaSuccess)
			return e;
		per_sm = n < 1 ? 1 : n;
	}
	int grid = a.ntiles < per_sm * nsm ? a.ntiles : per_sm * nsm;
	k<<<grid, WM * WN * 32, sm, s>>>(a);
	return cudaGetLastError();
}

extern "C" int egr_taesd_gpu_create(const struct egr_taesd *net, int device, struct egr_taesd_gpu **out,
				    char *err, size_t errlen)
{
	struct egr_taesd_gpu *g;
	__half *hw = NULL;
	int r = 0, ndev = 0;
	const char *wenv = getenv("EGR_TAESD_WARPS");

	*out = NULL;
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev <= device || device < 0) {
		egr_errf(err, errlen, "taesd: no usable CUDA device %d (%d found)", device, ndev);
		return -ENODEV;
	}
	g = (struct egr_taesd_gpu *)calloc(1, sizeof(*g));
	if (!g) {
		egr_errf(err, errlen, "taesd: out of memory");
		return -ENOMEM;
	}
	g->device = device;
	g->warps = wenv && !strcmp(wenv, "4") ? 4 : 8;
	g->channels = net->channels;
	g->cin1 = net->channels <= 16 ? 16 : 64;
	CK(cudaSetDevice(device), "cudaSetDevice");
	CK(cudaDeviceGetAttribute(&g->nsm, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
	CK((kernel_setup<16, 64, 4, 2, false>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<64, 64, 4, 2, false>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<16, 64, 2, 2, false>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<64, 64, 2, 2, false>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<64, 8, 8, 1, true>()), "cudaFuncSetAttribute(taesd_conv)");
	hw = (__half *)malloc((size_t)64 * 9 * 64 * sizeof(__half));
	if (!hw) {
		r = -ENOMEM;
		egr_errf(err, errlen, "taesd: out of memory");
		goto fail;
	}
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		const struct egr_taesd_conv *c = &net->conv[i];
		struct gconv *gc = &g->conv[i];
		float bias[64] = { 0 };
		g->plan[i] = *c;
		g->plan[i].w = g->plan[i].b = NULL;
		gc->cinp = i == 0 ? (int)g->cin1 : 64;
		gc->coutp = c->cout == 3 ? 8 : 64;
		/* [cout][cin][ky][kx] -> [coutp][ky][kx][cinp], zero padded */
		memset(hw, 0, (size_t)64 * 9 * 64 * sizeof(__half));
		for (uint32_t co = 0; co < c->cout; co++)
			for (uint32_t ci = 0; ci < c->cin; ci++)
				for (int t = 0; t < 9; t++)
					hw[((size_t)co * 9 + t) * gc->cinp + ci] =
						__float2half_rn(c->w[((size_t)co * c->cin + ci) * 9 + t]);
		for (uint32_t co = 0; co < c->cout && c->b; co++)
			bias[co] = c->b[co];
		size_t wb = (size_t)gc->coutp * 9 * gc->cinp * sizeof(__half);
		CK(cudaMalloc((void **)&gc->wt, wb), "cudaMalloc(taesd weights)");
		CK(cudaMalloc((void **)&gc->bias, gc->coutp * sizeof(float)), "cudaMalloc(taesd bias)");
		CK(cudaMemcpy(gc->wt, hw, wb, cudaMemcpyHostToDevice), "cudaMemcpy(taesd weights)");
		CK(cudaMemcpy(gc->bias, bias, gc->coutp * sizeof(float), cudaMemcpyHostToDevice),
		   "cudaMemcpy(taesd bias)");
	}
	free(hw);
	*out = g;
	return 0;
fail:
	free(hw);
	egr_taesd_gpu_destroy(g);
	return r;
}

extern "C" void egr_taesd_gpu_destroy(struct egr_taesd_gpu *g)
{
	if (!g)
		return;
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		cudaFree(g->conv[i].wt);
		cudaFree(g->conv[i].bias);
	}
	cudaFree(g->ws);
	free(g);
}

static cudaError_t launch_conv(struct egr_taesd_gpu *g, int i, const conv_args &a, cudaStream_t s)
{
	const struct gconv *gc = &g->conv[i];
	bool w8 = g->warps == 8;

	if (gc->coutp == 8)
		return kernel_launch<64, 8, 8, 1, true>(a, g->nsm, s);
	if (gc->cinp == 16)
		return w8 ? kernel_launch<16, 64, 4, 2, false>(a, g->nsm, s) : kernel_launch<16, 64, 2, 2, false>(a, g->nsm, s);
	return w8 ? kernel_launch<64, 64, 4, 2, false>(a, g->nsm, s) : kernel_launch<64, 64, 2, 2, false>(a, g->nsm, s);
}

extern "C" int egr_taesd_gpu_decode(struct egr_taesd_gpu *g, struct CUstream_st *stream, const void *d_lat,
				    uint32_t dtype, uint32_t nframes, uint32_t h, uint32_t w, uint32_t format,
				    void *d_out, char *err, size_t errlen)
{
	cudaStream_t s = (cudaStream_t)stream;
	int r = 0;

	if ((dtype != EGR_DT_F16 && dtype != EGR_DT_F32) || format > EGR_FMT_PNG || !nframes || !h || !w || h > 1024 ||
	    w > 1024 || !d_lat || !d_out) {
		egr_errf(err, errlen, "taesd gpu decode: bad arguments (dtype %u, format %u, %u frames of %ux%u)", dtype,
			 format, nframes, w, h);
		return -EINVAL;
	}
	const size_t full = (size_t)64 * h * w;		/* output pixels per frame */
	const size_t act = full * 64 * sizeof(__half);	/* one activation tensor per frame */
	const size_t inb = (size_t)h * w * g->cin1 * sizeof(__half);
	size_t batch = EGR_TAESD_GPU_WS_MAX / (3 * act + inb);
	if (batch < 1)
		batch = 1;
	if (batch > nframes)
		batch = nframes;
	const size_t need = batch * (3 * act + inb);
	if (need > g->ws_bytes) {
		/* growing: the old workspace may still be in use by queued work */
		CK(cudaStreamSynchronize(s), "cudaStreamSynchronize(taesd workspace growth)");
		cudaFree(g->ws);
		g->ws = NULL;
		g->ws_bytes = 0;
		if (cudaMalloc(&g->ws, need) != cudaSuccess) {
			cudaGetLastError();
			egr_errf(err, errlen, "cudaMalloc(taesd workspace, %zu bytes): out of memory", need);
			return -ENOMEM;
		}
		g->ws_bytes = need;
	}
	{
		__half *buf[5];
		for (int i = 0; i < 3; i++)
			buf[i] = (__half *)((char *)g->ws + i * batch * act);
		buf[EGR_TAESD_BUF_IN] = (__half *)((char *)g->ws + 3 * batch * act);
		const size_t out_frame = format == EGR_FMT_RAW	 ? full * 3 * sizeof(float)
					 : format == EGR_FMT_PNG ? full * 3
									 : full + full / 2;
		for (uint32_t f0 = 0; f0 < nframes; f0 += (uint32_t)batch) {
			uint32_t nb = nframes - f0 < batch ? nframes - f0 : (uint32_t)batch;
			size_t total = (size_t)nb * h * w * g->cin1;
			const char *lat = (const char *)d_lat + (size_t)f0 * g->channels * h * w * dtype;
			int tpb = 256;
			unsigned blocks = (unsigned)((total + tpb - 1) / tpb);
			if (dtype == EGR_DT_F32)
				taesd_prep<float><<<blocks, tpb, 0, s>>>((const float *)lat, (int)g->channels, (int)g->cin1,
									  (int)(h * w), total, buf[EGR_TAESD_BUF_IN]);
			else
				taesd_prep<__half><<<blocks, tpb, 0, s>>>((const __half *)lat, (int)g->channels,
									   (int)g->cin1, (int)(h * w), total,
									   buf[EGR_TAESD_BUF_IN]);
			CK(cudaGetLastError(), "taesd_prep launch");
			for (int i = 0; i < EGR_TAESD_NCONV; i++) {
				const struct egr_taesd_conv *c = &g->plan[i];
				conv_args a;
				memset(&a, 0, sizeof(a));
				a.H = (int)(h << c->shift);
				a.W = (int)(w << c->shift);
				a.up = !!(c->flags & EGR_TAESD_UPSAMPLE);
				a.relu = !!(c->flags & EGR_TAESD_RELU);
				a.sh = a.up ? a.H / 2 : a.H;
				a.sw = a.up ? a.W / 2 : a.W;
				a.src = buf[c->src];
				a.dst = c->dst == EGR_TAESD_BUF_OUT ? NULL : buf[c->dst];
				a.res = (c->flags & EGR_TAESD_RESIDUAL) ? buf[c->res] : NULL;
				a.wt = g->conv[i].wt;
				a.bias = g->conv[i].bias;
				a.tiles_x = (a.W + TW - 1) / TW;
				a.tiles_per_frame = a.tiles_x * ((a.H + TH - 1) / TH);
				a.ntiles = a.tiles_per_frame * (int)nb;
				a.out_mode = (int)format;
				a.out = (char *)d_out + (size_t)f0 * out_frame;
				cudaError_t e = launch_conv(g, i, a, s);
				if (e != cudaSuccess) {
					egr_errf(err, errlen, "taesd conv '%s' launch: %s", c->name, cudaGetErrorString(e));
					return -EIO;
				}
			}
		}
	}
	return 0;
fail:
	return r;
}
