/*
 * chan.c - channels between a client and an actor: a stream on which
 * each DATA frame is one message. Client -> actor messages go to the
 * runtime's channel_send one at a time, in order (server.c queues them
 * per stream); actor -> client messages come from any runtime thread
 * through thsrv_channel_deliver and leave on the loop thread. Either side
 * may close: the client with DATA+END or CANCEL (then the runtime's
 * channel_close is called), the runtime with thsrv_channel_closed (then
 * the client gets its messages, and a last DATA with END whose payload is
 * the reason).
 */
#include "net/net.h"

thsrv_channel *thn_chan_new(thsrv *srv)
{
	thsrv_channel *ch = th_calloc(1, sizeof *ch);
	if (!ch)
		return NULL;
	atomic_init(&ch->refs, 1);
	pthread_mutex_init(&ch->mu, NULL);
	ch->srv = srv;
	return ch;
}

void thn_chan_ref(thsrv_channel *ch)
{
	atomic_fetch_add(&ch->refs, 1);
}

void thn_chan_unref(thsrv_channel *ch)
{
	if (!ch || atomic_fetch_sub(&ch->refs, 1) != 1)
		return;
	thn_msg *m = ch->head;
	while (m) {
		thn_msg *n = m->next;
		th_free(m);
		m = n;
	}
	pthread_mutex_destroy(&ch->mu);
	th_free(ch);
}

static void signal_ready(thsrv_channel *ch, bool *signal)
{
	if (!ch->in_ready) {
		ch->in_ready = true;
		atomic_fetch_add(&ch->refs, 1);
		*signal = true;
	}
}

int thsrv_channel_deliver(thsrv_channel *ch, const void *msg, size_t len)
{
	thn_msg *m = th_malloc(sizeof *m + (len ? len : 1));
	if (!m)
		return TH_ENOMEM;
	m->next = NULL;
	m->len = len;
	if (len)
		memcpy(m->data, msg, len);
	bool signal = false;
	pthread_mutex_lock(&ch->mu);
	if (ch->rt_closed) {
		pthread_mutex_unlock(&ch->mu);
		th_free(m);
		return TH_ESTATE;
	}
	if (ch->tail)
		ch->tail->next = m;
	else
		ch->head = m;
	ch->tail = m;
	signal_ready(ch, &signal);
	pthread_mutex_unlock(&ch->mu);
	if (signal)
		thn_srv_chan_ready(ch->srv, ch);
	return 0;
}

void thsrv_channel_closed(thsrv_channel *ch, const char *reason)
{
	bool signal = false, drop = false;
	pthread_mutex_lock(&ch->mu);
	ch->rt_closed = true;
	snprintf(ch->reason, sizeof ch->reason, "%s", reason ? reason : "");
	if (ch->rt_ref) {
		ch->rt_ref = false;
		drop = true;
	}
	signal_ready(ch, &signal);
	pthread_mutex_unlock(&ch->mu);
	if (signal)
		thn_srv_chan_ready(ch->srv, ch);
	if (drop)
		thn_chan_unref(ch);
}

void thn_chan_drain(thsrv_channel *ch, thp_buf *out, size_t limit, size_t compress_min,
		    bool *closed)
{
	*closed = false;
	pthread_mutex_lock(&ch->mu);
	while (ch->head && out->len < limit) {
		thn_msg *m = ch->head;
		if (thp_frame_append(out, THP_DATA, 0, ch->stream, m->data, m->len,
				     compress_min, NULL))
			break; /* out of memory: stays queued */
		ch->head = m->next;
		if (!ch->head)
			ch->tail = NULL;
		th_free(m);
	}
	if (ch->rt_closed && !ch->head) {
		(void)thp_frame_append(out, THP_DATA, THP_F_END, ch->stream, ch->reason,
				       strlen(ch->reason), 0, NULL);
		*closed = true;
	}
	pthread_mutex_unlock(&ch->mu);
}

void thn_chan_close(thsrv_channel *ch)
{
	const thsrv_config *cfg = thn_srv_config(ch->srv);
	bool call = false;
	pthread_mutex_lock(&ch->mu);
	if (ch->rt_ref) {
		ch->rt_ref = false;
		call = true;
	}
	pthread_mutex_unlock(&ch->mu);
	if (!call)
		return;
	if (cfg->ops && cfg->ops->channel_close)
		cfg->ops->channel_close(cfg->ops_ctx, ch->state);
	thn_chan_unref(ch); /* the runtime's reference */
}
