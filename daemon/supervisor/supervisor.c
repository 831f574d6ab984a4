/*
 * supervisor: the egressd master process; see supervisor.h.
 *
 * Signals only set flags.  They stay blocked except inside ppoll(), which
 * unblocks them atomically, so a SIGCHLD can never slip in between the check
 * of a flag and the sleep (the nginx sigsuspend pattern, with fds).
 * Children's deaths are handled in one place, reap(): the ring gives back
 * whatever the dead process held, then the child is respawned with a
 * backoff, or, if it exited with a fatal code, the daemon stops.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/ring.h"
#include "daemon/base/fault.h"
#include "daemon/base/log.h"
#include "daemon/base/fs.h"
#include "daemon/base/safepath.h"
#include "daemon/base/sdnotify.h"
#include "daemon/supervisor/cancel.h"
#include "daemon/supervisor/lease.h"
#include "daemon/supervisor/metrics.h"
#include "daemon/supervisor/queue.h"
#include "daemon/supervisor/spool.h"
#include "daemon/supervisor/status.h"
#include "daemon/supervisor/supervisor.h"
#include "workers/output.h"

#define SUP_MAX_KIDS 65
#define SUP_NOTIFY_FD 3		/* where children find the notify pipe */
#define SUP_RESCAN_MS 1000	/* inotify can overflow: rescan anyway */
#define SUP_STOP_GRACE_MS 10000
#define SUP_CRASH_WINDOW_NS (30ull * 1000000000ull)
#define SUP_CRASH_LIMIT 10	/* deaths in the window before giving up */
#define SUP_SD_STATUS_MS 2000	/* STATUS= for systemctl status */
#define SUP_GAUGES_MS 250	/* slot and queue gauges, at most this often */

enum role { ROLE_PRODUCER, ROLE_WORKER };

/* roles as data: what each child is and which binary it runs */
static const struct {
	const char *name;
	const char *binary;
} roles[] = {
	[ROLE_PRODUCER] = { "producer", "egressd-producer" },
	[ROLE_WORKER] = { "worker", "egressd-worker" },
};

struct kid {
	pid_t pid;
	enum role role;
	uint32_t index;
	int device;		/* producer: the GPU it drives, -1 none (cpu backend) */
	uint64_t next_start_ns;	/* respawn not before (monotonic) */
	uint64_t window_start_ns;
	uint32_t deaths;	/* in the current window */
};

struct sup {
	const struct egr_conf *c;	/* &conf */
	struct egr_conf conf;		/* SIGHUP reloads what it may (egr_conf_reload) */
	struct egr_ring *ring;
	char shm_name[128];
	char bindir[PATH_MAX];
	int notify_rd, notify_wr;
	int inotify_fd;
	struct kid kids[SUP_MAX_KIDS];
	uint32_t nkids;
	uint32_t nproducers;	/* kids[0 .. nproducers-1] */
	int stopping;
	int lease_gone;		/* the lease was lost: discard our temporary outputs at teardown */
	int exit_code;
	uint64_t last_scan_ns;
	struct egr_spool *spool;	/* locked for the daemon's life (not --oneshot) */
	struct egr_lease *lease;	/* shared_spool = yes (lease.h); else NULL */
	struct egr_safepath roots;	/* [paths]: to remove outputs of failed jobs */
	long oom_kills;		/* the cgroup's count when last read, -1 unknown */
	uint64_t frames_ended;	/* frames of jobs reported, for STATUS= */
	uint64_t sd_status_ns, sd_status_frames;
	/* clients: status files and cancel requests, incoming/ in arrival order, metrics */
	struct egr_status status;
	struct egr_queue queue;
	struct egr_metrics *metrics;
	uint64_t gauges_ns;
	/* --oneshot */
	int oneshot;
	int oneshot_status;	/* -1 running, else exit code */
	int ready;		/* READY=1 sent */
};

static volatile sig_atomic_t sig_term, sig_chld, sig_hup;

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		sig_chld = 1;
	else if (sig == SIGHUP)
		sig_hup = 1;
	else
		sig_term = 1;
}

static int setup_signals(sigset_t *orig)
{
	struct sigaction sa;
	sigset_t block;
	const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
		sigaddset(&block, sigs[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	/*
	 * A file-size limit (ulimit -f, LimitFSIZE=) must be an error that
	 * names the file, not a signal that kills: ignored here, and so in the
	 * children (an ignored signal stays ignored across exec).
	 */
	signal(SIGXFSZ, SIG_IGN);
	return sigprocmask(SIG_BLOCK, &block, orig) < 0 ? -errno : 0;
}

static sigset_t orig_mask;

static int find_bindir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (slash)
		*slash = 0;
	return 0;
}

static void spawn(struct sup *s, struct kid *k)
{
	char path[PATH_MAX + 32], idx[16], fdnum[16];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", s->bindir, roles[k->role].binary);
	snprintf(idx, sizeof(idx), "%u", k->index);
	snprintf(fdnum, sizeof(fdnum), "%d", SUP_NOTIFY_FD);
	pid_t parent = getpid();
	pid = fork();
	if (pid < 0) {
		egr_err("fork(%s %u): %s; retrying in 1 s", roles[k->role].name, k->index, strerror(errno));
		k->next_start_ns = egr_log_now_ns() + 1000000000ull;
		return;
	}
	if (pid == 0) {
		char dev[16];
		snprintf(dev, sizeof(dev), "%d", k->device);
		char *const argv[] = { (char *)roles[k->role].binary, "-c", (char *)s->c->path,
				       "--shm", s->shm_name, "--notify-fd", fdnum, "--index", idx,
				       k->device >= 0 ? "--device" : NULL, dev, NULL };
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGCHLD, &dfl, NULL);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGPIPE, &dfl, NULL);
		/* ignored until the child installs its reload handler: a SIGHUP never kills one */
		signal(SIGHUP, SIG_IGN);
		sigprocmask(SIG_SETMASK, &orig_mask, NULL);
		/*
		 * Die with the supervisor: a new one reruns active/ jobs, and
		 * orphans writing the old run's temporary outputs would race it.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(EGR_EXIT_OSERR);
		/* dup2 clears close-on-exec: the one descriptor a child inherits */
		if (dup2(s->notify_wr, SUP_NOTIFY_FD) < 0)
			_exit(EGR_EXIT_OSERR);
		execv(path, argv);
		egr_err("execv(\"%s\"): %s", path, strerror(errno));
		_exit(EGR_EXIT_OSERR);
	}
	k->pid = pid;
	egr_info("started %s %u (pid %d)", roles[k->role].name, k->index, (int)pid);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "stopped with status 0x%x", status);
}

