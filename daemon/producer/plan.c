/*
 * plan: a job's set-up, shared by both pipelines (producer.c, naive.c):
 * check the latents against the decoder and the daemon's limits, fix the
 * job's layout, create its temporary output once, stage chunks of latents.
 * Nothing is allocated for the latents before the limits are checked (a
 * stateful decoder's probe loads its weights, whose size the file bounds).
 *
 * Layout of a stateful decoder's job (taehv, wan_vae): its probe gives the
 * output size and the frame rule (latent frames [0, b) -> output frames
 * [0, b * time_up - time_trim)), so every chunk's output frames are fixed
 * before any decode: the y4m offsets and png names of chunk c are known,
 * and the writers stay parallel.  chunk_frames counts latent frames; a
 * chunk's output (at most chunk_frames * time_up frames) must fit a slot,
 * so chunk_frames shrinks until it does.
 */
#include <ctype.h>
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
	return 0;
}

/* The decoded frames against [limits]: what the decoder makes of the latents (g, filled by decoder_output). */
static int check_frame_limits(const struct egr_conf *c, const char *lat, const struct egr_job_geom *g, char *err,
			      size_t errlen)
{
	uint64_t w = g->width, h = g->height;

	if (g->frames > c->max_frames) {
		egr_errf(err, errlen, "latents \"%s\": %u latent frames decode to %u frames, over [limits] max_frames = %llu",
			 lat, g->lat_frames, g->frames, (unsigned long long)c->max_frames);
		return -EFBIG;
	}
	if (w > 65536 || h > 65536) {
		egr_errf(err, errlen, "latents \"%s\": decoder = %s makes %llux%llu frames (over 65536 pixels a side)",
			 lat, egr_job_decoder_name(g->decoder), (unsigned long long)w, (unsigned long long)h);
		return -EFBIG;
	}
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
	uint64_t fb = l->frame_bytes, chunk = j->spec.chunk_frames, chunks, up = l->time_up ? l->time_up : 1;
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
	if (up * fb > info.slot_bytes) {
		egr_errf(err, errlen, "decoder = %s makes %llu frames of one latent frame, %llu bytes, but [ring] slot_bytes is %llu: raise slot_bytes",
			 egr_job_decoder_name(j->spec.decoder), (unsigned long long)up, (unsigned long long)(up * fb),
			 (unsigned long long)info.slot_bytes);
		return -EFBIG;
	}
	if (chunk * up * fb > info.slot_bytes)
		chunk = info.slot_bytes / (up * fb);	/* a chunk's output must fit one slot */
	chunks = (l->lat_frames + chunk - 1) / chunk;
	if (chunks > info.max_chunks) {
		egr_errf(err, errlen, "job needs %llu chunks; the ring tracks %u per job: raise chunk_frames",
			 (unsigned long long)chunks, info.max_chunks);
		return -EFBIG;
	}
	l->chunk_frames = (uint32_t)chunk;
	l->chunks_total = (uint32_t)chunks;
	return 0;
}

/*
 * What the decoder makes of the latents: output size, frames and the frame
 * rule into g (its input fields filled from the job).  latent2rgb and taesd:
 * x8, a frame per latent frame; a stateful decoder: its backend's probe.
 */
static int decoder_output(struct producer *p, const struct egr_job_view *j, const struct egr_npy *n,
			  const struct egr_job_inputs *in, struct egr_job_geom *g, char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->format = egr_output_pixels(j->spec.format);	/* mp4, mkv, null: I420 like y4m */
	g->decoder = j->spec.decoder;
	g->dtype = n->dtype;
	g->lat_frames = (uint32_t)n->shape[0];
	g->channels = (uint32_t)n->shape[1];
	g->lat_h = (uint32_t)n->shape[2];
	g->lat_w = (uint32_t)n->shape[3];
	g->lat_frame_bytes = n->frame_bytes;
	g->weights = in->weights;
	g->weights_key = in->weights_key;
	g->taehv_model = j->spec.taehv_model;
	g->wan_denormalize = j->spec.wan_denormalize;
	g->vae_config = in->vae_config[0] ? in->vae_config : NULL;
	if (!egr_decoder_stateful(g->decoder)) {
		g->frames = g->lat_frames;
		g->width = g->lat_w * EGR_L2R_SCALE;
		g->height = g->lat_h * EGR_L2R_SCALE;
		g->time_up = 1;
		return 0;
	}
	if (!p->ops->probe) {
		egr_errf(err, errlen, "decoder = %s needs a backend that decodes video (cpu, or cuda in a CUDA build); this producer's backend is %s: set backend = cpu in egressd.ini for such jobs",
			 egr_job_decoder_name(g->decoder), p->ops->name);
		return -ENOTSUP;
	}
	return p->ops->probe(p->be, g, err, errlen);
}

