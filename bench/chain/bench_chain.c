/*
 * bench_chain.c - Event Chain throughput against the physical references of
 * the same machine, measured in the same run:
 *
 *   raw SHA-256            OpenSSL on 256-byte and 1 MiB inputs
 *   event-sized SHA-256    what the hasher does per event (165-199 bytes,
 *                          each message holding the previous hash): libcrypto
 *                          one-shot against the chain's own (SHA extensions),
 *                          one message at a time and two chains at once
 *   fsync latency          write 4 KiB + fdatasync, in the store's directory
 *   append, memory         256-byte events hashed, linked, in blocks (THX_NONE);
 *                          the blocks of memory chains are built lazily, so
 *                          building them is timed too (and added)
 *   small events           what the runtime records: 40-byte data, a 36-byte
 *                          actor id; one chain, one call per event or
 *                          thx_append_batch of 64, and 100 chains in turn
 *   deferred hashing       the same small events with the hasher thread
 *                          (default) against hashing in the append: CPU
 *                          and wall ns per event on the appending thread,
 *                          and process CPU including the hasher
 *   chain creation         100,000 memory chains: time and bytes per chain,
 *                          empty and after 10 small events
 *   append, durable        THX_ALWAYS with concurrent appenders and with
 *                          batched appends; THX_BATCH (10 ms) single thread
 *   verify                 full verification of what was written, in MB/s
 *                          and as a ratio to raw SHA-256 speed
 *
 * Each figure is the median of several runs. Usage:
 *   bench_chain [DIR]      (DIR defaults to a fresh directory under /tmp)
 *   bench_chain DIR defer  only the deferred-hashing section
 */
#include <fcntl.h>
#include <malloc.h>
#include <time.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "chain/internal.h"
#include "theater/chain.h"

