/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The one typed configuration of a VMM (STYLE.md habit 14): every VM and
 * device setting of `majordome-vmm run`, with descriptors beside them.
 *
 * Two roads build it and both end in vmm_config_validate():
 *   - `majordome-vmm run` options (vmm/main.c parses each option into its
 *     field, a device's option through that device's ops->parse);
 *   - the CONFIGURE control message the daemon sends (vmm_config_send() /
 *     vmm_config_decode(), docs/control-protocol.md "configure").
 * The defaults live in vmm_config_init() and nowhere else. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/control.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: the gpu record gained context_types (32 bytes, was 28). */
#define VMM_CONFIG_VERSION 2

#define VMM_CONFIG_MEM_DEFAULT (UINT64_C(256) << 20)
#define VMM_CONFIG_MEM_ALIGN (UINT64_C(1) << 20)
#define VMM_CONFIG_MEM_MAX (UINT64_C(1) << 40)
#define VMM_CONFIG_VCPUS_MAX 254
#define VMM_CONFIG_CMDLINE_MAX 4096     /* bytes, without the NUL */
#define VMM_CONFIG_SERIAL_MAX_MIN (16 * 1024)
#define VMM_CONFIG_DEVICES_MAX 16       /* virtio devices: one PCI slot each */
#define VMM_CONFIG_DISK_ID_MAX 20       /* virtio 1.2 §5.2.6: 20 bytes of ASCII */
#define VMM_CONFIG_SOCKET_PATH_MAX 107  /* sun_path less its NUL */
#define VMM_CONFIG_VSOCK_CID_MIN 3
#define VMM_CONFIG_VSOCK_CID_MAX UINT32_C(0xfffffffe)
#define VMM_CONFIG_VSOCK_MAX_CONNECTIONS_DEFAULT 128
#define VMM_CONFIG_VSOCK_MAX_CONNECTIONS_LIMIT 4096
#define VMM_CONFIG_FS_TAG_MAX 36        /* virtio 1.2 §5.11.4: tag[36], NUL-padded */
#define VMM_CONFIG_GPU_WIDTH_DEFAULT 1024
#define VMM_CONFIG_GPU_HEIGHT_DEFAULT 768
#define VMM_CONFIG_GPU_SIZE_MAX 16384   /* a display's width or height */
#define VMM_CONFIG_GPU_DISPLAYS_DEFAULT 1
#define VMM_CONFIG_GPU_DISPLAYS_MAX 16  /* VIRTIO_GPU_MAX_SCANOUTS */
#define VMM_CONFIG_GPU_MEMORY_DEFAULT (UINT64_C(256) << 20)
#define VMM_CONFIG_GPU_MEMORY_MIN (UINT64_C(1) << 20)
#define VMM_CONFIG_GPU_MEMORY_MAX (UINT64_C(1) << 36)
/* Descriptors of one configuration: kernel, initrd, serial and at most one per device. */
#define VMM_CONFIG_FDS_MAX (3 + VMM_CONFIG_DEVICES_MAX)

/* The user a VMM started as root runs as once jailed, and its device
 * processes with it: the one the shipped sysusers.d file creates
 * (daemon/majordome.sysusers); nobody where it does not exist. The
 * environment variable names another (tests; the VMM hands it on to its
 * device processes). seccomp/jail.c looks it up; majordomed says once when
 * it is missing. */
#define VMM_JAIL_USER "majordome-vmm"
#define VMM_JAIL_USER_ENV "MAJORDOME_JAIL_USER"

/* The kinds of device a configuration can name; each is one file in
 * vmm/devices/ whose ops->name is vmm_device_kind_to_string(kind). */
typedef enum VmmDeviceKind {
        VMM_DEVICE_BALLOON = 1,
        VMM_DEVICE_BLOCK = 2,
        VMM_DEVICE_CONSOLE = 3,
        VMM_DEVICE_RNG = 4,
        VMM_DEVICE_VSOCK = 5,
        VMM_DEVICE_VHOST_USER = 6,      /* a back-end someone started (docs/vhost-user.md) */
        VMM_DEVICE_SHARED_DIR = 7,      /* a host directory over virtio-fs: the VMM starts virtiofsd */
        VMM_DEVICE_GPU = 8,             /* virtio-gpu: the VMM starts majordome-gpu (docs/gpu.md) */
        VMM_DEVICE_VIDEO_DECODER = 9,   /* virtio-video: the VMM starts majordome-video (docs/video.md) */
        VMM_DEVICE_VIDEO_ENCODER = 10,
        _VMM_DEVICE_KIND_MAX,
} VmmDeviceKind;

