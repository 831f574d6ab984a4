/*
 * wanvae: the Wan VAE decoder's description, loader, fp32 streaming CPU
 * decoder, de-normalisation and weight generator; see wanvae.h and
 * docs/WANVAE.md.
 *
 * The CPU decoder is the oracle: planar fp32 activations [t][c][h][w], a
 * direct convolution accumulating bias first, then time taps, input channels
 * and spatial taps in order.  Clarity beats speed; it runs the reduced
 * widths of the tests in milliseconds and real sizes far too slowly to be
 * anything but a reference.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/taesd.h"
#include "daemon/decode/wanvae.h"

/* ---- description ---- */

struct wv_desc {
	struct egr_wanvae_param *p;
	uint32_t n, max;
	int32_t nslot;
};

static void wv_param(struct wv_desc *d, const char *prefix, const char *leaf, float **dst, uint32_t ndim,
		     const uint64_t *shape)
{
	if (d->n >= d->max) {
		d->n++;		/* counted; describe reports the overflow */
		return;
	}
	struct egr_wanvae_param *p = &d->p[d->n++];
	snprintf(p->name, sizeof(p->name), "%s%s", prefix, leaf);
	p->ndim = ndim;
	memcpy(p->shape, shape, ndim * sizeof(*shape));
	p->dst = dst;
}

/* A conv's shape, cache slot and its two tensors; 3-D (5-dim weight) unless is2d. */
static void wv_conv(struct wv_desc *d, const char *prefix, struct egr_wanvae_conv *c, uint32_t cin, uint32_t cout,
		    uint32_t kt, uint32_t ks, int is2d)
{
	uint64_t ws[5] = { cout, cin, kt, ks, ks }, bs[1] = { cout };

	c->cin = cin, c->cout = cout, c->kt = kt, c->ks = ks;
	c->slot = kt == 3 ? d->nslot++ : -1;
	if (is2d) {
		ws[2] = ks;
		wv_param(d, prefix, ".weight", &c->w, 4, ws);
	} else {
		wv_param(d, prefix, ".weight", &c->w, 5, ws);
	}
	wv_param(d, prefix, ".bias", &c->b, 1, bs);
}

/* WanRMS_norm's gamma: [C,1,1,1] (images=False) or [C,1,1] (images=True). */
static void wv_gamma(struct wv_desc *d, const char *prefix, float **g, uint32_t C, int images)
{
	uint64_t s[4] = { C, 1, 1, 1 };

	wv_param(d, prefix, ".gamma", g, images ? 3 : 4, s);
}

static void wv_resnet(struct wv_desc *d, const char *prefix, struct egr_wanvae_resnet *r, uint32_t cin, uint32_t cout)
{
	char nm[96];

	r->cin = cin, r->cout = cout;
	snprintf(nm, sizeof(nm), "%s.norm1", prefix);
	wv_gamma(d, nm, &r->gamma1, cin, 0);
	snprintf(nm, sizeof(nm), "%s.conv1", prefix);
	wv_conv(d, nm, &r->conv1, cin, cout, 3, 3, 0);
	snprintf(nm, sizeof(nm), "%s.norm2", prefix);
	wv_gamma(d, nm, &r->gamma2, cout, 0);
	snprintf(nm, sizeof(nm), "%s.conv2", prefix);
	wv_conv(d, nm, &r->conv2, cout, cout, 3, 3, 0);
	memset(&r->shortcut, 0, sizeof(r->shortcut));
	r->shortcut.slot = -1;
	if (cin != cout) {
		snprintf(nm, sizeof(nm), "%s.conv_shortcut", prefix);
		wv_conv(d, nm, &r->shortcut, cin, cout, 1, 1, 0);
	}
}

/*
 * Up block i of WanDecoder3d: WanUpBlock (plain: in_dim halved after the
 * first block, Resample to out_dim / 2, tensors "upsamplers.0") or
 * WanResidualUpBlock (Resample keeps out_dim, "upsampler", DupUp3D shortcut).
 */
static int wv_up(struct wv_desc *d, struct egr_wanvae *net, uint32_t i, uint32_t in, uint32_t out, char *err,
		 size_t errlen)
{
	const struct egr_wanvae_cfg *cfg = &net->cfg;
	struct egr_wanvae_up *u = &net->up[i];
	const char *upn = cfg->is_residual ? "upsampler" : "upsamplers.0";
	char nm[96];

	if (i > 0 && !cfg->is_residual)
		in /= 2;
	u->cin = in, u->cout = out, u->nres = cfg->num_res_blocks + 1;
	for (uint32_t j = 0, c = in; j < u->nres; j++, c = out) {
		snprintf(nm, sizeof(nm), "decoder.up_blocks.%u.resnets.%u", i, j);
		wv_resnet(d, nm, &u->res[j], c, out);
	}
	u->up_out = out;
	u->mode = i + 1 == cfg->n_up ? EGR_WANVAE_UP_NONE : cfg->temporal[i] ? EGR_WANVAE_UP_3D : EGR_WANVAE_UP_2D;
	if (u->mode == EGR_WANVAE_UP_NONE)
		return 0;
	u->up_out = cfg->is_residual ? out : out / 2;
	if (u->up_out == 0) {
		egr_errf(err, errlen, "wanvae: up block %u has %u channels, too few to halve", i, out);
		return -EINVAL;
	}
	snprintf(nm, sizeof(nm), "decoder.up_blocks.%u.%s.resample.1", i, upn);
	wv_conv(d, nm, &u->resample, out, u->up_out, 1, 3, 1);
	if (u->mode == EGR_WANVAE_UP_3D) {
		snprintf(nm, sizeof(nm), "decoder.up_blocks.%u.%s.time_conv", i, upn);
		wv_conv(d, nm, &u->time_conv, out, 2 * out, 3, 1, 0);
	}
	if (cfg->is_residual) {
		u->dup_ft = u->mode == EGR_WANVAE_UP_3D ? 2 : 1;
		uint32_t rep = out * u->dup_ft * 4;
		if (rep % in) {
			egr_errf(err, errlen, "wanvae: up block %u: DupUp3D from %u to %u channels (x%u) does not divide", i,
				 in, out, u->dup_ft * 4);
			return -EINVAL;
		}
		u->dup_repeats = rep / in;
	}
	return 0;
}

