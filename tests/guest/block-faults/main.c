/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block under host faults (tests/faults/): writes a known pattern in
 * 4 KiB chunks, two requests in flight (so the device may merge them), and
 * reports what the device acknowledged. The host makes the faults: a full
 * file system under the image, or a SIGKILL of the VMM. The cmdline picks
 * the mode:
 *
 *   mode=fill    write every chunk of the disk once; print the runs of
 *                acknowledged (OK) and failed (IOERR) chunks as
 *                "fill-run OK|IOERR FIRST COUNT"; FLUSH; read the OK chunks
 *                back. Then print "block-faults: disk full, resize me" and
 *                wait for a configuration-change interrupt (the host frees
 *                space and sends disk-resize to the same size); rewrite the
 *                failed chunks, which must now succeed, FLUSH, read back
 *                everything.
 *   mode=stream  batches of `batch=N` chunks, each followed by a FLUSH;
 *                "flushed B" once batch B's FLUSH is acknowledged; the host
 *                kills the VMM somewhere in this. "stream: end" if the disk
 *                is written to its end first.
 *   mode=verify  read batches 0..`upto=B` (of `batch=N` chunks) back and
 *                check them: the image a killed VMM left behind.
 *
 * Every mode takes `seed=S`. Sector s of the pattern is 64 little-endian
 * words, word w = seed << 40 | s << 8 | w (tests/faults/ computes the same). */

#include "virtio.h"

#define VEC_QUEUE 0x40
#define VEC_CONFIG 0x41
#define TIMEOUT_MS 10000
#define RESIZE_TIMEOUT_MS 60000

#define F_FLUSH 9

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4

#define S_OK 0
#define S_IOERR 1
#define S_NONE 0xff /* no answer in time */

#define CHUNK_SECTORS 8
#define CHUNK_BYTES (CHUNK_SECTORS * 512)
#define INFLIGHT 2 /* three descriptors each in a VQ_SIZE ring */
#define MAX_CHUNKS 4096

struct req_hdr {
        uint32_t type, ioprio;
        uint64_t sector;
};

static struct virtio_dev dev;
static struct vq q;
static struct req_hdr hdr[INFLIGHT] __attribute__((aligned(16)));
static uint8_t data[INFLIGHT][CHUNK_BYTES] __attribute__((aligned(4096)));
static volatile uint8_t status[INFLIGHT];
static uint8_t chunk_status[MAX_CHUNKS];
static volatile unsigned config_irqs;
static uint16_t want_used;
static uint64_t seed;

static void queue_irq(struct irq_frame *f)
{
        lapic_eoi();
}

static void config_irq(struct irq_frame *f)
{
        config_irqs++;
        lapic_eoi();
}

static bool used_done(void) { return q.used.idx == want_used; }
static bool config_changed(void) { return config_irqs > 0; }

static void pattern_fill(uint8_t *buf, uint64_t sector)
{
        uint64_t *w = (uint64_t *) buf;

        for (unsigned s = 0; s < CHUNK_SECTORS; s++)
                for (unsigned i = 0; i < 64; i++)
                        w[s * 64 + i] = seed << 40 | (sector + s) << 8 | i;
}

static bool pattern_ok(const uint8_t *buf, uint64_t sector)
{
        const uint64_t *w = (const uint64_t *) buf;

        for (unsigned s = 0; s < CHUNK_SECTORS; s++)
                for (unsigned i = 0; i < 64; i++)
                        if (w[s * 64 + i] != (seed << 40 | (sector + s) << 8 | i))
                                return false;
        return true;
}

/* Puts n requests (chunks first..first+n, or one FLUSH) on the ring at
 * once, one notification, and waits for all of them; their status bytes
 * end up in status[], S_NONE for requests the device did not answer. */
