/* spool: job directories, claimed and finished by rename(2); see spool.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/fault.h"
#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/spool.h"

#define NDIRS 5
#define SEEN_MAX 64		/* unmovable entries remembered, so each is reported once */
#define RECORD_MODE 0640	/* .result and .error: the spool's group reads them, the world does not */
#define DROP_MODE 03770		/* tmp/ and incoming/: setgid, sticky, group-writable */

static const char *const dir_names[NDIRS] = { "incoming", "active", "done", "failed", "tmp" };

/* shared_spool: this daemon's own directory under active/ (egr_spool_open_shared); "" otherwise */
static char active_sub[EGR_SPOOL_ID_MAX];

int egr_spool_path(char *buf, size_t len, const char *spool, enum egr_spool_dir d, const char *name)
{
	const char *sub = d == EGR_SPOOL_ACTIVE ? active_sub : "";
	int n = name ? snprintf(buf, len, "%s/%s%s%s/%s", spool, dir_names[d], *sub ? "/" : "", sub, name)
		     : snprintf(buf, len, "%s/%s%s%s", spool, dir_names[d], *sub ? "/" : "", sub);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int egr_spool_init(const char *spool, char *err, size_t errlen)
{
	char p[4096];

	if (mkdir(spool, 0750) < 0 && errno != EEXIST) {
		int rc = -errno;
		egr_errf(err, errlen, "mkdir(\"%s\"): %s", spool, strerror(errno));
		return rc;
	}
	for (int d = 0; d < NDIRS; d++) {
		int drop = d == EGR_SPOOL_INCOMING || d == EGR_SPOOL_TMP;

		if (egr_spool_path(p, sizeof(p), spool, (enum egr_spool_dir)d, NULL) < 0) {
			egr_errf(err, errlen, "spool path \"%s\" is too long", spool);
			return -ENAMETOOLONG;
		}
		if (mkdir(p, 0750) < 0) {
			int rc = -errno;

			if (errno == EEXIST)
				continue;	/* the administrator's modes stay */
			egr_errf(err, errlen, "mkdir(\"%s\"): %s", p, strerror(errno));
			return rc;
		}
		/* chmod, not mkdir's mode: the umask and mkdir's handling of the setgid bit are in the way */
		if (drop && chmod(p, DROP_MODE) < 0) {
			int rc = -errno;
			egr_errf(err, errlen, "chmod(\"%s\", %o): %s", p, DROP_MODE, strerror(errno));
			return rc;
		}
	}
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int egr_spool_eligible(const char *name)
{
	static const char *const skip[] = { "~", ".tmp", ".part", ".swp", ".result", ".error" };

	if (!name[0] || name[0] == '.' || strlen(name) >= EGR_SPOOL_ID_MAX)
		return 0;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (ends_with(name, skip[i]))
			return 0;
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void egr_spool_free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int list_dir(const char *spool, enum egr_spool_dir d, int all, char ***names, size_t *n, char *err,
		    size_t errlen)
{
	char p[4096];
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	*names = NULL;
	*n = 0;
	if (egr_spool_path(p, sizeof(p), spool, d, NULL) < 0)
		return -ENAMETOOLONG;
	dir = opendir(p);
	if (!dir) {
		rc = -errno;
		egr_errf(err, errlen, "opendir(\"%s\"): %s", p, strerror(errno));
		return rc;
	}
	while ((de = readdir(dir))) {
		if (!egr_spool_eligible(de->d_name))
			continue;
		if (!all && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				goto fail;
			}
			v = nv;
			cap = nc;
		}
		if (!(v[cnt] = strdup(de->d_name))) {
			rc = -ENOMEM;
			goto fail;
		}
		cnt++;
	}
	closedir(dir);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*names = v;
	*n = cnt;
	return 0;
fail:
	closedir(dir);
	egr_spool_free_list(v, cnt);
	egr_errf(err, errlen, "listing \"%s\": out of memory", p);
	return rc;
}

int egr_spool_list(const char *spool, enum egr_spool_dir d, char ***names, size_t *n, char *err,
		   size_t errlen)
{
	return list_dir(spool, d, 0, names, n, err, errlen);
}

int egr_spool_list_all(const char *spool, enum egr_spool_dir d, char ***names, size_t *n, char *err,
		       size_t errlen)
{
	return list_dir(spool, d, 1, names, n, err, errlen);
}

int egr_spool_claim(const char *spool, const char *name, char *err, size_t errlen)
{
	char from[4096], to[4096];

	if (egr_spool_path(from, sizeof(from), spool, EGR_SPOOL_INCOMING, name) < 0 ||
	    egr_spool_path(to, sizeof(to), spool, EGR_SPOOL_ACTIVE, name) < 0) {
		egr_errf(err, errlen, "job name \"%s\" makes a path too long", name);
		return -ENAMETOOLONG;
	}
	if (rename(from, to) < 0) {
		int rc = -errno;
		egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", from, to, strerror(errno));
		return rc;
	}
	return 0;
}

/*
 * path = text, mode RECORD_MODE whatever the umask, through path.tmp: made
 * with O_EXCL|O_NOFOLLOW (a stale one from a crash is removed first), so no
 * name planted in the directory is followed or reused.
 */
static int write_record(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[4300];
	const char *p = text, *end = text + strlen(text);
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, RECORD_MODE);
	if (fd < 0 || fchmod(fd, RECORD_MODE) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "creating \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	for (ssize_t w; p < end; p += w) {
		w = write(fd, p, (size_t)(end - p));
		if (w < 0 && errno == EINTR) {
			w = 0;
		} else if (w < 0) {
			rc = -errno;
			egr_errf(err, errlen, "write(\"%s\"): %s", tmp, strerror(errno));
			goto out;
		}
	}
	/* test builds: die with the record whole under its .tmp name, or just after the rename */
	if (fsync(fd) < 0 || (egr_fault_kill("EGR_FAULT_ATOMIC_KILL", path), rename(tmp, path) < 0)) {
		rc = -errno;
		egr_errf(err, errlen, "fsync/rename(\"%s\"): %s", tmp, strerror(errno));
	} else {
		egr_fault_kill("EGR_FAULT_ATOMIC_KILL_AFTER", path);
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/*
 * An .error is one printable line: the reason may quote a job file's own
 * bytes (a value with an ESC, a CR), and a reader's terminal or a tool that
 * parses the record must not meet them raw.  Control bytes become '?'.
 */
static void one_line(const char *text, char *buf, size_t len)
{
	size_t i;

	for (i = 0; text[i] && i + 2 < len; i++)
		buf[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	if (i && buf[i - 1] == '?' && text[i - 1] == '\n')
		i--;	/* the line's own end */
	buf[i++] = '\n';
	buf[i] = '\0';
}

int egr_spool_finish(const char *spool, const char *id, int ok, const char *text, char *err,
		     size_t errlen)
{
	char from[4096];

	if (egr_spool_path(from, sizeof(from), spool, EGR_SPOOL_ACTIVE, id) < 0) {
		egr_errf(err, errlen, "job name \"%s\" makes a path too long", id);
		return -ENAMETOOLONG;
	}
	return egr_spool_finish_from(spool, from, id, ok, text, err, errlen);
}

int egr_spool_finish_from(const char *spool, const char *from, const char *id, int ok, const char *text,
			  char *err, size_t errlen)
{
	enum egr_spool_dir d = ok ? EGR_SPOOL_DONE : EGR_SPOOL_FAILED;
	char side[4200], to[4096], dir[4096], line[4096];
	const char *name = id;
	int rc;

	if (egr_spool_path(to, sizeof(to), spool, d, name) < 0 ||
	    egr_spool_path(dir, sizeof(dir), spool, d, NULL) < 0) {
		egr_errf(err, errlen, "job name \"%s\" makes a path too long", name);
		return -ENAMETOOLONG;
	}
	snprintf(side, sizeof(side), "%s%s", to, ok ? ".result" : ".error");
	/* the report first: a crash in between reruns the job, never loses it */
	if (!ok) {
		one_line(text, line, sizeof(line));
		text = line;
	}
	rc = write_record(side, text, err, errlen);
	if (rc)
		return rc;
	if (rename(from, to) < 0 && errno != ENOENT) {
		rc = -errno;
		egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", from, to, strerror(errno));
		return rc;
	}
	egr_fs_fsync_dir(dir);
	return 0;
}

/* path: a directory this process may write; 0, -ENOENT, or -errno with err set */
static int check_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int rc = -errno;

		if (rc != -ENOENT)
			egr_errf(err, errlen, "spool: stat(\"%s\"): %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		egr_errf(err, errlen, "spool: \"%s\" is not a directory", path);
		return -ENOTDIR;
	}
	if (faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) < 0) {
		int rc = -errno;
		egr_errf(err, errlen, "spool: \"%s\" is not writable by uid %u: %s%s", path, (unsigned)geteuid(),
			 strerror(errno), errno == EROFS ? " (under systemd, ReadWritePaths= must name the spool)" : "");
		return rc;
	}
	return 0;
}

int egr_spool_check(const char *spool, char *err, size_t errlen)
{
	char p[4096];
	int rc = check_dir(spool, err, errlen);

	if (rc == -ENOENT) {
		const char *slash = strrchr(spool, '/');

		snprintf(p, sizeof(p), "%.*s", slash && slash != spool ? (int)(slash - spool) : 1, spool);
		rc = check_dir(p, err, errlen);
		if (rc == -ENOENT)
			egr_errf(err, errlen, "spool: neither \"%s\" nor its parent \"%s\" exists", spool, p);
		return rc;
	}
	for (int d = 0; d < NDIRS && rc == 0; d++) {
		if (egr_spool_path(p, sizeof(p), spool, (enum egr_spool_dir)d, NULL) < 0) {
			egr_errf(err, errlen, "spool path \"%s\" is too long", spool);
			return -ENAMETOOLONG;
		}
		rc = check_dir(p, err, errlen);
		if (rc == -ENOENT)
			rc = 0;	/* created at start */
	}
	return rc;
}

/* ---- job names ---- */

/*
 * Length of the character at s if it is printable UTF-8, else 0: no C0 or C1
 * control, no DEL, no overlong form or surrogate, and none of the characters
 * that reorder or break a log line (U+2028/2029, the bidi embeddings,
 * overrides and isolates U+202A..202E, U+2066..2069).
 */
static size_t good_char(const unsigned char *s)
{
	static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7f;
	len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (!len || s[0] > 0xf4)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f ||
	    cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return 0;
	return len;
}

int egr_spool_name_ok(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n;

	while (*s) {
		n = good_char(s);
		if (!n)
			return 0;
		s += n;
	}
	return 1;
}

void egr_spool_name_show(const char *name, char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0;

	while (*s && o + 1 < len) {
		size_t n = good_char(s);

		if (!n || o + n >= len) {
			buf[o++] = '_';
			s++;
			continue;
		}
		memcpy(buf + o, s, n);
		o += n;
		s += n;
	}
	if (len)
		buf[o] = '\0';
}

/* ---- one daemon's spool ---- */

struct egr_spool {
	char path[4096];
	int dfd[NDIRS];		/* the directories, O_PATH (active: this daemon's own) */
	int active_root;	/* shared_spool: <spool>/active, O_PATH; else -1 */
	int lock_fd;
	struct {
		dev_t dev;
		ino_t ino;
	} seen[SEEN_MAX];	/* entries that could not be moved, reported once */
	unsigned nseen;
};

/* take <spool>/.lock (shared: F_RDLCK); -EBUSY with the holder's pid in err */
static int take_lock(struct egr_spool *sp, int shared, char *err, size_t errlen)
{
	struct flock fl = { .l_type = shared ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	char p[4200], pid[32] = "";
	ssize_t n;

	snprintf(p, sizeof(p), "%s/.lock", sp->path);
	sp->lock_fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (sp->lock_fd < 0) {
		int rc = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", p, strerror(errno));
		return rc;
	}
	/* an OFD lock: bound to this open file, so a forked child never holds it by accident */
	if (fcntl(sp->lock_fd, F_OFD_SETLK, &fl) < 0) {
		int e = errno;

		if (shared && (e == ENOLCK || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP)) {	/* no locks here */
			egr_warn("fcntl(\"%s\", F_OFD_SETLK): %s: a daemon without shared_spool on this spool "
				 "cannot be told apart", p, strerror(e));
			return 0;
		}
		if (e != EAGAIN && e != EACCES) {
			egr_errf(err, errlen, "fcntl(\"%s\", F_OFD_SETLK): %s", p, strerror(e));
			return -e;
		}
		n = pread(sp->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		if (!strncmp(pid, "shared", 6)) {
			egr_errf(err, errlen, "spool %s is served by egressd daemons with shared_spool = yes; set it "
				 "here too (docs/SCALING.md) or give this daemon its own spool", sp->path);
			return -EBUSY;
		}
		pid[strspn(pid, "0123456789")] = '\0';
		egr_errf(err, errlen, "spool %s is in use by %s egressd (pid %s)%s; give each daemon its own spool",
			 sp->path, shared ? "an" : "another", pid[0] ? pid : "unknown",
			 shared ? " without shared_spool = yes" : "");
		return -EBUSY;
	}
	if (shared) {
		/* no pid: several hold it; this tells a daemon without shared_spool who they are */
		if (pwrite(sp->lock_fd, "shared\n", 7, 0) != 7)
			egr_warn("writing \"%s\": %s", p, strerror(errno));
		return 0;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(sp->lock_fd, 0) < 0 || pwrite(sp->lock_fd, pid, (size_t)n, 0) != n)
		egr_warn("writing the pid into \"%s\": %s", p, strerror(errno));
	return 0;
}

static int open_shared(struct egr_spool *sp, const char *sub, char *err, size_t errlen);

/* egr_spool_open, or with sub (not NULL) egr_spool_open_shared */
static int spool_open(const char *spool, const char *sub, struct egr_spool **out, char *err, size_t errlen)
{
	struct egr_spool *sp = calloc(1, sizeof(*sp));
	char p[4096];
	int rc;

	*out = NULL;
	if (!sp)
		return -ENOMEM;
	sp->lock_fd = sp->active_root = -1;
	for (int d = 0; d < NDIRS; d++)
		sp->dfd[d] = -1;
	snprintf(sp->path, sizeof(sp->path), "%s", spool);
	rc = egr_spool_init(spool, err, errlen);
	if (rc == 0)
		rc = take_lock(sp, sub != NULL, err, errlen);
	if (rc == 0 && sub)
		rc = open_shared(sp, sub, err, errlen);
	for (int d = 0; d < NDIRS && rc == 0; d++) {
		egr_spool_path(p, sizeof(p), spool, (enum egr_spool_dir)d, NULL);
		sp->dfd[d] = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (sp->dfd[d] < 0) {
			rc = -errno;
			egr_errf(err, errlen, "open(\"%s\"): %s", p, strerror(errno));
		}
	}
	if (rc < 0) {
		egr_spool_close(sp);
		return rc;
	}
	*out = sp;
	return 0;
}

int egr_spool_open(const char *spool, struct egr_spool **out, char *err, size_t errlen)
{
	return spool_open(spool, NULL, out, err, errlen);
}

int egr_spool_open_shared(const char *spool, const char *sub, struct egr_spool **out, char *err, size_t errlen)
{
	return spool_open(spool, sub, out, err, errlen);
}

void egr_spool_close(struct egr_spool *sp)
{
	if (!sp)
		return;
	if (sp->active_root >= 0) {
		close(sp->active_root);
		active_sub[0] = 0;
	}
	for (int d = 0; d < NDIRS; d++)
		if (sp->dfd[d] >= 0)
			close(sp->dfd[d]);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);	/* releases the lock */
	free(sp);
}

static int exists_at(int dfd, const char *name, const char *suffix)
{
	char p[EGR_SPOOL_ID_MAX + 16];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", name, suffix);
	return fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- shared spools (daemon/supervisor/lease.h) ---- */

int egr_spool_shared(void)
{
	return active_sub[0] != 0;
}

/* <spool>/active/<sub>/ created, opened as this daemon's active directory */
static int open_shared(struct egr_spool *sp, const char *sub, char *err, size_t errlen)
{
	char p[4400];
	int n = snprintf(active_sub, sizeof(active_sub), "%s", sub);

	if (n <= 0 || (size_t)n >= sizeof(active_sub) || strchr(sub, '/') || sub[0] == '.') {
		active_sub[0] = 0;
		egr_errf(err, errlen, "shared spool: \"%s\" is not a directory name", sub);
		return -EINVAL;
	}
	snprintf(p, sizeof(p), "%s/active", sp->path);
	sp->active_root = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sp->active_root < 0 || (mkdirat(sp->active_root, sub, 0750) < 0 && errno != EEXIST)) {
		int rc = -errno;
		egr_errf(err, errlen, "mkdir(\"%s/%s\"): %s", p, sub, strerror(errno));
		active_sub[0] = 0;
		return rc;
	}
	return 0;
}

/*
 * 1 if id is in a directory under dfd: depth 0 looks in dfd itself, 1 in
 * its subdirectories too (every daemon's active/ of a shared spool), 2 in
 * theirs (jobs being requeued, lease.c).  skip: a subdirectory to leave out.
 */
static int in_tree(int dfd, const char *id, int depth, const char *skip)
{
	struct dirent *de;
	int found = exists_at(dfd, id, ""), fd;
	DIR *d;

	if (found || depth == 0 || (fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return found;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while (!found && (de = readdir(d))) {
		/* daemons' directories, then their requeue directories (".reap-...") */
		int want = depth == 2 ? de->d_name[0] != '.' : !strncmp(de->d_name, ".reap-", 6);
		int sub;
		if (!want || (skip && !strcmp(de->d_name, skip)) || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		if ((sub = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		found = in_tree(sub, id, depth - 1, NULL);
		close(sub);
	}
	closedir(d);
	return found;
}

/* 1 if id is in this daemon's active directory, or (shared) in any daemon's */
static int in_active(struct egr_spool *sp, const char *id)
{
	return sp->active_root >= 0 ? in_tree(sp->active_root, id, 2, NULL) : exists_at(sp->dfd[EGR_SPOOL_ACTIVE], id, "");
}

int egr_spool_active_elsewhere(const char *spool, const char *id)
{
	char p[4200];
	int fd, found;

	if (!active_sub[0] || snprintf(p, sizeof(p), "%s/active", spool) >= (int)sizeof(p) ||
	    (fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0;
	found = in_tree(fd, id, 2, active_sub);
	close(fd);
	return found;
}

/* the first of base, base.2, base.3, ... with no trace in active/, done/ or failed/ */
static int make_id(struct egr_spool *sp, const char *base, char *id, size_t len)
{
	for (unsigned seq = 1; seq < 1000000; seq++) {
		int n = seq == 1 ? snprintf(id, len, "%s", base) : snprintf(id, len, "%s.%u", base, seq);

		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		if (!in_active(sp, id) && !exists_at(sp->dfd[EGR_SPOOL_DONE], id, "") &&
		    !exists_at(sp->dfd[EGR_SPOOL_DONE], id, ".result") &&
		    !exists_at(sp->dfd[EGR_SPOOL_FAILED], id, "") && !exists_at(sp->dfd[EGR_SPOOL_FAILED], id, ".error"))
			return 0;
	}
	return -EEXIST;
}

/* 1 if st was reported before; else remember it and return 0 */
static int seen_before(struct egr_spool *sp, const struct stat *st)
{
	unsigned n = sp->nseen < SEEN_MAX ? sp->nseen : SEEN_MAX;

	for (unsigned i = 0; i < n; i++)
		if (sp->seen[i].dev == st->st_dev && sp->seen[i].ino == st->st_ino)
			return 1;
	sp->seen[sp->nseen % SEEN_MAX].dev = st->st_dev;
	sp->seen[sp->nseen % SEEN_MAX].ino = st->st_ino;
	sp->nseen++;
	return 0;
}

static const char *kind_of(mode_t m)
{
	return S_ISREG(m) ? "a file" : S_ISLNK(m) ? "a symbolic link" : S_ISDIR(m) ? "a directory" :
	       S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" :
	       "a file of unknown kind";
}

/*
 * The claimed entry active/id, which nobody but the daemon can change now:
 * NULL if it is a job file egressd can take, else why not (into why).
 */
static const char *judge(struct egr_spool *sp, struct egr_spool_job *job, char *why, size_t len)
{
	struct stat st, fst;
	int fd;

	if (fstatat(sp->dfd[EGR_SPOOL_ACTIVE], job->id, &st, AT_SYMLINK_NOFOLLOW) < 0)
		egr_errf(why, len, "job file: fstatat: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		egr_errf(why, len, "job file is %s; submit a regular file", kind_of(st.st_mode));
	else if (st.st_nlink != 1)
		egr_errf(why, len, "job file has %lu hard links; submit a file of its own (copy, don't link)",
			 (unsigned long)st.st_nlink);
	else if (st.st_size > EGR_SPOOL_JOB_MAX)
		egr_errf(why, len, "job file is %lld bytes; the limit is %d", (long long)st.st_size, EGR_SPOOL_JOB_MAX);
	else
		why[0] = '\0';
	if (why[0])
		return why;
	fd = openat(sp->dfd[EGR_SPOOL_ACTIVE], job->id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		egr_errf(why, len, "job file is not readable by egressd (uid %u): %s; make it group-readable before "
			 "renaming it into incoming/", (unsigned)geteuid(), strerror(errno));
		return why;
	}
	if (fstat(fd, &fst) < 0 || st.st_ino != fst.st_ino || st.st_dev != fst.st_dev)
		egr_errf(why, len, "job file changed while it was claimed; submit it again");
	close(fd);
	job->uid = st.st_uid;
	job->gid = st.st_gid;
	job->size = st.st_size;
	return why[0] ? why : NULL;
}

/* refuse the claimed active/<id>: to failed/ with why as its .error */
static int refuse(struct egr_spool *sp, const struct egr_spool_job *job, const char *why, char *err, size_t errlen)
{
	char line[1024], err2[512];
	int rc;

	snprintf(line, sizeof(line), "%s\n", why);
	rc = egr_spool_finish(sp->path, job->id, 0, line, err2, sizeof(err2));
	if (rc < 0) {
		egr_errf(err, errlen, "job %s: %s; and moving it to failed/: %s", job->id, why, err2);
		return rc;
	}
	egr_errf(err, errlen, "%s", why);
	return EGR_SPOOL_REFUSED;
}

int egr_spool_claim_job(struct egr_spool *sp, const char *name, struct egr_spool_job *job, char *err,
			size_t errlen)
{
	char shown[EGR_SPOOL_NAME_MAX], why[512] = "";
	struct stat st;
	int rc;

	memset(job, 0, sizeof(*job));
	/* printable, and cut (between characters) to what an id may start with */
	egr_spool_name_show(name, shown, sizeof(shown));
	if (fstatat(sp->dfd[EGR_SPOOL_INCOMING], name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "incoming/%s: fstatat: %s", shown, strerror(errno));
		return rc;
	}
	if (!egr_spool_name_ok(name) || strlen(name) >= EGR_SPOOL_NAME_MAX)
		egr_errf(why, sizeof(why), "job file name \"%s\" (bad bytes shown as '_') %s; rename it", shown,
			 strlen(name) >= EGR_SPOOL_NAME_MAX ? "is too long" :
							      "has control characters or is not UTF-8");
	rc = make_id(sp, shown, job->id, sizeof(job->id));
	if (rc == 0 && renameat2(sp->dfd[EGR_SPOOL_INCOMING], name, sp->dfd[EGR_SPOOL_ACTIVE], job->id,
				 RENAME_NOREPLACE) < 0)
		rc = -errno;
	if (rc == -EINVAL || rc == -ENOSYS)	/* no RENAME_NOREPLACE here; make_id checked */
		rc = renameat(sp->dfd[EGR_SPOOL_INCOMING], name, sp->dfd[EGR_SPOOL_ACTIVE], job->id) < 0 ? -errno : 0;
	if (rc == -ENOENT)
		return rc;
	if (rc < 0) {
		if (seen_before(sp, &st))
			return -EALREADY;
		egr_errf(err, errlen, "incoming/%s is %s egressd cannot claim (%s); left where it is: remove it",
			 shown, kind_of(st.st_mode), strerror(-rc));
		return rc;
	}
	if (!why[0] && !judge(sp, job, why, sizeof(why)))
		return 0;
	return refuse(sp, job, why, err, errlen);
}
