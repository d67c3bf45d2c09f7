#include "dev/serial.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dev/device.h"
#include "util/evloop.h"
#include "vm/vm.h"

#define SERIAL_STATE_VERSION 1
#define SERIAL_FIFO_SIZE 64

/* Register offsets */
enum { UART_RBR_THR = 0, UART_IER, UART_IIR_FCR, UART_LCR, UART_MCR, UART_LSR, UART_MSR, UART_SCR };

#define IER_RDI 0x01  /* receive data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ON 0xc0
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCD_DSR_CTS 0xb0

struct serial {
	struct device dev;
	int out_fd;
	int in_fd;
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	uint8_t thr_pending; /* "THR empty" interrupt not yet acknowledged */
	uint8_t irq_level;
	uint8_t rx[SERIAL_FIFO_SIZE];
	uint8_t rx_head, rx_count;
	uint8_t input_paused; /* FIFO full: console fd not watched */
};

static struct serial *to_serial(struct device *d) { return (struct serial *)d; }

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = s->fcr & FCR_FIFO_ENABLE ? IIR_FIFO_ON : 0;

	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void serial_update_irq(struct serial *s)
{
	uint8_t level = (serial_iir(s) & IIR_NONE) ? 0 : 1;

	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(s->dev.vm, SERIAL_COM1_IRQ, level);
	}
}

static void serial_transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		if (s->rx_count < SERIAL_FIFO_SIZE)
			s->rx[(s->rx_head + s->rx_count++) % SERIAL_FIFO_SIZE] = byte;
	} else if (s->out_fd >= 0 && write(s->out_fd, &byte, 1) < 0) {
		/* console gone: the guest cannot be told, drop the byte */
	}
	s->thr_pending = 1;
}

static uint8_t serial_receive(struct serial *s)
{
	uint8_t byte;

	if (!s->rx_count)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (uint8_t)((s->rx_head + 1) % SERIAL_FIFO_SIZE);
	s->rx_count--;
	if (s->input_paused && s->in_fd >= 0) {
		s->input_paused = 0;
		evloop_modify(s->dev.vm->loop, s->in_fd, EPOLLIN);
	}
	return byte;
}

static uint8_t serial_read_reg(struct serial *s, uint64_t off)
{
	uint8_t iir;

	switch (off) {
	case UART_RBR_THR:
		return s->lcr & LCR_DLAB ? s->dll : serial_receive(s);
	case UART_IER:
		return s->lcr & LCR_DLAB ? s->dlm : s->ier;
	case UART_IIR_FCR:
		iir = serial_iir(s);
		if ((iir & 0x0f) == IIR_THRI)
			s->thr_pending = 0; /* reading IIR acknowledges "THR empty" */
		return iir;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case UART_MSR:
		return s->mcr & MCR_LOOP ? (uint8_t)((s->mcr & 0x0c) << 4 | (s->mcr & 0x03) << 4)
					 : MSR_DCD_DSR_CTS;
	default:
		return s->scr;
	}
}

static void serial_write_reg(struct serial *s, uint64_t off, uint8_t v)
{
	switch (off) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_transmit(s, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			if (!(s->ier & IER_THRI) && (v & IER_THRI))
				s->thr_pending = 1; /* enabling THRI with an empty THR interrupts */
			s->ier = v & 0x0f;
		}
		break;
	case UART_IIR_FCR:
		s->fcr = v & (FCR_FIFO_ENABLE | 0xc0);
		if (v & FCR_CLEAR_RX)
			s->rx_count = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break;
	}
}

static void serial_io_read(struct device *d, uint64_t off, void *data, uint32_t len)
{
	struct serial *s = to_serial(d);

	memset(data, 0, len);
	*(uint8_t *)data = serial_read_reg(s, off);
	serial_update_irq(s);
}

static void serial_io_write(struct device *d, uint64_t off, const void *data, uint32_t len)
{
	struct serial *s = to_serial(d);

	(void)len;
	serial_write_reg(s, off, *(const uint8_t *)data);
	serial_update_irq(s);
}

