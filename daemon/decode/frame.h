/*
 * frame: the CPU reference for what a decoded frame is, bit for bit.
 *
 * latent2rgb: per latent pixel, rgb = bias + sum_c latent[c] * W[c][rgb]
 * (the standard cheap latent preview), then bilinear upsampling x8 with
 * half-pixel centres and edge clamping (PyTorch's align_corners=False), then
 * clamp to [-1, 1] and quantise: u8 = floor((v + 1) * 127.5 + 0.5).
 *
 * Exactness contract with the CUDA kernels: every float operation is a single
 * IEEE binary32 add or multiply in the order written in frame.c, compiled with
 * -ffp-contract=off (no fused multiply-add), and the GPU uses __fadd_rn and
 * __fmul_rn in the same order.  So GPU frames equal CPU frames exactly.
 *
 * Colour: y4m carries BT.601 limited-range ("studio swing") 4:2:0 with
 * centred chroma (C420jpeg), converted from the 8-bit RGB in integers:
 *   Y  = ((66 R + 129 G +  25 B + 128) >> 8) + 16
 *   Cb = ((-38 R - 74 G + 112 B + 128) >> 8) + 128     (R,G,B: 2x2 means,
 *   Cr = ((112 R - 94 G -  18 B + 128) >> 8) + 128      rounded: (s+2)>>2)
 * Frame layout: RGB24 interleaved for png; I420 (Y, then Cb, then Cr planes)
 * for y4m.  Width and height are even (every decoder upsamples x8).
 */
#ifndef EGR_FRAME_H
#define EGR_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "config/job.h"

#define EGR_L2R_SCALE 8

struct egr_l2r {
	uint32_t channels;	/* 1..EGR_L2R_MAX_CHANNELS */
	float w[EGR_L2R_MAX_CHANNELS * 3];	/* [channel][r,g,b] */
	float bias[3];
};

/*
 * Fill p from explicit coefficients (nweights = 0: the defaults, which exist
 * for 4-channel SD-style latents only).  0 or -EINVAL with err set.
 */
int egr_frame_l2r_init(struct egr_l2r *p, uint32_t channels, uint32_t nweights, const float *w,
		 int has_bias, const float *bias, char *err, size_t errlen);

/*
 * Fill p for a job: its l2r_preset (whose channel count must be the
 * latents'; the error names both) or else its l2r_weights / l2r_bias as
 * egr_frame_l2r_init takes them.  0 or -EINVAL with err set.
 */
int egr_frame_l2r_init_job(struct egr_l2r *p, uint32_t channels, const struct egr_jobspec *js, char *err,
			   size_t errlen);

/*
 * One latent frame, float32 [channels][lh][lw], to RGB24 [8lh][8lw][3].
 * The linear map is computed once per latent pixel (stage 1), then
 * interpolated (stage 2).  0 or -ENOMEM.
 */
int egr_frame_l2r(const struct egr_l2r *p, const float *lat, uint32_t lh, uint32_t lw, uint8_t *rgb);

/* RGB24 (w x h, even) to I420 (w*h*3/2 bytes). */
void egr_frame_rgb_to_i420(const uint8_t *rgb, uint32_t w, uint32_t h, uint8_t *yuv);

/* Bytes of one output frame for a format (enum egr_format). */
uint64_t egr_frame_bytes(uint32_t format, uint32_t w, uint32_t h);

/* float -> 8-bit code, the one quantiser every decoder shares */
static inline uint8_t egr_quant_u8(float v)
{
	if (!(v > -1.0f))	/* also NaN */
		v = -1.0f;
	if (v > 1.0f)
		v = 1.0f;
	float t = (v + 1.0f) * 127.5f;
	t = t + 0.5f;
	return (uint8_t)(int)t;	/* t >= 0.5: truncation is floor */
}

#endif
