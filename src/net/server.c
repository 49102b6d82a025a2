/*
 * server.c - the event loop: listeners, connections (TCP, TLS, WebSocket),
 * the handshake, sessions, streams, request dispatch to the worker pool,
 * completions, subscriptions' output, timeouts and graceful shutdown.
 *
 * One thread runs a libevent loop and owns every connection. Requests are
 * decoded here (header, decompression, "op") and run as jobs on the pool
 * (cmds.c); a finished job is queued on srv->done and the loop is woken
 * through an eventfd, then writes its RESPONSE or ERROR. Subscriptions
 * fill their queues from other threads and put themselves on srv->ready;
 * the loop drains them into connections within the client's credit and
 * the connection's high-water mark, so a client that stops reading stops
 * costing memory (its subscriptions gap) but never blocks anyone else.
 *
 * Connection states: HTTP (WebSocket listener: waiting for the upgrade
 * request) -> HELLO (waiting for HELLO) -> OPEN -> closed. A closed
 * connection whose jobs are still running stays allocated ("dead") until
 * the last one completes; its session either dies with it or, when it
 * holds subscriptions and the client negotiated "resume", is kept
 * detached for session_ttl_ms with its subscriptions paused.
 *
 * Streams: client-chosen ids, strictly increasing per session. Kinds:
 * REQ (a job in flight), UPLOAD (DATA being gathered for a job), SUB (a
 * subscription), READ (a store object streamed out in DATA frames).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "net/net.h"

#define OUT_HIGH (4u << 20)   /* stop draining subscriptions above this */
#define OUT_LOW (1u << 20)    /* ... and resume below this              */
#define SWEEP_MS 100
#define FLUSH_GRACE_NS (3ull * 1000000000ull)
#define SERVER_NAME "theater/0.1"

enum { C_HTTP = 0, C_HELLO = 1, C_OPEN = 2 };
enum { ST_REQ = 0, ST_UPLOAD = 1, ST_SUB = 2, ST_READ = 3, ST_CHAN = 4 };

typedef struct thn_stream {
	uint32_t id;
	int kind;
	thn_job *job;          /* REQ: in flight; UPLOAD: being filled    */
	uint64_t deadline;     /* REQ: answer by then (ns, monotonic)     */
	thp_buf body;          /* UPLOAD                                  */
	thn_sub *sub;          /* SUB (one reference)                     */
	ths_reader *reader;    /* READ: NULL while a chunk job has it     */
	bool reading;          /* READ: a chunk job is in flight          */
	thsrv_channel *chan;   /* CHAN (one reference)                    */
	thn_msg *sq, *sq_tail; /* channel: client messages not yet sent   */
	bool client_done;      /* channel: the client sent END            */
	bool is_chan;          /* a channel.open stream (REQ, then CHAN)  */
} thn_stream;

struct thn_sess {
	thsrv *srv;
	char id[THP_SESSION_LEN + 1];
	thn_conn *conn;        /* NULL while detached                     */
	thn_imap streams;
	uint32_t last_stream;
	uint64_t expires;      /* detached: freed after this              */
	thn_sess *prev, *next;
};

struct thn_conn {
	thsrv *srv;
	uint64_t id;
	int refs;              /* loop thread only                        */
	bool dead;             /* transport gone, waiting for jobs        */
	bool closing;          /* close once the output is flushed        */
	bool blocked;          /* output above high water: drain later    */
	bool dirty;            /* obuf holds frames to hand over          */
	bool is_ws, is_tls;
	bool in_ws;            /* inside wslay_event_recv                 */
	char ws_close[32];     /* a WebSocket close to send after the data */
	int state;
	struct bufferevent *bev;
	wslay_event_context_ptr ws;
	thn_sess *sess;
	unsigned features;
	size_t compress_min;
	uint64_t opened, last_rx;
	uint64_t close_deadline;
	thp_buf obuf;          /* frames not yet handed to the transport  */
	char peer[64];
	thn_conn *prev, *next;
	thn_conn *dirty_next;
};

struct thsrv {
	thsrv_config cfg;
	char *listen, *ws_listen; /* owned copies */
	struct event_base *base;
	struct evconnlistener *tcp_l, *ws_l;
	int tcp_port, ws_port;
	SSL_CTX *ssl;
	int wake_fd;
	struct event *wake_ev, *sweep_ev;
	thn_pool *pool;
	unsigned features;

	pthread_mutex_t mu;     /* done and ready lists                  */
	thn_job *done_head, *done_tail;
	thn_sub *ready_head;
	thsrv_channel *ch_ready;
	atomic_bool stop_req;

	/* loop thread */
	thn_conn *conns;
	thn_sess *sessions;
	thn_conn *dirty;
	uint64_t next_conn_id;
	int inflight;
	bool stopping;
	uint64_t stop_deadline;
	bool flushing;
	uint64_t flush_deadline;

	/* stats (atomics: read from the metrics job) */
	atomic_uint_fast64_t st_conns, st_accepted, st_requests, st_events,
		st_gaps, st_in, st_out, st_zstd, st_proto, st_resumed;
};

static void conn_close(thn_conn *c, const char *why);
static void complete(thn_job *j);
static void conn_flush(thn_conn *c);
static void flush_dirty(thsrv *srv);
static void process_frame(thn_conn *c, const thp_frame *f);

static uint64_t now_ns(void)
{
	return th_now_ns();
}

static void logf_(thsrv *srv, const char *fmt, ...) TH_PRINTF(2, 3);
static void logf_(thsrv *srv, const char *fmt, ...)
{
	if (!srv->cfg.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(srv->cfg.log, fmt, ap);
	va_end(ap);
	fputc('\n', srv->cfg.log);
	fflush(srv->cfg.log);
}

/* ---- small helpers ---- */

thn_pool *thn_srv_pool(thsrv *srv)
{
	return srv->pool;
}

const thsrv_config *thn_srv_config(thsrv *srv)
{
	return &srv->cfg;
}

static void wake(thsrv *srv)
{
	uint64_t one = 1;
	/* A full counter (never in practice) still leaves the fd readable. */
	ssize_t w = write(srv->wake_fd, &one, sizeof one);
	(void)w;
}

void thn_srv_chan_ready(thsrv *srv, thsrv_channel *ch)
{
	pthread_mutex_lock(&srv->mu);
	bool was_empty = !srv->ready_head && !srv->done_head && !srv->ch_ready;
	ch->ready_next = srv->ch_ready;
	srv->ch_ready = ch;
	pthread_mutex_unlock(&srv->mu);
	if (was_empty)
		wake(srv);
}

void thn_srv_ready(thsrv *srv, thn_sub *s)
{
	pthread_mutex_lock(&srv->mu);
	bool was_empty = !srv->ready_head && !srv->done_head;
	s->ready_next = srv->ready_head;
	srv->ready_head = s;
	pthread_mutex_unlock(&srv->mu);
	if (was_empty)
		wake(srv);
}

static void job_done(thn_job *j)
{
	thsrv *srv = j->srv;
	j->done_next = NULL;
	pthread_mutex_lock(&srv->mu);
	bool was_empty = !srv->ready_head && !srv->done_head;
	if (srv->done_tail)
		srv->done_tail->done_next = j;
	else
		srv->done_head = j;
	srv->done_tail = j;
	pthread_mutex_unlock(&srv->mu);
	if (was_empty)
		wake(srv);
}

static size_t out_len(thn_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) + c->obuf.len;
}

static void mark_dirty(thn_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->refs++; /* the dirty list's; dropped by flush_dirty */
		c->dirty_next = c->srv->dirty;
		c->srv->dirty = c;
	}
}

/* Append a frame to c's output batch. */
static void send_frame(thn_conn *c, uint8_t type, uint8_t flags, uint32_t stream,
		       const void *payload, size_t len)
{
	if (c->dead)
		return;
	bool z = false;
	size_t cmin = type == THP_DATA || type == THP_RESPONSE || type == THP_EVENT
			      ? c->compress_min : 0;
	if (thp_frame_append(&c->obuf, type, flags, stream, payload, len, cmin, &z)) {
		conn_close(c, "out of memory");
		return;
	}
	if (z)
		atomic_fetch_add(&c->srv->st_zstd, 1);
	mark_dirty(c);
}

