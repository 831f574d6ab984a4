/*
 * safetensors: validating reader and small writer; see safetensors.h.
 *
 * The header is untrusted input: every number in it is range-checked before
 * it is used as a size or an offset, and products are computed with overflow
 * checks.  Data is read with pread (a host that is little-endian, as x86-64
 * and arm64 Linux are, reads the file's little-endian values as they lie).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"

static const struct {
	const char *name;
	uint32_t elem;
	uint32_t dtype;
} st_dtypes[] = {
	{ "BOOL", 1, EGR_ST_OTHER }, { "U8", 1, EGR_ST_OTHER }, { "I8", 1, EGR_ST_OTHER },
	{ "F8_E5M2", 1, EGR_ST_OTHER }, { "F8_E4M3", 1, EGR_ST_OTHER }, { "I16", 2, EGR_ST_OTHER },
	{ "U16", 2, EGR_ST_OTHER }, { "F16", 2, EGR_ST_F16 }, { "BF16", 2, EGR_ST_BF16 },
	{ "I32", 4, EGR_ST_OTHER }, { "U32", 4, EGR_ST_OTHER }, { "F32", 4, EGR_ST_F32 },
	{ "F64", 8, EGR_ST_OTHER }, { "I64", 8, EGR_ST_OTHER }, { "U64", 8, EGR_ST_OTHER },
};

char *egr_st_shape_str(const uint64_t *shape, uint32_t ndim, char *buf, size_t len)
{
	size_t n = 0;

	if (!len)
		return buf;
	buf[0] = 0;
	n += (size_t)snprintf(buf + n, len - n, "[");
	for (uint32_t i = 0; i < ndim && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%llu", i ? "," : "", (unsigned long long)shape[i]);
	if (n < len)
		snprintf(buf + n, len - n, "]");
	return buf;
}

static int st_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;	/* file shorter than promised: truncated under us */
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Entry phase 1: the dtype name, looked up in st_dtypes. */
static int st_entry_dtype(const char *P, const char *name, json_t *jd, struct egr_st_tensor *t, char *err,
			  size_t errlen)
{
	const char *dn = json_string_value(jd);
	size_t i;

	for (i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
		if (!strcmp(dn, st_dtypes[i].name))
			break;
	if (i == sizeof(st_dtypes) / sizeof(st_dtypes[0])) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': unknown dtype \"%.16s\"", P, name, dn);
		return -EINVAL;
	}
	snprintf(t->dtype_name, sizeof(t->dtype_name), "%s", st_dtypes[i].name);
	t->dtype = st_dtypes[i].dtype;
	t->elem = st_dtypes[i].elem;
	return 0;
}

/* Entry phase 2: the shape, and numel without overflow. */
static int st_entry_shape(const char *P, const char *name, json_t *js, struct egr_st_tensor *t, char *err,
			  size_t errlen)
{
	if (json_array_size(js) > EGR_ST_MAX_DIMS) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': shape has %zu dimensions, at most %d supported",
			 P, name, json_array_size(js), EGR_ST_MAX_DIMS);
		return -EINVAL;
	}
	t->ndim = (uint32_t)json_array_size(js);
	t->numel = 1;
	for (size_t i = 0; i < t->ndim; i++) {
		json_t *d = json_array_get(js, i);
		if (!json_is_integer(d) || json_integer_value(d) < 0) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s': shape[%zu] is not a non-negative integer",
				 P, name, i);
			return -EINVAL;
		}
		t->shape[i] = (uint64_t)json_integer_value(d);
		if (__builtin_mul_overflow(t->numel, t->shape[i], &t->numel)) {
			egr_errf(err, errlen, "weights \"%s\": tensor '%s': shape overflows 64 bits", P, name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Entry phase 3: data_offsets inside the data section, exactly numel * elem bytes long. */
static int st_entry_range(const struct egr_st *st, const char *name, json_t *jo, struct egr_st_tensor *t,
			  char *err, size_t errlen)
{
	const char *P = st->path;
	uint64_t need;
	char sb[96];

	if (json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
	    !json_is_integer(json_array_get(jo, 1)) || json_integer_value(json_array_get(jo, 0)) < 0 ||
	    json_integer_value(json_array_get(jo, 1)) < 0) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': data_offsets is not [begin, end] (non-negative integers)",
			 P, name);
		return -EINVAL;
	}
	t->begin = (uint64_t)json_integer_value(json_array_get(jo, 0));
	t->end = (uint64_t)json_integer_value(json_array_get(jo, 1));
	if (t->begin > t->end || t->end > st->data_len) {
		egr_errf(err, errlen,
			 "weights \"%s\": tensor '%s': data_offsets [%llu, %llu] lie outside the data section of %llu bytes (truncated file?)",
			 P, name, (unsigned long long)t->begin, (unsigned long long)t->end,
			 (unsigned long long)st->data_len);
		return -EINVAL;
	}
	if (__builtin_mul_overflow(t->numel, (uint64_t)t->elem, &need) || need != t->end - t->begin) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, shape %s %s needs %llu",
			 P, name, (unsigned long long)t->begin, (unsigned long long)t->end,
			 (unsigned long long)(t->end - t->begin), egr_st_shape_str(t->shape, t->ndim, sb, sizeof(sb)),
			 t->dtype_name, (unsigned long long)need);
		return -EINVAL;
	}
	return 0;
}

