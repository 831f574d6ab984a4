/*
 * conf: the daemon configuration, and egr_conf_ini_parse(), the guarded inih
 * front end every egressd INI file (daemon config, job files) goes through.
 *
 * The EGR_CONF_KEYS table in conf.h is expanded here into a key table that
 * drives defaults, parsing, validation and the dump; a key added there needs
 * nothing here unless it is an ENUM (then list its values below).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/inih/ini.h"

#include "daemon/base/log.h"
#include "daemon/base/safepath.h"
#include "config/conf.h"

/* ---- egr_conf_ini_parse ---- */

struct ini_ctx {
	FILE *f;
	const char *path;
	char *line;		/* getline buffer */
	size_t cap;
	unsigned lineno;	/* physical line last handed to inih */
	egr_ini_handler h;
	void *user;
	char *err;
	size_t errlen;
	unsigned fail_line;	/* line of the first error found here, 0: none */
	int fail_code;
};

/*
 * Pass 1: reject what inih would silently mangle before it sees a byte, so
 * that no handler has run on a file that is then refused.  inih reads into
 * a buffer of INI_MAX_LINE bytes: a longer line would be cut (Debian's
 * libinih 55 parsed the tail as a line of its own).  A NUL byte would cut a
 * line the same way.
 */
_Static_assert(INI_MAX_LINE == EGR_INI_LINE_MAX + 3, "the Makefile's INI_MAX_LINE and EGR_INI_LINE_MAX disagree");
static int ini_check_lines(struct ini_ctx *c)
{
	unsigned lineno = 0;
	ssize_t n;

	while ((n = getline(&c->line, &c->cap, c->f)) >= 0) {
		size_t len = (size_t)n;

		lineno++;
		if (len && c->line[len - 1] == '\n')
			len--;
		if (len && c->line[len - 1] == '\r')
			len--;
		if (len > EGR_INI_LINE_MAX) {
			egr_errf(c->err, c->errlen,
				 "%s:%u: line is %zu bytes long; the limit is %d",
				 c->path, lineno, len, EGR_INI_LINE_MAX);
			return -EINVAL;
		}
		if (memchr(c->line, '\0', len)) {
			egr_errf(c->err, c->errlen, "%s:%u: line contains a NUL byte", c->path, lineno);
			return -EINVAL;
		}
	}
	if (ferror(c->f)) {
		int e = errno ? errno : EIO;

		egr_errf(c->err, c->errlen, "read(\"%s\"): %s", c->path, strerror(e));
		return -e;
	}
	if (fseek(c->f, 0, SEEK_SET) < 0) {
		int e = errno;

		egr_errf(c->err, c->errlen, "fseek(\"%s\"): %s", c->path, strerror(e));
		return -e;
	}
	clearerr(c->f);
	return 0;
}

static void ini_fail(struct ini_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ini_fail(struct ini_ctx *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->fail_line)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->fail_line = c->lineno ? c->lineno : 1;
	c->fail_code = code;
	egr_errf(c->err, c->errlen, "%s:%u: %s", c->path, c->lineno, msg);
}

/*
 * Pass 2 feeds inih one physical line per call, so inih's line numbers are
 * the file's.  Leading blanks are dropped here: inih (INI_ALLOW_MULTILINE)
 * would take an indented "  slots = 8" for a continuation of the previous
 * value; without the blanks it is the ordinary line the user meant.
 */
static char *ini_read_line(char *str, int num, void *stream)
{
	struct ini_ctx *c = stream;
	ssize_t n;
	size_t len;
	char *s;

	if (c->fail_line)	/* the first error is the one reported: stop */
		return NULL;
	n = getline(&c->line, &c->cap, c->f);
	if (n < 0)
		return NULL;
	c->lineno++;
	len = (size_t)n;
	if (len && c->line[len - 1] == '\n')
		c->line[--len] = '\0';
	if (len && c->line[len - 1] == '\r')
		c->line[--len] = '\0';
	s = c->line;
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	if (num <= 0 || len >= (size_t)num) {
		/* the file changed since pass 1, or inih's buffer is smaller than we know */
		ini_fail(c, -EINVAL, "line is %zu bytes long; inih reads at most %d", len, num - 1);
		return NULL;
	}
	memcpy(str, s, len + 1);
	return str;
}

