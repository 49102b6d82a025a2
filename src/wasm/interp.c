/*
 * interp.c - the interpreter loop.
 *
 * THE INTERNAL CODE FORMAT
 *
 * compile.c translates each function body once, at module creation, into
 * an array of 32-bit cells (thw_module.code; a function starts at its
 * thw__code.entry). An instruction is one handler cell followed by its
 * operand cells:
 *
 *   [handler][operand]...[operand]
 *
 * handler   the address of the instruction's label in thw__interp_run, as a
 *           signed 32-bit offset from a base label (direct threading: the
 *           dispatch is one add and one indirect jump, no opcode table).
 * operand   an unsigned 32-bit frame slot number, an immediate (constant,
 *           index, memory offset) or a signed branch offset counted in cells
 *           from the branching instruction's handler cell.
 *
 * A frame is a run of 8-byte slots on the exec's value stack:
 *
 *   fp[0 .. nparams)           parameters (placed there by the caller)
 *   fp[nparams .. nlocals)     declared locals, zeroed on entry
 *   fp[nlocals .. nslots)      the operand stack, one slot per height
 *
 * Since every operand's height is known at translation time, the operand
 * stack never moves at run time: instructions name their inputs and output
 * by slot ("register code"). i32 values are stored zero-extended to 64
 * bits, f32 values as their bit pattern in the low 32 bits, references as
 * pointers (0 = null), so reinterpretations and i64.extend_i32_u cost
 * nothing. The formats (d = destination slot, a/b/c = source slots,
 * k = immediate, rel = branch offset):
 *
 *   numeric unary        [op][d][a]          binary      [op][d][a][b]
 *   binary, i32 imm      [op_K][d][a][k]     i64 imm     [op_K][d][a][klo][khi]
 *   binary, loaded b     [op_L][d][a][address][offset]   (b = memory[...])
 *   CONST32              [op][d][k]          CONST64     [op][d][klo][khi]
 *   COPY                 [op][d][a]          SELECT      [op][d][a][b][c]
 *   I32_ADD_SHL          [op][d][a][x][k]    a + (x << k), array indexing
 *   I32_SHL_ADD_K        [op][d][x][k][c]    (x << k) + c
 *   load                 [op][d][addr][offset]   _RR [op][d][a][b][offset]
 *                        (address a + b)         _A  [op][d][address][offset]
 *   store                [op][addr][value][offset]
 *   GLOBAL_GET           [op][d][global]     GLOBAL_SET  [op][a][global]
 *   BR                   [op][rel][fuel]     BR_IF/BR_UNLESS [op][c][rel][fuel]
 *   BR_I32_EQZ...        [op][a][rel][fuel]
 *   BR_<cmp>             [op][a][b][rel][fuel]   BR_<cmp>_K [op][a][k][rel][fuel]
 *   ADD_BR_<cmp>_K       [op][x][y][inc][k][rel][fuel]: x = y + inc, branch
 *                        when x <cmp> k (a loop counter's step and test)
 *   BR_TABLE             [op][index slot][n][rel 0]..[rel n]   (n = default;
 *                        targets that need moves or are loops get a stub)
 *   CALL, CALL_LOCAL     [op][function][argument base slot]  (LOCAL: defined
 *                        in this module, so never a host function)
 *   CALL_INDIRECT        [op][type][table][argument base slot][index slot]
 *   RETURN               [op][first result slot][count]
 *   MEMORY_SIZE [op][d]  MEMORY_GROW [op][d][a]   and the bulk/table
 *   instructions with their indices first, then their operand slots.
 *
 * A call moves no arguments: they already sit in consecutive slots at the
 * top of the caller's operand stack, which become the callee's first
 * slots (fp' = fp + argument base). The callee writes its results to
 * fp'[0..], exactly where the caller expects them.
 *
 * Control state kept in C locals of the loop: pc, fp, the current
 * function and instance, and the memory base and size (re-read after
 * anything that can grow memory: calls, returns, memory.grow, host calls).
 * Calls push a thw__frame on the exec's frame stack; there is no C
 * recursion per WebAssembly call, so an invocation can stop at a FUEL
 * instruction (yield) or a host call (pending) and resume on any thread.
 *
 * Fuel costs no dispatch of its own. A call charges the callee's
 * thw__code.fuel (its instructions outside loops); a taken branch charges
 * its [fuel] cell, which is non-zero only on loop back-edges (the loop's
 * instructions up to that branch). Every unbounded execution passes calls
 * or back-edges, so a bounded budget bounds execution. When the budget
 * runs out the branch or call is not executed: pc stays on it, so a
 * yielded invocation simply re-executes it when resumed.
 *
 * Fusions made by the translator: a comparison feeding br_if/if becomes
 * one BR_<cmp> (negated for if); an i32/i64 constant as the right operand
 * of add/sub/mul/and/or/xor/shifts/comparisons becomes an immediate (_K);
 * local.get becomes a direct slot operand; local.set/tee after an
 * instruction rewrites that instruction's destination.
 */
#include <math.h>

#include "code.h"
#include "wasm_internal.h"

static int32_t handler_offsets[THW__OP_COUNT];
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

static void handlers_init(void)
{
	thw__interp_run(NULL);
}

const int32_t *thw__interp_handlers(void)
{
	pthread_once(&handlers_once, handlers_init);
	return handler_offsets;
}

