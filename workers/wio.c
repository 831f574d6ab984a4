/*
 * wio: the workers' write path; see wio.h.
 *
 * Each queued write is a struct wio_req attached to its SQE with
 * io_uring_sqe_set_data (the liburing io_uring-cp.c pattern): it owns a copy
 * of the caller's iovec that is advanced past what the kernel wrote, so a
 * short write is completed by resubmitting the rest at the advanced offset.
 * Writes are submitted as soon as they are queued, so the caller can compute
 * (compress the next PNG) while the kernel writes.
 *
 * Batches and errors.  The writes queued since the last egr_wio_wait() form a
 * batch.  The first error of a batch is kept; from then on nothing new is
 * queued, every request still in flight is drained (waited for and freed, so
 * none completes into memory the caller frees after seeing the error), and
 * egr_wio_writev() returns the error too.  egr_wio_wait() reports it once and
 * starts a new batch.
 *
 * The pwritev fallback does the same work synchronously inside
 * egr_wio_writev(), with the same batch rules.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "daemon/base/log.h"
#include "workers/wio.h"

enum { OP_WRITE, OP_FSYNC };

struct wio_req {
	int op;
	int fd;
	int datasync;
	int fault_errno;	/* test builds: complete with this error instead */
	off_t off;		/* file offset of iov[idx] */
	int idx, iovcnt;	/* iov[idx..iovcnt) remain to be written */
	struct iovec *sub;	/* what the kernel was given; stable until completion */
	int subcnt;
	struct iovec iov[];	/* the caller's iovec, copied (then 'sub' room if truncating) */
};

struct egr_wio {
	int uring;		/* 1: io_uring, 0: pwritev */
	int broken;		/* the ring failed while requests were in flight */
	struct io_uring ring;
	unsigned depth;
	unsigned inflight;	/* SQEs submitted and not yet reaped */
	int err;		/* first error of the current batch */
	/* fault injection (test builds only; all zero otherwise) */
	int fault_short;	/* submit only half of each write's remaining bytes */
	int fault_errno;	/* fail the fault_at-th write with this errno */
	unsigned long fault_at, nwrites;
};

static size_t iov_bytes(const struct iovec *iov, int n)
{
	size_t s = 0;

	for (int i = 0; i < n; i++)
		s += iov[i].iov_len;
	return s;
}

/*
 * Point req->sub at what to submit next: the remaining iovec, or under the
 * short-write fault a copy holding only the first half of its bytes.
 */
static void req_prepare(const struct egr_wio *w, struct wio_req *req)
{
	struct iovec *rest = req->iov + req->idx;
	int n = req->iovcnt - req->idx;

	req->sub = rest;
	req->subcnt = n;
	if (!w->fault_short)
		return;
	size_t want = iov_bytes(rest, n) / 2;
	if (want == 0)
		return;		/* one byte left: write it whole */
	struct iovec *sub = req->iov + req->iovcnt;
	int k = 0;
	while (want > 0) {
		sub[k] = rest[k];
		if (sub[k].iov_len > want)
			sub[k].iov_len = want;
		want -= sub[k].iov_len;
		k++;
	}
	req->sub = sub;
	req->subcnt = k;
}

/* Skip n written bytes; returns 1 when bytes remain. */
static int req_advance(struct wio_req *req, size_t n)
{
	req->off += (off_t)n;
	while (req->idx < req->iovcnt && n >= req->iov[req->idx].iov_len) {
		n -= req->iov[req->idx].iov_len;
		req->idx++;
	}
	if (req->idx < req->iovcnt) {
		req->iov[req->idx].iov_base = (char *)req->iov[req->idx].iov_base + n;
		req->iov[req->idx].iov_len -= n;
	}
	while (req->idx < req->iovcnt && req->iov[req->idx].iov_len == 0)
		req->idx++;
	return req->idx < req->iovcnt;
}

/* ---- io_uring ---- */

static int ring_submit(struct egr_wio *w, struct wio_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	int ret;

	/* inflight < depth and every SQE is submitted at once: there is room */
	if (!sqe)
		return -EBUSY;
	if (req->fault_errno) {
		/* a NOP completes through the normal path, then fails there */
		io_uring_prep_nop(sqe);
	} else if (req->op == OP_FSYNC) {
		io_uring_prep_fsync(sqe, req->fd, req->datasync ? IORING_FSYNC_DATASYNC : 0);
	} else {
		req_prepare(w, req);
		io_uring_prep_writev(sqe, req->fd, req->sub, (unsigned)req->subcnt, (uint64_t)req->off);
	}
	io_uring_sqe_set_data(sqe, req);
	w->inflight++;
	do
		ret = io_uring_submit(&w->ring);
	while (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY);
	if (ret < 0) {
		/* the SQE stays in the ring; nothing can be trusted any more */
		w->broken = 1;
		return ret;
	}
	return 0;
}

