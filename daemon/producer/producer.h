/*
 * producer.h: what the producer's files share (producer.c: main and the
 * ring pipeline's job loop; plan.c: planning, limits and latents staging;
 * naive.c: the benchmark baseline loop).  Internal to egressd-producer.
 */
#ifndef EGR_PRODUCER_H
#define EGR_PRODUCER_H

#include <signal.h>
#include <stdint.h>

#include "config/conf.h"
#include "daemon/base/safepath.h"
#include "daemon/formats/npy.h"
#include "daemon/producer/loader.h"
#include "daemon/producer/backend.h"
#include "shm/ring.h"

struct producer {
	struct egr_conf conf;
	struct egr_safepath roots;	/* [paths]: every job path is reached through them */
	struct egr_ring *ring;
	const struct egr_backend_ops *ops;
	void *be;
	char backend_name[16];	/* for results: "cpu", "cuda", "cuda-naive" */
	int gpu;		/* the GPU it drives, -1 none */
	int notify_fd;
	/* slots handed to the backend and not yet published (by slot index) */
	uint8_t *inflight;
	uint32_t nslots;
	struct egr_loader *loader;	/* [daemon] read_threads readers of each chunk */
};

/*
 * A job's inputs, opened through the roots (safepath.h) and kept open while
 * it runs: the loaders read the very files that were checked, through
 * /proc/self/fd/N, never a second lookup of the user's path.
 */
struct egr_job_inputs {
	struct egr_safepath_file f[3];	/* latents, then weights and vae_config where the job names them */
	size_t n;
	char latents[32], weights[32], vae_config[32];	/* "/proc/self/fd/N", or "" */
	char weights_key[EGR_PATH_MAX + 128];	/* user path + identity, for caches */
};
void egr_producer_inputs_close(struct egr_job_inputs *in);

/* Set by SIGTERM/SIGINT; every loop checks it. */
extern volatile sig_atomic_t egr_producer_stop;

/* Wake the supervisor: the job table changed. */
void egr_producer_notify(struct producer *p);

/*
 * Open the latents, plan the job (limits, geometry, layout recorded in the
 * ring, temporary output created once per job) and start it on the backend:
 * the set-up every pipeline shares.  j is refreshed with the layout in force.
 * A stateful decoder (taehv, wan_vae) is probed on the backend first: its
 * output size and frame count plan the layout, chunk_frames counting latent
 * frames (struct egr_job_layout); a backend without probe fails the job.
 */
int egr_producer_begin_job(struct producer *p, struct egr_job_view *j, struct egr_npy *n,
			   struct egr_job_geom *g, struct egr_job_inputs *in, char *err, size_t errlen);
/*
 * Stage one chunk's latents: a backend input buffer, filled from the
 * latents file by the loader's threads, checked for NaN/Inf.  *read_ns
 * grows by the time both took.  Returns the buffer, or NULL with err set.
 */
void *egr_producer_load_chunk(struct producer *p, const struct egr_job_view *j, struct egr_npy *n,
			      const struct egr_job_geom *g, uint32_t first, uint32_t nf, uint64_t *read_ns,
			      char *err, size_t errlen);
/* Add one job run's producer-side numbers to the job's shared stats. */
void egr_producer_add_stats(struct producer *p, uint32_t job, const struct egr_backend_stats *b,
			    uint64_t read_ns, uint64_t blocked_ns, uint64_t producer_ns);

/* pipeline = naive (naive.c): the benchmark baseline for one job. */
void egr_producer_run_naive(struct producer *p, uint32_t job);

#endif