/* ---- Float helpers (bit-exact) ------------------------------------------ */

static inline float f32_of(uint64_t s)
{
	uint32_t u = (uint32_t)s;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline uint64_t of_f32(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline double f64_of(uint64_t s)
{
	double d;
	memcpy(&d, &s, 8);
	return d;
}

static inline uint64_t of_f64(double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	return u;
}

static inline float fmin32(float a, float b)
{
	if (a != a || b != b)
		return a + b;
	if (a == b)
		return signbit(a) ? a : b;
	return a < b ? a : b;
}

static inline float fmax32(float a, float b)
{
	if (a != a || b != b)
		return a + b;
	if (a == b)
		return signbit(a) ? b : a;
	return a > b ? a : b;
}

static inline double fmin64(double a, double b)
{
	if (a != a || b != b)
		return a + b;
	if (a == b)
		return signbit(a) ? a : b;
	return a < b ? a : b;
}

static inline double fmax64(double a, double b)
{
	if (a != a || b != b)
		return a + b;
	if (a == b)
		return signbit(a) ? b : a;
	return a > b ? a : b;
}

static inline uint32_t rotl32(uint32_t a, uint32_t b) { b &= 31; return b ? (a << b) | (a >> (32 - b)) : a; }
static inline uint32_t rotr32(uint32_t a, uint32_t b) { b &= 31; return b ? (a >> b) | (a << (32 - b)) : a; }
static inline uint64_t rotl64(uint64_t a, uint64_t b) { b &= 63; return b ? (a << b) | (a >> (64 - b)) : a; }
static inline uint64_t rotr64(uint64_t a, uint64_t b) { b &= 63; return b ? (a >> b) | (a << (64 - b)) : a; }

/* Saturating truncations. */
static inline uint32_t sat_i32(double x)
{
	if (x != x)
		return 0;
	if (x <= -2147483648.0)
		return (uint32_t)INT32_MIN;
	if (x >= 2147483647.0)
		return (uint32_t)INT32_MAX;
	return (uint32_t)(int32_t)x;
}

static inline uint32_t sat_u32(double x)
{
	if (x != x || x <= 0)
		return 0;
	if (x >= 4294967295.0)
		return UINT32_MAX;
	return (uint32_t)x;
}

static inline uint64_t sat_i64(double x)
{
	if (x != x)
		return 0;
	if (x <= -9223372036854775808.0)
		return (uint64_t)INT64_MIN;
	if (x >= 9223372036854775808.0)
		return (uint64_t)INT64_MAX;
	return (uint64_t)(int64_t)x;
}

static inline uint64_t sat_u64(double x)
{
	if (x != x || x <= 0)
		return 0;
	if (x >= 18446744073709551616.0)
		return UINT64_MAX;
	return (uint64_t)x;
}

/* ---- The loop ------------------------------------------------------------- */

#define R(i) fp[pc[i]]
#define I32(i) ((uint32_t)R(i))
#define S32(i) ((int32_t)(uint32_t)R(i))
#define I64(i) (R(i))
#define S64(i) ((int64_t)R(i))
#define F32(i) f32_of(R(i))
#define F64(i) f64_of(R(i))
#define K64(i) ((uint64_t)pc[i] | ((uint64_t)pc[(i) + 1] << 32))

#define DISPATCH() goto *(void *)((char *)&&L_base + (int32_t)*pc)
#define NEXT(n) do { pc += (n); DISPATCH(); } while (0)
#define TRAP(c) do { tcode = (c); goto trap; } while (0)
#define LOAD_MEM() do {                                   \
		thw_memory *mm_ = inst ? inst->mem : NULL; \
		mem = mm_ ? mm_->data : NULL;              \
		memsize = mm_ ? mm_->size : 0;             \
	} while (0)

/* Memory bounds: effective address ea of an n-byte access. */
#define EA(addr_i, off_i, n)                                                 \
	uint64_t ea = (uint64_t)I32(addr_i) + pc[off_i];                     \
	if (__builtin_expect(ea + (n) > memsize, 0))                        \
		TRAP(THW_TRAP_MEMORY_OOB)

/* Frames zero a few locals and return a value or two: GCC would turn
 * those short loops into memset/memmove calls, which cost more. */
#if defined(__GNUC__) && !defined(__clang__)
#define THW__NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define THW__NO_LIBCALLS
#endif
THW__NO_LIBCALLS
thw_state thw__interp_run(thw_exec *e)
{
	if (!e) {
#define X(n, ...) handler_offsets[THW__OP_##n] = (int32_t)((char *)&&L_##n - (char *)&&L_base);
#define XC(n) X(n)
#define XRR(n, ...) X(n##_RR)
#define XA(n, ...) X(n##_A)
		THW__CTLOPS(XC)
		THW__NUMOPS(X)
		THW__LOADS(X)
		THW__LOADS(XRR)
		THW__LOADS(XA)
		THW__STORES(X)
		THW__IMMOPS(X)
		THW__BRCMP(X)
		THW__BRCMPK(X)
		THW__LOADOPS(X)
		THW__ADDBR(X)
#undef X
#undef XC
#undef XRR
#undef XA
		return THW_STATE_IDLE;
	}

	const uint32_t *pc = e->pc;
	uint64_t *stack = e->stack;
	uint64_t *fp = stack + e->fp;
	thw_func *cur = e->cur;
	thw_instance *inst = cur ? cur->inst : NULL;
	uint8_t *mem;
	uint64_t memsize;
	uint64_t fuel = e->fuel;
	thw_trapcode tcode = THW_TRAP_NONE;
	thw_func *callee;
	uint64_t *newfp;
	const uint32_t *ret;
	const thw_config *cfg = &e->realm->cfg;
	LOAD_MEM();

	if (!pc) {
		/* Start: call the entry function with its args at stack[0]. */
		callee = e->entry;
		newfp = stack;
		ret = NULL;
		goto do_call;
	}
	DISPATCH();

L_base:
	TRAP(THW_TRAP_UNREACHABLE); /* never reached: the offset base */

	/* ---- control ---- */
L_UNREACHABLE:
	TRAP(THW_TRAP_UNREACHABLE);
	/* A taken branch: jump by the rel cell at pc[r], charging the fuel
	 * cell at pc[r + 1] (non-zero on loop back-edges). When fuel runs
	 * out the branch stays unexecuted: pc remains at it, so a yielded
	 * invocation re-evaluates it on resumption. */
#define TAKE(r) do {                                                        \
		if (__builtin_expect(fuel < pc[(r) + 1], 0))                \
			goto out_of_fuel;                                   \
		fuel -= pc[(r) + 1];                                        \
		pc += (int32_t)pc[r];                                       \
		DISPATCH();                                                 \
	} while (0)
L_BR:
	TAKE(1);
L_BR_IF:
	if (I32(1))
		TAKE(2);
	NEXT(4);
L_BR_UNLESS:
	if (!I32(1))
		TAKE(2);
	NEXT(4);
L_BR_I32_EQZ:
	if (!I32(1))
		TAKE(2);
	NEXT(4);
L_BR_I32_NEZ:
	if (I32(1))
		TAKE(2);
	NEXT(4);
L_BR_I64_EQZ:
	if (!I64(1))
		TAKE(2);
	NEXT(4);
L_BR_I64_NEZ:
	if (I64(1))
		TAKE(2);
	NEXT(4);
L_BR_TABLE: {
	uint32_t i = I32(1), n = pc[2];
	if (i > n)
		i = n;
	pc += (int32_t)pc[3 + i];
	DISPATCH();
}
L_RETURN: {
	uint32_t src = pc[1], n = pc[2];
	for (uint32_t i = 0; i < n; i++)
		fp[i] = fp[src + i];
	thw__frame *f = &e->frames[--e->nframes];
	if (!f->ret_pc) {
		e->fp = (size_t)(fp - stack);
		e->pc = NULL;
		e->cur = NULL;
		if (e->fuel != UINT64_MAX)
			e->fuel = fuel;
		return THW_STATE_DONE;
	}
	pc = f->ret_pc;
	fp = stack + f->fp;
	if (f->inst != inst) {
		inst = f->inst;
		LOAD_MEM();
	}
	cur = f->func;
	DISPATCH();
}
L_CALL:
	callee = inst->funcs[pc[1]];
	newfp = fp + pc[2];
	ret = pc + 3;
	goto do_call;
L_CALL_LOCAL: /* a function defined in this module: never a host one */
	callee = inst->funcs[pc[1]];
	newfp = fp + pc[2];
	ret = pc + 3;
	goto do_call_wasm;
L_CALL_INDIRECT: {
	thw_table *t = inst->tables[pc[2]];
	uint32_t i = I32(4);
	if (i >= t->size)
		TRAP(THW_TRAP_UNDEFINED_ELEMENT);
	callee = t->e[i];
	if (!callee) {
		snprintf(e->trap_msg, sizeof e->trap_msg, "uninitialized element %u", i);
		tcode = THW_TRAP_UNINITIALIZED_ELEMENT;
		goto trap_keep_msg;
	}
	if (!thw__types_equal(callee->type, &inst->m->types[pc[1]]))
		TRAP(THW_TRAP_INDIRECT_TYPE);
	newfp = fp + pc[3];
	ret = pc + 5;
	goto do_call;
}

do_call: {
	if (callee->host) {
		thw_hostret hr = thw__call_host(e, callee, inst, newfp);
		if (hr == THW_HOST_TRAP) {
			tcode = THW_TRAP_HOST;
			goto trap_keep_msg;
		}
		if (hr == THW_HOST_PENDING) {
			e->pending = callee;
			e->pending_fp = (size_t)(newfp - stack);
			e->pc = ret;
			e->fp = (size_t)(fp - stack);
			e->cur = cur;
			if (e->fuel != UINT64_MAX)
				e->fuel = fuel;
			return THW_STATE_PENDING;
		}
		if (!ret) { /* the entry itself was a host function */
			e->pc = NULL;
			e->fp = 0;
			return THW_STATE_DONE;
		}
		LOAD_MEM(); /* the host may have grown memory */
		pc = ret;
		DISPATCH();
	}
do_call_wasm:;
	const thw__code *cc = callee->code;
	if (__builtin_expect(fuel < cc->fuel, 0))
		goto out_of_fuel; /* pc is still at the call: it is redone */
	fuel -= cc->fuel;
	size_t base = (size_t)(newfp - stack);
	size_t need = base + cc->nslots;
	if (__builtin_expect(need > e->stack_cap || e->nframes == e->frames_cap, 0)) {
		/* Slow path: limits, and growing the stacks. */
		if (e->nframes >= cfg->max_call_depth)
			TRAP(THW_TRAP_STACK_EXHAUSTED);
		size_t fpo = (size_t)(fp - stack);
		if (need > cfg->max_value_stack)
			TRAP(THW_TRAP_STACK_EXHAUSTED);
		if (thw__exec_reserve(e, need))
			TRAP(THW_TRAP_OOM);
		stack = e->stack;
		fp = stack + fpo;
		newfp = stack + base;
		if (e->nframes == e->frames_cap) {
			/* capacity never exceeds the depth limit, so that
			 * the fast path's one compare covers both */
			uint32_t cap = e->frames_cap ? e->frames_cap * 2 : 64;
			if (cap > cfg->max_call_depth)
				cap = cfg->max_call_depth;
			thw__frame *nf = th_realloc(e->frames, cap * sizeof *nf);
			if (!nf)
				TRAP(THW_TRAP_OOM);
			e->frames = nf;
			e->frames_cap = cap;
		}
	}
	e->frames[e->nframes++] = (thw__frame){ ret, (size_t)(fp - stack), cur, inst };
	fp = newfp;
	for (uint32_t i = cc->nparams; i < cc->nlocals; i++)
		fp[i] = 0;
	cur = callee;
	if (callee->inst != inst) {
		inst = callee->inst;
		LOAD_MEM();
	}
	pc = callee->entry;
	DISPATCH();
}

	/* ---- data movement ---- */
L_COPY:
	R(1) = R(2);
	NEXT(3);
L_I32_ADD_SHL: /* a + (x << k) */
	R(1) = (uint32_t)(I32(2) + (I32(3) << (pc[4] & 31)));
	NEXT(5);
L_I32_SHL_ADD_K: /* (x << k) + c */
	R(1) = (uint32_t)((I32(2) << (pc[3] & 31)) + pc[4]);
	NEXT(5);
L_SELECT:
	R(1) = I32(4) ? R(2) : R(3);
	NEXT(5);
L_CONST32:
	R(1) = pc[2];
	NEXT(3);
L_CONST64:
	R(1) = K64(2);
	NEXT(4);
L_GLOBAL_GET:
	R(1) = inst->globals[pc[2]]->v;
	NEXT(3);
L_GLOBAL_SET:
	inst->globals[pc[2]]->v = R(1);
	NEXT(3);
L_REF_IS_NULL:
	R(1) = R(2) == 0;
	NEXT(3);
L_REF_FUNC:
	R(1) = (uint64_t)(uintptr_t)inst->funcs[pc[2]];
	NEXT(3);

	/* ---- memory ---- */
#define LOAD(N, T, CONV, W)                          \
L_##N: {                                             \
	EA(2, 3, W);                                 \
	T v_;                                        \
	memcpy(&v_, mem + ea, W);                    \
	R(1) = CONV;                                 \
	NEXT(4);                                     \
}                                                    \
L_##N##_RR: {                                        \
	uint64_t ea = (uint64_t)(uint32_t)(I32(2) + I32(3)) + pc[4]; \
	if (__builtin_expect(ea + (W) > memsize, 0)) \
		TRAP(THW_TRAP_MEMORY_OOB);           \
	T v_;                                        \
	memcpy(&v_, mem + ea, W);                    \
	R(1) = CONV;                                 \
	NEXT(5);                                     \
}                                                    \
L_##N##_A: {                                         \
	uint64_t ea = (uint64_t)pc[2] + pc[3];       \
	if (__builtin_expect(ea + (W) > memsize, 0)) \
		TRAP(THW_TRAP_MEMORY_OOB);           \
	T v_;                                        \
	memcpy(&v_, mem + ea, W);                    \
	R(1) = CONV;                                 \
	NEXT(4);                                     \
}
	LOAD(I32_LOAD, uint32_t, v_, 4)
	LOAD(I64_LOAD, uint64_t, v_, 8)
	LOAD(F32_LOAD, uint32_t, v_, 4)
	LOAD(F64_LOAD, uint64_t, v_, 8)
	LOAD(I32_LOAD8_S, int8_t, (uint32_t)(int32_t)v_, 1)
	LOAD(I32_LOAD8_U, uint8_t, v_, 1)
	LOAD(I32_LOAD16_S, int16_t, (uint32_t)(int32_t)v_, 2)
	LOAD(I32_LOAD16_U, uint16_t, v_, 2)
	LOAD(I64_LOAD8_S, int8_t, (uint64_t)(int64_t)v_, 1)
	LOAD(I64_LOAD8_U, uint8_t, v_, 1)
	LOAD(I64_LOAD16_S, int16_t, (uint64_t)(int64_t)v_, 2)
	LOAD(I64_LOAD16_U, uint16_t, v_, 2)
	LOAD(I64_LOAD32_S, int32_t, (uint64_t)(int64_t)v_, 4)
	LOAD(I64_LOAD32_U, uint32_t, v_, 4)
