/*
 * runtime.h - Theater's actor runtime, the embedding API (prefix thr_).
 *
 * A runtime (thr_runtime) owns a home directory holding the content Store
 * (home/store) and the Event Chains (home/chains), a pool of worker threads
 * that run actors, a timer thread and a small pool for blocking work (file
 * I/O), so that no worker ever blocks. Actors are WebAssembly components
 * (or core modules with the lowered names) implementing the theater:simple
 * world (wit/theater-simple.wit), described by a TOML manifest.
 *
 * Every step of an actor's life is an event in its chain (the chain is
 * named by the actor id): creation (`actor.spawning`, `component.loaded`,
 * `actor.instantiated`, `export.call` / `export.result` of init,
 * `actor.created`), each message (`message.received`, `export.call`,
 * `export.result`, `message.response`), each host call with its full
 * arguments and result (`host.<interface>.<function>`, e.g.
 * `host.theater:simple/runtime.log`), denied calls (`permission.denied`),
 * failures (`actor.failed`) and the end (`actor.stopped`). The runtime's
 * own chain (THX_RUNTIME_CHAIN) records spawns, stops and failures.
 * docs/runtime.md lists every event type and its CBOR data.
 *
 * Threads: every function may be called from any thread that is not a
 * runtime worker (the blocking ones - thr_request, thr_spawn without
 * THR_SPAWN_NO_WAIT, thr_quiesce, thr_wait - wait on the caller's
 * thread). Actors never block a thread: their blocking host calls suspend
 * them instead.
 *
 * Errors are values: 0 or a negative TH_E* code, with a message in the
 * caller's th_err. A failing actor (trap, handler error, bad component ...)
 * fails alone: the runtime and every other actor keep running.
 */
#ifndef THEATER_RUNTIME_H
#define THEATER_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"
#include "theater/chain.h"
#include "theater/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Actor ids are UUID v4 strings: 36 characters. */
#define THR_ID_LEN 36

typedef struct thr_runtime thr_runtime;

typedef struct thr_options {
	const char *home;          /* directory; store/ and chains/ inside  */
	int workers;               /* worker threads; 0 = one per CPU       */
	int io_threads;            /* blocking-work threads; 0 = 2          */
	thx_durability durability; /* actor chains whose manifest does not
				    * say save_chain = false                */
	uint32_t batch;            /* messages one actor handles per turn;
				    * 0 = 32                                */
	uint64_t fuel_slice;       /* instructions per turn before the actor
				    * yields its worker; 0 = 200,000         */
	uint32_t mailbox_capacity; /* default when [limits] has none;
				    * 0 = 1024                              */
	uint32_t request_timeout_ms; /* default; 0 = 30,000                 */
	bool store_no_sync;        /* Store without fsync (tests, benches)  */
} thr_options;

/* Create a runtime. opt->home is required (it is created if missing).
 * *out is valid until thr_runtime_free. */
TH_API int thr_runtime_new(const thr_options *opt, thr_runtime **out,
			   th_err *err);
/* Stop every actor (recorded), stop the threads, close chains and Store.
 * NULL is fine. */
TH_API void thr_runtime_free(thr_runtime *rt);

/* The runtime's Store and chain store (valid until thr_runtime_free). */
TH_API ths_store *thr_runtime_store(thr_runtime *rt);
TH_API thx_store *thr_runtime_chains(thr_runtime *rt);

/* ---- Spawning --------------------------------------------------------- */

enum {
	THR_SPAWN_NO_WAIT = 1 /* return once created, before init has run */
};

typedef struct thr_spawn_opts {
	const char *manifest_path; /* exactly one of path and text          */
	const char *manifest_text;
	const char *manifest_name; /* names manifest_text in messages and the
				    * actor.spawning event (the client's file
				    * name); NULL = "<string>"              */
	const char *base_dir;      /* resolves a relative `component` in a
				    * manifest given as text; NULL = cwd    */
	const uint8_t *init_state; /* overrides the manifest's init_state  */
	size_t init_state_len;
	bool has_init_state;
	unsigned flags;            /* THR_SPAWN_*                          */
	const char *parent;        /* NULL: top level; else a running
				    * actor's id: the new actor is its
				    * child (in its supervision tree, its
				    * handlers told of the child's end),
				    * with permissions never wider than
				    * the parent's, as when an actor
				    * spawns one                           */
} thr_spawn_opts;

/* Spawn an actor: the manifest is parsed, the component's bytes put in the
 * Store (and pinned) and loaded (shared by every actor of the same hash),
 * instantiated, and init(state, (id)) called. id receives the actor's id
 * (NUL-terminated) as soon as it is known, even when spawning fails after
 * that (then the failure is in that actor's chain). Without
 * THR_SPAWN_NO_WAIT the call returns once init has finished: 0, or the
 * init failure. */
TH_API int thr_spawn(thr_runtime *rt, const thr_spawn_opts *opt,
		     char id[THR_ID_LEN + 1], th_err *err);

/* ---- Messages ----------------------------------------------------------- */

