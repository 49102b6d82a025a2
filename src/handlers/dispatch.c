/*
 * dispatch.c - the one path every host call takes: permission check,
 * the function, recording (see handlers.h), and moving blocking
 * functions to the runtime's pool.
 */
#include "base/base.h"
#include "handlers/handlers.h"
#include "runtime/value.h"

static const rth_fn *const tables[] = {
	rth_runtime_fns, rth_message_fns, rth_supervisor_fns, rth_store_fns,
	rth_timing_fns, rth_random_fns, rth_env_fns, rth_fs_fns,
};

/* ---- results ------------------------------------------------------------ */

rth_ret rth_oom(rth_call *c)
{
	snprintf(c->msg, sizeof c->msg, "out of memory in %s", c->f->name);
	return RTH_TRAP;
}

static rth_ret result_case(rth_call *c, unsigned disc, thc_val *payload)
{
	if (thc_val_case(THC_RESULT, disc, payload, c->result)) {
		thc_val_release(payload);
		return rth_oom(c);
	}
	return RTH_OK;
}

rth_ret rth_ok_unit(rth_call *c)
{
	return result_case(c, 0, NULL);
}

rth_ret rth_ok_val(rth_call *c, thc_val *v)
{
	return result_case(c, 0, v);
}

rth_ret rth_ok_bytes(rth_call *c, const void *p, size_t n)
{
	thc_val v = { 0 };
	if (thc_val_bytes(p, n, &v))
		return rth_oom(c);
	return result_case(c, 0, &v);
}

rth_ret rth_ok_str(rth_call *c, const char *s, size_t n)
{
	thc_val v = { 0 };
	if (thc_val_string(s, n, &v))
		return rth_oom(c);
	return result_case(c, 0, &v);
}

static rth_ret err_text(rth_call *c, const char *text)
{
	thc_val v = { 0 };
	if (thc_val_string(text, strlen(text), &v))
		return rth_oom(c);
	return result_case(c, 1, &v);
}

rth_ret rth_err(rth_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof c->msg, fmt, ap);
	va_end(ap);
	return err_text(c, c->msg);
}

/* The answer a denied call gets, by the function's shape. */
static rth_ret deny_answer(rth_call *c)
{
	switch (c->f->deny) {
	case RTH_DENY_NONE:
		thc_val_case(THC_OPTION, 0, NULL, c->result);
		return RTH_DENIED;
	case RTH_DENY_FALSE:
		*c->result = thc_val_bool(false);
		return RTH_DENIED;
	case RTH_DENY_EMPTY:
		if (thc_val_agg(THC_LIST, 0, c->result))
			return rth_oom(c);
		return RTH_DENIED;
	case RTH_DENY_UNIT:
		return RTH_DENIED;
	case RTH_DENY_TRAP:
		return RTH_TRAP;
	default: {
		char text[TH_ERR_MSG_MAX + 32];
		snprintf(text, sizeof text, "permission denied: %s", c->msg);
		return err_text(c, text) == RTH_OK ? RTH_DENIED : RTH_TRAP;
	}
	}
}

rth_ret rth_denied(rth_call *c)
{
	return deny_answer(c);
}

rth_ret rth_deny(rth_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof c->msg, fmt, ap);
	va_end(ap);
	return deny_answer(c);
}

/* ---- arguments ------------------------------------------------------------- */

const char *rth_str(const thc_val *v, size_t *len)
{
	if (v->kind != THC_STRING)
		return NULL;
	*len = v->of.str.len;
	return v->of.str.ptr;
}

const uint8_t *rth_bytes(const thc_val *v, size_t *len, uint8_t **tmp)
{
	*tmp = NULL;
	if (v->kind == THC_BYTES) {
		*len = v->of.bytes.len;
		return v->of.bytes.ptr ? v->of.bytes.ptr : (const uint8_t *)"";
	}
	if (v->kind != THC_LIST)
		return NULL;
	*tmp = th_malloc(v->of.agg.n ? v->of.agg.n : 1);
	if (!*tmp)
		return NULL;
	for (uint32_t i = 0; i < v->of.agg.n; i++)
		(*tmp)[i] = (uint8_t)v->of.agg.items[i].of.u;
	*len = v->of.agg.n;
	return *tmp;
}

bool rth_cstr(const thc_val *v, char *buf, size_t cap)
{
	size_t n;
	const char *s = rth_str(v, &n);
	if (!s || n >= cap || memchr(s, 0, n))
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	return true;
}

rth_ret rth_suspend(rth_call *c, uint64_t *token)
{
	*token = rta_suspend(c->a);
	return RTH_PENDING;
}

/* ---- recording ------------------------------------------------------------- */

static void put_args(th_cbor_enc *e, const thc_val *args, uint32_t nargs)
{
	th_cbor_put_array(e, nargs);
	for (uint32_t i = 0; i < nargs; i++)
		rtv_encode(e, &args[i]);
}

void rth_record_denied(rta_actor *a, const rth_fn *f, const thc_val *args,
		       uint32_t nargs, const char *why)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 3);
	th_cbor_put_cstr(&e, f->event + 5); /* without "host." */
	th_cbor_put_cstr(&e, why);
	put_args(&e, args, nargs);
	rta_record(a, "permission.denied", &e, why);
	atomic_fetch_add(&a->rt->n_denied, 1);
}

