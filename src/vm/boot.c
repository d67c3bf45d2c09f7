#include "vm/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "vm/bzimage.h"
#include "vm/pvh.h"
#include "vm/vm.h"

uint64_t boot_low_ram_end(const struct gmem *mem) { return mem->slots[0].gpa + mem->slots[0].size; }

int boot_map_file(const char *path, const char *what, uint8_t **data, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		int err = -errno;

		log_error("%s %s: %s", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		log_error("%s %s: not a regular non-empty file", what, path);
		close(fd);
		return -EINVAL;
	}
	*len = (size_t)st.st_size;
	*data = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (*data == MAP_FAILED) {
		log_error("%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	return 0;
}

int boot_load_initrd(struct vm *vm, const char *path, uint64_t above, uint64_t below, uint64_t *gpa,
		     uint64_t *size)
{
	uint8_t *data;
	size_t len;
	int ret = boot_map_file(path, "initrd", &data, &len);

	if (ret < 0)
		return ret;
	*gpa = (below - len) & ~(GMEM_PAGE_SIZE - 1);
	if (len > below || *gpa < above) {
		log_error("initrd %s: %zu bytes do not fit in guest RAM above the kernel", path, len);
		munmap(data, len);
		return -ENOMEM;
	}
	ret = gmem_write(&vm->mem, *gpa, data, len);
	munmap(data, len);
	*size = len;
	return ret;
}

int boot_write_cmdline(struct vm *vm, const char *cmdline, uint64_t gpa, size_t max)
{
	char buf[VM_CMDLINE_MAX + 4096];
	int n = snprintf(buf, sizeof(buf), "%s%s%s", cmdline ? cmdline : "",
			 cmdline && *cmdline && vm->cmdline_devices[0] ? " " : "", vm->cmdline_devices);

	if (n < 0 || (size_t)n >= max || (size_t)n >= sizeof(buf)) {
		log_error("command line too long (max %zu bytes with device entries)", max - 1);
		return -E2BIG;
	}
	return gmem_write(&vm->mem, gpa, buf, (uint64_t)n + 1);
}

int boot_kernel(struct vm *vm, const char *kernel_path, const char *initrd_path, const char *cmdline)
{
	uint8_t *image;
	size_t len;
	int ret = boot_map_file(kernel_path, "kernel", &image, &len);

	if (ret < 0)
		return ret;
	if (len >= 4 && memcmp(image, "\x7f" "ELF", 4) == 0) {
		ret = pvh_boot(vm, kernel_path, image, len, initrd_path, cmdline);
	} else if (bzimage_detect(image, len)) {
		ret = bzimage_boot(vm, kernel_path, image, len, initrd_path, cmdline);
	} else {
		log_error("kernel %s: neither an ELF (PVH) nor a Linux bzImage (no \"HdrS\" boot header)",
			  kernel_path);
		ret = -ENOEXEC;
	}
	munmap(image, len);
	return ret;
}
