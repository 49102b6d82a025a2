/*
 * component.h - WebAssembly components as Theater actors (prefix thc_).
 *
 * An actor is either a component-model binary (as `jco new` /
 * wit-component make them) or a plain core module that exports the
 * world's functions under their lowered names. thc_component_load detects
 * the form, decodes it, and checks its imports and exports against the
 * `theater:simple` world (wit/theater-simple.wit). Both forms are then used
 * through the same calls: instantiate with host functions for the imports,
 * call exports with dynamic values (thc_val), which the Canonical ABI
 * lowers into and lifts out of the actor's linear memory.
 *
 * Objects
 *   thc_component  decoded and checked; immutable; shareable between
 *                  threads and instances. Freed by thc_component_free
 *                  after every instance made from it is gone.
 *   thc_instance   one instantiation in a thw_realm (one per actor).
 *   thc_val        a dynamic component value (a tree). The owner frees
 *                  it with thc_val_release.
 *
 * Errors are values (th_err). A trap inside the actor, or a canonical-ABI
 * violation by the actor (bad UTF-8, out-of-bounds list, bad discriminant)
 * fails the call with TH_EINVAL or the trap message; the instance must then
 * be discarded, the process is unaffected.
 */
#ifndef THEATER_COMPONENT_H
#define THEATER_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "theater/base.h"
#include "theater/wasm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Values ----------------------------------------------------------- */

typedef enum thc_kind {
	THC_BOOL = 1,
	THC_S8, THC_U8, THC_S16, THC_U16, THC_S32, THC_U32, THC_S64, THC_U64,
	THC_F32, THC_F64, THC_CHAR, THC_STRING,
	THC_LIST, THC_RECORD, THC_TUPLE, THC_VARIANT, THC_ENUM,
	THC_OPTION, THC_RESULT, THC_FLAGS,
	/* Value-only kind: a list<u8> is lifted as THC_BYTES; lowering a
	 * list<u8> accepts THC_BYTES or THC_LIST of THC_U8. */
	THC_BYTES
} thc_kind;

/* A dynamic value. Every pointer in it is owned by the value (allocated
 * with the project allocator) and released by thc_val_release.
 *   integers  of.s (signed kinds) / of.u (unsigned kinds)
 *   STRING    of.str: UTF-8, len bytes, plus a NUL after them
 *   BYTES     of.bytes
 *   LIST, RECORD, TUPLE  of.agg: n items (record fields in type order)
 *   VARIANT, ENUM, OPTION, RESULT  of.var: case index and payload (NULL
 *             when the case has none). option: 0 none, 1 some;
 *             result: 0 ok, 1 error.
 *   FLAGS     of.flags: bit i = flag i (at most 32 flags). */
typedef struct thc_val thc_val;
struct thc_val {
	uint8_t kind; /* thc_kind */
	union {
		bool b;
		int64_t s;
		uint64_t u;
		float f32;
		double f64;
		uint32_t ch;
		struct { char *ptr; size_t len; } str;
		struct { uint8_t *ptr; size_t len; } bytes;
		struct { thc_val *items; uint32_t n; } agg;
		struct { uint32_t disc; thc_val *payload; } var;
		uint32_t flags;
	} of;
};

/* Release what v owns and make it an empty value (kind 0). NULL ok. */
TH_API void thc_val_release(thc_val *v);
/* Deep equality (THC_BYTES equals a THC_LIST of the same THC_U8s). */
TH_API bool thc_val_equal(const thc_val *a, const thc_val *b);
/* Deep copy into *out; TH_ENOMEM. */
TH_API int thc_val_copy(const thc_val *v, thc_val *out);

/* Constructors. The allocating ones return TH_ENOMEM on failure and leave
 * *out empty. */