static int wv_cfg_check(const struct egr_wanvae_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->z_dim < 1 || cfg->z_dim > EGR_WANVAE_MAX_Z || cfg->dim < 1 || cfg->dim > EGR_WANVAE_MAX_DIM ||
	    cfg->n_up < 1 || cfg->n_up > EGR_WANVAE_MAX_UP || cfg->num_res_blocks + 1 > EGR_WANVAE_MAX_RES ||
	    (cfg->patch != 1 && cfg->patch != 2)) {
		egr_errf(err, errlen,
			 "wanvae: unsupported configuration: z_dim %u (1..%d), dim %u (1..%d), %u up blocks (1..%d), "
			 "num_res_blocks %u (0..%d), patch %u (1 or 2)",
			 cfg->z_dim, EGR_WANVAE_MAX_Z, cfg->dim, EGR_WANVAE_MAX_DIM, cfg->n_up, EGR_WANVAE_MAX_UP,
			 cfg->num_res_blocks, EGR_WANVAE_MAX_RES - 1, cfg->patch);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < cfg->n_up; i++) {
		if (cfg->dim_mult[i] < 1 || (uint64_t)cfg->dim * cfg->dim_mult[i] > EGR_WANVAE_MAX_DIM) {
			egr_errf(err, errlen, "wanvae: dim_mult[%u] = %u: channels must be 1..%d", i, cfg->dim_mult[i],
				 EGR_WANVAE_MAX_DIM);
			return -EINVAL;
		}
	}
	return 0;
}

int egr_wanvae_describe(struct egr_wanvae *net, const struct egr_wanvae_cfg *cfg, struct egr_wanvae_param *params,
			uint32_t maxp, char *err, size_t errlen)
{
	struct wv_desc d = { params, 0, maxp, 0 };
	uint32_t dims[EGR_WANVAE_MAX_UP + 1], n = cfg->n_up;
	int r = wv_cfg_check(cfg, err, errlen);

	if (r < 0)
		return r;
	memset(net, 0, sizeof(*net));
	net->cfg = *cfg;
	/* dims = [dim * u for u in [dim_mult[-1]] + dim_mult[::-1]] */
	dims[0] = cfg->dim * cfg->dim_mult[n - 1];
	for (uint32_t k = 1; k <= n; k++)
		dims[k] = cfg->dim * cfg->dim_mult[n - k];
	wv_conv(&d, "post_quant_conv", &net->post_quant, cfg->z_dim, cfg->z_dim, 1, 1, 0);
	wv_conv(&d, "decoder.conv_in", &net->conv_in, cfg->z_dim, dims[0], 3, 3, 0);
	wv_resnet(&d, "decoder.mid_block.resnets.0", &net->mid[0], dims[0], dims[0]);
	wv_gamma(&d, "decoder.mid_block.attentions.0.norm", &net->attn_gamma, dims[0], 1);
	wv_conv(&d, "decoder.mid_block.attentions.0.to_qkv", &net->attn_qkv, dims[0], 3 * dims[0], 1, 1, 1);
	wv_conv(&d, "decoder.mid_block.attentions.0.proj", &net->attn_proj, dims[0], dims[0], 1, 1, 1);
	wv_resnet(&d, "decoder.mid_block.resnets.1", &net->mid[1], dims[0], dims[0]);
	net->time_factor = 1;
	net->scale = cfg->patch;
	for (uint32_t i = 0; i < n; i++) {
		r = wv_up(&d, net, i, dims[i], dims[i + 1], err, errlen);
		if (r < 0)
			return r;
		if (net->up[i].mode == EGR_WANVAE_UP_3D)
			net->time_factor *= 2;
		if (net->up[i].mode != EGR_WANVAE_UP_NONE)
			net->scale *= 2;
	}
	wv_gamma(&d, "decoder.norm_out", &net->norm_out_gamma, dims[n], 0);
	wv_conv(&d, "decoder.conv_out", &net->conv_out, dims[n], 3 * cfg->patch * cfg->patch, 3, 3, 0);
	if (d.n > maxp || d.nslot > EGR_WANVAE_MAX_SLOTS) {
		egr_errf(err, errlen, "wanvae: configuration needs %u tensors and %d cached convs (at most %u, %d)", d.n,
			 d.nslot, maxp, EGR_WANVAE_MAX_SLOTS);
		return -EINVAL;
	}
	net->nslots = (uint32_t)d.nslot;
	net->nparams = d.n;
	return (int)d.n;
}

int egr_wanvae_cfg_preset(struct egr_wanvae_cfg *cfg, const char *name)
{
	static const struct egr_wanvae_cfg wan21 = {
		.z_dim = 16, .dim = 96, .n_up = 4, .dim_mult = { 1, 2, 4, 4 }, .num_res_blocks = 2,
		.temporal = { 1, 1, 0 }, .is_residual = 0, .patch = 1,
	};
	static const struct egr_wanvae_cfg wan22 = {
		.z_dim = 48, .dim = 256, .n_up = 4, .dim_mult = { 1, 2, 4, 4 }, .num_res_blocks = 2,
		.temporal = { 1, 1, 0 }, .is_residual = 1, .patch = 2,
	};

	if (!strcmp(name, "2.1"))
		*cfg = wan21;
	else if (!strcmp(name, "2.2"))
		*cfg = wan22;
	else
		return -EINVAL;
	return 0;
}

char *egr_wanvae_cfg_str(const struct egr_wanvae_cfg *cfg, char *buf, size_t len)
{
	char mult[64] = "", temp[64] = "";
	size_t a = 0, b = 0;

	for (uint32_t i = 0; i < cfg->n_up && i < EGR_WANVAE_MAX_UP; i++) {
		a += (size_t)snprintf(mult + a, sizeof(mult) - a, "%s%u", i ? "," : "", cfg->dim_mult[i]);
		if (i + 1 < cfg->n_up)
			b += (size_t)snprintf(temp + b, sizeof(temp) - b, "%s%u", i ? "," : "", cfg->temporal[i] ? 1 : 0);
	}
	snprintf(buf, len, "z_dim %u, dim %u, dim_mult [%s], res %u, temporal [%s], %s, patch %u", cfg->z_dim, cfg->dim,
		 mult, cfg->num_res_blocks, temp, cfg->is_residual ? "residual" : "plain", cfg->patch);
	return buf;
}

/* ---- loading ---- */

