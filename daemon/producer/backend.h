/*
 * backend: the producer's fixed internal interface to a decode device.
 *
 * The producer core (producer.c) owns jobs, latents I/O and the ring; a
 * backend only turns latents into frames inside ring slots.  `cpu` decodes
 * synchronously; `cuda` (backend_cuda.cu; backend_nocuda.c in builds
 * without CUDA) runs a compute stream, a copy stream and an upload stream
 * and publishes asynchronously.  Either way the contract is the same:
 *
 *   open      once per producer process; may register env->data_base
 *   probe     (stateful decoders only; optional) before the job is planned:
 *             load the decoder and fill g's output geometry (below)
 *   job_begin per job: geometry and decoder parameters
 *   input_buffer  host memory to read the next chunk's raw latents into
 *                 (pinned for cuda); valid until the next submit returns
 *   submit    decode chunk c into slot c->slot (c->dst); the backend calls
 *             env->publish(ctx, slot, first, n, bytes) exactly once per
 *             submitted chunk, from any thread, only once every byte of the
 *             slot is in host memory
 *   job_end   wait until every submitted chunk is published (or, with
 *             abort, dropped: then the producer abandons those slots itself
 *             for every chunk never published) and report stats
 *   close     release everything (unregister before the ring is unmapped)
 *
 * All return 0 or -errno with err holding a line that names the failing
 * call ("cudaMalloc(frame buffer 0, 25165824 bytes): out of memory").
 * open returns -ENODEV when the backend cannot run here (no GPU).
 *
 * Stateful decoders (decoder = taehv, wan_vae: egr_decoder_stateful).  A
 * video decoder carries state from one latent frame to the next, and most
 * latent frames make several output frames:
 *
 *   probe     loads the decoder (weights, cached like TAESD's) and fills
 *             width, height, frames (output), time_up and time_trim from
 *             the input fields: latent frames [0, b) decode to output frames
 *             [0, max(0, b * time_up - time_trim)), whatever the chunking
 *             (both decoders emit every frame in the feed that completes it;
 *             a decoder whose frames lag its input would not fit this rule).
 *             A backend without probe cannot run these decoders: the
 *             producer fails such a job, naming the backend.
 *   job_begin creates the job's state (the stream over lat_frames frames)
 *   submit    chunks come in latent order, each exactly once, from latent
 *             frame 0 (a resumed job starts again there: see replay); the
 *             submit that ends at lat_frames also flushes the decoder and
 *             checks its frame count before it publishes
 *   job_end   frees the state, complete or not (a failure, a stop); the
 *             state of a producer that dies goes with its process
 *
 * A chunk with replay set is decoded only to rebuild the state: nothing is
 * written (slot and dst are unused) and nothing published.  A resumed job
 * replays the chunks an earlier producer published, up to the first one
 * still needed; the bytes of the chunks it then publishes are those an
 * uninterrupted run makes (the CPU decoders are deterministic).
 */
#ifndef EGR_BACKEND_H
#define EGR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/decode/frame.h"

#ifdef __cplusplus
extern "C" {
#endif

struct egr_conf;

typedef void (*egr_publish_fn)(void *ctx, uint32_t slot, uint32_t first_frame, uint32_t nframes,
			       uint64_t bytes);

struct egr_backend_env {
	const struct egr_conf *conf;
	void *data_base;	/* ring slot data area (contiguous, page aligned) */
	size_t data_len;
	egr_publish_fn publish;
	void *ctx;
};

struct egr_job_geom {
	uint32_t format;	/* enum egr_format: png = RGB24, y4m = I420 */
	uint32_t decoder;	/* enum egr_decoder */
	uint32_t dtype;		/* enum egr_dtype of the latents */
	uint32_t frames, channels, lat_h, lat_w;	/* frames: output frames */
	uint32_t width, height;	/* output = 8 * latent; a stateful decoder's probe says */
	uint32_t chunk_frames;	/* most latent frames per submit */
	uint32_t lat_frames;	/* latent frames: frames, but for stateful decoders */
	uint32_t time_up, time_trim;	/* output frames of latent frames [0, b): b * time_up - time_trim */
	uint64_t lat_frame_bytes;	/* bytes of one latent frame in dtype */
	uint64_t frame_bytes;	/* bytes of one output frame */
	struct egr_l2r l2r;	/* decoder = latent2rgb */
	const char *weights;	/* decoder = taesd, taehv, wan_vae: safetensors path to read (/proc/self/fd/N) */
	const char *weights_key;	/* and its identity: path, dev, inode, size, mtime (caches key on it) */
	uint32_t taehv_model;	/* decoder = taehv: enum egr_taehv_model */
	uint32_t wan_denormalize;	/* decoder = wan_vae: latents / (1 / std) + mean first */
	const char *vae_config;	/* decoder = wan_vae: its mean / std (/proc/self/fd/N), or NULL: built in */
};

/* taehv and wan_vae: state across chunks, several output frames per latent frame */
static inline int egr_decoder_stateful(uint32_t decoder)
{
	return decoder == EGR_DEC_TAEHV || decoder == EGR_DEC_WAN_VAE;
}

struct egr_chunk {
	uint32_t slot;
	void *dst;		/* slot data: nframes * frame_bytes */
	uint32_t first_frame, nframes;	/* output frames */
	uint32_t lat_first, lat_n;	/* latent frames (= first_frame, nframes but for stateful decoders) */
	uint32_t replay;	/* stateful decoders: rebuild state only; no slot, nothing published */
	const void *latents;	/* from input_buffer: lat_n * lat_frame_bytes */
};

struct egr_backend_stats {
	uint64_t decode_ns;	/* host time spent in decode/submit calls */
	uint64_t gpu_kernel_ns;	/* compute-stream kernel time (cuda) */
	uint64_t gpu_wall_ns;	/* first kernel start to last copy end (cuda) */
	uint64_t d2h_bytes, d2h_ns;
};

struct egr_backend_ops {
	const char *name;
	int (*open)(const struct egr_backend_env *env, void **be, char *err, size_t errlen);
	int (*job_begin)(void *be, const struct egr_job_geom *g, char *err, size_t errlen);
	void *(*input_buffer)(void *be, size_t bytes, char *err, size_t errlen);
	int (*submit)(void *be, const struct egr_chunk *c, char *err, size_t errlen);
	int (*job_end)(void *be, int abort, struct egr_backend_stats *st, char *err, size_t errlen);
	void (*close)(void *be);
	/* last: backend_cuda.cu initialises in order and has none */
	int (*probe)(void *be, struct egr_job_geom *g, char *err, size_t errlen);	/* NULL: no stateful decoders */
};

extern const struct egr_backend_ops egr_backend_cpu;
extern const struct egr_backend_ops egr_backend_cuda;	/* stub without CUDA */

#ifdef EGR_TESTING
/*
 * Test hook (backend_cuda.cu, CUDA builds): the cuda backend be's resident
 * TAESD decoder handle (NULL before the first taesd job), how many times it
 * loaded and uploaded weights since open, and how many warm-up decodes ran.
 * Proves "weights once per producer".
 */
const void *egr_cuda_test_taesd(void *be, uint32_t *loads, uint32_t *warmups);
#endif

#ifdef __cplusplus
}
#endif

#endif
