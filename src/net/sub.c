/*
 * sub.c - subscriptions: an actor's (a chain's) events streamed on one
 * protocol stream, with credit-based flow control, a bounded buffer, gap
 * notices and catch-up from the chain.
 *
 * A subscription is always in one mode (under sub->mu):
 *
 *   CATCHUP  a worker reads events [next, ...) from the chain in batches
 *            that fit the buffer, queues them, and switches to LIVE once
 *            `next` has reached the chain's count. Pushed events are
 *            ignored: the chain has them.
 *   LIVE     the chain's subscriber callback (tap_cb, on the appending
 *            thread) queues each new event. An event with seq < next is a
 *            duplicate (dropped); seq > next means one was missed (e.g.
 *            appended while switching modes): back to CATCHUP, so nothing
 *            is ever lost silently. When the queue holds `buffer` events
 *            the subscriber is too far behind: further events are counted
 *            into a gap marker [from, to], sent as a GAP frame in order,
 *            after which live events flow again. The client can fetch the
 *            range with events.get.
 *   PAUSED   the session's connection is gone; nothing is queued. Resuming
 *            with the client's next seq drops the queue and goes CATCHUP,
 *            so the client gets exactly the events it has not seen.
 *   CLOSED   unregistered; waiting for the last reference.
 *
 * The loop thread drains queues into the connection as long as the
 * client's credit lasts (GAP frames need no credit) and the connection's
 * output stays below its high-water mark.
 *
 * Taps: the pointer handed to thx_subscribe is not a pointer at all but a
 * token (slot | generation << 32) looked up in a process-wide registry
 * under a read lock, so that a callback racing with a removal finds
 * nothing. Removing a tap takes it out of the registry under the write
 * lock, then unsubscribes after releasing it (thx_unsubscribe waits for
 * callbacks under way, which may be waiting for that lock).
 */
#include <inttypes.h>

#include "net/net.h"
#include "theater/chain.h"

struct thn_tap {
	uint64_t token;
	thx_store *st;
	char *name;
	uint64_t xid;      /* thx_subscribe id */
	thn_sub **subs;
	size_t n, cap;
};

static pthread_rwlock_t taps_lk = PTHREAD_RWLOCK_INITIALIZER;
static thn_tap **slots;
static uint32_t *slot_gen;
static size_t nslots;

static void push(thn_sub *s, const thx_event *ev);

static int tap_cb(const thx_event *ev, void *arg)
{
	uint64_t token = (uint64_t)(uintptr_t)arg;
	size_t slot = (size_t)(token & 0xffffffffu);
	pthread_rwlock_rdlock(&taps_lk);
	if (slot < nslots && slots[slot] && slots[slot]->token == token) {
		thn_tap *t = slots[slot];
		for (size_t i = 0; i < t->n; i++)
			push(t->subs[i], ev);
	}
	pthread_rwlock_unlock(&taps_lk);
	return 0;
}

/* Under the write lock: find or make the tap for (st, name), add s. On
 * failure *doomed may name a tap to unsubscribe and free after the lock
 * is released (tap_bury). */
static int tap_join(thx_store *st, const char *name, thn_sub *s, thn_tap **doomed,
		    th_err *err)
{
	*doomed = NULL;
	thn_tap *t = NULL;
	size_t freeslot = nslots;
	for (size_t i = 0; i < nslots; i++) {
		if (slots[i] && slots[i]->st == st && !strcmp(slots[i]->name, name)) {
			t = slots[i];
			break;
		}
		if (!slots[i] && freeslot == nslots)
			freeslot = i;
	}
	if (!t) {
		if (freeslot == nslots) {
			size_t cap = nslots ? nslots * 2 : 16;
			thn_tap **ns = th_realloc(slots, cap * sizeof *ns);
			if (!ns)
				return th_err_set(err, TH_ENOMEM, "out of memory");
			slots = ns;
			uint32_t *ng = th_realloc(slot_gen, cap * sizeof *ng);
			if (!ng)
				return th_err_set(err, TH_ENOMEM, "out of memory");
			slot_gen = ng;
			for (size_t i = nslots; i < cap; i++) {
				slots[i] = NULL;
				slot_gen[i] = 0;
			}
			nslots = cap;
		}
		t = th_calloc(1, sizeof *t);
		if (!t || !(t->name = th_strdup(name))) {
			th_free(t);
			return th_err_set(err, TH_ENOMEM, "out of memory");
		}
		t->st = st;
		t->token = (uint64_t)++slot_gen[freeslot] << 32 | freeslot;
		int rc = thx_subscribe(st, name, tap_cb, (void *)(uintptr_t)t->token,
				       &t->xid, err);
		if (rc) {
			th_free(t->name);
			th_free(t);
			return rc;
		}
		slots[freeslot] = t;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4;
		thn_sub **ns = th_realloc(t->subs, cap * sizeof *ns);
		if (!ns) {
			if (t->n == 0) {
				/* Just made: undo, once the lock is released. */
				slots[t->token & 0xffffffffu] = NULL;
				*doomed = t;
			}
			return th_err_set(err, TH_ENOMEM, "out of memory");
		}
		t->subs = ns;
		t->cap = cap;
	}
	t->subs[t->n++] = s;
	s->tap = t;
	return 0;
}

