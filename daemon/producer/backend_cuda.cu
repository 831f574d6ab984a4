/*
 * backend_cuda: the GPU producer backend (backend = cuda), see backend.h for
 * the contract and docs/CUDA.md for the design.  This file is the pipeline
 * and its publisher thread; backend_cuda.cuh holds the state it shares with
 * naive_cuda.cu (pipeline = naive), and TAESD weight residency and warm-up
 * live next to the TAESD kernels (daemon/decode/taesd_resident.h).
 *
 * Three non-blocking streams and events as the only barriers:
 *
 *   upload  : [wait decoded k] H2D staging j -> latents k, record staged j,
 *             record uploaded k
 *   compute : [wait uploaded k] [wait copied k] k0, kernels -> frame buffer
 *             k, k1 = decoded k
 *   copy    : [wait k1] c0, D2H frame buffer k -> slot (registered shm),
 *             c1 = copied k
 *   publisher thread: cudaEventSynchronize(c1) in submit order, then
 *             env->publish(): a slot is READY only once its bytes are in host
 *             memory.
 *
 * The host blocks only in submit when every VRAM buffer is in flight (it
 * waits for the oldest buffer's copy: backpressure that reaches the GPU), in
 * input_buffer when a staging buffer's upload is still running, and in
 * job_end.  No cudaDeviceSynchronize anywhere.
 *
 * The [bench] pipeline ablations (enum egr_pipeline) that reach this file:
 * no-copy-stream issues the D2H on the compute stream, pageable leaves the
 * slots unregistered, single-buffer keeps one VRAM buffer; naive gets one
 * buffer and no registration, and the producer drives it through
 * egr_naive_cuda_decode instead of submit.
 *
 * decoder = taesd: the same graph, with the TAESD network (taesd_cuda.cu)
 * in place of the latent2rgb kernels between k0 and k1.  Its weights are
 * loaded and uploaded once per producer and kept across jobs until a job
 * names another weights file; its workspace is sized in job_begin by one
 * warm-up decode per new geometry, so no submit ever synchronises a stream
 * (docs/CUDA.md, "TAESD").
 *
 * This file may touch: the CUDA device conf->device, env->data_base (pinned
 * with cudaHostRegister for the process's lifetime; never written by the
 * host here), the slots handed to submit (written by DMA only), and the
 * weights file a taesd job names (read only, through taesd_resident).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cuda_runtime.h>

extern "C" {
#include "config/conf.h"
#include "daemon/decode/frame.h"
#include "daemon/base/log.h"
}
#include "daemon/base/cuda_check.cuh"
#include "daemon/producer/backend.h"
#include "daemon/producer/backend_cuda.cuh"
#include "daemon/decode/l2r_cuda.cuh"
#include "daemon/decode/taesd_cuda.h"
#include "daemon/decode/taesd_resident.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

/*
 * Publisher: waits for each chunk's copy-end event in submit order, then
 * publishes.  Why a thread and not cudaLaunchHostFunc: a host function
 * blocks its stream until it returns, so a publish that waits on the ring
 * lock would stall the copy stream; and the event wait lets this thread
 * also read the timing events (a host function may not call CUDA).
 */
static void *cb_publisher(void *arg)
{
	struct cuda_be *be = (struct cuda_be *)arg;

	cudaSetDevice(be->device);	/* the current device is per thread */
	pthread_mutex_lock(&be->mu);
	for (;;) {
		while (!be->qcount && !be->stop)
			pthread_cond_wait(&be->cv_work, &be->mu);
		if (!be->qcount && be->stop)
			break;
		struct cb_inflight *e = &be->q[be->qhead];
		pthread_mutex_unlock(&be->mu);

		/* the one wait that makes publishing safe: the DMA into the slot is done */
		cudaError_t ce = cudaEventSynchronize(e->c1);
		uint64_t kns = 0, dns = 0, wns = 0;
		if (ce == cudaSuccess) {
			kns = cb_ev_ns(e->k0, e->k1);
			dns = cb_ev_ns(e->c0, e->c1);
			wns = cb_ev_ns(be->job_k0, e->c1);
		}

		pthread_mutex_lock(&be->mu);
		int drop = be->aborting || be->async_rc;
		if (ce != cudaSuccess && !be->async_rc) {
			be->async_rc = egr_cuda_errno(ce);
			snprintf(be->async_err, sizeof(be->async_err),
				 "cudaEventSynchronize(copy of slot %u, frames %u..%u): %s", e->slot,
				 e->first, e->first + e->nframes - 1, cudaGetErrorString(ce));
			drop = 1;
		}
		if (!drop) {
			be->kernel_ns += kns;
			be->d2h_ns += dns;
			be->d2h_bytes += e->bytes;
			if (wns > be->wall_ns)
				be->wall_ns = wns;
			be->chunks++;
		} else {
			be->dropped++;
		}
		uint32_t slot = e->slot, first = e->first, n = e->nframes;
		uint64_t bytes = e->bytes;
		pthread_mutex_unlock(&be->mu);

		/* outside the lock: publish may block on the ring's lock */
#ifdef EGR_TESTING
		if (e->early)
			drop = 1;	/* submit published it already (fault hook) */
#endif
		if (!drop)
			be->env.publish(be->env.ctx, slot, first, n, bytes);

		pthread_mutex_lock(&be->mu);
		be->qhead = (be->qhead + 1) % be->qcap;
		be->qcount--;
		pthread_cond_broadcast(&be->cv_done);
	}
	pthread_mutex_unlock(&be->mu);
	return NULL;
}

