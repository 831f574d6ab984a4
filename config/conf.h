/*
 * conf: the daemon configuration (/etc/egressd/egressd.ini).
 *
 * One table, EGR_CONF_KEYS, drives the struct, the defaults, the parser and
 * the `egressd -t` dump.  Unknown sections or keys and bad values are errors
 * naming the file, the line and the key.  Sizes accept K, M, G, T suffixes
 * (powers of 1024).
 *
 * [bench] holds the benchmark ablations; production configs leave it out.
 * `[daemon] pipeline` is still read, as a deprecated spelling of
 * `[bench] pipeline` (same field, same effect), so older files load.
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
 * suffixes).  min/max bound the numeric types; a string is bounded by its
 * buffer.  A STR key whose default is empty is optional: an empty value
 * leaves it unset (the dump shows it so).
 */
#define EGR_CONF_KEYS(X) \
	X(daemon, spool, STR, spool, "/var/spool/egressd", 0, 0, "spool directory (incoming/ active/ done/ failed/)") \
	X(daemon, instance, STR, instance, "egressd", 0, 0, "shm segment name /<instance>, one per daemon") \
	X(daemon, workers, U32, workers, "4", 1, 64, "writer processes") \
	X(daemon, read_threads, U32, read_threads, "4", 1, 64, "producer threads reading each chunk's latents") \
	X(daemon, backend, ENUM, backend, "auto", 0, 0, "producer backend: cpu | cuda | auto") \
	X(daemon, log_level, ENUM, log_level, "info", 0, 0, "err | warning | notice | info | debug") \
	X(daemon, submit_uids, STR, submit_uids, "", 0, 0, "uids whose job files run (\"1000 1001\"); empty: whoever can write incoming/") \
	X(daemon, shared_spool, ENUM, shared_spool, "no", 0, 0, "several daemons serve the spool (docs/SCALING.md): no | yes") \
	X(daemon, host_id, STR, host_id, "", 0, 0, "this machine in shared-spool names (empty: the hostname)") \
	X(daemon, lease_timeout, U32, lease_timeout, "30", 2, 86400, "seconds without a heartbeat before a daemon's jobs are requeued") \
	X(paths, allow_read, PATHS, allow_read, "", 0, 0, "directories jobs may read latents and weights under (none: no job runs)") \
	X(paths, allow_write, PATHS, allow_write, "", 0, 0, "directories jobs may write outputs under (none: no job runs)") \
	X(ring, slots, U32, slots, "8", 2, 4096, "slot buffers in shared memory") \
	X(ring, slot_bytes, SIZE, slot_bytes, "32M", 4096, 1ull << 34, "bytes per slot (one decoded chunk)") \
	X(limits, max_frames, U64, max_frames, "100000", 1, 100000000, "most frames one job may have") \
	X(limits, max_pixels, U64, max_pixels, "33554432", 64, 1ull << 32, "most output pixels per frame") \
	X(limits, max_bytes, SIZE, max_bytes, "1T", 1, 1ull << 62, "most output bytes one job may write") \
	X(limits, max_latent_bytes, SIZE, max_latent_bytes, "64G", 1, 1ull << 62, "largest latents file accepted") \
	X(limits, poison_tries, U32, poison_tries, "3", 1, 1000, "crashes in a row at one chunk before a job fails") \
	X(limits, oom_tries, U32, oom_tries, "3", 1, 1000, "OOM kills of a process on one job before it fails") \
	X(cuda, device, U32, device, "0", 0, 64, "CUDA device ordinal") \
	X(cuda, devices, STR, devices, "", 0, 0, "GPUs, one producer each: ordinals (\"0 1 3\") or all; replaces device") \
	X(cuda, vram_buffers, U32, vram_buffers, "2", 1, 8, "device frame buffers (2 = double buffering)") \
	X(metrics, textfile, STR, metrics_textfile, "", 0, 0, "Prometheus text file, rewritten every second (empty: off)") \
	X(metrics, listen, STR, metrics_listen, "", 0, 0, "serve GET /metrics on 127.0.0.1:PORT or [::1]:PORT (empty: off)") \
	X(bench, pipeline, ENUM, pipeline, "full", 0, 0, \
	  "benchmark ablation (production configs leave [bench] out): full | naive | no-copy-stream | pageable | single-buffer | one-worker")