/* Validate one header entry into *t: name, fields, then the three phases.  0 or -EINVAL with err set. */
static int st_parse_entry(struct egr_st *st, const char *name, json_t *v, struct egr_st_tensor *t, char *err,
			  size_t errlen)
{
	const char *P = st->path;
	json_t *jd, *js, *jo;
	int r;

	memset(t, 0, sizeof(*t));
	if (strlen(name) >= sizeof(t->name)) {
		egr_errf(err, errlen, "weights \"%s\": tensor name '%.40s...' is longer than %d bytes", P, name,
			 EGR_ST_MAX_NAME - 1);
		return -EINVAL;
	}
	strcpy(t->name, name);
	if (!json_is_object(v)) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': header entry is not a JSON object", P, name);
		return -EINVAL;
	}
	jd = json_object_get(v, "dtype");
	js = json_object_get(v, "shape");
	jo = json_object_get(v, "data_offsets");
	if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo)) {
		egr_errf(err, errlen,
			 "weights \"%s\": tensor '%s': header entry needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)",
			 P, name);
		return -EINVAL;
	}
	r = st_entry_dtype(P, name, jd, t, err, errlen);
	if (!r)
		r = st_entry_shape(P, name, js, t, err, errlen);
	if (!r)
		r = st_entry_range(st, name, jo, t, err, errlen);
	return r;
}