#undef LOAD
#define STORE(N, T, W)                               \
L_##N: {                                             \
	EA(1, 3, W);                                 \
	T v_ = (T)R(2);                              \
	memcpy(mem + ea, &v_, W);                    \
	NEXT(4);                                     \
}
	STORE(I32_STORE, uint32_t, 4)
	STORE(I64_STORE, uint64_t, 8)
	STORE(F32_STORE, uint32_t, 4)
	STORE(F64_STORE, uint64_t, 8)
	STORE(I32_STORE8, uint8_t, 1)
	STORE(I32_STORE16, uint16_t, 2)
	STORE(I64_STORE8, uint8_t, 1)
	STORE(I64_STORE16, uint16_t, 2)
	STORE(I64_STORE32, uint32_t, 4)
#undef STORE

L_MEMORY_SIZE:
	R(1) = inst->mem->pages;
	NEXT(2);
L_MEMORY_GROW: {
	int64_t old = thw_memory_grow(inst->mem, I32(2));
	R(1) = (uint32_t)(int32_t)old;
	LOAD_MEM();
	NEXT(3);
}
L_MEMORY_INIT: {
	const thw__data *ds = &inst->m->datas[pc[1]];
	uint64_t len = (inst->data_dropped[pc[1] / 8] >> (pc[1] % 8)) & 1 ? 0 : ds->len;
	uint64_t d = I32(2), s = I32(3), n = I32(4);
	if (s + n > len || d + n > memsize)
		TRAP(THW_TRAP_MEMORY_OOB);
	if (n)
		memcpy(mem + d, inst->m->bin + ds->start + s, n);
	NEXT(5);
}
L_DATA_DROP:
	inst->data_dropped[pc[1] / 8] |= (uint8_t)(1u << (pc[1] % 8));
	NEXT(2);
L_MEMORY_COPY: {
	uint64_t d = I32(1), s = I32(2), n = I32(3);
	if (s + n > memsize || d + n > memsize)
		TRAP(THW_TRAP_MEMORY_OOB);
	if (n)
		memmove(mem + d, mem + s, n);
	NEXT(4);
}
L_MEMORY_FILL: {
	uint64_t d = I32(1), n = I32(3);
	if (d + n > memsize)
		TRAP(THW_TRAP_MEMORY_OOB);
	if (n)
		memset(mem + d, (int)(uint8_t)R(2), n);
	NEXT(4);
}

	/* ---- tables ---- */
L_TABLE_GET: {
	thw_table *t = inst->tables[pc[2]];
	uint32_t i = I32(3);
	if (i >= t->size)
		TRAP(THW_TRAP_TABLE_OOB);
	R(1) = (uint64_t)(uintptr_t)t->e[i];
	NEXT(4);
}
L_TABLE_SET: {
	thw_table *t = inst->tables[pc[1]];
	uint32_t i = I32(2);
	if (i >= t->size)
		TRAP(THW_TRAP_TABLE_OOB);
	t->e[i] = (void *)(uintptr_t)R(3);
	NEXT(4);
}
L_TABLE_SIZE:
	R(1) = inst->tables[pc[2]]->size;
	NEXT(3);
