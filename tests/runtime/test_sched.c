/* White-box tests of the work-stealing scheduler (src/runtime/sched.c). */
#include <pthread.h>
#include <unistd.h>

#include "base/base.h"
#include "runtime/sched.h"
#include "test.h"

/* A task that counts its runs and, until it reaches `target`, re-wakes
 * itself or yields. */
typedef struct counter_task {
	rts_task task;
	rts_sched *sched;
	_Atomic long runs;
	long target;
	bool yield;
	_Atomic int concurrent; /* >1 would mean two workers ran it at once */
	_Atomic int max_concurrent;
	struct counter_task *rival; /* fairness: rival's runs when we finish */
	long rival_runs_at_finish;
} counter_task;

static rts_result counter_run(rts_task *t, int worker)
{
	counter_task *c = (counter_task *)t;
	TH_UNUSED(worker);
	int now = atomic_fetch_add(&c->concurrent, 1) + 1;
	if (now > atomic_load(&c->max_concurrent))
		atomic_store(&c->max_concurrent, now);
	long n = atomic_fetch_add(&c->runs, 1) + 1;
	atomic_fetch_sub(&c->concurrent, 1);
	if (n >= c->target) {
		if (c->rival)
			c->rival_runs_at_finish = atomic_load(&c->rival->runs);
		return RTS_IDLE;
	}
	if (c->yield)
		return RTS_YIELD;
	rts_wake(c->sched, t);
	return RTS_IDLE;
}

static void wait_runs(counter_task *cs, int n)
{
	for (int spins = 0; spins < 60000; spins++) {
		bool done = true;
		for (int i = 0; i < n; i++)
			if (atomic_load(&cs[i].runs) < cs[i].target)
				done = false;
		if (done)
			return;
		usleep(1000);
	}
}

TEST(every_task_runs_to_its_target)
{
	rts_sched *s;
	th_err err = { 0 };
	enum { N = 200 };
	static counter_task cs[N];
	REQUIRE(rts_sched_new(2, &s, &err) == 0);
	for (int i = 0; i < N; i++) {
		rts_task_init(&cs[i].task, counter_run);
		cs[i].sched = s;
		cs[i].target = 500;
		cs[i].yield = i % 2;
		rts_wake(s, &cs[i].task);
	}
	wait_runs(cs, N);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(atomic_load(&cs[i].runs), 500);
		CHECK_EQ_INT(atomic_load(&cs[i].max_concurrent), 1);
	}
	rts_sched_free(s);
}

/* Many threads wake the same idle task at once: it must run at least once
 * after the last wake, and never on two workers at the same time. */
typedef struct waker_arg {
	rts_sched *s;
	counter_task *c;
	int n;
} waker_arg;

static void *waker(void *p)
{
	waker_arg *a = p;
	for (int i = 0; i < a->n; i++)
		rts_wake(a->s, &a->c->task);
	return NULL;
}

static rts_result slow_run(rts_task *t, int worker)
{
	counter_task *c = (counter_task *)t;
	TH_UNUSED(worker);
	int now = atomic_fetch_add(&c->concurrent, 1) + 1;
	if (now > atomic_load(&c->max_concurrent))
		atomic_store(&c->max_concurrent, now);
	atomic_fetch_add(&c->runs, 1);
	atomic_fetch_sub(&c->concurrent, 1);
	return RTS_IDLE;
}

TEST(concurrent_wakes_never_run_a_task_twice_at_once)
{
	rts_sched *s;
	th_err err = { 0 };
	static counter_task c;
	pthread_t th[4];
	waker_arg a;
	REQUIRE(rts_sched_new(2, &s, &err) == 0);
	rts_task_init(&c.task, slow_run);
	a = (waker_arg){ s, &c, 20000 };
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, waker, &a);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* After the last wake returned, at least one more run must happen. */
	long before = atomic_load(&c.runs);
	for (int i = 0; i < 5000 && atomic_load(&c.task.state) != 0; i++)
		usleep(1000);
	CHECK(atomic_load(&c.runs) >= 1);
	CHECK(atomic_load(&c.runs) >= before);
	CHECK_EQ_INT(atomic_load(&c.task.state), 0);
	CHECK_EQ_INT(atomic_load(&c.max_concurrent), 1);
	rts_sched_free(s);
}

