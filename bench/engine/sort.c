/* Quicksort (median of three, insertion sort for small ranges) of 2 million
 * pseudo-random 32-bit keys, then a checksum over the sorted order. */
#include "bench.h"

#define N 2000000
static uint32_t a[N];

static void insertion(uint32_t *v, long n)
{
	for (long i = 1; i < n; i++) {
		uint32_t x = v[i];
		long j = i - 1;
		while (j >= 0 && v[j] > x) {
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
}

static void quicksort(uint32_t *v, long n)
{
	while (n > 16) {
		uint32_t p0 = v[0], p1 = v[n / 2], p2 = v[n - 1], p;
		p = p0 < p1 ? (p1 < p2 ? p1 : (p0 < p2 ? p2 : p0))
			    : (p0 < p2 ? p0 : (p1 < p2 ? p2 : p1));
		long i = 0, j = n - 1;
		for (;;) {
			while (v[i] < p)
				i++;
			while (v[j] > p)
				j--;
			if (i >= j)
				break;
			uint32_t t = v[i];
			v[i] = v[j];
			v[j] = t;
			i++;
			j--;
		}
		/* Recurse on the smaller side, loop on the larger. */
		if (j + 1 < n - j - 1) {
			quicksort(v, j + 1);
			v += j + 1;
			n -= j + 1;
		} else {
			quicksort(v + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	insertion(v, n);
}

uint32_t bench_run(void)
{
	uint32_t x = bench_seed;
	for (long i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		a[i] = x;
	}
	quicksort(a, N);
	uint32_t h = 0;
	for (long i = 0; i < N; i++) {
		if (i && a[i - 1] > a[i])
			return 0; /* not sorted */
		h = h * 31u + a[i];
	}
	return h;
}
BENCH_MAIN("sort")
