/* y4m: the YUV4MPEG2 stream header; see y4m.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "daemon/formats/y4m.h"

int egr_y4m_header(char *buf, size_t len, uint32_t w, uint32_t h, uint32_t fps_num, uint32_t fps_den)
{
	int n = snprintf(buf, len, "YUV4MPEG2 W%" PRIu32 " H%" PRIu32 " F%" PRIu32 ":%" PRIu32
			 " Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n", w, h, fps_num, fps_den);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