TEST(single_worker_is_fair_between_yielding_tasks)
{
	/* With one worker, two always-yielding tasks must alternate through
	 * the injector: neither finishes while the other has barely run. */
	rts_sched *s;
	th_err err = { 0 };
	static counter_task cs[2];
	REQUIRE(rts_sched_new(1, &s, &err) == 0);
	for (int i = 0; i < 2; i++) {
		rts_task_init(&cs[i].task, counter_run);
		cs[i].sched = s;
		cs[i].target = 100000;
		cs[i].yield = true;
		cs[i].rival = &cs[1 - i];
	}
	rts_wake(s, &cs[0].task);
	rts_wake(s, &cs[1].task);
	wait_runs(cs, 2);
	CHECK_EQ_INT(atomic_load(&cs[0].runs), 100000);
	CHECK_EQ_INT(atomic_load(&cs[1].runs), 100000);
	/* Strict alternation: whoever finished first, the rival was within a
	 * run or two of it. */
	long gap0 = 100000 - cs[0].rival_runs_at_finish;
	long gap1 = 100000 - cs[1].rival_runs_at_finish;
	CHECK(gap0 <= 2 || gap1 <= 2);
	rts_sched_free(s);
}

TEST(workers_steal_from_a_busy_worker)
{
	rts_sched *s;
	th_err err = { 0 };
	enum { N = 1000 };
	static counter_task cs[N];
	rts_stats st;
	REQUIRE(rts_sched_new(2, &s, &err) == 0);
	for (int i = 0; i < N; i++) {
		rts_task_init(&cs[i].task, counter_run);
		cs[i].sched = s;
		cs[i].target = 2000;
	}
	for (int i = 0; i < N; i++)
		rts_wake(s, &cs[i].task);
	wait_runs(cs, N);
	rts_sched_stats(s, &st);
	CHECK(st.runs >= (uint64_t)N * 2000);
	rts_sched_free(s);
}

/* Two tasks passing a token back and forth (each run wakes the other),
 * and a third task queued on the same worker. */
typedef struct pair_task {
	rts_task task;
	rts_sched *sched;
	struct pair_task *peer;
	struct pair_task *extra; /* woken once, on the first run */
	_Atomic long runs;
	long limit;
	_Atomic int last_worker;
	_Atomic long moves; /* runs on another worker than the peer's last */
	_Atomic long peer_runs_when_extra_ran;
	_Atomic bool *stop;
} pair_task;

static rts_result pair_run(rts_task *t, int worker)
{
	pair_task *p = (pair_task *)t;
	long n = atomic_fetch_add(&p->runs, 1) + 1;
	if (p->peer && n > 1 && atomic_load(&p->peer->last_worker) != worker)
		atomic_fetch_add(&p->moves, 1);
	atomic_store(&p->last_worker, worker);
	if (!p->peer) { /* the extra task: note when it got its turn */
		atomic_store(&p->peer_runs_when_extra_ran, 1);
		return RTS_IDLE;
	}
	if (n == 1 && p->extra)
		rts_wake(p->sched, &p->extra->task);
	if (n < p->limit && !(p->stop && atomic_load(p->stop)))
		rts_wake(p->sched, &p->peer->task);
	return RTS_IDLE;
}

static void pair_init(pair_task *a, pair_task *b, rts_sched *s, long limit)
{
	rts_task_init(&a->task, pair_run);
	rts_task_init(&b->task, pair_run);
	a->sched = b->sched = s;
	a->peer = b;
	b->peer = a;
	a->limit = b->limit = limit;
	atomic_store(&a->last_worker, -1);
	atomic_store(&b->last_worker, -1);
}

