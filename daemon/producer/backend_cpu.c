/*
 * backend_cpu: the reference backend.  Decodes synchronously in the
 * producer process, frame by frame, straight into the ring slot, and
 * publishes before submit returns.  Its frames define what every other
 * backend must produce (frame.h).  The stateful video decoders (taehv,
 * wan_vae) run through cpu_video.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/job.h"
#include "daemon/producer/backend.h"
#include "daemon/base/log.h"
#include "daemon/formats/npy.h"
#include "daemon/decode/taesd.h"
#include "daemon/producer/cpu_video.h"

struct cpu_be {
	struct egr_backend_env env;
	struct egr_job_geom g;
	void *in;		/* raw latents of one chunk */
	size_t in_cap;
	float *lat;		/* one frame as float32 */
	uint8_t *rgb;		/* one RGB24 frame (y4m path) */
	uint64_t decode_ns;
	struct egr_taesd *taesd;
	char taesd_path[EGR_PATH_MAX + 128];	/* weights key: path and identity */
	float *planar;		/* TAESD output [3][h][w] */
	struct egr_cpu_video *video;	/* decoder = taehv, wan_vae */
};

static int cpu_open(const struct egr_backend_env *env, void **out, char *err, size_t errlen)
{
	struct cpu_be *b = calloc(1, sizeof(*b));

	if (!b) {
		egr_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->env = *env;
	*out = b;
	return 0;
}

static int cpu_job_begin(void *be, const struct egr_job_geom *g, char *err, size_t errlen)
{
	struct cpu_be *b = be;
	size_t plane = (size_t)g->channels * g->lat_h * g->lat_w;

	b->g = *g;
	b->decode_ns = 0;
	free(b->lat);
	free(b->rgb);
	b->lat = malloc(plane * sizeof(float));
	b->rgb = malloc((size_t)g->width * g->height * 3);
	if (!b->lat || !b->rgb) {
		egr_errf(err, errlen, "out of memory for a %ux%u frame", g->width, g->height);
		return -ENOMEM;
	}
	if (egr_decoder_stateful(g->decoder))
		return egr_cpu_video_begin(b->video, g, err, errlen);
	if (g->decoder == EGR_DEC_TAESD) {
		int rc;
		const char *key = g->weights_key ? g->weights_key : g->weights;	/* tests may give no key */

		if (!b->taesd || strcmp(b->taesd_path, key) != 0) {
			egr_taesd_free(b->taesd);
			b->taesd = NULL;
			rc = egr_taesd_load(g->weights, &b->taesd, err, errlen);
			if (rc)
				return rc;
			snprintf(b->taesd_path, sizeof(b->taesd_path), "%s", key);
		}
		if (egr_taesd_channels(b->taesd) != g->channels) {
			egr_errf(err, errlen, "weights \"%s\" decode %u-channel latents; the latents have %u channels",
				 g->weights, egr_taesd_channels(b->taesd), g->channels);
			return -EINVAL;
		}
		free(b->planar);
		b->planar = malloc((size_t)g->width * g->height * 3 * sizeof(float));
		if (!b->planar) {
			egr_errf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static void *cpu_input_buffer(void *be, size_t bytes, char *err, size_t errlen)
{
	struct cpu_be *b = be;

	if (bytes > b->in_cap) {
		void *n = realloc(b->in, bytes);
		if (!n) {
			egr_errf(err, errlen, "out of memory for %zu bytes of latents", bytes);
			return NULL;
		}
		b->in = n;
		b->in_cap = bytes;
	}
	return b->in;
}

static int decode_frame(struct cpu_be *b, uint8_t *rgb, char *err, size_t errlen)
{
	const struct egr_job_geom *g = &b->g;

	if (g->decoder == EGR_DEC_LATENT2RGB) {
		if (egr_frame_l2r(&g->l2r, b->lat, g->lat_h, g->lat_w, rgb) < 0) {
			egr_errf(err, errlen, "out of memory decoding a frame");
			return -ENOMEM;
		}
		return 0;
	}
	int rc = egr_taesd_decode_cpu(b->taesd, b->lat, g->lat_h, g->lat_w, b->planar, err, errlen);
	if (rc)
		return rc;
	egr_taesd_to_rgb24(b->planar, g->height, g->width, rgb);
	return 0;
}

/* Latent frame f of chunk c into b->lat as float32. */
static void load_latent(struct cpu_be *b, const struct egr_chunk *c, uint32_t f)
{
	const struct egr_job_geom *g = &b->g;
	size_t nel = (size_t)g->channels * g->lat_h * g->lat_w;
	const char *src = (const char *)c->latents + f * g->lat_frame_bytes;

	if (g->dtype == EGR_DT_F32) {
		memcpy(b->lat, src, nel * sizeof(float));
	} else {
		const uint16_t *h = (const uint16_t *)src;
		for (size_t i = 0; i < nel; i++)
			b->lat[i] = egr_half_to_float(h[i]);
	}
}

/* RGB24 frame into its place in the slot: as is (png) or as I420 (y4m) */
static void store_frame(const struct egr_job_geom *g, const uint8_t *rgb, uint8_t *dst)
{
	if (g->format == EGR_FMT_Y4M)
		egr_frame_rgb_to_i420(rgb, g->width, g->height, dst);
	else
		memcpy(dst, rgb, g->frame_bytes);
}

/* A video decoder's frames of one chunk, checked against the chunk's planned output frames. */
struct video_sink {
	struct cpu_be *b;
	const struct egr_chunk *c;
	uint32_t n;		/* frames of the chunk emitted */
};

static int video_emit(void *ctx, uint64_t index, const uint8_t *rgb24, char *err, size_t errlen)
{
	struct video_sink *k = ctx;
	const struct egr_chunk *c = k->c;

	if (index != (uint64_t)c->first_frame + k->n || k->n >= c->nframes) {
		egr_errf(err, errlen, "decoder = %s made frame %llu while decoding latent frames %u-%u, planned to make frames %u-%u",
			 egr_job_decoder_name(k->b->g.decoder), (unsigned long long)index, c->lat_first,
			 c->lat_first + c->lat_n - 1, c->first_frame, c->first_frame + c->nframes - 1);
		return -EIO;
	}
	if (!c->replay)
		store_frame(&k->b->g, rgb24, (uint8_t *)c->dst + (size_t)k->n * k->b->g.frame_bytes);
	k->n++;
	return 0;
}

/* decoder = taehv, wan_vae: feed the chunk's latent frames in order; publish unless replaying */
static int submit_video(struct cpu_be *b, const struct egr_chunk *c, char *err, size_t errlen)
{
	const struct egr_job_geom *g = &b->g;
	struct video_sink k = { .b = b, .c = c };

	for (uint32_t f = 0; f < c->lat_n; f++) {
		int last = c->lat_first + f + 1 == g->lat_frames;
		int rc;

		load_latent(b, c, f);
		rc = egr_cpu_video_feed(b->video, b->lat, last, video_emit, &k, err, errlen);
		if (rc)
			return rc;
	}
	if (k.n != c->nframes) {
		egr_errf(err, errlen, "decoder = %s made %u frames of latent frames %u-%u, planned %u",
			 egr_job_decoder_name(g->decoder), k.n, c->lat_first, c->lat_first + c->lat_n - 1, c->nframes);
		return -EIO;
	}
	return 0;
}

static int cpu_submit(void *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cpu_be *b = be;
	const struct egr_job_geom *g = &b->g;
	uint64_t t0 = egr_log_now_ns();

	if (egr_decoder_stateful(g->decoder)) {
		int rc = submit_video(b, c, err, errlen);

		b->decode_ns += egr_log_now_ns() - t0;
		if (!rc && !c->replay)
			b->env.publish(b->env.ctx, c->slot, c->first_frame, c->nframes, c->nframes * g->frame_bytes);
		return rc;
	}
	for (uint32_t f = 0; f < c->nframes; f++) {
		uint8_t *dst = (uint8_t *)c->dst + f * g->frame_bytes;
		int rc;

		load_latent(b, c, f);
		if (g->format == EGR_FMT_Y4M) {
			rc = decode_frame(b, b->rgb, err, errlen);
			if (rc)
				return rc;
			egr_frame_rgb_to_i420(b->rgb, g->width, g->height, dst);
		} else {
			rc = decode_frame(b, dst, err, errlen);
			if (rc)
				return rc;
		}
	}
	b->decode_ns += egr_log_now_ns() - t0;
	b->env.publish(b->env.ctx, c->slot, c->first_frame, c->nframes, c->nframes * g->frame_bytes);
	return 0;
}

static int cpu_job_end(void *be, int abort, struct egr_backend_stats *st, char *err, size_t errlen)
{
	struct cpu_be *b = be;

	memset(st, 0, sizeof(*st));
	st->decode_ns = b->decode_ns;
	egr_cpu_video_end(b->video);	/* a stateful decoder's job state, done or not */
	return 0;
}

static int cpu_probe(void *be, struct egr_job_geom *g, char *err, size_t errlen)
{
	struct cpu_be *b = be;

	return egr_cpu_video_probe(&b->video, g, err, errlen);
}

static void cpu_close(void *be)
{
	struct cpu_be *b = be;

	if (!b)
		return;
	free(b->in);
	free(b->lat);
	free(b->rgb);
	egr_taesd_free(b->taesd);
	free(b->planar);
	egr_cpu_video_free(b->video);
	free(b);
}

const struct egr_backend_ops egr_backend_cpu = {
	.name = "cpu",
	.open = cpu_open,
	.job_begin = cpu_job_begin,
	.input_buffer = cpu_input_buffer,
	.submit = cpu_submit,
	.job_end = cpu_job_end,
	.close = cpu_close,
	.probe = cpu_probe,
};
