/*
 * taesd: network plan, weight loading/validation, fp32 CPU reference and the
 * seeded weight generator; see taesd.h.
 *
 * The CPU reference is deliberately plain: planar fp32, a direct 3x3
 * convolution accumulating bias first, then input channels in order, then
 * the nine taps (row-major), the nearest upsample materialised.  It is the
 * oracle, so clarity beats speed; but it must decode a real 832x480 frame in
 * CI, so each output channel is computed a band of rows at a time (the band's
 * accumulator stays in L1/L2), an input channel's nine taps are applied in
 * one pass over an output row, and that pass is written with GCC vector
 * extensions, four pixels at a time.  None of this changes a result: every
 * element still sees the same separate multiplies and adds in the same order
 * (the build uses -ffp-contract=off: no fused multiply-add).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/taesd.h"

#ifndef EGR_TAESD_OUT_GAIN
#define EGR_TAESD_OUT_GAIN 0.6
#endif

static const int taesd_blocks[] = { 3, 4, 5, 8, 9, 10, 13, 14, 15, 18 };

void egr_taesd_describe_variant(struct egr_taesd *net, uint32_t channels, uint32_t variant)
{
	uint32_t k = 0, cur = 0;

	memset(net->conv, 0, sizeof(net->conv));
	memset(net->pool, 0, sizeof(net->pool));
	net->channels = channels;
	net->variant = variant;
	net->npool = 0;
#define CONV(nm, ci, co, bias, fl, s, d, rs, sh)                                                           \
	do {                                                                                               \
		struct egr_taesd_conv *c_ = &net->conv[k++];                                               \
		snprintf(c_->name, sizeof(c_->name), "%s", nm);                                            \
		c_->cin = ci, c_->cout = co, c_->has_bias = bias, c_->flags = fl;                          \
		c_->src = s, c_->dst = d, c_->res = rs, c_->shift = sh;                                    \
	} while (0)
	CONV("1", channels, 64, 1, EGR_TAESD_RELU, EGR_TAESD_BUF_IN, 0, 0, 0);
	uint32_t shift = 0;
	for (size_t b = 0; b < sizeof(taesd_blocks) / sizeof(taesd_blocks[0]); b++) {
		int bi = taesd_blocks[b];
		uint32_t t1 = (cur + 1) % 3, t2 = (cur + 2) % 3;
		char nm[16];
		if (bi == 8 || bi == 13 || bi == 18) {
			/* Upsample (bi-2) then conv (bi-1): low-res cur -> full-res t1 */
			snprintf(nm, sizeof(nm), "%d", bi - 1);
			shift++;
			CONV(nm, 64, 64, 0, EGR_TAESD_UPSAMPLE, cur, t1, 0, shift);
			cur = t1;
			t1 = (cur + 1) % 3, t2 = (cur + 2) % 3;
		}
		snprintf(nm, sizeof(nm), "%d.conv.0", bi);
		CONV(nm, 64, 64, 1, EGR_TAESD_RELU, cur, t1, 0, shift);
		if (variant == EGR_TAESD_FLUX2 && bi <= 5) {
			/* the pool branch updates the Block's input (cur) before its first conv */
			static const char *const pool_names[EGR_TAESD_NPOOL] = { "3.pool", "4.pool", "5.pool" };
			struct egr_taesd_pool *p = &net->pool[net->npool];
			snprintf(p->name, sizeof(p->name), "%s", pool_names[net->npool]);
			net->conv[k - 1].flags |= EGR_TAESD_POOL;
			net->conv[k - 1].pool = net->npool++;
		}
		snprintf(nm, sizeof(nm), "%d.conv.2", bi);
		CONV(nm, 64, 64, 1, EGR_TAESD_RELU, t1, t2, 0, shift);
		snprintf(nm, sizeof(nm), "%d.conv.4", bi);
		CONV(nm, 64, 64, 1, EGR_TAESD_RELU | EGR_TAESD_RESIDUAL, t2, cur, cur, shift);
	}
	CONV("19", 64, 3, 1, 0, cur, EGR_TAESD_BUF_OUT, 0, shift);
#undef CONV
}

void egr_taesd_describe(struct egr_taesd *net, uint32_t channels)
{
	egr_taesd_describe_variant(net, channels, EGR_TAESD_PLAIN);
}

const char *egr_taesd_variant_name(uint32_t variant)
{
	return variant == EGR_TAESD_FLUX2 ? "flux_2" : "plain";
}

