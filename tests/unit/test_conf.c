/*
 * test_conf: the daemon configuration and egr_conf_ini_parse: defaults, every
 * class of error with its file:line prefix, the EGR_INI_LINE_MAX line limit,
 * size suffixes, the dump -> load round trip and the dump's golden output
 * (tests/ref/data/conf_dump.golden; EGR_UPDATE_GOLDEN=1 rewrites it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/conf.h"
#include "daemon/base/log.h"

#include "check.h"
#include "helpers.h"

static char dir[64];

static const char *write_file(const char *name, const char *text, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
		printf("%s:%d: cannot write %s\n", __FILE__, __LINE__, path);
		exit(1);
	}
	return path;
}

static const char *conf_file(const char *text)
{
	return write_file("egressd.ini", text, strlen(text));
}

static char *dump_str(const struct egr_conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	egr_conf_dump(c, f);
	fclose(f);
	return buf;
}

static void test_defaults(void)
{
	struct egr_conf c;

	egr_conf_defaults(&c);
	CHECK(!strcmp(c.spool, "/var/spool/egressd"), "spool '%s'", c.spool);
	CHECK(!strcmp(c.instance, "egressd"), "instance '%s'", c.instance);
	CHECK(c.workers == 4, "workers %u", c.workers);
	CHECK(c.read_threads == 4, "read_threads %u", c.read_threads);
	CHECK(!strcmp(c.backend, "auto"), "backend '%s'", c.backend);
	CHECK(!strcmp(c.pipeline, "full"), "pipeline '%s'", c.pipeline);
	CHECK(!strcmp(c.log_level, "info"), "log_level '%s'", c.log_level);
	CHECK(c.slots == 8, "slots %u", c.slots);
	CHECK(c.slot_bytes == 32ull << 20, "slot_bytes %llu", (unsigned long long)c.slot_bytes);
	CHECK(c.max_frames == 100000, "max_frames %llu", (unsigned long long)c.max_frames);
	CHECK(c.max_pixels == 33554432, "max_pixels %llu", (unsigned long long)c.max_pixels);
	CHECK(c.max_bytes == 1ull << 40, "max_bytes %llu", (unsigned long long)c.max_bytes);
	CHECK(c.max_latent_bytes == 64ull << 30, "max_latent_bytes %llu", (unsigned long long)c.max_latent_bytes);
	CHECK(c.device == 0, "device %u", c.device);
	CHECK(c.vram_buffers == 2, "vram_buffers %u", c.vram_buffers);
	CHECK(c.path[0] == '\0', "path '%s'", c.path);
	CHECK(egr_conf_log_level(&c) == EGR_LOG_INFO, "level %d", egr_conf_log_level(&c));
}

static void test_good(void)
{
	struct egr_conf c;
	char err[512] = "";
	const char *path = conf_file("; egressd test config\r\n"
				     "# hash comment\n"
				     "[daemon]\n"
				     "spool = /srv/spool ; inline comment\n"
				     "    instance = egr.test-1_a\n"	/* indented: a key, not a continuation */
				     "workers=7\r\n"
				     "backend = cpu\n"
				     "pipeline = one-worker\n"
				     "log_level = debug\n"
				     "\n"
				     "[ring]\n"
				     "slots = 4096\n"
				     "slot_bytes = 4K\n"
				     "[limits]\n"
				     "max_frames = 100000000\n"
				     "max_bytes = 2t\n"
				     "max_latent_bytes = 4611686018427387904\n"
				     "[cuda]\n"
				     "vram_buffers = 8\n");
	int r;

	egr_conf_defaults(&c);
	r = egr_conf_load(path, &c, err, sizeof(err));
	CHECK(r == 0, "load: %d %s", r, err);
	CHECK(!strcmp(c.path, path), "path '%s'", c.path);
	CHECK(!strcmp(c.spool, "/srv/spool"), "spool '%s'", c.spool);
	CHECK(!strcmp(c.instance, "egr.test-1_a"), "instance '%s'", c.instance);
	CHECK(c.workers == 7, "workers %u", c.workers);
	CHECK(!strcmp(c.backend, "cpu"), "backend '%s'", c.backend);
	CHECK(!strcmp(c.pipeline, "one-worker"), "pipeline '%s'", c.pipeline);
	CHECK(egr_conf_log_level(&c) == EGR_LOG_DEBUG, "level %d", egr_conf_log_level(&c));
	CHECK(c.slots == 4096, "slots %u", c.slots);
	CHECK(c.slot_bytes == 4096, "slot_bytes %llu", (unsigned long long)c.slot_bytes);
	CHECK(c.max_frames == 100000000, "max_frames %llu", (unsigned long long)c.max_frames);
	CHECK(c.max_bytes == 2ull << 40, "max_bytes %llu", (unsigned long long)c.max_bytes);
	CHECK(c.max_latent_bytes == 1ull << 62, "max_latent_bytes %llu", (unsigned long long)c.max_latent_bytes);
	CHECK(c.vram_buffers == 8, "vram_buffers %u", c.vram_buffers);
	CHECK(c.max_pixels == 33554432, "untouched default changed: %llu", (unsigned long long)c.max_pixels);

	/* the defaults come with the load: c need not be initialised */
	memset(&c, 0xa5, sizeof(c));
	r = egr_conf_load(conf_file("[ring]\nslots = 3\n"), &c, err, sizeof(err));
	CHECK(r == 0 && c.slots == 3 && c.workers == 4 && !strcmp(c.spool, "/var/spool/egressd") &&
		      c.max_bytes == 1ull << 40 && !strcmp(c.backend, "auto"),
	      "load into an uninitialised struct: %d %s", r, err);

	static const struct {
		const char *level;
		int want;
	} levels[] = { { "err", EGR_LOG_ERR },   { "warning", EGR_LOG_WARNING }, { "notice", EGR_LOG_NOTICE },
		       { "info", EGR_LOG_INFO }, { "debug", EGR_LOG_DEBUG } };
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		char text[64];

		snprintf(text, sizeof(text), "[daemon]\nlog_level = %s\n", levels[i].level);
		egr_conf_defaults(&c);
		r = egr_conf_load(conf_file(text), &c, err, sizeof(err));
		CHECK(r == 0 && egr_conf_log_level(&c) == levels[i].want, "%s: %d %s", levels[i].level, r, err);
	}
}

