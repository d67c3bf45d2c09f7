/*
 * The NBD wire protocol (NetworkBlockDevice/nbd doc/proto.md): magics,
 * handshake and transmission flags, option and command numbers, reply and
 * error codes, the fixed-size messages' layouts, and big-endian helpers.
 * Only what lockstep's server and tests use; every field is big-endian.
 */
#ifndef LOCKSTEP_BLOCK_NBD_PROTO_H
#define LOCKSTEP_BLOCK_NBD_PROTO_H

#include <stdint.h>

/* Handshake. */
#define NBD_MAGIC_INIT          0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_MAGIC_OPT           0x49484156454f5054ULL /* "IHAVEOPT": newstyle, and every option */
#define NBD_MAGIC_OPT_REPLY     0x0003e889045565a9ULL

/* Server handshake flags (16 bits) and client flags (32 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)

/* Options. */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 10
#define NBD_OPT_SET_META_CONTEXT  11

/* Option replies; errors have bit 31 set. */
#define NBD_REP_ACK               1
#define NBD_REP_SERVER            2
#define NBD_REP_INFO              3
#define NBD_REP_FLAG_ERROR        (1u << 31)
#define NBD_REP_ERR_UNSUP         (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY        (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID       (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM      (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD      (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN       (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN      (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG       (NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO payloads: a 16-bit type, then the item. */
#define NBD_INFO_EXPORT      0 /* u64 size, u16 transmission flags */
#define NBD_INFO_NAME        1 /* the export's name */
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3 /* u32 minimum, u32 preferred, u32 maximum */

/* Transmission. */
#define NBD_MAGIC_REQUEST      0x25609513u
#define NBD_MAGIC_SIMPLE_REPLY 0x67446698u

#define NBD_CMD_READ         0
#define NBD_CMD_WRITE        1
#define NBD_CMD_DISC         2
#define NBD_CMD_FLUSH        3
#define NBD_CMD_TRIM         4
#define NBD_CMD_CACHE        5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_CMD_FLAG_FUA     (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF      (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)

/* Error values in replies: fixed by the protocol, not the host's errno. */
#define NBD_EPERM     1
#define NBD_EIO       5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ESHUTDOWN 108

/* Fixed message sizes. */
#define NBD_OLD_ZEROES_LEN     124 /* padding after NBD_OPT_EXPORT_NAME's reply */
#define NBD_SERVER_GREETING_LEN 18 /* INIT magic, OPT magic, u16 handshake flags */
#define NBD_OPT_HDR_LEN        16 /* magic, u32 option, u32 data length */
#define NBD_OPT_REPLY_HDR_LEN  20 /* magic, u32 option, u32 reply type, u32 length */
#define NBD_REQUEST_LEN        28 /* u32 magic, u16 flags, u16 type, u64 cookie, u64 offset, u32 length */
#define NBD_SIMPLE_REPLY_LEN   16 /* u32 magic, u32 error, u64 cookie */

/* Strings (export names, messages) the protocol caps. */
#define NBD_MAX_STRING 4096

static inline void nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nbd_put32(uint8_t *p, uint32_t v)
{
	nbd_put16(p, (uint16_t)(v >> 16));
	nbd_put16(p + 2, (uint16_t)v);
}

static inline void nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}

static inline uint16_t nbd_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)nbd_get16(p) << 16 | nbd_get16(p + 2);
}

static inline uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

/* A decoded transmission request. */
struct nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t cookie; /* the client's handle, echoed in the reply */
	uint64_t offset;
	uint32_t length;
};

#endif