static void submit(uint32_t type, uint64_t first_chunk, unsigned n)
{
        for (unsigned k = 0; k < n; k++) {
                uint16_t d = (uint16_t) (3 * k);
                bool has_data = type != T_FLUSH;

                hdr[k] = (struct req_hdr) { .type = type, .sector = (first_chunk + k) * CHUNK_SECTORS };
                status[k] = S_NONE;
                q.desc[d] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) &hdr[k], .len = sizeof(hdr[k]),
                                                  .flags = VRING_DESC_F_NEXT, .next = (uint16_t) (d + 1) };
                if (has_data)
                        q.desc[d + 1] = (struct vring_desc) {
                                .addr = (uint64_t) (uintptr_t) data[k], .len = CHUNK_BYTES,
                                .flags = VRING_DESC_F_NEXT | (type == T_IN ? VRING_DESC_F_WRITE : 0),
                                .next = (uint16_t) (d + 2) };
                q.desc[d + (has_data ? 2 : 1)] = (struct vring_desc) {
                        .addr = (uint64_t) (uintptr_t) &status[k], .len = 1, .flags = VRING_DESC_F_WRITE };
                q.avail.ring[(q.avail.idx + k) % VQ_SIZE] = d;
        }
        want_used = (uint16_t) (q.used.idx + n);
        barrier();
        q.avail.idx = (uint16_t) (q.avail.idx + n);
        barrier();
        mmio_write16(q.notify, q.index);
        wait_for(used_done, TIMEOUT_MS, false);
        /* A late answer after a timeout would land in the next request's
         * buffers: give up on the device instead. */
        if (q.used.idx != want_used) {
                test_report("block-faults-answer", false, "%u of %u request(s) unanswered",
                            (unsigned) (uint16_t) (want_used - q.used.idx), n);
                test_finish();
        }
}

static uint8_t flush(void)
{
        submit(T_FLUSH, 0, 1);
        return status[0];
}

/* Writes chunks [first, first + n) two by two; chunk_status[] gets each
 * one's status. */
static void write_chunks(uint64_t first, uint64_t n)
{
        for (uint64_t c = first; c < first + n; c += INFLIGHT) {
                unsigned k = first + n - c < INFLIGHT ? (unsigned) (first + n - c) : INFLIGHT;

                for (unsigned i = 0; i < k; i++)
                        pattern_fill(data[i], (c + i) * CHUNK_SECTORS);
                submit(T_OUT, c, k);
                for (unsigned i = 0; i < k; i++)
                        chunk_status[c + i] = status[i];
        }
}

/* Reads chunk c back: true if it holds its pattern. */
static bool chunk_reads_back(uint64_t c)
{
        memset(data[0], 0, CHUNK_BYTES);
        submit(T_IN, c, 1);
        return status[0] == S_OK && pattern_ok(data[0], c * CHUNK_SECTORS);
}

/* "fill-run OK|IOERR|S<n> FIRST COUNT" for each run of equal statuses. */
static void print_runs(uint64_t n)
{
        for (uint64_t c = 0; c < n;) {
                uint64_t e = c;

                while (e < n && chunk_status[e] == chunk_status[c])
                        e++;
                if (chunk_status[c] == S_OK)
                        printf("fill-run OK %lu %lu\n", c, e - c);
                else if (chunk_status[c] == S_IOERR)
                        printf("fill-run IOERR %lu %lu\n", c, e - c);
                else
                        printf("fill-run S%u %lu %lu\n", chunk_status[c], c, e - c);
                c = e;
        }
}

static void mode_fill(uint64_t chunks)
{
        unsigned ok = 0, ioerr = 0, other = 0, bad = 0, retried = 0, still = 0;
        uint8_t st;

        write_chunks(0, chunks);
        print_runs(chunks);
        for (uint64_t c = 0; c < chunks; c++) {
                ok += chunk_status[c] == S_OK;
                ioerr += chunk_status[c] == S_IOERR;
                other += chunk_status[c] != S_OK && chunk_status[c] != S_IOERR;
        }
        test_report("faults-enospc-errors", ok > 0 && ioerr > 0 && other == 0, "%u OK, %u IOERR, %u other", ok,
                    ioerr, other);

        /* Every acknowledged write reached the file, so a FLUSH has nothing
         * it could lose: the host's verdict on it (IOERR would also be
         * honest, OK is what a tmpfs gives) is printed for the test. */
        st = flush();
        printf("fill-flush %u\n", st);
        test_report("faults-enospc-flush", st == S_OK || st == S_IOERR, "status %u", st);

        for (uint64_t c = 0; c < chunks; c++)
                if (chunk_status[c] == S_OK && !chunk_reads_back(c))
                        bad++;
        test_report("faults-enospc-acked-read-back", bad == 0, "%u of %u acknowledged chunk(s) differ", bad, ok);

        printf("block-faults: disk full, resize me\n");
        sti();
        bool resized = wait_for(config_changed, RESIZE_TIMEOUT_MS, false);
        cli();
        test_report("faults-enospc-space-back", resized, "%u config interrupt(s)", config_irqs);

        for (uint64_t c = 0; c < chunks; c++) {
                if (chunk_status[c] == S_OK)
                        continue;
                retried++;
                write_chunks(c, 1);
                still += chunk_status[c] != S_OK;
        }
        test_report("faults-enospc-retry", still == 0, "%u of %u rewritten chunk(s) failed again", still, retried);
        st = flush();
        test_report("faults-enospc-flush-after-retry", st == S_OK, "status %u", st);

        bad = 0;
        for (uint64_t c = 0; c < chunks; c++)
                if (!chunk_reads_back(c))
                        bad++;
        test_report("faults-enospc-all-read-back", bad == 0, "%u of %lu chunk(s) differ", bad, chunks);
}

