/*
 * wasm.h - Theater's WebAssembly engine (prefix thw_).
 *
 * Objects and their lifetimes
 *   thw_module    A decoded, validated and prepared module. Immutable once
 *                 made; may be shared by any number of instances on any
 *                 number of threads. Reference counted (retain/release).
 *   thw_realm     The specification's "store": owns every runtime object
 *                 (instances, functions, tables, memories, globals) created
 *                 in it; they all live until thw_realm_free. A realm is used
 *                 by one thread at a time but may move between threads. An
 *                 actor has one realm; the spec-test harness uses one per
 *                 script. (Named realm so as not to be confused with
 *                 Theater's content-addressed Store.)
 *   thw_exec      An execution context: the explicit value and frame stacks
 *                 of one invocation. Because the interpreter never recurses
 *                 in C per WebAssembly call, an invocation can stop (out of
 *                 fuel with THW_FUEL_YIELD, or a host function answering
 *                 THW_PENDING) and be resumed later, on any thread.
 *
 * Errors: functions that can fail return 0 or a negative TH_E* code and fill
 * the caller's th_err. Traps are values (thw_trap), never longjmps across
 * host code; after a trap, the instance that trapped must be discarded.
 */
#ifndef THEATER_WASM_H
#define THEATER_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types and values ------------------------------------------------ */

typedef enum thw_valtype {
	THW_I32 = 0x7F,
	THW_I64 = 0x7E,
	THW_F32 = 0x7D,
	THW_F64 = 0x7C,
	THW_V128 = 0x7B, /* decoded only to reject: "unsupported feature: simd" */
	THW_FUNCREF = 0x70,
	THW_EXTERNREF = 0x6F
} thw_valtype;

typedef struct thw_func thw_func;
typedef struct thw_table thw_table;
typedef struct thw_memory thw_memory;
typedef struct thw_global thw_global;
typedef struct thw_instance thw_instance;
typedef struct thw_module thw_module;
typedef struct thw_realm thw_realm;
typedef struct thw_exec thw_exec;

/* A value. Floats travel as bit patterns (f32/f64 fields alias u32/u64 bits
 * through the union) so NaN payloads are preserved exactly. A null
 * reference is ref == NULL; an externref is any host pointer. */
typedef struct thw_val {
	uint8_t type; /* thw_valtype */
	union {
		uint32_t i32;
		uint64_t i64;
		float f32;
		double f64;
		uint32_t f32_bits;
		uint64_t f64_bits;
		thw_func *func;  /* THW_FUNCREF */
		void *ref;       /* THW_EXTERNREF */
	} of;
} thw_val;

typedef struct thw_functype {
	uint32_t nparams, nresults;
	const uint8_t *params;  /* thw_valtype each */
	const uint8_t *results;
} thw_functype;

typedef struct thw_limits_range {
	uint32_t min;
	uint32_t max;
	bool has_max;
} thw_limits_range;

typedef enum thw_externkind {
	THW_EXTERN_FUNC = 0,
	THW_EXTERN_TABLE = 1,
	THW_EXTERN_MEMORY = 2,
	THW_EXTERN_GLOBAL = 3
} thw_externkind;

/* A runtime object passed as an import or read from an export. */
typedef struct thw_extern {
	thw_externkind kind;
	union {
		thw_func *func;
		thw_table *table;
		thw_memory *memory;
		thw_global *global;
	} of;
} thw_extern;

/* Describes an import or export of a module. Strings and the functype point
 * into the module and are valid while it is retained. */
typedef struct thw_externtype {
	thw_externkind kind;
	thw_functype func;           /* THW_EXTERN_FUNC */
	uint8_t elemtype;            /* THW_EXTERN_TABLE: THW_FUNCREF/EXTERNREF */
	thw_limits_range limits;     /* TABLE (elements), MEMORY (64 KiB pages) */
	uint8_t valtype;             /* THW_EXTERN_GLOBAL */
	bool mut;                    /* THW_EXTERN_GLOBAL */
} thw_externtype;

