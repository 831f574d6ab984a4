/*
 * cuda_video: the CUDA backend's stateful video decoders (backend.h,
 * "Stateful decoders"): decoder = wan_vae (wanvae_cuda.h) and decoder =
 * taehv (taehv_cuda.h) on the GPU.  The
 * weights are loaded and checked by cpu_video (the same probe, the same
 * geometry, the same errors as the cpu backend), then uploaded once and
 * kept while the job's weights stay the same.
 *
 * Per job: probe, begin (the GPU stream; the Wan VAE's is warmed up once
 * per geometry so its first chunk runs at speed), feed each chunk's latents
 * (device memory) in order, end.  0 or -errno with err set.
 */
#ifndef EGR_CUDA_VIDEO_H
#define EGR_CUDA_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/producer/backend.h"

struct egr_cuda_video;
struct CUstream_st;

int egr_cuda_video_probe(struct egr_cuda_video **v, struct egr_job_geom *g, struct CUstream_st *stream, char *err,
			 size_t errlen);
int egr_cuda_video_begin(struct egr_cuda_video *v, const struct egr_job_geom *g, char *err, size_t errlen);

/*
 * Decode n latent frames d_lat (device) into d_out (device), in g's format;
 * the frames they complete must be exactly `frames` (the producer's plan).
 * Asynchronous on the probe's stream.
 */
int egr_cuda_video_feed(struct egr_cuda_video *v, const void *d_lat, uint32_t n, void *d_out, uint32_t frames,
			char *err, size_t errlen);
void egr_cuda_video_end(struct egr_cuda_video *v);
void egr_cuda_video_free(struct egr_cuda_video *v);

#endif
