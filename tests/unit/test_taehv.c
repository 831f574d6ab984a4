/*
 * test_taehv: the TAEHV video decoder's models, plan, loader, streaming CPU
 * decoder and generator.
 *
 *  - model names, shapes and output frame counts exactly as taehv.py's
 *    decode_video (Wan 2.1: 16 latent frames -> 61; LTX-2: 8T - 7; the
 *    CogVideoX parity quirk; time upscaling switched off);
 *  - the tensor names the loader wants are the TAEHV state dict's decoder
 *    keys (listed here from taehv.py's Sequential indices);
 *  - seeded weights are deterministic and load back for every model;
 *    encoder tensors are skipped and counted; a TGrow with more rows than the
 *    layer uses is cut to its last rows (patch_tgrow_layers);
 *  - a missing, unknown or misshapen tensor, a model the shapes contradict,
 *    the "super" variant, a bad dtype or a NaN are refused by name;
 *  - the fp32 CPU decoder matches an independent numpy float64 implementation
 *    of the whole-sequence decode (tests/ref/taehv_ref.py) within 1e-4
 *    relative, for wan21, wan22 (2x2 patch), ltx2 (4x4, time x8) and a
 *    sliced-TGrow file;
 *  - chunked decoding equals whole-sequence decoding bit for bit (chunks of
 *    1, 3 and all);
 *  - the real Wan 2.1 latents (<repo>/../shared/data/wan21, or
 *    $EGR_SHARED_DIR/data/wan21) through wan21 with random weights on a 4x4
 *    crop (CI time) give 61 frames, equal to numpy's; when they are absent
 *    every other check still runs and the test exits 77 if those pass.
 * The numpy parts are skipped (with a note) when python3 or numpy is missing.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/taesd.h"
#include "daemon/decode/taehv.h"

#include "check.h"

static char dir[256];
static int numpy_ok = 1;

/*
 * Seeded F16 weights of each model at its defaults (seed 100 + model), and
 * of hunyuan with a stride-2 first TGrow (index EGR_TAEHV_NMODELS), written
 * once: writing 20 MB files dominates this test's time otherwise.
 */
static const char *model_weights(uint32_t m)
{
	static char paths[EGR_TAEHV_NMODELS + 1][300];
	struct egr_taehv_cfg cfg;
	char err[512];

	if (paths[m][0])
		return paths[m];
	egr_taehv_cfg_init(&cfg, m < EGR_TAEHV_NMODELS ? m : EGR_TAEHV_HUNYUAN);
	if (m == EGR_TAEHV_NMODELS)
		cfg.time_upscale[0] = 1;
	snprintf(paths[m], sizeof(paths[m]), "%s/m%u.safetensors", dir, m);
	CHECK(egr_taehv_write_random(paths[m], &cfg, 100 + m, EGR_ST_F16, 0, err, sizeof(err)) == 0, "write: %s", err);
	return paths[m];
}

/* ---- frames collected from a stream ---- */

struct frames {
	float *v;
	size_t n, cap, fsize;	/* frames, capacity in frames, floats per frame */
	uint32_t h, w;
	int fail_at;		/* emit fails at this index (-1 never) */
};

static int collect(void *ctx, uint64_t index, const float *rgb, uint32_t out_h, uint32_t out_w)
{
	struct frames *f = ctx;

	if ((int64_t)index == f->fail_at)
		return -EIO;
	if (index != f->n)
		return -EPROTO;
	f->h = out_h, f->w = out_w, f->fsize = (size_t)3 * out_h * out_w;
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 8;
		float *nv = realloc(f->v, f->cap * f->fsize * sizeof(float));
		if (!nv)
			return -ENOMEM;
		f->v = nv;
	}
	memcpy(f->v + f->n * f->fsize, rgb, f->fsize * sizeof(float));
	f->n++;
	return 0;
}

/* Decode nlat latent frames [nlat][C][h][w] in chunks of `chunk`; 0 or -errno. */
static int decode(const struct egr_taehv *net, const float *lat, uint32_t nlat, uint32_t h, uint32_t w,
		  uint32_t chunk, struct frames *out)
{
	struct egr_taehv_stream *s = NULL;
	const size_t plane = (size_t)net->channels * h * w;
	char err[512];
	uint32_t got, total = 0;
	int r;

	memset(out, 0, sizeof(*out));
	out->fail_at = -1;
	r = egr_taehv_stream_create(net, h, w, nlat, &s, err, sizeof(err));
	CHECK(r == 0, "stream_create: %s", err);
	for (uint32_t i = 0; r == 0 && i < nlat; i += chunk) {
		uint32_t n = nlat - i < chunk ? nlat - i : chunk;
		r = egr_taehv_stream_feed(s, lat + i * plane, n, collect, out, &got, err, sizeof(err));
		CHECK(r == 0, "feed: %s", err);
		total += got;
	}
	if (r == 0) {
		r = egr_taehv_stream_flush(s, collect, out, &got, err, sizeof(err));
		CHECK(r == 0 && got == 0, "flush: %s", err);
		CHECK(total == out->n && egr_taehv_stream_emitted(s) == out->n && egr_taehv_stream_fed(s) == nlat,
		      "produced counts %u / %zu", total, out->n);
	}
	egr_taehv_stream_free(s);
	return r;
}

