/*
 * mailbox.c - priority lanes, capacity, in-flight tracking, waiters.
 *
 * Invariants (under mb->lock):
 *  1. queued == number of messages in the HIGH and NORMAL lanes;
 *     queued_system == number in the SYSTEM lane.
 *  2. inflight == length of the in-flight list, which holds messages taken
 *     and not yet acknowledged, in the order they were taken.
 *  3. A waiter is on the list only while queued + reserved >= capacity
 *     was observed at registration; it is removed before its callback
 *     runs.
 *  4. reserved counts slots promised by rtm_reserve and not yet used by
 *     rtm_push_reserved or given back by rtm_unreserve.
 */
#include "base/base.h"
#include "runtime/mailbox.h"

/* One allocation per message: the data follows the struct. */
rtm_msg *rtm_msg_new(rtm_kind kind, rtm_priority prio, const void *data,
		     uint32_t len)
{
	rtm_msg *m = th_malloc(sizeof *m + len);
	if (!m)
		return NULL;
	memset(m, 0, sizeof *m);
	if (len) {
		m->data = (uint8_t *)(m + 1);
		memcpy(m->data, data, len);
	}
	m->kind = (uint8_t)kind;
	m->priority = (uint8_t)prio;
	m->len = len;
	return m;
}

void rtm_msg_free(rtm_msg *m)
{
	if (!m)
		return;
	th_free(m);
}

void rtm_init(rtm_mailbox *mb, uint32_t capacity)
{
	/* The lock (a th_lock: senders and the actor's turn hold it for a
	 * few instructions each) is free zeroed. */
	memset(mb, 0, sizeof *mb);
	mb->capacity = capacity ? capacity : 1;
}

static void free_list(rtm_msg *m)
{
	while (m) {
		rtm_msg *next = m->next;
		rtm_msg_free(m);
		m = next;
	}
}

void rtm_release(rtm_mailbox *mb)
{
	for (int p = 0; p < RTM_NPRIO; p++)
		free_list(mb->head[p]);
	free_list(mb->inflight_head);
	memset(mb, 0, sizeof *mb);
}

static void count(rtm_mailbox *mb, const rtm_msg *m, int delta)
{
	if (m->priority == RTM_SYSTEM)
		mb->queued_system += (uint32_t)delta;
	else
		mb->queued += (uint32_t)delta;
}

int rtm_push(rtm_mailbox *mb, rtm_msg *m)
{
	int p = m->priority < RTM_NPRIO ? m->priority : RTM_NORMAL;
	m->priority = (uint8_t)p;
	m->next = NULL;
	th_lock_take(&mb->lock);
	if (mb->closed) {
		th_lock_give(&mb->lock);
		return TH_ESTATE;
	}
	if (p != RTM_SYSTEM && mb->queued + mb->reserved >= mb->capacity) {
		th_lock_give(&mb->lock);
		return TH_EBUSY;
	}
	if (mb->tail[p])
		mb->tail[p]->next = m;
	else
		mb->head[p] = m;
	mb->tail[p] = m;
	count(mb, m, 1);
	th_lock_give(&mb->lock);
	return 0;
}

static int reserve(rtm_mailbox *mb, bool past)
{
	int rc = 0;
	th_lock_take(&mb->lock);
	if (mb->closed)
		rc = TH_ESTATE;
	else if (!past && mb->queued + mb->reserved >= mb->capacity)
		rc = TH_EBUSY;
	else
		mb->reserved++;
	th_lock_give(&mb->lock);
	return rc;
}

int rtm_reserve(rtm_mailbox *mb)
{
	return reserve(mb, false);
}

int rtm_reserve_past(rtm_mailbox *mb)
{
	return reserve(mb, true);
}

static rtm_waiter *release_waiters_locked(rtm_mailbox *mb, bool all);
static void call_waiters(rtm_waiter *w);

