/* 16550A UART: COM1 at 0x3f8, IRQ 4; the guest console. */
#ifndef LOCKSTEP_DEV_SERIAL_H
#define LOCKSTEP_DEV_SERIAL_H

struct device;
struct vm;

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ 4

/*
 * out_fd receives every byte the guest transmits; in_fd (or -1) is watched by
 * the event loop and feeds the receiver. The caller keeps owning both fds.
 */
int serial_create(struct vm *vm, int out_fd, int in_fd, struct device **out);

#endif
