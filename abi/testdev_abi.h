/*
 * The paravirtual test device (guest <-> VMM contract, DESIGN.md §2).
 * Shared by the VMM (src/dev/testdev.c) and the test guest: keep it to #defines.
 *
 *   out  TESTDEV_PORT_EXIT  (32-bit): the guest is done; the VMM process exits
 *                                      with (value & 0xff) as its status.
 *   out  TESTDEV_PORT_IDLE  (32-bit): block the vCPU until a device has work for
 *                                      the guest (or an interrupt is pending), at
 *                                      most value microseconds.
 *   in   TESTDEV_PORT_CLOCK (32-bit): VM clock in milliseconds, monotonic; it
 *                                      does not advance while the VM is paused.
 */
#ifndef LOCKSTEP_ABI_TESTDEV_H
#define LOCKSTEP_ABI_TESTDEV_H

#define TESTDEV_PORT_BASE  0xf4
#define TESTDEV_PORT_EXIT  0xf4
#define TESTDEV_PORT_IDLE  0xf8
#define TESTDEV_PORT_CLOCK 0xfc
#define TESTDEV_PORT_LEN   12

#endif
