/*
 * White-box tests of supervision (issue 5): restart types and strategies
 * with crashing children, restart intensity escalating two levels up, the
 * circuit breaker (open, fast failure, half-open probe, close), request
 * deadlocks of two and three actors, limit failures (memory bomb, endless
 * loop, deep recursion) that fail only their actor, mailbox preserve
 * (redelivery) and discard (recorded drops), state preserved or reset,
 * health probes (ping and export probes) and the supervision tree. Each
 * test checks the chain
 * events as well as the behaviour. The actor is
 * tests/runtime/actors/crasher.wat. No timing assertions: waits for
 * events are generous and only guard against a hang.
 */
#include <unistd.h>

#include "base/cbor.h"
#include "rtest.h"
#include "theater/supervise.h"

/* Manifest text of a crasher with extra TOML appended. */
static char *manifest(const char *name, const char *extra)
{
	static char buf[8][4096];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"crasher.wasm\"\n"
		 "[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n"
		 "[[handler]]\ntype = \"timing\"\n%s",
		 name, extra ? extra : "");
	return b;
}

static thr_runtime *setup(void)
{
	rtest_home();
	rtest_wat("crasher");
	return rtest_runtime(2);
}

static void spawn_ok(thr_runtime *rt, const char *text, char id[THR_ID_LEN + 1])
{
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	th_err err = { 0 };
	if (thr_spawn(rt, &so, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
	REQUIRE(err.code == 0);
}

/* A child of parent (white-box: what supervisor.spawn does). */
static rta_actor *child_of(thr_runtime *rt, const char *parent, const char *text)
{
	rtf_spec *spec;
	rta_actor *c = NULL, *p = rtg_find(rt->reg, parent);
	th_err err = { 0 };
	REQUIRE(p != NULL);
	REQUIRE(rtc_spec(rt, NULL, text, rtest_dir, &spec, &err) == 0);
	REQUIRE(rta_spawn(rt, spec, p, 0, NULL, 0, false, &c, &err) == 0);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	REQUIRE(rta_life_get(c) == RTA_READY);
	return c;
}

static void wait_life(thr_runtime *rt, const char *id, int life)
{
	rta_actor *a = rtg_find(rt->reg, id);
	REQUIRE(a != NULL);
	for (int i = 0; i < 24000 && rta_life_get(a) != life; i++)
		usleep(5000);
	REQUIRE(rta_life_get(a) == life);
}

static uint32_t restarts_of(thr_runtime *rt, const char *id)
{
	thr_sup_info si;
	REQUIRE(thr_sup_info_get(rt, id, &si, NULL) == 0);
	return si.restarts;
}

/* The detail strings of the runtime chain's events of type about id. */
/* Events of type in chain whose data holds the text has. */
static int count_with(thr_runtime *rt, const char *chain, const char *type,
		      const char *has)
{
	thx_chain *c;
	int k = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), chain, NULL, false, &c,
			       NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n; i++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		if (!strcmp(ev.type, type) && rtest_has(ev.data, ev.len, has))
			k++;
		thx_event_release(&ev);
	}
	return k;
}

static int runtime_count(thr_runtime *rt, const char *type, const char *id)
{
	return count_with(rt, THX_RUNTIME_CHAIN, type, id);
}

#define FAST "[supervision]\nbackoff_min_ms = 0\nbackoff_max_ms = 0\nmax_restarts = 100\nwithin_seconds = 60\n"

TEST(permanent_restart_keeps_id_and_committed_state)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	uint64_t count, gen;
	thr_actor_info info;
	spawn_ok(rt, manifest("perm", FAST "restart = \"permanent\"\n"), id);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "o", 0); /* traps in generation 1, redelivered after */
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, id, &count, &gen);
	if (count != 4) fprintf(stderr, "count %llu gen %llu: %s\n", (unsigned long long)count, (unsigned long long)gen, rtest_types(rt, id));
	CHECK(count == 4);  /* the last committed state + the redelivered o */
	CHECK(gen == 2);    /* init ran again on it */
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK(info.status == THR_RUNNING);
	CHECK(restarts_of(rt, id) == 1);
	/* every step, in order, in the actor's chain */
	char *t = rtest_types(rt, id);
	const char *steps[] = { "actor.failed", "supervision.notified",
				"supervision.decision", "supervision.restarting",
				"actor.restarted", "actor.instantiated",
				"actor.created", "supervision.recovered" };
	const char *p = t;
	for (size_t i = 0; i < TH_ARRAY_LEN(steps); i++) {
		p = strstr(p, steps[i]);
		if (!p)
			fprintf(stderr, "  missing %s in order: %s\n", steps[i], t);
		REQUIRE(p != NULL);
	}
	free(t);
	/* and in the runtime chain */
	CHECK(runtime_count(rt, "actor.failed", id) == 1);
	CHECK(runtime_count(rt, "supervision.notified", id) == 1);
	CHECK(runtime_count(rt, "supervision.decision", id) == 1);
	CHECK(runtime_count(rt, "actor.restarted", id) == 1);
	CHECK(runtime_count(rt, "supervision.recovered", id) == 1);
	/* it works again */
	rtest_send(rt, id, "+", 0);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, id, &count, &gen);
	CHECK(count == 5);
	thr_runtime_free(rt);
}

