/*
 * output: a job's output on disk; the contract is in output.h.
 *
 * Crash safety: writes land at fixed offsets (y4m) or in per-frame files
 * truncated and rewritten whole (png), so a chunk written twice leaves the
 * same bytes; finalization checks what an earlier, killed finalizer already
 * did before doing it again.
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

#include "daemon/base/fault.h"
#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/decode/frame.h"
#include "daemon/formats/png.h"
#include "daemon/formats/y4m.h"
#include "workers/output.h"
#include "workers/wio.h"

#define FINALIZE_MARK ".egressd-finalizing"

/* An open y4m temp file, per job table index; see y4m_fd() */
struct fd_cache {
	int fd;
	dev_t dev;
	ino_t ino;
	char name[EGR_JOB_NAME_MAX];
	char tmp[EGR_PATH_MAX];
};

struct egr_output_writer {
	struct egr_ring *r;
	struct egr_wio *w;
	struct fd_cache cache[EGR_RING_JOBS];
	struct iovec *iov;
	size_t iov_cap;
	int (*mid_hook)(void *ctx, int fire);	/* test builds */
	void *mid_ctx;
};

static int fail_errno(char *err, size_t errlen, const char *call, const char *a, const char *b)
{
	int ret = -errno;

	if (b)
		egr_errf(err, errlen, "%s(\"%s\", \"%s\"): %s", call, a, b, egr_log_strerror(errno));
	else
		egr_errf(err, errlen, "%s(\"%s\"): %s", call, a, egr_log_strerror(errno));
	return ret;
}

static int job_live(struct egr_output_writer *w, uint32_t jix)
{
	uint32_t st = egr_ring_job_state(w->r, jix);

	return st == EGR_JOB_ACTIVE || st == EGR_JOB_QUEUED;
}

/* ---- plan, prepare, discard ---- */

/*
 * "<dir>/.<base>.<hash of the job name>.egressd-tmp": on the output's
 * filesystem, so the final rename is atomic; per job, so two jobs writing the
 * same output never share (and truncate) one temporary; and stable across
 * restarts, so a rerun of a crashed job reuses its leftover.
 */
