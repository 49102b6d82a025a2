/*
 * h_message.c - theater:simple/message-server-host: send, request,
 * channels, deferred responses.
 *
 * Backpressure: a send to a full mailbox suspends the sending actor (not
 * its worker): it waits on the target's mailbox (rtm_wait_for_room) and
 * its turn retries the delivery when woken. An actor sending to its own
 * full mailbox gets an error instead, since nobody else would ever make
 * room. A request suspends the caller until the answer or the timeout
 * (limits.request_timeout_ms of the caller).
 */
#include "base/base.h"
#include "handlers/handlers.h"

typedef struct waitctx {
	rta_actor *to;
	rtm_msg *m;       /* send: the message, until delivered */
	bool request;     /* request: re-issue rtq_request      */
	uint8_t *data;    /* request payload                    */
	size_t len;
	uint64_t token;
	bool notice;      /* a channel-close: a stopped target is fine */
} waitctx;

static void waitctx_free(void *p)
{
	waitctx *w = p;
	rtm_msg_free(w->m);
	th_free(w->data);
	th_free(w);
}

static void room_ready(rtm_waiter *w)
{
	rta_poke(w->ctx);
}

/* Wait for room in to's mailbox; false when there is room already. */
static bool wait_room(rta_actor *a, rta_actor *to)
{
	a->room.ready = room_ready;
	a->room.ctx = a;
	a->room_target = to;
	if (rtm_wait_for_room(&to->mb, &a->room))
		return true;
	a->room_target = NULL;
	return false;
}

static void set_answer(rta_actor *a, int rc, const char *msg)
{
	thc_val p = { 0 }, res = { 0 };
	if (rc == 0) {
		thc_val_case(THC_RESULT, 0, NULL, &res);
	} else if (thc_val_string(msg, strlen(msg), &p) ||
		   thc_val_case(THC_RESULT, 1, &p, &res)) {
		thc_val_release(&p);
		return; /* out of memory: the call answers ok(()) */
	}
	rta_set_result(a, &res);
}

static int retry(rta_actor *a)
{
	waitctx *w = a->pend.ctx;
	th_err err = { 0 };
	int rc;
	for (;;) {
		a->room_target = NULL;
		if (w->request) {
			rtq_req *r;
			rc = rtq_request(a->rt, a, w->token, w->to, w->data, w->len,
					 a->request_timeout_ms, &r, &err);
			if (rc == 0) {
				/* Delivered: now wait for the answer itself. */
				rta_retry_on_wake(a, NULL, w, waitctx_free);
				return 1;
			}
		} else {
			rc = rta_deliver(w->to, w->m, &err);
			if (rc != TH_EBUSY)
				w->m = NULL; /* delivered, or freed on error */
		}
		if (rc != TH_EBUSY)
			break;
		if (wait_room(a, w->to))
			return 1;
	}
	if (w->request) {
		/* Not delivered: the request fails now. */
		thc_val p = { 0 }, res = { 0 };
		if (!thc_val_string(err.msg, strlen(err.msg), &p) &&
		    !thc_val_case(THC_RESULT, 1, &p, &res))
			rta_set_result(a, &res);
		else
			thc_val_release(&p);
		return 0;
	}
	set_answer(a, w->notice ? 0 : rc, err.msg);
	return 0;
}

/* Deliver m (taken) to `to`, suspending while its mailbox is full. A
 * notice (channel-close) to an actor that has ended answers ok: there is
 * nobody left to tell. */
static rth_ret deliver_or_wait(rth_call *c, rta_actor *to, rtm_msg *m,
			       bool notice)
{
	th_err err;
	waitctx *w;
	th_err_clear(&err);
	int rc = rta_deliver(to, m, &err);
	if (rc == 0 || (rc != TH_EBUSY && notice))
		return rth_ok_unit(c);
	if (rc != TH_EBUSY)
		return rth_err(c, "%s", err.msg);
	if (to == c->a) {
		rtm_msg_free(m);
		return rth_err(c, "the actor's own mailbox is full");
	}
	w = th_calloc(1, sizeof *w);
	if (!w) {
		rtm_msg_free(m);
		return rth_oom(c);
	}
	w->to = to;
	w->m = m;
	w->notice = notice;
	rta_suspend(c->a);
	rta_retry_on_wake(c->a, retry, w, waitctx_free);
	if (!wait_room(c->a, to))
		rta_poke(c->a);
	return RTH_PENDING;
}

/* The actor named by v. An actor usually sends to the same few actors:
 * the last one found is kept (actor structs live as long as the runtime
 * and ids never change hands, rt.h), which saves the registry's lock. */
