/*
 * actor.c - the actor state machine: spawning, turns, export calls,
 * suspension on host calls, stopping and failing (prefix rta_).
 *
 * 1. Two state machines
 *
 * An actor has a life state (rta_actor.life) and, separately, a scheduling
 * state kept by the scheduler in its rts_task (IDLE, QUEUED, RUNNING,
 * RUNNING_WOKEN; see sched.c). The scheduler guarantees that at most one
 * worker runs an actor's turn at a time, so everything the turn owns (the
 * instance, the exec, the call in progress) needs no lock.
 *
 *                 rta_spawn (caller's thread)
 *                       |
 *        load/instantiate fails: actor.failed
 *                       |         \
 *                       v          `-------------------> FAILED
 *                   STARTING --- init traps/errs ------> FAILED
 *                       |
 *              init returns ok (turn): actor.created
 *                       v
 *                     READY ---- trap, handler error --> FAILED
 *                       |
 *        stop requested, or runtime.shutdown (turn)
 *                       v
 *                    STOPPED
 *
 * Who performs each transition:
 *   -> STARTING        rta_spawn, on the spawner's thread, before the
 *                      actor is runnable (its first turn runs init).
 *   STARTING -> READY  the actor's turn, when init returns ok.
 *   -> FAILED          rta_fail, on the actor's turn (or in rta_spawn
 *                      before the first turn, when nothing else can run
 *                      it); the one place failures are reported.
 *   -> STOPPED         finalize, on the actor's turn, once stop_req is
 *                      seen (set by thr_stop, stop-child, a stopping
 *                      parent, or runtime.shutdown).
 * STOPPED and FAILED are final here (the supervision layer restarts by
 * building a new instance under the same id). Only the actor's own turn
 * writes life after spawning, so readers only need it atomic; external
 * waiters sleep on the runtime's wait_cond, broadcast after each change.
 *
 * 2. A turn (actor_run)
 *
 * A turn handles at most `batch` messages and spends at most `fuel_slice`
 * instructions; then it yields its worker (RTS_YIELD puts it at the back
 * of the shared injector, so every runnable actor gets its turn). For each
 * message: take it from the mailbox (it becomes in flight), record
 * export.call, start the export (thc_call_start), run the exec until it
 * finishes, yields (fuel slice used up: the call stays in progress and the
 * next turn resumes it), or suspends on a host call (PENDING: the turn
 * returns RTS_PARKED). When it finishes: record export.result (the new
 * state is in it), commit the state, answer a request, then acknowledge
 * the message (rtm_ack) - at-least-once: nothing is acknowledged before
 * its result is recorded. The turn's own events go to a per-thread batch
 * (record.c, rta_record with turn_of): appended before an answer goes
 * out, else at the end of the turn (turn_flush), which then acknowledges
 * the messages whose results the batch held.
 *
 * 3. Suspension
 *
 * A host function that cannot answer now (request, sleep, file I/O, a
 * full mailbox, spawning a child) calls rta_suspend, which returns a
 * token, arranges for someone to call rta_complete(token, result) later,
 * and returns THC_HOST_PENDING. rta_complete (any thread) stores the
 * result under the actor's lock only if the token still names the
 * suspension in progress - a stopped actor's abandoned call, or a timeout
 * racing a reply, can never complete the wrong call - then wakes the
 * actor. Its next turn records the host call (arguments and result) and
 * hands the result to the component layer (thc_hostcall_complete). A wake
 * that arrives while the turn is still running is kept by the scheduler
 * (RUNNING_WOKEN), so no completion is ever lost.
 *
 * 4. Invariants
 *   I1. An actor struct is never freed before the runtime (rt.h).
 *   I2. pend.armed is true from rta_suspend until the turn consumes the
 *       answer or abandons the call; pend.token changes with every
 *       suspension.
 *   I3. rt->busy counts messages pushed and not yet acknowledged or
 *       dropped; thr_quiesce waits for it to reach 0.
 *   I4. Every message taken from the mailbox is acknowledged (handled),
 *       or dropped with a message.dropped event when the actor ends.
 */
#include "base/base.h"
#include "runtime/rt.h"
#include "runtime/supervise.h"
#include "runtime/value.h"
#include "theater/wasi.h"

const char *const rta_export_iface[RTA_NX] = {
	[RTA_X_INIT] = "theater:simple/actor",
	[RTA_X_HANDLE_SEND] = "theater:simple/message-server-client",
	[RTA_X_HANDLE_REQUEST] = "theater:simple/message-server-client",
	[RTA_X_CHANNEL_OPEN] = "theater:simple/message-server-client",
	[RTA_X_CHANNEL_MESSAGE] = "theater:simple/message-server-client",
	[RTA_X_CHANNEL_CLOSE] = "theater:simple/message-server-client",
	[RTA_X_CHILD_ERROR] = "theater:simple/supervisor-handlers",
	[RTA_X_CHILD_EXIT] = "theater:simple/supervisor-handlers",
	[RTA_X_CHILD_STOP] = "theater:simple/supervisor-handlers",
	[RTA_X_PROBE] = "theater:simple/health",
};

const char *const rta_export_name[RTA_NX] = {
	[RTA_X_INIT] = "init",
	[RTA_X_HANDLE_SEND] = "handle-send",
	[RTA_X_HANDLE_REQUEST] = "handle-request",
	[RTA_X_CHANNEL_OPEN] = "handle-channel-open",
	[RTA_X_CHANNEL_MESSAGE] = "handle-channel-message",
	[RTA_X_CHANNEL_CLOSE] = "handle-channel-close",
	[RTA_X_CHILD_ERROR] = "handle-child-error",
	[RTA_X_CHILD_EXIT] = "handle-child-exit",
	[RTA_X_CHILD_STOP] = "handle-child-external-stop",
	[RTA_X_PROBE] = "check",
};

const char *const rta_export_full[RTA_NX] = {
	[RTA_X_INIT] = "theater:simple/actor.init",
	[RTA_X_HANDLE_SEND] = "theater:simple/message-server-client.handle-send",
	[RTA_X_HANDLE_REQUEST] = "theater:simple/message-server-client.handle-request",
	[RTA_X_CHANNEL_OPEN] = "theater:simple/message-server-client.handle-channel-open",
	[RTA_X_CHANNEL_MESSAGE] = "theater:simple/message-server-client.handle-channel-message",
	[RTA_X_CHANNEL_CLOSE] = "theater:simple/message-server-client.handle-channel-close",
	[RTA_X_CHILD_ERROR] = "theater:simple/supervisor-handlers.handle-child-error",
	[RTA_X_CHILD_EXIT] = "theater:simple/supervisor-handlers.handle-child-exit",
	[RTA_X_CHILD_STOP] = "theater:simple/supervisor-handlers.handle-child-external-stop",
	[RTA_X_PROBE] = "theater:simple/health.check",
};

static const char *const kind_names[] = {
	[RTM_SEND] = "send", [RTM_REQUEST] = "request",
	[RTM_RESPONSE] = "response", [RTM_CHANNEL_OPEN] = "channel-open",
	[RTM_CHANNEL_MESSAGE] = "channel-message",
	[RTM_CHANNEL_CLOSE] = "channel-close", [RTM_CONTROL] = "control",
};

/* wit-error-type cases (wit/theater-simple.wit). */
enum { WIT_ERR_INTERNAL = 5 };

static rts_result actor_run(rts_task *t, int worker);
static void finalize(rta_actor *a, int life, const char *kind,
		     const char *reason);
static void finalize_failed_restart(rta_actor *a, th_err *err);
static void drop(rta_actor *a, rtm_msg *m, const char *why);
static void call_release(rta_actor *a);

/* ---- small helpers ------------------------------------------------------ */

int rta_life_get(rta_actor *a)
{
	return atomic_load(&a->life);
}

void rta_wake(rta_actor *a)
{
	rts_wake(a->rt->sched, &a->task);
}

rta_actor *rta_of_call(thc_hostcall *call)
{
	return thc_instance_data(thc_hostcall_instance(call));
}

/* The actor whose turn this thread is running (NULL: none). Only that
 * thread may add to the batch of the actor's call (record.c). */
static _Thread_local rta_actor *turn_of;

/* Messages of the turn whose export.result is still in the batch: they
 * are acknowledged once the batch is in the chain (at-least-once: never
 * before), and stay in flight if appending it failed. */
#define TURN_ACKS 64
static _Thread_local struct {
	uint32_t n;
	rtm_msg *m[TURN_ACKS];
} turn_acks;

/* Append the turn's batch, then acknowledge what it recorded. */
static int turn_flush(rta_actor *a)
{
	int rc = rtr_batch_flush();
	if (!rc && turn_acks.n) {
		rtm_ack_many(&a->mb, turn_acks.m, turn_acks.n);
		rtr_busy_add(a->rt, -(int64_t)turn_acks.n);
	}
	turn_acks.n = 0;
	if (rc && !a->fail_kind && atomic_load(&a->life) < RTA_STOPPED)
		rta_fail(a, "chain", "recording handler results failed");
	return rc;
}