/*
 * One tensor of a variant's set, in taesd.py's state-dict order: canonical
 * (taesd.py) name, shape, where the loader puts it, and what it is (for the
 * generator's initialisation).
 */
enum { TT_CONV_W, TT_CONV_B, TT_POOL_W0, TT_POOL_GAMMA, TT_POOL_BETA, TT_POOL_W3 };
struct taesd_tensor {
	char name[32];
	uint32_t ndim, role;
	uint64_t shape[4];
	uint64_t numel;
	float **dst;
	const struct egr_taesd_conv *conv;	/* TT_CONV_* */
};
#define TAESD_MAX_TENSORS (2 * EGR_TAESD_NCONV + 4 * EGR_TAESD_NPOOL)

static void taesd_tab_add(struct taesd_tensor *t, const char *prefix, const char *suffix, uint32_t role,
			  uint64_t d0, uint64_t d1, uint64_t d2, float **dst)
{
	snprintf(t->name, sizeof(t->name), "%s.%s", prefix, suffix);
	t->role = role;
	t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = t->shape[3] = d2;
	t->ndim = d1 ? (d2 ? 4 : 2) : 1;
	t->numel = d0 * (d1 ? d1 : 1) * (d2 ? d2 * d2 : 1);
	t->dst = dst;
	t->conv = NULL;
}

/* net's tensors (a described net: names and shapes); returns the count */
static uint32_t taesd_tensors(struct egr_taesd *net, struct taesd_tensor *tab)
{
	uint32_t n = 0;
	int pending = -1;	/* the pool of the Block being listed */

	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		struct egr_taesd_conv *c = &net->conv[i];
		if (c->flags & EGR_TAESD_POOL)
			pending = (int)c->pool;
		taesd_tab_add(&tab[n], c->name, "weight", TT_CONV_W, c->cout, c->cin, 3, &c->w);
		tab[n++].conv = c;
		if (c->has_bias) {
			taesd_tab_add(&tab[n], c->name, "bias", TT_CONV_B, c->cout, 0, 0, &c->b);
			tab[n++].conv = c;
		}
		/* a Block's pool tensors follow its convs ("3.conv.4.bias", "3.pool.0.weight") */
		if (pending >= 0 && strstr(c->name, ".conv.4")) {
			struct egr_taesd_pool *p = &net->pool[pending];
			taesd_tab_add(&tab[n++], p->name, "0.weight", TT_POOL_W0, EGR_TAESD_POOL_CH, 64, 1, &p->w0);
			taesd_tab_add(&tab[n++], p->name, "1.weight", TT_POOL_GAMMA, EGR_TAESD_POOL_CH, 0, 0, &p->gamma);
			taesd_tab_add(&tab[n++], p->name, "1.bias", TT_POOL_BETA, EGR_TAESD_POOL_CH, 0, 0, &p->beta);
			taesd_tab_add(&tab[n++], p->name, "3.weight", TT_POOL_W3, 64, EGR_TAESD_POOL_CH, 1, &p->w3);
			pending = -1;
		}
	}
	return n;
}

void egr_taesd_free(struct egr_taesd *net)
{
	if (!net)
		return;
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		free(net->conv[i].w);
		free(net->conv[i].b);
	}
	for (int i = 0; i < EGR_TAESD_NPOOL; i++) {
		free(net->pool[i].w0);
		free(net->pool[i].gamma);
		free(net->pool[i].beta);
		free(net->pool[i].w3);
	}
	free(net);
}

/*
 * Tensor names.  taesd.py's state dict names the decoder's tensors by their
 * Sequential index ("3.conv.0.weight"); diffusers' AutoencoderTiny puts them
 * under "decoder.layers." with the index one lower (its Sequential starts at
 * the first conv: the Clamp is in forward()).  A full diffusers checkpoint
 * also holds "encoder.layers.*", which the decoder skips.
 */
enum { TAESD_NAMES_TAESD, TAESD_NAMES_DIFFUSERS };
#define TAESD_DIFFUSERS_PREFIX "decoder.layers."

