/*
 * sched.c - work-stealing scheduler.
 *
 * Task states (rts_task.state), and who moves between them:
 *
 *     IDLE --wake--> QUEUED --worker picks--> RUNNING --run returns--> IDLE
 *                      ^                        |  \
 *                      |                   wake |   run returns YIELD
 *                      |                        v    |
 *                      +--- run returns --- RUNNING_WOKEN
 *                      +---------------------------------+
 *
 * Invariants:
 *  1. A task is in exactly one queue iff its state is QUEUED.
 *  2. Only the worker that moved a task to RUNNING moves it out of RUNNING
 *     or RUNNING_WOKEN; wakers only ever do IDLE->QUEUED (and then push) or
 *     RUNNING->RUNNING_WOKEN, both by compare-and-swap.
 *  3. A wake is never lost: if it lands while the task runs, the state
 *     records it and the worker re-queues the task when the run returns.
 *
 * Per-worker deques follow Chase and Lev's work-stealing deque in the C11
 * formulation of Lê, Pop, Cohen and Zappa Nardelli (PPoPP 2013). Grown
 * buffers are kept until the scheduler is freed, since a thief may still be
 * reading the old one.
 *
 * The next slot (Go's runnext). A task woken by the task a worker is
 * running goes to that worker's `next` slot, and runs on the same worker
 * as soon as the current turn ends: a message passed from actor to actor
 * (PingPong, a token ring) then costs no cross-CPU hand-off and no futex
 * wake. The slot is the owner's alone (never stolen); a task displaced
 * from it goes to the deque, where thieves find it. Waking into the slot
 * signals nobody, so the task waits at most for the rest of the waking
 * turn (bounded by the batch and the fuel slice). Fairness: after
 * NEXT_STREAK tasks in a row taken from the slot, a worker serves the
 * oldest task of its deque first, so two actors passing a message back
 * and forth cannot starve the others queued there.
 *
 * The recovery lane (low) is a second FIFO like the injector, for tasks
 * marked low (rts_task_set_low). A worker takes from it when its other
 * sources found nothing, and also first thing on every RECOVERY_EVERY-th
 * pick: while other tasks are ready, at most one pick in RECOVERY_EVERY
 * goes to recovery, and recovery always makes progress.
 *
 * Sleeping: a worker that finds no work first spins (it is counted in
 * `spinning`), then increments `sleepers`, stops spinning and re-checks
 * every queue while holding `lock`, then waits on `cond`. A producer
 * pushes, then (sequentially consistent) reads `spinning` and `sleepers`
 * and signals under `lock` only if nobody spins and somebody sleeps.
 * Either the producer sees the spinner or sleeper, or the worker's
 * re-check (after its seq_cst decrement of `spinning`) sees the task: the
 * seq_cst accesses cannot both miss.
 */
#include <pthread.h>
#include <unistd.h>

#include "base/base.h"
#include "runtime/sched.h"

enum { RTS_TS_IDLE, RTS_TS_QUEUED, RTS_TS_RUNNING, RTS_TS_RUNNING_WOKEN };

/* Every this many tasks a worker looks at the injector before its own deque,
 * so tasks waiting there are not starved by a worker busy with local work. */
#define INJECTOR_CHECK_EVERY 61
/* Rounds of checking for work (each about 32 pause instructions, roughly
 * a microsecond) before a worker sleeps. */
#define SPIN_ROUNDS 10
/* One pick in this many takes from the recovery lane first. */
#define RECOVERY_EVERY 8
/* Tasks in a row a worker takes from its next slot before it serves the
 * oldest task of its own deque. */
#define NEXT_STREAK 32

typedef struct ring {
	int64_t mask;
	struct ring *older; /* retired buffers, freed with the scheduler */
	_Atomic(rts_task *) slot[];
} ring;

typedef struct deque {
	_Atomic int64_t top;
	char pad1[64 - sizeof(int64_t)];
	_Atomic int64_t bottom;
	_Atomic(ring *) buf;
	char pad2[64 - sizeof(int64_t) - sizeof(void *)];
} deque;

