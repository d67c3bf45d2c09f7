#include "dev/testdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev/device.h"
#include "testdev_abi.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define TESTDEV_STATE_VERSION 1

struct testdev {
	struct device dev;
	/* VM clock = host monotonic time - offset; frozen at paused_at while paused. */
	int64_t offset_ns;
	int64_t paused_at_ns; /* 0 when running */
};

static struct testdev *to_testdev(struct device *d) { return (struct testdev *)d; }

static int64_t host_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t testdev_now_ns(struct testdev *t)
{
	return (t->paused_at_ns ? t->paused_at_ns : host_now_ns()) - t->offset_ns;
}

uint64_t testdev_clock_ms(struct device *dev)
{
	return (uint64_t)testdev_now_ns(to_testdev(dev)) / 1000000;
}

static uint32_t testdev_load32(const void *data, uint32_t len)
{
	uint32_t v = 0;

	memcpy(&v, data, len < 4 ? len : 4);
	return v;
}

static void testdev_io_write(struct device *d, uint64_t off, const void *data, uint32_t len)
{
	uint32_t v = testdev_load32(data, len);

	switch (off + TESTDEV_PORT_BASE) {
	case TESTDEV_PORT_EXIT:
		vm_request_shutdown(d->vm, (int)(v & 0xff), "guest-shutdown");
		break;
	case TESTDEV_PORT_IDLE:
		vcpu_request_idle(d->vm->vcpu, v);
		break;
	default:
		break;
	}
}

static void testdev_io_read(struct device *d, uint64_t off, void *data, uint32_t len)
{
	uint32_t v = 0xffffffff;

	if (off + TESTDEV_PORT_BASE == TESTDEV_PORT_CLOCK)
		v = (uint32_t)testdev_clock_ms(d);
	memcpy(data, &v, len < 4 ? len : 4);
}

static void testdev_pause(struct device *d)
{
	struct testdev *t = to_testdev(d);

	if (!t->paused_at_ns)
		t->paused_at_ns = host_now_ns();
}

static void testdev_resume(struct device *d)
{
	struct testdev *t = to_testdev(d);

	if (t->paused_at_ns) {
		t->offset_ns += host_now_ns() - t->paused_at_ns;
		t->paused_at_ns = 0;
	}
}

static void testdev_reset(struct device *d)
{
	struct testdev *t = to_testdev(d);

	int64_t now = host_now_ns();

	/* Clock back to zero; a paused VM stays paused. */
	t->offset_ns = now;
	if (t->paused_at_ns)
		t->paused_at_ns = now;
}

static int testdev_save(struct device *d, struct sbuf *out)
{
	sbuf_put_u32(out, TESTDEV_STATE_VERSION);
	sbuf_put_u64(out, (uint64_t)testdev_now_ns(to_testdev(d)));
	return out->error;
}

static int testdev_load(struct device *d, struct sbuf_reader *in)
{
	struct testdev *t = to_testdev(d);
	uint32_t version = sbuf_get_u32(in);
	int64_t vm_ns = (int64_t)sbuf_get_u64(in);

	if (sbuf_reader_error(in) || version != TESTDEV_STATE_VERSION || vm_ns < 0)
		return -EINVAL;
	/* Continue the clock from the saved value. */
	t->offset_ns = (t->paused_at_ns ? t->paused_at_ns : host_now_ns()) - vm_ns;
	return 0;
}

static void testdev_destroy(struct device *d) { free(to_testdev(d)); }

static const struct device_ops testdev_ops = {
	.reset = testdev_reset,
	.io_read = testdev_io_read,
	.io_write = testdev_io_write,
	.save = testdev_save,
	.load = testdev_load,
	.pause = testdev_pause,
	.resume = testdev_resume,
	.destroy = testdev_destroy,
};

int testdev_create(struct vm *vm, struct device **out)
{
	struct testdev *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->dev.name = "testdev";
	t->dev.ops = &testdev_ops;
	ret = vm_add_device(vm, &t->dev);
	if (ret < 0) {
		free(t);
		return ret;
	}
	testdev_reset(&t->dev);
	if (out)
		*out = &t->dev;
	return vm_register_pio(vm, TESTDEV_PORT_BASE, TESTDEV_PORT_LEN, &t->dev);
}
