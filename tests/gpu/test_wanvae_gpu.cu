/*
 * test_wanvae_gpu: the Wan VAE GPU decoder (wanvae_cuda.h) against the fp32
 * CPU stream (wanvae.h), and two tools the GPU scripts use.
 *
 *   test_wanvae_gpu                      self-checks (exit 0, 1, 77 without a GPU):
 *       both configurations (Wan 2.1, Wan 2.2 5B) at reduced width (dim 8)
 *       and small latents: GPU raw output vs the CPU stream, relative error
 *       <= 2e-2 (bf16); frame counts exact; feeds of 1, 2 and all latent
 *       frames agree within the same bound; y4m and png bytes within a few
 *       codes of the CPU frames quantised the same way; de-normalisation;
 *       a net whose widths are not multiples of 8 refused by name.
 *   test_wanvae_gpu --decode W --latents L.f32 --frames T --size HxW [--chunk N] -o OUT.f32
 *       decode raw float32 latents with the GPU path into [F][3][H][W]
 *       float32 in [-1, 1], as egressd-mkwanvae --decode does on the CPU
 *       (wanvae_torch_check.py compares both with diffusers).
 *   test_wanvae_gpu --bench [--config 2.1|2.2] [--frames T] [--size HxW] [--chunk N] [--reps R]
 *       seeded weights at the real widths, decode alone to y4m frames in
 *       device memory, timed with events: frames/s, peak device memory.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime.h>

#include "tests/unit/check.h"

extern "C" {
#include "daemon/base/log.h"
#include "daemon/base/vocab.h"
#include "daemon/decode/frame.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/wanvae.h"
}
#include "daemon/decode/wanvae_cuda.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static double rel_err(const float *a, const float *b, size_t n)
{
	double d = 0, r = 0;
	for (size_t i = 0; i < n; i++) {
		d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		r += (double)b[i] * b[i];
	}
	return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* GPU decode of T latent frames fed chunk at a time; out: frames in format */
static int gpu_decode(struct egr_wanvae_gpu *g, const float *lat, uint32_t T, uint32_t h, uint32_t w, uint32_t z,
		      uint32_t chunk, uint32_t format, const float *mean, const float *std, void *out, size_t out_bytes,
		      uint32_t *nout)
{
	char err[512];
	struct egr_wanvae_gpu_stream *s = NULL;
	const size_t lb = (size_t)T * z * h * w * 4;
	void *dl = NULL, *dout = NULL;
	int rc = -1;

	*nout = 0;
	if (cudaMalloc(&dl, lb) != cudaSuccess || cudaMalloc(&dout, out_bytes) != cudaSuccess ||
	    cudaMemcpy(dl, lat, lb, cudaMemcpyHostToDevice) != cudaSuccess)
		goto out;
	if (egr_wanvae_gpu_stream_create(g, h, w, chunk, mean, std, &s, err, sizeof(err)) < 0) {
		printf("stream: %s\n", err);
		goto out;
	}
	for (uint32_t i = 0; i < T; i += chunk) {
		const uint32_t n = T - i < chunk ? T - i : chunk;
		const size_t fbytes = out_bytes / (1 + 4 * (T - 1));	/* the caller sized out for every frame */
		uint32_t got = 0;
		if (egr_wanvae_gpu_feed(s, (const char *)dl + (size_t)i * z * h * w * 4, EGR_DT_F32, n, format,
					(char *)dout + *nout * fbytes, &got, err, sizeof(err)) < 0) {
			printf("feed: %s\n", err);
			goto out;
		}
		*nout += got;
	}
	if (cudaMemcpy(out, dout, out_bytes, cudaMemcpyDeviceToHost) != cudaSuccess)
		goto out;
	rc = 0;
out:
	egr_wanvae_gpu_stream_free(s);
	if (dl)
		cudaFree(dl);
	if (dout)
		cudaFree(dout);
	return rc;
}

/* seeded random weights of preset at width dim (0: the preset's), loaded; NULL with a message */
static struct egr_wanvae *random_net(const char *preset, uint32_t dim, uint64_t seed)
{
	char err[512], path[] = "/tmp/egr-wanvae-gpu.XXXXXX";
	struct egr_wanvae_cfg cfg;
	struct egr_wanvae *net = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	close(fd);
	egr_wanvae_cfg_preset(&cfg, preset);
	if (dim)
		cfg.dim = dim;
	if (egr_wanvae_write_random(path, &cfg, seed, EGR_ST_F32, err, sizeof(err)) < 0 ||
	    egr_wanvae_load(path, &net, err, sizeof(err)) < 0)
		printf("weights (%s, dim %u): %s\n", preset, dim, err);
	unlink(path);
	return net;
}

