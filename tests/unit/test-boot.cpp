/* SPDX-License-Identifier: BSD-3-Clause */
/* The x86-64 direct-boot loader against synthetic kernels built here: a
 * minimal ELF64, and bzImages around it whose payload is compressed at test
 * time with the same libraries the kernel's build uses. */
#include <gtest/gtest.h>

#include <asm/bootparam.h>
#include <asm/e820.h>
#include <elf.h>
#include <lz4.h>
#include <lzma.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#if HAVE_BZIP2
#include <bzlib.h>
#endif

#include <string>
#include <vector>

#include "vmm/boot/boot.h"
#include "vmm/boot/decompress.h"
#include "vmm/boot/mptable.h"
#include "vmm/layout.h"

typedef std::vector<uint8_t> Bytes;

/* ---- synthetic kernels ---- */

struct ElfSpec {
        uint64_t paddr = 16 * MiB;
        uint64_t vaddr = UINT64_C(0xffffffff81000000);
        uint64_t entry_offset = 0x40;
        uint16_t machine = EM_X86_64;
        uint8_t elf_class = ELFCLASS64;
        uint64_t bss = 0x2000;
        uint64_t phoff = sizeof(Elf64_Ehdr);
        uint32_t flags = PF_R | PF_X;
};

/* vector::insert trips GCC 12's -Warray-bounds here; memcpy does not. */
static void append(Bytes &b, const uint8_t *p, size_t n) {
        size_t old = b.size();
        b.resize(old + n);
        if (n > 0)
                memcpy(b.data() + old, p, n);
}

static Bytes code_bytes(size_t n) {
        Bytes b(n);
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) ((i * 7) ^ (i >> 5));
        return b;
}

static Bytes make_elf(const ElfSpec &s) {
        Bytes code = code_bytes(8192);
        Elf64_Ehdr eh = {};
        Elf64_Phdr ph = {};

        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = s.elf_class;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_type = ET_EXEC;
        eh.e_machine = s.machine;
        eh.e_version = EV_CURRENT;
        eh.e_entry = s.vaddr + s.entry_offset;
        eh.e_phoff = s.phoff;
        eh.e_ehsize = sizeof(eh);
        eh.e_phentsize = sizeof(ph);
        eh.e_phnum = 1;
        ph.p_type = PT_LOAD;
        ph.p_flags = s.flags;
        ph.p_offset = sizeof(eh) + sizeof(ph);
        ph.p_vaddr = s.vaddr;
        ph.p_paddr = s.paddr;
        ph.p_filesz = code.size();
        ph.p_memsz = code.size() + s.bss;
        ph.p_align = 4096;

        Bytes f(sizeof(eh) + sizeof(ph));
        memcpy(f.data(), &eh, sizeof(eh));
        memcpy(f.data() + sizeof(eh), &ph, sizeof(ph));
        append(f, code.data(), code.size());
        return f;
}

static const size_t ELF_CODE_OFFSET = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);

struct BzSpec {
        uint16_t boot_flag = 0xaa55;
        uint32_t magic = 0x53726448; /* "HdrS" */
        uint16_t version = 0x20d;
        uint8_t setup_sects = 1;
        uint16_t xloadflags = XLF_KERNEL_64;
        uint8_t relocatable = 1;
        uint32_t alignment = 2 * MiB;
        uint64_t pref_address = 16 * MiB;
        uint32_t init_size = 4 * MiB;
        uint32_t cmdline_size = 2047;
        uint32_t initrd_addr_max = 0x7fffffff;
        Bytes payload = Bytes(64, 0x5a); /* no known magic: boots as is */
        int64_t syssize = -1;           /* -1: the real size */
};

static Bytes make_bzimage(const BzSpec &s) {
        size_t setup = ((size_t) s.setup_sects + 1) * 512;
        struct setup_header h = {};
        Bytes pm(1024, 0x90); /* the decompressor stub, here NOPs */

        size_t payload_offset = pm.size();
        append(pm, s.payload.data(), s.payload.size());
        pm.resize((pm.size() + 15) / 16 * 16, 0);

        h.setup_sects = s.setup_sects;
        h.syssize = s.syssize < 0 ? (uint32_t) (pm.size() / 16) : (uint32_t) s.syssize;
        h.boot_flag = s.boot_flag;
        /* jmp short to the end of the header */
        h.jump = (uint16_t) (0xeb | (0x1f1 + sizeof(h) - 0x202) << 8);
        h.header = s.magic;
        h.version = s.version;
        h.loadflags = LOADED_HIGH;
        h.initrd_addr_max = s.initrd_addr_max;
        h.kernel_alignment = s.alignment;
        h.relocatable_kernel = s.relocatable;
        h.xloadflags = s.xloadflags;
        h.cmdline_size = s.cmdline_size;
        h.payload_offset = (uint32_t) payload_offset;
        h.payload_length = (uint32_t) s.payload.size();
        h.pref_address = s.pref_address;
        h.init_size = s.init_size;

        Bytes k(setup, 0);
        memcpy(k.data() + 0x1f1, &h, sizeof(h));
        append(k, pm.data(), pm.size());
        return k;
}

