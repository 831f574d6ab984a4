/*
 * loader.c: see loader.h.  A generation counter hands every helper the same
 * chunk; each computes its own frame range from its index, so the only
 * shared writes are its result and the count of ranges still running.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/producer/loader.h"

struct range_result {
	int rc;
	size_t bad;	/* index in dst, when rc == -EDOM */
	char err[512];	/* egr_npy_read's one line */
};

struct helper_arg {
	struct egr_loader *l;
	unsigned index;		/* its range: 1.. (the caller reads range 0) */
};

struct egr_loader {
	pthread_t tid[EGR_LOADER_MAX_THREADS];
	struct helper_arg arg[EGR_LOADER_MAX_THREADS];
	unsigned started;	/* helper threads running */
	pthread_mutex_t mu;
	pthread_cond_t cv_go, cv_done;
	uint64_t gen;		/* bumped per chunk */
	unsigned pending;	/* helper ranges of this chunk still running */
	int stop;
	/* the chunk of generation gen */
	struct egr_npy *n;
	uint64_t first, count;
	unsigned parts;		/* ranges: min(threads, count) */
	unsigned char *dst;
	struct range_result res[EGR_LOADER_MAX_THREADS];
};

/* range k of the chunk: frames spread as evenly as whole frames allow */
static void do_range(struct egr_loader *l, unsigned k)
{
	struct range_result *r = &l->res[k];
	const uint64_t base = l->count / l->parts, extra = l->count % l->parts;
	const uint64_t from = k * base + (k < extra ? k : extra), n = base + (k < extra);
	unsigned char *dst = l->dst + from * l->n->frame_bytes;
	size_t bad;

	r->rc = egr_npy_read(l->n, l->first + from, n, dst, r->err, sizeof(r->err));
	if (r->rc == 0 && egr_npy_check_finite(l->n->dtype, dst, n * l->n->frame_bytes / l->n->dtype, &bad) < 0) {
		r->rc = -EDOM;
		r->bad = from * l->n->frame_bytes / l->n->dtype + bad;
	}
}

static void *helper(void *arg)
{
	const struct helper_arg *a = arg;
	struct egr_loader *l = a->l;
	const unsigned k = a->index;
	uint64_t seen = 0;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->stop && l->gen == seen)
			pthread_cond_wait(&l->cv_go, &l->mu);
		if (l->stop)
			break;
		seen = l->gen;
		if (k >= l->parts)
			continue;	/* a short chunk: not counted in pending */
		pthread_mutex_unlock(&l->mu);
		do_range(l, k);
		pthread_mutex_lock(&l->mu);
		if (--l->pending == 0)
			pthread_cond_signal(&l->cv_done);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int egr_loader_new(unsigned threads, struct egr_loader **out, char *err, size_t errlen)
{
	struct egr_loader *l;
	sigset_t all, old;
	int rc = 0;

	*out = NULL;
	if (threads < 1 || threads > EGR_LOADER_MAX_THREADS) {
		egr_errf(err, errlen, "loader: %u threads (1..%d)", threads, EGR_LOADER_MAX_THREADS);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		egr_errf(err, errlen, "loader: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv_go, NULL);
	pthread_cond_init(&l->cv_done, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);	/* inherited by the helpers */
	for (unsigned k = 1; k < threads; k++) {
		l->arg[k] = (struct helper_arg){ l, k };
		rc = pthread_create(&l->tid[l->started], NULL, helper, &l->arg[k]);
		if (rc) {
			egr_errf(err, errlen, "loader: starting reader thread %u of %u: %s", k + 1, threads, strerror(rc));
			break;
		}
		l->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		egr_loader_free(l);
		return -rc;
	}
	*out = l;
	return 0;
}

void egr_loader_free(struct egr_loader *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	pthread_cond_broadcast(&l->cv_go);
	pthread_mutex_unlock(&l->mu);
	for (unsigned i = 0; i < l->started; i++)
		pthread_join(l->tid[i], NULL);
	pthread_cond_destroy(&l->cv_go);
	pthread_cond_destroy(&l->cv_done);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int egr_loader_read(struct egr_loader *l, struct egr_npy *n, uint64_t first, uint64_t count, void *dst,
		    size_t *bad, char *err, size_t errlen)
{
	const unsigned threads = l->started + 1;	/* the caller included */

	if (!count)
		return 0;
	pthread_mutex_lock(&l->mu);
	l->n = n;
	l->first = first;
	l->count = count;
	l->dst = dst;
	l->parts = count < threads ? (unsigned)count : threads;
	l->pending = l->parts - 1;
	l->gen++;
	if (l->pending)
		pthread_cond_broadcast(&l->cv_go);
	pthread_mutex_unlock(&l->mu);

	do_range(l, 0);

	pthread_mutex_lock(&l->mu);
	while (l->pending)
		pthread_cond_wait(&l->cv_done, &l->mu);
	pthread_mutex_unlock(&l->mu);
	for (unsigned k = 0; k < l->parts; k++) {	/* the lowest range's outcome: as one reader in order */
		const struct range_result *r = &l->res[k];

		if (r->rc == -EDOM) {
			if (bad)
				*bad = r->bad;
			return -EDOM;
		}
		if (r->rc < 0) {
			egr_errf(err, errlen, "%s", r->err);
			return r->rc;
		}
	}
	return 0;
}
