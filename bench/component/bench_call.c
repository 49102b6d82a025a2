/*
 * bench_call.c - cost of the component layer per actor message.
 *
 * Calls the counter actor's handle-send (state "N", message "tick") through
 * thc_call (lowering with two cabi_realloc calls, the guest, lifting the
 * result, post-return) and, as the reference in the same run, does the
 * same work by hand on the raw engine (thw_call of cabi_realloc twice, the
 * core export and its post-return, with the bytes written directly). The
 * ratio is the overhead of the dynamic-value layer. Medians of 5 runs.
 *
 *   make bench-component     (builds the counter with sdk/c/build.sh first)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "theater/component.h"

#define DIR "build/bench-component"
#define N 100000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
		exit(1);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static thc_hostret quiet_log(thc_hostcall *c, void *ctx, const thc_val *a, uint32_t n, thc_val *r)
{
	(void)c, (void)ctx, (void)a, (void)n, (void)r;
	return THC_HOST_OK;
}

static thw_hostret raw_log(thw_caller *c, void *ctx, const thw_val *a, thw_val *r)
{
	(void)c, (void)ctx, (void)a, (void)r;
	return THW_HOST_OK;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what, const th_err *e)
{
	fprintf(stderr, "%s: %s\n", what, e->msg);
	exit(1);
}

static double run_thc(const uint8_t *b, size_t n)
{
	th_err err = { 0 };
	thc_component *c;
	thw_realm *r;
	thw_exec *e;
	thc_instance *inst;
	if (thc_component_load(b, n, &c, &err))
		die("load", &err);
	if (thw_realm_new(NULL, &r, &err) || thw_exec_new(r, &e, &err))
		die("realm", &err);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	thc_host_import imps[] = { { "theater:simple/runtime", "log", quiet_log, NULL } };
	if (thc_instantiate(r, c, imps, 1, e, &inst, &err))
		die("instantiate", &err);
	int send = thc_component_find_export(c, "theater:simple/message-server-client", "handle-send");
	thc_val args[2], res, bytes;
	thc_val_bytes((const uint8_t *)"7", 1, &bytes);
	thc_val_case(THC_OPTION, 1, &bytes, &args[0]);
	thc_val_agg(THC_TUPLE, 1, &args[1]);
	thc_val_bytes((const uint8_t *)"tick", 4, &args[1].of.agg.items[0]);
	double t0 = now();
	for (int i = 0; i < N; i++) {
		if (thc_call(inst, e, send, args, 2, &res, &err))
			die("call", &err);
		thc_val_release(&res);
	}
	double t = now() - t0;
	thc_val_release(&args[0]);
	thc_val_release(&args[1]);
	thc_instance_free(inst);
	thw_exec_free(e);
	thw_realm_free(r);
	thc_component_free(c);
	return t;
}

static uint32_t rcall(thw_exec *e, thw_func *f, const uint32_t *a, uint32_t na, uint32_t nr)
{
	thw_val v[8], out = { 0 };
	memset(v, 0, sizeof v);
	for (uint32_t i = 0; i < na; i++) {
		v[i].type = THW_I32;
		v[i].of.i32 = a[i];
	}
	if (thw_call(e, f, v, na, &out, nr) != THW_STATE_DONE) {
		fprintf(stderr, "raw call trapped\n");
		exit(1);
	}
	return out.of.i32;
}

static double run_raw(const uint8_t *b, size_t n)
{
	th_err err = { 0 };
	thw_module *m;
	thw_realm *r;
	thw_exec *e;
	thw_instance *inst;
	thw_func *log;
	if (thw_module_new(b, n, &m, &err) || thw_realm_new(NULL, &r, &err) ||
	    thw_exec_new(r, &e, &err))
		die("raw setup", &err);
	thw_exec_set_fuel(e, UINT64_MAX, THW_FUEL_TRAP);
	uint8_t p[2] = { THW_I32, THW_I32 };
	thw_functype ft = { 2, 0, p, NULL };
	if (thw_func_new_host(r, &ft, raw_log, NULL, "log", &log, &err))
		die("host", &err);
	thw_extern ex = { .kind = THW_EXTERN_FUNC, .of.func = log };
	if (thw_instantiate(r, m, &ex, 1, e, &inst, &err))
		die("raw instantiate", &err);
	thw_extern x;
	thw_instance_export(inst, "cabi_realloc", 12, &x);
	thw_func *re = x.of.func;
	const char *nm = "theater:simple/message-server-client#handle-send";
	thw_instance_export(inst, nm, strlen(nm), &x);
	thw_func *hs = x.of.func;
	char post[128];
	snprintf(post, sizeof post, "cabi_post_%s", nm);
	thw_instance_export(inst, post, strlen(post), &x);
	thw_func *pr = x.of.func;
	thw_instance_export(inst, "memory", 6, &x);
	thw_memory *mem = x.of.memory;
	double t0 = now();
	for (int i = 0; i < N; i++) {
		uint32_t a0[4] = { 0, 0, 1, 1 }, a1[4] = { 0, 0, 1, 4 };
		uint32_t sp = rcall(e, re, a0, 4, 1);
		thw_memory_write(mem, sp, "7", 1);
		uint32_t mp = rcall(e, re, a1, 4, 1);
		thw_memory_write(mem, mp, "tick", 4);
		uint32_t args[5] = { 1, sp, 1, mp, 4 };
		uint32_t ret = rcall(e, hs, args, 5, 1);
		uint8_t area[16];
		thw_memory_read(mem, ret, area, 16);
		uint32_t ptr, len;
		memcpy(&ptr, area + 8, 4);
		memcpy(&len, area + 12, 4);
		uint8_t st[32];
		thw_memory_read(mem, ptr, st, len < 32 ? len : 32);
		rcall(e, pr, &ret, 1, 0);
	}
	double t = now() - t0;
	thw_realm_free(r);
	thw_module_release(m);
	return t;
}

int main(void)
{
	if (system("sh sdk/c/build.sh examples/counter/counter.c " DIR " >/dev/null") != 0)
		return 1;
	size_t nc, nm;
	uint8_t *comp = slurp(DIR "/counter.component.wasm", &nc);
	uint8_t *core = slurp(DIR "/counter.core.wasm", &nm);
	double a[5], b[5], c[5];
	for (int k = 0; k < 5; k++) {
		a[k] = run_thc(comp, nc);
		b[k] = run_thc(core, nm);
		c[k] = run_raw(core, nm);
	}
	qsort(a, 5, sizeof a[0], cmp);
	qsort(b, 5, sizeof b[0], cmp);
	qsort(c, 5, sizeof c[0], cmp);
	printf("handle-send x %d, median of 5 runs\n", N);
	printf("  thc_call, component form: %8.0f calls/s  %6.2f us/call\n", N / a[2], a[2] / N * 1e6);
	printf("  thc_call, core form:      %8.0f calls/s  %6.2f us/call\n", N / b[2], b[2] / N * 1e6);
	printf("  raw engine (reference):   %8.0f calls/s  %6.2f us/call\n", N / c[2], c[2] / N * 1e6);
	printf("  ratio thc/raw: %.2f (component), %.2f (core)\n", a[2] / c[2], b[2] / c[2]);
	return 0;
}
