/*
 * server.h - Theater's network server (prefix thsrv_): one event-loop
 * thread doing all network I/O (TCP, TLS, WebSocket) and a pool of worker
 * threads running the commands. The wire protocol is in protocol.h and
 * docs/protocol.md.
 *
 * The server serves the Store and Event Chain commands itself (on the
 * ths_store and thx_store it is given) and hands every actor command to an
 * ops vtable (thsrv_ops) that the runtime implements. A server without
 * ops answers actor commands with an "unsupported" error.
 *
 * Threads: thsrv_new, thsrv_run and thsrv_free are called by the owner;
 * thsrv_stop may be called from any thread and from a signal handler.
 * Ops are called on worker threads and may block: the pool grows (up to
 * max_workers) so that one slow call never delays another. Only the ops
 * named in thsrv_ops.loop_safe run on the event-loop thread.
 */
#ifndef THEATER_SERVER_H
#define THEATER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"
#include "theater/chain.h"
#include "theater/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THSRV_DEFAULT_LISTEN "127.0.0.1:9000"
#define THSRV_ID_MAX 64

/* ---- what the runtime implements ------------------------------------- */

/* Bytes handed back by an op: fill with thsrv_bytes_set (copies). The
 * server frees them. */
typedef struct thsrv_bytes {
	uint8_t *data;
	size_t len;
} thsrv_bytes;

/* Copies n bytes into b (replacing what it held). 0 or TH_ENOMEM. */
TH_API int thsrv_bytes_set(thsrv_bytes *b, const void *p, size_t n);

typedef enum thsrv_status {
	THSRV_STARTING = 0,
	THSRV_RUNNING = 1,
	THSRV_STOPPED = 2,
	THSRV_FAILED = 3
} thsrv_status;

typedef struct thsrv_actor {
	char id[THSRV_ID_MAX + 1];
	char parent[THSRV_ID_MAX + 1];   /* "" for a top-level actor   */
	char name[128];                  /* manifest name              */
	char component[THS_HEX_LEN + 1]; /* component hash, "" unknown */
	thsrv_status status;
	uint64_t messages;               /* handled so far             */
	uint32_t queued;                 /* in the mailbox now         */
	uint32_t children;
	char reason[256];                /* why it failed              */
	uint32_t restarts;               /* supervised restarts so far */
	char circuit[12];                /* breaker: "closed", "open",
					  * "half-open", "-" (none); ""
					  * = not reported             */
} thsrv_actor;

typedef struct thsrv_start {
	const char *manifest_text;       /* exactly one of text and ref */
	const char *manifest_ref;        /* Store hash (64 hex) or label */
	const char *base_dir;            /* resolves relative paths; NULL = the
					  * server's working directory */
	const uint8_t *state;            /* initial state, if has_state */
	size_t state_len;
	bool has_state;
	const char *parent;              /* NULL = top level           */
	const char *path;                /* the manifest's file name on the
					  * client, for messages and the
					  * actor.spawning event; NULL =
					  * none (text is "<string>")   */
} thsrv_start;

/* An open channel, owned by the server. The runtime delivers the actor's
 * messages with thsrv_channel_deliver and reports the actor's side closing
 * with thsrv_channel_closed; after that call (or after the server called
 * ops->channel_close) it must not use ch again. */
typedef struct thsrv_channel thsrv_channel;
TH_API int thsrv_channel_deliver(thsrv_channel *ch, const void *msg,
				 size_t len);
TH_API void thsrv_channel_closed(thsrv_channel *ch, const char *reason);

typedef int (*thsrv_actor_fn)(void *arg, const thsrv_actor *a);
typedef int (*thsrv_metric_fn)(void *arg, const char *name, uint64_t value);

/*
 * Every op returns 0 or a negative TH_E* code with a message in err
 * (TH_ENOTFOUND for an unknown actor id, TH_EBUSY for a full mailbox,
 * TH_ETIMEOUT ...); the code and message reach the client as they are.
 * A NULL op makes the command answer TH_EUNSUPPORTED.
 *
 * Events are not an op: an actor's events are read from (and subscribed
 * to on) the chain named by the actor's id in the thx_store given to the
 * server, which must be the runtime's own (thr_runtime_chains).
 */
