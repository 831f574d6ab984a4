/* lease: several daemons on one spool; see lease.h and docs/SCALING.md. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/fence.h"
#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/lease.h"
#include "daemon/supervisor/spool.h"
#include "workers/output.h"

#define LEASE_MAX_PEERS 256	/* daemons watched at once; more are watched in later scans */
#define LEASE_GENS_KEPT 16	/* .generations/ entries left behind */
#define LEASE_REAP_DEPTH 4	/* nested .reap- directories followed */
#define REAP_PREFIX ".reap-"

struct peer {
	char name[EGR_SPOOL_ID_MAX];
	char key[64];		/* "<generation>/<counter>", or "none" without a readable lease */
	uint64_t since_ns;	/* when key was first seen (our clock) */
	int seen;		/* in the last scan */
};

struct egr_lease {
	char spool[EGR_PATH_MAX];
	char id[EGR_SPOOL_ID_MAX];	/* <host_id>.<instance> */
	char active[EGR_PATH_MAX + 16];	/* <spool>/active */
	char path[EGR_PATH_MAX + 300];	/* <spool>/active/<id>.lease */
	char dir[EGR_PATH_MAX + 300];	/* <spool>/active/<id> */
	const struct egr_safepath *roots;
	int fd;				/* the lease file, rewritten in place */
	struct stat st, dir_st;		/* their identities: a reaper's rename changes them */
	struct egr_fence_rec rec;
	uint64_t timeout_ns, beat_ns, renewed_ns, next_ns;
	int lost, write_failed;
	struct peer peers[LEASE_MAX_PEERS];
	uint32_t npeers;
};

/* ---- identity, probe ---- */

