/*
 * timer.c - a binary min-heap of deadlines served by one thread.
 *
 * Invariants (under s->lock): heap[0..n) is a min-heap on (deadline, seq);
 * every armed timer t sits at heap[t->heap_index]; a timer not in the heap
 * has heap_index == -1. `firing` is the timer whose callback is running
 * (outside the lock); rtt_cancel of that timer waits on `fired` until the
 * callback returns, which is what lets the caller free it afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "base/base.h"
#include "runtime/timer.h"

struct rtt_service {
	pthread_mutex_t lock;
	pthread_cond_t wake;   /* new earliest deadline, or stop */
	pthread_cond_t fired;  /* a callback returned */
	pthread_t thread;
	rtt_timer **heap;
	uint32_t n, cap;
	uint64_t next_seq;
	rtt_timer *firing;
	bool stop;
};

static bool before(const rtt_timer *a, const rtt_timer *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns;
	return a->seq < b->seq;
}

static void place(rtt_service *s, uint32_t i, rtt_timer *t)
{
	s->heap[i] = t;
	t->heap_index = (int32_t)i;
}

static void sift_up(rtt_service *s, uint32_t i)
{
	rtt_timer *t = s->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!before(t, s->heap[parent]))
			break;
		place(s, i, s->heap[parent]);
		i = parent;
	}
	place(s, i, t);
}

static void sift_down(rtt_service *s, uint32_t i)
{
	rtt_timer *t = s->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= s->n)
			break;
		if (c + 1 < s->n && before(s->heap[c + 1], s->heap[c]))
			c++;
		if (!before(s->heap[c], t))
			break;
		place(s, i, s->heap[c]);
		i = c;
	}
	place(s, i, t);
}

static void heap_remove(rtt_service *s, rtt_timer *t)
{
	uint32_t i = (uint32_t)t->heap_index;
	rtt_timer *last = s->heap[--s->n];
	t->heap_index = -1;
	if (last == t)
		return;
	place(s, i, last);
	sift_down(s, i);
	sift_up(s, (uint32_t)last->heap_index);
}

static void *timer_main(void *arg)
{
	rtt_service *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		if (s->n == 0) {
			pthread_cond_wait(&s->wake, &s->lock);
			continue;
		}
		rtt_timer *t = s->heap[0];
		uint64_t now = th_now_ns();
		if (t->deadline_ns > now) {
			struct timespec ts = {
				.tv_sec = (time_t)(t->deadline_ns / 1000000000u),
				.tv_nsec = (long)(t->deadline_ns % 1000000000u),
			};
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
			continue;
		}
		heap_remove(s, t);
		s->firing = t;
		pthread_mutex_unlock(&s->lock);
		t->fn(t, t->ctx);
		pthread_mutex_lock(&s->lock);
		s->firing = NULL;
		pthread_cond_broadcast(&s->fired);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int rtt_service_new(rtt_service **out, th_err *err)
{
	rtt_service *s = th_calloc(1, sizeof *s);
	pthread_condattr_t ca;

	*out = NULL;
	if (!s)
		return th_err_set(err, TH_ENOMEM, "timer service: out of memory");
	pthread_mutex_init(&s->lock, NULL);
	/* Deadlines are on the monotonic clock, like th_now_ns. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->fired, NULL);
	if (pthread_create(&s->thread, NULL, timer_main, s) != 0) {
		pthread_cond_destroy(&s->fired);
		pthread_cond_destroy(&s->wake);
		pthread_mutex_destroy(&s->lock);
		th_free(s);
		return th_err_set(err, TH_ENOMEM,
				  "timer service: cannot start thread");
	}
	*out = s;
	return 0;
}

void rtt_service_free(rtt_service *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	for (uint32_t i = 0; i < s->n; i++)
		s->heap[i]->heap_index = -1;
	th_free(s->heap);
	pthread_cond_destroy(&s->fired);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	th_free(s);
}

void rtt_timer_init(rtt_timer *t, rtt_fn fn, void *ctx)
{
	memset(t, 0, sizeof *t);
	t->heap_index = -1;
	t->fn = fn;
	t->ctx = ctx;
}

int rtt_arm(rtt_service *s, rtt_timer *t, uint64_t deadline_ns)
{
	pthread_mutex_lock(&s->lock);
	if (t->heap_index >= 0)
		heap_remove(s, t);
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? 2 * s->cap : 64;
		rtt_timer **h = th_realloc(s->heap, cap * sizeof *h);
		if (!h) {
			pthread_mutex_unlock(&s->lock);
			return TH_ENOMEM;
		}
		s->heap = h;
		s->cap = cap;
	}
	t->deadline_ns = deadline_ns;
	t->seq = s->next_seq++;
	place(s, s->n++, t);
	sift_up(s, (uint32_t)t->heap_index);
	if (s->heap[0] == t)
		pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

bool rtt_cancel(rtt_service *s, rtt_timer *t)
{
	bool was_armed;
	pthread_mutex_lock(&s->lock);
	was_armed = t->heap_index >= 0;
	if (was_armed)
		heap_remove(s, t);
	while (s->firing == t)
		pthread_cond_wait(&s->fired, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return was_armed;
}

uint32_t rtt_armed(rtt_service *s)
{
	uint32_t n;
	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}
