/*
 * sched.h - the runtime's work-stealing scheduler (prefix rts_).
 *
 * A pool of worker threads runs tasks. A task is anything embedding an
 * rts_task (the runtime embeds one in each actor). A task is in at most one
 * run queue at a time: rts_wake() is idempotent while the task is queued or
 * running, and a wake that arrives while the task runs makes it run again
 * afterwards, so no wake-up is ever lost and no task runs on two workers at
 * once.
 *
 * Each worker owns a Chase-Lev deque. A task woken from a worker goes to
 * that worker's deque (its data is hot in that cache); a task that yields
 * after using up its slice, and tasks woken from outside the pool, go to the
 * shared FIFO injector so that every runnable task gets its turn (fairness).
 * An idle worker takes from its own deque, then the injector, then steals
 * from the others; with nothing to do it sleeps on a condition variable.
 *
 * A task marked low (rts_task_set_low: an actor recovering from a failure)
 * is queued on a third FIFO, the recovery lane: a worker takes from it
 * when it finds no other work, and as one pick in every RECOVERY_EVERY
 * (sched.c), so a burst of failures and restarts never queues ready tasks
 * behind it, and is never starved either.
 */
#ifndef TH_RUNTIME_SCHED_H
#define TH_RUNTIME_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "theater/base.h"

typedef struct rts_sched rts_sched;
typedef struct rts_task rts_task;

/* What the run function tells the scheduler when it returns. */
typedef enum rts_result {
	RTS_IDLE = 0,   /* nothing more to do until the next rts_wake       */
	RTS_YIELD = 1,  /* more to do, but let others run first            */
	RTS_PARKED = 2  /* suspended on an external event; a wake resumes  */
} rts_result;

typedef rts_result (*rts_run_fn)(rts_task *task, int worker);

struct rts_task {
	_Atomic int state;          /* RTS_TS_* in sched.c                 */
	rts_task *next;             /* injector link, owned by the queue   */
	rts_run_fn run;
	_Atomic bool low;           /* queue on the recovery lane          */
};

/* Start a pool of nworkers threads (0 = number of online CPUs). */
int rts_sched_new(int nworkers, rts_sched **out, th_err *err);
/* Stop accepting work, let the workers drain the queues, join them. */
void rts_sched_free(rts_sched *s);
int rts_sched_workers(const rts_sched *s);

void rts_task_init(rts_task *t, rts_run_fn run);
/* Make t runnable. Safe from any thread, any number of times. */
void rts_wake(rts_sched *s, rts_task *t);
/* From its next queueing on, t goes to the recovery lane (low) or the
 * normal queues. Any thread; a task already queued stays where it is. */
void rts_task_set_low(rts_task *t, bool low);
/* Run t's turn on the calling thread now, if t is idle and the caller is
 * not a worker of the pool (a thread that would only wait for that turn,
 * such as a spawner waiting for init); otherwise rts_wake(s, t). The run
 * function gets worker -1. */
void rts_run_here(rts_sched *s, rts_task *t);
/* Index of the calling worker thread, or -1 outside the pool. */
int rts_current_worker(void);
/* Whether other tasks wait for the calling worker (its next slot, its
 * deque, the shared queues); true off the pool. A running task that
 * expects more work soon may wait for it while this is false. */
bool rts_others_waiting(rts_sched *s);

/* Counters the runtime keeps for its statistics. A worker adds to its
 * own copy without an atomic read-modify-write; other threads add to a
 * shared one; rts_count_sum adds them up (a relaxed reading). */
enum { RTS_C_MESSAGES, RTS_C_HOST_CALLS, RTS_NCOUNTERS };
void rts_count(rts_sched *s, int k, uint64_t n);
uint64_t rts_count_sum(const rts_sched *s, int k);

/* Counters, for tests and metrics. */
typedef struct rts_stats {
	uint64_t runs;     /* run-function calls                 */
	uint64_t steals;   /* tasks taken from another worker    */
	uint64_t sleeps;   /* times a worker went to sleep       */
	uint64_t low_runs; /* tasks taken from the recovery lane */
} rts_stats;
void rts_sched_stats(const rts_sched *s, rts_stats *out);

#endif
