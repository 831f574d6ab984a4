/*
 * test_cpu_video: the stateful decoder interface (backend.h) on the cpu
 * backend, without the daemon.
 *  - egr_layout_chunk: latent chunks map to contiguous output frame ranges
 *    (Wan rule 4/3, TAEHV cogvideox-even 4/0, per-frame 1/0 and 0/0), the
 *    first chunk short by the trim, the last one cut at the job's end;
 *  - probe fills the geometry (taehv wan21: 16x16 of 2x2, 5 -> 17 frames;
 *    wan_vae dim 4: 5 -> 17) and refuses weights of another channel count;
 *  - a job decoded chunk by chunk publishes every frame once, at the planned
 *    offsets; a run that replays its first chunks (as a resumed job does)
 *    publishes the remaining chunks with the same bytes (taehv to y4m,
 *    wan_vae to png);
 *  - a chunk whose planned frames disagree with the decoder's fails the
 *    job, named; job_end after a failure frees the stream and the next job
 *    runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/job.h"
#include "daemon/decode/frame.h"
#include "daemon/decode/taehv.h"
#include "daemon/decode/wanvae.h"
#include "daemon/formats/safetensors.h"
#include "daemon/producer/backend.h"
#include "shm/ring.h"

#include "helpers.h"

static void test_layout_chunks(void)
{
	static const struct {
		uint32_t lat, up, trim, chunk, frames;
	} cases[] = {
		{ 16, 4, 3, 3, 61 }, { 16, 4, 3, 1, 61 }, { 16, 4, 3, 16, 61 }, { 6, 4, 0, 4, 24 },
		{ 10, 1, 0, 3, 10 }, { 10, 0, 0, 4, 10 }, { 1, 8, 7, 5, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct egr_job_layout l = { .frames = cases[i].frames, .lat_frames = cases[i].lat,
					    .time_up = cases[i].up, .time_trim = cases[i].trim,
					    .chunk_frames = cases[i].chunk };
		uint32_t chunks = (cases[i].lat + cases[i].chunk - 1) / cases[i].chunk, next = 0, lat_next = 0;

		if (!cases[i].up)
			l.lat_frames = 0;	/* a per-frame layout from before these fields */
		for (uint32_t c = 0; c < chunks; c++) {
			uint32_t lf, ln, f, n, up = cases[i].up ? cases[i].up : 1;

			egr_layout_chunk(&l, c, &lf, &ln, &f, &n);
			CHECK(lf == lat_next && ln >= 1 && f == next && n >= 1, "case %zu chunk %u: lat %u+%u frames %u+%u",
			      i, c, lf, ln, f, n);
			CHECK(n == (c ? ln * up : ln * up - cases[i].trim), "case %zu chunk %u: %u frames of %u latent", i,
			      c, n, ln);
			next = f + n;
			lat_next = lf + ln;
		}
		CHECK(next == cases[i].frames && lat_next == cases[i].lat, "case %zu: covered %u frames, %u latent", i,
		      next, lat_next);
	}
}

/* What the backend published: frames by index, each once. */
struct sink {
	uint8_t *slots;		/* slot s at s * slot_bytes */
	size_t slot_bytes;
	uint8_t *frames;	/* the job's frames, by index */
	uint8_t *seen;
	uint64_t frame_bytes;
	uint32_t nframes, dup, bad;
};

/* the backend's publish callback copies into the current run's sink */
static struct sink *cur;
static uint32_t npublished;

static void on_publish(void *ctx, uint32_t slot, uint32_t first, uint32_t n, uint64_t bytes)
{
	struct sink *k = cur;

	npublished++;
	if (!k)
		return;
	if (first + n > k->nframes || bytes != n * k->frame_bytes) {
		k->bad++;
		return;
	}
	memcpy(k->frames + first * k->frame_bytes, k->slots + slot * k->slot_bytes, bytes);
	for (uint32_t f = first; f < first + n; f++)
		k->dup += k->seen[f]++ != 0;
}

struct job {
	uint32_t decoder, format, lat, C, h, w, chunk;
	const char *weights;
	float *latents;		/* [lat][C][h][w] */
};

