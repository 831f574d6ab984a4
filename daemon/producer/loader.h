/*
 * loader.h: a chunk's latents read by several threads at once.
 *
 * Why: reading latents from the page cache is a memcpy on one core, about
 * 6 GB/s on the H100 machine, and the producer's loop does it between two
 * submits.  In the copy-bound regime (latent2rgb at 1024², format = null:
 * 1.5 MiB of frames leave the GPU for every 128 KiB of latents read) that
 * read was 58% of the job's wall time (issue 12, docs/BENCHMARKS.md,
 * "bench-copy").  The pool splits a chunk into contiguous frame ranges, one
 * per thread (the caller takes the first), each read with egr_npy_read and
 * checked for NaN/Inf by the thread that read it.
 *
 * Results do not depend on the thread count: the bytes are egr_npy_read's,
 * and when ranges fail, the lowest range's error or first non-finite value
 * is the one reported, exactly as one thread reading in order would.
 *
 * One caller at a time (the producer's job loop).  The helper threads block
 * every signal: the producer's handlers run on its main thread.
 */
#ifndef EGR_LOADER_H
#define EGR_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/formats/npy.h"

#define EGR_LOADER_MAX_THREADS 64

struct egr_loader;

/*
 * A pool of `threads` readers (1..EGR_LOADER_MAX_THREADS; the caller is one
 * of them, so 1 starts no thread).  0 or -errno with err set.
 */
int egr_loader_new(unsigned threads, struct egr_loader **out, char *err, size_t errlen);
/* Stops and joins the threads.  NULL is fine. */
void egr_loader_free(struct egr_loader *l);

/*
 * Read frames [first, first+count) of n into dst (count * n->frame_bytes
 * bytes) and check them (n->dtype elements, what egr_npy_read delivers).
 * 0; -EDOM with *bad the index in dst of the
 * first NaN or Inf (err untouched); or egr_npy_read's -errno with its err.
 * Frames are never split between threads: a chunk of fewer frames than
 * threads uses fewer threads.
 */
int egr_loader_read(struct egr_loader *l, struct egr_npy *n, uint64_t first, uint64_t count, void *dst,
		    size_t *bad, char *err, size_t errlen);

#endif