static void send_error(thn_conn *c, uint32_t stream, const char *code, int status,
		       const char *msg)
{
	uint8_t *p;
	size_t n;
	if (thp_error_encode(code, status, msg, &p, &n) == 0) {
		send_frame(c, THP_ERROR, THP_F_END, stream, p, n);
		thp_free(p);
	}
}

static void conn_goaway(thn_conn *c, const char *code, const char *msg);

/* Protocol violation: GOAWAY with the reason, then close once flushed. */
static void violation(thn_conn *c, const char *code, const char *msg)
{
	if (c->dead || c->closing)
		return;
	atomic_fetch_add(&c->srv->st_proto, 1);
	logf_(c->srv, "conn %" PRIu64 " %s: protocol violation: %s", c->id, c->peer,
	      msg);
	conn_goaway(c, code, msg);
}

/* ---- streams ---- */

static void job_submit(thsrv *srv, thn_job *j);
static thn_job *job_new_detached(thsrv *srv, const struct thn_cmd *cmd);

static void stream_free(thn_stream *st)
{
	for (thn_msg *m = st->sq, *n; m; m = n) {
		n = m->next;
		th_free(m);
	}
	if (st->sub) {
		/* It may still sit on the ready list: no dangling session. */
		st->sub->sess = NULL;
		thn_sub_close(st->sub);
		thn_sub_unref(st->sub);
	}
	if (st->reader)
		ths_reader_close(st->reader);
	thp_buf_release(&st->body);
	th_free(st);
}

/* Remove a stream: in-flight jobs are abandoned (their result dropped). */
static void stream_end(thn_sess *s, thn_stream *st)
{
	if (st->job) {
		atomic_store(&st->job->cancelled, true);
		if (st->kind == ST_UPLOAD) {
			/* Never submitted: ours to free. */
			thn_job *j = st->job;
			th_free(j->req);
			th_free(j->body);
			thn_conn *c = j->conn;
			th_free(j);
			c->refs--;
		}
		st->job = NULL;
	}
	if (st->chan) {
		/* The server's side closes: the runtime's channel_close runs on
		 * a worker (unless the runtime closed first). */
		thsrv_channel *ch = st->chan;
		st->chan = NULL;
		ch->sess = NULL;
		thn_job *j = job_new_detached(s->srv, &thn_cmd_chan_close);
		if (j) {
			j->chan = ch;
			job_submit(s->srv, j);
		} else {
			thn_chan_close(ch); /* out of memory: close here */
			thn_chan_unref(ch);
		}
	}
	thn_imap_del(&s->streams, st->id);
	stream_free(st);
}

static void sess_free(thsrv *srv, thn_sess *s)
{
	for (size_t i = 0; i < s->streams.cap; i++) {
		thn_stream *st = s->streams.e[i].p;
		if (THN_IMAP_LIVE(st))
			stream_end(s, st);
	}
	thn_imap_release(&s->streams);
	if (s->prev)
		s->prev->next = s->next;
	else if (srv->sessions == s)
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	th_free(s);
}

static thn_sess *sess_new(thsrv *srv)
{
	thn_sess *s = th_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	uint8_t raw[THP_SESSION_LEN / 2];
	if (RAND_bytes(raw, sizeof raw) != 1) {
		/* Defensive: fall back to a counter-and-clock id. */
		uint64_t a = now_ns(), b = ++srv->next_conn_id;
		memcpy(raw, &a, 8);
		memcpy(raw + 8, &b, 8);
	}
	th_hex(raw, sizeof raw, s->id);
	s->srv = srv;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	return s;
}

/* ---- connections ---- */

static void conn_unref(thn_conn *c)
{
	if (--c->refs > 0)
		return;
	thp_buf_release(&c->obuf);
	th_free(c);
}

static void conn_free_transport(thn_conn *c)
{
	if (c->ws) {
		wslay_event_context_free(c->ws);
		c->ws = NULL;
	}
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

static void obuf_release(const void *data, size_t len, void *arg)
{
	TH_UNUSED(len);
	TH_UNUSED(arg);
	th_free((void *)data);
}

/* Send what wslay holds; then, if a close is pending, the close. Our send
 * callback never blocks, so one wslay_event_send empties the queue. */
static void ws_pump(thn_conn *c)
{
	if (!c->ws || c->in_ws || c->dead)
		return;
	(void)wslay_event_send(c->ws);
	if (c->ws_close[0]) {
		wslay_event_queue_close(c->ws, WSLAY_CODE_NORMAL_CLOSURE,
					(const uint8_t *)c->ws_close, strlen(c->ws_close));
		c->ws_close[0] = 0;
		(void)wslay_event_send(c->ws);
	}
}

static void conn_flush(thn_conn *c)
{
	if (c->dead || !c->obuf.len)
		return;
	if (c->is_ws && !c->ws) {
		c->obuf.len = 0; /* defensive: nothing is sent before the upgrade */
		return;
	}
	size_t n = c->obuf.len;
	atomic_fetch_add(&c->srv->st_out, n);
	if (c->is_ws) {
		struct wslay_event_msg m = { WSLAY_BINARY_FRAME, c->obuf.p, n };
		/* Inside wslay_event_recv only queue; read_cb sends after. */
		if (wslay_event_queue_msg(c->ws, &m) != 0 ||
		    (!c->in_ws && wslay_event_send(c->ws) != 0)) {
			c->obuf.len = 0;
			conn_close(c, "WebSocket send failed");
			return;
		}
	} else if (n >= 16384) {
		/* A big batch (events, a download chunk): hand the buffer over
		 * instead of copying it. */
		struct evbuffer *out = bufferevent_get_output(c->bev);
		if (evbuffer_add_reference(out, c->obuf.p, n, obuf_release, NULL) != 0) {
			c->obuf.len = 0;
			conn_close(c, "write failed");
			return;
		}
		c->obuf = (thp_buf){ 0 };
		if (c->closing && evbuffer_get_length(out) == 0)
			conn_close(c, "closed");
		return;
	} else if (bufferevent_write(c->bev, c->obuf.p, n) != 0) {
		c->obuf.len = 0;
		conn_close(c, "write failed");
		return;
	}
	c->obuf.len = 0;
	/* Give back memory after a big transfer. */
	if (c->obuf.cap > (1u << 20)) {
		thp_buf_release(&c->obuf);
	}
	if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    (!c->ws || !wslay_event_want_write(c->ws)))
		conn_close(c, "closed");
}

static void flush_dirty(thsrv *srv)
{
	while (srv->dirty) {
		thn_conn *c = srv->dirty;
		srv->dirty = c->dirty_next;
		c->dirty = false;
		if (!c->dead)
			conn_flush(c);
		conn_unref(c);
	}
}

/* Take c's session off it: requests, uploads, downloads and channels
 * end; subscriptions are paused and kept when the client negotiated
 * "resume" (and keep_subs). Returns true when the session is kept (it
 * then expires after session_ttl_ms unless resumed), false when the
 * caller must free it. */
static bool sess_detach(thn_conn *c, bool stopping)
{
	thsrv *srv = c->srv;
	thn_sess *s = c->sess;
	c->sess = NULL;
	s->conn = NULL;
	bool keep = false;
	for (size_t i = 0; i < s->streams.cap; i++) {
		thn_stream *st = s->streams.e[i].p;
		if (!THN_IMAP_LIVE(st))
			continue;
		if (st->kind == ST_SUB && (c->features & THP_FEAT_RESUME) && !stopping) {
			thn_sub_pause(st->sub);
			keep = true;
		} else {
			stream_end(s, st);
		}
	}
	if (keep)
		s->expires = now_ns() + (uint64_t)srv->cfg.session_ttl_ms * 1000000u;
	return keep;
}

