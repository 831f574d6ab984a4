/*
 * test_frame: daemon/decode/frame.h against values worked out by hand.
 * latent2rgb's init (channel counts, weight and bias counts, the defaults),
 * the quantiser, a frame's linear map and its x8 bilinear upsampling, the
 * BT.601 limited-range RGB -> I420 conversion (black, white, grey, red,
 * 2x2 chroma means and their rounding, square and non-square even sizes:
 * the header allows even sizes only)
 * and the frame size of each output format.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/vocab.h"
#include "daemon/decode/frame.h"

#include "check.h"
#include "helpers.h"

#define EGR_STR_(x) #x
#define EGR_STR(x) EGR_STR_(x)

static void test_init(void)
{
	static const struct {
		uint32_t channels, nweights;
		const char *msg, *msg2;	/* expected in err (msg2: also, unless NULL) */
	} bad[] = {
		{ 0, 0, "0 latent channels; 1 to " EGR_STR(EGR_L2R_MAX_CHANNELS), NULL },
		{ EGR_L2R_MAX_CHANNELS + 1, 3 * (EGR_L2R_MAX_CHANNELS + 1), EGR_STR(EGR_L2R_MAX_CHANNELS) " are supported", NULL },
		{ 16, 0, "default coefficients exist for 4 only", "(48 values)" },	/* defaults: 4 channels only */
		{ 4, 11, "has 11 values", "needs 12" },	/* weights: 3 per channel */
		{ 4, 13, "has 13 values", NULL },
		{ 16, 47, "needs 48", NULL },
	};
	static const float w16[3 * (EGR_L2R_MAX_CHANNELS + 1)] = { 0.5f };
	const float w2[6] = { 1, 2, 3, 4, 5, 6 }, bias[3] = { 0.25f, -0.5f, 1 };
	struct egr_l2r p;
	char err[512];
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		r = egr_frame_l2r_init(&p, bad[i].channels, bad[i].nweights, w16, 0, NULL, err, sizeof(err));
		CHECK(r == -EINVAL && strstr(err, bad[i].msg) && (!bad[i].msg2 || strstr(err, bad[i].msg2)),
		      "%u channels, %u weights: %d '%s'", bad[i].channels, bad[i].nweights, r, err);
	}

	/* the defaults: SD 1.x coefficients, no bias */
	r = egr_frame_l2r_init(&p, 4, 0, NULL, 0, NULL, err, sizeof(err));
	CHECK(r == 0 && p.channels == 4, "defaults: %d '%s'", r, err);
	CHECK(p.w[0] == 0.3512f && p.w[4] == 0.4974f && p.w[11] == -0.7177f, "default weights %g %g %g", p.w[0], p.w[4],
	      p.w[11]);
	CHECK(p.bias[0] == 0 && p.bias[1] == 0 && p.bias[2] == 0, "default bias not zero");
	/* 16 channels with their 48 weights */
	r = egr_frame_l2r_init(&p, 16, 48, w16, 0, NULL, err, sizeof(err));
	CHECK(r == 0 && p.channels == 16 && p.w[0] == 0.5f && p.w[47] == 0, "16 channels, 48 weights: %d '%s'", r, err);
	/* custom weights and bias are copied */
	r = egr_frame_l2r_init(&p, 2, 6, w2, 1, bias, err, sizeof(err));
	CHECK(r == 0 && p.channels == 2 && !memcmp(p.w, w2, sizeof(w2)) && !memcmp(p.bias, bias, sizeof(bias)),
	      "custom weights and bias: %d '%s'", r, err);
	r = egr_frame_l2r_init(&p, 2, 6, w2, 0, bias, err, sizeof(err));
	CHECK(r == 0 && p.bias[0] == 0 && p.bias[2] == 0, "has_bias 0, yet a bias was taken");
}