#define RUNS 3
static char root[256];
static uint8_t payload[256];

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* CPU time of the whole process (all threads), in ns: the machine is
 * shared, so rates are also given per CPU-second. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static void die(const char *what, const th_err *err)
{
	fprintf(stderr, "bench_chain: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

/* ---- references ---- */

/* Bytes per CPU-second (the reference is single-threaded, so CPU time is
 * the time it had a core). */
static double sha_rate(size_t len, size_t total)
{
	uint8_t *buf = malloc(len), out[32];
	memset(buf, 0x5a, len);
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int ol;
	size_t n = total / len;
	uint64_t t0 = cpu_ns();
	for (size_t i = 0; i < n; i++) {
		buf[0] = (uint8_t)i;
		EVP_DigestInit_ex2(ctx, md, NULL);
		EVP_DigestUpdate(ctx, buf, len);
		EVP_DigestFinal_ex(ctx, out, &ol);
	}
	double s = secs(cpu_ns() - t0);
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	free(buf);
	return (double)(n * len) / s; /* bytes per second */
}

/* ns per event-sized message hashed as a chain does: each message starts
 * with the previous one's hash. how: 0 libcrypto, 1 the chain's own, one
 * at a time, 2 the chain's own, two chains at once. */
static double event_sha_ns(int how)
{
	static const size_t lens[4] = { 165, 187, 199, 162 }; /* a ThreadRing hop */
	uint8_t m[2][200], h[2][32];
	memset(m, 0x5a, sizeof m);
	size_t n = 2000000;
	uint64_t t0 = cpu_ns();
	for (size_t i = 0; i < n; i += 2) {
		size_t a = lens[i & 3], b = lens[(i + 1) & 3];
		if (how == 2) {
			thx__sha256_x2(m[0], a, h[0], m[1], b, h[1]);
		} else {
			void (*f)(const void *, size_t, uint8_t *) =
				how ? thx__sha256 : thx__sha256_lib;
			f(m[0], a, h[0]);
			f(m[1], b, h[1]);
		}
		memcpy(m[0] + 1, h[0], 32);
		memcpy(m[1] + 1, h[1], 32);
	}
	return (double)(cpu_ns() - t0) / (double)n;
}

static double fsync_latency_us(void)
{
	char path[300];
	snprintf(path, sizeof path, "%s/fsync-probe", root);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open probe", NULL);
	uint8_t block[4096];
	memset(block, 1, sizeof block);
	double lat[200];
	for (int i = 0; i < 200; i++) {
		uint64_t t0 = th_now_ns();
		if (pwrite(fd, block, sizeof block, (off_t)i * 4096) != (ssize_t)sizeof block ||
		    fdatasync(fd) != 0)
			die("fsync probe", NULL);
		lat[i] = (double)(th_now_ns() - t0) / 1e3;
	}
	close(fd);
	unlink(path);
	return median(lat, 200);
}

/* Sequential write + fdatasync bandwidth in 4 MiB chunks (bytes/s): the
 * most any durable log can put through this disk. */
static double disk_bandwidth(void)
{
	char path[300];
	snprintf(path, sizeof path, "%s/bw-probe", root);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open probe", NULL);
	size_t chunk = 4u << 20;
	uint8_t *b = malloc(chunk);
	memset(b, 7, chunk);
	uint64_t t0 = th_now_ns();
	for (int i = 0; i < 24; i++)
		if (write(fd, b, chunk) != (ssize_t)chunk || fdatasync(fd) != 0)
			die("bandwidth probe", NULL);
	double el = secs(th_now_ns() - t0);
	close(fd);
	unlink(path);
	free(b);
	return 24.0 * (double)chunk / el;
}

/* ---- appends ---- */

static bool hash_inline = true; /* the figures before "deferred hashing" */

static thx_store *open_dir(const char *name, bool background)
{
	char dir[400];
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	thx_store *s;
	th_err err = { 0 };
	thx_store_opts o = { .no_background = !background, .hash_inline = hash_inline };
	if (thx_store_open(dir, &o, &s, &err))
		die("open", &err);
	return s;
}

static thx_chain *mk_chain(thx_store *s, const char *name, thx_durability d)
{
	thx_chain *c;
	th_err err = { 0 };
	thx_chain_opts o = { .durability = d };
	if (thx_chain_open(s, name, &o, true, &c, &err))
		die("chain", &err);
	return c;
}

/* The hashing verification cannot avoid, per event: SHA-256 of a 320-byte
 * encoding plus one 65-byte Merkle node. Returns encoding bytes per
 * CPU-second, comparable with thx_verify's bytes. */
static double hash_equiv_rate(size_t events)
{
	uint8_t ev[320], node[65], out[32];
	memset(ev, 0x33, sizeof ev);
	memset(node, 0x01, sizeof node);
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int ol;
	uint64_t t0 = cpu_ns();
	for (size_t i = 0; i < events; i++) {
		ev[0] = (uint8_t)i;
		EVP_DigestInit_ex2(ctx, md, NULL);
		EVP_DigestUpdate(ctx, ev, sizeof ev);
		EVP_DigestFinal_ex(ctx, out, &ol);
		node[1] = out[0];
		EVP_DigestInit_ex2(ctx, md, NULL);
		EVP_DigestUpdate(ctx, node, sizeof node);
		EVP_DigestFinal_ex(ctx, out, &ol);
	}
	double s = secs(cpu_ns() - t0);
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return (double)(events * sizeof ev) / s;
}

/* Bytes the process has allocated (malloc in use plus mmapped blocks):
 * RSS would not grow while earlier runs' freed memory is reused. */
static uint64_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* One thread, memory only: events per CPU-second (*wall: per second).
 * keep > 0: prune to the last `keep` events as it goes (retention).
 * *with_blocks: the rate when building the chain's blocks (lazy for
 * memory chains: done here by thx_block_count) is counted too. */
static double mem_rate(int run, size_t n, size_t keep, double *wall, double *with_blocks)
{
	char name[32];
	snprintf(name, sizeof name, "mem-%d", run);
	thx_store *s = open_dir(name, false);
	thx_chain *c = mk_chain(s, "actor", THX_NONE);
	thx_event_in in = { .actor = "actor", .type = "message.received", .data = payload,
			    .len = sizeof payload };
	th_err err = { 0 };
	uint64_t t0 = th_now_ns(), c0 = cpu_ns();
	for (size_t i = 0; i < n; i++) {
		payload[0] = (uint8_t)i;
		if (thx_append(c, &in, NULL, NULL, &err))
			die("append", &err);
		if (keep && i % keep == keep - 1 && i >= keep &&
		    thx_prune_below(c, i + 1 - keep, &err))
			die("prune", &err);
	}
	uint64_t c1 = cpu_ns();
	double cs = secs(c1 - c0);
	*wall = (double)n / secs(th_now_ns() - t0);
	if (thx_block_count(c) != n / 256)
		die("blocks", NULL);
	*with_blocks = (double)n / secs(cpu_ns() - c0);
	thx_store_close(s);
	return (double)n / cs;
}

/* What the runtime records: small events (40-byte data, 36-byte actor id,
 * a few types) on memory chains. nchains > 1: 4 events to each chain in
 * turn (as a message ring does); batch > 1: thx_append_batch. Returns CPU
 * ns per event. */
static double small_ns(int run, size_t n, int nchains, size_t batch)
{
	char name[48];
	snprintf(name, sizeof name, "small-%d-%d-%zu", run, nchains, batch);
	thx_store *s = open_dir(name, false);
	thx_chain *cs[100];
	for (int i = 0; i < nchains; i++) {
		char cn[32];
		snprintf(cn, sizeof cn, "actor-%d", i);
		cs[i] = mk_chain(s, cn, THX_NONE);
	}
	static const char *types[4] = { "message.received", "export.call", "export.result",
					"host.theater:simple/runtime.log" };
	thx_event_in evs[64];
	for (int i = 0; i < 64; i++)
		evs[i] = (thx_event_in){ .actor = "6f1c2a9e-3b7d-4e2a-9c1f-0d8e7b6a5c4d",
					 .type = types[i & 3], .data = payload, .len = 40 };
	th_err err = { 0 };
	uint64_t c0 = cpu_ns();
	if (batch > 1) {
		for (size_t i = 0; i < n; i += batch)
			if (thx_append_batch(cs[0], evs, batch, NULL, NULL, &err))
				die("append batch", &err);
	} else {
		for (size_t i = 0; i < n; i++)
			if (thx_append(cs[(i / 4) % (size_t)nchains], &evs[i & 3], NULL, NULL, &err))
				die("append", &err);
	}
	double ns = (double)(cpu_ns() - c0) / (double)n;
	thx_store_close(s);
	return ns;
}

static uint64_t thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Small events as in small_ns, 4 to each of nchains in turn (batch 1:
 * thx_append; 4: one thx_append_batch per 4, as the runtime records a
 * turn), hashed inline or by the hasher thread: appending thread's CPU and
 * wall ns per event for the appends, and process CPU ns per event until
 * every hash is computed (thx_chain_head on every chain waits for it). */
static void small_defer(int run, size_t n, int nchains, size_t batch, bool inl, double *tcpu,
			double *wall, double *pcpu)
{
	char name[64];
	snprintf(name, sizeof name, "defer-%d-%d-%zu-%d", run, nchains, batch, inl);
	hash_inline = inl;
	thx_store *s = open_dir(name, false);
	hash_inline = true;
	thx_chain **cs = malloc((size_t)nchains * sizeof *cs);
	if (!cs)
		die("malloc", NULL);
	for (int i = 0; i < nchains; i++) {
		char cn[32];
		snprintf(cn, sizeof cn, "actor-%d", i);
		cs[i] = mk_chain(s, cn, THX_NONE);
	}
	static const char *types[4] = { "message.received", "export.call", "export.result",
					"host.theater:simple/runtime.log" };
	thx_event_in evs[4];
	for (int i = 0; i < 4; i++)
		evs[i] = (thx_event_in){ .actor = "6f1c2a9e-3b7d-4e2a-9c1f-0d8e7b6a5c4d",
					 .type = types[i], .data = payload, .len = 40 };
	th_err err = { 0 };
	uint64_t p0 = cpu_ns(), t0 = thread_ns(), w0 = th_now_ns();
	for (size_t i = 0; i < n; i += 4) {
		thx_chain *c = cs[(i / 4) % (size_t)nchains];
		if (batch == 4) {
			if (thx_append_batch(c, evs, 4, NULL, NULL, &err))
				die("append batch", &err);
		} else {
			for (int j = 0; j < 4; j++)
				if (thx_append(c, &evs[j], NULL, NULL, &err))
					die("append", &err);
		}
	}
	uint64_t t1 = thread_ns(), w1 = th_now_ns();
	uint8_t h[THX_HASH_LEN];
	for (int i = 0; i < nchains; i++)
		thx_chain_head(cs[i], h);
	uint64_t p1 = cpu_ns();
	*tcpu = (double)(t1 - t0) / (double)n;
	*wall = (double)(w1 - w0) / (double)n;
	*pcpu = (double)(p1 - p0) / (double)n;
	thx_store_close(s);
	free(cs);
}

/* 100,000 memory chains: CPU ns per thx_chain_open(create), bytes per empty
 * chain, then bytes per chain once each holds 10 small events. */
static void create_cost(int run, double *ns, double *empty_b, double *ten_b)
{
	char name[32];
	snprintf(name, sizeof name, "create-%d", run);
	thx_store *s = open_dir(name, false);
	enum { N = 100000 };
	thx_chain **cs = malloc(N * sizeof *cs);
	uint64_t r0 = heap_bytes(), c0 = cpu_ns();
	for (int i = 0; i < N; i++) {
		char cn[48];
		snprintf(cn, sizeof cn, "actor-%08d-3b7d-4e2a-9c1f-0d8e7b6a", i);
		cs[i] = mk_chain(s, cn, THX_NONE);
	}
	*ns = (double)(cpu_ns() - c0) / N;
	uint64_t r1 = heap_bytes();
	*empty_b = (double)(r1 - r0) / N;
	th_err err = { 0 };
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 10; k++) {
			thx_event_in in = { .actor = thx_chain_name(cs[i]),
					    .type = k ? "message.received" : "actor.created",
					    .data = payload, .len = 40 };
			if (thx_append(cs[i], &in, NULL, NULL, &err))
				die("append", &err);
		}
	*ten_b = (double)(heap_bytes() - r0) / N;
	thx_store_close(s);
	free(cs);
}

