/*
 * The NBD server's handshake: fixed newstyle greeting, then option haggling
 * until NBD_OPT_GO or NBD_OPT_EXPORT_NAME picks the export (transmission) or
 * the client aborts. Every option is read whole before it is answered, so a
 * refused option leaves the stream in step.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "block/nbd_session.h"

#define GREETING_FLAGS (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)
#define KNOWN_CLIENT_FLAGS (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)

/* What the handshake does after an option. */
enum opt_next { OPT_CONTINUE, OPT_TRANSMIT, OPT_ABORTED };

static int send_reply(struct nbd_session *s, uint32_t opt, uint32_t type, const void *data,
		      uint32_t len)
{
	uint8_t hdr[NBD_OPT_REPLY_HDR_LEN];
	int ret;

	nbd_put64(hdr, NBD_MAGIC_OPT_REPLY);
	nbd_put32(hdr + 8, opt);
	nbd_put32(hdr + 12, type);
	nbd_put32(hdr + 16, len);
	ret = nbd_send(s, hdr, sizeof(hdr), "an option reply");
	if (ret == 0 && len)
		ret = nbd_send(s, data, len, "an option reply");
	return ret;
}

/* An error reply with a message for the client's user. */
static int send_error(struct nbd_session *s, uint32_t opt, uint32_t type, const char *msg)
{
	return send_reply(s, opt, type, msg, (uint32_t)strlen(msg));
}

/* The export called name ("" is the first one), made the session's; false if none. */
static bool choose_export(struct nbd_session *s, const uint8_t *name, uint32_t len)
{
	for (int i = 0; i < s->nexps; i++) {
		const struct nbd_export *e = &s->exps[i];

		if ((len == 0 && i == 0) || (len == strlen(e->name) && memcmp(name, e->name, len) == 0)) {
			s->exp = e;
			s->size = blk_backend_size(e->be);
			return true;
		}
	}
	return false;
}

static int send_greeting(struct nbd_session *s)
{
	uint8_t g[NBD_SERVER_GREETING_LEN];

	nbd_put64(g, NBD_MAGIC_INIT);
	nbd_put64(g + 8, NBD_MAGIC_OPT);
	nbd_put16(g + 16, GREETING_FLAGS);
	return nbd_send(s, g, sizeof(g), "the greeting");
}

static int recv_client_flags(struct nbd_session *s)
{
	uint8_t b[4];
	uint32_t flags;
	int ret = nbd_recv(s, b, sizeof(b), "the client flags");

	if (ret < 0)
		return ret;
	flags = nbd_get32(b);
	if (flags & ~KNOWN_CLIENT_FLAGS)
		return nbd_fail(s, -EPROTO, "client sent unknown handshake flags 0x%x", flags);
	/* A client without FIXED_NEWSTYLE gets the same server: the protocol
	 * lets a server honour fixed newstyle regardless. */
	s->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
	return 0;
}

/* NBD_OPT_EXPORT_NAME: the old way in; no error reply exists, so a wrong
 * name ends the session. */
static int opt_export_name(struct nbd_session *s, uint32_t len)
{
	uint8_t r[8 + 2 + NBD_OLD_ZEROES_LEN] = { 0 };
	int ret;

	if (!choose_export(s, s->opt, len))
		return nbd_fail(s, -ENOENT, "client asked for an unknown export (NBD_OPT_EXPORT_NAME)");
	nbd_put64(r, s->size);
	nbd_put16(r + 8, nbd_export_flags(s));
	ret = nbd_send(s, r, s->no_zeroes ? 10 : sizeof(r), "the export information");
	return ret < 0 ? ret : OPT_TRANSMIT;
}

