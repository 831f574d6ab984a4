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
	JK_OVERWRITE,
	JK_COUNT
};

static const char *const job_keys[JK_COUNT] = {
	[JK_LATENTS] = "latents",	  [JK_OUTPUT] = "output",	    [JK_FORMAT] = "format",
	[JK_DECODER] = "decoder",	  [JK_WEIGHTS] = "weights",	    [JK_FPS] = "fps",
	[JK_CHUNK_FRAMES] = "chunk_frames", [JK_L2R_WEIGHTS] = "l2r_weights", [JK_L2R_BIAS] = "l2r_bias",
	[JK_OVERWRITE] = "overwrite",
};

struct job_ctx {
	struct egr_jobspec *js;
	unsigned seen;		/* bit per enum job_key */
};

const char *egr_job_format_name(uint32_t fmt)
{
	switch (fmt) {
	case EGR_FMT_Y4M:
		return "y4m";
	case EGR_FMT_PNG:
		return "png";
	}
	return "?";
}

const char *egr_job_decoder_name(uint32_t dec)
{
	switch (dec) {
	case EGR_DEC_LATENT2RGB:
		return "latent2rgb";
	case EGR_DEC_TAESD:
		return "taesd";
	}
	return "?";
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

static int job_handler(void *user, const char *section, const char *name, const char *value, char *err,
		       size_t errlen)
{
	struct job_ctx *x = user;
	struct egr_jobspec *js = x->js;
	const char *slash;
	unsigned k, n;
	int r;

	if (strcmp(section, "job")) {
		if (*section)
			egr_errf(err, errlen, "unknown section [%s] (key '%s'); a job file has one section, [job]",
				 section, name);
		else
			egr_errf(err, errlen, "key '%s' is outside [job]", name);
		return 0;
	}
	for (k = 0; k < JK_COUNT && strcmp(job_keys[k], name); k++)
		;
	if (k == JK_COUNT) {
		egr_errf(err, errlen, "unknown key '%s' in [job]", name);
		return 0;
	}
	if (x->seen & (1u << k)) {
		egr_errf(err, errlen, "duplicate key '%s' in [job]", name);
		return 0;
	}
	x->seen |= 1u << k;
	if (!*value) {
		egr_errf(err, errlen, "[job] %s: empty value", name);
		return 0;
	}

	switch ((enum job_key)k) {
	case JK_LATENTS:
		return set_path(js->latents, name, value, err, errlen);
	case JK_OUTPUT:
		return set_path(js->output, name, value, err, errlen);
	case JK_WEIGHTS:
		return set_path(js->weights, name, value, err, errlen);
	case JK_FORMAT:
		if (!strcmp(value, "y4m"))
			js->format = EGR_FMT_Y4M;
		else if (!strcmp(value, "png"))
			js->format = EGR_FMT_PNG;
		else
			break;
		return 1;
	case JK_DECODER:
		if (!strcmp(value, "latent2rgb"))
			js->decoder = EGR_DEC_LATENT2RGB;
		else if (!strcmp(value, "taesd"))
			js->decoder = EGR_DEC_TAESD;
		else
			break;
		return 1;
	case JK_FPS:
		slash = strchr(value, '/');
		if (slash) {
			r = parse_u32_range(value, (size_t)(slash - value), 1, FPS_MAX, &js->fps_num);
			if (r == 0)
				r = parse_u32_range(slash + 1, strlen(slash + 1), 1, FPS_MAX, &js->fps_den);
		} else {
			js->fps_den = 1;
			r = parse_u32_range(value, strlen(value), 1, FPS_MAX, &js->fps_num);
		}
		if (r == -EINVAL) {
			egr_errf(err, errlen, "[job] %s: '%s' is not a frame rate (an integer, or a ratio like 30000/1001)",
				 name, value);
			return 0;
		}
		if (r < 0) {
			egr_errf(err, errlen, "[job] %s: '%s' is out of range (each number 1..%u)", name, value, FPS_MAX);
			return 0;
		}
		return 1;
	case JK_CHUNK_FRAMES:
		r = parse_u32_range(value, strlen(value), 1, CHUNK_FRAMES_MAX, &js->chunk_frames);
		if (r == -EINVAL) {
			egr_errf(err, errlen, "[job] %s: '%s' is not a number", name, value);
			return 0;
		}
		if (r < 0) {
			egr_errf(err, errlen, "[job] %s: %s is out of range (1..%u)", name, value, CHUNK_FRAMES_MAX);
			return 0;
		}
		return 1;
	case JK_L2R_WEIGHTS:
		if (!parse_floats(name, value, js->l2r_weights, EGR_L2R_MAX_CHANNELS * 3, &n, err, errlen))
			return 0;
		if (n % 3) {
			egr_errf(err, errlen,
				 "[job] %s: %u values; it needs 3 (r, g, b) per latent channel", name, n);
			return 0;
		}
		js->l2r_nweights = n;
		return 1;
	case JK_L2R_BIAS:
		if (!parse_floats(name, value, js->l2r_bias, 3, &n, err, errlen))
			return 0;
		if (n != 3) {
			egr_errf(err, errlen, "[job] %s: %u values; it needs 3 (r, g, b)", name, n);
			return 0;
		}
		js->l2r_has_bias = 1;
		return 1;
	case JK_OVERWRITE:
		return set_yes_no(&js->overwrite, name, value, err, errlen);
	case JK_COUNT:
		break;
	}
	/* format or decoder with an unknown value */
	egr_errf(err, errlen, "[job] %s: '%s' is not one of: %s", name, value,
		 k == JK_FORMAT ? "y4m, png" : "latent2rgb, taesd");
	return 0;
}

int egr_job_parse(const char *path, struct egr_jobspec *js, char *err, size_t errlen)
{
	static const enum job_key required[] = { JK_LATENTS, JK_OUTPUT, JK_FORMAT };
	struct job_ctx x = { .js = js };
	size_t i;
	int ret;

	memset(js, 0, sizeof(*js));
	js->decoder = EGR_DEC_LATENT2RGB;
	js->fps_num = 24;
	js->fps_den = 1;
	js->chunk_frames = 8;

	ret = egr_conf_ini_parse(path, job_handler, &x, err, errlen);
	if (ret < 0)
		return ret;
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (!(x.seen & (1u << required[i]))) {
			egr_errf(err, errlen, "%s: missing key '%s' in [job]", path, job_keys[required[i]]);
			return -EINVAL;
		}
	}
	/* keys that belong to the other decoder are mistakes, not things to ignore */
	if (js->decoder == EGR_DEC_TAESD) {
		if (!(x.seen & (1u << JK_WEIGHTS))) {
			egr_errf(err, errlen, "%s: [job] decoder = taesd needs weights = /path/to/taesd_decoder.safetensors",
				 path);
			return -EINVAL;
		}
		if (x.seen & (1u << JK_L2R_WEIGHTS | 1u << JK_L2R_BIAS)) {
			egr_errf(err, errlen, "%s: [job] %s applies to decoder = latent2rgb only (decoder is taesd)", path,
				 x.seen & (1u << JK_L2R_WEIGHTS) ? "l2r_weights" : "l2r_bias");
			return -EINVAL;
		}
	} else if (x.seen & (1u << JK_WEIGHTS)) {
		egr_errf(err, errlen, "%s: [job] weights applies to decoder = taesd only (decoder is latent2rgb)", path);
		return -EINVAL;
	}
	return 0;
}
