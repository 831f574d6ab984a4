/*
 * taehv: model table, plan, weight loading/validation, the streaming fp32 CPU
 * decoder and the seeded weight generator; see taehv.h.
 *
 * The CPU decoder is plain planar fp32, like taesd.c's: every 3x3 conv reads
 * a zero-bordered copy of its input ([x, past] padded side by side is the
 * MemBlock's concatenation) and accumulates, per output channel, the bias,
 * then each input channel's nine taps, over one long contiguous run of the
 * padded grid (the two border columns of each row are computed and dropped),
 * which keeps the inner loop fast enough for CI sizes at -O1.  Clarity beats
 * speed: this is the oracle the GPU kernels are checked against.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/taehv.h"

/*
 * taehv.py keys these on the checkpoint's file name (TAEHV.__init__):
 * "taew2_2" -> patch 2, 48 channels; "taehv1_5" -> 2, 32; "taeltx" -> 4, 128
 * with time upscaling in every TGrow and time downscaling in every TPool;
 * "taecvx" -> is_cogvideox; everything else the constructor's defaults
 * (patch 1, 16 channels, decoder_time_upscale F,T,T, encoder T,T,F).
 */
static const struct taehv_model {
	const char *name, *file;
	uint32_t channels, patch;
	uint8_t time_up[3];	/* decoder_time_upscale */
	uint8_t time_down[3];	/* encoder_time_downscale (the generator's encoder) */
	uint8_t cogvideox;
	uint8_t time_fixed;	/* taehv.py sets decoder_time_upscale itself, whatever it is asked */
} taehv_models[EGR_TAEHV_NMODELS] = {
	[EGR_TAEHV_WAN21] = { "wan21", "taew2_1", 16, 1, { 0, 1, 1 }, { 1, 1, 0 }, 0 },
	[EGR_TAEHV_WAN22] = { "wan22", "taew2_2", 48, 2, { 0, 1, 1 }, { 1, 1, 0 }, 0 },
	[EGR_TAEHV_HUNYUAN] = { "hunyuan", "taehv", 16, 1, { 0, 1, 1 }, { 1, 1, 0 }, 0 },
	[EGR_TAEHV_HUNYUAN15] = { "hunyuan15", "taehv1_5", 32, 2, { 0, 1, 1 }, { 1, 1, 0 }, 0 },
	[EGR_TAEHV_LTX2] = { "ltx2", "taeltx_2", 128, 4, { 1, 1, 1 }, { 1, 1, 1 }, 0, 1 },
	[EGR_TAEHV_COGVIDEOX] = { "cogvideox", "taecvx", 16, 1, { 0, 1, 1 }, { 1, 1, 0 }, 1 },
	[EGR_TAEHV_OPENSORA] = { "opensora", "taeos1_3", 16, 1, { 0, 1, 1 }, { 1, 1, 0 }, 0 },
};

static const uint32_t taehv_nf[EGR_TAEHV_NSTAGE + 1] = { 256, 128, 64, 64 };