typedef struct worker {
	rts_sched *sched;
	int index;
	pthread_t thread;
	deque dq;
	rts_task *next; /* the next slot: owner only */
	uint32_t streak; /* tasks in a row from the next slot */
	uint32_t rng;
	uint64_t ticks;
	/* written by this worker alone (th_own_add), read by anyone */
	_Atomic uint64_t runs, steals, sleeps, low_runs;
	_Atomic uint64_t count[RTS_NCOUNTERS];
} worker;

/* A FIFO of tasks linked through rts_task.next, under rts_sched.lock. */
typedef struct fifo {
	rts_task *head, *tail;
	_Atomic int64_t len;
} fifo;

struct rts_sched {
	int nworkers;
	int nstarted; /* threads running, joined by rts_sched_free */
	worker *workers;
	pthread_mutex_t lock; /* guards the two FIFOs and sleeping */
	pthread_cond_t cond;
	fifo inj;             /* the injector                      */
	fifo low;             /* the recovery lane                 */
	_Atomic int sleepers;
	_Atomic int spinning; /* workers looking for work before sleeping */
	_Atomic bool stopping;
	_Atomic uint64_t count_other[RTS_NCOUNTERS]; /* rts_count off the pool */
};

static _Thread_local worker *current_worker;

/* ---- Chase-Lev deque ---------------------------------------------------- */

static ring *ring_new(int64_t cap)
{
	ring *r = th_calloc(1, sizeof *r + (size_t)cap * sizeof(r->slot[0]));
	if (r)
		r->mask = cap - 1;
	return r;
}

static int deque_init(deque *d)
{
	ring *r = ring_new(256);
	if (!r)
		return TH_ENOMEM;
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	atomic_init(&d->buf, r);
	return 0;
}

static void deque_release(deque *d)
{
	ring *r = atomic_load(&d->buf);
	while (r) {
		ring *older = r->older;
		th_free(r);
		r = older;
	}
}

/* Owner only. Returns TH_ENOMEM if the deque was full and could not grow. */
static int deque_push(deque *d, rts_task *t)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t top = atomic_load_explicit(&d->top, memory_order_acquire);
	ring *r = atomic_load_explicit(&d->buf, memory_order_relaxed);

	if (b - top > r->mask) {
		ring *bigger = ring_new(2 * (r->mask + 1));
		if (!bigger)
			return TH_ENOMEM;
		for (int64_t i = top; i < b; i++)
			atomic_store_explicit(&bigger->slot[i & bigger->mask],
				atomic_load_explicit(&r->slot[i & r->mask],
						     memory_order_relaxed),
				memory_order_relaxed);
		bigger->older = r;
		atomic_store_explicit(&d->buf, bigger, memory_order_release);
		r = bigger;
	}
	atomic_store_explicit(&r->slot[b & r->mask], t, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
	return 0;
}

/* Owner only: newest task, or NULL. */
static rts_task *deque_take(deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	ring *r = atomic_load_explicit(&d->buf, memory_order_relaxed);
	rts_task *t = NULL;

	atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	int64_t top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (top <= b) {
		t = atomic_load_explicit(&r->slot[b & r->mask],
					 memory_order_relaxed);
		if (top == b) {
			/* Last task: race the thieves for it. */
			if (!atomic_compare_exchange_strong_explicit(
				    &d->top, &top, top + 1,
				    memory_order_seq_cst, memory_order_relaxed))
				t = NULL;
			atomic_store_explicit(&d->bottom, b + 1,
					      memory_order_relaxed);
		}
	} else {
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
	}
	return t;
}

