/*
 * Initial sequence numbers as RFC 6528 has them, ISN = M + F(4-tuple, secret):
 * F is a keyed hash of the connection's addresses and ports, M a clock (the
 * TSC in 64-cycle steps). The secret comes from the TSC at first use. So two
 * guests, even two copies of one guest made by a COLO checkpoint (same
 * secret), pick different ISNs for the same connection: their TSCs differ
 * by the moment each one sees the SYN.
 * lockstep_rand() (lwIP's LWIP_RAND: first ephemeral port, MLD delays) is a
 * xorshift generator seeded the same way.
 */
#include "lwip/ip_addr.h"
#include "lwip_hooks.h"
#include "portable.h"

static uint64_t secret[2], rand_state;

static uint64_t tsc(void) { return __builtin_ia32_rdtsc(); }

/* MurmurHash3's finalizer: every input bit affects every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void seed(void)
{
	secret[0] = mix64(tsc() ^ 0x9e3779b97f4a7c15ULL);
	secret[1] = mix64(secret[0] ^ tsc());
	if (!secret[0])
		secret[0] = 1;
}

static uint64_t hash_addr(uint64_t h, const ip_addr_t *a)
{
#if LWIP_IPV6
	if (IP_IS_V6(a)) {
		const u32_t *w = ip_2_ip6(a)->addr;

		for (int i = 0; i < 4; i++)
			h = mix64(h ^ w[i]);
		return h;
	}
#endif
	return mix64(h ^ ip4_addr_get_u32(ip_2_ip4(a)));
}

u32_t lockstep_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
		       u16_t remote_port)
{
	uint64_t h;

	if (!secret[0])
		seed();
	h = hash_addr(secret[0], local_ip);
	h = hash_addr(h, remote_ip);
	h = mix64(h ^ ((uint64_t)local_port << 16 | remote_port) ^ secret[1]);
	return (u32_t)(h + (tsc() >> 6));
}

unsigned int lockstep_rand(void)
{
	if (!rand_state)
		rand_state = mix64(tsc()) | 1;
	rand_state ^= rand_state << 13;
	rand_state ^= rand_state >> 7;
	rand_state ^= rand_state << 17;
	return (unsigned int)(rand_state >> 32);
}
