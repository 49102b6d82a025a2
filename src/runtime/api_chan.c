/*
 * api_chan.c - channels between an actor and a party outside the runtime
 * (thr_channel_open/send/close, theater/runtime.h), e.g. a client of
 * `theater server`. Prefix rtx_ for the party, thr_ for the API.
 *
 * The channel itself lives in request.c's table like any channel, with
 * the party (rtx_end) in place of an initiating actor. What the actor
 * does reaches the party through three hooks, each called by request.c
 * outside its lock: rtx_answer (handle-channel-open's answer, or a
 * refusal), rtx_message (send-on-channel) and rtx_closed (close-channel,
 * or the actor's end).
 *
 * The rule that makes closing safe from both sides at once: the party's
 * callback only ever runs under the party's lock and only while `closed`
 * is false; whoever sets `closed` (thr_channel_close, or rtx_closed after
 * its last call) does it under that lock. So once thr_channel_close has
 * set it, no call is running and none will start, whatever the actor is
 * doing meanwhile. The registry below maps channel ids to parties for the
 * API; it holds one reference, dropped by whichever of thr_channel_close
 * and rtx_closed takes the party out of it.
 *
 * References to a party: the opener while thr_channel_open runs, the
 * registry while the channel is open, request.c's table while the channel
 * is in it, and each hook call in progress.
 */
#include <errno.h>
#include <time.h>

#include "base/base.h"
#include "runtime/rt.h"

#define NBUCKETS 256

struct rtx_end {
	rtx_end *next;          /* registry bucket (under the registry lock) */
	uint64_t n;
	_Atomic int refs;
	thr_runtime *rt;
	thr_channel_fn fn;
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* the opener waits for the answer          */
	/* under lock */
	bool answered, accepted;
	uint8_t *reply;         /* the acceptance's message, NULL for none  */
	size_t reply_len;
	bool reply_oom;
	char why[160];          /* a refusal's reason                       */
	bool closed;            /* fn is never called again                 */
};

struct rtx_table {
	pthread_mutex_t lock;
	rtx_end *b[NBUCKETS];
};

int rtx_table_new(struct rtx_table **out)
{
	struct rtx_table *t = th_calloc(1, sizeof *t);
	if (!t)
		return TH_ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void rtx_table_free(struct rtx_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < NBUCKETS; i++)
		while (t->b[i]) {
			rtx_end *x = t->b[i];
			t->b[i] = x->next;
			rtx_unref(x);
		}
	pthread_mutex_destroy(&t->lock);
	th_free(t);
}

static void reg_add(struct rtx_table *t, rtx_end *x)
{
	rtx_ref(x);
	pthread_mutex_lock(&t->lock);
	x->next = t->b[x->n % NBUCKETS];
	t->b[x->n % NBUCKETS] = x;
	pthread_mutex_unlock(&t->lock);
}

/* Take channel n out of the registry: its reference passes to the
 * caller. NULL when it is not there (released already). */
static rtx_end *reg_take(struct rtx_table *t, uint64_t n)
{
	rtx_end *x = NULL;
	pthread_mutex_lock(&t->lock);
	for (rtx_end **pp = &t->b[n % NBUCKETS]; *pp; pp = &(*pp)->next)
		if ((*pp)->n == n) {
			x = *pp;
			*pp = x->next;
			break;
		}
	pthread_mutex_unlock(&t->lock);
	return x;
}

void rtx_ref(rtx_end *x)
{
	atomic_fetch_add(&x->refs, 1);
}

