/*
 * An NBD server on a listening socket (QMP nbd-server-start): accepts clients
 * on a thread of its own and serves each on another, from a table of exports
 * (nbd-server-add). The COLO secondary's disks are exported this way when a
 * pair is set up by hand; any NBD client (qemu-img, nbdinfo, nbdcopy, a
 * primary's blockdev-add) can connect.
 */
#ifndef LOCKSTEP_BLOCK_NBD_SERVICE_H
#define LOCKSTEP_BLOCK_NBD_SERVICE_H

#include <stddef.h>

#include "block/nbd_server.h"

#define NBD_SERVICE_MAX_EXPORTS 8
#define NBD_SERVICE_MAX_CLIENTS 16
#define NBD_SERVICE_NAME_MAX 63

struct nbd_service;

/* Listens on addr ("tcp:HOST:PORT" or "unix:PATH") and starts accepting.
 * NULL with err saying why. */
struct nbd_service *nbd_service_start(const char *addr, char *err, size_t errlen);
/* Offers exp (copied with its name; its backend must outlive the service) to
 * the clients that connect from now on. -EEXIST for a name taken, -ENOSPC for
 * a full table, -ENAMETOOLONG beyond NBD_SERVICE_NAME_MAX. */
int nbd_service_add_export(struct nbd_service *s, const struct nbd_export *exp);
/* Whether an export of that name is offered. */
bool nbd_service_has_export(struct nbd_service *s, const char *name);
/* Stops listening, ends every client's connection (a request in hand is
 * finished first), waits for their threads and frees s. NULL is fine. */
void nbd_service_stop(struct nbd_service *s);

#endif
