/*
 * ring: the shared region of egressd; protocol and crash rules in ring.h.
 *
 * Every critical section below writes absolute values (never read-modify-
 * write of counters that a repeat would double) and stores a slot's or a
 * job's `state` last when taking it, but before its owner (producer) is
 * cleared when letting it go: reclaim finds what the dead held by pid.  So a
 * process killed at any instruction inside one leaves a prefix the next
 * locker can accept after EOWNERDEAD; tests/unit/test_ring.c kills at each.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "shm/ring.h"

#define RING_ALIGN 64
#define RING_WAIT_MS 100	/* longest sleep before a rescan of the state array */

struct egr_ring {
	struct egr_ring_hdr *h;
	size_t len;
	char name[128];
};

/*
 * Fault points: EGR_RING_FAULT("op.step") follows every shared store of a
 * critical section, and every place a semaphore token is held outside one.
 * Test builds can SIGKILL the process at the n-th point (tests/unit/
 * test_ring.c walks them all); other builds get a compiler barrier, so the
 * stores stay in the order written, whose every prefix must be recoverable.
 */
#ifdef EGR_TESTING
static long fault_left = -1;
static void (*fault_on_kill)(const char *point);

void egr_ring_fault_arm(long n, void (*on_kill)(const char *point))
{
	fault_left = n;
	fault_on_kill = on_kill;
}

static __attribute__((noinline)) void ring_fault(const char *point)
{
	if (fault_left < 0 || fault_left-- > 0)
		return;
	if (fault_on_kill)
		fault_on_kill(point);
	raise(SIGKILL);
}
#define EGR_RING_FAULT(point) ring_fault(point)
#else
#define EGR_RING_FAULT(point) __asm__ __volatile__("" ::: "memory")
#endif

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (uint64_t)p : 4096;
}

static uint64_t bitmap_bytes(uint32_t max_chunks)
{
	return align_up(((uint64_t)max_chunks + 7) / 8, 8);
}

/* Offsets of the regions for geometry g; returns the total size. */
static uint64_t ring_layout(const struct egr_ring_geom *g, uint64_t *meta, uint64_t *bitmap,
			    uint64_t *data)
{
	uint64_t off = align_up(sizeof(struct egr_ring_hdr), RING_ALIGN);

	*meta = off;
	off = align_up(off + (uint64_t)g->nslots * sizeof(struct egr_slot_sh), RING_ALIGN);
	*bitmap = off;
	off += EGR_RING_JOBS * bitmap_bytes(g->max_chunks);
	off = align_up(off, page_size());
	*data = off;
	return off + (uint64_t)g->nslots * g->slot_bytes;
}

uint64_t egr_ring_segment_bytes(const struct egr_ring_geom *g)
{
	uint64_t a, b, c;
	struct egr_ring_geom gg = *g;

	gg.slot_bytes = align_up(g->slot_bytes, page_size());
	return ring_layout(&gg, &a, &b, &c);
}

static int pid_alive(pid_t pid)
{
	if (pid <= 0)
		return 0;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * An existing segment: whose is it?  0 if stale (safe to replace), -EBUSY
 * if a live egressd owns it.
 */
/*
 * 1 if pid runs an egressd child ("egressd-...") attached to segment name
 * (its command line has "--shm name"): /proc/PID/cmdline, so a reused pid
 * running anything else is never taken for one.
 */
static int orphan_of(pid_t pid, const char *name)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd, prev_shm = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *base = strrchr(buf, '/');
	if (strncmp(base ? base + 1 : buf, "egressd-", 8) != 0)
		return 0;
	for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
		if (prev_shm && strcmp(a, name) == 0)
			return 1;
		prev_shm = strcmp(a, "--shm") == 0;
	}
	return 0;
}

/*
 * The children of a dead supervisor die with it (PR_SET_PDEATHSIG), but not
 * at once: one inside a system call (creating a temporary output, say)
 * finishes it first.  Before the segment is rebuilt and the new supervisor
 * recovers the old run's outputs from their journals, every process still
 * attached to the old segment is killed and waited for, so nothing of the
 * old run acts behind the recovery's back (rebuild on doubt).
 */
static void reap_orphans(const char *name)
{
	for (int round = 0; round < 200; round++) {	/* 2 s at most */
		DIR *d = opendir("/proc");
		struct dirent *de;
		int found = 0;

		if (!d)
			return;
		while ((de = readdir(d))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);
			if (*end || pid <= 1 || pid == getpid() || !orphan_of((pid_t)pid, name))
				continue;
			if (round == 0)
				egr_notice("killing pid %ld, left attached to stale shared memory %s", pid, name);
			kill((pid_t)pid, SIGKILL);
			found = 1;
		}
		closedir(d);
		if (!found)
			return;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
}

static int ring_check_stale(const char *name, char *err, size_t errlen)
{
	struct stat st;
	int fd = shm_open(name, O_RDONLY, 0);
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct egr_ring_hdr)) {
		struct egr_ring_hdr *h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
		if (h != MAP_FAILED) {
			if (h->magic == EGR_RING_MAGIC && h->supervisor != getpid() &&
			    pid_alive(h->supervisor)) {
				egr_errf(err, errlen,
					 "shared memory %s belongs to a running egressd (pid %d): stop it or give this one another [daemon] instance",
					 name, (int)h->supervisor);
				rc = -EBUSY;
			} else {
				egr_notice("replacing stale shared memory %s (its creator, pid %d, is gone)",
					   name, (int)h->supervisor);
				reap_orphans(name);
			}
			munmap(h, sizeof(*h));
		}
	}
	close(fd);
	return rc;
}

