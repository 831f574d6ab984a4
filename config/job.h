/*
 * job: the job file a user drops into <spool>/incoming/.
 *
 * A job file is INI with one section [job]:
 *
 *   [job]
 *   latents      = /data/clip.npy      ; .npy, float16|float32, [frames, channels, h, w]
 *   output       = /data/clip.y4m      ; file (y4m) or directory (png)
 *   format       = y4m                 ; y4m | png
 *   decoder      = latent2rgb          ; latent2rgb | taesd
 *   weights      = /data/taesd.safetensors  ; taesd only
 *   fps          = 24                  ; integer or rational "30000/1001"
 *   chunk_frames = 8                   ; frames decoded per chunk (1..1024)
 *   l2r_weights  = 0.35,0.23,0.32, ... ; latent2rgb: channels*3 floats, row per channel
 *   l2r_bias     = 0,0,0               ; latent2rgb: 3 floats
 *   overwrite    = no                  ; no | yes: may an existing output be replaced
 *
 * All paths must be absolute.  struct egr_jobspec is plain data with no
 * pointers: it is copied into the shared-memory job table as is.
 */
#ifndef EGR_JOB_H
#define EGR_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/base/vocab.h"

#define EGR_PATH_MAX 1024
#define EGR_L2R_MAX_CHANNELS 16


struct egr_jobspec {
	char latents[EGR_PATH_MAX];
	char output[EGR_PATH_MAX];
	char weights[EGR_PATH_MAX];	/* "" unless decoder = taesd */
	uint32_t format;		/* enum egr_format */
	uint32_t decoder;		/* enum egr_decoder */
	uint32_t fps_num, fps_den;
	uint32_t chunk_frames;
	uint32_t l2r_nweights;		/* 0: defaults; else channels*3 */
	float l2r_weights[EGR_L2R_MAX_CHANNELS * 3];	/* [channel][rgb] */
	uint32_t l2r_has_bias;
	float l2r_bias[3];
	uint32_t overwrite;		/* 1: an existing output may be replaced (daemon/base/safepath.h says what may) */
};

/*
 * Parse a job file.  Returns 0, or -errno / -EINVAL with err holding a
 * one-line reason a person can act on, naming the file, the line and the key
 * ("job.ini:3: unknown key 'fsp' in [job]").  Over-long lines are rejected.
 */
int egr_job_parse(const char *path, struct egr_jobspec *js, char *err, size_t errlen);

const char *egr_job_format_name(uint32_t fmt);
const char *egr_job_decoder_name(uint32_t dec);

#endif
