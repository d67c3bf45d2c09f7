#include "vm/bzimage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "vm/boot.h"
#include "vm/mptable.h"
#include "vm/pvh.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

/* Offsets in the file and in the zero page (the setup header sits at the same place in both). */
#define BZ_E820_ENTRIES  0x1e8
#define BZ_SETUP_SECTS   0x1f1
#define BZ_BOOT_FLAG     0x1fe
#define BZ_HDR_LEN       0x201 /* the header's length beyond 0x202 */
#define BZ_HDR_MAGIC     0x202
#define BZ_VERSION       0x206
#define BZ_LOADER_TYPE   0x210
#define BZ_LOADFLAGS     0x211
#define BZ_RAMDISK_IMAGE 0x218
#define BZ_RAMDISK_SIZE  0x21c
#define BZ_CMD_LINE_PTR  0x228
#define BZ_INITRD_MAX    0x22c
#define BZ_CMDLINE_SIZE  0x238
#define BZ_INIT_SIZE     0x260
#define BZ_E820_TABLE    0x2d0

#define BZ_LOADED_HIGH   0x01
#define BZ_KEEP_SEGMENTS 0x40
#define BZ_LOADER_UNDEFINED 0xff

static uint16_t get16(const uint8_t *p, size_t off) { return (uint16_t)(p[off] | p[off + 1] << 8); }

static uint32_t get32(const uint8_t *p, size_t off) { return get16(p, off) | (uint32_t)get16(p, off + 2) << 16; }

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

bool bzimage_detect(const uint8_t *image, size_t len)
{
	return len >= BZ_HDR_MAGIC + 4 && memcmp(image + BZ_HDR_MAGIC, "HdrS", 4) == 0;
}

int bzimage_parse(const uint8_t *image, size_t len, struct bzimage_info *bi, const char **why)
{
	uint32_t sects;

	if (!bzimage_detect(image, len))
		return *why = "no Linux setup header (\"HdrS\")", -ENOEXEC;
	if (len < BZ_INIT_SIZE + 4)
		return *why = "truncated Linux setup header", -ENOEXEC;
	if (get16(image, BZ_BOOT_FLAG) != 0xaa55)
		return *why = "bad boot flag (not 0xAA55)", -ENOEXEC;
	bi->version = get16(image, BZ_VERSION);
	if (bi->version < BZ_MIN_VERSION)
		return *why = "Linux boot protocol older than 2.10", -ENOEXEC;
	if (!(image[BZ_LOADFLAGS] & BZ_LOADED_HIGH))
		return *why = "a zImage (loaded low), not a bzImage", -ENOEXEC;
	sects = image[BZ_SETUP_SECTS] ? image[BZ_SETUP_SECTS] : 4;
	bi->pm_offset = (sects + 1) * 512;
	bi->hdr_end = BZ_HDR_MAGIC + image[BZ_HDR_LEN];
	if (bi->pm_offset >= len || bi->hdr_end > bi->pm_offset || bi->hdr_end < BZ_INIT_SIZE + 4)
		return *why = "setup header and kernel overlap or the kernel is missing", -ENOEXEC;
	bi->pm_size = (uint32_t)(len - bi->pm_offset);
	bi->initrd_addr_max = get32(image, BZ_INITRD_MAX);
	bi->cmdline_size = get32(image, BZ_CMDLINE_SIZE);
	bi->init_size = get32(image, BZ_INIT_SIZE);
	return 0;
}

void bzimage_fill_boot_params(uint8_t *bp, const uint8_t *image, const struct bzimage_info *bi,
			      const struct bz_layout *l)
{
	int n = l->ne820 < BZ_E820_MAX ? l->ne820 : BZ_E820_MAX;

	memset(bp, 0, BZ_ZERO_PAGE_SIZE);
	memcpy(bp + BZ_SETUP_SECTS, image + BZ_SETUP_SECTS, bi->hdr_end - BZ_SETUP_SECTS);
	bp[BZ_LOADER_TYPE] = BZ_LOADER_UNDEFINED;
	bp[BZ_LOADFLAGS] &= (uint8_t)~BZ_KEEP_SEGMENTS; /* the kernel loads its own segments */
	put32(bp, BZ_CMD_LINE_PTR, l->cmdline_gpa);
	put32(bp, BZ_RAMDISK_IMAGE, l->initrd_gpa);
	put32(bp, BZ_RAMDISK_SIZE, l->initrd_size);
	bp[BZ_E820_ENTRIES] = (uint8_t)n;
	memcpy(bp + BZ_E820_TABLE, l->e820, (size_t)n * sizeof(struct bz_e820_entry));
}

