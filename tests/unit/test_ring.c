/*
 * test_ring: the shared ring (shm/ring.c) and the crash contract of ring.h.
 *
 * Ordinary cases: create and attach refuse a bad geometry and a foreign,
 * mismatched or too small segment with a reason naming it, create refuses a
 * segment a live egressd owns and replaces a stale one; acquire blocks while
 * no slot is free (backpressure) until a slot frees, the job fails or stop is
 * set; take and job_next time out; take serves the oldest publish first; a
 * full job table says -ENOSPC; a job's first error wins.
 *
 * Then the crash test, the SQLite way (test builds only).  A scenario is a
 * few ring operations of one role (producer, worker, finalizer, supervisor)
 * on a state the parent set up.  For n = 0, 1, 2, ... a forked child runs it
 * and SIGKILLs itself at its n-th fault point (EGR_RING_FAULT in ring.c:
 * after every shared store of a critical section, and wherever a semaphore
 * token is held outside one), until a child runs to the end.  After each
 * death the parent does what the supervisor does, egr_ring_reclaim(), checks
 * every change it made against ring.h, and the invariants: no slot lost or
 * held by the dead, no chunk in two slots, jobs in legal states, semaphore
 * hints never under the truth.  Then it finishes every job itself, as
 * producer, worker and finalizer, which also shows that no waiter blocks for
 * good, and checks that every slot came back FREE and every chunk of a DONE
 * job was published, arrived intact and is counted written exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "shm/ring.h"

#include "check.h"

enum { NSLOTS = 4, NCHUNKS = 3, SLOT_BYTES = 4096, MAX_CHUNKS = 64, CHUNK_BYTES = 16 };
#define FAKE_PID 0x7ffffff0	/* above any pid_max: a process long gone */
#define WHY "the test's process was killed twice"
#define MS 1000000ull
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static char ring_name[64], ring_name2[64];
static char ctx[160] = "";	/* scenario, n and fault point, for messages */
static struct egr_jobspec spec;	/* its marker shows in every job queued: torn entries show */

/* what the parent and its children share (MAP_SHARED | MAP_ANONYMOUS) */
struct shared {
	uint32_t taken[EGR_RING_JOBS][NCHUNKS];	/* slots taken whose data was their chunk's */
	uint32_t bad_data;	/* slots taken whose data or metadata was not */
	int fail_line;		/* where a child saw an unexpected result */
	char point[64];		/* the fault point a child died at */
};
static struct shared *sh;

#define CHECKX(cond, fmt, ...) CHECK(cond, "%s: " fmt, ctx, ##__VA_ARGS__)
/* in a scenario: an unexpected result ends it */
#define EXPECT(cond)                                      \
	do {                                              \
		if (!(cond)) {                            \
			sh->fail_line = __LINE__;         \
			return 1;                         \
		}                                         \
	} while (0)

/* ---- helpers ---- */

static volatile sig_atomic_t timer_fired;

static void on_alarm(int sig)
{
	(void)sig;
	timer_fired = 1;
}

/* SIGALRM sets timer_fired after ms; 0 disarms (and leaves timer_fired) */
static void timer_arm(int ms)
{
	struct itimerval it = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };

	if (ms)
		timer_fired = 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* egr_ring_acquire, given up after ms: then -ECANCELED with timer_fired set */
static int acquire_for(struct egr_ring *r, uint32_t job, uint32_t chunk, uint32_t *slot, int ms,
		       uint64_t *blocked_ns)
{
	uint64_t b = 0;
	int rc;

	timer_arm(ms);
	rc = egr_ring_acquire(r, job, chunk, slot, &b, &timer_fired);
	timer_arm(0);
	if (blocked_ns)
		*blocked_ns = b;
	return rc;
}

static int ring_create(const char *name, struct egr_ring **r, char *err, size_t errlen)
{
	struct egr_ring_geom g = { .nslots = NSLOTS, .slot_bytes = SLOT_BYTES, .max_chunks = MAX_CHUNKS };

	return egr_ring_create(name, &g, r, err, errlen);
}

static struct egr_ring *ring_new(void)
{
	struct egr_ring *r = NULL;
	char err[512] = "";

	if (ring_create(ring_name, &r, err, sizeof(err))) {
		printf("%s\n", err);
		exit(1);
	}
	return r;
}

static void ring_free(struct egr_ring *r)
{
	egr_ring_close(r);
	egr_ring_unlink(ring_name);
}

static void unlink_rings(void)
{
	egr_ring_unlink(ring_name);
	egr_ring_unlink(ring_name2);
}

static void reap(pid_t kid)
{
	int status = -1;

	waitpid(kid, &status, 0);
	CHECK(status == 0, "helper process %d: wait status 0x%x", (int)kid, status);
}

static uint32_t count_slots(struct egr_ring *r, uint32_t state)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < NSLOTS; i++)
		n += egr_ring_slot(r, i)->state == state;
	return n;
}

static int sem_value(sem_t *s)
{
	int v = -1;

	sem_getvalue(s, &v);
	return v;
}

static uint64_t tag(uint32_t job, uint32_t chunk)
{
	return 0x7e57000000000000ull | (uint64_t)job << 32 | chunk;
}

static int queue(struct egr_ring *r, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/spool/%s", name);
	return egr_ring_job_queue(r, name, path, &spec);
}

/* what the producer's plan_job does once per job, before the first publish */
static void prepare(struct egr_ring *r, uint32_t jix)
{
	struct egr_job_layout l = { .frames = NCHUNKS, .chunk_frames = 1, .chunks_total = NCHUNKS,
				    .frame_bytes = CHUNK_BYTES };

	if (egr_ring_job(r, jix)->prepared)
		return;
	egr_ring_job_plan(r, jix, &l, "test", -1);
	egr_ring_job_prepared(r, jix, &l);
}

