/* Hooks lwIP calls into the guest (see LWIP_HOOK_* in lwipopts.h). */
#ifndef GUEST_LWIP_HOOKS_H
#define GUEST_LWIP_HOOKS_H

#include "lwip/ip_addr.h"

/* Initial sequence number of a new connection (guest/netstack/isn.c). */
u32_t lockstep_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
		       u16_t remote_port);

#endif