/* The taesd.py name of a file's tensor: 1 (decoder), 0 (encoder: skipped) or -1 (neither). */
static int taesd_canon(const char *name, int style, char *out, size_t len)
{
	const size_t pl = strlen(TAESD_DIFFUSERS_PREFIX);
	const char *p = name + pl;
	char *end;

	if (!strncmp(name, "encoder.", 8))
		return 0;
	if (style == TAESD_NAMES_TAESD) {
		snprintf(out, len, "%s", name);
		return 1;
	}
	if (strncmp(name, TAESD_DIFFUSERS_PREFIX, pl) || !isdigit((unsigned char)p[0]) ||
	    (p[0] == '0' && isdigit((unsigned char)p[1])))
		return -1;
	unsigned long i = strtoul(p, &end, 10);
	if (*end != '.' || i > 1000)
		return -1;
	snprintf(out, len, "%lu%s", i + 1, end);
	return 1;
}

/* The file's name of a decoder tensor, given its taesd.py name. */
static void taesd_file_name(const char *canon, int style, char *out, size_t len)
{
	char *end;
	unsigned long i = strtoul(canon, &end, 10);

	if (style == TAESD_NAMES_TAESD)
		snprintf(out, len, "%s", canon);
	else
		snprintf(out, len, TAESD_DIFFUSERS_PREFIX "%lu%s", i - 1, end);
}

/* A list of offending tensor names for an error line: the first few and the count. */
#define TAESD_LIST_SHOWN 3
struct taesd_list {
	uint32_t n;
	char first[TAESD_LIST_SHOWN][EGR_ST_MAX_NAME + 32];
};

static void taesd_list_add(struct taesd_list *l, const char *name)
{
	if (l->n < TAESD_LIST_SHOWN)
		snprintf(l->first[l->n], sizeof(l->first[0]), "%s", name);
	l->n++;
}

