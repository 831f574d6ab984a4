/*
 * ring: the shared-memory region every egressd process maps.
 *
 * One POSIX shm segment per daemon instance holds, in this order:
 *
 *   struct egr_ring_hdr     magic, version, sizes, robust mutex, semaphores
 *   struct egr_job_sh[8]    the job table (plain data, no pointers)
 *   struct egr_slot_sh[n]   per-slot metadata
 *   chunk bitmaps           one bit per chunk per job: "written to disk"
 *   slot data               n buffers of slot_bytes, page aligned and
 *                           contiguous: the CUDA producer cudaHostRegister()s
 *                           exactly this range (egr_ring_data_base/len).
 *
 * Slots move FREE -> FILLING (producer) -> READY (published, in seq order)
 * -> WRITING (one worker) -> FREE.  The producer blocks while no slot is FREE:
 * that is the backpressure that bounds memory whatever the video's length.
 *
 * Crash safety.  The truth is the state array, changed only under one
 * process-shared robust mutex.  Every critical section stores absolute values
 * in an order whose every prefix is recoverable, so a process SIGKILLed
 * inside one leaves state the next locker (EOWNERDEAD) can accept as is.
 * The semaphores sem_free and sem_ready count FREE and READY slots, but a
 * semaphore has no owner: a process killed between sem_wait and taking the
 * lock loses a token.  So they are wake-up hints: waiters use a bounded
 * sem_timedwait and rescan the state array on timeout, reclaim over-posts
 * rather than under-posts, and a surplus token only costs one empty scan.
 * A slot held by a dead process (owner pid) is given back by
 * egr_ring_reclaim(): WRITING -> READY (the write is idempotent: same bytes,
 * same offset), FILLING -> FREE (its job resumes; see egr_ring_chunk_needed).
 * A chunk counts as written when its bit is set: setting a bit twice is
 * harmless, so a re-written chunk is never counted twice.
 *
 * Functions return 0 or -errno unless said otherwise; err buffers get a
 * one-line reason.  Not async-signal-safe.
 */
#ifndef EGR_RING_H
#define EGR_RING_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/job.h"

#define EGR_RING_MAGIC 0x3130534452474745ull	/* "EGGRDS01" little-endian */
#define EGR_RING_VERSION 4	/* 4: the job spec holds the video keys */
#define EGR_RING_JOBS 8
#define EGR_JOB_NAME_MAX 256
#define EGR_ERR_MAX 512

enum egr_slot_state {
	EGR_SLOT_FREE = 0,
	EGR_SLOT_FILLING = 1,	/* producer owns it; data not valid yet */
	EGR_SLOT_READY = 2,	/* data complete, waiting for a worker */
	EGR_SLOT_WRITING = 3,	/* a worker owns it */
};

enum egr_job_state {
	EGR_JOB_EMPTY = 0,
	EGR_JOB_QUEUED = 1,	/* supervisor queued it, producer not on it yet */
	EGR_JOB_ACTIVE = 2,	/* producer decoding and/or workers writing */
	EGR_JOB_DONE = 3,	/* output renamed into place; supervisor reports */
	EGR_JOB_FAILED = 4,	/* error[] says why; supervisor cleans up */
};

/* One slot's metadata.  Written under the lock, by the role named. */
struct egr_slot_sh {
	uint32_t state;		/* enum egr_slot_state: producer (acquire, publish), worker (take, release), reclaim */
	int32_t owner;		/* pid holding FILLING/WRITING, else 0 (or a dead one until reclaim) */
	uint32_t job;		/* producer (acquire): index into the job table */
	uint32_t chunk;		/* producer (acquire): chunk index within the job */
	uint64_t seq;		/* producer (publish): publish order; workers take the lowest */
	uint32_t first_frame;	/* producer (publish): 0-based */
	uint32_t nframes;	/* producer (publish) */
	uint64_t bytes;		/* producer (publish): valid bytes in the slot */
};

struct egr_job_stats {
	/* wall clock (CLOCK_REALTIME ns) and monotonic bounds of the job */
	uint64_t t_queued_ns, t_start_ns, t_end_ns;
	/* producer, summed over the job (monotonic ns) */
	uint64_t read_ns;	/* reading latents from disk */
	uint64_t decode_ns;	/* decode (CPU) or submit (GPU) time */
	uint64_t blocked_ns;	/* waiting for a FREE slot: backpressure */
	uint64_t producer_ns;	/* first chunk to last publish */
	/* GPU backend only */
	uint64_t gpu_kernel_ns;	/* compute stream time in decode kernels */
	uint64_t gpu_wall_ns;	/* first kernel start to last copy end */
	uint64_t d2h_bytes, d2h_ns;
	/* workers, summed over all workers (atomic adds) */
	uint64_t encode_ns;	/* PNG compression */
	uint64_t write_ns;	/* io_uring/pwrite until completion */
	uint64_t finalize_ns;	/* fsync + rename */
	uint64_t bytes_written;
	uint64_t slot_writes;
	uint64_t rewrites;	/* chunks written again after a worker died */
};

