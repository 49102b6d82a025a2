/*
 * bench_supervision.c - supervision benchmarks (docs/supervision.md).
 *
 *  restart  A small actor (tests/runtime/actors/crasher.wat) traps and is
 *           restarted by its policy (backoff 0, preserve state, discard
 *           mailbox), N times in a row. The time from failure detection
 *           (finalize) to ready (init done) is what each
 *           supervision.recovered event records; median and p99 of those
 *           are reported, next to a fresh spawn of the same actor
 *           (thr_spawn to ready) as the reference.
 *  storm    STORM actors fail at once (each traps and is restarted once)
 *           while healthy actors exchange requests (an external request
 *           to A, whose handler requests B): the round-trip latency
 *           p50/p99 of the healthy pairs during the storm, next to the
 *           same measured before it (ratio). Reference, first: the same
 *           STORM actors get the same burst of messages and handle them
 *           without failing (what a burst of ready work costs the
 *           healthy pairs, failures aside).
 *
 *   bench_supervision DIR [--n N] [--storm S] [--workers W]
 * DIR holds crasher.wasm (bench/supervision/run.sh assembles it). Chains
 * are in memory (durability none): the cost measured is the runtime's.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "theater/runtime.h"
#include "theater/supervise.h"

static const char *dir;
static int workers;

static char *manifest(const char *name, const char *extra)
{
	static char buf[8][2048];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"%s/crasher.wasm\"\n"
		 "[[handler]]\ntype = \"runtime\"\n[[handler]]\ntype = \"message-server\"\n%s",
		 name, dir, extra);
	return b;
}

#define POLICY "[supervision]\nrestart = \"permanent\"\nbackoff_min_ms = 0\n" \
	"backoff_max_ms = 0\nmax_restarts = 1000000\nwithin_seconds = 1\n"       \
	"circuit_failures = 0\nmailbox = \"discard\"\n"

static thr_runtime *runtime(const char *home)
{
	thr_options o = { 0 };
	thr_runtime *rt;
	th_err err = { 0 };
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
	if (system(cmd) != 0)
		exit(1);
	o.home = home;
	o.workers = workers;
	o.durability = THX_NONE;
	o.store_no_sync = true;
	if (thr_runtime_new(&o, &rt, &err)) {
		fprintf(stderr, "runtime: %s\n", err.msg);
		exit(1);
	}
	return rt;
}

static void spawn(thr_runtime *rt, const char *text, char id[THR_ID_LEN + 1],
		  unsigned flags)
{
	thr_spawn_opts so = { .manifest_text = text, .flags = flags };
	th_err err = { 0 };
	if (thr_spawn(rt, &so, id, &err)) {
		fprintf(stderr, "spawn: %s\n", err.msg);
		exit(1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return n ? v[i < n ? i : n - 1] : 0;
}

/* The first text field of each supervision.recovered event of chain id. */
static size_t recovered_times(thr_runtime *rt, const char *id, uint64_t *out,
			      size_t max)
{
	thx_chain *c;
	size_t k = 0;
	if (thx_chain_open(thr_runtime_chains(rt), id, NULL, false, &c, NULL))
		return 0;
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n && k < max; i++) {
		thx_event ev = { 0 };
		th_cbor_dec d;
		uint64_t cnt;
		const char *s;
		size_t len;
		if (thx_get(c, i, &ev, NULL))
			break;
		if (!strcmp(ev.type, "supervision.recovered")) {
			th_cbor_dec_init(&d, ev.data, ev.len);
			if (!th_cbor_get_array(&d, &cnt, NULL) &&
			    !th_cbor_get_text(&d, &s, &len, NULL))
				out[k++] = strtoull(s, NULL, 10);
		}
		thx_event_release(&ev);
	}
	return k;
}

