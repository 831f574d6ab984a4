/*
 * test_metrics: daemon/supervisor/metrics.h.  [metrics] listen takes
 * loopback addresses only (127.0.0.0/8, ::1, localhost) with a port, and
 * says what is wrong with anything else; counters grow by what a table row
 * adds between observations (never twice, and from zero for the next job in
 * the row); the exposition names every family once with HELP and TYPE, and
 * the duration histogram is cumulative.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/conf.h"
#include "daemon/supervisor/metrics.h"

#include "check.h"
#include "helpers.h"

static int open_with(const char *listen, char *err, size_t errlen)
{
	struct egr_conf c;
	struct egr_metrics *m = NULL;
	int rc;

	egr_conf_defaults(&c);
	snprintf(c.metrics_listen, sizeof(c.metrics_listen), "%s", listen);
	err[0] = 0;
	rc = egr_metrics_open(&m, &c, err, errlen);
	egr_metrics_close(m);
	return rc;
}

static void test_listen(void)
{
	static const char *const bad[] = { "0.0.0.0:9100", "10.1.2.3:80", "[::]:1", "example.com:80",
					   "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "[::1]9" };
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = open_with(bad[i], err, sizeof(err));
		CHECK(rc == -EINVAL && strstr(err, bad[i]), "%s: %d (%s)", bad[i], rc, err);
	}
	CHECK(open_with("0.0.0.0:1", err, sizeof(err)) == -EINVAL && strstr(err, "not a loopback address"),
	      "the reason: %s", err);
	CHECK(open_with("127.0.0.1:0", err, sizeof(err)) == 0, "127.0.0.1:0: %s", err);
	CHECK(open_with("localhost:0", err, sizeof(err)) == 0, "localhost:0: %s", err);
	int rc = open_with("[::1]:0", err, sizeof(err));
	CHECK(rc == 0 || rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL, "[::1]:0: %s", err);
	CHECK(open_with("", err, sizeof(err)) == 0, "empty: off");
}

static double value(const char *text, const char *name)
{
	char key[200];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	return p ? strtod(p + strlen(key), NULL) : -1;
}

static void test_counters(void)
{
	struct egr_conf c;
	struct egr_metrics *m;
	struct egr_job_view j;
	char err[256], *text;

	egr_conf_defaults(&c);
	CHECK(egr_metrics_open(&m, &c, err, sizeof(err)) == 0, "open: %s", err);
	memset(&j, 0, sizeof(j));
	j.index = 3;
	j.planned = 1;
	j.lay.frames = 20;
	j.lay.chunk_frames = 8;
	j.st.t_queued_ns = 111;
	j.chunks_written = 2;
	j.st.bytes_written = 1000;
	egr_metrics_observe(m, &j);
	egr_metrics_observe(m, &j);	/* nothing new */
	j.chunks_written = 3;		/* 24 frames, capped at 20 */
	j.st.bytes_written = 1500;
	j.st.t_start_ns = 1000000000ull;
	j.st.t_end_ns = 1700000000ull;
	egr_metrics_ended(m, &j, "done");
	j.st.t_queued_ns = 222;		/* the row's next job starts from zero */
	j.chunks_written = 1;
	j.st.bytes_written = 100;
	egr_metrics_ended(m, &j, "cancelled");
	egr_metrics_restart(m, "worker");
	egr_metrics_gauges(m, 5, 1, 2, 8);
	text = egr_metrics_render(m);
	CHECK(text, "render");
	if (!text)
		return;
	CHECK(value(text, "egressd_frames_total") == 28, "frames: 20 + 8, not %g", value(text, "egressd_frames_total"));
	CHECK(value(text, "egressd_bytes_written_total") == 1600, "bytes: %g", value(text, "egressd_bytes_written_total"));
	CHECK(value(text, "egressd_jobs_total{status=\"done\"}") == 1 &&
	      value(text, "egressd_jobs_total{status=\"cancelled\"}") == 1 &&
	      value(text, "egressd_jobs_total{status=\"failed\"}") == 0, "jobs by status");
	CHECK(value(text, "egressd_worker_restarts_total") == 1 && value(text, "egressd_queue_depth") == 5 &&
	      value(text, "egressd_slots_busy") == 2 && value(text, "egressd_slots") == 8, "restarts and gauges");
	CHECK(value(text, "egressd_job_duration_seconds_bucket{le=\"0.5\"}") == 0 &&
	      value(text, "egressd_job_duration_seconds_bucket{le=\"1\"}") == 1 &&
	      value(text, "egressd_job_duration_seconds_bucket{le=\"+Inf\"}") == 1 &&
	      value(text, "egressd_job_duration_seconds_count") == 1, "a 0.7 s job in the le=1 bucket, cumulative");
	for (const char *p = text; (p = strstr(p, "# TYPE ")); p++) {
		char name[100];
		sscanf(p, "# TYPE %99s", name);
		char help[140];
		snprintf(help, sizeof(help), "# HELP %s ", name);
		CHECK(strstr(text, help) && strstr(text, help) < p, "%s has HELP before TYPE", name);
	}
	free(text);
	egr_metrics_close(m);
}

int main(void)
{
	test_listen();
	test_counters();
	return test_result("test_metrics");
}