/* the supervisor's reclaim of a process killed from outside (SIGKILL) */
static int reclaim_outside(struct egr_ring *r, pid_t pid)
{
	struct egr_death d = { .pid = pid, .cause = EGR_DEATH_OUTSIDE, .role = "test", .how = WHY,
			       .crash_limit = 3, .oom_limit = 3 };

	return egr_ring_reclaim(r, &d);
}

/* producer: a slot for chunk, its data, then publish (or abandon).  0 or -errno. */
static int produce(struct egr_ring *r, uint32_t jix, uint32_t chunk, int abandon)
{
	uint32_t slot;
	int rc = acquire_for(r, jix, chunk, &slot, 2000, NULL);

	if (rc)
		return rc;
	*(uint64_t *)egr_ring_slot_data(r, slot) = tag(jix, chunk);
	if (abandon)
		egr_ring_abandon(r, slot);
	else
		egr_ring_publish(r, slot, chunk, 1, CHUNK_BYTES);
	return 0;
}

/*
 * Worker: take the oldest READY slot, check that it holds its chunk, release
 * it (ok, or failing the job with msg) and, when told to and finish is set,
 * finalize the job.  0 or -errno.
 */
static int consume(struct egr_ring *r, int ok, const char *msg, int finish)
{
	uint32_t slot, jix;
	int fin = 0, rc = egr_ring_take(r, &slot, 1000, NULL);

	if (rc)
		return rc;
	const struct egr_slot_sh *s = egr_ring_slot(r, slot);
	jix = s->job;
	if (jix < EGR_RING_JOBS && s->chunk < NCHUNKS && s->first_frame == s->chunk && s->nframes == 1 &&
	    s->bytes == CHUNK_BYTES && *(uint64_t *)egr_ring_slot_data(r, slot) == tag(jix, s->chunk))
		__atomic_add_fetch(&sh->taken[jix][s->chunk], 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&sh->bad_data, 1, __ATOMIC_RELAXED);
	egr_ring_release(r, slot, ok, msg, &fin);
	if (fin && finish)
		egr_ring_job_finish(r, jix, 1, NULL);
	return 0;
}

/* hand what this process holds to pid, as if pid had done it and died */
static void adopt(struct egr_ring *r, pid_t pid)
{
	pid_t me = getpid();

	for (uint32_t i = 0; i < NSLOTS; i++)
		if (egr_ring_slot(r, i)->owner == me)
			egr_ring_slot(r, i)->owner = pid;
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_sh *j = egr_ring_job(r, i);
		if (j->producer == me)
			j->producer = pid;
		if (j->finalizer == me)
			j->finalizer = pid;
	}
}

/* ---- ordinary cases ---- */

static void expect_attach_refused(const char *name, const char *why)
{
	struct egr_ring *a = NULL;
	char err[512] = "";
	int rc = egr_ring_attach(name, &a, err, sizeof(err));

	CHECK(rc == -EPROTO && strstr(err, why) && strstr(err, name), "attach, %s broken: %d \"%s\"", why, rc,
	      err);
	if (rc == 0)
		egr_ring_close(a);
}

/* a segment too small to be an egressd one: attach refuses it, create replaces it */
static void test_foreign_segment(void)
{
	struct egr_ring *r = NULL;
	char err[512] = "";
	int fd = shm_open(ring_name2, O_RDWR | O_CREAT | O_EXCL, 0600), rc;

	CHECK(fd >= 0 && write(fd, "not egressd", 11) == 11, "shm_open(%s): %s", ring_name2, strerror(errno));
	if (fd >= 0)
		close(fd);
	expect_attach_refused(ring_name2, "smaller");
	rc = ring_create(ring_name2, &r, err, sizeof(err));
	CHECK(rc == 0, "create over a foreign segment: %d \"%s\"", rc, err);
	if (rc == 0)
		egr_ring_close(r);
	egr_ring_unlink(ring_name2);
}

static void test_create_attach(void)
{
	struct egr_ring_geom bad = { .nslots = 1, .slot_bytes = SLOT_BYTES, .max_chunks = 8 };
	struct egr_ring_geom g = { .nslots = NSLOTS, .slot_bytes = 1000, .max_chunks = 100 };
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct egr_ring *r = NULL, *a = NULL;
	struct egr_ring_hdr *h;
	char err[512] = "";
	int rc;

	rc = egr_ring_create(ring_name, &bad, &r, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "2 slots"), "create with 1 slot: %d \"%s\"", rc, err);
	rc = egr_ring_attach(ring_name, &a, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "shm_open") && strstr(err, ring_name), "attach to no segment: %d \"%s\"",
	      rc, err);
	rc = egr_ring_create(ring_name, &g, &r, err, sizeof(err));
	CHECK(rc == 0, "create: %d \"%s\"", rc, err);
	if (rc)
		return;
	h = egr_ring_hdr(r);
	CHECK(h->slot_bytes == page && h->total_bytes == egr_ring_segment_bytes(&g) &&
	      egr_ring_data_len(r) == NSLOTS * page && (uintptr_t)egr_ring_data_base(r) % page == 0,
	      "geometry: slot_bytes %llu, segment %llu bytes", (unsigned long long)h->slot_bytes,
	      (unsigned long long)h->total_bytes);
	rc = egr_ring_attach(ring_name, &a, err, sizeof(err));
	CHECK(rc == 0, "attach: %d \"%s\"", rc, err);
	if (rc == 0) {
		memcpy(egr_ring_slot_data(r, NSLOTS - 1), "hello", 6);
		CHECK(!memcmp(egr_ring_slot_data(a, NSLOTS - 1), "hello", 6) && egr_ring_hdr(a)->nslots == NSLOTS,
		      "the attached mapping is not the creator's");
		egr_ring_close(a);
	}
	h->magic ^= 1;
	expect_attach_refused(ring_name, "magic");
	h->magic ^= 1;
	h->version++;
	expect_attach_refused(ring_name, "layout version");
	h->version--;
	h->hdr_bytes++;
	expect_attach_refused(ring_name, "header of");
	h->hdr_bytes--;
	h->total_bytes += page;
	expect_attach_refused(ring_name, "header says");
	h->total_bytes -= page;
	ring_free(r);
	test_foreign_segment();
}

