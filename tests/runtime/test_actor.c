/*
 * White-box tests of running actors: the seed flows and their chain
 * events, messaging (send, request, deferred replies, timeouts,
 * backpressure, oversize), failures that stay contained (traps in init and
 * handlers, handler errors, fuel), fairness, stop and shutdown, and the
 * handlers with their permission checks and recording. The actors are
 * tests/runtime/actors/{counter,relay}.wat (core-module form).
 */
#include <pthread.h>

#include "rtest.h"

static char counter_path[400], relay_path[400];

/* Manifest text for one of the test actors with extra TOML appended. */
static char *manifest(const char *name, const char *wasm, const char *extra)
{
	static char buf[4][4096];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0],
		 "name = \"%s\"\nversion = \"0.1.0\"\ncomponent = \"%s\"\n"
		 "[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n%s",
		 name, wasm, extra ? extra : "");
	return b;
}

static thr_runtime *setup(int workers)
{
	rtest_home();
	rtest_wat("counter");
	rtest_wat("relay");
	snprintf(counter_path, sizeof counter_path, "%s/counter.wasm", rtest_dir);
	snprintf(relay_path, sizeof relay_path, "%s/relay.wasm", rtest_dir);
	return rtest_runtime(workers);
}

static int spawn(thr_runtime *rt, const char *text, char id[THR_ID_LEN + 1],
		 th_err *err)
{
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	return thr_spawn(rt, &so, id, err);
}

static void spawn_ok(thr_runtime *rt, const char *text, char id[THR_ID_LEN + 1])
{
	th_err err = { 0 };
	if (spawn(rt, text, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
}

static uint64_t count_of(thr_runtime *rt, const char *id)
{
	uint8_t *s;
	size_t n;
	bool has;
	uint64_t v = 0;
	REQUIRE(thr_get_state(rt, id, &s, &n, &has, NULL) == 0);
	if (has && n == 8)
		memcpy(&v, s, 8);
	thr_free(s);
	return v;
}

static void send_str(thr_runtime *rt, const char *id, const char *m)
{
	th_err err = { 0 };
	if (thr_send(rt, id, m, strlen(m), THR_SEND_WAIT, &err))
		fprintf(stderr, "send: %s\n", err.msg);
}

/* A relay command with a target: op, 36-char id, payload. */
static void command(thr_runtime *rt, const char *relay, char op,
		    const char *target, const char *payload)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "%c%s%s", op, target ? target : "",
			 payload ? payload : "");
	REQUIRE(n > 0 && (size_t)n < sizeof buf);
	send_str(rt, relay, buf);
	rtest_quiesce(rt);
}

static thr_status status_of(thr_runtime *rt, const char *id, char *reason)
{
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	if (reason)
		memcpy(reason, info.reason, sizeof info.reason);
	return info.status;
}

/* ---- the seed flows -------------------------------------------------------- */

TEST(creation_flow_records_each_step)
{
	char id[THR_ID_LEN + 1];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_RUNNING);
	char *t = rtest_types(rt, id);
	CHECK_EQ_STR(t, "actor.spawning,component.loaded,actor.instantiated,"
		     "message.received,export.call,host.theater:simple/runtime.log,"
		     "export.result,actor.created");
	free(t);
	CHECK_EQ_INT(count_of(rt, id), 0);
	CHECK_EQ_INT(rtest_count(rt, THX_RUNTIME_CHAIN, "actor.created"), 1);
	/* init's parameter is the actor id. */
	size_t n;
	uint8_t *d = rtest_event(rt, id, "export.call", &n);
	CHECK(rtest_has(d, n, id));
	CHECK(rtest_has(d, n, "theater:simple/actor.init"));
	free(d);
	/* The log line is recorded with its argument. */
	d = rtest_event(rt, id, "host.theater:simple/runtime.log", &n);
	CHECK(rtest_has(d, n, "counter started"));
	free(d);
	thr_runtime_free(rt);
}

TEST(a_waiting_spawn_runs_init_on_the_spawning_thread)
{
	/* No worker turn, so no wake-up of a worker and then of the spawner:
	 * the pool's run count does not move; a NO_WAIT spawn uses the pool. */
	char id[THR_ID_LEN + 1];
	rts_stats before, after;
	thr_runtime *rt = setup(2);
	rts_sched_stats(rt->sched, &before);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	rts_sched_stats(rt->sched, &after);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_RUNNING);
	CHECK_EQ_INT(after.runs, before.runs);
	thr_spawn_opts so = { .manifest_text = manifest("counter", counter_path, NULL),
			      .base_dir = rtest_dir, .flags = THR_SPAWN_NO_WAIT };
	REQUIRE(thr_spawn(rt, &so, id, NULL) == 0);
	rtest_quiesce(rt);
	/* (a worker counts a run after its turn returns) */
	for (int i = 0; i < 5000; i++) {
		rts_sched_stats(rt->sched, &after);
		if (after.runs > before.runs)
			break;
		usleep(1000);
	}
	CHECK(after.runs > before.runs);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_RUNNING);
	thr_runtime_free(rt);
}