int egr_ring_create(const char *name, const struct egr_ring_geom *g, struct egr_ring **out,
		    char *err, size_t errlen)
{
	struct egr_ring_geom gg = *g;
	uint64_t meta, bitmap, data, total;
	pthread_mutexattr_t ma;
	struct egr_ring *r = NULL;
	struct egr_ring_hdr *h = MAP_FAILED;
	int fd = -1, rc;

	if (g->nslots < 2 || g->slot_bytes == 0 || g->max_chunks == 0) {
		egr_errf(err, errlen, "ring geometry: need at least 2 slots of non-zero size");
		return -EINVAL;
	}
	gg.slot_bytes = align_up(g->slot_bytes, page_size());
	total = ring_layout(&gg, &meta, &bitmap, &data);

	for (int attempt = 0; attempt < 2; attempt++) {
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
		rc = ring_check_stale(name, err, errlen);
		if (rc)
			return rc;
		if (shm_unlink(name) < 0 && errno != ENOENT) {
			rc = -errno;
			egr_errf(err, errlen, "shm_unlink(\"%s\") of a stale segment: %s", name, egr_log_strerror(errno));
			return rc;
		}
	}
	if (fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "shm_open(\"%s\", O_CREAT|O_EXCL): %s", name, egr_log_strerror(errno));
		return rc;
	}
	if (ftruncate(fd, (off_t)total) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "ftruncate(shm \"%s\", %llu bytes): %s", name,
			 (unsigned long long)total, egr_log_strerror(errno));
		goto fail;
	}
	h = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		rc = -errno;
		egr_errf(err, errlen, "mmap(shm \"%s\", %llu bytes, MAP_SHARED): %s", name,
			 (unsigned long long)total, egr_log_strerror(errno));
		goto fail;
	}
	/* a fresh segment is zero-filled: only non-zero fields are set */
	h->version = EGR_RING_VERSION;
	h->hdr_bytes = sizeof(*h);
	h->total_bytes = total;
	h->nslots = gg.nslots;
	h->max_chunks = gg.max_chunks;
	h->slot_bytes = gg.slot_bytes;
	h->slots_meta_off = meta;
	h->bitmap_off = bitmap;
	h->data_off = data;
	h->supervisor = getpid();
	h->next_seq = 1;

	if ((rc = pthread_mutexattr_init(&ma)) != 0 ||
	    (rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (rc = pthread_mutex_init(&h->lock, &ma)) != 0) {
		egr_errf(err, errlen, "pthread_mutex_init(robust, process-shared): %s", egr_log_strerror(rc));
		rc = -rc;
		goto fail;
	}
	pthread_mutexattr_destroy(&ma);
	if (sem_init(&h->sem_free, 1, gg.nslots) < 0 || sem_init(&h->sem_ready, 1, 0) < 0 ||
	    sem_init(&h->sem_jobs, 1, 0) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "sem_init(process-shared): %s", egr_log_strerror(errno));
		goto fail;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		egr_errf(err, errlen, "out of memory");
		goto fail;
	}
	__atomic_store_n(&h->magic, EGR_RING_MAGIC, __ATOMIC_RELEASE);
	close(fd);
	r->h = h;
	r->len = total;
	snprintf(r->name, sizeof(r->name), "%s", name);
	*out = r;
	return 0;
fail:
	if (h != MAP_FAILED)
		munmap(h, total);
	close(fd);
	shm_unlink(name);
	return rc;
}

int egr_ring_attach(const char *name, struct egr_ring **out, char *err, size_t errlen)
{
	struct stat st;
	struct egr_ring_hdr *h;
	struct egr_ring *r;
	int fd, rc;

	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "shm_open(\"%s\"): %s", name, egr_log_strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "fstat(shm \"%s\"): %s", name, egr_log_strerror(errno));
		close(fd);
		return rc;
	}
	if ((size_t)st.st_size < sizeof(*h)) {
		egr_errf(err, errlen, "shared memory %s is %lld bytes, smaller than an egressd header (%zu)",
			 name, (long long)st.st_size, sizeof(*h));
		close(fd);
		return -EPROTO;
	}
	h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		rc = -errno;
		egr_errf(err, errlen, "mmap(shm \"%s\", %lld bytes): %s", name, (long long)st.st_size,
			 egr_log_strerror(errno));
		return rc;
	}
	rc = -EPROTO;
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != EGR_RING_MAGIC)
		egr_errf(err, errlen, "shared memory %s: magic 0x%016llx, expected 0x%016llx (not an egressd segment)",
			 name, (unsigned long long)h->magic, (unsigned long long)EGR_RING_MAGIC);
	else if (h->version != EGR_RING_VERSION)
		egr_errf(err, errlen, "shared memory %s: layout version %u, this binary expects %u (mixed egressd builds: restart the daemon)",
			 name, h->version, EGR_RING_VERSION);
	else if (h->hdr_bytes != sizeof(*h))
		egr_errf(err, errlen, "shared memory %s: header of %u bytes, this binary expects %zu (mixed egressd builds)",
			 name, h->hdr_bytes, sizeof(*h));
	else if (h->total_bytes != (uint64_t)st.st_size)
		egr_errf(err, errlen, "shared memory %s: header says %llu bytes, segment has %lld",
			 name, (unsigned long long)h->total_bytes, (long long)st.st_size);
	else
		rc = 0;
	if (rc)
		goto fail;
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		egr_errf(err, errlen, "out of memory");
		goto fail;
	}
	r->h = h;
	r->len = (size_t)st.st_size;
	snprintf(r->name, sizeof(r->name), "%s", name);
	*out = r;
	return 0;