static void test_quant(void)
{
	CHECK(egr_quant_u8(-1.0f) == 0, "-1 -> %u", egr_quant_u8(-1.0f));
	CHECK(egr_quant_u8(-7.0f) == 0, "-7 -> %u", egr_quant_u8(-7.0f));
	CHECK(egr_quant_u8(NAN) == 0, "NaN -> %u", egr_quant_u8(NAN));
	CHECK(egr_quant_u8(1.0f) == 255, "1 -> %u", egr_quant_u8(1.0f));
	CHECK(egr_quant_u8(9.0f) == 255, "9 -> %u", egr_quant_u8(9.0f));
	CHECK(egr_quant_u8(0.0f) == 128, "0 -> %u (127.5 rounds up)", egr_quant_u8(0.0f));
	/* (0.35 + 1) * 127.5 = 172.125 -> 172; (-0.125 + 1) * 127.5 = 111.5625 -> 112 */
	CHECK(egr_quant_u8(0.35f) == 172, "0.35 -> %u", egr_quant_u8(0.35f));
	CHECK(egr_quant_u8(-0.125f) == 112, "-0.125 -> %u", egr_quant_u8(-0.125f));
}

/*
 * A 1x1 latent: every one of the 8x8 pixels is the linear map.
 * rgb = bias + 0.5 * w = (0.1 + 0.25, 0 - 0.125, -2 + 0) -> 172, 112, 0 (clamped).
 */
