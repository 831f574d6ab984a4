/*
 * taesd_cuda: TAESD decoder kernels; see taesd_cuda.h.
 *
 * Which kernel runs a conv: the 64 -> 64 convs 64 pixels wide and up on a
 * compute capability 9.0 device, the Hopper kernel (taesd_wgmma.cuh); the
 * output conv (64 -> 3), taesd_out_conv; every other conv, taesd_conv.  On
 * CC >= 9.0 each conv is launched with programmatic dependent launch: its
 * blocks load their weights while the previous kernel finishes (measured
 * there, H100, batch 16, decode alone: +4.4% at 256², +2.2% at 512², +0.6%
 * at 1024²).
 *
 * taesd_conv is an implicit GEMM: M = output pixels, N = output
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
 * way.
 *
 * flux_2's pool branch (Blocks 3, 4, 5, at latent resolution, so plain
 * kernels suffice) runs before the Block's first conv, in place on its
 * input x, in three kernels with fp32 weights and arithmetic:
 *   pool_expand   t = Conv1x1(64 -> 256)(x), t in fp32; each block also
 *                 writes its tile's per-group sum and sum of squares (double)
 *   pool_stats    per (frame, group): the tiles' partial sums, added in a
 *                 fixed order (deterministic, no atomics) -> mean, rstd;
 *                 folded with the affine into scale and shift per channel
 *   pool_project  x += Conv1x1(256 -> 64)(ReLU(t * scale + shift)), x fp16
 * Scratch lives in the two activation buffers the Block has not written yet
 * (t in the first conv's destination, the sums in the third buffer).
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
#include "daemon/decode/quant_cuda.cuh"
#include "daemon/decode/taesd_wgmma.cuh"

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

/* egr_taesd_quant_u8, the same operations (quant_cuda.cuh) */
__device__ __forceinline__ int quant_u8(float v)
{
	return egr_d_quant01(v);
}

template <int CIN, int COUTP>
struct conv_smem {
	static constexpr int KS = 9 * CIN + 8;		/* weight row stride (halves) */
	static constexpr int PS = CIN + 8;		/* halo pixel stride (halves) */
	static constexpr int OS = COUTP + 8;		/* staging row stride (halves) */
	static constexpr int IN_HALVES = (HALO * PS > BM * OS ? HALO * PS : BM * OS);
	static constexpr size_t bytes = (size_t)COUTP * KS * 2 + (size_t)IN_HALVES * 2 + COUTP * 4;
};

template <int CIN, int COUTP, int WM, int WN>
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
	tw::pdl_wait();
	tw::pdl_launch();

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
		__syncthreads();	/* staging is the next tile's halo */
	}
}

/*
 * The output conv (64 -> 3) on its own kernel.  As an implicit GEMM (it was
 * taesd_conv with 8 padded output channels) it is 1/21 of a 64 -> 64 conv's
 * arithmetic but reads each input element once per tap from shared memory
 * (9 x 128 B per pixel): 474 us of a 16-frame 512² decode, 7%.  Turned
 * round, it reads each input pixel once (260 us, DRAM 62% busy; the decode
 * 3.6% faster at 512²; ncu and test_taesd_gpu --bench, H100, 2026-11-26):
 *   Y[p][tap][c] = sum_ci x[p][ci] * w[c][tap][ci]   a 1x1 GEMM, N = 27 (-> 32)
 *   out[p][c]    = bias[c] + sum_tap Y[p + off(tap)][tap][c]
 * A block owns TH x TW output pixels.  Its warps compute Y for the tile's
 * (TH + 2) x (TW + 2) halo 16 pixels at a time with mma.sync: A fragments
 * come straight from global memory as 16-byte loads (the K order inside a
 * k16 slice is free: the B fragments, loaded once per thread from the conv's
 * weights, use the same permutation), Y goes to shared memory in fp32, and
 * each thread then sums the nine taps of two horizontally adjacent output
 * pixels and writes them as RAW, RGB24 or I420 (a warp holds two tile rows,
 * so the 2x2 chroma quads pair lane l with lane l + 16; frame sizes are
 * multiples of 8, so quads never straddle tiles).  The sums are the implicit
 * GEMM's in another order: fp32 rounding apart, the same values.
 */
#define OC_TH 16
#define OC_TW 32
#define OC_HW (OC_TW + 2)
#define OC_HALO ((OC_TH + 2) * OC_HW)
#define OC_GROUPS ((OC_HALO + 15) / 16)
#define OC_N 27		/* 9 taps x 3 channels; odd, so the epilogue's reads spread over the banks */
#define OC_THR 256	/* 8 warps x 2 rows = OC_TH; 16 pixel pairs a row = OC_TW */
#define OC_SMEM (OC_HALO * OC_N * (int)sizeof(float))