L_TABLE_GROW: {
	int64_t old = thw__table_grow(inst->tables[pc[2]], I32(4),
				      (void *)(uintptr_t)R(3), e->realm);
	R(1) = (uint32_t)(int32_t)old;
	NEXT(5);
}
L_TABLE_FILL: {
	thw_table *t = inst->tables[pc[1]];
	uint64_t i = I32(2), n = I32(4);
	void *v = (void *)(uintptr_t)R(3);
	if (i + n > t->size)
		TRAP(THW_TRAP_TABLE_OOB);
	for (uint64_t k = 0; k < n; k++)
		t->e[i + k] = v;
	NEXT(5);
}
L_TABLE_COPY: {
	thw_table *td = inst->tables[pc[1]], *ts = inst->tables[pc[2]];
	uint64_t d = I32(3), s = I32(4), n = I32(5);
	if (s + n > ts->size || d + n > td->size)
		TRAP(THW_TRAP_TABLE_OOB);
	if (n)
		memmove(td->e + d, ts->e + s, n * sizeof(void *));
	NEXT(6);
}
L_TABLE_INIT: {
	thw_table *t = inst->tables[pc[1]];
	uint32_t seg = pc[2];
	const thw__elem *es = &inst->m->elems[seg];
	uint64_t len = (inst->elem_dropped[seg / 8] >> (seg % 8)) & 1 ? 0 : es->n;
	uint64_t d = I32(3), s = I32(4), n = I32(5);
	if (s + n > len || d + n > t->size)
		TRAP(THW_TRAP_TABLE_OOB);
	for (uint64_t k = 0; k < n; k++)
		t->e[d + k] = thw__elem_item(inst, &es->items[s + k]);
	NEXT(6);
}
L_ELEM_DROP:
	inst->elem_dropped[pc[1] / 8] |= (uint8_t)(1u << (pc[1] % 8));
	NEXT(2);

	/* ---- numeric ---- */
#define UN(N, expr) L_##N: R(1) = (expr); NEXT(3);
#define BIN(N, expr) L_##N: R(1) = (expr); NEXT(4);
	/* i32 binary with an immediate form; a and b are the operands */
#define BIN32K(N, expr)                                          \
	L_I32_##N: { uint32_t a = I32(2), b = I32(3); R(1) = (uint32_t)(expr); NEXT(4); } \
	L_I32_##N##_K: { uint32_t a = I32(2), b = pc[3]; R(1) = (uint32_t)(expr); NEXT(4); }
#define BIN64K(N, expr)                                          \
	L_I64_##N: { uint64_t a = I64(2), b = I64(3); R(1) = (expr); NEXT(4); } \
	L_I64_##N##_K: { uint64_t a = I64(2), b = K64(3); R(1) = (expr); NEXT(5); }
	/* i32 comparisons: register, immediate and compare-and-branch forms */
