/*
 * output_video: format = mp4 | mkv on disk; the contract is in
 * output_video.h, the design in docs/ENCODE.md.
 *
 * Crash safety.  The spool is written at fixed offsets (a chunk written
 * twice leaves the same bytes).  A segment file exists under its final name
 * only once whole (encoded to .part, renamed), and is never encoded again
 * after that, which is what makes freeing its spool blocks safe.  The lock
 * that makes one worker encode a segment is an open-file-description lock
 * on byte k of the spool: the kernel drops it when its holder dies, so a
 * worker killed mid-segment leaves a .part the next encoder truncates, and
 * the finalizer, which waits for any lock still held, encodes what is
 * missing.  The final file is muxed into "out", which prepare created (its
 * inode is in the journal), then renamed; a finalizer that finds no "out"
 * knows the rename happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/decode/frame.h"
#include "daemon/formats/video.h"
#include "workers/output_video.h"
#include "workers/wio.h"

#define SPOOL "frames.yuv"
#define FINAL EGR_OUTPUT_VIDEO_FINAL
#define NAME_MAX_LEN (EGR_PATH_MAX + 32)

struct egr_output_video {
	struct egr_ring *r;
	struct egr_wio *w;
	uint8_t *buf;		/* one frame read back from the spool */
	size_t buf_len;
	int (*mid_hook)(void *ctx, int fire);	/* test builds */
	void *mid_ctx;
};

/* What one segment's encode needs, whoever runs it (a worker, the finalizer). */
struct seg_job {
	struct egr_output_video *v;	/* NULL: a finalizer without a writer */
	const struct egr_job_view *j;
	uint8_t *buf;			/* frame_bytes */
	int wait;			/* block on the segment's lock (the finalizer) */
	int hook;			/* the mid hook may fire in this encode */
};

int egr_output_video_new(struct egr_ring *r, struct egr_wio *w, struct egr_output_video **out)
{
	struct egr_output_video *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->r = r;
	v->w = w;
	*out = v;
	return 0;
}

void egr_output_video_free(struct egr_output_video *v)
{
	if (!v)
		return;
	free(v->buf);
	free(v);
}

void egr_output_video_set_mid_hook(struct egr_output_video *v, int (*fn)(void *ctx, int fire), void *ctx)
{
	v->mid_hook = fn;
	v->mid_ctx = ctx;
}

static int mid_armed(struct egr_output_video *v)
{
	return v && v->mid_hook && v->mid_hook(v->mid_ctx, 0);
}

static int fail_errno(char *err, size_t errlen, const char *call, const char *path)
{
	int rc = -errno;

	egr_errf(err, errlen, "%s(\"%s\"): %s", call, path, egr_log_strerror(errno));
	return rc;
}

static void path_in(char *buf, const struct egr_job_layout *lay, const char *name)
{
	snprintf(buf, NAME_MAX_LEN, "%s/%s", lay->tmp_path, name);
}

