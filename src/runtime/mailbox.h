/*
 * mailbox.h - an actor's mailbox (prefix rtm_).
 *
 * Messages wait in three FIFO lanes, served strictly by priority (system
 * before high before normal). Capacity bounds the number of queued
 * high+normal messages; system messages (stop, restart, child notices) are
 * never refused, so the runtime can always reach an actor.
 *
 * At-least-once delivery: rtm_take moves a message to the in-flight list;
 * it leaves the mailbox only when rtm_ack says its handler's result is
 * recorded. rtm_requeue_inflight puts every unacknowledged message back at
 * the head of its lane in the original order (after an actor restart).
 *
 * Backpressure: rtm_push on a full mailbox fails with TH_EBUSY; a sender
 * that wants to wait registers an rtm_waiter, whose callback is called
 * (outside the lock) when room appears. Waiters are served in FIFO order.
 *
 * Thread safety: every function may be called from any thread; one mutex
 * per mailbox. Ownership: rtm_push takes ownership of the message (even on
 * failure the caller must free it: see rtm_push); rtm_take lends it until
 * rtm_ack, which frees it.
 */
#ifndef TH_RUNTIME_MAILBOX_H
#define TH_RUNTIME_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

typedef enum rtm_priority {
	RTM_SYSTEM = 0,
	RTM_HIGH = 1,
	RTM_NORMAL = 2,
	RTM_NPRIO = 3
} rtm_priority;

typedef enum rtm_kind {
	RTM_SEND = 0,          /* one-way message                  */
	RTM_REQUEST = 1,       /* expects a response               */
	RTM_RESPONSE = 2,      /* answer to a request we made      */
	RTM_CHANNEL_OPEN = 3,
	RTM_CHANNEL_MESSAGE = 4,
	RTM_CHANNEL_CLOSE = 5,
	RTM_CONTROL = 6        /* runtime-internal (stop, restart) */
} rtm_kind;

typedef struct rtm_msg {
	struct rtm_msg *next;
	uint64_t id;           /* unique per runtime; handlers dedupe on it */
	uint64_t ref;          /* request id, channel id ... per kind       */
	uint8_t priority;      /* rtm_priority */
	uint8_t kind;          /* rtm_kind */
	uint16_t flags;
	uint32_t len;
	char sender[40];       /* actor id of the sender, "" if external    */
	uint8_t *data;         /* len bytes, in the message's allocation    */
	void *reply;           /* runtime's reply slot for requests         */
} rtm_msg;

typedef struct rtm_waiter {
	struct rtm_waiter *next;
	void (*ready)(struct rtm_waiter *w); /* called without the lock held */
	void *ctx;
} rtm_waiter;

typedef struct rtm_mailbox {
	th_lock lock;
	rtm_msg *head[RTM_NPRIO], *tail[RTM_NPRIO];
	rtm_msg *inflight_head, *inflight_tail;
	uint32_t queued;       /* high + normal, counted against capacity */
	uint32_t queued_system;
	uint32_t inflight;
	uint32_t reserved;     /* rtm_reserve'd slots, counted as queued  */
	uint32_t capacity;
	rtm_waiter *waiters, *waiters_tail;
	bool closed;
} rtm_mailbox;

/* A message with a copy of len bytes of data; NULL when out of memory. */
rtm_msg *rtm_msg_new(rtm_kind kind, rtm_priority prio, const void *data,
		     uint32_t len);
void rtm_msg_free(rtm_msg *m); /* NULL ok */

void rtm_init(rtm_mailbox *mb, uint32_t capacity);
/* Frees every queued and in-flight message; waiters are dropped uncalled. */
void rtm_release(rtm_mailbox *mb);

/* Queue m. Returns 0, TH_EBUSY when full (high/normal only) or TH_ESTATE
 * when closed; on failure the caller still owns m. */
int rtm_push(rtm_mailbox *mb, rtm_msg *m);
/* Reserve room for one high/normal message, so that the runtime can
 * record a message's arrival before it becomes visible to the actor:
 * 0, TH_EBUSY when full (reservations count as queued), TH_ESTATE when
 * closed. Then exactly one of rtm_push_reserved (which uses the
 * reservation; TH_ESTATE if the mailbox closed meanwhile, the caller then
 * still owns m) or rtm_unreserve. */
int rtm_reserve(rtm_mailbox *mb);
/* rtm_reserve even when full (TH_ESTATE when closed): for a message the
 * actor is itself waiting for (the runtime bounds how many there can be),
 * which a full mailbox must neither refuse nor hold back. */
int rtm_reserve_past(rtm_mailbox *mb);
int rtm_push_reserved(rtm_mailbox *mb, rtm_msg *m);
void rtm_unreserve(rtm_mailbox *mb);
/* Queue m at the head of its lane (redelivery); never refused. */
void rtm_push_front(rtm_mailbox *mb, rtm_msg *m);

/* Take up to max messages in priority order into out[]; they become
 * in-flight. Returns how many. Frees room, so it may call waiters. */
uint32_t rtm_take(rtm_mailbox *mb, rtm_msg **out, uint32_t max);
/* The handler's result for m is recorded: forget and free it. */
void rtm_ack(rtm_mailbox *mb, rtm_msg *m);
/* rtm_ack of n messages under one lock (a turn's batch of results). */
void rtm_ack_many(rtm_mailbox *mb, rtm_msg *const *ms, uint32_t n);
/* Put all in-flight messages back at the front of their lanes, in order. */
void rtm_requeue_inflight(rtm_mailbox *mb);
/* Remove and return every queued and in-flight message as one list (for
 * the `discard` restart policy, which records each drop). */
rtm_msg *rtm_drain(rtm_mailbox *mb);

/* Register w to be told when there is room; returns false (and does not
 * register) if there is room already. */
bool rtm_wait_for_room(rtm_mailbox *mb, rtm_waiter *w);
/* Unregister w if still waiting (e.g. the waiting actor stopped). */
void rtm_cancel_wait(rtm_mailbox *mb, rtm_waiter *w);

/* Refuse further pushes (TH_ESTATE) and release every waiter. */
void rtm_close(rtm_mailbox *mb);
void rtm_reopen(rtm_mailbox *mb);

uint32_t rtm_pending(rtm_mailbox *mb); /* queued, all lanes */
/* A hint, without the lock: whether messages may be queued (for a
 * worker waiting for one; rtm_take decides). */
bool rtm_maybe_pending(rtm_mailbox *mb);

#endif