fail:
	munmap(h, (size_t)st.st_size);
	return rc;
}

void egr_ring_close(struct egr_ring *r)
{
	if (!r)
		return;
	munmap(r->h, r->len);
	free(r);
}

/* A stale oneshot segment: its jobs' temporary outputs to left(), then gone. */
static int reap_oneshot(const char *name, void (*left)(void *ctx, const struct egr_job_view *j), void *ctx)
{
	struct egr_ring *r = NULL;
	char err[256];

	/* attached first, so the record outlives the unlink that makes it ours */
	if (left && egr_ring_attach(name, &r, err, sizeof(err)) < 0)
		r = NULL;	/* not a segment we can read: just unlink it */
	if (shm_unlink(name) < 0) {
		egr_ring_close(r);	/* another starting egressd reaps it */
		return 0;
	}
	for (uint32_t i = 0; r && i < EGR_RING_JOBS; i++) {
		struct egr_job_view v;
		if (egr_ring_job_view(r, i, &v) == 0 && v.planned && v.state != EGR_JOB_EMPTY &&
		    v.state != EGR_JOB_DONE)
			left(ctx, &v);
	}
	egr_ring_close(r);
	return 1;
}

int egr_ring_reap_oneshots(const char *instance, void (*left)(void *ctx, const struct egr_job_view *j),
			   void *ctx)
{
	char prefix[96];
	size_t plen;
	struct dirent *de;
	DIR *d = opendir("/dev/shm");
	int n = 0;

	if (!d)
		return 0;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s.oneshot.", instance);
	while ((de = readdir(d))) {
		char *end, name[300];
		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		long pid = strtol(de->d_name + plen, &end, 10);
		if (*end || pid <= 0 || pid == getpid() || pid_alive((pid_t)pid))
			continue;
		snprintf(name, sizeof(name), "/%s", de->d_name);
		if (reap_oneshot(name, left, ctx)) {
			egr_notice("removed shared memory %s left by a --oneshot run (pid %ld) that was killed", name,
				   pid);
			n++;
		}
	}
	closedir(d);
	return n;
}

int egr_ring_unlink(const char *name)
{
	return shm_unlink(name) < 0 ? -errno : 0;
}

static struct egr_slot_sh *slot_sh(struct egr_ring *r, uint32_t slot)
{
	return (struct egr_slot_sh *)((char *)r->h + r->h->slots_meta_off) + slot;
}

void egr_ring_info(struct egr_ring *r, struct egr_ring_info *out)
{
	out->nslots = r->h->nslots;
	out->max_chunks = r->h->max_chunks;
	out->slot_bytes = r->h->slot_bytes;
	out->total_bytes = r->h->total_bytes;
}

void *egr_ring_slot_data(struct egr_ring *r, uint32_t slot)
{
	return (char *)r->h + r->h->data_off + (uint64_t)slot * r->h->slot_bytes;
}

void *egr_ring_data_base(struct egr_ring *r)
{
	return (char *)r->h + r->h->data_off;
}

size_t egr_ring_data_len(struct egr_ring *r)
{
	return (size_t)(r->h->nslots * r->h->slot_bytes);
}

static uint64_t *job_bitmap(struct egr_ring *r, uint32_t job)
{
	return (uint64_t *)((char *)r->h + r->h->bitmap_off + job * bitmap_bytes(r->h->max_chunks));
}

void egr_ring_lock(struct egr_ring *r)
{
	int rc = pthread_mutex_lock(&r->h->lock);

	if (rc == EOWNERDEAD) {
		/* the state a dead holder left is a valid prefix (see top of file) */
		egr_warn("a process died holding the ring lock; its state is consistent, carrying on");
		pthread_mutex_consistent(&r->h->lock);
	} else if (rc) {
		egr_err("pthread_mutex_lock(ring %s): %s", r->name, egr_log_strerror(rc));
		abort();	/* shared state unusable: the supervisor rebuilds it */
	}
	EGR_RING_FAULT("lock.held");
}

void egr_ring_unlock(struct egr_ring *r)
{
	pthread_mutex_unlock(&r->h->lock);
}

/*
 * Wait for a token on sem for at most ms.  0 with a token, -ETIMEDOUT or
 * -EINTR without: callers rescan either way.
 */
static int sem_wait_ms(sem_t *sem, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return sem_timedwait(sem, &ts) == 0 ? 0 : -errno;
}