/* ---- models, plan, frame counts ---- */

static void test_models(void)
{
	static const struct {
		const char *name, *file;
		uint32_t C, p;
	} want[] = { { "wan21", "taew2_1", 16, 1 },     { "wan22", "taew2_2", 48, 2 },	{ "hunyuan", "taehv", 16, 1 },
		     { "hunyuan15", "taehv1_5", 32, 2 }, { "ltx2", "taeltx_2", 128, 4 }, { "cogvideox", "taecvx", 16, 1 },
		     { "opensora", "taeos1_3", 16, 1 } };
	uint32_t m;

	for (uint32_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK(egr_taehv_model_parse(want[i].name, &m) == 0 && m == i, "parse %s", want[i].name);
		CHECK(!strcmp(egr_taehv_model_name(i), want[i].name) && !strcmp(egr_taehv_model_file(i), want[i].file),
		      "model %u names", i);
		CHECK(egr_taehv_model_channels(i) == want[i].C && egr_taehv_model_patch(i) == want[i].p, "model %u shape",
		      i);
	}
	CHECK(egr_taehv_model_parse("wan", &m) == -EINVAL && egr_taehv_model_name(EGR_TAEHV_NMODELS) == NULL,
	      "unknown model");
}

/* decode_video's count, written from taehv.py: T * t_upscale raw frames, the first t_upscale - 1 trimmed */
static uint64_t frames_py(uint64_t T, uint32_t t_upscale, int cog)
{
	uint64_t raw = T * t_upscale;
	if (cog && T % 2 == 0)
		return raw;
	return raw >= t_upscale - 1 ? raw - (t_upscale - 1) : 0;
}

static void test_frame_counts(void)
{
	struct egr_taehv net;
	struct egr_taehv_cfg cfg;
	char err[256];

	for (uint32_t m = 0; m < EGR_TAEHV_NMODELS; m++) {
		egr_taehv_cfg_init(&cfg, m);
		CHECK(egr_taehv_describe(&net, &cfg, 16, 1, err, sizeof(err)) == 0, "describe %u: %s", m, err);
		uint32_t tu = m == EGR_TAEHV_LTX2 ? 8 : 4;
		CHECK(net.t_upscale == tu && net.frames_to_trim == tu - 1, "model %u: t_upscale %u", m, net.t_upscale);
		for (uint64_t T = 0; T < 20; T++)
			CHECK(egr_taehv_out_frames(&net, T) == frames_py(T, tu, m == EGR_TAEHV_COGVIDEOX),
			      "model %u, %llu latent frames: %llu", m, (unsigned long long)T,
			      (unsigned long long)egr_taehv_out_frames(&net, T));
	}
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN21);
	egr_taehv_describe(&net, &cfg, 16, 1, err, sizeof(err));
	CHECK(egr_taehv_out_frames(&net, 16) == 61, "wan21: 16 latent frames -> %llu",
	      (unsigned long long)egr_taehv_out_frames(&net, 16));
	CHECK(egr_taehv_out_frames(&net, 1) == 1 && egr_taehv_out_frames(&net, 0) == 0, "wan21: 1 -> 1, 0 -> 0");
	cfg.time_upscale[1] = cfg.time_upscale[2] = 0;	/* the cheap preview: one frame per latent */
	egr_taehv_describe(&net, &cfg, 16, 1, err, sizeof(err));
	CHECK(net.t_upscale == 1 && egr_taehv_out_frames(&net, 16) == 16, "no time upscale: %llu",
	      (unsigned long long)egr_taehv_out_frames(&net, 16));
	cfg.space_upscale[0] = 0;
	egr_taehv_describe(&net, &cfg, 16, 1, err, sizeof(err));
	uint32_t oh, ow;
	egr_taehv_out_size(&net, 40, 64, &oh, &ow);
	CHECK(oh == 160 && ow == 256, "one spatial upscale off: %ux%u", ow, oh);
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_LTX2);
	egr_taehv_describe(&net, &cfg, 128, 4, err, sizeof(err));
	egr_taehv_out_size(&net, 2, 3, &oh, &ow);
	CHECK(oh == 64 && ow == 96 && egr_taehv_out_frames(&net, 3) == 17, "ltx2: %ux%u", ow, oh);
	cfg.time_upscale[0] = 0;
	CHECK(egr_taehv_describe(&net, &cfg, 128, 4, err, sizeof(err)) == -EINVAL, "ltx2 time upscale off accepted");
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN21);
	cfg.space_upscale[2] = 2;
	CHECK(egr_taehv_describe(&net, &cfg, 16, 1, err, sizeof(err)) == -EINVAL, "switch 2 accepted");
}