void rtx_unref(rtx_end *x)
{
	if (!x || atomic_fetch_sub(&x->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	th_free(x->reply);
	th_free(x);
}

void rtx_answer(rtx_end *x, bool accepted, const uint8_t *msg, size_t len,
		bool has_msg, const char *why)
{
	pthread_mutex_lock(&x->lock);
	if (!x->answered) {
		x->answered = true;
		x->accepted = accepted;
		if (accepted && has_msg) {
			x->reply = th_malloc(len ? len : 1);
			if (x->reply && len)
				memcpy(x->reply, msg, len);
			x->reply_len = len;
			x->reply_oom = !x->reply;
		}
		snprintf(x->why, sizeof x->why, "%s", why ? why : "");
		pthread_cond_signal(&x->cond);
	}
	pthread_mutex_unlock(&x->lock);
}

void rtx_message(rtx_end *x, const void *msg, size_t len)
{
	pthread_mutex_lock(&x->lock);
	if (!x->closed)
		x->fn(x->arg, x->n, msg, len, NULL);
	pthread_mutex_unlock(&x->lock);
}

/* The actor's side ended: the last call of fn, then the channel is
 * released (unless thr_channel_close got there first). */
void rtx_closed(rtx_end *x, const char *why)
{
	pthread_mutex_lock(&x->lock);
	if (!x->closed) {
		x->closed = true;
		x->fn(x->arg, x->n, NULL, 0, why ? why : "closed");
	}
	pthread_mutex_unlock(&x->lock);
	if (reg_take(x->rt->ext, x->n) == x)
		rtx_unref(x); /* the registry's */
}

/* ---- the API ------------------------------------------------------------------ */

int thr_channel_open(thr_runtime *rt, const char *id, const void *msg,
		     size_t len, uint32_t timeout_ms, thr_channel_fn fn,
		     void *arg, uint64_t *channel, uint8_t **reply,
		     size_t *reply_len, th_err *err)
{
	rta_actor *a = id ? rtg_find(rt->reg, id) : NULL;
	pthread_condattr_t ca;
	struct timespec until;
	rtx_end *x;
	bool timed_out = false;
	int rc;

	*channel = 0;
	*reply = NULL;
	*reply_len = 0;
	if (!a)
		return th_err_set(err, TH_ENOTFOUND, "no actor with id \"%s\"",
				  id ? id : "(null)");
	if (!fn)
		return th_err_set(err, TH_EINVAL, "channel open: a callback is required");
	if (!(x = th_calloc(1, sizeof *x)))
		return th_err_set(err, TH_ENOMEM, "out of memory");
	atomic_init(&x->refs, 1); /* the opener's */
	x->rt = rt;
	x->fn = fn;
	x->arg = arg;
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->cond, &ca);
	pthread_condattr_destroy(&ca);
	x->n = rtq_next_id(rt);
	reg_add(rt->ext, x);
	rc = rtq_channel_open_ext(rt, x, x->n, a, msg, len, err);
	if (rc) {
		if (reg_take(rt->ext, x->n) == x)
			rtx_unref(x);
		rtx_unref(x);
		return rc;
	}

	until = th_deadline(CLOCK_MONOTONIC,
			    timeout_ms ? timeout_ms : a->request_timeout_ms);
	pthread_mutex_lock(&x->lock);
	while (!x->answered && !timed_out)
		timed_out = pthread_cond_timedwait(&x->cond, &x->lock, &until) == ETIMEDOUT;
	if (!x->answered) {
		pthread_mutex_unlock(&x->lock);
		thr_channel_close(rt, x->n, NULL);
		rc = th_err_set(err, TH_ETIMEOUT,
				"actor %s did not answer the channel open in %u ms", a->id,
				timeout_ms ? timeout_ms : a->request_timeout_ms);
	} else if (!x->accepted) {
		rc = th_err_set(err, TH_EPERM, "%s", x->why);
		pthread_mutex_unlock(&x->lock);
		if (reg_take(rt->ext, x->n) == x)
			rtx_unref(x);
	} else if (x->reply_oom) {
		pthread_mutex_unlock(&x->lock);
		thr_channel_close(rt, x->n, NULL);
		rc = th_err_set(err, TH_ENOMEM, "out of memory");
	} else {
		*reply = x->reply;
		*reply_len = x->reply ? x->reply_len : 0;
		x->reply = NULL;
		*channel = x->n;
		pthread_mutex_unlock(&x->lock);
	}
	rtx_unref(x);
	return rc;
}

int thr_channel_send(thr_runtime *rt, uint64_t channel, const void *msg,
		     size_t len, unsigned flags, th_err *err)
{
	rta_actor *a = rtq_channel_actor_ext(rt, channel);
	rtm_msg *m;
	if (!a)
		return th_err_set(err, TH_ESTATE, "channel c%llu is not open",
				  (unsigned long long)channel);
	if (len > UINT32_MAX)
		return th_err_set(err, TH_ELIMIT, "message too large");
	m = rtm_msg_new(RTM_CHANNEL_MESSAGE, RTM_NORMAL, msg, (uint32_t)len);
	if (!m)
		return th_err_set(err, TH_ENOMEM, "out of memory");
	m->ref = channel;
	return rtr_deliver_external(a, m, flags, err);
}

int thr_channel_close(thr_runtime *rt, uint64_t channel, th_err *err)
{
	rtx_end *x = reg_take(rt->ext, channel);
	rta_actor *a;
	rtm_msg *m;
	if (!x)
		return th_err_set(err, TH_ENOTFOUND, "no open channel c%llu",
				  (unsigned long long)channel);
	pthread_mutex_lock(&x->lock);
	x->closed = true;
	pthread_mutex_unlock(&x->lock);
	rtx_unref(x); /* the registry's */
	/* The close follows the messages sent before it, in the same lane,
	 * waiting for room like them: handle-channel-close always runs,
	 * unless the actor ends first (then the delivery fails, and the end
	 * closed the channel anyway). */
	if (!(a = rtq_channel_close_ext(rt, channel)))
		return 0;
	if (!(m = rtm_msg_new(RTM_CHANNEL_CLOSE, RTM_NORMAL, NULL, 0)))
		return th_err_set(err, TH_ENOMEM, "out of memory telling %s of the close",
				  a->id);
	m->ref = channel;
	(void)rtr_deliver_external(a, m, THR_SEND_WAIT, NULL);
	return 0;
}
