/*
 * supervise.c - what happens after an actor ends: restart policies,
 * strategies, restart intensity and escalation, backoff, the circuit
 * breaker, state and mailbox on restart (prefix rsv_).
 *
 * 1. The failure flow
 *
 *   detected     finalize (actor.c) on the actor's own turn: rsv_adjust_end
 *                (clearer reasons for limit traps; a stop asked for by
 *                supervision becomes a failure), actor.failed is recorded,
 *                rsv_keep_mailbox decides whether the mailbox survives.
 *   notified     rsv_on_end (in finalize, just before the life becomes
 *                final) records supervision.notified; the parent's
 *                handle-child-error gets its control message right after.
 *   decision     rsv_on_end applies the declarative policy: none
 *                (temporary, transient after a normal exit, no policy),
 *                circuit-open, give-up (intensity exceeded: escalation),
 *                or restart of a group (strategy) after a backoff delay.
 *   action       an actor restarted alone (one_for_one, or a circuit's
 *                probe) is restarted on its own next turn, from the
 *                scheduler's recovery lane (rsv_turn); a group's restart
 *                job (blocking-work pool) waits until every actor of the
 *                group has ended, then restarts each in order
 *                (rta_reincarnate: same id, last committed state unless
 *                state = "reset", preserved mailbox redelivered).
 *   recovery     rsv_handled sees init finish: supervision.recovered, with
 *                the time from detection to ready.
 * Each step is an event in the actor's chain and in the runtime chain.
 * A planned restart counts as work (rt->busy) until it is carried out, so
 * thr_quiesce waits through a backoff delay.
 *
 * Recovery is low-priority work: from the failure's detection (rta_fail)
 * until its init has run again, the actor's task is on the scheduler's
 * recovery lane (sched.h), so the failure's bookkeeping, its restart and
 * its init never queue ready actors behind them. A storm of failures
 * slows recovery, not the healthy actors.
 *
 * 2. Which policy
 *
 * Per child (restart type, backoff, circuit, state, mailbox, health): the
 * child's [supervision] section, else its parent's. Per group (strategy,
 * max_restarts/within_seconds): the parent's section, else the child's.
 * Top-level actors are supervised by the runtime root: one_for_one, with
 * their own section's intensity; when the root gives up the actor stays
 * failed. An actor with no section anywhere is not restarted by the
 * runtime: its supervisor actor alone decides (handle-child-error and the
 * supervisor interface), as before this layer existed.
 *
 * 3. Invariants
 *   S1. Only the node's lock guards its fields; it is never held while
 *       recording, calling into an actor, a mailbox or the timer service.
 *       Lock order when nested: an actor's lock, then a node's lock.
 *   S2. A mailbox left open for a restart (rsv_keep_mailbox KEEP, or
 *       EMPTY: drained but open, so that waiting senders reach the
 *       restarted actor) is either reopened by a restart or closed and
 *       drained, each drop recorded (rta_close_mailbox), on every path where no
 *       restart follows.
 *   S3. At most one restart is pending per node (node->group, node->due
 *       or a job).
 */
#include <stdarg.h>

#include "base/base.h"
#include "runtime/supervise.h"
#include "theater/supervise.h"

static const char *const strategy_names[] = {
	[THM_ONE_FOR_ONE] = "one_for_one", [THM_ONE_FOR_ALL] = "one_for_all",
	[THM_REST_FOR_ONE] = "rest_for_one",
};

static const char *const restart_names[] = {
	[THM_PERMANENT] = "permanent", [THM_TRANSIENT] = "transient",
	[THM_TEMPORARY] = "temporary",
};

typedef struct rsv_job {
	thr_runtime *rt;
	rta_actor **v;
	size_t n;
} rsv_job;

static void backoff_fire(rtt_timer *t, void *ctx);

static bool final_life(int life)
{
	return life == RTA_STOPPED || life == RTA_FAILED;
}

/* ---- events ---------------------------------------------------------------- */

