/*
 * egressd-mkwanvae: seeded random Wan VAE decoder weights in the diffusers
 * layout (tests, benchmarks, cross-checks against diffusers; the project never
 * downloads weights), and a decode mode that runs egressd's fp32 CPU decoder
 * on raw latents so other tools can compare its output.
 *
 *   egressd-mkwanvae -o W.safetensors [--config 2.1|2.2] [--dim N] [--z-dim N] [--seed N] [--dtype f16|f32]
 *   egressd-mkwanvae --decode W.safetensors --latents L.f32 --frames T --size HxW [--chunk N] -o OUT.f32
 *
 * L.f32: float32 little-endian [T][C][H][W] (de-normalised, as vae.decode
 * takes them); OUT.f32 receives [1 + 4 (T - 1)][3][H * s][W * s] float32 in
 * [-1, 1], decoded feeding --chunk latent frames at a time (default 1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/wanvae.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: egressd-mkwanvae -o FILE [--config 2.1|2.2 (default 2.1)] [--dim N] [--z-dim N]\n"
		   "                        [--seed N (default 1)] [--dtype f16|f32 (default f32)]\n"
		   "       egressd-mkwanvae --decode WEIGHTS --latents L.f32 --frames T --size HxW [--chunk N] -o OUT.f32\n"
		   "Writes seeded random Wan VAE decoder weights (diffusers safetensors layout), or decodes\n"
		   "raw float32 latents [T][C][H][W] with the fp32 CPU decoder into [F][3][H*s][W*s] float32.\n");
}

struct args {
	const char *out, *decode, *latents;
	struct egr_wanvae_cfg cfg;
	unsigned long dim, z_dim;	/* overrides of the preset's, 0: keep */
	unsigned long long seed;
	uint32_t dtype;
	unsigned long frames, chunk, h, w;
};

static int num(const char *opt, const char *arg, unsigned long lo, unsigned long hi, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(arg, &end, 0);
	if (errno || *end || !*arg || *v < lo || *v > hi) {
		fprintf(stderr, "egressd-mkwanvae: %s '%s': expected %lu..%lu\n", opt, arg, lo, hi);
		return -1;
	}
	return 0;
}

