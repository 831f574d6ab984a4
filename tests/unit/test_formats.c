/*
 * test_out: y4m header and offsets, PNG names, and a PNG round trip checked
 * by two decoders: libpng's reader and, independently, ffmpeg (skipped with
 * a note when ffmpeg is missing).  Prints the encode speed for a 512x512
 * latent2rgb frame (information, not a check).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "daemon/decode/frame.h"
#include "daemon/base/log.h"
#include "daemon/formats/y4m.h"
#include "daemon/formats/png.h"

#include "check.h"
#define TEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "helpers.h"

static void test_y4m(void)
{
	char buf[128];
	const char *want = "YUV4MPEG2 W512 H384 F30000:1001 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n";
	int n = egr_y4m_header(buf, sizeof(buf), 512, 384, 30000, 1001);

	CHECK(n == (int)strlen(want), "header length %d, want %zu", n, strlen(want));
	CHECK(n > 0 && strcmp(buf, want) == 0, "header '%s'", buf);
	n = egr_y4m_header(buf, sizeof(buf), 64, 64, 24, 1);
	CHECK(n > 0 && strcmp(buf, "YUV4MPEG2 W64 H64 F24:1 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n") == 0,
	      "header '%s'", buf);
	/* exactly the length without room for the NUL is too small */
	CHECK(egr_y4m_header(buf, strlen(want), 512, 384, 30000, 1001) == -ENOSPC, "short buffer accepted");
	CHECK(egr_y4m_header(buf, (size_t)strlen(want) + 1, 512, 384, 30000, 1001) == (int)strlen(want),
	      "exact buffer refused");

	/* header, then per frame 6 bytes of tag and the frame */
	uint64_t fb = 512 * 384 * 3 / 2;
	CHECK(egr_y4m_frame_off(71, fb, 0) == 71, "frame 0 offset");
	CHECK(egr_y4m_frame_off(71, fb, 1) == 71 + 6 + fb, "frame 1 offset");
	CHECK(egr_y4m_frame_off(71, fb, 100000) == 71 + 100000ull * (6 + fb), "frame 100000 offset (64-bit)");
}

static void test_names(void)
{
	char buf[64];

	egr_png_name(buf, sizeof(buf), 0);
	CHECK(strcmp(buf, "frame_000001.png") == 0, "name(0) '%s'", buf);
	egr_png_name(buf, sizeof(buf), 41);
	CHECK(strcmp(buf, "frame_000042.png") == 0, "name(41) '%s'", buf);
	egr_png_name(buf, sizeof(buf), 1234567);
	CHECK(strcmp(buf, "frame_1234568.png") == 0, "name(1234567) '%s'", buf);
}

/* libpng's simplified reader, to RGB24 */
static int decode_libpng(const void *png, size_t len, uint32_t w, uint32_t h, uint8_t *rgb)
{
	png_image img;

	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&img, png, len)) {
		CHECK(0, "libpng read: %s", img.message);
		return -1;
	}
	CHECK(img.width == w && img.height == h, "libpng: %ux%u, want %ux%u", img.width, img.height, w, h);
	CHECK(img.format == PNG_FORMAT_RGB, "libpng: format 0x%x, want RGB", img.format);
	img.format = PNG_FORMAT_RGB;
	if (img.width != w || img.height != h || !png_image_finish_read(&img, NULL, rgb, 0, NULL)) {
		png_image_free(&img);
		return -1;
	}
	return 0;
}

