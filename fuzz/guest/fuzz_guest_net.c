/*
 * The test guest's network input path (lwIP + our glue + the services),
 * compiled for the host, fed hostile frames: the input is a sequence of
 * frames, each a 2-byte big-endian length then that many bytes, with the
 * guest's clock advancing between them. The stack and its services stay up
 * across inputs, as in a guest under a long attack. Built by `make fuzz`
 * (build/fuzz/fuzz_guest_net); the host test guest/tests/net_host_test.c
 * checks the same code's behaviour, this checks it never misbehaves.
 */
#include <stdint.h>
#include <string.h>

#include "host_wire.h"
#include "services.h"
#include "stack.h"

static struct blockdev disk;
static struct net_link guest_link = { { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, wire_send, NULL };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct net_config nc = { 0 };
	struct services_config sc = { .set = SERVICE_ECHO | SERVICE_KV | SERVICE_HTTP, .kv_disk = &disk };

	(void)argc, (void)argv;
	memdisk_init(&disk, 8192);
	memcpy(guest_link.mac, guest_mac, 6);
	if (net_config_set_ip4(&nc, "10.0.2.15/24") < 0 || net_config_set_ip6(&nc, "fd00::15/64") < 0 ||
	    netstack_init(&guest_link, &nc) < 0 || services_start(&sc) < 0)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (pos + 2 <= size) {
		size_t len = (size_t)(data[pos] << 8 | data[pos + 1]) % (WIRE_FRAME_MAX + 1);

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		wire_feed(data + pos, len);
		pos += len;
		advance_ms(1 + (len & 7));
	}
	wire_clear();
	return 0;
}
