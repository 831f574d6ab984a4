/*
 * backend_cpu: the reference backend.  Decodes synchronously in the
 * producer process, frame by frame, straight into the ring slot, and
 * publishes before submit returns.  Its frames define what every other
 * backend must produce (frame.h).
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

static int cpu_submit(void *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cpu_be *b = be;
	const struct egr_job_geom *g = &b->g;
	size_t nel = (size_t)g->channels * g->lat_h * g->lat_w;
	uint64_t t0 = egr_log_now_ns();

	for (uint32_t f = 0; f < c->nframes; f++) {
		const char *src = (const char *)c->latents + f * g->lat_frame_bytes;
		uint8_t *dst = (uint8_t *)c->dst + f * g->frame_bytes;
		int rc;

		if (g->dtype == EGR_DT_F32) {
			memcpy(b->lat, src, nel * sizeof(float));
		} else {
			const uint16_t *h = (const uint16_t *)src;
			for (size_t i = 0; i < nel; i++)
				b->lat[i] = egr_half_to_float(h[i]);
		}
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
	return 0;
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
};
