/*
 * cpu_video: TAEHV and the Wan VAE as the CPU backend's stateful decoders
 * (cpu_video.h).  Both streams emit every frame within the feed that
 * completes it, so latent frame b's frames are known in advance: the first
 * latent frame gives time_up - time_trim, each later one time_up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/job.h"
#include "daemon/base/log.h"
#include "daemon/decode/taehv.h"
#include "daemon/decode/taesd.h"
#include "daemon/decode/wanvae.h"
#include "daemon/producer/cpu_video.h"

struct egr_cpu_video {
	/* the network, kept across jobs */
	char key[EGR_PATH_MAX + 192];	/* decoder, model, weights identity */
	uint32_t decoder;
	struct egr_taehv *taehv;
	struct egr_wanvae *wan;
	/* the job */
	struct egr_taehv_stream *ts;
	struct egr_wanvae_stream *ws;
	uint32_t channels, h, w;	/* output size */
	size_t lat_hw;
	uint64_t emitted, frames;
	float *wout;		/* wan_vae: the frames of one latent frame, [n][3][h][w] */
	uint8_t *rgb;		/* one RGB24 frame */
	int denorm;
	float mean[EGR_WANVAE_MAX_Z], std[EGR_WANVAE_MAX_Z];
	/* the feed in progress */
	egr_cpu_video_emit_fn emit;
	void *ctx;
	char cb_err[EGR_PATH_MAX];	/* the emit callback's reason, over the stream's generic one */
};

static void net_free(struct egr_cpu_video *v)
{
	egr_cpu_video_end(v);
	egr_taehv_free(v->taehv);
	egr_wanvae_free(v->wan);
	v->taehv = NULL;
	v->wan = NULL;
	v->key[0] = 0;
}

static int net_load(struct egr_cpu_video *v, const struct egr_job_geom *g, const char *key, char *err,
		    size_t errlen)
{
	int rc;

	net_free(v);
	if (g->decoder == EGR_DEC_TAEHV) {
		if ((rc = egr_taehv_load(g->weights, g->taehv_model, &v->taehv, err, errlen)))
			return rc;
		if (v->taehv->encoder_tensors)
			egr_info("weights %s: TAEHV %s decoder; %u encoder.* tensors skipped", key,
				 egr_taehv_model_name(g->taehv_model), v->taehv->encoder_tensors);
	} else {
		if ((rc = egr_wanvae_load(g->weights, &v->wan, err, errlen)))
			return rc;
		if (v->wan->skipped_tensors)
			egr_info("weights %s: Wan VAE decoder; %u encoder tensors skipped", key,
				 v->wan->skipped_tensors);
	}
	v->decoder = g->decoder;
	snprintf(v->key, sizeof(v->key), "%s", key);
	return 0;
}

/* Output size and the frame rule of the loaded network for g's latents. */
static int net_geometry(struct egr_cpu_video *v, struct egr_job_geom *g, char *err, size_t errlen)
{
	uint32_t C, T = g->lat_frames;
	uint64_t frames;

	if (v->taehv) {
		C = v->taehv->channels;
		egr_taehv_out_size(v->taehv, g->lat_h, g->lat_w, &g->height, &g->width);
		frames = egr_taehv_out_frames(v->taehv, T);
		g->time_up = v->taehv->t_upscale;
	} else {
		C = v->wan->cfg.z_dim;
		g->height = g->lat_h * v->wan->scale;
		g->width = g->lat_w * v->wan->scale;
		frames = egr_wanvae_out_frames(v->wan, T);
		g->time_up = v->wan->time_factor;
	}
	if (C != g->channels) {
		egr_errf(err, errlen, "weights \"%s\" decode %u-channel latents; the latents have %u channels",
			 g->weights, C, g->channels);
		return -EINVAL;
	}
	/* the rule the producer plans by: frames = T * time_up - trim, trim < time_up */
	if (!T || frames > (uint64_t)T * g->time_up || (uint64_t)T * g->time_up - frames >= g->time_up ||
	    frames > UINT32_MAX) {
		egr_errf(err, errlen, "decoder = %s: %u latent frames make %llu frames, which fits no plan",
			 egr_job_decoder_name(g->decoder), T, (unsigned long long)frames);
		return -EINVAL;
	}
	g->time_trim = (uint32_t)((uint64_t)T * g->time_up - frames);
	g->frames = (uint32_t)frames;
	return 0;
}

