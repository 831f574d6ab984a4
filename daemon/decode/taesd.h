/*
 * taesd: the TAESD decoder (the tiny autoencoder's decoder of the public
 * taesd.py) — network description, weight loading and validation, and the
 * plain fp32 CPU reference that CI runs and the GPU path is checked against.
 *
 * Network, as taesd.py's Decoder (nn.Sequential indices = tensor prefixes):
 *    0 Clamp: tanh(x / 3) * 3
 *    1 conv3x3(C -> 64) + 2 ReLU
 *    3,4,5 Block;  6 Upsample x2 (nearest);  7 conv3x3(64 -> 64, no bias)
 *    8,9,10 Block; 11 Upsample;  12 conv (no bias)
 *   13,14,15 Block; 16 Upsample; 17 conv (no bias)
 *   18 Block; 19 conv3x3(64 -> 3)
 * Block(x) = ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(x))))) + x), every conv 3x3
 * with padding 1 and bias.  Tensors: "1.weight" [64,C,3,3], "1.bias",
 * "{i}.conv.{0,2,4}.{weight,bias}", "7.weight", "12.weight", "17.weight",
 * "19.weight" [3,64,3,3], "19.bias".  C (latent channels, 1..64; 4 for
 * SD/SDXL, 16 for SD3/FLUX.1, 32 for FLUX.2) is read from "1.weight".
 *
 * Variant flux_2 (taesd.py's use_midblock_gn, the FLUX.2 decoder taef2):
 * each of Blocks 3, 4, 5 first adds a pool branch to its input,
 *    x = x + pool(x);  Block(x) as above, its skip being this new x;
 *    pool = Conv1x1(64 -> 256, no bias) . GroupNorm(4 groups of 64 channels,
 *           eps 1e-5, affine; statistics over the whole frame) . ReLU .
 *           Conv1x1(256 -> 64, no bias)
 * with tensors "{3,4,5}.pool.0.weight" [256,64,1,1], "{3,4,5}.pool.1.weight"
 * [256], "{3,4,5}.pool.1.bias" [256], "{3,4,5}.pool.3.weight" [64,256,1,1].
 *
 * Tensor names: taesd.py's ("1.weight", ...) or diffusers' AutoencoderTiny
 * ("decoder.layers.N-1...": diffusers' Sequential has no Clamp, so its
 * indices are taesd.py's minus one).  A file must hold exactly one known
 * decoder: every tensor of the plain or the flux_2 set (the variant is the
 * one whose pool tensors the file has), nothing else, except an "encoder.*"
 * half of a full checkpoint, which is skipped and counted in
 * egr_taesd.extra_tensors (for the caller's log line).  A missing or an
 * unknown tensor is an error naming the first few of them and their count.
 *
 * Input scale: the latents exactly as the diffusion model (UNet / DiT) sees
 * them, i.e. already multiplied by the VAE's scaling factor (and shifted, for
 * SD3/FLUX) — what a pipeline hands to vae.decode *before* it divides by
 * scaling_factor.  TAESD was trained on that scale (diffusers' AutoencoderTiny
 * has scaling_factor = 1.0 for this reason).  No scaling is applied here.
 *
 * Output: the raw decoder output is an image in [0, 1] (taesd.py users call
 * .clamp(0, 1); diffusers maps it to [-1, 1] afterwards).  egressd clamps the
 * raw value to [0, 1] (NaN -> 0) and quantises u8 = floor(v * 255 + 0.5),
 * computed as one binary32 multiply then one add (egr_taesd_quant_u8); the GPU
 * applies the same rule to its own (fp16-network) values.
 */
#ifndef EGR_TAESD_H
#define EGR_TAESD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EGR_TAESD_NCONV 35
#define EGR_TAESD_FEAT 64
#define EGR_TAESD_MAX_CHANNELS 64
#define EGR_TAESD_SCALE 8
/* flux_2's pool branch: on Blocks 3, 4, 5; 256 channels in 4 GroupNorm groups */
#define EGR_TAESD_NPOOL 3
#define EGR_TAESD_POOL_CH 256
#define EGR_TAESD_POOL_GROUPS 4
#define EGR_TAESD_POOL_EPS 1e-5

/* architectures a weights file may hold */
enum egr_taesd_variant {
	EGR_TAESD_PLAIN = 0,		/* taesd.py's Decoder */
	EGR_TAESD_FLUX2 = 1,		/* Decoder(use_midblock_gn=True): pool branch on Blocks 3, 4, 5 */
};

/* step flags */
enum {
	EGR_TAESD_RELU = 1,		/* ReLU after the conv (after the residual add, if any) */
	EGR_TAESD_UPSAMPLE = 2,		/* input is nearest-upsampled x2 before the conv */
	EGR_TAESD_RESIDUAL = 4,		/* add buffer `res` before the ReLU (end of a Block) */
	EGR_TAESD_POOL = 8,		/* first: src += pool[pool](src), in place (start of a flux_2 Block) */
};

/* activation buffers of the execution plan: 0..2 at up to full resolution */
enum { EGR_TAESD_BUF_IN = 3, EGR_TAESD_BUF_OUT = 4 };