struct wcase {
	const char *name, *preset;
	uint32_t dim, T, h, w;
};

static void check_case(const struct wcase *c)
{
	char err[512];
	struct egr_wanvae *net = random_net(c->preset, c->dim, 7);
	struct egr_wanvae_stream *cs = NULL;
	struct egr_wanvae_gpu *g = NULL;

	if (!net) {
		CHECK(0, "%s: weights", c->name);
		return;
	}
	const uint32_t z = net->cfg.z_dim, F = egr_wanvae_out_frames(net, c->T);
	const uint32_t H = c->h * net->scale, W = c->w * net->scale;
	const size_t fr = (size_t)3 * H * W, lat_n = (size_t)c->T * z * c->h * c->w;
	float *lat = (float *)malloc(lat_n * 4), *ref = (float *)malloc(F * fr * 4), *got = (float *)malloc(F * fr * 4);
	float *lat2 = (float *)malloc(lat_n * 4), mean[EGR_WANVAE_MAX_Z], std[EGR_WANVAE_MAX_Z];
	uint8_t *y4m = (uint8_t *)malloc(F * fr), *rgb = (uint8_t *)malloc(fr), *i420 = (uint8_t *)malloc(fr);
	uint32_t nout = 0;

	for (size_t i = 0; i < lat_n; i++)
		lat[i] = frand();
	CHECK(egr_wanvae_stream_create(net, c->h, c->w, &cs, err, sizeof(err)) == 0, "cpu stream: %s", err);
	CHECK(egr_wanvae_stream_feed(cs, lat, c->T, ref, &nout, err, sizeof(err)) == 0 && nout == F, "cpu feed: %s",
	      err);
	egr_wanvae_stream_free(cs);
	if (egr_wanvae_gpu_create(net, 0, &g, err, sizeof(err)) < 0) {
		CHECK(0, "%s: gpu create: %s", c->name, err);
		goto out;
	}
	for (uint32_t chunk : { c->T, 1u, 2u }) {
		CHECK(gpu_decode(g, lat, c->T, c->h, c->w, z, chunk, EGR_FMT_RAW, NULL, NULL, got, F * fr * 4, &nout) == 0,
		      "%s: gpu decode", c->name);
		const double e = rel_err(got, ref, F * fr);
		printf("WANGPU %s: %u latent frames %ux%u -> %u frames %ux%u, feeds of %u: gpu bf16 vs cpu fp32 rel err %.3e\n",
		       c->name, c->T, c->w, c->h, nout, W, H, chunk, e);
		CHECK(nout == F, "%s: %u frames, want %u", c->name, nout, F);
		CHECK(e <= 2e-2, "%s chunk %u: rel err %.3e > 2e-2", c->name, chunk, e);
	}
	/* y4m: within a few codes of the CPU frames quantised the same way */
	CHECK(gpu_decode(g, lat, c->T, c->h, c->w, z, c->T, EGR_FMT_Y4M, NULL, NULL, y4m,
			 F * egr_frame_bytes(EGR_FMT_Y4M, W, H), &nout) == 0, "%s: y4m", c->name);
	{
		size_t far = 0, n = 0;
		int maxd = 0;
		const uint64_t fb = egr_frame_bytes(EGR_FMT_Y4M, W, H);
		for (uint32_t f = 0; f < F; f++) {
			egr_wanvae_to_rgb24(ref + f * fr, H, W, rgb);
			egr_frame_rgb_to_i420(rgb, W, H, i420);
			for (uint64_t i = 0; i < fb; i++, n++) {
				int d = abs((int)i420[i] - (int)y4m[f * fb + i]);
				maxd = d > maxd ? d : maxd;
				far += d > 2;
			}
		}
		printf("WANGPU %s: y4m bytes off by > 2 codes: %zu of %zu, max %d\n", c->name, far, n, maxd);
		CHECK(far * 100 <= n, "%s: %zu of %zu y4m bytes off by more than 2", c->name, far, n);
	}
	/* de-normalisation on the GPU = the CPU's before the decode */
	for (uint32_t i = 0; i < z; i++)
		mean[i] = 0.1f * frand(), std[i] = 0.5f + 0.4f * frand();
	memcpy(lat2, lat, lat_n * 4);
	egr_wanvae_denormalize(lat2, c->T, z, (size_t)c->h * c->w, mean, std);
	CHECK(egr_wanvae_stream_create(net, c->h, c->w, &cs, err, sizeof(err)) == 0, "cpu stream");
	CHECK(egr_wanvae_stream_feed(cs, lat2, c->T, ref, &nout, err, sizeof(err)) == 0, "cpu feed");
	egr_wanvae_stream_free(cs);
	CHECK(gpu_decode(g, lat, c->T, c->h, c->w, z, c->T, EGR_FMT_RAW, mean, std, got, F * fr * 4, &nout) == 0,
	      "denormalised");
	{
		const double e = rel_err(got, ref, F * fr);
		printf("WANGPU %s: de-normalised latents: rel err %.3e\n", c->name, e);
		/* de-normalised latents are larger: bf16's relative error grows a little */
		CHECK(e <= 3e-2, "%s: de-normalised rel err %.3e", c->name, e);
	}
out:
	egr_wanvae_gpu_destroy(g);
	egr_wanvae_free(net);
	free(lat), free(lat2), free(ref), free(got), free(y4m), free(rgb), free(i420);
}

