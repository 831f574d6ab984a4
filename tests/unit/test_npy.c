/*
 * test_npy: the .npy reader and writer, the finite check and the half
 * conversions.  Writes and reads back; refuses hand-made bad headers with the
 * right reason; converts every half exactly; and, where numpy is installed,
 * checks that numpy reads what egr_npy_write writes (float16 bits included)
 * and that egr_npy_open reads what numpy.save writes (that part is skipped,
 * not failed, without numpy).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/formats/npy.h"
#include "daemon/formats/safetensors.h"

#include "check.h"

static char dir[64];

static const char *tmp_path(const char *name)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

static void write_raw(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		printf("%s:%d: cannot write %s\n", __FILE__, __LINE__, path);
		exit(1);
	}
}

/*
 * A hand-made .npy: magic, version major.0, the dict padded like numpy pads
 * it, then data_bytes bytes.  hlen_field, if not 0, replaces the header length.
 */
static const char *make_npy(const char *name, const char *magic, int major, const char *dict, size_t data_bytes,
			    uint32_t hlen_field)
{
	static unsigned char buf[1 << 16];
	size_t pre = major == 1 ? 10 : 12, len = pre + strlen(dict) + 1, hlen;
	const char *path = tmp_path(name);

	len = (len + 63) / 64 * 64;
	hlen = len - pre;
	if (len + data_bytes > sizeof(buf)) {
		printf("%s:%d: make_npy: too big\n", __FILE__, __LINE__);
		exit(1);
	}
	memcpy(buf, magic, 6);
	buf[6] = (unsigned char)major;
	buf[7] = 0;
	if (hlen_field)
		hlen = hlen_field;
	buf[8] = (unsigned char)hlen;
	buf[9] = (unsigned char)(hlen >> 8);
	if (major != 1) {
		buf[10] = (unsigned char)(hlen >> 16);
		buf[11] = (unsigned char)(hlen >> 24);
	}
	memset(buf + pre, ' ', len - pre);
	memcpy(buf + pre, dict, strlen(dict));
	buf[len - 1] = '\n';
	memset(buf + len, 0, data_bytes);
	write_raw(path, buf, len + data_bytes);
	return path;
}

#define MAGIC "\x93NUMPY"
#define DICT(descr, fortran, shape) "{'descr': '" descr "', 'fortran_order': " fortran ", 'shape': " shape ", }"

static void test_write_read(void)
{
	const uint64_t shape[4] = { 3, 4, 5, 6 };
	const size_t n = 3 * 4 * 5 * 6, fe = 4 * 5 * 6;
	float data[360], back[360];
	uint16_t half[360];
	struct egr_npy npy;
	char err[512];
	struct stat st;
	size_t i;
	int r;

	for (i = 0; i < n; i++)
		data[i] = (float)i * 0.37f - 50.0f;	/* not all exact in half: rounding is exercised */

	r = egr_npy_write(tmp_path("w32.npy"), EGR_DT_F32, shape, data, err, sizeof(err));
	CHECK(r == 0, "write f32: %s", err);
	r = egr_npy_open(tmp_path("w32.npy"), &npy, err, sizeof(err));
	CHECK(r == 0, "open f32: %s", err);
	if (r == 0) {
		CHECK(npy.dtype == EGR_DT_F32, "dtype %u", npy.dtype);
		CHECK(npy.shape[0] == 3 && npy.shape[1] == 4 && npy.shape[2] == 5 && npy.shape[3] == 6, "shape");
		CHECK(npy.data_off % 64 == 0 && npy.data_off >= 64, "data_off %llu", (unsigned long long)npy.data_off);
		CHECK(npy.frame_bytes == fe * 4, "frame_bytes %llu", (unsigned long long)npy.frame_bytes);
		CHECK(fstat(npy.fd, &st) == 0 && (uint64_t)st.st_size == npy.data_off + n * 4, "file size %lld",
		      (long long)st.st_size);
		memset(back, 0, sizeof(back));
		r = egr_npy_read(&npy, 0, 3, back, err, sizeof(err));
		CHECK(r == 0 && !memcmp(back, data, sizeof(data)), "read f32 all: %d %s", r, err);
		memset(back, 0, sizeof(back));
		r = egr_npy_read(&npy, 1, 2, back, err, sizeof(err));
		CHECK(r == 0 && !memcmp(back, data + fe, 2 * fe * 4), "read f32 frames 1..2: %d %s", r, err);
		r = egr_npy_read(&npy, 2, 2, back, err, sizeof(err));
		CHECK(r == -EINVAL, "read past the end: %d", r);
		r = egr_npy_read(&npy, UINT64_MAX, 2, back, err, sizeof(err));
		CHECK(r == -EINVAL, "read at UINT64_MAX: %d", r);
		r = egr_npy_read(&npy, 3, 0, back, err, sizeof(err));
		CHECK(r == 0, "empty read at the end: %d %s", r, err);

		/* a file cut after open: the read says so instead of returning garbage */
		CHECK(truncate(tmp_path("w32.npy"), (off_t)(npy.data_off + fe * 4 + 10)) == 0, "truncate");
		r = egr_npy_read(&npy, 0, 3, back, err, sizeof(err));
		CHECK(r == -EIO && strstr(err, "w32.npy") && strstr(err, "truncated since it was opened"),
		      "read of a cut file: %d '%s'", r, err);
		egr_npy_close(&npy);
		CHECK(npy.fd == -1, "fd after close %d", npy.fd);
		egr_npy_close(&npy);	/* twice is harmless */
	}

	r = egr_npy_write(tmp_path("w16.npy"), EGR_DT_F16, shape, data, err, sizeof(err));
	CHECK(r == 0, "write f16: %s", err);
	r = egr_npy_open(tmp_path("w16.npy"), &npy, err, sizeof(err));
	CHECK(r == 0, "open f16: %s", err);
	if (r == 0) {
		CHECK(npy.dtype == EGR_DT_F16 && npy.frame_bytes == fe * 2, "dtype %u frame_bytes %llu", npy.dtype,
		      (unsigned long long)npy.frame_bytes);
		r = egr_npy_read(&npy, 0, 3, half, err, sizeof(err));
		CHECK(r == 0, "read f16: %s", err);
		for (i = 0; i < n; i++) {
			if (half[i] != egr_half_from_float(data[i])) {
				CHECK(0, "f16 element %zu: 0x%04x", i, half[i]);
				break;
			}
		}
		egr_npy_close(&npy);
	}

	uint64_t zero[4] = { 3, 0, 5, 6 };
	r = egr_npy_write(tmp_path("bad.npy"), EGR_DT_F16, zero, data, err, sizeof(err));
	CHECK(r == -EINVAL, "write with a zero dimension: %d", r);
	r = egr_npy_write(tmp_path("bad.npy"), 8, shape, data, err, sizeof(err));
	CHECK(r == -EINVAL, "write float64: %d", r);
	r = egr_npy_write("/nonexistent-dir/x.npy", EGR_DT_F16, shape, data, err, sizeof(err));
	CHECK(r == -ENOENT && strstr(err, "open(\"/nonexistent-dir/x.npy\")"), "write to a missing dir: %d '%s'", r,
	      err);
}