static void test_live_and_stale(void)
{
	struct egr_ring *r = ring_new(), *r2 = NULL;
	char err[512] = "", pid_s[32];
	pid_t kid = fork();
	int rc;

	if (kid == 0) {
		pause();
		_exit(0);
	}
	queue(r, "old");
	egr_ring_hdr(r)->supervisor = kid;	/* as if kid, alive, had created it */
	rc = ring_create(ring_name, &r2, err, sizeof(err));
	snprintf(pid_s, sizeof(pid_s), "pid %d", (int)kid);
	CHECK(rc == -EBUSY && strstr(err, pid_s) && strstr(err, ring_name), "segment of a live egressd: %d \"%s\"",
	      rc, err);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	rc = ring_create(ring_name, &r2, err, sizeof(err));
	CHECK(rc == 0, "segment whose creator died: %d \"%s\"", rc, err);
	if (rc == 0) {
		CHECK(egr_ring_job(r2, 0)->state == EGR_JOB_EMPTY && egr_ring_hdr(r2)->supervisor == getpid() &&
		      egr_ring_job(r, 0)->state == EGR_JOB_QUEUED, "the stale segment was not replaced by a fresh one");
		egr_ring_close(r2);
	}
	ring_free(r);
}

/* a ring with job 0 ACTIVE, produced by this process */
static struct egr_ring *ring_with_job(void)
{
	struct egr_ring *r = ring_new();

	queue(r, "a");
	CHECK(egr_ring_job_next(r, 0, NULL) == 0, "job_next with job 0 queued");
	prepare(r, 0);
	return r;
}

/*
 * The blame rules of ring.h's egr_death: kills from outside never fail a
 * job; crashes fail it once they repeat crash_limit times at one chunk; OOM
 * kills once they reach oom_limit, whatever the chunk.
 */
static void die_holding(struct egr_ring *r, uint32_t chunk, enum egr_death_cause cause, const char *how)
{
	struct egr_death d = { .pid = FAKE_PID, .cause = cause, .role = "producer", .how = how,
			       .crash_limit = 3, .oom_limit = 2 };
	uint32_t s;

	if (egr_ring_job_next(r, 0, NULL) != 0)
		return;		/* the job failed already: nothing to hold */
	CHECK(egr_ring_acquire(r, 0, chunk, &s, NULL, NULL) == 0, "acquire chunk %u", chunk);
	adopt(r, FAKE_PID);
	egr_ring_reclaim(r, &d);
}

static void test_blame(void)
{
	struct egr_ring *r = ring_with_job();
	const struct egr_job_sh *j = egr_ring_job(r, 0);

	egr_ring_job_release(r, 0, 0);	/* back to QUEUED, as after a producer's stop */
	for (int i = 0; i < 10; i++)
		die_holding(r, 1, EGR_DEATH_OUTSIDE, "killed by signal 9 (Killed)");
	CHECK(j->state == EGR_JOB_QUEUED && j->producer_restarts == 10,
	      "10 kills from outside: state %u, %u restarts; want QUEUED, 10", j->state, j->producer_restarts);
	die_holding(r, 1, EGR_DEATH_CRASH, "killed by signal 11 (Segmentation fault)");
	die_holding(r, 1, EGR_DEATH_CRASH, "killed by signal 11 (Segmentation fault)");
	die_holding(r, 2, EGR_DEATH_CRASH, "killed by signal 11 (Segmentation fault)");
	CHECK(j->state == EGR_JOB_QUEUED && j->crashes == 1 && j->crash_chunk == 2,
	      "crashes at chunks 1, 1, 2: state %u, %u crashes at chunk %u; want QUEUED, 1 at 2", j->state,
	      j->crashes, j->crash_chunk);
	die_holding(r, 2, EGR_DEATH_CRASH, "killed by signal 7 (Bus error)");
	die_holding(r, 2, EGR_DEATH_OUTSIDE, "killed by signal 9 (Killed)");	/* no reset, no count */
	die_holding(r, 2, EGR_DEATH_CRASH, "killed by signal 7 (Bus error)");
	CHECK(j->state == EGR_JOB_FAILED && strstr(j->error, "crashed 3 times") &&
	      strstr(j->error, "chunk 2 (frames 2-2)") && strstr(j->error, "signal 7"),
	      "3 crashes at chunk 2: state %u, error \"%s\"", j->state, j->error);
	ring_free(r);

	r = ring_with_job();
	j = egr_ring_job(r, 0);
	egr_ring_job_release(r, 0, 0);
	die_holding(r, 0, EGR_DEATH_OOM, "killed by signal 9 (Killed)");
	CHECK(j->state == EGR_JOB_QUEUED, "one OOM kill of 2 allowed: state %u", j->state);
	die_holding(r, 3, EGR_DEATH_OOM, "killed by signal 9 (Killed)");
	CHECK(j->state == EGR_JOB_FAILED && strstr(j->error, "OOM killer") && strstr(j->error, "chunk_frames"),
	      "2 OOM kills: state %u, error \"%s\"", j->state, j->error);
	ring_free(r);
}