TEST(a_task_woken_by_the_running_task_runs_next_on_the_same_worker)
{
	/* Regression for cross-CPU hand-offs on every message (PingPong): the
	 * woken task goes to the waker's next slot, which is never stolen. */
	rts_sched *s;
	th_err err = { 0 };
	static pair_task a, b;
	REQUIRE(rts_sched_new(2, &s, &err) == 0);
	pair_init(&a, &b, s, 20000);
	rts_wake(s, &a.task);
	for (int i = 0; i < 60000 && (atomic_load(&a.runs) < 20000 ||
				       atomic_load(&b.runs) < 19999); i++)
		usleep(1000);
	CHECK_EQ_INT(atomic_load(&a.runs), 20000);
	CHECK_EQ_INT(atomic_load(&b.runs), 19999);
	CHECK_EQ_INT(atomic_load(&a.moves) + atomic_load(&b.moves), 0);
	rts_sched_free(s);
}

TEST(a_token_passing_pair_does_not_starve_a_task_queued_behind_it)
{
	/* One worker: A wakes X then B, so B takes the next slot and X waits
	 * in the deque while A and B keep waking each other. X must still
	 * run (NEXT_STREAK) long before the pair stops. */
	rts_sched *s;
	th_err err = { 0 };
	static pair_task a, b, x;
	static _Atomic bool stop;
	REQUIRE(rts_sched_new(1, &s, &err) == 0);
	pair_init(&a, &b, s, 1000000);
	a.stop = b.stop = &stop;
	rts_task_init(&x.task, pair_run);
	x.sched = s;
	a.extra = &x;
	rts_wake(s, &a.task);
	for (int i = 0; i < 60000 && !atomic_load(&x.peer_runs_when_extra_ran) &&
			atomic_load(&a.runs) < 1000000; i++)
		usleep(1000);
	long pair_runs = atomic_load(&a.runs);
	atomic_store(&stop, true);
	CHECK_EQ_INT(atomic_load(&x.runs), 1);
	CHECK(pair_runs < 1000000);
	for (int i = 0; i < 60000 && atomic_load(&a.task.state) + atomic_load(&b.task.state); i++)
		usleep(1000);
	rts_sched_free(s);
}

/* The recovery lane: one worker, blocked by a gate task while 40 low and
 * 40 normal tasks are queued; then the order in which they run. */
typedef struct lane_task {
	rts_task task;
	bool low;
} lane_task;

static _Atomic int lane_order[81], lane_n;
static _Atomic bool lane_open;

static rts_result lane_run(rts_task *t, int worker)
{
	lane_task *l = (lane_task *)t;
	TH_UNUSED(worker);
	int i = atomic_fetch_add(&lane_n, 1);
	if (i < 81)
		atomic_store(&lane_order[i], l->low ? 1 : 0);
	return RTS_IDLE;
}

static rts_result gate_run(rts_task *t, int worker)
{
	TH_UNUSED(t);
	TH_UNUSED(worker);
	while (!atomic_load(&lane_open))
		usleep(1000);
	return RTS_IDLE;
}

TEST(recovery_lane_yields_to_ready_tasks_but_is_not_starved)
{
	rts_sched *s;
	th_err err = { 0 };
	static lane_task ts[80];
	static rts_task gate;
	int lows_before_last_normal = 0, last_normal = -1;
	REQUIRE(rts_sched_new(1, &s, &err) == 0);
	rts_task_init(&gate, gate_run);
	rts_wake(s, &gate);
	while (atomic_load(&gate.state) != 2 /* RUNNING */)
		usleep(1000);
	for (int i = 0; i < 80; i++) {
		rts_task_init(&ts[i].task, lane_run);
		ts[i].low = i % 2 == 0; /* low ones queued first */
		rts_task_set_low(&ts[i].task, ts[i].low);
		rts_wake(s, &ts[i].task);
	}
	atomic_store(&lane_open, true);
	for (int i = 0; i < 60000 && atomic_load(&lane_n) < 80; i++)
		usleep(1000);
	REQUIRE(atomic_load(&lane_n) == 80);
	for (int i = 0; i < 80; i++)
		if (!atomic_load(&lane_order[i]))
			last_normal = i;
	for (int i = 0; i < last_normal; i++)
		lows_before_last_normal += atomic_load(&lane_order[i]);
	/* 40 normal picks: one low in every 8 picks goes first, no more. */
	CHECK(lows_before_last_normal >= 4);
	CHECK(lows_before_last_normal <= 7);
	rts_stats st;
	rts_sched_stats(s, &st);
	CHECK_EQ_INT(st.low_runs, 40);
	rts_sched_free(s);
}

