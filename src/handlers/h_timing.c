/*
 * h_timing.c - theater:simple/timing: now, sleep, deadline. Sleeping
 * suspends the actor on the runtime's timer thread; no worker waits.
 * [[handler]] timing: max_sleep_duration / min_sleep_duration (ms).
 */
#include "base/base.h"
#include "handlers/handlers.h"

static rth_ret fn_now(rth_call *c)
{
	*c->result = thc_val_uint(THC_U64, th_wall_ns() / 1000000u);
	return RTH_OK;
}

static void wake_up(rtt_timer *t, void *ctx)
{
	rta_actor *a = ctx;
	thc_val res = { 0 };
	TH_UNUSED(t);
	thc_val_case(THC_RESULT, 0, NULL, &res);
	rta_complete(a, a->timer_token, &res);
}

/* Suspend until the monotonic time `at`. */
static rth_ret sleep_until(rth_call *c, uint64_t at)
{
	rta_actor *a = c->a;
	uint64_t token = rta_suspend(a);
	a->timer_token = token;
	a->timer.fn = wake_up;
	a->timer.ctx = a;
	if (rtt_arm(a->rt->timers, &a->timer, at)) {
		rta_unsuspend(a);
		return rth_oom(c);
	}
	return RTH_PENDING;
}

static rth_ret fn_sleep(rth_call *c)
{
	const thm_timing_perms *p = &c->a->perm.timing;
	uint64_t ms = c->args[0].of.u;
	if (ms > p->max_sleep_ms)
		return rth_deny(c, "sleep of %llu ms is longer than the allowed %llu ms "
				"(max_sleep_duration)", (unsigned long long)ms,
				(unsigned long long)p->max_sleep_ms);
	if (ms < p->min_sleep_ms)
		return rth_deny(c, "sleep of %llu ms is shorter than the allowed %llu ms "
				"(min_sleep_duration)", (unsigned long long)ms,
				(unsigned long long)p->min_sleep_ms);
	if (ms > UINT64_MAX / 1000000u - th_now_ns() / 1000000u)
		return rth_err(c, "sleep duration too large");
	return sleep_until(c, th_now_ns() + ms * 1000000u);
}

static rth_ret fn_deadline(rth_call *c)
{
	const thm_timing_perms *p = &c->a->perm.timing;
	uint64_t ts = c->args[0].of.u, now = th_wall_ns() / 1000000u;
	uint64_t ms = ts > now ? ts - now : 0;
	if (ms > p->max_sleep_ms)
		return rth_deny(c, "deadline %llu ms away is further than the allowed "
				"%llu ms (max_sleep_duration)", (unsigned long long)ms,
				(unsigned long long)p->max_sleep_ms);
	if (ms == 0)
		return rth_ok_unit(c);
	return sleep_until(c, th_now_ns() + ms * 1000000u);
}

#define TM "theater:simple/timing"
const rth_fn rth_timing_fns[] = {
	{ TM, "now", "host." TM ".now", THM_H_TIMING, RTH_DENY_TRAP, fn_now, NULL },
	{ TM, "sleep", "host." TM ".sleep", THM_H_TIMING, RTH_DENY_ERR, fn_sleep, NULL },
	{ TM, "deadline", "host." TM ".deadline", THM_H_TIMING, RTH_DENY_ERR,
	  fn_deadline, NULL },
	{ 0 }
};
