/*
 * cancel: clients' requests to cancel a job.
 *
 * A client creates <spool>/cancel/ID (any content).  cancel/ is a drop
 * directory like tmp/ (status.h), so the file's owner is whoever asked, and
 * nobody can remove another's request.  The supervisor acts on each request
 * once, then removes it:
 *
 *   - The requester must own the job file, or be root or the daemon's own
 *     user; otherwise the request is refused with a log line.
 *   - A job in the job table is failed in the ring with "cancelled by uid N"
 *     (egr_ring_job_cancel): the producer stops at its next chunk and the
 *     workers drop its slots.  Its status file says "cancelling" until the
 *     supervisor, once nobody holds the job, removes its temporary output
 *     and moves it to cancelled/ (egr_cancel_finish).  A job whose output
 *     is already being renamed into place is past cancelling: it ends done.
 *   - A job not in the table yet (incoming/, or active/ after a restart)
 *     moves to cancelled/ at once.
 *   - A request for a job that ended or never existed is only removed.
 *
 * So after its request is gone, a client finds cancelled/ID.error, a status
 * file saying "cancelling" (the record follows within one chunk), the job's
 * record in done/ or failed/ (too late), or the job going on (refused).
 */
#ifndef EGR_CANCEL_H
#define EGR_CANCEL_H

#include <stddef.h>

#include "shm/ring.h"
#include "daemon/supervisor/status.h"

/* Act on every request in <spool>/cancel/. */
void egr_cancel_scan(struct egr_status *st, struct egr_ring *r);

/*
 * Record job id as cancelled: write <spool>/cancelled/ID.error (text, through
 * a temporary), then move <spool>/<from>/ID (from: "incoming" or "active")
 * beside it.  0 or -errno with err set.
 */
int egr_cancel_finish(const char *spool, const char *from, const char *id, const char *text, char *err,
		      size_t errlen);

#endif
