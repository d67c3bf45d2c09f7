/*
 * The platform's reset lines: the keyboard controller's reset pulse (0xFE
 * written to port 0x64) and the reset control register (port 0xCF9, bit 2).
 * A guest reboot (Linux tries the keyboard controller first when it has no
 * ACPI) ends the run cleanly, as QEMU's -no-reboot does: exit status 0, QMP
 * SHUTDOWN with reason "guest-reset". A triple fault also ends the run with
 * that reason, but as an error (vcpu_run.c): it may be a crash.
 */
#ifndef LOCKSTEP_DEV_RESET_H
#define LOCKSTEP_DEV_RESET_H

struct vm;

int reset_create(struct vm *vm);

#endif
