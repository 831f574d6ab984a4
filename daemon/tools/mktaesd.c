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

int main(int argc, char **argv)
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
	const char *outp = NULL;
	unsigned long channels = 4;
	unsigned long long seed = 1;
	uint32_t dtype = EGR_ST_F16, variant = EGR_TAESD_PLAIN;
	char err[512], *end;
	int o;

	egr_log_init("mktaesd");
	while ((o = getopt_long(argc, argv, "o:c:s:d:v:h", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
			outp = optarg;
			break;
		case 'c':
			errno = 0;
			channels = strtoul(optarg, &end, 10);
			if (errno || *end || channels < 1 || channels > EGR_TAESD_MAX_CHANNELS) {
				fprintf(stderr, "egressd-mktaesd: --latent-channels '%s': expected 1..%d\n", optarg,
					EGR_TAESD_MAX_CHANNELS);
				return EGR_EXIT_USAGE;
			}
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "egressd-mktaesd: --seed '%s': expected an integer\n", optarg);
				return EGR_EXIT_USAGE;
			}
			break;
		case 'd':
			if (!strcmp(optarg, "f16")) {
				dtype = EGR_ST_F16;
			} else if (!strcmp(optarg, "f32")) {
				dtype = EGR_ST_F32;
			} else {
				fprintf(stderr, "egressd-mktaesd: --dtype '%s': expected f16 or f32\n", optarg);
				return EGR_EXIT_USAGE;
			}
			break;
		case 'v':
			if (strcmp(optarg, "plain") && strcmp(optarg, "flux_2")) {
				fprintf(stderr, "egressd-mktaesd: --variant '%s': expected plain or flux_2\n", optarg);
				return EGR_EXIT_USAGE;
			}
			variant = strcmp(optarg, "flux_2") ? EGR_TAESD_PLAIN : EGR_TAESD_FLUX2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EGR_EXIT_USAGE;
		}
	}
	if (!outp || optind != argc) {
		usage(stderr);
		return EGR_EXIT_USAGE;
	}
	if (egr_taesd_write_random_variant(outp, (uint32_t)channels, variant, seed, dtype, err, sizeof(err)) < 0) {
		egr_err("%s", err);
		return EGR_EXIT_SOFTWARE;
	}
	return 0;
}
