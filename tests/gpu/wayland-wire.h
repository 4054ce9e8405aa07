/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The Wayland wire format, enough for the cross-domain tests and
 * benchmark to speak to a real compositor without libwayland: a request
 * (object, opcode, 32-bit arguments and strings, its size in the header)
 * and a parsed event. */

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/unaligned.h"

namespace wayland_wire {

struct WlMsg {
        std::vector<uint8_t> b;
        WlMsg(uint32_t obj, uint16_t opcode) : b(8, 0) {
                put_le32(&b[0], obj);
                put_le32(&b[4], opcode);
        }
        WlMsg &u(uint32_t v) {
                b.resize(b.size() + 4);
                put_le32(&b[b.size() - 4], v);
                return *this;
        }
        /* Length with the NUL, padded to 4. */
        WlMsg &s(const std::string &v) {
                u((uint32_t) v.size() + 1);
                size_t at = b.size();
                b.resize(at + ((v.size() + 1 + 3) & ~size_t(3)), 0);
                memcpy(&b[at], v.data(), v.size());
                return *this;
        }
        std::vector<uint8_t> done() {
                put_le32(&b[4], get_le32(&b[4]) | (uint32_t) b.size() << 16);
                return b;
        }
};

struct WlEvent {
        uint32_t obj;
        uint16_t opcode;
        std::vector<uint8_t> args;
};

/* The string argument at byte at of an event's arguments. */
inline std::string wl_string(const std::vector<uint8_t> &args, size_t at) {
        uint32_t len = get_le32(&args[at]);
        return len ? std::string((const char *) &args[at + 4], len - 1) : std::string();
}

} // namespace wayland_wire