/* An event with a list of strings in a's chain, and the same in the
 * runtime chain (detail = the strings joined by spaces). */
static void record2(rta_actor *a, const char *type, int n, ...)
{
	th_cbor_enc e;
	char detail[600];
	size_t used = 0;
	va_list ap;

	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, (uint64_t)n);
	detail[0] = 0;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *s = va_arg(ap, const char *);
		s = s ? s : "";
		th_cbor_put_cstr(&e, s);
		if (used < sizeof detail) {
			int k = snprintf(detail + used, sizeof detail - used, "%s%s",
					 i ? " " : "", s);
			if (k > 0)
				used += (size_t)k;
		}
	}
	va_end(ap);
	rta_record(a, type, &e, NULL);
	rtr_runtime_event(a->rt, type, a->id, detail);
}

/* ---- attach / detach --------------------------------------------------------- */

void rsv_attach(rta_actor *a)
{
	rsv_node *n = th_calloc(1, sizeof *n);
	const thm_supervision *own = &a->spec->m->supervision;
	const thm_supervision *par =
		a->parent ? &a->parent->spec->m->supervision : NULL;

	if (!n)
		return; /* unsupervised: the actor still runs */
	n->a = a;
	pthread_mutex_init(&n->lock, NULL);
	n->pol = own->present ? own : (par && par->present ? par : NULL);
	n->grp = own->present ? own : NULL;
	rtt_timer_init(&n->timer, backoff_fire, n);
	if (n->pol && n->pol->reset_state && a->has_state) {
		n->init_state = th_malloc(a->state_len ? a->state_len : 1);
		if (n->init_state) {
			memcpy(n->init_state, a->state, a->state_len);
			n->init_len = a->state_len;
			n->has_init = true;
		}
	}
	a->sv = n;
	rhc_start(a);
	rml_start(a);
}

void rsv_detach(rta_actor *a)
{
	rsv_node *n = a->sv;
	if (!n)
		return;
	a->sv = NULL;
	th_free(n->init_state);
	th_free(n->kids.t);
	th_free(n->self.t);
	th_free(n->fail_kind);
	th_free(n->fail_reason);
	th_free(n->group);
	pthread_mutex_destroy(&n->lock);
	th_free(n);
}

/* ---- the end of an actor ---------------------------------------------------- */

void rsv_fail_async(rta_actor *a, const char *kind, const char *reason)
{
	rsv_node *n = a->sv;
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	if (!n->fail_reason) {
		n->fail_kind = th_strdup(kind);
		n->fail_reason = th_strdup(reason);
	}
	pthread_mutex_unlock(&n->lock);
	rts_task_set_low(&a->task, true); /* recovery lane from now on */
	rta_request_stop(a, false);
}

void rsv_adjust_end(rta_actor *a, int *life, const char **kind,
		    const char **reason)
{
	rsv_node *n = a->sv;
	const thm_limits *lim = &a->spec->m->limits;
	thw_memory *mem;

	if (!n)
		return;
	n->t_detect = a->fail_ns ? a->fail_ns : th_now_ns();
	if (*life == RTA_STOPPED) {
		pthread_mutex_lock(&n->lock);
		if (n->fail_reason) {
			*life = RTA_FAILED;
			*kind = n->fail_kind ? n->fail_kind : "supervision";
			*reason = n->fail_reason;
		}
		pthread_mutex_unlock(&n->lock);
		return;
	}
	if (!*kind || !*reason)
		return;
	/* A refused memory.grow is the guest's to handle; the trap that
	 * follows (an allocator's abort) is reported as the limit it is. */
	mem = a->inst ? thc_instance_memory(a->inst) : NULL;
	if (mem && lim->memory_pages &&
	    thw_memory_pages(mem) >= lim->memory_pages &&
	    (!strcmp(*kind, "trap") || !strcmp(*kind, "out-of-memory"))) {
		snprintf(n->why, sizeof n->why,
			 "%s (linear memory at its limit: %u pages, limits.memory_pages)",
			 *reason, lim->memory_pages);
		*kind = "memory-limit";
		*reason = n->why;
	} else if (!strcmp(*kind, "out-of-fuel")) {
		snprintf(n->why, sizeof n->why,
			 "%s (the handler used up its budget of %llu fuel, "
			 "limits.fuel_per_message)", *reason,
			 (unsigned long long)a->fuel_cap);
		*reason = n->why;
	} else if (!strcmp(*kind, "stack-exhausted")) {
		snprintf(n->why, sizeof n->why,
			 "%s (call stack exhausted: recursion too deep)", *reason);
		*reason = n->why;
	}
}