/* "tensor 'a' <what1>" or "tensors 'a', 'b', 'c' and 9 more (12 in all) <whatn>" */
static void taesd_list_fmt(const struct taesd_list *l, const char *what1, const char *whatn, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	if (!l->n)
		return;
	o += (size_t)snprintf(buf + o, len - o, "tensor%s ", l->n > 1 ? "s" : "");
	for (uint32_t i = 0; i < l->n && i < TAESD_LIST_SHOWN && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s'%s'", i ? ", " : "", l->first[i]);
	if (l->n > TAESD_LIST_SHOWN && o < len)
		o += (size_t)snprintf(buf + o, len - o, " and %u more", l->n - TAESD_LIST_SHOWN);
	if (l->n > 1 && o < len)
		o += (size_t)snprintf(buf + o, len - o, " (%u in all)", l->n);
	if (o < len)
		snprintf(buf + o, len - o, " %s", l->n > 1 ? whatn : what1);
}

/* What the names of a file say: naming style, variant, skipped encoder tensors. */
struct taesd_scan {
	int style;
	uint32_t variant;
	uint32_t encoder;
};

/*
 * First look at a file's names: the naming style, the variant (flux_2 if any
 * decoder tensor is a Block's pool), the encoder tensors to skip; and every
 * decoder tensor has a float dtype.
 */
static int taesd_scan_file(const struct egr_st *st, struct taesd_scan *sc, char *err, size_t errlen)
{
	char canon[EGR_ST_MAX_NAME + 8];

	memset(sc, 0, sizeof(*sc));
	for (uint32_t i = 0; i < st->ntensors; i++)
		if (!strncmp(st->t[i].name, TAESD_DIFFUSERS_PREFIX, strlen(TAESD_DIFFUSERS_PREFIX)))
			sc->style = TAESD_NAMES_DIFFUSERS;
	for (uint32_t i = 0; i < st->ntensors; i++) {
		const struct egr_st_tensor *t = &st->t[i];
		int k = taesd_canon(t->name, sc->style, canon, sizeof(canon));
		if (k == 0) {
			sc->encoder++;
			continue;
		}
		if (k == 1 && strstr(canon, ".pool."))
			sc->variant = EGR_TAESD_FLUX2;
		if (t->dtype != EGR_ST_F16 && t->dtype != EGR_ST_F32 && t->dtype != EGR_ST_BF16) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s' has dtype %s, expected F16, BF16 or F32",
				 st->path, t->name, t->dtype_name);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The file's decoder tensors must be exactly the variant's set: none
 * missing, none unknown.  -EINVAL with both lists in one line otherwise.
 */
static int taesd_check_names(const struct egr_st *st, const struct taesd_scan *sc, char *err, size_t errlen)
{
	struct egr_taesd net;
	struct taesd_tensor tab[TAESD_MAX_TENSORS];
	struct taesd_list missing = { 0 }, unknown = { 0 };
	char nm[EGR_ST_MAX_NAME + 32], ms[600], us[600];
	uint32_t n;

	egr_taesd_describe_variant(&net, 1, sc->variant);
	n = taesd_tensors(&net, tab);
	for (uint32_t i = 0; i < n; i++) {
		taesd_file_name(tab[i].name, sc->style, nm, sizeof(nm));
		if (!egr_st_find(st, nm))
			taesd_list_add(&missing, nm);
	}
	for (uint32_t i = 0; i < st->ntensors; i++) {
		int k = taesd_canon(st->t[i].name, sc->style, nm, sizeof(nm)), known = 0;
		for (uint32_t j = 0; k == 1 && j < n && !known; j++)
			known = !strcmp(nm, tab[j].name);
		if (k != 0 && !known)
			taesd_list_add(&unknown, st->t[i].name);
	}
	if (!missing.n && !unknown.n)
		return 0;
	taesd_list_fmt(&missing, "is missing", "are missing", ms, sizeof(ms));
	taesd_list_fmt(&unknown, "is not part of a TAESD decoder", "are not part of a TAESD decoder", us,
		       sizeof(us));
	egr_errf(err, errlen, "weights \"%s\": %s%s%s (expected: the %s TAESD decoder, %s names%s)", st->path, ms,
		 missing.n && unknown.n ? "; " : "", us, egr_taesd_variant_name(sc->variant),
		 sc->style == TAESD_NAMES_DIFFUSERS ? "diffusers'" : "taesd.py's",
		 sc->variant == EGR_TAESD_PLAIN ? "; flux_2 adds {3,4,5}.pool.*" : "");
	return -EINVAL;
}

/* Read one tensor (name as in the file) of exactly shape t->shape into a new fp32 array. */
static int taesd_load_tensor(const struct egr_st *st, const char *name, const struct taesd_tensor *tt, char *err,
			     size_t errlen)
{
	const struct egr_st_tensor *t = egr_st_find(st, name);
	char got[96], want[96];
	int r;

	if (!t) {	/* taesd_check_names saw it: the file cannot have changed, its header is in memory */
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' is missing", st->path, name);
		return -EINVAL;
	}
	if (t->ndim != tt->ndim || memcmp(t->shape, tt->shape, tt->ndim * sizeof(*tt->shape))) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected %s", st->path, t->name,
			 egr_st_shape_str(t->shape, t->ndim, got, sizeof(got)),
			 egr_st_shape_str(tt->shape, tt->ndim, want, sizeof(want)));
		return -EINVAL;
	}
	*tt->dst = malloc((size_t)t->numel * sizeof(float));
	if (!*tt->dst) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': out of memory", st->path, t->name);
		return -ENOMEM;
	}
	r = egr_st_read_f32(st, t, *tt->dst, err, errlen);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < t->numel; i++) {
		if (!isfinite((*tt->dst)[i])) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s' holds a NaN or Inf at element %llu", st->path,
				 t->name, (unsigned long long)i);
			return -EINVAL;
		}
	}
	return 0;
}

/* "1.weight" [64, C, 3, 3] gives C; 0 or -EINVAL */
static int taesd_channels_of(const struct egr_st *st, int style, uint32_t *c, char *err, size_t errlen)
{
	char nm[64], got[96];
	const struct egr_st_tensor *t1;

	taesd_file_name("1.weight", style, nm, sizeof(nm));
	t1 = egr_st_find(st, nm);
	if (!t1 || t1->ndim != 4 || t1->shape[0] != 64 || t1->shape[1] < 1 ||
	    t1->shape[1] > EGR_TAESD_MAX_CHANNELS || t1->shape[2] != 3 || t1->shape[3] != 3) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected [64,C,3,3] with C in 1..%d",
			 st->path, nm, t1 ? egr_st_shape_str(t1->shape, t1->ndim, got, sizeof(got)) : "(none)",
			 EGR_TAESD_MAX_CHANNELS);
		return -EINVAL;
	}
	*c = (uint32_t)t1->shape[1];
	return 0;
}

