/*
 * test_wio: the write path, with io_uring and with the pwritev fallback.
 * Contents are checked byte for byte; fault hooks (test builds) exercise short
 * writes and injected ENOSPC/EIO; /dev/full and RLIMIT_FSIZE give real errors,
 * the latter after a real short write.  alarm() turns a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workers/wio.h"

#include "check.h"
#include "helpers.h"

static const char *cur_mode = "";
static char tmpdir[64];

static void set_env(const char *force, const char *shortw, const char *errno_name, const char *at)
{
#define SETV(k, v) do { if (v) setenv(k, v, 1); else unsetenv(k); } while (0)
	SETV("EGR_FORCE_PWRITE", force);
	SETV("EGR_FAULT_SHORT_WRITES", shortw);
	SETV("EGR_FAULT_WRITE_ERRNO", errno_name);
	SETV("EGR_FAULT_WRITE_AT", at);
#undef SETV
}

static struct egr_wio *open_wio(unsigned depth, const char *want_backend)
{
	struct egr_wio *w;
	char err[256];
	int ret = egr_wio_open(&w, depth, err, sizeof(err));

	CHECK(ret == 0, "egr_wio_open: %d %s", ret, err);
	if (ret)
		return NULL;
	if (want_backend)
		CHECK(strcmp(egr_wio_backend(w), want_backend) == 0, "backend %s, want %s",
		      egr_wio_backend(w), want_backend);
	return w;
}

static int tmp_file(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", tmpdir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	return fd;
}

static int file_equals(int fd, const uint8_t *want, size_t len)
{
	struct stat st;
	uint8_t *got;
	int ok;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size != len) {
		CHECK(0, "file size %lld, want %zu", (long long)st.st_size, len);
		return 0;
	}
	got = malloc(len + 1);
	ok = got && pread(fd, got, len, 0) == (ssize_t)len;
	if (ok && memcmp(got, want, len) != 0) {
		size_t i = 0;
		while (got[i] == want[i])
			i++;
		CHECK(0, "contents differ first at byte %zu: %u, want %u", i, got[i], want[i]);
		ok = 0;
	}
	free(got);
	return ok;
}

/*
 * Many writes of several iovecs each, at shuffled offsets, more of them than
 * the queue depth, into one file; then fsync and compare.
 */