static void test_names(void)
{
	struct egr_taehv net;
	struct egr_taehv_cfg cfg;
	char want[70][48], got[70][48], err[256];
	size_t nw = 0, ng = 0;

	/* taehv.py's decoder Sequential: 1 conv; 3-5, 9-11, 15-17 MemBlocks; 7, 13, 19 TGrow; 8, 14, 20 conv; 22 conv */
	snprintf(want[nw++], 48, "decoder.1.weight");
	snprintf(want[nw++], 48, "decoder.1.bias");
	for (int s = 0; s < 3; s++) {
		for (int b = 3 + 6 * s; b < 6 + 6 * s; b++)
			for (int j = 0; j <= 4; j += 2) {
				snprintf(want[nw++], 48, "decoder.%d.conv.%d.weight", b, j);
				snprintf(want[nw++], 48, "decoder.%d.conv.%d.bias", b, j);
			}
		snprintf(want[nw++], 48, "decoder.%d.conv.weight", 7 + 6 * s);
		snprintf(want[nw++], 48, "decoder.%d.weight", 8 + 6 * s);
	}
	snprintf(want[nw++], 48, "decoder.22.weight");
	snprintf(want[nw++], 48, "decoder.22.bias");
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN22);
	CHECK(egr_taehv_describe(&net, &cfg, 48, 2, err, sizeof(err)) == 0, "%s", err);
	for (int i = 0; i < EGR_TAEHV_NCONV; i++) {
		snprintf(got[ng++], 48, "%s.weight", net.conv[i].name);
		if (net.conv[i].has_bias)
			snprintf(got[ng++], 48, "%s.bias", net.conv[i].name);
	}
	CHECK(nw == EGR_TAEHV_NTENSORS && ng == nw, "%zu tensors, taehv.py has %zu", ng, nw);
	for (size_t i = 0; i < nw && i < ng; i++)
		CHECK(!strcmp(got[i], want[i]), "tensor %zu is '%s', expected '%s'", i, got[i], want[i]);
	const struct egr_taehv_conv *c = &net.conv[EGR_TAEHV_CONV_MEM(1, 0, 0)];
	CHECK(c->cin == 256 && c->cout == 128 && c->ksize == 3, "MemBlock(128) conv.0 takes [x, past]");
	c = &net.conv[EGR_TAEHV_CONV_TGROW(0)];
	CHECK(c->cin == 256 && c->cout == 256 && c->ksize == 1 && !c->has_bias, "first TGrow: stride 1");
	c = &net.conv[EGR_TAEHV_CONV_TGROW(2)];
	CHECK(c->cin == 64 && c->cout == 128, "last TGrow: stride 2");
	c = &net.conv[EGR_TAEHV_CONV_LAST];
	CHECK(c->cin == 64 && c->cout == 12 && c->has_bias, "decoder.22: 3 p^2 = 12 outputs");
	CHECK(!net.conv[EGR_TAEHV_CONV_STAGE(2)].has_bias && net.conv[EGR_TAEHV_CONV_STAGE(2)].cout == 64, "decoder.20");
}

/* ---- generator and loader ---- */

static int file_eq(const char *a, const char *b)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

static void test_generate_load(void)
{
	char a[300], err[512];
	struct egr_taehv_cfg cfg;
	struct egr_taehv *net = NULL;

	snprintf(a, sizeof(a), "%s/a.safetensors", dir);
	for (uint32_t m = 0; m < EGR_TAEHV_NMODELS; m++) {
		CHECK(egr_taehv_load(model_weights(m), m, &net, err, sizeof(err)) == 0, "load %s: %s",
		      egr_taehv_model_name(m), err);
		if (net)
			CHECK(net->channels == egr_taehv_model_channels(m) && net->patch == egr_taehv_model_patch(m) &&
				      net->encoder_tensors == 0 && net->file_dtype == EGR_ST_F16 && net->conv[34].b,
			      "model %u loaded as C=%u p=%u", m, net->channels, net->patch);
		egr_taehv_free(net);
		net = NULL;
	}
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN21);
	egr_taehv_write_random(a, &cfg, 100 + EGR_TAEHV_WAN21, EGR_ST_F16, 0, err, sizeof(err));
	CHECK(file_eq(a, model_weights(EGR_TAEHV_WAN21)), "same seed, different files");
	/* opensora: wan21's names and shapes, another seed */
	CHECK(!file_eq(a, model_weights(EGR_TAEHV_OPENSORA)), "different seeds, same file");

	/* a whole checkpoint: the encoder half is skipped and counted */
	CHECK(egr_taehv_write_random(a, &cfg, 5, EGR_ST_F32, EGR_TAEHV_WRITE_ENCODER, err, sizeof(err)) == 0, "%s", err);
	CHECK(egr_taehv_load(a, EGR_TAEHV_WAN21, &net, err, sizeof(err)) == 0, "with encoder: %s", err);
	CHECK(net && net->encoder_tensors == 64 && net->file_dtype == EGR_ST_F32, "encoder tensors %u",
	      net ? net->encoder_tensors : 0);
	egr_taehv_free(net);
	net = NULL;

	/* a stride-2 first TGrow in the file, loaded at hunyuan's stride 1: the last 256 rows */
	struct egr_taehv *full = NULL;
	const char *sliced = model_weights(EGR_TAEHV_NMODELS);
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_HUNYUAN);
	cfg.time_upscale[0] = 1;
	CHECK(egr_taehv_load_cfg(sliced, &cfg, &full, err, sizeof(err)) == 0, "%s", err);
	CHECK(egr_taehv_load(sliced, EGR_TAEHV_HUNYUAN, &net, err, sizeof(err)) == 0, "sliced TGrow: %s", err);
	if (net && full) {
		const struct egr_taehv_conv *c = &net->conv[EGR_TAEHV_CONV_TGROW(0)];
		CHECK(c->cout == 256 && c->file_cout == 512 && full->conv[EGR_TAEHV_CONV_TGROW(0)].cout == 512, "rows");
		CHECK(!memcmp(c->w, full->conv[EGR_TAEHV_CONV_TGROW(0)].w + 256 * 256, 256 * 256 * sizeof(float)),
		      "sliced TGrow is not the last 256 rows");
	}
	egr_taehv_free(net);
	egr_taehv_free(full);
	net = NULL;
	/* and the other way: a stride-1 TGrow cannot serve a stride-2 layer */
	CHECK(egr_taehv_load_cfg(model_weights(EGR_TAEHV_HUNYUAN), &cfg, &net, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "'decoder.7.conv.weight' has shape [256,256,1,1], expected [512,256,1,1]"),
	      "short TGrow: '%s'", err);
}