static void test_backpressure(void)
{
	struct egr_ring *r = ring_with_job();
	uint32_t slot[NSLOTS] = { 0 }, s = NSLOTS;
	uint64_t blocked = 0;
	pid_t kid;
	int rc;

	for (uint32_t i = 0; i < NSLOTS; i++)
		CHECK(acquire_for(r, 0, i, &slot[i], 1000, NULL) == 0, "acquire with slot %u free", i);
	rc = acquire_for(r, 0, 9, &s, 250, &blocked);
	CHECK(rc == -ECANCELED && blocked >= 200 * MS && blocked < 2000 * MS,
	      "acquire, no slot free, stop after 250 ms: %d after %llu ms", rc, (unsigned long long)(blocked / MS));
	/* a worker frees one */
	*(uint64_t *)egr_ring_slot_data(r, slot[2]) = tag(0, 2);
	egr_ring_publish(r, slot[2], 2, 1, CHUNK_BYTES);
	kid = fork();
	if (kid == 0) {
		usleep(150000);
		_exit(consume(r, 1, NULL, 0) ? 1 : 0);
	}
	rc = acquire_for(r, 0, 5, &s, 3000, &blocked);
	CHECK(rc == 0 && s == slot[2] && blocked >= 100 * MS,
	      "acquire while a worker frees slot %u after 150 ms: %d, slot %u after %llu ms", slot[2], rc, s,
	      (unsigned long long)(blocked / MS));
	reap(kid);
	/* the job fails meanwhile */
	kid = fork();
	if (kid == 0) {
		usleep(150000);
		egr_ring_job_fail(r, 0, "test");
		_exit(0);
	}
	rc = acquire_for(r, 0, 6, &s, 3000, NULL);
	CHECK(rc == -ECANCELED && !timer_fired, "acquire while the job fails after 150 ms: %d, timer %d", rc,
	      (int)timer_fired);
	reap(kid);
	ring_free(r);
}

static void test_timeouts(void)
{
	struct egr_ring *r = ring_new();
	volatile sig_atomic_t stop = 1;
	uint64_t t0 = egr_log_now_ns(), dt;
	uint32_t s;
	int rc = egr_ring_take(r, &s, 150, NULL);

	dt = egr_log_now_ns() - t0;
	CHECK(rc == -EAGAIN && dt >= 140 * MS && dt < 2000 * MS, "take, nothing READY, 150 ms: %d after %llu ms",
	      rc, (unsigned long long)(dt / MS));
	t0 = egr_log_now_ns();
	rc = egr_ring_job_next(r, 150, NULL);
	dt = egr_log_now_ns() - t0;
	CHECK(rc == -EAGAIN && dt >= 140 * MS && dt < 2000 * MS, "job_next, nothing queued, 150 ms: %d after %llu ms",
	      rc, (unsigned long long)(dt / MS));
	CHECK(egr_ring_take(r, &s, 1000, &stop) == -ECANCELED, "take with stop set");
	CHECK(egr_ring_job_next(r, 1000, &stop) == -ECANCELED, "job_next with stop set");
	queue(r, "a");
	CHECK(egr_ring_job_next(r, 0, NULL) == 0, "job_next with job 0 queued");
	CHECK(egr_ring_acquire(r, 0, 0, &s, NULL, &stop) == -ECANCELED, "acquire with stop set");
	egr_ring_wake_all(r);
	CHECK(egr_ring_take(r, &s, 1000, NULL) == -ECANCELED && egr_ring_job_next(r, 1000, NULL) == -ECANCELED,
	      "take and job_next after wake_all");
	ring_free(r);
}

static void test_take_order(void)
{
	static const uint32_t order[3] = { 2, 0, 1 };
	struct egr_ring *r = ring_with_job();
	uint32_t slot[3] = { 0 };
	uint64_t last = 0;

	for (uint32_t c = 0; c < 3; c++)
		acquire_for(r, 0, c, &slot[c], 1000, NULL);
	for (int i = 0; i < 3; i++)
		egr_ring_publish(r, slot[order[i]], order[i], 1, CHUNK_BYTES);
	for (int i = 0; i < 3; i++) {
		uint32_t s = 0;
		int rc = egr_ring_take(r, &s, 1000, NULL);
		const struct egr_slot_sh *ss = egr_ring_slot(r, s);

		CHECK(rc == 0 && ss->chunk == order[i] && ss->seq > last,
		      "take %d: %d, chunk %u seq %llu; want chunk %u, the oldest publish", i, rc, ss->chunk,
		      (unsigned long long)ss->seq, order[i]);
		last = ss->seq;
		egr_ring_release(r, s, 1, NULL, NULL);
	}
	ring_free(r);
}

static void test_job_table(void)
{
	struct egr_ring *r = ring_new();
	char name[16];
	int rc;

	for (int i = 0; i < EGR_RING_JOBS; i++) {
		snprintf(name, sizeof(name), "j%d", i);
		rc = queue(r, name);
		CHECK(rc == i, "queue %s: %d", name, rc);
	}
	rc = queue(r, "one too many");
	CHECK(rc == -ENOSPC, "queue into a full table: %d", rc);
	egr_ring_job_fail(r, 3, "test");
	egr_ring_job_clear(r, 3);
	rc = queue(r, "again");
	CHECK(rc == 3 && !strcmp(egr_ring_job(r, 3)->name, "again") && !egr_ring_job(r, 3)->error[0],
	      "queue after job 3 was cleared: %d", rc);
	rc = egr_ring_job_next(r, 0, NULL);
	CHECK(rc == 0 && egr_ring_job_next(r, 0, NULL) == 1, "job_next takes the oldest job first: %d", rc);
	ring_free(r);
}

static int run_pipeline(struct egr_ring *r);

