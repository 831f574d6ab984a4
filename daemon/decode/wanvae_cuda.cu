/*
 * wanvae_cuda: the Wan VAE decoder on the GPU (wanvae_cuda.h), the CPU
 * stream of wanvae.c layer for layer, on gnet's layers.
 *
 * Layout of a causal conv's input: [2 history frames][the F new frames] in
 * one buffer (H), so cuDNN runs the 3x3x3 conv over F + 2 frames with no
 * time padding; the history comes from the slot's two saved frames and goes
 * back there (the last two frames of H) after the conv.  The layer that
 * makes the conv's input (a norm, post_quant_conv, a copy) writes straight
 * into H after the history.
 *
 * Biases: cuDNN's forward has none, so each conv's bias is added by the
 * next kernel that reads its output when there is one (RMS norm, upsample,
 * emit), else in one pass (gn_bias).  A resnet's second conv accumulates
 * into the residual (beta = 1) and one pass adds its bias and the
 * shortcut's together.
 *
 * Buffers: one workspace per stream, cut into the few tensors a layer
 * needs at once; their sizes come from a dry run of the network at the
 * stream's batch size (every op records what it would use, runs nothing).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "daemon/base/log.h"
#include "daemon/base/vocab.h"
#include "daemon/decode/frame.h"
}
#include "daemon/decode/gnet.cuh"
#include "daemon/decode/wanvae_cuda.h"

struct wg_conv {
	struct gn_conv c;
	int32_t slot;		/* causal kt = 3: its history, else -1 */
	uint32_t cin;		/* input channels */
};

struct wg_resnet {
	uint32_t cin, cout;
	float *g1, *g2;
	struct wg_conv c1, c2, sc;	/* sc.c.w NULL: identity */
	float *bsum;		/* conv2 bias (+ shortcut bias) */
};

struct wg_up {
	uint32_t cin, cout, nres, mode, up_out, dup_ft, dup_repeats;
	struct wg_resnet res[EGR_WANVAE_MAX_RES];
	struct wg_conv resample, time_conv;
};

struct egr_wanvae_gpu {
	struct gn_ctx gn;
	struct egr_wanvae_cfg cfg;
	uint32_t nslots, time_factor, scale;
	struct wg_conv post_quant, conv_in, conv_out, qkv, proj;
	struct wg_resnet mid[2];
	float *attn_gamma, *norm_out_gamma;
	struct wg_up up[EGR_WANVAE_MAX_UP];
	/* allocations to free: every device pointer above is also listed here */
	void *dev[4 * EGR_WANVAE_MAX_PARAMS];
	uint32_t ndev;
};

enum { WB_LAT, WB_X, WB_Y, WB_XIN, WB_H, WB_T, WB_U, WB_ATT, WB_N };

struct egr_wanvae_gpu_stream {
	struct egr_wanvae_gpu *g;
	uint32_t h, w, batch, fed;
	int failed;
	float *mean, *inv;	/* de-normalisation, device, or NULL */
	size_t need[WB_N], hist_need[EGR_WANVAE_MAX_SLOTS];
	void *buf[WB_N];
	void *hist[EGR_WANVAE_MAX_SLOTS];	/* 2 frames each */
	int dry;
	char *err;
	size_t errlen;
};

/* a tensor: F frames of h x w x C, in buffer b (or at p) */
struct wg_t {
	void *p;
	uint32_t F, h, w, C;
};

static size_t wg_fbytes(const struct wg_t *t)
{
	return (size_t)t->h * t->w * t->C * 2;
}

/* ---- weights ---------------------------------------------------------- */

