/* White-box tests of the actor mailbox (src/runtime/mailbox.c). */
#include "base/base.h"
#include "runtime/mailbox.h"
#include "test.h"

static rtm_msg *msg(rtm_priority p, uint64_t id)
{
	rtm_msg *m = rtm_msg_new(RTM_SEND, p, &id, sizeof id);
	REQUIRE(m != NULL);
	m->id = id;
	return m;
}

TEST(priorities_are_served_strictly_then_fifo)
{
	rtm_mailbox mb;
	rtm_msg *out[8];
	rtm_init(&mb, 16);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 1)), 0);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_HIGH, 2)), 0);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 3)), 0);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_SYSTEM, 4)), 0);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_HIGH, 5)), 0);
	CHECK_EQ_INT(rtm_take(&mb, out, 8), 5);
	uint64_t want[] = { 4, 2, 5, 1, 3 };
	for (int i = 0; i < 5; i++) {
		CHECK_EQ_INT(out[i]->id, want[i]);
		rtm_ack(&mb, out[i]);
	}
	CHECK_EQ_INT(mb.inflight, 0);
	rtm_release(&mb);
}

TEST(capacity_refuses_normal_but_not_system)
{
	rtm_mailbox mb;
	rtm_init(&mb, 2);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 1)), 0);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_HIGH, 2)), 0);
	rtm_msg *m = msg(RTM_NORMAL, 3);
	CHECK_EQ_INT(rtm_push(&mb, m), TH_EBUSY);
	rtm_msg_free(m);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_SYSTEM, 4)), 0);
	CHECK_EQ_INT(rtm_pending(&mb), 3);
	rtm_release(&mb);
}

static int ready_calls;
static void on_ready(rtm_waiter *w)
{
	TH_UNUSED(w);
	ready_calls++;
}

TEST(waiters_are_called_in_order_as_room_appears)
{
	rtm_mailbox mb;
	rtm_waiter w1 = { .ready = on_ready }, w2 = { .ready = on_ready };
	rtm_msg *out[1];
	rtm_init(&mb, 1);
	CHECK(!rtm_wait_for_room(&mb, &w1)); /* room: not registered */
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 1)), 0);
	CHECK(rtm_wait_for_room(&mb, &w1));
	CHECK(rtm_wait_for_room(&mb, &w2));
	ready_calls = 0;
	CHECK_EQ_INT(rtm_take(&mb, out, 1), 1); /* one slot: one waiter */
	CHECK_EQ_INT(ready_calls, 1);
	CHECK(mb.waiters == &w2);
	rtm_cancel_wait(&mb, &w2);
	CHECK(mb.waiters == NULL && mb.waiters_tail == NULL);
	rtm_ack(&mb, out[0]);
	rtm_release(&mb);
}

TEST(unacknowledged_messages_are_redelivered_in_order)
{
	rtm_mailbox mb;
	rtm_msg *out[4];
	rtm_init(&mb, 8);
	for (uint64_t i = 1; i <= 4; i++)
		CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, i)), 0);
	CHECK_EQ_INT(rtm_take(&mb, out, 3), 3);
	rtm_ack(&mb, out[0]); /* 1 handled; 2 and 3 were in flight at a crash */
	rtm_requeue_inflight(&mb);
	CHECK_EQ_INT(mb.inflight, 0);
	CHECK_EQ_INT(rtm_take(&mb, out, 4), 3);
	CHECK_EQ_INT(out[0]->id, 2);
	CHECK_EQ_INT(out[1]->id, 3);
	CHECK_EQ_INT(out[2]->id, 4);
	for (int i = 0; i < 3; i++)
		rtm_ack(&mb, out[i]);
	rtm_release(&mb);
}

TEST(ack_out_of_order_keeps_the_tail_right)
{
	rtm_mailbox mb;
	rtm_msg *out[3];
	rtm_init(&mb, 8);
	for (uint64_t i = 1; i <= 3; i++)
		CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, i)), 0);
	CHECK_EQ_INT(rtm_take(&mb, out, 3), 3);
	rtm_ack(&mb, out[2]);
	CHECK(mb.inflight_tail == out[1]);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 9)), 0);
	rtm_msg *more[1];
	CHECK_EQ_INT(rtm_take(&mb, more, 1), 1);
	CHECK(mb.inflight_tail == more[0]);
	rtm_requeue_inflight(&mb);
	CHECK_EQ_INT(rtm_pending(&mb), 3);
	rtm_release(&mb);
}

TEST(ack_many_forgets_exactly_those_messages)
{
	/* A turn acknowledges the messages whose results one batch recorded;
	 * the others stay in flight (and are redelivered). */
	rtm_mailbox mb;
	rtm_msg *out[4], *back[4];
	rtm_init(&mb, 8);
	for (uint64_t i = 1; i <= 4; i++)
		CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, i)), 0);
	CHECK_EQ_INT(rtm_take(&mb, out, 4), 4);
	rtm_msg *done[3] = { out[0], out[1], out[3] };
	rtm_ack_many(&mb, done, 3);
	CHECK_EQ_INT(mb.inflight, 1);
	CHECK(mb.inflight_head == out[2] && mb.inflight_tail == out[2]);
	rtm_requeue_inflight(&mb);
	CHECK_EQ_INT(rtm_take(&mb, back, 4), 1);
	CHECK_EQ_INT(back[0]->id, 3);
	rtm_ack_many(&mb, back, 1);
	CHECK_EQ_INT(mb.inflight, 0);
	CHECK(mb.inflight_head == NULL && mb.inflight_tail == NULL);
	rtm_release(&mb);
}

TEST(drain_returns_everything_and_close_refuses)
{
	rtm_mailbox mb;
	rtm_msg *out[1];
	rtm_init(&mb, 8);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 1)), 0);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_SYSTEM, 2)), 0);
	CHECK_EQ_INT(rtm_take(&mb, out, 1), 1);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_HIGH, 3)), 0);
	rtm_msg *all = rtm_drain(&mb);
	int n = 0;
	while (all) {
		rtm_msg *next = all->next;
		rtm_msg_free(all);
		all = next;
		n++;
	}
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(rtm_pending(&mb), 0);
	rtm_close(&mb);
	rtm_msg *m = msg(RTM_SYSTEM, 4);
	CHECK_EQ_INT(rtm_push(&mb, m), TH_ESTATE);
	rtm_msg_free(m);
	rtm_reopen(&mb);
	CHECK_EQ_INT(rtm_push(&mb, msg(RTM_NORMAL, 5)), 0);
	rtm_release(&mb);
}

TEST(message_allocation_failure_returns_null)
{
	th_alloc_fail_after(0);
	CHECK(rtm_msg_new(RTM_SEND, RTM_NORMAL, "abc", 3) == NULL);
	th_alloc_fail_after(-1);
}

TEST(a_message_is_one_allocation)
{
	/* The data lives in the message's own allocation (one malloc and one
	 * free per message on the hot path). */
	th_alloc_fail_after(1);
	rtm_msg *m = rtm_msg_new(RTM_SEND, RTM_NORMAL, "abc", 3);
	th_alloc_fail_after(-1);
	REQUIRE(m != NULL);
	CHECK_EQ_INT(m->len, 3);
	CHECK(memcmp(m->data, "abc", 3) == 0);
	rtm_msg_free(m);
}

TEST_MAIN()
