/*
 * egressd-producer: takes queued jobs from the ring, reads their latents,
 * decodes them chunk by chunk through a backend (cpu or cuda) straight into
 * ring slots, and publishes each slot once its bytes are complete.
 *
 * Started by the supervisor: egressd-producer -c CONF --shm NAME --notify-fd N.
 * A job it dies on is resumed by its successor (ring.h), so everything here
 * that touches the outside world is idempotent: the temporary output is
 * created once per job (`prepared`), and chunks already published or written
 * are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include "shm/ring.h"
#include "daemon/formats/y4m.h"
#include "daemon/formats/png.h"
#include "daemon/producer/backend.h"
#include "daemon/base/log.h"
#include "daemon/formats/npy.h"
#include "daemon/base/fs.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

struct producer {
	struct egr_conf conf;
	struct egr_ring *ring;
	const struct egr_backend_ops *ops;
	void *be;
	int notify_fd;
	/* slots handed to the backend and not yet published (by slot index) */
	uint8_t *inflight;
	uint32_t nslots;
};

static void notify(struct producer *p)
{
	char b = 1;

	if (p->notify_fd >= 0 && write(p->notify_fd, &b, 1) < 0) {
		/* EAGAIN: the supervisor has wake-ups pending already */
	}
}

/* backend callback: may run on a backend thread */
static void on_publish(void *ctx, uint32_t slot, uint32_t first, uint32_t n, uint64_t bytes)
{
	struct producer *p = ctx;

	egr_ring_publish(p->ring, slot, first, n, bytes);
	__atomic_store_n(&p->inflight[slot], 0, __ATOMIC_RELEASE);
}

#ifdef EGR_TESTING
/*
 * Test-build fault hook: EGR_FAULT_PRODUCER_KILL_AT=N SIGKILLs this process
 * after its N-th publish-ready chunk, once (the file EGR_FAULT_KILL_ONCE
 * records that it happened, so the respawned producer lives).
 */
