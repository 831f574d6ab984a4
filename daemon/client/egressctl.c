/*
 * egressctl: submit, watch, wait for and cancel egressd jobs.
 *
 *   egressctl [-c CONF] submit [--wait] [--progress] JOBFILE
 *   egressctl [-c CONF] submit [--wait] [--progress] --latents F --output O [--format F]
 *                              [--decoder D] [--weights W] [key=value ...]
 *   egressctl [-c CONF] status [--json] [ID ...]
 *   egressctl [-c CONF] list [--json]
 *   egressctl [-c CONF] wait [--progress] [--timeout S] ID ...
 *   egressctl [-c CONF] cancel [--timeout S] ID ...
 *
 * It reads the daemon's configuration (-c, else $EGRESSD_CONFIG, else
 * /etc/egressd/egressd.ini) for the spool, and works through the spool's
 * files only (client.h).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/client/cmd.h"

#ifndef EGR_VERSION
#define EGR_VERSION "0.1.0"
#endif
#define DEFAULT_CONF "/etc/egressd/egressd.ini"

void egr_cmd_say(const char *fmt, ...)
{
	va_list ap;

	fputs("egressctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: egressctl [-c CONF] COMMAND ...\n"
		"\n"
		"  submit [--wait] [--progress] JOBFILE\n"
		"  submit [--wait] [--progress] --latents F --output O [--format y4m|png]\n"
		"         [--decoder latent2rgb|taesd|taehv|wan_vae] [--weights W] [key=value ...]\n"
		"                        queue a job, print its id; --wait: exit 0 done, 1 failed, 2 cancelled\n"
		"  status [--json] [ID ...]   jobs waiting or running (or the ones named), with progress\n"
		"  list [--json]              every job the spool holds, oldest first\n"
		"  wait [--progress] [--timeout S] ID ...   until they end; exit as submit --wait\n"
		"  cancel [--timeout S] ID ...   only the job's owner or root may\n"
		"\n"
		"  -c, --config CONF   the daemon's configuration (default $EGRESSD_CONFIG or " DEFAULT_CONF ")\n"
		"Exit status: 0 ok, 1 failed (or cancel refused), 2 cancelled, 3 no such job, 64 usage,\n"
		"78 configuration, 124 timeout.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		int (*run)(const struct egr_client *c, int argc, char **argv);
	} cmds[] = {
		{ "submit", egr_cmd_submit }, { "status", egr_cmd_status }, { "list", egr_cmd_list },
		{ "wait", egr_cmd_wait },     { "cancel", egr_cmd_cancel },
	};
	const char *conf = getenv("EGRESSD_CONFIG");
	struct egr_client c;
	char err[1024];
	int opt;

	egr_log_init("egressctl");
	if (!conf || !*conf)
		conf = DEFAULT_CONF;
	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			usage(stdout);
			return EGR_CTL_OK;
		case 'V':
			printf("egressctl %s\n", EGR_VERSION);
			return EGR_CTL_OK;
		default:
			usage(stderr);
			return EGR_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EGR_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int at = optind;
		if (strcmp(argv[at], cmds[i].name))
			continue;
		if (egr_client_open(&c, conf, err, sizeof(err)) < 0) {
			egr_cmd_say("%s", err);
			return EGR_EXIT_CONFIG;
		}
		optind = 0;	/* the subcommand parses its own argv (glibc: reinitialise) */
		return cmds[i].run(&c, argc - at, argv + at);
	}
	egr_cmd_say("unknown command '%s'", argv[optind]);
	usage(stderr);
	return EGR_EXIT_USAGE;
}