/* Whether the policy plans a restart after this end (rsv_on_end decides
 * for good; its paths without a restart close the mailbox, S2). */
static bool restart_planned(rsv_node *n, int was, int life, bool external)
{
	bool group, restarted;
	pthread_mutex_lock(&n->lock);
	group = n->group_stop;
	restarted = n->restarted;
	pthread_mutex_unlock(&n->lock);
	if (group)
		return true;
	if (was == RTA_STARTING && !restarted)
		return false; /* first init failed: the spawner is told */
	if (life == RTA_STOPPED)
		return !external && n->pol->restart == THM_PERMANENT;
	return n->pol->restart != THM_TEMPORARY;
}

int rsv_keep_mailbox(rta_actor *a, int was, int life, bool external)
{
	rsv_node *n = a->sv;
	if (!n || !n->pol || atomic_load(&a->rt->closing) ||
	    !restart_planned(n, was, life, external))
		return RSV_MB_CLOSE;
	return n->pol->discard_mailbox ? RSV_MB_EMPTY : RSV_MB_KEEP;
}

/* Restarts within the window, counting this one; false when it would be
 * one too many (the ring then keeps its state). */
static bool ring_admit(rsv_ring *r, uint64_t now, uint32_t within_s,
		       uint32_t max)
{
	uint64_t win = (uint64_t)within_s * 1000000000u;
	uint32_t k = 0;
	for (uint32_t i = 0; i < r->n; i++)
		if (now - r->t[i] < win)
			r->t[k++] = r->t[i];
	r->n = k;
	if (r->n >= max)
		return false;
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 4;
		uint64_t *t = th_realloc(r->t, cap * sizeof *t);
		if (!t)
			return true; /* out of memory: not counted, not refused */
		r->t = t;
		r->cap = cap;
	}
	r->t[r->n++] = now;
	return true;
}

static uint64_t backoff_ms(const thm_supervision *p, uint32_t consec)
{
	uint64_t d = p->backoff_min_ms;
	uint32_t shift = consec > 1 ? consec - 1 : 0;
	for (uint32_t i = 0; i < shift && d < p->backoff_max_ms; i++)
		d = d ? d * 2 : 0;
	if (d > p->backoff_max_ms)
		d = p->backoff_max_ms;
	if (p->backoff_jitter > 0 && d > 0) {
		uint32_t r;
		rtu_random(&r, sizeof r);
		double u = (double)r / 4294967296.0;
		d = (uint64_t)((double)d * (1.0 - p->backoff_jitter * u));
	}
	return d;
}

static void restart_one(rta_actor *x, bool own_turn);

static void job_run(void *ctx)
{
	rsv_job *j = ctx;
	thr_runtime *rt = j->rt;

	pthread_mutex_lock(&rt->wait_lock);
	for (size_t i = 0; i < j->n; i++)
		while (!final_life(rta_life_get(j->v[i])))
			pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
	pthread_mutex_unlock(&rt->wait_lock);
	for (size_t i = 0; i < j->n; i++)
		restart_one(j->v[i], false);
	rtr_busy_add(rt, -(int64_t)j->n);
	th_free(j->v);
	th_free(j);
}

