/* egressctl status and list: tables for people, --json for scripts. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/client/cmd.h"

/* a number where the whole value is one, else the string */
static json_t *json_value(const char *v)
{
	char *end;
	double d = strtod(v, &end);

	if (*v && !*end && end != v)
		return d == (double)(long long)d && strchr(v, '.') == NULL ? json_integer((json_int_t)d) : json_real(d);
	return json_string(v);
}

json_t *egr_cmd_job_json(const struct egr_client_job *j)
{
	json_t *o = json_object(), *kv = json_object();

	json_object_set_new(o, "id", json_string(j->id));
	json_object_set_new(o, "state", json_string(egr_client_state_name(j->state)));
	json_object_set_new(o, "owner_uid", j->uid >= 0 ? json_integer(j->uid) : json_null());
	json_object_set_new(o, "submitted", j->submitted > 0 ? json_real(j->submitted) : json_null());
	json_object_set_new(o, "frames_done", json_integer((json_int_t)j->frames_done));
	json_object_set_new(o, "frames_total", json_integer((json_int_t)j->frames_total));
	json_object_set_new(o, "frames_per_s", json_real(j->frames_per_s));
	json_object_set_new(o, "eta_s", j->eta_s >= 0 ? json_real(j->eta_s) : json_null());
	json_object_set_new(o, "error", j->error[0] ? json_string(j->error) : json_null());
	for (size_t i = 0; i < j->nkv; i++)
		json_object_set_new(kv, j->kv[i].key, json_value(j->kv[i].value));
	/* done: the result file's keys; queued/running: the status file's */
	json_object_set_new(o, j->state == EGR_CS_DONE ? "result" : "status", kv);
	return o;
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));

	if (s)
		puts(s);
	free(s);
	json_decref(v);
}

static void row_header(void)
{
	printf("%-44s %-10s %15s %9s %7s %6s\n", "ID", "STATE", "FRAMES", "FRAMES/S", "ETA", "OWNER");
}

static void row(const struct egr_client_job *j)
{
	char frames[48], eta[24] = "-", owner[24] = "-";

	snprintf(frames, sizeof(frames), "%llu/%llu", (unsigned long long)j->frames_done,
		 (unsigned long long)j->frames_total);
	if (j->eta_s >= 0 && !egr_client_ended(j->state))
		snprintf(eta, sizeof(eta), "%.0fs", j->eta_s);
	if (j->uid >= 0)
		snprintf(owner, sizeof(owner), "%ld", j->uid);
	printf("%-44s %-10s %15s %9.1f %7s %6s\n", j->id, egr_client_state_name(j->state), frames, j->frames_per_s,
	       eta, owner);
}

/* One job, every key: for `status ID`. */
static void detail(const struct egr_client_job *j)
{
	printf("id: %s\nstate: %s\n", j->id, egr_client_state_name(j->state));
	if (j->uid >= 0)
		printf("owner_uid: %ld\n", j->uid);
	if (j->error[0])
		printf("error: %s\n", j->error);
	for (size_t i = 0; i < j->nkv; i++)
		if (strcmp(j->kv[i].key, "job") && strcmp(j->kv[i].key, "state") && strcmp(j->kv[i].key, "status"))
			printf("%s: %s\n", j->kv[i].key, j->kv[i].value);
}

/* ids (or the spool's jobs: unfinished ones only when asked) as a table or JSON */
static int show(const struct egr_client *c, char **ids, size_t n, int json, int detailed)
{
	static struct egr_client_job j;	/* large: not on the stack */
	json_t *arr = json ? json_array() : NULL;
	int rc = EGR_CTL_OK;

	if (!json && !detailed)
		row_header();
	for (size_t i = 0; i < n; i++) {
		if (egr_client_lookup(c, ids[i], &j) < 0 && detailed) {
			egr_cmd_say("no job %s in %s", ids[i], c->spool);
			rc = EGR_CTL_NO_JOB;
			continue;
		}
		if (j.state == EGR_CS_UNKNOWN)
			continue;	/* gone while listed */
		if (json) {
			json_array_append_new(arr, egr_cmd_job_json(&j));
		} else if (detailed) {
			printf("%s", i ? "\n" : "");
			detail(&j);
		} else {
			row(&j);
		}
	}
	if (json && detailed && n == 1) {
		/* `status --json ID`: the object itself */
		print_json(json_array_size(arr) ? json_incref(json_array_get(arr, 0)) : json_null());
		json_decref(arr);
	} else if (json) {
		print_json(arr);
	}
	return rc;
}

static int parse_json_flag(int argc, char **argv, const char *usage, int *json)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	int opt;

	*json = 0;
	while ((opt = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (opt != 'j') {
			egr_cmd_say("usage: %s", usage);
			return -1;
		}
		*json = 1;
	}
	return 0;
}

/* jobs of the spool (unfinished ones, or all), oldest first */
static int show_spool(const struct egr_client *c, int unfinished, int json)
{
	char **ids, err[512];
	size_t n;

	if (egr_client_list(c, unfinished, &ids, &n, err, sizeof(err)) < 0) {
		egr_cmd_say("%s", err);
		return EGR_CTL_FAILED;
	}
	int rc = show(c, ids, n, json, 0);
	egr_client_free_list(ids, n);
	return rc;
}

int egr_cmd_status(const struct egr_client *c, int argc, char **argv)
{
	int json;

	if (parse_json_flag(argc, argv, "egressctl status [--json] [ID ...]", &json) < 0)
		return EGR_EXIT_USAGE;
	if (optind < argc)
		return show(c, argv + optind, (size_t)(argc - optind), json, 1);
	return show_spool(c, 1, json);
}

int egr_cmd_list(const struct egr_client *c, int argc, char **argv)
{
	int json;

	if (parse_json_flag(argc, argv, "egressctl list [--json]", &json) < 0 || optind < argc) {
		if (optind < argc)
			egr_cmd_say("usage: egressctl list [--json]");
		return EGR_EXIT_USAGE;
	}
	return show_spool(c, 0, json);
}
