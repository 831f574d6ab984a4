/*
 * safepath: resolves a job's paths inside the administrator's roots without
 * following links, and creates, checks and commits outputs through the
 * descriptors it got (the trust model is in safepath.h).
 *
 * Messages: every refusal is one line naming the user's path.  The path has
 * passed egr_safepath_check_syntax before any message but that one quotes
 * it, so it holds no control character; that one shows them as '?'.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/base/safepath.h"

#define REMOVE_DEPTH_MAX 32	/* an output directory has one level; temporaries none deeper */
#define TEMP_TRIES 8		/* 64 random bits: a clash means someone plants names */

static int openat2_missing;	/* set once the kernel answered ENOSYS */

static const char *const key_of[2] = { "allow_read", "allow_write" };
static const char *const key_label[2] = { "[paths] allow_read:", "[paths] allow_write:" };

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static const char *kind_of(mode_t m)
{
	if (S_ISREG(m))
		return "a regular file";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "a file of unknown kind";
}

/* ---- the string checks ---- */

/* path for a message: control bytes as '?', cut to fit */
static void show(const char *path, char *buf, size_t len)
{
	size_t i;

	for (i = 0; path[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)path[i] < 0x20 || path[i] == 0x7f ? '?' : path[i];
	buf[i] = '\0';
}

/* NULL if the components are fine, else why not */
static const char *components_bad(const char *path)
{
	const char *p = path + 1;

	if (!*p)
		return NULL;	/* "/" */
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0)
			return "has an empty component (a doubled or trailing '/')";
		if (n == 1 && p[0] == '.')
			return "has a \".\" component; give the plain absolute path";
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "has a \"..\" component; give the plain absolute path";
		if (n > 255)
			return "has a component longer than 255 bytes";
		p += n;
		if (!*p)
			return NULL;
		p++;
	}
}

int egr_safepath_check_syntax(const char *what, const char *path, char *err, size_t errlen)
{
	char shown[EGR_SAFEPATH_MAX];
	size_t len = strlen(path), i;
	const char *why;

	show(path, shown, sizeof(shown));
	if (len >= EGR_SAFEPATH_MAX) {
		egr_errf(err, errlen, "%s \"%.60s...\" is %zu bytes long; the limit is %d", what, shown, len,
			 EGR_SAFEPATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
			egr_errf(err, errlen, "%s \"%s\" contains a control character (shown as '?')", what, shown);
			return -EINVAL;
		}
	}
	why = path[0] != '/' ? "is not an absolute path" : components_bad(path);
	if (why) {
		egr_errf(err, errlen, "%s \"%s\" %s", what, shown, why);
		return -EINVAL;
	}
	return 0;
}

/* ---- the roots ---- */

