/*
 * health.c - periodic health probes (prefix rhc_), from a policy's
 * [supervision.health] section. Two kinds, by `probe`:
 *
 * "ping" (the default) is a look at the actor from the timer thread every
 * interval_ms, no guest code run: it is answered when the actor is idle
 * (nothing queued, nothing in flight) or has finished a message since the
 * previous probe; it is missed when work has been waiting with no message
 * finished for timeout_ms (a handler stuck in a loop that yields, or
 * suspended on a host call that does not come back).
 *
 * "export:<name>" calls the actor's export theater:simple/health#<name>:
 * every interval_ms the timer thread sends a probe (a control message on
 * the system lane, ref = the probe's number, data = the name) unless one
 * is still out; the actor's turn calls the export (actor.c) and reports
 * with rhc_probe_done. An ok result answers the probe; an error result, a
 * trap (the actor goes on: the call is ended, nothing committed), a
 * missing export, or no answer within timeout_ms (checked by the timer)
 * is a miss. A late answer to a probe already counted as missed is
 * ignored, and no new probe is sent while one is out.
 *
 * Either way, max_missed consecutive misses count as a failure: the actor
 * is failed with kind "unresponsive" and its policy decides what follows.
 * Each miss is recorded in the actor's chain and the runtime chain
 * (health.missed [missed, max_missed, why]); answered probes are not
 * (their export.result is, for export probes).
 *
 * Locking: the hc_ fields are under the node's lock (the timer thread and
 * the actor's turn both touch them); nothing is recorded or delivered
 * while it is held.
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
	pthread_mutex_lock(&n->lock);
	n->hc_handled = atomic_load(&a->handled);
	n->hc_stuck_since = 0;
	n->hc_missed = 0;
	n->hc_out = false;
	pthread_mutex_unlock(&n->lock);
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

/* One more miss (counted by the caller under the lock: k of max): record
 * it; the last one fails the actor. */
static void missed(rta_actor *a, const thm_health *h, uint32_t k,
		   const char *why)
{
	char text[TH_ERR_MSG_MAX + 160];
	th_cbor_enc e;

	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 3);
	th_cbor_put_uint(&e, k);
	th_cbor_put_uint(&e, h->max_missed);
	th_cbor_put_cstr(&e, why);
	rta_record(a, "health.missed", &e, NULL);
	snprintf(text, sizeof text, "%u of %u: %s", k, h->max_missed, why);
	rtr_runtime_event(a->rt, "health.missed", a->id, text);
	if (k >= h->max_missed) {
		snprintf(text, sizeof text,
			 "health check: %u consecutive probes missed (last: %s)",
			 k, why);
		rsv_fail_async(a, "unresponsive", text);
	}
}

void rhc_probe_done(rta_actor *a, uint64_t seq, bool ok, const char *why)
{
	const thm_health *h = health_of(a);
	rsv_node *n = a->sv;
	uint32_t k = 0;
	char text[TH_ERR_MSG_MAX + 64];

	if (!h)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->hc_out && seq == n->hc_seq) {
		n->hc_out = false;
		if (ok)
			n->hc_missed = 0;
		else
			k = ++n->hc_missed;
	}
	pthread_mutex_unlock(&n->lock);
	if (k) {
		snprintf(text, sizeof text, "probe %llu: %s",
			 (unsigned long long)seq, why ? why : "failed");
		missed(a, h, k, text);
	}
}

/* Timer thread: send the next export probe, or count the one that is out
 * as missed once timeout_ms has passed. */
static void probe_export(rta_actor *a, rsv_node *n, const thm_health *h,
			 uint64_t now)
{
	uint64_t seq = 0, late = 0;
	uint32_t k = 0;
	char text[200];

	pthread_mutex_lock(&n->lock);
	if (!n->hc_out) {
		seq = ++n->hc_seq;
		n->hc_out = true;
		n->hc_sent = now;
	} else if (now - n->hc_sent >= h->timeout_ms * 1000000u) {
		late = n->hc_seq;
		k = ++n->hc_missed;
		n->hc_sent = now; /* the next miss after another timeout_ms */
	}
	pthread_mutex_unlock(&n->lock);
	if (seq) {
		const char *name = h->probe_export;
		rtm_msg *m = rtm_msg_new(RTM_CONTROL, RTM_SYSTEM, name,
					 (uint32_t)strlen(name));
		if (m) {
			m->flags = RTA_CTL_PROBE;
			m->ref = seq;
			if (rta_deliver(a, m, NULL) == 0)
				return;
		}
		/* Not delivered (ending, out of memory): nothing is out. */
		pthread_mutex_lock(&n->lock);
		if (n->hc_seq == seq)
			n->hc_out = false;
		pthread_mutex_unlock(&n->lock);
	} else if (k) {
		snprintf(text, sizeof text,
			 "probe %llu not answered within %llu ms",
			 (unsigned long long)late,
			 (unsigned long long)h->timeout_ms);
		missed(a, h, k, text);
	}
}

/* Timer thread: the ping probe (no guest code). */
static void probe_ping(rta_actor *a, rsv_node *n, const thm_health *h,
		       uint64_t now)
{
	uint64_t handled = atomic_load(&a->handled);
	uint32_t work, k = 0;
	char text[200];

	th_lock_take(&a->mb.lock);
	work = a->mb.queued + a->mb.queued_system + a->mb.inflight;
	th_lock_give(&a->mb.lock);
	pthread_mutex_lock(&n->lock);
	if (!work || handled != n->hc_handled) {
		n->hc_handled = handled;
		n->hc_stuck_since = 0;
		n->hc_missed = 0;
	} else if (!n->hc_stuck_since) {
		n->hc_stuck_since = now;
	} else if (now - n->hc_stuck_since >= h->timeout_ms * 1000000u) {
		k = ++n->hc_missed;
		n->hc_stuck_since = now;
	}
	pthread_mutex_unlock(&n->lock);
	if (k) {
		snprintf(text, sizeof text,
			 "no message finished for %llu ms with work waiting",
			 (unsigned long long)h->timeout_ms);
		missed(a, h, k, text);
	}
}

static void probe(rtt_timer *t, void *ctx)
{
	rta_actor *a = ctx;
	rsv_node *n = a->sv;
	const thm_health *h = health_of(a);
	uint64_t now = th_now_ns();
	int life = atomic_load(&a->life);

	if (!h || life >= RTA_STOPPED || atomic_load(&a->rt->closing))
		return;
	if (atomic_load(&a->stop_req))
		return; /* failing or stopping: the restart arms new probes */
	if (life == RTA_READY) {
		if (h->probe_export)
			probe_export(a, n, h, now);
		else
			probe_ping(a, n, h, now);
	}
	rtt_arm(a->rt->timers, t, now + h->interval_ms * 1000000u);
}