static int ini_call(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	char msg[512] = "";

	if (c->fail_line)
		return 0;
	if (!c->h(c->user, section, name, value, msg, sizeof(msg))) {
		ini_fail(c, -EINVAL, "%s", msg[0] ? msg : "rejected");
		return 0;
	}
	return 1;
}

int egr_conf_ini_parse(const char *path, egr_ini_handler h, void *user, char *err, size_t errlen)
{
	struct ini_ctx c = { .path = path, .h = h, .user = user, .err = err, .errlen = errlen };
	int ret, r;

	c.f = fopen(path, "re");
	if (!c.f) {
		ret = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", path, strerror(-ret));
		return ret;
	}
	ret = ini_check_lines(&c);
	if (ret < 0)
		goto out;
	r = ini_parse_stream(ini_read_line, &c, ini_call, &c);
	if (ferror(c.f)) {
		ret = -(errno ? errno : EIO);
		egr_errf(err, errlen, "read(\"%s\"): %s", path, strerror(-ret));
	} else if (c.fail_line && (r <= 0 || (unsigned)r >= c.fail_line)) {
		ret = c.fail_code;	/* err already says it */
	} else if (r > 0) {
		/* inih found it (no handler ran for that line): a syntax error */
		ret = -EINVAL;
		egr_errf(err, errlen, "%s:%d: syntax error: expected '[section]', 'key = value' or a ';' comment",
			 path, r);
	} else if (r < 0) {
		ret = -ENOMEM;
		egr_errf(err, errlen, "ini_parse_stream(\"%s\"): out of memory", path);
	} else {
		ret = 0;
	}
out:
	free(c.line);
	fclose(c.f);
	return ret;
}

/* ---- numbers ---- */

