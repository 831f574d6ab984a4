/*
 * vocab: the enums every room shares.  Element types of latents, output
 * formats, decoders and latent layouts cross the job file, the shared job
 * table, the backends and the CUDA interface; they are defined once, here,
 * with fixed values (they are stored in shared memory and compared across
 * processes).
 */
#ifndef EGR_VOCAB_H
#define EGR_VOCAB_H

/* element type of a latent tensor; the value is the element size in bytes */
enum egr_dtype { EGR_DT_F16 = 2, EGR_DT_F32 = 4 };

/*
 * what the workers write; 0 is "raw" (float32 network output, tests only).
 * mp4 and mkv are encoded video (workers/output_video.c): their frames reach
 * the workers as y4m's do, I420.  null: nothing (frames decoded and copied as
 * y4m's I420, then counted and dropped: a decoder benchmark, like ffmpeg -f null)
 */
enum egr_format { EGR_FMT_RAW = 0, EGR_FMT_Y4M = 1, EGR_FMT_PNG = 2, EGR_FMT_MP4 = 3, EGR_FMT_MKV = 4, EGR_FMT_NULL = 5 };

/* the video codec of format = mp4 | mkv (job key codec); 0: none (y4m, png) */
enum egr_codec { EGR_CODEC_NONE = 0, EGR_CODEC_H264 = 1, EGR_CODEC_HEVC = 2, EGR_CODEC_AV1 = 3, EGR_CODEC_FFV1 = 4 };

/*
 * latent2rgb and taesd decode each latent frame on its own; taehv and wan_vae
 * are stateful video decoders: each latent frame after the first makes
 * several output frames, and state carries from one chunk to the next
 * (daemon/producer/backend.h).
 */
enum egr_decoder { EGR_DEC_LATENT2RGB = 1, EGR_DEC_TAESD = 2, EGR_DEC_TAEHV = 3, EGR_DEC_WAN_VAE = 4 };

/*
 * memory order of a latents tensor (job key layout): t frames, c channels,
 * b batch.  AUTO picks by rank: 4-D tchw, 5-D bcthw (diffusers, Wan,
 * HunyuanVideo).  Readers present every layout as frames of [c][h][w].
 */
enum egr_layout { EGR_LAYOUT_AUTO = 0, EGR_LAYOUT_TCHW = 1, EGR_LAYOUT_BCTHW = 2, EGR_LAYOUT_BTCHW = 3 };

#endif