static int record(rta_actor *a, const char *type, bool type_static,
		  th_cbor_enc *e, const char *desc)
{
	if (turn_of == a) {
		if (a->call.batching && !desc)
			return rtr_batch_add(a->chain, a->id, type, type_static, e);
		turn_flush(a); /* the chain keeps the turn's order */
	}
	return type_static ? rtr_event_enc(a->chain, a->id, type, e, desc)
			   : rtr_event_enc_dyn(a->chain, a->id, type, e);
}

int rta_record(rta_actor *a, const char *type, th_cbor_enc *e,
	       const char *desc)
{
	return record(a, type, true, e, desc);
}

int rta_record_dyn(rta_actor *a, const char *type, th_cbor_enc *e)
{
	return record(a, type, false, e, NULL);
}

static void set_life(rta_actor *a, int life)
{
	pthread_mutex_lock(&a->lock);
	atomic_store(&a->life, life);
	pthread_mutex_unlock(&a->lock);
	rtr_notify(a->rt);
}

int rta_state_copy(rta_actor *a, uint8_t **out, size_t *len, bool *has)
{
	int rc = 0;
	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&a->lock);
	*has = a->has_state;
	if (a->has_state) {
		*out = th_malloc(a->state_len ? a->state_len : 1);
		if (*out) {
			memcpy(*out, a->state, a->state_len);
			*len = a->state_len;
		} else {
			rc = TH_ENOMEM;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* ---- suspension ----------------------------------------------------------- */

uint64_t rta_suspend(rta_actor *a)
{
	uint64_t token = atomic_fetch_add(&a->rt->next_token, 1);
	pthread_mutex_lock(&a->lock);
	a->pend.token = token;
	a->pend.armed = true;
	a->pend.done = false;
	a->pend.retry = NULL;
	a->pend.ctx = NULL;
	a->pend.ctx_free = NULL;
	pthread_mutex_unlock(&a->lock);
	return token;
}

bool rta_complete(rta_actor *a, uint64_t token, thc_val *result)
{
	pthread_mutex_lock(&a->lock);
	if (!a->pend.armed || a->pend.token != token || a->pend.done) {
		pthread_mutex_unlock(&a->lock);
		return false;
	}
	if (result) {
		a->pend.result = *result;
		memset(result, 0, sizeof *result);
	}
	a->pend.done = true;
	pthread_mutex_unlock(&a->lock);
	rta_wake(a);
	return true;
}

bool rta_complete_trap(rta_actor *a, uint64_t token, const char *msg)
{
	char *copy = th_strdup(msg);
	pthread_mutex_lock(&a->lock);
	if (!a->pend.armed || a->pend.token != token || a->pend.done) {
		pthread_mutex_unlock(&a->lock);
		th_free(copy);
		return false;
	}
	a->pend.trap = copy ? copy : th_strdup("out of memory");
	a->pend.done = true;
	pthread_mutex_unlock(&a->lock);
	rta_wake(a);
	return true;
}

void rta_retry_on_wake(rta_actor *a, int (*retry)(rta_actor *), void *ctx,
		       void (*ctx_free)(void *))
{
	pthread_mutex_lock(&a->lock);
	a->pend.retry = retry;
	a->pend.ctx = ctx;
	a->pend.ctx_free = ctx_free;
	pthread_mutex_unlock(&a->lock);
}

void rta_poke(rta_actor *a)
{
	bool wake = false;
	pthread_mutex_lock(&a->lock);
	if (a->pend.armed && !a->pend.done) {
		a->pend.done = true;
		wake = true;
	}
	pthread_mutex_unlock(&a->lock);
	if (wake)
		rta_wake(a);
}

void rta_unsuspend(rta_actor *a)
{
	pthread_mutex_lock(&a->lock);
	a->pend.armed = false;
	a->pend.done = false;
	pthread_mutex_unlock(&a->lock);
}

void rta_set_result(rta_actor *a, thc_val *result)
{
	pthread_mutex_lock(&a->lock);
	thc_val_release(&a->pend.result);
	a->pend.result = *result;
	memset(result, 0, sizeof *result);
	pthread_mutex_unlock(&a->lock);
}

/* Forget the suspended call (stop, failure). Cancels what could still
 * complete it: the actor's timer and a wait for mailbox room. */
static void abandon_pend(rta_actor *a)
{
	rtt_cancel(a->rt->timers, &a->timer);
	if (a->room_target) {
		rtm_cancel_wait(&a->room_target->mb, &a->room);
		a->room_target = NULL;
	}
	pthread_mutex_lock(&a->lock);
	a->pend.armed = false;
	a->pend.done = false;
	thc_val_release(&a->pend.result);
	th_free(a->pend.trap);
	a->pend.trap = NULL;
	void *ctx = a->pend.ctx;
	a->pend.ctx = NULL;
	a->pend.retry = NULL;
	pthread_mutex_unlock(&a->lock);
	if (ctx && a->pend.ctx_free)
		a->pend.ctx_free(ctx);
	a->pend.ctx_free = NULL;
	th_free(a->pend.args);
	a->pend.args = NULL;
	a->pend.args_len = 0;
	a->pend.event = NULL;
}

/* ---- delivery --------------------------------------------------------------- */

static void put_msg_head(th_cbor_enc *e, const rtm_msg *m)
{
	th_cbor_put_uint(e, m->id);
	th_cbor_put_cstr(e, m->kind < TH_ARRAY_LEN(kind_names) ? kind_names[m->kind] : "?");
	th_cbor_put_cstr(e, m->sender);
	th_cbor_put_uint(e, m->ref);
}

static int deliver(rta_actor *to, rtm_msg *m, bool wake, th_err *err);

int rta_deliver(rta_actor *to, rtm_msg *m, th_err *err)
{
	return deliver(to, m, true, err);
}

/* rta_deliver; without wake the caller runs or wakes the actor itself. */
static int deliver(rta_actor *to, rtm_msg *m, bool wake, th_err *err)
{
	thr_runtime *rt = to->rt;
	th_cbor_enc e;
	bool sys = m->priority == RTM_SYSTEM;
	int rc;

	if (!sys && to->sv && (rc = rsv_admit(to, err))) {
		rtm_msg_free(m);
		return rc;
	}
	if (!sys && m->len > to->max_msg) {
		rtr_enc_init(&e);
		th_cbor_put_array(&e, 4);
		th_cbor_put_cstr(&e, m->sender);
		th_cbor_put_cstr(&e, m->kind < TH_ARRAY_LEN(kind_names) ? kind_names[m->kind] : "?");
		th_cbor_put_uint(&e, m->len);
		th_cbor_put_uint(&e, to->max_msg);
		rta_record(to, "message.rejected", &e, "message larger than limits.max_message_bytes");
		rc = th_err_set(err, TH_ELIMIT,
				"message of %u bytes exceeds actor %s's limit of %u bytes "
				"(limits.max_message_bytes)", m->len, to->id, to->max_msg);
		rtm_msg_free(m);
		return rc;
	}
	if (!sys) {
		rc = m->flags & RTA_MSGF_PAST_FULL ? rtm_reserve_past(&to->mb)
			: rtm_reserve(&to->mb);
		if (rc == TH_EBUSY)
			return th_err_set(err, TH_EBUSY, "actor %s's mailbox is full",
					  to->id); /* the caller keeps m */
		if (rc) {
			rtm_msg_free(m);
			return th_err_set(err, TH_ESTATE, "actor %s has %s", to->id,
					  rta_life_get(to) == RTA_FAILED ? "failed" : "stopped");
		}
	} else if (rta_life_get(to) >= RTA_STOPPED) {
		rtm_msg_free(m);
		return th_err_set(err, TH_ESTATE, "actor %s has stopped", to->id);
	}
	if (!(m->flags & RTA_MSGF_REDELIVERED))
		m->id = atomic_fetch_add(&rt->next_msg, 1);

	/* Arrival is recorded before the message can be seen by the actor. */
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 5);
	put_msg_head(&e, m);
	th_cbor_put_bytes(&e, m->data, m->len);
	rc = rta_record(to, m->flags & RTA_MSGF_REDELIVERED ? "message.redelivered"
			: "message.received", &e, NULL);
	if (rc) {
		if (!sys)
			rtm_unreserve(&to->mb);
		rtm_msg_free(m);
		return th_err_set(err, rc, "recording a message for actor %s failed",
				  to->id);
	}
	rtr_busy_add(rt, 1);
	rc = sys ? rtm_push(&to->mb, m) : rtm_push_reserved(&to->mb, m);
	if (rc) {
		rtr_busy_add(rt, -1);
		rtm_msg_free(m);
		return th_err_set(err, TH_ESTATE, "actor %s has stopped", to->id);
	}
	if (sys)
		rml_system_pushed(to); /* limits.mailbox_system_max */
	if (wake)
		rta_wake(to);
	return 0;
}

/* A control message (system lane) to a. */
static void control(rta_actor *to, int ctl, const char *from,
		    const void *data, size_t len, uint64_t ref, uint16_t flags,
		    bool wake)
{
	rtm_msg *m = rtm_msg_new(RTM_CONTROL, RTM_SYSTEM, data, (uint32_t)len);
	if (!m)
		return; /* out of memory: the notice is lost, not the runtime */
	m->flags = (uint16_t)(ctl | flags);
	m->ref = ref;
	th_strlcpy(m->sender, from, sizeof m->sender);
	deliver(to, m, wake, NULL);
}

static void send_control(rta_actor *to, int ctl, const char *from,
			 const void *data, size_t len, uint64_t ref,
			 uint16_t flags)
{
	control(to, ctl, from, data, len, ref, flags, true);
}

/* ---- spawning --------------------------------------------------------------- */

static void add_child(rta_actor *parent, rta_actor *child)
{
	pthread_mutex_lock(&parent->lock);
	if (parent->nchildren == parent->capchildren) {
		uint32_t cap = parent->capchildren ? parent->capchildren * 2 : 4;
		rta_actor **v = th_realloc(parent->children, cap * sizeof *v);
		if (!v) {
			/* The child still runs; it is only missing from
			 * list-children. */
			pthread_mutex_unlock(&parent->lock);
			return;
		}
		parent->children = v;
		parent->capchildren = cap;
	}
	parent->children[parent->nchildren++] = child;
	pthread_mutex_unlock(&parent->lock);
}

/* A failure before the actor ever ran (nothing else can touch it). */
static int fail_early(rta_actor *a, const char *kind, th_err *err)
{
	finalize(a, RTA_FAILED, kind, err && err->msg[0] ? err->msg : kind);
	return err ? err->code : TH_EINVAL;
}

/* A fresh realm, exec and instance for a (spawn and restart). */
static int instantiate(rta_actor *a, th_err *err)
{
	thw_config wcfg = { 0 };
	th_cbor_enc e;
	thw_memory *mem;
	int rc;

	wcfg.max_memory_pages = a->spec->m->limits.memory_pages;
	rc = thw_realm_new(&wcfg, &a->realm, err);
	if (!rc)
		rc = thw_exec_new(a->realm, &a->exec, err);
	if (rc)
		return rc;
	thw_exec_set_fuel(a->exec, a->fuel_cap, THW_FUEL_TRAP);
	if (!a->code->needs_wasi) {
		rc = thc_instantiate(a->realm, a->code->comp, a->rt->imports,
				     a->rt->nimports, a->exec, &a->inst, err);
		if (rc != TH_ENOTFOUND || !err || !strstr(err->msg, THW_WASI_MODULE))
			goto done;
		/* A core module importing WASI: learnt once per component;
		 * start again in a clean realm, with a WASI context. */
		a->code->needs_wasi = true;
		thw_exec_free(a->exec);
		a->exec = NULL;
		thw_realm_free(a->realm);
		a->realm = NULL;
		if ((rc = thw_realm_new(&wcfg, &a->realm, err)) ||
		    (rc = thw_exec_new(a->realm, &a->exec, err)))
			return rc;
		thw_exec_set_fuel(a->exec, a->fuel_cap, THW_FUEL_TRAP);
	}
	rc = rtw_new(a, &a->wasi, err);
	if (!rc)
		rc = thc_instantiate_wasi(a->realm, a->code->comp, a->rt->imports,
					  a->rt->nimports, a->wasi, a->exec,
					  &a->inst, err);
done:
	if (rc)
		return rc;
	thc_instance_set_data(a->inst, a);
	mem = thc_instance_memory(a->inst);
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 1);
	th_cbor_put_uint(&e, mem ? thw_memory_pages(mem) : 0);
	rta_record(a, "actor.instantiated", &e, NULL);
	return 0;
}