TH_API thc_val thc_val_bool(bool b);
TH_API thc_val thc_val_int(thc_kind kind, int64_t s);   /* S8..S64 */
TH_API thc_val thc_val_uint(thc_kind kind, uint64_t u); /* U8..U64 */
TH_API int thc_val_string(const char *s, size_t len, thc_val *out);
TH_API int thc_val_bytes(const uint8_t *p, size_t len, thc_val *out);
/* An aggregate (LIST, RECORD, TUPLE) of n zeroed items to fill in. */
TH_API int thc_val_agg(thc_kind kind, uint32_t n, thc_val *out);
/* A case value (VARIANT, ENUM, OPTION, RESULT); takes ownership of
 * *payload (moved; *payload becomes empty) when payload != NULL. */
TH_API int thc_val_case(thc_kind kind, uint32_t disc, thc_val *payload,
			thc_val *out);

/* ---- Types (read-only views for hosts and messages) ------------------- */

typedef struct thc_type thc_type;
typedef struct thc_functype thc_functype;

/* Print a type / function type in WIT syntax into buf (truncated, always
 * NUL-terminated). Returns the length it needed. */
TH_API size_t thc_type_str(const thc_type *t, char *buf, size_t cap);
TH_API size_t thc_functype_str(const thc_functype *f, char *buf, size_t cap);

/* ---- Components ------------------------------------------------------- */

typedef struct thc_component thc_component;
typedef struct thc_instance thc_instance;

typedef enum thc_form {
	THC_FORM_COMPONENT = 1, /* component-model binary       */
	THC_FORM_CORE = 2       /* core module, lowered names   */
} thc_form;

/* Decode bytes (either form), check them against the theater:simple world
 * (a core module may also import wasi_snapshot_preview1 functions: see
 * thc_instantiate_wasi).
 * The bytes are copied as needed. Errors: "component: <section> section at
 * offset 0x1a: <reason>" for malformed binaries; "world mismatch: export
 * theater:simple/actor#init: expected func(...) -> ..., found func(...)"
 * for a function whose type differs; TH_EUNSUPPORTED for features outside
 * the supported subset (resources, async, nested components ...). */
TH_API int thc_component_load(const uint8_t *bytes, size_t len,
			      thc_component **out, th_err *err);
TH_API void thc_component_free(thc_component *c); /* NULL ok */
TH_API thc_form thc_component_form(const thc_component *c);

/* A function of the world the component imports or exports. Names are
 * "theater:simple/runtime" and "log". Valid while c lives. */
typedef struct thc_funcref {
	const char *iface;
	const char *name;
	const thc_functype *type;
} thc_funcref;
TH_API uint32_t thc_component_import_count(const thc_component *c);
TH_API void thc_component_import(const thc_component *c, uint32_t i,
				 thc_funcref *out);
TH_API uint32_t thc_component_export_count(const thc_component *c);
TH_API void thc_component_export(const thc_component *c, uint32_t i,
				 thc_funcref *out);
/* Index of an export by interface and function name, or -1. */
TH_API int thc_component_find_export(const thc_component *c,
				     const char *iface, const char *name);

/* ---- Host functions for the imports ----------------------------------- */

typedef struct thc_hostcall thc_hostcall;

typedef enum thc_hostret {
	THC_HOST_OK = 0,     /* *result is set (when the function has a result) */
	THC_HOST_TRAP = 1,   /* thc_hostcall_trap was called                     */
	THC_HOST_PENDING = 2 /* the answer comes later: thc_hostcall_complete    */
} thc_hostret;

/* A host function. args are the lifted parameters (owned by the caller,
 * valid during the call); *result (zeroed on entry) receives the result,
 * which the component layer lowers into the actor and then releases. */
typedef thc_hostret (*thc_hostfn)(thc_hostcall *call, void *ctx,
				  const thc_val *args, uint32_t nargs,
				  thc_val *result);

typedef struct thc_host_import {
	const char *iface; /* "theater:simple/runtime" */
	const char *name;  /* "log"                    */
	thc_hostfn fn;
	void *ctx;
} thc_host_import;

TH_API thc_hostret thc_hostcall_trap(thc_hostcall *call, const char *msg);

