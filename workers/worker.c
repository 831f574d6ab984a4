/*
 * egressd-worker: one writer process of the pool.
 *
 *   egressd-worker -c CONF --shm NAME --notify-fd N [--index I]   (daemon/base/args.h)
 *
 * The supervisor fork+execs it.  It takes READY slots from the ring, writes
 * their frames into the job's temporary output (io_uring, or pwrite where
 * refused), releases the slots, and finalizes a job whose last chunk it
 * wrote (or, when idle, one whose finalizer died): fsync, rename into place,
 * fsync the directory.  After anything that changes the job table it writes a
 * byte to the notify pipe so the supervisor looks.
 *
 * Crash safety comes from the ring: a worker killed at any instruction has
 * its WRITING slot given back as READY, and rewriting a chunk is idempotent
 * (same bytes at the same offset, or the same PNG file truncated and written
 * again).  Finalization is idempotent too (see finalize_png).
 *
 * It touches only the shm segment (through shm/ring.h's operations), the
 * jobs' outputs (through workers/output.h) and the notify pipe.  For mp4
 * and mkv the output module also encodes, after a chunk's release, the
 * segments that chunk completed (docs/ENCODE.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config/conf.h"
#include "daemon/base/args.h"
#include "daemon/base/log.h"
#include "daemon/base/safepath.h"
#include "shm/ring.h"
#include "workers/output.h"
#include "workers/wio.h"

#define WIO_DEPTH 32
#define TAKE_TIMEOUT_MS 200

static volatile sig_atomic_t stop, reload_conf;
static const char *conf_path;	/* -c, re-read on SIGHUP */

/*
 * take, mid, written: on the kill_at-th slot a worker takes (mid: half-way
 * through its write, or for mp4/mkv through the segment encode that follows
 * its release); finalize: half-way through the kill_at-th finalization
 * (mp4/mkv only: the final mux)
 */
enum { PHASE_NONE, PHASE_TAKE, PHASE_MID, PHASE_WRITTEN, PHASE_FINALIZE };

struct worker {
	struct egr_ring *r;
	struct egr_wio *w;
	struct egr_output_writer *out;
	struct egr_safepath roots;	/* [paths] allow_write: outputs are reached through them */
	int notify_fd;
	int index;		/* --index, -1 if not given */
	/* test builds: SIGKILL self on the kill_at-th taken slot at kill_phase */
	unsigned long ntaken, nfinal, kill_at;
	int kill_phase, kill_now;
	const char *kill_once;
};

static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		reload_conf = 1;
		return;
	}
	stop = 1;
}

static void notify(struct worker *wk)
{
	/* non-blocking: a full pipe already tells the supervisor to look */
	if (write(wk->notify_fd, "w", 1) < 0) {
		/* EAGAIN or a dead supervisor: nothing to do either way */
	}
}

/* ---- test-build fault hooks ---- */

