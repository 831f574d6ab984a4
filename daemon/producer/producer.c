/*
 * egressd-producer: takes queued jobs from the ring, reads their latents,
 * decodes them chunk by chunk through a backend (cpu or cuda) straight into
 * ring slots, and publishes each slot once its bytes are complete.
 *
 * Started by the supervisor: egressd-producer -c CONF --shm NAME --notify-fd N.
 * A job it dies on is resumed by its successor (ring.h), so everything here
 * that touches the outside world is idempotent: the temporary output is
 * created once per job (`prepared`, plan.c), and chunks already published or
 * written are skipped — but for a stateful decoder (taehv, wan_vae), which
 * cannot start mid-video: it decodes those again without publishing them
 * (replay, backend.h) to rebuild its state, up to the last chunk still
 * needed.  pipeline = naive runs naive.c's loop instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/args.h"
#include "daemon/base/log.h"
#include "daemon/producer/producer.h"

volatile sig_atomic_t egr_producer_stop;
static volatile sig_atomic_t reload_conf;

static void on_term(int sig)
{
	if (sig == SIGHUP)
		reload_conf = 1;
	else
		egr_producer_stop = 1;
}

/* SIGHUP (forwarded by the supervisor): the reloadable keys, limits among them, apply from the next job on. */
static void reload(struct producer *p, const char *path)
{
	struct egr_conf next;
	char err[1024];

	reload_conf = 0;
	if (egr_conf_load(path, &next, err, sizeof(err)) < 0) {
		egr_warn("SIGHUP: %s; keeping the settings in force", err);
		return;
	}
	egr_conf_reload(&p->conf, &next, NULL, 0);	/* the supervisor names what it refused */
	egr_log_set_level(egr_conf_log_level(&p->conf));
}

void egr_producer_notify(struct producer *p)
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
 * The chunks to submit: those still needed (a resumed job skips chunks
 * already published or written) — for a stateful decoder, every chunk up to
 * the last one needed, the others as replays.  Returns the count to loop
 * over (0: nothing left to decode).
 */
static uint32_t chunks_to_submit(struct producer *p, const struct egr_job_view *j, const struct egr_job_geom *g)
{
	uint32_t end = j->lay.chunks_total;

	if (!egr_decoder_stateful(g->decoder))
		return end;
	while (end && !egr_ring_chunk_needed(p->ring, j->index, end - 1))
		end--;
	return end;
}

/* Hand one loaded chunk to the backend: into a slot it will publish, or as a replay. */
static int submit_one(struct producer *p, uint32_t idx, uint32_t chunk, struct egr_chunk *ck, uint64_t *blocked,
		      char *err, size_t errlen)
{
	int rc;

	if (!ck->replay) {
		/* backpressure: blocks while every slot is full */
		rc = egr_ring_acquire(p->ring, idx, chunk, &ck->slot, blocked, &egr_producer_stop);
		if (rc == -ECANCELED)
			return rc;
		ck->dst = egr_ring_slot_data(p->ring, ck->slot);
		__atomic_store_n(&p->inflight[ck->slot], 1, __ATOMIC_RELEASE);
	}
	rc = p->ops->submit(p->be, ck, err, errlen);
	return rc == -ECANCELED ? -EIO : rc;
}

/*
 * Decode every chunk still needed into ring slots.  0 when all were
 * submitted, -ECANCELED when told to stop (or the job failed meanwhile),
 * else -errno with err set.
 */
static int submit_chunks(struct producer *p, const struct egr_job_view *j, struct egr_npy *n,
			 const struct egr_job_geom *g, uint64_t *blocked, uint64_t *read_ns, char *err,
			 size_t errlen)
{
	uint32_t idx = j->index, submitted = 0, replayed = 0, end = chunks_to_submit(p, j, g);
	int rc;

	for (uint32_t chunk = 0; chunk < end; chunk++) {
		struct egr_chunk ck = { 0 };

		egr_layout_chunk(&j->lay, chunk, &ck.lat_first, &ck.lat_n, &ck.first_frame, &ck.nframes);
		if (egr_producer_stop || egr_ring_job_state(p->ring, idx) != EGR_JOB_ACTIVE)
			return -ECANCELED;
		if (!egr_ring_chunk_needed(p->ring, idx, chunk)) {
			if (!egr_decoder_stateful(g->decoder))
				continue;	/* resumed job: already published or written */
			ck.replay = 1;	/* decoded again for the state it leaves, not published */
			replayed++;
		}
		ck.latents = egr_producer_load_chunk(p, j, n, g, ck.lat_first, ck.lat_n, read_ns, err, errlen);
		if (!ck.latents)
			return -EINVAL;
		if ((rc = submit_one(p, idx, chunk, &ck, blocked, err, errlen)))
			return rc;
		if (ck.replay)
			continue;
		submitted++;
#ifdef EGR_TESTING
		fault_maybe_die(submitted);
#endif
	}
	if (replayed)
		egr_info("job %s: %u chunk%s decoded again to rebuild the %s decoder's state, not published", j->name,
			 replayed, replayed == 1 ? "" : "s", egr_job_decoder_name(g->decoder));
	return 0;
}

