/*
 * plan: a job's set-up, shared by both pipelines (producer.c, naive.c):
 * check the latents against the decoder and the daemon's limits, fix the
 * job's layout, create its temporary output once, stage chunks of latents.
 * Nothing is allocated before the limits are checked.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/base/log.h"
#include "daemon/producer/producer.h"
#include "workers/output.h"

/* The latents file and its frame size against [limits]. */
static int check_input_limits(const struct egr_conf *c, const char *lat, const struct egr_npy *n, char *err,
			      size_t errlen)
{
	uint64_t frames = n->shape[0], lh = n->shape[2], lw = n->shape[3];
	struct stat st;

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
	uint64_t w = lw * EGR_L2R_SCALE, h = lh * EGR_L2R_SCALE;
	if (w * h > c->max_pixels) {
		egr_errf(err, errlen, "latents \"%s\": frames of %llux%llu = %llu pixels, over [limits] max_pixels = %llu",
			 lat, (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
			 (unsigned long long)c->max_pixels);
		return -EFBIG;
	}
	return 0;
}

/* Output bytes against [limits] max_bytes; chunks against the ring's slots. */
static int check_output_limits(struct producer *p, const struct egr_job_view *j, struct egr_job_layout *l,
			       char *err, size_t errlen)
{
	const struct egr_conf *c = &p->conf;
	uint64_t fb = l->frame_bytes, chunk = j->spec.chunk_frames, chunks;
	struct egr_ring_info info;

	egr_ring_info(p->ring, &info);
	/* no overflow: frames and frame size passed check_input_limits */
	if (l->out_bytes > c->max_bytes) {
		egr_errf(err, errlen, "job would write %llu frames of %llu bytes, over [limits] max_bytes = %llu",
			 (unsigned long long)l->frames, (unsigned long long)fb,
			 (unsigned long long)c->max_bytes);
		return -EFBIG;
	}
	if (fb > info.slot_bytes) {
		egr_errf(err, errlen, "a %ux%u %s frame needs %llu bytes but [ring] slot_bytes is %llu: raise slot_bytes",
			 l->width, l->height, egr_job_format_name(j->spec.format), (unsigned long long)fb,
			 (unsigned long long)info.slot_bytes);
		return -EFBIG;
	}
	if (chunk * fb > info.slot_bytes)
		chunk = info.slot_bytes / fb;	/* a chunk must fit one slot */
	chunks = (l->frames + chunk - 1) / chunk;
	if (chunks > info.max_chunks) {
		egr_errf(err, errlen, "job needs %llu chunks; the ring tracks %u per job: raise chunk_frames",
			 (unsigned long long)chunks, info.max_chunks);
		return -EFBIG;
	}
	l->chunk_frames = (uint32_t)chunk;
	l->chunks_total = (uint32_t)chunks;
	return 0;
}

/* The backend's geometry, from the latents and the job's layout. */
static int fill_geom(const struct egr_job_view *j, const struct egr_npy *n, const struct egr_job_layout *l,
		     const struct egr_job_inputs *in, struct egr_job_geom *g, char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->format = egr_output_pixels(j->spec.format);	/* null: y4m's frames, dropped by the workers */
	g->decoder = j->spec.decoder;
	g->dtype = n->dtype;
	g->frames = l->frames;
	g->channels = l->channels;
	g->lat_h = l->lat_h;
	g->lat_w = l->lat_w;
	g->width = l->width;
	g->height = l->height;
	g->chunk_frames = l->chunk_frames;
	g->lat_frame_bytes = n->frame_bytes;
	g->frame_bytes = l->frame_bytes;
	g->weights = in->weights;
	g->weights_key = in->weights_key;
	if (j->spec.decoder != EGR_DEC_LATENT2RGB)
		return 0;
	return egr_frame_l2r_init_job(&g->l2r, l->channels, &j->spec, err, errlen);
}

/*
 * A spool job's temporary output, journalled before it exists (its name)
 * and once it does (its inode), so a supervisor killed at any point leaves
 * nothing the next start cannot account for (workers/output.h).  --oneshot
 * jobs live outside the spool and have no journal: their supervisor cleans
 * up itself.
 */
static int prepare_output(struct producer *p, const struct egr_job_view *j, struct egr_job_layout *l,
			  const struct egr_job_inputs *in, char *err, size_t errlen)
{
	char active[EGR_PATH_MAX], journal[EGR_PATH_MAX];
	int rc, n = snprintf(active, sizeof(active), "%s/active/", p->conf.spool);
	int spooled = n > 0 && (size_t)n < sizeof(active) && strncmp(j->path, active, (size_t)n) == 0 &&
		      egr_output_journal_path(j->path, journal, sizeof(journal)) == 0;

	if (spooled && (rc = egr_output_journal_write(journal, &j->spec, l, err, errlen)))
		return rc;
	if ((rc = egr_output_prepare(&p->roots, &j->spec, l, in->f, in->n, err, errlen)))
		return rc;
	return spooled ? egr_output_journal_write(journal, &j->spec, l, err, errlen) : 0;
}

/*
 * Validate, fix the layout (write-ahead: recorded in the ring before the
 * temporary output exists) and create the temporary output once per job.
 */
static int plan_job(struct producer *p, struct egr_job_view *j, const struct egr_npy *n,
		    const struct egr_job_inputs *in, struct egr_job_geom *g, char *err, size_t errlen)
{
	struct egr_job_layout l = { 0 };
	int rc = check_input_limits(&p->conf, j->spec.latents, n, err, errlen);

	if (rc)
		return rc;
	l.frames = (uint32_t)n->shape[0];
	l.channels = (uint32_t)n->shape[1];
	l.lat_h = (uint32_t)n->shape[2];
	l.lat_w = (uint32_t)n->shape[3];
	l.width = l.lat_w * EGR_L2R_SCALE;
	l.height = l.lat_h * EGR_L2R_SCALE;
	if ((rc = egr_output_plan(&j->spec, j->name, l.width, l.height, l.frames, &l, err, errlen)) ||
	    (rc = check_output_limits(p, j, &l, err, errlen)))
		return rc;
	egr_ring_job_plan(p->ring, j->index, &l, p->backend_name, p->gpu);
	j->lay = l;	/* the layout in force: a resumed job keeps its own */
	if ((rc = fill_geom(j, n, &l, in, g, err, errlen)))
		return rc;
	if (!j->prepared) {
		if ((rc = prepare_output(p, j, &l, in, err, errlen)))
			return rc;
		egr_ring_job_prepared(p->ring, j->index, &l);
		j->lay = l;
		j->prepared = 1;
	}
	return 0;
}

void egr_producer_inputs_close(struct egr_job_inputs *in)
{
	for (size_t i = 0; i < in->n; i++)
		egr_safepath_file_close(&in->f[i]);
	in->n = 0;
}

/* Replace the first "/proc/self/fd/N" in err by the user's path: messages name what the user wrote. */
static void err_unmask(char *err, size_t errlen, const char *fdpath, const char *user)
{
	char *at = strstr(err, fdpath), tail[EGR_ERR_MAX];

	if (!at)
		return;
	snprintf(tail, sizeof(tail), "%s", at + strlen(fdpath));
	snprintf(at, errlen - (size_t)(at - err), "%s%s", user, tail);
}

/* The job's inputs through the roots: latents, and weights for decoders that take them. */
static int open_inputs(struct producer *p, const struct egr_job_view *j, struct egr_job_inputs *in, char *err,
		       size_t errlen)
{
	const struct stat *st;
	int rc;

	memset(in, 0, sizeof(*in));
	if ((rc = egr_safepath_open_input(&p->roots, "latents", j->spec.latents, &in->f[0], err, errlen)))
		return rc;
	in->n = 1;
	snprintf(in->latents, sizeof(in->latents), "/proc/self/fd/%d", in->f[0].fd);
	if (!j->spec.weights[0])
		return 0;
	if ((rc = egr_safepath_open_input(&p->roots, "weights", j->spec.weights, &in->f[1], err, errlen)))
		return rc;
	in->n = 2;
	st = &in->f[1].st;
	snprintf(in->weights, sizeof(in->weights), "/proc/self/fd/%d", in->f[1].fd);
	snprintf(in->weights_key, sizeof(in->weights_key), "\"%s\" (dev %llu, inode %llu, %lld bytes, mtime %lld.%09ld)",
		 j->spec.weights, (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
		 (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	return 0;
}

int egr_producer_begin_job(struct producer *p, struct egr_job_view *j, struct egr_npy *n,
			   struct egr_job_geom *g, struct egr_job_inputs *in, char *err, size_t errlen)
{
	int rc = open_inputs(p, j, in, err, errlen);

	if (!rc)
		rc = egr_npy_open_as(in->latents, j->spec.layout, j->spec.latents_key, n, err, errlen);
	if (!rc)
		rc = plan_job(p, j, n, in, g, err, errlen);
	if (!rc)
		rc = p->ops->job_begin(p->be, g, err, errlen);
	if (rc) {
		err_unmask(err, errlen, in->latents, j->spec.latents);
		if (in->n > 1)
			err_unmask(err, errlen, in->weights, j->spec.weights);
	}
	return rc;
}

static void describe_nonfinite(const struct egr_job_geom *g, uint64_t first, size_t bad, char *err,
			       size_t errlen, const char *path)
{
	uint64_t per = (uint64_t)g->channels * g->lat_h * g->lat_w;
	uint64_t f = first + bad / per, rem = bad % per;
	uint64_t c = rem / ((uint64_t)g->lat_h * g->lat_w), yx = rem % ((uint64_t)g->lat_h * g->lat_w);

	egr_errf(err, errlen, "latents \"%s\": NaN or Inf at frame %llu, channel %llu, y %llu, x %llu: the latents are corrupt",
		 path, (unsigned long long)f, (unsigned long long)c,
		 (unsigned long long)(yx / g->lat_w), (unsigned long long)(yx % g->lat_w));
}

void *egr_producer_load_chunk(struct producer *p, const struct egr_job_view *j, struct egr_npy *n,
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
		describe_nonfinite(g, first, bad, err, errlen, j->spec.latents);
		return NULL;
	}
	return in;
}

void egr_producer_add_stats(struct producer *p, uint32_t job, const struct egr_backend_stats *b,
			    uint64_t read_ns, uint64_t blocked_ns, uint64_t producer_ns)
{
	struct egr_job_stats *st = egr_ring_job_stats(p->ring, job);

	egr_stat_add(&st->read_ns, read_ns);
	egr_stat_add(&st->blocked_ns, blocked_ns);
	egr_stat_add(&st->producer_ns, producer_ns);
	egr_stat_add(&st->decode_ns, b->decode_ns);
	egr_stat_add(&st->gpu_kernel_ns, b->gpu_kernel_ns);
	egr_stat_add(&st->gpu_wall_ns, b->gpu_wall_ns);
	egr_stat_add(&st->d2h_bytes, b->d2h_bytes);
	egr_stat_add(&st->d2h_ns, b->d2h_ns);
}