int egr_lease_identity(const struct egr_conf *c, char *buf, size_t len)
{
	char host[256] = "";
	int n;

	if (c->host_id[0]) {
		snprintf(host, sizeof(host), "%s", c->host_id);
	} else {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "localhost");
		host[63] = 0;
		for (char *p = host; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
				*p = '_';
	}
	n = snprintf(buf, len, "%s.%s", host, c->instance);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* mountinfo's octal escapes (\040 for a space) undone in place */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* The mount holding path: its type ("nfs4", "fuse.s3fs") and options; 0 or -errno. */
static int mount_of(const char *path, char *type, size_t tlen, char *opts, size_t olen)
{
	char real[PATH_MAX], line[8192], mnt[4096], mopts[2048], fstype[256], sopts[2048];
	size_t best = 0;
	FILE *f;

	if (!realpath(path, real) || !(f = fopen("/proc/self/mountinfo", "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s %2047s", mnt, mopts) != 2 ||
		    sscanf(dash + 3, "%255s %*s %2047s", fstype, sopts) != 2)
			continue;
		unescape(mnt);
		size_t l = strlen(mnt);
		int under = !strcmp(mnt, "/") || (!strncmp(real, mnt, l) && (real[l] == '/' || !real[l]));
		if (under && l >= best) {
			best = l;
			snprintf(type, tlen, "%s", fstype);
			snprintf(opts, olen, "%s,%s", mopts, sopts);
		}
	}
	fclose(f);
	return best ? 0 : -ENOENT;
}

/* 1 if the comma-separated list has word */
static int has_opt(const char *list, const char *word)
{
	size_t l = strlen(word);

	for (const char *p = list; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (!strncmp(p, word, l) && (p[l] == ',' || !p[l]))
			return 1;
	return 0;
}

/* Refuse the mounts known not to settle races; warn about FUSE mounts we cannot judge. */
static int check_mount(const char *spool, char *err, size_t errlen)
{
	static const char *const bad[] = { "fuse.s3fs", "fuse.gcsfuse", "fuse.goofys", "fuse.rclone",
					   "fuse.mountpoint-s3", "fuse.blobfuse", "fuse.blobfuse2", "fuse.s3backer" };
	char type[256] = "", opts[4200] = "";

	if (mount_of(spool, type, sizeof(type), opts, sizeof(opts)) < 0)
		return 0;	/* no mountinfo (odd container): the probe alone judges */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!strcmp(type, bad[i])) {
			egr_errf(err, errlen, "shared_spool: spool %s is on %s, an object-store mount without atomic "
				 "rename or exclusive create; put the spool on NFS, CephFS or Lustre (docs/SCALING.md)",
				 spool, type);
			return -EOPNOTSUPP;
		}
	if (!strncmp(type, "nfs", 3) && has_opt(opts, "nocto")) {
		egr_errf(err, errlen, "shared_spool: spool %s is on NFS mounted nocto: heartbeats and journals "
			 "written by other machines may never be seen; remount without nocto", spool);
		return -EOPNOTSUPP;
	}
	if (!strncmp(type, "fuse", 4))
		egr_warn("shared_spool: spool %s is on %s: egressd cannot tell whether its rename is atomic "
			 "(s3fs/gcsfuse-like mounts are not); see docs/SCALING.md", spool, type);
	return 0;
}

/* one probe step: got (0 or -errno) must be want, else err names the step */
static int probe_step(const char *step, int got, int want, const char *dir, char *err, size_t errlen)
{
	if (got == want)
		return 0;
	egr_errf(err, errlen, "shared_spool: the filesystem of \"%s\" failed the probe: %s gave %s, expected %s; "
		 "shared_spool needs atomic rename and O_EXCL (docs/SCALING.md)", dir, step,
		 got ? strerror(-got) : "success", want ? strerror(-want) : "success");
	return got < 0 ? got : -EIO;
}

int egr_lease_probe(const char *spool, char *err, size_t errlen)
{
	char dir[EGR_PATH_MAX + 16], a[EGR_PATH_MAX + 128], b[EGR_PATH_MAX + 160];
	uint64_t r = 0;
	int fd, rc;

	if ((rc = check_mount(spool, err, errlen)) < 0)
		return rc;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = egr_fence_now_ns() ^ (uint64_t)getpid();
	snprintf(dir, sizeof(dir), "%s/active", spool);
	snprintf(a, sizeof(a), "%s/.probe-%d-%016" PRIx64, dir, (int)getpid(), r);
	snprintf(b, sizeof(b), "%s.renamed", a);
	fd = open(a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if ((rc = probe_step("the first O_CREAT|O_EXCL open", fd < 0 ? -errno : 0, 0, dir, err, errlen)) < 0)
		return rc;
	close(fd);
	fd = open(a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	rc = probe_step("a second O_CREAT|O_EXCL open of the same name", fd < 0 ? -errno : 0, -EEXIST, dir, err,
			errlen);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = probe_step("rename", rename(a, b) < 0 ? -errno : 0, 0, dir, err, errlen);
	if (rc == 0)
		rc = probe_step("a second rename from the same source", rename(a, b) < 0 ? -errno : 0, -ENOENT, dir,
				err, errlen);
	if (rc == 0)
		rc = probe_step("looking up the renamed file", access(b, F_OK) < 0 ? -errno : 0, 0, dir, err, errlen);
	unlink(a);
	unlink(b);
	return rc;
}

/* ---- the generation: the fencing token ---- */

/* the highest number named in d, or (prune) unlink those more than LEASE_GENS_KEPT below keep */
static uint64_t generations(DIR *d, int prune, uint64_t keep)
{
	uint64_t max = 0;
	struct dirent *de;

	rewinddir(d);
	while ((de = readdir(d))) {
		char *end;
		uint64_t v = strtoull(de->d_name, &end, 10);
		if (*end || end == de->d_name)
			continue;
		if (v > max)
			max = v;
		if (prune && v + LEASE_GENS_KEPT < keep)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	return max;
}

/*
 * max(<spool>/.generations/) + 1, taken by O_EXCL create: two daemons
 * starting at once never get the same one.
 */
static int take_generation(const char *spool, uint64_t *gen, char *err, size_t errlen)
{
	char dir[EGR_PATH_MAX + 32], name[32];
	DIR *d;
	int rc = -EEXIST;

	snprintf(dir, sizeof(dir), "%s/.generations", spool);
	if ((mkdir(dir, 0750) < 0 && errno != EEXIST) || !(d = opendir(dir))) {
		rc = -errno;
		egr_errf(err, errlen, "shared_spool: mkdir/opendir(\"%s\"): %s", dir, strerror(errno));
		return rc;
	}
	uint64_t max = generations(d, 0, 0);
	for (uint64_t g = max + 1; g < max + 10000 && rc == -EEXIST; g++) {
		snprintf(name, sizeof(name), "%" PRIu64, g);
		int fd = openat(dirfd(d), name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		rc = fd < 0 ? -errno : 0;	/* EEXIST: another daemon took it meanwhile */
		if (fd >= 0) {
			close(fd);
			*gen = g;
		}
	}
	if (rc == 0)
		generations(d, 1, *gen);
	else
		egr_errf(err, errlen, "shared_spool: creating a generation in \"%s\": %s", dir, strerror(-rc));
	closedir(d);
	return rc;
}

/* ---- the lease record ---- */

static void rec_key(const struct egr_fence_rec *r, char *key, size_t len)
{
	if (r)
		snprintf(key, len, "%" PRIu64 "/%" PRIu64, r->generation, r->counter);
	else
		snprintf(key, len, "none");
}

/*
 * key of <active>/<peer>.lease ("none": absent or not a lease record), r
 * filled when read; -errno when it could not be read (EACCES, EIO, ...):
 * nothing can be judged then.
 */
static int peer_key(const struct egr_lease *l, const char *peer, struct egr_fence_rec *r, char *key, size_t len)
{
	char p[EGR_PATH_MAX + 300];
	int rc;

	snprintf(p, sizeof(p), "%s/%s.lease", l->active, peer);
	rc = egr_fence_read(p, r);
	rec_key(rc == 0 ? r : NULL, key, len);
	return rc == 0 || rc == -ENOENT || rc == -EINVAL ? 0 : rc;
}

/* this machine and pid namespace, for telling a dead local pid from a live one */
static void whoami(struct egr_fence_rec *r)
{
	struct stat st;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, r->boot_id, sizeof(r->boot_id) - 1) : -1;

	if (fd >= 0)
		close(fd);
	r->boot_id[n > 0 ? strcspn(r->boot_id, "\n ") : 0] = 0;
	r->pidns = stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
	r->pid = (long)getpid();
}

/* the record rewritten in place (same length every time), on disk before we count on it */
static int write_rec(struct egr_lease *l)
{
	char buf[EGR_FENCE_REC_MAX];
	int n = egr_fence_format(&l->rec, buf, sizeof(buf));

	if (n < 0)
		return n;
	if (pwrite(l->fd, buf, (size_t)n, 0) != n || fdatasync(l->fd) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/*
 * The lease this identity's last run left: 0 once it may be taken (gone,
 * its process provably dead, or unchanged for lease_timeout), -EBUSY when
 * it changes: a live daemon has this identity.
 */
static int take_own(struct egr_lease *l, char *err, size_t errlen)
{
	struct egr_fence_rec r;
	char key[64], now_key[64];
	int rc = egr_fence_read(l->path, &r);

	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && r.pid > 0 && !strcmp(r.boot_id, l->rec.boot_id) && r.pidns == l->rec.pidns &&
	    kill((pid_t)r.pid, 0) < 0 && errno == ESRCH) {
		egr_notice("lease %s: its last holder (pid %ld, generation %" PRIu64 ") is gone: taking it over",
			   l->path, r.pid, r.generation);
		return 0;
	}
	rec_key(rc == 0 ? &r : NULL, key, sizeof(key));
	egr_notice("lease %s exists (pid %ld on %s): watching it for %.0f s to see whether its daemon is alive",
		   l->path, rc == 0 ? r.pid : -1L, rc == 0 ? r.host_id : "?", (double)l->timeout_ns / 1e9);
	for (uint64_t t0 = egr_fence_now_ns(); egr_fence_now_ns() - t0 < l->timeout_ns;) {
		struct timespec ts = { 0, 200000000 };
		nanosleep(&ts, NULL);
		if ((rc = egr_fence_read(l->path, &r)) == -ENOENT)
			return 0;	/* reaped by a peer meanwhile */
		rec_key(rc == 0 ? &r : NULL, now_key, sizeof(now_key));
		if (strcmp(key, now_key)) {
			egr_errf(err, errlen, "shared_spool: %s is in use by a live daemon (pid %ld on %s, its lease "
				 "%s is renewed); give this one another [daemon] instance or host_id", l->id, r.pid,
				 r.host_id, l->path);
			return -EBUSY;
		}
	}
	return 0;
}

/* Write our first record beside the lease and rename it over: the lease is ours from then on. */
static int create_lease(struct egr_lease *l, char *err, size_t errlen)
{
	char tmp[EGR_PATH_MAX + 320];
	int rc;

	snprintf(tmp, sizeof(tmp), "%s/.%s.lease.tmp", l->active, l->id);
	unlink(tmp);
	l->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (l->fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "shared_spool: creating \"%s\": %s", tmp, strerror(errno));
		return rc;
	}
	l->renewed_ns = l->rec.renewed_ns = egr_fence_now_ns();
	if ((rc = write_rec(l)) < 0 || (rc = rename(tmp, l->path) < 0 ? -errno : 0) < 0 || fstat(l->fd, &l->st) < 0) {
		rc = rc < 0 ? rc : -errno;
		egr_errf(err, errlen, "shared_spool: writing the lease \"%s\": %s", l->path, strerror(-rc));
		unlink(tmp);
		return rc;
	}
	return 0;
}

static int lease_setup(struct egr_lease *l, const struct egr_conf *c, char *err, size_t errlen)
{
	int rc = egr_lease_identity(c, l->id, sizeof(l->id));

	if (rc < 0 || strlen(c->spool) + strlen(l->id) + 16 > EGR_PATH_MAX) {
		egr_errf(err, errlen, "shared_spool: spool path and daemon name \"%s\" are too long", l->id);
		return -ENAMETOOLONG;
	}
	snprintf(l->spool, sizeof(l->spool), "%s", c->spool);
	snprintf(l->active, sizeof(l->active), "%s/active", c->spool);
	snprintf(l->path, sizeof(l->path), "%s/%s.lease", l->active, l->id);
	snprintf(l->dir, sizeof(l->dir), "%s/%s", l->active, l->id);
	snprintf(l->rec.host_id, sizeof(l->rec.host_id), "%.*s", (int)(strlen(l->id) - strlen(c->instance) - 1), l->id);
	snprintf(l->rec.instance, sizeof(l->rec.instance), "%s", c->instance);
	whoami(&l->rec);
	l->timeout_ns = (uint64_t)c->lease_timeout * 1000000000ull;
	l->beat_ns = l->timeout_ns / 6;
	l->rec.timeout_ms = (uint64_t)c->lease_timeout * 1000ull;
	return 0;
}

int egr_lease_open(const struct egr_conf *c, const struct egr_safepath *roots, struct egr_spool **spool,
		   struct egr_lease **out, char *err, size_t errlen)
{
	struct egr_lease *l = calloc(1, sizeof(*l));
	char env[EGR_PATH_MAX + 340];
	int rc;

	*out = NULL;
	*spool = NULL;
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->roots = roots;
	if ((rc = lease_setup(l, c, err, errlen)) < 0 ||
	    (rc = egr_spool_open_shared(c->spool, l->id, spool, err, errlen)) < 0 ||
	    (rc = egr_lease_probe(c->spool, err, errlen)) < 0 ||
	    (rc = take_generation(c->spool, &l->rec.generation, err, errlen)) < 0 || (rc = take_own(l, err, errlen)) < 0)
		goto fail;
	/* a peer may have requeued our directory while we watched the old lease: open it afresh */
	egr_spool_close(*spool);
	*spool = NULL;
	if ((rc = egr_spool_open_shared(c->spool, l->id, spool, err, errlen)) < 0 || (rc = create_lease(l, err, errlen)) < 0)
		goto fail;
	if (stat(l->dir, &l->dir_st) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "shared_spool: stat(\"%s\"): %s", l->dir, strerror(errno));
		goto fail;
	}
	snprintf(env, sizeof(env), "%" PRIu64 ":%s", l->rec.generation, l->path);
	setenv(EGR_FENCE_ENV, env, 1);	/* the children's commits are fenced by it (fence.h) */
	egr_notice("shared spool %s: serving as %s, lease generation %" PRIu64 ", lease_timeout %u s", c->spool, l->id,
		   l->rec.generation, c->lease_timeout);
	*out = l;
	return 0;
fail:
	egr_spool_close(*spool);
	*spool = NULL;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return rc;
}

/* ---- requeueing a dead daemon's jobs ---- */

struct reaped {
	unsigned requeued, done, left;
};

/*
 * One job of a directory taken from a dead daemon: its journal consumes the
 * dead run's temporary output (workers/output.h); a job whose output was
 * already committed is recorded done, any other goes back to incoming/.
 */
static void requeue_job(struct egr_lease *l, const char *dir, const char *name, struct reaped *n)
{
	char job[EGR_PATH_MAX + 600], journal[EGR_PATH_MAX + 640], to[EGR_PATH_MAX + 300], err[EGR_ERR_MAX] = "";
	char text[EGR_SPOOL_ID_MAX + 256];
	int rc;

	snprintf(job, sizeof(job), "%s/%s", dir, name);
	if (egr_output_journal_path(job, journal, sizeof(journal)) < 0 ||
	    egr_spool_path(to, sizeof(to), l->spool, EGR_SPOOL_INCOMING, name) < 0) {
		n->left++;	/* cannot happen with a spool path that loads; never removed unseen */
		return;
	}
	rc = egr_output_recover(l->roots, journal, err, sizeof(err));
	if (rc < 0 || (rc == 0 && err[0]))
		egr_warn("job %s: %s", name, err);
	if (rc == 1) {
		snprintf(text, sizeof(text), "[result]\njob = %s\nstatus = done\nrecovered = yes\n; its daemon died "
			 "after the output was in place, before this record: timings were lost\n", name);
		if (egr_spool_finish_from(l->spool, job, name, 1, text, err, sizeof(err)) < 0) {
			egr_err("job %s: %s", name, err);
			n->left++;
			return;
		}
		n->done++;
	} else {
		/* never over a job of the same name submitted meanwhile; NFS has no RENAME_NOREPLACE */
		rc = renameat2(AT_FDCWD, job, AT_FDCWD, to, RENAME_NOREPLACE) < 0 ? -errno : 0;
		if (rc == -EINVAL || rc == -ENOSYS)
			rc = access(to, F_OK) == 0 ? -EEXIST : rename(job, to) < 0 ? -errno : 0;
		if (rc < 0) {
			if (rc != -ENOENT)
				egr_warn("job %s: requeueing it: rename(\"%s\", \"%s\"): %s; left for the next scan",
					 name, job, to, strerror(-rc));
			n->left += rc != -ENOENT;
			return;
		}
		n->requeued++;
	}
	egr_output_journal_end(journal);
	snprintf(to, sizeof(to), "%s/status/%s.status", l->spool, name);
	unlink(to);	/* the dead daemon's view of it */
}

static void reap_dir(struct egr_lease *l, const char *dir, int depth, struct reaped *n);

/* one entry of a reaped directory: a job, a nested reaped directory, or a reaped lease */
static void reap_entry(struct egr_lease *l, const char *dir, const struct dirent *de, int depth, struct reaped *n)
{
	char p[EGR_PATH_MAX + 600];
	const char *s = de->d_name;
	size_t len = strlen(s);

	snprintf(p, sizeof(p), "%s/%s", dir, s);
	if (!strncmp(s, REAP_PREFIX, strlen(REAP_PREFIX)) && len > 6 && !strcmp(s + len - 6, ".lease"))
		unlink(p);
	else if (!strncmp(s, REAP_PREFIX, strlen(REAP_PREFIX)) && depth < LEASE_REAP_DEPTH)
		reap_dir(l, p, depth + 1, n);
	else if (egr_spool_eligible(s) && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
		requeue_job(l, dir, s, n);
}

/* Every job of dir requeued (or recorded done); dir removed once no job is left in it. */
static void reap_dir(struct egr_lease *l, const char *dir, int depth, struct reaped *n)
{
	struct dirent *de;
	unsigned left = n->left;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		reap_entry(l, dir, de, depth, n);
	closedir(d);
	if (n->left == left && depth > 0)
		egr_fs_remove_tree(dir);	/* journals of jobs gone, half-written temporaries */
}

/* peer's lease, moved beside its directory: still the one judged dead? else both go back */
static int confirm(const char *key, const char *from, const char *to, const char *dfrom, const char *dto, int moved)
{
	struct egr_fence_rec r;
	char now_key[64];

	if (rename(from, to) < 0)
		return errno == ENOENT ? 0 : -errno;
	rec_key(egr_fence_read(to, &r) == 0 ? &r : NULL, now_key, sizeof(now_key));
	if (!strcmp(key, now_key)) {
		unlink(to);
		return 0;
	}
	rename(to, from);
	if (moved)
		rename(dto, dfrom);
	return -EAGAIN;
}

/* peer's lease has shown key for lease_timeout: take its directory and requeue its jobs */
static void reap(struct egr_lease *l, const struct peer *p, uint64_t now)
{
	char from[EGR_PATH_MAX + 300], to[EGR_PATH_MAX + 600], lfrom[EGR_PATH_MAX + 320], lto[EGR_PATH_MAX + 620];
	struct reaped n = { 0 };
	int moved, rc;

	snprintf(from, sizeof(from), "%s/%s", l->active, p->name);
	snprintf(to, sizeof(to), "%s/" REAP_PREFIX "%s", l->dir, p->name);
	snprintf(lfrom, sizeof(lfrom), "%s/%s.lease", l->active, p->name);
	snprintf(lto, sizeof(lto), "%s/" REAP_PREFIX "%s.lease", l->dir, p->name);
	if (access(to, F_OK) == 0)
		reap_dir(l, to, 1, &n);	/* an earlier reap of a namesake, unfinished */
	if (access(to, F_OK) == 0)
		return;
	/* the rename settles it: one reaper gets the directory */
	moved = rename(from, to) == 0;
	if (!moved && errno != ENOENT) {
		egr_warn("daemon %s: rename(\"%s\", \"%s\"): %s", p->name, from, to, strerror(errno));
		return;
	}
	if ((rc = confirm(p->key, lfrom, lto, from, to, moved)) == -EAGAIN) {
		egr_notice("daemon %s renewed its lease while being requeued: left alone", p->name);
		return;
	}
	if (!moved)
		return;
	reap_dir(l, to, 1, &n);
	egr_notice("daemon %s: lease %s not renewed for %.1f s: %u job%s requeued, %u found done%s", p->name,
		   p->key, (double)(now - p->since_ns) / 1e9, n.requeued, n.requeued == 1 ? "" : "s", n.done,
		   n.left ? " (some left for the next scan)" : "");
}

/* ---- watching the peers ---- */

/* peer seen now with its lease's key; its entry (NULL when the table is full) */
static struct peer *observe(struct egr_lease *l, const char *name, uint64_t now)
{
	struct egr_fence_rec r;
	struct peer *p = NULL;
	char key[64];

	for (uint32_t i = 0; i < l->npeers && !p; i++)
		if (!strcmp(l->peers[i].name, name))
			p = &l->peers[i];
	if (!p && l->npeers == LEASE_MAX_PEERS)
		return NULL;
	int unreadable = peer_key(l, name, &r, key, sizeof(key)) < 0;
	if (!p) {
		p = &l->peers[l->npeers++];
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->key[0] = 0;
	}
	if (strcmp(p->key, key) || unreadable) {	/* changed, or not to be judged by what we cannot read */
		snprintf(p->key, sizeof(p->key), "%s", key);
		p->since_ns = now;
	}
	p->seen = 1;
	return p;
}

/* every other daemon of active/ (a lease file or a directory) looked at; the stale ones reaped */
static void watch(struct egr_lease *l, uint64_t now)
{
	char name[EGR_SPOOL_ID_MAX];
	struct dirent *de;
	DIR *d = opendir(l->active);

	if (!d)
		return;
	for (uint32_t i = 0; i < l->npeers; i++)
		l->peers[i].seen = 0;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		int lease = len > 6 && !strcmp(de->d_name + len - 6, ".lease");
		struct stat st;
		if (de->d_name[0] == '.' || len >= sizeof(name) || (!lease && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		if (!lease && de->d_type == DT_UNKNOWN &&
		    (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(lease ? len - 6 : len), de->d_name);
		if (strcmp(name, l->id))
			observe(l, name, now);
	}
	closedir(d);
	for (uint32_t i = 0; i < l->npeers;) {
		struct peer p = l->peers[i];
		int stale = p.seen && now - p.since_ns >= l->timeout_ns;
		if (!p.seen || stale)
			l->peers[i] = l->peers[--l->npeers];	/* forgotten: seen again, it starts afresh */
		else
			i++;
		if (stale && !l->lost)
			reap(l, &p, now);
	}
}

/*
 * Every tick: what is still in <me>/.reap-* (left by a killed run of ours,
 * or jobs whose name was taken in incoming/).  The first time, also jobs a
 * daemon without shared_spool left directly in active/ (none runs now: the
 * spool lock).
 */
static void leftovers(struct egr_lease *l, int first)
{
	struct reaped n = { 0 };
	struct dirent *de;
	DIR *d = first ? opendir(l->active) : NULL;

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;
		if (egr_spool_eligible(de->d_name) && !(len > 6 && !strcmp(de->d_name + len - 6, ".lease")) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			requeue_job(l, l->active, de->d_name, &n);
	}
	if (d)
		closedir(d);
	if ((d = opendir(l->dir))) {
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, REAP_PREFIX, strlen(REAP_PREFIX)))
				reap_entry(l, l->dir, de, 0, &n);
		closedir(d);
	}
	if (n.requeued || n.done)
		egr_notice("shared spool: %u job%s left behind requeued, %u found done", n.requeued,
			   n.requeued == 1 ? "" : "s", n.done);
}

/* ---- the heartbeat ---- */

static int lose(struct egr_lease *l, const char *why)
{
	if (!l->lost)
		egr_err("lease %s lost: %s; stopping at once, writing no record: its jobs are requeued by the other "
			"daemons", l->path, why);
	l->lost = 1;
	return -ENOLCK;
}

/* same file as at start (dev, ino)? */
static int same(const char *path, const struct stat *was)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == was->st_dev && st.st_ino == was->st_ino;
}

static int beat(struct egr_lease *l, uint64_t now)
{
	char why[128];
	int rc;

	if (now - l->renewed_ns >= l->timeout_ns / 2) {
		snprintf(why, sizeof(why), "not renewed for %.1f s, past half of lease_timeout",
			 (double)(now - l->renewed_ns) / 1e9);
		return lose(l, why);
	}
	if (!same(l->path, &l->st))
		return lose(l, "the lease file was taken over by another daemon");
	if (!same(l->dir, &l->dir_st))
		return lose(l, "its active directory was requeued by another daemon");
	l->rec.counter++;
	l->rec.renewed_ns = now;
	if ((rc = write_rec(l)) < 0) {
		if (!l->write_failed)
			egr_warn("lease %s: heartbeat: %s; retrying (the lease is lost %.0f s after the last good one)",
				 l->path, strerror(-rc), (double)l->timeout_ns / 2e9);
		l->write_failed = 1;
		return 0;
	}
	if (l->write_failed)
		egr_notice("lease %s: heartbeats written again", l->path);
	l->write_failed = 0;
	l->renewed_ns = now;
	return 0;
}

int egr_lease_tick(struct egr_lease *l)
{
	uint64_t now = egr_fence_now_ns();

	if (l->lost)
		return -ENOLCK;
	if (now < l->next_ns)
		return 0;
	int first = !l->next_ns;
	l->next_ns = now + l->beat_ns;
	if (beat(l, now) < 0)
		return -ENOLCK;
	leftovers(l, first);
	watch(l, egr_fence_now_ns());
	return 0;
}

uint64_t egr_lease_next_ns(const struct egr_lease *l)
{
	uint64_t now = egr_fence_now_ns();

	return l->next_ns > now ? l->next_ns - now : 0;
}

int egr_lease_held(const struct egr_lease *l)
{
	return !l->lost && egr_fence_now_ns() - l->renewed_ns < l->timeout_ns / 2;
}

void egr_lease_close(struct egr_lease *l, int leave)
{
	struct reaped n = { 0 };

	if (!l)
		return;
	if (leave && egr_lease_held(l) && same(l->path, &l->st) && same(l->dir, &l->dir_st)) {
		/* a clean stop: what this daemon did not finish goes to the others now, not after lease_timeout */
		reap_dir(l, l->dir, 0, &n);
		if (!n.left && rmdir(l->dir) < 0 && errno != ENOENT)
			egr_fs_remove_tree(l->dir);
		unlink(l->path);
		if (n.requeued || n.done)
			egr_notice("shared spool: leaving: %u unfinished job%s requeued", n.requeued,
				   n.requeued == 1 ? "" : "s");
	}
	if (l->fd >= 0)
		close(l->fd);
	unsetenv(EGR_FENCE_ENV);
	free(l);
}