typedef struct thw_importdesc {
	const char *module;
	size_t module_len;
	const char *name;
	size_t name_len;
	thw_externtype type;
} thw_importdesc;

typedef struct thw_exportdesc {
	const char *name;
	size_t name_len;
	thw_externtype type;
} thw_exportdesc;

/* ---- Modules --------------------------------------------------------- */

/* Decode, validate and prepare a module. The bytes are copied as needed; the
 * caller keeps ownership of `bytes`. On failure *out is NULL and err holds
 * one line: "<section> section at offset 0x1a2: <reason>", with the reason
 * worded as the specification's tests expect ("type mismatch", "unknown
 * function 3", "unexpected end", "integer too large", "malformed UTF-8
 * encoding", "unsupported feature: simd", ...). The caller releases *out. */
TH_API int thw_module_new(const uint8_t *bytes, size_t len, thw_module **out,
			  th_err *err);
TH_API thw_module *thw_module_retain(thw_module *m);
TH_API void thw_module_release(thw_module *m); /* accepts NULL */

TH_API uint32_t thw_module_import_count(const thw_module *m);
TH_API void thw_module_import(const thw_module *m, uint32_t i,
			      thw_importdesc *out);
TH_API uint32_t thw_module_export_count(const thw_module *m);
TH_API void thw_module_export(const thw_module *m, uint32_t i,
			      thw_exportdesc *out);
/* A custom section's payload by name, or NULL. Valid while m is retained. */
TH_API const uint8_t *thw_module_custom_section(const thw_module *m,
						const char *name, size_t *len);

/* ---- Realms, limits and fuel ------------------------------------------ */

/* Per-realm resource limits. Zero fields take the defaults shown. Exceeding
 * one is a trap or a refused grow, never a crash of the process. */
typedef struct thw_config {
	uint32_t max_memory_pages;  /* per memory; default 65536 (4 GiB)    */
	uint32_t max_table_elems;   /* per table; default 10,000,000         */
	uint32_t max_call_depth;    /* frames; default 10,000                */
	uint32_t max_value_stack;   /* slots (8 bytes); default 1,048,576    */
	uint32_t max_instances;     /* per realm; default 10,000             */
} thw_config;

/* config may be NULL for the defaults. */
TH_API int thw_realm_new(const thw_config *config, thw_realm **out,
			 th_err *err);
TH_API void thw_realm_free(thw_realm *r); /* frees every object in r; NULL ok */
/* Bytes of memory the realm holds outside linear memories (instances,
 * tables, globals, stacks), for accounting and the idle-instance benchmark. */
TH_API size_t thw_realm_overhead(const thw_realm *r);

/* ---- Host functions -------------------------------------------------- */

typedef enum thw_hostret {
	THW_HOST_OK = 0,      /* results are filled in                       */
	THW_HOST_TRAP = 1,    /* thw_call_trap was called with the reason    */
	THW_HOST_PENDING = 2  /* the answer comes later via thw_exec_complete */
} thw_hostret;

/* What a host function sees of its caller. Valid only during the call. */
typedef struct thw_caller thw_caller;

/* A host function. args has the functype's params, results room for its
 * results. Returning THW_HOST_PENDING suspends the whole invocation:
 * thw_exec_run returns THW_STATE_PENDING and, once the host has the answer,
 * it calls thw_exec_complete(results) and runs the exec again. */
typedef thw_hostret (*thw_hostfn)(thw_caller *caller, void *ctx,
				  const thw_val *args, thw_val *results);

/* Create a host function in realm r. The functype's arrays are copied.
 * ctx is passed back on each call; the realm does not own it. */
TH_API int thw_func_new_host(thw_realm *r, const thw_functype *type,
			     thw_hostfn fn, void *ctx, const char *debug_name,
			     thw_func **out, th_err *err);
TH_API void thw_func_type(const thw_func *f, thw_functype *out);

