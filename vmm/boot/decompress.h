/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Host-side decompression of a bzImage's payload (the compressed vmlinux the
 * kernel's own stub would otherwise unpack under emulation, which takes minutes). */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum BootCodec {
        BOOT_CODEC_UNKNOWN,
        BOOT_CODEC_GZIP,
        BOOT_CODEC_XZ,
        BOOT_CODEC_ZSTD,
        BOOT_CODEC_LZ4,
        BOOT_CODEC_LZMA,
        BOOT_CODEC_BZIP2,
        _BOOT_CODEC_MAX,
} BootCodec;

/* By the magic at the start of the payload. */
BootCodec boot_codec_detect(const void *p, size_t n);
const char *boot_codec_to_string(BootCodec c);

/* Decompresses a payload as arch/x86/boot/compressed/Makefile builds it: the
 * codec's stream followed by (or, for gzip, ending in) the 32-bit little-endian
 * decompressed size. Returns a malloc()ed buffer of exactly that size.
 * -EOPNOTSUPP: codec unknown or not built in; -EFBIG: size over max;
 * -EBADMSG: corrupt data or size mismatch; -ENOMEM. */
int boot_decompress(BootCodec codec, const void *p, size_t n, size_t max,
                    void **ret, size_t *ret_size);

#ifdef __cplusplus
}
#endif