int egr_taehv_model_parse(const char *s, uint32_t *model)
{
	for (uint32_t i = 0; i < EGR_TAEHV_NMODELS; i++) {
		if (!strcmp(s, taehv_models[i].name)) {
			*model = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *egr_taehv_model_name(uint32_t model)
{
	return model < EGR_TAEHV_NMODELS ? taehv_models[model].name : NULL;
}

const char *egr_taehv_model_file(uint32_t model)
{
	return model < EGR_TAEHV_NMODELS ? taehv_models[model].file : NULL;
}

uint32_t egr_taehv_model_channels(uint32_t model)
{
	return model < EGR_TAEHV_NMODELS ? taehv_models[model].channels : 0;
}

uint32_t egr_taehv_model_patch(uint32_t model)
{
	return model < EGR_TAEHV_NMODELS ? taehv_models[model].patch : 0;
}

void egr_taehv_cfg_init(struct egr_taehv_cfg *cfg, uint32_t model)
{
	cfg->model = model;
	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++)
		cfg->time_upscale[k] = cfg->space_upscale[k] = -1;
}

static void taehv_set_conv(struct egr_taehv_conv *c, const char *name, uint32_t cin, uint32_t cout, uint32_t ksize,
			   uint32_t has_bias)
{
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->cin = cin;
	c->cout = c->file_cout = cout;
	c->ksize = ksize;
	c->has_bias = has_bias;
	c->w = c->b = NULL;
}

int egr_taehv_describe(struct egr_taehv *net, const struct egr_taehv_cfg *cfg, uint32_t channels, uint32_t patch,
		       char *err, size_t errlen)
{
	char nm[24];

	if (cfg->model >= EGR_TAEHV_NMODELS || channels < 1 || patch < 1 || patch > 16) {
		egr_errf(err, errlen, "taehv: model %u, %u channels, patch %u: not a TAEHV decoder", cfg->model,
			 channels, patch);
		return -EINVAL;
	}
	const struct taehv_model *m = &taehv_models[cfg->model];
	memset(net, 0, sizeof(*net));
	net->model = cfg->model;
	net->channels = channels;
	net->patch = patch;
	net->t_upscale = 1;
	for (int s = 0; s < EGR_TAEHV_NSTAGE; s++) {
		int t = cfg->time_upscale[s] < 0 ? m->time_up[s] : cfg->time_upscale[s];
		int u = cfg->space_upscale[s] < 0 ? 1 : cfg->space_upscale[s];
		if (t > 1 || u > 1) {
			egr_errf(err, errlen, "taehv: stage %d: time/space upscale switch %d/%d (expected -1, 0 or 1)", s,
				 cfg->time_upscale[s], cfg->space_upscale[s]);
			return -EINVAL;
		}
		if (m->time_fixed && t != m->time_up[s]) {
			egr_errf(err, errlen, "taehv: %s (%s): taehv.py fixes decoder_time_upscale (stage %d)", m->name, m->file, s);
			return -EINVAL;
		}
		net->tstride[s] = t ? 2 : 1;
		net->sscale[s] = u ? 2 : 1;
		net->t_upscale *= net->tstride[s];
	}
	net->frames_to_trim = net->t_upscale - 1;
	taehv_set_conv(&net->conv[EGR_TAEHV_CONV_FIRST], "decoder.1", channels, taehv_nf[0], 3, 1);
	for (int s = 0; s < EGR_TAEHV_NSTAGE; s++) {
		const uint32_t n = taehv_nf[s], base = 3 + 6 * (uint32_t)s;	/* Sequential index of the first MemBlock */
		for (int b = 0; b < 3; b++) {
			for (int j = 0; j < 3; j++) {
				snprintf(nm, sizeof(nm), "decoder.%u.conv.%d", base + (uint32_t)b, 2 * j);
				taehv_set_conv(&net->conv[EGR_TAEHV_CONV_MEM(s, b, j)], nm, j ? n : 2 * n, n, 3, 1);
			}
		}
		snprintf(nm, sizeof(nm), "decoder.%u.conv", base + 4);
		taehv_set_conv(&net->conv[EGR_TAEHV_CONV_TGROW(s)], nm, n, n * net->tstride[s], 1, 0);
		snprintf(nm, sizeof(nm), "decoder.%u", base + 5);
		taehv_set_conv(&net->conv[EGR_TAEHV_CONV_STAGE(s)], nm, n, taehv_nf[s + 1], 3, 0);
	}
	taehv_set_conv(&net->conv[EGR_TAEHV_CONV_LAST], "decoder.22", taehv_nf[3], 3 * patch * patch, 3, 1);
	return 0;
}

void egr_taehv_free(struct egr_taehv *net)
{
	if (!net)
		return;
	for (int i = 0; i < EGR_TAEHV_NCONV; i++) {
		free(net->conv[i].w);
		free(net->conv[i].b);
	}
	free(net);
}

uint64_t egr_taehv_out_frames(const struct egr_taehv *net, uint64_t t_latent)
{
	uint64_t raw = t_latent * net->t_upscale;

	/* decode_video: skip_trim = is_cogvideox and T % 2 == 0 */
	if (taehv_models[net->model].cogvideox && t_latent % 2 == 0)
		return raw;
	return raw > net->frames_to_trim ? raw - net->frames_to_trim : 0;
}

void egr_taehv_out_size(const struct egr_taehv *net, uint32_t h, uint32_t w, uint32_t *out_h, uint32_t *out_w)
{
	uint32_t f = net->patch;

	for (int s = 0; s < EGR_TAEHV_NSTAGE; s++)
		f *= net->sscale[s];
	*out_h = h * f;
	*out_w = w * f;
}

/* ---- loading ---- */

/* Append "'name'" to a message list, the first few only. */
static void taehv_list_add(char *buf, size_t len, uint32_t *count, const char *name)
{
	size_t used = strlen(buf);

	if (*count < 6 && used + strlen(name) + 8 < len)
		snprintf(buf + used, len - used, "%s'%s'", *count ? ", " : "", name);
	else if (*count == 6 && used + 8 < len)
		snprintf(buf + used, len - used, ", ...");
	(*count)++;
}

static int taehv_expected(const struct egr_taehv *plan, const char *name)
{
	char nm[48];

	for (int i = 0; i < EGR_TAEHV_NCONV; i++) {
		const struct egr_taehv_conv *c = &plan->conv[i];
		snprintf(nm, sizeof(nm), "%s.weight", c->name);
		if (!strcmp(nm, name))
			return 1;
		snprintf(nm, sizeof(nm), "%s.bias", c->name);
		if (c->has_bias && !strcmp(nm, name))
			return 1;
	}
	return 0;
}

/*
 * Every tensor is a decoder tensor of the plan, or an encoder tensor (counted
 * into *encoder); none of the plan's is missing.  Names do not depend on C, p
 * or the strides.
 */
static int taehv_check_names(const struct egr_st *st, const struct egr_taehv *plan, uint32_t *encoder, char *err,
			     size_t errlen)
{
	char miss[400] = "", unk[400] = "", nm[48];
	uint32_t nmiss = 0, nunk = 0;

	*encoder = 0;
	if (egr_st_find(st, "decoder.0.weight")) {
		egr_errf(err, errlen,
			 "weights \"%s\": tensor 'decoder.0.weight' marks TAEHV's \"super\" decoder (taew2_2_super, "
			 "taehv1_5_super), which egressd does not build; use the base weights (taew2_2, taehv1_5)",
			 st->path);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < st->ntensors; i++) {
		const char *name = st->t[i].name;
		if (!strncmp(name, "encoder.", 8))
			(*encoder)++;
		else if (!taehv_expected(plan, name))
			taehv_list_add(unk, sizeof(unk), &nunk, name);
	}
	for (int i = 0; i < EGR_TAEHV_NCONV; i++) {
		for (uint32_t k = 0; k < 1 + plan->conv[i].has_bias; k++) {
			snprintf(nm, sizeof(nm), "%s.%s", plan->conv[i].name, k ? "bias" : "weight");
			if (!egr_st_find(st, nm))
				taehv_list_add(miss, sizeof(miss), &nmiss, nm);
		}
	}
	if (!nmiss && !nunk)
		return 0;
	egr_errf(err, errlen, "weights \"%s\": not a TAEHV decoder: %s%s%s%s%s", st->path, nmiss ? "missing " : "", miss,
		 nmiss && nunk ? "; " : "", nunk ? "unknown " : "", unk);
	return -EINVAL;
}

/* C from decoder.1.weight [256,C,3,3], p from decoder.22.weight [3p^2,64,3,3], both checked against the model. */
static int taehv_file_dims(const struct egr_st *st, uint32_t model, uint32_t *C, uint32_t *p, char *err,
			   size_t errlen)
{
	const struct taehv_model *m = &taehv_models[model];
	const struct egr_st_tensor *t1 = egr_st_find(st, "decoder.1.weight");
	const struct egr_st_tensor *t22 = egr_st_find(st, "decoder.22.weight");
	char got[96];

	if (t1->ndim != 4 || t1->shape[0] != 256 || t1->shape[2] != 3 || t1->shape[3] != 3 || t1->shape[1] < 1) {
		egr_errf(err, errlen, "weights \"%s\": tensor 'decoder.1.weight' has shape %s, expected [256,C,3,3]",
			 st->path, egr_st_shape_str(t1->shape, t1->ndim, got, sizeof(got)));
		return -EINVAL;
	}
	if (t1->shape[1] != m->channels) {
		egr_errf(err, errlen,
			 "weights \"%s\": tensor 'decoder.1.weight' has shape %s: %llu latent channels, but taehv_model "
			 "%s (%s) has %u",
			 st->path, egr_st_shape_str(t1->shape, t1->ndim, got, sizeof(got)),
			 (unsigned long long)t1->shape[1], m->name, m->file, m->channels);
		return -EINVAL;
	}
	uint32_t pp = 0;
	while (pp < 16 && 3ull * (pp + 1) * (pp + 1) <= t22->shape[0])
		pp++;
	if (t22->ndim != 4 || 3ull * pp * pp != t22->shape[0] || t22->shape[1] != 64 || t22->shape[2] != 3 ||
	    t22->shape[3] != 3) {
		egr_errf(err, errlen, "weights \"%s\": tensor 'decoder.22.weight' has shape %s, expected [3p^2,64,3,3]",
			 st->path, egr_st_shape_str(t22->shape, t22->ndim, got, sizeof(got)));
		return -EINVAL;
	}
	if (pp != m->patch) {
		egr_errf(err, errlen,
			 "weights \"%s\": tensor 'decoder.22.weight' has shape %s: patch size %u, but taehv_model %s (%s) "
			 "has %u",
			 st->path, egr_st_shape_str(t22->shape, t22->ndim, got, sizeof(got)), pp, m->name, m->file,
			 m->patch);
		return -EINVAL;
	}
	*C = m->channels;
	*p = pp;
	return 0;
}

/*
 * Read one tensor of conv c ("weight" or "bias") into fp32.  A TGrow weight
 * may hold more rows than the layer uses (a multiple of cin): the last
 * cout rows are kept, as patch_tgrow_layers does.
 */
static int taehv_read(const struct egr_st *st, struct egr_taehv_conv *c, int bias, char *err, size_t errlen)
{
	char nm[48], got[96], want[96];
	const struct egr_st_tensor *t;
	const int tgrow = !bias && c->ksize == 1;
	uint64_t shape[4] = { c->cout, c->cin, c->ksize, c->ksize };
	const uint32_t ndim = bias ? 1 : 4;
	float **dst = bias ? &c->b : &c->w;

	snprintf(nm, sizeof(nm), "%s.%s", c->name, bias ? "bias" : "weight");
	t = egr_st_find(st, nm);
	if (t->dtype != EGR_ST_F16 && t->dtype != EGR_ST_BF16 && t->dtype != EGR_ST_F32) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has dtype %s, expected F16, BF16 or F32", st->path, nm,
			 t->dtype_name);
		return -EINVAL;
	}
	if (tgrow && t->ndim == 4 && t->shape[0] > c->cout && t->shape[0] % c->cin == 0)
		shape[0] = t->shape[0];
	if (t->ndim != ndim || memcmp(t->shape, shape, ndim * sizeof(shape[0]))) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected %s%s", st->path, nm,
			 egr_st_shape_str(t->shape, t->ndim, got, sizeof(got)), egr_st_shape_str(shape, ndim, want, sizeof(want)),
			 tgrow ? " (or more rows, a multiple of the input channels)" : "");
		return -EINVAL;
	}
	if (!(*dst = malloc(t->numel * sizeof(float)))) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': out of memory", st->path, nm);
		return -ENOMEM;
	}
	int r = egr_st_read_f32(st, t, *dst, err, errlen);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < t->numel; i++) {
		if (!isfinite((*dst)[i])) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s': element %llu is not finite", st->path, nm,
				 (unsigned long long)i);
			return -EINVAL;
		}
	}
	if (tgrow) {
		c->file_cout = (uint32_t)t->shape[0];
		memmove(c->w, c->w + (size_t)(c->file_cout - c->cout) * c->cin, (size_t)c->cout * c->cin * sizeof(float));
	}
	return 0;
}

