/*
 * test_taesd_gpu: the GPU TAESD decoder against the fp32 CPU reference.
 *
 *   test_taesd_gpu                 checks (exit 0 / 1, 77 without a GPU)
 *   test_taesd_gpu --dump DIR      write weights, latents, CPU and GPU raw
 *                                  outputs and DIR/cases.json for
 *                                  tests/gpu/taesd_torch_check.py
 *   test_taesd_gpu --bench [B]     decode-alone frames/s at 512x512 and
 *                                  1024x1024 output, batch B (default 8)
 *
 * Checks, per case (4, 16 and 32 channels, plain and flux_2 (the pool
 * branch), f32 and f16 latents, sizes that are and are not multiples of the
 * 8x16 tile, several frames): raw output relative error <= 1e-2 against the
 * CPU; RGB24 and I420 bytes against the CPU's quantised frames
 * (egr_taesd_to_rgb24, egr_frame_rgb_to_i420) within a few codes, nearly all
 * exact or off by one; outputs poisoned before each run so an unwritten byte
 * fails.
 *
 * Real data (when ../shared/data/taef2 is found, see tests/unit/taef2_data.h;
 * otherwise a note): the public taef2 weights decode the eight real latent
 * frames PyTorch decoded, whole 832x480 frames in one batch, RGB24 within one
 * code of PyTorch's fp32 decode on >= 99% of bytes per frame.
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern "C" {
#include "daemon/decode/frame.h"
#include "daemon/base/log.h"
#include "daemon/formats/npy.h"
#include "daemon/formats/safetensors.h"
}
#include "daemon/decode/taesd.h"
#include "daemon/decode/taesd_cuda.h"

#include "tests/unit/check.h"
#include "tests/unit/taef2_data.h"

#define CU(call) do { \
	cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) { \
		printf("%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
		exit(1); \
	} \
} while (0)

static uint64_t rs = 0x853c49e6748fea9bull;
static float rnorm(void)
{
	float s = 0;
	for (int i = 0; i < 4; i++) {
		rs ^= rs << 13;
		rs ^= rs >> 7;
		rs ^= rs << 17;
		s += (float)(rs >> 40) / 16777216.0f;
	}
	return (s - 2.0f) * 1.7f;
}

struct tcase {
	uint32_t C, h, w, n, wdtype, ldtype;
	uint64_t seed;
	uint32_t variant;	/* enum egr_taesd_variant */
};

static struct egr_taesd *make_net(const char *dir, const struct tcase *t, char *wpath)
{
	char err[512];
	struct egr_taesd *net = NULL;

	sprintf(wpath, "%s/w_%s_c%u_s%llu.safetensors", dir, egr_taesd_variant_name(t->variant), t->C,
		(unsigned long long)t->seed);
	if (egr_taesd_write_random_variant(wpath, t->C, t->variant, t->seed, t->wdtype, err, sizeof(err)) < 0 ||
	    egr_taesd_load(wpath, &net, err, sizeof(err)) < 0) {
		printf("weights: %s\n", err);
		exit(1);
	}
	return net;
}

/* latents (rounded to f16 when ldtype is 2, so CPU and GPU see the same values) */
static float *make_lat(const struct tcase *t, void **dev)
{
	size_t n = (size_t)t->n * t->C * t->h * t->w;
	float *lat = (float *)malloc(n * 4);
	uint16_t *h16 = (uint16_t *)malloc(n * 2);
	for (size_t i = 0; i < n; i++) {
		lat[i] = rnorm();
		if (t->ldtype == 2) {
			h16[i] = egr_half_from_float(lat[i]);
			lat[i] = egr_half_to_float(h16[i]);
		}
	}
	CU(cudaMalloc(dev, n * t->ldtype));
	CU(cudaMemcpy(*dev, t->ldtype == 2 ? (void *)h16 : (void *)lat, n * t->ldtype, cudaMemcpyHostToDevice));
	free(h16);
	return lat;
}

static double rel_err(const float *a, const float *ref, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - ref[i];
		num += d * d;
		den += (double)ref[i] * ref[i];
	}
	return sqrt(num / den);
}

/* what a case shares between the kernel paths: the net, latents on both sides, the CPU's frames */
struct cpu_ref {
	struct egr_taesd *net;
	void *dlat;
	float *cpu;
	uint8_t *crgb, *cyuv;
};

