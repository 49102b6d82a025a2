/*
 * world.h (internal) - a small WIT parser and the theater:simple world
 * (prefix thcw_).
 *
 * The world's source of truth is wit/theater-simple.wit; world.c embeds that
 * file at build time and parses it once, at first use, so the checks at
 * load can never drift from the WIT. The parser handles what that file
 * uses: package, interfaces with use/type/record/variant/enum/flags/func
 * items, and a world of interface imports and exports.
 */
#ifndef THC_WORLD_H
#define THC_WORLD_H

#include "component/types.h"

typedef struct thcw_named {
	const char *name;
	thc_type *type;
} thcw_named;

typedef struct thcw_func {
	const char *name;
	thc_functype *type;
} thcw_func;

typedef struct thcw_iface {
	const char *name;  /* "runtime" */
	const char *qname; /* "theater:simple/runtime" */
	uint32_t ntypes, nfuncs;
	thcw_named *types;
	thcw_func *funcs;
} thcw_iface;

typedef struct thcw_world {
	thct_arena arena;
	const char *package; /* "theater:simple" */
	uint32_t nifaces, nimports, nexports;
	thcw_iface **ifaces, **imports, **exports;
} thcw_world;

/* Parse WIT source text and select world `world` (NULL: the only/last). */
int thcw_parse(const char *src, size_t len, const char *world, thcw_world *out,
	       th_err *err);
void thcw_release(thcw_world *w);

/* The theater:simple world, parsed once (thread-safe); NULL with err set
 * if the embedded WIT fails to parse or memory runs out. */
const thcw_world *thcw_theater(th_err *err);

/* A world function by qualified interface name and function name. */
const thcw_iface *thcw_iface_of(const thcw_world *w, bool exported,
				const char *qname);
const thc_functype *thcw_func_of(const thcw_iface *i, const char *name);

#endif