/* [bench] pipeline, its deprecated spelling [daemon] pipeline, and the one parser */
static void test_pipeline(void)
{
	static const struct {
		const char *name;
		enum egr_pipeline want;
	} names[] = { { "full", EGR_PIPE_FULL },
		      { "naive", EGR_PIPE_NAIVE },
		      { "no-copy-stream", EGR_PIPE_NO_COPY_STREAM },
		      { "pageable", EGR_PIPE_PAGEABLE },
		      { "single-buffer", EGR_PIPE_SINGLE_BUFFER },
		      { "one-worker", EGR_PIPE_ONE_WORKER },
		      { "", EGR_PIPE_FULL } };
	static const char *const sections[] = { "bench", "daemon" };
	struct egr_conf c;
	enum egr_pipeline p;
	char text[128], err[512];
	int r;

	egr_conf_defaults(&c);
	CHECK(egr_conf_pipeline(&c) == EGR_PIPE_FULL, "default pipeline %d", egr_conf_pipeline(&c));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		p = (enum egr_pipeline)-1;
		r = egr_conf_parse_pipeline(names[i].name, &p, err, sizeof(err));
		CHECK(r == 0 && p == names[i].want, "parse '%s': %d %d %s", names[i].name, r, p, err);
		for (size_t s = 0; *names[i].name && s < 2; s++) {
			snprintf(text, sizeof(text), "[%s]\npipeline = %s\n", sections[s], names[i].name);
			r = egr_conf_load(conf_file(text), &c, err, sizeof(err));
			CHECK(r == 0 && egr_conf_pipeline(&c) == names[i].want && !strcmp(c.pipeline, names[i].name),
			      "[%s] pipeline = %s: %d %s", sections[s], names[i].name, r, err);
		}
	}
	p = EGR_PIPE_NAIVE;
	r = egr_conf_parse_pipeline("fast", &p, err, sizeof(err));
	CHECK(r == -EINVAL && p == EGR_PIPE_NAIVE &&
		      !strcmp(err, "pipeline 'fast' is not one of: full, naive, no-copy-stream, pageable, single-buffer, one-worker"),
	      "parse 'fast': %d %d '%s'", r, p, err);
	snprintf(c.pipeline, sizeof(c.pipeline), "fast");	/* by hand: egr_conf_load refuses it */
	CHECK(egr_conf_pipeline(&c) == EGR_PIPE_FULL, "'fast' reads as %d", egr_conf_pipeline(&c));
}