TEST(message_flow_records_arrival_call_result)
{
	char id[THR_ID_LEN + 1];
	uint8_t *reply;
	size_t n;
	th_err err = { 0 };
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	/* One at a time: the arrivals recorded by senders interleave with the
	 * actor's own events otherwise (each arrival still precedes its call). */
	for (int i = 0; i < 3; i++) {
		send_str(rt, id, "+");
		rtest_quiesce(rt);
	}
	CHECK_EQ_INT(count_of(rt, id), 3);
	REQUIRE(thr_request(rt, id, "?", 1, 5000, &reply, &n, &err) == 0);
	REQUIRE(n == 8);
	uint64_t v;
	memcpy(&v, reply, 8);
	CHECK_EQ_INT(v, 3);
	thr_free(reply);
	rtest_quiesce(rt);
	char *t = rtest_types(rt, id);
	const char *tail = strstr(t, "actor.created,");
	REQUIRE(tail != NULL);
	/* Handlers without host calls: export.result alone records the call
	 * (with its params) and its result. */
	CHECK_EQ_STR(tail + 14,
		     "message.received,export.result,"
		     "message.received,export.result,"
		     "message.received,export.result,"
		     "message.received,export.result,message.response");
	size_t len;
	uint8_t *d = rtest_event(rt, id, "export.result", &len);
	CHECK(rtest_has(d, len, "theater:simple/actor.init"));
	free(d);
	free(t);
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK_EQ_INT(info.messages, 5); /* init + 3 sends + 1 request */
	CHECK_EQ_INT(info.queued, 0);
	thr_runtime_free(rt);
}

TEST(components_are_loaded_once_and_shared)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("counter", counter_path, NULL), a);
	spawn_ok(rt, manifest("counter", counter_path, NULL), b);
	CHECK(strcmp(a, b) != 0);
	size_t n;
	uint8_t *d = rtest_event(rt, b, "component.loaded", &n);
	/* [hash, size, form, cached=true] ends with CBOR true (0xf5). */
	CHECK(d && n > 0 && d[n - 1] == 0xf5);
	free(d);
	d = rtest_event(rt, a, "component.loaded", &n);
	CHECK(d && n > 0 && d[n - 1] == 0xf4);
	free(d);
	thr_runtime_free(rt);
}

TEST(initial_state_from_the_spawner)
{
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	uint64_t start = 41;
	thr_runtime *rt = setup(1);
	thr_spawn_opts so = { .manifest_text = manifest("counter", counter_path, NULL),
			      .init_state = (const uint8_t *)&start,
			      .init_state_len = 8, .has_init_state = true };
	REQUIRE(thr_spawn(rt, &so, id, &err) == 0);
	send_str(rt, id, "+");
	rtest_quiesce(rt);
	CHECK_EQ_INT(count_of(rt, id), 42);
	/* The initial state is in the creation record (for replay). */
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.spawning", &n);
	bool found = false;
	for (size_t i = 0; d && i + 8 <= n; i++)
		found |= !memcmp(d + i, &start, 8);
	CHECK(found);
	free(d);
	/* thr_restart: same id, new instance, last committed state. */
	REQUIRE(thr_restart(rt, id, &err) == 0);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_RUNNING);
	CHECK_EQ_INT(count_of(rt, id), 42);
	CHECK_EQ_INT(rtest_count(rt, id, "actor.restarted"), 1);
	CHECK_EQ_INT(rtest_count(rt, id, "actor.created"), 2);
	send_str(rt, id, "+");
	rtest_quiesce(rt);
	CHECK_EQ_INT(count_of(rt, id), 43);
	thr_runtime_free(rt);
}

/* ---- failures stay contained ------------------------------------------------ */

TEST(trap_in_handler_fails_only_that_actor)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], why[256];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("counter", counter_path, NULL), a);
	spawn_ok(rt, manifest("counter", counter_path, NULL), b);
	send_str(rt, a, "!");
	send_str(rt, b, "+");
	rtest_quiesce(rt);
	CHECK_EQ_INT(status_of(rt, a, why), THR_FAILED);
	CHECK(strstr(why, "unreachable") != NULL);
	CHECK_EQ_INT(status_of(rt, b, NULL), THR_RUNNING);
	CHECK_EQ_INT(count_of(rt, b), 1);
	char *t = rtest_types(rt, a);
	CHECK(strstr(t, "message.received,export.call,actor.failed") != NULL);
	free(t);
	size_t n;
	uint8_t *d = rtest_event(rt, a, "actor.failed", &n);
	CHECK(rtest_has(d, n, "trap"));
	free(d);
	CHECK_EQ_INT(rtest_count(rt, THX_RUNTIME_CHAIN, "actor.failed"), 1);
	/* The failed actor refuses messages with a clear error. */
	th_err err = { 0 };
	CHECK_EQ_INT(thr_send(rt, a, "+", 1, 0, &err), TH_ESTATE);
	CHECK(strstr(err.msg, "failed") != NULL);
	thr_runtime_free(rt);
}