/*
 * Where a job's frames go, fixed once per job by the producer before its
 * first slot is published (egr_ring_job_plan), read by the workers and the
 * supervisor.  Plain data; the output module (workers/output.h) computes it.
 */
struct egr_job_layout {
	uint32_t width, height, channels, lat_h, lat_w;
	uint32_t frames;	/* output frames */
	uint32_t chunk_frames;	/* latent frames a chunk; effective: clamped so a chunk fits a slot */
	uint32_t chunks_total;
	/*
	 * Latent frames to output frames (egr_layout_frames_upto): latent
	 * frames [0, b) decode to output frames [0, max(0, b * time_up -
	 * time_trim)).  latent2rgb, taesd: 1 and 0 (0 and 0 read the same).
	 * Stateful video decoders: Wan VAE 4 and 3 (1 + 4 (T - 1) frames),
	 * TAEHV t_upscale and its trim (Wan 2.1: 4 and 3).
	 */
	uint32_t lat_frames;	/* latent frames of the job (0: = frames) */
	uint32_t time_up, time_trim;
	uint64_t frame_bytes;	/* RGB24 for png, I420 for y4m */
	uint64_t header_bytes;	/* y4m stream header */
	uint64_t out_bytes;	/* final size (y4m) or raw frame bytes (png) */
	char tmp_path[EGR_PATH_MAX];	/* temp file (y4m) or directory (png), for messages */
	char tmp_name[256];	/* its name inside the output's directory (random) */
	/* identities, set once the temporary output exists (egr_ring_job_prepared) */
	uint64_t dir_dev, dir_ino;	/* the output's directory */
	uint64_t tmp_dev, tmp_ino;	/* the temporary output (y4m: the file; png, mp4, mkv: a directory) */
	uint64_t out_dev, out_ino;	/* what is renamed into place: its inode is the output's (y4m, png: tmp) */
};

/* Output frames that latent frames [0, lat_b) decode to (see struct egr_job_layout). */
static inline uint32_t egr_layout_frames_upto(const struct egr_job_layout *l, uint32_t lat_b)
{
	uint64_t up = l->time_up ? l->time_up : 1, f = (uint64_t)lat_b * up;

	f = f > l->time_trim ? f - l->time_trim : 0;
	return f > l->frames ? l->frames : (uint32_t)f;
}

/*
 * Chunk c's latent frames [*lat_first, + *lat_n) and the output frames they
 * decode to [*first, + *n): fixed by the layout, so the writers place every
 * chunk without the decoder (y4m offsets, png names stay parallel-writable).
 */
static inline void egr_layout_chunk(const struct egr_job_layout *l, uint32_t c, uint32_t *lat_first,
				    uint32_t *lat_n, uint32_t *first, uint32_t *n)
{
	uint64_t total = l->lat_frames ? l->lat_frames : l->frames;
	uint64_t a = (uint64_t)c * l->chunk_frames, b = a + l->chunk_frames;

	a = a < total ? a : total;
	b = b < total ? b : total;
	*lat_first = (uint32_t)a;
	*lat_n = (uint32_t)(b - a);
	*first = egr_layout_frames_upto(l, (uint32_t)a);
	*n = egr_layout_frames_upto(l, (uint32_t)b) - *first;
}

/*
 * One row of the job table.  Each field names the role that writes it; all
 * writes happen in shm/ring.c under the lock, except the stats counters
 * (atomic adds by any role, through egr_ring_job_stats()).
 */
struct egr_job_sh {
	uint32_t state;		/* enum egr_job_state; every role, through ring.c's transitions */
	int32_t producer;	/* producer: its pid while decoding it; reclaim clears */
	int32_t finalizer;	/* worker: pid fsyncing/renaming it; reclaim clears */
	uint32_t producer_restarts;	/* reclaim: producer deaths while on this job */
	uint32_t crashes;	/* reclaim: crashes in a row at crash_chunk (any role) */
	uint32_t crash_chunk;	/* reclaim: the chunk those crashes happened at */
	uint32_t ooms;		/* reclaim: processes on this job the OOM killer took */
	uint32_t planned;	/* producer: layout below valid (written before the temp output exists) */
	uint32_t prepared;	/* producer: temp output created */
	uint32_t published_all;	/* producer: every chunk was published once */
	char name[EGR_JOB_NAME_MAX];	/* supervisor: job file name in the spool */
	char path[EGR_PATH_MAX];	/* supervisor: job file as the producer may reread it */
	struct egr_jobspec spec;	/* supervisor */
	struct egr_job_layout lay;	/* producer (egr_ring_job_plan) */
	char backend[16];	/* producer: backend that decoded it, for the result */
	int32_t gpu;		/* producer: the GPU it decoded on, -1 none */

