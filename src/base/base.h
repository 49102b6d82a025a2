/*
 * base.h (internal) - the allocator seam, error helpers and small utilities
 * every module uses. Internal: not part of include/theater/.
 *
 * Every allocation in the project goes through th_malloc/th_calloc/
 * th_realloc/th_free so that tests can make allocation fail on demand
 * (th_alloc_fail_after) and check that out-of-memory fails the operation,
 * never the process.
 */
#ifndef TH_BASE_INTERNAL_H
#define TH_BASE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "theater/base.h"

#define TH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TH_UNUSED(x) ((void)(x))

void *th_malloc(size_t n);
void *th_calloc(size_t count, size_t size);
void *th_realloc(void *p, size_t n);
void th_free(void *p);
/* n bytes aligned to a cache line (64), for arrays written by one thread
 * and read by another (no false sharing at the edges); free with
 * th_free_aligned. */
void *th_malloc_aligned(size_t n);
void th_free_aligned(void *p);
char *th_strdup(const char *s);
/* An empty error, without zeroing its whole message buffer (th_err = {0}
 * clears 516 bytes: on a per-message path that shows). */
static inline void th_err_clear(th_err *e)
{
	e->code = 0;
	e->msg[0] = 0;
}
/* Lock m, first trying for a few microseconds: for a lock held about a
 * microsecond at a time by threads on other CPUs (an actor's chain and
 * mailbox, shared by its senders and its worker), where sleeping in the
 * kernel and being woken costs more than the wait. */
#define TH_LOCK_SPINS 64
/* A spin-wait's pause: lets the other hyperthread run, saves power. */
static inline void th_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}
static inline void th_mutex_lock_spin(pthread_mutex_t *m)
{
	for (int i = 0; i < TH_LOCK_SPINS; i++) {
#ifdef __GLIBC__
		/* Try only when the lock word reads free: a failing trylock
		 * still takes the cache line from the holder. */
		if (__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) == 0 &&
		    pthread_mutex_trylock(m) == 0)
			return;
#else
		if (pthread_mutex_trylock(m) == 0)
			return;
#endif
		for (int k = 0; k < 8; k++)
			th_cpu_relax();
	}
	pthread_mutex_lock(m);
}

/* Add n to a counter that only the calling thread writes (others may read
 * it): a plain load and store, not a locked read-modify-write, which costs
 * about as much as a cache miss. */
static inline void th_own_add(_Atomic uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* A lock for the shortest critical sections on hot paths (an actor's
 * mailbox): one compare-and-swap to take it, one exchange to give it
 * back, where a pthread mutex spends about 60 instructions on the pair.
 * A taker that finds it held spins TH_LOCK_SPINS rounds, then sleeps on
 * a futex. The word is 0 (free), 1 (held) or 2 (held, maybe with
 * sleepers: the release wakes one). Not recursive; no condition
 * variables. Zeroed memory is a free lock. */
typedef struct th_lock {
	uint32_t v; /* accessed with __atomic builtins only */
} th_lock;
void th_lock_wait(th_lock *l); /* the slow path of th_lock_take */
void th_lock_wake(th_lock *l); /* the slow path of th_lock_give */
static inline void th_lock_take(th_lock *l)
{
	uint32_t free_ = 0;
	if (__builtin_expect(!__atomic_compare_exchange_n(&l->v, &free_, 1, false,
							  __ATOMIC_ACQUIRE,
							  __ATOMIC_RELAXED), 0))
		th_lock_wait(l);
}
static inline void th_lock_give(th_lock *l)
{
	if (__builtin_expect(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) != 1, 0))
		th_lock_wake(l);
}

/* Copy s into dst[size] (size > 0), cut to fit, always terminated;
 * returns the length copied. For hot paths where snprintf("%s") costs. */
static inline size_t th_strlcpy(char *dst, const char *s, size_t size)
{
	size_t n = strlen(s);
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
	return n;
}
char *th_strndup(const char *s, size_t n);

/* Testing: the n-th allocation from now (0 = the next) and every later one
 * fail, until th_alloc_fail_after(-1) turns injection off. Thread-safe. */
void th_alloc_fail_after(long n);

/* Fill err (may be NULL) with code and a printf-style message; returns code
 * so that callers can write `return th_err_set(err, TH_EINVAL, "...")`. */
int th_err_set(th_err *err, int code, const char *fmt, ...) TH_PRINTF(3, 4);
int th_err_setv(th_err *err, int code, const char *fmt, va_list ap);
/* Prefix an existing message: "context: old message". Returns err->code. */
int th_err_prefix(th_err *err, const char *fmt, ...) TH_PRINTF(2, 3);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool th_add_ok(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}
static inline bool th_mul_ok(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/* Monotonic and wall clocks in nanoseconds. */
uint64_t th_now_ns(void);
uint64_t th_wall_ns(void);
/* The absolute time ms milliseconds from now on clock id, for
 * pthread_cond_timedwait on a condition using that clock. */
struct timespec th_deadline(clockid_t id, uint64_t ms);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void th_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits; returns false on any other input. */
bool th_unhex(const char *in, uint8_t *out, size_t n);

/* Last, so that the system headers above are already declared. */
#include "banned.h"

#endif