TEST(trap_in_init_fails_the_spawn)
{
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = setup(1);
	thr_spawn_opts so = { .manifest_text = manifest("counter", counter_path, NULL),
			      .init_state = (const uint8_t *)"!!", .init_state_len = 2,
			      .has_init_state = true };
	CHECK(thr_spawn(rt, &so, id, &err) != 0);
	CHECK(strstr(err.msg, "unreachable") != NULL);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_FAILED);
	char *t = rtest_types(rt, id);
	CHECK(strstr(t, "export.call,actor.failed") != NULL);
	CHECK(strstr(t, "actor.created") == NULL);
	free(t);
	thr_runtime_free(rt);
}

TEST(handler_error_fails_the_actor_with_its_text)
{
	char id[THR_ID_LEN + 1], why[256];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	send_str(rt, id, "e");
	rtest_quiesce(rt);
	CHECK_EQ_INT(status_of(rt, id, why), THR_FAILED);
	CHECK(strstr(why, "bad message") != NULL);
	/* The result was recorded before the failure. */
	char *t = rtest_types(rt, id);
	CHECK(strstr(t, "message.received,export.result,actor.failed") != NULL);
	free(t);
	thr_runtime_free(rt);
}

TEST(fuel_cap_stops_a_runaway_handler)
{
	char id[THR_ID_LEN + 1], why[256];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("counter", counter_path,
			      "[limits]\nfuel_per_message = 1000000\n"), id);
	send_str(rt, id, "~");
	rtest_quiesce(rt);
	CHECK_EQ_INT(status_of(rt, id, why), THR_FAILED);
	CHECK(strstr(why, "fuel") != NULL);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.failed", &n);
	CHECK(rtest_has(d, n, "out-of-fuel"));
	free(d);
	thr_runtime_free(rt);
}

TEST(a_looping_actor_does_not_starve_others)
{
	char loop[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	th_err err = { 0 };
	/* One worker: only yielding (fuel slices) lets b run at all. */
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("looper", counter_path,
			      "[limits]\nfuel_per_message = 1000000000000\n"), loop);
	spawn_ok(rt, manifest("counter", counter_path, NULL), b);
	send_str(rt, loop, "~");
	for (int i = 0; i < 5; i++)
		send_str(rt, b, "+");
	uint8_t *reply;
	size_t n;
	REQUIRE(thr_request(rt, b, "?", 1, 300000, &reply, &n, &err) == 0);
	uint64_t v;
	memcpy(&v, reply, 8);
	CHECK_EQ_INT(v, 5);
	thr_free(reply);
	/* Stopping abandons the running call. */
	CHECK_EQ_INT(thr_stop(rt, loop, &err), 0);
	CHECK_EQ_INT(status_of(rt, loop, NULL), THR_STOPPED);
	char *t = rtest_types(rt, loop);
	CHECK(strstr(t, "actor.stopped,message.dropped") != NULL);
	free(t);
	thr_runtime_free(rt);
}

TEST(oversize_message_is_refused_and_recorded)
{
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("counter", counter_path,
			      "[limits]\nmax_message_bytes = 8\n"), id);
	CHECK_EQ_INT(thr_send(rt, id, "123456789", 9, 0, &err), TH_ELIMIT);
	CHECK(strstr(err.msg, "max_message_bytes") != NULL);
	CHECK_EQ_INT(thr_send(rt, id, "12345678", 8, 0, &err), 0);
	rtest_quiesce(rt);
	CHECK_EQ_INT(rtest_count(rt, id, "message.rejected"), 1);
	CHECK_EQ_INT(count_of(rt, id), 1);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_RUNNING);
	thr_runtime_free(rt);
}

/* ---- stop and shutdown ------------------------------------------------------ */

TEST(stop_records_and_refuses_later_messages)
{
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	CHECK_EQ_INT(thr_stop(rt, id, &err), 0);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_STOPPED);
	CHECK_EQ_INT(thr_send(rt, id, "+", 1, 0, &err), TH_ESTATE);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.stopped", &n);
	CHECK(rtest_has(d, n, "external"));
	free(d);
	CHECK_EQ_INT(rtest_count(rt, THX_RUNTIME_CHAIN, "actor.stopped"), 1);
	thr_runtime_free(rt);
}

TEST(shutdown_from_inside_stops_with_data)
{
	char id[THR_ID_LEN + 1];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	send_str(rt, id, "x");
	CHECK_EQ_INT(thr_wait(rt, id, 10000, NULL), 0);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_STOPPED);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.stopped", &n);
	CHECK(rtest_has(d, n, "shutdown"));
	CHECK(rtest_has(d, n, "bye"));
	free(d);
	d = rtest_event(rt, id, "host.theater:simple/runtime.shutdown", &n);
	CHECK(rtest_has(d, n, "bye"));
	free(d);
	thr_runtime_free(rt);
}