static void test_first_error(void)
{
	struct egr_ring *r = ring_with_job();
	const struct egr_job_sh *j = egr_ring_job(r, 0);

	for (uint32_t c = 0; c < NCHUNKS; c++)
		produce(r, 0, c, 0);
	consume(r, 0, NULL, 1);
	CHECK(j->state == EGR_JOB_ACTIVE && egr_ring_chunk_needed(r, 0, 0) && !j->chunks_written,
	      "release(ok 0, msg NULL) of a live job drops the slot only: job state %u", j->state);
	consume(r, 0, "first", 1);
	consume(r, 0, "second", 1);
	egr_ring_job_finish(r, 0, 1, NULL);
	egr_ring_job_fail(r, 0, "third");
	CHECK(j->state == EGR_JOB_FAILED && !strcmp(j->error, "first") && !j->chunks_written &&
	      count_slots(r, EGR_SLOT_FREE) == NSLOTS, "first error wins: state %u, error \"%s\"", j->state, j->error);
	queue(r, "b");
	run_pipeline(r);
	egr_ring_job_fail(r, 1, "late");
	CHECK(egr_ring_job(r, 1)->state == EGR_JOB_DONE && !egr_ring_job(r, 1)->error[0],
	      "a DONE job stays DONE: state %u", egr_ring_job(r, 1)->state);
	ring_free(r);
}

static void test_chunk_needed(void)
{
	struct egr_ring *r = ring_with_job();
	uint32_t s = 0;

	produce(r, 0, 0, 0);
	consume(r, 1, NULL, 1);			/* chunk 0 written */
	produce(r, 0, 1, 0);			/* chunk 1 READY */
	acquire_for(r, 0, 2, &s, 1000, NULL);	/* chunk 2 FILLING */
	CHECK(!egr_ring_chunk_needed(r, 0, 0) && !egr_ring_chunk_needed(r, 0, 1) && egr_ring_chunk_needed(r, 0, 2) &&
	      egr_ring_chunk_needed(r, 0, 3), "chunk_needed: written, READY, FILLING, untouched");
	egr_ring_take(r, &s, 1000, NULL);	/* chunk 1 WRITING */
	CHECK(!egr_ring_chunk_needed(r, 0, 1) && egr_ring_job_slots(r, 0) == 2,
	      "chunk_needed of a WRITING chunk; job_slots %u", egr_ring_job_slots(r, 0));
	ring_free(r);
}

/* egr_ring_frames_written: every chunk holding one of the frames has its bit */
static void test_frames_written(void)
{
	struct egr_ring *r = ring_with_job();	/* chunk_frames 1: frame i is chunk i */

	produce(r, 0, 0, 0);
	consume(r, 1, NULL, 0);
	produce(r, 0, 2, 0);
	consume(r, 1, NULL, 0);
	CHECK(egr_ring_frames_written(r, 0, 0, 1) && egr_ring_frames_written(r, 0, 2, 1) &&
	      !egr_ring_frames_written(r, 0, 1, 1) && !egr_ring_frames_written(r, 0, 0, 3),
	      "frames_written with chunks 0 and 2 written");
	CHECK(!egr_ring_frames_written(r, 0, 2, 2) && !egr_ring_frames_written(r, 0, 0, 0) &&
	      !egr_ring_frames_written(r, EGR_RING_JOBS, 0, 1) && !egr_ring_frames_written(r, 1, 0, 1),
	      "frames_written past the job, of nothing, of no job");
	ring_free(r);
}

/* ---- crash scenarios: setups (parent) ---- */

static void setup_queued(struct egr_ring *r)
{
	queue(r, "a");
}

static void setup_restarted(struct egr_ring *r)
{
	queue(r, "a");
	egr_ring_job(r, 0)->producer_restarts = 1;	/* its producer died once already */
}

/* this process produces job 0 and has published chunks 0 and 1 */
static void setup_producing(struct egr_ring *r)
{
	queue(r, "a");
	egr_ring_job_next(r, 0, NULL);
	prepare(r, 0);
	produce(r, 0, 0, 0);
	produce(r, 0, 1, 0);
}

/* job 0 all published and released, chunks 0 and 1 written */
static void setup_last_chunk(struct egr_ring *r)
{
	setup_producing(r);
	produce(r, 0, 2, 0);
	egr_ring_job_release(r, 0, 1);
	consume(r, 1, NULL, 1);
	consume(r, 1, NULL, 1);
}

/* job 0 all written; its finalizer died and was reclaimed */
static void setup_orphan(struct egr_ring *r)
{
	setup_last_chunk(r);
	consume(r, 1, NULL, 0);		/* this process becomes its finalizer */
	adopt(r, FAKE_PID);
	reclaim_outside(r, FAKE_PID);
}

/* job 0 done and reported, job 1 queued */
static void setup_done(struct egr_ring *r)
{
	queue(r, "z");
	run_pipeline(r);
	queue(r, "a");
}

/*
 * FAKE_PID, gone, was finalizing job 0 and producing job 1: chunk 0 of job 1
 * being written by it, chunk 1 READY, chunk 2 being filled by it.
 */
static void setup_gone(struct egr_ring *r)
{
	uint32_t slot;

	setup_last_chunk(r);
	consume(r, 1, NULL, 0);
	queue(r, "b");
	egr_ring_job_next(r, 0, NULL);
	prepare(r, 1);
	produce(r, 1, 0, 0);
	produce(r, 1, 1, 0);
	egr_ring_take(r, &slot, 1000, NULL);
	acquire_for(r, 1, 2, &slot, 1000, NULL);
	adopt(r, FAKE_PID);
}

/* ---- crash scenarios: what the child does; 0 when all went as expected ---- */

/* producer, worker and finalizer in one: the whole life of a job */
static int run_pipeline(struct egr_ring *r)
{
	int jix = egr_ring_job_next(r, 1000, NULL);

	EXPECT(jix >= 0);
	prepare(r, (uint32_t)jix);
	EXPECT(egr_ring_chunk_needed(r, (uint32_t)jix, 0) == 1);
	EXPECT(produce(r, (uint32_t)jix, 0, 0) == 0);
	EXPECT(produce(r, (uint32_t)jix, 1, 0) == 0);
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(produce(r, (uint32_t)jix, 2, 0) == 0);
	egr_ring_job_release(r, (uint32_t)jix, 1);
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(egr_ring_job(r, (uint32_t)jix)->state == EGR_JOB_DONE);
	return 0;
}