static void test_many_writes(const char *backend)
{
	enum { SEGS = 300, MAXSEG = 20000 };
	size_t off[SEGS + 1], total = 0;
	int order[SEGS];
	char path[512];
	struct egr_wio *w = open_wio(4, backend);

	if (!w)
		return;
	for (int i = 0; i < SEGS; i++) {
		off[i] = total;
		total += 1 + rnd() % MAXSEG;
		order[i] = i;
	}
	off[SEGS] = total;
	for (int i = SEGS - 1; i > 0; i--) {
		int j = (int)(rnd() % (uint32_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	uint8_t *want = malloc(total);
	for (size_t i = 0; i < total; i++)
		want[i] = (uint8_t)rnd();
	int fd = tmp_file("many", path, sizeof(path));

	for (int k = 0; k < SEGS; k++) {
		int i = order[k];
		size_t len = off[i + 1] - off[i];
		/* split into up to 4 iovecs, one possibly empty */
		struct iovec iov[4];
		size_t a = len / 3, b = len / 3, c = 0;
		iov[0] = (struct iovec){ want + off[i], a };
		iov[1] = (struct iovec){ want + off[i] + a, c };
		iov[2] = (struct iovec){ want + off[i] + a, b };
		iov[3] = (struct iovec){ want + off[i] + a + b, len - a - b };
		int ret = egr_wio_writev(w, fd, iov, 4, (off_t)off[i]);
		CHECK(ret == 0, "writev %d: %d", k, ret);
		if (k % 97 == 0) {
			ret = egr_wio_wait(w);
			CHECK(ret == 0, "wait: %d", ret);
		}
	}
	int ret = egr_wio_fsync(w, fd, 0);
	CHECK(ret == 0, "fsync: %d", ret);
	ret = egr_wio_fsync(w, fd, 1);
	CHECK(ret == 0, "fdatasync: %d", ret);
	file_equals(fd, want, total);
	close(fd);
	free(want);
	egr_wio_close(w);
}

/* More iovecs than IOV_MAX in one call: the write is split, bytes intact. */
static void test_iov_max(const char *backend)
{
	int n = IOV_MAX * 3 + 17;
	struct iovec *iov = calloc((size_t)n, sizeof(*iov));
	size_t total = 0;
	char path[512];
	struct egr_wio *w = open_wio(2, backend);

	if (!w)
		return;
	for (int i = 0; i < n; i++)
		total += (size_t)(i % 7);	/* some empty */
	uint8_t *want = malloc(total);
	for (size_t i = 0; i < total; i++)
		want[i] = (uint8_t)rnd();
	size_t p = 0;
	for (int i = 0; i < n; i++) {
		iov[i] = (struct iovec){ want + p, (size_t)(i % 7) };
		p += (size_t)(i % 7);
	}
	int fd = tmp_file("iovmax", path, sizeof(path));
	/* at an offset, so the split requests' offsets are checked too */
	int ret = egr_wio_writev(w, fd, iov, n, 4096);
	CHECK(ret == 0, "writev: %d", ret);
	ret = egr_wio_wait(w);
	CHECK(ret == 0, "wait: %d", ret);
	uint8_t *full = calloc(1, total + 4096);
	memcpy(full + 4096, want, total);
	file_equals(fd, full, total + 4096);
	close(fd);
	free(full);
	free(want);
	free(iov);
	egr_wio_close(w);
}

/* An error in the middle of a batch: reported, drained, then usable again. */
static void test_fault_errno(const char *backend, const char *name, int e)
{
	char path[512];
	uint8_t buf[8192];
	struct egr_wio *w;
	int ret, seen = 0;

	memset(buf, 0xab, sizeof(buf));
	setenv("EGR_FAULT_WRITE_ERRNO", name, 1);
	setenv("EGR_FAULT_WRITE_AT", "3", 1);
	w = open_wio(2, backend);
	unsetenv("EGR_FAULT_WRITE_ERRNO");
	unsetenv("EGR_FAULT_WRITE_AT");
	if (!w)
		return;
	int fd = tmp_file("fault", path, sizeof(path));
	for (int i = 0; i < 10; i++) {
		struct iovec iov = { buf, sizeof(buf) };
		ret = egr_wio_writev(w, fd, &iov, 1, (off_t)i * (off_t)sizeof(buf));
		CHECK(ret == 0 || ret == -e, "writev %d: %d, want 0 or %d", i, ret, -e);
		if (ret == -e)
			seen = 1;
		if (i < 2)
			CHECK(ret == 0, "writev %d failed before the fault: %d", i, ret);
	}
	ret = egr_wio_wait(w);
	CHECK(ret == -e || (seen && ret == 0), "wait: %d, want %d", ret, -e);
	if (ret == -e)
		seen = 1;
	CHECK(seen, "%s was never reported", name);
	/* the error was reported once; the next batch works and is not retried */
	ret = egr_wio_wait(w);
	CHECK(ret == 0, "wait after error: %d", ret);
	struct iovec iov = { buf, 10 };
	ret = egr_wio_writev(w, fd, &iov, 1, 0);
	CHECK(ret == 0, "writev after error: %d", ret);
	ret = egr_wio_fsync(w, fd, 1);
	CHECK(ret == 0, "fsync after error: %d", ret);
	close(fd);
	egr_wio_close(w);
}

/* /dev/full: every write fails with a real ENOSPC from the kernel. */
static void test_dev_full(const char *backend)
{
	uint8_t buf[4096] = { 1 };
	struct egr_wio *w = open_wio(4, backend);
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);

	if (!w || fd < 0) {
		printf("note: /dev/full unavailable, skipped\n");
		if (fd >= 0)
			close(fd);
		egr_wio_close(w);
		return;
	}
	for (int i = 0; i < 8; i++) {
		struct iovec iov = { buf, sizeof(buf) };
		int ret = egr_wio_writev(w, fd, &iov, 1, 0);
		CHECK(ret == 0 || ret == -ENOSPC, "writev: %d", ret);
	}
	int ret = egr_wio_wait(w);
	CHECK(ret == -ENOSPC, "wait: %d, want -ENOSPC", ret);
	close(fd);
	egr_wio_close(w);
}

/*
 * RLIMIT_FSIZE: a write crossing the limit is cut short by the kernel, and
 * resubmitting the rest fails with EFBIG: the same sequence as a disk filling
 * up.  In a child, so the limit binds nothing else.
 */
static void test_fsize_limit(const char *backend)
{
	char path[512];
	int fd = tmp_file("fsize", path, sizeof(path));
	pid_t pid = fork();

	if (pid == 0) {
		struct rlimit rl = { 100000, 100000 };
		uint8_t *buf = malloc(300000);
		struct egr_wio *w;
		char err[256];

		signal(SIGXFSZ, SIG_IGN);
		memset(buf, 0x5a, 300000);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0 || egr_wio_open(&w, 4, err, sizeof(err)) < 0)
			_exit(3);
		if (strcmp(egr_wio_backend(w), backend) != 0)
			_exit(4);
		struct iovec iov[2] = { { buf, 150000 }, { buf + 150000, 150000 } };
		int ret = egr_wio_writev(w, fd, iov, 2, 0);
		if (ret == 0)
			ret = egr_wio_wait(w);
		_exit(ret == -EFBIG ? 0 : 10);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "RLIMIT_FSIZE child: status 0x%x (10: not -EFBIG)", st);
	struct stat sb;
	CHECK(fstat(fd, &sb) == 0 && sb.st_size == 100000, "size after short write %lld, want 100000",
	      (long long)sb.st_size);
	close(fd);
}

static void test_bad_fd(const char *backend)
{
	uint8_t buf[16] = { 0 };
	struct egr_wio *w = open_wio(4, backend);

	if (!w)
		return;
	struct iovec iov = { buf, sizeof(buf) };
	int ret = egr_wio_writev(w, 987654, &iov, 1, 0);
	if (ret == 0)
		ret = egr_wio_wait(w);
	CHECK(ret == -EBADF, "write to a bad fd: %d, want -EBADF", ret);
	ret = egr_wio_fsync(w, 987654, 0);
	CHECK(ret == -EBADF, "fsync of a bad fd: %d, want -EBADF", ret);
	egr_wio_close(w);
}

/*
 * io_uring refused the way container runtimes refuse it: a seccomp filter
 * makes io_uring_setup fail with EPERM.  The production fallback (not the
 * test-only EGR_FORCE_PWRITE) must pick pwrite, say why, and write correctly.
 */
static void test_seccomp_refusal(void)
{
	char path[512];
	int fd = tmp_file("seccomp", path, sizeof(path));
	pid_t pid = fork();

	if (pid == 0) {
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
		struct egr_wio *w;
		char err[256];
		uint8_t buf[5000];

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			_exit(77);
		unsetenv("EGR_FORCE_PWRITE");
		if (egr_wio_open(&w, 4, err, sizeof(err)) < 0)
			_exit(2);
		if (strcmp(egr_wio_backend(w), "pwrite") != 0)
			_exit(3);
		if (!strstr(err, "io_uring_queue_init") || !strstr(err, strerror(EPERM)))
			_exit(4);
		memset(buf, 0x33, sizeof(buf));
		struct iovec iov = { buf, sizeof(buf) };
		if (egr_wio_writev(w, fd, &iov, 1, 100) < 0 || egr_wio_fsync(w, fd, 1) < 0)
			_exit(5);
		egr_wio_close(w);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("note: seccomp unavailable: refused-io_uring fallback not tested\n");
	} else {
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "seccomp-refused io_uring: child status 0x%x (3: not pwrite, 4: no reason, 5: write)", st);
		uint8_t want[5100];
		memset(want, 0, 100);
		memset(want + 100, 0x33, 5000);
		file_equals(fd, want, sizeof(want));
	}
	close(fd);
}

