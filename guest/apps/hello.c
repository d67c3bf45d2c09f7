/* app=hello: the banner, the boot facts a test can check, exit 0. */
#include "app.h"
#include "guest.h"

static int hello_main(void)
{
	struct virtio_mmio_dev devs[8];
	int n = cmdline_virtio_devices(devs, 8);

	printf("lockstep test guest: hello from CPL3\n");
	printf("cmdline: %s\n", cmdline());
	printf("ram top: 0x%lx, virtio-mmio devices: %d\n", ram_top(), n);
	for (int i = 0; i < n; i++)
		printf("  virtio-mmio @0x%lx size 0x%lx gsi %u\n", devs[i].base, devs[i].size,
		       devs[i].gsi);
	return 0;
}
GUEST_APP("hello", hello_main);
