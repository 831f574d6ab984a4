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

#define FPS_MAX 1000000u
#define CHUNK_FRAMES_MAX 1024u

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
	JK_COUNT
};

static const char *const job_keys[JK_COUNT] = {
	[JK_LATENTS] = "latents",	  [JK_OUTPUT] = "output",	    [JK_FORMAT] = "format",
	[JK_DECODER] = "decoder",	  [JK_WEIGHTS] = "weights",	    [JK_FPS] = "fps",
	[JK_CHUNK_FRAMES] = "chunk_frames", [JK_L2R_WEIGHTS] = "l2r_weights", [JK_L2R_BIAS] = "l2r_bias",
	[JK_L2R_PRESET] = "l2r_preset",	  [JK_LAYOUT] = "layout",	    [JK_LATENTS_KEY] = "latents_key",
	[JK_OVERWRITE] = "overwrite",
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

static const struct choice formats[] = { { "y4m", EGR_FMT_Y4M }, { "png", EGR_FMT_PNG }, { "null", EGR_FMT_NULL },
					{ NULL, 0 } };
static const struct choice decoders[] = { { "latent2rgb", EGR_DEC_LATENT2RGB }, { "taesd", EGR_DEC_TAESD },
					  { NULL, 0 } };
static const struct choice layouts[] = { { "tchw", EGR_LAYOUT_TCHW }, { "bcthw", EGR_LAYOUT_BCTHW },
					 { "btchw", EGR_LAYOUT_BTCHW }, { NULL, 0 } };

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

static int set_chunk_frames(struct egr_jobspec *js, const char *key, const char *v, char *err, size_t errlen)
{
	int r = parse_u32_range(v, strlen(v), 1, CHUNK_FRAMES_MAX, &js->chunk_frames);

	if (r == -EINVAL) {
		egr_errf(err, errlen, "[job] %s: '%s' is not a number", key, v);
		return 0;
	}
	if (r < 0) {
		egr_errf(err, errlen, "[job] %s: %s is out of range (1..%u)", key, v, CHUNK_FRAMES_MAX);
		return 0;
	}
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
		return set_chunk_frames(js, name, value, err, errlen);
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

/*
 * Checks across keys, once the whole file is read: the required keys, and
 * keys that belong to the other decoder or contradict each other, which are
 * mistakes, not things to ignore.  0 or -EINVAL with err naming the file.
 */
static int job_check(const char *path, const struct egr_jobspec *js, unsigned seen, char *err, size_t errlen)
{
	static const enum job_key required[] = { JK_LATENTS, JK_OUTPUT, JK_FORMAT };
	static const enum job_key l2r_only[] = { JK_L2R_WEIGHTS, JK_L2R_BIAS, JK_L2R_PRESET };
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
	if (js->decoder == EGR_DEC_TAESD) {
		if (!(seen & SEEN(JK_WEIGHTS))) {
			egr_errf(err, errlen, "%s: [job] decoder = taesd needs weights = /path/to/taesd_decoder.safetensors",
				 path);
			return -EINVAL;
		}
		for (i = 0; i < sizeof(l2r_only) / sizeof(l2r_only[0]); i++) {
			if (seen & SEEN(l2r_only[i])) {
				egr_errf(err, errlen, "%s: [job] %s applies to decoder = latent2rgb only (decoder is taesd)",
					 path, job_keys[l2r_only[i]]);
				return -EINVAL;
			}
		}
	} else if (seen & SEEN(JK_WEIGHTS)) {
		egr_errf(err, errlen, "%s: [job] weights applies to decoder = taesd only (decoder is latent2rgb)", path);
		return -EINVAL;
	}
	if ((seen & SEEN(JK_L2R_PRESET)) && (seen & (SEEN(JK_L2R_WEIGHTS) | SEEN(JK_L2R_BIAS)))) {
		egr_errf(err, errlen, "%s: [job] l2r_preset sets the coefficients: give l2r_preset or %s, not both", path,
			 seen & SEEN(JK_L2R_WEIGHTS) ? "l2r_weights" : "l2r_bias");
		return -EINVAL;
	}
	return 0;
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