static void sem_post_n(sem_t *sem, uint32_t n)
{
	while (n--)
		sem_post(sem);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- jobs ---- */

/* Caller holds the lock. */
static void job_fail_locked(struct egr_job_sh *j, const char *msg)
{
	if (j->state != EGR_JOB_QUEUED && j->state != EGR_JOB_ACTIVE)
		return;	/* first error wins; DONE stays DONE */
	snprintf(j->error, sizeof(j->error), "%s", msg && *msg ? msg : "failed");
	EGR_RING_FAULT("job_fail.error");
	j->st.t_end_ns = realtime_ns();
	EGR_RING_FAULT("job_fail.t_end");
	j->state = EGR_JOB_FAILED;
	EGR_RING_FAULT("job_fail.state");
}

int egr_ring_job_queue(struct egr_ring *r, const char *name, const char *path,
		       const struct egr_jobspec *js)
{
	struct egr_ring_hdr *h = r->h;
	int idx = -ENOSPC;

	egr_ring_lock(r);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_sh *j = &h->jobs[i];
		if (j->state != EGR_JOB_EMPTY)
			continue;
		memset(j, 0, sizeof(*j));
		EGR_RING_FAULT("queue.zero");
		memset(job_bitmap(r, i), 0, bitmap_bytes(h->max_chunks));
		EGR_RING_FAULT("queue.bitmap");
		snprintf(j->name, sizeof(j->name), "%s", name);
		EGR_RING_FAULT("queue.name");
		snprintf(j->path, sizeof(j->path), "%s", path);
		EGR_RING_FAULT("queue.path");
		j->spec = *js;
		EGR_RING_FAULT("queue.spec");
		j->st.t_queued_ns = realtime_ns();
		EGR_RING_FAULT("queue.t_queued");
		j->state = EGR_JOB_QUEUED;
		EGR_RING_FAULT("queue.state");
		idx = (int)i;
		break;
	}
	egr_ring_unlock(r);
	EGR_RING_FAULT("queue.unlocked");
	if (idx >= 0)
		sem_post(&h->sem_jobs);
	return idx;
}

uint32_t egr_ring_job_slots(struct egr_ring *r, uint32_t job)
{
	uint32_t n = 0;

	egr_ring_lock(r);
	for (uint32_t i = 0; i < r->h->nslots; i++) {
		struct egr_slot_sh *s = slot_sh(r, i);
		if (s->state != EGR_SLOT_FREE && s->job == job)
			n++;
	}
	egr_ring_unlock(r);
	return n;
}

void egr_ring_job_clear(struct egr_ring *r, uint32_t job)
{
	egr_ring_lock(r);
	r->h->jobs[job].state = EGR_JOB_EMPTY;
	EGR_RING_FAULT("clear.state");
	egr_ring_unlock(r);
}

void egr_ring_job_fail(struct egr_ring *r, uint32_t job, const char *msg)
{
	egr_ring_lock(r);
	job_fail_locked(&r->h->jobs[job], msg);
	egr_ring_unlock(r);
}

int egr_ring_job_cancel(struct egr_ring *r, uint32_t job, const char *msg)
{
	struct egr_job_sh *j = &r->h->jobs[job];
	int rc = 0;

	egr_ring_lock(r);
	if (j->state != EGR_JOB_QUEUED && j->state != EGR_JOB_ACTIVE)
		rc = -ESRCH;
	else if (j->finalizer)
		rc = -EBUSY;
	else
		job_fail_locked(j, msg);
	egr_ring_unlock(r);
	return rc;
}

/*
 * Count a death against job j, which the dead process was on at chunk
 * (UINT32_MAX: between chunks, UINT32_MAX - 1: finalizing); fail the job
 * once a limit is reached.
 * Caller holds the lock.
 */
static void job_blame_locked(struct egr_job_sh *j, const struct egr_death *d, uint32_t chunk)
{
	char why[EGR_ERR_MAX], where[96];

	if (d->cause == EGR_DEATH_OOM) {
		j->ooms++;
		if (j->ooms < d->oom_limit)
			return;
		snprintf(why, sizeof(why),
			 "the kernel's OOM killer took the %s %u times while it worked on this job (%ux%u, %u frames a chunk): give egressd more memory, or lower chunk_frames or [ring] slot_bytes",
			 d->role, j->ooms, j->lay.width, j->lay.height, j->lay.chunk_frames);
		job_fail_locked(j, why);
		return;
	}
	if (d->cause != EGR_DEATH_CRASH)
		return;
	if (j->crashes && j->crash_chunk == chunk) {
		j->crashes++;
	} else {
		j->crash_chunk = chunk;
		j->crashes = 1;
	}
	if (j->crashes < d->crash_limit)
		return;
	if (chunk == UINT32_MAX - 1)
		snprintf(where, sizeof(where), "while finalizing its output");
	else if (chunk == UINT32_MAX)
		snprintf(where, sizeof(where), "between chunks");
	else {
		uint32_t lf, ln, f, n;

		egr_layout_chunk(&j->lay, chunk, &lf, &ln, &f, &n);
		snprintf(where, sizeof(where), "at chunk %u (frames %u-%u)", chunk, f, n ? f + n - 1 : f);
	}
	snprintf(why, sizeof(why), "the %s crashed %u times in a row on this job %s, last %s: its input is likely corrupt or hits a bug; see the log",
		 d->role, j->crashes, where, d->how);
	job_fail_locked(j, why);
}

