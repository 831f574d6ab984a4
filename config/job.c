/*
 * job: parses a job file (see job.h) into a struct egr_jobspec.  Everything a
 * person can get wrong in the file is caught here, with the file, the line
 * and the key, before the job touches the latents or the output.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "config/conf.h"
#include "config/job.h"
#include "config/l2r_preset.h"
#include "daemon/decode/taehv.h"

#define FPS_MAX 1000000u
#define CHUNK_FRAMES_MAX 1024u
#define GOP_MAX 100000u
#define THREADS_MAX 64u
#define BITRATE_MIN 1000u
#define BITRATE_MAX 10000000000ull

enum job_key {
	JK_LATENTS,
	JK_OUTPUT,
	JK_FORMAT,
	JK_DECODER,
	JK_WEIGHTS,
	JK_FPS,
	JK_CHUNK_FRAMES,
	JK_L2R_WEIGHTS,
	JK_L2R_BIAS,
	JK_L2R_PRESET,
	JK_LAYOUT,
	JK_LATENTS_KEY,
	JK_OVERWRITE,
	JK_CODEC,
	JK_CRF,
	JK_BITRATE,
	JK_PRESET,
	JK_GOP,
	JK_PIX_FMT,
	JK_THREADS,
	JK_TAEHV_MODEL,
	JK_WAN_DENORMALIZE,
	JK_VAE_CONFIG,
	JK_COUNT
};

static const char *const job_keys[JK_COUNT] = {
	[JK_LATENTS] = "latents",	  [JK_OUTPUT] = "output",	    [JK_FORMAT] = "format",
	[JK_DECODER] = "decoder",	  [JK_WEIGHTS] = "weights",	    [JK_FPS] = "fps",
	[JK_CHUNK_FRAMES] = "chunk_frames", [JK_L2R_WEIGHTS] = "l2r_weights", [JK_L2R_BIAS] = "l2r_bias",
	[JK_L2R_PRESET] = "l2r_preset",	  [JK_LAYOUT] = "layout",	    [JK_LATENTS_KEY] = "latents_key",
	[JK_OVERWRITE] = "overwrite",
	[JK_CODEC] = "codec",		  [JK_CRF] = "crf",		    [JK_BITRATE] = "bitrate",
	[JK_PRESET] = "preset",		  [JK_GOP] = "gop",		    [JK_PIX_FMT] = "pix_fmt",
	[JK_THREADS] = "threads",
	[JK_TAEHV_MODEL] = "taehv_model", [JK_WAN_DENORMALIZE] = "wan_denormalize", [JK_VAE_CONFIG] = "vae_config",
};

#define SEEN(k) (1u << (k))

struct job_ctx {
	struct egr_jobspec *js;
	unsigned seen;		/* SEEN(k) per enum job_key */
};

/* the values of the keys that take one of a few words */
struct choice {
	const char *name;
	uint32_t value;
};

static const struct choice formats[] = { { "y4m", EGR_FMT_Y4M }, { "png", EGR_FMT_PNG }, { "mp4", EGR_FMT_MP4 },
					 { "mkv", EGR_FMT_MKV }, { "null", EGR_FMT_NULL }, { NULL, 0 } };
static const struct choice decoders[] = { { "latent2rgb", EGR_DEC_LATENT2RGB }, { "taesd", EGR_DEC_TAESD },
					  { "taehv", EGR_DEC_TAEHV },	      { "wan_vae", EGR_DEC_WAN_VAE },
					  { NULL, 0 } };
static const struct choice layouts[] = { { "tchw", EGR_LAYOUT_TCHW }, { "bcthw", EGR_LAYOUT_BCTHW },
					 { "btchw", EGR_LAYOUT_BTCHW }, { NULL, 0 } };
static const struct choice codecs[] = { { "h264", EGR_CODEC_H264 }, { "hevc", EGR_CODEC_HEVC }, { "av1", EGR_CODEC_AV1 },
					{ "ffv1", EGR_CODEC_FFV1 }, { NULL, 0 } };
