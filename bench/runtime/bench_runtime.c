/*
 * bench_runtime.c - Savina-style benchmarks of the actor runtime, every
 * message recorded in the actors' chains (in-memory durability), side by
 * side with the same programs on Erlang/OTP (bench/runtime/savina.erl,
 * whose output run.sh passes in with --erlang FILE).
 *
 *   spawn       spawn a small actor and run its init (us per actor)
 *   live        100,000 live actors: memory per actor (RSS delta)
 *   counting    one actor receives N sends from outside (msgs/s)
 *   pingpong    N round trips between two actors (round trips/s)
 *   threadring  a token passed N hops around 100 actors (hops/s)
 *
 * Each figure is the median of --runs runs (default 3), each on a fresh
 * runtime. Usage: bench_runtime DIR [--n N] [--actors K] [--runs R]
 * [--erlang FILE] [--only NAME] [--workers W]; DIR holds counter.wasm
 * and node.wasm; --only runs one benchmark (for profiling); --workers sets
 * the worker threads (default: one per CPU, as the runtime's).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "theater/runtime.h"

static const char *dir;
static int workers; /* --workers; 0: the runtime's default (one per CPU) */
static char counter_manifest[1024], node_manifest[1024];

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds used by the whole process (every thread) so far. On a
 * shared, loaded machine this is steadier than wall time: the benchmarks
 * report both (cpu = CPU microseconds per message, hop or spawn). */
