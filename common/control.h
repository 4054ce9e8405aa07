/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The VMM control protocol: the wire format shared by majordome-vmm (server)
 * and its clients (the CLI verbs, later majordomed). docs/control-protocol.md
 * is the reference; this header is its C image.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET. One datagram = one message = a fixed
 * 24-byte little-endian header followed by `length` payload bytes, optional
 * fds by SCM_RIGHTS. Everything a peer controls is capped below. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONTROL_MAGIC UINT32_C(0x4d444a4d) /* the bytes "MJDM" read as a le32 */
#define CONTROL_VERSION 1
#define CONTROL_HEADER_SIZE 24
#define CONTROL_MSG_MAX 4096 /* header + payload, per datagram */
#define CONTROL_PAYLOAD_MAX (CONTROL_MSG_MAX - CONTROL_HEADER_SIZE)
#define CONTROL_FDS_MAX 8 /* SCM_RIGHTS fds per datagram */
#define CONTROL_CONNECTIONS_MAX 16 /* concurrent clients of one server */
#define CONTROL_TIMEOUT_MS_DEFAULT 5000
#define CONTROL_IDLE_TIMEOUT_MS 30000 /* an accepted client without a complete request is dropped */

/* Set in the type of every reply: reply type = request type | CONTROL_REPLY. */
#define CONTROL_REPLY UINT16_C(0x8000)

typedef enum ControlType {
        /* Never a valid request. A reply of type CONTROL_REPLY|CONTROL_TYPE_NONE
         * with id 0 reports an error for a datagram whose header could not be
         * read (or a refused connection); its status says why. */
        CONTROL_TYPE_NONE = 0,
        CONTROL_TYPE_INFO = 1,
        CONTROL_TYPE_PAUSE = 2,
        CONTROL_TYPE_RESUME = 3,
        CONTROL_TYPE_STOP = 4,
        /* Makes this connection an event connection: the VMM pushes events
         * (CONTROL_EVENT types) on it from now on. */
        CONTROL_TYPE_SUBSCRIBE = 5,
        /* The VM's configuration, from the daemon before anything else
         * (common/vmm-config.h): one or more parts, with fds. */
        CONTROL_TYPE_CONFIGURE = 6,
        /* 16-31: block devices. */
        CONTROL_TYPE_DISK_RESIZE = 16,
        /* 32-47: the balloon. */
        CONTROL_TYPE_BALLOON = 32,
        CONTROL_TYPE_BALLOON_STATS = 33,
        _CONTROL_TYPE_MAX,
} ControlType;

/* Set in the type of every event the VMM pushes on a subscribed connection
 * (never with CONTROL_REPLY). An event's id is its sequence number on that
 * connection, from 1; its status is 0. */
#define CONTROL_EVENT UINT16_C(0x4000)

typedef enum ControlEventType {
        CONTROL_EVENT_READY = CONTROL_EVENT | 1,
        CONTROL_EVENT_STATE_CHANGED = CONTROL_EVENT | 2,
        CONTROL_EVENT_GUEST_PANIC = CONTROL_EVENT | 3,
        CONTROL_EVENT_EXITING = CONTROL_EVENT | 4,
        /* A device went NEEDS_RESET (a back-end died or broke a rule, the
         * driver broke one): the VM and other devices go on. */
        CONTROL_EVENT_DEVICE_ERROR = CONTROL_EVENT | 5,
        /* The guest's balloon driver holds the size last asked for. */
        CONTROL_EVENT_BALLOON_REACHED = CONTROL_EVENT | 6,
        _CONTROL_EVENT_MAX,
} ControlEventType;

/* Request names, and event names ("ready", "state-changed", ...) for
 * CONTROL_EVENT types; NULL for others. */
const char *control_type_to_string(uint16_t type);
/* Returns the type (> 0) or -EINVAL. Accepts request names only. */
int control_type_from_string(const char *s);

typedef enum ControlState {
        CONTROL_STATE_STARTING = 0,
        CONTROL_STATE_RUNNING = 1,
        CONTROL_STATE_PAUSED = 2,
        CONTROL_STATE_STOPPING = 3,
        _CONTROL_STATE_MAX,
} ControlState;

/* NULL for values this build does not know (a newer VMM may add states). */
const char *control_state_to_string(uint32_t state);
/* Returns the state (>= 0) or -EINVAL. */
int control_state_from_string(const char *s);

/* The header, host byte order. Wire layout (all little-endian):
 *   0 u32 magic    CONTROL_MAGIC
 *   4 u16 version  CONTROL_VERSION
 *   6 u16 type     ControlType, | CONTROL_REPLY in replies
 *   8 u32 id       chosen by the requester, echoed in the reply
 *  12 i32 status   0 in requests; 0 or -errno in replies
 *  16 u32 length   payload bytes following the header
 *  20 u32 flags    must be 0 in this version */