struct worker {
	thx_chain *c;
	volatile bool *stop;
	size_t batch;
	uint64_t done;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	thx_event_in evs[256];
	for (size_t i = 0; i < 256; i++)
		evs[i] = (thx_event_in){ .actor = thx_chain_name(w->c), .type = "message.received",
					 .data = payload, .len = sizeof payload };
	th_err err = { 0 };
	while (!*w->stop) {
		if (w->batch > 1) {
			size_t done;
			if (thx_append_batch(w->c, evs, w->batch, NULL, &done, &err))
				die("append batch", &err);
			w->done += done;
		} else {
			if (thx_append(w->c, evs, NULL, NULL, &err))
				die("append", &err);
			w->done++;
		}
	}
	return NULL;
}

struct durable {
	double rate;      /* events/s, wall clock */
	double per_fsync;
	double per_cpu;   /* events per CPU-second of the whole process */
	double bytes;     /* bytes written to the log per event */
};

/* threads appenders, each on its own chain, for `ms`; batch events per call. */
static struct durable durable_rate(const char *tag, int run, thx_durability d, int threads,
				   size_t batch, int ms)
{
	char name[64];
	snprintf(name, sizeof name, "%s-%d", tag, run);
	thx_store *s = open_dir(name, d == THX_BATCH);
	struct worker w[128];
	pthread_t th[128];
	volatile bool stop = false;
	for (int i = 0; i < threads; i++) {
		char cn[32];
		snprintf(cn, sizeof cn, "actor-%d", i);
		w[i] = (struct worker){ mk_chain(s, cn, d), &stop, batch, 0 };
	}
	thx_stats a, b;
	thx_store_stats(s, &a);
	uint64_t t0 = th_now_ns(), c0 = cpu_ns();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	usleep((useconds_t)ms * 1000);
	stop = true;
	uint64_t total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += w[i].done;
	}
	th_err err = { 0 };
	if (thx_store_sync(s, &err)) /* batch: count only what is on disk */
		die("sync", &err);
	double el = secs(th_now_ns() - t0), cs = secs(cpu_ns() - c0);
	thx_store_stats(s, &b);
	thx_store_close(s);
	struct durable r = { (double)total / el,
			     b.fsyncs > a.fsyncs ? (double)total / (double)(b.fsyncs - a.fsyncs)
						 : 0,
			     (double)total / cs,
			     total ? (double)(b.bytes_written - a.bytes_written) / (double)total : 0 };
	return r;
}

