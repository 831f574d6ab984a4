/*
 * test_safetensors: writer/reader round trip, half conversions (exhaustive
 * round trip, and narrowing against the compiler's _Float16 where it has
 * one), every malformed-header rejection with its message, a file truncated
 * after open, and a short fuzz (random truncations, bit flips and header
 * lengths) that must never crash or read out of bounds — run it under ASan.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"

#include "check.h"
#include "helpers.h"

static char dir[256];

/* write 8-byte length hlen, then hdr (strlen), then dlen bytes of data */
static void write_raw(const char *path, uint64_t hlen, const char *hdr, size_t dlen)
{
	FILE *f = fopen(path, "wb");
	unsigned char lb[8];

	if (!f) {
		perror(path);
		exit(1);
	}
	for (int i = 0; i < 8; i++)
		lb[i] = (unsigned char)(hlen >> (8 * i));
	fwrite(lb, 1, 8, f);
	fwrite(hdr, 1, strlen(hdr), f);
	for (size_t i = 0; i < dlen; i++)
		fputc((int)(i * 7 & 0x3f), f);	/* small finite halves and floats */
	fclose(f);
}

static void test_half(void)
{
	int bad = 0;

	/* every non-NaN half survives widening then narrowing */
	for (uint32_t h = 0; h < 65536; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue;
		if (egr_half_from_float(egr_half_to_float((uint16_t)h)) != h && bad++ < 5)
			CHECK(0, "half 0x%04x does not round-trip", h);
	}
	CHECK(egr_half_to_float(0x3c00) == 1.0f, "0x3c00 != 1");
	CHECK(egr_half_to_float(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
	CHECK(egr_half_to_float(0xfbff) == -65504.0f, "-max half");
	CHECK(egr_half_from_float(1.0f + ldexpf(1.0f, -11)) == 0x3c00, "tie must round to even (down)");
	CHECK(egr_half_from_float(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02, "tie must round to even (up)");
	CHECK(egr_half_from_float(65520.0f) == 0x7c00, "65520 must overflow to Inf");
	CHECK(egr_half_from_float(65519.0f) == 0x7bff, "65519 must round to max");
	CHECK(isnan(egr_half_to_float(egr_half_from_float(NAN))), "NaN must stay NaN");
#ifdef __FLT16_MAX__
	/* narrowing against the compiler's own conversion, on random bit patterns */
	bad = 0;
	for (int i = 0; i < 2000000; i++) {
		uint32_t b = rnd() << 16 ^ rnd();
		float f;
		memcpy(&f, &b, 4);
		if (isnan(f))
			continue;
		_Float16 r = (_Float16)f;
		uint16_t want;
		memcpy(&want, &r, 2);
		if (egr_half_from_float(f) != want && bad++ < 5)
			CHECK(0, "float 0x%08x -> half 0x%04x, compiler says 0x%04x", b, egr_half_from_float(f), want);
	}
#endif
}

static void test_roundtrip(void)
{
	char path[300], err[512];
	float a[24], b[6];
	struct egr_st_wtensor ts[2] = {
		{ "w", EGR_ST_F32, 3, { 2, 3, 4 }, a },
		{ "b.half", EGR_ST_F16, 1, { 6 }, b },
	};
	struct egr_st *st = NULL;

	for (int i = 0; i < 24; i++)
		a[i] = (float)rnd() / 65536.0f - 100.0f;
	for (int i = 0; i < 6; i++)
		b[i] = (float)i / 3.0f;
	snprintf(path, sizeof(path), "%s/rt.safetensors", dir);
	CHECK(egr_st_write(path, ts, 2, err, sizeof(err)) == 0, "write: %s", err);
	if (egr_st_open(path, &st, err, sizeof(err)) < 0) {
		CHECK(0, "open: %s", err);
		return;
	}
	CHECK(st->ntensors == 2, "ntensors %u", st->ntensors);
	CHECK(st->data_off % 8 == 0, "header not padded to 8: data at %llu", (unsigned long long)st->data_off);
	const struct egr_st_tensor *t = egr_st_find(st, "w");
	CHECK(t && t->ndim == 3 && t->shape[0] == 2 && t->shape[2] == 4 && t->dtype == EGR_ST_F32, "tensor w");
	if (t) {
		float r[24];
		CHECK(egr_st_read_f32(st, t, r, err, sizeof(err)) == 0, "read w: %s", err);
		CHECK(memcmp(r, a, sizeof(a)) == 0, "w data differs");
	}
	t = egr_st_find(st, "b.half");
	CHECK(t && t->dtype == EGR_ST_F16 && t->numel == 6, "tensor b.half");
	if (t) {
		float r[6];
		CHECK(egr_st_read_f32(st, t, r, err, sizeof(err)) == 0, "read b: %s", err);
		for (int i = 0; i < 6; i++)
			CHECK(r[i] == egr_half_to_float(egr_half_from_float(b[i])), "b[%d] = %g", i, r[i]);
	}
	CHECK(egr_st_find(st, "nope") == NULL, "found a tensor that is not there");
	CHECK(egr_st_find(st, "__metadata__") == NULL, "__metadata__ listed as a tensor");

	/* truncated after open: a read error, never a crash */
	t = egr_st_find(st, "w");
	if (t) {
		float r[24];
		CHECK(truncate(path, (off_t)(st->data_off + 10)) == 0, "truncate");
		int rc = egr_st_read_f32(st, t, r, err, sizeof(err));
		CHECK(rc == -EIO && strstr(err, "truncated"), "read after truncation: %d '%s'", rc, err);
	}
	egr_st_close(st);
	/* and reopened truncated: the header's offsets now lie outside the data */
	st = NULL;
	CHECK(egr_st_open(path, &st, err, sizeof(err)) == -EINVAL && strstr(err, "outside the data section"),
	      "truncated file opened: '%s'", err);
	egr_st_close(st);
}

struct bad_case {
	const char *hdr;
	int64_t hlen;		/* -1: strlen(hdr) */
	size_t dlen;
	const char *msg;	/* substring expected in err */
};

static void test_bad(void)
{
	static const struct bad_case cases[] = {
		{ "{}", 1000, 0, "its header length field is larger than the file" },
		{ "{}", 0, 0, "its header length field is too small for a header" },
		{ "{\"a\":", -1, 0, "not valid JSON" },
		{ "[1,2]", -1, 0, "not a JSON object" },
		{ "{\"a\":[]}", -1, 0, "tensor 'a': header entry is not a JSON object" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[2]}}", -1, 4, "needs \"dtype\"" },
		{ "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,4]}}", -1, 4, "unknown dtype \"Q7\"" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[-2],\"data_offsets\":[0,4]}}", -1, 4, "shape[0] is not a non-negative" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", -1, 4, "shape[0] is not" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 4, "data_offsets [0, 8] lie outside the data section of 4 bytes" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,2]}}", -1, 4, "lie outside" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", -1, 4, "hold 4 bytes, shape [3] F16 needs 6" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0]}}", -1, 4, "data_offsets is not [begin, end]" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", -1, 4, "overflows" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,2]}}", -1, 4, "9 dimensions" },
		{ "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", -1, 4, "not valid JSON" },
		{ "{\"__metadata__\":[1]}", -1, 0, "__metadata__ is not a JSON object" },
	};
	char path[300], err[512];

	snprintf(path, sizeof(path), "%s/bad.safetensors", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		struct egr_st *st = NULL;
		err[0] = 0;
		write_raw(path, c->hlen < 0 ? strlen(c->hdr) : (uint64_t)c->hlen, c->hdr, c->dlen);
		int r = egr_st_open(path, &st, err, sizeof(err));
		CHECK(r < 0 && st == NULL, "case %zu (%s) accepted", i, c->hdr);
		CHECK(strstr(err, c->msg) != NULL, "case %zu: error '%s' lacks '%s'", i, err, c->msg);
		CHECK(strstr(err, path) != NULL, "case %zu: error '%s' does not name the file", i, err);
		egr_st_close(st);
	}
	/* accepted: metadata, spaces after the JSON (the format's padding), empty tensor */
	{
		struct egr_st *st = NULL;
		write_raw(path, 0, "", 0);
		write_raw(path, strlen("{\"__metadata__\":{\"k\":\"v\"},\"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]}}    "),
			  "{\"__metadata__\":{\"k\":\"v\"},\"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]}}    ", 0);
		CHECK(egr_st_open(path, &st, err, sizeof(err)) == 0, "metadata + padding refused: %s", err);
		if (st) {
			CHECK(st->ntensors == 1 && egr_st_find(st, "e") && egr_st_find(st, "e")->dtype == EGR_ST_OTHER,
			      "tensor e");
			float x;
			CHECK(egr_st_read_f32(st, egr_st_find(st, "e"), &x, err, sizeof(err)) == -EINVAL &&
				      strstr(err, "dtype I64"), "I64 read as float: '%s'", err);
		}
		egr_st_close(st);
	}
	/* short file, missing file, not a regular file */
	{
		struct egr_st *st = NULL;
		FILE *f = fopen(path, "wb");
		fputs("abc", f);
		fclose(f);
		CHECK(egr_st_open(path, &st, err, sizeof(err)) == -EINVAL && strstr(err, "too short"), "3-byte file: '%s'", err);
		snprintf(path, sizeof(path), "%s/missing.safetensors", dir);
		CHECK(egr_st_open(path, &st, err, sizeof(err)) == -ENOENT && strstr(err, "open(\""), "missing: '%s'", err);
		CHECK(egr_st_open("/dev/null", &st, err, sizeof(err)) == -EINVAL && strstr(err, "not a regular file"),
		      "/dev/null: '%s'", err);
	}
}

/* mutate a valid file many ways; open must fail cleanly or yield in-range tensors */
static void test_fuzz(void)
{
	char src[300], path[300], err[512];
	float a[300];
	struct egr_st_wtensor ts[3] = {
		{ "x.weight", EGR_ST_F16, 4, { 4, 3, 3, 3 }, a },
		{ "x.bias", EGR_ST_F32, 1, { 4 }, a },
		{ "y", EGR_ST_F32, 2, { 10, 20 }, a },
	};
	unsigned char *orig, *buf;
	long len;
	int opened = 0;

	for (int i = 0; i < 300; i++)
		a[i] = (float)i * 0.25f - 10.0f;
	snprintf(src, sizeof(src), "%s/fz.safetensors", dir);
	snprintf(path, sizeof(path), "%s/fz2.safetensors", dir);
	if (egr_st_write(src, ts, 3, err, sizeof(err)) < 0) {
		CHECK(0, "write: %s", err);
		return;
	}
	FILE *f = fopen(src, "rb");
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	orig = malloc((size_t)len);
	buf = malloc((size_t)len);
	if (fread(orig, 1, (size_t)len, f) != (size_t)len)
		CHECK(0, "fread");
	fclose(f);
	uint64_t hl = 0;
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | orig[i];
	for (int it = 0; it < 3000; it++) {
		long n = len;
		memcpy(buf, orig, (size_t)len);
		switch (it % 4) {
		case 0:	/* truncation anywhere */
			n = (long)(rnd() % (uint32_t)len);
			break;
		case 1:	/* bit flips in the header */
			for (int k = 0; k < 1 + (int)(rnd() % 4); k++)
				buf[8 + rnd() % hl] ^= (unsigned char)(1u << (rnd() % 8));
			break;
		case 2:	/* digit swaps in the header: plausible but wrong numbers */
			for (int k = 0; k < 3; k++) {
				uint32_t p = 8 + rnd() % (uint32_t)hl;
				if (buf[p] >= '0' && buf[p] <= '9')
					buf[p] = (unsigned char)('0' + rnd() % 10);
			}
			break;
		case 3:	/* header length */
			buf[rnd() % 8] = (unsigned char)rnd();
			break;
		}
		FILE *o = fopen(path, "wb");
		fwrite(buf, 1, (size_t)n, o);
		fclose(o);
		struct egr_st *st = NULL;
		if (egr_st_open(path, &st, err, sizeof(err)) < 0) {
			CHECK(st == NULL && err[0], "iteration %d: failure without a message", it);
			continue;
		}
		opened++;
		for (uint32_t i = 0; i < st->ntensors; i++) {
			const struct egr_st_tensor *t = &st->t[i];
			CHECK(t->end <= st->data_len && t->begin <= t->end, "iteration %d: tensor out of range", it);
			if (t->dtype != EGR_ST_OTHER && t->numel <= 100000) {
				float *d = malloc(t->numel * sizeof(float) + 4);
				egr_st_read_f32(st, t, d, err, sizeof(err));
				free(d);
			}
		}
		egr_st_close(st);
	}
	CHECK(opened > 0, "no mutated file opened at all: the fuzz tests nothing");
	free(orig);
	free(buf);
}

int main(void)
{
	test_tmpdir(dir, sizeof(dir), "test_safetensors");
	test_half();
	test_roundtrip();
	test_bad();
	test_fuzz();
	test_rmtree(dir);
	return test_result("test_safetensors");
}