/* decimal digits only: no sign, no blanks, no base prefix */
static int parse_digits(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	for (i = 0; i < len; i++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return -ERANGE;
	*out = v;
	return 0;
}

int egr_conf_parse_u64(const char *s, uint64_t *out)
{
	return parse_digits(s, strlen(s), out);
}

int egr_conf_parse_size(const char *s, uint64_t *out)
{
	static const char units[4] = { 'K', 'M', 'G', 'T' };
	size_t len = strlen(s);
	unsigned shift = 0;
	const char *u;
	uint64_t v;
	int ret;

	if (len && (u = memchr(units, toupper((unsigned char)s[len - 1]), sizeof(units))) != NULL) {
		shift = 10 * (unsigned)(u - units + 1);
		len--;
	}
	ret = parse_digits(s, len, &v);
	if (ret < 0)
		return ret;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

/* ---- the key table ---- */

enum conf_type { CT_STR, CT_ENUM, CT_PATHS, CT_U32, CT_U64, CT_SIZE };

/* the values each ENUM key accepts, named enum_<field> */
static const char *const enum_backend[] = { "cpu", "cuda", "auto", NULL };
/* indexed by enum egr_pipeline */
static const char *const enum_pipeline[] = {
	[EGR_PIPE_FULL] = "full",
	[EGR_PIPE_NAIVE] = "naive",
	[EGR_PIPE_NO_COPY_STREAM] = "no-copy-stream",
	[EGR_PIPE_PAGEABLE] = "pageable",
	[EGR_PIPE_SINGLE_BUFFER] = "single-buffer",
	[EGR_PIPE_ONE_WORKER] = "one-worker",
	NULL,
};
_Static_assert(sizeof(enum_pipeline) / sizeof(enum_pipeline[0]) == EGR_PIPE_ONE_WORKER + 2,
	       "enum_pipeline names every enum egr_pipeline value, in order");
static const char *const enum_log_level[] = { "err", "warning", "notice", "info", "debug", NULL };
static const char *const enum_shared_spool[] = { "no", "yes", NULL };

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t off;
	size_t size;
	const char *def;
	uint64_t min, max;
	const char *help;
	const char *const *values;	/* ENUM only */
};

#define CONF_VALUES_STR(f) NULL
#define CONF_VALUES_ENUM(f) enum_##f
#define CONF_VALUES_PATHS(f) NULL
#define CONF_VALUES_U32(f) NULL
#define CONF_VALUES_U64(f) NULL
#define CONF_VALUES_SIZE(f) NULL
#define CONF_FIELD(f) (((struct egr_conf *)0)->f)
#define CONF_ENTRY(sec, key, type, field, def, min, max, help) \
	{ #sec, #key, CT_##type, offsetof(struct egr_conf, field), sizeof(CONF_FIELD(field)), def, \
	  (uint64_t)(min), (uint64_t)(max), help, CONF_VALUES_##type(field) },

static const struct conf_key conf_keys[] = { EGR_CONF_KEYS(CONF_ENTRY) };
#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* The table's types must match the struct's fields: checked at compile time. */
#define CONF_IS_CHARS(f) _Generic(&CONF_FIELD(f)[0], char *: 1, default: 0)
#define CONF_CHECK_STR(f) _Static_assert(CONF_IS_CHARS(f), #f ": STR needs a char array");
#define CONF_CHECK_ENUM(f) _Static_assert(CONF_IS_CHARS(f), #f ": ENUM needs a char array");
#define CONF_CHECK_PATHS(f) _Static_assert(CONF_IS_CHARS(f), #f ": PATHS needs a char array");
#define CONF_CHECK_U32(f) _Static_assert(_Generic(CONF_FIELD(f), uint32_t: 1, default: 0), #f ": U32 needs uint32_t");
#define CONF_CHECK_U64(f) _Static_assert(_Generic(CONF_FIELD(f), uint64_t: 1, default: 0), #f ": U64 needs uint64_t");
#define CONF_CHECK_SIZE(f) _Static_assert(_Generic(CONF_FIELD(f), uint64_t: 1, default: 0), #f ": SIZE needs uint64_t");
#define CONF_CHECK(sec, key, type, field, def, min, max, help) CONF_CHECK_##type(field)
EGR_CONF_KEYS(CONF_CHECK)
_Static_assert(sizeof(conf_keys) / sizeof(conf_keys[0]) <= 64, "conf_ctx.seen is a 64-bit mask");

static int shm_name_ok(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

	return n == strlen(s) && n >= 1 && n <= 63 && strcmp(s, ".") && strcmp(s, "..");
}

/* values's index of value, or -1; list (if not NULL) gets "a, b, c" */
static int enum_find(const char *const *values, const char *value, char *list, size_t listlen)
{
	const char *const *e;

	for (e = values; *e; e++)
		if (!strcmp(*e, value))
			return (int)(e - values);
	for (e = values; list && *e; e++)
		snprintf(list + strlen(list), listlen - strlen(list), "%s%s", e == values ? "" : ", ", *e);
	return -1;
}

/*
 * PATHS: opened the way the daemon will open them (then closed again), so a
 * file that loads names only directories that exist.  1, or 0 with msg set.
 */
static int paths_ok(const struct conf_key *k, const char *value, char *msg, size_t msglen)
{
	struct egr_safepath sp;
	int write = !strcmp(k->name, "allow_write");

	if (egr_safepath_init(&sp, write ? NULL : value, write ? value : NULL, msg, msglen) < 0)
		return 0;
	egr_safepath_close(&sp);
	return 1;
}

/*
 * Parse and validate value for k into c.  1, or 0 with msg set (the caller
 * adds file and line).  section is the one the file named (k->section, or a
 * deprecated spelling of it), for the message.
 */
static int conf_set(const struct conf_key *k, const char *section, struct egr_conf *c, const char *value,
		    char *msg, size_t msglen)
{
	char *field = (char *)c + k->off;
	char list[256] = "";
	uint64_t v;
	int r;

	if (!*value && k->type != CT_PATHS && !(k->type == CT_STR && !*k->def)) {
		egr_errf(msg, msglen, "[%s] %s: empty value", section, k->name);
		return 0;
	}
	switch (k->type) {
	case CT_STR:
	case CT_ENUM:
	case CT_PATHS:
		if (strlen(value) >= k->size) {
			egr_errf(msg, msglen, "[%s] %s: value is %zu bytes long; at most %zu fit", section, k->name,
				 strlen(value), k->size - 1);
			return 0;
		}
		if (k->type == CT_ENUM && enum_find(k->values, value, list, sizeof(list)) < 0) {
			egr_errf(msg, msglen, "[%s] %s: '%s' is not one of: %s", section, k->name, value, list);
			return 0;
		}
		if (k->off == offsetof(struct egr_conf, spool) && value[0] != '/') {
			egr_errf(msg, msglen, "[%s] %s: '%s' is not an absolute path", section, k->name, value);
			return 0;
		}
		if (k->type == CT_PATHS && !paths_ok(k, value, msg, msglen))
			return 0;
		if (k->off == offsetof(struct egr_conf, host_id) && *value && !shm_name_ok(value)) {
			egr_errf(msg, msglen, "[%s] %s: '%s' is not a valid name (1 to 63 of A-Z a-z 0-9 . _ -)",
				 section, k->name, value);
			return 0;
		}
		if (k->off == offsetof(struct egr_conf, instance) && !shm_name_ok(value)) {
			egr_errf(msg, msglen,
				 "[%s] %s: '%s' is not a valid shm name (1 to 63 of A-Z a-z 0-9 . _ -)",
				 section, k->name, value);
			return 0;
		}
		memcpy(field, value, strlen(value) + 1);
		return 1;
	case CT_U32:
	case CT_U64:
	case CT_SIZE:
		r = k->type == CT_SIZE ? egr_conf_parse_size(value, &v) : egr_conf_parse_u64(value, &v);
		if (r == -EINVAL) {
			egr_errf(msg, msglen, "[%s] %s: '%s' is not %s", section, k->name, value,
				 k->type == CT_SIZE ? "a size (a number with an optional K, M, G or T suffix)"
						    : "a number");
			return 0;
		}
		if (r < 0 || v < k->min || v > k->max) {
			egr_errf(msg, msglen, "[%s] %s: %s is out of range (%" PRIu64 "..%" PRIu64 ")", section,
				 k->name, value, k->min, k->max);
			return 0;
		}
		if (k->type == CT_U32) {
			uint32_t v32 = (uint32_t)v;	/* max <= UINT32_MAX: the table's ranges */

			memcpy(field, &v32, sizeof(v32));
		} else {
			memcpy(field, &v, sizeof(v));
		}
		return 1;
	}
	return 0;
}

void egr_conf_defaults(struct egr_conf *c)
{
	char msg[256];
	size_t i;

	memset(c, 0, sizeof(*c));
	/* the defaults are constants that tests/test_conf.c checks, never input */
	for (i = 0; i < NKEYS; i++)
		conf_set(&conf_keys[i], conf_keys[i].section, c, conf_keys[i].def, msg, sizeof(msg));
}

/*
 * The section a key of the file lives in now.  Deprecated: pipeline was a
 * [daemon] key before the benchmark ablations got [bench]; files that still
 * say [daemon] pipeline load, to the same field.
 */
static const char *conf_section_now(const char *section, const char *name)
{
	if (!strcmp(section, "daemon") && !strcmp(name, "pipeline"))
		return "bench";
	return section;
}

struct conf_ctx {
	struct egr_conf *c;
	uint64_t seen;		/* bit i: conf_keys[i] was set */
};

/* [cuda] device is the one-GPU form of devices: one file sets one of them */
static int both_device_keys(uint64_t seen)
{
	uint64_t both = 0;

	for (size_t i = 0; i < NKEYS; i++)
		if (conf_keys[i].off == offsetof(struct egr_conf, device) ||
		    conf_keys[i].off == offsetof(struct egr_conf, devices))
			both |= 1ull << i;
	return (seen & both) == both;
}

int egr_conf_devices(const struct egr_conf *c, int ngpus, uint32_t *list, int max, char *err, size_t errlen)
{
	const char *p = c->devices;
	int n = 0;

	if (!*p) {
		list[0] = c->device;
		return 1;
	}
	if (!strcmp(p, "all")) {
		if (ngpus < 1) {
			egr_errf(err, errlen, "[cuda] devices = all, but no GPU (/dev/nvidiaN) is visible");
			return -EINVAL;
		}
		for (n = 0; n < ngpus && n < max; n++)
			list[n] = (uint32_t)n;
		return n;
	}
	while (*p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || v > 64 || (*end && *end != ' ' && *end != ',')) {
			egr_errf(err, errlen, "[cuda] devices: '%s' is not a list of GPU ordinals (0..64) or all",
				 c->devices);
			return -EINVAL;
		}
		for (int i = 0; i < n; i++)
			if (list[i] == v) {
				egr_errf(err, errlen, "[cuda] devices: GPU %lu is listed twice", v);
				return -EINVAL;
			}
		if (n == max) {
			egr_errf(err, errlen, "[cuda] devices: more than %d GPUs", max);
			return -EINVAL;
		}
		list[n++] = (uint32_t)v;
		for (p = end; *p == ' ' || *p == ','; p++)
			;
	}
	return n;
}

static int conf_handler(void *user, const char *section, const char *name, const char *value, char *err,
			size_t errlen)
{
	struct conf_ctx *x = user;
	const char *now = conf_section_now(section, name);
	int known_section = 0;
	size_t i;

	if (!*section) {
		egr_errf(err, errlen, "key '%s' is outside any [section]", name);
		return 0;
	}
	for (i = 0; i < NKEYS; i++) {
		known_section |= !strcmp(conf_keys[i].section, section);
		if (strcmp(conf_keys[i].section, now) || strcmp(conf_keys[i].name, name))
			continue;
		if (x->seen & (1ull << i)) {
			egr_errf(err, errlen, "duplicate key '%s' in [%s]%s", name, section,
				 conf_keys[i].off == offsetof(struct egr_conf, pipeline)
					 ? " ([daemon] pipeline is the deprecated spelling of [bench] pipeline)"
					 : "");
			return 0;
		}
		x->seen |= 1ull << i;
		if (both_device_keys(x->seen)) {
			egr_errf(err, errlen, "[cuda] device and devices are both set: keep one (devices = %s, or device = N)",
				 "\"0 1\" | all");
			return 0;
		}
		return conf_set(&conf_keys[i], section, x->c, value, err, errlen);
	}
	if (known_section)
		egr_errf(err, errlen, "unknown key '%s' in [%s]", name, section);
	else
		egr_errf(err, errlen, "unknown section [%s] (key '%s')", section, name);
	return 0;
}

int egr_conf_load(const char *path, struct egr_conf *c, char *err, size_t errlen)
{
	struct egr_conf tmp;	/* c stays untouched unless the whole file is good */
	struct conf_ctx x = { .c = &tmp };
	int ret;

	egr_conf_defaults(&tmp);

	if (strlen(path) >= sizeof(tmp.path)) {
		egr_errf(err, errlen, "open(\"%s\"): %s", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	ret = egr_conf_ini_parse(path, conf_handler, &x, err, errlen);
	if (ret < 0)
		return ret;
	snprintf(tmp.path, sizeof(tmp.path), "%s", path);
	*c = tmp;
	return 0;
}

/* the shortest exact spelling: 33554432 -> "32M" */
static void size_str(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "TGMK";
	int i;

	for (i = 0; v && i < 4; i++) {
		unsigned shift = 10 * (unsigned)(4 - i);

		if ((v & ((1ull << shift) - 1)) == 0) {
			snprintf(buf, len, "%" PRIu64 "%c", v >> shift, units[i]);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64, v);
}

void egr_conf_dump(const struct egr_conf *c, FILE *f)
{
	const char *section = "";
	size_t i;

	fprintf(f, "; egressd configuration: effective settings\n");
	if (c->path[0]) {
		/* a comment must stay on one line whatever the file's name */
		fputs("; from ", f);
		for (i = 0; c->path[i]; i++)
			fputc(iscntrl((unsigned char)c->path[i]) ? '?' : c->path[i], f);
		fputc('\n', f);
	} else {
		fputs("; from built-in defaults\n", f);
	}
	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		const char *field = (const char *)c + k->off;
		char buf[32];
		uint32_t v32;
		uint64_t v;

		if (strcmp(section, k->section)) {
			section = k->section;
			fprintf(f, "\n[%s]\n", section);
		}
		fprintf(f, "; %s", k->help);
		if (k->type == CT_SIZE) {
			char lo[32], hi[32];

			size_str(k->min, lo, sizeof(lo));
			size_str(k->max, hi, sizeof(hi));
			fprintf(f, " [%s..%s]", lo, hi);
		} else if (k->type == CT_U32 || k->type == CT_U64) {
			fprintf(f, " [%" PRIu64 "..%" PRIu64 "]", k->min, k->max);
		}
		/* a string left unset stays unset (and commented) when the dump is loaded */
		fprintf(f, "\n%s%s = ", (k->type == CT_STR && !*field) ? "; " : "", k->name);
		switch (k->type) {
		case CT_STR:
		case CT_ENUM:
		case CT_PATHS:
			fprintf(f, "%.*s\n", (int)k->size, field);
			break;
		case CT_U32:
			memcpy(&v32, field, sizeof(v32));
			fprintf(f, "%" PRIu32 "\n", v32);
			break;
		case CT_U64:
			memcpy(&v, field, sizeof(v));
			fprintf(f, "%" PRIu64 "\n", v);
			break;
		case CT_SIZE:
			memcpy(&v, field, sizeof(v));
			size_str(v, buf, sizeof(buf));
			fprintf(f, "%s\n", buf);
			break;
		}
	}
}

int egr_conf_log_level(const struct egr_conf *c)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "err", EGR_LOG_ERR },	      { "warning", EGR_LOG_WARNING }, { "notice", EGR_LOG_NOTICE },
		{ "info", EGR_LOG_INFO },     { "debug", EGR_LOG_DEBUG },
	};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcmp(c->log_level, levels[i].name))
			return levels[i].level;
	return EGR_LOG_INFO;
}