TEST(state_reset_restarts_from_the_initial_state)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	uint64_t count, gen;
	spawn_ok(rt, manifest("reset", FAST "state = \"reset\"\nmailbox = \"discard\"\n"), id);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "e", 0); /* a handler error is a failure too */
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, id, &count, &gen);
	CHECK(count == 0);
	CHECK(gen == 1);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "supervision.restarting", &n);
	REQUIRE(d != NULL);
	CHECK(rtest_has(d, n, "state=reset"));
	d = rtest_event(rt, id, "actor.failed", &n);
	CHECK(rtest_has(d, n, "handler-error"));
	thr_runtime_free(rt);
}

TEST(temporary_is_never_restarted)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	spawn_ok(rt, manifest("temp", FAST "restart = \"temporary\"\n"), id);
	rtest_send(rt, id, "!", 0);
	rtest_wait_events(rt, id, "supervision.decision", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	wait_life(rt, id, RTA_FAILED);
	CHECK(rtest_count(rt, id, "actor.restarted") == 0);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "supervision.decision", &n);
	CHECK(rtest_has(d, n, "none") && rtest_has(d, n, "temporary"));
	CHECK(restarts_of(rt, id) == 0);
	thr_runtime_free(rt);
}

TEST(transient_restarts_after_a_crash_not_after_a_normal_exit)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	spawn_ok(rt, manifest("tr1", FAST "restart = \"transient\"\n"), a);
	spawn_ok(rt, manifest("tr2", FAST "restart = \"transient\"\n"), b);
	rtest_send(rt, a, "x", 0); /* runtime.shutdown: normal exit */
	rtest_send(rt, b, "o", 0);
	rtest_wait_events(rt, a, "supervision.decision", 1);
	rtest_wait_events(rt, b, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	wait_life(rt, a, RTA_STOPPED);
	size_t n;
	uint8_t *d = rtest_event(rt, a, "supervision.decision", &n);
	CHECK(rtest_has(d, n, "transient: normal exit"));
	CHECK(rtest_count(rt, a, "actor.restarted") == 0);
	CHECK(rtest_count(rt, b, "actor.restarted") == 1);
	wait_life(rt, b, RTA_READY);
	thr_runtime_free(rt);
}

TEST(permanent_restarts_after_a_normal_exit)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1];
	spawn_ok(rt, manifest("pexit", FAST), a);
	rtest_send(rt, a, "x", 0);
	rtest_wait_events(rt, a, "supervision.recovered", 1);
	CHECK(rtest_count(rt, a, "actor.stopped") == 1);
	CHECK(rtest_count(rt, a, "actor.restarted") == 1);
	wait_life(rt, a, RTA_READY);
	thr_runtime_free(rt);
}

/* A parent with three children, strategy st; child 1 (the middle one)
 * crashes. */
