/*
 * taehv: the TAEHV tiny video decoders (madebyollin/taehv, taehv.py, MIT) —
 * network description, weight loading with exact validation, a stateful
 * streaming fp32 CPU decoder (the reference CI runs and GPU kernels are
 * checked against) and a seeded weight generator in the public layout.
 *
 * Network, as taehv.py's TAEHV.decoder (nn.Sequential index = tensor prefix
 * "decoder.N."), n_f = 256, 128, 64, 64:
 *    0 Clamp: tanh(x / 3) * 3
 *    1 conv3x3(C -> 256) + 2 ReLU
 *    3,4,5    MemBlock(256);  6 Upsample;  7 TGrow(256);  8 conv3x3(256 -> 128, no bias)
 *    9,10,11  MemBlock(128); 12 Upsample; 13 TGrow(128); 14 conv3x3(128 -> 64, no bias)
 *   15,16,17  MemBlock(64);  18 Upsample; 19 TGrow(64);  20 conv3x3(64 -> 64, no bias)
 *   21 ReLU; 22 conv3x3(64 -> 3 p^2); then pixel-shuffle by p and clamp to [0, 1]
 * MemBlock(x, past) = ReLU(conv.4(ReLU(conv.2(ReLU(conv.0([x, past])))))
 * + x), conv.0 over the 2n channels of x and past concatenated (x first),
 * every conv 3x3 padding 1 with bias; past = this block's input at the
 * previous time step, zeros at the first.  Upsample k: nearest x2 if
 * decoder_space_upscale[k] (else x1).  TGrow k: 1x1 conv (no bias) from n to
 * stride*n channels, stride = 2 if decoder_time_upscale[k] else 1; output
 * channels [j*n, (j+1)*n) are time step j of the stride consecutive frames.
 * A file's TGrow weight with more rows than the layer needs is cut to its
 * LAST rows (the last time step), as taehv.py's patch_tgrow_layers does.
 *
 * Tensors: "decoder.1.weight" [256,C,3,3] + bias; "decoder.{3..5,9..11,
 * 15..17}.conv.{0,2,4}.{weight,bias}"; "decoder.{7,13,19}.conv.weight"
 * [stride*n,n,1,1]; "decoder.{8,14,20}.weight"; "decoder.22.weight"
 * [3p^2,64,3,3] + bias: 64 tensors.  "encoder.*" tensors (a full TAEHV
 * checkpoint) are skipped and counted (egr_taehv.encoder_tensors, for the
 * caller's log).  Any other tensor, a missing one, a wrong shape, a dtype
 * other than F16/BF16/F32 or a non-finite value is an error naming it.  The
 * "super" decoder variant (taew2_2_super, taehv1_5_super: "decoder.0.weight",
 * ConvNeXt-style SuperMemBlocks) is refused by name.
 *
 * Models.  taehv.py keys its choices on the checkpoint's file name; egressd
 * takes the model instead and checks the file against it (C from
 * decoder.1.weight, p from decoder.22.weight; a mismatch is an error):
 *    model      public file            C    p  decoder_time_upscale
 *    wan21      taew2_1                16    1  F,T,T   (also Wan 2.2 14B, Qwen Image)
 *    wan22      taew2_2               48    2  F,T,T   (Wan 2.2 5B)
 *    hunyuan    taehv                  16    1  F,T,T
 *    hunyuan15  taehv1_5               32    2  F,T,T
 *    ltx2       taeltx_2, taeltx2_3   128    4  T,T,T   (fixed: taehv.py ignores the argument)
 *    cogvideox  taecvx                 16    1  F,T,T   (frame-trim quirk)
 *    opensora   taeos1_3               16    1  F,T,T
 * decoder_space_upscale defaults to T,T,T.  Both may be overridden per stage
 * (struct egr_taehv_cfg), as taehv.py's constructor arguments allow, for a
 * cheaper preview.
 *
 * Frames: t_upscale = 2^(number of TGrow with stride 2); every latent frame
 * gives t_upscale decoder frames, and the first frames_to_trim = t_upscale - 1
 * of the sequence are dropped, as decode_video does — except for cogvideox
 * when the latent frame count is even (decode_video's skip_trim).  Wan 2.1:
 * 16 latent frames -> 64 - 3 = 61.  Output size: (h, w) * 2^(spatial
 * upsamples) * p.
 *
 * Input scale: the latents the diffusion model sees (TAEHV applies no
 * latents_mean / latents_std).  Output: RGB planar [3][H][W] clamped to
 * [0, 1] (NaN stays NaN; egr_taesd_quant_u8 / egr_taesd_to_rgb24 map it to
 * 0), i.e. the TAESD path's convention: quantise with egr_taesd_to_rgb24.
 */
