/*
 * egressd-worker: one writer process of the pool.
 *
 *   egressd-worker [-c CONF] --shm NAME --notify-fd N [--index I]
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
 * It touches only the shm segment, the jobs' temporary and final outputs and
 * their directories, and the notify pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include "daemon/base/log.h"
#include "daemon/base/fs.h"
#include "shm/ring.h"
#include "daemon/formats/y4m.h"
#include "daemon/formats/png.h"
#include "workers/wio.h"

#define WIO_DEPTH 32
#define TAKE_TIMEOUT_MS 200
#define FINALIZE_MARK ".egressd-finalizing"

static volatile sig_atomic_t stop;

/* An open y4m temp file, per job table index; see y4m_fd() */
struct fd_cache {
	int fd;
	dev_t dev;
	ino_t ino;
	char name[EGR_JOB_NAME_MAX];
	char tmp[EGR_PATH_MAX];
};

enum { PHASE_NONE, PHASE_TAKE, PHASE_MID, PHASE_WRITTEN };

struct worker {
	struct egr_ring *r;
	struct egr_wio *w;
	int notify_fd;
	int index;		/* --index, -1 if not given */
	struct fd_cache cache[EGR_RING_JOBS];
	struct iovec *iov;
	size_t iov_cap;
	/* test builds: SIGKILL self on the kill_at-th taken slot at kill_phase */
	unsigned long ntaken, kill_at;
	int kill_phase, kill_now;
	const char *kill_once;
};

/* write_slot's "the job failed meanwhile: drop the slot, report nothing" */
#define DROPPED 1

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void notify(struct worker *wk)
{
	/* non-blocking: a full pipe already tells the supervisor to look */
	if (write(wk->notify_fd, "w", 1) < 0) {
		/* EAGAIN or a dead supervisor: nothing to do either way */
	}
}

static uint32_t job_state(const struct egr_job_sh *j)
{
	return __atomic_load_n(&j->state, __ATOMIC_ACQUIRE);
}

static int job_live(const struct egr_job_sh *j)
{
	uint32_t st = job_state(j);

	return st == EGR_JOB_ACTIVE || st == EGR_JOB_QUEUED;
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

	if (!at || wk->index != 0)
		return;
	wk->kill_at = strtoul(at, NULL, 10);
	wk->kill_phase = !ph || strcmp(ph, "take") == 0 ? PHASE_TAKE
			 : strcmp(ph, "mid") == 0 ? PHASE_MID
			 : strcmp(ph, "written") == 0 ? PHASE_WRITTEN : PHASE_NONE;
	wk->kill_once = getenv("EGR_FAULT_KILL_ONCE");
	if (wk->kill_phase == PHASE_NONE)
		egr_warn("EGR_FAULT_KILL_PHASE=%s: expected take, mid or written", ph);
#else
	(void)wk;
#endif
}

static void fault_on_take(struct worker *wk)
{
	wk->ntaken++;
#ifdef EGR_TESTING
	wk->kill_now = wk->kill_at && wk->ntaken == wk->kill_at && wk->kill_phase != PHASE_NONE &&
		       !(wk->kill_once && access(wk->kill_once, F_OK) == 0);
	/* slow disk, for the backpressure tests */
	uint32_t ms = __atomic_load_n(&egr_ring_hdr(wk->r)->fault_write_delay_ms, __ATOMIC_RELAXED);
	if (ms) {
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
			;
	}
#endif
}

/* ---- y4m ---- */

