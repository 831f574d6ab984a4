/*
 * taef2_data: the real taef2 test data of ../shared/data/taef2/ (see that
 * folder's README): the public taef2 decoder weights (FLUX.2, flux_2
 * variant), 24 real latent frames [24, 32, 60, 104] f16, and PyTorch's fp32
 * decode of frames 0-7 quantised to uint8 [8, 480, 832, 3] RGB (clamp to
 * [0, 1], floor(v * 255 + 0.5): egressd's own rule, egr_taesd_quant_u8).
 *
 * Header-only (C and CUDA C++), for tests/unit/test_taef2_real.c and
 * tests/gpu/test_taesd_gpu.cu: where the data is, reading the uint8 .npy
 * (egressd's npy reader takes float latents only) and the comparison both
 * make: the share of bytes within one code of PyTorch's, and luma PSNR.
 */
#ifndef EGR_TEST_TAEF2_DATA_H
#define EGR_TEST_TAEF2_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAEF2_C 32
#define TAEF2_LH 60
#define TAEF2_LW 104
#define TAEF2_H (8 * TAEF2_LH)
#define TAEF2_W (8 * TAEF2_LW)
#define TAEF2_LAT_FRAMES 24
#define TAEF2_REF_FRAMES 8
#define TAEF2_WEIGHTS "taef2/taef2_decoder.safetensors"
#define TAEF2_LATENTS "taef2/real_latents_0_24_f16.npy"
#define TAEF2_TORCH "taef2/torch_decode_0_8_u8.npy"

/*
 * The data directory, into dir: $EGR_SHARED_DATA if set, else shared/data
 * beside the source tree ($EGR_SRCDIR, default the working directory, which
 * tests/run.sh sets to the tree's root: CI keeps a copy of shared/ beside
 * the clone), else shared/data inside it.  0, or -1 with why filled.
 */
static inline int taef2_find(char *dir, size_t len, char *why, size_t whylen)
{
	const char *env = getenv("EGR_SHARED_DATA"), *src = getenv("EGR_SRCDIR");
	const char *fmt[2] = { "%s/../shared/data", "%s/shared/data" };
	char f[1200];

	for (int i = 0; i < (env ? 1 : 2); i++) {
		if (env)
			snprintf(dir, len, "%s", env);
		else
			snprintf(dir, len, fmt[i], src ? src : ".");
		snprintf(f, sizeof(f), "%s/" TAEF2_WEIGHTS, dir);
		int ok = access(f, R_OK) == 0;
		snprintf(f, sizeof(f), "%s/" TAEF2_LATENTS, dir);
		ok = ok && access(f, R_OK) == 0;
		snprintf(f, sizeof(f), "%s/" TAEF2_TORCH, dir);
		if (ok && access(f, R_OK) == 0)
			return 0;
	}
	snprintf(why, whylen, "real taef2 data not found (%s; set EGR_SHARED_DATA to the folder holding taef2/)",
		 env ? "in $EGR_SHARED_DATA" : "in ../shared/data or shared/data of the source tree");
	return -1;
}

/* PyTorch's frames [8][480][832][3] (uint8 .npy, format 1-3), or NULL with why filled */
static inline uint8_t *taef2_load_torch(const char *dir, char *why, size_t whylen)
{
	const size_t bytes = (size_t)TAEF2_REF_FRAMES * TAEF2_H * TAEF2_W * 3;
	char p[1200], hdr[1024];
	unsigned char pre[12];
	uint8_t *d = NULL;
	uint32_t hl;
	FILE *f;

	snprintf(p, sizeof(p), "%s/" TAEF2_TORCH, dir);
	f = fopen(p, "rb");
	if (!f || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] < 1 || pre[6] > 3)
		goto bad;
	hl = pre[8] | (uint32_t)pre[9] << 8;
	if (pre[6] > 1) {
		if (fread(pre + 10, 1, 2, f) != 2)
			goto bad;
		hl |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
	}
	if (hl >= sizeof(hdr) || fread(hdr, 1, hl, f) != hl)
		goto bad;
	hdr[hl] = 0;
	if (!strstr(hdr, "'descr': '|u1'") || !strstr(hdr, "'fortran_order': False") ||
	    !strstr(hdr, "'shape': (8, 480, 832, 3)"))
		goto bad;
	d = (uint8_t *)malloc(bytes);
	if (!d || fread(d, 1, bytes, f) != bytes)
		goto bad;
	fclose(f);
	return d;
bad:
	snprintf(why, whylen, "%s: not the expected uint8 [8, 480, 832, 3] .npy", p);
	free(d);
	if (f)
		fclose(f);
	return NULL;
}

struct taef2_cmp {
	double within1;		/* share of bytes within one code of PyTorch's */
	double exact;		/* share of bytes equal */
	double psnr_luma;	/* dB, luma Y = 0.299 R + 0.587 G + 0.114 B of both, unrounded */
	int maxd;		/* largest difference, codes */
};

/* one frame of RGB24 (npix pixels) against PyTorch's */
static inline struct taef2_cmp taef2_compare(const uint8_t *got, const uint8_t *ref, size_t npix)
{
	struct taef2_cmp c = { 0, 0, 0, 0 };
	size_t in1 = 0, eq = 0;
	double se = 0;

	for (size_t i = 0; i < npix; i++) {
		const uint8_t *a = got + 3 * i, *b = ref + 3 * i;
		for (int k = 0; k < 3; k++) {
			int d = abs((int)a[k] - (int)b[k]);
			in1 += d <= 1;
			eq += d == 0;
			if (d > c.maxd)
				c.maxd = d;
		}
		double dy = 0.299 * (a[0] - b[0]) + 0.587 * (a[1] - b[1]) + 0.114 * (a[2] - b[2]);
		se += dy * dy;
	}
	c.within1 = (double)in1 / (3.0 * npix);
	c.exact = (double)eq / (3.0 * npix);
	c.psnr_luma = se > 0 ? 10.0 * log10(255.0 * 255.0 / (se / npix)) : 999.0;
	return c;
}

#endif