static void submit(thr_runtime *rt, rta_actor **v, size_t n)
{
	rsv_job *j = th_calloc(1, sizeof *j);
	if (j) {
		j->rt = rt;
		j->v = v;
		j->n = n;
		if (!rto_run(rt->io, job_run, j))
			return;
		th_free(j);
	}
	/* Out of memory: nobody restarts them; they stay failed. */
	for (size_t i = 0; i < n; i++) {
		rtr_runtime_event(rt, "supervision.restart_lost", v[i]->id,
				  "out of memory scheduling the restart");
		rta_close_mailbox(v[i], "restart could not be scheduled");
	}
	rtr_busy_add(rt, -(int64_t)n);
	th_free(v);
}

/* Restart a alone, on its own next turn (rsv_turn). The restart counts as
 * busy already. */
static void restart_on_turn(rta_actor *a)
{
	atomic_store(&a->sv->due, true);
	rta_wake(a);
}

/* Timer thread: the backoff delay (group set) or the circuit's reset
 * timeout (no group: half-open, restart for one probe) is over. */
static void backoff_fire(rtt_timer *t, void *ctx)
{
	rsv_node *n = ctx;
	rta_actor **v;
	size_t k;
	TH_UNUSED(t);
	if (atomic_load(&n->a->rt->closing))
		return; /* the runtime is being freed: no new work */
	pthread_mutex_lock(&n->lock);
	v = n->group;
	k = n->ngroup;
	n->group = NULL;
	n->ngroup = 0;
	if (!v && atomic_load(&n->circuit) == RSV_OPEN) {
		atomic_store(&n->circuit, RSV_HALF_OPEN);
		n->probe_sent = false;
		atomic_store(&n->watch, 1);
	}
	pthread_mutex_unlock(&n->lock);
	if (!v) {
		rtr_busy_add(n->a->rt, 1);
		record2(n->a, "circuit.half_open", 1, "one probe message may pass");
		restart_on_turn(n->a);
		return;
	}
	if (k == 1 && v[0] == n->a) {
		th_free(v);
		restart_on_turn(n->a);
		return;
	}
	submit(n->a->rt, v, k);
}

void rsv_turn(rta_actor *a)
{
	rsv_node *n = a->sv;
	if (!n || !atomic_exchange(&n->due, false))
		return;
	restart_one(a, true);
	rtr_busy_add(a->rt, -1);
}

/* Restart x: one actor of a group (blocking-work pool), or x alone on its
 * own turn (own_turn: it cannot wait for itself to stop). */
static void restart_one(rta_actor *x, bool own_turn)
{
	rsv_node *n = x->sv;
	thr_runtime *rt = x->rt;
	th_err err = { 0 };
	char count[32], pending[32];
	int life = rta_life_get(x);

	if (atomic_load(&rt->closing) || !n)
		return;
	if (!final_life(life))
		return; /* restarted meanwhile (restart-child) */
	pthread_mutex_lock(&n->lock);
	n->group_stop = false;
	th_free(n->fail_kind);
	th_free(n->fail_reason);
	n->fail_kind = n->fail_reason = NULL;
	n->restarts++;
	n->restarted = true;
	n->recovering = true;
	n->handled_mark = atomic_load(&x->handled);
	snprintf(count, sizeof count, "%u", n->restarts);
	pthread_mutex_unlock(&n->lock);

	if (n->pol && n->pol->reset_state) {
		uint8_t *s = NULL;
		if (n->has_init)
			s = th_malloc(n->init_len ? n->init_len : 1);
		if (s)
			memcpy(s, n->init_state, n->init_len);
		pthread_mutex_lock(&x->lock);
		th_free(x->state);
		x->state = s;
		x->state_len = s ? n->init_len : 0;
		x->has_state = s != NULL;
		pthread_mutex_unlock(&x->lock);
	}
	snprintf(pending, sizeof pending, "%u", rtm_pending(&x->mb));
	record2(x, "supervision.restarting", 4, count,
		n->pol && n->pol->reset_state ? "state=reset" : "state=preserve",
		n->pol && n->pol->discard_mailbox ? "mailbox=discard"
						  : "mailbox=preserve",
		pending);
	atomic_store(&n->watch, 1);
	if (rta_reincarnate(x, &err)) {
		pthread_mutex_lock(&n->lock);
		n->recovering = false;
		pthread_mutex_unlock(&n->lock);
		rsv_on_end(x, RTA_STARTING, RTA_FAILED, false, "instantiate",
			   err.msg);
		return;
	}
	if (own_turn && atomic_load(&rt->closing)) {
		/* The runtime is being freed. It has seen x STARTING (x became
		 * so before closing was read here) and waits for it to end:
		 * its next turn (it is woken for init) stops it. No probes
		 * are armed, the timer service may be gone first. */
		rta_request_stop(x, true);
		return;
	}
	rhc_start(x);
	rml_start(x);
	if (!own_turn && atomic_load(&rt->closing)) {
		/* The runtime is being freed and may have looked at x already:
		 * stop it and wait, so that it has ended before the pool this
		 * job runs on is joined (and the timers after it are freed). */
		rta_request_stop(x, true);
		pthread_mutex_lock(&rt->wait_lock);
		while (!final_life(rta_life_get(x)))
			pthread_cond_wait(&rt->wait_cond, &rt->wait_lock);
		pthread_mutex_unlock(&rt->wait_lock);
	}
}

/* The group restarted with a (strategy); a's siblings in it are asked to
 * stop first. *out is freed by the job. */
static int build_group(rta_actor *a, rta_actor *sup, thm_strategy st,
		       rta_actor ***out, size_t *nout)
{
	rta_actor **v, **stop;
	size_t k = 0, ks = 0;
	uint32_t nc;
	bool after = false;

	if (!sup || st == THM_ONE_FOR_ONE) {
		v = th_malloc(sizeof *v);
		if (!v)
			return TH_ENOMEM;
		v[0] = a;
		*out = v;
		*nout = 1;
		return 0;
	}
	pthread_mutex_lock(&sup->lock);
	nc = sup->nchildren;
	v = th_malloc((nc + 1) * sizeof *v);
	stop = th_malloc((nc + 1) * sizeof *stop);
	if (!v || !stop) {
		pthread_mutex_unlock(&sup->lock);
		th_free(v);
		th_free(stop);
		return TH_ENOMEM;
	}
	for (uint32_t i = 0; i < nc; i++) {
		rta_actor *c = sup->children[i];
		if (c == a) {
			v[k++] = a;
			after = true;
			continue;
		}
		if (st == THM_REST_FOR_ONE && !after)
			continue;
		if (final_life(rta_life_get(c)) || atomic_load(&c->stop_req) ||
		    !c->sv)
			continue;
		pthread_mutex_lock(&c->sv->lock);
		c->sv->group_stop = true;
		pthread_mutex_unlock(&c->sv->lock);
		v[k++] = c;
		stop[ks++] = c;
	}
	pthread_mutex_unlock(&sup->lock);
	if (!after)
		v[k++] = a; /* not in the list (out of memory at spawn) */
	for (size_t i = 0; i < ks; i++)
		rta_request_stop(stop[i], true);
	th_free(stop);
	*out = v;
	*nout = k;
	return 0;
}

static void decide_none(rta_actor *a, const char *why)
{
	record2(a, "supervision.decision", 2, "none", why);
	rta_close_mailbox(a, why);
}

