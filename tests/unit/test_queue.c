/*
 * test_queue: incoming/ in arrival order (daemon/supervisor/queue.h).  The
 * listing holds the job files only (no dotfile, temporary, record or
 * directory), ordered by ctime and then name; files that arrive while a
 * listing is being handed out wait for the next listing, which hands out
 * only what is still there; a missing directory is an error naming it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/supervisor/queue.h"

#include "check.h"
#include "helpers.h"

static char dir[256], spool[300];

static void put(const char *name)
{
	char p[700];
	FILE *f;

	snprintf(p, sizeof(p), "%s/incoming/%s", spool, name);
	f = fopen(p, "w");
	if (!f || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
}

/* the next ctime tick: files made after this have a later ctime than files made before */
static void next_tick(void)
{
	struct timespec ts = { 0, 15 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

static struct timespec ctime_of(const char *name)
{
	char p[700];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/incoming/%s", spool, name);
	memset(&sb, 0, sizeof(sb));
	stat(p, &sb);
	return sb.st_ctim;
}

static void test_order(void)
{
	struct egr_queue q = { 0 };
	const char *want[] = { "zeta", "beta", "alpha", "gamma", "adir" };
	char err[512], p[700];
	const char *prev = NULL, *n;
	int i = 0;

	put("zeta");
	next_tick();
	put("beta");
	put("alpha");	/* likely the same tick as beta: then by name */
	next_tick();
	put("gamma");
	put(".hidden");
	put("x.tmp");
	put("y.result");
	/* not a job file, but listed all the same: the claim refuses it with a reason (spool.h) */
	next_tick();
	snprintf(p, sizeof(p), "%s/incoming/adir", spool);
	mkdir(p, 0755);
	CHECK(egr_queue_list(&q, spool, err, sizeof(err)) == 0, "list: %s", err);
	CHECK(egr_queue_waiting(&q) == 5, "4 job files and a directory listed, not %zu", egr_queue_waiting(&q));
	while ((n = egr_queue_pop(&q))) {
		if (prev) {
			struct timespec a = ctime_of(prev), b = ctime_of(n);
			int later = a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec != b.tv_nsec ? a.tv_nsec < b.tv_nsec
												 : strcmp(prev, n) < 0;
			CHECK(later, "%s handed out after %s: not by (ctime, name)", n, prev);
		}
		if (i == 0 || i == 3 || i == 4)
			CHECK(!strcmp(n, want[i]), "#%d is %s, want %s", i, n, want[i]);
		prev = n;
		i++;
	}
	CHECK(i == 5 && egr_queue_waiting(&q) == 0, "every name once: %d", i);
	CHECK(egr_queue_pop(&q) == NULL, "NULL once used up");
	egr_queue_free(&q);
	rmdir(p);
}

static void test_relist(void)
{
	struct egr_queue q = { 0 };
	char err[512], p[700];

	CHECK(egr_queue_list(&q, spool, err, sizeof(err)) == 0, "list: %s", err);
	CHECK(egr_queue_waiting(&q) == 4, "still 4 (none claimed)");
	/* two claimed (gone), one new: the next listing is what is there */
	snprintf(p, sizeof(p), "%s/incoming/zeta", spool);
	unlink(p);
	snprintf(p, sizeof(p), "%s/incoming/beta", spool);
	unlink(p);
	next_tick();
	put("new");
	CHECK(egr_queue_waiting(&q) == 4, "a listing is not re-read behind the cursor's back");
	CHECK(egr_queue_list(&q, spool, err, sizeof(err)) == 0, "list again: %s", err);
	CHECK(egr_queue_waiting(&q) == 3, "3 now, not %zu", egr_queue_waiting(&q));
	egr_queue_pop(&q);
	egr_queue_pop(&q);
	const char *last = egr_queue_pop(&q);
	CHECK(last && !strcmp(last, "new"), "the newest last: %s", last ? last : "(none)");
	egr_queue_free(&q);

	snprintf(p, sizeof(p), "%s/nowhere", dir);
	CHECK(egr_queue_list(&q, p, err, sizeof(err)) == -ENOENT && strstr(err, "nowhere/incoming"),
	      "a missing spool: -ENOENT naming it (%s)", err);
}

int main(void)
{
	char p[400];

	test_tmpdir(dir, sizeof(dir), "test_queue");
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	snprintf(p, sizeof(p), "%s/incoming", spool);
	if (mkdir(spool, 0755) < 0 || mkdir(p, 0755) < 0) {
		perror(p);
		return 1;
	}
	test_order();
	test_relist();
	test_rmtree(dir);
	return test_result("test_queue");
}