/* Event loop: console input arrives. Reads only what the FIFO can hold. */
static void serial_on_input(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	uint8_t buf[SERIAL_FIFO_SIZE];
	ssize_t n;

	(void)events;
	vm_io_lock(s->dev.vm);
	if (s->rx_count == SERIAL_FIFO_SIZE) {
		/* The guest has not drained the FIFO: wait for it, do not spin. */
		evloop_modify(s->dev.vm->loop, s->in_fd, 0);
		s->input_paused = 1;
		vm_io_unlock(s->dev.vm);
		return;
	}
	n = read(s->in_fd, buf, (size_t)(SERIAL_FIFO_SIZE - s->rx_count));
	if (n <= 0) {
		evloop_del(s->dev.vm->loop, s->in_fd); /* EOF or error: stop watching */
		s->in_fd = -1;
	}
	for (ssize_t i = 0; i < n; i++)
		s->rx[(s->rx_head + s->rx_count++) % SERIAL_FIFO_SIZE] = buf[i];
	serial_update_irq(s);
	vm_io_unlock(s->dev.vm);
	vm_wake_idle(s->dev.vm);
}

static void serial_reset(struct device *d)
{
	struct serial *s = to_serial(d);

	s->dll = 12; /* 9600 baud */
	s->dlm = s->ier = s->fcr = s->lcr = s->mcr = s->scr = 0;
	s->thr_pending = 0;
	s->rx_head = s->rx_count = 0;
	serial_update_irq(s);
}

static int serial_save(struct device *d, struct sbuf *out)
{
	struct serial *s = to_serial(d);

	sbuf_put_u32(out, SERIAL_STATE_VERSION);
	sbuf_put(out, (uint8_t[]){ s->dll, s->dlm, s->ier, s->fcr, s->lcr, s->mcr, s->scr,
				   s->thr_pending, s->rx_count },
		 9);
	for (int i = 0; i < s->rx_count; i++)
		sbuf_put_u8(out, s->rx[(s->rx_head + i) % SERIAL_FIFO_SIZE]);
	return out->error;
}

static int serial_load(struct device *d, struct sbuf_reader *in)
{
	struct serial *s = to_serial(d);
	uint8_t r[9], rx[SERIAL_FIFO_SIZE];

	if (sbuf_get_u32(in) != SERIAL_STATE_VERSION || sbuf_get(in, r, sizeof(r)) < 0 ||
	    r[8] > SERIAL_FIFO_SIZE || sbuf_get(in, rx, r[8]) < 0)
		return -EINVAL;
	s->dll = r[0], s->dlm = r[1], s->ier = r[2] & 0x0f, s->fcr = r[3], s->lcr = r[4];
	s->mcr = r[5] & 0x1f, s->scr = r[6], s->thr_pending = r[7] ? 1 : 0;
	s->rx_head = 0;
	s->rx_count = r[8];
	memcpy(s->rx, rx, r[8]);
	s->irq_level = 0xff; /* unknown after a platform load: drive the line either way */
	serial_update_irq(s);
	return 0;
}

static void serial_destroy(struct device *d)
{
	struct serial *s = to_serial(d);

	if (s->in_fd >= 0)
		evloop_del(d->vm->loop, s->in_fd);
	free(s);
}

static const struct device_ops serial_ops = {
	.reset = serial_reset,
	.io_read = serial_io_read,
	.io_write = serial_io_write,
	.save = serial_save,
	.load = serial_load,
	.destroy = serial_destroy,
};

int serial_create(struct vm *vm, int out_fd, int in_fd, struct device **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->dev.name = "serial0";
	s->dev.ops = &serial_ops;
	s->out_fd = out_fd;
	s->in_fd = -1;
	ret = vm_add_device(vm, &s->dev);
	if (ret < 0) {
		free(s);
		return ret;
	}
	serial_reset(&s->dev);
	ret = vm_register_pio(vm, SERIAL_COM1_PORT, 8, &s->dev);
	if (ret == 0 && in_fd >= 0 && vm->loop) {
		ret = evloop_add(vm->loop, in_fd, EPOLLIN, serial_on_input, s);
		if (ret == 0)
			s->in_fd = in_fd;
		else if (ret == -EPERM)
			ret = 0; /* a regular file or /dev/null: no input to watch */
	}
	if (out)
		*out = &s->dev;
	return ret;
}
