/*
 * test_cuda_taesd: decoder = taesd through the CUDA backend's API, driven
 * the way the producer drives it, against the CPU backend's TAESD path
 * (egr_taesd_decode_cpu + egr_taesd_to_rgb24 + egr_frame_rgb_to_i420).
 *
 *   checks     seeded random weights (egr_taesd_write_random into a temp
 *              dir), C = 4 and 16, f16 and f32 latents, y4m and png, chunks
 *              of 1 and 3 frames, several jobs on one open backend: frames
 *              within 2 codes of the CPU's (histogram printed), raw output
 *              relative error <= 1e-2, slots poisoned before use so an
 *              unwritten byte fails, weights loaded and uploaded once per
 *              weights file (test hook: load count and handle identity),
 *              the workspace warm-up once per geometry, channel mismatch
 *              and missing file refused, every pipeline ablation
 *   --short    the first suite only (for compute-sanitizer)
 *   --perf     TAESD to y4m, 512x512 and 1024x1024, chunk 8, slots freed as
 *              soon as published: frames/s, gpu_kernel_ns / gpu_wall_ns,
 *              and decode alone (egr_taesd_gpu_decode in a loop, no copies)
 *
 * Exit 0 pass, 1 fail, 77 skip (no GPU).  Seed: EGR_SEED.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime.h>

extern "C" {
#include "config/conf.h"
#include "config/job.h"
#include "daemon/decode/frame.h"
#include "daemon/base/log.h"
#include "daemon/formats/npy.h"
#include "daemon/formats/safetensors.h"
}
#include "daemon/producer/backend.h"
#include "daemon/decode/taesd.h"
#include "daemon/decode/taesd_cuda.h"


#include "tests/unit/check.h"

#include "tests/gpu/gpu_helpers.h"

/* roughly N(0, 1.2): the scale of real SD latents (taesd.h: no scaling applied) */
static float rnd_latent(void)
{
	float s = 0;
	for (int i = 0; i < 4; i++)
		s += (float)(rnd() & 0xffffff) / 16777216.0f;
	return (s - 2.0f) * 2.0f;
}

/* ---- the slot area (gpu_helpers.h; expect NULL: no checks, perf) and the publish callback ---- */
struct harness : slot_harness {
	uint64_t hist[4];	/* |gpu - cpu| = 0, 1, 2, more */
	int maxd;
	double num, den;	/* byte-level relative error */
};

