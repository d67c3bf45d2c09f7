/*
 * Seed-corpus writing shared by the fuzz targets' -DFUZZ_CORPUS_MAIN mode:
 * a byte builder (seed_put, then seed_save) and a whole-buffer writer.
 */
#ifndef LOCKSTEP_FUZZ_CORPUS_WRITER_H
#define LOCKSTEP_FUZZ_CORPUS_WRITER_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void corpus_write(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
		fprintf(stderr, "cannot write seed %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static __attribute__((unused)) uint8_t seed[4096];
static __attribute__((unused)) size_t seed_len;

static inline void seed_put(uint8_t b)
{
	if (seed_len == sizeof(seed)) {
		fprintf(stderr, "seed longer than %zu bytes\n", sizeof(seed));
		exit(1);
	}
	seed[seed_len++] = b;
}

/* Writes what seed_put built, then starts the next seed. */
static inline void seed_save(const char *dir, const char *name)
{
	corpus_write(dir, name, seed, seed_len);
	seed_len = 0;
}

#endif