static int fatal_code(int code)
{
	return code == EGR_EXIT_CONFIG || code == EGR_EXIT_UNAVAILABLE;
}

/*
 * The kernel's count of OOM kills in our cgroup (cgroup v2 memory.events;
 * the children live in the supervisor's cgroup), or -1 where unknown.
 */
static long cgroup_oom_kills(void)
{
	char line[4096], path[4200];
	long n = -1;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return -1;
	path[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.events", line + 3);
		}
	fclose(f);
	if (!path[0] || !(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "oom_kill %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* What a wait status says against the job the child was on (ring.h). */
static enum egr_death_cause death_cause(struct sup *s, int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 0 ? EGR_DEATH_OUTSIDE : EGR_DEATH_CRASH;
	if (!WIFSIGNALED(status))
		return EGR_DEATH_OUTSIDE;
	switch (WTERMSIG(status)) {
	case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGABRT: case SIGSYS: case SIGTRAP:
		return EGR_DEATH_CRASH;
	case SIGKILL: {
		/* the OOM killer's SIGKILL looks like anyone's: ask the cgroup */
		long n = cgroup_oom_kills();
		if (n > s->oom_kills) {
			s->oom_kills = n;
			return EGR_DEATH_OOM;
		}
		return EGR_DEATH_OUTSIDE;
	}
	default:
		return EGR_DEATH_OUTSIDE;
	}
}

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct kid *k = NULL;
		char how[128];

		for (uint32_t i = 0; i < s->nkids; i++)
			if (s->kids[i].pid == pid)
				k = &s->kids[i];
		if (!k)
			continue;
		describe_status(status, how, sizeof(how));
		k->pid = 0;
		struct egr_death d = { .pid = pid, .cause = death_cause(s, status), .role = roles[k->role].name,
				       .how = how, .crash_limit = s->c->poison_tries, .oom_limit = s->c->oom_tries };
		int n = egr_ring_reclaim(s->ring, &d);
		if (s->stopping) {
			egr_info("%s %u (pid %d) %s", roles[k->role].name, k->index, (int)pid, how);
			continue;
		}
		egr_warn("%s %u (pid %d) %s; %d slot%s given back", roles[k->role].name, k->index, (int)pid,
			 how, n, n == 1 ? "" : "s");
		if (WIFEXITED(status) && fatal_code(WEXITSTATUS(status))) {
			egr_err("%s exited with fatal status %d: not respawning it; egressd stops",
				roles[k->role].name, WEXITSTATUS(status));
			s->exit_code = WEXITSTATUS(status);
			s->stopping = 1;
			continue;
		}
		uint64_t now = egr_log_now_ns();
		/*
		 * A kill from outside (an operator, a test, a tool restarting a
		 * process) says nothing about the binary: respawned at once and
		 * not counted toward the crash-loop limit, which a burst of
		 * such kills would otherwise reach, stopping the daemon.  Other
		 * signals keep the backoff: SIGPIPE in a loop is a bug.
		 */
		if (d.cause == EGR_DEATH_OUTSIDE && WIFSIGNALED(status) &&
		    (WTERMSIG(status) == SIGKILL || WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT)) {
			egr_metrics_restart(s->metrics, roles[k->role].name);	/* a restart all the same */
			k->next_start_ns = now;
			continue;
		}
		if (now - k->window_start_ns > SUP_CRASH_WINDOW_NS) {
			k->window_start_ns = now;
			k->deaths = 0;
		}
		k->deaths++;
		if (k->deaths >= SUP_CRASH_LIMIT) {
			egr_err("%s %u died %u times in 30 s: giving up; egressd stops", roles[k->role].name,
				k->index, k->deaths);
			s->exit_code = EGR_EXIT_SOFTWARE;
			s->stopping = 1;
			continue;
		}
		egr_metrics_restart(s->metrics, roles[k->role].name);
		/* first respawn at once, then 100 ms doubling to 5 s */
		uint64_t delay = k->deaths <= 1 ? 0 : 100000000ull << (k->deaths - 2);
		if (delay > 5000000000ull)
			delay = 5000000000ull;
		k->next_start_ns = now + delay;
	}
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* The result file: INI, so the tools that write jobs can read it back. */
static void format_result(const struct egr_job_view *j, char *buf, size_t len)
{
	const struct egr_job_stats *st = &j->st;
	uint64_t wall = st->t_end_ns > st->t_start_ns ? st->t_end_ns - st->t_start_ns : 0;
	uint64_t bytes = j->lay.out_bytes;
	int n;

	n = snprintf(buf, len,
		     "[result]\n"
		     "job = %s\n"
		     "status = done\n"
		     "output = %s\n"
		     "format = %s\n"
		     "decoder = %s\n"
		     "backend = %s\n"
		     "frames = %u\n"
		     "width = %u\n"
		     "height = %u\n"
		     "chunk_frames = %u\n"
		     "bytes = %llu\n"
		     "wall_s = %.6f\n"
		     "frames_per_s = %.3f\n"
		     "queue_wait_s = %.6f\n"
		     "read_s = %.6f\n"
		     "decode_s = %.6f\n"
		     "producer_blocked_s = %.6f\n"
		     "encode_s = %.6f\n"
		     "write_s = %.6f\n"
		     "finalize_s = %.6f\n"
		     "rewrites = %llu\n"
		     "producer_restarts = %u\n"
		     "owner_uid = %u\n",
		     j->name, j->spec.output, egr_job_format_name(j->spec.format),
		     egr_job_decoder_name(j->spec.decoder), j->backend, j->lay.frames, j->lay.width,
		     j->lay.height, j->lay.chunk_frames, (unsigned long long)bytes, secs(wall),
		     wall ? j->lay.frames / secs(wall) : 0.0,
		     st->t_start_ns > st->t_queued_ns ? secs(st->t_start_ns - st->t_queued_ns) : 0.0,
		     secs(st->read_ns), secs(st->decode_ns), secs(st->blocked_ns), secs(st->encode_ns),
		     secs(st->write_ns), secs(st->finalize_ns), (unsigned long long)st->rewrites,
		     j->producer_restarts, j->spec.owner_uid);
	if (n > 0 && (size_t)n < len && j->gpu >= 0)
		n += snprintf(buf + n, len - (size_t)n, "gpu = %d\n", j->gpu);
	if (n > 0 && (size_t)n < len && st->gpu_wall_ns) {
		/*
		 * gpu_kernel_util: decode-kernel time over the GPU's active
		 * window (first kernel start to last copy end, GPU clock): the
		 * steady state.  gpu_busy_of_wall: the same time over the whole
		 * job, which also counts set-up and the final fsync.
		 */
		snprintf(buf + n, len - (size_t)n,
			 "gpu_kernel_s = %.6f\n"
			 "gpu_active_s = %.6f\n"
			 "gpu_kernel_util = %.4f\n"
			 "gpu_busy_of_wall = %.4f\n"
			 "d2h_bytes = %llu\n"
			 "d2h_gbps = %.2f\n",
			 secs(st->gpu_kernel_ns), secs(st->gpu_wall_ns),
			 (double)st->gpu_kernel_ns / (double)st->gpu_wall_ns,
			 wall ? (double)st->gpu_kernel_ns / (double)wall : 0.0,
			 (unsigned long long)st->d2h_bytes,
			 st->d2h_ns ? (double)st->d2h_bytes / (double)st->d2h_ns : 0.0);
	}
}

/* --oneshot: a failed job's result goes to stdout, and becomes the exit code */
static void oneshot_failed(struct sup *s, const char *name, const char *why)
{
	printf("[result]\njob = %s\nstatus = failed\nerror = %s\n", name, why);
	fflush(stdout);
	s->oneshot_status = EGR_EXIT_JOB_FAILED;
}

static void job_report(struct sup *s, uint32_t i, int ok)
{
	struct egr_job_view jv, *j = &jv;
	char text[4096], err[512];
	int cancelled = !ok && s->status.rows[i].cancel_uid >= 0;

	egr_ring_job_view(s->ring, i, j);
	if (ok) {
		format_result(j, text, sizeof(text));
		uint64_t wall = j->st.t_end_ns > j->st.t_start_ns ? j->st.t_end_ns - j->st.t_start_ns : 1;
		egr_info("job %s done: %u frames %ux%u in %.3f s (%.1f frames/s) -> %s", j->name,
			 j->lay.frames, j->lay.width, j->lay.height, secs(wall), j->lay.frames / secs(wall),
			 j->spec.output);
	} else {
		/*
		 * A failed job leaves no partial output behind.  The layout is
		 * recorded before the temporary output is created, so one the
		 * producer died creating goes too.
		 */
		int rc = j->planned ? egr_output_discard(&s->roots, &j->spec, &j->lay) : 0;
		if (rc)
			egr_warn("removing partial output \"%s\": %s", j->lay.tmp_path, strerror(-rc));
		snprintf(text, sizeof(text), "%s\n", j->error);
		if (cancelled)
			egr_notice("job %s %s: its temporary output is removed", j->name, j->error);
		else
			egr_warn("job %s failed: %s", j->name, j->error);
	}
	if (ok && !s->oneshot)
		egr_fault_kill("EGR_FAULT_SUPERVISOR_KILL", "finish");	/* output in place, no record */
	if (s->oneshot && ok) {
		fputs(text, stdout);
		fflush(stdout);
		s->oneshot_status = EGR_EXIT_OK;
	} else if (s->oneshot) {
		oneshot_failed(s, j->name, j->error);
	} else if (s->lease && !egr_lease_held(s->lease)) {
		egr_warn("job %s: no record written: this daemon no longer holds its lease (lease.h)", j->name);
	} else if ((cancelled ? egr_cancel_finish(s->c->spool, "active", j->name, text, err, sizeof(err))
			      : egr_spool_finish(s->c->spool, j->name, ok, text, err, sizeof(err))) < 0) {
		egr_err("job %s: %s", j->name, err);
	} else {
		char journal[4200];
		if (egr_output_journal_path(j->path, journal, sizeof(journal)) == 0)
			egr_output_journal_end(journal);	/* the record is in place */
	}
	if (ok)
		s->frames_ended += j->lay.frames;
	egr_metrics_ended(s->metrics, j, ok ? "done" : cancelled ? "cancelled" : "failed");
	egr_status_ended(&s->status, i);	/* after the record: a client always finds one of them */
	egr_ring_job_clear(s->ring, i);
}

/* Report the jobs that ended; returns how many. */
static int process_jobs(struct sup *s)
{
	int ended = 0;

	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		uint32_t state = egr_ring_job_state(s->ring, i);
		struct egr_job_view j;

		if (state != EGR_JOB_DONE && state != EGR_JOB_FAILED)
			continue;
		egr_ring_job_view(s->ring, i, &j);
		/* wait for the producer to let go: it still adds its stats */
		if (j.state == EGR_JOB_DONE && j.producer == 0) {
			job_report(s, i, 1);
			ended++;
		} else if (j.state == EGR_JOB_FAILED && j.producer == 0 && j.finalizer == 0 &&
			   egr_ring_job_slots(s->ring, i) == 0) {
			job_report(s, i, 0);
			ended++;
		}
	}
	return ended;
}

static int job_in_table(struct sup *s, const char *name)
{
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_view j;
		if (egr_ring_job_state(s->ring, i) == EGR_JOB_EMPTY)
			continue;
		egr_ring_job_view(s->ring, i, &j);
		if (j.state != EGR_JOB_EMPTY && strcmp(j.name, name) == 0)
			return 1;
	}
	return 0;
}