static void cb_destroy_events(struct cuda_be *be)
{
	for (uint32_t i = 0; i < CB_MAX_BUFS; i++) {
		struct cb_vbuf *b = &be->buf[i];
		if (b->uploaded)
			cudaEventDestroy(b->uploaded);
		if (b->decoded)
			cudaEventDestroy(b->decoded);
		if (b->copied)
			cudaEventDestroy(b->copied);
	}
	for (uint32_t i = 0; i < CB_MAX_BUFS + 1; i++)
		if (be->stage[i].staged)
			cudaEventDestroy(be->stage[i].staged);
	if (be->q) {
		for (uint32_t i = 0; i < be->qcap; i++) {
			struct cb_inflight *e = &be->q[i];
			if (e->k0)
				cudaEventDestroy(e->k0);
			if (e->k1)
				cudaEventDestroy(e->k1);
			if (e->c0)
				cudaEventDestroy(e->c0);
			if (e->c1)
				cudaEventDestroy(e->c1);
		}
	}
	if (be->job_k0)
		cudaEventDestroy(be->job_k0);
}

/* Wait until the publisher queue is empty (with abort: chunks dropped, DMAs still awaited). */
static void cb_drain(struct cuda_be *be, int abort)
{
	pthread_mutex_lock(&be->mu);
	if (abort)
		be->aborting = 1;
	while (be->qcount)
		pthread_cond_wait(&be->cv_done, &be->mu);
	be->aborting = 0;
	pthread_mutex_unlock(&be->mu);
}

static void cb_close(void *vbe)
{
	struct cuda_be *be = (struct cuda_be *)vbe;

	if (!be)
		return;
	if (be->pub_started) {
		/* never leave a DMA running into a slot the ring may unmap */
		cb_drain(be, 1);
		pthread_mutex_lock(&be->mu);
		be->stop = 1;
		pthread_cond_broadcast(&be->cv_work);
		pthread_mutex_unlock(&be->mu);
		pthread_join(be->pub, NULL);
	}
	if (be->s_upload)
		cudaStreamSynchronize(be->s_upload);
	if (be->s_compute)
		cudaStreamSynchronize(be->s_compute);
	if (be->s_copy)
		cudaStreamSynchronize(be->s_copy);
	if (be->registered) {
		cudaError_t e = cudaHostUnregister(be->env.data_base);
		if (e != cudaSuccess)
			egr_warn("cudaHostUnregister(slot area, %zu bytes): %s", be->env.data_len,
				 cudaGetErrorString(e));
	}
	for (uint32_t i = 0; i < CB_MAX_BUFS; i++) {
		if (be->buf[i].frames)
			cudaFree(be->buf[i].frames);
		if (be->buf[i].lat)
			cudaFree(be->buf[i].lat);
	}
	for (uint32_t i = 0; i < CB_MAX_BUFS + 1; i++)
		if (be->stage[i].h)
			cudaFreeHost(be->stage[i].h);
	if (be->lin)
		cudaFree(be->lin);
	egr_taesd_resident_release(&be->taesd);	/* the streams are idle: nothing reads its weights */
	egr_cuda_video_free(be->video);
	cb_destroy_events(be);
	if (be->s_upload)
		cudaStreamDestroy(be->s_upload);
	if (be->s_compute)
		cudaStreamDestroy(be->s_compute);
	if (be->s_copy)
		cudaStreamDestroy(be->s_copy);
	pthread_cond_destroy(&be->cv_work);
	pthread_cond_destroy(&be->cv_done);
	pthread_mutex_destroy(&be->mu);
	free(be->q);
	free(be);
}

/*
 * Fault the slot area in before pinning, without changing a byte: a
 * restarted producer maps slots that may hold READY data.
 * MADV_POPULATE_WRITE does exactly that; older kernels get a read touch,
 * which on a shared tmpfs mapping also allocates the page.
 */
static void cb_prefault(void *base, size_t len)
{
	if (madvise(base, len, MADV_POPULATE_WRITE) == 0)
		return;
	long pg = sysconf(_SC_PAGESIZE);
	volatile const uint8_t *p = (volatile const uint8_t *)base;
	uint8_t sink = 0;
	for (size_t off = 0; off < len; off += (size_t)pg)
		sink ^= p[off];
	(void)sink;
}

/* the first CUDA call: no driver or no GPU shows here, as -ENODEV */
static int cb_check_device(const struct egr_conf *conf, char *err, size_t errlen)
{
	int count = 0;
	cudaError_t e = cudaGetDeviceCount(&count);

	if (e != cudaSuccess) {
		egr_errf(err, errlen,
			 "cudaGetDeviceCount: %s (backend = cuda needs an NVIDIA GPU and its driver; use backend = cpu or auto)",
			 cudaGetErrorString(e));
		return -ENODEV;
	}
	if (count == 0) {
		egr_errf(err, errlen,
			 "cudaGetDeviceCount: no CUDA-capable device is detected (backend = cuda needs an NVIDIA GPU; use backend = cpu or auto)");
		return -ENODEV;
	}
	if ((int)conf->device >= count) {
		egr_errf(err, errlen, "[cuda] device = %u, but this machine has %d CUDA device%s (0..%d)",
			 conf->device, count, count == 1 ? "" : "s", count - 1);
		return -ENODEV;
	}
	return 0;
}

