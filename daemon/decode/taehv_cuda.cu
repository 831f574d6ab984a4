/*
 * taehv_cuda: the TAEHV decoder on the GPU; see taehv_cuda.h.
 *
 * Layout of a feed of n latent frames.  Stage k (0, 1, 2) runs at its input
 * resolution H_k x W_k with n_k = 256, 128, 64 channels over F_k frames
 * (F_0 = n, F_{k+1} = F_k * tstride[k]).  Its activation lives in one buffer
 * x_k of F_k + 1 frames: frame 0 is a history slot, frames 1..F_k the input.
 * MemBlock m of the stage:
 *   x_k[0] <- state[k][m]           (its input's last frame of the previous feed)
 *   state[k][m] <- x_k[F_k]         (for the next feed; read before x_k is overwritten)
 *   A = ReLU(conv.0x(x_k[1..F]) + conv.0p(x_k[0..F-1]) + b0)
 *        (conv.0 over [x, past] concatenated = two convs with the weight's
 *         input channels split, accumulated: past of frame i is frame i - 1)
 *   B = ReLU(conv.2(A) + b2)
 *   x_k[1..F] = ReLU(conv.4(B) + x_k[1..F] + b4)     (residual accumulated in place)
 * Stage tail: TGrow's 1x1 conv commutes with nearest upsampling, so it runs at
 * the low resolution: A = TGrow(x_k[1..F]) (F frames of tstride * n_k
 * channels), then per time step j one gn_upsample takes channel slice j
 * (src_pc, coff), upsamples it and writes it as frame t * tstride + j of B;
 * the stage conv maps B (F_{k+1} frames) into x_{k+1}[1..] (or, after the last
 * stage, A).  Final: ReLU, decoder.22 on the frames not trimmed, gn_emit
 * (bias, pixel shuffle ys = p, xs = 1, clamp [0, 1], RAW / RGB24 / I420).
 *
 * Scratch A and B are shared by every stage, sized for the largest use, so a
 * stream holds x_k and state for each stage plus A and B: all sized by
 * max_lat, none by the video's length.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "daemon/base/log.h"
}
#include "daemon/decode/gnet.cuh"
#include "daemon/decode/taehv_cuda.h"

static const uint32_t th_nf[EGR_TAEHV_NSTAGE + 1] = { 256, 128, 64, 64 };

/* MemBlock convs on the device: conv.0's x part (with its bias), conv.0's past part, conv.2, conv.4 */
enum { TH_M0X, TH_M0P, TH_M2, TH_M4, TH_MN };

struct egr_taehv_gpu {
	struct egr_taehv plan;	/* the net's description; no weights */
	cudaStream_t s;
	struct gn_ctx gn;
	int gn_ok;
	struct gn_conv first, last;
	struct gn_conv mem[EGR_TAEHV_NSTAGE][3][TH_MN];
	struct gn_conv tgrow[EGR_TAEHV_NSTAGE], stage[EGR_TAEHV_NSTAGE];
};

struct th_sbuf {
	uint32_t H, W, n;	/* input resolution and channels of the stage */
	uint32_t fmax;		/* frames at this depth for a feed of max_lat */
	void *x;		/* fmax + 1 frames: history slot, then the input */
	void *state;		/* 3 frames: each MemBlock's previous input */
};

struct egr_taehv_gpu_stream {
	struct egr_taehv_gpu *g;
	uint32_t h, w, max_lat;
	uint32_t Hf, Wf;	/* the last conv's resolution (before the pixel shuffle) */
	uint64_t t_total, fed, raw;
	uint64_t skip;		/* leading decoder frames dropped */
	int state;		/* 0 open, 1 done (t_total reached), -1 failed */
	struct th_sbuf st[EGR_TAEHV_NSTAGE];
	void *a, *b;		/* scratch (see the top) */
	void *mem;		/* the one allocation everything above is carved from */
};