#ifndef EGR_TAEHV_H
#define EGR_TAEHV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EGR_TAEHV_NCONV 35	/* conv layers of the decoder */
#define EGR_TAEHV_NTENSORS 64	/* decoder tensors of a file */
#define EGR_TAEHV_NSTAGE 3	/* MemBlock x3, Upsample, TGrow, conv */
#define EGR_TAEHV_NMEM 9	/* MemBlocks */
#define EGR_TAEHV_MAX_DIM 4096	/* latent height / width */

enum egr_taehv_model {
	EGR_TAEHV_WAN21,
	EGR_TAEHV_WAN22,
	EGR_TAEHV_HUNYUAN,
	EGR_TAEHV_HUNYUAN15,
	EGR_TAEHV_LTX2,
	EGR_TAEHV_COGVIDEOX,
	EGR_TAEHV_OPENSORA,
	EGR_TAEHV_NMODELS
};

/* Conv index in egr_taehv.conv[]: decoder.1, then per stage s 3 MemBlocks x
 * conv.{0,2,4}, TGrow, stage conv; decoder.22 last. */
#define EGR_TAEHV_CONV_FIRST 0
#define EGR_TAEHV_CONV_MEM(s, m, j) (1 + 11 * (s) + 3 * (m) + (j))
#define EGR_TAEHV_CONV_TGROW(s) (1 + 11 * (s) + 9)
#define EGR_TAEHV_CONV_STAGE(s) (1 + 11 * (s) + 10)
#define EGR_TAEHV_CONV_LAST 34

/* What to build: the model and taehv.py's per-stage switches. */
struct egr_taehv_cfg {
	uint32_t model;			/* enum egr_taehv_model */
	int8_t time_upscale[3];		/* decoder_time_upscale: -1 model default, 0 off, 1 on */
	int8_t space_upscale[3];	/* decoder_space_upscale: -1 default (on), 0, 1 */
};

struct egr_taehv_conv {
	char name[24];		/* tensor prefix: "decoder.1", "decoder.3.conv.0", "decoder.7.conv" */
	uint32_t cin, cout;	/* cout: rows the layer uses */
	uint32_t ksize;		/* 3 (padding 1) or 1 */
	uint32_t has_bias;
	uint32_t file_cout;	/* rows in the file (TGrow: >= cout, a multiple of cin) */
	float *w;		/* [cout][cin][k][k], PyTorch's layout */
	float *b;		/* [cout], NULL without bias */
};

struct egr_taehv {
	uint32_t model;
	uint32_t channels;	/* latent channels C */
	uint32_t patch;		/* pixel-shuffle p */
	uint32_t tstride[EGR_TAEHV_NSTAGE];	/* TGrow strides (1 or 2) */
	uint32_t sscale[EGR_TAEHV_NSTAGE];	/* Upsample factors (1 or 2) */
	uint32_t t_upscale;	/* product of tstride */
	uint32_t frames_to_trim;	/* t_upscale - 1 */
	uint32_t encoder_tensors;	/* "encoder.*" tensors skipped */
	uint32_t file_dtype;	/* enum egr_st_dtype of decoder.1.weight */
	struct egr_taehv_conv conv[EGR_TAEHV_NCONV];
};

/* "wan21" -> EGR_TAEHV_WAN21; 0 or -EINVAL. */
int egr_taehv_model_parse(const char *s, uint32_t *model);
/* "wan21"; the public file name "taew2_1"; NULL for an unknown model. */
const char *egr_taehv_model_name(uint32_t model);
const char *egr_taehv_model_file(uint32_t model);
/* The model's latent channels and patch size (0 for an unknown model). */
uint32_t egr_taehv_model_channels(uint32_t model);
uint32_t egr_taehv_model_patch(uint32_t model);

/* cfg for model with every switch at taehv.py's default. */
void egr_taehv_cfg_init(struct egr_taehv_cfg *cfg, uint32_t model);

/*
 * Fill net's plan (names, shapes, strides; no weights) for cfg, C latent
 * channels and patch p.  -EINVAL (err set) for a bad model or switch.
 */
int egr_taehv_describe(struct egr_taehv *net, const struct egr_taehv_cfg *cfg, uint32_t channels, uint32_t patch,
		       char *err, size_t errlen);