/* "decoder.up_blocks.I.rest": I, rest; -1 when name is not one */
static int wv_block_of(const char *name, const char **rest)
{
	const char *pre = "decoder.up_blocks.";
	size_t n = strlen(pre);
	char *end;

	if (strncmp(name, pre, n) || name[n] < '0' || name[n] > '9')
		return -1;
	unsigned long b = strtoul(name + n, &end, 10);
	if (*end != '.' || b > 1000)
		return -1;
	*rest = end + 1;
	return (int)b;
}

static const struct egr_st_tensor *wv_need(const struct egr_st *st, const char *name, uint32_t ndim, char *err,
					   size_t errlen)
{
	const struct egr_st_tensor *t = egr_st_find(st, name);
	char got[96];

	if (!t)
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' is missing (not a diffusers AutoencoderKLWan file?)",
			 st->path, name);
	else if (t->ndim != ndim)
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected %u dimensions", st->path, name,
			 egr_st_shape_str(t->shape, t->ndim, got, sizeof(got)), ndim);
	return t && t->ndim == ndim ? t : NULL;
}

/* Up blocks, resnets per block, residual-ness and time upsampling, from the names. */
static int wv_infer_blocks(const struct egr_st *st, struct egr_wanvae_cfg *cfg, char *err, size_t errlen)
{
	uint32_t nres = 0;
	int nb = 0;

	for (uint32_t k = 0; k < st->ntensors; k++) {
		const char *rest;
		int b = wv_block_of(st->t[k].name, &rest);
		unsigned j;
		if (b < 0)
			continue;
		nb = b + 1 > nb ? b + 1 : nb;
		if (!strncmp(rest, "upsampler.", 10))
			cfg->is_residual = 1;
		if (b == 0 && sscanf(rest, "resnets.%u.", &j) == 1 && j < 1000 && j + 1 > nres)
			nres = j + 1;
	}
	if (nb < 1 || nb > EGR_WANVAE_MAX_UP || nres < 1 || nres > EGR_WANVAE_MAX_RES) {
		egr_errf(err, errlen,
			 "weights \"%s\": %d decoder.up_blocks (1..%d) with %u resnets (1..%d): not a Wan VAE decoder",
			 st->path, nb, EGR_WANVAE_MAX_UP, nres, EGR_WANVAE_MAX_RES);
		return -EINVAL;
	}
	cfg->n_up = (uint32_t)nb;
	cfg->num_res_blocks = nres - 1;
	for (int i = 0; i + 1 < nb; i++) {
		char nm[96];
		snprintf(nm, sizeof(nm), "decoder.up_blocks.%d.%s.time_conv.weight", i,
			 cfg->is_residual ? "upsampler" : "upsamplers.0");
		cfg->temporal[i] = egr_st_find(st, nm) != NULL;
	}
	return 0;
}

/*
 * The configuration from the file: z_dim from post_quant_conv, the base
 * width and patch from conv_out, dim_mult from each up block's first conv,
 * the rest from the names.  Shapes are all checked afterwards against the
 * network this describes.
 */
static int wv_infer(const struct egr_st *st, struct egr_wanvae_cfg *cfg, char *err, size_t errlen)
{
	const struct egr_st_tensor *pq, *co, *t;
	char nm[96], got[96];

	memset(cfg, 0, sizeof(*cfg));
	if (!(pq = wv_need(st, "post_quant_conv.weight", 5, err, errlen)) ||
	    !(co = wv_need(st, "decoder.conv_out.weight", 5, err, errlen)))
		return -EINVAL;
	if ((co->shape[0] != 3 && co->shape[0] != 12) || co->shape[1] < 1 || co->shape[1] > EGR_WANVAE_MAX_DIM) {
		egr_errf(err, errlen,
			 "weights \"%s\": tensor '%s' has shape %s, expected [3,dim,3,3,3] or (patch 2) [12,dim,3,3,3]",
			 st->path, co->name, egr_st_shape_str(co->shape, co->ndim, got, sizeof(got)));
		return -EINVAL;
	}
	if (pq->shape[0] < 1 || pq->shape[0] > EGR_WANVAE_MAX_Z) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected [z,z,1,1,1] with z in 1..%d",
			 st->path, pq->name, egr_st_shape_str(pq->shape, pq->ndim, got, sizeof(got)), EGR_WANVAE_MAX_Z);
		return -EINVAL;
	}
	cfg->z_dim = (uint32_t)pq->shape[0];
	cfg->dim = (uint32_t)co->shape[1];
	cfg->patch = co->shape[0] == 12 ? 2 : 1;
	int r = wv_infer_blocks(st, cfg, err, errlen);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < cfg->n_up; i++) {
		snprintf(nm, sizeof(nm), "decoder.up_blocks.%u.resnets.0.conv1.weight", i);
		if (!(t = wv_need(st, nm, 5, err, errlen)))
			return -EINVAL;
		if (t->shape[0] % cfg->dim || t->shape[0] / cfg->dim > EGR_WANVAE_MAX_DIM) {
			egr_errf(err, errlen,
				 "weights \"%s\": tensor '%s' has %llu output channels, not a multiple of "
				 "decoder_base_dim %u (conv_out's input)",
				 st->path, nm, (unsigned long long)t->shape[0], cfg->dim);
			return -EINVAL;
		}
		cfg->dim_mult[cfg->n_up - 1 - i] = (uint32_t)(t->shape[0] / cfg->dim);
	}
	return 0;
}

/*
 * Every tensor of the file is a decoder tensor of cfg, or of the encoder half
 * (skipped); anything else refuses the file, by name.
 */
static int wv_check_names(const struct egr_st *st, const struct egr_wanvae_param *p, uint32_t np,
			  const char *cfgs, uint32_t *skipped, char *err, size_t errlen)
{
	*skipped = 0;
	for (uint32_t k = 0; k < st->ntensors; k++) {
		const char *nm = st->t[k].name;
		uint32_t i;
		if (!strncmp(nm, "encoder.", 8) || !strncmp(nm, "quant_conv.", 11)) {
			(*skipped)++;
			continue;
		}
		for (i = 0; i < np && strcmp(p[i].name, nm); i++)
			;
		if (i == np) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s' is not part of the Wan VAE decoder (%s)",
				 st->path, nm, cfgs);
			return -EINVAL;
		}
	}
	return 0;
}

