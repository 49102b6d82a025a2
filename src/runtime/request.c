/*
 * request.c - outstanding requests and open channels (prefix rtq_).
 *
 * A request lives in the table from the moment its message is delivered
 * until exactly one of three things removes it: the target's answer
 * (handle-request returning some, or respond-to-request), the timeout
 * timer, or the end of either actor. Whoever removes it from the table
 * (under the table lock) owns it and completes the requester; the others
 * find nothing and do nothing. The answering side cancels the timer with
 * rtt_cancel, which also waits for a timeout callback already running
 * (that callback found nothing to remove, so it does not touch the
 * request). Locks: the table lock is never held while calling into an
 * actor, a mailbox or the timer service.
 *
 * Channels follow the same rule: an open waits for the target's
 * handle-channel-open; accepted channels stay in the table until closed by
 * either side or until one of the two actors ends. The initiator may be
 * outside the runtime (thr_channel_open): then `a` is NULL and `ext` is its
 * party (api_chan.c), which hears of the answer, the target's messages and
 * the end through the rtx_ hooks instead of a mailbox.
 */
#include "base/base.h"
#include "runtime/rt.h"
#include "runtime/supervise.h"

enum { CH_OPENING = 0, CH_OPEN = 1 };

struct rtq_req {
	rtq_req *next;
	uint64_t n;
	rta_actor *from;      /* NULL: external caller waiting in rtq_wait  */
	uint64_t token;
	rta_actor *to;
	uint32_t timeout_ms;
	bool seen;            /* handle-request was called for it          */
	rtt_timer timer;
	thr_runtime *rt;
	/* external requester */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;             /* table + waiter                            */
	bool done, ok;
	uint8_t *data;
	size_t len;
};

typedef struct rtq_chan {
	struct rtq_chan *next;
	uint64_t n;
	rta_actor *a, *b;     /* initiator (NULL: ext), target */
	rtx_end *ext;         /* external initiator (a reference) */
	int state;
	uint64_t token;       /* initiator's pending open */
} rtq_chan;

#define NBUCKETS 1024

struct rtq_table {
	thr_runtime *rt;
	pthread_mutex_t lock;
	rtq_req *req[NBUCKETS];
	rtq_chan *chan[NBUCKETS];
	size_t nreq;
	_Atomic uint64_t next;
};

int rtq_new(thr_runtime *rt, rtq_table **out)
{
	rtq_table *q = th_calloc(1, sizeof *q);
	if (!q)
		return TH_ENOMEM;
	q->rt = rt;
	pthread_mutex_init(&q->lock, NULL);
	atomic_init(&q->next, 1);
	*out = q;
	return 0;
}

static void req_free(rtq_req *r)
{
	if (r->from)
		rdl_leave(r->from, r->n);
	if (!r->from) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
	}
	th_free(r->data);
	th_free(r);
}

/* Drop one reference of an external request. */
static void req_unref(rtq_req *r)
{
	int left;
	pthread_mutex_lock(&r->lock);
	left = --r->refs;
	pthread_mutex_unlock(&r->lock);
	if (!left)
		req_free(r);
}

void rtq_free(rtq_table *q)
{
	if (!q)
		return;
	for (int i = 0; i < NBUCKETS; i++) {
		while (q->req[i]) {
			rtq_req *r = q->req[i];
			q->req[i] = r->next;
			rtt_cancel(q->rt->timers, &r->timer);
			if (r->from)
				req_free(r);
			else
				req_unref(r);
		}
		while (q->chan[i]) {
			rtq_chan *c = q->chan[i];
			q->chan[i] = c->next;
			if (c->ext)
				rtx_unref(c->ext);
			th_free(c);
		}
	}
	pthread_mutex_destroy(&q->lock);
	th_free(q);
}

