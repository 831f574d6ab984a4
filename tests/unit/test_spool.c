/*
 * test_spool: the spool directories of daemon/supervisor/spool.h.  init
 * makes the four directories (again: no error; under a missing parent: the
 * errno and a reason), paths are built exactly and refused with
 * -ENAMETOOLONG when they do not fit, eligible() keeps job names only, the
 * list holds the eligible regular files sorted, claim moves incoming ->
 * active (-ENOENT for the loser), finish writes NAME.result / NAME.error
 * whole (no temporary left) and moves the job file beside it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/supervisor/spool.h"

#include "check.h"
#include "helpers.h"

static char dir[256];
static char spool[300];

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* spool/sub/name with text; a test that cannot set up stops here */
static void put(const char *sub, const char *name, const char *text)
{
	char p[700];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s/%s", spool, sub, name);
	f = fopen(p, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
}

static int has(const char *sub, const char *name)
{
	char p[700];

	snprintf(p, sizeof(p), "%s/%s/%s", spool, sub, name);
	return exists(p);
}

/* the file's text, or "" when it cannot be read (static buffer) */
static const char *text_of(const char *sub, const char *name)
{
	static char buf[256];
	char p[700], *t;

	snprintf(p, sizeof(p), "%s/%s/%s", spool, sub, name);
	t = test_read_file(p);
	snprintf(buf, sizeof(buf), "%s", t ? t : "");
	free(t);
	return buf;
}

/* names in spool/sub ending in .tmp: a finish that left its temporary */
static int tmp_files(const char *sub)
{
	char p[700];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", spool, sub);
	d = opendir(p);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		n += l >= 4 && strcmp(de->d_name + l - 4, ".tmp") == 0;
	}
	closedir(d);
	return n;
}

static void test_init(void)
{
	static const char *const subs[] = { "incoming", "active", "done", "failed" };
	char p[700], err[512];
	int r;

	r = egr_spool_init(spool, err, sizeof(err));
	CHECK(r == 0, "init: %d %s", r, err);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", spool, subs[i]);
		CHECK(is_dir(p), "%s is not a directory after init", p);
	}
	put("incoming", "survivor", "x");
	r = egr_spool_init(spool, err, sizeof(err));
	CHECK(r == 0, "init of an existing spool: %d %s", r, err);
	CHECK(has("incoming", "survivor"), "init of an existing spool lost a job");

	snprintf(p, sizeof(p), "%s/no/such/parent", dir);
	err[0] = 0;
	r = egr_spool_init(p, err, sizeof(err));
	CHECK(r == -ENOENT, "init under a missing parent: %d", r);
	CHECK(strstr(err, "mkdir(\"") && strstr(err, "/no/such/parent"), "init error '%s'", err);
}

static void test_path(void)
{
	const char *want = "/sp/incoming/job1";
	char buf[64];
	size_t n = strlen(want);

	CHECK(egr_spool_path(buf, sizeof(buf), "/sp", EGR_SPOOL_INCOMING, "job1") == 0 && !strcmp(buf, want),
	      "path '%s'", buf);
	CHECK(egr_spool_path(buf, sizeof(buf), "/sp", EGR_SPOOL_ACTIVE, "j") == 0 && !strcmp(buf, "/sp/active/j"),
	      "active path '%s'", buf);
	CHECK(egr_spool_path(buf, sizeof(buf), "/sp", EGR_SPOOL_DONE, NULL) == 0 && !strcmp(buf, "/sp/done"),
	      "done dir '%s'", buf);
	CHECK(egr_spool_path(buf, sizeof(buf), "/sp", EGR_SPOOL_FAILED, "x.error") == 0 &&
		      !strcmp(buf, "/sp/failed/x.error"),
	      "failed path '%s'", buf);
	/* exactly enough room (with the NUL) fits; one byte less does not */
	CHECK(egr_spool_path(buf, n + 1, "/sp", EGR_SPOOL_INCOMING, "job1") == 0, "exact buffer refused");
	CHECK(egr_spool_path(buf, n, "/sp", EGR_SPOOL_INCOMING, "job1") == -ENAMETOOLONG, "short buffer accepted");
	CHECK(egr_spool_path(buf, 8, "/sp", EGR_SPOOL_DONE, NULL) == -ENAMETOOLONG, "short buffer (dir) accepted");
}

