/*
 * test_cuda_frames: the CUDA backend through the backend API, exactly as the
 * producer drives it, against daemon/frame.c byte for byte.
 *
 *   exactness  random f16/f32 latents (square, non-square, odd, 1x1, 16 to
 *              128 channels with custom weights and bias), png and y4m, every
 *              pipeline ablation and the naive helper, several jobs on one
 *              open backend (buffers grow and are kept)
 *   poison     slots filled with 0xA5 before every reuse, slow writers: every
 *              byte of every slot is checked at the moment it is published
 *              and again after the writer's delay; a slot published before
 *              its D2H completed shows poison
 *   abort      job_end(abort) returns with no DMA left running: unpublished
 *              slots stay poisoned afterwards
 *   errors     bad submits are refused with a message naming the object
 *   --perf     a copy-bound job per pipeline mode: D2H GB/s, kernel time,
 *              frames/s (not a pass/fail test)
 *
 * Exit 0 pass, 1 fail, 77 skip (no GPU: then it checks that open fails with
 * -ENODEV and a clear message, which is what CI sees).  Seed: EGR_SEED.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime.h>

extern "C" {
#include "config/conf.h"
#include "config/job.h"
#include "daemon/decode/frame.h"
#include "daemon/base/log.h"
#include "daemon/formats/npy.h"
}
#include "daemon/producer/backend.h"
#include "daemon/decode/l2r_cuda.cuh"

static int failures;
static int poison_at_publish;	/* slots that showed poison when published */

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);    \
			printf("%s:%d: ", __FILE__, __LINE__);                 \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

#include "tests/gpu/gpu_helpers.h"

/* ---- random latents ---- */
static float rndf(float lo, float hi)
{
	return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.0f;
}

/* mostly [-3, 3]; some zeros, clamping giants and (f16) subnormals */
static float rnd_latent(void)
{
	uint32_t r = rnd() % 200;
	if (r == 0)
		return 0.0f;
	if (r == 1)
		return rndf(-200.0f, 200.0f);
	if (r == 2)
		return rndf(-1e-6f, 1e-6f);
	return rndf(-3.0f, 3.0f);
}

/* ---- the harness: the slot area (gpu_helpers.h), a publish callback, slow writers ---- */
struct harness : slot_harness {
	int poison;
	unsigned delay_us;	/* writer holds each slot this long */
	unsigned pub_delay_us;	/* the publish callback itself is this slow */
	/* writer FIFO */
	uint32_t fifo[MAX_SLOTS], fhead, fcount;
	int stop;
	pthread_t writer;
	long bad_prints;
	/* publish latency: submit returned -> publish called, per chunk */
	unsigned long long *t_sub;
	unsigned long long lat_sum, lat_max;
	uint32_t lat_n;
};

static int verify_slot(struct harness *h, uint32_t slot, uint32_t first, uint32_t n, uint64_t bytes,
		       const char *when)
{
	const uint8_t *got = h->base + (size_t)slot * h->slot_bytes;
	const uint8_t *want = h->expect + (size_t)first * h->frame_bytes;

	if (!memcmp(got, want, bytes))
		return 0;
	size_t off = 0, diff = 0, poison = 0;
	for (size_t i = 0; i < bytes; i++) {
		if (got[i] != want[i]) {
			if (!diff++)
				off = i;
			poison += got[i] == 0xA5;
		}
	}
	if (poison && !strcmp(when, "at publish"))
		__atomic_fetch_add(&poison_at_publish, 1, __ATOMIC_RELAXED);
	if (h->bad_prints++ < 8)
		printf("  %s: slot %u frames %u..%u: %zu bytes differ (%zu are poison 0xA5), the first at frame %u byte %llu\n",
		       when, slot, first, first + n - 1, diff, poison, first + (uint32_t)(off / h->frame_bytes),
		       (unsigned long long)(off % h->frame_bytes));
	return -1;
}

