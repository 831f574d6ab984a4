/* fault: test-build kill points; see fault.h. */
#include "daemon/base/fault.h"

#ifdef EGR_TESTING
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/log.h"

static int armed(const char *want, const char *subject)
{
	size_t a = strlen(want), b = strlen(subject);

	return strcmp(want, "1") == 0 || (a && a <= b && strcmp(subject + b - a, want) == 0);
}

void egr_fault_kill(const char *env, const char *subject)
{
	const char *want = getenv(env), *once = getenv("EGR_FAULT_KILL_ONCE");
	int fd;

	if (!want || !armed(want, subject))
		return;
	if (once) {
		/* O_EXCL: of several processes passing the point, one dies */
		fd = open(once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
		close(fd);
	}
	egr_warn("fault injection: %s=%s: SIGKILL at \"%s\"%s", env, want, subject,
		 getenv("EGR_FAULT_KILL_PARENT") ? ", the parent first" : "");
	if (getenv("EGR_FAULT_KILL_PARENT"))
		kill(getppid(), SIGKILL);
	raise(SIGKILL);
}
#else
/* ISO C wants something in a translation unit */
typedef int egr_fault_unused;
#endif
