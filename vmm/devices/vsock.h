/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* virtio-vsock (virtio 1.2 §5.10) in userspace, host side after
 * Firecracker's hybrid scheme (docs/vsock.md there):
 *   - a guest connection to host port P reaches the Unix socket "PATH_P",
 *     which the device connects to;
 *   - a host program connects to the Unix socket PATH (the device
 *     listens), writes "CONNECT <guest port>\n" and reads
 *     "OK <host port>\n" once the guest accepted, then the socket is the
 *     stream.
 * The wire format and the helpers below are exposed for the unit tests. */

#include <stdbool.h>
#include <stdint.h>

#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VSOCK_HOST_CID 2
/* §5.10.4: the guest CID is 32 bits in practice; 0-2 and ~0U are reserved. */
#define VSOCK_CID_MIN VMM_CONFIG_VSOCK_CID_MIN
#define VSOCK_CID_MAX VMM_CONFIG_VSOCK_CID_MAX

/* §5.10.6 */
#define VSOCK_TYPE_STREAM 1
#define VSOCK_TYPE_SEQPACKET 2

#define VSOCK_OP_INVALID 0
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7

#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2

#define VSOCK_QUEUE_RX 0
#define VSOCK_QUEUE_TX 1
#define VSOCK_QUEUE_EVENT 2

/* §5.10.6.7: struct virtio_vsock_event { le32 id; } in an event buffer. */
#define VSOCK_EVENT_TRANSPORT_RESET 0
#define VSOCK_EVENT_SIZE 4

/* Our receive buffer per connection: the credit (buf_alloc) we give the
 * guest, and the most we ever hold for a host socket that does not read
 * (allocated only then; at most max-connections x this, 64 MiB by
 * default). Less credit starves a streaming guest: at 256 KiB,
 * bench/vsock-bench measured guest->host at half the 512 KiB rate. */
#define VSOCK_BUF_ALLOC (512 * 1024)
/* The largest payload we accept in one packet (Linux sends at most 64 KiB,
 * VIRTIO_VSOCK_MAX_PKT_BUF_SIZE) and put in one receive buffer. */
#define VSOCK_MAX_PAYLOAD (64 * 1024)
#define VSOCK_MAX_CONNECTIONS_DEFAULT VMM_CONFIG_VSOCK_MAX_CONNECTIONS_DEFAULT
#define VSOCK_MAX_CONNECTIONS_LIMIT VMM_CONFIG_VSOCK_MAX_CONNECTIONS_LIMIT
/* Host programs connected to PATH that have not sent their CONNECT line. */
#define VSOCK_MAX_PENDING_ACCEPTS 16
#define VSOCK_CONNECT_LINE_MAX 32
/* Host ports given to host-initiated connections start here, as in
 * Firecracker, well away from the ports guests listen on. */
#define VSOCK_LOCAL_PORT_BASE (UINT32_C(1) << 30)

/* The packet header, little-endian (x86 only, so native). */
typedef struct __attribute__((packed)) VsockHdr {
        uint64_t src_cid;
        uint64_t dst_cid;
        uint32_t src_port;
        uint32_t dst_port;
        uint32_t len;
        uint16_t type;
        uint16_t op;
        uint32_t flags;
        uint32_t buf_alloc;
        uint32_t fwd_cnt;
} VsockHdr;

#define VSOCK_HDR_SIZE 44

/* How many bytes we may send to a peer that gave buf_alloc and reported
 * fwd_cnt, when we have sent tx_cnt (§5.10.6.3: all u32, wrapping). A peer
 * claiming more forwarded than we sent, or a buf_alloc smaller than what
 * is in flight, gets no credit rather than a huge one. */
uint32_t vsock_peer_credit(uint32_t buf_alloc, uint32_t tx_cnt, uint32_t fwd_cnt);

/* Parses "cid=N,path=PATH[,max-connections=N]". *ret_path is malloc'd.
 * -EINVAL for anything else, a CID outside 3..2^32-2, or a path that does
 * not fit a Unix socket address with its "_PORT" suffix. */
int vsock_parse_option(const char *arg, uint64_t *ret_cid, char **ret_path, unsigned *ret_max_connections);

/* Parses a host program's "CONNECT <port>\n" line (without the newline).
 * -EINVAL unless it is exactly that with a port in 0..2^32-1. */
int vsock_parse_connect_line(const char *line, uint32_t *ret_port);

/* Counters, for tests and the log; read them on the worker or after it
 * stopped. */
typedef struct VsockStats {
        uint64_t bad_packets;           /* dropped: short header, forged source, ... */
        uint64_t rst_sent;
        uint64_t connections;           /* open now */
        uint64_t refused_limit;         /* connection limit reached */
        uint64_t events_sent;           /* TRANSPORT_RESET events delivered */
} VsockStats;

typedef struct VirtioDevice VirtioDevice;
/* The stats of a vsock VirtioDevice. */
VsockStats vsock_device_stats(VirtioDevice *vdev);

#ifdef __cplusplus
}
#endif