enum {
	THR_SEND_WAIT = 1, /* wait for room when the mailbox is full
			    * (default: fail at once with TH_EBUSY)         */
	THR_SEND_HIGH = 2  /* high-priority lane                             */
};

/* One-way message to actor id (handle-send). Copies msg. TH_ENOTFOUND for
 * an unknown actor, TH_ELIMIT when msg exceeds the actor's
 * max_message_bytes, TH_EBUSY when its mailbox is full (unless
 * THR_SEND_WAIT), TH_ESTATE when it has stopped. */
TH_API int thr_send(thr_runtime *rt, const char *id, const void *msg,
		    size_t len, unsigned flags, th_err *err);

/* Request/response (handle-request, or a later respond-to-request). Blocks
 * the calling thread until the reply or the timeout (0 = the runtime's
 * default): TH_ETIMEOUT. *reply (free with thr_free) and *reply_len get
 * the response. An actor's error answer is TH_EINVAL with its text. */
TH_API int thr_request(thr_runtime *rt, const char *id, const void *msg,
		       size_t len, uint32_t timeout_ms, uint8_t **reply,
		       size_t *reply_len, th_err *err);

/* Frees memory returned by thr_ functions. NULL is fine. */
TH_API void thr_free(void *p);

/* ---- Actors ------------------------------------------------------------- */

typedef enum thr_status {
	THR_STARTING = 0, /* spawned, init not finished                     */
	THR_RUNNING = 1,  /* ready or handling messages                     */
	THR_STOPPED = 2,  /* stopped by request or by runtime.shutdown      */
	THR_FAILED = 3    /* trapped, handler error, bad component ...      */
} thr_status;

typedef struct thr_actor_info {
	char id[THR_ID_LEN + 1];
	char parent[THR_ID_LEN + 1];  /* "" for a top-level actor           */
	char name[128];               /* manifest name                      */
	char component[THS_HEX_LEN + 1]; /* component hash                   */
	thr_status status;
	uint64_t messages;            /* handled so far                     */
	uint32_t queued;              /* in the mailbox now                 */
	uint32_t children;
	char reason[256];             /* why it failed, when FAILED         */
} thr_actor_info;

/* Status of one actor. Stopped and failed actors stay known until the
 * runtime is freed. TH_ENOTFOUND for an unknown id. */
TH_API int thr_actor_info_get(thr_runtime *rt, const char *id,
			      thr_actor_info *out, th_err *err);

/* Ids of every actor the runtime knows (live, stopped and failed), in
 * spawn order. *ids is one block holding the array and the strings; free
 * it with thr_free. */
TH_API int thr_list(thr_runtime *rt, char ***ids, size_t *n, th_err *err);

/* The actor's current state (the one its last successful handler
 * returned). *has is false for none; *state is freed with thr_free. */
TH_API int thr_get_state(thr_runtime *rt, const char *id, uint8_t **state,
			 size_t *len, bool *has, th_err *err);

/* Stop an actor: it finishes the message it is handling (a call waiting on
 * a host operation is abandoned), then stops; queued messages are dropped.
 * Records actor.stopped. Returns once it has stopped. */
TH_API int thr_stop(thr_runtime *rt, const char *id, th_err *err);

/* Terminate an actor at once: no more of its handlers run. The export
 * call in progress is cut short at its next instruction-slice boundary
 * (or at once when it waits on a host call) and whatever it would have
 * returned is discarded (the state stays the last committed one); queued
 * messages are dropped (message.dropped), requests to it are answered
 * with an error, its channels close, its children are stopped, and its
 * parent is told as for thr_stop. Records actor.stopped with
 * ["terminated", null]; no supervision policy restarts it. Returns once it
 * has ended; 0 also for an actor that had already ended. */
TH_API int thr_terminate(thr_runtime *rt, const char *id, th_err *err);

/* The manifest text actor id was spawned from (the file's content for a
 * manifest given by path, as it was read at the spawn). *text is
 * NUL-terminated, free it with thr_free; *len excludes the NUL. */
TH_API int thr_get_manifest(thr_runtime *rt, const char *id, char **text,
			    size_t *len, th_err *err);

/* Restart an actor under the same id: stop it if it is running (as
 * thr_stop), then give it a new instance that starts from its last
 * committed state; init runs again. Records actor.restarted. Returns once
 * init has finished: 0, or the init failure. */
TH_API int thr_restart(thr_runtime *rt, const char *id, th_err *err);

/* ---- Resuming after a crash ---------------------------------------------- */

typedef struct thr_resume_opts {
	/* The manifest to run it with (at most one of path and text): NULL =
	 * the file its actor.spawning names. It must name the component the
	 * chain recorded. */
	const char *manifest_path;
	const char *manifest_text;
	const char *base_dir;      /* as in thr_spawn_opts                   */
	unsigned flags;            /* THR_SPAWN_NO_WAIT                      */
} thr_resume_opts;

typedef struct thr_resume_info {
	uint64_t from_seq;     /* events in the chain before the resume      */
	uint64_t state_seq;    /* the export.result whose state it continues */
	bool has_state_seq;    /* false: the initial state                  */
	uint64_t redelivered;  /* messages delivered again                   */
	uint64_t settled;      /* messages acknowledged or dropped before   */
} thr_resume_info;

