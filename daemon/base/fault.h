/*
 * fault: test-build kill points in the job lifecycle, outside the ring (which
 * has its own, shm/ring.h), for tests/it/it_lifecycle.sh.
 *
 * egr_fault_kill(env, subject) SIGKILLs the calling process when the
 * environment variable env is set and its value is "1" or a suffix of
 * subject (a path, a step name).  With EGR_FAULT_KILL_ONCE=FILE it fires once
 * only: FILE records that it did, so the restarted process lives.  With
 * EGR_FAULT_KILL_PARENT=1 the parent (the supervisor) is killed first, as if
 * the whole daemon died at that point.  The point is logged before it fires.
 * egr_fault_stop is the same with SIGSTOP (and EGR_FAULT_KILL_PARENT stops
 * the parent first): the process halts there until a SIGCONT, for tests of
 * what a process that runs on late may do (tests/it/it_lost_lease.sh).
 * Release builds compile every call away.
 */
#ifndef EGR_FAULT_H
#define EGR_FAULT_H

#ifdef EGR_TESTING
void egr_fault_kill(const char *env, const char *subject);
void egr_fault_stop(const char *env, const char *subject);
#else
#define egr_fault_kill(env, subject) ((void)0)
#define egr_fault_stop(env, subject) ((void)0)
#endif

#endif
