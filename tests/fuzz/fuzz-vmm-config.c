/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for the CONFIGURE message's decoder
 * (common/vmm-config.c): the input is split into configure parts fed to a
 * VmmConfigReader, each part carrying some of a fixed set of descriptors of
 * every kind a configuration may (wrongly) name: a regular file, a
 * read-only one, an O_PATH one, a directory, a pipe. The decoder must never
 * crash, read outside the input, or leak or double-close a descriptor:
 * every descriptor it is handed is closed exactly once, by it or by the
 * configuration it returns.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/vmm-config.h"

#define KINDS 5

static int make_fd(unsigned kind) {
        int p[2], fd;

        switch (kind) {
        case 0:
                fd = memfd_create("file", MFD_CLOEXEC);
                if (fd >= 0 && ftruncate(fd, 4096) < 0)
                        abort();
                return fd;
        case 1:
                return open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        case 2:
                return open("/proc/self/exe", O_PATH | O_CLOEXEC);
        case 3:
                return open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        default:
                if (pipe2(p, O_CLOEXEC) < 0)
                        abort();
                close(p[0]);
                return p[1];
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static VmmConfigReader reader;
        VmmConfigError error;
        VmmConfig config;
        size_t at = 0;
        int r = 0;

        vmm_config_reader_init(&reader);
        /* Each part: u16 payload length, u8 fd count and kinds, then the payload. */
        while (r == 0 && size - at >= 3) {
                size_t len = (size_t) (data[at] | data[at + 1] << 8) % (CONTROL_PAYLOAD_MAX + 1);
                unsigned n_fds = data[at + 2] % (CONTROL_FDS_MAX + 1);
                int fds[CONTROL_FDS_MAX];

                at += 3;
                if (size - at < len)
                        len = size - at;
                for (unsigned i = 0; i < n_fds; i++) {
                        fds[i] = make_fd(i < len ? data[at + i] % KINDS : 0);
                        if (fds[i] < 0)
                                abort();
                }
                r = vmm_config_reader_add(&reader, data + at, len, fds, n_fds, &config, &error);
                at += len;
        }
        if (r == 1)
                vmm_config_close_fds(&config);
        vmm_config_reader_done(&reader);
        return 0;
}
