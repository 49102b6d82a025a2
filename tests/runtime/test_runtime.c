/*
 * White-box tests of the runtime's life cycle that do not need to run
 * WebAssembly: creating a runtime, spawn failures (bad manifest, missing
 * or invalid component, world mismatch), unknown actors, ids, the value
 * codec, request ids. Each checks the error and the chain events.
 */
#include "component/types.h"
#include "rtest.h"
#include "runtime/value.h"

#define MANIFEST "name = \"t\"\nversion = \"0.1.0\"\ncomponent = \"%s\"\n" \
	"[[handler]]\ntype = \"message-server\"\n"

TEST(runtime_new_makes_home_and_records_start)
{
	char path[400];
	struct stat st;
	rtest_home();
	thr_runtime *rt = rtest_runtime(2);
	snprintf(path, sizeof path, "%s/home/store", rtest_dir);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	snprintf(path, sizeof path, "%s/home/chains", rtest_dir);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	char *t = rtest_types(rt, THX_RUNTIME_CHAIN);
	CHECK_EQ_STR(t, "runtime.started");
	free(t);
	thr_runtime_free(rt);
}

TEST(runtime_needs_a_home)
{
	thr_options o = { 0 };
	thr_runtime *rt = NULL;
	th_err err = { 0 };
	CHECK_EQ_INT(thr_runtime_new(&o, &rt, &err), TH_EINVAL);
	CHECK(rt == NULL);
	CHECK(strstr(err.msg, "home") != NULL);
}

TEST(bad_manifest_names_file_line_and_column)
{
	char id[THR_ID_LEN + 1], path[400];
	th_err err = { 0 };
	rtest_home();
	rtest_writef("m.toml", "name = \"t\"\nversion = \"1\"\ncomponent = 7\n");
	thr_runtime *rt = rtest_runtime(1);
	snprintf(path, sizeof path, "%s/m.toml", rtest_dir);
	thr_spawn_opts so = { .manifest_path = path };
	CHECK(thr_spawn(rt, &so, id, &err) != 0);
	CHECK_EQ_STR(id, "");
	CHECK(strstr(err.msg, "m.toml:3:") != NULL);
	CHECK(strstr(err.msg, "component") != NULL);
	char *t = rtest_types(rt, THX_RUNTIME_CHAIN);
	CHECK_EQ_STR(t, "runtime.started,spawn.failed");
	free(t);
	thr_runtime_free(rt);
}

TEST(spawn_needs_exactly_one_manifest)
{
	char id[THR_ID_LEN + 1];
	th_err err = { 0 };
	rtest_home();
	thr_runtime *rt = rtest_runtime(1);
	thr_spawn_opts so = { .manifest_path = "a", .manifest_text = "b" };
	CHECK_EQ_INT(thr_spawn(rt, &so, id, &err), TH_EINVAL);
	thr_spawn_opts none = { 0 };
	CHECK_EQ_INT(thr_spawn(rt, &none, id, &err), TH_EINVAL);
	thr_runtime_free(rt);
}

TEST(missing_component_fails_the_actor_and_is_recorded)
{
	char id[THR_ID_LEN + 1], text[512];
	th_err err = { 0 };
	thr_actor_info info;
	rtest_home();
	thr_runtime *rt = rtest_runtime(1);
	snprintf(text, sizeof text, MANIFEST, "nowhere.wasm");
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	CHECK(thr_spawn(rt, &so, id, &err) != 0);
	CHECK(strstr(err.msg, "nowhere.wasm") != NULL);
	REQUIRE(strlen(id) == THR_ID_LEN);
	REQUIRE(thr_actor_info_get(rt, id, &info, &err) == 0);
	CHECK_EQ_INT(info.status, THR_FAILED);
	CHECK(strstr(info.reason, "nowhere.wasm") != NULL);
	char *t = rtest_types(rt, id);
	CHECK_EQ_STR(t, "actor.spawning,actor.failed");
	free(t);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.failed", &n);
	CHECK(rtest_has(d, n, "missing-component"));
	free(d);
	CHECK_EQ_INT(rtest_count(rt, THX_RUNTIME_CHAIN, "actor.failed"), 1);
	thr_stats s;
	thr_runtime_stats(rt, &s);
	CHECK_EQ_INT(s.spawned, 1);
	CHECK_EQ_INT(s.failed, 1);
	CHECK_EQ_INT(s.live, 0);
	thr_runtime_free(rt);
}

