/*
 * backend_nocuda: egr_backend_cuda for builds without CUDA (make CUDA=0).
 *
 * The producer links the same symbols either way; here every entry point
 * says why the GPU backend is missing, so `backend = cuda` fails with a
 * clear -ENODEV and `backend = auto` falls back to the CPU.
 */
#include <errno.h>
#include <stddef.h>

#include "daemon/producer/backend.h"
#include "daemon/base/log.h"

static const char nocuda_msg[] = "egressd was built without CUDA (CUDA=0)";

static int nc_open(const struct egr_backend_env *env, void **be, char *err, size_t errlen)
{
	*be = NULL;
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

static int nc_job_begin(void *be, const struct egr_job_geom *g, char *err, size_t errlen)
{
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

static void *nc_input_buffer(void *be, size_t bytes, char *err, size_t errlen)
{
	egr_errf(err, errlen, "%s", nocuda_msg);
	return NULL;
}

static int nc_submit(void *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

static int nc_job_end(void *be, int abort, struct egr_backend_stats *st, char *err, size_t errlen)
{
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

static void nc_close(void *be)
{
}

int egr_cuda_naive_decode(void *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

const struct egr_backend_ops egr_backend_cuda = {
	.name = "cuda",
	.open = nc_open,
	.job_begin = nc_job_begin,
	.input_buffer = nc_input_buffer,
	.submit = nc_submit,
	.job_end = nc_job_end,
	.close = nc_close,
};