/* the frames are 8-bit I420: 10-bit or 4:4:4 output would only pad them */
static const struct choice pix_fmts[] = { { "yuv420p", EGR_PIX_YUV420P }, { NULL, 0 } };

static const char *choice_name(const struct choice *c, uint32_t value)
{
	for (; c->name; c++)
		if (c->value == value)
			return c->name;
	return "?";
}

const char *egr_job_format_name(uint32_t fmt)
{
	return choice_name(formats, fmt);
}

const char *egr_job_decoder_name(uint32_t dec)
{
	return choice_name(decoders, dec);
}

const char *egr_job_layout_name(uint32_t layout)
{
	return layout == EGR_LAYOUT_AUTO ? "auto" : choice_name(layouts, layout);
}

const char *egr_job_codec_name(uint32_t codec)
{
	return choice_name(codecs, codec);
}

int egr_job_is_video(uint32_t format)
{
	return format == EGR_FMT_MP4 || format == EGR_FMT_MKV;
}

static int set_choice(uint32_t *dst, const struct choice *choices, const char *key, const char *v, char *err,
		      size_t errlen)
{
	const struct choice *c;
	char list[128] = "";

	for (c = choices; c->name; c++) {
		if (!strcmp(c->name, v)) {
			*dst = c->value;
			return 1;
		}
	}
	for (c = choices; c->name; c++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", c == choices ? "" : ", ", c->name);
	egr_errf(err, errlen, "[job] %s: '%s' is not one of: %s", key, v, list);
	return 0;
}

static int set_path(char *dst, const char *key, const char *v, char *err, size_t errlen)
{
	if (v[0] != '/') {
		egr_errf(err, errlen, "[job] %s: '%s' is not an absolute path", key, v);
		return 0;
	}
	if (strlen(v) >= EGR_PATH_MAX) {
		egr_errf(err, errlen, "[job] %s: path is %zu bytes long; the limit is %d", key, strlen(v),
			 EGR_PATH_MAX - 1);
		return 0;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 1;
}

/* "no" -> 0, "yes" -> 1 */
static int set_yes_no(uint32_t *dst, const char *key, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "no") && strcmp(v, "yes")) {
		egr_errf(err, errlen, "[job] %s: '%s' is not one of: no, yes", key, v);
		return 0;
	}
	*dst = !strcmp(v, "yes");
	return 1;
}

