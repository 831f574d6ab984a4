/*
 * npy: NumPy .npy reader and writer for latents (see npy.h).
 *
 * The header is a Python dict literal; numpy writes it in one fixed shape,
 * but users' files also come from other writers, so the parser accepts the
 * three keys in any order with any spacing and rejects everything else.  It
 * never evaluates anything and never reads past the header it was given.
 * Every product of the shape is checked for overflow: the header is input.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/formats/npy.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads little-endian data in place: port it before building big-endian"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* numpy itself refuses headers over 10000 bytes by default; be a little kinder */
#define NPY_HEADER_MAX 65536
#define NPY_MAX_DIMS 32
/* numpy >= 1.14 pads the header so that the data starts 64-byte aligned */
#define NPY_ALIGN 64

/* ---- header dict ---- */

struct npy_hdr {
	char descr[32];
	int fortran;
	uint64_t shape[NPY_MAX_DIMS];
	unsigned ndim;
};

struct lex {
	const char *p, *end;
};

static void skip_ws(struct lex *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
		l->p++;
}

static int accept(struct lex *l, char c)
{
	skip_ws(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return 1;
	}
	return 0;
}

/* a quoted string without escapes; 0 if there is none or it does not fit */
static int lex_string(struct lex *l, char *out, size_t outlen)
{
	const char *s;
	char q;

	skip_ws(l);
	if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
		return 0;
	q = *l->p++;
	for (s = l->p; l->p < l->end && *l->p != q; l->p++)
		if (*l->p == '\\' || (unsigned char)*l->p < 0x20)
			return 0;
	if (l->p >= l->end || (size_t)(l->p - s) >= outlen)
		return 0;
	memcpy(out, s, (size_t)(l->p - s));
	out[l->p - s] = '\0';
	l->p++;
	return 1;
}

static int lex_word(struct lex *l, const char *w)
{
	size_t n = strlen(w);

	skip_ws(l);
	if ((size_t)(l->end - l->p) >= n && !memcmp(l->p, w, n)) {
		l->p += n;
		return 1;
	}
	return 0;
}

/* a non-negative integer; Python 2 numpy wrote "48L" */
static int lex_uint(struct lex *l, uint64_t *v, char *msg, size_t msglen)
{
	const char *s;

	skip_ws(l);
	*v = 0;
	for (s = l->p; l->p < l->end && *l->p >= '0' && *l->p <= '9'; l->p++) {
		if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, (uint64_t)(*l->p - '0'), v)) {
			egr_errf(msg, msglen, "a dimension of the shape does not fit in 64 bits");
			return 0;
		}
	}
	if (l->p == s) {
		egr_errf(msg, msglen, "shape is not a tuple of non-negative integers");
		return 0;
	}
	if (l->p < l->end && *l->p == 'L')
		l->p++;
	return 1;
}

static int parse_shape(struct lex *l, struct npy_hdr *h, char *msg, size_t msglen)
{
	if (!accept(l, '(')) {
		egr_errf(msg, msglen, "shape is not a tuple");
		return 0;
	}
	h->ndim = 0;
	if (accept(l, ')'))
		return 1;	/* () : a 0-d array, refused by the caller */
	for (;;) {
		if (h->ndim == NPY_MAX_DIMS) {
			egr_errf(msg, msglen, "shape has more than %d dimensions", NPY_MAX_DIMS);
			return 0;
		}
		if (!lex_uint(l, &h->shape[h->ndim++], msg, msglen))
			return 0;
		if (accept(l, ')'))
			return 1;
		if (!accept(l, ',')) {
			egr_errf(msg, msglen, "shape is not a tuple of non-negative integers");
			return 0;
		}
		if (accept(l, ')'))	/* (48,) */
			return 1;
	}
}