static void run_all(const char *backend, int faults)
{
	cur_mode = backend;
	test_many_writes(backend);
	test_iov_max(backend);
	test_dev_full(backend);
	test_fsize_limit(backend);
	test_bad_fd(backend);
	if (!faults)
		return;
	test_fault_errno(backend, "ENOSPC", ENOSPC);
	test_fault_errno(backend, "EIO", EIO);

	/* every write lands in halves: the short-write path, same bytes */
	setenv("EGR_FAULT_SHORT_WRITES", "1", 1);
	cur_mode = strcmp(backend, "io_uring") == 0 ? "io_uring+short" : "pwrite+short";
	test_many_writes(backend);
	test_iov_max(backend);
	test_fsize_limit(backend);
	unsetenv("EGR_FAULT_SHORT_WRITES");
}

int main(void)
{
	struct egr_wio *w;
	char err[256];
	int faults = 0;

	alarm(30);	/* a hang is a failure */
	test_tmpdir(tmpdir, sizeof(tmpdir), "test_wio");
	set_env(NULL, NULL, NULL, NULL);
#ifdef EGR_TESTING
	faults = 1;
#else
	printf("note: not a test build (EGR_TESTING): fault hooks and the forced fallback not tested\n");
#endif
	if (egr_wio_open(&w, 8, err, sizeof(err)) < 0) {
		printf("egr_wio_open: %s\n", err);
		return 1;
	}
	int have_uring = strcmp(egr_wio_backend(w), "io_uring") == 0;
	egr_wio_close(w);
	if (have_uring)
		run_all("io_uring", faults);
	else
		printf("note: io_uring unavailable here (%s): only the pwrite path tested\n", err);

	if (faults) {
		setenv("EGR_FORCE_PWRITE", "1", 1);
		run_all("pwrite", faults);
		unsetenv("EGR_FORCE_PWRITE");
	} else if (!have_uring) {
		run_all("pwrite", 0);
	}

	cur_mode = "seccomp";
	test_seccomp_refusal();

	/* bad arguments */
	cur_mode = "args";
	CHECK(egr_wio_open(&w, 0, err, sizeof(err)) == -EINVAL, "depth 0 accepted");

	test_rmtree(tmpdir);
	return failures ? 1 : 0;
}
