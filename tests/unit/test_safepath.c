/*
 * test_safepath: the trust boundary.  Every refusal of daemon/base/safepath
 * (a path outside the roots, "..", a link at any component, a FIFO, a device,
 * a directory where a file belongs, the overwrite rules, an output that is
 * or holds the job's input), each with its one-line message naming the
 * user's path; and the kept descriptors: a link swapped in for the output's
 * parent after it was resolved redirects nothing.  The resolution cases run
 * twice, through openat2 and through the O_NOFOLLOW walk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "daemon/base/safepath.h"

#include "check.h"
#include "testfs.h"

static char T[64];		/* the test's temporary tree */
static char IN[128], OUT[128], SECRET[128];

static const char *at(const char *fmt, const char *a)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), fmt, a);
	return buf[i];
}

static int file_has(const char *path, const char *text)
{
	char buf[256] = "";
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return !strcmp(buf, text);
}

static int one_line(const char *s)
{
	return s[0] && !strchr(s, '\n') && !strstr(s, ".egressd-tmp");
}

static void setup(void)
{
	snprintf(T, sizeof(T), "/tmp/egr-safepath.XXXXXX");
	must(mkdtemp(T) != NULL, "mkdtemp");
	snprintf(IN, sizeof(IN), "%s/in", T);
	snprintf(OUT, sizeof(OUT), "%s/out", T);
	snprintf(SECRET, sizeof(SECRET), "%s/secret", T);
	must(mkdir(IN, 0755) == 0 && mkdir(OUT, 0755) == 0 && mkdir(SECRET, 0755) == 0, "mkdir");
	put(at("%s/s.txt", SECRET), "secret bytes");
	put(at("%s/l.npy", IN), "latents");
	must(mkdir(at("%s/d", IN), 0755) == 0, "mkdir d");
	put(at("%s/d/w.st", IN), "weights");
	must(mkfifo(at("%s/fifo", IN), 0644) == 0, "mkfifo");
	must(symlink("l.npy", at("%s/link.npy", IN)) == 0, "symlink");
	must(symlink(SECRET, at("%s/outside", IN)) == 0, "symlink outside");
	must(symlink("d", at("%s/inside", IN)) == 0, "symlink inside");
	must(symlink(SECRET, at("%s/outside", OUT)) == 0, "symlink out/outside");
	must(mkdir(at("%s/sub", OUT), 0755) == 0, "mkdir out/sub");
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T);
	if (system(cmd) != 0)
		printf("could not remove %s\n", T);
}

static void roots(struct egr_safepath *sp, int walk_only)
{
	char r[300], w[300], err[512] = "";
	int rc;

	snprintf(r, sizeof(r), " %s  %s/ ", IN, OUT);	/* blanks and a trailing '/' are fine */
	snprintf(w, sizeof(w), "%s", OUT);
	rc = egr_safepath_init(sp, r, w, err, sizeof(err));
	must(rc == 0, err);
	sp->walk_only = walk_only;
}

static void test_init(void)
{
	struct egr_safepath sp;
	char err[512] = "";
	int rc;

	rc = egr_safepath_init(&sp, "relative/dir", NULL, err, sizeof(err));
	CHECK(rc == -EINVAL && !strcmp(err, "[paths] allow_read: \"relative/dir\" is not an absolute path"), "%d %s", rc, err);
	rc = egr_safepath_init(&sp, NULL, "/tmp/../etc", err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "\"..\" component"), "%d %s", rc, err);
	rc = egr_safepath_init(&sp, at("%s/none", T), NULL, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "[paths] allow_read: \"") && strstr(err, "\" is not an existing directory"), "%d %s",
	      rc, err);
	rc = egr_safepath_init(&sp, at("%s/in/l.npy", T), NULL, err, sizeof(err));
	CHECK(rc == -ENOTDIR, "a file as a root: %d %s", rc, err);
	rc = egr_safepath_init(&sp, "", NULL, err, sizeof(err));
	CHECK(rc == 0 && sp.nroots[0] == 0 && sp.nroots[1] == 0, "no roots: %d", rc);
	egr_safepath_close(&sp);
}