/* ---- compressors, framed like arch/x86/boot/compressed/Makefile ---- */

static void append_size(Bytes &b, size_t n) {
        for (int i = 0; i < 4; i++)
                b.push_back((uint8_t) (n >> (8 * i)));
}

static Bytes compress_gzip(const Bytes &in) {
        z_stream s = {};
        EXPECT_EQ(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
        Bytes out(deflateBound(&s, in.size()));
        s.next_in = (Bytef *) in.data();
        s.avail_in = (uInt) in.size();
        s.next_out = out.data();
        s.avail_out = (uInt) out.size();
        EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
        out.resize(s.total_out);
        deflateEnd(&s);
        return out; /* gzip's own trailer ends in the size */
}

static Bytes compress_xz(const Bytes &in) {
        lzma_options_lzma opt;
        lzma_lzma_preset(&opt, 6);
        /* The kernel's "xz --x86 --lzma2" with a CRC32 check. */
        lzma_filter filters[] = {
                { LZMA_FILTER_X86, nullptr },
                { LZMA_FILTER_LZMA2, &opt },
                { LZMA_VLI_UNKNOWN, nullptr },
        };
        Bytes out(in.size() + 4096);
        size_t pos = 0;
        EXPECT_EQ(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, nullptr, in.data(), in.size(),
                                            out.data(), &pos, out.size()), LZMA_OK);
        out.resize(pos);
        append_size(out, in.size());
        return out;
}

static Bytes compress_lzma(const Bytes &in) {
        lzma_options_lzma opt;
        lzma_stream s = LZMA_STREAM_INIT;
        lzma_lzma_preset(&opt, 6);
        EXPECT_EQ(lzma_alone_encoder(&s, &opt), LZMA_OK);
        Bytes out(in.size() + 4096);
        s.next_in = in.data();
        s.avail_in = in.size();
        s.next_out = out.data();
        s.avail_out = out.size();
        EXPECT_EQ(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
        out.resize(s.total_out);
        lzma_end(&s);
        append_size(out, in.size());
        return out;
}

static Bytes compress_zstd(const Bytes &in) {
        Bytes out(ZSTD_compressBound(in.size()));
        size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 19);
        EXPECT_FALSE(ZSTD_isError(n));
        out.resize(n);
        append_size(out, in.size());
        return out;
}

static Bytes compress_lz4(const Bytes &in) {
        /* "lz4 -l": legacy magic, then 32-bit-sized blocks. */
        Bytes out = { 0x02, 0x21, 0x4c, 0x18 };
        Bytes block(LZ4_compressBound((int) in.size()));
        int n = LZ4_compress_default((const char *) in.data(), (char *) block.data(), (int) in.size(), (int) block.size());
        EXPECT_GT(n, 0);
        append_size(out, (size_t) n);
        append(out, block.data(), (size_t) n);
        append_size(out, in.size());
        return out;
}

#if HAVE_BZIP2
static Bytes compress_bzip2(const Bytes &in) {
        Bytes out(in.size() + 4096);
        unsigned n = (unsigned) out.size();
        EXPECT_EQ(BZ2_bzBuffToBuffCompress((char *) out.data(), &n, (char *) in.data(), (unsigned) in.size(), 9, 0, 0), BZ_OK);
        out.resize(n);
        append_size(out, in.size());
        return out;
}
#endif

struct Codec {
        const char *name;
        Bytes (*compress)(const Bytes &);
};

static const Codec codecs[] = {
        { "gzip", compress_gzip },
        { "xz", compress_xz },
        { "lzma", compress_lzma },
        { "zstd", compress_zstd },
        { "lz4", compress_lz4 },
#if HAVE_BZIP2
        { "bzip2", compress_bzip2 },
#endif
};

/* ---- fixture ---- */

class Boot : public ::testing::Test {
protected:
        GuestMemory *m = nullptr;
        BootInfo info = {};
        BootError err = {};

        void SetUp() override { ASSERT_EQ(guest_memory_new(256 * MiB, &m), 0); }
        void TearDown() override { guest_memory_free(m); }

        void use_ram(uint64_t size) {
                guest_memory_free(m);
                m = nullptr;
                ASSERT_EQ(guest_memory_new(size, &m), 0);
        }

        int load(const Bytes &kernel, const char *cmdline = nullptr, const Bytes *initrd = nullptr,
                 unsigned n_cpus = 1, bool decompress = true) {
                BootConfig c = {};
                c.kernel = kernel.data();
                c.kernel_size = kernel.size();
                c.initrd = initrd ? initrd->data() : nullptr;
                c.initrd_size = initrd ? initrd->size() : 0;
                c.cmdline = cmdline;
                c.n_cpus = n_cpus;
                c.decompress = decompress;
                return boot_load(m, &c, &info, &err);
        }

