/*
 * The KV store's append-only log on a disk, replayed at start-up. Every
 * write command appends a record; kv_log_commit() writes what was appended
 * and flushes the disk, and only then may the commands be acknowledged.
 *
 * Disk layout (little-endian):
 *   sector 0: "LOCKSTEP-KVLOG1\0", u32 version (1), u32 512, u64 log id,
 *             u32 CRC-32 of the 32 bytes before it;
 *   from byte 512 on, records back to back:
 *             u32 magic 0x52564b4c, u32 record length (header included),
 *             u32 CRC-32 over the log id then the record from byte 12 on,
 *             u32 op (1 SET, 2 DEL, 3 FLUSHALL), u64 sequence number (1, 2, ...),
 *             u32 key length, u32 value length, key bytes, value bytes;
 *   then zeros. Replay stops at the first record that is not intact and in
 *   sequence: a torn last write loses only unacknowledged commands, and
 *   records of an older log on the same disk (another log id) never count.
 * There is no compaction: when the disk is full, writes are refused.
 */
#ifndef GUEST_SERVICES_KV_LOG_H
#define GUEST_SERVICES_KV_LOG_H

#include "blockdev.h"

enum kv_log_op { KV_LOG_SET = 1, KV_LOG_DEL = 2, KV_LOG_FLUSHALL = 3 };

#define KV_LOG_FULL (-2)

/* Re-applies one record at replay; 0, or -1 to stop (out of memory). */
typedef int (*kv_log_apply_fn)(enum kv_log_op op, const uint8_t *key, size_t klen, const uint8_t *val,
			       size_t vlen);

/* Opens the log on dev (formatting a disk that has none) and replays it.
 * Returns the records replayed, or -1 (I/O error, disk too small, apply failed). */
long kv_log_open(const struct blockdev *dev, kv_log_apply_fn apply);
/* Appends a record to the pending batch: 0, KV_LOG_FULL, or -1 (no memory, or the log broke). */
int kv_log_append(enum kv_log_op op, const void *key, size_t klen, const void *val, size_t vlen);
bool kv_log_pending(void);
/* Writes the pending batch and flushes the disk: 0, or -1 (then the log is
 * broken: the batch is lost and every later append fails). */
int kv_log_commit(void);
/* Bytes of the disk the log uses. */
uint64_t kv_log_bytes(void);

#endif
