/*
 * cuda_kernels: the GPU latent2rgb decoder, bit-exact with daemon/frame.c.
 *
 * Included by backend_cuda.cu and by the GPU tests (which time the kernels
 * directly); everything here has internal linkage, so each translation unit
 * gets its own copy and nothing clashes at link time.
 *
 * Two kernels per chunk, both on the caller's stream:
 *
 *   egr_k_l2r_lin   stage 1 of frame.c: per latent pixel, the 3 linear sums
 *                   bias + sum_c lat[c] * W[c][k], read straight from the
 *                   f16 or f32 latents (the conversion happens here, on the
 *                   GPU), written as float4 [frames][lh][lw] (w unused).
 *   egr_k_l2r_out   stage 2: bilinear x8 + quantise, and for y4m the
 *                   RGB->I420 conversion fused in: one thread owns an 8x2
 *                   block of output pixels, i.e. four 2x2 chroma blocks, so
 *                   it emits 16 Y + 4 Cb + 4 Cr bytes without the RGB ever
 *                   leaving registers.  For png the same thread emits 48
 *                   RGB24 bytes.  Stores are 8-byte (Y, RGB) and 4-byte
 *                   (Cb, Cr) words, contiguous across a warp.
 *
 * Why stage 1 is a separate kernel: it touches 1/64 of the pixels, its
 * float4 output (1/12 of the RGB bytes) stays in L2, and computing each
 * linear sum exactly once keeps the exactness argument trivial: the same
 * value feeds every output pixel, as on the CPU.
 *
 * Exactness (see docs/CUDA.md): every float operation below is one IEEE
 * binary32 add, subtract or multiply with round-to-nearest, written with
 * __fadd_rn/__fsub_rn/__fmul_rn (which the compiler never contracts into an
 * FMA; -fmad=false in NVFLAGS guards the rest), in the order frame.c
 * performs them; f16 -> f32 is exact; the source coordinates and the colour
 * conversion are integer arithmetic copied from frame.c.
 */
#ifndef EGR_CUDA_KERNELS_CUH
#define EGR_CUDA_KERNELS_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "config/job.h"
#include "daemon/decode/frame.h"
#include "daemon/formats/npy.h"
}

#define EGR_K_OUT_BX 32	/* threads per block along x: 32 x 8 = 256 output columns */
#define EGR_K_OUT_BY 8	/* along y: 8 x 2 = 16 output rows */
#define EGR_K_LIN_THREADS 256

static __device__ __forceinline__ float egr_d_load(const float *p)
{
	return *p;
}

static __device__ __forceinline__ float egr_d_load(const __half *p)
{
	return __half2float(*p);	/* exact: every half is a float */
}

/* frame.c's egr_quant_u8, operation for operation */
static __device__ __forceinline__ uint8_t egr_d_quant(float v)
{
	if (!(v > -1.0f))	/* also NaN */
		v = -1.0f;
	if (v > 1.0f)
		v = 1.0f;
	float t = __fmul_rn(__fadd_rn(v, 1.0f), 127.5f);
	t = __fadd_rn(t, 0.5f);
	return (uint8_t)__float2int_rz(t);
}

/* frame.c's l2r_src, mirrored on purpose (bit-exact CPU/GPU): source cell and weight for output index o */
static __device__ __forceinline__ void egr_d_src(uint32_t o, uint32_t n, uint32_t *i0, uint32_t *i1,
						 float *f)
{
	int num = 2 * (int)o - 7;	/* s = num / 16 */
	if (num <= 0) {
		*i0 = *i1 = 0;
		*f = 0.0f;
		return;
	}
	uint32_t i = (uint32_t)num >> 4;
	*f = __fmul_rn((float)(num & 15), 0.0625f);
	if (i >= n - 1) {
		*i0 = *i1 = n - 1;
		*f = 0.0f;
		return;
	}
	*i0 = i;
	*i1 = i + 1;
}

/* top = a + (b - a) * f, as frame.c writes it */
static __device__ __forceinline__ float egr_d_lerp(float a, float b, float f)
{
	return __fadd_rn(a, __fmul_rn(__fsub_rn(b, a), f));
}

/*
 * Stage 1.  One thread per latent pixel of the chunk.  The channel loop is
 * unrolled to MAXC with a guard so that the weights are read with
 * compile-time offsets from the parameter bank (a run-time index into a
 * kernel parameter array would spill it to local memory).  MAXC is 16 for
 * the common 4- and 16-channel latents (the loop every earlier build ran) and
 * EGR_L2R_MAX_CHANNELS for the rest; the sum is the same either way: channel
 * by channel, in frame.c's order.
 */