int egr_taehv_load_cfg(const char *path, const struct egr_taehv_cfg *cfg, struct egr_taehv **out, char *err,
		       size_t errlen)
{
	struct egr_taehv *net = NULL;
	struct egr_st *st = NULL;
	uint32_t enc = 0, C = 0, p = 0;
	int r;

	*out = NULL;
	if (!(net = calloc(1, sizeof(*net)))) {
		egr_errf(err, errlen, "weights \"%s\": out of memory", path);
		return -ENOMEM;
	}
	/* the plan at the model's own shapes names the tensors */
	r = egr_taehv_describe(net, cfg, egr_taehv_model_channels(cfg->model), egr_taehv_model_patch(cfg->model), err,
			       errlen);
	if (r < 0)
		goto fail;
	r = egr_st_open(path, &st, err, errlen);
	if (r < 0)
		goto fail;
	r = taehv_check_names(st, net, &enc, err, errlen);
	if (r < 0)
		goto fail;
	r = taehv_file_dims(st, cfg->model, &C, &p, err, errlen);
	if (r < 0)
		goto fail;
	r = egr_taehv_describe(net, cfg, C, p, err, errlen);
	if (r < 0)
		goto fail;
	net->encoder_tensors = enc;
	net->file_dtype = egr_st_find(st, "decoder.1.weight")->dtype;
	for (int i = 0; i < EGR_TAEHV_NCONV; i++) {
		for (uint32_t k = 0; k < 1 + net->conv[i].has_bias; k++) {
			r = taehv_read(st, &net->conv[i], (int)k, err, errlen);
			if (r < 0)
				goto fail;
		}
	}
	egr_st_close(st);
	*out = net;
	return 0;
fail:
	egr_taehv_free(net);
	egr_st_close(st);
	return r;
}