static void strategy_case(const char *st, int want0, int want2)
{
	thr_runtime *rt = setup();
	char p[THR_ID_LEN + 1], extra[512];
	rta_actor *c[3];
	uint64_t count, gen;
	snprintf(extra, sizeof extra, FAST "strategy = \"%s\"\n", st);
	spawn_ok(rt, manifest("sup", extra), p);
	for (int i = 0; i < 3; i++)
		c[i] = child_of(rt, p, manifest("kid", NULL));
	for (int i = 0; i < 3; i++)
		rtest_send(rt, c[i]->id, "+", 0);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_send(rt, c[1]->id, "o", 0);
	rtest_wait_events(rt, c[1]->id, "supervision.recovered", 1);
	if (want0)
		rtest_wait_events(rt, c[0]->id, "supervision.recovered", 1);
	if (want2)
		rtest_wait_events(rt, c[2]->id, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	CHECK(rtest_count(rt, c[0]->id, "actor.restarted") == want0);
	CHECK(rtest_count(rt, c[1]->id, "actor.restarted") == 1);
	CHECK(rtest_count(rt, c[2]->id, "actor.restarted") == want2);
	/* a sibling restarted with the group was stopped first, by the
	 * supervisor, and kept its state */
	CHECK(rtest_count(rt, c[0]->id, "actor.stopped") == want0);
	CHECK(rtest_count(rt, c[2]->id, "actor.stopped") == want2);
	for (int i = 0; i < 3; i++) {
		rtest_crasher_state(rt, c[i]->id, &count, &gen);
		CHECK(count == (i == 1 ? 2 : 1)); /* o redelivered to child 1 */
		CHECK(gen == (uint64_t)((i == 1 || (i == 0 && want0) ||
					 (i == 2 && want2)) ? 2 : 1));
		CHECK(rta_life_get(c[i]) == RTA_READY);
	}
	size_t n;
	uint8_t *d = rtest_event(rt, c[1]->id, "supervision.decision", &n);
	CHECK(rtest_has(d, n, st));
	/* the supervisor heard of it (handle-child-error is not exported by
	 * the crasher: the notice is recorded as received) */
	CHECK(rtest_count(rt, p, "message.received") >= 2);
	thr_runtime_free(rt);
}

TEST(one_for_one_restarts_only_the_failed_child)
{
	strategy_case("one_for_one", 0, 0);
}

TEST(one_for_all_restarts_every_child)
{
	strategy_case("one_for_all", 1, 1);
}

TEST(rest_for_one_restarts_the_failed_child_and_younger_siblings)
{
	strategy_case("rest_for_one", 0, 1);
}

TEST(intensity_exceeded_escalates_two_levels_up)
{
	thr_runtime *rt = setup();
	char top[THR_ID_LEN + 1];
	rta_actor *mid, *leaf;
	/* top gives up at the first restart it would need; mid allows one */
	spawn_ok(rt, manifest("top", "[supervision]\nmax_restarts = 0\nwithin_seconds = 3600\n"
			      "restart = \"temporary\"\nbackoff_min_ms = 0\n"), top);
	mid = child_of(rt, top, manifest("mid", "[supervision]\nmax_restarts = 1\n"
					 "within_seconds = 3600\nbackoff_min_ms = 0\n"));
	leaf = child_of(rt, mid->id, manifest("leaf", NULL));
	/* "!" is redelivered after the restart (mailbox = "preserve") and
	 * traps again: a second restart within the hour is one too many */
	rtest_send(rt, leaf->id, "!", 0);
	wait_life(rt, top, RTA_FAILED);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	CHECK(rta_life_get(mid) == RTA_FAILED);
	CHECK(rta_life_get(leaf) == RTA_FAILED);
	size_t n;
	uint8_t *d = rtest_event(rt, leaf->id, "supervision.decision", &n);
	CHECK(rtest_has(d, n, "restart"));
	CHECK(rtest_count(rt, leaf->id, "supervision.decision") == 2);
	CHECK(rtest_count(rt, mid->id, "supervision.gave_up") == 1);
	CHECK(rtest_count(rt, top, "supervision.gave_up") == 1);
	d = rtest_event(rt, mid->id, "actor.failed", &n);
	CHECK(rtest_has(d, n, "escalation") && rtest_has(d, n, "restart intensity exceeded"));
	d = rtest_event(rt, top, "actor.failed", &n);
	CHECK(rtest_has(d, n, "escalation"));
	d = rtest_event(rt, top, "supervision.decision", &n);
	CHECK(rtest_has(d, n, "temporary")); /* the root leaves it failed */
	CHECK(runtime_count(rt, "supervision.escalated", mid->id) >= 1);
	CHECK(runtime_count(rt, "supervision.escalated", top) >= 1);
	thr_runtime_free(rt);
}

TEST(circuit_opens_fails_fast_probes_half_open_and_closes)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_sup_info si;
	spawn_ok(rt, manifest("cb", FAST "circuit_failures = 2\ncircuit_reset_ms = 100\n"
			      "mailbox = \"discard\"\n"), id);
	rtest_send(rt, id, "!", 0);
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	rtest_send(rt, id, "!", 0);
	rtest_wait_events(rt, id, "circuit.opened", 1);
	/* open: a message fails fast with a clear error (unless the reset
	 * timeout passed already: then it is the probe) */
	int rc = thr_send(rt, id, "+", 1, 0, &err);
	if (rc) {
		CHECK(rc == TH_ESTATE);
		/* "circuit open ...", or half-open while it restarts */
		CHECK(strstr(err.msg, "circuit") != NULL);
		CHECK(rtest_count(rt, id, "circuit.rejected") >= 1);
		rtest_wait_events(rt, id, "circuit.half_open", 1);
		rtest_wait_events(rt, id, "supervision.recovered", 2);
		rtest_send(rt, id, "+", 0); /* the probe */
	}
	rtest_wait_events(rt, id, "circuit.closed", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	REQUIRE(thr_sup_info_get(rt, id, &si, NULL) == 0);
	CHECK(si.circuit == THR_CIRCUIT_CLOSED);
	CHECK(si.consecutive_failures == 0);
	CHECK(rtest_count(rt, id, "circuit.probe") == 1);
	rtest_send(rt, id, "+", 0);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	CHECK(runtime_count(rt, "circuit.opened", id) == 1);
	CHECK(runtime_count(rt, "circuit.closed", id) == 1);
	thr_runtime_free(rt);
}

TEST(circuit_reopens_when_the_probe_fails)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	spawn_ok(rt, manifest("cb2", FAST "circuit_failures = 1\ncircuit_reset_ms = 50\n"
			      "mailbox = \"discard\"\n"), id);
	rtest_send(rt, id, "!", 0);
	rtest_wait_events(rt, id, "circuit.half_open", 1);
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	rtest_send(rt, id, "!", 0); /* the probe fails */
	rtest_wait_events(rt, id, "circuit.opened", 2);
	CHECK(rtest_count(rt, id, "circuit.closed") == 0);
	rtest_wait_events(rt, id, "circuit.half_open", 2);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0); /* the probe's restart is done */
	thr_runtime_free(rt);
}

/* "r" + id + rest */
static size_t req_msg(char *buf, size_t cap, const char *id, const char *rest)
{
	int k = snprintf(buf, cap, "r%s%s", id, rest);
	REQUIRE(k > 0 && (size_t)k < cap);
	return (size_t)k;
}

