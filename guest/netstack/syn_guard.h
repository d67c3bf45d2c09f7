/*
 * Bounds half-open connections (SYN_RCVD), the resource a SYN flood eats.
 * lwIP already caps them per listener (the backlog, TCP_DEFAULT_LISTEN_BACKLOG),
 * but then keeps each for 20 s, refusing real clients all that time. Real
 * stacks answer floods with SYN cookies; we, more simply, drop the stale
 * half-open connections whenever a listener's backlog could be full, as Linux
 * does with its SYN queue when cookies are off.
 */
#ifndef GUEST_NETSTACK_SYN_GUARD_H
#define GUEST_NETSTACK_SYN_GUARD_H

/* Call after every few received frames (netstack_input does, every
 * SYN_GUARD_EVERY). Returns how many it dropped. */
#define SYN_GUARD_EVERY 16
int syn_guard_run(void);
/* Half-open connections right now. */
int syn_guard_half_open(void);

#endif