static void conn_close(thn_conn *c, const char *why)
{
	if (c->dead)
		return;
	thsrv *srv = c->srv;
	c->dead = true;
	atomic_fetch_sub(&srv->st_conns, 1);
	logf_(srv, "conn %" PRIu64 " %s: %s", c->id, c->peer, why);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	thn_sess *s = c->sess;
	if (s && !sess_detach(c, srv->stopping))
		sess_free(srv, s);
	/* Inside wslay_event_recv the context must outlive the call: read_cb
	 * frees the transport when it returns. */
	if (!c->in_ws)
		conn_free_transport(c);
	conn_unref(c);
}

/* Close politely: GOAWAY with a code, then close once flushed. */
static void conn_goaway(thn_conn *c, const char *code, const char *msg)
{
	if (c->dead || c->closing)
		return;
	uint8_t *p;
	size_t n;
	if (c->state != C_HTTP && thp_error_encode(code, 0, msg, &p, &n) == 0) {
		send_frame(c, THP_GOAWAY, 0, 0, p, n);
		thp_free(p);
	}
	c->closing = true;
	c->close_deadline = now_ns() + FLUSH_GRACE_NS;
	/* The frames must go out before the WebSocket close, but wslay sends
	 * control frames first: queue the close only once they are out. */
	conn_flush(c);
	if (!c->dead && c->is_ws && c->ws && c->state != C_HTTP) {
		snprintf(c->ws_close, sizeof c->ws_close, "%s", code);
		ws_pump(c);
	}
	if (!c->dead && !c->obuf.len &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    (!c->ws || !wslay_event_want_write(c->ws)))
		conn_close(c, msg);
}

/* ---- subscriptions and reads: output within the high-water mark ---- */

static void submit_chunk(thn_conn *c, thn_stream *st);

static void drain_sub(thn_conn *c, thn_sub *sub)
{
	size_t have = out_len(c);
	if (have >= OUT_HIGH) {
		c->blocked = true;
		return;
	}
	uint64_t ev = 0, gaps = 0;
	thn_sub_drain(sub, &c->obuf, c->obuf.len + (OUT_HIGH - have), &ev, &gaps);
	if (ev || gaps) {
		atomic_fetch_add(&c->srv->st_events, ev);
		atomic_fetch_add(&c->srv->st_gaps, gaps);
		mark_dirty(c);
	}
	if (out_len(c) >= OUT_HIGH)
		c->blocked = true;
}

static void stream_end(thn_sess *s, thn_stream *st);

/* Actor -> client messages of a channel; the stream ends when the runtime
 * closed it and everything is out. */
static void drain_chan(thn_conn *c, thn_stream *st)
{
	size_t have = out_len(c);
	if (have >= OUT_HIGH) {
		c->blocked = true;
		return;
	}
	bool closed = false;
	thn_chan_drain(st->chan, &c->obuf, c->obuf.len + (OUT_HIGH - have), c->compress_min,
		       &closed);
	mark_dirty(c);
	if (closed)
		stream_end(c->sess, st);
	else if (out_len(c) >= OUT_HIGH)
		c->blocked = true;
}

static void conn_unblock(thn_conn *c)
{
	if (!c->blocked || !c->sess || c->closing)
		return;
	c->blocked = false;
	thn_imap *m = &c->sess->streams;
	for (size_t i = 0; i < m->cap && !c->dead; i++) {
		thn_stream *st = m->e[i].p;
		if (!THN_IMAP_LIVE(st))
			continue;
		if (st->kind == ST_SUB)
			drain_sub(c, st->sub);
		else if (st->kind == ST_CHAN)
			drain_chan(c, st);
		else if (st->kind == ST_READ && !st->reading && st->reader)
			submit_chunk(c, st);
	}
}

/* ---- jobs ---- */

static void job_run(thn_job *j)
{
	if (atomic_load(&j->cancelled) && j->cmd != &thn_cmd_chan_close) {
		j->rc = TH_ESTATE;
	} else if (j->cmd->flags & THN_CMD_CHUNK) {
		j->rc = j->cmd->run(j, NULL);
	} else {
		thn_args a;
		j->rc = thn_args_parse(j->req, j->req_len, &a, &j->err);
		if (j->rc == 0)
			j->rc = j->cmd->run(j, &a);
		if (j->rc && !j->err.msg[0])
			th_err_set(&j->err, j->rc, "%s", th_strerror(j->rc));
	}
}

static void job_task(thn_task *t)
{
	thn_job *j = (thn_job *)((char *)t - offsetof(thn_job, task));
	job_run(j);
	job_done(j);
}

static thn_job *job_new(thn_conn *c, uint32_t stream, const struct thn_cmd *cmd)
{
	thn_job *j = th_calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->srv = c->srv;
	j->conn = c;
	c->refs++;
	j->stream = stream;
	j->cmd = cmd;
	j->task.fn = job_task;
	j->compress_min = c->compress_min;
	th_cbor_enc_init(&j->out, NULL, 0);
	atomic_init(&j->cancelled, false);
	return j;
}

/* A job that outlives its connection (a channel's close). */
static thn_job *job_new_detached(thsrv *srv, const struct thn_cmd *cmd)
{
	thn_job *j = th_calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->srv = srv;
	j->cmd = cmd;
	j->task.fn = job_task;
	th_cbor_enc_init(&j->out, NULL, 0);
	atomic_init(&j->cancelled, false);
	return j;
}

static void job_submit(thsrv *srv, thn_job *j)
{
	srv->inflight++;
	thn_pool_submit(srv->pool, &j->task);
}

/* Release what a job produced but nobody will use. */
static void job_discard(thn_job *j)
{
	if (j->sub) {
		thn_sub_close(j->sub);
		thn_sub_unref(j->sub);
	}
	if (j->reader)
		ths_reader_close(j->reader);
	if (j->chan) {
		if (j->follow == THN_FOLLOW_CHAN)
			thn_chan_close(j->chan); /* opened for nobody */
		thn_chan_unref(j->chan);
	}
	th_cbor_enc_release(&j->out);
	th_free(j->req);
	th_free(j->body);
	thn_conn *c = j->conn;
	th_free(j);
	if (c)
		conn_unref(c);
}

static void submit_chunk(thn_conn *c, thn_stream *st)
{
	thn_job *j = job_new(c, st->id, &thn_cmd_chunk);
	if (!j) {
		send_error(c, st->id, thp_status_code(TH_ENOMEM), TH_ENOMEM,
			   "out of memory");
		stream_end(c->sess, st);
		return;
	}
	j->reader = st->reader;
	st->reader = NULL;
	st->reading = true;
	job_submit(c->srv, j);
}

/* Send the next client message to the runtime, one at a time; when the
 * client is done and nothing is pending, close our side. */
static void kick_chan(thn_conn *c, thn_stream *st)
{
	if (st->kind != ST_CHAN || st->job)
		return;
	if (st->sq) {
		thn_msg *m = st->sq;
		thn_job *j = job_new(c, st->id, &thn_cmd_chan_send);
		uint8_t *body = j ? th_malloc(m->len ? m->len : 1) : NULL;
		if (!body) {
			if (j) {
				th_free(j);
				c->refs--;
			}
			send_error(c, st->id, thp_status_code(TH_ENOMEM), TH_ENOMEM, "out of memory");
			stream_end(c->sess, st);
			return;
		}
		st->sq = m->next;
		if (!st->sq)
			st->sq_tail = NULL;
		memcpy(body, m->data, m->len);
		j->body = body;
		j->body_len = m->len;
		th_free(m);
		j->chan = st->chan;
		thn_chan_ref(st->chan);
		st->job = j;
		job_submit(c->srv, j);
		return;
	}
	if (st->client_done) {
		send_frame(c, THP_DATA, THP_F_END, st->id, NULL, 0);
		stream_end(c->sess, st);
	}
}

