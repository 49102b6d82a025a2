/*
 * abi.h (internal) - the Canonical ABI: lifting component values out of a
 * guest's linear memory and flat core values, and lowering them back
 * (prefix thca_). Independent of the engine: memory is reached through
 * thca_mem, so the rules are tested on plain byte arrays.
 */
#ifndef THC_ABI_H
#define THC_ABI_H

#include "component/types.h"

/* Everything lifting and lowering needs from the guest. ptr() returns a
 * pointer to [off, off+len) or NULL when out of bounds; it is re-fetched
 * after every realloc (which may grow memory). realloc calls the guest's
 * cabi_realloc(old, old_size, align, new_size); NULL when the guest has
 * none. budget bounds the number of values one lift may create, so a
 * hostile length cannot make the host allocate without limit. */
typedef struct thca_mem {
	uint8_t *(*ptr)(void *ctx, uint64_t off, size_t len);
	int (*realloc)(void *ctx, uint32_t old, uint32_t old_size,
		       uint32_t align, uint32_t new_size, uint32_t *out,
		       th_err *err);
	void *ctx;
	uint64_t budget;
} thca_mem;

#define THCA_DEFAULT_BUDGET (16u * 1024 * 1024)

/* Values in memory at ptr (which must be aligned to the type). */
int thca_load(thca_mem *m, const thc_type *t, uint32_t ptr, thc_val *out,
	      th_err *err);
int thca_store(thca_mem *m, const thc_type *t, const thc_val *v,
	       uint32_t ptr, th_err *err);

/* Flat values: lift consumes t->nflat values from flat[*pos]; lower
 * appends t->nflat values at flat[*pos] (cap entries available). */
int thca_lift_flat(thca_mem *m, const thc_type *t, const thw_val *flat,
		   uint32_t nflat, uint32_t *pos, thc_val *out, th_err *err);
int thca_lower_flat(thca_mem *m, const thc_type *t, const thc_val *v,
		    thw_val *flat, uint32_t cap, uint32_t *pos, th_err *err);

/* Check that v has type t (kinds, arities, case indices, ranges, chars,
 * UTF-8) without touching memory. */
int thca_check(const thc_type *t, const thc_val *v, th_err *err);

/* Function calls. ptuple is the parameters as one tuple type (used when
 * they are spilled; may be NULL otherwise). */
/* Host calling a guest export: lower args to sig->nparams flat values. */
int thca_lower_params(thca_mem *m, const thc_functype *f,
		      const thct_flatsig *sig, const thc_type *ptuple,
		      const thc_val *args, uint32_t nargs, thw_val *flat,
		      th_err *err);
/* ... and lift its result from the core results. */
int thca_lift_result(thca_mem *m, const thc_functype *f,
		     const thct_flatsig *sig, const thw_val *res,
		     thc_val *out, th_err *err);
/* Guest calling a host import: lift the flat params into args[nparams]. */
int thca_lift_params(thca_mem *m, const thc_functype *f,
		     const thct_flatsig *sig, const thc_type *ptuple,
		     const thw_val *flat, thc_val *args, th_err *err);
/* ... and lower the host's result: into res (flat) or, when spilled, into
 * memory at the return pointer (the last flat param). */
int thca_lower_result(thca_mem *m, const thc_functype *f,
		      const thct_flatsig *sig, const thc_val *result,
		      const thw_val *flat_params, thw_val *res, th_err *err);

/* UTF-8 validity (no surrogates, no overlongs, <= U+10FFFF). */
bool thca_utf8_valid(const uint8_t *p, size_t n);

#endif
