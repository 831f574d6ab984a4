/*
 * egressctl cancel: drop a request in <spool>/cancel/, then read what the
 * daemon made of it (cancel.h): the job in cancelled/ (0), "cancelling"
 * until its record is there, ended before the request (1), or refused: the
 * request is gone and the job goes on (1).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/client/cmd.h"

#define CANCEL_TICK_MS 100

static int request_pending(const struct egr_client *c, const char *id)
{
	char p[EGR_PATH_MAX + 300];

	egr_client_path(c, p, sizeof(p), "cancel", id);
	return access(p, F_OK) == 0;
}

/* What became of the request, once the daemon has removed it; -1: not settled yet. */
static int outcome(const struct egr_client *c, const struct egr_client_job *j)
{
	switch (j->state) {
	case EGR_CS_CANCELLED:
		printf("%s: %s\n", j->id, j->error);
		return EGR_CTL_OK;
	case EGR_CS_CANCELLING:
		return -1;	/* the record follows within a chunk */
	case EGR_CS_DONE:
	case EGR_CS_FAILED:
		egr_cmd_say("job %s had ended (%s) before it could be cancelled", j->id, egr_client_state_name(j->state));
		return EGR_CTL_FAILED;
	case EGR_CS_UNKNOWN:
		egr_cmd_say("no job %s in %s", j->id, c->spool);
		return EGR_CTL_NO_JOB;
	default:
		egr_cmd_say("egressd refused to cancel job %s (only its owner or root may: see the daemon's log)", j->id);
		return EGR_CTL_FAILED;
	}
}

static int cancel_one(const struct egr_client *c, const char *id, double timeout_s, int watch)
{
	static struct egr_client_job j;
	double deadline = egr_client_now() + timeout_s;
	char err[1024];
	int rc;

	if (egr_client_lookup(c, id, &j) < 0 || egr_client_ended(j.state))
		return outcome(c, &j);	/* nothing to ask for */
	if (egr_client_request_cancel(c, id, err, sizeof(err)) < 0) {
		egr_cmd_say("%s", err);
		return EGR_CTL_FAILED;
	}
	for (;;) {
		int pending = request_pending(c, id);	/* first: once it is gone, the job shows the answer */
		egr_client_lookup(c, id, &j);
		if ((j.state == EGR_CS_CANCELLED || !pending) && (rc = outcome(c, &j)) >= 0)
			return rc;
		if (egr_client_now() >= deadline) {
			egr_cmd_say("job %s: %s after %.1f s (is egressd running?)", id,
				    pending ? "the request is not taken yet" : "still cancelling", timeout_s);
			return EGR_CTL_TIMEOUT;
		}
		egr_client_sleep(watch, CANCEL_TICK_MS);
	}
}

int egr_cmd_cancel(const struct egr_client *c, int argc, char **argv)
{
	static const struct option opts[] = { { "timeout", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 } };
	double timeout = 30;
	int opt, rc = EGR_CTL_OK, watch;
	char *end;

	while ((opt = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		if (opt != 't' || (timeout = strtod(optarg, &end)) < 0 || *end) {
			egr_cmd_say("usage: egressctl cancel [--timeout SECONDS] ID ...");
			return EGR_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		egr_cmd_say("usage: egressctl cancel [--timeout SECONDS] ID ...");
		return EGR_EXIT_USAGE;
	}
	watch = egr_client_watch(c);
	for (int i = optind; i < argc; i++) {
		int r = cancel_one(c, argv[i], timeout, watch);
		if (r != EGR_CTL_OK && rc == EGR_CTL_OK)
			rc = r;
	}
	if (watch >= 0)
		close(watch);
	return rc;
}
