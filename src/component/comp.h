/*
 * comp.h (internal) - what load.c (decoding, forms, world checks) hands to
 * instance.c (instantiation, host trampolines, calls).
 */
#ifndef THC_COMP_H
#define THC_COMP_H

#include "component/abi.h"
#include "component/decode.h"
#include "component/world.h"

/* An imported or exported world function of a loaded component. */
typedef struct thc_fn {
	const char *iface; /* "theater:simple/runtime" */
	const char *name;  /* "log" */
	const thc_functype *type;
	thct_flatsig sig;  /* lowered (imports) / lifted (exports) */
	thc_type *ptuple;  /* params as a tuple, when spilled */
	const thcd_func *lift; /* component form exports */
	const char *core_name, *post_name; /* core form exports */
} thc_fn;

#define THC_MAX_PARAMS 32

struct thc_component {
	thc_form form;
	uint8_t *bytes; /* owned copy */
	size_t len;
	thct_arena arena;
	thcd_component dec; /* component form */
	thw_module **modules;
	uint32_t nmodules;
	thc_fn *imports, *exports;
	uint32_t nimports, nexports;
	/* core form: per module import, the index in imports (or UINT32_MAX) */
	uint32_t *core_import_map;
	const char *mem_name, *realloc_name, *init_name;
};

/* check.c: world checks shared by both forms. */
int thcl_mismatch(th_err *err, const char *what, const char *iface, const char *name,
		  const thc_functype *want, const thc_functype *got);
int thcl_prep_fn(thc_component *c, thc_fn *f, bool lower, th_err *err);
int thcl_add_fn(thc_fn **v, uint32_t *n, thc_fn f, th_err *err);
int thcl_check_fn(const thcw_world *w, bool exported, const char *iface, const char *name,
		  const thc_functype *got, const thc_functype **wt, th_err *err);
int thcl_require_init(const thc_component *c, th_err *err);
/* Decode c->bytes into c->dec and fill c->imports/c->exports, checked
 * against w. Does not compile the core modules. */
int thcl_check_component(thc_component *c, const thcw_world *w, th_err *err);

#endif
