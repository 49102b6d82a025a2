/*
 * net.h (internal) - the pieces of the network server shared between its
 * files (prefix thn_): worker pool (pool.c), TLS contexts (tls.c),
 * WebSocket handshake (ws.c), subscriptions (sub.c), commands (cmds.c) and
 * the event loop with connections and sessions (server.c).
 *
 * Thread ownership, in one place:
 *   loop thread   every conn, sess and stream field; bufferevents; wslay
 *                 contexts; the session list; job completion handling.
 *   workers       run jobs (thn_job) and catch-up reads; they touch only
 *                 the job itself and, under sub->mu, a subscription.
 *   appenders     (any thread appending to a chain) run the tap callback,
 *                 which takes the tap registry lock (read) and sub->mu.
 *   srv->mu       guards the completion queue and the ready list; it is
 *                 taken last (sub->mu -> srv->mu), never held while
 *                 calling anything else.
 */
#ifndef TH_NET_H
#define TH_NET_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

#include "base/base.h"
#include "base/cbor.h"
#include "theater/protocol.h"
#include "theater/server.h"

/* ---- worker pool (pool.c) ------------------------------------------------ */

typedef struct thn_task {
	struct thn_task *next;
	void (*fn)(struct thn_task *t);
} thn_task;

typedef struct thn_pool thn_pool;

/* min threads are started now; more (up to max) when tasks wait and no
 * thread is idle; extra ones exit after 10 s without work. */
int thn_pool_new(unsigned min, unsigned max, thn_pool **out, th_err *err);
/* Queue t (intrusive: no allocation, cannot fail). t->fn(t) runs once on
 * a pool thread. */
void thn_pool_submit(thn_pool *p, thn_task *t);
/* Run every queued task, join every thread, free. NULL is fine. */
void thn_pool_free(thn_pool *p);
unsigned thn_pool_threads(thn_pool *p);

/* ---- TLS (tls.c) -------------------------------------------------------- */

SSL_CTX *thn_tls_server_ctx(const char *cert, const char *key,
			    const char *client_ca, th_err *err);
/* ca: verify the server against it (NULL = system store); cert/key: our
 * client certificate (both or neither). */
SSL_CTX *thn_tls_client_ctx(const char *ca, const char *cert,
			    const char *key, th_err *err);
/* The OpenSSL error queue as one line (and cleared). */
void thn_tls_errors(char *buf, size_t cap);

/* ---- WebSocket handshake (ws.c) ------------------------------------------ */

#define THN_WS_HEADER_MAX 8192

/* Sec-WebSocket-Accept for a key (RFC 6455 4.2.2): 28 chars + NUL. */
void thn_ws_accept_key(const char *key, size_t n, char out[29]);

/* Parse an HTTP/1.1 upgrade request (head = bytes up to and including the
 * blank line). On success *response (th_free) is the 101 answer; on
 * failure it is a 4xx answer to send before closing, and err says why. */
int thn_ws_server_handshake(const char *head, size_t n, char **response,
			    size_t *resp_len, th_err *err);

/* Client side: the request for host/path with a fresh random key
 * (key_out: 24 chars + NUL, for checking the answer). */
int thn_ws_client_request(const char *host, const char *path, char **req,
			  size_t *len, char key_out[25], th_err *err);
/* Check the server's answer head against our key. */
int thn_ws_client_check(const char *head, size_t n, const char *key,
			th_err *err);

/* ---- stream id -> pointer map (imap.c) ------------------------------------ */

struct thn_imap_ent {
	uint32_t id;
	void *p;
};
typedef struct thn_imap {
	struct thn_imap_ent *e;
	size_t cap, n, used; /* used counts tombstones too */
} thn_imap;
#define THN_IMAP_TOMB ((void *)1)
/* Iterate: for i < m.cap, THN_IMAP_LIVE(m.e[i].p). Deleting while
 * iterating is fine; inserting is not. */
#define THN_IMAP_LIVE(p) ((p) != NULL && (void *)(p) != THN_IMAP_TOMB)

void *thn_imap_get(const thn_imap *m, uint32_t id);
int thn_imap_put(thn_imap *m, uint32_t id, void *p);
void thn_imap_del(thn_imap *m, uint32_t id);
void thn_imap_release(thn_imap *m);

/* ---- shared types --------------------------------------------------------- */

typedef struct thn_conn thn_conn;
typedef struct thn_sess thn_sess;
typedef struct thn_sub thn_sub;
typedef struct thn_job thn_job;
typedef struct thn_tap thn_tap;

/* Parsed request arguments: the keys of the request map, each pointing at
 * its encoded value inside the payload. */
#define THN_ARGS_MAX 24
typedef struct thn_args {
	size_t n;
	struct {
		const char *key;
		size_t klen;
		const uint8_t *val;
		size_t vlen;
	} kv[THN_ARGS_MAX];
} thn_args;

