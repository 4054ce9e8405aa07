/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for the 2D virtio-gpu device core (gpu/virtio-gpu.c).
 * The input is a sequence of records, each
 *
 *     u8 op, u16 len, u16 resp_cap, then len bytes
 *
 * op 0: a control-queue request; op 1: a cursor-queue request; op 2: the
 * bytes written into guest RAM at the offset their first 4 bytes give
 * (pixels and backing for later transfers); op 3: a device reset (held
 * responses dropped), the bytes skipped. A request's header is the
 * input's own, so fences with INFO_RING_IDX and any ring_idx and ctx_id
 * come from it. One device per input, so
 * resources, backings and scanouts made by one request meet the next.
 * Guest RAM is 2 MiB, the resource memory cap 4 MiB, blobs offered (a
 * 1 MiB host-visible region, no front-end to map into), two 64x48 scanouts on
 * the recording display of tests/gpu. It must never crash, read or write
 * outside guest RAM or a resource, answer more than resp_cap bytes, or
 * lose track of the memory its resources take.
 *
 * With FUZZ_GPU_BACKEND=virgl in the environment the device is the virgl
 * back-end on the real virglrenderer (llvmpipe): the 3D commands, contexts,
 * SUBMIT_3D streams and fences too (held responses are polled after each
 * request). virglrenderer starts anew for each input: slow (about 15
 * inputs a second here), and Mesa's driver, unloaded at each cleanup,
 * leaves allocations LeakSanitizer reports from an unknown module: run it
 * with ASAN_OPTIONS=detect_leaks=0.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <stdlib.h>
#include <string.h>

#include "gpu/virtio-gpu.h"
#include "tests/gpu/fake-display.h"
#include "common/unaligned.h"

#define MEM_SIZE (2 * MiB)

static GuestMemory *mem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t resp[VIRTIO_GPU_MAX_RESPONSE + 1];
        const char *backend = getenv("FUZZ_GPU_BACKEND");
        VirtioGpuOptions o = { .n_scanouts = 2, .width = 64, .height = 48, .max_memory = 4 * MiB,
                               .backend = backend && strcmp(backend, "virgl") == 0 ? VIRTIO_GPU_BACKEND_VIRGL
                                                                                   : VIRTIO_GPU_BACKEND_2D,
                               .blob = true, .host_visible_size = 1 * MiB };
        GpuDisplay *d;
        VirtioGpu *g;

        if (!mem && guest_memory_new(MEM_SIZE, &mem) < 0)
                abort();
        memset(mem->base, 0x5a, MEM_SIZE);
        if (gpu_display_new(-1, NULL, o.n_scanouts, NULL, NULL, &d) < 0 || virtio_gpu_new(&o, d, &g) < 0)
                abort();
        while (size >= 5) {
                uint8_t op = data[0];
                size_t len = get_le16(data + 1), cap = get_le16(data + 3) % (sizeof(resp) + 1), n;

                data += 5;
                size -= 5;
                if (len > size)
                        len = size;
                switch (op % 4) {
                case 0:
                case 1:
                        n = virtio_gpu_handle(g, mem, op % 4, data, len, resp, cap);
                        if (n > cap)
                                abort();
                        break;
                case 2:
                        if (len >= 4) {
                                uint64_t off = get_le32(data) % MEM_SIZE;
                                size_t k = len - 4 < MEM_SIZE - off ? len - 4 : MEM_SIZE - off;

                                if (guest_write(mem, off, data + 4, k) < 0)
                                        abort();
                        }
                        break;
                case 3:
                        virtio_gpu_drop_held(g);
                        break;
                }
                if (virtio_gpu_memory_used(g) > o.max_memory)
                        abort();
                (void) virtio_gpu_poll(g);
                data += len;
                size -= len;
        }
        virtio_gpu_free(g);
        gpu_display_free(d);
        return 0;
}