/* Prefix err (filled by a gnet call) with what the decoder was doing. */
static int th_fail(int r, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int th_fail(int r, char *err, size_t errlen, const char *fmt, ...)
{
	char inner[400], what[200];
	va_list ap;

	if (!err || !errlen)
		return r;
	snprintf(inner, sizeof(inner), "%s", err);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	egr_errf(err, errlen, "taehv gpu %s: %s", what, inner);
	return r;
}

/* frame i of a bf16 tensor of fe elements a frame */
static inline void *th_frame(void *base, size_t fe, size_t i)
{
	return (char *)base + i * fe * sizeof(__nv_bfloat16);
}

/* ---- weights ---- */

/* conv c's input channels [off, off + cnt) as gc, with its bias if bias; cout padded to a multiple of 8 */
static int th_upload(struct egr_taehv_gpu *g, struct gn_conv *gc, const struct egr_taehv_conv *c, uint32_t off,
		     uint32_t cnt, int bias, char *err, size_t errlen)
{
	int r = gn_conv_upload(&g->gn, gc, c->w, bias ? c->b : NULL, c->cin, c->cout, 1, c->ksize, off, cnt,
			       (c->cout + 7) & ~7u, err, errlen);

	return r < 0 ? th_fail(r, err, errlen, "upload '%s' [%u,%u,%u,%u] (input channels %u..%u)", c->name, c->cout,
			       c->cin, c->ksize, c->ksize, off, off + cnt - 1)
		     : 0;
}

static int th_upload_all(struct egr_taehv_gpu *g, const struct egr_taehv *net, char *err, size_t errlen)
{
	const struct egr_taehv_conv *cv = net->conv;
	int r;

	if ((r = th_upload(g, &g->first, &cv[EGR_TAEHV_CONV_FIRST], 0, net->channels, 1, err, errlen)) < 0 ||
	    (r = th_upload(g, &g->last, &cv[EGR_TAEHV_CONV_LAST], 0, th_nf[3], 1, err, errlen)) < 0)
		return r;
	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++) {
		const uint32_t n = th_nf[k];
		for (int m = 0; m < 3; m++) {
			struct gn_conv *gm = g->mem[k][m];
			const struct egr_taehv_conv *c0 = &cv[EGR_TAEHV_CONV_MEM(k, m, 0)];
			if ((r = th_upload(g, &gm[TH_M0X], c0, 0, n, 1, err, errlen)) < 0 ||
			    (r = th_upload(g, &gm[TH_M0P], c0, n, n, 0, err, errlen)) < 0 ||
			    (r = th_upload(g, &gm[TH_M2], &cv[EGR_TAEHV_CONV_MEM(k, m, 1)], 0, n, 1, err, errlen)) < 0 ||
			    (r = th_upload(g, &gm[TH_M4], &cv[EGR_TAEHV_CONV_MEM(k, m, 2)], 0, n, 1, err, errlen)) < 0)
				return r;
		}
		if ((r = th_upload(g, &g->tgrow[k], &cv[EGR_TAEHV_CONV_TGROW(k)], 0, n, 0, err, errlen)) < 0 ||
		    (r = th_upload(g, &g->stage[k], &cv[EGR_TAEHV_CONV_STAGE(k)], 0, n, 0, err, errlen)) < 0)
			return r;
	}
	return 0;
}

extern "C" void egr_taehv_gpu_destroy(struct egr_taehv_gpu *g)
{
	if (!g)
		return;
	cudaStreamSynchronize(g->s);	/* queued work may still read the weights */
	gn_conv_free(&g->first);
	gn_conv_free(&g->last);
	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++) {
		for (int m = 0; m < 3; m++)
			for (int j = 0; j < TH_MN; j++)
				gn_conv_free(&g->mem[k][m][j]);
		gn_conv_free(&g->tgrow[k]);
		gn_conv_free(&g->stage[k]);
	}
	if (g->gn_ok)
		gn_fini(&g->gn);
	free(g);
}

extern "C" int egr_taehv_gpu_create(const struct egr_taehv *net, struct CUstream_st *stream,
				    struct egr_taehv_gpu **out, char *err, size_t errlen)
{
	struct egr_taehv_gpu *g = NULL;
	int r, ndev = 0;