/* checked at the instant of publishing: every byte must be final now */
static void on_publish(void *ctx, uint32_t slot, uint32_t first, uint32_t n, uint64_t bytes)
{
	struct harness *h = static_cast<struct harness *>((struct slot_harness *)ctx);

	if (h->expect) {
		const uint8_t *got = h->base + (size_t)slot * h->slot_bytes;
		const uint8_t *want = h->expect + (size_t)first * h->frame_bytes;
		uint64_t hist[4] = {0, 0, 0, 0};
		int maxd = 0;
		double num = 0, den = 0;
		CHECK(bytes == (uint64_t)n * h->frame_bytes, "published %llu bytes for %u frames",
		      (unsigned long long)bytes, n);
		for (uint64_t i = 0; i < bytes; i++) {
			int d = abs((int)got[i] - (int)want[i]);
			hist[d > 3 ? 3 : d]++;
			maxd = d > maxd ? d : maxd;
			num += (double)d * d;
			den += (double)want[i] * want[i];
		}
		pthread_mutex_lock(&h->mu);
		for (int i = 0; i < 4; i++)
			h->hist[i] += hist[i];
		h->maxd = maxd > h->maxd ? maxd : h->maxd;
		h->num += num;
		h->den += den;
		pthread_mutex_unlock(&h->mu);
	}
	pthread_mutex_lock(&h->mu);
	CHECK(slot < h->nslots && h->state[slot] == S_FILLING, "published slot %u that was not handed out", slot);
	CHECK(first % h->chunk_frames == 0 && first < h->frames, "published first frame %u", first);
	if (first % h->chunk_frames == 0 && first < h->frames)
		h->pubcount[first / h->chunk_frames]++;
	if (slot < h->nslots)
		h->state[slot] = S_FREE;	/* a writer that frees the slot at once */
	h->published_bytes += bytes;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static int harness_init(struct harness *h, uint32_t nslots, size_t slot_bytes)
{
	memset(h, 0, sizeof(*h));
	return slots_map(h, nslots, slot_bytes);
}

static void harness_fini(struct harness *h)
{
	slots_unmap(h);
}

/* ---- a job: latents, expected frames (the CPU backend's), raw CPU output ---- */
struct tcase {
	const char *weights;
	uint32_t channels, format, dtype, lh, lw, frames, chunk;
};

struct job {
	struct egr_job_geom g;
	void *lat;		/* frames * lat_frame_bytes in dtype */
	float *latf;		/* the same values as float */
	float *raw;		/* CPU raw output [frames][3][H][W] */
	uint8_t *expect;	/* CPU frames in the job's format */
	const struct egr_taesd *net;
};

struct cpu_work {
	struct job *j;
	uint32_t next;
	pthread_mutex_t mu;
	int rc;
	char err[256];
};

/* what backend_cpu.c does for one frame, with the raw output kept */
static void *cpu_worker(void *arg)
{
	struct cpu_work *w = (struct cpu_work *)arg;
	struct job *j = w->j;
	const struct egr_job_geom *g = &j->g;
	const size_t HW = (size_t)g->width * g->height, per = (size_t)g->channels * g->lat_h * g->lat_w;
	uint8_t *rgb = (uint8_t *)malloc(HW * 3);

	for (;;) {
		pthread_mutex_lock(&w->mu);
		uint32_t f = w->next++;
		pthread_mutex_unlock(&w->mu);
		if (f >= g->frames || !rgb)
			break;
		char err[256];
		float *raw = j->raw + f * 3 * HW;
		if (egr_taesd_decode_cpu(j->net, j->latf + f * per, g->lat_h, g->lat_w, raw, err, sizeof(err))) {
			pthread_mutex_lock(&w->mu);
			w->rc = -1;
			snprintf(w->err, sizeof(w->err), "%s", err);
			pthread_mutex_unlock(&w->mu);
			continue;
		}
		uint8_t *o = j->expect + f * g->frame_bytes;
		if (g->format == EGR_FMT_Y4M) {
			egr_taesd_to_rgb24(raw, g->height, g->width, rgb);
			egr_frame_rgb_to_i420(rgb, g->width, g->height, o);
		} else {
			egr_taesd_to_rgb24(raw, g->height, g->width, o);
		}
	}
	free(rgb);
	return NULL;
}

static int job_make(struct job *j, const struct tcase *t, const struct egr_taesd *net)
{
	memset(j, 0, sizeof(*j));
	j->net = net;
	geom_init(&j->g, EGR_DEC_TAESD, t->format, t->dtype, t->channels, t->lh, t->lw, t->frames, t->chunk);
	j->g.weights = t->weights;

	const size_t per = (size_t)t->channels * t->lh * t->lw, n = per * t->frames;
	j->latf = (float *)malloc(n * sizeof(float));
	j->lat = malloc(n * t->dtype);
	if (!j->latf || !j->lat)
		return -1;
	for (size_t i = 0; i < n; i++)
		j->latf[i] = latent_store(j->lat, i, t->dtype, rnd_latent());	/* the CPU sees what the GPU sees */
	if (!net)
		return 0;
	const size_t HW = (size_t)j->g.width * j->g.height;
	j->raw = (float *)malloc(t->frames * 3 * HW * sizeof(float));
	j->expect = (uint8_t *)malloc(t->frames * j->g.frame_bytes);
	if (!j->raw || !j->expect)
		return -1;
	struct cpu_work w;
	memset(&w, 0, sizeof(w));
	w.j = j;
	pthread_mutex_init(&w.mu, NULL);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nt = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (int)ncpu;
	pthread_t th[16];
	for (int i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, cpu_worker, &w);
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&w.mu);
	if (w.rc)
		printf("egr_taesd_decode_cpu: %s\n", w.err);
	return w.rc;
}

static void job_free(struct job *j)
{
	free(j->lat);
	free(j->latf);
	free(j->raw);
	free(j->expect);
}

/*
 * One job through an open backend, like the producer: slot, input_buffer,
 * submit (or the naive helper + publish), job_end.  lat_pool > 0: chunk c
 * reads its latents from frames (c * chunk) mod lat_pool of j->lat (perf:
 * a small latent pool stands in for a long file).
 */