static int table_free(struct sup *s)
{
	int n = 0;

	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		n += egr_ring_job_state(s->ring, i) == EGR_JOB_EMPTY;
	return n;
}

/* Parse and queue a job file; a bad one goes to failed/ with its reason. */
static void queue_job(struct sup *s, const char *name, const char *path)
{
	struct egr_jobspec js;
	char err[EGR_ERR_MAX], err2[512];
	struct stat st;
	int rc = egr_conf_paths_ready(s->c, err, sizeof(err));

	if (rc == 0)
		rc = egr_job_parse(path, &js, err, sizeof(err));
	if (rc == 0) {
		js.owner_uid = stat(path, &st) == 0 ? (uint32_t)st.st_uid : UINT32_MAX;
		rc = egr_ring_job_queue(s->ring, name, path, &js);
		if (rc >= 0) {
			egr_status_queued(&s->status, (uint32_t)rc, name, path);
			egr_info("job %s queued", name);
			return;
		}
		snprintf(err, sizeof(err), "job table full");
	}
	if (s->oneshot) {
		oneshot_failed(s, name, err);
		return;
	}
	egr_warn("job %s rejected: %s", name, err);
	char line[EGR_ERR_MAX + 2];
	snprintf(line, sizeof(line), "%s\n", err);
	if (egr_spool_finish(s->c->spool, name, 0, line, err2, sizeof(err2)) < 0)
		egr_err("job %s: %s", name, err2);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * What a killed supervisor can leave in the spool besides jobs: records
 * half-written by egr_fs_write_atomic ("NAME.result.tmp" in done/ and
 * failed/), and journals whose job already moved on (written by this
 * daemon only; see workers/output.h).
 */
static void sweep_spool(struct sup *s)
{
	static const enum egr_spool_dir dirs[] = { EGR_SPOOL_ACTIVE, EGR_SPOOL_DONE, EGR_SPOOL_FAILED };
	char dir[4096], path[4400], job[4400];

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		DIR *dp;
		struct dirent *de;
		/* shared spool: done/ and failed/ temporaries may be another daemon's, in flight */
		if ((s->lease && d > 0) || egr_spool_path(dir, sizeof(dir), s->c->spool, dirs[d], NULL) < 0 ||
		    !(dp = opendir(dir)))
			continue;
		while ((de = readdir(dp))) {
			const char *n = de->d_name;
			int stale = ends_with(n, ".result.tmp") || ends_with(n, ".error.tmp") ||
				    ends_with(n, ".egressd-wal.tmp");
			if (!stale && dirs[d] == EGR_SPOOL_ACTIVE && n[0] == '.' && ends_with(n, ".egressd-wal")) {
				/* ".JOB.egressd-wal" without active/JOB */
				int len = (int)(strlen(n) - 1 - strlen(".egressd-wal"));
				snprintf(job, sizeof(job), "%s/%.*s", dir, len, n + 1);
				stale = access(job, F_OK) < 0 && errno == ENOENT;
			}
			snprintf(path, sizeof(path), "%s/%s", dir, n);
			if (stale && unlink(path) == 0)
				egr_info("removed \"%s\", left by a killed run", path);
		}
		closedir(dp);
	}
}

