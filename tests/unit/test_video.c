/*
 * test_video: daemon/formats/video.c.  Segments encoded alone and muxed give
 * one stream with every frame once, on the frame grid, with constant-rate
 * decode timestamps; the same segment encoded twice is the same bytes (also
 * with another encode in between); the muxer refuses a segment with the
 * wrong frame count or another codec setup; a full disk (/dev/full) is an
 * error naming the file; a codec missing from libavcodec is refused naming
 * what is there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "config/job.h"
#include "daemon/formats/video.h"

#include "check.h"
#include "helpers.h"

enum { W = 64, H = 48, FB = W * H * 3 / 2 };

static char dir[64];

static void spec_init(struct egr_jobspec *js, uint32_t format, uint32_t codec)
{
	memset(js, 0, sizeof(*js));
	js->format = format;
	js->codec = codec;
	js->fps_num = 30000;
	js->fps_den = 1001;
	js->gop = 6;
	js->threads = 1;
	js->pix_fmt = EGR_PIX_YUV420P;
	if (codec != EGR_CODEC_FFV1) {
		js->crf = 23;
		snprintf(js->preset, sizeof(js->preset), "veryfast");
	}
}

/* frame i of a moving gradient */
static void frame(uint8_t *f, uint32_t i)
{
	for (int p = 0; p < FB; p++)
		f[p] = (uint8_t)(p < W * H ? (uint32_t)(p % W * 3 + p / W) + i * 5 : 128 + ((uint32_t)p + i) % 7);
}

/* Encode frames first .. first+n-1 into path.  0 or -errno. */
static int encode(const struct egr_jobspec *js, const char *path, uint32_t first, uint32_t n, char *err,
		  size_t errlen)
{
	struct egr_video_enc *e = NULL;
	uint8_t f[FB];
	int rc = egr_video_enc_open(&e, js, W, H, path, err, errlen);

	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		frame(f, first + i);
		rc = egr_video_enc_frame(e, f, err, errlen);
	}
	if (rc == 0)
		rc = egr_video_enc_finish(e, err, errlen);
	egr_video_enc_free(e);
	return rc;
}

static void seg_name(char *buf, size_t len, const char *tag, int k)
{
	snprintf(buf, len, "%s/%s.%d", dir, tag, k);
}

/*
 * frames, pts set 0..n-1 and (MP4; Matroska keeps no dts and counts in ms)
 * dts steps of one frame in the muxed file
 */
static void check_muxed(const char *path, uint32_t frames, int mp4, const char *what)
{
	AVFormatContext *in = NULL;
	AVPacket *p = av_packet_alloc();
	uint8_t seen[64] = { 0 };
	int64_t last_dts = INT64_MIN, step = -1;
	uint32_t n = 0, dts_steps_ok = 1;

	CHECK(avformat_open_input(&in, path, NULL, NULL) == 0, "%s: open %s", what, path);
	if (!in) {
		av_packet_free(&p);
		return;
	}
	AVRational tb = in->streams[0]->time_base, ftb = { 1001, 30000 };
	while (av_read_frame(in, p) >= 0) {
		int64_t f = av_rescale_q(p->pts, tb, ftb);
		if (f >= 0 && f < 64)
			seen[f]++;
		if (last_dts != INT64_MIN && p->dts != AV_NOPTS_VALUE) {
			if (step < 0)
				step = p->dts - last_dts;
			dts_steps_ok &= p->dts - last_dts == step;
		}
		last_dts = p->dts;
		n++;
		av_packet_unref(p);
	}
	for (uint32_t i = 0; i < frames; i++)
		CHECK(seen[i] == 1, "%s: frame %u seen %u times", what, i, seen[i]);
	CHECK(n == frames, "%s: %u packets, expected %u", what, n, frames);
	CHECK(dts_steps_ok || !mp4, "%s: decode timestamps are not one frame apart", what);
	avformat_close_input(&in);
	av_packet_free(&p);
}

/* segments of 6, 6 and 3 frames, muxed */
static int mux(const struct egr_jobspec *js, const char *tag, const char *out, char *err, size_t errlen)
{
	struct egr_video_mux *m = NULL;
	char seg[128];
	int rc;

	seg_name(seg, sizeof(seg), tag, 0);
	rc = egr_video_mux_open(&m, js, out, seg, err, errlen);
	for (int k = 0; rc == 0 && k < 3; k++) {
		seg_name(seg, sizeof(seg), tag, k);
		rc = egr_video_mux_add(m, seg, (uint64_t)k * 6, k == 2 ? 3 : 6, err, errlen);
	}
	if (rc == 0)
		rc = egr_video_mux_finish(m, err, errlen);
	egr_video_mux_free(m);
	return rc;
}

static void test_round_trip(uint32_t format, uint32_t codec, const char *tag)
{
	struct egr_jobspec js;
	char seg[128], out[128], err[512] = "";
	int rc = 0;

	spec_init(&js, format, codec);
	for (int k = 0; rc == 0 && k < 3; k++) {
		seg_name(seg, sizeof(seg), tag, k);
		rc = encode(&js, seg, (uint32_t)k * 6, k == 2 ? 3 : 6, err, sizeof(err));
	}
	CHECK(rc == 0, "%s: encode: %d %s", tag, rc, err);
	snprintf(out, sizeof(out), "%s/%s.out", dir, tag);
	rc = mux(&js, tag, out, err, sizeof(err));
	CHECK(rc == 0, "%s: mux: %d %s", tag, rc, err);
	if (rc == 0)
		check_muxed(out, 15, format == EGR_FMT_MP4, tag);
}