/* The lowest chunk of job the dead process held in a slot, or UINT32_MAX. */
static uint32_t held_chunk(struct egr_ring *r, pid_t dead, uint32_t job)
{
	uint32_t c = UINT32_MAX;

	for (uint32_t i = 0; i < r->h->nslots; i++) {
		struct egr_slot_sh *s = slot_sh(r, i);
		if (s->owner == dead && s->job == job && s->chunk < c &&
		    (s->state == EGR_SLOT_FILLING || s->state == EGR_SLOT_WRITING))
			c = s->chunk;
	}
	return c;
}

int egr_ring_reclaim(struct egr_ring *r, const struct egr_death *d)
{
	struct egr_ring_hdr *h = r->h;
	uint32_t to_ready = 0, to_free = 0, requeued = 0;
	pid_t dead = d->pid;

	egr_ring_lock(r);
	/* blame first, while the dead process's slots still say where it was */
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_sh *j = &h->jobs[i];
		uint32_t c = held_chunk(r, dead, i);
		if (c == UINT32_MAX && j->finalizer == dead)
			c = UINT32_MAX - 1;
		if ((j->producer == dead || j->finalizer == dead || c != UINT32_MAX) &&
		    (j->state == EGR_JOB_ACTIVE || j->state == EGR_JOB_QUEUED))
			job_blame_locked(j, d, c);
	}
	for (uint32_t i = 0; i < h->nslots; i++) {
		struct egr_slot_sh *s = slot_sh(r, i);
		if (s->owner != dead)
			continue;
		if (s->state == EGR_SLOT_WRITING) {
			/* rewritten by another worker: same bytes at the same offset */
			struct egr_job_sh *j = &h->jobs[s->job];
			j->st.rewrites++;
			EGR_RING_FAULT("reclaim.rewrites");
			s->state = EGR_SLOT_READY;
			EGR_RING_FAULT("reclaim.ready");
			s->owner = 0;
			EGR_RING_FAULT("reclaim.owner");
			to_ready++;
		} else if (s->state == EGR_SLOT_FILLING) {
			s->state = EGR_SLOT_FREE;
			EGR_RING_FAULT("reclaim.free");
			s->owner = 0;
			EGR_RING_FAULT("reclaim.owner");
			to_free++;
		} else {
			s->owner = 0;
			EGR_RING_FAULT("reclaim.owner");
		}
	}
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_sh *j = &h->jobs[i];
		if (j->finalizer == dead)
			j->finalizer = 0;
		EGR_RING_FAULT("reclaim.finalizer");
		if (j->producer == dead && j->state == EGR_JOB_ACTIVE) {
			/* state first, producer last: a repeat finds what is left to do */
			j->state = EGR_JOB_QUEUED;	/* resumed by the next producer */
			EGR_RING_FAULT("reclaim.requeue");
			requeued++;
			j->producer_restarts++;
			EGR_RING_FAULT("reclaim.restarts");
			j->producer = 0;
			EGR_RING_FAULT("reclaim.producer");
		} else if (j->producer == dead) {
			j->producer = 0;
			EGR_RING_FAULT("reclaim.producer");
		}
	}
	egr_ring_unlock(r);
	EGR_RING_FAULT("reclaim.unlocked");
	/*
	 * Over-post: the dead process may also have taken a token it never
	 * used.  A surplus token costs one empty rescan, a missing one a
	 * RING_WAIT_MS stall.
	 */
	sem_post_n(&h->sem_ready, to_ready + 1);
	sem_post_n(&h->sem_free, to_free + 1);
	sem_post_n(&h->sem_jobs, requeued + 1);
	return (int)(to_ready + to_free);
}

void egr_ring_wake_all(struct egr_ring *r)
{
	struct egr_ring_hdr *h = r->h;

	__atomic_store_n(&h->stopping, 1, __ATOMIC_RELEASE);
	sem_post_n(&h->sem_ready, h->nslots + 64);
	sem_post_n(&h->sem_free, h->nslots + 4);
	sem_post_n(&h->sem_jobs, 4);
}

/* ---- producer ---- */

static int stopped(struct egr_ring *r, const volatile sig_atomic_t *stop)
{
	return (stop && *stop) || __atomic_load_n(&r->h->stopping, __ATOMIC_ACQUIRE);
}

int egr_ring_job_next(struct egr_ring *r, int timeout_ms, const volatile sig_atomic_t *stop)
{
	struct egr_ring_hdr *h = r->h;
	uint64_t deadline = egr_log_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		int best = -1;

		if (stopped(r, stop))
			return -ECANCELED;
		egr_ring_lock(r);
		for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
			struct egr_job_sh *j = &h->jobs[i];
			if (j->state == EGR_JOB_QUEUED &&
			    (best < 0 || j->st.t_queued_ns < h->jobs[best].st.t_queued_ns))
				best = (int)i;
		}
		if (best >= 0) {
			struct egr_job_sh *j = &h->jobs[best];
			j->producer = getpid();
			EGR_RING_FAULT("next.producer");
			if (!j->st.t_start_ns)
				j->st.t_start_ns = realtime_ns();
			EGR_RING_FAULT("next.t_start");
			j->state = EGR_JOB_ACTIVE;
			EGR_RING_FAULT("next.state");
		}
		egr_ring_unlock(r);
		if (best >= 0)
			return best;
		uint64_t now = egr_log_now_ns();
		if (now >= deadline)
			return -EAGAIN;
		uint64_t left_ms = (deadline - now) / 1000000ull + 1;
		sem_wait_ms(&h->sem_jobs, left_ms < RING_WAIT_MS ? (int)left_ms : RING_WAIT_MS);
	}
}

