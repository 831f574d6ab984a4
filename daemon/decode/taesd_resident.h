/*
 * taesd_resident: one TAESD GPU decoder (taesd_cuda.h) kept resident for a
 * whole process, as the CUDA backend uses it for decoder = taesd.
 *
 * Weights: loaded (taesd.c validates the file) and uploaded once, kept for
 * every later job that names the same path; another path replaces them.  A
 * file rewritten in place under the same path is not noticed until the
 * process restarts (as with backend = cpu).  A refused file leaves the
 * resident decoder in place.
 *
 * Workspace: egr_taesd_gpu_decode allocates it on first use of a size and
 * synchronises its stream to grow it.  In a steady-state decode that would
 * stall the stream behind a host cudaMalloc (and count the stall as kernel
 * time), so the caller runs one warm-up decode of a full chunk before a job
 * of a new (latent size, chunk) geometry: the workspace then fits every
 * chunk of the job (its need grows with the frame count), and the kernels'
 * modules are loaded.  The last EGR_TAESD_RESIDENT_WARM geometries are
 * remembered; new weights forget them.
 *
 * Functions return 0 or -errno with err naming the failing call or file.
 */
#ifndef EGR_TAESD_RESIDENT_H
#define EGR_TAESD_RESIDENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;
struct egr_taesd_gpu;

#define EGR_TAESD_RESIDENT_WARM 8	/* geometries whose workspace need is known to fit */

/* zero-initialised: nothing resident yet */
struct egr_taesd_resident {
	struct egr_taesd_gpu *gpu;	/* NULL until the first load */
	char *path;			/* the weights file gpu decodes (malloc) */
	uint32_t channels;		/* latent channels of those weights */
	uint32_t loads, warmups;	/* since zeroed: tests read them */
	struct {
		uint32_t h, w, n;	/* latent size, frames decoded at once */
	} warm[EGR_TAESD_RESIDENT_WARM];
	uint32_t nwarm, warm_next;
};

/*
 * Make r decode the weights at path, for latents of channels channels, on
 * device.  Nothing to do if r already holds the weights key names (the
 * file's identity: its user path, device, inode, size and mtime).  Otherwise the file is
 * loaded and uploaded; stream (where r's decodes run) is synchronised before
 * the old weights go, since an aborted job may have left decodes queued that
 * read them.  -EINVAL when the weights decode another channel count.
 */
int egr_taesd_resident_load(struct egr_taesd_resident *r, const char *path, const char *key, uint32_t channels,
			    int device, struct CUstream_st *stream, char *err, size_t errlen);

/* 1 when r decoded n frames of h x w latents at once since its weights came */
int egr_taesd_resident_is_warm(const struct egr_taesd_resident *r, uint32_t h, uint32_t w, uint32_t n);

/*
 * The warm-up: zero d_lat (n latent frames of lat_frame_bytes, device
 * memory, free for r to write), decode it into d_out on stream, wait for
 * it, and remember the geometry.  Blocks for one chunk's decode.  The
 * caller orders stream after any earlier use of d_lat and d_out.
 */
int egr_taesd_resident_warm_up(struct egr_taesd_resident *r, struct CUstream_st *stream, void *d_lat,
			       uint64_t lat_frame_bytes, uint32_t dtype, uint32_t n, uint32_t h, uint32_t w,
			       uint32_t format, void *d_out, char *err, size_t errlen);

/* Free the GPU decoder; r is then empty.  No decode may still be queued. */
void egr_taesd_resident_release(struct egr_taesd_resident *r);

#ifdef __cplusplus
}
#endif

#endif