	*out = NULL;
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
		cudaGetLastError();
		egr_errf(err, errlen, "taehv gpu: no usable CUDA device (%d found)", ndev);
		return -ENODEV;
	}
	if (net->channels % 8 || !net->conv[EGR_TAEHV_CONV_FIRST].w) {
		egr_errf(err, errlen,
			 "taehv gpu: %u latent channels%s: the GPU layers (gnet) need a multiple of 8 and loaded weights",
			 net->channels, net->conv[EGR_TAEHV_CONV_FIRST].w ? "" : ", no weights");
		return -EINVAL;
	}
	if (!(g = (struct egr_taehv_gpu *)calloc(1, sizeof(*g)))) {
		egr_errf(err, errlen, "taehv gpu: out of memory");
		return -ENOMEM;
	}
	g->plan = *net;
	for (int i = 0; i < EGR_TAEHV_NCONV; i++)
		g->plan.conv[i].w = g->plan.conv[i].b = NULL;
	g->s = (cudaStream_t)stream;
	if ((r = gn_init(&g->gn, GN_BF16, g->s, err, errlen)) < 0) {
		th_fail(r, err, errlen, "create (%s, %u channels)", egr_taehv_model_name(net->model), net->channels);
		goto fail;
	}
	g->gn_ok = 1;
	if ((r = th_upload_all(g, net, err, errlen)) < 0)
		goto fail;
	*out = g;
	return 0;
fail:
	egr_taehv_gpu_destroy(g);
	return r;
}

/* ---- streams ---- */

/* Stage sizes for s, and the bytes of x, state, A and B (element counts times 2) */
static size_t th_plan_stream(struct egr_taehv_gpu_stream *s, size_t *xe, size_t *se, size_t *ae, size_t *be)
{
	const struct egr_taehv *net = &s->g->plan;
	uint32_t H = s->h, W = s->w, F = s->max_lat;
	size_t A = 0, B = 0, total = 0;

	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++) {
		struct th_sbuf *b = &s->st[k];
		const uint32_t ts = net->tstride[k], up = net->sscale[k];
		const size_t fe = (size_t)H * W * th_nf[k], act = (size_t)F * fe;
		b->H = H, b->W = W, b->n = th_nf[k], b->fmax = F;
		xe[k] = (F + 1) * fe;
		se[k] = 3 * fe;
		total += xe[k] + se[k];
		/* A: the MemBlocks' first temporary, TGrow's output; B: the second, the split frames */
		A = act * ts > A ? act * ts : A;
		B = act * ts * up * up > B ? act * ts * up * up : B;
		H *= up, W *= up, F *= ts;
	}
	s->Hf = H, s->Wf = W;
	const size_t fin = (size_t)F * H * W * th_nf[3];	/* A: the last stage conv's output */
	A = fin > A ? fin : A;
	/* B also holds the clamped latents (fewer channels than stage 0's 256) and decoder.22's output */
	const size_t fout = (size_t)F * H * W * ((3 * net->patch * net->patch + 7) & ~7u);
	B = fout > B ? fout : B;
	*ae = A, *be = B;
	return total + A + B;
}

static void *th_carve(char **p, size_t elems)
{
	void *r = *p;
	*p += (elems * sizeof(__nv_bfloat16) + 255) & ~(size_t)255;
	return r;
}

static int th_stream_alloc(struct egr_taehv_gpu_stream *s, char *err, size_t errlen)
{
	size_t xe[EGR_TAEHV_NSTAGE], se[EGR_TAEHV_NSTAGE], ae, be;
	size_t bytes = th_plan_stream(s, xe, se, &ae, &be) * sizeof(__nv_bfloat16) + 16 * 256;
	cudaError_t e = cudaMalloc(&s->mem, bytes);

	if (e != cudaSuccess) {
		cudaGetLastError();
		s->mem = NULL;
		egr_errf(err, errlen, "cudaMalloc(taehv stream, %zu bytes for %u latent frames of %ux%u): %s", bytes,
			 s->max_lat, s->w, s->h, cudaGetErrorString(e));
		return e == cudaErrorMemoryAllocation ? -ENOMEM : -EIO;
	}
	char *p = (char *)s->mem;
	for (int k = 0; k < EGR_TAEHV_NSTAGE; k++) {
		s->st[k].x = th_carve(&p, xe[k]);
		s->st[k].state = th_carve(&p, se[k]);
		/* every MemBlock's past is zero at the start of the video */
		e = cudaMemsetAsync(s->st[k].state, 0, se[k] * sizeof(__nv_bfloat16), s->g->s);
		if (e != cudaSuccess) {
			egr_errf(err, errlen, "cudaMemsetAsync(taehv stream state, %zu bytes): %s",
				 se[k] * sizeof(__nv_bfloat16), cudaGetErrorString(e));
			return -EIO;
		}
	}
	s->a = th_carve(&p, ae);
	s->b = th_carve(&p, be);
	return 0;
}

