/*
 * video: libavcodec encoders and libavformat muxers (see video.h).  Shapes
 * after FFmpeg's doc/examples/encode_video.c (send frames, receive packets,
 * drain with a NULL frame) and mux.c (timestamps rescaled per stream).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>

#include "daemon/base/log.h"
#include "daemon/formats/video.h"

/* the encoder egressd uses for each codec, by enum egr_codec */
static const struct {
	uint32_t codec;
	const char *encoder;
} encoders[] = {
	{ EGR_CODEC_H264, "libx264" },
	{ EGR_CODEC_HEVC, "libx265" },
	{ EGR_CODEC_AV1, "libsvtav1" },
	{ EGR_CODEC_FFV1, "ffv1" },
};
#define NCODECS (sizeof(encoders) / sizeof(encoders[0]))

#define FFV1_SLICES 4	/* fixed, so the bytes do not depend on the thread count */

struct egr_video_enc {
	AVCodecContext *cc;
	AVFormatContext *fc;
	AVFrame *frame;
	AVPacket *pkt;
	int64_t next_pts;
	const char *path;	/* fc->url */
};

struct egr_video_mux {
	AVFormatContext *fc;
	AVPacket *pkt;
	AVRational ftb;		/* one frame: fps_den / fps_num s */
	AVCodecParameters *par;	/* the first segment's, every segment must match */
	int64_t npkt;		/* packets written: the next one's decode index */
	int64_t delay;		/* reorder delay in frames, from the first packet */
};

/* libav's own messages: errors only, to stderr (the daemon's log) */
static void quiet_once(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	av_log_set_level(AV_LOG_ERROR);
	setenv("SVT_LOG", "1", 0);	/* SVT-AV1 prints its banner unless told (1: errors) */
}

/* -errno from an AVERROR, -EIO for libav's own codes; err: "call("obj"): reason" */
static int av_fail(char *err, size_t errlen, int averr, const char *call, const char *obj)
{
	char why[AV_ERROR_MAX_STRING_SIZE];

	av_strerror(averr, why, sizeof(why));
	egr_errf(err, errlen, "%s(\"%s\"): %s", call, obj, why);
	return averr < 0 && averr > -4096 ? averr : -EIO;
}

static const AVCodec *find_encoder(uint32_t codec, const char **name)
{
	for (size_t i = 0; i < NCODECS; i++) {
		if (encoders[i].codec != codec)
			continue;
		*name = encoders[i].encoder;
#ifdef EGR_TESTING
		/* test builds: EGR_VIDEO_HIDE=hevc,av1 plays a libavcodec without them */
		const char *hide = getenv("EGR_VIDEO_HIDE");
		if (hide && strstr(hide, egr_job_codec_name(codec)))
			return NULL;
#endif
		return avcodec_find_encoder_by_name(encoders[i].encoder);
	}
	*name = "?";
	return NULL;
}