static void complete(thn_job *j)
{
	thsrv *srv = j->srv;
	thn_conn *c = j->conn;
	srv->inflight--;
	thn_stream *st = NULL;
	if (c && !c->dead && c->sess)
		st = thn_imap_get(&c->sess->streams, j->stream);
	bool chunk = j->cmd == &thn_cmd_chunk;
	if (!st || (chunk ? !(st->kind == ST_READ && st->reading) : st->job != j) ||
	    atomic_load(&j->cancelled)) {
		job_discard(j);
		return;
	}
	if (j->cmd == &thn_cmd_chan_send) {
		st->job = NULL;
		if (j->rc) {
			send_error(c, st->id, thp_status_code(j->rc), j->rc, j->err.msg);
			stream_end(c->sess, st);
		} else {
			kick_chan(c, st);
		}
		job_discard(j);
		return;
	}
	if (chunk) {
		st->reading = false;
		if (j->rc) {
			send_error(c, st->id, thp_status_code(j->rc), j->rc, j->err.msg);
			stream_end(c->sess, st);
		} else {
			bool eof = j->body_len < THN_READ_CHUNK;
			send_frame(c, THP_DATA, eof ? THP_F_END : 0, st->id, j->body,
				   j->body_len);
			if (eof) {
				stream_end(c->sess, st);
			} else {
				st->reader = j->reader;
				j->reader = NULL;
				if (out_len(c) < OUT_HIGH)
					submit_chunk(c, st);
				else
					c->blocked = true;
			}
		}
		job_discard(j);
		return;
	}
	st->job = NULL;
	atomic_fetch_add(&srv->st_requests, 1);
	if (j->rc) {
		send_error(c, st->id, thp_status_code(j->rc), j->rc, j->err.msg);
		stream_end(c->sess, st);
		job_discard(j);
		return;
	}
	if (j->out.err) {
		send_error(c, st->id, thp_status_code(TH_ENOMEM), TH_ENOMEM,
			   "out of memory encoding the response");
		stream_end(c->sess, st);
		job_discard(j);
		return;
	}
	switch (j->follow) {
	case THN_FOLLOW_SUB:
		send_frame(c, THP_RESPONSE, 0, st->id, j->out.buf, j->out.len);
		st->kind = ST_SUB;
		st->sub = j->sub;
		j->sub = NULL;
		st->sub->sess = c->sess;
		thn_sub_start(st->sub);
		break;
	case THN_FOLLOW_CHAN:
		send_frame(c, THP_RESPONSE, 0, st->id, j->out.buf, j->out.len);
		st->kind = ST_CHAN;
		st->chan = j->chan;
		j->chan = NULL;
		st->chan->sess = c->sess;
		st->chan->stream = st->id;
		/* Messages the actor sent already, and the client's queued ones. */
		drain_chan(c, st);
		if (thn_imap_get(&c->sess->streams, j->stream) == st)
			kick_chan(c, st);
		break;
	case THN_FOLLOW_READ:
		send_frame(c, THP_RESPONSE, 0, st->id, j->out.buf, j->out.len);
		st->kind = ST_READ;
		st->reader = j->reader;
		j->reader = NULL;
		submit_chunk(c, st);
		break;
	default:
		send_frame(c, THP_RESPONSE, THP_F_END, st->id, j->out.buf, j->out.len);
		stream_end(c->sess, st);
		break;
	}
	job_discard(j);
}

/* ---- frames from the client ---- */

static void handle_hello(thn_conn *c, const thp_frame *f)
{
	thsrv *srv = c->srv;
	thp_hello h;
	th_err err = { 0 };
	if (thp_hello_decode(f->payload, f->len, &h, &err)) {
		send_error(c, 0, THP_ERR_BAD_REQUEST, TH_EINVAL, err.msg);
		conn_goaway(c, THP_ERR_BAD_REQUEST, "malformed HELLO");
		return;
	}
	uint32_t v = thp_negotiate(&h, 1, THP_VERSION);
	if (!v) {
		char msg[300];
		size_t len = 0;
		len += (size_t)snprintf(msg, sizeof msg, "no common protocol version: client offers");
		for (size_t i = 0; i < h.nversions && len < sizeof msg - 16; i++)
			len += (size_t)snprintf(msg + len, sizeof msg - len, "%s %u",
						i ? "," : "", h.versions[i]);
		snprintf(msg + len, sizeof msg - len, "; server speaks 1 to %d", THP_VERSION);
		logf_(srv, "conn %" PRIu64 " %s: %s", c->id, c->peer, msg);
		send_error(c, 0, THP_ERR_VERSION, TH_EUNSUPPORTED, msg);
		thp_hello_release(&h);
		conn_goaway(c, THP_ERR_VERSION, "unsupported version");
		return;
	}
	c->features = h.features & srv->features;
	c->compress_min = (c->features & THP_FEAT_ZSTD) ? srv->cfg.compress_min : 0;
	thn_sess *s = NULL;
	bool resumed = false;
	if (h.session[0] && (c->features & THP_FEAT_RESUME)) {
		for (thn_sess *x = srv->sessions; x; x = x->next)
			if (!strcmp(x->id, h.session)) {
				s = x;
				break;
			}
		if (s && s->conn) {
			/* The old connection is not dead yet: it loses the session
			 * (kept whatever it holds), then closes. */
			thn_conn *old = s->conn;
			sess_detach(old, false);
			conn_close(old, "replaced by a resumed connection");
		}
		resumed = s != NULL;
	}
	if (!s && !(s = sess_new(srv))) {
		thp_hello_release(&h);
		conn_close(c, "out of memory");
		return;
	}
	s->conn = c;
	c->sess = s;
	if (h.last_stream > s->last_stream)
		s->last_stream = h.last_stream;
	c->state = C_OPEN;

	thp_welcome w = { .version = v, .features = c->features, .resumed = resumed,
			  .max_frame = srv->cfg.max_frame,
			  .max_streams = srv->cfg.max_streams,
			  .idle_timeout_ms = srv->cfg.idle_timeout_ms };
	snprintf(w.server, sizeof w.server, "%s", SERVER_NAME);
	memcpy(w.session, s->id, sizeof w.session);
	uint8_t *p;
	size_t n;
	if (thp_welcome_encode(&w, &p, &n)) {
		thp_hello_release(&h);
		conn_close(c, "out of memory");
		return;
	}
	send_frame(c, THP_WELCOME, 0, 0, p, n);
	thp_free(p);

	if (resumed) {
		atomic_fetch_add(&srv->st_resumed, 1);
		logf_(srv, "conn %" PRIu64 " %s: resumed session %s (%zu streams)", c->id,
		      c->peer, s->id, h.nresume);
		/* Subscriptions the client does not name are over. */
		for (size_t i = 0; i < s->streams.cap; i++) {
			thn_stream *st = s->streams.e[i].p;
			if (!THN_IMAP_LIVE(st))
				continue;
			bool named = false;
			for (size_t k = 0; k < h.nresume; k++)
				named |= h.resume[k].stream == st->id;
			if (!named)
				stream_end(s, st);
		}
		for (size_t k = 0; k < h.nresume; k++) {
			thn_stream *st = thn_imap_get(&s->streams, h.resume[k].stream);
			if (!st || st->kind != ST_SUB) {
				char msg[100];
				snprintf(msg, sizeof msg, "stream %u is not a subscription of this session",
					 h.resume[k].stream);
				send_error(c, h.resume[k].stream, thp_status_code(TH_ENOTFOUND),
					   TH_ENOTFOUND, msg);
				continue;
			}
			thn_sub_resume(st->sub, h.resume[k].next);
			thn_sub_start(st->sub);
		}
	}
	thp_hello_release(&h);
}

static bool decode_payload(thn_conn *c, const thp_frame *f, const uint8_t **p,
			   size_t *n, uint8_t **owned)
{
	th_err err = { 0 };
	int rc = thp_payload(f, c->srv->cfg.max_frame, p, n, owned, &err);
	if (rc == 0)
		return true;
	if (f->stream)
		send_error(c, f->stream, rc == TH_ELIMIT ? THP_ERR_FRAME_TOO_LARGE
							 : THP_ERR_BAD_REQUEST,
			   rc, err.msg);
	else
		violation(c, THP_ERR_PROTOCOL, err.msg);
	return false;
}

/* Find the op name in a request map without decoding the rest. */
static const struct thn_cmd *request_cmd(const uint8_t *p, size_t n, char *name,
					 size_t cap, th_err *err)
{
	thn_args a;
	if (thn_args_parse(p, n, &a, err))
		return NULL;
	if (thn_arg_text(&a, "op", true, name, cap, err))
		return NULL;
	const struct thn_cmd *cmd = thn_cmd_find(name, strlen(name));
	if (!cmd)
		th_err_set(err, TH_EUNSUPPORTED, "unknown op '%s'", name);
	return cmd;
}