int rta_spawn(thr_runtime *rt, rtf_spec *spec, rta_actor *parent,
	      uint64_t spawn_token, const uint8_t *init, size_t init_len,
	      bool has_init, rta_actor **out, th_err *err)
{
	return rta_spawn_ex(rt, spec, parent, spawn_token, init, init_len,
			    has_init, 0, out, err);
}

/* rta_spawn_ex, and rta_spawn_resumed when res is set: then the actor
 * gets the id and chain it had, res->event is recorded in place of
 * actor.spawning, and init starts from the state res gives. */
static int spawn(thr_runtime *rt, rtf_spec *spec, rta_actor *parent,
		 uint64_t spawn_token, const uint8_t *init, size_t init_len,
		 bool has_init, unsigned flags, const rta_resumed *res,
		 rta_actor **out, th_err *err)
{
	const thm_manifest *m = spec->m;
	rta_actor *a;
	thx_chain_opts copts = { 0 };
	th_cbor_enc e;
	rtc_code *code;
	bool cached;
	int rc;

	*out = NULL;
	if (atomic_load(&rt->closing))
		return th_err_set(err, TH_ESTATE, "the runtime is shutting down");
	a = th_calloc(1, sizeof *a);
	if (!a)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	a->rt = rt;
	a->parent = parent;
	a->spawn_token = parent ? spawn_token : 0;
	a->spec = spec;
	rts_task_init(&a->task, actor_run);
	pthread_mutex_init(&a->lock, NULL);
	rtt_timer_init(&a->timer, NULL, a);
	rtm_init(&a->mb, m->limits.mailbox_capacity ? m->limits.mailbox_capacity
						     : rt->opt.mailbox_capacity);
	a->fuel_cap = m->limits.fuel_per_message ? m->limits.fuel_per_message
						 : UINT64_MAX;
	a->max_msg = m->limits.max_message_bytes &&
		m->limits.max_message_bytes < UINT32_MAX
		? (uint32_t)m->limits.max_message_bytes : THX_DATA_MAX / 2;
	a->request_timeout_ms = m->limits.request_timeout_ms &&
		m->limits.request_timeout_ms < UINT32_MAX
		? (uint32_t)m->limits.request_timeout_ms
		: rt->opt.request_timeout_ms;
	atomic_init(&a->life, RTA_STARTING);
	if (res)
		snprintf(a->id, sizeof a->id, "%s", res->id);
	else
		rtu_uuid4(a->id);

	/* Step 1: the actor's chain, then the request is recorded. */
	rtf_chain_opts(m, rt->opt.durability, &copts); /* save_chain, [chain] */
	if (res)
		a->chain = res->chain;
	else
		rc = thx_chain_open(rt->chains, a->id, &copts, true, &a->chain, err);
	if (res || !rc) {
		rc = rtg_add(rt->reg, a);
		if (rc)
			th_err_set(err, rc, "registering actor %s", a->id);
	}
	if (rc) {
		rtm_release(&a->mb);
		pthread_mutex_destroy(&a->lock);
		th_free(a);
		return rc;
	}
	*out = a;
	atomic_fetch_add(&rt->n_spawned, 1);
	/* The initial state and the limits that change behaviour are in the
	 * record, so that a replay needs nothing but the chain. */
	const uint8_t *init_p = has_init ? init : spec->init_state;
	size_t init_n = has_init ? init_len : spec->init_len;
	bool init_has = has_init || spec->has_init;
	if (res) {
		init_p = res->state;
		init_n = res->state_len;
		init_has = res->has_state;
		rtr_enc_init(&e);
		th_cbor_put_raw(&e, res->event, res->event_len);
		rc = rta_record(a, "actor.resumed", &e, NULL);
		goto recorded;
	}
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 7);
	th_cbor_put_cstr(&e, m->name);
	th_cbor_put_cstr(&e, m->file ? m->file : "<string>");
	th_cbor_put_cstr(&e, parent ? parent->id : "");
	th_cbor_put_cstr(&e, m->version ? m->version : "");
	if (init_has)
		th_cbor_put_bytes(&e, init_p, init_n);
	else
		th_cbor_put_null(&e);
	th_cbor_put_uint(&e, m->limits.fuel_per_message);
	th_cbor_put_uint(&e, m->limits.memory_pages);
	rc = rta_record(a, "actor.spawning", &e, NULL);
recorded:
	if (rc) {
		th_err_set(err, rc, "recording actor %s's creation failed", a->id);
		return fail_early(a, "chain", err);
	}

	/* Step 2: effective permissions: never wider than the parent's. */
	rc = thm_effective(parent ? &parent->perm : NULL, m, &a->perm, err);
	if (rc)
		return fail_early(a, "permissions", err);

	/* Step 3: the Store returns the component's bytes by hash; loaded
	 * once per hash and shared. */
	rc = rtc_code_get(rt, spec, &code, &cached, err);
	if (rc)
		return fail_early(a, rc == TH_EINVAL ? "invalid-component"
						     : "missing-component", err);
	a->code = code;
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 4);
	th_cbor_put_cstr(&e, code->hex);
	th_cbor_put_uint(&e, code->size);
	th_cbor_put_cstr(&e, thc_component_form(code->comp) == THC_FORM_CORE
				     ? "core-module" : "component");
	th_cbor_put_bool(&e, cached);
	rta_record(a, "component.loaded", &e, NULL);

	/* Step 4: the executor instantiates it in the actor's own realm. */
	rc = instantiate(a, err);
	if (rc)
		return fail_early(a, "instantiate", err);

	/* Step 5: init(state, (id)) runs as the actor's first turn. */
	if (init_has) {
		a->state = th_malloc(init_n ? init_n : 1);
		if (!a->state) {
			th_err_set(err, TH_ENOMEM, "out of memory");
			return fail_early(a, "instantiate", err);
		}
		memcpy(a->state, init_p, init_n);
		a->state_len = init_n;
		a->has_state = true;
	}
	if (parent)
		add_child(parent, a);
	rsv_attach(a);
	if (flags & RTA_SPAWN_INIT_HERE) {
		/* The spawner waits for init anyway: running it on this thread
		 * saves two thread wake-ups (worker, then spawner). */
		control(a, RTA_CTL_INIT, parent ? parent->id : "", NULL, 0, 0, 0,
			false);
		rts_run_here(rt->sched, &a->task);
	} else {
		send_control(a, RTA_CTL_INIT, parent ? parent->id : "", NULL, 0,
			     0, 0);
	}
	return 0;
}

