/* log: journald-prefixed stderr lines; see log.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/log.h"

static char log_role[32] = "egressd";
static int log_level = EGR_LOG_INFO;

void egr_log_init(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void egr_log_set_level(int level)
{
	log_level = level;
}

void egr_vlog(int prio, const char *fmt, va_list ap)
{
	char buf[2048];
	int n, m, pre;
	int saved = errno;

	if (prio > log_level)
		return;
	pre = n = snprintf(buf, sizeof(buf), "<%d>egressd[%s %d]: ", prio, log_role, (int)getpid());
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	/*
	 * One call, one line, no terminal controls: a message may quote what a
	 * job's submitter wrote (a value, a name), and a newline or ESC there
	 * would forge log lines ("<0>...") or drive the reader's terminal.
	 */
	for (int i = pre; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	buf[n++] = '\n';
	/* one write: lines of several processes never interleave */
	if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

void egr_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	egr_vlog(prio, fmt, ap);
	va_end(ap);
}

void egr_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

unsigned long long egr_log_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

const char *egr_log_strerror(int errnum)
{
	if (errnum == EFBIG)
		return "file size limit exceeded (ulimit -f, systemd LimitFSIZE=, or the filesystem's largest file)";
	return strerror(errnum);
}
