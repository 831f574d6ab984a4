/*
 * cpu_video: the CPU backend's stateful video decoders (decoder = taehv,
 * wan_vae) behind one interface (backend.h, "Stateful decoders"): the
 * network, loaded once and kept while the job's weights stay the same; one
 * job's stream (daemon/decode/taehv.h, wanvae.h: fp32, causal, the same
 * frames whatever the chunking); frames out as RGB24, quantised as TAESD's
 * (TAEHV: [0, 1] through egr_taesd_to_rgb24; Wan VAE: [-1, 1] through
 * egr_wanvae_to_rgb24).
 *
 * Usage per job: probe (geometry, loads the weights), begin (the stream),
 * feed each latent frame in order (the last with last = 1: flush and count
 * check), end.  Returns 0 or -errno with err naming what failed.
 */
#ifndef EGR_CPU_VIDEO_H
#define EGR_CPU_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/producer/backend.h"

struct egr_cpu_video;

/*
 * One output frame, RGB24 [h][w][3], valid during the call, with its index
 * among the job's output frames (0, 1, ... in order).  A negative return
 * (err set) stops the feed and is returned.
 */
typedef int (*egr_cpu_video_emit_fn)(void *ctx, uint64_t index, const uint8_t *rgb24, char *err, size_t errlen);

/*
 * Load g's decoder (g->weights for g->decoder, g->taehv_model), or keep *v's
 * when the weights key, decoder and model are the same, and fill g's output
 * geometry from lat_frames, lat_h, lat_w and channels: width, height, frames,
 * time_up, time_trim (backend.h).  *v is created on first use.
 */
int egr_cpu_video_probe(struct egr_cpu_video **v, struct egr_job_geom *g, char *err, size_t errlen);

/* A job on the probed decoder: its stream, and wan_vae's de-normalisation. */
int egr_cpu_video_begin(struct egr_cpu_video *v, const struct egr_job_geom *g, char *err, size_t errlen);

/*
 * Decode the next latent frame lat [C][h][w] (float32; changed in place by
 * de-normalisation), emitting the frames it completes.  last: it is the
 * job's last latent frame; the stream is then flushed and the count of
 * frames emitted checked against g->frames.
 */
int egr_cpu_video_feed(struct egr_cpu_video *v, float *lat, int last, egr_cpu_video_emit_fn emit, void *ctx,
		       char *err, size_t errlen);

/*
 * The loaded network, for a GPU backend that decodes it itself (NULL when
 * the probe loaded the other decoder); owned by v, valid until the next probe.
 */
struct egr_wanvae;
struct egr_taehv;
const struct egr_wanvae *egr_cpu_video_wan(const struct egr_cpu_video *v);
const struct egr_taehv *egr_cpu_video_taehv(const struct egr_cpu_video *v);

/*
 * wan_denormalize: *denorm = the job asks for it; then mean and std (g->channels
 * values each, EGR_WANVAE_MAX_Z at most) from vae_config or the built-in ones.
 */
int egr_cpu_video_wan_stats(const struct egr_job_geom *g, float *mean, float *std, int *denorm, char *err,
			    size_t errlen);

/* The job's stream goes (done, failed or stopped); the network stays. */
void egr_cpu_video_end(struct egr_cpu_video *v);
void egr_cpu_video_free(struct egr_cpu_video *v);

#endif