static int wv_load_param(const struct egr_st *st, const struct egr_wanvae_param *p, const char *cfgs, char *err,
			 size_t errlen)
{
	const struct egr_st_tensor *t = egr_st_find(st, p->name);
	char got[96], want[96];

	if (!t) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' is missing (%s)", st->path, p->name, cfgs);
		return -EINVAL;
	}
	if (t->ndim != p->ndim || memcmp(t->shape, p->shape, p->ndim * sizeof(p->shape[0]))) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected %s (%s)", st->path, p->name,
			 egr_st_shape_str(t->shape, t->ndim, got, sizeof(got)),
			 egr_st_shape_str(p->shape, p->ndim, want, sizeof(want)), cfgs);
		return -EINVAL;
	}
	if (t->dtype != EGR_ST_F32 && t->dtype != EGR_ST_BF16 && t->dtype != EGR_ST_F16) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has dtype %s; F32, BF16 or F16 expected", st->path,
			 p->name, t->dtype_name);
		return -EINVAL;
	}
	float *v = malloc((size_t)t->numel * sizeof(float));
	if (!v) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': out of memory", st->path, p->name);
		return -ENOMEM;
	}
	*p->dst = v;
	int r = egr_st_read_f32(st, t, v, err, errlen);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < t->numel; i++) {
		if (!isfinite(v[i])) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s' has a NaN or Inf at element %llu", st->path,
				 p->name, (unsigned long long)i);
			return -EINVAL;
		}
	}
	return 0;
}

static void wv_conv_free(struct egr_wanvae_conv *c)
{
	free(c->w);
	free(c->b);
}

static void wv_resnet_free(struct egr_wanvae_resnet *r)
{
	free(r->gamma1);
	free(r->gamma2);
	wv_conv_free(&r->conv1);
	wv_conv_free(&r->conv2);
	wv_conv_free(&r->shortcut);
}

/* net is calloc'ed: whatever the loader did not fill is NULL */
void egr_wanvae_free(struct egr_wanvae *net)
{
	if (!net)
		return;
	wv_conv_free(&net->post_quant);
	wv_conv_free(&net->conv_in);
	wv_conv_free(&net->conv_out);
	wv_resnet_free(&net->mid[0]);
	wv_resnet_free(&net->mid[1]);
	free(net->attn_gamma);
	wv_conv_free(&net->attn_qkv);
	wv_conv_free(&net->attn_proj);
	for (int i = 0; i < EGR_WANVAE_MAX_UP; i++) {
		for (int j = 0; j < EGR_WANVAE_MAX_RES; j++)
			wv_resnet_free(&net->up[i].res[j]);
		wv_conv_free(&net->up[i].resample);
		wv_conv_free(&net->up[i].time_conv);
	}
	free(net->norm_out_gamma);
	free(net);
}

int egr_wanvae_load(const char *path, struct egr_wanvae **out, char *err, size_t errlen)
{
	struct egr_wanvae_param *p = NULL;
	struct egr_wanvae *net = NULL;
	struct egr_st *st = NULL;
	struct egr_wanvae_cfg cfg;
	char cfgs[192];
	int r, np;

	*out = NULL;
	r = egr_st_open(path, &st, err, errlen);
	if (r < 0)
		return r;
	r = wv_infer(st, &cfg, err, errlen);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	net = calloc(1, sizeof(*net));
	p = calloc(EGR_WANVAE_MAX_PARAMS, sizeof(*p));
	if (!net || !p) {
		egr_errf(err, errlen, "weights \"%s\": out of memory", path);
		goto fail;
	}
	r = np = egr_wanvae_describe(net, &cfg, p, EGR_WANVAE_MAX_PARAMS, err, errlen);
	if (r < 0)
		goto fail;
	egr_wanvae_cfg_str(&cfg, cfgs, sizeof(cfgs));
	r = wv_check_names(st, p, (uint32_t)np, cfgs, &net->skipped_tensors, err, errlen);
	for (int i = 0; i < np && r >= 0; i++)
		r = wv_load_param(st, &p[i], cfgs, err, errlen);
	if (r < 0)
		goto fail;
	net->file_dtype = egr_st_find(st, "decoder.conv_in.weight")->dtype;
	free(p);
	egr_st_close(st);
	*out = net;
	return 0;
fail:
	free(p);
	egr_wanvae_free(net);
	egr_st_close(st);
	return r;
}

uint32_t egr_wanvae_out_frames(const struct egr_wanvae *net, uint32_t T)
{
	return T ? 1 + net->time_factor * (T - 1) : 0;
}

/* ---- the streaming CPU decoder ---- */

/* Activations: t frames of [c][h][w]. */
struct wv_vol {
	float *d;
	uint32_t t, c, h, w;
};

/* A causal conv's time cache: its last n (0..2) input frames. */
struct wv_cache {
	float *buf;
	size_t fsz;
	uint32_t n;
};

enum { WV_OK = 0, WV_FLUSHED, WV_FAILED };

struct egr_wanvae_stream {
	const struct egr_wanvae *net;
	uint32_t h, w;		/* latent size */
	uint32_t fed;		/* latent frames decoded so far */
	int state;
	struct wv_cache slot[EGR_WANVAE_MAX_SLOTS];
};

static size_t wv_fsz(const struct wv_vol *v)
{
	return (size_t)v->c * v->h * v->w;
}

static int wv_alloc(struct wv_vol *v, uint32_t t, uint32_t c, uint32_t h, uint32_t w)
{
	v->t = t, v->c = c, v->h = h, v->w = w;
	v->d = malloc((size_t)t * c * h * w * sizeof(float) + 1);
	return v->d ? 0 : -ENOMEM;
}

/* x takes y's place (x's data freed) */
static void wv_replace(struct wv_vol *x, struct wv_vol *y)
{
	free(x->d);
	*x = *y;
	y->d = NULL;
}

/*
 * One output frame of conv c: taps[k] is the input frame [cin][H][W] of time
 * tap k (NULL: a zero frame), zero spatial padding ks / 2.
 */
