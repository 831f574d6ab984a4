/*
 * egressd-mktaesd: write seeded random TAESD decoder weights with the public
 * tensor names and shapes, for tests, benchmarks and demos (the project
 * never downloads weights).
 *
 *   egressd-mktaesd -o weights.safetensors [--latent-channels 4|16|32] [--seed N] [--dtype f16|f32]
 *                   [--variant plain|flux_2]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/log.h"
#include "daemon/formats/safetensors.h"
#include "daemon/decode/taesd.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: egressd-mktaesd -o FILE [--latent-channels N (1..64, default 4)] [--seed N (default 1)]\n"
		   "                       [--dtype f16|f32 (default f16)] [--variant plain|flux_2 (default plain)]\n"
		   "Writes seeded random TAESD decoder weights (safetensors, public tensor names).\n");
}

struct args {
	const char *out;
	unsigned long channels;
	unsigned long long seed;
	uint32_t dtype;		/* EGR_ST_F16 or EGR_ST_F32 */
	uint32_t variant;	/* EGR_TAESD_PLAIN or EGR_TAESD_FLUX2 */
};

/* One option's value into a.  0, or -1 after saying why on stderr. */
static int parse_opt(int o, const char *arg, struct args *a)
{
	char *end;

	switch (o) {
	case 'o':
		a->out = arg;
		return 0;
	case 'c':
		errno = 0;
		a->channels = strtoul(arg, &end, 10);
		if (errno || *end || a->channels < 1 || a->channels > EGR_TAESD_MAX_CHANNELS) {
			fprintf(stderr, "egressd-mktaesd: --latent-channels '%s': expected 1..%d\n", arg,
				EGR_TAESD_MAX_CHANNELS);
			return -1;
		}
		return 0;
	case 's':
		errno = 0;
		a->seed = strtoull(arg, &end, 0);
		if (errno || *end || !*arg) {
			fprintf(stderr, "egressd-mktaesd: --seed '%s': expected an integer\n", arg);
			return -1;
		}
		return 0;
	case 'd':
		if (!strcmp(arg, "f16")) {
			a->dtype = EGR_ST_F16;
		} else if (!strcmp(arg, "f32")) {
			a->dtype = EGR_ST_F32;
		} else {
			fprintf(stderr, "egressd-mktaesd: --dtype '%s': expected f16 or f32\n", arg);
			return -1;
		}
		return 0;
	case 'v':
		if (strcmp(arg, "plain") && strcmp(arg, "flux_2")) {
			fprintf(stderr, "egressd-mktaesd: --variant '%s': expected plain or flux_2\n", arg);
			return -1;
		}
		a->variant = strcmp(arg, "flux_2") ? EGR_TAESD_PLAIN : EGR_TAESD_FLUX2;
		return 0;
	}
	return -1;
}

/* The command line into a.  0, or -1 on a usage error (said on stderr); --help exits. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "latent-channels", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "dtype", required_argument, NULL, 'd' },
		{ "variant", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "o:c:s:d:v:h", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
		case 'c':
		case 's':
		case 'd':
		case 'v':
			if (parse_opt(o, optarg, a) < 0)
				return -1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (!a->out || optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { .out = NULL, .channels = 4, .seed = 1, .dtype = EGR_ST_F16, .variant = EGR_TAESD_PLAIN };
	char err[512];

	egr_log_init("mktaesd");
	if (parse_args(argc, argv, &a) < 0)
		return EGR_EXIT_USAGE;
	if (egr_taesd_write_random_variant(a.out, (uint32_t)a.channels, a.variant, a.seed, a.dtype, err,
					   sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_SOFTWARE;
	}
	return 0;
}