int rta_spawn_ex(thr_runtime *rt, rtf_spec *spec, rta_actor *parent,
		 uint64_t spawn_token, const uint8_t *init, size_t init_len,
		 bool has_init, unsigned flags, rta_actor **out, th_err *err)
{
	return spawn(rt, spec, parent, spawn_token, init, init_len, has_init,
		     flags, NULL, out, err);
}

int rta_spawn_resumed(thr_runtime *rt, rtf_spec *spec, const rta_resumed *res,
		      rta_actor **out, th_err *err)
{
	return spawn(rt, spec, NULL, 0, NULL, 0, false, 0, res, out, err);
}

void rta_restart_begin(rta_actor *a)
{
	atomic_store(&a->restart_pending, true);
}

void rta_close_mailbox(rta_actor *a, const char *why)
{
	rtm_msg *list;
	int64_t k = 0;
	rtm_close(&a->mb);
	list = rtm_drain(&a->mb);
	while (list) {
		rtm_msg *m = list;
		list = m->next;
		drop(a, m, why);
		rtm_msg_free(m);
		k++;
	}
	if (k)
		rtr_busy_add(a->rt, -k);
}

int rta_reincarnate(rta_actor *a, th_err *err)
{
	th_cbor_enc e;
	int rc;
	bool announced = atomic_exchange(&a->restart_pending, false);

	if (!a->code) {
		if (announced)
			rta_close_mailbox(a, "restart failed"); /* nobody will empty it */
		return th_err_set(err, TH_ESTATE,
				  "actor %s never loaded its component", a->id);
	}
	pthread_mutex_lock(&a->lock);
	th_free(a->reason);
	a->reason = NULL;
	a->stop_external = false;
	a->ending = false;
	a->exit_has_data = false; /* the previous life's runtime.shutdown */
	a->exit_len = 0;
	atomic_store(&a->stop_req, false);
	atomic_store(&a->terminate_req, false);
	pthread_mutex_unlock(&a->lock);
	call_release(a);
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 1);
	th_cbor_put_cstr(&e, a->code->hex);
	rta_record(a, "actor.restarted", &e, NULL);
	rc = instantiate(a, err);
	if (rc) {
		finalize_failed_restart(a, err);
		if (announced)
			rta_close_mailbox(a, "restart failed"); /* nobody will empty it */
		return rc;
	}
	rtm_reopen(&a->mb);
	set_life(a, RTA_STARTING);
	rtr_runtime_event(a->rt, "actor.restarted", a->id, a->spec->m->name);
	send_control(a, RTA_CTL_INIT, a->parent ? a->parent->id : "", NULL, 0,
		     0, 0);
	return 0;
}

/* ---- export calls --------------------------------------------------------- */

static rta_export export_of(const rtm_msg *m)
{
	switch (m->kind) {
	case RTM_SEND: return RTA_X_HANDLE_SEND;
	case RTM_REQUEST: return RTA_X_HANDLE_REQUEST;
	case RTM_CHANNEL_OPEN: return RTA_X_CHANNEL_OPEN;
	case RTM_CHANNEL_MESSAGE: return RTA_X_CHANNEL_MESSAGE;
	case RTM_CHANNEL_CLOSE: return RTA_X_CHANNEL_CLOSE;
	default:
		switch (m->flags & 0xff) {
		case RTA_CTL_INIT: return RTA_X_INIT;
		case RTA_CTL_CHILD_ERROR: return RTA_X_CHILD_ERROR;
		case RTA_CTL_CHILD_EXIT: return RTA_X_CHILD_EXIT;
		case RTA_CTL_PROBE: return RTA_X_PROBE;
		default: return RTA_X_CHILD_STOP;
		}
	}
}

static int str_val(const char *s, thc_val *out)
{
	return thc_val_string(s, strlen(s), out);
}

static int id_val(char prefix, uint64_t n, thc_val *out)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%c%llu", prefix, (unsigned long long)n);
	return str_val(buf, out);
}

static int opt_bytes(bool has, const uint8_t *p, size_t n, thc_val *out)
{
	thc_val b = { 0 };
	if (!has)
		return thc_val_case(THC_OPTION, 0, NULL, out);
	if (thc_val_bytes(p, n, &b))
		return TH_ENOMEM;
	if (thc_val_case(THC_OPTION, 1, &b, out)) {
		thc_val_release(&b);
		return TH_ENOMEM;
	}
	return 0;
}

/* The params tuple of export x for message m. */
static int build_params(rta_actor *a, rta_export x, const rtm_msg *m,
			thc_val *p)
{
	int rc;
	switch (x) {
	case RTA_X_INIT:
		rc = thc_val_agg(THC_TUPLE, 1, p);
		return rc ? rc : str_val(a->id, &p->of.agg.items[0]);
	case RTA_X_HANDLE_SEND:
		rc = thc_val_agg(THC_TUPLE, 1, p);
		return rc ? rc : thc_val_bytes(m->data, m->len, &p->of.agg.items[0]);
	case RTA_X_HANDLE_REQUEST:
	case RTA_X_CHANNEL_OPEN:
	case RTA_X_CHANNEL_MESSAGE:
		rc = thc_val_agg(THC_TUPLE, 2, p);
		if (!rc)
			rc = id_val(x == RTA_X_HANDLE_REQUEST ? 'r' : 'c', m->ref,
				    &p->of.agg.items[0]);
		return rc ? rc : thc_val_bytes(m->data, m->len, &p->of.agg.items[1]);
	case RTA_X_CHANNEL_CLOSE:
		rc = thc_val_agg(THC_TUPLE, 1, p);
		return rc ? rc : id_val('c', m->ref, &p->of.agg.items[0]);
	case RTA_X_CHILD_ERROR: {
		thc_val *it, rec = { 0 };
		rc = thc_val_agg(THC_TUPLE, 2, p);
		if (!rc)
			rc = str_val(m->sender, &p->of.agg.items[0]);
		if (!rc)
			rc = thc_val_agg(THC_RECORD, 2, &rec);
		if (rc) {
			thc_val_release(&rec);
			return rc;
		}
		it = rec.of.agg.items;
		rc = thc_val_case(THC_ENUM, (uint32_t)m->ref, NULL, &it[0]);
		if (!rc)
			rc = opt_bytes(true, m->data, m->len, &it[1]);
		p->of.agg.items[1] = rec;
		return rc;
	}
	case RTA_X_CHILD_EXIT:
		rc = thc_val_agg(THC_TUPLE, 2, p);
		if (!rc)
			rc = str_val(m->sender, &p->of.agg.items[0]);
		return rc ? rc : opt_bytes(m->flags & RTA_MSGF_HAS_DATA, m->data,
					   m->len, &p->of.agg.items[1]);
	case RTA_X_PROBE:
		rc = thc_val_agg(THC_TUPLE, 1, p);
		if (!rc) {
			p->of.agg.items[0].kind = THC_U64;
			p->of.agg.items[0].of.u = m->ref;
		}
		return rc;
	default:
		rc = thc_val_agg(THC_TUPLE, 1, p);
		return rc ? rc : str_val(m->sender, &p->of.agg.items[0]);
	}
}

/* The parent's spawn call waiting for this actor's init gets its answer:
 * ok(id) or err(reason). */
static void answer_spawner(rta_actor *a, bool ok, const char *text)
{
	uint64_t token = a->spawn_token;
	thc_val p = { 0 }, res = { 0 };
	if (!token || !a->parent)
		return;
	a->spawn_token = 0;
	if (thc_val_string(text, strlen(text), &p) ||
	    thc_val_case(THC_RESULT, ok ? 0 : 1, &p, &res)) {
		thc_val_release(&p);
		rta_complete_trap(a->parent, token, "out of memory");
		return;
	}
	if (!rta_complete(a->parent, token, &res))
		thc_val_release(&res);
}

/* Acknowledge m: its outcome is recorded. */
static void ack(rta_actor *a, rtm_msg *m)
{
	rtm_ack(&a->mb, m);
	rtr_busy_add(a->rt, -1);
}