	uint32_t chunks_written;	/* worker: popcount of the bitmap, kept in step */
	struct egr_job_stats st;	/* any role: atomic adds */
	char error[EGR_ERR_MAX];	/* any role: first error wins */
};

/*
 * A copy of a job row taken under the lock: what a role reads.  Nothing
 * outside shm/ holds a pointer into the job table.
 */
struct egr_job_view {
	uint32_t index;
	uint32_t state;
	int32_t producer, finalizer;
	uint32_t producer_restarts;
	uint32_t planned, prepared;
	uint32_t chunks_written;
	char name[EGR_JOB_NAME_MAX];
	char path[EGR_PATH_MAX];
	struct egr_jobspec spec;
	struct egr_job_layout lay;
	char backend[16];
	int32_t gpu;
	struct egr_job_stats st;	/* a snapshot */
	char error[EGR_ERR_MAX];
};

/* A copy of a slot's metadata. */
struct egr_slot_view {
	uint32_t state, job, chunk, first_frame, nframes;
	uint64_t bytes;
};

/*
 * The segment's header (the LMDB lock-region shape): identity and layout
 * first, checked on attach; the lock and semaphores on their own cache line,
 * away from the job table every role reads.  Written by the supervisor at
 * creation unless a field says otherwise.
 */
struct egr_ring_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_bytes;	/* sizeof(struct egr_ring_hdr), layout check */
	uint64_t total_bytes;	/* whole segment */
	uint32_t nslots;
	uint32_t max_chunks;	/* bitmap bits per job */
	uint64_t slot_bytes;	/* page multiple */
	uint64_t slots_meta_off, bitmap_off, data_off;
	int32_t supervisor;	/* pid of the creator, for stale detection */
	uint32_t stopping;	/* supervisor, on shutdown */
	uint64_t next_seq;	/* producer (publish), under the lock */

	/* fault injection, honoured only by builds with EGR_TESTING (supervisor) */
	uint32_t fault_write_delay_ms;
	uint32_t pad;

	pthread_mutex_t lock __attribute__((aligned(64)));	/* robust, process-shared */
	sem_t sem_free;		/* counts FREE slots (hint; see above) */
	sem_t sem_ready;	/* counts READY slots (hint) */
	sem_t sem_jobs;		/* counts QUEUED jobs (hint) */

	struct egr_job_sh jobs[EGR_RING_JOBS] __attribute__((aligned(64)));
};

struct egr_ring_geom {
	uint32_t nslots;	/* >= 2 */
	uint64_t slot_bytes;	/* rounded up to the page size */
	uint32_t max_chunks;	/* most chunks one job may have */
};

struct egr_ring;	/* per-process handle */

/*
 * Create the segment "/name" O_EXCL with mode 0600.  If one exists, it is
 * inspected: when its supervisor pid is alive, -EBUSY ("another egressd
 * (pid N) owns /name"); otherwise it is stale and is unlinked and replaced.
 */
int egr_ring_create(const char *name, const struct egr_ring_geom *g, struct egr_ring **out,
		    char *err, size_t errlen);
/* Attach to an existing segment, checking magic, version and sizes. */
int egr_ring_attach(const char *name, struct egr_ring **out, char *err, size_t errlen);
void egr_ring_close(struct egr_ring *r);
int egr_ring_unlink(const char *name);
/*
 * Unlink the segments "/<instance>.oneshot.<pid>" that --oneshot runs killed
 * by SIGKILL left behind: only those whose pid no longer runs (a live
 * oneshot's is never touched).  Such a segment is its run's only record of
 * the job (a oneshot job has no spool, no journal): left(ctx, view) is called
 * for each job in it that was planned and not done, so that the caller
 * removes its temporary output; only by the process whose shm_unlink won,
 * when several start at once.  left may be NULL.  Returns how many went.
 */
int egr_ring_reap_oneshots(const char *instance, void (*left)(void *ctx, const struct egr_job_view *j),
			   void *ctx);
