/*
 * taesd_wgmma.cuh: the Hopper (sm_90a) kernel for TAESD's 64 -> 64 3x3
 * convs, included by taesd_cuda.cu only.  Measured on the H100 against
 * taesd_conv (the mma.sync kernel, same data, one run): 488 vs 318 TFLOP/s
 * at 8 x 512², bias + ReLU (docs/TAESD.md).
 *
 * GEMM orientation: D[cout 64][pixels WT] = W[64 x 576] * X^T, so the output
 * channels are wgmma's M (= 64, one warpgroup) and WT = 128 pixels of ONE
 * output row are its N.  Why this way round: with the 64 output channels as
 * N, every m64n64k16 reads as many operand bytes from shared memory as the
 * tensor cores can consume (128 B per clock per SM); 128 pixels as N cut
 * that to 96.  A (weights) stays in shared memory for the whole persistent
 * kernel; B (pixels) comes straight out of the input halo rows.  Both
 * operands are K-major, no swizzle (core matrices of 8 rows x 16 bytes
 * stored contiguously):
 *   weights  [k-chunk 72][cout 64][8 halves]: LBO (next k-chunk) = 1024 B,
 *            SBO (next 8 couts) = 128 B; tap t, k16 step s starts at chunk
 *            8t + 2s.
 *   halo row [channel-group 8][pixel WT+2 (+1 pad)][8 halves]: LBO (next
 *            channel group) = CGS, SBO (next 8 pixels) = 128 B; tap kx
 *            starts kx pixels (kx * 16 B) in: without swizzle a start at
 *            any 16-byte boundary is legal, so one descriptor covers a whole
 *            tap of a whole row.
 * One output row = 9 taps x 4 k16 steps = 36 wgmma.m64nWTk16.
 *
 * Block = 2 warpgroups (256 threads), one block per SM (persistent).  The
 * work is a list of units (frame, column strip of WT pixels, pair of output
 * rows); each block takes a contiguous range, so it walks DOWN a column
 * strip: step p computes output rows 2p (warpgroup 0) and 2p+1 (warpgroup 1)
 * from halo rows 2p-1 .. 2p+2, kept in a ring of 6 row slots (4 in use, 2
 * being filled by cp.async with the next step's rows): each input row is
 * read from global memory once per strip.  Zero fill outside the image is
 * the padding; with UPSAMPLE the source pixel is (y/2, x/2), as in
 * taesd_conv: the nearest upsample costs nothing.
 *
 * Two accumulator sets: while step p's wgmma run, the warpgroup does step
 * p-1's epilogue: acc + bias (fp32) -> fp16, stmatrix .trans into a
 * per-warpgroup staging tile (the accumulator is [cout][pixel]; .trans makes
 * it NHWC), then 16-byte stores, the residual added in fp32 and ReLU applied
 * with taesd_conv's operations and roundings, so both kernels give the same
 * bytes for the same accumulator.  The residual is copied into the staging
 * tile by cp.async one step ahead (see step) and read back in the fragment
 * layout with ldmatrix .trans.  It may be the destination (the Block's
 * in-place skip add): a row's residual is copied in before the row is
 * written, and no other row's output touches it.
 *
 * Every step ends with wgmma.wait_group 0: ptxas cannot track a wgmma group
 * left in flight across a loop back-edge and would serialise every wgmma
 * (warning C7514); the cost is a short tensor-core gap per step.
 *
 * The device code exists only in the sm_90a pass (wgmma is specific to
 * compute capability 9.0): in the portable compute_90 PTX the kernel is
 * empty, and taesd_cuda.cu launches it only on a 9.0 device.
 */
#ifndef EGR_TAESD_WGMMA_CUH
#define EGR_TAESD_WGMMA_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TW_NO_WGMMA 1	/* device pass without sm_90a: the kernel compiles empty */
#endif

namespace tw {

/*
 * Programmatic dependent launch (compute capability 9.0): a kernel launched
 * with cudaLaunchAttributeProgrammaticStreamSerialization may start while
 * the previous one finishes; pdl_wait blocks until that one has completed
 * and its writes are visible, so everything before it may touch only what
 * no earlier kernel writes (the weights).  pdl_launch lets the next kernel
 * start as soon as every block of this one has called it.  Both are no-ops
 * in a kernel launched without the attribute.
 */
__device__ __forceinline__ void pdl_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.launch_dependents;\n" :::);
#endif
}