/* 2*1*2*2 f4 elements = 32 bytes of data */
static const struct {
	const char *name;
	const char *magic;
	int major;
	const char *dict;
	size_t data;
	uint32_t hlen;
	const char *want;	/* NULL: must open */
} header_cases[] = {
	{ "ok1.npy", MAGIC, 1, DICT("<f4", "False", "(2, 1, 2, 2)"), 32, 0, NULL },
	{ "ok2.npy", MAGIC, 2, DICT("<f2", "False", "(2, 1, 2, 2)"), 16, 0, NULL },
	{ "ok3.npy", MAGIC, 3, DICT("<f4", "False", "(2, 1, 2, 2)"), 32, 0, NULL },
	{ "order.npy", MAGIC, 1, "{\"shape\":(2,1,2,2,),\"fortran_order\":False,\"descr\":\"<f4\"}", 32, 0, NULL },
	{ "py2.npy", MAGIC, 1, DICT("<f4", "False", "(2L, 1L, 2L, 2L)"), 32, 0, NULL },
	{ "more.npy", MAGIC, 1, DICT("<f4", "False", "(2, 1, 2, 2)"), 40, 0, NULL },
	{ "magic.npy", "\x93NUMPZ", 1, DICT("<f4", "False", "(2, 1, 2, 2)"), 32, 0,
	  "not a .npy file (no \\x93NUMPY magic)" },
	{ "version.npy", MAGIC, 4, DICT("<f4", "False", "(2, 1, 2, 2)"), 32, 0,
	  ".npy format version is not one egressd reads (1.0, 2.0 or 3.0)" },
	{ "f8.npy", MAGIC, 1, DICT("<f8", "False", "(2, 1, 2, 2)"), 64, 0,
	  "dtype '<f8' (float64) is not supported; save float16 or float32" },
	{ "i4.npy", MAGIC, 1, DICT("<i4", "False", "(2, 1, 2, 2)"), 32, 0, "dtype '<i4' (int32) is not supported" },
	{ "u1.npy", MAGIC, 1, DICT("|u1", "False", "(2, 1, 2, 2)"), 8, 0, "dtype '|u1' (uint8) is not supported" },
	{ "bool.npy", MAGIC, 1, DICT("|b1", "False", "(2, 1, 2, 2)"), 8, 0, "dtype '|b1' (bool) is not supported" },
	{ "native.npy", MAGIC, 1, DICT("=f4", "False", "(2, 1, 2, 2)"), 32, 0, "dtype '=f4' (float32) is not supported" },
	{ "be.npy", MAGIC, 1, DICT(">f4", "False", "(2, 1, 2, 2)"), 32, 0, "dtype '>f4' is big-endian" },
	{ "be2.npy", MAGIC, 1, DICT(">f2", "False", "(2, 1, 2, 2)"), 16, 0, "dtype '>f2' is big-endian" },
	{ "struct.npy", MAGIC, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 1, 2, 2), }", 32,
	  0, "structured dtype is not supported" },
	{ "fortran.npy", MAGIC, 1, DICT("<f4", "True", "(2, 1, 2, 2)"), 32, 0, "fortran_order is True" },
	{ "3d.npy", MAGIC, 1, DICT("<f4", "False", "(2, 4, 4)"), 128, 0,
	  "shape (2, 4, 4) has 3 dimensions; expected 4: [frames, channels, height, width]" },
	{ "1d.npy", MAGIC, 1, DICT("<f4", "False", "(8,)"), 32, 0, "shape (8,) has 1 dimensions" },
	{ "0d.npy", MAGIC, 1, DICT("<f4", "False", "()"), 4, 0, "shape () has 0 dimensions" },
	{ "5d.npy", MAGIC, 1, DICT("<f4", "False", "(1, 1, 2, 2, 2)"), 32, 0, NULL },	/* bcthw, batch 1 */
	{ "6d.npy", MAGIC, 1, DICT("<f4", "False", "(1, 1, 2, 1, 2, 2)"), 32, 0,
	  "shape (1, 1, 2, 1, 2, 2) has 6 dimensions; expected 4: [frames, channels, height, width] (layout tchw) "
	  "or 5: [batch, channels, frames, height, width] (bcthw)" },
	{ "batch.npy", MAGIC, 1, DICT("<f4", "False", "(2, 1, 1, 2, 2)"), 32, 0,
	  "shape (2, 1, 1, 2, 2) (layout bcthw) is a batch of 2 videos; a job decodes one" },
	{ "zero5.npy", MAGIC, 1, DICT("<f4", "False", "(1, 4, 0, 8, 8)"), 0, 0,
	  "shape (1, 4, 0, 8, 8) has a zero dimension" },
	{ "zero.npy", MAGIC, 1, DICT("<f4", "False", "(0, 4, 64, 64)"), 0, 0,
	  "shape (0, 4, 64, 64) has a zero dimension" },
	{ "trunc.npy", MAGIC, 1, DICT("<f4", "False", "(2, 1, 2, 2)"), 31, 0,
	  "truncated: header promises 32 bytes of data, file has 31" },
	{ "trunc0.npy", MAGIC, 1, DICT("<f2", "False", "(48, 4, 64, 64)"), 0, 0,
	  "truncated: header promises 1572864 bytes of data, file has 0" },
	{ "overflow.npy", MAGIC, 1, DICT("<f4", "False", "(4294967296, 4294967296, 2, 2)"), 0, 0, "is too large" },
	{ "overflow2.npy", MAGIC, 1, DICT("<f4", "False", "(4611686018427387904, 1, 1, 1)"), 0, 0, "is too large" },
	{ "bigdim.npy", MAGIC, 1, DICT("<f4", "False", "(99999999999999999999, 1, 1, 1)"), 0, 0,
	  "does not fit in 64 bits" },
	{ "neg.npy", MAGIC, 1, DICT("<f4", "False", "(-2, 1, 2, 2)"), 32, 0, "shape is not a tuple of non-negative" },
	{ "list.npy", MAGIC, 1, DICT("<f4", "False", "[2, 1, 2, 2]"), 32, 0, "shape is not a tuple" },
	{ "hlen.npy", MAGIC, 1, DICT("<f4", "False", "(2, 1, 2, 2)"), 0, 1000,
	  ".npy header length field runs past the end of the file" },
	{ "hlen2.npy", MAGIC, 2, DICT("<f4", "False", "(2, 1, 2, 2)"), 32, 0x7fffffff,
	  ".npy header length field is over the limit" },
	{ "nokey.npy", MAGIC, 1, "{'descr': '<f4', 'shape': (2, 1, 2, 2), }", 32, 0, "header has no 'fortran_order'" },
	{ "extra.npy", MAGIC, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 2), 'x': 1}", 32, 0,
	  "header has a key other than 'descr', 'fortran_order' and 'shape'" },
	{ "twice.npy", MAGIC, 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 2)}",
	  32, 0, "header has 'descr' twice" },
	{ "garbage.npy", MAGIC, 1, "{'descr': '<f4', 'fortran_order': Flase, 'shape': (2, 1, 2, 2), }", 32, 0,
	  "header is not a dict" },
	{ "tail.npy", MAGIC, 1, DICT("<f4", "False", "(2, 1, 2, 2)") " x", 32, 0, "header is not a dict" },
	{ "unclosed.npy", MAGIC, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 2)", 32, 0,
	  "header is not a dict" },
	{ "escape.npy", MAGIC, 1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 1, 2, 2)}", 32, 0,
	  "header is not a dict" },
};