/* Answer the host call that returned THC_HOST_PENDING (at most one per
 * instance): lowers *result (taking ownership; it is released) into the
 * actor exactly as a synchronous THC_HOST_OK would, then completes the
 * suspended exec (thw_exec_complete); or, with trap_msg != NULL, makes the
 * call trap. The caller then drives thw_exec_run again. */
TH_API int thc_hostcall_complete(thc_instance *inst, thw_exec *exec,
				 thc_val *result, const char *trap_msg,
				 th_err *err);
TH_API thc_instance *thc_hostcall_instance(thc_hostcall *call);

/* Instantiate c in realm r. Every import of c must be matched by one entry
 * of imports (by iface and name; extra entries are ignored) or the call
 * fails with TH_ENOTFOUND naming it. exec runs start/initialisation code
 * (NULL: a temporary one). The instance lives until thc_instance_free or
 * until the realm is freed (free the thc_instance first). */
TH_API int thc_instantiate(thw_realm *r, thc_component *c,
			   const thc_host_import *imports, size_t nimports,
			   thw_exec *exec, thc_instance **out, th_err *err);
/* The same, for core-module actors that also import WASI preview1
 * (wasi_snapshot_preview1, e.g. through wasi-libc's stdio): those imports
 * are satisfied from wasi (thw_wasi_import; it must outlive the instance).
 * With wasi == NULL such imports fail with TH_ENOTFOUND naming them. */
struct thw_wasi;
TH_API int thc_instantiate_wasi(thw_realm *r, thc_component *c,
				const thc_host_import *imports, size_t nimports,
				struct thw_wasi *wasi, thw_exec *exec,
				thc_instance **out, th_err *err);
TH_API void thc_instance_free(thc_instance *inst); /* NULL ok */
TH_API const thc_component *thc_instance_component(const thc_instance *i);
TH_API void thc_instance_set_data(thc_instance *inst, void *data);
TH_API void *thc_instance_data(const thc_instance *inst);
/* The actor's linear memory (for accounting), or NULL. */
TH_API thw_memory *thc_instance_memory(const thc_instance *inst);

/* ---- Calling exports -------------------------------------------------- */

/* Call export `index` (thc_component_find_export) with args, running on
 * exec with its current fuel. On success *result holds the lifted result
 * (kind 0 when the function has none), owned by the caller. A trap fails
 * with TH_EINVAL and the trap message in err. */
TH_API int thc_call(thc_instance *inst, thw_exec *exec, int index,
		    const thc_val *args, uint32_t nargs, thc_val *result,
		    th_err *err);

/* The same in two steps, for callers that let the exec yield (fuel) or
 * wait on a pending host call: thc_call_start lowers the arguments and
 * starts exec; the caller drives thw_exec_run until THW_STATE_DONE, then
 * thc_call_finish lifts the result and runs post-return. Only one call per
 * instance may be in progress. */
TH_API int thc_call_start(thc_instance *inst, thw_exec *exec, int index,
			  const thc_val *args, uint32_t nargs, th_err *err);
TH_API int thc_call_finish(thc_instance *inst, thw_exec *exec,
			   thc_val *result, th_err *err);

/* thc_call_finish in three steps, for a host that reads a result in place
 * rather than as a lifted copy. thc_call_raw gives the finished call's core
 * results (at most THC_MAX_FLAT_RESULTS + 1; a trap fails as in
 * thc_call_finish and ends the call); thc_call_mem reads the guest memory
 * they point into (NULL when [off, off+len) is out of bounds). Both stay
 * valid until the call ends: by thc_call_end (runs post-return; a trap
 * there fails with TH_EINVAL), or by thc_call_finish (lifts as usual) for a
 * result the host does not read itself. */
#define THC_MAX_FLAT_RESULTS 1
TH_API int thc_call_raw(thc_instance *inst, thw_exec *exec, thw_val *res,
			uint32_t *n, th_err *err);
TH_API const uint8_t *thc_call_mem(thc_instance *inst, uint64_t off,
				   size_t len);
TH_API int thc_call_end(thc_instance *inst, thw_exec *exec, th_err *err);

#ifdef __cplusplus
}
#endif
#endif