/*
 * A wan21 file built tensor by tensor from the plan, with one change: drop,
 * rename, reshape (dim 0 or 1), poison or retype a tensor, or add one.
 */
struct variant {
	const char *victim;	/* tensor to change */
	const char *rename;	/* new name ("" drops it) */
	uint64_t dim0, dim1;	/* new shape[0] / shape[1] (0 keeps) */
	int nan;
	const char *extra;	/* one more tensor */
	uint32_t C, p;		/* plan shape (0: wan21's) */
	int tiny;		/* every tensor but decoder.1/22.weight one element: for checks before shapes */
};

static int write_variant(const char *path, const struct variant *v)
{
	struct egr_taehv net;
	struct egr_taehv_cfg cfg;
	struct egr_st_wtensor ts[EGR_TAEHV_NTENSORS + 1];
	char names[EGR_TAEHV_NTENSORS + 1][48], err[512];
	const size_t maxn = 1024 * 512 * 9;
	float *data = calloc(maxn, sizeof(float)), *nandata = calloc(maxn, sizeof(float));
	uint32_t n = 0;
	int r = -1;

	if (!data || !nandata)
		goto out;
	for (size_t i = 0; i < maxn; i++)
		data[i] = 0.001f * (float)(i % 13);
	nandata[3] = NAN;
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN21);
	egr_taehv_describe(&net, &cfg, v->C ? v->C : 16, v->p ? v->p : 1, err, sizeof(err));
	for (int i = 0; i < EGR_TAEHV_NCONV; i++) {
		const struct egr_taehv_conv *c = &net.conv[i];
		for (uint32_t k = 0; k < 1 + c->has_bias; k++) {
			struct egr_st_wtensor *t = &ts[n];
			snprintf(names[n], 48, "%s.%s", c->name, k ? "bias" : "weight");
			*t = (struct egr_st_wtensor){ names[n], EGR_ST_F16, k ? 1u : 4u, { c->cout, c->cin, c->ksize, c->ksize },
						      data };
			if (v->tiny && strcmp(names[n], "decoder.1.weight") && strcmp(names[n], "decoder.22.weight"))
				t->ndim = 1, t->shape[0] = 1;
			if (v->victim && !strcmp(names[n], v->victim)) {
				if (v->rename && !*v->rename)
					continue;
				if (v->rename)
					snprintf(names[n], 48, "%s", v->rename);
				t->shape[0] = v->dim0 ? v->dim0 : t->shape[0];
				t->shape[1] = v->dim1 ? v->dim1 : t->shape[1];
				t->data = v->nan ? nandata : data;
			}
			n++;
		}
	}
	if (v->extra)
		ts[n++] = (struct egr_st_wtensor){ v->extra, EGR_ST_F32, 2, { 3, 3 }, data };
	r = egr_st_write(path, ts, n, err, sizeof(err));
	if (r < 0)
		printf("write_variant: %s\n", err);
out:
	free(data);
	free(nandata);
	return r;
}

/* load p as model; expect rc and, if rc < 0, every needle in the error */
static void expect_load(const char *p, uint32_t model, int rc, const char *n1, const char *n2)
{
	struct egr_taehv *net = NULL;
	char err[1024] = "";
	int r = egr_taehv_load(p, model, &net, err, sizeof(err));

	CHECK(r == rc, "load returned %d, expected %d: '%s'", r, rc, err);
	if (rc < 0) {
		CHECK(!n1 || strstr(err, n1), "error '%s' lacks '%s'", err, n1);
		CHECK(!n2 || strstr(err, n2), "error '%s' lacks '%s'", err, n2);
		CHECK(strstr(err, p) != NULL, "error '%s' does not name the file", err);
	}
	egr_taehv_free(net);
}

