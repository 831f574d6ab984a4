/*
 * wio: the workers' write path.  io_uring (liburing) where the kernel allows
 * it, pwrite/pwritev otherwise.
 *
 * egr_wio_open() tries io_uring_queue_init(); if the kernel refuses it
 * (EPERM under seccomp or kernel.io_uring_disabled, ENOSYS, EINVAL under
 * gVisor) it falls back to pwritev and says which path is in use through
 * egr_wio_backend().  Test builds (EGR_TESTING) force the fallback when the
 * environment has EGR_FORCE_PWRITE=1.
 *
 * Writes are asynchronous: egr_wio_writev() queues a write of the iovec at
 * off (the iovec array and the buffers must stay valid until the next
 * egr_wio_wait()); egr_wio_wait() submits, waits for every queued write,
 * completes short writes by resubmitting the remainder, retries -EAGAIN and
 * -EINTR, and returns 0 or the first -errno.  ENOSPC and EIO are returned,
 * never retried.  egr_wio_fsync() waits for queued writes, then fsyncs.
 * Once a write has failed, nothing is in flight any more (a failed write
 * never completes into memory the caller frees) and egr_wio_writev() returns
 * that error too; egr_wio_wait() reports it once and starts afresh.
 */
#ifndef EGR_WIO_H
#define EGR_WIO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct egr_wio;

/*
 * depth: most writes in flight.  0 or -errno with err set.  On success err is
 * empty, or says why io_uring is not used (for the caller's log line).
 */
int egr_wio_open(struct egr_wio **w, unsigned depth, char *err, size_t errlen);
void egr_wio_close(struct egr_wio *w);
/* "io_uring" or "pwrite" */
const char *egr_wio_backend(const struct egr_wio *w);

int egr_wio_writev(struct egr_wio *w, int fd, const struct iovec *iov, int iovcnt, off_t off);
int egr_wio_wait(struct egr_wio *w);
int egr_wio_fsync(struct egr_wio *w, int fd, int datasync);

#endif
