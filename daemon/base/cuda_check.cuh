/*
 * cuda_check: CUDA runtime errors the egressd way (log.h): -errno, and err
 * holding "call(object): reason".  For .cu files only.
 *
 * Everything here has internal linkage (as in l2r_cuda.cuh): each
 * translation unit gets its own copy and nothing clashes at link time.
 */
#ifndef EGR_CUDA_CHECK_CUH
#define EGR_CUDA_CHECK_CUH

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <cuda_runtime.h>

extern "C" {
#include "daemon/base/log.h"
}

/* -ENODEV: no usable GPU or driver; -ENOMEM; -EINVAL; -EIO for the rest */
static inline int egr_cuda_errno(cudaError_t e)
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

/* err = "<fmt...>: <CUDA's reason>"; returns egr_cuda_errno(e) */
static inline int egr_cuda_fail(cudaError_t e, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int egr_cuda_fail(cudaError_t e, char *err, size_t errlen, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	egr_errf(err, errlen, "%s: %s", what, cudaGetErrorString(e));
	return egr_cuda_errno(e);
}

/*
 * EGR_CU(call, "what(%u)", ...): on failure set rc and err and goto fail.
 * The caller provides int rc, char *err, size_t errlen and a fail: label.
 */
#define EGR_CU(call, ...)                                                      \
	do {                                                                   \
		cudaError_t e_ = (call);                                       \
		if (e_ != cudaSuccess) {                                       \
			rc = egr_cuda_fail(e_, err, errlen, __VA_ARGS__);      \
			goto fail;                                             \
		}                                                              \
	} while (0)

#endif