constexpr int NSLOT = 6;	/* halo-row ring */
constexpr int NTHR = 256;	/* 2 warpgroups */

template <int WT>
struct cfg {
	static constexpr int HP = WT + 2;		/* halo pixels per row */
	static constexpr int CGS = (WT + 3) * 16;	/* channel-group stride in a slot: +1 pixel pad */
	static constexpr int SLOT = 8 * CGS;		/* one halo row */
	static constexpr int OS = 144;			/* staging row: 64 couts + 8 pad, bytes */
	static constexpr int W_BYTES = 72 * 1024;	/* 64 x 576 fp16 */
	static constexpr int RING_OFF = W_BYTES;
	static constexpr int STAGE_OFF = RING_OFF + NSLOT * SLOT;
	static constexpr int STAGE_BYTES = WT * OS;	/* per warpgroup */
	static constexpr int bytes = STAGE_OFF + 2 * STAGE_BYTES;
};

struct args {
	const __half *x;	/* [N][sh][sw][64] */
	const __half *res;	/* [N][H][W][64] or NULL; may be out */
	__half *out;		/* [N][H][W][64] */
	const __half *w;	/* [64 cout][9 taps][64 cin] */
	const float *bias;	/* [64] */
	int H, W, sh, sw, up, relu;
	int tiles_x, npairs;	/* column strips per frame, ceil(H / 2) */
	long long units;	/* N * tiles_x * npairs */
};