static void seg_path(char *buf, const struct egr_job_layout *lay, uint32_t k, int part)
{
	snprintf(buf, NAME_MAX_LEN, "%s/seg.%08" PRIu32 "%s", lay->tmp_path, k, part ? ".part" : "");
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* ---- plan, prepare ---- */

int egr_output_video_plan(const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
			  size_t errlen)
{
	/* output.c set frame_bytes (I420) and out_bytes (the spool, were no block ever freed) */
	(void)lay;
	if (!spec->gop) {
		egr_errf(err, errlen, "internal error: video job without a gop");
		return -EINVAL;
	}
	return egr_video_check(spec, err, errlen);
}

static int create_empty(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		return fail_errno(err, errlen, "open", path);
	close(fd);
	return 0;
}

int egr_output_video_prepare(const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
			     size_t errlen)
{
	char path[NAME_MAX_LEN];
	int rc;

	(void)spec;
	/* the directory itself was created by output.c through the roots (safepath.h) */
	path_in(path, lay, SPOOL);
	if ((rc = create_empty(path, err, errlen)) < 0)
		return rc;
	path_in(path, lay, FINAL);
	return create_empty(path, err, errlen);
}

/* ---- write: raw frames into the spool ---- */

int egr_output_video_write(struct egr_output_video *v, const struct egr_job_view *j, const uint8_t *data,
			   uint32_t first, uint32_t n, char *err, size_t errlen)
{
	struct egr_job_stats *st = egr_ring_job_stats(v->r, j->index);
	uint64_t len = (uint64_t)n * j->lay.frame_bytes, t0 = egr_log_now_ns();
	off_t off = (off_t)((uint64_t)first * j->lay.frame_bytes);
	char path[NAME_MAX_LEN];
	struct iovec iov = { (void *)data, len };
	int fd, rc;

	path_in(path, &j->lay, SPOOL);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return fail_errno(err, errlen, "open", path);
	rc = egr_wio_writev(v->w, fd, &iov, 1, off);
	int rc2 = egr_wio_wait(v->w);
	if (rc == 0)
		rc = rc2;
	close(fd);
	egr_stat_add(&st->write_ns, egr_log_now_ns() - t0);
	if (rc < 0) {
		egr_errf(err, errlen, "write(\"%s\") at offset %lld: %s", path, (long long)off, egr_log_strerror(-rc));
		return rc;
	}
	egr_stat_add(&st->bytes_written, len);
	return 0;
}

/* ---- one segment ---- */

static int job_live(struct egr_output_video *v, uint32_t jix)
{
	uint32_t s;

	if (!v)
		return 1;
	s = egr_ring_job_state(v->r, jix);
	return s == EGR_JOB_ACTIVE || s == EGR_JOB_QUEUED;
}

/* Frames [first, first+n) of the spool, one at a time, into the encoder writing part. */
static int encode_frames(struct seg_job *sj, int spool, const char *spath, const char *part, uint32_t first,
			 uint32_t n, char *err, size_t errlen)
{
	const struct egr_job_layout *l = &sj->j->lay;
	struct egr_video_enc *e = NULL;
	int rc = egr_video_enc_open(&e, &sj->j->spec, l->width, l->height, part, err, errlen);
	int mid = sj->hook && mid_armed(sj->v);

	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		off_t off = (off_t)(((uint64_t)first + i) * l->frame_bytes);
		ssize_t got = pread(spool, sj->buf, l->frame_bytes, off);
		if (got != (ssize_t)l->frame_bytes) {
			if (got >= 0)
				errno = EIO;	/* short: the spool lost frames it was said to have */
			rc = fail_errno(err, errlen, "read", spath);
			break;
		}
		rc = egr_video_enc_frame(e, sj->buf, err, errlen);
		if (mid && i == n / 2)
			sj->v->mid_hook(sj->v->mid_ctx, 1);	/* half the segment in the .part, then die */
		if (rc == 0 && !job_live(sj->v, sj->j->index))
			rc = 1;	/* failed meanwhile: stop, say nothing */
	}
	if (rc == 0)
		rc = egr_video_enc_finish(e, err, errlen);
	egr_video_enc_free(e);
	return rc;
}

/* Take segment k's lock (byte k of the spool): 1 taken, 0 busy (not waiting), -errno */
static int seg_lock(int fd, uint32_t k, int wait)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)k, .l_len = 1 };

	while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EACCES ? 0 : -errno;
	}
	return 1;
}

/*
 * Encode segment k unless it exists or (without wait) someone is encoding
 * it.  0 (done, or nothing to do), 1 (the job failed meanwhile), -errno.
 */
static int encode_segment(struct seg_job *sj, uint32_t k, char *err, size_t errlen)
{
	const struct egr_job_view *j = sj->j;
	uint32_t g = j->spec.gop, first = k * g, n = j->lay.frames - first < g ? j->lay.frames - first : g;
	char spath[NAME_MAX_LEN], seg[NAME_MAX_LEN], part[NAME_MAX_LEN];
	uint64_t t0 = egr_log_now_ns();
	int fd, rc;

	seg_path(seg, &j->lay, k, 0);
	if (exists(seg))
		return 0;
	path_in(spath, &j->lay, SPOOL);
	if ((fd = open(spath, O_RDWR | O_CLOEXEC)) < 0)
		return fail_errno(err, errlen, "open", spath);
	rc = seg_lock(fd, k, sj->wait);
	if (rc < 0) {
		errno = -rc;
		rc = fail_errno(err, errlen, "fcntl(F_OFD_SETLK)", spath);
		goto out;
	}
	if (rc == 0 || exists(seg)) {	/* busy, or done by the holder we waited for */
		rc = 0;
		goto out;
	}
	seg_path(part, &j->lay, k, 1);
	rc = encode_frames(sj, fd, spath, part, first, n, err, errlen);
	if (rc == 0 && rename(part, seg) < 0)
		rc = fail_errno(err, errlen, "rename", part);
	if (rc == 0) {
		/* encoded for good: its frames' blocks are free (where the file system can) */
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)((uint64_t)first * j->lay.frame_bytes),
			  (off_t)((uint64_t)n * j->lay.frame_bytes));
		if (sj->v)
			egr_stat_add(&egr_ring_job_stats(sj->v->r, j->index)->encode_ns, egr_log_now_ns() - t0);
	}
