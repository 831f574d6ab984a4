/*
 * job: the job file a user drops into <spool>/incoming/.
 *
 * A job file is INI with one section [job]:
 *
 *   [job]
 *   latents      = /data/clip.npy      ; .npy or .safetensors (see below)
 *   layout       = bcthw               ; tchw | bcthw | btchw (default: by rank)
 *   latents_key  = latents             ; .safetensors: which tensor (default: the only one)
 *   output       = /data/clip.mp4      ; file (y4m, mp4, mkv) or directory (png); null: optional, ignored
 *   format       = mp4                 ; y4m | png | mp4 | mkv | null
 *   decoder      = latent2rgb          ; latent2rgb | taesd | taehv | wan_vae
 *   weights      = /data/taesd.safetensors  ; taesd, taehv, wan_vae (required there)
 *   taehv_model  = wan21               ; taehv (required): wan21 | wan22 | hunyuan | hunyuan15 | ltx2 | cogvideox | opensora
 *   wan_denormalize = no               ; wan_vae: no | yes: apply latents_mean / latents_std first
 *   vae_config   = /data/vae/config.json  ; wan_vae with wan_denormalize = yes: their values (default: built in)
 *   fps          = 24                  ; integer or rational "30000/1001"
 *   chunk_frames = 8                   ; latent frames decoded per chunk (1..1024)
 *   l2r_preset   = wan21               ; latent2rgb: published coefficients (l2r_preset.h)
 *   l2r_weights  = 0.35,0.23,0.32, ... ; latent2rgb: channels*3 floats, row per channel
 *   l2r_bias     = 0,0,0               ; latent2rgb: 3 floats
 *   overwrite    = no                  ; no | yes: may an existing output be replaced
 *
 * Encoded video (format = mp4 | mkv only; workers/output_video.c):
 *
 *   codec        = h264                ; h264 | hevc | av1 | ffv1 (mkv only)
 *   crf          = 23                  ; quality: h264 0..51 (23), hevc 0..51 (28),
 *                                      ; av1 1..63 (35); not for ffv1 (lossless)
 *   bitrate      = 4M                  ; bits/s (k, M, G: 1000s) instead of crf
 *   preset       = medium              ; h264, hevc: ultrafast .. placebo (medium);
 *                                      ; av1 (SVT-AV1): 0 .. 13 (10)
 *   gop          = 48                  ; frames per closed GOP (default 2 s)
 *   pix_fmt      = yuv420p             ; the frames are 8-bit 4:2:0: yuv420p only
 *   threads      = 1                   ; encoder threads per segment (1..64)
 *
 * The output depends on every key above and on nothing else (threads
 * included: the encoders are deterministic for a fixed thread count), so a
 * segment encoded again after a crash is the same.
 *
 * Latents: a .npy file (float16 or float32) or a .safetensors file (F32, F16
 * or BF16; one tensor, or the one latents_key names), recognised by content.
 * Shapes: 4-D [frames, channels, h, w] (layout tchw, the default for 4-D) or
 * 5-D [batch, channels, frames, h, w] (bcthw: diffusers, Wan, HunyuanVideo;
 * the default for 5-D) or [batch, frames, channels, h, w] (btchw).  One job
 * decodes one video: a batch larger than 1 is refused (save one item per
 * file: latents[i:i+1]).
 *
 * Video decoders (taehv, wan_vae) make several frames of most latent frames
 * (Wan 2.1: 16 latent frames -> 61 frames): chunk_frames counts latent
 * frames for every decoder, so a video decoder's chunk holds about
 * chunk_frames * 4 output frames (the producer shrinks it to fit a ring slot).
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
#define EGR_PRESET_MAX 16		/* "superfast" and its NUL, with room */
#define EGR_PIX_YUV420P 1		/* pix_fmt: the only one (frames are 8-bit I420) */


struct egr_jobspec {
	char latents[EGR_PATH_MAX];
	char output[EGR_PATH_MAX];
	char weights[EGR_PATH_MAX];	/* "" for decoder = latent2rgb */
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
	uint32_t taehv_model;		/* decoder = taehv: enum egr_taehv_model */
	uint32_t wan_denormalize;	/* decoder = wan_vae: 1 = latents / (1 / std) + mean first */
	char vae_config[EGR_PATH_MAX];	/* "" or a diffusers vae/config.json (its latents_mean / std) */
	uint32_t overwrite;		/* 1: an existing output may be replaced (daemon/base/safepath.h says what may) */
	uint32_t owner_uid;		/* not a key: the job file's owner, set by the supervisor */
	/* format = mp4 | mkv; all zero otherwise.  Defaults filled by egr_job_parse. */
	uint32_t codec;			/* enum egr_codec */
	uint32_t gop;			/* frames per segment, each one closed GOP */
	uint32_t threads;		/* encoder threads per segment */
	uint32_t pix_fmt;		/* EGR_PIX_YUV420P */
	float crf;			/* 0 with bitrate, and for ffv1 */
	uint32_t pad;
	uint64_t bitrate;		/* bits/s; 0: crf */
	char preset[EGR_PRESET_MAX];	/* "" for ffv1 */
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
const char *egr_job_codec_name(uint32_t codec);		/* "h264", ...; "?" for NONE */
/* 1 for the encoded video formats (mp4, mkv) */
int egr_job_is_video(uint32_t format);

#endif