static void test_headers(void)
{
	struct egr_npy npy;
	char err[512], want[512];
	size_t i;
	int r;

	for (i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		const char *path = make_npy(header_cases[i].name, header_cases[i].magic, header_cases[i].major, header_cases[i].dict, header_cases[i].data,
					    header_cases[i].hlen);

		err[0] = '\0';
		r = egr_npy_open(path, &npy, err, sizeof(err));
		if (!header_cases[i].want) {
			CHECK(r == 0, "%s: %d %s", header_cases[i].name, r, err);
			if (r == 0) {
				CHECK(npy.shape[0] == 2 && npy.shape[1] == 1 && npy.shape[2] == 2 && npy.shape[3] == 2,
				      "%s: shape", header_cases[i].name);
				struct stat st;

				CHECK(stat(path, &st) == 0 && npy.data_off == (uint64_t)st.st_size - header_cases[i].data,
				      "%s: data_off %llu", header_cases[i].name, (unsigned long long)npy.data_off);
				egr_npy_close(&npy);
			}
			continue;
		}
		snprintf(want, sizeof(want), "latents \"%s\": ", path);
		CHECK(r == -EINVAL, "%s: returned %d (%s)", header_cases[i].name, r, err);
		CHECK(!strncmp(err, want, strlen(want)) && strstr(err + strlen(want), header_cases[i].want),
		      "%s:\n  got  '%s'\n  want '%s...%s...'", header_cases[i].name, err, want, header_cases[i].want);
		CHECK(npy.fd == -1, "%s: fd %d after a failed open", header_cases[i].name, npy.fd);
	}

	/* files too short to hold the preamble */
	write_raw(tmp_path("short.npy"), MAGIC "\x01", 7);
	r = egr_npy_open(tmp_path("short.npy"), &npy, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, "file ends inside the .npy preamble"), "7 bytes: %d '%s'", r, err);
	write_raw(tmp_path("empty.npy"), "", 0);
	r = egr_npy_open(tmp_path("empty.npy"), &npy, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, "not a .npy file"), "empty: %d '%s'", r, err);
	write_raw(tmp_path("v2short.npy"), MAGIC "\x02\x00\x10\x00", 10);
	r = egr_npy_open(tmp_path("v2short.npy"), &npy, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, "file ends inside the .npy preamble"), "v2, 10 bytes: %d '%s'", r, err);

	r = egr_npy_open(tmp_path("missing.npy"), &npy, err, sizeof(err));
	snprintf(want, sizeof(want), "open(\"%s\"): No such file or directory", tmp_path("missing.npy"));
	CHECK(r == -ENOENT && !strcmp(err, want), "missing: %d '%s'", r, err);
	r = egr_npy_open(dir, &npy, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, "not a regular file"), "directory: %d '%s'", r, err);
}