/* Record why m is dropped, tell its sender if it waits, acknowledge. */
static void drop(rta_actor *a, rtm_msg *m, const char *why)
{
	th_cbor_enc e;
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 5);
	put_msg_head(&e, m);
	th_cbor_put_cstr(&e, why);
	rta_record(a, "message.dropped", &e, NULL);
	if (m->kind == RTM_REQUEST) {
		char text[300];
		snprintf(text, sizeof text, "actor %s: %s", a->id, why);
		rtq_answer(a->rt, NULL, m->ref, false, text, strlen(text));
	} else if (m->kind == RTM_CHANNEL_OPEN) {
		rtq_channel_answer(a->rt, m->ref, false, NULL, 0, false);
	}
}

void rta_call_flush(rta_actor *a)
{
	th_cbor_enc e;
	if (!a->call.active || a->call.recorded || !a->call.params)
		return;
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 3);
	th_cbor_put_cstr(&e, rta_export_full[a->call.x]);
	th_cbor_put_uint(&e, a->call.msg->id);
	th_cbor_put_raw(&e, a->call.params, a->call.params_len);
	rta_record(a, "export.call", &e, NULL);
	a->call.recorded = true;
}

static void call_release(rta_actor *a)
{
	rtr_buf_recycle(a->call.params, a->call.params_cap);
	a->call.params = NULL;
	a->call.params_len = 0;
	a->call.params_cap = 0;
	a->call.batching = false;
	a->call.recorded = false;
	a->call.active = false;
	a->call.msg = NULL;
}

enum { CALL_STARTED, CALL_NONE, CALL_FAILED };

/* Begin handling m: start the export (CALL_STARTED), or deal with the
 * message without a call (CALL_NONE: dropped, acknowledged), or fail. */
/* The health export a probe message names (data = its function name in
 * theater:simple/health), or -1. */
static int probe_export(rta_actor *a, const rtm_msg *m)
{
	char name[128];
	snprintf(name, sizeof name, "%.*s", (int)m->len, (const char *)m->data);
	return thc_component_find_export(a->code->comp,
					 rta_export_iface[RTA_X_PROBE], name);
}

/* A probe's call ended: answered (ok) or missed (why). Not committed and
 * not counted as a handled message. */
static void probe_end(rta_actor *a, bool ok, const char *why)
{
	rtm_msg *m = a->call.msg;
	uint64_t n = m->ref;
	call_release(a);
	ack(a, m);
	rhc_probe_done(a, n, ok, why);
}

static int start_call(rta_actor *a, rtm_msg *m)
{
	rta_export x = export_of(m);
	int idx = x == RTA_X_PROBE ? probe_export(a, m) : a->code->exports[x];
	thc_val args[2] = { { 0 } };
	th_cbor_enc e;
	th_err err;
	int rc;

	th_err_clear(&err);

	if (idx < 0) {
		char why[160];
		if (x == RTA_X_PROBE) {
			uint64_t n = m->ref;
			snprintf(why, sizeof why, "the actor does not export %s#%.*s",
				 rta_export_iface[x], (int)m->len,
				 (const char *)m->data);
			drop(a, m, why);
			ack(a, m);
			rhc_probe_done(a, n, false, why);
			return CALL_NONE;
		}
		if (x == RTA_X_CHILD_ERROR || x == RTA_X_CHILD_EXIT ||
		    x == RTA_X_CHILD_STOP) {
			/* A parent without supervisor-handlers: the notice is
			 * recorded (message.received) and that is all. */
			ack(a, m);
			return CALL_NONE;
		}
		snprintf(why, sizeof why, "the actor does not export %s",
			 rta_export_full[x]);
		drop(a, m, why);
		ack(a, m);
		return CALL_NONE;
	}
	if (x == RTA_X_HANDLE_REQUEST)
		rtq_mark_seen(a->rt, m->ref);

	/* The state and a send's message are lent to the call, not copied:
	 * only this turn's thread writes a->state (commit_state), and m
	 * outlives the call. Borrowed values are never released. */
	thc_val state = { .kind = THC_BYTES }, msg = { .kind = THC_BYTES };
	state.of.bytes.ptr = a->state;
	state.of.bytes.len = a->state_len;
	args[0].kind = THC_OPTION;
	args[0].of.var.disc = a->has_state;
	args[0].of.var.payload = a->has_state ? &state : NULL;
	bool lent = x == RTA_X_HANDLE_SEND;
	if (lent) {
		msg.of.bytes.ptr = m->data;
		msg.of.bytes.len = m->len;
		args[1].kind = THC_TUPLE;
		args[1].of.agg.items = &msg;
		args[1].of.agg.n = 1;
		rc = 0;
	} else {
		rc = build_params(a, x, m, &args[1]);
	}
	if (rc) {
		thc_val_release(&args[1]);
		a->call.active = true; /* so finalize drops m with the rest */
		a->call.msg = m;
		rta_fail(a, "out-of-memory", "out of memory building a call");
		return CALL_FAILED;
	}

	/* export.call is recorded lazily (rta_call_flush): before the
	 * handler's first host call, or never when it makes none - then
	 * export.result carries the params. */
	rtr_enc_init(&e);
	if (lent) { /* rtv_encode of tuple<list<u8>> as bytes, spelled out */
		th_cbor_put_array(&e, 1);
		th_cbor_put_bytes(&e, m->data, m->len);
	} else {
		rtv_encode(&e, &args[1]);
	}
	if (e.err) {
		rtr_enc_release(&e);
		if (!lent)
			thc_val_release(&args[1]);
		a->call.active = true;
		a->call.msg = m;
		rta_fail(a, "out-of-memory", "out of memory recording a call");
		return CALL_FAILED;
	}
	a->call.params = e.buf;
	a->call.params_len = e.len;
	a->call.params_cap = e.cap;
	a->call.recorded = false;
	a->call.active = true;
	a->call.batching = turn_of == a;
	a->call.x = x;
	a->call.msg = m;
	a->call.fuel_left = a->fuel_cap;
	/* Lowering may run guest code (cabi_realloc): bounded by the cap. */
	thw_exec_set_fuel(a->exec, a->fuel_cap, THW_FUEL_TRAP);
	rc = thc_call_start(a->inst, a->exec, idx, args, 2, &err);
	if (!lent)
		thc_val_release(&args[1]);
	if (rc) {
		rta_fail(a, "trap", err.msg);
		return CALL_FAILED;
	}
	return CALL_STARTED;
}

/* Bytes of an option<list<u8>> value; false for none. */
static bool opt_get(const thc_val *opt, const uint8_t **p, size_t *n,
		    uint8_t **tmp)
{
	const thc_val *b;
	*tmp = NULL;
	if (opt->kind != THC_OPTION || opt->of.var.disc != 1 || !opt->of.var.payload)
		return false;
	b = opt->of.var.payload;
	if (b->kind == THC_BYTES) {
		*p = b->of.bytes.ptr;
		*n = b->of.bytes.len;
		return true;
	}
	*tmp = th_malloc(b->of.agg.n ? b->of.agg.n : 1);
	if (!*tmp)
		return false;
	for (uint32_t i = 0; i < b->of.agg.n; i++)
		(*tmp)[i] = (uint8_t)b->of.agg.items[i].of.u;
	*p = *tmp;
	*n = b->of.agg.n;
	return true;
}

