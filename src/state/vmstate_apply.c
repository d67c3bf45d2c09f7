/*
 * Applying loaded records to a VM, all or nothing: the current vCPU, platform
 * and device state is saved first, and put back if any record is refused.
 * Order: vCPU, platform (PIT, clock, PICs, IOAPIC), then devices, so that a
 * device re-asserting its interrupt line lands on the restored irqchip.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/device.h"
#include "state/vmstate.h"
#include "vm/platform_state.h"
#include "vm/vcpu.h"

struct machine_records {
	struct sbuf vcpu;
	struct sbuf platform;
	struct sbuf devices[VM_MAX_DEVICES]; /* indexed like vm->devices */
};

static void records_init(struct machine_records *m)
{
	sbuf_init(&m->vcpu);
	sbuf_init(&m->platform);
	for (int i = 0; i < VM_MAX_DEVICES; i++)
		sbuf_init(&m->devices[i]);
}

static void records_free(struct machine_records *m)
{
	sbuf_free(&m->vcpu);
	sbuf_free(&m->platform);
	for (int i = 0; i < VM_MAX_DEVICES; i++)
		sbuf_free(&m->devices[i]);
}

static int records_save(struct vm *vm, struct machine_records *m)
{
	int ret = vcpu_save(vm->vcpu, &m->vcpu);

	if (ret == 0)
		ret = platform_save(vm, &m->platform);
	for (int i = 0; i < vm->ndevices && ret == 0; i++)
		if (vm->devices[i]->ops->save)
			ret = vm->devices[i]->ops->save(vm->devices[i], &m->devices[i]);
	return ret;
}

static int load_one(int (*fn)(void *, struct sbuf_reader *), void *target, const struct sbuf *b)
{
	struct sbuf_reader r;
	int ret;

	sbuf_reader_init(&r, b->data, b->len);
	ret = fn(target, &r);
	if (ret == 0 && sbuf_remaining(&r))
		ret = -EINVAL; /* a record must be consumed exactly */
	return ret;
}

static int load_vcpu(void *t, struct sbuf_reader *r) { return vcpu_load(t, r); }
static int load_platform(void *t, struct sbuf_reader *r) { return platform_load(t, r); }

static int load_device(void *t, struct sbuf_reader *r)
{
	struct device *d = t;

	return d->ops->load(d, r);
}

/* Applies records; *failed names the one refused. */
static int records_apply(struct vm *vm, const struct sbuf *vcpu, const struct sbuf *platform,
			 const struct sbuf *const *devices, const char **failed)
{
	int ret;

	*failed = "vCPU";
	if ((ret = load_one(load_vcpu, vm->vcpu, vcpu)))
		return ret;
	*failed = "platform";
	if ((ret = load_one(load_platform, vm, platform)))
		return ret;
	for (int i = 0; i < vm->ndevices; i++) {
		if (!devices[i])
			continue;
		*failed = vm->devices[i]->name;
		if ((ret = load_one(load_device, vm->devices[i], devices[i])))
			return ret;
	}
	return 0;
}

/* The loaded record of each VM device, in vm->devices order; every saving device needs one. */
static int match_devices(struct vmstate_loader *l, const struct sbuf **out)
{
	struct vm *vm = l->vm;

	for (int i = 0; i < vm->ndevices; i++) {
		out[i] = NULL;
		for (int j = 0; j < l->ndevices; j++)
			if (strcmp(l->devices[j].name, vm->devices[i]->name) == 0)
				out[i] = &l->devices[j].rec;
		if (!out[i] && vm->devices[i]->ops->save) {
			snprintf(l->error, sizeof(l->error), "stream has no state for device %s",
				 vm->devices[i]->name);
			return -EINVAL;
		}
	}
	return 0;
}

int vmstate_apply_machine(struct vmstate_loader *l)
{
	struct vm *vm = l->vm;
	const struct sbuf *loaded[VM_MAX_DEVICES], *backup[VM_MAX_DEVICES];
	struct machine_records *saved = calloc(1, sizeof(*saved));
	const char *failed, *ignored;
	int ret = match_devices(l, loaded);

	if (ret < 0 || !saved) {
		free(saved);
		return ret < 0 ? ret : -ENOMEM;
	}
	records_init(saved);
	vm_io_lock(vm);
	ret = records_save(vm, saved);
	if (ret < 0) {
		snprintf(l->error, sizeof(l->error), "saving the current state first: %s",
			 strerror(-ret));
	} else {
		ret = records_apply(vm, &l->vcpu, &l->platform, loaded, &failed);
		if (ret < 0) {
			snprintf(l->error, sizeof(l->error), "the %s state was refused (%s); the VM keeps its own",
				 failed, strerror(-ret));
			for (int i = 0; i < vm->ndevices; i++)
				backup[i] = vm->devices[i]->ops->save ? &saved->devices[i] : NULL;
			records_apply(vm, &saved->vcpu, &saved->platform, backup, &ignored);
		}
	}
	vm_io_unlock(vm);
	records_free(saved);
	free(saved);
	return ret;
}
