/*
 * lease: several daemons on one spool ([daemon] shared_spool = yes), on one
 * machine (different instances) or on many (NFS, CephFS, Lustre).  The
 * supervisor's half; its children's half is daemon/base/fence.h.  The
 * operator's view is docs/SCALING.md.
 *
 * Under <spool>/active/, each daemon <id> = "<host_id>.<instance>" has
 *   <id>/              its claimed jobs and their journals (spool.h: claims
 *                      rename incoming/NAME here; the filesystem lets one
 *                      rename of a source succeed, so one daemon wins a job)
 *   <id>.lease         its lease (fence.h's record): a generation, the
 *                      fencing token, unique in the spool and growing, and
 *                      a counter rewritten in place every lease_timeout/6
 *   <id>/.reap-<peer>  a dead peer's directory, being requeued by <id>
 * and the spool has .generations/<N> (tokens handed out by O_EXCL create;
 * the last 16 are kept).
 *
 * Staleness is judged by each observer on its own clock (egr_fence_now_ns): a peer
 * whose (generation, counter) has not changed for lease_timeout seconds is
 * dead.  Its jobs are requeued ("reaped") by whoever notices first:
 *   1. rename active/<peer> to active/<me>/.reap-<peer>: one reaper wins,
 *      and the jobs are under the winner's lease from then on (a reaper
 *      that dies mid-way is reaped in turn, nested directories included);
 *   2. rename the peer's lease beside it and read it back: a lease that
 *      changed meanwhile (the peer restarted) puts everything back;
 *   3. per job: the journal (workers/output.h) first: egr_output_recover
 *      takes the dead run's temporary output away (renamed, then removed:
 *      after that no late rename by the dead run can commit it) and says
 *      whether its output was already committed: then the job is recorded
 *      done, else its job file is renamed back to incoming/ (never over a
 *      job of the same name) for any daemon to claim and rerun.
 * A daemon stopped cleanly requeues its own unfinished jobs the same way
 * and removes its lease (egr_lease_close).
 *
 * A daemon holds its lease while it renews it: a heartbeat that finds its
 * lease file or directory replaced, or that comes more than lease_timeout/2
 * after the last good one, means the lease is lost: the supervisor kills
 * its children and exits, writing no record (it removes only its own
 * temporary outputs, once the children are dead: a child that ran on after
 * a reaper took the journalled name away may have created one again).  Its children check the same
 * before each commit (fence.h), so an output is committed at most once; the
 * exact guarantee, and what a network filesystem can break, are in
 * docs/SCALING.md "What is guaranteed".
 */
#ifndef EGR_LEASE_H
#define EGR_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"

struct egr_lease;
struct egr_spool;
struct egr_safepath;

/* "<host_id>.<instance>" (host_id "": the hostname, bytes outside [A-Za-z0-9._-] as '_'); 0 or -ENAMETOOLONG */
int egr_lease_identity(const struct egr_conf *c, char *buf, size_t len);

/*
 * Can the filesystem under <spool>/active/ settle races between daemons?
 * In a scratch file there: O_CREAT|O_EXCL creates once and refuses the
 * second time, a rename succeeds once and the second from the same source
 * fails with ENOENT.  Mounts known to lack atomic rename (object-store FUSE
 * mounts: s3fs, gcsfuse, goofys, rclone, mountpoint-s3, blobfuse) and NFS
 * mounted nocto are refused by name; other FUSE mounts get a warning.
 * 0, or -errno with err naming the step or the mount.
 */
int egr_lease_probe(const char *spool, char *err, size_t errlen);

/*
 * Start serving c->spool shared: probe, open the spool shared
 * (egr_spool_open_shared, into *spool), take a generation, and take over
 * this daemon's own lease: a lease left by this identity's previous run is
 * taken at once when that process is provably gone (same boot, same pid
 * namespace, pid gone), else after watching it not change for
 * lease_timeout; a lease that changes meanwhile belongs to a live daemon:
 * -EBUSY.  Then the children's environment gets EGR_FENCE_ENV.  roots:
 * the daemon's [paths], for the journals of requeued jobs (kept, not
 * copied).  0 or -errno with err set.
 */
int egr_lease_open(const struct egr_conf *c, const struct egr_safepath *roots, struct egr_spool **spool,
		   struct egr_lease **out, char *err, size_t errlen);

/*
 * The supervisor loop, at least every egr_lease_next_ns: the heartbeat when
 * due, then the peers watched and the dead ones reaped.  0 while the lease
 * is held, -ENOLCK once it is lost (logged once; stop at once).
 */
int egr_lease_tick(struct egr_lease *l);
/* ns until the next tick is due (0: now) */
uint64_t egr_lease_next_ns(const struct egr_lease *l);
/* 1 while held: not lost and renewed less than lease_timeout/2 ago; write no record otherwise */
int egr_lease_held(const struct egr_lease *l);
/*
 * Stop: with leave (a clean stop, children gone) and the lease held, requeue
 * this daemon's unfinished jobs and remove its lease and directory; without,
 * only let go (the peers reap it after lease_timeout).  NULL is fine.
 */
void egr_lease_close(struct egr_lease *l, int leave);

#endif