/* The layout's decoder fields, from the decoder's geometry. */
static void layout_from_geom(struct egr_job_layout *l, const struct egr_job_geom *g)
{
	l->frames = g->frames;
	l->lat_frames = g->lat_frames;
	l->time_up = g->time_up;
	l->time_trim = g->time_trim;
	l->channels = g->channels;
	l->lat_h = g->lat_h;
	l->lat_w = g->lat_w;
	l->width = g->width;
	l->height = g->height;
}

/*
 * The backend's geometry completed by the layout in force (a resumed job
 * keeps its own: it must be what this decoder makes, or the output would mix
 * two plans).
 */
static int geom_from_layout(const struct egr_job_view *j, const struct egr_job_layout *l, struct egr_job_geom *g,
			    char *err, size_t errlen)
{
	struct egr_job_layout want = *l;

	layout_from_geom(&want, g);
	if (memcmp(&want, l, sizeof(want)) != 0) {
		egr_errf(err, errlen, "the job was planned as %u frames of %ux%u; its decoder now makes %u frames of %ux%u (weights or latents changed since?)",
			 l->frames, l->width, l->height, g->frames, g->width, g->height);
		return -ESTALE;
	}
	g->chunk_frames = l->chunk_frames;
	g->frame_bytes = l->frame_bytes;
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

	if (rc || (rc = decoder_output(p, j, n, in, g, err, errlen)) ||
	    (rc = check_frame_limits(&p->conf, j->spec.latents, g, err, errlen)))
		return rc;
	layout_from_geom(&l, g);
	if ((rc = egr_output_plan(&j->spec, j->name, l.width, l.height, l.frames, &l, err, errlen)) ||
	    (rc = check_output_limits(p, j, &l, err, errlen)))
		return rc;
	egr_ring_job_plan(p->ring, j->index, &l, p->backend_name, p->gpu);
	j->lay = l;	/* the layout in force: a resumed job keeps its own */
	if ((rc = geom_from_layout(j, &l, g, err, errlen)))
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

/*
 * Replace each "/proc/self/fd/N" in err by the user's path: messages name
 * what the user wrote.  N must be whole ("/proc/self/fd/3" is no match in
 * "/proc/self/fd/31"), and an input never opened (fdpath "") matches
 * nothing: strstr finds "" at the start of any message, which once put the
 * path in front of every refusal that came before the open.
 */
static void err_unmask(char *err, size_t errlen, const char *fdpath, const char *user)
{
	size_t fl = strlen(fdpath), ul = strlen(user);
	char *at = err, tail[EGR_ERR_MAX];

	while (fl && (at = strstr(at, fdpath))) {
		if (isdigit((unsigned char)at[fl])) {
			at += fl;
			continue;
		}
		snprintf(tail, sizeof(tail), "%s", at + fl);
		snprintf(at, errlen - (size_t)(at - err), "%s%s", user, tail);
		if ((size_t)(at - err) + ul >= errlen - 1)
			break;	/* cut off: nothing after it */
		at += ul;
	}
}

/* One more input through the roots (what: "latents", "weights", ...); fdpath gets "/proc/self/fd/N". */
static int open_input(struct producer *p, struct egr_job_inputs *in, const char *what, const char *path,
		      char *fdpath, size_t fdlen, char *err, size_t errlen)
{
	int rc = egr_safepath_open_input(&p->roots, what, path, &in->f[in->n], err, errlen);

	if (rc)
		return rc;
	snprintf(fdpath, fdlen, "/proc/self/fd/%d", in->f[in->n].fd);
	in->n++;
	return 0;
}

/* The job's inputs through the roots: latents, weights and vae_config for decoders that take them. */
static int open_inputs(struct producer *p, const struct egr_job_view *j, struct egr_job_inputs *in, char *err,
		       size_t errlen)
{
	const struct stat *st;
	int rc;

	memset(in, 0, sizeof(*in));
	if ((rc = open_input(p, in, "latents", j->spec.latents, in->latents, sizeof(in->latents), err, errlen)))
		return rc;
	if (j->spec.weights[0]) {
		if ((rc = open_input(p, in, "weights", j->spec.weights, in->weights, sizeof(in->weights), err,
				     errlen)))
			return rc;
		st = &in->f[in->n - 1].st;
		snprintf(in->weights_key, sizeof(in->weights_key),
			 "\"%s\" (dev %llu, inode %llu, %lld bytes, mtime %lld.%09ld)", j->spec.weights,
			 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (long long)st->st_size,
			 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	}
	if (j->spec.vae_config[0])
		return open_input(p, in, "vae_config", j->spec.vae_config, in->vae_config, sizeof(in->vae_config),
				  err, errlen);
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
		if (in->weights[0])
			err_unmask(err, errlen, in->weights, j->spec.weights);
		if (in->vae_config[0])
			err_unmask(err, errlen, in->vae_config, j->spec.vae_config);
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
	int rc;

	if (!in)
		return NULL;
	rc = egr_loader_read(p->loader, n, first, nf, in, &bad, err, errlen);
	*read_ns += egr_log_now_ns() - t0;
	if (rc == -EDOM)
		describe_nonfinite(g, first, bad, err, errlen, j->spec.latents);
	return rc ? NULL : in;
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