/*
 * What a completion means for its request: 0 done, 1 resubmitted, or -errno.
 * Frees req unless it was resubmitted.
 */
static int req_complete(struct egr_wio *w, struct wio_req *req, int res)
{
	int ret;

	if (req->fault_errno)
		res = -req->fault_errno;
	if (res == -EINTR || res == -EAGAIN)
		goto again;
	if (res < 0) {
		ret = res;
		goto done;
	}
	if (req->op == OP_FSYNC) {
		ret = 0;
		goto done;
	}
	if (res == 0) {
		/* no progress on a regular file: never spin on it */
		ret = -EIO;
		goto done;
	}
	if (req_advance(req, (size_t)res))
		goto again;
	ret = 0;
	goto done;
again:
	ret = ring_submit(w, req);
	if (ret == 0)
		return 1;
	if (w->broken)
		return ret;	/* an unsubmitted SQE may still point at req: leak it */
done:
	free(req);
	return ret;
}

/* Reap one completion (blocking); 0 or the request's -errno. */
static int ring_reap(struct egr_wio *w)
{
	struct io_uring_cqe *cqe;
	int ret;

	do
		ret = io_uring_wait_cqe(&w->ring, &cqe);
	while (ret == -EINTR || ret == -EAGAIN);
	if (ret < 0) {
		w->broken = 1;
		return ret;
	}
	struct wio_req *req = io_uring_cqe_get_data(cqe);
	int res = cqe->res;
	io_uring_cqe_seen(&w->ring, cqe);
	w->inflight--;
	ret = req_complete(w, req, res);
	return ret > 0 ? 0 : ret;
}

/*
 * Wait for everything in flight.  Until the batch's first error, completions
 * are handled (short writes finished); after it, requests are only waited for
 * and freed.  Returns the batch's first error.
 */
static int ring_drain(struct egr_wio *w)
{
	struct io_uring_cqe *cqe;
	int ret;

	while (w->inflight > 0 && !w->broken) {
		if (w->err == 0) {
			ret = ring_reap(w);
			if (ret < 0 && w->err == 0)
				w->err = ret;
			continue;
		}
		do
			ret = io_uring_wait_cqe(&w->ring, &cqe);
		while (ret == -EINTR || ret == -EAGAIN);
		if (ret < 0) {
			w->broken = 1;
			break;
		}
		free(io_uring_cqe_get_data(cqe));
		io_uring_cqe_seen(&w->ring, cqe);
		w->inflight--;
	}
	if (w->broken && w->err == 0)
		w->err = -EIO;
	return w->err;
}

/* ---- pwritev fallback ---- */