bool rtq_parse_id(const char *s, size_t len, char prefix, uint64_t *n)
{
	uint64_t v = 0;
	if (len < 2 || len > 21 || s[0] != prefix)
		return false;
	for (size_t i = 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*n = v;
	return true;
}

static rtq_req *req_remove_locked(rtq_table *q, uint64_t n)
{
	for (rtq_req **pp = &q->req[n % NBUCKETS]; *pp; pp = &(*pp)->next)
		if ((*pp)->n == n) {
			rtq_req *r = *pp;
			*pp = r->next;
			q->nreq--;
			return r;
		}
	return NULL;
}

static rtq_req *req_remove(rtq_table *q, uint64_t n)
{
	rtq_req *r;
	pthread_mutex_lock(&q->lock);
	r = req_remove_locked(q, n);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* Answer a request now owned by the caller (removed from the table). */
static void req_finish(rtq_req *r, bool ok, const void *data, size_t len)
{
	if (!r->from) {
		/* NUL-terminated, so that an error text is a C string. */
		uint8_t *copy = th_malloc(len + 1);
		if (copy) {
			if (len)
				memcpy(copy, data, len);
			copy[len] = 0;
		} else {
			ok = false;
			copy = (uint8_t *)th_strdup("out of memory");
			len = copy ? strlen((char *)copy) : 0;
		}
		pthread_mutex_lock(&r->lock);
		r->done = true;
		r->ok = ok;
		r->data = copy;
		r->len = len;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		req_unref(r);
		return;
	}
	thc_val payload = { 0 }, res = { 0 };
	int rc = ok ? thc_val_bytes(data, len, &payload)
		    : thc_val_string(data, len, &payload);
	if (!rc)
		rc = thc_val_case(THC_RESULT, ok ? 0 : 1, &payload, &res);
	if (rc) {
		thc_val_release(&payload);
		rta_complete_trap(r->from, r->token,
				  "out of memory delivering a response");
	} else if (!rta_complete(r->from, r->token, &res)) {
		thc_val_release(&res);
	}
	req_free(r);
}

static void on_timeout(rtt_timer *t, void *ctx)
{
	rtq_req *r = ctx;
	thr_runtime *rt = r->rt;
	char msg[128];
	TH_UNUSED(t);
	if (req_remove(rt->rq, r->n) != r)
		return; /* answered meanwhile: the answerer owns it */
	snprintf(msg, sizeof msg, "request r%llu to %s timed out after %u ms",
		 (unsigned long long)r->n, r->to->id, r->timeout_ms);
	req_finish(r, false, msg, strlen(msg));
}

int rtq_request(thr_runtime *rt, rta_actor *from, uint64_t token,
		rta_actor *to, const void *msg, size_t len,
		uint32_t timeout_ms, rtq_req **out, th_err *err)
{
	rtq_table *q = rt->rq;
	rtq_req *r;
	rtm_msg *m;
	int rc;

	*out = NULL;
	if (len > UINT32_MAX)
		return th_err_set(err, TH_ELIMIT, "message too large");
	r = th_calloc(1, sizeof *r);
	m = rtm_msg_new(RTM_REQUEST, RTM_NORMAL, msg, (uint32_t)len);
	if (!r || !m) {
		th_free(r);
		rtm_msg_free(m);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	r->n = atomic_fetch_add(&q->next, 1);
	r->from = from;
	r->token = token;
	r->to = to;
	r->rt = rt;
	r->timeout_ms = timeout_ms ? timeout_ms : to->request_timeout_ms;
	if (!from) {
		pthread_mutex_init(&r->lock, NULL);
		pthread_cond_init(&r->cond, NULL);
		r->refs = 2;
	}
	if (from && (rc = rdl_enter(from, to, r->n, err))) {
		th_free(r);
		rtm_msg_free(m);
		return rc;
	}
	rtt_timer_init(&r->timer, on_timeout, r);
	m->ref = r->n;
	if (from)
		snprintf(m->sender, sizeof m->sender, "%s", from->id);

	pthread_mutex_lock(&q->lock);
	r->next = q->req[r->n % NBUCKETS];
	q->req[r->n % NBUCKETS] = r;
	q->nreq++;
	pthread_mutex_unlock(&q->lock);

	rc = rtt_arm(rt->timers, &r->timer,
		     th_now_ns() + (uint64_t)r->timeout_ms * 1000000u);
	if (!rc) {
		rc = rta_deliver(to, m, err);
		if (rc == TH_EBUSY)
			rtm_msg_free(m); /* a full mailbox leaves m to the caller */
	} else {
		rtm_msg_free(m);
		th_err_set(err, rc, "out of memory arming a timer");
	}
	if (rc) {
		/* Not delivered: take it back unless the timer already did. */
		if (req_remove(q, r->n) == r) {
			rtt_cancel(rt->timers, &r->timer);
			if (from)
				req_free(r);
			else {
				r->refs = 1;
				req_unref(r);
			}
		}
		return rc;
	}
	*out = r;
	return 0;
}

int rtq_wait(rtq_req *r, uint8_t **reply, size_t *len, th_err *err)
{
	int rc;
	pthread_mutex_lock(&r->lock);
	while (!r->done)
		pthread_cond_wait(&r->cond, &r->lock);
	if (r->ok) {
		*reply = r->data;
		*len = r->len;
		r->data = NULL;
		rc = 0;
	} else {
		bool timeout = r->data && strstr((char *)r->data, "timed out");
		rc = th_err_set(err, timeout ? TH_ETIMEOUT : TH_EINVAL, "%.*s",
				(int)r->len, r->data ? (char *)r->data : "");
	}
	pthread_mutex_unlock(&r->lock);
	req_unref(r);
	return rc;
}

bool rtq_answer(thr_runtime *rt, rta_actor *by, uint64_t n, bool ok,
		const void *data, size_t len)
{
	rtq_table *q = rt->rq;
	rtq_req *r = NULL;
	pthread_mutex_lock(&q->lock);
	for (rtq_req *x = q->req[n % NBUCKETS]; x; x = x->next)
		if (x->n == n && (!by || x->to == by)) {
			r = req_remove_locked(q, n);
			break;
		}
	pthread_mutex_unlock(&q->lock);
	if (!r)
		return false;
	rtt_cancel(rt->timers, &r->timer);
	req_finish(r, ok, data, len);
	return true;
}

void rtq_mark_seen(thr_runtime *rt, uint64_t n)
{
	rtq_table *q = rt->rq;
	pthread_mutex_lock(&q->lock);
	for (rtq_req *r = q->req[n % NBUCKETS]; r; r = r->next)
		if (r->n == n)
			r->seen = true;
	pthread_mutex_unlock(&q->lock);
}

int rtq_outstanding(thr_runtime *rt, rta_actor *a, uint64_t **ns, size_t *n)
{
	rtq_table *q = rt->rq;
	size_t cap = 0, k = 0;
	uint64_t *v = NULL;
	int rc = 0;
	pthread_mutex_lock(&q->lock);
	for (int i = 0; i < NBUCKETS && !rc; i++)
		for (rtq_req *r = q->req[i]; r; r = r->next) {
			if (r->to != a || !r->seen)
				continue;
			if (k == cap) {
				size_t nc = cap ? cap * 2 : 8;
				uint64_t *nv = th_realloc(v, nc * sizeof *nv);
				if (!nv) {
					rc = TH_ENOMEM;
					break;
				}
				v = nv;
				cap = nc;
			}
			v[k++] = r->n;
		}
	pthread_mutex_unlock(&q->lock);
	if (rc) {
		th_free(v);
		return rc;
	}
	/* Oldest first. */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	*ns = v;
	*n = k;
	return 0;
}

/* ---- channels ----------------------------------------------------------- */

static rtq_chan *chan_find_locked(rtq_table *q, uint64_t n)
{
	for (rtq_chan *c = q->chan[n % NBUCKETS]; c; c = c->next)
		if (c->n == n)
			return c;
	return NULL;
}

static rtq_chan *chan_remove_locked(rtq_table *q, uint64_t n)
{
	for (rtq_chan **pp = &q->chan[n % NBUCKETS]; *pp; pp = &(*pp)->next)
		if ((*pp)->n == n) {
			rtq_chan *c = *pp;
			*pp = c->next;
			return c;
		}
	return NULL;
}

static void complete_str(rta_actor *a, uint64_t token, unsigned disc,
			 const char *s)
{
	thc_val p = { 0 }, res = { 0 };
	if (thc_val_string(s, strlen(s), &p) ||
	    thc_val_case(THC_RESULT, disc, &p, &res)) {
		thc_val_release(&p);
		rta_complete_trap(a, token, "out of memory");
		return;
	}
	if (!rta_complete(a, token, &res))
		thc_val_release(&res);
}

/* Put c (number and parties set) in the table and deliver the open to
 * its target. On failure c is taken out again and freed, with its
 * external party's reference (unless an actor's end took it first). */
static int chan_start(rtq_table *q, rtq_chan *c, const void *msg, size_t len,
		      th_err *err)
{
	rtm_msg *m = len <= UINT32_MAX
		? rtm_msg_new(RTM_CHANNEL_OPEN, RTM_NORMAL, msg, (uint32_t)len)
		: NULL;
	int rc;
	if (!m) {
		if (c->ext)
			rtx_unref(c->ext);
		th_free(c);
		return th_err_set(err, TH_ENOMEM, "out of memory");
	}
	m->ref = c->n;
	if (c->a)
		snprintf(m->sender, sizeof m->sender, "%s", c->a->id);
	pthread_mutex_lock(&q->lock);
	c->next = q->chan[c->n % NBUCKETS];
	q->chan[c->n % NBUCKETS] = c;
	pthread_mutex_unlock(&q->lock);
	rc = rta_deliver(c->b, m, err);
	if (rc == TH_EBUSY)
		rtm_msg_free(m); /* a full mailbox leaves m to the caller */
	if (rc) {
		pthread_mutex_lock(&q->lock);
		c = chan_remove_locked(q, c->n);
		pthread_mutex_unlock(&q->lock);
		if (c && c->ext)
			rtx_unref(c->ext);
		th_free(c);
	}
	return rc;
}

int rtq_channel_open(thr_runtime *rt, rta_actor *from, uint64_t token,
		     rta_actor *to, const void *msg, size_t len, th_err *err)
{
	rtq_chan *c = th_calloc(1, sizeof *c);
	if (!c)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	c->n = atomic_fetch_add(&rt->rq->next, 1);
	c->a = from;
	c->b = to;
	c->token = token;
	return chan_start(rt->rq, c, msg, len, err);
}

void rtq_channel_answer(thr_runtime *rt, uint64_t n, bool accepted,
			const uint8_t *msg, size_t len, bool has_msg)
{
	rtq_table *q = rt->rq;
	rtq_chan *c;
	rta_actor *a, *b;
	rtx_end *x;
	uint64_t token;
	char text[96];

	pthread_mutex_lock(&q->lock);
	c = chan_find_locked(q, n);
	if (!c || c->state != CH_OPENING) {
		pthread_mutex_unlock(&q->lock);
		if (!c && accepted && has_msg) {
			/* Its opener ended meanwhile (rtq_actor_gone). */
			snprintf(text, sizeof text, "the message of accepted "
				 "channel c%llu: its opener has ended",
				 (unsigned long long)n);
			rtr_runtime_event(rt, "message.undeliverable", "", text);
		}
		return;
	}
	a = c->a;
	b = c->b;
	x = c->ext;
	token = c->token;
	if (x)
		rtx_ref(x);
	if (accepted)
		c->state = CH_OPEN;
	else
		th_free(chan_remove_locked(q, n));
	pthread_mutex_unlock(&q->lock);

	if (x) {
		snprintf(text, sizeof text, "the actor refused channel c%llu",
			 (unsigned long long)n);
		rtx_answer(x, accepted, msg, len, has_msg, text);
		if (!accepted)
			rtx_unref(x); /* the table's */
		rtx_unref(x);
		return;
	}
	if (!accepted) {
		snprintf(text, sizeof text, "channel c%llu was rejected",
			 (unsigned long long)n);
		complete_str(a, token, 1, text);
		return;
	}
	/* The accept's message reaches a even when its mailbox is full (a
	 * cannot wait for room in its own mailbox, and b's turn that
	 * answered is over): RTA_MSGF_PAST_FULL. It is queued before a's call
	 * completes, so before anything a's handler causes next. */
	if (has_msg) {
		rtm_msg *m = len <= UINT32_MAX
			? rtm_msg_new(RTM_CHANNEL_MESSAGE, RTM_NORMAL, msg,
				      (uint32_t)len) : NULL;
		th_err err = { 0 };
		if (m) {
			m->ref = n;
			m->flags = RTA_MSGF_PAST_FULL;
			th_strlcpy(m->sender, b->id, sizeof m->sender);
		}
		if (!m)
			th_err_set(&err, TH_ENOMEM, "out of memory");
		if (!m || rta_deliver(a, m, &err)) {
			/* a has ended (or the message is over its limit, which
			 * message.rejected records): say so, never silently. */
			char why[TH_ERR_MSG_MAX + 96];
			snprintf(why, sizeof why,
				 "the message of accepted channel c%llu from %s: %s",
				 (unsigned long long)n, b->id, err.msg);
			rtr_runtime_event(rt, "message.undeliverable", a->id, why);
		}
	}
	snprintf(text, sizeof text, "c%llu", (unsigned long long)n);
	complete_str(a, token, 0, text);
}

rta_actor *rtq_channel_peer(thr_runtime *rt, rta_actor *a, uint64_t n)
{
	rtq_table *q = rt->rq;
	rtq_chan *c;
	rta_actor *other = NULL;
	pthread_mutex_lock(&q->lock);
	c = chan_find_locked(q, n);
	if (c && !c->ext && c->state == CH_OPEN && (c->a == a || c->b == a))
		other = c->a == a ? c->b : c->a;
	pthread_mutex_unlock(&q->lock);
	return other;
}

int rtq_channel_close(thr_runtime *rt, rta_actor *a, uint64_t n,
		      rta_actor **peer, rtm_msg **close, th_err *err)
{
	rtq_table *q = rt->rq;
	rtq_chan *c;
	rta_actor *other = NULL;
	rtx_end *x = NULL;
	rtm_msg *m;

	*peer = NULL;
	*close = NULL;
	pthread_mutex_lock(&q->lock);
	c = chan_find_locked(q, n);
	if (c && c->state == CH_OPEN && (c->a == a || c->b == a)) {
		other = c->a == a ? c->b : c->a;
		x = c->ext;
		th_free(chan_remove_locked(q, n));
	}
	pthread_mutex_unlock(&q->lock);
	if (x) {
		rtx_closed(x, "closed by the actor");
		rtx_unref(x); /* the table's */
		return 0;
	}
	if (!other)
		return th_err_set(err, TH_ENOTFOUND,
				  "channel c%llu is not open for this actor",
				  (unsigned long long)n);
	m = rtm_msg_new(RTM_CHANNEL_CLOSE, RTM_NORMAL, NULL, 0);
	if (!m)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	m->ref = n;
	snprintf(m->sender, sizeof m->sender, "%s", a->id);
	*peer = other;
	*close = m;
	return 0;
}

void rtq_actor_gone(thr_runtime *rt, rta_actor *a, const char *why)
{
	rtq_table *q = rt->rq;
	rtq_req *mine = NULL, *theirs = NULL;
	rtq_chan *closed = NULL;

	pthread_mutex_lock(&q->lock);
	for (int i = 0; i < NBUCKETS; i++) {
		for (rtq_req **pp = &q->req[i]; *pp;) {
			rtq_req *r = *pp;
			if (r->from == a || r->to == a) {
				*pp = r->next;
				q->nreq--;
				if (r->from == a) {
					r->next = mine;
					mine = r;
				} else {
					r->next = theirs;
					theirs = r;
				}
			} else {
				pp = &r->next;
			}
		}
		for (rtq_chan **pp = &q->chan[i]; *pp;) {
			rtq_chan *c = *pp;
			if (c->a == a || c->b == a) {
				*pp = c->next;
				c->next = closed;
				closed = c;
			} else {
				pp = &c->next;
			}
		}
	}
	pthread_mutex_unlock(&q->lock);

	while (mine) {
		rtq_req *r = mine;
		mine = r->next;
		rtt_cancel(rt->timers, &r->timer);
		req_free(r); /* its requester (a) is gone */
	}
	while (theirs) {
		rtq_req *r = theirs;
		char msg[160];
		theirs = r->next;
		rtt_cancel(rt->timers, &r->timer);
		snprintf(msg, sizeof msg, "actor %s %s", a->id, why);
		req_finish(r, false, msg, strlen(msg));
	}
	while (closed) {
		rtq_chan *c = closed;
		rta_actor *other = c->a == a ? c->b : c->a;
		closed = c->next;
		if (c->ext) {
			char msg[160];
			snprintf(msg, sizeof msg, "actor %s %s", a->id, why);
			if (c->state == CH_OPENING)
				rtx_answer(c->ext, false, NULL, 0, false, msg);
			else
				rtx_closed(c->ext, msg);
			rtx_unref(c->ext);
		} else if (c->state == CH_OPENING && c->a != a) {
			char msg[160];
			snprintf(msg, sizeof msg, "actor %s %s", a->id, why);
			complete_str(c->a, c->token, 1, msg);
		} else if (c->state == CH_OPEN) {
			/* Even into a full mailbox: a has ended, nobody is
			 * left to wait for room (RTA_MSGF_PAST_FULL). The other
			 * may have ended too: then nobody is left to tell. */
			rtm_msg *m = rtm_msg_new(RTM_CHANNEL_CLOSE, RTM_NORMAL, NULL, 0);
			if (m) {
				m->ref = c->n;
				m->flags = RTA_MSGF_PAST_FULL;
				th_strlcpy(m->sender, a->id, sizeof m->sender);
				(void)rta_deliver(other, m, NULL);
			}
		}
		th_free(c);
	}
}

/* ---- channels with an external party -------------------------------------- */

uint64_t rtq_next_id(thr_runtime *rt)
{
	return atomic_fetch_add(&rt->rq->next, 1);
}

int rtq_channel_open_ext(thr_runtime *rt, rtx_end *x, uint64_t n,
			 rta_actor *to, const void *msg, size_t len,
			 th_err *err)
{
	rtq_chan *c = th_calloc(1, sizeof *c);
	if (!c)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	c->n = n;
	c->b = to;
	c->ext = x;
	rtx_ref(x);
	return chan_start(rt->rq, c, msg, len, err);
}

rta_actor *rtq_channel_actor_ext(thr_runtime *rt, uint64_t n)
{
	rtq_table *q = rt->rq;
	rtq_chan *c;
	rta_actor *to = NULL;
	pthread_mutex_lock(&q->lock);
	c = chan_find_locked(q, n);
	if (c && c->ext && c->state == CH_OPEN)
		to = c->b;
	pthread_mutex_unlock(&q->lock);
	return to;
}

rta_actor *rtq_channel_close_ext(thr_runtime *rt, uint64_t n)
{
	rtq_table *q = rt->rq;
	rtq_chan *c;
	rta_actor *to = NULL;
	pthread_mutex_lock(&q->lock);
	c = chan_find_locked(q, n);
	c = c && c->ext ? chan_remove_locked(q, n) : NULL;
	pthread_mutex_unlock(&q->lock);
	if (!c)
		return NULL;
	/* Still opening: the target's answer will find nothing. */
	if (c->state == CH_OPEN)
		to = c->b;
	rtx_unref(c->ext);
	th_free(c);
	return to;
}

int rtq_channel_to_ext(thr_runtime *rt, rta_actor *a, uint64_t n,
		       const void *msg, size_t len)
{
	rtq_table *q = rt->rq;
	rtq_chan *c;
	rtx_end *x = NULL;
	pthread_mutex_lock(&q->lock);
	c = chan_find_locked(q, n);
	if (c && c->ext && c->state == CH_OPEN && c->b == a) {
		x = c->ext;
		rtx_ref(x);
	}
	pthread_mutex_unlock(&q->lock);
	if (!x)
		return 0;
	rtx_message(x, msg, len);
	rtx_unref(x);
	return 1;
}

void rtq_ids_above(thr_runtime *rt, uint64_t n)
{
	uint64_t cur = atomic_load(&rt->rq->next);
	while (cur <= n && !atomic_compare_exchange_weak(&rt->rq->next, &cur, n + 1))
		;
}