static int opt_list(struct nbd_session *s, uint32_t len)
{
	uint8_t r[4 + NBD_MAX_STRING];
	int ret = 0;

	if (len)
		return send_error(s, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
	for (int i = 0; ret == 0 && i < s->nexps; i++) {
		uint32_t namelen = (uint32_t)strlen(s->exps[i].name);

		if (namelen > NBD_MAX_STRING)
			namelen = NBD_MAX_STRING;
		nbd_put32(r, namelen);
		memcpy(r + 4, s->exps[i].name, namelen);
		ret = send_reply(s, NBD_OPT_LIST, NBD_REP_SERVER, r, 4 + namelen);
	}
	return ret < 0 ? ret : send_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* The NBD_REP_INFO items for NBD_OPT_INFO / NBD_OPT_GO: the export (always),
 * its name when asked, its block sizes (always: the minimum of 1 imposes
 * nothing, so a client that did not ask loses nothing). */
static int send_info(struct nbd_session *s, uint32_t opt, bool want_name)
{
	uint8_t r[2 + NBD_MAX_STRING];
	uint32_t namelen = (uint32_t)strlen(s->exp->name);
	int ret;

	nbd_put16(r, NBD_INFO_EXPORT);
	nbd_put64(r + 2, s->size);
	nbd_put16(r + 10, nbd_export_flags(s));
	ret = send_reply(s, opt, NBD_REP_INFO, r, 12);
	if (ret == 0 && want_name && namelen <= NBD_MAX_STRING) {
		nbd_put16(r, NBD_INFO_NAME);
		memcpy(r + 2, s->exp->name, namelen);
		ret = send_reply(s, opt, NBD_REP_INFO, r, 2 + namelen);
	}
	if (ret == 0) {
		nbd_put16(r, NBD_INFO_BLOCK_SIZE);
		nbd_put32(r + 2, nbd_export_min_block(s->exp));
		nbd_put32(r + 6, NBD_SERVER_PREFERRED_BLOCK);
		nbd_put32(r + 10, NBD_SERVER_MAX_BLOCK);
		ret = send_reply(s, opt, NBD_REP_INFO, r, 14);
	}
	return ret;
}

/* NBD_OPT_INFO and NBD_OPT_GO: u32 name length, name, u16 count, count u16 info types. */
static int opt_info_go(struct nbd_session *s, uint32_t opt, uint32_t len)
{
	uint32_t namelen;
	uint16_t nreq;
	const uint8_t *req;
	bool want_name = false;
	int ret;

	if (len < 6 || (namelen = nbd_get32(s->opt)) > len - 6)
		return send_error(s, opt, NBD_REP_ERR_INVALID, "malformed export name");
	nreq = nbd_get16(s->opt + 4 + namelen);
	if (len != 6 + namelen + 2u * nreq)
		return send_error(s, opt, NBD_REP_ERR_INVALID, "information request count does not match the length");
	if (!choose_export(s, s->opt + 4, namelen))
		return send_error(s, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	req = s->opt + 6 + namelen;
	for (uint16_t i = 0; i < nreq; i++)
		want_name |= nbd_get16(req + 2 * i) == NBD_INFO_NAME;
	ret = send_info(s, opt, want_name);
	if (ret == 0)
		ret = send_reply(s, opt, NBD_REP_ACK, NULL, 0);
	if (ret < 0)
		return ret;
	return opt == NBD_OPT_GO ? OPT_TRANSMIT : OPT_CONTINUE;
}

static int handle_option(struct nbd_session *s, uint32_t opt, uint32_t len)
{
	int ret;

	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		return opt_export_name(s, len);
	case NBD_OPT_ABORT:
		/* The client may already have gone: the abort stands either way. */
		send_reply(s, opt, NBD_REP_ACK, NULL, 0);
		return OPT_ABORTED;
	case NBD_OPT_LIST:
		ret = opt_list(s, len);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(s, opt, len);
	default: /* STARTTLS, STRUCTURED_REPLY, meta contexts, anything newer */
		ret = send_error(s, opt, NBD_REP_ERR_UNSUP, "option not supported by this server");
		break;
	}
	return ret < 0 ? ret : OPT_CONTINUE;
}

/* One option: header, data, answer. */
static int next_option(struct nbd_session *s)
{
	uint8_t h[NBD_OPT_HDR_LEN];
	uint32_t opt, len;
	int ret = nbd_recv(s, h, sizeof(h), "an option header");

	if (ret < 0)
		return ret;
	if (nbd_get64(h) != NBD_MAGIC_OPT)
		return nbd_fail(s, -EPROTO, "bad option magic 0x%016llx", (unsigned long long)nbd_get64(h));
	opt = nbd_get32(h + 8);
	len = nbd_get32(h + 12);
	if (len > NBD_SERVER_MAX_OPTION) {
		/* Reading gigabytes of option data serves nobody: say why, then hang up. */
		if (opt != NBD_OPT_EXPORT_NAME)
			send_error(s, opt, NBD_REP_ERR_TOO_BIG, "option data too long");
		return nbd_fail(s, -EMSGSIZE, "option %u with %u bytes of data (at most %u)", opt, len,
				NBD_SERVER_MAX_OPTION);
	}
	ret = nbd_recv(s, s->opt, len, "option data");
	return ret < 0 ? ret : handle_option(s, opt, len);
}

int nbd_handshake(struct nbd_session *s)
{
	int ret = send_greeting(s);

	if (ret == 0)
		ret = recv_client_flags(s);
	while (ret == OPT_CONTINUE)
		ret = next_option(s);
	if (ret == OPT_ABORTED)
		return 0;
	return ret; /* OPT_TRANSMIT (1) or -errno */
}