static void test_eligible(void)
{
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{ "job1", 1 },       { "a.job", 1 },       { "tmp", 1 },          { "x.tmp.job", 1 },
		{ "result", 1 },     { "x.errors", 1 },    { "", 0 },             { ".hidden", 0 },
		{ ".job.tmp", 0 },   { "x~", 0 },          { "x.tmp", 0 },        { "x.part", 0 },
		{ "x.swp", 0 },      { "x.result", 0 },    { "x.error", 0 },      { ".", 0 },
	};
	char long_name[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(egr_spool_eligible(cases[i].name) == cases[i].want, "eligible(\"%s\") = %d, want %d",
		      cases[i].name, egr_spool_eligible(cases[i].name), cases[i].want);
	/* names of EGR_SPOOL_ID_MAX bytes or more are not job names (their id could not take a suffix) */
	memset(long_name, 'a', sizeof(long_name));
	long_name[EGR_SPOOL_ID_MAX - 1] = 0;
	CHECK(egr_spool_eligible(long_name) == 1, "a %d-byte name refused", EGR_SPOOL_ID_MAX - 1);
	long_name[EGR_SPOOL_ID_MAX - 1] = 'a';
	long_name[EGR_SPOOL_ID_MAX] = 0;
	CHECK(egr_spool_eligible(long_name) == 0, "a %d-byte name accepted", EGR_SPOOL_ID_MAX);
}

static void test_list(void)
{
	static const char *const want[] = { "Job", "job10", "job2" };	/* strcmp order */
	char p[700], err[512];
	char **names;
	size_t n;
	int r;

	r = egr_spool_list(spool, EGR_SPOOL_ACTIVE, &names, &n, err, sizeof(err));
	CHECK(r == 0 && n == 0, "empty active/: %d, %zu names", r, n);
	egr_spool_free_list(names, n);

	snprintf(p, sizeof(p), "%s/incoming/survivor", spool);	/* test_init's */
	unlink(p);
	put("incoming", "job2", "2");
	put("incoming", "job10", "10");
	put("incoming", "Job", "J");
	put("incoming", ".dot", "x");
	put("incoming", "draft~", "x");
	put("incoming", "up.part", "x");
	put("incoming", "w.tmp", "x");
	put("incoming", "v.swp", "x");
	put("incoming", "old.result", "x");
	put("incoming", "old.error", "x");
	snprintf(p, sizeof(p), "%s/incoming/subdir", spool);
	if (mkdir(p, 0755) < 0) {
		perror(p);
		exit(1);
	}
	snprintf(p, sizeof(p), "%s/incoming/link", spool);
	if (symlink("job2", p) < 0) {
		perror(p);
		exit(1);
	}
	r = egr_spool_list(spool, EGR_SPOOL_INCOMING, &names, &n, err, sizeof(err));
	CHECK(r == 0, "list: %d %s", r, err);
	CHECK(n == 3, "list has %zu names, want 3 (regular, eligible files only)", n);
	for (size_t i = 0; i < n; i++)
		CHECK(i < 3 && !strcmp(names[i], want[i]), "list[%zu] = '%s', want '%s'", i, names[i],
		      i < 3 ? want[i] : "(nothing)");
	if (r == 0)
		egr_spool_free_list(names, n);

	snprintf(p, sizeof(p), "%s/missing-spool", dir);
	err[0] = 0;
	r = egr_spool_list(p, EGR_SPOOL_INCOMING, &names, &n, err, sizeof(err));
	CHECK(r == -ENOENT && strstr(err, "opendir(\"") && strstr(err, "missing-spool/incoming"),
	      "list of a missing spool: %d '%s'", r, err);
}