        struct boot_params params() {
                struct boot_params bp;
                EXPECT_EQ(guest_read(m, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)), 0);
                return bp;
        }

        Bytes read(uint64_t gpa, size_t n) {
                Bytes b(n);
                EXPECT_EQ(guest_read(m, gpa, b.data(), n), 0);
                return b;
        }

        std::string reason() const { return err.reason; }

        /* The one setup_data entry, a SETUP_RNG_SEED, in the reserved BIOS range
         * the e820 map already has (so Linux splits no RAM entry for it). */
        Bytes rng_seed() {
                struct boot_params bp = params();
                struct setup_data h;

                EXPECT_EQ((uint64_t) bp.hdr.setup_data, (uint64_t) LAYOUT_SETUP_DATA);
                EXPECT_EQ(guest_read(m, bp.hdr.setup_data, &h, sizeof(h)), 0);
                EXPECT_EQ((uint64_t) h.next, 0u);
                EXPECT_EQ((uint32_t) h.type, (uint32_t) SETUP_RNG_SEED);
                EXPECT_EQ((uint32_t) h.len, 32u);
                return read(bp.hdr.setup_data + sizeof(h), h.len);
        }
};

#define EXPECT_REASON_HAS(text) EXPECT_NE(reason().find(text), std::string::npos) << "reason: " << reason()

/* ---- ELF ---- */

TEST_F(Boot, ElfLoadsAtPaddrAndTranslatesVirtualEntry) {
        ElfSpec s;
        Bytes elf = make_elf(s);
        /* Junk where the bss goes, to see it zeroed. */
        ASSERT_EQ(guest_write(m, s.paddr + 8192, Bytes(s.bss, 0xcc).data(), s.bss), 0);

        ASSERT_EQ(load(elf), 0) << reason();

        EXPECT_EQ(info.kind, BOOT_KIND_ELF);
        EXPECT_EQ(info.entry, s.paddr + s.entry_offset);
        EXPECT_EQ(info.zero_page, (uint64_t) LAYOUT_ZERO_PAGE);
        EXPECT_EQ(info.kernel_start, s.paddr);
        EXPECT_EQ(info.kernel_end, s.paddr + 8192 + s.bss);
        /* The profiler's text span is virtual, like the kernel's symbols. */
        EXPECT_EQ(info.text_start, s.vaddr);
        EXPECT_EQ(info.text_end, s.vaddr + 8192 + s.bss);
        EXPECT_EQ(read(s.paddr, 8192), Bytes(elf.begin() + ELF_CODE_OFFSET, elf.end()));
        EXPECT_EQ(read(s.paddr + 8192, s.bss), Bytes(s.bss, 0));
}

TEST_F(Boot, ElfWithoutExecutableSegmentHasNoTextSpan) {
        ElfSpec s;
        s.flags = PF_R | PF_W;

        ASSERT_EQ(load(make_elf(s)), 0) << reason();

        EXPECT_EQ(info.text_start, 0u);
        EXPECT_EQ(info.text_end, 0u);
}

TEST_F(Boot, ElfTestGuestAt1MiBWithEqualAddresses) {
        ElfSpec s;
        s.paddr = s.vaddr = MiB;
        s.entry_offset = 0;

        ASSERT_EQ(load(make_elf(s)), 0) << reason();

        EXPECT_EQ(info.entry, MiB);
        EXPECT_EQ(info.kernel_start, MiB);
}

TEST_F(Boot, ElfGetsSyntheticSetupHeader) {
        ASSERT_EQ(load(make_elf(ElfSpec())), 0) << reason();

        struct boot_params bp = params();
        EXPECT_EQ((unsigned) bp.hdr.version, 0x20fu);
        EXPECT_EQ((unsigned) bp.hdr.boot_flag, 0xaa55u);
        EXPECT_EQ(memcmp(&bp.hdr.header, "HdrS", 4), 0);
        EXPECT_EQ((unsigned) bp.hdr.type_of_loader, 0xffu);
        EXPECT_EQ((unsigned) bp.hdr.loadflags, (unsigned) (LOADED_HIGH | CAN_USE_HEAP));
        EXPECT_EQ((unsigned) bp.hdr.cmdline_size, (unsigned) LAYOUT_CMDLINE_MAX - 1);
        EXPECT_EQ((unsigned) bp.hdr.kernel_alignment, (unsigned) (2 * MiB));
}

TEST_F(Boot, ElfWrongMachineIsRejected) {
        ElfSpec s;
        s.machine = EM_386;
        EXPECT_EQ(load(make_elf(s)), -ENOEXEC);
        EXPECT_REASON_HAS("not x86-64");
}

TEST_F(Boot, Elf32BitClassIsRejected) {
        ElfSpec s;
        s.elf_class = ELFCLASS32;
        EXPECT_EQ(load(make_elf(s)), -ENOEXEC);
        EXPECT_REASON_HAS("ELFCLASS64");
}

TEST_F(Boot, ElfSegmentOutsideRamIsRejected) {
        ElfSpec s;
        s.paddr = 512 * MiB;
        EXPECT_EQ(load(make_elf(s)), -ENOMEM);
        EXPECT_REASON_HAS("outside guest RAM");
}

TEST_F(Boot, ElfSegmentStraddlingRamEndIsRejected) {
        ElfSpec s;
        s.paddr = 256 * MiB - 4096;
        EXPECT_EQ(load(make_elf(s)), -ENOMEM);
        EXPECT_REASON_HAS("outside guest RAM");
}