static void run_job(struct producer *p, uint32_t idx)
{
	struct egr_backend_stats bst = { 0 };
	struct egr_job_view j;
	struct egr_job_geom g;
	struct egr_npy n = { .fd = -1 };
	struct egr_job_inputs in = { .n = 0 };
	char err[EGR_ERR_MAX];
	uint64_t blocked = 0, read_ns = 0, t_first = 0;
	int rc, all = 0;

	egr_ring_job_view(p->ring, idx, &j);
	egr_info("job %s: %s%s", j.name, j.producer_restarts ? "resuming after a producer restart: " : "",
		 j.spec.latents);
	rc = egr_producer_begin_job(p, &j, &n, &g, &in, err, sizeof(err));
	if (rc)
		goto fail;
	t_first = egr_log_now_ns();
	rc = submit_chunks(p, &j, &n, &g, &blocked, &read_ns, err, sizeof(err));
	if (rc && rc != -ECANCELED) {
		egr_warn("job %s: %s", j.name, err);
		egr_ring_job_fail(p->ring, idx, err);
		p->ops->job_end(p->be, 1, &bst, err, sizeof(err));
		goto out;
	}
	all = rc == 0;
	rc = p->ops->job_end(p->be, !all, &bst, err, sizeof(err));
	if (!rc)
		goto out;
fail:
	egr_warn("job %s: %s", j.name, err);
	egr_ring_job_fail(p->ring, idx, err);
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
		egr_producer_add_stats(p, idx, &bst, read_ns, blocked, egr_log_now_ns() - t_first);
	egr_npy_close(&n);
	egr_producer_inputs_close(&in);
	egr_ring_job_release(p->ring, idx, all);
	egr_producer_notify(p);
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
	struct producer p = { .notify_fd = -1 };
	struct egr_child_args a;
	struct egr_ring_info info;
	char err[1024];
	int rc;

	egr_log_init("producer");
	rc = egr_child_args_parse(argc, argv, "producer", 1, 0, &a);
	if (rc)
		return rc > 0 ? EGR_EXIT_OK : EGR_EXIT_USAGE;
	p.notify_fd = a.notify_fd;
	egr_child_signals(on_term);

	if (egr_conf_load(a.conf, &p.conf, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_CONFIG;
	}
	egr_log_set_level(egr_conf_log_level(&p.conf));
	if (egr_safepath_init(&p.roots, p.conf.allow_read, p.conf.allow_write, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_CONFIG;
	}
	if (a.device >= 0)
		p.conf.device = (uint32_t)a.device;	/* one producer per GPU of [cuda] devices */
	if (egr_ring_attach(a.shm, &p.ring, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_OSERR;
	}
	egr_ring_info(p.ring, &info);
	p.nslots = info.nslots;
	p.inflight = calloc(p.nslots, 1);
	if (!p.inflight) {
		egr_err("out of memory");
		rc = EGR_EXIT_OSERR;
		goto out;
	}
	if (egr_loader_new(p.conf.read_threads, &p.loader, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		rc = EGR_EXIT_OSERR;
		goto out;
	}
	rc = open_backend(&p);
	if (rc)
		goto out;
	int naive = egr_conf_pipeline(&p.conf) == EGR_PIPE_NAIVE;
	if (naive && p.ops != &egr_backend_cuda) {
		egr_err("pipeline = naive is the CUDA baseline loop: it needs backend = cuda (backend is %s)",
			p.ops->name);
		rc = EGR_EXIT_CONFIG;
		goto out;
	}
	p.gpu = p.ops == &egr_backend_cuda ? (int)p.conf.device : -1;
	snprintf(p.backend_name, sizeof(p.backend_name), "%s%s", p.ops->name, naive ? "-naive" : "");
	if (p.gpu >= 0)
		egr_info("ready: backend %s on GPU %d, pipeline %s", p.ops->name, p.gpu, p.conf.pipeline);
	else
		egr_info("ready: backend %s, pipeline %s", p.ops->name, p.conf.pipeline);
	while (!egr_producer_stop) {
		int job = egr_ring_job_next(p.ring, 1000, &egr_producer_stop);
		if (reload_conf)
			reload(&p, a.conf);	/* before the job it took: the new limits apply to it */
		if (job >= 0 && naive)
			egr_producer_run_naive(&p, (uint32_t)job);
		else if (job >= 0)
			run_job(&p, (uint32_t)job);
		else if (job == -ECANCELED)
			break;
	}
	rc = EGR_EXIT_OK;
out:
	if (p.ops)
		p.ops->close(p.be);	/* unregisters the slots before the unmap */
	egr_loader_free(p.loader);
	egr_ring_close(p.ring);
	egr_safepath_close(&p.roots);
	free(p.inflight);
	return rc;
}
