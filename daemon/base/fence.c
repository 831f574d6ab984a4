/* fence: the lease record and the commit check; see fence.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/fence.h"
#include "daemon/base/log.h"

uint64_t egr_fence_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int egr_fence_format(const struct egr_fence_rec *r, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "; egressd lease (docs/SCALING.md)\n"
			 "host_id = %s\n"
			 "instance = %s\n"
			 "pid = %010ld\n"
			 "boot_id = %-36.36s\n"
			 "pidns = %020" PRIu64 "\n"
			 "generation = %020" PRIu64 "\n"
			 "counter = %020" PRIu64 "\n"
			 "renewed_ns = %020" PRIu64 "\n"
			 "timeout_ms = %020" PRIu64 "\n",
			 r->host_id, r->instance, r->pid, r->boot_id, r->pidns, r->generation, r->counter,
			 r->renewed_ns, r->timeout_ms);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

/* "key = value" of text into val (at most len bytes); 1 if found */
static int field(const char *text, const char *key, char *val, size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) || strncmp(p + kl, " = ", 3))
			continue;
		p += kl + 3;
		size_t n = strcspn(p, "\n");
		if (!p[n] || n >= len)
			return 0;	/* no newline: the record was cut */
		memcpy(val, p, n);
		val[n] = 0;
		return 1;
	}
	return 0;
}

static int field_u64(const char *text, const char *key, uint64_t *v)
{
	char buf[32], *end;

	if (!field(text, key, buf, sizeof(buf)) || !buf[0])
		return 0;
	*v = strtoull(buf, &end, 10);
	return *end == 0;
}

int egr_fence_parse(const char *text, struct egr_fence_rec *r)
{
	uint64_t pid;

	memset(r, 0, sizeof(*r));
	if (!field(text, "host_id", r->host_id, sizeof(r->host_id)) ||
	    !field(text, "instance", r->instance, sizeof(r->instance)) || !field_u64(text, "pid", &pid) ||
	    !field(text, "boot_id", r->boot_id, sizeof(r->boot_id)) || !field_u64(text, "pidns", &r->pidns) ||
	    !field_u64(text, "generation", &r->generation) || !field_u64(text, "counter", &r->counter) ||
	    !field_u64(text, "renewed_ns", &r->renewed_ns) || !field_u64(text, "timeout_ms", &r->timeout_ms))
		return -EINVAL;
	r->pid = (long)pid;
	r->boot_id[strcspn(r->boot_id, " ")] = 0;
	return 0;
}

int egr_fence_read(const char *path, struct egr_fence_rec *r)
{
	char buf[EGR_FENCE_REC_MAX + 1];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return egr_fence_parse(buf, r);
}

int egr_fence_check(const char *job_path, char *err, size_t errlen)
{
	const char *env = getenv(EGR_FENCE_ENV), *path;
	struct egr_fence_rec r;
	struct stat st;
	char *end;
	int rc;

	if (!env || !*env)
		return 0;
	uint64_t gen = strtoull(env, &end, 10);
	if (*end != ':' || !end[1]) {
		egr_errf(err, errlen, "%s=\"%s\" is not \"generation:path\"; not committing", EGR_FENCE_ENV, env);
		return -ENOLCK;
	}
	path = end + 1;
	if ((rc = egr_fence_read(path, &r)) < 0) {
		egr_errf(err, errlen, "lease \"%s\": %s; this daemon lost its lease: not committing", path,
			 rc == -ENOENT ? "gone (another daemon took its jobs over)" : egr_log_strerror(-rc));
		return -ENOLCK;
	}
	uint64_t now = egr_fence_now_ns(), age = now - r.renewed_ns;
	if (r.generation != gen) {
		egr_errf(err, errlen, "lease \"%s\" now has generation %" PRIu64 ", not ours (%" PRIu64
			 "): not committing", path, r.generation, gen);
		return -ENOLCK;
	}
	if (r.renewed_ns > now || age >= r.timeout_ms * 1000000ull / 2) {
		egr_errf(err, errlen, "lease \"%s\": last heartbeat %.1f s ago, past half the lease timeout "
			 "(%.1f s): not committing", path, (double)age / 1e9, (double)r.timeout_ms / 1e3);
		return -ENOLCK;
	}
	if (job_path && job_path[0] && lstat(job_path, &st) < 0 && errno == ENOENT) {
		egr_errf(err, errlen, "job file \"%s\" left this daemon's active directory (requeued by another "
			 "daemon): not committing", job_path);
		return -ENOLCK;
	}
	return 0;
}
