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
#include "daemon/base/fence.h"
#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/base/safepath.h"
#include "daemon/decode/frame.h"
#include "daemon/formats/png.h"
#include "daemon/formats/y4m.h"
#include "workers/output.h"
#include "workers/output_video.h"
#include "workers/wio.h"


/* A job's open temporary output (y4m: the file; png: the directory), per job table index */
struct fd_cache {
	int fd;
	uint64_t ino;		/* the job's lay.tmp_ino it was opened as */
	mode_t file_mode;	/* png: mode of the frame files */
	char name[EGR_JOB_NAME_MAX];
};

struct egr_output_writer {
	struct egr_ring *r;
	struct egr_wio *w;
	const struct egr_safepath *sp;
	struct fd_cache cache[EGR_RING_JOBS];
	struct iovec *iov;
	size_t iov_cap;
	int (*mid_hook)(void *ctx, int fire);	/* test builds */
	void *mid_ctx;
	struct egr_output_video *video;	/* format = mp4 | mkv */
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

uint32_t egr_output_pixels(uint32_t format)
{
	return egr_job_is_video(format) || format == EGR_FMT_NULL ? EGR_FMT_Y4M : format;
}

int egr_output_plan(const struct egr_jobspec *spec, const char *job_name, uint32_t width, uint32_t height,
		    uint32_t frames, struct egr_job_layout *lay, char *err, size_t errlen)
{
	uint64_t fb = egr_frame_bytes(egr_output_pixels(spec->format), width, height);
	const char *slash = strrchr(spec->output, '/');
	int rc, n;

	(void)job_name;
	lay->frame_bytes = fb;
	lay->header_bytes = 0;
	lay->out_bytes = fb * frames;
	if (spec->format == EGR_FMT_NULL) {
		lay->tmp_name[0] = 0;	/* nothing is created, so nothing to name */
		lay->tmp_path[0] = 0;
		return 0;
	}
	if (egr_job_is_video(spec->format) &&
	    (rc = egr_output_video_plan(spec, lay, err, errlen)))
		return rc;
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
	/*
	 * An unpredictable name (nobody can plant a link there in advance),
	 * chosen now so that the journal can record it before it exists.
	 */
	if (!slash || (rc = egr_safepath_temp_name(slash + 1, lay->tmp_name, sizeof(lay->tmp_name))) < 0 ||
	    (n = snprintf(lay->tmp_path, sizeof(lay->tmp_path), "%.*s/%s", (int)(slash - spec->output),
			  spec->output, lay->tmp_name)) < 0 || (size_t)n >= sizeof(lay->tmp_path)) {
		egr_errf(err, errlen, "output path \"%s\" is too long", spec->output);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* The y4m temporary: the stream header, every block reserved. */
static int prepare_y4m(int fd, const struct egr_jobspec *spec, const struct egr_job_layout *lay, char *err,
		       size_t errlen)
{
	char hdr[128];
	int hl = egr_y4m_header(hdr, sizeof(hdr), lay->width, lay->height, spec->fps_num, spec->fps_den);
	int rc;

	if (hl < 0 || (uint64_t)hl != lay->header_bytes) {
		egr_errf(err, errlen, "internal error: y4m header of %d bytes, planned %" PRIu64, hl,
			 lay->header_bytes);
		return -EINVAL;
	}
	egr_fault_kill("EGR_FAULT_FALLOCATE_KILL", lay->tmp_path);	/* test builds: an empty temporary left */
	/* reserve every block now: a full disk fails the job before any decode */
	rc = posix_fallocate(fd, 0, (off_t)lay->out_bytes);
#ifdef EGR_TESTING
	if (getenv("EGR_PROBE_NO_FALLOCATE"))	/* tests/bench/disk_probe.sh */
		rc = ftruncate(fd, 0) < 0 ? errno : EOPNOTSUPP;
#endif
	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = ftruncate(fd, (off_t)lay->out_bytes) < 0 ? errno : 0;
	if (rc) {
		egr_errf(err, errlen, "output \"%s\": reserving %" PRIu64 " bytes: %s", spec->output,
			 lay->out_bytes, egr_log_strerror(rc));
		return -rc;
	}
	if (pwrite(fd, hdr, (size_t)hl, 0) != hl) {
		rc = errno ? -errno : -EIO;
		egr_errf(err, errlen, "output \"%s\": writing the y4m header: %s", spec->output,
			 egr_log_strerror(-rc));
		return rc;
	}
	return 0;
}

/* Open the output's directory through the roots and check it is the one the job began in. */
static int open_dir(const struct egr_safepath *sp, const struct egr_jobspec *spec,
		    const struct egr_job_layout *lay, struct egr_safepath_out *o, char *err, size_t errlen)
{
	struct stat st;
	int rc = egr_safepath_open_output(sp, "output", spec->output, o, err, errlen);

	if (rc < 0)
		return rc;
	if (lay->dir_ino && (fstat(o->dirfd, &st) < 0 || (uint64_t)st.st_dev != lay->dir_dev ||
			     (uint64_t)st.st_ino != lay->dir_ino)) {
		egr_errf(err, errlen, "output \"%s\": its directory was replaced while the job ran", spec->output);
		egr_safepath_out_close(o);
		return -ESTALE;
	}
	return 0;
}

int egr_output_prepare(const struct egr_safepath *sp, const struct egr_jobspec *spec, struct egr_job_layout *lay,
		       const struct egr_safepath_file *inputs, size_t ninputs, char *err, size_t errlen)
{
	struct egr_safepath_out o;
	int video = egr_job_is_video(spec->format), is_dir = spec->format == EGR_FMT_PNG || video, fd = -1, rc;
	char name[sizeof(lay->tmp_name)];
	struct stat st;

	if (spec->format == EGR_FMT_NULL)
		return 0;	/* no output: nothing to check or create */
	if ((rc = egr_safepath_open_output(sp, "output", spec->output, &o, err, errlen)) < 0)
		return rc;
	if ((rc = egr_safepath_check_output(&o, (int)spec->overwrite, is_dir, inputs, ninputs, err, errlen)) < 0)
		goto out;
	memcpy(name, lay->tmp_name, sizeof(name));
	egr_fault_stop("EGR_FAULT_CREATE_STOP", lay->tmp_path);	/* test builds: journalled, not yet created */
	rc = egr_safepath_create_temp(&o, is_dir, egr_safepath_output_mode(inputs, ninputs, is_dir), name,
				      sizeof(name), &fd, err, errlen);
	if (rc == -EEXIST) {
		/* a killed producer's own, or a plant: either way not an output; gone (links not followed) */
		egr_safepath_remove_at(o.dirfd, lay->tmp_name);
		rc = egr_safepath_create_temp(&o, is_dir, egr_safepath_output_mode(inputs, ninputs, is_dir),
					      name, sizeof(name), &fd, err, errlen);
	}
	if (rc < 0)
		goto out;
	egr_fault_stop("EGR_FAULT_CREATED_STOP", lay->tmp_path);	/* test builds: created, not yet journalled */
	if ((!is_dir && (rc = prepare_y4m(fd, spec, lay, err, errlen)) < 0) ||
	    (video && (rc = egr_output_video_prepare(spec, lay, err, errlen)) < 0)) {
		egr_safepath_remove_at(o.dirfd, lay->tmp_name);
		goto out;
	}
	if (fstat(fd, &st) == 0) {
		lay->out_dev = lay->tmp_dev = (uint64_t)st.st_dev;
		lay->out_ino = lay->tmp_ino = (uint64_t)st.st_ino;
	}
	/* mp4, mkv: the muxed file inside the directory becomes the output */
	if (video && fstatat(fd, EGR_OUTPUT_VIDEO_FINAL, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		lay->out_dev = (uint64_t)st.st_dev;
		lay->out_ino = (uint64_t)st.st_ino;
	}
	if (fstat(o.dirfd, &st) == 0) {
		lay->dir_dev = (uint64_t)st.st_dev;
		lay->dir_ino = (uint64_t)st.st_ino;
	}
out:
	if (fd >= 0)
		close(fd);
	egr_safepath_out_close(&o);
	return rc;
}

int egr_output_discard(const struct egr_safepath *sp, const struct egr_jobspec *spec,
		       const struct egr_job_layout *lay)
{
	struct egr_safepath_out o;
	char err[EGR_ERR_MAX];
	int rc;

	if (!lay->tmp_name[0] || spec->format == EGR_FMT_NULL)
		return 0;
	if (open_dir(sp, spec, lay, &o, err, sizeof(err)) < 0)
		return 0;	/* nothing of ours can be reached there any more */
	rc = egr_safepath_remove_at(o.dirfd, lay->tmp_name);
	egr_safepath_out_close(&o);
	return rc;
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

int egr_output_journal_write(const char *journal, const struct egr_jobspec *spec,
			     const struct egr_job_layout *lay, char *err, size_t errlen)
{
	char text[EGR_PATH_MAX + 512];
	int n;

	if (spec->format == EGR_FMT_NULL)
		return 0;	/* nothing on disk for a restart to account for */
	n = snprintf(text, sizeof(text), "output = %s\ntmp_name = %s\n", spec->output, lay->tmp_name);
	if (lay->out_ino && n > 0 && (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n, "dev = %" PRIu64 "\nino = %" PRIu64 "\n", lay->out_dev,
			 lay->out_ino);
	return egr_fs_write_atomic(journal, text, err, errlen);
}

/* The journal's lines into spec->output and lay's tmp_name and identity; 0 or -errno. */
static int journal_read(const char *journal, struct egr_jobspec *spec, struct egr_job_layout *lay)
{
	char line[EGR_PATH_MAX + 32];
	FILE *f;

	if (!(f = fopen(journal, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t l;
		line[strcspn(line, "\n")] = 0;
		l = strlen(line);
		if (strncmp(line, "output = ", 9) == 0 && l - 9 < sizeof(spec->output))
			memcpy(spec->output, line + 9, l - 9 + 1);
		else if (strncmp(line, "tmp_name = ", 11) == 0 && l - 11 < sizeof(lay->tmp_name))
			memcpy(lay->tmp_name, line + 11, l - 11 + 1);
		else if (sscanf(line, "dev = %" SCNu64, &lay->out_dev) == 1 ||
			 sscanf(line, "ino = %" SCNu64, &lay->out_ino) == 1)
			continue;
	}
	fclose(f);
	return spec->output[0] && lay->tmp_name[0] ? 0 : -EINVAL;
}

/*
 * Remove the temporary name in one atomic step: a file is unlinked; a
 * directory (png) is renamed to a fresh name first, so that nobody can
 * rename a half-removed tree into place, then removed.
 */
static int consume_temp(struct egr_safepath_out *o, const char *name)
{
	char fresh[300];
	struct stat st;

	/*
	 * A directory goes aside under a name derived from its own (not a new
	 * random one, which nothing would record): a recovery killed while
	 * removing it is redone from the same journal, and finds it there.
	 */
	int n = snprintf(fresh, sizeof(fresh), "%s.gone", name), rc;
	if (n < 0 || (size_t)n >= sizeof(fresh))
		return -ENAMETOOLONG;
	if ((rc = egr_safepath_remove_at(o->dirfd, fresh)) < 0)
		return rc;
	if (fstatat(o->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(o->dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (renameat(o->dirfd, name, o->dirfd, fresh) < 0)
		return errno == ENOENT ? 0 : -errno;
	return egr_safepath_remove_at(o->dirfd, fresh);
}

int egr_output_recover(const struct egr_safepath *sp, const char *journal, char *err, size_t errlen)
{
	struct egr_jobspec spec = { 0 };
	struct egr_job_layout lay = { 0 };
	struct egr_safepath_out o;
	int rc = journal_read(journal, &spec, &lay), done = 0;

	err[0] = 0;
	if (rc == -ENOENT)
		return 0;	/* the killed run never got as far as its output */
	if (rc < 0) {
		egr_errf(err, errlen, "journal \"%s\" is unreadable; rerunning the job", journal);
		egr_output_journal_end(journal);
		return 0;
	}
	if (egr_safepath_open_output(sp, "output", spec.output, &o, err, errlen) < 0)
		return 0;	/* out of reach now: the rerun will say why */
	/*
	 * The temporary is taken away first, then the output looked at: a
	 * killed run's finalizer still alive (a daemon that lost its lease on a
	 * shared spool, daemon/supervisor/lease.h) either renamed it into place
	 * before (seen below: done) or finds it gone (it commits nothing).
	 */
	rc = consume_temp(&o, lay.tmp_name);
	egr_safepath_inspect(&o);
	/* the rename keeps the inode: an output in place with the journalled one is this job's */
	done = lay.out_ino && o.exists != EGR_SAFEPATH_NONE && (uint64_t)o.st.st_dev == lay.out_dev &&
	       (uint64_t)o.st.st_ino == lay.out_ino;
	egr_safepath_out_close(&o);
	if (rc < 0)
		egr_errf(err, errlen, "output \"%s\": removing the temporary output of a killed run: %s",
			 spec.output, egr_log_strerror(-rc));
	return done ? 1 : (rc < 0 ? rc : 0);
}

void egr_output_journal_end(const char *journal)
{
	unlink(journal);
}

/* ---- the writer ---- */

int egr_output_writer_new(struct egr_ring *r, struct egr_wio *wio, const struct egr_safepath *sp,
			  struct egr_output_writer **out)
{
	struct egr_output_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->r = r;
	w->w = wio;
	w->sp = sp;
	for (int i = 0; i < EGR_RING_JOBS; i++)
		w->cache[i].fd = -1;
	if (egr_output_video_new(r, wio, &w->video) < 0) {
		free(w);
		return -ENOMEM;
	}
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
	egr_output_video_free(w->video);
	free(w->iov);
	free(w);
}

#ifdef EGR_TESTING
void egr_output_set_mid_hook(struct egr_output_writer *w, int (*fn)(void *ctx, int fire), void *ctx)
{
	w->mid_hook = fn;
	w->mid_ctx = ctx;
	egr_output_video_set_mid_hook(w->video, fn, ctx);
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
 * The job's temporary output opened with flags: through the roots, in the
 * directory the job began in, and the very file or directory the producer
 * created (the inode recorded in the ring).  An fd (st filled) or -errno.
 */
static int open_temp(const struct egr_safepath *sp, const struct egr_job_view *j, int flags, struct stat *st,
		     char *err, size_t errlen)
{
	struct egr_safepath_out o;
	int fd, rc = open_dir(sp, &j->spec, &j->lay, &o, err, errlen);

	if (rc < 0)
		return rc;
	fd = openat(o.dirfd, j->lay.tmp_name, flags | O_NOFOLLOW | O_CLOEXEC);
	rc = fd < 0 ? -errno : 0;
	egr_safepath_out_close(&o);
	if (!rc && (fstat(fd, st) < 0 || (uint64_t)st->st_ino != j->lay.tmp_ino ||
		    (uint64_t)st->st_dev != j->lay.tmp_dev))
		rc = -ESTALE;
	if (rc) {
		if (fd >= 0)
			close(fd);
		egr_errf(err, errlen, "output \"%s\": its temporary output %s", j->spec.output,
			 rc == -ESTALE ? "was replaced while the job ran" : egr_log_strerror(-rc));
		return rc;
	}
	return fd;
}

/*
 * The job's temporary output, opened once per job run: through the roots
 * (no link followed), in the directory the job began in, and the very file
 * or directory the producer created (its inode, recorded in the ring).  A
 * job index is reused by later jobs and a rerun gets a new temporary, so the
 * cache is keyed by job name and inode.
 */
static int tmp_fd(struct egr_output_writer *w, const struct egr_job_view *j, char *err, size_t errlen)
{
	struct fd_cache *c = &w->cache[j->index];
	int is_dir = j->spec.format == EGR_FMT_PNG, fd;
	struct stat st;

	if (c->fd >= 0 && c->ino == j->lay.tmp_ino && strcmp(c->name, j->name) == 0)
		return c->fd;
	cache_drop(c);
	fd = open_temp(w->sp, j, is_dir ? O_RDONLY | O_DIRECTORY : O_WRONLY, &st, err, errlen);
	if (fd < 0)
		return fd;
	c->fd = fd;
	c->ino = j->lay.tmp_ino;
	c->file_mode = st.st_mode & 0666;
	snprintf(c->name, sizeof(c->name), "%s", j->name);
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
	const char *tmp = j->spec.output;	/* messages name the user's path, never the temporary */
	uint64_t fb = j->lay.frame_bytes;
	int fd, ret, niov = 2 * (int)n;
	off_t off = (off_t)egr_y4m_frame_off(j->lay.header_bytes, fb, first);

	fd = tmp_fd(w, j, err, errlen);
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
	int ret, dirfd = tmp_fd(w, j, err, errlen);

	if (dirfd < 0) {
		free(cur->buf);
		cur->buf = NULL;
		return dirfd;
	}
	egr_png_name(name, sizeof(name), index);
	/* for messages: the frame's final path, the user's, not the temporary directory's */
	snprintf(cur->path, sizeof(cur->path), "%s/%s", j->spec.output, name);
	/* a rewrite after a crash truncates the same file: never a link planted there */
	cur->fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			 w->cache[j->index].file_mode);
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
	if (j->spec.format == EGR_FMT_NULL) {
		/* counted and dropped: the frames are not read */
		egr_stat_add(&egr_ring_job_stats(w->r, j->index)->bytes_written, (uint64_t)n * j->lay.frame_bytes);
		return 0;
	}
	if (j->spec.format == EGR_FMT_Y4M)
		return write_y4m(w, j, data, first, n, err, errlen);
	if (j->spec.format == EGR_FMT_PNG)
		return write_png(w, j, data, first, n, err, errlen);
	if (egr_job_is_video(j->spec.format))
		return egr_output_video_write(w->video, j, data, first, n, err, errlen);
	egr_errf(err, errlen, "internal error: job %s has format %" PRIu32, j->name, j->spec.format);
	return -EINVAL;
}

int egr_output_open(const struct egr_safepath *sp, const struct egr_job_view *j, char *err, size_t errlen)
{
	struct stat st;
	if (j->spec.format == EGR_FMT_NULL) {
		egr_errf(err, errlen, "job %s: format = null has no output to open", j->name);
		return -ENOTSUP;
	}

	return open_temp(sp, j, O_WRONLY, &st, err, errlen);
}

int egr_output_released(struct egr_output_writer *w, const struct egr_job_view *j, uint32_t first, uint32_t n,
			char *err, size_t errlen)
{
	if (egr_job_is_video(j->spec.format))
		return egr_output_video_released(w->video, j, first, n, err, errlen);
	return 0;
}

/* ---- finalization ---- */

/* fsync the temporary (y4m: checking its size first) */
static int sync_temp(struct egr_output_writer *w, const struct egr_job_view *j, int dirfd, char *err,
		     size_t errlen)
{
	int own = !w, fd, rc = 0;
	struct stat st;

	fd = w ? tmp_fd(w, j, err, errlen)
	       : openat(dirfd, j->lay.tmp_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return w ? fd : fail_errno(err, errlen, "open", j->spec.output, NULL);
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_ino != j->lay.tmp_ino) {
		egr_errf(err, errlen, "output \"%s\": its temporary output was replaced while the job ran",
			 j->spec.output);
		rc = -ESTALE;
	} else if (j->spec.format == EGR_FMT_Y4M && j->lay.out_bytes && (uint64_t)st.st_size != j->lay.out_bytes) {
		egr_errf(err, errlen, "internal error: \"%s\" has %lld bytes, expected %" PRIu64, j->spec.output,
			 (long long)st.st_size, j->lay.out_bytes);
		rc = -EIO;
	} else {
		rc = w ? egr_wio_fsync(w->w, fd, 0) : (fsync(fd) < 0 ? -errno : 0);
		if (rc < 0)
			egr_errf(err, errlen, "fsync(\"%s\"): %s", j->spec.output, egr_log_strerror(-rc));
	}
	if (own)
		close(fd);
	else
		cache_drop(&w->cache[j->index]);
	return rc;
}

/*
 * fsync the temporary, rename it into place under the overwrite policy
 * (egr_safepath_commit), fsync the directory.  Idempotent: a finalizer
 * killed after the rename left the output with the temporary's inode, and a
 * rerun sees that and only tidies up.
 */
int egr_output_finalize(struct egr_output_writer *w, const struct egr_safepath *sp, const struct egr_job_view *j,
			char *err, size_t errlen)
{
	int is_dir = j->spec.format == EGR_FMT_PNG, rc;
	struct egr_safepath_out o;
	struct stat st;

	if (j->spec.format == EGR_FMT_NULL)
		return 0;	/* nothing to sync or rename: the job is done */
	if ((rc = open_dir(sp, &j->spec, &j->lay, &o, err, errlen)) < 0)
		return rc;
	if (o.exists != EGR_SAFEPATH_NONE && (uint64_t)o.st.st_ino == j->lay.out_ino &&
	    (uint64_t)o.st.st_dev == j->lay.out_dev) {
		egr_safepath_remove_at(o.dirfd, j->lay.tmp_name);	/* an exchanged old tree, if any */
		goto sync_dir;	/* an earlier finalizer renamed it */
	}
	if (fstatat(o.dirfd, j->lay.tmp_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		egr_errf(err, errlen, "output \"%s\": its temporary output is missing", j->spec.output);
		rc = -ENOENT;
		goto out;
	}
	if (egr_job_is_video(j->spec.format)) {
		/* encode what is missing, mux into <tmp>/out, fsync it; that file is renamed into place */
		char final[sizeof(j->lay.tmp_name) + 16];
		if ((rc = egr_output_video_mux(w ? w->video : NULL, j, err, errlen)) < 0 ||
		    (rc = egr_fence_check(j->path, err, errlen)) < 0)
			goto out;
		snprintf(final, sizeof(final), "%s/" EGR_OUTPUT_VIDEO_FINAL, j->lay.tmp_name);
		rc = egr_safepath_commit(&o, final, 0, (int)j->spec.overwrite, err, errlen);
		if (rc < 0)
			goto out;
		egr_safepath_remove_at(o.dirfd, j->lay.tmp_name);	/* the spool and the segments */
		goto sync_dir;
	}
	/* shared spool: a daemon that lost its lease commits nothing (daemon/base/fence.h) */
	if ((rc = sync_temp(w, j, o.dirfd, err, errlen)) < 0 || (rc = egr_fence_check(j->path, err, errlen)) < 0)
		goto out;
	rc = egr_safepath_commit(&o, j->lay.tmp_name, is_dir, (int)j->spec.overwrite, err, errlen);
	if (rc < 0)
		goto out;
	egr_fault_kill("EGR_FAULT_FINALIZE_KILL", j->spec.output);	/* test builds: renamed, not yet recorded */
	if (rc == 1)
		egr_warn("output \"%s\": in place; the replaced directory could not be removed: %s", j->spec.output,
			 err);
sync_dir:
	rc = fsync(o.dirfd) < 0 ? fail_errno(err, errlen, "fsync", j->spec.output, NULL) : 0;
out:
	egr_safepath_out_close(&o);
	return rc;
}
