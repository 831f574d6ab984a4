/*
 * npy: the latents reader (.npy, and .safetensors through egr_st) and the
 * .npy writer (see npy.h).  Opening runs in phases: the file, its format's
 * header (npy_describe / st_describe into one struct lat_desc), then the
 * geometry the layout gives it (lat_geometry); reading gathers bcthw files
 * channel by channel and widens bfloat16 in place.
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
#include <sys/uio.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/formats/npy.h"
#include "daemon/formats/safetensors.h"

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
			/* not echoed: nothing of a header not yet known to be a .npy dict (see npy_read_header) */
			egr_errf(msg, msglen, "header has a key other than 'descr', 'fortran_order' and 'shape'");
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

static void shape_str(const uint64_t *dims, unsigned ndim, char *buf, size_t len)
{
	size_t o = 0;
	unsigned i;

	o += (size_t)snprintf(buf, len, "(");
	for (i = 0; i < ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu64, i ? ", " : "", dims[i]);
	if (o < len)
		snprintf(buf + o, len - o, "%s)", ndim == 1 ? "," : "");
}

/* ---- opening: file, header, geometry ---- */

/*
 * What a latents file holds, whatever its format: the tensor's dimensions,
 * how its elements are stored and where its first byte is.
 */
struct lat_desc {
	unsigned ndim;
	uint64_t dims[NPY_MAX_DIMS];
	uint32_t dtype;		/* enum egr_dtype delivered */
	uint32_t src_elem;	/* bytes per stored element */
	uint32_t src_bf16;
	uint64_t data_off;
	uint64_t file_size;
};