void egr_video_codecs(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NCODECS && n < len; i++) {
		const char *name;
		if (!find_encoder(encoders[i].codec, &name))
			continue;
		int k = snprintf(buf + n, len - n, "%s%s (%s)", n ? ", " : "", egr_job_codec_name(encoders[i].codec),
				 name);
		n += k > 0 ? (size_t)k : 0;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

void egr_video_versions(char *buf, size_t len)
{
	unsigned c = avcodec_version(), f = avformat_version();

	snprintf(buf, len, "libavcodec %u.%u.%u, libavformat %u.%u.%u", c >> 16, (c >> 8) & 0xff, c & 0xff, f >> 16,
		 (f >> 8) & 0xff, f & 0xff);
}

int egr_video_check(const struct egr_jobspec *js, char *err, size_t errlen)
{
	char avail[256], ver[96];
	const char *name;
	const AVCodec *c = find_encoder(js->codec, &name);
	const enum AVPixelFormat *pf;

	if (!c) {
		egr_video_codecs(avail, sizeof(avail));
		egr_video_versions(ver, sizeof(ver));
		egr_errf(err, errlen, "codec = %s: this libavcodec has no %s encoder (%s); codecs available: %s",
			 egr_job_codec_name(js->codec), name, ver, avail);
		return -ENOENT;
	}
	for (pf = c->pix_fmts; pf && *pf != AV_PIX_FMT_NONE && *pf != AV_PIX_FMT_YUV420P; pf++)
		;
	if (pf && *pf != AV_PIX_FMT_YUV420P) {
		egr_errf(err, errlen, "codec = %s: encoder %s does not take yuv420p frames", egr_job_codec_name(js->codec),
			 name);
		return -ENOTSUP;
	}
	return 0;
}

/* An output file's trailer (MP4: its index), then close: the last buffered bytes, where a full disk can show first. */
static int out_finish(AVFormatContext *fc, char *err, size_t errlen)
{
	int rc = av_write_trailer(fc);

	if (rc < 0)
		return av_fail(err, errlen, rc, "write(trailer)", fc->url);
	if ((rc = avio_closep(&fc->pb)) < 0)
		return av_fail(err, errlen, rc, "close", fc->url);
	return 0;
}

static void out_free(AVFormatContext *fc)
{
	if (!fc)
		return;
	avio_closep(&fc->pb);
	avformat_free_context(fc);
}

/* ---- one segment ---- */

/*
 * x264's AVX-512 code: with it, this x264 (core 164) encoded one segment's
 * frames to different bytes depending on what the process had encoded
 * before (heap layout: seen on a Xeon with AVX-512, never with valgrind,
 * which has no AVX-512), so a segment re-encoded after a crash by another
 * worker differed.  Capped at AVX2 (what x264 detects, less AVX-512) the
 * bytes are the same whatever ran before.  Only where AVX-512 is there,
 * which implies the rest of that set; elsewhere x264 detects as usual.
 */
static int x264_cap_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
}

/* The encoder's private options for js: preset, rate control, threads, logging. */
static int enc_options(const struct egr_jobspec *js, AVDictionary **o)
{
	char v[64];
	int rc = 0;

	if (js->codec == EGR_CODEC_FFV1) {
		rc |= av_dict_set(o, "level", "3", 0);
		rc |= av_dict_set(o, "slicecrc", "1", 0);
		rc |= av_dict_set(o, "coder", "range_def", 0);
		rc |= av_dict_set(o, "context", "1", 0);
		return rc;
	}
	rc |= av_dict_set(o, "preset", js->preset, 0);
	if (!js->bitrate) {
		snprintf(v, sizeof(v), js->codec == EGR_CODEC_AV1 ? "%.0f" : "%g", js->crf);
		rc |= av_dict_set(o, "crf", v, 0);
	}
	if (js->codec == EGR_CODEC_H264 && x264_cap_avx2())
		rc |= av_dict_set(o, "x264-params", "asm=AVX2,SSE2Fast", 0);
	if (js->codec == EGR_CODEC_HEVC) {
		/* a pool of exactly `threads` threads; x265 logs to stderr itself */
		snprintf(v, sizeof(v), "log-level=error:pools=%u", js->threads);
		rc |= av_dict_set(o, "x265-params", v, 0);
	} else if (js->codec == EGR_CODEC_AV1) {
		snprintf(v, sizeof(v), "lp=%u", js->threads);
		rc |= av_dict_set(o, "svtav1-params", v, 0);
	}
	return rc;
}

