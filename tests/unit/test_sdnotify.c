/*
 * test_sdnotify: the notify protocol against a real AF_UNIX datagram socket,
 * bound to a path and in the abstract namespace ("@name"), as systemd binds
 * its own; and $WATCHDOG_USEC / $WATCHDOG_PID read the way systemd means them.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/base/sdnotify.h"

#include "check.h"

/* a datagram socket bound to name ("@..." abstract); its fd */
static int listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		printf("bind(%s): %s\n", name, strerror(errno));
		exit(1);
	}
	return fd;
}

/* the next datagram, or "" after 1 s */
static const char *next_msg(int fd)
{
	static char buf[1024];
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n = 0;

	if (poll(&p, 1, 1000) == 1)
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_messages(const char *name)
{
	int fd = listener(name);
	const char *m;

	setenv("NOTIFY_SOCKET", name, 1);
	CHECK(egr_sdnotify_ready() == 1, "%s: ready", name);
	CHECK(!strcmp(m = next_msg(fd), "READY=1"), "%s: got '%s'", name, m);
	CHECK(egr_sdnotify_status("serving %d jobs\nX=1", 3) == 1, "%s: status", name);
	CHECK(!strcmp(m = next_msg(fd), "STATUS=serving 3 jobs X=1"), "%s: got '%s'", name, m);
	CHECK(egr_sdnotify_watchdog() == 1, "%s: watchdog", name);
	CHECK(!strcmp(m = next_msg(fd), "WATCHDOG=1"), "%s: got '%s'", name, m);
	CHECK(egr_sdnotify_stopping() == 1, "%s: stopping", name);
	CHECK(!strcmp(m = next_msg(fd), "STOPPING=1"), "%s: got '%s'", name, m);
	close(fd);
}

static void test_no_socket(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK(egr_sdnotify_ready() == 0, "unset: a no-op");
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK(egr_sdnotify_ready() == 0, "empty: a no-op");
	setenv("NOTIFY_SOCKET", "relative/sock", 1);
	CHECK(egr_sdnotify_ready() == -EAFNOSUPPORT, "relative: refused");
	setenv("NOTIFY_SOCKET", "/nonexistent/egressd-notify", 1);
	CHECK(egr_sdnotify_ready() == -ENOENT, "missing socket: %d", egr_sdnotify_ready());
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog(const char *name)
{
	char pid[32];
	int fd = listener(name);
	const char *m;

	setenv("NOTIFY_SOCKET", name, 1);
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	CHECK(egr_sdnotify_watchdog_usec() == 0, "no watchdog");
	CHECK(egr_sdnotify_watchdog_tick(1000) == UINT64_MAX, "tick without a watchdog");
	setenv("WATCHDOG_USEC", "30000000", 1);
	CHECK(egr_sdnotify_watchdog_usec() == 30000000, "usec %llu", (unsigned long long)egr_sdnotify_watchdog_usec());
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	CHECK(egr_sdnotify_watchdog_usec() == 30000000, "for this pid");
	setenv("WATCHDOG_PID", "1", 1);
	CHECK(egr_sdnotify_watchdog_usec() == 0, "for another pid");
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "30s", 1);
	CHECK(egr_sdnotify_watchdog_usec() == 0, "not a number");

	/* the tick: one WATCHDOG=1 per half interval (15 s here) */
	setenv("WATCHDOG_USEC", "30000000", 1);
	uint64_t t0 = 100ull * 1000000000ull;
	CHECK(egr_sdnotify_watchdog_tick(t0) == 15000000000ull, "first tick sends, next in 15 s");
	CHECK(!strcmp(m = next_msg(fd), "WATCHDOG=1"), "got '%s'", m);
	CHECK(egr_sdnotify_watchdog_tick(t0 + 5000000000ull) == 10000000000ull, "5 s later: 10 s to go");
	CHECK(egr_sdnotify_watchdog_tick(t0 + 15000000000ull) == 15000000000ull, "15 s later: sent again");
	CHECK(!strcmp(m = next_msg(fd), "WATCHDOG=1"), "got '%s'", m);
	struct pollfd p = { fd, POLLIN, 0 };
	CHECK(poll(&p, 1, 0) == 0, "no datagram in between");
	close(fd);
}

int main(void)
{
	char path[108], abs[64];

	snprintf(path, sizeof(path), "/tmp/egr-sdnotify.%d.sock", (int)getpid());
	snprintf(abs, sizeof(abs), "@egr-sdnotify-test-%d", (int)getpid());
	unlink(path);
	test_messages(path);
	test_messages(abs);
	test_no_socket();
	unlink(path);
	test_watchdog(path);
	unlink(path);
	return failures ? 1 : 0;
}
