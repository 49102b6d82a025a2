/*
 * White-box tests of guarantees that a weaker test could not catch being
 * broken. Each one is built so that the property failing makes it fail:
 *
 * - Blocking work never holds a worker: with ONE worker, an actor waiting
 *   on a request, on backpressure or in a sleep is provably still waiting
 *   (its turn unfinished) while another actor's request is answered. A
 *   runtime that blocked the worker would leave that request unanswered
 *   (it fails after two minutes instead of hanging forever).
 * - The circuit breaker fails fast with a reset far beyond the test, so
 *   the fast-fail checks are unconditional.
 * - Backoff doubling, cap and jitter bounds are read from the delays the
 *   runtime recorded in supervision.decision, not from wall time.
 * - A turn takes at most `batch` messages: the scheduler's run count for
 *   64 queued messages with batch = 8.
 * - handle-child-exit reaches a supervisor actor; mailbox lanes are served
 *   system > high > normal, observed in the order of the actor's calls.
 * - A manifest's [chain] section is applied: retention prunes the actor's
 *   chain, which still verifies end to end; durability is the manifest's.
 *
 * Waits are for events, never for time; every wait gives up after two
 * minutes (only against a hang: on a slow machine nothing else changes).
 */
#include <unistd.h>

#include "base/cbor.h"
#include "rtest.h"
#include "theater/supervise.h"

#define REQ_MS 120000

static char counter_path[400], relay_path[400], crasher_path[400];

/* Manifest text for a test actor with extra TOML appended. */
static char *manifest(const char *name, const char *wasm, const char *extra)
{
	static char buf[8][4096];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"%s\"\n"
		 "[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n%s",
		 name, wasm, extra ? extra : "");
	return b;
}

static thr_runtime *runtime_with(int workers, thx_durability d, uint32_t batch)
{
	thr_options o = { 0 };
	thr_runtime *rt = NULL;
	th_err err = { 0 };
	char home[300];
	rtest_home();
	rtest_wat("counter");
	rtest_wat("relay");
	rtest_wat("crasher");
	snprintf(counter_path, sizeof counter_path, "%s/counter.wasm", rtest_dir);
	snprintf(relay_path, sizeof relay_path, "%s/relay.wasm", rtest_dir);
	snprintf(crasher_path, sizeof crasher_path, "%s/crasher.wasm", rtest_dir);
	snprintf(home, sizeof home, "%s/home", rtest_dir);
	o.home = home;
	o.workers = workers;
	o.durability = d;
	o.batch = batch;
	o.store_no_sync = true;
	if (thr_runtime_new(&o, &rt, &err))
		fprintf(stderr, "thr_runtime_new: %s\n", err.msg);
	REQUIRE(rt != NULL);
	atexit(rtest_cleanup);
	return rt;
}

static thr_actor_info info_of(thr_runtime *rt, const char *id)
{
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	return info;
}

/* The counter's count, asked with a request: answered only if a worker
 * is free to run the counter. */
static uint64_t ask_count(thr_runtime *rt, const char *id)
{
	uint8_t *reply = NULL;
	size_t n = 0;
	uint64_t v = 0;
	th_err err = { 0 };
	int rc = thr_request(rt, id, "?", 1, REQ_MS, &reply, &n, &err);
	if (rc)
		fprintf(stderr, "  request to the counter: %s\n", err.msg);
	REQUIRE(rc == 0);
	REQUIRE(n == 8);
	memcpy(&v, reply, 8);
	thr_free(reply);
	return v;
}

/* ---- blocking work never holds the only worker -------------------------- */