int thn_args_parse(const uint8_t *p, size_t n, thn_args *a, th_err *err);
/* Getters: 0 found, 1 absent (with required false), TH_EINVAL wrong type
 * or absent and required. Text results are NUL-terminated copies in
 * buf (cap bytes) so that they can go straight to C APIs. */
int thn_arg_text(const thn_args *a, const char *key, bool required, char *buf,
		 size_t cap, th_err *err);
int thn_arg_uint(const thn_args *a, const char *key, bool required,
		 uint64_t *v, th_err *err);
int thn_arg_bool(const thn_args *a, const char *key, bool *v, th_err *err);
/* Bytes (or text, taken as bytes) pointing into the payload. */
int thn_arg_bytes(const thn_args *a, const char *key, bool required,
		  const uint8_t **p, size_t *n, th_err *err);

/* ---- commands (cmds.c) ----------------------------------------------------- */

enum {
	THN_CMD_UPLOAD = 1, /* may be followed by DATA frames until END  */
	THN_CMD_CHUNK = 2,  /* internal: the next chunk of a READ stream */
	THN_CMD_LOOP_SEND = 4, /* on the loop thread if ops say THSRV_LOOP_SEND */
	THN_CMD_CHANNEL = 8   /* opens a channel: DATA frames are messages  */
};

/* Bytes per DATA frame of a streamed store.get; objects up to
 * THN_INLINE_MAX come inline in the RESPONSE instead. */
#define THN_READ_CHUNK (256u << 10)
#define THN_INLINE_MAX (256u << 10)

struct thn_cmd {
	const char *op;
	int (*run)(thn_job *j, const thn_args *a);
	unsigned flags;
};

const struct thn_cmd *thn_cmd_find(const char *op, size_t n);
/* True when a request payload asks "wait": true (such a send must not
 * run on the loop thread). */
bool thn_wants_wait(const uint8_t *p, size_t n);
/* Reads the next THN_READ_CHUNK bytes of j->reader into j->body. */
extern const struct thn_cmd thn_cmd_chunk;

/* Kinds of follow-up a finished job asks the loop for. */
enum thn_follow {
	THN_FOLLOW_NONE = 0,   /* RESPONSE with END                       */
	THN_FOLLOW_SUB = 1,    /* RESPONSE, then the subscription j->sub   */
	THN_FOLLOW_READ = 2,   /* RESPONSE, then DATA chunks of j->reader   */
	THN_FOLLOW_CHAN = 3    /* RESPONSE, then the channel j->chan        */
};

struct thn_job {
	thn_task task;
	thsrv *srv;
	thn_conn *conn;           /* reference held (loop-thread count)    */
	uint32_t stream;
	const struct thn_cmd *cmd;
	uint8_t *req;             /* owned copy of the request payload     */
	size_t req_len;
	uint8_t *body;            /* uploaded DATA or a read chunk (owned) */
	size_t body_len;
	bool has_body;            /* the request came with DATA frames     */
	size_t compress_min;      /* the connection's (0: no zstd)         */
	int rc;
	th_err err;
	th_cbor_enc out;          /* response payload                      */
	int follow;               /* enum thn_follow                       */
	thn_sub *sub;             /* THN_FOLLOW_SUB: reference handed over */
	ths_reader *reader;       /* THN_FOLLOW_READ: handed over          */
	struct thsrv_channel *chan; /* FOLLOW_CHAN, chan_send, chan_close: a
				     * reference                          */
	atomic_bool cancelled;
	thn_job *done_next;
};

/* ---- subscriptions (sub.c) ------------------------------------------------- */

/* One queued frame (an EVENT) or a gap marker. */
typedef struct thn_ent {
	struct thn_ent *next;
	uint64_t seq;        /* event seq, or the first missed seq        */
	uint64_t gap_to;     /* gap marker: the last missed seq           */
	bool gap;
	size_t len;
	uint8_t frame[];
} thn_ent;

enum thn_sub_mode {
	THN_SUB_INIT = 0,    /* being set up: pushes ignored              */
	THN_SUB_CATCHUP = 1, /* reading the chain; pushes ignored         */
	THN_SUB_LIVE = 2,    /* pushes queued (or counted into a gap)     */
	THN_SUB_PAUSED = 3,  /* session detached: pushes ignored          */
	THN_SUB_CLOSED = 4
};

