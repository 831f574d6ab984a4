/*
 * check: the unit tests' one assertion.  CHECK(cond, fmt, ...) counts a
 * failure and prints "file:line: cond: message" when cond is false, and goes
 * on, so one run reports every broken check.  A test's main returns
 * failures ? 1 : 0 (77 to skip), as tests/run.sh expects.
 */
#ifndef EGR_TEST_CHECK_H
#define EGR_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			failures++;                                   \
			printf("%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                          \
			putchar('\n');                                \
		}                                                     \
	} while (0)

#endif
