/*
 * sdnotify: sd_notify(3) in a few lines: one sendto() of the state to the
 * datagram socket named in $NOTIFY_SOCKET (see sdnotify.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/base/sdnotify.h"

int egr_sdnotify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = name ? strlen(name) : 0, n = strlen(state);
	socklen_t salen;
	ssize_t sent;
	int fd, e;

	if (!len)
		return 0;
	/* "@name": the abstract namespace, spelled with a leading NUL */
	if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT;
	memcpy(sa.sun_path, name, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		sent = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (sent < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (sent < 0)
		return -e;
	return sent == (ssize_t)n ? 1 : -EMSGSIZE;
}

int egr_sdnotify_ready(void)
{
	return egr_sdnotify("READY=1");
}

int egr_sdnotify_stopping(void)
{
	return egr_sdnotify("STOPPING=1");
}

int egr_sdnotify_watchdog(void)
{
	return egr_sdnotify("WATCHDOG=1");
}

int egr_sdnotify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';	/* one STATUS line, not a second key */
	return egr_sdnotify(buf);
}

/* decimal digits only, as systemd writes them */
static uint64_t env_u64(const char *name)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	return errno ? 0 : (uint64_t)v;
}

uint64_t egr_sdnotify_watchdog_usec(void)
{
	uint64_t pid = env_u64("WATCHDOG_PID");

	if (getenv("WATCHDOG_PID") && pid != (uint64_t)getpid())
		return 0;	/* meant for another process (our parent, say) */
	return env_u64("WATCHDOG_USEC");
}

uint64_t egr_sdnotify_watchdog_tick(uint64_t now_ns)
{
	static uint64_t next_ns;
	uint64_t usec = egr_sdnotify_watchdog_usec(), half_ns;

	if (!usec)
		return UINT64_MAX;
	half_ns = usec > UINT64_MAX / 1000 ? UINT64_MAX / 2 : usec * 500;	/* half the interval, in ns */
	if (now_ns >= next_ns) {
		egr_sdnotify_watchdog();
		next_ns = now_ns + half_ns;
	}
	return next_ns - now_ns;
}