static int wg_dev_floats(struct egr_wanvae_gpu *g, const float *src, uint32_t n, float **out, char *err,
			 size_t errlen)
{
	*out = NULL;
	if (!src)
		return 0;
	if (g->ndev == sizeof(g->dev) / sizeof(g->dev[0])) {
		egr_errf(err, errlen, "wan vae: more than %zu parameter arrays", sizeof(g->dev) / sizeof(g->dev[0]));
		return -ENOMEM;
	}
	GN_CU(cudaMalloc((void **)out, n * sizeof(float)), "cudaMalloc(wan vae parameters, %u floats)", n);
	g->dev[g->ndev++] = *out;
	GN_CU(cudaMemcpy(*out, src, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy(wan vae parameters)");
	return 0;
}

static int wg_conv_up(struct egr_wanvae_gpu *g, const struct egr_wanvae_conv *c, struct wg_conv *d, char *err,
		      size_t errlen)
{
	const uint32_t pad = (c->cout + 7) / 8 * 8;

	/* cout rounded up: only conv_out (RGB, 3 p^2 channels) needs it */
	d->slot = c->slot;
	d->cin = c->cin;
	return gn_conv_upload(&g->gn, &d->c, c->w, c->b, c->cin, c->cout, c->kt, c->ks, 0, c->cin, pad, err, errlen);
}

static int wg_resnet_up(struct egr_wanvae_gpu *g, const struct egr_wanvae_resnet *r, struct wg_resnet *d, char *err,
			size_t errlen)
{
	float *b = (float *)malloc(r->cout * sizeof(float));
	int rc;

	if (!b)
		return -ENOMEM;
	d->cin = r->cin, d->cout = r->cout;
	for (uint32_t i = 0; i < r->cout; i++)
		b[i] = r->conv2.b[i] + (r->shortcut.w ? r->shortcut.b[i] : 0.0f);
	rc = wg_dev_floats(g, b, r->cout, &d->bsum, err, errlen);
	free(b);
	if (rc < 0 || (rc = wg_dev_floats(g, r->gamma1, r->cin, &d->g1, err, errlen)) < 0 ||
	    (rc = wg_dev_floats(g, r->gamma2, r->cout, &d->g2, err, errlen)) < 0 ||
	    (rc = wg_conv_up(g, &r->conv1, &d->c1, err, errlen)) < 0 ||
	    (rc = wg_conv_up(g, &r->conv2, &d->c2, err, errlen)) < 0)
		return rc;
	d->sc.slot = -1;
	if (r->shortcut.w)
		rc = wg_conv_up(g, &r->shortcut, &d->sc, err, errlen);
	return rc;
}

static int wg_check_net(const struct egr_wanvae *net, char *err, size_t errlen)
{
	const uint32_t dims[3] = { net->cfg.z_dim, net->cfg.dim, net->up[net->cfg.n_up - 1].up_out };

	for (int i = 0; i < 3; i++) {
		if (dims[i] % 8) {
			egr_errf(err, errlen, "wan vae on the GPU: %u channels (%s) is not a multiple of 8; this net runs on the cpu backend only",
				 dims[i], i == 0 ? "z_dim" : "decoder width");
			return -EINVAL;
		}
	}
	for (uint32_t i = 0; i < net->cfg.n_up; i++) {
		const struct egr_wanvae_up *u = &net->up[i];
		if (u->cin % 8 || u->cout % 8 || u->up_out % 8) {
			egr_errf(err, errlen, "wan vae on the GPU: up block %u has %u -> %u channels, not multiples of 8",
				 i, u->cin, u->cout);
			return -EINVAL;
		}
	}
	return 0;
}

static int wg_upload(struct egr_wanvae_gpu *g, const struct egr_wanvae *net, char *err, size_t errlen)
{
	GN_TRY(wg_conv_up(g, &net->post_quant, &g->post_quant, err, errlen));
	GN_TRY(wg_conv_up(g, &net->conv_in, &g->conv_in, err, errlen));
	GN_TRY(wg_conv_up(g, &net->conv_out, &g->conv_out, err, errlen));
	GN_TRY(wg_conv_up(g, &net->attn_qkv, &g->qkv, err, errlen));
	GN_TRY(wg_conv_up(g, &net->attn_proj, &g->proj, err, errlen));
	GN_TRY(wg_dev_floats(g, net->attn_gamma, net->mid[0].cout, &g->attn_gamma, err, errlen));
	GN_TRY(wg_dev_floats(g, net->norm_out_gamma, net->conv_out.cin, &g->norm_out_gamma, err, errlen));
	for (int i = 0; i < 2; i++)
		GN_TRY(wg_resnet_up(g, &net->mid[i], &g->mid[i], err, errlen));
	for (uint32_t i = 0; i < net->cfg.n_up; i++) {
		const struct egr_wanvae_up *u = &net->up[i];
		struct wg_up *d = &g->up[i];
		d->cin = u->cin, d->cout = u->cout, d->nres = u->nres, d->mode = u->mode, d->up_out = u->up_out;
		d->dup_ft = u->dup_ft, d->dup_repeats = u->dup_repeats;
		for (uint32_t j = 0; j < u->nres; j++)
			GN_TRY(wg_resnet_up(g, &u->res[j], &d->res[j], err, errlen));
		d->resample.slot = d->time_conv.slot = -1;
		if (u->mode != EGR_WANVAE_UP_NONE)
			GN_TRY(wg_conv_up(g, &u->resample, &d->resample, err, errlen));
		if (u->mode == EGR_WANVAE_UP_3D)
			GN_TRY(wg_conv_up(g, &u->time_conv, &d->time_conv, err, errlen));
	}
	return 0;
}

extern "C" int egr_wanvae_gpu_create(const struct egr_wanvae *net, struct CUstream_st *stream,
				     struct egr_wanvae_gpu **out, char *err, size_t errlen)
{
	struct egr_wanvae_gpu *g;
	int rc;

	*out = NULL;
	if ((rc = wg_check_net(net, err, errlen)) < 0)
		return rc;
	if (!(g = (struct egr_wanvae_gpu *)calloc(1, sizeof(*g)))) {
		egr_errf(err, errlen, "wan vae: out of memory");
		return -ENOMEM;
	}
	g->cfg = net->cfg;
	g->nslots = net->nslots;
	g->time_factor = net->time_factor;
	g->scale = net->scale;
	if ((rc = gn_init(&g->gn, GN_BF16, (cudaStream_t)stream, err, errlen)) < 0 ||
	    (rc = wg_upload(g, net, err, errlen)) < 0) {
		egr_wanvae_gpu_destroy(g);
		return rc;
	}
	*out = g;
	return 0;
}

static void wg_conv_free(struct wg_conv *c)
{
	gn_conv_free(&c->c);
}

extern "C" void egr_wanvae_gpu_destroy(struct egr_wanvae_gpu *g)
{
	if (!g)
		return;
	if (g->gn.s)
		cudaStreamSynchronize(g->gn.s);
	struct wg_conv *cs[] = { &g->post_quant, &g->conv_in, &g->conv_out, &g->qkv, &g->proj };
	for (auto c : cs)
		wg_conv_free(c);
	for (int i = 0; i < 2; i++) {
		wg_conv_free(&g->mid[i].c1), wg_conv_free(&g->mid[i].c2), wg_conv_free(&g->mid[i].sc);
	}
	for (uint32_t i = 0; i < EGR_WANVAE_MAX_UP; i++) {
		struct wg_up *u = &g->up[i];
		for (uint32_t j = 0; j < EGR_WANVAE_MAX_RES; j++)
			wg_conv_free(&u->res[j].c1), wg_conv_free(&u->res[j].c2), wg_conv_free(&u->res[j].sc);
		wg_conv_free(&u->resample), wg_conv_free(&u->time_conv);
	}
	for (uint32_t i = 0; i < g->ndev; i++)
		cudaFree(g->dev[i]);
	gn_fini(&g->gn);
	free(g);
}

extern "C" uint64_t egr_wanvae_gpu_searches(const struct egr_wanvae_gpu *g)
{
	return g->gn.searches;
}

/* ---- the ops: each records its needs in a dry run, runs otherwise ---- */

static void *wg_need(struct egr_wanvae_gpu_stream *s, int b, size_t bytes)
{
	if (s->need[b] < bytes)
		s->need[b] = bytes;	/* only grows in the dry run; sized before any real run */
	return s->buf[b];
}

#define WG_ERR s->err, s->errlen

/* H = [history of slot, room for F frames]: returns H's new-frames part */
static int wg_causal_in(struct egr_wanvae_gpu_stream *s, const struct wg_conv *c, uint32_t F, uint32_t h,
			uint32_t w, void **H, void **fresh)
{
	const size_t fb = (size_t)h * w * c->cin * 2;

	*H = wg_need(s, WB_H, (F + 2) * fb);
	*fresh = s->dry ? NULL : (char *)*H + 2 * fb;
	if (s->hist_need[c->slot] < 2 * fb)
		s->hist_need[c->slot] = 2 * fb;
	if (s->dry)
		return 0;
	return gn_copy_frames(&s->g->gn, *H, s->hist[c->slot], 2, fb, WG_ERR);
}

/* run the causal conv over H (F + 2 frames) into y (beta), then keep H's last two frames */
static int wg_causal_run(struct egr_wanvae_gpu_stream *s, const struct wg_conv *c, void *H, uint32_t F, uint32_t h,
			 uint32_t w, void *y, float beta)
{
	const size_t fb = (size_t)h * w * c->cin * 2;

	if (s->dry)
		return 0;
	GN_TRY(gn_conv(&s->g->gn, &c->c, H, F + 2, h, w, y, beta, WG_ERR));
	return gn_copy_frames(&s->g->gn, s->hist[c->slot], (char *)H + (size_t)F * fb, 2, fb, WG_ERR);
}

/* x -> its resnet: x (in buffer X) becomes the output, in x->p's buffer or the other one */
static int wg_resnet(struct egr_wanvae_gpu_stream *s, const struct wg_resnet *r, struct wg_t *x, int *xb)
{
	struct gn_ctx *gn = &s->g->gn;
	const size_t npix = (size_t)x->F * x->h * x->w;
	const int yb = *xb == WB_X ? WB_Y : WB_X;
	void *H, *fresh, *R = x->p, *T = wg_need(s, WB_T, npix * r->cout * 2);

	if (r->sc.c.w) {
		R = wg_need(s, yb, npix * r->cout * 2);
		if (!s->dry)
			GN_TRY(gn_conv(gn, &r->sc.c, x->p, x->F, x->h, x->w, R, 0.0f, WG_ERR));
	}
	GN_TRY(wg_causal_in(s, &r->c1, x->F, x->h, x->w, &H, &fresh));
	if (!s->dry)
		GN_TRY(gn_rmsnorm(gn, x->p, NULL, npix, r->cin, r->g1, 1, fresh, WG_ERR));
	GN_TRY(wg_causal_run(s, &r->c1, H, x->F, x->h, x->w, T, 0.0f));
	GN_TRY(wg_causal_in(s, &r->c2, x->F, x->h, x->w, &H, &fresh));
	if (!s->dry)
		GN_TRY(gn_rmsnorm(gn, T, r->c1.c.b, npix, r->cout, r->g2, 1, fresh, WG_ERR));
	GN_TRY(wg_causal_run(s, &r->c2, H, x->F, x->h, x->w, R, 1.0f));
	if (!s->dry)
		GN_TRY(gn_bias(gn, R, npix, r->cout, r->bsum, 0, WG_ERR));
	x->p = R;
	x->C = r->cout;
	if (r->sc.c.w)
		*xb = yb;
	return 0;
}

/* the mid block's attention, in place: x += proj(attention(qkv(norm(x)))) */
static int wg_attention(struct egr_wanvae_gpu_stream *s, struct wg_t *x)
{
	struct gn_ctx *gn = &s->g->gn;
	const uint32_t N = x->h * x->w, C = x->C;
	const size_t npix = (size_t)x->F * N, scratch = gn_attention_scratch(N);
	void *n1 = wg_need(s, WB_U, npix * C * 2), *qkv = wg_need(s, WB_T, npix * 3 * C * 2);
	void *att = wg_need(s, WB_ATT, scratch);

	if (s->dry)
		return 0;
	GN_TRY(gn_rmsnorm(gn, x->p, NULL, npix, C, s->g->attn_gamma, 0, n1, WG_ERR));
	GN_TRY(gn_conv(gn, &s->g->qkv.c, n1, x->F, x->h, x->w, qkv, 0.0f, WG_ERR));
	GN_TRY(gn_bias(gn, qkv, npix, 3 * C, s->g->qkv.c.b, 0, WG_ERR));
	GN_TRY(gn_attention(gn, qkv, x->F, N, C, n1, att, scratch, WG_ERR));
	GN_TRY(gn_conv(gn, &s->g->proj.c, n1, x->F, x->h, x->w, x->p, 1.0f, WG_ERR));
	return gn_bias(gn, x->p, npix, C, s->g->proj.c.b, 0, WG_ERR);
}

/*
 * upsample3d's time half then the spatial half, into U: frames that skip the
 * time conv (the first latent frame's, first = 1) pass through; every other
 * frame j becomes frames 2j, 2j + 1 from the two channel halves of the conv.
 * upsample2d: the spatial half only.  Returns U's frame count in *F2.
 */
static int wg_time_and_space(struct egr_wanvae_gpu_stream *s, const struct wg_up *u, const struct wg_t *x, int first,
			     void *U, uint32_t *F2)
{
	struct gn_ctx *gn = &s->g->gn;
	const uint32_t C = x->C, skip = first && u->mode == EGR_WANVAE_UP_3D ? 1 : 0;
	const size_t ufb = (size_t)4 * x->h * x->w * C;	/* elements of an upsampled frame */

	if (u->mode == EGR_WANVAE_UP_2D) {
		*F2 = x->F;
		return s->dry ? 0 : gn_upsample(gn, x->p, wg_fbytes(x) / 2, C, 0, NULL, x->F, x->h, x->w, C, 2, U, ufb, WG_ERR);
	}
	const uint32_t nt = x->F - skip;
	*F2 = skip + 2 * nt;
	if (skip && !s->dry)
		GN_TRY(gn_upsample(gn, x->p, 0, C, 0, NULL, 1, x->h, x->w, C, 2, U, ufb, WG_ERR));
	if (!nt)
		return 0;
	void *H, *fresh, *T = wg_need(s, WB_T, (size_t)nt * x->h * x->w * 2 * C * 2);
	GN_TRY(wg_causal_in(s, &u->time_conv, nt, x->h, x->w, &H, &fresh));
	if (!s->dry)
		GN_TRY(gn_copy_frames(gn, fresh, (char *)x->p + skip * wg_fbytes(x), nt, wg_fbytes(x), WG_ERR));
	GN_TRY(wg_causal_run(s, &u->time_conv, H, nt, x->h, x->w, T, 0.0f));
	for (uint32_t k = 0; k < 2 && !s->dry; k++)
		GN_TRY(gn_upsample(gn, T, (size_t)x->h * x->w * 2 * C, 2 * C, k * C, u->time_conv.c.b, nt, x->h, x->w,
				   C, 2, (char *)U + (skip + k) * ufb * 2, 2 * ufb, WG_ERR));
	return 0;
}

/*
 * The resample conv's bias and DupUp3D's shortcut added to its output y:
 *   y[fo][Y][X][o] = bf16(bf16(y + b[o]) + xin[(fo + drop) / ft][Y / 2][X / 2][j / repeats]),
 *   j = (((o ft + a) 2 + Y % 2) 2 + X % 2), a = (fo + drop) % ft
 * (gn_bias's rounding, then the add's: the bytes of the two passes this
 * replaced).  A thread takes 8 channels of one pixel: one 16-byte load and
 * store of y, the index arithmetic once per pixel, 8 gathers from xin (a
 * quarter of y's pixels, read through the cache).  The element-wise kernel
 * before it, with 64-bit divisions per element, ran at 14% of the DRAM's rate
 * and took 6.4% of a Wan 2.2 5B decode (ncu, H100, 2026-11-26).
 */
__global__ void wg_k_bias_dup_add(const __nv_bfloat16 *xin, uint32_t cin, uint32_t h, uint32_t w, __nv_bfloat16 *y,
				  const float *b, uint32_t F, uint32_t C, uint32_t ft, uint32_t drop, uint32_t repeats)
{
	const uint32_t W = 2 * w, H = 2 * h, C8 = C / 8;
	const size_t nvec = (size_t)F * H * W * C8;

	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nvec; i += (size_t)gridDim.x * blockDim.x) {
		const size_t p = i / C8, fy = p / W;
		const uint32_t o0 = (uint32_t)(i - p * C8) * 8, X = (uint32_t)(p - fy * W);
		const uint32_t Y = (uint32_t)(fy % H), fo = (uint32_t)(fy / H);
		const uint32_t gidx = fo + drop, ti = gidx / ft, a = gidx % ft;
		const uint32_t jlo = (a * 2 + (Y & 1)) * 2 + (X & 1);	/* j = 4 ft o + jlo */
		const __nv_bfloat16 *src = xin + (((size_t)ti * h + Y / 2) * w + X / 2) * cin;
		uint4 u = *(const uint4 *)(y + i * 8);
		__nv_bfloat16 *e = (__nv_bfloat16 *)&u;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			const uint32_t o = o0 + k, j = 4 * ft * o + jlo;
			const float t = __bfloat162float(__float2bfloat16_rn(__bfloat162float(e[k]) + (b ? b[o] : 0.0f)));
			e[k] = __float2bfloat16_rn(t + __bfloat162float(src[j / repeats]));
		}
		*(uint4 *)(y + i * 8) = u;
	}
}

