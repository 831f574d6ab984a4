/*
 * naive: pipeline = naive, the loop every user starts with, kept as the
 * baseline the benchmark compares against.  One process, one stream: decode
 * a chunk, cudaMemcpy it into pageable memory, pwrite it, repeat; no ring
 * slots, no workers, no overlap.  y4m only.  The output is still planned,
 * created and finalized by workers/output.h, like any job's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/formats/y4m.h"
#include "daemon/producer/naive.h"
#include "daemon/producer/producer.h"
#include "workers/output.h"

static int naive_write(int fd, const struct egr_job_layout *l, const uint8_t *buf, uint32_t first,
		       uint32_t nf, char *err, size_t errlen)
{
	for (uint32_t f = 0; f < nf; f++) {
		struct iovec iov[2] = { { (void *)EGR_Y4M_FRAME_TAG, EGR_Y4M_FRAME_TAG_LEN },
					{ (void *)(buf + f * l->frame_bytes), l->frame_bytes } };
		off_t off = (off_t)egr_y4m_frame_off(l->header_bytes, l->frame_bytes, first + f);
		size_t left = EGR_Y4M_FRAME_TAG_LEN + l->frame_bytes;
		int idx = 0;

		while (left) {
			ssize_t w = pwritev(fd, iov + idx, 2 - idx, off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int rc = -errno;
				egr_errf(err, errlen, "pwritev(\"%s\") at offset %lld: %s", l->tmp_path,
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

/* decode, copy to pageable memory, write: chunk after chunk */
static int naive_chunks(struct producer *p, const struct egr_job_view *j, struct egr_npy *n,
			const struct egr_job_geom *g, int fd, uint8_t *buf, uint64_t *read_ns,
			uint64_t *write_ns, char *err, size_t errlen)
{
	int rc;

	for (uint32_t chunk = 0; chunk < j->lay.chunks_total; chunk++) {
		uint32_t first = chunk * g->chunk_frames;
		uint32_t nf = g->frames - first < g->chunk_frames ? g->frames - first : g->chunk_frames;
		struct egr_chunk ck = { .first_frame = first, .nframes = nf, .dst = buf };

		if (egr_producer_stop) {
			egr_errf(err, errlen, "stopped");
			return -ECANCELED;
		}
		ck.latents = egr_producer_load_chunk(p, j, n, g, first, nf, read_ns, err, errlen);
		if (!ck.latents)
			return -EINVAL;
		if ((rc = egr_naive_cuda_decode(p->be, &ck, err, errlen)))
			return rc;
		uint64_t t0 = egr_log_now_ns();
		if ((rc = naive_write(fd, &j->lay, buf, first, nf, err, errlen)))
			return rc;
		*write_ns += egr_log_now_ns() - t0;
	}
	return 0;
}

void egr_producer_run_naive(struct producer *p, uint32_t idx)
{
	struct egr_backend_stats bst = { 0 };
	struct egr_job_stats *st = egr_ring_job_stats(p->ring, idx);
	struct egr_job_view j;
	struct egr_job_geom g;
	struct egr_npy n = { .fd = -1 };
	struct egr_job_inputs in = { .n = 0 };
	char err[EGR_ERR_MAX];
	uint8_t *buf = NULL;
	uint64_t read_ns = 0, write_ns = 0, t_first;
	int rc, fd = -1, began = 0;

	egr_ring_job_view(p->ring, idx, &j);
	if (j.spec.format != EGR_FMT_Y4M) {
		egr_errf(err, sizeof(err), "pipeline = naive (a benchmark baseline) writes format = y4m only");
		rc = -ENOTSUP;
		goto fail;
	}
	if ((rc = egr_producer_begin_job(p, &j, &n, &g, &in, err, sizeof(err))))
		goto fail;
	began = 1;
	buf = malloc((size_t)(g.chunk_frames * g.frame_bytes));	/* pageable on purpose */
	if (!buf) {
		rc = -ENOMEM;
		egr_errf(err, sizeof(err), "out of memory for a %u-frame chunk", g.chunk_frames);
		goto fail;
	}
	if ((fd = egr_output_open(&p->roots, &j, err, sizeof(err))) < 0) {
		rc = fd;
		goto fail;
	}
	t_first = egr_log_now_ns();
	if ((rc = naive_chunks(p, &j, &n, &g, fd, buf, &read_ns, &write_ns, err, sizeof(err))))
		goto fail;
	uint64_t t0 = egr_log_now_ns();
	if ((rc = egr_output_finalize(NULL, &p->roots, &j, err, sizeof(err))))
		goto fail;
	egr_stat_add(&st->finalize_ns, egr_log_now_ns() - t0);
	p->ops->job_end(p->be, 0, &bst, err, sizeof(err));
	egr_producer_add_stats(p, idx, &bst, read_ns, 0, egr_log_now_ns() - t_first);
	egr_stat_add(&st->write_ns, write_ns);
	egr_stat_add(&st->bytes_written, j.lay.out_bytes);
	egr_ring_job_finish(p->ring, idx, 1, NULL);
	goto out;
fail:
	egr_warn("job %s: %s", j.name, err);
	egr_ring_job_fail(p->ring, idx, err);
	if (began)
		p->ops->job_end(p->be, 1, &bst, err, sizeof(err));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	egr_npy_close(&n);
	egr_producer_inputs_close(&in);
	egr_ring_job_release(p->ring, idx, 1);
	egr_producer_notify(p);
}