/* probe + geometry of a job as plan.c fills it */
static int probe(const struct egr_backend_ops *ops, void *be, const struct job *jb, struct egr_job_geom *g,
		 char *err, size_t errlen)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->format = jb->format;
	g->decoder = jb->decoder;
	g->dtype = EGR_DT_F32;
	g->lat_frames = jb->lat;
	g->channels = jb->C;
	g->lat_h = jb->h;
	g->lat_w = jb->w;
	g->lat_frame_bytes = (uint64_t)jb->C * jb->h * jb->w * sizeof(float);
	g->weights = jb->weights;
	g->taehv_model = EGR_TAEHV_WAN21;
	if ((rc = ops->probe(be, g, err, errlen)))
		return rc;
	g->chunk_frames = jb->chunk;
	g->frame_bytes = egr_frame_bytes(jb->format, g->width, g->height);
	return 0;
}

/*
 * Run jb through the backend: chunks < replay_upto replayed, the others
 * published into k.  0 or the first error (err set).
 */
static int run(const struct egr_backend_ops *ops, void *be, const struct job *jb, uint32_t replay_upto,
	       struct sink *k, char *err, size_t errlen)
{
	struct egr_backend_stats st;
	struct egr_job_geom g;
	struct egr_job_layout l = { 0 };
	int rc = probe(ops, be, jb, &g, err, errlen);

	if (rc)
		return rc;
	l.frames = g.frames;
	l.lat_frames = g.lat_frames;
	l.time_up = g.time_up;
	l.time_trim = g.time_trim;
	l.chunk_frames = g.chunk_frames;
	k->frame_bytes = g.frame_bytes;
	k->nframes = g.frames;
	k->slot_bytes = (size_t)g.chunk_frames * g.time_up * g.frame_bytes;
	k->slots = calloc(2, k->slot_bytes);
	k->frames = calloc(g.frames, g.frame_bytes);
	k->seen = calloc(g.frames, 1);
	cur = k;
	if ((rc = ops->job_begin(be, &g, err, errlen)))
		return rc;
	for (uint32_t c = 0; c * g.chunk_frames < g.lat_frames && !rc; c++) {
		struct egr_chunk ck = { .slot = c & 1, .replay = c < replay_upto };

		egr_layout_chunk(&l, c, &ck.lat_first, &ck.lat_n, &ck.first_frame, &ck.nframes);
		ck.dst = ck.replay ? NULL : k->slots + ck.slot * k->slot_bytes;
		ck.latents = jb->latents + (size_t)ck.lat_first * jb->C * jb->h * jb->w;
		rc = ops->submit(be, &ck, err, errlen);
	}
	ops->job_end(be, rc != 0, &st, err, rc ? 0 : errlen);
	cur = NULL;
	return rc;
}

static void sink_free(struct sink *k)
{
	free(k->slots);
	free(k->frames);
	free(k->seen);
	memset(k, 0, sizeof(*k));
}

/* Whole run, then runs replaying 1 and 2 chunks: the published frames are the same bytes. */
static void check_replay(const struct egr_backend_ops *ops, void *be, const struct job *jb, const char *what,
			 uint32_t want_frames, uint32_t want_w)
{
	struct sink full = { 0 }, part = { 0 };
	char err[512] = "";
	int rc = run(ops, be, jb, 0, &full, err, sizeof(err));

	CHECK(rc == 0 && !full.dup && !full.bad, "%s: whole run: %d %s (dup %u, bad %u)", what, rc, err, full.dup,
	      full.bad);
	CHECK(full.nframes == want_frames && full.frame_bytes == egr_frame_bytes(jb->format, want_w, want_w),
	      "%s: %u frames of %llu bytes", what, full.nframes, (unsigned long long)full.frame_bytes);
	for (uint32_t i = 0; rc == 0 && i < full.nframes; i++)
		CHECK(full.seen[i] == 1, "%s: frame %u published %u times", what, i, full.seen[i]);
	for (uint32_t replay = 1; rc == 0 && replay <= 2; replay++) {
		uint32_t skip = replay * jb->chunk * 4 - 3;	/* frames of the replayed chunks */

		rc = run(ops, be, jb, replay, &part, err, sizeof(err));
		CHECK(rc == 0 && !part.dup && !part.bad, "%s: replay %u: %d %s", what, replay, rc, err);
		for (uint32_t i = 0; i < part.nframes; i++)
			CHECK(part.seen[i] == (i >= skip), "%s: replay %u: frame %u published %u times", what, replay,
			      i, part.seen[i]);
		CHECK(!memcmp(part.frames + skip * part.frame_bytes, full.frames + skip * full.frame_bytes,
			      (part.nframes - skip) * part.frame_bytes),
		      "%s: replay %u: the chunks published after it differ from the whole run's", what, replay);
		sink_free(&part);
	}
	sink_free(&full);
}