static void test_finite(void)
{
	uint16_t h[16];
	float f[16];
	size_t bad;
	int i;

	for (i = 0; i < 16; i++) {
		h[i] = egr_half_from_float((float)i - 8.0f);
		f[i] = (float)i - 8.0f;
	}
	h[15] = 0x7bff;	/* 65504, the largest finite half */
	h[14] = 0x0001;	/* subnormal */
	f[15] = 3.4028235e38f;
	f[14] = 1e-45f;
	bad = 99;
	CHECK(egr_npy_check_finite(EGR_DT_F16, h, 16, &bad) == 0 && bad == 99, "finite f16 flagged at %zu", bad);
	CHECK(egr_npy_check_finite(EGR_DT_F32, f, 16, &bad) == 0 && bad == 99, "finite f32 flagged at %zu", bad);

	static const uint16_t hbad[] = { 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff };
	for (i = 0; i < 5; i++) {
		uint16_t t[16];

		memcpy(t, h, sizeof(t));
		t[7] = hbad[i];
		t[12] = hbad[i];
		CHECK(egr_npy_check_finite(EGR_DT_F16, t, 16, &bad) == -EDOM && bad == 7, "f16 0x%04x: bad %zu", hbad[i], bad);
		CHECK(egr_npy_check_finite(EGR_DT_F16, t, 7, &bad) == 0, "f16 0x%04x: count not honoured", hbad[i]);
	}
	const float fbad[] = { NAN, -NAN, INFINITY, -INFINITY };
	for (i = 0; i < 4; i++) {
		float t[16];

		memcpy(t, f, sizeof(t));
		t[3] = fbad[i];
		CHECK(egr_npy_check_finite(EGR_DT_F32, t, 16, &bad) == -EDOM && bad == 3, "f32 %g: bad %zu", fbad[i], bad);
	}
	/* unaligned buffers are fine */
	unsigned char raw[1 + 16 * 4];
	f[9] = NAN;
	memcpy(raw + 1, f, 16 * 4);
	CHECK(egr_npy_check_finite(EGR_DT_F32, raw + 1, 16, &bad) == -EDOM && bad == 9, "unaligned f32: %zu", bad);
	CHECK(egr_npy_check_finite(EGR_DT_F16, h, 0, &bad) == 0, "empty");

	/*
	 * The check runs a block at a time (a few KiB, branch-free) and scans
	 * a block exactly only when it holds a hit: the first bad element must
	 * be found wherever it lies (block edges, the tail, an odd count), and
	 * the largest finite values and every sign must pass.
	 */
	enum { BIG = 3 * 4096 + 5 };
	static uint16_t hb[BIG + 1];
	static uint32_t fb[BIG + 1];
	for (i = 0; i < BIG + 1; i++) {
		hb[i] = (uint16_t)((i * 2654435761u >> 7) % 0x7c00) | (i & 1 ? 0x8000 : 0);
		fb[i] = (uint32_t)((i * 2654435761u) % 0x7f800000u) | (i & 2 ? 0x80000000u : 0);
	}
	hb[17] = 0x7bff;
	hb[18] = 0xfbff;
	fb[19] = 0x7f7fffffu;
	CHECK(egr_npy_check_finite(EGR_DT_F16, hb, BIG, &bad) == 0, "big finite f16 flagged at %zu", bad);
	CHECK(egr_npy_check_finite(EGR_DT_F32, fb, BIG, &bad) == 0, "big finite f32 flagged at %zu", bad);
	static const size_t at[] = { 0, 2047, 2048, 2049, 4095, 4096, 6143, 8192, BIG - 1 };
	const uint16_t hlast = hb[BIG - 1];
	const uint32_t flast = fb[BIG - 1];
	for (i = 0; i < (int)(sizeof(at) / sizeof(at[0])); i++) {
		const uint16_t hs = hb[at[i]];
		const uint32_t fs = fb[at[i]];

		hb[BIG - 1] = 0x7c00;	/* a later one, which must not win */
		fb[BIG - 1] = 0x7f800000u;
		hb[at[i]] = i & 1 ? 0xfc00 : 0x7d00;
		fb[at[i]] = i & 1 ? 0xff800000u : 0x7fc00001u;
		CHECK(egr_npy_check_finite(EGR_DT_F16, hb, BIG, &bad) == -EDOM && bad == at[i], "big f16: bad %zu, want %zu",
		      bad, at[i]);
		CHECK(egr_npy_check_finite(EGR_DT_F32, fb, BIG, &bad) == -EDOM && bad == at[i], "big f32: bad %zu, want %zu",
		      bad, at[i]);
		CHECK(egr_npy_check_finite(EGR_DT_F16, hb, at[i], &bad) == 0, "big f16: count %zu not honoured", at[i]);
		CHECK(egr_npy_check_finite(EGR_DT_F32, fb, at[i], &bad) == 0, "big f32: count %zu not honoured", at[i]);
		hb[at[i]] = hs;
		fb[at[i]] = fs;
		hb[BIG - 1] = hlast;
		fb[BIG - 1] = flast;
	}
}

static uint16_t h_of(float f)
{
	return egr_half_from_float(f);
}

static void test_half(void)
{
	uint32_t i, u;
	int bad = 0;

	/* every half: exact value, and back to the same bits (NaN payloads too) */
	for (i = 0; i < 65536; i++) {
		uint16_t h = (uint16_t)i, back;
		float f = egr_half_to_float(h);
		int e = (h >> 10) & 0x1f, m = h & 0x3ff;
		double want;

		back = egr_half_from_float(f);
		if (back != h && bad++ < 5)
			CHECK(0, "half 0x%04x -> %a -> 0x%04x", h, f, back);
		if (e == 31) {
			if ((m ? !isnan(f) : !isinf(f)) && bad++ < 5)
				CHECK(0, "half 0x%04x -> %a", h, f);
			continue;
		}
		want = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m, -24);
		if (h & 0x8000)
			want = -want;
		if (((double)f != want || !!signbit(f) != !!(h & 0x8000)) && bad++ < 5)
			CHECK(0, "half 0x%04x -> %a, want %a", h, f, want);
	}

	/* round to nearest even at every midpoint between neighbouring halves */
	for (i = 0; i < 0x7bff; i++) {
		for (int s = 0; s < 2; s++) {
			uint16_t lo = (uint16_t)(i | (s << 15)), hi = (uint16_t)(lo + 1);
			float mid = (float)(((double)egr_half_to_float(lo) + (double)egr_half_to_float(hi)) / 2);
			float above = nextafterf(mid, s ? -INFINITY : INFINITY);
			float below = nextafterf(mid, 0.0f);
			uint16_t even = (lo & 1) ? hi : lo;

			if ((h_of(mid) != even || h_of(above) != hi || h_of(below) != lo) && bad++ < 5)
				CHECK(0, "between 0x%04x and 0x%04x: mid %a -> 0x%04x, above -> 0x%04x, below -> 0x%04x", lo,
				      hi, mid, h_of(mid), h_of(above), h_of(below));
		}
	}
	CHECK(h_of(65504.0f) == 0x7bff, "65504");
	CHECK(h_of(65519.996f) == 0x7bff, "65519.996 -> 0x%04x", h_of(65519.996f));
	CHECK(h_of(65520.0f) == 0x7c00, "65520 -> 0x%04x", h_of(65520.0f));
	CHECK(h_of(-1e10f) == 0xfc00, "-1e10 -> 0x%04x", h_of(-1e10f));
	CHECK(h_of(INFINITY) == 0x7c00 && h_of(-INFINITY) == 0xfc00, "inf");
	CHECK((h_of(NAN) & 0x7fff) > 0x7c00, "nan -> 0x%04x", h_of(NAN));
	memcpy(&u, &(float){ 0 }, 4);
	u = 0x7f800001;	/* NaN with only low payload bits: must not become Inf */
	float snan;
	memcpy(&snan, &u, 4);
	CHECK((h_of(snan) & 0x7fff) > 0x7c00, "low-payload NaN -> 0x%04x", h_of(snan));
	CHECK(h_of(0x1p-25f) == 0x0000, "2^-25 (tie) -> 0x%04x", h_of(0x1p-25f));
	CHECK(h_of(nextafterf(0x1p-25f, 1.0f)) == 0x0001, "just over 2^-25 -> 0x%04x", h_of(nextafterf(0x1p-25f, 1.0f)));
	CHECK(h_of(0x1.8p-24f) == 0x0002, "1.5 * 2^-24 (tie) -> 0x%04x", h_of(0x1.8p-24f));
	CHECK(h_of(-0.0f) == 0x8000 && h_of(1e-30f) == 0 && h_of(-1e-30f) == 0x8000, "zeros");
	CHECK(h_of(0x1.ffcp-15f) == 0x0400, "rounds up into the smallest normal: 0x%04x", h_of(0x1.ffcp-15f));

