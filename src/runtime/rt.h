/*
 * rt.h (internal) - the runtime's shared structures: the runtime itself,
 * actors, their calls and suspensions. Included by the files of src/runtime and by
 * the handlers (src/handlers/). Prefixes: rtr_ runtime-wide helpers and
 * recording, rta_ actors (actor.c), rtg_ registry, rtc_ component and
 * manifest cache, rtq_ requests and channels, rto_ blocking-work pool.
 *
 * Lifetime rule that keeps the rest simple: an rta_actor struct is never
 * freed before the runtime. When an actor stops or fails, its turn frees
 * the heavy parts (realm, instance, exec, queued messages) and the small
 * struct stays as a tombstone, so any thread holding an actor pointer
 * (registry lookups, parents, requests, timers) can always look at its
 * life state under its lock.
 */
#ifndef TH_RUNTIME_RT_H
#define TH_RUNTIME_RT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/base.h"
#include "base/cbor.h"
#include "runtime/mailbox.h"
#include "runtime/sched.h"
#include "runtime/spec.h"
#include "runtime/timer.h"
#include "theater/chain.h"
#include "theater/component.h"
#include "theater/manifest.h"
#include "theater/runtime.h"
#include "theater/store.h"
#include "theater/wasm.h"

typedef struct rta_actor rta_actor;
typedef struct rtg_registry rtg_registry;
typedef struct rtc_cache rtc_cache;
typedef struct rtq_table rtq_table;
typedef struct rto_pool rto_pool;

/* ---- The world's exports the runtime calls ------------------------------ */

typedef enum rta_export {
	RTA_X_INIT = 0,
	RTA_X_HANDLE_SEND,
	RTA_X_HANDLE_REQUEST,
	RTA_X_CHANNEL_OPEN,
	RTA_X_CHANNEL_MESSAGE,
	RTA_X_CHANNEL_CLOSE,
	RTA_X_CHILD_ERROR,
	RTA_X_CHILD_EXIT,
	RTA_X_CHILD_STOP,
	RTA_X_PROBE,            /* theater:simple/health (health.c)     */
	RTA_NX
} rta_export;

/* "theater:simple/actor" and "init", ... */
extern const char *const rta_export_iface[RTA_NX];
extern const char *const rta_export_name[RTA_NX];
/* "theater:simple/actor.init", ... (event data names the export) */
extern const char *const rta_export_full[RTA_NX];

/* ---- Component cache ---------------------------------------------------- */

/* A loaded component, shared by every actor of the same hash; lives until
 * the runtime is freed. */
typedef struct rtc_code {
	ths_hash hash;
	char hex[THS_HEX_LEN + 1];
	size_t size;
	thc_component *comp;
	int exports[RTA_NX]; /* thc export index, -1 when not exported */
	bool needs_wasi;     /* learnt at the first instantiation      */
	/* export x returns result<tuple<option<list<u8>>>, string>: its ok
	 * results are read in place (actor.c, finish_inplace) */
	bool inplace[RTA_NX];
} rtc_code;

/* ---- Actors --------------------------------------------------------------- */

typedef enum rta_life {
	RTA_STARTING = 0, /* registered, init queued or running      */
	RTA_READY = 1,    /* handling messages                        */
	RTA_STOPPED = 2,  /* final                                    */
	RTA_FAILED = 3    /* final                                    */
} rta_life;

/* Control messages (rtm kind RTM_CONTROL; the flag says which). */
enum {
	RTA_CTL_INIT = 1,
	RTA_CTL_CHILD_ERROR = 2,  /* sender = child id, data = reason      */
	RTA_CTL_CHILD_EXIT = 3,   /* sender = child id, data = exit data   */
	RTA_CTL_CHILD_STOP = 4,   /* sender = child id                     */
	RTA_CTL_PROBE = 5         /* ref = probe number, data = export name */
};
/* rtm_msg.flags bit for a CHILD_EXIT carrying data (option some). */
#define RTA_MSGF_HAS_DATA 0x100
/* rtm_msg.flags bit: redelivered after a resume (resume.c); rta_deliver
 * keeps its id and records message.redelivered. */