int egr_ring_chunk_needed(struct egr_ring *r, uint32_t job, uint32_t chunk)
{
	int needed = 1;

	egr_ring_lock(r);
	if (job_bitmap(r, job)[chunk / 64] & (1ull << (chunk % 64))) {
		needed = 0;
	} else {
		for (uint32_t i = 0; i < r->h->nslots; i++) {
			struct egr_slot_sh *s = slot_sh(r, i);
			if (s->state != EGR_SLOT_FREE && s->state != EGR_SLOT_FILLING && s->job == job &&
			    s->chunk == chunk) {
				needed = 0;
				break;
			}
		}
	}
	egr_ring_unlock(r);
	return needed;
}

int egr_ring_acquire(struct egr_ring *r, uint32_t job, uint32_t chunk, uint32_t *slot,
		     uint64_t *blocked_ns, const volatile sig_atomic_t *stop)
{
	struct egr_ring_hdr *h = r->h;

	for (;;) {
		uint64_t t0 = egr_log_now_ns();
		int got = -1, cancel = 0;

		/* a token first: the count, not the scan, is what blocks */
		sem_wait_ms(&h->sem_free, RING_WAIT_MS);
		EGR_RING_FAULT("acquire.token");
		if (blocked_ns)
			*blocked_ns += egr_log_now_ns() - t0;
		if (stopped(r, stop))
			return -ECANCELED;
		egr_ring_lock(r);
		if (h->jobs[job].state != EGR_JOB_ACTIVE) {
			cancel = 1;
		} else {
			for (uint32_t i = 0; i < h->nslots; i++) {
				struct egr_slot_sh *s = slot_sh(r, i);
				if (s->state != EGR_SLOT_FREE)
					continue;
				s->owner = getpid();
				EGR_RING_FAULT("acquire.owner");
				s->job = job;
				EGR_RING_FAULT("acquire.job");
				s->chunk = chunk;
				EGR_RING_FAULT("acquire.chunk");
				s->nframes = 0;
				EGR_RING_FAULT("acquire.nframes");
				s->bytes = 0;
				EGR_RING_FAULT("acquire.bytes");
				s->state = EGR_SLOT_FILLING;
				EGR_RING_FAULT("acquire.state");
				got = (int)i;
				break;
			}
		}
		egr_ring_unlock(r);
		EGR_RING_FAULT("acquire.unlocked");
		if (cancel) {
			sem_post(&h->sem_free);	/* give the token back */
			return -ECANCELED;
		}
		if (got >= 0) {
			*slot = (uint32_t)got;
			return 0;
		}
	}
}

void egr_ring_publish(struct egr_ring *r, uint32_t slot, uint32_t first_frame, uint32_t nframes,
		      uint64_t bytes)
{
	struct egr_ring_hdr *h = r->h;
	struct egr_slot_sh *s = slot_sh(r, slot);

	egr_ring_lock(r);
	s->first_frame = first_frame;
	EGR_RING_FAULT("publish.first_frame");
	s->nframes = nframes;
	EGR_RING_FAULT("publish.nframes");
	s->bytes = bytes;
	EGR_RING_FAULT("publish.bytes");
	s->seq = h->next_seq++;
	EGR_RING_FAULT("publish.seq");
	s->state = EGR_SLOT_READY;
	EGR_RING_FAULT("publish.state");
	s->owner = 0;	/* after state: an owner-less FILLING slot is never reclaimed */
	EGR_RING_FAULT("publish.owner");
	egr_ring_unlock(r);
	EGR_RING_FAULT("publish.unlocked");
	sem_post(&h->sem_ready);
}

void egr_ring_abandon(struct egr_ring *r, uint32_t slot)
{
	struct egr_slot_sh *s = slot_sh(r, slot);

	egr_ring_lock(r);
	s->state = EGR_SLOT_FREE;
	EGR_RING_FAULT("abandon.state");
	s->owner = 0;
	EGR_RING_FAULT("abandon.owner");
	egr_ring_unlock(r);
	EGR_RING_FAULT("abandon.unlocked");
	sem_post(&r->h->sem_free);
}

void egr_ring_job_release(struct egr_ring *r, uint32_t job, int all_published)
{
	struct egr_job_sh *j = &r->h->jobs[job];

	int requeue = 0;

	egr_ring_lock(r);
	j->published_all = all_published ? 1 : 0;
	EGR_RING_FAULT("job_release.published_all");
	/* stopped half way but not failed: the next producer resumes it */
	if (!all_published && j->state == EGR_JOB_ACTIVE) {
		j->state = EGR_JOB_QUEUED;
		EGR_RING_FAULT("job_release.requeue");
		requeue = 1;
	}
	/* after state: ACTIVE unfinished with no producer is never requeued */
	if (j->producer == getpid())
		j->producer = 0;
	EGR_RING_FAULT("job_release.producer");
	egr_ring_unlock(r);
	EGR_RING_FAULT("job_release.unlocked");
	if (requeue)
		sem_post(&r->h->sem_jobs);
}