typedef struct ControlHeader {
        uint32_t magic;
        uint16_t version;
        uint16_t type;
        uint32_t id;
        int32_t status;
        uint32_t length;
        uint32_t flags;
} ControlHeader;

/* buf must hold CONTROL_HEADER_SIZE bytes. */
void control_header_encode(const ControlHeader *h, void *buf);
/* -EBADMSG if len < CONTROL_HEADER_SIZE; no other validation. */
int control_header_decode(const void *buf, size_t len, ControlHeader *ret);
/* Validates a decoded header against the size of the datagram it came in:
 * -EBADMSG for a wrong magic, a length that is not datagram_len minus the
 * header, or nonzero flags; -EPROTO for a version other than ours. */
int control_header_check(const ControlHeader *h, size_t datagram_len);

/* INFO reply payload. Wire layout (little-endian), CONTROL_INFO_SIZE bytes:
 *   0 u32 state   ControlState
 *   4 u32 vcpus
 *   8 u64 memory_bytes
 *  16 u64 uptime_ns
 *  24 u32 pid
 *  28 u32 reserved (0) */
typedef struct ControlInfo {
        uint32_t state;
        uint32_t vcpus;
        uint64_t memory_bytes;
        uint64_t uptime_ns;
        uint32_t pid;
} ControlInfo;

#define CONTROL_INFO_SIZE 32

/* buf must hold CONTROL_INFO_SIZE bytes; returns the size written. */
size_t control_info_encode(const ControlInfo *info, void *buf);
/* Reply payloads may grow by appending fields in later versions of the same
 * protocol version, so a longer payload is accepted and its tail ignored;
 * a shorter one is -EBADMSG. */
int control_info_decode(const void *buf, size_t len, ControlInfo *ret);

/* ---- events (CONTROL_EVENT types) ----
 * Event payloads, like reply payloads, may grow by appending fields: a
 * longer payload is accepted and its tail ignored; a shorter one is
 * -EBADMSG. */

/* A PCI device the VMM built, as the READY event lists it. */
typedef struct ControlDevice {
        uint16_t vendor_id;
        uint16_t device_id;
        uint8_t bus;
        uint8_t slot;
        uint8_t function;
} ControlDevice;

#define CONTROL_READY_DEVICES_MAX 32

/* READY event payload: sent once, when the VM first runs (or at once to a
 * connection that subscribes later). Wire layout (little-endian):
 *   0 u32 state         ControlState
 *   4 u32 vcpus
 *   8 u64 memory_bytes
 *  16 u32 cid           the guest's vsock CID, 0 without vsock
 *  20 u32 n_devices     <= CONTROL_READY_DEVICES_MAX
 *  24 n_devices entries of 8 bytes: u16 vendor_id, u16 device_id,
 *     u8 bus, u8 slot, u8 function, u8 reserved (0) */
#define CONTROL_READY_HEADER_SIZE 24
#define CONTROL_READY_DEVICE_SIZE 8
#define CONTROL_READY_MAX_SIZE (CONTROL_READY_HEADER_SIZE + CONTROL_READY_DEVICES_MAX * CONTROL_READY_DEVICE_SIZE)

typedef struct ControlReady {
        uint32_t state;
        uint32_t vcpus;
        uint64_t memory_bytes;
        uint32_t cid;
        uint32_t n_devices;
        ControlDevice devices[CONTROL_READY_DEVICES_MAX];
} ControlReady;

/* buf must hold CONTROL_READY_MAX_SIZE bytes; returns the size written. */
size_t control_ready_encode(const ControlReady *r, void *buf);
/* -EBADMSG when shorter than its header and entries, or n_devices is over
 * CONTROL_READY_DEVICES_MAX. */
int control_ready_decode(const void *buf, size_t len, ControlReady *ret);

/* STATE_CHANGED event payload: u32 state (ControlState), u32 reserved (0). */
#define CONTROL_STATE_CHANGED_SIZE 8
size_t control_state_changed_encode(uint32_t state, void *buf);
int control_state_changed_decode(const void *buf, size_t len, uint32_t *ret_state);

/* BALLOON_REACHED event payload: u64 bytes, the balloon's size the
 * driver reports (`actual`), equal to the target last set. */
#define CONTROL_BALLOON_REACHED_SIZE 8
size_t control_balloon_reached_encode(uint64_t bytes, void *buf);
int control_balloon_reached_decode(const void *buf, size_t len, uint64_t *ret_bytes);