const char *vmm_device_kind_to_string(uint32_t kind);
int vmm_device_kind_from_string(const char *s);

typedef enum VmmSerial {
        VMM_SERIAL_NONE = 0,    /* COM1 output discarded */
        VMM_SERIAL_STDOUT = 1,  /* the VMM's stdout, input from its stdin */
        VMM_SERIAL_FD = 2,      /* serial_fd */
        _VMM_SERIAL_MAX,
} VmmSerial;

typedef enum VmmConsoleBackend {
        VMM_CONSOLE_STDOUT = 0,
        VMM_CONSOLE_FD = 1,     /* output to and input from fd */
        VMM_CONSOLE_SOCKET = 2, /* a socket the VMM listens on at path */
        VMM_CONSOLE_FILE = 3,   /* output only, to fd (run's file:PATH) */
        _VMM_CONSOLE_BACKEND_MAX,
} VmmConsoleBackend;

/* The device types a vhost-user back-end may serve (virtio 1.2 §5 ids). */
#define VMM_VHOST_USER_RNG 4
#define VMM_VHOST_USER_FS 26
#define VMM_VHOST_USER_GPU 16
#define VMM_VHOST_USER_VIDEO_ENCODER 30
#define VMM_VHOST_USER_VIDEO_DECODER 31
const char *vmm_vhost_user_type_to_string(uint32_t type);
int vmm_vhost_user_type_from_string(const char *s);

typedef enum VmmFsCache {
        VMM_FS_CACHE_AUTO = 0,
        VMM_FS_CACHE_ALWAYS = 1,
        VMM_FS_CACHE_NEVER = 2,
        _VMM_FS_CACHE_MAX,
} VmmFsCache;

typedef enum VmmGpuBackend {
        VMM_GPU_BACKEND_2D = 0,         /* 2D resources in host memory */
        VMM_GPU_BACKEND_VIRGL = 1,      /* virglrenderer: 3D on the host's GL (llvmpipe here) */
        _VMM_GPU_BACKEND_MAX,
} VmmGpuBackend;

typedef enum VmmVideoBackend {
        VMM_VIDEO_BACKEND_FFMPEG = 0,   /* libavcodec */
        _VMM_VIDEO_BACKEND_MAX,
} VmmVideoBackend;

const char *vmm_video_backend_to_string(uint32_t backend);
int vmm_video_backend_from_string(const char *s);

const char *vmm_gpu_backend_to_string(uint32_t backend);
int vmm_gpu_backend_from_string(const char *s);

/* virtio-gpu context types the guest may create, one bit per capset id
 * (virtio 1.2 §5.7.6.8 VIRTIO_GPU_CMD_GET_CAPSET_INFO: 1 virgl, 2 virgl2;
 * 5 cross-domain, crosvm's id), as crosvm's context_types mask is. 0: the
 * backend's own (virglrenderer's virgl and virgl2, none for 2d). */
#define VMM_GPU_CONTEXT_VIRGL (UINT32_C(1) << 1)
#define VMM_GPU_CONTEXT_VIRGL2 (UINT32_C(1) << 2)
#define VMM_GPU_CONTEXT_CROSS_DOMAIN (UINT32_C(1) << 5)
#define VMM_GPU_CONTEXT_ALL (VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_VIRGL2 | VMM_GPU_CONTEXT_CROSS_DOMAIN)
/* "virgl:virgl2:cross-domain" (crosvm's spelling, names colon-separated,
 * in bit order) into buf; "" for 0. -ENOBUFS if it does not fit, -EINVAL
 * for bits outside VMM_GPU_CONTEXT_ALL. */
#define VMM_GPU_CONTEXT_TYPES_STRING_MAX sizeof("virgl:virgl2:cross-domain")
int vmm_gpu_context_types_to_string(uint32_t mask, char *buf, size_t size);
typedef struct VmmConfigError VmmConfigError;
/* Parses a colon-separated list of those names into a mask. -EINVAL for an
 * empty list, an empty or unknown name; -EEXIST for a name given twice;
 * error's message names it. *ret untouched on failure. */
int vmm_gpu_context_types_from_string(const char *s, uint32_t *ret, VmmConfigError *error);

const char *vmm_fs_cache_to_string(uint32_t cache);
int vmm_fs_cache_from_string(const char *s);

/* A virtio-fs tag, what the guest mounts by (mount -t virtiofs TAG): 1 to
 * VMM_CONFIG_FS_TAG_MAX printable ASCII bytes without space, ':', ',', '/'
 * or '\' (a name, never a path or an option list). */