static rta_actor *target(rth_call *c, const thc_val *v)
{
	rta_actor *a = c->a, *to;
	char id[64];
	if (!rth_cstr(v, id, sizeof id))
		return NULL;
	if (a->last_to && !strcmp(a->last_to->id, id))
		return a->last_to;
	to = rtg_find(a->rt->reg, id);
	if (to)
		a->last_to = to;
	return to;
}

static rth_ret no_target(rth_call *c, const thc_val *v)
{
	size_t n = 0;
	const char *s = rth_str(v, &n);
	return rth_err(c, "no actor with id \"%.*s\"", (int)(n > 64 ? 64 : n),
		       s ? s : "");
}

static rth_ret fn_send(rth_call *c)
{
	rta_actor *to = target(c, &c->args[0]);
	const uint8_t *p;
	uint8_t *tmp;
	size_t n;
	rtm_msg *m;

	if (!to)
		return no_target(c, &c->args[0]);
	p = rth_bytes(&c->args[1], &n, &tmp);
	if (!p)
		return rth_oom(c);
	m = n <= UINT32_MAX ? rtm_msg_new(RTM_SEND, RTM_NORMAL, p, (uint32_t)n) : NULL;
	th_free(tmp);
	if (!m)
		return n > UINT32_MAX ? rth_err(c, "message too large") : rth_oom(c);
	th_strlcpy(m->sender, c->a->id, sizeof m->sender);
	return deliver_or_wait(c, to, m, false);
}

static rth_ret fn_request(rth_call *c)
{
	rta_actor *a = c->a, *to = target(c, &c->args[0]);
	const uint8_t *p;
	uint8_t *tmp;
	size_t n;
	uint64_t token;
	rtq_req *r;
	th_err err = { 0 };
	int rc;

	if (!to)
		return no_target(c, &c->args[0]);
	if (to == a)
		return rth_err(c, "an actor cannot send a request to itself "
			       "(it would wait for its own answer)");
	p = rth_bytes(&c->args[1], &n, &tmp);
	if (!p)
		return rth_oom(c);
	token = rta_suspend(a);
	rc = rtq_request(a->rt, a, token, to, p, n, a->request_timeout_ms, &r, &err);
	if (rc == 0) {
		th_free(tmp);
		return RTH_PENDING;
	}
	if (rc == TH_EBUSY) {
		waitctx *w = th_calloc(1, sizeof *w);
		uint8_t *copy = th_malloc(n ? n : 1);
		if (!w || !copy) {
			th_free(w);
			th_free(copy);
			th_free(tmp);
			rta_unsuspend(a);
			return rth_oom(c);
		}
		memcpy(copy, p, n);
		th_free(tmp);
		w->to = to;
		w->request = true;
		w->data = copy;
		w->len = n;
		w->token = token;
		rta_retry_on_wake(a, retry, w, waitctx_free);
		if (!wait_room(a, to))
			rta_poke(a);
		return RTH_PENDING;
	}
	th_free(tmp);
	rta_unsuspend(a);
	return rth_err(c, "%s", err.msg);
}

static rth_ret fn_open_channel(rth_call *c)
{
	rta_actor *a = c->a, *to = target(c, &c->args[0]);
	const uint8_t *p;
	uint8_t *tmp;
	size_t n;
	uint64_t token;
	th_err err = { 0 };
	int rc;

	if (!to)
		return no_target(c, &c->args[0]);
	if (to == a)
		return rth_err(c, "an actor cannot open a channel to itself");
	p = rth_bytes(&c->args[1], &n, &tmp);
	if (!p)
		return rth_oom(c);
	token = rta_suspend(a);
	rc = rtq_channel_open(a->rt, a, token, to, p, n, &err);
	th_free(tmp);
	if (rc == 0)
		return RTH_PENDING;
	rta_unsuspend(a);
	return rth_err(c, "%s", err.msg);
}

static bool chan_id(const thc_val *v, uint64_t *n)
{
	size_t len;
	const char *s = rth_str(v, &len);
	return s && rtq_parse_id(s, len, 'c', n);
}

static rth_ret fn_send_on_channel(rth_call *c)
{
	rta_actor *other;
	const uint8_t *p;
	uint8_t *tmp;
	size_t n;
	uint64_t ch;
	rtm_msg *m;

	if (!chan_id(&c->args[0], &ch))
		return rth_err(c, "no open channel with that id for this actor");
	p = rth_bytes(&c->args[1], &n, &tmp);
	if (!p)
		return rth_oom(c);
	/* A channel opened from outside the runtime: its party takes it. */
	if (rtq_channel_to_ext(c->a->rt, c->a, ch, p, n)) {
		th_free(tmp);
		return rth_ok_unit(c);
	}
	if (!(other = rtq_channel_peer(c->a->rt, c->a, ch))) {
		th_free(tmp);
		return rth_err(c, "no open channel with that id for this actor");
	}
	m = n <= UINT32_MAX ? rtm_msg_new(RTM_CHANNEL_MESSAGE, RTM_NORMAL, p,
					  (uint32_t)n) : NULL;
	th_free(tmp);
	if (!m)
		return rth_oom(c);
	m->ref = ch;
	th_strlcpy(m->sender, c->a->id, sizeof m->sender);
	return deliver_or_wait(c, other, m, false);
}

