/*
 * test_job: job files.  A good job parses to the expected spec, defaults
 * included; each kind of bad input is refused with the file, the line where
 * there is one, the key and a reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/conf.h"
#include "config/job.h"
#include "config/l2r_preset.h"
#include "daemon/decode/taehv.h"

#include "check.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static char dir[64];

static const char *job_file(const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/job.ini", dir);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		printf("%s:%d: cannot write %s\n", __FILE__, __LINE__, path);
		exit(1);
	}
	return path;
}

static void test_good(void)
{
	struct egr_jobspec js;
	char err[512] = "";
	int r, i;

	r = egr_job_parse(job_file("; a full job\n"
				   "[job]\n"
				   "latents = /data/clip.npy\n"
				   "output = /data/out dir/clip.y4m   ; blanks inside a path are fine\n"
				   "format = y4m\n"
				   "decoder = latent2rgb\n"
				   "fps = 30000/1001\n"
				   "chunk_frames = 1024\n"
				   "l2r_weights = 0.35,0.23, 0.32 ,0.325,0.497,0.235,-0.283,0.176,0.272,-0.212,-0.2616,-7.177e-1\n"
				   "l2r_bias = 0, +0.5, -1e-3\n"),
			  &js, err, sizeof(err));
	CHECK(r == 0, "full job: %d %s", r, err);
	CHECK(!strcmp(js.latents, "/data/clip.npy"), "latents '%s'", js.latents);
	CHECK(!strcmp(js.output, "/data/out dir/clip.y4m"), "output '%s'", js.output);
	CHECK(js.weights[0] == '\0', "weights '%s'", js.weights);
	CHECK(js.format == EGR_FMT_Y4M, "format %u", js.format);
	CHECK(js.decoder == EGR_DEC_LATENT2RGB, "decoder %u", js.decoder);
	CHECK(js.fps_num == 30000 && js.fps_den == 1001, "fps %u/%u", js.fps_num, js.fps_den);
	CHECK(js.chunk_frames == 1024, "chunk_frames %u", js.chunk_frames);
	CHECK(js.l2r_nweights == 12, "l2r_nweights %u", js.l2r_nweights);
	static const float w[12] = { 0.35f,   0.23f,  0.32f,  0.325f, 0.497f,   0.235f,
				     -0.283f, 0.176f, 0.272f, -0.212f, -0.2616f, -0.7177f };
	for (i = 0; i < 12; i++)
		CHECK(js.l2r_weights[i] == w[i], "l2r_weights[%d] = %g", i, js.l2r_weights[i]);
	CHECK(js.l2r_has_bias == 1 && js.l2r_bias[0] == 0.0f && js.l2r_bias[1] == 0.5f && js.l2r_bias[2] == -1e-3f,
	      "l2r_bias %d %g %g %g", js.l2r_has_bias, js.l2r_bias[0], js.l2r_bias[1], js.l2r_bias[2]);

	/* the minimum, and the defaults */
	memset(&js, 0xa5, sizeof(js));
	r = egr_job_parse(job_file("[job]\nlatents=/a.npy\noutput=/frames\nformat=png\n"), &js, err, sizeof(err));
	CHECK(r == 0, "minimal job: %d %s", r, err);
	CHECK(js.format == EGR_FMT_PNG && js.decoder == EGR_DEC_LATENT2RGB, "format %u decoder %u", js.format,
	      js.decoder);
	CHECK(js.fps_num == 24 && js.fps_den == 1, "default fps %u/%u", js.fps_num, js.fps_den);
	CHECK(js.chunk_frames == 8, "default chunk_frames %u", js.chunk_frames);
	CHECK(js.l2r_nweights == 0 && js.l2r_has_bias == 0 && js.weights[0] == '\0', "l2r defaults not clear");

	r = egr_job_parse(job_file("[job]\nlatents=/a.npy\noutput=/o.y4m\nformat=y4m\ndecoder=taesd\n"
				   "weights=/w/taesd_decoder.safetensors\nfps=1000000\nchunk_frames=1\n"),
			  &js, err, sizeof(err));
	CHECK(r == 0, "taesd job: %d %s", r, err);
	CHECK(js.decoder == EGR_DEC_TAESD && !strcmp(js.weights, "/w/taesd_decoder.safetensors"), "taesd: %u '%s'",
	      js.decoder, js.weights);
	CHECK(js.fps_num == 1000000 && js.fps_den == 1 && js.chunk_frames == 1, "fps %u/%u chunk %u", js.fps_num,
	      js.fps_den, js.chunk_frames);

	/* format = null: output optional (ignored when given) */
	memset(&js, 0xa5, sizeof(js));
	r = egr_job_parse(job_file("[job]\nlatents=/a.npy\nformat=null\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.format == EGR_FMT_NULL && js.output[0] == '\0', "null job without output: %d %s", r, err);
	r = egr_job_parse(job_file("[job]\nlatents=/a.npy\noutput=/o.y4m\nformat=null\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.format == EGR_FMT_NULL, "null job with output: %d %s", r, err);
	CHECK(!strcmp(egr_job_format_name(EGR_FMT_NULL), "null"), "format name null");

	/* 384 weights: 128 channels, the most */
	static char text[8192];
	snprintf(text, sizeof(text), "[job]\nlatents=/a.npy\noutput=/o\nformat=png\nl2r_weights=");
	for (i = 0; i < 384; i++)
		strcat(text, i ? ",-0.012345" : "1");
	strcat(text, "\n");
	r = egr_job_parse(job_file(text), &js, err, sizeof(err));
	CHECK(r == 0 && js.l2r_nweights == 384 && js.l2r_weights[383] == -0.012345f, "384 weights: %d %u %s", r,
	      js.l2r_nweights, err);

	CHECK(!strcmp(egr_job_format_name(EGR_FMT_Y4M), "y4m") && !strcmp(egr_job_format_name(EGR_FMT_PNG), "png"),
	      "format names");
	CHECK(!strcmp(egr_job_decoder_name(EGR_DEC_LATENT2RGB), "latent2rgb") &&
		      !strcmp(egr_job_decoder_name(EGR_DEC_TAESD), "taesd"),
	      "decoder names");
	CHECK(!strcmp(egr_job_format_name(0), "?") && !strcmp(egr_job_decoder_name(99), "?"), "unknown names");
	CHECK(!strcmp(egr_job_layout_name(EGR_LAYOUT_AUTO), "auto") && !strcmp(egr_job_layout_name(EGR_LAYOUT_TCHW), "tchw") &&
		      !strcmp(egr_job_layout_name(EGR_LAYOUT_BCTHW), "bcthw") &&
		      !strcmp(egr_job_layout_name(EGR_LAYOUT_BTCHW), "btchw") && !strcmp(egr_job_layout_name(9), "?"),
	      "layout names");
}

#define HEAD "[job]\nlatents = /a.npy\noutput = /o.y4m\nformat = y4m\n"	/* 4 lines */
#define VHEAD "[job]\nlatents = /a.npy\noutput = /o.mp4\nformat = mp4\n"	/* 4 lines */
#define MHEAD "[job]\nlatents = /a.npy\noutput = /o.mkv\nformat = mkv\n"	/* 4 lines */

static const struct {
	const char *text;
	const char *want;	/* after "<path>:" */
} bad_cases[] = {
	{ "[job]\nlatents = /a.npy\nfsp = 24\n", "3: unknown key 'fsp' in [job]" },
	{ HEAD "[jobs]\nfps = 24\n", "6: unknown section [jobs] (key 'fps')" },
	{ "fps = 24\n" HEAD, "1: key 'fps' is outside [job]" },
	{ HEAD "latents = /b.npy\n", "5: duplicate key 'latents' in [job]" },
	{ HEAD "fps =\n", "5: [job] fps: empty value" },
	{ HEAD "decoder = ; comment only\n", "5: [job] decoder: empty value" },
	{ "[job]\nlatents = a.npy\n", "2: [job] latents: 'a.npy' is not an absolute path" },
	{ "[job]\noutput = ./o.y4m\n", "2: [job] output: './o.y4m' is not an absolute path" },
	{ HEAD "decoder = taesd\nweights = w.safetensors\n", "6: [job] weights: 'w.safetensors' is not an absolute path" },
	{ "[job]\nformat = avi\n", "2: [job] format: 'avi' is not one of: y4m, png" },
	{ "[job]\ndecoder = vae\n", "2: [job] decoder: 'vae' is not one of: latent2rgb, taesd" },
	{ HEAD "fps = 0\n", "5: [job] fps: '0' is out of range (each number 1..1000000)" },
	{ HEAD "fps = 1000001\n", "5: [job] fps: '1000001' is out of range" },
	{ HEAD "fps = 99999999999999999999999\n", "5: [job] fps: '99999999999999999999999' is out of range" },
	{ HEAD "fps = abcdefghijklmnopqrstuvwxyz\n", "5: [job] fps: 'abcdefghijklmnopqrstuvwxyz' is not a frame rate" },
	{ HEAD "chunk_frames = 99999999999999999999999999\n", "5: [job] chunk_frames: 99999999999999999999999999 is out of range" },
	{ HEAD "fps = 30/0\n", "5: [job] fps: '30/0' is out of range" },
	{ HEAD "fps = 0/1\n", "5: [job] fps: '0/1' is out of range" },
	{ HEAD "fps = -24\n", "5: [job] fps: '-24' is not a frame rate" },
	{ HEAD "fps = 23.976\n", "5: [job] fps: '23.976' is not a frame rate" },
	{ HEAD "fps = 30000/1001/2\n", "5: [job] fps: '30000/1001/2' is not a frame rate" },
	{ HEAD "fps = /1001\n", "5: [job] fps: '/1001' is not a frame rate" },
	{ HEAD "fps = 30 / 1\n", "5: [job] fps: '30 / 1' is not a frame rate" },
	{ HEAD "chunk_frames = 0\n", "5: [job] chunk_frames: 0 is out of range (1..1024)" },
	{ HEAD "chunk_frames = 1025\n", "5: [job] chunk_frames: 1025 is out of range (1..1024)" },
	{ HEAD "chunk_frames = 8x\n", "5: [job] chunk_frames: '8x' is not a number" },
	{ HEAD "l2r_weights = 1,2,nan\n", "5: [job] l2r_weights: value 3 ('nan') is not a number" },
	{ HEAD "l2r_weights = 1,inf,2\n", "5: [job] l2r_weights: value 2 ('inf') is not a number" },
	{ HEAD "l2r_weights = 1,1e39,2\n", "5: [job] l2r_weights: value 2 ('1e39') is not a finite float" },
	{ HEAD "l2r_weights = 1,,2\n", "5: [job] l2r_weights: value 2 ('') is not a number" },
	{ HEAD "l2r_weights = 1,2,3,\n", "5: [job] l2r_weights: value 4 ('') is not a number" },
	{ HEAD "l2r_weights = 1,2,3..4\n", "5: [job] l2r_weights: value 3 ('3..4') is not a finite float" },
	{ HEAD "l2r_weights = 1,2 3,4\n", "5: [job] l2r_weights: value 2 ('2 3') is not a number" },
	{ HEAD "l2r_weights = 0x1p3,1,2\n", "5: [job] l2r_weights: value 1 ('0x1p3') is not a number" },
	{ HEAD "l2r_weights = 1,2,3,4\n", "5: [job] l2r_weights: 4 values; it needs 3 (r, g, b) per latent channel" },
	{ HEAD "l2r_bias = 0,0\n", "5: [job] l2r_bias: 2 values; it needs 3 (r, g, b)" },
	{ HEAD "l2r_bias = 0,0,0,0\n", "5: [job] l2r_bias: more than 3 values" },
	{ HEAD "l2r_bias = 0,nan,0\n", "5: [job] l2r_bias: value 2 ('nan') is not a number" },
	{ HEAD "layout = cthw\n", "5: [job] layout: 'cthw' is not one of: tchw, bcthw, btchw" },
	{ HEAD "layout = BCTHW\n", "5: [job] layout: 'BCTHW' is not one of" },
	{ HEAD "layout = tchw\nlayout = bcthw\n", "6: duplicate key 'layout' in [job]" },
	{ HEAD "l2r_preset = sd1.5\n", "5: [job] l2r_preset: 'sd1.5' is not one of: sd15, sdxl, sd3, flux, flux2, "
				  "wan21, wan22, hunyuan, hunyuan15, mochi, ltxv, cosmos1" },
	{ "[job]\nlatents\n", "2: syntax error" },
	{ VHEAD "codec = vp9\n", "5: [job] codec: 'vp9' is not one of: h264, hevc, av1, ffv1" },
	{ VHEAD "pix_fmt = yuv444p\n", "5: [job] pix_fmt: 'yuv444p' is not one of: yuv420p" },
	{ VHEAD "bitrate = 4X\n", "5: [job] bitrate: '4X' is not a bit rate" },
	{ VHEAD "bitrate = 4Mb\n", "5: [job] bitrate: '4Mb' is not a bit rate" },
	{ VHEAD "bitrate = 999\n", "5: [job] bitrate: 999 is out of range" },
	{ VHEAD "bitrate = 11G\n", "5: [job] bitrate: 11G is out of range" },
	{ VHEAD "gop = 0\n", "5: [job] gop: 0 is out of range (1..100000)" },
	{ VHEAD "threads = 65\n", "5: [job] threads: 65 is out of range (1..64)" },
	{ VHEAD "crf = 70\n", "5: [job] crf: 70 is out of range (0..63" },
	{ VHEAD "crf = -1\n", "5: [job] crf: -1 is out of range" },
	{ VHEAD "preset = Fast\n", "5: [job] preset: 'Fast' is not a preset name" },
	/* checks across keys name the file only */
	{ "[job]\noutput = /o.y4m\nformat = y4m\n", " missing key 'latents' in [job]" },
	{ "[job]\nlatents = /a.npy\nformat = y4m\n", " missing key 'output' in [job]" },
	{ "[job]\nlatents = /a.npy\noutput = /o.y4m\n", " missing key 'format' in [job]" },
	{ "", " missing key 'latents' in [job]" },
	{ HEAD "decoder = taesd\n", " [job] decoder = taesd needs weights = " },
	{ HEAD "weights = /w.safetensors\n",
	  " [job] weights applies to decoder = taesd, taehv and wan_vae only (decoder is latent2rgb)" },
	{ HEAD "decoder = latent2rgb\nweights = /w.safetensors\n",
	  " [job] weights applies to decoder = taesd, taehv and wan_vae only" },
	/* the video decoders */
	{ HEAD "decoder = taehv\ntaehv_model = wan21\n", " [job] decoder = taehv needs weights = " },
	{ HEAD "decoder = wan_vae\n", " [job] decoder = wan_vae needs weights = " },
	{ HEAD "decoder = taehv\nweights = /w.safetensors\n", " [job] decoder = taehv needs taehv_model = wan21, " },
	{ HEAD "decoder = taehv\nweights = /w.safetensors\ntaehv_model = wan2.1\n",
	  "7: [job] taehv_model: 'wan2.1' is not one of: wan21, wan22, hunyuan, hunyuan15, ltx2, cogvideox, opensora" },
	{ HEAD "decoder = wan_vae\nweights = /w.safetensors\ntaehv_model = wan21\n",
	  " [job] taehv_model applies to decoder = taehv only (decoder is wan_vae)" },
	{ HEAD "decoder = taehv\nweights = /w.safetensors\ntaehv_model = wan21\nwan_denormalize = no\n",
	  " [job] wan_denormalize applies to decoder = wan_vae only (decoder is taehv)" },
	{ HEAD "decoder = taesd\nweights = /w.safetensors\nvae_config = /c.json\n",
	  " [job] vae_config applies to decoder = wan_vae only (decoder is taesd)" },
	{ HEAD "decoder = wan_vae\nweights = /w.safetensors\nvae_config = /c.json\n",
	  " [job] vae_config gives the latents_mean / latents_std of wan_denormalize = yes (wan_denormalize is no)" },
	{ HEAD "decoder = wan_vae\nweights = /w.safetensors\nwan_denormalize = 1\n",
	  "7: [job] wan_denormalize: '1' is not one of: no, yes" },
	{ HEAD "decoder = wan_vae\nweights = /w.safetensors\nl2r_preset = wan21\n",
	  " [job] l2r_preset applies to decoder = latent2rgb only (decoder is wan_vae)" },
	{ HEAD "decoder = wan_vae\nweights = /w.safetensors\nwan_denormalize = yes\nvae_config = c.json\n",
	  "8: [job] vae_config: 'c.json' is not an absolute path" },
	{ HEAD "decoder = taesd\nweights = /w.safetensors\nl2r_bias = 0,0,0\n",
	  " [job] l2r_bias applies to decoder = latent2rgb only (decoder is taesd)" },
	{ HEAD "decoder = taesd\nweights = /w.safetensors\nl2r_preset = wan21\n",
	  " [job] l2r_preset applies to decoder = latent2rgb only (decoder is taesd)" },
	{ HEAD "l2r_preset = wan21\nl2r_weights = 1,2,3\n",
	  " [job] l2r_preset sets the coefficients: give l2r_preset or l2r_weights, not both" },
	{ HEAD "l2r_bias = 1,2,3\nl2r_preset = sd15\n",
	  " [job] l2r_preset sets the coefficients: give l2r_preset or l2r_bias, not both" },
	{ HEAD "codec = h264\n", " [job] codec applies to format = mp4 or mkv only (format is y4m)" },
	{ HEAD "gop = 12\n", " [job] gop applies to format = mp4 or mkv only (format is y4m)" },
	{ VHEAD "codec = ffv1\n", " [job] codec = ffv1 needs format = mkv (MP4 cannot carry FFV1)" },
	{ MHEAD "codec = ffv1\ncrf = 10\n", " [job] crf does not apply to codec = ffv1 (lossless)" },
	{ MHEAD "codec = ffv1\npreset = fast\n", " [job] preset does not apply to codec = ffv1 (lossless)" },
	{ VHEAD "crf = 18\nbitrate = 4M\n", " [job] crf and bitrate are two rate controls: give one" },
	{ VHEAD "crf = 52\n", " [job] crf = 52 is out of range for codec = h264 (0..51)" },
	{ VHEAD "codec = av1\ncrf = 0\n", " [job] crf = 0 is out of range for codec = av1 (1..63)" },
	{ VHEAD "preset = turbo\n", " [job] preset = turbo is not one of codec = h264's: ultrafast, superfast, " },
	{ VHEAD "codec = av1\npreset = medium\n", " [job] preset = medium is not one of codec = av1's: 0 (slowest) .. 13" },
	{ VHEAD "codec = av1\npreset = 14\n", " [job] preset = 14 is not one of codec = av1's" },
};

static void test_bad(void)
{
	struct egr_jobspec js;
	char err[512], want[512];
	size_t i;
	int r;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *path = job_file(bad_cases[i].text);

		err[0] = '\0';
		r = egr_job_parse(path, &js, err, sizeof(err));
		snprintf(want, sizeof(want), "%s:%s", path, bad_cases[i].want);
		CHECK(r == -EINVAL, "case %zu: returned %d (%s)", i, r, err);
		CHECK(!strncmp(err, want, strlen(want)), "case %zu:\n  got  '%s'\n  want '%s...'", i, err, want);
	}
}

/* values at and past the limits: 385 weights, a long tensor name, a long line; a missing file */
static void test_bad_long(void)
{
	struct egr_jobspec js;
	char err[512], want[600];
	size_t i;
	int r;

	/* 385 weights */
	static char text[EGR_INI_LINE_MAX + 300];
	snprintf(text, sizeof(text), HEAD "l2r_weights=");
	for (i = 0; i < 385; i++)
		strcat(text, i ? ",1" : "1");
	strcat(text, "\n");
	const char *path = job_file(text);
	r = egr_job_parse(path, &js, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:5: [job] l2r_weights: more than 384 values", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "385 weights: %d '%s'", r, err);

	/* a tensor name longer than safetensors' */
	char key[EGR_LATENTS_KEY_MAX + 1];
	memset(key, 'k', EGR_LATENTS_KEY_MAX);
	key[EGR_LATENTS_KEY_MAX] = '\0';
	snprintf(text, sizeof(text), HEAD "latents_key = %s\n", key);
	path = job_file(text);
	r = egr_job_parse(path, &js, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:5: [job] latents_key: name is 128 bytes long; the limit is 127", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "long latents_key: %d '%s'", r, err);

	/* an over-long line: refused whole, never cut */
	char line[EGR_INI_LINE_MAX + 20] = "output = /";
	size_t len = strlen(line);
	memset(line + len, 'x', EGR_INI_LINE_MAX + 1 - len);
	line[EGR_INI_LINE_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "[job]\nlatents = /a.npy\n%s\nformat = y4m\n", line);
	path = job_file(text);
	r = egr_job_parse(path, &js, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:3: line is %d bytes long; the limit is %d", path, EGR_INI_LINE_MAX + 1,
		 EGR_INI_LINE_MAX);
	CHECK(r == -EINVAL && !strncmp(err, want, strlen(want)), "long line: %d '%s'", r, err);

	snprintf(want, sizeof(want), "%s/missing.job", dir);
	r = egr_job_parse(want, &js, err, sizeof(err));
	CHECK(r == -ENOENT && strstr(err, "open(\"") && strstr(err, "No such file or directory"), "missing: %d '%s'", r,
	      err);
}

/* layout, latents_key, l2r_preset; and a real 16-channel l2r_weights line */
static void test_layouts_presets(void)
{
	const struct egr_l2r_preset *wan = egr_l2r_preset_get(egr_l2r_preset_id("wan21"));
	static char text[4096];
	struct egr_jobspec js;
	char err[512] = "", *p;
	uint32_t i;
	int r;

	r = egr_job_parse(job_file(HEAD "layout = bcthw\nlatents_key = latents.0\nl2r_preset = wan21\n"), &js, err,
			  sizeof(err));
	CHECK(r == 0, "layout + key + preset: %d %s", r, err);
	CHECK(js.layout == EGR_LAYOUT_BCTHW && !strcmp(js.latents_key, "latents.0"), "layout %u key '%s'", js.layout,
	      js.latents_key);
	CHECK(wan && js.l2r_preset == egr_l2r_preset_id("wan21") && js.l2r_nweights == 0 && !js.l2r_has_bias,
	      "preset %u", js.l2r_preset);
	r = egr_job_parse(job_file(HEAD "layout = tchw\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.layout == EGR_LAYOUT_TCHW, "tchw: %d %s", r, err);
	r = egr_job_parse(job_file(HEAD "layout = btchw\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.layout == EGR_LAYOUT_BTCHW, "btchw: %d %s", r, err);
	r = egr_job_parse(job_file(HEAD), &js, err, sizeof(err));
	CHECK(r == 0 && js.layout == EGR_LAYOUT_AUTO && js.l2r_preset == 0 && js.latents_key[0] == '\0',
	      "defaults: layout %u preset %u key '%s'", js.layout, js.l2r_preset, js.latents_key);

	/* Wan 2.1's 48 coefficients written out: a line libinih 55 would have cut at 199 bytes */
	if (!wan)
		return;
	p = text + snprintf(text, sizeof(text), HEAD "l2r_weights = ");
	for (i = 0; i < 48; i++)
		p += sprintf(p, "%s%.4f", i ? ", " : "", (double)wan->w[i]);
	CHECK(strlen(strstr(text, "l2r_weights")) > 199, "the line is only %zu bytes", strlen(strstr(text, "l2r_weights")));
	sprintf(p, "\nl2r_bias = %.4f, %.4f, %.4f\n", (double)wan->bias[0], (double)wan->bias[1], (double)wan->bias[2]);
	r = egr_job_parse(job_file(text), &js, err, sizeof(err));
	CHECK(r == 0 && js.l2r_nweights == 48 && js.l2r_has_bias, "48-value line: %d %u %s", r, js.l2r_nweights, err);
	CHECK(!memcmp(js.l2r_weights, wan->w, 48 * sizeof(float)) && !memcmp(js.l2r_bias, wan->bias, sizeof(js.l2r_bias)),
	      "48-value line: values differ from the wan21 preset");
}

/* overwrite = no | yes, no by default */
static void test_overwrite(void)
{
	struct egr_jobspec js;
	char err[512] = "";
	const char *path;
	int r;

	r = egr_job_parse(job_file(HEAD), &js, err, sizeof(err));
	CHECK(r == 0 && js.overwrite == 0, "default: %d %s", r, err);
	r = egr_job_parse(job_file(HEAD "overwrite = yes\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.overwrite == 1, "yes: %d %s", r, err);
	r = egr_job_parse(job_file(HEAD "overwrite = no\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.overwrite == 0, "no: %d %s", r, err);
	path = job_file(HEAD "overwrite = true\n");
	r = egr_job_parse(path, &js, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, ":5: [job] overwrite: 'true' is not one of: no, yes"), "true: %d %s", r, err);
}

/* decoder = taehv and wan_vae with their keys, and their defaults */
static void test_video(void)
{
	struct egr_jobspec js;
	char err[512] = "";
	int r;

	r = egr_job_parse(job_file(HEAD "decoder = taehv\nweights = /w/taew2_1.safetensors\ntaehv_model = cogvideox\n"
					"chunk_frames = 3\n"),
			  &js, err, sizeof(err));
	CHECK(r == 0, "taehv job: %d %s", r, err);
	CHECK(js.decoder == EGR_DEC_TAEHV && js.taehv_model == EGR_TAEHV_COGVIDEOX && js.chunk_frames == 3 &&
		      !strcmp(js.weights, "/w/taew2_1.safetensors"),
	      "taehv: decoder %u model %u chunk %u '%s'", js.decoder, js.taehv_model, js.chunk_frames, js.weights);
	r = egr_job_parse(job_file(HEAD "decoder = wan_vae\nweights = /w/vae.safetensors\n"), &js, err, sizeof(err));
	CHECK(r == 0 && js.decoder == EGR_DEC_WAN_VAE && js.wan_denormalize == 0 && !js.vae_config[0],
	      "wan_vae defaults: %d %s", r, err);
	r = egr_job_parse(job_file(HEAD "decoder = wan_vae\nweights = /w/vae.safetensors\nwan_denormalize = yes\n"
					"vae_config = /w/vae/config.json\n"),
			  &js, err, sizeof(err));
	CHECK(r == 0 && js.wan_denormalize == 1 && !strcmp(js.vae_config, "/w/vae/config.json"),
	      "wan_vae denormalize: %d %s", r, err);
	CHECK(!strcmp(egr_job_decoder_name(EGR_DEC_TAEHV), "taehv") &&
		      !strcmp(egr_job_decoder_name(EGR_DEC_WAN_VAE), "wan_vae"),
	      "video decoder names");
}

/* config/example.job, the shipped example, parses */
/* format = mp4 | mkv: the video keys and their defaults, per codec */
static void test_video_keys(void)
{
	static const struct {
		const char *text;
		uint32_t format, codec, gop;
		float crf;
		uint64_t bitrate;
		const char *preset;
	} cases[] = {
		{ "format = mp4\n", EGR_FMT_MP4, EGR_CODEC_H264, 48, 23, 0, "medium" },
		{ "format = mp4\nfps = 30000/1001\n", EGR_FMT_MP4, EGR_CODEC_H264, 60, 23, 0, "medium" },
		{ "format = mp4\nfps = 1000000\n", EGR_FMT_MP4, EGR_CODEC_H264, 100000, 23, 0, "medium" },
		{ "format = mkv\ncodec = ffv1\n", EGR_FMT_MKV, EGR_CODEC_FFV1, 48, 0, 0, "" },
		{ "format = mkv\ncodec = hevc\ncrf = 20.5\ngop = 7\n", EGR_FMT_MKV, EGR_CODEC_HEVC, 7, 20.5f, 0, "medium" },
		{ "format = mp4\ncodec = av1\n", EGR_FMT_MP4, EGR_CODEC_AV1, 48, 35, 0, "10" },
		{ "format = mp4\ncodec = av1\npreset = 13\ncrf = 63\n", EGR_FMT_MP4, EGR_CODEC_AV1, 48, 63, 0, "13" },
		{ "format = mp4\nbitrate = 4M\npreset = veryfast\n", EGR_FMT_MP4, EGR_CODEC_H264, 48, 0, 4000000,
		  "veryfast" },
		{ "format = mp4\nbitrate = 2500k\n", EGR_FMT_MP4, EGR_CODEC_H264, 48, 0, 2500000, "medium" },
		{ "format = mp4\nbitrate = 10G\n", EGR_FMT_MP4, EGR_CODEC_H264, 48, 0, 10000000000ull, "medium" },
	};
	struct egr_jobspec js;
	char text[256], err[512];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "[job]\nlatents = /a.npy\noutput = /o\n%s", cases[i].text);
		int r = egr_job_parse(job_file(text), &js, err, sizeof(err));
		CHECK(r == 0 && js.format == cases[i].format && js.codec == cases[i].codec && js.gop == cases[i].gop &&
			      js.crf == cases[i].crf && js.bitrate == cases[i].bitrate &&
			      !strcmp(js.preset, cases[i].preset) && js.threads == 1 && js.pix_fmt == EGR_PIX_YUV420P,
		      "video case %zu: %d %s: codec %u gop %u crf %g bitrate %llu preset '%s' threads %u", i, r, err,
		      js.codec, js.gop, js.crf, (unsigned long long)js.bitrate, js.preset, js.threads);
	}
	egr_job_parse(job_file("[job]\nlatents=/a.npy\noutput=/o.y4m\nformat=y4m\n"), &js, err, sizeof(err));
	CHECK(js.codec == 0 && js.gop == 0 && js.threads == 0 && js.preset[0] == 0, "y4m: video fields stay zero");
	CHECK(egr_job_is_video(EGR_FMT_MP4) && egr_job_is_video(EGR_FMT_MKV) && !egr_job_is_video(EGR_FMT_Y4M) &&
		      !strcmp(egr_job_codec_name(EGR_CODEC_FFV1), "ffv1") && !strcmp(egr_job_codec_name(0), "?") &&
		      !strcmp(egr_job_format_name(EGR_FMT_MKV), "mkv"),
	      "video names");
}

static void test_example(void)
{
	const char *env = getenv("EGR_SRCDIR");
	const char *t = strstr(__FILE__, "tests/unit/test_job.c");
	struct egr_jobspec js;
	char path[512], err[512];
	int r;

	if (env)
		snprintf(path, sizeof(path), "%s/config/example.job", env);
	else
		snprintf(path, sizeof(path), "%.*sconfig/example.job", t ? (int)(t - __FILE__) : 0, __FILE__);
	r = egr_job_parse(path, &js, err, sizeof(err));
	CHECK(r == 0, "%s: %s", path, err);
	CHECK(r || (js.format == EGR_FMT_Y4M && js.decoder == EGR_DEC_LATENT2RGB && js.fps_num == 24 &&
		    js.chunk_frames == 8 && !strcmp(js.latents, "/var/lib/egressd/clip.npy")),
	      "%s: unexpected values", path);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/egr-test-job-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_good();
	test_bad();
	test_bad_long();
	test_layouts_presets();
	test_video_keys();
	test_example();
	test_overwrite();
	test_video();

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("warning: could not remove %s\n", dir);
	if (failures)
		printf("test_job: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