static void test_syntax(void)
{
	static const struct {
		const char *path, *want;
	} cases[] = {
		{ "data/x.npy", "is not an absolute path" },
		{ "/data/../etc/shadow", "\"..\" component" },
		{ "/data/./x", "\".\" component" },
		{ "/data//x", "empty component" },
		{ "/data/x/", "empty component" },
		{ "/data/x\n<0>forged", "contains a control character" },
		{ "/data/\033[31mred", "contains a control character" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = egr_safepath_check_syntax("latents", cases[i].path, err, sizeof(err));

		CHECK(rc == -EINVAL && strstr(err, cases[i].want) && one_line(err) && !strchr(err, '\033'),
		      "%s: %d %s", cases[i].want, rc, err);
	}
	CHECK(egr_safepath_check_syntax("output", "/", err, sizeof(err)) == 0, "\"/\"");
	CHECK(egr_safepath_check_syntax("output", "/a b/c.y4m", err, sizeof(err)) == 0, "blanks");
}

static void test_roots(void)
{
	struct egr_safepath sp, none;
	struct egr_safepath_file f;
	struct egr_safepath_out o;
	char err[512];
	int rc;

	roots(&sp, 0);
	rc = egr_safepath_open_input(&sp, "latents", "/etc/shadow", &f, err, sizeof(err));
	CHECK(rc == -EACCES && !strcmp(err, "latents \"/etc/shadow\" is not under any allow_read root (set [paths] allow_read)"),
	      "%d %s", rc, err);
	/* /T/in2 is not under /T/in: components, not a string prefix */
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in2/x.npy", T), &f, err, sizeof(err));
	CHECK(rc == -EACCES && strstr(err, "not under any allow_read root"), "prefix: %d %s", rc, err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/in/o.y4m", T), &o, err, sizeof(err));
	CHECK(rc == -EACCES && strstr(err, "not under any allow_write root (set [paths] allow_write)"), "%d %s", rc,
	      err);
	rc = egr_safepath_open_output(&sp, "output", OUT, &o, err, sizeof(err));
	CHECK(rc == -EISDIR && strstr(err, "is an allow_write root itself"), "%d %s", rc, err);
	rc = egr_safepath_open_input(&sp, "latents", IN, &f, err, sizeof(err));
	CHECK(rc == -EISDIR && strstr(err, "is an allow_read root itself; name a file inside it"), "%d %s", rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/../secret/s.txt", T), &f, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "\"..\" component"), "..: %d %s", rc, err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/../secret/x.y4m", T), &o, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "\"..\" component"), "output ..: %d %s", rc, err);
	egr_safepath_close(&sp);

	must(egr_safepath_init(&none, NULL, NULL, err, sizeof(err)) == 0, err);
	rc = egr_safepath_open_input(&none, "latents", at("%s/in/l.npy", T), &f, err, sizeof(err));
	CHECK(rc == -EACCES && strstr(err, "no allow_read root is configured") && strstr(err, "set [paths] allow_read"),
	      "%d %s", rc, err);
	rc = egr_safepath_open_output(&none, "output", at("%s/out/x.y4m", T), &o, err, sizeof(err));
	CHECK(rc == -EACCES && strstr(err, "set [paths] allow_write"), "%d %s", rc, err);
	egr_safepath_close(&none);
}