#define CMP32(N, T, expr)                                        \
	L_I32_##N: { T a = (T)I32(2), b = (T)I32(3); R(1) = (expr); NEXT(4); } \
	L_I32_##N##_K: { T a = (T)I32(2), b = (T)pc[3]; R(1) = (expr); NEXT(4); } \
	L_BR_I32_##N: { T a = (T)I32(1), b = (T)I32(2);           \
		if (expr) { TAKE(3); } NEXT(5); }                         \
	L_BR_I32_##N##_K: { T a = (T)I32(1), b = (T)pc[2];        \
		if (expr) { TAKE(3); } NEXT(5); }                         \
	L_ADD_BR_I32_##N##_K: { uint32_t x_ = I32(2) + pc[3];     \
		T a = (T)x_, b = (T)pc[4];                        \
		/* out of fuel before the write: re-execution on \
		 * resumption then computes the same step again */ \
		if (expr) {                                       \
			if (__builtin_expect(fuel < pc[6], 0))    \
				goto out_of_fuel;                 \
			R(1) = x_;                                \
			fuel -= pc[6];                            \
			pc += (int32_t)pc[5];                     \
			DISPATCH();                               \
		}                                                 \
		R(1) = x_;                                        \
		NEXT(7); }

	CMP32(EQ, uint32_t, a == b)
	CMP32(NE, uint32_t, a != b)
	CMP32(LT_S, int32_t, a < b)
	CMP32(LT_U, uint32_t, a < b)
	CMP32(GT_S, int32_t, a > b)
	CMP32(GT_U, uint32_t, a > b)
	CMP32(LE_S, int32_t, a <= b)
	CMP32(LE_U, uint32_t, a <= b)
	CMP32(GE_S, int32_t, a >= b)
	CMP32(GE_U, uint32_t, a >= b)
	UN(I32_EQZ, I32(2) == 0)
	UN(I64_EQZ, I64(2) == 0)
	BIN(I64_EQ, I64(2) == I64(3))
	BIN(I64_NE, I64(2) != I64(3))
	BIN(I64_LT_S, S64(2) < S64(3))
	BIN(I64_LT_U, I64(2) < I64(3))
	BIN(I64_GT_S, S64(2) > S64(3))
	BIN(I64_GT_U, I64(2) > I64(3))
	BIN(I64_LE_S, S64(2) <= S64(3))
	BIN(I64_LE_U, I64(2) <= I64(3))
	BIN(I64_GE_S, S64(2) >= S64(3))
	BIN(I64_GE_U, I64(2) >= I64(3))
	BIN(F32_EQ, F32(2) == F32(3))
	BIN(F32_NE, F32(2) != F32(3))
	BIN(F32_LT, F32(2) < F32(3))
	BIN(F32_GT, F32(2) > F32(3))
	BIN(F32_LE, F32(2) <= F32(3))
	BIN(F32_GE, F32(2) >= F32(3))
	BIN(F64_EQ, F64(2) == F64(3))
	BIN(F64_NE, F64(2) != F64(3))
	BIN(F64_LT, F64(2) < F64(3))
	BIN(F64_GT, F64(2) > F64(3))
	BIN(F64_LE, F64(2) <= F64(3))
	BIN(F64_GE, F64(2) >= F64(3))

	UN(I32_CLZ, I32(2) ? (uint32_t)__builtin_clz(I32(2)) : 32)
	UN(I32_CTZ, I32(2) ? (uint32_t)__builtin_ctz(I32(2)) : 32)
	UN(I32_POPCNT, (uint32_t)__builtin_popcount(I32(2)))
	BIN32K(ADD, a + b)
	BIN32K(SUB, a - b)
	BIN32K(MUL, a * b)
	BIN32K(AND, a & b)
	BIN32K(OR, a | b)
	BIN32K(XOR, a ^ b)
	BIN32K(SHL, a << (b & 31))
	BIN32K(SHR_S, (uint32_t)((int32_t)a >> (b & 31)))
	BIN32K(SHR_U, a >> (b & 31))