/* The codec context: size, rate, GOP, colour, threads. */
static void enc_setup(AVCodecContext *cc, const struct egr_jobspec *js, uint32_t width, uint32_t height)
{
	cc->width = (int)width;
	cc->height = (int)height;
	cc->pix_fmt = AV_PIX_FMT_YUV420P;
	cc->time_base = (AVRational){ (int)js->fps_den, (int)js->fps_num };
	cc->framerate = (AVRational){ (int)js->fps_num, (int)js->fps_den };
	cc->gop_size = (int)js->gop;
	cc->bit_rate = (int64_t)js->bitrate;
	cc->color_range = AVCOL_RANGE_MPEG;
	cc->colorspace = AVCOL_SPC_SMPTE170M;
	cc->color_primaries = AVCOL_PRI_BT709;
	cc->color_trc = AVCOL_TRC_BT709;
	/* AV1 has no "centre": leave it to the container rather than be warned */
	cc->chroma_sample_location = js->codec == EGR_CODEC_AV1 ? AVCHROMA_LOC_UNSPECIFIED : AVCHROMA_LOC_CENTER;
	cc->thread_count = (int)js->threads;
	cc->thread_type = js->codec == EGR_CODEC_FFV1 ? FF_THREAD_SLICE : FF_THREAD_FRAME;
	if (js->codec == EGR_CODEC_FFV1)
		cc->slices = FFV1_SLICES;
	/* extradata (avcC, hvcC, av1C, FFV1's config) for the container */
	cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER | AV_CODEC_FLAG_CLOSED_GOP;
}

static int enc_codec(struct egr_video_enc *e, const struct egr_jobspec *js, uint32_t width, uint32_t height,
		     char *err, size_t errlen)
{
	const char *name;
	const AVCodec *c = find_encoder(js->codec, &name);
	AVDictionary *opts = NULL;
	int rc;

	if (!c)
		return egr_video_check(js, err, errlen);
	if (!(e->cc = avcodec_alloc_context3(c)))
		return -ENOMEM;
	enc_setup(e->cc, js, width, height);
	if (enc_options(js, &opts) < 0) {
		av_dict_free(&opts);
		return -ENOMEM;
	}
	rc = avcodec_open2(e->cc, c, &opts);
	if (rc == 0 && av_dict_count(opts)) {
		egr_errf(err, errlen, "internal error: %s has no option '%s'", name, av_dict_get(opts, "", NULL,
			 AV_DICT_IGNORE_SUFFIX)->key);
		rc = AVERROR(EINVAL);
	} else if (rc < 0) {
		av_fail(err, errlen, rc, "avcodec_open2", name);
	}
	av_dict_free(&opts);
	return rc < 0 ? (rc > -4096 ? rc : -EIO) : 0;
}

/* The segment's container: MP4 keeps pts and dts exactly (MOV for FFV1, which MP4 cannot carry). */
static int enc_container(struct egr_video_enc *e, const struct egr_jobspec *js, const char *path, char *err,
			 size_t errlen)
{
	const char *fmt = js->codec == EGR_CODEC_FFV1 ? "mov" : "mp4";
	AVStream *st;
	int rc = avformat_alloc_output_context2(&e->fc, NULL, fmt, path);

	if (rc < 0)
		return av_fail(err, errlen, rc, "avformat_alloc_output_context2", path);
	e->path = e->fc->url;
	e->fc->flags |= AVFMT_FLAG_BITEXACT;
	if (!(st = avformat_new_stream(e->fc, NULL)))
		return -ENOMEM;
	if ((rc = avcodec_parameters_from_context(st->codecpar, e->cc)) < 0)
		return av_fail(err, errlen, rc, "avcodec_parameters_from_context", path);
	st->time_base = e->cc->time_base;
	if ((rc = avio_open(&e->fc->pb, path, AVIO_FLAG_WRITE)) < 0)
		return av_fail(err, errlen, rc, "open", path);
	if ((rc = avformat_write_header(e->fc, NULL)) < 0)
		return av_fail(err, errlen, rc, "avformat_write_header", path);
	return 0;
}

int egr_video_enc_open(struct egr_video_enc **out, const struct egr_jobspec *js, uint32_t width, uint32_t height,
		       const char *path, char *err, size_t errlen)
{
	struct egr_video_enc *e = calloc(1, sizeof(*e));
	int rc = -ENOMEM;

	quiet_once();
	*out = NULL;
	err[0] = 0;
	if (!e)
		goto fail;
	e->path = path;
	if ((rc = enc_codec(e, js, width, height, err, errlen)) < 0 ||
	    (rc = enc_container(e, js, path, err, errlen)) < 0)
		goto fail;
	rc = -ENOMEM;
	if (!(e->frame = av_frame_alloc()) || !(e->pkt = av_packet_alloc()))
		goto fail;
	e->frame->format = AV_PIX_FMT_YUV420P;
	e->frame->width = (int)width;
	e->frame->height = (int)height;
	if ((rc = av_frame_get_buffer(e->frame, 0)) < 0) {
		rc = av_fail(err, errlen, rc, "av_frame_get_buffer", path);
		goto fail;
	}
	*out = e;
	return 0;
fail:
	if (rc == -ENOMEM && !err[0])
		egr_errf(err, errlen, "encoder for \"%s\": out of memory", path);
	egr_video_enc_free(e);
	return rc;
}