struct out_args {
	const __half *src;	/* NHWC fp16, 64 channels, H x W */
	const __half *wt;	/* [8][3][3][64], couts 3..7 zero */
	const float *bias;
	int H, W, tiles_x, tiles_per_frame;
	int out_mode;		/* enum egr_format */
	void *out;
};

/* thread q's 32-bit word j (0..7) of a pixel holds channels ch, ch + 1: two 16-byte loads, 8q.. and 32 + 8q.. */
__device__ __forceinline__ int oc_chan(int q, int j)
{
	return j < 4 ? 8 * q + 2 * j : 32 + 8 * q + 2 * (j - 4);
}

__global__ void __launch_bounds__(OC_THR, 3) taesd_out_conv(const out_args a)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *sY = (float *)smem;	/* [OC_HALO][OC_N] */
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const int q = lane & 3, r = lane >> 2;
	const int n = blockIdx.x / a.tiles_per_frame, rr = blockIdx.x % a.tiles_per_frame;
	const int ty0 = (rr / a.tiles_x) * OC_TH, tx0 = (rr % a.tiles_x) * OC_TW;
	const int H = a.H, W = a.W;

	/* B: k16 slice kc of column nn = tap * 3 + c is words 2kc, 2kc + 1 of thread q's channels */
	uint32_t bf[4][4][2];
#pragma unroll
	for (int nt = 0; nt < 4; nt++) {
		const int nn = nt * 8 + r, tap = nn / 3, c = nn % 3;
#pragma unroll
		for (int kc = 0; kc < 4; kc++)
#pragma unroll
			for (int h = 0; h < 2; h++)
				bf[kc][nt][h] = nn < OC_N ? __ldg((const uint32_t *)(a.wt + (c * 9 + tap) * 64 +
										    oc_chan(q, 2 * kc + h)))
							  : 0u;
	}

	tw::pdl_wait();
	tw::pdl_launch();

	/* Y for the halo, 16 pixels (rows r, r + 8 of the m16 tile) a step */
#pragma unroll 1
	for (int g = warp; g < OC_GROUPS; g += OC_THR / 32) {
		uint4 x[2][2];
#pragma unroll
		for (int i = 0; i < 2; i++) {
			const int hp = g * 16 + r + 8 * i;
			const int gy = ty0 - 1 + hp / OC_HW, gx = tx0 - 1 + hp % OC_HW;
			x[i][0] = x[i][1] = make_uint4(0, 0, 0, 0);	/* zero padding */
			if (hp < OC_HALO && gy >= 0 && gy < H && gx >= 0 && gx < W) {
				const uint4 *p = (const uint4 *)(a.src + (((size_t)n * H + gy) * W + gx) * 64);
				x[i][0] = __ldg(p + q);
				x[i][1] = __ldg(p + 4 + q);
			}
		}
		const uint32_t *w0 = (const uint32_t *)x[0], *w1 = (const uint32_t *)x[1];
		float acc[4][4];
#pragma unroll
		for (int nt = 0; nt < 4; nt++)
			acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll
		for (int kc = 0; kc < 4; kc++) {
			const uint32_t af[4] = { w0[2 * kc], w1[2 * kc], w0[2 * kc + 1], w1[2 * kc + 1] };
#pragma unroll
			for (int nt = 0; nt < 4; nt++)
				mma16816(acc[nt], af, bf[kc][nt]);
		}
#pragma unroll
		for (int nt = 0; nt < 4; nt++)
#pragma unroll
			for (int e = 0; e < 4; e++) {
				const int row = g * 16 + r + (e >> 1) * 8, col = nt * 8 + 2 * q + (e & 1);
				if (col < OC_N && row < OC_HALO)
					sY[row * OC_N + col] = acc[nt][e];
			}
	}
	__syncthreads();

	/* two output pixels a thread: tile row oy (even in lanes 0..15), columns ox, ox + 1 */
	const int oy = warp * 2 + (lane >> 4), ox = (lane & 15) * 2;
	const int gy = ty0 + oy, gx = tx0 + ox;
	float v[2][3];
#pragma unroll
	for (int j = 0; j < 2; j++)
