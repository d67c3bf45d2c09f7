/* QMP commands for live migration: migrate, migrate_cancel, query-migrate, parameters; event MIGRATION. */
#ifndef LOCKSTEP_QMP_QMP_MIGRATE_H
#define LOCKSTEP_QMP_QMP_MIGRATE_H

struct migration;
struct qmp_server;

int qmp_migrate_bind(struct qmp_server *s, struct migration *m);

#endif