static void test_errors(void)
{
	static const struct {
		const char *text;
		const char *want;	/* after "<path>:" */
	} cases[] = {
		{ "[ring]\nsloots = 3\n", "2: unknown key 'sloots' in [ring]" },
		{ "[ring]\nslots = 3\n[rign]\nslots = 3\n", "4: unknown section [rign] (key 'slots')" },
		{ "slots = 3\n", "1: key 'slots' is outside any [section]" },
		{ "[ring]\nslots = 1x\n", "2: [ring] slots: '1x' is not a number" },
		{ "[ring]\nslots = -3\n", "2: [ring] slots: '-3' is not a number" },
		{ "[ring]\nslots = 0x10\n", "2: [ring] slots: '0x10' is not a number" },
		{ "[ring]\nslots = 1\n", "2: [ring] slots: 1 is out of range (2..4096)" },
		{ "[ring]\nslots = 4097\n", "2: [ring] slots: 4097 is out of range (2..4096)" },
		{ "[ring]\nslots = 99999999999999999999999\n", "2: [ring] slots: 99999999999999999999999 is out of range" },
		{ "[daemon]\nworkers = 65\n", "2: [daemon] workers: 65 is out of range (1..64)" },
		{ "[ring]\nslot_bytes = 12Q\n", "2: [ring] slot_bytes: '12Q' is not a size" },
		{ "[ring]\nslot_bytes = 1.5M\n", "2: [ring] slot_bytes: '1.5M' is not a size" },
		{ "[ring]\nslot_bytes = 4095\n", "2: [ring] slot_bytes: 4095 is out of range (4096..17179869184)" },
		{ "[ring]\nslot_bytes = 17179869185\n", "2: [ring] slot_bytes: 17179869185 is out of range" },
		{ "[ring]\nslot_bytes = 16777216T\n", "2: [ring] slot_bytes: 16777216T is out of range" },
		{ "[ring]\nslots =\n", "2: [ring] slots: empty value" },
		{ "[daemon]\nbackend = gpu\n", "2: [daemon] backend: 'gpu' is not one of: cpu, cuda, auto" },
		{ "[daemon]\npipeline = fast\n",
		  "2: [daemon] pipeline: 'fast' is not one of: full, naive, no-copy-stream, pageable, single-buffer, one-worker" },
		{ "[bench]\npipeline = fast\n",
		  "2: [bench] pipeline: 'fast' is not one of: full, naive, no-copy-stream, pageable, single-buffer, one-worker" },
		{ "[daemon]\npipeline = naive\n[bench]\npipeline = naive\n",
		  "4: duplicate key 'pipeline' in [bench] ([daemon] pipeline is the deprecated spelling of [bench] pipeline)" },
		{ "[bench]\nworkers = 2\n", "2: unknown key 'workers' in [bench]" },
		{ "[daemon]\nlog_level = verbose\n", "2: [daemon] log_level: 'verbose' is not one of: err, warning" },
		{ "[daemon]\nspool = var/spool\n", "2: [daemon] spool: 'var/spool' is not an absolute path" },
		{ "[daemon]\ninstance = a/b\n", "2: [daemon] instance: 'a/b' is not a valid shm name" },
		{ "[daemon]\ninstance = ..\n", "2: [daemon] instance: '..' is not a valid shm name" },
		{ "[daemon]\ninstance = "
		  "0123456789012345678901234567890123456789012345678901234567890123\n",
		  "2: [daemon] instance: value is 64 bytes long; at most 63 fit" },
		{ "[ring]\nslots = 4\n\n; again\nslots = 5\n", "5: duplicate key 'slots' in [ring]" },
		{ "[ring]\nslots\n", "2: syntax error" },
		{ "[ring\nslots = 4\n", "1: syntax error" },
		/* the first error is the one reported */
		{ "[ring]\nslots = x\nworkers = y\n", "2: [ring] slots: 'x' is not a number" },
		{ "[ring]\nbogus line\nsloots = 1\n", "2: syntax error" },
		{ "[ring]\nsloots = 1\nbogus line\n", "2: unknown key 'sloots' in [ring]" },
	};
	struct egr_conf c, before;
	char err[512], want[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = conf_file(cases[i].text);
		int r;

		memset(&c, 0x5a, sizeof(c));
		before = c;
		err[0] = '\0';
		r = egr_conf_load(path, &c, err, sizeof(err));
		snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
		CHECK(r == -EINVAL, "case %zu: returned %d", i, r);
		CHECK(!strncmp(err, want, strlen(want)), "case %zu:\n  got  '%s'\n  want '%s...'", i, err, want);
		/* a refused file changes nothing */
		CHECK(!memcmp(&c, &before, sizeof(c)), "case %zu: config changed by a failed load", i);
	}

	snprintf(want, sizeof(want), "%s/nonexistent.ini", dir);
	int r = egr_conf_load(want, &c, err, sizeof(err));
	CHECK(r == -ENOENT, "missing file: %d", r);
	char want2[600];
	snprintf(want2, sizeof(want2), "open(\"%s\"): No such file or directory", want);
	CHECK(!strcmp(err, want2), "missing file: '%s'", err);

	r = egr_conf_load(dir, &c, err, sizeof(err));
	CHECK(r < 0, "a directory loaded: %d", r);
}

/* a line of exactly n bytes (newline not counted) */
static void make_line(char *buf, const char *prefix, size_t n)
{
	size_t p = strlen(prefix);

	memcpy(buf, prefix, p);
	for (size_t i = p; i < n; i++)
		buf[i] = (char)('a' + i % 26);
	buf[n] = '\0';
}

static void test_long_lines(void)
{
	static char line[EGR_INI_LINE_MAX + 200], text[EGR_INI_LINE_MAX + 300];
	char err[512], want[600];
	struct egr_conf c;
	const char *path;
	int r;

	/* 1031 bytes, far past libinih's old 199: accepted, and the value arrives whole */
	make_line(line, "spool = /", 1031);
	snprintf(text, sizeof(text), "[daemon]\n%s\n", line);
	egr_conf_defaults(&c);
	r = egr_conf_load(conf_file(text), &c, err, sizeof(err));
	CHECK(r == 0, "1031 bytes: %d %s", r, err);
	CHECK(strlen(c.spool) == 1031 - strlen("spool = "), "1031 bytes: spool is %zu bytes", strlen(c.spool));
	CHECK(!strcmp(c.spool, line + strlen("spool = ")), "1031 bytes: spool '%s'", c.spool);

	/* the same with CRLF: the '\r' is part of the newline */
	snprintf(text, sizeof(text), "[daemon]\r\n%s\r\n", line);
	egr_conf_defaults(&c);
	r = egr_conf_load(conf_file(text), &c, err, sizeof(err));
	CHECK(r == 0 && !strcmp(c.spool, line + strlen("spool = ")), "1031 bytes CRLF: %d %s", r, err);

	/* the same without the final newline */
	snprintf(text, sizeof(text), "[daemon]\n%s", line);
	egr_conf_defaults(&c);
	r = egr_conf_load(conf_file(text), &c, err, sizeof(err));
	CHECK(r == 0 && !strcmp(c.spool, line + strlen("spool = ")), "1031 bytes, no newline: %d %s", r, err);

	/* EGR_INI_LINE_MAX bytes: read whole (the value's full length is what is refused) */
	make_line(line, "spool = /", EGR_INI_LINE_MAX);
	snprintf(text, sizeof(text), "[daemon]\n%s\n", line);
	path = conf_file(text);
	r = egr_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:2: [daemon] spool: value is %zu bytes long; at most 1023 fit", path,
		 (size_t)EGR_INI_LINE_MAX - strlen("spool = "));
	CHECK(r == -EINVAL && !strcmp(err, want), "%d bytes: %d\n  got  '%s'\n  want '%s'", EGR_INI_LINE_MAX, r, err,
	      want);

	/* one more: refused with the line number, even as a comment */
	make_line(line, "spool = /", EGR_INI_LINE_MAX + 1);
	snprintf(text, sizeof(text), "[daemon]\n\n%s\n", line);
	path = conf_file(text);
	r = egr_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:3: line is %d bytes long; the limit is %d", path, EGR_INI_LINE_MAX + 1,
		 EGR_INI_LINE_MAX);
	CHECK(r == -EINVAL && !strcmp(err, want), "%d bytes: %d\n  got  '%s'\n  want '%s'", EGR_INI_LINE_MAX + 1, r,
	      err, want);

	make_line(line, "; ", EGR_INI_LINE_MAX + 50);
	snprintf(text, sizeof(text), "%s\n", line);
	path = conf_file(text);
	r = egr_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:1: line is %d bytes long", path, EGR_INI_LINE_MAX + 50);
	CHECK(r == -EINVAL && !strncmp(err, want, strlen(want)), "long comment: %d '%s'", r, err);

	/* checked before inih sees the file: an earlier bad key loses to it */
	make_line(line, "; ", EGR_INI_LINE_MAX + 100);
	snprintf(text, sizeof(text), "[ring]\nsloots = 1\n%s\n", line);
	path = conf_file(text);
	r = egr_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:3: line is %d bytes long", path, EGR_INI_LINE_MAX + 100);
	CHECK(r == -EINVAL && !strncmp(err, want, strlen(want)), "long line after a bad key: '%s'", err);

	/* a NUL byte would cut the line as well */
	path = write_file("nul.ini", "[ring]\nslots = 4\0 junk\n", 23);
	r = egr_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:2: line contains a NUL byte", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "NUL: %d '%s'", r, err);
}

