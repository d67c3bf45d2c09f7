/*
 * A participant's own connection to its peer (the network link, a disk's
 * replication link): the primary connects to where the secondary listens
 * (the migration URI); the secondary accepts the next connection on the
 * migration listener. Each connection opens with an 8-byte magic naming what
 * it is, so a connection in the wrong order is refused, not misread.
 */
#ifndef LOCKSTEP_COLO_PEER_H
#define LOCKSTEP_COLO_PEER_H

#include "colo/colo.h"

#define COLO_PEER_MAGIC_LEN 8

/* Primary: a connected socket (send and receive timeouts set to the peer
 * timeout) that has sent magic, or -errno. */
int colo_peer_connect(const struct colo_peer *peer, const char magic[COLO_PEER_MAGIC_LEN]);
/* Secondary: the next connection within the peer timeout, whose first bytes
 * are magic (-EPROTO if not, -ETIMEDOUT if none came), or -errno. */
int colo_peer_accept(const struct colo_peer *peer, const char magic[COLO_PEER_MAGIC_LEN]);

#endif
