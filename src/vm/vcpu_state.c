/*
 * vCPU save/load. The record is a sequence of (tag, length, bytes) items in
 * the order below; the loader requires exactly this sequence and sizes, and
 * decodes the whole record before it touches the vCPU.
 *
 * Save order: MP_STATE first (reading it makes KVM accept pending INIT/SIPI,
 * which can change other state), VCPU_EVENTS last (other reads can change
 * pending events). Load order: MP_STATE, REGS, SREGS, XSAVE, XCRS, DEBUGREGS,
 * LAPIC (after SREGS: SREGS carries the APIC base), MSRs (after LAPIC, so
 * TSC_DEADLINE restores; TSC_DEADLINE is last in the list, after TSC),
 * VCPU_EVENTS (after REGS, which clears pending exceptions).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/vcpu.h"
#include "vm/vm.h"

#define VCPU_STATE_VERSION 1

enum vcpu_item {
	VCPU_ITEM_MP_STATE = 1,
	VCPU_ITEM_REGS,
	VCPU_ITEM_SREGS,
	VCPU_ITEM_XSAVE,
	VCPU_ITEM_XCRS,
	VCPU_ITEM_DEBUGREGS,
	VCPU_ITEM_LAPIC,
	VCPU_ITEM_MSRS,
	VCPU_ITEM_EVENTS,
	VCPU_ITEM_COUNT = VCPU_ITEM_EVENTS,
};

struct vcpu_state {
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_msrs *msrs;
	struct kvm_vcpu_events events;
};

static size_t vcpu_msrs_size(uint32_t n)
{
	return sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry);
}

static int vcpu_state_alloc(struct vcpu *vcpu, struct vcpu_state *st)
{
	memset(st, 0, sizeof(*st));
	st->xsave = calloc(1, vcpu->xsave_size);
	st->msrs = calloc(1, vcpu_msrs_size(vcpu->nmsrs));
	if (!st->xsave || !st->msrs)
		return -ENOMEM;
	st->msrs->nmsrs = vcpu->nmsrs;
	for (uint32_t i = 0; i < vcpu->nmsrs; i++)
		st->msrs->entries[i].index = vcpu->msr_indices[i];
	return 0;
}

static void vcpu_state_free(struct vcpu_state *st)
{
	free(st->xsave);
	free(st->msrs);
}

static int vcpu_ioctl(struct vcpu *vcpu, unsigned long req, void *arg)
{
	return ioctl(vcpu->fd, req, arg) < 0 ? -errno : 0;
}

static int vcpu_read_state(struct vcpu *vcpu, struct vcpu_state *st)
{
	unsigned long xsave_req = vcpu->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2
									      : KVM_GET_XSAVE;
	int ret;

	if ((ret = vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &st->mp)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_GET_REGS, &st->regs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_GET_SREGS, &st->sregs)) ||
	    (ret = vcpu_ioctl(vcpu, xsave_req, st->xsave)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_GET_XCRS, &st->xcrs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &st->dregs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_GET_LAPIC, &st->lapic)))
		return ret;
	if (ioctl(vcpu->fd, KVM_GET_MSRS, st->msrs) != (int)vcpu->nmsrs)
		return -EIO;
	return vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &st->events);
}

int vcpu_save(struct vcpu *vcpu, struct sbuf *out)
{
	struct vcpu_state st;
	int ret = vcpu_state_alloc(vcpu, &st);

	if (ret == 0)
		ret = vcpu_read_state(vcpu, &st);
	if (ret == 0) {
		sbuf_put_u32(out, VCPU_STATE_VERSION);
		sbuf_put_item(out, VCPU_ITEM_MP_STATE, &st.mp, sizeof(st.mp));
		sbuf_put_item(out, VCPU_ITEM_REGS, &st.regs, sizeof(st.regs));
		sbuf_put_item(out, VCPU_ITEM_SREGS, &st.sregs, sizeof(st.sregs));
		sbuf_put_item(out, VCPU_ITEM_XSAVE, st.xsave, vcpu->xsave_size);
		sbuf_put_item(out, VCPU_ITEM_XCRS, &st.xcrs, sizeof(st.xcrs));
		sbuf_put_item(out, VCPU_ITEM_DEBUGREGS, &st.dregs, sizeof(st.dregs));
		sbuf_put_item(out, VCPU_ITEM_LAPIC, &st.lapic, sizeof(st.lapic));
		sbuf_put_item(out, VCPU_ITEM_MSRS, st.msrs, vcpu_msrs_size(vcpu->nmsrs));
		sbuf_put_item(out, VCPU_ITEM_EVENTS, &st.events, sizeof(st.events));
		ret = out->error;
	}
	vcpu_state_free(&st);
	return ret;
}

static int vcpu_decode_state(struct vcpu *vcpu, struct sbuf_reader *in, struct vcpu_state *st)
{
	struct kvm_msrs *msrs = st->msrs;
	int ret;

	if (sbuf_get_u32(in) != VCPU_STATE_VERSION)
		return -EINVAL;
	if ((ret = sbuf_get_item(in, VCPU_ITEM_MP_STATE, &st->mp, sizeof(st->mp))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_REGS, &st->regs, sizeof(st->regs))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_SREGS, &st->sregs, sizeof(st->sregs))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_XSAVE, st->xsave, vcpu->xsave_size)) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_XCRS, &st->xcrs, sizeof(st->xcrs))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_DEBUGREGS, &st->dregs, sizeof(st->dregs))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_LAPIC, &st->lapic, sizeof(st->lapic))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_MSRS, msrs, vcpu_msrs_size(vcpu->nmsrs))) ||
	    (ret = sbuf_get_item(in, VCPU_ITEM_EVENTS, &st->events, sizeof(st->events))))
		return ret;
	/* The MSR list must be ours, index for index. */
	if (msrs->nmsrs != vcpu->nmsrs)
		return -EINVAL;
	for (uint32_t i = 0; i < vcpu->nmsrs; i++)
		if (msrs->entries[i].index != vcpu->msr_indices[i])
			return -EINVAL;
	return 0;
}

static int vcpu_write_state(struct vcpu *vcpu, struct vcpu_state *st)
{
	int ret;

	if ((ret = vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &st->mp)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_SET_REGS, &st->regs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_SET_SREGS, &st->sregs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_SET_XSAVE, st->xsave)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_SET_XCRS, &st->xcrs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &st->dregs)) ||
	    (ret = vcpu_ioctl(vcpu, KVM_SET_LAPIC, &st->lapic)))
		return ret;
	if (ioctl(vcpu->fd, KVM_SET_MSRS, st->msrs) != (int)vcpu->nmsrs)
		return -EIO;
	return vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &st->events);
}

int vcpu_load(struct vcpu *vcpu, struct sbuf_reader *in)
{
	struct vcpu_state st;
	int ret = vcpu_state_alloc(vcpu, &st);

	if (ret == 0)
		ret = vcpu_decode_state(vcpu, in, &st);
	if (ret == 0)
		ret = vcpu_write_state(vcpu, &st);
	vcpu_state_free(&st);
	return ret;
}
