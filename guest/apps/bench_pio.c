/*
 * app=bench-pio,n=N: cost of a port-I/O exit, as the guest sees it.
 * Two loops of N reads: the test device's clock port (an exit to the VMM
 * process) and the PIC mask register (handled inside KVM, no VMM involved).
 * Prints "bench-pio: port=0xfc n=N ms=T" lines; bench/run.py turns them into figures.
 */
#include "app.h"
#include "guest.h"
#include "testdev_abi.h"

#define PIC1_DATA 0x21

static void time_reads(uint16_t port, uint64_t n)
{
	uint32_t start = guest_clock_ms(), end;

	for (uint64_t i = 0; i < n; i++)
		(void)inl(port);
	end = guest_clock_ms();
	printf("bench-pio: port=0x%x n=%lu ms=%u\n", port, n, end - start);
}

/* MMIO exit for comparison: the first virtio-mmio window's magic register, and the LAPIC. */
static void time_mmio_reads(uint64_t addr, uint64_t n)
{
	uint32_t start = guest_clock_ms(), end;

	for (uint64_t i = 0; i < n; i++)
		(void)mmio_read32(addr);
	end = guest_clock_ms();
	printf("bench-pio: mmio=0x%lx n=%lu ms=%u\n", addr, n, end - start);
}

static int bench_pio_main(void)
{
	struct virtio_mmio_dev dev;
	uint64_t n = cmdline_get_u64("n", 100000);
	time_reads(TESTDEV_PORT_CLOCK, n);
	time_reads(PIC1_DATA, n);
	if (cmdline_virtio_devices(&dev, 1) == 1)
		time_mmio_reads(dev.base, n);
	time_mmio_reads(0xfee00030, n); /* LAPIC version register, inside KVM */
	return 0;
}
GUEST_APP("bench-pio", bench_pio_main);
