/*
 * test_exec.c - the engine end to end on small modules: control flow,
 * calls, memory, traps with backtraces, fuel (trap and yield), pending host
 * calls resumed later, limits.
 */
#include "test.h"
#include "wat.h"

static const char *FAC =
	"(module (func $fac (export \"fac\") (param i64) (result i64)"
	"  (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 1))"
	"   (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))"
	" (func (export \"fac_iter\") (param i64) (result i64) (local i64)"
	"  (local.set 1 (i64.const 1))"
	"  (block (loop (br_if 1 (i64.eqz (local.get 0)))"
	"    (local.set 1 (i64.mul (local.get 0) (local.get 1)))"
	"    (local.set 0 (i64.sub (local.get 0) (i64.const 1))) (br 0)))"
	"  (local.get 1)))";

TEST(factorial_recursive_and_iterative)
{
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w, FAC, &err) == 0);
	thw_val a = v_i64(20), r;
	CHECK_EQ_INT(wat_call(&w, "fac", &a, 1, &r, 1), THW_STATE_DONE);
	CHECK(r.of.i64 == 2432902008176640000ull);
	CHECK_EQ_INT(wat_call(&w, "fac_iter", &a, 1, &r, 1), THW_STATE_DONE);
	CHECK(r.of.i64 == 2432902008176640000ull);
	wat_free(&w);
}

TEST(multi_value_blocks_and_br_table)
{
	wat_env w;
	th_err err = { 0 };
	int rc = wat_load(&w,
		"(module (func (export \"swap\") (param i32 i32) (result i32 i32)"
		"  (local.get 1) (local.get 0))"
		" (func (export \"sel\") (param i32) (result i32)"
		"  (block (block (block (br_table 0 1 2 (local.get 0))) (return (i32.const 10)))"
		"   (return (i32.const 11))) (i32.const 12))"
		" (func (export \"blk\") (result i32)"
		"  (i32.const 1) (i32.const 2)"
		"  (block (param i32 i32) (result i32) (i32.add)) ))", &err);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	REQUIRE(rc == 0);
	thw_val a[2] = { v_i32(1), v_i32(2) }, r[2];
	CHECK_EQ_INT(wat_call(&w, "swap", a, 2, r, 2), THW_STATE_DONE);
	CHECK_EQ_INT(r[0].of.i32, 2);
	CHECK_EQ_INT(r[1].of.i32, 1);
	for (uint32_t i = 0; i < 5; i++) {
		thw_val x = v_i32(i);
		CHECK_EQ_INT(wat_call(&w, "sel", &x, 1, r, 1), THW_STATE_DONE);
		CHECK_EQ_INT(r[0].of.i32, i < 2 ? 10 + i : 12);
	}
	CHECK_EQ_INT(wat_call(&w, "blk", NULL, 0, r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r[0].of.i32, 3);
	wat_free(&w);
}

TEST(memory_load_store_and_oob_trap)
{
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w,
		"(module (memory 1) (data (i32.const 8) \"\\01\\02\\03\\04\")"
		" (func (export \"ld\") (param i32) (result i32) (i32.load (local.get 0)))"
		" (func (export \"st\") (param i32 i32) (i32.store offset=4 (local.get 0) (local.get 1))))",
		&err) == 0);
	thw_val a = v_i32(8), r;
	CHECK_EQ_INT(wat_call(&w, "ld", &a, 1, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 0x04030201);
	a = v_i32(65533);
	CHECK_EQ_INT(wat_call(&w, "ld", &a, 1, &r, 1), THW_STATE_TRAPPED);
	CHECK_EQ_STR(thw_exec_trap(w.exec)->message, "out of bounds memory access");
	thw_val s[2] = { v_i32(65528), v_i32(7) };
	CHECK_EQ_INT(wat_call(&w, "st", s, 2, NULL, 0), THW_STATE_DONE);
	s[0] = v_i32(65529);
	CHECK_EQ_INT(wat_call(&w, "st", s, 2, NULL, 0), THW_STATE_TRAPPED);
	wat_free(&w);
}