TEST(invalid_component_fails_with_a_clear_error)
{
	char id[THR_ID_LEN + 1], text[512];
	th_err err = { 0 };
	rtest_home();
	rtest_write("junk.wasm", "\0asm\x01\0\0\0\x99garbage", 16);
	thr_runtime *rt = rtest_runtime(1);
	snprintf(text, sizeof text, MANIFEST, "junk.wasm");
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	CHECK(thr_spawn(rt, &so, id, &err) != 0);
	CHECK(strstr(err.msg, "section") != NULL || strstr(err.msg, "offset") != NULL);
	size_t n;
	uint8_t *d = rtest_event(rt, id, "actor.failed", &n);
	CHECK(rtest_has(d, n, "invalid-component"));
	free(d);
	thr_runtime_free(rt);
}

TEST(world_mismatch_names_the_function)
{
	char id[THR_ID_LEN + 1], text[512];
	th_err err = { 0 };
	rtest_home();
	rtest_wat("wrong_init");
	thr_runtime *rt = rtest_runtime(1);
	snprintf(text, sizeof text, MANIFEST, "wrong_init.wasm");
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	CHECK(thr_spawn(rt, &so, id, &err) != 0);
	CHECK(strstr(err.msg, "world mismatch") != NULL);
	CHECK(strstr(err.msg, "init") != NULL);
	char *t = rtest_types(rt, id);
	CHECK_EQ_STR(t, "actor.spawning,actor.failed");
	free(t);
	/* The runtime and other spawns go on. */
	CHECK(thr_spawn(rt, &so, id, &err) != 0);
	thr_stats s;
	thr_runtime_stats(rt, &s);
	CHECK_EQ_INT(s.failed, 2);
	thr_runtime_free(rt);
}

TEST(component_is_put_in_the_store_and_pinned)
{
	char id[THR_ID_LEN + 1], text[512];
	th_err err = { 0 };
	rtest_home();
	rtest_wat("wrong_init");
	thr_runtime *rt = rtest_runtime(1);
	snprintf(text, sizeof text, MANIFEST, "wrong_init.wasm");
	thr_spawn_opts so = { .manifest_text = text, .base_dir = rtest_dir };
	thr_spawn(rt, &so, id, &err);
	/* Even though it failed to load, its bytes went through the Store. */
	ths_stats st;
	ths_get_stats(thr_runtime_store(rt), &st);
	CHECK(st.objects_written >= 1);
	thr_runtime_free(rt);
}

TEST(unknown_actor_is_an_error_and_recorded)
{
	th_err err = { 0 };
	uint8_t *reply;
	size_t n;
	rtest_home();
	thr_runtime *rt = rtest_runtime(1);
	CHECK_EQ_INT(thr_send(rt, "no-such-actor", "x", 1, 0, &err), TH_ENOTFOUND);
	CHECK(strstr(err.msg, "no-such-actor") != NULL);
	CHECK_EQ_INT(thr_request(rt, "nope", "x", 1, 100, &reply, &n, &err), TH_ENOTFOUND);
	CHECK_EQ_INT(thr_stop(rt, "nope", &err), TH_ENOTFOUND);
	CHECK_EQ_INT(rtest_count(rt, THX_RUNTIME_CHAIN, "message.undeliverable"), 2);
	thr_runtime_free(rt);
}

TEST(uuid4_has_the_right_shape)
{
	char a[THR_ID_LEN + 1], b[THR_ID_LEN + 1];
	rtu_uuid4(a);
	rtu_uuid4(b);
	CHECK_EQ_INT(strlen(a), 36);
	CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	CHECK(a[14] == '4');
	CHECK(strchr("89ab", a[19]) != NULL);
	CHECK(strcmp(a, b) != 0);
}

TEST(request_ids_parse_strictly)
{
	uint64_t n;
	CHECK(rtq_parse_id("r17", 3, 'r', &n) && n == 17);
	CHECK(!rtq_parse_id("c17", 3, 'r', &n));
	CHECK(!rtq_parse_id("r", 1, 'r', &n));
	CHECK(!rtq_parse_id("r1x", 3, 'r', &n));
	CHECK(!rtq_parse_id("r99999999999999999999", 21, 'r', &n));
}

/* ---- the value codec --------------------------------------------------- */