int egr_conf_parse_pipeline(const char *s, enum egr_pipeline *out, char *err, size_t errlen)
{
	char list[256] = "";
	int i = *s ? enum_find(enum_pipeline, s, list, sizeof(list)) : EGR_PIPE_FULL;

	if (i < 0) {
		egr_errf(err, errlen, "pipeline '%s' is not one of: %s", s, list);
		return -EINVAL;
	}
	*out = (enum egr_pipeline)i;
	return 0;
}

enum egr_pipeline egr_conf_pipeline(const struct egr_conf *c)
{
	enum egr_pipeline p = EGR_PIPE_FULL;
	char err[256];

	egr_conf_parse_pipeline(c->pipeline, &p, err, sizeof(err));
	return p;
}

int egr_conf_paths_ready(const struct egr_conf *c, char *err, size_t errlen)
{
	int r = c->allow_read[strspn(c->allow_read, " \t")] != '\0';
	int w = c->allow_write[strspn(c->allow_write, " \t")] != '\0';

	if (r && w)
		return 0;
	egr_errf(err, errlen,
		 "egressd runs no job until [paths] %s in %s name%s the directories jobs may %s",
		 !r && !w ? "allow_read and allow_write" : !r ? "allow_read" : "allow_write",
		 c->path[0] ? c->path : "its configuration file", !r && !w ? "" : "s",
		 !r && !w ? "read and write" : !r ? "read" : "write");
	return -EACCES;
}