TEST(two_actor_request_deadlock_is_detected_and_broken)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], inner[128], msg[256];
	uint8_t *reply;
	size_t len;
	th_err err = { 0 };
	spawn_ok(rt, manifest("dla", NULL), a);
	spawn_ok(rt, manifest("dlb", NULL), b);
	/* a asks b, whose handler asks a, which is waiting for b */
	req_msg(inner, sizeof inner, a, "?");
	size_t n = req_msg(msg, sizeof msg, b, inner);
	REQUIRE(thr_request(rt, a, msg, n, 0, &reply, &len, &err) == 0);
	CHECK(rtest_has(reply, len, "deadlock"));
	thr_free(reply);
	CHECK(rtest_count(rt, b, "deadlock.detected") == 1);
	CHECK(runtime_count(rt, "deadlock.detected", b) == 1);
	size_t k;
	uint8_t *d = rtest_event(rt, b, "deadlock.detected", &k);
	CHECK(rtest_has(d, k, a) && rtest_has(d, k, b));
	/* both keep working */
	REQUIRE(thr_request(rt, b, "s", 1, 0, &reply, &len, &err) == 0);
	thr_free(reply);
	REQUIRE(thr_request(rt, a, "s", 1, 0, &reply, &len, &err) == 0);
	thr_free(reply);
	thr_runtime_free(rt);
}

TEST(three_actor_request_deadlock_is_detected_and_broken)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	char m3[128], m2[256], m1[384];
	uint8_t *reply;
	size_t len;
	th_err err = { 0 };
	spawn_ok(rt, manifest("dl1", NULL), a);
	spawn_ok(rt, manifest("dl2", NULL), b);
	spawn_ok(rt, manifest("dl3", NULL), c);
	req_msg(m3, sizeof m3, a, "?");   /* c asks a */
	req_msg(m2, sizeof m2, c, m3);    /* b asks c */
	size_t n = req_msg(m1, sizeof m1, b, m2); /* a asks b */
	REQUIRE(thr_request(rt, a, m1, n, 0, &reply, &len, &err) == 0);
	CHECK(rtest_has(reply, len, "deadlock"));
	thr_free(reply);
	CHECK(rtest_count(rt, c, "deadlock.detected") == 1);
	size_t k;
	uint8_t *d = rtest_event(rt, c, "deadlock.detected", &k);
	CHECK(rtest_has(d, k, a) && rtest_has(d, k, b) && rtest_has(d, k, c));
	CHECK(runtime_count(rt, "deadlock.detected", c) == 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	thr_runtime_free(rt);
}

TEST(a_request_chain_without_a_cycle_is_not_a_deadlock)
{
	thr_runtime *rt = setup();
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], m[128];
	uint8_t *reply;
	size_t len;
	th_err err = { 0 };
	spawn_ok(rt, manifest("nd1", NULL), a);
	spawn_ok(rt, manifest("nd2", NULL), b);
	size_t n = req_msg(m, sizeof m, b, "?");
	REQUIRE(thr_request(rt, a, m, n, 0, &reply, &len, &err) == 0);
	CHECK(len == 16); /* b's state */
	thr_free(reply);
	CHECK(rtest_count(rt, a, "deadlock.detected") == 0);
	thr_runtime_free(rt);
}

/* A limit failure of one actor; a neighbour keeps working. */
static void limit_case(const char *limits, const char *msg, const char *kind,
		       const char *text)
{
	thr_runtime *rt = setup();
	char bad[THR_ID_LEN + 1], good[THR_ID_LEN + 1];
	thr_actor_info info;
	uint64_t count, gen;
	spawn_ok(rt, manifest("bad", limits), bad);
	spawn_ok(rt, manifest("good", NULL), good);
	rtest_send(rt, bad, msg, 0);
	rtest_send(rt, good, "+", 0);
	wait_life(rt, bad, RTA_FAILED);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	REQUIRE(thr_actor_info_get(rt, bad, &info, NULL) == 0);
	CHECK(info.status == THR_FAILED);
	if (!strstr(info.reason, text))
		fprintf(stderr, "  reason: %s\n", info.reason);
	CHECK(strstr(info.reason, text) != NULL);
	size_t n;
	uint8_t *d = rtest_event(rt, bad, "actor.failed", &n);
	CHECK(rtest_has(d, n, kind));
	CHECK(runtime_count(rt, "actor.failed", bad) == 1);
	rtest_send(rt, good, "+", 0);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, good, &count, &gen);
	CHECK(count == 2);
	CHECK(rtest_count(rt, good, "actor.failed") == 0);
	thr_runtime_free(rt);
}

TEST(memory_bomb_fails_only_its_actor)
{
	limit_case("[limits]\nmemory_pages = 8\n", "m", "memory-limit",
		   "limits.memory_pages");
}

TEST(endless_loop_fails_only_its_actor)
{
	limit_case("[limits]\nfuel_per_message = 2000000\n", "~", "out-of-fuel",
		   "limits.fuel_per_message");
}

TEST(deep_recursion_fails_only_its_actor)
{
	limit_case(NULL, "R", "stack-exhausted", "recursion too deep");
}

