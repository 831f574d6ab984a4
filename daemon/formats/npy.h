/*
 * npy: reads latents from NumPy .npy files (format 1.0, 2.0 and 3.0), what
 * numpy.save and torch users already write.
 *
 * Accepted: little-endian float16 ('<f2') or float32 ('<f4'), C order,
 * 4 dimensions [frames, channels, height, width].  Everything is validated
 * before a byte of data is read: magic, header length, the header dict,
 * dtype, order, shape and that the file holds every byte the shape promises
 * (a truncated file is an error, not a short read later).
 */
#ifndef EGR_NPY_H
#define EGR_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/base/half.h"
#include "daemon/base/vocab.h"


struct egr_npy {
	int fd;
	uint32_t dtype;		/* enum egr_dtype */
	uint64_t shape[4];	/* frames, channels, height, width */
	uint64_t data_off;	/* first data byte in the file */
	uint64_t frame_bytes;	/* channels*height*width*elem */
};

/* Open and validate path.  0 or -errno/-EINVAL with err set. */
int egr_npy_open(const char *path, struct egr_npy *n, char *err, size_t errlen);
/* pread frames [first, first+count) into dst (count*frame_bytes bytes). */
int egr_npy_read(struct egr_npy *n, uint64_t first, uint64_t count, void *dst, char *err, size_t errlen);
void egr_npy_close(struct egr_npy *n);

/*
 * 0 if all count elements are finite, else -EDOM with *bad the index of the
 * first NaN or Inf.
 */
int egr_npy_check_finite(uint32_t dtype, const void *p, size_t count, size_t *bad);

/*
 * Write a float32 or float16 .npy file of shape [f,c,h,w] from float data
 * (for tools and tests).
 */
int egr_npy_write(const char *path, uint32_t dtype, const uint64_t shape[4], const float *data,
		  char *err, size_t errlen);

#endif
