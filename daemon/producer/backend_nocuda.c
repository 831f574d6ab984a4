/*
 * backend_nocuda: egr_backend_cuda for builds without CUDA (make CUDA=0).
 *
 * The producer links the same symbols either way.  open says why the GPU
 * backend is missing, so `backend = cuda` fails with a clear -ENODEV and
 * `backend = auto` falls back to the CPU.  Since open never succeeds, no
 * other entry point can be reached: the producer calls them only on a
 * backend it opened.  egr_naive_cuda_decode is here only to link.
 */
#include <errno.h>
#include <stddef.h>

#include "daemon/producer/backend.h"
#include "daemon/producer/naive.h"
#include "daemon/base/log.h"

static const char nocuda_msg[] = "egressd was built without CUDA (CUDA=0)";

static int nc_open(const struct egr_backend_env *env, void **be, char *err, size_t errlen)
{
	*be = NULL;
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

int egr_naive_cuda_decode(void *be, const struct egr_chunk *c, char *err, size_t errlen)
{
	egr_errf(err, errlen, "%s", nocuda_msg);
	return -ENODEV;
}

const struct egr_backend_ops egr_backend_cuda = {
	.name = "cuda",
	.open = nc_open,
};
