/* The paravirtual test device (abi/testdev.h). */
#include "guest.h"
#include "testdev_abi.h"

void guest_exit(int status)
{
	for (;;)
		outl(TESTDEV_PORT_EXIT, (uint32_t)status);
}

void guest_idle(uint32_t timeout_us) { outl(TESTDEV_PORT_IDLE, timeout_us ? timeout_us : 1); }

uint32_t guest_clock_ms(void) { return inl(TESTDEV_PORT_CLOCK); }
