#include "syn_guard.h"

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

/* Below the backlog of one listener (so a flood at one port never fills it)
 * and, with the frames of one batch on top, below the IPv6 neighbour cache
 * (LWIP_ND6_NUM_NEIGHBORS): forged peers then never push real ones out. */
#define HALF_OPEN_LIMIT 96
/* A real client answers a SYN-ACK within a round trip: entries this many slow
 * timer ticks old (>= 200 ms at TCP_TMR_INTERVAL 100) are presumed spoofed. */
#define STALE_TICKS 2

int syn_guard_half_open(void)
{
	int n = 0;

	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
		n += pcb->state == SYN_RCVD;
	return n;
}

/* The half-open connection idle longest, or NULL. */
static struct tcp_pcb *oldest_half_open(void)
{
	struct tcp_pcb *oldest = NULL;

	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
		if (pcb->state == SYN_RCVD &&
		    (!oldest || (u32_t)(tcp_ticks - pcb->tmr) >= (u32_t)(tcp_ticks - oldest->tmr)))
			oldest = pcb;
	return oldest;
}

/* Drops (without a RST: the peer is likely forged) every stale half-open connection. */
static int drop_stale(void)
{
	struct tcp_pcb *pcb = tcp_active_pcbs, *next;
	int dropped = 0;

	for (; pcb; pcb = next) {
		next = pcb->next;
		if (pcb->state == SYN_RCVD && (u32_t)(tcp_ticks - pcb->tmr) >= STALE_TICKS) {
			tcp_abandon(pcb, 0);
			dropped++;
		}
	}
	return dropped;
}

int syn_guard_run(void)
{
	int n = syn_guard_half_open(), dropped;

	if (n < HALF_OPEN_LIMIT)
		return 0;
	dropped = drop_stale();
	n -= dropped;
	/* Still full of fresh ones: the flood is on; keep the newest half. */
	for (; n > HALF_OPEN_LIMIT / 2; n--, dropped++)
		tcp_abandon(oldest_half_open(), 0);
	return dropped;
}