/* a producer told to stop half way: publishes, abandons, lets go unfinished */
static int run_stop(struct egr_ring *r)
{
	EXPECT(egr_ring_job_next(r, 1000, NULL) == 0);
	prepare(r, 0);
	EXPECT(produce(r, 0, 0, 0) == 0);
	EXPECT(produce(r, 0, 1, 1) == 0);
	EXPECT(produce(r, 0, 1, 0) == 0);
	egr_ring_job_release(r, 0, 0);
	EXPECT(egr_ring_job(r, 0)->state == EGR_JOB_QUEUED);
	return 0;
}

static int run_worker(struct egr_ring *r)
{
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(egr_ring_job(r, 0)->chunks_written == 2);
	return 0;
}

/* a write fails: the job fails, its next slot is dropped, acquire gives up */
static int run_fail(struct egr_ring *r)
{
	uint32_t slot;

	EXPECT(consume(r, 0, "disk full", 1) == 0);
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(acquire_for(r, 0, 2, &slot, 2000, NULL) == -ECANCELED && !timer_fired);
	EXPECT(egr_ring_job(r, 0)->chunks_written == 0);
	EXPECT(strcmp(egr_ring_job(r, 0)->error, "disk full") == 0);
	return 0;
}

static int run_finalize(struct egr_ring *r)
{
	EXPECT(consume(r, 1, NULL, 1) == 0);
	EXPECT(egr_ring_job(r, 0)->state == EGR_JOB_DONE);
	return 0;
}

static int run_claim(struct egr_ring *r)
{
	EXPECT(egr_ring_claim_finalize(r) == 0);
	egr_ring_job_finish(r, 0, 1, NULL);
	EXPECT(egr_ring_job(r, 0)->state == EGR_JOB_DONE);
	return 0;
}

static int run_queue(struct egr_ring *r)
{
	egr_ring_job_clear(r, 0);
	EXPECT(queue(r, "b") == 0);
	EXPECT(queue(r, "c") == 2);
	return 0;
}

static int run_reclaim(struct egr_ring *r)
{
	EXPECT(reclaim_outside(r, FAKE_PID) == 2);
	return 0;
}

static const struct scenario {
	const char *name;
	void (*setup)(struct egr_ring *r);
	int (*run)(struct egr_ring *r);
	int reclaimer;	/* the child reclaims FAKE_PID, as the supervisor would */
} scenarios[] = {
	{ "pipeline", setup_queued, run_pipeline, 0 },
	{ "producer stops", setup_queued, run_stop, 0 },
	{ "producer stops, second life", setup_restarted, run_stop, 0 },
	{ "worker", setup_producing, run_worker, 0 },
	{ "worker fails the job", setup_producing, run_fail, 0 },
	{ "worker writes the last chunk", setup_last_chunk, run_finalize, 0 },
	{ "orphan finalization", setup_orphan, run_claim, 0 },
	{ "supervisor clears and queues", setup_done, run_queue, 0 },
	{ "supervisor reclaims", setup_gone, run_reclaim, 1 },
};

/* every fault point of ring.c; each must kill some scenario's child */
static const char *const points[] = {
	"lock.held", "job_fail.error", "job_fail.t_end", "job_fail.state",
	"queue.zero", "queue.bitmap", "queue.name", "queue.path", "queue.spec", "queue.t_queued",
	"queue.state", "queue.unlocked", "clear.state",
	"reclaim.rewrites", "reclaim.owner", "reclaim.ready", "reclaim.free", "reclaim.finalizer",
	"reclaim.producer", "reclaim.restarts", "reclaim.requeue", "reclaim.unlocked",
	"next.producer", "next.t_start", "next.state",
	"acquire.token", "acquire.owner", "acquire.job", "acquire.chunk", "acquire.nframes",
	"acquire.bytes", "acquire.state", "acquire.unlocked",
	"publish.first_frame", "publish.nframes", "publish.bytes", "publish.seq", "publish.owner",
	"publish.state", "publish.unlocked", "abandon.owner", "abandon.state", "abandon.unlocked",
	"job_release.published_all", "job_release.producer", "job_release.requeue", "job_release.unlocked",
	"take.token", "take.owner", "take.state",
	"release.bit", "release.chunks_written", "release.finalizer", "release.owner", "release.state",
	"release.unlocked", "claim.finalizer", "finish.t_end", "finish.state", "finish.finalizer",
	"plan.backend", "plan.layout", "plan.planned", "prepared.identity", "prepared.prepared",
};

/* ---- crash test: checks ---- */

static void check_job_reclaimed(uint32_t i, const struct egr_job_sh *o, const struct egr_job_sh *j, pid_t dead)
{
	uint32_t state = o->state, restarts = o->producer_restarts;

	/* a kill from outside is no evidence against the job: it resumes, however often */
	if (o->producer == dead && o->state == EGR_JOB_ACTIVE) {
		restarts++;
		state = EGR_JOB_QUEUED;
	}
	CHECKX(j->state == state && j->producer_restarts == restarts,
	       "job %u: state %u, %u restarts -> %u, %u; want %u, %u", i, o->state, o->producer_restarts, j->state,
	       j->producer_restarts, state, restarts);
	CHECKX(j->producer == (o->producer == dead ? 0 : o->producer) &&
	       j->finalizer == (o->finalizer == dead ? 0 : o->finalizer),
	       "job %u: producer %d, finalizer %d -> %d, %d", i, o->producer, o->finalizer, j->producer, j->finalizer);
	if (state == EGR_JOB_FAILED && o->state != EGR_JOB_FAILED)
		CHECKX(!strcmp(j->error, WHY), "job %u failed with \"%s\"", i, j->error);
}