static void on_publish(void *ctx, uint32_t slot, uint32_t first, uint32_t n, uint64_t bytes)
{
	struct harness *h = static_cast<struct harness *>((struct slot_harness *)ctx);

	/* checked at the instant of publishing: the copy must be complete now */
	if (h->expect) {
		CHECK(bytes == n * h->frame_bytes, "published %llu bytes for %u frames", (unsigned long long)bytes, n);
		CHECK(verify_slot(h, slot, first, n, bytes, "at publish") == 0,
		      "slot %u (frames %u..%u) wrong when published", slot, first, first + n - 1);
	}
	/* a slow publish (ring lock contention): later chunks pile up behind it */
	if (h->pub_delay_us)
		usleep(h->pub_delay_us);
	pthread_mutex_lock(&h->mu);
	CHECK(slot < h->nslots && h->state[slot] == S_FILLING, "published slot %u in state %d", slot,
	      slot < h->nslots ? h->state[slot] : -1);
	if (slot >= h->nslots) {
		pthread_mutex_unlock(&h->mu);
		return;
	}
	CHECK(first % h->chunk_frames == 0 && first < h->frames, "published first frame %u", first);
	if (first % h->chunk_frames == 0 && first < h->frames) {
		uint32_t ci = first / h->chunk_frames;
		h->pubcount[ci]++;
		unsigned long long now = egr_log_now_ns(), ts = h->t_sub ? h->t_sub[ci] : 0;
		if (ts && now > ts) {
			h->lat_sum += now - ts;
			h->lat_max = now - ts > h->lat_max ? now - ts : h->lat_max;
			h->lat_n++;
		}
	}
	h->state[slot] = S_PUBLISHED;
	h->published_bytes += bytes;
	h->fifo[(h->fhead + h->fcount) % MAX_SLOTS] = slot | (first << 8);	/* first < 2^24 */
	h->fcount++;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* a slow disk writer: keeps the slot for delay_us, then checks it is still intact */
static void *writer_main(void *arg)
{
	struct harness *h = (struct harness *)arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->fcount && !h->stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if (!h->fcount)
			break;
		uint32_t v = h->fifo[h->fhead];
		h->fhead = (h->fhead + 1) % MAX_SLOTS;
		h->fcount--;
		pthread_mutex_unlock(&h->mu);
		uint32_t slot = v & 0xff, first = v >> 8;
		if (h->delay_us)
			usleep(h->delay_us);
		if (h->expect) {
			uint32_t n = h->frames - first < h->chunk_frames ? h->frames - first : h->chunk_frames;
			CHECK(verify_slot(h, slot, first, n, n * h->frame_bytes, "after write") == 0,
			      "slot %u changed while a writer held it", slot);
		}
		pthread_mutex_lock(&h->mu);
		h->state[slot] = S_FREE;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static int harness_init(struct harness *h, uint32_t nslots, size_t slot_bytes)
{
	memset(h, 0, sizeof(*h));
	if (slots_map(h, nslots, slot_bytes))
		return -1;
	pthread_create(&h->writer, NULL, writer_main, h);
	return 0;
}

static void harness_fini(struct harness *h)
{
	pthread_mutex_lock(&h->mu);
	h->stop = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->writer, NULL);
	slots_unmap(h);
}

static void wait_all_free(struct harness *h)
{
	pthread_mutex_lock(&h->mu);
	for (;;) {
		uint32_t busy = 0;
		for (uint32_t s = 0; s < h->nslots; s++)
			busy += h->state[s] != S_FREE;
		if (!busy)
			break;
		pthread_cond_wait(&h->cv, &h->mu);
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- one job ---- */
struct tcase {
	uint32_t format, dtype, channels, lh, lw, frames, chunk;
	int custom;	/* random weights and bias (needed beyond 4 channels) */
};

struct job {
	struct egr_job_geom g;
	void *lat;		/* frames * lat_frame_bytes in dtype */
	uint8_t *expect;	/* CPU frames */
};

static int job_make(struct job *j, const struct tcase *t, int want_expect)
{
	char err[256];
	float w[EGR_L2R_MAX_CHANNELS * 3], bias[3];
	memset(j, 0, sizeof(*j));
	for (int i = 0; i < EGR_L2R_MAX_CHANNELS * 3; i++)
		w[i] = rndf(-1.0f, 1.0f);
	for (int i = 0; i < 3; i++)
		bias[i] = rndf(-0.5f, 0.5f);
	if (egr_frame_l2r_init(&j->g.l2r, t->channels, t->custom ? t->channels * 3 : 0, w, t->custom, bias, err,
			 sizeof(err))) {
		printf("egr_frame_l2r_init: %s\n", err);
		return -1;
	}
	geom_init(&j->g, EGR_DEC_LATENT2RGB, t->format, t->dtype, t->channels, t->lh, t->lw, t->frames, t->chunk);

	const size_t per = (size_t)t->channels * t->lh * t->lw, n = per * t->frames;
	float *f = (float *)malloc(n * sizeof(float));
	j->lat = malloc(n * t->dtype);
	if (!f || !j->lat)
		return -1;
	for (size_t i = 0; i < n; i++)
		f[i] = latent_store(j->lat, i, t->dtype, rnd_latent());	/* what the GPU reads */
	if (want_expect) {
		const uint64_t fb = j->g.frame_bytes;
		uint8_t *rgb = (uint8_t *)malloc((size_t)j->g.width * j->g.height * 3);
		j->expect = (uint8_t *)malloc(fb * t->frames);
		if (!rgb || !j->expect)
			return -1;
		for (uint32_t fr = 0; fr < t->frames; fr++) {
			uint8_t *o = j->expect + fb * fr;
			if (egr_frame_l2r(&j->g.l2r, f + per * fr, t->lh, t->lw, t->format == EGR_FMT_Y4M ? rgb : o))
				return -1;
			if (t->format == EGR_FMT_Y4M)
				egr_frame_rgb_to_i420(rgb, j->g.width, j->g.height, o);
		}
		free(rgb);
	}
	free(f);
	return 0;
}

static void job_free(struct job *j)
{
	free(j->lat);
	free(j->expect);
}

/* chunks of j up to abort_after (0: all), staged and decoded; how many were submitted, or -1 */
static int run_chunks(void *be, struct harness *h, const struct job *j, uint32_t nchunks, int naive,
		      uint32_t abort_after)
{
	int submitted = 0;

	for (uint32_t c = 0; c < nchunks; c++) {
		struct egr_chunk ch;
		if (abort_after && c == abort_after)
			break;
		if (chunk_stage(be, h, &j->g, j->lat, 0, c, h->poison, &ch))
			return -1;
		int rc = chunk_decode(be, &ch, c, naive, on_publish, h);
		if (!naive) {
			/* under the lock: the publisher reads it; 0 while submit runs */
			pthread_mutex_lock(&h->mu);
			if (!h->pubcount[c])
				h->t_sub[c] = egr_log_now_ns();
			pthread_mutex_unlock(&h->mu);
		}
		if (rc) {
			release_filling(h, ch.slot);
			return -1;
		}
		submitted++;
	}
	return submitted;
}

/* after job_end(abort): slots never published are the producer's again, no DMA may touch them now */
static void check_abort(struct harness *h, uint32_t nchunks, uint32_t submitted)
{
	pthread_mutex_lock(&h->mu);
	uint32_t filling[MAX_SLOTS], nf = 0, pub = 0;
	for (uint32_t s = 0; s < h->nslots; s++)
		if (h->state[s] == S_FILLING)
			filling[nf++] = s;
	for (uint32_t c = 0; c < nchunks; c++)
		pub += h->pubcount[c];
	pthread_mutex_unlock(&h->mu);
	CHECK(pub + nf == submitted, "abort: %u published + %u unpublished != %u submitted", pub, nf, submitted);
	for (uint32_t i = 0; i < nf; i++)
		memset(h->base + (size_t)filling[i] * h->slot_bytes, 0x5A, h->slot_bytes);
	usleep(20000);
	for (uint32_t i = 0; i < nf; i++) {
		const uint8_t *p = h->base + (size_t)filling[i] * h->slot_bytes;
		size_t k = 0;
		while (k < h->slot_bytes && p[k] == 0x5A)
			k++;
		CHECK(k == h->slot_bytes, "abort: slot %u written at byte %zu after job_end returned", filling[i], k);
	}
	free_filling(h);	/* the producer abandons them */
	wait_all_free(h);
}

/* after a whole job: every chunk published once, every byte, and the stats */
static void check_complete(struct harness *h, uint32_t nchunks, const struct egr_backend_stats *st)
{
	const uint64_t total = h->frame_bytes * h->frames;

	wait_all_free(h);
	slots_check_published(h, nchunks);
	CHECK(st->d2h_bytes == total, "stats: d2h_bytes %llu, want %llu", (unsigned long long)st->d2h_bytes,
	      (unsigned long long)total);
	CHECK(st->gpu_kernel_ns > 0 && st->d2h_ns > 0 && st->gpu_wall_ns >= st->d2h_ns / 2 && st->decode_ns > 0,
	      "stats: kernel %llu d2h %llu wall %llu decode %llu ns", (unsigned long long)st->gpu_kernel_ns,
	      (unsigned long long)st->d2h_ns, (unsigned long long)st->gpu_wall_ns, (unsigned long long)st->decode_ns);
}

/*
 * Run one job through an open backend like the producer: acquire a slot,
 * (poison it), fill input_buffer, submit (or naive decode + publish).
 * abort_after > 0: job_end(abort) after that many chunks.
 */
static int run_job(void *be, struct harness *h, struct job *j, int naive, uint32_t abort_after,
		   struct egr_backend_stats *st, double *wall_s)
{
	const struct egr_backend_ops *ops = &egr_backend_cuda;
	const uint32_t nchunks = slots_job_start(h, &j->g);
	unsigned long long t0;
	char err[512];
	int rc, submitted;

	h->t_sub = (unsigned long long *)calloc(nchunks, sizeof(unsigned long long));
	h->lat_sum = h->lat_max = 0;
	h->lat_n = 0;
	h->bad_prints = 0;
	rc = ops->job_begin(be, &j->g, err, sizeof(err));
	CHECK(rc == 0, "job_begin: %d %s", rc, err);
	if (rc)
		goto out;
	t0 = egr_log_now_ns();
	submitted = run_chunks(be, h, j, nchunks, naive, abort_after);
	if (submitted < 0) {
		/* like the producer on an error: abort, then abandon what was never published */
		ops->job_end(be, 1, st, err, sizeof(err));
		free_filling(h);
		wait_all_free(h);
		rc = -1;
		goto out;
	}
	rc = ops->job_end(be, abort_after != 0, st, err, sizeof(err));
	CHECK(rc == 0, "job_end: %d %s", rc, err);
	if (wall_s)
		*wall_s = (egr_log_now_ns() - t0) / 1e9;
	if (abort_after)
		check_abort(h, nchunks, (uint32_t)submitted);
	else
		check_complete(h, nchunks, st);
	rc = 0;
out:
	slots_job_done(h);
	free(h->t_sub);
	h->t_sub = NULL;
	return rc ? -1 : 0;
}

/* open a backend on a fresh slot area, run cases in order on it (buffers grow and are kept) */
static void run_suite(const char *pipeline, uint32_t vram, uint32_t slots, const struct tcase *tc, int n,
		      int poison, unsigned delay_us, unsigned pub_delay_us)
{
	struct harness h;
	char err[512];
	void *be = NULL;
	size_t need = 0;
	int f0 = failures;

	for (int i = 0; i < n; i++) {
		size_t b = (size_t)tc[i].chunk * egr_frame_bytes(tc[i].format, tc[i].lw * 8, tc[i].lh * 8);
		need = b > need ? b : need;
	}
	if (harness_init(&h, slots, need)) {
		failures++;
		return;
	}
	h.poison = poison;
	h.delay_us = delay_us;
	h.pub_delay_us = pub_delay_us;
	int rc = open_backend(&h, pipeline, vram, on_publish, &be, err, sizeof(err));
	CHECK(rc == 0, "open(pipeline %s): %d %s", pipeline, rc, err);
	if (rc) {
		harness_fini(&h);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct job j;
		struct egr_backend_stats st;
		memset(&st, 0, sizeof(st));
		if (job_make(&j, &tc[i], 1)) {
			CHECK(0, "job_make failed");
			continue;
		}
		h.expect = j.expect;
		run_job(be, &h, &j, !strcmp(pipeline, "naive"), 0, &st, NULL);
		job_free(&j);
		h.expect = NULL;
	}
	egr_backend_cuda.close(be);
	harness_fini(&h);
	printf("%-4s %-15s vram %u slots %2u %2d job%s%s%s: %s\n", failures == f0 ? "ok" : "FAIL", pipeline, vram,
	       slots, n, n == 1 ? "" : "s", poison ? ", poisoned slots" : "",
	       delay_us || pub_delay_us ? ", slow writers/publish" : "",
	       failures == f0 ? "byte-identical to frame.c" : "MISMATCH");
}

static void test_abort(void)
{
	struct harness h;
	char err[512];
	void *be = NULL;
	struct tcase t = {EGR_FMT_PNG, EGR_DT_F16, 4, 64, 64, 64, 4, 0};
	struct job j;
	struct egr_backend_stats st;
	int f0 = failures;

	if (job_make(&j, &t, 0) || harness_init(&h, 6, (size_t)4 * 512 * 512 * 3)) {
		failures++;
		return;
	}
	h.delay_us = 2000;
	h.pub_delay_us = 3000;	/* chunks queue up behind a slow publish: the abort drops some */
	int rc = open_backend(&h, "full", 2, on_publish, &be, err, sizeof(err));
	CHECK(rc == 0, "open: %d %s", rc, err);
	if (!rc) {
		run_job(be, &h, &j, 0, 9, &st, NULL);
		/* after an abort the backend is ready for the next job */
		struct tcase t2 = {EGR_FMT_Y4M, EGR_DT_F32, 4, 16, 24, 9, 4, 0};
		struct job j2;
		if (!job_make(&j2, &t2, 1)) {
			h.expect = j2.expect;
			h.delay_us = 0;
			h.pub_delay_us = 0;
			run_job(be, &h, &j2, 0, 0, &st, NULL);
			h.expect = NULL;
			job_free(&j2);
		}
		egr_backend_cuda.close(be);
	}
	harness_fini(&h);
	job_free(&j);
	printf("%-4s abort: job_end(abort) leaves no DMA running, next job exact\n", failures == f0 ? "ok" : "FAIL");
}

static void test_bad_submits(void)
{
	struct harness h;
	char err[512] = "";
	void *be = NULL;
	struct tcase t = {EGR_FMT_Y4M, EGR_DT_F32, 4, 8, 8, 8, 4, 0};
	struct job j;
	struct egr_backend_stats st;
	int f0 = failures, rc;

	if (job_make(&j, &t, 0) || harness_init(&h, 2, 4 * 96 * 64)) {
		failures++;
		return;
	}
	rc = open_backend(&h, "bogus", 2, on_publish, &be, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "bogus"), "open(pipeline bogus): %d %s", rc, err);
	if (!rc)
		egr_backend_cuda.close(be);
	rc = open_backend(&h, "full", 2, on_publish, &be, err, sizeof(err));
	CHECK(rc == 0, "open: %d %s", rc, err);
	if (rc) {
		harness_fini(&h);
		return;
	}
	struct egr_job_geom g = j.g;
	g.decoder = EGR_DEC_TAESD;
	/* decoder = taesd works on the GPU (test_cuda_taesd); a missing weights file is a clear error */
	g.weights = "/nonexistent/taesd.safetensors";
	rc = egr_backend_cuda.job_begin(be, &g, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "/nonexistent/taesd.safetensors"), "job_begin(taesd, missing weights): %d %s",
	      rc, err);
	g = j.g;
	g.frame_bytes += 1;
	rc = egr_backend_cuda.job_begin(be, &g, err, sizeof(err));
	CHECK(rc == -EINVAL, "job_begin(bad frame_bytes): %d %s", rc, err);
	rc = egr_backend_cuda.job_begin(be, &j.g, err, sizeof(err));
	CHECK(rc == 0, "job_begin: %d %s", rc, err);
	void *in = egr_backend_cuda.input_buffer(be, 4 * j.g.lat_frame_bytes, err, sizeof(err));
	CHECK(in != NULL, "input_buffer: %s", err);
	uint8_t outside[64];
	struct egr_chunk c = {1, outside, 0, 4, 0, 4, 0, in};
	rc = egr_backend_cuda.submit(be, &c, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "slot 1"), "submit(outside the slot area): %d %s", rc, err);
	struct egr_chunk c2 = {0, h.base, 0, 5, 0, 5, 0, in};
	rc = egr_backend_cuda.submit(be, &c2, err, sizeof(err));
	CHECK(rc == -EINVAL, "submit(5 frames, chunk 4): %d %s", rc, err);
	rc = egr_backend_cuda.job_end(be, 0, &st, err, sizeof(err));
	CHECK(rc == 0 && st.d2h_bytes == 0, "job_end after refused submits: %d %s", rc, err);
	egr_backend_cuda.close(be);
	harness_fini(&h);
	job_free(&j);
	printf("%-4s bad submits refused with a reason\n", failures == f0 ? "ok" : "FAIL");
}

