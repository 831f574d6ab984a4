/* args: the children's command line; see args.h. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/base/args.h"

static void usage(FILE *f, const char *role)
{
	fprintf(f, "usage: egressd-%s -c CONF --shm NAME --notify-fd N [--index I] [--device D]\n"
		   "(started by egressd; not meant to be run by hand)\n", role);
}

/* a non-negative int, or -1 */
static int nonneg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v >= 0 && v <= 1 << 30 ? (int)v : -1;
}

int egr_child_args_parse(int argc, char **argv, const char *role, int need_conf, int need_notify,
			 struct egr_child_args *a)
{
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "notify-fd", required_argument, NULL, 'n' },
		{ "index", required_argument, NULL, 'i' },
		{ "device", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, bad = 0;

	*a = (struct egr_child_args){ .notify_fd = -1, .index = -1, .device = -1 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->conf = optarg;
			break;
		case 's':
			a->shm = optarg;
			break;
		case 'n':
			bad |= (a->notify_fd = nonneg(optarg)) < 0;
			break;
		case 'i':
			bad |= (a->index = nonneg(optarg)) < 0;
			break;
		case 'd':
			bad |= (a->device = nonneg(optarg)) < 0;
			break;
		case 'h':
			usage(stdout, role);
			return 1;
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc || !a->shm || (need_conf && !a->conf) || (need_notify && a->notify_fd < 0)) {
		usage(stderr, role);
		return -EINVAL;
	}
	return 0;
}

void egr_child_signals(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
}
