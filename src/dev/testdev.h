/* The paravirtual test device (abi/testdev.h): guest exit, idle call, VM clock. */
#ifndef LOCKSTEP_DEV_TESTDEV_H
#define LOCKSTEP_DEV_TESTDEV_H

#include <stdint.h>

struct device;
struct vm;

int testdev_create(struct vm *vm, struct device **out);
/* Milliseconds of VM time: monotonic, stopped while the VM is paused. */
uint64_t testdev_clock_ms(struct device *dev);

#endif