/* the input refusals, through openat2 (walk_only 0) and the walk (1) */
static void test_inputs(int walk_only)
{
	struct egr_safepath sp;
	struct egr_safepath_file f;
	char err[512], buf[16] = "";
	int rc;

	roots(&sp, walk_only);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/l.npy", T), &f, err, sizeof(err));
	CHECK(rc == 0 && f.st.st_size == 7 && read(f.fd, buf, sizeof(buf)) == 7 && !strcmp(buf, "latents"),
	      "walk %d: good input: %d %s", walk_only, rc, err);
	if (rc == 0)
		egr_safepath_file_close(&f);
	rc = egr_safepath_open_input(&sp, "weights", at("%s/in/d/w.st", T), &f, err, sizeof(err));
	CHECK(rc == 0 && f.st.st_size == 7, "walk %d: input in a subdirectory: %d %s", walk_only, rc, err);
	if (rc == 0)
		egr_safepath_file_close(&f);

	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/link.npy", T), &f, err, sizeof(err));
	CHECK(rc == -ELOOP && strstr(err, "link.npy\" is a symbolic link") && f.fd < 0, "walk %d: final link: %d %s",
	      walk_only, rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/outside/s.txt", T), &f, err, sizeof(err));
	CHECK(rc == -ELOOP && strstr(err, at("\"%s/in/outside\" is a symbolic link", T)), "walk %d: parent link out: %d %s",
	      walk_only, rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/inside/w.st", T), &f, err, sizeof(err));
	CHECK(rc == -ELOOP, "walk %d: even a link that stays inside: %d %s", walk_only, rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/fifo", T), &f, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "fifo\" is a FIFO, not a regular file"), "walk %d: FIFO: %d %s", walk_only,
	      rc, err);
	rc = egr_safepath_open_input(&sp, "weights", at("%s/in/d", T), &f, err, sizeof(err));
	CHECK(rc == -EISDIR && strstr(err, "weights \"") && strstr(err, "is a directory, not a regular file"),
	      "walk %d: a directory as weights: %d %s", walk_only, rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/none.npy", T), &f, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "No such file or directory"), "walk %d: missing: %d %s", walk_only, rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/nodir/x.npy", T), &f, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, at("directory \"%s/in/nodir\" does not exist", T)), "walk %d: %d %s",
	      walk_only, rc, err);
	rc = egr_safepath_open_input(&sp, "latents", at("%s/in/l.npy/x", T), &f, err, sizeof(err));
	CHECK(rc == -ENOTDIR && strstr(err, "is a regular file, not a directory"), "walk %d: %d %s", walk_only, rc, err);
	egr_safepath_close(&sp);
}

static void test_devices(void)
{
	struct egr_safepath sp;
	struct egr_safepath_file f;
	struct egr_safepath_out o;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[512];
	int rc, s;

	roots(&sp, 0);
	/* a socket, as input and as output */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/out/sock", T);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	must(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
	rc = egr_safepath_open_input(&sp, "latents", sa.sun_path, &f, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "is a socket"), "socket input: %d %s", rc, err);
	rc = egr_safepath_open_output(&sp, "output", sa.sun_path, &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_OTHER, "socket output: %d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 0, NULL, 0, err, sizeof(err));
	CHECK(rc == -EPERM && strstr(err, "is a socket; egressd never replaces one"), "%d %s", rc, err);
	egr_safepath_out_close(&o);
	close(s);

	if (mknod(at("%s/out/null", T), S_IFCHR | 0666, makedev(1, 3)) < 0) {
		printf("skip: mknod: %s (the device cases need root)\n", strerror(errno));
		egr_safepath_close(&sp);
		return;
	}
	rc = egr_safepath_open_input(&sp, "latents", at("%s/out/null", T), &f, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "is a character device, not a regular file"), "device input: %d %s", rc,
	      err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/null", T), &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_OTHER, "device output: %d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 0, NULL, 0, err, sizeof(err));
	CHECK(rc == -EPERM && strstr(err, "is a character device; egressd never replaces one"), "%d %s", rc, err);
	/* even at commit time, with overwrite = yes */
	rc = egr_safepath_commit(&o, "nothing-here", 0, 1, err, sizeof(err));
	CHECK(rc == -EPERM, "commit over a device: %d %s", rc, err);
	egr_safepath_out_close(&o);
	struct stat st;
	CHECK(lstat(at("%s/out/null", T), &st) == 0 && S_ISCHR(st.st_mode), "the device node is untouched");
	egr_safepath_close(&sp);
}

