/*
 * test_loader: the producer's parallel latents reader (daemon/producer/loader.c)
 * delivers exactly egr_npy_read's bytes whatever the thread count and chunk
 * (flat and bcthw files, f16 and f32, chunks shorter than the pool), and
 * reports what one reader in order would: the first NaN/Inf of the chunk
 * and the lowest range's read error.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/half.h"
#include "daemon/formats/npy.h"
#include "daemon/producer/loader.h"

#include "check.h"

enum { T = 11, C = 3, H = 5, W = 7 };	/* odd sizes: ranges of unequal frame counts */

static char dir[64];

static const char *tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static int open_file(const char *name, uint32_t layout, struct egr_npy *n)
{
	char err[512];
	int rc = egr_npy_open_as(tmp_path(name), layout, NULL, n, err, sizeof(err));

	CHECK(rc == 0, "open %s: %s", name, err);
	return rc;
}

/* every (first, count) of the file, for each thread count, against egr_npy_read */
static void check_same_bytes(const char *name, uint32_t layout)
{
	static const unsigned threads[] = { 1, 2, 3, 4, 8 };
	struct egr_npy n;
	char err[512];

	if (open_file(name, layout, &n))
		return;
	unsigned char *want = malloc((T + 1) * n.frame_bytes), *got = malloc((T + 1) * n.frame_bytes);
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		struct egr_loader *l;

		if (egr_loader_new(threads[t], &l, err, sizeof(err)) < 0) {
			CHECK(0, "egr_loader_new(%u): %s", threads[t], err);
			continue;
		}
		for (uint64_t first = 0; first < T; first += 2) {
			for (uint64_t count = 1; first + count <= T; count++) {
				size_t bad = 12345;
				int rc;

				memset(got, 0xa5, (T + 1) * n.frame_bytes);
				CHECK(egr_npy_read(&n, first, count, want, err, sizeof(err)) == 0, "%s", err);
				rc = egr_loader_read(l, &n, first, count, got, &bad, err, sizeof(err));
				CHECK(rc == 0 && bad == 12345, "%s, %u threads, frames %llu+%llu: rc %d, %s", name,
				      threads[t], (unsigned long long)first, (unsigned long long)count, rc, err);
				CHECK(!memcmp(want, got, count * n.frame_bytes), "%s, %u threads, frames %llu+%llu differ",
				      name, threads[t], (unsigned long long)first, (unsigned long long)count);
				CHECK(got[count * n.frame_bytes] == 0xa5, "%s: wrote past the chunk", name);
			}
		}
		egr_loader_free(l);
	}
	free(want);
	free(got);
	egr_npy_close(&n);
}

static void write_files(float *v)
{
	const uint64_t tchw[4] = { T, C, H, W }, bcthw[5] = { 1, C, T, H, W };
	char err[512];

	for (size_t i = 0; i < (size_t)T * C * H * W; i++)
		v[i] = (float)((i * 2654435761u) % 20011) / 1000.0f - 10.0f;
	CHECK(egr_npy_write(tmp_path("f32.npy"), EGR_DT_F32, tchw, v, err, sizeof(err)) == 0, "%s", err);
	CHECK(egr_npy_write(tmp_path("f16.npy"), EGR_DT_F16, tchw, v, err, sizeof(err)) == 0, "%s", err);
	CHECK(egr_npy_write_nd(tmp_path("bcthw.npy"), EGR_DT_F16, 5, bcthw, v, err, sizeof(err)) == 0, "%s", err);
}

/*
 * NaN at frame 9 and Inf at frame 4: with 4 threads over 11 frames the
 * ranges are 0-2, 3-5, 6-8, 9-10, so the later range finishes its check
 * independently; the reported element must be the Inf, at its index in dst.
 */
static void check_first_bad(float *v)
{
	const uint64_t tchw[4] = { T, C, H, W };
	const size_t fe = (size_t)C * H * W, inf_at = 4 * fe + 17, nan_at = 9 * fe + 3;
	struct egr_loader *l;
	struct egr_npy n;
	char err[512];
	size_t bad = 0;

	v[inf_at] = INFINITY;
	v[nan_at] = NAN;
	CHECK(egr_npy_write(tmp_path("bad.npy"), EGR_DT_F16, tchw, v, err, sizeof(err)) == 0, "%s", err);
	if (open_file("bad.npy", 0, &n) || egr_loader_new(4, &l, err, sizeof(err)) < 0)
		return;
	uint16_t *dst = malloc(T * n.frame_bytes);
	int rc = egr_loader_read(l, &n, 0, T, dst, &bad, err, sizeof(err));
	CHECK(rc == -EDOM && bad == inf_at, "both bad: rc %d, bad %zu (want %zu)", rc, bad, inf_at);
	rc = egr_loader_read(l, &n, 5, 6, dst, &bad, err, sizeof(err));
	CHECK(rc == -EDOM && bad == nan_at - 5 * fe, "from frame 5: rc %d, bad %zu (want %zu)", rc, bad, nan_at - 5 * fe);
	rc = egr_loader_read(l, &n, 5, 4, dst, &bad, err, sizeof(err));
	CHECK(rc == 0, "frames 5..8 are finite: rc %d", rc);
	free(dst);
	egr_loader_free(l);
	egr_npy_close(&n);
	v[inf_at] = v[nan_at] = 0.0f;
}

/* a file truncated after it was opened: the lowest failing range's error, as a single reader gives it */
static void check_truncated(void)
{
	struct egr_loader *l;
	struct egr_npy n;
	char err[512] = "", want[512] = "";

	if (open_file("f32.npy", 0, &n) || egr_loader_new(4, &l, err, sizeof(err)) < 0)
		return;
	CHECK(truncate(tmp_path("f32.npy"), (off_t)(n.data_off + 6 * n.frame_bytes + 10)) == 0, "truncate");
	void *dst = malloc(T * n.frame_bytes);
	int want_rc = egr_npy_read(&n, 0, T, dst, want, sizeof(want));
	int rc = egr_loader_read(l, &n, 0, T, dst, NULL, err, sizeof(err));
	CHECK(want_rc == -EIO && rc == want_rc && !strcmp(err, want), "truncated: rc %d '%s', one reader: rc %d '%s'", rc,
	      err, want_rc, want);
	free(dst);
	egr_loader_free(l);
	egr_npy_close(&n);
}

int main(void)
{
	char err[512];
	struct egr_loader *l;
	float *v = malloc(sizeof(float) * T * C * H * W);

	snprintf(dir, sizeof(dir), "/tmp/egr-loader.XXXXXX");
	if (!v || !mkdtemp(dir)) {
		printf("setup failed\n");
		return 1;
	}
	CHECK(egr_loader_new(0, &l, err, sizeof(err)) == -EINVAL && strstr(err, "0 threads"), "0 threads: '%s'", err);
	CHECK(egr_loader_new(EGR_LOADER_MAX_THREADS + 1, &l, err, sizeof(err)) == -EINVAL, "too many threads");
	write_files(v);
	check_same_bytes("f32.npy", 0);
	check_same_bytes("f16.npy", 0);
	check_same_bytes("bcthw.npy", EGR_LAYOUT_BCTHW);
	check_first_bad(v);
	check_truncated();
	free(v);
	for (const char *f = "f32.npy\0f16.npy\0bcthw.npy\0bad.npy\0"; *f; f += strlen(f) + 1)
		unlink(tmp_path(f));
	rmdir(dir);
	return failures ? 1 : 0;
}