/* ---- messaging between actors ------------------------------------------------ */

TEST(actor_sends_and_requests_to_another)
{
	char r[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	spawn_ok(rt, manifest("counter", counter_path, NULL), c);
	command(rt, r, 's', c, "+");
	command(rt, r, 's', c, "+");
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "ok");
	free(st);
	CHECK_EQ_INT(count_of(rt, c), 2);
	command(rt, r, 'r', c, "?");
	CHECK_EQ_INT(count_of(rt, r), 2); /* the reply became r's state */
	/* The sender's chain has the host calls with their results. */
	CHECK_EQ_INT(rtest_count(rt, r, "host.theater:simple/message-server-host.send"), 2);
	size_t n;
	uint8_t *d = rtest_event(rt, r, "host.theater:simple/message-server-host.request", &n);
	CHECK(rtest_has(d, n, c));
	free(d);
	/* The counter saw who sent it. */
	d = rtest_event(rt, c, "message.received", &n);
	free(d);
	CHECK_EQ_INT(rtest_count(rt, c, "message.response"), 1);
	thr_runtime_free(rt);
}

TEST(send_to_unknown_actor_returns_an_error)
{
	char r[THR_ID_LEN + 1];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	command(rt, r, 's', "00000000-0000-4000-8000-000000000000", "+");
	char *st = rtest_state_str(rt, r);
	CHECK(strstr(st, "no actor") != NULL);
	free(st);
	CHECK_EQ_INT(status_of(rt, r, NULL), THR_RUNNING);
	thr_runtime_free(rt);
}

/* Wait (as long as it takes) until the relay's state is a request id
 * other than `other`: the request has reached its handler. */
static void wait_request_seen(thr_runtime *rt, const char *id, const char *other)
{
	for (;;) {
		char *st = rtest_state_str(rt, id);
		bool seen = st[0] == 'r' && st[1] >= '0' && st[1] <= '9' &&
			    (!other || strcmp(st, other) != 0);
		free(st);
		if (seen)
			return;
		usleep(2000);
	}
}

struct ext_req {
	thr_runtime *rt;
	const char *id;
	int rc;
	char reply[64];
};

static void *do_request(void *arg)
{
	struct ext_req *x = arg;
	uint8_t *reply = NULL;
	size_t n = 0;
	th_err err = { 0 };
	x->rc = thr_request(x->rt, x->id, "q", 1, 300000, &reply, &n, &err);
	if (!x->rc)
		snprintf(x->reply, sizeof x->reply, "%.*s", (int)n, (char *)reply);
	thr_free(reply);
	return NULL;
}

TEST(deferred_reply_with_respond_to_request)
{
	char r[THR_ID_LEN + 1];
	pthread_t th;
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	struct ext_req x = { .rt = rt, .id = r };
	REQUIRE(pthread_create(&th, NULL, do_request, &x) == 0);
	/* Wait until the request is outstanding (its id is the state). */
	wait_request_seen(rt, r, NULL);
	command(rt, r, 'R', NULL, "pong");
	pthread_join(th, NULL);
	CHECK_EQ_INT(x.rc, 0);
	CHECK_EQ_STR(x.reply, "pong");
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "ok");
	free(st);
	/* The request is no longer outstanding: the relay's next request
	 * id (its state, now "ok") names nothing. */
	command(rt, r, 'R', NULL, "again");
	st = rtest_state_str(rt, r);
	CHECK(strstr(st, "request id") != NULL);
	free(st);
	thr_runtime_free(rt);
}

TEST(request_times_out_without_blocking_a_worker)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], c[THR_ID_LEN + 1];
	/* One worker: a waits for b (which never answers) while c works. */
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("relay", relay_path,
			      "[limits]\nrequest_timeout_ms = 300\n"), a);
	spawn_ok(rt, manifest("relay", relay_path, NULL), b);
	spawn_ok(rt, manifest("counter", counter_path, NULL), c);
	char buf[64];
	snprintf(buf, sizeof buf, "r%s?", b);
	send_str(rt, a, buf);
	send_str(rt, c, "+");
	send_str(rt, c, "+");
	rtest_quiesce(rt);
	CHECK_EQ_INT(count_of(rt, c), 2);
	char *st = rtest_state_str(rt, a);
	CHECK(strstr(st, "timed out") != NULL);
	free(st);
	thr_runtime_free(rt);
}

struct ext_send {
	thr_runtime *rt;
	const char *id;
	int rc;
};

static void *do_send_wait(void *arg)
{
	struct ext_send *x = arg;
	th_err err = { 0 };
	x->rc = thr_send(x->rt, x->id, "l", 1, THR_SEND_WAIT, &err);
	return NULL;
}

