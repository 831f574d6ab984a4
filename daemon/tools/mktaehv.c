/*
 * egressd-mktaehv: write seeded random TAEHV weights with the public tensor
 * names and shapes of one model (taew2_1.safetensors and its siblings), for
 * tests, GPU cross-checks against PyTorch and benchmarks; the project never
 * downloads weights.
 *
 *   egressd-mktaehv -o FILE -m wan21|wan22|hunyuan|hunyuan15|ltx2|cogvideox|opensora
 *                   [--seed N] [--dtype f16|f32] [--encoder] [--time-upscale XYZ] [--space-upscale XYZ]
 *
 *   egressd-mktaehv --decode W.safetensors -m MODEL --latents L.f32 --frames T --size HxW -o OUT.f32
 *
 * --encoder adds taehv.py's encoder tensors, so the file strict-loads into a
 * whole TAEHV module.  --time-upscale 111 writes each TGrow with stride 2
 * (XYZ: one 0/1 per stage; default the model's), which a loader at the
 * model's defaults slices as patch_tgrow_layers does.  --decode runs the
 * streaming fp32 CPU decoder (the daemon's) on raw float32 latents
 * [T][C][H][W], one latent frame a feed, and writes its frames, float32
 * [F][3][H'][W'] in [0, 1], for cross-checks (tests/it/it_video.sh).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/taehv.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: egressd-mktaehv -o FILE -m MODEL [--seed N (default 1)] [--dtype f16|f32 (default f16)]\n"
		   "                       [--encoder] [--time-upscale XYZ] [--space-upscale XYZ]\n"
		   "       egressd-mktaehv --decode WEIGHTS -m MODEL --latents L.f32 --frames T --size HxW -o OUT.f32\n"
		   "MODEL: wan21 wan22 hunyuan hunyuan15 ltx2 cogvideox opensora.  XYZ: a 0/1 per decoder stage.\n"
		   "Writes seeded random TAEHV weights (safetensors, public tensor names), or decodes raw\n"
		   "float32 latents [T][C][H][W] with the fp32 CPU decoder into [F][3][H'][W'] float32 in [0, 1].\n");
}

/* "011" -> sw[] = {0, 1, 1} */
static int parse_switches(const char *s, int8_t *sw)
{
	if (strlen(s) != 3)
		return -EINVAL;
	for (int k = 0; k < 3; k++) {
		if (s[k] != '0' && s[k] != '1')
			return -EINVAL;
		sw[k] = (int8_t)(s[k] - '0');
	}
	return 0;
}

/* --decode: the frames as they leave the stream */
static int write_frame(void *ctx, uint64_t index, const float *rgb, uint32_t out_h, uint32_t out_w)
{
	size_t n = (size_t)3 * out_h * out_w;

	return fwrite(rgb, sizeof(float), n, ctx) == n ? 0 : -EIO;
}

