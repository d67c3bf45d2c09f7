/*
 * lwIP's clock, sys_now(), in the guest. Each guest_clock_ms() call is a VM
 * exit (~40 us here) and lwIP asks for the time on every segment, so the
 * clock is the TSC, calibrated once against the VM clock at start-up.
 * Guest-only (uses guest.h); the host test brings its own sys_now().
 */
#include "clock.h"

#include "guest.h"
#include "lwip/sys.h"

#define CALIBRATION_MS 50

static uint64_t tsc_start, tsc_per_ms = 1000000; /* replaced by clock_init() */

/* Waits for the VM clock to tick, so a measurement starts on an edge. */
static uint32_t next_tick(void)
{
	uint32_t t0 = guest_clock_ms(), t;

	while ((t = guest_clock_ms()) == t0)
		;
	return t;
}

void clock_init(void)
{
	uint32_t ms0 = next_tick(), ms1;
	uint64_t tsc0 = rdtsc(), tsc1;

	do /* sleep, not spin; a device may end a sleep early */
		guest_idle(CALIBRATION_MS * 1000);
	while (guest_clock_ms() - ms0 < CALIBRATION_MS);
	ms1 = next_tick();
	tsc1 = rdtsc();
	tsc_per_ms = (tsc1 - tsc0) / (ms1 - ms0);
	if (!tsc_per_ms)
		tsc_per_ms = 1;
	tsc_start = tsc0;
}

u32_t sys_now(void) { return (u32_t)((rdtsc() - tsc_start) / tsc_per_ms); }

uint64_t clock_tsc_per_ms(void) { return tsc_per_ms; }