TEST(mailbox_preserve_redelivers_the_unacknowledged_message)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	uint64_t count, gen;
	spawn_ok(rt, manifest("pres", FAST), id);
	rtest_send(rt, id, "o", 0); /* traps in generation 1 only */
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, id, &count, &gen);
	CHECK(gen == 2);
	CHECK(count == 1); /* the same message, handled after the restart */
	/* received once (plus init, twice): redelivery is not a new arrival */
	CHECK(rtest_count(rt, id, "message.received") == 3);
	CHECK(rtest_count(rt, id, "message.dropped") == 0);
	/* handled twice: the failed call and the redelivered one */
	char *t = rtest_types(rt, id);
	const char *f = strstr(t, "actor.failed");
	REQUIRE(f != NULL);
	CHECK(strstr(f, "export.result") != NULL);
	free(t);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "supervision.restarting", &n);
	CHECK(rtest_has(d, n, "mailbox=preserve"));
	thr_runtime_free(rt);
}

TEST(mailbox_discard_records_each_drop)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	uint64_t count, gen;
	spawn_ok(rt, manifest("disc", FAST "mailbox = \"discard\"\n"), id);
	rtest_send(rt, id, "o", 0);
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, id, &count, &gen);
	CHECK(gen == 2);
	CHECK(count == 0); /* the message was dropped, not redelivered */
	size_t n;
	uint8_t *d = rtest_event(rt, id, "message.dropped", &n);
	REQUIRE(d != NULL);
	CHECK(rtest_has(d, n, "actor failed"));
	d = rtest_event(rt, id, "supervision.restarting", &n);
	CHECK(rtest_has(d, n, "mailbox=discard"));
	thr_runtime_free(rt);
}

/* The delays (ms) of the restart decisions in id's chain, in order. */
static int restart_delays(thr_runtime *rt, const char *id, uint64_t *out,
			  int max)
{
	thx_chain *c;
	int k = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), id, NULL, false, &c,
			       NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n && k < max; i++) {
		thx_event ev = { 0 };
		th_cbor_dec d;
		uint64_t cnt;
		const char *f[3];
		size_t len[3];
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		if (!strcmp(ev.type, "supervision.decision")) {
			th_cbor_dec_init(&d, ev.data, ev.len);
			REQUIRE(th_cbor_get_array(&d, &cnt, NULL) == 0);
			for (int j = 0; j < 3 && j < (int)cnt; j++)
				REQUIRE(th_cbor_get_text(&d, &f[j], &len[j], NULL) == 0);
			if (cnt == 4 && len[0] == 7 && !memcmp(f[0], "restart", 7))
				out[k++] = strtoull(f[2], NULL, 10);
		}
		thx_event_release(&ev);
	}
	return k;
}

/* Consecutive failures: min * 2^(k-1), capped at max, minus up to
 * jitter of it. */
static void backoff_run(const char *name, const char *jitter, uint64_t *d)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1], extra[400];
	snprintf(extra, sizeof extra, "[supervision]\nmailbox = \"discard\"\n"
		 "backoff_min_ms = 20\nbackoff_max_ms = 50\nbackoff_jitter = %s\n"
		 "max_restarts = 10\nwithin_seconds = 60\n", jitter);
	spawn_ok(rt, manifest(name, extra), id);
	for (int i = 1; i <= 3; i++) {
		rtest_send(rt, id, "e", 0);
		rtest_wait_events(rt, id, "supervision.recovered", i);
	}
	CHECK(restarts_of(rt, id) == 3);
	CHECK_EQ_INT(restart_delays(rt, id, d, 3), 3);
	CHECK(runtime_count(rt, "supervision.decision", id) >= 3);
	thr_runtime_free(rt);
}

TEST(backoff_doubles_up_to_its_cap_and_restarts_still_happen)
{
	uint64_t d[3] = { 0 };
	backoff_run("bo", "0", d);
	CHECK_EQ_INT(d[0], 20);
	CHECK_EQ_INT(d[1], 40);
	CHECK_EQ_INT(d[2], 50);
}

TEST(backoff_jitter_shortens_each_delay_by_at_most_its_fraction)
{
	uint64_t d[3] = { 0 };
	backoff_run("bj", "0.5", d);
	CHECK(d[0] >= 10 && d[0] <= 20);
	CHECK(d[1] >= 20 && d[1] <= 40);
	CHECK(d[2] >= 25 && d[2] <= 50);
}

TEST(health_probes_fail_an_unresponsive_actor)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	spawn_ok(rt, manifest("hc", "[supervision]\nrestart = \"temporary\"\n"
			      "[supervision.health]\ninterval_ms = 10\ntimeout_ms = 30\n"
			      "max_missed = 2\n"), id);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "z", 0); /* sleeps for ten minutes */
	wait_life(rt, id, RTA_FAILED);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK(strstr(info.reason, "health check") != NULL);
	/* at least two (a slow machine may miss one more before "z") */
	CHECK(rtest_count(rt, id, "health.missed") >= 2);
	CHECK(runtime_count(rt, "health.missed", id) >= 2);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.failed", &n);
	CHECK(rtest_has(d, n, "unresponsive"));
	thr_runtime_free(rt);
}