/* preadv until the iovecs are full or the file ends; consumes iov */
static int preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off, size_t *got)
{
	size_t done = 0;

	while (cnt > 0) {
		ssize_t r = preadv(fd, iov, cnt, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			*got = done;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
		for (; cnt > 0 && (size_t)r >= iov->iov_len; iov++, cnt--)
			r -= (ssize_t)iov->iov_len;
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	*got = done;
	return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };

	return preadv_full(fd, &v, 1, off, got);
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

static const char *layout_name(uint32_t layout)
{
	switch (layout) {
	case EGR_LAYOUT_TCHW:
		return "tchw";
	case EGR_LAYOUT_BCTHW:
		return "bcthw";
	case EGR_LAYOUT_BTCHW:
		return "btchw";
	}
	return "auto";
}

/* open path read-only: a regular file, its size in *size; fd or -errno */
static int lat_open_file(const char *path, uint64_t *size, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		egr_errf(err, errlen, "fstat(\"%s\"): %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		egr_errf(err, errlen, "latents \"%s\": not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* a safetensors file starts with its header's length (LE u64) and a '{' */
static int looks_like_safetensors(const unsigned char *pre, size_t got, uint64_t size)
{
	uint64_t n = 0;
	int i;

	if (got < 9 || pre[8] != '{')
		return 0;
	for (i = 7; i >= 0; i--)
		n = n << 8 | pre[i];
	return n >= 2 && n <= size - 8;
}

/*
 * The .npy preamble (magic, version, header length), then the header dict
 * itself, into h; *data_off is where the data starts.
 */
static int npy_read_header(int fd, const char *path, uint64_t size, const unsigned char *pre, size_t got,
			   struct npy_hdr *h, uint64_t *data_off, char *err, size_t errlen)
{
	char msg[256];
	char *text = NULL;
	uint64_t hlen;
	size_t pre_len;
	int ret = -EINVAL;

	if (got < NPY_MAGIC_LEN || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN)) {
		egr_errf(err, errlen, "latents \"%s\": not a .npy file (no \\x93NUMPY magic) nor a .safetensors file",
			 path);
		return -EINVAL;
	}
	if (got < 10 || (pre[6] >= 2 && got < 12)) {
		egr_errf(err, errlen, "latents \"%s\": file ends inside the .npy preamble", path);
		return -EINVAL;
	}
	/*
	 * From here on the messages say what is wrong without echoing the
	 * bytes (the version, the header length): a job may name a file its
	 * submitter cannot read, and anything with the magic gets this far.
	 */
	if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0) {
		egr_errf(err, errlen, "latents \"%s\": .npy format version is not one egressd reads (1.0, 2.0 or 3.0)",
			 path);
		return -EINVAL;
	}
	pre_len = pre[6] == 1 ? 10 : 12;
	hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
	if (pre[6] != 1)
		hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
	if (hlen > NPY_HEADER_MAX) {
		egr_errf(err, errlen, "latents \"%s\": .npy header length field is over the limit of %d bytes", path,
			 NPY_HEADER_MAX);
		return -EINVAL;
	}
	if (pre_len + hlen > size) {
		egr_errf(err, errlen, "latents \"%s\": .npy header length field runs past the end of the file (%" PRIu64
			 " bytes): truncated?", path, size);
		return -EINVAL;
	}
	text = malloc(hlen + 1);
	if (!text) {
		egr_errf(err, errlen, "latents \"%s\": out of memory for the header", path);
		return -ENOMEM;
	}
	ret = pread_full(fd, text, hlen, pre_len, &got);
	if (ret < 0) {
		egr_errf(err, errlen, "pread(\"%s\"): %s", path, strerror(-ret));
	} else if (got != hlen) {
		ret = -EIO;
		egr_errf(err, errlen, "pread(\"%s\"): file shrank while being read", path);
	} else {
		text[hlen] = '\0';
		if (!parse_header(text, hlen, h, msg, sizeof(msg))) {
			ret = -EINVAL;
			egr_errf(err, errlen, "latents \"%s\": %s", path, msg);
		}
	}
	free(text);
	*data_off = pre_len + hlen;
	return ret;
}

/* A .npy file: its header checked for dtype and order, described in d. */
static int npy_describe(int fd, const char *path, const unsigned char *pre, size_t got, struct lat_desc *d,
			char *err, size_t errlen)
{
	struct npy_hdr h = { .ndim = 0 };
	char a[64];
	int ret;

	ret = npy_read_header(fd, path, d->file_size, pre, got, &h, &d->data_off, err, errlen);
	if (ret < 0)
		return ret;
	if (!strcmp(h.descr, "<f2") || !strcmp(h.descr, "<f4")) {
		d->dtype = h.descr[2] == '2' ? EGR_DT_F16 : EGR_DT_F32;
	} else if (!strcmp(h.descr, ">f2") || !strcmp(h.descr, ">f4")) {
		egr_errf(err, errlen,
			 "latents \"%s\": dtype '%s' is big-endian; save little-endian float16 or float32 (a.astype('<%s'))",
			 path, h.descr, h.descr + 1);
		return -EINVAL;
	} else {
		dtype_desc(h.descr, a, sizeof(a));
		egr_errf(err, errlen, "latents \"%s\": dtype %s is not supported; save float16 or float32", path, a);
		return -EINVAL;
	}
	if (h.fortran) {
		egr_errf(err, errlen,
			 "latents \"%s\": fortran_order is True; save a C-ordered array (numpy.ascontiguousarray)", path);
		return -EINVAL;
	}
	d->src_elem = d->dtype;
	d->ndim = h.ndim;
	memcpy(d->dims, h.shape, sizeof(d->dims));
	return 0;
}

/* "'a', 'b', 'c'" (as many as fit) for messages */
static void st_names(const struct egr_st *st, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < st->ntensors && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s'%s'", i ? ", " : "", st->t[i].name);
}

/* the tensor key names, or the file's only one */
static const struct egr_st_tensor *st_pick(const struct egr_st *st, const char *path, const char *key, char *err,
					   size_t errlen)
{
	const struct egr_st_tensor *t;
	char names[200];

	st_names(st, names, sizeof(names));
	if (key && *key) {
		t = egr_st_find(st, key);
		if (!t)
			egr_errf(err, errlen, "latents \"%s\": no tensor '%s' (latents_key); the file has %s", path, key,
				 st->ntensors ? names : "none");
		return t;
	}
	if (st->ntensors != 1) {
		egr_errf(err, errlen, "latents \"%s\": %u tensors (%s); name the latents with latents_key", path,
			 st->ntensors, names);
		return NULL;
	}
	return &st->t[0];
}

/* egr_st's messages speak of weights ("weights \"path\": why"): say latents */
static void st_reword(char *err, const char *path)
{
	static const char w[] = "weights \"";
	size_t wl = sizeof(w) - 1, pl = strlen(path);

	if (err && !strncmp(err, w, wl) && !strncmp(err + wl, path, pl) && err[wl + pl] == '"')
		memcpy(err, "latents", 7);	/* as long as "weights" */
}

/*
 * A .safetensors file: the tensor picked, described in d; *fd becomes a
 * descriptor of its own (egr_st's is closed with it).
 */
static int st_describe(const char *path, const char *key, int *fd, struct lat_desc *d, char *err, size_t errlen)
{
	const struct egr_st_tensor *t;
	struct egr_st *st;
	int ret;

	ret = egr_st_open(path, &st, err, errlen);
	if (ret < 0) {
		st_reword(err, path);
		return ret;
	}
	t = st_pick(st, path, key, err, errlen);
	ret = -EINVAL;
	if (!t)
		goto out;
	if (t->dtype == EGR_ST_OTHER) {
		egr_errf(err, errlen, "latents \"%s\": tensor '%s' has dtype %s; F32, F16 or BF16 are supported", path,
			 t->name, t->dtype_name);
		goto out;
	}
	d->dtype = t->dtype == EGR_ST_F16 ? EGR_DT_F16 : EGR_DT_F32;
	d->src_elem = t->elem;
	d->src_bf16 = t->dtype == EGR_ST_BF16;
	d->ndim = t->ndim;
	memcpy(d->dims, t->shape, sizeof(uint64_t) * t->ndim);
	d->data_off = st->data_off + t->begin;
	*fd = fcntl(st->fd, F_DUPFD_CLOEXEC, 0);
	ret = *fd < 0 ? -errno : 0;
	if (ret < 0)
		egr_errf(err, errlen, "fcntl(\"%s\", F_DUPFD_CLOEXEC): %s", path, strerror(-ret));
out:
	egr_st_close(st);
	return ret;
}

/*
 * Rank and layout: d's dimensions as frames, channels, height, width (the
 * batch, if any, is 1), every size product checked, the data inside the
 * file.  Fills n's geometry.
 */
static int lat_geometry(const char *path, const struct lat_desc *d, uint32_t layout, struct egr_npy *n,
			char *err, size_t errlen)
{
	/* where frames, channels, height and width sit, per layout */
	static const unsigned axes[4][4] = {
		[EGR_LAYOUT_TCHW] = { 0, 1, 2, 3 },
		[EGR_LAYOUT_BCTHW] = { 2, 1, 3, 4 },
		[EGR_LAYOUT_BTCHW] = { 1, 2, 3, 4 },
	};
	uint64_t elems = 1, bytes, end;
	char a[200];
	unsigned i;

	if (layout > EGR_LAYOUT_BTCHW) {
		egr_errf(err, errlen, "latents \"%s\": layout %u is not tchw, bcthw or btchw", path, layout);
		return -EINVAL;
	}
	shape_str(d->dims, d->ndim, a, sizeof(a));
	if (d->ndim != 4 && d->ndim != 5) {
		egr_errf(err, errlen,
			 "latents \"%s\": shape %s has %u dimensions; expected 4: [frames, channels, height, width] "
			 "(layout tchw) or 5: [batch, channels, frames, height, width] (bcthw) or [batch, frames, "
			 "channels, height, width] (btchw)", path, a, d->ndim);
		return -EINVAL;
	}
	if (layout == EGR_LAYOUT_AUTO)
		layout = d->ndim == 4 ? EGR_LAYOUT_TCHW : EGR_LAYOUT_BCTHW;
	if ((layout == EGR_LAYOUT_TCHW) != (d->ndim == 4)) {
		egr_errf(err, errlen, "latents \"%s\": layout = %s needs %s dimensions; shape %s has %u", path,
			 layout_name(layout), layout == EGR_LAYOUT_TCHW ? "4 [frames, channels, height, width]" :
			 layout == EGR_LAYOUT_BCTHW ? "5 [batch, channels, frames, height, width]" :
			 "5 [batch, frames, channels, height, width]", a, d->ndim);
		return -EINVAL;
	}
	for (i = 0; i < d->ndim; i++) {
		if (d->dims[i] == 0) {
			egr_errf(err, errlen, "latents \"%s\": shape %s has a zero dimension", path, a);
			return -EINVAL;
		}
		if (__builtin_mul_overflow(elems, d->dims[i], &elems))
			goto too_large;
	}
	if (d->ndim == 5 && d->dims[0] != 1) {
		egr_errf(err, errlen,
			 "latents \"%s\": shape %s (layout %s) is a batch of %" PRIu64 " videos; a job decodes one: "
			 "save each as its own file (latents[i:i+1])", path, a, layout_name(layout), d->dims[0]);
		return -EINVAL;
	}
	if (__builtin_mul_overflow(elems, (uint64_t)d->src_elem, &bytes) ||
	    __builtin_add_overflow(bytes, d->data_off, &end) || elems > UINT64_MAX / d->dtype)
		goto too_large;
	if (end > d->file_size) {
		egr_errf(err, errlen,
			 "latents \"%s\": truncated: header promises %" PRIu64 " bytes of data, file has %" PRIu64, path,
			 bytes, d->file_size - d->data_off);
		return -EINVAL;
	}
	for (i = 0; i < 4; i++)
		n->shape[i] = d->dims[axes[layout][i]];
	n->dtype = d->dtype;
	n->layout = layout;
	n->src_elem = d->src_elem;
	n->src_bf16 = d->src_bf16;
	n->data_off = d->data_off;
	n->frame_bytes = elems / n->shape[0] * d->dtype;
	return 0;
too_large:
	egr_errf(err, errlen, "latents \"%s\": shape %s is too large", path, a);
	return -EINVAL;
}

int egr_npy_open_as(const char *path, uint32_t layout, const char *key, struct egr_npy *n, char *err,
		    size_t errlen)
{
	struct lat_desc d = { .ndim = 0 };
	unsigned char pre[12];
	size_t got;
	int fd, ret;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	fd = lat_open_file(path, &d.file_size, err, errlen);
	if (fd < 0)
		return fd;
	ret = pread_full(fd, pre, sizeof(pre), 0, &got);
	if (ret < 0) {
		egr_errf(err, errlen, "pread(\"%s\"): %s", path, strerror(-ret));
		goto fail;
	}
	if (looks_like_safetensors(pre, got, d.file_size)) {
		close(fd);
		fd = -1;
		ret = st_describe(path, key, &fd, &d, err, errlen);
	} else if (key && *key) {
		egr_errf(err, errlen, "latents \"%s\": latents_key = %s applies to .safetensors latents only", path,
			 key);
		ret = -EINVAL;
	} else {
		ret = npy_describe(fd, path, pre, got, &d, err, errlen);
	}
	if (ret == 0)
		ret = lat_geometry(path, &d, layout, n, err, errlen);
	if (ret == 0) {
		n->fd = fd;
		return 0;
	}
fail:
	if (fd >= 0)
		close(fd);
	return ret;
}

int egr_npy_open(const char *path, struct egr_npy *n, char *err, size_t errlen)
{
	return egr_npy_open_as(path, EGR_LAYOUT_AUTO, NULL, n, err, errlen);
}

/* ---- reading ---- */

/* a failed or short read of len bytes at off, in err */
static int read_failed(const struct egr_npy *n, int ret, size_t got, uint64_t len, uint64_t off, char *err,
		       size_t errlen)
{
	char name[512];

	fd_name(n->fd, name, sizeof(name));
	if (ret < 0) {
		egr_errf(err, errlen, "pread(\"%s\", %" PRIu64 " bytes at %" PRIu64 "): %s", name, len, off,
			 strerror(-ret));
		return ret;
	}
	egr_errf(err, errlen, "pread(\"%s\"): file ends at byte %" PRIu64 " (truncated since it was opened)", name,
		 off + got);
	return -EIO;
}

#define GATHER_MAX 64	/* frames per preadv */

/*
 * bcthw: channel c of frames first.. is one run in the file, [c][t][h][w];
 * each run lands in count planes of raw, [t][c][h][w].
 */
static int read_bcthw(const struct egr_npy *n, uint64_t first, uint64_t count, char *raw, char *err,
		      size_t errlen)
{
	const uint64_t frames = n->shape[0], ch = n->shape[1];
	const size_t plane = (size_t)(n->shape[2] * n->shape[3] * n->src_elem);
	struct iovec iov[GATHER_MAX];
	uint64_t c, f, k, nf, off;
	size_t got;
	int ret;

	for (c = 0; c < ch; c++) {
		for (f = 0; f < count; f += nf) {
			nf = count - f < GATHER_MAX ? count - f : GATHER_MAX;
			for (k = 0; k < nf; k++) {
				iov[k].iov_base = raw + ((f + k) * ch + c) * plane;
				iov[k].iov_len = plane;
			}
			off = n->data_off + (c * frames + first + f) * plane;
			ret = preadv_full(n->fd, iov, (int)nf, off, &got);
			if (ret < 0 || got != nf * plane)
				return read_failed(n, ret, got, nf * plane, off, err, errlen);
		}
	}
	return 0;
}

/* bfloat16 to float32, exactly; src may be the upper half of dst */
static void bf16_expand(const unsigned char *src, unsigned char *dst, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		uint16_t h;
		uint32_t u;

		memcpy(&h, src + 2 * i, 2);	/* read before the write below reaches it */
		u = (uint32_t)h << 16;
		memcpy(dst + 4 * i, &u, 4);
	}
}

int egr_npy_read(struct egr_npy *n, uint64_t first, uint64_t count, void *dst, char *err, size_t errlen)
{
	uint64_t bytes, src_bytes, src_frame, off;
	char *raw;
	size_t got;
	int ret;

	if (first > n->shape[0] || count > n->shape[0] - first) {
		egr_errf(err, errlen, "egr_npy_read: frames %" PRIu64 "..+%" PRIu64 " are past the %" PRIu64 " frames",
			 first, count, n->shape[0]);
		return -EINVAL;
	}
	/* cannot overflow: open checked data_off + every frame's bytes, delivered and stored */
	src_frame = n->frame_bytes / n->dtype * n->src_elem;
	bytes = count * n->frame_bytes;
	src_bytes = count * src_frame;
	if (bytes > SIZE_MAX) {
		egr_errf(err, errlen, "egr_npy_read: %" PRIu64 " bytes do not fit in memory", bytes);
		return -EOVERFLOW;
	}
	/* stored elements narrower than delivered ones are read into the top of dst */
	raw = (char *)dst + (bytes - src_bytes);
	if (n->layout == EGR_LAYOUT_BCTHW) {
		ret = read_bcthw(n, first, count, raw, err, errlen);
		if (ret < 0)
			return ret;
	} else {
		off = n->data_off + first * src_frame;
		ret = pread_full(n->fd, raw, (size_t)src_bytes, off, &got);
		if (ret < 0 || got != src_bytes)
			return read_failed(n, ret, got, src_bytes, off, err, errlen);
	}
	if (n->src_bf16)
		bf16_expand((const unsigned char *)raw, dst, (size_t)(src_bytes / 2));
	return 0;
}

void egr_npy_close(struct egr_npy *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

/* ---- values ---- */

/*
 * Whether any element of one block is NaN or Inf, branch-free, 8 bytes at a
 * time: an element is non-finite iff its exponent field e is all ones; with
 * t = e-bits masked, t + (lowest exponent bit) carries into the element's
 * sign bit only when t is all ones, and never into the next element (the
 * sign bit is clear in t).  About 6x faster than an element-at-a-time loop
 * with an early exit, which the compiler cannot vectorise: this check runs
 * on every latent byte the producer reads (issue 12's copy path).
 */
typedef uint64_t u64x2 __attribute__((vector_size(16)));	/* GCC vector extension: SSE2 on x86-64 */

static int block_nonfinite(const unsigned char *b, size_t bytes, uint64_t exp, uint64_t one, uint64_t sign)
{
	const u64x2 ve = { exp, exp }, vo = { one, one }, vs = { sign, sign };
	u64x2 any = { 0, 0 };
	size_t i;

	for (i = 0; i + 16 <= bytes; i += 16) {
		u64x2 x;

		memcpy(&x, b + i, 16);
		any |= ((x & ve) + vo) & vs;
	}
	if (i < bytes) {	/* the tail, zero-padded: zero is finite */
		u64x2 x = { 0, 0 };

		memcpy(&x, b + i, bytes - i);
		any |= ((x & ve) + vo) & vs;
	}
	return (any[0] | any[1]) != 0;
}

int egr_npy_check_finite(uint32_t dtype, const void *p, size_t count, size_t *bad)
{
	enum { BLOCK = 4096 };	/* bytes checked before each branch */
	const unsigned char *b = p;
	const int f16 = dtype == EGR_DT_F16;
	const size_t esize = f16 ? 2 : 4, bytes = count * esize;
	const uint64_t exp = f16 ? 0x7c007c007c007c00ull : 0x7f8000007f800000ull;
	const uint64_t one = f16 ? 0x0400040004000400ull : 0x0080000000800000ull;
	const uint64_t sign = f16 ? 0x8000800080008000ull : 0x8000000080000000ull;

	for (size_t off = 0; off < bytes; off += BLOCK) {
		size_t n = bytes - off < BLOCK ? bytes - off : BLOCK;

		if (!block_nonfinite(b + off, n, exp, one, sign))
			continue;
		for (size_t i = off / esize; i < (off + n) / esize; i++) {	/* the first one: the same test, one element */
			if (block_nonfinite(b + i * esize, esize, exp, one, sign)) {
				if (bad)
					*bad = i;
				return -EDOM;
			}
		}
	}
	return 0;
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

/* numpy.save's header for dtype and shape, format 1.0, padded so the data is aligned; its length */
static size_t npy_make_header(char *hdr, size_t cap, uint32_t dtype, unsigned ndim, const uint64_t *shape)
{
	char dims[NPY_MAX_DIMS * 22];
	size_t len;
	int hl;

	shape_str(shape, ndim, dims, sizeof(dims));
	memcpy(hdr, NPY_MAGIC "\x01\x00", 8);
	hl = 10 + snprintf(hdr + 10, cap - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
			   dtype == EGR_DT_F16 ? "<f2" : "<f4", dims);
	/* pad with blanks and end with '\n' so that the data starts aligned */
	len = ((size_t)hl + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
	memset(hdr + hl, ' ', len - (size_t)hl - 1);
	hdr[len - 1] = '\n';
	hdr[8] = (char)((len - 10) & 0xff);
	hdr[9] = (char)((len - 10) >> 8);
	return len;
}

int egr_npy_write_nd(const char *path, uint32_t dtype, unsigned ndim, const uint64_t *shape, const float *data,
		     char *err, size_t errlen)
{
	char hdr[512];
	unsigned char chunk[65536];
	uint64_t elems = 1, i;
	size_t len, per, k;
	int fd, ret;
	unsigned d;

	if (dtype != EGR_DT_F16 && dtype != EGR_DT_F32) {
		egr_errf(err, errlen, "egr_npy_write(\"%s\"): dtype %u is not float16 or float32", path, dtype);
		return -EINVAL;
	}
	for (d = 0; d < ndim; d++) {
		if (shape[d] == 0 || __builtin_mul_overflow(elems, shape[d], &elems) ||
		    elems > UINT64_MAX / 4 || elems > SIZE_MAX / sizeof(float)) {
			egr_errf(err, errlen, "egr_npy_write(\"%s\"): bad shape", path);
			return -EINVAL;
		}
	}
	if (ndim < 1 || ndim > 8) {
		egr_errf(err, errlen, "egr_npy_write(\"%s\"): %u dimensions; 1 to 8 are supported", path, ndim);
		return -EINVAL;
	}
	len = npy_make_header(hdr, sizeof(hdr), dtype, ndim, shape);

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

int egr_npy_write(const char *path, uint32_t dtype, const uint64_t shape[4], const float *data, char *err,
		  size_t errlen)
{
	return egr_npy_write_nd(path, dtype, 4, shape, data, err, errlen);
}