TEST(a_waiting_request_leaves_the_only_worker_to_others)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], c[THR_ID_LEN + 1], t[THR_ID_LEN + 1];
	thr_runtime *rt = runtime_with(1, THX_NONE, 0);
	rtest_spawn(rt, manifest("waiter", relay_path, "[limits]\nrequest_timeout_ms = 600000\n"), a);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), b);
	rtest_spawn(rt, manifest("counter", counter_path, NULL), c);
	rtest_spawn(rt, manifest("impatient", relay_path, "[limits]\nrequest_timeout_ms = 50\n"), t);
	char *before = rtest_state_str(rt, a);
	/* a asks b; b (on the same single worker) must run to see it. */
	rtest_send_cmd(rt, a, 'r', b, "?", 0);
	rtest_wait_request_seen(rt, b);
	rtest_send(rt, c, "+", 0);
	rtest_send(rt, c, "+", 0);
	CHECK_EQ_INT(ask_count(rt, c), 2);
	/* ... all while a is still inside its call, waiting. */
	CHECK_EQ_INT(info_of(rt, a).messages, 1); /* init only */
	char *st = rtest_state_str(rt, a);
	CHECK_EQ_STR(st, before);
	free(st);
	free(before);
	/* b answers: a's call goes on with the reply. */
	rtest_send_cmd(rt, b, 'R', NULL, "pong", 0);
	rtest_quiesce(rt);
	st = rtest_state_str(rt, a);
	CHECK_EQ_STR(st, "pong");
	free(st);
	/* A request nobody answers times out (and the timeout is the
	 * actor's limit, not the 10-minute one). */
	rtest_send_cmd(rt, t, 'r', b, "?", 0);
	rtest_quiesce(rt);
	st = rtest_state_str(rt, t);
	CHECK(strstr(st, "timed out") != NULL);
	free(st);
	thr_runtime_free(rt);
}

TEST(a_sender_held_by_backpressure_leaves_the_only_worker_to_others)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], c[THR_ID_LEN + 1], d[THR_ID_LEN + 1];
	thr_runtime *rt = runtime_with(1, THX_NONE, 0);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), d);
	rtest_spawn(rt, manifest("full", relay_path, "[limits]\nmailbox_capacity = 1\n"), b);
	rtest_spawn(rt, manifest("sender", relay_path, NULL), a);
	rtest_spawn(rt, manifest("counter", counter_path, NULL), c);
	/* b waits on d, so b's one-slot mailbox stays full once filled. */
	rtest_send_cmd(rt, b, 'r', d, "?", 0);
	rtest_wait_request_seen(rt, d);
	rtest_send_cmd(rt, a, 's', b, "lone", 0); /* fills b's mailbox */
	rtest_send_cmd(rt, a, 's', b, "ltwo", 0); /* a must wait for room */
	int i;
	for (i = 0; i < RTEST_WAIT_LIMIT; i++) {
		thr_actor_info ia = info_of(rt, a), ib = info_of(rt, b);
		if (ib.queued == 1 && ia.messages == 2 && ia.queued == 0)
			break; /* a has taken its second command */
		usleep(5000);
	}
	REQUIRE(i < RTEST_WAIT_LIMIT);
	rtest_send(rt, c, "+", 0);
	CHECK_EQ_INT(ask_count(rt, c), 1);
	/* a is still suspended in its send: neither failed nor through. */
	CHECK_EQ_INT(info_of(rt, a).messages, 2);
	CHECK_EQ_INT(info_of(rt, b).queued, 1);
	/* d answers b; b drains; a's send gets its room. */
	rtest_send_cmd(rt, d, 'R', NULL, "pong", 0);
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, a);
	CHECK_EQ_STR(st, "ok");
	free(st);
	CHECK_EQ_INT(info_of(rt, a).messages, 3);
	CHECK_EQ_INT(info_of(rt, b).messages, 4); /* init, request, lone, ltwo */
	CHECK_EQ_INT(rtest_count(rt, b, "host.theater:simple/runtime.log"), 2);
	thr_runtime_free(rt);
}