TEST(trap_backtrace_names_functions)
{
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w,
		"(module (func $inner (i32.div_s (i32.const 1) (i32.const 0)) drop)"
		" (func $outer (export \"go\") (call $inner)))", &err) == 0);
	CHECK_EQ_INT(wat_call(&w, "go", NULL, 0, NULL, 0), THW_STATE_TRAPPED);
	const thw_trap *t = thw_exec_trap(w.exec);
	REQUIRE(t);
	CHECK_EQ_INT(t->code, THW_TRAP_DIV_ZERO);
	CHECK_EQ_STR(t->message, "integer divide by zero");
	REQUIRE(t->nframes == 2);
	CHECK_EQ_STR(t->frames[0].func_name, "inner");
	CHECK_EQ_STR(t->frames[1].func_name, "outer");
	wat_free(&w);
}

TEST(unbounded_recursion_is_call_stack_exhausted)
{
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w, "(module (func $f (export \"f\") (call $f)))", &err) == 0);
	CHECK_EQ_INT(wat_call(&w, "f", NULL, 0, NULL, 0), THW_STATE_TRAPPED);
	CHECK_EQ_STR(thw_exec_trap(w.exec)->message, "call stack exhausted");
	wat_free(&w);
}

static const char *LOOP =
	"(module (func (export \"spin\") (param i32) (result i32)"
	"  (loop (local.set 0 (i32.sub (local.get 0) (i32.const 1)))"
	"   (br_if 0 (local.get 0))) (i32.const 42))"
	" (func (export \"forever\") (loop (br 0))))";

TEST(fuel_trap_and_yield_resume)
{
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w, LOOP, &err) == 0);
	thw_exec_set_fuel(w.exec, 1000, THW_FUEL_TRAP);
	CHECK_EQ_INT(wat_call(&w, "forever", NULL, 0, NULL, 0), THW_STATE_TRAPPED);
	CHECK_EQ_STR(thw_exec_trap(w.exec)->message, "out of fuel");
	CHECK_EQ_INT(thw_exec_trap(w.exec)->code, THW_TRAP_OUT_OF_FUEL);

	/* Yield: 10,000 iterations with a small budget, topped up each time. */
	thw_exec_set_fuel(w.exec, 500, THW_FUEL_YIELD);
	thw_val a = v_i32(10000), r;
	thw_func *f = wat_func(&w, "spin");
	REQUIRE(thw_exec_start(w.exec, f, &a, 1, &err) == 0);
	int yields = 0;
	thw_state st;
	while ((st = thw_exec_run(w.exec)) == THW_STATE_YIELDED) {
		yields++;
		thw_exec_set_fuel(w.exec, 500, THW_FUEL_YIELD);
	}
	CHECK_EQ_INT(st, THW_STATE_DONE);
	CHECK(yields > 50);
	CHECK_EQ_INT(thw_exec_results(w.exec, &r, 1), 1);
	CHECK_EQ_INT(r.of.i32, 42);
	wat_free(&w);
}

/* thw_call_i32: i32 in, i32 out, on the short path; another signature, a
 * busy exec or too many arguments fail as thw_call fails them; fuel and
 * traps behave as in any call. */
TEST(call_i32_short_path_and_its_fallbacks)
{
	static const char *M =
		"(module (func (export \"sub\") (param i32 i32) (result i32)"
		"  (i32.sub (local.get 0) (local.get 1)))"
		" (func (export \"none\") (param i32))"
		" (func (export \"wide\") (param i64) (result i32) (i32.wrap_i64 (local.get 0)))"
		" (func (export \"boom\") (param i32) (result i32) unreachable)"
		" (func (export \"spin\") (param i32) (result i32) (loop (br 0)) (i32.const 0)))";
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w, M, &err) == 0);
	uint32_t a[9] = { 50, 8, 0, 0, 0, 0, 0, 0, 0 }, r = 0;
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "sub"), a, 2, &r), THW_STATE_DONE);
	CHECK_EQ_INT(r, 42);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "none"), a, 1, NULL), THW_STATE_DONE);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "none"), a, 1, &r), THW_STATE_TRAPPED);
	CHECK(strstr(thw_exec_trap(w.exec)->message, "one i32") != NULL);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "sub"), a, 1, &r), THW_STATE_TRAPPED);
	CHECK(strstr(thw_exec_trap(w.exec)->message, "1 arguments given") != NULL);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "wide"), a, 1, &r), THW_STATE_TRAPPED);
	CHECK(strstr(thw_exec_trap(w.exec)->message, "wrong type") != NULL);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "sub"), a, 9, &r), THW_STATE_TRAPPED);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "boom"), a, 1, &r), THW_STATE_TRAPPED);
	CHECK_EQ_INT(thw_exec_trap(w.exec)->code, THW_TRAP_UNREACHABLE);
	thw_exec_set_fuel(w.exec, 1000, THW_FUEL_TRAP);
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "spin"), a, 1, &r), THW_STATE_TRAPPED);
	CHECK_EQ_INT(thw_exec_trap(w.exec)->code, THW_TRAP_OUT_OF_FUEL);
	/* the exec is usable again after each */
	thw_exec_set_fuel(w.exec, UINT64_MAX, THW_FUEL_TRAP);
	a[0] = 7;
	a[1] = 9;
	CHECK_EQ_INT(thw_call_i32(w.exec, wat_func(&w, "sub"), a, 2, &r), THW_STATE_DONE);
	CHECK_EQ_INT(r, (uint32_t)-2);
	wat_free(&w);
}