/* Under the write lock: s leaves its tap; a tap left empty is taken out
 * of the registry (no callback can reach it any more) and returned, to be
 * unsubscribed and freed by tap_bury once the lock is released:
 * thx_unsubscribe waits for callbacks under way, which may themselves be
 * waiting for the registry lock. */
static thn_tap *tap_leave(thn_sub *s)
{
	thn_tap *t = s->tap;
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (t->subs[i] == s) {
			t->subs[i] = t->subs[--t->n];
			break;
		}
	}
	s->tap = NULL;
	if (t->n > 0)
		return NULL;
	slots[t->token & 0xffffffffu] = NULL;
	return t;
}

/* Outside the registry lock. */
static void tap_bury(thn_tap *t)
{
	if (!t)
		return;
	thx_unsubscribe(t->st, t->xid);
	th_free(t->subs);
	th_free(t->name);
	th_free(t);
}

/* ---- encoding ---- */

void thn_event_encode(th_cbor_enc *e, const thx_event *ev, size_t max_data)
{
	bool omit = ev->data && ev->len > max_data;
	bool has_data = ev->data && !omit;
	bool desc = ev->description && !ev->pruned;
	bool actor = ev->actor && *ev->actor;
	size_t n = 4 + has_data + desc + actor + ev->has_parent + ev->pruned + omit;
	th_cbor_put_map(e, n);
	th_cbor_put_cstr(e, "ts");
	th_cbor_put_uint(e, ev->timestamp_ns);
	th_cbor_put_cstr(e, "seq");
	th_cbor_put_uint(e, ev->seq);
	if (has_data) {
		th_cbor_put_cstr(e, "data");
		th_cbor_put_bytes(e, ev->data, ev->len);
	}
	if (desc) {
		th_cbor_put_cstr(e, "desc");
		th_cbor_put_cstr(e, ev->description);
	}
	th_cbor_put_cstr(e, "hash");
	th_cbor_put_bytes(e, ev->hash, THX_HASH_LEN);
	th_cbor_put_cstr(e, "type");
	th_cbor_put_cstr(e, ev->type ? ev->type : "");
	if (actor) {
		th_cbor_put_cstr(e, "actor");
		th_cbor_put_cstr(e, ev->actor);
	}
	if (ev->has_parent) {
		th_cbor_put_cstr(e, "parent");
		th_cbor_put_bytes(e, ev->parent, THX_HASH_LEN);
	}
	if (ev->pruned) {
		th_cbor_put_cstr(e, "pruned");
		th_cbor_put_bool(e, true);
	}
	if (omit) {
		th_cbor_put_cstr(e, "omitted");
		th_cbor_put_uint(e, ev->len);
	}
}

static _Thread_local uint8_t enc_scratch[4096];