/* an output through a new temporary: create, write, commit; 0 or the error */
static int write_output(struct egr_safepath_out *o, int is_dir, int overwrite, const char *text, char *err,
			size_t errlen)
{
	char tmp[300];
	int fd, rc;

	rc = egr_safepath_create_temp(o, is_dir, is_dir ? 0750 : 0640, tmp, sizeof(tmp), &fd, err, errlen);
	if (rc < 0)
		return rc;
	if (is_dir) {
		int ffd = openat(fd, "frame_000001.png", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0640);
		must(ffd >= 0 && write(ffd, text, strlen(text)) == (ssize_t)strlen(text), "frame");
		close(ffd);
	} else {
		must(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write temp");
	}
	close(fd);
	rc = egr_safepath_commit(o, tmp, is_dir, overwrite, err, errlen);
	if (rc < 0)
		egr_safepath_remove_at(o->dirfd, tmp);
	return rc;
}

static void test_output_paths(int walk_only)
{
	struct egr_safepath sp;
	struct egr_safepath_out o;
	char err[512];
	int rc;

	roots(&sp, walk_only);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/outside/x.y4m", T), &o, err, sizeof(err));
	CHECK(rc == -ELOOP && strstr(err, "is a symbolic link; egressd follows none") && one_line(err),
	      "walk %d: parent link out: %d %s", walk_only, rc, err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/none/x.y4m", T), &o, err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, at("directory \"%s/out/none\" does not exist", T)), "walk %d: %d %s",
	      walk_only, rc, err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/outside", T), &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_OTHER, "walk %d: link at the final name: %d %s", walk_only, rc, err);
	if (rc == 0) {
		rc = egr_safepath_check_output(&o, 1, 0, NULL, 0, err, sizeof(err));
		CHECK(rc == -EPERM && strstr(err, "is a symbolic link; egressd never replaces one"), "%d %s", rc, err);
		egr_safepath_out_close(&o);
	}
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/sub/a.y4m", T), &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_NONE && !strcmp(o.name, "a.y4m"), "walk %d: good: %d %s", walk_only,
	      rc, err);
	if (rc == 0) {
		rc = write_output(&o, 0, 0, "y4m", err, sizeof(err));
		CHECK(rc == 0 && file_has(at("%s/out/sub/a.y4m", T), "y4m"), "walk %d: written: %d %s", walk_only, rc, err);
		egr_safepath_out_close(&o);
	}
	unlink(at("%s/out/sub/a.y4m", T));
	egr_safepath_close(&sp);
}