TEST(external_sender_gets_busy_or_waits)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], buf[64];
	th_err err = { 0 };
	pthread_t th;
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, "[limits]\nmailbox_capacity = 2\n"), a);
	spawn_ok(rt, manifest("relay", relay_path, NULL), b);
	/* a waits (suspended) for b, which defers its answer: a's mailbox
	 * fills, deterministically. */
	snprintf(buf, sizeof buf, "r%s?", b);
	send_str(rt, a, buf);
	wait_request_seen(rt, b, NULL);
	CHECK_EQ_INT(thr_send(rt, a, "l", 1, 0, &err), 0);
	CHECK_EQ_INT(thr_send(rt, a, "l", 1, 0, &err), 0);
	CHECK_EQ_INT(thr_send(rt, a, "l", 1, 0, &err), TH_EBUSY);
	CHECK(strstr(err.msg, "full") != NULL);
	/* A waiting sender gets through once b answers and a goes on. */
	struct ext_send x = { .rt = rt, .id = a };
	REQUIRE(pthread_create(&th, NULL, do_send_wait, &x) == 0);
	command(rt, b, 'R', NULL, "pong");
	pthread_join(th, NULL);
	CHECK_EQ_INT(x.rc, 0);
	rtest_quiesce(rt);
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, a, &info, NULL) == 0);
	CHECK_EQ_INT(info.messages, 1 + 1 + 3); /* init, the request, 3 logs */
	char *st = rtest_state_str(rt, a);
	CHECK_EQ_STR(st, "ok"); /* the last log */
	free(st);
	thr_runtime_free(rt);
}

TEST(sending_actor_is_suspended_by_backpressure)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), a);
	spawn_ok(rt, manifest("relay", relay_path,
			      "[limits]\nmailbox_capacity = 1\n"
			      "[[handler]]\ntype = \"timing\"\n"), b);
	/* b is busy sleeping through several commands; a's sends to it
	 * wait for room instead of failing. */
	char buf[64];
	snprintf(buf, sizeof buf, "s%sz", b);
	for (int i = 0; i < 4; i++)
		send_str(rt, a, buf);
	rtest_quiesce(rt);
	char *st = rtest_state_str(rt, a);
	CHECK_EQ_STR(st, "ok");
	free(st);
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, b, &info, NULL) == 0);
	CHECK_EQ_INT(info.messages, 5);
	thr_runtime_free(rt);
}

/* ---- handlers and permissions ---------------------------------------------- */

TEST(handler_not_configured_is_denied_and_recorded)
{
	char r[THR_ID_LEN + 1];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	command(rt, r, 'z', NULL, NULL);
	char *st = rtest_state_str(rt, r);
	CHECK(strstr(st, "permission denied") != NULL);
	CHECK(strstr(st, "timing") != NULL);
	free(st);
	char *t = rtest_types(rt, r);
	CHECK(strstr(t, "permission.denied,host.theater:simple/timing.sleep") != NULL);
	free(t);
	thr_stats s;
	thr_runtime_stats(rt, &s);
	CHECK_EQ_INT(s.denied, 1);
	thr_runtime_free(rt);
}

TEST(sleep_suspends_and_records)
{
	char r[THR_ID_LEN + 1];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("relay", relay_path, "[[handler]]\ntype = \"timing\"\n"), r);
	command(rt, r, 'z', NULL, NULL);
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "ok");
	free(st);
	command(rt, r, 'n', NULL, NULL);
	CHECK(count_of(rt, r) > 1600000000000ull); /* ms since 1970 */
	CHECK_EQ_INT(rtest_count(rt, r, "host.theater:simple/timing.sleep"), 1);
	thr_runtime_free(rt);
}

TEST(random_bytes_are_recorded_and_limited)
{
	char r[THR_ID_LEN + 1];
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("relay", relay_path, "[[handler]]\ntype = \"random\"\n"), r);
	command(rt, r, 'b', NULL, NULL);
	uint8_t *s;
	size_t n, en;
	bool has;
	REQUIRE(thr_get_state(rt, r, &s, &n, &has, NULL) == 0);
	CHECK_EQ_INT(n, 16);
	/* The recorded result holds exactly the bytes the actor got. */
	uint8_t *d = rtest_event(rt, r, "host.theater:simple/random.random-bytes", &en);
	REQUIRE(d != NULL);
	bool found = false;
	for (size_t i = 0; i + 16 <= en; i++)
		found |= !memcmp(d + i, s, 16);
	CHECK(found);
	free(d);
	thr_free(s);
	command(rt, r, 'B', NULL, NULL);
	char *st = rtest_state_str(rt, r);
	CHECK(strstr(st, "max_bytes") != NULL);
	free(st);
	CHECK_EQ_INT(rtest_count(rt, r, "permission.denied"), 1);
	thr_runtime_free(rt);
}