static void test_sizes(void)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "4096", 0, 4096 },
		{ "1K", 0, 1024 },
		{ "1k", 0, 1024 },
		{ "32M", 0, 32ull << 20 },
		{ "64G", 0, 64ull << 30 },
		{ "1T", 0, 1ull << 40 },
		{ "0T", 0, 0 },
		{ "16777215T", 0, 16777215ull << 40 },
		{ "16777216T", -ERANGE, 0 },
		{ "17179869183G", 0, 17179869183ull << 30 },
		{ "17179869184G", -ERANGE, 0 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "99999999999999999999999999999999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "-1K", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ "1.5M", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1KB", -EINVAL, 0 },
		{ "1P", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int r = egr_conf_parse_size(cases[i].s, &v);

		CHECK(r == cases[i].ret, "'%s': returned %d, want %d", cases[i].s, r, cases[i].ret);
		if (r == 0)
			CHECK(v == cases[i].v, "'%s': %llu", cases[i].s, (unsigned long long)v);
		else
			CHECK(v == 12345, "'%s': output written on error", cases[i].s);
	}
	uint64_t v;
	CHECK(egr_conf_parse_u64("18446744073709551615", &v) == 0 && v == UINT64_MAX, "u64 max");
	CHECK(egr_conf_parse_u64("18446744073709551616", &v) == -ERANGE, "u64 max+1");
	CHECK(egr_conf_parse_u64("1K", &v) == -EINVAL, "u64 takes no suffix");
	CHECK(egr_conf_parse_u64("", &v) == -EINVAL, "u64 empty");
}