static void bench_restart(int n)
{
	thr_runtime *rt = runtime("/tmp/theater-bench-sv-restart");
	char id[THR_ID_LEN + 1];
	uint64_t *t = calloc((size_t)n, sizeof *t), *sp = calloc((size_t)n, sizeof *sp);
	thr_sup_info si;
	size_t k;

	if (!t || !sp)
		exit(1);
	/* reference: spawning the same actor, to ready */
	for (int i = 0; i < n; i++) {
		uint64_t t0 = th_now_ns();
		spawn(rt, manifest("ref", POLICY), id, 0);
		sp[i] = th_now_ns() - t0;
		thr_stop(rt, id, NULL);
	}
	spawn(rt, manifest("victim", POLICY), id, 0);
	for (int i = 1; i <= n; i++) {
		if (thr_send(rt, id, "!", 1, THR_SEND_WAIT, NULL))
			i--; /* between failure and restart: try again */
		else
			for (;;) {
				thr_sup_info_get(rt, id, &si, NULL);
				thr_actor_info info;
				thr_actor_info_get(rt, id, &info, NULL);
				if (si.restarts >= (uint32_t)i && info.status == THR_RUNNING)
					break;
				/* Poll gently: a spinning poller takes the actor's
				 * locks and a CPU from the restart it is timing. */
				usleep(20);
			}
	}
	thr_quiesce(rt, 0, NULL);
	k = recovered_times(rt, id, t, (size_t)n);
	qsort(t, k, sizeof *t, cmp_u64);
	qsort(sp, (size_t)n, sizeof *sp, cmp_u64);
	printf("restart (failure detected -> ready), %zu restarts: median %.1f us, "
	       "p99 %.1f us\n", k, pct(t, k, 0.5) / 1e3, pct(t, k, 0.99) / 1e3);
	printf("reference: spawn of the same actor -> ready, %d spawns: median "
	       "%.1f us, p99 %.1f us\n", n, pct(sp, (size_t)n, 0.5) / 1e3,
	       pct(sp, (size_t)n, 0.99) / 1e3);
	printf("ratio restart/spawn (median): %.2f\n",
	       (double)pct(t, k, 0.5) / (double)pct(sp, (size_t)n, 0.5));
	free(t);
	free(sp);
	thr_runtime_free(rt);
}

#define PAIRS 4

static double cpu_s(const struct rusage *r)
{
	return (double)r->ru_utime.tv_sec + (double)r->ru_utime.tv_usec / 1e6 +
	       (double)r->ru_stime.tv_sec + (double)r->ru_stime.tv_usec / 1e6;
}

typedef struct storm_ctx {
	thr_runtime *rt;
	char (*ids)[THR_ID_LEN + 1];
	int n;
	bool fail;        /* "!" traps; the reference storm sends "+" */
	_Atomic int sent; /* every trigger message is queued */
	_Atomic int done;
} storm_ctx;

static void *storm_thread(void *arg)
{
	storm_ctx *s = arg;
	for (int i = 0; i < s->n; i++)
		thr_send(s->rt, s->ids[i], s->fail ? "!" : "+", 1, THR_SEND_WAIT,
			 NULL);
	atomic_store(&s->sent, 1);
	/* every one failed and came back */
	thr_stats st;
	do {
		thr_runtime_stats(s->rt, &st);
		usleep(1000);
	} while (s->fail && st.failed < (uint64_t)s->n);
	thr_quiesce(s->rt, 0, NULL);
	atomic_store(&s->done, 1);
	return NULL;
}

/* Round trips through the healthy pairs until stop (or max); latencies
 * into v, and (phase not NULL) whether *phase was set when each began
 * into ph. */
static size_t measure(thr_runtime *rt, char a[PAIRS][THR_ID_LEN + 1],
		      char b[PAIRS][THR_ID_LEN + 1], uint64_t *v, size_t max,
		      _Atomic int *stop, _Atomic int *phase, uint8_t *ph)
{
	size_t k = 0;
	char msg[64];
	while (k < max && !(stop && atomic_load(stop))) {
		int p = (int)(k % PAIRS);
		uint8_t *reply;
		size_t len;
		th_err err = { 0 };
		snprintf(msg, sizeof msg, "r%s?", b[p]);
		uint64_t t0 = th_now_ns();
		if (phase)
			ph[k] = (uint8_t)atomic_load(phase);
		if (thr_request(rt, a[p], msg, strlen(msg), 0, &reply, &len, &err)) {
			fprintf(stderr, "healthy request failed: %s\n", err.msg);
			exit(1);
		}
		v[k++] = th_now_ns() - t0;
		thr_free(reply);
	}
	return k;
}

/* fail: the storm; else the reference: the same actors and messages,
 * handled without failing. */
