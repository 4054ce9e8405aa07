/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtio-video decoder and encoder on libavcodec: see virtio-video.h.
 *
 * Layouts are crosvm's devices/src/virtio/video/protocol.rs (the draft
 * specification's version 3, bindgen'd from virtio_video.h): each command
 * is struct virtio_video_cmd_hdr { le32 type; le32 stream_id; } then its
 * own struct. Requests are read as little-endian bytes at those offsets,
 * never cast: a request is only as long as the driver made it.
 *
 * A stream's life, as a guest driver runs it (V4L2's stateful decoder):
 * STREAM_CREATE with the coded format; input resources created and queued
 * with bitstream bytes, in chunks of any size (an AVCodecParserContext
 * splits them into packets); the first decoded frame (and any later change
 * of size) raises DECODER_RESOLUTION_CHANGED, the driver reads the output
 * params (GET_PARAMS) and creates and queues output resources; each
 * decoded frame is written as NV12 into the oldest queued output resource,
 * whose RESOURCE_QUEUE is then answered with the frame's timestamp.
 * STREAM_DRAIN decodes what is left, returns one more output resource
 * empty with the EOS flag, then answers the drain.
 *
 * The encoder (VirtioVideoOptions.encoder) swaps the queues' roles: NV12
 * frames in, one coded packet per output resource (section "the
 * encoder"); the commands and resources are the same code. */
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "video/virtio-video.h"

#define HDR VIRTIO_VIDEO_HDR_SIZE
/* Decoded frames a stream keeps at most: decoding input pauses at
 * MAX_PENDING_FRAMES; a drain may add the decoder's delayed frames. */
#define FRAME_RING 64
/* Bitstream bytes one input buffer may carry. */
#define MAX_INPUT_BYTES (64 * UINT64_C(1024) * 1024)
#define DEFAULT_INPUT_PLANE_SIZE (1024 * 1024)
#define SPARE_FRAMES 4
/* The encoder's coded packets waiting for an output buffer. */
#define PKT_RING 64
#define MAX_PENDING_PKTS 16
/* Input timestamps by frame number (pts), for the packets' answers. */
#define TS_RING 256
#define DEFAULT_BITRATE 1000000
#define MAX_BITRATE 1000000000u

typedef struct Entry {
        uint64_t gpa;
        uint32_t len;
        uint64_t start;         /* offset of its first byte in the resource */
} Entry;

typedef struct Buffer {
        uint32_t id;
        Entry *e;
        uint32_t n;
        uint64_t len;
        bool queued;            /* a RESOURCE_QUEUE waits for its answer */
        uint64_t tag, seq, timestamp;
        uint32_t data_size;     /* input: the bytes queued */
} Buffer;

typedef struct Frame {
        uint8_t *data;          /* NV12: Y then interleaved UV, stride ALIGN2(width) */
        size_t size;
        uint64_t timestamp;
} Frame;

typedef struct Params {
        uint32_t format, width, height, min_buffers, max_buffers;
        uint32_t crop[4];
        uint32_t frame_rate, num_planes;
        uint32_t plane_size[8], stride[8];
} Params;

typedef struct Stream {
        uint32_t id, coded_format;
        Params in, out;
        bool have_size;         /* a frame was decoded: out holds its size */
        Buffer bufs[2][VIRTIO_VIDEO_MAX_BUFFERS]; /* [0] input, [1] output */
        unsigned n_bufs[2];
        uint64_t seq;
        Frame frames[FRAME_RING];
        unsigned frame_head, n_frames;
        /* Delivered frames' buffers, kept for the next ones of the same
         * size (a fresh 3 MiB buffer per 1080p frame costs its page
         * faults every time). Not counted in mem_used: at most
         * SPARE_FRAMES of the current size. */
        uint8_t *spare[SPARE_FRAMES];
        size_t spare_size;
        unsigned n_spare;
        uint64_t mem_used;      /* the input copy and the frames */
        /* The input buffer being decoded (a host copy: its buffer went back). */
        uint8_t *in_data;
        size_t in_size, in_pos;
        int64_t in_pts;
        bool error;
        bool draining, flushed;
        uint64_t drain_tag;
        /* The encoder's: coded packets waiting, the controls, the input
         * timestamps of frames in flight by their pts. */
        AVPacket *pkts[PKT_RING];
        unsigned pkt_head, n_pkts;
        uint64_t ts[TS_RING];
        int64_t next_pts;
        uint32_t bitrate, bitrate_peak, bitrate_mode, profile, level, prepend;
        bool force_key;
        AVCodecContext *ctx;    /* the decoder's, or the encoder's once open */
        AVCodecParserContext *parser;
        AVPacket *pkt;
        AVFrame *frame;
        struct SwsContext *sws;
} Stream;

struct VirtioVideo {
        VirtioVideoOptions o;
        VirtioVideoRespond respond;
        void *ctx;
        const GuestMemory *mem; /* for the current call only */
        Stream *streams[VIRTIO_VIDEO_MAX_STREAMS];
        uint8_t events[VIRTIO_VIDEO_MAX_EVENTS][VIRTIO_VIDEO_EVENT_SIZE];
        unsigned event_head, n_events;
};

static void encoder_pump(VirtioVideo *v, Stream *s);
static void encoder_deliver(VirtioVideo *v, Stream *s);
static void pkts_clear(Stream *s);
static void encoder_close(Stream *s);

static const struct {
        uint32_t format;
        enum AVCodecID codec;
} codecs[] = {
        { VIRTIO_VIDEO_FORMAT_H264, AV_CODEC_ID_H264 },
        { VIRTIO_VIDEO_FORMAT_HEVC, AV_CODEC_ID_HEVC },
        { VIRTIO_VIDEO_FORMAT_VP8, AV_CODEC_ID_VP8 },
        { VIRTIO_VIDEO_FORMAT_VP9, AV_CODEC_ID_VP9 },
};

#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))

static enum AVCodecID codec_of(uint32_t format) {
        for (size_t i = 0; i < N_CODECS; i++)
                if (codecs[i].format == format)
                        return codecs[i].codec;
        return AV_CODEC_ID_NONE;
}

bool virtio_video_format_supported(uint32_t format) {
        enum AVCodecID id = codec_of(format);

        return id != AV_CODEC_ID_NONE && avcodec_find_decoder(id);
}

static const struct {
        uint32_t format;
        const char *name;
} encoders[] = {
        { VIRTIO_VIDEO_FORMAT_H264, "libx264" },
        { VIRTIO_VIDEO_FORMAT_HEVC, "libx265" },
        { VIRTIO_VIDEO_FORMAT_VP8, "libvpx" },
        { VIRTIO_VIDEO_FORMAT_VP9, "libvpx-vp9" },
};

static const char *encoder_name(uint32_t format) {
        for (size_t i = 0; i < ARRAY_SIZE(encoders); i++)
                if (encoders[i].format == format)
                        return encoders[i].name;
        return NULL;
}

bool virtio_video_encoder_format_supported(uint32_t format) {
        const char *name = encoder_name(format);

        return name && avcodec_find_encoder_by_name(name);
}

/* A coded format this device takes: decoded by the decoder, encoded by
 * the encoder. */
static bool coded_supported(const VirtioVideo *v, uint32_t format) {
        return v->o.encoder ? virtio_video_encoder_format_supported(format) : virtio_video_format_supported(format);
}

/* ---- responses and events ---- */

static void put_hdr(uint8_t *p, uint32_t type, uint32_t stream_id) {
        put_le32(p, type);
        put_le32(p + 4, stream_id);
}

static void respond_hdr(VirtioVideo *v, uint64_t tag, uint32_t type, uint32_t stream_id) {
        uint8_t r[HDR];

        put_hdr(r, type, stream_id);
        v->respond(v->ctx, tag, r, sizeof(r));
}

/* Answers a buffer's RESOURCE_QUEUE (struct virtio_video_resource_queue_resp). */
static void buffer_done(VirtioVideo *v, Stream *s, Buffer *b, uint64_t timestamp, uint32_t flags, uint32_t size) {
        uint8_t r[VIRTIO_VIDEO_RESOURCE_QUEUE_RESP_SIZE];

        if (!b->queued)
                return;
        b->queued = false;
        put_hdr(r, VIRTIO_VIDEO_RESP_OK_RESOURCE_QUEUE, s->id);
        put_le64(r + 8, timestamp);
        put_le32(r + 16, flags);
        put_le32(r + 20, size);
        v->respond(v->ctx, b->tag, r, sizeof(r));
}

static void event_push(VirtioVideo *v, uint32_t type, uint32_t stream_id) {
        uint8_t *e;

        /* Full (the driver posts no event buffers): the newest is dropped;
         * the stream's state says the same thing when asked. */
        if (v->n_events == VIRTIO_VIDEO_MAX_EVENTS)
                return;
        e = v->events[(v->event_head + v->n_events) % VIRTIO_VIDEO_MAX_EVENTS];
        put_le32(e, type);
        put_le32(e + 4, stream_id);
        v->n_events++;
}

bool virtio_video_has_event(const VirtioVideo *v) {
        return v->n_events > 0;
}

bool virtio_video_next_event(VirtioVideo *v, uint8_t ret[VIRTIO_VIDEO_EVENT_SIZE]) {
        if (v->n_events == 0)
                return false;
        memcpy(ret, v->events[v->event_head], VIRTIO_VIDEO_EVENT_SIZE);
        v->event_head = (v->event_head + 1) % VIRTIO_VIDEO_MAX_EVENTS;
        v->n_events--;
        return true;
}

/* ---- configuration ---- */

void virtio_video_config_read(const VirtioVideo *v, uint32_t offset, void *data, uint32_t size) {
        uint8_t c[VIRTIO_VIDEO_CONFIG_SIZE] = { 0 };

        (void) v;
        if (offset > VIRTIO_VIDEO_CONFIG_SIZE || size > VIRTIO_VIDEO_CONFIG_SIZE - offset)
                return;
        /* crosvm's build_config(): version 0, 1024, 1024, the back-end's name. */
        put_le32(c, 0);
        put_le32(c + 4, VIRTIO_VIDEO_MAX_CAPS_LENGTH);
        put_le32(c + 8, VIRTIO_VIDEO_MAX_RESP_LENGTH);
        memcpy(c + 12, "ffmpeg", 6);
        memcpy(data, c + offset, size);
}

/* ---- guest pages ---- */

/* Copies len bytes between the resource at offset off and host memory,
 * entry by entry through guest_read/guest_write (each range checked
 * again). The caller checked off + len <= b->len. */
static int buffer_rw(const VirtioVideo *v, const Buffer *b, uint64_t off, uint8_t *host, uint64_t len, bool write) {
        uint32_t lo = 0, hi = b->n;

        while (hi - lo > 1) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (b->e[mid].start <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        for (uint32_t i = lo; len > 0 && i < b->n; i++) {
                const Entry *e = &b->e[i];
                uint64_t in = off - e->start, n = MIN(len, e->len - in);
                int k;

                k = write ? guest_write(v->mem, e->gpa + in, host, n) : guest_read(v->mem, e->gpa + in, host, n);
                if (k < 0)
                        return k;
                host += n;
                off += n;
                len -= n;
        }
        return len == 0 ? 0 : -EFAULT;
}

/* ---- streams ---- */

static Stream *stream_find(VirtioVideo *v, uint32_t id) {
        for (unsigned i = 0; i < VIRTIO_VIDEO_MAX_STREAMS; i++)
                if (v->streams[i] && v->streams[i]->id == id)
                        return v->streams[i];
        return NULL;
}

static void params_default_in(Params *p, uint32_t format) {
        *p = (Params) { .format = format, .min_buffers = 1, .max_buffers = VIRTIO_VIDEO_MAX_BUFFERS, .num_planes = 1 };
        p->plane_size[0] = DEFAULT_INPUT_PLANE_SIZE;
}

/* NV12 of width x height: Y, stride ALIGN2(width), then UV at the same
 * stride, half the rows (rounded up). */
static void params_set_out(Params *p, uint32_t width, uint32_t height) {
        uint32_t stride = (width + 1) & ~1u;

        *p = (Params) { .format = VIRTIO_VIDEO_FORMAT_NV12, .width = width, .height = height, .min_buffers = 1,
                        .max_buffers = VIRTIO_VIDEO_MAX_BUFFERS, .crop = { 0, 0, width, height }, .num_planes = 2 };
        p->stride[0] = p->stride[1] = stride;
        p->plane_size[0] = stride * height;
        p->plane_size[1] = stride * ((height + 1) / 2);
}

static uint64_t params_frame_size(const Params *p) {
        return (uint64_t) p->plane_size[0] + p->plane_size[1];
}

static void spare_clear(Stream *s) {
        while (s->n_spare > 0)
                free(s->spare[--s->n_spare]);
}

/* A frame's buffer goes back to the spares (or is freed). */
static void frame_release(Stream *s, Frame *f) {
        s->mem_used -= f->size;
        if (f->size != s->spare_size) {
                spare_clear(s);
                s->spare_size = f->size;
        }
        if (s->n_spare < SPARE_FRAMES)
                s->spare[s->n_spare++] = f->data;
        else
                free(f->data);
        f->data = NULL;
}

static uint8_t *frame_alloc(Stream *s, size_t size) {
        if (s->n_spare > 0 && s->spare_size == size)
                return s->spare[--s->n_spare];
        return malloc(size);
}

static void frames_clear(Stream *s) {
        while (s->n_frames > 0) {
                Frame *f = &s->frames[s->frame_head];

                frame_release(s, f);
                s->frame_head = (s->frame_head + 1) % FRAME_RING;
                s->n_frames--;
        }
}

static void input_release(Stream *s) {
        s->mem_used -= s->in_size;
        free(s->in_data);
        s->in_data = NULL;
        s->in_size = s->in_pos = 0;
}

static void decoder_close(Stream *s) {
        av_parser_close(s->parser);
        s->parser = NULL;
        avcodec_free_context(&s->ctx);
}

static int decoder_open(const VirtioVideo *v, Stream *s) {
        const AVCodec *c = avcodec_find_decoder(codec_of(s->coded_format));

        if (!c)
                return -EOPNOTSUPP;
        s->ctx = avcodec_alloc_context3(c);
        if (!s->ctx)
                return -ENOMEM;
        s->ctx->thread_count = (int) MAX(v->o.threads, 1u);
        /* The decoder itself refuses a picture past the limit (the size
         * is checked again on every frame). */
        s->ctx->max_pixels = (int64_t) VIRTIO_VIDEO_MAX_DIMENSION * VIRTIO_VIDEO_MAX_DIMENSION;
        /* A damaged bitstream is an error the guest hears of, not a
         * picture concealed behind its back. */
        s->ctx->err_recognition = AV_EF_EXPLODE;
        if (avcodec_open2(s->ctx, c, NULL) < 0) {
                avcodec_free_context(&s->ctx);
                return -ENOMEM;
        }
        s->parser = av_parser_init(c->id);
        if (!s->parser) {
                avcodec_free_context(&s->ctx);
                return -ENOMEM;
        }
        return 0;
}

/* The decoder starts over (after a drain, a clear or an error): frames
 * and bytes not yet decoded are dropped. */
static int decoder_reset(const VirtioVideo *v, Stream *s) {
        decoder_close(s);
        input_release(s);
        s->flushed = false;
        s->error = false;
        return decoder_open(v, s);
}

static Buffer *buffer_find(Stream *s, unsigned q, uint32_t id) {
        for (unsigned i = 0; i < s->n_bufs[q]; i++)
                if (s->bufs[q][i].id == id)
                        return &s->bufs[q][i];
        return NULL;
}

/* The queued buffer of queue q queued first, or NULL. */
static Buffer *buffer_oldest(Stream *s, unsigned q) {
        Buffer *best = NULL;

        for (unsigned i = 0; i < s->n_bufs[q]; i++)
                if (s->bufs[q][i].queued && (!best || s->bufs[q][i].seq < best->seq))
                        best = &s->bufs[q][i];
        return best;
}

/* Every queued buffer of queue q goes back empty, flagged ERR. */
static void buffers_return(VirtioVideo *v, Stream *s, unsigned q) {
        for (unsigned i = 0; i < s->n_bufs[q]; i++)
                buffer_done(v, s, &s->bufs[q][i], s->bufs[q][i].timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
}

static void drain_answer(VirtioVideo *v, Stream *s, uint32_t type) {
        if (!s->draining)
                return;
        s->draining = false;
        respond_hdr(v, s->drain_tag, type, s->id);
}

/* The stream's bitstream could not be decoded: an ERROR event; input not
 * yet taken goes back flagged ERR and a drain fails. The stream refuses
 * input and drains until a QUEUE_CLEAR of its input (or its end). */
static void stream_fail(VirtioVideo *v, Stream *s) {
        if (s->error)
                return;
        s->error = true;
        input_release(s);
        buffers_return(v, s, 0);
        drain_answer(v, s, VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION);
        event_push(v, VIRTIO_VIDEO_EVENT_ERROR, s->id);
}

static void stream_free(VirtioVideo *v, Stream *s) {
        for (unsigned q = 0; q < 2; q++) {
                buffers_return(v, s, q);
                for (unsigned i = 0; i < s->n_bufs[q]; i++)
                        free(s->bufs[q][i].e);
        }
        drain_answer(v, s, VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION);
        frames_clear(s);
        spare_clear(s);
        pkts_clear(s);
        input_release(s);
        decoder_close(s);
        av_packet_free(&s->pkt);
        av_frame_free(&s->frame);
        sws_freeContext(s->sws);
        free(s);
}

/* A decoded picture: its size checked (a change raises
 * DECODER_RESOLUTION_CHANGED), converted to NV12 into a new pending frame. */
static int frame_take(VirtioVideo *v, Stream *s, const AVFrame *f) {
        uint32_t w = (uint32_t) f->width, h = (uint32_t) f->height;
        uint8_t *dst[4];
        int dst_stride[4];
        Params p;
        Frame *fr;

        if (f->width <= 0 || f->height <= 0 || w > VIRTIO_VIDEO_MAX_DIMENSION || h > VIRTIO_VIDEO_MAX_DIMENSION)
                return -EINVAL;
        if (s->n_frames == FRAME_RING)
                return -ENOBUFS;
        params_set_out(&p, w, h);
        if (!s->have_size || w != s->out.width || h != s->out.height) {
                s->out = p;
                s->have_size = true;
                event_push(v, VIRTIO_VIDEO_EVENT_DECODER_RESOLUTION_CHANGED, s->id);
        }
        fr = &s->frames[(s->frame_head + s->n_frames) % FRAME_RING];
        fr->size = params_frame_size(&p);
        if (fr->size > v->o.max_memory - s->mem_used)
                return -ENOMEM;
        fr->data = frame_alloc(s, fr->size);
        if (!fr->data)
                return -ENOMEM;
        fr->timestamp = f->pts == AV_NOPTS_VALUE ? 0 : (uint64_t) f->pts;
        dst[0] = fr->data;
        dst[1] = fr->data + p.plane_size[0];
        dst[2] = dst[3] = NULL;
        dst_stride[0] = dst_stride[1] = (int) p.stride[0];
        dst_stride[2] = dst_stride[3] = 0;
        if (f->format == AV_PIX_FMT_NV12) {
                av_image_copy_plane(dst[0], dst_stride[0], f->data[0], f->linesize[0], (int) w, (int) h);
                av_image_copy_plane(dst[1], dst_stride[1], f->data[1], f->linesize[1], (int) ((w + 1) & ~1u),
                                    (int) ((h + 1) / 2));
        } else {
                s->sws = sws_getCachedContext(s->sws, (int) w, (int) h, f->format, (int) w, (int) h, AV_PIX_FMT_NV12,
                                              SWS_BICUBIC, NULL, NULL, NULL);
                if (!s->sws ||
                    sws_scale(s->sws, (const uint8_t *const *) f->data, f->linesize, 0, (int) h, dst, dst_stride) < 0) {
                        free(fr->data);
                        fr->data = NULL;
                        return -EINVAL;
                }
        }
        s->mem_used += fr->size;
        s->n_frames++;
        return 0;
}

/* Sends one packet (NULL: end of stream) and takes every frame out. */
static int decode_packet(VirtioVideo *v, Stream *s, const AVPacket *pkt) {
        int r;

        r = avcodec_send_packet(s->ctx, pkt);
        if (r < 0 && r != AVERROR_EOF)
                return -EINVAL;
        for (;;) {
                r = avcodec_receive_frame(s->ctx, s->frame);
                if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
                        return 0;
                if (r < 0)
                        return -EINVAL;
                r = frame_take(v, s, s->frame);
                av_frame_unref(s->frame);
                if (r < 0)
                        return r;
        }
}

/* Takes the oldest queued input buffer: its bytes copied to the host, the
 * buffer answered (the guest may refill it). */
static int input_take(VirtioVideo *v, Stream *s, Buffer *b) {
        uint8_t *data = NULL;
        int r;

        if (b->data_size > v->o.max_memory - s->mem_used) {
                buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                return -ENOMEM;
        }
        if (b->data_size > 0) {
                /* The parsers and decoders read (never use) up to
                 * AV_INPUT_BUFFER_PADDING_SIZE bytes past the data: they
                 * must be there, and zero (libavcodec's avcodec.h). */
                data = calloc(1, (size_t) b->data_size + AV_INPUT_BUFFER_PADDING_SIZE);
                if (!data)
                        r = -ENOMEM;
                else
                        r = buffer_rw(v, b, 0, data, b->data_size, false);
                if (r < 0) {
                        free(data);
                        buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                        return r;
                }
        }
        s->in_data = data;
        s->in_size = b->data_size;
        s->in_pos = 0;
        s->in_pts = (int64_t) b->timestamp;
        s->mem_used += b->data_size;
        buffer_done(v, s, b, b->timestamp, 0, 0);
        return 0;
}

/* Frames into queued output buffers; then a finished drain's EOS buffer
 * and answer. */
static void deliver(VirtioVideo *v, Stream *s) {
        Buffer *b;

        while (s->n_frames > 0 && (b = buffer_oldest(s, 1))) {
                Frame *f = &s->frames[s->frame_head];

                /* Too small for the frame: back flagged ERR, the frame
                 * waits for the next one (after a resolution change the
                 * driver brings bigger ones). */
                if (b->len < f->size) {
                        buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                        continue;
                }
                if (buffer_rw(v, b, 0, f->data, f->size, true) < 0) {
                        buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                        continue;
                }
                buffer_done(v, s, b, f->timestamp, 0, (uint32_t) f->size);
                frame_release(s, f);
                s->frame_head = (s->frame_head + 1) % FRAME_RING;
                s->n_frames--;
        }
        if (s->draining && s->flushed && s->n_frames == 0 && (b = buffer_oldest(s, 1))) {
                buffer_done(v, s, b, 0, VIRTIO_VIDEO_BUFFER_FLAG_EOS, 0);
                drain_answer(v, s, VIRTIO_VIDEO_RESP_OK_NODATA);
                /* Ready for more input after the end of stream. */
                if (decoder_reset(v, s) < 0)
                        stream_fail(v, s);
        }
}

/* Decodes while there is input and room for frames. */
static void pump(VirtioVideo *v, Stream *s) {
        int r = 0;

        while (!s->error && s->n_frames < VIRTIO_VIDEO_MAX_PENDING_FRAMES) {
                Buffer *b;

                if (s->in_pos < s->in_size) {
                        uint8_t *out = NULL;
                        int out_size = 0, n;

                        n = av_parser_parse2(s->parser, s->ctx, &out, &out_size, s->in_data + s->in_pos,
                                             (int) MIN(s->in_size - s->in_pos, (size_t) INT32_MAX), s->in_pts,
                                             AV_NOPTS_VALUE, 0);
                        if (n < 0) {
                                r = -EINVAL;
                                break;
                        }
                        /* A parser that takes nothing and gives nothing
                         * would loop: the rest is dropped. */
                        s->in_pos = n == 0 && out_size == 0 ? s->in_size : s->in_pos + (size_t) n;
                        if (out_size > 0) {
                                s->pkt->data = out;
                                s->pkt->size = out_size;
                                s->pkt->pts = s->parser->pts;
                                s->pkt->dts = s->parser->dts;
                                r = decode_packet(v, s, s->pkt);
                                if (r < 0)
                                        break;
                        }
                        if (s->in_pos >= s->in_size)
                                input_release(s);
                        continue;
                }
                b = buffer_oldest(s, 0);
                if (b) {
                        r = input_take(v, s, b);
                        if (r < 0)
                                break;
                        continue;
                }
                if (s->draining && !s->flushed) {
                        uint8_t *out = NULL;
                        int out_size = 0;

                        /* What the parser still holds, then the
                         * decoder's delayed frames. */
                        av_parser_parse2(s->parser, s->ctx, &out, &out_size, NULL, 0, AV_NOPTS_VALUE, AV_NOPTS_VALUE,
                                         0);
                        if (out_size > 0) {
                                s->pkt->data = out;
                                s->pkt->size = out_size;
                                s->pkt->pts = s->parser->pts;
                                s->pkt->dts = s->parser->dts;
                                r = decode_packet(v, s, s->pkt);
                                if (r < 0)
                                        break;
                        }
                        r = decode_packet(v, s, NULL);
                        if (r < 0)
                                break;
                        s->flushed = true;
                }
                break;
        }
        if (r < 0)
                stream_fail(v, s);
}

static void stream_run(VirtioVideo *v, Stream *s) {
        if (v->o.encoder) {
                for (;;) {
                        unsigned before = s->n_pkts;
                        bool had_input = buffer_oldest(s, 0) != NULL;

                        encoder_pump(v, s);
                        encoder_deliver(v, s);
                        if (s->error || s->n_pkts >= before || !had_input)
                                break;
                }
                return;
        }
        for (;;) {
                unsigned before = s->n_frames;
                bool had_input = s->in_pos < s->in_size || buffer_oldest(s, 0);

                pump(v, s);
                deliver(v, s);
                /* Delivering made room, and there is more to decode. */
                if (s->error || s->n_frames >= before || !had_input || s->n_frames >= VIRTIO_VIDEO_MAX_PENDING_FRAMES)
                        break;
        }
}

/* ---- the encoder ---- */

static void pkts_clear(Stream *s) {
        while (s->n_pkts > 0) {
                AVPacket *p = s->pkts[s->pkt_head];

                s->mem_used -= (uint64_t) p->size;
                av_packet_free(&s->pkts[s->pkt_head]);
                s->pkt_head = (s->pkt_head + 1) % PKT_RING;
                s->n_pkts--;
        }
}

static void encoder_close(Stream *s) {
        avcodec_free_context(&s->ctx);
        sws_freeContext(s->sws);
        s->sws = NULL;
}

/* virtio-video's H.264 level (256 = 1.0 ... 270 = 5.1) as level_idc. */
static int h264_level_idc(uint32_t level) {
        static const int idc[] = { 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51 };

        return level >= 256 && level <= 270 ? idc[level - 256] : -1;
}

/* Opened at the first input frame, with the params and controls then. */
static int encoder_open(const VirtioVideo *v, Stream *s) {
        const AVCodec *c = avcodec_find_encoder_by_name(encoder_name(s->coded_format));
        AVDictionary *opts = NULL;
        int r;

        if (!c)
                return -EOPNOTSUPP;
        s->ctx = avcodec_alloc_context3(c);
        if (!s->ctx)
                return -ENOMEM;
        s->ctx->width = (int) s->in.width;
        s->ctx->height = (int) s->in.height;
        s->ctx->time_base = (AVRational) { 1, (int) s->in.frame_rate };
        s->ctx->framerate = (AVRational) { (int) s->in.frame_rate, 1 };
        s->ctx->pix_fmt = AV_PIX_FMT_YUV420P;
        for (const enum AVPixelFormat *f = c->pix_fmts; f && *f != AV_PIX_FMT_NONE; f++)
                if (*f == AV_PIX_FMT_NV12)
                        s->ctx->pix_fmt = AV_PIX_FMT_NV12;
        s->ctx->bit_rate = s->bitrate;
        if (s->bitrate_mode == 1) { /* VIRTIO_VIDEO_BITRATE_MODE_CBR */
                s->ctx->rc_min_rate = s->ctx->rc_max_rate = s->bitrate;
                s->ctx->rc_buffer_size = (int) MIN(s->bitrate, (uint32_t) INT32_MAX);
        } else if (s->bitrate_peak > s->bitrate) {
                s->ctx->rc_max_rate = s->bitrate_peak;
                s->ctx->rc_buffer_size = (int) MIN(s->bitrate_peak, (uint32_t) INT32_MAX);
        }
        /* A key frame every second; no B-frames: every frame's packet
         * comes out in order, as a guest's V4L2 encoder expects. */
        s->ctx->gop_size = (int) s->in.frame_rate;
        s->ctx->max_b_frames = 0;
        s->ctx->thread_count = (int) MAX(v->o.threads, 1u);
        switch (s->coded_format) {
        case VIRTIO_VIDEO_FORMAT_H264:
                av_dict_set(&opts, "preset", "veryfast", 0);
                av_dict_set(&opts, "tune", "zerolatency", 0);
                av_dict_set(&opts, "forced-idr", "1", 0);
                av_dict_set(&opts, "profile", s->profile == 256 ? "baseline" : s->profile == 257 ? "main" : "high", 0);
                s->ctx->level = h264_level_idc(s->level);
                break;
        case VIRTIO_VIDEO_FORMAT_HEVC:
                av_dict_set(&opts, "preset", "veryfast", 0);
                av_dict_set(&opts, "tune", "zerolatency", 0);
                av_dict_set(&opts, "forced-idr", "1", 0);
                av_dict_set(&opts, "x265-params", "log-level=none", 0);
                break;
        default:
                av_dict_set(&opts, "deadline", "realtime", 0);
                av_dict_set(&opts, "cpu-used", "8", 0);
                av_dict_set(&opts, "lag-in-frames", "0", 0);
                break;
        }
        r = avcodec_open2(s->ctx, c, &opts);
        av_dict_free(&opts);
        if (r < 0) {
                avcodec_free_context(&s->ctx);
                return -EINVAL;
        }
        return 0;
}

/* Every packet the encoder has ready, into the ring. */
static int encoder_receive(Stream *s) {
        for (;;) {
                AVPacket *p;
                int r;

                if (s->n_pkts == PKT_RING)
                        return -ENOBUFS;
                p = av_packet_alloc();
                if (!p)
                        return -ENOMEM;
                r = avcodec_receive_packet(s->ctx, p);
                if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) {
                        av_packet_free(&p);
                        return 0;
                }
                if (r < 0) {
                        av_packet_free(&p);
                        return -EINVAL;
                }
                s->mem_used += (uint64_t) p->size;
                s->pkts[(s->pkt_head + s->n_pkts) % PKT_RING] = p;
                s->n_pkts++;
        }
}

/* The oldest queued input buffer: one NV12 frame at the input params'
 * layout, read from the guest, encoded; the buffer answered. */
static int encode_input(VirtioVideo *v, Stream *s, Buffer *b) {
        const uint64_t size = params_frame_size(&s->in);
        const int w = (int) s->in.width, h = (int) s->in.height, stride = (int) s->in.stride[0];
        const uint8_t *src[4];
        int src_stride[4] = { stride, stride, 0, 0 };
        uint8_t *data;
        AVFrame *f;
        int r;

        /* Too small for a frame of the params: back flagged ERR. */
        if (b->len < size) {
                buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                return 0;
        }
        if (!s->ctx) {
                r = encoder_open(v, s);
                if (r < 0) {
                        buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                        return r;
                }
        }
        if (size > v->o.max_memory - s->mem_used)
                return -ENOMEM;
        data = malloc(size);
        if (!data)
                return -ENOMEM;
        f = av_frame_alloc();
        r = f ? buffer_rw(v, b, 0, data, size, false) : -ENOMEM;
        if (r >= 0) {
                f->format = s->ctx->pix_fmt;
                f->width = w;
                f->height = h;
                r = av_frame_get_buffer(f, 0) < 0 ? -ENOMEM : 0;
        }
        if (r >= 0) {
                src[0] = data;
                src[1] = data + s->in.plane_size[0];
                src[2] = src[3] = NULL;
                if (f->format == AV_PIX_FMT_NV12) {
                        av_image_copy_plane(f->data[0], f->linesize[0], src[0], stride, w, h);
                        av_image_copy_plane(f->data[1], f->linesize[1], src[1], stride, (w + 1) & ~1, (h + 1) / 2);
                } else {
                        s->sws = sws_getCachedContext(s->sws, w, h, AV_PIX_FMT_NV12, w, h, f->format, SWS_BICUBIC,
                                                      NULL, NULL, NULL);
                        if (!s->sws || sws_scale(s->sws, src, src_stride, 0, h, f->data, f->linesize) < 0)
                                r = -EINVAL;
                }
        }
        free(data);
        if (r < 0) {
                av_frame_free(&f);
                buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                return r == -EFAULT ? 0 : r;
        }
        f->pts = s->next_pts++;
        s->ts[f->pts % TS_RING] = b->timestamp;
        if (s->force_key) {
                /* libx264 (forced-idr) and libvpx make it a key frame. */
                f->pict_type = AV_PICTURE_TYPE_I;
                s->force_key = false;
        }
        r = avcodec_send_frame(s->ctx, f);
        av_frame_free(&f);
        buffer_done(v, s, b, b->timestamp, 0, 0);
        if (r < 0)
                return -EINVAL;
        return encoder_receive(s);
}

static void encoder_pump(VirtioVideo *v, Stream *s) {
        int r = 0;

        while (!s->error && s->n_pkts < MAX_PENDING_PKTS) {
                Buffer *b = buffer_oldest(s, 0);

                if (b) {
                        r = encode_input(v, s, b);
                        if (r < 0)
                                break;
                        continue;
                }
                if (s->draining && !s->flushed) {
                        if (s->ctx) {
                                r = avcodec_send_frame(s->ctx, NULL) < 0 ? -EINVAL : encoder_receive(s);
                                if (r < 0)
                                        break;
                        }
                        s->flushed = true;
                }
                break;
        }
        if (r < 0)
                stream_fail(v, s);
}

/* Packets into queued output buffers (flags IFRAME or PFRAME, the
 * timestamp of the frame they code); then a finished drain's EOS. */
static void encoder_deliver(VirtioVideo *v, Stream *s) {
        Buffer *b;

        while (s->n_pkts > 0 && (b = buffer_oldest(s, 1))) {
                AVPacket *p = s->pkts[s->pkt_head];

                if (b->len < (uint64_t) p->size || buffer_rw(v, b, 0, p->data, (uint64_t) p->size, true) < 0) {
                        buffer_done(v, s, b, b->timestamp, VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0);
                        continue;
                }
                buffer_done(v, s, b, p->pts >= 0 ? s->ts[p->pts % TS_RING] : 0,
                            (p->flags & AV_PKT_FLAG_KEY) ? VIRTIO_VIDEO_BUFFER_FLAG_IFRAME
                                                         : VIRTIO_VIDEO_BUFFER_FLAG_PFRAME,
                            (uint32_t) p->size);
                s->mem_used -= (uint64_t) p->size;
                av_packet_free(&s->pkts[s->pkt_head]);
                s->pkt_head = (s->pkt_head + 1) % PKT_RING;
                s->n_pkts--;
        }
        if (s->draining && s->flushed && s->n_pkts == 0 && (b = buffer_oldest(s, 1))) {
                buffer_done(v, s, b, 0, VIRTIO_VIDEO_BUFFER_FLAG_EOS, 0);
                drain_answer(v, s, VIRTIO_VIDEO_RESP_OK_NODATA);
                /* The next frame opens the encoder afresh. */
                encoder_close(s);
                s->flushed = false;
        }
}

/* ---- commands ---- */

typedef struct Request {
        const uint8_t *p;
        size_t len;
        uint32_t stream_id;
        uint64_t tag;
} Request;

/* The encoder's params: NV12 of width x height in, the coded format out
 * (one plane: a buffer for a packet, suggested as big as a raw frame). */
static void encoder_params(Stream *s, uint32_t width, uint32_t height, uint32_t frame_rate) {
        params_set_out(&s->in, width, height);
        s->in.frame_rate = frame_rate;
        s->out = (Params) { .format = s->coded_format, .width = width, .height = height, .min_buffers = 1,
                            .max_buffers = VIRTIO_VIDEO_MAX_BUFFERS, .crop = { 0, 0, width, height },
                            .frame_rate = frame_rate, .num_planes = 1 };
        s->out.plane_size[0] = (uint32_t) MAX(params_frame_size(&s->in), (uint64_t) 64 * 1024);
}

static uint32_t control_default_profile(uint32_t format) {
        switch (format) {
        case VIRTIO_VIDEO_FORMAT_H264:
                return 257; /* main */
        case VIRTIO_VIDEO_FORMAT_HEVC:
                return 512;
        case VIRTIO_VIDEO_FORMAT_VP8:
                return 768;
        default:
                return 1024;
        }
}

static uint32_t cmd_stream_create(VirtioVideo *v, const Request *rq) {
        uint32_t in_mem, out_mem, format;
        unsigned slot = VIRTIO_VIDEO_MAX_STREAMS;
        Stream *s;

        /* struct virtio_video_stream_create: in_mem_type, out_mem_type,
         * coded_format, padding, tag[64]. */
        if (rq->len < HDR + 16)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        in_mem = get_le32(rq->p + HDR);
        out_mem = get_le32(rq->p + HDR + 4);
        format = get_le32(rq->p + HDR + 8);
        if (stream_find(v, rq->stream_id))
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        /* Guest pages only: VIRTIO_OBJECT is not offered. */
        if (in_mem != VIRTIO_VIDEO_MEM_TYPE_GUEST_PAGES || out_mem != VIRTIO_VIDEO_MEM_TYPE_GUEST_PAGES)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        if (!coded_supported(v, format))
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        for (unsigned i = 0; i < VIRTIO_VIDEO_MAX_STREAMS; i++)
                if (!v->streams[i]) {
                        slot = i;
                        break;
                }
        if (slot == VIRTIO_VIDEO_MAX_STREAMS)
                return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
        s = calloc(1, sizeof(*s));
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
        s->id = rq->stream_id;
        s->coded_format = format;
        s->pkt = av_packet_alloc();
        s->frame = av_frame_alloc();
        if (v->o.encoder) {
                /* NV12 in at 320x240, 30 frames/s until the driver says
                 * otherwise; the encoder opens at the first frame. */
                encoder_params(s, 320, 240, 30);
                s->bitrate = s->bitrate_peak = DEFAULT_BITRATE;
                s->profile = control_default_profile(format);
                s->level = format == VIRTIO_VIDEO_FORMAT_H264 ? 266 /* 4.0 */ : 0;
                s->prepend = 1;
                if (!s->pkt || !s->frame) {
                        stream_free(v, s);
                        return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
                }
                v->streams[slot] = s;
                return VIRTIO_VIDEO_RESP_OK_NODATA;
        }
        params_default_in(&s->in, format);
        params_set_out(&s->out, 0, 0);
        if (!s->pkt || !s->frame || decoder_open(v, s) < 0) {
                stream_free(v, s);
                return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
        }
        v->streams[slot] = s;
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

static uint32_t cmd_stream_destroy(VirtioVideo *v, const Request *rq) {
        for (unsigned i = 0; i < VIRTIO_VIDEO_MAX_STREAMS; i++)
                if (v->streams[i] && v->streams[i]->id == rq->stream_id) {
                        Stream *s = v->streams[i];

                        v->streams[i] = NULL;
                        stream_free(v, s);
                        return VIRTIO_VIDEO_RESP_OK_NODATA;
                }
        return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
}

/* 0 (input) or 1 (output), or -1. */
static int queue_index(uint32_t queue_type) {
        return queue_type == VIRTIO_VIDEO_QUEUE_TYPE_INPUT ? 0 : queue_type == VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT ? 1 : -1;
}

static uint32_t cmd_resource_create(VirtioVideo *v, const Request *rq) {
        uint32_t id, layout, n_planes, n;
        uint64_t total = 0;
        Stream *s;
        Entry *e;
        int q;

        /* struct virtio_video_resource_create: queue_type, resource_id,
         * planes_layout, num_planes, plane_offsets[8], num_entries[8]; then
         * the entries (struct virtio_video_mem_entry: le64 addr, le32
         * length, padding). */
        if (rq->len < HDR + 80)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        s = stream_find(v, rq->stream_id);
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        q = queue_index(get_le32(rq->p + HDR));
        id = get_le32(rq->p + HDR + 4);
        layout = get_le32(rq->p + HDR + 8);
        n_planes = get_le32(rq->p + HDR + 12);
        n = get_le32(rq->p + HDR + 48);
        if (q < 0)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        /* One buffer holding every plane, as crosvm takes them. */
        if (layout != VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER || n_planes != 1 || get_le32(rq->p + HDR + 16) != 0)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        if (buffer_find(s, (unsigned) q, id))
                return VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID;
        if (s->n_bufs[q] == VIRTIO_VIDEO_MAX_BUFFERS)
                return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
        if (n == 0 || n > VIRTIO_VIDEO_MAX_ENTRIES)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        /* The entries must all have come with the request. */
        if ((uint64_t) (rq->len - HDR - 80) < (uint64_t) n * 16)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        e = calloc(n, sizeof(*e));
        if (!e)
                return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *m = rq->p + HDR + 80 + (size_t) i * 16;

                e[i] = (Entry) { .gpa = get_le64(m), .len = get_le32(m + 8), .start = total };
                /* Each entry a non-empty range of guest RAM, not wrapping
                 * (guest_range_check refuses both), as the GPU checks its
                 * backing. */
                if (e[i].len == 0 || guest_range_check(v->mem, e[i].gpa, e[i].len) < 0) {
                        free(e);
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                }
                total += e[i].len; /* at most 4096 * 2^32: no overflow */
        }
        s->bufs[q][s->n_bufs[q]++] = (Buffer) { .id = id, .e = e, .n = n, .len = total };
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

/* Answers itself when accepted (later); returns 0 then, or the error. */
static uint32_t cmd_resource_queue(VirtioVideo *v, const Request *rq) {
        uint32_t n_sizes, size0;
        Stream *s;
        Buffer *b;
        int q;

        /* struct virtio_video_resource_queue: queue_type, resource_id,
         * le64 timestamp, num_data_sizes, data_sizes[8], padding. */
        if (rq->len < HDR + 56)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        s = stream_find(v, rq->stream_id);
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        q = queue_index(get_le32(rq->p + HDR));
        if (q < 0)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        b = buffer_find(s, (unsigned) q, get_le32(rq->p + HDR + 4));
        if (!b)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID;
        /* Queued twice before its answer. */
        if (b->queued)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID;
        n_sizes = get_le32(rq->p + HDR + 16);
        size0 = get_le32(rq->p + HDR + 20);
        if (q == 0) {
                /* A failed stream takes no input until a clear; nor
                 * during a drain. */
                if (s->error || s->draining)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION;
                /* The encoder reads one frame at the input params' layout. */
                if (v->o.encoder) {
                        if (n_sizes > 8)
                                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                } else if (n_sizes != 1 || size0 > b->len || size0 > MAX_INPUT_BYTES)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                b->data_size = size0;
        } else if (n_sizes > 8) {
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        }
        b->queued = true;
        b->tag = rq->tag;
        b->seq = s->seq++;
        b->timestamp = get_le64(rq->p + HDR + 8);
        stream_run(v, s);
        return 0;
}

static uint32_t cmd_stream_drain(VirtioVideo *v, const Request *rq) {
        Stream *s = stream_find(v, rq->stream_id);

        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        /* One drain at a time; none on a failed stream. */
        if (s->draining || s->error)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION;
        s->draining = true;
        s->flushed = false;
        s->drain_tag = rq->tag;
        stream_run(v, s);
        return 0;
}

static uint32_t cmd_destroy_all(VirtioVideo *v, const Request *rq) {
        Stream *s;
        int q;

        /* struct virtio_video_resource_destroy_all: queue_type, padding. */
        if (rq->len < HDR + 8)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        s = stream_find(v, rq->stream_id);
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        q = queue_index(get_le32(rq->p + HDR));
        if (q < 0)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        buffers_return(v, s, (unsigned) q);
        for (unsigned i = 0; i < s->n_bufs[q]; i++)
                free(s->bufs[q][i].e);
        s->n_bufs[q] = 0;
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

static uint32_t cmd_queue_clear(VirtioVideo *v, const Request *rq) {
        Stream *s;
        int q;

        /* struct virtio_video_queue_clear: queue_type, padding. */
        if (rq->len < HDR + 8)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        s = stream_find(v, rq->stream_id);
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        q = queue_index(get_le32(rq->p + HDR));
        if (q < 0)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        buffers_return(v, s, (unsigned) q);
        if (q == 0 && v->o.encoder) {
                /* The encoder starts over at the next frame. */
                drain_answer(v, s, VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION);
                pkts_clear(s);
                encoder_close(s);
                s->flushed = false;
                s->error = false;
        } else if (q == 0) {
                /* A seek: the decoder starts over, a drain is cancelled,
                 * a failed stream may be fed again. */
                drain_answer(v, s, VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION);
                frames_clear(s);
                if (decoder_reset(v, s) < 0) {
                        s->error = false;
                        stream_fail(v, s);
                }
        }
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

static void params_write(const Params *p, uint32_t queue_type, uint8_t *o) {
        put_le32(o, queue_type);
        put_le32(o + 4, p->format);
        put_le32(o + 8, p->width);
        put_le32(o + 12, p->height);
        put_le32(o + 16, p->min_buffers);
        put_le32(o + 20, p->max_buffers);
        for (unsigned i = 0; i < 4; i++)
                put_le32(o + 24 + 4 * i, p->crop[i]);
        put_le32(o + 40, p->frame_rate);
        put_le32(o + 44, p->num_planes);
        for (unsigned i = 0; i < 8; i++) {
                put_le32(o + 48 + 8 * i, p->plane_size[i]);
                put_le32(o + 52 + 8 * i, p->stride[i]);
        }
}

static uint32_t cmd_get_params(VirtioVideo *v, const Request *rq, uint8_t *resp) {
        Stream *s;
        int q;

        /* struct virtio_video_get_params: queue_type, padding. */
        if (rq->len < HDR + 8)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        s = stream_find(v, rq->stream_id);
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        q = queue_index(get_le32(rq->p + HDR));
        if (q < 0)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        params_write(q == 0 ? &s->in : &s->out, get_le32(rq->p + HDR), resp + HDR);
        return VIRTIO_VIDEO_RESP_OK_GET_PARAMS;
}

/* SET_PARAMS of the encoder: input NV12 of 16..4096 squared at 1..240
 * frames/s (0: unchanged); output a coded format it encodes. Neither
 * while the encoder is open (it opens at the first frame, closes at the
 * end of a drain or a clear). */
static uint32_t encoder_set_params(Stream *s, int q, const uint8_t *p) {
        uint32_t format = get_le32(p + 4), width = get_le32(p + 8), height = get_le32(p + 12);
        uint32_t rate = get_le32(p + 40), plane_size = get_le32(p + 48);

        if (q == 0) {
                if (format != VIRTIO_VIDEO_FORMAT_NV12 || width < 16 || height < 16 || rate > 240)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                if (s->ctx)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION;
                encoder_params(s, width, height, rate ? rate : s->in.frame_rate);
                return VIRTIO_VIDEO_RESP_OK_NODATA;
        }
        if (!virtio_video_encoder_format_supported(format))
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        if (format != s->coded_format) {
                if (s->ctx)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION;
                s->coded_format = format;
                s->profile = control_default_profile(format);
                s->level = format == VIRTIO_VIDEO_FORMAT_H264 ? 266 : 0;
                s->out.format = format;
        }
        if (plane_size > 0 && plane_size <= MAX_INPUT_BYTES)
                s->out.plane_size[0] = plane_size;
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

static uint32_t cmd_set_params(VirtioVideo *v, const Request *rq) {
        const uint8_t *p = rq->p + HDR;
        uint32_t format, width, height, plane_size;
        Stream *s;
        int q;

        /* struct virtio_video_set_params: struct virtio_video_params. */
        if (rq->len < HDR + VIRTIO_VIDEO_PARAMS_SIZE)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        s = stream_find(v, rq->stream_id);
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        q = queue_index(get_le32(p));
        format = get_le32(p + 4);
        width = get_le32(p + 8);
        height = get_le32(p + 12);
        plane_size = get_le32(p + 48);
        if (q < 0 || width > VIRTIO_VIDEO_MAX_DIMENSION || height > VIRTIO_VIDEO_MAX_DIMENSION)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        if (v->o.encoder)
                return encoder_set_params(s, q, p);
        if (q == 1) {
                /* The decoder decides the picture's size; the driver may
                 * only confirm NV12. */
                if (format != VIRTIO_VIDEO_FORMAT_NV12)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                return VIRTIO_VIDEO_RESP_OK_NODATA;
        }
        if (!virtio_video_format_supported(format))
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        /* Another coded format: only before any input was queued. */
        if (format != s->coded_format) {
                if (s->in_data || buffer_oldest(s, 0) || s->draining)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION;
                s->coded_format = format;
                if (decoder_reset(v, s) < 0) {
                        stream_fail(v, s);
                        return VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY;
                }
        }
        s->in.format = format;
        s->in.width = width;
        s->in.height = height;
        if (plane_size > 0 && plane_size <= MAX_INPUT_BYTES)
                s->in.plane_size[0] = plane_size;
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

/* Profiles and levels FFmpeg decodes to 8-bit 4:2:0 (what NV12 holds). */
static const uint32_t h264_profiles[] = { 256, 257, 258, 259 };
static const uint32_t hevc_profiles[] = { 512 };
static const uint32_t vp8_profiles[] = { 768 };
static const uint32_t vp9_profiles[] = { 1024 };
static const uint32_t h264_levels[] = { 256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270 };

/* libx264 makes baseline, main and high. */
static const uint32_t h264_enc_profiles[] = { 256, 257, 259 };

static size_t control_values(const VirtioVideo *v, uint32_t control, uint32_t format, const uint32_t **ret) {
        if (!coded_supported(v, format))
                return 0;
        if (control == VIRTIO_VIDEO_CONTROL_PROFILE)
                switch (format) {
                case VIRTIO_VIDEO_FORMAT_H264:
                        if (v->o.encoder)
                                return *ret = h264_enc_profiles, ARRAY_SIZE(h264_enc_profiles);
                        return *ret = h264_profiles, ARRAY_SIZE(h264_profiles);
                case VIRTIO_VIDEO_FORMAT_HEVC:
                        return *ret = hevc_profiles, ARRAY_SIZE(hevc_profiles);
                case VIRTIO_VIDEO_FORMAT_VP8:
                        return *ret = vp8_profiles, ARRAY_SIZE(vp8_profiles);
                case VIRTIO_VIDEO_FORMAT_VP9:
                        return *ret = vp9_profiles, ARRAY_SIZE(vp9_profiles);
                }
        if (control == VIRTIO_VIDEO_CONTROL_LEVEL && format == VIRTIO_VIDEO_FORMAT_H264)
                return *ret = h264_levels, ARRAY_SIZE(h264_levels);
        return 0;
}

static uint32_t cmd_query_control(const VirtioVideo *v, const Request *rq, uint8_t *resp, size_t *ret_len) {
        const uint32_t *vals = NULL;
        size_t n;

        /* struct virtio_video_query_control: control, padding; then
         * virtio_video_query_control_{profile,level}: format, padding. */
        if (rq->len < HDR + 16)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        n = control_values(v, get_le32(rq->p + HDR), get_le32(rq->p + HDR + 8), &vals);
        if (n == 0)
                return VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
        /* virtio_video_query_control_resp_{profile,level}: num, padding,
         * then num le32. */
        put_le32(resp + HDR, (uint32_t) n);
        put_le32(resp + HDR + 4, 0);
        for (size_t i = 0; i < n; i++)
                put_le32(resp + HDR + 8 + 4 * i, vals[i]);
        *ret_len = HDR + 8 + 4 * n;
        return VIRTIO_VIDEO_RESP_OK_QUERY_CONTROL;
}

static bool value_in(uint32_t value, const uint32_t *vals, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (vals[i] == value)
                        return true;
        return false;
}

/* The encoder's controls (struct virtio_video_get_control: control,
 * padding; the answer virtio_video_get_control_resp then the value, le32
 * and padding). */
static uint32_t cmd_get_control(VirtioVideo *v, const Request *rq, uint8_t *resp) {
        Stream *s = stream_find(v, rq->stream_id);
        uint32_t value;

        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        switch (get_le32(rq->p + HDR)) {
        case VIRTIO_VIDEO_CONTROL_BITRATE:
                value = s->bitrate;
                break;
        case VIRTIO_VIDEO_CONTROL_BITRATE_PEAK:
                value = s->bitrate_peak;
                break;
        case VIRTIO_VIDEO_CONTROL_BITRATE_MODE:
                value = s->bitrate_mode;
                break;
        case VIRTIO_VIDEO_CONTROL_PROFILE:
                value = s->profile;
                break;
        case VIRTIO_VIDEO_CONTROL_LEVEL:
                if (s->coded_format != VIRTIO_VIDEO_FORMAT_H264)
                        return VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
                value = s->level;
                break;
        case VIRTIO_VIDEO_CONTROL_PREPEND_SPSPPS_TO_IDR:
                value = s->prepend;
                break;
        default:
                return VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
        }
        put_le32(resp + HDR, value);
        put_le32(resp + HDR + 4, 0);
        return VIRTIO_VIDEO_RESP_OK_GET_CONTROL;
}

/* struct virtio_video_set_control: control, padding, then the value's
 * struct (le32, padding). Bitrate, peak, mode, profile and level take
 * effect when the encoder next opens (the first frame after a drain or a
 * clear); a key frame request at the next frame. */
static uint32_t cmd_set_control(VirtioVideo *v, const Request *rq) {
        Stream *s = stream_find(v, rq->stream_id);
        const uint32_t *vals = NULL;
        uint32_t control, value;
        size_t n;

        if (rq->len < HDR + 16)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        if (!s)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID;
        control = get_le32(rq->p + HDR);
        value = get_le32(rq->p + HDR + 8);
        switch (control) {
        case VIRTIO_VIDEO_CONTROL_BITRATE:
        case VIRTIO_VIDEO_CONTROL_BITRATE_PEAK:
                if (value == 0 || value > MAX_BITRATE)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                *(control == VIRTIO_VIDEO_CONTROL_BITRATE ? &s->bitrate : &s->bitrate_peak) = value;
                break;
        case VIRTIO_VIDEO_CONTROL_BITRATE_MODE:
                if (value > 1) /* VBR, CBR */
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                s->bitrate_mode = value;
                break;
        case VIRTIO_VIDEO_CONTROL_PROFILE:
        case VIRTIO_VIDEO_CONTROL_LEVEL:
                n = control_values(v, control, s->coded_format, &vals);
                if (n == 0)
                        return VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
                if (!value_in(value, vals, n))
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                *(control == VIRTIO_VIDEO_CONTROL_PROFILE ? &s->profile : &s->level) = value;
                break;
        case VIRTIO_VIDEO_CONTROL_FORCE_KEYFRAME:
                s->force_key = true;
                break;
        case VIRTIO_VIDEO_CONTROL_PREPEND_SPSPPS_TO_IDR:
                /* libx264 and libx265 put the parameter sets before every
                 * IDR anyway (their repeat-headers default): only 1. */
                if (value != 1)
                        return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                break;
        default:
                return VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
        }
        return VIRTIO_VIDEO_RESP_OK_NODATA;
}

/* The coded formats the device takes (decoded, or encoded), in order. */
static size_t coded_formats(const VirtioVideo *v, uint32_t formats[N_CODECS]) {
        size_t n = 0;

        for (size_t i = 0; i < N_CODECS; i++)
                if (coded_supported(v, codecs[i].format))
                        formats[n++] = codecs[i].format;
        return n;
}

static size_t capability(const VirtioVideo *v, uint32_t queue_type, uint8_t *resp) {
        uint32_t formats[N_CODECS];
        size_t n_coded = coded_formats(v, formats), n = n_coded, off;
        /* The raw side: the decoder's output, the encoder's input. */
        bool raw = (queue_type == VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT) != v->o.encoder;

        if (raw) {
                formats[0] = VIRTIO_VIDEO_FORMAT_NV12;
                n = 1;
        }
        off = HDR + 8;
        if (resp) {
                put_hdr(resp, VIRTIO_VIDEO_RESP_OK_QUERY_CAPABILITY, 0);
                put_le32(resp + HDR, (uint32_t) n);
                put_le32(resp + HDR + 4, 0);
        }
        for (size_t i = 0; i < n; i++) {
                if (resp) {
                        uint8_t *d = resp + off, *f = d + 24;

                        /* struct virtio_video_format_desc: mask (which of
                         * the other queue's descriptors it pairs with: a
                         * coded format with NV12, the only raw one; NV12
                         * with every coded one), format, planes_layout,
                         * plane_align, num_frames; then one
                         * virtio_video_format_frame: width and height
                         * ranges, num_rates 0. */
                        put_le64(d, raw ? (UINT64_C(1) << n_coded) - 1 : 1);
                        put_le32(d + 8, formats[i]);
                        put_le32(d + 12, VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER);
                        put_le32(d + 16, 1);
                        put_le32(d + 20, 1);
                        memset(f, 0, 40);
                        put_le32(f, 16);
                        put_le32(f + 4, VIRTIO_VIDEO_MAX_DIMENSION);
                        put_le32(f + 8, 1);
                        put_le32(f + 16, 16);
                        put_le32(f + 20, VIRTIO_VIDEO_MAX_DIMENSION);
                        put_le32(f + 24, 1);
                }
                off += 24 + 40;
        }
        return off;
}

/* The size of the answer a successful command gets; 0 for one that is
 * not known (its error answer is a header). */
static size_t response_size(const VirtioVideo *v, const Request *rq, uint32_t type) {
        switch (type) {
        case VIRTIO_VIDEO_CMD_QUERY_CAPABILITY:
                return rq->len >= HDR + 8 ? capability(v, get_le32(rq->p + HDR), NULL) : HDR;
        case VIRTIO_VIDEO_CMD_RESOURCE_QUEUE:
                return VIRTIO_VIDEO_RESOURCE_QUEUE_RESP_SIZE;
        case VIRTIO_VIDEO_CMD_GET_PARAMS:
                return HDR + VIRTIO_VIDEO_PARAMS_SIZE;
        case VIRTIO_VIDEO_CMD_QUERY_CONTROL:
                return HDR + 8 + 4 * ARRAY_SIZE(h264_levels);
        case VIRTIO_VIDEO_CMD_GET_CONTROL:
                return HDR + 8;
        default:
                return HDR;
        }
}

int virtio_video_new(const VirtioVideoOptions *o, VirtioVideoRespond respond, void *ctx, VirtioVideo **ret) {
        VirtioVideo *v;

        if (!respond || o->threads > 64)
                return -EINVAL;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->o = *o;
        if (v->o.max_memory == 0)
                v->o.max_memory = VIRTIO_VIDEO_DEFAULT_MAX_MEMORY;
        v->respond = respond;
        v->ctx = ctx;
        *ret = v;
        return 0;
}

VirtioVideo *virtio_video_free(VirtioVideo *v) {
        if (!v)
                return NULL;
        for (unsigned i = 0; i < VIRTIO_VIDEO_MAX_STREAMS; i++)
                if (v->streams[i])
                        stream_free(v, v->streams[i]);
        free(v);
        return NULL;
}

unsigned virtio_video_n_streams(const VirtioVideo *v) {
        unsigned n = 0;

        for (unsigned i = 0; i < VIRTIO_VIDEO_MAX_STREAMS; i++)
                n += v->streams[i] != NULL;
        return n;
}

void virtio_video_command(VirtioVideo *v, const GuestMemory *mem, uint64_t tag, const void *req, size_t req_len,
                          size_t resp_cap) {
        uint8_t resp[VIRTIO_VIDEO_MAX_RESPONSE];
        Request rq = { .p = req, .len = req_len, .tag = tag };
        uint32_t type = req_len >= 4 ? get_le32(rq.p) : 0, rtype;
        size_t len = HDR;

        v->mem = mem;
        /* Every command starts with struct virtio_video_cmd_hdr. */
        if (req_len < HDR) {
                if (resp_cap < HDR)
                        v->respond(v->ctx, tag, NULL, 0);
                else
                        respond_hdr(v, tag, VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 0);
                goto out;
        }
        rq.stream_id = get_le32(rq.p + 4);
        /* A buffer too small for the answer gets nothing (never past it),
         * and the command is not executed. */
        if (resp_cap < response_size(v, &rq, type)) {
                v->respond(v->ctx, tag, NULL, 0);
                goto out;
        }
        memset(resp, 0, sizeof(resp));
        switch (type) {
        case VIRTIO_VIDEO_CMD_QUERY_CAPABILITY:
                if (rq.len < HDR + 8 || queue_index(get_le32(rq.p + HDR)) < 0) {
                        rtype = VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                        break;
                }
                len = capability(v, get_le32(rq.p + HDR), resp);
                v->respond(v->ctx, tag, resp, len);
                goto out;
        case VIRTIO_VIDEO_CMD_STREAM_CREATE:
                rtype = cmd_stream_create(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_STREAM_DESTROY:
                rtype = cmd_stream_destroy(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_STREAM_DRAIN:
                rtype = cmd_stream_drain(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_RESOURCE_CREATE:
                rtype = cmd_resource_create(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_RESOURCE_QUEUE:
                rtype = cmd_resource_queue(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_RESOURCE_DESTROY_ALL:
                rtype = cmd_destroy_all(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_QUEUE_CLEAR:
                rtype = cmd_queue_clear(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_GET_PARAMS:
                rtype = cmd_get_params(v, &rq, resp);
                if (rtype == VIRTIO_VIDEO_RESP_OK_GET_PARAMS)
                        len = HDR + VIRTIO_VIDEO_PARAMS_SIZE;
                break;
        case VIRTIO_VIDEO_CMD_SET_PARAMS:
                rtype = cmd_set_params(v, &rq);
                break;
        case VIRTIO_VIDEO_CMD_QUERY_CONTROL:
                rtype = cmd_query_control(v, &rq, resp, &len);
                break;
        case VIRTIO_VIDEO_CMD_GET_CONTROL:
        case VIRTIO_VIDEO_CMD_SET_CONTROL:
                /* The decoder has no control to read or set. */
                if (rq.len < HDR + 8)
                        rtype = VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
                else if (!v->o.encoder)
                        rtype = VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
                else if (type == VIRTIO_VIDEO_CMD_GET_CONTROL) {
                        rtype = cmd_get_control(v, &rq, resp);
                        if (rtype == VIRTIO_VIDEO_RESP_OK_GET_CONTROL)
                                len = HDR + 8;
                } else
                        rtype = cmd_set_control(v, &rq);
                break;
        default:
                rtype = VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION;
                break;
        }
        /* 0: accepted, answered later (RESOURCE_QUEUE, STREAM_DRAIN). */
        if (rtype != 0) {
                if (rtype >= VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION)
                        len = HDR;
                put_hdr(resp, rtype, rq.stream_id);
                v->respond(v->ctx, tag, resp, len);
        }
out:
        v->mem = NULL;
}