L_I32_DIV_S: {
	int32_t a = S32(2), b = S32(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	if (a == INT32_MIN && b == -1)
		TRAP(THW_TRAP_INT_OVERFLOW);
	R(1) = (uint32_t)(a / b);
	NEXT(4);
}
L_I32_DIV_U: {
	uint32_t a = I32(2), b = I32(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	R(1) = a / b;
	NEXT(4);
}
L_I32_REM_S: {
	int32_t a = S32(2), b = S32(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	R(1) = (a == INT32_MIN && b == -1) ? 0 : (uint32_t)(a % b);
	NEXT(4);
}
L_I32_REM_U: {
	uint32_t a = I32(2), b = I32(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	R(1) = a % b;
	NEXT(4);
}
	BIN32K(ROTL, rotl32(a, b))
	BIN32K(ROTR, rotr32(a, b))

	UN(I64_CLZ, I64(2) ? (uint64_t)__builtin_clzll(I64(2)) : 64)
	UN(I64_CTZ, I64(2) ? (uint64_t)__builtin_ctzll(I64(2)) : 64)
	UN(I64_POPCNT, (uint64_t)__builtin_popcountll(I64(2)))
	BIN64K(ADD, a + b)
	BIN64K(SUB, a - b)
	BIN64K(MUL, a * b)
	BIN64K(AND, a & b)
	BIN64K(OR, a | b)
	BIN64K(XOR, a ^ b)
	BIN64K(SHL, a << (b & 63))
	BIN64K(SHR_S, (uint64_t)((int64_t)a >> (b & 63)))
	BIN64K(SHR_U, a >> (b & 63))
L_I64_DIV_S: {
	int64_t a = S64(2), b = S64(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	if (a == INT64_MIN && b == -1)
		TRAP(THW_TRAP_INT_OVERFLOW);
	R(1) = (uint64_t)(a / b);
	NEXT(4);
}
L_I64_DIV_U: {
	uint64_t a = I64(2), b = I64(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	R(1) = a / b;
	NEXT(4);
}
L_I64_REM_S: {
	int64_t a = S64(2), b = S64(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	R(1) = (a == INT64_MIN && b == -1) ? 0 : (uint64_t)(a % b);
	NEXT(4);
}
L_I64_REM_U: {
	uint64_t a = I64(2), b = I64(3);
	if (b == 0)
		TRAP(THW_TRAP_DIV_ZERO);
	R(1) = a % b;
	NEXT(4);
}
	BIN64K(ROTL, rotl64(a, b))
	BIN64K(ROTR, rotr64(a, b))

	UN(F32_ABS, I32(2) & 0x7fffffffu)
	UN(F32_NEG, I32(2) ^ 0x80000000u)
	/* Rounding returns a NaN operand quieted (x + x), never as is. */
	UN(F32_CEIL, of_f32(F32(2) != F32(2) ? F32(2) + F32(2) : ceilf(F32(2))))
	UN(F32_FLOOR, of_f32(F32(2) != F32(2) ? F32(2) + F32(2) : floorf(F32(2))))
	UN(F32_TRUNC, of_f32(F32(2) != F32(2) ? F32(2) + F32(2) : truncf(F32(2))))
	UN(F32_NEAREST, of_f32(F32(2) != F32(2) ? F32(2) + F32(2) : nearbyintf(F32(2))))
	UN(F32_SQRT, of_f32(sqrtf(F32(2))))
	BIN(F32_ADD, of_f32(F32(2) + F32(3)))
	BIN(F32_SUB, of_f32(F32(2) - F32(3)))
	BIN(F32_MUL, of_f32(F32(2) * F32(3)))
	BIN(F32_DIV, of_f32(F32(2) / F32(3)))
	BIN(F32_MIN, of_f32(fmin32(F32(2), F32(3))))
	BIN(F32_MAX, of_f32(fmax32(F32(2), F32(3))))
	BIN(F32_COPYSIGN, (I32(2) & 0x7fffffffu) | (I32(3) & 0x80000000u))
	UN(F64_ABS, I64(2) & 0x7fffffffffffffffull)
	UN(F64_NEG, I64(2) ^ 0x8000000000000000ull)
	UN(F64_CEIL, of_f64(F64(2) != F64(2) ? F64(2) + F64(2) : ceil(F64(2))))
	UN(F64_FLOOR, of_f64(F64(2) != F64(2) ? F64(2) + F64(2) : floor(F64(2))))
	UN(F64_TRUNC, of_f64(F64(2) != F64(2) ? F64(2) + F64(2) : trunc(F64(2))))
	UN(F64_NEAREST, of_f64(F64(2) != F64(2) ? F64(2) + F64(2) : nearbyint(F64(2))))
	UN(F64_SQRT, of_f64(sqrt(F64(2))))
	BIN(F64_ADD, of_f64(F64(2) + F64(3)))
	BIN(F64_SUB, of_f64(F64(2) - F64(3)))
	BIN(F64_MUL, of_f64(F64(2) * F64(3)))
	BIN(F64_DIV, of_f64(F64(2) / F64(3)))
	BIN(F64_MIN, of_f64(fmin64(F64(2), F64(3))))
	BIN(F64_MAX, of_f64(fmax64(F64(2), F64(3))))
	BIN(F64_COPYSIGN, (I64(2) & 0x7fffffffffffffffull) | (I64(3) & 0x8000000000000000ull))

	UN(I32_WRAP_I64, (uint32_t)I64(2))
	/* Trapping truncations: NaN is an invalid conversion; values whose
	 * truncation falls outside the target range overflow. */
#define TRUNC(N, SRC, LO, HI, T, OUT)                              \
L_##N: {                                                           \
	double x_ = SRC;                                           \
	if (x_ != x_)                                              \
		TRAP(THW_TRAP_INVALID_CONVERSION);                 \
	if (!(x_ > (LO) && x_ < (HI)))                             \
		TRAP(THW_TRAP_INT_OVERFLOW);                       \
	R(1) = (OUT)(T)x_;                                         \
	NEXT(3);                                                   \
}
	TRUNC(I32_TRUNC_F32_S, F32(2), -2147483904.0, 2147483648.0, int32_t, uint32_t)
	TRUNC(I32_TRUNC_F32_U, F32(2), -1.0, 4294967296.0, uint32_t, uint32_t)
	TRUNC(I32_TRUNC_F64_S, F64(2), -2147483649.0, 2147483648.0, int32_t, uint32_t)
	TRUNC(I32_TRUNC_F64_U, F64(2), -1.0, 4294967296.0, uint32_t, uint32_t)
	TRUNC(I64_TRUNC_F32_S, F32(2), -9223373136366403584.0, 9223372036854775808.0, int64_t, uint64_t)
	TRUNC(I64_TRUNC_F32_U, F32(2), -1.0, 18446744073709551616.0, uint64_t, uint64_t)
	TRUNC(I64_TRUNC_F64_S, F64(2), -9223372036854777856.0, 9223372036854775808.0, int64_t, uint64_t)
	TRUNC(I64_TRUNC_F64_U, F64(2), -1.0, 18446744073709551616.0, uint64_t, uint64_t)
#undef TRUNC
	UN(I64_EXTEND_I32_S, (uint64_t)(int64_t)S32(2))
	UN(F32_CONVERT_I32_S, of_f32((float)S32(2)))
	UN(F32_CONVERT_I32_U, of_f32((float)I32(2)))
	UN(F32_CONVERT_I64_S, of_f32((float)S64(2)))
	UN(F32_CONVERT_I64_U, of_f32((float)I64(2)))
	UN(F32_DEMOTE_F64, of_f32((float)F64(2)))
	UN(F64_CONVERT_I32_S, of_f64((double)S32(2)))
	UN(F64_CONVERT_I32_U, of_f64((double)I32(2)))
	UN(F64_CONVERT_I64_S, of_f64((double)S64(2)))
	UN(F64_CONVERT_I64_U, of_f64((double)I64(2)))
	UN(F64_PROMOTE_F32, of_f64((double)F32(2)))
	UN(I32_EXTEND8_S, (uint32_t)(int32_t)(int8_t)I32(2))
	UN(I32_EXTEND16_S, (uint32_t)(int32_t)(int16_t)I32(2))
	UN(I64_EXTEND8_S, (uint64_t)(int64_t)(int8_t)I64(2))
	UN(I64_EXTEND16_S, (uint64_t)(int64_t)(int16_t)I64(2))
	UN(I64_EXTEND32_S, (uint64_t)(int64_t)(int32_t)I64(2))
	UN(I32_TRUNC_SAT_F32_S, sat_i32(F32(2)))
	UN(I32_TRUNC_SAT_F32_U, sat_u32(F32(2)))
	UN(I32_TRUNC_SAT_F64_S, sat_i32(F64(2)))
	UN(I32_TRUNC_SAT_F64_U, sat_u32(F64(2)))
	UN(I64_TRUNC_SAT_F32_S, sat_i64(F32(2)))
	UN(I64_TRUNC_SAT_F32_U, sat_u64(F32(2)))
	UN(I64_TRUNC_SAT_F64_S, sat_i64(F64(2)))
	UN(I64_TRUNC_SAT_F64_U, sat_u64(F64(2)))
	/* Load-operand forms: b = memory[address slot + offset]. */
#define BINL(N, T, W, A, B, expr)                                   \
L_##N: {                                                            \
	EA(3, 4, W);                                                \
	T b_;                                                       \
	memcpy(&b_, mem + ea, W);                                   \
	A a = (A)(T)R(2);                                           \
	B b = (B)b_;                                                \
	R(1) = (expr);                                              \
	NEXT(5);                                                    \
}
	BINL(I32_ADD_L, uint32_t, 4, uint32_t, uint32_t, (uint32_t)(a + b))
	BINL(I32_SUB_L, uint32_t, 4, uint32_t, uint32_t, (uint32_t)(a - b))
	BINL(I32_AND_L, uint32_t, 4, uint32_t, uint32_t, a & b)
	BINL(I32_OR_L, uint32_t, 4, uint32_t, uint32_t, a | b)
	BINL(I32_XOR_L, uint32_t, 4, uint32_t, uint32_t, a ^ b)
	BINL(I64_ADD_L, uint64_t, 8, uint64_t, uint64_t, a + b)
	BINL(F32_ADD_L, uint32_t, 4, uint32_t, uint32_t, of_f32(f32_of(a) + f32_of(b)))
	BINL(F32_SUB_L, uint32_t, 4, uint32_t, uint32_t, of_f32(f32_of(a) - f32_of(b)))
	BINL(F32_MUL_L, uint32_t, 4, uint32_t, uint32_t, of_f32(f32_of(a) * f32_of(b)))
	BINL(F64_ADD_L, uint64_t, 8, uint64_t, uint64_t, of_f64(f64_of(a) + f64_of(b)))
	BINL(F64_SUB_L, uint64_t, 8, uint64_t, uint64_t, of_f64(f64_of(a) - f64_of(b)))
	BINL(F64_MUL_L, uint64_t, 8, uint64_t, uint64_t, of_f64(f64_of(a) * f64_of(b)))
#undef BINL
#undef UN
#undef BIN

out_of_fuel:
	if (e->fuel_mode == THW_FUEL_YIELD) {
		e->pc = pc;
		e->fp = (size_t)(fp - stack);
		e->cur = cur;
		e->fuel = 0;
		return THW_STATE_YIELDED;
	}
	fuel = 0;
	tcode = THW_TRAP_OUT_OF_FUEL;
trap:
	thw__trap(e, tcode, NULL, cur, pc);
	goto trapped;
trap_keep_msg:
	thw__trap(e, tcode, e->trap_msg, cur, pc);
trapped:
	e->pc = NULL;
	e->cur = NULL;
	if (e->fuel != UINT64_MAX)
		e->fuel = fuel;
	return THW_STATE_TRAPPED;
}