/* ---- --perf: one copy-bound job per pipeline ---- */
static void perf(void)
{
	static const char *modes[] = {"full", "no-copy-stream", "pageable", "single-buffer", "naive"};
	const uint32_t fmts[] = {EGR_FMT_PNG, EGR_FMT_Y4M};
	printf("\nperf: 1024x1024 frames, 4-channel f16 latents, chunk 8, 8 slots, 2 VRAM buffers, %s\n",
	       "writers free slots at once (copy-bound)");
	printf("%-4s %-15s %7s %9s %9s %9s %9s %10s %8s %8s\n", "fmt", "pipeline", "frames", "frames/s", "GB/s e2e",
	       "D2H GB/s", "kern ms", "kern GB/s", "pub us", "pub max");
	for (int fi = 0; fi < 2; fi++) {
		struct tcase t = {fmts[fi], EGR_DT_F16, 4, 128, 128, 1600, 8, 0};
		struct job j;
		if (job_make(&j, &t, 0))
			return;
		for (int m = 0; m < 5; m++) {
			struct harness h;
			char err[512];
			void *be = NULL;
			struct egr_backend_stats st;
			double wall = 0;
			memset(&st, 0, sizeof(st));
			if (harness_init(&h, 8, (size_t)8 * j.g.frame_bytes))
				return;
			if (open_backend(&h, modes[m], 2, on_publish, &be, err, sizeof(err))) {
				printf("open(%s): %s\n", modes[m], err);
				harness_fini(&h);
				continue;
			}
			/* warm-up job: module load, first-touch, allocations */
			struct tcase tw = t;
			tw.frames = 64;
			struct job jw;
			if (!job_make(&jw, &tw, 0)) {
				run_job(be, &h, &jw, !strcmp(modes[m], "naive"), 0, &st, NULL);
				job_free(&jw);
			}
			run_job(be, &h, &j, !strcmp(modes[m], "naive"), 0, &st, &wall);
			egr_backend_cuda.close(be);
			harness_fini(&h);
			double bytes = (double)j.g.frame_bytes * t.frames;
			printf("%-4s %-15s %7u %9.0f %9.1f %9.1f %9.2f %10.0f %8.0f %8.0f\n", fmt_name(t.format), modes[m],
			       t.frames, t.frames / wall, bytes / wall / 1e9, st.d2h_ns ? bytes / st.d2h_ns : 0.0,
			       st.gpu_kernel_ns / 1e6, st.gpu_kernel_ns ? bytes / st.gpu_kernel_ns : 0.0,
			       h.lat_n ? h.lat_sum / 1e3 / h.lat_n : 0.0, h.lat_max / 1e3);
		}
		job_free(&j);
	}
}

