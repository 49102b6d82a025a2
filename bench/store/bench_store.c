/*
 * bench_store.c - the Store's throughput against physical references,
 * measured side by side in one run (docs/store.md has results):
 *   - raw SHA-256 of the same bytes (OpenSSL, one streaming context): the
 *     target is put and get at >= 60% of it;
 *   - raw write of the same bytes to one file (the disk's own cost):
 *     buffered, buffered + fsync, and O_DIRECT + fdatasync (what a
 *     durable put's pack write does);
 *   - put (THS_SYNC_NONE and THS_SYNC_FULL), re-put of present content,
 *     get through a fresh handle (store cache cold, page cache warm);
 *   - re-storing a 100 MB object with one byte inserted near its start:
 *     new bytes written as a share of the object (target < 1%).
 * Each timing is the median of REPS runs. Beside wall-clock figures it
 * prints CPU time (all threads) relative to the SHA-256 reference's, and
 * the load average before and after: the machine is shared.
 *
 *   bench_store [DIR...]        (default: /tmp and /dev/shm)
 *   BENCH_STORE_MB=256 REPS=3   sizes and repetitions
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/cdc.h"
#include "theater/store.h"

static int reps = 3;

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)i;
}

static double secs(uint64_t t0)
{
	return (double)(th_now_ns() - t0) / 1e9;
}

/* CPU seconds used by the process so far (every thread). */
static double cpu_now(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
	       (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void print_load(const char *when)
{
	char buf[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(buf, sizeof buf, f))
			snprintf(buf, sizeof buf, "?\n");
		fclose(f);
	}
	printf("  load average %s: %s", when, buf);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

static void die(const char *what, th_err *err)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

static void rm_rf(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_store: cannot remove %s\n", path);
}

static double t_sha(const uint8_t *p, size_t n)
{
	uint8_t md[32];
	unsigned len;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint64_t t0 = th_now_ns();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (size_t off = 0; off < n; off += 1 << 20)
		EVP_DigestUpdate(c, p + off, n - off < (1 << 20) ? n - off : 1 << 20);
	EVP_DigestFinal_ex(c, md, &len);
	double t = secs(t0);
	EVP_MD_CTX_free(c);
	return t;
}

static double t_cdc(const uint8_t *p, size_t n)
{
	uint64_t t0 = th_now_ns();
	size_t off = 0, chunks = 0;
	while (off < n) {
		off += ths__cdc_cut(p + off, n - off);
		chunks++;
	}
	double t = secs(t0);
	if (!chunks)
		die("no chunks", NULL);
	return t;
}

static double t_write(const char *dir, const uint8_t *p, size_t n, bool sync)
{
	char path[600];
	snprintf(path, sizeof path, "%s/raw", dir);
	uint64_t t0 = th_now_ns();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open raw", NULL);
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, p + off, n - off);
		if (w <= 0)
			die("write raw", NULL);
		off += (size_t)w;
	}
	if (sync)
		fsync(fd);
	close(fd);
	double t = secs(t0);
	unlink(path);
	return t;
}

/* The disk's own speed for what a durable put does: O_DIRECT writes of
 * 4 MiB from an aligned buffer (copied from the input, as a put does),
 * then fdatasync. Falls back to buffered writes where O_DIRECT fails. */
static double t_write_direct(const char *dir, const uint8_t *p, size_t n)
{
	char path[600];
	size_t bs = 4u << 20;
	snprintf(path, sizeof path, "%s/raw", dir);
	uint8_t *mem = th_malloc(bs + 4096);
	if (!mem)
		die("out of memory", NULL);
	uint8_t *a = (uint8_t *)(((uintptr_t)mem + 4095) & ~(uintptr_t)4095);
	uint64_t t0 = th_now_ns();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0)
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open raw", NULL);
	for (size_t off = 0; off < n; off += bs) {
		size_t k = n - off < bs ? n - off : bs;
		memcpy(a, p + off, k);
		if (k % 4096) {
			int fl = fcntl(fd, F_GETFL);
			fcntl(fd, F_SETFL, fl & ~O_DIRECT);
		}
		if (write(fd, a, k) != (ssize_t)k)
			die("write raw", NULL);
	}
	fdatasync(fd);
	close(fd);
	double t = secs(t0);
	unlink(path);
	th_free(mem);
	return t;
}

static bool single;

static ths_store *open_store(const char *root, int sync)
{
	ths_options opt = { .sync = sync, .single_thread = single };
	ths_store *s;
	th_err err = { 0 };
	if (ths_open(root, &opt, &s, &err))
		die("open", &err);
	return s;
}

static double t_put(const char *root, const uint8_t *p, size_t n, int sync,
		    ths_hash *h)
{
	ths_store *s = open_store(root, sync);
	th_err err = { 0 };
	uint64_t t0 = th_now_ns();
	if (ths_put(s, p, n, h, &err))
		die("put", &err);
	double t = secs(t0);
	ths_close(s);
	return t;
}

static double t_get(const char *root, const ths_hash *h, size_t n)
{
	ths_store *s = open_store(root, THS_SYNC_NONE);
	th_err err = { 0 };
	static uint8_t buf[1 << 20];
	uint64_t t0 = th_now_ns();
	ths_reader *r;
	size_t got, total = 0;
	if (ths_reader_open(s, h, &r, &err))
		die("reader", &err);
	do {
		if (ths_reader_read(r, buf, sizeof buf, &got, &err))
			die("read", &err);
		total += got;
	} while (got);
	ths_reader_close(r);
	double t = secs(t0);
	if (total != n)
		die("short get", NULL);
	ths_close(s);
	return t;
}