template <typename T, uint32_t MAXC>
static __global__ void __launch_bounds__(EGR_K_LIN_THREADS)
egr_k_l2r_lin(const struct egr_l2r p, const T *__restrict__ lat, float4 *__restrict__ lin,
	      uint32_t plane, uint64_t total)
{
	uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= total)
		return;
	uint64_t f = i / plane, px = i - f * plane;
	const T *l = lat + f * p.channels * plane + px;
	float a0 = p.bias[0], a1 = p.bias[1], a2 = p.bias[2];
#pragma unroll
	for (uint32_t c = 0; c < MAXC; c++) {
		if (c < p.channels) {
			float v = egr_d_load(l + (uint64_t)c * plane);
			a0 = __fadd_rn(a0, __fmul_rn(v, p.w[c * 3 + 0]));
			a1 = __fadd_rn(a1, __fmul_rn(v, p.w[c * 3 + 1]));
			a2 = __fadd_rn(a2, __fmul_rn(v, p.w[c * 3 + 2]));
		}
	}
	lin[i] = make_float4(a0, a1, a2, 0.0f);
}

template <typename T>
static inline void egr_cuda_launch_l2r_lin(const struct egr_l2r *p, const void *lat, float4 *lin,
					   uint32_t plane, uint64_t total, cudaStream_t s)
{
	const unsigned nb = (unsigned)((total + EGR_K_LIN_THREADS - 1) / EGR_K_LIN_THREADS);

	if (p->channels <= 16)
		egr_k_l2r_lin<T, 16><<<nb, EGR_K_LIN_THREADS, 0, s>>>(*p, (const T *)lat, lin, plane, total);
	else
		egr_k_l2r_lin<T, EGR_L2R_MAX_CHANNELS><<<nb, EGR_K_LIN_THREADS, 0, s>>>(*p, (const T *)lat, lin,
											 plane, total);
}

/*
 * Stage 2.  Thread (gx, gy) of frame blockIdx.z owns output columns
 * [8gx, 8gx+8) of rows 2gy and 2gy+1.  Width is a multiple of 8 (8 * lw),
 * so every thread is full and every store below is naturally aligned:
 * frame bytes are multiples of 32 (I420: 96*lh*lw) or 192 (RGB: 192*lh*lw),
 * the Y row is 8*lw, the chroma row 4*lw, the RGB row 24*lw bytes.
 */
