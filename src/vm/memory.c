#include "vm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void gmem_add_slot(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t offset)
{
	struct gmem_slot *s = &m->slots[m->nslots++];

	s->gpa = gpa;
	s->size = size;
	s->offset = offset;
	s->hva = m->base + offset;
}

int gmem_init(struct gmem *m, uint64_t size)
{
	uint64_t low;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	if (size == 0 || size % GMEM_PAGE_SIZE)
		return -EINVAL;
	m->memfd = memfd_create("lockstep-ram", MFD_CLOEXEC);
	if (m->memfd < 0)
		return -errno;
	if (ftruncate(m->memfd, (off_t)size) < 0)
		goto fail;
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       m->memfd, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		goto fail;
	}
	m->size = size;
	m->vmm_dirty = calloc((size / GMEM_PAGE_SIZE + 63) / 64, sizeof(uint64_t));
	if (!m->vmm_dirty) {
		errno = ENOMEM;
		goto fail;
	}
	low = size < GMEM_HOLE_START ? size : GMEM_HOLE_START;
	gmem_add_slot(m, 0, low, 0);
	if (size > low)
		gmem_add_slot(m, GMEM_HIGH_START, size - low, low);
	return 0;
fail: {
	int err = -errno;

	gmem_destroy(m);
	return err;
}
}

void gmem_destroy(struct gmem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->memfd >= 0)
		close(m->memfd);
	free(m->vmm_dirty);
	memset(m, 0, sizeof(*m));
	m->memfd = -1;
}

static const struct gmem_slot *gmem_find(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nslots; i++) {
		const struct gmem_slot *s = &m->slots[i];

		if (gpa >= s->gpa && gpa - s->gpa < s->size && len <= s->size - (gpa - s->gpa))
			return s;
	}
	return NULL;
}

void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	const struct gmem_slot *s = gmem_find(m, gpa, len);

	return s ? s->hva + (gpa - s->gpa) : NULL;
}

static uint64_t gmem_seek(const struct gmem *m, uint64_t page, int whence)
{
	off_t off = lseek(m->memfd, (off_t)(page * GMEM_PAGE_SIZE), whence);

	/* ENXIO: no more data past page. Other errors: claim data, the safe answer. */
	if (off < 0)
		return errno == ENXIO || whence == SEEK_HOLE ? gmem_page_count(m) : page;
	return (uint64_t)off / GMEM_PAGE_SIZE;
}

uint64_t gmem_next_data(const struct gmem *m, uint64_t page)
{
	return page >= gmem_page_count(m) ? gmem_page_count(m) : gmem_seek(m, page, SEEK_DATA);
}

uint64_t gmem_next_hole(const struct gmem *m, uint64_t page)
{
	return page >= gmem_page_count(m) ? gmem_page_count(m) : gmem_seek(m, page, SEEK_HOLE);
}

static int gmem_fallocate(struct gmem *m, int mode, uint64_t page, uint64_t count)
{
	if (page > gmem_page_count(m) || count > gmem_page_count(m) - page)
		return -EINVAL;
	if (fallocate(m->memfd, mode, (off_t)(page * GMEM_PAGE_SIZE), (off_t)(count * GMEM_PAGE_SIZE)) < 0)
		return -errno;
	return 0;
}

int gmem_discard(struct gmem *m, uint64_t page, uint64_t count)
{
	return gmem_fallocate(m, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, page, count);
}

int gmem_reserve(struct gmem *m, uint64_t page, uint64_t count)
{
	return gmem_fallocate(m, FALLOC_FL_KEEP_SIZE, page, count);
}

int64_t gmem_page_index(const struct gmem *m, uint64_t gpa)
{
	const struct gmem_slot *s = gmem_find(m, gpa, 1);

	if (!s)
		return -1;
	return (int64_t)((s->offset + gpa - s->gpa) / GMEM_PAGE_SIZE);
}

uint64_t gmem_page_count(const struct gmem *m) { return m->size / GMEM_PAGE_SIZE; }

void *gmem_page_hva(const struct gmem *m, uint64_t page)
{
	return page < gmem_page_count(m) ? m->base + page * GMEM_PAGE_SIZE : NULL;
}

void gmem_mark_dirty(struct gmem *m, uint64_t gpa, uint64_t len)
{
	uint64_t first, last;
	const struct gmem_slot *s;

	if (len == 0)
		return;
	s = gmem_find(m, gpa, len);
	if (!s)
		return;
	first = (s->offset + gpa - s->gpa) / GMEM_PAGE_SIZE;
	last = (s->offset + gpa - s->gpa + len - 1) / GMEM_PAGE_SIZE;
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&m->vmm_dirty[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
}

void *gmem_ptr_for_write(struct gmem *m, uint64_t gpa, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);

	if (p)
		gmem_mark_dirty(m, gpa, len);
	return p;
}

int gmem_read(const struct gmem *m, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gmem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(struct gmem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gmem_ptr_for_write(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}
