/*
 * y4m: one YUV4MPEG2 stream, "YUV4MPEG2 W.. H.. F.. Ip A1:1 C420jpeg
 * XCOLORRANGE=LIMITED\n", then per frame "FRAME\n" + I420 planes.  Every
 * frame has a fixed offset, so workers write chunks of one file in parallel.
 */
#ifndef EGR_Y4M_H
#define EGR_Y4M_H

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

#endif
