/*
 * client: what egressctl's subcommands share.  Clients never talk to the
 * daemon; they read and drop files in its spool (spool.h, status.h,
 * cancel.h), found through the daemon's own configuration:
 *
 *   submit   write <spool>/tmp/ID, then rename() it into incoming/ (Maildir's
 *            way: the daemon never sees half a file).  ID is made unique here
 *            (hint-EPOCH-PID-RANDOM), and is the job's name in every spool
 *            directory from then on.
 *   where    a job is looked up in this order: its record (cancelled/ID.error,
 *            failed/ID.error, done/ID.result), its status file
 *            (status/ID.status: queued, running, cancelling, with frames),
 *            active/ID or incoming/ID (queued), then the records once more:
 *            the daemon writes the record before it moves the job file and
 *            removes the status file, so a job that ends during a lookup is
 *            never missed.
 *   cancel   create <spool>/cancel/ID; the daemon acts on it and removes it.
 *
 * Functions return 0 or -errno, with err (where taken) holding a one-line
 * reason.
 */
#ifndef EGR_CLIENT_H
#define EGR_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "config/job.h"
#include "shm/ring.h"

/* Exit codes of egressctl (besides EGR_EXIT_USAGE, EGR_EXIT_CONFIG) */
enum {
	EGR_CTL_OK = 0,
	EGR_CTL_FAILED = 1,	/* the job failed; cancel refused or too late */
	EGR_CTL_CANCELLED = 2,	/* the job was cancelled */
	EGR_CTL_NO_JOB = 3,	/* no job has that id */
	EGR_CTL_TIMEOUT = 124,	/* wait --timeout ran out */
};

enum egr_client_state {
	EGR_CS_UNKNOWN,
	EGR_CS_QUEUED,
	EGR_CS_RUNNING,
	EGR_CS_CANCELLING,
	EGR_CS_DONE,
	EGR_CS_FAILED,
	EGR_CS_CANCELLED,
};

#define EGR_CLIENT_KV_MAX 48

struct egr_client_kv {
	char key[48];
	char value[EGR_PATH_MAX];
};

/* One job as the spool shows it. */
struct egr_client_job {
	char id[EGR_JOB_NAME_MAX];
	enum egr_client_state state;
	long uid;			/* the job file's owner, -1 unknown */
	double submitted;		/* the job file's mtime (epoch s), 0 unknown */
	uint64_t frames_done, frames_total;
	double frames_per_s, eta_s;	/* eta_s < 0: unknown */
	char error[EGR_ERR_MAX];	/* failed, cancelled: the .error line */
	/* the status file (queued, running, cancelling) or the result (done), as read */
	struct egr_client_kv kv[EGR_CLIENT_KV_MAX];
	size_t nkv;
};

struct egr_client {
	char conf[EGR_PATH_MAX];
	char spool[EGR_PATH_MAX];
};

/* Read the daemon's configuration at conf_path for its spool, which must exist. */
int egr_client_open(struct egr_client *c, const char *conf_path, char *err, size_t errlen);

/* "<spool>/<dir>/<name>" (name may be NULL) into buf; -ENAMETOOLONG. */
int egr_client_path(const struct egr_client *c, char *buf, size_t len, const char *dir, const char *name);

/* A new unique job id from hint (a file name: its stem, in [A-Za-z0-9_-], at most 48). */
void egr_client_new_id(const char *hint, char *id, size_t len);

/*
 * Submit job text under id: checked with the daemon's own job parser first
 * (err names the problem), written to tmp/ID, fsynced, renamed into
 * incoming/ID.
 */
int egr_client_submit(const struct egr_client *c, const char *id, const char *text, char *err, size_t errlen);

/* Where job id is and what it says.  0, or -ENOENT (j->state UNKNOWN). */
int egr_client_lookup(const struct egr_client *c, const char *id, struct egr_client_job *j);
/* The value of key in j->kv, or NULL. */
const char *egr_client_kv(const struct egr_client_job *j, const char *key);

/* Create cancel/ID (EEXIST is fine: already asked). */
int egr_client_request_cancel(const struct egr_client *c, const char *id, char *err, size_t errlen);

const char *egr_client_state_name(enum egr_client_state s);
int egr_client_ended(enum egr_client_state s);
/* The exit code for an ended state: 0 done, 1 failed, 2 cancelled, 3 unknown. */
int egr_client_exit_code(enum egr_client_state s);

/*
 * Sleep until something in the spool may have changed (a record, a status
 * file), at most ms: inotify where it works, else a plain sleep.  w is
 * egr_client_watch()'s descriptor (or -1); close it when done.
 */
int egr_client_watch(const struct egr_client *c);
void egr_client_sleep(int w, int ms);

/*
 * Job ids of the spool: every job file in incoming/, active/, done/,
 * failed/, cancelled/ (unfinished only: incoming/ and active/), sorted by
 * submission time (mtime).  *ids: malloc'd array of malloc'd strings.
 */
int egr_client_list(const struct egr_client *c, int unfinished, char ***ids, size_t *n, char *err, size_t errlen);
void egr_client_free_list(char **ids, size_t n);

/* seconds since the epoch, now */
double egr_client_now(void);

#endif
