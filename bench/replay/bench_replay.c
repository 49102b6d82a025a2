/*
 * bench_replay.c - replay speed against the original run, side by side in
 * one process (docs/replay.md).
 *
 * Live: a runtime (1 worker, chains in memory) runs the counter actor
 * (tests/runtime/actors/counter.wat) on N messages sent from outside, one
 * in four making a host call (runtime.log); timed from the first send to
 * quiescence. Replay: thrp_replay of that actor's chain right after, from
 * the same in-memory chain store (no disk on either side): re-instantiate,
 * re-run every export call, answer every host call from the chain, check
 * every event's hash and link, compare every result. Reported: messages/s
 * both ways (wall and CPU), and replay/live. Median of --runs runs.
 *
 *   bench_replay WASM [--n N] [--runs R] [--workers W]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "theater/replay.h"
#include "theater/runtime.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
	       (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	long n = 200000, runs = 3, workers = 1;
	const char *wasm;
	double lw[16], lc[16], rw[16], rc[16];
	if (argc < 2) {
		fprintf(stderr, "usage: bench_replay WASM [--n N] [--runs R] [--workers W]\n");
		return 2;
	}
	wasm = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--n"))
			n = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--workers"))
			workers = atol(argv[i + 1]);
	}
	if (n < 1 || runs < 1 || runs > 16 || workers < 1) {
		fprintf(stderr, "bench_replay: bad --n, --runs (1..16) or --workers\n");
		return 2;
	}
	printf("replay vs live: counter actor, %ld messages (1 in 4 logs), live on "
	       "%ld worker(s), chains in memory, median of %ld runs\n", n, workers, runs);
	for (long r = 0; r < runs; r++) {
		char home[] = "/tmp/bench-replay-XXXXXX", manifest[1024], id[THR_ID_LEN + 1];
		char cmd[64];
		thr_options o = { 0 };
		thr_runtime *rt = NULL;
		th_err err = { 0 };
		thrp_report rep;
		thx_chain *c;
		if (!mkdtemp(home))
			return 1;
		o.home = home;
		o.workers = (int)workers;
		o.durability = THX_NONE;
		o.store_no_sync = true;
		if (thr_runtime_new(&o, &rt, &err)) {
			fprintf(stderr, "runtime: %s\n", err.msg);
			return 1;
		}
		snprintf(manifest, sizeof manifest,
			 "name = \"counter\"\nversion = \"1\"\nsave_chain = true\n"
			 "component = \"%s\"\n[[handler]]\ntype = \"runtime\"\n"
			 "[limits]\nmailbox_capacity = 4096\n", wasm);
		thr_spawn_opts so = { .manifest_text = manifest };
		if (thr_spawn(rt, &so, id, &err)) {
			fprintf(stderr, "spawn: %s\n", err.msg);
			return 1;
		}
		double t0 = now_s(), c0 = cpu_s();
		for (long i = 0; i < n; i++)
			if (thr_send(rt, id, i % 4 == 3 ? "l" : "+", 1, THR_SEND_WAIT, &err)) {
				fprintf(stderr, "send: %s\n", err.msg);
				return 1;
			}
		if (thr_quiesce(rt, 0, &err))
			return 1;
		lw[r] = now_s() - t0;
		lc[r] = cpu_s() - c0;

		if (thx_chain_open(thr_runtime_chains(rt), id, NULL, false, &c, &err))
			return 1;
		t0 = now_s();
		c0 = cpu_s();
		if (thrp_replay(thr_runtime_store(rt), c, NULL, &rep, &err) || !rep.ok) {
			fprintf(stderr, "replay failed: %s\n", err.msg);
			thrp_report_print(&rep, id, false, stderr);
			return 1;
		}
		rw[r] = now_s() - t0;
		rc[r] = cpu_s() - c0;
		if (rep.calls != (uint64_t)n + 1) {
			fprintf(stderr, "replay ran %llu calls, wanted %ld\n",
				(unsigned long long)rep.calls, n + 1);
			return 1;
		}
		printf("  run %ld: live %.3f s (%.3f CPU s), replay %.3f s (%.3f CPU s), "
		       "%llu events\n", r + 1, lw[r], lc[r], rw[r], rc[r],
		       (unsigned long long)rep.events);
		thr_runtime_free(rt);
		snprintf(cmd, sizeof cmd, "rm -rf %s", home);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", home);
	}
	double mlw = median(lw, (int)runs), mlc = median(lc, (int)runs);
	double mrw = median(rw, (int)runs), mrc = median(rc, (int)runs);
	printf("live:   %10.0f msgs/s wall, %10.0f msgs/CPU-s\n", n / mlw, n / mlc);
	printf("replay: %10.0f msgs/s wall, %10.0f msgs/CPU-s\n", n / mrw, n / mrc);
	printf("replay/live: %.2f (wall), %.2f (CPU)  [target >= 0.50]\n",
	       mlw / mrw, mlc / mrc);
	return 0;
}