/* Any thread: oldest task, or NULL (empty, or lost a race). */
static rts_task *deque_steal(deque *d)
{
	int64_t top = atomic_load_explicit(&d->top, memory_order_acquire);
	atomic_thread_fence(memory_order_seq_cst);
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	if (top >= b)
		return NULL;
	ring *r = atomic_load_explicit(&d->buf, memory_order_acquire);
	rts_task *t = atomic_load_explicit(&r->slot[top & r->mask],
					   memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&d->top, &top, top + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return NULL;
	return t;
}

static bool deque_maybe_nonempty(deque *d)
{
	return atomic_load(&d->bottom) > atomic_load(&d->top);
}

/* ---- Injector and recovery lane (shared FIFOs) --------------------------- */

static void injector_push(rts_sched *s, fifo *q, rts_task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&s->lock);
	if (q->tail)
		q->tail->next = t;
	else
		q->head = t;
	q->tail = t;
	atomic_fetch_add(&q->len, 1);
	if (atomic_load(&s->sleepers) > 0)
		pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static rts_task *injector_pop(rts_sched *s, fifo *q)
{
	rts_task *t;
	if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&s->lock);
	t = q->head;
	if (t) {
		q->head = t->next;
		if (!q->head)
			q->tail = NULL;
		atomic_fetch_sub(&q->len, 1);
	}
	pthread_mutex_unlock(&s->lock);
	return t;
}

/* ---- Waking and running ------------------------------------------------ */

/* After making a task visible in a deque: wake a sleeper, unless a
 * worker is spinning (it will find the task) or none sleeps. */
static void wake_one(rts_sched *s)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&s->spinning) == 0 && atomic_load(&s->sleepers) > 0) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

/* How a queued task is placed: FAIR at the back of the shared injector
 * (a yield), LOCAL in the worker's deque, NEXT in its next slot (woken
 * by the running task). Off the pool, every task goes to the injector. */
enum { ENQ_FAIR, ENQ_LOCAL, ENQ_NEXT };

static void enqueue(rts_sched *s, rts_task *t, int how)
{
	worker *w = current_worker;
	if (atomic_load_explicit(&t->low, memory_order_relaxed)) {
		injector_push(s, &s->low, t);
		return;
	}
	if (how == ENQ_FAIR || !w || w->sched != s) {
		injector_push(s, &s->inj, t);
		return;
	}
	if (how == ENQ_NEXT) {
		rts_task *old = w->next;
		w->next = t;
		if (!old)
			return;
		t = old; /* displaced: thieves may take it from the deque */
	}
	if (deque_push(&w->dq, t) != 0) {
		injector_push(s, &s->inj, t);
		return;
	}
	wake_one(s);
}

void rts_task_init(rts_task *t, rts_run_fn run)
{
	atomic_init(&t->state, RTS_TS_IDLE);
	t->next = NULL;
	t->run = run;
	atomic_init(&t->low, false);
}

void rts_task_set_low(rts_task *t, bool low)
{
	atomic_store_explicit(&t->low, low, memory_order_relaxed);
}

void rts_wake(rts_sched *s, rts_task *t)
{
	int st = atomic_load(&t->state);
	for (;;) {
		switch (st) {
		case RTS_TS_IDLE:
			if (atomic_compare_exchange_weak(&t->state, &st,
							 RTS_TS_QUEUED)) {
				enqueue(s, t, ENQ_NEXT);
				return;
			}
			break;
		case RTS_TS_RUNNING:
			if (atomic_compare_exchange_weak(&t->state, &st,
							 RTS_TS_RUNNING_WOKEN))
				return;
			break;
		default: /* QUEUED or RUNNING_WOKEN: the wake is already noted */
			return;
		}
	}
}

static void run_task(worker *w, rts_task *t)
{
	rts_sched *s = w->sched;
	rts_result r;

	again:
	atomic_store(&t->state, RTS_TS_RUNNING);
	r = t->run(t, w->index);
	th_own_add(&w->runs, 1);

	if (r == RTS_YIELD) {
		/* Fairness is for others: with none waiting, run it again
		 * rather than through the shared queue (a push that would
		 * wake a sleeping worker to take it from this one). */
		if (!rts_others_waiting(s))
			goto again;
		atomic_store(&t->state, RTS_TS_QUEUED);
		enqueue(s, t, ENQ_FAIR);
		return;
	}
	int st = RTS_TS_RUNNING;
	if (atomic_compare_exchange_strong(&t->state, &st, RTS_TS_IDLE))
		return;
	/* Woken while running: it has new work. Run it again at once if
	 * nothing else is waiting, else queue it behind the others. */
	if (atomic_load(&s->inj.len) == 0 && !w->next &&
	    !deque_maybe_nonempty(&w->dq))
		goto again;
	atomic_store(&t->state, RTS_TS_QUEUED);
	enqueue(s, t, ENQ_LOCAL);
}

