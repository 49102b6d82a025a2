/*
 * Delivery into a full mailbox across a restart, and the message of an
 * accepted channel open (issue 4, messaging).
 *
 * - A sender waiting for room in a full mailbox reaches the target after a
 *   restart: restart-child by its supervisor actor, thr_restart from
 *   outside (an external THR_SEND_WAIT sender), and a policy restart with
 *   mailbox = "discard" (a one_for_all sibling's crash). The restart kept
 *   the same id (and the same actor struct); the waiting send used to fail
 *   with "actor X has stopped" because the stop before the restart closed
 *   the mailbox. A target stopped for good still fails the waiting sender.
 * - The message of an accepted open (channel-accept {true, some(msg)}) is
 *   delivered to the opener even when the opener's mailbox is full; it was
 *   dropped. So is the channel-close a party that has ended sends.
 *
 * The target is held full deterministically: a crasher with mailbox
 * capacity 1 sleeps (10 minutes) in its handler and one more message is
 * queued; the sender's wait is observed on the mailbox's waiter list
 * (white-box) before the restart is made. Waits are for events, never for
 * time; each gives up after two minutes (only against a hang).
 */
#include <pthread.h>
#include <unistd.h>

#include "rtest.h"


static char relay_path[400], crasher_path[400], greeter_path[400];

static thr_runtime *setup(void)
{
	rtest_home();
	rtest_wat("relay");
	rtest_wat("crasher");
	rtest_wat("greeter");
	snprintf(relay_path, sizeof relay_path, "%s/relay.wasm", rtest_dir);
	snprintf(crasher_path, sizeof crasher_path, "%s/crasher.wasm", rtest_dir);
	snprintf(greeter_path, sizeof greeter_path, "%s/greeter.wasm", rtest_dir);
	return rtest_runtime(2);
}

/* Manifest text: the actor at wasm with the runtime, message-server and
 * timing handlers, then extra. */
static char *manifest(const char *name, const char *wasm, const char *extra)
{
	static char buf[8][4096];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"%s\"\n"
		 "[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n"
		 "[[handler]]\ntype = \"timing\"\n%s",
		 name, wasm, extra ? extra : "");
	return b;
}

#define CAP1 "[limits]\nmailbox_capacity = 1\n"

/* Poll t's mailbox (under its lock) until cond holds. */
#define WAIT_MB(t, cond, what)                                               \
	do {                                                                 \
		bool ok_ = false;                                            \
		for (int i_ = 0; i_ < RTEST_WAIT_LIMIT && !ok_; i_++) {            \
			th_lock_take(&(t)->mb.lock);                         \
			ok_ = (cond);                                        \
			th_lock_give(&(t)->mb.lock);                         \
			if (!ok_)                                            \
				usleep(5000);                                \
		}                                                            \
		if (!ok_)                                                    \
			fprintf(stderr, "  never: %s\n", what);              \
		REQUIRE(ok_);                                                \
	} while (0)

/* Hold crasher id (mailbox capacity 1) full: it sleeps in its handler of
 * 'z' (the message in flight) and "1" waits in the mailbox. */
static rta_actor *hold_full(thr_runtime *rt, const char *id)
{
	rta_actor *t = rtg_find(rt->reg, id);
	REQUIRE(t != NULL);
	REQUIRE(t->mb.capacity == 1);
	rtest_send(rt, id, "z", 0);
	WAIT_MB(t, t->mb.inflight == 1 && t->mb.queued == 0, "z in flight");
	rtest_send(rt, id, "1", 0);
	WAIT_MB(t, t->mb.queued == 1, "the mailbox full");
	return t;
}

/* A sender (relay s) waits for room in t's mailbox. */
static void wait_for_a_waiter(rta_actor *t)
{
	WAIT_MB(t, t->mb.waiters != NULL, "a sender waiting for room");
}

/* ---- a waiting send reaches the restarted actor ---------------------------- */

/* The supervisor actor restarts its busy child (restart-child) while a
 * sender waits for room: the send reaches the new incarnation. */