#define RTA_MSGF_REDELIVERED 0x200
/* rtm_msg.flags bit: rta_deliver queues the message past a full mailbox
 * (rtm_reserve_past), for the two channel messages whose sender cannot wait
 * for room (request.c): the message of a channel-accept to the opener (the
 * opener cannot wait for room in its own mailbox, the acceptor's turn is
 * over: one per open-channel call the opener made) and the channel-close
 * of a party that has ended (one per channel). Neither lets a sender fill
 * a mailbox past capacity at will. */
#define RTA_MSGF_PAST_FULL 0x400

/* A suspended host call. The completer (any thread) fills result or trap
 * under the actor's lock, checking token, then wakes the actor; the
 * actor's own turn applies it. retry, when set, is called by the turn
 * instead (backpressure: try the send again); it returns 0 once it has
 * put the answer in result, 1 to stay suspended. */
typedef struct rta_pend {
	bool armed;             /* a host call is suspended               */
	bool done;              /* result or trap is ready (under lock)   */
	uint64_t token;         /* identifies this suspension             */
	thc_val result;
	char *trap;             /* owned                                  */
	const char *event;      /* "host.<iface>.<fn>" to record          */
	uint8_t *args;          /* CBOR of the arguments (owned)          */
	size_t args_len;
	int (*retry)(rta_actor *a);
	void *ctx;              /* for retry and the handler              */
	void (*ctx_free)(void *ctx);
} rta_pend;

/* The export call in progress (owned by the actor's turn). */
typedef struct rta_call {
	bool active;
	rta_export x;
	rtm_msg *msg;           /* the message being handled (in flight)  */
	uint64_t fuel_left;     /* per-message cap remaining              */
	uint8_t *params;        /* CBOR of the params (owned)             */
	size_t params_len;
	size_t params_cap;      /* of the params buffer (recycled)        */
	bool recorded;          /* export.call is in the chain            */
	bool batching;          /* the call's events go to the turn's
				 * batch (until its export.result)        */
} rta_call;

struct rta_actor {
	rts_task task;               /* scheduler link (first)           */
	thr_runtime *rt;
	char id[THR_ID_LEN + 1];
	rta_actor *parent;           /* NULL for top-level actors        */
	uint64_t spawn_token;        /* parent's spawn call waiting for
				      * init (0 = none)                  */
	uint64_t seq;                /* spawn order                      */

	/* Set at spawn, read-only afterwards. */
	rtf_spec *spec;
	rtc_code *code;
	thm_perms perm;              /* effective permissions            */
	uint64_t fuel_cap;           /* per message; UINT64_MAX = none   */
	uint32_t max_msg;            /* bytes                            */
	uint32_t request_timeout_ms;
	thx_chain *chain;

	/* Owned by the actor's turn (one worker at a time). */
	rta_actor *last_to;          /* last actor it sent to by id      */
	thw_realm *realm;
	thc_instance *inst;
	thw_exec *exec;
	struct thw_wasi *wasi;       /* when the module imports WASI     */
	rta_call call;
	uint32_t turn_msgs;
	rtt_timer timer;             /* timing.sleep / deadline          */
	uint64_t timer_token;        /* the suspension the timer answers */
	uint64_t rng[4];             /* seeded random stream             */
	bool rng_init;
	rtm_waiter room;             /* waiting for room in a mailbox    */
	rta_actor *room_target;
	const char *fail_kind;       /* a failure rta_fail detected, for */
	char *fail_reason;           /* the next turn (owned); static kind */
	uint64_t fail_ns;            /* when it was detected             */

	rtm_mailbox mb;

	/* Under lock. */
	pthread_mutex_t lock;
	_Atomic int life;            /* rta_life                         */
	_Atomic bool stop_req;
	_Atomic bool terminate_req;  /* thr_terminate: discard the call  */
	_Atomic bool restart_pending; /* a restarter (thr_restart,
				      * restart-child) stops it and then
				      * calls rta_reincarnate: its stop
				      * leaves the mailbox open (emptied) */
	bool stop_external;          /* thr_stop / stop-child (vs shutdown) */
	bool stop_counted;           /* the pending stop counts as busy  */
	bool ending;                 /* finalize has taken the count     */
	bool exit_has_data;
	uint8_t *exit_data;          /* runtime.shutdown(data)           */
	size_t exit_len;
	rta_pend pend;
	uint8_t *state;              /* last committed state             */
	size_t state_len;
	bool has_state;
	char *reason;                /* failure reason                   */
	rta_actor **children;
	uint32_t nchildren, capchildren;
	_Atomic uint64_t handled;