/*
 * The GPU decode of one case against the CPU's; wgmma 0 forces taesd_conv
 * everywhere (EGR_TAESD_WGMMA=0), 1 is the default dispatch (the Hopper
 * kernel on 64 -> 64 layers 64 pixels wide or more).  gpu: the raw frames.
 */
static void check_gpu(const struct tcase *t, const struct cpu_ref *r, int wgmma, float *gpu)
{
	char err[512];
	struct egr_taesd_gpu *g = NULL;
	void *dout = NULL;
	const uint32_t H = 8 * t->h, W = 8 * t->w;
	const size_t HW = (size_t)H * W;
	uint8_t *gb = (uint8_t *)malloc(t->n * 3 * HW);
	const char *kern = wgmma ? "default kernels" : "mma.sync only";

	setenv("EGR_TAESD_WGMMA", wgmma ? "1" : "0", 1);
	if (egr_taesd_gpu_create(r->net, 0, &g, err, sizeof(err)) < 0) {
		CHECK(0, "create: %s", err);
		free(gb);
		return;
	}
	int major = 0, minor = 0;
	cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
	cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
	CHECK(egr_taesd_gpu_uses_wgmma(g) == (wgmma && major == 9 && minor == 0), "%s: uses_wgmma %d on a %d.%d device",
	      kern, egr_taesd_gpu_uses_wgmma(g), major, minor);
	CU(cudaMalloc(&dout, t->n * 3 * HW * 4));
	/* raw, poisoned with NaN */
	CU(cudaMemset(dout, 0xff, t->n * 3 * HW * 4));
	CHECK(egr_taesd_gpu_decode(g, 0, r->dlat, t->ldtype, t->n, t->h, t->w, EGR_FMT_RAW, dout, err,
				   sizeof(err)) == 0, "decode raw: %s", err);
	CU(cudaDeviceSynchronize());
	CU(cudaMemcpy(gpu, dout, t->n * 3 * HW * 4, cudaMemcpyDeviceToHost));
	/* a stream of our own: the first decode is captured as a CUDA graph, the second replays it */
	{
		cudaStream_t st;
		float *again = (float *)malloc(t->n * 3 * HW * 4);
		CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
		for (int rep = 0; rep < 2; rep++) {
			CU(cudaMemset(dout, 0xff, t->n * 3 * HW * 4));
			CHECK(egr_taesd_gpu_decode(g, st, r->dlat, t->ldtype, t->n, t->h, t->w, EGR_FMT_RAW, dout, err,
						   sizeof(err)) == 0, "decode raw on a stream: %s", err);
			CU(cudaStreamSynchronize(st));
			CU(cudaMemcpy(again, dout, t->n * 3 * HW * 4, cudaMemcpyDeviceToHost));
			CHECK(!memcmp(again, gpu, t->n * 3 * HW * 4), "%s: decode %d on a stream (graph) differs from stream 0",
			      kern, rep + 1);
		}
		CU(cudaStreamDestroy(st));
		free(again);
	}
	for (uint32_t f = 0; f < t->n; f++) {
		double e = rel_err(gpu + f * 3 * HW, r->cpu + f * 3 * HW, 3 * HW);
		printf("taesd gpu (%s) vs cpu: %s C=%u %ux%u lat f%u frame %u: raw rel err %.2e\n", kern,
		       egr_taesd_variant_name(t->variant), t->C, W, H, t->ldtype * 8, f, e);
		CHECK(e <= 1e-2, "%s: C=%u %ux%u frame %u: rel err %.3e > 1e-2", kern, t->C, W, H, f, e);
	}
	/* 8-bit formats */
	for (int fmt = EGR_FMT_Y4M; fmt <= EGR_FMT_PNG; fmt++) {
		size_t bytes = t->n * (fmt == EGR_FMT_PNG ? 3 * HW : 3 * HW / 2);
		const uint8_t *want = fmt == EGR_FMT_PNG ? r->crgb : r->cyuv;
		CU(cudaMemset(dout, 0xab, t->n * 3 * HW * 4));
		CHECK(egr_taesd_gpu_decode(g, 0, r->dlat, t->ldtype, t->n, t->h, t->w, (uint32_t)fmt, dout, err,
					   sizeof(err)) == 0, "decode fmt %d: %s", fmt, err);
		CU(cudaDeviceSynchronize());
		CU(cudaMemcpy(gb, dout, bytes, cudaMemcpyDeviceToHost));
		size_t off1 = 0, offmore = 0;
		int maxd = 0;
		for (size_t i = 0; i < bytes; i++) {
			int d = abs((int)gb[i] - (int)want[i]);
			off1 += d == 1;
			offmore += d > 1;
			if (d > maxd)
				maxd = d;
		}
		printf("taesd gpu (%s) vs cpu: %s C=%u %ux%u %s: %zu bytes, %.3f%% off by 1, %.4f%% off by more, max %d\n",
		       kern, egr_taesd_variant_name(t->variant), t->C, W, H, fmt == EGR_FMT_PNG ? "rgb24" : "i420", bytes,
		       100.0 * off1 / bytes, 100.0 * offmore / bytes, maxd);
		CHECK(maxd <= 8 && offmore * 1000 <= bytes && off1 * 5 <= bytes,
		      "%s: %s bytes differ too much: max %d, %zu off by more than 1", kern, fmt == 2 ? "rgb24" : "i420",
		      maxd, offmore);
	}
	/* the byte after the last frame stays untouched: no write past the end */
	CU(cudaMemset(dout, 0xab, t->n * 3 * HW * 4));
	egr_taesd_gpu_decode(g, 0, r->dlat, t->ldtype, t->n, t->h, t->w, EGR_FMT_Y4M, dout, err, sizeof(err));
	CU(cudaDeviceSynchronize());
	uint8_t after[64];
	CU(cudaMemcpy(after, (char *)dout + t->n * 3 * HW / 2, 64, cudaMemcpyDeviceToHost));
	for (int i = 0; i < 64; i++)
		CHECK(after[i] == 0xab, "%s: byte %d after the last I420 frame was written", kern, i);
	CHECK(egr_taesd_gpu_decode(g, 0, r->dlat, 3, t->n, t->h, t->w, EGR_FMT_Y4M, dout, err, sizeof(err)) == -EINVAL,
	      "dtype 3");
	egr_taesd_gpu_destroy(g);
	cudaFree(dout);
	free(gb);
	unsetenv("EGR_TAESD_WGMMA");
}

