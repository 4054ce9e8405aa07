/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtio-video decoder on libavcodec: see virtio-video.h.
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
 * empty with the EOS flag, then answers the drain. */
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "unaligned.h"
#include "util.h"
#include "video/virtio-video.h"

#define HDR VIRTIO_VIDEO_HDR_SIZE
/* Decoded frames a stream keeps at most: decoding input pauses at
 * MAX_PENDING_FRAMES; a drain may add the decoder's delayed frames. */
#define FRAME_RING 64
/* Bitstream bytes one input buffer may carry. */
#define MAX_INPUT_BYTES (64 * UINT64_C(1024) * 1024)
#define DEFAULT_INPUT_PLANE_SIZE (1024 * 1024)
#define SPARE_FRAMES 4

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
        AVCodecContext *ctx;
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
                data = malloc(b->data_size);
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

/* ---- commands ---- */

typedef struct Request {
        const uint8_t *p;
        size_t len;
        uint32_t stream_id;
        uint64_t tag;
} Request;

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
        if (!virtio_video_format_supported(format))
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
        params_default_in(&s->in, format);
        params_set_out(&s->out, 0, 0);
        s->pkt = av_packet_alloc();
        s->frame = av_frame_alloc();
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
                if (n_sizes != 1 || size0 > b->len || size0 > MAX_INPUT_BYTES)
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
        if (q == 0) {
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

static size_t control_values(uint32_t control, uint32_t format, const uint32_t **ret) {
        if (!virtio_video_format_supported(format))
                return 0;
        if (control == VIRTIO_VIDEO_CONTROL_PROFILE)
                switch (format) {
                case VIRTIO_VIDEO_FORMAT_H264:
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

static uint32_t cmd_query_control(const Request *rq, uint8_t *resp, size_t *ret_len) {
        const uint32_t *vals = NULL;
        size_t n;

        /* struct virtio_video_query_control: control, padding; then
         * virtio_video_query_control_{profile,level}: format, padding. */
        if (rq->len < HDR + 16)
                return VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER;
        n = control_values(get_le32(rq->p + HDR), get_le32(rq->p + HDR + 8), &vals);
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

static unsigned n_inputs(void) {
        unsigned n = 0;

        for (size_t i = 0; i < N_CODECS; i++)
                n += virtio_video_format_supported(codecs[i].format);
        return n;
}

/* QUERY_CAPABILITY's answer into resp (NULL: only its size). */
static size_t capability(uint32_t queue_type, uint8_t *resp) {
        uint32_t formats[N_CODECS];
        size_t n = 0, off;

        for (size_t i = 0; i < N_CODECS; i++)
                if (virtio_video_format_supported(codecs[i].format))
                        formats[n++] = codecs[i].format;
        if (queue_type == VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT) {
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
                         * the other queue's descriptors it pairs with:
                         * input with NV12, the only output; NV12 with
                         * every input), format, planes_layout,
                         * plane_align, num_frames; then one
                         * virtio_video_format_frame: width and height
                         * ranges, num_rates 0. */
                        put_le64(d, queue_type == VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT ? (UINT64_C(1) << n_inputs()) - 1 : 1);
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
static size_t response_size(const Request *rq, uint32_t type) {
        switch (type) {
        case VIRTIO_VIDEO_CMD_QUERY_CAPABILITY:
                return rq->len >= HDR + 8 ? capability(get_le32(rq->p + HDR), NULL) : HDR;
        case VIRTIO_VIDEO_CMD_RESOURCE_QUEUE:
                return VIRTIO_VIDEO_RESOURCE_QUEUE_RESP_SIZE;
        case VIRTIO_VIDEO_CMD_GET_PARAMS:
                return HDR + VIRTIO_VIDEO_PARAMS_SIZE;
        case VIRTIO_VIDEO_CMD_QUERY_CONTROL:
                return HDR + 8 + 4 * ARRAY_SIZE(h264_levels);
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
        if (resp_cap < response_size(&rq, type)) {
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
                len = capability(get_le32(rq.p + HDR), resp);
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
                rtype = cmd_query_control(&rq, resp, &len);
                break;
        case VIRTIO_VIDEO_CMD_GET_CONTROL:
        case VIRTIO_VIDEO_CMD_SET_CONTROL:
                /* The decoder has no control to read or set (the
                 * encoder's bitrate, profile, level are not here). */
                rtype = rq.len < HDR + 8 ? VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER
                                         : VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL;
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
