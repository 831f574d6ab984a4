/*
 * egressd-mklatents: writes sample latents as a .npy file, for the demo and
 * the tests (nothing is ever downloaded).
 *
 *   smooth  moving colourful blobs over a drifting gradient: a watchable
 *           preview through latent2rgb with its default SD coefficients
 *   noise   seeded noise, roughly N(0, 1)
 *
 * Output is bit-identical on every machine for the same arguments: the PRNG
 * is splitmix64 and the smooth pattern uses only IEEE adds and multiplies
 * (no libm sin/cos, whose last bit differs between libm versions), so tests
 * may compare decoded frames against stored hashes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "daemon/decode/frame.h"
#include "daemon/base/log.h"
#include "daemon/formats/npy.h"

#define MAX_ELEMS (1ull << 31)	/* 8 GiB of float32 in memory: plenty for samples */
#define LOOP_FRAMES 48.0	/* the smooth pattern repeats every 48 frames */
#define LAT_CLAMP 2.5

enum pattern { PAT_SMOOTH, PAT_NOISE };

struct opts {
	const char *out;
	uint64_t shape[4];	/* frames, channels, height, width */
	uint32_t dtype;
	uint64_t seed;
	enum pattern pattern;
	int nan;
	uint64_t nan_at;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: egressd-mklatents -o OUT.npy [-f FRAMES] [-c CHANNELS] [-H LAT_H] [-W LAT_W]\n"
		"                         [--dtype f16|f32] [--seed N] [--pattern smooth|noise] [--nan-at K]\n"
		"\n"
		"Writes sample latents, shape [frames, channels, height, width], as a .npy file.\n"
		"\n"
		"  -o, --output FILE     the .npy file to write\n"
		"  -f, --frames N        frames (default 48)\n"
		"  -c, --channels N      latent channels (default 4; latent2rgb has defaults for 4)\n"
		"  -H, --height N        latent height (default 64: 512 pixels after latent2rgb)\n"
		"  -W, --width N         latent width (default 64)\n"
		"      --dtype T         f16 (default) or f32\n"
		"      --seed N          seed of the pattern (default 1); same arguments, same bytes\n"
		"      --pattern P       smooth (default): moving colour blobs, values in about [-2, 2];\n"
		"                        noise: seeded noise, about N(0, 1)\n"
		"      --nan-at K        put a NaN at element K (flat index), to test rejection\n"
		"  -h, --help            this text\n");
}

/* ---- deterministic arithmetic ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* [0, 1), exactly representable */
static double uniform(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

/*
 * cos(2 pi t) from adds and multiplies only (Taylor series to x^18 on
 * [0, pi/2] after exact reductions; error < 1e-12).
 */
static double cos_turns(double t)
{
	static const double two_pi = 6.283185307179586;
	double x2, r = 1.0;
	int neg = 0, k;

	t -= floor(t);	/* exact */
	if (t > 0.5)
		t = 1.0 - t;
	if (t > 0.25) {
		t = 0.5 - t;
		neg = 1;
	}
	x2 = (two_pi * t) * (two_pi * t);
	for (k = 18; k >= 2; k -= 2)	/* Horner: 1 - x2/2! (1 - x2/(3*4) (1 - ...)) */
		r = 1.0 - x2 / (double)((k - 1) * k) * r;
	return neg ? -r : r;
}

/* a saturated colour of hue h (turns), components in [-1, 1] */
static void hue(double h, double rgb[3])
{
	rgb[0] = cos_turns(h);
	rgb[1] = cos_turns(h - 1.0 / 3.0);
	rgb[2] = cos_turns(h - 2.0 / 3.0);
}

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/*
 * P = W (W^T W)^-1, the minimum-norm right inverse of latent2rgb's default
 * map rgb = W^T lat (W is [4][3]): latents P rgb decode to exactly rgb.
 */
static int l2r_inverse(double p[4][3])
{
	struct egr_l2r l2r;
	double a[3][3], inv[3][3], det;
	char err[256];
	int i, j, c;

	if (egr_frame_l2r_init(&l2r, 4, 0, NULL, 0, NULL, err, sizeof(err)) < 0)
		return -1;
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++) {
			a[i][j] = 0;
			for (c = 0; c < 4; c++)
				a[i][j] += (double)l2r.w[c * 3 + i] * (double)l2r.w[c * 3 + j];
		}
	det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
	      a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
	if (fabs(det) < 1e-9)
		return -1;
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++) {
			/* adjugate: cofactor of a[j][i] */
			int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;

			inv[i][j] = (a[r0][c0] * a[r1][c1] - a[r0][c1] * a[r1][c0]) / det;
		}
	for (c = 0; c < 4; c++)
		for (j = 0; j < 3; j++) {
			p[c][j] = 0;
			for (i = 0; i < 3; i++)
				p[c][j] += (double)l2r.w[c * 3 + i] * inv[i][j];
		}
	return 0;
}