static void run_case(const char *dir, const struct tcase *t, FILE *manifest)
{
	char wpath[512], err[512];
	struct cpu_ref r = {};
	const uint32_t H = 8 * t->h, W = 8 * t->w;
	const size_t HW = (size_t)H * W, lat_n = (size_t)t->C * t->h * t->w;

	r.net = make_net(dir, t, wpath);
	float *lat = make_lat(t, &r.dlat);
	float *gpu = (float *)malloc(t->n * 3 * HW * 4), *gpu0 = (float *)malloc(t->n * 3 * HW * 4);
	r.cpu = (float *)malloc(t->n * 3 * HW * 4);
	r.crgb = (uint8_t *)malloc(t->n * 3 * HW);
	r.cyuv = (uint8_t *)malloc(t->n * 3 * HW / 2);
	for (uint32_t f = 0; f < t->n; f++) {
		if (egr_taesd_decode_cpu(r.net, lat + f * lat_n, t->h, t->w, r.cpu + f * 3 * HW, err, sizeof(err)) < 0)
			CHECK(0, "cpu decode: %s", err);
		egr_taesd_to_rgb24(r.cpu + f * 3 * HW, H, W, r.crgb + f * 3 * HW);
		egr_frame_rgb_to_i420(r.crgb + f * 3 * HW, W, H, r.cyuv + f * 3 * HW / 2);
	}
	check_gpu(t, &r, 1, gpu);
	if (W >= 64) {	/* a layer wide enough for the Hopper kernel (on a Hopper GPU): the other path too */
		check_gpu(t, &r, 0, gpu0);
		double e = rel_err(gpu, gpu0, t->n * 3 * HW);
		printf("taesd gpu default vs mma.sync only: C=%u %ux%u: raw rel diff %.2e\n", t->C, W, H, e);
		CHECK(e == 0.0, "C=%u %ux%u: the kernel paths differ by %.3e (they give the same bytes)", t->C, W, H, e);
	}

	if (manifest) {
		char lp[600], cp[600], gp[600];
		const char *vn = egr_taesd_variant_name(t->variant);
		sprintf(lp, "%s/lat_%s_c%u_%ux%u.f32", dir, vn, t->C, t->w, t->h);
		sprintf(cp, "%s/cpu_%s_c%u_%ux%u.f32", dir, vn, t->C, t->w, t->h);
		sprintf(gp, "%s/gpu_%s_c%u_%ux%u.f32", dir, vn, t->C, t->w, t->h);
		FILE *f = fopen(lp, "wb");
		fwrite(lat, 4, t->n * lat_n, f);
		fclose(f);
		f = fopen(cp, "wb");
		fwrite(r.cpu, 4, t->n * 3 * HW, f);
		fclose(f);
		f = fopen(gp, "wb");
		fwrite(gpu, 4, t->n * 3 * HW, f);
		fclose(f);
		fprintf(manifest, "%s{\"weights\":\"%s\",\"latents\":\"%s\",\"cpu\":\"%s\",\"gpu\":\"%s\",\"n\":%u,\"c\":%u,\"h\":%u,\"w\":%u,"
			"\"variant\":\"%s\"}",
			ftell(manifest) > 2 ? ",\n" : "", wpath, lp, cp, gp, t->n, t->C, t->h, t->w, vn);
	}
	egr_taesd_free(r.net);
	cudaFree(r.dlat);
	free(lat);
	free(r.cpu);
	free(gpu);
	free(gpu0);
	free(r.crgb);
	free(r.cyuv);
}

