/*
 * args: the command line every child of the supervisor takes, parsed once
 * for both roles (egressd-producer, egressd-worker):
 *
 *   egressd-ROLE -c CONF --shm NAME --notify-fd N [--index I] [--device D]
 *
 * The supervisor builds it (daemon/supervisor/supervisor.c); nobody else
 * should.  --notify-fd, --index and --device must be non-negative integers.
 */
#ifndef EGR_ARGS_H
#define EGR_ARGS_H

struct egr_child_args {
	const char *conf;	/* -c, NULL if absent */
	const char *shm;	/* --shm */
	int notify_fd;		/* --notify-fd, -1 if absent */
	int index;		/* --index, -1 if absent */
	int device;		/* --device (producer: the GPU), -1 if absent */
};

/*
 * Parse argv into a.  0 to run; 1 when --help was printed (exit 0);
 * -EINVAL after printing the usage line for role to stderr.  --shm is
 * required; -c and --notify-fd are required when need_conf / need_notify.
 */
int egr_child_args_parse(int argc, char **argv, const char *role, int need_conf, int need_notify,
			 struct egr_child_args *a);

/*
 * The signals of a child: handler for SIGTERM and SIGINT (stop) and SIGHUP
 * (re-read the config; SA_RESTART), SIGPIPE ignored, and SIGXFSZ ignored so
 * that a file-size limit is an EFBIG error naming the file, not a death.
 */
void egr_child_signals(void (*handler)(int));

#endif