static void wv_conv_frame(const struct egr_wanvae_conv *c, const float *const *taps, uint32_t H, uint32_t W, float *out)
{
	const size_t HW = (size_t)H * W;
	const int pad = (int)c->ks / 2;

	for (uint32_t co = 0; co < c->cout; co++) {
		float *acc = out + co * HW;
		for (size_t i = 0; i < HW; i++)
			acc[i] = c->b[co];
		for (uint32_t k = 0; k < c->kt; k++) {
			if (!taps[k])
				continue;	/* a zero frame adds nothing */
			for (uint32_t ci = 0; ci < c->cin; ci++) {
				const float *ip = taps[k] + ci * HW;
				const float *wp = c->w + (((size_t)co * c->cin + ci) * c->kt + k) * c->ks * c->ks;
				for (int ky = 0; ky < (int)c->ks; ky++) {
					for (int kx = 0; kx < (int)c->ks; kx++) {
						const float wv = wp[ky * (int)c->ks + kx];
						const int dx = kx - pad, dy = ky - pad;
						const int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? (int)W - dx : (int)W;
						for (int y = 0; y < (int)H; y++) {
							const int sy = y + dy;
							if (sy < 0 || sy >= (int)H)
								continue;
							const float *srow = ip + (size_t)sy * W + dx;
							float *arow = acc + (size_t)y * W;
							for (int x = x0; x < x1; x++)
								arow[x] = arow[x] + wv * srow[x];
						}
					}
				}
			}
		}
	}
}

/* Keep the last two frames of [cache, in] (fewer at the start), as diffusers' CACHE_T = 2. */
static void wv_cache_push(struct wv_cache *k, const struct wv_vol *in)
{
	const uint32_t total = k->n + in->t, keep = total < 2 ? total : 2;

	for (uint32_t q = 0; q < keep; q++) {
		uint32_t idx = total - keep + q;	/* >= q: reads never overtake writes */
		const float *src = idx < k->n ? k->buf + idx * k->fsz : in->d + (idx - k->n) * k->fsz;
		memmove(k->buf + q * k->fsz, src, k->fsz * sizeof(float));
	}
	k->n = keep;
}

/*
 * x = c(x).  A kt = 3 conv is causal: output frame j reads padded frames j,
 * j + 1, j + 2 of [zeros (2 - n), cache (n), x], then the cache moves on.
 */
static int wv_causal(struct egr_wanvae_stream *s, const struct egr_wanvae_conv *c, struct wv_vol *x)
{
	struct wv_vol y;
	struct wv_cache *k = c->slot >= 0 ? &s->slot[c->slot] : NULL;
	const size_t fsz = wv_fsz(x);

	if (wv_alloc(&y, x->t, c->cout, x->h, x->w) < 0)
		return -ENOMEM;
	if (k && !k->buf) {
		k->fsz = fsz;
		if (!(k->buf = malloc(2 * fsz * sizeof(float)))) {
			free(y.d);
			return -ENOMEM;
		}
	}
	for (uint32_t j = 0; j < x->t; j++) {
		const float *taps[3] = { NULL, NULL, NULL };
		if (!k) {
			taps[0] = x->d + j * fsz;
		} else {
			for (uint32_t t = 0; t < 3; t++) {
				uint32_t p = j + t;	/* padded index: 0, 1 are the two frames before x */
				if (p >= 2)
					taps[t] = x->d + (p - 2) * fsz;
				else if (p >= 2 - k->n)
					taps[t] = k->buf + (p - (2 - k->n)) * fsz;
			}
		}
		wv_conv_frame(c, taps, x->h, x->w, y.d + j * wv_fsz(&y));
	}
	if (k)
		wv_cache_push(k, x);
	wv_replace(x, &y);
	return 0;
}

/* WanRMS_norm over channels, per pixel, then optional SiLU; in place. */
static void wv_norm(const float *gamma, struct wv_vol *x, int silu)
{
	const size_t HW = (size_t)x->h * x->w;
	const float scale = sqrtf((float)x->c);

	for (uint32_t t = 0; t < x->t; t++) {
		float *f = x->d + t * wv_fsz(x);
		for (size_t i = 0; i < HW; i++) {
			double ss = 0;
			for (uint32_t c = 0; c < x->c; c++)
				ss += (double)f[c * HW + i] * f[c * HW + i];
			float den = (float)sqrt(ss);
			if (!(den > 1e-12f))
				den = 1e-12f;	/* F.normalize's eps */
			for (uint32_t c = 0; c < x->c; c++) {
				float v = f[c * HW + i] / den * scale * gamma[c];
				if (silu)
					v = v / (1.0f + expf(-v));
				f[c * HW + i] = v;
			}
		}
	}
}

/* softmax(q^T k / sqrt(C)) v for every query pixel; qkv [3C][HW], o [C][HW] */
static void wv_attend(const float *qkv, uint32_t C, size_t HW, float *p, float *o)
{
	const float *q = qkv, *k = qkv + C * HW, *v = qkv + 2 * C * HW;
	const float scale = 1.0f / sqrtf((float)C);

	for (size_t i = 0; i < HW; i++) {
		float mx = -INFINITY, sum = 0;
		for (size_t j = 0; j < HW; j++) {
			float d = 0;
			for (uint32_t c = 0; c < C; c++)
				d += q[c * HW + i] * k[c * HW + j];
			p[j] = d * scale;
			mx = p[j] > mx ? p[j] : mx;
		}
		for (size_t j = 0; j < HW; j++)
			sum += (p[j] = expf(p[j] - mx));
		for (uint32_t c = 0; c < C; c++) {
			float a = 0;
			for (size_t j = 0; j < HW; j++)
				a += p[j] * v[c * HW + j];
			o[c * HW + i] = a / sum;
		}
	}
}

/* WanAttentionBlock: x += proj(attention(to_qkv(norm(x)))), each frame alone. */
static int wv_attention(const struct egr_wanvae *net, struct wv_vol *x)
{
	const size_t HW = (size_t)x->h * x->w, fsz = wv_fsz(x);
	struct wv_vol n1 = { NULL, 1, x->c, x->h, x->w };
	float *qkv = malloc(3 * fsz * sizeof(float)), *o = malloc(fsz * sizeof(float));
	float *p = malloc(HW * sizeof(float)), *y = malloc(fsz * sizeof(float));
	int r = -ENOMEM;

	n1.d = malloc(fsz * sizeof(float));
	if (!qkv || !o || !p || !y || !n1.d)
		goto out;
	for (uint32_t t = 0; t < x->t; t++) {
		float *f = x->d + t * fsz;
		const float *in[1] = { n1.d }, *ov[1] = { o };
		memcpy(n1.d, f, fsz * sizeof(float));
		wv_norm(net->attn_gamma, &n1, 0);
		wv_conv_frame(&net->attn_qkv, in, x->h, x->w, qkv);
		wv_attend(qkv, x->c, HW, p, o);
		wv_conv_frame(&net->attn_proj, ov, x->h, x->w, y);
		for (size_t i = 0; i < fsz; i++)
			f[i] = y[i] + f[i];
	}
	r = 0;
out:
	free(qkv);
	free(o);
	free(p);
	free(y);
	free(n1.d);
	return r;
}

