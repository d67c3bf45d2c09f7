/*
 * The test guest's runtime: everything runs at CPL3 (ports opened by the TSS
 * I/O bitmap, since this host drops IOPL on iretq), so port I/O
 * and MMIO (identity-mapped, user-accessible) are plain instructions here.
 * Physical address == virtual address for all RAM and device windows.
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include "types.h"

/* ---- port I/O and MMIO ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

#define barrier() __asm__ volatile("" ::: "memory")
static inline void mb(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void rmb(void) { __asm__ volatile("lfence" ::: "memory"); }
static inline void wmb(void) { __asm__ volatile("sfence" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* ---- the test device (abi/testdev.h) ---- */
void guest_exit(int status) __attribute__((noreturn));
/* Blocks until a device has work for us or timeout_us passes. */
void guest_idle(uint32_t timeout_us);
/* VM clock, milliseconds. */
uint32_t guest_clock_ms(void);

/* ---- console (COM1, polled) ---- */
void console_write(const char *s, size_t n);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints "FAIL: <msg>" and exits with status 1. */
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* ---- strings ---- */
#include "guest_string.h"
/* Decimal or 0x-hex; returns 0 and sets *out, or -1 if s is not a number up to `end`. */
int parse_u64(const char *s, size_t len, uint64_t *out);

/* ---- boot information ---- */
/* The value of key=VALUE on the command line (copied into buf), or NULL. */
const char *cmdline_get(const char *key, char *buf, size_t size);
/* key=N as a number; def if the key is absent; a value that is not a number panics, naming it. */
uint64_t cmdline_get_u64(const char *key, uint64_t def);
/* The whole command line. */
const char *cmdline(void);
struct virtio_mmio_dev {
	uint64_t base;
	uint64_t size;
	uint32_t gsi;
};
/* Devices announced as virtio_mmio.device=SIZE@BASE:GSI; returns the count. */
int cmdline_virtio_devices(struct virtio_mmio_dev *devs, int max);

/* ---- memory: page allocator over the RAM above the image (never freed) ---- */
void *page_alloc(size_t npages); /* zeroed, 4 KiB aligned; panics when out of RAM */
uint64_t ram_top(void);          /* end of the RAM region the allocator uses */

/* ---- interrupts ---- */
/* Routes IOAPIC pin gsi (edge, active high) to this CPU; returns 0 or -1. */
int irq_enable(uint32_t gsi);
/* 1 if gsi fired since the last call (test-and-clear). */
int irq_take(uint32_t gsi);
/* Interrupts received on gsi so far. */
uint64_t irq_count(uint32_t gsi);

#endif
