/* queue: incoming/ listed once, handed out in arrival order; see queue.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/base/log.h"
#include "daemon/supervisor/queue.h"
#include "daemon/supervisor/spool.h"

void egr_queue_free(struct egr_queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->v[i].name);
	free(q->v);
	q->v = NULL;
	q->n = q->next = 0;
}

static int by_arrival(const void *a, const void *b)
{
	const struct egr_queue_ent *x = a, *y = b;

	if (x->ctime.tv_sec != y->ctime.tv_sec)
		return x->ctime.tv_sec < y->ctime.tv_sec ? -1 : 1;
	if (x->ctime.tv_nsec != y->ctime.tv_nsec)
		return x->ctime.tv_nsec < y->ctime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Append name (any entry of d: the claim judges its type) to q; 0, 1 when skipped, or -ENOMEM. */
static int add(struct egr_queue *q, size_t *cap, DIR *d, const char *name)
{
	struct stat sb;

	if (!egr_spool_eligible(name) || fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 1;
	if (q->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct egr_queue_ent *nv = realloc(q->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		q->v = nv;
		*cap = nc;
	}
	if (!(q->v[q->n].name = strdup(name)))
		return -ENOMEM;
	q->v[q->n++].ctime = sb.st_ctim;
	return 0;
}

int egr_queue_list(struct egr_queue *q, const char *spool, char *err, size_t errlen)
{
	char p[4096];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;
	int rc = 0;

	egr_queue_free(q);
	if (egr_spool_path(p, sizeof(p), spool, EGR_SPOOL_INCOMING, NULL) < 0) {
		egr_errf(err, errlen, "spool path \"%s\" is too long", spool);
		return -ENAMETOOLONG;
	}
	if (!(d = opendir(p))) {
		rc = -errno;
		egr_errf(err, errlen, "opendir(\"%s\"): %s", p, strerror(-rc));
		return rc;
	}
	while ((de = readdir(d)) && rc >= 0)
		rc = add(q, &cap, d, de->d_name);
	closedir(d);
	if (rc < 0) {
		egr_queue_free(q);
		egr_errf(err, errlen, "listing \"%s\": out of memory", p);
		return rc;
	}
	if (q->n)
		qsort(q->v, q->n, sizeof(*q->v), by_arrival);
	return 0;
}

const char *egr_queue_pop(struct egr_queue *q)
{
	return q->next < q->n ? q->v[q->next++].name : NULL;
}

size_t egr_queue_waiting(const struct egr_queue *q)
{
	return q->n - q->next;
}
