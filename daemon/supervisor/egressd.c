/*
 * egressd: command line of the supervisor.
 *
 *   egressd -c FILE              run the daemon in the foreground (systemd)
 *   egressd -t -c FILE           check the configuration, print the effective settings
 *   egressd --oneshot JOB -c FILE   run one job in the foreground, exit with its status
 */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "shm/ring.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/spool.h"
#include "daemon/formats/video.h"
#include "daemon/supervisor/supervisor.h"

#ifndef EGR_VERSION
#define EGR_VERSION "0.1.0"
#endif
#define DEFAULT_CONF "/etc/egressd/egressd.ini"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: egressd [-c FILE]              run the daemon (foreground)\n"
		"       egressd -t [-c FILE]           check the configuration and print it\n"
		"       egressd --oneshot JOB [-c FILE]  run one job file, print its result\n"
		"       egressd --help | --version\n"
		"\n"
		"  -c, --config FILE   daemon configuration (default " DEFAULT_CONF ")\n"
		"  -t, --test          check FILE, print the effective settings, exit\n"
		"      --oneshot JOB   exit 0 if the job succeeded, 1 if it failed\n"
		"\n"
		"Jobs are INI files renamed into <spool>/incoming/; see README.md.\n");
}

/*
 * egressd -t: the configuration, and what the daemon will need at start
 * (ExecStartPre= runs this as the daemon's user): a usable spool and
 * /dev/shm.  The roots were checked by egr_conf_load.
 */
static int check_config(const struct egr_conf *c, const char *conf_path)
{
	struct egr_ring_geom g = { c->slots, c->slot_bytes, (uint32_t)c->max_frames };
	char err[1024], shm[96];
	int fd, bad = 0;

	printf("# egressd: configuration %s is valid; effective settings:\n", conf_path);
	egr_conf_dump(c, stdout);
	printf("# shared memory /%s: %llu bytes\n", c->instance, (unsigned long long)egr_ring_segment_bytes(&g));
	if (egr_spool_check(c->spool, err, sizeof(err)) < 0) {
		fprintf(stderr, "egressd: %s\n", err);
		bad = 1;
	}
	snprintf(shm, sizeof(shm), "/%s.probe.%d", c->instance, (int)getpid());
	fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		fprintf(stderr, "egressd: shm_open(\"%s\"): %s: /dev/shm must be usable\n", shm, strerror(errno));
		bad = 1;
	} else {
		close(fd);
		shm_unlink(shm);
	}
	egr_video_codecs(err, sizeof(err));
	printf("# video codecs (format = mp4 | mkv): %s\n", err);
	if (egr_conf_paths_ready(c, err, sizeof(err)) < 0)
		fprintf(stderr, "egressd: warning: %s\n", err);
	return bad ? EGR_EXIT_CONFIG : EGR_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "oneshot", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = DEFAULT_CONF, *oneshot = NULL;
	struct egr_conf c;
	char err[1024], codecs[256];
	int opt, test = 0;

	egr_log_init("supervisor");
	while ((opt = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'o':
			oneshot = optarg;
			break;
		case 'h':
			usage(stdout);
			return EGR_EXIT_OK;
		case 'V':
			printf("egressd %s (shm layout %u, CUDA backend %s)\n", EGR_VERSION, EGR_RING_VERSION,
			       EGR_CUDA ? "built in" : "not built");
			egr_video_codecs(codecs, sizeof(codecs));
			egr_video_versions(err, sizeof(err));
			printf("video codecs (format = mp4 | mkv): %s; %s\n", codecs, err);
			return EGR_EXIT_OK;
		default:
			usage(stderr);
			return EGR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "egressd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EGR_EXIT_USAGE;
	}
	if (egr_conf_load(conf_path, &c, err, sizeof(err)) < 0) {
		if (test) {
			fprintf(stderr, "egressd: %s\n", err);
			fprintf(stderr, "egressd: configuration %s is not valid\n", conf_path);
		} else {
			egr_err("%s", err);
		}
		return EGR_EXIT_CONFIG;
	}
	egr_log_set_level(egr_conf_log_level(&c));
	if (test)
		return check_config(&c, conf_path);
	if (oneshot)
		return egr_supervisor_oneshot(&c, oneshot);
	return egr_supervisor_run(&c);
}
