/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320): the one zlib.crc32
 * and Python compute, so tests can check bodies and log records with it. */
#ifndef GUEST_SERVICES_CRC32_H
#define GUEST_SERVICES_CRC32_H

#include "portable.h"

/* Continues a CRC: crc32_update(0, ...) starts one; feed chunks in order. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif
