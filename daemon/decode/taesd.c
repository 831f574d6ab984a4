/*
 * taesd: network plan, weight loading/validation, fp32 CPU reference and the
 * seeded weight generator; see taesd.h.
 *
 * The CPU reference is deliberately plain: planar fp32, a direct 3x3
 * convolution accumulating bias first, then input channels in order, then
 * the nine taps (row-major), the nearest upsample materialised.  It is the
 * oracle, so clarity beats speed; the loop order keeps the inner loop a
 * contiguous run over one output row so it is fast enough for CI sizes.
 */
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

void egr_taesd_describe(struct egr_taesd *net, uint32_t channels)
{
	uint32_t k = 0, cur = 0;

	memset(net->conv, 0, sizeof(net->conv));
	net->channels = channels;
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
		snprintf(nm, sizeof(nm), "%d.conv.2", bi);
		CONV(nm, 64, 64, 1, EGR_TAESD_RELU, t1, t2, 0, shift);
		snprintf(nm, sizeof(nm), "%d.conv.4", bi);
		CONV(nm, 64, 64, 1, EGR_TAESD_RELU | EGR_TAESD_RESIDUAL, t2, cur, cur, shift);
	}
	CONV("19", 64, 3, 1, 0, cur, EGR_TAESD_BUF_OUT, 0, shift);
#undef CONV
}

void egr_taesd_free(struct egr_taesd *net)
{
	if (!net)
		return;
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		free(net->conv[i].w);
		free(net->conv[i].b);
	}
	free(net);
}

/* find name, or prefix+name (diffusers' AutoencoderTiny layout) */
static const struct egr_st_tensor *taesd_find(const struct egr_st *st, const char *prefix, const char *name)
{
	char full[EGR_ST_MAX_NAME + 32];

	snprintf(full, sizeof(full), "%s%s", prefix, name);
	return egr_st_find(st, full);
}

static int taesd_load_tensor(const struct egr_st *st, const char *prefix, const char *name, uint32_t ndim,
			     const uint64_t *shape, float **dst, char *err, size_t errlen)
{
	const struct egr_st_tensor *t = taesd_find(st, prefix, name);
	char got[96], want[96];
	int r;

	if (!t) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s%s' is missing (not a TAESD decoder file?)", st->path,
			 prefix, name);
		return -EINVAL;
	}
	if (t->dtype != EGR_ST_F16 && t->dtype != EGR_ST_F32 && t->dtype != EGR_ST_BF16) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has dtype %s, expected F16, BF16 or F32", st->path,
			 t->name, t->dtype_name);
		return -EINVAL;
	}
	if (t->ndim != ndim || memcmp(t->shape, shape, ndim * sizeof(*shape))) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected %s", st->path, t->name,
			 egr_st_shape_str(t->shape, t->ndim, got, sizeof(got)),
			 egr_st_shape_str(shape, ndim, want, sizeof(want)));
		return -EINVAL;
	}
	*dst = malloc((size_t)t->numel * sizeof(float));
	if (!*dst) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': out of memory", st->path, t->name);
		return -ENOMEM;
	}
	r = egr_st_read_f32(st, t, *dst, err, errlen);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < t->numel; i++) {
		if (!isfinite((*dst)[i])) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s' holds a NaN or Inf at element %llu", st->path,
				 t->name, (unsigned long long)i);
			return -EINVAL;
		}
	}
	return 0;
}

int egr_taesd_load(const char *path, struct egr_taesd **out, char *err, size_t errlen)
{
	struct egr_taesd *net = NULL;
	struct egr_st *st = NULL;
	const struct egr_st_tensor *t1;
	const char *prefix = "";
	char nm[64], got[96];
	int r;

	*out = NULL;
	r = egr_st_open(path, &st, err, errlen);
	if (r < 0)
		return r;
	t1 = egr_st_find(st, "1.weight");
	if (!t1) {
		prefix = "decoder.layers.";
		t1 = taesd_find(st, prefix, "1.weight");
	}
	if (!t1) {
		r = -EINVAL;
		egr_errf(err, errlen, "weights \"%s\": tensor '1.weight' is missing (not a TAESD decoder file?)", path);
		goto fail;
	}
	if (t1->ndim != 4 || t1->shape[0] != 64 || t1->shape[1] < 1 || t1->shape[1] > EGR_TAESD_MAX_CHANNELS ||
	    t1->shape[2] != 3 || t1->shape[3] != 3) {
		r = -EINVAL;
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has shape %s, expected [64,C,3,3] with C in 1..%d", path,
			 t1->name, egr_st_shape_str(t1->shape, t1->ndim, got, sizeof(got)), EGR_TAESD_MAX_CHANNELS);
		goto fail;
	}
	net = calloc(1, sizeof(*net));
	if (!net) {
		r = -ENOMEM;
		egr_errf(err, errlen, "weights \"%s\": out of memory", path);
		goto fail;
	}
	egr_taesd_describe(net, (uint32_t)t1->shape[1]);
	net->file_dtype = t1->dtype;
	uint32_t used = 0;
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		struct egr_taesd_conv *c = &net->conv[i];
		uint64_t ws[4] = { c->cout, c->cin, 3, 3 }, bs[1] = { c->cout };
		snprintf(nm, sizeof(nm), "%s.weight", c->name);
		r = taesd_load_tensor(st, prefix, nm, 4, ws, &c->w, err, errlen);
		if (r < 0)
			goto fail;
		used++;
		if (c->has_bias) {
			snprintf(nm, sizeof(nm), "%s.bias", c->name);
			r = taesd_load_tensor(st, prefix, nm, 1, bs, &c->b, err, errlen);
			if (r < 0)
				goto fail;
			used++;
		}
	}
	net->extra_tensors = st->ntensors - used;
	egr_st_close(st);
	*out = net;
	return 0;