/* The loop tail "x = x + 1; br_if (x != N)" is one fused instruction; a
 * yield on its back-edge must not apply the step twice. */
TEST(yield_on_fused_counter_branch_is_exact)
{
	wat_env w;
	th_err err = { 0 };
	REQUIRE(wat_load(&w,
		"(module (func (export \"count\") (result i32) (local i32 i32)"
		"  (loop (local.set 1 (i32.add (local.get 1) (i32.const 3)))"
		"   (br_if 0 (i32.ne (local.tee 0 (i32.add (local.get 0) (i32.const 1)))"
		"                    (i32.const 10000))))"
		"  (i32.add (local.get 1) (local.get 0))))", &err) == 0);
	thw_exec_set_fuel(w.exec, 37, THW_FUEL_YIELD);
	thw_func *f = wat_func(&w, "count");
	REQUIRE(thw_exec_start(w.exec, f, NULL, 0, &err) == 0);
	thw_state st;
	int yields = 0;
	while ((st = thw_exec_run(w.exec)) == THW_STATE_YIELDED) {
		yields++;
		thw_exec_set_fuel(w.exec, 37, THW_FUEL_YIELD);
	}
	CHECK_EQ_INT(st, THW_STATE_DONE);
	CHECK(yields > 100);
	thw_val r;
	thw_exec_results(w.exec, &r, 1);
	CHECK_EQ_INT(r.of.i32, 30000 + 10000);
	wat_free(&w);
}

static int pending_calls;

static thw_hostret host_later(thw_caller *c, void *ctx, const thw_val *args,
			      thw_val *results)
{
	(void)c;
	(void)ctx;
	(void)args;
	(void)results;
	pending_calls++;
	return THW_HOST_PENDING;
}

static thw_hostret host_add(thw_caller *c, void *ctx, const thw_val *args,
			    thw_val *results)
{
	(void)c;
	(void)ctx;
	results[0] = v_i32(args[0].of.i32 + args[1].of.i32);
	return THW_HOST_OK;
}

TEST(pending_host_call_resumes)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module(
		"(module (import \"h\" \"later\" (func $later (param i32) (result i32)))"
		" (import \"h\" \"add\" (func $add (param i32 i32) (result i32)))"
		" (func (export \"go\") (param i32) (result i32)"
		"  (call $add (call $later (local.get 0)) (i32.const 100))))", &m, &err) == 0);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	uint8_t p1[] = { THW_I32 }, p2[] = { THW_I32, THW_I32 };
	thw_functype t1 = { 1, 1, p1, p1 }, t2 = { 2, 1, p2, p1 };
	thw_extern im[2] = { { THW_EXTERN_FUNC }, { THW_EXTERN_FUNC } };
	REQUIRE(thw_func_new_host(r, &t1, host_later, NULL, "later", &im[0].of.func, &err) == 0);
	REQUIRE(thw_func_new_host(r, &t2, host_add, NULL, "add", &im[1].of.func, &err) == 0);
	thw_instance *inst;
	REQUIRE(thw_instantiate(r, m, im, 2, e, &inst, &err) == 0);
	thw_extern go;
	REQUIRE(thw_instance_export(inst, "go", 2, &go));
	thw_val a = v_i32(5), res;
	REQUIRE(thw_exec_start(e, go.of.func, &a, 1, &err) == 0);
	CHECK_EQ_INT(thw_exec_run(e), THW_STATE_PENDING);
	CHECK_EQ_INT(thw_exec_run(e), THW_STATE_PENDING); /* not completed yet */
	CHECK_EQ_INT(pending_calls, 1);
	thw_val ans = v_i32(7);
	CHECK_EQ_INT(thw_exec_complete(e, &ans, NULL), 0);
	CHECK_EQ_INT(thw_exec_run(e), THW_STATE_DONE);
	thw_exec_results(e, &res, 1);
	CHECK_EQ_INT(res.of.i32, 107);
	/* Completing with a trap message traps the invocation. */
	REQUIRE(thw_exec_start(e, go.of.func, &a, 1, &err) == 0);
	CHECK_EQ_INT(thw_exec_run(e), THW_STATE_PENDING);
	CHECK_EQ_INT(thw_exec_complete(e, NULL, "denied"), 0);
	CHECK_EQ_INT(thw_exec_state(e), THW_STATE_TRAPPED);
	CHECK_EQ_STR(thw_exec_trap(e)->message, "denied");
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