static void mode_stream(uint64_t chunks, uint64_t batch)
{
        uint64_t b = 0;

        for (uint64_t c = 0; c + batch <= chunks; c += batch, b++) {
                write_chunks(c, batch);
                for (uint64_t i = c; i < c + batch; i++)
                        if (chunk_status[i] != S_OK) {
                                test_report("faults-stream-write", false, "chunk %lu status %u", i,
                                            chunk_status[i]);
                                return;
                        }
                uint8_t st = flush();
                if (st != S_OK) {
                        test_report("faults-stream-flush", false, "batch %lu status %u", b, st);
                        return;
                }
                printf("flushed %lu\n", b);
        }
        printf("stream: end\n");
        test_report("faults-stream", true, "%lu batches flushed", b);
}

static void mode_verify(uint64_t chunks, uint64_t batch, uint64_t upto)
{
        unsigned bad = 0;
        uint64_t n = (upto + 1) * batch;

        if (n > chunks) {
                test_report("faults-verify", false, "batch %lu is past the disk's end", upto);
                return;
        }
        for (uint64_t c = 0; c < n; c++)
                if (!chunk_reads_back(c)) {
                        if (!bad)
                                printf("verify: chunk %lu differs\n", c);
                        bad++;
                }
        test_report("faults-verify", bad == 0, "%u of %lu chunk(s) of batches 0-%lu differ", bad, n, upto);
}

static uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
        const char *v = cmdline_get(boot_info.cmdline, key);
        uint64_t x;

        return v && parse_u64(v, &x) ? x : dflt;
}

int main(void)
{
        const char *mode = cmdline_get(boot_info.cmdline, "mode");
        uint64_t chunks, batch = cmdline_u64("batch", 16);

        seed = cmdline_u64("seed", 1) & 0xffffff;
        lapic_init();
        irq_set_handler(VEC_QUEUE, queue_irq);
        irq_set_handler(VEC_CONFIG, config_irq);

        if (!mode || !virtio_probe(0x1042, &dev) || !virtio_negotiate(&dev, 1ull << F_FLUSH)) {
                test_report("block-faults-setup", false, "mode=%s, no device or FEATURES_OK refused",
                            mode ? "given" : "missing");
                test_finish();
        }
        virtio_msix_route(&dev, 0, VEC_QUEUE);
        virtio_msix_route(&dev, 1, VEC_CONFIG);
        mmio_write16(dev.common + VCOMMON_MSIX, 1);
        if (!virtio_setup_queue(&dev, &q, 0, 0)) {
                test_report("block-faults-setup", false, "queue 0 could not be set up");
                test_finish();
        }
        virtio_driver_ok(&dev);
        chunks = mmio_read32(dev.device) / CHUNK_SECTORS;
        if (chunks > MAX_CHUNKS)
                chunks = MAX_CHUNKS;
        printf("block-faults: %lu chunks of %u sectors, seed %lu\n", chunks, CHUNK_SECTORS, seed);

        /* cmdline_get's value runs to the next space: compare prefixes. */
        if (!strncmp(mode, "fill", 4))
                mode_fill(chunks);
        else if (!strncmp(mode, "stream", 6))
                mode_stream(chunks, batch ? batch : 1);
        else if (!strncmp(mode, "verify", 6))
                mode_verify(chunks, batch ? batch : 1, cmdline_u64("upto", 0));
        else
                test_report("block-faults-setup", false, "unknown mode");
        test_finish();
}
