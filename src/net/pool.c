/*
 * pool.c - the worker pool that runs commands off the event-loop thread.
 *
 * Commands may block (a store put that fsyncs, an actor request waiting
 * for its reply), so the pool is elastic: when a task is queued and no
 * thread is idle, a new thread starts (up to max). Threads beyond min exit
 * after IDLE_NS without work. Tasks are intrusive (thn_task lives inside
 * the job), so submitting never allocates and cannot fail.
 */
#include <errno.h>
#include <time.h>

#include "net/net.h"

#define IDLE_NS (10ull * 1000 * 1000 * 1000)

struct thn_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t done_cv;
	thn_task *head, *tail;
	size_t queued;
	unsigned threads, idle, min, max;
	bool stopping;
};

static void *worker(void *arg)
{
	thn_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stopping) {
			p->idle++;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(IDLE_NS / 1000000000ull);
			int rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
			p->idle--;
			if (rc == ETIMEDOUT && !p->head && p->threads > p->min)
				goto leave;
		}
		if (!p->head)
			break; /* stopping, nothing left */
		thn_task *t = p->head;
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		t->fn(t);
		pthread_mutex_lock(&p->mu);
	}
leave:
	p->threads--;
	pthread_cond_broadcast(&p->done_cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Under mu. Threads are detached; thn_pool_free waits for the count. */
static int spawn(thn_pool *p)
{
	pthread_t tid;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	int rc = pthread_create(&tid, &at, worker, p);
	pthread_attr_destroy(&at);
	if (rc == 0)
		p->threads++;
	return rc;
}

int thn_pool_new(unsigned min, unsigned max, thn_pool **out, th_err *err)
{
	if (min == 0)
		min = 1;
	if (max < min)
		max = min;
	thn_pool *p = th_calloc(1, sizeof *p);
	if (!p)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	p->min = min;
	p->max = max;
	pthread_mutex_lock(&p->mu);
	for (unsigned i = 0; i < min; i++) {
		int rc = spawn(p);
		if (rc) {
			pthread_mutex_unlock(&p->mu);
			thn_pool_free(p);
			return th_err_set(err, TH_EIO, "cannot start a worker thread: %s",
					  strerror(rc));
		}
	}
	pthread_mutex_unlock(&p->mu);
	*out = p;
	return 0;
}

void thn_pool_submit(thn_pool *p, thn_task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	p->queued++;
	/* A thread failing to start is not fatal: the others drain the queue. */
	if (p->queued > p->idle && p->threads < p->max && !p->stopping)
		(void)spawn(p);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

unsigned thn_pool_threads(thn_pool *p)
{
	pthread_mutex_lock(&p->mu);
	unsigned n = p->threads;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void thn_pool_free(thn_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	while (p->threads > 0)
		pthread_cond_wait(&p->done_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->done_cv);
	pthread_mutex_destroy(&p->mu);
	th_free(p);
}