static thn_ent *make_event(thn_sub *s, const thx_event *ev)
{
	th_cbor_enc e;
	/* Room for the header, the CBOR keys and the fixed fields. */
	size_t max_data = s->max_frame > 512 ? s->max_frame - 512 : 0;
	th_cbor_enc_init(&e, enc_scratch, sizeof enc_scratch);
	thn_event_encode(&e, ev, max_data);
	if (e.err) {
		th_cbor_enc_init(&e, NULL, 0);
		thn_event_encode(&e, ev, max_data);
		if (e.err) {
			th_cbor_enc_release(&e);
			return NULL;
		}
	}
	thn_ent *ent = NULL;
	if (s->compress_min && e.len >= s->compress_min) {
		thp_buf b = { 0 };
		if (thp_frame_append(&b, THP_EVENT, 0, s->stream, e.buf, e.len,
				     s->compress_min, NULL) == 0 &&
		    (ent = th_malloc(sizeof *ent + b.len))) {
			memcpy(ent->frame, b.p, b.len);
			ent->len = b.len;
		}
		thp_buf_release(&b);
	} else if ((ent = th_malloc(sizeof *ent + THP_HEADER_LEN + e.len))) {
		thp_header_put(ent->frame, THP_EVENT, 0, s->stream, (uint32_t)e.len);
		memcpy(ent->frame + THP_HEADER_LEN, e.buf, e.len);
		ent->len = THP_HEADER_LEN + e.len;
	}
	th_cbor_enc_release(&e);
	if (!ent)
		return NULL;
	ent->next = NULL;
	ent->seq = ev->seq;
	ent->gap = false;
	ent->gap_to = 0;
	return ent;
}

/* ---- queue (under mu) ---- */

static void enqueue(thn_sub *s, thn_ent *e)
{
	e->next = NULL;
	if (s->tail)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	if (!e->gap)
		s->queued++;
}

static void queue_clear(thn_sub *s)
{
	thn_ent *e = s->head;
	while (e) {
		thn_ent *n = e->next;
		th_free(e);
		e = n;
	}
	s->head = s->tail = NULL;
	s->queued = 0;
}

static bool wants_drain(const thn_sub *s)
{
	return s->head && (s->credit > 0 || s->head->gap);
}

/* Under mu: start a catch-up task unless one runs. Returns true when the
 * caller must submit it (after unlocking). */
static bool catchup_needed(thn_sub *s)
{
	if (s->mode != THN_SUB_CATCHUP || s->catchup_running ||
	    s->queued >= s->buffer)
		return false;
	s->catchup_running = true;
	atomic_fetch_add(&s->refs, 1);
	return true;
}

static void signal_ready(thn_sub *s, bool *signal)
{
	if (!s->in_ready && wants_drain(s)) {
		s->in_ready = true;
		atomic_fetch_add(&s->refs, 1);
		*signal = true;
	}
}

static void push(thn_sub *s, const thx_event *ev)
{
	bool signal = false, catchup = false;
	pthread_mutex_lock(&s->mu);
	if (s->mode != THN_SUB_LIVE || ev->seq < s->next)
		goto out;
	if (ev->seq > s->next) {
		/* Missed one (appended while we were switching modes). */
		s->mode = THN_SUB_CATCHUP;
		catchup = catchup_needed(s);
		goto out;
	}
	if (s->queued >= s->buffer) {
		if (s->tail && s->tail->gap && s->tail->gap_to + 1 == ev->seq) {
			s->tail->gap_to = ev->seq;
		} else {
			thn_ent *g = th_malloc(sizeof *g);
			if (!g) {
				/* Cannot even note the gap: read it later. */
				s->mode = THN_SUB_CATCHUP;
				catchup = catchup_needed(s);
				goto out;
			}
			g->gap = true;
			g->seq = g->gap_to = ev->seq;
			g->len = 0;
			enqueue(s, g);
			s->gaps++;
		}
		s->next++;
	} else {
		thn_ent *e = make_event(s, ev);
		if (!e) {
			s->mode = THN_SUB_CATCHUP;
			catchup = catchup_needed(s);
			goto out;
		}
		enqueue(s, e);
		s->next++;
	}
	signal_ready(s, &signal);
out:
	pthread_mutex_unlock(&s->mu);
	if (signal)
		thn_srv_ready(s->srv, s);
	if (catchup)
		thn_pool_submit(thn_srv_pool(s->srv), &s->catchup);
}

/* ---- catch-up ---- */

struct collect {
	thn_sub *s;
	uint64_t expect;
	thn_ent *head, *tail;
	size_t n;
	bool failed;
};

