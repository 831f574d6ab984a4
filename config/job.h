/*
 * job: the job file a user drops into <spool>/incoming/.
 *
 * A job file is INI with one section [job]:
 *
 *   [job]
 *   latents      = /data/clip.npy      ; .npy or .safetensors (see below)
 *   layout       = bcthw               ; tchw | bcthw | btchw (default: by rank)
 *   latents_key  = latents             ; .safetensors: which tensor (default: the only one)
 *   output       = /data/clip.y4m      ; file (y4m) or directory (png); null: optional, ignored
 *   format       = y4m                 ; y4m | png | null
 *   decoder      = latent2rgb          ; latent2rgb | taesd
 *   weights      = /data/taesd.safetensors  ; taesd only
 *   fps          = 24                  ; integer or rational "30000/1001"
 *   chunk_frames = 8                   ; frames decoded per chunk (1..1024)
 *   l2r_preset   = wan21               ; latent2rgb: published coefficients (l2r_preset.h)
 *   l2r_weights  = 0.35,0.23,0.32, ... ; latent2rgb: channels*3 floats, row per channel
 *   l2r_bias     = 0,0,0               ; latent2rgb: 3 floats
 *   overwrite    = no                  ; no | yes: may an existing output be replaced
 *
 * Latents: a .npy file (float16 or float32) or a .safetensors file (F32, F16
 * or BF16; one tensor, or the one latents_key names), recognised by content.
 * Shapes: 4-D [frames, channels, h, w] (layout tchw, the default for 4-D) or
 * 5-D [batch, channels, frames, h, w] (bcthw: diffusers, Wan, HunyuanVideo;
 * the default for 5-D) or [batch, frames, channels, h, w] (btchw).  One job
 * decodes one video: a batch larger than 1 is refused (save one item per
 * file: latents[i:i+1]).
 *
 * l2r_preset excludes l2r_weights and l2r_bias (it sets both) and fixes the
 * channel count the latents must have.  Without either, 4-channel latents get
 * the SD 1.x coefficients (the sd15 preset).
 *
 * Long values: a 128-channel l2r_weights line is 384 numbers.  Job files
 * stay INI, read by a vendored inih (config/inih) built with a line buffer
 * for lines of up to EGR_INI_LINE_MAX (8191) bytes; longer lines are refused
 * with the file and line, never cut (conf.h).  Chosen over a JSON job format
 * (jansson): one format for the daemon's config and its jobs, the same
 * file:line error messages, and no second parser to keep in step.
 *
 * format = null decodes every frame and copies it to the workers as y4m's
 * I420 bytes, which count them (the result's bytes) and drop them: no file,
 * no temporary, nothing to finalize.  What ffmpeg -f null is for a decoder
 * benchmark; output may be left out (when given it is parsed, then ignored).
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
#define EGR_L2R_MAX_CHANNELS 128	/* ltxv: 128 channels */
#define EGR_LATENTS_KEY_MAX 128		/* a safetensors tensor name and its NUL */


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
	uint32_t l2r_preset;		/* 0: none; else egr_l2r_preset_id() */
	uint32_t layout;		/* enum egr_layout; AUTO: by rank */
	char latents_key[EGR_LATENTS_KEY_MAX];	/* "": the file's only tensor */
	uint32_t overwrite;		/* 1: an existing output may be replaced (daemon/base/safepath.h says what may) */
	uint32_t owner_uid;		/* not a key: the job file's owner, set by the supervisor */
};

/*
 * Parse a job file.  Returns 0, or -errno / -EINVAL with err holding a
 * one-line reason a person can act on, naming the file, the line and the key
 * ("job.ini:3: unknown key 'fsp' in [job]").  Over-long lines are rejected.
 */
int egr_job_parse(const char *path, struct egr_jobspec *js, char *err, size_t errlen);

const char *egr_job_format_name(uint32_t fmt);
const char *egr_job_decoder_name(uint32_t dec);
const char *egr_job_layout_name(uint32_t layout);	/* "tchw", ...; "auto" for AUTO */

#endif