/* "n" in lo..hi, decimal digits only */
static int parse_u32_range(const char *s, size_t len, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char buf[24];
	uint64_t v;
	int r;

	if (len == 0 || strspn(s, "0123456789") < len)
		return -EINVAL;
	if (len >= sizeof(buf))
		return -ERANGE;
	memcpy(buf, s, len);
	buf[len] = '\0';
	r = egr_conf_parse_u64(buf, &v);
	if (r < 0)
		return r;
	if (v < lo || v > hi)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/*
 * A comma-separated list of finite floats, blanks allowed around the commas.
 * Only the characters of decimal numbers are let through to strtof, so "nan",
 * "inf" and hex floats are errors, as is an empty item ("1,,2").
 */
static int parse_floats(const char *key, const char *v, float *out, unsigned max, unsigned *n, char *err,
			size_t errlen)
{
	const char *p = v;
	unsigned count = 0;

	for (;;) {
		char item[64], *end;
		size_t len;
		float f;

		while (*p == ' ' || *p == '\t')
			p++;
		len = strcspn(p, ",");
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 || len >= sizeof(item) || strspn(p, "0123456789+-.eE") < len) {
			egr_errf(err, errlen, "[job] %s: value %u ('%.*s') is not a number", key, count + 1,
				 (int)(len < 40 ? len : 40), p);
			return 0;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		f = strtof(item, &end);	/* underflow to 0 or a subnormal is fine */
		if (*end || !isfinite(f)) {
			egr_errf(err, errlen, "[job] %s: value %u ('%s') is not a finite float", key, count + 1, item);
			return 0;
		}
		if (count == max) {
			egr_errf(err, errlen, "[job] %s: more than %u values", key, max);
			return 0;
		}
		out[count++] = f;
		p += strcspn(p, ",");
		if (!*p)
			break;
		p++;	/* the comma */
	}
	*n = count;
	return 1;
}

static int set_fps(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	const char *slash = strchr(v, '/');
	int r;

	if (slash) {
		r = parse_u32_range(v, (size_t)(slash - v), 1, FPS_MAX, &js->fps_num);
		if (r == 0)
			r = parse_u32_range(slash + 1, strlen(slash + 1), 1, FPS_MAX, &js->fps_den);
	} else {
		js->fps_den = 1;
		r = parse_u32_range(v, strlen(v), 1, FPS_MAX, &js->fps_num);
	}
	if (r == -EINVAL) {
		egr_errf(err, errlen, "[job] %s: '%s' is not a frame rate (an integer, or a ratio like 30000/1001)", key,
			 v);
		return 0;
	}
	if (r < 0) {
		egr_errf(err, errlen, "[job] %s: '%s' is out of range (each number 1..%u)", key, v, FPS_MAX);
		return 0;
	}
	return 1;
}

/* an integer key in lo..hi (chunk_frames, gop, threads) */
static int set_u32(uint32_t *dst, uint32_t lo, uint32_t hi, const char *key, const char *v, char *err,
		   size_t errlen)
{
	int r = parse_u32_range(v, strlen(v), lo, hi, dst);

	if (r == -EINVAL) {
		egr_errf(err, errlen, "[job] %s: '%s' is not a number", key, v);
		return 0;
	}
	if (r < 0) {
		egr_errf(err, errlen, "[job] %s: %s is out of range (%u..%u)", key, v, lo, hi);
		return 0;
	}
	return 1;
}

/* bits per second: digits with an optional k, M or G (powers of 1000, as bitrates go) */
static int set_bitrate(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	size_t len = strspn(v, "0123456789");
	uint64_t mul = 1, n = 0;
	uint32_t part;

	if (len && v[len] && !v[len + 1])
		mul = v[len] == 'k' ? 1000 : v[len] == 'M' ? 1000000 : v[len] == 'G' ? 1000000000 : 0;
	if (!len || (v[len] && (!mul || v[len + 1])) || len > 9 || parse_u32_range(v, len, 1, 999999999, &part)) {
		egr_errf(err, errlen, "[job] %s: '%s' is not a bit rate (bits/s: 4000000, 4000k or 4M)", key, v);
		return 0;
	}
	n = part * mul;
	if (n < BITRATE_MIN || n > BITRATE_MAX) {
		egr_errf(err, errlen, "[job] %s: %s is out of range (%u..%llu bits/s)", key, v, BITRATE_MIN,
			 (unsigned long long)BITRATE_MAX);
		return 0;
	}
	js->bitrate = n;
	return 1;
}

static int set_crf(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	unsigned n;

	if (!parse_floats(key, v, &js->crf, 1, &n, err, errlen))
		return 0;
	if (js->crf < 0 || js->crf > 63) {
		egr_errf(err, errlen, "[job] %s: %s is out of range (0..63; the codec's own range is checked too)", key,
			 v);
		return 0;
	}
	return 1;
}

static int set_preset(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	size_t len = strlen(v);

	if (len >= sizeof(js->preset) || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789") < len) {
		egr_errf(err, errlen, "[job] %s: '%s' is not a preset name", key, v);
		return 0;
	}
	memcpy(js->preset, v, len + 1);
	return 1;
}

static int set_l2r_weights(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	unsigned n;

	if (!parse_floats(key, v, js->l2r_weights, EGR_L2R_MAX_CHANNELS * 3, &n, err, errlen))
		return 0;
	if (n % 3) {
		egr_errf(err, errlen, "[job] %s: %u values; it needs 3 (r, g, b) per latent channel", key, n);
		return 0;
	}
	js->l2r_nweights = n;
	return 1;
}

static int set_l2r_bias(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	unsigned n;

	if (!parse_floats(key, v, js->l2r_bias, 3, &n, err, errlen))
		return 0;
	if (n != 3) {
		egr_errf(err, errlen, "[job] %s: %u values; it needs 3 (r, g, b)", key, n);
		return 0;
	}
	js->l2r_has_bias = 1;
	return 1;
}

static int set_l2r_preset(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	char names[256];

	js->l2r_preset = egr_l2r_preset_id(v);
	if (js->l2r_preset)
		return 1;
	egr_l2r_preset_names(names, sizeof(names));
	egr_errf(err, errlen, "[job] %s: '%s' is not one of: %s", key, v, names);
	return 0;
}

static int set_taehv_model(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	char list[128] = "";

	if (egr_taehv_model_parse(v, &js->taehv_model) == 0)
		return 1;
	for (uint32_t m = 0; m < EGR_TAEHV_NMODELS; m++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", m ? ", " : "",
			 egr_taehv_model_name(m));
	egr_errf(err, errlen, "[job] %s: '%s' is not one of: %s", key, v, list);
	return 0;
}

static int set_latents_key(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	size_t len = strlen(v);

	if (len >= sizeof(js->latents_key)) {
		egr_errf(err, errlen, "[job] %s: name is %zu bytes long; the limit is %zu", key, len,
			 sizeof(js->latents_key) - 1);
		return 0;
	}
	memcpy(js->latents_key, v, len + 1);
	return 1;
}

/*
 * Phase 1 of a key = value line: the section, the key's name, a duplicate,
 * an empty value.  Returns the key, or -1 with err set.
 */
static int job_key_claim(struct job_ctx *x, const char *section, const char *name, const char *value, char *err,
			 size_t errlen)
{
	unsigned k;

	if (strcmp(section, "job")) {
		if (*section)
			egr_errf(err, errlen, "unknown section [%s] (key '%s'); a job file has one section, [job]",
				 section, name);
		else
			egr_errf(err, errlen, "key '%s' is outside [job]", name);
		return -1;
	}
	for (k = 0; k < JK_COUNT && strcmp(job_keys[k], name); k++)
		;
	if (k == JK_COUNT) {
		egr_errf(err, errlen, "unknown key '%s' in [job]", name);
		return -1;
	}
	if (x->seen & SEEN(k)) {
		egr_errf(err, errlen, "duplicate key '%s' in [job]", name);
		return -1;
	}
	x->seen |= SEEN(k);
	if (!*value) {
		egr_errf(err, errlen, "[job] %s: empty value", name);
		return -1;
	}
	return (int)k;
}

/* Phase 2: parse and store the value.  1, or 0 with err set. */
static int job_set(struct egr_jobspec *js, enum job_key k, const char *name, const char *value, char *err,
		   size_t errlen)
{
	switch (k) {
	case JK_LATENTS:
		return set_path(js->latents, name, value, err, errlen);
	case JK_OUTPUT:
		return set_path(js->output, name, value, err, errlen);
	case JK_WEIGHTS:
		return set_path(js->weights, name, value, err, errlen);
	case JK_FORMAT:
		return set_choice(&js->format, formats, name, value, err, errlen);
	case JK_DECODER:
		return set_choice(&js->decoder, decoders, name, value, err, errlen);
	case JK_LAYOUT:
		return set_choice(&js->layout, layouts, name, value, err, errlen);
	case JK_FPS:
		return set_fps(js, name, value, err, errlen);
	case JK_CHUNK_FRAMES:
		return set_u32(&js->chunk_frames, 1, CHUNK_FRAMES_MAX, name, value, err, errlen);
	case JK_GOP:
		return set_u32(&js->gop, 1, GOP_MAX, name, value, err, errlen);
	case JK_THREADS:
		return set_u32(&js->threads, 1, THREADS_MAX, name, value, err, errlen);
	case JK_CODEC:
		return set_choice(&js->codec, codecs, name, value, err, errlen);
	case JK_PIX_FMT:
		return set_choice(&js->pix_fmt, pix_fmts, name, value, err, errlen);
	case JK_CRF:
		return set_crf(js, name, value, err, errlen);
	case JK_BITRATE:
		return set_bitrate(js, name, value, err, errlen);
	case JK_PRESET:
		return set_preset(js, name, value, err, errlen);
	case JK_L2R_WEIGHTS:
		return set_l2r_weights(js, name, value, err, errlen);
	case JK_L2R_BIAS:
		return set_l2r_bias(js, name, value, err, errlen);
	case JK_L2R_PRESET:
		return set_l2r_preset(js, name, value, err, errlen);
	case JK_LATENTS_KEY:
		return set_latents_key(js, name, value, err, errlen);
	case JK_OVERWRITE:
		return set_yes_no(&js->overwrite, name, value, err, errlen);
	case JK_TAEHV_MODEL:
		return set_taehv_model(js, name, value, err, errlen);
	case JK_WAN_DENORMALIZE:
		return set_yes_no(&js->wan_denormalize, name, value, err, errlen);
	case JK_VAE_CONFIG:
		return set_path(js->vae_config, name, value, err, errlen);
	case JK_COUNT:
		break;
	}
	return 0;
}

static int job_handler(void *user, const char *section, const char *name, const char *value, char *err,
		       size_t errlen)
{
	struct job_ctx *x = user;
	int k = job_key_claim(x, section, name, value, err, errlen);

	return k >= 0 && job_set(x->js, (enum job_key)k, name, value, err, errlen);
}

#define DEC(d) (1u << (d))
#define DEC_WEIGHTS (DEC(EGR_DEC_TAESD) | DEC(EGR_DEC_TAEHV) | DEC(EGR_DEC_WAN_VAE))

/* Keys that only some decoders read: given to another decoder, they are a mistake. */
static const struct {
	enum job_key key;
	unsigned decoders;	/* DEC() mask */
	const char *which;	/* for the message */
} decoder_keys[] = {
	{ JK_WEIGHTS, DEC_WEIGHTS, "taesd, taehv and wan_vae" },
	{ JK_L2R_WEIGHTS, DEC(EGR_DEC_LATENT2RGB), "latent2rgb" },
	{ JK_L2R_BIAS, DEC(EGR_DEC_LATENT2RGB), "latent2rgb" },
	{ JK_L2R_PRESET, DEC(EGR_DEC_LATENT2RGB), "latent2rgb" },
	{ JK_TAEHV_MODEL, DEC(EGR_DEC_TAEHV), "taehv" },
	{ JK_WAN_DENORMALIZE, DEC(EGR_DEC_WAN_VAE), "wan_vae" },
	{ JK_VAE_CONFIG, DEC(EGR_DEC_WAN_VAE), "wan_vae" },
};

/* What each decoder cannot go without (weights: what to name in the message). */
static int decoder_needs(const char *path, const struct egr_jobspec *js, unsigned seen, char *err, size_t errlen)
{
	static const char *const weights_hint[] = {
		[EGR_DEC_TAESD] = "/path/to/taesd_decoder.safetensors",
		[EGR_DEC_TAEHV] = "/path/to/taew2_1.safetensors (the TAEHV file of taehv_model)",
		[EGR_DEC_WAN_VAE] = "/path/to/vae/diffusion_pytorch_model.safetensors",
	};
	const char *dec = egr_job_decoder_name(js->decoder);

	if ((DEC(js->decoder) & DEC_WEIGHTS) && !(seen & SEEN(JK_WEIGHTS))) {
		egr_errf(err, errlen, "%s: [job] decoder = %s needs weights = %s", path, dec,
			 weights_hint[js->decoder]);
		return -EINVAL;
	}
	if (js->decoder == EGR_DEC_TAEHV && !(seen & SEEN(JK_TAEHV_MODEL))) {
		egr_errf(err, errlen, "%s: [job] decoder = taehv needs taehv_model = wan21, wan22, hunyuan, hunyuan15, ltx2, cogvideox or opensora (the model the latents come from)",
			 path);
		return -EINVAL;
	}
	if ((seen & SEEN(JK_VAE_CONFIG)) && !js->wan_denormalize) {
		egr_errf(err, errlen, "%s: [job] vae_config gives the latents_mean / latents_std of wan_denormalize = yes (wan_denormalize is no)",
			 path);
		return -EINVAL;
	}
	return 0;
}

/*
 * Per codec: the crf range and the presets its encoder takes (libx264 and
 * libx265 share x264's names; SVT-AV1's are numbers), and the defaults,
 * which are the encoders' own.
 */
static const struct codec_rule {
	uint32_t codec;
	float crf_lo, crf_hi, crf_def;	/* crf_hi 0: no crf (lossless) */
	uint32_t preset_hi;	/* numeric presets 0..preset_hi; 0: named presets */
	const char *preset_def;
} codec_rules[] = {
	{ EGR_CODEC_H264, 0, 51, 23, 0, "medium" },
	{ EGR_CODEC_HEVC, 0, 51, 28, 0, "medium" },
	{ EGR_CODEC_AV1, 1, 63, 35, 13, "10" },
	{ EGR_CODEC_FFV1, 0, 0, 0, 0, "" },
};

static const char *const x26x_presets[] = { "ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
					     "slow", "slower", "veryslow", "placebo", NULL };

static int preset_ok(const struct codec_rule *cr, const char *p)
{
	uint32_t n;

	if (cr->preset_hi)
		return parse_u32_range(p, strlen(p), 0, cr->preset_hi, &n) == 0;
	for (const char *const *q = x26x_presets; *q; q++)
		if (!strcmp(*q, p))
			return 1;
	return 0;
}

/* Keys of the video formats: where they apply, their ranges per codec; the defaults. */
static int video_check(const char *path, struct egr_jobspec *js, unsigned seen, char *err, size_t errlen)
{
	static const enum job_key video_only[] = { JK_CODEC, JK_CRF, JK_BITRATE, JK_PRESET, JK_GOP, JK_PIX_FMT,
						   JK_THREADS };
	const char *cname;
	const struct codec_rule *cr;

	if (!egr_job_is_video(js->format)) {
		for (size_t i = 0; i < sizeof(video_only) / sizeof(video_only[0]); i++) {
			if (seen & SEEN(video_only[i])) {
				egr_errf(err, errlen, "%s: [job] %s applies to format = mp4 or mkv only (format is %s)",
					 path, job_keys[video_only[i]], egr_job_format_name(js->format));
				return -EINVAL;
			}
		}
		return 0;
	}
	if (!js->codec)
		js->codec = EGR_CODEC_H264;
	cname = egr_job_codec_name(js->codec);
	cr = &codec_rules[js->codec - 1];
	if (js->codec == EGR_CODEC_FFV1 && js->format == EGR_FMT_MP4) {
		egr_errf(err, errlen, "%s: [job] codec = ffv1 needs format = mkv (MP4 cannot carry FFV1)", path);
		return -EINVAL;
	}
	if (!cr->crf_hi && (seen & (SEEN(JK_CRF) | SEEN(JK_BITRATE) | SEEN(JK_PRESET)))) {
		egr_errf(err, errlen, "%s: [job] %s does not apply to codec = %s (lossless)", path,
			 seen & SEEN(JK_CRF) ? "crf" : seen & SEEN(JK_BITRATE) ? "bitrate" : "preset", cname);
		return -EINVAL;
	}
	if ((seen & SEEN(JK_CRF)) && (seen & SEEN(JK_BITRATE))) {
		egr_errf(err, errlen, "%s: [job] crf and bitrate are two rate controls: give one", path);
		return -EINVAL;
	}
	if ((seen & SEEN(JK_CRF)) && (js->crf < cr->crf_lo || js->crf > cr->crf_hi)) {
		egr_errf(err, errlen, "%s: [job] crf = %g is out of range for codec = %s (%g..%g)", path, js->crf,
			 cname, cr->crf_lo, cr->crf_hi);
		return -EINVAL;
	}
	if ((seen & SEEN(JK_PRESET)) && !preset_ok(cr, js->preset)) {
		egr_errf(err, errlen, "%s: [job] preset = %s is not one of codec = %s's: %s", path, js->preset, cname,
			 cr->preset_hi ? "0 (slowest) .. 13 (fastest)" : "ultrafast, superfast, veryfast, faster, fast, "
			 "medium, slow, slower, veryslow, placebo");
		return -EINVAL;
	}
	if (!(seen & (SEEN(JK_CRF) | SEEN(JK_BITRATE))))
		js->crf = cr->crf_def;
	if (!(seen & SEEN(JK_PRESET)))
		snprintf(js->preset, sizeof(js->preset), "%s", cr->preset_def);
	if (!js->gop) {	/* 2 s, rounded, 1..GOP_MAX frames */
		uint64_t g = (2ull * js->fps_num + js->fps_den / 2) / js->fps_den;
		js->gop = g < 1 ? 1 : g > GOP_MAX ? GOP_MAX : (uint32_t)g;
	}
	if (!js->threads)
		js->threads = 1;
	if (!js->pix_fmt)
		js->pix_fmt = EGR_PIX_YUV420P;
	return 0;
}

/*
 * Checks across keys, once the whole file is read: the required keys, and
 * keys that belong to another decoder or contradict each other, which are
 * mistakes, not things to ignore.  0 or -EINVAL with err naming the file.
 */
static int job_check(const char *path, struct egr_jobspec *js, unsigned seen, char *err, size_t errlen)
{
	static const enum job_key required[] = { JK_LATENTS, JK_OUTPUT, JK_FORMAT };
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		/* format = null writes nothing: an output, if given, is ignored */
		if (required[i] == JK_OUTPUT && js->format == EGR_FMT_NULL)
			continue;
		if (!(seen & SEEN(required[i]))) {
			egr_errf(err, errlen, "%s: missing key '%s' in [job]", path, job_keys[required[i]]);
			return -EINVAL;
		}
	}
	for (i = 0; i < sizeof(decoder_keys) / sizeof(decoder_keys[0]); i++) {
		if ((seen & SEEN(decoder_keys[i].key)) && !(decoder_keys[i].decoders & DEC(js->decoder))) {
			egr_errf(err, errlen, "%s: [job] %s applies to decoder = %s only (decoder is %s)", path,
				 job_keys[decoder_keys[i].key], decoder_keys[i].which,
				 egr_job_decoder_name(js->decoder));
			return -EINVAL;
		}
	}
	if (decoder_needs(path, js, seen, err, errlen))
		return -EINVAL;
	if ((seen & SEEN(JK_L2R_PRESET)) && (seen & (SEEN(JK_L2R_WEIGHTS) | SEEN(JK_L2R_BIAS)))) {
		egr_errf(err, errlen, "%s: [job] l2r_preset sets the coefficients: give l2r_preset or %s, not both", path,
			 seen & SEEN(JK_L2R_WEIGHTS) ? "l2r_weights" : "l2r_bias");
		return -EINVAL;
	}
	return video_check(path, js, seen, err, errlen);
}

int egr_job_parse(const char *path, struct egr_jobspec *js, char *err, size_t errlen)
{
	struct job_ctx x = { .js = js };
	int ret;

	memset(js, 0, sizeof(*js));
	js->decoder = EGR_DEC_LATENT2RGB;
	js->fps_num = 24;
	js->fps_den = 1;
	js->chunk_frames = 8;
	js->layout = EGR_LAYOUT_AUTO;

	ret = egr_conf_ini_parse(path, job_handler, &x, err, errlen);
	if (ret < 0)
		return ret;
	return job_check(path, js, x.seen, err, errlen);
}