/* What the VMM does after a guest panic. */
typedef enum ControlPanicAction {
        CONTROL_PANIC_STOP = 0,         /* the VMM exits (exit status VMM_EXIT_GUEST_PANIC) */
        CONTROL_PANIC_PAUSE = 1,        /* vCPUs paused, the VM kept for inspection */
        _CONTROL_PANIC_ACTION_MAX,
} ControlPanicAction;

const char *control_panic_action_to_string(uint32_t action);
int control_panic_action_from_string(const char *s);

/* GUEST_PANIC event payload: u32 events (the pvpanic bits the guest wrote:
 * 1 PANICKED, 2 CRASH_LOADED), u32 action (ControlPanicAction). */
#define CONTROL_GUEST_PANIC_SIZE 8
size_t control_guest_panic_encode(uint32_t events, uint32_t action, void *buf);
int control_guest_panic_decode(const void *buf, size_t len, uint32_t *ret_events, uint32_t *ret_action);

/* EXITING event payload, the VMM's last message: i32 exit_code (its exit
 * status), u32 reason_length (<= CONTROL_REASON_MAX), then the reason, that
 * many bytes of text (not NUL-terminated, not trusted: escape it). */
#define CONTROL_REASON_MAX 256
#define CONTROL_EXITING_HEADER_SIZE 8
/* buf must hold CONTROL_EXITING_HEADER_SIZE + CONTROL_REASON_MAX bytes;
 * a longer reason is cut. Returns the size written. */
size_t control_exiting_encode(int32_t exit_code, const char *reason, void *buf);
/* ret_reason gets reason_length bytes and a NUL (buffer of
 * CONTROL_REASON_MAX + 1); -EBADMSG for a length over the payload or the cap. */
int control_exiting_decode(const void *buf, size_t len, int32_t *ret_exit_code, char *ret_reason);

/* DEVICE_ERROR event payload: the device as READY lists it (u16 vendor_id,
 * u16 device_id, u8 bus, u8 slot, u8 function, u8 reserved (0)), u32
 * reason_length (<= CONTROL_REASON_MAX), then the reason (text, not
 * NUL-terminated, not trusted: escape it). */
#define CONTROL_DEVICE_ERROR_HEADER_SIZE 12
size_t control_device_error_encode(const ControlDevice *d, const char *reason, void *buf);
int control_device_error_decode(const void *buf, size_t len, ControlDevice *ret, char *ret_reason);

/* ---- block devices (types 16-31) ---- */

/* DISK_RESIZE request payload (little-endian), no reply payload:
 *   0 u32 index     the block device, counting --block options from 0
 *   4 u32 reserved  0
 *   8 u64 size      the new size in bytes, a multiple of 512 */
#define CONTROL_DISK_RESIZE_REQUEST_SIZE 16
size_t control_disk_resize_request_encode(uint32_t index, uint64_t size, void *buf);
/* -EBADMSG for a wrong length, -EINVAL for a nonzero reserved field. */
int control_disk_resize_request_decode(const void *buf, size_t len, uint32_t *ret_index, uint64_t *ret_size);

/* ---- balloon (types 32-47) ---- */

/* BALLOON request payload: u64 size_bytes, the memory the guest should give
 * back (the balloon's size, not the guest's remaining RAM). */
#define CONTROL_BALLOON_REQUEST_SIZE 8
size_t control_balloon_request_encode(uint64_t size_bytes, void *buf);
int control_balloon_request_decode(const void *buf, size_t len, uint64_t *ret);

/* BALLOON_STATS request payload: u32 timeout_ms (how long the VMM waits for
 * the guest's fresh statistics; 0: answer with the last ones at once;
 * capped at CONTROL_BALLOON_STATS_TIMEOUT_MAX_MS), u32 reserved (0). */
#define CONTROL_BALLOON_STATS_REQUEST_SIZE 8
#define CONTROL_BALLOON_STATS_TIMEOUT_MAX_MS 3000
size_t control_balloon_stats_request_encode(uint32_t timeout_ms, void *buf);
/* -EINVAL for a nonzero reserved field. */
int control_balloon_stats_request_decode(const void *buf, size_t len, uint32_t *ret_timeout_ms);

/* Guest statistics tags (virtio 1.2 §5.5.6.3, Linux's 10-15 included). */
#define CONTROL_BALLOON_STAT_TAGS 16
/* snake_case names ("swap_in", "free_memory", ...), NULL for unknown tags. */
const char *control_balloon_stat_to_string(uint16_t tag);
int control_balloon_stat_from_string(const char *s);

/* BALLOON_STATS reply flags. */
#define CONTROL_BALLOON_STATS_VALID 1u /* the guest has sent statistics */
#define CONTROL_BALLOON_STATS_FRESH 2u /* they arrived while the VMM waited */