/* egr_ring_reclaim(dead) as the supervisor calls it; each change checked against ring.h */
static void reclaim_checked(struct egr_ring *r, pid_t dead)
{
	static struct egr_slot_sh os[NSLOTS];
	static struct egr_job_sh oj[EGR_RING_JOBS];
	uint32_t held = 0;
	int n;

	for (uint32_t i = 0; i < NSLOTS; i++)
		os[i] = *egr_ring_slot(r, i);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		oj[i] = *egr_ring_job(r, i);
	n = reclaim_outside(r, dead);
	for (uint32_t i = 0; i < NSLOTS; i++) {
		const struct egr_slot_sh *o = &os[i], *s = egr_ring_slot(r, i);
		uint32_t want = o->state;

		if (o->owner == dead && o->state == EGR_SLOT_WRITING)
			want = EGR_SLOT_READY;
		else if (o->owner == dead && o->state == EGR_SLOT_FILLING)
			want = EGR_SLOT_FREE;
		held += want != o->state;
		CHECKX(s->state == want && s->owner == (o->owner == dead ? 0 : o->owner),
		       "slot %u: state %u, owner %d -> %u, %d; want state %u", i, o->state, o->owner, s->state,
		       s->owner, want);
	}
	CHECKX(n == (int)held, "reclaim gave back %d slots; %u were held", n, held);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		check_job_reclaimed(i, &oj[i], egr_ring_job(r, i), dead);
}

static void check_job(struct egr_ring *r, uint32_t i)
{
	const struct egr_job_sh *j = egr_ring_job(r, i);
	char path[EGR_JOB_NAME_MAX + 8];

	if (j->state == EGR_JOB_EMPTY)
		return;
	snprintf(path, sizeof(path), "/spool/%s", j->name);
	CHECKX(j->state <= EGR_JOB_FAILED && j->name[0] && !strcmp(j->path, path) &&
	       j->spec.chunk_frames == spec.chunk_frames, "job %u: state %u, name \"%s\", path \"%s\": torn entry",
	       i, j->state, j->name, j->path);
	CHECKX((j->producer == 0 || j->producer == getpid()) && j->finalizer == 0,
	       "job %u: producer %d, finalizer %d after every dead process was reclaimed", i, j->producer,
	       j->finalizer);
	CHECKX(j->state != EGR_JOB_ACTIVE || j->producer || j->published_all,
	       "job %u: ACTIVE, not all published, and nobody produces it: stuck", i);
	CHECKX(j->state != EGR_JOB_FAILED || j->error[0], "job %u FAILED without a reason", i);
}

/*
 * ring.h's invariants once every dead process is reclaimed; this process
 * holds no slot here, so no slot may be FILLING or WRITING.
 */
static void check_invariants(struct egr_ring *r, int sems)
{
	struct egr_ring_hdr *h = egr_ring_hdr(r);

	for (uint32_t i = 0; i < NSLOTS; i++) {
		const struct egr_slot_sh *s = egr_ring_slot(r, i);

		CHECKX((s->state == EGR_SLOT_FREE || s->state == EGR_SLOT_READY) && s->owner == 0,
		       "slot %u: state %u, owner %d, and nobody alive holds it: lost", i, s->state, s->owner);
		for (uint32_t k = 0; k < i; k++) {
			const struct egr_slot_sh *t = egr_ring_slot(r, k);
			CHECKX(s->state == EGR_SLOT_FREE || t->state == EGR_SLOT_FREE || s->job != t->job ||
			       s->chunk != t->chunk, "slots %u and %u both hold job %u chunk %u", k, i, s->job, s->chunk);
		}
	}
	if (sems) {
		CHECKX(sem_value(&h->sem_free) >= (int)count_slots(r, EGR_SLOT_FREE), "sem_free %d, %u slots FREE",
		       sem_value(&h->sem_free), count_slots(r, EGR_SLOT_FREE));
		CHECKX(sem_value(&h->sem_ready) >= (int)count_slots(r, EGR_SLOT_READY),
		       "sem_ready %d, %u slots READY", sem_value(&h->sem_ready), count_slots(r, EGR_SLOT_READY));
	}
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		check_job(r, i);
}

static void check_job_final(struct egr_ring *r, uint32_t i)
{
	const struct egr_job_sh *j = egr_ring_job(r, i);
	uint32_t written = 0;

	CHECKX(j->state != EGR_JOB_QUEUED && j->state != EGR_JOB_ACTIVE && !j->producer && !j->finalizer,
	       "job %u unfinished: state %u, producer %d, finalizer %d", i, j->state, j->producer, j->finalizer);
	if (j->state != EGR_JOB_DONE)
		return;
	/* every slot is FREE now: a chunk not needed is a chunk whose bit is set */
	for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
		int w = !egr_ring_chunk_needed(r, i, c);

		written += (uint32_t)w;
		CHECKX(w == (c < j->lay.chunks_total), "job %u chunk %u: written %d, the job has %u chunks", i, c, w,
		       j->lay.chunks_total);
		if (w && c < NCHUNKS)
			CHECKX(sh->taken[i][c] > 0, "job %u chunk %u written but never published", i, c);
	}
	CHECKX(j->lay.chunks_total == NCHUNKS && j->chunks_written == written,
	       "job %u: chunks_written %u, %u chunks written, chunks_total %u", i, j->chunks_written, written,
	       j->lay.chunks_total);
}

static void check_final(struct egr_ring *r, int sems)
{
	for (uint32_t i = 0; i < NSLOTS; i++)
		CHECKX(egr_ring_slot(r, i)->state == EGR_SLOT_FREE && !egr_ring_slot(r, i)->owner,
		       "slot %u: state %u after every job finished", i, egr_ring_slot(r, i)->state);
	if (sems)
		CHECKX(sem_value(&egr_ring_hdr(r)->sem_free) >= NSLOTS, "sem_free %d with every slot FREE",
		       sem_value(&egr_ring_hdr(r)->sem_free));
	CHECKX(!sh->bad_data, "%u slots taken whose data was not their chunk's", sh->bad_data);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		check_job_final(r, i);
}