/*
 * The record a finish interrupted by a kill left in done/ or failed/: the
 * report (NAME.result or NAME.error, written atomically, so whole) without
 * the job file it precedes (egr_spool_finish).  1 with its text, else 0.
 */
static int orphan_record(struct sup *s, enum egr_spool_dir d, const char *name, char *side, size_t sidelen,
			 char *text, size_t len)
{
	char job[4096];
	ssize_t n;
	int fd;

	if (egr_spool_path(job, sizeof(job), s->c->spool, d, name) < 0)
		return 0;
	snprintf(side, sidelen, "%s%s", job, d == EGR_SPOOL_DONE ? ".result" : ".error");
	if (access(job, F_OK) == 0 || (fd = open(side, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, text, len - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = 0;
	return 1;
}

/*
 * A job left in active/ by a killed supervisor.  What is on disk decides,
 * so a finish interrupted anywhere is completed, never contradicted: an
 * output in place that the journal says this job wrote means done (with the
 * report written before the kill, if any); else a failure report already
 * written means failed (a rerun could end done beside it); else the job is
 * rerun (0), after the journal's temporary output is removed.  1 when the
 * job was recorded now.
 */
static int recover_job(struct sup *s, const char *name, const char *path)
{
	char journal[4200], err[EGR_ERR_MAX] = "", text[4096], side[4400];
	int rc = 0, ok = 0;

	if (egr_output_journal_path(path, journal, sizeof(journal)) < 0)
		journal[0] = 0;
	else
		rc = egr_output_recover(&s->roots, journal, err, sizeof(err));
	if (rc < 0 || (rc == 0 && err[0]))
		egr_warn("job %s: %s", name, err);
	if (rc == 1) {
		ok = 1;
		egr_notice("job %s: its output was complete when the last run was killed; recorded as done", name);
		if (!orphan_record(s, EGR_SPOOL_DONE, name, side, sizeof(side), text, sizeof(text)))
			snprintf(text, sizeof(text),
				 "[result]\njob = %s\nstatus = done\nrecovered = yes\n"
				 "; the supervisor was killed after the output was in place, before this record: timings were lost\n",
				 name);
	} else if (orphan_record(s, EGR_SPOOL_FAILED, name, side, sizeof(side), text, sizeof(text))) {
		egr_notice("job %s: it had failed when the last run was killed; recorded as failed", name);
	} else {
		/* rerun; a done report whose output is gone would contradict its outcome */
		if (orphan_record(s, EGR_SPOOL_DONE, name, side, sizeof(side), text, sizeof(text)) &&
		    unlink(side) == 0)
			egr_notice("job %s: removed \"%s\": its output is not in place; rerunning", name, side);
		return 0;
	}
	if (egr_spool_finish(s->c->spool, name, ok, text, err, sizeof(err)) < 0) {
		egr_err("job %s: %s", name, err);
		return 1;
	}
	if (journal[0])
		egr_output_journal_end(journal);
	return 1;
}

/* incoming/name into active/ under a unique id (spool.h judges it there), then queued */
static void claim_job(struct sup *s, const char *name)
{
	struct egr_spool_job cj;
	char err[EGR_ERR_MAX], path[4096];
	int rc = egr_spool_claim_job(s->spool, name, &cj, err, sizeof(err));

	if (rc == EGR_SPOOL_REFUSED) {
		egr_warn("job %s refused: %s", cj.id, err);
	} else if (rc < 0 && rc != -ENOENT && rc != -EALREADY) {
		egr_err("%s", err);
	} else if (rc == 0 && !egr_conf_uid_allowed(s->c, (unsigned)cj.uid)) {
		/* the administrator's list of submitters ([daemon] submit_uids) */
		snprintf(err, sizeof(err), "job file owned by uid %u, who may not submit jobs here ([daemon] submit_uids)\n",
			 (unsigned)cj.uid);
		egr_warn("job %s refused: %.*s", cj.id, (int)strcspn(err, "\n"), err);
		if (egr_spool_finish(s->c->spool, cj.id, 0, err, path, sizeof(path)) < 0)
			egr_err("job %s: %s", cj.id, path);
	} else if (rc == 0 && egr_spool_path(path, sizeof(path), s->c->spool, EGR_SPOOL_ACTIVE, cj.id) == 0) {
		egr_info("job %s claimed (submitted by uid %u)", cj.id, (unsigned)cj.uid);
		queue_job(s, cj.id, path);
	}
}

static void fill_table(struct sup *s)
{
	char **names;
	size_t n;
	char err[512], path[4096];

	s->last_scan_ns = egr_log_now_ns();
	if (table_free(s) == 0 || (s->lease && !egr_lease_held(s->lease)))
		return;
	/* claimed before a crash first, then new ones */
	if (egr_spool_list(s->c->spool, EGR_SPOOL_ACTIVE, &names, &n, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n && table_free(s) > 0; i++) {
			if (job_in_table(s, names[i]))
				continue;
			if (egr_spool_path(path, sizeof(path), s->c->spool, EGR_SPOOL_ACTIVE, names[i]) == 0 &&
			    !recover_job(s, names[i], path))
				queue_job(s, names[i], path);
		}
		egr_spool_free_list(names, n);
	} else {
		egr_err("%s", err);
	}
	if (table_free(s) == 0)
		return;
	/* incoming/ in arrival order, listed again only once the last listing is used up (queue.h) */
	if (egr_queue_waiting(&s->queue) == 0 && egr_queue_list(&s->queue, s->c->spool, err, sizeof(err)) < 0)
		egr_err("%s", err);
	const char *name;
	/* each entry is claimed under a unique id (and judged there: spool.h) */
	while (table_free(s) > 0 && (name = egr_queue_pop(&s->queue)))
		claim_job(s, name);
}

static void drain_fd(int fd)
{
	char buf[4096];

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Read the spool's events; an overflow is logged (the rescan that follows recovers). */
static void drain_inotify(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				egr_warn("inotify queue overflowed (too many jobs at once): rescanning incoming/");
			p += sizeof(*ev) + ev->len;
		}
	}
}

static int alive_kids(struct sup *s)
{
	int n = 0;

	for (uint32_t i = 0; i < s->nkids; i++)
		n += s->kids[i].pid > 0;
	return n;
}

static void stop_children(struct sup *s)
{
	uint64_t deadline = egr_log_now_ns() + SUP_STOP_GRACE_MS * 1000000ull;

	egr_ring_wake_all(s->ring);
	for (uint32_t i = 0; i < s->nkids; i++)
		if (s->kids[i].pid > 0)
			kill(s->kids[i].pid, SIGTERM);
	while (alive_kids(s) && egr_log_now_ns() < deadline) {
		struct timespec ts = { 0, 20000000 };
		reap(s);
		if (alive_kids(s))
			nanosleep(&ts, NULL);
	}
	for (uint32_t i = 0; i < s->nkids; i++) {
		if (s->kids[i].pid > 0) {
			egr_warn("%s %u (pid %d) ignored SIGTERM for %d s: SIGKILL",
				 roles[s->kids[i].role].name, s->kids[i].index, (int)s->kids[i].pid,
				 SUP_STOP_GRACE_MS / 1000);
			kill(s->kids[i].pid, SIGKILL);
		}
	}
	while (alive_kids(s)) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0)
			break;
		for (uint32_t i = 0; i < s->nkids; i++)
			if (s->kids[i].pid == pid)
				s->kids[i].pid = 0;
	}
}