/* a width that is not a multiple of 8 is refused, naming it */
static void check_refusal(void)
{
	char err[512];
	struct egr_wanvae *net = random_net("2.1", 4, 1);
	struct egr_wanvae_gpu *g = NULL;

	CHECK(net != NULL, "dim 4 weights");
	if (net) {
		int rc = egr_wanvae_gpu_create(net, 0, &g, err, sizeof(err));
		CHECK(rc == -EINVAL && strstr(err, "multiple of 8"), "dim 4: rc %d, %s", rc, err);
		printf("WANGPU dim 4 refused: %s\n", err);
		egr_wanvae_gpu_destroy(g);
	}
	egr_wanvae_free(net);
}

static void *read_all(const char *path, size_t want)
{
	FILE *f = fopen(path, "rb");
	void *p = malloc(want ? want : 1);
	if (!f || !p || fread(p, 1, want, f) != want) {
		if (f)
			fclose(f);
		free(p);
		return NULL;
	}
	fclose(f);
	return p;
}

/* --decode: the GPU twin of egressd-mkwanvae --decode */
static int tool_decode(const char *wpath, const char *lpath, uint32_t T, uint32_t h, uint32_t w, uint32_t chunk,
		       const char *opath)
{
	char err[512];
	struct egr_wanvae *net = NULL;
	struct egr_wanvae_gpu *g = NULL;
	int rc = 1;

	if (egr_wanvae_load(wpath, &net, err, sizeof(err)) < 0 || egr_wanvae_gpu_create(net, 0, &g, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		egr_wanvae_free(net);
		return 1;
	}
	const uint32_t z = net->cfg.z_dim, F = egr_wanvae_out_frames(net, T);
	const size_t ob = (size_t)F * 3 * h * net->scale * w * net->scale * 4;
	float *lat = (float *)read_all(lpath, (size_t)T * z * h * w * 4), *out = (float *)malloc(ob);
	uint32_t nout = 0;
	FILE *f;

	if (lat && out && gpu_decode(g, lat, T, h, w, z, chunk, EGR_FMT_RAW, NULL, NULL, out, ob, &nout) == 0 &&
	    nout == F && (f = fopen(opath, "wb"))) {
		rc = fwrite(out, 1, ob, f) == ob ? 0 : 1;
		rc |= fclose(f) != 0;
	} else {
		fprintf(stderr, "decode failed (%u of %u frames)\n", nout, F);
	}
	free(lat), free(out);
	egr_wanvae_gpu_destroy(g);
	egr_wanvae_free(net);
	return rc;
}

/* --bench: decode alone, y4m frames into device memory, real widths */
static int tool_bench(const char *preset, uint32_t T, uint32_t h, uint32_t w, uint32_t chunk, uint32_t reps)
{
	char err[512];
	struct egr_wanvae *net = random_net(preset, 0, 11);
	struct egr_wanvae_gpu *g = NULL;
	struct egr_wanvae_gpu_stream *s = NULL;
	size_t free0, total, free1;

	if (!net)
		return 1;
	cudaMemGetInfo(&free0, &total);
	if (egr_wanvae_gpu_create(net, 0, &g, err, sizeof(err)) < 0 ||
	    egr_wanvae_gpu_stream_create(g, h, w, chunk, NULL, NULL, &s, err, sizeof(err)) < 0 ||
	    egr_wanvae_gpu_stream_warm_up(s, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const uint32_t z = net->cfg.z_dim, F = egr_wanvae_out_frames(net, T);
	const uint32_t H = h * net->scale, W = w * net->scale;
	const size_t lb = (size_t)T * z * h * w * 2, fb = egr_frame_bytes(EGR_FMT_Y4M, W, H);
	void *dl, *dout;
	cudaEvent_t e0, e1;
	float best = 1e30f;
	uint32_t batch;

	cudaMalloc(&dl, lb);
	cudaMalloc(&dout, (size_t)4 * chunk * fb);
	cudaMemset(dl, 0x3c, lb);	/* f16 ~1.0 */
	cudaEventCreate(&e0), cudaEventCreate(&e1);
	for (uint32_t r = 0; r < reps; r++) {
		struct egr_wanvae_gpu_stream *v = NULL;
		uint32_t got, all = 0;
		if (egr_wanvae_gpu_stream_create(g, h, w, chunk, NULL, NULL, &v, err, sizeof(err)) < 0)
			break;
		cudaEventRecord(e0, 0);
		for (uint32_t i = 0; i < T; i += chunk) {
			uint32_t n = T - i < chunk ? T - i : chunk;
			if (egr_wanvae_gpu_feed(v, (char *)dl + (size_t)i * z * h * w * 2, EGR_DT_F16, n, EGR_FMT_Y4M, dout,
						&got, err, sizeof(err)) < 0) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			all += got;
		}
		cudaEventRecord(e1, 0);
		cudaEventSynchronize(e1);
		float ms;
		cudaEventElapsedTime(&ms, e0, e1);
		best = ms < best ? ms : best;
		printf("WANBENCH rep %u: %u frames in %.1f ms = %.1f frames/s\n", r, all, ms, all / (ms / 1e3));
		egr_wanvae_gpu_stream_free(v);
	}
	cudaMemGetInfo(&free1, &total);
	size_t ws = egr_wanvae_gpu_stream_bytes(s, &batch);
	printf("WANBENCH wan %s %ux%u, %u latent frames -> %u frames, feeds of %u (batch %u): best %.1f frames/s (%.3f s); stream workspace %.2f GiB, device memory in use %.2f GiB, conv shapes %llu\n",
	       preset, W, H, T, F, chunk, batch, F / (best / 1e3), best / 1e3, ws / 1073741824.0,
	       (free0 - free1) / 1073741824.0, (unsigned long long)egr_wanvae_gpu_searches(g));
	egr_wanvae_gpu_stream_free(s);
	egr_wanvae_gpu_destroy(g);
	egr_wanvae_free(net);
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;

	egr_log_init("test_wanvae_gpu");
	egr_log_set_level(EGR_LOG_WARNING);
	if (argc > 1) {
		const char *wp = NULL, *lp = NULL, *op = NULL, *preset = "2.1";
		unsigned T = 21, h = 60, w = 104, chunk = 1, reps = 3, bench = 0;
		for (int i = 1; i < argc; i++) {
			const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
			if (!strcmp(a, "--bench"))
				bench = 1;
			else if (!strcmp(a, "--decode"))
				wp = v, i++;
			else if (!strcmp(a, "--latents"))
				lp = v, i++;
			else if (!strcmp(a, "-o"))
				op = v, i++;
			else if (!strcmp(a, "--config"))
				preset = v, i++;
			else if (!strcmp(a, "--frames"))
				T = (unsigned)atoi(v), i++;
			else if (!strcmp(a, "--chunk"))
				chunk = (unsigned)atoi(v), i++;
			else if (!strcmp(a, "--reps"))
				reps = (unsigned)atoi(v), i++;
			else if (!strcmp(a, "--size") && sscanf(v, "%ux%u", &h, &w) == 2)
				i++;
			else {
				fprintf(stderr, "test_wanvae_gpu: bad argument %s\n", a);
				return 2;
			}
		}
		if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
			fprintf(stderr, "no GPU\n");
			return 77;
		}
		if (bench)
			return tool_bench(preset, T, h, w, chunk ? chunk : 1, reps);
		if (!wp || !lp || !op)
			return 2;
		return tool_decode(wp, lp, T, h, w, chunk ? chunk : 1, op);
	}
	if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
		printf("no GPU: skipped\n");
		return 77;
	}
	static const struct wcase cases[] = {
		{ "wan2.1 dim8", "2.1", 8, 5, 6, 10 },
		{ "wan2.2 dim8", "2.2", 8, 4, 4, 6 },
		{ "wan2.1 dim8 T=1", "2.1", 8, 1, 5, 7 },
		{ "wan2.1 dim16", "2.1", 16, 3, 8, 8 },
	};
	for (const auto &c : cases)
		check_case(&c);
	check_refusal();
	printf("test_wanvae_gpu: %d failures\n", failures);
	return failures ? 1 : 0;
}