TEST(memory_grow_respects_realm_limit)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module("(module (memory 1) (func (export \"g\") (param i32) (result i32)"
			   " (memory.grow (local.get 0))))", &m, &err) == 0);
	thw_config cfg = { .max_memory_pages = 4 };
	thw_realm *r;
	thw_exec *e;
	thw_instance *inst;
	REQUIRE(thw_realm_new(&cfg, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	REQUIRE(thw_instantiate(r, m, NULL, 0, e, &inst, &err) == 0);
	thw_extern g;
	REQUIRE(thw_instance_export(inst, "g", 1, &g));
	thw_val a = v_i32(2), res;
	CHECK_EQ_INT(thw_call(e, g.of.func, &a, 1, &res, 1), THW_STATE_DONE);
	CHECK_EQ_INT(res.of.i32, 1);
	CHECK_EQ_INT(thw_call(e, g.of.func, &a, 1, &res, 1), THW_STATE_DONE);
	CHECK_EQ_INT((int32_t)res.of.i32, -1);
	a = v_i32(1);
	CHECK_EQ_INT(thw_call(e, g.of.func, &a, 1, &res, 1), THW_STATE_DONE);
	CHECK_EQ_INT(res.of.i32, 3);
	CHECK_EQ_INT(thw_memory_pages(thw_instance_memory(inst, 0)), 4);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

TEST(decode_errors_name_section_and_offset)
{
	th_err err = { 0 };
	thw_module *m;
	static const uint8_t bad_magic[] = { 0, 'a', 's', 'n', 1, 0, 0, 0 };
	CHECK(thw_module_new(bad_magic, sizeof bad_magic, &m, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "magic header not detected") != NULL);
	static const uint8_t simd[] = { 0, 'a', 's', 'm', 1, 0, 0, 0,
					1, 5, 1, 0x60, 1, 0x7b, 0 };
	CHECK(thw_module_new(simd, sizeof simd, &m, &err) == TH_EINVAL);
	CHECK_EQ_STR(err.msg, "type section at offset 0xd: unsupported feature: simd");
	CHECK(wat_module("(module (func (result i32) (i64.const 1)))", &m, &err) != 0);
	CHECK(strstr(err.msg, "type mismatch") != NULL);
	CHECK(strstr(err.msg, "code section at offset 0x") != NULL);
}

/* The translator fuses common sequences (array indexing, loads with an
 * added address, load + arithmetic, compare + branch); the results must
 * be those of the unfused instructions, wrap-around included. */
TEST(fused_forms_keep_wasm_semantics)
{
	wat_env w;
	th_err err = { 0 };
	int rc = wat_load(&w,
		"(module (memory 1) (data (i32.const 0) \"\\10\\00\\00\\00\\20\\00\\00\\00\")"
		" (func (export \"idx\") (param i32 i32) (result i32)"
		"  (i32.add (local.get 0) (i32.shl (local.get 1) (i32.const 2))))"
		" (func (export \"idx2\") (param i32 i32) (result i32)"
		"  (i32.add (i32.shl (local.get 1) (i32.const 3)) (local.get 0)))"
		" (func (export \"idxk\") (param i32) (result i32)"
		"  (i32.add (i32.shl (local.get 0) (i32.const 4)) (i32.const -16)))"
		" (func (export \"ldrr\") (param i32 i32) (result i32)"
		"  (i32.load (i32.add (local.get 0) (local.get 1))))"
		" (func (export \"ldop\") (param i32 i32) (result i32)"
		"  (i32.sub (local.get 1) (i32.load offset=4 (local.get 0))))"
		" (func (export \"rot\") (param i32) (result i32)"
		"  (i32.xor (i32.rotl (local.get 0) (i32.const 36)) (i32.rotr (local.get 0) (i32.const 4))))"
		" (func (export \"rot64\") (param i64) (result i64)"
		"  (i64.rotl (local.get 0) (i64.const 68)))"
		" (func (export \"cmpbr\") (param i32 i32) (result i32)"
		"  (if (result i32) (i32.lt_s (local.get 0) (local.get 1)) (then (i32.const 1)) (else (i32.const 2)))))",
		&err);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	REQUIRE(rc == 0);
	thw_val a[2], r;
	a[0] = v_i32(100); a[1] = v_i32(0x40000001);
	CHECK_EQ_INT(wat_call(&w, "idx", a, 2, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, (uint32_t)(100u + (0x40000001u << 2)));
	CHECK_EQ_INT(wat_call(&w, "idx2", a, 2, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, (uint32_t)(100u + (0x40000001u << 3)));
	a[0] = v_i32(1);
	CHECK_EQ_INT(wat_call(&w, "idxk", a, 1, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 0);
	/* 0xfffffffc + 8 wraps to 4: the load reads address 4 */
	a[0] = v_i32(0xfffffffc); a[1] = v_i32(8);
	CHECK_EQ_INT(wat_call(&w, "ldrr", a, 2, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 0x20);
	a[0] = v_i32(0); a[1] = v_i32(0x25);
	CHECK_EQ_INT(wat_call(&w, "ldop", a, 2, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 5);
	a[0] = v_i32(65533);
	CHECK_EQ_INT(wat_call(&w, "ldop", a, 2, &r, 1), THW_STATE_TRAPPED);
	a[0] = v_i32(0x80000001);
	CHECK_EQ_INT(wat_call(&w, "rot", a, 1, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 0x00000018u ^ 0x18000000u);
	a[0] = v_i64(0x8000000000000001ull);
	CHECK_EQ_INT(wat_call(&w, "rot64", a, 1, &r, 1), THW_STATE_DONE);
	CHECK(r.of.i64 == 0x18ull);
	a[0] = v_i32((uint32_t)-5); a[1] = v_i32(3);
	CHECK_EQ_INT(wat_call(&w, "cmpbr", a, 2, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 1);
	a[0] = v_i32(3); a[1] = v_i32(3);
	CHECK_EQ_INT(wat_call(&w, "cmpbr", a, 2, &r, 1), THW_STATE_DONE);
	CHECK_EQ_INT(r.of.i32, 2);
	wat_free(&w);
}

/* Found by fuzz_wasm: a start function whose type index is unknown. */
TEST(start_function_with_unknown_type_is_invalid_not_a_crash)
{
	static const uint8_t bin[] = {
		0, 'a', 's', 'm', 1, 0, 0, 0,
		0, 5, 0, 0, 0x60, 0, 0,      /* custom section, empty name */
		3, 2, 1, 0,                  /* one function of type 0: none exist */
		8, 1, 0,                     /* start 0 */
		10, 5, 1, 3, 0, 0x01, 0x0b   /* body: nop end */
	};
	thw_module *m = NULL;
	th_err err = { 0 };
	CHECK_EQ_INT(thw_module_new(bin, sizeof bin, &m, &err), TH_EINVAL);
	CHECK(m == NULL);
	CHECK(strstr(err.msg, "unknown type 0") != NULL);
}

/* Every binary in tests/wasm/regress/ once crashed the decoder (found by
 * fuzz_wasm); each must now be rejected with a message. */
TEST(regress_binaries_are_rejected_not_crashes)
{
	static const char *const files[] = {
		"tests/wasm/regress/start_section_unknown_func_type.wasm",
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		FILE *f = fopen(files[i], "rb");
		REQUIRE(f);
		uint8_t buf[65536];
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		thw_module *m = NULL;
		th_err err = { 0 };
		CHECK_EQ_INT(thw_module_new(buf, n, &m, &err), TH_EINVAL);
		CHECK(err.msg[0] != '\0');
		thw_module_release(m);
	}
}

TEST_MAIN()
