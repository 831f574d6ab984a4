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

static void fault(const char *env, const char *subject, int sig)
{
	const char *want = getenv(env), *once = getenv("EGR_FAULT_KILL_ONCE");
	int fd;

	if (!want || !armed(want, subject))
		return;
	if (once) {
		/* O_EXCL: of several processes passing the point, one fires */
		fd = open(once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
		close(fd);
	}
	egr_warn("fault injection: %s=%s: %s at \"%s\"%s", env, want, sig == SIGKILL ? "SIGKILL" : "SIGSTOP",
		 subject, getenv("EGR_FAULT_KILL_PARENT") ? ", the parent first" : "");
	if (getenv("EGR_FAULT_KILL_PARENT"))
		kill(getppid(), sig);
	raise(sig);
}

void egr_fault_kill(const char *env, const char *subject)
{
	fault(env, subject, SIGKILL);
}

void egr_fault_stop(const char *env, const char *subject)
{
	fault(env, subject, SIGSTOP);
}
#else
/* ISO C wants something in a translation unit */
typedef int egr_fault_unused;
#endif
