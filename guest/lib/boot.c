/* Start-of-day at CPL3: boot information, the page allocator, then the app. */
#include "app.h"
#include "guest.h"
#include "pvh_abi.h"

void irq_init(void);
void guest_start(const struct hvm_start_info *si);

extern char __image_end[];
extern const struct guest_app __start_apps[], __stop_apps[];

static const struct hvm_start_info *start_info;
static uint64_t alloc_next, alloc_end;

const char *cmdline(void)
{
	return start_info && start_info->cmdline_paddr ? (const char *)start_info->cmdline_paddr
							: "";
}

static int is_sep(char c) { return c == ' ' || c == ',' || c == '\t' || c == '\n'; }

const char *cmdline_get(const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline();

	while (*p) {
		const char *tok = p;
		size_t len = 0;

		while (tok[len] && !is_sep(tok[len]))
			len++;
		if (len > klen && tok[klen] == '=' && strncmp(tok, key, klen) == 0) {
			size_t vlen = len - klen - 1;

			if (vlen >= size)
				vlen = size - 1;
			memcpy(buf, tok + klen + 1, vlen);
			buf[vlen] = '\0';
			return buf;
		}
		p = tok + len;
		while (*p && is_sep(*p))
			p++;
	}
	return NULL;
}

uint64_t cmdline_get_u64(const char *key, uint64_t def)
{
	char buf[24];
	uint64_t v;

	if (!cmdline_get(key, buf, sizeof(buf)))
		return def;
	if (parse_u64(buf, strlen(buf), &v) < 0)
		panic("bad %s=%s on the command line (expected a number)", key, buf);
	return v;
}

/* "virtio_mmio.device=4K@0xd0000000:5" */
static int parse_virtio_entry(const char *v, struct virtio_mmio_dev *d)
{
	const char *at = strchr(v, '@'), *colon = at ? strchr(at, ':') : NULL;
	size_t slen = at ? (size_t)(at - v) : 0;
	uint64_t size, mult = 1, gsi;

	if (!colon || slen == 0)
		return -1;
	if (v[slen - 1] == 'K' || v[slen - 1] == 'k')
		mult = 1024, slen--;
	if (parse_u64(v, slen, &size) < 0 || parse_u64(at + 1, (size_t)(colon - at - 1), &d->base) < 0 ||
	    parse_u64(colon + 1, strlen(colon + 1), &gsi) < 0)
		return -1;
	d->size = size * mult;
	d->gsi = (uint32_t)gsi;
	return 0;
}

int cmdline_virtio_devices(struct virtio_mmio_dev *devs, int max)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = cmdline();
	int n = 0;

	while (n < max && (p = strchr(p, 'v')) != NULL) {
		char val[64];
		size_t len = 0;

		if ((p != cmdline() && !is_sep(p[-1])) || strncmp(p, key, sizeof(key) - 1) != 0) {
			p++;
			continue;
		}
		p += sizeof(key) - 1;
		while (p[len] && p[len] != ' ' && len < sizeof(val) - 1)
			len++;
		memcpy(val, p, len);
		val[len] = '\0';
		if (parse_virtio_entry(val, &devs[n]) == 0)
			n++;
		p += len;
	}
	return n;
}

/* The allocator hands out the RAM region that holds the image, above the image. */
static void alloc_init(void)
{
	const struct hvm_memmap_table_entry *map =
		(const struct hvm_memmap_table_entry *)start_info->memmap_paddr;
	uint64_t image_end = (uint64_t)__image_end;

	for (uint32_t i = 0; i < start_info->memmap_entries; i++) {
		if (map[i].type == HVM_MEMMAP_RAM && map[i].addr <= image_end &&
		    image_end < map[i].addr + map[i].size) {
			alloc_next = image_end;
			alloc_end = map[i].addr + map[i].size;
		}
	}
	if (!alloc_end)
		panic("no RAM region above the image in the memory map");
}

void *page_alloc(size_t npages)
{
	uint64_t bytes = npages * 4096;
	void *p;

	if (bytes > alloc_end - alloc_next)
		panic("out of guest memory (%lu pages wanted)", (uint64_t)npages);
	p = (void *)alloc_next;
	alloc_next += bytes;
	memset(p, 0, bytes);
	return p;
}

uint64_t ram_top(void) { return alloc_end; }

static const struct guest_app *find_app(const char *name)
{
	for (const struct guest_app *a = __start_apps; a < __stop_apps; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

void guest_start(const struct hvm_start_info *si)
{
	char name[32];
	const struct guest_app *app;

	start_info = si;
	if (!si || si->magic != HVM_START_MAGIC)
		guest_exit(2);
	irq_init();
	alloc_init();
	if (!cmdline_get("app", name, sizeof(name)))
		memcpy(name, "hello", 6);
	app = find_app(name);
	if (!app)
		panic("unknown app '%s'", name);
	printf("lockstep test guest: app=%s\n", name);
	guest_exit(app->main());
}
