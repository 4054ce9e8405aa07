/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#if HAVE_BZIP2
#include <bzlib.h>
#endif

#include "vmm/boot/decompress.h"
#include "common/macro.h"
#include "common/string-table.h"
#include "common/unaligned.h"

/* liblzma's memory cap: the kernel's xz uses a dictionary of at most 32 MiB. */
#define LZMA_MEMLIMIT (256 * MiB)
/* "lz4 -l" legacy frames: every block decompresses to at most 8 MiB. */
#define LZ4_LEGACY_MAGIC UINT32_C(0x184c2102)
#define LZ4_LEGACY_BLOCK (8 * MiB)

static const char *const codec_names[_BOOT_CODEC_MAX] = {
        [BOOT_CODEC_UNKNOWN] = "unknown",
        [BOOT_CODEC_GZIP] = "gzip",
        [BOOT_CODEC_XZ] = "xz",
        [BOOT_CODEC_ZSTD] = "zstd",
        [BOOT_CODEC_LZ4] = "lz4",
        [BOOT_CODEC_LZMA] = "lzma",
        [BOOT_CODEC_BZIP2] = "bzip2",
};

DEFINE_STRING_TABLE_TO_STRING(boot_codec, BootCodec, codec_names)

BootCodec boot_codec_detect(const void *p, size_t n) {
        static const struct {
                BootCodec codec;
                size_t len;
                const char *magic;
        } table[] = {
                /* The same magics as the kernel's lib/decompress.c. */
                { BOOT_CODEC_GZIP, 2, "\x1f\x8b" },
                { BOOT_CODEC_XZ, 6, "\xfd" "7zXZ\0" },
                { BOOT_CODEC_ZSTD, 4, "\x28\xb5\x2f\xfd" },
                { BOOT_CODEC_LZ4, 4, "\x02\x21\x4c\x18" },
                { BOOT_CODEC_LZMA, 3, "\x5d\0\0" },
                { BOOT_CODEC_BZIP2, 3, "BZh" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(table); i++)
                if (n >= table[i].len && memcmp(p, table[i].magic, table[i].len) == 0)
                        return table[i].codec;
        return BOOT_CODEC_UNKNOWN;
}

static int gunzip(const uint8_t *in, size_t n, uint8_t *out, size_t size) {
        z_stream s = {};
        int zr;

        if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        s.next_in = (Bytef *) in;
        s.avail_in = (uInt) n;
        s.next_out = out;
        s.avail_out = (uInt) size;
        zr = inflate(&s, Z_FINISH);
        inflateEnd(&s);
        return zr == Z_STREAM_END && s.total_out == size ? 0 : -EBADMSG;
}

static int unlzma(BootCodec codec, const uint8_t *in, size_t n, uint8_t *out, size_t size) {
        lzma_stream s = LZMA_STREAM_INIT;
        lzma_ret lr;

        /* The .xz decoder handles the kernel's BCJ x86 filter itself. */
        lr = codec == BOOT_CODEC_XZ ? lzma_stream_decoder(&s, LZMA_MEMLIMIT, 0)
                                    : lzma_alone_decoder(&s, LZMA_MEMLIMIT);
        if (lr != LZMA_OK)
                return -ENOMEM;
        s.next_in = in;
        s.avail_in = n;
        s.next_out = out;
        s.avail_out = size;
        /* With LZMA_FINISH a call that cannot progress returns LZMA_BUF_ERROR,
         * so this loop ends. */
        do
                lr = lzma_code(&s, LZMA_FINISH);
        while (lr == LZMA_OK);
        lzma_end(&s);
        return lr == LZMA_STREAM_END && s.total_out == size ? 0 : -EBADMSG;
}

static int unzstd(const uint8_t *in, size_t n, uint8_t *out, size_t size) {
        size_t z = ZSTD_decompress(out, size, in, n);

        return !ZSTD_isError(z) && z == size ? 0 : -EBADMSG;
}

static int unlz4(const uint8_t *in, size_t n, uint8_t *out, size_t size) {
        size_t pos = 4, done = 0;

        while (pos < n) {
                uint32_t chunk;
                int d;

                if (n - pos < 4)
                        return -EBADMSG;
                chunk = get_le32(in + pos);
                pos += 4;
                /* lz4 may concatenate legacy archives, as the kernel's unlz4 allows. */
                if (chunk == LZ4_LEGACY_MAGIC)
                        continue;
                if (chunk == 0 || chunk > n - pos || chunk > (uint32_t) LZ4_compressBound(LZ4_LEGACY_BLOCK))
                        return -EBADMSG;
                d = LZ4_decompress_safe((const char *) in + pos, (char *) out + done, (int) chunk,
                                        (int) MIN(size - done, LZ4_LEGACY_BLOCK));
                if (d < 0)
                        return -EBADMSG;
                done += (size_t) d;
                pos += chunk;
        }
        return done == size ? 0 : -EBADMSG;
}

static int bunzip2(const uint8_t *in, size_t n, uint8_t *out, size_t size) {
#if HAVE_BZIP2
        unsigned produced = (unsigned) size;

        if (n > UINT32_MAX)
                return -EBADMSG;
        if (BZ2_bzBuffToBuffDecompress((char *) out, &produced, (char *) in, (unsigned) n, 0, 0) != BZ_OK)
                return -EBADMSG;
        return produced == size ? 0 : -EBADMSG;
#else
        return -EOPNOTSUPP;
#endif
}

int boot_decompress(BootCodec codec, const void *p, size_t n, size_t max,
                    void **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = NULL;
        const uint8_t *in = p;
        size_t size;
        int r;

        if (codec <= BOOT_CODEC_UNKNOWN || codec >= _BOOT_CODEC_MAX)
                return -EOPNOTSUPP;
#if !HAVE_BZIP2
        if (codec == BOOT_CODEC_BZIP2)
                return -EOPNOTSUPP;
#endif
        /* Magic plus the trailing size: anything shorter is not a stream. */
        if (n < 8 || n > UINT32_MAX)
                return -EBADMSG;
        size = get_le32(in + n - 4);
        if (size == 0)
                return -EBADMSG;
        if (size > max)
                return -EFBIG;

        out = malloc(size);
        if (!out)
                return -ENOMEM;

        /* gzip's trailer is part of its stream; the others had the size appended. */
        switch (codec) {
        case BOOT_CODEC_GZIP:
                r = gunzip(in, n, out, size);
                break;
        case BOOT_CODEC_XZ:
        case BOOT_CODEC_LZMA:
                r = unlzma(codec, in, n - 4, out, size);
                break;
        case BOOT_CODEC_ZSTD:
                r = unzstd(in, n - 4, out, size);
                break;
        case BOOT_CODEC_LZ4:
                r = unlz4(in, n - 4, out, size);
                break;
        case BOOT_CODEC_BZIP2:
                r = bunzip2(in, n - 4, out, size);
                break;
        default:
                r = -EOPNOTSUPP;
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(out);
        *ret_size = size;
        return 0;
}