void rts_run_here(rts_sched *s, rts_task *t)
{
	int st = RTS_TS_IDLE;
	if (current_worker ||
	    !atomic_compare_exchange_strong(&t->state, &st, RTS_TS_RUNNING)) {
		rts_wake(s, t);
		return;
	}
	/* RUNNING now, by this thread: as run_task, except that more work
	 * goes to the pool rather than keeping the caller. */
	rts_result r = t->run(t, -1);
	st = RTS_TS_RUNNING;
	if (r != RTS_YIELD &&
	    atomic_compare_exchange_strong(&t->state, &st, RTS_TS_IDLE))
		return;
	atomic_store(&t->state, RTS_TS_QUEUED);
	enqueue(s, t, ENQ_FAIR); /* not a worker: the shared queue */
}

static rts_task *steal_any(worker *w)
{
	rts_sched *s = w->sched;
	int n = s->nworkers;
	if (n < 2)
		return NULL;
	w->rng = w->rng * 1103515245u + 12345u;
	int start = (int)((w->rng >> 16) % (uint32_t)n);
	for (int i = 0; i < n; i++) {
		worker *v = &s->workers[(start + i) % n];
		if (v == w)
			continue;
		rts_task *t = deque_steal(&v->dq);
		if (t) {
			th_own_add(&w->steals, 1);
			return t;
		}
	}
	return NULL;
}

static bool any_work(rts_sched *s)
{
	if (atomic_load(&s->inj.len) > 0 || atomic_load(&s->low.len) > 0)
		return true;
	for (int i = 0; i < s->nworkers; i++)
		if (deque_maybe_nonempty(&s->workers[i].dq))
			return true;
	return false;
}

bool rts_others_waiting(rts_sched *s)
{
	worker *w = current_worker;
	if (!w || w->sched != s)
		return true;
	return w->next || deque_maybe_nonempty(&w->dq) ||
	       atomic_load_explicit(&s->inj.len, memory_order_relaxed) > 0 ||
	       atomic_load_explicit(&s->low.len, memory_order_relaxed) > 0;
}

/* Sleep until there may be work. Returns false when the pool stops.
 * A worker first spins for a few microseconds: a producer that finds no
 * sleeper then needs no futex wake, and the worker no context switch,
 * which is most of the cost of a message that arrives just after the
 * previous one was handled. */