#pragma unroll
		for (int c = 0; c < 3; c++) {
			float s = 0.0f;
#pragma unroll
			for (int tap = 0; tap < 9; tap++)
				s += sY[((oy + tap / 3) * OC_HW + ox + j + tap % 3) * OC_N + tap * 3 + c];
			v[j][c] = s + __ldg(a.bias + c);
		}
	const bool ok = gy < H && gx < W;	/* W is even: both pixels or neither */
	const size_t HW = (size_t)H * W, pix = (size_t)gy * W + gx;
	if (a.out_mode == EGR_FMT_RAW) {
		if (!ok)
			return;
		float *o = (float *)a.out + (size_t)n * 3 * HW + pix;
#pragma unroll
		for (int j = 0; j < 2; j++) {
			o[j] = v[j][0];
			o[HW + j] = v[j][1];
			o[2 * HW + j] = v[j][2];
		}
	} else if (a.out_mode == EGR_FMT_PNG) {
		if (!ok)
			return;
		uint8_t *o = (uint8_t *)a.out + ((size_t)n * HW + pix) * 3;
#pragma unroll
		for (int j = 0; j < 2; j++)
#pragma unroll
			for (int c = 0; c < 3; c++)
				o[j * 3 + c] = quant_u8(v[j][c]);
	} else {
		int q8[2][3], sum[3];
#pragma unroll
		for (int c = 0; c < 3; c++) {
			q8[0][c] = quant_u8(v[0][c]);
			q8[1][c] = quant_u8(v[1][c]);
			sum[c] = q8[0][c] + q8[1][c];
			sum[c] += __shfl_down_sync(0xffffffffu, sum[c], 16);	/* the row below (H is even) */
		}
		if (!ok)
			return;
		uint8_t *o = (uint8_t *)a.out + (size_t)n * (HW + HW / 2);
#pragma unroll
		for (int j = 0; j < 2; j++)
			o[pix + j] = (uint8_t)(((66 * q8[j][0] + 129 * q8[j][1] + 25 * q8[j][2] + 128) >> 8) + 16);
		if (lane < 16) {
			const int rr8 = (sum[0] + 2) >> 2, gg8 = (sum[1] + 2) >> 2, bb8 = (sum[2] + 2) >> 2;
			const size_t ci = (size_t)(gy / 2) * (W / 2) + gx / 2;
			o[HW + ci] = (uint8_t)(((-38 * rr8 - 74 * gg8 + 112 * bb8 + 128) >> 8) + 128);
			o[HW + HW / 4 + ci] = (uint8_t)(((112 * rr8 - 94 * gg8 - 18 * bb8 + 128) >> 8) + 128);
		}
	}
}

/* ---- flux_2 pool branch ---- */
#define POOL_CH EGR_TAESD_POOL_CH
#define POOL_PX1 32	/* pixels per block, pool_expand */
#define POOL_PX3 16	/* pixels per block, pool_project */

/* (s, q) summed over the warp of thread tid, stored in red[warp] by its first lane */
__device__ __forceinline__ void warp_sums(double s, double q, double2 *red, int tid)
{
	for (int o = 16; o; o >>= 1) {
		s += __shfl_down_sync(0xffffffffu, s, o);
		q += __shfl_down_sync(0xffffffffu, q, o);
	}
	if ((tid & 31) == 0)
		red[tid >> 5] = make_double2(s, q);
}

/* grid: frames x tiles of POOL_PX1 pixels; 256 threads, one per output channel */
__global__ void __launch_bounds__(POOL_CH) taesd_pool_expand(const __half *x, const float *w0t, float *t,
							     double2 *part, int HW, int tiles)
{
	__shared__ float sx[POOL_PX1][64];
	__shared__ double2 sred[POOL_CH / 32];
	const int c = threadIdx.x, n = blockIdx.x / tiles, tile = blockIdx.x % tiles;
	const int p0 = tile * POOL_PX1, np = HW - p0 < POOL_PX1 ? HW - p0 : POOL_PX1;
	const __half *xs = x + ((size_t)n * HW + p0) * 64;
	float w[64];

	for (int i = c; i < np * 64; i += POOL_CH)
		sx[i / 64][i % 64] = __half2float(xs[i]);
#pragma unroll
	for (int ci = 0; ci < 64; ci++)
		w[ci] = w0t[ci * POOL_CH + c];
	__syncthreads();
	double s = 0.0, q = 0.0;
	float *tp = t + ((size_t)n * HW + p0) * POOL_CH + c;
	for (int p = 0; p < np; p++) {
		float a = 0.0f;
#pragma unroll
		for (int ci = 0; ci < 64; ci++)
			a = __fmaf_rn(w[ci], sx[p][ci], a);
		tp[(size_t)p * POOL_CH] = a;
		s += a;
		q += (double)a * a;
	}
	/* a group is 64 channels = two warps */
	warp_sums(s, q, sred, c);
	__syncthreads();
	if (c < EGR_TAESD_POOL_GROUPS) {
		double2 u = sred[2 * c], v = sred[2 * c + 1];
		part[((size_t)n * tiles + tile) * EGR_TAESD_POOL_GROUPS + c] = make_double2(u.x + v.x, u.y + v.y);
	}
}