/* The same map PVH guests get, in e820's shape. */
static int bz_build_e820(struct vm *vm, struct bz_e820_entry *e820)
{
	struct hvm_memmap_table_entry map[PVH_MEMMAP_MAX];
	int n = pvh_build_memmap(&vm->mem, map, PVH_MEMMAP_MAX);

	for (int i = 0; i < n; i++)
		e820[i] = (struct bz_e820_entry){ map[i].addr, map[i].size, map[i].type };
	return n;
}

static int bz_load(struct vm *vm, const char *path, const uint8_t *image, const struct bzimage_info *bi,
		   const char *initrd_path, const char *cmdline)
{
	uint64_t low_end = boot_low_ram_end(&vm->mem), kernel_end, initrd_gpa = 0, initrd_size = 0;
	uint64_t initrd_below = low_end;
	struct bz_e820_entry e820[PVH_MEMMAP_MAX];
	uint8_t bp[BZ_ZERO_PAGE_SIZE];
	struct bz_layout l = { .cmdline_gpa = BZ_CMDLINE_GPA, .e820 = e820 };
	int ret;

	kernel_end = BZ_KERNEL_GPA + (bi->init_size > bi->pm_size ? bi->init_size : bi->pm_size);
	if (kernel_end > low_end) {
		log_error("kernel %s: needs %llu MiB of guest RAM to boot (--mem)", path,
			  (unsigned long long)((kernel_end + (1 << 20) - 1) >> 20));
		return -ENOMEM;
	}
	if ((ret = gmem_write(&vm->mem, BZ_KERNEL_GPA, image + bi->pm_offset, bi->pm_size)) < 0)
		return ret;
	if (bi->initrd_addr_max && (uint64_t)bi->initrd_addr_max + 1 < initrd_below)
		initrd_below = (uint64_t)bi->initrd_addr_max + 1;
	if (initrd_path && (ret = boot_load_initrd(vm, initrd_path, kernel_end, initrd_below, &initrd_gpa,
						   &initrd_size)) < 0)
		return ret;
	if ((ret = boot_write_cmdline(vm, cmdline, BZ_CMDLINE_GPA, (size_t)bi->cmdline_size + 1)) < 0)
		return ret;
	if ((l.ne820 = bz_build_e820(vm, e820)) < 0)
		return l.ne820;
	l.initrd_gpa = (uint32_t)initrd_gpa;
	l.initrd_size = (uint32_t)initrd_size;
	bzimage_fill_boot_params(bp, image, bi, &l);
	return gmem_write(&vm->mem, BZ_BOOT_PARAMS_GPA, bp, sizeof(bp));
}

int bzimage_boot(struct vm *vm, const char *path, const uint8_t *image, size_t len, const char *initrd_path,
		 const char *cmdline)
{
	struct bzimage_info bi;
	const char *why = NULL;
	int ret = bzimage_parse(image, len, &bi, &why);

	if (ret < 0) {
		log_error("kernel %s: %s", path, why);
		return ret;
	}
	if ((ret = bz_load(vm, path, image, &bi, initrd_path, cmdline)) < 0)
		return ret;
	ret = mptable_write(&vm->mem, PVH_MPTABLE_GPA, PVH_LOW_RAM_END - PVH_MPTABLE_GPA, 1);
	if (ret == 0)
		ret = vcpu_set_linux32_boot_state(vm->vcpu, (uint32_t)BZ_KERNEL_GPA, (uint32_t)BZ_BOOT_PARAMS_GPA);
	if (ret < 0)
		log_error("Linux boot setup: %s", strerror(-ret));
	return ret;
}
