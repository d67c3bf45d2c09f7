/*
 * State of the in-kernel platform devices: the two 8259 PICs, the IOAPIC,
 * the PIT and the KVM clock. Same record shape as the vCPU's: version, then
 * (tag, length, bytes) items; the loader decodes everything first.
 *
 * Load order: PIT, then the clock, then PIC master, PIC slave, IOAPIC (the
 * order Firecracker uses; the clock is set with flags 0 so guest time
 * continues from the saved value instead of jumping by the time spent saved).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/platform_state.h"
#include "vm/vm.h"

#define PLATFORM_STATE_VERSION 1

enum platform_item {
	PLATFORM_ITEM_PIT = 1,
	PLATFORM_ITEM_CLOCK,
	PLATFORM_ITEM_PIC_MASTER,
	PLATFORM_ITEM_PIC_SLAVE,
	PLATFORM_ITEM_IOAPIC,
};

struct platform_state {
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct kvm_irqchip chips[3]; /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */
};

static int platform_read(struct vm *vm, struct platform_state *st)
{
	memset(st, 0, sizeof(*st));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &st->pit) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_CLOCK, &st->clock) < 0)
		return -errno;
	for (uint32_t i = 0; i < 3; i++) {
		st->chips[i].chip_id = i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &st->chips[i]) < 0)
			return -errno;
	}
	return 0;
}

int platform_save(struct vm *vm, struct sbuf *out)
{
	struct platform_state st;
	int ret = platform_read(vm, &st);

	if (ret < 0)
		return ret;
	sbuf_put_u32(out, PLATFORM_STATE_VERSION);
	sbuf_put_item(out, PLATFORM_ITEM_PIT, &st.pit, sizeof(st.pit));
	sbuf_put_item(out, PLATFORM_ITEM_CLOCK, &st.clock, sizeof(st.clock));
	for (int i = 0; i < 3; i++)
		sbuf_put_item(out, PLATFORM_ITEM_PIC_MASTER + i, &st.chips[i], sizeof(st.chips[i]));
	return out->error;
}

static int platform_decode(struct sbuf_reader *in, struct platform_state *st)
{
	int ret;

	if (sbuf_get_u32(in) != PLATFORM_STATE_VERSION)
		return -EINVAL;
	if ((ret = sbuf_get_item(in, PLATFORM_ITEM_PIT, &st->pit, sizeof(st->pit))) ||
	    (ret = sbuf_get_item(in, PLATFORM_ITEM_CLOCK, &st->clock, sizeof(st->clock))))
		return ret;
	for (uint32_t i = 0; i < 3; i++) {
		ret = sbuf_get_item(in, PLATFORM_ITEM_PIC_MASTER + i, &st->chips[i],
					sizeof(st->chips[i]));
		if (ret)
			return ret;
		if (st->chips[i].chip_id != i)
			return -EINVAL;
	}
	return 0;
}

int platform_load(struct vm *vm, struct sbuf_reader *in)
{
	struct platform_state st;
	int ret = platform_decode(in, &st);

	if (ret < 0)
		return ret;
	st.clock.flags = 0;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &st.pit) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_CLOCK, &st.clock) < 0)
		return -errno;
	for (int i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st.chips[i]) < 0)
			return -errno;
	return 0;
}
