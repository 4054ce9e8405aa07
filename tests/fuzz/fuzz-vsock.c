/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for virtio-vsock packets (vmm/devices/virtio-vsock.c),
 * through the walker. The input is a few bytes of setup, then the guest's
 * first 64 KiB: both queues' rings, the packets (headers and payloads) and
 * the receive buffers all come from the fuzzer, as from a hostile driver.
 * A host program listens on PATH_1, so REQUESTs for port 1 really connect;
 * what they accept gets a few bytes and maybe a hang-up, and a host program
 * may connect through PATH with CONNECT, so the receive side and the credit
 * accounting run too. The device must never crash, hang, touch memory
 * outside guest RAM, or hold more connections than its limit.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/devices/vsock.h"
#include "vmm/virtio/device.h"

extern const VirtioDeviceOps virtio_vsock_ops;

#define MEM_SIZE (2 * MiB)
#define IMAGE_WINDOW (64 * 1024)
#define RX_RING 0x4000
#define MAX_CONNS 8
#define MAX_ACCEPTED 32

static GuestMemory *mem;
static VirtioDevice *vdev;
static char dir[] = "/tmp/fuzz-vsock-XXXXXX";
static char path[128];
static int listener = -1;
static VirtQueue queues[3];

static int unix_socket_at(const char *p, bool do_listen) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (do_listen ? SOCK_NONBLOCK : 0), 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
        if (fd < 0)
                abort();
        if (do_listen ? bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 64) < 0
                      : connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static void setup(void) {
        char arg[192], lpath[160];

        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof(path), "%s/v", dir);
        snprintf(lpath, sizeof(lpath), "%s_1", path);
        listener = unix_socket_at(lpath, true);
        if (listener < 0 || guest_memory_new(MEM_SIZE, &mem) < 0)
                abort();
        snprintf(arg, sizeof(arg), "cid=3,path=%s,max-connections=%d", path, MAX_CONNS);
        if (virtio_device_new(&virtio_vsock_ops, arg, mem, &vdev) < 0)
                abort();
}

static int program(VirtQueue *q, uint64_t base, uint8_t cfg) {
        q->max_size = VIRTQ_MAX_SIZE;
        q->kick_fd = -1;
        virtq_reset(q);
        q->size = (uint16_t) (1u << (cfg % 7)); /* 1..64: the ring fits its window */
        q->desc_gpa = base;
        q->avail_gpa = base + VIRTQ_DESC_BYTES(q->size);
        q->used_gpa = ALIGN_UP(q->avail_gpa + VIRTQ_AVAIL_BYTES(q->size), 4);
        return virtq_enable(q, mem, cfg & 0x80, cfg & 0x40);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int accepted[MAX_ACCEPTED], n_accepted = 0, host = -1, fds[32];
        uint8_t cfg[4];
        unsigned n;
        void *dev;

        if (!mem)
                setup();
        if (size < sizeof(cfg))
                return 0;
        memcpy(cfg, data, sizeof(cfg));
        data += sizeof(cfg);
        size -= sizeof(cfg);

        (void) guest_zero(mem, 0, IMAGE_WINDOW);
        (void) guest_write(mem, 0, data, size < IMAGE_WINDOW ? size : IMAGE_WINDOW);
        if (program(&queues[VSOCK_QUEUE_TX], 0, cfg[0]) < 0 || program(&queues[VSOCK_QUEUE_RX], RX_RING, cfg[1]) < 0)
                return 0;
        queues[VSOCK_QUEUE_EVENT].enabled = false;

        dev = virtio_device_state(vdev);
        if (virtio_vsock_ops.activate(dev, queues, virtio_device_offered(vdev)) < 0)
                abort();

        /* A host program connecting into the guest. */
        if (cfg[2] & 1) {
                host = unix_socket_at(path, false);
                if (host >= 0)
                        (void) !write(host, cfg[2] & 2 ? "CONNECT 7\nhi" : "CONNECT x\n", cfg[2] & 2 ? 12 : 10);
        }

        virtio_vsock_ops.queue_notify(dev, &queues[VSOCK_QUEUE_TX]);
        if (vsock_device_stats(vdev).connections > MAX_CONNS)
                abort();

        /* The host ends of guest connections: some data, maybe a hang-up. */
        while (n_accepted < MAX_ACCEPTED) {
                int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        break;
                (void) !write(fd, "host data", 1 + cfg[3] % 9);
                if (cfg[3] & 0x10)
                        (void) shutdown(fd, SHUT_WR);
                accepted[n_accepted++] = fd;
        }
        virtio_vsock_ops.queue_notify(dev, &queues[VSOCK_QUEUE_RX]);
        virtio_vsock_ops.queue_notify(dev, &queues[VSOCK_QUEUE_TX]);
        (void) virtq_should_interrupt(&queues[VSOCK_QUEUE_RX]);
        if (vsock_device_stats(vdev).connections > MAX_CONNS)
                abort();

        /* Back to a fresh device: as the framework does on reset. */
        n = virtio_device_fds(vdev, fds, 32);
        for (unsigned i = 0; i < n; i++)
                (void) virtio_device_unwatch_fd(vdev, fds[i]);
        virtio_vsock_ops.stop(dev);
        virtio_vsock_ops.reset(dev);
        for (int i = 0; i < n_accepted; i++)
                close(accepted[i]);
        if (host >= 0)
                close(host);
        return 0;
}