TEST_F(Boot, ElfPaddrPlusMemszOverflowIsRejected) {
        ElfSpec s;
        s.paddr = UINT64_MAX - 4095;
        EXPECT_EQ(load(make_elf(s)), -ENOEXEC);
        EXPECT_REASON_HAS("overflows");
}

TEST_F(Boot, ElfSegmentBelow1MiBIsRejected) {
        ElfSpec s;
        s.paddr = 0x7000; /* would overwrite the zero page */
        EXPECT_EQ(load(make_elf(s)), -ENOEXEC);
        EXPECT_REASON_HAS("below 1 MiB");
}

TEST_F(Boot, ElfPhoffPastEndIsRejected) {
        ElfSpec s;
        s.phoff = 1 << 20;
        EXPECT_EQ(load(make_elf(s)), -ENOEXEC);
        EXPECT_REASON_HAS("past the end");
}

TEST_F(Boot, ElfSegmentDataPastEndIsRejected) {
        Bytes elf = make_elf(ElfSpec());
        elf.resize(elf.size() - 100);
        EXPECT_EQ(load(elf), -ENOEXEC);
        EXPECT_REASON_HAS("past the end");
}

TEST_F(Boot, ElfEntryOutsideSegmentsIsRejected) {
        ElfSpec s;
        s.entry_offset = 64 * MiB;
        EXPECT_EQ(load(make_elf(s)), -ENOEXEC);
        EXPECT_REASON_HAS("entry");
}

/* ---- bzImage, booted through its own decompressor ---- */

TEST_F(Boot, BzImageLoadsAtPrefAddressWithEntryPlus0x200) {
        BzSpec s;
        Bytes k = make_bzimage(s);

        ASSERT_EQ(load(k, nullptr, nullptr, 1, false), 0) << reason();

        EXPECT_EQ(info.kind, BOOT_KIND_BZIMAGE);
        EXPECT_EQ(info.kernel_start, 16 * MiB);
        EXPECT_EQ(info.entry, 16 * MiB + 0x200);
        EXPECT_EQ(info.kernel_end, 16 * MiB + s.init_size);
        /* Its symbols are unknown until the guest decompresses itself. */
        EXPECT_EQ(info.text_start, 0u);
        EXPECT_EQ(info.text_end, 0u);
        EXPECT_EQ(read(16 * MiB, k.size() - 1024), Bytes(k.begin() + 1024, k.end()));
}

TEST_F(Boot, BzImageBootParamsCarryHeaderAndLoaderFields) {
        ASSERT_EQ(load(make_bzimage(BzSpec()), "console=ttyS0", nullptr, 1, false), 0) << reason();

        struct boot_params bp = params();
        EXPECT_EQ((unsigned) bp.hdr.version, 0x20du);
        EXPECT_EQ((unsigned) bp.hdr.setup_sects, 1u);
        EXPECT_EQ((unsigned) bp.hdr.type_of_loader, 0xffu);
        EXPECT_EQ((unsigned) bp.hdr.loadflags, (unsigned) (LOADED_HIGH | CAN_USE_HEAP));
        EXPECT_EQ((unsigned) bp.hdr.heap_end_ptr, 0xfe00u);
        EXPECT_EQ((unsigned) bp.hdr.cmd_line_ptr, (unsigned) LAYOUT_CMDLINE);
        EXPECT_EQ((unsigned) bp.hdr.code32_start, (unsigned) (16 * MiB));
        EXPECT_EQ((unsigned) bp.hdr.xloadflags, (unsigned) XLF_KERNEL_64);
        EXPECT_EQ((unsigned) bp.hdr.ramdisk_image, 0u);
        EXPECT_EQ((unsigned) bp.sentinel, 0u);
}

TEST_F(Boot, BzImageWithoutPrefAddressLoadsAtAlignedHimem) {
        BzSpec s;
        s.pref_address = 0;
        ASSERT_EQ(load(make_bzimage(s), nullptr, nullptr, 1, false), 0) << reason();

        /* 1 MiB rounded up to the 2 MiB kernel_alignment. */
        EXPECT_EQ(info.kernel_start, 2 * MiB);
        EXPECT_EQ(info.entry, 2 * MiB + 0x200);
}

TEST_F(Boot, BzImageNotRelocatableLoadsAt1MiB) {
        BzSpec s;
        s.relocatable = 0;
        s.alignment = 3; /* ignored for fixed kernels */
        ASSERT_EQ(load(make_bzimage(s), nullptr, nullptr, 1, false), 0) << reason();

        EXPECT_EQ(info.kernel_start, MiB);
        EXPECT_EQ(info.entry, MiB + 0x200);
        /* It decompresses itself to pref_address. */
        EXPECT_EQ(info.kernel_end, 16 * MiB + s.init_size);
}

TEST_F(Boot, BzImageSetupSectsZeroMeansFour) {
        BzSpec s;
        s.setup_sects = 4;
        Bytes k = make_bzimage(s);
        k[0x1f1] = 0;
        ASSERT_EQ(load(k, nullptr, nullptr, 1, false), 0) << reason();

        EXPECT_EQ(read(16 * MiB, 1024), Bytes(1024, 0x90));
}