static int run_job(void *be, struct harness *h, struct job *j, int naive, uint32_t lat_pool,
		   struct egr_backend_stats *st, double *wall_s)
{
	const struct egr_backend_ops *ops = &egr_backend_cuda;
	const struct egr_job_geom *g = &j->g;
	const uint32_t nchunks = slots_job_start(h, g);
	char err[512];
	int rc;

	memset(st, 0, sizeof(*st));
	rc = ops->job_begin(be, g, err, sizeof(err));
	CHECK(rc == 0, "job_begin(%s): %d %s", g->weights, rc, err);
	if (rc) {
		slots_job_done(h);
		return -1;
	}
	unsigned long long t0 = egr_log_now_ns();
	for (uint32_t c = 0; c < nchunks; c++) {
		struct egr_chunk ch;
		/* poisoned while checked: an unwritten byte shows */
		if (chunk_stage(be, h, g, j->lat, lat_pool, c, h->expect != NULL, &ch) ||
		    chunk_decode(be, &ch, c, naive, on_publish, h))
			goto bail;
	}
	rc = ops->job_end(be, 0, st, err, sizeof(err));
	CHECK(rc == 0, "job_end: %d %s", rc, err);
	if (wall_s)
		*wall_s = (egr_log_now_ns() - t0) / 1e9;
	slots_check_published(h, nchunks);
	if (!naive)
		CHECK(st->gpu_kernel_ns > 0 && st->gpu_wall_ns > 0 && st->gpu_kernel_ns <= st->gpu_wall_ns + 1000,
		      "stats: kernel %llu ns, wall %llu ns", (unsigned long long)st->gpu_kernel_ns,
		      (unsigned long long)st->gpu_wall_ns);
	slots_job_done(h);
	return 0;
bail:
	ops->job_end(be, 1, st, err, sizeof(err));
	free_filling(h);
	slots_job_done(h);
	return -1;
}

