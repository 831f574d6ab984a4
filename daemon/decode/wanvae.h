/*
 * wanvae: the Wan video VAE decoder (diffusers' AutoencoderKLWan, decoder
 * half) — configuration inferred from a diffusers safetensors file, weight
 * validation, a plain fp32 streaming CPU decoder (the oracle that CI runs and
 * a GPU path is checked against), the latent de-normalisation of the Wan
 * pipelines and a seeded weight generator.  docs/WANVAE.md has the details.
 *
 * Two configurations, both as diffusers builds them (WanDecoder3d):
 *   Wan 2.1 (also the VAE of Wan 2.2 14B, Skyreels, and Qwen-Image's
 *   AutoencoderKLQwenImage, same layers and tensor names): z_dim 16,
 *   decoder_base_dim 96, plain up blocks ("upsamplers.0"), the first resnet
 *   of every up block after the first taking half the channels;
 *   Wan 2.2 5B: z_dim 48, decoder_base_dim 256, is_residual (up blocks with a
 *   DupUp3D shortcut, "upsampler"), 12 output channels unpatchified 2x2.
 * Both: dim_mult [1,2,4,4], num_res_blocks 2, time upsampling in the first
 * two up blocks.  Every shape is read from the file, so reduced widths
 * (decoder_base_dim 8) work the same way — that is what the tests use.
 *
 * Decoder (per latent frame, as diffusers' _decode feeds it):
 *   post_quant_conv (1x1x1) -> conv_in (causal 3x3x3) -> mid block (resnet,
 *   single-head spatial attention per frame, resnet) -> up blocks (resnets,
 *   then Resample: upsample3d = time conv (3x1x1, C -> 2C, frames doubled)
 *   and nearest x2 + conv3x3; upsample2d = nearest x2 + conv3x3; Wan 2.2 adds
 *   the DupUp3D shortcut of the block's input) -> RMS norm, SiLU, conv_out
 *   (causal 3x3x3) -> unpatchify (Wan 2.2) -> clamp to [-1, 1].
 * resnet(x) = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x),
 * norm(x) = x / max(||x||_channels, 1e-12) * sqrt(C) * gamma.
 *
 * Causal semantics (diffusers' feat_cache with CACHE_T = 2, exactly): every
 * 3-D conv sees the sequence of its inputs over the whole video with two zero
 * frames before the first; the stream keeps the last two input frames of each
 * such conv.  The time conv of an upsample3d skips the frames that come from
 * the first latent frame (diffusers' "Rep" marker): the first latent frame
 * gives one output frame, every later one 1 << n_temporal (4), so T latent
 * frames decode to 1 + 4 (T - 1) frames.  Wan 2.2's DupUp3D shortcut drops
 * its first factor_t - 1 frames on the first latent frame to match.
 *
 * Tensors (diffusers layout): post_quant_conv.* and decoder.*; every one the
 * configuration needs must be there with its exact shape, F32, BF16 or F16,
 * finite; a decoder.* or post_quant_conv.* tensor the configuration does not
 * use refuses the file (named).  encoder.* and quant_conv.* (the encoder
 * half) are skipped and counted; any other tensor refuses the file.
 */
#ifndef EGR_WANVAE_H
#define EGR_WANVAE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/decode/taesd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EGR_WANVAE_MAX_UP 6		/* up blocks (len(dim_mult)) */
#define EGR_WANVAE_MAX_RES 8		/* resnets per up block (num_res_blocks + 1) */
#define EGR_WANVAE_MAX_Z 256		/* latent channels */
#define EGR_WANVAE_MAX_DIM 4096		/* channels of any layer */
#define EGR_WANVAE_MAX_PARAMS 512
#define EGR_WANVAE_MAX_SLOTS 64		/* causal convs with a time cache */

/* The decoder's hyper-parameters, named as in diffusers' config. */
struct egr_wanvae_cfg {
	uint32_t z_dim;			/* latent channels: 16 (Wan 2.1), 48 (Wan 2.2 5B) */
	uint32_t dim;			/* decoder_base_dim: 96, 256 */
	uint32_t n_up;			/* len(dim_mult): 4 */
	uint32_t dim_mult[EGR_WANVAE_MAX_UP];	/* config order: [1, 2, 4, 4] */
	uint32_t num_res_blocks;	/* 2 */
	/* temperal_upsample, decoder order (= temperal_downsample reversed):
	 * [1, 1, 0]; entry i for up block i, i < n_up - 1 */
	uint32_t temporal[EGR_WANVAE_MAX_UP];
	uint32_t is_residual;		/* Wan 2.2: WanResidualUpBlock */
	uint32_t patch;			/* 1, or 2 (Wan 2.2: patch_size 2) */
};

