/*
 * base.c - the allocator seam, error values, clocks, hex helpers and the
 * slow paths of th_lock.
 */
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

/* Allocation-failure injection: counts down to zero, then fails. -1 = off. */
static _Atomic long alloc_countdown = -1;

static bool alloc_should_fail(void)
{
	long n = atomic_load_explicit(&alloc_countdown, memory_order_relaxed);
	if (n < 0)
		return false;
	if (n == 0)
		return true;
	atomic_fetch_sub_explicit(&alloc_countdown, 1, memory_order_relaxed);
	return false;
}

void th_alloc_fail_after(long n)
{
	atomic_store(&alloc_countdown, n);
}

void *th_malloc(size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *th_calloc(size_t count, size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return calloc(count ? count : 1, size ? size : 1);
}

void *th_realloc(void *p, size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void th_free(void *p)
{
	free(p);
}

void *th_malloc_aligned(size_t n)
{
	void *p = NULL;
	if (alloc_should_fail() || posix_memalign(&p, 64, n ? n : 1) != 0)
		return NULL;
	return p;
}

void th_free_aligned(void *p)
{
	free(p);
}

char *th_strndup(const char *s, size_t n)
{
	char *d = th_malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

char *th_strdup(const char *s)
{
	return th_strndup(s, strlen(s));
}

const char *th_strerror(int code)
{
	switch (code) {
	case TH_OK: return "ok";
	case TH_ENOMEM: return "out of memory";
	case TH_EINVAL: return "invalid input";
	case TH_EIO: return "I/O error";
	case TH_ENOTFOUND: return "not found";
	case TH_ECORRUPT: return "data corrupt";
	case TH_EEXIST: return "already exists";
	case TH_ENOSPC: return "no space left";
	case TH_ELIMIT: return "limit exceeded";
	case TH_EPERM: return "permission denied";
	case TH_EBUSY: return "busy";
	case TH_ECONFLICT: return "conflict";
	case TH_ETIMEOUT: return "timed out";
	case TH_ESTATE: return "invalid state";
	case TH_EUNSUPPORTED: return "unsupported";
	default: return "unknown error";
	}
}

int th_err_setv(th_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	}
	return code;
}

int th_err_set(th_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	th_err_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int th_err_prefix(th_err *err, const char *fmt, ...)
{
	char head[TH_ERR_MSG_MAX], old[TH_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return TH_EINVAL;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	snprintf(err->msg, sizeof err->msg, "%s: %s", head, old);
	return err->code;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t th_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t th_wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

struct timespec th_deadline(clockid_t id, uint64_t ms)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void th_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool th_unhex(const char *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo;
		if (hi < 0)
			return false;
		lo = hexval(in[2 * i + 1]);
		if (lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * n] == '\0';
}

/* ---- th_lock (base.h) -------------------------------------------------- */

void th_lock_wait(th_lock *l)
{
	for (int i = 0; i < TH_LOCK_SPINS; i++) {
		uint32_t free_ = 0;
		/* try only when it reads free: a failing try still takes the
		 * cache line from the holder */
		if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&l->v, &free_, 1, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		for (int k = 0; k < 8; k++)
			th_cpu_relax();
	}
	/* Mark it contended (2) while taking it: whoever holds it wakes a
	 * sleeper when giving it back. Taking it as 2 may cost one needless
	 * wake later; never a lost one. */
	while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
		syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void th_lock_wake(th_lock *l)
{
	syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
