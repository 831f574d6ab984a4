/*
 * spool: the job directories.
 *
 *   <spool>/.lock      held (F_OFD_SETLK) by the one daemon using the spool
 *                      (shared by every daemon with shared_spool = yes)
 *   <spool>/tmp/       submitters create a job file here (setgid, sticky,
 *                      group-writable: 3770 when egressd creates it) ...
 *   <spool>/incoming/  ... and rename() it here (same mode), Maildir's way
 *   <spool>/active/    claimed by rename() under a unique id; left here by
 *                      a crash, rerun on start (shared_spool: one directory
 *                      per daemon, active/<host_id>.<instance>/, beside its
 *                      lease file: daemon/supervisor/lease.h)
 *   <spool>/done/      the job file and ID.result
 *   <spool>/failed/    the job file and ID.error (one line: why)
 *
 * Only the supervisor touches active/, done/ and failed/.  Dotfiles and
 * temporaries (names ending in ~, .tmp, .part, .swp) are ignored, as are
 * .result and .error.
 *
 * Trust: anyone who may write incoming/ may drop anything there.  A claim
 * moves the entry into active/ (the daemon's alone) first and judges it
 * there, where nobody can swap it: a name with control characters or
 * invalid UTF-8, a symbolic link, FIFO, socket, device or directory, a
 * hard-linked file, a file over EGR_SPOOL_JOB_MAX bytes or one egressd cannot
 * read is refused (moved to failed/ with a one-line .error).  An entry that
 * cannot even be moved is reported once and left.  Records are written 0640:
 * the submitter (through the spool's group) and the admin read them, the
 * world does not.
 */
#ifndef EGR_SPOOL_H
#define EGR_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

enum egr_spool_dir { EGR_SPOOL_INCOMING, EGR_SPOOL_ACTIVE, EGR_SPOOL_DONE, EGR_SPOOL_FAILED, EGR_SPOOL_TMP };

#define EGR_SPOOL_NAME_MAX 200		/* a job file name is shorter */
#define EGR_SPOOL_ID_MAX 224		/* an id (name + ".N") is shorter */
#define EGR_SPOOL_JOB_MAX (64 * 1024)	/* largest job file accepted */

/* Create the five directories if missing.  0 or -errno with err set. */
int egr_spool_init(const char *spool, char *err, size_t errlen);
/* "<spool>/<dir>/<name>" into buf; -ENAMETOOLONG if it does not fit. */
int egr_spool_path(char *buf, size_t len, const char *spool, enum egr_spool_dir d, const char *name);
/* 1 if name is a job file name (not a dotfile, temporary or result). */
int egr_spool_eligible(const char *name);
/*
 * Eligible regular files of a spool directory, sorted by name.  *names is a
 * malloc'd array of malloc'd strings (free with egr_spool_free_list).
 */
int egr_spool_list(const char *spool, enum egr_spool_dir d, char ***names, size_t *n, char *err,
		   size_t errlen);
/* The same with every eligible entry, whatever its type (for incoming/: each one gets a claim). */
int egr_spool_list_all(const char *spool, enum egr_spool_dir d, char ***names, size_t *n, char *err,
		       size_t errlen);
void egr_spool_free_list(char **names, size_t n);
/* incoming/name -> active/name.  -ENOENT if another claimer won. */
int egr_spool_claim(const char *spool, const char *name, char *err, size_t errlen);
/*
 * Finish a job: write done/ID.result (ok) or failed/ID.error (text, mode
 * 0640, written atomically through a temporary), then move active/ID beside
 * it.  An .error is made one printable line: control bytes in text (a
 * reason quoting a job file's own bytes) become '?'.
 */
int egr_spool_finish(const char *spool, const char *id, int ok, const char *text, char *err,
		     size_t errlen);
/* The same for a job file at from (a path anywhere in the spool: lease.h's requeue). */
int egr_spool_finish_from(const char *spool, const char *from, const char *id, int ok, const char *text,
			  char *err, size_t errlen);

/*
 * For `egressd -t` (run as the daemon's user, as the unit's ExecStartPre=
 * does): could the daemon use the spool?  It is a directory it can write,
 * as is each subdirectory already there, or it can be created (its parent
 * is writable).  Creates nothing.  0 or -errno with err naming what to fix.
 */
int egr_spool_check(const char *spool, char *err, size_t errlen);

/* ---- one daemon's spool: the lock, safe claims ---- */

struct egr_spool;

/*
 * egr_spool_init, then lock <spool>/.lock for as long as *sp is open (it
 * holds the daemon's pid).  -EBUSY with err "spool /x is in use by another
 * egressd (pid N); give each daemon its own spool" when another process
 * holds it; other -errno with err set.
 */
int egr_spool_open(const char *spool, struct egr_spool **sp, char *err, size_t errlen);
/* Release the lock and free sp (NULL is fine). */
void egr_spool_close(struct egr_spool *sp);

/*
 * shared_spool = yes (daemon/supervisor/lease.h): several daemons on one
 * spool.  The same as egr_spool_open, except that
 *   - <spool>/.lock is held shared (F_RDLCK): daemons that share open
 *     together, a daemon without shared_spool is refused while any of them
 *     runs and vice versa (-EBUSY, err says which); where the filesystem
 *     has no locks (ENOLCK) this is a warning, not a refusal;
 *   - this daemon's active directory is <spool>/active/<sub>/ (created if
 *     missing): for the rest of the process, egr_spool_path(EGR_SPOOL_ACTIVE)
 *     names it, so claims, listings and records use it unchanged;
 *   - a claim's unique id avoids the ids in every daemon's active directory.
 * sub: "<host_id>.<instance>", a valid file name.
 */
int egr_spool_open_shared(const char *spool, const char *sub, struct egr_spool **sp, char *err, size_t errlen);
/* 1 after egr_spool_open_shared in this process (until egr_spool_close) */
int egr_spool_shared(void);
/* Shared spool: 1 if job id is in another daemon's active directory (one of <spool>/active/<other>/). */
int egr_spool_active_elsewhere(const char *spool, const char *id);

struct egr_spool_job {
	char id[EGR_SPOOL_ID_MAX];	/* its name in active/, done/ and failed/ */
	uid_t uid;			/* the job file's owner: who submitted it */
	gid_t gid;
	off_t size;
};

#define EGR_SPOOL_REFUSED 1
/*
 * Claim incoming/name under a unique id: the name itself if no record of it
 * exists in active/, done/ or failed/, else name.2, name.3, ... (a name
 * resubmitted never overwrites an earlier record).  Returns
 *   0                  claimed: active/<job->id> is a regular job file
 *   EGR_SPOOL_REFUSED  refused: moved to failed/<job->id> with err (one
 *                      line, printable) as its .error; log err
 *   -ENOENT            gone (nothing to do)
 *   -EALREADY          an entry already reported that could not be moved
 *   other -errno       could not be moved (reported once: err says what)
 * Names in err are printable: bad bytes are shown as '_'.
 */
int egr_spool_claim_job(struct egr_spool *sp, const char *name, struct egr_spool_job *job, char *err,
			size_t errlen);

/* 1 if name is printable UTF-8 (no control character, no bidi override or line separator). */
int egr_spool_name_ok(const char *name);
/* name with every byte of a bad character replaced by '_' (cut to fit len) */
void egr_spool_name_show(const char *name, char *buf, size_t len);

#endif