static int parse_header(const char *text, size_t len, struct npy_hdr *h, char *msg, size_t msglen)
{
	struct lex l = { text, text + len };
	unsigned seen = 0;	/* 1 descr, 2 fortran_order, 4 shape */

	if (memchr(text, '\0', len)) {
		egr_errf(msg, msglen, "header contains a NUL byte");
		return 0;
	}
	if (!accept(&l, '{'))
		goto syntax;
	while (!accept(&l, '}')) {
		char key[32];
		unsigned bit;

		if (!lex_string(&l, key, sizeof(key)) || !accept(&l, ':'))
			goto syntax;
		if (!strcmp(key, "descr"))
			bit = 1;
		else if (!strcmp(key, "fortran_order"))
			bit = 2;
		else if (!strcmp(key, "shape"))
			bit = 4;
		else {
			egr_errf(msg, msglen, "header has an unknown key '%s'", key);
			return 0;
		}
		if (seen & bit) {
			egr_errf(msg, msglen, "header has '%s' twice", key);
			return 0;
		}
		seen |= bit;
		switch (bit) {
		case 1:
			skip_ws(&l);
			if (l.p < l.end && *l.p == '[') {
				egr_errf(msg, msglen, "structured dtype is not supported; save a plain float16 or float32 array");
				return 0;
			}
			if (!lex_string(&l, h->descr, sizeof(h->descr)))
				goto syntax;
			break;
		case 2:
			if (lex_word(&l, "True"))
				h->fortran = 1;
			else if (lex_word(&l, "False"))
				h->fortran = 0;
			else
				goto syntax;
			break;
		case 4:
			if (!parse_shape(&l, h, msg, msglen))
				return 0;
			break;
		}
		if (!accept(&l, ',')) {
			if (!accept(&l, '}'))
				goto syntax;
			break;
		}
	}
	skip_ws(&l);
	if (l.p != l.end)
		goto syntax;
	if (seen != 7) {
		egr_errf(msg, msglen, "header has no '%s'", !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
		return 0;
	}
	return 1;
syntax:
	egr_errf(msg, msglen, "header is not a dict of 'descr', 'fortran_order' and 'shape' (at byte %zu)",
		 (size_t)(l.p - text));
	return 0;
}

/* "'<f8' (float64)" for messages */
static void dtype_desc(const char *descr, char *buf, size_t len)
{
	const char *kind = NULL;
	const char *s = descr;
	unsigned long size;
	char *end;

	if (*s == '<' || *s == '>' || *s == '|' || *s == '=')
		s++;
	switch (*s) {
	case 'f':
		kind = "float";
		break;
	case 'i':
		kind = "int";
		break;
	case 'u':
		kind = "uint";
		break;
	case 'c':
		kind = "complex";
		break;
	case 'b':
		kind = "bool";
		break;
	}
	if (kind && s[1] >= '1' && s[1] <= '9') {
		size = strtoul(s + 1, &end, 10);
		if (!*end && size <= 64) {
			if (*s == 'b')
				snprintf(buf, len, "'%s' (bool)", descr);
			else
				snprintf(buf, len, "'%s' (%s%lu)", descr, kind, size * 8);
			return;
		}
	}
	snprintf(buf, len, "'%s'", descr);
}

static void shape_str(const struct npy_hdr *h, char *buf, size_t len)
{
	size_t o = 0;
	unsigned i;

	o += (size_t)snprintf(buf, len, "(");
	for (i = 0; i < h->ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu64, i ? ", " : "", h->shape[i]);
	if (o < len)
		snprintf(buf + o, len - o, "%s)", h->ndim == 1 ? "," : "");
}

/* ---- reading ---- */

static int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			*got = done;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

/* the file's name for a message when only the descriptor is at hand */
static void fd_name(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		snprintf(buf, len, "fd %d", fd);
	else
		buf[n] = '\0';
}

int egr_npy_open(const char *path, struct egr_npy *n, char *err, size_t errlen)
{
	unsigned char pre[12];
	struct npy_hdr h = { .ndim = 0 };
	char msg[256], a[200];
	char *text = NULL;
	uint64_t size, hlen, elems, bytes, end;
	size_t got, pre_len;
	struct stat st;
	unsigned i;
	int fd, ret;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		egr_errf(err, errlen, "fstat(\"%s\"): %s", path, strerror(-ret));
		goto fail;
	}
	ret = -EINVAL;
	if (!S_ISREG(st.st_mode)) {
		egr_errf(err, errlen, "latents \"%s\": not a regular file", path);
		goto fail;
	}
	size = (uint64_t)st.st_size;
	ret = pread_full(fd, pre, sizeof(pre), 0, &got);
	if (ret < 0) {
		egr_errf(err, errlen, "pread(\"%s\"): %s", path, strerror(-ret));
		goto fail;
	}
	ret = -EINVAL;
	if (got < NPY_MAGIC_LEN || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN)) {
		egr_errf(err, errlen, "latents \"%s\": not a .npy file (no \\x93NUMPY magic)", path);
		goto fail;
	}
	if (got < 10) {
		egr_errf(err, errlen, "latents \"%s\": file ends inside the .npy preamble", path);
		goto fail;
	}
	if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0) {
		egr_errf(err, errlen, "latents \"%s\": .npy format version %u.%u is not supported (1.0, 2.0 and 3.0 are)",
			 path, pre[6], pre[7]);
		goto fail;
	}
	if (pre[6] == 1) {
		pre_len = 10;
		hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
	} else {
		pre_len = 12;
		if (got < 12) {
			egr_errf(err, errlen, "latents \"%s\": file ends inside the .npy preamble", path);
			goto fail;
		}
		hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
	}
	if (hlen > NPY_HEADER_MAX) {
		egr_errf(err, errlen, "latents \"%s\": header length %" PRIu64 " is over the limit of %d bytes", path,
			 hlen, NPY_HEADER_MAX);
		goto fail;
	}
	if (pre_len + hlen > size) {
		egr_errf(err, errlen, "latents \"%s\": header length %" PRIu64 " runs past the end of the file (%" PRIu64
			 " bytes)", path, hlen, size);
		goto fail;
	}
	text = malloc(hlen + 1);
	if (!text) {
		ret = -ENOMEM;
		egr_errf(err, errlen, "latents \"%s\": out of memory for the header", path);
		goto fail;
	}
	ret = pread_full(fd, text, hlen, pre_len, &got);
	if (ret < 0) {
		egr_errf(err, errlen, "pread(\"%s\"): %s", path, strerror(-ret));
		goto fail;
	}
	if (got != hlen) {
		ret = -EIO;
		egr_errf(err, errlen, "pread(\"%s\"): file shrank while being read", path);
		goto fail;
	}
	text[hlen] = '\0';
	ret = -EINVAL;
	if (!parse_header(text, hlen, &h, msg, sizeof(msg))) {
		egr_errf(err, errlen, "latents \"%s\": %s", path, msg);
		goto fail;
	}

	if (!strcmp(h.descr, "<f2")) {
		n->dtype = EGR_DT_F16;
	} else if (!strcmp(h.descr, "<f4")) {
		n->dtype = EGR_DT_F32;
	} else if (!strcmp(h.descr, ">f2") || !strcmp(h.descr, ">f4")) {
		egr_errf(err, errlen,
			 "latents \"%s\": dtype '%s' is big-endian; save little-endian float16 or float32 (a.astype('<%s'))",
			 path, h.descr, h.descr + 1);
		goto fail;
	} else {
		dtype_desc(h.descr, a, sizeof(a));
		egr_errf(err, errlen, "latents \"%s\": dtype %s is not supported; save float16 or float32", path, a);
		goto fail;
	}
	if (h.fortran) {
		egr_errf(err, errlen,
			 "latents \"%s\": fortran_order is True; save a C-ordered array (numpy.ascontiguousarray)", path);
		goto fail;
	}
	shape_str(&h, a, sizeof(a));
	if (h.ndim != 4) {
		egr_errf(err, errlen,
			 "latents \"%s\": shape %s has %u dimensions; expected 4: [frames, channels, height, width]", path,
			 a, h.ndim);
		goto fail;
	}
	elems = 1;
	for (i = 0; i < 4; i++) {
		if (h.shape[i] == 0) {
			egr_errf(err, errlen, "latents \"%s\": shape %s has a zero dimension", path, a);
			goto fail;
		}
		if (__builtin_mul_overflow(elems, h.shape[i], &elems))
			goto too_large;
	}
	if (__builtin_mul_overflow(elems, (uint64_t)n->dtype, &bytes) ||
	    __builtin_add_overflow(bytes, (uint64_t)pre_len + hlen, &end))
		goto too_large;
	if (end > size) {
		egr_errf(err, errlen,
			 "latents \"%s\": truncated: header promises %" PRIu64 " bytes of data, file has %" PRIu64, path,
			 bytes, size - pre_len - hlen);
		goto fail;
	}

	free(text);
	n->fd = fd;
	memcpy(n->shape, h.shape, sizeof(n->shape));
	n->data_off = pre_len + hlen;
	n->frame_bytes = bytes / h.shape[0];
	return 0;