/*
 * Load and validate a decoder's weights (F16, BF16 or F32) into fp32 host
 * memory for a model at its defaults (egr_taehv_load) or for cfg.  0, or
 * -errno / -EINVAL with err naming the file and the tensor(s), e.g.
 *   weights "/w.safetensors": not a TAEHV decoder: missing 'decoder.22.bias'; unknown 'decoder.23.weight'
 *   weights "/w.safetensors": tensor 'decoder.1.weight' has shape [256,16,3,3]: 16 latent channels, but taehv_model wan22 (taew2_2) has 48
 */
int egr_taehv_load(const char *path, uint32_t model, struct egr_taehv **out, char *err, size_t errlen);
int egr_taehv_load_cfg(const char *path, const struct egr_taehv_cfg *cfg, struct egr_taehv **out, char *err,
		       size_t errlen);
void egr_taehv_free(struct egr_taehv *net);

/* Output frames for t_latent latent frames, exactly as decode_video. */
uint64_t egr_taehv_out_frames(const struct egr_taehv *net, uint64_t t_latent);
/* Output size for an h x w latent. */
void egr_taehv_out_size(const struct egr_taehv *net, uint32_t h, uint32_t w, uint32_t *out_h, uint32_t *out_w);

/*
 * The streaming decoder, taehv.py's StreamingTAEHV / sequential work queue:
 * latent frames are fed in order, in chunks of any size; each one is decoded
 * as soon as it arrives, depth first through every TGrow split, so each
 * latent frame yields its t_upscale frames (less the trimmed start) within
 * its feed call.  State: per MemBlock its previous input, so memory is flat in
 * video length.  The same frames come out, bit for bit, whatever the chunking.
 *
 * t_total: the job's latent frame count, or 0 when unknown.  cogvideox needs
 * it (whether the start is trimmed depends on its parity); with it, feeding
 * more than t_total frames and flushing after fewer are errors, so a
 * producer's planned frame offsets cannot drift.
 *
 * emit is called once per output frame, in order, with its index among the
 * output frames (0 ..  egr_taehv_out_frames - 1) and the frame, planar
 * [3][H][W] in [0, 1], valid during the call.  A negative return stops the
 * feed and is returned.  After any error the stream only accepts _free.
 */
struct egr_taehv_stream;
typedef int (*egr_taehv_emit_fn)(void *ctx, uint64_t index, const float *rgb, uint32_t out_h, uint32_t out_w);

/* 0, -EINVAL (bad size, cogvideox without t_total) or -ENOMEM. */
int egr_taehv_stream_create(const struct egr_taehv *net, uint32_t h, uint32_t w, uint64_t t_total,
			    struct egr_taehv_stream **out, char *err, size_t errlen);
/* lat: n latent frames [n][C][h][w]; *produced (may be NULL) = frames emitted. */
int egr_taehv_stream_feed(struct egr_taehv_stream *s, const float *lat, uint32_t n, egr_taehv_emit_fn emit,
			  void *ctx, uint32_t *produced, char *err, size_t errlen);
/*
 * End of the sequence: emits what is still pending (nothing, for TAEHV's
 * decoder, whose frames all leave during feed) and checks the count against
 * t_total.  The stream accepts no more frames afterwards.
 */
int egr_taehv_stream_flush(struct egr_taehv_stream *s, egr_taehv_emit_fn emit, void *ctx, uint32_t *produced,
			   char *err, size_t errlen);
void egr_taehv_stream_free(struct egr_taehv_stream *s);
/* Latent frames fed and frames emitted so far. */
uint64_t egr_taehv_stream_fed(const struct egr_taehv_stream *s);
uint64_t egr_taehv_stream_emitted(const struct egr_taehv_stream *s);

/*
 * Write seeded random weights in the public layout for cfg (the model's C and
 * p; TGrow rows as cfg's strides): uniform values of He-style scale, the
 * output conv around a bias of 0.5, so activations stay moderate and about
 * 99% of the outputs land inside (0, 1).  EGR_TAEHV_WRITE_ENCODER adds random
 * "encoder.*" tensors (taehv.py's encoder for the model), so the file loads
 * strictly into a whole PyTorch TAEHV module.  dtype EGR_ST_F16 or
 * EGR_ST_F32; same arguments, same bytes, on any machine.
 */
enum { EGR_TAEHV_WRITE_ENCODER = 1 };
int egr_taehv_write_random(const char *path, const struct egr_taehv_cfg *cfg, uint64_t seed, uint32_t dtype,
			   uint32_t flags, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