int egr_taehv_load(const char *path, uint32_t model, struct egr_taehv **out, char *err, size_t errlen)
{
	struct egr_taehv_cfg cfg;

	egr_taehv_cfg_init(&cfg, model);
	return egr_taehv_load_cfg(path, &cfg, out, err, errlen);
}

/* ---- the CPU decoder ---- */

enum { TAEHV_RELU = 1, TAEHV_RESIDUAL = 2 };

/* src [n][H][W] into dst [n][H+2][W+2] with a zero border */
static void taehv_pad(const float *src, uint32_t n, uint32_t H, uint32_t W, float *dst)
{
	const size_t S = W + 2, plane = (H + 2) * S;

	for (uint32_t c = 0; c < n; c++) {
		float *d = dst + c * plane;
		memset(d, 0, S * sizeof(float));
		memset(d + (H + 1) * S, 0, S * sizeof(float));
		for (uint32_t y = 0; y < H; y++) {
			float *row = d + (y + 1) * S;
			row[0] = row[W + 1] = 0.0f;
			memcpy(row + 1, src + ((size_t)c * H + y) * W, W * sizeof(float));
		}
	}
}

/* ReLU and residual add of one finished output plane */
static void taehv_finish(float *o, const float *res, size_t n, uint32_t flags)
{
	for (size_t i = 0; i < n; i++) {
		float v = o[i];
		if (res)
			v = v + res[i];
		if ((flags & TAEHV_RELU) && !(v > 0.0f))
			v = 0.0f;
		o[i] = v;
	}
}

/*
 * Four lanes of float, GCC's generic vectors: plain SSE even at -O1 (the test
 * build does not auto-vectorise), and each lane does exactly the scalar
 * operations in the scalar order, so the results equal the scalar code's.
 */
typedef float taehv_v4 __attribute__((vector_size(16)));

