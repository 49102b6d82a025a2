/*
 * client.c - the client library (thcl_): one loop thread per thcl_loop
 * does all network I/O for its clients; application threads build frames,
 * hand them over as commands (struct cmd, through loop->mu and an
 * eventfd) and wait on the client's condition variable.
 *
 * Stream ids must reach the server in increasing order, so an id is
 * allocated in the same critical section that queues the command carrying
 * its frame (the frame's header is patched there).
 *
 * Connection life (loop thread): IDLE -> CONNECTING (TCP, TLS) -> HTTP
 * (WebSocket upgrade) -> HELLO (sent; waiting for WELCOME) -> OPEN. A drop
 * fails the calls in flight (TH_EIO: they may or may not have run) and,
 * with reconnect on, schedules a new attempt after a backoff (doubling
 * from backoff_min_ms to backoff_max_ms, with jitter). The new HELLO names
 * the session and, for each subscription, the next sequence number it
 * wants; if the server no longer has the session, each subscription is
 * made again from that number. Either way the application sees every
 * event once, in order.
 *
 * Credit: a subscription lets the server send `window` events ahead of
 * what the application took; each time the application has taken half a
 * window, the library grants that many again (CREDIT). A slow reader
 * therefore slows the server's sending for that stream only; if it falls
 * further behind than the server's buffer, it gets a gap notice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>

#include "net/net.h"
#include "theater/client.h"

enum { S_IDLE, S_CONNECTING, S_HTTP, S_HELLO, S_OPEN, S_CLOSED };
enum { K_CALL, K_SUB, K_CHAN };
enum { SCHEME_TCP, SCHEME_TLS, SCHEME_WS, SCHEME_WSS };
enum { CMD_SEND, CMD_RAW, CMD_CREDIT, CMD_UNSUB, CMD_CLOSE, CMD_DROP, CMD_START,
       CMD_ABANDON, CMD_CHAN_CLOSE };

#define OUT_LIMIT (8u << 20) /* uploads wait while this much is queued */

typedef struct cstream cstream;

struct sitem {
	struct sitem *next;
	thcl_event ev;
	/* strings and data follow */
};

struct thcl_sub {
	thcl *c;
	uint32_t stream;        /* loop thread (changes on re-subscribe)    */
	char chain[THX_NAME_MAX + 1];
	uint32_t window, buffer;
	cstream *st;
	/* the consumer's (thcl_sub_next): items taken from the shared queue
	 * in one go, so that the lock is taken once per batch */
	struct sitem *local, *current;
	uint32_t consumed;      /* taken since the last grant               */
	/* under c->mu */
	struct sitem *head, *tail;
	uint64_t next_seq;
	bool active, ended;
	th_err err;
	thcl_sub *prev, *next;  /* loop thread: c->subs                     */
};

struct thcl_chan {
	thcl *c;
	cstream *st;            /* a reference                              */
	uint32_t stream;
	/* under c->mu */
	struct sitem *head, *tail;
	bool ended;
	th_err err;
};

struct cstream {
	atomic_int refs;        /* the caller's and the loop's              */
	uint32_t id;
	int kind;
	/* under c->mu */
	bool done;
	int rc;
	th_err err;
	uint8_t *resp;
	size_t resp_len;
	thcl_data_fn on_data;   /* loop thread                              */
	void *ud;
	thcl_done_fn async;
	void *aud;
	thcl_sub *sub;
	thcl_chan *chan;        /* K_CHAN                                   */
	bool resub;             /* a re-subscription made by the library    */
	bool confirmed;         /* K_SUB: the server answered               */
};

struct cmd {
	struct cmd *next;
	thcl *c;
	int kind;
	cstream *st;
	uint8_t *bytes;
	size_t len;
	thcl_sub *sub;
	thcl_chan *chan;
	uint32_t n;
};

struct thcl_loop {
	struct event_base *base;
	pthread_t thread;
	int wake_fd;
	struct event *wake_ev;
	pthread_mutex_t mu;
	struct cmd *head, *tail;
	atomic_bool stop;
};

struct thcl {
	thcl_loop *loop;
	bool own_loop;
	int scheme;
	char host[256], port[16], path[256], name[256];
	SSL_CTX *ssl;
	bool has_cert;          /* we present a client certificate */
	bool no_compress, reconnect;
	uint32_t connect_timeout_ms, backoff_min, backoff_max;
	uint32_t versions[THP_MAX_VERSIONS];
	size_t nversions;

	/* loop thread */
	int state;
	struct bufferevent *bev;
	wslay_event_context_ptr ws;
	bool in_ws;
	char ws_key[25];
	thn_imap streams;
	thcl_sub *subs;
	struct cmd *waiting, *waiting_tail; /* sends held until OPEN */
	struct event *retry_ev, *ping_ev, *timeout_ev;
	uint32_t backoff;
	uint32_t last_sent;
	bool ever_open, fatal;
	bool goaway;            /* the server said GOAWAY on this connection */
	bool notify;            /* events queued: wake consumers once       */
	char goaway_why[256];
	uint32_t idle_ms;

	/* under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pub;                /* 0 connecting, 1 open, -1 failed          */
	th_err conn_err;
	bool closed;            /* thcl_close done on the loop              */
	thcl_info info;
	size_t out_pending;
	uint32_t next_stream;   /* under loop->mu                           */
	atomic_bool zstd;
};

static void drop(thcl *c, int code, const char *fmt, ...) TH_PRINTF(3, 4);
static void begin_connect(thcl *c);

/* ---- small helpers ---- */

void thcl_free(void *p)
{
	th_free(p);
}

static void stream_unref(cstream *st)
{
	if (atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	th_free(st->resp);
	th_free(st);
}

static cstream *stream_new(int kind)
{
	cstream *st = th_calloc(1, sizeof *st);
	if (!st)
		return NULL;
	atomic_init(&st->refs, 2);
	st->kind = kind;
	return st;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Queue a command. For frames that open a stream (st != NULL with
 * assign), the stream id is allocated here and patched into every frame
 * header in bytes (one frame: the REQUEST). */
static uint32_t push_cmd(thcl *c, struct cmd *k, bool assign)
{
	thcl_loop *l = c->loop;
	uint32_t id = 0;
	pthread_mutex_lock(&l->mu);
	if (assign) {
		id = ++c->next_stream;
		put32(k->bytes + 2, id);
		k->st->id = id;
	}
	k->next = NULL;
	if (l->tail)
		l->tail->next = k;
	else
		l->head = k;
	l->tail = k;
	pthread_mutex_unlock(&l->mu);
	uint64_t one = 1;
	ssize_t w = write(l->wake_fd, &one, sizeof one);
	(void)w;
	return id;
}

static struct cmd *cmd_new(thcl *c, int kind)
{
	struct cmd *k = th_calloc(1, sizeof *k);
	if (k) {
		k->c = c;
		k->kind = kind;
	}
	return k;
}

static void cmd_free(struct cmd *k)
{
	th_free(k->bytes);
	th_free(k);
}

/* Build one frame into a fresh buffer (stream id patched later). */
static int build_frame(thcl *c, uint8_t type, uint8_t flags, const void *p,
		       size_t n, uint8_t **out, size_t *len)
{
	thp_buf b = { 0 };
	size_t cmin = atomic_load(&c->zstd) ? THP_DEFAULT_COMPRESS_MIN : 0;
	if (thp_frame_append(&b, type, flags, 0, p, n, cmin, NULL)) {
		thp_buf_release(&b);
		return TH_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- writing (loop thread) ---- */

static void write_bytes(thcl *c, const uint8_t *p, size_t n)
{
	if (!c->bev)
		return;
	if (c->ws) {
		struct wslay_event_msg m = { WSLAY_BINARY_FRAME, p, n };
		if (wslay_event_queue_msg(c->ws, &m) == 0 && !c->in_ws)
			(void)wslay_event_send(c->ws);
	} else {
		bufferevent_write(c->bev, p, n);
	}
}

static void send_frame(thcl *c, uint8_t type, uint8_t flags, uint32_t stream,
		       const void *p, size_t n)
{
	uint8_t *b;
	size_t len;
	if (build_frame(c, type, flags, p, n, &b, &len))
		return;
	put32(b + 2, stream);
	write_bytes(c, b, len);
	th_free(b);
}

/* ---- completion ---- */

static void finish(thcl *c, cstream *st, int rc, const th_err *err)
{
	pthread_mutex_lock(&c->mu);
	st->done = true;
	st->rc = rc;
	if (err)
		st->err = *err;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (st->async) {
		st->async(st->aud, rc, st->resp, st->resp_len, rc ? &st->err : NULL);
		/* The async caller's reference. */
		stream_unref(st);
	}
}

static void sub_end(thcl *c, thcl_sub *s, int code, const char *msg)
{
	pthread_mutex_lock(&c->mu);
	if (!s->ended) {
		s->ended = true;
		th_err_set(&s->err, code, "%s", msg);
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void chan_end(thcl *c, thcl_chan *ch, int code, const char *msg)
{
	pthread_mutex_lock(&c->mu);
	if (!ch->ended) {
		ch->ended = true;
		th_err_set(&ch->err, code, "%s", msg);
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void sub_unlink(thcl *c, thcl_sub *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else if (c->subs == s)
		c->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

/* Fail the calls in flight (and subscribes not yet answered); keep the
 * established subscriptions for resumption, or end them. */
static void fail_streams(thcl *c, const char *why, bool keep_subs)
{
	th_err e = { 0 };
	th_err_set(&e, TH_EIO, "connection lost: %s", why);
	for (size_t i = 0; i < c->streams.cap; i++) {
		cstream *st = c->streams.e[i].p;
		if (!THN_IMAP_LIVE(st))
			continue;
		bool established = st->kind == K_SUB && st->confirmed;
		if (established && keep_subs)
			continue;
		thn_imap_del(&c->streams, c->streams.e[i].id);
		if (st->kind == K_CHAN && st->confirmed)
			chan_end(c, st->chan, TH_EIO, e.msg);
		else if (established)
			sub_end(c, st->sub, TH_EIO, e.msg);
		else if (!st->resub)
			finish(c, st, TH_EIO, &e);
		else
			sub_end(c, st->sub, TH_EIO, e.msg); /* a re-subscribe in flight */
		stream_unref(st);
	}
}

/* ---- connection management ---- */

static void free_transport(thcl *c)
{
	if (c->ws) {
		wslay_event_context_free(c->ws);
		c->ws = NULL;
	}
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->ping_ev)
		event_del(c->ping_ev);
	if (c->timeout_ev)
		event_del(c->timeout_ev);
}

static void drop(thcl *c, int code, const char *fmt, ...)
{
	if (c->state == S_IDLE || c->state == S_CLOSED)
		return;
	char why[TH_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (c->in_ws) {
		/* wslay_event_recv is on the stack: free after it returns. */
		c->state = S_IDLE;
	} else {
		free_transport(c);
		c->state = S_IDLE;
	}
	bool retry = c->reconnect && c->ever_open && !c->fatal;
	fail_streams(c, why, retry);
	pthread_mutex_lock(&c->mu);
	c->info.connected = false;
	if (!c->ever_open) {
		c->pub = -1;
		th_err_set(&c->conn_err, code, "%s", why);
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (retry) {
		/* Backoff with jitter: [backoff/2, backoff]. */
		uint32_t r = 0;
		RAND_bytes((unsigned char *)&r, sizeof r);
		uint32_t ms = c->backoff / 2 + (c->backoff / 2 ? r % (c->backoff / 2 + 1) : 0);
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(c->retry_ev, &tv);
		c->backoff = c->backoff * 2 > c->backoff_max ? c->backoff_max : c->backoff * 2;
	} else {
		/* Everything waiting ends. */
		for (thcl_sub *s = c->subs; s; s = s->next)
			sub_end(c, s, code, why);
		while (c->waiting) {
			struct cmd *k = c->waiting;
			c->waiting = k->next;
			if (k->st) {
				th_err e = { 0 };
				th_err_set(&e, code, "not connected: %s", why);
				finish(c, k->st, code, &e);
				stream_unref(k->st);
			}
			cmd_free(k);
		}
		c->waiting_tail = NULL;
		c->state = S_CLOSED;
	}
}

static void send_hello(thcl *c)
{
	thp_hello h;
	memset(&h, 0, sizeof h);
	memcpy(h.versions, c->versions, c->nversions * sizeof c->versions[0]);
	h.nversions = c->nversions;
	h.features = THP_FEAT_RESUME | (c->no_compress ? 0 : THP_FEAT_ZSTD);
	snprintf(h.client, sizeof h.client, "theater-c/0.1");
	pthread_mutex_lock(&c->mu);
	bool have_session = c->ever_open && c->info.session[0];
	if (have_session)
		memcpy(h.session, c->info.session, sizeof h.session);
	/* For each live subscription: the next seq it wants. */
	size_t n = 0;
	for (thcl_sub *s = c->subs; s; s = s->next)
		n += s->active && !s->ended;
	if (have_session && n) {
		h.resume = th_calloc(n, sizeof *h.resume);
		for (thcl_sub *s = c->subs; s && h.resume; s = s->next)
			if (s->active && !s->ended)
				h.resume[h.nresume++] = (thp_resume){ s->stream, s->next_seq };
	}
	pthread_mutex_unlock(&c->mu);
	h.last_stream = c->last_sent;
	uint8_t *p;
	size_t len;
	if (thp_hello_encode(&h, &p, &len) == 0) {
		uint8_t hdr[THP_HEADER_LEN];
		thp_header_put(hdr, THP_HELLO, 0, 0, (uint32_t)len);
		uint8_t *b = th_malloc(THP_HEADER_LEN + len);
		if (b) {
			memcpy(b, hdr, THP_HEADER_LEN);
			memcpy(b + THP_HEADER_LEN, p, len);
			write_bytes(c, b, THP_HEADER_LEN + len);
			th_free(b);
		}
		thp_free(p);
	}
	thp_hello_release(&h);
	c->state = S_HELLO;
}

static void resubscribe(thcl *c, thcl_sub *s);

static void flush_waiting(thcl *c);

static void on_welcome(thcl *c, const thp_frame *f)
{
	thp_welcome w;
	th_err err = { 0 };
	if (thp_welcome_decode(f->payload, f->len, &w, &err)) {
		c->fatal = true;
		drop(c, TH_EINVAL, "server's WELCOME: %s", err.msg);
		return;
	}
	bool reconnected = c->ever_open;
	c->state = S_OPEN;
	c->ever_open = true;
	c->backoff = c->backoff_min;
	c->idle_ms = w.idle_timeout_ms;
	atomic_store(&c->zstd, (w.features & THP_FEAT_ZSTD) != 0);
	pthread_mutex_lock(&c->mu);
	c->info.version = w.version;
	c->info.zstd = (w.features & THP_FEAT_ZSTD) != 0;
	c->info.resume = (w.features & THP_FEAT_RESUME) != 0;
	memcpy(c->info.session, w.session, sizeof c->info.session);
	snprintf(c->info.server, sizeof c->info.server, "%s", w.server);
	c->info.max_frame = w.max_frame;
	c->info.max_streams = w.max_streams;
	c->info.connected = true;
	if (reconnected) {
		c->info.reconnects++;
		c->info.resumed += w.resumed;
	}
	c->pub = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->timeout_ev)
		event_del(c->timeout_ev);
	if (c->idle_ms) {
		uint32_t ms = c->idle_ms / 3 ? c->idle_ms / 3 : 1;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		event_add(c->ping_ev, &tv);
	}
	/* Requests held while disconnected have lower stream ids than any
	 * re-subscription made now: send them first. */
	flush_waiting(c);
	if (reconnected && !w.resumed) {
		/* The session is gone: subscribe again from where we are. */
		for (thcl_sub *s = c->subs; s; s = s->next)
			if (s->active && !s->ended)
				resubscribe(c, s);
	}
}

/* ---- incoming frames ---- */

/* One pass over the event map (this runs for every event received). */
static struct sitem *decode_event(const uint8_t *p, size_t n, th_err *err)
{
	th_cbor_dec d;
	uint64_t pairs, seq = 0, ts = 0;
	const uint8_t *data = NULL, *hash = NULL;
	const char *type = "", *actor = "", *desc = NULL;
	size_t dlen = 0, hlen = 0, tl = 0, al = 0, dsl = 0;
	bool pruned = false, has_seq = false;
	th_cbor_dec_init(&d, p, n);
	if (th_cbor_get_map(&d, &pairs, err))
		return NULL;
	for (uint64_t i = 0; i < pairs; i++) {
		const char *k;
		size_t kn;
		int rc;
		if (th_cbor_get_text(&d, &k, &kn, err))
			return NULL;
		if (kn == 3 && !memcmp(k, "seq", 3)) {
			rc = th_cbor_get_uint(&d, &seq, err);
			has_seq = true;
		} else if (kn == 2 && !memcmp(k, "ts", 2)) {
			rc = th_cbor_get_uint(&d, &ts, err);
		} else if (kn == 4 && !memcmp(k, "type", 4)) {
			rc = th_cbor_get_text(&d, &type, &tl, err);
		} else if (kn == 5 && !memcmp(k, "actor", 5)) {
			rc = th_cbor_get_text(&d, &actor, &al, err);
		} else if (kn == 4 && !memcmp(k, "data", 4)) {
			rc = th_cbor_get_bytes(&d, &data, &dlen, err);
		} else if (kn == 4 && !memcmp(k, "hash", 4)) {
			rc = th_cbor_get_bytes(&d, &hash, &hlen, err);
		} else if (kn == 4 && !memcmp(k, "desc", 4)) {
			rc = th_cbor_get_text(&d, &desc, &dsl, err);
		} else if (kn == 6 && !memcmp(k, "pruned", 6)) {
			rc = th_cbor_get_bool(&d, &pruned, err);
		} else {
			rc = th_cbor_skip(&d, err);
		}
		if (rc)
			return NULL;
	}
	if (!has_seq) {
		th_err_set(err, TH_EINVAL, "event without \"seq\"");
		return NULL;
	}
	size_t total = sizeof(struct sitem) + tl + 1 + al + 1 + (desc ? dsl + 1 : 0) + dlen;
	struct sitem *it = th_malloc(total);
	if (!it) {
		th_err_set(err, TH_ENOMEM, "out of memory");
		return NULL;
	}
	memset(it, 0, sizeof *it);
	char *q = (char *)(it + 1);
	memcpy(q, type, tl);
	q[tl] = 0;
	it->ev.type = q;
	q += tl + 1;
	memcpy(q, actor, al);
	q[al] = 0;
	it->ev.actor = q;
	q += al + 1;
	if (desc) {
		memcpy(q, desc, dsl);
		q[dsl] = 0;
		it->ev.desc = q;
		q += dsl + 1;
	}
	if (data) {
		memcpy(q, data, dlen);
		it->ev.data = (const uint8_t *)q;
		it->ev.len = dlen;
	}
	if (hash && hlen == 32)
		memcpy(it->ev.hash, hash, 32);
	it->ev.seq = seq;
	it->ev.ts = ts;
	it->ev.pruned = pruned;
	return it;
}

static void sub_push(thcl *c, thcl_sub *s, struct sitem *it)
{
	pthread_mutex_lock(&c->mu);
	if (!it->ev.gap && it->ev.seq < s->next_seq) {
		/* Defensive: a duplicate never reaches the application. */
		pthread_mutex_unlock(&c->mu);
		th_free(it);
		return;
	}
	s->next_seq = it->ev.gap ? it->ev.gap_to + 1 : it->ev.seq + 1;
	if (s->tail)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	pthread_mutex_unlock(&c->mu);
	/* One wake-up per read, not per event (notify_consumers). */
	c->notify = true;
}

static void notify_consumers(thcl *c)
{
	if (!c->notify)
		return;
	c->notify = false;
	pthread_mutex_lock(&c->mu);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_stream_frame(thcl *c, const thp_frame *f, const uint8_t *p, size_t n)
{
	cstream *st = thn_imap_get(&c->streams, f->stream);
	if (!st)
		return; /* cancelled or abandoned: late frames are fine */
	th_err err = { 0 };
	switch (f->type) {
	case THP_RESPONSE:
		if (st->kind == K_SUB) {
			thn_args a;
			uint64_t next = 0;
			if (thn_args_parse(p, n, &a, &err) == 0)
				(void)thn_arg_uint(&a, "next", false, &next, &err);
			thcl_sub *sb = st->sub;
			if (st->confirmed)
				return;
			st->confirmed = true;
			sb->stream = st->id;
			pthread_mutex_lock(&c->mu);
			if (!st->resub)
				sb->next_seq = next;
			sb->active = true;
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->mu);
			if (!st->resub) {
				/* Now on the list that resumption walks. */
				sb->next = c->subs;
				if (c->subs)
					c->subs->prev = sb;
				c->subs = sb;
				finish(c, st, 0, NULL);
			}
			return;
		}
		if (st->kind == K_CHAN) {
			if (st->confirmed)
				return;
			st->confirmed = true;
			st->chan->stream = st->id;
			pthread_mutex_lock(&c->mu);
			th_free(st->resp);
			st->resp = th_malloc(n ? n : 1);
			if (st->resp) {
				memcpy(st->resp, p, n);
				st->resp_len = n;
			}
			pthread_mutex_unlock(&c->mu);
			finish(c, st, 0, NULL);
			return;
		}
		pthread_mutex_lock(&c->mu);
		th_free(st->resp);
		st->resp = th_malloc(n ? n : 1);
		if (st->resp) {
			memcpy(st->resp, p, n);
			st->resp_len = n;
		}
		pthread_mutex_unlock(&c->mu);
		if (!(f->flags & THP_F_END) && st->on_data)
			return; /* DATA follows */
		thn_imap_del(&c->streams, f->stream);
		if (!st->resp) {
			th_err_set(&err, TH_ENOMEM, "out of memory");
			finish(c, st, TH_ENOMEM, &err);
		} else {
			finish(c, st, 0, NULL);
		}
		stream_unref(st);
		if (!(f->flags & THP_F_END)) {
			/* A stream we did not expect to stay open: close it. */
			send_frame(c, THP_CANCEL, 0, f->stream, NULL, 0);
		}
		return;
	case THP_DATA:
		if (st->kind == K_CHAN) {
			thcl_chan *ch = st->chan;
			if (f->flags & THP_F_END) {
				char why[300];
				snprintf(why, sizeof why, "channel closed%s%.*s", n ? ": " : "",
					 (int)(n > 200 ? 200 : n), (const char *)p);
				thn_imap_del(&c->streams, f->stream);
				chan_end(c, ch, TH_ESTATE, why);
				stream_unref(st);
				return;
			}
			struct sitem *it = th_calloc(1, sizeof *it + (n ? n : 1));
			if (!it) {
				drop(c, TH_ENOMEM, "out of memory");
				return;
			}
			memcpy(it + 1, p, n);
			it->ev.data = (const uint8_t *)(it + 1);
			it->ev.len = n;
			pthread_mutex_lock(&c->mu);
			if (ch->tail)
				ch->tail->next = it;
			else
				ch->head = it;
			ch->tail = it;
			pthread_mutex_unlock(&c->mu);
			c->notify = true;
			return;
		}
		if (st->kind != K_CALL || !st->on_data)
			return;
		if (st->on_data(st->ud, p, n) != 0) {
			send_frame(c, THP_CANCEL, 0, f->stream, NULL, 0);
			thn_imap_del(&c->streams, f->stream);
			th_err_set(&err, TH_EIO, "download stopped by the receiver");
			finish(c, st, TH_EIO, &err);
			stream_unref(st);
			return;
		}
		if (f->flags & THP_F_END) {
			thn_imap_del(&c->streams, f->stream);
			finish(c, st, 0, NULL);
			stream_unref(st);
		}
		return;
	case THP_EVENT:
	case THP_GAP: {
		if (st->kind != K_SUB)
			return;
		struct sitem *it;
		if (f->type == THP_EVENT) {
			it = decode_event(p, n, &err);
		} else {
			thn_args a;
			uint64_t from = 0, to = 0;
			it = NULL;
			if (thn_args_parse(p, n, &a, &err) == 0 &&
			    thn_arg_uint(&a, "from", true, &from, &err) == 0 &&
			    thn_arg_uint(&a, "to", true, &to, &err) == 0 &&
			    (it = th_calloc(1, sizeof *it))) {
				it->ev.gap = true;
				it->ev.gap_from = from;
				it->ev.gap_to = to;
				it->ev.type = "";
				it->ev.actor = "";
			}
		}
		if (!it) {
			drop(c, TH_EINVAL, "bad %s frame from the server: %s",
			     thp_type_name(f->type), err.msg);
			return;
		}
		sub_push(c, st->sub, it);
		return;
	}
	case THP_ERROR: {
		thp_error e;
		if (thp_error_decode(p, n, &e, &err) != 0)
			th_err_set(&err, TH_EIO, "malformed ERROR frame");
		else
			th_err_set(&err, e.status, "%s", e.message);
		thn_imap_del(&c->streams, f->stream);
		if (st->kind == K_SUB && (st->confirmed || st->resub)) {
			sub_end(c, st->sub, err.code, err.msg);
		} else if (st->kind == K_CHAN && st->confirmed) {
			chan_end(c, st->chan, err.code, err.msg);
		} else {
			finish(c, st, err.code, &err);
		}
		stream_unref(st);
		return;
	}
	default:
		return;
	}
}

static void on_frame(thcl *c, const thp_frame *f)
{
	const uint8_t *p;
	size_t n;
	uint8_t *owned = NULL;
	th_err err = { 0 };
	if (thp_payload(f, c->info.max_frame ? c->info.max_frame : THP_DEFAULT_MAX_FRAME,
			&p, &n, &owned, &err)) {
		drop(c, TH_EINVAL, "server sent a bad frame: %s", err.msg);
		return;
	}
	if (c->state == S_HELLO) {
		if (f->type == THP_WELCOME) {
			on_welcome(c, f);
		} else if (f->type == THP_ERROR || f->type == THP_GOAWAY) {
			thp_error e;
			c->fatal = true;
			if (thp_error_decode(p, n, &e, &err) == 0)
				drop(c, e.status, "server refused the handshake: %s (%s)", e.message,
				     e.code);
			else
				drop(c, TH_EIO, "server refused the handshake");
		} else {
			drop(c, TH_EINVAL, "expected WELCOME, got %s", thp_type_name(f->type));
		}
		thp_free(owned);
		return;
	}
	if (f->stream) {
		on_stream_frame(c, f, p, n);
	} else if (f->type == THP_PING) {
		send_frame(c, THP_PONG, 0, 0, p, 8);
	} else if (f->type == THP_GOAWAY) {
		/* No new requests on this connection; those in flight still
		 * get their answers until the server closes. */
		thp_error e;
		if (thp_error_decode(p, n, &e, &err) != 0)
			snprintf(e.message, sizeof e.message, "malformed GOAWAY");
		c->goaway = true;
		snprintf(c->goaway_why, sizeof c->goaway_why, "%s", e.message);
	} else if (f->type == THP_ERROR) {
		thp_error e;
		if (thp_error_decode(p, n, &e, &err) == 0)
			drop(c, e.status, "server closed the connection: %s (%s)", e.message,
			     e.code);
		else
			drop(c, TH_EIO, "server closed the connection");
	}
	thp_free(owned);
}

static void on_bytes(thcl *c, const uint8_t *buf, size_t n, bool whole, size_t *used_out)
{
	size_t off = 0;
	while (off < n && (c->state == S_HELLO || c->state == S_OPEN)) {
		thp_frame f;
		size_t used;
		th_err err = { 0 };
		int rc = thp_parse(buf + off, n - off,
				   c->info.max_frame ? c->info.max_frame : THP_DEFAULT_MAX_FRAME,
				   &f, &used, &err);
		if (rc == 1) {
			if (whole)
				drop(c, TH_EINVAL, "WebSocket message ends inside a frame");
			break;
		}
		if (rc < 0) {
			drop(c, TH_EINVAL, "server sent a bad frame: %s", err.msg);
			break;
		}
		on_frame(c, &f);
		off += used;
	}
	if (used_out)
		*used_out = off;
}

/* ---- transport callbacks ---- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
			  int flags, void *user)
{
	TH_UNUSED(flags);
	thcl *c = user;
	int n = c->bev ? evbuffer_remove(bufferevent_get_input(c->bev), buf, len) : 0;
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
	thcl *c = user;
	if (!c->bev || bufferevent_write(c->bev, data, len) != 0) {
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
	thcl *c = user;
	if (arg->opcode == WSLAY_BINARY_FRAME)
		on_bytes(c, arg->msg, arg->msg_length, true, NULL);
}

static const struct wslay_event_callbacks ws_callbacks = {
	ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb
};

static void read_inner(thcl *c, struct bufferevent *bev);

static void read_cb(struct bufferevent *bev, void *arg)
{
	thcl *c = arg;
	read_inner(c, bev);
	notify_consumers(c);
}

static void read_inner(thcl *c, struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	if (c->state == S_HTTP) {
		struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (end.pos < 0) {
			if (evbuffer_get_length(in) > THN_WS_HEADER_MAX)
				drop(c, TH_EINVAL, "WebSocket: answer head too long");
			return;
		}
		size_t hl = (size_t)end.pos + 4;
		char *head = (char *)evbuffer_pullup(in, (ev_ssize_t)hl);
		th_err err = { 0 };
		int rc = thn_ws_client_check(head, hl, c->ws_key, &err);
		evbuffer_drain(in, hl);
		if (rc) {
			c->fatal = !c->ever_open;
			drop(c, rc, "%s", err.msg);
			return;
		}
		if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0) {
			drop(c, TH_ENOMEM, "out of memory");
			return;
		}
		wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)THP_DEFAULT_MAX_FRAME +
								   THP_HEADER_LEN);
		send_hello(c);
	}
	if (c->ws) {
		c->in_ws = true;
		int rc = wslay_event_recv(c->ws);
		c->in_ws = false;
		if (c->state == S_IDLE || c->state == S_CLOSED) {
			free_transport(c);
			return;
		}
		if (rc != 0) {
			drop(c, TH_EIO, "WebSocket protocol error");
			return;
		}
		(void)wslay_event_send(c->ws);
		if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws))
			drop(c, TH_EIO, "WebSocket closed by the server");
		return;
	}
	while (c->bev && (c->state == S_HELLO || c->state == S_OPEN)) {
		size_t avail = evbuffer_get_length(in);
		if (avail < THP_HEADER_LEN)
			break;
		uint8_t *h = evbuffer_pullup(in, THP_HEADER_LEN);
		uint32_t len = (uint32_t)h[6] << 24 | (uint32_t)h[7] << 16 |
			       (uint32_t)h[8] << 8 | h[9];
		size_t need = THP_HEADER_LEN + (size_t)len;
		if (avail < need) {
			on_bytes(c, h, THP_HEADER_LEN, false, NULL); /* judges the header */
			break;
		}
		uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)need);
		size_t used = 0;
		on_bytes(c, p, need, false, &used);
		if (!c->bev)
			break;
		evbuffer_drain(in, need);
	}
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	thcl *c = arg;
	pthread_mutex_lock(&c->mu);
	c->out_pending = evbuffer_get_length(bufferevent_get_output(bev));
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void tls_reason(struct bufferevent *bev, char *buf, size_t cap)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (e && ERR_GET_LIB(e) != 0 && ERR_GET_LIB(e) != ERR_LIB_SYS) {
		char s[256];
		ERR_error_string_n(e, s, sizeof s);
		snprintf(buf, cap, "TLS: %s", s);
		while ((e = bufferevent_get_openssl_error(bev)) != 0)
			;
		return;
	}
	if (e) {
		/* A system error inside OpenSSL: the peer closed or reset. */
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		snprintf(buf, cap, "TLS: the server closed the connection");
		return;
	}
	int se = EVUTIL_SOCKET_ERROR();
	snprintf(buf, cap, "%s", se ? evutil_socket_error_to_string(se) : "connection closed");
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	thcl *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->scheme == SCHEME_WS || c->scheme == SCHEME_WSS) {
			char host[300];
			char *req;
			size_t len;
			th_err err = { 0 };
			snprintf(host, sizeof host, "%s:%s", c->host, c->port);
			if (thn_ws_client_request(host, c->path, &req, &len, c->ws_key, &err)) {
				drop(c, err.code, "%s", err.msg);
				return;
			}
			bufferevent_write(bev, req, len);
			th_free(req);
			c->state = S_HTTP;
		} else {
			send_hello(c);
		}
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		char why[300];
		if (c->ssl)
			tls_reason(bev, why, sizeof why);
		else if (what & BEV_EVENT_ERROR)
			snprintf(why, sizeof why, "%s",
				 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		else if (c->goaway)
			snprintf(why, sizeof why, "closed by the server: %s", c->goaway_why);
		else
			snprintf(why, sizeof why, "closed by the server");
		bool connecting = c->state == S_CONNECTING;
		/* A server requiring client certificates drops the others
		 * right after the handshake, sometimes without an alert. */
		const char *hint = c->ssl && !c->has_cert && !c->ever_open &&
					   (connecting || c->state == S_HELLO || c->state == S_HTTP)
				   ? " (if the server requires a client certificate, give "
				     "--tls-cert and --tls-key)"
				   : "";
		drop(c, TH_EIO, "%s%s:%s: %s%s", connecting ? "cannot connect to " : "",
		     c->host, c->port, why, hint);
	}
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	TH_UNUSED(fd);
	TH_UNUSED(what);
	thcl *c = arg;
	if (c->state != S_OPEN)
		drop(c, TH_ETIMEOUT, "no answer from %s:%s within %u ms", c->host, c->port,
		     c->connect_timeout_ms);
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
	TH_UNUSED(fd);
	TH_UNUSED(what);
	thcl *c = arg;
	if (c->state != S_OPEN)
		return;
	uint64_t t = th_now_ns();
	send_frame(c, THP_PING, 0, 0, &t, 8);
	uint32_t ms = c->idle_ms / 3 ? c->idle_ms / 3 : 1;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(c->ping_ev, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	TH_UNUSED(fd);
	TH_UNUSED(what);
	thcl *c = arg;
	if (c->state == S_IDLE)
		begin_connect(c);
}

static bool is_ip(const char *h)
{
	struct in6_addr a6;
	struct in_addr a4;
	return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

static void begin_connect(thcl *c)
{
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	c->state = S_CONNECTING;
	c->goaway = false;
	int grc = getaddrinfo(c->host, c->port, &hints, &ai);
	if (grc != 0 || !ai) {
		c->fatal = !c->ever_open;
		drop(c, TH_EINVAL, "cannot resolve %s: %s", c->host, gai_strerror(grc));
		return;
	}
	struct bufferevent *bev;
	if (c->ssl) {
		SSL *ssl = SSL_new(c->ssl);
		if (ssl) {
			const char *name = c->name[0] ? c->name : c->host;
			if (is_ip(name)) {
				X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
			} else {
				SSL_set_tlsext_host_name(ssl, name);
				SSL_set1_host(ssl, name);
			}
		}
		bev = ssl ? bufferevent_openssl_socket_new(c->loop->base, -1, ssl,
							   BUFFEREVENT_SSL_CONNECTING,
							   BEV_OPT_CLOSE_ON_FREE)
			  : NULL;
		if (!bev && ssl)
			SSL_free(ssl);
		if (bev)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(c->loop->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!bev) {
		freeaddrinfo(ai);
		drop(c, TH_ENOMEM, "out of memory");
		return;
	}
	c->bev = bev;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(bev, EV_WRITE, OUT_LIMIT / 2, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	struct timeval tv = { c->connect_timeout_ms / 1000, (c->connect_timeout_ms % 1000) * 1000 };
	event_add(c->timeout_ev, &tv);
	int rc = bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc != 0) {
		drop(c, TH_EIO, "cannot connect to %s:%s: %s", c->host, c->port, strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- commands on the loop ---- */

static void send_cmd(thcl *c, struct cmd *k)
{
	if (k->st && thn_imap_put(&c->streams, k->st->id, k->st)) {
		th_err e = { 0 };
		th_err_set(&e, TH_ENOMEM, "out of memory");
		finish(c, k->st, TH_ENOMEM, &e);
		stream_unref(k->st);
		cmd_free(k);
		return;
	}
	uint32_t id = (uint32_t)k->bytes[2] << 24 | (uint32_t)k->bytes[3] << 16 |
		      (uint32_t)k->bytes[4] << 8 | k->bytes[5];
	if (id > c->last_sent)
		c->last_sent = id;
	write_bytes(c, k->bytes, k->len);
	cmd_free(k);
}

static void flush_waiting(thcl *c)
{
	while (c->waiting && c->state == S_OPEN) {
		struct cmd *k = c->waiting;
		c->waiting = k->next;
		if (!c->waiting)
			c->waiting_tail = NULL;
		send_cmd(c, k);
	}
}

static void resubscribe(thcl *c, thcl_sub *s)
{
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	uint64_t next;
	pthread_mutex_lock(&c->mu);
	next = s->next_seq;
	pthread_mutex_unlock(&c->mu);
	th_cbor_put_map(&e, 4 + (s->buffer != 0));
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "subscribe");
	th_cbor_put_cstr(&e, "from");
	th_cbor_put_uint(&e, next);
	th_cbor_put_cstr(&e, "chain");
	th_cbor_put_cstr(&e, s->chain);
	if (s->buffer) {
		th_cbor_put_cstr(&e, "buffer");
		th_cbor_put_uint(&e, s->buffer);
	}
	th_cbor_put_cstr(&e, "credit");
	th_cbor_put_uint(&e, s->window);
	cstream *st = stream_new(K_SUB);
	struct cmd *k = cmd_new(c, CMD_SEND);
	uint8_t *b = NULL;
	size_t len = 0;
	if (e.err || !st || !k || build_frame(c, THP_REQUEST, THP_F_END, e.buf, e.len, &b, &len)) {
		th_cbor_enc_release(&e);
		th_free(st);
		th_free(k);
		sub_end(c, s, TH_ENOMEM, "out of memory re-subscribing");
		return;
	}
	th_cbor_enc_release(&e);
	/* Two references, as for any subscription: the map's and s->st. */
	st->sub = s;
	st->resub = true;
	if (s->st) {
		if (thn_imap_get(&c->streams, s->stream) == s->st) {
			thn_imap_del(&c->streams, s->stream);
			stream_unref(s->st);
		}
		stream_unref(s->st);
	}
	s->st = st;
	k->st = st;
	k->bytes = b;
	k->len = len;
	thcl_loop *l = c->loop;
	pthread_mutex_lock(&l->mu);
	st->id = ++c->next_stream;
	pthread_mutex_unlock(&l->mu);
	put32(b + 2, st->id);
	s->stream = st->id;
	send_cmd(c, k);
}

static void free_items(struct sitem *it);

static void do_close(thcl *c)
{
	if (c->state == S_OPEN && c->bev) {
		uint8_t *p;
		size_t n;
		if (thp_error_encode("closing", 0, "client closed", &p, &n) == 0) {
			send_frame(c, THP_GOAWAY, 0, 0, p, n);
			thp_free(p);
		}
	}
	c->reconnect = false;
	c->fatal = true;
	c->state = S_CLOSED;
	free_transport(c);
	event_del(c->retry_ev);
	fail_streams(c, "client closed", false);
	while (c->waiting) {
		struct cmd *k = c->waiting;
		c->waiting = k->next;
		if (k->st) {
			th_err e = { 0 };
			th_err_set(&e, TH_ESTATE, "client closed");
			finish(c, k->st, TH_ESTATE, &e);
			stream_unref(k->st);
		}
		cmd_free(k);
	}
	c->waiting_tail = NULL;
	/* Subscriptions the application did not close die with the client. */
	while (c->subs) {
		thcl_sub *s = c->subs;
		sub_unlink(c, s);
		free_items(s->head);
		free_items(s->local);
		th_free(s->current);
		if (s->st)
			stream_unref(s->st);
		th_free(s);
	}
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	c->pub = c->pub ? c->pub : -1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void free_items(struct sitem *it)
{
	while (it) {
		struct sitem *n = it->next;
		th_free(it);
		it = n;
	}
}

static void run_cmd(struct cmd *k)
{
	thcl *c = k->c;
	switch (k->kind) {
	case CMD_START:
		begin_connect(c);
		cmd_free(k);
		return;
	case CMD_SEND:
		if (c->state == S_CLOSED) {
			th_err e = { 0 };
			th_err_set(&e, TH_EIO, "not connected");
			if (k->st) {
				finish(c, k->st, TH_EIO, &e);
				stream_unref(k->st);
			}
			cmd_free(k);
		} else if (c->goaway && !c->reconnect) {
			th_err e = { 0 };
			th_err_set(&e, TH_ESTATE, "the server is closing the connection: %s",
				   c->goaway_why);
			if (k->st) {
				finish(c, k->st, TH_ESTATE, &e);
				stream_unref(k->st);
			}
			cmd_free(k);
		} else if (c->state != S_OPEN || c->waiting || c->goaway) {
			k->next = NULL;
			if (c->waiting_tail)
				c->waiting_tail->next = k;
			else
				c->waiting = k;
			c->waiting_tail = k;
		} else {
			send_cmd(c, k);
		}
		return;
	case CMD_RAW:
		write_bytes(c, k->bytes, k->len);
		cmd_free(k);
		return;
	case CMD_CREDIT:
		if (c->state == S_OPEN && k->sub->active) {
			uint8_t p[16];
			th_cbor_enc e;
			th_cbor_enc_init(&e, p, sizeof p);
			th_cbor_put_map(&e, 1);
			th_cbor_put_cstr(&e, "n");
			th_cbor_put_uint(&e, k->n);
			send_frame(c, THP_CREDIT, 0, k->sub->stream, p, e.len);
		}
		cmd_free(k);
		return;
	case CMD_UNSUB: {
		thcl_sub *s = k->sub;
		if (s->st) {
			if (thn_imap_get(&c->streams, s->stream) == s->st) {
				thn_imap_del(&c->streams, s->stream);
				if (c->state == S_OPEN)
					send_frame(c, THP_CANCEL, 0, s->stream, NULL, 0);
				stream_unref(s->st);
			}
			stream_unref(s->st);
		}
		sub_unlink(c, s);
		free_items(s->head);
		free_items(s->local);
		th_free(s->current);
		th_free(s);
		cmd_free(k);
		return;
	}
	case CMD_ABANDON:
		/* A blocking caller gave up: forget the stream, tell the server. */
		if (k->st && thn_imap_get(&c->streams, k->st->id) == k->st) {
			thn_imap_del(&c->streams, k->st->id);
			if (c->state == S_OPEN)
				send_frame(c, THP_CANCEL, 0, k->st->id, NULL, 0);
			stream_unref(k->st);
		}
		if (k->st)
			stream_unref(k->st);
		cmd_free(k);
		return;
	case CMD_CHAN_CLOSE: {
		thcl_chan *ch = k->chan;
		if (ch->st && thn_imap_get(&c->streams, ch->stream) == ch->st) {
			thn_imap_del(&c->streams, ch->stream);
			if (c->state == S_OPEN)
				send_frame(c, THP_DATA, THP_F_END, ch->stream, NULL, 0);
			stream_unref(ch->st);
		}
		if (ch->st)
			stream_unref(ch->st);
		free_items(ch->head);
		th_free(ch);
		cmd_free(k);
		return;
	}
	case CMD_DROP:
		if (c->bev)
			drop(c, TH_EIO, "dropped (test)");
		cmd_free(k);
		return;
	case CMD_CLOSE:
		do_close(c);
		cmd_free(k);
		return;
	}
}

static void loop_wake(evutil_socket_t fd, short what, void *arg)
{
	TH_UNUSED(what);
	thcl_loop *l = arg;
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof v);
	(void)r;
	pthread_mutex_lock(&l->mu);
	struct cmd *k = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	while (k) {
		struct cmd *n = k->next;
		run_cmd(k);
		k = n;
	}
	if (atomic_load(&l->stop))
		event_base_loopbreak(l->base);
}

static void *loop_main(void *arg)
{
	thcl_loop *l = arg;
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int thcl_loop_new(thcl_loop **out, th_err *err)
{
	thcl_loop *l = th_calloc(1, sizeof *l);
	if (!l)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&l->mu, NULL);
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->base = event_base_new();
	if (l->wake_fd < 0 || !l->base ||
	    !(l->wake_ev = event_new(l->base, l->wake_fd, EV_READ | EV_PERSIST, loop_wake, l)) ||
	    event_add(l->wake_ev, NULL) != 0) {
		int e = errno;
		if (l->wake_ev)
			event_free(l->wake_ev);
		if (l->base)
			event_base_free(l->base);
		if (l->wake_fd >= 0)
			close(l->wake_fd);
		th_free(l);
		return th_err_set(err, TH_EIO, "cannot create the client loop: %s", strerror(e));
	}
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	int rc = pthread_create(&l->thread, NULL, loop_main, l);
	if (rc) {
		event_free(l->wake_ev);
		event_base_free(l->base);
		close(l->wake_fd);
		th_free(l);
		return th_err_set(err, TH_EIO, "cannot start the client loop: %s", strerror(rc));
	}
	*out = l;
	return 0;
}

void thcl_loop_free(thcl_loop *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, true);
	uint64_t one = 1;
	ssize_t w = write(l->wake_fd, &one, sizeof one);
	(void)w;
	pthread_join(l->thread, NULL);
	event_free(l->wake_ev);
	event_base_free(l->base);
	close(l->wake_fd);
	pthread_mutex_destroy(&l->mu);
	th_free(l);
}

/* ---- connect / close ---- */

static int parse_address(thcl *c, const char *addr, bool tls_default, th_err *err)
{
	const char *p = addr && *addr ? addr : "tcp://127.0.0.1:9000";
	c->scheme = tls_default ? SCHEME_TLS : SCHEME_TCP;
	snprintf(c->path, sizeof c->path, "/");
	static const struct {
		const char *pre;
		int scheme;
	} schemes[] = { { "tcp://", SCHEME_TCP }, { "tls://", SCHEME_TLS },
			{ "ws://", SCHEME_WS },   { "wss://", SCHEME_WSS } };
	for (size_t i = 0; i < TH_ARRAY_LEN(schemes); i++) {
		size_t n = strlen(schemes[i].pre);
		if (!strncmp(p, schemes[i].pre, n)) {
			c->scheme = schemes[i].scheme;
			p += n;
			break;
		}
	}
	if (strstr(p, "://"))
		return th_err_set(err, TH_EINVAL,
				  "address '%s': unknown scheme (tcp://, tls://, ws://, wss://)",
				  addr);
	const char *slash = strchr(p, '/');
	size_t hl = slash ? (size_t)(slash - p) : strlen(p);
	if (slash)
		snprintf(c->path, sizeof c->path, "%s", slash);
	const char *hp_end = p + hl, *colon;
	if (*p == '[') {
		const char *rb = memchr(p, ']', hl);
		if (!rb || rb + 1 >= hp_end || rb[1] != ':')
			return th_err_set(err, TH_EINVAL, "address '%s': expected [IPv6]:PORT", addr);
		snprintf(c->host, sizeof c->host, "%.*s", (int)(rb - p - 1), p + 1);
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *q = p; q < hp_end; q++)
			if (*q == ':')
				colon = q;
		if (!colon)
			return th_err_set(err, TH_EINVAL, "address '%s': expected HOST:PORT", addr);
		snprintf(c->host, sizeof c->host, "%.*s", (int)(colon - p), p);
	}
	snprintf(c->port, sizeof c->port, "%.*s", (int)(hp_end - colon - 1), colon + 1);
	char *end;
	long port = strtol(c->port, &end, 10);
	if (!c->host[0] || *end || port <= 0 || port > 65535)
		return th_err_set(err, TH_EINVAL, "address '%s': bad host or port", addr);
	return 0;
}

static void client_free(thcl *c)
{
	if (c->retry_ev)
		event_free(c->retry_ev);
	if (c->ping_ev)
		event_free(c->ping_ev);
	if (c->timeout_ev)
		event_free(c->timeout_ev);
	thn_imap_release(&c->streams);
	SSL_CTX_free(c->ssl);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	th_free(c);
}

int thcl_connect(const thcl_opts *o, thcl **out, th_err *err)
{
	*out = NULL;
	thcl *c = th_calloc(1, sizeof *c);
	if (!c)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	int rc = parse_address(c, o->address, o->tls_ca != NULL, err);
	if (rc) {
		client_free(c);
		return rc;
	}
	c->no_compress = o->no_compress;
	c->reconnect = o->reconnect;
	c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
	c->backoff_min = o->backoff_min_ms ? o->backoff_min_ms : 50;
	c->backoff_max = o->backoff_max_ms ? o->backoff_max_ms : 5000;
	if (c->backoff_max < c->backoff_min)
		c->backoff_max = c->backoff_min;
	c->backoff = c->backoff_min;
	if (o->tls_name)
		snprintf(c->name, sizeof c->name, "%s", o->tls_name);
	if (o->versions && o->nversions) {
		c->nversions = o->nversions > THP_MAX_VERSIONS ? THP_MAX_VERSIONS : o->nversions;
		memcpy(c->versions, o->versions, c->nversions * sizeof c->versions[0]);
	} else {
		c->versions[0] = THP_VERSION;
		c->nversions = 1;
	}
	c->has_cert = o->tls_cert != NULL;
	if (c->scheme == SCHEME_TLS || c->scheme == SCHEME_WSS) {
		if (!(c->ssl = thn_tls_client_ctx(o->tls_ca, o->tls_cert, o->tls_key, err))) {
			client_free(c);
			return err ? err->code : TH_EINVAL;
		}
	} else if (o->tls_cert) {
		client_free(c);
		return th_err_set(err, TH_EINVAL,
				  "a client certificate needs a TLS address (tls:// or wss://)");
	}
	if (o->loop) {
		c->loop = o->loop;
	} else {
		if ((rc = thcl_loop_new(&c->loop, err))) {
			client_free(c);
			return rc;
		}
		c->own_loop = true;
	}
	c->retry_ev = evtimer_new(c->loop->base, retry_cb, c);
	c->ping_ev = evtimer_new(c->loop->base, ping_cb, c);
	c->timeout_ev = evtimer_new(c->loop->base, timeout_cb, c);
	struct cmd *k = cmd_new(c, CMD_START);
	if (!c->retry_ev || !c->ping_ev || !c->timeout_ev || !k) {
		th_free(k);
		if (c->own_loop)
			thcl_loop_free(c->loop);
		client_free(c);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	push_cmd(c, k, false);
	pthread_mutex_lock(&c->mu);
	while (c->pub == 0)
		pthread_cond_wait(&c->cv, &c->mu);
	int pub = c->pub;
	th_err ce = c->conn_err;
	pthread_mutex_unlock(&c->mu);
	if (pub < 0) {
		thcl_close(c);
		if (err)
			*err = ce;
		return ce.code ? ce.code : TH_EIO;
	}
	*out = c;
	return 0;
}

void thcl_close(thcl *c)
{
	if (!c)
		return;
	struct cmd *k = cmd_new(c, CMD_CLOSE);
	if (k) {
		push_cmd(c, k, false);
		pthread_mutex_lock(&c->mu);
		while (!c->closed)
			pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
	}
	if (c->own_loop) {
		thcl_loop_free(c->loop);
	} else {
		/* Events of this client must not fire after it is freed: the
		 * shared loop deletes them in its own thread. */
		event_del_block(c->retry_ev);
		event_del_block(c->ping_ev);
		event_del_block(c->timeout_ev);
	}
	client_free(c);
}

void thcl_get_info(thcl *c, thcl_info *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->info;
	pthread_mutex_unlock(&c->mu);
}

/* ---- requests ---- */

static int start_call(thcl *c, const void *req, size_t len, uint8_t flags, cstream *st,
		      th_err *err)
{
	struct cmd *k = cmd_new(c, CMD_SEND);
	uint8_t *b = NULL;
	size_t bl = 0;
	if (!k || build_frame(c, THP_REQUEST, flags, req, len, &b, &bl)) {
		th_free(k);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	k->st = st;
	k->bytes = b;
	k->len = bl;
	push_cmd(c, k, true);
	return 0;
}

/* Wait for the response that opens a long-lived stream (subscription,
 * channel); returns its status, copying its error into err. */
static int wait_opened(thcl *c, cstream *st, th_err *err)
{
	int rc;
	pthread_mutex_lock(&c->mu);
	while (!st->done)
		pthread_cond_wait(&c->cv, &c->mu);
	rc = st->rc;
	if (rc && err)
		*err = st->err;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int wait_call(thcl *c, cstream *st, uint32_t timeout_ms, uint8_t **resp,
		     size_t *resp_len, th_err *err)
{
	uint64_t ms = timeout_ms ? timeout_ms : 60000;
	struct timespec ts = th_deadline(CLOCK_REALTIME, ms);
	pthread_mutex_lock(&c->mu);
	int wrc = 0;
	while (!st->done && wrc != ETIMEDOUT)
		wrc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	bool done = st->done;
	int rc = st->rc;
	if (done && rc == 0) {
		if (resp) {
			*resp = st->resp;
			st->resp = NULL;
		}
		if (resp_len)
			*resp_len = st->resp_len;
	} else if (done && err) {
		*err = st->err;
	}
	pthread_mutex_unlock(&c->mu);
	if (!done) {
		struct cmd *k = cmd_new(c, CMD_ABANDON);
		if (k) {
			k->st = st;
			push_cmd(c, k, false);
		} else {
			stream_unref(st); /* leaks nothing: the loop holds its own */
		}
		return th_err_set(err, TH_ETIMEOUT, "no response within %" PRIu64 " ms", ms);
	}
	stream_unref(st);
	return rc;
}

int thcl_call(thcl *c, const void *req, size_t len, uint32_t timeout_ms, uint8_t **resp,
	      size_t *resp_len, th_err *err)
{
	cstream *st = stream_new(K_CALL);
	if (!st)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	int rc = start_call(c, req, len, THP_F_END, st, err);
	if (rc) {
		th_free(st);
		return rc;
	}
	return wait_call(c, st, timeout_ms, resp, resp_len, err);
}

int thcl_call_download(thcl *c, const void *req, size_t len, thcl_data_fn on_data,
		       void *ud, uint8_t **resp, size_t *resp_len, th_err *err)
{
	cstream *st = stream_new(K_CALL);
	if (!st)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	st->on_data = on_data;
	st->ud = ud;
	int rc = start_call(c, req, len, THP_F_END, st, err);
	if (rc) {
		th_free(st);
		return rc;
	}
	/* Long transfers: no overall deadline beyond a generous one. */
	return wait_call(c, st, 24u * 3600 * 1000, resp, resp_len, err);
}

int thcl_call_upload(thcl *c, const void *req, size_t len, int fd, uint64_t total_hint,
		     thcl_progress_fn progress, void *pud, uint8_t **resp,
		     size_t *resp_len, th_err *err)
{
	cstream *st = stream_new(K_CALL);
	if (!st)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	int rc = start_call(c, req, len, 0, st, err);
	if (rc) {
		th_free(st);
		return rc;
	}
	enum { CHUNK = 256 * 1024 };
	uint64_t done = 0;
	for (;;) {
		uint8_t *buf = th_malloc(CHUNK);
		if (!buf) {
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			break;
		}
		size_t got = 0;
		while (got < CHUNK) {
			ssize_t r = read(fd, buf + got, CHUNK - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = th_err_set(err, TH_EIO, "read: %s", strerror(errno));
				break;
			}
			if (r == 0)
				break;
			got += (size_t)r;
		}
		if (rc) {
			th_free(buf);
			break;
		}
		bool eof = got < CHUNK;
		struct cmd *k = cmd_new(c, CMD_SEND);
		uint8_t *b = NULL;
		size_t bl = 0;
		if (!k || build_frame(c, THP_DATA, eof ? THP_F_END : 0, buf, got, &b, &bl)) {
			th_free(k);
			th_free(buf);
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
			break;
		}
		th_free(buf);
		put32(b + 2, st->id);
		k->bytes = b;
		k->len = bl;
		pthread_mutex_lock(&c->mu);
		c->out_pending += bl;
		/* Do not run ahead of the network by more than OUT_LIMIT. */
		while (c->out_pending > OUT_LIMIT && !st->done && c->info.connected)
			pthread_cond_wait(&c->cv, &c->mu);
		bool over = st->done;
		pthread_mutex_unlock(&c->mu);
		push_cmd(c, k, false);
		done += got;
		if (progress)
			progress(pud, done, total_hint);
		if (eof || over)
			break;
	}
	if (rc) {
		/* The stream was opened: cancel it on the server. */
		struct cmd *k = cmd_new(c, CMD_ABANDON);
		if (k) {
			k->st = st;
			push_cmd(c, k, false);
		}
		return rc;
	}
	return wait_call(c, st, 24u * 3600 * 1000, resp, resp_len, err);
}

int thcl_call_async(thcl *c, const void *req, size_t len, thcl_done_fn done, void *ud,
		    th_err *err)
{
	cstream *st = stream_new(K_CALL);
	if (!st)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	st->async = done;
	st->aud = ud;
	int rc = start_call(c, req, len, THP_F_END, st, err);
	if (rc)
		th_free(st);
	return rc;
}

/* ---- subscriptions ---- */

int thcl_subscribe(thcl *c, const char *chain, const uint64_t *from, uint32_t window,
		   uint32_t buffer, thcl_sub **out, th_err *err)
{
	*out = NULL;
	if (strlen(chain) > THX_NAME_MAX)
		return th_err_set(err, TH_EINVAL, "chain name longer than %d bytes", THX_NAME_MAX);
	if (!window)
		window = 1024;
	thcl_sub *s = th_calloc(1, sizeof *s);
	cstream *st = stream_new(K_SUB);
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 3 + (from != NULL) + (buffer != 0));
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "subscribe");
	if (from) {
		th_cbor_put_cstr(&e, "from");
		th_cbor_put_uint(&e, *from);
	}
	th_cbor_put_cstr(&e, "chain");
	th_cbor_put_cstr(&e, chain);
	if (buffer) {
		th_cbor_put_cstr(&e, "buffer");
		th_cbor_put_uint(&e, buffer);
	}
	th_cbor_put_cstr(&e, "credit");
	th_cbor_put_uint(&e, window);
	if (!s || !st || e.err) {
		th_free(s);
		th_free(st);
		th_cbor_enc_release(&e);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	s->c = c;
	snprintf(s->chain, sizeof s->chain, "%s", chain);
	s->window = window;
	s->buffer = buffer;
	s->next_seq = from ? *from : 0;
	s->st = st;
	st->sub = s;
	int rc = start_call(c, e.buf, e.len, THP_F_END, st, err);
	th_cbor_enc_release(&e);
	if (rc) {
		th_free(s);
		th_free(st);
		return rc;
	}
	rc = wait_opened(c, st, err);
	if (rc) {
		stream_unref(st);
		th_free(s);
		return rc;
	}
	/* The loop has set s->stream and linked s (on the RESPONSE). */
	*out = s;
	return 0;
}

int thcl_sub_next(thcl_sub *s, thcl_event *ev, int timeout_ms, th_err *err)
{
	thcl *c = s->c;
	th_free(s->current);
	s->current = NULL;
	int rc = 0;
	if (!s->local) {
		struct timespec ts;
		if (timeout_ms >= 0)
			ts = th_deadline(CLOCK_REALTIME, (uint64_t)timeout_ms);
		pthread_mutex_lock(&c->mu);
		int wrc = 0;
		while (!s->head && !s->ended && wrc != ETIMEDOUT) {
			if (timeout_ms >= 0)
				wrc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			else
				pthread_cond_wait(&c->cv, &c->mu);
		}
		if (s->head) {
			/* Take everything queued at once. */
			s->local = s->head;
			s->head = s->tail = NULL;
		} else if (s->ended) {
			rc = s->err.code ? s->err.code : TH_EIO;
			if (err)
				*err = s->err;
		} else {
			rc = th_err_set(err, TH_ETIMEOUT, "no event within %d ms", timeout_ms);
		}
		pthread_mutex_unlock(&c->mu);
		if (rc)
			return rc;
	}
	struct sitem *it = s->local;
	s->local = it->next;
	s->current = it;
	*ev = it->ev;
	if (!it->ev.gap && ++s->consumed >= (s->window + 1) / 2) {
		struct cmd *k = cmd_new(c, CMD_CREDIT);
		if (k) {
			k->sub = s;
			k->n = s->consumed;
			push_cmd(c, k, false);
		}
		s->consumed = 0;
	}
	return 0;
}

uint64_t thcl_sub_next_seq(thcl_sub *s)
{
	pthread_mutex_lock(&s->c->mu);
	uint64_t n = s->next_seq;
	pthread_mutex_unlock(&s->c->mu);
	return n;
}

void thcl_sub_close(thcl_sub *s)
{
	if (!s)
		return;
	struct cmd *k = cmd_new(s->c, CMD_UNSUB);
	if (!k)
		return; /* out of memory: freed with the client */
	k->sub = s;
	push_cmd(s->c, k, false);
}

/* ---- channels ---- */

int thcl_channel_open(thcl *c, const char *id, const void *msg, size_t len, thcl_chan **out,
		      uint8_t **reply, size_t *reply_len, th_err *err)
{
	*out = NULL;
	thcl_chan *ch = th_calloc(1, sizeof *ch);
	cstream *st = stream_new(K_CHAN);
	th_cbor_enc e;
	th_cbor_enc_init(&e, NULL, 0);
	th_cbor_put_map(&e, 3);
	th_cbor_put_cstr(&e, "id");
	th_cbor_put_cstr(&e, id);
	th_cbor_put_cstr(&e, "op");
	th_cbor_put_cstr(&e, "channel.open");
	th_cbor_put_cstr(&e, "msg");
	th_cbor_put_bytes(&e, msg ? msg : "", len);
	if (!ch || !st || e.err) {
		th_free(ch);
		th_free(st);
		th_cbor_enc_release(&e);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	ch->c = c;
	ch->st = st;
	st->chan = ch;
	/* Without END: our messages follow as DATA frames. */
	int rc = start_call(c, e.buf, e.len, 0, st, err);
	th_cbor_enc_release(&e);
	if (rc) {
		th_free(ch);
		th_free(st);
		return rc;
	}
	rc = wait_opened(c, st, err);
	if (rc) {
		stream_unref(st);
		th_free(ch);
		return rc;
	}
	if (reply) {
		*reply = NULL;
		*reply_len = 0;
		th_cbor_dec d;
		uint64_t pairs;
		th_cbor_dec_init(&d, st->resp, st->resp_len);
		if (th_cbor_get_map(&d, &pairs, NULL) == 0)
			for (uint64_t i = 0; i < pairs; i++) {
				const char *k;
				size_t kn;
				const uint8_t *b;
				size_t bn;
				if (th_cbor_get_text(&d, &k, &kn, NULL))
					break;
				if (kn == 5 && !memcmp(k, "reply", 5) &&
				    th_cbor_get_bytes(&d, &b, &bn, NULL) == 0) {
					*reply = th_malloc(bn ? bn : 1);
					if (*reply) {
						memcpy(*reply, b, bn);
						*reply_len = bn;
					}
					break;
				}
				if (th_cbor_skip(&d, NULL))
					break;
			}
	}
	*out = ch;
	return 0;
}

static int chan_data(thcl_chan *ch, const void *msg, size_t len, uint8_t flags, th_err *err);

int thcl_channel_send(thcl_chan *ch, const void *msg, size_t len, th_err *err)
{
	return chan_data(ch, msg, len, 0, err);
}

int thcl_channel_end(thcl_chan *ch, th_err *err)
{
	return chan_data(ch, NULL, 0, THP_F_END, err);
}

static int chan_data(thcl_chan *ch, const void *msg, size_t len, uint8_t flags, th_err *err)
{
	thcl *c = ch->c;
	pthread_mutex_lock(&c->mu);
	bool ended = ch->ended;
	th_err e = ch->err;
	pthread_mutex_unlock(&c->mu);
	if (ended) {
		if (err)
			*err = e;
		return e.code ? e.code : TH_ESTATE;
	}
	struct cmd *k = cmd_new(c, CMD_SEND);
	uint8_t *b = NULL;
	size_t bl = 0;
	if (!k || build_frame(c, THP_DATA, flags, msg, len, &b, &bl)) {
		th_free(k);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	put32(b + 2, ch->st->id);
	k->bytes = b;
	k->len = bl;
	push_cmd(c, k, false);
	return 0;
}

int thcl_channel_recv(thcl_chan *ch, uint8_t **msg, size_t *len, int timeout_ms, th_err *err)
{
	thcl *c = ch->c;
	struct timespec ts;
	if (timeout_ms >= 0)
		ts = th_deadline(CLOCK_REALTIME, (uint64_t)timeout_ms);
	int rc = 0, wrc = 0;
	pthread_mutex_lock(&c->mu);
	while (!ch->head && !ch->ended && wrc != ETIMEDOUT) {
		if (timeout_ms >= 0)
			wrc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		else
			pthread_cond_wait(&c->cv, &c->mu);
	}
	if (ch->head) {
		struct sitem *it = ch->head;
		ch->head = it->next;
		if (!ch->head)
			ch->tail = NULL;
		*len = it->ev.len;
		*msg = th_malloc(*len ? *len : 1);
		if (*msg)
			memcpy(*msg, it->ev.data, *len);
		else
			rc = th_err_set(err, TH_ENOMEM, "out of memory");
		th_free(it);
	} else if (ch->ended) {
		rc = ch->err.code ? ch->err.code : TH_ESTATE;
		if (err)
			*err = ch->err;
	} else {
		rc = th_err_set(err, TH_ETIMEOUT, "no message within %d ms", timeout_ms);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void thcl_channel_close(thcl_chan *ch)
{
	if (!ch)
		return;
	struct cmd *k = cmd_new(ch->c, CMD_CHAN_CLOSE);
	if (!k)
		return; /* out of memory: freed with the client */
	k->chan = ch;
	push_cmd(ch->c, k, false);
}

/* ---- testing ---- */

void thcl_test_drop(thcl *c)
{
	struct cmd *k = cmd_new(c, CMD_DROP);
	if (k)
		push_cmd(c, k, false);
}

int thcl_test_send_raw(thcl *c, const void *p, size_t n)
{
	struct cmd *k = cmd_new(c, CMD_RAW);
	uint8_t *b = th_malloc(n ? n : 1);
	if (!k || !b) {
		th_free(k);
		th_free(b);
		return TH_ENOMEM;
	}
	memcpy(b, p, n);
	k->bytes = b;
	k->len = n;
	push_cmd(c, k, false);
	return 0;
}
