/*
 * decode.h (internal) - the component binary decoder (prefix thcd_).
 *
 * thcd_decode turns a component-model binary into index spaces (one
 * thcd_scope per component, the outermost and each nested one), resolving
 * types as it goes. It does not touch the engine: embedded core modules are
 * kept as byte ranges, compiled later by load.c. thcd_exports then follows
 * exports through instances, nested-component instantiations and aliases
 * down to the `canon lift` definitions that implement them.
 */
#ifndef THC_DECODE_H
#define THC_DECODE_H

#include "component/types.h"

/* Core sorts (Binary.md core:sort) */
enum { THCD_CFUNC = 0x00, THCD_CTABLE = 0x01, THCD_CMEM = 0x02,
       THCD_CGLOBAL = 0x03, THCD_CTYPE = 0x10, THCD_CMODULE = 0x11,
       THCD_CINST = 0x12 };
/* Component sorts (0x00 = core, then these) */
enum { THCD_FUNC = 0x01, THCD_VALUE = 0x02, THCD_TYPE = 0x03,
       THCD_COMP = 0x04, THCD_INST = 0x05 };

typedef struct thcd_opts {
	bool has_memory, has_realloc, has_post;
	uint32_t memory, realloc, post; /* core indices */
} thcd_opts;

typedef struct thcd_export {
	const char *name;
	uint8_t sort, csort; /* csort when sort == 0 (core) */
	uint32_t idx;
} thcd_export;

/* A core item other than an instance: an alias of a core instance export,
 * or (functions only) a canon lower. */
typedef struct thcd_citem {
	enum { THCD_CI_ALIAS = 1, THCD_CI_LOWER } how;
	uint32_t inst;      /* ALIAS */
	const char *name;   /* ALIAS */
	uint32_t func;      /* LOWER: component func index */
	thcd_opts opts;     /* LOWER */
} thcd_citem;

typedef struct thcd_cinst {
	enum { THCD_CINST_INSTANTIATE = 1, THCD_CINST_INLINE } how;
	uint32_t module;
	uint32_t n;          /* args (instantiate) or exports (inline) */
	thcd_export *items;  /* args: name + CINST idx; inline: core exports */
} thcd_cinst;

typedef struct thcd_func {
	enum { THCD_F_IMPORT = 1, THCD_F_ALIAS, THCD_F_LIFT } how;
	const char *name;   /* IMPORT (nested scope) / ALIAS export name */
	uint32_t inst;      /* ALIAS: instance index */
	uint32_t core;      /* LIFT: core func */
	thcd_opts opts;     /* LIFT */
	const thc_functype *type;
} thcd_func;

/* An instance type's function exports (for imported instances). */
typedef struct thcd_insttype {
	uint32_t n;
	const char **names;
	const thc_functype **funcs; /* NULL for non-function exports */
	thc_type **types;           /* exported value types (eq), or NULL */
} thcd_insttype;

typedef struct thcd_scope thcd_scope;

typedef struct thcd_inst {
	enum { THCD_I_IMPORT = 1, THCD_I_INLINE, THCD_I_INSTANTIATE, THCD_I_ALIAS } how;
	const char *name;            /* IMPORT: import name; ALIAS: export name */
	const thcd_insttype *type;   /* IMPORT */
	uint32_t comp;               /* INSTANTIATE; ALIAS: instance */
	uint32_t n;                  /* INLINE exports / INSTANTIATE args */
	thcd_export *items;
} thcd_inst;

/* A type index space entry. */
typedef struct thcd_tentry {
	enum { THCD_T_VAL = 1, THCD_T_FUNC, THCD_T_INST, THCD_T_COMP,
	       THCD_T_RESOURCE } kind;
	thc_type *val;
	thc_functype *func;
	thcd_insttype *inst;
} thcd_tentry;

#define THCD_VEC(T) struct { T *v; uint32_t n, cap; }

struct thcd_scope {
	thcd_scope *parent;
	THCD_VEC(thcd_tentry) types;
	THCD_VEC(thcd_func) funcs;
	THCD_VEC(thcd_inst) insts;
	THCD_VEC(thcd_scope *) comps;
	THCD_VEC(thcd_cinst) cinsts;
	THCD_VEC(thcd_citem) cfuncs, ctables, cmems, cglobals;
	THCD_VEC(uint32_t) modules;     /* offsets into the binary */
	THCD_VEC(uint32_t) module_lens;
	THCD_VEC(thcd_export) exports;  /* component exports */
	THCD_VEC(thcd_export) imports;  /* name + sort (idx: into the sort's space) */
};

typedef struct thcd_component {
	thct_arena arena;
	const uint8_t *bytes; /* not owned: the loaded copy */
	size_t len;
	thcd_scope *root;
	/* Every scope, for release. */
	THCD_VEC(thcd_scope *) scopes;
} thcd_component;

/* Decode; *out is filled (release with thcd_release even on failure). */
int thcd_decode(const uint8_t *bytes, size_t len, thcd_component *out,
		th_err *err);
void thcd_release(thcd_component *c);

/* An exported function after following every alias and instantiation. */
typedef struct thcd_lifted {
	const char *iface; /* "theater:simple/actor" */
	const char *name;  /* "init" */
	const thcd_func *lift;
} thcd_lifted;
/* The root's exported functions (instance exports and top-level func
 * exports, whose iface is ""); *out is th_malloc'ed. */
int thcd_exports(const thcd_component *c, thcd_lifted **out, uint32_t *n,
		 th_err *err);

#endif
