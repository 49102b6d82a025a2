/*
 * record.c - appending the runtime's events to the Event Chain, and the
 * runtime-wide counters that external waiters watch.
 *
 * Two costs of recording that do not depend on the chain are kept down:
 *
 * Encoder buffers. Every event is CBOR built in a heap buffer that the
 * chain copies. rtr_enc_init starts an encoder on a buffer from a small
 * per-thread pool, and rtr_event_enc (or rtr_enc_release) gives it back,
 * so a message costs no malloc, realloc and free per event. Buffers above
 * POOL_KEEP bytes are freed rather than kept; the pool is freed when its
 * thread ends (a pthread key destructor).
 *
 * Batches. The events an actor's turn records in its own chain while an
 * export call runs (export.call, its host calls, export.result) are kept
 * in a per-thread batch and appended with one thx_append_batch: one lock
 * and one durability wait instead of one per event. rtr_batch_add
 * queues (only the thread running the actor's turn may, see rta_record);
 * rtr_batch_flush appends. The batch is flushed when the call's result is
 * recorded (before anything is acknowledged or answered), before a
 * failure is carried out, and at the end of every turn, so no event waits
 * beyond the turn that made it.
 */
#include <pthread.h>

#include "base/base.h"
#include "runtime/rt.h"

/* ---- encoder buffers ------------------------------------------------------ */

#define POOL_N 16
#define POOL_KEEP 4096

typedef struct pool {
	uint8_t *buf[POOL_N];
	size_t cap[POOL_N];
	int n;
	bool keyed;
} pool;

static _Thread_local pool tl_pool;
static pthread_key_t pool_key;
static bool pool_key_ok; /* key 0 is a valid key: this says whether we have one */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_free(void *p)
{
	pool *pl = p;
	while (pl->n > 0) {
		pl->n--;
		th_free(pl->buf[pl->n]);
	}
}

static void pool_key_make(void)
{
	/* without a key, buffers are never kept (nothing would free them) */
	pool_key_ok = pthread_key_create(&pool_key, pool_free) == 0;
}

void rtr_enc_init(th_cbor_enc *e)
{
	pool *pl = &tl_pool;
	th_cbor_enc_init(e, NULL, 0);
	if (pl->n > 0) {
		pl->n--;
		e->buf = pl->buf[pl->n];
		e->cap = pl->cap[pl->n];
	}
}

void rtr_buf_recycle(uint8_t *buf, size_t cap)
{
	pool *pl = &tl_pool;
	if (!buf)
		return;
	if (cap > POOL_KEEP || pl->n == POOL_N) {
		th_free(buf);
		return;
	}
	if (!pl->keyed) {
		pthread_once(&pool_once, pool_key_make);
		if (!pool_key_ok || pthread_setspecific(pool_key, pl) != 0) {
			th_free(buf);
			return;
		}
		pl->keyed = true;
	}
	pl->buf[pl->n] = buf;
	pl->cap[pl->n] = cap;
	pl->n++;
}

void rtr_enc_release(th_cbor_enc *e)
{
	if (!e->fixed)
		rtr_buf_recycle(e->buf, e->cap);
	th_cbor_enc_init(e, NULL, 0);
}

/* ---- batches ------------------------------------------------------------ */

#define BATCH_MAX 16

typedef struct batch {
	thx_chain *chain;
	const char *actor;
	int err;    /* an append failed since the last rtr_batch_flush */
	uint32_t n;
	thx_event_in ev[BATCH_MAX];
	th_cbor_enc enc[BATCH_MAX];
	char type[BATCH_MAX][THX_NAME_MAX + 1]; /* copies of dynamic types */
} batch;

static _Thread_local batch tl_batch;

int rtr_batch_flush(void)
{
	batch *b = &tl_batch;
	th_err err;
	int rc = b->err;
	b->err = 0;
	if (b->n == 0)
		return rc;
	th_err_clear(&err);
	int arc = thx_append_batch(b->chain, b->ev, b->n, NULL, NULL, &err);
	for (uint32_t i = 0; i < b->n; i++)
		rtr_enc_release(&b->enc[i]);
	b->n = 0;
	b->chain = NULL;
	return rc ? rc : arc;
}

int rtr_batch_add(thx_chain *c, const char *actor, const char *type,
		  bool type_static, th_cbor_enc *e)
{
	batch *b = &tl_batch;
	size_t tlen = type_static ? 0 : strlen(type);
	int rc = 0;
	if (e->err) {
		rc = e->err;
		rtr_enc_release(e);
		return rc;
	}
	if (b->n == BATCH_MAX || (b->n && b->chain != c) || tlen > THX_NAME_MAX) {
		rc = rtr_batch_flush();
		b->err = rc; /* also for the flush that owns the acks */
	}
	if (tlen > THX_NAME_MAX) /* the chain refuses it, with its error */
		return rtr_event_enc_dyn(c, actor, type, e);
	if (!type_static) {
		memcpy(b->type[b->n], type, tlen + 1);
		type = b->type[b->n];
	}
	b->chain = c;
	b->actor = actor;
	b->enc[b->n] = *e; /* the batch owns the buffer now */
	b->ev[b->n] = (thx_event_in){ .actor = actor, .type = type,
				      .type_static = type_static, .actor_static = true,
				      .data = e->buf, .len = e->len };
	b->n++;
	th_cbor_enc_init(e, NULL, 0);
	return rc;
}

int rtr_event(thx_chain *c, const char *actor, const char *type,
	      const void *data, size_t len, const char *desc, th_err *err)
{
	thx_event_in ev = {
		.actor = actor,
		.type = type,
		.data = data,
		.len = len,
		.description = desc,
		.type_static = true,
	};
	return thx_append(c, &ev, NULL, NULL, err);
}

static int append_enc(thx_chain *c, const char *actor, const char *type,
		      bool type_static, th_cbor_enc *e, const char *desc)
{
	th_err err;
	int rc = e->err;
	th_err_clear(&err);
	if (!rc) {
		thx_event_in ev = { .actor = actor, .type = type, .data = e->buf,
				    .len = e->len, .description = desc,
				    .type_static = type_static, .actor_static = true };
		rc = thx_append(c, &ev, NULL, NULL, &err);
	}
	rtr_enc_release(e);
	return rc;
}

int rtr_event_enc(thx_chain *c, const char *actor, const char *type,
		  th_cbor_enc *e, const char *desc)
{
	return append_enc(c, actor, type, true, e, desc);
}

int rtr_event_enc_dyn(thx_chain *c, const char *actor, const char *type,
		      th_cbor_enc *e)
{
	return append_enc(c, actor, type, false, e, NULL);
}

void rtr_runtime_event(thr_runtime *rt, const char *type, const char *id,
		       const char *detail)
{
	th_cbor_enc e;
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 2);
	th_cbor_put_cstr(&e, id ? id : "");
	th_cbor_put_cstr(&e, detail ? detail : "");
	rtr_event_enc(rt->rchain, THX_RUNTIME_CHAIN, type, &e, NULL);
}

void rtr_notify(thr_runtime *rt)
{
	pthread_mutex_lock(&rt->wait_lock);
	pthread_cond_broadcast(&rt->wait_cond);
	pthread_mutex_unlock(&rt->wait_lock);
}

void rtr_busy_add(thr_runtime *rt, int64_t n)
{
	if (atomic_fetch_add(&rt->busy, n) + n == 0)
		rtr_notify(rt);
}