static rth_ret fn_close_channel(rth_call *c)
{
	uint64_t ch;
	th_err err = { 0 };
	rta_actor *peer;
	rtm_msg *close;
	if (!chan_id(&c->args[0], &ch))
		return rth_err(c, "not a channel id");
	if (rtq_channel_close(c->a->rt, c->a, ch, &peer, &close, &err))
		return rth_err(c, "%s", err.msg);
	/* After the messages sent before it, even into a full mailbox. */
	return close ? deliver_or_wait(c, peer, close, true) : rth_ok_unit(c);
}

static rth_ret fn_list_outstanding(rth_call *c)
{
	uint64_t *ns;
	size_t n;
	if (rtq_outstanding(c->a->rt, c->a, &ns, &n))
		return rth_oom(c);
	if (thc_val_agg(THC_LIST, (uint32_t)n, c->result)) {
		th_free(ns);
		return rth_oom(c);
	}
	for (size_t i = 0; i < n; i++) {
		char buf[32];
		snprintf(buf, sizeof buf, "r%llu", (unsigned long long)ns[i]);
		if (thc_val_string(buf, strlen(buf), &c->result->of.agg.items[i])) {
			th_free(ns);
			thc_val_release(c->result);
			return rth_oom(c);
		}
	}
	th_free(ns);
	return RTH_OK;
}

static bool req_id(const thc_val *v, uint64_t *n)
{
	size_t len;
	const char *s = rth_str(v, &len);
	return s && rtq_parse_id(s, len, 'r', n);
}

static rth_ret fn_respond(rth_call *c)
{
	uint64_t n;
	const uint8_t *p;
	uint8_t *tmp;
	size_t len;
	bool ok;

	if (!req_id(&c->args[0], &n))
		return rth_err(c, "not a request id");
	p = rth_bytes(&c->args[1], &len, &tmp);
	if (!p)
		return rth_oom(c);
	ok = rtq_answer(c->a->rt, c->a, n, true, p, len);
	th_free(tmp);
	if (!ok)
		return rth_err(c, "request r%llu is not outstanding for this actor "
			       "(answered, timed out or cancelled)",
			       (unsigned long long)n);
	return rth_ok_unit(c);
}

static rth_ret fn_cancel(rth_call *c)
{
	uint64_t n;
	char msg[128];
	if (!req_id(&c->args[0], &n))
		return rth_err(c, "not a request id");
	snprintf(msg, sizeof msg, "request r%llu was cancelled by actor %s",
		 (unsigned long long)n, c->a->id);
	if (!rtq_answer(c->a->rt, c->a, n, false, msg, strlen(msg)))
		return rth_err(c, "request r%llu is not outstanding for this actor",
			       (unsigned long long)n);
	return rth_ok_unit(c);
}

#define MS "theater:simple/message-server-host"
#define H(name) "host." MS "." name
const rth_fn rth_message_fns[] = {
	{ MS, "send", H("send"), THM_H_MESSAGE_SERVER, RTH_DENY_ERR, fn_send, NULL },
	{ MS, "request", H("request"), THM_H_MESSAGE_SERVER, RTH_DENY_ERR,
	  fn_request, NULL },
	{ MS, "open-channel", H("open-channel"), THM_H_MESSAGE_SERVER,
	  RTH_DENY_ERR, fn_open_channel, NULL },
	{ MS, "send-on-channel", H("send-on-channel"), THM_H_MESSAGE_SERVER,
	  RTH_DENY_ERR, fn_send_on_channel, NULL },
	{ MS, "close-channel", H("close-channel"), THM_H_MESSAGE_SERVER,
	  RTH_DENY_ERR, fn_close_channel, NULL },
	{ MS, "list-outstanding-requests", H("list-outstanding-requests"),
	  THM_H_MESSAGE_SERVER, RTH_DENY_EMPTY, fn_list_outstanding, NULL },
	{ MS, "respond-to-request", H("respond-to-request"), THM_H_MESSAGE_SERVER,
	  RTH_DENY_ERR, fn_respond, NULL },
	{ MS, "cancel-request", H("cancel-request"), THM_H_MESSAGE_SERVER,
	  RTH_DENY_ERR, fn_cancel, NULL },
	{ 0 }
};
