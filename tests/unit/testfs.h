/*
 * testfs: setup helpers for the unit tests that build file trees (safepath,
 * spool): a failed setup step ends the test with exit 1, naming the step.
 */
#ifndef EGR_TEST_TESTFS_H
#define EGR_TEST_TESTFS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void must(int ok, const char *what)
{
	if (!ok) {
		printf("setup: %s: %s\n", what, strerror(errno));
		exit(1);
	}
}

/* path = text */
static inline void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	must(f && fputs(text, f) >= 0 && fclose(f) == 0, path);
}

#endif