void rtm_unreserve(rtm_mailbox *mb)
{
	rtm_waiter *ready;
	th_lock_take(&mb->lock);
	mb->reserved--;
	ready = release_waiters_locked(mb, false);
	th_lock_give(&mb->lock);
	call_waiters(ready);
}

int rtm_push_reserved(rtm_mailbox *mb, rtm_msg *m)
{
	int p = m->priority == RTM_HIGH ? RTM_HIGH : RTM_NORMAL;
	m->priority = (uint8_t)p;
	m->next = NULL;
	th_lock_take(&mb->lock);
	mb->reserved--;
	if (mb->closed) {
		th_lock_give(&mb->lock);
		return TH_ESTATE;
	}
	if (mb->tail[p])
		mb->tail[p]->next = m;
	else
		mb->head[p] = m;
	mb->tail[p] = m;
	count(mb, m, 1);
	th_lock_give(&mb->lock);
	return 0;
}

static void push_front_locked(rtm_mailbox *mb, rtm_msg *m)
{
	int p = m->priority < RTM_NPRIO ? m->priority : RTM_NORMAL;
	m->next = mb->head[p];
	mb->head[p] = m;
	if (!mb->tail[p])
		mb->tail[p] = m;
	count(mb, m, 1);
}

void rtm_push_front(rtm_mailbox *mb, rtm_msg *m)
{
	th_lock_take(&mb->lock);
	push_front_locked(mb, m);
	th_lock_give(&mb->lock);
}

/* Detach the waiters that the current room lets through; the caller calls
 * them after unlocking. Each freed slot lets one waiter go, once an eighth
 * of the capacity is free (hysteresis: a sender waiting on a busy actor is
 * not woken, and switched to, for every single message taken). */
static rtm_waiter *release_waiters_locked(rtm_mailbox *mb, bool all)
{
	rtm_waiter *ready = NULL, **tail = &ready;
	uint32_t used = mb->queued + mb->reserved;
	uint32_t room = used < mb->capacity ? mb->capacity - used : 0;
	uint32_t low = mb->capacity >= 8 ? mb->capacity / 8 : 1;
	if (!all && room < low)
		return NULL;
	while (mb->waiters && (all || room > 0)) {
		rtm_waiter *w = mb->waiters;
		mb->waiters = w->next;
		w->next = NULL;
		*tail = w;
		tail = &w->next;
		if (room)
			room--;
	}
	if (!mb->waiters)
		mb->waiters_tail = NULL;
	return ready;
}

static void call_waiters(rtm_waiter *w)
{
	while (w) {
		rtm_waiter *next = w->next;
		w->ready(w);
		w = next;
	}
}

uint32_t rtm_take(rtm_mailbox *mb, rtm_msg **out, uint32_t max)
{
	uint32_t n = 0;
	rtm_waiter *ready;

	th_lock_take(&mb->lock);
	for (int p = 0; p < RTM_NPRIO && n < max; p++) {
		while (mb->head[p] && n < max) {
			rtm_msg *m = mb->head[p];
			mb->head[p] = m->next;
			if (!mb->head[p])
				mb->tail[p] = NULL;
			count(mb, m, -1);
			m->next = NULL;
			if (mb->inflight_tail)
				mb->inflight_tail->next = m;
			else
				mb->inflight_head = m;
			mb->inflight_tail = m;
			mb->inflight++;
			out[n++] = m;
		}
	}
	ready = n ? release_waiters_locked(mb, false) : NULL;
	th_lock_give(&mb->lock);
	call_waiters(ready);
	return n;
}

static void ack_locked(rtm_mailbox *mb, rtm_msg *m)
{
	rtm_msg **pp;
	for (pp = &mb->inflight_head; *pp; pp = &(*pp)->next) {
		if (*pp != m)
			continue;
		*pp = m->next;
		if (mb->inflight_tail == m) {
			/* Find the new tail: the list is short (one turn). */
			rtm_msg *t = mb->inflight_head;
			while (t && t->next)
				t = t->next;
			mb->inflight_tail = t;
		}
		mb->inflight--;
		break;
	}
}

