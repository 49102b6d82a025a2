/*
 * cmd_run.c - `theater run MANIFEST [--send MSG]... [--request MSG]...`:
 * runs an actor in-process on the embedded runtime (data in
 * $THEATER_HOME), sends it the given messages in order, and prints every
 * event its chain (and the chains of the actors it spawns) records.
 * `theater run --resume ID` rebuilds an actor whose runtime died from its
 * chain first (thr_resume).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "cli/cli.h"
#include "theater/runtime.h"
#include "theater/supervise.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static bool show_runtime;
static bool quiet;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: theater run MANIFEST [options]\n"
		"       theater run --resume ID [MANIFEST] [options]\n"
		"Runs the actor described by MANIFEST in this process and prints\n"
		"the events it records. Messages are sent in the order given.\n\n"
		"  --resume ID       rebuild actor ID from its chain after its runtime\n"
		"                    died: its last committed state, and every message\n"
		"                    received but not acknowledged delivered again with\n"
		"                    its id (MANIFEST: instead of the recorded one)\n"
		"  --durability D    always | batch (default) | none: when an event is\n"
		"                    on disk (always: before the call that made it returns)\n"
		"  --send MSG        one-way message (handle-send)\n"
		"  --request MSG     request (handle-request); prints the reply\n"
		"  --wait            keep running until the actor stops (or Ctrl-C)\n"
		"  --timeout MS      longest wait for the actor to go idle (10000)\n"
		"  --workers N       worker threads (default: one per CPU)\n"
		"  --runtime-events  also print the runtime chain's events\n"
		"  --tree            at the end, print the supervision tree (status,\n"
		"                    restarts and circuit state of every actor)\n"
		"  --quiet           print only replies and errors\n");
}

/* Printable text as is, anything else in hex. */
static void put_bytes(FILE *f, const uint8_t *p, size_t n)
{
	bool text = true;
	for (size_t i = 0; i < n && text; i++)
		text = (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\t';
	if (text) {
		fprintf(f, "\"%.*s\"", (int)(n > 200 ? 200 : n), (const char *)p);
		if (n > 200)
			fprintf(f, "...");
		return;
	}
	fprintf(f, "0x");
	for (size_t i = 0; i < n && i < 64; i++)
		fprintf(f, "%02x", p[i]);
	if (n > 64)
		fprintf(f, "... (%zu bytes)", n);
}

/* A short, readable summary of an event's CBOR data. */
static void summary(FILE *f, const thx_event *ev)
{
	th_cbor_dec d;
	uint64_t n, u;
	const char *s;
	const uint8_t *b;
	size_t len;

	if (!ev->data)
		return;
	th_cbor_dec_init(&d, ev->data, ev->len);
	if (!strcmp(ev->type, "host.theater:simple/runtime.log")) {
		/* [[msg], null] */
		if (!th_cbor_get_array(&d, &n, NULL) && !th_cbor_get_array(&d, &n, NULL) &&
		    !th_cbor_get_text(&d, &s, &len, NULL))
			fprintf(f, " %.*s", (int)len, s);
		return;
	}
	if (!strcmp(ev->type, "message.received") || !strcmp(ev->type, "message.dropped") ||
	    !strcmp(ev->type, "message.redelivered")) {
		/* [id, kind, sender, ref, data|why] */
		if (th_cbor_get_array(&d, &n, NULL) || th_cbor_get_uint(&d, &u, NULL))
			return;
		fprintf(f, " #%llu", (unsigned long long)u);
		if (!th_cbor_get_text(&d, &s, &len, NULL))
			fprintf(f, " %.*s", (int)len, s);
		if (!th_cbor_get_text(&d, &s, &len, NULL) && len)
			fprintf(f, " from %.*s", (int)(len > 8 ? 8 : len), s);
		th_cbor_skip(&d, NULL);
		if (!th_cbor_get_bytes(&d, &b, &len, NULL)) {
			fputc(' ', f);
			put_bytes(f, b, len);
		} else if (!th_cbor_get_text(&d, &s, &len, NULL)) {
			fprintf(f, " (%.*s)", (int)len, s);
		}
		return;
	}
	if (!strcmp(ev->type, "actor.failed") || !strcmp(ev->type, "permission.denied")) {
		if (!th_cbor_get_array(&d, &n, NULL) && !th_cbor_get_text(&d, &s, &len, NULL) &&
		    !th_cbor_get_text(&d, &s, &len, NULL))
			fprintf(f, " %.*s", (int)len, s);
		return;
	}
	if (!strcmp(ev->type, "message.response")) {
		if (!th_cbor_get_array(&d, &n, NULL) && !th_cbor_skip(&d, NULL) &&
		    !th_cbor_skip(&d, NULL) && !th_cbor_get_bytes(&d, &b, &len, NULL)) {
			fputc(' ', f);
			put_bytes(f, b, len);
		}
		return;
	}
	if (!strcmp(ev->type, "export.call") || !strcmp(ev->type, "export.result")) {
		/* [export, msg-id, ...]: the function's short name */
		if (!th_cbor_get_array(&d, &n, NULL) && !th_cbor_get_text(&d, &s, &len, NULL)) {
			const char *dot = memchr(s, '.', len);
			size_t k = dot ? len - (size_t)(dot + 1 - s) : len;
			fprintf(f, " %.*s", (int)k, dot ? dot + 1 : s);
			if (!th_cbor_get_uint(&d, &u, NULL))
				fprintf(f, " #%llu", (unsigned long long)u);
		}
		return;
	}
	if (!strcmp(ev->type, "component.loaded")) {
		if (!th_cbor_get_array(&d, &n, NULL) && !th_cbor_get_text(&d, &s, &len, NULL))
			fprintf(f, " %.12s...", s);
		return;
	}
	if (!strcmp(ev->type, "actor.created") || !strcmp(ev->type, "actor.spawning")) {
		if (!th_cbor_get_array(&d, &n, NULL) && !th_cbor_get_text(&d, &s, &len, NULL))
			fprintf(f, " %.*s", (int)len, s);
		return;
	}
}

static int on_event(const thx_event *ev, void *arg)
{
	TH_UNUSED(arg);
	bool rt_chain = !strcmp(ev->actor, THX_RUNTIME_CHAIN);
	if (quiet || (rt_chain && !show_runtime))
		return 0;
	pthread_mutex_lock(&out_lock);
	printf("%-8.8s %4llu %s", ev->actor, (unsigned long long)ev->seq, ev->type);
	summary(stdout, ev);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	TH_UNUSED(sig);
	interrupted = 1;
}

int cli_run(int argc, char **argv)
{
	const char *manifest = NULL, *resume = NULL;
	thx_durability durability = THX_BATCH;
	const char **msgs = NULL;
	bool *is_req = NULL;
	int nmsgs = 0, workers = 0, rc = CLI_OK;
	long timeout = 10000;
	bool wait = false, tree = false;
	thr_runtime *rt = NULL;
	thr_options o = { 0 };
	th_err err = { 0 };
	char id[THR_ID_LEN + 1];
	uint64_t sub;

	msgs = th_calloc((size_t)argc, sizeof *msgs);
	is_req = th_calloc((size_t)argc, sizeof *is_req);
	if (!msgs || !is_req) {
		cli_error("out of memory");
		rc = CLI_FAIL;
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			goto out;
		} else if ((!strcmp(a, "--send") || !strcmp(a, "--request")) && i + 1 < argc) {
			is_req[nmsgs] = a[2] == 'r';
			msgs[nmsgs++] = argv[++i];
		} else if (!strcmp(a, "--resume") && i + 1 < argc) {
			resume = argv[++i];
		} else if (!strcmp(a, "--durability") && i + 1 < argc) {
			const char *d = argv[++i];
			if (!strcmp(d, "always")) {
				durability = THX_ALWAYS;
			} else if (!strcmp(d, "batch")) {
				durability = THX_BATCH;
			} else if (!strcmp(d, "none")) {
				durability = THX_NONE;
			} else {
				cli_error("--durability wants always, batch or none, not '%s'", d);
				rc = CLI_USAGE;
				goto out;
			}
		} else if (!strcmp(a, "--wait")) {
			wait = true;
		} else if (!strcmp(a, "--quiet")) {
			quiet = true;
		} else if (!strcmp(a, "--runtime-events")) {
			show_runtime = true;
		} else if (!strcmp(a, "--tree")) {
			tree = true;
		} else if (!strcmp(a, "--timeout") && i + 1 < argc) {
			char *end;
			timeout = strtol(argv[++i], &end, 10);
			if (*end || timeout <= 0) {
				cli_error("--timeout wants a positive number of milliseconds");
				rc = CLI_USAGE;
				goto out;
			}
		} else if (!strcmp(a, "--workers") && i + 1 < argc) {
			char *end;
			long w = strtol(argv[++i], &end, 10);
			if (*end || w <= 0 || w > 1024) {
				cli_error("--workers wants a number from 1 to 1024");
				rc = CLI_USAGE;
				goto out;
			}
			workers = (int)w;
		} else if (a[0] == '-' || manifest) {
			cli_error("run: unexpected argument '%s' (see 'theater run --help')", a);
			rc = CLI_USAGE;
			goto out;
		} else {
			manifest = a;
		}
	}
	if (!manifest && !resume) {
		usage(stderr);
		rc = CLI_USAGE;
		goto out;
	}

	o.home = cli_home();
	o.workers = workers;
	o.durability = durability;
	if (thr_runtime_new(&o, &rt, &err)) {
		cli_error("%s", err.msg);
		rc = CLI_FAIL;
		goto out;
	}
	thr_subscribe(rt, NULL, on_event, NULL, &sub, NULL);
	if (resume) {
		thr_resume_opts ro = { .manifest_path = manifest };
		thr_resume_info ri;
		snprintf(id, sizeof id, "%s", resume);
		if (thr_resume(rt, resume, &ro, &ri, &err)) {
			thr_quiesce(rt, 1000, NULL);
			cli_error("%s", err.msg);
			rc = CLI_FAIL;
			goto out;
		}
		if (!quiet) {
			pthread_mutex_lock(&out_lock);
			printf("actor %s resumed after event %llu: %llu messages "
			       "redelivered\n", id, (unsigned long long)ri.from_seq - 1,
			       (unsigned long long)ri.redelivered);
			pthread_mutex_unlock(&out_lock);
		}
	} else {
		thr_spawn_opts so = { .manifest_path = manifest };
		if (thr_spawn(rt, &so, id, &err)) {
			if (id[0])
				thr_quiesce(rt, 1000, NULL); /* let the events print */
			cli_error("%s", err.msg);
			rc = CLI_FAIL;
			goto out;
		}
		if (!quiet) {
			pthread_mutex_lock(&out_lock);
			printf("actor %s started\n", id);
			pthread_mutex_unlock(&out_lock);
		}
	}
	for (int i = 0; i < nmsgs; i++) {
		const char *m = msgs[i];
		if (!is_req[i]) {
			if (thr_send(rt, id, m, strlen(m), THR_SEND_WAIT, &err)) {
				cli_error("send: %s", err.msg);
				rc = CLI_FAIL;
			}
			continue;
		}
		uint8_t *reply;
		size_t n;
		/* Let earlier sends be handled first: requests see their effect. */
		thr_quiesce(rt, (uint32_t)timeout, NULL);
		if (thr_request(rt, id, m, strlen(m), (uint32_t)timeout, &reply, &n, &err)) {
			cli_error("request: %s", err.msg);
			rc = CLI_FAIL;
			continue;
		}
		pthread_mutex_lock(&out_lock);
		printf("reply: ");
		put_bytes(stdout, reply, n);
		putchar('\n');
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
		thr_free(reply);
	}
	if (wait) {
		signal(SIGINT, on_sigint);
		while (!interrupted && thr_wait(rt, id, 200, NULL) == TH_ETIMEOUT)
			;
	} else if (thr_quiesce(rt, (uint32_t)timeout, &err)) {
		cli_error("%s", err.msg);
		rc = CLI_FAIL;
	}
	char *text;
	if (tree && thr_tree_text(rt, &text, NULL) == 0) {
		pthread_mutex_lock(&out_lock);
		printf("supervision tree:\n%s", text);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
		thr_free(text);
	}
	thr_actor_info info;
	if (thr_actor_info_get(rt, id, &info, NULL) == 0 && info.status == THR_FAILED) {
		cli_error("actor %s failed: %s", id, info.reason);
		rc = CLI_FAIL;
	}
out:
	thr_runtime_free(rt);
	th_free(msgs);
	th_free(is_req);
	return rc;
}