TEST(a_sleeping_actor_leaves_the_only_worker_to_others)
{
	char s[THR_ID_LEN + 1], c[THR_ID_LEN + 1], r[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = runtime_with(1, THX_NONE, 0);
	rtest_spawn(rt, manifest("sleeper", crasher_path, "[[handler]]\ntype = \"timing\"\n"), s);
	rtest_spawn(rt, manifest("counter", counter_path, NULL), c);
	rtest_send(rt, s, "z", 0); /* timing.sleep(10 minutes) */
	/* The call is under way once its export.call is recorded (just
	 * before the sleep, on the only worker). */
	rtest_wait_events(rt, s, "export.call", 1);
	for (int i = 0; i < 3; i++)
		rtest_send(rt, c, "+", 0);
	CHECK_EQ_INT(ask_count(rt, c), 3);
	/* The sleeper is still asleep: its message unfinished, no sleep
	 * result recorded. */
	CHECK_EQ_INT(info_of(rt, s).messages, 1);
	CHECK_EQ_INT(rtest_count(rt, s, "host.theater:simple/timing.sleep"), 0);
	CHECK_EQ_INT(info_of(rt, s).status, THR_RUNNING);
	/* Stopping abandons the sleep. */
	CHECK_EQ_INT(thr_stop(rt, s, &err), 0);
	CHECK_EQ_INT(info_of(rt, s).status, THR_STOPPED);
	CHECK_EQ_INT(rtest_count(rt, s, "actor.stopped"), 1);
	/* A sleep that ends is recorded as a host call. */
	rtest_spawn(rt, manifest("napper", relay_path, "[[handler]]\ntype = \"timing\"\n"), r);
	rtest_send(rt, r, "z", 0); /* 20 ms */
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "ok");
	free(st);
	CHECK_EQ_INT(rtest_count(rt, r, "host.theater:simple/timing.sleep"), 1);
	thr_runtime_free(rt);
}

/* ---- supervision: circuit breaker and backoff ----------------------------- */

#define FAST "[supervision]\nbackoff_min_ms = 0\nbackoff_max_ms = 0\nmax_restarts = 100\nwithin_seconds = 60\nmailbox = \"discard\"\n"

TEST(an_open_circuit_fails_fast_unconditionally)
{
	char id[THR_ID_LEN + 1], p[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_sup_info si;
	thr_runtime *rt = runtime_with(2, THX_NONE, 0);
	/* The reset is far beyond the test: the circuit stays open. */
	rtest_spawn(rt, manifest("cb", crasher_path,
			      FAST "circuit_failures = 2\ncircuit_reset_ms = 3600000\n"), id);
	rtest_send(rt, id, "!", 0);
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	rtest_send(rt, id, "!", 0);
	rtest_wait_events(rt, id, "circuit.opened", 1);
	for (int i = 1; i <= 3; i++) {
		memset(&err, 0, sizeof err);
		CHECK_EQ_INT(thr_send(rt, id, "+", 1, 0, &err), TH_ESTATE);
		CHECK(strstr(err.msg, "circuit") != NULL);
		CHECK_EQ_INT(rtest_count(rt, id, "circuit.rejected"), i);
	}
	REQUIRE(thr_sup_info_get(rt, id, &si, NULL) == 0);
	CHECK(si.circuit == THR_CIRCUIT_OPEN);
	CHECK_EQ_INT(rtest_count(rt, id, "circuit.half_open"), 0);

	/* With a short reset: half-open, the probe succeeds, closed. */
	rtest_spawn(rt, manifest("cb2", crasher_path,
			      FAST "circuit_failures = 1\ncircuit_reset_ms = 20\n"), p);
	rtest_send(rt, p, "!", 0);
	rtest_wait_events(rt, p, "circuit.half_open", 1);
	rtest_wait_events(rt, p, "supervision.recovered", 1);
	rtest_send(rt, p, "+", 0); /* the probe */
	rtest_wait_events(rt, p, "circuit.closed", 1);
	REQUIRE(thr_sup_info_get(rt, p, &si, NULL) == 0);
	CHECK(si.circuit == THR_CIRCUIT_CLOSED);
	CHECK_EQ_INT(rtest_count(rt, p, "circuit.probe"), 1);
	CHECK_EQ_INT(thr_send(rt, p, "+", 1, 0, &err), 0);
	thr_runtime_free(rt);
}

/* The delays (ms) of the restart decisions recorded in chain id. */
static size_t restart_delays(thr_runtime *rt, const char *id, uint64_t *out, size_t max)
{
	thx_chain *c;
	size_t k = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), id, NULL, false, &c, NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n && k < max; i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		if (!strcmp(ev.type, "supervision.decision")) {
			th_cbor_dec d;
			uint64_t len;
			const char *s;
			size_t sl;
			th_cbor_dec_init(&d, ev.data, ev.len);
			REQUIRE(th_cbor_get_array(&d, &len, NULL) == 0 && len == 4);
			REQUIRE(th_cbor_get_text(&d, &s, &sl, NULL) == 0);
			REQUIRE(sl == 7 && !memcmp(s, "restart", 7));
			REQUIRE(th_cbor_skip(&d, NULL) == 0);
			REQUIRE(th_cbor_get_text(&d, &s, &sl, NULL) == 0);
			char num[32];
			REQUIRE(sl > 0 && sl < sizeof num);
			memcpy(num, s, sl);
			num[sl] = 0;
			out[k++] = strtoull(num, NULL, 10);
		}
		thx_event_release(&ev);
	}
	return k;
}