void rsv_on_end(rta_actor *a, int was, int life, bool external,
		const char *kind, const char *reason)
{
	rsv_node *n = a->sv;
	thr_runtime *rt = a->rt;
	const thm_supervision *pol, *g;
	rta_actor *sup = a->parent;
	rsv_node *owner;
	rsv_ring *ring;
	bool abnormal = life == RTA_FAILED, open = false, ok, group, restarted;
	uint32_t consec;
	uint64_t delay;
	char text[TH_ERR_MSG_MAX + 256], num[32], num2[32];

	if (!n)
		return;
	rhc_stop(a);
	rml_stop(a);
	if (atomic_load(&rt->closing))
		return;
	pthread_mutex_lock(&n->lock);
	group = n->group_stop;
	restarted = n->restarted;
	pthread_mutex_unlock(&n->lock);
	if (group)
		return; /* restarted by its group's job */
	pol = n->pol;
	if (!pol || (external && life == RTA_STOPPED))
		return;
	if (was == RTA_STARTING && !restarted)
		return; /* the first init failed: the spawner has the error */

	record2(a, "supervision.notified", 3, sup ? sup->id : "root",
		kind ? kind : (abnormal ? "error" : "exit"),
		reason ? reason : (abnormal ? "" : "normal exit"));

	if (pol->restart == THM_TEMPORARY) {
		decide_none(a, "restart = temporary: never restarted");
		return;
	}
	if (pol->restart == THM_TRANSIENT && !abnormal) {
		decide_none(a, "restart = transient: normal exit");
		return;
	}
	if (sup && (atomic_load(&sup->stop_req) ||
		    final_life(rta_life_get(sup)))) {
		decide_none(a, "its supervisor is ending");
		return;
	}

	/* Consecutive failures: a handled message since the last start
	 * (beyond init) breaks the run. */
	pthread_mutex_lock(&n->lock);
	if (abnormal) {
		if (atomic_load(&a->handled) > n->handled_mark + 1)
			n->consec = 0;
		n->consec++;
	}
	consec = n->consec;
	if (abnormal && (atomic_load(&n->circuit) == RSV_HALF_OPEN ||
			 (pol->circuit_failures &&
			  consec >= pol->circuit_failures))) {
		atomic_store(&n->circuit, RSV_OPEN);
		atomic_store(&n->watch, 0);
		open = true;
	}
	pthread_mutex_unlock(&n->lock);
	if (open) {
		snprintf(num, sizeof num, "%u", consec);
		snprintf(num2, sizeof num2, "%llu",
			 (unsigned long long)pol->circuit_reset_ms);
		record2(a, "supervision.decision", 2, "circuit-open",
			"messages fail fast until the reset timeout");
		record2(a, "circuit.opened", 2, num, num2);
		if (rtt_arm(rt->timers, &n->timer,
			    th_now_ns() + pol->circuit_reset_ms * 1000000u))
			rta_close_mailbox(a, "out of memory arming the circuit timer");
		return;
	}

	/* Restart intensity, counted by the supervisor (the root counts
	 * each top-level actor on its own). */
	g = sup && sup->sv && sup->sv->grp ? sup->sv->grp : pol;
	owner = sup && sup->sv ? sup->sv : n;
	ring = sup && sup->sv ? &owner->kids : &n->self;
	pthread_mutex_lock(&owner->lock);
	ok = ring_admit(ring, th_now_ns(), g->within_seconds, g->max_restarts);
	pthread_mutex_unlock(&owner->lock);
	if (!ok) {
		snprintf(text, sizeof text,
			 "restart intensity exceeded: more than %u restarts within "
			 "%u s (child %s: %s)", g->max_restarts, g->within_seconds,
			 a->id, reason ? reason : "exit");
		record2(a, "supervision.decision", 2, "give-up", text);
		rta_close_mailbox(a, "its supervisor gave up");
		if (sup) {
			th_cbor_enc e;
			th_cbor_enc_init(&e, NULL, 0);
			th_cbor_put_array(&e, 2);
			th_cbor_put_cstr(&e, a->id);
			th_cbor_put_cstr(&e, text);
			rta_record(sup, "supervision.gave_up", &e, text);
			rtr_runtime_event(rt, "supervision.escalated", sup->id, text);
			rsv_fail_async(sup, "escalation", text);
		} else {
			rtr_runtime_event(rt, "supervision.escalated", a->id,
					  "root: the actor is left failed");
		}
		return;
	}

	{
		thm_strategy st = sup ? g->strategy : THM_ONE_FOR_ONE;
		rta_actor **v;
		size_t k;
		delay = backoff_ms(pol, abnormal ? consec : 0);
		snprintf(num, sizeof num, "%llu", (unsigned long long)delay);
		if (build_group(a, sup, st, &v, &k)) {
			decide_none(a, "out of memory planning the restart");
			return;
		}
		snprintf(num2, sizeof num2, "%zu", k);
		snprintf(text, sizeof text, "%s %s", strategy_names[st],
			 restart_names[pol->restart]);
		record2(a, "supervision.decision", 4, "restart", text, num, num2);
		/* A planned restart is work in progress (thr_quiesce). */
		rtr_busy_add(rt, (int64_t)k);
		if (delay == 0 && k == 1) {
			th_free(v);
			restart_on_turn(a); /* after this turn, a is final */
			return;
		}
		if (delay == 0) {
			submit(rt, v, k);
			return;
		}
		pthread_mutex_lock(&n->lock);
		th_free(n->group);
		n->group = v;
		n->ngroup = k;
		pthread_mutex_unlock(&n->lock);
		if (rtt_arm(rt->timers, &n->timer,
			    th_now_ns() + delay * 1000000u)) {
			pthread_mutex_lock(&n->lock);
			v = n->group;
			k = n->ngroup;
			n->group = NULL;
			pthread_mutex_unlock(&n->lock);
			if (v)
				submit(rt, v, k);
		}
	}
}