fail:
	egr_taesd_free(net);
	egr_st_close(st);
	return r;
}

/*
 * out[co] = bias + sum_ci sum_taps w * in  (zero padding), then optional
 * residual add and ReLU.  acc is one plane of scratch; out may equal res.
 */
static void taesd_conv_cpu(const struct egr_taesd_conv *c, const float *in, uint32_t H, uint32_t W, float *out,
			   const float *res, float *acc)
{
	const size_t HW = (size_t)H * W;

	for (uint32_t co = 0; co < c->cout; co++) {
		float b = c->b ? c->b[co] : 0.0f;
		for (size_t i = 0; i < HW; i++)
			acc[i] = b;
		for (uint32_t ci = 0; ci < c->cin; ci++) {
			const float *ip = in + ci * HW;
			const float *wp = c->w + ((size_t)co * c->cin + ci) * 9;
			for (int ky = 0; ky < 3; ky++) {
				for (int kx = 0; kx < 3; kx++) {
					const float wv = wp[ky * 3 + kx];
					/* output x reads input x + kx - 1: valid for x in [x0, x1) */
					const uint32_t x0 = kx == 0 ? 1 : 0, x1 = kx == 2 ? W - 1 : W;
					for (uint32_t y = 0; y < H; y++) {
						int sy = (int)y + ky - 1;
						if (sy < 0 || sy >= (int)H)
							continue;
						const float *srow = ip + (size_t)sy * W + kx - 1;
						float *arow = acc + (size_t)y * W;
						for (uint32_t x = x0; x < x1; x++)
							arow[x] = arow[x] + wv * srow[x];
					}
				}
			}
		}
		float *op = out + co * HW;
		const float *rp = res ? res + co * HW : NULL;
		for (size_t i = 0; i < HW; i++) {
			float v = acc[i];
			if (rp)
				v = v + rp[i];
			if ((c->flags & EGR_TAESD_RELU) && !(v > 0.0f))
				v = 0.0f;
			op[i] = v;
		}
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

int egr_taesd_write_random(const char *path, uint32_t channels, uint64_t seed, uint32_t dtype, char *err,
			   size_t errlen)
{
	struct egr_taesd net;
	struct egr_st_wtensor ts[2 * EGR_TAESD_NCONV];
	char names[2 * EGR_TAESD_NCONV][32];
	float *data[2 * EGR_TAESD_NCONV] = { NULL };
	struct egr_taesd_rng rng;
	uint32_t n = 0;
	int r = -ENOMEM;

	if (channels < 1 || channels > EGR_TAESD_MAX_CHANNELS) {
		egr_errf(err, errlen, "taesd: %u latent channels; 1 to %d are supported", channels,
			 EGR_TAESD_MAX_CHANNELS);
		return -EINVAL;
	}
	egr_taesd_describe(&net, channels);
	egr_taesd_rng_seed(&rng, seed);
	for (int i = 0; i < EGR_TAESD_NCONV; i++) {
		const struct egr_taesd_conv *c = &net.conv[i];
		size_t nw = (size_t)c->cout * c->cin * 9;
		double fan = c->cin * 9.0, sd = sqrt(2.0 / fan), bsd = 0.02, bmean = 0.0;
		/*
		 * He init keeps a ReLU chain's variance; the last conv of a Block
		 * is scaled down so ten residual sums grow the signal gently, and
		 * the output conv is scaled so the image lands around 0.5 +- 0.25.
		 */
		if (strstr(c->name, ".conv.4"))
			sd *= 0.3;
		if (!strcmp(c->name, "19")) {
			sd = sqrt(1.0 / fan) * EGR_TAESD_OUT_GAIN;
			bsd = 0.02;
			bmean = 0.5;
		}
		data[n] = malloc(nw * sizeof(float));
		if (!data[n])
			goto fail;
		for (size_t k = 0; k < nw; k++)
			data[n][k] = (float)(egr_taesd_rng_normal(&rng) * sd);
		if (!strcmp(c->name, "19")) {
			/*
			 * ReLU features have a positive mean; zero-sum taps per
			 * (out, in) pair cancel it, so the image centres on the
			 * bias (0.5) whatever the seed.
			 */
			for (size_t k = 0; k < nw; k += 9) {
				float m = 0.0f;
				for (int j = 0; j < 9; j++)
					m += data[n][k + j];
				for (int j = 0; j < 9; j++)
					data[n][k + j] -= m / 9.0f;
			}
		}
		snprintf(names[n], sizeof(names[n]), "%s.weight", c->name);
		ts[n] = (struct egr_st_wtensor){ names[n], dtype, 4, { c->cout, c->cin, 3, 3 }, data[n] };
		n++;
		if (c->has_bias) {
			data[n] = malloc(c->cout * sizeof(float));
			if (!data[n])
				goto fail;
			for (uint32_t k = 0; k < c->cout; k++)
				data[n][k] = (float)(bmean + egr_taesd_rng_normal(&rng) * bsd);
			snprintf(names[n], sizeof(names[n]), "%s.bias", c->name);
			ts[n] = (struct egr_st_wtensor){ names[n], dtype, 1, { c->cout }, data[n] };
			n++;
		}
	}
	r = egr_st_write(path, ts, n, err, errlen);
	goto out;
fail:
	egr_errf(err, errlen, "taesd: out of memory generating weights");
out:
	for (uint32_t i = 0; i < 2 * EGR_TAESD_NCONV; i++)
		free(data[i]);
	return r;
}
