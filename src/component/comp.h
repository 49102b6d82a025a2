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

#endif
