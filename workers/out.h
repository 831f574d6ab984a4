/*
 * out: output formats, as bytes.
 *
 * y4m: one YUV4MPEG2 stream, "YUV4MPEG2 W.. H.. F.. Ip A1:1 C420jpeg
 * XCOLORRANGE=LIMITED\n", then per frame "FRAME\n" + I420 planes.  Every
 * frame has a fixed offset, so workers write chunks of one file in parallel.
 * png: one RGB24 PNG per frame, frame_000001.png ... (1-based), compressed in
 * the worker.
 */
#ifndef EGR_OUT_H
#define EGR_OUT_H

#include <stddef.h>
#include <stdint.h>

#define EGR_Y4M_FRAME_TAG "FRAME\n"
#define EGR_Y4M_FRAME_TAG_LEN 6

/* Writes the stream header into buf; returns its length or -ENOSPC. */
int egr_y4m_header(char *buf, size_t len, uint32_t w, uint32_t h, uint32_t fps_num, uint32_t fps_den);
/* File offset of frame i's "FRAME\n" tag. */
static inline uint64_t egr_y4m_frame_off(uint64_t header_bytes, uint64_t frame_bytes, uint64_t i)
{
	return header_bytes + i * (EGR_Y4M_FRAME_TAG_LEN + frame_bytes);
}

/*
 * Compress one RGB24 frame to PNG in memory (libpng, fast settings).
 * *out is malloc'd; 0 or -errno with err set.
 */
int egr_png_encode(const uint8_t *rgb, uint32_t w, uint32_t h, void **out, size_t *outlen,
		   char *err, size_t errlen);
/* "frame_000001.png" for i = 0 */
void egr_png_name(char *buf, size_t len, uint64_t i);

#endif
