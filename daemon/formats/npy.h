/*
 * npy: reads latents from NumPy .npy files (format 1.0, 2.0 and 3.0), what
 * numpy.save and torch users already write, and from .safetensors files,
 * where bfloat16 latents live (bfloat16 is not a numpy dtype).
 *
 * Accepted .npy: little-endian float16 ('<f2') or float32 ('<f4'), C order.
 * Accepted .safetensors: one F32, F16 or BF16 tensor, or the one a key names.
 * Which of the two a file is, is read from its first bytes, not its name.
 *
 * Shapes and layouts (enum egr_layout): 4-D [frames, channels, h, w] (tchw)
 * or 5-D [batch, channels, frames, h, w] (bcthw: diffusers, Wan, Hunyuan)
 * or [batch, frames, channels, h, w] (btchw); EGR_LAYOUT_AUTO takes tchw
 * for 4-D and bcthw for 5-D.  A batch larger than 1 is refused: one job is
 * one video.  Whatever the layout, egr_npy_read delivers frames of
 * [channels][h][w], contiguous, and the struct's shape reads frames,
 * channels, height, width; bfloat16 is delivered as float32 (exactly).
 *
 * Everything is validated before a byte of data is read: magic, header
 * length, the header, dtype, order, rank and layout, and that the file holds
 * every byte the shape promises (a truncated file is an error, not a short
 * read later).
 */
#ifndef EGR_NPY_H
#define EGR_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/base/half.h"
#include "daemon/base/vocab.h"


struct egr_npy {
	int fd;
	uint32_t dtype;		/* enum egr_dtype of the frames egr_npy_read delivers */
	uint64_t shape[4];	/* frames, channels, height, width, whatever the layout */
	uint64_t data_off;	/* first byte of the tensor in the file */
	uint64_t frame_bytes;	/* channels*height*width*dtype: one delivered frame */
	/* how the file holds it: egr_npy_read's business */
	uint32_t layout;	/* enum egr_layout, never AUTO once open */
	uint32_t src_elem;	/* bytes per stored element */
	uint32_t src_bf16;	/* stored as bfloat16, delivered as float32 */
};

/*
 * Open and validate path: .npy or .safetensors, layout (enum egr_layout;
 * AUTO: by rank), key (a .safetensors tensor name; NULL or "": the file's
 * only tensor).  0 or -errno/-EINVAL with err set.
 */
int egr_npy_open_as(const char *path, uint32_t layout, const char *key, struct egr_npy *n, char *err,
		    size_t errlen);
/* egr_npy_open_as(path, EGR_LAYOUT_AUTO, NULL, ...) */
int egr_npy_open(const char *path, struct egr_npy *n, char *err, size_t errlen);
/*
 * Read frames [first, first+count) into dst (count*frame_bytes bytes) as
 * [count][channels][height][width]; a bcthw file is gathered with one
 * vectored pread per channel.  0, or -EINVAL / -EIO / -errno with err set.
 */
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
/* The same for any shape of 1 to 8 dimensions (C order). */
int egr_npy_write_nd(const char *path, uint32_t dtype, unsigned ndim, const uint64_t *shape, const float *data,
		     char *err, size_t errlen);

#endif