/* ---- opening (recovery) ---- */

static void drop_index_files(const char *name)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -f '%s/%s'/*.idx", root, name);
	if (system(cmd) != 0)
		die("rm idx", NULL);
}

/* CPU ms to open (and close) store `name`; read-only opens never write
 * index files, so they measure the scan or the index alone. */
static double open_ms(const char *name, bool read_only, uint64_t *loaded)
{
	char dir[400];
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	thx_store *s;
	th_err err = { 0 };
	thx_store_opts o = { .no_background = true, .read_only = read_only };
	uint64_t c0 = cpu_ns();
	if (thx_store_open(dir, &o, &s, &err))
		die("open", &err);
	double ms = (double)(cpu_ns() - c0) / 1e6;
	thx_stats st;
	thx_store_stats(s, &st);
	*loaded = st.index_loaded;
	thx_store_close(s);
	return ms;
}

/* ---- verification ---- */

static double verify_rate(const char *name, uint64_t *bytes_out)
{
	thx_store *s = open_dir(name, false);
	thx_verify_report r;
	th_err err = { 0 };
	uint64_t t0 = cpu_ns();
	if (thx_verify(s, NULL, NULL, NULL, &r, &err))
		die("verify", &err);
	double el = secs(cpu_ns() - t0);
	if (!r.ok) {
		fprintf(stderr, "verify failed: %s seq %llu: %s\n", r.chain,
			(unsigned long long)r.seq, r.what);
		exit(1);
	}
	thx_store_close(s);
	*bytes_out = r.bytes;
	return (double)r.bytes / el;
}