TEST(environment_is_filtered)
{
	char r[THR_ID_LEN + 1];
	setenv("RT_TEST_VISIBLE", "yes", 1);
	setenv("RT_SECRET", "no", 1);
	thr_runtime *rt = setup(1);
	spawn_ok(rt, manifest("relay", relay_path,
			      "[[handler]]\ntype = \"environment\"\n"
			      "allowed_prefixes = [\"RT_TEST_\"]\n"), r);
	command(rt, r, 'v', NULL, "RT_TEST_VISIBLE");
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "yes");
	free(st);
	command(rt, r, 'v', NULL, "RT_SECRET");
	st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "none");
	free(st);
	CHECK_EQ_INT(rtest_count(rt, r, "permission.denied"), 1);
	thr_runtime_free(rt);
}

TEST(filesystem_stays_inside_its_root)
{
	char r[THR_ID_LEN + 1], extra[600], path[600];
	thr_runtime *rt = setup(1);
	snprintf(path, sizeof path, "%s/root", rtest_dir);
	REQUIRE(mkdir(path, 0700) == 0);
	snprintf(path, sizeof path, "%s/root/link", rtest_dir);
	REQUIRE(symlink("/etc", path) == 0);
	snprintf(extra, sizeof extra,
		 "[[handler]]\ntype = \"filesystem\"\npath = \"%s/root\"\n", rtest_dir);
	spawn_ok(rt, manifest("relay", relay_path, extra), r);
	command(rt, r, 'w', NULL, "a.txt");
	char *st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "ok");
	free(st);
	snprintf(path, sizeof path, "%s/root/a.txt", rtest_dir);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && sb.st_size == 5);
	command(rt, r, 'f', NULL, "a.txt");
	st = rtest_state_str(rt, r);
	CHECK_EQ_STR(st, "hello");
	free(st);
	command(rt, r, 'f', NULL, "../root/a.txt");
	st = rtest_state_str(rt, r);
	CHECK(strstr(st, "permission denied") != NULL);
	free(st);
	command(rt, r, 'f', NULL, "/etc/passwd");
	st = rtest_state_str(rt, r);
	CHECK(strstr(st, "absolute") != NULL);
	free(st);
	command(rt, r, 'f', NULL, "link/passwd");
	st = rtest_state_str(rt, r);
	CHECK(strstr(st, "symbolic link") != NULL);
	free(st);
	CHECK_EQ_INT(rtest_count(rt, r, "permission.denied"), 3);
	CHECK_EQ_INT(rtest_count(rt, r, "host.theater:simple/filesystem.read-file"), 4);
	thr_runtime_free(rt);
}

TEST(child_permissions_never_exceed_the_parent)
{
	char p[THR_ID_LEN + 1], child_text[1200], root[600];
	thr_runtime *rt = setup(2);
	snprintf(root, sizeof root, "%s/root", rtest_dir);
	REQUIRE(mkdir(root, 0700) == 0);
	/* The parent may spawn but has no filesystem. */
	spawn_ok(rt, manifest("parent", relay_path, "[[handler]]\ntype = \"supervisor\"\n"), p);
	/* The child asks for a filesystem. */
	snprintf(child_text, sizeof child_text,
		 "S%s", manifest("child", relay_path, NULL));
	size_t k = strlen(child_text);
	snprintf(child_text + k, sizeof child_text - k,
		 "[[handler]]\ntype = \"filesystem\"\npath = \"%s\"\n", root);
	send_str(rt, p, child_text);
	rtest_quiesce(rt);
	char *child = rtest_state_str(rt, p);
	REQUIRE(strlen(child) == THR_ID_LEN);
	thr_actor_info info;
	REQUIRE(thr_actor_info_get(rt, child, &info, NULL) == 0);
	CHECK_EQ_STR(info.parent, p);
	CHECK_EQ_INT(info.status, THR_RUNNING);
	command(rt, child, 'w', NULL, "x.txt");
	char *st = rtest_state_str(rt, child);
	CHECK(strstr(st, "permission denied") != NULL);
	free(st);
	CHECK_EQ_INT(rtest_count(rt, child, "permission.denied"), 1);
	free(child);
	/* The spawn itself is a recorded host call. */
	CHECK_EQ_INT(rtest_count(rt, p, "host.theater:simple/supervisor.spawn"), 1);
	thr_runtime_free(rt);
}

TEST(quiesce_and_stats)
{
	char id[THR_ID_LEN + 1];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("counter", counter_path, NULL), id);
	for (int i = 0; i < 100; i++)
		send_str(rt, id, "+");
	rtest_quiesce(rt);
	CHECK_EQ_INT(count_of(rt, id), 100);
	thr_stats s;
	thr_runtime_stats(rt, &s);
	CHECK_EQ_INT(s.spawned, 1);
	CHECK_EQ_INT(s.live, 1);
	CHECK_EQ_INT(s.messages, 101);
	char **ids;
	size_t n;
	REQUIRE(thr_list(rt, &ids, &n, NULL) == 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_STR(ids[0], id);
	thr_free(ids);
	thr_runtime_free(rt);
}