TEST_F(Boot, BzImageInitSizeBeyondRamIsRejected) {
        BzSpec s;
        s.init_size = 512 * MiB;
        EXPECT_EQ(load(make_bzimage(s), nullptr, nullptr, 1, false), -ENOMEM);
        EXPECT_REASON_HAS("init_size");
}

TEST_F(Boot, BzImageVersionTooOldIsRejected) {
        BzSpec s;
        s.version = 0x201;
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_EQ(reason(), "kernel: setup header version 0x201 too old, need >= 0x20c");
}

TEST_F(Boot, BzImageWithout64BitEntryIsRejected) {
        BzSpec s;
        s.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_REASON_HAS("XLF_KERNEL_64");
}

TEST_F(Boot, BzImageAlignmentNotPowerOfTwoIsRejected) {
        BzSpec s;
        s.alignment = 0x300000;
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_REASON_HAS("power of two");
}

TEST_F(Boot, BzImageBadBootSignatureIsRejected) {
        BzSpec s;
        s.boot_flag = 0x1234;
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_REASON_HAS("boot signature 0x1234");
}

TEST_F(Boot, BzImageBadHdrSMagicIsRejected) {
        BzSpec s;
        s.magic = 0x12345678;
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_REASON_HAS("HdrS");
}

TEST_F(Boot, BzImageShorterThanSetupSectsIsTruncated) {
        Bytes k = make_bzimage(BzSpec());
        k.resize(1000); /* setup is 1024 bytes */
        EXPECT_EQ(load(k), -ENOEXEC);
        EXPECT_REASON_HAS("truncated");
}

TEST_F(Boot, BzImageShorterThanSyssizeIsTruncated) {
        BzSpec s;
        s.syssize = 1 << 20;
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_REASON_HAS("truncated");
}

/* ---- bzImage decompressed on the host ---- */

TEST_F(Boot, BzImagePayloadIsDecompressedAndLoadedAsElf) {
        ElfSpec e;
        Bytes elf = make_elf(e);

        for (const Codec &codec : codecs) {
                SCOPED_TRACE(codec.name);
                BzSpec s;
                s.payload = codec.compress(elf);
                EXPECT_EQ(boot_codec_to_string(boot_codec_detect(s.payload.data(), s.payload.size())),
                          std::string(codec.name));
                ASSERT_EQ(guest_zero(m, e.paddr, 8192), 0);

                ASSERT_EQ(load(make_bzimage(s), "quiet"), 0) << reason();

                EXPECT_EQ(info.kind, BOOT_KIND_BZIMAGE_DECOMPRESSED);
                EXPECT_EQ(info.entry, e.paddr + e.entry_offset);
                EXPECT_EQ(info.kernel_start, e.paddr);
                EXPECT_EQ(read(e.paddr, 8192), Bytes(elf.begin() + ELF_CODE_OFFSET, elf.end()));
                /* The bzImage's own header, not the synthetic one. */
                struct boot_params bp = params();
                EXPECT_EQ((unsigned) bp.hdr.version, 0x20du);
                EXPECT_EQ((unsigned) bp.hdr.type_of_loader, 0xffu);
                EXPECT_EQ((unsigned) bp.hdr.cmd_line_ptr, (unsigned) LAYOUT_CMDLINE);
        }
}

TEST_F(Boot, BzImageUnknownCodecFallsBackToBzImageBoot) {
        BzSpec s;
        s.payload = Bytes(256, 0x42);
        ASSERT_EQ(load(make_bzimage(s)), 0) << reason();
        EXPECT_EQ(info.kind, BOOT_KIND_BZIMAGE);
        EXPECT_EQ(info.entry, 16 * MiB + 0x200);
}

TEST_F(Boot, BzImageCorruptGzipPayloadFailsCleanly) {
        BzSpec s;
        s.payload = compress_gzip(make_elf(ElfSpec()));
        for (size_t i = 20; i < 60; i++)
                s.payload[i] ^= 0xa5;
        EXPECT_EQ(load(make_bzimage(s)), -EBADMSG);
        EXPECT_REASON_HAS("gzip payload is corrupt");
}

TEST_F(Boot, BzImageCorruptXzPayloadFailsCleanly) {
        BzSpec s;
        s.payload = compress_xz(make_elf(ElfSpec()));
        s.payload[s.payload.size() / 2] ^= 0xff;
        EXPECT_EQ(load(make_bzimage(s)), -EBADMSG);
        EXPECT_REASON_HAS("xz payload is corrupt");
}

TEST_F(Boot, BzImageTruncatedPayloadFailsCleanlyForEveryCodec) {
        for (const Codec &codec : codecs) {
                SCOPED_TRACE(codec.name);
                BzSpec s;
                Bytes full = codec.compress(make_elf(ElfSpec()));
                /* Cut the stream in the middle but keep the size trailer. */
                s.payload = Bytes(full.begin(), full.begin() + full.size() / 2);
                append(s.payload, full.data() + full.size() - 4, 4);
                EXPECT_EQ(load(make_bzimage(s)), -EBADMSG);
        }
}