TEST(backoff_doubles_up_to_the_cap_and_jitter_stays_in_bounds)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	uint64_t d[16];
	thr_runtime *rt = runtime_with(2, THX_NONE, 0);
	rtest_spawn(rt, manifest("doubling", crasher_path,
			      "[supervision]\nmailbox = \"discard\"\nbackoff_min_ms = 5\n"
			      "backoff_max_ms = 40\nbackoff_jitter = 0\ncircuit_failures = 0\n"
			      "max_restarts = 100\nwithin_seconds = 600\n"), a);
	rtest_spawn(rt, manifest("jitter", crasher_path,
			      "[supervision]\nmailbox = \"discard\"\nbackoff_min_ms = 64\n"
			      "backoff_max_ms = 64\nbackoff_jitter = 0.5\ncircuit_failures = 0\n"
			      "max_restarts = 100\nwithin_seconds = 600\n"), b);
	for (int i = 1; i <= 6; i++) {
		rtest_send(rt, a, "e", 0);
		rtest_wait_events(rt, a, "supervision.recovered", i);
	}
	REQUIRE(restart_delays(rt, a, d, 16) == 6);
	static const uint64_t want[6] = { 5, 10, 20, 40, 40, 40 };
	for (int i = 0; i < 6; i++) {
		if (d[i] != want[i])
			fprintf(stderr, "  restart %d: delay %llu ms, wanted %llu\n", i + 1,
				(unsigned long long)d[i], (unsigned long long)want[i]);
		CHECK(d[i] == want[i]);
	}
	for (int i = 1; i <= 8; i++) {
		rtest_send(rt, b, "e", 0);
		rtest_wait_events(rt, b, "supervision.recovered", i);
	}
	REQUIRE(restart_delays(rt, b, d, 16) == 8);
	bool all_same = true;
	for (int i = 0; i < 8; i++) {
		CHECK(d[i] >= 32 && d[i] <= 64); /* 64 x (1 - 0.5 u), u in [0, 1) */
		all_same &= d[i] == d[0];
	}
	CHECK(!all_same); /* randomised (8 equal draws: about 1 in 10^10) */
	CHECK_EQ_INT(rtest_count(rt, a, "circuit.opened"), 0);
	thr_runtime_free(rt);
}

/* ---- turns, lanes, child exit ----------------------------------------------- */