TEST(a_waiting_send_reaches_the_child_its_supervisor_restarts)
{
	thr_runtime *rt = setup();
	char p[THR_ID_LEN + 1], c[THR_ID_LEN + 1], s[THR_ID_LEN + 1];
	rtest_spawn(rt, manifest("sup", relay_path, "[[handler]]\ntype = \"supervisor\"\n"), p);
	rtest_spawn(rt, manifest("sender", relay_path, NULL), s);
	rtest_send_cmd(rt, p, 'S', NULL, manifest("child", crasher_path, CAP1), 0);
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, p);
	REQUIRE(strlen(st) == THR_ID_LEN);
	memcpy(c, st, THR_ID_LEN + 1);
	free(st);

	rta_actor *t = hold_full(rt, c);
	rtest_send_cmd(rt, s, 's', c, "hello", 0);
	wait_for_a_waiter(t);
	rtest_send_cmd(rt, p, 'T', NULL, c, 0);
	rtest_quiesce(rt);

	char *ss = rtest_state_str(rt, s);
	CHECK_EQ_STR(ss, "ok"); /* was "actor <c> has stopped" */
	free(ss);
	uint64_t count, gen;
	rtest_crasher_state(rt, c, &count, &gen);
	CHECK(gen == 2);   /* restarted once, from its state */
	CHECK(count == 1); /* "hello", handled by the new incarnation */
	CHECK_EQ_INT(rtest_count(rt, c, "actor.restarted"), 1);
	/* 'z' and "1" were dropped by the stop (restart-child starts afresh) */
	CHECK_EQ_INT(rtest_count(rt, c, "message.dropped"), 2);
	CHECK(rta_life_get(t) == RTA_READY);
	thr_runtime_free(rt);
}

typedef struct ext_send {
	thr_runtime *rt;
	const char *id;
	int rc;
	th_err err;
} ext_send;

static void *ext_sender(void *arg)
{
	ext_send *x = arg;
	x->rc = thr_send(x->rt, x->id, "hello", 5, THR_SEND_WAIT, &x->err);
	return NULL;
}

/* An external sender waiting with THR_SEND_WAIT while thr_restart restarts
 * the actor: thr_send returns 0 and the new incarnation handles it. */
TEST(an_external_waiting_send_reaches_the_actor_thr_restart_restarts)
{
	thr_runtime *rt = setup();
	char c[THR_ID_LEN + 1];
	th_err err = { 0 };
	pthread_t th;
	rtest_spawn(rt, manifest("target", crasher_path, CAP1), c);
	rta_actor *t = hold_full(rt, c);
	ext_send x = { .rt = rt, .id = c };
	REQUIRE(pthread_create(&th, NULL, ext_sender, &x) == 0);
	wait_for_a_waiter(t);
	if (thr_restart(rt, c, &err))
		fprintf(stderr, "  thr_restart: %s\n", err.msg);
	REQUIRE(pthread_join(th, NULL) == 0);
	if (x.rc)
		fprintf(stderr, "  thr_send: %s\n", x.err.msg);
	CHECK_EQ_INT(x.rc, 0);
	rtest_quiesce(rt);
	uint64_t count, gen;
	rtest_crasher_state(rt, c, &count, &gen);
	CHECK(gen == 2);
	CHECK(count == 1);
	thr_runtime_free(rt);
}

/* A supervision policy restart with mailbox = "discard": a sibling's crash
 * restarts the group (one_for_all); what was queued is discarded, the
 * waiting send is not: it reaches the restarted actor. */
TEST(a_waiting_send_reaches_the_actor_a_discard_policy_restarts)
{
	thr_runtime *rt = setup();
	char p[THR_ID_LEN + 1], s[THR_ID_LEN + 1];
	th_err err = { 0 };
	rtest_spawn(rt, manifest("sup", crasher_path,
			      "[supervision]\nbackoff_min_ms = 0\nbackoff_max_ms = 0\n"
			      "max_restarts = 100\nwithin_seconds = 60\n"
			      "strategy = \"one_for_all\"\nmailbox = \"discard\"\n"), p);
	rtest_spawn(rt, manifest("sender", relay_path, NULL), s);
	rta_actor *parent = rtg_find(rt->reg, p), *kid[2];
	REQUIRE(parent != NULL);
	for (int i = 0; i < 2; i++) {
		rtf_spec *spec;
		kid[i] = NULL;
		REQUIRE(rtc_spec(rt, NULL, manifest("kid", crasher_path, CAP1),
				 rtest_dir, &spec, &err) == 0);
		REQUIRE(rta_spawn(rt, spec, parent, 0, NULL, 0, false, &kid[i], &err) == 0);
	}
	rtest_quiesce(rt);
	REQUIRE(rta_life_get(kid[0]) == RTA_READY && rta_life_get(kid[1]) == RTA_READY);

	hold_full(rt, kid[0]->id);
	rtest_send_cmd(rt, s, 's', kid[0]->id, "hello", 0);
	wait_for_a_waiter(kid[0]);
	rtest_send(rt, kid[1]->id, "!", 0); /* traps: the group restarts */
	rtest_wait_events(rt, kid[0]->id, "supervision.recovered", 1);
	rtest_wait_events(rt, kid[1]->id, "supervision.recovered", 1);
	rtest_quiesce(rt);

	char *ss = rtest_state_str(rt, s);
	CHECK_EQ_STR(ss, "ok");
	free(ss);
	uint64_t count, gen;
	rtest_crasher_state(rt, kid[0]->id, &count, &gen);
	CHECK(gen == 2);
	CHECK(count == 1);
	/* 'z' and "1" discarded, each recorded */
	CHECK_EQ_INT(rtest_count(rt, kid[0]->id, "message.dropped"), 2);
	thr_runtime_free(rt);
}