/* A convolution, PyTorch's layout [cout][cin][kt][ks][ks] (kt = 1 for 2-D). */
struct egr_wanvae_conv {
	uint32_t cin, cout, kt, ks;
	int32_t slot;			/* time-cache slot of a causal kt = 3 conv, else -1 */
	float *w, *b;
};

struct egr_wanvae_resnet {
	uint32_t cin, cout;
	float *gamma1, *gamma2;		/* [cin], [cout] */
	struct egr_wanvae_conv conv1, conv2;
	struct egr_wanvae_conv shortcut;	/* 1x1x1; w == NULL when cin == cout */
};

enum { EGR_WANVAE_UP_NONE = 0, EGR_WANVAE_UP_2D = 2, EGR_WANVAE_UP_3D = 3 };

struct egr_wanvae_up {
	uint32_t cin, cout, nres, mode;	/* mode: EGR_WANVAE_UP_* */
	struct egr_wanvae_resnet res[EGR_WANVAE_MAX_RES];
	struct egr_wanvae_conv resample;	/* nearest x2 then this 3x3: cout -> up_out */
	struct egr_wanvae_conv time_conv;	/* upsample3d: 3x1x1, cout -> 2 cout */
	uint32_t up_out;		/* channels after the block */
	uint32_t dup_ft, dup_repeats;	/* is_residual with an upsampler: DupUp3D; else 0 */
};

struct egr_wanvae {
	struct egr_wanvae_cfg cfg;
	uint32_t file_dtype;		/* enum egr_st_dtype of decoder.conv_in.weight */
	uint32_t skipped_tensors;	/* encoder.* and quant_conv.* tensors in the file */
	uint32_t nparams;		/* tensors used */
	uint32_t nslots;		/* causal convs with a time cache */
	uint32_t time_factor;		/* frames per latent frame after the first: 4 */
	uint32_t scale;			/* output pixels per latent pixel: 8 (2.1), 16 (2.2) */
	struct egr_wanvae_conv post_quant, conv_in, conv_out;
	struct egr_wanvae_resnet mid[2];
	float *attn_gamma;
	struct egr_wanvae_conv attn_qkv, attn_proj;	/* 1x1: C -> 3C, C -> C */
	struct egr_wanvae_up up[EGR_WANVAE_MAX_UP];
	float *norm_out_gamma;
};

/* One tensor the configuration needs: its name, shape and home in the net. */
struct egr_wanvae_param {
	char name[96];
	uint32_t ndim;
	uint64_t shape[5];
	float **dst;
};

/*
 * The presets: "2.1" (z 16, dim 96) and "2.2" (z 48, dim 256, residual,
 * patch 2); dim and z_dim may then be changed (tests use dim 8).  0 or -EINVAL.
 */
int egr_wanvae_cfg_preset(struct egr_wanvae_cfg *cfg, const char *name);

/*
 * Check cfg and describe the network it builds: net's layers get their
 * shapes (no weights), params[] the tensors in module order.  Returns the
 * number of tensors, or -EINVAL with err saying which rule cfg breaks.
 */
int egr_wanvae_describe(struct egr_wanvae *net, const struct egr_wanvae_cfg *cfg, struct egr_wanvae_param *params,
			uint32_t maxp, char *err, size_t errlen);

/* "z_dim 16, dim 96, dim_mult [1,2,4,4], res 2, temporal [1,1,0], plain, patch 1" */
char *egr_wanvae_cfg_str(const struct egr_wanvae_cfg *cfg, char *buf, size_t len);

/*
 * Load a diffusers AutoencoderKLWan safetensors file (or its decoder half):
 * configuration inferred from names and shapes, then every tensor checked.
 * 0, or -errno / -EINVAL with err naming the file and the tensor:
 *   weights "/w.safetensors": tensor 'decoder.up_blocks.1.resnets.0.conv1.weight' is missing (z_dim 16, ...)
 */
int egr_wanvae_load(const char *path, struct egr_wanvae **out, char *err, size_t errlen);
void egr_wanvae_free(struct egr_wanvae *net);