TEST_F(Boot, BzImageFlippedPayloadBytesNeverCrash) {
        Bytes elf = make_elf(ElfSpec());
        for (const Codec &codec : codecs) {
                SCOPED_TRACE(codec.name);
                Bytes good = codec.compress(elf);
                for (size_t i = 0; i < good.size(); i += MAX(good.size() / 97, (size_t) 1)) {
                        BzSpec s;
                        s.payload = good;
                        s.payload[i] ^= 0x5a;
                        int r = load(make_bzimage(s));
                        /* Either decoded anyway, refused, or not recognised and booted as is. */
                        EXPECT_TRUE(r == 0 || r == -EBADMSG || r == -ENOEXEC || r == -ENOMEM) << i << ": " << r;
                }
        }
}

TEST_F(Boot, BzImageDecompressedSizeOverCapIsRejected) {
        BzSpec s;
        s.payload = compress_zstd(make_elf(ElfSpec()));
        s.payload.resize(s.payload.size() - 4);
        append_size(s.payload, 0xfffffff0);
        EXPECT_EQ(load(make_bzimage(s)), -EBADMSG);
        EXPECT_REASON_HAS("more than 512 MiB");
}

TEST_F(Boot, BzImagePayloadThatIsNotElfIsRejected) {
        BzSpec s;
        s.payload = compress_gzip(Bytes(4096, 0x11));
        EXPECT_EQ(load(make_bzimage(s)), -ENOEXEC);
        EXPECT_REASON_HAS("not an ELF");
}

/* ---- bad kernels ---- */

TEST_F(Boot, EmptyKernelIsRejected) {
        EXPECT_EQ(load(Bytes()), -ENOEXEC);
        EXPECT_EQ(reason(), "kernel: file is empty");
}

TEST_F(Boot, TinyKernelIsTooShort) {
        EXPECT_EQ(load(Bytes(100, 0x33)), -ENOEXEC);
        EXPECT_REASON_HAS("too short");
}

TEST_F(Boot, GarbageKernelIsNeitherBzImageNorElf) {
        EXPECT_EQ(load(code_bytes(64 * 1024)), -ENOEXEC);
        EXPECT_REASON_HAS("neither a bzImage");
}

TEST_F(Boot, TruncatedElfHeaderIsRejected) {
        Bytes elf = make_elf(ElfSpec());
        elf.resize(32);
        EXPECT_EQ(load(elf), -ENOEXEC);
        EXPECT_REASON_HAS("truncated ELF");
}

TEST_F(Boot, FailureLeavesInfoUntouched) {
        info.entry = 0x1234;
        EXPECT_LT(load(Bytes(10, 0)), 0);
        EXPECT_EQ(info.entry, 0x1234u);
}

/* ---- command line ---- */

TEST_F(Boot, CmdlineIsPlacedNulTerminated) {
        const char *cmdline = "console=ttyS0 root=/dev/vda";
        ASSERT_EQ(load(make_elf(ElfSpec()), cmdline), 0) << reason();

        Bytes b = read(LAYOUT_CMDLINE, strlen(cmdline) + 1);
        EXPECT_STREQ((const char *) b.data(), cmdline);
        EXPECT_EQ((unsigned) params().hdr.cmd_line_ptr, (unsigned) LAYOUT_CMDLINE);
}

TEST_F(Boot, NoCmdlineIsEmptyString) {
        ASSERT_EQ(guest_write(m, LAYOUT_CMDLINE, "junk", 5), 0);
        ASSERT_EQ(load(make_elf(ElfSpec())), 0) << reason();
        EXPECT_EQ(read(LAYOUT_CMDLINE, 1)[0], 0);
}

TEST_F(Boot, CmdlineAtHeaderLimitIsAccepted) {
        BzSpec s;
        s.cmdline_size = 16;
        EXPECT_EQ(load(make_bzimage(s), std::string(16, 'x').c_str(), nullptr, 1, false), 0) << reason();
}

TEST_F(Boot, CmdlineLongerThanHeaderAllowsIsRejected) {
        BzSpec s;
        s.cmdline_size = 16;
        EXPECT_EQ(load(make_bzimage(s), std::string(17, 'x').c_str(), nullptr, 1, false), -E2BIG);
        EXPECT_EQ(reason(), "cmdline: 17 bytes is longer than the 16 the kernel accepts");
}

TEST_F(Boot, CmdlineLongerThanOurAreaIsRejected) {
        std::string big(LAYOUT_CMDLINE_MAX, 'y');
        EXPECT_EQ(load(make_elf(ElfSpec()), big.c_str()), -E2BIG);
        EXPECT_REASON_HAS("cmdline: 65536 bytes");
}

/* ---- initrd ---- */