/* Probes run every 5 ms while the actor works; a miss needs ten minutes
 * without progress, so a slow machine cannot fail it. */
TEST(an_idle_actor_passes_its_health_probes)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	spawn_ok(rt, manifest("hcok", "[supervision]\n[supervision.health]\n"
			      "interval_ms = 5\ntimeout_ms = 600000\nmax_missed = 1\n"), id);
	for (int i = 0; i < 20; i++) {
		rtest_send(rt, id, "+", 0);
		REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
		usleep(5000);
	}
	CHECK(rtest_count(rt, id, "health.missed") == 0);
	CHECK(rta_life_get(rtg_find(rt->reg, id)) == RTA_READY);
	thr_runtime_free(rt);
}

/* ---- export probes (tests/runtime/actors/prober.wat) ------------------- */

static char *prober(const char *name, const char *health)
{
	static char buf[4][2048];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"prober.wasm\"\n"
		 "[[handler]]\ntype = \"message-server\"\n"
		 "[supervision]\nrestart = \"temporary\"\n"
		 "[supervision.health]\nprobe = \"export:check\"\n%s", name, health);
	return b;
}

static uint64_t checks_of(thr_runtime *rt, const char *id)
{
	uint8_t *reply;
	size_t len;
	uint64_t n = 0;
	REQUIRE(thr_request(rt, id, "?", 1, 0, &reply, &len, NULL) == 0);
	REQUIRE(len == 8);
	memcpy(&n, reply, 8);
	thr_free(reply);
	return n;
}

/* Each probe calls the export; answered probes are never missed. */
TEST(export_probes_call_the_health_export)
{
	thr_runtime *rt;
	char id[THR_ID_LEN + 1];
	rtest_home();
	rtest_wat("prober");
	rt = rtest_runtime(2);
	spawn_ok(rt, prober("ok", "interval_ms = 5\ntimeout_ms = 600000\nmax_missed = 1\n"), id);
	for (int i = 0; i < 24000 && checks_of(rt, id) < 3; i++)
		usleep(5000);
	CHECK(checks_of(rt, id) >= 3);
	CHECK(rtest_count(rt, id, "health.missed") == 0);
	CHECK(rta_life_get(rtg_find(rt->reg, id)) == RTA_READY);
	/* each call is in the chain: its result (state not committed) */
	CHECK(count_with(rt, id, "export.result", "theater:simple/health.check") >= 3);
	thr_runtime_free(rt);
}

/* An error result and a trap are misses (the actor goes on after a
 * trapped probe: a second probe runs); max_missed of them fail it. */
static void probe_fails(const char *mode, const char *reason_part)
{
	thr_runtime *rt;
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	size_t n;
	rtest_home();
	rtest_wat("prober");
	rt = rtest_runtime(2);
	spawn_ok(rt, prober("sick", "interval_ms = 5\ntimeout_ms = 600000\nmax_missed = 2\n"), id);
	rtest_send(rt, id, mode, 0);
	wait_life(rt, id, RTA_FAILED);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK(strstr(info.reason, "health check: 2 consecutive probes missed") != NULL);
	CHECK(strstr(info.reason, reason_part) != NULL);
	CHECK(rtest_count(rt, id, "health.missed") == 2);
	CHECK(runtime_count(rt, "health.missed", id) == 2);
	uint8_t *d = rtest_event(rt, id, "health.missed", &n);
	CHECK(d && rtest_has(d, n, reason_part));
	free(d);
	d = rtest_event(rt, id, "actor.failed", &n);
	CHECK(d && rtest_has(d, n, "unresponsive"));
	free(d);
	thr_runtime_free(rt);
}

TEST(an_export_probe_returning_an_error_is_a_miss)
{
	probe_fails("e", "check returned an error: sick");
}

TEST(an_export_probe_that_traps_is_a_miss_and_the_actor_goes_on)
{
	probe_fails("t", "check trapped");
}

/* A probe that never answers is missed after timeout_ms, once per
 * timeout; no second probe is sent meanwhile. */
TEST(an_export_probe_not_answered_in_time_is_a_miss)
{
	thr_runtime *rt;
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	rtest_home();
	rtest_wat("prober");
	rt = rtest_runtime(2);
	spawn_ok(rt, prober("hang", "interval_ms = 5\ntimeout_ms = 20\nmax_missed = 2\n"), id);
	rtest_send(rt, id, "l", 0);
	wait_life(rt, id, RTA_FAILED);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK(strstr(info.reason, "not answered within 20 ms") != NULL);
	CHECK(rtest_count(rt, id, "health.missed") == 2);
	thr_runtime_free(rt);
}

TEST(an_export_probe_on_an_actor_without_the_export_is_a_miss)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	spawn_ok(rt, manifest("noexp", "[supervision]\nrestart = \"temporary\"\n"
			      "[supervision.health]\nprobe = \"export:check\"\n"
			      "interval_ms = 5\ntimeout_ms = 600000\nmax_missed = 1\n"), id);
	wait_life(rt, id, RTA_FAILED);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK(strstr(info.reason, "does not export theater:simple/health#check") != NULL);
	CHECK(rtest_count(rt, id, "message.dropped") >= 1);
	thr_runtime_free(rt);
}

