/* metrics: Prometheus text exposition, to a file and over loopback HTTP; see metrics.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/base/fs.h"
#include "daemon/base/log.h"
#include "daemon/supervisor/metrics.h"
#include "daemon/supervisor/status.h"

#define NCONN (EGR_METRICS_MAX_FDS - 1)
#define CONN_TIMEOUT_NS (5ull * 1000000000ull)
#define TEXTFILE_PERIOD_NS 1000000000ull

static const double buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
static const char *const endings[] = { "done", "failed", "cancelled" };
#define NENDINGS (sizeof(endings) / sizeof(endings[0]))

struct conn {
	int fd;			/* -1: free */
	char in[2048];
	size_t inlen;
	char *out;		/* the answer, once the request is read */
	size_t outlen, outoff;
	uint64_t deadline_ns;
};

/* what a table row's counters were at its last observation */
struct row_seen {
	uint64_t t_queued_ns;	/* which job: 0 none */
	uint64_t frames, bytes, blocked_ns, gpu_kernel_ns, gpu_wall_ns;
};

struct egr_metrics {
	char textfile[EGR_PATH_MAX];
	char listen[64];
	int lfd;
	struct conn conns[NCONN];
	int pmap[EGR_METRICS_MAX_FDS];	/* pollfd k -> conn index, -1 the listener */
	uint64_t last_write_ns;
	struct row_seen rows[EGR_RING_JOBS];
	/* counters */
	uint64_t jobs[NENDINGS], frames, bytes, blocked_ns, gpu_kernel_ns, gpu_wall_ns;
	uint64_t worker_restarts, producer_restarts;
	uint64_t hist[NBUCKETS + 1], hist_count;
	double hist_sum;
	/* gauges */
	double gpu_util;
	uint64_t queue_depth;
	uint32_t running, slots_busy, slots;
};

/* ---- the listening socket ---- */

/* "127.0.0.1:9101", "[::1]:9101", "localhost:9101" -> a loopback address; 0 or -EINVAL with err */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	const char *end = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
	const char *host = s[0] == '[' ? s + 1 : s, *port = end ? end + 1 + (s[0] == '[') : NULL;
	char h[64], *stop;
	long pn;

	memset(ss, 0, sizeof(*ss));
	if (!end || (s[0] == '[' && end[1] != ':') || (size_t)(end - host) >= sizeof(h) || !*port)
		goto bad;
	snprintf(h, sizeof(h), "%.*s", (int)(end - host), host);
	pn = strtol(port, &stop, 10);
	if (*stop || pn < 0 || pn > 65535)
		goto bad;
	if (!strcmp(h, "localhost"))
		snprintf(h, sizeof(h), "127.0.0.1");
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)pn);
		*len = sizeof(*a4);
		if ((ntohl(a4->sin_addr.s_addr) >> 24) == 127)
			return 0;
	} else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)pn);
		*len = sizeof(*a6);
		if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			return 0;
	} else {
		goto bad;
	}
	egr_errf(err, errlen, "[metrics] listen = %s: not a loopback address (metrics are served to this machine only)", s);
	return -EINVAL;
bad:
	egr_errf(err, errlen, "[metrics] listen = %s: expected 127.0.0.1:PORT, [::1]:PORT or localhost:PORT", s);
	return -EINVAL;
}