struct thn_sub {
	atomic_int refs;
	pthread_mutex_t mu;
	thsrv *srv;
	thx_chain *chain;
	char name[THX_NAME_MAX + 1];
	uint32_t stream;
	uint32_t buffer;          /* queued events at most                 */
	uint64_t credit0;         /* credit given at subscribe (resume)    */
	uint32_t max_frame;
	size_t compress_min;      /* 0 = no compression                    */
	/* loop thread only */
	thn_sess *sess;
	/* under mu */
	int mode;
	bool catchup_running;
	bool in_ready;
	uint64_t next;            /* next seq to queue                     */
	uint64_t credit;          /* EVENT frames the client still allows  */
	thn_ent *head, *tail;
	uint32_t queued;          /* events in the queue (not gap markers) */
	uint64_t gaps;
	thn_task catchup;
	thn_sub *ready_next;
	/* under the tap registry's write lock */
	thn_tap *tap;
};

/* Create a subscription on chain c (not yet on a connection): from_seq
 * NULL = live from the current end; *next gets the first seq it will
 * send. Registers it with the chain; events queue from now on, but
 * nothing is read from the chain before thn_sub_start. compress_min 0:
 * no compression (the connection did not negotiate zstd). */
int thn_sub_new(thsrv *srv, thx_chain *c, const char *name, uint32_t stream,
		const uint64_t *from_seq, uint64_t credit, uint32_t buffer,
		size_t compress_min, thn_sub **out, uint64_t *next, th_err *err);
/* Loop thread, once the RESPONSE is out: start catch-up / draining. */
void thn_sub_start(thn_sub *s);
uint64_t thn_sub_gaps(thn_sub *s);
void thn_sub_ref(thn_sub *s);
void thn_sub_unref(thn_sub *s);
/* Stop delivering: unregisters from the chain, frees the queue. */
void thn_sub_close(thn_sub *s);
/* Loop thread, taking s off the ready list: the next push may put it on
 * again. Only here: a sub must never be on the list twice (the list is
 * linked through the sub). */
void thn_sub_unready(thn_sub *s);
/* Loop thread: write queued frames the credit allows into out. */
void thn_sub_drain(thn_sub *s, thp_buf *out, size_t out_limit,
		   uint64_t *events, uint64_t *gaps);
void thn_sub_add_credit(thn_sub *s, uint64_t n);
/* Session dropped / resumed at seq next (credit reset to credit0; call
 * thn_sub_start after). */
void thn_sub_pause(thn_sub *s);
void thn_sub_resume(thn_sub *s, uint64_t next);
/* Encode one event as a CBOR map into e. */
void thn_event_encode(th_cbor_enc *e, const thx_event *ev, size_t max_data);

/* ---- channels (chan.c) ------------------------------------------------------ */

typedef struct thn_msg {
	struct thn_msg *next;
	size_t len;
	uint8_t data[];
} thn_msg;

/* An open channel. References: the stream's (or the opening job's), and
 * the runtime's from a successful channel_open until either side closes
 * (whoever clears rt_ref first drops it). */
struct thsrv_channel {
	atomic_int refs;
	pthread_mutex_t mu;
	thsrv *srv;
	void *state;              /* the runtime's handle                  */
	/* under mu */
	thn_msg *head, *tail;     /* actor -> client, not yet sent          */
	bool rt_ref;              /* the runtime still holds its reference  */
	bool rt_closed;           /* the runtime closed its side            */
	char reason[256];
	bool in_ready;            /* on the ready list (cleared only by the
				   * loop when it takes ch off the list)  */
	thsrv_channel *ready_next;
	/* loop thread */
	thn_sess *sess;           /* NULL until attached to its stream      */
	uint32_t stream;
};

thsrv_channel *thn_chan_new(thsrv *srv);
void thn_chan_ref(thsrv_channel *ch);
void thn_chan_unref(thsrv_channel *ch);
/* Loop: queued messages into out as DATA frames (up to limit bytes); when
 * the runtime has closed and everything is out, a last DATA with END
 * (payload: the reason) and *closed = true. */
void thn_chan_drain(thsrv_channel *ch, thp_buf *out, size_t limit,
		    size_t compress_min, bool *closed);
/* The server closes its side: the runtime's channel_close is called
 * (on this thread) unless the runtime closed first. */
void thn_chan_close(thsrv_channel *ch);
/* Internal commands: one message to the runtime (j->chan, j->body) and
 * the close (j->chan). */
extern const struct thn_cmd thn_cmd_chan_send;
extern const struct thn_cmd thn_cmd_chan_close;

/* ---- server internals used by sub.c and cmds.c (server.c) ---------------- */

/* Queue s on the ready list and wake the loop (any thread). */
void thn_srv_ready(thsrv *srv, thn_sub *s);
/* The same for a channel with messages (or a close) to send. */
void thn_srv_chan_ready(thsrv *srv, thsrv_channel *ch);
thn_pool *thn_srv_pool(thsrv *srv);
const thsrv_config *thn_srv_config(thsrv *srv);
/* Counters for the metrics command. */
void thn_srv_metrics(thsrv *srv, th_cbor_enc *e);

#endif
