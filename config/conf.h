/*
 * conf: the daemon configuration (/etc/egressd/egressd.ini).
 *
 * One table, EGR_CONF_KEYS, drives the struct, the defaults, the parser and
 * the `egressd -t` dump.  Unknown sections or keys and bad values are errors
 * naming the file, the line and the key.  Sizes accept K, M, G, T suffixes
 * (powers of 1024).
 */
#ifndef EGR_CONF_H
#define EGR_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/job.h"

/*
 * X(section, key, type, field, default, min, max, help)
 * type: STR (char[]), ENUM (char[], one of the values conf.c lists for the
 * field), PATHS (char[]: space-separated absolute directories that exist
 * when the file is loaded, or empty), U32, U64, SIZE (uint64_t, K/M/G/T
 * suffixes).  min/max bound the
 * numeric types; a string is bounded by its buffer.
 */
#define EGR_CONF_KEYS(X) \
	X(daemon, spool, STR, spool, "/var/spool/egressd", 0, 0, "spool directory (incoming/ active/ done/ failed/)") \
	X(daemon, instance, STR, instance, "egressd", 0, 0, "shm segment name /<instance>, one per daemon") \
	X(daemon, workers, U32, workers, "4", 1, 64, "writer processes") \
	X(daemon, backend, ENUM, backend, "auto", 0, 0, "producer backend: cpu | cuda | auto") \
	X(daemon, pipeline, ENUM, pipeline, "full", 0, 0, "full | naive | no-copy-stream | pageable | single-buffer | one-worker (cuda ablations)") \
	X(daemon, log_level, ENUM, log_level, "info", 0, 0, "err | warning | notice | info | debug") \
	X(paths, allow_read, PATHS, allow_read, "", 0, 0, "directories jobs may read latents and weights under (none: no job runs)") \
	X(paths, allow_write, PATHS, allow_write, "", 0, 0, "directories jobs may write outputs under (none: no job runs)") \
	X(ring, slots, U32, slots, "8", 2, 4096, "slot buffers in shared memory") \
	X(ring, slot_bytes, SIZE, slot_bytes, "32M", 4096, 1ull << 34, "bytes per slot (one decoded chunk)") \
	X(limits, max_frames, U64, max_frames, "100000", 1, 100000000, "most frames one job may have") \
	X(limits, max_pixels, U64, max_pixels, "33554432", 64, 1ull << 32, "most output pixels per frame") \
	X(limits, max_bytes, SIZE, max_bytes, "1T", 1, 1ull << 62, "most output bytes one job may write") \
	X(limits, max_latent_bytes, SIZE, max_latent_bytes, "64G", 1, 1ull << 62, "largest latents file accepted") \
	X(cuda, device, U32, device, "0", 0, 64, "CUDA device ordinal") \
	X(cuda, vram_buffers, U32, vram_buffers, "2", 1, 8, "device frame buffers (2 = double buffering)")

struct egr_conf {
	char path[EGR_PATH_MAX];	/* the file it came from */
	char spool[EGR_PATH_MAX];
	char instance[64];
	uint32_t workers;
	char backend[16];
	char pipeline[32];
	char log_level[16];
	char allow_read[EGR_PATH_MAX];	/* [paths]: see daemon/base/safepath.h */
	char allow_write[EGR_PATH_MAX];
	uint32_t slots;
	uint64_t slot_bytes;
	uint64_t max_frames;
	uint64_t max_pixels;
	uint64_t max_bytes;
	uint64_t max_latent_bytes;
	uint32_t device;
	uint32_t vram_buffers;
};

/* Fill c with the defaults of the table. */
void egr_conf_defaults(struct egr_conf *c);
/*
 * c = the defaults, then path parsed over them (c need not be initialised).
 * 0, or -EINVAL/-errno with err holding
 * "egressd.ini:7: [ring] slots: '1x' is not a number" and c untouched.
 */
int egr_conf_load(const char *path, struct egr_conf *c, char *err, size_t errlen);
/* Print the effective settings as a valid INI file (egressd -t). */
void egr_conf_dump(const struct egr_conf *c, FILE *f);
/* syslog level for c->log_level */
int egr_conf_log_level(const struct egr_conf *c);
/*
 * Jobs run only once [paths] names roots of both kinds.  0, or -EACCES with
 * err holding the one-line refusal every job gets until then, naming the
 * key(s) to set and the file.
 */
int egr_conf_paths_ready(const struct egr_conf *c, char *err, size_t errlen);

/*
 * inih with the guard every egressd INI file needs: Debian's libinih 55 cuts
 * lines at 200 bytes and parses the tail as a new line, so the whole file is
 * checked first and lines longer than EGR_INI_LINE_MAX bytes (newline not
 * counted) are rejected before inih sees any of it ("file:3: line is 250
 * bytes long; the limit is 199 (libinih cuts longer lines)").  Indented lines
 * are ordinary lines, never continuations of the previous value.
 * handler is inih's (section, name, value) callback; it returns 1 to go on
 * or 0 to stop, having written its reason to err (the line is prefixed).
 * Returns 0, -EINVAL (the first error, "path:line: reason", in err) or
 * -errno ("open(\"path\"): reason").
 */
#define EGR_INI_LINE_MAX 199
typedef int (*egr_ini_handler)(void *user, const char *section, const char *name,
			       const char *value, char *err, size_t errlen);
int egr_conf_ini_parse(const char *path, egr_ini_handler h, void *user, char *err, size_t errlen);

/* "32M" -> 33554432.  0 or -EINVAL / -ERANGE. */
int egr_conf_parse_size(const char *s, uint64_t *out);
int egr_conf_parse_u64(const char *s, uint64_t *out);

#endif