/* Receive what the encoder has ready and write it; at the end (drain) until EOF. */
static int enc_drain(struct egr_video_enc *e, int flush, char *err, size_t errlen)
{
	AVStream *st = e->fc->streams[0];

	for (;;) {
		int rc = avcodec_receive_packet(e->cc, e->pkt);
		if (rc == AVERROR(EAGAIN) && !flush)
			return 0;
		if (rc == AVERROR_EOF && flush)
			return 0;
		if (rc < 0)
			return av_fail(err, errlen, rc, "avcodec_receive_packet", e->path);
		e->pkt->stream_index = 0;
		e->pkt->duration = 1;	/* one frame, in cc->time_base */
		av_packet_rescale_ts(e->pkt, e->cc->time_base, st->time_base);
		rc = av_interleaved_write_frame(e->fc, e->pkt);	/* takes the packet */
		if (rc < 0)
			return av_fail(err, errlen, rc, "write", e->path);
	}
}

int egr_video_enc_frame(struct egr_video_enc *e, const uint8_t *i420, char *err, size_t errlen)
{
	AVFrame *f = e->frame;
	int w = f->width, h = f->height, rc;

	/* a new buffer if the encoder still holds the last one (lookahead) */
	if ((rc = av_frame_make_writable(f)) < 0)
		return av_fail(err, errlen, rc, "av_frame_make_writable", e->path);
	av_image_copy_plane(f->data[0], f->linesize[0], i420, w, w, h);
	av_image_copy_plane(f->data[1], f->linesize[1], i420 + (size_t)w * h, w / 2, w / 2, h / 2);
	av_image_copy_plane(f->data[2], f->linesize[2], i420 + (size_t)w * h + (size_t)(w / 2) * (h / 2), w / 2,
			    w / 2, h / 2);
	f->pts = e->next_pts++;
	if ((rc = avcodec_send_frame(e->cc, f)) < 0)
		return av_fail(err, errlen, rc, "avcodec_send_frame", e->path);
	return enc_drain(e, 0, err, errlen);
}

int egr_video_enc_finish(struct egr_video_enc *e, char *err, size_t errlen)
{
	int rc = avcodec_send_frame(e->cc, NULL);

	if (rc < 0)
		return av_fail(err, errlen, rc, "avcodec_send_frame(flush)", e->path);
	if ((rc = enc_drain(e, 1, err, errlen)) < 0)
		return rc;
	return out_finish(e->fc, err, errlen);
}

void egr_video_enc_free(struct egr_video_enc *e)
{
	if (!e)
		return;
	out_free(e->fc);
	avcodec_free_context(&e->cc);
	av_frame_free(&e->frame);
	av_packet_free(&e->pkt);
	free(e);
}

/* ---- the final file ---- */

static int open_segment(AVFormatContext **in, const char *path, char *err, size_t errlen)
{
	int rc = avformat_open_input(in, path, NULL, NULL);

	if (rc < 0)
		return av_fail(err, errlen, rc, "avformat_open_input", path);
	if ((*in)->nb_streams != 1 || (*in)->streams[0]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) {
		egr_errf(err, errlen, "internal error: segment \"%s\" has %u streams", path, (*in)->nb_streams);
		avformat_close_input(in);
		return -EIO;
	}
	return 0;
}