static void test_round_trip(void)
{
	struct egr_conf a, b;
	char err[512];
	char *da, *db, *dump;
	const char *path;
	int r;

	/* the defaults themselves pass validation */
	egr_conf_defaults(&a);
	dump = dump_str(&a);
	path = conf_file(dump);
	egr_conf_defaults(&b);
	strcpy(b.spool, "/elsewhere");
	r = egr_conf_load(path, &b, err, sizeof(err));
	CHECK(r == 0, "defaults dump does not load: %s", err);
	CHECK(!strcmp(b.spool, "/var/spool/egressd"), "spool '%s'", b.spool);
	free(dump);

	/* non-default values, including odd sizes, survive dump -> load */
	egr_conf_defaults(&a);
	r = egr_conf_load(conf_file("[daemon]\nspool = /x/y z\ninstance = i-2\nworkers = 64\nbackend = cuda\n"
				    "pipeline = pageable\nlog_level = warning\n[ring]\nslots = 2\nslot_bytes = 4097\n"
				    "[limits]\nmax_frames = 1\nmax_pixels = 64\nmax_bytes = 3G\nmax_latent_bytes = 5120\n"
				    "[cuda]\ndevice = 3\nvram_buffers = 1\n"),
			  &a, err, sizeof(err));
	CHECK(r == 0, "load: %s", err);
	dump = dump_str(&a);
	path = write_file("dumped.ini", dump, strlen(dump));
	egr_conf_defaults(&b);
	r = egr_conf_load(path, &b, err, sizeof(err));
	CHECK(r == 0, "dump does not load back: %s\n%s", err, dump);
	a.path[0] = b.path[0] = '\0';
	da = dump_str(&a);
	db = dump_str(&b);
	CHECK(!strcmp(da, db), "round trip differs:\n%s\n----\n%s", da, db);
	CHECK(strstr(dump, "\nslot_bytes = 4097\n") && strstr(dump, "\nmax_bytes = 3G\n") &&
		      strstr(dump, "\nmax_latent_bytes = 5K\n"),
	      "sizes not dumped in their shortest exact form:\n%s", dump);
	CHECK(b.slot_bytes == 4097 && b.max_bytes == 3ull << 30 && b.device == 3 && !strcmp(b.spool, "/x/y z"),
	      "values after round trip");
	free(dump);
	free(da);
	free(db);
}

/*
 * A file of the source tree: under $EGR_SRCDIR, else found from __FILE__
 * ("tests/unit/test_conf.c": the Makefile compiles from the top of the tree and
 * the tests run there).
 */
static void src_path(const char *rel, char *buf, size_t len)
{
	const char *env = getenv("EGR_SRCDIR");
	const char *t = strstr(__FILE__, "tests/unit/test_conf.c");

	if (env)
		snprintf(buf, len, "%s/%s", env, rel);
	else
		snprintf(buf, len, "%.*s%s", t ? (int)(t - __FILE__) : 0, __FILE__, rel);
}

static void test_golden(void)
{
	char golden[512], *want, *got;
	struct egr_conf c;
	FILE *f;

	src_path("tests/ref/data/conf_dump.golden", golden, sizeof(golden));
	egr_conf_defaults(&c);
	got = dump_str(&c);
	if (getenv("EGR_UPDATE_GOLDEN")) {
		f = fopen(golden, "w");
		CHECK(f && fputs(got, f) >= 0 && fclose(f) == 0, "cannot write %s", golden);
	}
	want = test_read_file(golden);
	CHECK(want, "cannot read %s (run from the top of the tree, or set EGR_SRCDIR)", golden);
	if (want)
		CHECK(!strcmp(want, got), "egr_conf_dump differs from %s:\n%s", golden, got);
	free(want);
	free(got);
}

/* config/egressd.ini, the shipped example, loads and says what the defaults say */
static void test_example(void)
{
	struct egr_conf def, c;
	char path[512], err[512], *a, *b;
	int r;

	src_path("config/egressd.ini", path, sizeof(path));
	egr_conf_defaults(&def);
	egr_conf_defaults(&c);
	strcpy(c.spool, "/changed");
	c.slots = 3;
	r = egr_conf_load(path, &c, err, sizeof(err));
	CHECK(r == 0, "%s: %s", path, err);
	c.path[0] = '\0';
	a = dump_str(&def);
	b = dump_str(&c);
	CHECK(!strcmp(a, b), "%s does not set every key to its default:\n%s", path, b);
	free(a);
	free(b);
}