too_large:
	egr_errf(err, errlen, "latents \"%s\": shape %s is too large", path, a);
fail:
	free(text);
	close(fd);
	n->fd = -1;
	return ret;
}

int egr_npy_read(struct egr_npy *n, uint64_t first, uint64_t count, void *dst, char *err, size_t errlen)
{
	char name[512];
	uint64_t bytes, off;
	size_t got;
	int ret;

	if (first > n->shape[0] || count > n->shape[0] - first) {
		egr_errf(err, errlen, "egr_npy_read: frames %" PRIu64 "..+%" PRIu64 " are past the %" PRIu64 " frames",
			 first, count, n->shape[0]);
		return -EINVAL;
	}
	/* cannot overflow: open checked data_off + shape[0] * frame_bytes */
	bytes = count * n->frame_bytes;
	off = n->data_off + first * n->frame_bytes;
	if (bytes > SIZE_MAX) {
		egr_errf(err, errlen, "egr_npy_read: %" PRIu64 " bytes do not fit in memory", bytes);
		return -EOVERFLOW;
	}
	ret = pread_full(n->fd, dst, (size_t)bytes, off, &got);
	if (ret == 0 && got == bytes)
		return 0;
	fd_name(n->fd, name, sizeof(name));
	if (ret < 0) {
		egr_errf(err, errlen, "pread(\"%s\", %" PRIu64 " bytes at %" PRIu64 "): %s", name, bytes, off,
			 strerror(-ret));
		return ret;
	}
	egr_errf(err, errlen, "pread(\"%s\"): file ends at byte %" PRIu64 " (truncated since it was opened)", name,
		 off + got);
	return -EIO;
}