#ifdef __FLT16_MAX__
	/* an independent reference: the compiler's own float -> _Float16 */
	for (u = 0; u < 0xffffff00u; u += 251) {
		float f;
		_Float16 r;
		uint16_t want;

		memcpy(&f, &u, 4);
		if (isnan(f))
			continue;
		r = (_Float16)f;
		memcpy(&want, &r, 2);
		if (h_of(f) != want && bad++ < 5)
			CHECK(0, "float %a (0x%08x) -> 0x%04x, _Float16 says 0x%04x", f, u, h_of(f), want);
	}
#endif
}

/* ---- layouts: 5-D files read as frames of [c][h][w] ---- */

/* reference latents, [t][c][y][x], and the same values in other layouts */
#define LT 70	/* past the reader's 64 frames per preadv */
#define LC 3
#define LH 2
#define LW 5
#define LN (LT * LC * LH * LW)

static float ref_tchw[LN], ref_cthw[LN];

static void make_ref(void)
{
	for (int t = 0; t < LT; t++)
		for (int c = 0; c < LC; c++)
			for (int i = 0; i < LH * LW; i++) {
				/* multiples of 1/8 in [-8, 8): exact in f16 and bf16 */
				float v = (float)((t * 7 + c * 3 + i * 5) % 128) * 0.125f - 8.0f;

				ref_tchw[((t * LC) + c) * LH * LW + i] = v;
				ref_cthw[((c * LT) + t) * LH * LW + i] = v;
			}
}

/*
 * n reads as ref_tchw: every frame range in a few shapes, the whole file in
 * one call; dtype F16 compares halves.
 */
static void check_reads(const char *what, struct egr_npy *n, uint32_t want_dtype)
{
	static const uint64_t ranges[][2] = { { 0, LT }, { 0, 1 }, { 1, 2 }, { 5, 64 }, { 3, 67 }, { LT - 1, 1 } };
	static unsigned char got[LN * 4 + 16];	/* + a guard */
	const size_t fe = LC * LH * LW;
	char err[512];

	CHECK(n->shape[0] == LT && n->shape[1] == LC && n->shape[2] == LH && n->shape[3] == LW,
	      "%s: shape %llu %llu %llu %llu", what, (unsigned long long)n->shape[0], (unsigned long long)n->shape[1],
	      (unsigned long long)n->shape[2], (unsigned long long)n->shape[3]);
	CHECK(n->dtype == want_dtype && n->frame_bytes == fe * want_dtype, "%s: dtype %u frame_bytes %llu", what,
	      n->dtype, (unsigned long long)n->frame_bytes);
	if (n->shape[0] != LT || n->shape[1] != LC || n->dtype != want_dtype)
		return;
	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		uint64_t first = ranges[r][0], count = ranges[r][1];
		int ret;

		memset(got, 0xee, sizeof(got));
		ret = egr_npy_read(n, first, count, got, err, sizeof(err));
		CHECK(ret == 0, "%s: read %llu+%llu: %s", what, (unsigned long long)first, (unsigned long long)count, err);
		for (size_t i = 0; ret == 0 && i < count * fe; i++) {
			float v;

			if (want_dtype == EGR_DT_F16) {
				uint16_t h;

				memcpy(&h, got + 2 * i, 2);
				v = egr_half_to_float(h);
			} else {
				memcpy(&v, got + 4 * i, 4);
			}
			if (v != ref_tchw[first * fe + i]) {
				CHECK(0, "%s: read %llu+%llu: element %zu is %g, want %g", what, (unsigned long long)first,
				      (unsigned long long)count, i, v, ref_tchw[first * fe + i]);
				break;
			}
		}
		CHECK(got[count * fe * want_dtype] == 0xee, "%s: read %llu+%llu wrote past its frames", what,
		      (unsigned long long)first, (unsigned long long)count);
	}
}