static inline taehv_v4 taehv_ld(const float *p)
{
	taehv_v4 v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* The nine taps of output i: rows p, p + S, p + 2S; kv: each weight in every lane. */
#define TAEHV_TAPS(L, k, p, p1, p2, i)                                                                     \
	((((k)[0] * L((p) + (i)) + (k)[1] * L((p) + (i) + 1)) + (k)[2] * L((p) + (i) + 2)) +                   \
	 (((k)[3] * L((p1) + (i)) + (k)[4] * L((p1) + (i) + 1)) + (k)[5] * L((p1) + (i) + 2)) +                \
	 (((k)[6] * L((p2) + (i)) + (k)[7] * L((p2) + (i) + 1)) + (k)[8] * L((p2) + (i) + 2)))
#define TAEHV_DEREF(p) (*(p))

/*
 * 3x3 conv of the padded input P [cin][H+2][W+2] into out [cout][H][W].
 * Output (y, x) sits at padded index y*S + x, its taps at + ky*S + kx; the
 * run over i = 0 .. (H-1)*S + W - 1 covers every output and reads inside P.
 * acc[i] = bias, then per input channel acc[i] += (its nine taps).
 */
static void taehv_conv3(const struct egr_taehv_conv *c, const float *P, uint32_t H, uint32_t W, float *out,
			const float *res, uint32_t flags, float *acc)
{
	const size_t S = W + 2, plane = (H + 2) * S, run = (H - 1) * S + W, HW = (size_t)H * W;

	for (uint32_t co = 0; co < c->cout; co++) {
		const float b = c->b ? c->b[co] : 0.0f;
		for (size_t i = 0; i < run; i++)
			acc[i] = b;
		for (uint32_t ci = 0; ci < c->cin; ci++) {
			const float *p = P + ci * plane, *k = c->w + ((size_t)co * c->cin + ci) * 9;
			const float *p1 = p + S, *p2 = p + 2 * S;
			taehv_v4 kv[9];
			size_t i = 0;
			for (int j = 0; j < 9; j++)
				kv[j] = (taehv_v4){ k[j], k[j], k[j], k[j] };
			for (; i + 4 <= run; i += 4) {
				taehv_v4 a = taehv_ld(acc + i) + TAEHV_TAPS(taehv_ld, kv, p, p1, p2, i);
				memcpy(acc + i, &a, sizeof(a));
			}
			for (; i < run; i++)
				acc[i] = acc[i] + TAEHV_TAPS(TAEHV_DEREF, k, p, p1, p2, i);
		}
		float *o = out + co * HW;
		for (uint32_t y = 0; y < H; y++)
			memcpy(o + (size_t)y * W, acc + y * S, W * sizeof(float));
		taehv_finish(o, res ? res + co * HW : NULL, HW, flags);
	}
}

/* 1x1 conv, no bias (TGrow): out [cout][n] */
static void taehv_conv1(const struct egr_taehv_conv *c, const float *in, size_t n, float *out)
{
	for (uint32_t co = 0; co < c->cout; co++) {
		float *o = out + co * n;
		memset(o, 0, n * sizeof(float));
		for (uint32_t ci = 0; ci < c->cin; ci++) {
			const float k = c->w[(size_t)co * c->cin + ci], *p = in + ci * n;
			for (size_t i = 0; i < n; i++)
				o[i] = o[i] + k * p[i];
		}
	}
}

struct taehv_stage {
	uint32_t H, W;		/* MemBlocks' resolution */
	uint32_t H2, W2;	/* after the Upsample: TGrow's and the stage conv's */
	float *x, *t1, *t2;	/* [n][H][W]: the running activation and two temporaries */
	float *mem[3];		/* each MemBlock's previous input, zeros at the start */
	float *up;		/* [n][H2][W2] */
	float *g;		/* TGrow output [stride*n][H2][W2] */
};

struct egr_taehv_stream {
	const struct egr_taehv *net;
	uint32_t h, w, out_h, out_w;
	uint64_t t_total, fed, raw, emitted;
	uint32_t skip;		/* leading decoder frames dropped */
	int state;		/* 0 open, 1 flushed, -1 failed */
	struct taehv_stage st[EGR_TAEHV_NSTAGE];
	float *in;		/* [C][h][w] clamped latent */
	float *fin, *fout, *rgb;	/* [64][Hf][Wf], [3p^2][Hf][Wf], [3][Hf p][Wf p] */
	float *pad, *acc;	/* conv scratch */
	egr_taehv_emit_fn emit;
	void *ctx;
	uint32_t produced;
};

static void taehv_conv3_pad(struct egr_taehv_stream *s, const struct egr_taehv_conv *c, const float *in,
			    uint32_t H, uint32_t W, float *out, const float *res, uint32_t flags)
{
	taehv_pad(in, c->cin, H, W, s->pad);
	taehv_conv3(c, s->pad, H, W, out, res, flags, s->acc);
}

/* MemBlock m of stage k on st->x, with its memory; the result replaces st->x */
static void taehv_memblock(struct egr_taehv_stream *s, int k, int m)
{
	struct taehv_stage *st = &s->st[k];
	const struct egr_taehv *net = s->net;
	const uint32_t n = taehv_nf[k], H = st->H, W = st->W;
	const size_t plane = (size_t)(H + 2) * (W + 2), HW = (size_t)H * W;

	/* conv.0 over torch.cat([x, past], 1): x's padded planes, then past's */
	taehv_pad(st->x, n, H, W, s->pad);
	taehv_pad(st->mem[m], n, H, W, s->pad + n * plane);
	taehv_conv3(&net->conv[EGR_TAEHV_CONV_MEM(k, m, 0)], s->pad, H, W, st->t1, NULL, TAEHV_RELU, s->acc);
	taehv_conv3_pad(s, &net->conv[EGR_TAEHV_CONV_MEM(k, m, 1)], st->t1, H, W, st->t2, NULL, TAEHV_RELU);
	taehv_conv3_pad(s, &net->conv[EGR_TAEHV_CONV_MEM(k, m, 2)], st->t2, H, W, st->t1, st->x,
			TAEHV_RELU | TAEHV_RESIDUAL);
	memcpy(st->mem[m], st->x, n * HW * sizeof(float));
	float *t = st->x;
	st->x = st->t1;
	st->t1 = t;
}

/* decoder.21 ReLU (fused into decoder.20), decoder.22, pixel-shuffle, clamp, emit */
static int taehv_final(struct egr_taehv_stream *s)
{
	const struct egr_taehv *net = s->net;
	const struct taehv_stage *last = &s->st[EGR_TAEHV_NSTAGE - 1];
	const uint32_t H = last->H2, W = last->W2, p = net->patch, OW = W * p;
	const size_t HW = (size_t)H * W;

	taehv_conv3_pad(s, &net->conv[EGR_TAEHV_CONV_LAST], s->fin, H, W, s->fout, NULL, 0);
	/* pixel_shuffle: out[c][y*p + i][x*p + j] = in[c*p*p + i*p + j][y][x] */
	for (uint32_t c = 0; c < 3; c++)
		for (uint32_t i = 0; i < p; i++)
			for (uint32_t j = 0; j < p; j++) {
				const float *src = s->fout + ((size_t)c * p * p + i * p + j) * HW;
				for (uint32_t y = 0; y < H; y++)
					for (uint32_t x = 0; x < W; x++) {
						float v = src[(size_t)y * W + x];
						v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;	/* clamp_(0, 1); NaN stays */
						s->rgb[((size_t)c * H * p + y * p + i) * OW + x * p + j] = v;
					}
			}
	if (s->raw++ < s->skip)
		return 0;
	int r = s->emit ? s->emit(s->ctx, s->emitted, s->rgb, s->out_h, s->out_w) : 0;
	if (r < 0)
		return r;
	s->emitted++;
	s->produced++;
	return 0;
}

/* Stage k from its input in st[k].x: MemBlocks, Upsample, TGrow, then per time step the stage conv and onwards */
static int taehv_stage(struct egr_taehv_stream *s, int k)
{
	const struct egr_taehv *net = s->net;
	struct taehv_stage *st = &s->st[k];
	const uint32_t n = taehv_nf[k];
	const size_t hw2 = (size_t)st->H2 * st->W2;
	const float *src;

	for (int m = 0; m < 3; m++)
		taehv_memblock(s, k, m);
	src = st->x;
	if (net->sscale[k] == 2) {
		for (uint32_t c = 0; c < n; c++)
			for (uint32_t y = 0; y < st->H2; y++)
				for (uint32_t x = 0; x < st->W2; x++)
					st->up[((size_t)c * st->H2 + y) * st->W2 + x] =
						st->x[((size_t)c * st->H + y / 2) * st->W + x / 2];
		src = st->up;
	}
	taehv_conv1(&net->conv[EGR_TAEHV_CONV_TGROW(k)], src, hw2, st->g);
	for (uint32_t j = 0; j < net->tstride[k]; j++) {
		const int lastk = k == EGR_TAEHV_NSTAGE - 1;
		float *dst = lastk ? s->fin : s->st[k + 1].x;
		/* decoder.20 is followed by decoder.21's ReLU; 8 and 14 by MemBlocks */
		taehv_conv3_pad(s, &net->conv[EGR_TAEHV_CONV_STAGE(k)], st->g + j * n * hw2, st->H2, st->W2, dst, NULL,
				lastk ? TAEHV_RELU : 0);
		int r = lastk ? taehv_final(s) : taehv_stage(s, k + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

void egr_taehv_stream_free(struct egr_taehv_stream *s)
{
	if (!s)
		return;
	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++) {
		struct taehv_stage *st = &s->st[k];
		free(st->x);
		free(st->t1);
		free(st->t2);
		for (int m = 0; m < 3; m++)
			free(st->mem[m]);
		free(st->up);
		free(st->g);
	}
	free(s->in);
	free(s->fin);
	free(s->fout);
	free(s->rgb);
	free(s->pad);
	free(s->acc);
	free(s);
}

/* Stage sizes and buffers; the largest padded conv input sizes the scratch. */
static int taehv_stream_alloc(struct egr_taehv_stream *s)
{
	const struct egr_taehv *net = s->net;
	uint32_t H = s->h, W = s->w;
	size_t padmax = (size_t)net->channels * (H + 2) * (W + 2), accmax = (size_t)H * (W + 2);

	if (!(s->in = malloc((size_t)net->channels * H * W * sizeof(float))))
		return -ENOMEM;
	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++) {
		struct taehv_stage *st = &s->st[k];
		const size_t n = taehv_nf[k];
		st->H = H, st->W = W;
		st->H2 = H * net->sscale[k], st->W2 = W * net->sscale[k];
		const size_t a = n * H * W, b = n * st->H2 * st->W2;
		if (!(st->x = malloc(a * sizeof(float))) || !(st->t1 = malloc(a * sizeof(float))) ||
		    !(st->t2 = malloc(a * sizeof(float))) || !(st->up = malloc(b * sizeof(float))) ||
		    !(st->g = malloc(b * net->tstride[k] * sizeof(float))))
			return -ENOMEM;
		for (int m = 0; m < 3; m++)
			if (!(st->mem[m] = calloc(a, sizeof(float))))
				return -ENOMEM;
		/* MemBlock conv.0 reads 2n padded planes; the stage conv n at the upsampled size */
		size_t p1 = 2 * n * (H + 2) * (W + 2), p2 = n * (st->H2 + 2) * (st->W2 + 2);
		padmax = p1 > padmax ? p1 : padmax;
		padmax = p2 > padmax ? p2 : padmax;
		H = st->H2, W = st->W2;
		accmax = (size_t)H * (W + 2) > accmax ? (size_t)H * (W + 2) : accmax;
	}
	const size_t hw = (size_t)H * W, p = net->patch;
	if (!(s->fin = malloc(taehv_nf[3] * hw * sizeof(float))) ||
	    !(s->fout = malloc(3 * p * p * hw * sizeof(float))) || !(s->rgb = malloc(3 * p * p * hw * sizeof(float))) ||
	    !(s->pad = malloc(padmax * sizeof(float))) || !(s->acc = malloc(accmax * sizeof(float))))
		return -ENOMEM;
	return 0;
}

int egr_taehv_stream_create(const struct egr_taehv *net, uint32_t h, uint32_t w, uint64_t t_total,
			    struct egr_taehv_stream **out, char *err, size_t errlen)
{
	struct egr_taehv_stream *s;
	const int cog = taehv_models[net->model].cogvideox;

	*out = NULL;
	if (h < 1 || w < 1 || h > EGR_TAEHV_MAX_DIM || w > EGR_TAEHV_MAX_DIM) {
		egr_errf(err, errlen, "taehv: latent size %ux%u is out of range (1..%d)", w, h, EGR_TAEHV_MAX_DIM);
		return -EINVAL;
	}
	if (cog && !t_total) {
		egr_errf(err, errlen, "taehv: cogvideox trims its first frames only for an odd latent frame count: "
				      "the stream needs the job's frame count");
		return -EINVAL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		egr_errf(err, errlen, "taehv: out of memory");
		return -ENOMEM;
	}
	s->net = net;
	s->h = h;
	s->w = w;
	s->t_total = t_total;
	s->skip = cog && t_total % 2 == 0 ? 0 : net->frames_to_trim;
	egr_taehv_out_size(net, h, w, &s->out_h, &s->out_w);
	if (taehv_stream_alloc(s) < 0) {
		egr_errf(err, errlen, "taehv: out of memory for a %ux%u stream", s->out_w, s->out_h);
		egr_taehv_stream_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static int taehv_stream_usable(const struct egr_taehv_stream *s, char *err, size_t errlen)
{
	if (s->state == 0)
		return 0;
	egr_errf(err, errlen, "taehv: stream %s", s->state > 0 ? "already flushed" : "failed earlier");
	return -EINVAL;
}

int egr_taehv_stream_feed(struct egr_taehv_stream *s, const float *lat, uint32_t n, egr_taehv_emit_fn emit,
			  void *ctx, uint32_t *produced, char *err, size_t errlen)
{
	const struct egr_taehv *net = s->net;
	const size_t plane = (size_t)net->channels * s->h * s->w;
	int r = taehv_stream_usable(s, err, errlen);

	if (produced)
		*produced = 0;
	if (r < 0)
		return r;
	if (s->t_total && s->fed + n > s->t_total) {
		egr_errf(err, errlen, "taehv: %llu + %u latent frames fed, the job has %llu", (unsigned long long)s->fed,
			 n, (unsigned long long)s->t_total);
		s->state = -1;
		return -EINVAL;
	}
	s->emit = emit;
	s->ctx = ctx;
	s->produced = 0;
	for (uint32_t f = 0; f < n; f++) {
		const float *l = lat + f * plane;
		for (size_t i = 0; i < plane; i++)
			s->in[i] = tanhf(l[i] / 3.0f) * 3.0f;	/* decoder.0 Clamp */
		taehv_conv3_pad(s, &net->conv[EGR_TAEHV_CONV_FIRST], s->in, s->h, s->w, s->st[0].x, NULL, TAEHV_RELU);
		r = taehv_stage(s, 0);
		if (r < 0) {
			egr_errf(err, errlen, "taehv: frame %llu: output callback failed (%d)",
				 (unsigned long long)s->emitted, r);
			s->state = -1;
			break;
		}
		s->fed++;
	}
	if (produced)
		*produced = s->produced;
	return r;
}

int egr_taehv_stream_flush(struct egr_taehv_stream *s, egr_taehv_emit_fn emit, void *ctx, uint32_t *produced,
			   char *err, size_t errlen)
{
	int r = taehv_stream_usable(s, err, errlen);

	(void)emit;
	(void)ctx;
	if (produced)
		*produced = 0;
	if (r < 0)
		return r;
	if (s->t_total && s->fed != s->t_total) {
		egr_errf(err, errlen, "taehv: flushed after %llu of %llu latent frames", (unsigned long long)s->fed,
			 (unsigned long long)s->t_total);
		s->state = -1;
		return -EINVAL;
	}
	s->state = 1;
	return 0;
}

uint64_t egr_taehv_stream_fed(const struct egr_taehv_stream *s)
{
	return s->fed;
}

uint64_t egr_taehv_stream_emitted(const struct egr_taehv_stream *s)
{
	return s->emitted;
}

/* ---- the seeded generator ---- */

/* taehv.py's encoder for C channels, patch p and TPool strides td: e[] filled, count returned */
static int taehv_encoder_plan(struct egr_taehv_conv *e, uint32_t C, uint32_t p, const uint8_t *td)
{
	char nm[24];
	int n = 0;

	taehv_set_conv(&e[n++], "encoder.0", 3 * p * p, 64, 3, 1);
	for (int s = 0; s < 3; s++) {
		const int base = 2 + 5 * s;	/* TPool, strided conv, MemBlock x3 */
		snprintf(nm, sizeof(nm), "encoder.%d.conv", base);
		taehv_set_conv(&e[n++], nm, 64 * (td[s] ? 2 : 1), 64, 1, 0);
		snprintf(nm, sizeof(nm), "encoder.%d", base + 1);
		taehv_set_conv(&e[n++], nm, 64, 64, 3, 0);
		for (int b = 0; b < 3; b++)
			for (int j = 0; j < 3; j++) {
				snprintf(nm, sizeof(nm), "encoder.%d.conv.%d", base + 2 + b, 2 * j);
				taehv_set_conv(&e[n++], nm, j ? 64 : 128, 64, 3, 1);
			}
	}
	taehv_set_conv(&e[n++], "encoder.17", 64, C, 3, 1);
	return n;
}

/*
 * Standard deviation of a conv's random weights.  He init for convs followed
 * by a ReLU; variance-keeping 1/fan for the linear ones (TGrow, the stage
 * convs); each MemBlock's last conv scaled down so nine residual sums grow
 * gently; the output conv around a bias of 0.5 with a gain that gives frames
 * a standard deviation of about 0.15-0.2 with ~1% clipped (tuned with
 * tests/ref/taehv_ref.py's EGR_TAEHV_STATS on random latents).
 */
static double taehv_init_sd(const struct egr_taehv_conv *c, int last)
{
	const double fan = (double)c->cin * c->ksize * c->ksize;

	if (last)
		return 1.5 * sqrt(1.0 / fan);
	if (!c->has_bias)
		return sqrt(1.0 / fan);
	if (strstr(c->name, ".conv.4"))
		return 0.3 * sqrt(2.0 / fan);
	return sqrt(2.0 / fan);
}

/*
 * The generator: PCG32 (O'Neill's XSH-RR output on a 64-bit LCG), uniform
 * values only, so the bytes depend on integer arithmetic and one float
 * multiply, not on the libm at hand: same seed, same file, on any machine.
 */
struct taehv_rng {
	uint64_t s;
};

static uint32_t taehv_rng_u32(struct taehv_rng *r)
{
	uint64_t x = r->s;
	r->s = x * 6364136223846793005ull + 1442695040888963407ull;
	uint32_t xs = (uint32_t)(((x >> 18) ^ x) >> 27), rot = (uint32_t)(x >> 59);
	return (xs >> rot) | (xs << ((32 - rot) & 31));
}

/* uniform in [-sd sqrt 3, sd sqrt 3): standard deviation sd */
static float taehv_rng_sym(struct taehv_rng *r, double sd)
{
	double u = (double)(taehv_rng_u32(r) >> 8) / 16777216.0;	/* [0, 1), 24 bits */
	return (float)((2.0 * u - 1.0) * sd * 1.7320508075688772);
}

/* Random weight (and bias) of conv c into ts[]/data[] at *n. */
static int taehv_gen_conv(const struct egr_taehv_conv *c, int last, struct taehv_rng *rng, uint32_t dtype,
			  struct egr_st_wtensor *ts, float **data, char (*names)[32], uint32_t *n)
{
	const size_t kk = (size_t)c->ksize * c->ksize, nw = (size_t)c->cout * c->cin * kk;
	const double sd = taehv_init_sd(c, last);

	if (!(data[*n] = malloc(nw * sizeof(float))))
		return -ENOMEM;
	for (size_t i = 0; i < nw; i++)
		data[*n][i] = taehv_rng_sym(rng, sd);
	if (last) {
		/* zero-sum taps per (out, in): the positive mean of ReLU features cancels, frames centre on the bias */
		for (size_t i = 0; i < nw; i += kk) {
			float m = 0.0f;
			for (size_t j = 0; j < kk; j++)
				m += data[*n][i + j];
			for (size_t j = 0; j < kk; j++)
				data[*n][i + j] -= m / (float)kk;
		}
	}
	snprintf(names[*n], 32, "%s.weight", c->name);
	ts[*n] = (struct egr_st_wtensor){ names[*n], dtype, 4, { c->cout, c->cin, c->ksize, c->ksize }, data[*n] };
	(*n)++;
	if (!c->has_bias)
		return 0;
	if (!(data[*n] = malloc(c->cout * sizeof(float))))
		return -ENOMEM;
	for (uint32_t i = 0; i < c->cout; i++)
		data[*n][i] = (float)((last ? 0.5 : 0.0) + taehv_rng_sym(rng, 0.02));
	snprintf(names[*n], 32, "%s.bias", c->name);
	ts[*n] = (struct egr_st_wtensor){ names[*n], dtype, 1, { c->cout }, data[*n] };
	(*n)++;
	return 0;
}

int egr_taehv_write_random(const char *path, const struct egr_taehv_cfg *cfg, uint64_t seed, uint32_t dtype,
			   uint32_t flags, char *err, size_t errlen)
{
	enum { MAXT = 2 * EGR_TAEHV_NTENSORS };
	struct egr_taehv net;
	struct egr_taehv_conv enc[EGR_TAEHV_NCONV];
	struct egr_st_wtensor ts[MAXT];
	char names[MAXT][32];
	float *data[MAXT] = { NULL };
	struct taehv_rng rng = { seed ^ 0x7461656876ull };	/* "taehv" */
	uint32_t n = 0;
	int r, ne = 0;

	if (cfg->model >= EGR_TAEHV_NMODELS) {
		egr_errf(err, errlen, "taehv: model %u unknown", cfg->model);
		return -EINVAL;
	}
	const struct taehv_model *m = &taehv_models[cfg->model];
	r = egr_taehv_describe(&net, cfg, m->channels, m->patch, err, errlen);
	if (r < 0)
		return r;
	if (flags & EGR_TAEHV_WRITE_ENCODER)
		ne = taehv_encoder_plan(enc, m->channels, m->patch, m->time_down);
	/* the state dict's order: encoder, then decoder */
	for (int i = 0; i < ne + EGR_TAEHV_NCONV && r == 0; i++) {
		const struct egr_taehv_conv *c = i < ne ? &enc[i] : &net.conv[i - ne];
		r = taehv_gen_conv(c, c == &net.conv[EGR_TAEHV_CONV_LAST], &rng, dtype, ts, data, names, &n);
	}
	if (r < 0)
		egr_errf(err, errlen, "taehv: out of memory generating weights");
	else
		r = egr_st_write(path, ts, n, err, errlen);
	for (uint32_t i = 0; i < MAXT; i++)
		free(data[i]);
	return r;
}