/* Bytes the segment needs for g (for limits checks and egressd -t). */
uint64_t egr_ring_segment_bytes(const struct egr_ring_geom *g);

/* Sizes fixed at creation. */
struct egr_ring_info {
	uint32_t nslots, max_chunks;
	uint64_t slot_bytes, total_bytes;
};
void egr_ring_info(struct egr_ring *r, struct egr_ring_info *out);
void *egr_ring_slot_data(struct egr_ring *r, uint32_t slot);
/* The contiguous slot data area: what the CUDA producer registers. */
void *egr_ring_data_base(struct egr_ring *r);
size_t egr_ring_data_len(struct egr_ring *r);

/* ---- reading (any role) ---- */
/* Copy job's row (under the lock).  -EINVAL for an index out of range. */
int egr_ring_job_view(struct egr_ring *r, uint32_t job, struct egr_job_view *v);
/* The job's state, read without the lock (a hint between operations). */
uint32_t egr_ring_job_state(struct egr_ring *r, uint32_t job);
/* Copy slot's metadata (under the lock). */
void egr_ring_slot_view(struct egr_ring *r, uint32_t slot, struct egr_slot_view *v);
/* The job's counters, for egr_stat_add(): the only shared memory written outside ring.c. */
struct egr_job_stats *egr_ring_job_stats(struct egr_ring *r, uint32_t job);

/* Robust lock: after EOWNERDEAD the state is accepted (see above). */
void egr_ring_lock(struct egr_ring *r);
void egr_ring_unlock(struct egr_ring *r);

#ifdef EGR_TESTING
/* Test builds: slow every slot write by ms (supervisor sets, workers read). */
void egr_ring_set_fault_delay(struct egr_ring *r, uint32_t ms);
uint32_t egr_ring_fault_delay(struct egr_ring *r);
/* Raw rows, for tests/unit/test_ring.c's invariant checks only. */
struct egr_ring_hdr *egr_ring_hdr(struct egr_ring *r);
struct egr_job_sh *egr_ring_job(struct egr_ring *r, uint32_t job);
struct egr_slot_sh *egr_ring_slot(struct egr_ring *r, uint32_t slot);
#endif

/* ---- supervisor ---- */
/* Queue a job; returns its table index, or -ENOSPC when the table is full. */
int egr_ring_job_queue(struct egr_ring *r, const char *name, const char *path,
		       const struct egr_jobspec *js);
/* Slots (any state but FREE) that still reference job. */
uint32_t egr_ring_job_slots(struct egr_ring *r, uint32_t job);
/*
 * Cancel: fail a QUEUED or ACTIVE job with msg, as egr_ring_job_fail does
 * (the producer stops at its next chunk, workers drop its slots), unless a
 * worker is already finalizing it (its output is being renamed into place:
 * -EBUSY, too late) or it ended (-ESRCH).  0 when it was failed.
 */
int egr_ring_job_cancel(struct egr_ring *r, uint32_t job, const char *msg);
/* Forget a DONE or FAILED job: its table entry becomes EMPTY. */
void egr_ring_job_clear(struct egr_ring *r, uint32_t job);
/*
 * Why a child died, as the supervisor tells it from the wait status: a kill
 * from outside (SIGKILL, SIGTERM, ...; a restart, an operator, a test) is no
 * evidence against the job, which resumes however often it happens; a crash
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, a failing exit) is, when it
 * repeats at the same chunk; the OOM killer's kill is, when it repeats.
 */
enum egr_death_cause { EGR_DEATH_OUTSIDE, EGR_DEATH_CRASH, EGR_DEATH_OOM };

struct egr_death {
	pid_t pid;
	enum egr_death_cause cause;
	const char *role;	/* "producer", "worker" */
	const char *how;	/* "killed by signal 11 (Segmentation fault)" */
	uint32_t crash_limit;	/* crashes in a row at one chunk before the job fails */
	uint32_t oom_limit;	/* OOM kills on one job before it fails */
};

/*
 * Give back what a dead process held: its WRITING slots become READY again,
 * its FILLING slots FREE, a finalization it had claimed is released, and a
 * job it was producing goes back to QUEUED (resumed, not restarted: chunks
 * already published or written are skipped).  A job the death was evidence
 * against (see egr_death) fails once a limit is reached, with a reason that
 * names the chunk, the signal and what to do.  Posts the semaphores so that
 * nobody waits on a lost token.  Returns the number of slots given back.
 */
int egr_ring_reclaim(struct egr_ring *r, const struct egr_death *d);
/* Wake every waiter (shutdown). */
void egr_ring_wake_all(struct egr_ring *r);