/* ---- mailbox limits (mblimit.c) ---------------------------------------- */

/* A full mailbox is backpressure: senders wait (or get TH_EBUSY) and the
 * actor is not failed while it drains it. */
TEST(a_full_mailbox_that_drains_is_backpressure_not_a_failure)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	uint64_t count, gen;
	spawn_ok(rt, manifest("slow", "[limits]\nmailbox_capacity = 1\n"
			      "mailbox_full_ms = 600000\n"), id);
	for (int i = 0; i < 200; i++)
		rtest_send(rt, id, "+", 0); /* THR_SEND_WAIT: waits for room */
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	rtest_crasher_state(rt, id, &count, &gen);
	CHECK(count == 200);
	CHECK(rta_life_get(rtg_find(rt->reg, id)) == RTA_READY);
	CHECK(rtest_count(rt, id, "actor.failed") == 0);
	thr_runtime_free(rt);
}

/* Full, and nothing finishes (the handler sleeps): after
 * limits.mailbox_full_ms the actor fails with the limit as its reason;
 * its senders were refused meanwhile, and its policy restarts it. */
TEST(a_mailbox_full_for_too_long_fails_its_actor)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	size_t n;
	spawn_ok(rt, manifest("stuck", FAST "restart = \"permanent\"\n"
			      "mailbox = \"discard\"\n"
			      "[limits]\nmailbox_capacity = 2\nmailbox_full_ms = 40\n"), id);
	rtest_send(rt, id, "z", 0); /* taken at once, sleeps ten minutes */
	for (int i = 0; i < 24000 && rtest_count(rt, id, "export.call") < 2; i++)
		usleep(5000);
	rtest_send(rt, id, "+", 0);
	rtest_send(rt, id, "+", 0);
	CHECK(thr_send(rt, id, "+", 1, 0, &err) == TH_EBUSY); /* backpressure */
	rtest_wait_events(rt, id, "supervision.recovered", 1);
	uint8_t *d = rtest_event(rt, id, "actor.failed", &n);
	REQUIRE(d != NULL);
	CHECK(rtest_has(d, n, "mailbox-limit"));
	CHECK(rtest_has(d, n, "mailbox limit exceeded"));
	CHECK(rtest_has(d, n, "limits.mailbox_full_ms"));
	free(d);
	CHECK(runtime_count(rt, "actor.failed", id) >= 1);
	CHECK(rtest_count(rt, id, "message.dropped") >= 2); /* discard, recorded */
	CHECK(restarts_of(rt, id) == 1);
	thr_runtime_free(rt);
}

/* System-lane messages are never refused; more than
 * limits.mailbox_system_max of them queued fails the actor. */
TEST(system_messages_beyond_the_reserve_fail_the_actor)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	rta_actor *a;
	spawn_ok(rt, manifest("flooded", "[supervision]\nrestart = \"temporary\"\n"
			      "[limits]\nmailbox_system_max = 3\n"), id);
	a = rtg_find(rt->reg, id);
	rtest_send(rt, id, "z", 0); /* busy (asleep): notices queue up */
	for (int i = 0; i < 24000 && rtest_count(rt, id, "export.call") < 2; i++)
		usleep(5000);
	for (int i = 0; i < 4; i++) {
		rtm_msg *m = rtm_msg_new(RTM_CONTROL, RTM_SYSTEM, NULL, 0);
		REQUIRE(m != NULL);
		m->flags = RTA_CTL_CHILD_STOP;
		snprintf(m->sender, sizeof m->sender, "some-child");
		CHECK(rta_deliver(a, m, NULL) == 0); /* never refused */
	}
	wait_life(rt, id, RTA_FAILED);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK(strstr(info.reason, "mailbox limit exceeded: 4 system messages "
			"queued (limits.mailbox_system_max = 3)") != NULL);
	CHECK(runtime_count(rt, "actor.failed", id) == 1);
	thr_runtime_free(rt);
}

TEST(tree_shows_status_restarts_and_circuit)
{
	thr_runtime *rt = setup();
	char p[THR_ID_LEN + 1];
	char *text;
	rta_actor *k1, *k2;
	spawn_ok(rt, manifest("boss", FAST "circuit_failures = 5\n"), p);
	k1 = child_of(rt, p, manifest("worker1", NULL));
	k2 = child_of(rt, p, manifest("worker2", "[supervision]\nrestart = \"temporary\"\n"));
	rtest_send(rt, k1->id, "o", 0);
	rtest_send(rt, k2->id, "!", 0);
	rtest_wait_events(rt, k1->id, "supervision.recovered", 1);
	wait_life(rt, k2->id, RTA_FAILED);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	REQUIRE(thr_tree_text(rt, &text, NULL) == 0);
	CHECK(strncmp(text, "root\n", 5) == 0);
	const char *b = strstr(text, "boss  running  restarts=0  circuit=closed");
	const char *w1 = strstr(text, "worker1  running  restarts=1  circuit=closed");
	const char *w2 = strstr(text, "worker2  failed  restarts=0  circuit=closed");
	if (!b || !w1 || !w2)
		fprintf(stderr, "%s", text);
	CHECK(b && w1 && w2 && b < w1 && w1 < w2);
	CHECK(strstr(text, k1->id) != NULL);
	thr_free(text);
	thr_runtime_free(rt);
}