/* Rebuild actor id from its chain in this runtime's home after the runtime
 * that ran it died (kill -9, power loss) or stopped: the same id and chain,
 * the component the chain recorded, the state of its last successful
 * handler (export.result), and every message whose arrival was recorded
 * but whose handler's result was not (nor a message.dropped) delivered
 * again with its original id, recorded as message.redelivered; init runs
 * again from that state, as in thr_restart. Records actor.resumed
 * [component-hash, state-seq | null, [message ids], fuel, pages]. Control
 * notices (child errors ...) are not redelivered: children and parents
 * died with the runtime; the resumed actor is top-level. TH_EEXIST if the
 * actor is already in this runtime, TH_ENOTFOUND without its chain,
 * TH_EINVAL when the manifest names another component. Returns once init
 * has finished (unless THR_SPAWN_NO_WAIT). info may be NULL. */
TH_API int thr_resume(thr_runtime *rt, const char *id,
		      const thr_resume_opts *opt, thr_resume_info *info,
		      th_err *err);

/* Wait until the actor has stopped or failed (timeout_ms 0 = forever):
 * 0, or TH_ETIMEOUT. */
TH_API int thr_wait(thr_runtime *rt, const char *id, uint32_t timeout_ms,
		    th_err *err);

/* Wait until no actor has anything to do: every mailbox empty and no call
 * in progress (an actor sleeping or waiting for a reply counts as busy).
 * timeout_ms 0 = forever. 0, or TH_ETIMEOUT. */
TH_API int thr_quiesce(thr_runtime *rt, uint32_t timeout_ms, th_err *err);

/* ---- Channels with the outside ------------------------------------------ */

/* What the actor sent on an external channel: a message (msg, len;
 * closed NULL), or, exactly once and last, the end of the channel from
 * the actor's side (msg NULL; closed says why: the actor closed it, or
 * stopped, failed ...). Called on a runtime thread, one call at a time
 * per channel, in the order the actor sent; it must not block and must
 * not call thr_channel_send/close for this channel. */
typedef void (*thr_channel_fn)(void *arg, uint64_t channel, const void *msg,
			       size_t len, const char *closed);

/* Open a channel from the caller to actor id: the actor's
 * handle-channel-open gets (channel id, msg); if it accepts, *channel is
 * the channel (the actor sees it as "c<channel>") and the message it may
 * return with its acceptance is in *reply (free with thr_free; NULL and
 * *reply_len 0 when none). fn then gets what the actor sends on the
 * channel. Blocks until the actor answered or timeout_ms (0 = the
 * actor's request timeout): TH_EPERM when refused, TH_ETIMEOUT,
 * TH_ENOTFOUND, TH_EBUSY (mailbox full), TH_ESTATE (not running).
 * An open channel is released by thr_channel_close, or once fn has
 * reported it closed (thr_channel_close then answers TH_ENOTFOUND; the
 * two may race; thr_runtime_free stops every actor, so fn hears of
 * each channel's end before it returns). */
TH_API int thr_channel_open(thr_runtime *rt, const char *id, const void *msg,
			    size_t len, uint32_t timeout_ms, thr_channel_fn fn,
			    void *arg, uint64_t *channel, uint8_t **reply,
			    size_t *reply_len, th_err *err);

/* One message to the actor on the channel (handle-channel-message), in
 * order; flags THR_SEND_WAIT waits for room in a full mailbox (else
 * TH_EBUSY). TH_ESTATE once the channel is closed. Copies msg. */
TH_API int thr_channel_send(thr_runtime *rt, uint64_t channel,
			    const void *msg, size_t len, unsigned flags,
			    th_err *err);

/* Close the channel from the caller's side and release it: the actor's
 * handle-channel-close runs after the messages sent before (unless the
 * actor closed it or ended first; a full mailbox is waited for). After it
 * returns, fn is not running and is never called again for this channel.
 * TH_ENOTFOUND for an unknown or released one. */
TH_API int thr_channel_close(thr_runtime *rt, uint64_t channel, th_err *err);

/* ---- Events -------------------------------------------------------------- */

/* Call fn for each new event of actor id's chain (NULL: every chain,
 * the runtime's included), in order per chain, on the thread that
 * appended it; see thx_subscribe for the rules. */
TH_API int thr_subscribe(thr_runtime *rt, const char *id, thx_event_fn fn,
			 void *arg, uint64_t *sub, th_err *err);
TH_API int thr_unsubscribe(thr_runtime *rt, uint64_t sub);

/* Counters, for tests and benchmarks. */
typedef struct thr_stats {
	uint64_t spawned, stopped, failed;
	uint64_t messages;    /* handled by any actor            */
	uint64_t host_calls;  /* every host call, denied included */
	uint64_t denied;
	uint64_t live;        /* actors neither stopped nor failed */
} thr_stats;
TH_API void thr_runtime_stats(thr_runtime *rt, thr_stats *out);

#ifdef __cplusplus
}
#endif
#endif