/* ---- workers ---- */

int egr_ring_take(struct egr_ring *r, uint32_t *slot, int timeout_ms,
		  const volatile sig_atomic_t *stop)
{
	struct egr_ring_hdr *h = r->h;
	uint64_t deadline = egr_log_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		int best = -1;
		uint64_t best_seq = 0;

		if (stopped(r, stop))
			return -ECANCELED;
		uint64_t now = egr_log_now_ns();
		uint64_t left_ms = now >= deadline ? 0 : (deadline - now) / 1000000ull + 1;
		int tok = sem_wait_ms(&h->sem_ready, left_ms < RING_WAIT_MS ? (int)left_ms : RING_WAIT_MS);
		EGR_RING_FAULT("take.token");

		egr_ring_lock(r);
		for (uint32_t i = 0; i < h->nslots; i++) {
			struct egr_slot_sh *s = slot_sh(r, i);
			if (s->state == EGR_SLOT_READY && (best < 0 || s->seq < best_seq)) {
				best = (int)i;
				best_seq = s->seq;
			}
		}
		if (best >= 0) {
			struct egr_slot_sh *s = slot_sh(r, (uint32_t)best);
			s->owner = getpid();
			EGR_RING_FAULT("take.owner");
			s->state = EGR_SLOT_WRITING;
			EGR_RING_FAULT("take.state");
		}
		egr_ring_unlock(r);
		if (best >= 0) {
			*slot = (uint32_t)best;
			return 0;
		}
		if (tok != 0 && egr_log_now_ns() >= deadline)
			return -EAGAIN;
	}
}

static uint32_t popcount_chunks(const uint64_t *bm, uint32_t nchunks)
{
	uint32_t n = 0;

	for (uint32_t w = 0; w < (nchunks + 63) / 64; w++)
		n += (uint32_t)__builtin_popcountll(bm[w]);
	return n;
}

static int job_writable(const struct egr_job_sh *j)
{
	return (j->state == EGR_JOB_ACTIVE || j->state == EGR_JOB_QUEUED) && j->prepared;
}

void egr_ring_release(struct egr_ring *r, uint32_t slot, int ok, const char *msg, int *finalize)
{
	struct egr_ring_hdr *h = r->h;
	struct egr_slot_sh *s = slot_sh(r, slot);
	struct egr_job_sh *j = &h->jobs[s->job];

	if (finalize)
		*finalize = 0;
	egr_ring_lock(r);
	if (ok && job_writable(j) && s->chunk < j->lay.chunks_total) {
		uint64_t *bm = job_bitmap(r, s->job);
		bm[s->chunk / 64] |= 1ull << (s->chunk % 64);	/* idempotent */
		EGR_RING_FAULT("release.bit");
		j->chunks_written = popcount_chunks(bm, j->lay.chunks_total);	/* absolute */
		EGR_RING_FAULT("release.chunks_written");
		if (j->chunks_written == j->lay.chunks_total && j->finalizer == 0) {
			j->finalizer = getpid();
			EGR_RING_FAULT("release.finalizer");
			if (finalize)
				*finalize = 1;
		}
	} else if (!ok && msg) {
		job_fail_locked(j, msg);
	}
	s->state = EGR_SLOT_FREE;
	EGR_RING_FAULT("release.state");
	s->owner = 0;	/* after state: an owner-less WRITING slot is never reclaimed */
	EGR_RING_FAULT("release.owner");
	egr_ring_unlock(r);
	EGR_RING_FAULT("release.unlocked");
	sem_post(&h->sem_free);
}

int egr_ring_claim_finalize(struct egr_ring *r)
{
	int found = -ENOENT;

	egr_ring_lock(r);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_sh *j = &r->h->jobs[i];
		if (job_writable(j) && j->lay.chunks_total && j->finalizer == 0 &&
		    popcount_chunks(job_bitmap(r, i), j->lay.chunks_total) == j->lay.chunks_total) {
			j->finalizer = getpid();
			EGR_RING_FAULT("claim.finalizer");
			found = (int)i;
			break;
		}
	}
	egr_ring_unlock(r);
	return found;
}

int egr_ring_frames_written(struct egr_ring *r, uint32_t job, uint32_t first, uint32_t n)
{
	const struct egr_job_sh *j;
	int all = 1;

	if (job >= EGR_RING_JOBS || n == 0)
		return 0;
	j = &r->h->jobs[job];
	egr_ring_lock(r);
	const uint64_t *bm = job_bitmap(r, job);
	uint32_t cf = j->lay.chunk_frames;
	if (!cf || first >= j->lay.frames || n > j->lay.frames - first ||
	    (first + n - 1) / cf >= j->lay.chunks_total || j->lay.chunks_total > r->h->max_chunks)
		all = 0;
	for (uint32_t c = cf ? first / cf : 0; all && c <= (first + n - 1) / cf; c++)
		all = (bm[c / 64] >> (c % 64)) & 1;
	egr_ring_unlock(r);
	return all;
}

