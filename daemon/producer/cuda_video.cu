/*
 * cuda_video: the CUDA backend's stateful decoders (cuda_video.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

extern "C" {
#include "daemon/base/log.h"
#include "daemon/base/vocab.h"
#include "daemon/producer/cpu_video.h"
}
#include "daemon/decode/taehv.h"
#include "daemon/decode/taehv_cuda.h"
#include "daemon/decode/wanvae.h"
#include "daemon/decode/wanvae_cuda.h"
#include "daemon/producer/cuda_video.h"

struct egr_cuda_video {
	struct egr_cpu_video *cpu;	/* loads and checks the weights, keeps the net */
	char key[4096 + 64];		/* the weights the GPU copy was made from */
	struct CUstream_st *stream;
	struct egr_wanvae_gpu *wan;	/* decoder = wan_vae */
	struct egr_wanvae_gpu_stream *ws;
	struct egr_taehv_gpu *taehv;	/* decoder = taehv */
	struct egr_taehv_gpu_stream *ts;
	uint32_t warm_h, warm_w, warm_chunk, dtype, format;
};

static void cv_drop_gpu(struct egr_cuda_video *v)
{
	egr_cuda_video_end(v);
	egr_wanvae_gpu_destroy(v->wan);
	egr_taehv_gpu_destroy(v->taehv);
	v->wan = NULL;
	v->taehv = NULL;
	v->key[0] = 0;
	v->warm_h = v->warm_w = v->warm_chunk = 0;
}

int egr_cuda_video_probe(struct egr_cuda_video **vp, struct egr_job_geom *g, struct CUstream_st *stream, char *err,
			 size_t errlen)
{
	struct egr_cuda_video *v = *vp;
	int rc;

	if (!v && !(v = *vp = (struct egr_cuda_video *)calloc(1, sizeof(*v)))) {
		egr_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->stream = stream;
	if ((rc = egr_cpu_video_probe(&v->cpu, g, err, errlen)) < 0)
		return rc;
	char key[sizeof(v->key)];
	snprintf(key, sizeof(key), "%u %u %s", g->decoder, g->decoder == EGR_DEC_TAEHV ? g->taehv_model : 0,
		 g->weights_key ? g->weights_key : g->weights);
	if ((v->wan || v->taehv) && strcmp(key, v->key) == 0)
		return 0;
	cv_drop_gpu(v);
	if (g->decoder == EGR_DEC_WAN_VAE) {
		const struct egr_wanvae *net = egr_cpu_video_wan(v->cpu);
		if ((rc = egr_wanvae_gpu_create(net, stream, &v->wan, err, errlen)) < 0)
			return rc;
		egr_info("wan vae decoder on the GPU: %u latent channels, %u weights uploaded as bf16", net->cfg.z_dim,
			 net->nparams);
	} else {
		if ((rc = egr_taehv_gpu_create(egr_cpu_video_taehv(v->cpu), stream, &v->taehv, err, errlen)) < 0)
			return rc;
		egr_info("taehv decoder (%s) on the GPU, weights uploaded as bf16", egr_taehv_model_name(g->taehv_model));
	}
	snprintf(v->key, sizeof(v->key), "%s", key);
	return 0;
}

int egr_cuda_video_begin(struct egr_cuda_video *v, const struct egr_job_geom *g, char *err, size_t errlen)
{
	float mean[EGR_WANVAE_MAX_Z], std[EGR_WANVAE_MAX_Z];
	int denorm = 0, rc;

	if (!v || (!v->wan && !v->taehv)) {
		egr_errf(err, errlen, "decoder = %s: the job was not probed", egr_job_decoder_name(g->decoder));
		return -EINVAL;
	}
	egr_cuda_video_end(v);
	v->dtype = g->dtype;
	v->format = g->format;
	if (v->taehv)	/* cuDNN's heuristics are instant: nothing to warm up */
		return egr_taehv_gpu_stream_create(v->taehv, g->lat_h, g->lat_w, g->lat_frames, g->chunk_frames, &v->ts,
						   err, errlen);
	if ((rc = egr_cpu_video_wan_stats(g, mean, std, &denorm, err, errlen)) < 0 ||
	    (rc = egr_wanvae_gpu_stream_create(v->wan, g->lat_h, g->lat_w, g->chunk_frames, denorm ? mean : NULL,
					       denorm ? std : NULL, &v->ws, err, errlen)) < 0)
		return rc;
	if (v->warm_h == g->lat_h && v->warm_w == g->lat_w && v->warm_chunk == g->chunk_frames)
		return 0;
	uint32_t batch;
	size_t bytes = egr_wanvae_gpu_stream_bytes(v->ws, &batch);
	unsigned long long t0 = egr_log_now_ns();
	if ((rc = egr_wanvae_gpu_stream_warm_up(v->ws, err, errlen)) < 0)
		return rc;
	v->warm_h = g->lat_h, v->warm_w = g->lat_w, v->warm_chunk = g->chunk_frames;
	egr_info("wan vae %ux%u: batches of %u latent frames, %.2f GiB of device workspace, warmed up in %.0f ms (%llu conv shapes so far)",
		 g->width, g->height, batch, bytes / 1073741824.0, (egr_log_now_ns() - t0) / 1e6,
		 (unsigned long long)egr_wanvae_gpu_searches(v->wan));
	return 0;
}

int egr_cuda_video_feed(struct egr_cuda_video *v, const void *d_lat, uint32_t n, void *d_out, uint32_t frames,
			char *err, size_t errlen)
{
	uint32_t got = 0;
	int rc;

	if (!v->ws && !v->ts) {
		egr_errf(err, errlen, "video decoder: feed outside a job");
		return -EINVAL;
	}
	const uint32_t expect = v->ws ? egr_wanvae_gpu_stream_out_frames(v->ws, n) : egr_taehv_gpu_stream_out_frames(v->ts, n);
	if (expect != frames) {
		egr_errf(err, errlen, "%s: %u latent frames make %u frames here, the plan says %u",
			 v->ws ? "wan vae" : "taehv", n, expect, frames);
		return -EINVAL;
	}
	if (v->ws)
		rc = egr_wanvae_gpu_feed(v->ws, d_lat, v->dtype, n, v->format, d_out, &got, err, errlen);
	else
		rc = egr_taehv_gpu_feed(v->ts, d_lat, v->dtype, n, v->format, d_out, &got, err, errlen);
	return rc < 0 ? rc : 0;
}

void egr_cuda_video_end(struct egr_cuda_video *v)
{
	if (!v)
		return;
	egr_wanvae_gpu_stream_free(v->ws);
	egr_taehv_gpu_stream_free(v->ts);
	v->ws = NULL;
	v->ts = NULL;
}

void egr_cuda_video_free(struct egr_cuda_video *v)
{
	if (!v)
		return;
	cv_drop_gpu(v);
	egr_cpu_video_free(v->cpu);
	free(v);
}