extern "C" void egr_taehv_gpu_stream_free(struct egr_taehv_gpu_stream *s)
{
	if (!s)
		return;
	if (s->mem) {
		cudaStreamSynchronize(s->g->s);	/* queued feeds still use the buffers */
		cudaFree(s->mem);
	}
	free(s);
}

extern "C" int egr_taehv_gpu_stream_create(struct egr_taehv_gpu *g, uint32_t lat_h, uint32_t lat_w,
					   uint64_t t_total, uint32_t max_lat, struct egr_taehv_gpu_stream **out,
					   char *err, size_t errlen)
{
	const struct egr_taehv *net = &g->plan;
	struct egr_taehv_gpu_stream *s;
	int r;

	*out = NULL;
	if (lat_h < 1 || lat_w < 1 || lat_h > EGR_TAEHV_MAX_DIM || lat_w > EGR_TAEHV_MAX_DIM || max_lat < 1 ||
	    max_lat > 4096) {
		egr_errf(err, errlen, "taehv gpu stream: latent size %ux%u, %u latent frames a feed: out of range "
				      "(1..%d, 1..4096)", lat_w, lat_h, max_lat, EGR_TAEHV_MAX_DIM);
		return -EINVAL;
	}
	if (net->model == EGR_TAEHV_COGVIDEOX && !t_total) {
		egr_errf(err, errlen, "taehv gpu stream: cogvideox trims its first frames only for an odd latent frame "
				      "count: the stream needs the job's frame count");
		return -EINVAL;
	}
	if (!(s = (struct egr_taehv_gpu_stream *)calloc(1, sizeof(*s)))) {
		egr_errf(err, errlen, "taehv gpu stream: out of memory");
		return -ENOMEM;
	}
	s->g = g;
	s->h = lat_h, s->w = lat_w, s->max_lat = max_lat;
	s->t_total = t_total;
	/* the CPU stream's rule (decode_video's skip_trim), from the frame count it reports */
	s->skip = t_total ? t_total * net->t_upscale - egr_taehv_out_frames(net, t_total) : net->frames_to_trim;
	if ((r = th_stream_alloc(s, err, errlen)) < 0) {
		egr_taehv_gpu_stream_free(s);
		return r;
	}
	*out = s;
	return 0;
}

extern "C" uint32_t egr_taehv_gpu_stream_out_frames(const struct egr_taehv_gpu_stream *s, uint32_t n)
{
	const uint64_t a = s->raw, b = s->raw + (uint64_t)n * s->g->plan.t_upscale;

	return (uint32_t)((b > s->skip ? b - s->skip : 0) - (a > s->skip ? a - s->skip : 0));
}

/* ---- one feed ---- */

/* MemBlock m of stage k over F frames in x_k[1..F], in place (see the top) */
static int th_memblock(struct egr_taehv_gpu_stream *s, int k, int m, uint32_t F, char *err, size_t errlen)
{
	struct gn_ctx *gn = &s->g->gn;
	const struct th_sbuf *b = &s->st[k];
	const struct gn_conv *c = s->g->mem[k][m];
	const size_t fe = (size_t)b->H * b->W * b->n, npix = (size_t)F * b->H * b->W;
	void *x1 = th_frame(b->x, fe, 1), *state = th_frame(b->state, fe, (size_t)m);
	const uint32_t H = b->H, W = b->W;
	int r;

	if ((r = gn_copy_frames(gn, b->x, state, 1, fe * 2, err, errlen)) < 0 ||
	    (r = gn_copy_frames(gn, state, th_frame(b->x, fe, F), 1, fe * 2, err, errlen)) < 0 ||
	    (r = gn_conv(gn, &c[TH_M0X], x1, F, H, W, s->a, 0.0f, err, errlen)) < 0 ||
	    (r = gn_conv(gn, &c[TH_M0P], b->x, F, H, W, s->a, 1.0f, err, errlen)) < 0 ||
	    (r = gn_bias(gn, s->a, npix, b->n, c[TH_M0X].b, 1, err, errlen)) < 0 ||
	    (r = gn_conv(gn, &c[TH_M2], s->a, F, H, W, s->b, 0.0f, err, errlen)) < 0 ||
	    (r = gn_bias(gn, s->b, npix, b->n, c[TH_M2].b, 1, err, errlen)) < 0 ||
	    (r = gn_conv(gn, &c[TH_M4], s->b, F, H, W, x1, 1.0f, err, errlen)) < 0 ||
	    (r = gn_bias(gn, x1, npix, b->n, c[TH_M4].b, 1, err, errlen)) < 0)
		return th_fail(r, err, errlen, "MemBlock %d.%d (%u frames of %ux%u x %u)", k, m, F, W, H, b->n);
	return 0;
}