/* GPUs the driver shows (/dev/nvidia0, /dev/nvidia1, ...), counted without CUDA */
static int count_gpus(void)
{
	char path[32];
	int n = 0;

	for (; n < 64; n++) {
		snprintf(path, sizeof(path), "/dev/nvidia%d", n);
		if (access(path, F_OK) < 0)
			break;
	}
	return n;
}

/*
 * One producer per GPU of [cuda] devices (each takes whole jobs from the
 * shared table, so a video decoder's state stays on one GPU); one with no
 * GPU for backend = cpu.
 */
static int add_producers(struct sup *s)
{
	uint32_t dev[SUP_MAX_KIDS / 2];
	char err[256];
	int n = 1;

	dev[0] = 0;
	if (strcmp(s->c->backend, "cpu") != 0) {
		n = egr_conf_devices(s->c, count_gpus(), dev, (int)(sizeof(dev) / sizeof(dev[0])), err, sizeof(err));
		if (n < 0) {
			egr_err("%s", err);
			return EGR_EXIT_CONFIG;
		}
	}
	for (int i = 0; i < n; i++)
		s->kids[s->nkids++] = (struct kid){ .role = ROLE_PRODUCER, .index = (uint32_t)i,
						    .device = strcmp(s->c->backend, "cpu") ? (int)dev[i] : -1 };
	s->nproducers = (uint32_t)n;
	return 0;
}