TEST(channels_open_send_and_close)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), a);
	spawn_ok(rt, manifest("relay", relay_path, NULL), b);
	command(rt, a, 'o', b, "hi");
	char *sa = rtest_state_str(rt, a), *sb = rtest_state_str(rt, b);
	CHECK(sa[0] == 'c');
	CHECK_EQ_STR(sa, sb); /* both sides hold the channel id */
	free(sa);
	free(sb);
	command(rt, a, 'c', NULL, "x1");
	sb = rtest_state_str(rt, b);
	CHECK_EQ_STR(sb, "x1");
	free(sb);
	command(rt, a, 'o', b, "again");
	command(rt, a, 'C', NULL, NULL);
	sa = rtest_state_str(rt, a);
	sb = rtest_state_str(rt, b);
	CHECK_EQ_STR(sa, "ok");
	CHECK_EQ_STR(sb, "closed");
	free(sa);
	free(sb);
	/* Closed: sending on it is an error now. */
	command(rt, a, 'c', NULL, "late");
	sa = rtest_state_str(rt, a);
	CHECK(strstr(sa, "channel") != NULL);
	free(sa);
	CHECK_EQ_INT(rtest_count(rt, a, "host.theater:simple/message-server-host.open-channel"), 2);
	CHECK_EQ_INT(rtest_count(rt, b, "message.received"), 5); /* init, 2 opens, 1 msg, close */
	thr_runtime_free(rt);
}

TEST(outstanding_requests_can_be_listed_and_cancelled)
{
	char r[THR_ID_LEN + 1];
	pthread_t th;
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("relay", relay_path, NULL), r);
	struct ext_req x = { .rt = rt, .id = r };
	REQUIRE(pthread_create(&th, NULL, do_request, &x) == 0);
	wait_request_seen(rt, r, NULL);
	char *id = rtest_state_str(rt, r);
	command(rt, r, 'L', NULL, NULL);
	char *listed = rtest_state_str(rt, r);
	CHECK_EQ_STR(listed, id);
	free(listed);
	/* Put the id back as the state, then cancel it. */
	struct ext_req y = { .rt = rt, .id = r };
	pthread_t th2;
	REQUIRE(pthread_create(&th2, NULL, do_request, &y) == 0);
	wait_request_seen(rt, r, id);
	command(rt, r, 'X', NULL, NULL);
	pthread_join(th2, NULL);
	CHECK(y.rc != 0);
	command(rt, r, 'L', NULL, NULL);
	listed = rtest_state_str(rt, r);
	CHECK_EQ_STR(listed, id); /* the first is still outstanding */
	free(listed);
	thr_stop(rt, r, NULL); /* answers it with an error */
	pthread_join(th, NULL);
	CHECK(x.rc != 0);
	free(id);
	thr_runtime_free(rt);
}

TEST(supervisor_sees_child_failures_and_restarts_it)
{
	char p[THR_ID_LEN + 1], cmd[1024];
	thr_runtime *rt = setup(2);
	spawn_ok(rt, manifest("parent", relay_path, "[[handler]]\ntype = \"supervisor\"\n"), p);
	snprintf(cmd, sizeof cmd, "S%s", manifest("child", counter_path, NULL));
	send_str(rt, p, cmd);
	rtest_quiesce(rt);
	char *child = rtest_state_str(rt, p);
	REQUIRE(strlen(child) == THR_ID_LEN);
	send_str(rt, child, "+");
	rtest_quiesce(rt);
	command(rt, p, 'G', NULL, child);
	CHECK_EQ_INT(count_of(rt, p), 1);
	/* The child fails: the parent's handle-child-error gets the reason. */
	send_str(rt, child, "!");
	rtest_quiesce(rt);
	CHECK_EQ_INT(status_of(rt, child, NULL), THR_FAILED);
	char *st = rtest_state_str(rt, p);
	CHECK(strstr(st, "unreachable") != NULL);
	free(st);
	CHECK(rtest_count(rt, p, "export.result") >= 4);
	/* restart-child: same id, last committed state, init again. */
	command(rt, p, 'T', NULL, child);
	st = rtest_state_str(rt, p);
	CHECK_EQ_STR(st, "ok");
	free(st);
	CHECK_EQ_INT(status_of(rt, child, NULL), THR_RUNNING);
	CHECK_EQ_INT(count_of(rt, child), 1);
	CHECK_EQ_INT(rtest_count(rt, child, "actor.restarted"), 1);
	CHECK_EQ_INT(rtest_count(rt, child, "actor.created"), 2);
	/* stop-child: the parent hears of it. */
	command(rt, p, 'K', NULL, child);
	rtest_quiesce(rt);
	CHECK_EQ_INT(status_of(rt, child, NULL), THR_STOPPED);
	st = rtest_state_str(rt, p);
	CHECK_EQ_STR(st, "stopped");
	free(st);
	free(child);
	thr_runtime_free(rt);
}

/* ---- message ids ------------------------------------------------------------- */

/* The msg-ids of a chain's message.received events, in order, and the
 * results of its runtime.message-id host calls ([args, result]). */