static void handle_request(thn_conn *c, const thp_frame *f)
{
	thsrv *srv = c->srv;
	thn_sess *s = c->sess;
	if (f->stream <= s->last_stream) {
		char msg[120];
		snprintf(msg, sizeof msg, "REQUEST on stream %u: ids must increase (last %u)",
			 f->stream, s->last_stream);
		violation(c, THP_ERR_PROTOCOL, msg);
		return;
	}
	s->last_stream = f->stream;
	if (srv->stopping) {
		send_error(c, f->stream, THP_ERR_SHUTDOWN, TH_ESTATE,
			   "the server is shutting down");
		return;
	}
	if (s->streams.n >= srv->cfg.max_streams) {
		char msg[100];
		snprintf(msg, sizeof msg, "%zu streams open (limit %u)", s->streams.n,
			 srv->cfg.max_streams);
		send_error(c, f->stream, THP_ERR_TOO_MANY_STREAMS, TH_ELIMIT, msg);
		return;
	}
	const uint8_t *p;
	size_t n;
	uint8_t *owned = NULL;
	if (!decode_payload(c, f, &p, &n, &owned))
		return;
	th_err err = { 0 };
	char op[64];
	const struct thn_cmd *cmd = request_cmd(p, n, op, sizeof op, &err);
	if (!cmd) {
		send_error(c, f->stream,
			   err.code == TH_EUNSUPPORTED ? THP_ERR_UNKNOWN_OP : THP_ERR_BAD_REQUEST,
			   err.code, err.msg);
		thp_free(owned);
		return;
	}
	bool chan = (cmd->flags & THN_CMD_CHANNEL) != 0;
	bool upload = !(f->flags & THP_F_END) && !chan;
	if (upload && !(cmd->flags & THN_CMD_UPLOAD)) {
		char msg[120];
		snprintf(msg, sizeof msg, "op '%s' takes no DATA: send its REQUEST with END", op);
		send_error(c, f->stream, THP_ERR_BAD_REQUEST, TH_EINVAL, msg);
		thp_free(owned);
		return;
	}
	thn_stream *st = th_calloc(1, sizeof *st);
	thn_job *j = st ? job_new(c, f->stream, cmd) : NULL;
	uint8_t *req = j ? th_malloc(n ? n : 1) : NULL;
	if (!req || thn_imap_put(&s->streams, f->stream, st)) {
		if (j) {
			th_free(j);
			c->refs--;
		}
		th_free(req);
		th_free(st);
		thp_free(owned);
		send_error(c, f->stream, thp_status_code(TH_ENOMEM), TH_ENOMEM, "out of memory");
		return;
	}
	memcpy(req, p, n);
	thp_free(owned);
	j->req = req;
	j->req_len = n;
	st->id = f->stream;
	st->job = j;
	st->is_chan = chan;
	st->client_done = chan && (f->flags & THP_F_END);
	if (upload) {
		st->kind = ST_UPLOAD;
		return;
	}
	st->kind = ST_REQ;
	st->deadline = now_ns() + (uint64_t)srv->cfg.request_timeout_ms * 1000000u;
	if ((cmd->flags & THN_CMD_LOOP_SEND) && srv->cfg.ops &&
	    (srv->cfg.ops->loop_safe & THSRV_LOOP_SEND) && !thn_wants_wait(req, n)) {
		/* Never blocks: run it here and answer at once. */
		srv->inflight++;
		job_run(j);
		complete(j);
		return;
	}
	job_submit(srv, j);
}

static void handle_data(thn_conn *c, const thp_frame *f, thn_stream *st)
{
	thsrv *srv = c->srv;
	if (st->is_chan && !st->client_done) {
		/* One DATA frame = one message, sent to the runtime in order. */
		const uint8_t *p;
		size_t n;
		uint8_t *owned = NULL;
		if (!decode_payload(c, f, &p, &n, &owned)) {
			stream_end(c->sess, st);
			return;
		}
		if (n || !(f->flags & THP_F_END)) {
			thn_msg *m = th_malloc(sizeof *m + (n ? n : 1));
			if (!m) {
				thp_free(owned);
				send_error(c, st->id, thp_status_code(TH_ENOMEM), TH_ENOMEM,
					   "out of memory");
				stream_end(c->sess, st);
				return;
			}
			m->next = NULL;
			m->len = n;
			if (n)
				memcpy(m->data, p, n);
			if (st->sq_tail)
				st->sq_tail->next = m;
			else
				st->sq = m;
			st->sq_tail = m;
		}
		thp_free(owned);
		if (f->flags & THP_F_END)
			st->client_done = true;
		kick_chan(c, st);
		return;
	}
	if (st->kind != ST_UPLOAD)
		return; /* after END or on a stream that takes none: ignored */
	const uint8_t *p;
	size_t n;
	uint8_t *owned = NULL;
	if (!decode_payload(c, f, &p, &n, &owned)) {
		stream_end(c->sess, st);
		return;
	}
	if (st->body.len + n > srv->cfg.max_upload) {
		char msg[120];
		snprintf(msg, sizeof msg, "upload above the limit of %" PRIu64 " bytes",
			 srv->cfg.max_upload);
		send_error(c, st->id, thp_status_code(TH_ELIMIT), TH_ELIMIT, msg);
		stream_end(c->sess, st);
		thp_free(owned);
		return;
	}
	if (thp_buf_append(&st->body, p, n)) {
		send_error(c, st->id, thp_status_code(TH_ENOMEM), TH_ENOMEM, "out of memory");
		stream_end(c->sess, st);
		thp_free(owned);
		return;
	}
	thp_free(owned);
	if (f->flags & THP_F_END) {
		thn_job *j = st->job;
		j->body = st->body.p;
		j->body_len = st->body.len;
		j->has_body = true;
		st->body = (thp_buf){ 0 };
		st->kind = ST_REQ;
		st->deadline = now_ns() + (uint64_t)srv->cfg.request_timeout_ms * 1000000u;
		job_submit(srv, j);
	}
}

static void handle_credit(thn_conn *c, const thp_frame *f, thn_stream *st)
{
	if (st->kind != ST_SUB)
		return;
	const uint8_t *p;
	size_t n;
	uint8_t *owned = NULL;
	if (!decode_payload(c, f, &p, &n, &owned))
		return;
	thn_args a;
	uint64_t k = 0;
	th_err err = { 0 };
	if (thn_args_parse(p, n, &a, &err) || thn_arg_uint(&a, "n", true, &k, &err)) {
		thp_free(owned);
		violation(c, THP_ERR_PROTOCOL, "CREDIT payload must be {\"n\": count}");
		return;
	}
	thp_free(owned);
	thn_sub_add_credit(st->sub, k);
	drain_sub(c, st->sub);
}

static void process_frame(thn_conn *c, const thp_frame *f)
{
	c->last_rx = now_ns();
	if (c->state == C_HELLO) {
		if (f->type != THP_HELLO) {
			char msg[80];
			snprintf(msg, sizeof msg, "expected HELLO, got %s", thp_type_name(f->type));
			violation(c, THP_ERR_PROTOCOL, msg);
			return;
		}
		handle_hello(c, f);
		return;
	}
	thn_sess *s = c->sess;
	thn_stream *st = f->stream ? thn_imap_get(&s->streams, f->stream) : NULL;
	switch (f->type) {
	case THP_REQUEST:
		handle_request(c, f);
		return;
	case THP_PING:
		send_frame(c, THP_PONG, 0, 0, f->payload, 8);
		return;
	case THP_PONG:
		return;
	case THP_GOAWAY:
		conn_goaway(c, "closing", "client said goodbye");
		return;
	case THP_ERROR:
		if (f->stream == 0) {
			conn_close(c, "client sent a connection error");
			return;
		}
		if (st)
			stream_end(s, st);
		return;
	case THP_DATA:
	case THP_CREDIT:
	case THP_CANCEL:
		break;
	default: {
		char msg[80];
		snprintf(msg, sizeof msg, "%s frames go from server to client",
			 thp_type_name(f->type));
		violation(c, THP_ERR_PROTOCOL, msg);
		return;
	}
	}
	if (!st) {
		if (f->stream > s->last_stream) {
			char msg[80];
			snprintf(msg, sizeof msg, "%s on stream %u, which was never opened",
				 thp_type_name(f->type), f->stream);
			violation(c, THP_ERR_PROTOCOL, msg);
		}
		return; /* a stream that just ended: late frames are fine */
	}
	if (f->type == THP_CANCEL)
		stream_end(s, st);
	else if (f->type == THP_DATA)
		handle_data(c, f, st);
	else
		handle_credit(c, f, st);
}

