/*
 * Replay tests: actors are run on the real runtime (thr_ API, chains on
 * disk), then their chains are replayed with thrp_replay: every actor
 * replays to the end; a changed component is caught at the first event
 * where it behaves differently, with the explanation; a crash is
 * reproduced with the same trap; a tampered chain is refused by verify and
 * by replay; export -> import into a fresh home -> verify -> replay.
 * The actors are tests/runtime/actors/{counter,relay}.wat (core-module
 * form); counter_v2 is counter with handle-send adding 2.
 */
#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/cbor.h"
#include "runtime/rtest.h"
#include "test.h"
#include "theater/replay.h"
#include "theater/runtime.h"

static char dir[256];
static char home[300];

static void cleanup(void)
{
	char cmd[300];
	if (dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

static void setup(void)
{
	char cmd[1024];
	snprintf(dir, sizeof dir, "/tmp/theater-replay-XXXXXX");
	REQUIRE(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(home, sizeof home, "%s/home", dir);
	snprintf(cmd, sizeof cmd,
		 "wat2wasm tests/runtime/actors/counter.wat -o '%s/counter.wasm' && "
		 "wat2wasm tests/runtime/actors/relay.wat -o '%s/relay.wasm' && "
		 "sed 's/(i64.add (call $count (local.get $sd) (local.get $sp) "
		 "(local.get $sl)) (i64.const 1))/(i64.add (call $count (local.get $sd) "
		 "(local.get $sp) (local.get $sl)) (i64.const 2))/' "
		 "tests/runtime/actors/counter.wat > '%s/counter_v2.wat' && "
		 "! cmp -s tests/runtime/actors/counter.wat '%s/counter_v2.wat' && "
		 "wat2wasm '%s/counter_v2.wat' -o '%s/counter_v2.wasm'",
		 dir, dir, dir, dir, dir, dir);
	REQUIRE(system(cmd) == 0);
}

static thr_runtime *runtime(void)
{
	thr_options o = { 0 };
	thr_runtime *rt = NULL;
	th_err err = { 0 };
	o.home = home;
	o.workers = 2;
	o.durability = THX_BATCH;
	o.store_no_sync = true;
	if (thr_runtime_new(&o, &rt, &err))
		fprintf(stderr, "thr_runtime_new: %s\n", err.msg);
	REQUIRE(rt != NULL);
	return rt;
}

static void spawn(thr_runtime *rt, const char *wasm, const char *extra,
		  char id[THR_ID_LEN + 1])
{
	char text[2048];
	th_err err = { 0 };
	snprintf(text, sizeof text,
		 "name = \"t\"\nversion = \"0.1.0\"\nsave_chain = true\ncomponent = \"%s/%s\"\n"
		 "[[handler]]\ntype = \"runtime\"\n"
		 "[[handler]]\ntype = \"message-server\"\n%s", dir, wasm,
		 extra ? extra : "");
	thr_spawn_opts so = { .manifest_text = text, .base_dir = dir };
	if (thr_spawn(rt, &so, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
}

static void send(thr_runtime *rt, const char *id, const char *m)
{
	th_err err = { 0 };
	if (thr_send(rt, id, m, strlen(m), THR_SEND_WAIT, &err))
		fprintf(stderr, "send: %s\n", err.msg);
}

static void quiesce(thr_runtime *rt)
{
	REQUIRE(thr_quiesce(rt, 60000, NULL) == 0);
}

/* Open the home's store and chains, replay chain id. */
static int replay(const char *h, const char *id, const thrp_opts *opt,
		  thrp_report *rep, th_err *err)
{
	char p[400];
	ths_store *st = NULL;
	thx_store *cs = NULL;
	thx_chain *c = NULL;
	thx_store_opts so = { .read_only = true, .no_background = true };
	int rc;
	snprintf(p, sizeof p, "%s/store", h);
	REQUIRE(ths_open(p, NULL, &st, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", h);
	REQUIRE(thx_store_open(p, &so, &cs, NULL) == 0);
	rc = thx_chain_open(cs, id, NULL, false, &c, err);
	if (!rc)
		rc = thrp_replay(st, c, opt, rep, err);
	thx_store_close(cs);
	ths_close(st);
	return rc;
}

/* Sequence number of the nth (0-based) event of a type in chain id. */
static uint64_t seq_of(const char *h, const char *id, const char *type, int nth)
{
	char p[400];
	thx_store *cs = NULL;
	thx_chain *c = NULL;
	thx_store_opts so = { .read_only = true, .no_background = true };
	uint64_t found = UINT64_MAX;
	snprintf(p, sizeof p, "%s/chains", h);
	REQUIRE(thx_store_open(p, &so, &cs, NULL) == 0);
	REQUIRE(thx_chain_open(cs, id, NULL, false, &c, NULL) == 0);
	for (uint64_t s = 0; s < thx_chain_count(c) && found == UINT64_MAX; s++) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, s, &ev, NULL) == 0);
		if (!strcmp(ev.type, type) && nth-- == 0)
			found = s;
		thx_event_release(&ev);
	}
	thx_store_close(cs);
	return found;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	REQUIRE(f != NULL);
	REQUIRE(fseek(f, 0, SEEK_END) == 0);
	long n = ftell(f);
	REQUIRE(n >= 0);
	rewind(f);
	uint8_t *b = malloc((size_t)n + 1);
	REQUIRE(b != NULL);
	REQUIRE(fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* A counter run: 20 sends (every 4th logs), a request, stop. */
static void counter_run(char id[THR_ID_LEN + 1])
{
	thr_runtime *rt = runtime();
	uint8_t *reply = NULL;
	size_t rl = 0;
	spawn(rt, "counter.wasm", NULL, id);
	for (int i = 0; i < 20; i++)
		send(rt, id, i % 4 == 3 ? "l" : "+");
	quiesce(rt);
	REQUIRE(thr_request(rt, id, "?", 1, 0, &reply, &rl, NULL) == 0);
	thr_free(reply);
	thr_runtime_free(rt);
}

TEST(counter_replays_to_the_end)
{
	char id[THR_ID_LEN + 1];
	thrp_report rep;
	th_err err = { 0 };
	setup();
	counter_run(id);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.calls, 22); /* init, 20 sends, 1 request */
	CHECK_EQ_INT((int)rep.host_calls, 1 + 5); /* init's log + 5 'l' logs */
	CHECK(!rep.crashed);
	CHECK_EQ_INT((int)rep.last_seq, (int)seq_of(home, id, "actor.stopped", 0));
}

/* The example actor (examples/counter, C SDK) in both forms, built with
 * the SDK recipe. */
TEST(sdk_counter_example_replays_in_both_forms)
{
	const char *forms[] = { "counter.component.wasm", "counter.core.wasm" };
	char cmd[600];
	setup();
	snprintf(cmd, sizeof cmd, "sh sdk/c/build.sh examples/counter/counter.c "
		 "'%s' >/dev/null", dir);
	REQUIRE(system(cmd) == 0);
	thr_runtime *rt = runtime();
	char ids[2][THR_ID_LEN + 1];
	for (int f = 0; f < 2; f++) {
		uint8_t *reply = NULL;
		size_t rl = 0;
		spawn(rt, forms[f], NULL, ids[f]);
		for (int i = 0; i < 12; i++)
			send(rt, ids[f], "hello");
		quiesce(rt);
		REQUIRE(thr_request(rt, ids[f], "?", 1, 0, &reply, &rl, NULL) == 0);
		CHECK(rl == 2 && !memcmp(reply, "12", 2));
		thr_free(reply);
	}
	thr_runtime_free(rt);
	for (int f = 0; f < 2; f++) {
		thrp_report rep;
		th_err err = { 0 };
		int rc = replay(home, ids[f], NULL, &rep, &err);
		if (rc || !rep.ok) {
			fprintf(stderr, "%s: %s\n", forms[f], err.msg);
			thrp_report_print(&rep, ids[f], false, stderr);
		}
		CHECK_EQ_INT(rc, 0);
		CHECK(rep.ok);
		CHECK_EQ_INT((int)rep.calls, 14);      /* init, 12 sends, 1 request */
		CHECK_EQ_INT((int)rep.host_calls, 13); /* a log each in init and sends */
	}
}

TEST(relay_time_random_env_sleep_replay_from_the_chain)
{
	char id[THR_ID_LEN + 1];
	thrp_report rep;
	th_err err = { 0 };
	setup();
	setenv("RP_TEST_VAR", "visible", 1);
	thr_runtime *rt = runtime();
	spawn(rt, "relay.wasm",
	      "[[handler]]\ntype = \"timing\"\n"
	      "[[handler]]\ntype = \"random\"\n"
	      "[[handler]]\ntype = \"environment\"\nallowed_prefixes = [\"RP_TEST_\"]\n", id);
	const char *cmds[] = { "n", "b", "vRP_TEST_VAR", "z", "n", "b", "vHOME", "lhello" };
	for (size_t i = 0; i < TH_ARRAY_LEN(cmds); i++) {
		send(rt, id, cmds[i]);
		quiesce(rt);
	}
	thr_runtime_free(rt);
	/* The environment changes: replay still sees what the actor saw. */
	setenv("RP_TEST_VAR", "changed", 1);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.calls, 9);
	CHECK_EQ_INT((int)rep.host_calls, 8);
}

/* A supervisor (relay) spawns a counter, the child crashes, the parent is
 * told (handle-child-error) and restarts it (same id, last committed
 * state, init again), then stops it: both chains replay, the child's
 * across its restart. */
TEST(supervised_child_replays_across_its_restart)
{
	char p[THR_ID_LEN + 1], cmd[1200];
	setup();
	thr_runtime *rt = runtime();
	spawn(rt, "relay.wasm", "[[handler]]\ntype = \"supervisor\"\n", p);
	snprintf(cmd, sizeof cmd, "Sname = \"child\"\nversion = \"1\"\nsave_chain = true\n"
		 "component = \"%s/counter.wasm\"\n[[handler]]\ntype = \"runtime\"\n", dir);
	send(rt, p, cmd);
	quiesce(rt);
	char *child = rtest_state_str(rt, p);
	REQUIRE(strlen(child) == THR_ID_LEN);
	send(rt, child, "+");
	send(rt, child, "l");
	quiesce(rt);
	send(rt, child, "!");
	quiesce(rt);
	snprintf(cmd, sizeof cmd, "T%s", child);
	send(rt, p, cmd);
	quiesce(rt);
	send(rt, child, "+");
	quiesce(rt);
	snprintf(cmd, sizeof cmd, "K%s", child);
	send(rt, p, cmd);
	quiesce(rt);
	thr_runtime_free(rt);

	const char *ids[] = { p, child };
	for (int i = 0; i < 2; i++) {
		thrp_report rep;
		th_err err = { 0 };
		int rc = replay(home, ids[i], NULL, &rep, &err);
		if (rc || !rep.ok) {
			fprintf(stderr, "%s\n", err.msg);
			thrp_report_print(&rep, ids[i], false, stderr);
		}
		CHECK_EQ_INT(rc, 0);
		CHECK(rep.ok);
		if (i == 1) {
			/* init, +, l, ! (crash), init again, + */
			CHECK_EQ_INT((int)rep.calls, 6);
			CHECK(rep.crashed);
		} else {
			/* init, S, child-error, T, K, child-external-stop */
			CHECK_EQ_INT((int)rep.calls, 6);
			CHECK(rep.host_calls >= 3);
		}
	}
	free(child);
}

/* A core module using WASI (random bytes, the clock, stdout): replay
 * answers each WASI call with the recorded bytes, so the states match. */
TEST(wasi_actor_gets_the_recorded_clock_and_random_bytes)
{
	char id[THR_ID_LEN + 1], cmd[600];
	thrp_report rep;
	th_err err = { 0 };
	setup();
	snprintf(cmd, sizeof cmd, "wat2wasm tests/replay/actors/wasi_clock.wat -o "
		 "'%s/wasi_clock.wasm'", dir);
	REQUIRE(system(cmd) == 0);
	thr_runtime *rt = runtime();
	spawn(rt, "wasi_clock.wasm", NULL, id);
	send(rt, id, "one");
	send(rt, id, "two");
	send(rt, id, "three");
	quiesce(rt);
	thr_runtime_free(rt);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.calls, 4);
	CHECK_EQ_INT((int)rep.host_calls, 9);
}

/* The initial state given at spawn (not in any manifest) comes from the
 * chain's actor.spawning: init gets it again. */
TEST(initial_state_given_at_spawn_is_replayed)
{
	char id[THR_ID_LEN + 1], text[1024];
	uint8_t five[8] = { 5 };
	thrp_report rep;
	th_err err = { 0 };
	setup();
	thr_runtime *rt = runtime();
	snprintf(text, sizeof text, "name = \"t\"\nversion = \"1\"\nsave_chain = true\n"
		 "component = \"%s/counter.wasm\"\n[[handler]]\ntype = \"runtime\"\n", dir);
	thr_spawn_opts so = { .manifest_text = text, .init_state = five,
			      .init_state_len = 8, .has_init_state = true };
	REQUIRE(thr_spawn(rt, &so, id, &err) == 0);
	send(rt, id, "+");
	send(rt, id, "+");
	quiesce(rt);
	char *st = rtest_state_str(rt, id);
	CHECK_EQ_INT(st[0], 7);
	free(st);
	thr_runtime_free(rt);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.calls, 3);
}

TEST(changed_component_diverges_at_the_first_different_result)
{
	char id[THR_ID_LEN + 1], path[400];
	thrp_report rep;
	th_err err = { 0 };
	size_t len;
	setup();
	counter_run(id);
	snprintf(path, sizeof path, "%s/counter_v2.wasm", dir);
	uint8_t *v2 = read_all(path, &len);
	thrp_opts o = { .component = v2, .component_len = len };
	int rc = replay(home, id, &o, &rep, &err);
	CHECK_EQ_INT(rc, 0);
	CHECK(!rep.ok);
	/* init is the same; the first handle-send's result differs. */
	uint64_t first = seq_of(home, id, "export.result", 1);
	CHECK_EQ_INT((int)rep.seq, (int)first);
	CHECK_EQ_STR(rep.type, "export.result");
	CHECK(strstr(rep.what, "different result") != NULL);
	CHECK(strstr(rep.expected, "state 8 bytes") != NULL);
	CHECK(strstr(rep.actual, "state 8 bytes") != NULL);
	CHECK(strcmp(rep.expected, rep.actual) != 0);
	/* count 1 vs count 2, little-endian in the state */
	CHECK(strstr(rep.expected, "h'0100000000000000'") != NULL);
	CHECK(strstr(rep.actual, "h'0200000000000000'") != NULL);
	CHECK(rep.has_last_match);
	CHECK(rep.last_match_seq < rep.seq);
	CHECK_EQ_INT((int)rep.calls, 2);
	free(v2);
}

TEST(changed_component_diverges_at_a_host_call)
{
	char id[THR_ID_LEN + 1], path[400], cmd[1200];
	thrp_report rep;
	th_err err = { 0 };
	size_t len;
	setup();
	counter_run(id);
	/* v3 logs "LOG line" instead of "log line". */
	snprintf(cmd, sizeof cmd, "sed 's/\"log line\"/\"LOG line\"/' "
		 "tests/runtime/actors/counter.wat > '%s/v3.wat' && "
		 "wat2wasm '%s/v3.wat' -o '%s/v3.wasm'", dir, dir, dir);
	REQUIRE(system(cmd) == 0);
	snprintf(path, sizeof path, "%s/v3.wasm", dir);
	uint8_t *v3 = read_all(path, &len);
	thrp_opts o = { .component = v3, .component_len = len };
	CHECK_EQ_INT(replay(home, id, &o, &rep, &err), 0);
	CHECK(!rep.ok);
	CHECK_EQ_INT((int)rep.seq, (int)seq_of(home, id, "host.theater:simple/runtime.log", 1));
	CHECK(strstr(rep.what, "different arguments") != NULL);
	CHECK(strstr(rep.expected, "\"log line\"") != NULL);
	CHECK(strstr(rep.actual, "\"LOG line\"") != NULL);
	free(v3);
}

TEST(crash_is_reproduced_with_the_same_trap)
{
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	thrp_report rep;
	th_err err = { 0 };
	setup();
	thr_runtime *rt = runtime();
	spawn(rt, "counter.wasm", NULL, id);
	send(rt, id, "+");
	send(rt, id, "l");
	send(rt, id, "!");
	REQUIRE(thr_wait(rt, id, 60000, NULL) == 0);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	REQUIRE(info.status == THR_FAILED);
	thr_runtime_free(rt);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK(rep.crashed);
	CHECK_EQ_STR(rep.crash_kind, "trap");
	CHECK_EQ_STR(rep.crash_reason, info.reason);
	CHECK(strstr(rep.crash_reason, "unreachable") != NULL);
	CHECK(rep.backtrace[0] != 0);
	CHECK(rep.backtrace_recorded);
	/* The handler (func 5 of the core module) at the unreachable. */
	CHECK(strncmp(rep.backtrace, "#0 func ", 8) == 0);
	CHECK_EQ_INT((int)rep.crash_seq, (int)seq_of(home, id, "actor.failed", 0));
}

/* Results read in place (the runtime's finish_inplace) are recorded as the
 * bytes the replay's lifting gives: a replay of states some, none, empty
 * and some again matches every export.result, and the malformed return
 * area at the end is reproduced as the same trap. */
TEST(results_read_in_place_replay_byte_for_byte)
{
	char id[THR_ID_LEN + 1], cmd[600];
	thr_actor_info info;
	thrp_report rep;
	th_err err = { 0 };
	setup();
	snprintf(cmd, sizeof cmd, "wat2wasm tests/runtime/actors/results.wat -o '%s/results.wasm'",
		 dir);
	REQUIRE(system(cmd) == 0);
	thr_runtime *rt = runtime();
	spawn(rt, "results.wasm", NULL, id);
	static const char *msgs[] = { "s", "n", "z", "s", "s", "o" };
	for (size_t k = 0; k < TH_ARRAY_LEN(msgs); k++)
		send(rt, id, msgs[k]);
	REQUIRE(thr_wait(rt, id, 60000, NULL) == 0);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	REQUIRE(info.status == THR_FAILED);
	thr_runtime_free(rt);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK(rep.crashed);
	CHECK_EQ_STR(rep.crash_reason, info.reason);
	CHECK(rep.calls >= 6);
}

/* The recorded failure carries the engine's backtrace; a build that traps
 * with the same message one instruction later (a nop before the
 * unreachable) is a divergence at actor.failed naming both backtraces. */
TEST(crash_at_another_place_diverges_on_the_backtrace)
{
	char id[THR_ID_LEN + 1], cmd[1024], p[400];
	thrp_report rep, rep1;
	th_err err = { 0 };
	size_t n;
	setup();
	snprintf(cmd, sizeof cmd,
		 "sed 's/(local.get $c) (i32.const 33)) (then unreachable)/"
		 "(local.get $c) (i32.const 33)) (then nop unreachable)/' "
		 "tests/runtime/actors/counter.wat > '%s/counter_v4.wat' && "
		 "! cmp -s tests/runtime/actors/counter.wat '%s/counter_v4.wat' && "
		 "wat2wasm '%s/counter_v4.wat' -o '%s/counter_v4.wasm'", dir, dir, dir, dir);
	REQUIRE(system(cmd) == 0);
	thr_runtime *rt = runtime();
	spawn(rt, "counter.wasm", NULL, id);
	send(rt, id, "+");
	send(rt, id, "!");
	REQUIRE(thr_wait(rt, id, 60000, NULL) == 0);
	thr_runtime_free(rt);
	CHECK_EQ_INT(replay(home, id, NULL, &rep1, &err), 0);
	CHECK(rep1.ok && rep1.crashed && rep1.backtrace_recorded);

	snprintf(p, sizeof p, "%s/counter_v4.wasm", dir);
	uint8_t *v4 = read_all(p, &n);
	thrp_opts o = { .component = v4, .component_len = n };
	CHECK_EQ_INT(replay(home, id, &o, &rep, &err), 0);
	CHECK(!rep.ok);
	CHECK_EQ_STR(rep.type, "actor.failed");
	CHECK_EQ_INT((int)rep.seq, (int)seq_of(home, id, "actor.failed", 0));
	CHECK(strstr(rep.what, "backtrace") != NULL);
	CHECK_EQ_STR(rep.expected, rep1.backtrace);
	CHECK(strcmp(rep.actual, rep.expected) != 0);
	CHECK(strncmp(rep.actual, "#0 func ", 8) == 0);
	free(v4);
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

/* Health probes (tests/runtime/actors/prober.wat, probe "export:check"):
 * answered, erring and trapping probes run between the messages; a trapped
 * probe changed the instance (its count of checks) and is a miss, not a
 * failure. The replay re-runs every probe where it ran, and the count the
 * requests answered matches. */
TEST(health_probes_answered_erring_and_trapped_replay)
{
	char id[THR_ID_LEN + 1], cmd[600];
	thrp_report rep;
	th_err err = { 0 };
	setup();
	snprintf(cmd, sizeof cmd, "wat2wasm tests/runtime/actors/prober.wat -o '%s/prober.wasm'",
		 dir);
	REQUIRE(system(cmd) == 0);
	thr_runtime *rt = runtime();
	spawn(rt, "prober.wasm", "[supervision]\nrestart = \"temporary\"\n"
	      "[supervision.health]\nprobe = \"export:check\"\ninterval_ms = 5\n"
	      "timeout_ms = 600000\nmax_missed = 100000\n", id);
	static const char *modes[] = { "0", "t", "e", "0" };
	for (size_t k = 0; k < TH_ARRAY_LEN(modes); k++) {
		send(rt, id, modes[k]);
		uint64_t base = checks_of(rt, id); /* after the mode changed */
		for (int i = 0; i < 12000 && checks_of(rt, id) < base + 2; i++)
			usleep(5000);
		REQUIRE(checks_of(rt, id) >= base + 2);
	}
	thr_runtime_free(rt);
	CHECK(seq_of(home, id, "health.missed", 0) != UINT64_MAX);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK(!rep.crashed);
	CHECK(rep.calls > 12);
}

/* A handler in an endless loop (no fuel cap) ended from outside by
 * thr_terminate: the chain has its export.call and then actor.stopped
 * "terminated". The replay must not run that call (it would never end):
 * a call cut short from outside gets no verdict. */
TEST(call_cut_short_from_outside_is_not_run_again)
{
	char id[THR_ID_LEN + 1];
	thrp_report rep;
	th_err err = { 0 };
	setup();
	thr_runtime *rt = runtime();
	spawn(rt, "counter.wasm", NULL, id);
	send(rt, id, "+");
	send(rt, id, "l");
	send(rt, id, "~");
	thr_actor_info info;
	for (int i = 0; i < 6000; i++) {
		REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
		if (info.messages >= 3 && info.queued == 0)
			break;
		usleep(1000);
	}
	usleep(20000); /* the loop is running */
	REQUIRE(thr_terminate(rt, id, &err) == 0);
	/* ... and the actor goes on after a restart. */
	REQUIRE(thr_restart(rt, id, &err) == 0);
	send(rt, id, "l");
	quiesce(rt);
	thr_runtime_free(rt);
	alarm(120); /* a replay running the loop would never return */
	int rc = replay(home, id, NULL, &rep, &err);
	alarm(0);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK(seq_of(home, id, "actor.stopped", 0) != UINT64_MAX);

	/* The same chain with no fuel cap recorded (as chains from before
	 * the cap was): the loop is not run at all, the replay looks ahead
	 * and sees the call was ended from outside. */
	char p[400];
	thx_store_opts ro = { .read_only = true, .no_background = true };
	thx_store_opts mo = { .no_background = true };
	thx_chain_opts co = { .durability = THX_NONE };
	thx_store *src = NULL, *mem = NULL;
	thx_chain *c = NULL, *m = NULL;
	ths_store *st = NULL;
	snprintf(p, sizeof p, "%s/store", home);
	REQUIRE(ths_open(p, NULL, &st, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(thx_store_open(p, &ro, &src, NULL) == 0);
	REQUIRE(thx_chain_open(src, id, NULL, false, &c, NULL) == 0);
	snprintf(p, sizeof p, "%s/mem", dir);
	REQUIRE(thx_store_open(p, &mo, &mem, NULL) == 0);
	REQUIRE(thx_chain_open(mem, "nocap", &co, true, &m, NULL) == 0);
	for (uint64_t k = 0; k < thx_chain_count(c); k++) {
		thx_event ev = { 0 };
		th_cbor_enc e;
		REQUIRE(thx_get(c, k, &ev, NULL) == 0);
		thx_event_in in = { .actor = ev.actor, .type = ev.type, .data = ev.data,
				    .len = ev.len, .timestamp_ns = ev.timestamp_ns };
		th_cbor_enc_init(&e, NULL, 0);
		if (!strcmp(ev.type, "actor.spawning")) {
			/* [name, manifest, parent, version, init, fuel, pages] */
			th_cbor_dec d;
			uint64_t nn, pages;
			th_cbor_dec_init(&d, ev.data, ev.len);
			REQUIRE(th_cbor_get_array(&d, &nn, NULL) == 0 && nn == 7);
			size_t from = d.pos;
			for (int i = 0; i < 5; i++)
				REQUIRE(th_cbor_skip(&d, NULL) == 0);
			size_t to = d.pos;
			REQUIRE(th_cbor_skip(&d, NULL) == 0);
			REQUIRE(th_cbor_get_uint(&d, &pages, NULL) == 0);
			th_cbor_put_array(&e, 7);
			th_cbor_put_raw(&e, ev.data + from, to - from);
			th_cbor_put_uint(&e, 0);
			th_cbor_put_uint(&e, pages);
			in.data = e.buf;
			in.len = e.len;
		}
		REQUIRE(thx_append(m, &in, NULL, NULL, NULL) == 0);
		th_cbor_enc_release(&e);
		thx_event_release(&ev);
	}
	alarm(120);
	rc = thrp_replay(st, m, NULL, &rep, &err);
	alarm(0);
	if (rc || !rep.ok) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, "nocap", false, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.events, (int)thx_chain_count(c));
	thx_store_close(mem);
	thx_store_close(src);
	ths_close(st);
}

/* An endless loop stopped by the manifest's fuel cap: the cap is in the
 * chain (actor.spawning), the replay stops at the same place. */
TEST(out_of_fuel_is_reproduced_with_the_recorded_cap)
{
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	thrp_report rep;
	th_err err = { 0 };
	setup();
	thr_runtime *rt = runtime();
	spawn(rt, "counter.wasm", "[limits]\nfuel_per_message = 200000\n", id);
	send(rt, id, "+");
	send(rt, id, "~");
	REQUIRE(thr_wait(rt, id, 60000, NULL) == 0);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	REQUIRE(info.status == THR_FAILED);
	thr_runtime_free(rt);
	int rc = replay(home, id, NULL, &rep, &err);
	if (rc || !rep.ok || !rep.crashed) {
		fprintf(stderr, "%s\n", err.msg);
		thrp_report_print(&rep, id, true, stderr);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(rep.ok);
	CHECK(rep.crashed);
	CHECK_EQ_STR(rep.crash_kind, "out-of-fuel");
	CHECK_EQ_STR(rep.crash_reason, info.reason);
}

TEST(until_stops_early)
{
	char id[THR_ID_LEN + 1];
	thrp_report rep;
	setup();
	counter_run(id);
	thrp_opts o = { .has_until = true, .until = 9 };
	CHECK_EQ_INT(replay(home, id, &o, &rep, NULL), 0);
	CHECK(rep.ok);
	CHECK_EQ_INT((int)rep.events, 10);
	CHECK_EQ_INT((int)rep.last_seq, 9);
}

/* Flip the first occurrence of `from` into `to` in any file under d. */
static bool tamper(const char *d, const char *from, const char *to)
{
	DIR *dh = opendir(d);
	struct dirent *de;
	bool done = false;
	REQUIRE(dh != NULL);
	while (!done && (de = readdir(dh))) {
		char p[600];
		size_t len;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", d, de->d_name);
		struct stat sb;
		if (stat(p, &sb) || !S_ISREG(sb.st_mode))
			continue;
		uint8_t *b = read_all(p, &len);
		uint8_t *hit = memmem(b, len, from, strlen(from));
		if (hit) {
			FILE *f = fopen(p, "r+b");
			REQUIRE(f != NULL);
			REQUIRE(fseek(f, (long)(hit - b), SEEK_SET) == 0);
			REQUIRE(fwrite(to, 1, strlen(to), f) == strlen(to));
			fclose(f);
			done = true;
		}
		free(b);
	}
	closedir(dh);
	return done;
}

TEST(tampered_event_is_caught_by_verify_and_refused_by_replay)
{
	char id[THR_ID_LEN + 1], p[400];
	thrp_report rep;
	thx_verify_report vr;
	thx_store *cs = NULL;
	th_err err = { 0 };
	setup();
	counter_run(id);
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(tamper(p, "log line", "LOG line"));
	thx_store_opts so = { .read_only = true, .no_background = true };
	REQUIRE(thx_store_open(p, &so, &cs, NULL) == 0);
	CHECK_EQ_INT(thx_verify(cs, id, NULL, NULL, &vr, NULL), 0);
	CHECK(!vr.ok);
	thx_store_close(cs);
	int rc = replay(home, id, NULL, &rep, &err);
	CHECK(rc != 0);
	CHECK(!rep.ok);
	CHECK(err.msg[0] != 0);
}

TEST(export_import_into_a_fresh_home_verifies_and_replays)
{
	char id[THR_ID_LEN + 1], p[400], home2[400];
	thrp_report rep, rep2;
	thrp_import_info info;
	thx_verify_report vr;
	th_err err = { 0 };
	ths_store *st = NULL, *st2 = NULL;
	thx_store *cs = NULL, *cs2 = NULL;
	thx_chain *c = NULL;
	thx_store_opts so = { .read_only = true, .no_background = true };
	size_t len;
	setup();
	counter_run(id);
	CHECK_EQ_INT(replay(home, id, NULL, &rep, NULL), 0);

	snprintf(p, sizeof p, "%s/store", home);
	REQUIRE(ths_open(p, NULL, &st, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(thx_store_open(p, &so, &cs, NULL) == 0);
	REQUIRE(thx_chain_open(cs, id, NULL, false, &c, NULL) == 0);
	snprintf(p, sizeof p, "%s/x.thx", dir);
	FILE *f = fopen(p, "wb");
	REQUIRE(f != NULL);
	int rc = thrp_export(c, st, f, &err);
	if (rc)
		fprintf(stderr, "export: %s\n", err.msg);
	CHECK_EQ_INT(rc, 0);
	fclose(f);
	thx_store_close(cs);
	ths_close(st);

	uint8_t *b = read_all(p, &len);
	snprintf(home2, sizeof home2, "%s/home2", dir);
	REQUIRE(mkdir(home2, 0700) == 0);
	snprintf(p, sizeof p, "%s/store", home2);
	REQUIRE(ths_open(p, NULL, &st2, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", home2);
	REQUIRE(thx_store_open(p, NULL, &cs2, NULL) == 0);

	/* Malformed files: a clear error with an offset, nothing imported. */
	CHECK_EQ_INT(thrp_import(b, len - 10, cs2, st2, &info, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "byte ") != NULL);
	b[len / 2] ^= 0x40;
	CHECK_EQ_INT(thrp_import(b, len, cs2, st2, &info, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "checksum") != NULL);
	b[len / 2] ^= 0x40;
	CHECK_EQ_INT(thrp_import(b, 5, cs2, st2, &info, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "magic") != NULL);

	rc = thrp_import(b, len, cs2, st2, &info, &err);
	if (rc)
		fprintf(stderr, "import: %s\n", err.msg);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_STR(info.chain, id);
	CHECK_EQ_INT((int)info.objects, 1);
	CHECK_EQ_INT((int)info.events, (int)rep.events);
	/* A second import of the same chain is refused. */
	CHECK_EQ_INT(thrp_import(b, len, cs2, st2, &info, &err), TH_EEXIST);
	CHECK_EQ_INT(thx_verify(cs2, id, NULL, NULL, &vr, NULL), 0);
	CHECK(vr.ok);
	thx_store_close(cs2);
	ths_close(st2);
	free(b);

	CHECK_EQ_INT(replay(home2, id, NULL, &rep2, &err), 0);
	CHECK(rep2.ok);
	CHECK_EQ_INT((int)rep2.events, (int)rep.events);
	CHECK_EQ_INT((int)rep2.calls, (int)rep.calls);
}

/* Replay reads chains received from others: a chain whose events lie
 * (valid hashes, bad contents) must give an error or a divergence, never
 * a crash. Every event gets its data bit-flipped at several places, cut
 * short, or its type swapped for another; each variant is replayed. */
TEST(lying_chains_are_refused_not_crashed_on)
{
	static const char *types[] = {
		"actor.spawning", "component.loaded", "actor.instantiated",
		"export.call", "export.result", "actor.failed", "actor.restarted",
		"host.theater:simple/runtime.log", "message.received",
		"actor.resumed", "supervision.restarting",
	};
	char id[THR_ID_LEN + 1], p[400];
	thx_store_opts ro = { .read_only = true, .no_background = true };
	thx_store *src = NULL, *mem = NULL;
	thx_chain *c = NULL;
	ths_store *st = NULL;
	thx_event evs[64];
	uint64_t n, variants = 0, diverged = 0, failed = 0;
	setup();
	counter_run(id);
	snprintf(p, sizeof p, "%s/store", home);
	REQUIRE(ths_open(p, NULL, &st, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(thx_store_open(p, &ro, &src, NULL) == 0);
	REQUIRE(thx_chain_open(src, id, NULL, false, &c, NULL) == 0);
	n = thx_chain_count(c);
	REQUIRE(n <= 64);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(thx_get(c, i, &evs[i], NULL) == 0);
	snprintf(p, sizeof p, "%s/mem", dir);
	thx_store_opts mo = { .no_background = true };
	REQUIRE(thx_store_open(p, &mo, &mem, NULL) == 0);
	thx_chain_opts co = { .durability = THX_NONE };

	for (uint64_t i = 0; i < n; i++) {
		int nvar = 8 + (int)TH_ARRAY_LEN(types);
		for (int v = 0; v < nvar; v++) {
			char name[64];
			uint8_t data[4096];
			const char *type = evs[i].type;
			size_t len = evs[i].len;
			thx_chain *m = NULL;
			thrp_report rep;
			th_err err = { 0 };
			REQUIRE(len <= sizeof data);
			memcpy(data, evs[i].data, len);
			if (v < 7 && len) {
				size_t at = (size_t)v * len / 7;
				data[at] ^= (uint8_t)(1u << (v % 8));
			} else if (v == 7) {
				len /= 2;
			} else if (v >= 8) {
				type = types[v - 8];
				if (!strcmp(type, evs[i].type))
					continue;
			}
			snprintf(name, sizeof name, "m%llu-%d", (unsigned long long)i, v);
			REQUIRE(thx_chain_open(mem, name, &co, true, &m, NULL) == 0);
			for (uint64_t k = 0; k < n; k++) {
				thx_event_in in = { .actor = evs[k].actor, .type = evs[k].type,
						    .data = evs[k].data, .len = evs[k].len,
						    .timestamp_ns = evs[k].timestamp_ns };
				if (k == i) {
					in.type = type;
					in.data = data;
					in.len = len;
				}
				REQUIRE(thx_append(m, &in, NULL, NULL, NULL) == 0);
			}
			int rc = thrp_replay(st, m, NULL, &rep, &err);
			variants++;
			if (rc) {
				failed++;
				CHECK(err.msg[0] != 0);
				CHECK(!rep.ok);
			} else if (!rep.ok) {
				diverged++;
				CHECK(rep.type[0] != 0);
			}
		}
	}
	/* Most lies are noticed (some flips hit bytes nobody reads, e.g. a
	 * timestamp-free description or a message.received). */
	CHECK(failed + diverged > variants / 2);
	for (uint64_t i = 0; i < n; i++)
		thx_event_release(&evs[i]);
	thx_store_close(mem);
	thx_store_close(src);
	ths_close(st);
}

/* Export files are untrusted input too: every variant with a byte flipped
 * (and the checksum made to match again, so the parser behind it is
 * reached) or cut short is either imported as a consistent chain or
 * refused with an offset - never a crash. */
TEST(altered_export_files_are_refused_with_an_offset)
{
	char id[THR_ID_LEN + 1], p[400];
	thx_store_opts ro = { .read_only = true, .no_background = true };
	thx_store *src = NULL;
	thx_chain *c = NULL;
	ths_store *st = NULL;
	size_t len;
	uint64_t refused = 0, variants = 0;
	setup();
	counter_run(id);
	snprintf(p, sizeof p, "%s/store", home);
	REQUIRE(ths_open(p, NULL, &st, NULL) == 0);
	snprintf(p, sizeof p, "%s/chains", home);
	REQUIRE(thx_store_open(p, &ro, &src, NULL) == 0);
	REQUIRE(thx_chain_open(src, id, NULL, false, &c, NULL) == 0);
	snprintf(p, sizeof p, "%s/x.thx", dir);
	FILE *f = fopen(p, "wb");
	REQUIRE(f != NULL);
	REQUIRE(thrp_export(c, st, f, NULL) == 0);
	fclose(f);
	thx_store_close(src);
	uint8_t *orig = read_all(p, &len);
	REQUIRE(len > 8 + 37);
	uint8_t *b = malloc(len);
	REQUIRE(b != NULL);
	/* The many small stores go to tmpfs when there is one (fsync-free). */
	char shm[300], cmd[400];
	snprintf(shm, sizeof shm, "/dev/shm/theater-replay-XXXXXX");
	if (!mkdtemp(shm))
		snprintf(shm, sizeof shm, "%s", dir);
	for (size_t at = 8; at < len - 37; at += 11) {
		char sd[400];
		thx_store *cs = NULL;
		thx_store_opts so = { .no_background = true };
		thrp_import_info info;
		th_err err = { 0 };
		unsigned sl = 0;
		memcpy(b, orig, len);
		b[at] ^= (uint8_t)(0x01u << (at % 8));
		REQUIRE(EVP_Digest(b, len - 37, b + len - 32, &sl, EVP_sha256(), NULL));
		snprintf(sd, sizeof sd, "%s/imp-%zu", shm, at);
		REQUIRE(thx_store_open(sd, &so, &cs, NULL) == 0);
		int rc = thrp_import(b, len, cs, st, &info, &err);
		if (rc) {
			refused++;
			CHECK(strstr(err.msg, "byte ") != NULL || rc == TH_ECORRUPT ||
			      rc == TH_EINVAL);
		} else {
			thx_verify_report vr;
			CHECK_EQ_INT(thx_verify(cs, info.chain, NULL, NULL, &vr, NULL), 0);
			CHECK(vr.ok);
		}
		variants++;
		thx_store_close(cs);
		/* every prefix is refused */
		CHECK(thrp_import(orig, at, NULL, st, &info, &err) == TH_EINVAL);
	}
	CHECK(refused > variants / 2);
	if (strcmp(shm, dir)) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", shm);
		CHECK(system(cmd) == 0);
	}
	free(b);
	free(orig);
	ths_close(st);
}

TEST_MAIN()
