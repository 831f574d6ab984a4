/*
 * queue: the order in which jobs leave incoming/: first in, first out by
 * arrival, which is the job file's ctime (rename() into incoming/ sets it),
 * ties broken by name.
 *
 * Thousands of queued files must not cost a listing per claim (n claims
 * from an n-entry directory would be O(n^2)).  incoming/ is listed and
 * sorted once; the supervisor claims from the cursor as table rows free up,
 * and lists again only once every listed name has been handed out.  A file
 * that arrives meanwhile is newer than everything listed, so it still comes
 * after them.  A listed name that went away (cancelled, claimed by another)
 * fails its claim with -ENOENT and is skipped.
 */
#ifndef EGR_QUEUE_H
#define EGR_QUEUE_H

#include <stddef.h>
#include <time.h>

struct egr_queue_ent {
	char *name;
	struct timespec ctime;
};

struct egr_queue {
	struct egr_queue_ent *v;
	size_t n, next;
};

/*
 * Forget the last listing and list <spool>/incoming/ again: its regular
 * files with job names (egr_spool_eligible), in FIFO order.  0 or -errno
 * with err set.
 */
int egr_queue_list(struct egr_queue *q, const char *spool, char *err, size_t errlen);
/* The next name in order, or NULL when the listing is used up; valid until the next egr_queue_list. */
const char *egr_queue_pop(struct egr_queue *q);
/* Names listed and not yet handed out. */
size_t egr_queue_waiting(const struct egr_queue *q);
void egr_queue_free(struct egr_queue *q);

#endif
