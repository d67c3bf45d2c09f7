/* Console output on COM1, polled (the console never waits for interrupts). */
#include "guest.h"

#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THRE 0x20

/*
 * Every port access is a VM exit (~40 us on this host), so use the 16550's
 * 16-byte transmit FIFO the way Linux does: once THR is empty, up to 16
 * bytes may be written without looking at LSR again.
 */
#define TX_FIFO_SIZE 16

void console_write(const char *s, size_t n)
{
	size_t i = 0;
	int pending_cr = 0;

	while (i < n) {
		while (!(inb(COM1_LSR) & LSR_THRE))
			cpu_relax();
		for (int room = TX_FIFO_SIZE; room > 0 && i < n; room--) {
			if (s[i] == '\n' && !pending_cr) {
				outb(COM1, '\r');
				pending_cr = 1;
				continue;
			}
			outb(COM1, (uint8_t)s[i++]);
			pending_cr = 0;
		}
	}
}

struct fmt_out {
	char *buf;
	size_t size;
	size_t len;
};

static void fmt_putc(struct fmt_out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void fmt_num(struct fmt_out *o, uint64_t v, unsigned base, int neg, int width, char pad)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width-- > n)
		fmt_putc(o, pad);
	while (n)
		fmt_putc(o, tmp[--n]);
}

static void fmt_arg(struct fmt_out *o, char conv, int lng, int width, char pad, va_list *ap)
{
	int64_t sv;
	uint64_t uv;
	const char *s;

	switch (conv) {
	case 'd':
	case 'i':
		sv = lng ? va_arg(*ap, int64_t) : va_arg(*ap, int);
		fmt_num(o, sv < 0 ? (uint64_t)-sv : (uint64_t)sv, 10, sv < 0, width, pad);
		break;
	case 'u':
	case 'x':
		uv = lng ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned);
		fmt_num(o, uv, conv == 'x' ? 16 : 10, 0, width, pad);
		break;
	case 'p':
		fmt_putc(o, '0');
		fmt_putc(o, 'x');
		fmt_num(o, (uint64_t)va_arg(*ap, void *), 16, 0, width, pad);
		break;
	case 's':
		s = va_arg(*ap, const char *);
		for (s = s ? s : "(null)"; *s; s++)
			fmt_putc(o, *s);
		break;
	case 'c':
		fmt_putc(o, (char)va_arg(*ap, int));
		break;
	default:
		fmt_putc(o, '%');
		fmt_putc(o, conv);
	}
}

/* %d %i %u %x %p %s %c %%, with l/ll/z, a width and 0-padding. */
static size_t fmt_vformat(struct fmt_out *o, const char *fmt, va_list ap)
{
	va_list args;

	va_copy(args, ap);
	for (; *fmt; fmt++) {
		int lng = 0, width = 0;
		char pad = ' ';

		if (*fmt != '%') {
			fmt_putc(o, *fmt);
			continue;
		}
		if (*++fmt == '%') {
			fmt_putc(o, '%');
			continue;
		}
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			lng = 1, fmt++;
		if (!*fmt)
			break;
		fmt_arg(o, *fmt, lng, width, pad, &args);
	}
	va_end(args);
	if (o->size)
		o->buf[o->len < o->size ? o->len : o->size - 1] = '\0';
	return o->len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	struct fmt_out o = { buf, size, 0 };
	va_list ap;

	va_start(ap, fmt);
	fmt_vformat(&o, fmt, ap);
	va_end(ap);
	return (int)o.len;
}

static int vprintf_console(const char *fmt, va_list ap)
{
	char buf[512];
	struct fmt_out o = { buf, sizeof(buf), 0 };
	size_t n = fmt_vformat(&o, fmt, ap);

	console_write(buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
	return (int)n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf_console(fmt, ap);
	va_end(ap);
	return n;
}

void panic(const char *fmt, ...)
{
	va_list ap;

	console_write("FAIL: ", 6);
	va_start(ap, fmt);
	vprintf_console(fmt, ap);
	va_end(ap);
	console_write("\n", 1);
	guest_exit(1);
}