/* grid: frames x groups; 64 threads, one per channel of the group */
__global__ void __launch_bounds__(64) taesd_pool_stats(const double2 *part, int tiles, int HW, const float *gamma,
						       const float *beta, float2 *ss)
{
	__shared__ double2 sred[2];
	const int n = blockIdx.x / EGR_TAESD_POOL_GROUPS, g = blockIdx.x % EGR_TAESD_POOL_GROUPS, tid = threadIdx.x;
	double s = 0.0, q = 0.0;

	for (int i = tid; i < tiles; i += 64) {
		double2 v = part[((size_t)n * tiles + i) * EGR_TAESD_POOL_GROUPS + g];
		s += v.x;
		q += v.y;
	}
	warp_sums(s, q, sred, tid);
	__syncthreads();
	const double N = 64.0 * HW;
	const double mean = (sred[0].x + sred[1].x) / N;
	double var = (sred[0].y + sred[1].y) / N - mean * mean;
	if (var < 0.0)
		var = 0.0;
	const double rstd = 1.0 / sqrt(var + EGR_TAESD_POOL_EPS);
	const int c = g * 64 + tid;
	const double sc = gamma[c] * rstd;
	ss[(size_t)n * POOL_CH + c] = make_float2((float)sc, (float)(beta[c] - mean * sc));
}