static void test_l2r_single(void)
{
	const float w[3] = { 0.5f, -0.25f, 0.0f }, bias[3] = { 0.1f, 0.0f, -2.0f }, lat = 0.5f;
	struct egr_l2r p;
	uint8_t rgb[8 * 8 * 3];
	char err[256];
	int bad = 0;

	if (egr_frame_l2r_init(&p, 1, 3, w, 1, bias, err, sizeof(err)) < 0) {
		CHECK(0, "init: %s", err);
		return;
	}
	memset(rgb, 0xA5, sizeof(rgb));
	CHECK(egr_frame_l2r(&p, &lat, 1, 1, rgb) == 0, "egr_frame_l2r failed");
	for (int i = 0; i < 64; i++)
		if ((rgb[3 * i] != 172 || rgb[3 * i + 1] != 112 || rgb[3 * i + 2] != 0) && bad++ < 3)
			CHECK(0, "pixel %d = (%u, %u, %u), want (172, 112, 0)", i, rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
}

/*
 * A 1x2 latent, one channel, w = (1, 0, -1): lin = (-1, 0, 1) left, (1, 0, -1)
 * right.  Output column ox samples s = (2 ox - 7) / 16: columns 0..3 are the
 * left value, 12..15 the right one, 4..11 blend with f = (2 ox - 7) / 16, so
 * r = -1 + 2f and b = 1 - 2f (exact in binary32).  Every row is the same.
 */
static void test_l2r_bilinear(void)
{
	const float w[3] = { 1.0f, 0.0f, -1.0f }, lat[2] = { -1.0f, 1.0f };
	struct egr_l2r p;
	uint8_t rgb[8 * 16 * 3];
	char err[256];

	if (egr_frame_l2r_init(&p, 1, 3, w, 0, NULL, err, sizeof(err)) < 0) {
		CHECK(0, "init: %s", err);
		return;
	}
	memset(rgb, 0xA5, sizeof(rgb));
	CHECK(egr_frame_l2r(&p, lat, 1, 2, rgb) == 0, "egr_frame_l2r failed");
	for (int oy = 0; oy < 8; oy++) {
		for (int ox = 0; ox < 16; ox++) {
			float f = ox < 4 ? 0.0f : ox > 11 ? 1.0f : (float)(2 * ox - 7) / 16.0f;
			const uint8_t *px = rgb + (oy * 16 + ox) * 3;
			uint8_t wr = egr_quant_u8(-1.0f + 2.0f * f), wb = egr_quant_u8(1.0f - 2.0f * f);
			CHECK(px[0] == wr && px[1] == 128 && px[2] == wb, "(%d, %d) = (%u, %u, %u), want (%u, 128, %u)", ox, oy,
			      px[0], px[1], px[2], wr, wb);
		}
	}
	/* the same worked out by hand: edges, f = 1/16, 9/16, 15/16 */
	CHECK(rgb[0] == 0 && rgb[2] == 255, "left edge (%u, %u)", rgb[0], rgb[2]);
	CHECK(rgb[4 * 3] == 16 && rgb[4 * 3 + 2] == 239, "column 4 (%u, %u), want (16, 239)", rgb[12], rgb[14]);
	CHECK(rgb[8 * 3] == 143 && rgb[8 * 3 + 2] == 112, "column 8 (%u, %u), want (143, 112)", rgb[24], rgb[26]);
	CHECK(rgb[11 * 3] == 239 && rgb[11 * 3 + 2] == 16, "column 11 (%u, %u), want (239, 16)", rgb[33], rgb[35]);
	CHECK(rgb[15 * 3] == 255 && rgb[15 * 3 + 2] == 0, "right edge (%u, %u)", rgb[45], rgb[47]);
}

static void fill(uint8_t *rgb, size_t px, uint8_t r, uint8_t g, uint8_t b)
{
	for (size_t i = 0; i < px; i++) {
		rgb[3 * i] = r;
		rgb[3 * i + 1] = g;
		rgb[3 * i + 2] = b;
	}
}

/* rgb (w x h) converts to exactly want (w * h * 3 / 2 bytes, at most 24) */
static void check_i420(const char *what, const uint8_t *rgb, uint32_t w, uint32_t h, const uint8_t *want)
{
	uint8_t yuv[24 + 1];
	const uint32_t n = w * h * 3 / 2;

	memset(yuv, 0xA5, sizeof(yuv));
	egr_frame_rgb_to_i420(rgb, w, h, yuv);
	for (uint32_t i = 0; i < n; i++)
		CHECK(yuv[i] == want[i], "%s: byte %u = %u, want %u", what, i, yuv[i], want[i]);
	CHECK(yuv[n] == 0xA5, "%s: wrote past the frame", what);
}

/* one flat 2x2 frame: Y (all four), Cb, Cr */
static void check_flat(const char *what, uint8_t r, uint8_t g, uint8_t b, uint8_t y, uint8_t cb, uint8_t cr)
{
	const uint8_t want[6] = { y, y, y, y, cb, cr };
	uint8_t rgb[12];

	fill(rgb, 4, r, g, b);
	check_i420(what, rgb, 2, 2, want);
}

static void test_i420(void)
{
	/* Y = ((66 R + 129 G + 25 B + 128) >> 8) + 16; grey: chroma 128 */
	check_flat("black", 0, 0, 0, 16, 128, 128);
	check_flat("white", 255, 255, 255, 235, 128, 128);
	check_flat("grey 128", 128, 128, 128, 126, 128, 128);
	check_flat("red", 255, 0, 0, 82, 90, 240);

	/*
	 * 4x2: the left 2x2 block is a black/white checker (chroma of the mean,
	 * grey), the right one red; planes are Y (8), Cb (2), Cr (2).
	 */
	static const uint8_t want[12] = { 235, 16, 82, 82, 16, 235, 82, 82, 128, 90, 128, 240 };
	uint8_t rgb[4 * 2 * 3];
	fill(rgb, 8, 255, 0, 0);
	fill(rgb + 0 * 3, 1, 255, 255, 255);
	fill(rgb + 1 * 3, 1, 0, 0, 0);
	fill(rgb + 4 * 3, 1, 0, 0, 0);
	fill(rgb + 5 * 3, 1, 255, 255, 255);
	check_i420("4x2", rgb, 4, 2, want);

	/*
	 * 2x4 (taller than wide): top block R = 2, 2, 1, 1 (mean 1.5 rounds to 2:
	 * Cr = ((224 + 128) >> 8) + 128 = 129; truncating would give 128), bottom
	 * block grey.  Chroma rows are w/2 = 1 byte apart.
	 */
	static const uint8_t want2[12] = { 17, 17, 16, 16, 126, 126, 126, 126, 128, 128, 129, 128 };
	uint8_t rgb2[2 * 4 * 3];
	memset(rgb2, 0, sizeof(rgb2));
	rgb2[0] = 2;
	rgb2[3] = 2;
	rgb2[6] = 1;
	rgb2[9] = 1;
	fill(rgb2 + 4 * 3, 4, 128, 128, 128);
	check_i420("2x4", rgb2, 2, 4, want2);
}

/*
 * 4x4, each 2x2 block with one primary at 2 in its top row and 1 in its
 * bottom row (mean 1.5, rounds to 2), except the last block (red).  With the
 * rounding, R = 2: Cr = ((224 + 128) >> 8) + 128 = 129; G = 2: Cb = Cr =
 * ((-148 or -188) + 128) >> 8 = -1 -> 127; B = 2: Cb = 129 (truncated
 * means give 128 everywhere).  Chroma is 2x2 here: rows are w/2 apart.
 */
static void test_i420_rounding(void)
{
	static const uint8_t want[24] = {
		17, 17, 17, 17,	/* Y: R=2 R=2 G=2 G=2 */
		16, 16, 17, 17,	/*    R=1 R=1 G=1 G=1 */
		16, 16, 82, 82,	/*    B=2 B=2 red red */
		16, 16, 82, 82,	/*    B=1 B=1 red red */
		128, 127, 129, 90,	/* Cb */
		129, 127, 128, 240,	/* Cr */
	};
	uint8_t rgb[4 * 4 * 3];

	memset(rgb, 0, sizeof(rgb));
	for (int y = 0; y < 4; y++) {
		for (int x = 0; x < 4; x++) {
			uint8_t *px = rgb + (y * 4 + x) * 3;
			int c = (y / 2) * 2 + x / 2;	/* block: 0 R, 1 G, 2 B, 3 red */
			if (c == 3)
				px[0] = 255;
			else
				px[c] = (uint8_t)(y % 2 ? 1 : 2);
		}
	}
	check_i420("4x4 rounding", rgb, 4, 4, want);
}

static void test_bytes(void)
{
	CHECK(egr_frame_bytes(EGR_FMT_Y4M, 512, 384) == 512 * 384 * 3 / 2, "y4m 512x384: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_Y4M, 512, 384));
	CHECK(egr_frame_bytes(EGR_FMT_PNG, 512, 384) == 512 * 384 * 3, "png 512x384: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_PNG, 512, 384));
	CHECK(egr_frame_bytes(EGR_FMT_Y4M, 2, 2) == 6, "y4m 2x2: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_Y4M, 2, 2));
	CHECK(egr_frame_bytes(EGR_FMT_Y4M, 8, 16) == 8 * 16 + 2 * 4 * 8, "y4m 8x16: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_Y4M, 8, 16));
	CHECK(egr_frame_bytes(EGR_FMT_PNG, 8, 16) == 8 * 16 * 3, "png 8x16: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_PNG, 8, 16));
	/* 64-bit arithmetic: 2^17 x 2^16 pixels, and each chroma plane alone is 2^31 bytes */
	CHECK(egr_frame_bytes(EGR_FMT_Y4M, 131072, 65536) == 12884901888ull, "y4m 131072x65536: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_Y4M, 131072, 65536));
	CHECK(egr_frame_bytes(EGR_FMT_PNG, 131072, 65536) == 25769803776ull, "png 131072x65536: %llu",
	      (unsigned long long)egr_frame_bytes(EGR_FMT_PNG, 131072, 65536));
}

int main(void)
{
	test_init();
	test_quant();
	test_l2r_single();
	test_l2r_bilinear();
	test_i420();
	test_i420_rounding();
	test_bytes();
	return test_result("test_frame");
}