TEST(a_turn_handles_at_most_batch_messages)
{
	char a[THR_ID_LEN + 1], d[THR_ID_LEN + 1];
	rts_stats s0, s1;
	thr_runtime *rt = runtime_with(1, THX_NONE, 8);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), d);
	rtest_spawn(rt, manifest("busy", relay_path, NULL), a);
	/* a waits on d while 64 messages queue up behind the call. */
	rtest_send_cmd(rt, a, 'r', d, "?", 0);
	rtest_wait_request_seen(rt, d);
	for (int i = 0; i < 64; i++)
		rtest_send(rt, a, "lx", 0);
	CHECK_EQ_INT(info_of(rt, a).queued, 64);
	rts_sched_stats(rt->sched, &s0);
	rtest_send_cmd(rt, d, 'R', NULL, "pong", 0);
	rtest_quiesce(rt);
	rts_sched_stats(rt->sched, &s1);
	uint64_t runs = s1.runs - s0.runs;
	CHECK_EQ_INT(info_of(rt, a).messages, 1 + 1 + 64);
	/* 64 messages at most 8 per turn: at least 8 of a's turns. d's
	 * answer is one more; far fewer than one turn per message. */
	if (runs < 8 || runs > 16)
		fprintf(stderr, "  %llu runs for 64 messages, batch 8\n", (unsigned long long)runs);
	CHECK(runs >= 8);
	CHECK(runs <= 16);
	thr_runtime_free(rt);
}

/* The child id a relay spawned ('S' leaves it as the state). */
static void spawn_child(thr_runtime *rt, const char *parent, char child[THR_ID_LEN + 1])
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "S%s", manifest("child", crasher_path, NULL));
	rtest_send(rt, parent, cmd, 0);
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, parent);
	REQUIRE(strlen(st) == THR_ID_LEN);
	memcpy(child, st, THR_ID_LEN + 1);
	free(st);
	CHECK_EQ_STR(info_of(rt, child).parent, parent);
}

TEST(a_supervisor_actor_hears_handle_child_exit)
{
	char p[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	thr_runtime *rt = runtime_with(2, THX_NONE, 0);
	rtest_spawn(rt, manifest("parent", relay_path, "[[handler]]\ntype = \"supervisor\"\n"), p);
	spawn_child(rt, p, c);
	rtest_send(rt, c, "x", 0); /* runtime.shutdown(some("bye")) */
	rtest_quiesce(rt);
	CHECK_EQ_INT(info_of(rt, c).status, THR_STOPPED);
	char *st = rtest_state_str(rt, p);
	CHECK_EQ_STR(st, "exit"); /* the relay's handle-child-exit ran */
	free(st);
	/* The call is recorded in the parent's chain with the child and its
	 * data. */
	thx_chain *ch;
	int found = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), p, NULL, false, &ch, NULL) == 0);
	for (uint64_t i = 0; i < thx_chain_count(ch); i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(ch, i, &ev, NULL) == 0);
		if (!strncmp(ev.type, "export.", 7) &&
		    rtest_has(ev.data, ev.len, "handle-child-exit") &&
		    rtest_has(ev.data, ev.len, c) && rtest_has(ev.data, ev.len, "bye"))
			found++;
		thx_event_release(&ev);
	}
	CHECK(found >= 1);
	thr_runtime_free(rt);
}

/* Position in p's chain of the first export.call/export.result holding
 * the text (-1: none). */
static long call_position(thr_runtime *rt, const char *p, const char *text)
{
	thx_chain *ch;
	long at = -1;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), p, NULL, false, &ch, NULL) == 0);
	for (uint64_t i = 0; i < thx_chain_count(ch) && at < 0; i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(ch, i, &ev, NULL) == 0);
		if ((!strcmp(ev.type, "export.call") || !strcmp(ev.type, "export.result")) &&
		    rtest_has(ev.data, ev.len, text))
			at = (long)i;
		thx_event_release(&ev);
	}
	return at;
}

