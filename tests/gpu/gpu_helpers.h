/*
 * gpu_helpers: the harness the CUDA backend tests share (test_cuda_frames,
 * test_cuda_taesd), which drive egr_backend_cuda the way the producer does.
 *
 *   start      watchdog, log level, the seed (EGR_SEED to repeat a run)
 *   rnd        xorshift64 on that seed
 *   slots      a slot area shaped like the ring's data region (MAP_SHARED
 *              anonymous memory, tmpfs-backed like the real shm ring), each
 *              slot free, filling (the producer's) or published (a writer's);
 *              the job being run and how often each chunk was published
 *   backend    the config of a pipeline, opened over the slot area
 *   chunks     a chunk staged like the producer stages it, then decoded by
 *              submit or by the naive helper (which does not publish: the
 *              caller's publish callback is called for it)
 *   jobs       the geometry of a test case; latents stored in the job's dtype
 *
 * A test's harness extends struct slot_harness (C++ inheritance, so fields
 * read h->base as before).  Include after CHECK and failures are defined;
 * static inline throughout, so a test need not use every helper.
 */
#ifndef EGR_TEST_GPU_HELPERS_H
#define EGR_TEST_GPU_HELPERS_H

#include <errno.h>
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
#include "daemon/base/half.h"
#include "daemon/base/log.h"
#include "daemon/base/vocab.h"
#include "daemon/decode/frame.h"
}
#include "daemon/producer/backend.h"
#include "daemon/producer/naive.h"

/* ---- start: watchdog, log, seed ---- */
static uint64_t rng_s;
static char gpu_alarm_msg[160];
static size_t gpu_alarm_len;

static inline uint32_t rnd(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return (uint32_t)(rng_s >> 11);
}

static inline void gpu_on_alarm(int sig)
{
	if (write(1, gpu_alarm_msg, gpu_alarm_len) < 0) {
		/* nothing else to do */
	}
	_exit(1);
}

/* A hang fails after watchdog_s; log as name (EGR_DEBUG: debug lines); seed rnd. */
static inline void gpu_test_start(const char *name, unsigned watchdog_s)
{
	const char *seed = getenv("EGR_SEED");

	snprintf(gpu_alarm_msg, sizeof(gpu_alarm_msg), "%s: watchdog: no progress for %u s (a hang), failing\n", name,
		 watchdog_s);
	gpu_alarm_len = strlen(gpu_alarm_msg);
	signal(SIGALRM, gpu_on_alarm);
	alarm(watchdog_s);
	egr_log_init(name);
	egr_log_set_level(getenv("EGR_DEBUG") ? EGR_LOG_DEBUG : EGR_LOG_WARNING);
	rng_s = seed ? strtoull(seed, NULL, 0) : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	if (!rng_s)
		rng_s = 1;
	printf("seed %llu (EGR_SEED to repeat)\n", (unsigned long long)rng_s);
}