/* grid: frames x tiles of POOL_PX3 pixels; 256 threads = 64 output channels x 4 pixel lanes */
__global__ void __launch_bounds__(POOL_CH) taesd_pool_project(__half *x, const float *t, const float2 *ss,
							      const float *w3t, int HW, int tiles)
{
	__shared__ float sh[POOL_PX3][POOL_CH];
	const int tid = threadIdx.x, n = blockIdx.x / tiles, tile = blockIdx.x % tiles;
	const int p0 = tile * POOL_PX3, np = HW - p0 < POOL_PX3 ? HW - p0 : POOL_PX3;
	const float *tp = t + ((size_t)n * HW + p0) * POOL_CH;
	const float2 *sn = ss + (size_t)n * POOL_CH;

	for (int i = tid; i < POOL_PX3 * POOL_CH; i += POOL_CH) {
		float y = 0.0f;
		if (i / POOL_CH < np) {
			float2 v = sn[i % POOL_CH];
			y = __fmaf_rn(tp[i], v.x, v.y);
		}
		sh[i / POOL_CH][i % POOL_CH] = y > 0.0f ? y : 0.0f;
	}
	__syncthreads();
	const int co = tid & 63, lane = tid >> 6;
	float acc[POOL_PX3 / 4];
#pragma unroll
	for (int j = 0; j < POOL_PX3 / 4; j++)
		acc[j] = 0.0f;
	for (int k = 0; k < POOL_CH; k++) {
		const float wv = w3t[k * 64 + co];
#pragma unroll
		for (int j = 0; j < POOL_PX3 / 4; j++)
			acc[j] = __fmaf_rn(wv, sh[lane + 4 * j][k], acc[j]);
	}
#pragma unroll
	for (int j = 0; j < POOL_PX3 / 4; j++) {
		int p = lane + 4 * j;
		if (p < np) {
			__half *xp = x + ((size_t)n * HW + p0 + p) * 64 + co;
			*xp = __float2half_rn(__half2float(*xp) + acc[j]);
		}
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

/* flux_2: one pool branch's weights, fp32, transposed for coalesced reads */
struct gpool {
	float *w0t;		/* [64][256]: w0t[ci][c] = pool.0.weight[c][ci] */
	float *gamma, *beta;	/* [256] */
	float *w3t;		/* [256][64]: w3t[k][co] = pool.3.weight[co][k] */
};

/*
 * One decode call's launches as a CUDA graph: a chunk's ~35 kernels become
 * one launch, and the GPU runs them without the gaps of a stream launch.
 * Keyed by everything the launches bake in (pointers included: the backend
 * decodes from and into a few fixed VRAM buffers, so a handful of graphs
 * serve a whole job).
 */
#define TAESD_GRAPHS 8
struct tgraph {
	const void *lat;
	void *out, *ws;
	uint32_t dtype, nframes, h, w, format;
	cudaGraphExec_t exec;
};

struct egr_taesd_gpu {
	int device, nsm, warps;
	int graphs;		/* capture decodes on non-default streams (EGR_TAESD_GRAPH not "0") */
	struct tgraph graph[TAESD_GRAPHS];
	unsigned graph_next;	/* the slot the next new graph replaces */
	int pdl;		/* programmatic dependent launch of the convs (EGR_TAESD_PDL not "0", CC >= 9.0) */
	int wgmma;		/* the 64 -> 64 convs 64 pixels wide and up on tw::taesd_conv_wgmma */
	uint32_t channels, cin1;
	struct egr_taesd_conv plan[EGR_TAESD_NCONV];	/* no weight pointers */
	struct gconv conv[EGR_TAESD_NCONV];
	uint32_t npool;
	struct gpool pool[EGR_TAESD_NPOOL];
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

/*
 * Launch k<<<grid, block, smem, s>>>(args), with programmatic dependent
 * launch when pdl (the kernel must call tw::pdl_wait before it touches an
 * activation: see taesd_wgmma.cuh).
 */
template <typename A>
static cudaError_t launch(void (*k)(A), int grid, int block, size_t smem, cudaStream_t s, const A &args, bool pdl)
{
	cudaLaunchConfig_t c = {};
	cudaLaunchAttribute at = {};

	c.gridDim = dim3((unsigned)grid);
	c.blockDim = dim3((unsigned)block);
	c.dynamicSmemBytes = smem;
	c.stream = s;
	at.id = cudaLaunchAttributeProgrammaticStreamSerialization;
	at.val.programmaticStreamSerializationAllowed = 1;
	c.attrs = &at;
	c.numAttrs = pdl ? 1 : 0;
	return cudaLaunchKernelEx(&c, k, args);
}

/* blocks per SM of each instantiation, set by kernel_setup (in create: never while a graph is captured) */
template <int CIN, int COUTP, int WM, int WN>
static int conv_per_sm;

template <int CIN, int COUTP, int WM, int WN>
static cudaError_t kernel_setup(void)
{
	auto k = taesd_conv<CIN, COUTP, WM, WN>;
	const size_t sm = conv_smem<CIN, COUTP>::bytes;
	int n = 0;
	cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm);
	if (e == cudaSuccess)
		e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, WM * WN * 32, sm);
	conv_per_sm<CIN, COUTP, WM, WN> = n < 1 ? 1 : n;	/* a benign race: the same value */
	return e;
}

template <int CIN, int COUTP, int WM, int WN>
static cudaError_t kernel_launch(const conv_args &a, int nsm, cudaStream_t s, bool pdl)
{
	const int per_sm = conv_per_sm<CIN, COUTP, WM, WN>;
	int grid = a.ntiles < per_sm * nsm ? a.ntiles : per_sm * nsm;
	return launch(taesd_conv<CIN, COUTP, WM, WN>, grid, WM * WN * 32, conv_smem<CIN, COUTP>::bytes, s, a, pdl);
}

/*
 * The Hopper kernel (taesd_wgmma.cuh) runs the 64 -> 64 convs at least 64
 * pixels wide: in 128-pixel strips (WT = 128) from 128 up, where it is ahead
 * of taesd_conv (283 vs 248 TFLOP/s at 8 x 128², 409 vs 285 at 256², 488 vs
 * 318 at 512², bias + ReLU, H100), and in 64-pixel strips (WT = 64) below
 * 128, where a 128-pixel strip would be half empty (110 TFLOP/s at 64²
 * against taesd_conv's 150): the whole decode at 256² (64-wide layers at
 * twice the latent size) is 2% faster with them than with taesd_conv there,
 * and the same at 512² (batch 16, H100, 2026-11-26).  Narrower layers stay on
 * taesd_conv.
 */

template <int WT>
static int wgmma_per_sm;	/* set by wgmma_setup */

template <int WT>
static cudaError_t wgmma_setup(void)
{
	auto k = tw::taesd_conv_wgmma<WT>;
	int n = 0;
	cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, tw::cfg<WT>::bytes);
	if (e == cudaSuccess)
		e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, tw::NTHR, tw::cfg<WT>::bytes);
	wgmma_per_sm<WT> = n < 1 ? 1 : n;
	return e;
}

