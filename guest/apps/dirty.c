/*
 * app=dirty,pages=N,period=MS[,stop=C]: a steady page-dirtying load for dirty
 * tracking and checkpoint tests. Every period the counter goes up by one and
 * its value is written into each of the N pages (with the page index, so
 * every page holds a distinct value that changes every period), then exactly
 * one line is printed:  dirty: counter=C pages=N
 * Defaults: pages=16, period=100 (ms). Never returns, unless stop=C: then
 * the guest ends (exit status 0) once the counter reaches C.
 */
#include "app.h"
#include "guest.h"

#define PAGE_SIZE 4096

/* A few spots per page, so a page copied in part is caught too. */
static void dirty_page(uint8_t *page, uint64_t counter, uint64_t index)
{
	uint64_t *w = (uint64_t *)page;

	w[0] = counter;
	w[1] = index;
	w[PAGE_SIZE / 16] = counter ^ (index << 32);
	w[PAGE_SIZE / 8 - 1] = counter + index;
}

/* Sleeps until the clock reaches `deadline` (ms); idle calls end early on device work. */
static void sleep_until(uint32_t deadline)
{
	for (;;) {
		int32_t left = (int32_t)(deadline - guest_clock_ms());

		if (left <= 0)
			return;
		guest_idle((uint32_t)left * 1000);
	}
}

static int dirty_main(void)
{
	uint64_t pages = cmdline_get_u64("pages", 16), period = cmdline_get_u64("period", 100);
	uint64_t stop = cmdline_get_u64("stop", 0);
	uint8_t *mem;
	uint64_t counter = 0;
	uint32_t deadline = guest_clock_ms();

	if (pages == 0)
		pages = 1;
	if (period == 0 || period > 3600000)
		period = 100;
	mem = page_alloc(pages);
	for (;;) {
		counter++;
		for (uint64_t i = 0; i < pages; i++)
			dirty_page(mem + i * PAGE_SIZE, counter, i);
		printf("dirty: counter=%lu pages=%lu\n", counter, pages);
		if (counter == stop)
			return 0;
		deadline += (uint32_t)period;
		/* After a long pause (e.g. the VM was stopped) do not run to catch up. */
		if ((int32_t)(guest_clock_ms() - deadline) > (int32_t)period)
			deadline = guest_clock_ms();
		sleep_until(deadline);
	}
	return 0;
}
GUEST_APP("dirty", dirty_main);
