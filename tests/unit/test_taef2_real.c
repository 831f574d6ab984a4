/*
 * test_taef2_real: real weights, real latents.  The public taef2 decoder
 * (FLUX.2, the flux_2 variant with its GroupNorm pool branch) decodes real
 * latents of a real video on the CPU (fp32), whole 832x480 frames (the
 * GroupNorm sees the whole frame), and must land within one 8-bit code of
 * PyTorch's fp32 decode on >= 99% of bytes (tests/unit/taef2_data.h).  Also:
 * the file loads as flux_2 with 32 latent channels and every one of its 79
 * tensors used (none skipped).
 *
 * Frame 0 only by default (about 15 s); EGR_TAEF2_FRAMES=8 checks all
 * eight frames PyTorch's decode has.  Exit 77 when the data is absent
 * (../shared/data, see taef2_data.h) or in a sanitizer build (the decode
 * takes minutes there; the plain build runs it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/base/half.h"
#include "daemon/decode/taesd.h"
#include "daemon/formats/npy.h"
#include "daemon/formats/safetensors.h"

#include "check.h"
#include "taef2_data.h"

#if defined(__SANITIZE_ADDRESS__)
#define TAEF2_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAEF2_SANITIZED 1
#endif
#endif

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* the file: flux_2, 32 channels, all of its tensors used */
static struct egr_taesd *load_net(const char *dir)
{
	char p[1200], err[512];
	struct egr_taesd *net = NULL;
	struct egr_st *st = NULL;

	snprintf(p, sizeof(p), "%s/" TAEF2_WEIGHTS, dir);
	if (egr_st_open(p, &st, err, sizeof(err)) == 0) {
		CHECK(st->ntensors == 79, "%s has %u tensors, expected 79", p, st->ntensors);
		egr_st_close(st);
	}
	if (egr_taesd_load(p, &net, err, sizeof(err)) < 0) {
		CHECK(0, "load: %s", err);
		return NULL;
	}
	CHECK(net->variant == EGR_TAESD_FLUX2 && net->channels == TAEF2_C && net->npool == 3 && net->extra_tensors == 0,
	      "%s: variant %s, %u channels, %u pools, %u skipped", p, egr_taesd_variant_name(net->variant), net->channels,
	      net->npool, net->extra_tensors);
	return net;
}

/* latent frame f as fp32 [32][60][104] */
static int load_latent(const char *dir, uint32_t f, float *lat)
{
	char p[1200], err[512];
	struct egr_npy n;
	const size_t cnt = (size_t)TAEF2_C * TAEF2_LH * TAEF2_LW;
	uint16_t *h = malloc(cnt * 2);
	int r;

	snprintf(p, sizeof(p), "%s/" TAEF2_LATENTS, dir);
	r = egr_npy_open(p, &n, err, sizeof(err));
	if (r == 0) {
		CHECK(n.dtype == EGR_DT_F16 && n.shape[0] == TAEF2_LAT_FRAMES && n.shape[1] == TAEF2_C &&
			      n.shape[2] == TAEF2_LH && n.shape[3] == TAEF2_LW,
		      "%s: unexpected dtype or shape", p);
		r = h ? egr_npy_read(&n, f, 1, h, err, sizeof(err)) : -ENOMEM;
		egr_npy_close(&n);
	}
	for (size_t i = 0; r == 0 && i < cnt; i++)
		lat[i] = egr_half_to_float(h[i]);
	if (r < 0)
		CHECK(0, "latents: %s", r == -ENOMEM ? "out of memory" : err);
	free(h);
	return r;
}

int main(void)
{
	char dir[1024], why[1400], err[512];
	const char *fe = getenv("EGR_TAEF2_FRAMES");
	uint32_t frames = fe ? (uint32_t)atoi(fe) : 1;

#ifdef TAEF2_SANITIZED
	printf("test_taef2_real: skipped in a sanitizer build (a real 832x480 decode takes minutes there)\n");
	return 77;
#endif
	if (taef2_find(dir, sizeof(dir), why, sizeof(why)) < 0) {
		printf("test_taef2_real: %s, skipped\n", why);
		return 77;
	}
	if (frames < 1 || frames > TAEF2_REF_FRAMES)
		frames = 1;
	uint8_t *ref = taef2_load_torch(dir, why, sizeof(why));
	struct egr_taesd *net = load_net(dir);
	const size_t npix = (size_t)TAEF2_H * TAEF2_W;
	float *lat = malloc((size_t)TAEF2_C * TAEF2_LH * TAEF2_LW * sizeof(float));
	float *raw = malloc(3 * npix * sizeof(float));
	uint8_t *rgb = malloc(3 * npix);

	CHECK(ref != NULL, "%s", why);
	for (uint32_t f = 0; f < frames && ref && net && lat && raw && rgb; f++) {
		if (load_latent(dir, f, lat) < 0)
			break;
		double t0 = now_s();
		if (egr_taesd_decode_cpu(net, lat, TAEF2_LH, TAEF2_LW, raw, err, sizeof(err)) < 0) {
			CHECK(0, "decode: %s", err);
			break;
		}
		double t1 = now_s();
		egr_taesd_to_rgb24(raw, TAEF2_H, TAEF2_W, rgb);
		struct taef2_cmp c = taef2_compare(rgb, ref + f * 3 * npix, npix);
		printf("taef2 real, cpu fp32 vs torch fp32, frame %u (%dx%d, %.1f s): %.4f%% of bytes within 1 code, "
		       "%.4f%% exact, max diff %d, luma PSNR %.2f dB\n",
		       f, TAEF2_W, TAEF2_H, t1 - t0, 100.0 * c.within1, 100.0 * c.exact, c.maxd, c.psnr_luma);
		CHECK(c.within1 >= 0.99, "frame %u: only %.3f%% of bytes within 1 code of PyTorch's (>= 99%% expected)", f,
		      100.0 * c.within1);
	}
	egr_taesd_free(net);
	free(ref);
	free(lat);
	free(raw);
	free(rgb);
	if (failures)
		printf("test_taef2_real: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