/*
 * The temporary output of a job that will not finish: of a stopped --oneshot,
 * or of a killed one, found in the segment it left (egr_ring_reap_oneshots).
 */
static void discard_partial(void *ctx, const struct egr_job_view *j)
{
	struct sup *s = ctx;
	int rc = egr_output_discard(&s->roots, &j->spec, &j->lay);

	if (rc)
		egr_warn("removing partial output \"%s\": %s", j->lay.tmp_path, strerror(-rc));
	else
		egr_info("removed partial output \"%s\" of job %s, if it was there", j->lay.tmp_path, j->name);
}

static int sup_setup(struct sup *s, const struct egr_conf *c, int oneshot)
{
	struct egr_ring_geom g;
	struct egr_ring_info info;
	char err[512];
	int fds[2], rc;

	memset(s, 0, sizeof(*s));
	s->conf = *c;
	s->c = c = &s->conf;
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		s->status.rows[i].uid = s->status.rows[i].cancel_uid = -1;
	s->notify_rd = s->notify_wr = s->inotify_fd = -1;
	s->oneshot = oneshot;
	s->oneshot_status = -1;
	if (oneshot)
		snprintf(s->shm_name, sizeof(s->shm_name), "/%s.oneshot.%d", c->instance, (int)getpid());
	else
		snprintf(s->shm_name, sizeof(s->shm_name), "/%s", c->instance);
	if ((rc = find_bindir(s->bindir, sizeof(s->bindir))) < 0) {
		egr_err("readlink(\"/proc/self/exe\"): %s", strerror(-rc));
		return EGR_EXIT_OSERR;
	}
	if ((rc = setup_signals(&orig_mask)) < 0) {
		egr_err("sigaction/sigprocmask: %s", strerror(-rc));
		return EGR_EXIT_OSERR;
	}
	/* non-blocking both ends: a burst of notifications must never block a child */
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		egr_err("pipe2(notify): %s", strerror(errno));
		return EGR_EXIT_OSERR;
	}
	s->notify_rd = fds[0];
	s->notify_wr = fds[1];

	g.nslots = c->slots;
	g.slot_bytes = c->slot_bytes;
	g.max_chunks = (uint32_t)(c->max_frames > UINT32_MAX ? UINT32_MAX : c->max_frames);
	s->oom_kills = cgroup_oom_kills();
	if (egr_safepath_init(&s->roots, c->allow_read, c->allow_write, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_CONFIG;
	}
	/* the spool is one daemon's (or shared: lease.h): a second one stops here, before any shared memory */
	if (!oneshot && (rc = strcmp(c->shared_spool, "yes") ? egr_spool_open(c->spool, &s->spool, err, sizeof(err))
			      : egr_lease_open(c, &s->roots, &s->spool, &s->lease, err, sizeof(err))) < 0) {
		egr_err("%s", err);
		return rc == -EBUSY ? EGR_EXIT_UNAVAILABLE : EGR_EXIT_CONFIG;
	}
	egr_ring_reap_oneshots(c->instance, discard_partial, s);
	if ((rc = egr_ring_create(s->shm_name, &g, &s->ring, err, sizeof(err))) < 0) {
		egr_err("%s", err);
		return rc == -EBUSY ? EGR_EXIT_UNAVAILABLE : EGR_EXIT_OSERR;
	}
#ifdef EGR_TESTING
	/* test builds: a slow disk, for the backpressure tests */
	const char *delay = getenv("EGR_FAULT_WRITE_DELAY_MS");
	if (delay)
		egr_ring_set_fault_delay(s->ring, (uint32_t)atoi(delay));
#endif
	egr_ring_info(s->ring, &info);
	egr_info("shared memory %s: %u slots of %llu bytes (%.1f MiB in all)", s->shm_name, c->slots,
		 (unsigned long long)info.slot_bytes, (double)info.total_bytes / 1048576.0);

	if (!oneshot) {
		char inc[4096], cancel[4200];
		if (egr_status_init(&s->status, c->spool, err, sizeof(err)) < 0) {
			egr_err("%s", err);
			return EGR_EXIT_CONFIG;
		}
		if (egr_metrics_open(&s->metrics, c, err, sizeof(err)) < 0) {
			egr_err("%s", err);
			return EGR_EXIT_CONFIG;
		}
		sweep_spool(s);
		egr_spool_path(inc, sizeof(inc), c->spool, EGR_SPOOL_INCOMING, NULL);
		snprintf(cancel, sizeof(cancel), "%s/cancel", c->spool);
		s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (s->inotify_fd < 0 ||
		    inotify_add_watch(s->inotify_fd, inc, IN_MOVED_TO | IN_CLOSE_WRITE) < 0 ||
		    inotify_add_watch(s->inotify_fd, cancel, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
			/* the periodic rescan still finds jobs, only later */
			egr_warn("inotify on \"%s\": %s; polling every %d ms", inc, strerror(errno),
				 SUP_RESCAN_MS);
		}
	}

	if ((rc = add_producers(s)) != 0)
		return rc;
	uint32_t nworkers = egr_conf_pipeline(c) == EGR_PIPE_ONE_WORKER ? 1 : c->workers;
	for (uint32_t i = 0; i < nworkers && s->nkids < SUP_MAX_KIDS; i++)
		s->kids[s->nkids++] = (struct kid){ .role = ROLE_WORKER, .index = i, .device = -1 };
	for (uint32_t i = 0; i < s->nkids; i++)
		s->kids[i].window_start_ns = egr_log_now_ns();
	return 0;
}

/*
 * The temporary outputs of the jobs that did not end, once the children are
 * gone: of a --oneshot stopped before its job ended (SIGTERM, SIGINT: nobody
 * will rerun it), and of a daemon that lost its lease (the jobs are another
 * daemon's, which reruns them under a temporary name of its own: ours is
 * garbage, and a child that ran on after the reaper took the journalled name
 * away may have created it again).  A daemon stopped cleanly keeps its jobs
 * in active/ and reruns them at the next start, through their journals.
 */
static void discard_unfinished(struct sup *s)
{
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_view j;
		if (egr_ring_job_view(s->ring, i, &j) == 0 && j.state != EGR_JOB_EMPTY &&
		    j.state != EGR_JOB_DONE && j.planned)
			discard_partial(s, &j);
	}
}