/* WanResidualBlock: x = conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x) */
static int wv_resnet_run(struct egr_wanvae_stream *s, const struct egr_wanvae_resnet *rn, struct wv_vol *x)
{
	struct wv_vol h = *x, a;
	int r;

	h.d = NULL;
	if (wv_alloc(&a, x->t, x->c, x->h, x->w) < 0)
		return -ENOMEM;
	memcpy(a.d, x->d, x->t * wv_fsz(x) * sizeof(float));
	if (rn->shortcut.w) {
		h = *x;
		x->d = NULL;	/* the shortcut conv consumes x */
		if ((r = wv_causal(s, &rn->shortcut, &h)) < 0)
			goto fail;
	}
	wv_norm(rn->gamma1, &a, 1);
	if ((r = wv_causal(s, &rn->conv1, &a)) < 0)
		goto fail;
	wv_norm(rn->gamma2, &a, 1);
	if ((r = wv_causal(s, &rn->conv2, &a)) < 0)
		goto fail;
	const float *sc = h.d ? h.d : x->d;
	for (size_t i = 0; i < a.t * wv_fsz(&a); i++)
		a.d[i] = a.d[i] + sc[i];
	free(h.d);
	wv_replace(x, &a);
	return 0;
fail:
	free(h.d);
	free(a.d);
	return r;
}

/*
 * The time half of upsample3d: a causal conv C -> 2C whose two halves become
 * frames 2j and 2j + 1.  The first latent frame skips it (diffusers marks
 * the cache "Rep" and passes the frame through); the next one finds an
 * empty cache, i.e. the conv's own zero padding.
 */
static int wv_time_up(struct egr_wanvae_stream *s, const struct egr_wanvae_up *u, struct wv_vol *x)
{
	if (s->fed == 0)
		return 0;
	int r = wv_causal(s, &u->time_conv, x);
	if (r < 0)
		return r;
	/* [t][2C][h][w] is already [2t][C][h][w]: channel half k of frame j is frame 2j + k */
	x->t *= 2;
	x->c /= 2;
	return 0;
}

/* Nearest x2 (nearest-exact, the same at scale 2) then the 3x3 conv, per frame. */
static int wv_resample(const struct egr_wanvae_up *u, struct wv_vol *x)
{
	const uint32_t H = 2 * x->h, W = 2 * x->w;
	struct wv_vol y;
	float *up = malloc((size_t)x->c * H * W * sizeof(float));

	if (!up || wv_alloc(&y, x->t, u->up_out, H, W) < 0) {
		free(up);
		return -ENOMEM;
	}
	for (uint32_t t = 0; t < x->t; t++) {
		const float *f = x->d + t * wv_fsz(x);
		const float *taps[1] = { up };
		for (uint32_t c = 0; c < x->c; c++)
			for (uint32_t yy = 0; yy < H; yy++)
				for (uint32_t xx = 0; xx < W; xx++)
					up[((size_t)c * H + yy) * W + xx] = f[((size_t)c * x->h + yy / 2) * x->w + xx / 2];
		wv_conv_frame(&u->resample, taps, H, W, y.d + t * wv_fsz(&y));
	}
	free(up);
	wv_replace(x, &y);
	return 0;
}

/*
 * DupUp3D shortcut of a residual up block: x += dup(xin).  Output channel o,
 * time phase a, row/column parity p, q reads input channel
 * (((o * ft + a) * 2 + p) * 2 + q) / repeats; on the first latent frame the
 * first ft - 1 frames are dropped, as the main path skipped the time conv.
 */
static void wv_dup_add(const struct egr_wanvae_up *u, const struct wv_vol *xin, struct wv_vol *x, int first)
{
	const uint32_t ft = u->dup_ft, drop = first ? ft - 1 : 0, W = x->w, H = x->h;

	for (uint32_t fo = 0; fo < x->t; fo++) {
		const uint32_t g = fo + drop, ti = g / ft, a = g % ft;
		const float *src = xin->d + ti * wv_fsz(xin);
		float *dst = x->d + fo * wv_fsz(x);
		for (uint32_t o = 0; o < x->c; o++)
			for (uint32_t y = 0; y < H; y++)
				for (uint32_t xx = 0; xx < W; xx++) {
					uint32_t j = ((o * ft + a) * 2 + (y & 1)) * 2 + (xx & 1), ci = j / u->dup_repeats;
					float *d = &dst[((size_t)o * H + y) * W + xx];
					*d = *d + src[((size_t)ci * xin->h + y / 2) * xin->w + xx / 2];
				}
	}
}

static int wv_up_run(struct egr_wanvae_stream *s, const struct egr_wanvae_up *u, struct wv_vol *x)
{
	struct wv_vol xin = { NULL, 0, 0, 0, 0 };
	int r = 0;

	if (u->dup_repeats) {
		if (wv_alloc(&xin, x->t, x->c, x->h, x->w) < 0)
			return -ENOMEM;
		memcpy(xin.d, x->d, x->t * wv_fsz(x) * sizeof(float));
	}
	for (uint32_t j = 0; j < u->nres && r >= 0; j++)
		r = wv_resnet_run(s, &u->res[j], x);
	if (r >= 0 && u->mode == EGR_WANVAE_UP_3D)
		r = wv_time_up(s, u, x);
	if (r >= 0 && u->mode != EGR_WANVAE_UP_NONE)
		r = wv_resample(u, x);
	if (r >= 0 && u->dup_repeats)
		wv_dup_add(u, &xin, x, s->fed == 0);
	free(xin.d);
	return r;
}

/* conv_out's [3 p p][h][w] frames -> RGB [3][p h][p w], clamped (unpatchify: sub-pixel (row i2, column i1) is channel (c p + i1) p + i2) */
static void wv_emit(const struct wv_vol *x, uint32_t P, float *out)
{
	const uint32_t H = x->h * P, W = x->w * P;

	for (uint32_t t = 0; t < x->t; t++) {
		const float *f = x->d + t * wv_fsz(x);
		float *o = out + (size_t)t * 3 * H * W;
		for (uint32_t c = 0; c < 3; c++)
			for (uint32_t y = 0; y < H; y++)
				for (uint32_t xx = 0; xx < W; xx++) {
					uint32_t ch = (c * P + xx % P) * P + y % P;
					float v = f[((size_t)ch * x->h + y / P) * x->w + xx / P];
					v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
					o[((size_t)c * H + y) * W + xx] = v;
				}
	}
}