static int wg_up_block(struct egr_wanvae_gpu_stream *s, const struct wg_up *u, struct wg_t *x, int *xb, int first)
{
	struct gn_ctx *gn = &s->g->gn;
	struct wg_t in = *x;
	char *err = s->err;
	size_t errlen = s->errlen;

	if (u->dup_repeats) {
		in.p = wg_need(s, WB_XIN, (size_t)x->F * wg_fbytes(x));
		if (!s->dry)
			GN_TRY(gn_copy_frames(gn, in.p, x->p, x->F, wg_fbytes(x), WG_ERR));
	}
	for (uint32_t j = 0; j < u->nres; j++)
		GN_TRY(wg_resnet(s, &u->res[j], x, xb));
	if (u->mode == EGR_WANVAE_UP_NONE)
		return 0;
	/* the upsampled frames: at most 2 per input frame */
	void *U = wg_need(s, WB_U, (size_t)2 * x->F * 4 * wg_fbytes(x));
	uint32_t F2;
	GN_TRY(wg_time_and_space(s, u, x, first, U, &F2));
	const int yb = *xb == WB_X ? WB_Y : WB_X;
	struct wg_t y = { wg_need(s, yb, (size_t)F2 * 4 * x->h * x->w * u->up_out * 2), F2, 2 * x->h, 2 * x->w,
			  u->up_out };
	if (!s->dry) {
		GN_TRY(gn_conv(gn, &u->resample.c, U, F2, y.h, y.w, y.p, 0.0f, WG_ERR));
		if (!u->dup_repeats)
			GN_TRY(gn_bias(gn, y.p, (size_t)F2 * y.h * y.w, y.C, u->resample.c.b, 0, WG_ERR));
	}
	if (u->dup_repeats && !s->dry) {
		const size_t nvec = (size_t)F2 * y.h * y.w * (y.C / 8);
		wg_k_bias_dup_add<<<gn_grid(nvec, 1024), 256, 0, gn->s>>>(
			(const __nv_bfloat16 *)in.p, in.C, in.h, in.w, (__nv_bfloat16 *)y.p, u->resample.c.b, F2, y.C,
			u->dup_ft, first ? u->dup_ft - 1 : 0, u->dup_repeats);
		GN_CU(cudaGetLastError(), "wan vae DupUp3D kernel launch");
	}
	*x = y;
	*xb = yb;
	return 0;
}