static void fault_point(struct worker *wk, int phase)
{
#ifdef EGR_TESTING
	if (!wk->kill_now || phase != wk->kill_phase)
		return;
	if (wk->kill_once) {
		int fd = open(wk->kill_once, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	egr_warn("fault injection: SIGKILL on taken slot %lu, phase %d", wk->ntaken, phase);
	raise(SIGKILL);
#else
	(void)wk;
	(void)phase;
#endif
}

static void fault_init(struct worker *wk)
{
#ifdef EGR_TESTING
	const char *at = getenv("EGR_FAULT_KILL_AT");
	const char *ph = getenv("EGR_FAULT_KILL_PHASE");

	/*
	 * Every worker is armed: which one takes the N-th slot is up to the
	 * scheduler, and the once-file keeps the fault to one death.
	 */
	if (!at)
		return;
	wk->kill_at = strtoul(at, NULL, 10);
	wk->kill_phase = !ph || strcmp(ph, "take") == 0 ? PHASE_TAKE
			 : strcmp(ph, "mid") == 0 ? PHASE_MID
			 : strcmp(ph, "written") == 0 ? PHASE_WRITTEN
			 : strcmp(ph, "finalize") == 0 ? PHASE_FINALIZE : PHASE_NONE;
	wk->kill_once = getenv("EGR_FAULT_KILL_ONCE");
	if (wk->kill_phase == PHASE_NONE)
		egr_warn("EGR_FAULT_KILL_PHASE=%s: expected take, mid, written or finalize", ph);
#else
	(void)wk;
#endif
}

/* Arm the fault if this is the kill_at-th event (a take, a finalization) of its phase. */
static void fault_arm(struct worker *wk, unsigned long count, int finalizing)
{
#ifdef EGR_TESTING
	wk->kill_now = wk->kill_at && count == wk->kill_at && wk->kill_phase != PHASE_NONE &&
		       (wk->kill_phase == PHASE_FINALIZE) == finalizing &&
		       !(wk->kill_once && access(wk->kill_once, F_OK) == 0);
#else
	(void)wk;
	(void)count;
	(void)finalizing;
#endif
}

static void fault_on_take(struct worker *wk)
{
	wk->ntaken++;
	fault_arm(wk, wk->ntaken, 0);
#ifdef EGR_TESTING
	/* slow disk, for the backpressure tests */
	uint32_t ms = egr_ring_fault_delay(wk->r);
	if (ms) {
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
			;
	}
#endif
}

#ifdef EGR_TESTING
/* output.h's mid-chunk hook: armed on the chosen slot, fire = die there */
static int mid_hook(void *ctx, int fire)
{
	struct worker *wk = ctx;

	if (fire)
		fault_point(wk, wk->kill_phase);
	return wk->kill_now && (wk->kill_phase == PHASE_MID || wk->kill_phase == PHASE_FINALIZE);
}
#endif

/* ---- slots ---- */

static void finalize(struct worker *wk, uint32_t jix);

/* Is the slot what its job says a chunk is?  Guards every read of slot data. */
static int slot_sane(struct worker *wk, const struct egr_slot_view *s, const struct egr_job_view *j,
		     char *err, size_t errlen)
{
	const struct egr_job_layout *l = &j->lay;
	struct egr_ring_info info;
	uint64_t need;

	egr_ring_info(wk->r, &info);
	if (s->nframes == 0 || s->nframes > l->frames || s->first_frame > l->frames - s->nframes ||
	    __builtin_mul_overflow((uint64_t)s->nframes, l->frame_bytes, &need) ||
	    need > s->bytes || s->bytes > info.slot_bytes ||
	    (j->spec.format == EGR_FMT_PNG && l->frame_bytes != (uint64_t)l->width * l->height * 3)) {
		egr_errf(err, errlen, "internal error: slot of job %s has frames %" PRIu32 "+%" PRIu32
			 ", %" PRIu64 " bytes; the job has %" PRIu32 " frames of %" PRIu64 " bytes",
			 j->name, s->first_frame, s->nframes, s->bytes, l->frames, l->frame_bytes);
		return -EINVAL;
	}
	return 0;
}

static int job_live(uint32_t state)
{
	return state == EGR_JOB_ACTIVE || state == EGR_JOB_QUEUED;
}

static void do_slot(struct worker *wk, uint32_t slot)
{
	struct egr_slot_view s;
	struct egr_job_view j;
	char err[EGR_ERR_MAX];
	int fin = 0, ret;

	fault_on_take(wk);
	fault_point(wk, PHASE_TAKE);
	egr_ring_slot_view(wk->r, slot, &s);
	if (egr_ring_job_view(wk->r, s.job, &j) < 0) {
		egr_err("slot %" PRIu32 " names job %" PRIu32 ": dropped", slot, s.job);
		egr_ring_release(wk->r, slot, 0, NULL, &fin);
		return;
	}
	if (!job_live(j.state)) {
		/* failed meanwhile: nothing to write, no new error */
		egr_ring_release(wk->r, slot, 0, NULL, &fin);
		notify(wk);
		return;
	}
	ret = slot_sane(wk, &s, &j, err, sizeof(err));
	if (ret == 0)
		ret = egr_output_write(wk->out, &j, egr_ring_slot_data(wk->r, slot), s.first_frame, s.nframes,
				       err, sizeof(err));
	if (ret == 0) {
		fault_point(wk, PHASE_WRITTEN);
		egr_stat_add(&egr_ring_job_stats(wk->r, s.job)->slot_writes, 1);
		egr_ring_release(wk->r, slot, 1, NULL, &fin);
		/* mp4, mkv: encode the segments this chunk completed, the slot already free */
		if (egr_output_released(wk->out, &j, s.first_frame, s.nframes, err, sizeof(err)) < 0) {
			egr_err("job %s: %s", j.name, err);
			if (fin)	/* fails it and gives the finalization up */
				egr_ring_job_finish(wk->r, s.job, 0, err);
			else
				egr_ring_job_fail(wk->r, s.job, err);
			fin = 0;
		}
	} else if (ret == EGR_OUTPUT_DROPPED) {
		egr_ring_release(wk->r, slot, 0, NULL, &fin);
	} else {
		egr_err("job %s: %s", j.name, err);
		egr_ring_release(wk->r, slot, 0, err, &fin);
	}
	if (fin)
		finalize(wk, s.job);
	notify(wk);
}

/* ---- finalization ---- */

static void finalize(struct worker *wk, uint32_t jix)
{
	struct egr_job_view j;
	char err[EGR_ERR_MAX];
	uint64_t t0 = egr_log_now_ns();
	int ret;

	egr_ring_job_view(wk->r, jix, &j);
	fault_arm(wk, ++wk->nfinal, 1);
	ret = egr_output_finalize(wk->out, &wk->roots, &j, err, sizeof(err));
	fault_arm(wk, 0, 1);	/* disarmed */
	egr_stat_add(&egr_ring_job_stats(wk->r, jix)->finalize_ns, egr_log_now_ns() - t0);
	if (ret < 0) {
		egr_err("job %s: %s", j.name, err);
		egr_ring_job_finish(wk->r, jix, 0, err);
	} else {
		egr_info("job %s: %" PRIu32 " frames, %.1f MB written, finalized", j.name, j.lay.frames,
			 (double)__atomic_load_n(&egr_ring_job_stats(wk->r, jix)->bytes_written,
						 __ATOMIC_RELAXED) / 1e6);
		/* egr_ring_job_finish records st.t_end_ns */
		egr_ring_job_finish(wk->r, jix, 1, NULL);
	}
	notify(wk);
}

/* ---- main ---- */

/* The log level from the config (at start, and again on SIGHUP). */
static int load_log_level(char *err, size_t errlen)
{
	struct egr_conf c;
	int rc = egr_conf_load(conf_path, &c, err, errlen);

	if (rc == 0)
		egr_log_set_level(egr_conf_log_level(&c));
	return rc;
}

/* Log level from the config, the notify pipe non-blocking, signals as flags. */
static int setup(struct worker *wk, const struct egr_child_args *a)
{
	sigset_t set;
	char err[512];

	conf_path = a->conf;
	if (conf_path) {
		struct egr_conf c;
		if (egr_conf_load(conf_path, &c, err, sizeof(err)) < 0) {
			egr_err("%s", err);
			return EGR_EXIT_CONFIG;
		}
		egr_log_set_level(egr_conf_log_level(&c));
		if (egr_safepath_init(&wk->roots, NULL, c.allow_write, err, sizeof(err)) < 0) {
			egr_err("%s", err);
			return EGR_EXIT_CONFIG;
		}
	}
	if (fcntl(wk->notify_fd, F_SETFL, fcntl(wk->notify_fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(wk->notify_fd, F_SETFD, FD_CLOEXEC) < 0) {
		egr_err("--notify-fd %d: %s", wk->notify_fd, strerror(errno));
		return EGR_EXIT_USAGE;
	}
	/* the flag is all a handler does; the loop checks it between slots */
	egr_child_signals(on_signal);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return EGR_EXIT_OK;
}

/* Take slots until told to stop; when idle, finish orphaned finalizations. */
static int serve(struct worker *wk)
{
	while (!stop) {
		uint32_t slot;
		char err[1024];

		if (reload_conf) {
			reload_conf = 0;
			if (load_log_level(err, sizeof(err)) < 0)
				egr_warn("SIGHUP: %s; keeping the log level", err);
		}
		int ret = egr_ring_take(wk->r, &slot, TAKE_TIMEOUT_MS, &stop);

		if (ret == 0) {
			do_slot(wk, slot);
		} else if (ret == -EAGAIN) {
			int jix = egr_ring_claim_finalize(wk->r);
			if (jix >= 0)
				finalize(wk, (uint32_t)jix);
			egr_output_sweep(wk->out);
		} else if (ret != -ECANCELED) {
			egr_err("egr_ring_take: %s", strerror(-ret));
			return EGR_EXIT_SOFTWARE;
		} else {
			break;
		}
	}
	return EGR_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct worker wk = { .notify_fd = -1, .index = -1 };
	struct egr_child_args a;
	char err[512];
	int ret, code;

	egr_log_init("worker");
	ret = egr_child_args_parse(argc, argv, "worker", 0, 1, &a);
	if (ret)
		return ret > 0 ? EGR_EXIT_OK : EGR_EXIT_USAGE;
	wk.notify_fd = a.notify_fd;
	wk.index = a.index;
	if ((code = setup(&wk, &a)) != EGR_EXIT_OK)
		return code;
	ret = egr_ring_attach(a.shm, &wk.r, err, sizeof(err));
	if (ret < 0) {
		egr_err("%s", err);
		return EGR_EXIT_OSERR;
	}
	code = EGR_EXIT_OSERR;
	ret = egr_wio_open(&wk.w, WIO_DEPTH, err, sizeof(err));
	if (ret < 0) {
		egr_err("%s", err);
		goto out;
	}
	if (egr_output_writer_new(wk.r, wk.w, &wk.roots, &wk.out) < 0) {
		egr_err("out of memory");
		goto out;
	}
#ifdef EGR_TESTING
	egr_output_set_mid_hook(wk.out, mid_hook, &wk);
#endif
	if (err[0])
		egr_notice("write path: %s (%s)", egr_wio_backend(wk.w), err);
	else
		egr_info("write path: %s", egr_wio_backend(wk.w));
	fault_init(&wk);
	code = serve(&wk);
out:
	egr_output_writer_free(wk.out);
	if (wk.w)
		egr_wio_close(wk.w);
	egr_ring_close(wk.r);
	egr_safepath_close(&wk.roots);
	return code;
}
