/* client: the spool as egressctl sees it; see client.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/conf.h"
#include "daemon/base/log.h"
#include "daemon/client/client.h"

int egr_client_open(struct egr_client *c, const char *conf_path, char *err, size_t errlen)
{
	struct egr_conf conf;
	struct stat sb;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = egr_conf_load(conf_path, &conf, err, errlen);
	if (rc < 0)
		return rc;
	snprintf(c->conf, sizeof(c->conf), "%s", conf_path);
	snprintf(c->spool, sizeof(c->spool), "%s", conf.spool);
	if (stat(c->spool, &sb) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "spool \"%s\" (from %s): %s; is egressd running?", c->spool, conf_path,
			 strerror(-rc));
		return rc;
	}
	return 0;
}

int egr_client_path(const struct egr_client *c, char *buf, size_t len, const char *dir, const char *name)
{
	int n = name ? snprintf(buf, len, "%s/%s/%s", c->spool, dir, name) : snprintf(buf, len, "%s/%s", c->spool, dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

double egr_client_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void egr_client_new_id(const char *hint, char *id, size_t len)
{
	const char *base = hint ? strrchr(hint, '/') : NULL;
	char stem[49];
	size_t n = 0;
	uint32_t rnd = 0;

	base = base ? base + 1 : hint ? hint : "job";
	/* the stem: up to the first dot, letters, digits, _ and - only */
	for (const char *p = base; *p && *p != '.' && n < sizeof(stem) - 1; p++) {
		int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			 *p == '-' || *p == '_';
		stem[n++] = ok ? *p : '_';
	}
	stem[n] = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)egr_log_now_ns() ^ ((uint32_t)getpid() << 16);
	snprintf(id, len, "%s-%lld-%d-%08x", n ? stem : "job", (long long)time(NULL), (int)getpid(), rnd);
}

/* ---- submit ---- */

