/*
 * White-box tests of how a finished handler's result is read. Results of
 * type result<tuple<option<list<u8>>>, string> are read in place in the
 * guest's return area (actor.c, finish_inplace) rather than lifted: these
 * tests hold that path to what lifting gives. The recorded export.result
 * must be the bytes rtv_encode gives for the lifted value; the committed
 * state must be the same; and every malformed area (misaligned, a bad
 * discriminant, a list out of bounds) must fail the actor with the trap
 * the generic path reports. The actor is tests/runtime/actors/results.wat,
 * whose post-return clobbers the area (a reader must have copied it).
 */
#include "base/cbor.h"
#include "rtest.h"
#include "runtime/value.h"

static thr_runtime *setup(char id[THR_ID_LEN + 1])
{
	th_err err = { 0 };
	rtest_home();
	rtest_wat("results");
	thr_runtime *rt = rtest_runtime(1);
	thr_spawn_opts so = {
		.manifest_text = "name = \"results\"\nversion = \"1\"\n"
				 "component = \"results.wasm\"\n"
				 "[[handler]]\ntype = \"runtime\"\n",
		.base_dir = rtest_dir,
	};
	if (thr_spawn(rt, &so, id, &err))
		fprintf(stderr, "spawn: %s\n", err.msg);
	REQUIRE(id[0] != 0);
	return rt;
}

/* The data of the last event of that type in the actor's chain (the
 * caller frees), or NULL. */
static uint8_t *last_event(thr_runtime *rt, const char *id, const char *type,
			   size_t *len)
{
	thx_chain *c;
	uint8_t *out = NULL;
	REQUIRE(thx_chain_open(thr_runtime_chains(rt), id, NULL, false, &c, NULL) == 0);
	for (uint64_t i = thx_chain_count(c); i-- > 0 && !out;) {
		thx_event ev = { 0 };
		REQUIRE(thx_get(c, i, &ev, NULL) == 0);
		if (!strcmp(ev.type, type)) {
			out = malloc(ev.len ? ev.len : 1);
			REQUIRE(out != NULL);
			memcpy(out, ev.data, ev.len);
			*len = ev.len;
		}
		thx_event_release(&ev);
	}
	return out;
}

/* rtv_encode of ok(tuple(option)) with the state given (NULL: none): what
 * lifting the result and encoding it records. */
static size_t lifted(const char *state, size_t n, uint8_t *out, size_t cap)
{
	thc_val b = { 0 }, opt = { 0 }, tup = { 0 }, res = { 0 };
	th_cbor_enc e;
	if (state) {
		REQUIRE(thc_val_bytes((const uint8_t *)state, n, &b) == 0);
		REQUIRE(thc_val_case(THC_OPTION, 1, &b, &opt) == 0);
	} else {
		REQUIRE(thc_val_case(THC_OPTION, 0, NULL, &opt) == 0);
	}
	REQUIRE(thc_val_agg(THC_TUPLE, 1, &tup) == 0);
	tup.of.agg.items[0] = opt;
	REQUIRE(thc_val_case(THC_RESULT, 0, &tup, &res) == 0);
	th_cbor_enc_init(&e, out, cap);
	rtv_encode(&e, &res);
	thc_val_release(&res);
	REQUIRE(e.err == 0);
	return e.len;
}

static void send1(thr_runtime *rt, const char *id, const char *m)
{
	th_err err = { 0 };
	if (thr_send(rt, id, m, strlen(m), THR_SEND_WAIT, &err))
		fprintf(stderr, "send: %s\n", err.msg);
	REQUIRE(thr_quiesce(rt, 0, &err) == 0);
}

/* After sending m: the last export.result ends with the lifted encoding
 * of the state, and the committed state is it. */
static void check_ok(thr_runtime *rt, const char *id, const char *m,
		     const char *state, size_t n)
{
	uint8_t want[64], *got, *s;
	size_t wn = lifted(state, n, want, sizeof want), gn = 0, sn;
	bool has;
	send1(rt, id, m);
	got = last_event(rt, id, "export.result", &gn);
	REQUIRE(got != NULL);
	CHECK(gn > wn && !memcmp(got + gn - wn, want, wn));
	free(got);
	REQUIRE(thr_get_state(rt, id, &s, &sn, &has, NULL) == 0);
	CHECK_EQ_INT(has, state != NULL);
	CHECK_EQ_INT(sn, state ? n : 0);
	if (state && n)
		CHECK(!memcmp(s, state, n));
	thr_free(s);
}

TEST(results_read_in_place_record_what_lifting_gives)
{
	char id[THR_ID_LEN + 1];
	thr_runtime *rt = setup(id);
	check_ok(rt, id, "s", "abc", 3);
	check_ok(rt, id, "n", NULL, 0);
	check_ok(rt, id, "z", "", 0);
	check_ok(rt, id, "s", "abc", 3); /* a new state of another size */
	check_ok(rt, id, "s", "abc", 3); /* the same size: written in place */
	/* init went the same way: its result is the same type */
	size_t n;
	uint8_t *d = last_event(rt, id, "export.result", &n);
	REQUIRE(d != NULL);
	free(d);
	thr_runtime_free(rt);
}

/* A malformed result fails the actor with the generic path's trap. */
static void check_trap(const char *m, const char *why)
{
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	thr_runtime *rt = setup(id);
	send1(rt, id, "s");
	send1(rt, id, m);
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK_EQ_INT(info.status, THR_FAILED);
	if (!strstr(info.reason, why))
		fprintf(stderr, "reason for '%s': %s\n", m, info.reason);
	CHECK(strstr(info.reason, why) != NULL);
	char *t = rtest_types(rt, id);
	/* no result recorded for the malformed one: the call, then the failure */
	CHECK(strstr(t, "message.received,export.result,message.received,export.call,"
			"actor.failed") != NULL);
	free(t);
	thr_runtime_free(rt);
}

TEST(a_misaligned_return_area_traps)
{
	check_trap("a", "misaligned");
}

TEST(an_option_discriminant_out_of_range_traps)
{
	check_trap("o", "discriminant 2 out of range");
}

TEST(a_result_discriminant_out_of_range_traps)
{
	check_trap("r", "discriminant 2 out of range");
}

TEST(a_state_list_out_of_bounds_traps)
{
	check_trap("b", "out of bounds");
	check_trap("k", "out of bounds");
}

TEST(an_error_result_fails_with_its_text)
{
	char id[THR_ID_LEN + 1];
	thr_actor_info info;
	thr_runtime *rt = setup(id);
	send1(rt, id, "e");
	REQUIRE(thr_actor_info_get(rt, id, &info, NULL) == 0);
	CHECK_EQ_INT(info.status, THR_FAILED);
	CHECK(strstr(info.reason, "returned an error: bad") != NULL);
	char *t = rtest_types(rt, id);
	CHECK(strstr(t, "message.received,export.result,actor.failed") != NULL);
	free(t);
	thr_runtime_free(rt);
}

TEST_MAIN()