static void defer_section(void)
{
	printf("deferred hashing (small events, memory; ns per event: appending thread CPU,\n"
	       "wall on the appending thread, process CPU incl. the hasher until all are hashed):\n");
	static const struct { int nchains; size_t batch; const char *label; } dc[] = {
		{ 1, 1, "thx_append, 1 chain" },
		{ 1000, 1, "thx_append, 1000 chains, 4 each" },
		{ 1000, 4, "thx_append_batch of 4, 1000 chains" },
	};
	for (size_t k = 0; k < TH_ARRAY_LEN(dc); k++) {
		double ti[RUNS], wi[RUNS], pi[RUNS], td[RUNS], wd[RUNS], pd[RUNS];
		for (int i = 0; i < RUNS; i++) {
			small_defer(i, 1000000, dc[k].nchains, dc[k].batch, true, &ti[i], &wi[i],
				    &pi[i]);
			small_defer(i, 1000000, dc[k].nchains, dc[k].batch, false, &td[i], &wd[i],
				    &pd[i]);
		}
		double mti = median(ti, RUNS), mwi = median(wi, RUNS), mtd = median(td, RUNS),
		       mwd = median(wd, RUNS);
		printf("  %-36s inline   %5.0f CPU %5.0f wall %5.0f process\n", dc[k].label, mti,
		       mwi, median(pi, RUNS));
		printf("  %-36s deferred %5.0f CPU %5.0f wall %5.0f process"
		       "  (appender: %.2fx CPU, %.2fx wall)\n",
		       "", mtd, mwd, median(pd, RUNS), mti / mtd, mwi / mwd);
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	if (argc > 1)
		snprintf(root, sizeof root, "%s", argv[1]);
	else
		snprintf(root, sizeof root, "/tmp/thx-bench-XXXXXX");
	if (argc > 1)
		mkdir(root, 0755);
	else if (!mkdtemp(root))
		die("mkdtemp", NULL);
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	if (argc > 2 && strcmp(argv[2], "defer") == 0) { /* that section only */
		defer_section();
		return 0;
	}

	double v[RUNS], w[RUNS], big[RUNS], small[RUNS], ratio[RUNS], kv[RUNS], kw[RUNS];
	double vb[RUNS], kb[RUNS], es[3][RUNS];
	printf("Event Chain benchmark (256-byte events; medians of %d runs; dir %s)\n"
	       "Rates per CPU-second are robust on a shared machine; wall-clock rates\n"
	       "depend on how much of the 2 cores this process got.\n\n", RUNS, root);

	/* Memory appends interleaved with their reference, run by run. */
	for (int i = 0; i < RUNS; i++) {
		big[i] = sha_rate(1 << 20, 256u << 20);
		small[i] = sha_rate(320, 128u << 20);
		v[i] = mem_rate(i, 1000000, 0, &w[i], &vb[i]);
		kv[i] = mem_rate(i + RUNS, 1000000, 65536, &kw[i], &kb[i]);
		ratio[i] = v[i] / (small[i] / 320);
		for (int k = 0; k < 3; k++)
			es[k][i] = event_sha_ns(k);
	}
	double sha_big = median(big, RUNS), sha_small = median(small, RUNS);
	double fs = fsync_latency_us();
	double bw = disk_bandwidth();
	printf("reference  SHA-256, 1 MiB inputs        %8.0f MB/s per core\n", sha_big / 1e6);
	printf("reference  SHA-256, 320-byte inputs     %8.0f MB/s per core (%.2f M hashes/s)\n",
	       sha_small / 1e6, sha_small / 320 / 1e6);
	double e0 = median(es[0], RUNS), e1 = median(es[1], RUNS), e2 = median(es[2], RUNS);
	printf("reference  SHA-256, event-sized inputs  %8.1f ns per event (libcrypto one-shot)\n", e0);
	printf("  chain's own, one at a time            %8.1f ns per event (%.2fx libcrypto)\n",
	       e1, e0 / e1);
	printf("  chain's own, two chains at once       %8.1f ns per event (%.2fx libcrypto)%s\n",
	       e2, e0 / e2, thx__sha_ni() ? "" : " [no SHA extensions: libcrypto]");
	printf("reference  fsync (4 KiB + fdatasync)    %8.0f us median (%.0f fsyncs/s)\n", fs,
	       1e6 / fs);
	printf("reference  write+fdatasync, 4 MiB       %8.0f MB/s\n\n", bw / 1e6);
	double mem = median(v, RUNS);
	printf("append, memory (THX_NONE), 1 thread     %8.0f events per CPU-second "
	       "(target >= 1,000,000: %s)\n", mem, mem >= 1e6 ? "met" : "NOT met");
	printf("                                        %8.0f events/s wall clock\n",
	       median(w, RUNS));
	printf("           = %.0f%% of raw SHA-256 hashes of 320-byte inputs (same runs)\n",
	       100.0 * median(ratio, RUNS));
	printf("  + building its blocks (lazy)          %8.0f events per CPU-second\n",
	       median(vb, RUNS));
	double keepr = median(kv, RUNS);
	printf("  with retention (last 65,536 kept)     %8.0f events per CPU-second "
	       "(target: %s), %.0f/s wall\n", keepr, keepr >= 1e6 ? "met" : "NOT met",
	       median(kw, RUNS));
	printf("  + building its blocks (lazy)          %8.0f events per CPU-second\n\n",
	       median(kb, RUNS));

	double s1[RUNS], s64[RUNS], s100[RUNS], cns[RUNS], ce[RUNS], c10[RUNS];
	for (int i = 0; i < RUNS; i++) {
		s1[i] = small_ns(i, 1000000, 1, 1);
		s64[i] = small_ns(i, 1000000, 1, 64);
		s100[i] = small_ns(i, 1000000, 100, 1);
		create_cost(i, &cns[i], &ce[i], &c10[i]);
	}
	printf("small events (40-byte data), memory, CPU ns per event (runtime's budget ~300-400):\n");
	printf("  thx_append, 1 chain                   %8.0f ns (%.0f events per CPU-second)\n",
	       median(s1, RUNS), 1e9 / median(s1, RUNS));
	printf("  thx_append_batch of 64, 1 chain       %8.0f ns\n", median(s64, RUNS));
	printf("  thx_append, 100 chains in turn        %8.0f ns\n", median(s100, RUNS));
	printf("chain creation (100,000 memory chains)  %8.0f ns CPU each; %.0f bytes each empty,\n"
	       "                                        %8.0f bytes each with 10 small events\n\n",
	       median(cns, RUNS), median(ce, RUNS), median(c10, RUNS));

	defer_section();

	struct {
		const char *tag, *label;
		thx_durability d;
		int threads;
		size_t batch;
	} cases[] = {
		{ "always-t16", "always, 16 threads x 1 event", THX_ALWAYS, 16, 1 },
		{ "always-t64", "always, 64 threads x 1 event", THX_ALWAYS, 64, 1 },
		{ "always-b256", "always, 2 threads x batch 256", THX_ALWAYS, 2, 256 },
		{ "always-b512x8", "always, 8 threads x batch 256", THX_ALWAYS, 8, 256 },
		{ "batch-t1", "batch (10 ms), 1 thread", THX_BATCH, 1, 1 },
	};
	double best_durable = 0, best_cpu = 0, ev_bytes = 0, case_bytes = 0;
	const char *verify_dir = NULL;
	for (size_t k = 0; k < TH_ARRAY_LEN(cases); k++) {
		double pf[RUNS], pc[RUNS];
		for (int i = 0; i < RUNS; i++) {
			struct durable r = durable_rate(cases[k].tag, i, cases[k].d, cases[k].threads,
							cases[k].batch, 1500);
			v[i] = r.rate;
			pf[i] = r.per_fsync;
			pc[i] = r.per_cpu;
			case_bytes = r.bytes;
		}
		double rate = median(v, RUNS), cpu = median(pc, RUNS);
		printf("durable: %-31s %8.0f events/s, %6.0f per fsync, %8.0f per CPU-second\n",
		       cases[k].label, rate, median(pf, RUNS), cpu);
		if (rate > best_durable) {
			best_durable = rate;
			best_cpu = cpu;
			ev_bytes = case_bytes;
			verify_dir = cases[k].tag;
		}
	}
	printf("           best durable: %.0f events/s wall, %.0f per CPU-second "
	       "(target >= 300,000: %s);\n           %.0f bytes written per event (256 of data): "
	       "the disk's write+fdatasync bandwidth allows %.0f/s,\n           so this is "
	       "%.0f%% of it; one fsync per event would give %.0f/s\n\n",
	       best_durable, best_cpu, best_durable >= 3e5 ? "met" : "NOT met", ev_bytes,
	       bw / ev_bytes, 100.0 * best_durable / (bw / ev_bytes), 1e6 / fs);

	char vdir[64];
	uint64_t bytes = 0;
	snprintf(vdir, sizeof vdir, "%s-0", verify_dir);
	double eq[RUNS];
	for (int i = 0; i < RUNS; i++) {
		small[i] = sha_rate(320, 64u << 20);
		eq[i] = hash_equiv_rate(200000);
		v[i] = verify_rate(vdir, &bytes);
		ratio[i] = v[i] / small[i];
		w[i] = v[i] / eq[i];
	}
	double ver = median(v, RUNS);
	printf("verify %-33s %8.0f MB/s per CPU-second of event encodings (%.0f MB)\n", vdir,
	       ver / 1e6, (double)bytes / 1e6);
	printf("           = %.0f%% of the unavoidable hashing (event hash + Merkle node per event),\n"
	       "             %.0f%% of raw SHA-256 on 320-byte inputs, %.0f%% of 1 MiB inputs\n",
	       100.0 * median(w, RUNS), 100.0 * median(ratio, RUNS), 100.0 * ver / sha_big);

	double scan[RUNS], idx[RUNS];
	uint64_t loaded = 0, l0 = 0;
	for (int i = 0; i < RUNS; i++) {
		drop_index_files(vdir);
		scan[i] = open_ms(vdir, true, &l0);
		open_ms(vdir, false, &loaded); /* writes the index files */
		idx[i] = open_ms(vdir, true, &loaded);
	}
	printf("open %-35s %8.1f ms CPU reading every segment (%llu index files used)\n"
	       "                                        %8.1f ms CPU with index files "
	       "(%llu segments from them)\n",
	       vdir, median(scan, RUNS), (unsigned long long)l0, median(idx, RUNS),
	       (unsigned long long)loaded);

	if (argc < 2) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", root);
	}
	return 0;
}
