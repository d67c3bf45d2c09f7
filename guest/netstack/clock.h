/* The guest's millisecond clock for lwIP (sys_now), from the calibrated TSC. */
#ifndef GUEST_NETSTACK_CLOCK_H
#define GUEST_NETSTACK_CLOCK_H

#include "types.h"

/* Calibrates the TSC against the VM clock (~50 ms); call once before lwIP starts. */
void clock_init(void);
uint64_t clock_tsc_per_ms(void);

#endif
