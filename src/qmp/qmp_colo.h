/* QMP commands and events for COLO (see docs/colo.md). */
#ifndef LOCKSTEP_QMP_QMP_COLO_H
#define LOCKSTEP_QMP_QMP_COLO_H

struct migration;
struct qmp_server;

struct colo_net;

/* m->colo must be set. */
int qmp_colo_bind(struct qmp_server *s, struct migration *m);
/* query-colo-compare: the network comparator's and rewriter's statistics. */
int qmp_colo_net_bind(struct qmp_server *s, struct colo_net *n);

#endif
