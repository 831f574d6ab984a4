/*
 * cmd: egressctl's subcommands, one file each (cmd_*.c); egressctl.c parses
 * the global options and dispatches.  Each takes the client and its own
 * argv (argv[0] is the subcommand's name) and returns egressctl's exit code
 * (client.h: EGR_CTL_*, or EGR_EXIT_USAGE).
 */
#ifndef EGR_CMD_H
#define EGR_CMD_H

#include <stddef.h>

#include <jansson.h>

#include "daemon/base/log.h"
#include "daemon/client/client.h"

int egr_cmd_submit(const struct egr_client *c, int argc, char **argv);
int egr_cmd_status(const struct egr_client *c, int argc, char **argv);
int egr_cmd_list(const struct egr_client *c, int argc, char **argv);
int egr_cmd_wait(const struct egr_client *c, int argc, char **argv);
int egr_cmd_cancel(const struct egr_client *c, int argc, char **argv);

/*
 * Wait for every job of ids to end (timeout_s < 0: forever), drawing
 * progress on stderr when asked (a bar on a terminal, a line a second
 * otherwise), and saying on stderr why each job that did not succeed ended.
 * Returns 0 when all are done, else 1 (one failed), 2 (one was cancelled),
 * 3 (an id is unknown) or 124 (timed out), the first of these that applies.
 */
int egr_cmd_wait_jobs(const struct egr_client *c, char *const *ids, size_t n, int progress, double timeout_s);

/* One job as a JSON object: id, state, owner_uid, frames, rate, error, and the status or result file's keys. */
json_t *egr_cmd_job_json(const struct egr_client_job *j);

/* "egressctl: " + message on stderr */
void egr_cmd_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
