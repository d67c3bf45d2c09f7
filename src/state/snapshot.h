/* Snapshots: the whole VM state in one file (the vmstate stream, docs/vmstate.md). */
#ifndef LOCKSTEP_STATE_SNAPSHOT_H
#define LOCKSTEP_STATE_SNAPSHOT_H

#include <stddef.h>

struct vm;

/*
 * Writes the VM (vCPU parked) to path, atomically: a temporary file renamed
 * over path once complete and synced. On error err says why.
 */
int snapshot_save(struct vm *vm, const char *path, char *err, size_t errlen);
/*
 * Loads path into a VM whose vCPU is parked. The whole file is checked before
 * anything changes; if it is refused, the VM keeps its state.
 */
int snapshot_load(struct vm *vm, const char *path, char *err, size_t errlen);
/* Same into a VM that never ran (lockstep run --restore): one pass. */
int snapshot_restore_fresh(struct vm *vm, const char *path, char *err, size_t errlen);

#endif