TEST(system_then_high_then_normal_lanes_in_a_running_actor)
{
	char p[THR_ID_LEN + 1], c[THR_ID_LEN + 1], d[THR_ID_LEN + 1];
	thr_runtime *rt = runtime_with(1, THX_NONE, 0);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), d);
	rtest_spawn(rt, manifest("parent", relay_path, "[[handler]]\ntype = \"supervisor\"\n"), p);
	spawn_child(rt, p, c);
	/* p waits on d; behind its call: a normal message, a high one, and
	 * (system lane) the notice of its child's exit, in that order. */
	rtest_send_cmd(rt, p, 'r', d, "?", 0);
	rtest_wait_request_seen(rt, d);
	rtest_send(rt, p, "lN", 0);
	rtest_send(rt, p, "lH", THR_SEND_HIGH);
	rtest_send(rt, c, "x", 0);
	int i;
	for (i = 0; i < RTEST_WAIT_LIMIT && info_of(rt, p).queued < 3; i++)
		usleep(5000);
	REQUIRE(info_of(rt, p).queued == 3);
	rtest_send_cmd(rt, d, 'R', NULL, "pong", 0);
	rtest_quiesce(rt);
	long ex = call_position(rt, p, "handle-child-exit");
	long hi = call_position(rt, p, "lH");
	long no = call_position(rt, p, "lN");
	if (!(ex >= 0 && ex < hi && hi < no))
		fprintf(stderr, "  positions: exit %ld, high %ld, normal %ld\n", ex, hi, no);
	CHECK(ex >= 0);
	CHECK(ex < hi);
	CHECK(hi < no);
	thr_runtime_free(rt);
}

/* ---- [chain]: durability and retention from the manifest ----------------- */

static bool event_pruned(thx_chain *c, uint64_t seq)
{
	thx_event ev = { 0 };
	REQUIRE(thx_get(c, seq, &ev, NULL) == 0);
	bool p = ev.pruned;
	if (!p)
		REQUIRE(ev.data != NULL || ev.len == 0);
	thx_event_release(&ev);
	return p;
}

TEST(manifest_retention_prunes_the_actor_chain_and_it_still_verifies)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], m[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = runtime_with(2, THX_ALWAYS, 0);
	thx_store *cs = thr_runtime_chains(rt);
	char text[1024];
	snprintf(text, sizeof text, "name = \"kept\"\nversion = \"1\"\ncomponent = \"%s\"\n"
		 "save_chain = true\n[[handler]]\ntype = \"runtime\"\n"
		 "[chain]\nretain_events = 4\n", counter_path);
	rtest_spawn(rt, text, a);
	rtest_spawn(rt, manifest("batched", counter_path,
			      "[chain]\ndurability = \"batch\"\nbatch_ms = 7\n"), b);
	rtest_spawn(rt, manifest("memory", counter_path, "[chain]\ndurability = \"none\"\n"), m);
	for (int i = 0; i < 20; i++)
		rtest_send(rt, a, "+", 0);
	rtest_send(rt, b, "+", 0);
	rtest_quiesce(rt);

	thx_chain *ca, *cb, *cm, *cr;
	thx_chain_opts o;
	REQUIRE(thx_chain_open(cs, a, NULL, false, &ca, NULL) == 0);
	REQUIRE(thx_chain_open(cs, b, NULL, false, &cb, NULL) == 0);
	REQUIRE(thx_chain_open(cs, m, NULL, false, &cm, NULL) == 0);
	REQUIRE(thx_chain_open(cs, THX_RUNTIME_CHAIN, NULL, false, &cr, NULL) == 0);
	thx_chain_opts_get(ca, &o);
	CHECK_EQ_INT(o.durability, THX_ALWAYS); /* save_chain: the runtime's */
	CHECK(o.retention.max_events == 4);
	thx_chain_opts_get(cb, &o);
	CHECK_EQ_INT(o.durability, THX_BATCH);
	CHECK_EQ_INT(o.batch_ms, 7);
	CHECK(o.retention.max_events == 0);
	thx_chain_opts_get(cm, &o);
	CHECK_EQ_INT(o.durability, THX_NONE);

	/* Apply the policies now (the background does it every second). */
	REQUIRE(thx_prune(cs, NULL, &err) == 0);
	uint64_t n = thx_chain_count(ca);
	REQUIRE(n > 24);
	for (uint64_t i = 0; i < n; i++)
		CHECK(event_pruned(ca, i) == (i < n - 4));
	for (uint64_t i = 0; i < thx_chain_count(cb); i++)
		CHECK(!event_pruned(cb, i));
	for (uint64_t i = 0; i < thx_chain_count(cr); i++)
		CHECK(!event_pruned(cr, i));
	REQUIRE(thx_compact(cs, NULL, &err) == 0);

	thx_verify_report r;
	REQUIRE(thx_verify(cs, NULL, NULL, NULL, &r, &err) == 0);
	if (!r.ok)
		fprintf(stderr, "  verify: %s seq %llu: %s\n", r.chain,
			(unsigned long long)r.seq, r.what);
	CHECK(r.ok);
	CHECK(r.events == n + thx_chain_count(cb) + thx_chain_count(cm) +
			  thx_chain_count(cr));

	/* The actor goes on; its chain keeps growing and verifying. */
	rtest_send(rt, a, "+", 0);
	CHECK_EQ_INT(ask_count(rt, a), 21);
	rtest_quiesce(rt);
	REQUIRE(thx_prune(cs, NULL, &err) == 0);
	uint64_t n2 = thx_chain_count(ca);
	CHECK(n2 > n);
	CHECK(event_pruned(ca, n2 - 5));
	CHECK(!event_pruned(ca, n2 - 4));
	REQUIRE(thx_verify(cs, a, NULL, NULL, &r, &err) == 0);
	CHECK(r.ok);
	thr_runtime_free(rt);
}