static void test_overwrite(void)
{
	struct egr_safepath sp;
	struct egr_safepath_out o;
	struct stat st;
	char err[512], path[256];
	int rc;

	roots(&sp, 0);
	snprintf(path, sizeof(path), "%s/out/old.y4m", T);
	put(path, "precious");
	rc = egr_safepath_open_output(&sp, "output", path, &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_FILE, "%d %s", rc, err);
	rc = egr_safepath_check_output(&o, 0, 0, NULL, 0, err, sizeof(err));
	CHECK(rc == -EEXIST && !strcmp(err, at("output \"%s/out/old.y4m\" exists; set overwrite = yes to replace it", T)),
	      "overwrite = no: %d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 1, NULL, 0, err, sizeof(err));
	CHECK(rc == -EEXIST && strstr(err, "is a regular file, but the job's format writes a directory"),
	      "png over a file: %d %s", rc, err);
	/* overwrite = no at commit time: the file is kept */
	rc = write_output(&o, 0, 0, "new", err, sizeof(err));
	CHECK(rc == -EEXIST && strstr(err, "set overwrite = yes") && file_has(path, "precious") && one_line(err),
	      "commit, overwrite = no: %d %s", rc, err);
	CHECK(egr_safepath_check_output(&o, 1, 0, NULL, 0, err, sizeof(err)) == 0, "overwrite = yes: %s", err);
	rc = write_output(&o, 0, 1, "new", err, sizeof(err));
	CHECK(rc == 0 && file_has(path, "new"), "a file replaced: %d %s", rc, err);
	egr_safepath_out_close(&o);

	/* a foreign directory: refused even with overwrite = yes; kept whole */
	snprintf(path, sizeof(path), "%s/out/frames", T);
	must(mkdir(path, 0755) == 0, "mkdir frames");
	put(at("%s/out/frames/mine.txt", T), "user data");
	rc = egr_safepath_open_output(&sp, "output", path, &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_DIR, "%d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 1, NULL, 0, err, sizeof(err));
	CHECK(rc == -EPERM && strstr(err, "is a directory egressd did not create"), "%d %s", rc, err);
	rc = write_output(&o, 1, 1, "png", err, sizeof(err));
	CHECK(rc == -EPERM && file_has(at("%s/out/frames/mine.txt", T), "user data"), "commit over it: %d %s", rc, err);
	egr_safepath_out_close(&o);

	/* egressd's own directory: png twice, the second replaces the first */
	snprintf(path, sizeof(path), "%s/out/png", T);
	rc = egr_safepath_open_output(&sp, "output", path, &o, err, sizeof(err));
	CHECK(rc == 0 && write_output(&o, 1, 0, "one", err, sizeof(err)) == 0, "first png: %s", err);
	CHECK(egr_safepath_inspect(&o) == 0 && o.exists == EGR_SAFEPATH_OURDIR, "marked: %d", o.exists);
	CHECK(stat(at("%s/out/png/" EGR_SAFEPATH_MARKER, T), &st) == 0, "marker");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0750, "directory mode %o", st.st_mode & 07777);
	rc = egr_safepath_check_output(&o, 0, 1, NULL, 0, err, sizeof(err));
	CHECK(rc == -EEXIST && strstr(err, "set overwrite = yes"), "overwrite = no: %d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 0, NULL, 0, err, sizeof(err));
	CHECK(rc == -EEXIST && strstr(err, "is a directory, but the job's format writes a file"), "y4m over it: %d %s",
	      rc, err);
	rc = write_output(&o, 1, 1, "two", err, sizeof(err));
	CHECK(rc == 0 && file_has(at("%s/out/png/frame_000001.png", T), "two"), "replaced: %d %s", rc, err);
	CHECK(rmdir(path) < 0, "still there");
	egr_safepath_out_close(&o);
	/* nothing temporary left in out/ */
	FILE *p = popen(at("ls -A '%s/out' | grep -c egressd-tmp", T), "r");
	char n[16] = "";
	CHECK(p && fgets(n, sizeof(n), p) && atoi(n) == 0, "temporaries left: %s", n);
	if (p)
		pclose(p);
	egr_safepath_close(&sp);
}

static void test_inputs_vs_output(void)
{
	struct egr_safepath sp;
	struct egr_safepath_file in[2];
	struct egr_safepath_out o;
	char err[512];
	int rc;

	roots(&sp, 0);
	put(at("%s/out/l.npy", T), "latents");
	must(egr_safepath_open_input(&sp, "latents", at("%s/out/l.npy", T), &in[0], err, sizeof(err)) == 0, err);
	must(egr_safepath_open_input(&sp, "weights", at("%s/in/d/w.st", T), &in[1], err, sizeof(err)) == 0, err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/l.npy", T), &o, err, sizeof(err));
	CHECK(rc == 0, "%d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 0, in, 2, err, sizeof(err));
	CHECK(rc == -EINVAL && !strcmp(err, at("output \"%s/out/l.npy\" is the job's latents; choose another output", T)),
	      "output = latents: %d %s", rc, err);
	egr_safepath_out_close(&o);
	/* a hard link to the weights is the weights */
	must(link(at("%s/in/d/w.st", T), at("%s/out/w.link", T)) == 0, "link");
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/w.link", T), &o, err, sizeof(err));
	CHECK(rc == 0 && egr_safepath_check_output(&o, 1, 0, in, 2, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "is the job's weights"),
	      "output = weights: %s", err);
	egr_safepath_out_close(&o);
	egr_safepath_file_close(&in[0]);

	/* an egressd directory holding the latents is not replaced */
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/png2", T), &o, err, sizeof(err));
	CHECK(rc == 0 && write_output(&o, 1, 0, "x", err, sizeof(err)) == 0, "png2: %s", err);
	egr_safepath_out_close(&o);
	put(at("%s/out/png2/l.npy", T), "latents");
	must(egr_safepath_open_input(&sp, "latents", at("%s/out/png2/l.npy", T), &in[0], err, sizeof(err)) == 0, err);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/png2", T), &o, err, sizeof(err));
	CHECK(rc == 0 && o.exists == EGR_SAFEPATH_OURDIR, "%d %s", rc, err);
	rc = egr_safepath_check_output(&o, 1, 1, in, 2, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "is a directory holding the job's latents"), "holds latents: %d %s", rc, err);
	egr_safepath_out_close(&o);
	egr_safepath_file_close(&in[0]);
	egr_safepath_file_close(&in[1]);
	egr_safepath_close(&sp);
}

/* the parent is resolved; then a link to the outside is swapped in for it */
static void test_swap_race(void)
{
	struct egr_safepath sp;
	struct egr_safepath_out o;
	char err[512], tmp[300], moved[256];
	int rc, fd;

	roots(&sp, 0);
	must(mkdir(at("%s/out/race", T), 0755) == 0, "mkdir race");
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/race/x.y4m", T), &o, err, sizeof(err));
	CHECK(rc == 0, "%d %s", rc, err);
	snprintf(moved, sizeof(moved), "%s/out/race.moved", T);
	must(rename(at("%s/out/race", T), moved) == 0, "rename race");
	must(symlink(SECRET, at("%s/out/race", T)) == 0, "swap in a link");
	rc = egr_safepath_create_temp(&o, 0, 0640, tmp, sizeof(tmp), &fd, err, sizeof(err));
	CHECK(rc == 0, "%d %s", rc, err);
	if (rc == 0) {
		must(write(fd, "frames", 6) == 6, "write");
		close(fd);
		rc = egr_safepath_commit(&o, tmp, 0, 0, err, sizeof(err));
		CHECK(rc == 0, "commit: %d %s", rc, err);
	}
	CHECK(file_has(at("%s/race.moved/x.y4m", OUT), "frames"), "the output went where it was resolved");
	CHECK(access(at("%s/x.y4m", SECRET), F_OK) < 0, "nothing written through the link");
	egr_safepath_out_close(&o);
	egr_safepath_close(&sp);
}

static void test_temp_and_remove(void)
{
	struct egr_safepath sp;
	struct egr_safepath_out o;
	struct egr_safepath_file f;
	struct stat st;
	char err[512], a[300], b[300];
	int rc, fa, fb;

	roots(&sp, 0);
	rc = egr_safepath_open_output(&sp, "output", at("%s/out/t.y4m", T), &o, err, sizeof(err));
	CHECK(rc == 0, "%d %s", rc, err);
	umask(077);
	CHECK(egr_safepath_create_temp(&o, 0, 0640, a, sizeof(a), &fa, err, sizeof(err)) == 0 &&
		      egr_safepath_create_temp(&o, 0, 0640, b, sizeof(b), &fb, err, sizeof(err)) == 0,
	      "temps: %s", err);
	umask(022);
	CHECK(strcmp(a, b) && strstr(a, ".t.y4m.") == a && strlen(a) == strlen(".t.y4m.") + 16 + strlen(".egressd-tmp"),
	      "unpredictable names: %s %s", a, b);
	CHECK(fstat(fa, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0640, "mode %o despite umask",
	      st.st_mode & 0777);
	close(fa);
	close(fb);
	CHECK(egr_safepath_remove_at(o.dirfd, a) == 0 && egr_safepath_remove_at(o.dirfd, b) == 0 &&
		      egr_safepath_remove_at(o.dirfd, b) == 0,
	      "removed (twice is fine)");
	/* remove_at never follows a link inside the tree */
	must(mkdir(at("%s/out/tree", T), 0755) == 0 && symlink(SECRET, at("%s/out/tree/l", T)) == 0, "tree");
	CHECK(egr_safepath_remove_at(o.dirfd, "tree") == 0 && access(at("%s/out/tree", T), F_OK) < 0 &&
		      file_has(at("%s/s.txt", SECRET), "secret bytes"),
	      "remove_at kept the link's target");
	egr_safepath_out_close(&o);

	must(egr_safepath_open_input(&sp, "latents", at("%s/in/l.npy", T), &f, err, sizeof(err)) == 0, err);
	must(fchmod(f.fd, 0600) == 0 && fstat(f.fd, &f.st) == 0, "chmod");
	CHECK(egr_safepath_output_mode(&f, 1, 0) == 0600, "from 0600: %o", egr_safepath_output_mode(&f, 1, 0));
	must(fchmod(f.fd, 0644) == 0 && fstat(f.fd, &f.st) == 0, "chmod");
	CHECK(egr_safepath_output_mode(&f, 1, 0) == 0644, "from 0644: %o", egr_safepath_output_mode(&f, 1, 0));
	must(fchmod(f.fd, 0640) == 0 && fstat(f.fd, &f.st) == 0, "chmod");
	CHECK(egr_safepath_output_mode(&f, 1, 1) == 0750, "dir from 0640: %o", egr_safepath_output_mode(&f, 1, 1));
	egr_safepath_file_close(&f);
	egr_safepath_close(&sp);
}

/* as an unprivileged user (root only: a child drops to nobody) */
static void test_not_writable(void)
{
	struct egr_safepath sp;
	struct egr_safepath_out o;
	struct egr_safepath_file f;
	char err[512];
	int status, bad = 0;
	pid_t pid;

	if (geteuid() != 0) {
		printf("skip: the unprivileged cases run when the test runs as root\n");
		return;
	}
	must(chmod(T, 0755) == 0 && chmod(at("%s/s.txt", SECRET), 0600) == 0, "chmod");
	put(at("%s/in/root-only.npy", T), "root only");
	must(chmod(at("%s/in/root-only.npy", T), 0600) == 0, "chmod");
	fflush(stdout);
	pid = fork();
	must(pid >= 0, "fork");
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		roots(&sp, 0);
		if (egr_safepath_open_output(&sp, "output", at("%s/out/x.y4m", T), &o, err, sizeof(err)) != -EACCES ||
		    !strstr(err, at("directory \"%s/out\" is not writable by egressd (uid 65534)", T))) {
			printf("not writable: %s\n", err);
			bad = 1;
		}
		if (egr_safepath_open_input(&sp, "latents", at("%s/in/root-only.npy", T), &f, err, sizeof(err)) !=
			    -EACCES ||
		    !strstr(err, "is not readable by egressd (uid 65534): Permission denied")) {
			printf("not readable: %s\n", err);
			bad = 1;
		}
		fflush(stdout);
		_exit(bad);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "as nobody: status %d",
	      status);
}

int main(void)
{
	setup();
	test_init();
	test_syntax();
	test_roots();
	test_inputs(0);
	test_inputs(1);
	test_devices();
	test_output_paths(0);
	test_output_paths(1);
	test_overwrite();
	test_inputs_vs_output();
	test_swap_race();
	test_temp_and_remove();
	test_not_writable();
	if (failures)
		printf("%d check(s) failed; tree kept in %s\n", failures, T);
	else
		cleanup();
	return failures ? 1 : 0;
}