static inline void gpu_print_device(void)
{
	cudaDeviceProp prop;

	if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
		printf("device 0: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
}

/* ---- slots ---- */
#define MAX_SLOTS 16

enum { S_FREE, S_FILLING, S_PUBLISHED };

struct slot_harness {
	uint8_t *base;
	size_t slot_bytes, area;
	uint32_t nslots;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state[MAX_SLOTS];
	struct egr_conf conf;	/* the open backend's; lives as long as the slots */
	/* the job being run */
	const uint8_t *expect;	/* frames * frame_bytes, NULL: no checks */
	uint64_t frame_bytes;
	uint32_t frames, chunk_frames;
	uint32_t *pubcount;	/* per chunk */
	uint64_t published_bytes;
};

/* nslots slots of slot_bytes (rounded up to pages), all free; h zeroed by the caller.  0 or -1. */
static inline int slots_map(struct slot_harness *h, uint32_t nslots, size_t slot_bytes)
{
	h->nslots = nslots;
	h->slot_bytes = (slot_bytes + 4095) & ~(size_t)4095;
	h->area = h->slot_bytes * nslots;
	void *p = mmap(NULL, h->area, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("mmap(slot area, %zu bytes): %s\n", h->area, strerror(errno));
		return -1;
	}
	h->base = (uint8_t *)p;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	return 0;
}

static inline void slots_unmap(struct slot_harness *h)
{
	munmap(h->base, h->area);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
}

/* a free slot, now filling (waits for one) */
static inline uint32_t acquire_slot(struct slot_harness *h)
{
	pthread_mutex_lock(&h->mu);
	for (;;) {
		for (uint32_t s = 0; s < h->nslots; s++) {
			if (h->state[s] == S_FREE) {
				h->state[s] = S_FILLING;
				pthread_mutex_unlock(&h->mu);
				return s;
			}
		}
		pthread_cond_wait(&h->cv, &h->mu);
	}
}

static inline void release_filling(struct slot_harness *h, uint32_t slot)
{
	pthread_mutex_lock(&h->mu);
	h->state[slot] = S_FREE;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* the producer abandons every slot it filled and never saw published */
static inline void free_filling(struct slot_harness *h)
{
	pthread_mutex_lock(&h->mu);
	for (uint32_t s = 0; s < h->nslots; s++)
		if (h->state[s] == S_FILLING)
			h->state[s] = S_FREE;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* job g's shape into h, every chunk unpublished; returns the number of chunks */
static inline uint32_t slots_job_start(struct slot_harness *h, const struct egr_job_geom *g)
{
	const uint32_t nchunks = (g->frames + g->chunk_frames - 1) / g->chunk_frames;

	h->frame_bytes = g->frame_bytes;
	h->frames = g->frames;
	h->chunk_frames = g->chunk_frames;
	h->pubcount = (uint32_t *)calloc(nchunks, sizeof(uint32_t));
	h->published_bytes = 0;
	return nchunks;
}

static inline void slots_job_done(struct slot_harness *h)
{
	free(h->pubcount);
	h->pubcount = NULL;
}

/* after a whole job: every chunk published once, every byte of the job published */
static inline void slots_check_published(const struct slot_harness *h, uint32_t nchunks)
{
	const uint64_t total = h->frame_bytes * h->frames;

	for (uint32_t c = 0; c < nchunks; c++)
		CHECK(h->pubcount[c] == 1, "chunk %u published %u times", c, h->pubcount[c]);
	CHECK(h->published_bytes == total, "published %llu bytes, job has %llu", (unsigned long long)h->published_bytes,
	      (unsigned long long)total);
}

/* ---- backend ---- */
static inline void conf_for(struct egr_conf *conf, const char *pipeline, uint32_t vram, uint32_t slots)
{
	memset(conf, 0, sizeof(*conf));
	snprintf(conf->pipeline, sizeof(conf->pipeline), "%s", pipeline);
	snprintf(conf->backend, sizeof(conf->backend), "cuda");
	conf->vram_buffers = vram;
	conf->slots = slots;
	conf->device = 0;
}

/* egr_backend_cuda.open for pipeline over h's slots, publishing to publish(h, ...) */
static inline int open_backend(struct slot_harness *h, const char *pipeline, uint32_t vram, egr_publish_fn publish,
			void **be, char *err, size_t errlen)
{
	conf_for(&h->conf, pipeline, vram, h->nslots);
	struct egr_backend_env env = {&h->conf, h->base, h->area, publish, h};
	return egr_backend_cuda.open(&env, be, err, errlen);
}

/* ---- chunks ---- */
/*
 * Chunk c of job g, staged like the producer stages it: a free slot
 * (filled with 0xA5 first if poison, so an unwritten byte shows), the
 * backend's input buffer filled from lat at frame first (first mod lat_pool
 * when lat_pool > 0: a small pool of latents stands in for a long file).
 * 0 with *ch set, or -1 (input_buffer failed: checked, slot given back).
 */
static inline int chunk_stage(void *be, struct slot_harness *h, const struct egr_job_geom *g, const void *lat,
		       uint32_t lat_pool, uint32_t c, int poison, struct egr_chunk *ch)
{
	char err[512];
	uint32_t first = c * g->chunk_frames;
	uint32_t n = g->frames - first < g->chunk_frames ? g->frames - first : g->chunk_frames;
	uint32_t slot = acquire_slot(h);
	uint8_t *dst = h->base + (size_t)slot * h->slot_bytes;

	if (poison)
		memset(dst, 0xA5, h->slot_bytes);
	size_t lb = (size_t)n * g->lat_frame_bytes;
	void *in = egr_backend_cuda.input_buffer(be, lb, err, sizeof(err));
	CHECK(in != NULL, "input_buffer(%zu): %s", lb, err);
	if (!in) {
		release_filling(h, slot);
		return -1;
	}
	uint32_t src = lat_pool ? (first % lat_pool) : first;
	memcpy(in, (const uint8_t *)lat + (size_t)src * g->lat_frame_bytes, lb);
	*ch = egr_chunk{slot, dst, first, n, first, n, 0, in};
	return 0;
}

/* submit ch (chunk c), or with naive decode it at once and publish it here.  0 or the error. */
static inline int chunk_decode(void *be, const struct egr_chunk *ch, uint32_t c, int naive, egr_publish_fn publish,
			struct slot_harness *h)
{
	char err[512];
	int rc;

	if (naive) {
		rc = egr_naive_cuda_decode(be, ch, err, sizeof(err));
		CHECK(rc == 0, "egr_naive_cuda_decode(chunk %u): %d %s", c, rc, err);
		if (!rc)
			publish(h, ch->slot, ch->first_frame, ch->nframes, (uint64_t)ch->nframes * h->frame_bytes);
	} else {
		rc = egr_backend_cuda.submit(be, ch, err, sizeof(err));
		CHECK(rc == 0, "submit(chunk %u): %d %s", c, rc, err);
	}
	return rc;
}

/* ---- jobs ---- */
static inline void geom_init(struct egr_job_geom *g, uint32_t decoder, uint32_t format, uint32_t dtype, uint32_t channels,
		      uint32_t lh, uint32_t lw, uint32_t frames, uint32_t chunk)
{
	g->format = format;
	g->decoder = decoder;
	g->dtype = dtype;
	g->frames = frames;
	g->channels = channels;
	g->lat_h = lh;
	g->lat_w = lw;
	g->width = lw * 8;
	g->height = lh * 8;
	g->chunk_frames = chunk;
	g->lat_frame_bytes = (uint64_t)channels * lh * lw * dtype;
	g->frame_bytes = egr_frame_bytes(format, g->width, g->height);
}

/*
 * v as element i of lat in dtype; returns the value stored, which is what
 * the GPU reads (f16: rounded to nearest even, widened back exactly).
 */
static inline float latent_store(void *lat, size_t i, uint32_t dtype, float v)
{
	if (dtype == EGR_DT_F16) {
		uint16_t hv = egr_half_from_float(v);
		((uint16_t *)lat)[i] = hv;
		return egr_half_to_float(hv);
	}
	((float *)lat)[i] = v;
	return v;
}

static inline const char *fmt_name(uint32_t f)
{
	return f == EGR_FMT_Y4M ? "y4m" : "png";
}

#endif