static bool wait_for_work(worker *w)
{
	rts_sched *s = w->sched;
	bool go_on = true;

	atomic_fetch_add(&s->spinning, 1);
	for (int i = 0; i < SPIN_ROUNDS; i++) {
		if (any_work(s)) {
			atomic_fetch_sub(&s->spinning, 1);
			return true;
		}
		for (int k = 0; k < 16; k++)
			th_cpu_relax();
	}
	pthread_mutex_lock(&s->lock);
	atomic_fetch_add(&s->sleepers, 1);
	atomic_fetch_sub(&s->spinning, 1);
	while (!any_work(s)) {
		if (atomic_load(&s->stopping)) {
			go_on = false;
			break;
		}
		th_own_add(&w->sleeps, 1);
		pthread_cond_wait(&s->cond, &s->lock);
	}
	atomic_fetch_sub(&s->sleepers, 1);
	pthread_mutex_unlock(&s->lock);
	return go_on;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	rts_sched *s = w->sched;
	current_worker = w;
	char name[16]; /* for top -H, perf */
	snprintf(name, sizeof name, "theater-w%d", w->index);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		rts_task *t = NULL;
		bool low = false;
		if (++w->ticks % RECOVERY_EVERY == 0)
			low = (t = injector_pop(s, &s->low)) != NULL;
		if (!t && w->ticks % INJECTOR_CHECK_EVERY == 0)
			t = injector_pop(s, &s->inj);
		if (!t && w->next) {
			if (w->streak >= NEXT_STREAK) {
				w->streak = 0;
				t = deque_steal(&w->dq); /* its oldest */
			}
			if (!t) {
				t = w->next;
				w->next = NULL;
				w->streak++;
			}
		} else {
			w->streak = 0;
		}
		if (!t)
			t = deque_take(&w->dq);
		if (!t)
			t = injector_pop(s, &s->inj);
		if (!t)
			t = steal_any(w);
		if (!t)
			low = (t = injector_pop(s, &s->low)) != NULL;
		if (t) {
			if (low)
				th_own_add(&w->low_runs, 1);
			run_task(w, t);
			continue;
		}
		if (!wait_for_work(w))
			break;
	}
	current_worker = NULL;
	return NULL;
}

/* ---- Life cycle ------------------------------------------------------- */

int rts_sched_new(int nworkers, rts_sched **out, th_err *err)
{
	rts_sched *s;
	int rc;

	*out = NULL;
	if (nworkers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nworkers = n > 0 ? (int)n : 1;
	}
	s = th_calloc(1, sizeof *s);
	if (!s)
		return th_err_set(err, TH_ENOMEM, "scheduler: out of memory");
	s->workers = th_calloc((size_t)nworkers, sizeof *s->workers);
	if (!s->workers) {
		th_free(s);
		return th_err_set(err, TH_ENOMEM, "scheduler: out of memory");
	}
	s->nworkers = nworkers;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	for (int i = 0; i < nworkers; i++) {
		worker *w = &s->workers[i];
		w->sched = s;
		w->index = i;
		w->rng = 2654435761u * (uint32_t)(i + 1);
		if (deque_init(&w->dq) != 0) {
			rc = th_err_set(err, TH_ENOMEM, "scheduler: out of memory");
			goto fail;
		}
	}
	for (; s->nstarted < nworkers; s->nstarted++) {
		worker *w = &s->workers[s->nstarted];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			rc = th_err_set(err, TH_ENOMEM,
					"scheduler: cannot start worker thread %d",
					s->nstarted);
			goto fail;
		}
	}
	*out = s;
	return 0;

fail:
	rts_sched_free(s);
	return rc;
}

void rts_sched_free(rts_sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->stopping, true);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->nstarted; i++)
		pthread_join(s->workers[i].thread, NULL);
	for (int i = 0; i < s->nworkers; i++)
		deque_release(&s->workers[i].dq);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	th_free(s->workers);
	th_free(s);
}

int rts_sched_workers(const rts_sched *s)
{
	return s->nworkers;
}

void rts_count(rts_sched *s, int k, uint64_t n)
{
	worker *w = current_worker;
	if (w && w->sched == s)
		th_own_add(&w->count[k], n);
	else
		atomic_fetch_add(&s->count_other[k], n);
}

uint64_t rts_count_sum(const rts_sched *s, int k)
{
	uint64_t n = atomic_load(&s->count_other[k]);
	for (int i = 0; i < s->nworkers; i++)
		n += atomic_load(&s->workers[i].count[k]);
	return n;
}

int rts_current_worker(void)
{
	return current_worker ? current_worker->index : -1;
}

void rts_sched_stats(const rts_sched *s, rts_stats *out)
{
	*out = (rts_stats){ 0 };
	for (int i = 0; i < s->nworkers; i++) {
		worker *w = &s->workers[i];
		out->runs += atomic_load(&w->runs);
		out->steals += atomic_load(&w->steals);
		out->sleeps += atomic_load(&w->sleeps);
		out->low_runs += atomic_load(&w->low_runs);
	}
}