/* Open phase 1: open path, which must be a regular file of at least 8 bytes. */
static int st_open_file(struct egr_st *st, const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int r;

	st->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (st->fd < 0) {
		r = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", path, strerror(-r));
		return r;
	}
	if (fstat(st->fd, &sb) < 0) {
		r = -errno;
		egr_errf(err, errlen, "fstat(\"%s\"): %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(sb.st_mode)) {
		egr_errf(err, errlen, "weights \"%s\": not a regular file", path);
		return -EINVAL;
	}
	st->file_size = (uint64_t)sb.st_size;
	if (st->file_size < 8) {
		egr_errf(err, errlen, "weights \"%s\": file is %llu bytes, too short for a safetensors header", path,
			 (unsigned long long)st->file_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * Open phase 2: the header length N (checked against the file and the
 * limit), which places the data section, then the N header bytes into a
 * malloc'd *hdr (the caller frees it, also on failure).
 */
static int st_read_header(struct egr_st *st, const char *path, char **hdr, uint64_t *hlen, char *err,
			  size_t errlen)
{
	unsigned char lenbuf[8];
	uint64_t n = 0;
	int r;

	r = st_pread_full(st->fd, lenbuf, 8, 0);
	if (r < 0) {
		egr_errf(err, errlen, "pread(\"%s\", header length): %s", path, r == -EIO ? "file truncated" : strerror(-r));
		return r;
	}
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | lenbuf[i];
	/*
	 * Say what is wrong, never the number: these 8 bytes are the first of
	 * any file a job names (weights = /etc/shadow decodes to "root:*:..."),
	 * and the submitter may not be allowed to read it.
	 */
	if (n < 2 || n > EGR_ST_MAX_HEADER || n > st->file_size - 8) {
		char why[64];

		if (n < 2 || n > st->file_size - 8)
			snprintf(why, sizeof(why), "%s", n < 2 ? "too small for a header" : "larger than the file");
		else
			snprintf(why, sizeof(why), "over the limit of %u bytes", EGR_ST_MAX_HEADER);
		egr_errf(err, errlen, "weights \"%s\": not a safetensors file, or truncated: its header length field is %s",
			 path, why);
		return -EINVAL;
	}
	st->data_off = 8 + n;
	st->data_len = st->file_size - st->data_off;
	*hdr = malloc((size_t)n);
	if (!*hdr) {
		egr_errf(err, errlen, "weights \"%s\": out of memory for its header", path);
		return -ENOMEM;
	}
	r = st_pread_full(st->fd, *hdr, (size_t)n, 8);
	if (r < 0) {
		egr_errf(err, errlen, "pread(\"%s\", header): %s", path, r == -EIO ? "file truncated" : strerror(-r));
		return r;
	}
	*hlen = n;
	return 0;
}

/* Open phase 3: parse the JSON header and validate every entry into st->t. */
static int st_parse_header(struct egr_st *st, const char *path, const char *hdr, uint64_t n, char *err,
			   size_t errlen)
{
	json_error_t je;
	json_t *root, *val;
	const char *key;
	size_t cnt;
	int r = 0;

	root = json_loadb(hdr, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		/* jansson's text quotes the bytes near the error ("near 'root'"): not echoed, as above */
		egr_errf(err, errlen, "weights \"%s\": header is not valid JSON%s", path,
			 json_error_code(&je) == json_error_duplicate_key ? " (a key appears twice)" : "");
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		r = -EINVAL;
		egr_errf(err, errlen, "weights \"%s\": header is not a JSON object", path);
		goto out;
	}
	cnt = json_object_size(root);
	if (cnt > EGR_ST_MAX_TENSORS + 1) {
		r = -EINVAL;
		egr_errf(err, errlen, "weights \"%s\": %zu tensors, at most %d supported", path, cnt, EGR_ST_MAX_TENSORS);
		goto out;
	}
	st->t = calloc(cnt ? cnt : 1, sizeof(*st->t));
	if (!st->t) {
		r = -ENOMEM;
		egr_errf(err, errlen, "weights \"%s\": out of memory", path);
		goto out;
	}
	json_object_foreach(root, key, val) {
		if (!strcmp(key, "__metadata__")) {
			if (!json_is_object(val)) {
				r = -EINVAL;
				egr_errf(err, errlen, "weights \"%s\": __metadata__ is not a JSON object", path);
				goto out;
			}
			continue;
		}
		r = st_parse_entry(st, key, val, &st->t[st->ntensors], err, errlen);
		if (r < 0)
			goto out;
		st->ntensors++;
	}
out:
	json_decref(root);
	return r;
}

int egr_st_open(const char *path, struct egr_st **out, char *err, size_t errlen)
{
	struct egr_st *st;
	char *hdr = NULL;
	uint64_t n = 0;
	int r;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		egr_errf(err, errlen, "weights \"%s\": out of memory", path);
		return -ENOMEM;
	}
	st->fd = -1;
	snprintf(st->path, sizeof(st->path), "%s", path);
	r = st_open_file(st, path, err, errlen);
	if (!r)
		r = st_read_header(st, path, &hdr, &n, err, errlen);
	if (!r)
		r = st_parse_header(st, path, hdr, n, err, errlen);
	free(hdr);
	if (r < 0) {
		egr_st_close(st);
		return r;
	}
	*out = st;
	return 0;
}

const struct egr_st_tensor *egr_st_find(const struct egr_st *st, const char *name)
{
	for (uint32_t i = 0; i < st->ntensors; i++)
		if (!strcmp(st->t[i].name, name))
			return &st->t[i];
	return NULL;
}

int egr_st_read_f32(const struct egr_st *st, const struct egr_st_tensor *t, float *dst, char *err, size_t errlen)
{
	size_t bytes = (size_t)(t->end - t->begin);
	void *raw;
	int r;

	if (t->dtype != EGR_ST_F16 && t->dtype != EGR_ST_BF16 && t->dtype != EGR_ST_F32) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s' has dtype %s, expected F16, BF16 or F32", st->path,
			 t->name, t->dtype_name);
		return -EINVAL;
	}
	raw = t->dtype == EGR_ST_F32 ? (void *)dst : malloc(bytes ? bytes : 1);
	if (!raw) {
		egr_errf(err, errlen, "weights \"%s\": tensor '%s': out of memory", st->path, t->name);
		return -ENOMEM;
	}
	r = st_pread_full(st->fd, raw, bytes, st->data_off + t->begin);
	if (r < 0) {
		egr_errf(err, errlen, "pread(\"%s\", tensor '%s'): %s", st->path, t->name,
			 r == -EIO ? "file truncated" : strerror(-r));
		goto out;
	}
	if (t->dtype == EGR_ST_F16) {
		const uint16_t *h = raw;
		for (uint64_t i = 0; i < t->numel; i++)
			dst[i] = egr_half_to_float(h[i]);
	} else if (t->dtype == EGR_ST_BF16) {
		const uint16_t *h = raw;
		for (uint64_t i = 0; i < t->numel; i++) {
			uint32_t b = (uint32_t)h[i] << 16;
			memcpy(&dst[i], &b, 4);
		}
	}
out:
	if (raw != dst)
		free(raw);
	return r;
}

void egr_st_close(struct egr_st *st)
{
	if (!st)
		return;
	if (st->fd >= 0)
		close(st->fd);
	free(st->t);
	free(st);
}

static uint64_t st_wnumel(const struct egr_st_wtensor *t)
{
	uint64_t numel = 1;

	for (uint32_t d = 0; d < t->ndim; d++)
		numel *= t->shape[d];
	return numel;
}

/* Write phase 1: the JSON header (tensors in order, then __metadata__), malloc'd; NULL: out of memory. */
static char *st_header_json(const struct egr_st_wtensor *ts, uint32_t n)
{
	json_t *root = json_object();
	char *hdr = NULL;
	uint64_t off = 0;

	if (!root)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		json_t *e = json_object(), *sh = json_array();
		if (!e || !sh) {
			json_decref(e);
			json_decref(sh);
			goto out;
		}
		for (uint32_t d = 0; d < ts[i].ndim; d++)
			json_array_append_new(sh, json_integer((json_int_t)ts[i].shape[d]));
		uint64_t bytes = st_wnumel(&ts[i]) * (ts[i].dtype == EGR_ST_F16 ? 2 : 4);
		json_object_set_new(e, "dtype", json_string(ts[i].dtype == EGR_ST_F16 ? "F16" : "F32"));
		json_object_set_new(e, "shape", sh);
		json_object_set_new(e, "data_offsets",
				    json_pack("[II]", (json_int_t)off, (json_int_t)(off + bytes)));
		json_object_set_new(root, ts[i].name, e);
		off += bytes;
	}
	json_object_set_new(root, "__metadata__", json_pack("{ss}", "format", "pt"));
	hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	return hdr;
}