/* raw GPU output of the job's latents vs the CPU's: relative L2 error */
static double raw_rel_err(const struct job *j)
{
	const struct egr_job_geom *g = &j->g;
	const size_t HW = (size_t)g->width * g->height, n = (size_t)g->frames * 3 * HW;
	const size_t lb = (size_t)g->frames * g->lat_frame_bytes;
	struct egr_taesd_gpu *tg = NULL;
	void *dlat = NULL, *dout = NULL;
	char err[512];
	double num = 0, den = 0, r = -1;
	float *gpu = (float *)malloc(n * sizeof(float));

	if (!gpu || egr_taesd_gpu_create(j->net, 0, &tg, err, sizeof(err)) < 0 || cudaMalloc(&dlat, lb) != cudaSuccess ||
	    cudaMalloc(&dout, n * sizeof(float)) != cudaSuccess ||
	    cudaMemcpy(dlat, j->lat, lb, cudaMemcpyHostToDevice) != cudaSuccess ||
	    egr_taesd_gpu_decode(tg, 0, dlat, g->dtype, g->frames, g->lat_h, g->lat_w, EGR_FMT_RAW, dout, err,
				 sizeof(err)) < 0 ||
	    cudaMemcpy(gpu, dout, n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess) {
		printf("raw decode failed: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		double d = (double)gpu[i] - j->raw[i];
		num += d * d;
		den += (double)j->raw[i] * j->raw[i];
	}
	r = sqrt(num / den);
out:
	egr_taesd_gpu_destroy(tg);
	cudaFree(dlat);
	cudaFree(dout);
	free(gpu);
	return r;
}

/* ---- the checks ---- */
struct wfile {
	char path[256];
	uint32_t channels;
	struct egr_taesd *net;
};

static int make_weights(struct wfile *w, const char *dir, uint32_t channels, uint64_t seed, uint32_t dtype)
{
	char err[512];

	snprintf(w->path, sizeof(w->path), "%s/taesd_c%u_%llu.safetensors", dir, channels, (unsigned long long)seed);
	w->channels = channels;
	if (egr_taesd_write_random(w->path, channels, seed, dtype, err, sizeof(err)) < 0 ||
	    egr_taesd_load(w->path, &w->net, err, sizeof(err)) < 0) {
		printf("weights: %s\n", err);
		return -1;
	}
	return 0;
}

/*
 * Run cases in order on one open backend; want_loads[i] / want_warm[i]: the
 * test hook's counters after case i (0: not checked).
 */
static void run_suite(const char *pipeline, uint32_t vram, const struct tcase *tc, struct job *jobs, int n,
		      const uint32_t *want_loads, const uint32_t *want_warm)
{
	struct harness h;
	char err[512];
	void *be = NULL;
	size_t need = 0;
	int f0 = failures, naive = !strcmp(pipeline, "naive");
#ifdef EGR_TESTING
	const void *handle0 = NULL;
#endif

	for (int i = 0; i < n; i++) {
		size_t b = (size_t)tc[i].chunk * jobs[i].g.frame_bytes;
		need = b > need ? b : need;
	}
	if (harness_init(&h, 4, need)) {
		failures++;
		return;
	}
	int rc = open_backend(&h, pipeline, vram, on_publish, &be, err, sizeof(err));
	CHECK(rc == 0, "open(pipeline %s): %d %s", pipeline, rc, err);
	if (rc) {
		harness_fini(&h);
		return;
	}
	printf("pipeline %s, %u VRAM buffer(s):\n", pipeline, vram);
	for (int i = 0; i < n; i++) {
		struct egr_backend_stats st;
		const struct job *j = &jobs[i];
		int fj = failures;
		memset(h.hist, 0, sizeof(h.hist));
		h.maxd = 0;
		h.num = h.den = 0;
		h.expect = j->expect;
		run_job(be, &h, &jobs[i], naive, 0, &st, NULL);
		h.expect = NULL;
		uint64_t tot = h.hist[0] + h.hist[1] + h.hist[2] + h.hist[3];
		double brel = h.den > 0 ? sqrt(h.num / h.den) : 0;
		CHECK(h.maxd <= 2, "job %d: a byte differs from the CPU backend's by %d (limit 2)", i, h.maxd);
		CHECK(brel <= 1e-2, "job %d: 8-bit relative error %.3e > 1e-2", i, brel);
		CHECK(tot == (uint64_t)j->g.frames * j->g.frame_bytes, "job %d: %llu bytes compared, want %llu", i,
		      (unsigned long long)tot, (unsigned long long)(j->g.frames * j->g.frame_bytes));
		uint32_t loads = 0, warm = 0;
#ifdef EGR_TESTING
		const void *hd = egr_cuda_test_taesd(be, &loads, &warm);
		if (want_loads && want_loads[i])
			CHECK(loads == want_loads[i], "job %d: weights loaded %u times since open, want %u", i, loads,
			      want_loads[i]);
		if (want_warm && want_warm[i])
			CHECK(warm == want_warm[i], "job %d: %u workspace warm-ups since open, want %u", i, warm,
			      want_warm[i]);
		/* same weights file as the previous job: the very same decoder, nothing re-uploaded */
		if (i > 0 && !strcmp(tc[i].weights, tc[i - 1].weights))
			CHECK(hd == handle0, "job %d: same weights, but the GPU decoder handle changed", i);
		handle0 = hd;
#endif
		printf("  %-4s C=%-2u %-3s f%-2u %4ux%-4u %2u frames chunk %u: bytes |d|=0 %.3f%%, 1 %.3f%%, 2 %.4f%%, >2 %llu; max %d; 8-bit rel err %.2e; loads %u warm-ups %u\n",
		       failures == fj ? "ok" : "FAIL", j->g.channels, fmt_name(j->g.format), j->g.dtype * 8, j->g.width,
		       j->g.height, j->g.frames, j->g.chunk_frames, 100.0 * h.hist[0] / tot, 100.0 * h.hist[1] / tot,
		       100.0 * h.hist[2] / tot, (unsigned long long)h.hist[3], h.maxd, brel, loads, warm);
	}
	egr_backend_cuda.close(be);
	harness_fini(&h);
	printf("%-4s %s: %d jobs within 2 codes of the CPU backend\n", failures == f0 ? "ok" : "FAIL", pipeline, n);
}

/* errors: wrong channel count, missing file; the backend stays usable */
static void test_errors(const struct wfile *w4, const struct wfile *w16)
{
	struct harness h;
	char err[512] = "";
	void *be = NULL;
	struct job j;
	struct egr_backend_stats st;
	int f0 = failures, rc;
	struct tcase t = {w4->path, 16, EGR_FMT_Y4M, EGR_DT_F16, 4, 4, 2, 2};

	if (job_make(&j, &t, NULL) || harness_init(&h, 2, 2 * j.g.frame_bytes)) {
		failures++;
		return;
	}
	rc = open_backend(&h, "full", 2, on_publish, &be, err, sizeof(err));
	CHECK(rc == 0, "open: %d %s", rc, err);
	if (rc) {
		harness_fini(&h);
		job_free(&j);
		return;
	}
	/* 4-channel weights, 16-channel latents: refused at load */
	rc = egr_backend_cuda.job_begin(be, &j.g, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "4-channel") && strstr(err, "16 channels"),
	      "job_begin(C=16 latents, C=4 weights): %d %s", rc, err);
	printf("  refused: %s\n", err);
	/* the same, with the 4-channel decoder already resident */
	struct egr_job_geom g4 = j.g;
	g4.channels = 4;
	g4.lat_frame_bytes = 4ull * 4 * 4 * 2;
	rc = egr_backend_cuda.job_begin(be, &g4, err, sizeof(err));
	CHECK(rc == 0, "job_begin(C=4): %d %s", rc, err);
	rc = egr_backend_cuda.job_end(be, 0, &st, err, sizeof(err));
	rc = egr_backend_cuda.job_begin(be, &j.g, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "4-channel"), "job_begin(C=16 latents, resident C=4 weights): %d %s", rc, err);
	struct egr_job_geom gm = j.g;
	gm.weights = "/nonexistent/dir/taesd.safetensors";
	rc = egr_backend_cuda.job_begin(be, &gm, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "/nonexistent/dir/taesd.safetensors"), "job_begin(missing weights): %d %s", rc,
	      err);
	printf("  refused: %s\n", err);
	gm.weights = "";
	rc = egr_backend_cuda.job_begin(be, &gm, err, sizeof(err));
	CHECK(rc == -EINVAL, "job_begin(no weights): %d %s", rc, err);
	/* after the refusals the right weights work */
	gm.weights = w16->path;
	rc = egr_backend_cuda.job_begin(be, &gm, err, sizeof(err));
	CHECK(rc == 0, "job_begin(C=16 weights after errors): %d %s", rc, err);
	egr_backend_cuda.job_end(be, 0, &st, err, sizeof(err));
	egr_backend_cuda.close(be);
	harness_fini(&h);
	job_free(&j);
	printf("%-4s errors: channel mismatch and missing weights refused with a reason\n", failures == f0 ? "ok" : "FAIL");
}