/* The output stream: the segments' codec setup, the job's rate and colour tags. */
static int mux_stream(struct egr_video_mux *m, const struct egr_jobspec *js, const AVCodecParameters *par,
		      char *err, size_t errlen)
{
	AVStream *st = avformat_new_stream(m->fc, NULL);
	AVCodecParameters *p;
	int rc;

	if (!st || !(m->par = avcodec_parameters_alloc()))
		return -ENOMEM;
	if ((rc = avcodec_parameters_copy(m->par, par)) < 0 || (rc = avcodec_parameters_copy(st->codecpar, par)) < 0)
		return av_fail(err, errlen, rc, "avcodec_parameters_copy", m->fc->url);
	p = st->codecpar;
	p->codec_tag = 0;	/* the output container's own */
	if (js->format == EGR_FMT_MP4 && p->codec_id == AV_CODEC_ID_HEVC)
		p->codec_tag = MKTAG('h', 'v', 'c', '1');	/* parameter sets in hvcC only: what Apple and browsers play */
	p->color_range = AVCOL_RANGE_MPEG;
	p->color_space = AVCOL_SPC_SMPTE170M;
	p->color_primaries = AVCOL_PRI_BT709;
	p->color_trc = AVCOL_TRC_BT709;
	p->chroma_location = AVCHROMA_LOC_CENTER;
	p->field_order = AV_FIELD_PROGRESSIVE;
	st->time_base = m->ftb;
	st->avg_frame_rate = st->r_frame_rate = av_inv_q(m->ftb);
	return 0;
}

int egr_video_mux_open(struct egr_video_mux **out, const struct egr_jobspec *js, const char *path,
		       const char *first_segment, char *err, size_t errlen)
{
	struct egr_video_mux *m = calloc(1, sizeof(*m));
	AVFormatContext *in = NULL;
	AVDictionary *opts = NULL;
	int rc = -ENOMEM;

	quiet_once();
	*out = NULL;
	err[0] = 0;
	if (!m || !(m->pkt = av_packet_alloc()))
		goto fail;
	m->ftb = (AVRational){ (int)js->fps_den, (int)js->fps_num };
	if ((rc = open_segment(&in, first_segment, err, errlen)) < 0)
		goto fail;
	rc = avformat_alloc_output_context2(&m->fc, NULL, js->format == EGR_FMT_MP4 ? "mp4" : "matroska", path);
	if (rc < 0) {
		rc = av_fail(err, errlen, rc, "avformat_alloc_output_context2", path);
		goto fail;
	}
	m->fc->flags |= AVFMT_FLAG_BITEXACT;
	if ((rc = mux_stream(m, js, in->streams[0]->codecpar, err, errlen)) < 0)
		goto fail;
	if ((rc = avio_open(&m->fc->pb, path, AVIO_FLAG_WRITE)) < 0) {
		rc = av_fail(err, errlen, rc, "open", path);
		goto fail;
	}
	/* MP4: the index (moov) rewritten before the media once all is known */
	if (js->format == EGR_FMT_MP4 && (av_dict_set(&opts, "movflags", "+faststart", 0) < 0 ||
					  /* the file's duration (mvhd) exact too, not in ms */
					  av_dict_set_int(&opts, "movie_timescale", js->fps_num, 0) < 0))
		goto fail;
	rc = avformat_write_header(m->fc, &opts);
	av_dict_free(&opts);
	if (rc < 0) {
		rc = av_fail(err, errlen, rc, "avformat_write_header", path);
		goto fail;
	}
	avformat_close_input(&in);
	*out = m;
	return 0;
fail:
	if (rc == -ENOMEM && !err[0])
		egr_errf(err, errlen, "muxer for \"%s\": out of memory", path);
	avformat_close_input(&in);
	egr_video_mux_free(m);
	return rc;
}

/* Same codec, size and extradata as the first segment: the stream copy is one stream. */
static int same_setup(const AVCodecParameters *a, const AVCodecParameters *b)
{
	return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height &&
	       a->extradata_size == b->extradata_size &&
	       (!a->extradata_size || !memcmp(a->extradata, b->extradata, (size_t)a->extradata_size));
}