/* Write phase 2: length, header padded to 8 bytes, tensor data; errors show in ferror(f). */
static void st_write_body(FILE *f, const char *hdr, const struct egr_st_wtensor *ts, uint32_t n)
{
	size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
	unsigned char lb[8];

	for (int i = 0; i < 8; i++)
		lb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	fwrite(lb, 1, 8, f);
	fwrite(hdr, 1, hl, f);
	for (size_t i = hl; i < padded; i++)
		fputc(' ', f);	/* the format pads the header with spaces */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t numel = st_wnumel(&ts[i]);
		for (uint64_t k = 0; k < numel; k++) {
			if (ts[i].dtype == EGR_ST_F16) {
				uint16_t h = egr_half_from_float(ts[i].data[k]);
				fwrite(&h, 2, 1, f);
			} else {
				fwrite(&ts[i].data[k], 4, 1, f);
			}
		}
	}
}

int egr_st_write(const char *path, const struct egr_st_wtensor *ts, uint32_t n, char *err, size_t errlen)
{
	char *hdr, tmp[1100];
	FILE *f;
	int r = 0;

	hdr = st_header_json(ts, n);
	if (!hdr) {
		egr_errf(err, errlen, "safetensors \"%s\": out of memory", path);
		return -ENOMEM;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f) {
		r = -errno;
		egr_errf(err, errlen, "fopen(\"%s\"): %s", tmp, strerror(-r));
		goto out;
	}
	st_write_body(f, hdr, ts, n);
	if (ferror(f) | fclose(f)) {
		r = -EIO;
		egr_errf(err, errlen, "write(\"%s\"): I/O error", tmp);
		unlink(tmp);
		goto out;
	}
	/* publish: readers see the old file or the whole new one */
	if (rename(tmp, path) < 0) {
		r = -errno;
		egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", tmp, path, strerror(-r));
		unlink(tmp);
	}
out:
	free(hdr);
	return r;
}