static void bench_storm(int n, bool fail)
{
	thr_runtime *rt = runtime("/tmp/theater-bench-sv-storm");
	char a[PAIRS][THR_ID_LEN + 1], b[PAIRS][THR_ID_LEN + 1];
	storm_ctx s = { .rt = rt, .n = n, .fail = fail };
	const char *what = fail ? "storm" : "reference (no failure)";
	size_t max = 2000000, k0, k1;
	uint64_t *base = malloc(max * sizeof *base), *during = malloc(max * sizeof *during);
	uint64_t *split[2] = { malloc(max * sizeof(uint64_t)), malloc(max * sizeof(uint64_t)) };
	uint8_t *ph = malloc(max);
	size_t ks[2] = { 0, 0 };
	pthread_t th;
	uint64_t t0, t1;
	struct rusage ru0, ru1;

	s.ids = calloc((size_t)n, sizeof *s.ids);
	if (!base || !during || !s.ids || !split[0] || !split[1] || !ph)
		exit(1);
	for (int i = 0; i < PAIRS; i++) {
		spawn(rt, manifest("healthy-a", ""), a[i], 0);
		spawn(rt, manifest("healthy-b", ""), b[i], 0);
	}
	t0 = th_now_ns();
	for (int i = 0; i < n; i++)
		spawn(rt, manifest("storm", POLICY), s.ids[i], THR_SPAWN_NO_WAIT);
	thr_quiesce(rt, 0, NULL);
	t1 = th_now_ns();
	printf("%s: %d actors spawned in %.2f s\n", what, n, (t1 - t0) / 1e9);

	k0 = measure(rt, a, b, base, 20000, NULL, NULL, NULL);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = th_now_ns();
	pthread_create(&th, NULL, storm_thread, &s);
	k1 = measure(rt, a, b, during, max, &s.done, &s.sent, ph);
	pthread_join(th, NULL);
	t1 = th_now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	thr_stats st;
	thr_runtime_stats(rt, &st);
	for (size_t i = 0; i < k1; i++)
		split[ph[i]][ks[ph[i]]++] = during[i];
	qsort(base, k0, sizeof *base, cmp_u64);
	qsort(during, k1, sizeof *during, cmp_u64);
	qsort(split[0], ks[0], sizeof(uint64_t), cmp_u64);
	qsort(split[1], ks[1], sizeof(uint64_t), cmp_u64);
	printf("%s: %d messages, %llu failures and their restarts took %.2f s "
	       "wall, %.2f s CPU (all threads, healthy round trips included): "
	       "%.0f restarts/s\n", what, n,
	       (unsigned long long)st.failed, (t1 - t0) / 1e9,
	       cpu_s(&ru1) - cpu_s(&ru0), (double)st.failed / ((t1 - t0) / 1e9));
	printf("healthy round trips (A -> B -> A, %d pairs), before: %zu, p50 %.1f us, "
	       "p99 %.1f us\n", PAIRS, k0, pct(base, k0, 0.5) / 1e3,
	       pct(base, k0, 0.99) / 1e3);
	printf("healthy round trips during the %s: %zu, p50 %.1f us, p99 %.1f us "
	       "(ratio to before: p50 %.2f, p99 %.2f)\n", what, k1, pct(during, k1, 0.5) / 1e3,
	       pct(during, k1, 0.99) / 1e3,
	       (double)pct(during, k1, 0.5) / (double)pct(base, k0, 0.5),
	       (double)pct(during, k1, 0.99) / (double)pct(base, k0, 0.99));
	printf("  during: p90 %.1f us, p99.9 %.1f us, max %.1f us; before: p90 %.1f, p99.9 %.1f, max %.1f us\n",
	       pct(during, k1, 0.9) / 1e3, pct(during, k1, 0.999) / 1e3, pct(during, k1, 1.0) / 1e3,
	       pct(base, k0, 0.9) / 1e3, pct(base, k0, 0.999) / 1e3, pct(base, k0, 1.0) / 1e3);
	for (int i = 0; i < 2; i++)
		printf("  %s: %zu, p50 %.1f us, p99 %.1f us, max %.1f us\n",
		       i ? "after the trigger messages were all queued"
			 : "while the 10,000 trigger messages were being sent",
		       ks[i], pct(split[i], ks[i], 0.5) / 1e3,
		       pct(split[i], ks[i], 0.99) / 1e3, pct(split[i], ks[i], 1.0) / 1e3);
	free(base);
	free(during);
	free(split[0]);
	free(split[1]);
	free(ph);
	free(s.ids);
	thr_runtime_free(rt);
}

int main(int argc, char **argv)
{
	int n = 2000, storm = 10000;
	if (argc < 2) {
		fprintf(stderr, "usage: bench_supervision DIR [--n N] [--storm S] [--workers W]\n");
		return 2;
	}
	dir = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--n"))
			n = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--storm"))
			storm = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--workers"))
			workers = atoi(argv[i + 1]);
	}
	if (n < 1 || storm < 1)
		return 2;
	bench_restart(n);
	bench_storm(storm, false);
	bench_storm(storm, true);
	return 0;
}