static void test_layouts(void)
{
	const uint64_t tchw[4] = { LT, LC, LH, LW }, bcthw[5] = { 1, LC, LT, LH, LW }, btchw[5] = { 1, LT, LC, LH, LW };
	struct egr_npy n;
	char err[512];
	int r;

	make_ref();
	r = egr_npy_write_nd(tmp_path("l_bcthw.npy"), EGR_DT_F32, 5, bcthw, ref_cthw, err, sizeof(err));
	CHECK(r == 0, "write bcthw: %s", err);
	r = egr_npy_write_nd(tmp_path("l_bcthw16.npy"), EGR_DT_F16, 5, bcthw, ref_cthw, err, sizeof(err));
	CHECK(r == 0, "write bcthw f16: %s", err);
	r = egr_npy_write_nd(tmp_path("l_btchw.npy"), EGR_DT_F32, 5, btchw, ref_tchw, err, sizeof(err));
	CHECK(r == 0, "write btchw: %s", err);
	r = egr_npy_write(tmp_path("l_tchw.npy"), EGR_DT_F32, tchw, ref_tchw, err, sizeof(err));
	CHECK(r == 0, "write tchw: %s", err);

	static const struct {
		const char *file, *what;
		uint32_t layout, dtype, want_layout;
	} cases[] = {
		{ "l_bcthw.npy", "bcthw by rank", EGR_LAYOUT_AUTO, EGR_DT_F32, EGR_LAYOUT_BCTHW },
		{ "l_bcthw.npy", "bcthw named", EGR_LAYOUT_BCTHW, EGR_DT_F32, EGR_LAYOUT_BCTHW },
		{ "l_bcthw16.npy", "bcthw f16", EGR_LAYOUT_AUTO, EGR_DT_F16, EGR_LAYOUT_BCTHW },
		{ "l_btchw.npy", "btchw", EGR_LAYOUT_BTCHW, EGR_DT_F32, EGR_LAYOUT_BTCHW },
		{ "l_tchw.npy", "tchw by rank", EGR_LAYOUT_AUTO, EGR_DT_F32, EGR_LAYOUT_TCHW },
		{ "l_tchw.npy", "tchw named", EGR_LAYOUT_TCHW, EGR_DT_F32, EGR_LAYOUT_TCHW },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = egr_npy_open_as(tmp_path(cases[i].file), cases[i].layout, NULL, &n, err, sizeof(err));
		CHECK(r == 0, "%s: open: %s", cases[i].what, err);
		if (r)
			continue;
		CHECK(n.layout == cases[i].want_layout, "%s: layout %u", cases[i].what, n.layout);
		check_reads(cases[i].what, &n, cases[i].dtype);
		egr_npy_close(&n);
	}

	/* a bcthw file cut after open: the gathering read says so */
	r = egr_npy_open(tmp_path("l_bcthw.npy"), &n, err, sizeof(err));
	CHECK(r == 0, "reopen bcthw: %s", err);
	if (r == 0) {
		static float buf[LN];

		CHECK(truncate(tmp_path("l_bcthw.npy"), (off_t)(n.data_off + (LN - 10) * 4)) == 0, "truncate");
		r = egr_npy_read(&n, 0, LT, buf, err, sizeof(err));
		CHECK(r == -EIO && strstr(err, "l_bcthw.npy") && strstr(err, "truncated since it was opened"),
		      "read of a cut bcthw file: %d '%s'", r, err);
		egr_npy_close(&n);
	}
}