/* What SIGHUP may change: the limits, the metrics and the log level. */
static int conf_reloadable(const struct conf_key *k)
{
	return !strcmp(k->section, "limits") || !strcmp(k->section, "metrics") ||
	       k->off == offsetof(struct egr_conf, log_level);
}

int egr_conf_reload(struct egr_conf *cur, const struct egr_conf *next, char *refused, size_t len)
{
	int n = 0;

	if (refused && len)
		refused[0] = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		char *to = (char *)cur + k->off;
		const char *from = (const char *)next + k->off;
		int text = k->type == CT_STR || k->type == CT_ENUM;

		if (text ? !strncmp(to, from, k->size) : !memcmp(to, from, k->size))
			continue;
		if (conf_reloadable(k)) {
			memcpy(to, from, k->size);
			continue;
		}
		if (refused && len)
			snprintf(refused + strlen(refused), len - strlen(refused), "%s[%s] %s", n ? ", " : "",
				 k->section, k->name);
		n++;
	}
	return n;
}

int egr_conf_uid_allowed(const struct egr_conf *c, unsigned uid)
{
	const char *p = c->submit_uids;

	if (!p[strspn(p, " \t,")])
		return 1;
	while (*p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p)
			return 0;	/* a malformed list allows nobody: fail closed */
		if (v == uid)
			return 1;
		p = end + strspn(end, " \t,");
	}
	return 0;
}