/* Stage k's TGrow, time split + Upsample and stage conv: F frames in x_k -> F * tstride frames at dst */
static int th_tail(struct egr_taehv_gpu_stream *s, int k, uint32_t F, void *dst, char *err, size_t errlen)
{
	struct egr_taehv_gpu *g = s->g;
	const struct th_sbuf *b = &s->st[k];
	const uint32_t ts = g->plan.tstride[k], up = g->plan.sscale[k], n = b->n, H = b->H, W = b->W;
	const size_t fe = (size_t)H * W * n, fe2 = fe * up * up;
	int r;

	r = gn_conv(&g->gn, &g->tgrow[k], th_frame(b->x, fe, 1), F, H, W, s->a, 0.0f, err, errlen);
	for (uint32_t j = 0; j < ts && r == 0; j++)	/* channel slice j of frame t is frame t * ts + j */
		r = gn_upsample(&g->gn, s->a, fe * ts, ts * n, j * n, NULL, F, H, W, n, up, th_frame(s->b, fe2, j),
				fe2 * ts, err, errlen);
	if (r == 0)
		r = gn_conv(&g->gn, &g->stage[k], s->b, F * ts, H * up, W * up, dst, 0.0f, err, errlen);
	if (r < 0)
		return th_fail(r, err, errlen, "stage %d tail (TGrow x%u, upsample x%u, %u frames of %ux%u x %u)", k, ts,
			       up, F, W, H, n);
	return 0;
}

/* decoder.21 ReLU, decoder.22 and the output of frames [d, F) of A */
static int th_final(struct egr_taehv_gpu_stream *s, uint32_t F, uint32_t d, uint32_t format, void *d_out,
		    char *err, size_t errlen)
{
	struct egr_taehv_gpu *g = s->g;
	const size_t fe = (size_t)s->Hf * s->Wf * th_nf[3], npix = (size_t)(F - d) * s->Hf * s->Wf;
	void *fin = th_frame(s->a, fe, d);
	struct gn_emit_args ea;
	int r;

	memset(&ea, 0, sizeof(ea));
	ea.nf = F - d, ea.h = s->Hf, ea.w = s->Wf, ea.C = g->last.cout;
	ea.p = g->plan.patch, ea.ys = g->plan.patch, ea.xs = 1;	/* F.pixel_shuffle */
	ea.b = g->last.b;
	ea.lo = 0.0f, ea.hi = 1.0f, ea.off = 0.0f, ea.mul = 1.0f;
	ea.format = format == EGR_FMT_NULL ? (uint32_t)EGR_FMT_PNG : format;
	if ((r = gn_bias(&g->gn, fin, npix, th_nf[3], NULL, 1, err, errlen)) < 0 ||
	    (r = gn_conv(&g->gn, &g->last, fin, F - d, s->Hf, s->Wf, s->b, 0.0f, err, errlen)) < 0 ||
	    (r = gn_emit(&g->gn, s->b, &ea, d_out, err, errlen)) < 0)
		return th_fail(r, err, errlen, "output (%u frames of %ux%u, patch %u, format %u)", F - d, s->Wf, s->Hf,
			       g->plan.patch, format);
	return 0;
}