/* Split bytes into frames: TCP input (from an evbuffer) and the content of
 * a WebSocket message share this. Returns bytes consumed; stops early
 * when the connection is closing. */
static size_t process_bytes(thn_conn *c, const uint8_t *buf, size_t n, bool whole)
{
	size_t off = 0;
	while (off < n && !c->dead && !c->closing) {
		thp_frame f;
		size_t used = 0;
		th_err err = { 0 };
		uint32_t max = c->state == C_OPEN ? c->srv->cfg.max_frame : THP_HANDSHAKE_MAX;
		int rc = thp_parse(buf + off, n - off, max, &f, &used, &err);
		if (rc == 1) {
			if (whole)
				violation(c, THP_ERR_PROTOCOL,
					  "WebSocket message ends inside a frame");
			break;
		}
		if (rc < 0) {
			violation(c, rc == TH_ELIMIT ? THP_ERR_FRAME_TOO_LARGE : THP_ERR_PROTOCOL,
				  err.msg);
			break;
		}
		process_frame(c, &f);
		off += used;
	}
	return off;
}

/* ---- transport callbacks ---- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
			  int flags, void *user)
{
	TH_UNUSED(flags);
	thn_conn *c = user;
	int n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
			  size_t len, int flags, void *user)
{
	TH_UNUSED(flags);
	thn_conn *c = user;
	if (bufferevent_write(c->bev, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
			 void *user)
{
	TH_UNUSED(ctx);
	TH_UNUSED(user);
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
		      const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	TH_UNUSED(ctx);
	thn_conn *c = user;
	if (c->dead || c->closing)
		return;
	if (arg->opcode == WSLAY_BINARY_FRAME) {
		atomic_fetch_add(&c->srv->st_in, arg->msg_length);
		process_bytes(c, arg->msg, arg->msg_length, true);
	} else if (arg->opcode == WSLAY_TEXT_FRAME) {
		violation(c, THP_ERR_PROTOCOL, "text messages are not part of theater.v1: "
			  "send frames in binary messages");
	}
}

static const struct wslay_event_callbacks ws_callbacks = {
	ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb
};

static void http_upgrade(thn_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > THN_WS_HEADER_MAX) {
			static const char r[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
						"Connection: close\r\nContent-Length: 0\r\n\r\n";
			bufferevent_write(c->bev, r, sizeof r - 1);
			c->closing = true;
			c->close_deadline = now_ns() + FLUSH_GRACE_NS;
			logf_(c->srv, "conn %" PRIu64 " %s: HTTP head above %d bytes", c->id,
			      c->peer, THN_WS_HEADER_MAX);
		}
		return;
	}
	size_t hl = (size_t)end.pos + 4;
	if (hl > THN_WS_HEADER_MAX) {
		c->closing = true;
		c->close_deadline = now_ns();
		return;
	}
	char *head = (char *)evbuffer_pullup(in, (ev_ssize_t)hl);
	char *resp = NULL;
	size_t rl = 0;
	th_err err = { 0 };
	int rc = thn_ws_server_handshake(head, hl, &resp, &rl, &err);
	evbuffer_drain(in, hl);
	if (resp)
		bufferevent_write(c->bev, resp, rl);
	th_free(resp);
	if (rc) {
		logf_(c->srv, "conn %" PRIu64 " %s: %s", c->id, c->peer, err.msg);
		c->closing = true;
		c->close_deadline = now_ns() + FLUSH_GRACE_NS;
		return;
	}
	if (wslay_event_context_server_init(&c->ws, &ws_callbacks, c) != 0) {
		conn_close(c, "out of memory");
		return;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)c->srv->cfg.max_frame +
							   THP_HEADER_LEN);
	c->state = C_HELLO;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	thn_conn *c = arg;
	thsrv *srv = c->srv;
	TH_UNUSED(bev);
	c->refs++; /* the connection may close under us */
	if (c->closing && c->state == C_HTTP) {
		evbuffer_drain(bufferevent_get_input(c->bev),
			       evbuffer_get_length(bufferevent_get_input(c->bev)));
	} else if (c->is_ws) {
		if (c->state == C_HTTP)
			http_upgrade(c);
		if (!c->dead && c->ws && c->state != C_HTTP) {
			c->in_ws = true;
			int rc = wslay_event_recv(c->ws);
			c->in_ws = false;
			if (c->dead) {
				conn_free_transport(c);
			} else if (rc != 0) {
				conn_close(c, "WebSocket protocol error");
			} else {
				ws_pump(c);
				if (!c->dead && !wslay_event_want_read(c->ws) &&
				    !wslay_event_want_write(c->ws))
					conn_close(c, "WebSocket closed");
			}
		}
	} else {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		while (!c->dead && !c->closing) {
			size_t avail = evbuffer_get_length(in);
			if (avail < THP_HEADER_LEN)
				break;
			uint8_t *h = evbuffer_pullup(in, THP_HEADER_LEN);
			uint32_t len = (uint32_t)h[6] << 24 | (uint32_t)h[7] << 16 |
				       (uint32_t)h[8] << 8 | h[9];
			size_t need = THP_HEADER_LEN + (size_t)len;
			/* Let thp_parse judge the header before waiting for a
			 * payload that may be absurdly large. */
			if (avail < need) {
				process_bytes(c, h, THP_HEADER_LEN, false);
				break;
			}
			uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)need);
			size_t used = process_bytes(c, p, need, false);
			if (c->dead)
				break;
			atomic_fetch_add(&srv->st_in, used);
			evbuffer_drain(in, used ? used : need);
		}
		if (!c->dead && c->closing)
			evbuffer_drain(in, evbuffer_get_length(in));
	}
	flush_dirty(srv);
	conn_unref(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	thn_conn *c = arg;
	TH_UNUSED(bev);
	if (c->dead)
		return;
	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 && !c->obuf.len &&
		    (!c->ws || !wslay_event_want_write(c->ws)))
			conn_close(c, "closed after flush");
		return;
	}
	if (c->blocked) {
		c->refs++;
		conn_unblock(c);
		flush_dirty(c->srv);
		conn_unref(c);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	thn_conn *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		char why[300];
		if (c->is_tls && (what & BEV_EVENT_ERROR)) {
			unsigned long e = bufferevent_get_openssl_error(bev);
			if (e) {
				char s[256];
				ERR_error_string_n(e, s, sizeof s);
				snprintf(why, sizeof why, "TLS error: %s", s);
			} else {
				snprintf(why, sizeof why, "connection error: %s",
					 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			}
		} else if (what & BEV_EVENT_ERROR) {
			snprintf(why, sizeof why, "connection error: %s",
				 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		} else {
			snprintf(why, sizeof why, "peer closed");
		}
		thsrv *srv = c->srv;
		conn_close(c, why);
		flush_dirty(srv);
	}
}

static void accept_any(thsrv *srv, evutil_socket_t fd, struct sockaddr *sa, bool ws)
{
	if (srv->stopping) {
		evutil_closesocket(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	thn_conn *c = th_calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	struct bufferevent *bev;
	if (srv->ssl) {
		SSL *ssl = SSL_new(srv->ssl);
		bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl,
							   BUFFEREVENT_SSL_ACCEPTING,
							   BEV_OPT_CLOSE_ON_FREE)
			  : NULL;
		if (!bev && ssl)
			SSL_free(ssl);
		if (bev)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!bev) {
		evutil_closesocket(fd);
		th_free(c);
		return;
	}
	c->srv = srv;
	c->refs = 1;
	c->id = ++srv->next_conn_id;
	c->bev = bev;
	c->is_ws = ws;
	c->is_tls = srv->ssl != NULL;
	c->state = ws ? C_HTTP : C_HELLO;
	c->opened = c->last_rx = now_ns();
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	atomic_fetch_add(&srv->st_conns, 1);
	atomic_fetch_add(&srv->st_accepted, 1);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	logf_(srv, "conn %" PRIu64 " %s: accepted (%s%s)", c->id, c->peer,
	      c->is_tls ? "tls" : "tcp", ws ? "+ws" : "");
}

static void accept_tcp(struct evconnlistener *l, evutil_socket_t fd,
		       struct sockaddr *sa, int len, void *arg)
{
	TH_UNUSED(l);
	TH_UNUSED(len);
	accept_any(arg, fd, sa, false);
}

static void accept_ws(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int len, void *arg)
{
	TH_UNUSED(l);
	TH_UNUSED(len);
	accept_any(arg, fd, sa, true);
}

static void accept_error(struct evconnlistener *l, void *arg)
{
	TH_UNUSED(l);
	/* EMFILE and friends: log and keep going; the listener stays. */
	logf_(arg, "accept: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* ---- loop housekeeping ---- */

static void begin_shutdown(thsrv *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	srv->stop_deadline = now_ns() + (uint64_t)srv->cfg.request_timeout_ms * 1000000u;
	logf_(srv, "shutting down: %d requests in flight", srv->inflight);
	if (srv->tcp_l)
		evconnlistener_disable(srv->tcp_l);
	if (srv->ws_l)
		evconnlistener_disable(srv->ws_l);
	/* Tell clients now; they stop sending requests. */
	for (thn_conn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (c->state != C_OPEN) {
			conn_close(c, "shutdown during handshake");
			continue;
		}
		uint8_t *p;
		size_t len;
		if (thp_error_encode(THP_ERR_SHUTDOWN, 0, "server shutting down", &p, &len) == 0) {
			send_frame(c, THP_GOAWAY, 0, 0, p, len);
			thp_free(p);
		}
	}
	flush_dirty(srv);
}

static void shutdown_progress(thsrv *srv)
{
	uint64_t now = now_ns();
	if (!srv->flushing && (srv->inflight == 0 || now >= srv->stop_deadline)) {
		srv->flushing = true;
		srv->flush_deadline = now + FLUSH_GRACE_NS;
		for (thn_conn *c = srv->conns, *n; c; c = n) {
			n = c->next;
			c->closing = true;
			mark_dirty(c);
			conn_flush(c);
			if (!c->dead && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
			    (!c->ws || !wslay_event_want_write(c->ws)))
				conn_close(c, "shutdown");
		}
	}
	if (srv->flushing && (!srv->conns || now >= srv->flush_deadline))
		event_base_loopbreak(srv->base);
}

static void process_queues(thsrv *srv)
{
	pthread_mutex_lock(&srv->mu);
	thn_job *done = srv->done_head;
	srv->done_head = srv->done_tail = NULL;
	thn_sub *ready = srv->ready_head;
	srv->ready_head = NULL;
	thsrv_channel *chs = srv->ch_ready;
	srv->ch_ready = NULL;
	pthread_mutex_unlock(&srv->mu);
	while (done) {
		thn_job *n = done->done_next;
		complete(done);
		done = n;
	}
	while (ready) {
		thn_sub *n = ready->ready_next;
		thn_sub_unready(ready);
		thn_sess *s = ready->sess;
		if (s && s->conn && !s->conn->dead && !s->conn->closing &&
		    s->conn->state == C_OPEN)
			drain_sub(s->conn, ready);
		thn_sub_unref(ready);
		ready = n;
	}
	while (chs) {
		thsrv_channel *n = chs->ready_next;
		pthread_mutex_lock(&chs->mu);
		chs->in_ready = false;
		pthread_mutex_unlock(&chs->mu);
		thn_sess *s = chs->sess;
		thn_conn *c = s ? s->conn : NULL;
		thn_stream *st = s ? thn_imap_get(&s->streams, chs->stream) : NULL;
		if (c && !c->dead && !c->closing && st && st->chan == chs)
			drain_chan(c, st);
		thn_chan_unref(chs);
		chs = n;
	}
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	thsrv *srv = arg;
	TH_UNUSED(what);
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof v);
	(void)r;
	if (atomic_load(&srv->stop_req))
		begin_shutdown(srv);
	process_queues(srv);
	flush_dirty(srv);
	if (srv->stopping)
		shutdown_progress(srv);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	thsrv *srv = arg;
	TH_UNUSED(fd);
	TH_UNUSED(what);
	uint64_t now = now_ns();
	uint64_t hs = (uint64_t)srv->cfg.handshake_timeout_ms * 1000000u;
	uint64_t idle = (uint64_t)srv->cfg.idle_timeout_ms * 1000000u;
	for (thn_conn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (c->closing) {
			if (c->close_deadline && now >= c->close_deadline)
				conn_close(c, "flush timed out");
			continue;
		}
		if (c->state != C_OPEN) {
			if (now - c->opened > hs)
				conn_close(c, "handshake timed out");
			continue;
		}
		if (idle && now - c->last_rx > idle) {
			conn_goaway(c, THP_ERR_IDLE, "idle timeout");
			continue;
		}
		thn_imap *m = &c->sess->streams;
		for (size_t i = 0; i < m->cap; i++) {
			thn_stream *st = m->e[i].p;
			if (THN_IMAP_LIVE(st) && st->kind == ST_REQ && st->job &&
			    now > st->deadline) {
				char msg[120];
				snprintf(msg, sizeof msg, "%s did not finish within %u ms",
					 st->job->cmd->op, srv->cfg.request_timeout_ms);
				send_error(c, st->id, THP_ERR_TIMEOUT, TH_ETIMEOUT, msg);
				stream_end(c->sess, st);
			}
		}
	}
	for (thn_sess *s = srv->sessions, *n; s; s = n) {
		n = s->next;
		if (!s->conn && now >= s->expires) {
			logf_(srv, "session %s expired", s->id);
			sess_free(srv, s);
		}
	}
	flush_dirty(srv);
	if (srv->stopping)
		shutdown_progress(srv);
}

/* ---- public API ---- */

int thsrv_bytes_set(thsrv_bytes *b, const void *p, size_t n)
{
	uint8_t *d = th_malloc(n ? n : 1);
	if (!d)
		return TH_ENOMEM;
	if (n)
		memcpy(d, p, n);
	th_free(b->data);
	b->data = d;
	b->len = n;
	return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

/* "ADDR:PORT" or "[V6]:PORT" (ADDR may be a host name); port 0 is fine. */
static int parse_listen(const char *addr, struct sockaddr_storage *ss, int *len,
			th_err *err)
{
	char host[256];
	const char *port;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - addr) > sizeof host)
			goto bad;
		snprintf(host, sizeof host, "%.*s", (int)(rb - addr - 1), addr + 1);
		port = rb + 2;
	} else {
		const char *colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof host)
			goto bad;
		snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
		port = colon + 1;
	}
	char *end;
	long pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 0 || pn > 65535 || !host[0])
		goto bad;
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || !ai)
		return th_err_set(err, TH_EINVAL, "listen address '%s': %s", addr,
				  gai_strerror(rc));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = (int)ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	return th_err_set(err, TH_EINVAL,
			  "cannot parse listen address '%s' (expected ADDR:PORT, "
			  "e.g. 127.0.0.1:9000 or [::1]:9000)", addr);
}