/* ---- crash test: the parent finishes what the dead left ---- */

/* producer of job jix from where it stands: every chunk still needed */
static void produce_rest(struct egr_ring *r, uint32_t jix)
{
	const struct egr_job_sh *j = egr_ring_job(r, jix);

	prepare(r, jix);
	for (uint32_t c = 0; c < j->lay.chunks_total && j->state == EGR_JOB_ACTIVE; c++) {
		if (!egr_ring_chunk_needed(r, jix, c))
			continue;
		/* no worker runs: make room, as backpressure would wait for one */
		while (count_slots(r, EGR_SLOT_FREE) == 0 && consume(r, 1, NULL, 1) == 0)
			;
		int rc = produce(r, jix, c, 0);
		CHECKX(rc == 0 || (rc == -ECANCELED && !timer_fired && j->state != EGR_JOB_ACTIVE),
		       "acquire with %u slots FREE: %d (timer %d)", count_slots(r, EGR_SLOT_FREE), rc, (int)timer_fired);
	}
	egr_ring_job_release(r, jix, j->state == EGR_JOB_ACTIVE);
}

/* producer, worker and finalizer of every job left, until none is */
static void finish_all(struct egr_ring *r)
{
	for (int round = 0; round < 64; round++) {
		int jix = -1, f;

		for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
			if (egr_ring_job(r, i)->producer == getpid())
				jix = (int)i;
		if (jix < 0)
			jix = egr_ring_job_next(r, 0, NULL);
		if (jix >= 0) {
			produce_rest(r, (uint32_t)jix);
		} else if (count_slots(r, EGR_SLOT_READY)) {
			int rc = consume(r, 1, NULL, 1);
			CHECKX(rc == 0, "take with %u slots READY: %d", count_slots(r, EGR_SLOT_READY), rc);
			if (rc)
				return;
		} else if ((f = egr_ring_claim_finalize(r)) >= 0) {
			egr_ring_job_finish(r, (uint32_t)f, 1, NULL);
		} else {
			return;
		}
	}
	CHECKX(0, "jobs still unfinished after 64 rounds");
}

/* ---- crash test: the loop ---- */

static void on_kill(const char *point)
{
	snprintf(sh->point, sizeof(sh->point), "%s", point);
}

/*
 * A child runs the scenario and SIGKILLs itself at its n-th fault point.
 * 1 if it died there, 0 if it ran to the end, -1 if a check failed.
 */
static int crash_once(const struct scenario *sc, long n)
{
	struct egr_ring *r = ring_new();
	int status = 0, died, before = failures;
	pid_t pid;

	memset(sh, 0, sizeof(*sh));
	sc->setup(r);
	pid = fork();
	if (pid == 0) {
#ifdef EGR_TESTING
		egr_ring_fault_arm(n, on_kill);
#endif
		_exit(sc->run(r) ? 3 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		printf("fork/waitpid: %s\n", strerror(errno));
		exit(1);
	}
	died = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && sh->point[0];
	snprintf(ctx, sizeof(ctx), "%s, n=%ld (%s)", sc->name, n, died ? sh->point : "ran to the end");
	if (!died && status != 0) {
		CHECKX(0, "child: wait status 0x%x, unexpected result at line %d", status, sh->fail_line);
	} else {
		reclaim_checked(r, pid);
		if (sc->reclaimer)
			reclaim_checked(r, FAKE_PID);	/* a dead reclaimer's work is redone */
		/* a reclaimer's death may lose tokens: waiters rescan, finish_all shows */
		check_invariants(r, !sc->reclaimer);
		finish_all(r);
		check_final(r, !sc->reclaimer);
	}
	ring_free(r);
	return failures != before ? -1 : died;
}

static void test_crash(void)
{
	static unsigned hits[ARRAY_SIZE(points)];
	unsigned kills = 0, reached = 0;

#ifndef EGR_TESTING
	printf("note: not a test build (EGR_TESTING): no fault points, crash test skipped\n");
	return;
#endif
	for (size_t s = 0; s < ARRAY_SIZE(scenarios) && failures < 20; s++) {
		for (long n = 0; n < 10000; n++) {
			if (crash_once(&scenarios[s], n) <= 0)
				break;
			kills++;
			for (size_t p = 0; p < ARRAY_SIZE(points); p++)
				hits[p] += !strcmp(sh->point, points[p]);
		}
	}
	for (size_t p = 0; p < ARRAY_SIZE(points); p++) {
		reached += hits[p] > 0;
		CHECK(hits[p] > 0, "fault point %s: no scenario reached it", points[p]);
	}
	printf("test_ring: %u crashes at %u of %zu fault points in %zu scenarios, each reclaimed and checked\n",
	       kills, reached, ARRAY_SIZE(points), ARRAY_SIZE(scenarios));
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };

	/* dead lock holders and stale segments are this test's daily bread */
	egr_log_set_level(EGR_LOG_ERR);
	sigaction(SIGALRM, &sa, NULL);
	snprintf(ring_name, sizeof(ring_name), "/egrt-ring-%d", (int)getpid());
	snprintf(ring_name2, sizeof(ring_name2), "/egrt-ring-%d-b", (int)getpid());
	atexit(unlink_rings);
	spec.chunk_frames = 7;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		printf("mmap(shared, %zu bytes): %s\n", sizeof(*sh), strerror(errno));
		return 1;
	}
	test_create_attach();
	test_live_and_stale();
	test_backpressure();
	test_timeouts();
	test_take_order();
	test_job_table();
	test_first_error();
	test_chunk_needed();
	test_frames_written();
	test_blame();
	test_crash();
	return failures ? 1 : 0;
}