int egr_cpu_video_probe(struct egr_cpu_video **vp, struct egr_job_geom *g, char *err, size_t errlen)
{
	char key[sizeof((*vp)->key)];
	int rc;

	if (!*vp && !(*vp = calloc(1, sizeof(**vp)))) {
		egr_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!g->weights || !*g->weights) {
		egr_errf(err, errlen, "decoder = %s needs a weights file (job key weights)",
			 egr_job_decoder_name(g->decoder));
		return -EINVAL;
	}
	/* callers that fill the geometry by hand (tests) may leave the key out: the path is the key then */
	snprintf(key, sizeof(key), "%s %u %s", egr_job_decoder_name(g->decoder),
		 g->decoder == EGR_DEC_TAEHV ? g->taehv_model : 0, g->weights_key ? g->weights_key : g->weights);
	if (strcmp(key, (*vp)->key) != 0 && (rc = net_load(*vp, g, key, err, errlen)))
		return rc;
	return net_geometry(*vp, g, err, errlen);
}

/* cpu_video.h */
int egr_cpu_video_wan_stats(const struct egr_job_geom *g, float *mean, float *std, int *denorm, char *err,
			    size_t errlen)
{
	const float *m, *sd;
	uint32_t C = g->channels;

	*denorm = g->wan_denormalize != 0;
	if (!*denorm)
		return 0;
	if (g->vae_config && *g->vae_config)
		return egr_wanvae_config_stats(g->vae_config, C, mean, std, err, errlen);
	if (egr_wanvae_builtin_stats(C, &m, &sd) < 0) {
		egr_errf(err, errlen, "wan_denormalize = yes: no built-in latents_mean / latents_std for %u-channel latents (16: Wan 2.1, 48: Wan 2.2 5B); give vae_config = /path/to/vae/config.json",
			 C);
		return -EINVAL;
	}
	memcpy(mean, m, C * sizeof(float));
	memcpy(std, sd, C * sizeof(float));
	return 0;
}

static int wan_stats(struct egr_cpu_video *v, const struct egr_job_geom *g, char *err, size_t errlen)
{
	return egr_cpu_video_wan_stats(g, v->mean, v->std, &v->denorm, err, errlen);
}

const struct egr_wanvae *egr_cpu_video_wan(const struct egr_cpu_video *v)
{
	return v ? v->wan : NULL;
}

const struct egr_taehv *egr_cpu_video_taehv(const struct egr_cpu_video *v)
{
	return v ? v->taehv : NULL;
}

int egr_cpu_video_begin(struct egr_cpu_video *v, const struct egr_job_geom *g, char *err, size_t errlen)
{
	size_t plane = (size_t)g->width * g->height;
	int rc;

	if (!v || (!v->taehv && !v->wan)) {
		egr_errf(err, errlen, "decoder = %s: the job was not probed", egr_job_decoder_name(g->decoder));
		return -EINVAL;
	}
	egr_cpu_video_end(v);
	v->channels = g->channels;
	v->h = g->height;
	v->w = g->width;
	v->lat_hw = (size_t)g->lat_h * g->lat_w;
	v->frames = g->frames;
	v->emitted = 0;
	if (v->taehv) {
		rc = egr_taehv_stream_create(v->taehv, g->lat_h, g->lat_w, g->lat_frames, &v->ts, err, errlen);
	} else {
		rc = wan_stats(v, g, err, errlen);
		if (!rc)
			rc = egr_wanvae_stream_create(v->wan, g->lat_h, g->lat_w, &v->ws, err, errlen);
		if (!rc && !(v->wout = malloc(plane * 3 * v->wan->time_factor * sizeof(float))))
			rc = -ENOMEM;
	}
	if (!rc && !(v->rgb = malloc(plane * 3)))
		rc = -ENOMEM;
	if (rc == -ENOMEM)
		egr_errf(err, errlen, "out of memory for the %s stream of %ux%u frames",
			 egr_job_decoder_name(g->decoder), g->width, g->height);
	if (rc)
		egr_cpu_video_end(v);
	return rc;
}