/* ---- producer ---- */
/*
 * Wait for a QUEUED job and mark it ACTIVE with producer = getpid().
 * Returns its index, -EAGAIN after timeout_ms, -ECANCELED when *stop is set.
 */
int egr_ring_job_next(struct egr_ring *r, int timeout_ms, const volatile sig_atomic_t *stop);
/*
 * 1 if chunk of job still needs decoding: not written and not READY/WRITING
 * in a slot.  A resumed job skips the others.
 */
int egr_ring_chunk_needed(struct egr_ring *r, uint32_t job, uint32_t chunk);
/*
 * Take a FREE slot for (job, chunk), blocking while none is free
 * (backpressure).  *blocked_ns accumulates the wait.  -ECANCELED when *stop
 * is set or the job failed meanwhile.
 */
int egr_ring_acquire(struct egr_ring *r, uint32_t job, uint32_t chunk, uint32_t *slot,
		     uint64_t *blocked_ns, const volatile sig_atomic_t *stop);
/*
 * Record the job's layout (with its temporary output's name) before that
 * output is created, so any later run knows what to remove: write-ahead.
 * A job planned by an earlier producer keeps its layout; *lay receives the
 * layout in force either way.  backend names the backend now decoding it,
 * gpu its GPU (-1: none).
 */
void egr_ring_job_plan(struct egr_ring *r, uint32_t job, struct egr_job_layout *lay, const char *backend,
		       int gpu);
/* The temporary output exists (lay holds its identity): workers may write into it. */
void egr_ring_job_prepared(struct egr_ring *r, uint32_t job, const struct egr_job_layout *lay);
/* FILLING -> READY.  Call only once the slot's data is complete. */
void egr_ring_publish(struct egr_ring *r, uint32_t slot, uint32_t first_frame, uint32_t nframes,
		      uint64_t bytes);
/* FILLING -> FREE without publishing (error paths). */
void egr_ring_abandon(struct egr_ring *r, uint32_t slot);
/*
 * The producer is done with job: published_all = all, producer = 0.  A job
 * left ACTIVE without all chunks published (the producer was told to stop)
 * goes back to QUEUED for the next producer to resume.
 */
void egr_ring_job_release(struct egr_ring *r, uint32_t job, int all_published);

/* ---- workers ---- */
/*
 * Take the oldest READY slot: READY -> WRITING, owner = getpid().
 * Returns 0, -EAGAIN after timeout_ms with nothing ready, -ECANCELED on *stop.
 */
int egr_ring_take(struct egr_ring *r, uint32_t *slot, int timeout_ms,
		  const volatile sig_atomic_t *stop);
/*
 * WRITING -> FREE.  With ok, the chunk's bit is set; if that completed the
 * job and nobody finalizes it yet, *finalize = 1 and this process now owns
 * the finalization (fsync, rename, then egr_ring_job_finish).  Without ok,
 * the job fails with msg (first error wins); msg NULL just drops the slot
 * (its job already failed).  A slot of a FAILED job is always just dropped.
 */
void egr_ring_release(struct egr_ring *r, uint32_t slot, int ok, const char *msg, int *finalize);
/*
 * Idle-time scan: claim the finalization of a job whose chunks are all
 * written but that nobody finalizes (its finalizer died).  Returns the job
 * index or -ENOENT.
 */
int egr_ring_claim_finalize(struct egr_ring *r);
/*
 * 1 if every chunk holding a frame of first .. first+n-1 of job is written
 * (its bit set), else 0.  A worker that finds a stretch of frames complete
 * after its own release may work on them (workers/output_video.c: encode a
 * segment); two workers may both find it so, so that work must be claimed.
 */
int egr_ring_frames_written(struct egr_ring *r, uint32_t job, uint32_t first, uint32_t n);
/* Mark job DONE (ok) or FAILED (msg); clears finalizer. */
void egr_ring_job_finish(struct egr_ring *r, uint32_t job, int ok, const char *msg);

/* ---- any role ---- */
/* FAILED with msg unless already failed (first error wins). */
void egr_ring_job_fail(struct egr_ring *r, uint32_t job, const char *msg);
/* Atomically add to a 64-bit stats counter in shared memory. */
static inline void egr_stat_add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

#ifdef EGR_TESTING
/*
 * Test builds: this process SIGKILLs itself at the n-th fault point it
 * passes from now on (0: the next one; ring.c names one after every shared
 * store of a critical section), calling on_kill(point name) first if set;
 * n < 0 disarms.  For crash tests in a forked child.
 */
void egr_ring_fault_arm(long n, void (*on_kill)(const char *point));
#endif

#endif
