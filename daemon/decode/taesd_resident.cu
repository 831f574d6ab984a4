/*
 * taesd_resident: the TAESD GPU decoder kept across jobs (weights uploaded
 * once per file, workspace warmed once per geometry); see taesd_resident.h.
 *
 * May touch: the weights file a job names (read only), the device memory
 * and stream its caller hands in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "daemon/base/cuda_check.cuh"
#include "daemon/decode/taesd.h"
#include "daemon/decode/taesd_cuda.h"
#include "daemon/decode/taesd_resident.h"

static int channels_differ(const char *path, uint32_t have, uint32_t want, char *err, size_t errlen)
{
	egr_errf(err, errlen, "weights \"%s\" decode %u-channel latents; the latents have %u channels", path, have,
		 want);
	return -EINVAL;
}

extern "C" int egr_taesd_resident_load(struct egr_taesd_resident *r, const char *path, const char *key,
				       uint32_t channels, int device, struct CUstream_st *stream, char *err,
				       size_t errlen)
{
	unsigned long long t0 = egr_log_now_ns();
	struct egr_taesd *net = NULL;
	struct egr_taesd_gpu *tg = NULL;
	char *copy = NULL;
	int rc = 0;

	if (r->gpu && !strcmp(r->path, key))
		return r->channels == channels ? 0 : channels_differ(path, r->channels, channels, err, errlen);
	rc = egr_taesd_load(path, &net, err, errlen);
	if (rc)
		return rc;
	if (egr_taesd_channels(net) != channels) {
		rc = channels_differ(path, egr_taesd_channels(net), channels, err, errlen);
		goto fail;
	}
	copy = strdup(key);
	if (!copy) {
		egr_errf(err, errlen, "strdup(weights path \"%s\"): %s", path, strerror(ENOMEM));
		rc = -ENOMEM;
		goto fail;
	}
	/* an aborted job may have left decodes queued that read the old weights */
	if (r->gpu)
		EGR_CU(cudaStreamSynchronize(stream), "cudaStreamSynchronize(decode stream, before new taesd weights)");
	rc = egr_taesd_gpu_create(net, device, &tg, err, errlen);
	if (rc)
		goto fail;
	egr_taesd_gpu_destroy(r->gpu);
	free(r->path);
	r->gpu = tg;
	r->path = copy;
	r->channels = channels;
	r->loads++;
	r->nwarm = r->warm_next = 0;
	egr_info("cuda: taesd weights %s (%u latent channels) loaded and uploaded in %.1f ms", key, channels,
		 (egr_log_now_ns() - t0) / 1e6);
	egr_taesd_free(net);
	return 0;
fail:
	free(copy);
	egr_taesd_free(net);
	return rc;
}

extern "C" int egr_taesd_resident_is_warm(const struct egr_taesd_resident *r, uint32_t h, uint32_t w, uint32_t n)
{
	for (uint32_t i = 0; i < r->nwarm; i++)
		if (r->warm[i].h == h && r->warm[i].w == w && r->warm[i].n >= n)
			return 1;
	return 0;
}

extern "C" int egr_taesd_resident_warm_up(struct egr_taesd_resident *r, struct CUstream_st *stream, void *d_lat,
					  uint64_t lat_frame_bytes, uint32_t dtype, uint32_t n, uint32_t h,
					  uint32_t w, uint32_t format, void *d_out, char *err, size_t errlen)
{
	unsigned long long t0 = egr_log_now_ns();
	size_t lbytes = (size_t)n * lat_frame_bytes;
	char why[256];
	int rc = 0;

	if (!r->gpu) {
		egr_errf(err, errlen, "taesd warm-up: no weights loaded");
		return -EINVAL;
	}
	EGR_CU(cudaMemsetAsync(d_lat, 0, lbytes, stream), "cudaMemsetAsync(taesd warm-up latents, %zu bytes)", lbytes);
	rc = egr_taesd_gpu_decode(r->gpu, stream, d_lat, dtype, n, h, w, format, d_out, why, sizeof(why));
	if (rc) {
		egr_errf(err, errlen, "taesd decode(warm-up, %u frames of %ux%u): %s", n, 8 * w, 8 * h, why);
		return rc;
	}
	EGR_CU(cudaStreamSynchronize(stream), "cudaStreamSynchronize(decode stream, taesd warm-up)");
	r->warm[r->warm_next].h = h;
	r->warm[r->warm_next].w = w;
	r->warm[r->warm_next].n = n;
	r->warm_next = (r->warm_next + 1) % EGR_TAESD_RESIDENT_WARM;
	if (r->nwarm < EGR_TAESD_RESIDENT_WARM)
		r->nwarm++;
	r->warmups++;
	egr_info("cuda: taesd warm-up for %u-frame chunks of %ux%u took %.1f ms", n, 8 * w, 8 * h,
		 (egr_log_now_ns() - t0) / 1e6);
	return 0;
fail:
	return rc;
}

extern "C" void egr_taesd_resident_release(struct egr_taesd_resident *r)
{
	egr_taesd_gpu_destroy(r->gpu);
	free(r->path);
	memset(r, 0, sizeof(*r));
}
