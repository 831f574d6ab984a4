/*
 * fs: small file-system helpers every role uses (the ground floor, beside log).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/fault.h"
#include "daemon/base/fs.h"
#include "daemon/base/log.h"

int egr_fs_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* path.tmp, written whole (fsynced when durable), renamed over path */
static int write_replace(const char *path, const char *text, int durable, char *err, size_t errlen)
{
	char tmp[4200];
	size_t len = strlen(text), off = 0;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", tmp, strerror(errno));
		return rc;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			egr_errf(err, errlen, "write(\"%s\"): %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (durable && fsync(fd) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "fsync(\"%s\"): %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	/* test builds: die with the text on disk under path.tmp, or just after */
	egr_fault_kill("EGR_FAULT_ATOMIC_KILL", path);
	if (rename(tmp, path) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", tmp, path, strerror(errno));
		goto fail;
	}
	egr_fault_kill("EGR_FAULT_ATOMIC_KILL_AFTER", path);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int egr_fs_write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
	return write_replace(path, text, 1, err, errlen);
}

int egr_fs_write_view(const char *path, const char *text, char *err, size_t errlen)
{
	return write_replace(path, text, 0, err, errlen);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int egr_fs_remove_tree(const char *path)
{
	struct stat st;

	/* paths come from job tables in shared memory: never aim rm -r at a root */
	if (path[0] != '/' || strchr(path + 1, '/') == NULL)
		return -EINVAL;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}
