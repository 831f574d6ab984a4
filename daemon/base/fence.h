/*
 * fence: the lease record of a daemon sharing its spool, and the check its
 * children make with it before an output is committed.
 *
 * daemon/supervisor/lease.h writes the record (<spool>/active/<host_id>.
 * <instance>.lease, rewritten in place at every heartbeat) and tells its
 * children which lease they work under through the environment
 * (EGR_FENCE_ENV = "<generation>:<lease path>", set before they start).
 * The finalizer (workers/output.c) calls egr_fence_check right before the
 * rename that commits an output: a daemon that lost its lease, or has not
 * renewed it for half the lease timeout, commits nothing.  Without the
 * variable (no shared spool, --oneshot, tests) the check passes.
 *
 * The record is INI-like text whose lines have fixed widths, so a heartbeat
 * rewrites the same bytes in place and a reader never sees a shorter file.
 */
#ifndef EGR_FENCE_H
#define EGR_FENCE_H

#include <stddef.h>
#include <stdint.h>

#define EGR_FENCE_ENV "EGRESSD_LEASE"
#define EGR_FENCE_REC_MAX 512	/* a record is shorter */

struct egr_fence_rec {
	char host_id[64];
	char instance[64];
	long pid;
	char boot_id[40];	/* /proc/sys/kernel/random/boot_id: same machine, same boot */
	uint64_t pidns;		/* inode of /proc/self/ns/pid: pids comparable */
	uint64_t generation;	/* the fencing token: unique in the spool, grows */
	uint64_t counter;	/* heartbeats so far */
	uint64_t renewed_ns;	/* egr_fence_now_ns of the writer at the last heartbeat */
	uint64_t timeout_ms;	/* [daemon] lease_timeout */
};

/*
 * The lease clock: CLOCK_BOOTTIME, which goes on counting while the machine
 * is suspended (CLOCK_MONOTONIC stops), so a daemon that wakes from a
 * suspend sees how long it was away.  Only ever compared with itself.
 */
uint64_t egr_fence_now_ns(void);

/* r as text into buf (always the same length for one daemon); bytes written or -ENAMETOOLONG. */
int egr_fence_format(const struct egr_fence_rec *r, char *buf, size_t len);
/* text into r; 0 or -EINVAL (not a whole record: torn or foreign). */
int egr_fence_parse(const char *text, struct egr_fence_rec *r);
/* open, read and parse path (a fresh open: NFS revalidates on open); 0 or -errno. */
int egr_fence_read(const char *path, struct egr_fence_rec *r);

/*
 * Before the commit rename of job job_path's output: 0 when this process
 * works under no lease, or its daemon still holds it (the record at the
 * lease path has our generation, was renewed less than timeout/2 ago by
 * this machine's monotonic clock, and job_path is still in the daemon's
 * active directory).  Otherwise -ENOLCK with err saying why.
 */
int egr_fence_check(const char *job_path, char *err, size_t errlen);

#endif