TEST_F(Boot, InitrdIsPageAlignedAtTopOfRam) {
        Bytes initrd = code_bytes(MiB + 123);
        ASSERT_EQ(load(make_elf(ElfSpec()), nullptr, &initrd), 0) << reason();

        EXPECT_EQ(info.initrd_start % 4096, 0u);
        EXPECT_EQ(info.initrd_size, initrd.size());
        EXPECT_LE(info.initrd_start + initrd.size(), 256 * MiB);
        EXPECT_GT(info.initrd_start + initrd.size() + 4096, 256 * MiB);
        EXPECT_EQ(read(info.initrd_start, initrd.size()), initrd);
        struct boot_params bp = params();
        EXPECT_EQ((uint64_t) bp.hdr.ramdisk_image, info.initrd_start);
        EXPECT_EQ((uint64_t) bp.hdr.ramdisk_size, initrd.size());
        EXPECT_EQ((unsigned) bp.ext_ramdisk_image, 0u);
}

TEST_F(Boot, InitrdRespectsInitrdAddrMax) {
        BzSpec s;
        s.relocatable = 0;
        s.pref_address = MiB;
        s.init_size = MiB;
        s.initrd_addr_max = 8 * MiB - 1;
        Bytes initrd = code_bytes(100000);
        ASSERT_EQ(load(make_bzimage(s), nullptr, &initrd, 1, false), 0) << reason();

        EXPECT_LE(info.initrd_start + initrd.size(), 8 * MiB);
        EXPECT_GE(info.initrd_start, info.kernel_end);
}

TEST_F(Boot, InitrdStaysBelowTheMmioHole) {
        use_ram(5 * GiB);
        Bytes initrd = code_bytes(4096);
        ASSERT_EQ(load(make_elf(ElfSpec()), nullptr, &initrd), 0) << reason();
        /* The ELF's initrd_addr_max is 2 GiB - 1. */
        EXPECT_EQ(info.initrd_start, 2 * GiB - 4096);
}

TEST_F(Boot, InitrdLargerThanRamIsRejected) {
        use_ram(16 * MiB);
        ElfSpec s;
        s.paddr = s.vaddr = MiB;
        Bytes initrd(17 * MiB, 1);
        EXPECT_EQ(load(make_elf(s), nullptr, &initrd), -ENOMEM);
        EXPECT_REASON_HAS("larger than guest RAM");
}

TEST_F(Boot, InitrdNotFittingAboveKernelIsRejected) {
        use_ram(32 * MiB);
        Bytes initrd(16 * MiB - 8 * KiB, 1); /* the kernel ends at 16 MiB + 16 KiB */
        EXPECT_EQ(load(make_elf(ElfSpec()), nullptr, &initrd), -ENOMEM);
        EXPECT_REASON_HAS("do not fit");
}

/* ---- e820 ---- */

static void expect_e820(const struct boot_params &bp, const std::vector<boot_e820_entry> &want) {
        ASSERT_EQ((size_t) bp.e820_entries, want.size());
        for (size_t i = 0; i < want.size(); i++) {
                SCOPED_TRACE(i);
                EXPECT_EQ((uint64_t) bp.e820_table[i].addr, (uint64_t) want[i].addr);
                EXPECT_EQ((uint64_t) bp.e820_table[i].size, (uint64_t) want[i].size);
                EXPECT_EQ((uint32_t) bp.e820_table[i].type, (uint32_t) want[i].type);
        }
}

TEST_F(Boot, E820For256MiB) {
        ASSERT_EQ(load(make_elf(ElfSpec())), 0) << reason();
        expect_e820(params(), {
                { 0, LAYOUT_LOW_RAM_END, E820_RAM },
                { LAYOUT_EBDA, 0xa0000 - LAYOUT_EBDA, E820_RESERVED },
                { LAYOUT_BIOS_START, MiB - LAYOUT_BIOS_START, E820_RESERVED },
                { MiB, 255 * MiB, E820_RAM },
        });
}

TEST_F(Boot, E820Above4GiBSkipsTheMmioHole) {
        use_ram(5 * GiB);
        ASSERT_EQ(load(make_elf(ElfSpec())), 0) << reason();
        expect_e820(params(), {
                { 0, LAYOUT_LOW_RAM_END, E820_RAM },
                { LAYOUT_EBDA, 0xa0000 - LAYOUT_EBDA, E820_RESERVED },
                { LAYOUT_BIOS_START, MiB - LAYOUT_BIOS_START, E820_RESERVED },
                { MiB, GUEST_MMIO_HOLE_START - MiB, E820_RAM },
                { GUEST_MMIO_HOLE_END, 2 * GiB, E820_RAM },
        });
}

/* ---- setup_data ---- */

TEST_F(Boot, RngSeedIsPassedInReservedMemory) {
        ASSERT_EQ(load(make_elf(ElfSpec())), 0) << reason();
        Bytes seed = rng_seed();

        EXPECT_NE(seed, Bytes(seed.size(), 0));
        EXPECT_GE((uint64_t) LAYOUT_SETUP_DATA, (uint64_t) LAYOUT_BIOS_START);
        EXPECT_LE((uint64_t) LAYOUT_SETUP_DATA + sizeof(struct setup_data) + seed.size(), (uint64_t) MiB);
}