void egr_npy_close(struct egr_npy *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

/* ---- values ---- */

int egr_npy_check_finite(uint32_t dtype, const void *p, size_t count, size_t *bad)
{
	const unsigned char *b = p;
	size_t i;

	if (dtype == EGR_DT_F16) {
		for (i = 0; i < count; i++) {
			uint16_t h;

			memcpy(&h, b + 2 * i, 2);
			if ((h & 0x7c00) == 0x7c00)
				goto found;
		}
	} else {
		for (i = 0; i < count; i++) {
			uint32_t u;

			memcpy(&u, b + 4 * i, 4);
			if ((u & 0x7f800000) == 0x7f800000)
				goto found;
		}
	}
	return 0;
found:
	if (bad)
		*bad = i;
	return -EDOM;
}

/* ---- writing ---- */

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int egr_npy_write(const char *path, uint32_t dtype, const uint64_t shape[4], const float *data, char *err,
		  size_t errlen)
{
	char hdr[256];
	unsigned char chunk[65536];
	uint64_t elems = 1, i;
	size_t len, per, k;
	int fd, ret, hl;
	unsigned d;

	if (dtype != EGR_DT_F16 && dtype != EGR_DT_F32) {
		egr_errf(err, errlen, "egr_npy_write(\"%s\"): dtype %u is not float16 or float32", path, dtype);
		return -EINVAL;
	}
	for (d = 0; d < 4; d++) {
		if (shape[d] == 0 || __builtin_mul_overflow(elems, shape[d], &elems) ||
		    elems > UINT64_MAX / 4 || elems > SIZE_MAX / sizeof(float)) {
			egr_errf(err, errlen, "egr_npy_write(\"%s\"): bad shape", path);
			return -EINVAL;
		}
	}
	/* format 1.0, laid out exactly as numpy.save does it */
	memcpy(hdr, NPY_MAGIC "\x01\x00", 8);
	hl = 10 + snprintf(hdr + 10, sizeof(hdr) - 10,
			   "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRIu64 ", %" PRIu64 ", %" PRIu64
			   ", %" PRIu64 "), }",
			   dtype == EGR_DT_F16 ? "<f2" : "<f4", shape[0], shape[1], shape[2], shape[3]);
	/* pad with blanks and end with '\n' so that the data starts aligned */
	len = ((size_t)hl + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
	memset(hdr + hl, ' ', len - (size_t)hl - 1);
	hdr[len - 1] = '\n';
	hdr[8] = (char)((len - 10) & 0xff);
	hdr[9] = (char)((len - 10) >> 8);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", path, strerror(-ret));
		return ret;
	}
	ret = write_full(fd, hdr, len);
	per = sizeof(chunk) / dtype;
	for (i = 0; ret == 0 && i < elems; i += per) {
		size_t m = elems - i < per ? (size_t)(elems - i) : per;

		if (dtype == EGR_DT_F32) {
			memcpy(chunk, data + i, m * 4);
		} else {
			for (k = 0; k < m; k++) {
				uint16_t h = egr_half_from_float(data[i + k]);

				memcpy(chunk + 2 * k, &h, 2);
			}
		}
		ret = write_full(fd, chunk, m * dtype);
	}
	if (ret < 0) {
		egr_errf(err, errlen, "write(\"%s\"): %s", path, strerror(-ret));
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		ret = -errno;
		egr_errf(err, errlen, "close(\"%s\"): %s", path, strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	unlink(path);	/* no partial file under the name */
	return ret;
}