static void bench_dir(const char *dir, const uint8_t *buf, size_t n)
{
	char base[512], root[600];
	snprintf(base, sizeof base, "%s/ths_bench_XXXXXX", dir);
	if (!mkdtemp(base)) {
		fprintf(stderr, "bench_store: cannot use %s\n", dir);
		return;
	}
	/* Each operation is timed right after its own SHA-256 reference, and
	 * the ratio is taken per pair: on a shared, noisy machine the pairs
	 * see similar load, whole runs do not. */
	enum { SHA, CDC, WR, WRS, WRD, PUT1, PUT, PUTS, REPUT, GET, NOPS };
	static const char *const names[NOPS] = {
		"raw SHA-256 (reference)", "CDC boundaries only",
		"raw write, one file", "raw write + fsync",
		"raw O_DIRECT write+fsync",
		"put (sync none, 1 thread)", "put (sync none)",
		"put (sync full)", "re-put (all present)", "get (fresh handle)",
	};
	double t[NOPS][16], ratio[NOPS][16], cpu[NOPS][16];
	snprintf(root, sizeof root, "%s/s", base);
	printf("\n%s:\n", dir);
	print_load("before");
	for (int r = 0; r < reps; r++) {
		ths_hash h;
		for (int op = 0; op < NOPS; op++) {
			double c0 = cpu_now();
			double ref = t_sha(buf, n), x = ref;
			double c1 = cpu_now();
			switch (op) {
			case SHA: x = t_sha(buf, n); break;
			case CDC: x = t_cdc(buf, n); break;
			case WR: x = t_write(base, buf, n, false); break;
			case WRS: x = t_write(base, buf, n, true); break;
			case WRD: x = t_write_direct(base, buf, n); break;
			case PUT1:
				rm_rf(root);
				single = true;
				x = t_put(root, buf, n, THS_SYNC_NONE, &h);
				single = false;
				break;
			case PUT:
				rm_rf(root);
				x = t_put(root, buf, n, THS_SYNC_NONE, &h);
				break;
			case PUTS:
				rm_rf(root);
				x = t_put(root, buf, n, THS_SYNC_FULL, &h);
				break;
			case REPUT: x = t_put(root, buf, n, THS_SYNC_NONE, &h); break;
			case GET: x = t_get(root, &h, n); break;
			}
			t[op][r] = x;
			ratio[op][r] = ref / x;
			cpu[op][r] = (cpu_now() - c1) / (c1 - c0);
		}
	}
	rm_rf(root);
	print_load("after ");
	double mb = (double)n / 1e6;
	printf("  %.0f MB, median of %d; CPU: CPU seconds of all threads "
	       "over those of the SHA-256 run\n", mb, reps);
	printf("  %-26s %9s %12s %9s\n", "", "MB/s", "vs SHA-256", "CPU");
	for (int op = 0; op < NOPS; op++)
		printf("  %-26s %9.0f %11.0f%% %9.2f\n", names[op],
		       mb / median(t[op], reps), 100.0 * median(ratio[op], reps),
		       median(cpu[op], reps));
	rm_rf(base);
}

static void bench_insert(const char *dir)
{
	size_t n = 100u * 1000 * 1000;
	uint8_t *a = th_malloc(n + 1);
	if (!a)
		die("out of memory", NULL);
	fill(a, n, 7);
	char base[512];
	snprintf(base, sizeof base, "%s/ths_bench_XXXXXX", dir);
	if (!mkdtemp(base))
		die("mkdtemp", NULL);
	ths_store *s = open_store(base, THS_SYNC_NONE);
	ths_hash h1, h2;
	ths_stats st0, st1, st2;
	th_err err = { 0 };
	ths_get_stats(s, &st0);
	if (ths_put(s, a, n, &h1, &err))
		die("put", &err);
	ths_get_stats(s, &st1);
	memmove(a + 1001, a + 1000, n - 1000);
	a[1000] = 0x42;
	if (ths_put(s, a, n + 1, &h2, &err))
		die("put", &err);
	ths_get_stats(s, &st2);
	uint64_t nb = st2.bytes_written - st1.bytes_written;
	printf("\nre-store of %zu bytes with 1 byte inserted at offset 1000:\n"
	       "  first put wrote %llu objects, %llu bytes\n"
	       "  second put wrote %llu objects, %llu bytes = %.3f%% of the "
	       "object (target < 1%%)\n", n,
	       (unsigned long long)(st1.objects_written - st0.objects_written),
	       (unsigned long long)(st1.bytes_written - st0.bytes_written),
	       (unsigned long long)(st2.objects_written - st1.objects_written),
	       (unsigned long long)nb, 100.0 * (double)nb / (double)n);
	ths_close(s);
	rm_rf(base);
	th_free(a);
}

int main(int argc, char **argv)
{
	const char *env = getenv("BENCH_STORE_MB");
	size_t mb = env ? strtoul(env, NULL, 10) : 256;
	if ((env = getenv("REPS")) != NULL)
		reps = atoi(env);
	if (reps < 1 || reps > 15)
		reps = 3;
	size_t n = mb << 20;
	uint8_t *buf = th_malloc(n);
	if (!buf)
		die("out of memory", NULL);
	fill(buf, n, 1);
	printf("store benchmark: chunks %d/%d/%d KiB (min/avg/max)\n",
	       THS_CHUNK_MIN >> 10, THS_CHUNK_AVG >> 10, THS_CHUNK_MAX >> 10);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bench_dir(argv[i], buf, n);
	} else {
		bench_dir("/tmp", buf, n);
		struct stat st;
		if (stat("/dev/shm", &st) == 0)
			bench_dir("/dev/shm", buf, n);
	}
	th_free(buf);
	bench_insert(argc > 1 ? argv[1] : "/tmp");
	return 0;
}