/* ---- --perf ---- */
static double decode_alone(const struct egr_taesd *net, const struct job *j, uint32_t nchunks)
{
	const struct egr_job_geom *g = &j->g;
	struct egr_taesd_gpu *tg = NULL;
	void *dlat[2] = {NULL, NULL}, *dout = NULL;
	cudaStream_t s = NULL;
	cudaEvent_t e0 = NULL, e1 = NULL;
	char err[512];
	float ms = 0;
	const size_t lb = (size_t)g->chunk_frames * g->lat_frame_bytes;
	double fps = 0;

	if (egr_taesd_gpu_create(net, 0, &tg, err, sizeof(err)) < 0) {
		printf("create: %s\n", err);
		return 0;
	}
	cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	cudaEventCreate(&e0);
	cudaEventCreate(&e1);
	for (int i = 0; i < 2; i++) {
		cudaMalloc(&dlat[i], lb);
		cudaMemcpy(dlat[i], (const char *)j->lat + i * lb, lb, cudaMemcpyHostToDevice);
	}
	cudaMalloc(&dout, (size_t)g->chunk_frames * g->frame_bytes);
	for (int i = 0; i < 2; i++)	/* workspace, modules */
		egr_taesd_gpu_decode(tg, s, dlat[i], g->dtype, g->chunk_frames, g->lat_h, g->lat_w, g->format, dout, err,
				     sizeof(err));
	cudaStreamSynchronize(s);
	cudaEventRecord(e0, s);
	for (uint32_t c = 0; c < nchunks; c++)
		if (egr_taesd_gpu_decode(tg, s, dlat[c & 1], g->dtype, g->chunk_frames, g->lat_h, g->lat_w, g->format,
					 dout, err, sizeof(err)) < 0) {
			printf("decode: %s\n", err);
			break;
		}
	cudaEventRecord(e1, s);
	if (cudaEventSynchronize(e1) == cudaSuccess && cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess && ms > 0)
		fps = (double)nchunks * g->chunk_frames / (ms / 1e3);
	cudaFree(dlat[0]);
	cudaFree(dlat[1]);
	cudaFree(dout);
	cudaEventDestroy(e0);
	cudaEventDestroy(e1);
	cudaStreamDestroy(s);
	egr_taesd_gpu_destroy(tg);
	return fps;
}