static int tmp_path_for(const char *output, const char *job, char *buf, size_t len)
{
	char a[EGR_PATH_MAX], b[EGR_PATH_MAX];
	uint32_t h = 2166136261u;	/* FNV-1a */
	int n;

	for (const char *c = job; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	snprintf(a, sizeof(a), "%s", output);
	snprintf(b, sizeof(b), "%s", output);
	n = snprintf(buf, len, "%s/.%s.%08x.egressd-tmp", dirname(a), basename(b), h);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int egr_output_plan(const struct egr_jobspec *spec, const char *job_name, uint32_t width, uint32_t height,
		    uint32_t frames, struct egr_job_layout *lay, char *err, size_t errlen)
{
	uint64_t fb = egr_frame_bytes(spec->format, width, height);

	lay->frame_bytes = fb;
	lay->header_bytes = 0;
	lay->out_bytes = fb * frames;
	if (spec->format == EGR_FMT_Y4M) {
		char hdr[128];
		int hl = egr_y4m_header(hdr, sizeof(hdr), width, height, spec->fps_num, spec->fps_den);
		if (hl < 0) {
			egr_errf(err, errlen, "y4m header does not fit");
			return -EINVAL;
		}
		lay->header_bytes = (uint64_t)hl;
		lay->out_bytes = (uint64_t)hl + (uint64_t)frames * (fb + EGR_Y4M_FRAME_TAG_LEN);
	}
	if (tmp_path_for(spec->output, job_name, lay->tmp_path, sizeof(lay->tmp_path)) < 0) {
		egr_errf(err, errlen, "output path \"%s\" is too long", spec->output);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* The y4m temp file: the stream header, every block reserved. */
static int prepare_y4m(const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
		       size_t errlen)
{
	const char *tmp = lay->tmp_path;
	char hdr[128];
	int hl = egr_y4m_header(hdr, sizeof(hdr), lay->width, lay->height, spec->fps_num, spec->fps_den);
	int fd, rc;

	if (hl < 0 || (uint64_t)hl != lay->header_bytes) {
		egr_errf(err, errlen, "internal error: y4m header of %d bytes, planned %" PRIu64, hl,
			 lay->header_bytes);
		return -EINVAL;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail_errno(err, errlen, "open", tmp, NULL);
	egr_fault_kill("EGR_FAULT_FALLOCATE_KILL", tmp);	/* test builds: an empty temp file left */
	/* reserve every block now: a full disk fails the job before any decode */
	rc = posix_fallocate(fd, 0, (off_t)lay->out_bytes);
#ifdef EGR_TESTING
	if (getenv("EGR_PROBE_NO_FALLOCATE"))	/* tests/bench/disk_probe.sh */
		rc = ftruncate(fd, 0) < 0 ? errno : EOPNOTSUPP;
#endif
	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = ftruncate(fd, (off_t)lay->out_bytes) < 0 ? errno : 0;
	if (rc) {
		egr_errf(err, errlen, "fallocate(\"%s\", %" PRIu64 " bytes): %s", tmp, lay->out_bytes,
			 egr_log_strerror(rc));
		rc = -rc;
		goto fail;
	}
	if (pwrite(fd, hdr, (size_t)hl, 0) != hl) {
		rc = errno ? -errno : -EIO;
		egr_errf(err, errlen, "write(\"%s\", y4m header): %s", tmp, egr_log_strerror(-rc));
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return rc;
}

int egr_output_prepare(const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
		       size_t errlen)
{
	if (spec->format == EGR_FMT_Y4M)
		return prepare_y4m(spec, lay, err, errlen);
	egr_fs_remove_tree(lay->tmp_path);	/* a stale one from a crashed run */
	if (mkdir(lay->tmp_path, 0755) < 0)
		return fail_errno(err, errlen, "mkdir", lay->tmp_path, NULL);
	return 0;
}

int egr_output_discard(const struct egr_job_layout *lay)
{
	return lay->tmp_path[0] ? egr_fs_remove_tree(lay->tmp_path) : 0;
}

/* ---- the journal ---- */

int egr_output_journal_path(const char *job_path, char *buf, size_t len)
{
	const char *slash = strrchr(job_path, '/');
	int dir = slash ? (int)(slash - job_path) : 0;
	int n = snprintf(buf, len, "%.*s%s.%s.egressd-wal", dir, job_path, slash ? "/" : "",
			 slash ? slash + 1 : job_path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int journal_write(const char *journal, const struct egr_jobspec *spec, const struct egr_job_layout *lay,
			 const struct stat *id, char *err, size_t errlen)
{
	char text[2 * EGR_PATH_MAX + 128];
	int n = snprintf(text, sizeof(text), "tmp = %s\noutput = %s\n", lay->tmp_path, spec->output);

	if (id && n > 0 && (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n, "dev = %llu\nino = %llu\n",
			 (unsigned long long)id->st_dev, (unsigned long long)id->st_ino);
	return egr_fs_write_atomic(journal, text, err, errlen);
}

int egr_output_journal_begin(const char *journal, const struct egr_jobspec *spec,
			     const struct egr_job_layout *lay, char *err, size_t errlen)
{
	return journal_write(journal, spec, lay, NULL, err, errlen);
}

int egr_output_journal_prepared(const char *journal, const struct egr_jobspec *spec,
				const struct egr_job_layout *lay, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(lay->tmp_path, &st) < 0)
		return fail_errno(err, errlen, "stat", lay->tmp_path, NULL);
	return journal_write(journal, spec, lay, &st, err, errlen);
}

/* "key = value" lines of the journal; 0 or -errno */
static int journal_read(const char *journal, char *tmp, char *out, size_t len, unsigned long long *dev,
			unsigned long long *ino, int *have_id)
{
	char line[EGR_PATH_MAX + 32];
	FILE *f;
	int got = 0;

	*have_id = 0;
	if (!(f = fopen(journal, "re")))
		return -errno;
	tmp[0] = out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "tmp = ", 6) == 0 && strlen(line + 6) < len)
			memcpy(tmp, line + 6, strlen(line + 6) + 1);
		else if (strncmp(line, "output = ", 9) == 0 && strlen(line + 9) < len)
			memcpy(out, line + 9, strlen(line + 9) + 1);
		else if (sscanf(line, "dev = %llu", dev) == 1 || sscanf(line, "ino = %llu", ino) == 1)
			got++;
	}
	fclose(f);
	*have_id = got == 2;
	return tmp[0] && out[0] ? 0 : -EINVAL;
}

int egr_output_recover(const char *journal, char *err, size_t errlen)
{
	char tmp[EGR_PATH_MAX], out[EGR_PATH_MAX];
	unsigned long long dev = 0, ino = 0;
	struct stat st;
	int have_id = 0, rc = journal_read(journal, tmp, out, sizeof(tmp), &dev, &ino, &have_id);

	if (rc == -ENOENT)
		return 0;	/* the killed run never got as far as its output */
	if (rc < 0) {
		egr_errf(err, errlen, "journal \"%s\" is unreadable; rerunning the job", journal);
		egr_output_journal_end(journal);
		return 0;
	}
	/* the rename keeps the inode: the output in place is this job's own */
	if (have_id && lstat(out, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino) {
		egr_fs_remove_tree(tmp);	/* png: an old tree exchanged out, if any */
		if (S_ISDIR(st.st_mode)) {
			/* png: a finalizer killed after the rename left its marker in the tree */
			char mark[EGR_PATH_MAX + 32];
			snprintf(mark, sizeof(mark), "%s/" FINALIZE_MARK, out);
			if (unlink(mark) == 0)
				egr_fs_fsync_dir(out);
		}
		return 1;
	}
	rc = egr_fs_remove_tree(tmp);
	if (rc < 0)
		egr_errf(err, errlen, "removing the temporary output \"%s\" of a killed run: %s", tmp,
			 egr_log_strerror(-rc));
	return rc < 0 ? rc : 0;
}

void egr_output_journal_end(const char *journal)
{
	unlink(journal);
}

/* ---- the writer ---- */

int egr_output_writer_new(struct egr_ring *r, struct egr_wio *wio, struct egr_output_writer **out)
{
	struct egr_output_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->r = r;
	w->w = wio;
	for (int i = 0; i < EGR_RING_JOBS; i++)
		w->cache[i].fd = -1;
	*out = w;
	return 0;
}

static void cache_drop(struct fd_cache *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void egr_output_writer_free(struct egr_output_writer *w)
{
	if (!w)
		return;
	for (int i = 0; i < EGR_RING_JOBS; i++)
		cache_drop(&w->cache[i]);
	free(w->iov);
	free(w);
}

#ifdef EGR_TESTING
void egr_output_set_mid_hook(struct egr_output_writer *w, int (*fn)(void *ctx, int fire), void *ctx)
{
	w->mid_hook = fn;
	w->mid_ctx = ctx;
}
#endif

static int mid_armed(struct egr_output_writer *w)
{
	return w->mid_hook && w->mid_hook(w->mid_ctx, 0);
}

void egr_output_sweep(struct egr_output_writer *w)
{
	struct egr_job_view j;

	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		if (w->cache[i].fd < 0)
			continue;
		if (egr_ring_job_view(w->r, i, &j) < 0 || !(j.state == EGR_JOB_ACTIVE || j.state == EGR_JOB_QUEUED) ||
		    strcmp(w->cache[i].name, j.name) != 0)
			cache_drop(&w->cache[i]);
	}
}

/*
 * The job's temp file, opened once per job.  A job index is reused by later
 * jobs, and a re-run job gets a fresh temp file under the same name, so the
 * cached descriptor is trusted only while the path still names the inode it
 * has open (the open descriptor keeps that inode number from being reused).
 */
static int y4m_fd(struct egr_output_writer *w, const struct egr_job_view *j, char *err, size_t errlen)
{
	struct fd_cache *c = &w->cache[j->index];
	const char *tmp = j->lay.tmp_path;
	struct stat st;
	int fd;

	if (stat(tmp, &st) < 0)
		return fail_errno(err, errlen, "open", tmp, NULL);
	if (c->fd >= 0 && c->dev == st.st_dev && c->ino == st.st_ino && strcmp(c->name, j->name) == 0 &&
	    strcmp(c->tmp, tmp) == 0)
		return c->fd;
	cache_drop(c);
	fd = open(tmp, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(err, errlen, "open", tmp, NULL);
	if (fstat(fd, &st) < 0) {
		int rc = fail_errno(err, errlen, "fstat", tmp, NULL);
		close(fd);
		return rc;
	}
	c->fd = fd;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	snprintf(c->name, sizeof(c->name), "%s", j->name);
	snprintf(c->tmp, sizeof(c->tmp), "%s", tmp);
	return fd;
}

static int iov_reserve(struct egr_output_writer *w, size_t n)
{
	if (n <= w->iov_cap)
		return 0;
	struct iovec *p = realloc(w->iov, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	w->iov = p;
	w->iov_cap = n;
	return 0;
}

/* "FRAME\n" + frame, per frame of the chunk, at the first frame's offset: one writev */
static int write_y4m(struct egr_output_writer *w, const struct egr_job_view *j, const uint8_t *data,
		     uint32_t first, uint32_t n, char *err, size_t errlen)
{
	static char tag[] = EGR_Y4M_FRAME_TAG;
	struct egr_job_stats *st = egr_ring_job_stats(w->r, j->index);
	const char *tmp = j->lay.tmp_path;
	uint64_t fb = j->lay.frame_bytes;
	int fd, ret, niov = 2 * (int)n;
	off_t off = (off_t)egr_y4m_frame_off(j->lay.header_bytes, fb, first);

	fd = y4m_fd(w, j, err, errlen);
	if (fd < 0)
		return fd;
	if (iov_reserve(w, (size_t)niov) < 0) {
		egr_errf(err, errlen, "write(\"%s\"): out of memory for %d iovecs", tmp, niov);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		w->iov[2 * i] = (struct iovec){ tag, EGR_Y4M_FRAME_TAG_LEN };
		w->iov[2 * i + 1] = (struct iovec){ (void *)(data + i * fb), fb };
	}
	uint64_t t0 = egr_log_now_ns();
	if (mid_armed(w)) {
		/* half the iovecs written, then die: a torn chunk on disk */
		ret = egr_wio_writev(w->w, fd, w->iov, niov / 2, off);
		if (egr_wio_wait(w->w) == 0 && ret == 0)
			w->mid_hook(w->mid_ctx, 1);
	}
	ret = egr_wio_writev(w->w, fd, w->iov, niov, off);
	int ret2 = egr_wio_wait(w->w);
	if (ret == 0)
		ret = ret2;
	egr_stat_add(&st->write_ns, egr_log_now_ns() - t0);
	if (ret < 0) {
		egr_errf(err, errlen, "write(\"%s\") at offset %lld: %s", tmp, (long long)off, egr_log_strerror(-ret));
		return ret;
	}
	uint64_t len = (uint64_t)n * (EGR_Y4M_FRAME_TAG_LEN + fb);
	egr_stat_add(&st->bytes_written, len);
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
		egr_errf(err, errlen, "sync_file_range(\"%s\") at offset %lld: %s", tmp, (long long)off,
			 egr_log_strerror(errno));
		return -EIO;
	}
	return 0;
}

/* A PNG file whose write is in flight */
struct png_pending {
	int fd;
	void *buf;
	size_t len;
	char path[EGR_PATH_MAX + 32];
};

/* Wait for p's write, fdatasync and close it.  Always releases p. */
static int png_finish(struct egr_output_writer *w, struct png_pending *p, struct egr_job_stats *st, char *err,
		      size_t errlen)
{
	uint64_t t0 = egr_log_now_ns();
	int ret = 0;

	if (p->fd < 0)
		return 0;
	ret = egr_wio_wait(w->w);
	if (ret < 0) {
		egr_errf(err, errlen, "write(\"%s\"): %s", p->path, egr_log_strerror(-ret));
	} else {
		ret = egr_wio_fsync(w->w, p->fd, 1);
		if (ret < 0)
			egr_errf(err, errlen, "fdatasync(\"%s\"): %s", p->path, egr_log_strerror(-ret));
	}
	if (close(p->fd) < 0 && ret == 0)
		ret = fail_errno(err, errlen, "close", p->path, NULL);
	egr_stat_add(&st->write_ns, egr_log_now_ns() - t0);
	if (ret == 0)
		egr_stat_add(&st->bytes_written, p->len);
	free(p->buf);
	p->fd = -1;
	p->buf = NULL;
	return ret;
}

/* Create cur's file (frame index of the job) and queue the write of its bytes. */
static int png_queue(struct egr_output_writer *w, const struct egr_job_view *j, uint64_t index,
		     struct png_pending *cur, char *err, size_t errlen)
{
	char name[32];
	int ret;

	egr_png_name(name, sizeof(name), index);
	snprintf(cur->path, sizeof(cur->path), "%s/%s", j->lay.tmp_path, name);
	cur->fd = open(cur->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (cur->fd < 0) {
		ret = fail_errno(err, errlen, "open", cur->path, NULL);
		free(cur->buf);
		cur->buf = NULL;
		return ret;
	}
	struct iovec iov = { cur->buf, cur->len };
	return egr_wio_writev(w->w, cur->fd, &iov, 1, 0);
}

/*
 * One PNG per frame.  Frame i+1 is compressed while frame i's write is in
 * flight; each file is fdatasynced before the next write is queued.
 */
static int write_png(struct egr_output_writer *w, const struct egr_job_view *j, const uint8_t *data,
		     uint32_t first, uint32_t n, char *err, size_t errlen)
{
	struct egr_job_stats *st = egr_ring_job_stats(w->r, j->index);
	struct png_pending p = { .fd = -1 };
	int ret = 0, mid = mid_armed(w);

	for (uint32_t i = 0; i < n; i++) {
		struct png_pending cur = { .fd = -1 };

		if (mid && i == n / 2 && png_finish(w, &p, st, err, errlen) == 0)
			w->mid_hook(w->mid_ctx, 1);	/* half the files written, then die */
		if (!job_live(w, j->index)) {
			ret = EGR_OUTPUT_DROPPED;	/* another worker failed it: stop early */
			break;
		}
		uint64_t t0 = egr_log_now_ns();
		ret = egr_png_encode(data + i * j->lay.frame_bytes, j->lay.width, j->lay.height, &cur.buf,
				     &cur.len, err, errlen);
		egr_stat_add(&st->encode_ns, egr_log_now_ns() - t0);
		if (ret < 0)
			break;
		ret = png_finish(w, &p, st, err, errlen);
		if (ret < 0) {
			free(cur.buf);
			break;
		}
		ret = png_queue(w, j, (uint64_t)first + i, &cur, err, errlen);
		if (cur.fd >= 0)
			p = cur;
		if (ret < 0)
			break;	/* png_finish below reports it */
	}
	/* whatever happened, the last write completes before its buffer is freed */
	if (ret == 0 || ret == EGR_OUTPUT_DROPPED) {
		int ret2 = png_finish(w, &p, st, err, errlen);
		if (ret2 < 0)
			ret = ret2;
	} else {
		char scratch[EGR_ERR_MAX];	/* the first error is the one reported */
		png_finish(w, &p, st, scratch, sizeof(scratch));
	}
	return ret;
}

int egr_output_write(struct egr_output_writer *w, const struct egr_job_view *j, const uint8_t *data,
		     uint32_t first, uint32_t n, char *err, size_t errlen)
{
	if (j->spec.format == EGR_FMT_Y4M)
		return write_y4m(w, j, data, first, n, err, errlen);
	if (j->spec.format == EGR_FMT_PNG)
		return write_png(w, j, data, first, n, err, errlen);
	egr_errf(err, errlen, "internal error: job %s has format %" PRIu32, j->name, j->spec.format);
	return -EINVAL;
}

/* ---- finalization ---- */

static int fsync_path(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0 || fsync(fd) < 0)
		ret = fail_errno(err, errlen, "fsync", path, NULL);
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

/* fsync the temp file, rename it over the output, fsync the directory */
static int finalize_y4m(struct egr_output_writer *w, const struct egr_job_view *j, char *err, size_t errlen)
{
	const char *tmp = j->lay.tmp_path, *out = j->spec.output;
	struct stat st;
	int fd, ret, own = 0;

	if (!exists(tmp)) {
		if (exists(out))
			return 0;	/* an earlier finalizer died after its rename */
		egr_errf(err, errlen, "temporary output \"%s\" is missing", tmp);
		return -ENOENT;
	}
	if (w) {
		fd = y4m_fd(w, j, err, errlen);
	} else {
		fd = open(tmp, O_WRONLY | O_CLOEXEC);
		own = 1;
		if (fd < 0)
			return fail_errno(err, errlen, "open", tmp, NULL);
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		ret = fail_errno(err, errlen, "fstat", tmp, NULL);
	} else if (j->lay.out_bytes && (uint64_t)st.st_size != j->lay.out_bytes) {
		egr_errf(err, errlen, "internal error: \"%s\" has %lld bytes, expected %" PRIu64, tmp,
			 (long long)st.st_size, j->lay.out_bytes);
		ret = -EIO;
	} else {
		ret = w ? egr_wio_fsync(w->w, fd, 0) : (fsync(fd) < 0 ? -errno : 0);
		if (ret < 0)
			egr_errf(err, errlen, "fsync(\"%s\"): %s", tmp, egr_log_strerror(-ret));
	}
	if (own)
		close(fd);
	else
		cache_drop(&w->cache[j->index]);
	if (ret < 0)
		return ret;
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
static int finalize_png(const struct egr_job_view *j, char *err, size_t errlen)
{
	const char *tmp = j->lay.tmp_path, *out = j->spec.output;
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
	egr_fault_kill("EGR_FAULT_FINALIZE_KILL", out);	/* test builds: renamed, marker still in */
	snprintf(mark, sizeof(mark), "%s/" FINALIZE_MARK, out);
cleanup:
	ret = egr_fs_remove_tree(tmp);
	if (ret < 0) {
		egr_errf(err, errlen, "removing \"%s\": %s", tmp, egr_log_strerror(-ret));
		return ret;
	}
	if (unlink(mark) < 0 && errno != ENOENT)
		return fail_errno(err, errlen, "unlink", mark, NULL);
	ret = fsync_path(out, err, errlen);
	if (ret == 0)
		ret = fsync_parent(out, err, errlen);
	return ret;
}

int egr_output_finalize(struct egr_output_writer *w, const struct egr_job_view *j, char *err, size_t errlen)
{
	if (j->spec.format == EGR_FMT_Y4M)
		return finalize_y4m(w, j, err, errlen);
	if (j->spec.format == EGR_FMT_PNG)
		return finalize_png(j, err, errlen);
	egr_errf(err, errlen, "internal error: job %s has format %" PRIu32, j->name, j->spec.format);
	return -EINVAL;
}