static void test_layout_errors(void)
{
	const uint64_t s4[4] = { 2, 1, 2, 2 }, s5[5] = { 1, 1, 2, 2, 2 };
	static const float z[16];
	struct egr_npy n;
	char err[512];
	int r;

	CHECK(egr_npy_write(tmp_path("e4.npy"), EGR_DT_F32, s4, z, err, sizeof(err)) == 0, "%s", err);
	CHECK(egr_npy_write_nd(tmp_path("e5.npy"), EGR_DT_F32, 5, s5, z, err, sizeof(err)) == 0, "%s", err);
	static const struct {
		const char *file;
		uint32_t layout;
		const char *key, *want;
	} cases[] = {
		{ "e4.npy", EGR_LAYOUT_BCTHW, NULL,
		  "layout = bcthw needs 5 [batch, channels, frames, height, width] dimensions; shape (2, 1, 2, 2) has 4" },
		{ "e4.npy", EGR_LAYOUT_BTCHW, NULL,
		  "layout = btchw needs 5 [batch, frames, channels, height, width] dimensions; shape (2, 1, 2, 2) has 4" },
		{ "e5.npy", EGR_LAYOUT_TCHW, NULL,
		  "layout = tchw needs 4 [frames, channels, height, width] dimensions; shape (1, 1, 2, 2, 2) has 5" },
		{ "e5.npy", 7, NULL, "layout 7 is not tchw, bcthw or btchw" },
		{ "e4.npy", EGR_LAYOUT_AUTO, "latents", "latents_key = latents applies to .safetensors latents only" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[600];

		r = egr_npy_open_as(tmp_path(cases[i].file), cases[i].layout, cases[i].key, &n, err, sizeof(err));
		snprintf(want, sizeof(want), "latents \"%s\": %s", tmp_path(cases[i].file), cases[i].want);
		CHECK(r == -EINVAL && !strcmp(err, want), "case %zu: %d\n  got  '%s'\n  want '%s'", i, r, err, want);
		CHECK(n.fd == -1, "case %zu: fd %d after a failed open", i, n.fd);
	}
	/* "" is no key */
	r = egr_npy_open_as(tmp_path("e4.npy"), EGR_LAYOUT_AUTO, "", &n, err, sizeof(err));
	CHECK(r == 0, "empty key: %s", err);
	if (r == 0)
		egr_npy_close(&n);
}

/* ---- .safetensors latents ---- */

/* a hand-made safetensors file: the JSON header (padded to 8), then data */
static const char *make_st(const char *name, const char *json, const void *data, size_t len)
{
	static unsigned char buf[1 << 16];
	size_t hl = (strlen(json) + 7) / 8 * 8;
	const char *path = tmp_path(name);

	if (8 + hl + len > sizeof(buf)) {
		printf("%s:%d: make_st: too big\n", __FILE__, __LINE__);
		exit(1);
	}
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
	memset(buf + 8, ' ', hl);
	memcpy(buf + 8, json, strlen(json));
	memcpy(buf + 8 + hl, data, len);
	write_raw(path, buf, 8 + hl + len);
	return path;
}

static void test_st_dtypes(void)
{
	static uint16_t bf[LN];
	struct egr_st_wtensor wt = { .name = "latents", .ndim = 5, .shape = { 1, LC, LT, LH, LW }, .data = ref_cthw };
	struct egr_npy n;
	char json[256], err[512];
	int r;

	/* F32 and F16 through egr_st_write, bcthw */
	for (int k = 0; k < 2; k++) {
		wt.dtype = k ? EGR_ST_F16 : EGR_ST_F32;
		r = egr_st_write(tmp_path("s.safetensors"), &wt, 1, err, sizeof(err));
		CHECK(r == 0, "egr_st_write: %s", err);
		r = egr_npy_open(tmp_path("s.safetensors"), &n, err, sizeof(err));
		CHECK(r == 0, "safetensors %s: %s", k ? "F16" : "F32", err);
		if (r)
			continue;
		check_reads(k ? "safetensors F16 bcthw" : "safetensors F32 bcthw", &n, k ? EGR_DT_F16 : EGR_DT_F32);
		egr_npy_close(&n);
	}
	/* BF16, by hand (egr_st_write has no BF16): delivered as float32 */
	for (int i = 0; i < LN; i++) {
		uint32_t u;

		memcpy(&u, &ref_cthw[i], 4);
		bf[i] = (uint16_t)(u >> 16);	/* exact: the values need 8 bits of mantissa at most */
	}
	snprintf(json, sizeof(json), "{\"__metadata__\":{\"format\":\"pt\"},\"lat\":{\"dtype\":\"BF16\",\"shape\":[1,%d,%d,%d,%d],"
		 "\"data_offsets\":[0,%d]}}", LC, LT, LH, LW, LN * 2);
	r = egr_npy_open(make_st("bf.safetensors", json, bf, sizeof(bf)), &n, err, sizeof(err));
	CHECK(r == 0, "safetensors BF16: %s", err);
	if (r == 0) {
		CHECK(n.src_bf16 && n.src_elem == 2, "BF16: src_bf16 %u src_elem %u", n.src_bf16, n.src_elem);
		check_reads("safetensors BF16 bcthw", &n, EGR_DT_F32);
		egr_npy_close(&n);
	}
	/* BF16 tchw (the contiguous read), the tensor behind another one */
	for (int i = 0; i < LN; i++) {
		uint32_t u;

		memcpy(&u, &ref_tchw[i], 4);
		bf[i] = (uint16_t)(u >> 16);
	}
	static unsigned char two[16 + LN * 2];
	memset(two, 0x7f, 16);	/* a NaN-filled first tensor: must not be what is read */
	memcpy(two + 16, bf, sizeof(bf));
	snprintf(json, sizeof(json), "{\"other\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
		 "\"lat\":{\"dtype\":\"BF16\",\"shape\":[%d,%d,%d,%d],\"data_offsets\":[16,%d]}}", LT, LC, LH, LW,
		 16 + LN * 2);
	r = egr_npy_open_as(make_st("two.safetensors", json, two, sizeof(two)), EGR_LAYOUT_AUTO, "lat", &n, err,
			    sizeof(err));
	CHECK(r == 0, "safetensors BF16 tchw by key: %s", err);
	if (r == 0) {
		CHECK(n.layout == EGR_LAYOUT_TCHW, "layout %u", n.layout);
		check_reads("safetensors BF16 tchw", &n, EGR_DT_F32);
		egr_npy_close(&n);
	}
}

static void test_st_errors(void)
{
	static const unsigned char zeros[64];
	struct egr_npy n;
	char err[512], want[600];
	const char *path;
	int r;

	path = make_st("ab.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[0,16]},"
			"\"b\":{\"dtype\":\"F16\",\"shape\":[2,1,2,2],\"data_offsets\":[16,32]}}", zeros, 32);
	r = egr_npy_open(path, &n, err, sizeof(err));
	snprintf(want, sizeof(want), "latents \"%s\": 2 tensors ('a', 'b'); name the latents with latents_key", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "two tensors, no key: %d\n  got  '%s'\n  want '%s'", r, err, want);
	r = egr_npy_open_as(path, EGR_LAYOUT_AUTO, "c", &n, err, sizeof(err));
	snprintf(want, sizeof(want), "latents \"%s\": no tensor 'c' (latents_key); the file has 'a', 'b'", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "unknown key: %d\n  got  '%s'\n  want '%s'", r, err, want);
	CHECK(n.fd == -1, "fd %d after a failed open", n.fd);
	r = egr_npy_open_as(path, EGR_LAYOUT_AUTO, "b", &n, err, sizeof(err));
	CHECK(r == 0 && n.dtype == EGR_DT_F16 && n.shape[0] == 2 && n.data_off % 8 == 0, "key b: %d %s", r, err);
	if (r == 0)
		egr_npy_close(&n);

	path = make_st("i32.safetensors", "{\"x\":{\"dtype\":\"I32\",\"shape\":[1,1,2,2],\"data_offsets\":[0,16]}}",
		       zeros, 16);
	r = egr_npy_open(path, &n, err, sizeof(err));
	snprintf(want, sizeof(want), "latents \"%s\": tensor 'x' has dtype I32; F32, F16 or BF16 are supported", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "I32: %d\n  got  '%s'\n  want '%s'", r, err, want);

	path = make_st("r3.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]}}",
		       zeros, 16);
	r = egr_npy_open(path, &n, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, "shape (1, 2, 2) has 3 dimensions"), "rank 3: %d '%s'", r, err);

	path = make_st("b2.safetensors", "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2,1,1,2,2],\"data_offsets\":[0,16]}}",
		       zeros, 16);
	r = egr_npy_open(path, &n, err, sizeof(err));
	CHECK(r == -EINVAL && strstr(err, "is a batch of 2 videos"), "batch 2: %d '%s'", r, err);

	path = make_st("none.safetensors", "{}", zeros, 0);
	r = egr_npy_open(path, &n, err, sizeof(err));
	snprintf(want, sizeof(want), "latents \"%s\": 0 tensors (); name the latents with latents_key", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "no tensors: %d '%s'", r, err);

	/* egr_st's own checks, told as latents */
	path = make_st("json.safetensors", "{\"x\":{\"dtype\":\"F32\",", zeros, 0);
	r = egr_npy_open(path, &n, err, sizeof(err));
	snprintf(want, sizeof(want), "latents \"%s\": header is not valid JSON", path);
	CHECK(r == -EINVAL && !strncmp(err, want, strlen(want)), "bad JSON: %d '%s'", r, err);
	path = make_st("range.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[0,16]}}",
		       zeros, 8);
	r = egr_npy_open(path, &n, err, sizeof(err));
	snprintf(want, sizeof(want), "latents \"%s\": ", path);
	CHECK(r == -EINVAL && !strncmp(err, want, strlen(want)), "data past the end: %d '%s'", r, err);
}

static void test_safetensors(void)
{
	test_st_dtypes();
	test_st_errors();
}

/* ---- numpy interop ---- */