static int collect_cb(const thx_event *ev, void *arg)
{
	struct collect *c = arg;
	if (ev->seq != c->expect)
		return 1; /* defensive: queries without filters are contiguous */
	thn_ent *e = make_event(c->s, ev);
	if (!e) {
		c->failed = true;
		return 1;
	}
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->n++;
	c->expect++;
	return 0;
}

static void free_list(thn_ent *e)
{
	while (e) {
		thn_ent *n = e->next;
		th_free(e);
		e = n;
	}
}

#define CATCHUP_BATCH 2048
#define CATCHUP_ROUNDS 8

static void catchup_run(thn_task *t)
{
	thn_sub *s = (thn_sub *)((char *)t - offsetof(thn_sub, catchup));
	bool again = false;
	for (int round = 0; round < CATCHUP_ROUNDS; round++) {
		pthread_mutex_lock(&s->mu);
		uint64_t room = s->buffer > s->queued ? s->buffer - s->queued : 0;
		if (s->mode != THN_SUB_CATCHUP || room == 0) {
			s->catchup_running = false;
			pthread_mutex_unlock(&s->mu);
			goto done;
		}
		uint64_t from = s->next;
		pthread_mutex_unlock(&s->mu);

		struct collect c = { .s = s, .expect = from };
		thx_query q = { .from_seq = from,
				.limit = room < CATCHUP_BATCH ? (size_t)room : CATCHUP_BATCH };
		int rc = thx_query_run(s->chain, &q, collect_cb, &c, NULL);

		bool signal = false;
		pthread_mutex_lock(&s->mu);
		if (s->mode != THN_SUB_CATCHUP || s->next != from) {
			/* Resumed elsewhere or closed meanwhile: read again. */
			free_list(c.head);
			bool stop = s->mode != THN_SUB_CATCHUP;
			if (stop)
				s->catchup_running = false;
			pthread_mutex_unlock(&s->mu);
			if (stop)
				goto done;
			continue;
		}
		for (thn_ent *e = c.head; e;) {
			thn_ent *n = e->next;
			enqueue(s, e);
			e = n;
		}
		s->next = from + c.n;
		bool stuck = (rc < 0 && rc != 1) || c.failed;
		/* The count is read under mu: an event appended after this is
		 * pushed after LIVE is set (and queued); one appended before
		 * makes next < count, and the loop reads it. */
		if (!stuck && s->next >= thx_chain_count(s->chain)) {
			s->mode = THN_SUB_LIVE;
			s->catchup_running = false;
		}
		signal_ready(s, &signal);
		bool running = s->catchup_running;
		pthread_mutex_unlock(&s->mu);
		if (signal)
			thn_srv_ready(s->srv, s);
		if (!running)
			goto done;
		if (stuck) {
			/* Out of memory or a read error: let the next drain
			 * (or credit) retry rather than spin. */
			pthread_mutex_lock(&s->mu);
			s->catchup_running = false;
			pthread_mutex_unlock(&s->mu);
			goto done;
		}
	}
	again = true;
done:
	if (again)
		thn_pool_submit(thn_srv_pool(s->srv), &s->catchup);
	else
		thn_sub_unref(s);
}

/* ---- life cycle ---- */

int thn_sub_new(thsrv *srv, thx_chain *c, const char *name, uint32_t stream,
		const uint64_t *from_seq, uint64_t credit, uint32_t buffer,
		size_t compress_min, thn_sub **out, uint64_t *next, th_err *err)
{
	const thsrv_config *cfg = thn_srv_config(srv);
	thn_sub *s = th_calloc(1, sizeof *s);
	if (!s)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->mu, NULL);
	s->srv = srv;
	s->chain = c;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->stream = stream;
	s->buffer = buffer;
	s->credit = s->credit0 = credit;
	s->max_frame = cfg->max_frame;
	s->compress_min = compress_min;
	s->mode = THN_SUB_INIT;
	s->catchup.fn = catchup_run;

	thn_tap *doomed;
	pthread_rwlock_wrlock(&taps_lk);
	int rc = tap_join(cfg->chains, name, s, &doomed, err);
	pthread_rwlock_unlock(&taps_lk);
	tap_bury(doomed);
	if (rc) {
		pthread_mutex_destroy(&s->mu);
		th_free(s);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	if (from_seq) {
		s->next = *from_seq;
		s->mode = THN_SUB_CATCHUP;
	} else {
		/* Under mu, so that no event at or after the count can be
		 * pushed (and ignored) before LIVE is set. */
		s->next = thx_chain_count(c);
		s->mode = THN_SUB_LIVE;
	}
	*next = s->next;
	pthread_mutex_unlock(&s->mu);
	*out = s;
	return 0;
}

