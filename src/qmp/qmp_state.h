/* QMP commands that save and load VM state: snapshot-save, snapshot-load. */
#ifndef LOCKSTEP_QMP_QMP_STATE_H
#define LOCKSTEP_QMP_QMP_STATE_H

struct qmp_server;
struct vm;

int qmp_state_bind(struct qmp_server *s, struct vm *vm);

#endif