struct egr_conf {
	char path[EGR_PATH_MAX];	/* the file it came from */
	char spool[EGR_PATH_MAX];
	char instance[64];
	uint32_t workers;
	uint32_t read_threads;
	char backend[16];
	char log_level[16];
	char submit_uids[256];
	char shared_spool[4];	/* "no" | "yes": see daemon/supervisor/lease.h */
	char host_id[64];	/* "" = the hostname (egr_lease_identity) */
	uint32_t lease_timeout;
	char allow_read[EGR_PATH_MAX];	/* [paths]: see daemon/base/safepath.h */
	char allow_write[EGR_PATH_MAX];
	uint32_t slots;
	uint64_t slot_bytes;
	uint64_t max_frames;
	uint64_t max_pixels;
	uint64_t max_bytes;
	uint64_t max_latent_bytes;
	uint32_t poison_tries;
	uint32_t oom_tries;
	uint32_t device;
	char devices[128];
	uint32_t vram_buffers;
	char metrics_textfile[EGR_PATH_MAX];
	char metrics_listen[64];
	char pipeline[32];	/* read it with egr_conf_pipeline() */
};

/*
 * [bench] pipeline: the full pipeline, or one benchmark baseline/ablation
 * (docs/CUDA.md, docs/BENCHMARKS.md).  Who acts on which:
 *   NAIVE            the producer runs its one-stream loop (egr_naive_cuda_decode)
 *   NO_COPY_STREAM   the cuda backend issues the D2H on the compute stream
 *   PAGEABLE         the cuda backend does not register the slot area
 *   SINGLE_BUFFER    the cuda backend uses one VRAM buffer
 *   ONE_WORKER       the supervisor starts one writer; the backend runs full
 */
enum egr_pipeline {
	EGR_PIPE_FULL,
	EGR_PIPE_NAIVE,
	EGR_PIPE_NO_COPY_STREAM,
	EGR_PIPE_PAGEABLE,
	EGR_PIPE_SINGLE_BUFFER,
	EGR_PIPE_ONE_WORKER,
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
/*
 * The GPUs to run producers on: [cuda] devices parsed ("0 2" -> 2 entries),
 * or [cuda] device alone.  "all" needs the machine's count: ngpus (the
 * caller counts them without CUDA, e.g. /dev/nvidiaN).  Returns how many
 * went into list (at most max), or -EINVAL with err set.
 */
int egr_conf_devices(const struct egr_conf *c, int ngpus, uint32_t *list, int max, char *err, size_t errlen);
/* 1 if a job file owned by uid may run under [daemon] submit_uids (empty: any) */
int egr_conf_uid_allowed(const struct egr_conf *c, unsigned uid);
/* syslog level for c->log_level */
int egr_conf_log_level(const struct egr_conf *c);
/*
 * SIGHUP: take next's reloadable settings ([limits], [metrics], [daemon]
 * log_level) into cur.  Keys that only a restart can change (the spool, the
 * instance, the workers, the ring, the backend, ...) keep cur's values; each
 * one whose value differs is named in refused ("[daemon] workers, [ring]
 * slots"; "" when none).  Returns how many were refused.
 */
int egr_conf_reload(struct egr_conf *cur, const struct egr_conf *next, char *refused, size_t len);
/*
 * The one pipeline parser: "full", "naive", ... (an empty string is full: a
 * struct filled by hand) -> *out.  0, or -EINVAL with err holding
 * "pipeline 'fast' is not one of: full, naive, ...".
 */
int egr_conf_parse_pipeline(const char *s, enum egr_pipeline *out, char *err, size_t errlen);
/* c->pipeline as the enum; a value egr_conf_load would refuse reads as full */
enum egr_pipeline egr_conf_pipeline(const struct egr_conf *c);
/*
 * Jobs run only once [paths] names roots of both kinds.  0, or -EACCES with
 * err holding the one-line refusal every job gets until then, naming the
 * key(s) to set and the file.
 */
int egr_conf_paths_ready(const struct egr_conf *c, char *err, size_t errlen);

/*
 * inih (vendored in config/inih, built with INI_MAX_LINE = EGR_INI_LINE_MAX
 * + 3: see the Makefile) with the guard every egressd INI file needs: the
 * whole file is checked first and lines longer than EGR_INI_LINE_MAX bytes
 * (newline not counted) are rejected before inih sees any of it
 * ("file:3: line is 9000 bytes long; the limit is 8191"), never cut.  8191
 * holds a 128-channel l2r_weights line.  Indented lines are ordinary lines,
 * never continuations of the previous value.
 * handler is inih's (section, name, value) callback; it returns 1 to go on
 * or 0 to stop, having written its reason to err (the line is prefixed).
 * Returns 0, -EINVAL (the first error, "path:line: reason", in err) or
 * -errno ("open(\"path\"): reason").
 */
#define EGR_INI_LINE_MAX 8191
typedef int (*egr_ini_handler)(void *user, const char *section, const char *name,
			       const char *value, char *err, size_t errlen);
int egr_conf_ini_parse(const char *path, egr_ini_handler h, void *user, char *err, size_t errlen);

/* "32M" -> 33554432.  0 or -EINVAL / -ERANGE. */
int egr_conf_parse_size(const char *s, uint64_t *out);
int egr_conf_parse_u64(const char *s, uint64_t *out);

#endif
