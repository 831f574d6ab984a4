/*
 * helpers: what several unit tests need besides CHECK (liburing's
 * test/helpers.h): a private temporary directory, removed at the end, a
 * whole file read back, a seeded xorshift generator whose sequence is the
 * same on every run, and main's verdict.  Everything is static inline, so a
 * test pays only for what it calls.
 */
#ifndef EGR_TEST_HELPERS_H
#define EGR_TEST_HELPERS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/*
 * rnd(): xorshift64 (13, 7, 17), 32 bits of it.  A test that wants another
 * sequence defines TEST_RNG_SEED before including this file.
 */
#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#endif

static inline uint32_t rnd(void)
{
	static uint64_t s = TEST_RNG_SEED;

	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (uint32_t)(s >> 16);
}

/*
 * A fresh directory "/tmp/<name>.XXXXXX" into dir.  A test without one
 * cannot run: say why and exit 1 (a failure, not a skip).
 */
static inline void test_tmpdir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/%s.XXXXXX", name);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
}

/* rm -rf dir at the end of a test; what is left behind is a note, not a failure. */
static inline void test_rmtree(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("note: could not remove %s\n", dir);
}

/* The whole file, NUL-terminated (malloc'd), or NULL when it cannot be read. */
static inline char *test_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = n < 0 ? NULL : calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* main's last words: a summary line when checks failed; the exit status (0 pass, 1 fail) */
static inline int test_result(const char *name)
{
	if (failures)
		printf("%s: %d check(s) failed\n", name, failures);
	return failures ? 1 : 0;
}

#endif
