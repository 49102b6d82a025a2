/*
 * wasm_internal.h - the engine's internal data structures, shared by the
 * decoder (decode.c), the validator/translator (compile.c), the interpreter
 * (interp.c) and the runtime objects (instance.c). Internal names use the
 * prefix thw__ (double underscore): nothing here is API.
 *
 * Ownership in one picture:
 *   thw_module  owns a copy of the binary, its decoded tables and the
 *               translated code of every function. Immutable after
 *               thw_module_new; shared through an atomic reference count.
 *   thw_realm   owns every runtime object made in it (a singly linked list
 *               of thw__obj headers) and frees them in thw_realm_free.
 *   thw_instance holds references (not ownership) to the module (retained)
 *               and to imported objects; its own functions, globals and
 *               segment-drop flags live in the same allocation.
 */
#ifndef THW_INTERNAL_H
#define THW_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/base.h"
#include "theater/wasm.h"

/* Engine-wide limits (implementation limits the spec allows). */
#define THW__MAX_LOCALS 50000u
#define THW__MAX_PARAMS 1000u
#define THW__MAX_PAGES 65536u
#define THW__PAGE 65536u

/* Value type 0 is "unknown" inside the validator (polymorphic stack). */
#define THW__UNKNOWN 0

/* ---- Module ------------------------------------------------------------ */

typedef struct thw__ftype {
	uint32_t np, nr;
	uint8_t *p; /* np params then nr results (points into module arena) */
} thw__ftype;

typedef struct thw__tabtype {
	uint8_t elem;
	thw_limits_range lim;
} thw__tabtype;

typedef struct thw__globtype {
	uint8_t type;
	bool mut;
	uint32_t init; /* offset of the const expression in the binary */
} thw__globtype;

typedef struct thw__import {
	const char *module, *name; /* NUL-terminated copies */
	uint32_t module_len, name_len;
	uint8_t kind;
	uint32_t index; /* type index (func) or index in its kind's space */
} thw__import;

typedef struct thw__export {
	const char *name;
	uint32_t name_len;
	uint8_t kind;
	uint32_t index;
} thw__export;

enum { THW__SEG_ACTIVE = 0, THW__SEG_PASSIVE = 1, THW__SEG_DECLARATIVE = 2 };

/* One element item: a function index, or a const expression to evaluate. */
enum { THW__ITEM_FUNC = 0, THW__ITEM_NULL = 1, THW__ITEM_EXPR = 2 };
typedef struct thw__item {
	uint32_t kind : 2;
	uint32_t idx : 30; /* func index, or expr offset in the binary */
} thw__item;

typedef struct thw__elem {
	uint8_t mode, type;
	uint32_t table;
	uint32_t offset; /* const expression (active) */
	uint32_t n;
	thw__item *items;
} thw__elem;

typedef struct thw__data {
	uint8_t mode;
	uint32_t offset; /* const expression (active) */
	uint32_t start, len; /* bytes in the binary */
} thw__data;

/* A defined function after translation. */
typedef struct thw__code {
	uint32_t type;      /* type index */
	uint32_t index;     /* function index (imports included) */
	uint32_t nparams;
	uint32_t nlocals;   /* params + declared locals, one slot each */
	uint32_t nslots;    /* frame size: nlocals + maximum operand height */
	uint32_t entry;     /* offset of its first instruction in m->code */
	uint32_t body;      /* byte offset of the body in the binary */
	uint32_t body_len;
	uint32_t fuel;      /* charged on entry: instructions outside loops */
} thw__code;

typedef struct thw__custom {
	const char *name; /* NUL-terminated copy */
	uint32_t off, len;
} thw__custom;

struct thw_module {
	atomic_uint refs;
	uint8_t *bin;
	size_t len;

