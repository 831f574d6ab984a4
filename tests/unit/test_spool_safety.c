/*
 * test_spool_safety: the spool as one daemon's, and its edge with the
 * submitters: the lock (a second opener is refused, naming the holder's
 * pid), unique ids (a resubmitted name never overwrites a record), bad job
 * names, and every kind of entry that is not a job file (link, FIFO,
 * directory, hard link, oversized, unreadable), each refused into failed/
 * with a one-line .error or, when it cannot be moved, reported once.
 * Records are 0640 whatever the umask.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/supervisor/spool.h"

#include "check.h"
#include "testfs.h"

static char T[64];

static const char *at(const char *fmt, const char *a)
{
	static char buf[8][600];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), fmt, T, a);
	return buf[i];
}

/* a job file created in tmp/ and renamed into incoming/, as submitters do */
static void submit(const char *name, const char *text)
{
	put(at("%s/spool/tmp/%s", name), text);
	must(rename(at("%s/spool/tmp/%s", name), at("%s/spool/incoming/%s", name)) == 0, "rename into incoming/");
}

static char *slurp(const char *path)
{
	static char buf[2048];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static int printable_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\n')
			return 0;
	return 1;
}

static void test_lock(void)
{
	struct egr_spool *a, *b;
	char err[512] = "", want[600];
	struct stat st;
	int rc;

	rc = egr_spool_open(at("%s/spool%s", ""), &a, err, sizeof(err));
	CHECK(rc == 0, "open: %d %s", rc, err);
	CHECK(stat(at("%s/spool/%s", "incoming"), &st) == 0 && (st.st_mode & 07777) == 03770, "incoming/ mode %o",
	      st.st_mode & 07777);
	CHECK(stat(at("%s/spool/%s", "tmp"), &st) == 0 && (st.st_mode & 07777) == 03770, "tmp/ mode %o",
	      st.st_mode & 07777);
	CHECK(stat(at("%s/spool/%s", "done"), &st) == 0 && (st.st_mode & 07777) == 0750, "done/ mode %o",
	      st.st_mode & 07777);
	rc = egr_spool_open(at("%s/spool%s", ""), &b, err, sizeof(err));
	snprintf(want, sizeof(want), "spool %s/spool is in use by another egressd (pid %d); give each daemon its own spool",
		 T, (int)getpid());
	CHECK(rc == -EBUSY && !strcmp(err, want) && b == NULL, "second open: %d\n  got  '%s'\n  want '%s'", rc, err,
	      want);
	egr_spool_close(a);
	rc = egr_spool_open(at("%s/spool%s", ""), &b, err, sizeof(err));
	CHECK(rc == 0, "open after close: %d %s", rc, err);
	egr_spool_close(b);
}

static void test_names(void)
{
	char buf[64];

	CHECK(egr_spool_name_ok("clip-01.job"), "ascii");
	CHECK(egr_spool_name_ok("clip-\xc3\xa9t\xc3\xa9 \xe6\x97\xa5.job"), "UTF-8");
	CHECK(!egr_spool_name_ok("a\nb"), "newline");
	CHECK(!egr_spool_name_ok("a\033[31mb"), "ESC");
	CHECK(!egr_spool_name_ok("a\x7f"), "DEL");
	CHECK(!egr_spool_name_ok("a\xff"), "invalid byte");
	CHECK(!egr_spool_name_ok("a\xc3"), "cut sequence");
	CHECK(!egr_spool_name_ok("a\xc0\xaf"), "overlong");
	CHECK(!egr_spool_name_ok("a\xed\xa0\x80"), "surrogate");
	CHECK(!egr_spool_name_ok("a\xc2\x85"), "C1 NEL");
	CHECK(!egr_spool_name_ok("a\xe2\x80\xae"), "bidi override");
	CHECK(!egr_spool_name_ok("a\xe2\x80\xa8"), "line separator");
	egr_spool_name_show("a\nb\033c\xc3\xa9\xff", buf, sizeof(buf));
	CHECK(!strcmp(buf, "a_b_c\xc3\xa9_"), "shown '%s'", buf);
	egr_spool_name_show("ab\xc3\xa9", buf, 4);
	CHECK(!strcmp(buf, "ab_"), "cut between characters: '%s'", buf);
}