/* Make (has, p, n) the committed state. */
static int commit_bytes(rta_actor *a, bool has, const uint8_t *p, size_t n)
{
	uint8_t *copy = NULL;
	if (has && a->has_state && a->state && a->state_len == n) {
		/* Same size as the committed state (a counter, a fixed
		 * record): overwritten in place, no allocation. */
		pthread_mutex_lock(&a->lock);
		memcpy(a->state, p, n);
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	if (has) {
		if (!(copy = th_malloc(n ? n : 1)))
			return TH_ENOMEM;
		memcpy(copy, p, n);
	}
	pthread_mutex_lock(&a->lock);
	th_free(a->state);
	a->state = copy;
	a->state_len = has ? n : 0;
	a->has_state = has;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* The state in an export's ok payload: tuple<option<list<u8>>, ...>. */
static int commit_state(rta_actor *a, const thc_val *tuple)
{
	const thc_val *opt;
	const uint8_t *p = NULL;
	size_t n = 0;
	uint8_t *tmp;

	if (tuple->kind != THC_TUPLE || tuple->of.agg.n < 1)
		return TH_EINVAL;
	opt = &tuple->of.agg.items[0];
	if (opt->kind != THC_OPTION)
		return TH_EINVAL;
	if (opt->of.var.disc == 1 && opt->of.var.payload) {
		const thc_val *b = opt->of.var.payload;
		if (b->kind != THC_BYTES && b->kind != THC_LIST)
			return TH_EINVAL;
		if (!opt_get(opt, &p, &n, &tmp))
			return TH_ENOMEM;
		int rc = commit_bytes(a, true, p, n);
		th_free(tmp);
		return rc;
	}
	return commit_bytes(a, false, NULL, 0);
}

/* export.result's head: [export, msg-id, params or null (export.call
 * has them), ...] (the caller adds the result). */
static void result_head(rta_actor *a, th_cbor_enc *e)
{
	rtr_enc_init(e);
	th_cbor_put_array(e, 4);
	th_cbor_put_cstr(e, rta_export_full[a->call.x]);
	th_cbor_put_uint(e, a->call.msg->id);
	if (a->call.recorded)
		th_cbor_put_null(e);
	else
		th_cbor_put_raw(e, a->call.params, a->call.params_len);
}

/* Record export.result (e). The call's events are in the chain before
 * anything is answered. A handler that answers nobody (a send, a channel
 * message, a notice) leaves them in the turn's batch with the next
 * messages' events; its message is acknowledged when the batch is
 * appended. Fails the actor and returns nonzero if recording failed. */
static int record_result(rta_actor *a, th_cbor_enc *e, bool answers)
{
	int rc = rta_record(a, "export.result", e, NULL);
	if (a->call.batching && answers) {
		int frc = turn_flush(a);
		rc = rc ? rc : frc;
	}
	a->call.batching = false;
	a->call.recorded = true; /* the result holds the call now */
	if (rc)
		rta_fail(a, "chain", "recording a handler's result failed");
	return rc;
}

static void finish_tail(rta_actor *a, bool answers);

/* Whether export x answers someone (a spawner, a requester, an opener). */
static bool answers_of(rta_export x)
{
	return x == RTA_X_INIT || x == RTA_X_HANDLE_REQUEST || x == RTA_X_CHANNEL_OPEN;
}

/* finish_call for an export whose result is result<tuple<option<list<u8>>>,
 * string> (rtc_code.inplace: every handler but handle-request and
 * handle-channel-open), for an ok result read in place in the guest's
 * return area instead of lifted into values: the same record (the bytes
 * rtv_encode gives), the same commit, no allocation. Returns false, with
 * the call still open, for anything else (an error result, a malformed
 * one): the generic path lifts it, and traps where the ABI says so. */
static bool finish_inplace(rta_actor *a)
{
	thw_val res[THC_MAX_FLAT_RESULTS + 1];
	uint32_t nr;
	th_err err;
	th_cbor_enc e;
	uint8_t small[256], *big = NULL;
	const uint8_t *state = NULL;

	th_err_clear(&err);
	if (thc_call_raw(a->inst, a->exec, res, &nr, &err)) {
		rta_fail(a, "trap", err.msg); /* the call is over */
		return true;
	}
	/* the return area: result disc u8 @0; ok: option disc u8 @4, list
	 * ptr @8, len @12 (little-endian i32s) */
	if (nr != 1 || res[0].type != THW_I32 || (res[0].of.i32 & 3))
		return false;
	const uint8_t *r = thc_call_mem(a->inst, (uint32_t)res[0].of.i32, 16);
	if (!r || r[0] != 0 || r[4] > 1)
		return false;
	bool has = r[4] == 1;
	uint32_t n = 0;
	if (has) {
		uint32_t p = (uint32_t)r[8] | (uint32_t)r[9] << 8 |
			     (uint32_t)r[10] << 16 | (uint32_t)r[11] << 24;
		n = (uint32_t)r[12] | (uint32_t)r[13] << 8 |
		    (uint32_t)r[14] << 16 | (uint32_t)r[15] << 24;
		/* (a state too large to record: the generic path says what
		 * the lifting and recording of it say) */
		if (n > THX_DATA_MAX || !(state = thc_call_mem(a->inst, p, n)))
			return false;
		/* kept past post-return, which may free it */
		if (n > sizeof small && !(big = th_malloc(n))) {
			thc_call_end(a->inst, a->exec, &err);
			rta_fail(a, "out-of-memory", "out of memory committing a state");
			return true;
		}
		memcpy(big ? big : small, state, n);
		state = big ? big : small;
	}
	result_head(a, &e);
	th_cbor_put_array(&e, 2); /* ok(tuple(option(bytes))) as rtv_encode */
	th_cbor_put_uint(&e, 0);
	th_cbor_put_array(&e, 1);
	if (has) {
		th_cbor_put_array(&e, 1);
		th_cbor_put_bytes(&e, state, n);
	} else {
		th_cbor_put_null(&e);
	}
	if (thc_call_end(a->inst, a->exec, &err)) {
		rtr_enc_release(&e);
		th_free(big);
		rta_fail(a, "trap", err.msg);
		return true;
	}
	bool answers = answers_of(a->call.x);
	if (record_result(a, &e, answers)) {
		th_free(big);
		return true;
	}
	int rc = commit_bytes(a, has, state, n);
	th_free(big);
	if (rc) {
		rta_fail(a, "out-of-memory", "out of memory committing a state");
		return true;
	}
	finish_tail(a, answers);
	return true;
}

/* The export finished: record, commit, answer, acknowledge. */
static void finish_call(rta_actor *a)
{
	thr_runtime *rt = a->rt;
	rtm_msg *m = a->call.msg;
	rta_export x = a->call.x;
	thc_val res = { 0 };
	th_cbor_enc e;
	th_err err;
	const thc_val *ok;
	bool answers;
	int rc;

	th_err_clear(&err);
	/* (a probe names its export in the message, and commits nothing) */
	if (x != RTA_X_PROBE && a->code->inplace[x] && finish_inplace(a))
		return;
	rc = thc_call_finish(a->inst, a->exec, &res, &err);
	if (rc) {
		rta_fail(a, "trap", err.msg);
		return;
	}
	result_head(a, &e);
	rtv_encode(&e, &res);
	answers = answers_of(x);
	if (record_result(a, &e, answers)) {
		thc_val_release(&res);
		return;
	}

	if (res.kind != THC_RESULT) {
		thc_val_release(&res);
		rta_fail(a, "type-mismatch", "export returned no result");
		return;
	}
	if (res.of.var.disc == 1) {
		char reason[TH_ERR_MSG_MAX];
		const thc_val *s = res.of.var.payload;
		snprintf(reason, sizeof reason, "%s returned an error: %.*s",
			 rta_export_name[x],
			 s && s->kind == THC_STRING ? (int)s->of.str.len : 0,
			 s && s->kind == THC_STRING ? s->of.str.ptr : "");
		thc_val_release(&res);
		if (x == RTA_X_PROBE)
			probe_end(a, false, reason);
		else
			rta_fail(a, "handler-error", reason);
		return;
	}
	if (x == RTA_X_PROBE) {
		thc_val_release(&res);
		probe_end(a, true, NULL);
		return;
	}
	ok = res.of.var.payload;
	if (!ok || commit_state(a, ok)) {
		thc_val_release(&res);
		rta_fail(a, "type-mismatch", "export result is not (state, ...)");
		return;
	}

	if (x == RTA_X_HANDLE_REQUEST && ok->of.agg.n >= 2 &&
	    ok->of.agg.items[1].kind == THC_TUPLE &&
	    ok->of.agg.items[1].of.agg.n == 1) {
		const uint8_t *p = NULL;
		size_t n = 0;
		uint8_t *tmp;
		if (opt_get(&ok->of.agg.items[1].of.agg.items[0], &p, &n, &tmp)) {
			rtr_enc_init(&e);
			th_cbor_put_array(&e, 3);
			th_cbor_put_uint(&e, m->id);
			th_cbor_put_uint(&e, m->ref);
			th_cbor_put_bytes(&e, p, n);
			rta_record(a, "message.response", &e, NULL);
			rtq_answer(rt, NULL, m->ref, true, p, n);
			th_free(tmp);
		}
	} else if (x == RTA_X_CHANNEL_OPEN && ok->of.agg.n >= 2 &&
		   ok->of.agg.items[1].kind == THC_TUPLE &&
		   ok->of.agg.items[1].of.agg.n == 1 &&
		   ok->of.agg.items[1].of.agg.items[0].kind == THC_RECORD) {
		const thc_val *acc = &ok->of.agg.items[1].of.agg.items[0];
		const uint8_t *p = NULL;
		size_t n = 0;
		uint8_t *tmp = NULL;
		bool accepted = acc->of.agg.n == 2 &&
			acc->of.agg.items[0].kind == THC_BOOL &&
			acc->of.agg.items[0].of.b;
		bool has = acc->of.agg.n == 2 &&
			opt_get(&acc->of.agg.items[1], &p, &n, &tmp);
		rtq_channel_answer(rt, m->ref, accepted, p, n, has);
		th_free(tmp);
	}
	thc_val_release(&res);
	finish_tail(a, answers);
}

/* After the result is recorded and the state committed: count, announce a
 * spawn, acknowledge (with the batch when it answers nobody). */
static void finish_tail(rta_actor *a, bool answers)
{
	thr_runtime *rt = a->rt;
	rtm_msg *m = a->call.msg;
	rta_export x = a->call.x;
	th_cbor_enc e;

	call_release(a);
	th_own_add(&a->handled, 1); /* only the actor's turn writes it */
	rts_count(rt->sched, RTS_C_MESSAGES, 1);
	if (x == RTA_X_INIT) {
		/* Recorded before anyone waiting for the spawn is told. */
		rtr_enc_init(&e);
		th_cbor_put_array(&e, 2);
		th_cbor_put_cstr(&e, a->spec->m->name);
		th_cbor_put_cstr(&e, a->code->hex);
		rta_record(a, "actor.created", &e, NULL);
		rtr_runtime_event(rt, "actor.created", a->id, a->spec->m->name);
		set_life(a, RTA_READY);
		rts_task_set_low(&a->task, false); /* recovered, if it was failing */
		answer_spawner(a, true, a->id);
	}
	if (turn_of == a && !answers) {
		if (turn_acks.n == TURN_ACKS)
			turn_flush(a);
		turn_acks.m[turn_acks.n++] = m;
	} else {
		ack(a, m);
	}
	rsv_handled(a);
}

/* ---- running ---------------------------------------------------------------- */

/* Apply the answer of a suspended host call. Returns 1 while it is still
 * pending, 0 when the exec can run again, -1 when the actor failed. */
static int resume_pending(rta_actor *a)
{
	thc_val result = { 0 };
	char *trap;
	th_cbor_enc e;
	th_err err = { 0 };
	int rc;

	pthread_mutex_lock(&a->lock);
	if (!a->pend.done) {
		pthread_mutex_unlock(&a->lock);
		return 1;
	}
	if (a->pend.retry) {
		a->pend.done = false;
		pthread_mutex_unlock(&a->lock);
		if (a->pend.retry(a) == 1)
			return 1;
		pthread_mutex_lock(&a->lock);
	}
	result = a->pend.result;
	memset(&a->pend.result, 0, sizeof a->pend.result);
	trap = a->pend.trap;
	a->pend.trap = NULL;
	a->pend.armed = false;
	a->pend.done = false;
	a->pend.retry = NULL;
	void *ctx = a->pend.ctx;
	a->pend.ctx = NULL;
	pthread_mutex_unlock(&a->lock);
	if (ctx && a->pend.ctx_free)
		a->pend.ctx_free(ctx);
	a->pend.ctx_free = NULL;

	/* The host call, with its full arguments and result. */
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 2);
	th_cbor_put_raw(&e, a->pend.args, a->pend.args_len);
	if (trap) {
		th_cbor_put_map(&e, 1);
		th_cbor_put_cstr(&e, "trap");
		th_cbor_put_cstr(&e, trap);
	} else if (result.kind) {
		rtv_encode(&e, &result);
	} else {
		th_cbor_put_null(&e);
	}
	rta_record(a, a->pend.event, &e, NULL);
	th_free(a->pend.args);
	a->pend.args = NULL;
	a->pend.args_len = 0;
	a->pend.event = NULL;

	rc = thc_hostcall_complete(a->inst, a->exec, result.kind ? &result : NULL,
				   trap, &err);
	th_free(trap);
	if (rc) {
		thc_val_release(&result);
		rta_fail(a, "trap", err.msg);
		return -1;
	}
	return 0;
}

static const char *trap_kind(const thw_trap *t)
{
	switch (t ? t->code : THW_TRAP_NONE) {
	case THW_TRAP_OUT_OF_FUEL: return "out-of-fuel";
	case THW_TRAP_STACK_EXHAUSTED: return "stack-exhausted";
	case THW_TRAP_OOM: return "out-of-memory";
	default: return "trap";
	}
}

static rts_result actor_turn(rta_actor *a);

/* A turn, with the batch of its recorded events flushed at its end. */
static rts_result actor_run(rts_task *t, int worker)
{
	rta_actor *a = (rta_actor *)t, *outer = turn_of;
	TH_UNUSED(worker);
	if (outer)
		turn_flush(outer); /* defensive: a turn run inside another's */
	turn_of = a;
	rts_result r = actor_turn(a);
	turn_flush(a);
	turn_of = outer;
	return r;
}

/* The mailbox ran dry in a busy turn: rather than go idle (and have the
 * next sender wake the actor through the scheduler: a queue push, often a
 * futex wake on another CPU), wait a few microseconds for the next
 * message, as long as nothing else waits for this worker. The turn's
 * batch is appended first, so its messages are acknowledged (a sender
 * waiting for room goes on). Every 16th round yields the CPU instead: the
 * sender may be a thread queued behind this one on the same CPU (three
 * busy threads on two CPUs: sender, worker, hasher), and spinning then
 * only delays the message waited for (Counting: about 0.9M -> 1.2M
 * msgs/s, CPU per message 1.8 -> 1.35 us). True when a message may have
 * come. */
#define LINGER_ROUNDS 64
static bool linger(rta_actor *a)
{
	rts_sched *s = a->rt->sched;
	if (rts_others_waiting(s))
		return false;
	if (turn_flush(a))
		return false;
	for (int i = 0; i < LINGER_ROUNDS; i++) {
		if (rtm_maybe_pending(&a->mb))
			return true;
		if (rts_others_waiting(s) || atomic_load(&a->stop_req))
			return false;
		if (i % 16 == 15) {
			/* the sender may be waiting for this very CPU */
			sched_yield();
			continue;
		}
		for (int k = 0; k < 8; k++)
			th_cpu_relax();
	}
	return false;
}

static rts_result actor_turn(rta_actor *a)
{
	thr_runtime *rt = a->rt;
	uint64_t slice = rt->opt.fuel_slice;
	uint32_t taken = 0;

	if (atomic_load(&a->life) >= RTA_STOPPED) {
		rsv_turn(a); /* a restart planned for it alone */
		return RTS_IDLE;
	}
	if (a->fail_kind) {
		/* The failure rta_fail detected, carried out on this turn from
		 * the recovery lane. */
		const char *kind = a->fail_kind;
		char *why = a->fail_reason;
		a->fail_kind = NULL;
		a->fail_reason = NULL;
		finalize(a, RTA_FAILED, kind, why);
		a->fail_ns = 0;
		th_free(why);
		return RTS_IDLE;
	}
	for (;;) {
		if (atomic_load(&a->stop_req)) {
			finalize(a, RTA_STOPPED, NULL, NULL);
			return RTS_IDLE;
		}
		if (!a->call.active) {
			rtm_msg *m;
			if (taken >= rt->opt.batch || slice == 0)
				return rtm_pending(&a->mb) ? RTS_YIELD : RTS_IDLE;
			/* After the first message, an empty mailbox is seen
			 * without its lock: a message pushed meanwhile wakes
			 * the task, and the scheduler runs the turn again
			 * (sched.c: a wake is never lost). */
			if (!((taken == 0 || rtm_maybe_pending(&a->mb)) &&
			      rtm_take(&a->mb, &m, 1)) &&
			    (!taken || !linger(a) || !rtm_take(&a->mb, &m, 1)))
				return RTS_IDLE;
			taken++;
			int r = start_call(a, m);
			if (r == CALL_FAILED)
				return RTS_IDLE;
			if (r == CALL_NONE)
				continue;
		} else if (a->pend.armed) {
			int r = resume_pending(a);
			if (r > 0)
				return RTS_PARKED;
			if (r < 0)
				return RTS_IDLE;
		}

		/* Run with the smaller of the turn's slice and the message's
		 * remaining cap; only the cap traps. */
		uint64_t give = slice;
		thw_fuel_mode mode = THW_FUEL_YIELD;
		if (a->call.fuel_left <= slice) {
			give = a->call.fuel_left;
			mode = THW_FUEL_TRAP;
		}
		thw_exec_set_fuel(a->exec, give, mode);
		thw_state st = thw_exec_run(a->exec);
		uint64_t left = thw_exec_fuel(a->exec);
		uint64_t used = left <= give ? give - left : give;
		slice -= used < slice ? used : slice;
		if (a->call.fuel_left != UINT64_MAX)
			a->call.fuel_left -= used < a->call.fuel_left ? used : a->call.fuel_left;

		switch (st) {
		case THW_STATE_DONE:
			if (atomic_load(&a->terminate_req)) {
				/* thr_terminate: the result is discarded. */
				finalize(a, RTA_STOPPED, NULL, NULL);
				return RTS_IDLE;
			}
			finish_call(a);
			if (atomic_load(&a->life) >= RTA_STOPPED || a->fail_kind)
				return RTS_IDLE;
			continue;
		case THW_STATE_YIELDED:
			return RTS_YIELD;
		case THW_STATE_PENDING:
			if (!a->pend.armed) {
				/* Defensive: a host function answered PENDING
				 * without suspending through the runtime. */
				rta_fail(a, "internal", "host call pending without a completer");
				return RTS_IDLE;
			}
			continue; /* resume_pending parks it if not answered */
		case THW_STATE_TRAPPED: {
			const thw_trap *tr = thw_exec_trap(a->exec);
			char reason[TH_ERR_MSG_MAX];
			snprintf(reason, sizeof reason, "%s trapped: %s",
				 rta_export_name[a->call.x],
				 tr && tr->message ? tr->message : "trap");
			if (a->call.x == RTA_X_PROBE) {
				/* A missed probe, not a failure: the call is
				 * ended and the actor goes on. */
				thc_val none = { 0 };
				th_err terr = { 0 };
				/* Its export.call is in the chain even when it made
				 * no host call: a replay re-runs it (the trap may
				 * have changed the instance's memory). */
				rta_call_flush(a);
				thc_call_finish(a->inst, a->exec, &none, &terr);
				probe_end(a, false, reason);
				continue;
			}
			rta_fail(a, trap_kind(tr), reason);
			return RTS_IDLE;
		}
		default:
			rta_fail(a, "internal", "unexpected engine state");
			return RTS_IDLE;
		}
	}
}

/* ---- stopping and failing -------------------------------------------------- */

void rta_request_stop(rta_actor *a, bool external)
{
	bool count = false;
	pthread_mutex_lock(&a->lock);
	if (!atomic_load(&a->stop_req) && external)
		a->stop_external = true;
	atomic_store(&a->stop_req, true);
	/* Until the actor has stopped, the stop is work in progress (a
	 * quiescent runtime has carried it out). */
	if (!a->stop_counted && !a->ending &&
	    atomic_load(&a->life) < RTA_STOPPED) {
		a->stop_counted = true;
		count = true;
	}
	pthread_mutex_unlock(&a->lock);
	if (count)
		rtr_busy_add(a->rt, 1);
	rta_wake(a);
}

void rta_request_terminate(rta_actor *a)
{
	atomic_store(&a->terminate_req, true);
	rta_request_stop(a, true);
}

void rta_fail(rta_actor *a, const char *kind, const char *reason)
{
	/* Detected now; carried out (finalize: recording, freeing the
	 * instance, the supervision policy) on the actor's next turn, taken
	 * from the scheduler's recovery lane: a burst of failures does not
	 * hold up ready actors (docs/supervision.md). */
	if (!a->fail_kind && (a->fail_reason = th_strdup(reason ? reason : ""))) {
		a->fail_kind = kind;
		a->fail_ns = th_now_ns();
		rts_task_set_low(&a->task, true);
		rta_wake(a);
		return;
	}
	finalize(a, RTA_FAILED, kind, reason);
}

/* The backtrace of the engine trap that ended the call, for replay to
 * reproduce: [[func-index, code-offset, name | null], ...], innermost
 * first; empty when the failure was not a trap of the engine. */
static void put_backtrace(th_cbor_enc *e, const thw_exec *x)
{
	const thw_trap *t = x && thw_exec_state(x) == THW_STATE_TRAPPED
		? thw_exec_trap(x) : NULL;
	uint32_t n = t ? t->nframes : 0;
	if (n > RTA_BACKTRACE_MAX)
		n = RTA_BACKTRACE_MAX;
	th_cbor_put_array(e, n);
	for (uint32_t i = 0; i < n; i++) {
		th_cbor_put_array(e, 3);
		th_cbor_put_uint(e, t->frames[i].func_index);
		th_cbor_put_uint(e, t->frames[i].code_offset);
		if (t->frames[i].func_name)
			th_cbor_put_cstr(e, t->frames[i].func_name);
		else
			th_cbor_put_null(e);
	}
}

/* End the actor: the one place where stops and failures are carried out
 * and reported (the supervision layer hooks its policies here). */
static void finalize(rta_actor *a, int life, const char *kind,
		     const char *reason)
{
	thr_runtime *rt = a->rt;
	int was = atomic_load(&a->life);
	const char *what;
	rtm_msg *list;
	th_cbor_enc e;
	bool external, has_exit;
	const char *stopped_by;
	uint8_t *exit_data;
	size_t exit_len;
	int64_t dropped = 0;
	int keep;

	if (was >= RTA_STOPPED)
		return;
	rsv_adjust_end(a, &life, &kind, &reason);
	what = life == RTA_FAILED ? "failed" : "stopped";
	abandon_pend(a);
	if (turn_of == a)
		turn_flush(a); /* what the turn recorded comes first */
	a->call.batching = false;
	rta_call_flush(a); /* the call that failed or was cut short */
	call_release(a);   /* its message is in flight: dropped below */

	pthread_mutex_lock(&a->lock);
	a->ending = true;
	if (a->stop_counted) {
		a->stop_counted = false;
		dropped++;
	}
	external = a->stop_external;
	stopped_by = atomic_load(&a->terminate_req) ? "terminated"
		: external ? "external" : "shutdown";
	has_exit = a->exit_has_data;
	exit_data = a->exit_data;
	exit_len = a->exit_len;
	a->exit_data = NULL;
	if (life == RTA_FAILED && !a->reason)
		a->reason = th_strdup(reason ? reason : "failed");
	pthread_mutex_unlock(&a->lock);

	/* The failure (or stop) is recorded first, then what it implies. */
	rtr_enc_init(&e);
	if (life == RTA_FAILED) {
		th_cbor_put_array(&e, 3);
		th_cbor_put_cstr(&e, kind ? kind : "error");
		th_cbor_put_cstr(&e, reason ? reason : "");
		put_backtrace(&e, a->exec);
		rta_record(a, "actor.failed", &e, reason);
		rtr_runtime_event(rt, "actor.failed", a->id, reason);
		atomic_fetch_add(&rt->n_failed, 1);
	} else {
		th_cbor_put_array(&e, 2);
		th_cbor_put_cstr(&e, stopped_by);
		if (has_exit)
			th_cbor_put_bytes(&e, exit_data, exit_len);
		else
			th_cbor_put_null(&e);
		rta_record(a, "actor.stopped", &e, NULL);
		rtr_runtime_event(rt, "actor.stopped", a->id,
				  stopped_by);
		atomic_fetch_add(&rt->n_stopped, 1);
	}

	/* No new messages; everything queued or in flight is dropped, and
	 * whoever waits for an answer from this actor gets one. */
	keep = rsv_keep_mailbox(a, was, life, external);
	if (keep == RSV_MB_KEEP) {
		/* Kept for the restart the policy will make (redelivery). */
		rtm_requeue_inflight(&a->mb);
		list = NULL;
	} else {
		/* A restart follows (the policy's with mailbox = "discard", or
		 * a restarter's): emptied but open, so that a sender waiting
		 * for room reaches the restarted actor (same id, same mailbox)
		 * instead of being told it has stopped. */
		if (keep == RSV_MB_CLOSE && !atomic_load(&a->restart_pending))
			rtm_close(&a->mb);
		list = rtm_drain(&a->mb);
	}
	while (list) {
		rtm_msg *m = list;
		list = m->next;
		drop(a, m, life == RTA_FAILED ? "actor failed" : "actor stopped");
		rtm_msg_free(m);
		dropped++;
	}
	rtq_actor_gone(rt, a, what);

	thc_instance_free(a->inst);
	a->inst = NULL;
	thw_exec_free(a->exec);
	a->exec = NULL;
	thw_realm_free(a->realm);
	a->realm = NULL;
	thw_wasi_free(a->wasi);
	a->wasi = NULL;

	/* The supervision policy decides while the actor is not yet final, so
	 * that a runtime being freed (which waits for final lives) never
	 * finds it still at work. */
	rsv_on_end(a, was, life, external, kind, reason);

	/* Final only once all of the above is recorded; the dropped messages
	 * stop counting as work at the very end (thr_quiesce). */
	set_life(a, life);
	if (was == RTA_STARTING) {
		char text[TH_ERR_MSG_MAX + 64];
		snprintf(text, sizeof text, "actor %s %s during init: %s", a->id,
			 what, reason ? reason : (external ? "stopped" : "shut down"));
		answer_spawner(a, false, text);
	}

	/* Tell the parent (its supervisor-handlers), unless it is the one
	 * still waiting for this actor's init (it gets the error itself). */
	if (a->parent && was == RTA_READY) {
		if (life == RTA_FAILED)
			send_control(a->parent, RTA_CTL_CHILD_ERROR, a->id, reason,
				     reason ? strlen(reason) : 0, WIT_ERR_INTERNAL, 0);
		else if (external)
			send_control(a->parent, RTA_CTL_CHILD_STOP, a->id, NULL, 0, 0, 0);
		else
			send_control(a->parent, RTA_CTL_CHILD_EXIT, a->id, exit_data,
				     has_exit ? exit_len : 0, 0,
				     has_exit ? RTA_MSGF_HAS_DATA : 0);
	}
	th_free(exit_data);

	/* Children end with their parent. */
	pthread_mutex_lock(&a->lock);
	for (uint32_t i = 0; i < a->nchildren; i++)
		rta_request_stop(a->children[i], true);
	pthread_mutex_unlock(&a->lock);

	/* Last: the notices above are queued work already, so a quiescent
	 * runtime has handled them. */
	rtr_busy_add(rt, -dropped);
}

/* A restart whose instantiation failed: the actor stays failed. */
static void finalize_failed_restart(rta_actor *a, th_err *err)
{
	th_cbor_enc e;
	const char *why = err && err->msg[0] ? err->msg : "restart failed";
	thc_instance_free(a->inst);
	a->inst = NULL;
	thw_exec_free(a->exec);
	a->exec = NULL;
	thw_realm_free(a->realm);
	a->realm = NULL;
	thw_wasi_free(a->wasi);
	a->wasi = NULL;
	pthread_mutex_lock(&a->lock);
	th_free(a->reason);
	a->reason = th_strdup(why);
	pthread_mutex_unlock(&a->lock);
	rtr_enc_init(&e);
	th_cbor_put_array(&e, 2);
	th_cbor_put_cstr(&e, "instantiate");
	th_cbor_put_cstr(&e, why);
	rta_record(a, "actor.failed", &e, why);
	rtr_runtime_event(a->rt, "actor.failed", a->id, why);
}