bool rsv_supervisor_decides(rta_actor *child, const char *action)
{
	rsv_node *n = child->sv;
	rta_actor **v;
	size_t k;
	bool circuit;
	if (!n || !n->pol)
		return false;
	rtt_cancel(child->rt->timers, &n->timer);
	pthread_mutex_lock(&n->lock);
	v = n->group;
	k = n->ngroup;
	n->group = NULL;
	n->ngroup = 0;
	if (!v && atomic_exchange(&n->due, false)) {
		/* Its restart was waiting for its turn: cancelled too. */
		v = th_malloc(sizeof *v);
		if (v) {
			v[0] = child;
			k = 1;
		} else {
			rtr_busy_add(child->rt, -1);
		}
	}
	circuit = atomic_load(&n->circuit) != RSV_CLOSED;
	if (circuit) {
		atomic_store(&n->circuit, RSV_CLOSED);
		n->consec = 0;
	}
	pthread_mutex_unlock(&n->lock);
	if (!v && !circuit)
		return false;
	record2(child, "supervision.decision", 2, "supervisor", action);
	if (circuit)
		record2(child, "circuit.closed", 1, "its supervisor acted");
	if (v) {
		/* The others of its group still restart, now. */
		size_t keep = 0;
		for (size_t i = 0; i < k; i++)
			if (v[i] != child)
				v[keep++] = v[i];
		rtr_busy_add(child->rt, -(int64_t)(k - keep));
		if (keep)
			submit(child->rt, v, keep);
		else
			th_free(v);
	}
	if (!strcmp(action, "stop-child") && final_life(rta_life_get(child)))
		rta_close_mailbox(child, "stopped by its supervisor");
	return v != NULL || circuit;
}

/* ---- messages ------------------------------------------------------------------ */

int rsv_admit(rta_actor *to, th_err *err)
{
	rsv_node *n = to->sv;
	int c;
	th_cbor_enc e;
	if (!n || (c = atomic_load(&n->circuit)) == RSV_CLOSED)
		return 0;
	if (c == RSV_HALF_OPEN && rta_life_get(to) >= RTA_STOPPED) {
		/* The probe waits for the restart: a message now could not be
		 * delivered and would use up the probe. */
		th_cbor_enc_init(&e, NULL, 0);
		th_cbor_put_array(&e, 1);
		th_cbor_put_cstr(&e, "half-open, restarting");
		rta_record(to, "circuit.rejected", &e, NULL);
		return th_err_set(err, TH_ESTATE,
				  "circuit half-open for actor %s: it is restarting for "
				  "its probe, message refused", to->id);
	}
	if (c == RSV_HALF_OPEN) {
		bool pass = false;
		pthread_mutex_lock(&n->lock);
		if (!n->probe_sent) {
			n->probe_sent = true;
			pass = true;
		}
		pthread_mutex_unlock(&n->lock);
		if (pass) {
			record2(to, "circuit.probe", 1, "this message is the probe");
			return 0;
		}
	}
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_array(&e, 1);
	th_cbor_put_cstr(&e, c == RSV_OPEN ? "open" : "half-open");
	rta_record(to, "circuit.rejected", &e, NULL);
	if (c == RSV_OPEN)
		return th_err_set(err, TH_ESTATE,
				  "circuit open for actor %s after %u consecutive "
				  "failures: message refused (fails fast until "
				  "circuit_reset_ms, then one probe goes through)",
				  to->id, n->consec);
	return th_err_set(err, TH_ESTATE,
			  "circuit half-open for actor %s: its probe message is "
			  "in flight, message refused", to->id);
}