/* latent frames [n][z][h][w] (device) -> frames in dst; *nout frames */
static int wg_decode(struct egr_wanvae_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n, uint32_t format,
		     void *dst, uint32_t *nout)
{
	struct egr_wanvae_gpu *g = s->g;
	struct gn_ctx *gn = &g->gn;
	const int first = s->fed == 0;
	const uint32_t z = g->cfg.z_dim;
	const size_t hw = (size_t)s->h * s->w;
	void *H, *fresh, *lat = wg_need(s, WB_LAT, n * hw * z * 2);
	struct wg_t x = { NULL, n, s->h, s->w, z };
	int xb = WB_X;

	if (!s->dry)
		GN_TRY(gn_latents(gn, d_lat, dtype == EGR_DT_F32, n, z, hw, s->inv, s->mean, 0, lat, WG_ERR));
	/* post_quant_conv (1x1x1) writes conv_in's input; conv_in's output is x */
	GN_TRY(wg_causal_in(s, &g->conv_in, n, s->h, s->w, &H, &fresh));
	if (!s->dry) {
		GN_TRY(gn_conv(gn, &g->post_quant.c, lat, n, s->h, s->w, fresh, 0.0f, WG_ERR));
		GN_TRY(gn_bias(gn, fresh, n * hw, z, g->post_quant.c.b, 0, WG_ERR));
	}
	x.C = g->conv_in.c.cout;
	x.p = wg_need(s, WB_X, n * hw * x.C * 2);
	GN_TRY(wg_causal_run(s, &g->conv_in, H, n, s->h, s->w, x.p, 0.0f));
	if (!s->dry)
		GN_TRY(gn_bias(gn, x.p, n * hw, x.C, g->conv_in.c.b, 0, WG_ERR));
	GN_TRY(wg_resnet(s, &g->mid[0], &x, &xb));
	GN_TRY(wg_attention(s, &x));
	GN_TRY(wg_resnet(s, &g->mid[1], &x, &xb));
	for (uint32_t i = 0; i < g->cfg.n_up; i++)
		GN_TRY(wg_up_block(s, &g->up[i], &x, &xb, first));
	/* norm_out + SiLU -> conv_out -> frames */
	const size_t npix = (size_t)x.F * x.h * x.w;
	void *T = wg_need(s, WB_T, npix * g->conv_out.c.cout * 2);
	GN_TRY(wg_causal_in(s, &g->conv_out, x.F, x.h, x.w, &H, &fresh));
	if (!s->dry)
		GN_TRY(gn_rmsnorm(gn, x.p, NULL, npix, x.C, g->norm_out_gamma, 1, fresh, WG_ERR));
	GN_TRY(wg_causal_run(s, &g->conv_out, H, x.F, x.h, x.w, T, 0.0f));
	*nout = x.F;
	if (s->dry)
		return 0;
	const uint32_t P = g->cfg.patch;
	struct gn_emit_args a = { x.F, x.h, x.w, g->conv_out.c.cout, P, 1, P, g->conv_out.c.b,
				  -1.0f, 1.0f, 1.0f, 0.5f, format };
	return gn_emit(gn, T, &a, dst, WG_ERR);
}

