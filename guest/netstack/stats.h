/* lwIP's counters on the console: one line per protocol that saw traffic. */
#ifndef GUEST_NETSTACK_STATS_H
#define GUEST_NETSTACK_STATS_H

#include "portable.h"

void netstack_print_stats(void);
/* Frames received so far (to print only when something happened). */
uint64_t netstack_rx_frames(void);

#endif
