/*
 * bench.h - shared frame of the engine benchmarks (the C programs here).
 *
 * Each program defines `uint32_t bench_run(void)`: a fixed, CPU-bound
 * workload on static data (no libc inside, so the same code also builds
 * freestanding) that returns a checksum. The build variants:
 *   native (gcc -O2) and wasm32-wasi (clang -O2): main() prints
 *     "NAME: CHECKSUM" - run natively, on `theater wasm run` and on Node;
 *   freestanding wasm32 (-DBENCH_FREESTANDING): only the export bench_run,
 *     for wabt's wasm-interp, which on Debian is built without WASI.
 * The checksum must agree across all of them (bench/engine/run.sh checks).
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef BENCH_FREESTANDING
/* The compiler may emit calls to these for struct copies and zeroing. */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *o = d;
	const unsigned char *i = s;
	while (n--)
		*o++ = *i++;
	return d;
}
void *memset(void *d, int c, size_t n)
{
	unsigned char *o = d;
	while (n--)
		*o++ = (unsigned char)c;
	return d;
}
#define BENCH_MAIN(name)
__attribute__((export_name("bench_run")))
#else
#include <stdio.h>
#define BENCH_MAIN(name)                                \
	int main(void)                                  \
	{                                               \
		printf("%s: %u\n", name, bench_run());  \
		return 0;                               \
	}
#endif
uint32_t bench_run(void);

/* A value the optimizer cannot know, so workloads are not folded away. */
static volatile uint32_t bench_seed = 12345;

#endif
