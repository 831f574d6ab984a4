/* spool: job directories, claimed and finished by rename(2); see spool.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/spool.h"

static const char *const dir_names[] = { "incoming", "active", "done", "failed" };

int egr_spool_path(char *buf, size_t len, const char *spool, enum egr_spool_dir d, const char *name)
{
	int n = name ? snprintf(buf, len, "%s/%s/%s", spool, dir_names[d], name)
		     : snprintf(buf, len, "%s/%s", spool, dir_names[d]);
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
	for (int d = 0; d < 4; d++) {
		if (egr_spool_path(p, sizeof(p), spool, (enum egr_spool_dir)d, NULL) < 0) {
			egr_errf(err, errlen, "spool path \"%s\" is too long", spool);
			return -ENAMETOOLONG;
		}
		if (mkdir(p, 0750) < 0 && errno != EEXIST) {
			int rc = -errno;
			egr_errf(err, errlen, "mkdir(\"%s\"): %s", p, strerror(errno));
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

	if (!name[0] || name[0] == '.' || strlen(name) >= 200)
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

int egr_spool_list(const char *spool, enum egr_spool_dir d, char ***names, size_t *n, char *err,
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
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
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

int egr_spool_finish(const char *spool, const char *name, int ok, const char *text, char *err,
		     size_t errlen)
{
	enum egr_spool_dir d = ok ? EGR_SPOOL_DONE : EGR_SPOOL_FAILED;
	char side[4200], from[4096], to[4096], dir[4096];
	int rc;

	if (egr_spool_path(from, sizeof(from), spool, EGR_SPOOL_ACTIVE, name) < 0 ||
	    egr_spool_path(to, sizeof(to), spool, d, name) < 0 ||
	    egr_spool_path(dir, sizeof(dir), spool, d, NULL) < 0) {
		egr_errf(err, errlen, "job name \"%s\" makes a path too long", name);
		return -ENAMETOOLONG;
	}
	snprintf(side, sizeof(side), "%s%s", to, ok ? ".result" : ".error");
	/* the report first: a crash in between reruns the job, never loses it */
	rc = egr_fs_write_atomic(side, text, err, errlen);
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
