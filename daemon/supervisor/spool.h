/*
 * spool: the job directories.
 *
 *   <spool>/incoming/  writers create a job file elsewhere and rename() it here
 *   <spool>/active/    claimed by rename(); left here by a crash, rerun on start
 *   <spool>/done/      the job file and NAME.result
 *   <spool>/failed/    the job file and NAME.error (one line: why)
 *
 * Only the supervisor touches the spool.  Dotfiles and temporaries (names
 * ending in ~, .tmp, .part, .swp) are ignored, as are .result and .error.
 */
#ifndef EGR_SPOOL_H
#define EGR_SPOOL_H

#include <stddef.h>

enum egr_spool_dir { EGR_SPOOL_INCOMING, EGR_SPOOL_ACTIVE, EGR_SPOOL_DONE, EGR_SPOOL_FAILED };

/* Create the four directories if missing.  0 or -errno with err set. */
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
void egr_spool_free_list(char **names, size_t n);
/* incoming/name -> active/name.  -ENOENT if another claimer won. */
int egr_spool_claim(const char *spool, const char *name, char *err, size_t errlen);
/*
 * Finish a job: write done/NAME.result (ok) or failed/NAME.error (text,
 * written atomically through a temporary), then move active/NAME beside it.
 */
int egr_spool_finish(const char *spool, const char *name, int ok, const char *text, char *err,
		     size_t errlen);
#endif
