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
 * SD/SDXL, 16 for SD3/FLUX) is read from "1.weight".  The same names with
 * diffusers' "decoder.layers." prefix are accepted too.  Tensors outside
 * this set are ignored (a file may carry an encoder or extra metadata); their
 * count is in egr_taesd.extra_tensors.
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

/* step flags */
enum {
	EGR_TAESD_RELU = 1,		/* ReLU after the conv (after the residual add, if any) */
	EGR_TAESD_UPSAMPLE = 2,		/* input is nearest-upsampled x2 before the conv */
	EGR_TAESD_RESIDUAL = 4,		/* add buffer `res` before the ReLU (end of a Block) */
};

/* activation buffers of the execution plan: 0..2 at up to full resolution */
enum { EGR_TAESD_BUF_IN = 3, EGR_TAESD_BUF_OUT = 4 };

/* One conv of the network, in execution order, with its place in the plan. */
struct egr_taesd_conv {
	char name[16];		/* tensor prefix: "1", "3.conv.0", "7", "19" */
	uint32_t cin, cout;
	uint32_t has_bias;
	uint32_t flags;		/* EGR_TAESD_RELU | UPSAMPLE | RESIDUAL */
	uint32_t src, dst, res;	/* buffers: 0..2, BUF_IN, BUF_OUT; res valid with RESIDUAL */
	uint32_t shift;		/* output resolution = latent << shift (0..3) */
	float *w;		/* [cout][cin][3][3], PyTorch's layout */
	float *b;		/* [cout], NULL without bias */
};

struct egr_taesd {
	uint32_t channels;	/* latent channels C */
	uint32_t extra_tensors;	/* tensors in the file that the decoder does not use */
	uint32_t file_dtype;	/* enum egr_st_dtype of "1.weight" */
	struct egr_taesd_conv conv[EGR_TAESD_NCONV];
};

/*
 * Fill net->conv[] with names, shapes and the plan for C latent channels
 * (no weights).  Used by the loader, the generator and the tests.
 */
void egr_taesd_describe(struct egr_taesd *net, uint32_t channels);

/*
 * Load and validate a decoder's weights (F16, BF16 or F32) into fp32 host
 * memory.  Every expected tensor must be present with exactly the expected
 * shape and finite values.  0, or -errno / -EINVAL with err naming the file
 * and the tensor:
 *   weights "/w.safetensors": tensor '13.conv.2.weight' has shape [64,32,3,3], expected [64,64,3,3]
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
 * allocated per call (about 800 * h * w floats).  0, -EINVAL or -ENOMEM.
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
 */
int egr_taesd_write_random(const char *path, uint32_t channels, uint64_t seed, uint32_t dtype, char *err,
			   size_t errlen);

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