/* One latent frame, as one call of diffusers' decoder in _decode's loop. */
static int wv_decode_one(struct egr_wanvae_stream *s, const float *lat, float *out, uint32_t *nout)
{
	const struct egr_wanvae *net = s->net;
	struct wv_vol x;
	int r;

	if (wv_alloc(&x, 1, net->cfg.z_dim, s->h, s->w) < 0)
		return -ENOMEM;
	memcpy(x.d, lat, wv_fsz(&x) * sizeof(float));
	if ((r = wv_causal(s, &net->post_quant, &x)) < 0 || (r = wv_causal(s, &net->conv_in, &x)) < 0 ||
	    (r = wv_resnet_run(s, &net->mid[0], &x)) < 0 || (r = wv_attention(net, &x)) < 0 ||
	    (r = wv_resnet_run(s, &net->mid[1], &x)) < 0)
		goto out;
	for (uint32_t i = 0; i < net->cfg.n_up; i++)
		if ((r = wv_up_run(s, &net->up[i], &x)) < 0)
			goto out;
	wv_norm(net->norm_out_gamma, &x, 1);
	if ((r = wv_causal(s, &net->conv_out, &x)) < 0)
		goto out;
	wv_emit(&x, net->cfg.patch, out);
	*nout = x.t;
	s->fed++;
out:
	free(x.d);
	return r;
}

int egr_wanvae_stream_create(const struct egr_wanvae *net, uint32_t lat_h, uint32_t lat_w,
			     struct egr_wanvae_stream **out, char *err, size_t errlen)
{
	struct egr_wanvae_stream *s;

	*out = NULL;
	if (lat_h == 0 || lat_w == 0 || lat_h > 4096 || lat_w > 4096) {
		egr_errf(err, errlen, "wanvae: latent size %ux%u is out of range (1..4096)", lat_w, lat_h);
		return -EINVAL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		egr_errf(err, errlen, "wanvae: out of memory for a stream");
		return -ENOMEM;
	}
	s->net = net;
	s->h = lat_h, s->w = lat_w;
	*out = s;
	return 0;
}

uint32_t egr_wanvae_stream_out_frames(const struct egr_wanvae_stream *s, uint32_t n)
{
	uint32_t tf = s->net->time_factor;

	return s->fed ? tf * n : egr_wanvae_out_frames(s->net, n);
}

void egr_wanvae_stream_size(const struct egr_wanvae_stream *s, uint32_t *height, uint32_t *width)
{
	*height = s->h * s->net->scale;
	*width = s->w * s->net->scale;
}

int egr_wanvae_stream_feed(struct egr_wanvae_stream *s, const float *lat, uint32_t n, float *out, uint32_t *nout,
			   char *err, size_t errlen)
{
	const size_t lsz = (size_t)s->net->cfg.z_dim * s->h * s->w;
	uint32_t H, W, got = 0;
	int r;

	*nout = 0;
	if (s->state != WV_OK) {
		egr_errf(err, errlen, "wanvae: feed after %s", s->state == WV_FLUSHED ? "flush" : "a failed feed");
		return -EINVAL;
	}
	egr_wanvae_stream_size(s, &H, &W);
	for (uint32_t i = 0; i < n; i++) {
		r = wv_decode_one(s, lat + i * lsz, out + (size_t)*nout * 3 * H * W, &got);
		if (r < 0) {
			s->state = WV_FAILED;
			egr_errf(err, errlen, "wanvae: out of memory decoding latent frame %u (%ux%u)", s->fed, s->w,
				 s->h);
			return r;
		}
		*nout += got;
	}
	return 0;
}

int egr_wanvae_stream_flush(struct egr_wanvae_stream *s, uint32_t *nout)
{
	*nout = 0;
	if (s->state == WV_OK)
		s->state = WV_FLUSHED;
	return 0;
}

void egr_wanvae_stream_free(struct egr_wanvae_stream *s)
{
	if (!s)
		return;
	for (int i = 0; i < EGR_WANVAE_MAX_SLOTS; i++)
		free(s->slot[i].buf);
	free(s);
}

void egr_wanvae_to_rgb24(const float *rgb, uint32_t h, uint32_t w, uint8_t *out)
{
	const size_t HW = (size_t)h * w;

	for (size_t i = 0; i < HW; i++)
		for (int k = 0; k < 3; k++)
			out[i * 3 + k] = egr_wanvae_quant_u8(rgb[k * HW + i]);
}

/* ---- latent statistics ---- */

/*
 * Wan 2.1 (z_dim 16): the latents_mean / latents_std defaults of
 * AutoencoderKLWan.__init__ (diffusers src/diffusers/models/autoencoders/
 * autoencoder_kl_wan.py), which the Wan-AI/Wan2.1-*-Diffusers vae configs
 * repeat.  Wan 2.2 5B (z_dim 48): vae22_diffusers_config in diffusers
 * scripts/convert_wan_to_diffusers.py, the config that conversion writes for
 * Wan-AI/Wan2.2-TI2V-5B.
 */
static const float wan21_mean[16] = {
	-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
	0.4134f, -0.0715f, 0.5517f, -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f,
};
static const float wan21_std[16] = {
	2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
	3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f,
};
static const float wan22_mean[48] = {
	-0.2289f, -0.0052f, -0.1323f, -0.2339f, -0.2799f, 0.0174f, 0.1838f, 0.1557f,
	-0.1382f, 0.0542f, 0.2813f, 0.0891f, 0.1570f, -0.0098f, 0.0375f, -0.1825f,
	-0.2246f, -0.1207f, -0.0698f, 0.5109f, 0.2665f, -0.2108f, -0.2158f, 0.2502f,
	-0.2055f, -0.0322f, 0.1109f, 0.1567f, -0.0729f, 0.0899f, -0.2799f, -0.1230f,
	-0.0313f, -0.1649f, 0.0117f, 0.0723f, -0.2839f, -0.2083f, -0.0520f, 0.3748f,
	0.0152f, 0.1957f, 0.1433f, -0.2944f, 0.3573f, -0.0548f, -0.1681f, -0.0667f,
};
static const float wan22_std[48] = {
	0.4765f, 1.0364f, 0.4514f, 1.1677f, 0.5313f, 0.4990f, 0.4818f, 0.5013f,
	0.8158f, 1.0344f, 0.5894f, 1.0901f, 0.6885f, 0.6165f, 0.8454f, 0.4978f,
	0.5759f, 0.3523f, 0.7135f, 0.6804f, 0.5833f, 1.4146f, 0.8986f, 0.5659f,
	0.7069f, 0.5338f, 0.4889f, 0.4917f, 0.4069f, 0.4999f, 0.6866f, 0.4093f,
	0.5709f, 0.6065f, 0.6415f, 0.4944f, 0.5726f, 1.2042f, 0.5458f, 1.6887f,
	0.3971f, 1.0600f, 0.3943f, 0.5537f, 0.5444f, 0.4089f, 0.7468f, 0.7744f,
};