static void perf(const char *dir)
{
	struct wfile w;
	const uint32_t sizes[2] = {64, 128};
	const uint32_t frames[2] = {3072, 768};
	const uint32_t pool = 16;	/* distinct latent frames, reused cyclically */
	/* the pipeline under test first, then context: png (twice the D2H bytes), naive */
	const struct {
		uint32_t format;
		const char *pipeline;
		uint32_t vram;
	} runs[] = {
		{EGR_FMT_Y4M, "full", 2}, {EGR_FMT_Y4M, "full", 3}, {EGR_FMT_PNG, "full", 2}, {EGR_FMT_Y4M, "naive", 1},
	};

	if (make_weights(&w, dir, 4, 7, EGR_ST_F16))
		return;
	printf("\nperf: TAESD (C=4 seeded weights), f16 latents, chunk 8, 8 slots freed at publish\n");
	printf("%-9s %-3s %-6s %4s %6s %9s %9s %9s %9s %10s %8s %8s %9s\n", "output", "fmt", "pipe", "vram", "frames",
	       "e2e f/s", "alone f/s", "e2e/alone", "kern util", "gap us/ck", "kern ms", "wall ms", "D2H GB/s");
	for (int si = 0; si < 2; si++) {
		double alone[3] = {0, 0, 0};	/* by format */
		for (size_t ri = 0; ri < sizeof(runs) / sizeof(runs[0]); ri++) {
			struct tcase t = {w.path, 4, runs[ri].format, EGR_DT_F16, sizes[si], sizes[si], pool, 8};
			struct job j;
			if (job_make(&j, &t, NULL))
				return;
			j.g.frames = frames[si];	/* latents come from the pool (run_job's lat_pool) */
			const uint32_t nchunks = frames[si] / 8;
			if (!alone[t.format])
				alone[t.format] = decode_alone(w.net, &j, nchunks);
			struct harness h;
			char err[512];
			void *be = NULL;
			struct egr_backend_stats st;
			double wall = 0;
			int naive = !strcmp(runs[ri].pipeline, "naive");
			if (harness_init(&h, 8, (size_t)8 * j.g.frame_bytes))
				return;
			if (open_backend(&h, runs[ri].pipeline, runs[ri].vram, on_publish, &be, err, sizeof(err))) {
				printf("open: %s\n", err);
				harness_fini(&h);
				job_free(&j);
				continue;
			}
			/* warm-up job: weights, workspace, first-touch */
			struct job jw = j;
			jw.g.frames = 32;
			run_job(be, &h, &jw, naive, pool, &st, NULL);
			run_job(be, &h, &j, naive, pool, &st, &wall);
			egr_backend_cuda.close(be);
			harness_fini(&h);
			double fps = frames[si] / wall, a = alone[t.format];
			double util = st.gpu_wall_ns ? (double)st.gpu_kernel_ns / st.gpu_wall_ns : 0;
			double gap = st.gpu_wall_ns > st.gpu_kernel_ns ? (st.gpu_wall_ns - st.gpu_kernel_ns) / 1e3 / nchunks : 0;
			char out[32];
			snprintf(out, sizeof(out), "%ux%u", j.g.width, j.g.height);
			printf("%-9s %-3s %-6s %4u %6u %9.1f %9.1f %8.1f%% %8.2f%% %10.1f %8.1f %8.1f %9.1f\n", out,
			       fmt_name(t.format), runs[ri].pipeline, runs[ri].vram, frames[si], fps, a,
			       a > 0 ? 100.0 * fps / a : 0.0, 100.0 * util, gap, st.gpu_kernel_ns / 1e6, st.gpu_wall_ns / 1e6,
			       st.d2h_ns ? (double)st.d2h_bytes / st.d2h_ns : 0.0);
			printf("EGRPERF size=%u fmt=%s pipeline=%s vram=%u e2e_fps=%.1f alone_fps=%.1f util=%.5f kern_ns=%llu wall_ns=%llu host_wall_s=%.4f submit_ns=%llu\n",
			       j.g.width, fmt_name(t.format), runs[ri].pipeline, runs[ri].vram, fps, a, util,
			       (unsigned long long)st.gpu_kernel_ns, (unsigned long long)st.gpu_wall_ns, wall,
			       (unsigned long long)st.decode_ns);
			job_free(&j);
		}
	}
	egr_taesd_free(w.net);
	unlink(w.path);
}

