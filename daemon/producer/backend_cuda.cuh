/*
 * backend_cuda.cuh: the CUDA backend's state, private to the two files that
 * run chunks through it: backend_cuda.cu (the stream/event pipeline, the
 * egr_backend_ops) and naive_cuda.cu (the pipeline = naive baseline loop,
 * which borrows an open backend's buffers, events and stats).  Nothing else
 * includes it; the producer sees backend.h and naive.h only.
 */
#ifndef EGR_BACKEND_CUDA_CUH
#define EGR_BACKEND_CUDA_CUH

#include <pthread.h>
#include <stdint.h>

#include <cuda_runtime.h>

extern "C" {
#include "config/conf.h"
}
#include "daemon/producer/backend.h"
#include "daemon/decode/taesd_resident.h"
#include "daemon/producer/cuda_video.h"

#define CB_MAX_BUFS 8

/* one submitted chunk, in submit order, until the publisher is done with it */
struct cb_inflight {
	uint32_t slot, first, nframes;
	uint64_t bytes;
	cudaEvent_t k0, k1;	/* around the decode kernels (compute stream) */
	cudaEvent_t c0, c1;	/* around the D2H (copy stream); c1 is what we publish on */
#ifdef EGR_TESTING
	int early;		/* published by submit, before its copy (fault hook) */
#endif
};

struct cb_vbuf {
	uint8_t *frames;	/* chunk_frames * frame_bytes */
	size_t frames_cap;
	void *lat;		/* chunk_frames * lat_frame_bytes */
	size_t lat_cap;
	cudaEvent_t uploaded, decoded, copied;
	int used;		/* events recorded at least once */
};

struct cb_stage {
	void *h;		/* cudaMallocHost: latents staging, small */
	size_t cap;
	cudaEvent_t staged;	/* the H2D that last read it */
	int used;
};

struct cuda_be {
	struct egr_backend_env env;
	enum egr_pipeline mode;	/* [bench] pipeline */
	int device;
	int registered;
	cudaStream_t s_compute, s_copy, s_upload;
	cudaStream_t s_d2h;	/* s_copy, or s_compute without a copy stream */

	uint32_t nbuf, next_buf;
	struct cb_vbuf buf[CB_MAX_BUFS];
	uint32_t nstage, next_stage, cur_stage;
	struct cb_stage stage[CB_MAX_BUFS + 1];
	float4 *lin;		/* stage-1 scratch, used on the compute stream only */
	size_t lin_cap;

	struct egr_job_geom g;
	int in_job;
	int job_started;	/* job_k0 recorded */
	cudaEvent_t job_k0;

	/* publisher queue: q[head .. head+count) in submit order */
	pthread_t pub;
	int pub_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	struct cb_inflight *q;
	uint32_t qcap, qhead, qcount;
	int stop, aborting;
	int async_rc;		/* first publisher-side error of the job */
	char async_err[256];

#ifdef EGR_TESTING
	int fault_early_publish;	/* EGR_FAULT_CUDA_EARLY_PUBLISH set: publish from submit */
#endif

	/* decoder = taesd: one GPU decoder per producer, kept across jobs */
	struct egr_taesd_resident taesd;
	/* decoder = wan_vae, taehv (stateful): network kept across jobs, a stream per job */
	struct egr_cuda_video *video;

	/* job stats, under mu */
	uint64_t kernel_ns, wall_ns, d2h_bytes, d2h_ns, decode_ns, gpu_wait_ns;
	uint64_t chunks, dropped;
};

/* elapsed time between two recorded timing events, 0 if unknown */
static inline uint64_t cb_ev_ns(cudaEvent_t a, cudaEvent_t b)
{
	float ms = 0.0f;

	if (cudaEventElapsedTime(&ms, a, b) != cudaSuccess || ms < 0.0f)
		return 0;
	return (uint64_t)((double)ms * 1e6);
}

/*
 * Launch the decode of a chunk's latents in lat into its nframes frames
 * (VRAM buffer k, for messages), on the compute stream: latent2rgb's two
 * kernels, the TAESD network, or a stateful decoder's next lat_n latent
 * frames (cuda_video.h; for the others lat_n = nframes).  Asynchronous
 * (workspaces were sized in job_begin).  0 or -errno.
 */
int egr_backend_cuda_decode(struct cuda_be *be, const struct egr_job_geom *g, const void *lat, uint8_t *frames,
			    uint32_t k, uint32_t nframes, uint32_t lat_n, char *err, size_t errlen);

#endif