static void cache_drop(struct fd_cache *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/*
 * The job's temp file, opened once per job.  A job index is reused by later
 * jobs, and a re-run job gets a fresh temp file under the same name, so the
 * cached descriptor is trusted only while the path still names the inode it
 * has open (the open descriptor keeps that inode number from being reused).
 */
static int y4m_fd(struct worker *wk, uint32_t jix, const struct egr_job_sh *j, char *err, size_t errlen)
{
	struct fd_cache *c = &wk->cache[jix];
	struct stat st;
	int fd, ret;

	if (stat(j->tmp_path, &st) < 0)
		goto fail;
	if (c->fd >= 0 && c->dev == st.st_dev && c->ino == st.st_ino &&
	    strcmp(c->name, j->name) == 0 && strcmp(c->tmp, j->tmp_path) == 0)
		return c->fd;
	cache_drop(c);
	fd = open(j->tmp_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0) {
		close(fd);
		goto fail;
	}
	c->fd = fd;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	snprintf(c->name, sizeof(c->name), "%s", j->name);
	snprintf(c->tmp, sizeof(c->tmp), "%s", j->tmp_path);
	return fd;
fail:
	ret = -errno;
	egr_errf(err, errlen, "open(\"%s\"): %s", j->tmp_path, strerror(errno));
	return ret;
}

/* Close descriptors of jobs that are over, so no deleted file stays open. */
static void cache_sweep(struct worker *wk)
{
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_sh *j = egr_ring_job(wk->r, i);
		if (wk->cache[i].fd >= 0 && (!job_live(j) || strcmp(wk->cache[i].name, j->name) != 0))
			cache_drop(&wk->cache[i]);
	}
}