static int write_all(int fd, const char *text, size_t len)
{
	while (len) {
		ssize_t w = write(fd, text, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		text += w;
		len -= (size_t)w;
	}
	return 0;
}

int egr_client_submit(const struct egr_client *c, const char *id, const char *text, char *err, size_t errlen)
{
	char tmp[EGR_PATH_MAX + 300], to[EGR_PATH_MAX + 300];
	struct egr_jobspec js;
	int fd, rc;

	if (egr_client_path(c, tmp, sizeof(tmp), "tmp", id) < 0 || egr_client_path(c, to, sizeof(to), "incoming", id) < 0) {
		egr_errf(err, errlen, "job id \"%s\" makes a path too long", id);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s%s", tmp, strerror(-rc),
			 rc == -ENOENT ? " (no tmp/ in the spool: is egressd running?)" : "");
		return rc;
	}
	rc = write_all(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0) {
		egr_errf(err, errlen, "write(\"%s\"): %s", tmp, strerror(-rc));
		goto fail;
	}
	/* the daemon's own parser: a bad job is refused here, not found later in failed/ */
	rc = egr_job_parse(tmp, &js, err, errlen);
	if (rc < 0)
		goto fail;
	if (rename(tmp, to) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "rename(\"%s\", \"%s\"): %s", tmp, to, strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return rc;
}

int egr_client_request_cancel(const struct egr_client *c, const char *id, char *err, size_t errlen)
{
	char p[EGR_PATH_MAX + 300];
	int fd;

	if (strchr(id, '/') || egr_client_path(c, p, sizeof(p), "cancel", id) < 0) {
		egr_errf(err, errlen, "\"%s\" is not a job id", id);
		return -EINVAL;
	}
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 && errno != EEXIST) {
		int rc = -errno;
		egr_errf(err, errlen, "open(\"%s\"): %s", p, strerror(-rc));
		return rc;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* ---- lookup ---- */

const char *egr_client_state_name(enum egr_client_state s)
{
	static const char *const names[] = {
		[EGR_CS_UNKNOWN] = "unknown",	  [EGR_CS_QUEUED] = "queued", [EGR_CS_RUNNING] = "running",
		[EGR_CS_CANCELLING] = "cancelling", [EGR_CS_DONE] = "done",	 [EGR_CS_FAILED] = "failed",
		[EGR_CS_CANCELLED] = "cancelled",
	};
	return names[s];
}

int egr_client_ended(enum egr_client_state s)
{
	return s == EGR_CS_DONE || s == EGR_CS_FAILED || s == EGR_CS_CANCELLED;
}

int egr_client_exit_code(enum egr_client_state s)
{
	return s == EGR_CS_DONE ? EGR_CTL_OK
	       : s == EGR_CS_FAILED ? EGR_CTL_FAILED
	       : s == EGR_CS_CANCELLED ? EGR_CTL_CANCELLED : EGR_CTL_NO_JOB;
}

const char *egr_client_kv(const struct egr_client_job *j, const char *key)
{
	for (size_t i = 0; i < j->nkv; i++)
		if (!strcmp(j->kv[i].key, key))
			return j->kv[i].value;
	return NULL;
}

static int kv_handler(void *user, const char *section, const char *name, const char *value, char *err,
		      size_t errlen)
{
	struct egr_client_job *j = user;

	if (j->nkv < EGR_CLIENT_KV_MAX) {
		snprintf(j->kv[j->nkv].key, sizeof(j->kv[j->nkv].key), "%s", name);
		snprintf(j->kv[j->nkv].value, sizeof(j->kv[j->nkv].value), "%s", value);
		j->nkv++;
	}
	return 1;
}

/* The first line of an .error record into j->error; 1 if the file exists. */
static int read_error(const char *path, struct egr_client_job *j)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	if (!fgets(j->error, sizeof(j->error), f))
		j->error[0] = 0;
	j->error[strcspn(j->error, "\n")] = 0;
	fclose(f);
	return 1;
}

/* An INI file's keys into j->kv; 1 if it exists. */
static int read_kv(const char *path, struct egr_client_job *j)
{
	char err[256];

	j->nkv = 0;
	return egr_conf_ini_parse(path, kv_handler, j, err, sizeof(err)) != -ENOENT;
}

static int from_records(const struct egr_client *c, const char *id, struct egr_client_job *j)
{
	char p[EGR_PATH_MAX + 300];

	snprintf(p, sizeof(p), "%s/cancelled/%s.error", c->spool, id);
	if (read_error(p, j))
		return j->state = EGR_CS_CANCELLED, 1;
	snprintf(p, sizeof(p), "%s/failed/%s.error", c->spool, id);
	if (read_error(p, j))
		return j->state = EGR_CS_FAILED, 1;
	snprintf(p, sizeof(p), "%s/done/%s.result", c->spool, id);
	if (read_kv(p, j))
		return j->state = EGR_CS_DONE, 1;
	return 0;
}

static double num(const struct egr_client_job *j, const char *key, double dflt)
{
	const char *v = egr_client_kv(j, key);

	return v && *v ? strtod(v, NULL) : dflt;
}

static int from_status(const struct egr_client *c, const char *id, struct egr_client_job *j)
{
	char p[EGR_PATH_MAX + 300];
	const char *state;

	snprintf(p, sizeof(p), "%s/status/%s.status", c->spool, id);
	if (!read_kv(p, j) || !(state = egr_client_kv(j, "state")))
		return 0;
	j->state = !strcmp(state, "running") ? EGR_CS_RUNNING
		   : !strcmp(state, "cancelling") ? EGR_CS_CANCELLING : EGR_CS_QUEUED;
	return 1;
}

/* The job file's owner and mtime, wherever it is now. */
static void job_file(const struct egr_client *c, const char *id, struct egr_client_job *j)
{
	static const char *const dirs[] = { "active", "incoming", "done", "failed", "cancelled" };
	char p[EGR_PATH_MAX + 300];
	struct stat sb;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		egr_client_path(c, p, sizeof(p), dirs[i], id);
		if (lstat(p, &sb) == 0) {
			j->uid = (long)sb.st_uid;
			j->submitted = (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec / 1e9;
			return;
		}
	}
}

static void fill_numbers(struct egr_client_job *j)
{
	j->frames_done = (uint64_t)num(j, "frames_done", j->state == EGR_CS_DONE ? num(j, "frames", 0) : 0);
	j->frames_total = (uint64_t)num(j, "frames_total", num(j, "frames", 0));
	j->frames_per_s = num(j, "frames_per_s", 0);
	j->eta_s = num(j, "eta_s", -1);
	if (j->uid < 0)
		j->uid = (long)num(j, "owner_uid", -1);
}

/* shared_spool (docs/SCALING.md): 1 if id is in a daemon's directory active/<host_id>.<instance>/ */
static int in_active_subdir(const struct egr_client *c, const char *id)
{
	char p[EGR_PATH_MAX + 600];
	struct dirent *de;
	int found = 0;
	DIR *d;

	egr_client_path(c, p, sizeof(p), "active", NULL);
	if (!(d = opendir(p)))
		return 0;
	while (!found && (de = readdir(d)))
		if (de->d_name[0] != '.' && snprintf(p, sizeof(p), "%s/active/%s/%s", c->spool, de->d_name, id) > 0)
			found = access(p, F_OK) == 0;
	closedir(d);
	return found;
}

int egr_client_lookup(const struct egr_client *c, const char *id, struct egr_client_job *j)
{
	char p[EGR_PATH_MAX + 300];
	int found;

	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->uid = -1;
	j->eta_s = -1;
	if (!*id || strchr(id, '/'))
		return -ENOENT;
	found = from_records(c, id, j) || from_status(c, id, j);
	if (!found) {
		egr_client_path(c, p, sizeof(p), "active", id);
		found = access(p, F_OK) == 0 || in_active_subdir(c, id);
		egr_client_path(c, p, sizeof(p), "incoming", id);
		found = found || access(p, F_OK) == 0;
		/* it may have ended meanwhile: the record is written before the job file moves */
		if (!from_records(c, id, j) && found)
			j->state = EGR_CS_QUEUED;
		found = j->state != EGR_CS_UNKNOWN;
	}
	if (!found)
		return -ENOENT;
	job_file(c, id, j);
	fill_numbers(j);
	return 0;
}

/* ---- waiting ---- */

int egr_client_watch(const struct egr_client *c)
{
	static const char *const dirs[] = { "done", "failed", "cancelled", "status", "cancel" };
	char p[EGR_PATH_MAX + 300];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	for (size_t i = 0; fd >= 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		egr_client_path(c, p, sizeof(p), dirs[i], NULL);
		inotify_add_watch(fd, p, IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE);
	}
	return fd;
}

void egr_client_sleep(int w, int ms)
{
	struct pollfd p = { w, POLLIN, 0 };
	char buf[4096];

	if (w < 0) {
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		return;
	}
	if (poll(&p, 1, ms) > 0)
		while (read(w, buf, sizeof(buf)) > 0)
			;
}

/* ---- listing ---- */

struct listed {
	char *id;
	double t;
};

static int by_time(const void *a, const void *b)
{
	const struct listed *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t ? 1 : strcmp(x->id, y->id);
}

void egr_client_free_list(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Append dir's job files to *v; 0 or -errno. */
static int list_dir(const struct egr_client *c, const char *dir, struct listed **v, size_t *n, size_t *cap)
{
	char p[EGR_PATH_MAX + 300];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	egr_client_path(c, p, sizeof(p), dir, NULL);
	if (!(d = opendir(p)))
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		size_t l = strlen(s);
		if (s[0] == '.' || (l > 7 && !strcmp(s + l - 7, ".result")) || (l > 6 && !strcmp(s + l - 6, ".error")) ||
		    (l > 6 && !strcmp(s + l - 6, ".lease")) ||
		    (l > 4 && !strcmp(s + l - 4, ".tmp")) || fstatat(dirfd(d), s, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct listed *nv = realloc(*v, nc * sizeof(*nv));
			if (!nv)
				break;
			*v = nv;
			*cap = nc;
		}
		if (!((*v)[*n].id = strdup(s)))
			break;
		(*v)[(*n)++].t = (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec / 1e9;
	}
	closedir(d);
	return de ? -ENOMEM : 0;
}

/* shared_spool: the jobs of every daemon's active/<host_id>.<instance>/ */
static int list_active_subdirs(const struct egr_client *c, struct listed **v, size_t *n, size_t *cap)
{
	char p[EGR_PATH_MAX + 300], sub[600];
	struct dirent *de;
	struct stat sb;
	int rc = 0;
	DIR *d;

	egr_client_path(c, p, sizeof(p), "active", NULL);
	if (!(d = opendir(p)))
		return 0;
	while (rc == 0 && (de = readdir(d)))
		if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(sb.st_mode) && snprintf(sub, sizeof(sub), "active/%s", de->d_name) < (int)sizeof(sub))
			rc = list_dir(c, sub, v, n, cap);
	closedir(d);
	return rc;
}

int egr_client_list(const struct egr_client *c, int unfinished, char ***ids, size_t *n, char *err, size_t errlen)
{
	static const char *const dirs[] = { "incoming", "active", "done", "failed", "cancelled" };
	struct listed *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0;

	*ids = NULL;
	*n = 0;
	for (size_t i = 0; i < (unfinished ? 2 : sizeof(dirs) / sizeof(dirs[0])) && rc == 0; i++)
		rc = list_dir(c, dirs[i], &v, &cnt, &cap);
	if (rc == 0)
		rc = list_active_subdirs(c, &v, &cnt, &cap);
	if (rc == 0 && cnt && !(*ids = malloc(cnt * sizeof(**ids))))
		rc = -ENOMEM;
	if (rc < 0) {
		egr_errf(err, errlen, "listing the spool \"%s\": %s", c->spool, strerror(-rc));
		for (size_t i = 0; i < cnt; i++)
			free(v[i].id);
		free(v);
		return rc;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), by_time);
	for (size_t i = 0; i < cnt; i++) {
		if (*n && !strcmp((*ids)[*n - 1], v[i].id))
			free(v[i].id);	/* seen in two directories: it moved while listed */
		else
			(*ids)[(*n)++] = v[i].id;
	}
	free(v);
	return 0;
}
