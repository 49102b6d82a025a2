/*
 * types.h (internal) - component value types, function types and the
 * layout rules of the Canonical ABI that depend only on the type: size,
 * alignment and flattening to core value types (prefix thct_).
 *
 * Types live in an arena (thct_arena) owned by whatever made them (a
 * decoded component, the parsed world); they are immutable and freed all at
 * once. Layout (size, align, flat count) is computed once, when a type is
 * finished with thct_finish, so the hot lifting/lowering paths only read it.
 */
#ifndef THC_TYPES_H
#define THC_TYPES_H

#include "base/base.h"
#include "theater/component.h"

#define THCT_MAX_FLAT_PARAMS 16
#define THCT_MAX_FLAT_RESULTS 1
/* Flattening stops counting past this (no function needs more). */
#define THCT_FLAT_CAP 64
/* Nesting bound for every recursive walk over types and values. */
#define THCT_MAX_DEPTH 64

/* A bump arena: many small allocations, one free. */
typedef struct thct_block thct_block;
typedef struct thct_arena {
	thct_block *head;
} thct_arena;
void *thct_alloc(thct_arena *a, size_t n); /* zeroed; NULL on OOM */
char *thct_strndup(thct_arena *a, const char *s, size_t n);
void thct_arena_release(thct_arena *a);

struct thc_type {
	thc_kind kind;
	uint32_t n;         /* fields, cases, items, flags; list: 1 */
	const char **names; /* record/variant/enum/flags labels, else NULL */
	thc_type **types;   /* per field/case/item; NULL entry: no payload */
	/* layout, filled by thct_finish */
	uint32_t size, align;
	uint32_t payload_off; /* variants: offset of the payload */
	uint32_t nflat;       /* > THCT_FLAT_CAP means "too many" */
	uint8_t *flat;        /* nflat (<= cap) core types (THW_I32 ...) */
	uint32_t depth;
};

struct thc_functype {
	uint32_t nparams;
	const char **pnames;
	thc_type **ptypes;
	thc_type *result; /* NULL: no result */
};

/* A primitive type (static, never freed). NULL for a non-primitive kind. */
thc_type *thct_prim(thc_kind kind);
/* Make a compound type in a; fill names/types then call thct_finish. */
thc_type *thct_new(thct_arena *a, thc_kind kind, uint32_t n, bool named);
/* Compute layout; TH_EINVAL when the type is invalid (empty record, more
 * than 32 flags, too deep, too large). */
int thct_finish(thct_arena *a, thc_type *t, th_err *err);

const char *thct_kind_name(thc_kind k);
bool thct_equal(const thc_type *a, const thc_type *b);
bool thct_functype_equal(const thc_functype *a, const thc_functype *b);

/* Discriminant size in bytes for a variant of n cases. */
uint32_t thct_disc_size(uint32_t ncases);
static inline uint32_t thct_align_to(uint32_t x, uint32_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* Flattened core signature of a function, as lifted (export: callee is the
 * guest) or lowered (import: caller is the guest). params/results receive
 * up to THCT_MAX_FLAT_PARAMS+1 / 1 entries. */
typedef struct thct_flatsig {
	uint32_t nparams, nresults;
	uint8_t params[THCT_MAX_FLAT_PARAMS + 1];
	uint8_t results[THCT_MAX_FLAT_RESULTS + 1];
	bool params_spilled;  /* one i32 pointer to a params tuple */
	bool results_spilled; /* lift: i32 return pointer; lower: retptr param */
} thct_flatsig;
void thct_flatsig_of(const thc_functype *f, bool lower, thct_flatsig *out);
/* The params of f as one tuple type (for spilled params); in arena a. */
thc_type *thct_params_tuple(thct_arena *a, const thc_functype *f);

#endif