int main(int argc, char **argv)
{
	int ndev = 0;
	char dir[] = "/tmp/egr-taesd-XXXXXX";

	gpu_test_start("test_cuda_taesd", 280);
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
		printf("test_cuda_taesd: no CUDA device, skipped\n");
		return 77;
	}
	gpu_print_device();
	if (!mkdtemp(dir)) {
		printf("mkdtemp(%s): %s\n", dir, strerror(errno));
		return 1;
	}

	if (argc > 1 && !strcmp(argv[1], "--perf")) {
		egr_log_set_level(EGR_LOG_INFO);	/* weight upload, warm-up, per-job lines */
		perf(dir);
		rmdir(dir);
		return failures ? 1 : 0;
	}

	struct wfile w4, w16;
	if (make_weights(&w4, dir, 4, 11, EGR_ST_F16) || make_weights(&w16, dir, 16, 12, EGR_ST_F32))
		return 1;
	/*
	 * One backend, jobs in this order: the same weights twice (nothing
	 * reloaded; a repeated geometry needs no second warm-up), other weights,
	 * then the first again (a different path reloads).
	 */
	const struct tcase tc[] = {
		{w4.path, 4, EGR_FMT_Y4M, EGR_DT_F16, 8, 8, 7, 3},
		{w4.path, 4, EGR_FMT_PNG, EGR_DT_F32, 6, 10, 5, 1},
		{w4.path, 4, EGR_FMT_PNG, EGR_DT_F16, 8, 8, 7, 3},
		{w16.path, 16, EGR_FMT_Y4M, EGR_DT_F32, 5, 7, 4, 3},
		{w16.path, 16, EGR_FMT_PNG, EGR_DT_F16, 5, 7, 3, 1},
		{w4.path, 4, EGR_FMT_Y4M, EGR_DT_F32, 12, 9, 4, 3},
	};
	const uint32_t want_loads[] = {1, 1, 1, 2, 2, 3};
	const uint32_t want_warm[] = {1, 2, 2, 3, 3, 4};	/* job 4: chunk 1 fits chunk 3's workspace */
	const int n = (int)(sizeof(tc) / sizeof(tc[0]));
	struct job jobs[6];
	for (int i = 0; i < n; i++) {
		if (job_make(&jobs[i], &tc[i], tc[i].channels == 4 ? w4.net : w16.net)) {
			printf("job_make failed\n");
			return 1;
		}
		double e = raw_rel_err(&jobs[i]);
		CHECK(e >= 0 && e <= 1e-2, "job %d: raw GPU output relative error %.3e > 1e-2", i, e);
		printf("job %d: raw output GPU fp16 vs CPU fp32: relative error %.2e\n", i, e);
	}
	run_suite("full", 2, tc, jobs, n, want_loads, want_warm);
	if (!(argc > 1 && !strcmp(argv[1], "--short"))) {
		run_suite("full", 3, tc, jobs, n, want_loads, want_warm);
		/* every ablation, one job per weights file */
		const struct tcase sub[] = {tc[0], tc[4]};
		struct job sj[] = {jobs[0], jobs[4]};
		run_suite("no-copy-stream", 2, sub, sj, 2, NULL, NULL);
		run_suite("pageable", 2, sub, sj, 2, NULL, NULL);
		run_suite("single-buffer", 1, sub, sj, 2, NULL, NULL);
		run_suite("naive", 1, sub, sj, 2, NULL, NULL);
		test_errors(&w4, &w16);
	}
	for (int i = 0; i < n; i++)
		job_free(&jobs[i]);
	egr_taesd_free(w4.net);
	egr_taesd_free(w16.net);
	unlink(w4.path);
	unlink(w16.path);
	rmdir(dir);
	printf("%s: %d failure%s\n", failures ? "FAIL" : "PASS", failures, failures == 1 ? "" : "s");
	return failures ? 1 : 0;
}