/* Clamp and decoder.1 into x_0[1..n] (the latents staged in B, free until the first MemBlock) */
static int th_input(struct egr_taehv_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n, char *err,
		    size_t errlen)
{
	struct egr_taehv_gpu *g = s->g;
	const uint32_t C = g->plan.channels;
	const size_t hw = (size_t)s->h * s->w;
	void *x1 = th_frame(s->st[0].x, hw * th_nf[0], 1);
	int r;

	/* decoder.0 Clamp, tanh(x / 3) * 3, on the way from NCHW f16/f32 to NHWC bf16 */
	if ((r = gn_latents(&g->gn, d_lat, dtype == EGR_DT_F32, n, C, hw, NULL, NULL, 1, s->b, err, errlen)) < 0 ||
	    (r = gn_conv(&g->gn, &g->first, s->b, n, s->h, s->w, x1, 0.0f, err, errlen)) < 0 ||
	    (r = gn_bias(&g->gn, x1, (size_t)n * hw, th_nf[0], g->first.b, 1, err, errlen)) < 0)
		return th_fail(r, err, errlen, "decoder.1 (%u frames of %ux%u, %u -> %u channels)", n, s->w, s->h, C,
			       th_nf[0]);
	return 0;
}

/* the whole network over n latent frames; frames before d of the output are not emitted */
static int th_run(struct egr_taehv_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n, uint32_t d,
		  uint32_t format, void *d_out, char *err, size_t errlen)
{
	uint32_t F = n;
	int r = th_input(s, d_lat, dtype, n, err, errlen);

	for (int k = 0; k < EGR_TAEHV_NSTAGE && r == 0; k++) {
		for (int m = 0; m < 3 && r == 0; m++)
			r = th_memblock(s, k, m, F, err, errlen);
		if (r == 0) {
			void *dst = k + 1 < EGR_TAEHV_NSTAGE
					    ? th_frame(s->st[k + 1].x, (size_t)s->st[k + 1].H * s->st[k + 1].W * th_nf[k + 1], 1)
					    : s->a;
			r = th_tail(s, k, F, dst, err, errlen);
		}
		F *= s->g->plan.tstride[k];
	}
	return r < 0 ? r : th_final(s, F, d, format, d_out, err, errlen);
}

extern "C" int egr_taehv_gpu_feed(struct egr_taehv_gpu_stream *s, const void *d_lat, uint32_t dtype, uint32_t n,
				  uint32_t format, void *d_out, uint32_t *nout, char *err, size_t errlen)
{
	const uint32_t tu = s->g->plan.t_upscale;
	int r;

	if (nout)
		*nout = 0;
	if (s->state != 0) {
		egr_errf(err, errlen, "taehv gpu feed: stream %s", s->state > 0 ? "already complete" : "failed earlier");
		return -EINVAL;
	}
	if ((dtype != EGR_DT_F16 && dtype != EGR_DT_F32) || n > s->max_lat || (n && (!d_lat || !d_out)) ||
	    (format != EGR_FMT_RAW && format != EGR_FMT_Y4M && format != EGR_FMT_PNG && format != EGR_FMT_NULL)) {
		egr_errf(err, errlen, "taehv gpu feed: bad arguments (dtype %u, format %u, %u latent frames, at most %u)",
			 dtype, format, n, s->max_lat);
		return -EINVAL;
	}
	if (s->t_total && s->fed + n > s->t_total) {
		egr_errf(err, errlen, "taehv gpu feed: %llu + %u latent frames fed, the job has %llu",
			 (unsigned long long)s->fed, n, (unsigned long long)s->t_total);
		s->state = -1;
		return -EINVAL;
	}
	if (!n)
		return 0;
	const uint32_t emitted = egr_taehv_gpu_stream_out_frames(s, n);
	const uint32_t d = n * tu - emitted;	/* only the video's first frames are ever dropped */
	if ((r = th_run(s, d_lat, dtype, n, d, format, d_out, err, errlen)) < 0) {
		s->state = -1;
		return r;
	}
	s->fed += n;
	s->raw += (uint64_t)n * tu;
	if (s->t_total && s->fed == s->t_total)
		s->state = 1;	/* the flush: TAEHV's decoder holds no frames back */
	if (nout)
		*nout = emitted;
	return 0;
}