static int decode(const char *wpath, uint32_t model, const char *lpath, unsigned long T, unsigned long h,
		  unsigned long w, const char *opath, char *err, size_t errlen)
{
	struct egr_taehv *net = NULL;
	struct egr_taehv_stream *s = NULL;
	FILE *fi = NULL, *fo = NULL;
	float *lat = NULL;
	int r;

	if ((r = egr_taehv_load(wpath, model, &net, err, errlen)) < 0 ||
	    (r = egr_taehv_stream_create(net, (uint32_t)h, (uint32_t)w, T, &s, err, errlen)) < 0)
		goto out;
	const size_t lsz = (size_t)net->channels * h * w;
	r = -EIO;
	lat = malloc(lsz * sizeof(float));
	if (!lat || !(fi = fopen(lpath, "rb")) || !(fo = fopen(opath, "wb"))) {
		egr_errf(err, errlen, "mktaehv: cannot open \"%s\" or \"%s\" (or out of memory)", lpath, opath);
		goto out;
	}
	for (unsigned long t = 0; t < T; t++) {
		if (fread(lat, sizeof(float), lsz, fi) != lsz) {
			egr_errf(err, errlen, "mktaehv: \"%s\": short read at latent frame %lu (%zu floats each)", lpath, t,
				 lsz);
			goto out;
		}
		if ((r = egr_taehv_stream_feed(s, lat, 1, write_frame, fo, NULL, err, errlen)) < 0)
			goto out;
	}
	r = egr_taehv_stream_flush(s, write_frame, fo, NULL, err, errlen);
out:
	/* the frames are on disk only once the output closes cleanly */
	if (fo && fclose(fo) != 0 && r == 0) {
		egr_errf(err, errlen, "mktaehv: close \"%s\" failed", opath);
		r = -EIO;
	}
	if (fi)
		fclose(fi);
	free(lat);
	egr_taehv_stream_free(s);
	egr_taehv_free(net);
	return r;
}

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "egressd-mktaehv: %s '%s': expected %s\n", opt, val, want);
	return EGR_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },	  { "model", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },	  { "dtype", required_argument, NULL, 'd' },
		{ "encoder", no_argument, NULL, 'e' },		  { "time-upscale", required_argument, NULL, 't' },
		{ "space-upscale", required_argument, NULL, 'u' }, { "help", no_argument, NULL, 'h' },
		{ "decode", required_argument, NULL, 'D' },	  { "latents", required_argument, NULL, 'l' },
		{ "frames", required_argument, NULL, 'f' },	  { "size", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *outp = NULL, *tsw = NULL, *usw = NULL, *dec = NULL, *latp = NULL;
	unsigned long frames = 0, lh = 0, lw = 0;
	uint32_t model = EGR_TAEHV_NMODELS, dtype = EGR_ST_F16, flags = 0;
	unsigned long long seed = 1;
	struct egr_taehv_cfg cfg;
	char err[512], *end;
	int o;

	egr_log_init("mktaehv");
	while ((o = getopt_long(argc, argv, "o:m:s:d:et:u:h", opts, NULL)) != -1) {
		if (o == 'o') {
			outp = optarg;
		} else if (o == 'm') {
			if (egr_taehv_model_parse(optarg, &model) < 0)
				return bad("--model", optarg, "wan21, wan22, hunyuan, hunyuan15, ltx2, cogvideox or opensora");
		} else if (o == 's') {
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || *end || !*optarg)
				return bad("--seed", optarg, "an integer");
		} else if (o == 'd') {
			if (strcmp(optarg, "f16") && strcmp(optarg, "f32"))
				return bad("--dtype", optarg, "f16 or f32");
			dtype = optarg[1] == '1' ? EGR_ST_F16 : EGR_ST_F32;
		} else if (o == 'e') {
			flags |= EGR_TAEHV_WRITE_ENCODER;
		} else if (o == 't' || o == 'u') {
			*(o == 't' ? &tsw : &usw) = optarg;
		} else if (o == 'D' || o == 'l') {
			*(o == 'D' ? &dec : &latp) = optarg;
		} else if (o == 'f') {
			frames = strtoul(optarg, &end, 10);
			if (*end || !frames || frames > 100000)
				return bad("--frames", optarg, "1..100000");
		} else if (o == 'S') {
			lh = strtoul(optarg, &end, 10);
			if (*end != 'x' || !(lw = strtoul(end + 1, &end, 10)) || *end || !lh || lh > 4096 || lw > 4096)
				return bad("--size", optarg, "HxW, 1..4096 each");
		} else {
			usage(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : EGR_EXIT_USAGE;
		}
	}
	if (!outp || model == EGR_TAEHV_NMODELS || optind != argc || (dec && (!latp || !frames || !lh))) {
		usage(stderr);
		return EGR_EXIT_USAGE;
	}
	if (dec) {
		if (decode(dec, model, latp, frames, lh, lw, outp, err, sizeof(err)) < 0) {
			egr_err("%s", err);
			return EGR_EXIT_SOFTWARE;
		}
		return 0;
	}
	egr_taehv_cfg_init(&cfg, model);
	if (tsw && parse_switches(tsw, cfg.time_upscale) < 0)
		return bad("--time-upscale", tsw, "three digits 0/1, e.g. 011");
	if (usw && parse_switches(usw, cfg.space_upscale) < 0)
		return bad("--space-upscale", usw, "three digits 0/1, e.g. 111");
	if (egr_taehv_write_random(outp, &cfg, seed, dtype, flags, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_SOFTWARE;
	}
	return 0;
}