bool vmm_fs_tag_char_ok(char c);
bool vmm_fs_tag_is_valid(const char *tag);

typedef struct VmmDevice {
        uint32_t kind;          /* VmmDeviceKind */
        union {
                struct {
                        bool deflate_on_oom;
                        bool page_reporting;
                } balloon;
                struct {
                        int fd;
                        bool read_only;
                        bool sparse;
                        char id[VMM_CONFIG_DISK_ID_MAX + 1]; /* "": none */
                } block;
                struct {
                        uint32_t backend; /* VmmConsoleBackend */
                        int fd;           /* VMM_CONSOLE_FD, VMM_CONSOLE_FILE */
                        char path[VMM_CONFIG_SOCKET_PATH_MAX + 1]; /* VMM_CONSOLE_SOCKET */
                } console;
                struct {
                        uint32_t cid;
                        uint32_t max_connections;
                        char path[VMM_CONFIG_SOCKET_PATH_MAX + 1];
                } vsock;
                struct {
                        uint32_t type;  /* VMM_VHOST_USER_* */
                        int fd;         /* a connected AF_UNIX stream socket */
                        char tag[VMM_CONFIG_FS_TAG_MAX + 1]; /* fs: "" asks the back-end (GET_CONFIG) */
                } vhost_user;
                struct {
                        int fd;         /* the directory, O_DIRECTORY */
                        uint32_t cache; /* VmmFsCache */
                        bool read_only;
                        /* The daemon's live-share root: served as it is
                         * (no mount clone), so that shares it mounts in
                         * it later appear to the guest. */
                        bool live;
                        char tag[VMM_CONFIG_FS_TAG_MAX + 1];
                } shared_dir;
                struct {
                        uint32_t backend;       /* VmmGpuBackend */
                        uint32_t width;         /* of every display */
                        uint32_t height;
                        uint32_t displays;      /* scanouts; 0: none (render only) */
                        uint64_t max_memory;    /* host bytes for the guest's resources */
                        /* The host compositor's socket: an O_PATH handle to
                         * its inode (--wayland-sock, the daemon) or a
                         * connection; -1: headless. */
                        int wayland_fd;
                        uint32_t context_types; /* VMM_GPU_CONTEXT_* bits; 0: the backend's own */
                } gpu;
                struct {
                        uint32_t backend;       /* VmmVideoBackend */
                } video;                        /* VIDEO_DECODER, VIDEO_ENCODER */
        };
} VmmDevice;

typedef struct VmmConfig {
        uint64_t mem_size;
        uint32_t n_vcpus;
        int kernel_fd;
        int initrd_fd;          /* -1: none */
        char cmdline[VMM_CONFIG_CMDLINE_MAX + 1]; /* "": none */
        uint32_t serial;        /* VmmSerial */
        int serial_fd;          /* VMM_SERIAL_FD */
        uint64_t serial_max;    /* 0: no cap; else >= VMM_CONFIG_SERIAL_MAX_MIN */
        bool debug_exit;
        bool pvpanic;
        uint32_t on_panic;      /* ControlPanicAction */
        bool decompress;        /* decompress a bzImage's payload on the host side */
        VmmDevice devices[VMM_CONFIG_DEVICES_MAX];
        unsigned n_devices;
} VmmConfig;

/* The descriptor a device names (block, console fd or file, vhost-user
 * socket, shared directory, the GPU's compositor connection when it has
 * one), or NULL. */
int *vmm_device_fd(VmmDevice *d);

/* The defaults: 256 MiB, one vCPU, serial on stdout, decompression on,
 * no descriptors (-1), no devices. */
void vmm_config_init(VmmConfig *c);
/* Closes every descriptor the configuration names (not stdout) and sets
 * them to -1: for the one that owns them (the VMM, or a receiver that
 * failed). */
void vmm_config_close_fds(VmmConfig *c);

/* The optional part of this build (meson's gpu, wayland and video
 * features, majordome-features.h) that a device of kind needs and the
 * build lacks: "gpu", "wayland" or "video"; NULL when it has what is needed.
 * wayland: the device uses the host's compositor (its socket, or the
 * cross-domain context). vmm_config_validate() refuses such a device with
 * -EOPNOTSUPP; the daemon refuses its StartVm keys the same way. */
const char *vmm_config_missing_feature(uint32_t kind, bool wayland);