/* what CI sees without a GPU (e: why none): the backend must refuse clearly, not crash.  The exit code. */
static int test_no_gpu(cudaError_t e)
{
	struct egr_conf conf;
	char err[512] = "";
	void *be = (void *)1;
	uint8_t area[4096];

	conf_for(&conf, "full", 2, 1);
	struct egr_backend_env env = {&conf, area, sizeof(area), on_publish, NULL};
	int rc = egr_backend_cuda.open(&env, &be, err, sizeof(err));
	CHECK(rc == -ENODEV, "open without a GPU returned %d (want -ENODEV): %s", rc, err);
	CHECK(strstr(err, "backend = cpu") != NULL, "open without a GPU: unclear message: %s", err);
	CHECK(be == NULL, "open without a GPU left a handle");
	printf("no CUDA device (%s): open refused as it should (%s); GPU tests skipped\n",
	       e != cudaSuccess ? cudaGetErrorString(e) : "count 0", err);
	return failures ? 1 : 77;
}

#ifdef EGR_TESTING
/*
 * The poison check must be able to fail: with the publisher's copy wait
 * removed (test hook), slots are published while their DMA runs.
 */
static void test_poison_catches_early_publish(void)
{
	int f0 = failures, p0 = poison_at_publish;

	setenv("EGR_FAULT_CUDA_EARLY_PUBLISH", "1", 1);
	printf("mutation: publisher without its copy wait; the lines below must report poison\n");
	const struct tcase big[] = {{EGR_FMT_PNG, EGR_DT_F16, 4, 128, 128, 48, 4, 0}};
	run_suite("full", 2, 4, big, 1, 1, 0, 0);
	unsetenv("EGR_FAULT_CUDA_EARLY_PUBLISH");
	int caught = poison_at_publish - p0;
	failures = f0;
	CHECK(caught > 0, "mutation: early publishing went unnoticed by the poison check");
	printf("%-4s mutation caught (%d slots showed poison when published)\n", caught ? "ok" : "FAIL", caught);
}
#endif