static void test_claim(void)
{
	char err[512];
	int r;

	r = egr_spool_claim(spool, "job2", err, sizeof(err));
	CHECK(r == 0, "claim: %d %s", r, err);
	CHECK(!has("incoming", "job2") && has("active", "job2"), "claim did not move incoming/job2 to active/");
	CHECK(!strcmp(text_of("active", "job2"), "2"), "claimed file holds '%s'", text_of("active", "job2"));
	/* a second claimer loses */
	err[0] = 0;
	r = egr_spool_claim(spool, "job2", err, sizeof(err));
	CHECK(r == -ENOENT, "claim of a claimed job: %d", r);
	CHECK(strstr(err, "rename(\"") && strstr(err, "incoming/job2"), "lost claim: error '%s'", err);
	CHECK(has("active", "job2"), "the losing claim disturbed active/job2");
}

/*
 * name was finished (ok or not): the job file moved from active/ into done/
 * or failed/, beside NAME.result or NAME.error holding text; nothing in the
 * other directory, no temporary left behind.
 */
static void check_finished(const char *name, int ok, const char *text)
{
	const char *sub = ok ? "done" : "failed", *other = ok ? "failed" : "done";
	char side[300], wrong[300];

	snprintf(side, sizeof(side), "%s%s", name, ok ? ".result" : ".error");
	snprintf(wrong, sizeof(wrong), "%s%s", name, ok ? ".error" : ".result");
	CHECK(!has("active", name) && has(sub, name), "finish did not move active/%s to %s/", name, sub);
	CHECK(!strcmp(text_of(sub, side), text), "%s/%s holds '%s'", sub, side, text_of(sub, side));
	CHECK(!has(other, wrong) && !has(other, name), "finish of %s wrote into %s/", name, other);
	CHECK(tmp_files(sub) == 0, "finish left %d temporary file(s) in %s/", tmp_files(sub), sub);
}

static void test_finish(void)
{
	char name[300], err[512];
	int r;

	r = egr_spool_finish(spool, "job2", 1, "ok frames=3\n", err, sizeof(err));
	CHECK(r == 0, "finish ok: %d %s", r, err);
	check_finished("job2", 1, "ok frames=3\n");

	if (egr_spool_claim(spool, "job10", err, sizeof(err)) < 0) {
		CHECK(0, "claim job10: %s", err);
		return;
	}
	r = egr_spool_finish(spool, "job10", 0, "decode failed: bad latents\n", err, sizeof(err));
	CHECK(r == 0, "finish failed: %d %s", r, err);
	check_finished("job10", 0, "decode failed: bad latents\n");

	/* the job file already gone (finished before a crash): the report is still written */
	r = egr_spool_finish(spool, "ghost", 0, "again\n", err, sizeof(err));
	CHECK(r == 0 && !strcmp(text_of("failed", "ghost.error"), "again\n"), "finish without a job file: %d '%s'",
	      r, err);

	/* a name too long for a path */
	memset(name, 'n', sizeof(name));
	name[sizeof(name) - 1] = 0;
	char longspool[4096];
	memset(longspool, 's', sizeof(longspool));
	longspool[0] = '/';
	longspool[sizeof(longspool) - 200] = 0;
	err[0] = 0;
	r = egr_spool_finish(longspool, name, 1, "x", err, sizeof(err));
	CHECK(r == -ENAMETOOLONG && strstr(err, "too long"), "finish with an over-long path: %d '%s'", r, err);
	r = egr_spool_claim(longspool, name, err, sizeof(err));
	CHECK(r == -ENAMETOOLONG, "claim with an over-long path: %d", r);
}

int main(void)
{
	test_tmpdir(dir, sizeof(dir), "test_spool");
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	test_init();
	test_path();
	test_eligible();
	test_list();
	test_claim();
	test_finish();
	test_rmtree(dir);
	return test_result("test_spool");
}
