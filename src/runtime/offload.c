/*
 * offload.c - a small pool of threads for blocking work (file I/O for the
 * filesystem handler, Store reads and writes, spawning from a manifest on
 * disk), so that actor workers never block. Jobs run in FIFO order; a job
 * typically ends by completing an actor's suspended host call.
 */
#include "base/base.h"
#include "runtime/rt.h"

typedef struct job {
	struct job *next;
	rto_fn fn;
	void *ctx;
} job;

struct rto_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	job *head, *tail;
	bool stop;
	int n;
	pthread_t th[];
};

static void *main_loop(void *arg)
{
	rto_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		job *j = p->head;
		if (!j) {
			if (p->stop)
				break;
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->fn(j->ctx);
		th_free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int rto_new(int nthreads, rto_pool **out, th_err *err)
{
	rto_pool *p;
	if (nthreads <= 0)
		nthreads = 2;
	p = th_calloc(1, sizeof *p + (size_t)nthreads * sizeof(pthread_t));
	*out = NULL;
	if (!p)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (; p->n < nthreads; p->n++)
		if (pthread_create(&p->th[p->n], NULL, main_loop, p) != 0) {
			rto_free(p);
			return th_err_set(err, TH_ENOMEM,
					  "cannot start blocking-work thread");
		}
	*out = p;
	return 0;
}

void rto_free(rto_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	th_free(p);
}

int rto_run(rto_pool *p, rto_fn fn, void *ctx)
{
	job *j = th_malloc(sizeof *j);
	if (!j)
		return TH_ENOMEM;
	j->next = NULL;
	j->fn = fn;
	j->ctx = ctx;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}