/* [paths]: empty by default (no job runs, and the refusal names the key), else existing directories */
static void test_paths(void)
{
	struct egr_conf c;
	char text[512], err[512], want[600], sub[128];
	const char *path;
	int r;

	egr_conf_defaults(&c);
	CHECK(c.allow_read[0] == '\0' && c.allow_write[0] == '\0', "defaults '%s' '%s'", c.allow_read, c.allow_write);
	r = egr_conf_paths_ready(&c, err, sizeof(err));
	CHECK(r == -EACCES && strstr(err, "[paths] allow_read and allow_write in its configuration file name"),
	      "no roots: %d %s", r, err);

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	CHECK(mkdir(sub, 0755) == 0, "mkdir %s", sub);
	snprintf(text, sizeof(text), "[paths]\nallow_read = %s  %s/\nallow_write = %s\n", dir, sub, sub);
	path = conf_file(text);
	r = egr_conf_load(path, &c, err, sizeof(err));
	CHECK(r == 0, "load: %d %s", r, err);
	snprintf(want, sizeof(want), "%s  %s/", dir, sub);
	CHECK(!strcmp(c.allow_read, want) && !strcmp(c.allow_write, sub), "'%s' '%s'", c.allow_read, c.allow_write);
	CHECK(egr_conf_paths_ready(&c, err, sizeof(err)) == 0, "ready: %s", err);
	c.allow_write[0] = '\0';
	r = egr_conf_paths_ready(&c, err, sizeof(err));
	snprintf(want, sizeof(want), "egressd runs no job until [paths] allow_write in %s names the directories jobs may write",
		 path);
	CHECK(r == -EACCES && !strcmp(err, want), "no write root:\n  got  '%s'\n  want '%s'", err, want);

	/* an empty value is allowed here, and the dump of one loads back */
	r = egr_conf_load(conf_file("[paths]\nallow_read =\nallow_write = \n"), &c, err, sizeof(err));
	CHECK(r == 0 && !c.allow_read[0] && !c.allow_write[0], "empty: %d %s", r, err);

	static const struct {
		const char *value, *want;
	} bad[] = {
		{ "relative/dir", "[paths] allow_read: \"relative/dir\" is not an absolute path" },
		{ "/tmp/../etc", "[paths] allow_read: \"/tmp/../etc\" has a \"..\" component" },
		{ "/nonexistent/egressd-root", "[paths] allow_read: \"/nonexistent/egressd-root\" is not an existing directory" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[paths]\nallow_read = %s\n", bad[i].value);
		path = conf_file(text);
		r = egr_conf_load(path, &c, err, sizeof(err));
		snprintf(want, sizeof(want), "%s:2: %s", path, bad[i].want);
		CHECK(r == -EINVAL && !strncmp(err, want, strlen(want)), "%s:\n  got  '%s'\n  want '%s'", bad[i].value, err,
		      want);
	}
	rmdir(sub);
}

/* egr_conf_ini_parse with a handler of its own: what job.c and others rely on */
struct seen {
	int calls;
	char last[64];
};

static int count_handler(void *user, const char *section, const char *name, const char *value, char *err,
			 size_t errlen)
{
	struct seen *s = user;

	s->calls++;
	snprintf(s->last, sizeof(s->last), "%s.%s=%s", section, name, value);
	if (!strcmp(value, "stop")) {
		egr_errf(err, errlen, "told to stop at '%s'", name);
		return 0;
	}
	return 1;
}

static void test_ini_parse(void)
{
	struct seen s = { 0 };
	char err[512], want[600];
	const char *path;
	int r;

	path = conf_file("[a]\nx = 1\n  y = 2\n\t z = 3 \n");
	r = egr_conf_ini_parse(path, count_handler, &s, err, sizeof(err));
	CHECK(r == 0 && s.calls == 3 && !strcmp(s.last, "a.z=3"), "indented keys: %d calls %d last '%s'", r, s.calls,
	      s.last);

	memset(&s, 0, sizeof(s));
	path = conf_file("[a]\n; one\n\n# two\nx = 1\nq = stop\nr = 3\n");
	r = egr_conf_ini_parse(path, count_handler, &s, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:6: told to stop at 'q'", path);
	CHECK(r == -EINVAL && !strcmp(err, want), "handler error: %d '%s'", r, err);
	CHECK(s.calls == 2, "handler called %d times, after it failed", s.calls);

	memset(&s, 0, sizeof(s));
	path = conf_file("");
	r = egr_conf_ini_parse(path, count_handler, &s, err, sizeof(err));
	CHECK(r == 0 && s.calls == 0, "empty file: %d %d", r, s.calls);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/egr-test-conf-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_good();
	test_pipeline();
	test_errors();
	test_long_lines();
	test_sizes();
	test_round_trip();
	test_golden();
	test_example();
	test_ini_parse();
	test_paths();

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("warning: could not remove %s\n", dir);
	if (failures)
		printf("test_conf: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
