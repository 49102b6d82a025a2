/*
 * timer.h - the runtime's timer service (prefix rtt_).
 *
 * One thread sleeps until the earliest deadline and fires expired timers by
 * calling their callback on that thread; callbacks must be short (they
 * typically wake an actor). Used for timing.sleep/deadline, request
 * timeouts, restart backoff and circuit-breaker reset.
 *
 * A timer is caller-owned memory (embedded in the object it serves). After
 * rtt_cancel returns, the callback is not running and will not run, so the
 * caller may free the timer; rtt_cancel must not be called from the timer's
 * own callback. Every function is thread-safe.
 */
#ifndef TH_RUNTIME_TIMER_H
#define TH_RUNTIME_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "theater/base.h"

typedef struct rtt_service rtt_service;
typedef struct rtt_timer rtt_timer;
typedef void (*rtt_fn)(rtt_timer *t, void *ctx);

struct rtt_timer {
	uint64_t deadline_ns; /* th_now_ns() clock */
	uint64_t seq;         /* ties broken in arming order */
	int32_t heap_index;   /* -1 when not armed */
	rtt_fn fn;
	void *ctx;
};

int rtt_service_new(rtt_service **out, th_err *err);
/* Stops the thread; armed timers are dropped without firing. NULL ok. */
void rtt_service_free(rtt_service *s);

void rtt_timer_init(rtt_timer *t, rtt_fn fn, void *ctx);
/* Arm (or re-arm) t to fire at deadline_ns. TH_ENOMEM if the heap cannot
 * grow. */
int rtt_arm(rtt_service *s, rtt_timer *t, uint64_t deadline_ns);
/* Disarm t. Returns true if it was armed (so it will never fire). */
bool rtt_cancel(rtt_service *s, rtt_timer *t);
uint32_t rtt_armed(rtt_service *s);

#endif