static void fault_maybe_die(uint32_t submitted)
{
	const char *at = getenv("EGR_FAULT_PRODUCER_KILL_AT");
	const char *once = getenv("EGR_FAULT_KILL_ONCE");

	if (!at || !once || (uint32_t)atoi(at) != submitted || access(once, F_OK) == 0)
		return;
	int fd = open(once, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	egr_warn("fault injection: producer SIGKILLs itself after chunk %u", submitted);
	raise(SIGKILL);
}
#endif

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

/* Create the temporary output: y4m header + full-size file, or an empty directory. */
static int prepare_output(struct egr_job_sh *j, char *err, size_t errlen)
{
	const char *tmp = j->tmp_path;
	int fd, rc;

	if (j->spec.format == EGR_FMT_PNG) {
		egr_fs_remove_tree(tmp);	/* a stale one from a crashed run */
		if (mkdir(tmp, 0755) < 0) {
			rc = -errno;
			egr_errf(err, errlen, "mkdir(\"%s\"): %s", tmp, strerror(errno));
			return rc;
		}
		return 0;
	}
	char hdr[128];
	int hl = egr_y4m_header(hdr, sizeof(hdr), j->width, j->height, j->spec.fps_num, j->spec.fps_den);
	if (hl < 0) {
		egr_errf(err, errlen, "y4m header does not fit");
		return -EINVAL;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", tmp, strerror(errno));
		return rc;
	}
	/* reserve every block now: a full disk fails the job before any decode */
	rc = posix_fallocate(fd, 0, (off_t)j->out_bytes);
#ifdef EGR_TESTING
	if (getenv("EGR_PROBE_NO_FALLOCATE"))	/* tests/bench/disk_probe.sh */
		rc = ftruncate(fd, 0) < 0 ? errno : EOPNOTSUPP;
#endif
	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = ftruncate(fd, (off_t)j->out_bytes) < 0 ? errno : 0;
	if (rc) {
		egr_errf(err, errlen, "fallocate(\"%s\", %llu bytes): %s", tmp,
			 (unsigned long long)j->out_bytes, strerror(rc));
		close(fd);
		unlink(tmp);
		return -rc;
	}
	if (pwrite(fd, hdr, (size_t)hl, 0) != hl) {
		rc = errno ? -errno : -EIO;
		egr_errf(err, errlen, "write(\"%s\", y4m header): %s", tmp, strerror(-rc));
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	j->header_bytes = (uint64_t)hl;
	return 0;
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

/*
 * Validate the latents against the decoder and the daemon's limits, and fill
 * the job's geometry and the backend's.  Nothing is allocated before this.
 */
static int plan_job(struct producer *p, struct egr_job_sh *j, const struct egr_npy *n,
		    struct egr_job_geom *g, char *err, size_t errlen)
{
	const struct egr_conf *c = &p->conf;
	const char *lat = j->spec.latents;
	uint64_t frames = n->shape[0], ch = n->shape[1], lh = n->shape[2], lw = n->shape[3];
	uint64_t w, h, pixels, fb, out, chunk;
	struct stat st;

	memset(g, 0, sizeof(*g));
	if (fstat(n->fd, &st) == 0 && (uint64_t)st.st_size > c->max_latent_bytes) {
		egr_errf(err, errlen, "latents \"%s\": %lld bytes, over [limits] max_latent_bytes = %llu",
			 lat, (long long)st.st_size, (unsigned long long)c->max_latent_bytes);
		return -EFBIG;
	}
	if (frames > c->max_frames) {
		egr_errf(err, errlen, "latents \"%s\": %llu frames, over [limits] max_frames = %llu", lat,
			 (unsigned long long)frames, (unsigned long long)c->max_frames);
		return -EFBIG;
	}
	if (lh > 65536 / EGR_L2R_SCALE || lw > 65536 / EGR_L2R_SCALE) {
		egr_errf(err, errlen, "latents \"%s\": latent size %llux%llu is absurd (output would exceed 65536 pixels a side)",
			 lat, (unsigned long long)lh, (unsigned long long)lw);
		return -EFBIG;
	}
	w = lw * EGR_L2R_SCALE;
	h = lh * EGR_L2R_SCALE;
	pixels = w * h;
	if (pixels > c->max_pixels) {
		egr_errf(err, errlen, "latents \"%s\": frames of %llux%llu = %llu pixels, over [limits] max_pixels = %llu",
			 lat, (unsigned long long)w, (unsigned long long)h, (unsigned long long)pixels,
			 (unsigned long long)c->max_pixels);
		return -EFBIG;
	}
	fb = egr_frame_bytes(j->spec.format, (uint32_t)w, (uint32_t)h);
	if (!mul_ok(fb + (j->spec.format == EGR_FMT_Y4M ? EGR_Y4M_FRAME_TAG_LEN : 0), frames, &out) ||
	    out > c->max_bytes) {
		egr_errf(err, errlen, "job would write %llu frames of %llu bytes, over [limits] max_bytes = %llu",
			 (unsigned long long)frames, (unsigned long long)fb,
			 (unsigned long long)c->max_bytes);
		return -EFBIG;
	}
	chunk = j->spec.chunk_frames;
	uint64_t slot_bytes = egr_ring_hdr(p->ring)->slot_bytes;
	if (fb > slot_bytes) {
		egr_errf(err, errlen, "a %llux%llu %s frame needs %llu bytes but [ring] slot_bytes is %llu: raise slot_bytes",
			 (unsigned long long)w, (unsigned long long)h, egr_job_format_name(j->spec.format),
			 (unsigned long long)fb, (unsigned long long)slot_bytes);
		return -EFBIG;
	}
	if (chunk * fb > slot_bytes)
		chunk = slot_bytes / fb;	/* a chunk must fit one slot */
	uint64_t chunks = (frames + chunk - 1) / chunk;
	if (chunks > egr_ring_hdr(p->ring)->max_chunks) {
		egr_errf(err, errlen, "job needs %llu chunks; the ring tracks %u per job: raise chunk_frames",
			 (unsigned long long)chunks, egr_ring_hdr(p->ring)->max_chunks);
		return -EFBIG;
	}

	g->format = j->spec.format;
	g->decoder = j->spec.decoder;
	g->dtype = n->dtype;
	g->frames = (uint32_t)frames;
	g->channels = (uint32_t)ch;
	g->lat_h = (uint32_t)lh;
	g->lat_w = (uint32_t)lw;
	g->width = (uint32_t)w;
	g->height = (uint32_t)h;
	g->chunk_frames = (uint32_t)chunk;
	g->lat_frame_bytes = n->frame_bytes;
	g->frame_bytes = fb;
	g->weights = j->spec.weights;
	if (j->spec.decoder == EGR_DEC_LATENT2RGB) {
		int rc = egr_frame_l2r_init_job(&g->l2r, (uint32_t)ch, &j->spec, err, errlen);
		if (rc)
			return rc;
	}

	if (!j->prepared) {
		/* geometry is published to workers before the first slot is */
		j->width = g->width;
		j->height = g->height;
		j->channels = g->channels;
		j->lat_h = g->lat_h;
		j->lat_w = g->lat_w;
		j->frames = g->frames;
		j->chunk_frames = g->chunk_frames;
		j->chunks_total = (uint32_t)chunks;
		j->frame_bytes = fb;
		j->out_bytes = j->spec.format == EGR_FMT_Y4M ? 0 : fb * frames;
		if (tmp_path_for(j->spec.output, j->name, j->tmp_path, sizeof(j->tmp_path)) < 0) {
			egr_errf(err, errlen, "output path \"%s\" is too long", j->spec.output);
			return -ENAMETOOLONG;
		}
		if (j->spec.format == EGR_FMT_Y4M) {
			char hdr[128];
			int hl = egr_y4m_header(hdr, sizeof(hdr), g->width, g->height, j->spec.fps_num,
						j->spec.fps_den);
			j->out_bytes = (uint64_t)hl + frames * (fb + EGR_Y4M_FRAME_TAG_LEN);
		}
		int rc = prepare_output(j, err, errlen);
		if (rc)
			return rc;
		__atomic_store_n(&j->prepared, 1, __ATOMIC_RELEASE);
	}
	return 0;
}

static void describe_nonfinite(const struct egr_job_geom *g, const struct egr_npy *n, uint64_t first,
			       size_t bad, char *err, size_t errlen, const char *path)
{
	uint64_t per = (uint64_t)g->channels * g->lat_h * g->lat_w;
	uint64_t f = first + bad / per, rem = bad % per;
	uint64_t c = rem / ((uint64_t)g->lat_h * g->lat_w), yx = rem % ((uint64_t)g->lat_h * g->lat_w);

	(void)n;
	egr_errf(err, errlen, "latents \"%s\": NaN or Inf at frame %llu, channel %llu, y %llu, x %llu: the latents are corrupt",
		 path, (unsigned long long)f, (unsigned long long)c,
		 (unsigned long long)(yx / g->lat_w), (unsigned long long)(yx % g->lat_w));
}

/*
 * Stage one chunk's latents: a backend input buffer, filled from the .npy,
 * checked for NaN/Inf.  Returns the buffer, or NULL with err set.
 */
static void *load_chunk(struct producer *p, const struct egr_job_sh *j, struct egr_npy *n,
			const struct egr_job_geom *g, uint32_t first, uint32_t nf, uint64_t *read_ns,
			char *err, size_t errlen)
{
	size_t bytes = (size_t)(nf * g->lat_frame_bytes), bad;
	void *in = p->ops->input_buffer(p->be, bytes, err, errlen);
	uint64_t t0 = egr_log_now_ns();

	if (!in)
		return NULL;
	if (egr_npy_read(n, first, nf, in, err, errlen))
		return NULL;
	*read_ns += egr_log_now_ns() - t0;
	if (egr_npy_check_finite(g->dtype, in, bytes / g->dtype, &bad) < 0) {
		describe_nonfinite(g, n, first, bad, err, errlen, j->spec.latents);
		return NULL;
	}
	return in;
}

/* Add one job run's producer-side numbers to the job's shared stats. */
static void add_stats(struct egr_job_sh *j, const struct egr_backend_stats *b, uint64_t read_ns,
		      uint64_t blocked_ns, uint64_t producer_ns)
{
	egr_stat_add(&j->st.read_ns, read_ns);
	egr_stat_add(&j->st.blocked_ns, blocked_ns);
	egr_stat_add(&j->st.producer_ns, producer_ns);
	egr_stat_add(&j->st.decode_ns, b->decode_ns);
	egr_stat_add(&j->st.gpu_kernel_ns, b->gpu_kernel_ns);
	egr_stat_add(&j->st.gpu_wall_ns, b->gpu_wall_ns);
	egr_stat_add(&j->st.d2h_bytes, b->d2h_bytes);
	egr_stat_add(&j->st.d2h_ns, b->d2h_ns);
}

/*
 * Open the latents, plan the job (limits, geometry, temporary output) and
 * start it on the backend: the set-up every pipeline shares.
 */
static int begin_job(struct producer *p, struct egr_job_sh *j, struct egr_npy *n,
		     struct egr_job_geom *g, char *err, size_t errlen)
{
	int rc = egr_npy_open_as(j->spec.latents, j->spec.layout, j->spec.latents_key, n, err, errlen);

	if (!rc)
		rc = plan_job(p, j, n, g, err, errlen);
	if (!rc)
		rc = p->ops->job_begin(p->be, g, err, errlen);
	return rc;
}

static void run_job(struct producer *p, uint32_t idx)
{
	struct egr_job_sh *j = egr_ring_job(p->ring, idx);
	struct egr_backend_stats bst = { 0 };
	struct egr_job_geom g;
	struct egr_npy n = { .fd = -1 };
	char err[EGR_ERR_MAX];
	uint64_t blocked = 0, read_ns = 0, t_first = 0;
	uint32_t submitted = 0;
	int rc, began = 0, all = 0;

	egr_info("job %s: %s%s", j->name, j->producer_restarts ? "resuming after a producer restart: " : "",
		 j->spec.latents);
	snprintf(j->backend, sizeof(j->backend), "%s", p->ops->name);
	rc = begin_job(p, j, &n, &g, err, sizeof(err));
	if (rc)
		goto fail;
	began = 1;
	t_first = egr_log_now_ns();
	for (uint32_t chunk = 0; chunk < j->chunks_total; chunk++) {
		uint32_t first = chunk * g.chunk_frames;
		uint32_t nf = g.frames - first < g.chunk_frames ? g.frames - first : g.chunk_frames;
		struct egr_chunk ck = { .first_frame = first, .nframes = nf };

		if (stop || __atomic_load_n(&j->state, __ATOMIC_ACQUIRE) != EGR_JOB_ACTIVE)
			goto abort;
		if (!egr_ring_chunk_needed(p->ring, idx, chunk))
			continue;	/* resumed job: already published or written */
		void *in = load_chunk(p, j, &n, &g, first, nf, &read_ns, err, sizeof(err));
		if (!in) {
			rc = -EINVAL;
			goto fail;
		}
		/* backpressure: blocks while every slot is full */
		rc = egr_ring_acquire(p->ring, idx, chunk, &ck.slot, &blocked, &stop);
		if (rc == -ECANCELED)
			goto abort;
		ck.dst = egr_ring_slot_data(p->ring, ck.slot);
		ck.latents = in;
		__atomic_store_n(&p->inflight[ck.slot], 1, __ATOMIC_RELEASE);
		rc = p->ops->submit(p->be, &ck, err, sizeof(err));
		if (rc)
			goto fail;
		submitted++;
#ifdef EGR_TESTING
		fault_maybe_die(submitted);
#endif
	}
	all = 1;
abort:
	rc = p->ops->job_end(p->be, !all, &bst, err, sizeof(err));
	began = 0;
	if (rc)
		goto fail;
	goto out;
fail:
	egr_warn("job %s: %s", j->name, err);
	egr_ring_job_fail(p->ring, idx, err);
	if (began)
		p->ops->job_end(p->be, 1, &bst, err, sizeof(err));
	all = 0;
out:
	/* a slot handed to the backend but never published goes back */
	for (uint32_t s = 0; s < p->nslots; s++) {
		if (__atomic_load_n(&p->inflight[s], __ATOMIC_ACQUIRE)) {
			p->inflight[s] = 0;
			egr_ring_abandon(p->ring, s);
		}
	}
	if (t_first)
		add_stats(j, &bst, read_ns, blocked, egr_log_now_ns() - t_first);
	egr_npy_close(&n);
	egr_ring_job_release(p->ring, idx, all);
	notify(p);
}

/*
 * pipeline = naive: the loop every user starts with, kept as the baseline
 * the benchmark compares against.  One process, one stream: decode a chunk,
 * cudaMemcpy it into pageable memory, pwrite it, repeat; no ring slots, no
 * workers, no overlap.  y4m only.
 */
static int naive_write(int fd, const struct egr_job_sh *j, const uint8_t *buf, uint32_t first,
		       uint32_t nf, char *err, size_t errlen)
{
	for (uint32_t f = 0; f < nf; f++) {
		struct iovec iov[2] = { { (void *)EGR_Y4M_FRAME_TAG, EGR_Y4M_FRAME_TAG_LEN },
					{ (void *)(buf + f * j->frame_bytes), j->frame_bytes } };
		off_t off = (off_t)egr_y4m_frame_off(j->header_bytes, j->frame_bytes, first + f);
		size_t left = EGR_Y4M_FRAME_TAG_LEN + j->frame_bytes;
		int idx = 0;

		while (left) {
			ssize_t w = pwritev(fd, iov + idx, 2 - idx, off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int rc = -errno;
				egr_errf(err, errlen, "pwritev(\"%s\") at offset %lld: %s", j->tmp_path,
					 (long long)off, strerror(errno));
				return rc;
			}
			off += w;
			left -= (size_t)w;
			while (w > 0) {	/* short write: advance the iovec */
				size_t take = (size_t)w < iov[idx].iov_len ? (size_t)w : iov[idx].iov_len;
				iov[idx].iov_base = (char *)iov[idx].iov_base + take;
				iov[idx].iov_len -= take;
				w -= (ssize_t)take;
				if (!iov[idx].iov_len && idx < 1)
					idx++;
			}
		}
	}
	return 0;
}

static void run_job_naive(struct producer *p, uint32_t idx)
{
	struct egr_job_sh *j = egr_ring_job(p->ring, idx);
	struct egr_backend_stats bst = { 0 };
	struct egr_job_geom g;
	struct egr_npy n = { .fd = -1 };
	char err[EGR_ERR_MAX];
	uint8_t *buf = NULL;
	uint64_t read_ns = 0, write_ns = 0, t_first;
	int rc, fd = -1, began = 0;

	snprintf(j->backend, sizeof(j->backend), "%s-naive", p->ops->name);
	if (j->spec.format != EGR_FMT_Y4M) {
		egr_errf(err, sizeof(err), "pipeline = naive (a benchmark baseline) writes format = y4m only");
		rc = -ENOTSUP;
		goto fail;
	}
	if ((rc = begin_job(p, j, &n, &g, err, sizeof(err))))
		goto fail;
	began = 1;
	buf = malloc((size_t)(g.chunk_frames * g.frame_bytes));	/* pageable on purpose */
	fd = open(j->tmp_path, O_WRONLY | O_CLOEXEC);
	if (!buf || fd < 0) {
		rc = buf ? -errno : -ENOMEM;
		egr_errf(err, sizeof(err), "open(\"%s\"): %s", j->tmp_path, strerror(-rc));
		goto fail;
	}
	t_first = egr_log_now_ns();
	for (uint32_t chunk = 0; chunk < j->chunks_total; chunk++) {
		uint32_t first = chunk * g.chunk_frames;
		uint32_t nf = g.frames - first < g.chunk_frames ? g.frames - first : g.chunk_frames;
		struct egr_chunk ck = { .first_frame = first, .nframes = nf, .dst = buf };

		if (stop) {
			rc = -ECANCELED;
			egr_errf(err, sizeof(err), "stopped");
			goto fail;
		}
		ck.latents = load_chunk(p, j, &n, &g, first, nf, &read_ns, err, sizeof(err));
		if (!ck.latents) {
			rc = -EINVAL;
			goto fail;
		}
		if ((rc = egr_cuda_naive_decode(p->be, &ck, err, sizeof(err))))
			goto fail;
		uint64_t t0 = egr_log_now_ns();
		if ((rc = naive_write(fd, j, buf, first, nf, err, sizeof(err))))
			goto fail;
		write_ns += egr_log_now_ns() - t0;
	}
	uint64_t t0 = egr_log_now_ns();
	if (fsync(fd) < 0 || rename(j->tmp_path, j->spec.output) < 0) {
		rc = -errno;
		egr_errf(err, sizeof(err), "fsync/rename(\"%s\", \"%s\"): %s", j->tmp_path, j->spec.output,
			 strerror(errno));
		goto fail;
	}
	egr_stat_add(&j->st.finalize_ns, egr_log_now_ns() - t0);
	p->ops->job_end(p->be, 0, &bst, err, sizeof(err));
	add_stats(j, &bst, read_ns, 0, egr_log_now_ns() - t_first);
	egr_stat_add(&j->st.write_ns, write_ns);
	egr_stat_add(&j->st.bytes_written, j->out_bytes);
	egr_ring_job_finish(p->ring, idx, 1, NULL);
	goto out;
fail:
	egr_warn("job %s: %s", j->name, err);
	egr_ring_job_fail(p->ring, idx, err);
	if (began)
		p->ops->job_end(p->be, 1, &bst, err, sizeof(err));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	egr_npy_close(&n);
	egr_ring_job_release(p->ring, idx, 1);
	notify(p);
}

static int open_backend(struct producer *p)
{
	struct egr_backend_env env = {
		.conf = &p->conf,
		.data_base = egr_ring_data_base(p->ring),
		.data_len = egr_ring_data_len(p->ring),
		.publish = on_publish,
		.ctx = p,
	};
	const char *want = p->conf.backend;
	char err[1024];
	int rc;

	if (strcmp(want, "cpu") != 0) {
		rc = egr_backend_cuda.open(&env, &p->be, err, sizeof(err));
		if (rc == 0) {
			p->ops = &egr_backend_cuda;
			return 0;
		}
		if (strcmp(want, "cuda") == 0) {
			egr_err("backend = cuda: %s", err);
			return rc == -ENODEV ? EGR_EXIT_UNAVAILABLE : EGR_EXIT_SOFTWARE;
		}
		egr_notice("backend = auto: no usable GPU (%s); using the cpu backend", err);
	}
	rc = egr_backend_cpu.open(&env, &p->be, err, sizeof(err));
	if (rc) {
		egr_err("backend = cpu: %s", err);
		return EGR_EXIT_SOFTWARE;
	}
	p->ops = &egr_backend_cpu;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "notify-fd", required_argument, NULL, 'n' },
		{ "index", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct producer p = { .notify_fd = -1 };
	const char *conf = NULL, *shm = NULL;
	struct sigaction sa;
	char err[1024];
	int opt, rc;

	egr_log_init("producer");
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			shm = optarg;
			break;
		case 'n':
			p.notify_fd = atoi(optarg);
			break;
		case 'i':
			break;
		default:
			return EGR_EXIT_USAGE;
		}
	}
	if (!conf || !shm) {
		fprintf(stderr, "usage: egressd-producer -c CONF --shm NAME [--notify-fd N] (started by egressd)\n");
		return EGR_EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (egr_conf_load(conf, &p.conf, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_CONFIG;
	}
	egr_log_set_level(egr_conf_log_level(&p.conf));
	if (egr_ring_attach(shm, &p.ring, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_OSERR;
	}
	p.nslots = egr_ring_hdr(p.ring)->nslots;
	p.inflight = calloc(p.nslots, 1);
	if (!p.inflight) {
		egr_err("out of memory");
		rc = EGR_EXIT_OSERR;
		goto out;
	}
	rc = open_backend(&p);
	if (rc)
		goto out;
	int naive = strcmp(p.conf.pipeline, "naive") == 0;
	if (naive && p.ops != &egr_backend_cuda) {
		egr_err("pipeline = naive is the CUDA baseline loop: it needs backend = cuda (backend is %s)",
			p.ops->name);
		rc = EGR_EXIT_CONFIG;
		goto out;
	}
	egr_info("ready: backend %s, pipeline %s", p.ops->name, p.conf.pipeline);
	while (!stop) {
		int job = egr_ring_job_next(p.ring, 1000, &stop);
		if (job >= 0 && naive)
			run_job_naive(&p, (uint32_t)job);
		else if (job >= 0)
			run_job(&p, (uint32_t)job);
		else if (job == -ECANCELED)
			break;
	}
	rc = EGR_EXIT_OK;
out:
	if (p.ops)
		p.ops->close(p.be);	/* unregisters the slots before the unmap */
	egr_ring_close(p.ring);
	free(p.inflight);
	return rc;
}