static int sync_run(struct egr_wio *w, struct wio_req *req)
{
	if (req->fault_errno)
		return -req->fault_errno;
	if (req->op == OP_FSYNC) {
		while ((req->datasync ? fdatasync(req->fd) : fsync(req->fd)) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	do {
		ssize_t n;

		req_prepare(w, req);
		n = pwritev(req->fd, req->sub, req->subcnt, req->off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		if (!req_advance(req, (size_t)n))
			return 0;
	} while (1);
}

/* ---- common ---- */

/* Queue (io_uring) or run (fallback) req, which this takes over. */
static int wio_queue(struct egr_wio *w, struct wio_req *req)
{
	int ret;

	if (w->err) {
		free(req);
		return w->err;
	}
	if (!w->uring) {
		ret = sync_run(w, req);
		free(req);
		if (ret < 0)
			w->err = ret;
		return ret;
	}
	/* make room: never more than depth requests in flight */
	while (w->inflight >= w->depth && w->err == 0 && !w->broken) {
		ret = ring_reap(w);
		if (ret < 0 && w->err == 0)
			w->err = ret;
	}
	if (w->err || w->broken) {
		free(req);
		return ring_drain(w);
	}
	ret = ring_submit(w, req);
	if (ret < 0) {
		if (!w->broken)
			free(req);
		w->err = ret;
		return ring_drain(w);
	}
	return 0;
}

#ifdef EGR_TESTING
static int env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && strcmp(v, "1") == 0;
}

static int errno_by_name(const char *s)
{
	static const struct { const char *name; int e; } tab[] = {
		{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EDQUOT", EDQUOT },
		{ "EROFS", EROFS }, { "EFBIG", EFBIG }, { "EBADF", EBADF },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(s, tab[i].name) == 0)
			return tab[i].e;
	char *end;
	long v = strtol(s, &end, 10);
	return (*s && !*end && v > 0 && v < 4096) ? (int)v : 0;
}

/* Test builds only: read the fault-injection environment once. */
static void wio_faults(struct egr_wio *w)
{
	const char *e = getenv("EGR_FAULT_WRITE_ERRNO");
	const char *at = getenv("EGR_FAULT_WRITE_AT");

	w->fault_short = env_flag("EGR_FAULT_SHORT_WRITES");
	w->fault_errno = e ? errno_by_name(e) : 0;
	w->fault_at = at ? strtoul(at, NULL, 10) : 1;
	if (w->fault_at == 0)
		w->fault_at = 1;
}
#endif

/* io_uring_setup refusals that mean "use pwrite", not "fail" */
static int uring_refused(int e)
{
	return e == EPERM || e == ENOSYS || e == EINVAL || e == EOPNOTSUPP;
}

int egr_wio_open(struct egr_wio **out, unsigned depth, char *err, size_t errlen)
{
	struct egr_wio *w;
	int ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (depth == 0 || depth > 4096) {
		egr_errf(err, errlen, "egr_wio_open: queue depth %u out of range 1..4096", depth);
		return -EINVAL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		egr_errf(err, errlen, "egr_wio_open: out of memory");
		return -ENOMEM;
	}
	w->depth = depth;
#ifdef EGR_TESTING
	wio_faults(w);
	if (env_flag("EGR_FORCE_PWRITE")) {
		egr_errf(err, errlen, "io_uring not used: EGR_FORCE_PWRITE=1");
		goto done;
	}
#endif
	ret = io_uring_queue_init(depth, &w->ring, 0);
	if (ret < 0) {
		if (!uring_refused(-ret)) {
			egr_errf(err, errlen, "io_uring_queue_init(%u): %s", depth, egr_log_strerror(-ret));
			free(w);
			return ret;
		}
		egr_errf(err, errlen, "io_uring_queue_init: %s", egr_log_strerror(-ret));
		goto done;
	}
	/* gVisor and old kernels set up a ring but lack some opcodes */
	struct io_uring_probe *p = io_uring_get_probe_ring(&w->ring);
	int ok = p && io_uring_opcode_supported(p, IORING_OP_WRITEV) &&
		 io_uring_opcode_supported(p, IORING_OP_FSYNC) &&
		 io_uring_opcode_supported(p, IORING_OP_NOP);
	if (p)
		io_uring_free_probe(p);
	if (!ok) {
		io_uring_queue_exit(&w->ring);
		egr_errf(err, errlen, "io_uring lacks writev/fsync support");
		goto done;
	}
	w->uring = 1;
done:
	*out = w;
	return 0;
}

void egr_wio_close(struct egr_wio *w)
{
	if (!w)
		return;
	if (w->uring) {
		if (w->inflight && !w->broken) {
			if (!w->err)
				w->err = -ECANCELED;
			ring_drain(w);
		}
		io_uring_queue_exit(&w->ring);
	}
	free(w);
}

const char *egr_wio_backend(const struct egr_wio *w)
{
	return w->uring ? "io_uring" : "pwrite";
}

int egr_wio_writev(struct egr_wio *w, int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	if (iovcnt < 0 || (iovcnt > 0 && !iov) || off < 0)
		return -EINVAL;
	if (w->err)
		return w->err;
	/* one request per IOV_MAX iovecs: the kernel refuses longer arrays */
	while (iovcnt > 0) {
		int n = iovcnt < IOV_MAX ? iovcnt : IOV_MAX;
		size_t bytes = iov_bytes(iov, n);

		if (bytes > 0) {
			/* room for the copy, and for the truncated copy under fault */
			size_t cnt = (size_t)n * (w->fault_short ? 2 : 1);
			struct wio_req *req = malloc(sizeof(*req) + cnt * sizeof(struct iovec));
			int ret;

			if (!req) {
				w->err = -ENOMEM;
				return w->uring ? ring_drain(w) : w->err;
			}
			memset(req, 0, sizeof(*req));
			req->op = OP_WRITE;
			req->fd = fd;
			req->off = off;
			req->iovcnt = n;
			memcpy(req->iov, iov, (size_t)n * sizeof(*iov));
			if (w->fault_errno && ++w->nwrites == w->fault_at)
				req->fault_errno = w->fault_errno;
			while (req->idx < n && req->iov[req->idx].iov_len == 0)
				req->idx++;
			ret = wio_queue(w, req);
			if (ret < 0)
				return ret;
		}
		off += (off_t)bytes;
		iov += n;
		iovcnt -= n;
	}
	return 0;
}

int egr_wio_wait(struct egr_wio *w)
{
	int ret = w->uring ? ring_drain(w) : w->err;

	/* a broken ring stays broken: every later call fails */
	if (!w->broken)
		w->err = 0;
	return ret;
}

int egr_wio_fsync(struct egr_wio *w, int fd, int datasync)
{
	struct wio_req *req;
	int ret = egr_wio_wait(w);

	if (ret < 0)
		return ret;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->op = OP_FSYNC;
	req->fd = fd;
	req->datasync = datasync;
	ret = wio_queue(w, req);
	if (ret < 0) {
		egr_wio_wait(w);
		return ret;
	}
	return egr_wio_wait(w);
}