static void roundtrip(const thc_type *t, const thc_val *v)
{
	th_cbor_enc e;
	th_cbor_dec d;
	thc_val back = { 0 };
	th_err err = { 0 };
	th_cbor_enc_init(&e, NULL, 0);
	rtv_encode(&e, v);
	REQUIRE(e.err == 0);
	CHECK(th_cbor_check_deterministic(e.buf, e.len, &err));
	th_cbor_dec_init(&d, e.buf, e.len);
	CHECK_EQ_INT(rtv_decode(&d, t, &back, &err), 0);
	CHECK(th_cbor_at_end(&d));
	CHECK(thc_val_equal(v, &back));
	thc_val_release(&back);
	th_cbor_enc_release(&e);
}

TEST(values_roundtrip_through_cbor)
{
	thct_arena ar = { 0 };
	/* result<tuple<option<list<u8>>, s32, string, char, f64, bool>, string> */
	thc_type *lu8 = thct_new(&ar, THC_LIST, 1, false);
	lu8->types[0] = thct_prim(THC_U8);
	REQUIRE(thct_finish(&ar, lu8, NULL) == 0);
	thc_type *opt = thct_new(&ar, THC_OPTION, 2, false);
	opt->types[1] = lu8;
	REQUIRE(thct_finish(&ar, opt, NULL) == 0);
	thc_type *tup = thct_new(&ar, THC_TUPLE, 6, false);
	tup->types[0] = opt;
	tup->types[1] = thct_prim(THC_S32);
	tup->types[2] = thct_prim(THC_STRING);
	tup->types[3] = thct_prim(THC_CHAR);
	tup->types[4] = thct_prim(THC_F64);
	tup->types[5] = thct_prim(THC_BOOL);
	REQUIRE(thct_finish(&ar, tup, NULL) == 0);
	thc_type *res = thct_new(&ar, THC_RESULT, 2, false);
	res->types[0] = tup;
	res->types[1] = thct_prim(THC_STRING);
	REQUIRE(thct_finish(&ar, res, NULL) == 0);

	thc_val t = { 0 }, b = { 0 }, o = { 0 }, r = { 0 };
	REQUIRE(thc_val_agg(THC_TUPLE, 6, &t) == 0);
	REQUIRE(thc_val_bytes((const uint8_t *)"\x01\x02", 2, &b) == 0);
	REQUIRE(thc_val_case(THC_OPTION, 1, &b, &o) == 0);
	t.of.agg.items[0] = o;
	t.of.agg.items[1] = thc_val_int(THC_S32, -5);
	REQUIRE(thc_val_string("héllo", strlen("héllo"), &t.of.agg.items[2]) == 0);
	t.of.agg.items[3] = (thc_val){ .kind = THC_CHAR, .of.ch = 0x1F600 };
	t.of.agg.items[4] = (thc_val){ .kind = THC_F64, .of.f64 = 0.25 };
	t.of.agg.items[5] = thc_val_bool(true);
	REQUIRE(thc_val_case(THC_RESULT, 0, &t, &r) == 0);
	roundtrip(res, &r);
	thc_val_release(&r);

	thc_val none = { 0 }, er = { 0 }, s = { 0 };
	REQUIRE(thc_val_case(THC_OPTION, 0, NULL, &none) == 0);
	roundtrip(opt, &none);
	REQUIRE(thc_val_string("bad", 3, &s) == 0);
	REQUIRE(thc_val_case(THC_RESULT, 1, &s, &er) == 0);
	roundtrip(res, &er);
	thc_val_release(&er);
	thct_arena_release(&ar);
}

TEST(value_decode_rejects_what_does_not_fit)
{
	th_cbor_dec d;
	thc_val v;
	th_err err = { 0 };
	/* 300 as a u8 */
	const uint8_t big[] = { 0x19, 0x01, 0x2c };
	th_cbor_dec_init(&d, big, sizeof big);
	CHECK_EQ_INT(rtv_decode(&d, thct_prim(THC_U8), &v, &err), TH_EINVAL);
	CHECK(strstr(err.msg, "range") != NULL);
	/* a surrogate as a char */
	const uint8_t sur[] = { 0x19, 0xd8, 0x00 };
	th_cbor_dec_init(&d, sur, sizeof sur);
	CHECK_EQ_INT(rtv_decode(&d, thct_prim(THC_CHAR), &v, &err), TH_EINVAL);
	/* text where a bool is expected */
	const uint8_t txt[] = { 0x61, 'a' };
	th_cbor_dec_init(&d, txt, sizeof txt);
	CHECK_EQ_INT(rtv_decode(&d, thct_prim(THC_BOOL), &v, &err), TH_EINVAL);
}

TEST_MAIN()