template <bool Y4M>
static __global__ void __launch_bounds__(EGR_K_OUT_BX *EGR_K_OUT_BY)
egr_k_l2r_out(const float4 *__restrict__ lin_all, uint8_t *__restrict__ out_all, uint32_t lh,
	      uint32_t lw, uint64_t frame_bytes)
{
	const uint32_t ow = lw * EGR_L2R_SCALE, oh = lh * EGR_L2R_SCALE;
	const uint32_t gx = blockIdx.x * blockDim.x + threadIdx.x;
	const uint32_t gy = blockIdx.y * blockDim.y + threadIdx.y;
	if (gx >= ow / 8 || gy >= oh / 2)
		return;
	const float4 *lin = lin_all + (uint64_t)blockIdx.z * lh * lw;
	uint8_t *out = out_all + (uint64_t)blockIdx.z * frame_bytes;

	uint32_t x0[8], x1[8];
	float fx[8];
#pragma unroll
	for (int j = 0; j < 8; j++)
		egr_d_src(gx * 8 + j, lw, &x0[j], &x1[j], &fx[j]);

	/*
	 * Four float4 loads per pixel, served by L1: each thread's 16 pixels
	 * touch at most 3 columns of 2 latent rows.  Loading those 6 values once
	 * and selecting among them was measured slower (10.3 vs 8.1 ms for 1600
	 * 1024x1024 frames on an H100: the selects cost more than the L1 hits).
	 */
	uint8_t px[2][8][3];
#pragma unroll
	for (int r = 0; r < 2; r++) {
		uint32_t y0, y1;
		float fy;
		egr_d_src(gy * 2 + r, lh, &y0, &y1, &fy);
		const float4 *row0 = lin + (uint64_t)y0 * lw, *row1 = lin + (uint64_t)y1 * lw;
#pragma unroll
		for (int j = 0; j < 8; j++) {
			float4 v00 = row0[x0[j]], v01 = row0[x1[j]];
			float4 v10 = row1[x0[j]], v11 = row1[x1[j]];
			float t, b;
			t = egr_d_lerp(v00.x, v01.x, fx[j]);
			b = egr_d_lerp(v10.x, v11.x, fx[j]);
			px[r][j][0] = egr_d_quant(egr_d_lerp(t, b, fy));
			t = egr_d_lerp(v00.y, v01.y, fx[j]);
			b = egr_d_lerp(v10.y, v11.y, fx[j]);
			px[r][j][1] = egr_d_quant(egr_d_lerp(t, b, fy));
			t = egr_d_lerp(v00.z, v01.z, fx[j]);
			b = egr_d_lerp(v10.z, v11.z, fx[j]);
			px[r][j][2] = egr_d_quant(egr_d_lerp(t, b, fy));
		}
	}

	if constexpr (!Y4M) {
#pragma unroll
		for (int r = 0; r < 2; r++) {
			uint64_t w[3] = {0, 0, 0};
#pragma unroll
			for (int b = 0; b < 24; b++)
				w[b / 8] |= (uint64_t)px[r][b / 3][b % 3] << (8 * (b % 8));
			uint64_t *o = (uint64_t *)(out + ((uint64_t)(gy * 2 + r) * ow + gx * 8) * 3);
			o[0] = w[0];
			o[1] = w[1];
			o[2] = w[2];
		}
	} else {
		/* I420, integers exactly as egr_frame_rgb_to_i420 */
#pragma unroll
		for (int r = 0; r < 2; r++) {
			uint64_t yw = 0;
#pragma unroll
			for (int j = 0; j < 8; j++) {
				int R = px[r][j][0], G = px[r][j][1], B = px[r][j][2];
				uint32_t yv = (uint32_t)(((66 * R + 129 * G + 25 * B + 128) >> 8) + 16);
				yw |= (uint64_t)(yv & 0xff) << (8 * j);
			}
			*(uint64_t *)(out + (uint64_t)(gy * 2 + r) * ow + gx * 8) = yw;
		}
		uint32_t cbw = 0, crw = 0;
#pragma unroll
		for (int q = 0; q < 4; q++) {
			const uint8_t *a0 = px[0][2 * q], *a1 = px[0][2 * q + 1];
			const uint8_t *b0 = px[1][2 * q], *b1 = px[1][2 * q + 1];
			int R = (a0[0] + a1[0] + b0[0] + b1[0] + 2) >> 2;
			int G = (a0[1] + a1[1] + b0[1] + b1[1] + 2) >> 2;
			int B = (a0[2] + a1[2] + b0[2] + b1[2] + 2) >> 2;
			uint32_t cb = (uint32_t)(((-38 * R - 74 * G + 112 * B + 128) >> 8) + 128);
			uint32_t cr = (uint32_t)(((112 * R - 94 * G - 18 * B + 128) >> 8) + 128);
			cbw |= (cb & 0xff) << (8 * q);
			crw |= (cr & 0xff) << (8 * q);
		}
		const uint64_t ysz = (uint64_t)ow * oh, csz = ysz / 4;
		const uint64_t coff = (uint64_t)gy * (ow / 2) + gx * 4;
		*(uint32_t *)(out + ysz + coff) = cbw;
		*(uint32_t *)(out + ysz + csz + coff) = crw;
	}
}

/*
 * Launch the decode of nframes frames: latents [nframes][C][lh][lw] of
 * dtype, lin scratch of nframes*lh*lw float4, out nframes*frame_bytes.
 * Returns the launch error (cudaGetLastError), cudaSuccess otherwise.
 */
static inline cudaError_t egr_cuda_launch_l2r(const struct egr_l2r *p, uint32_t dtype,
					      uint32_t format, const void *lat, float4 *lin,
					      uint8_t *out, uint32_t nframes, uint32_t lh,
					      uint32_t lw, uint64_t frame_bytes, cudaStream_t s)
{
	const uint32_t plane = lh * lw;
	const uint64_t total = (uint64_t)plane * nframes;

	if (dtype == EGR_DT_F16)
		egr_cuda_launch_l2r_lin<__half>(p, lat, lin, plane, total, s);
	else
		egr_cuda_launch_l2r_lin<float>(p, lat, lin, plane, total, s);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return e;
	const uint32_t ow = lw * EGR_L2R_SCALE, oh = lh * EGR_L2R_SCALE;
	dim3 blk(EGR_K_OUT_BX, EGR_K_OUT_BY);
	dim3 grid((ow / 8 + EGR_K_OUT_BX - 1) / EGR_K_OUT_BX, (oh / 2 + EGR_K_OUT_BY - 1) / EGR_K_OUT_BY,
		  nframes);
	if (format == EGR_FMT_Y4M)
		egr_k_l2r_out<true><<<grid, blk, 0, s>>>(lin, out, lh, lw, frame_bytes);
	else
		egr_k_l2r_out<false><<<grid, blk, 0, s>>>(lin, out, lh, lw, frame_bytes);
	return cudaGetLastError();
}

#endif
