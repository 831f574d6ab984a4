/* egressctl wait, and the waiting (with progress) that submit --wait shares. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/client/cmd.h"

#define WAIT_TICK_MS 200
#define LINE_PERIOD_S 1.0	/* plain progress lines, at most this often */
#define UNKNOWN_GRACE_S 2.0	/* an id nowhere to be found for this long is unknown */
#define BAR_WIDTH 30

struct waited {
	const char *id;
	enum egr_client_state state;	/* last seen */
	uint64_t frames_done;
	double first_miss;		/* when it was first not found, 0 found */
	double line_at;			/* last plain progress line */
	int ended;
};

static void eta_text(double eta, char *buf, size_t len)
{
	if (eta < 0)
		snprintf(buf, len, "--:--");
	else
		snprintf(buf, len, "%d:%02d", (int)(eta / 60), (int)eta % 60);
}

/* On a terminal: one line redrawn in place. */
static void draw_bar(const struct egr_client_job *j)
{
	char bar[BAR_WIDTH + 1], eta[32];
	double f = j->frames_total ? (double)j->frames_done / (double)j->frames_total : 0;
	int fill = (int)(f * BAR_WIDTH + 0.5);

	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = 0;
	eta_text(j->eta_s, eta, sizeof(eta));
	fprintf(stderr, "\r\033[K%s [%s] %llu/%llu frames  %.1f frames/s  ETA %s  %s", j->id, bar,
		(unsigned long long)j->frames_done, (unsigned long long)j->frames_total, j->frames_per_s, eta,
		egr_client_state_name(j->state));
	fflush(stderr);
}

/* Elsewhere: a line when something changed, at most one a second. */
static void plain_line(struct waited *w, const struct egr_client_job *j, double now)
{
	if (now - w->line_at < LINE_PERIOD_S && w->state == j->state)
		return;
	if (w->state == j->state && w->frames_done == j->frames_done && w->line_at > 0)
		return;
	w->line_at = now;
	fprintf(stderr, "%s: %s %llu/%llu frames", j->id, egr_client_state_name(j->state),
		(unsigned long long)j->frames_done, (unsigned long long)j->frames_total);
	if (j->frames_per_s > 0)
		fprintf(stderr, ", %.1f frames/s", j->frames_per_s);
	if (j->eta_s >= 0)
		fprintf(stderr, ", ETA %.1f s", j->eta_s);
	fputc('\n', stderr);
}

/* The job ended: say how (done: on the progress stream only), and return its exit code. */
static int ended(const struct egr_client_job *j, int progress, int tty)
{
	if (progress && tty)
		fputs("\r\033[K", stderr);
	if (j->state == EGR_CS_DONE && progress)
		fprintf(stderr, "%s: done, %llu frames, %s frames/s -> %s\n", j->id,
			(unsigned long long)j->frames_total, egr_client_kv(j, "frames_per_s") ?: "?",
			egr_client_kv(j, "output") ?: "?");
	else if (j->state == EGR_CS_FAILED)
		egr_cmd_say("job %s failed: %s", j->id, j->error);
	else if (j->state == EGR_CS_CANCELLED)
		egr_cmd_say("job %s %s", j->id, j->error);
	return egr_client_exit_code(j->state);
}

/* One look at job w; 1 once it ended (*code set). */
static int poll_one(const struct egr_client *c, struct waited *w, int progress, int tty, int *code)
{
	struct egr_client_job j;
	double now = egr_client_now();

	if (egr_client_lookup(c, w->id, &j) < 0) {
		if (!w->first_miss)
			w->first_miss = now;
		if (now - w->first_miss < UNKNOWN_GRACE_S)
			return 0;
		egr_cmd_say("no job %s in %s", w->id, c->spool);
		*code = EGR_CTL_NO_JOB;
		return 1;
	}
	w->first_miss = 0;
	if (egr_client_ended(j.state)) {
		*code = ended(&j, progress, tty);
		return 1;
	}
	if (progress && tty)
		draw_bar(&j);
	else if (progress)
		plain_line(w, &j, now);
	w->state = j.state;
	w->frames_done = j.frames_done;
	return 0;
}

/* the first of failed, cancelled, unknown, timeout that applies */
static int worse(int a, int b)
{
	static const int order[] = { EGR_CTL_FAILED, EGR_CTL_CANCELLED, EGR_CTL_NO_JOB, EGR_CTL_TIMEOUT };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (a == order[i] || b == order[i])
			return order[i];
	return a;
}

int egr_cmd_wait_jobs(const struct egr_client *c, char *const *ids, size_t n, int progress, double timeout_s)
{
	struct waited *w = calloc(n ? n : 1, sizeof(*w));
	int tty = n == 1 && isatty(STDERR_FILENO), result = EGR_CTL_OK, watch;
	double deadline = timeout_s >= 0 ? egr_client_now() + timeout_s : 0;
	size_t left = n;

	if (!w) {
		egr_cmd_say("out of memory");
		return EGR_CTL_FAILED;
	}
	/* woken by every change in the spool, many jobs would cost a look at each every time */
	watch = n <= 8 ? egr_client_watch(c) : -1;
	for (size_t i = 0; i < n; i++)
		w[i].id = ids[i];
	while (left) {
		for (size_t i = 0; i < n; i++) {
			int code;
			if (!w[i].ended && poll_one(c, &w[i], progress, tty, &code)) {
				w[i].ended = 1;
				left--;
				result = worse(result, code);
			}
		}
		if (!left)
			break;
		if (timeout_s >= 0 && egr_client_now() >= deadline) {
			if (progress && tty)
				fputc('\n', stderr);
			egr_cmd_say("%zu job%s still running after %.1f s", left, left == 1 ? "" : "s", timeout_s);
			result = worse(result, EGR_CTL_TIMEOUT);
			break;
		}
		egr_client_sleep(watch, WAIT_TICK_MS);
	}
	if (watch >= 0)
		close(watch);
	free(w);
	return result;
}

int egr_cmd_wait(const struct egr_client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "progress", no_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	double timeout = -1;
	int progress = 0, opt;
	char *end;

	while ((opt = getopt_long(argc, argv, "pt:", opts, NULL)) != -1) {
		if (opt == 'p') {
			progress = 1;
		} else if (opt == 't' && (timeout = strtod(optarg, &end)) >= 0 && !*end) {
			continue;
		} else {
			egr_cmd_say("usage: egressctl wait [--progress] [--timeout SECONDS] ID ...");
			return EGR_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		egr_cmd_say("usage: egressctl wait [--progress] [--timeout SECONDS] ID ...");
		return EGR_EXIT_USAGE;
	}
	return egr_cmd_wait_jobs(c, argv + optind, (size_t)(argc - optind), progress, timeout);
}