static double net_flops(uint32_t h, uint32_t w, uint32_t C)
{
	struct egr_taesd net;
	double f = 0;
	egr_taesd_describe(&net, C);
	for (int i = 0; i < EGR_TAESD_NCONV; i++)
		f += 2.0 * 9 * net.conv[i].cin * net.conv[i].cout * (double)(h << net.conv[i].shift) *
		     (double)(w << net.conv[i].shift);
	return f;
}

/*
 * --layers LATENT BATCH: two decodes of BATCH frames of LATENT² latents on
 * the default stream (no graph), for a per-kernel profiler (the second
 * decode is the one to read: ncu --launch-skip <kernels of one decode>).
 */
static int layers(uint32_t lat, uint32_t batch)
{
	char err[512], wpath[512];
	struct tcase t = { 4, lat, lat, batch, EGR_ST_F16, 2, 77, EGR_TAESD_PLAIN };
	struct egr_taesd *net = make_net("/tmp", &t, wpath);
	struct egr_taesd_gpu *g = NULL;
	void *dlat, *dout;

	free(make_lat(&t, &dlat));
	CU(cudaMalloc(&dout, (size_t)batch * 64 * lat * lat * 3 / 2));
	if (egr_taesd_gpu_create(net, 0, &g, err, sizeof(err)) < 0) {
		printf("create: %s\n", err);
		return 1;
	}
	for (int i = 0; i < 2; i++)
		if (egr_taesd_gpu_decode(g, 0, dlat, EGR_DT_F16, batch, lat, lat, EGR_FMT_Y4M, dout, err, sizeof(err)) < 0)
			printf("decode: %s\n", err);
	CU(cudaDeviceSynchronize());
	egr_taesd_gpu_destroy(g);
	egr_taesd_free(net);
	cudaFree(dlat);
	cudaFree(dout);
	return 0;
}