/* ---- patterns ---- */

#define NBLOBS 3

struct blobs {
	double phase[NBLOBS][3];	/* x path, y path, radius */
};

static void gen_smooth(const struct opts *o, float *out)
{
	const uint64_t F = o->shape[0], C = o->shape[1], H = o->shape[2], W = o->shape[3];
	static const double fx[NBLOBS] = { 1, 2, 1 }, fy[NBLOBS] = { 2, 1, 3 };	/* Lissajous, loop-closed */
	double p[4][3];
	int use_inverse = C == 4 && l2r_inverse(p) == 0;
	struct blobs b;
	uint64_t s = o->seed, f, c, y, x;
	int i, j;

	for (i = 0; i < NBLOBS; i++)
		for (j = 0; j < 3; j++)
			b.phase[i][j] = uniform(&s);

	for (f = 0; f < F; f++) {
		double tau = (double)f / LOOP_FRAMES;
		double cx[NBLOBS], cy[NBLOBS], r2[NBLOBS], col[NBLOBS][3];

		for (i = 0; i < NBLOBS; i++) {
			double r = 0.2 + 0.05 * cos_turns(tau + b.phase[i][2]);

			cx[i] = 0.5 + 0.32 * cos_turns(fx[i] * tau + b.phase[i][0]);
			cy[i] = 0.5 + 0.32 * cos_turns(fy[i] * tau + b.phase[i][1] - 0.25);
			r2[i] = r * r;
			hue((double)i / NBLOBS + 0.25 * tau, col[i]);
		}
		for (y = 0; y < H; y++) {
			double v = ((double)y + 0.5) / (double)H;

			for (x = 0; x < W; x++) {
				double u = ((double)x + 0.5) / (double)W;
				double k[NBLOBS], ksum = 0, bg[3], rgb[3];

				for (i = 0; i < NBLOBS; i++) {
					double d2 = ((u - cx[i]) * (u - cx[i]) + (v - cy[i]) * (v - cy[i])) / r2[i];

					k[i] = d2 < 1.0 ? (1.0 - d2) * (1.0 - d2) : 0.0;	/* smooth bump */
					ksum += k[i];
				}
				ksum = ksum > 1.0 ? 1.0 : ksum;
				hue(0.6 * u + 0.4 * v + 0.5 * tau, bg);
				for (j = 0; j < 3; j++) {
					rgb[j] = 0.4 * bg[j] * (1.0 - ksum);
					for (i = 0; i < NBLOBS; i++)
						rgb[j] += 0.7 * k[i] * col[i][j];
				}
				for (c = 0; c < C; c++) {
					double l = 0;

					if (use_inverse) {
						for (j = 0; j < 3; j++)
							l += p[c][j] * rgb[j];
					} else {
						/* no default coefficients to aim at: smooth fields per channel */
						double ph = (double)c / (double)C;

						l = 0.6 * cos_turns(0.6 * u + 0.4 * v + 0.5 * tau + ph);
						for (i = 0; i < NBLOBS; i++)
							l += 1.6 * k[i] * cos_turns((double)i / NBLOBS + 0.25 * tau + ph);
					}
					out[((f * C + c) * H + y) * W + x] = (float)clampd(l, -LAT_CLAMP, LAT_CLAMP);
				}
			}
		}
	}
}

/* about N(0, 1): a sum of 4 uniforms (Irwin-Hall), no libm involved */
static void gen_noise(const struct opts *o, uint64_t elems, float *out)
{
	uint64_t s = o->seed, i;

	for (i = 0; i < elems; i++) {
		double sum = 0;
		int k;

		for (k = 0; k < 4; k++)	/* one call per statement: C leaves the order of calls in a sum open */
			sum += uniform(&s);
		out[i] = (float)((sum - 2.0) * 1.7320508075688772);
	}
}

/* ---- command line ---- */

static int opt_u64(const char *name, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (egr_conf_parse_u64(v, out) < 0 || *out < lo || *out > hi) {
		fprintf(stderr, "egressd-mklatents: %s: '%s' is not a number in %" PRIu64 "..%" PRIu64 "\n", name, v,
			lo, hi);
		return -1;
	}
	return 0;
}

/*
 * arg as one of the words (NULL-terminated) into *out: vals[i] for
 * words[i].  0, or -1 after saying "--name: 'arg' is not <expect>".
 */
static int opt_word(const char *name, const char *arg, const char *const *words, const int *vals,
		    const char *expect, int *out)
{
	for (int i = 0; words[i]; i++) {
		if (!strcmp(arg, words[i])) {
			*out = vals[i];
			return 0;
		}
	}
	fprintf(stderr, "egressd-mklatents: --%s: '%s' is not %s\n", name, arg, expect);
	return -1;
}