template <int WT>
static cudaError_t wgmma_launch(const conv_args &c, int nsm, cudaStream_t s, bool pdl)
{
	const int per_sm = wgmma_per_sm<WT>;
	tw::args a;

	a.x = c.src;
	a.res = c.res;
	a.out = c.dst;
	a.w = c.wt;
	a.bias = c.bias;
	a.H = c.H;
	a.W = c.W;
	a.sh = c.sh;
	a.sw = c.sw;
	a.up = c.up;
	a.relu = c.relu;
	a.tiles_x = (c.W + WT - 1) / WT;
	a.npairs = (c.H + 1) / 2;
	a.units = (long long)(c.ntiles / c.tiles_per_frame) * a.tiles_x * a.npairs;
	const long long grid = a.units < (long long)per_sm * nsm ? a.units : (long long)per_sm * nsm;
	return launch(tw::taesd_conv_wgmma<WT>, (int)grid, tw::NTHR, tw::cfg<WT>::bytes, s, a, pdl);
}

static cudaError_t out_setup(void)
{
	return cudaFuncSetAttribute(taesd_out_conv, cudaFuncAttributeMaxDynamicSharedMemorySize, OC_SMEM);
}

static cudaError_t out_launch(const conv_args &c, int nframes, cudaStream_t s, bool pdl)
{
	out_args a;

	a.src = c.src;
	a.wt = c.wt;
	a.bias = c.bias;
	a.H = c.H;
	a.W = c.W;
	a.tiles_x = (c.W + OC_TW - 1) / OC_TW;
	a.tiles_per_frame = a.tiles_x * ((c.H + OC_TH - 1) / OC_TH);
	a.out_mode = c.out_mode;
	a.out = c.out;
	return launch(taesd_out_conv, a.tiles_per_frame * nframes, OC_THR, OC_SMEM, s, a, pdl);
}

/* an A/B switch (benchmarks, tests): true when the environment variable name is "0" */
static bool env_off(const char *name)
{
	const char *env = getenv(name);

	return env && !strcmp(env, "0");
}

/* the Hopper kernel: a compute capability 9.0 device, unless EGR_TAESD_WGMMA=0 */
static int wgmma_wanted(int device)
{
	int major = 0, minor = 0;

	if (env_off("EGR_TAESD_WGMMA"))
		return 0;
	if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
	    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
		return 0;
	return major == 9 && minor == 0;
}

/* programmatic dependent launch: compute capability 9.0 and up, unless EGR_TAESD_PDL=0 */
static int pdl_wanted(int device)
{
	int major = 0;

	if (env_off("EGR_TAESD_PDL"))
		return 0;
	if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
		return 0;
	return major >= 9;
}

/* upload n floats (transposed rows x cols -> cols x rows when transpose) to a new device array */
static cudaError_t upload_f32(float **d, const float *h, int rows, int cols, bool transpose)
{
	size_t n = (size_t)rows * cols;
	float *tmp = (float *)malloc(n * sizeof(float));
	cudaError_t e;

	if (!tmp)
		return cudaErrorMemoryAllocation;
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			tmp[transpose ? (size_t)c * rows + r : (size_t)r * cols + c] = h[(size_t)r * cols + c];
	e = cudaMalloc((void **)d, n * sizeof(float));
	if (e == cudaSuccess)
		e = cudaMemcpy(*d, tmp, n * sizeof(float), cudaMemcpyHostToDevice);
	free(tmp);
	return e;
}

/* flux_2: the pool branches' weights */
static int upload_pools(struct egr_taesd_gpu *g, const struct egr_taesd *net, char *err, size_t errlen)
{
	int r = 0;

	for (uint32_t i = 0; i < net->npool; i++) {
		const struct egr_taesd_pool *p = &net->pool[i];
		struct gpool *gp = &g->pool[i];
		g->npool = i + 1;	/* destroy frees what was allocated */
		CK(upload_f32(&gp->w0t, p->w0, POOL_CH, 64, true), "cudaMalloc/cudaMemcpy(taesd pool weights)");
		CK(upload_f32(&gp->gamma, p->gamma, 1, POOL_CH, false), "cudaMalloc/cudaMemcpy(taesd pool weights)");
		CK(upload_f32(&gp->beta, p->beta, 1, POOL_CH, false), "cudaMalloc/cudaMemcpy(taesd pool weights)");
		CK(upload_f32(&gp->w3t, p->w3, 64, POOL_CH, true), "cudaMalloc/cudaMemcpy(taesd pool weights)");
	}
	return 0;
fail:
	return r;
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
	CK((kernel_setup<16, 64, 4, 2>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<64, 64, 4, 2>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<16, 64, 2, 2>()), "cudaFuncSetAttribute(taesd_conv)");
	CK((kernel_setup<64, 64, 2, 2>()), "cudaFuncSetAttribute(taesd_conv)");
	CK(out_setup(), "cudaFuncSetAttribute(taesd_out_conv)");
	g->wgmma = wgmma_wanted(device);
	g->graphs = !env_off("EGR_TAESD_GRAPH");
	if (g->wgmma) {
		CK(wgmma_setup<128>(), "cudaFuncSetAttribute(taesd_conv_wgmma)");
		CK(wgmma_setup<64>(), "cudaFuncSetAttribute(taesd_conv_wgmma)");
	}
	g->pdl = pdl_wanted(device);
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
	hw = NULL;
	r = upload_pools(g, net, err, errlen);
	if (r < 0)
		goto fail;
	*out = g;
	return 0;
fail:
	free(hw);
	egr_taesd_gpu_destroy(g);
	return r;
}