static void test_claims(void)
{
	struct egr_spool *sp;
	struct egr_spool_job job;
	char err[512] = "";
	struct stat st;
	int rc;

	must(egr_spool_open(at("%s/spool%s", ""), &sp, err, sizeof(err)) == 0, err);
	submit("a.job", "[job]\n");
	rc = egr_spool_claim_job(sp, "a.job", &job, err, sizeof(err));
	CHECK(rc == 0 && !strcmp(job.id, "a.job") && job.uid == getuid() && job.size == 6, "claim: %d %s %s", rc,
	      job.id, err);
	umask(077);	/* records are 0640 all the same */
	CHECK(egr_spool_finish(at("%s/spool%s", ""), job.id, 1, "status = done\n", err, sizeof(err)) == 0, "finish: %s",
	      err);
	umask(022);
	CHECK(stat(at("%s/spool/done/%s", "a.job.result"), &st) == 0 && (st.st_mode & 0777) == 0640,
	      "result mode %o", st.st_mode & 0777);

	/* the same name again, twice: new ids, the first record untouched */
	submit("a.job", "[job]\n; second\n");
	rc = egr_spool_claim_job(sp, "a.job", &job, err, sizeof(err));
	CHECK(rc == 0 && !strcmp(job.id, "a.job.2"), "resubmitted: %d %s", rc, job.id);
	submit("a.job", "[job]\n; third\n");
	rc = egr_spool_claim_job(sp, "a.job", &job, err, sizeof(err));
	CHECK(rc == 0 && !strcmp(job.id, "a.job.3"), "while .2 is active: %d %s", rc, job.id);
	CHECK(egr_spool_finish(at("%s/spool%s", ""), "a.job.2", 0, "failed\n", err, sizeof(err)) == 0, "%s", err);
	CHECK(!strcmp(slurp(at("%s/spool/done/%s", "a.job.result")), "status = done\n"), "first record kept");
	CHECK(!strcmp(slurp(at("%s/spool/failed/%s", "a.job.2.error")), "failed\n"), "second record");
	CHECK(stat(at("%s/spool/failed/%s", "a.job.2.error"), &st) == 0 && (st.st_mode & 0777) == 0640,
	      "error mode %o", st.st_mode & 0777);

	rc = egr_spool_claim_job(sp, "gone.job", &job, err, sizeof(err));
	CHECK(rc == -ENOENT, "nothing there: %d", rc);
	egr_spool_close(sp);
}

/* claim name expecting a refusal whose reason has want; the .error is that one line */
static void refused(struct egr_spool *sp, const char *name, const char *id, const char *want)
{
	struct egr_spool_job job;
	char err[512] = "", *e;
	struct stat st;
	int rc = egr_spool_claim_job(sp, name, &job, err, sizeof(err));

	CHECK(rc == EGR_SPOOL_REFUSED && !strcmp(job.id, id) && strstr(err, want) && printable_line(err),
	      "%s: %d id '%s' err '%s'", id, rc, job.id, err);
	e = slurp(at("%s/spool/failed/%s.error", id));
	CHECK(strstr(e, want) && strchr(e, '\n') == e + strlen(e) - 1 && printable_line(e), "%s.error: '%s'", id, e);
	CHECK(lstat(at("%s/spool/failed/%s", id), &st) == 0, "%s moved to failed/", id);
	CHECK(lstat(at("%s/spool/incoming/%s", name), &st) < 0, "%s no longer in incoming/", id);
}