static int add_root(struct egr_safepath *sp, int acc, const char *word, size_t n, char *err, size_t errlen)
{
	struct egr_safepath_root *r;
	char buf[EGR_SAFEPATH_MAX];
	int rc;

	if (sp->nroots[acc] == EGR_SAFEPATH_MAX_ROOTS) {
		egr_errf(err, errlen, "[paths] %s: more than %d directories", key_of[acc], EGR_SAFEPATH_MAX_ROOTS);
		return -E2BIG;
	}
	if (n >= sizeof(buf)) {
		egr_errf(err, errlen, "[paths] %s: a directory is %zu bytes long; the limit is %d", key_of[acc], n,
			 EGR_SAFEPATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	memcpy(buf, word, n);
	while (n > 1 && buf[n - 1] == '/')
		n--;
	buf[n] = '\0';
	rc = egr_safepath_check_syntax(key_label[acc], buf, err, errlen);
	if (rc < 0)
		return rc;
	r = &sp->roots[acc][sp->nroots[acc]];
	/* the administrator's own path: links in it are followed, once, here */
	r->fd = open(buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "%s \"%s\" is not an existing directory: %s", key_label[acc], buf,
			 strerror(errno));
		return rc;
	}
	memcpy(r->path, buf, n + 1);
	r->len = n;
	sp->nroots[acc]++;
	return 0;
}

static int add_roots(struct egr_safepath *sp, int acc, const char *list, char *err, size_t errlen)
{
	const char *p = list ? list : "";

	for (;;) {
		size_t n;
		int rc;

		p += strspn(p, " \t");
		if (!*p)
			return 0;
		n = strcspn(p, " \t");
		rc = add_root(sp, acc, p, n, err, errlen);
		if (rc < 0)
			return rc;
		p += n;
	}
}

int egr_safepath_init(struct egr_safepath *sp, const char *allow_read, const char *allow_write, char *err,
		      size_t errlen)
{
	int rc;

	memset(sp, 0, sizeof(*sp));
	rc = add_roots(sp, EGR_SAFEPATH_READ, allow_read, err, errlen);
	if (rc == 0)
		rc = add_roots(sp, EGR_SAFEPATH_WRITE, allow_write, err, errlen);
	if (rc < 0)
		egr_safepath_close(sp);
	return rc;
}

void egr_safepath_close(struct egr_safepath *sp)
{
	for (int a = 0; a < 2; a++) {
		for (unsigned i = 0; i < sp->nroots[a]; i++)
			close(sp->roots[a][i].fd);
		sp->nroots[a] = 0;
	}
}

/*
 * The root path lies under (the longest match) into *root, and in *rel the
 * path below it ("" for the root itself).  0, or -EINVAL (bad syntax) /
 * -EACCES (under no root) with err set.
 */
static int locate(const struct egr_safepath *sp, int acc, const char *what, const char *path,
		  const struct egr_safepath_root **root, const char **rel, char *err, size_t errlen)
{
	const struct egr_safepath_root *best = NULL;
	int rc = egr_safepath_check_syntax(what, path, err, errlen);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < sp->nroots[acc]; i++) {
		const struct egr_safepath_root *r = &sp->roots[acc][i];

		if (r->len == 1 || (!strncmp(path, r->path, r->len) && (path[r->len] == '/' || !path[r->len])))
			if (!best || r->len > best->len)
				best = r;
	}
	if (!best) {
		if (sp->nroots[acc] == 0)
			egr_errf(err, errlen, "%s \"%s\": no %s root is configured, so egressd accepts no %s (set [paths] %s)",
				 what, path, key_of[acc], acc == EGR_SAFEPATH_READ ? "inputs" : "outputs", key_of[acc]);
		else
			egr_errf(err, errlen, "%s \"%s\" is not under any %s root (set [paths] %s)", what, path,
				 key_of[acc], key_of[acc]);
		return -EACCES;
	}
	*rel = best->len == 1 ? path + 1 : path + best->len + (path[best->len] == '/');
	*root = best;
	return 0;
}

/* ---- resolving beneath a root ---- */

/* why the walk could not open dirfd/comp; prefix: the user's path up to comp */
static int walk_error(int dirfd, const char *comp, int e, const char *what, const char *path, int prefix,
		      char *err, size_t errlen)
{
	struct stat st;

	if (fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
		if (S_ISLNK(st.st_mode)) {
			egr_errf(err, errlen,
				 "%s \"%s\": \"%.*s\" is a symbolic link; egressd follows none under its roots: give the real path",
				 what, path, prefix, path);
			return -ELOOP;
		}
		egr_errf(err, errlen, "%s \"%s\": \"%.*s\" is %s, not a directory", what, path, prefix, path,
			 kind_of(st.st_mode));
		return -ENOTDIR;
	}
	if (e == ENOENT)
		egr_errf(err, errlen, "%s \"%s\": directory \"%.*s\" does not exist", what, path, prefix, path);
	else if (e == EACCES)
		egr_errf(err, errlen, "%s \"%s\": directory \"%.*s\" is not searchable by egressd (uid %u): %s", what,
			 path, prefix, path, (unsigned)geteuid(), strerror(e));
	else
		egr_errf(err, errlen, "%s \"%s\": open(\"%.*s\"): %s", what, path, prefix, path, strerror(e));
	return -e;
}

/*
 * Open rel (below the root at rootfd; rel_at is its offset in path) one
 * component at a time, none of them a link.  The last is opened with flags
 * (O_PATH or O_RDONLY), those before it O_PATH.  An fd or -errno.
 */