/* the two files hold the same bytes */
static int same_bytes(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca = 0, same = fa && fb;

	while (same && ca != EOF) {
		ca = fgetc(fa);
		same = ca == fgetc(fb);
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

static void test_deterministic(void)
{
	struct egr_jobspec js;
	char a[128], b[128], c[128], err[512] = "";

	spec_init(&js, EGR_FMT_MP4, EGR_CODEC_H264);
	seg_name(a, sizeof(a), "det", 0);
	seg_name(b, sizeof(b), "det", 1);
	seg_name(c, sizeof(c), "det", 2);
	CHECK(encode(&js, a, 6, 6, err, sizeof(err)) == 0 && encode(&js, c, 0, 6, err, sizeof(err)) == 0 &&
		      encode(&js, b, 6, 6, err, sizeof(err)) == 0,
	      "encodes: %s", err);
	CHECK(same_bytes(a, b), "one segment encoded twice (another between): different bytes");
}

static void test_refusals(void)
{
	struct egr_jobspec js, other;
	struct egr_video_mux *m = NULL;
	char seg[128], out[128], err[512] = "";
	int rc;

	/* segment 1 of "h264" (6 frames) given as 5 frames */
	spec_init(&js, EGR_FMT_MP4, EGR_CODEC_H264);
	seg_name(seg, sizeof(seg), "h264", 1);
	snprintf(out, sizeof(out), "%s/refused.mp4", dir);
	rc = egr_video_mux_open(&m, &js, out, seg, err, sizeof(err));
	CHECK(rc == 0, "mux_open: %s", err);
	rc = m ? egr_video_mux_add(m, seg, 6, 5, err, sizeof(err)) : -1;
	CHECK(rc == -EIO && strstr(err, "holds more than 5 frames, expected 5"), "wrong frame count: %d %s", rc, err);
	/* a segment of another codec setup (crf) */
	spec_init(&other, EGR_FMT_MP4, EGR_CODEC_H264);
	other.crf = 30;
	seg_name(seg, sizeof(seg), "other", 0);
	CHECK(encode(&other, seg, 0, 6, err, sizeof(err)) == 0, "encode other: %s", err);
	rc = m ? egr_video_mux_add(m, seg, 0, 6, err, sizeof(err)) : -1;
	CHECK(rc == -EIO && strstr(err, "was encoded with another codec setup"), "other setup: %d %s", rc, err);
	egr_video_mux_free(m);

	/* a full disk */
	if (access("/dev/full", W_OK) == 0) {
		rc = encode(&js, "/dev/full", 0, 6, err, sizeof(err));
		CHECK(rc == -ENOSPC && strstr(err, "\"/dev/full\"): No space left on device"), "/dev/full: %d %s", rc,
		      err);
		seg_name(seg, sizeof(seg), "h264", 0);
		rc = egr_video_mux_open(&m, &js, "/dev/full", seg, err, sizeof(err));
		for (int k = 0; rc == 0 && k < 3; k++) {
			seg_name(seg, sizeof(seg), "h264", k);
			rc = egr_video_mux_add(m, seg, (uint64_t)k * 6, k == 2 ? 3 : 6, err, sizeof(err));
		}
		if (rc == 0)
			rc = egr_video_mux_finish(m, err, sizeof(err));
		egr_video_mux_free(m);
		m = NULL;
		CHECK(rc < 0 && strstr(err, "/dev/full"), "mux to /dev/full: %d %s", rc, err);
	}

	/* a codec this libavcodec lacks (the test build's hook plays it) */
	setenv("EGR_VIDEO_HIDE", "hevc", 1);
	spec_init(&js, EGR_FMT_MKV, EGR_CODEC_HEVC);
	rc = egr_video_check(&js, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "codec = hevc: this libavcodec has no libx265 encoder") &&
		      strstr(err, "codecs available: h264 (libx264)") && !strstr(err, "hevc (libx265)"),
	      "hidden hevc: %d %s", rc, err);
	rc = encode(&js, "/dev/null", 0, 1, err, sizeof(err));
	CHECK(rc == -ENOENT, "encoding hidden hevc: %d %s", rc, err);
	unsetenv("EGR_VIDEO_HIDE");
	CHECK(egr_video_check(&js, err, sizeof(err)) == 0 || strstr(err, "no libx265"), "hevc: %s", err);
}

int main(void)
{
	char codecs[256], err[512];
	struct egr_jobspec js;

	spec_init(&js, EGR_FMT_MP4, EGR_CODEC_H264);
	egr_video_codecs(codecs, sizeof(codecs));
	printf("codecs: %s\n", codecs);
	if (egr_video_check(&js, err, sizeof(err)) < 0) {
		printf("skip: %s\n", err);
		return 77;
	}
	test_tmpdir(dir, sizeof(dir), "egr-test-video");
	test_round_trip(EGR_FMT_MP4, EGR_CODEC_H264, "h264");
	test_round_trip(EGR_FMT_MKV, EGR_CODEC_FFV1, "ffv1");
	test_deterministic();
	test_refusals();
	test_rmtree(dir);
	return test_result("test_video");
}