static int bind_listener(thsrv *srv, const char *addr, bool ws,
			 struct evconnlistener **out, int *port, th_err *err)
{
	struct sockaddr_storage ss;
	int len = 0;
	memset(&ss, 0, sizeof ss);
	int rc = parse_listen(addr, &ss, &len, err);
	if (rc)
		return rc;
	if (!srv->ssl && !srv->cfg.insecure && !is_loopback((struct sockaddr *)&ss))
		return th_err_set(err, TH_EPERM,
				  "refusing plaintext on %s (not a loopback address): "
				  "give --tls-cert and --tls-key, or --insecure", addr);
	*out = evconnlistener_new_bind(srv->base, ws ? accept_ws : accept_tcp, srv,
				       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					       LEV_OPT_CLOSE_ON_EXEC,
				       4096, (struct sockaddr *)&ss, len);
	if (!*out)
		return th_err_set(err, TH_EIO, "cannot listen on %s: %s", addr,
				  strerror(errno));
	evconnlistener_set_error_cb(*out, accept_error);
	struct sockaddr_storage got;
	socklen_t gl = sizeof got;
	if (getsockname(evconnlistener_get_fd(*out), (struct sockaddr *)&got, &gl) == 0)
		*port = ntohs(got.ss_family == AF_INET6
				      ? ((struct sockaddr_in6 *)&got)->sin6_port
				      : ((struct sockaddr_in *)&got)->sin_port);
	return 0;
}

