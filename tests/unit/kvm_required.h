/* Tests that need /dev/kvm: skipped with a reason outside CI, failed in CI (CI=true). */
#ifndef TESTS_KVM_REQUIRED_H
#define TESTS_KVM_REQUIRED_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Returns 1 if KVM is usable; otherwise prints why and returns 0 (or exits 1 in CI). */
static inline int kvm_available(void)
{
	int fd = open("/dev/kvm", O_RDWR);
	const char *ci = getenv("CI");

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	if (ci && strcmp(ci, "true") == 0) {
		fprintf(stderr, "FAIL: /dev/kvm is not usable in CI: %m\n");
		exit(1);
	}
	fprintf(stderr, "SKIP: /dev/kvm is not usable here (%m); KVM tests skipped\n");
	return 0;
}

/* A vCPU's RIP, read or written through KVM directly (not through our save/load). */
static inline uint64_t kvm_vcpu_rip(int vcpu_fd)
{
	struct kvm_regs regs;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) != 0) {
		perror("KVM_GET_REGS");
		abort();
	}
	return regs.rip;
}

static inline void kvm_set_vcpu_rip(int vcpu_fd, uint64_t rip)
{
	struct kvm_regs regs;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) != 0) {
		perror("KVM_GET_REGS");
		abort();
	}
	regs.rip = rip;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) != 0) {
		perror("KVM_SET_REGS");
		abort();
	}
}

#endif