static void record_call(rta_actor *a, const rth_fn *f, const thc_val *args,
			uint32_t nargs, const thc_val *result, const char *trap)
{
	th_cbor_enc e;
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 2);
	put_args(&e, args, nargs);
	if (trap) {
		th_cbor_put_map(&e, 1);
		th_cbor_put_cstr(&e, "trap");
		th_cbor_put_cstr(&e, trap);
	} else if (result && result->kind) {
		rtv_encode(&e, result);
	} else {
		th_cbor_put_null(&e);
	}
	rta_record(a, f->event, &e, NULL);
}

/* ---- blocking functions ------------------------------------------------------ */

typedef struct job {
	rta_actor *a;
	const rth_fn *f;
	uint64_t token;
	thc_val *args;
	uint32_t nargs;
} job;

static void job_free(job *j)
{
	for (uint32_t i = 0; i < j->nargs; i++)
		thc_val_release(&j->args[i]);
	th_free(j->args);
	th_free(j);
}

static void job_run(void *ctx)
{
	job *j = ctx;
	thc_val result = { 0 };
	rth_call c = { .a = j->a, .f = j->f, .args = j->args,
		       .nargs = j->nargs, .result = &result };
	rth_ret r = j->f->blocking(&c);
	if (r == RTH_DENIED)
		rth_record_denied(j->a, j->f, j->args, j->nargs, c.msg);
	if (r == RTH_TRAP)
		rta_complete_trap(j->a, j->token, c.msg);
	else if (!rta_complete(j->a, j->token, result.kind ? &result : NULL))
		thc_val_release(&result); /* the call was abandoned */
	job_free(j);
}

static rth_ret offload(rth_call *c)
{
	job *j = th_calloc(1, sizeof *j);
	if (!j)
		return rth_oom(c);
	j->a = c->a;
	j->f = c->f;
	j->args = th_calloc(c->nargs ? c->nargs : 1, sizeof *j->args);
	if (!j->args) {
		th_free(j);
		return rth_oom(c);
	}
	for (; j->nargs < c->nargs; j->nargs++)
		if (thc_val_copy(&c->args[j->nargs], &j->args[j->nargs])) {
			job_free(j);
			return rth_oom(c);
		}
	j->token = rta_suspend(c->a);
	if (rto_run(c->a->rt->io, job_run, j)) {
		job_free(j);
		pthread_mutex_lock(&c->a->lock);
		c->a->pend.armed = false;
		pthread_mutex_unlock(&c->a->lock);
		return rth_oom(c);
	}
	return RTH_PENDING;
}

/* ---- the dispatcher ----------------------------------------------------------- */

static thc_hostret dispatch(thc_hostcall *hc, void *ctx, const thc_val *args,
			    uint32_t nargs, thc_val *result)
{
	const rth_fn *f = ctx;
	rta_actor *a = rta_of_call(hc);
	rth_call c; /* fields set one by one: an initializer would clear msg */
	rth_ret r;
	bool denied = false;

	c.a = a;
	c.f = f;
	c.args = args;
	c.nargs = nargs;
	c.result = result;
	c.msg[0] = 0;

	rts_count(a->rt->sched, RTS_C_HOST_CALLS, 1);
	rta_call_flush(a); /* the handler's call precedes its host calls */
	/* The runtime interface is every actor's own: always available. */
	if (f->kind != THM_H_RUNTIME && !a->perm.enabled[f->kind]) {
		snprintf(c.msg, sizeof c.msg, "%s requires a \"%s\" handler, which %s",
			 f->name, thm_handler_name((thm_handler_kind)f->kind),
			 a->spec->m->requested.enabled[f->kind]
				 ? "the parent's permissions do not allow"
				 : "the manifest does not configure");
		r = deny_answer(&c);
		denied = true;
	} else if (f->blocking) {
		r = offload(&c);
	} else {
		r = f->impl(&c);
	}

	switch (r) {
	case RTH_PENDING: {
		th_cbor_enc e;
		th_cbor_enc_init(&e, NULL, 0);
		put_args(&e, args, nargs);
		if (e.err) {
			th_cbor_enc_release(&e);
			return thc_hostcall_trap(hc, "out of memory recording a call");
		}
		a->pend.args = e.buf;
		a->pend.args_len = e.len;
		a->pend.event = f->event;
		return THC_HOST_PENDING;
	}
	case RTH_TRAP:
		if (denied)
			rth_record_denied(a, f, args, nargs, c.msg);
		record_call(a, f, args, nargs, NULL, c.msg);
		return thc_hostcall_trap(hc, c.msg);
	case RTH_DENIED:
		rth_record_denied(a, f, args, nargs, c.msg);
		record_call(a, f, args, nargs, result, NULL);
		return THC_HOST_OK;
	default:
		record_call(a, f, args, nargs, result, NULL);
		return THC_HOST_OK;
	}
}

int rth_imports(thc_host_import **out, size_t *n, th_err *err)
{
	size_t k = 0;
	thc_host_import *v;
	for (size_t t = 0; t < TH_ARRAY_LEN(tables); t++)
		for (const rth_fn *f = tables[t]; f->name; f++)
			k++;
	v = th_calloc(k, sizeof *v);
	if (!v)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	k = 0;
	for (size_t t = 0; t < TH_ARRAY_LEN(tables); t++)
		for (const rth_fn *f = tables[t]; f->name; f++) {
			v[k].iface = f->iface;
			v[k].name = f->name;
			v[k].fn = dispatch;
			v[k].ctx = (void *)f;
			k++;
		}
	*out = v;
	*n = k;
	return 0;
}

void rth_imports_free(thc_host_import *imports)
{
	th_free(imports);
}