/* An actor stopped for good: the waiting sender gets the error (it neither
 * waits forever nor reaches anything). */
TEST(a_waiting_send_to_an_actor_stopped_for_good_fails)
{
	thr_runtime *rt = setup();
	char c[THR_ID_LEN + 1], s[THR_ID_LEN + 1];
	th_err err = { 0 };
	rtest_spawn(rt, manifest("target", crasher_path, CAP1), c);
	rtest_spawn(rt, manifest("sender", relay_path, NULL), s);
	rta_actor *t = hold_full(rt, c);
	rtest_send_cmd(rt, s, 's', c, "hello", 0);
	wait_for_a_waiter(t);
	REQUIRE(thr_stop(rt, c, &err) == 0);
	rtest_quiesce(rt);
	char *ss = rtest_state_str(rt, s), want[128];
	snprintf(want, sizeof want, "actor %s has stopped", c);
	CHECK_EQ_STR(ss, want);
	free(ss);
	CHECK(rta_life_get(t) == RTA_STOPPED);
	thr_runtime_free(rt);
}

/* ---- the message of an accepted open -------------------------------------- */

/* a opens a channel to the greeter b while b waits on d's deferred answer;
 * a's mailbox (capacity 2) fills up behind a's open. When d answers, b
 * accepts with "welcome": a must get it as a channel message after what
 * was queued. It was dropped (a full mailbox), so a's last state was "ok". */
TEST(an_accepted_open_s_message_reaches_an_opener_with_a_full_mailbox)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], d[THR_ID_LEN + 1];
	th_err err = { 0 };
	rtest_spawn(rt, manifest("opener", relay_path, "[limits]\nmailbox_capacity = 2\n"), a);
	rtest_spawn(rt, manifest("greeter", greeter_path, "[limits]\nrequest_timeout_ms = 600000\n"), b);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), d);
	rtest_send_cmd(rt, b, 'r', d, "?", 0);
	rtest_wait_request_seen(rt, d);
	rtest_send_cmd(rt, a, 'o', b, "hi", 0);
	rtest_wait_events(rt, b, "message.received", 3); /* init, 'r', the open */
	int queued = 0;
	while (thr_send(rt, a, "lqueued", 7, 0, &err) == 0)
		queued++;
	CHECK_EQ_INT(queued, 2);
	rtest_send_cmd(rt, d, 'R', NULL, "answer", 0);
	rtest_quiesce(rt);
	char *sa = rtest_state_str(rt, a), *sb = rtest_state_str(rt, b);
	CHECK_EQ_STR(sa, "welcome");
	CHECK(sb[0] == 'c'); /* b accepted: its state is the channel id */
	free(sa);
	free(sb);
	/* init, the open command, the 2 queued, the accept's message */
	CHECK_EQ_INT(rtest_count(rt, a, "message.received"), 5);
	thr_runtime_free(rt);
}

/* a and b share a channel; a waits on d's deferred answer and its mailbox
 * (capacity 2) is full when b is stopped: a must still hear the channel's
 * close, after what was queued. It was dropped (a full mailbox), so a's
 * last state was "ok", not "closed". */
TEST(the_close_of_an_ended_party_reaches_a_full_mailbox)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], d[THR_ID_LEN + 1];
	th_err err = { 0 };
	rtest_spawn(rt, manifest("party", relay_path, "[limits]\nmailbox_capacity = 2\n"
			      "request_timeout_ms = 600000\n"), a);
	rtest_spawn(rt, manifest("other", relay_path, NULL), b);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), d);
	rtest_send_cmd(rt, b, 'o', a, "hi", 0);
	rtest_quiesce(rt);
	char *ch = rtest_state_str(rt, b);
	REQUIRE(ch[0] == 'c');
	free(ch);
	rtest_send_cmd(rt, a, 'r', d, "?", 0);
	rtest_wait_request_seen(rt, d);
	int queued = 0;
	while (thr_send(rt, a, "lqueued", 7, 0, &err) == 0)
		queued++;
	CHECK_EQ_INT(queued, 2);
	REQUIRE(thr_stop(rt, b, &err) == 0);
	rtest_send_cmd(rt, d, 'R', NULL, "answer", 0);
	rtest_quiesce(rt);
	char *sa = rtest_state_str(rt, a);
	CHECK_EQ_STR(sa, "closed");
	free(sa);
	/* init, the open, the request command, the 2 queued, the close */
	CHECK_EQ_INT(rtest_count(rt, a, "message.received"), 6);
	thr_runtime_free(rt);
}

TEST_MAIN()
