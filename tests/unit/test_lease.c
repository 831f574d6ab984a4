/*
 * test_lease: several daemons on one spool (daemon/supervisor/lease.h,
 * daemon/base/fence.h): the lease record round trip (a torn one is
 * refused), the fence (no lease: passes; lost, foreign, expired or job
 * gone: refused), the identity, the filesystem probe, claims that avoid the
 * ids of other daemons' active directories, a shared daemon refused beside
 * a plain one, and a dead peer's directory requeued by the live one once
 * its lease has not changed for lease_timeout, after which the live one
 * notices its own lease taken over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/conf.h"
#include "daemon/base/fence.h"
#include "daemon/base/log.h"
#include "daemon/base/safepath.h"
#include "daemon/supervisor/lease.h"
#include "daemon/supervisor/spool.h"

#include "check.h"
#include "helpers.h"
#include "testfs.h"

static char T[64];

/* "<T>/rel", in one of 8 rotating buffers */
static const char *in_t(const char *rel)
{
	static char bufs[8][600];
	static unsigned n;
	char *b = bufs[n++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", T, rel);
	return b;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void test_record(void)
{
	struct egr_fence_rec r = { .host_id = "h1", .instance = "egressd", .pid = 42, .boot_id = "abc",
				   .pidns = 7, .generation = 12, .counter = 3, .renewed_ns = 99, .timeout_ms = 30000 };
	struct egr_fence_rec back;
	char a[EGR_FENCE_REC_MAX], b[EGR_FENCE_REC_MAX];
	int n = egr_fence_format(&r, a, sizeof(a));

	CHECK(n > 0 && egr_fence_parse(a, &back) == 0, "format/parse: %d", n);
	CHECK(!strcmp(back.host_id, "h1") && !strcmp(back.boot_id, "abc") && back.pid == 42 && back.generation == 12 &&
		      back.counter == 3 && back.renewed_ns == 99 && back.timeout_ms == 30000 && back.pidns == 7,
	      "round trip");
	r.counter = 123456789;
	r.renewed_ns = 1ull << 60;
	CHECK(egr_fence_format(&r, b, sizeof(b)) == n, "a heartbeat keeps the record's length (%d)", n);
	a[n - 5] = 0;	/* torn: the last line has no end */
	CHECK(egr_fence_parse(a, &back) == -EINVAL, "a torn record is refused");
}

/* the lease at path, generation gen, renewed age_ms ago */
static void put_lease(const char *path, uint64_t gen, uint64_t age_ms, uint64_t timeout_ms)
{
	struct egr_fence_rec r = { .host_id = "h", .instance = "i", .pid = 1, .boot_id = "b", .generation = gen,
				   .renewed_ns = egr_fence_now_ns() - age_ms * 1000000ull, .timeout_ms = timeout_ms };
	char buf[EGR_FENCE_REC_MAX];

	must(egr_fence_format(&r, buf, sizeof(buf)) > 0, "format");
	put(path, buf);
}

static void test_fence(void)
{
	char err[512], env[600];

	unsetenv(EGR_FENCE_ENV);
	CHECK(egr_fence_check("/nonexistent/job", err, sizeof(err)) == 0, "no lease: the commit goes ahead");
	snprintf(env, sizeof(env), "5:%s", in_t("f.lease"));
	setenv(EGR_FENCE_ENV, env, 1);
	put(in_t("job"), "[job]\n");
	CHECK(egr_fence_check(in_t("job"), err, sizeof(err)) == -ENOLCK && strstr(err, "gone"), "lost: %s", err);
	put_lease(in_t("f.lease"), 5, 0, 4000);
	CHECK(egr_fence_check(in_t("job"), err, sizeof(err)) == 0, "held: %s", err);
	CHECK(egr_fence_check(in_t("gone-job"), err, sizeof(err)) == -ENOLCK && strstr(err, "requeued"),
	      "job requeued: %s", err);
	put_lease(in_t("f.lease"), 6, 0, 4000);
	CHECK(egr_fence_check(in_t("job"), err, sizeof(err)) == -ENOLCK && strstr(err, "generation 6"),
	      "another generation: %s", err);
	put_lease(in_t("f.lease"), 5, 2500, 4000);
	CHECK(egr_fence_check(in_t("job"), err, sizeof(err)) == -ENOLCK && strstr(err, "half"),
	      "not renewed for more than half the timeout: %s", err);
	setenv(EGR_FENCE_ENV, "garbage", 1);
	CHECK(egr_fence_check(in_t("job"), err, sizeof(err)) == -ENOLCK, "a bad variable refuses");
	unsetenv(EGR_FENCE_ENV);
}

static void shared_conf(struct egr_conf *c, const char *instance)
{
	egr_conf_defaults(c);
	snprintf(c->spool, sizeof(c->spool), "%s/spool", T);
	snprintf(c->instance, sizeof(c->instance), "%s", instance);
	snprintf(c->host_id, sizeof(c->host_id), "h");
	snprintf(c->shared_spool, sizeof(c->shared_spool), "yes");
	c->lease_timeout = 2;
}

static void test_identity_probe(void)
{
	struct egr_conf c;
	char id[128], err[512];

	shared_conf(&c, "egressd");
	CHECK(egr_lease_identity(&c, id, sizeof(id)) == 0 && !strcmp(id, "h.egressd"), "identity '%s'", id);
	c.host_id[0] = 0;
	CHECK(egr_lease_identity(&c, id, sizeof(id)) == 0 && strlen(id) > 8 && !strchr(id, '/'),
	      "identity from the hostname '%s'", id);
	must(mkdir(in_t("p"), 0700) == 0 && mkdir(in_t("p/active"), 0700) == 0, "mkdir p/active");
	CHECK(egr_lease_probe(in_t("p"), err, sizeof(err)) == 0, "probe: %s", err);
	CHECK(egr_lease_probe(in_t("nope"), err, sizeof(err)) < 0 && strstr(err, "probe"),
	      "probe of a missing directory: %s", err);
}

/* A dead peer ("h.dead": a directory with a job, a lease nobody renews) is requeued. */
static void test_reap(void)
{
	struct egr_conf c;
	struct egr_safepath roots;
	struct egr_spool *sp = NULL, *plain = NULL;
	struct egr_lease *l = NULL;
	struct egr_spool_job job;
	char err[512];
	int rc, lost = 0;

	shared_conf(&c, "live");
	memset(&roots, 0, sizeof(roots));
	must(egr_spool_open(c.spool, &plain, err, sizeof(err)) == 0, err);
	rc = egr_lease_open(&c, &roots, &sp, &l, err, sizeof(err));
	CHECK(rc == -EBUSY && strstr(err, "without shared_spool"), "shared beside plain: %d %s", rc, err);
	egr_spool_close(plain);
	must(mkdir(in_t("spool/active/h.dead"), 0750) == 0, "mkdir dead");
	put(in_t("spool/active/h.dead/j1.job"), "[job]\n");
	put(in_t("spool/active/h.dead/dup.job"), "[job]\n");
	put_lease(in_t("spool/active/h.dead.lease"), 1000, 0, 2000);
	rc = egr_lease_open(&c, &roots, &sp, &l, err, sizeof(err));
	must(rc == 0, err);
	CHECK(getenv(EGR_FENCE_ENV) && strstr(getenv(EGR_FENCE_ENV), "h.live.lease"), "children's variable");
	CHECK(access(in_t("spool/active/h.live"), F_OK) == 0 && access(in_t("spool/active/h.live.lease"), F_OK) == 0,
	      "own directory and lease");
	/* a name another daemon holds gets another id */
	put(in_t("spool/incoming/dup.job"), "[job]\n");
	rc = egr_spool_claim_job(sp, "dup.job", &job, err, sizeof(err));
	CHECK(rc == 0 && !strcmp(job.id, "dup.job.2") && access(in_t("spool/active/h.live/dup.job.2"), F_OK) == 0,
	      "claim beside another daemon's dup.job: %d '%s' %s", rc, job.id, err);
	for (int i = 0; i < 40 && access(in_t("spool/incoming/j1.job"), F_OK) < 0; i++) {
		CHECK(egr_lease_tick(l) == 0, "tick %d: lease held", i);
		sleep_ms(100);
	}
	CHECK(access(in_t("spool/incoming/j1.job"), F_OK) == 0 && access(in_t("spool/incoming/dup.job"), F_OK) == 0,
	      "the dead daemon's jobs are back in incoming/");
	CHECK(access(in_t("spool/active/h.dead"), F_OK) < 0 && access(in_t("spool/active/h.dead.lease"), F_OK) < 0 &&
		      access(in_t("spool/active/h.live/.reap-h.dead"), F_OK) < 0,
	      "its directory and lease are gone");
	CHECK(egr_lease_held(l), "still held");
	/* someone takes our lease over: the children's check and the next heartbeat see it */
	must(rename(in_t("spool/active/h.live.lease"), in_t("spool/taken")) == 0, "rename lease");
	CHECK(egr_fence_check(NULL, err, sizeof(err)) == -ENOLCK, "fence after the takeover");
	for (int i = 0; i < 20 && !lost; i++) {
		lost = egr_lease_tick(l) == -ENOLCK;
		sleep_ms(100);
	}
	CHECK(lost && !egr_lease_held(l), "lease lost");
	egr_lease_close(l, 1);
	CHECK(access(in_t("spool/active/h.live/dup.job.2"), F_OK) == 0, "a lost lease requeues nothing");
	CHECK(!getenv(EGR_FENCE_ENV), "variable gone");
	egr_spool_close(sp);
	CHECK(!egr_spool_shared(), "no longer shared");
}

int main(void)
{
	test_tmpdir(T, sizeof(T), "test_lease");
	egr_log_set_level(EGR_LOG_ERR);
	test_record();
	test_fence();
	test_identity_probe();
	test_reap();
	test_rmtree(T);
	return test_result("test_lease");
}