int egr_taesd_load(const char *path, struct egr_taesd **out, char *err, size_t errlen)
{
	struct egr_taesd *net = NULL;
	struct egr_st *st = NULL;
	struct taesd_scan sc;
	struct taesd_tensor tab[TAESD_MAX_TENSORS];
	char nm[EGR_ST_MAX_NAME + 32];
	uint32_t channels, n;
	int r;

	*out = NULL;
	r = egr_st_open(path, &st, err, errlen);
	if (r < 0)
		return r;
	if ((r = taesd_scan_file(st, &sc, err, errlen)) < 0 || (r = taesd_check_names(st, &sc, err, errlen)) < 0 ||
	    (r = taesd_channels_of(st, sc.style, &channels, err, errlen)) < 0)
		goto fail;
	net = calloc(1, sizeof(*net));
	if (!net) {
		r = -ENOMEM;
		egr_errf(err, errlen, "weights \"%s\": out of memory", path);
		goto fail;
	}
	egr_taesd_describe_variant(net, channels, sc.variant);
	taesd_file_name("1.weight", sc.style, nm, sizeof(nm));
	net->file_dtype = egr_st_find(st, nm)->dtype;
	net->extra_tensors = sc.encoder;
	n = taesd_tensors(net, tab);
	for (uint32_t i = 0; i < n; i++) {
		taesd_file_name(tab[i].name, sc.style, nm, sizeof(nm));
		if ((r = taesd_load_tensor(st, nm, &tab[i], err, errlen)) < 0)
			goto fail;
	}
	egr_st_close(st);
	*out = net;
	return 0;
fail:
	egr_taesd_free(net);
	egr_st_close(st);
	return r;
}

/*
 * a[i] = a[i] + w * s[i] for i < n: one binary32 multiply, then one add, per
 * element, four elements per vector operation (unaligned loads via memcpy).
 */
typedef float taesd_v4 __attribute__((vector_size(16)));

static inline void taesd_axpy(float *restrict a, float w, const float *restrict s, size_t n)
{
	const taesd_v4 wv = { w, w, w, w };
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		taesd_v4 va, vs;
		memcpy(&va, a + i, sizeof(va));
		memcpy(&vs, s + i, sizeof(vs));
		va = va + wv * vs;
		memcpy(a + i, &va, sizeof(va));
	}
	for (; i < n; i++)
		a[i] = a[i] + w * s[i];
}

/* va + w0 * r[-1] + w1 * r[0] + w2 * r[1], four pixels, added left to right */
static inline __attribute__((always_inline)) taesd_v4 taesd_tap3(taesd_v4 va, const float *r, taesd_v4 w0,
								  taesd_v4 w1, taesd_v4 w2)
{
	taesd_v4 v;

	memcpy(&v, r - 1, sizeof(v));
	va = va + w0 * v;
	memcpy(&v, r, sizeof(v));
	va = va + w1 * v;
	memcpy(&v, r + 1, sizeof(v));
	return va + w2 * v;
}

static inline __attribute__((always_inline)) taesd_v4 taesd_splat(float w)
{
	return (taesd_v4){ w, w, w, w };
}

/*
 * One output row of one input channel: a[x] += w[ky][kx] * row_ky[x + kx - 1]
 * over the taps in row-major order, skipping taps outside the image (rows:
 * NULL in r[]; columns: at x = 0 and x = W - 1), exactly the sequence of
 * adds the tap-at-a-time loop does, in one pass over a.  Interior rows (all
 * three input rows inside) take the vector path.
 */
static void taesd_row3x3(float *restrict a, const float *const r[3], const float *w, uint32_t W)
{
	const float *rr[3], *wk[3];
	uint32_t nr = 0, x = 1;

	for (int ky = 0; ky < 3; ky++) {
		if (r[ky]) {
			rr[nr] = r[ky];
			wk[nr++] = w + 3 * ky;
		}
	}
	/* x = 0: no left neighbour */
	for (uint32_t k = 0; k < nr; k++) {
		a[0] = a[0] + wk[k][1] * rr[k][0];
		if (W > 1)
			a[0] = a[0] + wk[k][2] * rr[k][1];
	}
	if (W == 1)
		return;
	if (nr == 3) {
		const taesd_v4 w00 = taesd_splat(w[0]), w01 = taesd_splat(w[1]), w02 = taesd_splat(w[2]);
		const taesd_v4 w10 = taesd_splat(w[3]), w11 = taesd_splat(w[4]), w12 = taesd_splat(w[5]);
		const taesd_v4 w20 = taesd_splat(w[6]), w21 = taesd_splat(w[7]), w22 = taesd_splat(w[8]);
		for (; x + 4 <= W - 1; x += 4) {
			taesd_v4 va;
			memcpy(&va, a + x, sizeof(va));
			va = taesd_tap3(va, rr[0] + x, w00, w01, w02);
			va = taesd_tap3(va, rr[1] + x, w10, w11, w12);
			va = taesd_tap3(va, rr[2] + x, w20, w21, w22);
			memcpy(a + x, &va, sizeof(va));
		}
	}
	for (; x < W - 1; x++)
		for (uint32_t k = 0; k < nr; k++)
			for (int kx = 0; kx < 3; kx++)
				a[x] = a[x] + wk[k][kx] * rr[k][x + kx - 1];
	/* x = W - 1: no right neighbour */
	for (uint32_t k = 0; k < nr; k++) {
		a[W - 1] = a[W - 1] + wk[k][0] * rr[k][W - 2];
		a[W - 1] = a[W - 1] + wk[k][1] * rr[k][W - 1];
	}
}