/* One option's value into a.  0, or -1 after saying why on stderr. */
static int parse_opt(int o, const char *arg, struct args *a)
{
	unsigned long v;
	char *end;

	switch (o) {
	case 'o': a->out = arg; return 0;
	case 'D': a->decode = arg; return 0;
	case 'l': a->latents = arg; return 0;
	case 'c':
		if (egr_wanvae_cfg_preset(&a->cfg, arg) == 0)
			return 0;
		fprintf(stderr, "egressd-mkwanvae: --config '%s': expected 2.1 or 2.2\n", arg);
		return -1;
	case 'm': return num("--dim", arg, 1, EGR_WANVAE_MAX_DIM / 4, &a->dim);
	case 'z': return num("--z-dim", arg, 1, EGR_WANVAE_MAX_Z, &a->z_dim);
	case 's': return num("--seed", arg, 0, ~0ul, &v) < 0 ? -1 : (a->seed = v, 0);
	case 'f': return num("--frames", arg, 1, 100000, &a->frames);
	case 'k': return num("--chunk", arg, 1, 100000, &a->chunk);
	case 'S':
		a->h = strtoul(arg, &end, 10);
		if (*end == 'x' && (a->w = strtoul(end + 1, &end, 10)) && !*end && a->h >= 1 && a->h <= 4096 && a->w <= 4096)
			return 0;
		fprintf(stderr, "egressd-mkwanvae: --size '%s': expected HxW, 1..4096 each\n", arg);
		return -1;
	case 'd':
		if (!strcmp(arg, "f16") || !strcmp(arg, "f32")) {
			a->dtype = arg[1] == '1' ? EGR_ST_F16 : EGR_ST_F32;
			return 0;
		}
		fprintf(stderr, "egressd-mkwanvae: --dtype '%s': expected f16 or f32\n", arg);
		return -1;
	}
	return -1;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' }, { "config", required_argument, NULL, 'c' },
		{ "dim", required_argument, NULL, 'm' },    { "z-dim", required_argument, NULL, 'z' },
		{ "seed", required_argument, NULL, 's' },   { "dtype", required_argument, NULL, 'd' },
		{ "decode", required_argument, NULL, 'D' }, { "latents", required_argument, NULL, 'l' },
		{ "frames", required_argument, NULL, 'f' }, { "size", required_argument, NULL, 'S' },
		{ "chunk", required_argument, NULL, 'k' },  { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "o:c:s:d:h", opts, NULL)) != -1) {
		if (o == 'h') {
			usage(stdout);
			exit(0);
		}
		if (o == '?' || parse_opt(o, optarg, a) < 0) {
			if (o == '?')
				usage(stderr);
			return -1;
		}
	}
	if (!a->out || optind != argc || (a->decode && (!a->latents || !a->frames || !a->h))) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int decode(const struct args *a, char *err, size_t errlen)
{
	struct egr_wanvae *net = NULL;
	struct egr_wanvae_stream *s = NULL;
	float *lat = NULL, *out = NULL;
	FILE *fi = NULL, *fo = NULL;
	uint32_t H, W, n;
	int r;

	if ((r = egr_wanvae_load(a->decode, &net, err, errlen)) < 0 ||
	    (r = egr_wanvae_stream_create(net, (uint32_t)a->h, (uint32_t)a->w, &s, err, errlen)) < 0)
		goto out;
	egr_wanvae_stream_size(s, &H, &W);
	const size_t lsz = (size_t)net->cfg.z_dim * a->h * a->w, osz = (size_t)3 * H * W;
	const uint32_t chunk = (uint32_t)(a->chunk ? a->chunk : 1);
	r = -EIO;
	lat = malloc(lsz * chunk * sizeof(float));
	out = malloc(osz * net->time_factor * chunk * sizeof(float));
	if (!lat || !out || !(fi = fopen(a->latents, "rb")) || !(fo = fopen(a->out, "wb"))) {
		egr_errf(err, errlen, "mkwanvae: cannot open \"%s\" or \"%s\" (or out of memory)", a->latents, a->out);
		goto out;
	}
	for (uint32_t t = 0; t < a->frames; t += chunk) {
		uint32_t k = a->frames - t < chunk ? (uint32_t)(a->frames - t) : chunk;
		if (fread(lat, sizeof(float) * lsz, k, fi) != k) {
			egr_errf(err, errlen, "mkwanvae: \"%s\": short read at latent frame %u (%zu floats each)",
				 a->latents, t, lsz);
			goto out;
		}
		if ((r = egr_wanvae_stream_feed(s, lat, k, out, &n, err, errlen)) < 0)
			goto out;
		r = -EIO;
		if (fwrite(out, sizeof(float) * osz, n, fo) != n) {
			egr_errf(err, errlen, "mkwanvae: write \"%s\" failed", a->out);
			goto out;
		}
	}
	egr_wanvae_stream_flush(s, &n);
	r = fclose(fo) == 0 ? 0 : -EIO;
	fo = NULL;
	if (r < 0)
		egr_errf(err, errlen, "mkwanvae: close \"%s\" failed", a->out);
out:
	if (fi)
		fclose(fi);
	if (fo)
		fclose(fo);
	free(lat);
	free(out);
	egr_wanvae_stream_free(s);
	egr_wanvae_free(net);
	return r;
}

int main(int argc, char **argv)
{
	struct args a = { .seed = 1, .dtype = EGR_ST_F32 };
	char err[512];
	int r;

	egr_log_init("mkwanvae");
	egr_wanvae_cfg_preset(&a.cfg, "2.1");
	if (parse_args(argc, argv, &a) < 0)
		return EGR_EXIT_USAGE;
	if (a.dim)
		a.cfg.dim = (uint32_t)a.dim;
	if (a.z_dim)
		a.cfg.z_dim = (uint32_t)a.z_dim;
	if (a.decode)
		r = decode(&a, err, sizeof(err));
	else
		r = egr_wanvae_write_random(a.out, &a.cfg, a.seed, a.dtype, err, sizeof(err));
	if (r < 0) {
		egr_err("%s", err);
		return EGR_EXIT_SOFTWARE;
	}
	return 0;
}
