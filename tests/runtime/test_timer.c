/* White-box tests of the timer service (src/runtime/timer.c). No test
 * depends on how fast the machine is: deadlines are checked as lower
 * bounds and order, never as upper bounds on latency. */
#include <pthread.h>
#include <unistd.h>

#include "base/base.h"
#include "runtime/timer.h"
#include "test.h"

typedef struct fired_log {
	pthread_mutex_t lock;
	int order[64];
	uint64_t at[64];
	int n;
} fired_log;

static fired_log flog = { PTHREAD_MUTEX_INITIALIZER };

typedef struct tagged {
	rtt_timer t;
	int tag;
} tagged;

static void on_fire(rtt_timer *t, void *ctx)
{
	tagged *g = ctx;
	TH_UNUSED(t);
	pthread_mutex_lock(&flog.lock);
	flog.at[flog.n] = th_now_ns();
	flog.order[flog.n++] = g->tag;
	pthread_mutex_unlock(&flog.lock);
}

static int fired_count(void)
{
	pthread_mutex_lock(&flog.lock);
	int n = flog.n;
	pthread_mutex_unlock(&flog.lock);
	return n;
}

static void wait_fired(int n)
{
	for (int i = 0; i < 20000 && fired_count() < n; i++)
		usleep(1000);
}

TEST(timers_fire_in_deadline_order_not_before_their_deadline)
{
	rtt_service *s;
	th_err err = { 0 };
	static tagged ts[5];
	int delays_ms[5] = { 40, 10, 30, 20, 10 };
	REQUIRE(rtt_service_new(&s, &err) == 0);
	uint64_t start = th_now_ns();
	for (int i = 0; i < 5; i++) {
		ts[i].tag = i;
		rtt_timer_init(&ts[i].t, on_fire, &ts[i]);
		CHECK_EQ_INT(rtt_arm(s, &ts[i].t,
				     start + (uint64_t)delays_ms[i] * 1000000u), 0);
	}
	wait_fired(5);
	REQUIRE(fired_count() == 5);
	int want[5] = { 1, 4, 3, 2, 0 }; /* equal deadlines: arming order */
	for (int i = 0; i < 5; i++) {
		CHECK_EQ_INT(flog.order[i], want[i]);
		CHECK(flog.at[i] >= start + (uint64_t)delays_ms[want[i]] * 1000000u);
	}
	CHECK_EQ_INT(rtt_armed(s), 0);
	rtt_service_free(s);
}

TEST(cancelled_and_rearmed_timers)
{
	rtt_service *s;
	th_err err = { 0 };
	static tagged a = { .tag = 1 }, b = { .tag = 2 };
	REQUIRE(rtt_service_new(&s, &err) == 0);
	rtt_timer_init(&a.t, on_fire, &a);
	rtt_timer_init(&b.t, on_fire, &b);
	uint64_t now = th_now_ns();
	CHECK_EQ_INT(rtt_arm(s, &a.t, now + 3600ull * 1000000000u), 0);
	CHECK_EQ_INT(rtt_arm(s, &b.t, now + 3600ull * 1000000000u), 0);
	CHECK(rtt_cancel(s, &a.t));
	CHECK(!rtt_cancel(s, &a.t));
	CHECK_EQ_INT(rtt_arm(s, &b.t, now), 0); /* re-arm earlier */
	wait_fired(1);
	usleep(20000);
	CHECK_EQ_INT(fired_count(), 1);
	CHECK_EQ_INT(flog.order[0], 2);
	CHECK_EQ_INT(rtt_armed(s), 0);
	rtt_service_free(s);
}

TEST(many_timers_heap_stays_consistent)
{
	rtt_service *s;
	th_err err = { 0 };
	enum { N = 2000 };
	static rtt_timer ts[N];
	REQUIRE(rtt_service_new(&s, &err) == 0);
	uint64_t far = th_now_ns() + 3600ull * 1000000000u;
	for (int i = 0; i < N; i++) {
		rtt_timer_init(&ts[i], on_fire, NULL);
		CHECK_EQ_INT(rtt_arm(s, &ts[i], far + (uint64_t)((i * 7919) % N)), 0);
	}
	for (int i = 0; i < N; i += 3)
		CHECK(rtt_cancel(s, &ts[i]));
	CHECK_EQ_INT(rtt_armed(s), N - (N + 2) / 3);
	rtt_service_free(s); /* drops the rest without firing */
	CHECK_EQ_INT(fired_count(), 0);
}

TEST_MAIN()