static int bench(uint32_t batch)
{
	char err[512], wpath[512];
	struct tcase t = { 4, 64, 64, batch, EGR_ST_F16, 2, 77, EGR_TAESD_PLAIN };
	struct egr_taesd *net = make_net("/tmp", &t, wpath);
	static const uint32_t sizes[3] = { 32, 64, 128 };
	/* the default dispatch first (tests/bench reads the first warps=8 line of a size), then the ablations */
	static const struct {
		const char *kernel, *wgmma, *graph, *pdl;
	} cfgs[4] = { { "default", "1", "1", "1" },
		      { "no-pdl", "1", "1", "0" },
		      { "no-graph", "1", "0", "1" },
		      { "mma.sync", "0", "0", "0" } };	/* taesd_conv for all but the output conv, no graph, no PDL */

	for (int ci = 0; ci < 4; ci++) {
		const int warps = 8;
		setenv("EGR_TAESD_WARPS", "8", 1);
		setenv("EGR_TAESD_WGMMA", cfgs[ci].wgmma, 1);
		setenv("EGR_TAESD_GRAPH", cfgs[ci].graph, 1);
		setenv("EGR_TAESD_PDL", cfgs[ci].pdl, 1);
		struct egr_taesd_gpu *g = NULL;
		if (egr_taesd_gpu_create(net, 0, &g, err, sizeof(err)) < 0) {
			printf("create: %s\n", err);
			return 1;
		}
		for (int si = 0; si < 3; si++) {
			uint32_t s = sizes[si];
			t.h = t.w = s;
			void *dlat[3], *dout;
			for (int k = 0; k < 3; k++)	/* rotate inputs */
				free(make_lat(&t, &dlat[k]));
			CU(cudaMalloc(&dout, (size_t)batch * 64 * s * s * 3 / 2));
			cudaStream_t st;
			cudaEvent_t e0, e1;
			CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
			CU(cudaEventCreate(&e0));
			CU(cudaEventCreate(&e1));
			for (int i = 0; i < 3; i++)
				egr_taesd_gpu_decode(g, st, dlat[i % 3], EGR_DT_F16, batch, s, s, EGR_FMT_Y4M, dout, err, sizeof(err));
			CU(cudaStreamSynchronize(st));
			float ms[7];
			const int iters = s == 32 ? 60 : s == 64 ? 20 : 6;
			for (int rep = 0; rep < 7; rep++) {
				CU(cudaEventRecord(e0, st));
				for (int i = 0; i < iters; i++)
					if (egr_taesd_gpu_decode(g, st, dlat[i % 3], EGR_DT_F16, batch, s, s, EGR_FMT_Y4M, dout, err,
								 sizeof(err)) < 0)
						printf("decode: %s\n", err);
				CU(cudaEventRecord(e1, st));
				CU(cudaEventSynchronize(e1));
				CU(cudaEventElapsedTime(&ms[rep], e0, e1));
				ms[rep] /= iters;
			}
			for (int i = 0; i < 7; i++)	/* median */
				for (int j = i + 1; j < 7; j++)
					if (ms[j] < ms[i]) {
						float x = ms[i];
						ms[i] = ms[j];
						ms[j] = x;
					}
			double fps = batch * 1000.0 / ms[3];
			double tf = net_flops(s, s, 4) * batch / (ms[3] * 1e-3) / 1e12;
			printf("EGRBENCH size=%u batch=%u warps=%d ms_per_batch=%.3f fps=%.1f tflops=%.1f kernel=%s\n", 8 * s,
			       batch, warps, ms[3], fps, tf, cfgs[ci].kernel);
			for (int k = 0; k < 3; k++)
				cudaFree(dlat[k]);
			cudaFree(dout);
			cudaStreamDestroy(st);
		}
		egr_taesd_gpu_destroy(g);
	}
	egr_taesd_free(net);
	return 0;
}

/*
 * Real data: the public taef2 weights decode real latents frames 0-7 (one
 * batch of eight whole 832x480 frames, f16 latents as stored) on the GPU;
 * RGB24 within one code of PyTorch's fp32 decode on >= 99% of bytes.
 */
