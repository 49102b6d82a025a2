/*
 * health.c - periodic health probes (prefix rhc_), from a policy's
 * [supervision.health] section.
 *
 * A probe is a look at the actor from the timer thread every interval_ms:
 * it is answered when the actor is idle (nothing queued, nothing in
 * flight) or has finished a message since the previous probe; it is
 * missed when work has been waiting with no message finished for
 * timeout_ms (a handler stuck in a loop that yields, or suspended on a
 * host call that does not come back). max_missed consecutive misses count
 * as a failure: the actor is failed with kind "unresponsive" and its
 * policy decides what follows. Misses and the failure are recorded in the
 * actor's chain and the runtime chain; answered probes are not (they
 * would fill the chain with nothing).
 *
 * The export form of `probe` ("export:<name>") is answered the same way:
 * the probe never runs guest code, so it cannot itself hang or change
 * state (docs/supervision.md).
 */
#include "base/base.h"
#include "runtime/supervise.h"

static void probe(rtt_timer *t, void *ctx);

static const thm_health *health_of(rta_actor *a)
{
	rsv_node *n = a->sv;
	if (!n || !n->pol || !n->pol->health.enabled)
		return NULL;
	return &n->pol->health;
}

void rhc_start(rta_actor *a)
{
	const thm_health *h = health_of(a);
	rsv_node *n = a->sv;
	if (!h)
		return;
	rtt_timer_init(&n->hc_timer, probe, a);
	n->hc_handled = atomic_load(&a->handled);
	n->hc_stuck_since = 0;
	n->hc_missed = 0;
	n->hc_armed = true;
	rtt_arm(a->rt->timers, &n->hc_timer,
		th_now_ns() + h->interval_ms * 1000000u);
}

void rhc_stop(rta_actor *a)
{
	if (health_of(a) && a->sv->hc_armed) {
		a->sv->hc_armed = false;
		rtt_cancel(a->rt->timers, &a->sv->hc_timer);
	}
}

static void probe(rtt_timer *t, void *ctx)
{
	rta_actor *a = ctx;
	rsv_node *n = a->sv;
	const thm_health *h = health_of(a);
	uint64_t now = th_now_ns(), handled;
	uint32_t work;
	char text[200];
	th_cbor_enc e;

	if (!h || atomic_load(&a->life) >= RTA_STOPPED ||
	    atomic_load(&a->rt->closing))
		return;
	pthread_mutex_lock(&a->mb.lock);
	work = a->mb.queued + a->mb.queued_system + a->mb.inflight;
	pthread_mutex_unlock(&a->mb.lock);
	handled = atomic_load(&a->handled);
	if (!work || handled != n->hc_handled) {
		n->hc_handled = handled;
		n->hc_stuck_since = 0;
		n->hc_missed = 0;
	} else if (!n->hc_stuck_since) {
		n->hc_stuck_since = now;
	} else if (now - n->hc_stuck_since >= h->timeout_ms * 1000000u) {
		n->hc_missed++;
		n->hc_stuck_since = now;
		th_cbor_enc_init(&e, NULL, 0);
		th_cbor_put_array(&e, 2);
		th_cbor_put_uint(&e, n->hc_missed);
		th_cbor_put_uint(&e, h->max_missed);
		rta_record(a, "health.missed", &e, NULL);
		snprintf(text, sizeof text, "%u of %u", n->hc_missed, h->max_missed);
		rtr_runtime_event(a->rt, "health.missed", a->id, text);
		if (n->hc_missed >= h->max_missed) {
			snprintf(text, sizeof text,
				 "health check: %u consecutive probes missed (no "
				 "message finished for %llu ms each)", n->hc_missed,
				 (unsigned long long)h->timeout_ms);
			rsv_fail_async(a, "unresponsive", text);
			return; /* not re-armed: the restart arms a new one */
		}
	}
	rtt_arm(a->rt->timers, t, now + h->interval_ms * 1000000u);
}