static double cpu_s(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
	       (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

static double last_cpu; /* CPU seconds of the last timed section */
/* Seconds from the start of the last ring's run until every event of its
 * chains was hashed: memory chains are hashed on the store's hasher
 * thread, which may still be behind when the last hop is handled. */
static double last_hashed;

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static void die(const char *what, const th_err *err)
{
	fprintf(stderr, "bench_runtime: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

static thr_runtime *runtime(int run)
{
	char home[512];
	thr_options o = { 0 };
	thr_runtime *rt;
	th_err err = { 0 };
	snprintf(home, sizeof home, "%s/home-%d-%d", dir, (int)getpid(), run);
	o.home = home;
	o.durability = THX_NONE; /* in-memory chains: every event still recorded */
	o.store_no_sync = true;
	o.workers = workers; /* 0: one per CPU */
	if (thr_runtime_new(&o, &rt, &err))
		die("runtime", &err);
	return rt;
}

static void cleanup(int run)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s/home-%d-%d'", dir, (int)getpid(), run);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_runtime: could not remove a home\n");
}

static void spawn(thr_runtime *rt, const char *manifest, unsigned flags,
		  char id[THR_ID_LEN + 1])
{
	th_err err = { 0 };
	thr_spawn_opts so = { .manifest_text = manifest, .base_dir = dir,
			      .flags = flags };
	if (thr_spawn(rt, &so, id, &err))
		die("spawn", &err);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

/* ---- the programs ---------------------------------------------------------- */

/* Seconds to spawn k actors one after the other (each waits for init). */
static double run_spawn(int run, int k)
{
	thr_runtime *rt = runtime(run);
	char id[THR_ID_LEN + 1];
	spawn(rt, counter_manifest, 0, id); /* component loaded once, outside */
	double c0 = cpu_s(), t0 = now_s();
	for (int i = 0; i < k; i++)
		spawn(rt, counter_manifest, 0, id);
	double t = now_s() - t0;
	last_cpu = cpu_s() - c0;
	thr_runtime_free(rt);
	cleanup(run);
	return t;
}

/* KiB of RSS per live actor, k actors. */
static double run_live(int run, int k, double *spawn_rate)
{
	thr_runtime *rt = runtime(run);
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	spawn(rt, counter_manifest, 0, id);
	long before = rss_kib();
	double t0 = now_s();
	for (int i = 0; i < k; i++)
		spawn(rt, counter_manifest, THR_SPAWN_NO_WAIT, id);
	if (thr_quiesce(rt, 0, &err))
		die("quiesce", &err);
	double t = now_s() - t0;
	long after = rss_kib();
	thr_stats s;
	thr_runtime_stats(rt, &s);
	if (s.live != (uint64_t)k + 1) {
		fprintf(stderr, "bench_runtime: %llu live actors, expected %d\n",
			(unsigned long long)s.live, k + 1);
		exit(1);
	}
	*spawn_rate = k / t;
	thr_runtime_free(rt);
	cleanup(run);
	return (double)(after - before) / k;
}

static double run_counting(int run, long n)
{
	thr_runtime *rt = runtime(run);
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	uint8_t *reply;
	size_t len;
	uint64_t count = 0;
	spawn(rt, counter_manifest, 0, id);
	double c0 = cpu_s(), t0 = now_s();
	for (long i = 0; i < n; i++)
		if (thr_send(rt, id, "+", 1, THR_SEND_WAIT, &err))
			die("send", &err);
	if (thr_request(rt, id, "?", 1, 600000, &reply, &len, &err))
		die("request", &err);
	double t = now_s() - t0;
	last_cpu = cpu_s() - c0;
	if (len == 8)
		memcpy(&count, reply, 8);
	thr_free(reply);
	if (count != (uint64_t)n) {
		fprintf(stderr, "bench_runtime: counted %llu of %ld\n",
			(unsigned long long)count, n);
		exit(1);
	}
	thr_runtime_free(rt);
	cleanup(run);
	return t;
}

/* A ring of r nodes; a token of `hops` hops. Seconds. */
static double run_ring(int run, int r, long hops)
{
	thr_runtime *rt = runtime(run);
	char (*ids)[THR_ID_LEN + 1] = calloc((size_t)r, sizeof *ids);
	th_err err = { 0 };
	char msg[64];
	if (!ids)
		die("out of memory", NULL);
	for (int i = 0; i < r; i++)
		spawn(rt, node_manifest, 0, ids[i]);
	for (int i = 0; i < r; i++) {
		msg[0] = 'L';
		memcpy(msg + 1, ids[(i + 1) % r], THR_ID_LEN);
		if (thr_send(rt, ids[i], msg, 1 + THR_ID_LEN, THR_SEND_WAIT, &err))
			die("link", &err);
	}
	if (thr_quiesce(rt, 0, &err))
		die("quiesce", &err);
	uint64_t count = (uint64_t)hops;
	msg[0] = 't';
	memcpy(msg + 1, &count, 8);
	double c0 = cpu_s(), t0 = now_s();
	if (thr_send(rt, ids[0], msg, 9, THR_SEND_WAIT, &err))
		die("token", &err);
	/* The node that gets count 0 shuts down. */
	if (thr_wait(rt, ids[hops % r], 0, &err))
		die("wait", &err);
	double t = now_s() - t0;
	last_cpu = cpu_s() - c0;
	thx_store_wait_hashed(thr_runtime_chains(rt));
	last_hashed = now_s() - t0;
	thr_runtime_free(rt);
	free(ids);
	cleanup(run);
	return t;
}

/* ---- Erlang's figures ---------------------------------------------------------- */

static double erl_rate(const char *file, const char *name)
{
	FILE *f;
	char line[256], nm[64];
	double rate = 0;
	if (!file || !(f = fopen(file, "r")))
		return 0;
	while (fgets(line, sizeof line, f)) {
		long count;
		double secs, r;
		if (sscanf(line, "%63s %ld %lf %lf", nm, &count, &secs, &r) == 4 &&
		    !strcmp(nm, name))
			rate = r;
	}
	fclose(f);
	return rate;
}

static void row(const char *name, double rate, const char *unit, double erl,
		double cpu_us, const char *target)
{
	printf("%-11s %14.0f %-16s %8.2f", name, rate, unit, cpu_us);
	if (erl > 0)
		printf(" %14.0f %8.2fx", erl, rate / erl);
	else
		printf(" %14s %9s", "-", "-");
	printf("   %s\n", target);
	fflush(stdout);
}

static bool want(const char *only, const char *name)
{
	return !only || !strcmp(only, name);
}

int main(int argc, char **argv)
{
	long n = 1000000;
	int actors = 100000, runs = 3, spawns = 2000;
	const char *erl = NULL, *only = NULL;
	double v[16];

	if (argc < 2) {
		fprintf(stderr, "usage: bench_runtime DIR [--n N] [--actors K] "
				"[--runs R] [--erlang FILE]\n");
		return 2;
	}
	dir = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--n"))
			n = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--actors"))
			actors = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--erlang"))
			erl = argv[i + 1];
		else if (!strcmp(argv[i], "--only"))
			only = argv[i + 1];
		else if (!strcmp(argv[i], "--workers"))
			workers = atoi(argv[i + 1]);
	}
	if (runs < 1 || runs > 15 || n < 100 || actors < 10 || workers < 0 || workers > 256) {
		fprintf(stderr, "bench_runtime: bad arguments\n");
		return 2;
	}
	snprintf(counter_manifest, sizeof counter_manifest,
		 "name = \"counter\"\nversion = \"1\"\ncomponent = \"counter.wasm\"\n"
		 "[[handler]]\ntype = \"runtime\"\n[limits]\nmemory_pages = 2\n");
	snprintf(node_manifest, sizeof node_manifest,
		 "name = \"node\"\nversion = \"1\"\ncomponent = \"node.wasm\"\n"
		 "[[handler]]\ntype = \"runtime\"\n[[handler]]\ntype = \"message-server\"\n");

	printf("runtime benchmarks: %ld messages, %d live actors, median of %d runs,\n"
	       "every message recorded in the chain (in-memory durability), %ld CPUs\n\n",
	       n, actors, runs, sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-11s %14s %-16s %8s %14s %9s   %s\n", "benchmark", "theater", "unit",
	       "cpu(us)", "erlang/otp", "ratio", "target");

	double c[16];
	if (want(only, "spawn")) {
		for (int i = 0; i < runs; i++) {
			v[i] = run_spawn(i, spawns) / spawns * 1e6;
			c[i] = last_cpu / spawns * 1e6;
		}
		double us = median(v, runs);
		double erl_spawn = erl_rate(erl, "spawn");
		printf("%-11s %14.2f %-16s %8.2f", "spawn", us, "us per actor",
		       median(c, runs));
		if (erl_spawn > 0)
			printf(" %14.2f %8.2fx", 1e6 / erl_spawn, (1e6 / erl_spawn) / us);
		else
			printf(" %14s %9s", "-", "-");
		printf("   <= 20 us (Theater: ~10 ms)\n");
		fflush(stdout);
	}

	if (want(only, "live")) {
		double rate[16];
		for (int i = 0; i < runs; i++)
			v[i] = run_live(i, actors, &rate[i]);
		printf("%-11s %14.1f %-16s %8s %14s %9s   <= 32 KiB each (%d actors; "
		       "spawned at %.0f/s)\n", "live", median(v, runs), "KiB per actor",
		       "-", "-", "-", actors, median(rate, runs));
		fflush(stdout);
	}

	if (want(only, "counting")) {
		for (int i = 0; i < runs; i++) {
			v[i] = n / run_counting(i, n);
			c[i] = last_cpu / n * 1e6;
		}
		row("counting", median(v, runs), "msgs/s", erl_rate(erl, "counting"),
		    median(c, runs), ">= 1,000,000 msgs/s");
	}

	if (want(only, "pingpong")) {
		long rt_n = n / 4;
		for (int i = 0; i < runs; i++) {
			v[i] = rt_n / run_ring(i, 2, 2 * rt_n);
			c[i] = last_cpu / rt_n * 1e6;
		}
		row("pingpong", median(v, runs), "round trips/s",
		    erl_rate(erl, "pingpong"), median(c, runs),
		    ">= 300,000 round trips/s");
	}

	if (want(only, "threadring")) {
		double hv[16];
		for (int i = 0; i < runs; i++) {
			v[i] = n / run_ring(i, 100, n);
			c[i] = last_cpu / n * 1e6;
			hv[i] = n / last_hashed;
		}
		row("threadring", median(v, runs), "hops/s", erl_rate(erl, "threadring"),
		    median(c, runs), ">= 1,000,000 hops/s (100 actors)");
		printf("%-11s %14.0f %-16s %8s %14s %9s   the same runs, timed until every "
		       "event is hashed\n", "  hashed", median(hv, runs), "hops/s", "-", "-", "-");
	}
	printf("\nratio = theater / erlang (above 1: theater is faster; for spawn, "
	       "erlang time / theater time);\ncpu = CPU microseconds (all threads) per "
	       "spawn, message, round trip or hop\n");
	return 0;
}
