/*
 * backend_cuda: the GPU producer backend (backend = cuda), see backend.h for
 * the contract and docs/CUDA.md for the design.
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
 * decoder = taesd: the same graph, with the
 * TAESD network (taesd_cuda.cu) in place of the latent2rgb kernels between
 * k0 and k1.  Its weights are loaded and uploaded once per producer and kept
 * across jobs until a job names another weights file; its workspace is
 * sized in job_begin by one warm-up decode per new geometry, so no submit
 * ever synchronises a stream (docs/CUDA.md, "TAESD").
 *
 * This file may touch: the CUDA device conf->device, env->data_base (pinned
 * with cudaHostRegister for the process's lifetime; never written by the
 * host here), the slots handed to submit (written by DMA only), and the
 * weights file a taesd job names (read only).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
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
#include "daemon/producer/backend.h"
#include "daemon/decode/l2r_cuda.cuh"
#include "daemon/decode/taesd.h"
#include "daemon/decode/taesd_cuda.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

#define CB_MAX_BUFS 8
#define CB_TAESD_WARM 8	/* geometries whose workspace need is known to fit */

enum cb_pipeline {
	CB_FULL,		/* also one-worker: the supervisor's ablation */
	CB_NAIVE,		/* the producer's one-stream loop via egr_cuda_naive_decode */
	CB_NO_COPY_STREAM,	/* D2H on the compute stream */
	CB_PAGEABLE,		/* slots not registered */
	CB_SINGLE_BUFFER,	/* one VRAM buffer */
};

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
	enum cb_pipeline mode;
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

	/*
	 * decoder = taesd: one GPU decoder per producer, kept across jobs; a job
	 * naming another weights file replaces it.  warm[] lists the (latent
	 * h, w, chunk) geometries already decoded once with this handle: the
	 * decoder's workspace is large enough for them (it only grows).
	 */
	struct egr_taesd_gpu *taesd;
	char taesd_path[EGR_PATH_MAX];
	uint32_t taesd_channels;
	uint32_t taesd_loads, taesd_warmups;	/* since open: the test hook reads them */
	struct {
		uint32_t h, w, n;
	} warm[CB_TAESD_WARM];
	uint32_t nwarm, warm_next;

	/* job stats, under mu */
	uint64_t kernel_ns, wall_ns, d2h_bytes, d2h_ns, decode_ns, gpu_wait_ns;
	uint64_t chunks, dropped;
};