static void run_real(void)
{
	char dir[1024], why[1400], err[512], p[1200];
	const size_t npix = (size_t)TAEF2_H * TAEF2_W, lat_n = (size_t)TAEF2_C * TAEF2_LH * TAEF2_LW;
	const uint32_t n = TAEF2_REF_FRAMES;
	struct egr_taesd *net = NULL;
	struct egr_taesd_gpu *g = NULL;
	struct egr_npy npy;
	uint16_t *lat = NULL;
	uint8_t *ref = NULL, *rgb = NULL;
	void *dlat = NULL, *dout = NULL;

	if (taef2_find(dir, sizeof(dir), why, sizeof(why)) < 0) {
		printf("note: %s: real-data check skipped\n", why);
		return;
	}
	snprintf(p, sizeof(p), "%s/" TAEF2_WEIGHTS, dir);
	if (egr_taesd_load(p, &net, err, sizeof(err)) < 0 || egr_taesd_gpu_create(net, 0, &g, err, sizeof(err)) < 0) {
		CHECK(0, "taef2 weights: %s", err);
		goto out;
	}
	CHECK(net->variant == EGR_TAESD_FLUX2 && net->channels == TAEF2_C, "taef2: variant %u, %u channels", net->variant,
	      net->channels);
	snprintf(p, sizeof(p), "%s/" TAEF2_LATENTS, dir);
	lat = (uint16_t *)malloc(n * lat_n * 2);
	rgb = (uint8_t *)malloc(n * 3 * npix);
	if (egr_npy_open(p, &npy, err, sizeof(err)) < 0) {
		CHECK(0, "latents: %s", err);
		goto out;
	}
	CHECK(npy.dtype == EGR_DT_F16 && npy.shape[1] == TAEF2_C && npy.shape[2] == TAEF2_LH && npy.shape[3] == TAEF2_LW,
	      "%s: unexpected dtype or shape", p);
	if (egr_npy_read(&npy, 0, n, lat, err, sizeof(err)) < 0)
		CHECK(0, "latents: %s", err);
	egr_npy_close(&npy);
	ref = taef2_load_torch(dir, why, sizeof(why));
	if (!ref) {
		CHECK(0, "%s", why);
		goto out;
	}
	CU(cudaMalloc(&dlat, n * lat_n * 2));
	CU(cudaMalloc(&dout, n * 3 * npix));
	CU(cudaMemcpy(dlat, lat, n * lat_n * 2, cudaMemcpyHostToDevice));
	CU(cudaMemset(dout, 0xab, n * 3 * npix));
	CHECK(egr_taesd_gpu_decode(g, 0, dlat, EGR_DT_F16, n, TAEF2_LH, TAEF2_LW, EGR_FMT_PNG, dout, err, sizeof(err)) == 0,
	      "taef2 decode: %s", err);
	CU(cudaDeviceSynchronize());
	CU(cudaMemcpy(rgb, dout, n * 3 * npix, cudaMemcpyDeviceToHost));
	for (uint32_t f = 0; f < n; f++) {
		struct taef2_cmp c = taef2_compare(rgb + f * 3 * npix, ref + f * 3 * npix, npix);
		printf("taef2 real, gpu fp16 vs torch fp32, frame %u (%dx%d): %.4f%% of bytes within 1 code, %.4f%% exact, "
		       "max diff %d, luma PSNR %.2f dB\n",
		       f, TAEF2_W, TAEF2_H, 100.0 * c.within1, 100.0 * c.exact, c.maxd, c.psnr_luma);
		CHECK(c.within1 >= 0.99, "taef2 frame %u: only %.3f%% of bytes within 1 code of PyTorch's", f,
		      100.0 * c.within1);
	}
out:
	egr_taesd_gpu_destroy(g);
	egr_taesd_free(net);
	cudaFree(dlat);
	cudaFree(dout);
	free(lat);
	free(ref);
	free(rgb);
}

int main(int argc, char **argv)
{
	int ndev = 0;
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
		printf("test_taesd_gpu: no CUDA device, skipped\n");
		return 77;
	}
	if (argc >= 2 && !strcmp(argv[1], "--bench"))
		return bench(argc >= 3 ? (uint32_t)atoi(argv[2]) : 8);
	if (argc >= 4 && !strcmp(argv[1], "--layers"))
		return layers((uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]));
	const char *dir = "/tmp";
	FILE *manifest = NULL;
	if (argc >= 3 && !strcmp(argv[1], "--dump")) {
		dir = argv[2];
		mkdir(dir, 0755);
		char mp[600];
		sprintf(mp, "%s/cases.json", dir);
		manifest = fopen(mp, "w");
		fprintf(manifest, "[\n");
	}
	static const struct tcase cases[] = {
		{ 4, 8, 8, 3, EGR_ST_F16, 4, 1, EGR_TAESD_PLAIN },
		{ 16, 5, 7, 2, EGR_ST_F32, 2, 2, EGR_TAESD_PLAIN },
		{ 4, 12, 9, 1, EGR_ST_F16, 2, 3, EGR_TAESD_PLAIN },
		{ 4, 16, 16, 2, EGR_ST_F16, 4, 4, EGR_TAESD_PLAIN },
		/* flux_2: GroupNorm over whole frames, one per frame of a batch; tiles of 32 and 16 pixels partial */
		{ 32, 8, 8, 3, EGR_ST_F16, 2, 5, EGR_TAESD_FLUX2 },
		{ 32, 5, 7, 2, EGR_ST_F32, 4, 6, EGR_TAESD_FLUX2 },
		{ 16, 12, 9, 2, EGR_ST_F16, 2, 7, EGR_TAESD_FLUX2 },
		{ 32, 30, 52, 1, EGR_ST_F16, 2, 8, EGR_TAESD_FLUX2 },
		/* layers 144 and 288 wide: the Hopper kernel's 128-pixel strips, the last one partial */
		{ 4, 20, 36, 2, EGR_ST_F16, 2, 9, EGR_TAESD_PLAIN },
		{ 16, 16, 16, 2, EGR_ST_F32, 4, 10, EGR_TAESD_PLAIN },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(dir, &cases[i], manifest);
	if (!manifest)
		run_real();
	if (manifest) {
		fprintf(manifest, "\n]\n");
		fclose(manifest);
	}
	if (failures)
		printf("test_taesd_gpu: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