/*
 * out[co] = bias + sum_ci sum_taps w * in  (zero padding), then optional
 * residual add and ReLU.  acc is one plane of scratch; out may equal res.
 * Rows are done in bands of about 32 KB of accumulator.
 */
static void taesd_conv_cpu(const struct egr_taesd_conv *c, const float *in, uint32_t H, uint32_t W, float *out,
			   const float *res, float *acc)
{
	const size_t HW = (size_t)H * W;
	const uint32_t band = W >= 8192 ? 1 : 8192 / W;

	for (uint32_t co = 0; co < c->cout; co++) {
		const float b = c->b ? c->b[co] : 0.0f;
		for (uint32_t y0 = 0; y0 < H; y0 += band) {
			const uint32_t y1 = H - y0 < band ? H : y0 + band;
			for (size_t i = (size_t)y0 * W; i < (size_t)y1 * W; i++)
				acc[i] = b;
			for (uint32_t ci = 0; ci < c->cin; ci++) {
				const float *ip = in + ci * HW;
				const float *wp = c->w + ((size_t)co * c->cin + ci) * 9;
				for (uint32_t y = y0; y < y1; y++) {
					/* output row y reads input rows y - 1, y, y + 1 */
					const float *r[3] = { y > 0 ? ip + (size_t)(y - 1) * W : NULL, ip + (size_t)y * W,
							      y + 1 < H ? ip + (size_t)(y + 1) * W : NULL };
					taesd_row3x3(acc + (size_t)y * W, r, wp, W);
				}
			}
			float *op = out + co * HW;
			const float *rp = res ? res + co * HW : NULL;
			for (size_t i = (size_t)y0 * W; i < (size_t)y1 * W; i++) {
				float v = acc[i];
				if (rp)
					v = v + rp[i];
				if ((c->flags & EGR_TAESD_RELU) && !(v > 0.0f))
					v = 0.0f;
				op[i] = v;
			}
		}
	}
}

/*
 * flux_2's pool branch, in place: x += Conv1x1(ReLU(GroupNorm(Conv1x1(x)))).
 * x is [64][HW]; t is scratch of 256 planes, acc of one.  The GroupNorm's
 * statistics are exact two-pass sums in double over (64 channels x HW) per
 * group, variance biased (as torch); the normalised value is computed in
 * double and rounded once.
 */
static void taesd_pool_cpu(const struct egr_taesd_pool *p, float *x, size_t HW, float *t, float *acc)
{
	const uint32_t PC = EGR_TAESD_POOL_CH, CG = EGR_TAESD_POOL_CH / EGR_TAESD_POOL_GROUPS;

	for (uint32_t c = 0; c < PC; c++) {
		float *tp = t + c * HW;
		memset(tp, 0, HW * sizeof(float));
		for (uint32_t ci = 0; ci < EGR_TAESD_FEAT; ci++)
			taesd_axpy(tp, p->w0[c * EGR_TAESD_FEAT + ci], x + ci * HW, HW);
	}
	for (uint32_t g = 0; g < EGR_TAESD_POOL_GROUPS; g++) {
		float *tg = t + (size_t)g * CG * HW;
		const double N = (double)CG * HW;
		double s = 0, q = 0;
		for (size_t i = 0; i < CG * HW; i++)
			s += tg[i];
		const double mean = s / N;
		for (size_t i = 0; i < CG * HW; i++)
			q += (tg[i] - mean) * (tg[i] - mean);
		const double rstd = 1.0 / sqrt(q / N + EGR_TAESD_POOL_EPS);
		for (uint32_t c = g * CG; c < (g + 1) * CG; c++) {
			float *tp = t + c * HW;
			for (size_t i = 0; i < HW; i++) {
				float v = (float)((tp[i] - mean) * rstd * p->gamma[c] + p->beta[c]);
				tp[i] = v > 0.0f ? v : 0.0f;
			}
		}
	}
	for (uint32_t co = 0; co < EGR_TAESD_FEAT; co++) {
		memset(acc, 0, HW * sizeof(float));
		for (uint32_t k = 0; k < PC; k++)
			taesd_axpy(acc, p->w3[co * PC + k], t + k * HW, HW);
		float *xp = x + co * HW;
		for (size_t i = 0; i < HW; i++)
			xp[i] = xp[i] + acc[i];
	}
}