extern "C" int egr_taesd_gpu_uses_wgmma(const struct egr_taesd_gpu *g)
{
	return g->wgmma;
}

extern "C" void egr_taesd_gpu_destroy(struct egr_taesd_gpu *g)
{
	if (!g)
		return;
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		cudaFree(g->conv[i].wt);
		cudaFree(g->conv[i].bias);
	}
	for (uint32_t i = 0; i < g->npool; i++) {
		cudaFree(g->pool[i].w0t);
		cudaFree(g->pool[i].gamma);
		cudaFree(g->pool[i].beta);
		cudaFree(g->pool[i].w3t);
	}
	for (int i = 0; i < TAESD_GRAPHS; i++)
		if (g->graph[i].exec)
			cudaGraphExecDestroy(g->graph[i].exec);
	cudaFree(g->ws);
	free(g);
}

static cudaError_t launch_conv(struct egr_taesd_gpu *g, int i, const conv_args &a, cudaStream_t s)
{
	const struct gconv *gc = &g->conv[i];
	bool w8 = g->warps == 8;

	const bool pdl = g->pdl;

	if (gc->coutp == 8)
		return out_launch(a, a.ntiles / a.tiles_per_frame, s, pdl);
	if (gc->cinp == 64 && g->wgmma && a.W >= 128)
		return wgmma_launch<128>(a, g->nsm, s, pdl);
	if (gc->cinp == 64 && g->wgmma && a.W >= 64)
		return wgmma_launch<64>(a, g->nsm, s, pdl);
	if (gc->cinp == 16)
		return w8 ? kernel_launch<16, 64, 4, 2>(a, g->nsm, s, pdl)
			  : kernel_launch<16, 64, 2, 2>(a, g->nsm, s, pdl);
	return w8 ? kernel_launch<64, 64, 4, 2>(a, g->nsm, s, pdl)
		  : kernel_launch<64, 64, 2, 2>(a, g->nsm, s, pdl);
}

/*
 * flux_2: x += pool(x) for nb frames of HW pixels, x NHWC fp16 (64 ch);
 * scratch: t (nb x HW x 256 floats) and sums (a few KB per frame), both in
 * activation buffers that are free at this point.
 */
static cudaError_t launch_pool(const struct gpool *p, __half *x, void *t_scratch, void *sum_scratch, int nb, int HW,
			       cudaStream_t s)
{
	const int tiles1 = (HW + POOL_PX1 - 1) / POOL_PX1, tiles3 = (HW + POOL_PX3 - 1) / POOL_PX3;
	float *t = (float *)t_scratch;
	double2 *part = (double2 *)sum_scratch;
	float2 *ss = (float2 *)(part + (size_t)nb * tiles1 * EGR_TAESD_POOL_GROUPS);
	cudaError_t e;

	taesd_pool_expand<<<nb * tiles1, POOL_CH, 0, s>>>(x, p->w0t, t, part, HW, tiles1);
	if ((e = cudaGetLastError()) != cudaSuccess)
		return e;
	taesd_pool_stats<<<nb * EGR_TAESD_POOL_GROUPS, 64, 0, s>>>(part, tiles1, HW, p->gamma, p->beta, ss);
	if ((e = cudaGetLastError()) != cudaSuccess)
		return e;
	taesd_pool_project<<<nb * tiles3, POOL_CH, 0, s>>>(x, t, ss, p->w3t, HW, tiles3);
	return cudaGetLastError();
}

