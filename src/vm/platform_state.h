/* Save/load of the in-kernel PICs, IOAPIC, PIT and KVM clock (the VM-wide KVM state). */
#ifndef LOCKSTEP_VM_PLATFORM_STATE_H
#define LOCKSTEP_VM_PLATFORM_STATE_H

#include "util/sbuf.h"

struct vm;

/* Only while the vCPUs are parked. */
int platform_save(struct vm *vm, struct sbuf *out);
/* Validates the whole record before touching KVM; -EINVAL on a bad record. */
int platform_load(struct vm *vm, struct sbuf_reader *in);

#endif
