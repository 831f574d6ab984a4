/* cancel: clients' cancel requests, acted on by the supervisor; see cancel.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/cancel.h"
#include "daemon/supervisor/spool.h"

int egr_cancel_finish(const char *spool, const char *from, const char *id, const char *text, char *err,
		      size_t errlen)
{
	char src[4400], dst[4400], rec[4500];
	int rc;

	snprintf(src, sizeof(src), "%s/%s/%s", spool, from, id);
	if (!strcmp(from, "active"))
		egr_spool_path(src, sizeof(src), spool, EGR_SPOOL_ACTIVE, id);	/* shared spool: our own */
	snprintf(dst, sizeof(dst), "%s/cancelled/%s", spool, id);
	snprintf(rec, sizeof(rec), "%s.error", dst);
	/* shared spool: another daemon may claim it from incoming/ meanwhile: the rename decides first */
	if (egr_spool_shared() && !strcmp(from, "incoming")) {
		if (rename(src, dst) < 0) {
			rc = -errno;
			egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", src, dst, strerror(-rc));
			return rc;
		}
		return egr_fs_write_atomic(rec, text, err, errlen);
	}
	/* the record first: a crash in between reruns the job, never loses it */
	rc = egr_fs_write_atomic(rec, text, err, errlen);
	if (rc == 0 && rename(src, dst) < 0 && errno != ENOENT) {
		rc = -errno;
		egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", src, dst, strerror(-rc));
	}
	return rc;
}

static int may_cancel(long requester, long owner)
{
	return requester == 0 || requester == (long)geteuid() || (owner >= 0 && requester == owner);
}

static void refuse(const char *id, long uid, long owner)
{
	egr_warn("job %s: cancel request from uid %ld refused: only its owner (uid %ld) or root may cancel it",
		 id, uid, owner);
}

/* The job is in table row: fail it in the ring. */
static void cancel_row(struct egr_status *st, struct egr_ring *r, uint32_t row, long uid, const char *why)
{
	struct egr_status_row *s = &st->rows[row];
	struct egr_job_view j;
	int rc;

	if (!may_cancel(uid, s->uid)) {
		refuse(s->name, uid, s->uid);
		return;
	}
	rc = egr_ring_job_cancel(r, row, why);
	if (rc == -EBUSY) {
		egr_notice("job %s: cancel request from uid %ld came too late: its output is being put in place",
			   s->name, uid);
	} else if (rc < 0) {
		egr_info("job %s: cancel request from uid %ld: the job has ended", s->name, uid);
	} else {
		egr_notice("job %s: %s", s->name, why);
		s->cancel_uid = uid;
		if (egr_ring_job_view(r, row, &j) == 0)
			egr_status_force(st, &j);
	}
}

/*
 * The job is not in the table: from incoming/ or active/ straight to
 * cancelled/.  1 when the request is another daemon's to act on (shared
 * spool: the job is in its active directory), else 0.
 */
static int cancel_waiting(struct egr_status *st, const char *id, long uid, const char *why)
{
	static const enum egr_spool_dir from[] = { EGR_SPOOL_INCOMING, EGR_SPOOL_ACTIVE };
	char path[4400], err[512], text[128];
	struct stat sb;

	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		egr_spool_path(path, sizeof(path), st->spool, from[i], id);
		if (lstat(path, &sb) < 0)
			continue;
		if (!may_cancel(uid, (long)sb.st_uid)) {
			refuse(id, uid, (long)sb.st_uid);
			return 0;
		}
		snprintf(text, sizeof(text), "%s\n", why);
		int rc = egr_cancel_finish(st->spool, from[i] == EGR_SPOOL_ACTIVE ? "active" : "incoming", id, text,
					   err, sizeof(err));
		if (rc == -ENOENT && egr_spool_active_elsewhere(st->spool, id))
			return 1;	/* claimed by another daemon meanwhile */
		if (rc < 0)
			egr_err("job %s: %s", id, err);
		else
			egr_notice("job %s: %s before it started", id, why);
		return 0;
	}
	if (egr_spool_active_elsewhere(st->spool, id))
		return 1;
	egr_info("cancel request from uid %ld for job %s: no such job is waiting or running", uid, id);
	return 0;
}

/* 1: the request stays (another daemon's job, shared spool) */
static int act(struct egr_status *st, struct egr_ring *r, const char *id, long uid)
{
	char why[64];

	snprintf(why, sizeof(why), "cancelled by uid %ld", uid);
	for (uint32_t i = 0; i < EGR_RING_JOBS; i++) {
		if (st->rows[i].name[0] && !strcmp(st->rows[i].name, id)) {
			cancel_row(st, r, i, uid, why);
			return 0;
		}
	}
	return cancel_waiting(st, id, uid, why);
}

void egr_cancel_scan(struct egr_status *st, struct egr_ring *r)
{
	char dir[4200];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/cancel", st->spool);
	if (!(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		const char *id = de->d_name;

		if (!egr_spool_eligible(id) || fstatat(dirfd(d), id, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(sb.st_mode) && act(st, r, id, (long)sb.st_uid))
			continue;
		if (!S_ISREG(sb.st_mode))
			egr_warn("cancel request \"%s/%s\" is not a regular file: removed", dir, id);
		if (unlinkat(dirfd(d), id, 0) < 0 && errno != ENOENT)
			egr_warn("unlink(\"%s/%s\"): %s", dir, id, strerror(errno));
	}
	closedir(d);
}