int main(int argc, char **argv)
{
	int ndev = 0;
	cudaError_t e;

	gpu_test_start("test_cuda_frames", 240);
	e = cudaGetDeviceCount(&ndev);
	if (e != cudaSuccess || ndev == 0)
		return test_no_gpu(e);
	gpu_print_device();

	if (argc > 1 && !strcmp(argv[1], "--perf")) {
		egr_log_set_level(EGR_LOG_INFO);	/* registration times, per-job lines */
		perf();
		return failures ? 1 : 0;
	}

	/* exactness across shapes, dtypes, channels; one backend, growing and shrinking jobs */
	const struct tcase shapes[] = {
		{EGR_FMT_PNG, EGR_DT_F32, 4, 8, 8, 21, 4, 0},
		{EGR_FMT_Y4M, EGR_DT_F32, 4, 8, 8, 21, 4, 0},
		{EGR_FMT_Y4M, EGR_DT_F16, 4, 9, 13, 10, 3, 0},
		{EGR_FMT_PNG, EGR_DT_F16, 4, 9, 13, 10, 3, 0},
		{EGR_FMT_PNG, EGR_DT_F32, 16, 5, 7, 11, 5, 1},
		{EGR_FMT_Y4M, EGR_DT_F16, 16, 5, 7, 11, 5, 1},
		{EGR_FMT_PNG, EGR_DT_F32, 1, 1, 1, 3, 2, 1},
		{EGR_FMT_Y4M, EGR_DT_F16, 4, 1, 2, 3, 1, 1},
		{EGR_FMT_Y4M, EGR_DT_F16, 4, 2, 1, 4, 4, 0},
		{EGR_FMT_Y4M, EGR_DT_F16, 4, 64, 96, 6, 2, 0},
		{EGR_FMT_PNG, EGR_DT_F32, 8, 64, 96, 5, 2, 1},
		{EGR_FMT_Y4M, EGR_DT_F32, 4, 90, 160, 4, 4, 1},	/* 720x1280, not a multiple of the block */
		{EGR_FMT_PNG, EGR_DT_F16, 4, 12, 20, 7, 7, 0},
		/* past 16 channels: the wider unrolled kernel (flux2/hunyuan15, wan22, ltxv presets) */
		{EGR_FMT_Y4M, EGR_DT_F32, 32, 6, 10, 5, 2, 1},
		{EGR_FMT_PNG, EGR_DT_F16, 48, 5, 9, 4, 3, 1},
		{EGR_FMT_Y4M, EGR_DT_F16, 128, 4, 6, 3, 3, 1},
	};
	const int nshapes = (int)(sizeof(shapes) / sizeof(shapes[0]));
	run_suite("full", 2, 4, shapes, nshapes, 0, 0, 0);
	if (argc > 1 && !strcmp(argv[1], "--short")) {	/* for compute-sanitizer */
		test_abort();
		printf("%s: %d failure%s\n", failures ? "FAIL" : "PASS", failures, failures == 1 ? "" : "s");
		return failures ? 1 : 0;
	}
	run_suite("full", 3, 5, shapes, nshapes, 1, 0, 0);

	/* every ablation computes the same bytes */
	const struct tcase some[] = {
		{EGR_FMT_Y4M, EGR_DT_F16, 4, 24, 40, 17, 4, 0},
		{EGR_FMT_PNG, EGR_DT_F32, 16, 24, 40, 9, 2, 1},
	};
	run_suite("no-copy-stream", 2, 4, some, 2, 1, 0, 0);
	run_suite("pageable", 2, 4, some, 2, 1, 0, 0);
	run_suite("single-buffer", 2, 4, some, 2, 1, 0, 0);
	run_suite("one-worker", 2, 4, some, 2, 1, 0, 0);
	run_suite("naive", 2, 4, some, 2, 1, 0, 0);

	/* poisoned slots, slow writers, few slots: every publish must see complete bytes */
	const struct tcase pois[] = {
		{EGR_FMT_PNG, EGR_DT_F16, 4, 48, 64, 96, 2, 0},
		{EGR_FMT_Y4M, EGR_DT_F32, 4, 48, 64, 96, 3, 0},
	};
	run_suite("full", 2, 3, pois, 2, 1, 3000, 0);
	run_suite("full", 2, 4, pois, 2, 1, 500, 2000);
	run_suite("full", 4, 6, pois, 2, 1, 1000, 0);
	run_suite("no-copy-stream", 2, 3, pois, 2, 1, 2000, 0);
	run_suite("single-buffer", 1, 3, pois, 1, 1, 0, 1000);

	test_abort();
	test_bad_submits();
#ifdef EGR_TESTING
	test_poison_catches_early_publish();
#endif

	printf("%s: %d failure%s\n", failures ? "FAIL" : "PASS", failures, failures == 1 ? "" : "s");
	return failures ? 1 : 0;
}