/* ---- streams ---------------------------------------------------------- */

static void wg_stream_release(struct egr_wanvae_gpu_stream *s)
{
	for (int i = 0; i < WB_N; i++) {
		if (s->buf[i])
			cudaFree(s->buf[i]);
		s->buf[i] = NULL;
	}
	for (int i = 0; i < EGR_WANVAE_MAX_SLOTS; i++) {
		if (s->hist[i])
			cudaFree(s->hist[i]);
		s->hist[i] = NULL;
	}
}

/* size everything for batches of b latent frames (the dry run of a full, not first, batch) */
static size_t wg_plan(struct egr_wanvae_gpu_stream *s, uint32_t b)
{
	uint32_t nout, fed = s->fed;
	size_t total = 0;

	memset(s->need, 0, sizeof(s->need));
	memset(s->hist_need, 0, sizeof(s->hist_need));
	s->dry = 1;
	s->fed = 1;
	wg_decode(s, NULL, EGR_DT_F32, b, EGR_FMT_RAW, NULL, &nout);
	s->fed = 0;	/* a first batch has other shapes, never larger ones */
	wg_decode(s, NULL, EGR_DT_F32, b, EGR_FMT_RAW, NULL, &nout);
	s->fed = fed;
	s->dry = 0;
	for (int i = 0; i < WB_N; i++)
		total += s->need[i];
	for (int i = 0; i < EGR_WANVAE_MAX_SLOTS; i++)
		total += s->hist_need[i];
	return total;
}