	struct rsv_node *sv;         /* supervision (supervise.h); NULL = none */
};

/* ---- Runtime --------------------------------------------------------------- */

struct thr_runtime {
	thr_options opt;
	char *home;
	ths_store *store;
	thx_store *chains;
	thx_chain *rchain;          /* the runtime's own chain            */
	rts_sched *sched;
	rtt_service *timers;
	rto_pool *io;
	rtg_registry *reg;
	rtc_cache *cache;
	rtq_table *rq;
	struct rtx_table *ext;      /* external channel parties          */
	thc_host_import *imports;   /* every import of the world         */
	size_t nimports;
	int devnull;                /* WASI stdio of every actor         */

	_Atomic uint64_t next_msg;  /* message ids                        */
	_Atomic uint64_t next_token;

	/* Life changes and quiescence (external waiters only). */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	_Atomic int64_t busy;       /* queued messages + calls in progress */

	_Atomic uint64_t n_spawned, n_stopped, n_failed, n_denied;
	/* messages handled and host calls: rts_count (sched.h) */
	_Atomic bool closing;
};

/* ---- Recording (record.c) ---------------------------------------------- */

/* Append one event to c. Failures to record are reported (a runtime that
 * cannot record must not pretend it did): returns the thx error. Event
 * types here and in rtr_batch_add are static strings (literals, handler
 * tables): the chain knows them by address. rtr_event_enc_dyn is for a
 * type built on the fly. The actor given to rtr_event_enc(_dyn) and
 * rtr_batch_add is known by address too: an actor's own id (a->id, which
 * never changes or moves while its chain is appended to; resumed actors
 * that share a chain share its id) or a literal. */
int rtr_event(thx_chain *c, const char *actor, const char *type,
	      const void *data, size_t len, const char *desc, th_err *err);
/* Append an event built by an encoder (released here). */
int rtr_event_enc(thx_chain *c, const char *actor, const char *type,
		  th_cbor_enc *e, const char *desc);
int rtr_event_enc_dyn(thx_chain *c, const char *actor, const char *type,
		      th_cbor_enc *e);
/* An encoder on a recycled buffer (record.c's per-thread pool); give the
 * buffer back with rtr_enc_release, or to rtr_event_enc / rtr_batch_add.
 * A heap buffer taken from an encoder goes back with rtr_buf_recycle. */
void rtr_enc_init(th_cbor_enc *e);
void rtr_enc_release(th_cbor_enc *e);
void rtr_buf_recycle(uint8_t *buf, size_t cap);
/* The calling thread's batch of events for one chain (rta_record uses it
 * during a turn): add takes the encoder's buffer and copies the type unless
 * it is static (the batch for another chain is flushed first; actor must
 * outlive the batch);
 * flush appends everything in one thx_append_batch and returns its error,
 * or the error of an append that add made (when full) since the last
 * flush: a caller acknowledging what the batch held knows it is recorded. */
int rtr_batch_add(thx_chain *c, const char *actor, const char *type,
		  bool type_static, th_cbor_enc *e);
int rtr_batch_flush(void);
/* The runtime chain: one event about actor id. */
void rtr_runtime_event(thr_runtime *rt, const char *type, const char *id,
		       const char *detail);

/* Busy accounting for thr_quiesce. */
void rtr_busy_add(thr_runtime *rt, int64_t n);
/* Broadcast to external waiters (life changes). */
void rtr_notify(thr_runtime *rt);

/* ---- Registry (registry.c) ------------------------------------------- */

int rtg_new(rtg_registry **out);
void rtg_free(rtg_registry *g); /* does not free the actors */
/* Insert a; TH_EEXIST on a duplicate id. Gives it its spawn seq. */
int rtg_add(rtg_registry *g, rta_actor *a);
rta_actor *rtg_find(rtg_registry *g, const char *id);
/* Snapshot of every actor in spawn order; *out freed with th_free. */
int rtg_all(rtg_registry *g, rta_actor ***out, size_t *n);

/* ---- Component and manifest cache (cache.c) --------------------------- */