TEST_F(Boot, RngSeedDiffersPerBootAndForBzImage) {
        ASSERT_EQ(load(make_elf(ElfSpec())), 0) << reason();
        Bytes first = rng_seed();
        ASSERT_EQ(load(make_bzimage(BzSpec())), 0) << reason();
        Bytes second = rng_seed();

        EXPECT_NE(first, second);
}

/* ---- MP table ---- */

static uint8_t sum(const Bytes &b) {
        uint8_t s = 0;
        for (uint8_t x : b)
                s += x;
        return s;
}

TEST_F(Boot, MpTableChecksumsAndCpus) {
        ASSERT_EQ(load(make_elf(ElfSpec()), nullptr, nullptr, 4), 0) << reason();

        Bytes mpf = read(LAYOUT_MPTABLE, 16);
        EXPECT_EQ(memcmp(mpf.data(), "_MP_", 4), 0);
        EXPECT_EQ(sum(mpf), 0);
        EXPECT_EQ(mpf[8], 1);   /* length in paragraphs */
        EXPECT_EQ(mpf[9], 4);   /* spec 1.4 */
        uint32_t physptr;
        memcpy(&physptr, &mpf[4], 4);
        EXPECT_EQ(physptr, (uint32_t) LAYOUT_MPTABLE + 16);

        Bytes hdr = read(physptr, 44);
        EXPECT_EQ(memcmp(hdr.data(), "PCMP", 4), 0);
        uint16_t length, count;
        uint32_t lapic;
        memcpy(&length, &hdr[4], 2);
        memcpy(&count, &hdr[34], 2);
        memcpy(&lapic, &hdr[36], 4);
        EXPECT_EQ(sum(read(physptr, length)), 0);
        EXPECT_EQ(lapic, (uint32_t) LAYOUT_LAPIC);
        EXPECT_EQ(length + 16u, mptable_size(4));

        Bytes t = read(physptr, length);
        size_t pos = 44;
        unsigned cpus = 0, bsps = 0, ioapics = 0, intsrc = 0, lints = 0;
        int irq0_pin = -1;
        for (unsigned i = 0; i < count; i++) {
                ASSERT_LT(pos, t.size());
                switch (t[pos]) {
                case 0:
                        EXPECT_EQ(t[pos + 1], cpus); /* APIC id = index */
                        EXPECT_EQ(t[pos + 2], 0x14);
                        EXPECT_TRUE(t[pos + 3] & 1);
                        bsps += !!(t[pos + 3] & 2);
                        cpus++;
                        pos += 20;
                        break;
                case 1:
                        EXPECT_EQ(memcmp(&t[pos + 2], "ISA   ", 6), 0);
                        pos += 8;
                        break;
                case 2:
                        EXPECT_EQ(t[pos + 1], 4); /* after the CPUs */
                        EXPECT_EQ(t[pos + 2], 0x11);
                        uint32_t addr;
                        memcpy(&addr, &t[pos + 4], 4);
                        EXPECT_EQ(addr, (uint32_t) LAYOUT_IOAPIC);
                        ioapics++;
                        pos += 8;
                        break;
                case 3:
                        if (t[pos + 5] == 0)
                                irq0_pin = t[pos + 7];
                        intsrc++;
                        pos += 8;
                        break;
                case 4:
                        lints++;
                        pos += 8;
                        break;
                default:
                        FAIL() << "entry type " << (int) t[pos];
                }
        }
        EXPECT_EQ(pos, t.size());
        EXPECT_EQ(cpus, 4u);
        EXPECT_EQ(bsps, 1u);
        EXPECT_EQ(ioapics, 1u);
        EXPECT_EQ(intsrc, 15u);
        EXPECT_EQ(irq0_pin, 2);
        EXPECT_EQ(lints, 2u);

        uint16_t ebda;
        ASSERT_EQ(guest_read(m, 0x40e, &ebda, 2), 0);
        EXPECT_EQ(ebda, LAYOUT_EBDA >> 4);
}

TEST_F(Boot, MpTableHoldsMaxCpusButNotOneMore) {
        unsigned max = boot_max_cpus();
        EXPECT_GE(max, 32u);
        EXPECT_LE(mptable_size(max), (size_t) MPTABLE_SPACE);
        EXPECT_GT(mptable_size(max + 1), (size_t) MPTABLE_SPACE);

        EXPECT_EQ(load(make_elf(ElfSpec()), nullptr, nullptr, max), 0) << reason();
        EXPECT_EQ(load(make_elf(ElfSpec()), nullptr, nullptr, max + 1), -E2BIG);
        EXPECT_REASON_HAS("CPUs");
}

TEST_F(Boot, ZeroCpusIsRejected) {
        EXPECT_EQ(load(make_elf(ElfSpec()), nullptr, nullptr, 0), -EINVAL);
}

/* ---- names ---- */

TEST(BootKind, StringsRoundTrip) {
        for (int k = 0; k < _BOOT_KIND_MAX; k++)
                EXPECT_EQ(boot_kind_from_string(boot_kind_to_string((BootKind) k)), k);
        EXPECT_EQ(boot_kind_from_string("nope"), _BOOT_KIND_INVALID);
        EXPECT_EQ(boot_kind_to_string(_BOOT_KIND_MAX), nullptr);
}