static int wg_stream_alloc(struct egr_wanvae_gpu_stream *s, char *err, size_t errlen)
{
	for (int i = 0; i < WB_N; i++)
		if (s->need[i])
			GN_CU(cudaMalloc(&s->buf[i], s->need[i]), "cudaMalloc(wan vae workspace %d, %zu bytes)", i,
			      s->need[i]);
	for (int i = 0; i < EGR_WANVAE_MAX_SLOTS; i++)
		if (s->hist_need[i]) {
			GN_CU(cudaMalloc(&s->hist[i], s->hist_need[i]), "cudaMalloc(wan vae time cache %d, %zu bytes)",
			      i, s->hist_need[i]);
			GN_CU(cudaMemsetAsync(s->hist[i], 0, s->hist_need[i], s->g->gn.s), "cudaMemsetAsync(time cache)");
		}
	return 0;
}

extern "C" int egr_wanvae_gpu_stream_create(struct egr_wanvae_gpu *g, uint32_t lat_h, uint32_t lat_w,
					    uint32_t max_lat, const float *mean, const float *std,
					    struct egr_wanvae_gpu_stream **out, char *err, size_t errlen)
{
	struct egr_wanvae_gpu_stream *s;
	const uint32_t z = g->cfg.z_dim;
	int rc = 0;

