#include "dev/reset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev/device.h"
#include "vm/vm.h"

#define I8042_STATUS_PORT 0x64
#define I8042_CMD_PULSE_RESET 0xfe
#define RESET_CONTROL_PORT 0xcf9
#define RESET_CONTROL_RESET 0x04 /* with 0x02 (hard) or not: a reset either way */

struct reset_dev {
	struct device dev;
	uint16_t port; /* the one this instance answers */
};

static void reset_io_write(struct device *d, uint64_t off, const void *data, uint32_t len)
{
	struct reset_dev *r = (struct reset_dev *)d;
	uint8_t v = *(const uint8_t *)data;

	(void)off;
	(void)len;
	if ((r->port == I8042_STATUS_PORT && v == I8042_CMD_PULSE_RESET) ||
	    (r->port == RESET_CONTROL_PORT && (v & RESET_CONTROL_RESET)))
		vm_request_shutdown(d->vm, 0, "guest-reset");
}

/* No controller behind them: status 0 (the keyboard controller's input buffer
 * empty, so a reboot does not spin waiting for it). */
static void reset_io_read(struct device *d, uint64_t off, void *data, uint32_t len)
{
	(void)d;
	(void)off;
	memset(data, 0, len);
}

static void reset_destroy(struct device *d) { free(d); }

static const struct device_ops reset_ops = {
	.io_read = reset_io_read,
	.io_write = reset_io_write,
	.destroy = reset_destroy,
};

static int reset_add(struct vm *vm, const char *name, uint16_t port)
{
	struct reset_dev *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->dev.name = name;
	r->dev.ops = &reset_ops;
	r->port = port;
	if ((ret = vm_add_device(vm, &r->dev)) < 0) {
		free(r);
		return ret;
	}
	return vm_register_pio(vm, port, 1, &r->dev);
}

int reset_create(struct vm *vm)
{
	int ret = reset_add(vm, "i8042-reset", I8042_STATUS_PORT);

	return ret < 0 ? ret : reset_add(vm, "reset-control", RESET_CONTROL_PORT);
}