int rtc_new(rtc_cache **out);
void rtc_free(rtc_cache *c, ths_store *store);
/* The manifest named by opt (path or text), parsed once per distinct
 * text. *out stays valid until rtc_free. */
int rtc_spec(thr_runtime *rt, const char *path, const char *text,
	     const char *base_dir, rtf_spec **out, th_err *err);
/* rtc_spec with name naming text in messages (NULL = "<string>"). */
int rtc_spec_named(thr_runtime *rt, const char *path, const char *text,
		   const char *name, const char *base_dir, rtf_spec **out,
		   th_err *err);
/* The component a spec names: put in the Store and pinned (path), or taken
 * from it (hash), loaded once per hash. *cached tells whether it was
 * already loaded. */
int rtc_code_get(thr_runtime *rt, const rtf_spec *spec, rtc_code **out,
		 bool *cached, th_err *err);

/* ---- Actors (actor.c) ------------------------------------------------- */

/* Build, record and register an actor; queue its init. On success *out is
 * registered and runnable. parent may be NULL; with spawn_token, the
 * parent's suspended call is completed when init ends (ok(id) or the
 * error). When the actor got an id
 * before failing, *out is set too (failed, registered, recorded). */
int rta_spawn(thr_runtime *rt, rtf_spec *spec, rta_actor *parent,
	      uint64_t spawn_token, const uint8_t *init, size_t init_len,
	      bool has_init, rta_actor **out, th_err *err);
/* rta_spawn with flags: RTA_SPAWN_INIT_HERE runs the actor's first turn
 * (init) on the calling thread before returning, when that thread is not a
 * worker (a caller that would only wait for init). */
#define RTA_SPAWN_INIT_HERE 1u
int rta_spawn_ex(thr_runtime *rt, rtf_spec *spec, rta_actor *parent,
		 uint64_t spawn_token, const uint8_t *init, size_t init_len,
		 bool has_init, unsigned flags, rta_actor **out, th_err *err);
/* An actor rebuilt from its chain after its runtime died (resume.c). */
typedef struct rta_resumed {
	const char *id;        /* the id it had                            */
	thx_chain *chain;      /* its chain, opened by the caller           */
	const uint8_t *event;  /* actor.resumed data, CBOR (copied)         */
	size_t event_len;
	const uint8_t *state;  /* the last committed state (copied)         */
	size_t state_len;
	bool has_state;
} rta_resumed;
/* rta_spawn under res->id with res->chain, recording actor.resumed instead
 * of actor.spawning; init runs from res's state. Top-level (its parent
 * died with the runtime). */
int rta_spawn_resumed(thr_runtime *rt, rtf_spec *spec, const rta_resumed *res,
		      rta_actor **out, th_err *err);
/* Give a stopped or failed actor a new instance under the same id, from
 * its last committed state; its init runs again. The caller makes sure
 * the actor has ended (life final). Records actor.restarted.
 *
 * A restart keeps the actor (same struct, same id, same mailbox). An end
 * that a restart follows leaves the mailbox open: a sender waiting for
 * room, or arriving meanwhile, reaches the restarted actor. A restarter
 * other than the supervision policy (which knows its own plans, supervise.c)
 * says so with rta_restart_begin before asking the actor to stop; when
 * rta_reincarnate fails after it, the mailbox is closed and what it holds
 * dropped (each drop recorded). */
void rta_restart_begin(rta_actor *a);
int rta_reincarnate(rta_actor *a, th_err *err);
/* Close a's mailbox and drop what it holds (queued or in flight), each drop
 * recorded (message.dropped) and a waiting requester or opener answered
 * with the reason. No-op for an emptied, closed mailbox. */
void rta_close_mailbox(rta_actor *a, const char *why);
/* Make a runnable (any thread). */
void rta_wake(rta_actor *a);
/* Push a message to a's mailbox, recording its arrival first. Takes m
 * (freed on failure too). TH_EBUSY full, TH_ESTATE stopped. */
int rta_deliver(rta_actor *to, rtm_msg *m, th_err *err);
/* Ask a to stop (any thread). external: thr_stop / stop-child. */
void rta_request_stop(rta_actor *a, bool external);
/* Terminate a (any thread, thr_terminate): as rta_request_stop(a, true),
 * and the export call in progress is discarded, not committed. */