void egr_ring_job_finish(struct egr_ring *r, uint32_t job, int ok, const char *msg)
{
	struct egr_job_sh *j = &r->h->jobs[job];

	egr_ring_lock(r);
	if (ok) {
		if (j->state == EGR_JOB_ACTIVE || j->state == EGR_JOB_QUEUED) {
			j->st.t_end_ns = realtime_ns();
			EGR_RING_FAULT("finish.t_end");
			j->state = EGR_JOB_DONE;
			EGR_RING_FAULT("finish.state");
		}
	} else {
		job_fail_locked(j, msg);
	}
	j->finalizer = 0;
	EGR_RING_FAULT("finish.finalizer");
	egr_ring_unlock(r);
}

/* ---- reading ---- */

int egr_ring_job_view(struct egr_ring *r, uint32_t job, struct egr_job_view *v)
{
	const struct egr_job_sh *j;

	if (job >= EGR_RING_JOBS)
		return -EINVAL;
	j = &r->h->jobs[job];
	egr_ring_lock(r);
	v->index = job;
	v->state = j->state;
	v->producer = j->producer;
	v->finalizer = j->finalizer;
	v->producer_restarts = j->producer_restarts;
	v->planned = j->planned;
	v->prepared = j->prepared;
	v->chunks_written = j->chunks_written;
	memcpy(v->name, j->name, sizeof(v->name));
	memcpy(v->path, j->path, sizeof(v->path));
	v->spec = j->spec;
	v->lay = j->lay;
	memcpy(v->backend, j->backend, sizeof(v->backend));
	v->gpu = j->gpu;
	v->st = j->st;
	memcpy(v->error, j->error, sizeof(v->error));
	egr_ring_unlock(r);
	/* shared memory is not trusted to hold terminated strings */
	v->name[sizeof(v->name) - 1] = v->path[sizeof(v->path) - 1] = 0;
	v->lay.tmp_path[sizeof(v->lay.tmp_path) - 1] = v->backend[sizeof(v->backend) - 1] = 0;
	v->lay.tmp_name[sizeof(v->lay.tmp_name) - 1] = 0;
	v->error[sizeof(v->error) - 1] = 0;
	return 0;
}

uint32_t egr_ring_job_state(struct egr_ring *r, uint32_t job)
{
	return __atomic_load_n(&r->h->jobs[job].state, __ATOMIC_ACQUIRE);
}

void egr_ring_slot_view(struct egr_ring *r, uint32_t slot, struct egr_slot_view *v)
{
	const struct egr_slot_sh *s = slot_sh(r, slot);

	egr_ring_lock(r);
	v->state = s->state;
	v->job = s->job;
	v->chunk = s->chunk;
	v->first_frame = s->first_frame;
	v->nframes = s->nframes;
	v->bytes = s->bytes;
	egr_ring_unlock(r);
}

struct egr_job_stats *egr_ring_job_stats(struct egr_ring *r, uint32_t job)
{
	return &r->h->jobs[job].st;
}

/* ---- producer: the job's layout ---- */

void egr_ring_job_plan(struct egr_ring *r, uint32_t job, struct egr_job_layout *lay, const char *backend,
		       int gpu)
{
	struct egr_job_sh *j = &r->h->jobs[job];

	egr_ring_lock(r);
	snprintf(j->backend, sizeof(j->backend), "%s", backend);
	j->gpu = gpu;
	EGR_RING_FAULT("plan.backend");
	if (j->planned) {
		*lay = j->lay;	/* a resumed job keeps its temporary output */
	} else {
		j->lay = *lay;
		EGR_RING_FAULT("plan.layout");
		j->planned = 1;	/* last: a prefix without it is "not planned" */
		EGR_RING_FAULT("plan.planned");
	}
	egr_ring_unlock(r);
}

void egr_ring_job_prepared(struct egr_ring *r, uint32_t job, const struct egr_job_layout *lay)
{
	struct egr_job_sh *j = &r->h->jobs[job];

	egr_ring_lock(r);
	j->lay.dir_dev = lay->dir_dev;
	j->lay.dir_ino = lay->dir_ino;
	j->lay.tmp_dev = lay->tmp_dev;
	j->lay.tmp_ino = lay->tmp_ino;
	j->lay.out_dev = lay->out_dev;
	j->lay.out_ino = lay->out_ino;
	EGR_RING_FAULT("prepared.identity");
	j->prepared = 1;
	EGR_RING_FAULT("prepared.prepared");
	egr_ring_unlock(r);
}

#ifdef EGR_TESTING
void egr_ring_set_fault_delay(struct egr_ring *r, uint32_t ms)
{
	__atomic_store_n(&r->h->fault_write_delay_ms, ms, __ATOMIC_RELAXED);
}

uint32_t egr_ring_fault_delay(struct egr_ring *r)
{
	return __atomic_load_n(&r->h->fault_write_delay_ms, __ATOMIC_RELAXED);
}

struct egr_ring_hdr *egr_ring_hdr(struct egr_ring *r)
{
	return r->h;
}

struct egr_job_sh *egr_ring_job(struct egr_ring *r, uint32_t job)
{
	return &r->h->jobs[job];
}

struct egr_slot_sh *egr_ring_slot(struct egr_ring *r, uint32_t slot)
{
	return slot_sh(r, slot);
}
#endif