static const char interop_py[] =
	"import sys\n"
	"import numpy as np\n"
	"np.seterr(all='ignore')  # the inputs include values that overflow float16 on purpose\n"
	"d = sys.argv[1]\n"
	"def expect():\n"
	"    return (np.arange(2 * 3 * 4 * 5) * 0.25 - 30).reshape(2, 3, 4, 5)\n"
	"if sys.argv[2] == 'check':\n"
	"    # what egr_npy_write wrote\n"
	"    a = np.load(d + '/c32.npy')\n"
	"    assert a.dtype == np.float32 and a.shape == (2, 3, 4, 5), (a.dtype, a.shape)\n"
	"    assert (a == expect()).all()\n"
	"    b = np.load(d + '/c16.npy')\n"
	"    assert b.dtype == np.float16 and b.shape == (2, 3, 4, 5), (b.dtype, b.shape)\n"
	"    assert (b == expect()).all()\n"
	"    # float32 -> float16 rounding: ours and numpy's, bit for bit\n"
	"    src = np.load(d + '/r32.npy')\n"
	"    ours = np.load(d + '/r16.npy')\n"
	"    theirs = src.astype(np.float16)\n"
	"    assert ours.shape == src.shape\n"
	"    same = (ours.view(np.uint16) == theirs.view(np.uint16)) | (np.isnan(ours) & np.isnan(theirs))\n"
	"    bad = np.flatnonzero(~same)\n"
	"    assert bad.size == 0, [(src.flat[i], ours.flat[i], theirs.flat[i]) for i in bad[:5]]\n"
	"else:\n"
	"    # what egr_npy_open must read\n"
	"    e = expect()\n"
	"    np.save(d + '/p32.npy', e.astype(np.float32))\n"
	"    np.save(d + '/p16.npy', e.astype(np.float16))\n"
	"    for v in (2, 3):\n"
	"        with open(d + '/p32v%d.npy' % v, 'wb') as f:\n"
	"            np.lib.format.write_array(f, e.astype(np.float32), version=(v, 0))\n"
	"    np.save(d + '/p64.npy', e)\n"
	"    np.save(d + '/pbe.npy', e.astype('>f4'))\n"
	"    np.save(d + '/pfo.npy', np.asfortranarray(e.astype(np.float32)))\n"
	"    np.save(d + '/p3d.npy', e.astype(np.float32)[0])\n";

static int run_py(const char *script, const char *mode)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' %s", script, dir, mode);
	return system(cmd);
}

static void test_numpy(void)
{
	const uint64_t shape[4] = { 2, 3, 4, 5 }, rshape[4] = { 1, 1, 1, 4096 };
	float e[120], r[4096], got[120];
	uint16_t h[120];
	char script[256];
	struct egr_npy npy;
	char err[512];
	uint64_t s = 42;
	int i, ret;

	if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
		printf("test_npy: numpy not available: interop checks skipped\n");
		return;
	}
	snprintf(script, sizeof(script), "%s", tmp_path("interop.py"));
	write_raw(script, interop_py, strlen(interop_py));

	for (i = 0; i < 120; i++)
		e[i] = (float)i * 0.25f - 30.0f;
	/* random bit patterns plus the cases rounding gets wrong first */
	for (i = 0; i < 4096; i++) {
		uint32_t u;

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		u = (uint32_t)(s >> 32);
		if (i % 4 == 1)	/* near the half range */
			u = 0x33000000u + (u % (0x47800000u - 0x33000000u));
		if (i % 4 == 2)	/* exact ties */
			u = (u & 0xffffe000u) | 0x1000u;
		memcpy(&r[i], &u, 4);
	}
	r[0] = 65520.0f;
	r[1] = 0x1p-25f;
	r[2] = 0x1.8p-24f;
	r[3] = NAN;

	ret = egr_npy_write(tmp_path("c32.npy"), EGR_DT_F32, shape, e, err, sizeof(err));
	CHECK(ret == 0, "%s", err);
	ret = egr_npy_write(tmp_path("c16.npy"), EGR_DT_F16, shape, e, err, sizeof(err));
	CHECK(ret == 0, "%s", err);
	ret = egr_npy_write(tmp_path("r32.npy"), EGR_DT_F32, rshape, r, err, sizeof(err));
	CHECK(ret == 0, "%s", err);
	ret = egr_npy_write(tmp_path("r16.npy"), EGR_DT_F16, rshape, r, err, sizeof(err));
	CHECK(ret == 0, "%s", err);
	CHECK(run_py(script, "check") == 0, "numpy does not read egr_npy_write's files as written (see above)");

	CHECK(run_py(script, "write") == 0, "numpy could not write the test files");
	static const char *const good[] = { "p32.npy", "p16.npy", "p32v2.npy", "p32v3.npy" };
	for (i = 0; i < 4; i++) {
		ret = egr_npy_open(tmp_path(good[i]), &npy, err, sizeof(err));
		CHECK(ret == 0, "%s: %s", good[i], err);
		if (ret)
			continue;
		CHECK(npy.shape[0] == 2 && npy.shape[1] == 3 && npy.shape[2] == 4 && npy.shape[3] == 5, "%s: shape",
		      good[i]);
		ret = egr_npy_read(&npy, 0, 2, npy.dtype == EGR_DT_F16 ? (void *)h : (void *)got, err, sizeof(err));
		CHECK(ret == 0, "%s: %s", good[i], err);
		if (npy.dtype == EGR_DT_F16)
			for (int k = 0; k < 120; k++)
				got[k] = egr_half_to_float(h[k]);
		CHECK(!memcmp(got, e, sizeof(e)), "%s: values differ", good[i]);
		egr_npy_close(&npy);
	}
	static const struct {
		const char *name, *want;
	} bad[] = {
		{ "p64.npy", "dtype '<f8' (float64) is not supported; save float16 or float32" },
		{ "pbe.npy", "dtype '>f4' is big-endian" },
		{ "pfo.npy", "fortran_order is True" },
		{ "p3d.npy", "shape (3, 4, 5) has 3 dimensions" },
	};
	for (i = 0; i < 4; i++) {
		ret = egr_npy_open(tmp_path(bad[i].name), &npy, err, sizeof(err));
		CHECK(ret == -EINVAL && strstr(err, bad[i].want), "%s: %d '%s'", bad[i].name, ret, err);
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/egr-test-npy-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_write_read();
	test_headers();
	test_layouts();
	test_layout_errors();
	test_safetensors();
	test_finite();
	test_half();
	test_numpy();

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("warning: could not remove %s\n", dir);
	if (failures)
		printf("test_npy: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
