/*
 * record.c - appending the runtime's events to the Event Chain, and the
 * runtime-wide counters that external waiters watch.
 */
#include "base/base.h"
#include "runtime/rt.h"

int rtr_event(thx_chain *c, const char *actor, const char *type,
	      const void *data, size_t len, const char *desc, th_err *err)
{
	thx_event_in ev = {
		.actor = actor,
		.type = type,
		.data = data,
		.len = len,
		.description = desc,
	};
	return thx_append(c, &ev, NULL, NULL, err);
}

int rtr_event_enc(thx_chain *c, const char *actor, const char *type,
		  th_cbor_enc *e, const char *desc)
{
	th_err err = { 0 };
	int rc = e->err;
	if (!rc)
		rc = rtr_event(c, actor, type, e->buf, e->len, desc, &err);
	th_cbor_enc_release(e);
	return rc;
}

void rtr_runtime_event(thr_runtime *rt, const char *type, const char *id,
		       const char *detail)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
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
