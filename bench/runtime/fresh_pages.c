/*
 * fresh_pages.c - what first touches of memory cost on this machine: the
 * reference for the part of a long in-memory run that is page faults (a
 * memory chain writes every event to fresh pages; docs/runtime.md).
 *   fresh_pages [MiB]   (default 256)
 * Prints the rate of faulting in fresh anonymous pages one write per page,
 * and with one MADV_POPULATE_WRITE call, best of 3 each.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Seconds to fault in n fresh bytes (populate: one madvise call). */
static double fault_in(size_t n, int populate)
{
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("fresh_pages: mmap");
		exit(1);
	}
	double t0 = now_s();
#ifdef MADV_POPULATE_WRITE
	if (populate && madvise(p, n, MADV_POPULATE_WRITE) != 0)
		populate = 0;
#else
	populate = 0;
#endif
	if (!populate)
		for (size_t o = 0; o < n; o += 4096)
			((volatile uint8_t *)p)[o] = 1;
	double t = now_s() - t0;
	munmap(p, n);
	return t;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t n = (mib ? mib : 1) << 20;
	for (int populate = 0; populate < 2; populate++) {
		double best = 1e9;
		for (int r = 0; r < 3; r++) {
			double t = fault_in(n, populate);
			if (t < best)
				best = t;
		}
		printf("fresh pages (%s): %.2f GB/s, %.2f us per 4 KiB page\n",
		       populate ? "MADV_POPULATE_WRITE" : "a write per page",
		       (double)n / best / 1e9, best / (double)(n / 4096) * 1e6);
	}
	return 0;
}