typedef struct thsrv_ops {
	/* Spawn an actor; id gets its id. Returns after init finished. */
	int (*start)(void *ctx, const thsrv_start *a, char id[THSRV_ID_MAX + 1],
		     th_err *err);
	/* Stop gracefully (finish the current message). */
	int (*stop)(void *ctx, const char *id, th_err *err);
	/* Stop at once, abandoning the current message. */
	int (*terminate)(void *ctx, const char *id, th_err *err);
	/* Stop and start again from the same manifest. */
	int (*restart)(void *ctx, const char *id, th_err *err);
	/* Call fn for every known actor (any order); stop if fn returns
	 * nonzero and return that value. */
	int (*list)(void *ctx, thsrv_actor_fn fn, void *arg, th_err *err);
	int (*status)(void *ctx, const char *id, thsrv_actor *out, th_err *err);
	/* One-way message; must not wait for the actor. */
	int (*send)(void *ctx, const char *id, const void *msg, size_t len,
		    th_err *err);
	/* Request/response; may block up to timeout_ms (0 = default). */
	int (*request)(void *ctx, const char *id, const void *msg, size_t len,
		       uint32_t timeout_ms, thsrv_bytes *reply, th_err *err);
	/* Optional: like send and request, but a full mailbox makes them
	 * wait for room (request: within its timeout) instead of failing
	 * with TH_EBUSY (the client's "wait": true). Called on worker
	 * threads only. NULL: "wait" is answered TH_EUNSUPPORTED. */
	int (*send_wait)(void *ctx, const char *id, const void *msg, size_t len,
			 th_err *err);
	int (*request_wait)(void *ctx, const char *id, const void *msg,
			    size_t len, uint32_t timeout_ms, thsrv_bytes *reply,
			    th_err *err);
	/* Current state; *has false for none. */
	int (*get_state)(void *ctx, const char *id, thsrv_bytes *state,
			 bool *has, th_err *err);
	/* The manifest text the actor was started with. */
	int (*get_manifest)(void *ctx, const char *id, thsrv_bytes *manifest,
			    th_err *err);
	/* Open a channel to actor id with a first message; *chan is the
	 * runtime's handle for later calls; reply (may stay empty) is the
	 * actor's answer to the opening message. */
	int (*channel_open)(void *ctx, const char *id, const void *msg,
			    size_t len, thsrv_channel *ch, void **chan,
			    thsrv_bytes *reply, th_err *err);
	int (*channel_send)(void *ctx, void *chan, const void *msg, size_t len,
			    th_err *err);
	/* The client closed the channel (or went away). */
	void (*channel_close)(void *ctx, void *chan);
	/* Runtime counters (name, value) for the metrics command. */
	int (*metrics)(void *ctx, thsrv_metric_fn fn, void *arg, th_err *err);
	/* THSRV_LOOP_* bits: ops that never block (not even briefly on I/O),
	 * which the server may then call on its event-loop thread, saving
	 * two thread hand-offs per request. */
	unsigned loop_safe;
} thsrv_ops;

enum {
	THSRV_LOOP_SEND = 1 /* send returns at once (e.g. TH_EBUSY when full) */
};

/* ---- configuration ------------------------------------------------------- */

typedef struct thsrv_config {
	/* "ADDR:PORT" ("[::1]:9000" for IPv6); port 0 picks a free port
	 * (see thsrv_port). NULL = THSRV_DEFAULT_LISTEN; "" = no TCP. */
	const char *listen;
	const char *ws_listen;      /* NULL or "" = no WebSocket listener */
	const char *tls_cert;       /* PEM files; with both, TLS on both  */
	const char *tls_key;
	const char *tls_client_ca;  /* require client certs signed by it  */
	bool insecure;              /* allow plaintext beyond loopback     */

	ths_store *store;           /* required, borrowed                 */
	thx_store *chains;          /* required, borrowed                 */
	const thsrv_ops *ops;       /* NULL: no actor commands            */
	void *ops_ctx;

	uint32_t max_frame;         /* 0 = THP_DEFAULT_MAX_FRAME          */
	uint32_t max_streams;       /* 0 = THP_DEFAULT_MAX_STREAMS        */
	uint32_t idle_timeout_ms;   /* 0 = 300,000                        */
	uint32_t request_timeout_ms;/* 0 = 60,000                         */
	uint32_t handshake_timeout_ms; /* 0 = 10,000                      */
	uint32_t session_ttl_ms;    /* detached sessions kept; 0 = 60,000 */
	uint32_t workers;           /* threads kept; 0 = 4                */
	uint32_t max_workers;       /* 0 = 256                            */
	uint32_t compress_min;      /* 0 = THP_DEFAULT_COMPRESS_MIN       */
	uint64_t max_upload;        /* store.put bytes; 0 = 1 GiB         */
	uint32_t sub_buffer_max;    /* largest subscription buffer; 0 = 65536 */
	FILE *log;                  /* connection log lines; NULL = none  */
} thsrv_config;

typedef struct thsrv thsrv;

/* Validate the configuration, load TLS material and bind the listeners
 * (so address and certificate errors surface here). */
TH_API int thsrv_new(const thsrv_config *cfg, thsrv **out, th_err *err);
/* The bound port of the TCP (ws false) or WebSocket (ws true) listener,
 * 0 if none. */
TH_API int thsrv_port(const thsrv *s, bool ws);
/* Run the event loop on the calling thread until thsrv_stop; then stop
 * accepting, let in-flight requests finish (up to request_timeout_ms),
 * flush every connection and return 0. */
TH_API int thsrv_run(thsrv *s, th_err *err);
/* Ask the loop to shut down gracefully. Async-signal-safe. */
TH_API void thsrv_stop(thsrv *s);
/* Free a server whose thsrv_run returned (or never ran). NULL is fine. */
TH_API void thsrv_free(thsrv *s);

typedef struct thsrv_stats {
	uint64_t connections;      /* open now                         */
	uint64_t accepted;         /* ever                             */
	uint64_t requests;         /* completed                        */
	uint64_t events;           /* EVENT frames sent                */
	uint64_t gaps;             /* GAP frames sent                  */
	uint64_t bytes_in, bytes_out;
	uint64_t frames_compressed;
	uint64_t protocol_errors;  /* connections closed for violations */
	uint64_t sessions_resumed;
	uint64_t workers;          /* pool threads now                 */
} thsrv_stats;
TH_API void thsrv_get_stats(thsrv *s, thsrv_stats *out);

#ifdef __cplusplus
}
#endif
#endif