void thn_sub_ref(thn_sub *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void thn_sub_unref(thn_sub *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	queue_clear(s);
	pthread_mutex_destroy(&s->mu);
	th_free(s);
}

void thn_sub_close(thn_sub *s)
{
	pthread_rwlock_wrlock(&taps_lk);
	thn_tap *doomed = tap_leave(s);
	pthread_rwlock_unlock(&taps_lk);
	tap_bury(doomed);
	pthread_mutex_lock(&s->mu);
	s->mode = THN_SUB_CLOSED;
	queue_clear(s);
	pthread_mutex_unlock(&s->mu);
}

void thn_sub_start(thn_sub *s)
{
	pthread_mutex_lock(&s->mu);
	bool catchup = catchup_needed(s);
	bool signal = false;
	signal_ready(s, &signal);
	pthread_mutex_unlock(&s->mu);
	if (signal)
		thn_srv_ready(s->srv, s);
	if (catchup)
		thn_pool_submit(thn_srv_pool(s->srv), &s->catchup);
}

static void put_gap(thp_buf *out, uint32_t stream, uint64_t from, uint64_t to)
{
	uint8_t p[32];
	th_cbor_enc e;
	th_cbor_enc_init(&e, p, sizeof p);
	th_cbor_put_map(&e, 2);
	th_cbor_put_cstr(&e, "to");
	th_cbor_put_uint(&e, to);
	th_cbor_put_cstr(&e, "from");
	th_cbor_put_uint(&e, from);
	(void)thp_frame_append(out, THP_GAP, 0, stream, p, e.len, 0, NULL);
}

void thn_sub_drain(thn_sub *s, thp_buf *out, size_t out_limit,
		   uint64_t *events, uint64_t *gaps)
{
	pthread_mutex_lock(&s->mu);
	while (s->head && out->len < out_limit) {
		thn_ent *e = s->head;
		if (!e->gap && s->credit == 0)
			break;
		size_t before = out->len;
		if (e->gap)
			put_gap(out, s->stream, e->seq, e->gap_to);
		else if (thp_buf_append(out, e->frame, e->len))
			break; /* out of memory: leave it queued */
		if (out->len == before)
			break;
		s->head = e->next;
		if (!s->head)
			s->tail = NULL;
		if (e->gap) {
			(*gaps)++;
		} else {
			s->queued--;
			s->credit--;
			(*events)++;
		}
		th_free(e);
	}
	bool catchup = catchup_needed(s);
	pthread_mutex_unlock(&s->mu);
	if (catchup)
		thn_pool_submit(thn_srv_pool(s->srv), &s->catchup);
}

void thn_sub_add_credit(thn_sub *s, uint64_t n)
{
	pthread_mutex_lock(&s->mu);
	s->credit = s->credit + n < s->credit ? UINT64_MAX : s->credit + n;
	pthread_mutex_unlock(&s->mu);
}

void thn_sub_pause(thn_sub *s)
{
	pthread_mutex_lock(&s->mu);
	if (s->mode != THN_SUB_CLOSED) {
		s->mode = THN_SUB_PAUSED;
		queue_clear(s);
	}
	pthread_mutex_unlock(&s->mu);
}

void thn_sub_resume(thn_sub *s, uint64_t next)
{
	pthread_mutex_lock(&s->mu);
	if (s->mode != THN_SUB_CLOSED) {
		queue_clear(s);
		s->next = next;
		s->credit = s->credit0;
		s->mode = THN_SUB_CATCHUP;
	}
	pthread_mutex_unlock(&s->mu);
}

void thn_sub_unready(thn_sub *s)
{
	pthread_mutex_lock(&s->mu);
	s->in_ready = false;
	pthread_mutex_unlock(&s->mu);
}

uint64_t thn_sub_gaps(thn_sub *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t g = s->gaps;
	pthread_mutex_unlock(&s->mu);
	return g;
}