static void test_refusals(void)
{
	struct egr_spool *sp;
	char err[512] = "", big[EGR_SPOOL_JOB_MAX + 2];

	must(egr_spool_open(at("%s/spool%s", ""), &sp, err, sizeof(err)) == 0, err);
	submit("bad\nname.job", "[job]\n");
	refused(sp, "bad\nname.job", "bad_name.job", "job file name \"bad_name.job\" (bad bytes shown as '_') has control characters");
	submit("esc\033[31m.job", "[job]\n");
	refused(sp, "esc\033[31m.job", "esc_[31m.job", "has control characters or is not UTF-8");
	submit("latin1-\xe9.job", "[job]\n");
	refused(sp, "latin1-\xe9.job", "latin1-_.job", "is not UTF-8");

	put(at("%s/%s", "secret"), "secret bytes");
	must(symlink(at("%s/%s", "secret"), at("%s/spool/incoming/%s", "link.job")) == 0, "symlink");
	refused(sp, "link.job", "link.job", "job file is a symbolic link; submit a regular file");
	CHECK(!strcmp(slurp(at("%s/%s", "secret")), "secret bytes"), "the link's target untouched");
	must(mkfifo(at("%s/spool/incoming/%s", "fifo.job"), 0644) == 0, "mkfifo");
	refused(sp, "fifo.job", "fifo.job", "job file is a FIFO");
	must(mkdir(at("%s/spool/incoming/%s", "dir.job"), 0755) == 0, "mkdir");
	refused(sp, "dir.job", "dir.job", "job file is a directory");
	memset(big, ';', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	submit("big.job", big);
	refused(sp, "big.job", "big.job", "job file is 65537 bytes; the limit is 65536");
	submit("linked.job", "[job]\n");
	must(link(at("%s/spool/incoming/%s", "linked.job"), at("%s/%s", "hardlink")) == 0, "link");
	refused(sp, "linked.job", "linked.job", "job file has 2 hard links");
	egr_spool_close(sp);
}

/*
 * As an unprivileged daemon (root runs this part as nobody): a directory it
 * may not move is reported once and left; a job file it may not read is
 * refused.
 */
static int unprivileged_part(void)
{
	struct egr_spool *sp;
	struct egr_spool_job job;
	char err[512] = "";
	int rc, bad = 0;

	if (egr_spool_open(at("%s/spool2%s", ""), &sp, err, sizeof(err)) < 0) {
		printf("open: %s\n", err);
		return 1;
	}
	rc = egr_spool_claim_job(sp, "stuck.job", &job, err, sizeof(err));
	if (rc != -EACCES || !strstr(err, "incoming/stuck.job is a directory egressd cannot claim") ||
	    !strstr(err, "remove it")) {
		printf("stuck: %d %s\n", rc, err);
		bad = 1;
	}
	rc = egr_spool_claim_job(sp, "stuck.job", &job, err, sizeof(err));
	if (rc != -EALREADY) {
		printf("stuck, second time: %d\n", rc);
		bad = 1;
	}
	if (getuid() != 0 || geteuid() == 0) {	/* only when dropped from root: the file is root's */
		egr_spool_close(sp);
		return bad;
	}
	rc = egr_spool_claim_job(sp, "private.job", &job, err, sizeof(err));
	if (rc != EGR_SPOOL_REFUSED || !strstr(err, "job file is not readable by egressd (uid 65534)")) {
		printf("private: %d %s\n", rc, err);
		bad = 1;
	}
	rc = egr_spool_check(at("%s/spool%s", ""), err, sizeof(err));	/* root's */
	if (rc != -EACCES || !strstr(err, "is not writable by uid 65534")) {
		printf("check as nobody: %d %s\n", rc, err);
		bad = 1;
	}
	egr_spool_close(sp);
	return bad;
}

static void test_unprivileged(void)
{
	int status;
	pid_t pid;

	must(mkdir(at("%s/spool2%s", ""), 0755) == 0, "mkdir spool2");
	must(mkdir(at("%s/spool2/%s", "incoming"), 0755) == 0, "mkdir incoming");
	must(mkdir(at("%s/spool2/%s", "incoming/stuck.job"), 0555) == 0, "mkdir stuck");
	if (geteuid() == 0) {
		must(chmod(T, 0755) == 0, "chmod");
		put(at("%s/spool2/incoming/%s", "private.job"), "[job]\n");
		must(chmod(at("%s/spool2/incoming/%s", "private.job"), 0600) == 0, "chmod");
		must(chown(at("%s/spool2%s", ""), 65534, 65534) == 0 && chown(at("%s/spool2/%s", "incoming"), 65534, 65534) == 0,
		     "chown");
	}
	fflush(stdout);
	pid = fork();
	must(pid >= 0, "fork");
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
				       setresuid(65534, 65534, 65534) < 0))
			_exit(2);
		_exit(unprivileged_part());
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	chmod(at("%s/spool2/%s", "incoming/stuck.job"), 0755);
}

static void test_check(void)
{
	char err[512] = "";
	int rc;

	CHECK(egr_spool_check(at("%s/spool%s", ""), err, sizeof(err)) == 0, "existing spool: %s", err);
	CHECK(egr_spool_check(at("%s/new-spool%s", ""), err, sizeof(err)) == 0, "creatable: %s", err);
	CHECK(access(at("%s/new-spool%s", ""), F_OK) < 0, "the check created nothing");
	rc = egr_spool_check(at("%s/none/spool%s", ""), err, sizeof(err));
	CHECK(rc == -ENOENT && strstr(err, "nor its parent"), "no parent: %d %s", rc, err);
	put(at("%s/%s", "file"), "x");
	rc = egr_spool_check(at("%s/%s", "file"), err, sizeof(err));
	CHECK(rc == -ENOTDIR && strstr(err, "is not a directory"), "a file: %d %s", rc, err);
}

int main(void)
{
	snprintf(T, sizeof(T), "/tmp/egr-spool-safety.XXXXXX");
	must(mkdtemp(T) != NULL, "mkdtemp");
	test_lock();
	test_names();
	test_claims();
	test_refusals();
	test_unprivileged();
	test_check();
	if (failures) {
		printf("%d check(s) failed; tree kept in %s\n", failures, T);
	} else {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T);
		if (system(cmd) != 0)
			printf("could not remove %s\n", T);
	}
	return failures ? 1 : 0;
}
