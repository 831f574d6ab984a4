/* status: per-job status files for clients, and the client-side spool directories; see status.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/spool.h"
#include "daemon/supervisor/status.h"

#define DROP_MODE 03770		/* setgid, sticky, group-writable: submitters drop, nobody removes another's */

static const struct {
	const char *name;
	mode_t mode;		/* 0: the mkdir mode is enough */
} client_dirs[] = {
	{ "tmp", DROP_MODE },
	{ "status", 0 },
	{ "cancel", DROP_MODE },
	{ "cancelled", 0 },
	{ "staging", DROP_MODE },
};

/* At start the job table is empty: status files a killed run left describe nothing. */
static void sweep_status(const char *spool)
{
	char dir[4200];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/status", spool);
	if (!(d = opendir(dir)))
		return;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".status") && unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			egr_warn("unlink(\"%s/%s\"): %s", dir, de->d_name, strerror(errno));
	closedir(d);
}

int egr_status_init(struct egr_status *st, const char *spool, char *err, size_t errlen)
{
	char p[4200];

	memset(st, 0, sizeof(*st));
	snprintf(st->spool, sizeof(st->spool), "%s", spool);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++)
		st->rows[i].uid = st->rows[i].cancel_uid = -1;
	for (size_t i = 0; i < sizeof(client_dirs) / sizeof(client_dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", spool, client_dirs[i].name);
		if (mkdir(p, 0750) < 0) {
			int e = errno;
			if (e == EEXIST)
				continue;	/* the administrator's modes stay */
			egr_errf(err, errlen, "mkdir(\"%s\"): %s", p, strerror(e));
			return -e;
		}
		/* chmod, not mkdir's mode: the umask and mkdir's handling of setgid are in the way */
		if (client_dirs[i].mode && chmod(p, client_dirs[i].mode) < 0) {
			int e = errno;
			egr_errf(err, errlen, "chmod(\"%s\", %o): %s", p, client_dirs[i].mode, strerror(e));
			return -e;
		}
	}
	if (!egr_spool_shared())	/* shared spool: the other daemons' files are live */
		sweep_status(spool);
	return 0;
}

void egr_status_queued(struct egr_status *st, uint32_t row, const char *name, const char *path)
{
	struct egr_status_row *s = &st->rows[row];
	struct stat sb;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->uid = stat(path, &sb) == 0 ? (long)sb.st_uid : -1;
	s->cancel_uid = -1;
}

uint32_t egr_status_frames_done(const struct egr_job_view *j)
{
	uint64_t lat = (uint64_t)j->chunks_written * j->lay.chunk_frames;

	if (!j->planned)
		return 0;
	return egr_layout_frames_upto(&j->lay, lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat);
}

static double epoch_s(uint64_t realtime_ns)
{
	return (double)realtime_ns / 1e9;
}

static const char *state_word(const struct egr_status_row *s, uint32_t state)
{
	if (s->cancel_uid >= 0)
		return "cancelling";
	return state == EGR_JOB_QUEUED ? "queued" : "running";
}

static void status_path(const struct egr_status *st, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/status/%s.status", st->spool, name);
}

static void write_status(struct egr_status *st, struct egr_status_row *s, const struct egr_job_view *j,
			 uint64_t now_ns)
{
	struct timespec ts;
	char text[2048], path[4400], err[512];
	uint32_t done = egr_status_frames_done(j), total = j->planned ? j->lay.frames : 0;
	double now, fps = 0.0;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (j->st.t_start_ns && now > epoch_s(j->st.t_start_ns))
		fps = done / (now - epoch_s(j->st.t_start_ns));
	n = snprintf(text, sizeof(text), "[status]\njob = %s\nstate = %s\n", j->name, state_word(s, j->state));
	if (s->uid >= 0)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "owner_uid = %ld\n", s->uid);
	n += snprintf(text + n, sizeof(text) - (size_t)n,
		      "frames_done = %u\nframes_total = %u\nframes_per_s = %.3f\n", done, total, fps);
	if (fps > 0 && total)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "eta_s = %.3f\n", (total - done) / fps);
	n += snprintf(text + n, sizeof(text) - (size_t)n, "queued_at = %.3f\n", epoch_s(j->st.t_queued_ns));
	if (j->st.t_start_ns)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "started_at = %.3f\n", epoch_s(j->st.t_start_ns));
	snprintf(text + n, sizeof(text) - (size_t)n, "updated_at = %.3f\noutput = %s\n", now, j->spec.output);

	status_path(st, j->name, path, sizeof(path));
	if (egr_fs_write_view(path, text, err, sizeof(err)) < 0)
		egr_warn("job %s: status: %s", j->name, err);
	s->state_written = j->state;
	s->frames_written = done;
	s->written_ns = now_ns;
}

void egr_status_observe(struct egr_status *st, const struct egr_job_view *j, uint64_t now_ns)
{
	struct egr_status_row *s = &st->rows[j->index];

	if (j->state != EGR_JOB_QUEUED && j->state != EGR_JOB_ACTIVE)
		return;		/* ended: the record is next */
	if (!s->name[0] || strcmp(s->name, j->name))
		return;		/* not queued through egr_status_queued (--oneshot) */
	if (s->state_written == j->state &&
	    (s->frames_written == egr_status_frames_done(j) ||
	     now_ns - s->written_ns < EGR_STATUS_PERIOD_MS * 1000000ull))
		return;
	write_status(st, s, j, now_ns);
}

void egr_status_force(struct egr_status *st, const struct egr_job_view *j)
{
	struct egr_status_row *s = &st->rows[j->index];

	if (s->name[0] && !strcmp(s->name, j->name))
		write_status(st, s, j, egr_log_now_ns());
}

void egr_status_ended(struct egr_status *st, uint32_t row)
{
	struct egr_status_row *s = &st->rows[row];
	char path[4400];

	if (s->name[0] && s->state_written) {
		status_path(st, s->name, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			egr_warn("unlink(\"%s\"): %s", path, strerror(errno));
	}
	memset(s, 0, sizeof(*s));
	s->uid = s->cancel_uid = -1;
}
