/*
 * l2r_preset: latent2rgb coefficients by model family (job key l2r_preset),
 * the ones the community publishes and uses for cheap latent previews.
 *
 * Every preset is ComfyUI's comfy/latent_formats.py (Comfy-Org/ComfyUI):
 * the class's latent_rgb_factors (one row of r, g, b per latent channel)
 * and latent_rgb_factors_bias (0, 0, 0 where the class has none), copied
 * digit for digit; l2r_preset.c names the class of each.  ComfyUI applies
 * them as egressd does (frame.h): rgb = bias + sum_c latent[c] * W[c], read
 * as [-1, 1], to the latents the diffusion model works on (after the
 * family's process_in: e.g. Wan's per-channel normalisation), which is what
 * samplers and pipelines hand out.
 *
 * A preset fixes the channel count: latents with another count are refused
 * (frame.c names both).  Presets for VAEs that compress more than 8x
 * spatially (wan22, hunyuan15: 16x; ltxv: 32x) still give 8x-upsampled
 * frames, a preview smaller than the video.
 */
#ifndef EGR_L2R_PRESET_H
#define EGR_L2R_PRESET_H

#include <stddef.h>
#include <stdint.h>

struct egr_l2r_preset {
	const char *name;	/* the job file's l2r_preset value */
	uint32_t channels;
	const float *w;		/* [channels][r, g, b] */
	float bias[3];
};

/* The id of the preset called name (1, 2, ...), 0 if there is none. */
uint32_t egr_l2r_preset_id(const char *name);

/* The preset with that id, NULL for 0 or an id that does not exist. */
const struct egr_l2r_preset *egr_l2r_preset_get(uint32_t id);

/* "sd15, sdxl, ..." into buf, for messages. */
void egr_l2r_preset_names(char *buf, size_t len);

#endif
