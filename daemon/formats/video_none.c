/*
 * video_none: daemon/formats/video.h for a build without FFmpeg's libraries
 * (`make VIDEO=0`, chosen by the Makefile where libavcodec's headers are
 * missing, e.g. the GPU machine).  Every mp4/mkv job is refused when it is
 * planned, with one line saying how to get them; y4m and png are unaffected.
 */
#include <errno.h>
#include <stdio.h>

#include "daemon/base/log.h"
#include "daemon/formats/video.h"

#define NOT_BUILT "this egressd was built without libavcodec (apt-get install libavcodec-dev libavformat-dev, then rebuild)"

int egr_video_check(const struct egr_jobspec *js, char *err, size_t errlen)
{
	(void)js;
	egr_errf(err, errlen, "format = mp4 | mkv: %s", NOT_BUILT);
	return -ENOTSUP;
}

void egr_video_codecs(char *buf, size_t len)
{
	snprintf(buf, len, "none (built without libavcodec)");
}

void egr_video_versions(char *buf, size_t len)
{
	snprintf(buf, len, "no libavcodec");
}

int egr_video_enc_open(struct egr_video_enc **out, const struct egr_jobspec *js, uint32_t width, uint32_t height,
		       const char *path, char *err, size_t errlen)
{
	(void)js, (void)width, (void)height, (void)path;
	*out = NULL;
	egr_errf(err, errlen, "%s", NOT_BUILT);
	return -ENOTSUP;
}

int egr_video_enc_frame(struct egr_video_enc *e, const uint8_t *i420, char *err, size_t errlen)
{
	(void)e, (void)i420;
	egr_errf(err, errlen, "%s", NOT_BUILT);
	return -ENOTSUP;
}

int egr_video_enc_finish(struct egr_video_enc *e, char *err, size_t errlen)
{
	return egr_video_enc_frame(e, NULL, err, errlen);
}

void egr_video_enc_free(struct egr_video_enc *e)
{
	(void)e;
}

int egr_video_mux_open(struct egr_video_mux **out, const struct egr_jobspec *js, const char *path,
		       const char *first_segment, char *err, size_t errlen)
{
	(void)js, (void)path, (void)first_segment;
	*out = NULL;
	egr_errf(err, errlen, "%s", NOT_BUILT);
	return -ENOTSUP;
}

int egr_video_mux_add(struct egr_video_mux *m, const char *segment, uint64_t first_frame, uint32_t nframes,
		      char *err, size_t errlen)
{
	(void)m, (void)segment, (void)first_frame, (void)nframes;
	egr_errf(err, errlen, "%s", NOT_BUILT);
	return -ENOTSUP;
}

int egr_video_mux_finish(struct egr_video_mux *m, char *err, size_t errlen)
{
	return egr_video_mux_add(m, NULL, 0, 0, err, errlen);
}

void egr_video_mux_free(struct egr_video_mux *m)
{
	(void)m;
}