int thsrv_new(const thsrv_config *cfg, thsrv **out, th_err *err)
{
	*out = NULL;
	if (!cfg->store || !cfg->chains)
		return th_err_set(err, TH_EINVAL, "server: a store and a chain store are required");
	if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL))
		return th_err_set(err, TH_EINVAL, "TLS needs both --tls-cert and --tls-key");
	if (cfg->tls_client_ca && !cfg->tls_cert)
		return th_err_set(err, TH_EINVAL,
				  "--tls-client-ca needs TLS (--tls-cert and --tls-key)");
	thsrv *srv = th_calloc(1, sizeof *srv);
	if (!srv)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	srv->cfg = *cfg;
	srv->wake_fd = -1;
	pthread_mutex_init(&srv->mu, NULL);
	thsrv_config *c = &srv->cfg;
	if (!c->max_frame)
		c->max_frame = THP_DEFAULT_MAX_FRAME;
	if (c->max_frame < THP_HANDSHAKE_MAX)
		c->max_frame = THP_HANDSHAKE_MAX;
	if (!c->max_streams)
		c->max_streams = THP_DEFAULT_MAX_STREAMS;
	if (!c->idle_timeout_ms)
		c->idle_timeout_ms = 300000;
	if (!c->request_timeout_ms)
		c->request_timeout_ms = 60000;
	if (!c->handshake_timeout_ms)
		c->handshake_timeout_ms = 10000;
	if (!c->session_ttl_ms)
		c->session_ttl_ms = 60000;
	if (!c->workers)
		c->workers = 4;
	if (!c->max_workers)
		c->max_workers = 256;
	if (!c->compress_min)
		c->compress_min = THP_DEFAULT_COMPRESS_MIN;
	if (!c->max_upload)
		c->max_upload = 1ull << 30;
	if (!c->sub_buffer_max)
		c->sub_buffer_max = 65536;
	srv->features = THP_FEAT_ZSTD | THP_FEAT_RESUME;
	int rc = 0;
	const char *listen = c->listen ? c->listen : THSRV_DEFAULT_LISTEN;
	if ((listen && !(srv->listen = th_strdup(listen))) ||
	    (c->ws_listen && !(srv->ws_listen = th_strdup(c->ws_listen)))) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	c->listen = srv->listen;
	c->ws_listen = srv->ws_listen;
	if (c->tls_cert && !(srv->ssl = thn_tls_server_ctx(c->tls_cert, c->tls_key,
							   c->tls_client_ca, err))) {
		rc = err ? err->code : TH_EINVAL;
		goto fail;
	}
	/* Strings other than the addresses are used only here. */
	c->tls_cert = c->tls_key = c->tls_client_ca = NULL;
	if (!(srv->base = event_base_new())) {
		rc = th_err_set(err, TH_EIO, "cannot create the event loop");
		goto fail;
	}
	if ((srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = th_err_set(err, TH_EIO, "eventfd: %s", strerror(errno));
		goto fail;
	}
	srv->wake_ev = event_new(srv->base, srv->wake_fd, EV_READ | EV_PERSIST, wake_cb, srv);
	srv->sweep_ev = event_new(srv->base, -1, EV_PERSIST, sweep_cb, srv);
	if (!srv->wake_ev || !srv->sweep_ev) {
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	if (srv->listen[0] &&
	    (rc = bind_listener(srv, srv->listen, false, &srv->tcp_l, &srv->tcp_port, err)))
		goto fail;
	if (srv->ws_listen && srv->ws_listen[0] &&
	    (rc = bind_listener(srv, srv->ws_listen, true, &srv->ws_l, &srv->ws_port, err)))
		goto fail;
	if (!srv->tcp_l && !srv->ws_l) {
		rc = th_err_set(err, TH_EINVAL, "server: no listener (give --listen or --ws-listen)");
		goto fail;
	}
	if ((rc = thn_pool_new(c->workers, c->max_workers, &srv->pool, err)))
		goto fail;
	*out = srv;
	return 0;
fail:
	thsrv_free(srv);
	return rc;
}

int thsrv_port(const thsrv *s, bool ws)
{
	return ws ? s->ws_port : s->tcp_port;
}

void thsrv_stop(thsrv *s)
{
	atomic_store(&s->stop_req, true);
	wake(s);
}

int thsrv_run(thsrv *srv, th_err *err)
{
	/* Writes to a closed socket must be errors, not a fatal signal. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	struct timeval tv = { 0, SWEEP_MS * 1000 };
	if (event_add(srv->wake_ev, NULL) || event_add(srv->sweep_ev, &tv))
		return th_err_set(err, TH_EIO, "cannot start the event loop");
	if (atomic_load(&srv->stop_req))
		wake(srv);
	int rc = event_base_dispatch(srv->base);
	/* Whatever is left (flush grace over): close it. */
	while (srv->conns)
		conn_close(srv->conns, "server stopped");
	while (srv->sessions)
		sess_free(srv, srv->sessions);
	if (rc < 0)
		return th_err_set(err, TH_EIO, "event loop failed");
	return 0;
}

void thsrv_free(thsrv *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		conn_close(srv->conns, "server freed");
	while (srv->sessions)
		sess_free(srv, srv->sessions);
	/* Workers finish what they run; results have nowhere to go. */
	thn_pool_free(srv->pool);
	srv->pool = NULL;
	thn_job *j = srv->done_head;
	while (j) {
		thn_job *n = j->done_next;
		job_discard(j);
		j = n;
	}
	thn_sub *s = srv->ready_head;
	while (s) {
		thn_sub *n = s->ready_next;
		thn_sub_unref(s);
		s = n;
	}
	thsrv_channel *ch = srv->ch_ready;
	while (ch) {
		thsrv_channel *n = ch->ready_next;
		thn_chan_unref(ch);
		ch = n;
	}
	if (srv->tcp_l)
		evconnlistener_free(srv->tcp_l);
	if (srv->ws_l)
		evconnlistener_free(srv->ws_l);
	if (srv->wake_ev)
		event_free(srv->wake_ev);
	if (srv->sweep_ev)
		event_free(srv->sweep_ev);
	if (srv->base)
		event_base_free(srv->base);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	SSL_CTX_free(srv->ssl);
	pthread_mutex_destroy(&srv->mu);
	th_free(srv->listen);
	th_free(srv->ws_listen);
	th_free(srv);
}

void thsrv_get_stats(thsrv *s, thsrv_stats *o)
{
	o->connections = atomic_load(&s->st_conns);
	o->accepted = atomic_load(&s->st_accepted);
	o->requests = atomic_load(&s->st_requests);
	o->events = atomic_load(&s->st_events);
	o->gaps = atomic_load(&s->st_gaps);
	o->bytes_in = atomic_load(&s->st_in);
	o->bytes_out = atomic_load(&s->st_out);
	o->frames_compressed = atomic_load(&s->st_zstd);
	o->protocol_errors = atomic_load(&s->st_proto);
	o->sessions_resumed = atomic_load(&s->st_resumed);
	o->workers = s->pool ? thn_pool_threads(s->pool) : 0;
}
