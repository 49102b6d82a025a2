/*
 * mblimit.c - mailbox limits that fail an actor (prefix rml_).
 *
 * A full mailbox is backpressure, not a failure (docs/runtime.md): its
 * senders are suspended (actors) or refused with TH_EBUSY / made to wait
 * (thr_send) until the actor takes a message. Two manifest limits turn a
 * mailbox that cannot drain into a failure of its actor, kind
 * "mailbox-limit", reason "mailbox limit exceeded: ...":
 *
 *   limits.mailbox_full_ms     the mailbox has been full (queued + reserved
 *                              at limits.mailbox_capacity) and no message
 *                              has finished for this long: the actor is
 *                              not draining it, and its senders would
 *                              wait for ever. Checked by a timer every
 *                              mailbox_full_ms / 4; a slow actor that
 *                              still finishes messages is never failed.
 *   limits.mailbox_system_max  system-lane messages (runtime notices, child
 *                              notices, probes: never refused, so not
 *                              bounded by the capacity) queued beyond
 *                              this: checked as each one is queued.
 *
 * The failure goes through rsv_fail_async, so the actor's policy decides
 * what follows (restart, with the mailbox preserved or discarded) and the
 * failure is recorded like any other (actor.failed and the supervision
 * events, in the actor's chain and the runtime chain). Both are off (0) by
 * default.
 */
#include "base/base.h"
#include "runtime/supervise.h"

static void check_full(rtt_timer *t, void *ctx);

static uint64_t period_ms(const thm_limits *l)
{
	return l->mailbox_full_ms >= 4 ? l->mailbox_full_ms / 4 : 1;
}

void rml_start(rta_actor *a)
{
	rsv_node *n = a->sv;
	const thm_limits *l = &a->spec->m->limits;
	if (!n || !l->mailbox_full_ms)
		return;
	rtt_timer_init(&n->ml_timer, check_full, a);
	n->ml_handled = atomic_load(&a->handled);
	n->ml_full_since = 0;
	n->ml_armed = true;
	rtt_arm(a->rt->timers, &n->ml_timer, th_now_ns() + period_ms(l) * 1000000u);
}

void rml_stop(rta_actor *a)
{
	rsv_node *n = a->sv;
	if (n && n->ml_armed) {
		n->ml_armed = false;
		rtt_cancel(a->rt->timers, &n->ml_timer);
	}
}

/* Timer thread. */
static void check_full(rtt_timer *t, void *ctx)
{
	rta_actor *a = ctx;
	rsv_node *n = a->sv;
	const thm_limits *l = &a->spec->m->limits;
	uint64_t now = th_now_ns(), handled;
	uint32_t queued;
	bool full;
	char text[300];

	if (atomic_load(&a->life) >= RTA_STOPPED ||
	    atomic_load(&a->rt->closing) || atomic_load(&a->stop_req))
		return;
	th_lock_take(&a->mb.lock);
	queued = a->mb.queued + a->mb.reserved;
	full = queued >= a->mb.capacity;
	th_lock_give(&a->mb.lock);
	handled = atomic_load(&a->handled);
	if (!full || handled != n->ml_handled) {
		n->ml_handled = handled;
		n->ml_full_since = full ? now : 0;
	} else if (!n->ml_full_since) {
		n->ml_full_since = now;
	} else if (now - n->ml_full_since >= l->mailbox_full_ms * 1000000u) {
		snprintf(text, sizeof text,
			 "mailbox limit exceeded: the mailbox has been full (%u "
			 "messages, limits.mailbox_capacity) with no message "
			 "finished for %llu ms (limits.mailbox_full_ms)", queued,
			 (unsigned long long)l->mailbox_full_ms);
		rsv_fail_async(a, "mailbox-limit", text);
		return; /* a restart arms it again */
	}
	rtt_arm(a->rt->timers, t, now + period_ms(l) * 1000000u);
}

void rml_system_pushed(rta_actor *a)
{
	const thm_limits *l = &a->spec->m->limits;
	uint32_t k;
	char text[200];

	if (!l->mailbox_system_max)
		return;
	th_lock_take(&a->mb.lock);
	k = a->mb.queued_system;
	th_lock_give(&a->mb.lock);
	if (k <= l->mailbox_system_max || atomic_load(&a->stop_req))
		return;
	snprintf(text, sizeof text,
		 "mailbox limit exceeded: %u system messages queued "
		 "(limits.mailbox_system_max = %u)", k, l->mailbox_system_max);
	rsv_fail_async(a, "mailbox-limit", text);
}
