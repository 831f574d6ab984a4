/*
 * png: one RGB24 PNG per frame, frame_000001.png ... (1-based), compressed in
 * the worker.
 */
#ifndef EGR_PNG_H
#define EGR_PNG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Compress one RGB24 frame to PNG in memory (libpng, fast settings).
 * *out is malloc'd; 0 or -errno with err set.
 */
int egr_png_encode(const uint8_t *rgb, uint32_t w, uint32_t h, void **out, size_t *outlen,
		   char *err, size_t errlen);
/* "frame_000001.png" for i = 0 */
void egr_png_name(char *buf, size_t len, uint64_t i);

#endif
