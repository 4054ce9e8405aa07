/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* virtio-balloon (virtio 1.2 §5.5): what the rest of the VMM (the control
 * socket) and the tests ask of a balloon device built from
 * virtio_balloon_ops. */

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virtio/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Feature bits (§5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* The balloon's unit, whatever the guest's page size (§5.5.6). */
#define VIRTIO_BALLOON_PAGE_SIZE 4096u

/* Statistics tags (§5.5.6.3; 10-15 from Linux 6.12's virtio_balloon.h). */
#define VIRTIO_BALLOON_S_NR 16

/* Entries of one stats buffer we look at; a driver sending more gets the
 * rest ignored, so a guest cannot make the worker loop for long. */
#define VIRTIO_BALLOON_STATS_MAX_ENTRIES 64

extern const VirtioDeviceOps virtio_balloon_ops;

typedef struct VirtioBalloonStat {
        uint16_t tag;
        uint64_t value;
} VirtioBalloonStat;

typedef struct VirtioBalloonInfo {
        uint64_t target_bytes;          /* what the host asked for (num_pages) */
        uint64_t actual_bytes;          /* what the driver says it holds (actual) */
        uint64_t inflated_bytes;        /* pages the device saw inflated and not deflated */
        bool stats_valid;               /* the driver has sent stats at least once */
        bool stats_fresh;               /* they arrived after this request */
        uint64_t stats_age_ns;          /* since they arrived (stats_valid only) */
        unsigned n_stats;
        VirtioBalloonStat stats[VIRTIO_BALLOON_S_NR]; /* ascending tags, the last value sent for each */
} VirtioBalloonInfo;

/* What the device refused or ignored, for tests and the log. */
typedef struct VirtioBalloonCounters {
        uint64_t pages_inflated, pages_deflated;
        uint64_t bad_pfns;              /* outside RAM (hole included) */
        uint64_t bad_lengths;           /* PFN buffers not a multiple of 4 bytes */
        uint64_t deflated_not_inflated;
        uint64_t bad_stats;             /* stats buffers not a multiple of 10 bytes */
        uint64_t stats_entries_dropped; /* past VIRTIO_BALLOON_STATS_MAX_ENTRIES */
        uint64_t unknown_stat_tags;
        uint64_t reported_bytes;        /* freed through free page reporting */
        uint64_t punch_failures;
} VirtioBalloonCounters;

/* Asks the guest to hold `bytes` of its RAM in the balloon (rounded down to
 * 4 KiB pages) and interrupts the driver. -EINVAL over the guest's RAM. */
int virtio_balloon_set_target(VirtioDevice *vdev, uint64_t bytes);

/* Sizes and the guest's statistics. With timeout_ms > 0 and a driver that
 * negotiated the stats queue, first asks the guest for fresh statistics
 * (§5.5.6.3: the device returns the stats buffer) and waits up to
 * timeout_ms for them; the last ones are returned otherwise. Any thread but
 * the device's worker. */
int virtio_balloon_get_info(VirtioDevice *vdev, int timeout_ms, VirtioBalloonInfo *ret);

/* The same without blocking, for an event loop (the control socket):
 * request_stats gives the current generation and, with ask, asks the guest
 * for fresh statistics and returns 1 (0 without ask or when the driver has
 * no stats queue: nothing to wait for); the event fd turns readable (eventfd counter: read it to
 * reset) whenever stats_changed(generation) may have become true, i.e. new
 * statistics arrived or the queue went away; read_info then gives the
 * numbers, stats_fresh telling whether they are newer than generation. */
int virtio_balloon_request_stats(VirtioDevice *vdev, bool ask, uint64_t *ret_generation);
int virtio_balloon_stats_event_fd(VirtioDevice *vdev);
bool virtio_balloon_stats_changed(VirtioDevice *vdev, uint64_t generation);
int virtio_balloon_read_info(VirtioDevice *vdev, uint64_t generation, VirtioBalloonInfo *ret);

void virtio_balloon_get_counters(VirtioDevice *vdev, VirtioBalloonCounters *ret);

/* Whether guest page `pfn` (4 KiB frame) is in the balloon, as the device
 * tracks it. */
bool virtio_balloon_page_inflated(VirtioDevice *vdev, uint64_t pfn);

#ifdef __cplusplus
}
#endif
