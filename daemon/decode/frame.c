/*
 * frame: CPU latent2rgb and RGB -> I420.  Built with -ffp-contract=off: the
 * CUDA kernels reproduce these operations one for one (see frame.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/job.h"
#include "daemon/decode/frame.h"
#include "config/l2r_preset.h"
#include "daemon/base/log.h"

/* the defaults for 4-channel latents: SD 1.x's, the widely used set */
#define L2R_DEFAULT_PRESET "sd15"

int egr_frame_l2r_init(struct egr_l2r *p, uint32_t channels, uint32_t nweights, const float *w,
		 int has_bias, const float *bias, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (channels == 0 || channels > EGR_L2R_MAX_CHANNELS) {
		egr_errf(err, errlen, "latent2rgb: %u latent channels; 1 to %u are supported", channels,
			 EGR_L2R_MAX_CHANNELS);
		return -EINVAL;
	}
	p->channels = channels;
	if (nweights) {
		if (nweights != channels * 3) {
			egr_errf(err, errlen,
				 "latent2rgb: l2r_weights has %u values; latents have %u channels, so it needs %u (3 per channel)",
				 nweights, channels, channels * 3);
			return -EINVAL;
		}
		memcpy(p->w, w, sizeof(float) * nweights);
	} else {
		if (channels != 4) {
			egr_errf(err, errlen,
				 "latent2rgb: latents have %u channels and default coefficients exist for 4 only: set l2r_weights (%u values) in the job",
				 channels, channels * 3);
			return -EINVAL;
		}
		memcpy(p->w, egr_l2r_preset_get(egr_l2r_preset_id(L2R_DEFAULT_PRESET))->w, sizeof(float) * 4 * 3);
	}
	if (has_bias)
		memcpy(p->bias, bias, sizeof(p->bias));
	return 0;
}

int egr_frame_l2r_init_job(struct egr_l2r *p, uint32_t channels, const struct egr_jobspec *js, char *err,
			   size_t errlen)
{
	const struct egr_l2r_preset *pr;

	if (!js->l2r_preset)
		return egr_frame_l2r_init(p, channels, js->l2r_nweights, js->l2r_weights, (int)js->l2r_has_bias,
					  js->l2r_bias, err, errlen);
	memset(p, 0, sizeof(*p));
	pr = egr_l2r_preset_get(js->l2r_preset);
	if (!pr) {
		egr_errf(err, errlen, "latent2rgb: l2r_preset %u does not exist", js->l2r_preset);
		return -EINVAL;
	}
	if (pr->channels != channels) {
		egr_errf(err, errlen,
			 "latent2rgb: l2r_preset = %s is for %u-channel latents; the latents have %u channels",
			 pr->name, pr->channels, channels);
		return -EINVAL;
	}
	p->channels = channels;
	memcpy(p->w, pr->w, sizeof(float) * 3 * channels);
	memcpy(p->bias, pr->bias, sizeof(p->bias));
	return 0;
}

/*
 * Source coordinate for output index o at scale 8, align_corners=False:
 * s = (o + 0.5) / 8 - 0.5 = (2o - 7) / 16, exact in binary32.  Mirrored on
 * purpose in l2r_cuda.cuh's egr_d_src: GPU frames equal CPU frames byte for
 * byte only while the two stay the same arithmetic.
 */
static inline void l2r_src(uint32_t o, uint32_t n, uint32_t *i0, uint32_t *i1, float *f)
{
	int num = 2 * (int)o - 7;	/* s = num / 16 */
	if (num <= 0) {
		*i0 = *i1 = 0;
		*f = 0.0f;
		return;
	}
	uint32_t i = (uint32_t)num >> 4;
	*f = (float)(num & 15) * 0.0625f;
	if (i >= n - 1) {
		*i0 = *i1 = n - 1;
		*f = 0.0f;
		return;
	}
	*i0 = i;
	*i1 = i + 1;
}

int egr_frame_l2r(const struct egr_l2r *p, const float *lat, uint32_t lh, uint32_t lw, uint8_t *rgb)
{
	const size_t plane = (size_t)lh * lw;
	const uint32_t oh = lh * EGR_L2R_SCALE, ow = lw * EGR_L2R_SCALE;
	float *lin = malloc(plane * 3 * sizeof(float));

	if (!lin)
		return -ENOMEM;
	/* stage 1: the linear map at latent resolution */
	for (size_t i = 0; i < plane; i++) {
		for (int k = 0; k < 3; k++) {
			float a = p->bias[k];
			for (uint32_t c = 0; c < p->channels; c++)
				a = a + lat[c * plane + i] * p->w[c * 3 + k];
			lin[i * 3 + k] = a;
		}
	}
	/* stage 2: bilinear x8, quantise */
	for (uint32_t oy = 0; oy < oh; oy++) {
		uint32_t y0, y1;
		float fy;
		l2r_src(oy, lh, &y0, &y1, &fy);
		for (uint32_t ox = 0; ox < ow; ox++) {
			uint32_t x0, x1;
			float fx;
			l2r_src(ox, lw, &x0, &x1, &fx);
			const float *v00 = lin + ((size_t)y0 * lw + x0) * 3, *v01 = lin + ((size_t)y0 * lw + x1) * 3;
			const float *v10 = lin + ((size_t)y1 * lw + x0) * 3, *v11 = lin + ((size_t)y1 * lw + x1) * 3;
			uint8_t *o = rgb + ((size_t)oy * ow + ox) * 3;
			for (int k = 0; k < 3; k++) {
				float top = v00[k] + (v01[k] - v00[k]) * fx;
				float bot = v10[k] + (v11[k] - v10[k]) * fx;
				o[k] = egr_quant_u8(top + (bot - top) * fy);
			}
		}
	}
	free(lin);
	return 0;
}

void egr_frame_rgb_to_i420(const uint8_t *rgb, uint32_t w, uint32_t h, uint8_t *yuv)
{
	uint8_t *yp = yuv, *up = yuv + (size_t)w * h, *vp = up + (size_t)(w / 2) * (h / 2);

	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *s = rgb + (size_t)y * w * 3;
		for (uint32_t x = 0; x < w; x++) {
			int r = s[3 * x], g = s[3 * x + 1], b = s[3 * x + 2];
			yp[(size_t)y * w + x] = (uint8_t)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
		}
	}
	for (uint32_t y = 0; y < h / 2; y++) {
		const uint8_t *s0 = rgb + (size_t)(2 * y) * w * 3, *s1 = s0 + (size_t)w * 3;
		for (uint32_t x = 0; x < w / 2; x++) {
			const uint8_t *a = s0 + 6 * x, *b = s1 + 6 * x;
			int r = (a[0] + a[3] + b[0] + b[3] + 2) >> 2;
			int g = (a[1] + a[4] + b[1] + b[4] + 2) >> 2;
			int bl = (a[2] + a[5] + b[2] + b[5] + 2) >> 2;
			up[(size_t)y * (w / 2) + x] = (uint8_t)(((-38 * r - 74 * g + 112 * bl + 128) >> 8) + 128);
			vp[(size_t)y * (w / 2) + x] = (uint8_t)(((112 * r - 94 * g - 18 * bl + 128) >> 8) + 128);
		}
	}
}

uint64_t egr_frame_bytes(uint32_t format, uint32_t w, uint32_t h)
{
	if (format == EGR_FMT_Y4M)
		return (uint64_t)w * h + 2ull * (w / 2) * (h / 2);
	return (uint64_t)w * h * 3;
}