out:
	close(fd);	/* drops the lock */
	return rc;
}

static uint8_t *frame_buf(struct egr_output_video *v, uint64_t bytes)
{
	if (v && v->buf_len >= bytes)
		return v->buf;
	uint8_t *b = malloc(bytes);
	if (b && v) {
		free(v->buf);
		v->buf = b;
		v->buf_len = bytes;
	}
	return b;
}

int egr_output_video_released(struct egr_output_video *v, const struct egr_job_view *j, uint32_t first,
			      uint32_t n, char *err, size_t errlen)
{
	struct seg_job sj = { .v = v, .j = j, .hook = 1 };
	uint32_t g = j->spec.gop;

	if (!n || !g)
		return 0;
	for (uint32_t k = first / g; k <= (first + n - 1) / g; k++) {
		uint32_t s = k * g, len = j->lay.frames - s < g ? j->lay.frames - s : g;
		if (!egr_ring_frames_written(v->r, j->index, s, len))
			continue;	/* a worker still on another chunk of it encodes it */
		if (!(sj.buf = frame_buf(v, j->lay.frame_bytes))) {
			egr_errf(err, errlen, "encoding segment %" PRIu32 ": out of memory", k);
			return -ENOMEM;
		}
		int rc = encode_segment(&sj, k, err, errlen);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

/* ---- finalization ---- */

/* Every segment encoded (waiting for workers still at it), then muxed into "out". */
static int mux_all(struct seg_job *sj, const char *final, char *err, size_t errlen)
{
	const struct egr_job_view *j = sj->j;
	uint32_t g = j->spec.gop, nseg = (j->lay.frames + g - 1) / g;
	char seg[NAME_MAX_LEN];
	struct egr_video_mux *m = NULL;
	int rc = 0, mid = mid_armed(sj->v);

	for (uint32_t k = 0; k < nseg && rc == 0; k++)
		rc = encode_segment(sj, k, err, errlen);
	if (rc == 1)
		egr_errf(err, errlen, "job %s failed while being finalized", j->name);
	if (rc)
		return rc < 0 ? rc : -ECANCELED;
	seg_path(seg, &j->lay, 0, 0);
	if ((rc = egr_video_mux_open(&m, &j->spec, final, seg, err, errlen)) < 0)
		return rc;
	for (uint32_t k = 0; k < nseg && rc == 0; k++) {
		uint32_t s = k * g;
		seg_path(seg, &j->lay, k, 0);
		rc = egr_video_mux_add(m, seg, s, j->lay.frames - s < g ? j->lay.frames - s : g, err, errlen);
		if (mid && k == nseg / 2)
			sj->v->mid_hook(sj->v->mid_ctx, 1);	/* "out" half written, then die */
	}
	if (rc == 0)
		rc = egr_video_mux_finish(m, err, errlen);
	egr_video_mux_free(m);
	return rc;
}

static int fsync_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = fail_errno(err, errlen, "fsync", path);
	if (fd >= 0)
		close(fd);
	return rc;
}

int egr_output_video_mux(struct egr_output_video *v, const struct egr_job_view *j, char *err, size_t errlen)
{
	struct seg_job sj = { .v = v, .j = j, .wait = 1 };
	char final[NAME_MAX_LEN];
	int rc;

	path_in(final, &j->lay, FINAL);
	if (!(sj.buf = frame_buf(v, j->lay.frame_bytes))) {
		egr_errf(err, errlen, "finalizing \"%s\": out of memory", j->spec.output);
		return -ENOMEM;
	}
	rc = mux_all(&sj, final, err, errlen);
	if (!v)
		free(sj.buf);
	if (rc == 0)
		rc = fsync_file(final, err, errlen);
	return rc;
}