/* The caller's instance and its memory 0 (NULL if it has none). */
TH_API thw_instance *thw_caller_instance(thw_caller *c);
TH_API thw_memory *thw_caller_memory(thw_caller *c);
TH_API thw_exec *thw_caller_exec(thw_caller *c);
/* Make the host function trap with this message (copied). Returns
 * THW_HOST_TRAP so a host function can `return thw_call_trap(c, "...")`. */
TH_API thw_hostret thw_call_trap(thw_caller *c, const char *msg);

/* ---- Memories, tables, globals --------------------------------------- */

TH_API int thw_memory_new(thw_realm *r, thw_limits_range limits,
			  thw_memory **out, th_err *err);
TH_API uint32_t thw_memory_pages(const thw_memory *m);
TH_API size_t thw_memory_size(const thw_memory *m); /* bytes */
/* Bounds-checked access: 0, or TH_EINVAL when [off, off+len) is outside. */
TH_API int thw_memory_read(const thw_memory *m, uint64_t off, void *dst,
			   size_t len);
TH_API int thw_memory_write(thw_memory *m, uint64_t off, const void *src,
			    size_t len);
/* Direct pointer to [off, off+len), or NULL when out of bounds. Valid only
 * until the memory next grows (any WebAssembly code may grow it). */
TH_API uint8_t *thw_memory_ptr(thw_memory *m, uint64_t off, size_t len);
/* Grow by delta pages; returns the old page count or -1 (limit/oom). */
TH_API int64_t thw_memory_grow(thw_memory *m, uint32_t delta);

TH_API int thw_table_new(thw_realm *r, uint8_t elemtype,
			 thw_limits_range limits, thw_val init,
			 thw_table **out, th_err *err);
TH_API uint32_t thw_table_size(const thw_table *t);
TH_API int thw_table_get(const thw_table *t, uint32_t i, thw_val *out);
TH_API int thw_table_set(thw_table *t, uint32_t i, thw_val v);

TH_API int thw_global_new(thw_realm *r, uint8_t valtype, bool mut,
			  thw_val init, thw_global **out, th_err *err);
TH_API thw_val thw_global_get(const thw_global *g);
TH_API int thw_global_set(thw_global *g, thw_val v); /* TH_ESTATE if const */

/* ---- Execution ------------------------------------------------------- */

typedef enum thw_fuel_mode {
	THW_FUEL_TRAP = 0, /* exhaustion traps: "out of fuel" (per-message cap) */
	THW_FUEL_YIELD = 1 /* exhaustion suspends; resumable (fair scheduling)  */
} thw_fuel_mode;

typedef enum thw_state {
	THW_STATE_IDLE = 0,    /* nothing in progress                       */
	THW_STATE_DONE = 1,    /* finished: results available               */
	THW_STATE_TRAPPED = 2, /* trapped: see thw_exec_trap                */
	THW_STATE_PENDING = 3, /* a host function answered PENDING          */
	THW_STATE_YIELDED = 4  /* fuel ran out in THW_FUEL_YIELD mode       */
} thw_state;

typedef enum thw_trapcode {
	THW_TRAP_NONE = 0,
	THW_TRAP_UNREACHABLE,        /* "unreachable"                       */
	THW_TRAP_MEMORY_OOB,         /* "out of bounds memory access"       */
	THW_TRAP_TABLE_OOB,          /* "out of bounds table access"        */
	THW_TRAP_UNDEFINED_ELEMENT,  /* "undefined element"                 */
	THW_TRAP_UNINITIALIZED_ELEMENT, /* "uninitialized element"          */
	THW_TRAP_INDIRECT_TYPE,      /* "indirect call type mismatch"       */
	THW_TRAP_DIV_ZERO,           /* "integer divide by zero"            */
	THW_TRAP_INT_OVERFLOW,       /* "integer overflow"                  */
	THW_TRAP_INVALID_CONVERSION, /* "invalid conversion to integer"     */
	THW_TRAP_STACK_EXHAUSTED,    /* "call stack exhausted"              */
	THW_TRAP_OUT_OF_FUEL,        /* "out of fuel"                       */
	THW_TRAP_HOST,               /* message from thw_call_trap          */
	THW_TRAP_OOM                 /* "out of memory" (host allocation)   */
} thw_trapcode;