enum { OPT_DTYPE = 256, OPT_SEED, OPT_PATTERN, OPT_NAN_AT };

/* One option's value into o.  0, or -1 after saying why on stderr. */
static int parse_opt(int ch, const char *arg, struct opts *o)
{
	static const char *const dtypes[] = { "f16", "float16", "f32", "float32", NULL };
	static const int dtype_vals[] = { EGR_DT_F16, EGR_DT_F16, EGR_DT_F32, EGR_DT_F32 };
	static const char *const patterns[] = { "smooth", "noise", NULL };
	static const int pattern_vals[] = { PAT_SMOOTH, PAT_NOISE };
	int v;

	switch (ch) {
	case 'o':
		o->out = arg;
		return 0;
	case 'f':
		return opt_u64("frames", arg, 1, 1000000, &o->shape[0]);
	case 'c':
		return opt_u64("channels", arg, 1, 64, &o->shape[1]);
	case 'H':
		return opt_u64("height", arg, 1, 8192, &o->shape[2]);
	case 'W':
		return opt_u64("width", arg, 1, 8192, &o->shape[3]);
	case OPT_DTYPE:
		if (opt_word("dtype", arg, dtypes, dtype_vals, "f16 or f32", &v) < 0)
			return -1;
		o->dtype = (uint32_t)v;
		return 0;
	case OPT_SEED:
		return opt_u64("seed", arg, 0, UINT64_MAX, &o->seed);
	case OPT_PATTERN:
		if (opt_word("pattern", arg, patterns, pattern_vals, "smooth or noise", &v) < 0)
			return -1;
		o->pattern = (enum pattern)v;
		return 0;
	case OPT_NAN_AT:
		o->nan = 1;
		return opt_u64("nan-at", arg, 0, UINT64_MAX, &o->nan_at);
	}
	return -1;	/* getopt said why */
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },   { "frames", required_argument, NULL, 'f' },
		{ "channels", required_argument, NULL, 'c' }, { "height", required_argument, NULL, 'H' },
		{ "width", required_argument, NULL, 'W' },    { "dtype", required_argument, NULL, OPT_DTYPE },
		{ "seed", required_argument, NULL, OPT_SEED }, { "pattern", required_argument, NULL, OPT_PATTERN },
		{ "nan-at", required_argument, NULL, OPT_NAN_AT }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "o:f:c:H:W:h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			exit(EGR_EXIT_OK);
		}
		if (parse_opt(ch, optarg, o) < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "egressd-mklatents: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->out) {
		fprintf(stderr, "egressd-mklatents: -o OUT.npy is required\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.shape = { 48, 4, 64, 64 },
		.dtype = EGR_DT_F16,
		.seed = 1,
		.pattern = PAT_SMOOTH,
	};
	uint64_t elems;
	char err[512];
	float *data;
	int i;

	egr_log_init("mklatents");
	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "Try 'egressd-mklatents --help'.\n");
		return EGR_EXIT_USAGE;
	}
	elems = 1;
	for (i = 0; i < 4; i++)
		elems *= o.shape[i];	/* cannot overflow: each is at most 1e6 or 8192 */
	if (elems > MAX_ELEMS) {
		fprintf(stderr, "egressd-mklatents: %" PRIu64 " elements is more than this tool makes (%llu)\n", elems,
			MAX_ELEMS);
		return EGR_EXIT_USAGE;
	}
	if (o.nan && o.nan_at >= elems) {
		fprintf(stderr, "egressd-mklatents: --nan-at %" PRIu64 " is past the %" PRIu64 " elements\n", o.nan_at,
			elems);
		return EGR_EXIT_USAGE;
	}
	data = malloc((size_t)elems * sizeof(float));
	if (!data) {
		egr_err("malloc(%" PRIu64 " bytes): out of memory", elems * sizeof(float));
		return EGR_EXIT_OSERR;
	}
	if (o.pattern == PAT_SMOOTH)
		gen_smooth(&o, data);
	else
		gen_noise(&o, elems, data);
	if (o.nan)
		data[o.nan_at] = NAN;
	if (egr_npy_write(o.out, o.dtype, o.shape, data, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		free(data);
		return EGR_EXIT_OSERR;
	}
	free(data);
	printf("%s: shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "] %s, pattern %s, seed %" PRIu64 "%s\n",
	       o.out, o.shape[0], o.shape[1], o.shape[2], o.shape[3], o.dtype == EGR_DT_F16 ? "float16" : "float32",
	       o.pattern == PAT_SMOOTH ? "smooth" : "noise", o.seed, o.nan ? " (with a NaN)" : "");
	return EGR_EXIT_OK;
}
