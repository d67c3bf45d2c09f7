/*
 * The VM's QMP commands and events: query-status, stop, cont, quit, and the
 * STOP / RESUME / SHUTDOWN events, with QEMU's names and reply shapes.
 */
#ifndef LOCKSTEP_QMP_QMP_VM_H
#define LOCKSTEP_QMP_QMP_VM_H

struct qmp_server;
struct vm;

/*
 * Registers the commands on s and makes s the VM's event listener. Both s and
 * vm must outlive the binding: call qmp_vm_unbind before destroying either.
 * Returns 0 or -errno (-EEXIST if the commands are already registered).
 */
int qmp_vm_bind(struct qmp_server *s, struct vm *vm);
/* Stops forwarding VM events to the server. */
void qmp_vm_unbind(struct vm *vm);

#endif