int egr_taesd_decode_cpu(const struct egr_taesd *net, const float *lat, uint32_t h, uint32_t w, float *rgb,
			 char *err, size_t errlen)
{
	const uint32_t C = net->channels;
	if (h == 0 || w == 0 || h > 4096 || w > 4096) {
		egr_errf(err, errlen, "taesd: latent size %ux%u is out of range (1..4096)", w, h);
		return -EINVAL;
	}
	const size_t full = (size_t)h * w * EGR_TAESD_SCALE * EGR_TAESD_SCALE;
	float *buf[5] = { NULL };
	float *acc = NULL;
	int r = -ENOMEM;

	for (int i = 0; i < 3; i++)
		if (!(buf[i] = malloc(full * EGR_TAESD_FEAT * sizeof(float))))
			goto fail;
	if (!(buf[EGR_TAESD_BUF_IN] = malloc((size_t)h * w * C * sizeof(float))) ||
	    !(acc = malloc(full * sizeof(float))))
		goto fail;
	buf[EGR_TAESD_BUF_OUT] = rgb;
	/* 0: Clamp */
	for (size_t i = 0; i < (size_t)h * w * C; i++)
		buf[EGR_TAESD_BUF_IN][i] = tanhf(lat[i] / 3.0f) * 3.0f;
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		const struct egr_taesd_conv *c = &net->conv[i];
		uint32_t H = h << c->shift, W = w << c->shift;
		const float *in = buf[c->src];
		if (c->flags & EGR_TAESD_POOL)	/* dst (256 planes at latent size fit) is free until the conv */
			taesd_pool_cpu(&net->pool[c->pool], buf[c->src], (size_t)H * W, buf[c->dst], acc);
		if (c->flags & EGR_TAESD_UPSAMPLE) {
			/* nearest x2 of src into dst, then conv dst -> the spare buffer */
			uint32_t sh = H / 2, sw = W / 2, spare = 3 - c->src - c->dst;
			float *u = buf[spare];
			for (uint32_t ch = 0; ch < c->cin; ch++)
				for (uint32_t y = 0; y < H; y++)
					for (uint32_t x = 0; x < W; x++)
						u[((size_t)ch * H + y) * W + x] =
							in[((size_t)ch * sh + y / 2) * sw + x / 2];
			in = u;
		}
		taesd_conv_cpu(c, in, H, W, buf[c->dst], (c->flags & EGR_TAESD_RESIDUAL) ? buf[c->res] : NULL, acc);
	}
	r = 0;
fail:
	if (r < 0)
		egr_errf(err, errlen, "taesd: out of memory for a %ux%u decode", w * 8, h * 8);
	for (int i = 0; i < 4; i++)
		free(buf[i]);
	free(acc);
	return r;
}

void egr_taesd_to_rgb24(const float *rgb, uint32_t h, uint32_t w, uint8_t *out)
{
	const size_t HW = (size_t)h * w;

	for (size_t i = 0; i < HW; i++)
		for (int k = 0; k < 3; k++)
			out[i * 3 + k] = egr_taesd_quant_u8(rgb[k * HW + i]);
}

void egr_taesd_rng_seed(struct egr_taesd_rng *r, uint64_t seed)
{
	r->s = seed;
	r->has_spare = 0;
}