/* A non-blocking listening socket on addr; the fd, or -errno with err set. */
static int open_listener(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc = parse_listen(addr, &ss, &len, err, errlen);
	char host[INET6_ADDRSTRLEN + 2] = "";

	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, NCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		egr_errf(err, errlen, "[metrics] listen = %s: %s", addr, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
	egr_notice("metrics: serving http://%s%s%s:%u/metrics", ss.ss_family == AF_INET6 ? "[" : "", host,
		   ss.ss_family == AF_INET6 ? "]" : "",
		   ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						 : ((struct sockaddr_in6 *)&ss)->sin6_port));
	return fd;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void close_all(struct egr_metrics *m)
{
	for (int i = 0; i < NCONN; i++)
		conn_close(&m->conns[i]);
	if (m->lfd >= 0)
		close(m->lfd);
	m->lfd = -1;
}

int egr_metrics_configure(struct egr_metrics *m, const struct egr_conf *c, char *err, size_t errlen)
{
	snprintf(m->textfile, sizeof(m->textfile), "%s", c->metrics_textfile);
	if (!strcmp(m->listen, c->metrics_listen))
		return 0;
	int fd = c->metrics_listen[0] ? open_listener(c->metrics_listen, err, errlen) : -1;
	if (fd < -1)
		return fd;
	close_all(m);
	m->lfd = fd;
	snprintf(m->listen, sizeof(m->listen), "%s", c->metrics_listen);
	return 0;
}

int egr_metrics_open(struct egr_metrics **out, const struct egr_conf *c, char *err, size_t errlen)
{
	struct egr_metrics *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m) {
		egr_errf(err, errlen, "metrics: out of memory");
		return -ENOMEM;
	}
	m->lfd = -1;
	for (int i = 0; i < NCONN; i++)
		m->conns[i].fd = -1;
	rc = egr_metrics_configure(m, c, err, errlen);
	if (rc < 0) {
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static void write_textfile(struct egr_metrics *m)
{
	char err[512], *text;

	if (!m->textfile[0] || !(text = egr_metrics_render(m)))
		return;
	if (egr_fs_write_view(m->textfile, text, err, sizeof(err)) < 0)
		egr_warn("metrics: %s", err);
	free(text);
}

void egr_metrics_close(struct egr_metrics *m)
{
	if (!m)
		return;
	write_textfile(m);
	close_all(m);
	free(m);
}

void egr_metrics_tick(struct egr_metrics *m, uint64_t now_ns)
{
	if (m && now_ns - m->last_write_ns >= TEXTFILE_PERIOD_NS) {
		m->last_write_ns = now_ns;
		write_textfile(m);
	}
}

/* ---- numbers ---- */

static void add_delta(uint64_t *total, uint64_t *seen, uint64_t now)
{
	if (now > *seen)
		*total += now - *seen;
	*seen = now;
}

void egr_metrics_observe(struct egr_metrics *m, const struct egr_job_view *j)
{
	struct row_seen *r;

	if (!m || !j->st.t_queued_ns || j->index >= EGR_RING_JOBS)
		return;
	r = &m->rows[j->index];
	if (r->t_queued_ns != j->st.t_queued_ns) {
		memset(r, 0, sizeof(*r));
		r->t_queued_ns = j->st.t_queued_ns;
	}
	add_delta(&m->frames, &r->frames, egr_status_frames_done(j));
	add_delta(&m->bytes, &r->bytes, j->st.bytes_written);
	add_delta(&m->blocked_ns, &r->blocked_ns, j->st.blocked_ns);
	add_delta(&m->gpu_kernel_ns, &r->gpu_kernel_ns, j->st.gpu_kernel_ns);
	add_delta(&m->gpu_wall_ns, &r->gpu_wall_ns, j->st.gpu_wall_ns);
}

void egr_metrics_ended(struct egr_metrics *m, const struct egr_job_view *j, const char *how)
{
	if (!m)
		return;
	egr_metrics_observe(m, j);
	m->rows[j->index].t_queued_ns = 0;
	for (size_t i = 0; i < NENDINGS; i++)
		m->jobs[i] += !strcmp(how, endings[i]);
	if (strcmp(how, "done"))
		return;
	if (j->st.gpu_wall_ns)
		m->gpu_util = (double)j->st.gpu_kernel_ns / (double)j->st.gpu_wall_ns;
	double wall = j->st.t_end_ns > j->st.t_start_ns ? (double)(j->st.t_end_ns - j->st.t_start_ns) / 1e9 : 0;
	size_t b = 0;
	while (b < NBUCKETS && wall > buckets[b])
		b++;
	m->hist[b]++;
	m->hist_count++;
	m->hist_sum += wall;
}

void egr_metrics_restart(struct egr_metrics *m, const char *role)
{
	if (m && !strcmp(role, "producer"))
		m->producer_restarts++;
	else if (m)
		m->worker_restarts++;
}

void egr_metrics_gauges(struct egr_metrics *m, uint64_t queue_depth, uint32_t running, uint32_t slots_busy,
			uint32_t slots)
{
	if (!m)
		return;
	m->queue_depth = queue_depth;
	m->running = running;
	m->slots_busy = slots_busy;
	m->slots = slots;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(FILE *f, const char *name, const char *type, const char *help, double v)
{
	family(f, name, type, help);
	fprintf(f, "%s %.17g\n", name, v);
}

char *egr_metrics_render(struct egr_metrics *m)
{
	char *buf = NULL;
	size_t len = 0, cum = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	family(f, "egressd_jobs_total", "counter", "Jobs that ended, by how they ended.");
	for (size_t i = 0; i < NENDINGS; i++)
		fprintf(f, "egressd_jobs_total{status=\"%s\"} %llu\n", endings[i], (unsigned long long)m->jobs[i]);
	one(f, "egressd_frames_total", "counter", "Frames written to disk.", (double)m->frames);
	one(f, "egressd_bytes_written_total", "counter", "Bytes of frames written to disk.", (double)m->bytes);
	one(f, "egressd_producer_blocked_seconds_total", "counter",
	    "Time the producer waited for a free slot (backpressure from the writers).", (double)m->blocked_ns / 1e9);
	one(f, "egressd_gpu_kernel_seconds_total", "counter", "GPU time in decode kernels.",
	    (double)m->gpu_kernel_ns / 1e9);
	one(f, "egressd_gpu_active_seconds_total", "counter", "GPU windows of jobs, first kernel to last copy.",
	    (double)m->gpu_wall_ns / 1e9);
	one(f, "egressd_gpu_kernel_utilisation", "gauge",
	    "Decode-kernel time over the GPU window of the last job the GPU decoded (0 to 1).", m->gpu_util);
	one(f, "egressd_queue_depth", "gauge", "Jobs waiting: in incoming/ (as last listed) and queued in the job table.",
	    (double)m->queue_depth);
	one(f, "egressd_jobs_running", "gauge", "Jobs being decoded or written.", m->running);
	one(f, "egressd_slots_busy", "gauge", "Ring slots being filled, ready or being written.", m->slots_busy);
	one(f, "egressd_slots", "gauge", "Ring slots.", m->slots);
	one(f, "egressd_worker_restarts_total", "counter", "Writer processes that died and were respawned.",
	    (double)m->worker_restarts);
	one(f, "egressd_producer_restarts_total", "counter", "Producer processes that died and were respawned.",
	    (double)m->producer_restarts);
	family(f, "egressd_job_duration_seconds", "histogram", "Wall time of done jobs, start to output in place.");
	for (size_t b = 0; b <= NBUCKETS; b++) {
		cum += m->hist[b];
		if (b < NBUCKETS)
			fprintf(f, "egressd_job_duration_seconds_bucket{le=\"%g\"} %zu\n", buckets[b], cum);
		else
			fprintf(f, "egressd_job_duration_seconds_bucket{le=\"+Inf\"} %zu\n", cum);
	}
	fprintf(f, "egressd_job_duration_seconds_sum %.17g\negressd_job_duration_seconds_count %llu\n",
		m->hist_sum, (unsigned long long)m->hist_count);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- the HTTP responder ---- */

int egr_metrics_pollfds(struct egr_metrics *m, struct pollfd *p, int max)
{
	uint64_t now = egr_log_now_ns();
	int n = 0;

	if (!m || m->lfd < 0)
		return 0;
	p[n] = (struct pollfd){ m->lfd, POLLIN, 0 };
	m->pmap[n++] = -1;
	for (int i = 0; i < NCONN && n < max; i++) {
		struct conn *c = &m->conns[i];
		if (c->fd < 0)
			continue;
		if (now > c->deadline_ns) {
			conn_close(c);
			continue;
		}
		p[n] = (struct pollfd){ c->fd, c->out ? POLLOUT : POLLIN, 0 };
		m->pmap[n++] = i;
	}
	return n;
}

#define HTTP_ANSWER "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s%s"

/* The request is in: GET /metrics gets the exposition, anything else an error status. */
static void conn_answer(struct egr_metrics *m, struct conn *c)
{
	const char *status = "200 OK", *path = c->in + 4;
	size_t plen = strcspn(path, " ?\r\n");
	char *body = NULL;

	if (strncmp(c->in, "GET ", 4))
		status = "405 Method Not Allowed";
	else if (plen != 8 || strncmp(path, "/metrics", 8))
		status = "404 Not Found";
	else if (!(body = egr_metrics_render(m)))
		status = "500 Internal Server Error";
	const char *ctype = body ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain";
	const char *text = body ? body : status, *nl = body ? "" : "\n";
	size_t blen = strlen(text) + strlen(nl);
	int need = snprintf(NULL, 0, HTTP_ANSWER, status, ctype, blen, text, nl);
	if (need > 0 && (c->out = malloc((size_t)need + 1))) {
		snprintf(c->out, (size_t)need + 1, HTTP_ANSWER, status, ctype, blen, text, nl);
		c->outlen = (size_t)need;
	}
	free(body);
	if (!c->out)
		conn_close(c);
}

static void conn_io(struct egr_metrics *m, struct conn *c)
{
	ssize_t r;

	if (!c->out) {
		r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, MSG_DONTWAIT);
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				conn_close(c);
			return;
		}
		c->inlen += (size_t)r;
		c->in[c->inlen] = 0;
		if (!strstr(c->in, "\r\n\r\n") && !strstr(c->in, "\n\n") && c->inlen < sizeof(c->in) - 1)
			return;	/* the rest of the request is still coming */
		conn_answer(m, c);
		if (c->fd < 0)
			return;
	}
	r = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0 && errno != EAGAIN && errno != EINTR)
		conn_close(c);
	else if (r > 0 && (c->outoff += (size_t)r) == c->outlen)
		conn_close(c);
}

static void accept_all(struct egr_metrics *m)
{
	int fd;

	while ((fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		int i = 0;
		while (i < NCONN && m->conns[i].fd >= 0)
			i++;
		if (i == NCONN) {
			close(fd);	/* busy: the scraper retries */
			continue;
		}
		m->conns[i].fd = fd;
		m->conns[i].deadline_ns = egr_log_now_ns() + CONN_TIMEOUT_NS;
	}
}

void egr_metrics_serve(struct egr_metrics *m, const struct pollfd *p, int n)
{
	for (int k = 0; m && k < n; k++) {
		if (!p[k].revents)
			continue;
		if (m->pmap[k] < 0)
			accept_all(m);
		else if (m->conns[m->pmap[k]].fd == p[k].fd)
			conn_io(m, &m->conns[m->pmap[k]]);
	}
}
