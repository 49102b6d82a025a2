/*
 * fuzz_wasm.c - libFuzzer target for the WebAssembly engine: arbitrary bytes
 * go through decode + validate + prepare (thw_module_new); an accepted module
 * is instantiated with made-up imports of the declared types, and every
 * exported function is called with zero arguments under tight limits and a
 * small fuel budget in yield mode, resumed a few times (exercising
 * suspension and resumption), then abandoned with its exec if still running. Anything may be rejected or trap; nothing may crash,
 * leak, hang, or break the engine's contracts (checked with abort()).
 *
 *   make fuzz                      (bounded run of every target)
 *   build/fuzz/fuzz_wasm -max_total_time=60 CORPUS_DIR SEED_DIR
 * Seeds: the spec suite's .wasm files (make fuzz gathers them).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "theater/wasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUEL 20000  /* for the start function */
#define SLICE 5000  /* fuel per resumption */
#define SLICES 4
#define MAX_VALS 64

/* Imported functions answer zeros of their result types. */
static thw_hostret zero_host(thw_caller *c, void *ctx, const thw_val *args,
			     thw_val *results)
{
	const thw_functype *t = ctx;
	(void)c;
	(void)args;
	for (uint32_t i = 0; i < t->nresults; i++) {
		memset(&results[i], 0, sizeof results[i]);
		results[i].type = t->results[i];
	}
	return THW_HOST_OK;
}

static thw_val zero_of(uint8_t type)
{
	thw_val v;
	memset(&v, 0, sizeof v);
	v.type = type;
	return v;
}

/* A made-up object for import i, or false when none can be made. */
static bool make_import(thw_realm *r, const thw_importdesc *d, thw_extern *out,
			thw_functype *ft)
{
	th_err err = { 0 };
	const thw_externtype *t = &d->type;
	out->kind = t->kind;
	switch (t->kind) {
	case THW_EXTERN_FUNC:
		/* ft (whose arrays point into the module) outlives the realm. */
		*ft = t->func;
		return thw_func_new_host(r, ft, zero_host, ft, "fuzz", &out->of.func,
					 &err) == 0;
	case THW_EXTERN_TABLE:
		return thw_table_new(r, t->elemtype, t->limits, zero_of(t->elemtype),
				     &out->of.table, &err) == 0;
	case THW_EXTERN_MEMORY:
		return thw_memory_new(r, t->limits, &out->of.memory, &err) == 0;
	case THW_EXTERN_GLOBAL:
		return thw_global_new(r, t->valtype, t->mut, zero_of(t->valtype),
				      &out->of.global, &err) == 0;
	}
	return false;
}

static void call_exports(thw_instance *inst, thw_module *m, thw_realm *r,
			 thw_exec **ep)
{
	thw_exec *e = *ep;
	uint32_t n = thw_module_export_count(m);
	for (uint32_t i = 0; i < n; i++) {
		thw_exportdesc d;
		thw_extern x;
		thw_module_export(m, i, &d);
		if (!thw_instance_export(inst, d.name, d.name_len, &x))
			abort(); /* a declared export must be found */
		if (x.kind != d.type.kind)
			abort();
		if (x.kind == THW_EXTERN_GLOBAL) {
			(void)thw_global_get(x.of.global);
			continue;
		}
		if (x.kind == THW_EXTERN_MEMORY) {
			uint8_t b;
			size_t sz = thw_memory_size(x.of.memory);
			if (sz && thw_memory_read(x.of.memory, sz - 1, &b, 1) != 0)
				abort();
			if (thw_memory_read(x.of.memory, sz, &b, 1) == 0)
				abort(); /* one past the end must be refused */
			continue;
		}
		if (x.kind != THW_EXTERN_FUNC)
			continue;
		thw_functype ft;
		thw_func_type(x.of.func, &ft);
		if (ft.nparams > MAX_VALS || ft.nresults > MAX_VALS)
			continue;
		thw_val args[MAX_VALS], res[MAX_VALS];
		for (uint32_t k = 0; k < ft.nparams; k++)
			args[k] = zero_of(ft.params[k]);
		th_err err = { 0 };
		thw_exec_set_fuel(e, SLICE, THW_FUEL_YIELD);
		if (thw_exec_start(e, x.of.func, args, ft.nparams, &err) != 0)
			abort(); /* zero arguments of the right types are valid */
		thw_state st = thw_exec_run(e);
		for (int k = 1; k < SLICES && st == THW_STATE_YIELDED; k++) {
			thw_exec_set_fuel(e, SLICE, THW_FUEL_YIELD);
			st = thw_exec_run(e);
		}
		if (st == THW_STATE_YIELDED) {
			/* Abandon the invocation: a fresh exec for the next one. */
			thw_exec_free(e);
			*ep = e = NULL;
			if (thw_exec_new(r, ep, &err) != 0)
				return;
			e = *ep;
			continue;
		}
		if (st == THW_STATE_TRAPPED) {
			const thw_trap *t = thw_exec_trap(e);
			if (!t || t->code == THW_TRAP_NONE || !t->message)
				abort(); /* a trap must say what it was */
			/* The spec lets an instance continue after a trap, but the
			 * API says to discard it: stop using this one. */
			return;
		}
		if (st != THW_STATE_DONE)
			abort();
		if (thw_exec_results(e, res, MAX_VALS) != ft.nresults)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	thw_module *m = NULL;
	th_err err = { 0 };
	if (thw_module_new(data, size, &m, &err) != 0) {
		if (m || !err.msg[0])
			abort(); /* a rejection must leave no module and say why */
		return 0;
	}
	thw_config cfg = { 0 };
	cfg.max_memory_pages = 64;
	cfg.max_table_elems = 10000;
	cfg.max_call_depth = 300;
	cfg.max_value_stack = 1 << 16;
	cfg.max_instances = 4;
	thw_realm *r = NULL;
	thw_exec *e = NULL;
	thw_extern *imps = NULL;
	thw_functype *types = NULL;
	uint32_t ni = thw_module_import_count(m);
	if (thw_realm_new(&cfg, &r, &err) != 0 || thw_exec_new(r, &e, &err) != 0)
		goto out;
	imps = calloc(ni ? ni : 1, sizeof *imps);
	types = calloc(ni ? ni : 1, sizeof *types);
	if (!imps || !types)
		goto out;
	for (uint32_t i = 0; i < ni; i++) {
		thw_importdesc d;
		thw_module_import(m, i, &d);
		if (!make_import(r, &d, &imps[i], &types[i]))
			goto out; /* e.g. a memory above the limit: refused is fine */
	}
	thw_instance *inst = NULL;
	thw_exec_set_fuel(e, FUEL, THW_FUEL_TRAP);
	if (thw_instantiate(r, m, imps, ni, e, &inst, &err) == 0) {
		if (!inst)
			abort();
		call_exports(inst, m, r, &e);
	} else if (!err.msg[0]) {
		abort();
	}
out:
	thw_exec_free(e);
	thw_realm_free(r);
	free(imps);
	free(types);
	thw_module_release(m);
	return 0;
}