void rta_request_terminate(rta_actor *a);
/* Fail the actor with a reason (its own turn only; kind is a static
 * string). The caller's turn returns at once; the failure is carried out
 * on the actor's next turn, from the recovery lane. actor.failed records
 * [kind, reason, backtrace]: the engine's trap frames when the call trapped
 * (innermost first, at most RTA_BACKTRACE_MAX), each [func, offset, name]. */
#define RTA_BACKTRACE_MAX 32
void rta_fail(rta_actor *a, const char *kind, const char *reason);
int rta_life_get(rta_actor *a);
/* Copy of the committed state (any thread). */
int rta_state_copy(rta_actor *a, uint8_t **out, size_t *len, bool *has);

/* Suspensions, used by the handlers (from the actor's own turn):
 * rta_suspend marks the current host call pending and returns its token;
 * rta_complete (any thread) answers it, taking ownership of *result
 * (may be NULL for none); rta_complete_trap makes it trap instead.
 * Both return false when the token is stale (call abandoned). */
uint64_t rta_suspend(rta_actor *a);
bool rta_complete(rta_actor *a, uint64_t token, thc_val *result);
bool rta_complete_trap(rta_actor *a, uint64_t token, const char *msg);
/* Mark the pending call for a retry callback when woken (backpressure);
 * ctx_free (may be NULL) releases ctx when the call ends either way. */
void rta_retry_on_wake(rta_actor *a, int (*retry)(rta_actor *), void *ctx,
		       void (*ctx_free)(void *));
/* Wake the suspended call for its retry (e.g. room appeared). */
void rta_poke(rta_actor *a);
/* Give up the suspension rta_suspend started (answered at once). */
void rta_unsuspend(rta_actor *a);
/* Set the answer of the suspended call from its own retry callback. */
void rta_set_result(rta_actor *a, thc_val *result);
/* Current actor of a host call. */
rta_actor *rta_of_call(thc_hostcall *call);
/* Record the call in progress (export.call) if it is not yet: called
 * before anything else the handler causes is recorded. */
void rta_call_flush(rta_actor *a);

/* Record an event in a's chain (in the turn's batch when a's turn runs on
 * this thread). type is a static string; rta_record_dyn takes one built
 * on the fly (copied). */
int rta_record(rta_actor *a, const char *type, th_cbor_enc *e,
	       const char *desc);
int rta_record_dyn(rta_actor *a, const char *type, th_cbor_enc *e);

/* ---- Requests and channels (request.c) --------------------------------- */

typedef struct rtq_req rtq_req;

int rtq_new(thr_runtime *rt, rtq_table **out);
void rtq_free(rtq_table *q);

/* A request from actor `from` (NULL: external, then wait with
 * rtq_wait) to actor `to`. Its id is "r<n>". For an actor requester the
 * reply completes from's pending host call (token). */
int rtq_request(thr_runtime *rt, rta_actor *from, uint64_t token,
		rta_actor *to, const void *msg, size_t len,
		uint32_t timeout_ms, rtq_req **out, th_err *err);
/* External requester: wait for the answer (consumes req). */
int rtq_wait(rtq_req *r, uint8_t **reply, size_t *len, th_err *err);
/* Answer request n: ok (data) or error (msg); by, when not NULL, must be
 * its target. False when the request is not outstanding (answered, timed
 * out, cancelled, or not sent to by). */
bool rtq_answer(thr_runtime *rt, rta_actor *by, uint64_t n, bool ok,
		const void *data, size_t len);
/* The target's handler has seen request n (it is now "outstanding"). */
void rtq_mark_seen(thr_runtime *rt, uint64_t n);
/* The request ids actor a received and has not answered. */
int rtq_outstanding(thr_runtime *rt, rta_actor *a, uint64_t **ns, size_t *n);
/* Requests `a` made: fail them (a stops); requests to a: answer with an
 * error (a stops). */
void rtq_actor_gone(thr_runtime *rt, rta_actor *a, const char *why);
/* New request and channel ids from now on are above n (resume.c: the
 * redelivered requests keep the ids their dead runtime gave them). */