static int iov_reserve(struct worker *wk, size_t n)
{
	if (n <= wk->iov_cap)
		return 0;
	struct iovec *p = realloc(wk->iov, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	wk->iov = p;
	wk->iov_cap = n;
	return 0;
}

/* "FRAME\n" + frame, per frame of the slot, at the first frame's offset: one writev */
static int write_y4m(struct worker *wk, uint32_t slot, const struct egr_slot_sh *s, struct egr_job_sh *j,
		     char *err, size_t errlen)
{
	static char tag[] = EGR_Y4M_FRAME_TAG;
	uint8_t *data = egr_ring_slot_data(wk->r, slot);
	uint64_t fb = j->frame_bytes;
	uint32_t n = s->nframes;
	int fd, ret, niov = 2 * (int)n;
	off_t off = (off_t)egr_y4m_frame_off(j->header_bytes, fb, s->first_frame);

	fd = y4m_fd(wk, s->job, j, err, errlen);
	if (fd < 0)
		return fd;
	if (iov_reserve(wk, (size_t)niov) < 0) {
		egr_errf(err, errlen, "write(\"%s\"): out of memory for %d iovecs", j->tmp_path, niov);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		wk->iov[2 * i] = (struct iovec){ tag, EGR_Y4M_FRAME_TAG_LEN };
		wk->iov[2 * i + 1] = (struct iovec){ data + i * fb, fb };
	}
	uint64_t t0 = egr_log_now_ns();
#ifdef EGR_TESTING
	if (wk->kill_now && wk->kill_phase == PHASE_MID) {
		/* half the iovecs written, then die: a torn chunk on disk */
		ret = egr_wio_writev(wk->w, fd, wk->iov, niov / 2, off);
		if (egr_wio_wait(wk->w) == 0 && ret == 0)
			fault_point(wk, PHASE_MID);
	}
#endif
	ret = egr_wio_writev(wk->w, fd, wk->iov, niov, off);
	int ret2 = egr_wio_wait(wk->w);
	if (ret == 0)
		ret = ret2;
	egr_stat_add(&j->st.write_ns, egr_log_now_ns() - t0);
	if (ret < 0) {
		egr_errf(err, errlen, "write(\"%s\") at offset %lld: %s", j->tmp_path, (long long)off,
			 strerror(-ret));
		return ret;
	}
	uint64_t len = (uint64_t)n * (EGR_Y4M_FRAME_TAG_LEN + fb);
	egr_stat_add(&j->st.bytes_written, len);
	/*
	 * Start writeback of this chunk now.  Left to the kernel, nothing is
	 * written before dirty pages pass dirty_background_ratio (gigabytes on
	 * a large machine), and the final fsync then writes the whole video
	 * after the decode is over: disk and GPU in series instead of side by
	 * side.  SYNC_FILE_RANGE_WRITE only queues the I/O; durability is
	 * still the finalizer's fsync.  Filesystems without it (ENOSYS,
	 * EINVAL, tmpfs's no-op) lose nothing but the overlap.
	 */
	if (sync_file_range(fd, off, (off_t)len, SYNC_FILE_RANGE_WRITE) < 0 && errno == EIO) {
		egr_errf(err, errlen, "sync_file_range(\"%s\") at offset %lld: %s", j->tmp_path,
			 (long long)off, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* ---- png ---- */

/* A PNG file whose write is in flight */
struct png_pending {
	int fd;
	void *buf;
	size_t len;
	char path[EGR_PATH_MAX + 32];
};

/* Wait for p's write, fdatasync and close it.  Always releases p. */
static int png_finish(struct worker *wk, struct png_pending *p, struct egr_job_sh *j, char *err,
		      size_t errlen)
{
	uint64_t t0 = egr_log_now_ns();
	int ret = 0;

	if (p->fd < 0)
		return 0;
	ret = egr_wio_wait(wk->w);
	if (ret < 0) {
		egr_errf(err, errlen, "write(\"%s\"): %s", p->path, strerror(-ret));
	} else {
		ret = egr_wio_fsync(wk->w, p->fd, 1);
		if (ret < 0)
			egr_errf(err, errlen, "fdatasync(\"%s\"): %s", p->path, strerror(-ret));
	}
	if (close(p->fd) < 0 && ret == 0) {
		ret = -errno;
		egr_errf(err, errlen, "close(\"%s\"): %s", p->path, strerror(errno));
	}
	egr_stat_add(&j->st.write_ns, egr_log_now_ns() - t0);
	if (ret == 0)
		egr_stat_add(&j->st.bytes_written, p->len);
	free(p->buf);
	p->fd = -1;
	p->buf = NULL;
	return ret;
}

/*
 * One PNG per frame.  Frame i+1 is compressed while frame i's write is in
 * flight; each file is fdatasynced before the next write is queued.
 */
static int write_png(struct worker *wk, uint32_t slot, const struct egr_slot_sh *s, struct egr_job_sh *j,
		     char *err, size_t errlen)
{
	const uint8_t *data = egr_ring_slot_data(wk->r, slot);
	struct png_pending p = { .fd = -1 };
	uint32_t n = s->nframes;
	int ret = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct png_pending cur = { .fd = -1 };
		char name[32];

#ifdef EGR_TESTING
		if (wk->kill_now && wk->kill_phase == PHASE_MID && i == n / 2) {
			/* half the files written, then die */
			if (png_finish(wk, &p, j, err, errlen) == 0)
				fault_point(wk, PHASE_MID);
		}
#endif
		if (!job_live(j)) {
			ret = DROPPED;	/* another worker failed it: stop early */
			break;
		}
		uint64_t t0 = egr_log_now_ns();
		ret = egr_png_encode(data + i * j->frame_bytes, j->width, j->height, &cur.buf, &cur.len,
				     err, errlen);
		egr_stat_add(&j->st.encode_ns, egr_log_now_ns() - t0);
		if (ret < 0)
			break;
		ret = png_finish(wk, &p, j, err, errlen);
		if (ret < 0) {
			free(cur.buf);
			break;
		}
		egr_png_name(name, sizeof(name), (uint64_t)s->first_frame + i);
		snprintf(cur.path, sizeof(cur.path), "%s/%s", j->tmp_path, name);
		cur.fd = open(cur.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (cur.fd < 0) {
			ret = -errno;
			egr_errf(err, errlen, "open(\"%s\"): %s", cur.path, strerror(errno));
			free(cur.buf);
			break;
		}
		struct iovec iov = { cur.buf, cur.len };
		ret = egr_wio_writev(wk->w, cur.fd, &iov, 1, 0);
		p = cur;
		if (ret < 0)
			break;	/* png_finish below reports it */
	}
	/* whatever happened, the last write completes before its buffer is freed */
	if (ret == 0 || ret == DROPPED) {
		int ret2 = png_finish(wk, &p, j, err, errlen);
		if (ret2 < 0)
			ret = ret2;
	} else {
		char scratch[EGR_ERR_MAX];	/* the first error is the one reported */
		png_finish(wk, &p, j, scratch, sizeof(scratch));
	}
	return ret;
}

/* ---- slots ---- */

static void finalize(struct worker *wk, uint32_t jix);

/* Is the slot what its job says a chunk is?  Guards every read of slot data. */
static int slot_sane(struct worker *wk, const struct egr_slot_sh *s, const struct egr_job_sh *j,
		     char *err, size_t errlen)
{
	uint64_t need;

	if (s->nframes == 0 || s->nframes > j->frames || s->first_frame > j->frames - s->nframes ||
	    __builtin_mul_overflow((uint64_t)s->nframes, j->frame_bytes, &need) ||
	    need > s->bytes || s->bytes > egr_ring_hdr(wk->r)->slot_bytes ||
	    (j->spec.format == EGR_FMT_PNG && j->frame_bytes != (uint64_t)j->width * j->height * 3)) {
		egr_errf(err, errlen, "internal error: slot of job %s has frames %" PRIu32 "+%" PRIu32
			 ", %" PRIu64 " bytes; the job has %" PRIu32 " frames of %" PRIu64 " bytes",
			 j->name, s->first_frame, s->nframes, s->bytes, j->frames, j->frame_bytes);
		return -EINVAL;
	}
	return 0;
}

static void do_slot(struct worker *wk, uint32_t slot)
{
	struct egr_slot_sh *s = egr_ring_slot(wk->r, slot);
	char err[EGR_ERR_MAX];
	int fin = 0, ret;

	fault_on_take(wk);
	fault_point(wk, PHASE_TAKE);
	if (s->job >= EGR_RING_JOBS) {
		egr_err("slot %" PRIu32 " names job %" PRIu32 ": dropped", slot, s->job);
		egr_ring_release(wk->r, slot, 0, NULL, &fin);
		return;
	}
	uint32_t jix = s->job;
	struct egr_job_sh *j = egr_ring_job(wk->r, jix);

	if (!job_live(j)) {
		/* failed meanwhile: nothing to write, no new error */
		egr_ring_release(wk->r, slot, 0, NULL, &fin);
		notify(wk);
		return;
	}
	ret = slot_sane(wk, s, j, err, sizeof(err));
	if (ret == 0) {
		if (j->spec.format == EGR_FMT_Y4M)
			ret = write_y4m(wk, slot, s, j, err, sizeof(err));
		else if (j->spec.format == EGR_FMT_PNG)
			ret = write_png(wk, slot, s, j, err, sizeof(err));
		else {
			egr_errf(err, sizeof(err), "internal error: job %s has format %" PRIu32, j->name,
				 j->spec.format);
			ret = -EINVAL;
		}
	}
	if (ret == 0) {
		fault_point(wk, PHASE_WRITTEN);
		egr_stat_add(&j->st.slot_writes, 1);
		egr_ring_release(wk->r, slot, 1, NULL, &fin);
	} else if (ret == DROPPED) {
		egr_ring_release(wk->r, slot, 0, NULL, &fin);
	} else {
		egr_err("job %s: %s", j->name, err);
		egr_ring_release(wk->r, slot, 0, err, &fin);
	}
	if (fin)
		finalize(wk, jix);
	notify(wk);
}

/* ---- finalization ---- */

static int fsync_path(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0 || fsync(fd) < 0) {
		ret = -errno;
		egr_errf(err, errlen, "fsync(\"%s\"): %s", path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int fsync_parent(const char *path, char *err, size_t errlen)
{
	char dir[EGR_PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	return fsync_path(dirname(dir), err, errlen);
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int fail_errno(char *err, size_t errlen, const char *call, const char *a, const char *b)
{
	int ret = -errno;

	if (b)
		egr_errf(err, errlen, "%s(\"%s\", \"%s\"): %s", call, a, b, strerror(errno));
	else
		egr_errf(err, errlen, "%s(\"%s\"): %s", call, a, strerror(errno));
	return ret;
}

/* fsync the temp file, rename it over the output, fsync the directory */
static int finalize_y4m(struct worker *wk, uint32_t jix, struct egr_job_sh *j, char *err, size_t errlen)
{
	const char *tmp = j->tmp_path, *out = j->spec.output;
	struct stat st;
	int fd, ret;

	if (!exists(tmp)) {
		if (exists(out))
			return 0;	/* an earlier finalizer died after its rename */
		egr_errf(err, errlen, "temporary output \"%s\" is missing", tmp);
		return -ENOENT;
	}
	fd = y4m_fd(wk, jix, j, err, errlen);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return fail_errno(err, errlen, "fstat", tmp, NULL);
	if (j->out_bytes && (uint64_t)st.st_size != j->out_bytes) {
		egr_errf(err, errlen, "internal error: \"%s\" has %lld bytes, expected %" PRIu64, tmp,
			 (long long)st.st_size, j->out_bytes);
		return -EIO;
	}
	ret = egr_wio_fsync(wk->w, fd, 0);
	cache_drop(&wk->cache[jix]);
	if (ret < 0) {
		egr_errf(err, errlen, "fsync(\"%s\"): %s", tmp, strerror(-ret));
		return ret;
	}
	if (rename(tmp, out) < 0)
		return fail_errno(err, errlen, "rename", tmp, out);
	return fsync_parent(out, err, errlen);
}

/*
 * Swap the finished temp directory in.  An existing output is exchanged
 * atomically (RENAME_EXCHANGE), so readers see the old tree or the new one,
 * and the old one, now under the temp name, is removed.  A marker file that
 * travels with the new tree tells a finalizer re-run after a crash that the
 * exchange already happened (otherwise it would exchange back and delete the
 * new output).
 */
static int finalize_png(struct egr_job_sh *j, char *err, size_t errlen)
{
	const char *tmp = j->tmp_path, *out = j->spec.output;
	char mark[EGR_PATH_MAX + 32];
	int fd, ret;

	snprintf(mark, sizeof(mark), "%s/" FINALIZE_MARK, out);
	if (!exists(tmp)) {
		if (!exists(out)) {
			egr_errf(err, errlen, "temporary output \"%s\" is missing", tmp);
			return -ENOENT;
		}
		goto cleanup;	/* an earlier finalizer renamed it */
	}
	if (exists(mark))
		goto cleanup;	/* exchanged; the old tree is under tmp */

	snprintf(mark, sizeof(mark), "%s/" FINALIZE_MARK, tmp);
	fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail_errno(err, errlen, "open", mark, NULL);
	close(fd);
	/* the frame files were fdatasynced when written; this makes their names durable */
	ret = fsync_path(tmp, err, errlen);
	if (ret < 0)
		return ret;
	if (exists(out)) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) < 0)
			return fail_errno(err, errlen, "renameat2(RENAME_EXCHANGE)", tmp, out);
	} else if (rename(tmp, out) < 0) {
		return fail_errno(err, errlen, "rename", tmp, out);
	}
	ret = fsync_parent(out, err, errlen);
	if (ret < 0)
		return ret;
	snprintf(mark, sizeof(mark), "%s/" FINALIZE_MARK, out);
cleanup:
	ret = egr_fs_remove_tree(tmp);
	if (ret < 0) {
		egr_errf(err, errlen, "removing \"%s\": %s", tmp, strerror(-ret));
		return ret;
	}
	if (unlink(mark) < 0 && errno != ENOENT)
		return fail_errno(err, errlen, "unlink", mark, NULL);
	ret = fsync_path(out, err, errlen);
	if (ret == 0)
		ret = fsync_parent(out, err, errlen);
	return ret;
}

static void finalize(struct worker *wk, uint32_t jix)
{
	struct egr_job_sh *j = egr_ring_job(wk->r, jix);
	char err[EGR_ERR_MAX];
	uint64_t t0 = egr_log_now_ns();
	int ret;

	if (j->spec.format == EGR_FMT_Y4M) {
		ret = finalize_y4m(wk, jix, j, err, sizeof(err));
	} else if (j->spec.format == EGR_FMT_PNG) {
		ret = finalize_png(j, err, sizeof(err));
	} else {
		egr_errf(err, sizeof(err), "internal error: job %s has format %" PRIu32, j->name,
			 j->spec.format);
		ret = -EINVAL;
	}
	egr_stat_add(&j->st.finalize_ns, egr_log_now_ns() - t0);
	cache_drop(&wk->cache[jix]);
	if (ret < 0) {
		egr_err("job %s: %s", j->name, err);
		egr_ring_job_finish(wk->r, jix, 0, err);
	} else {
		egr_info("job %s: %" PRIu32 " frames, %.1f MB written, finalized", j->name, j->frames,
			 (double)__atomic_load_n(&j->st.bytes_written, __ATOMIC_RELAXED) / 1e6);
		/* egr_ring_job_finish records st.t_end_ns */
		egr_ring_job_finish(wk->r, jix, 1, NULL);
	}
	notify(wk);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: egressd-worker [-c CONF] --shm NAME --notify-fd N [--index I]\n"
		   "(started by egressd; not meant to be run by hand)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "notify-fd", required_argument, NULL, 'n' },
		{ "index", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker wk = { .notify_fd = -1, .index = -1 };
	const char *shm = NULL, *conf = NULL;
	char err[512], *end;
	struct sigaction sa;
	sigset_t set;
	int opt, ret, code = EGR_EXIT_OK;

	egr_log_init("worker");
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			shm = optarg;
			break;
		case 'n':
			wk.notify_fd = (int)strtol(optarg, &end, 10);
			if (*end || wk.notify_fd < 0)
				wk.notify_fd = -1;
			break;
		case 'i':
			wk.index = (int)strtol(optarg, &end, 10);
			if (*end)
				wk.index = -1;
			break;
		case 'h':
			usage(stdout);
			return EGR_EXIT_OK;
		default:
			usage(stderr);
			return EGR_EXIT_USAGE;
		}
	}
	if (!shm || wk.notify_fd < 0 || optind != argc) {
		usage(stderr);
		return EGR_EXIT_USAGE;
	}
	if (conf) {
		struct egr_conf c;
		egr_conf_defaults(&c);
		if (egr_conf_load(conf, &c, err, sizeof(err)) < 0) {
			egr_err("%s", err);
			return EGR_EXIT_CONFIG;
		}
		egr_log_set_level(egr_conf_log_level(&c));
	}
	if (fcntl(wk.notify_fd, F_SETFL, fcntl(wk.notify_fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(wk.notify_fd, F_SETFD, FD_CLOEXEC) < 0) {
		egr_err("--notify-fd %d: %s", wk.notify_fd, strerror(errno));
		return EGR_EXIT_USAGE;
	}

	/* the flag is all a handler does; the loop checks it between slots */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);

	for (int i = 0; i < EGR_RING_JOBS; i++)
		wk.cache[i].fd = -1;
	ret = egr_ring_attach(shm, &wk.r, err, sizeof(err));
	if (ret < 0) {
		egr_err("%s", err);
		return EGR_EXIT_OSERR;
	}
	ret = egr_wio_open(&wk.w, WIO_DEPTH, err, sizeof(err));
	if (ret < 0) {
		egr_err("%s", err);
		egr_ring_close(wk.r);
		return EGR_EXIT_OSERR;
	}
	if (err[0])
		egr_notice("write path: %s (%s)", egr_wio_backend(wk.w), err);
	else
		egr_info("write path: %s", egr_wio_backend(wk.w));
	fault_init(&wk);

	while (!stop) {
		uint32_t slot;

		ret = egr_ring_take(wk.r, &slot, TAKE_TIMEOUT_MS, &stop);
		if (ret == 0) {
			do_slot(&wk, slot);
		} else if (ret == -EAGAIN) {
			int jix = egr_ring_claim_finalize(wk.r);
			if (jix >= 0)
				finalize(&wk, (uint32_t)jix);
			cache_sweep(&wk);
		} else if (ret == -ECANCELED) {
			break;
		} else {
			egr_err("egr_ring_take: %s", strerror(-ret));
			code = EGR_EXIT_SOFTWARE;
			break;
		}
	}

	for (int i = 0; i < EGR_RING_JOBS; i++)
		cache_drop(&wk.cache[i]);
	free(wk.iov);
	egr_wio_close(wk.w);
	egr_ring_close(wk.r);
	return code;
}