/* ffmpeg, through a file and a pipe: 0, -1 on a mismatch, 1 when unavailable */
static int decode_ffmpeg(const void *png, size_t len, size_t want, uint8_t *rgb)
{
	char path[] = "/tmp/test_out.XXXXXX.png", cmd[256];
	int fd;
	FILE *p;
	size_t got;

	if (system("ffmpeg -version >/dev/null 2>&1") != 0)
		return 1;
	fd = mkstemps(path, 4);
	if (fd < 0 || write(fd, png, len) != (ssize_t)len) {
		CHECK(0, "temp png: %s", strerror(errno));
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -i %s -f rawvideo -pix_fmt rgb24 -", path);
	p = popen(cmd, "r");
	if (!p) {
		unlink(path);
		return 1;
	}
	got = fread(rgb, 1, want, p);
	/* anything past the frame is an error too */
	uint8_t extra;
	size_t more = fread(&extra, 1, 1, p);
	int st = pclose(p);
	unlink(path);
	CHECK(st == 0, "ffmpeg exit status 0x%x", st);
	CHECK(got == want && more == 0, "ffmpeg gave %zu%s bytes, want %zu", got, more ? "+" : "", want);
	return st == 0 && got == want && more == 0 ? 0 : -1;
}

static void roundtrip(const char *what, const uint8_t *rgb, uint32_t w, uint32_t h, int with_ffmpeg)
{
	void *png;
	size_t len, n = (size_t)w * h * 3;
	char err[256];
	uint8_t *back = malloc(n);

	int ret = egr_png_encode(rgb, w, h, &png, &len, err, sizeof(err));
	CHECK(ret == 0, "%s: encode: %d %s", what, ret, err);
	if (ret)
		goto out;
	CHECK(len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0, "%s: no PNG signature", what);

	memset(back, 0, n);
	if (decode_libpng(png, len, w, h, back) == 0)
		CHECK(memcmp(back, rgb, n) == 0, "%s: libpng decode differs", what);
	if (with_ffmpeg) {
		memset(back, 0, n);
		ret = decode_ffmpeg(png, len, n, back);
		if (ret == 1)
			printf("note: ffmpeg not found: independent PNG decode skipped\n");
		else if (ret == 0)
			CHECK(memcmp(back, rgb, n) == 0, "%s: ffmpeg decode differs", what);
	}
	free(png);
out:
	free(back);
}

/* A frame like the ones egressd writes: latent2rgb of smooth random latents */
static uint8_t *l2r_frame(uint32_t w, uint32_t h)
{
	struct egr_l2r p;
	char err[256];
	uint32_t lw = w / 8, lh = h / 8;
	float *lat = malloc(sizeof(float) * 4 * lw * lh);
	uint8_t *rgb = malloc((size_t)w * h * 3);

	if (egr_frame_l2r_init(&p, 4, 0, NULL, 0, NULL, err, sizeof(err)) < 0) {
		CHECK(0, "egr_frame_l2r_init: %s", err);
		return NULL;
	}
	for (uint32_t i = 0; i < 4 * lw * lh; i++)
		lat[i] = ((float)(rnd() % 2001) - 1000.0f) / 400.0f;
	if (egr_frame_l2r(&p, lat, lh, lw, rgb) < 0) {
		CHECK(0, "egr_frame_l2r failed");
		free(rgb);
		rgb = NULL;
	}
	free(lat);
	return rgb;
}

static void test_png(void)
{
	uint32_t w = 96, h = 40;
	uint8_t *rgb = malloc((size_t)w * h * 3);
	void *png;
	size_t len;
	char err[256];

	for (size_t i = 0; i < (size_t)w * h * 3; i++)
		rgb[i] = (uint8_t)rnd();
	roundtrip("random 96x40", rgb, w, h, 1);
	roundtrip("random 1x1", rgb, 1, 1, 0);
	roundtrip("random 3x517", rgb, 3, 517, 0);
	free(rgb);

	rgb = l2r_frame(512, 512);
	if (rgb) {
		roundtrip("latent2rgb 512x512", rgb, 512, 512, 1);
		/* speed, for the record */
		int reps = 20;
		size_t total = 0;
		unsigned long long t0 = egr_log_now_ns();
		for (int i = 0; i < reps; i++) {
			if (egr_png_encode(rgb, 512, 512, &png, &len, err, sizeof(err)) == 0) {
				total += len;
				free(png);
			}
		}
		double ms = (double)(egr_log_now_ns() - t0) / 1e6 / reps;
		printf("info: png encode 512x512 latent2rgb frame: %.2f ms/frame (%.0f frames/s), %.0f%% of raw size\n",
		       ms, 1000.0 / ms, 100.0 * (double)total / reps / (512.0 * 512 * 3));
		free(rgb);
	}

	CHECK(egr_png_encode((const uint8_t *)"", 0, 10, &png, &len, err, sizeof(err)) == -EINVAL,
	      "width 0 accepted");
	CHECK(png == NULL && len == 0, "outputs not cleared on error");

	/* libpng refuses rows this wide: its error path (longjmp) must clean up */
	uint8_t *wide = calloc(2000000, 3);
	err[0] = '\0';
	int ret = egr_png_encode(wide, 2000000, 1, &png, &len, err, sizeof(err));
	CHECK(ret == -EIO && png == NULL, "libpng error not reported: %d", ret);
	CHECK(strstr(err, "png_encode(2000000x1): ") == err && strlen(err) > 24, "error text '%s'", err);
	free(wide);
}

int main(void)
{
	test_y4m();
	test_names();
	test_png();
	return failures ? 1 : 0;
}
