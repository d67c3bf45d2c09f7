/*
 * The guest's TCP/IP stack: lwIP (raw API, NO_SYS) on one Ethernet
 * interface. The caller's loop feeds received frames in, runs the timers,
 * and sleeps for at most netstack_sleep_ms() when nothing arrives.
 */
#ifndef GUEST_NETSTACK_STACK_H
#define GUEST_NETSTACK_STACK_H

#include "net_config.h"
#include "netif_link.h"

/* Starts lwIP with the link and addresses; 0 or -1. `link` must outlive it. */
int netstack_init(struct net_link *link, const struct net_config *cfg);
void netstack_input(const void *frame, size_t len);
/* Timers and housekeeping: call after each batch of input. */
void netstack_poll(void);
/* Milliseconds until the next timer is due (capped at max_ms). */
uint32_t netstack_sleep_ms(uint32_t max_ms);
struct netif *netstack_netif(void);
/* "net: up mac=... ip=A.B.C.D/NN[ ip6=...]" into buf. */
void netstack_describe(char *buf, size_t size);

#endif