	uint32_t ntypes;
	thw__ftype *types;
	uint32_t nimports;
	thw__import *imports;
	uint32_t nfuncs, nfunc_imports;
	uint32_t *func_types; /* type index per function */
	uint32_t ntables, ntable_imports;
	thw__tabtype *tables;
	uint32_t nmems, nmem_imports;
	thw_limits_range mem;
	uint32_t nglobals, nglobal_imports;
	thw__globtype *globals;
	uint32_t nexports;
	thw__export *exports;
	bool has_start;
	uint32_t start;
	uint32_t nelems;
	thw__elem *elems;
	bool has_datacount;
	bool needs_datacount; /* code used a data index without the section */
	uint32_t datacount;
	uint32_t ndatas;
	thw__data *datas;
	thw__code *codes; /* nfuncs - nfunc_imports */
	uint32_t *code;   /* translated code of all functions */
	size_t code_len;
	uint8_t *declared; /* bitmap: functions that ref.func may name */
	char **func_names; /* from the name section, NULL entries if absent */
	uint32_t ncustoms;
	thw__custom *customs;
};

int thw__decode(thw_module *m, th_err *err);
void thw__module_free_contents(thw_module *m);
/* Offset of a global's/func's type in the module's function space. */
static inline const thw__ftype *thw__func_type(const thw_module *m, uint32_t f)
{
	return &m->types[m->func_types[f]];
}
bool thw__types_equal(const thw__ftype *a, const thw__ftype *b);

/* ---- Byte reader (decode.c, compile.c) --------------------------------- */

typedef struct thw__rd {
	const uint8_t *base, *p, *end;
	const char *sec; /* section name for messages */
	th_err *err;
} thw__rd;

int thw__rd_fail(thw__rd *r, const uint8_t *at, const char *fmt, ...) TH_PRINTF(3, 4);
int thw__rd_eof(thw__rd *r);
int thw__rd_u32_slow(thw__rd *r, uint32_t *out);
static inline int thw__rd_u8(thw__rd *r, uint8_t *out)
{
	if (r->p >= r->end) {
		*out = 0;
		return thw__rd_eof(r);
	}
	*out = *r->p++;
	return 0;
}
static inline int thw__rd_u32(thw__rd *r, uint32_t *out)
{
	if (r->p < r->end && *r->p < 0x80) {
		*out = *r->p++;
		return 0;
	}
	return thw__rd_u32_slow(r, out);
}
int thw__rd_s32(thw__rd *r, int32_t *out);
int thw__rd_s33(thw__rd *r, int64_t *out);
int thw__rd_s64(thw__rd *r, int64_t *out);

/* ---- Translation (compile.c) ------------------------------------------- */

/* A growing code buffer shared by all functions of a module being made. */
typedef struct thw__cbuf {
	uint32_t *c;
	size_t n, cap;
} thw__cbuf;

/* Validate and translate the body of defined function `fi` (index among
 * defined functions); the body is r->p .. r->end. Appends code to cb. */
int thw__compile_func(thw_module *m, uint32_t fi, thw__rd *r, thw__cbuf *cb);
/* Validate a constant expression of type `type` at r->p; advances past its
 * end. nglobals_visible: globals it may name (imported immutable ones, plus
 * any immutable with extended-const rules). */
int thw__const_expr(thw_module *m, thw__rd *r, uint8_t type,
		    uint32_t nglobals_visible);

/* ---- Runtime objects (instance.c) -------------------------------------- */

enum { THW__OBJ_FUNC, THW__OBJ_TABLE, THW__OBJ_MEMORY, THW__OBJ_GLOBAL,
       THW__OBJ_INSTANCE };

typedef struct thw__obj {
	struct thw__obj *next;
	uint8_t kind;
} thw__obj;

struct thw_func {
	thw__obj hdr;          /* only for host functions: instance funcs live in their instance */
	bool host;
	const thw__ftype *type;
	thw_instance *inst;    /* wasm: owner instance */
	const thw__code *code; /* wasm */
	const uint32_t *entry; /* wasm: its first instruction */
	thw_hostfn fn;         /* host */
	void *ctx;
	char *name;
	thw__ftype own_type;   /* host: copied type */
};

struct thw_memory {
	thw__obj hdr;
	uint8_t *data;
	uint64_t size; /* bytes */
	uint32_t pages, max;
	bool has_max;
};

struct thw_table {
	thw__obj hdr;
	uint8_t elem;
	uint32_t size, max;
	bool has_max;
	void **e;
};

