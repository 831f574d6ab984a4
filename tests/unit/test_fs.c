/*
 * test_fs: the file-system helpers of daemon/base/fs.h.  write_atomic leaves
 * the whole text and no temporary, replaces an existing file, and fails
 * with a reason in a missing directory; remove_tree removes a file and a
 * nested tree (not what its symlinks point to, files or directories), says
 * 0 for a missing path and refuses relative and top-level paths without
 * touching them; fsync_dir works on a directory and reports the errno
 * otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/fs.h"

#include "check.h"
#include "helpers.h"

static char dir[256];

/* the file's bytes (NUL-terminated, malloc'd), or NULL when it cannot be read */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = calloc(1, 4096);
	n = buf ? fread(buf, 1, 4095, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* create path holding text; a test that cannot set up stops here */
static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void touch(const char *path)
{
	write_text(path, "x\n");
}

static void mkdir_or_die(const char *path)
{
	if (mkdir(path, 0755) < 0) {
		perror(path);
		exit(1);
	}
}

static void test_write_atomic(void)
{
	char path[512], tmp[600], err[512];
	char *got;
	int r;

	snprintf(path, sizeof(path), "%s/report", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	r = egr_fs_write_atomic(path, "first line\nsecond\n", err, sizeof(err));
	CHECK(r == 0, "write_atomic: %d %s", r, err);
	got = slurp(path);
	CHECK(got && strcmp(got, "first line\nsecond\n") == 0, "content '%s'", got ? got : "(unreadable)");
	free(got);
	CHECK(!exists(tmp), "%s left behind", tmp);

	/* an existing file is replaced whole */
	r = egr_fs_write_atomic(path, "new", err, sizeof(err));
	CHECK(r == 0, "write_atomic over a file: %d %s", r, err);
	got = slurp(path);
	CHECK(got && strcmp(got, "new") == 0, "content after replace '%s'", got ? got : "(unreadable)");
	free(got);
	CHECK(!exists(tmp), "%s left behind after replace", tmp);

	/* empty text: an empty file */
	r = egr_fs_write_atomic(path, "", err, sizeof(err));
	got = slurp(path);
	CHECK(r == 0 && got && got[0] == 0, "empty text: %d '%s'", r, got ? got : "(unreadable)");
	free(got);

	/* a stale temporary from a crash, longer than the new text: truncated, not overwritten in part */
	snprintf(path, sizeof(path), "%s/stale", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_text(tmp, "a much longer stale text from an earlier attempt\n");
	r = egr_fs_write_atomic(path, "short", err, sizeof(err));
	got = slurp(path);
	CHECK(r == 0 && got && strcmp(got, "short") == 0, "over a stale temporary: %d '%s'", r, got ? got : "(unreadable)");
	free(got);

	/* the rename fails (a non-empty directory is in the way): the temporary is removed */
	snprintf(path, sizeof(path), "%s/occupied", dir);
	mkdir_or_die(path);
	snprintf(tmp, sizeof(tmp), "%s/occupied/x", dir);
	touch(tmp);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	err[0] = 0;
	r = egr_fs_write_atomic(path, "x", err, sizeof(err));
	CHECK(r < 0 && strstr(err, "rename(\""), "write_atomic onto a directory: %d '%s'", r, err);
	CHECK(!exists(tmp), "%s left behind after a failed rename", tmp);

	/* a missing directory: -ENOENT, a reason naming the call and the path, nothing created */
	snprintf(path, sizeof(path), "%s/missing/report", dir);
	err[0] = 0;
	r = egr_fs_write_atomic(path, "x", err, sizeof(err));
	CHECK(r == -ENOENT, "write_atomic into a missing dir returned %d", r);
	CHECK(strstr(err, "open(\"") && strstr(err, "/missing/report.tmp"), "error '%s' does not name open and the path",
	      err);
	CHECK(!exists(path), "%s created", path);
}

static void test_remove_tree(void)
{
	char p[512], q[512], keep[512], keepdir[512], cwd[512];
	int r;

	/* a plain file */
	snprintf(p, sizeof(p), "%s/file", dir);
	touch(p);
	r = egr_fs_remove_tree(p);
	CHECK(r == 0 && !exists(p), "remove a file: %d, exists %d", r, exists(p));

	/* a nested tree, with a symlink to a file outside it: the link goes, its target stays */
	snprintf(keep, sizeof(keep), "%s/keep", dir);
	touch(keep);
	snprintf(p, sizeof(p), "%s/tree", dir);
	mkdir_or_die(p);
	snprintf(q, sizeof(q), "%s/tree/a", dir);
	mkdir_or_die(q);
	snprintf(q, sizeof(q), "%s/tree/a/b", dir);
	mkdir_or_die(q);
	snprintf(q, sizeof(q), "%s/tree/a/b/deep", dir);
	touch(q);
	snprintf(q, sizeof(q), "%s/tree/top", dir);
	touch(q);
	snprintf(q, sizeof(q), "%s/tree/a/link", dir);
	if (symlink(keep, q) < 0) {
		perror("symlink");
		exit(1);
	}
	snprintf(q, sizeof(q), "%s/tree/empty", dir);
	mkdir_or_die(q);
	/* and a symlink to a directory: not followed (FTW_PHYS), its contents stay */
	snprintf(keepdir, sizeof(keepdir), "%s/keepdir", dir);
	mkdir_or_die(keepdir);
	snprintf(q, sizeof(q), "%s/keepdir/inner", dir);
	touch(q);
	snprintf(q, sizeof(q), "%s/tree/dirlink", dir);
	if (symlink(keepdir, q) < 0) {
		perror("symlink");
		exit(1);
	}
	r = egr_fs_remove_tree(p);
	CHECK(r == 0 && !exists(p), "remove a nested tree: %d, exists %d", r, exists(p));
	CHECK(exists(keep), "the symlink's target %s was removed", keep);
	snprintf(q, sizeof(q), "%s/keepdir/inner", dir);
	CHECK(exists(q), "%s, inside a symlinked directory, was removed", q);

	/* missing: nothing to do */
	snprintf(p, sizeof(p), "%s/never-was", dir);
	CHECK(egr_fs_remove_tree(p) == 0, "missing path: %d", egr_fs_remove_tree(p));

	/* refused: relative (made to exist here, so a broken guard would remove it) */
	if (!getcwd(cwd, sizeof(cwd)) || chdir(dir) < 0) {
		perror("chdir");
		exit(1);
	}
	mkdir_or_die("rel");
	touch("rel/f");
	CHECK(egr_fs_remove_tree("rel") == -EINVAL, "relative path: %d", egr_fs_remove_tree("rel"));
	CHECK(egr_fs_remove_tree("rel/f") == -EINVAL, "relative path with a slash: %d", egr_fs_remove_tree("rel/f"));
	CHECK(egr_fs_remove_tree("") == -EINVAL, "empty path: %d", egr_fs_remove_tree(""));
	CHECK(exists("rel/f"), "a refused relative path was removed anyway");
	if (chdir(cwd) < 0) {
		perror("chdir back");
		exit(1);
	}
	/*
	 * refused: top-level.  The name does not exist, so a broken guard shows
	 * as 0 (nothing there) and harms nothing; "/" itself is not tried.
	 */
	CHECK(egr_fs_remove_tree("/egr-test-no-such-top-level") == -EINVAL, "top-level path: %d",
	      egr_fs_remove_tree("/egr-test-no-such-top-level"));
}

static void test_fsync_dir(void)
{
	char p[512];
	int r;

	r = egr_fs_fsync_dir(dir);
	CHECK(r == 0, "fsync_dir(%s): %d", dir, r);
	snprintf(p, sizeof(p), "%s/none", dir);
	r = egr_fs_fsync_dir(p);
	CHECK(r == -ENOENT, "fsync_dir(missing): %d", r);
	snprintf(p, sizeof(p), "%s/keep", dir);
	r = egr_fs_fsync_dir(p);
	CHECK(r == -ENOTDIR, "fsync_dir(a file): %d", r);
}

int main(void)
{
	test_tmpdir(dir, sizeof(dir), "test_fs");
	test_write_atomic();
	test_remove_tree();
	test_fsync_dir();
	test_rmtree(dir);
	if (failures)
		printf("test_fs: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
