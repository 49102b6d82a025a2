/*
 * bench_engine.c - micro-benchmarks of the engine's costs that matter for an
 * actor runtime (run by `make bench-engine`, figures in docs/engine-bench.md):
 *
 *   bench_engine [-n INSTANCES] SMALL.wasm LARGE.wasm [WASI.wasm]
 *
 *   instantiate   microseconds per thw_instantiate of SMALL (<= 64 KiB, no
 *                 imports), realm reused; and of WASI.wasm with its WASI
 *                 imports linked (a typical C program), when given.
 *   idle          INSTANCES live instances of SMALL in one realm:
 *                 thw_realm_overhead per instance, and the process's RSS
 *                 growth per instance (includes linear-memory pages touched
 *                 by data segments).
 *   prepare       thw_module_new (decode + validate + translate) of LARGE in
 *                 MB/s of its code section, best of several repetitions.
 *
 * Targets from issue 2: instantiate <= 10 us, idle <= 16 KiB beyond touched
 * linear memory, prepare >= 20 MB/s. This program only measures and prints.
 * Times are the process's CPU time (the work is single-threaded), so other
 * load on a shared machine disturbs them less than wall-clock time.
 */
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "theater/wasi.h"
#include "theater/wasm.h"

static int load(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "bench_engine: cannot open %s\n", path);
		return -1;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = th_malloc(cap);
	while (buf) {
		if (n == cap) {
			uint8_t *nb = th_realloc(buf, cap * 2);
			if (!nb) {
				th_free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "bench_engine: out of memory reading %s\n", path);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Size of the code section (id 10), read from the section headers. */
static size_t code_size(const uint8_t *b, size_t n)
{
	size_t p = 8, code = 0;
	while (p < n) {
		uint8_t id = b[p++];
		uint64_t sz = 0;
		int shift = 0;
		while (p < n && shift < 35) {
			uint8_t c = b[p++];
			sz |= (uint64_t)(c & 0x7F) << shift;
			shift += 7;
			if (!(c & 0x80))
				break;
		}
		if (id == 10)
			code = (size_t)sz;
		if (sz > n - p)
			break;
		p += (size_t)sz;
	}
	return code;
}

static thw_module *prepare(const char *path)
{
	uint8_t *b;
	size_t n;
	thw_module *m = NULL;
	th_err err = { 0 };
	if (load(path, &b, &n) != 0)
		return NULL;
	if (thw_module_new(b, n, &m, &err) != 0)
		fprintf(stderr, "bench_engine: %s: %s\n", path, err.msg);
	th_free(b);
	return m;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Microseconds per instantiation of m (imports from wasi when non-NULL). */
static double bench_instantiate(thw_module *m, bool wasi, uint32_t reps)
{
	thw_config cfg = { 0 };
	cfg.max_instances = reps + 1;
	thw_realm *r = NULL;
	thw_wasi *w = NULL;
	th_err err = { 0 };
	uint32_t ni = thw_module_import_count(m);
	thw_extern *imps = th_calloc(ni ? ni : 1, sizeof *imps);
	double us = -1;
	if (!imps || thw_realm_new(&cfg, &r, &err) != 0)
		goto out;
	if (wasi) {
		thw_wasi_config wc = { 0 };
		if (thw_wasi_new(&wc, &w, &err) != 0 || thw_wasi_link(w, r, m, imps, &err) != 0)
			goto out;
	}
	uint64_t t0 = cpu_ns();
	for (uint32_t i = 0; i < reps; i++) {
		thw_instance *inst;
		if (thw_instantiate(r, m, imps, ni, NULL, &inst, &err) != 0)
			goto out;
	}
	us = (double)(cpu_ns() - t0) / 1e3 / reps;
out:
	if (us < 0)
		fprintf(stderr, "bench_engine: instantiate: %s\n", err.msg);
	thw_realm_free(r);
	thw_wasi_free(w);
	th_free(imps);
	return us;
}

int main(int argc, char **argv)
{
	uint32_t n = 10000;
	int ai = 1;
	if (argc > 2 && !strcmp(argv[1], "-n")) {
		n = (uint32_t)strtoul(argv[2], NULL, 10);
		ai = 3;
	}
	if (argc - ai < 2 || n == 0) {
		fprintf(stderr, "usage: bench_engine [-n INSTANCES] SMALL.wasm LARGE.wasm [WASI.wasm]\n");
		return 2;
	}
	const char *small = argv[ai], *large = argv[ai + 1];
	const char *wasi = argc - ai > 2 ? argv[ai + 2] : NULL;
	th_err err = { 0 };
	int rc = 1;
	thw_module *ms = prepare(small), *mw = NULL;
	if (!ms)
		return 1;

	/* Instantiation: warm up, then best of 5 batches of 2,000. */
	double best = 1e9;
	for (int rep = 0; rep < 6; rep++) {
		double us = bench_instantiate(ms, false, 2000);
		if (us < 0)
			goto out;
		if (rep && us < best)
			best = us;
	}
	printf("instantiate %-28s %8.2f us (best of 5 x 2000; target <= 10 us)\n",
	       strrchr(small, '/') ? strrchr(small, '/') + 1 : small, best);
	if (wasi && (mw = prepare(wasi)) != NULL) {
		best = 1e9;
		for (int rep = 0; rep < 4; rep++) {
			double us = bench_instantiate(mw, true, 500);
			if (us < 0)
				goto out;
			if (rep && us < best)
				best = us;
		}
		printf("instantiate %-28s %8.2f us (with WASI imports, best of 3 x 500)\n",
		       strrchr(wasi, '/') ? strrchr(wasi, '/') + 1 : wasi, best);
	}

	/* Idle instances. */
	{
		thw_config cfg = { 0 };
		cfg.max_instances = n + 1;
		thw_realm *r = NULL;
		if (thw_realm_new(&cfg, &r, &err) != 0) {
			fprintf(stderr, "bench_engine: %s\n", err.msg);
			goto out;
		}
		size_t before_ov = thw_realm_overhead(r), before_rss = rss_bytes();
		for (uint32_t i = 0; i < n; i++) {
			thw_instance *inst;
			if (thw_instantiate(r, ms, NULL, 0, NULL, &inst, &err) != 0) {
				fprintf(stderr, "bench_engine: instance %" PRIu32 ": %s\n", i,
					err.msg);
				thw_realm_free(r);
				goto out;
			}
		}
		size_t ov = thw_realm_overhead(r) - before_ov;
		size_t rss = rss_bytes();
		rss = rss > before_rss ? rss - before_rss : 0;
		printf("idle        %" PRIu32 " instances: realm overhead %.0f B/instance, "
		       "RSS %.0f B/instance (target <= 16 KiB)\n",
		       n, (double)ov / n, (double)rss / n);
		thw_realm_free(r);
	}

	/* Preparation speed: thw_module_new alone, bytes already in memory. */
	{
		uint8_t *b;
		size_t len;
		if (load(large, &b, &len) != 0)
			goto out;
		size_t code = code_size(b, len);
		double best_s = 1e9;
		uint64_t total = 0;
		int reps = 0;
		while (reps < 3 || (total < 1000000000ull && reps < 200)) {
			thw_module *m = NULL;
			uint64_t t0 = cpu_ns();
			int prc = thw_module_new(b, len, &m, &err);
			uint64_t dt = cpu_ns() - t0;
			if (prc != 0) {
				fprintf(stderr, "bench_engine: %s: %s\n", large, err.msg);
				th_free(b);
				goto out;
			}
			thw_module_release(m);
			total += dt;
			reps++;
			if ((double)dt / 1e9 < best_s)
				best_s = (double)dt / 1e9;
		}
		th_free(b);
		printf("prepare     %-28s %8.1f MB/s of code (%zu code bytes, best of %d; "
		       "target >= 20 MB/s)\n",
		       strrchr(large, '/') ? strrchr(large, '/') + 1 : large,
		       (double)code / 1e6 / best_s, code, reps);
	}
	rc = 0;
out:
	thw_module_release(ms);
	thw_module_release(mw);
	return rc;
}