struct thw_global {
	thw__obj hdr;
	uint8_t type;
	bool mut;
	uint64_t v;
};

struct thw_instance {
	thw__obj hdr;
	thw_module *m;
	thw_realm *realm;
	thw_func **funcs;
	thw_table **tables;
	thw_global **globals;
	thw_memory *mem;
	uint8_t *elem_dropped;
	uint8_t *data_dropped;
	void *data;
};

struct thw_realm {
	thw_config cfg;
	thw__obj *objs;
	size_t overhead;
	uint32_t ninstances;
};

/* ---- Execution (interp.c, instance.c) ---------------------------------- */

typedef struct thw__frame {
	const uint32_t *ret_pc; /* NULL: return to the host */
	size_t fp;              /* caller's frame base (slot index) */
	thw_func *func;         /* the caller */
	thw_instance *inst;     /* the caller's instance */
} thw__frame;

struct thw_caller {
	thw_exec *e;
	thw_instance *inst;
};

struct thw_exec {
	thw_realm *realm;
	uint64_t *stack;
	size_t stack_cap; /* slots */
	thw__frame *frames;
	uint32_t nframes, frames_cap;
	thw_state state;
	bool ready;     /* started or resumable: thw_exec_run has work */
	bool host_done; /* a host entry function completed via _complete */
	bool running;   /* inside thw_exec_run: re-entry is refused */
	uint64_t fuel;
	thw_fuel_mode fuel_mode;
	/* Suspended position. */
	const uint32_t *pc;
	size_t fp;
	thw_func *cur;       /* function executing at pc (NULL: none) */
	thw_func *entry;     /* the invoked function */
	thw_func *pending;   /* host function that answered PENDING */
	size_t pending_fp;   /* where its args were and its results go */
	/* The trap. */
	thw_trap trap;
	char trap_msg[256];
	thw_frame_info *trap_frames;
	uint32_t trap_frames_cap;
};

thw_state thw__interp_run(thw_exec *e);
/* The interpreter's handler addresses, as offsets from a base label, for
 * the translator (direct threading). */
const int32_t *thw__interp_handlers(void);
int thw__exec_reserve(thw_exec *e, size_t slots);
void thw__trap(thw_exec *e, thw_trapcode code, const char *msg,
	       thw_func *cur, const uint32_t *pc);
/* Value conversion between a stack slot and a thw_val. */
/* A value to its 64-bit stack slot and back (inline: every call and host
 * call converts its arguments and results). */
static inline uint64_t thw__val_to_slot(const thw_val *v)
{
	switch (v->type) {
	case THW_I32: return v->of.i32;
	case THW_F32: return v->of.f32_bits;
	case THW_I64: return v->of.i64;
	case THW_F64: return v->of.f64_bits;
	case THW_FUNCREF: return (uint64_t)(uintptr_t)v->of.func;
	default: return (uint64_t)(uintptr_t)v->of.ref;
	}
}

static inline thw_val thw__slot_to_val(uint8_t type, uint64_t s)
{
	thw_val v;
	memset(&v, 0, sizeof v);
	v.type = type;
	switch (type) {
	case THW_I32: v.of.i32 = (uint32_t)s; break;
	case THW_F32: v.of.f32_bits = (uint32_t)s; break;
	case THW_I64: v.of.i64 = s; break;
	case THW_F64: v.of.f64_bits = s; break;
	case THW_FUNCREF: v.of.func = (thw_func *)(uintptr_t)s; break;
	default: v.of.ref = (void *)(uintptr_t)s; break;
	}
	return v;
}
/* Call a host function with args/results in slots at fp; returns its
 * thw_hostret and fills the trap message on THW_HOST_TRAP. */
thw_hostret thw__call_host(thw_exec *e, thw_func *f, thw_instance *caller,
			   uint64_t *slots);
int64_t thw__table_grow(thw_table *t, uint32_t delta, void *init,
			const thw_realm *r);
/* Element item -> reference (for table.init at run time). */
void *thw__elem_item(thw_instance *inst, const thw__item *it);
int thw__eval_const(thw_instance *inst, uint32_t off, uint64_t *out);

#endif