/* Frames decoded from T latent frames: 1 + time_factor (T - 1), 0 for T = 0. */
uint32_t egr_wanvae_out_frames(const struct egr_wanvae *net, uint32_t T);

/*
 * The streaming decoder.  State: two input frames per causal conv (at that
 * conv's resolution) and a frame counter — flat in video length.  Scratch is
 * allocated per feed.  net must outlive its streams; a net may serve several
 * streams (it is only read).
 */
struct egr_wanvae_stream;

int egr_wanvae_stream_create(const struct egr_wanvae *net, uint32_t lat_h, uint32_t lat_w,
			     struct egr_wanvae_stream **out, char *err, size_t errlen);

/* Frames that feeding n more latent frames produces (1 + 4 (n - 1) first, then 4 n). */
uint32_t egr_wanvae_stream_out_frames(const struct egr_wanvae_stream *s, uint32_t n);

/* Output frame size: height and width in pixels (latent size * net->scale). */
void egr_wanvae_stream_size(const struct egr_wanvae_stream *s, uint32_t *height, uint32_t *width);

/*
 * Decode n latent frames lat [n][z_dim][lat_h][lat_w] (as the pipeline hands
 * them to vae.decode: de-normalised).  out receives
 * egr_wanvae_stream_out_frames(s, n) frames [3][H][W], RGB planar, float,
 * clamped to [-1, 1] as diffusers does (NaN passes through); *nout their
 * count.  The result does not depend on how the video is split into feeds.
 * 0, -EINVAL (after flush, bad input) or -ENOMEM; a failed feed leaves the
 * stream unusable (every later feed fails).
 */
int egr_wanvae_stream_feed(struct egr_wanvae_stream *s, const float *lat, uint32_t n, float *out, uint32_t *nout,
			   char *err, size_t errlen);

/*
 * End of the video.  The decoder is causal and emits every frame on the feed
 * that completes it, so nothing is pending: *nout = 0.  Later feeds fail.
 */
int egr_wanvae_stream_flush(struct egr_wanvae_stream *s, uint32_t *nout);
void egr_wanvae_stream_free(struct egr_wanvae_stream *s);

/*
 * To 8-bit: v = (x + 1) / 2 (exact but for the one rounding of x + 1), then
 * TAESD's quantiser: clamp to [0, 1] (NaN -> 0), floor(v * 255 + 0.5).
 */
static inline uint8_t egr_wanvae_quant_u8(float x)
{
	return egr_taesd_quant_u8((x + 1.0f) * 0.5f);
}

/* Planar [3][h][w] in [-1, 1] to RGB24 interleaved [h][w][3]. */
void egr_wanvae_to_rgb24(const float *rgb, uint32_t h, uint32_t w, uint8_t *out);

/*
 * Latent de-normalisation of the Wan pipelines (wan_denormalize = yes):
 * x = x / (1 / std) + mean per channel, in binary32 as pipeline_wan.py
 * computes it (latents / (1.0 / latents_std) + latents_mean).
 * lat is [n][C][hw].
 */
void egr_wanvae_denormalize(float *lat, uint32_t n, uint32_t C, size_t hw, const float *mean, const float *std);

/*
 * Built-in latents_mean / latents_std for C = 16 (AutoencoderKLWan's
 * defaults, Wan 2.1) and C = 48 (Wan 2.2 5B, vae22_diffusers_config of
 * diffusers' scripts/convert_wan_to_diffusers.py).  0, or -ENOENT.
 */
int egr_wanvae_builtin_stats(uint32_t C, const float **mean, const float **std);

/*
 * latents_mean / latents_std of a diffusers vae/config.json, C values each
 * (z_dim checked when present), into mean and std.  0 or -errno / -EINVAL.
 */
int egr_wanvae_config_stats(const char *path, uint32_t C, float *mean, float *std, char *err, size_t errlen);

/*
 * Write seeded random weights in the diffusers layout (post_quant_conv.* and
 * decoder.*) for cfg, scaled so activations stay O(1) and the decoded video
 * mostly lands inside (-1, 1).  dtype EGR_ST_F16 or EGR_ST_F32.  Same seed,
 * same file.
 */
int egr_wanvae_write_random(const char *path, const struct egr_wanvae_cfg *cfg, uint64_t seed, uint32_t dtype,
			    char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
