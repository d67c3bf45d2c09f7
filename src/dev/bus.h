/*
 * I/O buses: port I/O and MMIO. A device claims [base, base+len) on one bus;
 * an exit is dispatched to the device whose range contains the address, with
 * the offset inside the range. Unclaimed reads return all ones, writes are dropped.
 */
#ifndef LOCKSTEP_DEV_BUS_H
#define LOCKSTEP_DEV_BUS_H

#include <stdint.h>

struct device;

#define BUS_MAX_RANGES 64

struct bus_range {
	uint64_t base;
	uint64_t len;
	struct device *dev;
};

struct bus {
	const char *name;
	int nranges;
	struct bus_range ranges[BUS_MAX_RANGES];
};

void bus_init(struct bus *bus, const char *name);
/* -EBUSY if the range overlaps an existing one, -ENOSPC if the bus is full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, struct device *dev);
/* Returns 1 if a device handled the access, 0 if no device claims addr. */
int bus_read(struct bus *bus, uint64_t addr, void *data, uint32_t len);
int bus_write(struct bus *bus, uint64_t addr, const void *data, uint32_t len);

#endif