static void sup_teardown(struct sup *s)
{
	if (s->ring) {
		s->stopping = 1;
		stop_children(s);
		if (s->oneshot || s->lease_gone)
			discard_unfinished(s);
		egr_ring_close(s->ring);
		egr_ring_unlink(s->shm_name);
	}
	egr_metrics_close(s->metrics);	/* the textfile's last version */
	s->metrics = NULL;
	egr_queue_free(&s->queue);
	egr_lease_close(s->lease, s->ring != NULL);	/* children gone: a clean stop requeues what is left */
	s->lease = NULL;
	if (s->inotify_fd >= 0)
		close(s->inotify_fd);
	if (s->notify_rd >= 0)
		close(s->notify_rd);
	if (s->notify_wr >= 0)
		close(s->notify_wr);
	egr_spool_close(s->spool);
	s->spool = NULL;
	egr_safepath_close(&s->roots);
}

static uint32_t slots_busy(struct sup *s, uint32_t *nslots)
{
	struct egr_ring_info info;
	uint32_t n = 0;

	egr_ring_info(s->ring, &info);
	for (uint32_t i = 0; i < info.nslots; i++) {
		struct egr_slot_view v;
		egr_ring_slot_view(s->ring, i, &v);
		n += v.state != EGR_SLOT_FREE;
	}
	*nslots = info.nslots;
	return n;
}

/* The job table as clients and operators see it: status files, counters, gauges, the textfile. */
static void observe_jobs(struct sup *s)
{
	uint64_t now = egr_log_now_ns(), frames = s->frames_ended;
	uint32_t queued = 0, running = 0, nslots;

	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		struct egr_job_view j;
		if (egr_ring_job_state(s->ring, i) == EGR_JOB_EMPTY || egr_ring_job_view(s->ring, i, &j) < 0)
			continue;
		queued += j.state == EGR_JOB_QUEUED;
		running += j.state == EGR_JOB_ACTIVE;
		frames += egr_status_frames_done(&j);
		egr_status_observe(&s->status, &j, now);
		egr_metrics_observe(s->metrics, &j);
	}
	if (s->metrics && now - s->gauges_ns >= SUP_GAUGES_MS * 1000000ull) {
		s->gauges_ns = now;
		uint32_t busy = slots_busy(s, &nslots);
		egr_metrics_gauges(s->metrics, egr_queue_waiting(&s->queue) + queued, running, busy, nslots);
	}
	egr_metrics_tick(s->metrics, now);
	/* systemctl status shows it: what the daemon is doing, in one line */
	if (now - s->sd_status_ns >= SUP_SD_STATUS_MS * 1000000ull) {
		double fps = s->sd_status_ns && frames >= s->sd_status_frames
				     ? (double)(frames - s->sd_status_frames) * 1e9 / (double)(now - s->sd_status_ns)
				     : 0.0;
		egr_sdnotify_status("%u running, %zu queued, %.0f frames/s", running,
				    (size_t)(egr_queue_waiting(&s->queue) + queued), fps);
		s->sd_status_ns = now;
		s->sd_status_frames = frames;
	}
}

/*
 * SIGHUP: the reloadable keys ([limits], [metrics], log_level) take effect
 * here and in the children (they re-read the file on their SIGHUP); a
 * changed key that needs a restart is named and keeps its value.
 */
