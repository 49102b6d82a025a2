/* Recursive Fibonacci: call-heavy (about 39 million calls). */
#include "bench.h"

static uint32_t fib(uint32_t n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

uint32_t bench_run(void)
{
	uint32_t n = 37 + bench_seed % 7; /* 41, unknown to the compiler */
	return fib(n);
}
BENCH_MAIN("fib")