/* Why a configuration was refused: the setting and the rule, one line. */
struct VmmConfigError {
        char message[256];
        bool bad_input;         /* the kernel or initrd descriptor is unusable */
};

/* The one check of every value: ranges, device counts (one balloon, one
 * vsock), disk ids, socket path lengths, and that each descriptor is of the
 * right kind (kernel/initrd: a regular file or pipe open for reading; serial and
 * console: open for writing, not a directory; disk: a regular file or block
 * device, writable unless read-only, never the same image twice; no O_PATH
 * anywhere but the GPU's compositor socket). The GPU's context types: known
 * bits, virgl and virgl2 only with the virglrenderer backend. A device
 * this build left out (vmm_config_missing_feature()): -EOPNOTSUPP.
 * -EINVAL, -ERANGE, -EBADF, -EEXIST or -EACCES with a message. */
int vmm_config_validate(const VmmConfig *c, VmmConfigError *error);

/* ---- the CONFIGURE message (docs/control-protocol.md) ---- */

/* The configuration is one blob, sent in 1 to VMM_CONFIG_PARTS_MAX
 * CONFIGURE datagrams; each carries a part header, a slice of the blob and
 * at most CONTROL_FDS_MAX of its descriptors. */
#define VMM_CONFIG_PARTS_MAX 4
#define VMM_CONFIG_PART_HEADER_SIZE 8
#define VMM_CONFIG_PART_DATA_MAX (CONTROL_PAYLOAD_MAX - VMM_CONFIG_PART_HEADER_SIZE)
#define VMM_CONFIG_BLOB_MAX (VMM_CONFIG_PARTS_MAX * VMM_CONFIG_PART_DATA_MAX)
#define VMM_CONFIG_HEADER_SIZE 56
#define VMM_CONFIG_FD_NONE UINT32_C(0xffffffff)

/* Encodes c into buf (VMM_CONFIG_BLOB_MAX bytes) and its descriptors, in
 * the order the blob's indices name them, into fds (VMM_CONFIG_FDS_MAX).
 * -EINVAL for a configuration that vmm_config_validate()'s value checks
 * refuse (descriptors are not looked at). */
int vmm_config_encode(const VmmConfig *c, uint8_t *buf, size_t *ret_size, int *fds, size_t *ret_n_fds);
/* Decodes a blob and the descriptors that came with it: every index in
 * range and each descriptor named exactly once, else -EBADMSG; a version
 * other than VMM_CONFIG_VERSION -EPROTO; then vmm_config_validate(). On
 * success ret names the descriptors (and owns them); on failure nothing is
 * closed: the caller still owns fds. */
int vmm_config_decode(const uint8_t *buf, size_t size, const int *fds, size_t n_fds,
                      VmmConfig *ret, VmmConfigError *error);

/* Sends c as CONFIGURE datagrams with ids first_id, first_id + 1, ...;
 * returns the number of datagrams sent (each is answered by one reply). */
int vmm_config_send(int fd, uint32_t first_id, const VmmConfig *c);

/* Collects CONFIGURE parts as they arrive. */
typedef struct VmmConfigReader {
        uint8_t blob[VMM_CONFIG_BLOB_MAX];
        size_t size;
        int fds[VMM_CONFIG_FDS_MAX];
        size_t n_fds;
        unsigned next_part;
        unsigned n_parts;
} VmmConfigReader;

void vmm_config_reader_init(VmmConfigReader *r);
/* Closes the descriptors collected and not handed out. */
void vmm_config_reader_done(VmmConfigReader *r);
/* Takes one CONFIGURE payload and its fds (taken over on success and on
 * failure alike). Returns 0 when more parts are due, 1 once the last one
 * came and ret holds the configuration (its descriptors now ret's), or a
 * negative errno: -EBADMSG (a part out of order, a part count that changed
 * or is out of range, too many fds), -EMSGSIZE, or vmm_config_decode()'s. */
int vmm_config_reader_add(VmmConfigReader *r, const uint8_t *payload, size_t length,
                          const int *fds, size_t n_fds, VmmConfig *ret, VmmConfigError *error);

/* Reads CONFIGURE datagrams from fd up to the last part, waiting at most
 * timeout_ms in all, and answers each with a reply of its status (the last
 * one's is the verdict on the whole configuration). Any other message
 * before the last part is answered -EBADMSG and ends the wait with it.
 * -ETIMEDOUT, -ECONNRESET, or the error the VMM answered. */
int vmm_config_receive(int fd, int timeout_ms, VmmConfig *ret, VmmConfigError *error);

#ifdef __cplusplus
}
#endif