static void reload(struct sup *s)
{
	struct egr_conf next;
	char err[1024], refused[1024];

	if (egr_conf_load(s->conf.path, &next, err, sizeof(err)) < 0) {
		egr_err("SIGHUP: %s; nothing changed", err);
		return;
	}
	if (egr_conf_reload(&s->conf, &next, refused, sizeof(refused)) > 0)
		egr_warn("SIGHUP: not applied (restart egressd to change them): %s", refused);
	egr_log_set_level(egr_conf_log_level(&s->conf));
	if (s->metrics && egr_metrics_configure(s->metrics, &s->conf, err, sizeof(err)) < 0)
		egr_err("SIGHUP: %s; metrics keep the old address", err);
	for (uint32_t i = 0; i < s->nkids; i++)
		if (s->kids[i].pid > 0)
			kill(s->kids[i].pid, SIGHUP);
	egr_notice("SIGHUP: reloaded %s ([limits], [metrics], log_level = %s)", s->conf.path, s->conf.log_level);
}

/*
 * The lease is lost (lease.h): the jobs are another daemon's now; nothing of
 * ours may record or commit them.  Only our own temporary outputs go, once
 * the children are dead (sup_teardown).
 */
static void lease_lost(struct sup *s)
{
	for (uint32_t i = 0; i < s->nkids; i++)
		if (s->kids[i].pid > 0)
			kill(s->kids[i].pid, SIGKILL);
	s->lease_gone = 1;
	s->stopping = 1;
	s->exit_code = EGR_EXIT_OSERR;
}

static int sup_loop(struct sup *s)
{
	sigset_t waitmask = orig_mask;

	sigdelset(&waitmask, SIGCHLD);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);

	for (;;) {
		struct pollfd pfd[2 + EGR_METRICS_MAX_FDS] = { { s->notify_rd, POLLIN, 0 }, { s->inotify_fd, POLLIN, 0 } };
		uint64_t now = egr_log_now_ns();
		uint64_t wait_ns = SUP_RESCAN_MS * 1000000ull;
		int spool_event = 0;

		for (uint32_t i = 0; i < s->nkids; i++) {
			struct kid *k = &s->kids[i];
			if (k->pid == 0 && !s->stopping) {
				if (k->next_start_ns <= now)
					spawn(s, k);
				else if (k->next_start_ns - now < wait_ns)
					wait_ns = k->next_start_ns - now;
			}
		}
		if (!s->ready && !s->oneshot) {
			/* children started, spool watched: what Type=notify waits for */
			s->ready = 1;
			egr_sdnotify_ready();
			egr_sdnotify_status("serving %s with %u producer%s and %u workers", s->c->spool,
					    s->nproducers, s->nproducers == 1 ? "" : "s", s->nkids - s->nproducers);
		}
		/* a wedged loop stops pinging and systemd restarts the service */
		uint64_t ping_ns = egr_sdnotify_watchdog_tick(now);
		if (ping_ns && ping_ns < wait_ns)
			wait_ns = ping_ns;
		if (s->lease && egr_lease_next_ns(s->lease) < wait_ns)
			wait_ns = egr_lease_next_ns(s->lease);
		struct timespec ts = { (time_t)(wait_ns / 1000000000ull), (long)(wait_ns % 1000000000ull) };
		int nm = egr_metrics_pollfds(s->metrics, pfd + 2, EGR_METRICS_MAX_FDS);
		int n = ppoll(pfd, 2 + (nfds_t)nm, &ts, &waitmask);
		if (n < 0 && errno != EINTR) {
			egr_err("ppoll: %s", strerror(errno));
			return EGR_EXIT_OSERR;
		}
		if (sig_term) {
			egr_sdnotify_stopping();
			egr_notice("stopping (signal received)");
			s->stopping = 1;
		}
		if (sig_hup) {
			sig_hup = 0;
			reload(s);
		}
		if (sig_chld) {
			sig_chld = 0;
			reap(s);
		}
		if (s->lease && egr_lease_tick(s->lease) < 0)
			lease_lost(s);
		if (n > 0 && (pfd[0].revents & POLLIN))
			drain_fd(s->notify_rd);
		if (n > 0)
			egr_metrics_serve(s->metrics, pfd + 2, nm);
		if (n > 0 && s->inotify_fd >= 0 && (pfd[1].revents & POLLIN)) {
			drain_inotify(s->inotify_fd);
			spool_event = 1;
		}
		/* a job that ended frees a table row: refill now, not at the next event */
		if (process_jobs(s))
			spool_event = 1;
		if (s->stopping)
			return s->exit_code;
		if (s->oneshot) {
			if (s->oneshot_status >= 0)
				return s->oneshot_status;
			continue;
		}
		if (spool_event || egr_log_now_ns() - s->last_scan_ns >= SUP_RESCAN_MS * 1000000ull) {
			egr_cancel_scan(&s->status, s->ring);	/* before a claim can start a cancelled job */
			fill_table(s);
		}
		observe_jobs(s);
	}
}

int egr_supervisor_run(const struct egr_conf *c)
{
	struct sup s;
	int rc = sup_setup(&s, c, 0);

	if (rc == 0) {
		egr_notice("egressd started: spool %s, %u workers, backend %s, pipeline %s", c->spool,
			   s.nkids - s.nproducers, c->backend, c->pipeline);
		egr_cancel_scan(&s.status, s.ring);	/* requests made while it was down */
		fill_table(&s);
		rc = sup_loop(&s);
	}
	sup_teardown(&s);
	egr_notice("egressd stopped");
	return rc;
}

int egr_supervisor_oneshot(const struct egr_conf *c, const char *job_path)
{
	struct sup s;
	const char *base = strrchr(job_path, '/');
	int rc = sup_setup(&s, c, 1);

	if (rc == 0) {
		queue_job(&s, base ? base + 1 : job_path, job_path);
		rc = s.oneshot_status >= 0 ? s.oneshot_status : sup_loop(&s);
		if (rc == EGR_EXIT_OK && s.oneshot_status < 0)
			rc = EGR_EXIT_SOFTWARE;	/* stopped before the job ended */
	}
	sup_teardown(&s);
	return rc;
}
