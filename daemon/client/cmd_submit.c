/* egressctl submit: a job file, or one built from options, into the spool. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/client/cmd.h"

#define JOB_TEXT_MAX (64 * 1024)
#define BAD_JOB (-2)		/* build(): the job itself is wrong, not the command line */

struct submit {
	int wait, progress;
	const char *latents, *output, *format, *decoder, *weights, *jobfile;
	char text[JOB_TEXT_MAX];
	size_t len;
};

static int add(struct submit *s, const char *key, const char *value)
{
	int n = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s = %s\n", key, value);

	if (n < 0 || (size_t)n >= sizeof(s->text) - s->len) {
		egr_cmd_say("the job is over %d bytes", JOB_TEXT_MAX);
		return -1;
	}
	s->len += (size_t)n;
	return 0;
}

/* An existing file, as an absolute path without symbolic links (the daemon reads it). */
static int add_existing(struct submit *s, const char *key, const char *path)
{
	char abs[PATH_MAX];

	if (!realpath(path, abs)) {
		egr_cmd_say("--%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	return add(s, key, abs);
}

/* The output need not exist: made absolute against the current directory. */
static int add_output(struct submit *s, const char *path)
{
	char cwd[PATH_MAX], abs[PATH_MAX * 2];

	if (path[0] == '/')
		return add(s, "output", path);
	if (!getcwd(cwd, sizeof(cwd))) {
		egr_cmd_say("getcwd: %s", strerror(errno));
		return -1;
	}
	snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	return add(s, "output", abs);
}

/* key=value: a job key (letters, digits, _) and a one-line value */
static int add_pair(struct submit *s, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[64];

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key) || strspn(kv, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
	    (size_t)(eq - kv) || strpbrk(eq + 1, "\r\n")) {
		egr_cmd_say("'%s' is not key=value (a job key, then a one-line value)", kv);
		return -1;
	}
	snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
	return add(s, key, eq + 1);
}

static int read_jobfile(struct submit *s)
{
	FILE *f = fopen(s->jobfile, "re");

	if (!f) {
		egr_cmd_say("%s: %s", s->jobfile, strerror(errno));
		return -1;
	}
	s->len = fread(s->text, 1, sizeof(s->text) - 1, f);
	int bad = ferror(f) || !feof(f);
	fclose(f);
	s->text[s->len] = 0;
	if (bad || strlen(s->text) != s->len) {
		egr_cmd_say("%s: unreadable, over %d bytes or not text", s->jobfile, JOB_TEXT_MAX - 1);
		return -1;
	}
	return 0;
}

/* --format, else what the output's name says: NAME.y4m a y4m file, a name without a suffix a png directory */
static int add_format(struct submit *s)
{
	const char *base = strrchr(s->output, '/'), *dot;
	size_t l = strlen(s->output);

	if (s->format)
		return add(s, "format", s->format);
	base = base ? base + 1 : s->output;
	dot = strrchr(base, '.');
	if (l > 4 && !strcmp(s->output + l - 4, ".y4m"))
		return add(s, "format", "y4m");
	if (!dot || !*base)
		return add(s, "format", "png");
	egr_cmd_say("--output %s: say --format y4m or png", s->output);
	return -1;
}

/* The job text from the options and the arguments left (JOBFILE, or key=value pairs). */
static int build(struct submit *s, int argc, char **argv)
{
	if (s->latents || s->output) {
		if (!s->latents || !s->output) {
			egr_cmd_say("--latents and --output go together");
			return -1;
		}
		s->len = (size_t)snprintf(s->text, sizeof(s->text), "[job]\n");
		if (add_existing(s, "latents", s->latents) || add_output(s, s->output) || add_format(s) ||
		    (s->decoder && add(s, "decoder", s->decoder)) ||
		    (s->weights && add_existing(s, "weights", s->weights)))
			return -1;
		for (int i = 0; i < argc; i++)
			if (add_pair(s, argv[i]))
				return -1;
		return 0;
	}
	if (argc != 1 || s->format || s->decoder || s->weights || strchr(argv[0], '=')) {
		egr_cmd_say("submit takes one JOBFILE, or --latents and --output with key=value pairs");
		return -1;
	}
	s->jobfile = argv[0];
	if (read_jobfile(s) < 0)
		return -1;
	/* checked here too, so that a mistake is reported against the user's own file */
	struct egr_jobspec js;
	char err[1024];
	if (egr_job_parse(s->jobfile, &js, err, sizeof(err)) < 0) {
		egr_cmd_say("%s", err);
		return BAD_JOB;
	}
	return 0;
}

int egr_cmd_submit(const struct egr_client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "wait", no_argument, NULL, 'w' },	       { "progress", no_argument, NULL, 'p' },
		{ "latents", required_argument, NULL, 'l' }, { "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },  { "decoder", required_argument, NULL, 'd' },
		{ "weights", required_argument, NULL, 'W' }, { NULL, 0, NULL, 0 },
	};
	static struct submit s;	/* 64K of text: not on the stack */
	char id[EGR_JOB_NAME_MAX], err[1024];
	int opt;

	memset(&s, 0, sizeof(s));
	while ((opt = getopt_long(argc, argv, "wpl:o:f:d:", opts, NULL)) != -1) {
		switch (opt) {
		case 'w': s.wait = 1; break;
		case 'p': s.progress = 1; break;
		case 'l': s.latents = optarg; break;
		case 'o': s.output = optarg; break;
		case 'f': s.format = optarg; break;
		case 'd': s.decoder = optarg; break;
		case 'W': s.weights = optarg; break;
		default: return EGR_EXIT_USAGE;
		}
	}
	if (optind >= argc && !s.latents) {
		egr_cmd_say("usage: egressctl submit [--wait] [--progress] JOBFILE | --latents F --output O ...");
		return EGR_EXIT_USAGE;
	}
	int rc = build(&s, argc - optind, argv + optind);
	if (rc < 0)
		return rc == BAD_JOB ? EGR_CTL_FAILED : EGR_EXIT_USAGE;
	egr_client_new_id(s.jobfile ? s.jobfile : s.output, id, sizeof(id));
	if (egr_client_submit(c, id, s.text, err, sizeof(err)) < 0) {
		egr_cmd_say("%s", err);
		return EGR_CTL_FAILED;
	}
	printf("%s\n", id);
	fflush(stdout);
	if (!s.wait && !s.progress)
		return EGR_CTL_OK;
	char *ids[] = { id };
	return egr_cmd_wait_jobs(c, ids, 1, s.progress, -1);
}
