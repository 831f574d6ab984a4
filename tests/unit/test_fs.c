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

/*
 * dir/rel as a directory ('d'), a file ('f') or a symlink to target ('l');
 * the path into out (if not NULL).  A test that cannot set up stops here.
 */
static void make(char kind, const char *rel, const char *target, char *out, size_t outlen)
{
	char p[512];
	int r = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (kind == 'd')
		r = mkdir(p, 0755);
	else if (kind == 'l')
		r = symlink(target, p);
	else
		write_text(p, "x\n");
	if (r < 0) {
		perror(p);
		exit(1);
	}
	if (out)
		snprintf(out, outlen, "%s", p);
}

/* write_atomic(path, text) succeeds, path then holds exactly text, and no path.tmp is left */
static void check_write(const char *path, const char *text, const char *what)
{
	char tmp[600], err[512], *got;
	int r = egr_fs_write_atomic(path, text, err, sizeof(err));

	CHECK(r == 0, "%s: write_atomic: %d %s", what, r, err);
	got = test_read_file(path);
	CHECK(got && strcmp(got, text) == 0, "%s: content '%s'", what, got ? got : "(unreadable)");
	free(got);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	CHECK(!exists(tmp), "%s: %s left behind", what, tmp);
}

static void test_write_atomic(void)
{
	char path[512], tmp[600], err[512];
	int r;

	snprintf(path, sizeof(path), "%s/report", dir);
	check_write(path, "first line\nsecond\n", "new file");
	check_write(path, "new", "over an existing file");	/* replaced whole */
	check_write(path, "", "empty text");

	/* a stale temporary from a crash, longer than the new text: truncated, not overwritten in part */
	snprintf(path, sizeof(path), "%s/stale", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_text(tmp, "a much longer stale text from an earlier attempt\n");
	check_write(path, "short", "over a stale temporary");

	/* the rename fails (a non-empty directory is in the way): the temporary is removed */
	make('d', "occupied", NULL, path, sizeof(path));
	make('f', "occupied/x", NULL, NULL, 0);
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
	make('f', "file", NULL, p, sizeof(p));
	r = egr_fs_remove_tree(p);
	CHECK(r == 0 && !exists(p), "remove a file: %d, exists %d", r, exists(p));

	/*
	 * a nested tree, with symlinks to a file and to a directory outside it:
	 * the links go, what they point to stays (FTW_PHYS: never followed)
	 */
	make('f', "keep", NULL, keep, sizeof(keep));
	make('d', "keepdir", NULL, keepdir, sizeof(keepdir));
	make('f', "keepdir/inner", NULL, NULL, 0);
	make('d', "tree", NULL, p, sizeof(p));
	make('d', "tree/a", NULL, NULL, 0);
	make('d', "tree/a/b", NULL, NULL, 0);
	make('f', "tree/a/b/deep", NULL, NULL, 0);
	make('f', "tree/top", NULL, NULL, 0);
	make('d', "tree/empty", NULL, NULL, 0);
	make('l', "tree/a/link", keep, NULL, 0);
	make('l', "tree/dirlink", keepdir, NULL, 0);
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
	make('d', "rel", NULL, NULL, 0);
	make('f', "rel/f", NULL, NULL, 0);
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
	return test_result("test_fs");
}