/* Plans the decoder disagrees with, and a model the weights contradict. */
static void check_errors(const struct egr_backend_ops *ops, void *be, const struct job *jb)
{
	struct egr_backend_stats st;
	struct egr_job_geom g;
	char err[512] = "";
	uint8_t *dst;
	int rc = probe(ops, be, jb, &g, err, sizeof(err));

	CHECK(rc == 0, "probe: %d %s", rc, err);
	dst = calloc(64, g.frame_bytes);
	if (rc || !dst || (rc = ops->job_begin(be, &g, err, sizeof(err)))) {
		CHECK(0, "job_begin: %d %s", rc, err);
		free(dst);
		return;
	}
	/* chunk 0 is 2 latent frames -> 5 frames; planned as 8 */
	struct egr_chunk ck = { .dst = dst, .lat_first = 0, .lat_n = 2, .first_frame = 0, .nframes = 8,
				.latents = jb->latents };
	npublished = 0;
	rc = ops->submit(be, &ck, err, sizeof(err));
	CHECK(rc == -EIO && strstr(err, "made 5 frames of latent frames 0-1, planned 8") && npublished == 0,
	      "short plan: %d '%s', %u published", rc, err, npublished);
	ops->job_end(be, 1, &st, err, 0);
	/* the next job starts clean: 3 frames planned for 2 latent frames, the third is refused as it comes */
	rc = ops->job_begin(be, &g, err, sizeof(err));
	ck.nframes = 3;
	if (!rc)
		rc = ops->submit(be, &ck, err, sizeof(err));
	CHECK(rc == -EIO && strstr(err, "made frame 3 while decoding latent frames 0-1, planned to make frames 0-2"),
	      "long plan: %d '%s'", rc, err);
	ops->job_end(be, 1, &st, err, 0);
	free(dst);

	struct job other = *jb;
	other.C = 48;
	rc = probe(ops, be, &other, &g, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "decode 16-channel latents; the latents have 48 channels"),
	      "channels: %d '%s'", rc, err);
}

int main(void)
{
	const struct egr_backend_ops *ops = &egr_backend_cpu;
	struct egr_backend_env env = { .publish = on_publish };
	struct egr_taehv_cfg tcfg;
	struct egr_wanvae_cfg wcfg;
	char dir[64], tw[128], ww[128], err[512];
	const int n = 5 * 16 * 2 * 2;
	float *lat = malloc(n * sizeof(float));
	void *be = NULL;

	test_layout_chunks();
	test_tmpdir(dir, sizeof(dir), "egr-test-cpu-video");
	snprintf(tw, sizeof(tw), "%s/taehv.safetensors", dir);
	snprintf(ww, sizeof(ww), "%s/wan.safetensors", dir);
	egr_taehv_cfg_init(&tcfg, EGR_TAEHV_WAN21);
	egr_wanvae_cfg_preset(&wcfg, "2.1");
	wcfg.dim = 4;
	CHECK(egr_taehv_write_random(tw, &tcfg, 11, EGR_ST_F32, 0, err, sizeof(err)) == 0, "taehv weights: %s", err);
	CHECK(egr_wanvae_write_random(ww, &wcfg, 12, EGR_ST_F32, err, sizeof(err)) == 0, "wan weights: %s", err);
	for (int i = 0; lat && i < n; i++)
		lat[i] = (float)((int)(rnd() % 2001) - 1000) / 500.0f;
	if (!lat || ops->open(&env, &be, err, sizeof(err)) != 0) {
		CHECK(0, "open: %s", err);
		return 1;
	}
	/* 5 latent frames of 16x2x2, chunks of 2: 5 + 8 + 4 frames */
	struct job tv = { EGR_DEC_TAEHV, EGR_FMT_Y4M, 5, 16, 2, 2, 2, tw, lat };
	struct job wv = { EGR_DEC_WAN_VAE, EGR_FMT_PNG, 5, 16, 2, 2, 2, ww, lat };

	check_replay(ops, be, &tv, "taehv y4m", 17, 16);
	check_replay(ops, be, &wv, "wan_vae png", 17, 16);
	check_errors(ops, be, &tv);
	check_errors(ops, be, &wv);
	ops->close(be);
	free(lat);
	test_rmtree(dir);
	return test_result("test_cpu_video");
}
