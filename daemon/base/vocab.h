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
 * what the workers write; 0 is "raw" (float32 network output, tests only);
 * null: nothing (frames decoded and copied as y4m's I420, then counted and
 * dropped: a decoder benchmark, like ffmpeg -f null)
 */
enum egr_format { EGR_FMT_RAW = 0, EGR_FMT_Y4M = 1, EGR_FMT_PNG = 2, EGR_FMT_NULL = 3 };

enum egr_decoder { EGR_DEC_LATENT2RGB = 1, EGR_DEC_TAESD = 2 };

/*
 * memory order of a latents tensor (job key layout): t frames, c channels,
 * b batch.  AUTO picks by rank: 4-D tchw, 5-D bcthw (diffusers, Wan,
 * HunyuanVideo).  Readers present every layout as frames of [c][h][w].
 */
enum egr_layout { EGR_LAYOUT_AUTO = 0, EGR_LAYOUT_TCHW = 1, EGR_LAYOUT_BCTHW = 2, EGR_LAYOUT_BTCHW = 3 };

#endif
