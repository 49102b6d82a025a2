/*
 * h_runtime.c - theater:simple/runtime: log, get-state, shutdown,
 * message-id. Always available to an actor (the manifest's "runtime"
 * handler is implied).
 */
#include "base/base.h"
#include "handlers/handlers.h"

/* The log line itself is the recorded event's argument. */
static rth_ret fn_log(rth_call *c)
{
	size_t n;
	if (!rth_str(&c->args[0], &n))
		return rth_deny(c, "log takes a string");
	return RTH_OK;
}

static rth_ret fn_get_state(rth_call *c)
{
	uint8_t *p;
	size_t n;
	bool has;
	thc_val b = { 0 };
	if (rta_state_copy(c->a, &p, &n, &has))
		return rth_oom(c);
	if (!has)
		return thc_val_case(THC_OPTION, 0, NULL, c->result) ? rth_oom(c) : RTH_OK;
	if (thc_val_bytes(p, n, &b)) {
		th_free(p);
		return rth_oom(c);
	}
	th_free(p);
	if (thc_val_case(THC_OPTION, 1, &b, c->result)) {
		thc_val_release(&b);
		return rth_oom(c);
	}
	return RTH_OK;
}

/* The actor stops once the call in progress returns; its parent gets
 * handle-child-exit with data. */
static rth_ret fn_shutdown(rth_call *c)
{
	rta_actor *a = c->a;
	const thc_val *opt = &c->args[0];
	uint8_t *copy = NULL, *tmp = NULL;
	size_t n = 0;
	bool has = opt->kind == THC_OPTION && opt->of.var.disc == 1 &&
		   opt->of.var.payload;
	if (has) {
		const uint8_t *p = rth_bytes(opt->of.var.payload, &n, &tmp);
		if (!p)
			return rth_oom(c);
		copy = th_malloc(n ? n : 1);
		if (!copy) {
			th_free(tmp);
			return rth_oom(c);
		}
		memcpy(copy, p, n);
		th_free(tmp);
	}
	pthread_mutex_lock(&a->lock);
	th_free(a->exit_data);
	a->exit_data = copy;
	a->exit_len = n;
	a->exit_has_data = has;
	pthread_mutex_unlock(&a->lock);
	/* Counted as work in progress until the actor has stopped, so that a
	 * quiescent runtime has also told the parent (handle-child-exit). */
	rta_request_stop(a, false);
	return rth_ok_unit(c);
}

/* The id of the message whose handler is running (every export call
 * handles one message, init included). */
static rth_ret fn_message_id(rth_call *c)
{
	rta_actor *a = c->a;
	if (!a->call.active || !a->call.msg) {
		snprintf(c->msg, sizeof c->msg, "message-id called outside a handler");
		return RTH_TRAP;
	}
	*c->result = thc_val_uint(THC_U64, a->call.msg->id);
	return RTH_OK;
}

#define RT "theater:simple/runtime"
const rth_fn rth_runtime_fns[] = {
	{ RT, "log", "host." RT ".log", THM_H_RUNTIME, RTH_DENY_UNIT, fn_log, NULL },
	{ RT, "get-state", "host." RT ".get-state", THM_H_RUNTIME, RTH_DENY_NONE,
	  fn_get_state, NULL },
	{ RT, "shutdown", "host." RT ".shutdown", THM_H_RUNTIME, RTH_DENY_ERR,
	  fn_shutdown, NULL },
	{ RT, "message-id", "host." RT ".message-id", THM_H_RUNTIME, RTH_DENY_TRAP,
	  fn_message_id, NULL },
	{ 0 }
};
