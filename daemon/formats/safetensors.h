/*
 * safetensors: a validating reader (and a small writer) for the safetensors
 * format, the weights format of the public TAESD decoders.
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON (an
 * object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an optional "__metadata__" object of strings), then the data section;
 * offsets are relative to the data section's first byte.
 *
 * Everything is checked when the file is opened, before any tensor byte is
 * read: N is sane (8..100 MB and within the file), the JSON parses (jansson,
 * duplicate keys rejected), every entry has a known dtype, a shape of at most
 * EGR_ST_MAX_DIMS non-negative dimensions, and a byte range inside the data
 * section whose length is exactly numel * element size.  Tensor data is read
 * with pread, never mmap: a file truncated after open is an error (-EIO), not
 * a SIGBUS.
 *
 * Error strings name the file and the tensor, e.g.
 *   weights "/w.safetensors": tensor '1.weight': data_offsets [0, 96] hold 96 bytes, shape [64,4,3,3] F16 needs 4608
 */
#ifndef EGR_SAFETENSORS_H
#define EGR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/base/half.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EGR_ST_MAX_DIMS 8
#define EGR_ST_MAX_NAME 128
#define EGR_ST_MAX_HEADER (100u * 1024 * 1024)
#define EGR_ST_MAX_TENSORS 4096

/* value = element size in bytes for the float types we convert */
enum egr_st_dtype {
	EGR_ST_OTHER = 0,	/* a valid safetensors dtype we cannot convert (I8, U32, ...) */
	EGR_ST_F16 = 1,
	EGR_ST_BF16 = 2,
	EGR_ST_F32 = 3,
};

struct egr_st_tensor {
	char name[EGR_ST_MAX_NAME];
	char dtype_name[8];	/* as in the file: "F16", "I64", ... */
	uint32_t dtype;		/* enum egr_st_dtype */
	uint32_t elem;		/* bytes per element */
	uint32_t ndim;
	uint64_t shape[EGR_ST_MAX_DIMS];
	uint64_t numel;
	uint64_t begin, end;	/* byte range within the data section */
};

struct egr_st {
	int fd;
	char path[1024];
	uint64_t file_size;
	uint64_t data_off;	/* 8 + N */
	uint64_t data_len;
	uint32_t ntensors;
	struct egr_st_tensor *t;
};

/*
 * Open and validate a safetensors file.  0, or -errno / -EINVAL with err
 * naming the file (and the tensor, where one is at fault).
 */
int egr_st_open(const char *path, struct egr_st **out, char *err, size_t errlen);

/* The tensor called name, or NULL. */
const struct egr_st_tensor *egr_st_find(const struct egr_st *st, const char *name);

/*
 * Read a F16, BF16 or F32 tensor into dst (numel floats), converting exactly.
 * 0, -EINVAL (not a float type), or -EIO / -errno (short or failed read).
 */
int egr_st_read_f32(const struct egr_st *st, const struct egr_st_tensor *t, float *dst, char *err,
		    size_t errlen);

/* "[64,4,3,3]" into buf (for messages); returns buf. */
char *egr_st_shape_str(const uint64_t *shape, uint32_t ndim, char *buf, size_t len);

void egr_st_close(struct egr_st *st);

/* A tensor to write: float data converted to dtype (EGR_ST_F16 or EGR_ST_F32). */
struct egr_st_wtensor {
	const char *name;
	uint32_t dtype;
	uint32_t ndim;
	uint64_t shape[EGR_ST_MAX_DIMS];
	const float *data;
};

/*
 * Write a safetensors file (tools and tests): header padded to 8 bytes,
 * tensors in the given order, written to path.tmp then renamed.
 */
int egr_st_write(const char *path, const struct egr_st_wtensor *ts, uint32_t n, char *err, size_t errlen);


#ifdef __cplusplus
}
#endif

#endif