static int msg_ids(thr_runtime *rt, const char *chain, const char *type,
		   uint64_t *out, int max)
{
	thx_chain *c;
	int k = 0;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), chain, NULL, false, &c, NULL) == 0);
	uint64_t n = thx_chain_count(c);
	for (uint64_t i = 0; i < n && k < max; i++) {
		thx_event ev = { 0 };
		th_cbor_dec d;
		uint64_t cnt, v;
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		if (!strcmp(ev.type, type)) {
			th_cbor_dec_init(&d, ev.data, ev.len);
			REQUIRE(th_cbor_get_array(&d, &cnt, NULL) == 0);
			if (cnt == 2) /* host call: skip the args */
				REQUIRE(th_cbor_skip(&d, NULL) == 0);
			REQUIRE(th_cbor_get_uint(&d, &v, NULL) == 0);
			out[k++] = v;
		}
		thx_event_release(&ev);
	}
	return k;
}

TEST(a_handler_sees_its_message_id_and_the_call_is_recorded)
{
	char id[THR_ID_LEN + 1], path[400];
	uint64_t rec[8], seen[8];
	thr_runtime *rt = setup(2);
	rtest_wat("msgid");
	snprintf(path, sizeof path, "%s/msgid.wasm", rtest_dir);
	spawn_ok(rt, manifest("msgid", path, NULL), id);
	REQUIRE(msg_ids(rt, id, "message.received", rec, 8) == 1);
	CHECK_EQ_INT(count_of(rt, id), rec[0]); /* init's message */
	for (int i = 0; i < 3; i++) {
		send_str(rt, id, "m");
		rtest_quiesce(rt);
		uint64_t last[8];
		int n = msg_ids(rt, id, "message.received", last, 8);
		REQUIRE(n == i + 2); /* init + the sends so far */
		/* The state is the id the handler got: this message's id. */
		CHECK_EQ_INT(count_of(rt, id), last[n - 1]);
	}
	/* Every call recorded as a host call with its result, and the ids
	 * are those of the messages, init's control message included. */
	int n = msg_ids(rt, id, "message.received", rec, 8);
	int m = msg_ids(rt, id, "host.theater:simple/runtime.message-id", seen, 8);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(m, 4);
	for (int i = 0; i < n && i < m; i++)
		CHECK_EQ_INT(seen[i], rec[i]);
	CHECK(rec[1] != rec[2] && rec[2] != rec[3]);
	thr_runtime_free(rt);
}

TEST(manifest_file_resolves_paths_against_its_directory)
{
	char id[THR_ID_LEN + 1], path[600], cmd[1400];
	th_err err = { 0 };
	uint64_t start = 7;
	thr_runtime *rt = setup(1);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/sub' && cp '%s' '%s/sub/c.wasm'",
		 rtest_dir, counter_path, rtest_dir);
	REQUIRE(system(cmd) == 0);
	snprintf(path, sizeof path, "sub/s.bin");
	rtest_write(path, &start, 8);
	rtest_writef("sub/m.toml", "name = \"c\"\nversion = \"1\"\ncomponent = \"c.wasm\"\n"
		     "init_state = \"s.bin\"\n[[handler]]\ntype = \"runtime\"\n");
	snprintf(path, sizeof path, "%s/sub/m.toml", rtest_dir);
	thr_spawn_opts so = { .manifest_path = path };
	if (thr_spawn(rt, &so, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
	CHECK_EQ_INT(status_of(rt, id, NULL), THR_RUNNING);
	CHECK_EQ_INT(count_of(rt, id), 7); /* init_state from the file */
	thr_runtime_free(rt);
}

TEST(wasi_calls_are_sandboxed_and_recorded)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1], wasm[600];
	thr_runtime *rt = setup(1);
	rtest_wat("wasi");
	snprintf(wasm, sizeof wasm, "%s/wasi.wasm", rtest_dir);
	spawn_ok(rt, manifest("wasi", wasm, NULL), a);
	spawn_ok(rt, manifest("wasi", wasm, NULL), b); /* knows it needs WASI */
	send_str(rt, a, "hello wasi");
	send_str(rt, b, "again");
	rtest_quiesce(rt);
	CHECK_EQ_INT(status_of(rt, a, NULL), THR_RUNNING);
	CHECK_EQ_INT(status_of(rt, b, NULL), THR_RUNNING);
	uint8_t *s;
	size_t n;
	bool has;
	REQUIRE(thr_get_state(rt, a, &s, &n, &has, NULL) == 0);
	CHECK(has && n == 1 && s[0] == 0); /* fd_write succeeded */
	thr_free(s);
	/* The call is recorded with the bytes it read from the actor. */
	uint8_t *d = rtest_event(rt, a, "host.wasi_snapshot_preview1.fd_write", &n);
	CHECK(rtest_has(d, n, "hello wasi"));
	free(d);
	char *t = rtest_types(rt, b);
	CHECK(strstr(t, "export.call,host.wasi_snapshot_preview1.fd_write,export.result") != NULL);
	free(t);
	thr_runtime_free(rt);
}

TEST_MAIN()