/* ---- a channel-close is never lost to a full mailbox ---------------------- */

/* b's mailbox (capacity 2) is full while b waits on a request; a closes
 * their channel: a's turn must wait for room (as a send does) and b must
 * hear the close after the queued messages. The close was dropped when
 * the mailbox was full, so b's last state was "ok", not "closed". */
TEST(a_channel_close_into_a_full_mailbox_waits_for_room)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = runtime_with(2, THX_NONE, 0);
	rtest_spawn(rt, manifest("opener", relay_path, NULL), a);
	rtest_spawn(rt, manifest("busy", relay_path, "[limits]\nmailbox_capacity = 2\n"
			      "request_timeout_ms = 600000\n"), b);
	rtest_spawn(rt, manifest("deferrer", relay_path, NULL), c);
	rtest_send_cmd(rt, a, 'o', b, "hi", 0);
	rtest_quiesce(rt);
	char *ch = rtest_state_str(rt, a);
	REQUIRE(ch[0] == 'c');
	free(ch);
	/* b waits on c's deferred answer; its mailbox fills up behind it. */
	rtest_send_cmd(rt, b, 'r', c, "?", 0);
	rtest_wait_request_seen(rt, c);
	int queued = 0;
	while (thr_send(rt, b, "lqueued", 7, 0, &err) == 0)
		queued++;
	CHECK_EQ_INT(queued, 2);
	rtest_send_cmd(rt, a, 'C', NULL, NULL, 0);
	/* a's close cannot complete while b's mailbox is full. (A close that
	 * is dropped completes at once: give it up to two seconds to show.) */
	for (int i = 0; i < 400; i++) {
		char *st = rtest_state_str(rt, a);
		bool done = !strcmp(st, "ok");
		free(st);
		if (done)
			break;
		usleep(5000);
	}
	rtest_send_cmd(rt, c, 'R', NULL, "answer", 0);
	rtest_quiesce(rt);
	char *sa = rtest_state_str(rt, a), *sb = rtest_state_str(rt, b);
	CHECK_EQ_STR(sa, "ok");
	CHECK_EQ_STR(sb, "closed");
	free(sa);
	free(sb);
	/* init, the open, the request command, the 2 queued, the close */
	CHECK_EQ_INT(rtest_count(rt, b, "message.received"), 6);
	thr_runtime_free(rt);
}

TEST_MAIN()