#ifndef TW_NO_WGMMA
__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
	return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int bytes)
{
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit(void)
{
	asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* cp.async: wait for all but the newest N groups of this thread */
template <int N>
__device__ __forceinline__ void cp_async_wait(void)
{
	asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* make this thread's generic-proxy smem writes visible to wgmma (async proxy) */
__device__ __forceinline__ void fence_proxy_async(void)
{
	asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_fence(void)
{
	asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_commit(void)
{
	asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

template <int N>
__device__ __forceinline__ void wgmma_wait(void)
{
	asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

/* keep the compiler from moving accumulator reads/writes across wgmma issue/wait (CUTLASS's
 * warpgroup_fence_operand) */
template <int R>
__device__ __forceinline__ void fence_regs(float *d)
{
#pragma unroll
	for (int i = 0; i < R; i++)
		asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ void bar_named(int id, int n)
{
	asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}

__device__ __forceinline__ void stsm_x4_trans(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3)
{
	asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0),
		     "r"(r1), "r"(r2), "r"(r3)
		     : "memory");
}

__device__ __forceinline__ uint32_t pack_h2(float lo, float hi)
{
	__half2 h = __floats2half2_rn(lo, hi);
	return *(uint32_t *)&h;
}

/* smem matrix descriptor: no swizzle (layout type 0), base offset 0 */
__device__ __forceinline__ uint64_t make_desc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
	return (uint64_t)((addr >> 4) & 0x3FFF) | (uint64_t)((lbo >> 4) & 0x3FFF) << 16 |
	       (uint64_t)((sbo >> 4) & 0x3FFF) << 32;
}

__device__ __forceinline__ void wgmma_n64(float *d, uint64_t da, uint64_t db, int scale_d)
{
	asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
		     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
		     "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
		     "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
		     "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
		     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
		       "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
		       "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
		       "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
		     : "l"(da), "l"(db), "r"(scale_d));
}

__device__ __forceinline__ void wgmma_n128(float *d, uint64_t da, uint64_t db, int scale_d)
{
	asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
		     "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
		     "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
		     "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
		     "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
		     "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
		     "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
		     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
		       "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
		       "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
		       "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
		       "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
		       "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
		       "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
		       "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
		     : "l"(da), "l"(db), "r"(scale_d));
}

template <int WT>
__device__ __forceinline__ void wgmma_tile(float *d, uint64_t da, uint64_t db, int scale_d)
{
	if constexpr (WT == 128)
		wgmma_n128(d, da, db, scale_d);
	else
		wgmma_n64(d, da, db, scale_d);
}

/* cp.async halo rows gy0 .. gy0+nrows-1 (pixels x0-1 .. x0+WT) of frame n into their ring slots */
template <int WT>
__device__ __forceinline__ void load_rows(const args &a, uint32_t ring, int n, int x0, int gy0, int nrows, int tid)
{
	typedef cfg<WT> S;
	constexpr int PER_ROW = S::HP * 8;	/* 16-byte chunks per halo row */
	for (int i = tid; i < nrows * PER_ROW; i += NTHR) {
		const int r = i / PER_ROW, rem = i - r * PER_ROW, px = rem >> 3, cg = rem & 7;
		const int gy = gy0 + r, gx = x0 - 1 + px;
		const bool ok = gy >= 0 && gy < a.H && gx >= 0 && gx < a.W;
		const int sy = a.up ? gy >> 1 : gy, sx = a.up ? gx >> 1 : gx;
		const __half *src = ok ? a.x + ((((size_t)n * a.sh + sy) * a.sw + sx) << 6) + cg * 8 : a.x;
		cp_async16(ring + ((gy + 1) % NSLOT) * S::SLOT + cg * S::CGS + px * 16, src, ok ? 16 : 0);
	}
}

/* issue the 36 wgmma of output row 2p + wgi into acc (first one overwrites: scale-d 0) */
template <int WT>
__device__ __forceinline__ void issue(float *acc, uint64_t dA, uint64_t dB, int p, int wgi)
{
	typedef cfg<WT> S;
	fence_regs<WT / 2>(acc);
	wgmma_fence();
#pragma unroll
	for (int ky = 0; ky < 3; ky++) {
		const int slot = (2 * p + wgi + ky) % NSLOT;	/* halo row 2p + wgi - 1 + ky */
		const uint64_t db = dB + (uint64_t)((slot * S::SLOT) >> 4);
#pragma unroll
		for (int kx = 0; kx < 3; kx++)
#pragma unroll
			for (int ks = 0; ks < 4; ks++)
				wgmma_tile<WT>(acc, dA + (uint64_t)((((ky * 3 + kx) * 8 + 2 * ks) * 1024) >> 4),
					       db + (uint64_t)((2 * ks * S::CGS + kx * 16) >> 4), (ky | kx | ks) != 0);
	}
	wgmma_commit();
	/* no fence_regs(acc) here: it would count as reading the in-flight accumulators and make
	 * ptxas serialize the wgmma (C7514); callers fence after the wait */
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
		     : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
		     : "r"(addr)
		     : "memory");
}

/*
 * cp.async the residual of output row y (pixels x0 ..) into the warpgroup's
 * staging tile, [pixel][cout]: issued at the start of a step, it lands while
 * the step's wgmma run, and the epilogue reads it from shared memory (no
 * global load on the epilogue's path).  Zero outside the image.
 */
template <int WT>
__device__ __forceinline__ void load_res(const args &a, unsigned char *stage, int n, int x0, int y, int wtid)
{
	typedef cfg<WT> S;
	const uint32_t st = smem_u32(stage);
	for (int i = wtid; i < WT * 8; i += 128) {
		const int px = i >> 3, ch = i & 7, gx = x0 + px;
		const bool ok = y < a.H && gx < a.W;
		const __half *src = ok ? a.res + ((((size_t)n * a.H + y) * a.W + gx) << 6) + ch * 8 : a.res;
		cp_async16(st + px * S::OS + ch * 16, src, ok ? 16 : 0);
	}
}

/* fp16 v = acc + bias, then (with the residual r) v + r in fp32, rounded: taesd_conv's operations */
__device__ __forceinline__ uint32_t add_res(uint32_t v, uint32_t r)
{
	const float2 x = __half22float2(*(__half2 *)&v), y = __half22float2(*(__half2 *)&r);
	__half2 h = __floats2half2_rn(x.x + y.x, x.y + y.y);
	return *(uint32_t *)&h;
}

/*
 * acc (row y of frame n, pixels x0..) + bias -> fp16, + the residual that
 * load_res staged (NEWER: cp.async groups this thread committed after it) ->
 * staging tile (NHWC) -> ReLU -> global, 16 bytes at a time.
 */
template <int WT, int NEWER>
__device__ __forceinline__ void epilogue(const float *acc, const args &a, unsigned char *stage, int n, int x0, int y,
					 float b0, float b1, int wtid, int wgi)
{
	typedef cfg<WT> S;
	const int lane = wtid & 31, warp = wtid >> 5;
	const uint32_t st = smem_u32(stage);
	const int m = lane >> 3, k = lane & 7;
	if (a.res)
		cp_async_wait<NEWER>();
	bar_named(1 + wgi, 128);	/* the residual of every thread is in (and the last copy-out is done) */
	/* matrices of this x4: (pixels 8j, couts 16warp), (8j, 16warp+8), (8j+8, 16warp), (8j+8, 16warp+8) */
	const uint32_t lane_off = (8 * (m >> 1) + k) * S::OS + (16 * warp + 8 * (m & 1)) * 2;
#pragma unroll
	for (int j = 0; j < WT / 8; j += 2) {
		const uint32_t addr = st + 8 * j * S::OS + lane_off;
		uint32_t v0 = pack_h2(acc[4 * j] + b0, acc[4 * j + 1] + b0), v1 = pack_h2(acc[4 * j + 2] + b1, acc[4 * j + 3] + b1);
		uint32_t v2 = pack_h2(acc[4 * j + 4] + b0, acc[4 * j + 5] + b0);
		uint32_t v3 = pack_h2(acc[4 * j + 6] + b1, acc[4 * j + 7] + b1);
		if (a.res) {	/* the same fragment of the staged residual: stmatrix's inverse */
			uint32_t r0, r1, r2, r3;
			ldsm_x4_trans(addr, r0, r1, r2, r3);
			v0 = add_res(v0, r0);
			v1 = add_res(v1, r1);
			v2 = add_res(v2, r2);
			v3 = add_res(v3, r3);
		}
		stsm_x4_trans(addr, v0, v1, v2, v3);
	}
	bar_named(1 + wgi, 128);
	if (y >= a.H)
		return;
	const size_t row = ((size_t)n * a.H + y) * a.W;
#pragma unroll 4
	for (int i = wtid; i < WT * 8; i += 128) {
		const int px = i >> 3, gx = x0 + px;
		if (gx >= a.W)
			continue;
		uint4 v = *(const uint4 *)(stage + px * S::OS + (i & 7) * 16);
		if (a.relu) {
			__half2 *hv = (__half2 *)&v;
#pragma unroll
			for (int q = 0; q < 4; q++)
				hv[q] = __hmax2(hv[q], __float2half2_rn(0.0f));
		}
		*(uint4 *)(a.out + ((row + gx) << 6) + (i & 7) * 8) = v;
	}
}

struct seg {
	int n, x0, p0, p1;
};

/*
 * One step: output rows 2p (warpgroup 0) and 2p+1 (warpgroup 1).  The
 * wgmma (cur) are issued first, right after the barrier; while they run, the
 * block queues the halo rows of step p+1 and each warpgroup does step p-1's
 * epilogue (prev), then queues the residual of this step's row into its
 * staging tile for the next step's epilogue.  cp.async groups per step:
 * A(p), the halo rows of step p+1, then B(p), the residual of step p's rows.
 * The residual thus has the rest of the step to land; the epilogue used to
 * wait for one queued at the start of its own step, behind the rows (this
 * order: +1.1% at 512², +2.0% at 1024², -0.4% at 256², decode alone, H100).
 */
template <int WT>
__device__ __forceinline__ void step(float *cur, float *prev, bool has_prev, int p, const seg &s, const args &a,
				     uint64_t dA, uint64_t dB, uint32_t ring, unsigned char *stage, float b0, float b1)
{
	const int tid = threadIdx.x, wgi = tid >> 7, wtid = tid & 127;
	if (has_prev)
		cp_async_wait<1>();	/* A(p-1), this step's halo rows; B(p-1) may still be on its way */
	else
		cp_async_wait<0>();	/* the segment's first rows (and, the first time, the weights) */
	fence_proxy_async();
	__syncthreads();	/* ... of every thread; and step p-1's wgmma are done with their ring slots */
	issue<WT>(cur, dA, dB, p, wgi);
	/* rows 2p+3, 2p+4 go to the slots of rows 2p-3, 2p-2, read only by step p-1, whose wgmma both
	 * warpgroups have waited for before the barrier above */
	if (p + 1 < s.p1)
		load_rows<WT>(a, ring, s.n, s.x0, 2 * p + 3, 2, tid);
	cp_async_commit();	/* A(p) */
	if (has_prev) {
		fence_regs<WT / 2>(prev);
		epilogue<WT, 1>(prev, a, stage, s.n, s.x0, 2 * (p - 1) + wgi, b0, b1, wtid, wgi);	/* B(p-1) */
		bar_named(1 + wgi, 128);	/* every thread's copy-out is done with the staging tile */
	}
	if (a.res)
		load_res<WT>(a, stage, s.n, s.x0, 2 * p + wgi, wtid);
	cp_async_commit();	/* B(p) */
	wgmma_wait<0>();
	fence_regs<WT / 2>(cur);
}

/* the segment's last rows, after its last step (whose B group, the newest, holds their residual) */
template <int WT>
__device__ __forceinline__ void last_epilogue(const float *acc, const seg &s, const args &a, unsigned char *stage,
					      float b0, float b1)
{
	const int wgi = threadIdx.x >> 7, wtid = threadIdx.x & 127, y = 2 * (s.p1 - 1) + wgi;
	epilogue<WT, 0>(acc, a, stage, s.n, s.x0, y, b0, b1, wtid, wgi);
}

#endif /* !TW_NO_WGMMA */

template <int WT>
__global__ void __launch_bounds__(NTHR, 1) taesd_conv_wgmma(const args a)
{
#ifndef TW_NO_WGMMA
	typedef cfg<WT> S;
	constexpr int NACC = WT / 2;
	extern __shared__ __align__(128) unsigned char smem[];
	const int tid = threadIdx.x, wgi = tid >> 7, lane = tid & 31, warp = (tid & 127) >> 5;
	const uint32_t sb = smem_u32(smem), ring = sb + S::RING_OFF;
	unsigned char *stage = smem + S::STAGE_OFF + wgi * S::STAGE_BYTES;

	/* weights [cout][576] -> [k-chunk 72][cout 64][8], once per block */
	for (int i = tid; i < 64 * 72; i += NTHR) {
		const int c = i / 72, kc = i % 72;
		cp_async16(sb + kc * 1024 + c * 16, a.w + c * 576 + kc * 8, 16);
	}
	cp_async_commit();
	const float b0 = a.bias[16 * warp + (lane >> 2)], b1 = a.bias[16 * warp + (lane >> 2) + 8];
	pdl_wait();	/* the activations: the previous kernel's */
	pdl_launch();
	const uint64_t dA = make_desc(sb, 1024, 128), dB = make_desc(ring, S::CGS, 128);

	float acc0[NACC], acc1[NACC];
#pragma unroll
	for (int i = 0; i < NACC; i++)
		acc0[i] = acc1[i] = 0.0f;

	const long long ub = (long long)blockIdx.x * a.units / gridDim.x;
	const long long ue = (long long)(blockIdx.x + 1) * a.units / gridDim.x;
	for (long long u = ub; u < ue;) {
		seg s;
		const int strip = (int)(u / a.npairs);
		s.p0 = (int)(u % a.npairs);
		s.p1 = (int)(a.npairs - s.p0 < ue - u ? a.npairs : s.p0 + (ue - u));
		s.n = strip / a.tiles_x;
		s.x0 = (strip % a.tiles_x) * WT;
		u += s.p1 - s.p0;

		__syncthreads();	/* the previous segment is done with the ring and the staging tiles */
		load_rows<WT>(a, ring, s.n, s.x0, 2 * s.p0 - 1, 4, tid);
		cp_async_commit();
		/* the first step has no previous one; then steps alternate accumulators (static indices: a
		 * pointer select would put them in local memory) */
		int p = s.p0;
		step<WT>(acc0, acc1, false, p, s, a, dA, dB, ring, stage, b0, b1);
		for (;;) {
			if (++p >= s.p1) {
				last_epilogue<WT>(acc0, s, a, stage, b0, b1);
				break;
			}
			step<WT>(acc1, acc0, true, p, s, a, dA, dB, ring, stage, b0, b1);
			if (++p >= s.p1) {
				last_epilogue<WT>(acc1, s, a, stage, b0, b1);
				break;
			}
			step<WT>(acc0, acc1, true, p, s, a, dA, dB, ring, stage, b0, b1);
		}
	}
	cp_async_wait<0>();	/* a block with no work still has the weight copies in flight */
#endif
}


} /* namespace tw */

#endif
