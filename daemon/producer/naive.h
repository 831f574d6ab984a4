/*
 * naive: the pipeline = naive baseline ([bench] pipeline, docs/BENCHMARKS.md),
 * the loop every user starts with.  The producer's naive job loop reads a
 * chunk, calls this, writes the frames itself and repeats: no overlap
 * anywhere, which is what the full pipeline is measured against.
 */
#ifndef EGR_NAIVE_H
#define EGR_NAIVE_H

#include <stddef.h>

#include "daemon/producer/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Decode chunk c on the CUDA backend's compute stream and cudaMemcpy() it
 * synchronously to c->dst (pageable: with pipeline = naive, open did not
 * register the slots); returns once the bytes are there and does not
 * publish.  be comes from egr_backend_cuda.open, between job_begin and
 * job_end, which reports the stats; c->latents may be any host memory.
 * 0 or -errno (-ENODEV in a build without CUDA).
 */
int egr_naive_cuda_decode(void *be, const struct egr_chunk *c, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