typedef struct thw_frame_info {
	uint32_t func_index;     /* index in its module's function space */
	const char *func_name;   /* from the name section, or NULL        */
	uint32_t code_offset;    /* byte offset in the module binary      */
} thw_frame_info;

/* A trap. Owned by the exec; valid until the exec is reused or freed. */
typedef struct thw_trap {
	thw_trapcode code;
	const char *message;          /* never NULL when code != NONE */
	uint32_t nframes;             /* innermost first              */
	const thw_frame_info *frames;
} thw_trap;

TH_API int thw_exec_new(thw_realm *r, thw_exec **out, th_err *err);
TH_API void thw_exec_free(thw_exec *e); /* NULL ok */

/* Fuel counts executed instructions (the engine may charge per block or
 * back-edge with the same total). UINT64_MAX means unlimited. */
TH_API void thw_exec_set_fuel(thw_exec *e, uint64_t fuel, thw_fuel_mode mode);
TH_API uint64_t thw_exec_fuel(const thw_exec *e);

/* Start an invocation of f with args (checked against f's type: TH_EINVAL on
 * mismatch). Then call thw_exec_run. The exec must be IDLE or finished. */
TH_API int thw_exec_start(thw_exec *e, thw_func *f, const thw_val *args,
			  uint32_t nargs, th_err *err);
/* Run until the invocation finishes, traps, yields or is pending. */
TH_API thw_state thw_exec_run(thw_exec *e);
/* Supply the results of the host call that answered PENDING (as many as its
 * functype has results), or make it trap with trap_msg != NULL. Then call
 * thw_exec_run again. */
TH_API int thw_exec_complete(thw_exec *e, const thw_val *results,
			     const char *trap_msg);
TH_API thw_state thw_exec_state(const thw_exec *e);
TH_API const thw_trap *thw_exec_trap(const thw_exec *e);
/* Copy out up to max results; returns how many the function has. */
TH_API uint32_t thw_exec_results(const thw_exec *e, thw_val *out,
				 uint32_t max);

/* Convenience for synchronous callers: start + run to the end with the
 * exec's current fuel. Returns the final state; PENDING/YIELDED leave the
 * invocation resumable as above. */
TH_API thw_state thw_call(thw_exec *e, thw_func *f, const thw_val *args,
			  uint32_t nargs, thw_val *results, uint32_t nresults);
/* thw_call for the many small calls of a host into its guest (an
 * allocator, a cleanup): at most 8 i32 arguments; with result, the
 * function must return one i32 (else the call traps unrun), without it
 * any results are dropped. Arguments that do not match the function fail
 * as thw_call fails them. */
TH_API thw_state thw_call_i32(thw_exec *e, thw_func *f, const uint32_t *args,
			      uint32_t nargs, uint32_t *result);

/* ---- Instances ------------------------------------------------------- */

/* Instantiate m in realm r. imports[i] satisfies the module's import i, in
 * order (resolve names with thw_module_import). Types are checked per the
 * specification: on mismatch TH_EINVAL with "incompatible import type" and
 * the import's names. Data and element segments are applied and the start
 * function runs on exec (which may be NULL for a temporary one); a trap
 * there fails instantiation with the trap message in err. */
TH_API int thw_instantiate(thw_realm *r, thw_module *m,
			   const thw_extern *imports, uint32_t nimports,
			   thw_exec *exec, thw_instance **out, th_err *err);
TH_API thw_module *thw_instance_module(const thw_instance *inst);
/* Export by name; returns false when there is none. */
TH_API bool thw_instance_export(const thw_instance *inst, const char *name,
				size_t name_len, thw_extern *out);
TH_API thw_memory *thw_instance_memory(const thw_instance *inst, uint32_t i);
/* Host data attached to an instance (for handlers); not owned. */
TH_API void thw_instance_set_data(thw_instance *inst, void *data);
TH_API void *thw_instance_data(const thw_instance *inst);

#ifdef __cplusplus
}
#endif
#endif