void rsv_handled(rta_actor *a)
{
	rsv_node *n = a->sv;
	bool recovered = false, closed = false;
	uint64_t dt = 0, restarts = 0;
	if (!n || !atomic_load(&n->watch))
		return;
	pthread_mutex_lock(&n->lock);
	if (n->recovering && rta_life_get(a) == RTA_READY) {
		n->recovering = false;
		recovered = true;
		dt = th_now_ns() - n->t_detect;
		restarts = n->restarts;
	}
	if (atomic_load(&n->circuit) == RSV_HALF_OPEN &&
	    atomic_load(&a->handled) >= n->handled_mark + 2) {
		atomic_store(&n->circuit, RSV_CLOSED);
		n->consec = 0;
		closed = true;
	}
	atomic_store(&n->watch, n->recovering ||
		     atomic_load(&n->circuit) == RSV_HALF_OPEN);
	pthread_mutex_unlock(&n->lock);
	if (recovered) {
		char t[32], r[32];
		snprintf(t, sizeof t, "%llu", (unsigned long long)dt);
		snprintf(r, sizeof r, "%llu", (unsigned long long)restarts);
		record2(a, "supervision.recovered", 2, t, r);
	}
	if (closed)
		record2(a, "circuit.closed", 1, "the probe succeeded");
}

/* ---- public queries (theater/supervise.h) -------------------------------- */

const char *thr_circuit_name(thr_circuit c)
{
	switch (c) {
	case THR_CIRCUIT_CLOSED: return "closed";
	case THR_CIRCUIT_OPEN: return "open";
	case THR_CIRCUIT_HALF_OPEN: return "half-open";
	default: return "-";
	}
}

int thr_sup_info_get(thr_runtime *rt, const char *id, thr_sup_info *out,
		     th_err *err)
{
	rta_actor *a = id ? rtg_find(rt->reg, id) : NULL;
	rsv_node *n;
	memset(out, 0, sizeof *out);
	if (!a)
		return th_err_set(err, TH_ENOTFOUND, "no actor with id \"%s\"",
				  id ? id : "(null)");
	n = a->sv;
	if (!n || !n->pol)
		return 0;
	out->supervised = true;
	snprintf(out->strategy, sizeof out->strategy, "%s",
		 strategy_names[(n->grp ? n->grp : n->pol)->strategy]);
	snprintf(out->restart, sizeof out->restart, "%s",
		 restart_names[n->pol->restart]);
	pthread_mutex_lock(&n->lock);
	out->restarts = n->restarts;
	out->consecutive_failures = n->consec;
	pthread_mutex_unlock(&n->lock);
	if (!n->pol->circuit_failures)
		out->circuit = THR_CIRCUIT_NONE;
	else
		switch (atomic_load(&n->circuit)) {
		case RSV_OPEN: out->circuit = THR_CIRCUIT_OPEN; break;
		case RSV_HALF_OPEN: out->circuit = THR_CIRCUIT_HALF_OPEN; break;
		default: out->circuit = THR_CIRCUIT_CLOSED; break;
		}
	return 0;
}