/* A segment timestamp in frames: 0, or -1 when it is off the frame grid */
static int to_frames(int64_t ts, AVRational tb, AVRational ftb, int64_t *f)
{
	if (ts == AV_NOPTS_VALUE)
		return -1;
	*f = av_rescale_q(ts, tb, ftb);
	return av_rescale_q(*f, ftb, tb) == ts ? 0 : -1;
}

/*
 * Copy one packet of the segment, its timestamps moved to the job's frame
 * grid.  pts: the segment's plus first.  dts: the packet's decode index
 * less the stream's reorder delay (the first packet's pts - dts), the
 * constant-rate sequence one encoder of the whole video would give.  Each
 * segment's own dts are that or later (a segment shorter than the delay
 * has none), and the decode index never passes a packet's pts by more than
 * the delay, which is checked.
 */
static int mux_packet(struct egr_video_mux *m, AVRational tb, uint64_t first, uint32_t nframes, const char *seg,
		      char *err, size_t errlen)
{
	AVPacket *p = m->pkt;
	AVStream *st = m->fc->streams[0];
	int64_t pts = -1, dts = -1;
	int rc;

	if (to_frames(p->pts, tb, m->ftb, &pts) < 0 || to_frames(p->dts, tb, m->ftb, &dts) < 0 || pts < 0 ||
	    pts >= nframes || dts > pts) {
		egr_errf(err, errlen, "internal error: segment \"%s\": packet pts %" PRId64 " dts %" PRId64
			 " is off its %" PRIu32 " frames", seg, p->pts, p->dts, nframes);
		return -EIO;
	}
	if (m->npkt == 0)
		m->delay = pts - dts;
	pts += (int64_t)first;
	dts = m->npkt - m->delay;
	if (dts > pts) {
		egr_errf(err, errlen, "internal error: segment \"%s\" reorders frame %" PRId64 " more than %" PRId64
			 " frames", seg, pts, m->delay);
		return -EIO;
	}
	m->npkt++;
	p->stream_index = 0;
	p->pts = av_rescale_q(pts, m->ftb, st->time_base);
	p->dts = av_rescale_q(dts, m->ftb, st->time_base);
	p->duration = av_rescale_q(1, m->ftb, st->time_base);
	p->pos = -1;
	rc = av_interleaved_write_frame(m->fc, p);
	return rc < 0 ? av_fail(err, errlen, rc, "write", m->fc->url) : 0;
}

int egr_video_mux_add(struct egr_video_mux *m, const char *segment, uint64_t first_frame, uint32_t nframes,
		      char *err, size_t errlen)
{
	AVFormatContext *in = NULL;
	uint32_t count = 0;
	int rc = open_segment(&in, segment, err, errlen);

	if (rc < 0)
		return rc;
	AVStream *ist = in->streams[0];
	if (!same_setup(m->par, ist->codecpar)) {
		egr_errf(err, errlen, "internal error: segment \"%s\" was encoded with another codec setup", segment);
		rc = -EIO;
		goto out;
	}
	while ((rc = av_read_frame(in, m->pkt)) >= 0) {
		if (++count > nframes) {
			av_packet_unref(m->pkt);
			break;
		}
		rc = mux_packet(m, ist->time_base, first_frame, nframes, segment, err, errlen);
		av_packet_unref(m->pkt);
		if (rc < 0)
			goto out;
	}
	if (rc != AVERROR_EOF && rc < 0 && count <= nframes) {
		rc = av_fail(err, errlen, rc, "read", segment);
	} else if (count != nframes) {
		egr_errf(err, errlen, "internal error: segment \"%s\" holds %s%" PRIu32 " frames, expected %" PRIu32,
			 segment, count > nframes ? "more than " : "", count > nframes ? nframes : count, nframes);
		rc = -EIO;
	} else {
		rc = 0;
	}
out:
	avformat_close_input(&in);
	return rc;
}

int egr_video_mux_finish(struct egr_video_mux *m, char *err, size_t errlen)
{
	return out_finish(m->fc, err, errlen);
}

void egr_video_mux_free(struct egr_video_mux *m)
{
	if (!m)
		return;
	out_free(m->fc);
	avcodec_parameters_free(&m->par);
	av_packet_free(&m->pkt);
	free(m);
}