static uint64_t taesd_splitmix(struct egr_taesd_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double egr_taesd_rng_normal(struct egr_taesd_rng *r)
{
	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	/* u1 in (0, 1]: log never sees 0 */
	double u1 = ((double)(taesd_splitmix(r) >> 11) + 1.0) / 9007199254740992.0;
	double u2 = (double)(taesd_splitmix(r) >> 11) / 9007199254740992.0;
	double m = sqrt(-2.0 * log(u1));
	r->spare = m * sin(2.0 * M_PI * u2);
	r->has_spare = 1;
	return m * cos(2.0 * M_PI * u2);
}

/*
 * One generated tensor.  He init keeps a ReLU chain's variance; the last
 * conv of a Block (and the pool's last 1x1) is scaled down so ten residual
 * sums grow the signal gently, and the output conv is scaled so the image
 * lands around 0.5 +- 0.25.  The pool's GroupNorm gets gamma ~ 1, beta ~ 0.
 */
static void taesd_init_tensor(const struct taesd_tensor *t, float *d, struct egr_taesd_rng *rng)
{
	const int out = t->conv && !strcmp(t->conv->name, "19");
	double sd = 0.02, mean = 0.0;

	switch (t->role) {
	case TT_CONV_W:
		sd = out ? sqrt(1.0 / (t->conv->cin * 9.0)) * EGR_TAESD_OUT_GAIN : sqrt(2.0 / (t->conv->cin * 9.0));
		if (strstr(t->conv->name, ".conv.4"))
			sd *= 0.3;
		break;
	case TT_CONV_B:
		mean = out ? 0.5 : 0.0;
		break;
	case TT_POOL_W0:
		sd = sqrt(2.0 / 64.0);
		break;
	case TT_POOL_GAMMA:
		mean = 1.0, sd = 0.1;
		break;
	case TT_POOL_BETA:
		sd = 0.1;
		break;
	case TT_POOL_W3:
		sd = sqrt(2.0 / EGR_TAESD_POOL_CH) * 0.3;
		break;
	}
	for (uint64_t k = 0; k < t->numel; k++)
		d[k] = (float)(mean + egr_taesd_rng_normal(rng) * sd);
	if (out && t->role == TT_CONV_W) {
		/*
		 * ReLU features have a positive mean; zero-sum taps per
		 * (out, in) pair cancel it, so the image centres on the
		 * bias (0.5) whatever the seed.
		 */
		for (uint64_t k = 0; k < t->numel; k += 9) {
			float m = 0.0f;
			for (int j = 0; j < 9; j++)
				m += d[k + j];
			for (int j = 0; j < 9; j++)
				d[k + j] -= m / 9.0f;
		}
	}
}

int egr_taesd_write_random_variant(const char *path, uint32_t channels, uint32_t variant, uint64_t seed,
				   uint32_t dtype, char *err, size_t errlen)
{
	struct egr_taesd net;
	struct taesd_tensor tab[TAESD_MAX_TENSORS];
	struct egr_st_wtensor ts[TAESD_MAX_TENSORS];
	float *data[TAESD_MAX_TENSORS] = { NULL };
	struct egr_taesd_rng rng;
	uint32_t n;
	int r = -ENOMEM;

	if (channels < 1 || channels > EGR_TAESD_MAX_CHANNELS) {
		egr_errf(err, errlen, "taesd: %u latent channels; 1 to %d are supported", channels,
			 EGR_TAESD_MAX_CHANNELS);
		return -EINVAL;
	}
	if (variant != EGR_TAESD_PLAIN && variant != EGR_TAESD_FLUX2) {
		egr_errf(err, errlen, "taesd: unknown variant %u", variant);
		return -EINVAL;
	}
	egr_taesd_describe_variant(&net, channels, variant);
	n = taesd_tensors(&net, tab);
	egr_taesd_rng_seed(&rng, seed);
	for (uint32_t i = 0; i < n; i++) {
		data[i] = malloc(tab[i].numel * sizeof(float));
		if (!data[i]) {
			egr_errf(err, errlen, "taesd: out of memory generating weights");
			goto out;
		}
		taesd_init_tensor(&tab[i], data[i], &rng);
		ts[i] = (struct egr_st_wtensor){ tab[i].name, dtype, tab[i].ndim, { 0 }, data[i] };
		memcpy(ts[i].shape, tab[i].shape, sizeof(tab[i].shape));
	}
	r = egr_st_write(path, ts, n, err, errlen);
out:
	for (uint32_t i = 0; i < n; i++)
		free(data[i]);
	return r;
}

int egr_taesd_write_random(const char *path, uint32_t channels, uint64_t seed, uint32_t dtype, char *err,
			   size_t errlen)
{
	return egr_taesd_write_random_variant(path, channels, EGR_TAESD_PLAIN, seed, dtype, err, errlen);
}
