/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A virtio-gpu control request as the tests of the core build it: the
 * 24-byte struct virtio_gpu_ctrl_hdr (type, flags, fence, ctx, ring),
 * then the command's fields. */

#include <cstdint>
#include <vector>

#include "common/unaligned.h"

namespace gpu_test {

struct Req {
        std::vector<uint8_t> b;
        explicit Req(uint32_t type, uint32_t flags = 0, uint64_t fence = 0, uint32_t ctx = 0, uint8_t ring = 0)
                : b(24, 0) {
                put_le32(&b[0], type);
                put_le32(&b[4], flags);
                put_le64(&b[8], fence);
                put_le32(&b[16], ctx);
                b[20] = ring;
        }
        Req &u32(uint32_t v) {
                size_t n = b.size();
                b.resize(n + 4);
                put_le32(&b[n], v);
                return *this;
        }
        Req &u64(uint64_t v) {
                size_t n = b.size();
                b.resize(n + 8);
                put_le64(&b[n], v);
                return *this;
        }
        Req &zeros(size_t n) {
                b.resize(b.size() + n, 0);
                return *this;
        }
        Req &bytes(const std::vector<uint8_t> &v) {
                b.insert(b.end(), v.begin(), v.end());
                return *this;
        }
};

} // namespace gpu_test