static int cu_errno(cudaError_t e)
{
	switch (e) {
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorNoDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorInvalidDevice:
	case cudaErrorDevicesUnavailable:
	case cudaErrorSystemDriverMismatch:
	case cudaErrorCompatNotSupportedOnDevice:
	case cudaErrorStubLibrary:
		return -ENODEV;
	case cudaErrorInvalidValue:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* "call(object): reason", and the matching -errno */
static int cu_fail(cudaError_t e, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int cu_fail(cudaError_t e, char *err, size_t errlen, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	egr_errf(err, errlen, "%s: %s", what, cudaGetErrorString(e));
	return cu_errno(e);
}

#define CU(call, ...)                                                          \
	do {                                                                   \
		cudaError_t e_ = (call);                                       \
		if (e_ != cudaSuccess) {                                       \
			rc = cu_fail(e_, err, errlen, __VA_ARGS__);            \
			goto fail;                                             \
		}                                                              \
	} while (0)

static int parse_pipeline(const char *s, enum cb_pipeline *m)
{
	if (!strcmp(s, "full") || !strcmp(s, "one-worker") || !*s)
		*m = CB_FULL;
	else if (!strcmp(s, "naive"))
		*m = CB_NAIVE;
	else if (!strcmp(s, "no-copy-stream"))
		*m = CB_NO_COPY_STREAM;
	else if (!strcmp(s, "pageable"))
		*m = CB_PAGEABLE;
	else if (!strcmp(s, "single-buffer"))
		*m = CB_SINGLE_BUFFER;
	else
		return -EINVAL;
	return 0;
}

static uint64_t ev_ns(cudaEvent_t a, cudaEvent_t b)
{
	float ms = 0.0f;

	if (cudaEventElapsedTime(&ms, a, b) != cudaSuccess || ms < 0.0f)
		return 0;
	return (uint64_t)((double)ms * 1e6);
}

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
			kns = ev_ns(e->k0, e->k1);
			dns = ev_ns(e->c0, e->c1);
			wns = ev_ns(be->job_k0, e->c1);
		}

		pthread_mutex_lock(&be->mu);
		int drop = be->aborting || be->async_rc;
		if (ce != cudaSuccess && !be->async_rc) {
			be->async_rc = cu_errno(ce);
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
	egr_taesd_gpu_destroy(be->taesd);	/* the streams are idle: nothing reads its weights */
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

static int cb_open(const struct egr_backend_env *env, void **out, char *err, size_t errlen)
{
	const struct egr_conf *conf = env->conf;
	struct cuda_be *be;
	int rc = 0, count = 0;
	cudaError_t e;

	*out = NULL;
	/* first CUDA call: no driver or no GPU shows here, as -ENODEV */
	e = cudaGetDeviceCount(&count);
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

	be = (struct cuda_be *)calloc(1, sizeof(*be));
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
	if (parse_pipeline(conf->pipeline, &be->mode) < 0) {
		egr_errf(err, errlen,
			 "backend cuda: pipeline '%s' is unknown (full, naive, no-copy-stream, pageable, single-buffer, one-worker)",
			 conf->pipeline);
		rc = -EINVAL;
		goto fail;
	}
	be->nbuf = conf->vram_buffers ? conf->vram_buffers : 2;
	if (be->nbuf > CB_MAX_BUFS)
		be->nbuf = CB_MAX_BUFS;
	if (be->mode == CB_SINGLE_BUFFER || be->mode == CB_NAIVE)
		be->nbuf = 1;
	be->nstage = be->nbuf + 1;	/* one to fill while nbuf are uploading/decoding */

	CU(cudaSetDevice(be->device), "cudaSetDevice(%d)", be->device);
	CU(cudaStreamCreateWithFlags(&be->s_compute, cudaStreamNonBlocking), "cudaStreamCreateWithFlags(compute stream)");
	CU(cudaStreamCreateWithFlags(&be->s_copy, cudaStreamNonBlocking), "cudaStreamCreateWithFlags(copy stream)");
	CU(cudaStreamCreateWithFlags(&be->s_upload, cudaStreamNonBlocking), "cudaStreamCreateWithFlags(upload stream)");
	be->s_d2h = be->mode == CB_NO_COPY_STREAM ? be->s_compute : be->s_copy;

	/*
	 * Events the host waits on sleep (BlockingSync) rather than spin: the
	 * producer's core is better spent reading the next latents.
	 */
	for (uint32_t i = 0; i < be->nbuf; i++) {
		struct cb_vbuf *b = &be->buf[i];
		CU(cudaEventCreateWithFlags(&b->uploaded, cudaEventDisableTiming), "cudaEventCreate(uploaded %u)", i);
		CU(cudaEventCreateWithFlags(&b->decoded, cudaEventDisableTiming), "cudaEventCreate(decoded %u)", i);
		CU(cudaEventCreateWithFlags(&b->copied, cudaEventDisableTiming | cudaEventBlockingSync),
		   "cudaEventCreate(copied %u)", i);
	}
	for (uint32_t i = 0; i < be->nstage; i++)
		CU(cudaEventCreateWithFlags(&be->stage[i].staged, cudaEventDisableTiming | cudaEventBlockingSync),
		   "cudaEventCreate(staged %u)", i);
	CU(cudaEventCreate(&be->job_k0), "cudaEventCreate(job start)");

	/* every in-flight chunk holds a distinct slot, so slots bound the queue */
	be->qcap = (conf->slots ? conf->slots : 8) + be->nbuf + 1;
	be->q = (struct cb_inflight *)calloc(be->qcap, sizeof(*be->q));
	if (!be->q) {
		egr_errf(err, errlen, "calloc(publish queue, %u entries): %s", be->qcap, strerror(ENOMEM));
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < be->qcap; i++) {
		struct cb_inflight *q = &be->q[i];
		CU(cudaEventCreate(&q->k0), "cudaEventCreate(kernel start %u)", i);
		CU(cudaEventCreate(&q->k1), "cudaEventCreate(kernel end %u)", i);
		CU(cudaEventCreate(&q->c0), "cudaEventCreate(copy start %u)", i);
		CU(cudaEventCreateWithFlags(&q->c1, cudaEventBlockingSync), "cudaEventCreate(copy end %u)", i);
	}

	/* pin the slot area once: every D2H then lands in it at full PCIe speed */
	if (env->data_base && env->data_len && be->mode != CB_PAGEABLE && be->mode != CB_NAIVE) {
		unsigned long long t0 = egr_log_now_ns();
		cb_prefault(env->data_base, env->data_len);
		unsigned long long t1 = egr_log_now_ns();
		CU(cudaHostRegister(env->data_base, env->data_len, cudaHostRegisterDefault),
		   "cudaHostRegister(slot area %p, %zu bytes)", env->data_base, env->data_len);
		be->registered = 1;
		unsigned long long t2 = egr_log_now_ns();
		egr_info("cuda: device %d, pipeline %s, %u VRAM buffer%s; slot area %.1f MiB pre-faulted in %.1f ms, cudaHostRegister took %.1f ms",
			 be->device, conf->pipeline, be->nbuf, be->nbuf == 1 ? "" : "s",
			 env->data_len / 1048576.0, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
	} else {
		egr_info("cuda: device %d, pipeline %s, %u VRAM buffer%s; slot area not registered (pageable D2H)",
			 be->device, conf->pipeline, be->nbuf, be->nbuf == 1 ? "" : "s");
	}

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

/*
 * Launch the decode of nframes latents in lat into frames, on the compute
 * stream: latent2rgb's two kernels or the TAESD network.  Asynchronous
 * either way (TAESD's workspace was sized in job_begin).  0 or -errno.
 */
static int cb_decode(struct cuda_be *be, const struct egr_job_geom *g, const void *lat, uint8_t *frames,
		     uint32_t k, uint32_t nframes, char *err, size_t errlen)
{
	int rc = 0;

	if (g->decoder == EGR_DEC_TAESD) {
		char why[256];
		rc = egr_taesd_gpu_decode(be->taesd, be->s_compute, lat, g->dtype, nframes, g->lat_h, g->lat_w,
					  g->format, frames, why, sizeof(why));
		if (rc)
			egr_errf(err, errlen, "taesd decode(frame buffer %u, %u frames of %ux%u): %s", k, nframes,
				 g->width, g->height, why);
		return rc;
	}
	CU(egr_cuda_launch_l2r(&g->l2r, g->dtype, g->format, lat, be->lin, frames, nframes, g->lat_h, g->lat_w,
			       g->frame_bytes, be->s_compute),
	   "latent2rgb kernel launch(frame buffer %u, %u frames of %ux%u)", k, nframes, g->width, g->height);
	return 0;
fail:
	return rc;
}

/*
 * decoder = taesd, in job_begin: make be->taesd decode g->weights, then make
 * sure its workspace fits this job.
 *
 * Weights: loaded (taesd.c validates the file) and uploaded once, kept for
 * every later job that names the same path; another path replaces them.  A
 * file rewritten in place under the same path is not noticed until the
 * producer restarts (as with backend = cpu).
 *
 * Workspace: egr_taesd_gpu_decode allocates it on first use of a size and
 * synchronises its stream to grow it.  In a submit that would stall the
 * compute stream behind a host cudaMalloc (and count the stall as kernel
 * time), so a warm-up decode of a full chunk runs here instead, once per
 * (latent size, chunk) geometry per decoder: the workspace then fits every
 * chunk of the job (its need grows with the frame count), and the kernels'
 * modules are loaded.  Costs one chunk's decode, only for a new geometry.
 */
static int cb_taesd_prepare(struct cuda_be *be, const struct egr_job_geom *g, char *err, size_t errlen)
{
	struct egr_taesd *net = NULL;
	struct egr_taesd_gpu *tg = NULL;
	/* the largest submit of this job: a job shorter than a chunk never needs a full one */
	const uint32_t n = g->frames && g->frames < g->chunk_frames ? g->frames : g->chunk_frames;
	int rc = 0;

	if (!g->weights || !*g->weights) {
		egr_errf(err, errlen, "backend cuda: decoder = taesd needs a weights file (job key weights)");
		return -EINVAL;
	}
	if (!be->taesd || strcmp(be->taesd_path, g->weights) != 0) {
		unsigned long long t0 = egr_log_now_ns();
		if (strlen(g->weights) >= sizeof(be->taesd_path)) {
			egr_errf(err, errlen, "backend cuda: weights path \"%.60s...\" is too long", g->weights);
			return -ENAMETOOLONG;
		}
		rc = egr_taesd_load(g->weights, &net, err, errlen);
		if (rc)
			return rc;
		if (egr_taesd_channels(net) != g->channels) {
			egr_errf(err, errlen, "weights \"%s\" decode %u-channel latents; the latents have %u channels",
				 g->weights, egr_taesd_channels(net), g->channels);
			rc = -EINVAL;
			goto fail;
		}
		/* an aborted job may have left decodes queued that read the old weights */
		if (be->taesd)
			CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream)");
		rc = egr_taesd_gpu_create(net, be->device, &tg, err, errlen);
		if (rc)
			goto fail;
		egr_taesd_gpu_destroy(be->taesd);
		be->taesd = tg;
		tg = NULL;
		snprintf(be->taesd_path, sizeof(be->taesd_path), "%s", g->weights);
		be->taesd_channels = egr_taesd_channels(net);
		be->taesd_loads++;
		be->nwarm = be->warm_next = 0;
		egr_info("cuda: taesd weights \"%s\" (%u latent channels) loaded and uploaded in %.1f ms",
			 g->weights, be->taesd_channels, (egr_log_now_ns() - t0) / 1e6);
		egr_taesd_free(net);
		net = NULL;
	} else if (be->taesd_channels != g->channels) {
		egr_errf(err, errlen, "weights \"%s\" decode %u-channel latents; the latents have %u channels",
			 g->weights, be->taesd_channels, g->channels);
		return -EINVAL;
	}

	for (uint32_t i = 0; i < be->nwarm; i++)
		if (be->warm[i].h == g->lat_h && be->warm[i].w == g->lat_w && be->warm[i].n >= n)
			return 0;
	{
		unsigned long long t0 = egr_log_now_ns();
		struct cb_vbuf *b = &be->buf[0];
		size_t lbytes = (size_t)n * g->lat_frame_bytes;

		/* buffer 0 is idle between jobs; wait for it anyway, on the GPU, as a submit would */
		CU(cudaStreamSynchronize(be->s_upload), "cudaStreamSynchronize(upload stream)");
		if (b->used && be->s_d2h != be->s_compute)
			CU(cudaStreamWaitEvent(be->s_compute, b->copied, 0), "cudaStreamWaitEvent(compute stream, copied 0)");
		CU(cudaMemsetAsync(b->lat, 0, lbytes, be->s_compute), "cudaMemsetAsync(latent buffer 0, %zu bytes)", lbytes);
		rc = cb_decode(be, g, b->lat, b->frames, 0, n, err, errlen);
		if (rc)
			goto fail;
		CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream, taesd warm-up)");
		be->warm[be->warm_next].h = g->lat_h;
		be->warm[be->warm_next].w = g->lat_w;
		be->warm[be->warm_next].n = n;
		be->warm_next = (be->warm_next + 1) % CB_TAESD_WARM;
		if (be->nwarm < CB_TAESD_WARM)
			be->nwarm++;
		be->taesd_warmups++;
		egr_info("cuda: taesd warm-up for %u-frame chunks of %ux%u took %.1f ms", n, g->width,
			 g->height, (egr_log_now_ns() - t0) / 1e6);
	}
	return 0;
fail:
	egr_taesd_free(net);
	egr_taesd_gpu_destroy(tg);
	return rc;
}

static int cb_job_begin(void *vbe, const struct egr_job_geom *g, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	const int taesd = g->decoder == EGR_DEC_TAESD;
	int rc = 0;

	if (g->decoder != EGR_DEC_LATENT2RGB && !taesd) {
		egr_errf(err, errlen, "backend cuda: decoder %u is unknown", g->decoder);
		return -ENOTSUP;
	}
	if (g->dtype != EGR_DT_F16 && g->dtype != EGR_DT_F32) {
		egr_errf(err, errlen, "backend cuda: latent dtype %u is not float16 or float32", g->dtype);
		return -EINVAL;
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

	size_t fbytes = (size_t)g->chunk_frames * g->frame_bytes;
	size_t lbytes = (size_t)g->chunk_frames * g->lat_frame_bytes;
	size_t linb = taesd ? 0 : (size_t)g->chunk_frames * g->lat_h * g->lat_w * sizeof(float4);
	int grow = 0;
	for (uint32_t i = 0; i < be->nbuf; i++)
		grow |= be->buf[i].frames_cap < fbytes || be->buf[i].lat_cap < lbytes;
	grow |= be->lin_cap < linb;
	if (grow) {
		/* between jobs the queue is empty; the streams are idle or nearly */
		CU(cudaStreamSynchronize(be->s_upload), "cudaStreamSynchronize(upload stream)");
		CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream)");
		CU(cudaStreamSynchronize(be->s_copy), "cudaStreamSynchronize(copy stream)");
	}
	for (uint32_t i = 0; i < be->nbuf; i++) {
		struct cb_vbuf *b = &be->buf[i];
		if (b->frames_cap < fbytes) {
			if (b->frames)
				CU(cudaFree(b->frames), "cudaFree(frame buffer %u)", i);
			b->frames = NULL;
			b->frames_cap = 0;
			CU(cudaMalloc((void **)&b->frames, fbytes), "cudaMalloc(frame buffer %u, %zu bytes)", i, fbytes);
			b->frames_cap = fbytes;
		}
		if (b->lat_cap < lbytes) {
			if (b->lat)
				CU(cudaFree(b->lat), "cudaFree(latent buffer %u)", i);
			b->lat = NULL;
			b->lat_cap = 0;
			CU(cudaMalloc(&b->lat, lbytes), "cudaMalloc(latent buffer %u, %zu bytes)", i, lbytes);
			b->lat_cap = lbytes;
		}
	}
	if (be->lin_cap < linb) {
		if (be->lin)
			CU(cudaFree(be->lin), "cudaFree(linear-map scratch)");
		be->lin = NULL;
		be->lin_cap = 0;
		CU(cudaMalloc((void **)&be->lin, linb), "cudaMalloc(linear-map scratch, %zu bytes)", linb);
		be->lin_cap = linb;
	}
	if (taesd && (rc = cb_taesd_prepare(be, g, err, errlen)) < 0)
		return rc;

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
fail:
	return rc;
}

static void *cb_input_buffer(void *vbe, size_t bytes, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	uint32_t j = be->next_stage;
	struct cb_stage *s = &be->stage[j];
	int rc = 0;

	if (s->used)	/* its last upload must have read it */
		CU(cudaEventSynchronize(s->staged), "cudaEventSynchronize(upload from staging buffer %u)", j);
	if (s->cap < bytes) {
		size_t cap = (bytes + 65535) & ~(size_t)65535;
		if (s->h)
			CU(cudaFreeHost(s->h), "cudaFreeHost(staging buffer %u)", j);
		s->h = NULL;
		s->cap = 0;
		CU(cudaMallocHost(&s->h, cap), "cudaMallocHost(staging buffer %u, %zu bytes)", j, cap);
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

static int cb_submit(void *vbe, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	const struct egr_job_geom *g = &be->g;
	unsigned long long t0 = egr_log_now_ns(), tw = 0;
	int rc = 0, d2h_issued = 0;

	if (!be->in_job) {
		egr_errf(err, errlen, "backend cuda: submit outside a job");
		return -EINVAL;
	}
	if ((rc = cb_async_error(be, err, errlen)) < 0)
		return rc;
	if (!c->nframes || c->nframes > g->chunk_frames) {
		egr_errf(err, errlen, "backend cuda: chunk of %u frames (1..%u)", c->nframes, g->chunk_frames);
		return -EINVAL;
	}
	{
	const uint32_t k = be->next_buf;
	struct cb_vbuf *b = &be->buf[k];
	const size_t bytes = (size_t)c->nframes * g->frame_bytes;
	const size_t lbytes = (size_t)c->nframes * g->lat_frame_bytes;
	const uint8_t *dst = (const uint8_t *)c->dst, *base = (const uint8_t *)be->env.data_base;

	if (base && (dst < base || dst + bytes > base + be->env.data_len)) {
		egr_errf(err, errlen, "backend cuda: slot %u destination %p (+%zu) is outside the slot area",
			 c->slot, c->dst, bytes);
		return -EINVAL;
	}

	/*
	 * Backpressure: VRAM buffer k is free once its last D2H finished.  The
	 * compute stream waits for that on the GPU anyway; the host waits too
	 * so that it never runs more than nbuf chunks ahead of the copies.
	 */
	if (b->used) {
		unsigned long long w0 = egr_log_now_ns();
		CU(cudaEventSynchronize(b->copied), "cudaEventSynchronize(copy from frame buffer %u)", k);
		tw = egr_log_now_ns() - w0;
	}

	/* a queue entry: free unless the publisher lags by every slot (it cannot: slots bound it) */
	pthread_mutex_lock(&be->mu);
	while (be->qcount == be->qcap)
		pthread_cond_wait(&be->cv_done, &be->mu);
	struct cb_inflight *e = &be->q[(be->qhead + be->qcount) % be->qcap];
	pthread_mutex_unlock(&be->mu);

	/* upload: latent buffer k was last read by decode k */
	if (b->used)
		CU(cudaStreamWaitEvent(be->s_upload, b->decoded, 0), "cudaStreamWaitEvent(upload stream, decoded %u)", k);
	CU(cudaMemcpyAsync(b->lat, c->latents, lbytes, cudaMemcpyHostToDevice, be->s_upload),
	   "cudaMemcpyAsync(latent buffer %u <- staging, %zu bytes)", k, lbytes);
	if (c->latents == be->stage[be->cur_stage].h) {
		CU(cudaEventRecord(be->stage[be->cur_stage].staged, be->s_upload), "cudaEventRecord(staged %u)", be->cur_stage);
		be->stage[be->cur_stage].used = 1;
	}
	CU(cudaEventRecord(b->uploaded, be->s_upload), "cudaEventRecord(uploaded %u)", k);

	/* decode into frame buffer k once its latents are in and its last copy is out */
	CU(cudaStreamWaitEvent(be->s_compute, b->uploaded, 0), "cudaStreamWaitEvent(compute stream, uploaded %u)", k);
	if (b->used && be->s_d2h != be->s_compute)
		CU(cudaStreamWaitEvent(be->s_compute, b->copied, 0), "cudaStreamWaitEvent(compute stream, copied %u)", k);
	if (!be->job_started) {
		CU(cudaEventRecord(be->job_k0, be->s_compute), "cudaEventRecord(job start)");
		be->job_started = 1;
	}
	CU(cudaEventRecord(e->k0, be->s_compute), "cudaEventRecord(kernel start)");
	if ((rc = cb_decode(be, g, b->lat, b->frames, k, c->nframes, err, errlen)) < 0)
		goto fail;
	CU(cudaEventRecord(e->k1, be->s_compute), "cudaEventRecord(kernel end)");
	CU(cudaEventRecord(b->decoded, be->s_compute), "cudaEventRecord(decoded %u)", k);

	/* D2H straight into the slot */
	if (be->s_d2h != be->s_compute)
		CU(cudaStreamWaitEvent(be->s_d2h, e->k1, 0), "cudaStreamWaitEvent(copy stream, decoded %u)", k);
	CU(cudaEventRecord(e->c0, be->s_d2h), "cudaEventRecord(copy start)");
	d2h_issued = 1;
	CU(cudaMemcpyAsync(c->dst, b->frames, bytes, cudaMemcpyDeviceToHost, be->s_d2h),
	   "cudaMemcpyAsync(slot %u <- frame buffer %u, %zu bytes)", c->slot, k, bytes);
	CU(cudaEventRecord(e->c1, be->s_d2h), "cudaEventRecord(copy end)");
	CU(cudaEventRecord(b->copied, be->s_d2h), "cudaEventRecord(copied %u)", k);
	b->used = 1;
	be->next_buf = (k + 1) % be->nbuf;

	e->slot = c->slot;
	e->first = c->first_frame;
	e->nframes = c->nframes;
	e->bytes = bytes;
#ifdef EGR_TESTING
	/*
	 * Mutation hook for the GPU poison test: publish right after issuing
	 * the copy, without waiting for it -- the bug the publisher exists to
	 * prevent.  The test must see poison in such slots.
	 */
	e->early = be->fault_early_publish;
	if (e->early)
		be->env.publish(be->env.ctx, c->slot, c->first_frame, c->nframes, bytes);
#endif
	pthread_mutex_lock(&be->mu);
	be->qcount++;
	be->decode_ns += egr_log_now_ns() - t0;
	be->gpu_wait_ns += tw;
	pthread_cond_signal(&be->cv_work);
	pthread_mutex_unlock(&be->mu);
	return 0;
	}
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

/*
 * pipeline = naive: the loop every user starts with.  Upload, decode and
 * wait on the compute stream, then a legacy synchronous cudaMemcpy into
 * c->dst (pageable for naive: open did not register the slots).
 */
extern "C" int egr_cuda_naive_decode(void *vbe, const struct egr_chunk *c, char *err, size_t errlen)
{
	struct cuda_be *be = (struct cuda_be *)vbe;
	const struct egr_job_geom *g = &be->g;
	struct cb_vbuf *b = &be->buf[0];
	struct cb_inflight *e = &be->q[0];	/* the queue is unused on this path */
	unsigned long long t0 = egr_log_now_ns();
	int rc = 0;

	if (!be->in_job || !c->nframes || c->nframes > g->chunk_frames) {
		egr_errf(err, errlen, "backend cuda: naive decode of %u frames outside a job or over chunk_frames %u",
			 c->nframes, g->chunk_frames);
		return -EINVAL;
	}
	{
	const size_t bytes = (size_t)c->nframes * g->frame_bytes;
	const size_t lbytes = (size_t)c->nframes * g->lat_frame_bytes;

	if (!be->job_started) {
		CU(cudaEventRecord(be->job_k0, be->s_compute), "cudaEventRecord(job start)");
		be->job_started = 1;
	}
	/* stream-ordered upload: a legacy cudaMemcpy from pageable memory may return before the DMA lands */
	CU(cudaMemcpyAsync(b->lat, c->latents, lbytes, cudaMemcpyHostToDevice, be->s_compute),
	   "cudaMemcpyAsync(latent buffer 0 <- latents, %zu bytes)", lbytes);
	CU(cudaEventRecord(e->k0, be->s_compute), "cudaEventRecord(kernel start)");
	if ((rc = cb_decode(be, g, b->lat, b->frames, 0, c->nframes, err, errlen)) < 0)
		goto fail;
	CU(cudaEventRecord(e->k1, be->s_compute), "cudaEventRecord(kernel end)");
	CU(cudaStreamSynchronize(be->s_compute), "cudaStreamSynchronize(compute stream)");
	CU(cudaEventRecord(e->c0, 0), "cudaEventRecord(copy start)");
	CU(cudaMemcpy(c->dst, b->frames, bytes, cudaMemcpyDeviceToHost),
	   "cudaMemcpy(slot %u <- frame buffer 0, %zu bytes)", c->slot, bytes);
	CU(cudaEventRecord(e->c1, 0), "cudaEventRecord(copy end)");
	CU(cudaEventSynchronize(e->c1), "cudaEventSynchronize(copy end)");
	pthread_mutex_lock(&be->mu);
	be->kernel_ns += ev_ns(e->k0, e->k1);
	be->d2h_ns += ev_ns(e->c0, e->c1);
	be->d2h_bytes += bytes;
	be->wall_ns = ev_ns(be->job_k0, e->c1);
	be->decode_ns += egr_log_now_ns() - t0;
	be->chunks++;
	pthread_mutex_unlock(&be->mu);
	return 0;
	}
fail:
	return rc;
}

#if defined(EGR_TESTING)
/*
 * Test hook (tests/gpu/test_cuda_taesd.cu declares it): the current TAESD
 * decoder handle, how many times weights were loaded and uploaded since
 * open, and how many warm-up decodes ran.  Proves "once per producer".
 */
extern "C" const void *egr_cuda_test_taesd(void *vbe, uint32_t *loads, uint32_t *warmups)
{
	struct cuda_be *be = (struct cuda_be *)vbe;

	*loads = be->taesd_loads;
	*warmups = be->taesd_warmups;
	return be->taesd;
}
#endif

extern "C" const struct egr_backend_ops egr_backend_cuda = {
	"cuda", cb_open, cb_job_begin, cb_input_buffer, cb_submit, cb_job_end, cb_close,
};