	*out = NULL;
	if (!lat_h || !lat_w || lat_h > 4096 || lat_w > 4096 || !max_lat) {
		egr_errf(err, errlen, "wan vae: latent size %ux%u, batch %u out of range", lat_w, lat_h, max_lat);
		return -EINVAL;
	}
	if (!(s = (struct egr_wanvae_gpu_stream *)calloc(1, sizeof(*s)))) {
		egr_errf(err, errlen, "wan vae: out of memory");
		return -ENOMEM;
	}
	s->g = g, s->h = lat_h, s->w = lat_w, s->err = err, s->errlen = errlen;
	s->batch = max_lat;
	while (wg_plan(s, s->batch) > EGR_WANVAE_GPU_WS_MAX && s->batch > 1)
		s->batch = s->batch / 2;
	wg_plan(s, s->batch);
	if ((rc = wg_stream_alloc(s, err, errlen)) < 0)
		goto fail;
	if (mean && std) {
		float hinv[EGR_WANVAE_MAX_Z];
		for (uint32_t c = 0; c < z; c++)
			hinv[c] = 1.0f / std[c];	/* binary32, as the pipeline's 1.0 / latents_std */
		if (cudaMalloc((void **)&s->mean, z * 4) != cudaSuccess || cudaMalloc((void **)&s->inv, z * 4) != cudaSuccess ||
		    cudaMemcpy(s->mean, mean, z * 4, cudaMemcpyHostToDevice) != cudaSuccess ||
		    cudaMemcpy(s->inv, hinv, z * 4, cudaMemcpyHostToDevice) != cudaSuccess) {
			egr_errf(err, errlen, "cudaMalloc/cudaMemcpy(wan vae latents mean and std): failed");
			rc = -ENOMEM;
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	egr_wanvae_gpu_stream_free(s);
	return rc;
}

extern "C" void egr_wanvae_gpu_stream_free(struct egr_wanvae_gpu_stream *s)
{
	if (!s)
		return;
	cudaStreamSynchronize(s->g->gn.s);	/* kernels may still read the buffers */
	wg_stream_release(s);
	if (s->mean)
		cudaFree(s->mean);
	if (s->inv)
		cudaFree(s->inv);
	free(s);
}

extern "C" size_t egr_wanvae_gpu_stream_bytes(const struct egr_wanvae_gpu_stream *s, uint32_t *batch)
{
	size_t t = 0;

	for (int i = 0; i < WB_N; i++)
		t += s->need[i];
	for (int i = 0; i < EGR_WANVAE_MAX_SLOTS; i++)
		t += s->hist_need[i];
	if (batch)
		*batch = s->batch;
	return t;
}

extern "C" uint32_t egr_wanvae_gpu_stream_out_frames(const struct egr_wanvae_gpu_stream *s, uint32_t n)
{
	if (!n)
		return 0;
	return s->fed ? s->g->time_factor * n : 1 + s->g->time_factor * (n - 1);
}

extern "C" int egr_wanvae_gpu_feed(struct egr_wanvae_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n,
				   uint32_t format, void *d_out, uint32_t *nout, char *err, size_t errlen)
{
	const size_t lat_fb = (size_t)s->g->cfg.z_dim * s->h * s->w * dtype;
	const uint32_t H = s->h * s->g->scale, W = s->w * s->g->scale;
	const uint64_t fb = format == EGR_FMT_RAW ? (uint64_t)3 * H * W * 4 : egr_frame_bytes(format, W, H);

	*nout = 0;
	s->err = err, s->errlen = errlen;
	if (s->failed) {
		egr_errf(err, errlen, "wan vae: feed after a failed one");
		return -EINVAL;
	}
	if (dtype != EGR_DT_F16 && dtype != EGR_DT_F32) {
		egr_errf(err, errlen, "wan vae: latent dtype %u is not float16 or float32", dtype);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n;) {
		const uint32_t b = n - i < s->batch ? n - i : s->batch;
		uint32_t got = 0;
		int rc = wg_decode(s, (const char *)d_lat + i * lat_fb, dtype, b, format, (char *)d_out + *nout * fb, &got);
		if (rc < 0) {
			s->failed = 1;
			return rc;
		}
		s->fed += b;
		*nout += got;
		i += b;
	}
	return 0;
}

extern "C" int egr_wanvae_gpu_stream_warm_up(struct egr_wanvae_gpu_stream *s, char *err, size_t errlen)
{
	const uint32_t b = s->batch, z = s->g->cfg.z_dim;
	const uint32_t H = s->h * s->g->scale, W = s->w * s->g->scale;
	const size_t lat = (size_t)b * z * s->h * s->w * 4, frames = (size_t)s->g->time_factor * b * H * W * 3;
	void *d_lat = NULL, *d_out = NULL;
	uint32_t nout;
	int rc = 0;

	if (cudaMalloc(&d_lat, lat) != cudaSuccess || cudaMalloc(&d_out, frames) != cudaSuccess) {
		egr_errf(err, errlen, "cudaMalloc(wan vae warm-up, %zu + %zu bytes): out of memory", lat, frames);
		rc = -ENOMEM;
		goto out;
	}
	cudaMemsetAsync(d_lat, 0, lat, s->g->gn.s);
	if ((rc = egr_wanvae_gpu_feed(s, d_lat, EGR_DT_F32, b, EGR_FMT_PNG, d_out, &nout, err, errlen)) < 0 ||
	    (rc = egr_wanvae_gpu_feed(s, d_lat, EGR_DT_F32, b, EGR_FMT_PNG, d_out, &nout, err, errlen)) < 0)
		goto out;
	for (int i = 0; i < EGR_WANVAE_MAX_SLOTS; i++)
		if (s->hist[i])
			cudaMemsetAsync(s->hist[i], 0, s->hist_need[i], s->g->gn.s);
	s->fed = 0;
	if (cudaStreamSynchronize(s->g->gn.s) != cudaSuccess) {
		egr_errf(err, errlen, "cudaStreamSynchronize(wan vae warm-up): %s", cudaGetErrorString(cudaGetLastError()));
		rc = -EIO;
	}
out:
	if (d_lat)
		cudaFree(d_lat);
	if (d_out)
		cudaFree(d_out);
	return rc;
}
