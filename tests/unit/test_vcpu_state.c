/* vCPU and platform-device state: save, load, save again gives the same bytes; bad records are refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <cmocka.h>

#include "dev/device.h"
#include "dev/serial.h"
#include "dev/testdev.h"
#include "kvm_required.h"
#include "vcpu_record.h"
#include "util/sbuf.h"
#include "vm/platform_state.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

static struct vm vm;

static int setup_vm(void **state)
{
	(void)state;
	if (vm_create(&vm, NULL, 16ULL << 20) < 0)
		return -1;
	return vcpu_set_pvh_boot_state(vm.vcpu, 0x100000, 0x6000);
}

static int teardown_vm(void **state)
{
	(void)state;
	vm_destroy(&vm);
	return 0;
}

static void test_vcpu_save_load_roundtrip(void **state)
{
	struct sbuf first, second;
	struct sbuf_reader in;

	(void)state;
	sbuf_init(&first);
	sbuf_init(&second);
	assert_int_equal(vcpu_save(vm.vcpu, &first), 0);
	assert_true(first.len > 4096); /* XSAVE area alone is 4 KiB */
	kvm_set_vcpu_rip(vm.vcpu->fd, 0xdead000);
	sbuf_reader_init(&in, first.data, first.len);
	assert_int_equal(vcpu_load(vm.vcpu, &in), 0);
	assert_int_equal(kvm_vcpu_rip(vm.vcpu->fd), 0x100000);
	assert_int_equal(vcpu_save(vm.vcpu, &second), 0);
	vcpu_record_blank_clocks(&first);
	vcpu_record_blank_clocks(&second);
	assert_int_equal(first.len, second.len);
	assert_memory_equal(first.data, second.data, first.len);
	sbuf_free(&first);
	sbuf_free(&second);
}

static void test_vcpu_load_rejects_bad_records(void **state)
{
	struct sbuf good;
	struct sbuf_reader in;

	(void)state;
	sbuf_init(&good);
	assert_int_equal(vcpu_save(vm.vcpu, &good), 0);
	kvm_set_vcpu_rip(vm.vcpu->fd, 0x200000);
	/* Truncated anywhere: refused, and the vCPU keeps its state. */
	for (size_t len = 0; len < good.len; len += 97) {
		sbuf_reader_init(&in, good.data, len);
		assert_int_equal(vcpu_load(vm.vcpu, &in), -EINVAL);
	}
	good.data[0] ^= 0xff; /* version */
	sbuf_reader_init(&in, good.data, good.len);
	assert_int_equal(vcpu_load(vm.vcpu, &in), -EINVAL);
	good.data[0] ^= 0xff;
	good.data[8] ^= 0x01; /* first item length */
	sbuf_reader_init(&in, good.data, good.len);
	assert_int_equal(vcpu_load(vm.vcpu, &in), -EINVAL);
	assert_int_equal(kvm_vcpu_rip(vm.vcpu->fd), 0x200000);
	sbuf_free(&good);
}

static void roundtrip_device(struct device *dev)
{
	struct sbuf a, b;
	struct sbuf_reader in;

	sbuf_init(&a);
	sbuf_init(&b);
	assert_int_equal(dev->ops->save(dev, &a), 0);
	sbuf_reader_init(&in, a.data, a.len);
	assert_int_equal(dev->ops->load(dev, &in), 0);
	assert_int_equal(dev->ops->save(dev, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	for (size_t len = 0; len < a.len; len++) {
		sbuf_reader_init(&in, a.data, len);
		assert_int_equal(dev->ops->load(dev, &in), -EINVAL);
	}
	sbuf_free(&a);
	sbuf_free(&b);
}

static void test_serial_state_roundtrip(void **state)
{
	struct device *serial;
	uint8_t v;

	(void)state;
	assert_int_equal(serial_create(&vm, -1, -1, &serial), 0);
	/* Put the UART in a non-reset state the way a guest would: loopback, a byte in the FIFO. */
	v = 0x10;
	serial->ops->io_write(serial, 4, &v, 1); /* MCR: loopback */
	v = 'x';
	serial->ops->io_write(serial, 0, &v, 1); /* THR -> RX FIFO via loopback */
	v = 0x01;
	serial->ops->io_write(serial, 1, &v, 1); /* IER: RX interrupt */
	roundtrip_device(serial);
	serial->ops->io_read(serial, 5, &v, 1);
	assert_true(v & 0x01); /* LSR.DR: the looped byte survived save/load */
	serial->ops->io_read(serial, 0, &v, 1);
	assert_int_equal(v, 'x');
}

static void test_testdev_clock_survives_load(void **state)
{
	struct device *td;
	struct sbuf s;
	struct sbuf_reader in;
	uint64_t before;

	(void)state;
	assert_int_equal(testdev_create(&vm, &td), 0);
	td->ops->pause(td);
	before = testdev_clock_ms(td);
	sbuf_init(&s);
	assert_int_equal(td->ops->save(td, &s), 0);
	td->ops->reset(td); /* clock back to 0 */
	sbuf_reader_init(&in, s.data, s.len);
	assert_int_equal(td->ops->load(td, &in), 0);
	assert_true(testdev_clock_ms(td) >= before);
	roundtrip_device(td); /* paused: the clock stands still, records compare */
	td->ops->resume(td);
	sbuf_free(&s);
}

static void test_platform_state_roundtrip(void **state)
{
	struct sbuf a, b;
	struct sbuf_reader in;
	struct kvm_irqchip ioapic = { .chip_id = KVM_IRQCHIP_IOAPIC };

	(void)state;
	sbuf_init(&a);
	sbuf_init(&b);
	assert_int_equal(platform_save(&vm, &a), 0);
	/* Change an IOAPIC redirection entry, then load the saved record back. */
	assert_int_equal(ioctl(vm.vm_fd, KVM_GET_IRQCHIP, &ioapic), 0);
	ioapic.chip.ioapic.redirtbl[5].bits = 0x25;
	assert_int_equal(ioctl(vm.vm_fd, KVM_SET_IRQCHIP, &ioapic), 0);
	sbuf_reader_init(&in, a.data, a.len);
	assert_int_equal(platform_load(&vm, &in), 0);
	assert_int_equal(ioctl(vm.vm_fd, KVM_GET_IRQCHIP, &ioapic), 0);
	assert_int_not_equal(ioapic.chip.ioapic.redirtbl[5].bits, 0x25);
	assert_int_equal(platform_save(&vm, &b), 0);
	assert_int_equal(a.len, b.len);
	/* Truncated records are refused before anything is set. */
	ioapic.chip.ioapic.redirtbl[5].bits = 0x25;
	assert_int_equal(ioctl(vm.vm_fd, KVM_SET_IRQCHIP, &ioapic), 0);
	for (size_t len = 0; len < a.len; len += 61) {
		sbuf_reader_init(&in, a.data, len);
		assert_int_equal(platform_load(&vm, &in), -EINVAL);
	}
	assert_int_equal(ioctl(vm.vm_fd, KVM_GET_IRQCHIP, &ioapic), 0);
	assert_int_equal(ioapic.chip.ioapic.redirtbl[5].bits, 0x25);
	sbuf_free(&a);
	sbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vcpu_save_load_roundtrip),
		cmocka_unit_test(test_vcpu_load_rejects_bad_records),
		cmocka_unit_test(test_serial_state_roundtrip),
		cmocka_unit_test(test_testdev_clock_survives_load),
		cmocka_unit_test(test_platform_state_roundtrip),
	};

	if (!kvm_available())
		return 0;
	return cmocka_run_group_tests_name("vcpu_state", tests, setup_vm, teardown_vm);
}