/* one decode's launches on s, the workspace already sized for batch frames */
static int launch_all(struct egr_taesd_gpu *g, cudaStream_t s, const void *d_lat, uint32_t dtype, uint32_t nframes,
		      uint32_t h, uint32_t w, uint32_t format, void *d_out, size_t batch, char *err, size_t errlen)
{
	const size_t full = (size_t)64 * h * w;		/* output pixels per frame */
	const size_t act = full * 64 * sizeof(__half);	/* one activation tensor per frame */
	__half *buf[5];
	int r = 0;

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
			taesd_prep<__half><<<blocks, tpb, 0, s>>>((const __half *)lat, (int)g->channels, (int)g->cin1,
								   (int)(h * w), total, buf[EGR_TAESD_BUF_IN]);
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
			cudaError_t e = cudaSuccess;
			if (c->flags & EGR_TAESD_POOL)	/* latent size; dst and the third buffer are free */
				e = launch_pool(&g->pool[c->pool], buf[c->src], buf[c->dst], buf[3 - c->src - c->dst],
						(int)nb, (int)(h * w), s);
			if (e != cudaSuccess) {
				egr_errf(err, errlen, "taesd pool '%s' launch: %s", g->plan[i].name, cudaGetErrorString(e));
				return -EIO;
			}
			e = launch_conv(g, i, a, s);
			if (e != cudaSuccess) {
				egr_errf(err, errlen, "taesd conv '%s' launch: %s", c->name, cudaGetErrorString(e));
				return -EIO;
			}
		}
	}
	return 0;
fail:
	return r;
}

/* the cached graph of exactly these launches, or NULL */
static struct tgraph *graph_find(struct egr_taesd_gpu *g, const void *lat, void *out, uint32_t dtype,
				 uint32_t nframes, uint32_t h, uint32_t w, uint32_t format)
{
	for (int i = 0; i < TAESD_GRAPHS; i++) {
		struct tgraph *t = &g->graph[i];
		if (t->exec && t->lat == lat && t->out == out && t->ws == g->ws && t->dtype == dtype &&
		    t->nframes == nframes && t->h == h && t->w == w && t->format == format)
			return t;
	}
	return NULL;
}

/*
 * Capture launch_all on s into a new graph, replacing the oldest.  0 with
 * *out the graph (nothing queued yet: the caller launches it); 0 with *out
 * NULL when capturing failed: nothing was queued and graphs are off for g
 * from now on (the caller launches directly: a refused capture costs speed,
 * not frames); -errno when launch_all itself failed.
 */
static int graph_capture(struct egr_taesd_gpu *g, cudaStream_t s, const void *d_lat, uint32_t dtype,
			 uint32_t nframes, uint32_t h, uint32_t w, uint32_t format, void *d_out, size_t batch,
			 struct tgraph **out, char *err, size_t errlen)
{
	struct tgraph *t = &g->graph[g->graph_next];
	cudaGraph_t graph = NULL;
	cudaGraphExec_t exec = NULL;
	cudaError_t e;
	int r;

	*out = NULL;
	if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess)
		goto off;
	r = launch_all(g, s, d_lat, dtype, nframes, h, w, format, d_out, batch, err, errlen);
	e = cudaStreamEndCapture(s, &graph);
	if (r < 0 || e != cudaSuccess || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
		if (graph)
			cudaGraphDestroy(graph);
		if (r < 0 && e == cudaSuccess)
			return r;	/* a real launch error, not the capture's */
		goto off;
	}
	cudaGraphDestroy(graph);
	if (t->exec)
		cudaGraphExecDestroy(t->exec);
	*t = (struct tgraph){ d_lat, d_out, g->ws, dtype, nframes, h, w, format, exec };
	g->graph_next = (g->graph_next + 1) % TAESD_GRAPHS;
	*out = t;
	return 0;
off:
	cudaGetLastError();	/* the capture's error is not the stream's */
	egr_warn("taesd: capturing a CUDA graph failed; launching kernels directly from now on");
	g->graphs = 0;
	return 0;
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
	const size_t act = (size_t)64 * h * w * 64 * sizeof(__half);	/* one activation tensor per frame */
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
	/* graphs need a stream of our own: the legacy default stream cannot be captured */
	if (g->graphs && s) {
		struct tgraph *t = graph_find(g, d_lat, d_out, dtype, nframes, h, w, format);
		if (!t && (r = graph_capture(g, s, d_lat, dtype, nframes, h, w, format, d_out, batch, &t, err, errlen)) < 0)
			return r;
		if (t) {
			CK(cudaGraphLaunch(t->exec, s), "cudaGraphLaunch(taesd decode)");
			return 0;
		}
	}
	return launch_all(g, s, d_lat, dtype, nframes, h, w, format, d_out, batch, err, errlen);
fail:
	return r;
}