/* rts_run_here: records the worker of each run; yields `yields` times. */
typedef struct here_task {
	rts_task task;
	_Atomic long runs;
	_Atomic int first_worker, last_worker;
	long yields;
} here_task;

static rts_result here_run(rts_task *t, int worker)
{
	here_task *h = (here_task *)t;
	if (atomic_fetch_add(&h->runs, 1) == 0)
		atomic_store(&h->first_worker, worker);
	atomic_store(&h->last_worker, worker);
	if (h->yields > 0) {
		h->yields--;
		return RTS_YIELD;
	}
	return RTS_IDLE;
}

TEST(run_here_runs_an_idle_task_on_the_calling_thread)
{
	rts_sched *s;
	th_err err = { 0 };
	static here_task h, y;
	REQUIRE(rts_sched_new(2, &s, &err) == 0);
	rts_task_init(&h.task, here_run);
	rts_run_here(s, &h.task);
	/* Synchronous, on this thread (worker -1), and idle again after. */
	CHECK_EQ_INT(atomic_load(&h.runs), 1);
	CHECK_EQ_INT(atomic_load(&h.first_worker), -1);
	CHECK_EQ_INT(atomic_load(&h.task.state), 0);
	/* A task that yields goes on in the pool. */
	rts_task_init(&y.task, here_run);
	y.yields = 1;
	rts_run_here(s, &y.task);
	CHECK_EQ_INT(atomic_load(&y.first_worker), -1);
	for (int i = 0; i < 60000 && atomic_load(&y.runs) < 2; i++)
		usleep(1000);
	CHECK_EQ_INT(atomic_load(&y.runs), 2);
	CHECK(atomic_load(&y.last_worker) >= 0);
	rts_sched_free(s);
}

TEST(create_fails_cleanly_without_memory)
{
	rts_sched *s = (rts_sched *)1;
	th_err err = { 0 };
	th_alloc_fail_after(0);
	CHECK_EQ_INT(rts_sched_new(2, &s, &err), TH_ENOMEM);
	th_alloc_fail_after(-1);
	CHECK(s == NULL);
	th_alloc_fail_after(2); /* scheduler + workers, then the first deque */
	CHECK_EQ_INT(rts_sched_new(2, &s, &err), TH_ENOMEM);
	th_alloc_fail_after(-1);
}

/* rts_count: adds from the workers (their own copies) and from other
 * threads (the shared one) all reach rts_count_sum. */
typedef struct count_task {
	rts_task task;
	rts_sched *sched;
	_Atomic long runs;
} count_task;

static rts_result count_run(rts_task *t, int worker)
{
	count_task *c = (count_task *)t;
	TH_UNUSED(worker);
	rts_count(c->sched, RTS_C_MESSAGES, 3);
	rts_count(c->sched, RTS_C_HOST_CALLS, 1);
	if (atomic_fetch_add(&c->runs, 1) + 1 < 1000)
		rts_wake(c->sched, t);
	return RTS_IDLE;
}

TEST(counters_sum_workers_and_other_threads)
{
	rts_sched *s;
	th_err err = { 0 };
	static count_task cs[8];
	REQUIRE(rts_sched_new(2, &s, &err) == 0);
	for (int i = 0; i < 8; i++) {
		rts_task_init(&cs[i].task, count_run);
		cs[i].sched = s;
		rts_wake(s, &cs[i].task);
	}
	for (int i = 0; i < 100; i++)
		rts_count(s, RTS_C_HOST_CALLS, 2); /* not a worker */
	for (int spins = 0; spins < 60000; spins++) {
		long done = 0;
		for (int i = 0; i < 8; i++)
			done += atomic_load(&cs[i].runs);
		if (done == 8000)
			break;
		usleep(1000);
	}
	/* each run counts before its runs increment: all are seen here */
	CHECK_EQ_INT(rts_count_sum(s, RTS_C_MESSAGES), 3 * 8000);
	CHECK_EQ_INT(rts_count_sum(s, RTS_C_HOST_CALLS), 8000 + 200);
	rts_sched_free(s);
}

TEST_MAIN()
