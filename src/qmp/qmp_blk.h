/* QMP commands for block devices: x-blk-test (a test hook). */
#ifndef LOCKSTEP_QMP_QMP_BLK_H
#define LOCKSTEP_QMP_QMP_BLK_H

struct qmp_server;
struct vm;

/* Registers the commands on s; vm must outlive the server. 0 or -errno. */
int qmp_blk_bind(struct qmp_server *s, struct vm *vm);

#endif
