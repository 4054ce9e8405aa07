/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The vhost-user protocol (QEMU's docs/interop/vhost-user.rst): the wire
 * format shared by the VMM's front-end (vmm/devices/vhost-user.c) and the
 * device back-ends this project writes (backend/). docs/vhost-user.md
 * says what is implemented.
 *
 * Transport: AF_UNIX SOCK_STREAM. A message is a 12-byte header (request,
 * flags, size; native endian, which is little on x86) and `size` payload
 * bytes; fds ride with the header by SCM_RIGHTS. Every length and count the
 * peer sends is checked here before anyone reads the payload. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VHOST_USER_HEADER_SIZE 12
#define VHOST_USER_VERSION 1
#define VHOST_USER_FLAG_VERSION_MASK 0x3u
#define VHOST_USER_FLAG_REPLY (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)
#define VHOST_USER_MEM_REGIONS_MAX 8
#define VHOST_USER_FDS_MAX 8
#define VHOST_USER_CONFIG_MAX 256
/* The largest payload either side sends: GET/SET_CONFIG with the whole
 * 256-byte config space (12-byte config header + 256 = 268), which is more
 * than SET_MEM_TABLE with 8 regions (8 + 8 * 32 = 264). */
#define VHOST_USER_PAYLOAD_MAX (12 + VHOST_USER_CONFIG_MAX)

/* Front-end requests (the ones a front-end here sends or a back-end here
 * answers; the others are refused). */
typedef enum VhostUserRequest {
        VHOST_USER_GET_FEATURES = 1,
        VHOST_USER_SET_FEATURES = 2,
        VHOST_USER_SET_OWNER = 3,
        VHOST_USER_RESET_OWNER = 4,
        VHOST_USER_SET_MEM_TABLE = 5,
        VHOST_USER_SET_VRING_NUM = 8,
        VHOST_USER_SET_VRING_ADDR = 9,
        VHOST_USER_SET_VRING_BASE = 10,
        VHOST_USER_GET_VRING_BASE = 11,
        VHOST_USER_SET_VRING_KICK = 12,
        VHOST_USER_SET_VRING_CALL = 13,
        VHOST_USER_SET_VRING_ERR = 14,
        VHOST_USER_GET_PROTOCOL_FEATURES = 15,
        VHOST_USER_SET_PROTOCOL_FEATURES = 16,
        VHOST_USER_GET_QUEUE_NUM = 17,
        VHOST_USER_SET_VRING_ENABLE = 18,
        VHOST_USER_SET_BACKEND_REQ_FD = 21,
        VHOST_USER_GET_CONFIG = 24,
        VHOST_USER_SET_CONFIG = 25,
        VHOST_USER_RESET_DEVICE = 34,
        VHOST_USER_GET_MAX_MEM_SLOTS = 36,
        VHOST_USER_SET_STATUS = 39,
        VHOST_USER_GET_STATUS = 40,
} VhostUserRequest;

/* Back-end requests, on the SET_BACKEND_REQ_FD channel. */
typedef enum VhostUserBackendRequest {
        VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
        VHOST_USER_BACKEND_VRING_CALL = 4,
        VHOST_USER_BACKEND_VRING_ERR = 5,
        /* crosvm's: map or unmap a descriptor in a shared memory region. */
        VHOST_USER_BACKEND_SHMEM_MAP = 1000,
        VHOST_USER_BACKEND_SHMEM_UNMAP = 1001,
        /* Majordome's own, between its VMM and its back-ends: the user
         * asked the device to end the VM (a GPU window's close button).
         * Empty. */
        VHOST_USER_BACKEND_STOP_VM = 2000,
} VhostUserBackendRequest;

/* Bit 30 of GET_FEATURES: the back-end speaks protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ 5
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS 16

/* SET_VRING_KICK/CALL/ERR: the ring index in the low byte, and a flag for
 * "no descriptor comes with this" (polling mode, refused here). */
#define VHOST_USER_VRING_INDEX_MASK 0xffu
#define VHOST_USER_VRING_NOFD (1u << 8)

/* Payload layouts (all little-endian, offsets in bytes). */
#define VHOST_USER_VRING_STATE_SIZE 8           /* u32 index, u32 num */
#define VHOST_USER_VRING_ADDR_SIZE 40           /* u32 index, u32 flags, u64 desc, used, avail, log */
#define VHOST_USER_MEM_REGION_SIZE 32           /* u64 gpa, size, user address, mmap offset */
#define VHOST_USER_CONFIG_HEADER_SIZE 12        /* u32 offset, size, flags; then the bytes */
#define VHOST_USER_SHMEM_MAP_SIZE 40            /* u8 id, 7 padding, u64 fd offset, shm offset, len, flags */
#define VHOST_USER_SHMEM_MAP_R 1                /* SHMEM_MAP flags: the guest reads */
#define VHOST_USER_SHMEM_MAP_RW 3               /* and writes */

typedef struct VhostUserMsg {
        uint32_t request;
        uint32_t flags;
        uint32_t size;
        uint8_t payload[VHOST_USER_PAYLOAD_MAX];
} VhostUserMsg;

typedef struct VhostUserMemRegion {
        uint64_t gpa;
        uint64_t size;
        uint64_t user_addr;
        uint64_t mmap_offset;
} VhostUserMemRegion;

const char *vhost_user_request_to_string(uint32_t request);

/* Sends one message: header, size payload bytes, fds (at most
 * VHOST_USER_FDS_MAX) by SCM_RIGHTS with the header. Blocking; EINTR and
 * short writes handled. -EMSGSIZE for a payload over VHOST_USER_PAYLOAD_MAX,
 * -EPIPE once the peer left. */
int vhost_user_send(int fd, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
                    const int *fds, size_t n_fds);

/* Receives one message, waiting at most timeout_ms (-1: for ever; 0: only
 * what is already queued) for all of it. The header is checked before the payload is read: version 1,
 * size <= VHOST_USER_PAYLOAD_MAX (-EBADMSG otherwise; the stream cannot be
 * trusted after that). Descriptors (MSG_CMSG_CLOEXEC) go into fds, at
 * most max_fds: more, or any that came with a payload byte rather than the
 * header, close them all and fail -EBADMSG. -ECONNRESET at the peer's
 * hang-up, -ETIMEDOUT. On failure no descriptor is left open. */
int vhost_user_recv(int fd, int timeout_ms, VhostUserMsg *msg, int *fds, size_t max_fds, size_t *ret_n_fds);

/* The one check of a reply to `request`: the reply flag, the request it
 * names, and exactly the payload size that request's reply has (8 for a
 * u64 or an ack, VRING_STATE for GET_VRING_BASE, the config header plus
 * the asked size for GET_CONFIG). 0 or -EBADMSG. */
int vhost_user_check_reply(uint32_t request, const VhostUserMsg *reply, uint32_t config_size);

/* The one check of a front-end request as a back-end receives it: a known
 * request, the payload size its layout has (SET_MEM_TABLE: the region
 * count in range and exactly that many regions; SET_CONFIG: the header's
 * size in range and matching), and the descriptor count it carries
 * (SET_MEM_TABLE one per region; KICK/CALL/ERR one unless NOFD;
 * BACKEND_REQ_FD one; others none). 0, -EBADMSG or -EOPNOTSUPP (an
 * unknown request). */
int vhost_user_check_request(const VhostUserMsg *msg, size_t n_fds);

/* A back-end request as the front-end receives it: CONFIG_CHANGE_MSG
 * (empty), VRING_CALL/ERR (u64), SHMEM_MAP (its layout, one fd),
 * SHMEM_UNMAP (the same layout, no fd). 0, -EBADMSG or -EOPNOTSUPP. */
int vhost_user_check_backend_request(const VhostUserMsg *msg, size_t n_fds);

#ifdef __cplusplus
}
#endif