void rtm_ack(rtm_mailbox *mb, rtm_msg *m)
{
	th_lock_take(&mb->lock);
	ack_locked(mb, m);
	th_lock_give(&mb->lock);
	rtm_msg_free(m);
}

void rtm_ack_many(rtm_mailbox *mb, rtm_msg *const *ms, uint32_t n)
{
	th_lock_take(&mb->lock);
	for (uint32_t i = 0; i < n; i++)
		ack_locked(mb, ms[i]);
	th_lock_give(&mb->lock);
	for (uint32_t i = 0; i < n; i++)
		rtm_msg_free(ms[i]);
}

void rtm_requeue_inflight(rtm_mailbox *mb)
{
	rtm_msg *list, *rev = NULL;
	th_lock_take(&mb->lock);
	list = mb->inflight_head;
	mb->inflight_head = mb->inflight_tail = NULL;
	mb->inflight = 0;
	/* Reverse, then push each to the front: original order is kept. */
	while (list) {
		rtm_msg *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		rtm_msg *next = rev->next;
		push_front_locked(mb, rev);
		rev = next;
	}
	th_lock_give(&mb->lock);
}

rtm_msg *rtm_drain(rtm_mailbox *mb)
{
	rtm_msg *all = NULL, **tail = &all;
	rtm_waiter *ready;

	th_lock_take(&mb->lock);
	*tail = mb->inflight_head;
	while (*tail)
		tail = &(*tail)->next;
	mb->inflight_head = mb->inflight_tail = NULL;
	mb->inflight = 0;
	for (int p = 0; p < RTM_NPRIO; p++) {
		*tail = mb->head[p];
		while (*tail)
			tail = &(*tail)->next;
		mb->head[p] = mb->tail[p] = NULL;
	}
	mb->queued = mb->queued_system = 0;
	ready = release_waiters_locked(mb, false);
	th_lock_give(&mb->lock);
	call_waiters(ready);
	return all;
}

bool rtm_wait_for_room(rtm_mailbox *mb, rtm_waiter *w)
{
	bool registered = false;
	th_lock_take(&mb->lock);
	if (!mb->closed && mb->queued + mb->reserved >= mb->capacity) {
		w->next = NULL;
		if (mb->waiters_tail)
			mb->waiters_tail->next = w;
		else
			mb->waiters = w;
		mb->waiters_tail = w;
		registered = true;
	}
	th_lock_give(&mb->lock);
	return registered;
}

void rtm_cancel_wait(rtm_mailbox *mb, rtm_waiter *w)
{
	rtm_waiter **pp, *prev = NULL;
	th_lock_take(&mb->lock);
	for (pp = &mb->waiters; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != w)
			continue;
		*pp = w->next;
		if (mb->waiters_tail == w)
			mb->waiters_tail = prev;
		w->next = NULL;
		break;
	}
	th_lock_give(&mb->lock);
}

void rtm_close(rtm_mailbox *mb)
{
	rtm_waiter *ready;
	th_lock_take(&mb->lock);
	mb->closed = true;
	ready = release_waiters_locked(mb, true);
	th_lock_give(&mb->lock);
	call_waiters(ready);
}

void rtm_reopen(rtm_mailbox *mb)
{
	th_lock_take(&mb->lock);
	mb->closed = false;
	th_lock_give(&mb->lock);
}

uint32_t rtm_pending(rtm_mailbox *mb)
{
	uint32_t n;
	th_lock_take(&mb->lock);
	n = mb->queued + mb->queued_system;
	th_lock_give(&mb->lock);
	return n;
}

bool rtm_maybe_pending(rtm_mailbox *mb)
{
	/* racy by design: relaxed loads of fields written under the lock */
	return __atomic_load_n(&mb->queued, __ATOMIC_RELAXED) +
	       __atomic_load_n(&mb->queued_system, __ATOMIC_RELAXED) > 0;
}