static int walk(int rootfd, const char *rel, int flags, const char *what, const char *path, size_t rel_at,
		char *err, size_t errlen)
{
	const char *p = rel;
	int cur = openat(rootfd, ".", (*rel ? O_PATH : flags) | O_DIRECTORY | O_CLOEXEC);

	if (cur < 0) {
		int rc = -errno;
		egr_errf(err, errlen, "%s \"%s\": opening its root: %s", what, path, strerror(errno));
		return rc;
	}
	while (*p) {
		size_t n = strcspn(p, "/");
		char comp[256];
		struct stat st;
		int next;

		memcpy(comp, p, n);	/* n <= 255: egr_safepath_check_syntax */
		comp[n] = '\0';
		next = openat(cur, comp, (p[n] ? O_PATH : flags) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next >= 0 && (fstat(next, &st) < 0 || !S_ISDIR(st.st_mode))) {
			close(next);	/* O_PATH|O_NOFOLLOW can open a link itself */
			next = -1;
			errno = ENOTDIR;
		}
		if (next < 0) {
			int rc = walk_error(cur, comp, errno, what, path, (int)(rel_at + (size_t)(p - rel) + n),
					    err, errlen);
			close(cur);
			return rc;
		}
		close(cur);
		cur = next;
		p += n + (p[n] == '/');
	}
	return cur;
}

/*
 * The directory rel[0..n) below root, as an fd opened with flags: one
 * openat2 call where the kernel has it; the walk otherwise, and also when
 * openat2 refuses, for a message naming the component at fault.
 */
static int open_dir(const struct egr_safepath *sp, const struct egr_safepath_root *root, const char *rel, size_t n,
		    int flags, const char *what, const char *path, char *err, size_t errlen)
{
	char buf[EGR_SAFEPATH_MAX];
	int fd;

	memcpy(buf, rel, n);	/* n < strlen(path) < EGR_SAFEPATH_MAX */
	buf[n] = '\0';
	if (n && !sp->walk_only && !__atomic_load_n(&openat2_missing, __ATOMIC_RELAXED)) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};

		fd = (int)syscall(SYS_openat2, root->fd, buf, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno == ENOSYS)
			__atomic_store_n(&openat2_missing, 1, __ATOMIC_RELAXED);
	}
	fd = walk(root->fd, buf, flags, what, path, (size_t)(rel - path), err, errlen);
	return fd;
}

/* split rel at its last '/': the directory part's length, and the last component */
static size_t split_last(const char *rel, const char **name)
{
	const char *slash = strrchr(rel, '/');

	*name = slash ? slash + 1 : rel;
	return slash ? (size_t)(slash - rel) : 0;
}

/*
 * The directory holding path (under a root of kind acc, not the root
 * itself), opened with flags, and in *name its last component.  An fd or
 * -errno with err set.
 */
static int open_parent(const struct egr_safepath *sp, int acc, const char *what, const char *path, int flags,
		       const char **name, char *err, size_t errlen)
{
	const struct egr_safepath_root *root;
	const char *rel;
	int rc = locate(sp, acc, what, path, &root, &rel, err, errlen);

	if (rc < 0)
		return rc;
	if (!*rel) {
		egr_errf(err, errlen, "%s \"%s\" is an %s root itself; name a file%s inside it", what, path,
			 key_of[acc], acc == EGR_SAFEPATH_READ ? "" : " or directory");
		return -EISDIR;
	}
	return open_dir(sp, root, rel, split_last(rel, name), flags, what, path, err, errlen);
}

/* ---- inputs ---- */

static int refuse_kind(const char *what, const char *path, mode_t m, char *err, size_t errlen)
{
	if (S_ISLNK(m)) {
		egr_errf(err, errlen, "%s \"%s\" is a symbolic link; egressd opens none: give the real path", what,
			 path);
		return -ELOOP;
	}
	egr_errf(err, errlen, "%s \"%s\" is %s, not a regular file", what, path, kind_of(m));
	return S_ISDIR(m) ? -EISDIR : -EINVAL;
}

/* open dirfd/name for reading if it is a regular file; f->fd and f->st */
static int open_regular(int dirfd, const char *name, struct egr_safepath_file *f, char *err, size_t errlen)
{
	struct stat before;
	int e;

	if (fstatat(dirfd, name, &before, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	if (!S_ISREG(before.st_mode))
		return refuse_kind(f->what, f->path, before.st_mode, err, errlen);
	/* O_NONBLOCK: should a FIFO be swapped in after the check, the open does not hang */
	f->fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd < 0)
		goto fail;
	if (fstat(f->fd, &f->st) < 0)
		goto fail;
	if (!S_ISREG(f->st.st_mode) || !same_file(&before, &f->st)) {
		egr_errf(err, errlen, "%s \"%s\" was replaced while egressd opened it; submit the job again", f->what,
			 f->path);
		return -EAGAIN;
	}
	if (fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK) < 0)
		goto fail;
	return 0;
fail:
	e = errno;
	if (e == ELOOP)
		return refuse_kind(f->what, f->path, S_IFLNK, err, errlen);
	if (e == EACCES)
		egr_errf(err, errlen, "%s \"%s\" is not readable by egressd (uid %u): %s", f->what, f->path,
			 (unsigned)geteuid(), strerror(e));
	else
		egr_errf(err, errlen, "%s \"%s\": %s", f->what, f->path, strerror(e));
	return -e;
}