TEST(without_a_policy_a_failed_actor_stays_failed)
{
	thr_runtime *rt = setup();
	char id[THR_ID_LEN + 1];
	thr_sup_info si;
	spawn_ok(rt, manifest("plain", NULL), id);
	rtest_send(rt, id, "!", 0);
	wait_life(rt, id, RTA_FAILED);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	CHECK(rtest_count(rt, id, "supervision.notified") == 0);
	CHECK(rtest_count(rt, id, "actor.restarted") == 0);
	REQUIRE(thr_sup_info_get(rt, id, &si, NULL) == 0);
	CHECK(!si.supervised);
	thr_runtime_free(rt);
}

TEST(supervisor_actor_hears_of_the_failure_and_the_policy_restarts_the_child)
{
	thr_runtime *rt = setup();
	char p[THR_ID_LEN + 1], text[1024];
	rta_actor *kid;
	uint8_t *st;
	size_t n;
	bool has;
	rtest_wat("relay"); /* exports supervisor-handlers: the error becomes its state */
	snprintf(text, sizeof text,
		 "name = \"boss\"\nversion = \"0.1.0\"\ncomponent = \"relay.wasm\"\n"
		 "[[handler]]\ntype = \"runtime\"\n[[handler]]\ntype = \"supervisor\"\n%s", FAST);
	spawn_ok(rt, text, p);
	kid = child_of(rt, p, manifest("kid", NULL));
	rtest_send(rt, kid->id, "o", 0);
	rtest_wait_events(rt, kid->id, "supervision.recovered", 1);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0);
	REQUIRE(thr_get_state(rt, p, &st, &n, &has, NULL) == 0);
	CHECK(has && rtest_has(st, n, "trapped"));
	thr_free(st);
	char *t = rtest_types(rt, p);
	CHECK(strstr(t, "export.result") != NULL);
	free(t);
	size_t k;
	uint8_t *d = rtest_event(rt, kid->id, "supervision.notified", &k);
	CHECK(rtest_has(d, k, p)); /* names its supervisor */
	CHECK(rta_life_get(kid) == RTA_READY);
	CHECK(restarts_of(rt, kid->id) == 1);
	thr_runtime_free(rt);
}

/* A supervisor actor (relay.wat: "K"+id = stop-child, "T"+id =
 * restart-child) overrides the policy's planned restart. */
static void override_case(char op, int want_life, int want_restarted)
{
	thr_runtime *rt = setup();
	char p[THR_ID_LEN + 1], text[1024], msg[64];
	rta_actor *kid;
	uint8_t *st;
	size_t n;
	bool has;
	rtest_wat("relay");
	snprintf(text, sizeof text,
		 "name = \"boss\"\nversion = \"0.1.0\"\ncomponent = \"relay.wasm\"\n"
		 "[[handler]]\ntype = \"runtime\"\n[[handler]]\ntype = \"supervisor\"\n"
		 "[supervision]\nbackoff_min_ms = 3600000\nbackoff_max_ms = 3600000\n"
		 "backoff_jitter = 0\nmailbox = \"discard\"\n");
	spawn_ok(rt, text, p);
	kid = child_of(rt, p, manifest("kid", NULL));
	rtest_send(rt, kid->id, "!", 0);
	rtest_wait_events(rt, kid->id, "supervision.decision", 1); /* restart in an hour */
	/* the supervisor has handled the notice (its state is the reason) */
	for (int i = 0; i < 24000; i++) {
		REQUIRE(thr_get_state(rt, p, &st, &n, &has, NULL) == 0);
		bool seen = has && rtest_has(st, n, "trapped");
		thr_free(st);
		if (seen)
			break;
		usleep(5000);
	}
	snprintf(msg, sizeof msg, "%c%s", op, kid->id);
	rtest_send(rt, p, msg, 0);
	rtest_wait_events(rt, kid->id, "supervision.decision", 2);
	REQUIRE(thr_quiesce(rt, 0, NULL) == 0); /* the hour is not waited for */
	REQUIRE(thr_get_state(rt, p, &st, &n, &has, NULL) == 0);
	CHECK(has && n == 2 && !memcmp(st, "ok", 2));
	thr_free(st);
	wait_life(rt, kid->id, want_life);
	CHECK(rtest_count(rt, kid->id, "actor.restarted") == want_restarted);
	char *t = rtest_types(rt, kid->id);
	const char *last = strstr(strstr(t, "supervision.decision") + 1, "supervision.decision");
	CHECK(last != NULL);
	free(t);
	size_t k;
	uint8_t *d = rtest_event(rt, kid->id, "supervision.decision", &k);
	CHECK(rtest_has(d, k, "restart"));
	CHECK(runtime_count(rt, "supervision.decision", kid->id) == 2);
	thr_runtime_free(rt);
}

TEST(supervisor_stop_child_cancels_the_planned_restart)
{
	override_case('K', RTA_FAILED, 0);
}

TEST(supervisor_restart_child_restarts_before_the_backoff)
{
	override_case('T', RTA_READY, 1);
}

TEST_MAIN()
