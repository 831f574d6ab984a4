/*
 * naive_cuda: pipeline = naive on the GPU, see naive.h.  Upload, decode and
 * wait on the compute stream, then a legacy synchronous cudaMemcpy into
 * c->dst.  One VRAM buffer (open gave naive one), no copy stream, no
 * publisher: the producer writes the frames before the next chunk.
 *
 * May touch: the open backend's buffer 0, its compute stream, the timing
 * events of queue entry 0 (the queue is unused on this path) and its job
 * stats; c->dst (written by cudaMemcpy only).
 */
#include <errno.h>
#include <pthread.h>

#include <cuda_runtime.h>

#include "daemon/base/cuda_check.cuh"
#include "daemon/producer/backend_cuda.cuh"
#include "daemon/producer/naive.h"

extern "C" int egr_naive_cuda_decode(void *vbe, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	const struct egr_job_geom *g = &be->g;
	struct cb_vbuf *b = &be->buf[0];
	struct cb_inflight *e = &be->q[0];
	const size_t bytes = (size_t)c->nframes * g->frame_bytes;
	const size_t lbytes = (size_t)c->nframes * g->lat_frame_bytes;
	unsigned long long t0 = egr_log_now_ns();
	int rc = 0;

	if (!be->in_job || !c->nframes || c->nframes > g->chunk_frames) {
		egr_errf(err, errlen, "backend cuda: naive decode of %u frames outside a job or over chunk_frames %u",
			 c->nframes, g->chunk_frames);
		return -EINVAL;
	}
	if (!be->job_started) {
		EGR_CU(cudaEventRecord(be->job_k0, be->s_compute), "cudaEventRecord(job start)");
		be->job_started = 1;
	}
	/* stream-ordered upload: a legacy cudaMemcpy from pageable memory may return before the DMA lands */
	EGR_CU(cudaMemcpyAsync(b->lat, c->latents, lbytes, cudaMemcpyHostToDevice, be->s_compute),
	       "cudaMemcpyAsync(latent buffer 0 <- latents, %zu bytes)", lbytes);
	EGR_CU(cudaEventRecord(e->k0, be->s_compute), "cudaEventRecord(kernel start)");
	if ((rc = egr_backend_cuda_decode(be, g, b->lat, b->frames, 0, c->nframes, c->lat_n, err, errlen)) < 0)
		goto fail;
	EGR_CU(cudaEventRecord(e->k1, be->s_compute), "cudaEventRecord(kernel end)");
	EGR_CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream)");
	EGR_CU(cudaEventRecord(e->c0, 0), "cudaEventRecord(copy start)");
	EGR_CU(cudaMemcpy(c->dst, b->frames, bytes, cudaMemcpyDeviceToHost),
	       "cudaMemcpy(slot %u <- frame buffer 0, %zu bytes)", c->slot, bytes);
	EGR_CU(cudaEventRecord(e->c1, 0), "cudaEventRecord(copy end)");
	EGR_CU(cudaEventSynchronize(e->c1), "cudaEventSynchronize(copy end)");
	pthread_mutex_lock(&be->mu);
	be->kernel_ns += cb_ev_ns(e->k0, e->k1);
	be->d2h_ns += cb_ev_ns(e->c0, e->c1);
	be->d2h_bytes += bytes;
	be->wall_ns = cb_ev_ns(be->job_k0, e->c1);
	be->decode_ns += egr_log_now_ns() - t0;
	be->chunks++;
	pthread_mutex_unlock(&be->mu);
	return 0;
fail:
	return rc;
}
