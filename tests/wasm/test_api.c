/*
 * test_api.c - the engine's public API around execution: linking and
 * import type checks, exports and custom sections, memory/table/global
 * objects, realm limits, and allocation failure at every step.
 */
#include "base/base.h"
#include "test.h"
#include "wat.h"

static const char *IMPORTS =
	"(module (import \"env\" \"mem\" (memory 1 2))"
	" (import \"env\" \"g\" (global (mut i32)))"
	" (import \"env\" \"t\" (table 2 funcref))"
	" (func (export \"bump\") (result i32)"
	"  (global.set 0 (i32.add (global.get 0) (i32.const 1)))"
	"  (i32.store (i32.const 0) (global.get 0)) (global.get 0)))";

TEST(imports_link_and_share_state)
{
	th_err err = { 0 };
	thw_module *m;
	size_t len;
	uint8_t *bin = wat_bin(IMPORTS, &len);
	REQUIRE(bin);
	/* append a custom section "hello" holding "world" */
	static const uint8_t custom[] = { 0, 11, 5, 'h', 'e', 'l', 'l', 'o',
					  'w', 'o', 'r', 'l', 'd' };
	uint8_t *full = realloc(bin, len + sizeof custom);
	REQUIRE(full);
	memcpy(full + len, custom, sizeof custom);
	REQUIRE(thw_module_new(full, len + sizeof custom, &m, &err) == 0);
	free(full);
	CHECK_EQ_INT(thw_module_import_count(m), 3);
	thw_importdesc d;
	thw_module_import(m, 0, &d);
	CHECK_EQ_STR(d.module, "env");
	CHECK_EQ_STR(d.name, "mem");
	CHECK_EQ_INT(d.type.kind, THW_EXTERN_MEMORY);
	CHECK_EQ_INT(d.type.limits.min, 1);
	CHECK_EQ_INT(d.type.limits.max, 2);
	size_t clen = 0;
	const uint8_t *cs = thw_module_custom_section(m, "hello", &clen);
	REQUIRE(cs);
	CHECK(clen == 5 && !memcmp(cs, "world", 5));
	CHECK(thw_module_custom_section(m, "absent", NULL) == NULL);

	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_extern im[3] = { { THW_EXTERN_MEMORY }, { THW_EXTERN_GLOBAL }, { THW_EXTERN_TABLE } };
	thw_limits_range ml = { 1, 2, true }, tl = { 2, 0, false };
	REQUIRE(thw_memory_new(r, ml, &im[0].of.memory, &err) == 0);
	REQUIRE(thw_global_new(r, THW_I32, true, v_i32(41), &im[1].of.global, &err) == 0);
	thw_val nul = { .type = THW_FUNCREF };
	REQUIRE(thw_table_new(r, THW_FUNCREF, tl, nul, &im[2].of.table, &err) == 0);
	thw_instance *inst;
	REQUIRE(thw_instantiate(r, m, im, 3, e, &inst, &err) == 0);
	thw_extern f;
	REQUIRE(thw_instance_export(inst, "bump", 4, &f));
	thw_val res;
	CHECK_EQ_INT(thw_call(e, f.of.func, NULL, 0, &res, 1), THW_STATE_DONE);
	CHECK_EQ_INT(res.of.i32, 42);
	CHECK_EQ_INT(thw_global_get(im[1].of.global).of.i32, 42);
	uint32_t stored = 0;
	CHECK_EQ_INT(thw_memory_read(im[0].of.memory, 0, &stored, 4), 0);
	CHECK_EQ_INT(stored, 42);
	CHECK_EQ_INT(thw_memory_read(im[0].of.memory, 65534, &stored, 4), TH_EINVAL);
	CHECK(thw_memory_ptr(im[0].of.memory, 65536, 1) == NULL);

	/* A memory whose maximum is too large does not match (1..2). */
	thw_limits_range big = { 1, 3, true };
	REQUIRE(thw_memory_new(r, big, &im[0].of.memory, &err) == 0);
	CHECK(thw_instantiate(r, m, im, 3, e, &inst, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "incompatible import type") != NULL);
	CHECK(strstr(err.msg, "\"mem\"") != NULL);
	/* An immutable global does not match a mutable import. */
	thw_limits_range ok = { 1, 2, true };
	REQUIRE(thw_memory_new(r, ok, &im[0].of.memory, &err) == 0);
	REQUIRE(thw_global_new(r, THW_I32, false, v_i32(0), &im[1].of.global, &err) == 0);
	CHECK(thw_instantiate(r, m, im, 3, e, &inst, &err) == TH_EINVAL);
	CHECK_EQ_INT(thw_global_set(im[1].of.global, v_i32(1)), TH_ESTATE);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

TEST(table_limits_refuse_growth)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module("(module (table 1 funcref)"
			   " (func (export \"grow\") (param i32) (result i32)"
			   "  (table.grow 0 (ref.null func) (local.get 0))))", &m, &err) == 0);
	thw_config cfg = { .max_table_elems = 100 };
	thw_realm *r;
	thw_exec *e;
	thw_instance *inst;
	REQUIRE(thw_realm_new(&cfg, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	REQUIRE(thw_instantiate(r, m, NULL, 0, e, &inst, &err) == 0);
	thw_extern g;
	REQUIRE(thw_instance_export(inst, "grow", 4, &g));
	thw_val a = v_i32(99), res;
	CHECK_EQ_INT(thw_call(e, g.of.func, &a, 1, &res, 1), THW_STATE_DONE);
	CHECK_EQ_INT(res.of.i32, 1);
	a = v_i32(1);
	CHECK_EQ_INT(thw_call(e, g.of.func, &a, 1, &res, 1), THW_STATE_DONE);
	CHECK_EQ_INT((int32_t)res.of.i32, -1);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

TEST(value_stack_limit_traps)
{
	th_err err = { 0 };
	thw_module *m;
	/* Each frame holds 200 locals: 10 frames exceed 1,000 slots. */
	REQUIRE(wat_module("(module (func $f (export \"f\") (param i32) (local i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64"
			   " i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)"
			   " (if (local.get 0) (then (call $f (i32.sub (local.get 0) (i32.const 1)))))))",
			   &m, &err) == 0);
	thw_config cfg = { .max_value_stack = 1000 };
	thw_realm *r;
	thw_exec *e;
	thw_instance *inst;
	REQUIRE(thw_realm_new(&cfg, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	REQUIRE(thw_instantiate(r, m, NULL, 0, e, &inst, &err) == 0);
	thw_extern f;
	REQUIRE(thw_instance_export(inst, "f", 1, &f));
	thw_val a = v_i32(3);
	CHECK_EQ_INT(thw_call(e, f.of.func, &a, 1, NULL, 0), THW_STATE_DONE);
	a = v_i32(10);
	CHECK_EQ_INT(thw_call(e, f.of.func, &a, 1, NULL, 0), THW_STATE_TRAPPED);
	CHECK_EQ_INT(thw_exec_trap(e)->code, THW_TRAP_STACK_EXHAUSTED);
	/* The exec is reusable after a trap. */
	a = v_i32(2);
	CHECK_EQ_INT(thw_call(e, f.of.func, &a, 1, NULL, 0), THW_STATE_DONE);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

TEST(instance_limit_per_realm)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module("(module (memory 1))", &m, &err) == 0);
	thw_config cfg = { .max_instances = 3 };
	thw_realm *r;
	thw_instance *inst;
	REQUIRE(thw_realm_new(&cfg, &r, &err) == 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(thw_instantiate(r, m, NULL, 0, NULL, &inst, &err), 0);
	CHECK_EQ_INT(thw_instantiate(r, m, NULL, 0, NULL, &inst, &err), TH_ELIMIT);
	thw_realm_free(r);
	thw_module_release(m);
}

static thw_hostret host_fail(thw_caller *c, void *ctx, const thw_val *args,
			     thw_val *results)
{
	(void)ctx;
	(void)args;
	(void)results;
	return thw_call_trap(c, "no such file");
}

static thw_hostret host_reenter(thw_caller *c, void *ctx, const thw_val *args,
				thw_val *results)
{
	(void)args;
	(void)results;
	th_err err = { 0 };
	/* Re-entering the running exec is refused, not a corruption. */
	if (thw_exec_start(thw_caller_exec(c), *(thw_func **)ctx, NULL, 0, &err) != TH_ESTATE)
		return thw_call_trap(c, "re-entry was accepted");
	return THW_HOST_OK;
}

TEST(reentering_a_running_exec_is_refused)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module("(module (import \"h\" \"cb\" (func $cb))"
			   " (func $run (export \"run\") (call $cb)))", &m, &err) == 0);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_functype t = { 0, 0, NULL, NULL };
	thw_extern im = { THW_EXTERN_FUNC };
	thw_func *self = NULL;
	REQUIRE(thw_func_new_host(r, &t, host_reenter, &self, "cb", &im.of.func, &err) == 0);
	self = im.of.func;
	thw_instance *inst;
	REQUIRE(thw_instantiate(r, m, &im, 1, e, &inst, &err) == 0);
	thw_extern run;
	REQUIRE(thw_instance_export(inst, "run", 3, &run));
	CHECK_EQ_INT(thw_call(e, run.of.func, NULL, 0, NULL, 0), THW_STATE_DONE);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

TEST(host_trap_message_and_backtrace)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module("(module (import \"h\" \"fail\" (func $fail))"
			   " (func $run (export \"run\") (call $fail)))", &m, &err) == 0);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_functype t = { 0, 0, NULL, NULL };
	thw_extern im = { THW_EXTERN_FUNC };
	REQUIRE(thw_func_new_host(r, &t, host_fail, NULL, "fail", &im.of.func, &err) == 0);
	thw_instance *inst;
	REQUIRE(thw_instantiate(r, m, &im, 1, e, &inst, &err) == 0);
	thw_extern run;
	REQUIRE(thw_instance_export(inst, "run", 3, &run));
	CHECK_EQ_INT(thw_call(e, run.of.func, NULL, 0, NULL, 0), THW_STATE_TRAPPED);
	const thw_trap *tr = thw_exec_trap(e);
	CHECK_EQ_INT(tr->code, THW_TRAP_HOST);
	CHECK_EQ_STR(tr->message, "no such file");
	REQUIRE(tr->nframes == 1);
	CHECK_EQ_STR(tr->frames[0].func_name, "run");
	/* Wrong argument count is refused before running. */
	thw_val x = v_i32(1);
	CHECK_EQ_INT(thw_exec_start(e, run.of.func, &x, 1, &err), TH_EINVAL);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_module_release(m);
}

static const char *OOM_MOD =
	"(module (memory 1) (table 2 funcref) (elem (i32.const 0) $f)"
	" (global $g (mut i64) (i64.const 5)) (data (i32.const 0) \"abc\")"
	" (func $f (export \"f\") (param i32) (result i32)"
	"  (block (loop (br_if 1 (i32.eqz (local.get 0)))"
	"   (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0))) (i32.const 7))"
	" (func (export \"g\") (result i32) (call_indirect (param i32) (result i32)"
	"  (i32.const 3) (i32.const 0))))";

/* Allocation failure anywhere makes the operation fail, never crash, and
 * leaks nothing (ASan); with enough successful allocations it works. */
TEST(allocation_failure_at_every_step)
{
	size_t len;
	uint8_t *bin = wat_bin(OOM_MOD, &len);
	REQUIRE(bin);
	bool succeeded = false;
	for (long n = 0; n < 400 && !succeeded; n++) {
		th_err err = { 0 };
		thw_module *m = NULL;
		thw_realm *r = NULL;
		thw_exec *e = NULL;
		thw_instance *inst;
		th_alloc_fail_after(n);
		if (thw_module_new(bin, len, &m, &err) == 0 &&
		    thw_realm_new(NULL, &r, &err) == 0 &&
		    thw_exec_new(r, &e, &err) == 0 &&
		    thw_instantiate(r, m, NULL, 0, e, &inst, &err) == 0) {
			thw_extern g;
			thw_val res;
			if (thw_instance_export(inst, "g", 1, &g) &&
			    thw_call(e, g.of.func, NULL, 0, &res, 1) == THW_STATE_DONE) {
				CHECK_EQ_INT(res.of.i32, 7);
				succeeded = true;
			}
		} else {
			CHECK(err.msg[0] != '\0');
		}
		th_alloc_fail_after(-1);
		thw_exec_free(e);
		thw_realm_free(r);
		thw_module_release(m);
	}
	CHECK(succeeded);
	free(bin);
}

TEST(module_is_shared_across_threads_by_refcount)
{
	th_err err = { 0 };
	thw_module *m;
	REQUIRE(wat_module("(module)", &m, &err) == 0);
	CHECK(thw_module_retain(m) == m);
	thw_module_release(m);
	thw_module_release(m);
	thw_module_release(NULL);
}

TEST_MAIN()
