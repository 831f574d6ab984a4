/*
 * quant_cuda: egr_taesd_quant_u8 (taesd.h) on the device, operation for
 * operation: clamp to [0, 1] (NaN -> 0), one multiply by 255 and one add of
 * 0.5, each rounded to nearest (no FMA), truncated.  Every GPU decoder's
 * last step to 8-bit codes (TAESD, and gnet's for TAEHV and the Wan VAE).
 */
#ifndef EGR_QUANT_CUDA_CUH
#define EGR_QUANT_CUDA_CUH

#include <stdint.h>

static __device__ __forceinline__ uint8_t egr_d_quant01(float v)
{
	if (!(v > 0.0f))
		v = 0.0f;
	if (v > 1.0f)
		v = 1.0f;
	float t = __fadd_rn(__fmul_rn(v, 255.0f), 0.5f);
	return (uint8_t)__float2int_rz(t);
}

#endif
