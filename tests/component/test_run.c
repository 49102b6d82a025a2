/*
 * test_run.c - the counter actor (built by the SDK recipe, run by
 * test_component's constructor or here) instantiated on the engine in both
 * forms, init and handle-send called through thc_* with the runtime.log
 * import answered by the host; and a log answered later (PENDING).
 */
#include <sys/stat.h>

#include "test.h"

#include "base/base.h"
#include "theater/component.h"
#include "theater/wasi.h"

#define OUT "build/test-component-run"

static void sh(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "FAILED (exit %d): %s\n", rc, cmd);
		exit(1);
	}
}

__attribute__((constructor)) static void build_first(void)
{
	sh("mkdir -p " OUT);
	sh("sh sdk/c/build.sh examples/counter/counter.c " OUT " >/dev/null");
	sh("CORE_ONLY=1 sh sdk/c/build.sh tests/component/wasi_actor.c " OUT " >/dev/null");
	sh("CORE_ONLY=1 sh sdk/c/build.sh tests/component/sdk_actor.c " OUT " >/dev/null");
	sh("sh sdk/c/build.sh tests/component/sup_actor.c " OUT " supervisor-actor >/dev/null");
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	REQUIRE(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	REQUIRE(b && fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static char logged[8][128];
static int nlogged;

static thc_hostret host_log(thc_hostcall *call, void *ctx, const thc_val *args, uint32_t n,
			    thc_val *result)
{
	(void)call;
	(void)ctx;
	(void)result;
	REQUIRE(n == 1 && args[0].kind == THC_STRING);
	if (nlogged < 8)
		snprintf(logged[nlogged++], 128, "%s", args[0].of.str.ptr);
	return THC_HOST_OK;
}

static thc_hostret host_log_later(thc_hostcall *call, void *ctx, const thc_val *args,
				  uint32_t n, thc_val *result)
{
	host_log(call, ctx, args, n, result);
	return THC_HOST_PENDING;
}

static thc_val opt_state(const char *s)
{
	thc_val v, b;
	if (!s) {
		thc_val_case(THC_OPTION, 0, NULL, &v);
		return v;
	}
	thc_val_bytes((const uint8_t *)s, strlen(s), &b);
	thc_val_case(THC_OPTION, 1, &b, &v);
	return v;
}

/* The new state inside result<tuple<option<list<u8>>>, string>. */
static void expect_state(const thc_val *r, const char *want)
{
	REQUIRE(r->kind == THC_RESULT);
	if (r->of.var.disc != 0)
		fprintf(stderr, "actor error: %s\n", r->of.var.payload->of.str.ptr);
	REQUIRE(r->of.var.disc == 0);
	const thc_val *tup = r->of.var.payload;
	REQUIRE(tup->kind == THC_TUPLE && tup->of.agg.n == 1);
	const thc_val *opt = &tup->of.agg.items[0];
	REQUIRE(opt->kind == THC_OPTION && opt->of.var.disc == 1);
	const thc_val *bytes = opt->of.var.payload;
	REQUIRE(bytes->kind == THC_BYTES);
	CHECK(bytes->of.bytes.len == strlen(want) &&
	      memcmp(bytes->of.bytes.ptr, want, strlen(want)) == 0);
}

static void run_counter(const char *file, thc_form form)
{
	size_t n;
	uint8_t *b = slurp(file, &n);
	thc_component *c;
	th_err err = { 0 };
	int rc = thc_component_load(b, n, &c, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK_EQ_INT(thc_component_form(c), form);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	thc_host_import imps[] = { { "theater:simple/runtime", "log", host_log, NULL } };
	thc_instance *inst;
	rc = thc_instantiate(r, c, imps, 1, e, &inst, &err);
	if (rc)
		fprintf(stderr, "instantiate: %s\n", err.msg);
	REQUIRE(rc == 0);
	int init = thc_component_find_export(c, "theater:simple/actor", "init");
	int send = thc_component_find_export(c, "theater:simple/message-server-client", "handle-send");
	REQUIRE(init >= 0 && send >= 0);
	thc_val args[2], res;
	args[0] = opt_state(NULL);
	thc_val_agg(THC_TUPLE, 1, &args[1]);
	thc_val_string("actor-1", 7, &args[1].of.agg.items[0]);
	rc = thc_call(inst, e, init, args, 2, &res, &err);
	if (rc)
		fprintf(stderr, "init: %s\n", err.msg);
	REQUIRE(rc == 0);
	expect_state(&res, "0");
	CHECK_EQ_STR(logged[0], "counter actor-1 starting");
	thc_val_release(&res);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	for (int i = 1; i <= 3; i++) {
		char st[8];
		snprintf(st, sizeof st, "%d", i - 1);
		args[0] = opt_state(st);
		thc_val_agg(THC_TUPLE, 1, &args[1]);
		thc_val_bytes((const uint8_t *)"tick", 4, &args[1].of.agg.items[0]);
		rc = thc_call(inst, e, send, args, 2, &res, &err);
		if (rc)
			fprintf(stderr, "handle-send: %s\n", err.msg);
		REQUIRE(rc == 0);
		snprintf(st, sizeof st, "%d", i);
		expect_state(&res, st);
		thc_val_release(&res);
		thc_val_release(&args[0]);
		thc_val_release(&args[1]);
	}
	CHECK_EQ_INT(nlogged, 4);
	CHECK_EQ_STR(logged[3], "count = 3");
	/* Wrong argument types are refused before the guest runs. */
	args[0] = thc_val_uint(THC_U32, 1);
	CHECK(thc_call(inst, e, init, args, 1, &res, &err) == TH_EINVAL);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thc_component_free(c);
	free(b);
}

TEST(counter_component_runs)
{
	run_counter(OUT "/counter.component.wasm", THC_FORM_COMPONENT);
}

TEST(counter_core_module_runs)
{
	run_counter(OUT "/counter.core.wasm", THC_FORM_CORE);
}

TEST(missing_host_import_is_named)
{
	size_t n;
	uint8_t *b = slurp(OUT "/counter.component.wasm", &n);
	thc_component *c;
	th_err err = { 0 };
	REQUIRE(thc_component_load(b, n, &c, &err) == 0);
	thw_realm *r;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	thc_instance *inst;
	CHECK(thc_instantiate(r, c, NULL, 0, NULL, &inst, &err) == TH_ENOTFOUND);
	CHECK_EQ_STR(err.msg, "unresolved import theater:simple/runtime#log: no host function");
	thw_realm_free(r);
	thc_component_free(c);
	free(b);
}

TEST(pending_host_call_completed_later)
{
	size_t n;
	uint8_t *b = slurp(OUT "/counter.component.wasm", &n);
	thc_component *c;
	th_err err = { 0 };
	REQUIRE(thc_component_load(b, n, &c, &err) == 0);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	thc_host_import imps[] = { { "theater:simple/runtime", "log", host_log_later, NULL } };
	thc_instance *inst;
	REQUIRE(thc_instantiate(r, c, imps, 1, e, &inst, &err) == 0);
	int init = thc_component_find_export(c, "theater:simple/actor", "init");
	thc_val args[2], res, none = { 0 };
	args[0] = opt_state(NULL);
	thc_val_agg(THC_TUPLE, 1, &args[1]);
	thc_val_string("late", 4, &args[1].of.agg.items[0]);
	REQUIRE(thc_call_start(inst, e, init, args, 2, &err) == 0);
	CHECK_EQ_INT(thw_exec_run(e), THW_STATE_PENDING);
	CHECK_EQ_STR(logged[0], "counter late starting");
	REQUIRE(thc_hostcall_complete(inst, e, &none, NULL, &err) == 0);
	CHECK_EQ_INT(thw_exec_run(e), THW_STATE_DONE);
	REQUIRE(thc_call_finish(inst, e, &res, &err) == 0);
	expect_state(&res, "0");
	thc_val_release(&res);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thc_component_free(c);
	free(b);
}

/* Core-module form: wrong core signatures are world mismatches naming the
 * function, the expected lowering and what was found.
 *   (module (import "theater:simple/runtime" "log" (func (param i32)))
 *     (memory (export "memory") 1)
 *     (func (export "theater:simple/actor#init") (param i32) (result i32) i32.const 0))
 * and the same without the import. */
static const uint8_t bad_import[] = {
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x02, 0x60,
	0x01, 0x7f, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x02, 0x1e, 0x01, 0x16,
	0x74, 0x68, 0x65, 0x61, 0x74, 0x65, 0x72, 0x3a, 0x73, 0x69, 0x6d, 0x70,
	0x6c, 0x65, 0x2f, 0x72, 0x75, 0x6e, 0x74, 0x69, 0x6d, 0x65, 0x03, 0x6c,
	0x6f, 0x67, 0x00, 0x00, 0x03, 0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00,
	0x01, 0x07, 0x26, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02,
	0x00, 0x19, 0x74, 0x68, 0x65, 0x61, 0x74, 0x65, 0x72, 0x3a, 0x73, 0x69,
	0x6d, 0x70, 0x6c, 0x65, 0x2f, 0x61, 0x63, 0x74, 0x6f, 0x72, 0x23, 0x69,
	0x6e, 0x69, 0x74, 0x00, 0x01, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00,
	0x0b
};
static const uint8_t bad_export[] = {
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60,
	0x01, 0x7f, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00,
	0x01, 0x07, 0x26, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02,
	0x00, 0x19, 0x74, 0x68, 0x65, 0x61, 0x74, 0x65, 0x72, 0x3a, 0x73, 0x69,
	0x6d, 0x70, 0x6c, 0x65, 0x2f, 0x61, 0x63, 0x74, 0x6f, 0x72, 0x23, 0x69,
	0x6e, 0x69, 0x74, 0x00, 0x00, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00,
	0x0b
};

TEST(core_form_world_mismatch)
{
	thc_component *c = NULL;
	th_err err = { 0 };
	CHECK(thc_component_load(bad_import, sizeof bad_import, &c, &err) == TH_EINVAL);
	CHECK_EQ_STR(err.msg, "world mismatch: import theater:simple/runtime#log: expected core "
			      "(i32 i32) -> () (lowered from func(msg: string)), found (i32) -> ()");
	CHECK(thc_component_load(bad_export, sizeof bad_export, &c, &err) == TH_EINVAL);
	CHECK_EQ_STR(err.msg, "world mismatch: export theater:simple/actor#init: expected core "
			      "(i32 i32 i32 i32 i32) -> (i32) (lowered from func(state: "
			      "option<list<u8>>, params: tuple<string>) -> "
			      "result<tuple<option<list<u8>>>, string>), found (i32) -> (i32)");
	CHECK(c == NULL);
}

/* A core-module actor that also imports WASI (stdio) runs with a WASI
 * context; without one, the WASI import is named as unresolved. */
TEST(core_module_with_wasi_imports)
{
	size_t n;
	uint8_t *b = slurp(OUT "/wasi_actor.core.wasm", &n);
	thc_component *c;
	th_err err = { 0 };
	int rc = thc_component_load(b, n, &c, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.msg);
	REQUIRE(rc == 0);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	thc_host_import imps[] = { { "theater:simple/runtime", "log", host_log, NULL } };
	thc_instance *inst;
	CHECK(thc_instantiate(r, c, imps, 1, e, &inst, &err) == TH_ENOTFOUND);
	CHECK(strstr(err.msg, "wasi_snapshot_preview1.") != NULL);
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	thw_wasi_config cfg = { .stdin_fd = 0, .stdout_fd = fds[1], .stderr_fd = 2,
				.custom_stdio = true };
	thw_wasi *w;
	REQUIRE(thw_wasi_new(&cfg, &w, &err) == 0);
	rc = thc_instantiate_wasi(r, c, imps, 1, w, e, &inst, &err);
	if (rc)
		fprintf(stderr, "instantiate: %s\n", err.msg);
	REQUIRE(rc == 0);
	int init = thc_component_find_export(c, "theater:simple/actor", "init");
	thc_val args[2], res;
	args[0] = opt_state(NULL);
	thc_val_agg(THC_TUPLE, 1, &args[1]);
	thc_val_string("w-1", 3, &args[1].of.agg.items[0]);
	rc = thc_call(inst, e, init, args, 2, &res, &err);
	if (rc)
		fprintf(stderr, "init: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK(res.kind == THC_RESULT && res.of.var.disc == 0);
	CHECK_EQ_STR(logged[0], "wasi actor w-1, 42");
	close(fds[1]);
	char out[64] = { 0 };
	CHECK(read(fds[0], out, sizeof out - 1) > 0);
	CHECK_EQ_STR(out, "stdout from w-1\n");
	thc_val_release(&res);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thw_wasi_free(w);
	thc_component_free(c);
	free(b);
}

/* Host side for sdk_actor: canned answers of each result layout. */
static thc_hostret canned(thc_hostcall *call, void *ctx, const thc_val *args, uint32_t n,
			  thc_val *result)
{
	const char *name = ctx;
	thc_val p, q;
	(void)args;
	(void)n;
	if (strcmp(name, "request") == 0) {
		thc_val_bytes((const uint8_t *)"pong", 4, &p);
		thc_val_case(THC_RESULT, 0, &p, result);
	} else if (strcmp(name, "random-range") == 0) {
		p = thc_val_uint(THC_U64, 17);
		thc_val_case(THC_RESULT, 0, &p, result);
	} else if (strcmp(name, "get-by-label") == 0) {
		thc_val_agg(THC_RECORD, 1, &q);
		thc_val_string("abc123", 6, &q.of.agg.items[0]);
		thc_val_case(THC_OPTION, 1, &q, &p);
		thc_val_case(THC_RESULT, 0, &p, result);
	} else if (strcmp(name, "get-var") == 0) {
		thc_val_string("/home/a", 7, &p);
		thc_val_case(THC_OPTION, 1, &p, result);
	} else if (strcmp(name, "list-outstanding-requests") == 0) {
		thc_val_agg(THC_LIST, 2, result);
		thc_val_string("r1", 2, &result->of.agg.items[0]);
		thc_val_string("r22", 3, &result->of.agg.items[1]);
	} else if (strcmp(name, "now") == 0) {
		*result = thc_val_uint(THC_U64, 1700000000123ull);
	} else if (strcmp(name, "sleep") == 0) {
		thc_val_string("denied", 6, &p);
		thc_val_case(THC_RESULT, 1, &p, result);
	} else {
		return thc_hostcall_trap(call, "unexpected import");
	}
	return THC_HOST_OK;
}

TEST(sdk_imports_match_world_and_lower_results)
{
	size_t n;
	uint8_t *b = slurp(OUT "/sdk_actor.core.wasm", &n);
	thc_component *c;
	th_err err = { 0 };
	int rc = thc_component_load(b, n, &c, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.msg);
	REQUIRE(rc == 0);
	uint32_t ni = thc_component_import_count(c);
	CHECK_EQ_INT(ni, 28);
	thc_host_import *imps = calloc(ni, sizeof(*imps));
	for (uint32_t i = 0; i < ni; i++) {
		thc_funcref f;
		thc_component_import(c, i, &f);
		imps[i] = (thc_host_import){ f.iface, f.name, canned, (void *)f.name };
	}
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	thc_instance *inst;
	REQUIRE(thc_instantiate(r, c, imps, ni, e, &inst, &err) == 0);
	int send = thc_component_find_export(c, "theater:simple/message-server-client", "handle-send");
	thc_val args[2], res;
	args[0] = opt_state(NULL);
	thc_val_agg(THC_TUPLE, 1, &args[1]);
	thc_val_bytes((const uint8_t *)"go", 2, &args[1].of.agg.items[0]);
	rc = thc_call(inst, e, send, args, 2, &res, &err);
	if (rc)
		fprintf(stderr, "handle-send: %s\n", err.msg);
	REQUIRE(rc == 0);
	expect_state(&res, "pong|17|abc123|/home/a|2,r1,r22|1700000000123|denied");
	thc_val_release(&res);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thc_component_free(c);
	free(imps);
	free(b);
}

/* Out of memory at every allocation from load to a finished init: each
 * step fails with an error, the process carries on. */
TEST(allocation_failure_load_to_call)
{
	size_t n;
	uint8_t *b = slurp(OUT "/counter.component.wasm", &n);
	thc_hostret (*fn)(thc_hostcall *, void *, const thc_val *, uint32_t, thc_val *) = host_log;
	thc_host_import imps[] = { { "theater:simple/runtime", "log", fn, NULL } };
	th_err e0 = { 0 };
	thc_component *c0;
	REQUIRE(thc_component_load(b, n, &c0, &e0) == 0); /* world parsed before failures */
	thc_component_free(c0);
	int failures = 0;
	for (long k = 0;; k += 1 + k / 16) {
		th_err err = { 0 };
		thc_component *c = NULL;
		thw_realm *r = NULL;
		thw_exec *e = NULL;
		thc_instance *inst = NULL;
		thc_val args[2] = { 0 }, res = { 0 };
		th_alloc_fail_after(k);
		int rc = thc_component_load(b, n, &c, &err);
		if (!rc)
			rc = thw_realm_new(NULL, &r, &err);
		if (!rc)
			rc = thw_exec_new(r, &e, &err);
		if (!rc) {
			thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
			rc = thc_instantiate(r, c, imps, 1, e, &inst, &err);
		}
		if (!rc) {
			args[0] = opt_state(NULL);
			rc = thc_val_agg(THC_TUPLE, 1, &args[1]);
			if (!rc)
				rc = thc_val_string("x", 1, &args[1].of.agg.items[0]);
			if (!rc && args[0].kind == THC_OPTION)
				rc = thc_call(inst, e, 0, args, 2, &res, &err);
			else if (!rc)
				rc = TH_ENOMEM;
		}
		th_alloc_fail_after(-1);
		thc_val_release(&res);
		thc_val_release(&args[0]);
		thc_val_release(&args[1]);
		thc_instance_free(inst);
		thw_exec_free(e);
		thw_realm_free(r);
		thc_component_free(c);
		if (rc == 0)
			break;
		CHECK(err.msg[0] != 0 || rc == TH_ENOMEM);
		failures++;
		REQUIRE(k < 1000000);
	}
	CHECK(failures > 10);
	free(b);
}

/* A guest whose cabi_realloc never returns: lowering the arguments traps
 * with "out of fuel" (bounded auxiliary fuel) instead of hanging.
 *   (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
 *     (loop $l (br $l)) i32.const 0) and a trivial actor#init */
static const uint8_t looping_realloc[] = {
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x12, 0x02, 0x60, 0x04, 0x7f,
	0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x05, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f,
	0x03, 0x03, 0x02, 0x00, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x35, 0x03, 0x06,
	0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x0c, 0x63, 0x61, 0x62, 0x69, 0x5f,
	0x72, 0x65, 0x61, 0x6c, 0x6c, 0x6f, 0x63, 0x00, 0x00, 0x19, 0x74, 0x68, 0x65, 0x61,
	0x74, 0x65, 0x72, 0x3a, 0x73, 0x69, 0x6d, 0x70, 0x6c, 0x65, 0x2f, 0x61, 0x63, 0x74,
	0x6f, 0x72, 0x23, 0x69, 0x6e, 0x69, 0x74, 0x00, 0x01, 0x0a, 0x10, 0x02, 0x09, 0x00,
	0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x00, 0x0b
};

TEST(looping_realloc_runs_out_of_fuel)
{
	thc_component *c;
	th_err err = { 0 };
	int rc = thc_component_load(looping_realloc, sizeof looping_realloc, &c, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.msg);
	REQUIRE(rc == 0);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thc_instance *inst;
	REQUIRE(thc_instantiate(r, c, NULL, 0, e, &inst, &err) == 0);
	thc_val args[2], res;
	args[0] = opt_state(NULL);
	thc_val_agg(THC_TUPLE, 1, &args[1]);
	thc_val_string("id", 2, &args[1].of.agg.items[0]);
	CHECK(thc_call(inst, e, 0, args, 2, &res, &err) == TH_EINVAL);
	CHECK(strstr(err.msg, "cabi_realloc trapped: out of fuel") != NULL);
	if (!strstr(err.msg, "out of fuel"))
		fprintf(stderr, "  got: %s\n", err.msg);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thc_component_free(c);
}

/* supervisor-handlers through the SDK, as a jco-built component. */
TEST(supervisor_handlers_component)
{
	size_t n;
	uint8_t *b = slurp(OUT "/sup_actor.component.wasm", &n);
	thc_component *c;
	th_err err = { 0 };
	int rc = thc_component_load(b, n, &c, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.msg);
	REQUIRE(rc == 0);
	CHECK_EQ_INT(thc_component_export_count(c), 9);
	thw_realm *r;
	thw_exec *e;
	REQUIRE(thw_realm_new(NULL, &r, &err) == 0);
	REQUIRE(thw_exec_new(r, &e, &err) == 0);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	thc_instance *inst;
	REQUIRE(thc_instantiate(r, c, NULL, 0, e, &inst, &err) == 0);
	int herr = thc_component_find_export(c, "theater:simple/supervisor-handlers", "handle-child-error");
	int hexit = thc_component_find_export(c, "theater:simple/supervisor-handlers", "handle-child-exit");
	REQUIRE(herr >= 0 && hexit >= 0);
	/* (child-id, wit-actor-error { error-type: internal (5), data: some("boom") }) */
	thc_val args[2], res, rec, et, data, bytes;
	args[0] = opt_state(NULL);
	thc_val_agg(THC_TUPLE, 2, &args[1]);
	thc_val_string("kid", 3, &args[1].of.agg.items[0]);
	thc_val_agg(THC_RECORD, 2, &rec);
	thc_val_case(THC_ENUM, 5, NULL, &et);
	rec.of.agg.items[0] = et;
	thc_val_bytes((const uint8_t *)"boom", 4, &bytes);
	thc_val_case(THC_OPTION, 1, &bytes, &data);
	rec.of.agg.items[1] = data;
	args[1].of.agg.items[1] = rec;
	rc = thc_call(inst, e, herr, args, 2, &res, &err);
	if (rc)
		fprintf(stderr, "handle-child-error: %s\n", err.msg);
	REQUIRE(rc == 0);
	expect_state(&res, "error:kid:5:boom");
	thc_val_release(&res);
	thc_val_release(&args[1]);
	/* (child-id, none) */
	thc_val_agg(THC_TUPLE, 2, &args[1]);
	thc_val_string("kid2", 4, &args[1].of.agg.items[0]);
	thc_val_case(THC_OPTION, 0, NULL, &args[1].of.agg.items[1]);
	REQUIRE(thc_call(inst, e, hexit, args, 2, &res, &err) == 0);
	expect_state(&res, "exit:kid2:none");
	thc_val_release(&res);
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thc_component_free(c);
	free(b);
}

TEST_MAIN()