int egr_wanvae_builtin_stats(uint32_t C, const float **mean, const float **std)
{
	if (C == 16) {
		*mean = wan21_mean, *std = wan21_std;
	} else if (C == 48) {
		*mean = wan22_mean, *std = wan22_std;
	} else {
		*mean = *std = NULL;
		return -ENOENT;
	}
	return 0;
}

void egr_wanvae_denormalize(float *lat, uint32_t n, uint32_t C, size_t hw, const float *mean, const float *std)
{
	for (uint32_t f = 0; f < n; f++) {
		for (uint32_t c = 0; c < C; c++) {
			/* latents_std = 1.0 / std (binary32); latents / latents_std + latents_mean */
			const float inv = 1.0f / std[c], m = mean[c];
			float *p = lat + ((size_t)f * C + c) * hw;
			for (size_t i = 0; i < hw; i++)
				p[i] = p[i] / inv + m;
		}
	}
}

static int wv_json_floats(const char *path, json_t *root, const char *key, uint32_t C, float *dst, int positive,
			  char *err, size_t errlen)
{
	json_t *a = json_object_get(root, key), *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) != C) {
		egr_errf(err, errlen, "vae config \"%s\": \"%s\" must be an array of %u numbers (z_dim)", path, key, C);
		return -EINVAL;
	}
	json_array_foreach(a, i, v) {
		double d = json_number_value(v);
		if (!json_is_number(v) || !isfinite(d) || (positive && !(d > 0))) {
			egr_errf(err, errlen, "vae config \"%s\": %s[%zu] is not a %snumber", path, key, i,
				 positive ? "positive " : "");
			return -EINVAL;
		}
		dst[i] = (float)d;
	}
	return 0;
}

int egr_wanvae_config_stats(const char *path, uint32_t C, float *mean, float *std, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *z;
	int r;

	if (!root) {
		egr_errf(err, errlen, "vae config \"%s\": line %d: %s", path, je.line, je.text);
		return -EINVAL;
	}
	z = json_object_get(root, "z_dim");
	if (z && (!json_is_integer(z) || json_integer_value(z) != (json_int_t)C)) {
		egr_errf(err, errlen, "vae config \"%s\": z_dim is not %u, the latents' channels", path, C);
		r = -EINVAL;
	} else {
		r = wv_json_floats(path, root, "latents_mean", C, mean, 0, err, errlen);
		if (r == 0)
			r = wv_json_floats(path, root, "latents_std", C, std, 1, err, errlen);
	}
	json_decref(root);
	return r;
}

/* ---- seeded weights ---- */

static int wv_ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/*
 * Values for one tensor: gammas 1 +- 0.1, biases +- 0.02, conv weights
 * N(0, gain^2 / fan_in): the RMS norms keep every block's input at unit
 * scale, residual branches (conv2, proj) are damped, and conv_out's gain puts
 * the output's spread near 0.5 so little of it hits the clamp.
 */
static void wv_fill(const struct egr_wanvae_param *p, struct egr_taesd_rng *rng, float *v)
{
	uint64_t n = 1, fan = 1;
	double sd, mean = 0;

	for (uint32_t k = 0; k < p->ndim; k++)
		n *= p->shape[k];
	for (uint32_t k = 1; k < p->ndim; k++)
		fan *= p->shape[k];
	if (wv_ends(p->name, ".gamma")) {
		mean = 1.0, sd = 0.1;
	} else if (wv_ends(p->name, ".bias")) {
		sd = 0.02;
	} else {
		double gain = 1.0;
		if (wv_ends(p->name, "conv2.weight") || wv_ends(p->name, "proj.weight"))
			gain = 0.5;
		if (wv_ends(p->name, "conv_out.weight"))
			gain = 0.8;
		sd = gain / sqrt((double)fan);
	}
	for (uint64_t i = 0; i < n; i++)
		v[i] = (float)(mean + egr_taesd_rng_normal(rng) * sd);
}

int egr_wanvae_write_random(const char *path, const struct egr_wanvae_cfg *cfg, uint64_t seed, uint32_t dtype,
			    char *err, size_t errlen)
{
	struct egr_wanvae *net = calloc(1, sizeof(*net));
	struct egr_wanvae_param *p = calloc(EGR_WANVAE_MAX_PARAMS, sizeof(*p));
	struct egr_st_wtensor *ts = calloc(EGR_WANVAE_MAX_PARAMS, sizeof(*ts));
	struct egr_taesd_rng rng;
	int r = -ENOMEM, np = 0;

	if (!net || !p || !ts) {
		egr_errf(err, errlen, "wanvae: out of memory generating weights");
		goto out;
	}
	r = np = egr_wanvae_describe(net, cfg, p, EGR_WANVAE_MAX_PARAMS, err, errlen);
	if (r < 0)
		goto out;
	egr_taesd_rng_seed(&rng, seed);
	for (int i = 0; i < np; i++) {
		uint64_t n = 1;
		for (uint32_t k = 0; k < p[i].ndim; k++)
			n *= p[i].shape[k];
		float *v = malloc(n * sizeof(float));
		if (!v) {
			r = -ENOMEM;
			egr_errf(err, errlen, "wanvae: out of memory generating '%s'", p[i].name);
			goto out;
		}
		*p[i].dst = v;
		wv_fill(&p[i], &rng, v);
		ts[i] = (struct egr_st_wtensor){ p[i].name, dtype, p[i].ndim, { 0 }, v };
		memcpy(ts[i].shape, p[i].shape, p[i].ndim * sizeof(p[i].shape[0]));
	}
	r = egr_st_write(path, ts, (uint32_t)np, err, errlen);
out:
	free(ts);
	free(p);
	egr_wanvae_free(net);
	return r;
}