void rtq_ids_above(thr_runtime *rt, uint64_t n);
/* Parse "r<n>" / "c<n>". */
bool rtq_parse_id(const char *s, size_t len, char prefix, uint64_t *n);

/* Channels: open from actor `from` to `to`; the open completes from's
 * pending call with result<channel-id, string>. */
int rtq_channel_open(thr_runtime *rt, rta_actor *from, uint64_t token,
		     rta_actor *to, const void *msg, size_t len, th_err *err);
/* The target's answer to an open (from handle-channel-open). */
void rtq_channel_answer(thr_runtime *rt, uint64_t n, bool accepted,
			const uint8_t *msg, size_t len, bool has_msg);
/* The other party of open channel n, if a is one of its two; else NULL. */
rta_actor *rtq_channel_peer(thr_runtime *rt, rta_actor *a, uint64_t n);
/* Close channel n from actor a. When the other party is an actor, *peer
 * and *close (the channel-close message, the caller's to deliver, e.g.
 * waiting for room in a full mailbox) are set; otherwise both are NULL. */
int rtq_channel_close(thr_runtime *rt, rta_actor *a, uint64_t n,
		      rta_actor **peer, rtm_msg **close, th_err *err);

/* Channels with an external party (thr_channel_*, api_chan.c). Channel n
 * comes from rtq_next_id; the table holds a reference to x while the
 * channel is in it; the open's answer reaches x through rtx_answer. */
typedef struct rtx_end rtx_end;
uint64_t rtq_next_id(thr_runtime *rt);
int rtq_channel_open_ext(thr_runtime *rt, rtx_end *x, uint64_t n,
			 rta_actor *to, const void *msg, size_t len,
			 th_err *err);
/* The actor of external channel n while it is open, else NULL. */
rta_actor *rtq_channel_actor_ext(thr_runtime *rt, uint64_t n);
/* The external party ends n: removed from the table. Returns the actor
 * to send channel-close to (NULL when n was not open). */
rta_actor *rtq_channel_close_ext(thr_runtime *rt, uint64_t n);
/* Actor a sends msg on n: when n's other party is external, it gets msg
 * (1); 0 when it is not (n is then an actor-to-actor channel, or not
 * open). */
int rtq_channel_to_ext(thr_runtime *rt, rta_actor *a, uint64_t n,
		       const void *msg, size_t len);

/* ---- External channel parties (api_chan.c) ----------------------------- */

/* Hooks request.c calls, never under its table lock: the answer to the
 * open (why: the reason of a refusal), a message from the actor, the
 * channel's end on the actor's side. */
void rtx_ref(rtx_end *x);
void rtx_unref(rtx_end *x);
void rtx_answer(rtx_end *x, bool accepted, const uint8_t *msg, size_t len,
		bool has_msg, const char *why);
void rtx_message(rtx_end *x, const void *msg, size_t len);
void rtx_closed(rtx_end *x, const char *why);
/* The registry of open external channels (one per runtime). */
int rtx_table_new(struct rtx_table **out);
void rtx_table_free(struct rtx_table *t);

/* Deliver m from outside the runtime (thr_send, thr_channel_send, the
 * redelivery of thr_resume): takes m; with THR_SEND_WAIT waits for room
 * when a's mailbox is full. */
int rtr_deliver_external(rta_actor *a, rtm_msg *m, unsigned flags,
			 th_err *err);

/* ---- Blocking work (offload.c) ----------------------------------------- */

typedef void (*rto_fn)(void *ctx);
int rto_new(int nthreads, rto_pool **out, th_err *err);
void rto_free(rto_pool *p); /* runs what is queued, then joins */
/* Run fn(ctx) on a pool thread. TH_ENOMEM. */
int rto_run(rto_pool *p, rto_fn fn, void *ctx);

/* ---- WASI (wasi_glue.c) ---------------------------------------------------- */

/* A sandboxed WASI context for a, recording every call in its chain. */
int rtw_new(rta_actor *a, struct thw_wasi **out, th_err *err);

/* ---- Ids (ids.c) --------------------------------------------------------- */

/* A random (version 4) UUID in text form. */
void rtu_uuid4(char out[THR_ID_LEN + 1]);
/* Random bytes from the kernel's CSPRNG, buffered per thread. */
void rtu_random(void *buf, size_t n);

#endif