/* One conv of the network, in execution order, with its place in the plan. */
struct egr_taesd_conv {
	char name[16];		/* tensor prefix: "1", "3.conv.0", "7", "19" */
	uint32_t cin, cout;
	uint32_t has_bias;
	uint32_t flags;		/* EGR_TAESD_RELU | UPSAMPLE | RESIDUAL | POOL */
	uint32_t src, dst, res;	/* buffers: 0..2, BUF_IN, BUF_OUT; res valid with RESIDUAL */
	uint32_t shift;		/* output resolution = latent << shift (0..3) */
	uint32_t pool;		/* index into egr_taesd.pool, valid with POOL */
	float *w;		/* [cout][cin][3][3], PyTorch's layout */
	float *b;		/* [cout], NULL without bias */
};

/* flux_2: one Block's pool branch (tensor prefix "3.pool", "4.pool", "5.pool") */
struct egr_taesd_pool {
	char name[16];
	float *w0;		/* "N.pool.0.weight": [256][64] (the 1x1 taps of [256,64,1,1]) */
	float *gamma, *beta;	/* "N.pool.1.weight", "N.pool.1.bias": [256] */
	float *w3;		/* "N.pool.3.weight": [64][256] */
};

struct egr_taesd {
	uint32_t channels;	/* latent channels C */
	uint32_t variant;	/* enum egr_taesd_variant */
	uint32_t extra_tensors;	/* "encoder.*" tensors of a full checkpoint, skipped */
	uint32_t file_dtype;	/* enum egr_st_dtype of "1.weight" */
	struct egr_taesd_conv conv[EGR_TAESD_NCONV];
	uint32_t npool;		/* 0 (plain) or EGR_TAESD_NPOOL (flux_2) */
	struct egr_taesd_pool pool[EGR_TAESD_NPOOL];
};

/*
 * Fill net->conv[] and net->pool[] with names, shapes and the plan for C
 * latent channels (no weights).  Used by the loader, the generator and the
 * tests.  egr_taesd_describe is the plain variant.
 */
void egr_taesd_describe(struct egr_taesd *net, uint32_t channels);
void egr_taesd_describe_variant(struct egr_taesd *net, uint32_t channels, uint32_t variant);

/* "plain" or "flux_2" (for log lines) */
const char *egr_taesd_variant_name(uint32_t variant);

/*
 * Load and validate a decoder's weights (F16, BF16 or F32) into fp32 host
 * memory.  The file's tensor names must be exactly one variant's set (see
 * above); every tensor must have exactly the expected shape and finite
 * values.  0, or -errno / -EINVAL with err naming the file and the tensors:
 *   weights "/w.safetensors": tensor '13.conv.2.weight' has shape [64,32,3,3], expected [64,64,3,3]
 *   weights "/w.safetensors": tensors '3.pool.1.bias', '4.pool.1.bias' (2 in all) are missing; ...
 * On success net->extra_tensors counts the skipped "encoder.*" tensors; a
 * caller should log it when non-zero.
 */
int egr_taesd_load(const char *path, struct egr_taesd **out, char *err, size_t errlen);
void egr_taesd_free(struct egr_taesd *net);

static inline uint32_t egr_taesd_channels(const struct egr_taesd *net)
{
	return net->channels;
}

/*
 * Decode one frame on the CPU in fp32: lat is [C][h][w], rgb receives the
 * raw network output [3][8h][8w] (not clamped).  Single-threaded, scratch
 * allocated per call (three 64-channel fp32 planes at full resolution: 193
 * floats per output pixel, 308 MB for 832x480).  0, -EINVAL or -ENOMEM.
 */
int egr_taesd_decode_cpu(const struct egr_taesd *net, const float *lat, uint32_t h, uint32_t w, float *rgb,
			 char *err, size_t errlen);

/* The quantiser: clamp to [0, 1] (NaN -> 0), then floor(v * 255 + 0.5). */
static inline uint8_t egr_taesd_quant_u8(float v)
{
	if (!(v > 0.0f))
		v = 0.0f;
	if (v > 1.0f)
		v = 1.0f;
	float t = v * 255.0f;
	t = t + 0.5f;
	return (uint8_t)(int)t;
}

/* Planar raw output [3][h][w] to RGB24 interleaved [h][w][3]. */
void egr_taesd_to_rgb24(const float *rgb, uint32_t h, uint32_t w, uint8_t *out);

/*
 * Write seeded random decoder weights with the public names and shapes
 * (He-style initialisation, scaled so activations neither explode nor die
 * through the ten residual blocks and the output mostly lands in [0, 1]).
 * dtype: EGR_ST_F16 or EGR_ST_F32.  Same seed, same file, on any machine.
 * egr_taesd_write_random writes the plain variant; _variant also flux_2
 * (pool tensors in taesd.py's order, after each Block's convs).
 */
int egr_taesd_write_random(const char *path, uint32_t channels, uint64_t seed, uint32_t dtype, char *err,
			   size_t errlen);
int egr_taesd_write_random_variant(const char *path, uint32_t channels, uint32_t variant, uint64_t seed,
				   uint32_t dtype, char *err, size_t errlen);

/* The seeded generator behind it, shared with tools (splitmix64 + Box-Muller). */
struct egr_taesd_rng {
	uint64_t s;
	int has_spare;
	double spare;
};
void egr_taesd_rng_seed(struct egr_taesd_rng *r, uint64_t seed);
double egr_taesd_rng_normal(struct egr_taesd_rng *r);

#ifdef __cplusplus
}
#endif

#endif
