/* A library module without WASI, for --invoke. */
#include <stdint.h>

#define EXPORT(n) __attribute__((export_name(n)))

EXPORT("add") int32_t add(int32_t a, int32_t b) { return a + b; }
EXPORT("mul64") int64_t mul64(int64_t a, int64_t b) { return a * b; }
EXPORT("hypot") double hyp(double a, double b) { return __builtin_sqrt(a * a + b * b); }
EXPORT("half") float half(float a) { return a / 2; }
EXPORT("answer") int32_t answer(void) { return 42; }
EXPORT("fib") uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