/* BALLOON_STATS reply payload. Wire layout (little-endian):
 *   0 u64 target_bytes    the balloon size asked for
 *   8 u64 actual_bytes    the size the guest's driver reports
 *  16 u64 inflated_bytes  pages the VMM saw inflated (and gave back to the host)
 *  24 u64 stats_age_ns    since the guest sent the statistics below
 *  32 u32 flags           CONTROL_BALLOON_STATS_*
 *  36 u32 n_stats
 *  40 n_stats entries of 16 bytes: u16 tag, u16 reserved, u32 reserved, u64 value */
#define CONTROL_BALLOON_STATS_HEADER_SIZE 40
#define CONTROL_BALLOON_STAT_ENTRY_SIZE 16
#define CONTROL_BALLOON_STATS_MAX_SIZE \
        (CONTROL_BALLOON_STATS_HEADER_SIZE + CONTROL_BALLOON_STAT_TAGS * CONTROL_BALLOON_STAT_ENTRY_SIZE)

typedef struct ControlBalloonStat {
        uint16_t tag;
        uint64_t value;
} ControlBalloonStat;

typedef struct ControlBalloonStats {
        uint64_t target_bytes;
        uint64_t actual_bytes;
        uint64_t inflated_bytes;
        uint64_t stats_age_ns;
        uint32_t flags;
        uint32_t n_stats;       /* <= CONTROL_BALLOON_STAT_TAGS */
        ControlBalloonStat stats[CONTROL_BALLOON_STAT_TAGS];
} ControlBalloonStats;

/* buf must hold CONTROL_BALLOON_STATS_MAX_SIZE bytes; at most
 * CONTROL_BALLOON_STAT_TAGS entries are written. Returns the size. */
size_t control_balloon_stats_encode(const ControlBalloonStats *s, void *buf);
/* -EBADMSG when shorter than its header or its n_stats entries. Entries
 * past CONTROL_BALLOON_STAT_TAGS (a newer VMM) are dropped. */
int control_balloon_stats_decode(const void *buf, size_t len, ControlBalloonStats *ret);

/* One received datagram, as read off the socket, before any validation. */
typedef struct ControlDatagram {
        uint8_t data[CONTROL_MSG_MAX];
        size_t len;             /* bytes in data (<= CONTROL_MSG_MAX) */
        size_t real_len;        /* the datagram's size as sent */
        bool truncated;         /* MSG_TRUNC: larger than CONTROL_MSG_MAX */
        bool fds_truncated;     /* MSG_CTRUNC: more fds than CONTROL_FDS_MAX */
        int fds[CONTROL_FDS_MAX];
        size_t n_fds;
} ControlDatagram;

/* Reads one datagram without blocking (MSG_DONTWAIT); received fds are
 * O_CLOEXEC and owned by the caller (see control_datagram_close_fds()).
 * Returns 0, -EAGAIN when nothing is queued, -ECONNRESET at end of stream
 * (an empty datagram reads the same and is treated as a hang-up), or another
 * negative errno from recvmsg(). */
int control_receive(int fd, ControlDatagram *ret);
void control_datagram_close_fds(ControlDatagram *d);

/* Sends header + payload (h->length bytes) + fds as one datagram, with
 * MSG_NOSIGNAL. -EMSGSIZE over CONTROL_PAYLOAD_MAX or CONTROL_FDS_MAX. */
int control_send(int fd, const ControlHeader *h, const void *payload, const int *fds, size_t n_fds);

/* Connects a SOCK_SEQPACKET|SOCK_CLOEXEC socket to path. */
int control_connect(const char *path, int *ret_fd);

typedef struct ControlReply {
        uint16_t version;       /* the peer's version (differs only with -EPROTO) */
        uint16_t type;          /* including CONTROL_REPLY */
        int32_t status;         /* 0 or the VMM's -errno */
        size_t length;
        uint8_t payload[CONTROL_PAYLOAD_MAX];
} ControlReply;

/* Sends one request and waits up to timeout_ms (< 0: forever) for its reply.
 * Returns 0 when a reply arrived; the VMM's verdict is then ret->status.
 * Returns a negative errno when no reply could be had: -ETIMEDOUT,
 * -ECONNRESET/-EPIPE (the VMM hung up), -EBADMSG (not a valid reply), ...
 * fds arriving with a reply are closed; none is expected in this version.
 * The socket must be one control_connect() made (blocking is fine). */
int control_call(int fd, uint16_t type, uint32_t id,
                 const void *payload, size_t length,
                 const int *fds, size_t n_fds,
                 int timeout_ms, ControlReply *ret);

#ifdef __cplusplus
}
#endif