int egr_safepath_open_input(const struct egr_safepath *sp, const char *what, const char *path,
			    struct egr_safepath_file *f, char *err, size_t errlen)
{
	const char *name;
	int rc;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	snprintf(f->what, sizeof(f->what), "%s", what);
	show(path, f->path, sizeof(f->path));
	f->dirfd = open_parent(sp, EGR_SAFEPATH_READ, what, path, O_PATH, &name, err, errlen);
	if (f->dirfd < 0) {
		rc = f->dirfd;
		f->dirfd = -1;
		return rc;
	}
	rc = open_regular(f->dirfd, name, f, err, errlen);
	if (rc < 0)
		egr_safepath_file_close(f);
	return rc;
}

void egr_safepath_file_close(struct egr_safepath_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->fd = f->dirfd = -1;
}

/* ---- outputs ---- */

/* a directory egressd made: egressd's, with egressd's marker file inside */
static int is_our_dir(int dirfd, const char *name, const struct stat *st)
{
	struct stat now, mark;
	int fd, ours;

	if (st->st_uid != geteuid())
		return 0;
	fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ours = fstat(fd, &now) == 0 && same_file(&now, st) &&
	       fstatat(fd, EGR_SAFEPATH_MARKER, &mark, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(mark.st_mode) &&
	       mark.st_uid == geteuid();
	close(fd);
	return ours;
}

int egr_safepath_inspect(struct egr_safepath_out *o)
{
	if (fstatat(o->dirfd, o->name, &o->st, AT_SYMLINK_NOFOLLOW) < 0) {
		o->exists = EGR_SAFEPATH_NONE;
		return errno == ENOENT ? 0 : -errno;
	}
	if (S_ISREG(o->st.st_mode))
		o->exists = EGR_SAFEPATH_FILE;
	else if (S_ISDIR(o->st.st_mode))
		o->exists = is_our_dir(o->dirfd, o->name, &o->st) ? EGR_SAFEPATH_OURDIR : EGR_SAFEPATH_DIR;
	else
		o->exists = EGR_SAFEPATH_OTHER;
	return 0;
}

int egr_safepath_open_output(const struct egr_safepath *sp, const char *what, const char *path,
			     struct egr_safepath_out *o, char *err, size_t errlen)
{
	const char *name = "";
	int rc;

	memset(o, 0, sizeof(*o));
	snprintf(o->what, sizeof(o->what), "%s", what);
	show(path, o->path, sizeof(o->path));
	o->dirfd = open_parent(sp, EGR_SAFEPATH_WRITE, what, path, O_RDONLY, &name, err, errlen);
	if (o->dirfd < 0) {
		rc = o->dirfd;
		o->dirfd = -1;
		return rc;
	}
	snprintf(o->name, sizeof(o->name), "%s", name);	/* <= 255 bytes: check_syntax */
	if (faccessat(o->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "%s \"%s\": directory \"%.*s\" is not writable by egressd (uid %u): %s%s", what,
			 path, (int)(name - path - 1 > 0 ? name - path - 1 : 1), path, (unsigned)geteuid(),
			 strerror(errno),
			 errno == EROFS ? " (under systemd, ReadWritePaths= must name every allow_write root)" : "");
		goto fail;
	}
	rc = egr_safepath_inspect(o);
	if (rc < 0) {
		egr_errf(err, errlen, "%s \"%s\": fstatat: %s", what, path, strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	egr_safepath_out_close(o);
	return rc;
}

void egr_safepath_out_close(struct egr_safepath_out *o)
{
	if (o->dirfd >= 0)
		close(o->dirfd);
	o->dirfd = -1;
}

/* 1 if the directory st is dirfd or one of its ancestors */
static int dir_holds(const struct stat *st, int dirfd)
{
	int cur = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC), found = 0;

	for (int depth = 0; cur >= 0 && depth < EGR_SAFEPATH_MAX / 2; depth++) {
		struct stat a, b;
		int up;

		if (fstat(cur, &a) < 0)
			break;
		if (same_file(&a, st)) {
			found = 1;
			break;
		}
		up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(cur);
		cur = up;
		if (cur < 0 || fstat(cur, &b) < 0 || same_file(&a, &b))
			break;	/* "/" is its own parent */
	}
	if (cur >= 0)
		close(cur);
	return found;
}

/* the output against the job's inputs: 0, or -EINVAL with err set */
static int check_inputs(const struct egr_safepath_out *o, const struct egr_safepath_file *in, size_t n, char *err,
			size_t errlen)
{
	for (size_t i = 0; i < n && o->exists != EGR_SAFEPATH_NONE; i++) {
		if (same_file(&o->st, &in[i].st)) {
			egr_errf(err, errlen, "%s \"%s\" is the job's %s; choose another output", o->what, o->path,
				 in[i].what);
			return -EINVAL;
		}
		if (S_ISDIR(o->st.st_mode) && in[i].dirfd >= 0 && dir_holds(&o->st, in[i].dirfd)) {
			egr_errf(err, errlen, "%s \"%s\" is a directory holding the job's %s \"%s\"; choose another output",
				 o->what, o->path, in[i].what, in[i].path);
			return -EINVAL;
		}
	}
	return 0;
}

int egr_safepath_check_output(const struct egr_safepath_out *o, int overwrite, int want_dir,
			      const struct egr_safepath_file *inputs, size_t n, char *err, size_t errlen)
{
	int rc = check_inputs(o, inputs, n, err, errlen);

	if (rc < 0)
		return rc;
	switch (o->exists) {
	case EGR_SAFEPATH_NONE:
		return 0;
	case EGR_SAFEPATH_OTHER:
		egr_errf(err, errlen, "%s \"%s\" is %s; egressd never replaces one: choose another output", o->what,
			 o->path, kind_of(o->st.st_mode));
		return -EPERM;
	case EGR_SAFEPATH_DIR:
		egr_errf(err, errlen,
			 "%s \"%s\" is a directory egressd did not create; it replaces only its own: choose another output",
			 o->what, o->path);
		return -EPERM;
	case EGR_SAFEPATH_FILE:
	case EGR_SAFEPATH_OURDIR:
		break;
	}
	if (want_dir != (o->exists == EGR_SAFEPATH_OURDIR)) {
		egr_errf(err, errlen, "%s \"%s\" is %s, but the job's format writes a %s; choose another output",
			 o->what, o->path, kind_of(o->st.st_mode), want_dir ? "directory" : "file");
		return -EEXIST;
	}
	if (!overwrite) {
		egr_errf(err, errlen, "%s \"%s\" exists; set overwrite = yes to replace it", o->what, o->path);
		return -EEXIST;
	}
	return 0;
}

/* ---- temporaries and the commit ---- */

int egr_safepath_temp_name(const char *final, char *buf, size_t len)
{
	uint64_t r;
	ssize_t got;
	int n;

	do
		got = getrandom(&r, sizeof(r), 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(r))
		return got < 0 ? -errno : -EIO;
	n = snprintf(buf, len, ".%.64s.%016llx.egressd-tmp", final, (unsigned long long)r);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* a new directory dirfd/name, opened, checked to be the one made, with the marker inside */
static int make_temp_dir(int dirfd, const char *name, mode_t mode)
{
	struct stat st;
	int fd, mfd, e;

	if (mkdirat(dirfd, name, 0700) < 0)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
		close(fd);
		return -EAGAIN;	/* not the directory just made */
	}
	mfd = openat(fd, EGR_SAFEPATH_MARKER, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0600 | (mode & 0044));
	if (mfd < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	close(mfd);
	return fd;
}

int egr_safepath_create_temp(const struct egr_safepath_out *o, int is_dir, mode_t mode, char *tmpname,
			     size_t tmplen, int *fd, char *err, size_t errlen)
{
	int rc = -EEXIST;

	int named = tmpname[0] != '\0';	/* journalled by the caller: that name or none */

	*fd = -1;
	for (int i = 0; i < (named ? 1 : TEMP_TRIES) && rc == -EEXIST; i++) {
		rc = named ? 0 : egr_safepath_temp_name(o->name, tmpname, tmplen);
		if (rc < 0)
			break;
		if (is_dir) {
			rc = make_temp_dir(o->dirfd, tmpname, mode);
		} else {
			rc = openat(o->dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
			if (rc < 0)
				rc = -errno;
		}
	}
	if (rc >= 0 && fchmod(rc, mode & 0777) < 0) {
		int e = errno;

		close(rc);
		egr_safepath_remove_at(o->dirfd, tmpname);
		rc = -e;
	}
	if (rc < 0) {
		egr_errf(err, errlen, "%s \"%s\": creating a temporary %s beside it: %s", o->what, o->path,
			 is_dir ? "directory" : "file", strerror(-rc));
		return rc;
	}
	*fd = rc;
	return 0;
}

/* tmpname -> o->name unless something is there; -EEXIST if it is */
static int rename_noreplace(const struct egr_safepath_out *o, const char *tmpname, int is_dir)
{
	struct stat st;

	if (renameat2(o->dirfd, tmpname, o->dirfd, o->name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* a file system without RENAME_NOREPLACE: link(2) never replaces */
	if (!is_dir) {
		if (linkat(o->dirfd, tmpname, o->dirfd, o->name, 0) < 0)
			return -errno;
		unlinkat(o->dirfd, tmpname, 0);
		return 0;
	}
	if (fstatat(o->dirfd, o->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	return renameat(o->dirfd, tmpname, o->dirfd, o->name) < 0 ? -errno : 0;
}

/* swap the new directory in; the old one, once more checked to be egressd's, is removed */
static int exchange_dir(struct egr_safepath_out *o, const char *tmpname, char *err, size_t errlen)
{
	struct egr_safepath_out old = *o;
	int rc;

	if (renameat2(o->dirfd, tmpname, o->dirfd, o->name, RENAME_EXCHANGE) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "%s \"%s\": replacing the directory: %s", o->what, o->path, strerror(errno));
		return rc;
	}
	snprintf(old.name, sizeof(old.name), "%s", tmpname);
	if (egr_safepath_inspect(&old) < 0 || old.exists != EGR_SAFEPATH_OURDIR || !same_file(&old.st, &o->st)) {
		renameat2(o->dirfd, tmpname, o->dirfd, o->name, RENAME_EXCHANGE);
		egr_errf(err, errlen, "%s \"%s\" changed while the job ran; nothing was replaced", o->what, o->path);
		return -EAGAIN;
	}
	rc = egr_safepath_remove_at(o->dirfd, tmpname);
	if (rc < 0) {
		egr_errf(err, errlen, "%s \"%s\" was written, but removing the directory it replaced failed: %s",
			 o->what, o->path, strerror(-rc));
		return 1;
	}
	return 0;
}

int egr_safepath_commit(struct egr_safepath_out *o, const char *tmpname, int is_dir, int overwrite, char *err,
			size_t errlen)
{
	int rc = egr_safepath_inspect(o);

	if (rc < 0) {
		egr_errf(err, errlen, "%s \"%s\": fstatat: %s", o->what, o->path, strerror(-rc));
		return rc;
	}
	if (o->exists == EGR_SAFEPATH_NONE || !overwrite) {
		rc = rename_noreplace(o, tmpname, is_dir);
		if (rc == -EEXIST || rc == -ENOTEMPTY)
			egr_errf(err, errlen, "%s \"%s\" exists (it appeared while the job ran); set overwrite = yes to replace it",
				 o->what, o->path);
		else if (rc < 0)
			egr_errf(err, errlen, "%s \"%s\": renaming the finished output into place: %s", o->what,
				 o->path, strerror(-rc));
		return rc;
	}
	/* overwrite = yes: the policy again, on what is there now */
	rc = egr_safepath_check_output(o, 1, is_dir, NULL, 0, err, errlen);
	if (rc < 0)
		return rc;
	if (is_dir)
		return exchange_dir(o, tmpname, err, errlen);
	if (renameat(o->dirfd, tmpname, o->dirfd, o->name) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "%s \"%s\": renaming the finished output into place: %s", o->what, o->path,
			 strerror(errno));
		return rc;
	}
	return 0;
}

static int remove_depth(int dirfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;	/* a file, a link (never followed) or nothing */
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if (depth >= REMOVE_DEPTH_MAX)
		return -ELOOP;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		int r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = remove_depth(fd, de->d_name, depth + 1);	/* fd is d's */
		if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
		rc = -errno;
	return rc;
}

int egr_safepath_remove_at(int dirfd, const char *name)
{
	return remove_depth(dirfd, name, 0);
}

mode_t egr_safepath_output_mode(const struct egr_safepath_file *inputs, size_t n, int is_dir)
{
	mode_t m = 0644;

	for (size_t i = 0; i < n; i++)
		m &= inputs[i].st.st_mode | 0600;
	if (is_dir)
		m |= (m & 0444) >> 2;
	return m;
}