static int emit_rgb(struct egr_cpu_video *v)
{
	int rc = v->emit(v->ctx, v->emitted, v->rgb, v->cb_err, sizeof(v->cb_err));

	if (rc == 0)
		v->emitted++;
	return rc;
}

/* taehv's callback: planar [0, 1] to RGB24, then the caller's */
static int taehv_emit(void *ctx, uint64_t index, const float *rgb, uint32_t out_h, uint32_t out_w)
{
	struct egr_cpu_video *v = ctx;

	if (index != v->emitted || out_h != v->h || out_w != v->w) {
		snprintf(v->cb_err, sizeof(v->cb_err), "taehv: frame %llu (%ux%u) out of order (expected %llu, %ux%u)",
			 (unsigned long long)index, out_w, out_h, (unsigned long long)v->emitted, v->w, v->h);
		return -EIO;
	}
	egr_taesd_to_rgb24(rgb, out_h, out_w, v->rgb);
	return emit_rgb(v);
}

static int feed_taehv(struct egr_cpu_video *v, const float *lat, int last, char *err, size_t errlen)
{
	int rc = egr_taehv_stream_feed(v->ts, lat, 1, taehv_emit, v, NULL, err, errlen);

	if (!rc && last)
		rc = egr_taehv_stream_flush(v->ts, taehv_emit, v, NULL, err, errlen);
	return rc;
}

static int feed_wan(struct egr_cpu_video *v, float *lat, int last, char *err, size_t errlen)
{
	size_t fsize = (size_t)3 * v->h * v->w;
	uint32_t nout = 0;
	int rc;

	if (v->denorm)
		egr_wanvae_denormalize(lat, 1, v->channels, v->lat_hw, v->mean, v->std);
	if ((rc = egr_wanvae_stream_feed(v->ws, lat, 1, v->wout, &nout, err, errlen)))
		return rc;
	for (uint32_t i = 0; i < nout && !rc; i++) {
		egr_wanvae_to_rgb24(v->wout + i * fsize, v->h, v->w, v->rgb);
		rc = emit_rgb(v);
	}
	if (!rc && last && (rc = egr_wanvae_stream_flush(v->ws, &nout)) == 0 && nout) {
		egr_errf(err, errlen, "wan_vae: %u frames still pending at the end of the video", nout);
		rc = -EIO;
	}
	return rc;
}

int egr_cpu_video_feed(struct egr_cpu_video *v, float *lat, int last, egr_cpu_video_emit_fn emit, void *ctx,
		       char *err, size_t errlen)
{
	int rc;

	if (!v->ts && !v->ws) {
		egr_errf(err, errlen, "video decoder: feed outside a job");
		return -EINVAL;
	}
	v->emit = emit;
	v->ctx = ctx;
	v->cb_err[0] = 0;
	rc = v->ts ? feed_taehv(v, lat, last, err, errlen) : feed_wan(v, lat, last, err, errlen);
	if (rc && v->cb_err[0])
		egr_errf(err, errlen, "%s", v->cb_err);
	if (!rc && last && v->emitted != v->frames) {
		egr_errf(err, errlen, "%s: %llu frames decoded, %llu planned", v->ts ? "taehv" : "wan_vae",
			 (unsigned long long)v->emitted, (unsigned long long)v->frames);
		rc = -EIO;
	}
	return rc;
}

void egr_cpu_video_end(struct egr_cpu_video *v)
{
	if (!v)
		return;
	egr_taehv_stream_free(v->ts);
	egr_wanvae_stream_free(v->ws);
	v->ts = NULL;
	v->ws = NULL;
	free(v->wout);
	free(v->rgb);
	v->wout = NULL;
	v->rgb = NULL;
}

void egr_cpu_video_free(struct egr_cpu_video *v)
{
	if (!v)
		return;
	net_free(v);
	free(v);
}