/* the host side: the struct, its locks, the ablation and the buffer counts */
static int cb_alloc(const struct egr_backend_env *env, struct cuda_be **out, char *err, size_t errlen)
{
	const struct egr_conf *conf = env->conf;
	struct cuda_be *be = (struct cuda_be *)calloc(1, sizeof(*be));
	char why[256];

	*out = be;
	if (!be) {
		egr_errf(err, errlen, "calloc(cuda backend): %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	pthread_mutex_init(&be->mu, NULL);
	pthread_cond_init(&be->cv_work, NULL);
	pthread_cond_init(&be->cv_done, NULL);
	be->env = *env;
	be->device = (int)conf->device;
#ifdef EGR_TESTING
	be->fault_early_publish = getenv("EGR_FAULT_CUDA_EARLY_PUBLISH") != NULL;
#endif
	if (egr_conf_parse_pipeline(conf->pipeline, &be->mode, why, sizeof(why)) < 0) {
		egr_errf(err, errlen, "backend cuda: %s", why);
		return -EINVAL;
	}
	be->nbuf = conf->vram_buffers ? conf->vram_buffers : 2;
	if (be->nbuf > CB_MAX_BUFS)
		be->nbuf = CB_MAX_BUFS;
	if (be->mode == EGR_PIPE_SINGLE_BUFFER || be->mode == EGR_PIPE_NAIVE)
		be->nbuf = 1;
	be->nstage = be->nbuf + 1;	/* one to fill while nbuf are uploading/decoding */
	/* every in-flight chunk holds a distinct slot, so slots bound the queue */
	be->qcap = (conf->slots ? conf->slots : 8) + be->nbuf + 1;
	be->q = (struct cb_inflight *)calloc(be->qcap, sizeof(*be->q));
	if (!be->q) {
		egr_errf(err, errlen, "calloc(publish queue, %u entries): %s", be->qcap, strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

/* the device side: the three streams, the barrier events, timing events per queue entry */
static int cb_create_streams_events(struct cuda_be *be, char *err, size_t errlen)
{
	int rc = 0;

	EGR_CU(cudaSetDevice(be->device), "cudaSetDevice(%d)", be->device);
	EGR_CU(cudaStreamCreateWithFlags(&be->s_compute, cudaStreamNonBlocking),
	       "cudaStreamCreateWithFlags(compute stream)");
	EGR_CU(cudaStreamCreateWithFlags(&be->s_copy, cudaStreamNonBlocking), "cudaStreamCreateWithFlags(copy stream)");
	EGR_CU(cudaStreamCreateWithFlags(&be->s_upload, cudaStreamNonBlocking),
	       "cudaStreamCreateWithFlags(upload stream)");
	be->s_d2h = be->mode == EGR_PIPE_NO_COPY_STREAM ? be->s_compute : be->s_copy;

	/*
	 * Events the host waits on sleep (BlockingSync) rather than spin: the
	 * producer's core is better spent reading the next latents.
	 */
	for (uint32_t i = 0; i < be->nbuf; i++) {
		struct cb_vbuf *b = &be->buf[i];
		EGR_CU(cudaEventCreateWithFlags(&b->uploaded, cudaEventDisableTiming), "cudaEventCreate(uploaded %u)", i);
		EGR_CU(cudaEventCreateWithFlags(&b->decoded, cudaEventDisableTiming), "cudaEventCreate(decoded %u)", i);
		EGR_CU(cudaEventCreateWithFlags(&b->copied, cudaEventDisableTiming | cudaEventBlockingSync),
		       "cudaEventCreate(copied %u)", i);
	}
	for (uint32_t i = 0; i < be->nstage; i++)
		EGR_CU(cudaEventCreateWithFlags(&be->stage[i].staged, cudaEventDisableTiming | cudaEventBlockingSync),
		       "cudaEventCreate(staged %u)", i);
	EGR_CU(cudaEventCreate(&be->job_k0), "cudaEventCreate(job start)");
	for (uint32_t i = 0; i < be->qcap; i++) {
		struct cb_inflight *q = &be->q[i];
		EGR_CU(cudaEventCreate(&q->k0), "cudaEventCreate(kernel start %u)", i);
		EGR_CU(cudaEventCreate(&q->k1), "cudaEventCreate(kernel end %u)", i);
		EGR_CU(cudaEventCreate(&q->c0), "cudaEventCreate(copy start %u)", i);
		EGR_CU(cudaEventCreateWithFlags(&q->c1, cudaEventBlockingSync), "cudaEventCreate(copy end %u)", i);
	}
	return 0;
fail:
	return rc;
}

/* pin the slot area once: every D2H then lands in it at full PCIe speed */
static int cb_register_slots(struct cuda_be *be, char *err, size_t errlen)
{
	const struct egr_backend_env *env = &be->env;
	const char *pipeline = env->conf->pipeline;
	int rc = 0;

	if (!env->data_base || !env->data_len || be->mode == EGR_PIPE_PAGEABLE || be->mode == EGR_PIPE_NAIVE) {
		egr_info("cuda: device %d, pipeline %s, %u VRAM buffer%s; slot area not registered (pageable D2H)",
			 be->device, pipeline, be->nbuf, be->nbuf == 1 ? "" : "s");
		return 0;
	}
	unsigned long long t0 = egr_log_now_ns();
	cb_prefault(env->data_base, env->data_len);
	unsigned long long t1 = egr_log_now_ns();
	EGR_CU(cudaHostRegister(env->data_base, env->data_len, cudaHostRegisterDefault),
	       "cudaHostRegister(slot area %p, %zu bytes)", env->data_base, env->data_len);
	be->registered = 1;
	egr_info("cuda: device %d, pipeline %s, %u VRAM buffer%s; slot area %.1f MiB pre-faulted in %.1f ms, cudaHostRegister took %.1f ms",
		 be->device, pipeline, be->nbuf, be->nbuf == 1 ? "" : "s", env->data_len / 1048576.0,
		 (t1 - t0) / 1e6, (egr_log_now_ns() - t1) / 1e6);
	return 0;
fail:
	return rc;
}

static int cb_open(const struct egr_backend_env *env, void **out, char *err, size_t errlen)
{
	struct cuda_be *be = NULL;
	int rc;

	*out = NULL;
	if ((rc = cb_check_device(env->conf, err, errlen)) < 0)
		return rc;
	if ((rc = cb_alloc(env, &be, err, errlen)) < 0 || (rc = cb_create_streams_events(be, err, errlen)) < 0 ||
	    (rc = cb_register_slots(be, err, errlen)) < 0)
		goto fail;
	rc = pthread_create(&be->pub, NULL, cb_publisher, be);
	if (rc) {
		egr_errf(err, errlen, "pthread_create(cuda publisher): %s", strerror(rc));
		rc = -rc;
		goto fail;
	}
	be->pub_started = 1;
	*out = be;
	return 0;
fail:
	cb_close(be);
	return rc;
}

/* backend_cuda.cuh */
int egr_backend_cuda_decode(struct cuda_be *be, const struct egr_job_geom *g, const void *lat, uint8_t *frames,
			    uint32_t k, uint32_t nframes, uint32_t lat_n, char *err, size_t errlen)
{
	int rc = 0;

	if (egr_decoder_stateful(g->decoder))
		return egr_cuda_video_feed(be->video, lat, lat_n, frames, nframes, err, errlen);
	if (g->decoder == EGR_DEC_TAESD) {
		char why[256];
		rc = egr_taesd_gpu_decode(be->taesd.gpu, be->s_compute, lat, g->dtype, nframes, g->lat_h, g->lat_w,
					  g->format, frames, why, sizeof(why));
		if (rc)
			egr_errf(err, errlen, "taesd decode(frame buffer %u, %u frames of %ux%u): %s", k, nframes,
				 g->width, g->height, why);
		return rc;
	}
	EGR_CU(egr_cuda_launch_l2r(&g->l2r, g->dtype, g->format, lat, be->lin, frames, nframes, g->lat_h, g->lat_w,
				   g->frame_bytes, be->s_compute),
	       "latent2rgb kernel launch(frame buffer %u, %u frames of %ux%u)", k, nframes, g->width, g->height);
	return 0;
fail:
	return rc;
}

static int cb_check_geom(const struct egr_job_geom *g, char *err, size_t errlen)
{
	const int taesd = g->decoder == EGR_DEC_TAESD, video = egr_decoder_stateful(g->decoder);

	if (g->decoder != EGR_DEC_LATENT2RGB && !taesd && !video) {
		egr_errf(err, errlen, "backend cuda: decoder %u is unknown", g->decoder);
		return -ENOTSUP;
	}
	if (g->dtype != EGR_DT_F16 && g->dtype != EGR_DT_F32) {
		egr_errf(err, errlen, "backend cuda: latent dtype %u is not float16 or float32", g->dtype);
		return -EINVAL;
	}
	if (video) {	/* the probe set the output size: only consistency to check */
		if (!g->chunk_frames || g->chunk_frames > 65535 || !g->time_up ||
		    g->frame_bytes != egr_frame_bytes(g->format, g->width, g->height) ||
		    g->lat_frame_bytes != (uint64_t)g->channels * g->lat_h * g->lat_w * g->dtype) {
			egr_errf(err, errlen, "backend cuda: inconsistent job geometry (%u latent frames of %ux%ux%u -> %ux%u, chunk %u)",
				 g->lat_frames, g->channels, g->lat_h, g->lat_w, g->width, g->height, g->chunk_frames);
			return -EINVAL;
		}
		return 0;
	}
	if (!g->chunk_frames || !g->lat_h || !g->lat_w || g->chunk_frames > 65535 ||
	    g->width != g->lat_w * EGR_L2R_SCALE || g->height != g->lat_h * EGR_L2R_SCALE ||
	    g->frame_bytes != egr_frame_bytes(g->format, g->width, g->height) ||
	    g->lat_frame_bytes != (uint64_t)g->channels * g->lat_h * g->lat_w * g->dtype ||
	    (!taesd && g->l2r.channels != g->channels)) {
		egr_errf(err, errlen,
			 "backend cuda: inconsistent job geometry (%u frames of %ux%ux%u latents -> %ux%u, chunk %u)",
			 g->frames, g->channels, g->lat_h, g->lat_w, g->width, g->height, g->chunk_frames);
		return -EINVAL;
	}
	return 0;
}

/* VRAM buffers and scratch for chunks of g: they only grow */
static int cb_grow_buffers(struct cuda_be *be, const struct egr_job_geom *g, char *err, size_t errlen)
{
	/* a stateful decoder's latent frame makes up to time_up frames */
	size_t fbytes = (size_t)g->chunk_frames * (egr_decoder_stateful(g->decoder) ? g->time_up : 1) * g->frame_bytes;
	size_t lbytes = (size_t)g->chunk_frames * g->lat_frame_bytes;
	size_t linb = g->decoder != EGR_DEC_LATENT2RGB ? 0 : (size_t)g->chunk_frames * g->lat_h * g->lat_w * sizeof(float4);
	int grow = 0, rc = 0;

	for (uint32_t i = 0; i < be->nbuf; i++)
		grow |= be->buf[i].frames_cap < fbytes || be->buf[i].lat_cap < lbytes;
	grow |= be->lin_cap < linb;
	if (grow) {
		/* between jobs the queue is empty; the streams are idle or nearly */
		EGR_CU(cudaStreamSynchronize(be->s_upload), "cudaStreamSynchronize(upload stream)");
		EGR_CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream)");
		EGR_CU(cudaStreamSynchronize(be->s_copy), "cudaStreamSynchronize(copy stream)");
	}
	for (uint32_t i = 0; i < be->nbuf; i++) {
		struct cb_vbuf *b = &be->buf[i];
		if (b->frames_cap < fbytes) {
			if (b->frames)
				EGR_CU(cudaFree(b->frames), "cudaFree(frame buffer %u)", i);
			b->frames = NULL;
			b->frames_cap = 0;
			EGR_CU(cudaMalloc((void **)&b->frames, fbytes), "cudaMalloc(frame buffer %u, %zu bytes)", i,
			       fbytes);
			b->frames_cap = fbytes;
		}
		if (b->lat_cap < lbytes) {
			if (b->lat)
				EGR_CU(cudaFree(b->lat), "cudaFree(latent buffer %u)", i);
			b->lat = NULL;
			b->lat_cap = 0;
			EGR_CU(cudaMalloc(&b->lat, lbytes), "cudaMalloc(latent buffer %u, %zu bytes)", i, lbytes);
			b->lat_cap = lbytes;
		}
	}
	if (be->lin_cap < linb) {
		if (be->lin)
			EGR_CU(cudaFree(be->lin), "cudaFree(linear-map scratch)");
		be->lin = NULL;
		be->lin_cap = 0;
		EGR_CU(cudaMalloc((void **)&be->lin, linb), "cudaMalloc(linear-map scratch, %zu bytes)", linb);
		be->lin_cap = linb;
	}
	return 0;
fail:
	return rc;
}

/*
 * decoder = taesd: make the resident decoder decode g->weights, then warm
 * its workspace up for this job's geometry unless done before
 * (taesd_resident.h says why).  The warm-up borrows VRAM buffer 0, idle
 * between jobs.
 */
static int cb_taesd_prepare(struct cuda_be *be, const struct egr_job_geom *g, char *err, size_t errlen)
{
	/* the largest submit of this job: a job shorter than a chunk never needs a full one */
	const uint32_t n = g->frames && g->frames < g->chunk_frames ? g->frames : g->chunk_frames;
	struct cb_vbuf *b = &be->buf[0];
	int rc = 0;

	if (!g->weights || !*g->weights) {
		egr_errf(err, errlen, "backend cuda: decoder = taesd needs a weights file (job key weights)");
		return -EINVAL;
	}
	/* callers that fill the geometry by hand (tests) may leave the key out: the path is the key then */
	rc = egr_taesd_resident_load(&be->taesd, g->weights, g->weights_key ? g->weights_key : g->weights,
				     g->channels, be->device, be->s_compute, err, errlen);
	if (rc || egr_taesd_resident_is_warm(&be->taesd, g->lat_h, g->lat_w, n))
		return rc;
	/* wait for buffer 0 anyway, on the GPU, as a submit would */
	EGR_CU(cudaStreamSynchronize(be->s_upload), "cudaStreamSynchronize(upload stream)");
	if (b->used && be->s_d2h != be->s_compute)
		EGR_CU(cudaStreamWaitEvent(be->s_compute, b->copied, 0), "cudaStreamWaitEvent(compute stream, copied 0)");
	return egr_taesd_resident_warm_up(&be->taesd, be->s_compute, b->lat, g->lat_frame_bytes, g->dtype, n, g->lat_h,
					  g->lat_w, g->format, b->frames, err, errlen);
fail:
	return rc;
}

static int cb_job_begin(void *vbe, const struct egr_job_geom *g, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	int rc;

	if ((rc = cb_check_geom(g, err, errlen)) < 0 || (rc = cb_grow_buffers(be, g, err, errlen)) < 0)
		return rc;
	if (g->decoder == EGR_DEC_TAESD && (rc = cb_taesd_prepare(be, g, err, errlen)) < 0)
		return rc;
	if (egr_decoder_stateful(g->decoder)) {
		if (be->mode == EGR_PIPE_NAIVE) {
			egr_errf(err, errlen, "pipeline = naive runs latent2rgb and taesd only; decoder = %s needs the full pipeline",
				 egr_job_decoder_name(g->decoder));
			return -ENOTSUP;
		}
		/* the stream's warm-up runs on the compute stream: let earlier work finish first */
		cudaError_t e = cudaStreamSynchronize(be->s_compute);
		if (e != cudaSuccess)
			return egr_cuda_fail(e, err, errlen, "cudaStreamSynchronize(compute stream)");
		if ((rc = egr_cuda_video_begin(be->video, g, err, errlen)) < 0)
			return rc;
	}

	be->g = *g;
	be->in_job = 1;
	be->job_started = 0;
	pthread_mutex_lock(&be->mu);
	be->kernel_ns = be->wall_ns = be->d2h_bytes = be->d2h_ns = be->decode_ns = be->gpu_wait_ns = 0;
	be->chunks = be->dropped = 0;
	be->async_rc = 0;
	be->async_err[0] = 0;
	pthread_mutex_unlock(&be->mu);
	return 0;
}

static void *cb_input_buffer(void *vbe, size_t bytes, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	uint32_t j = be->next_stage;
	struct cb_stage *s = &be->stage[j];
	int rc = 0;

	if (s->used)	/* its last upload must have read it */
		EGR_CU(cudaEventSynchronize(s->staged), "cudaEventSynchronize(upload from staging buffer %u)", j);
	if (s->cap < bytes) {
		size_t cap = (bytes + 65535) & ~(size_t)65535;
		if (s->h)
			EGR_CU(cudaFreeHost(s->h), "cudaFreeHost(staging buffer %u)", j);
		s->h = NULL;
		s->cap = 0;
		EGR_CU(cudaMallocHost(&s->h, cap), "cudaMallocHost(staging buffer %u, %zu bytes)", j, cap);
		s->cap = cap;
	}
	be->cur_stage = j;
	be->next_stage = (j + 1) % be->nstage;
	return s->h;
fail:
	errno = -rc;	/* besides err: NULL carries no code */
	return NULL;
}

static int cb_async_error(struct cuda_be *be, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&be->mu);
	rc = be->async_rc;
	if (rc)
		egr_errf(err, errlen, "%s", be->async_err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

/* what submit refuses before touching the GPU */
static int cb_check_chunk(struct cuda_be *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	const struct egr_job_geom *g = &be->g;
	const size_t bytes = (size_t)c->nframes * g->frame_bytes;
	const uint8_t *dst = (const uint8_t *)c->dst, *base = (const uint8_t *)be->env.data_base;
	int rc;

	if (!be->in_job) {
		egr_errf(err, errlen, "backend cuda: submit outside a job");
		return -EINVAL;
	}
	if ((rc = cb_async_error(be, err, errlen)) < 0)
		return rc;
	if (egr_decoder_stateful(g->decoder)) {
		if (!c->lat_n || c->lat_n > g->chunk_frames || c->nframes > c->lat_n * g->time_up) {
			egr_errf(err, errlen, "backend cuda: chunk of %u latent frames (1..%u) making %u frames",
				 c->lat_n, g->chunk_frames, c->nframes);
			return -EINVAL;
		}
	} else if (!c->nframes || c->nframes > g->chunk_frames) {
		egr_errf(err, errlen, "backend cuda: chunk of %u frames (1..%u)", c->nframes, g->chunk_frames);
		return -EINVAL;
	}
	if (base && !c->replay && (dst < base || dst + bytes > base + be->env.data_len)) {	/* a replay writes nothing */
		egr_errf(err, errlen, "backend cuda: slot %u destination %p (+%zu) is outside the slot area",
			 c->slot, c->dst, bytes);
		return -EINVAL;
	}
	return 0;
}

/*
 * Backpressure: VRAM buffer k is free once its last D2H finished.  The
 * compute stream waits for that on the GPU anyway; the host waits too so
 * that it never runs more than nbuf chunks ahead of the copies.  *waited:
 * how long.
 */
static int cb_wait_buffer(struct cuda_be *be, uint32_t k, unsigned long long *waited, char *err, size_t errlen)
{
	unsigned long long w0 = egr_log_now_ns();
	int rc = 0;

	if (be->buf[k].used) {
		EGR_CU(cudaEventSynchronize(be->buf[k].copied), "cudaEventSynchronize(copy from frame buffer %u)", k);
		*waited = egr_log_now_ns() - w0;
	}
	return 0;
fail:
	return rc;
}

/* a queue entry: free unless the publisher lags by every slot (it cannot: slots bound it) */
static struct cb_inflight *cb_queue_entry(struct cuda_be *be)
{
	struct cb_inflight *e;

	pthread_mutex_lock(&be->mu);
	while (be->qcount == be->qcap)
		pthread_cond_wait(&be->cv_done, &be->mu);
	e = &be->q[(be->qhead + be->qcount) % be->qcap];
	pthread_mutex_unlock(&be->mu);
	return e;
}

/* upload stream: latent buffer k was last read by decode k */
static int cb_upload(struct cuda_be *be, uint32_t k, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cb_vbuf *b = &be->buf[k];
	struct cb_stage *s = &be->stage[be->cur_stage];
	const size_t lbytes = (size_t)(egr_decoder_stateful(be->g.decoder) ? c->lat_n : c->nframes) *
			      be->g.lat_frame_bytes;
	int rc = 0;

	if (b->used)
		EGR_CU(cudaStreamWaitEvent(be->s_upload, b->decoded, 0), "cudaStreamWaitEvent(upload stream, decoded %u)",
		       k);
	EGR_CU(cudaMemcpyAsync(b->lat, c->latents, lbytes, cudaMemcpyHostToDevice, be->s_upload),
	       "cudaMemcpyAsync(latent buffer %u <- staging, %zu bytes)", k, lbytes);
	if (c->latents == s->h) {
		EGR_CU(cudaEventRecord(s->staged, be->s_upload), "cudaEventRecord(staged %u)", be->cur_stage);
		s->used = 1;
	}
	EGR_CU(cudaEventRecord(b->uploaded, be->s_upload), "cudaEventRecord(uploaded %u)", k);
	return 0;
fail:
	return rc;
}

/* compute stream: decode into frame buffer k once its latents are in and its last copy is out */
static int cb_compute(struct cuda_be *be, uint32_t k, struct cb_inflight *e, const struct egr_chunk *c, char *err,
		      size_t errlen)
{
	struct cb_vbuf *b = &be->buf[k];
	int rc = 0;

	EGR_CU(cudaStreamWaitEvent(be->s_compute, b->uploaded, 0), "cudaStreamWaitEvent(compute stream, uploaded %u)",
	       k);
	if (b->used && be->s_d2h != be->s_compute)
		EGR_CU(cudaStreamWaitEvent(be->s_compute, b->copied, 0), "cudaStreamWaitEvent(compute stream, copied %u)",
		       k);
	if (!be->job_started) {
		EGR_CU(cudaEventRecord(be->job_k0, be->s_compute), "cudaEventRecord(job start)");
		be->job_started = 1;
	}
	EGR_CU(cudaEventRecord(e->k0, be->s_compute), "cudaEventRecord(kernel start)");
	if ((rc = egr_backend_cuda_decode(be, &be->g, b->lat, b->frames, k, c->nframes, c->lat_n, err, errlen)) < 0)
		goto fail;
	EGR_CU(cudaEventRecord(e->k1, be->s_compute), "cudaEventRecord(kernel end)");
	EGR_CU(cudaEventRecord(b->decoded, be->s_compute), "cudaEventRecord(decoded %u)", k);
	return 0;
fail:
	return rc;
}

/* copy stream (or compute, for no-copy-stream): D2H straight into the slot */
static int cb_copy_out(struct cuda_be *be, uint32_t k, struct cb_inflight *e, const struct egr_chunk *c,
		       int *issued, char *err, size_t errlen)
{
	struct cb_vbuf *b = &be->buf[k];
	const size_t bytes = (size_t)c->nframes * be->g.frame_bytes;
	int rc = 0;

	if (be->s_d2h != be->s_compute)
		EGR_CU(cudaStreamWaitEvent(be->s_d2h, e->k1, 0), "cudaStreamWaitEvent(copy stream, decoded %u)", k);
	EGR_CU(cudaEventRecord(e->c0, be->s_d2h), "cudaEventRecord(copy start)");
	*issued = 1;
	EGR_CU(cudaMemcpyAsync(c->dst, b->frames, bytes, cudaMemcpyDeviceToHost, be->s_d2h),
	       "cudaMemcpyAsync(slot %u <- frame buffer %u, %zu bytes)", c->slot, k, bytes);
	EGR_CU(cudaEventRecord(e->c1, be->s_d2h), "cudaEventRecord(copy end)");
	EGR_CU(cudaEventRecord(b->copied, be->s_d2h), "cudaEventRecord(copied %u)", k);
	b->used = 1;
	be->next_buf = (k + 1) % be->nbuf;
	return 0;
fail:
	return rc;
}

/* hand chunk c, now in flight as e, to the publisher */
static void cb_enqueue(struct cuda_be *be, struct cb_inflight *e, const struct egr_chunk *c,
		       unsigned long long t0, unsigned long long waited)
{
	e->slot = c->slot;
	e->first = c->first_frame;
	e->nframes = c->nframes;
	e->bytes = (uint64_t)c->nframes * be->g.frame_bytes;
#ifdef EGR_TESTING
	/*
	 * Mutation hook for the GPU poison test: publish right after issuing
	 * the copy, without waiting for it -- the bug the publisher exists to
	 * prevent.  The test must see poison in such slots.
	 */
	e->early = be->fault_early_publish;
	if (e->early)
		be->env.publish(be->env.ctx, c->slot, c->first_frame, c->nframes, e->bytes);
#endif
	pthread_mutex_lock(&be->mu);
	be->qcount++;
	be->decode_ns += egr_log_now_ns() - t0;
	be->gpu_wait_ns += waited;
	pthread_cond_signal(&be->cv_work);
	pthread_mutex_unlock(&be->mu);
}

/*
 * A resumed job's chunk decoded again only to rebuild the decoder's state
 * (backend.h): upload, decode into the next VRAM buffer, wait; nothing is
 * copied out or published.  Rare (a producer restart), so plainly serial.
 */
static int cb_replay(struct cuda_be *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	const uint32_t k = be->next_buf;
	struct cb_vbuf *b = &be->buf[k];
	int rc = 0;

	EGR_CU(cudaStreamSynchronize(be->s_copy), "cudaStreamSynchronize(copy stream, before a replay)");
	EGR_CU(cudaStreamSynchronize(be->s_upload), "cudaStreamSynchronize(upload stream, before a replay)");
	EGR_CU(cudaMemcpyAsync(b->lat, c->latents, (size_t)c->lat_n * be->g.lat_frame_bytes, cudaMemcpyHostToDevice,
			       be->s_compute),
	       "cudaMemcpyAsync(latent buffer %u <- staging, replay)", k);
	if ((rc = egr_backend_cuda_decode(be, &be->g, b->lat, b->frames, k, c->nframes, c->lat_n, err, errlen)) < 0)
		return rc;
	EGR_CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream, replay)");
	return 0;
fail:
	return rc;
}

static int cb_submit(void *vbe, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	unsigned long long t0 = egr_log_now_ns(), waited = 0;
	const uint32_t k = be->next_buf;
	struct cb_inflight *e;
	int rc, d2h_issued = 0;

	if ((rc = cb_check_chunk(be, c, err, errlen)) < 0)
		return rc;
	if (c->replay)
		return cb_replay(be, c, err, errlen);
	if ((rc = cb_wait_buffer(be, k, &waited, err, errlen)) < 0)
		goto fail;
	e = cb_queue_entry(be);
	if ((rc = cb_upload(be, k, c, err, errlen)) < 0 || (rc = cb_compute(be, k, e, c, err, errlen)) < 0 ||
	    (rc = cb_copy_out(be, k, e, c, &d2h_issued, err, errlen)) < 0)
		goto fail;
	cb_enqueue(be, e, c, t0, waited);
	return 0;
fail:
	/* the slot goes back to the producer: no DMA may still be heading for it */
	if (d2h_issued)
		cudaStreamSynchronize(be->s_d2h);
	pthread_mutex_lock(&be->mu);
	be->decode_ns += egr_log_now_ns() - t0;
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static int cb_job_end(void *vbe, int abort, struct egr_backend_stats *st, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	int rc;

	cb_drain(be, abort);
	be->in_job = 0;
	if (egr_decoder_stateful(be->g.decoder))
		egr_cuda_video_end(be->video);	/* the drain left nothing in flight that reads it */
	pthread_mutex_lock(&be->mu);
	if (st) {
		st->decode_ns = be->decode_ns;
		st->gpu_kernel_ns = be->kernel_ns;
		st->gpu_wall_ns = be->wall_ns;
		st->d2h_bytes = be->d2h_bytes;
		st->d2h_ns = be->d2h_ns;
	}
	rc = be->async_rc;
	if (rc)
		egr_errf(err, errlen, "%s", be->async_err);
	if (be->chunks)
		egr_info("cuda job: %llu chunks, kernels %.2f ms, D2H %.1f MiB in %.2f ms (%.1f GB/s), GPU wall %.2f ms, submit waited %.2f ms for VRAM buffers%s",
			 (unsigned long long)be->chunks, be->kernel_ns / 1e6, be->d2h_bytes / 1048576.0,
			 be->d2h_ns / 1e6, be->d2h_ns ? (double)be->d2h_bytes / (double)be->d2h_ns : 0.0,
			 be->wall_ns / 1e6, be->gpu_wait_ns / 1e6, abort ? " (aborted)" : "");
	pthread_mutex_unlock(&be->mu);
	return rc;
}

#ifdef EGR_TESTING
/* test hook, see backend.h */
extern "C" const void *egr_cuda_test_taesd(void *vbe, uint32_t *loads, uint32_t *warmups)
{
	struct cuda_be *be = (struct cuda_be *)vbe;

	*loads = be->taesd.loads;
	*warmups = be->taesd.warmups;
	return be->taesd.gpu;
}
#endif

/* stateful decoders: load (cpu_video's checks), upload once, fill the geometry */
static int cb_probe(void *vbe, struct egr_job_geom *g, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	int rc = 0;

	/* a new net replaces the old one's weights: nothing may still run on them */
	EGR_CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream, before a probe)");
	return egr_cuda_video_probe(&be->video, g, (struct CUstream_st *)be->s_compute, err, errlen);
fail:
	return rc;
}

extern "C" const struct egr_backend_ops egr_backend_cuda = {
	"cuda", cb_open, cb_job_begin, cb_input_buffer, cb_submit, cb_job_end, cb_close, cb_probe,
};