static void test_bad_weights(void)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/bad.safetensors", dir);
	write_variant(p, &(struct variant){ 0 });
	expect_load(p, EGR_TAEHV_WAN21, 0, NULL, NULL);
	expect_load(p, EGR_TAEHV_OPENSORA, 0, NULL, NULL);	/* same shapes, other weights */
	expect_load(p, EGR_TAEHV_WAN22, -EINVAL, "'decoder.1.weight' has shape [256,16,3,3]: 16 latent channels",
		    "wan22 (taew2_2) has 48");
	write_variant(p, &(struct variant){ .C = 48, .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN22, -EINVAL, "'decoder.22.weight' has shape [3,64,3,3]: patch size 1",
		    "wan22 (taew2_2) has 2");
	write_variant(p, &(struct variant){ .C = 48, .p = 2 });
	expect_load(p, EGR_TAEHV_WAN22, 0, NULL, NULL);
	write_variant(p, &(struct variant){ .victim = "decoder.22.bias", .rename = "", .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "not a TAEHV decoder: missing 'decoder.22.bias'", NULL);
	write_variant(p, &(struct variant){ .extra = "decoder.23.weight", .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "not a TAEHV decoder: unknown 'decoder.23.weight'", NULL);
	write_variant(p, &(struct variant){ .victim = "decoder.9.conv.2.bias", .rename = "decoder.9.conv.3.bias", .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "missing 'decoder.9.conv.2.bias'", "unknown 'decoder.9.conv.3.bias'");
	write_variant(p, &(struct variant){ .extra = "pool.0.weight", .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "unknown 'pool.0.weight'", NULL);
	write_variant(p, &(struct variant){ .extra = "encoder.0.weight" });
	expect_load(p, EGR_TAEHV_WAN21, 0, NULL, NULL);
	write_variant(p, &(struct variant){ .extra = "decoder.0.weight", .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "'decoder.0.weight' marks TAEHV's \"super\" decoder", NULL);
	write_variant(p, &(struct variant){ .victim = "decoder.15.conv.0.weight", .dim1 = 64 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL,
		    "tensor 'decoder.15.conv.0.weight' has shape [64,64,3,3], expected [64,128,3,3]", NULL);
	write_variant(p, &(struct variant){ .victim = "decoder.13.conv.weight", .dim0 = 300 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "'decoder.13.conv.weight' has shape [300,128,1,1], expected [256,128,1,1]",
		    "a multiple of the input channels");
	write_variant(p, &(struct variant){ .victim = "decoder.13.conv.weight", .dim0 = 384 });
	expect_load(p, EGR_TAEHV_WAN21, 0, NULL, NULL);	/* 3 x 128 rows: the last 256 */
	write_variant(p, &(struct variant){ .victim = "decoder.22.weight", .dim0 = 6, .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "'decoder.22.weight' has shape [6,64,3,3], expected [3p^2,64,3,3]",
		    NULL);
	write_variant(p, &(struct variant){ .victim = "decoder.1.weight", .dim0 = 128, .tiny = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "expected [256,C,3,3]", NULL);
	write_variant(p, &(struct variant){ .victim = "decoder.10.conv.4.bias", .nan = 1 });
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "'decoder.10.conv.4.bias': element 3 is not finite", NULL);
	/* a dtype that is not a float: decoder.1.bias retyped F16 -> I16 in the header (same element size) */
	write_variant(p, &(struct variant){ .tiny = 1 });
	FILE *f = fopen(p, "r+b");
	char hdr[8192];
	size_t hn = f ? fread(hdr, 1, sizeof(hdr) - 1, f) : 0;
	hdr[hn] = 0;
	char *at = strstr(hdr + 8, "\"decoder.1.bias\":{\"dtype\":\"F16\"");
	CHECK(at != NULL, "no decoder.1.bias F16 entry in the header");
	if (f && at) {
		at += strlen("\"decoder.1.bias\":{\"dtype\":\"");
		fseek(f, at - hdr, SEEK_SET);
		fputc('I', f);
	}
	if (f)
		fclose(f);
	expect_load(p, EGR_TAEHV_WAN21, -EINVAL, "tensor 'decoder.1.bias' has dtype I16, expected F16, BF16 or F32", NULL);
	{
		struct egr_taehv *net = NULL;
		char err[256];
		CHECK(egr_taehv_load("/nonexistent/w.safetensors", EGR_TAEHV_WAN21, &net, err, sizeof(err)) == -ENOENT,
		      "missing file: '%s'", err);
	}
}

/* ---- decoding ---- */

/*
 * Latent-like values, roughly normal with standard deviation 1 (Irwin-Hall:
 * four uniforms from a 64-bit LCG), two of them beyond the tanh clamp's knee.
 */
static float *random_latents(size_t n)
{
	static uint64_t state = 0x853c49e6748fea9bull;
	float *l = malloc(n * sizeof(float));

	for (size_t i = 0; l && i < n; i++) {
		double u = 0;
		for (int k = 0; k < 4; k++) {
			state = state * 6364136223846793005ull + 1;
			u += (double)(state >> 40) / 16777216.0;
		}
		l[i] = (float)((u - 2.0) * 1.7320508);
	}
	if (l && n > 2)
		l[0] = 9.0f, l[1] = -7.5f;
	return l;
}

static void sw_str(const int8_t *sw, char *s)
{
	for (int k = 0; k < 3; k++)
		s[k] = sw[k] < 0 ? '-' : (char)('0' + sw[k]);
	s[3] = 0;
}

/*
 * Run the numpy reference on weights wp, model cfg, latents lat [T][C][h][w];
 * ref receives its frames.  1 ok, 0 unavailable (skip), -1 failed.
 */
static int run_ref(const char *wp, const struct egr_taehv_cfg *cfg, const float *lat, uint32_t T, uint32_t C,
		   uint32_t h, uint32_t w, float *ref, size_t nref)
{
	char lp[300], op[300], cmd[1600], ts[4], ss[4];
	const char *srcdir = getenv("EGR_SRCDIR") ? getenv("EGR_SRCDIR") : ".";

	if (!numpy_ok)
		return 0;
	snprintf(lp, sizeof(lp), "%s/lat.f32", dir);
	snprintf(op, sizeof(op), "%s/ref.f32", dir);
	FILE *f = fopen(lp, "wb");
	fwrite(lat, sizeof(float), (size_t)T * C * h * w, f);
	fclose(f);
	unlink(op);
	sw_str(cfg->time_upscale, ts);
	sw_str(cfg->space_upscale, ss);
	snprintf(cmd, sizeof(cmd), "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 '%s/tests/ref/taehv_ref.py' '%s' %s '%s' %u %u %u %u '%s' %s %s",
		 srcdir, wp, egr_taehv_model_name(cfg->model), lp, T, C, h, w, op, ts, ss);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 127) {
		printf("note: numpy reference unavailable (%s), CPU-vs-numpy checks skipped\n", cmd);
		numpy_ok = 0;
		return 0;
	}
	CHECK(WEXITSTATUS(st) == 0, "%s exited %d", cmd, WEXITSTATUS(st));
	f = fopen(op, "rb");
	size_t got = f ? fread(ref, sizeof(float), nref + 1, f) : 0;
	if (f)
		fclose(f);
	CHECK(got == nref, "reference output has %zu floats, expected %zu", got, nref);
	return WEXITSTATUS(st) == 0 && got == nref ? 1 : -1;
}

/* per-frame relative L2 error of out against ref, and enough values inside (0, 1) */
static void compare(const char *what, const struct frames *out, const float *ref)
{
	double worst = 0;
	size_t inrange = 0;

	for (size_t fr = 0; fr < out->n; fr++) {
		double num = 0, den = 0;
		const float *a = out->v + fr * out->fsize, *r = ref + fr * out->fsize;
		for (size_t i = 0; i < out->fsize; i++) {
			double d = (double)a[i] - r[i];
			num += d * d;
			den += (double)r[i] * r[i];
			inrange += r[i] > 0.02f && r[i] < 0.98f;
		}
		double rel = sqrt(num / den);
		CHECK(rel <= 1e-4 && isfinite(rel), "%s frame %zu: rel err %.3e > 1e-4", what, fr, rel);
		worst = rel > worst ? rel : worst;
	}
	printf("taehv cpu vs numpy: %s: %zu frames of %ux%u, worst rel err %.2e\n", what, out->n, out->w, out->h, worst);
	CHECK(inrange > out->n * out->fsize / 2, "%s: only %zu outputs inside (0, 1): weights badly scaled", what,
	      inrange);
}

/*
 * Model cfg_load decoding T random latent frames of h x w with weights
 * written for cfg_file, against numpy; chunk 1 (the streaming extreme).
 */
static void check_vs_numpy(const char *wp, const struct egr_taehv_cfg *cfg, uint32_t T, uint32_t h, uint32_t w)
{
	char err[512], what[64];
	struct egr_taehv *net = NULL;
	struct frames out = { 0 };
	const uint32_t C = egr_taehv_model_channels(cfg->model);
	float *lat = random_latents((size_t)T * C * h * w), *ref = NULL;

	if (egr_taehv_load_cfg(wp, cfg, &net, err, sizeof(err)) < 0) {
		CHECK(0, "weights: %s", err);
		goto out;
	}
	snprintf(what, sizeof(what), "%s T=%u %ux%u%s", egr_taehv_model_name(cfg->model), T, w, h,
		 net->conv[EGR_TAEHV_CONV_TGROW(0)].file_cout > net->conv[EGR_TAEHV_CONV_TGROW(0)].cout ? " sliced TGrow" : "");
	if (decode(net, lat, T, h, w, 1, &out) < 0)
		goto out;
	CHECK(out.n == egr_taehv_out_frames(net, T), "%s: %zu frames, expected %llu", what, out.n,
	      (unsigned long long)egr_taehv_out_frames(net, T));
	uint32_t oh, ow;
	egr_taehv_out_size(net, h, w, &oh, &ow);
	CHECK(out.h == oh && out.w == ow, "%s: frames %ux%u", what, out.w, out.h);
	ref = malloc((out.n * out.fsize + 1) * sizeof(float));
	if (run_ref(wp, cfg, lat, T, C, h, w, ref, out.n * out.fsize) > 0)
		compare(what, &out, ref);
out:
	egr_taehv_free(net);
	free(out.v);
	free(lat);
	free(ref);
}

static void test_vs_numpy(void)
{
	struct egr_taehv_cfg cfg;

	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN21);
	check_vs_numpy(model_weights(EGR_TAEHV_WAN21), &cfg, 3, 3, 5);
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN22);
	check_vs_numpy(model_weights(EGR_TAEHV_WAN22), &cfg, 2, 2, 3);
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_LTX2);
	check_vs_numpy(model_weights(EGR_TAEHV_LTX2), &cfg, 2, 1, 2);
	/* a stride-2 first TGrow in the file, used at hunyuan's stride 1 (patch_tgrow_layers) */
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_HUNYUAN);
	check_vs_numpy(model_weights(EGR_TAEHV_NMODELS), &cfg, 2, 2, 2);
	/* cogvideox, even T: nothing trimmed */
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_COGVIDEOX);
	check_vs_numpy(model_weights(EGR_TAEHV_COGVIDEOX), &cfg, 2, 1, 2);
	/* a cheap preview: no time upscaling, one spatial upscale off (TGrows sliced to their last rows) */
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_HUNYUAN15);
	cfg.time_upscale[1] = cfg.time_upscale[2] = 0;
	cfg.space_upscale[1] = 0;
	check_vs_numpy(model_weights(EGR_TAEHV_HUNYUAN15), &cfg, 3, 2, 2);
}

/* chunks of 1, 3 and all give the same frames, bit for bit; stream contract errors */
static void test_chunks(void)
{
	char err[512];
	struct egr_taehv *net = NULL;
	struct frames f1 = { 0 }, f3 = { 0 }, fall = { 0 };
	const uint32_t T = 5, h = 2, w = 3, C = 16;
	float *lat = random_latents((size_t)T * C * h * w);

	if (egr_taehv_load(model_weights(EGR_TAEHV_WAN21), EGR_TAEHV_WAN21, &net, err, sizeof(err)) < 0) {
		CHECK(0, "%s", err);
		goto out;
	}
	decode(net, lat, T, h, w, 1, &f1);
	decode(net, lat, T, h, w, 3, &f3);
	decode(net, lat, T, h, w, T, &fall);
	CHECK(fall.n == 17 && f1.n == fall.n && f3.n == fall.n, "frames %zu %zu %zu, expected 17", f1.n, f3.n, fall.n);
	if (f1.n == fall.n && f3.n == fall.n) {
		CHECK(!memcmp(f1.v, fall.v, fall.n * fall.fsize * sizeof(float)), "chunks of 1 differ from one chunk");
		CHECK(!memcmp(f3.v, fall.v, fall.n * fall.fsize * sizeof(float)), "chunks of 3 differ from one chunk");
	}
	/* RGB24 of a frame: the TAESD path's quantiser */
	uint8_t *rgb = malloc(fall.fsize);
	egr_taesd_to_rgb24(fall.v, fall.h, fall.w, rgb);
	CHECK(rgb[0] == egr_taesd_quant_u8(fall.v[0]) && rgb[2] == egr_taesd_quant_u8(fall.v[2 * fall.h * fall.w]),
	      "rgb24");
	free(rgb);

	struct egr_taehv_stream *s = NULL;
	struct frames junk = { .fail_at = -1 };
	uint32_t got = 99;
	CHECK(egr_taehv_stream_create(net, 0, 3, 0, &s, err, sizeof(err)) == -EINVAL && !s, "0-high latent");
	CHECK(egr_taehv_stream_create(net, h, w, 2, &s, err, sizeof(err)) == 0, "%s", err);
	CHECK(egr_taehv_stream_feed(s, lat, 3, collect, &junk, &got, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "the job has 2") && got == 0,
	      "overfeed: '%s'", err);
	CHECK(egr_taehv_stream_feed(s, lat, 1, collect, &junk, &got, err, sizeof(err)) == -EINVAL, "fed after error");
	egr_taehv_stream_free(s);
	free(junk.v);
	memset(&junk, 0, sizeof(junk));
	junk.fail_at = -1;
	egr_taehv_stream_create(net, h, w, 2, &s, err, sizeof(err));
	CHECK(egr_taehv_stream_feed(s, lat, 1, collect, &junk, &got, err, sizeof(err)) == 0 && got == 1, "first latent");
	CHECK(egr_taehv_stream_flush(s, collect, &junk, &got, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "after 1 of 2"),
	      "early flush: '%s'", err);
	egr_taehv_stream_free(s);
	free(junk.v);
	memset(&junk, 0, sizeof(junk));
	junk.fail_at = 2;
	egr_taehv_stream_create(net, h, w, 0, &s, err, sizeof(err));
	CHECK(egr_taehv_stream_feed(s, lat, 2, collect, &junk, &got, err, sizeof(err)) == -EIO && got == 2 &&
		      strstr(err, "frame 2"),
	      "callback failure: '%s' (%u)", err, got);
	egr_taehv_stream_free(s);
	free(junk.v);
out:
	egr_taehv_free(net);
	free(f1.v);
	free(f3.v);
	free(fall.v);
	free(lat);
}

/* cogvideox needs the frame count: its trim depends on the parity */
static void test_cogvideox(void)
{
	char err[512];
	struct egr_taehv *net = NULL;
	struct egr_taehv_stream *s = NULL;
	float *lat = random_latents(16 * 5);
	struct frames f = { 0 };

	if (egr_taehv_load(model_weights(EGR_TAEHV_COGVIDEOX), EGR_TAEHV_COGVIDEOX, &net, err, sizeof(err)) < 0) {
		CHECK(0, "%s", err);
		goto out;
	}
	CHECK(egr_taehv_stream_create(net, 1, 1, 0, &s, err, sizeof(err)) == -EINVAL && strstr(err, "frame count"),
	      "cogvideox without a count: '%s'", err);
	decode(net, lat, 4, 1, 1, 3, &f);
	CHECK(f.n == 16, "cogvideox 4 latent frames: %zu, expected 16 (no trim)", f.n);
	free(f.v);
	decode(net, lat, 5, 1, 1, 2, &f);
	CHECK(f.n == 17, "cogvideox 5 latent frames: %zu, expected 17", f.n);
out:
	free(f.v);
	free(lat);
	egr_taehv_free(net);
}

/* ---- the real Wan 2.1 latents ---- */

/* float32 C-order .npy of the given 5-D shape, read directly; NULL if absent or different */
static float *read_npy5(const char *path, const uint64_t *shape)
{
	FILE *f = fopen(path, "rb");
	unsigned char pre[10];
	char hdr[1024], want[160];
	float *v = NULL;
	size_t n = 1;

	if (!f)
		return NULL;
	if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY\x01\x00", 8))
		goto out;
	size_t hl = pre[8] | (size_t)pre[9] << 8;
	if (hl >= sizeof(hdr) || fread(hdr, 1, hl, f) != hl)
		goto out;
	hdr[hl] = 0;
	snprintf(want, sizeof(want), "'shape': (%llu, %llu, %llu, %llu, %llu)", (unsigned long long)shape[0],
		 (unsigned long long)shape[1], (unsigned long long)shape[2], (unsigned long long)shape[3],
		 (unsigned long long)shape[4]);
	CHECK(strstr(hdr, "'descr': '<f4'") && strstr(hdr, "'fortran_order': False") && strstr(hdr, want),
	      "%s: header %s", path, hdr);
	if (!strstr(hdr, want))
		goto out;
	for (int i = 0; i < 5; i++)
		n *= shape[i];
	v = malloc(n * sizeof(float));
	if (v && fread(v, sizeof(float), n, f) != n) {
		CHECK(0, "%s: short read", path);
		free(v);
		v = NULL;
	}
out:
	fclose(f);
	return v;
}

/* 1: ran, 0: data absent */
static int test_real_wan21(void)
{
	static const uint64_t shape[5] = { 1, 16, 16, 40, 64 };
	const uint32_t C = 16, T = 16, H = 40, W = 64, ch = 4, cw = 4, y0 = 18, x0 = 30;
	char path[600], err[512];
	const char *shared = getenv("EGR_SHARED_DIR");
	struct egr_taehv *net = NULL;
	struct frames out = { 0 };
	float *lat = NULL, *crop = NULL, *ref = NULL;

	if (shared)
		snprintf(path, sizeof(path), "%s/data/wan21/cheesecake_latents_bcthw_f32.npy", shared);
	else
		snprintf(path, sizeof(path), "%s/../shared/data/wan21/cheesecake_latents_bcthw_f32.npy",
			 getenv("EGR_SRCDIR") ? getenv("EGR_SRCDIR") : ".");
	if (!(lat = read_npy5(path, shape))) {
		printf("note: %s absent, the real Wan 2.1 check is skipped\n", path);
		return 0;
	}
	/* bcthw -> [t][c][crop h][crop w], the decoder's order */
	crop = malloc((size_t)T * C * ch * cw * sizeof(float));
	for (uint32_t t = 0; t < T; t++)
		for (uint32_t c = 0; c < C; c++)
			for (uint32_t y = 0; y < ch; y++)
				for (uint32_t x = 0; x < cw; x++)
					crop[((t * C + c) * ch + y) * cw + x] =
						lat[(((size_t)c * T + t) * H + y0 + y) * W + x0 + x];
	struct egr_taehv_cfg cfg;
	egr_taehv_cfg_init(&cfg, EGR_TAEHV_WAN21);
	const char *wp = model_weights(EGR_TAEHV_WAN21);
	if (egr_taehv_load(wp, EGR_TAEHV_WAN21, &net, err, sizeof(err)) < 0) {
		CHECK(0, "%s", err);
		goto out;
	}
	decode(net, crop, T, ch, cw, 5, &out);
	CHECK(out.n == 61 && out.w == 8 * cw && out.h == 8 * ch, "real Wan 2.1 latents: %zu frames of %ux%u, expected 61",
	      out.n, out.w, out.h);
	ref = malloc((out.n * out.fsize + 1) * sizeof(float));
	if (out.n == 61 && run_ref(wp, &cfg, crop, T, C, ch, cw, ref, out.n * out.fsize) > 0)
		compare("real wan21 crop", &out, ref);
out:
	egr_taehv_free(net);
	free(out.v);
	free(lat);
	free(crop);
	free(ref);
	return 1;
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_taehv.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	if (access("/usr/bin/python3", X_OK) != 0 && system("command -v python3 >/dev/null 2>&1") != 0)
		numpy_ok = 0;
	test_models();
	test_frame_counts();
	test_names();
	test_generate_load();
	test_bad_weights();
	test_chunks();
	test_cogvideox();
	test_vs_numpy();
	int real = test_real_wan21();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("note: could not remove %s\n", dir);
	if (failures) {
		printf("test_taehv: %d check(s) failed\n", failures);
		return 1;
	}
	if (!real) {
		printf("test_taehv: other checks passed; real Wan 2.1 latents absent (shared/ not beside the repo)\n");
		return 77;
	}
	return 0;
}
